/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "arc.h"
#include "cleanup.h"
#include "dkim-canon.h"
#include "dkim-key.h"
#include "dkim-sign.h"
#include "string-util.h"

#define ARC_MAX_TAGS 64U
#define FOLD_COLUMN 78
#define B64_LINE 72

static const char* const chain_status_table[_ARC_CHAIN_STATUS_MAX] = {
        [ARC_CHAIN_NONE] = "none",
        [ARC_CHAIN_PASS] = "pass",
        [ARC_CHAIN_FAIL] = "fail",
};

const char* arc_chain_status_to_string(ArcChainStatus s) {
        if (s < 0 || s >= _ARC_CHAIN_STATUS_MAX)
                return NULL;
        return chain_status_table[s];
}

ArcChainStatus arc_chain_status_from_string(const char *s, size_t len) {
        for (ArcChainStatus c = 0; c < _ARC_CHAIN_STATUS_MAX; c++)
                if (strlen(chain_status_table[c]) == len && memcmp(chain_status_table[c], s, len) == 0)
                        return c;
        return _ARC_CHAIN_STATUS_INVALID;
}

static bool tag_is(const DkimTag *t, const char *name) {
        return t->name_len == strlen(name) && memcmp(t->name, name, t->name_len) == 0;
}

static bool value_is(const DkimTag *t, const char *v) {
        return t->value_len == strlen(v) && memcmp(t->value, v, t->value_len) == 0;
}

static int parse_number(const char *s, size_t len, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > 20)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                if (v > (UINT64_MAX - 9) / 10)
                        return -EBADMSG;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (v > max)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int parse_instance(const DkimTag *t, unsigned *ret) {
        uint64_t v;

        if (parse_number(t->value, t->value_len, ARC_MAX_INSTANCES, &v) < 0 || v == 0)
                return -EBADMSG;
        *ret = (unsigned) v;
        return 0;
}

/* a= is compared exactly: RFC 6376 writes the values in lowercase and the tag-value
 * grammar makes them case-sensitive. */
static DkimAlgorithm parse_algorithm(const DkimTag *t) {
        for (DkimAlgorithm a = 0; a < _DKIM_ALGORITHM_MAX; a++)
                if (value_is(t, dkim_algorithm_to_string(a)))
                        return a;
        return _DKIM_ALGORITHM_INVALID;
}

static char* strndup_lower(const char *s, size_t n) {
        char *p = strndup(s, n);

        if (p)
                for (char *q = p; *q; q++)
                        if (*q >= 'A' && *q <= 'Z')
                                *q = (char) (*q - 'A' + 'a');
        return p;
}

/* Walk a tag-list into tags[], refusing syntax errors and duplicate names. */
static int collect_tags(const char *value, size_t len, DkimTag *tags, size_t *ret_n, const char **ret_reason) {
        size_t offset = 0, n = 0;
        int r;

        for (;;) {
                DkimTag t;

                r = dkim_tag_list_next(value, len, &offset, &t, ret_reason);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                for (size_t i = 0; i < n; i++)
                        if (tags[i].name_len == t.name_len && memcmp(tags[i].name, t.name, t.name_len) == 0) {
                                *ret_reason = "duplicate tag";
                                return -EBADMSG;
                        }
                if (n >= ARC_MAX_TAGS) {
                        *ret_reason = "too many tags";
                        return -EBADMSG;
                }
                tags[n++] = t;
        }
        *ret_n = n;
        return 0;
}

ArcSeal* arc_seal_free(ArcSeal *s) {
        if (!s)
                return NULL;
        free(s->signature);
        free(s->domain);
        free(s->selector);
        free(s);
        return NULL;
}

ArcMessageSignature* arc_message_signature_free(ArcMessageSignature *s) {
        if (!s)
                return NULL;
        free(s->signature);
        free(s->body_hash);
        free(s->domain);
        free(s->selector);
        strv_free(s->headers);
        free(s);
        return NULL;
}

/* Tags common to both signatures: i, a, b, d, s, t. Returns 1 when the tag was one of
 * them, 0 when not, -EBADMSG / -ENOMEM. */
static int parse_common_tag(const DkimTag *t, bool allow_empty_b, unsigned *instance, DkimAlgorithm *algorithm,
                            uint8_t **signature, size_t *signature_len, size_t *b_start, size_t *b_end,
                            char **domain, char **selector, bool *has_timestamp, uint64_t *timestamp,
                            const char **ret_reason) {
        int r;

        if (tag_is(t, "i")) {
                if (parse_instance(t, instance) < 0) {
                        *ret_reason = "i= is not an instance number between 1 and 50";
                        return -EBADMSG;
                }
        } else if (tag_is(t, "a")) {
                *algorithm = parse_algorithm(t);
                if (*algorithm < 0) {
                        *ret_reason = "unknown algorithm in a=";
                        return -EBADMSG;
                }
                if (*algorithm == DKIM_ALGORITHM_RSA_SHA1) {
                        *ret_reason = "rsa-sha1 is not accepted (RFC 8301)";
                        return -EBADMSG;
                }
        } else if (tag_is(t, "b")) {
                r = dkim_base64_decode(t->value, t->value_len, signature, signature_len);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || (*signature_len == 0 && !allow_empty_b)) {
                        *ret_reason = r < 0 ? "b= is not valid base64" : "b= is empty";
                        return -EBADMSG;
                }
                *b_start = t->region_start;
                *b_end = t->region_end;
        } else if (tag_is(t, "d")) {
                if (!dkim_domain_is_valid(t->value, t->value_len, false)) {
                        *ret_reason = "d= is not a valid domain name";
                        return -EBADMSG;
                }
                *domain = strndup_lower(t->value, t->value_len);
                if (!*domain)
                        return -ENOMEM;
        } else if (tag_is(t, "s")) {
                if (!dkim_domain_is_valid(t->value, t->value_len, true)) {
                        *ret_reason = "s= is not a valid selector";
                        return -EBADMSG;
                }
                *selector = strndup_lower(t->value, t->value_len);
                if (!*selector)
                        return -ENOMEM;
        } else if (tag_is(t, "t")) {
                if (parse_number(t->value, t->value_len, UINT64_MAX / 2, timestamp) < 0) {
                        *ret_reason = "t= is not a valid timestamp";
                        return -EBADMSG;
                }
                *has_timestamp = true;
        } else
                return 0;
        return 1;
}

