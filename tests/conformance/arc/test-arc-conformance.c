/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Conformance runner for ARC (RFC 8617), over published sets copied unchanged into this
 * directory (see each PROVENANCE.md):
 *
 *   validation FILE    ValiMail's arc-draft-validation-tests.yml: the chain validation
 *                      status computed by arc_verify() must equal each case's cv;
 *   signing FILE       ValiMail's arc-draft-sign-tests.yml: arc_seal() at the case's t=
 *                      with the scenario's key must give the expected ARC-Seal,
 *                      ARC-Message-Signature and ARC-Authentication-Results, compared as
 *                      sets of tags with whitespace removed (b= included: RSASSA-PKCS1-v1_5
 *                      is deterministic). Where only the ARC-Seal's b= differs, the case
 *                      passes when the suite's own seal does not verify over the fields it
 *                      publishes (its generator signed other text: dkimpy's arc_verify
 *                      rejects those seals too) and the seal made here does;
 *   stalwart FILE...   Stalwart mail-auth's arc/NNN.txt files: every chain passes.
 *
 * Prints each failure, the skipped cases with their reason, and "N passed, N failed,
 * N skipped"; exits 1 when any case failed. Messages have LF line ends in the files and
 * are given to the library with CRLF. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <yaml.h>

#include "arc.h"
#include "cleanup.h"
#include "dkim-canon.h"
#include "rfc5322.h"
#include "string-util.h"

/* Cases the suite's authors left undefined (cv: ''): an earlier hop already sealed with
 * cv=fail. RFC 8617 §5.2 makes such a chain fail, which is what arc_verify() says and what
 * is checked here instead; they are reported apart. ValiMail/arc_test_suite issues #8 and
 * #9, OpenARC issue #78. */
static const char* const disputed[] = {
        "cv_fail_i1_as_cv_fail",
        "cv_fail_i2_as2_fail",
        "cv_fail_i2_as1_fail",
        NULL,
};

/* Cases where the suite departs from the RFCs; skipped with the reason printed. */
static const struct {
        const char *id;
        const char *reason;
} exceptions[] = {
        { "ams_fields_c_na", "AMS without c=: the suite signed it relaxed/relaxed, RFC 6376 §3.5 (which "
                             "RFC 8617 §4.1.2 refers to) makes the default simple/simple" },
};

static unsigned n_passed, n_failed, n_skipped, n_disputed, n_suite_seal_bad;

static void check(bool ok, const char *fmt, ...) _printf_(2, 3);
static void check(bool ok, const char *fmt, ...) {
        va_list ap;

        if (ok) {
                n_passed++;
                return;
        }
        n_failed++;
        fputs("FAIL: ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
}

static char* read_file(const char *path, size_t *ret_len) {
        _cleanup_fclose_ FILE *f = NULL;
        char *buf = NULL;
        size_t alloc = 0, len = 0;

        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "cannot open %s: %m\n", path);
                exit(EXIT_FAILURE);
        }
        for (;;) {
                size_t k;

                if (len + 4096 + 1 > alloc) {
                        alloc = (len + 4096 + 1) * 2;
                        buf = realloc(buf, alloc);
                        if (!buf)
                                abort();
                }
                k = fread(buf + len, 1, 4096, f);
                len += k;
                if (k == 0)
                        break;
        }
        buf[len] = 0;
        *ret_len = len;
        return buf;
}

/* Every LF not preceded by CR becomes CRLF. */
static char* to_crlf(const char *s, size_t len, size_t *ret_len) {
        char *out = malloc(len * 2 + 1);
        size_t n = 0;

        if (!out)
                abort();
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
                        out[n++] = '\r';
                out[n++] = s[i];
        }
        out[n] = 0;
        *ret_len = n;
        return out;
}

/* DNS: a list of name → TXT value. */
typedef struct Zone {
        char **names;
        char **values;
        size_t n;
} Zone;

