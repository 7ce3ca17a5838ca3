/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "dmarc-record.h"
#include "string-util.h"

static const char* const dmarc_policy_table[_DMARC_POLICY_MAX] = {
        [DMARC_POLICY_NONE] = "none",
        [DMARC_POLICY_QUARANTINE] = "quarantine",
        [DMARC_POLICY_REJECT] = "reject",
};

const char* dmarc_policy_to_string(DmarcPolicy p) {
        if (p < 0 || p >= _DMARC_POLICY_MAX)
                return NULL;
        return dmarc_policy_table[p];
}

DmarcPolicy dmarc_policy_from_string(const char *s) {
        if (!s)
                return _DMARC_POLICY_INVALID;
        for (DmarcPolicy p = 0; p < _DMARC_POLICY_MAX; p++)
                if (strcaseeq(s, dmarc_policy_table[p]))
                        return p;
        return _DMARC_POLICY_INVALID;
}

const char* dmarc_alignment_to_string(DmarcAlignment a) {
        switch (a) {
        case DMARC_ALIGNMENT_RELAXED:
                return "r";
        case DMARC_ALIGNMENT_STRICT:
                return "s";
        default:
                return NULL;
        }
}

static void dmarc_uris_free(DmarcUri *u, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(u[i].uri);
        free(u);
}

void dmarc_record_done(DmarcRecord *r) {
        if (!r)
                return;
        dmarc_uris_free(r->rua, r->n_rua);
        dmarc_uris_free(r->ruf, r->n_ruf);
        *r = (DmarcRecord) DMARC_RECORD_NULL;
}

static inline bool is_wsp(char c) {
        return c == ' ' || c == '\t';
}