/* allow_empty_b: the seal being made, whose b= is still empty. */
static int seal_parse(const char *value, size_t len, bool allow_empty_b, ArcSeal **ret, const char **ret_reason) {
        _cleanup_(arc_seal_freep) ArcSeal *s = NULL;
        DkimTag tags[ARC_MAX_TAGS];
        const char *reason = NULL;
        bool has_cv = false;
        size_t n;
        int r;

        assert(value || len == 0);
        assert(ret);

        if (!ret_reason)
                ret_reason = &reason;
        if (len > DKIM_SIGNATURE_VALUE_MAX) {
                *ret_reason = "field too long";
                return -EBADMSG;
        }

        r = collect_tags(value, len, tags, &n, ret_reason);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(ArcSeal));
        if (!s)
                return -ENOMEM;
        s->algorithm = _DKIM_ALGORITHM_INVALID;
        s->cv = _ARC_CHAIN_STATUS_INVALID;

        for (size_t i = 0; i < n; i++) {
                r = parse_common_tag(tags + i, allow_empty_b, &s->instance, &s->algorithm, &s->signature, &s->signature_len,
                                     &s->b_region_start, &s->b_region_end, &s->domain, &s->selector,
                                     &s->has_timestamp, &s->timestamp, ret_reason);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (tag_is(tags + i, "cv")) {
                        s->cv = arc_chain_status_from_string(tags[i].value, tags[i].value_len);
                        if (s->cv < 0) {
                                *ret_reason = "cv= is not none, pass or fail";
                                return -EBADMSG;
                        }
                        has_cv = true;
                } else if (tag_is(tags + i, "h")) {
                        *ret_reason = "h= is not allowed in ARC-Seal";
                        return -EBADMSG;
                }
                /* other tags are ignored (§4.1.3) */
        }

        if (s->instance == 0)
                *ret_reason = "i= missing";
        else if (s->algorithm < 0)
                *ret_reason = "a= missing";
        else if (!s->signature)
                *ret_reason = "b= missing";
        else if (s->algorithm == DKIM_ALGORITHM_ED25519_SHA256 && s->signature_len != 64 &&
                 !(allow_empty_b && s->signature_len == 0))
                *ret_reason = "b= has the wrong length for Ed25519";
        else if (!has_cv)
                *ret_reason = "cv= missing";
        else if (!s->domain)
                *ret_reason = "d= missing";
        else if (!s->selector)
                *ret_reason = "s= missing";
        else {
                *ret = TAKE_PTR(s);
                return 0;
        }
        return -EBADMSG;
}

int arc_seal_parse(const char *value, size_t len, ArcSeal **ret, const char **ret_reason) {
        return seal_parse(value, len, false, ret, ret_reason);
}

static int parse_canon(const DkimTag *t, DkimCanon *ret_header, DkimCanon *ret_body) {
        const char *slash = memchr(t->value, '/', t->value_len);
        size_t hl = slash ? (size_t) (slash - t->value) : t->value_len;
        DkimCanon h = _DKIM_CANON_INVALID, b = DKIM_CANON_SIMPLE;

        for (DkimCanon c = 0; c < _DKIM_CANON_MAX; c++) {
                const char *n = dkim_canon_to_string(c);

                if (strlen(n) == hl && memcmp(n, t->value, hl) == 0)
                        h = c;
                if (slash) {
                        size_t bl = t->value_len - hl - 1;
                        if (strlen(n) == bl && memcmp(n, slash + 1, bl) == 0)
                                b = c;
                }
        }
        if (h < 0)
                return -EBADMSG;
        if (slash) {
                size_t bl = t->value_len - hl - 1;
                if (strlen(dkim_canon_to_string(b)) != bl ||
                    memcmp(dkim_canon_to_string(b), slash + 1, bl) != 0)
                        return -EBADMSG;
        }
        *ret_header = h;
        *ret_body = b;
        return 0;
}

static bool is_fws(char c) {
        return IN_SET(c, ' ', '\t', '\r', '\n');
}

/* h=: field names separated by ':' with FWS around them; empty is allowed (only the AMS
 * itself is then signed). */
static int parse_header_list(ArcMessageSignature *s, const DkimTag *t, const char **ret_reason) {
        size_t i = 0;
        int r;

        while (i < t->value_len) {
                size_t start, end;
                char *name;

                while (i < t->value_len && is_fws(t->value[i]))
                        i++;
                start = i;
                while (i < t->value_len && t->value[i] != ':' && !is_fws(t->value[i])) {
                        unsigned char c = (unsigned char) t->value[i];
                        if (c < 0x21 || c > 0x7e) {
                                *ret_reason = "invalid header name in h=";
                                return -EBADMSG;
                        }
                        i++;
                }
                end = i;
                while (i < t->value_len && is_fws(t->value[i]))
                        i++;
                /* An empty name ("from::to") selects no field; other verifiers accept it
                 * and so does the ValiMail suite (ams_fields_h_mis_hdr). */
                if (i < t->value_len) {
                        if (t->value[i] != ':') {
                                *ret_reason = "header names in h= not separated by ':'";
                                return -EBADMSG;
                        }
                        i++;
                        if (i >= t->value_len) {
                                *ret_reason = "empty header name at the end of h=";
                                return -EBADMSG;
                        }
                }
                if (end - start == STRLEN("arc-seal") && strncasecmp(t->value + start, "arc-seal", end - start) == 0) {
                        *ret_reason = "h= names ARC-Seal";
                        return -EBADMSG;
                }
                if (s->n_headers >= DKIM_SIGNATURE_MAX_HEADERS) {
                        *ret_reason = "too many header names in h=";
                        return -EBADMSG;
                }
                name = strndup(t->value + start, end - start);
                if (!name)
                        return -ENOMEM;
                r = strv_consume(&s->headers, name);
                if (r < 0)
                        return r;
                s->n_headers++;
        }
        if (!s->headers) {
                s->headers = calloc(1, sizeof(char*));
                if (!s->headers)
                        return -ENOMEM;
        }
        return 0;
}