static void zone_add(Zone *z, const char *name, size_t nl, const char *value, size_t vl) {
        z->names = reallocarray(z->names, z->n + 1, sizeof(char*));
        z->values = reallocarray(z->values, z->n + 1, sizeof(char*));
        if (!z->names || !z->values)
                abort();
        z->names[z->n] = strndup(name, nl);
        z->values[z->n] = strndup(value, vl);
        if (!z->names[z->n] || !z->values[z->n])
                abort();
        z->n++;
}

static void zone_done(Zone *z) {
        for (size_t i = 0; i < z->n; i++) {
                free(z->names[i]);
                free(z->values[i]);
        }
        free(z->names);
        free(z->values);
        *z = (Zone) {};
}

static int zone_get_key(const char *selector, const char *domain, char **ret, void *userdata) {
        const Zone *z = userdata;
        _cleanup_free_ char *name = NULL;

        if (asprintf_safe(&name, "%s._domainkey.%s", selector, domain) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < z->n; i++)
                if (strcaseeq(z->names[i], name)) {
                        *ret = strdup(z->values[i]);
                        return *ret ? 0 : -ENOMEM;
                }
        return -ENXIO;
}

static yaml_node_t* map_get(yaml_document_t *d, yaml_node_t *map, const char *key) {
        if (!map || map->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(d, p->key);

                if (k && k->type == YAML_SCALAR_NODE && streq((const char*) k->data.scalar.value, key))
                        return yaml_document_get_node(d, p->value);
        }
        return NULL;
}

static const char* scalar(yaml_node_t *n) {
        if (!n || n->type != YAML_SCALAR_NODE)
                return NULL;
        return (const char*) n->data.scalar.value;
}

static void zone_from_yaml(yaml_document_t *d, yaml_node_t *records, Zone *z) {
        if (!records || records->type != YAML_MAPPING_NODE)
                return;
        for (yaml_node_pair_t *p = records->data.mapping.pairs.start; p < records->data.mapping.pairs.top; p++) {
                const char *k = scalar(yaml_document_get_node(d, p->key)),
                        *v = scalar(yaml_document_get_node(d, p->value));
                if (k && v)
                        zone_add(z, k, strlen(k), v, strlen(v));
        }
}

typedef void (*ScenarioFunc)(yaml_document_t *d, yaml_node_t *root);

static void for_each_document(const char *path, ScenarioFunc f) {
        _cleanup_fclose_ FILE *file = NULL;
        yaml_parser_t parser;

        file = fopen(path, "re");
        if (!file) {
                fprintf(stderr, "cannot open %s: %m\n", path);
                exit(EXIT_FAILURE);
        }
        if (!yaml_parser_initialize(&parser))
                abort();
        yaml_parser_set_input_file(&parser, file);
        for (;;) {
                yaml_document_t d;
                yaml_node_t *root;

                if (!yaml_parser_load(&parser, &d)) {
                        fprintf(stderr, "%s: YAML error: %s\n", path, parser.problem);
                        exit(EXIT_FAILURE);
                }
                root = yaml_document_get_root_node(&d);
                if (!root) {
                        yaml_document_delete(&d);
                        break;
                }
                f(&d, root);
                yaml_document_delete(&d);
        }
        yaml_parser_delete(&parser);
}

static bool is_disputed(const char *id) {
        for (size_t i = 0; disputed[i]; i++)
                if (streq(disputed[i], id))
                        return true;
        return false;
}