static inline bool is_alpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static inline bool is_hex(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the version tag at the start of s ("v" *WSP "=" *WSP "DMARC1"), or 0 when s
 * does not start with it. The value is compared exactly (RFC 7489 §6.3: "MUST match
 * precisely"); the tag name follows ABNF's case-insensitive literals. */
static size_t version_len(const char *s, size_t len) {
        size_t i = 0;

        if (len < 1 || (s[0] != 'v' && s[0] != 'V'))
                return 0;
        i = 1;
        while (i < len && is_wsp(s[i]))
                i++;
        if (i >= len || s[i] != '=')
                return 0;
        i++;
        while (i < len && is_wsp(s[i]))
                i++;
        if (len - i < STRLEN("DMARC1") || memcmp(s + i, "DMARC1", STRLEN("DMARC1")) != 0)
                return 0;
        i += STRLEN("DMARC1");
        if (i < len && !is_wsp(s[i]) && s[i] != ';')
                return 0;       /* "DMARC10", "DMARC1x" */
        return i;
}

bool dmarc_record_is_dmarc(const char *s, size_t len) {
        return s && version_len(s, len) > 0;
}

/* 1*n DIGIT into a uint64_t; false on anything else or overflow past max. */
static bool parse_decimal(const char *s, size_t len, size_t max_digits, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > max_digits)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (!is_digit(s[i]))
                        return false;
                if (v > (max - (uint64_t) (s[i] - '0')) / 10)
                        return false;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        *ret = v;
        return true;
}

static DmarcPolicy parse_policy(const char *v) {
        return dmarc_policy_from_string(v);
}

static DmarcAlignment parse_alignment(const char *v) {
        if (strcaseeq(v, "r"))
                return DMARC_ALIGNMENT_RELAXED;
        if (strcaseeq(v, "s"))
                return DMARC_ALIGNMENT_STRICT;
        return _DMARC_ALIGNMENT_INVALID;
}

/* The characters RFC 3986 allows in a URI, without ',' and '!' which DMARC reserves as
 * separators (§6.4: they must be percent-encoded inside a report URI). */
static bool uri_char_ok(char c) {
        if (is_alpha(c) || is_digit(c))
                return true;
        return strchr("-._~:/?#[]@$&'()*+;=", c) && c != '\0';
}

/* dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]. The URI must be absolute
 * (scheme ":" something). */
static int parse_uri(const char *s, size_t len, DmarcUri *ret) {
        const char *bang;
        size_t ulen, i;
        uint64_t size = 0;

        bang = memchr(s, '!', len);
        ulen = bang ? (size_t) (bang - s) : len;

        /* scheme */
        if (ulen == 0 || !is_alpha(s[0]))
                return -EBADMSG;
        for (i = 1; i < ulen && s[i] != ':'; i++)
                if (!is_alpha(s[i]) && !is_digit(s[i]) && !strchr("+-.", s[i]))
                        return -EBADMSG;
        if (i >= ulen || i + 1 >= ulen)         /* no ':' or nothing after it */
                return -EBADMSG;
        for (i++; i < ulen; i++) {
                if (s[i] == '%') {
                        if (i + 2 >= ulen)
                                return -EBADMSG;
                        if (!is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                                return -EBADMSG;
                        i += 2;
                        continue;
                }
                if (!uri_char_ok(s[i]))
                        return -EBADMSG;
        }

        if (bang) {
                const char *n = bang + 1;
                size_t nlen = len - ulen - 1;
                unsigned shift = 0;

                if (nlen > 0 && !is_digit(n[nlen - 1])) {
                        switch (n[nlen - 1]) {
                        case 'k': case 'K': shift = 10; break;
                        case 'm': case 'M': shift = 20; break;
                        case 'g': case 'G': shift = 30; break;
                        case 't': case 'T': shift = 40; break;
                        default:
                                return -EBADMSG;
                        }
                        nlen--;
                }
                if (!parse_decimal(n, nlen, 20, UINT64_MAX >> shift, &size))
                        return -EBADMSG;
                size <<= shift;
        }

        ret->uri = strndup(s, ulen);
        if (!ret->uri)
                return -ENOMEM;
        ret->max_size = size;
        return 0;
}

/* Comma-separated list; invalid URIs are dropped (return 0 and *ret_dropped = true). */
static int parse_uri_list(const char *v, DmarcUri **ret, size_t *ret_n, bool *ret_dropped) {
        DmarcUri *list = NULL;
        size_t n = 0;
        bool dropped = false;
        const char *p = v;
        int r;

        list = calloc(DMARC_URIS_MAX, sizeof(DmarcUri));
        if (!list)
                return -ENOMEM;

        for (;;) {
                const char *e = strchrnul(p, ',');
                const char *a = p, *b = e;

                while (a < b && is_wsp(*a))
                        a++;
                while (b > a && is_wsp(b[-1]))
                        b--;

                if (n >= DMARC_URIS_MAX)
                        dropped = true;
                else {
                        r = parse_uri(a, (size_t) (b - a), &list[n]);
                        if (r == -ENOMEM) {
                                dmarc_uris_free(list, n);
                                return r;
                        }
                        if (r < 0)
                                dropped = true;
                        else
                                n++;
                }

                if (*e == '\0')
                        break;
                p = e + 1;
        }

        if (n == 0) {
                free(list);
                list = NULL;
        }
        *ret = list;
        *ret_n = n;
        *ret_dropped = dropped;
        return 0;
}

/* fo=: 0 / 1 / d / s, colon-separated; false on any unknown option. */
static bool parse_fo(const char *v, DmarcFailureOptions *ret) {
        DmarcFailureOptions fo = 0;
        const char *p = v;

        for (;;) {
                const char *e = strchrnul(p, ':');
                const char *a = p, *b = e;

                while (a < b && is_wsp(*a))
                        a++;
                while (b > a && is_wsp(b[-1]))
                        b--;
                if (b - a != 1)
                        return false;
                switch (*a) {
                case '0': fo |= DMARC_FO_ALL_FAIL; break;
                case '1': fo |= DMARC_FO_ANY_FAIL; break;
                case 'd': case 'D': fo |= DMARC_FO_DKIM; break;
                case 's': case 'S': fo |= DMARC_FO_SPF; break;
                default:
                        return false;
                }
                if (*e == '\0')
                        break;
                p = e + 1;
        }
        *ret = fo;
        return true;
}

/* rf=: colon-separated keywords; unknown formats are ignored, but at least one known one
 * must be present for the tag to count. */
static bool parse_rf(const char *v, DmarcReportFormats *ret) {
        DmarcReportFormats rf = 0;
        const char *p = v;

        for (;;) {
                const char *e = strchrnul(p, ':');
                const char *a = p, *b = e;

                while (a < b && is_wsp(*a))
                        a++;
                while (b > a && is_wsp(b[-1]))
                        b--;
                if (b == a)
                        return false;
                for (const char *c = a; c < b; c++)
                        if (!is_alpha(*c) && !is_digit(*c) && *c != '-')
                                return false;
                if (b - a == 4 && strncasecmp(a, "afrf", 4) == 0)
                        rf |= DMARC_RF_AFRF;
                if (*e == '\0')
                        break;
                p = e + 1;
        }
        if (rf == 0)
                return false;
        *ret = rf;
        return true;
}

typedef enum KnownTag {
        KT_P, KT_SP, KT_NP, KT_ADKIM, KT_ASPF, KT_PCT, KT_RUA, KT_RUF, KT_FO, KT_RF, KT_RI, KT_PSD,
        KT_V,
        _KT_MAX,
        _KT_INVALID = -EINVAL,
} KnownTag;

static const char* const known_tag_table[_KT_MAX] = {
        [KT_P] = "p", [KT_SP] = "sp", [KT_NP] = "np", [KT_ADKIM] = "adkim", [KT_ASPF] = "aspf",
        [KT_PCT] = "pct", [KT_RUA] = "rua", [KT_RUF] = "ruf", [KT_FO] = "fo", [KT_RF] = "rf",
        [KT_RI] = "ri", [KT_PSD] = "psd", [KT_V] = "v",
};

static KnownTag known_tag_from(const char *s, size_t len) {
        for (KnownTag t = 0; t < _KT_MAX; t++)
                if (strlen(known_tag_table[t]) == len && strncasecmp(s, known_tag_table[t], len) == 0)
                        return t;
        return _KT_INVALID;
}

static void set_reason(const char **ret_reason, const char *reason) {
        if (ret_reason)
                *ret_reason = reason;
}

int dmarc_record_parse(const char *s, size_t len, DmarcRecord *ret, const char **ret_reason) {
        _cleanup_(dmarc_record_done) DmarcRecord rec = DMARC_RECORD_NULL;
        bool p_valid = false, sp_invalid = false;
        unsigned seen = 1U << KT_V;
        size_t pos;
        int r;

        assert(s || len == 0);
        assert(ret);

        if (len > DMARC_RECORD_MAX) {
                set_reason(ret_reason, "record too long");
                return -E2BIG;
        }
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 ? s[i] != '\t' : s[i] == 0x7f) {
                        set_reason(ret_reason, "control character in record");
                        return -EBADMSG;
                }

        pos = version_len(s, len);
        if (pos == 0) {
                set_reason(ret_reason, "record does not start with v=DMARC1");
                return -EBADMSG;
        }

        rec.adkim = DMARC_ALIGNMENT_RELAXED;
        rec.aspf = DMARC_ALIGNMENT_RELAXED;
        rec.pct = 100;
        rec.fo = DMARC_FO_ALL_FAIL;
        rec.rf = DMARC_RF_AFRF;
        rec.ri = 86400;
        rec.psd = DMARC_PSD_UNSPECIFIED;

        while (pos < len && is_wsp(s[pos]))
                pos++;
        if (pos < len && s[pos] != ';') {
                set_reason(ret_reason, "no ';' after v=DMARC1");
                return -EBADMSG;
        }

        while (pos < len) {
                const char *piece, *eq, *name_end, *val;
                _cleanup_free_ char *value = NULL;
                size_t plen, end;
                KnownTag t;

                assert(s[pos] == ';');
                pos++;
                end = pos;
                while (end < len && s[end] != ';')
                        end++;
                piece = s + pos;
                plen = end - pos;
                pos = end;

                while (plen > 0 && is_wsp(piece[0]))
                        piece++, plen--;
                while (plen > 0 && is_wsp(piece[plen - 1]))
                        plen--;
                if (plen == 0)
                        continue;       /* "; ;" and a trailing ';' are tolerated */

                eq = memchr(piece, '=', plen);
                if (!eq) {
                        rec.invalid_tags |= DMARC_TAG_OTHER;
                        continue;
                }
                name_end = eq;
                while (name_end > piece && is_wsp(name_end[-1]))
                        name_end--;
                if (name_end == piece || !is_alpha(piece[0])) {
                        rec.invalid_tags |= DMARC_TAG_OTHER;
                        continue;
                }
                bool name_ok = true;
                for (const char *c = piece; c < name_end; c++)
                        if (!is_alpha(*c) && !is_digit(*c) && *c != '_')
                                name_ok = false;
                if (!name_ok) {
                        rec.invalid_tags |= DMARC_TAG_OTHER;
                        continue;
                }

                t = known_tag_from(piece, (size_t) (name_end - piece));
                if (t < 0)
                        continue;       /* unknown tags are ignored (§6.3) */
                if (seen & (1U << t)) {
                        set_reason(ret_reason, t == KT_V ? "v= given twice" : "a tag is given twice");
                        return -EBADMSG;
                }
                seen |= 1U << t;

                val = eq + 1;
                while (val < piece + plen && is_wsp(*val))
                        val++;
                value = strndup(val, (size_t) (piece + plen - val));
                if (!value)
                        return -ENOMEM;

                switch (t) {

                case KT_P: {
                        DmarcPolicy p = parse_policy(value);
                        if (p < 0)
                                rec.invalid_tags |= DMARC_TAG_P;
                        else {
                                rec.p = p;
                                p_valid = true;
                        }
                        break;
                }

                case KT_SP: {
                        DmarcPolicy p = parse_policy(value);
                        if (p < 0) {
                                rec.invalid_tags |= DMARC_TAG_SP;
                                sp_invalid = true;
                        } else
                                rec.sp = p;
                        break;
                }

                case KT_NP: {
                        DmarcPolicy p = parse_policy(value);
                        if (p < 0)
                                rec.invalid_tags |= DMARC_TAG_NP;
                        else
                                rec.np = p;
                        break;
                }

                case KT_ADKIM:
                case KT_ASPF: {
                        DmarcAlignment a = parse_alignment(value);
                        if (a < 0)
                                rec.invalid_tags |= t == KT_ADKIM ? DMARC_TAG_ADKIM : DMARC_TAG_ASPF;
                        else if (t == KT_ADKIM)
                                rec.adkim = a;
                        else
                                rec.aspf = a;
                        break;
                }

                case KT_PCT: {
                        uint64_t v;
                        if (parse_decimal(value, strlen(value), 3, 100, &v))
                                rec.pct = (unsigned) v;
                        else
                                rec.invalid_tags |= DMARC_TAG_PCT;
                        break;
                }

                case KT_RI: {
                        uint64_t v;
                        if (parse_decimal(value, strlen(value), 32, UINT32_MAX, &v))
                                rec.ri = (uint32_t) v;
                        else
                                rec.invalid_tags |= DMARC_TAG_RI;
                        break;
                }

                case KT_RUA:
                case KT_RUF: {
                        bool dropped;
                        r = parse_uri_list(value,
                                           t == KT_RUA ? &rec.rua : &rec.ruf,
                                           t == KT_RUA ? &rec.n_rua : &rec.n_ruf,
                                           &dropped);
                        if (r < 0)
                                return r;
                        if (dropped)
                                rec.invalid_tags |= t == KT_RUA ? DMARC_TAG_RUA : DMARC_TAG_RUF;
                        break;
                }

                case KT_FO:
                        if (!parse_fo(value, &rec.fo))
                                rec.invalid_tags |= DMARC_TAG_FO;
                        break;

                case KT_RF:
                        if (!parse_rf(value, &rec.rf))
                                rec.invalid_tags |= DMARC_TAG_RF;
                        break;

                case KT_PSD:
                        if (strcaseeq(value, "y"))
                                rec.psd = DMARC_PSD_YES;
                        else if (strcaseeq(value, "n"))
                                rec.psd = DMARC_PSD_NO;
                        else if (strcaseeq(value, "u"))
                                rec.psd = DMARC_PSD_UNSPECIFIED;
                        else
                                rec.invalid_tags |= DMARC_TAG_PSD;
                        break;

                default:
                        assert(false);  /* KT_V is caught as a duplicate above */
                }
        }

        if (!p_valid || sp_invalid) {
                /* §6.3 / §6.6.3: act as "v=DMARC1; p=none" when rua= holds a valid URI,
                 * otherwise the record is not usable. */
                if (rec.n_rua == 0) {
                        set_reason(ret_reason,
                                   sp_invalid ? "invalid sp= value and no valid rua= URI" :
                                   (rec.invalid_tags & DMARC_TAG_P) ? "invalid p= value and no valid rua= URI" :
                                   "no p= tag and no valid rua= URI");
                        return -EBADMSG;
                }
                rec.p = DMARC_POLICY_NONE;
                rec.sp = _DMARC_POLICY_INVALID;
                rec.np = _DMARC_POLICY_INVALID;
                rec.p_from_rua = true;
        }

        *ret = rec;
        rec = (DmarcRecord) DMARC_RECORD_NULL;
        return 0;
}

int dmarc_record_select(const DnsAnswer *a, DmarcRecord *ret, const char **ret_reason) {
        const DnsRecord *found = NULL;
        int r;

        assert(a);
        assert(ret);

        for (size_t i = 0; i < a->n_records; i++) {
                const DnsRecord *rr = a->records + i;

                if (rr->type != DNS_TYPE_TXT || !rr->txt.data)
                        continue;
                if (!dmarc_record_is_dmarc(rr->txt.data, rr->txt.len))
                        continue;
                if (found) {
                        set_reason(ret_reason, "several v=DMARC1 records");
                        return -ENOTUNIQ;
                }
                found = rr;
        }
        if (!found)
                return 0;

        r = dmarc_record_parse(found->txt.data, found->txt.len, ret, ret_reason);
        if (r < 0)
                return r;
        return 1;
}