int arc_message_signature_parse(const char *value, size_t len, ArcMessageSignature **ret,
                                const char **ret_reason) {
        _cleanup_(arc_message_signature_freep) ArcMessageSignature *s = NULL;
        DkimTag tags[ARC_MAX_TAGS];
        const char *reason = NULL;
        size_t n;
        int r;

        assert(value || len == 0);
        assert(ret);

        if (!ret_reason)
                ret_reason = &reason;
        if (len > DKIM_SIGNATURE_VALUE_MAX) {
                *ret_reason = "field too long";
                return -EBADMSG;
        }

        r = collect_tags(value, len, tags, &n, ret_reason);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(ArcMessageSignature));
        if (!s)
                return -ENOMEM;
        s->algorithm = _DKIM_ALGORITHM_INVALID;
        s->header_canon = s->body_canon = DKIM_CANON_SIMPLE;

        for (size_t i = 0; i < n; i++) {
                const DkimTag *t = tags + i;

                r = parse_common_tag(t, false, &s->instance, &s->algorithm, &s->signature, &s->signature_len,
                                     &s->b_region_start, &s->b_region_end, &s->domain, &s->selector,
                                     &s->has_timestamp, &s->timestamp, ret_reason);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (tag_is(t, "bh")) {
                        r = dkim_base64_decode(t->value, t->value_len, &s->body_hash, &s->body_hash_len);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0 || s->body_hash_len != 32) {
                                *ret_reason = "bh= is not a base64 SHA-256 hash";
                                return -EBADMSG;
                        }
                } else if (tag_is(t, "c")) {
                        if (parse_canon(t, &s->header_canon, &s->body_canon) < 0) {
                                *ret_reason = "unknown canonicalization in c=";
                                return -EBADMSG;
                        }
                } else if (tag_is(t, "h")) {
                        r = parse_header_list(s, t, ret_reason);
                        if (r < 0)
                                return r;
                }
        }

        if (s->instance == 0)
                *ret_reason = "i= missing";
        else if (s->algorithm < 0)
                *ret_reason = "a= missing";
        else if (!s->signature)
                *ret_reason = "b= missing";
        else if (!s->body_hash)
                *ret_reason = "bh= missing";
        else if (!s->domain)
                *ret_reason = "d= missing";
        else if (!s->headers)
                *ret_reason = "h= missing";
        else if (!s->selector)
                *ret_reason = "s= missing";
        else if (s->algorithm == DKIM_ALGORITHM_ED25519_SHA256 && s->signature_len != 64)
                *ret_reason = "b= has the wrong length for Ed25519";
        else {
                *ret = TAKE_PTR(s);
                return 0;
        }
        return -EBADMSG;
}

int arc_authentication_results_parse(const char *value, size_t len, unsigned *ret_instance,
                                     size_t *ret_payload_offset) {
        size_t i = 0, start;
        uint64_t v;

        assert(value || len == 0);
        assert(ret_instance);

        while (i < len && is_fws(value[i]))
                i++;
        if (i >= len || value[i] != 'i')
                return -EBADMSG;
        i++;
        while (i < len && is_fws(value[i]))
                i++;
        if (i >= len || value[i] != '=')
                return -EBADMSG;
        i++;
        while (i < len && is_fws(value[i]))
                i++;
        start = i;
        while (i < len && value[i] >= '0' && value[i] <= '9')
                i++;
        if (parse_number(value + start, i - start, ARC_MAX_INSTANCES, &v) < 0 || v == 0)
                return -EBADMSG;
        while (i < len && is_fws(value[i]))
                i++;
        if (i >= len || value[i] != ';')
                return -EBADMSG;
        i++;

        *ret_instance = (unsigned) v;
        if (ret_payload_offset)
                *ret_payload_offset = i;
        return 0;
}

/* The chain as found in the header block: for each instance its three fields. */
typedef struct ArcChain {
        Rfc5322Field *fields;
        size_t n_fields;
        size_t body;
        unsigned n_sets;
        const Rfc5322Field *aar[ARC_MAX_INSTANCES + 1];
        const Rfc5322Field *ams[ARC_MAX_INSTANCES + 1];
        const Rfc5322Field *as[ARC_MAX_INSTANCES + 1];
        ArcSeal *seals[ARC_MAX_INSTANCES + 1];
} ArcChain;

static void arc_chain_done(ArcChain *c) {
        free(c->fields);
        for (size_t i = 0; i <= ARC_MAX_INSTANCES; i++)
                arc_seal_free(c->seals[i]);
}

typedef enum ArcFieldKind {
        ARC_FIELD_AAR,
        ARC_FIELD_AMS,
        ARC_FIELD_AS,
        _ARC_FIELD_KIND_MAX,
        _ARC_FIELD_KIND_INVALID = -EINVAL,
} ArcFieldKind;

static ArcFieldKind field_kind(const Rfc5322Field *f) {
        if (rfc5322_field_is(f, "ARC-Authentication-Results"))
                return ARC_FIELD_AAR;
        if (rfc5322_field_is(f, "ARC-Message-Signature"))
                return ARC_FIELD_AMS;
        if (rfc5322_field_is(f, "ARC-Seal"))
                return ARC_FIELD_AS;
        return _ARC_FIELD_KIND_INVALID;
}