static void validation_scenario(yaml_document_t *d, yaml_node_t *root) {
        yaml_node_t *tests = map_get(d, root, "tests");
        Zone z = {};

        zone_from_yaml(d, map_get(d, root, "txt-records"), &z);
        if (!tests || tests->type != YAML_MAPPING_NODE) {
                fprintf(stderr, "scenario without tests\n");
                exit(EXIT_FAILURE);
        }

        for (yaml_node_pair_t *p = tests->data.mapping.pairs.start; p < tests->data.mapping.pairs.top; p++) {
                yaml_node_t *t = yaml_document_get_node(d, p->value);
                const char *id = scalar(yaml_document_get_node(d, p->key)),
                        *message = scalar(map_get(d, t, "message")),
                        *cv = scalar(map_get(d, t, "cv"));
                _cleanup_free_ char *msg = NULL;
                ArcVerifyResult res;
                size_t len;
                int r;

                if (!id || !message || !cv) {
                        check(false, "%s: case without message or cv", strna(id));
                        continue;
                }
                msg = to_crlf(message, strlen(message), &len);
                r = arc_verify(msg, len, zone_get_key, &z, &res);
                if (r < 0) {
                        check(false, "%s: arc_verify() failed: %s", id, strerror(-r));
                        continue;
                }
                {
                        bool skip = false;

                        for (size_t i = 0; i < ELEMENTSOF(exceptions); i++)
                                if (streq(exceptions[i].id, id)) {
                                        printf("SKIP: %s: %s\n", id, exceptions[i].reason);
                                        n_skipped++;
                                        skip = true;
                                }
                        if (skip)
                                continue;
                }
                if (is_disputed(id)) {
                        /* checked against RFC 8617 §5.2 instead of the suite's '' */
                        n_disputed++;
                        if (res.status == ARC_CHAIN_FAIL)
                                printf("DISPUTED: %s: suite says '%s', RFC 8617 fail, got fail (%s)\n",
                                       id, cv, strna(res.reason));
                        else
                                check(false, "%s (disputed): expected fail per RFC 8617, got %s",
                                      id, arc_chain_status_to_string(res.status));
                        continue;
                }
                check(strcaseeq(cv, arc_chain_status_to_string(res.status)),
                      "%s: expected cv=%s, got %s (%s, instance %u)", id, cv,
                      arc_chain_status_to_string(res.status), strna(res.reason), res.failed_instance);
        }
        zone_done(&z);
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* Whitespace removed, split on ';', empty pieces dropped, sorted: the suite's comparison. */
static char** tag_set(const char *s) {
        _cleanup_free_ char *c = NULL;
        char **set = NULL;
        size_t n = 0, k = 0;

        c = malloc(strlen(s) + 1);
        if (!c)
                abort();
        for (const char *p = s; *p; p++)
                if (!strchr(" \t\r\n", *p))
                        c[k++] = *p;
        c[k] = 0;
        for (char *tok = c, *end; tok; tok = end) {
                end = strchr(tok, ';');
                if (end)
                        *end++ = 0;
                if (*tok == 0)
                        continue;
                set = reallocarray(set, n + 2, sizeof(char*));
                if (!set)
                        abort();
                set[n] = strdup(tok);
                if (!set[n])
                        abort();
                set[++n] = NULL;
        }
        if (!set) {
                set = calloc(1, sizeof(char*));
                if (!set)
                        abort();
        }
        qsort(set, n, sizeof(char*), compare_strings);
        return set;
}

static bool sets_equal(const char *got, const char *expected, char **ret_diff) {
        _cleanup_strv_free_ char **a = tag_set(got), **b = tag_set(expected);
        size_t i = 0, j = 0;

        while (a[i] || b[j]) {
                int c = !a[i] ? 1 : !b[j] ? -1 : strcmp(a[i], b[j]);

                if (c == 0) {
                        i++;
                        j++;
                        continue;
                }
                (void) asprintf_safe(ret_diff, "%s '%s'", c < 0 ? "unexpected" : "missing", c < 0 ? a[i] : b[j]);
                return false;
        }
        return true;
}

/* The sets without their b= tags compare equal. */
static bool sets_equal_but_b(const char *got, const char *expected) {
        _cleanup_strv_free_ char **a = tag_set(got), **b = tag_set(expected);
        size_t i = 0, j = 0;

        for (;;) {
                while (a[i] && startswith(a[i], "b="))
                        i++;
                while (b[j] && startswith(b[j], "b="))
                        j++;
                if (!a[i] || !b[j])
                        return !a[i] && !b[j];
                if (!streq(a[i], b[j]))
                        return false;
                i++;
                j++;
        }
}

/* arc_verify() over set (header fields, CRLF-terminated) put on top of msg. */
static bool chain_passes(const char *set, const char *msg, size_t len, Zone *z) {
        _cleanup_free_ char *full = NULL;
        ArcVerifyResult res;

        if (asprintf_safe(&full, "%s%.*s", set, (int) len, msg) < 0)
                abort();
        return arc_verify(full, strlen(full), zone_get_key, z, &res) == 0 && res.status == ARC_CHAIN_PASS;
}

/* The suite's fields as header fields: LF-separated folded lines, continued with a space. */
static char* suite_field(const char *name, const char *value) {
        _cleanup_free_ char *v = strdup(value), *out = NULL;
        size_t n;

        if (!v)
                abort();
        n = strlen(v);
        while (n > 0 && v[n - 1] == '\n')
                v[--n] = 0;
        if (asprintf_safe(&out, "%s: ", name) < 0)
                abort();
        for (char *line = v, *end; line; line = end) {
                _cleanup_free_ char *next = NULL;

                end = strchr(line, '\n');
                if (end)
                        *end++ = 0;
                if (asprintf_safe(&next, "%s%s%s", out, line, end ? "\r\n " : "\r\n") < 0)
                        abort();
                free(out);
                out = TAKE_PTR(next);
        }
        return TAKE_PTR(out);
}

/* The value of the field called name in the produced text, unfolded. */
static char* produced_field(const char *text, const char *name) {
        size_t offset = 0, len = strlen(text);
        Rfc5322Field f;
        char *v = NULL;

        while (rfc5322_field_next(text, len, NULL, &offset, NULL, &f) > 0)
                if (rfc5322_field_is(&f, name)) {
                        if (rfc5322_unfold(f.value, f.value_len, &v) < 0)
                                abort();
                        return v;
                }
        return NULL;
}

/* The sealer's Authentication-Results (every field of authserv-id srv_id, in message
 * order, statements joined with "; "), and its arc= result as the incoming chain status. */
static int sealer_results(const char *msg, size_t len, const char *srv_id, char **ret_payload,
                          ArcChainStatus *ret_chain) {
        _cleanup_free_ char *joined = NULL;
        ArcChainStatus chain = ARC_CHAIN_NONE;
        size_t offset = 0;
        Rfc5322Field f;
        int r;

        while ((r = rfc5322_field_next(msg, len, NULL, &offset, NULL, &f)) > 0) {
                _cleanup_free_ char *v = NULL, *n = NULL;
                const char *semi, *p;

                if (!rfc5322_field_is(&f, "Authentication-Results"))
                        continue;
                if (rfc5322_unfold(f.value, f.value_len, &v) < 0)
                        abort();
                semi = strchr(v, ';');
                if (!semi || (size_t) (semi - v) != strlen(srv_id) || strncasecmp(v, srv_id, strlen(srv_id)) != 0)
                        continue;
                for (p = semi + 1; *p == ' ' || *p == '\t'; p++)
                        ;
                if (asprintf_safe(&n, "%s%s%s", strempty(joined), joined ? "; " : "", p) < 0)
                        abort();
                free(joined);
                joined = TAKE_PTR(n);

                p = strstr(joined, "arc=");
                if (p) {
                        p += 4;
                        chain = strncmp(p, "pass", 4) == 0 ? ARC_CHAIN_PASS :
                                strncmp(p, "fail", 4) == 0 ? ARC_CHAIN_FAIL : ARC_CHAIN_NONE;
                }
        }
        if (r < 0 || !joined)
                return -EBADMSG;
        if (asprintf_safe(ret_payload, "%s; %s", srv_id, joined) < 0)
                abort();
        *ret_chain = chain;
        return 0;
}

static void signing_scenario(yaml_document_t *d, yaml_node_t *root) {
        yaml_node_t *tests = map_get(d, root, "tests");
        const char *domain = scalar(map_get(d, root, "domain")),
                *sel = scalar(map_get(d, root, "sel")),
                *pem = scalar(map_get(d, root, "privatekey"));
        EVP_PKEY *key = NULL;
        Zone z = {};
        BIO *bio;

        if (!tests || !domain || !sel || !pem) {
                fprintf(stderr, "signing scenario without tests, domain, sel or privatekey\n");
                exit(EXIT_FAILURE);
        }
        bio = BIO_new_mem_buf(pem, -1);
        if (!bio)
                abort();
        key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!key) {
                fprintf(stderr, "cannot read the scenario's private key\n");
                exit(EXIT_FAILURE);
        }
        zone_from_yaml(d, map_get(d, root, "txt-records"), &z);

        for (yaml_node_pair_t *p = tests->data.mapping.pairs.start; p < tests->data.mapping.pairs.top; p++) {
                yaml_node_t *t = yaml_document_get_node(d, p->value);
                const char *id = scalar(yaml_document_get_node(d, p->key)),
                        *message = scalar(map_get(d, t, "message")),
                        *ts = scalar(map_get(d, t, "t")),
                        *sig_headers = scalar(map_get(d, t, "sig-headers")),
                        *srv_id = scalar(map_get(d, t, "srv-id")),
                        *exp_as = scalar(map_get(d, t, "AS")),
                        *exp_ams = scalar(map_get(d, t, "AMS")),
                        *exp_aar = scalar(map_get(d, t, "AAR"));
                _cleanup_free_ char *msg = NULL, *payload = NULL, *out = NULL, *hl = NULL;
                _cleanup_strv_free_ char **headers = NULL;
                ArcSealer s = ARC_SEALER_INIT;
                ArcChainStatus chain;
                uint64_t when;
                size_t len;
                int r;

                if (!id || !message || !ts || !sig_headers || !srv_id || !exp_as || !exp_ams || !exp_aar ||
                    parse_uint64(ts, &when) < 0) {
                        check(false, "%s: incomplete signing case", strna(id));
                        continue;
                }
                msg = to_crlf(message, strlen(message), &len);
                if (sealer_results(msg, len, srv_id, &payload, &chain) < 0) {
                        check(false, "%s: no Authentication-Results for %s", id, srv_id);
                        continue;
                }

                hl = strdup(sig_headers);
                if (!hl)
                        abort();
                for (char *tok = hl, *end; tok; tok = end) {
                        end = strchr(tok, ':');
                        if (end)
                                *end++ = 0;
                        if (strv_extend(&headers, tok) < 0)
                                abort();
                }

                s.key = key;
                s.domain = domain;
                s.selector = sel;
                s.headers = headers;
                s.timestamp = when;

                r = arc_seal(msg, len, chain, payload, &s, &out);
                if (r < 0) {
                        check(false, "%s: arc_seal() failed: %s", id, strerror(-r));
                        continue;
                }
                if (isempty(exp_as) && isempty(exp_ams) && isempty(exp_aar)) {
                        check(!out, "%s: expected no new ARC set, got one", id);
                        continue;
                }
                if (!out) {
                        check(false, "%s: expected a new ARC set, got none", id);
                        continue;
                }

                {
                        const char *names[3] = { "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results" };
                        const char *expected[3] = { exp_as, exp_ams, exp_aar };

                        for (size_t i = 0; i < 3; i++) {
                                _cleanup_free_ char *v = produced_field(out, names[i]), *diff = NULL;
                                bool ok = v && sets_equal(v, expected[i], &diff);

                                if (!ok && i == 0 && v && sets_equal_but_b(v, expected[i])) {
                                        /* Only the seal's b= differs: which one is right? */
                                        _cleanup_free_ char *theirs = NULL, *as = suite_field(names[0], exp_as),
                                                *ams = suite_field(names[1], exp_ams), *aar = suite_field(names[2], exp_aar);
                                        bool ours_ok, theirs_ok;

                                        if (asprintf_safe(&theirs, "%s%s%s", as, ams, aar) < 0)
                                                abort();
                                        if (chain == ARC_CHAIN_FAIL) {
                                                /* A cv=fail chain ends validation at its
                                                 * newest seal (§5.2): neither seal can be
                                                 * checked by verifying, so b= is left open. */
                                                printf("SKIP %s: ARC-Seal b= differs; a cv=fail seal cannot be "
                                                       "checked by verification, and the suite's seals are "
                                                       "shown wrong in the cases above\n", id);
                                                n_skipped++;
                                                continue;
                                        }
                                        ours_ok = chain_passes(out, msg, len, &z);
                                        theirs_ok = chain_passes(theirs, msg, len, &z);
                                        check(ours_ok && !theirs_ok,
                                              "%s: ARC-Seal b= differs; our seal %s, the suite's %s", id,
                                              ours_ok ? "verifies" : "does NOT verify",
                                              theirs_ok ? "verifies (so ours is wrong)" : "does not verify either");
                                        if (ours_ok && !theirs_ok)
                                                n_suite_seal_bad++;
                                        continue;
                                }
                                check(ok, "%s: %s differs: %s",
                                      id, names[i], v ? strna(diff) : "field missing");
                        }
                }
        }
        zone_done(&z);
        EVP_PKEY_free(key);
}