/* The instance of an AMS without judging its other tags (only the newest AMS is validated,
 * §5.2 step 4; older ones need only be findable). */
static int field_instance(const Rfc5322Field *f, unsigned *ret) {
        const char *reason;
        size_t offset = 0;
        bool found = false;
        DkimTag t;
        int r;

        while ((r = dkim_tag_list_next(f->value, f->value_len, &offset, &t, &reason)) > 0) {
                if (!tag_is(&t, "i"))
                        continue;
                if (found || parse_instance(&t, ret) < 0)
                        return -EBADMSG;
                found = true;
        }
        if (r < 0 || !found)
                return -EBADMSG;
        return 0;
}

#define FAIL(res, inst, why)                            \
        do {                                            \
                (res)->status = ARC_CHAIN_FAIL;         \
                (res)->failed_instance = (inst);        \
                (res)->reason = (why);                  \
                return 0;                               \
        } while (false)

/* §5.2 steps 1-3. Returns 0 with res decided (fail/none) or status pass meaning "go on". */
static int chain_collect(const char *msg, size_t len, unsigned unsigned_instance, ArcChain *c, ArcVerifyResult *res) {
        size_t n_arc = 0;
        int r;

        *res = (ArcVerifyResult) ARC_VERIFY_RESULT_NULL;

        r = dkim_header_fields(msg, len, &c->fields, &c->n_fields, &c->body);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;       /* no readable header block, no chain */

        for (size_t i = 0; i < c->n_fields; i++) {
                const Rfc5322Field *f = c->fields + i;
                ArcFieldKind k = field_kind(f);
                const Rfc5322Field **slot;
                unsigned inst;

                if (k < 0)
                        continue;
                if (++n_arc > 3 * ARC_MAX_INSTANCES)
                        FAIL(res, 0, "more than 50 ARC sets");

                switch (k) {
                case ARC_FIELD_AAR:
                        if (arc_authentication_results_parse(f->value, f->value_len, &inst, NULL) < 0)
                                FAIL(res, 0, "ARC-Authentication-Results without a valid i=");
                        slot = c->aar + inst;
                        break;
                case ARC_FIELD_AMS:
                        if (field_instance(f, &inst) < 0)
                                FAIL(res, 0, "ARC-Message-Signature without a valid i=");
                        slot = c->ams + inst;
                        break;
                case ARC_FIELD_AS: {
                        _cleanup_(arc_seal_freep) ArcSeal *s = NULL;
                        const char *why = NULL;

                        r = seal_parse(f->value, f->value_len, unsigned_instance > 0, &s, &why);
                        if (r == -ENOMEM)
                                return r;
                        if (r == 0 && s->signature_len == 0 && s->instance != unsigned_instance)
                                r = -EBADMSG;
                        if (r < 0) {
                                if (field_instance(f, &inst) < 0)
                                        FAIL(res, 0, "ARC-Seal without a valid i=");
                                FAIL(res, inst, "malformed ARC-Seal");
                        }
                        inst = s->instance;
                        if (c->seals[inst])
                                FAIL(res, inst, "duplicate ARC-Seal instance");
                        c->seals[inst] = TAKE_PTR(s);
                        slot = c->as + inst;
                        break;
                }
                default:
                        abort();
                }
                if (*slot)
                        FAIL(res, inst, "duplicate ARC header field for one instance");
                *slot = f;
                c->n_sets = MAX(c->n_sets, inst);
        }

        res->n_sets = c->n_sets;
        if (c->n_sets == 0)
                return 0;       /* none */

        for (unsigned i = 1; i <= c->n_sets; i++)
                if (!c->aar[i] || !c->ams[i] || !c->as[i])
                        FAIL(res, i, "ARC set incomplete or missing");

        if (c->seals[c->n_sets]->cv == ARC_CHAIN_FAIL)
                FAIL(res, c->n_sets, "the newest ARC-Seal says cv=fail");
        for (unsigned i = 1; i <= c->n_sets; i++)
                if (c->seals[i]->cv != (i == 1 ? ARC_CHAIN_NONE : ARC_CHAIN_PASS))
                        FAIL(res, i, i == 1 ? "ARC-Seal i=1 without cv=none" : "ARC-Seal without cv=pass");

        res->status = ARC_CHAIN_PASS;
        return 0;
}

int arc_verify_structure(const char *msg, size_t len, ArcVerifyResult *ret) {
        ArcChain c = {};
        ArcVerifyResult res;
        int r;

        assert(msg || len == 0);
        assert(ret);

        r = chain_collect(msg, len, 0, &c, &res);
        arc_chain_done(&c);
        if (r < 0)
                return r;
        *ret = res;
        return 0;
}


void arc_set_infos_free(ArcSetInfo *sets, size_t n) {
        for (size_t i = 0; sets && i < n; i++) {
                free(sets[i].domain);
                free(sets[i].selector);
                free(sets[i].aar);
        }
        free(sets);
}

int arc_sets_read(const char *msg, size_t len, ArcSetInfo **ret, size_t *ret_n) {
        ArcChain c = {};
        ArcVerifyResult res;
        ArcSetInfo *sets = NULL;
        size_t n = 0;
        int r;

        assert(msg || len == 0);
        assert(ret);
        assert(ret_n);

        r = chain_collect(msg, len, 0, &c, &res);
        if (r < 0)
                goto finish;
        if (res.status == ARC_CHAIN_FAIL) {
                r = -EBADMSG;
                goto finish;
        }
        if (res.status == ARC_CHAIN_PASS) {
                sets = calloc(c.n_sets, sizeof(ArcSetInfo));
                if (!sets) {
                        r = -ENOMEM;
                        goto finish;
                }
                for (unsigned i = 1; i <= c.n_sets; i++, n++) {
                        const Rfc5322Field *f = c.aar[i];
                        ArcSetInfo *s = &sets[i - 1];
                        unsigned inst;
                        size_t off;

                        r = arc_authentication_results_parse(f->value, f->value_len, &inst, &off);
                        if (r < 0)
                                goto finish;
                        s->instance = i;
                        s->domain = strdup(c.seals[i]->domain);
                        s->selector = strdup(c.seals[i]->selector);
                        s->aar = strndup(f->value + off, f->value_len - off);
                        s->aar_len = f->value_len - off;
                        if (!s->domain || !s->selector || !s->aar) {
                                n++;
                                r = -ENOMEM;
                                goto finish;
                        }
                }
        }
        r = 0;

finish:
        arc_chain_done(&c);
        if (r < 0) {
                arc_set_infos_free(sets, n);
                return r;
        }
        *ret = sets;
        *ret_n = n;
        return 0;
}

/* A field's raw text with the b= value (offsets into its value) removed. */
static int blank_b(const char *msg, const Rfc5322Field *f, size_t b_start, size_t b_end, DkimBuffer *out) {
        size_t value_off = (size_t) (f->value - (msg + f->raw_offset));
        int r;

        r = dkim_buffer_append(out, msg + f->raw_offset, value_off + b_start);
        if (r < 0)
                return r;
        return dkim_buffer_append(out, f->value + b_end, f->value_len - b_end);
}

/* The seal's hash input (§5.1.1): the sets first..i in order, each AAR, AMS, AS relaxed,
 * the AS of instance i with b= empty and without its final CRLF. */
static int seal_input(const char *msg, const ArcChain *c, unsigned first, unsigned i, DkimBuffer *out) {
        _cleanup_(dkim_buffer_done) DkimBuffer blanked = DKIM_BUFFER_NULL;
        Rfc5322Field f;
        size_t offset = 0;
        int r;

        for (unsigned k = first; k <= i; k++) {
                r = dkim_canon_header(DKIM_CANON_RELAXED, msg, c->aar[k], out);
                if (r < 0)
                        return r;
                r = dkim_canon_header(DKIM_CANON_RELAXED, msg, c->ams[k], out);
                if (r < 0)
                        return r;
                if (k < i) {
                        r = dkim_canon_header(DKIM_CANON_RELAXED, msg, c->as[k], out);
                        if (r < 0)
                                return r;
                }
        }

        r = blank_b(msg, c->as[i], c->seals[i]->b_region_start, c->seals[i]->b_region_end, &blanked);
        if (r < 0)
                return r;
        r = dkim_buffer_append(&blanked, "\r\n", 2);
        if (r < 0)
                return r;
        r = rfc5322_field_next(blanked.data, blanked.len, NULL, &offset, NULL, &f);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;
        r = dkim_canon_header(DKIM_CANON_RELAXED, blanked.data, &f, out);
        if (r < 0)
                return r;
        out->len -= 2;
        out->data[out->len] = 0;
        return 0;
}

/* Fetch and parse the key of selector/domain and check it fits algorithm a. Returns 1 with
 * *ret, 0 with *ret_reason (the chain fails), or -ENOMEM. */
static int get_key(DkimGetKey get, void *userdata, const char *selector, const char *domain,
                   DkimAlgorithm a, DkimKey **ret, const char **ret_reason) {
        _cleanup_(dkim_key_freep) DkimKey *key = NULL;
        _cleanup_free_ char *txt = NULL;
        const char *why = NULL;
        int r;

        r = get(selector, domain, &txt, userdata);
        if (r == -ENOMEM)
                return r;
        if (r == -ENXIO) {
                *ret_reason = "no key record for this selector";
                return 0;
        }
        if (r < 0) {
                *ret_reason = "key record lookup failed (temporary)";
                return 0;
        }
        r = dkim_key_parse(txt, strlen(txt), &key, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_reason = why;
                return 0;
        }
        if (key->revoked)
                *ret_reason = "key revoked (empty p=)";
        else if ((key->type == DKIM_KEY_RSA) != (a == DKIM_ALGORITHM_RSA_SHA256))
                *ret_reason = "key type does not match a=";
        else if (!key->sha256_allowed)
                *ret_reason = "key record h= does not allow sha256";
        else {
                *ret = TAKE_PTR(key);
                return 1;
        }
        return 0;
}

/* Validate the AMS of instance i. 1 pass, 0 fail (*ret_reason), negative errno. */
static int verify_ams(const char *msg, size_t len, const ArcChain *c, unsigned i,
                      DkimGetKey get, void *userdata, const char **ret_reason) {
        _cleanup_(arc_message_signature_freep) ArcMessageSignature *ams = NULL;
        _cleanup_(dkim_buffer_done) DkimBuffer blanked = DKIM_BUFFER_NULL, data = DKIM_BUFFER_NULL;
        _cleanup_(dkim_key_freep) DkimKey *key = NULL;
        const Rfc5322Field *f = c->ams[i];
        uint8_t bh[32];
        int r;

        r = arc_message_signature_parse(f->value, f->value_len, &ams, ret_reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;

        r = get_key(get, userdata, ams->selector, ams->domain, ams->algorithm, &key, ret_reason);
        if (r <= 0)
                return r;

        r = dkim_sign_body_hash(msg, len, ams->body_canon, UINT64_MAX, bh);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || CRYPTO_memcmp(bh, ams->body_hash, 32) != 0) {
                *ret_reason = "AMS body hash did not verify";
                return 0;
        }

        r = blank_b(msg, f, ams->b_region_start, ams->b_region_end, &blanked);
        if (r < 0)
                return r;
        r = dkim_canon_signed_headers(ams->header_canon, msg, c->fields, c->n_fields,
                                      ams->headers, ams->n_headers, blanked.data, blanked.len, &data);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_reason = "AMS cannot be canonicalized";
                return 0;
        }
        r = dkim_verify_signature_data(ams->algorithm, key->pkey, &data, ams->signature, ams->signature_len);
        if (r < 0)
                return r;
        if (r == 0)
                *ret_reason = "AMS signature did not verify";
        return r;
}