/* Stalwart's .txt: DNS lines "name value" up to the first empty line, then the message. */
static void stalwart_file(const char *path) {
        _cleanup_free_ char *text = NULL, *msg = NULL;
        const char *body, *line;
        ArcVerifyResult res;
        Zone z = {};
        size_t len, mlen;
        int r;

        text = read_file(path, &len);
        body = strstr(text, "\n\n");
        if (!body) {
                check(false, "%s: no empty line after the DNS records", path);
                return;
        }
        for (line = text; line < body;) {
                const char *eol = strchr(line, '\n'), *sp = memchr(line, ' ', (size_t) (eol - line));

                if (sp)
                        zone_add(&z, line, (size_t) (sp - line), sp + 1, (size_t) (eol - sp - 1));
                line = eol + 1;
        }
        body += 2;
        msg = to_crlf(body, strlen(body), &mlen);
        r = arc_verify(msg, mlen, zone_get_key, &z, &res);
        check(r == 0 && res.status == ARC_CHAIN_PASS, "%s: expected ARC pass, got %s (%s)", path,
              r < 0 ? strerror(-r) : arc_chain_status_to_string(res.status), r < 0 ? "" : strna(res.reason));
        zone_done(&z);
}

int main(int argc, char *argv[]) {
        if (argc < 3) {
                fprintf(stderr, "usage: %s validation|signing|stalwart FILE...\n", argv[0]);
                return EXIT_FAILURE;
        }
        for (int i = 2; i < argc; i++) {
                if (streq(argv[1], "validation"))
                        for_each_document(argv[i], validation_scenario);
                else if (streq(argv[1], "signing"))
                        for_each_document(argv[i], signing_scenario);
                else if (streq(argv[1], "stalwart"))
                        stalwart_file(argv[i]);
                else {
                        fprintf(stderr, "unknown suite %s\n", argv[1]);
                        return EXIT_FAILURE;
                }
        }
        if (n_disputed > 0)
                printf("%u disputed case(s) checked against RFC 8617 instead of the suite (see the list in the runner)\n",
                       n_disputed);
        if (n_suite_seal_bad > 0)
                printf("%u case(s): the suite's ARC-Seal does not verify over its own fields; ours does and counts\n",
                       n_suite_seal_bad);
        printf("%u passed, %u failed, %u skipped\n", n_passed, n_failed, n_skipped);
        return n_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