static int verify_seal(const char *msg, const ArcChain *c, unsigned i,
                       DkimGetKey get, void *userdata, const char **ret_reason) {
        _cleanup_(dkim_buffer_done) DkimBuffer data = DKIM_BUFFER_NULL;
        _cleanup_(dkim_key_freep) DkimKey *key = NULL;
        const ArcSeal *s = c->seals[i];
        int r;

        r = get_key(get, userdata, s->selector, s->domain, s->algorithm, &key, ret_reason);
        if (r <= 0)
                return r;
        r = seal_input(msg, c, 1, i, &data);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_reason = "ARC-Seal cannot be canonicalized";
                return 0;
        }
        r = dkim_verify_signature_data(s->algorithm, key->pkey, &data, s->signature, s->signature_len);
        if (r == 0)
                *ret_reason = "ARC-Seal signature did not verify";
        return r;
}

int arc_verify(const char *msg, size_t len, DkimGetKey get, void *userdata, ArcVerifyResult *ret) {
        ArcChain c = {};
        ArcVerifyResult res;
        const char *why = NULL;
        int r;

        assert(msg || len == 0);
        assert(get);
        assert(ret);

        r = chain_collect(msg, len, 0, &c, &res);
        if (r < 0 || res.status != ARC_CHAIN_PASS)
                goto finish;

        /* §5.2 step 4: the newest AMS. */
        r = verify_ams(msg, len, &c, c.n_sets, get, userdata, &why);
        if (r < 0)
                goto finish;
        if (r == 0) {
                res = (ArcVerifyResult) { .status = ARC_CHAIN_FAIL, .n_sets = c.n_sets,
                                          .failed_instance = c.n_sets, .reason = why };
                r = 0;
                goto finish;
        }

        /* Step 6: every seal, newest first. */
        for (unsigned i = c.n_sets; i >= 1; i--) {
                r = verify_seal(msg, &c, i, get, userdata, &why);
                if (r < 0)
                        goto finish;
                if (r == 0) {
                        res = (ArcVerifyResult) { .status = ARC_CHAIN_FAIL, .n_sets = c.n_sets,
                                                  .failed_instance = i, .reason = why };
                        r = 0;
                        goto finish;
                }
        }

        /* Step 5: oldest-pass, informational. */
        res.oldest_pass = 0;
        for (unsigned i = c.n_sets; i > 1; i--) {
                r = verify_ams(msg, len, &c, i - 1, get, userdata, &why);
                if (r < 0)
                        goto finish;
                if (r == 0) {
                        res.oldest_pass = i;
                        break;
                }
        }
        r = 0;

finish:
        arc_chain_done(&c);
        if (r < 0)
                return r;
        *ret = res;
        return 0;
}

/* Write "Name: tag; tag; ..." folded before a tag that would cross the column limit (only
 * between tags, so that relaxed canonicalization sees "; " everywhere), ending in CRLF.
 * *ret_b_pos is the offset just after "b=", where the signature is inserted later. */
static int build_field(const char *name, char * const *tags, DkimBuffer *out, size_t *ret_b_pos) {
        size_t column;
        int r;

        r = dkim_buffer_append(out, name, strlen(name));
        if (r >= 0)
                r = dkim_buffer_append(out, ":", 1);
        if (r < 0)
                return r;
        column = strlen(name) + 1;

        for (size_t i = 0; tags[i]; i++) {
                size_t tl = strlen(tags[i]);

                if (i > 0) {
                        r = dkim_buffer_append(out, ";", 1);
                        if (r < 0)
                                return r;
                        column++;
                }
                /* b= always starts a line, and its value fills lines of B64_LINE characters:
                 * a verifier's relaxed canonicalization of this field (in the seals that
                 * cover it) keeps those folds as spaces, so the layout is part of what is
                 * signed; this is the layout of the published examples. */
                if ((column + 1 + tl > FOLD_COLUMN || streq(tags[i], "b=")) && i > 0) {
                        r = dkim_buffer_append(out, "\r\n ", 3);
                        column = 1;
                } else {
                        r = dkim_buffer_append(out, " ", 1);
                        column++;
                }
                if (r < 0)
                        return r;
                r = dkim_buffer_append(out, tags[i], tl);
                if (r < 0)
                        return r;
                if (streq(tags[i], "b="))
                        *ret_b_pos = out->len;
                column += tl;
        }
        return dkim_buffer_append(out, "\r\n", 2);
}

/* The field text with b64 inserted at b_pos, cut to fill lines. Everything inserted lies
 * inside the b= value, which a verifier removes, so the signed text is unchanged. */
static int insert_b64(const DkimBuffer *field, size_t b_pos, const char *b64, DkimBuffer *out) {
        size_t column = 0;
        int r;

        for (size_t i = b_pos; i > 0 && field->data[i - 1] != '\n'; i--)
                column++;
        r = dkim_buffer_append(out, field->data, b_pos);
        if (r < 0)
                return r;
        for (size_t i = 0, n = strlen(b64); i < n;) {
                size_t room = column < B64_LINE + 1 ? B64_LINE + 1 - column : 0, piece;

                if (room == 0) {
                        r = dkim_buffer_append(out, "\r\n ", 3);
                        if (r < 0)
                                return r;
                        column = 1;
                        continue;
                }
                piece = MIN(room, n - i);
                r = dkim_buffer_append(out, b64 + i, piece);
                if (r < 0)
                        return r;
                column += piece;
                i += piece;
        }
        return dkim_buffer_append(out, field->data + b_pos, field->len - b_pos);
}

static int algorithm_of_key(EVP_PKEY *key, DkimAlgorithm *ret) {
        switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_RSA:
                if (EVP_PKEY_get_bits(key) < (int) DKIM_KEY_RSA_MIN_BITS)
                        return -EINVAL;
                *ret = DKIM_ALGORITHM_RSA_SHA256;
                return 0;
        case EVP_PKEY_ED25519:
                *ret = DKIM_ALGORITHM_ED25519_SHA256;
                return 0;
        default:
                return -EINVAL;
        }
}

/* An Authentication-Results payload may be folded (CRLF followed by WSP) but holds no other
 * line break and no control character. */
static bool ar_payload_is_valid(const char *ar) {
        for (const char *p = ar; *p; p++) {
                if (*p == '\r') {
                        if (p[1] != '\n' || !IN_SET(p[2], ' ', '\t'))
                                return false;
                        p++;
                } else if (*p == '\n' || ((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f)
                        return false;
        }
        return !isempty(ar);
}

/* The chain that a new seal with cv=fail covers: only the new set (§5.1.2), read from a
 * header block holding just the three new fields. */
static int collect_new_set(const char *buf, size_t len, unsigned inst, ArcChain *c) {
        int r;

        r = dkim_header_fields(buf, len, &c->fields, &c->n_fields, &c->body);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_fields; i++) {
                const Rfc5322Field *f = c->fields + i;

                switch (field_kind(f)) {
                case ARC_FIELD_AAR:
                        c->aar[inst] = f;
                        break;
                case ARC_FIELD_AMS:
                        c->ams[inst] = f;
                        break;
                case ARC_FIELD_AS:
                        c->as[inst] = f;
                        r = seal_parse(f->value, f->value_len, true, &c->seals[inst], NULL);
                        if (r < 0)
                                return r;
                        break;
                default:
                        break;
                }
        }
        if (!c->aar[inst] || !c->ams[inst] || !c->as[inst])
                return -EINVAL;
        return 0;
}

static int tag_printf(char ***tags, const char *fmt, ...) _printf_(2, 3);
static int tag_printf(char ***tags, const char *fmt, ...) {
        char *t = NULL;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&t, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        return strv_consume(tags, t);
}

/* The newest instance found in the header block (any ARC field whose i= reads), and
 * whether the newest ARC-Seal says cv=fail. */
static int newest_instance(const Rfc5322Field *fields, size_t n_fields, unsigned *ret, bool *ret_failed) {
        unsigned newest = 0, newest_seal = 0;
        bool failed = false;
        int r;

        for (size_t i = 0; i < n_fields; i++) {
                _cleanup_(arc_seal_freep) ArcSeal *seal = NULL;
                unsigned k;

                switch (field_kind(fields + i)) {
                case ARC_FIELD_AAR:
                        if (arc_authentication_results_parse(fields[i].value, fields[i].value_len, &k, NULL) == 0)
                                newest = MAX(newest, k);
                        break;
                case ARC_FIELD_AMS:
                        if (field_instance(fields + i, &k) == 0)
                                newest = MAX(newest, k);
                        break;
                case ARC_FIELD_AS:
                        r = arc_seal_parse(fields[i].value, fields[i].value_len, &seal, NULL);
                        if (r == -ENOMEM)
                                return r;
                        if (r == 0) {
                                newest = MAX(newest, seal->instance);
                                if (seal->instance > newest_seal) {
                                        newest_seal = seal->instance;
                                        failed = seal->cv == ARC_CHAIN_FAIL;
                                } else if (seal->instance == newest_seal && seal->cv == ARC_CHAIN_FAIL)
                                        failed = true;
                        } else if (field_instance(fields + i, &k) == 0)
                                newest = MAX(newest, k);
                        break;
                default:
                        break;
                }
        }
        *ret = newest;
        *ret_failed = failed && newest_seal == newest;
        return 0;
}

int arc_seal(const char *msg, size_t len, ArcChainStatus chain, const char *ar,
             const ArcSealer *s, char **ret) {
        _cleanup_(dkim_buffer_done) DkimBuffer aar = DKIM_BUFFER_NULL, ams = DKIM_BUFFER_NULL,
                ams_final = DKIM_BUFFER_NULL, as = DKIM_BUFFER_NULL, with_aar = DKIM_BUFFER_NULL,
                sealed = DKIM_BUFFER_NULL, data = DKIM_BUFFER_NULL, result = DKIM_BUFFER_NULL;
        _cleanup_strv_free_ char **ams_tags = NULL, **as_tags = NULL;
        _cleanup_free_ Rfc5322Field *fields = NULL;
        _cleanup_free_ char *bh64 = NULL, *ams_b64 = NULL, *as_b64 = NULL, *hlist = NULL;
        char * const *names;
        size_t n_fields, n_names, ams_b_pos = 0, as_b_pos = 0;
        unsigned newest, inst;
        bool failed;
        ArcChain c = {};
        ArcVerifyResult res;
        DkimAlgorithm a;
        uint8_t bh[32];
        int r;

        assert(msg || len == 0);
        assert(s);
        assert(ret);

        if (!ar || !ar_payload_is_valid(ar) || !s->key || !s->domain || !s->selector ||
            !dkim_domain_is_valid(s->domain, strlen(s->domain), false) ||
            !dkim_domain_is_valid(s->selector, strlen(s->selector), true) ||
            s->header_canon < 0 || s->header_canon >= _DKIM_CANON_MAX ||
            s->body_canon < 0 || s->body_canon >= _DKIM_CANON_MAX ||
            chain < 0 || chain >= _ARC_CHAIN_STATUS_MAX)
                return -EINVAL;
        r = algorithm_of_key(s->key, &a);
        if (r < 0)
                return r;

        names = s->headers ? s->headers : (char * const *) dkim_sign_default_headers;
        n_names = strv_length(names);
        if (n_names > DKIM_SIGNATURE_MAX_HEADERS)
                return -EINVAL;
        for (size_t i = 0; i < n_names; i++)
                if (isempty(names[i]) || strpbrk(names[i], ": \t\r\n;") || strcaseeq(names[i], "ARC-Seal"))
                        return -EINVAL;

        r = dkim_header_fields(msg, len, &fields, &n_fields, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        r = newest_instance(fields, n_fields, &newest, &failed);
        if (r < 0)
                return r;
        if (failed) {
                *ret = NULL;    /* §5.1 step 1: the chain already failed, nothing to add */
                return 0;
        }
        if (newest >= ARC_MAX_INSTANCES)
                return -ERANGE;
        if ((newest == 0 && chain == ARC_CHAIN_PASS) || (newest > 0 && chain == ARC_CHAIN_NONE))
                return -EINVAL;
        inst = newest + 1;

        /* ARC-Authentication-Results */
        {
                _cleanup_free_ char *t = NULL;
                const char *p = ar;

                while (*p == ' ' || *p == '\t')
                        p++;
                r = asprintf_safe(&t, "ARC-Authentication-Results: i=%u; %s\r\n", inst, p);
                if (r < 0)
                        return r;
                r = dkim_buffer_append(&aar, t, strlen(t));
                if (r < 0)
                        return r;
        }

        /* ARC-Message-Signature, over the message with the new AAR on top so that h= may
         * name it. Tags in alphabetical order, as in RFC 8617's and the test suites'
         * examples. */
        r = dkim_buffer_append(&with_aar, aar.data, aar.len);
        if (r >= 0)
                r = dkim_buffer_append(&with_aar, msg, len);
        if (r < 0)
                return r;
        r = dkim_sign_body_hash(with_aar.data, with_aar.len, s->body_canon, UINT64_MAX, bh);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        r = dkim_base64_encode(bh, sizeof(bh), &bh64);
        if (r < 0)
                return r;
        hlist = strv_join((char**) names, ":");
        if (!hlist)
                return -ENOMEM;

        if ((r = tag_printf(&ams_tags, "a=%s", dkim_algorithm_to_string(a))) < 0 ||
            (r = tag_printf(&ams_tags, "b=")) < 0 ||
            (r = tag_printf(&ams_tags, "bh=%s", bh64)) < 0 ||
            (r = tag_printf(&ams_tags, "c=%s/%s", dkim_canon_to_string(s->header_canon),
                            dkim_canon_to_string(s->body_canon))) < 0 ||
            (r = tag_printf(&ams_tags, "d=%s", s->domain)) < 0 ||
            (r = tag_printf(&ams_tags, "h=%s", hlist)) < 0 ||
            (r = tag_printf(&ams_tags, "i=%u", inst)) < 0 ||
            (r = tag_printf(&ams_tags, "s=%s", s->selector)) < 0 ||
            (s->timestamp > 0 && (r = tag_printf(&ams_tags, "t=%" PRIu64, s->timestamp)) < 0))
                return r;
        r = build_field("ARC-Message-Signature", ams_tags, &ams, &ams_b_pos);
        if (r < 0)
                return r;
        r = dkim_sign_header(with_aar.data, with_aar.len, s->key, a, s->header_canon,
                             names, n_names, ams.data, ams.len, &ams_b64);
        if (r < 0)
                return r;
        r = insert_b64(&ams, ams_b_pos, ams_b64, &ams_final);
        if (r < 0)
                return r;

        /* ARC-Seal: the new set is put in front of the message (or, with cv=fail, alone)
         * and the chain is collected again, so that signing hashes exactly what
         * arc_verify() will. */
        if ((r = tag_printf(&as_tags, "a=%s", dkim_algorithm_to_string(a))) < 0 ||
            (r = tag_printf(&as_tags, "b=")) < 0 ||
            (r = tag_printf(&as_tags, "cv=%s", arc_chain_status_to_string(chain))) < 0 ||
            (r = tag_printf(&as_tags, "d=%s", s->domain)) < 0 ||
            (r = tag_printf(&as_tags, "i=%u", inst)) < 0 ||
            (r = tag_printf(&as_tags, "s=%s", s->selector)) < 0 ||
            (s->timestamp > 0 && (r = tag_printf(&as_tags, "t=%" PRIu64, s->timestamp)) < 0))
                return r;
        r = build_field("ARC-Seal", as_tags, &as, &as_b_pos);
        if (r < 0)
                return r;

        r = dkim_buffer_append(&sealed, as.data, as.len);
        if (r >= 0)
                r = dkim_buffer_append(&sealed, ams_final.data, ams_final.len);
        if (r < 0)
                return r;
        if (chain == ARC_CHAIN_FAIL) {
                r = dkim_buffer_append(&sealed, aar.data, aar.len);
                if (r >= 0)
                        r = dkim_buffer_append(&sealed, "\r\n", 2);
                if (r >= 0)
                        r = collect_new_set(sealed.data, sealed.len, inst, &c);
        } else {
                r = dkim_buffer_append(&sealed, with_aar.data, with_aar.len);
                if (r >= 0)
                        r = chain_collect(sealed.data, sealed.len, inst, &c, &res);
                if (r >= 0 && (res.status != ARC_CHAIN_PASS || res.n_sets != inst))
                        r = -EINVAL;    /* the chain status given contradicts the message */
        }
        if (r >= 0)
                r = seal_input(sealed.data, &c, chain == ARC_CHAIN_FAIL ? inst : 1, inst, &data);
        arc_chain_done(&c);
        if (r < 0)
                return r;
        r = dkim_sign_data(s->key, a, &data, &as_b64);
        if (r < 0)
                return r;

        r = insert_b64(&as, as_b_pos, as_b64, &result);
        if (r >= 0)
                r = dkim_buffer_append(&result, ams_final.data, ams_final.len);
        if (r >= 0)
                r = dkim_buffer_append(&result, aar.data, aar.len);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(result.data);
        return 0;
}
