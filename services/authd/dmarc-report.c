/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cleanup.h"
#include "dmarc-report.h"
#include "fd-util.h"
#include "string-util.h"

/* ---- string tables ---- */

static const char* const spf_result_table[_DMARC_REPORT_SPF_MAX] = {
        [DMARC_REPORT_SPF_NONE] = "none",
        [DMARC_REPORT_SPF_NEUTRAL] = "neutral",
        [DMARC_REPORT_SPF_PASS] = "pass",
        [DMARC_REPORT_SPF_FAIL] = "fail",
        [DMARC_REPORT_SPF_SOFTFAIL] = "softfail",
        [DMARC_REPORT_SPF_TEMPERROR] = "temperror",
        [DMARC_REPORT_SPF_PERMERROR] = "permerror",
};

static const char* const spf_scope_table[_DMARC_REPORT_SPF_SCOPE_MAX] = {
        [DMARC_REPORT_SPF_SCOPE_MFROM] = "mfrom",
        [DMARC_REPORT_SPF_SCOPE_HELO] = "helo",
};

static const char* const dkim_result_table[_DMARC_REPORT_DKIM_MAX] = {
        [DMARC_REPORT_DKIM_NONE] = "none",
        [DMARC_REPORT_DKIM_PASS] = "pass",
        [DMARC_REPORT_DKIM_FAIL] = "fail",
        [DMARC_REPORT_DKIM_POLICY] = "policy",
        [DMARC_REPORT_DKIM_NEUTRAL] = "neutral",
        [DMARC_REPORT_DKIM_TEMPERROR] = "temperror",
        [DMARC_REPORT_DKIM_PERMERROR] = "permerror",
};

static const char* const override_table[_DMARC_OVERRIDE_MAX] = {
        [DMARC_OVERRIDE_FORWARDED] = "forwarded",
        [DMARC_OVERRIDE_SAMPLED_OUT] = "sampled_out",
        [DMARC_OVERRIDE_TRUSTED_FORWARDER] = "trusted_forwarder",
        [DMARC_OVERRIDE_MAILING_LIST] = "mailing_list",
        [DMARC_OVERRIDE_LOCAL_POLICY] = "local_policy",
        [DMARC_OVERRIDE_OTHER] = "other",
};

static int table_lookup(const char* const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

#define TABLE_TO_STRING(table, v) \
        ((v) >= 0 && (size_t) (v) < ELEMENTSOF(table) ? table[(v)] : NULL)

const char* dmarc_report_spf_result_to_string(DmarcReportSpfResult r) {
        return TABLE_TO_STRING(spf_result_table, r);
}
DmarcReportSpfResult dmarc_report_spf_result_from_string(const char *s) {
        return table_lookup(spf_result_table, ELEMENTSOF(spf_result_table), s);
}
const char* dmarc_report_spf_scope_to_string(DmarcReportSpfScope s) {
        return TABLE_TO_STRING(spf_scope_table, s);
}
DmarcReportSpfScope dmarc_report_spf_scope_from_string(const char *s) {
        return table_lookup(spf_scope_table, ELEMENTSOF(spf_scope_table), s);
}
const char* dmarc_report_dkim_result_to_string(DmarcReportDkimResult r) {
        return TABLE_TO_STRING(dkim_result_table, r);
}
DmarcReportDkimResult dmarc_report_dkim_result_from_string(const char *s) {
        return table_lookup(dkim_result_table, ELEMENTSOF(dkim_result_table), s);
}
const char* dmarc_override_to_string(DmarcOverride o) {
        return TABLE_TO_STRING(override_table, o);
}
DmarcOverride dmarc_override_from_string(const char *s) {
        return table_lookup(override_table, ELEMENTSOF(override_table), s);
}

static DmarcAlignment alignment_from_string(const char *s) {
        if (streq_ptr(s, "r"))
                return DMARC_ALIGNMENT_RELAXED;
        if (streq_ptr(s, "s"))
                return DMARC_ALIGNMENT_STRICT;
        return _DMARC_ALIGNMENT_INVALID;
}

/* ---- entries ---- */

void dmarc_report_entry_done(DmarcReportEntry *e) {
        if (!e)
                return;
        free(e->source_ip);
        free(e->header_from);
        free(e->envelope_from);
        free(e->envelope_to);
        free(e->spf_domain);
        for (size_t i = 0; i < e->n_dkim; i++) {
                free(e->dkim[i].domain);
                free(e->dkim[i].selector);
        }
        free(e->dkim);
        free(e->policy_domain);
        free(e->fo);
        for (size_t i = 0; i < e->n_rua; i++)
                free(e->rua[i]);
        free(e->rua);
        for (size_t i = 0; i < e->n_reasons; i++)
                free(e->reasons[i].comment);
        free(e->reasons);
        *e = (DmarcReportEntry) DMARC_REPORT_ENTRY_NULL;
}

void dmarc_report_entries_free(DmarcReportEntry *entries, size_t n) {
        for (size_t i = 0; i < n; i++)
                dmarc_report_entry_done(&entries[i]);
        free(entries);
}

static int strdup_or_null(const char *s, char **ret) {
        char *c = NULL;

        if (s) {
                c = strdup(s);
                if (!c)
                        return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int dmarc_report_entry_add_reason(DmarcReportEntry *e, DmarcOverride type, const char *comment) {
        _cleanup_free_ char *c = NULL;
        DmarcReportReason *n;

        assert(e);
        if (type < 0 || type >= _DMARC_OVERRIDE_MAX)
                return -EINVAL;
        if (e->n_reasons >= DMARC_REPORT_REASONS_MAX)
                return -E2BIG;
        if (strdup_or_null(comment, &c) < 0)
                return -ENOMEM;
        n = reallocarray(e->reasons, e->n_reasons + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        e->reasons = n;
        e->reasons[e->n_reasons++] = (DmarcReportReason) { .type = type, .comment = TAKE_PTR(c) };
        return 0;
}

int dmarc_report_arc_override_comment(unsigned instance, const char *domain, const char *selector, char **ret) {
        assert(ret);

        if (instance == 0 || isempty(domain) || isempty(selector))
                return -EINVAL;
        return asprintf_safe(ret, "arc=pass as[%u].d=%s as[%u].s=%s", instance, domain, instance, selector) < 0 ?
                -ENOMEM : 0;
}

int dmarc_report_entry_set_arc_override(DmarcReportEntry *e, unsigned instance, const char *domain,
                                        const char *selector) {
        _cleanup_free_ char *comment = NULL;
        int r;

        assert(e);

        r = dmarc_report_arc_override_comment(instance, domain, selector, &comment);
        if (r < 0)
                return r;
        r = dmarc_report_entry_add_reason(e, DMARC_OVERRIDE_LOCAL_POLICY, comment);
        if (r < 0)
                return r;
        e->disposition = DMARC_POLICY_NONE;
        return 0;
}

int dmarc_report_entry_add_dkim(DmarcReportEntry *e, const char *domain, const char *selector,
                                DmarcReportDkimResult result) {
        _cleanup_free_ char *d = NULL, *s = NULL;
        DmarcReportDkim *n;

        assert(e);
        if (!domain || result < 0 || result >= _DMARC_REPORT_DKIM_MAX)
                return -EINVAL;
        if (e->n_dkim >= DMARC_REPORT_DKIM_MAX)
                return -E2BIG;
        if (strdup_or_null(domain, &d) < 0 || strdup_or_null(selector, &s) < 0)
                return -ENOMEM;
        n = reallocarray(e->dkim, e->n_dkim + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        e->dkim = n;
        e->dkim[e->n_dkim++] = (DmarcReportDkim) {
                .domain = TAKE_PTR(d),
                .selector = TAKE_PTR(s),
                .result = result,
        };
        return 0;
}

static char* fo_to_string(DmarcFailureOptions fo) {
        char buf[16] = "";

        if (fo & DMARC_FO_ALL_FAIL)
                strcat(buf, "0:");
        if (fo & DMARC_FO_ANY_FAIL)
                strcat(buf, "1:");
        if (fo & DMARC_FO_DKIM)
                strcat(buf, "d:");
        if (fo & DMARC_FO_SPF)
                strcat(buf, "s:");
        if (buf[0] == '\0')
                return strdup("0");
        buf[strlen(buf) - 1] = '\0';
        return strdup(buf);
}

int dmarc_report_entry_set_result(DmarcReportEntry *e, const DmarcResult *r) {
        const DmarcRecord *rec;
        int k;

        assert(e);
        assert(r);

        if (!r->have_record || !r->policy_domain)
                return -ENODATA;
        rec = &r->record;

        if (!e->header_from && r->from_domain) {
                e->header_from = strdup(r->from_domain);
                if (!e->header_from)
                        return -ENOMEM;
        }
        e->policy_domain = strdup(r->policy_domain);
        e->fo = fo_to_string(rec->fo);
        if (!e->policy_domain || !e->fo)
                return -ENOMEM;
        e->adkim = rec->adkim;
        e->aspf = rec->aspf;
        e->p = rec->p;
        e->sp = rec->sp >= 0 ? rec->sp : rec->p;
        e->np = rec->np;
        e->pct = rec->pct;
        if (rec->n_rua > 0) {
                e->rua = calloc(rec->n_rua, sizeof(char*));
                if (!e->rua)
                        return -ENOMEM;
                for (size_t i = 0; i < rec->n_rua; i++) {
                        e->rua[i] = strdup(rec->rua[i].uri);
                        if (!e->rua[i])
                                return -ENOMEM;
                        e->n_rua++;
                }
        }
        e->disposition = r->disposition;
        e->dkim_aligned = r->dkim_aligned;
        e->spf_aligned = r->spf_aligned;
        if (r->sampled_out) {
                k = dmarc_report_entry_add_reason(e, DMARC_OVERRIDE_SAMPLED_OUT, NULL);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* ---- days ---- */

int dmarc_report_day_format(uint64_t t, char ret[static 11]) {
        struct tm tm;
        time_t tt;

        if (t > (uint64_t) INT32_MAX * 64)      /* far beyond any real date */
                return -ERANGE;
        tt = (time_t) t;
        if (!gmtime_r(&tt, &tm))
                return -ERANGE;
        if (strftime(ret, 11, "%Y-%m-%d", &tm) != 10)
                return -ERANGE;
        return 0;
}

static bool is_leap(unsigned y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int dmarc_report_day_parse(const char *s, uint64_t *ret) {
        static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        unsigned y, m, d;
        uint64_t days = 0;

        assert(ret);
        if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
                return -EINVAL;
        for (size_t i = 0; i < 10; i++)
                if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
                        return -EINVAL;
        y = (unsigned) ((s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0'));
        m = (unsigned) ((s[5] - '0') * 10 + (s[6] - '0'));
        d = (unsigned) ((s[8] - '0') * 10 + (s[9] - '0'));
        if (y < 1970 || m < 1 || m > 12 || d < 1)
                return -EINVAL;
        if (d > mdays[m - 1] + (m == 2 && is_leap(y)))
                return -EINVAL;
        for (unsigned i = 1970; i < y; i++)
                days += is_leap(i) ? 366 : 365;
        for (unsigned i = 1; i < m; i++)
                days += mdays[i - 1] + (i == 2 && is_leap(y));
        days += d - 1;
        *ret = days * DMARC_DAY_SEC;
        return 0;
}

/* ---- the store line ----
 *
 *   DMARC1 t=<secs> ip=<ip> hf=<..> ef=<..> et=<..> sd=<..> ss=<scope> sr=<result>
 *          dk=<domain>,<selector>,<result> ... pd=<..> ad=r|s as=r|s p=<..> sp=<..> np=<..>|-
 *          pct=<n> fo=<..> rua=<uri> ... dis=<..> de=pass|fail se=pass|fail
 *          rs=<type>,<comment> ... crc=<crc32 of everything before " crc=", 8 hex digits>
 *
 * on one line. Values are percent-escaped: every byte outside '!'..'~', and '%', ',' and
 * '=' become %XX, so a value never contains a space, a comma or a line end. An absent
 * value is written as nothing ("et="). Unknown keys are ignored (a newer writer may add
 * some); a line without a valid crc= is damaged. */

static bool esc_needed(unsigned char c) {
        return c <= ' ' || c >= 0x7f || IN_SET(c, '%', ',', '=');
}

static void put_escaped(FILE *f, const char *s) {
        for (; s && *s; s++) {
                unsigned char c = (unsigned char) *s;

                if (esc_needed(c))
                        fprintf(f, "%%%02X", c);
                else
                        fputc(c, f);
        }
}

static void put_field(FILE *f, const char *key, const char *value) {
        fprintf(f, " %s=", key);
        put_escaped(f, value);
}

static bool ip_valid(const char *s) {
        unsigned char buf[16];

        return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

static bool policy_valid(DmarcPolicy p) {
        return p >= 0 && p < _DMARC_POLICY_MAX;
}

static bool alignment_valid(DmarcAlignment a) {
        return a >= 0 && a < _DMARC_ALIGNMENT_MAX;
}

static int entry_validate(const DmarcReportEntry *e) {
        if (isempty(e->header_from) || isempty(e->policy_domain) || !ip_valid(e->source_ip))
                return -EINVAL;
        if (!policy_valid(e->p) || !policy_valid(e->sp) || !policy_valid(e->disposition))
                return -EINVAL;
        if (e->np >= _DMARC_POLICY_MAX || !alignment_valid(e->adkim) || !alignment_valid(e->aspf))
                return -EINVAL;
        if (e->pct > 100 || !dmarc_report_spf_result_to_string(e->spf_result) ||
            !dmarc_report_spf_scope_to_string(e->spf_scope))
                return -EINVAL;
        if (e->n_dkim > DMARC_REPORT_DKIM_MAX || e->n_reasons > DMARC_REPORT_REASONS_MAX ||
            e->n_rua > DMARC_URIS_MAX)
                return -E2BIG;
        for (size_t i = 0; i < e->n_dkim; i++)
                if (!e->dkim[i].domain || !dmarc_report_dkim_result_to_string(e->dkim[i].result))
                        return -EINVAL;
        for (size_t i = 0; i < e->n_reasons; i++)
                if (!dmarc_override_to_string(e->reasons[i].type))
                        return -EINVAL;
        for (size_t i = 0; i < e->n_rua; i++)
                if (!e->rua[i])
                        return -EINVAL;
        return 0;
}

/* The part of a line that decides which rows of a report are identical: everything
 * except the time and the policy record. */
static void put_row_fields(FILE *f, const DmarcReportEntry *e) {
        put_field(f, "ip", e->source_ip);
        put_field(f, "hf", e->header_from);
        put_field(f, "ef", e->envelope_from);
        put_field(f, "et", e->envelope_to);
        put_field(f, "sd", e->spf_domain);
        fprintf(f, " ss=%s sr=%s",
                dmarc_report_spf_scope_to_string(e->spf_scope),
                dmarc_report_spf_result_to_string(e->spf_result));
        for (size_t i = 0; i < e->n_dkim; i++) {
                fputs(" dk=", f);
                put_escaped(f, e->dkim[i].domain);
                fputc(',', f);
                put_escaped(f, e->dkim[i].selector);
                fprintf(f, ",%s", dmarc_report_dkim_result_to_string(e->dkim[i].result));
        }
        fprintf(f, " dis=%s de=%s se=%s",
                dmarc_policy_to_string(e->disposition),
                e->dkim_aligned ? "pass" : "fail",
                e->spf_aligned ? "pass" : "fail");
        for (size_t i = 0; i < e->n_reasons; i++) {
                fprintf(f, " rs=%s,", dmarc_override_to_string(e->reasons[i].type));
                put_escaped(f, e->reasons[i].comment);
        }
}

static int memstream_finish(FILE **f, char **buf, size_t *len) {
        int r = 0;

        if (ferror(*f))
                r = -ENOMEM;
        if (fclose(*f) != 0 && r == 0)
                r = -ENOMEM;
        *f = NULL;
        if (r < 0) {
                free(*buf);
                *buf = NULL;
                *len = 0;
        }
        return r;
}

int dmarc_store_format_line(const DmarcReportEntry *e, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        assert(e);
        assert(ret);

        r = entry_validate(e);
        if (r < 0)
                return r;

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "DMARC1 t=%llu", (unsigned long long) e->time);
        put_row_fields(f, e);
        put_field(f, "pd", e->policy_domain);
        fprintf(f, " ad=%s as=%s p=%s sp=%s np=%s pct=%u",
                dmarc_alignment_to_string(e->adkim), dmarc_alignment_to_string(e->aspf),
                dmarc_policy_to_string(e->p), dmarc_policy_to_string(e->sp),
                e->np >= 0 ? dmarc_policy_to_string(e->np) : "-", e->pct);
        put_field(f, "fo", e->fo);
        for (size_t i = 0; i < e->n_rua; i++)
                put_field(f, "rua", e->rua[i]);
        r = memstream_finish(&f, &buf, &len);
        if (r < 0)
                return r;

        if (len + STRLEN(" crc=00000000\n") > DMARC_STORE_LINE_MAX)
                return -E2BIG;

        uLong crc = crc32(0L, (const Bytef*) buf, (uInt) len);
        char *n = realloc(buf, len + STRLEN(" crc=00000000\n") + 1);
        if (!n)
                return -ENOMEM;
        buf = n;
        len += (size_t) sprintf(buf + len, " crc=%08lx\n", (unsigned long) crc);

        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -EINVAL;
}

static int unescape(const char *s, size_t n, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t k = 0;

        out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c == '%') {
                        int hi, lo;

                        if (i + 2 >= n)
                                return -EBADMSG;
                        hi = unhex(s[i + 1]);
                        lo = unhex(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EBADMSG;
                        c = (unsigned char) (hi << 4 | lo);
                        if (c == '\0')
                                return -EBADMSG;
                        i += 2;
                } else if (esc_needed(c))
                        return -EBADMSG;
                out[k++] = (char) c;
        }
        out[k] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

enum {
        SEEN_T = 1 << 0, SEEN_IP = 1 << 1, SEEN_HF = 1 << 2, SEEN_EF = 1 << 3, SEEN_ET = 1 << 4,
        SEEN_SD = 1 << 5, SEEN_SS = 1 << 6, SEEN_SR = 1 << 7, SEEN_PD = 1 << 8, SEEN_AD = 1 << 9,
        SEEN_AS = 1 << 10, SEEN_P = 1 << 11, SEEN_SP = 1 << 12, SEEN_NP = 1 << 13, SEEN_PCT = 1 << 14,
        SEEN_FO = 1 << 15, SEEN_DIS = 1 << 16, SEEN_DE = 1 << 17, SEEN_SE = 1 << 18,
};
#define SEEN_REQUIRED (SEEN_T | SEEN_IP | SEEN_HF | SEEN_PD | SEEN_P | SEEN_SP | SEEN_DIS | \
                       SEEN_DE | SEEN_SE | SEEN_SS | SEEN_SR | SEEN_AD | SEEN_AS | SEEN_PCT)

static int pass_fail(const char *v, bool *ret) {
        if (streq(v, "pass"))
                *ret = true;
        else if (streq(v, "fail"))
                *ret = false;
        else
                return -EBADMSG;
        return 0;
}

/* Split "a,b" (raw, escaped) at the first comma. */
static int split2(const char *v, size_t n, char **ret_a, char **ret_b) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        const char *comma = memchr(v, ',', n);
        int r;

        if (!comma)
                return -EBADMSG;
        r = unescape(v, (size_t) (comma - v), &a);
        if (r < 0)
                return r;
        r = unescape(comma + 1, n - (size_t) (comma - v) - 1, &b);
        if (r < 0)
                return r;
        *ret_a = TAKE_PTR(a);
        *ret_b = TAKE_PTR(b);
        return 0;
}

static int set_string(char **field, const char *v, size_t n) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = unescape(v, n, &s);
        if (r < 0)
                return r;
        free(*field);
        *field = isempty(s) ? NULL : TAKE_PTR(s);
        return 0;
}

static int parse_token(DmarcReportEntry *e, const char *key, size_t klen, const char *v, size_t n,
                       unsigned *seen) {
        _cleanup_free_ char *s = NULL, *a = NULL, *b = NULL;
        static const struct {
                const char *key;
                unsigned bit;
        } singles[] = {
                { "t", SEEN_T }, { "ip", SEEN_IP }, { "hf", SEEN_HF }, { "ef", SEEN_EF },
                { "et", SEEN_ET }, { "sd", SEEN_SD }, { "ss", SEEN_SS }, { "sr", SEEN_SR },
                { "pd", SEEN_PD }, { "ad", SEEN_AD }, { "as", SEEN_AS }, { "p", SEEN_P },
                { "sp", SEEN_SP }, { "np", SEEN_NP }, { "pct", SEEN_PCT }, { "fo", SEEN_FO },
                { "dis", SEEN_DIS }, { "de", SEEN_DE }, { "se", SEEN_SE },
        };
        char k[8];
        int r, x;

        if (klen == 0 || klen >= sizeof(k))
                return 0;                       /* unknown key: ignored */
        memcpy(k, key, klen);
        k[klen] = '\0';

        if (streq(k, "dk")) {
                const char *comma = memchr(v, ',', n);

                if (!comma)
                        return -EBADMSG;
                r = split2(comma + 1, n - (size_t) (comma - v) - 1, &a, &b);
                if (r < 0)
                        return r;
                x = dmarc_report_dkim_result_from_string(b);
                if (x < 0)
                        return -EBADMSG;
                r = unescape(v, (size_t) (comma - v), &s);
                if (r < 0)
                        return r;
                if (isempty(s))
                        return -EBADMSG;
                r = dmarc_report_entry_add_dkim(e, s, isempty(a) ? NULL : a, x);
                return r == -ENOMEM ? r : (r < 0 ? -EBADMSG : 0);
        }
        if (streq(k, "rs")) {
                r = split2(v, n, &a, &b);
                if (r < 0)
                        return r;
                x = dmarc_override_from_string(a);
                if (x < 0)
                        return -EBADMSG;
                r = dmarc_report_entry_add_reason(e, x, isempty(b) ? NULL : b);
                return r == -ENOMEM ? r : (r < 0 ? -EBADMSG : 0);
        }
        if (streq(k, "rua")) {
                char **l;

                if (e->n_rua >= DMARC_URIS_MAX)
                        return -EBADMSG;
                r = unescape(v, n, &s);
                if (r < 0)
                        return r;
                if (isempty(s))
                        return -EBADMSG;
                l = reallocarray(e->rua, e->n_rua + 1, sizeof(char*));
                if (!l)
                        return -ENOMEM;
                e->rua = l;
                e->rua[e->n_rua++] = TAKE_PTR(s);
                return 0;
        }

        unsigned bit = 0;
        for (size_t i = 0; i < ELEMENTSOF(singles); i++)
                if (streq(singles[i].key, k))
                        bit = singles[i].bit;
        if (bit == 0)
                return 0;                       /* unknown key: ignored */
        if (*seen & bit)
                return -EBADMSG;
        *seen |= bit;

        switch (bit) {
        case SEEN_IP:
                return set_string(&e->source_ip, v, n);
        case SEEN_HF:
                return set_string(&e->header_from, v, n);
        case SEEN_EF:
                return set_string(&e->envelope_from, v, n);
        case SEEN_ET:
                return set_string(&e->envelope_to, v, n);
        case SEEN_SD:
                return set_string(&e->spf_domain, v, n);
        case SEEN_PD:
                return set_string(&e->policy_domain, v, n);
        case SEEN_FO:
                return set_string(&e->fo, v, n);
        default:
                break;
        }

        /* The rest are plain tokens. */
        r = unescape(v, n, &s);
        if (r < 0)
                return r;

        switch (bit) {
        case SEEN_T: {
                uint64_t t;

                if (parse_uint64(s, &t) < 0)
                        return -EBADMSG;
                e->time = t;
                return 0;
        }
        case SEEN_PCT:
                if (parse_unsigned(s, &e->pct) < 0 || e->pct > 100)
                        return -EBADMSG;
                return 0;
        case SEEN_SS:
                x = dmarc_report_spf_scope_from_string(s);
                if (x < 0)
                        return -EBADMSG;
                e->spf_scope = x;
                return 0;
        case SEEN_SR:
                x = dmarc_report_spf_result_from_string(s);
                if (x < 0)
                        return -EBADMSG;
                e->spf_result = x;
                return 0;
        case SEEN_AD:
        case SEEN_AS:
                x = alignment_from_string(s);
                if (x < 0)
                        return -EBADMSG;
                if (bit == SEEN_AD)
                        e->adkim = x;
                else
                        e->aspf = x;
                return 0;
        case SEEN_P:
        case SEEN_SP:
        case SEEN_NP:
        case SEEN_DIS:
                if (bit == SEEN_NP && streq(s, "-")) {
                        e->np = _DMARC_POLICY_INVALID;
                        return 0;
                }
                /* dmarc_policy_from_string() is case-insensitive; we wrote lower case */
                if (!IN_SET(s[0], 'n', 'q', 'r'))
                        return -EBADMSG;
                x = dmarc_policy_from_string(s);
                if (x < 0)
                        return -EBADMSG;
                if (bit == SEEN_P)
                        e->p = x;
                else if (bit == SEEN_SP)
                        e->sp = x;
                else if (bit == SEEN_NP)
                        e->np = x;
                else
                        e->disposition = x;
                return 0;
        case SEEN_DE:
                return pass_fail(s, &e->dkim_aligned) < 0 ? -EBADMSG : 0;
        case SEEN_SE:
                return pass_fail(s, &e->spf_aligned) < 0 ? -EBADMSG : 0;
        }
        return 0;
}

/* 0 and *ret filled, -EBADMSG for a damaged line, -ENOMEM. */
static int parse_line(const char *line, size_t len, DmarcReportEntry *ret) {
        _cleanup_(dmarc_report_entry_done) DmarcReportEntry e = DMARC_REPORT_ENTRY_NULL;
        const size_t crc_len = STRLEN(" crc=00000000");
        unsigned long want = 0;
        unsigned seen = 0;
        size_t body;
        int r;

        if (len < crc_len + STRLEN("DMARC1") || len > DMARC_STORE_LINE_MAX)
                return -EBADMSG;
        body = len - crc_len;
        if (memcmp(line + body, " crc=", 5) != 0)
                return -EBADMSG;
        for (size_t i = body + 5; i < len; i++) {
                int h = unhex(line[i]);

                if (h < 0 || (line[i] >= 'A' && line[i] <= 'F'))
                        return -EBADMSG;
                want = want << 4 | (unsigned long) h;
        }
        if (crc32(0L, (const Bytef*) line, (uInt) body) != want)
                return -EBADMSG;

        if (body < STRLEN("DMARC1") || memcmp(line, "DMARC1", 6) != 0 ||
            (body > 6 && line[6] != ' '))
                return -EBADMSG;

        for (size_t i = 6; i < body; ) {
                const char *tok, *eq, *sp;
                size_t tlen;

                if (line[i] != ' ')
                        return -EBADMSG;
                i++;
                tok = line + i;
                sp = memchr(tok, ' ', body - i);
                tlen = sp ? (size_t) (sp - tok) : body - i;
                eq = memchr(tok, '=', tlen);
                if (!eq)
                        return -EBADMSG;
                r = parse_token(&e, tok, (size_t) (eq - tok), eq + 1, tlen - (size_t) (eq - tok) - 1, &seen);
                if (r < 0)
                        return r;
                i += tlen;
        }

        if ((seen & SEEN_REQUIRED) != SEEN_REQUIRED)
                return -EBADMSG;
        if (entry_validate(&e) < 0)
                return -EBADMSG;

        *ret = e;
        e = (DmarcReportEntry) DMARC_REPORT_ENTRY_NULL;
        return 0;
}

int dmarc_store_parse(const char *data, size_t size,
                      DmarcReportEntry **ret_entries, size_t *ret_n, unsigned *ret_skipped) {
        DmarcReportEntry *entries = NULL;
        size_t n = 0, allocated = 0;
        unsigned skipped = 0;
        int r;

        assert(data || size == 0);
        assert(ret_entries);
        assert(ret_n);

        for (size_t i = 0; i < size; ) {
                const char *nl = memchr(data + i, '\n', size - i);
                size_t end = nl ? (size_t) (nl - data) : size;
                DmarcReportEntry e;

                if (end == i) {                 /* empty line: the terminator of a damaged one */
                        i = end + 1;
                        continue;
                }
                /* A line without its "\n" was cut short: damaged even if it parses. */
                r = nl ? parse_line(data + i, end - i, &e) : -EBADMSG;
                if (r == -ENOMEM) {
                        dmarc_report_entries_free(entries, n);
                        return r;
                }
                if (r < 0)
                        skipped++;
                else {
                        if (n >= allocated) {
                                size_t a = MAX(allocated * 2, (size_t) 64);
                                DmarcReportEntry *m = reallocarray(entries, a, sizeof(*m));

                                if (!m) {
                                        dmarc_report_entry_done(&e);
                                        dmarc_report_entries_free(entries, n);
                                        return -ENOMEM;
                                }
                                entries = m;
                                allocated = a;
                        }
                        entries[n++] = e;
                }
                i = end + 1;
        }

        *ret_entries = entries;
        *ret_n = n;
        if (ret_skipped)
                *ret_skipped = skipped;
        return 0;
}

/* ---- the store ---- */

struct DmarcStore {
        int dir_fd;
        int fd;                 /* file of current_day, or -1 */
        uint64_t current_day;
        unsigned unsynced;
};

int dmarc_store_open(const char *state_dir, DmarcStore **ret) {
        _cleanup_close_ int dir_fd = -1;
        DmarcStore *s;

        assert(state_dir);
        assert(ret);

        dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        s = calloc(1, sizeof(DmarcStore));
        if (!s)
                return -ENOMEM;
        s->dir_fd = TAKE_FD(dir_fd);
        s->fd = -1;
        *ret = s;
        return 0;
}

static int store_sync(DmarcStore *s) {
        int r = 0;

        if (s->fd >= 0 && s->unsynced > 0) {
                if (fsync(s->fd) < 0)
                        r = -errno;
                else
                        s->unsynced = 0;
        }
        return r;
}

int dmarc_store_flush(DmarcStore *s) {
        assert(s);
        return store_sync(s);
}

DmarcStore* dmarc_store_free(DmarcStore *s) {
        if (!s)
                return NULL;
        (void) store_sync(s);
        safe_close(s->fd);
        safe_close(s->dir_fd);
        free(s);
        return NULL;
}

static int store_file_name(uint64_t day_begin, char ret[static 32]) {
        char day[11];
        int r;

        r = dmarc_report_day_format(day_begin, day);
        if (r < 0)
                return r;
        (void) snprintf(ret, 32, "dmarc-%s.log", day);
        return 0;
}

static int store_switch_day(DmarcStore *s, uint64_t day) {
        _cleanup_close_ int fd = -1;
        char name[32];
        struct stat st;
        int r;

        if (s->fd >= 0 && s->current_day == day)
                return 0;

        r = store_file_name(day, name);
        if (r < 0)
                return r;
        fd = openat(s->dir_fd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size > 0) {
                /* A crash may have cut the last line short: end it, so the next record
                 * starts on a line of its own (the damaged one is skipped on reading). */
                _cleanup_close_ int rfd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                char c;

                if (rfd < 0)
                        return -errno;
                if (pread(rfd, &c, 1, st.st_size - 1) != 1)
                        return errno > 0 ? -errno : -EIO;
                if (c != '\n') {
                        r = loop_write(fd, "\n", 1);
                        if (r < 0)
                                return r;
                }
        }

        r = store_sync(s);
        if (r < 0)
                return r;
        safe_close(s->fd);
        s->fd = TAKE_FD(fd);
        s->current_day = day;
        s->unsynced = 0;
        return 0;
}

int dmarc_report_record(DmarcStore *s, const DmarcReportEntry *e) {
        _cleanup_free_ char *line = NULL;
        size_t len;
        int r;

        assert(s);
        assert(e);

        r = dmarc_store_format_line(e, &line, &len);
        if (r < 0)
                return r;
        r = store_switch_day(s, e->time - e->time % DMARC_DAY_SEC);
        if (r < 0)
                return r;
        /* One write() per line: O_APPEND keeps lines of concurrent writers apart. */
        r = loop_write(s->fd, line, len);
        if (r < 0)
                return r;
        if (++s->unsynced >= DMARC_STORE_SYNC_BATCH)
                return store_sync(s);
        return 0;
}

int dmarc_store_read_day(const char *state_dir, uint64_t day_begin,
                         DmarcReportEntry **ret_entries, size_t *ret_n, unsigned *ret_skipped) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        char name[32];
        size_t size = 0;
        int r;

        assert(state_dir);

        r = store_file_name(day_begin, name);
        if (r < 0)
                return r;
        if (asprintf_safe(&path, "%s/%s", state_dir, name) < 0)
                return -ENOMEM;
        r = read_full_file(path, (size_t) 1024U * 1024U * 1024U, &data, &size);
        if (r < 0)
                return r;
        return dmarc_store_parse(data, size, ret_entries, ret_n, ret_skipped);
}

/* ---- aggregation and XML ---- */

void dmarc_report_done(DmarcReport *r) {
        if (!r)
                return;
        free(r->policy_domain);
        free(r->report_id);
        free(r->file_name);
        strv_free(r->rua);
        free(r->xml);
        *r = (DmarcReport) {};
}

void dmarc_reports_free(DmarcReport *reports, size_t n) {
        for (size_t i = 0; i < n; i++)
                dmarc_report_done(&reports[i]);
        free(reports);
}

/* Text for XML character data: the five special characters as entities; bytes outside
 * printable ASCII (XML 1.0 forbids most control characters, and stored values need not
 * be UTF-8) become '?'. Identifiers are A-labels, so nothing real is lost. */
static void put_xml(FILE *f, const char *s) {
        for (; s && *s; s++)
                switch (*s) {
                case '&':
                        fputs("&amp;", f);
                        break;
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                case '"':
                        fputs("&quot;", f);
                        break;
                case '\'':
                        fputs("&apos;", f);
                        break;
                default:
                        fputc((unsigned char) *s >= 0x20 && (unsigned char) *s < 0x7f ? *s : '?', f);
                }
}

static void put_element(FILE *f, const char *indent, const char *name, const char *value) {
        fprintf(f, "%s<%s>", indent, name);
        put_xml(f, value);
        fprintf(f, "</%s>\n", name);
}

/* The schema's IPAddress type (RFC 7489 Appendix C) accepts dotted quads and the full,
 * uncompressed form of IPv6 only, so IPv6 addresses are written out in 8 groups. */
static void put_source_ip(FILE *f, const char *ip) {
        unsigned char a[16];

        fputs("      <source_ip>", f);
        if (inet_pton(AF_INET6, ip, a) == 1)
                for (size_t i = 0; i < 16; i += 2)
                        fprintf(f, "%s%x", i > 0 ? ":" : "", (unsigned) (a[i] << 8 | a[i + 1]));
        else
                put_xml(f, ip);
        fputs("</source_ip>\n", f);
}

static bool file_name_safe(const char *s) {
        if (isempty(s) || s[0] == '.' || strlen(s) > 253)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      IN_SET(*s, '.', '-', '_')))
                        return false;
        return true;
}

typedef struct Item {
        const DmarcReportEntry *e;
        char *key;              /* the row fields of the store line */
} Item;

static int item_compare(const void *a, const void *b) {
        const Item *x = a, *y = b;
        int c;

        c = strcmp(x->e->policy_domain, y->e->policy_domain);
        if (c != 0)
                return c;
        c = strcmp(x->key, y->key);
        if (c != 0)
                return c;
        return x->e->time < y->e->time ? -1 : x->e->time > y->e->time;
}

static void put_row(FILE *f, const DmarcReportEntry *e, uint64_t count) {
        fputs("  <record>\n    <row>\n", f);
        put_source_ip(f, e->source_ip);
        fprintf(f, "      <count>%llu</count>\n", (unsigned long long) count);
        fputs("      <policy_evaluated>\n", f);
        put_element(f, "        ", "disposition", dmarc_policy_to_string(e->disposition));
        put_element(f, "        ", "dkim", e->dkim_aligned ? "pass" : "fail");
        put_element(f, "        ", "spf", e->spf_aligned ? "pass" : "fail");
        for (size_t i = 0; i < e->n_reasons; i++) {
                fputs("        <reason>\n", f);
                put_element(f, "          ", "type", dmarc_override_to_string(e->reasons[i].type));
                if (e->reasons[i].comment)
                        put_element(f, "          ", "comment", e->reasons[i].comment);
                fputs("        </reason>\n", f);
        }
        fputs("      </policy_evaluated>\n    </row>\n", f);

        fputs("    <identifiers>\n", f);
        if (e->envelope_to)
                put_element(f, "      ", "envelope_to", e->envelope_to);
        put_element(f, "      ", "envelope_from", strempty(e->envelope_from));
        put_element(f, "      ", "header_from", e->header_from);
        fputs("    </identifiers>\n", f);

        fputs("    <auth_results>\n", f);
        for (size_t i = 0; i < e->n_dkim; i++) {
                fputs("      <dkim>\n", f);
                put_element(f, "        ", "domain", e->dkim[i].domain);
                if (e->dkim[i].selector)
                        put_element(f, "        ", "selector", e->dkim[i].selector);
                put_element(f, "        ", "result", dmarc_report_dkim_result_to_string(e->dkim[i].result));
                fputs("      </dkim>\n", f);
        }
        /* the schema wants at least one SPF result */
        fputs("      <spf>\n", f);
        put_element(f, "        ", "domain", strempty(e->spf_domain));
        put_element(f, "        ", "scope", dmarc_report_spf_scope_to_string(e->spf_scope));
        put_element(f, "        ", "result", dmarc_report_spf_result_to_string(e->spf_result));
        fputs("      </spf>\n", f);
        fputs("    </auth_results>\n  </record>\n", f);
}

/* One report from items[0..n), all of the same policy domain, sorted by row key. */
static int report_make(const Item *items, size_t n, uint64_t day_begin, const DmarcReportMeta *meta,
                       DmarcReport *ret) {
        _cleanup_(dmarc_report_done) DmarcReport rep = {};
        const DmarcReportEntry *newest = items[0].e;
        uint64_t day_end = day_begin + DMARC_DAY_SEC - 1;
        size_t len = 0;
        FILE *f;
        int r;

        for (size_t i = 1; i < n; i++)
                if (items[i].e->time >= newest->time)
                        newest = items[i].e;

        rep.policy_domain = strdup(newest->policy_domain);
        if (!rep.policy_domain)
                return -ENOMEM;
        if (asprintf_safe(&rep.report_id, "%s.%s.%llu", meta->receiver, rep.policy_domain,
                          (unsigned long long) day_begin) < 0)
                return -ENOMEM;
        /* RFC 7489 §7.2.1.1: receiver "!" policy-domain "!" begin "!" end "." extension */
        if (asprintf_safe(&rep.file_name, "%s!%s!%llu!%llu.xml.gz", meta->receiver, rep.policy_domain,
                          (unsigned long long) day_begin, (unsigned long long) day_end) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < newest->n_rua; i++)
                if (strv_extend(&rep.rua, newest->rua[i]) < 0)
                        return -ENOMEM;

        f = open_memstream(&rep.xml, &len);
        if (!f)
                return -ENOMEM;
        fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n", f);
        fputs("  <report_metadata>\n", f);
        put_element(f, "    ", "org_name", meta->org_name);
        put_element(f, "    ", "email", meta->email);
        if (meta->extra_contact_info)
                put_element(f, "    ", "extra_contact_info", meta->extra_contact_info);
        put_element(f, "    ", "report_id", rep.report_id);
        fprintf(f, "    <date_range>\n      <begin>%llu</begin>\n      <end>%llu</end>\n    </date_range>\n",
                (unsigned long long) day_begin, (unsigned long long) day_end);
        fputs("  </report_metadata>\n", f);

        /* np= is a DMARCbis tag that the RFC 7489 schema has no element for. */
        fputs("  <policy_published>\n", f);
        put_element(f, "    ", "domain", newest->policy_domain);
        put_element(f, "    ", "adkim", dmarc_alignment_to_string(newest->adkim));
        put_element(f, "    ", "aspf", dmarc_alignment_to_string(newest->aspf));
        put_element(f, "    ", "p", dmarc_policy_to_string(newest->p));
        put_element(f, "    ", "sp", dmarc_policy_to_string(newest->sp));
        fprintf(f, "    <pct>%u</pct>\n", newest->pct);
        put_element(f, "    ", "fo", newest->fo ?: "0");
        fputs("  </policy_published>\n", f);

        for (size_t i = 0; i < n; ) {
                size_t j = i + 1;

                while (j < n && streq(items[j].key, items[i].key))
                        j++;
                put_row(f, items[i].e, j - i);
                rep.n_rows++;
                rep.n_messages += j - i;
                i = j;
        }
        fputs("</feedback>\n", f);

        r = memstream_finish(&f, &rep.xml, &len);
        if (r < 0)
                return r;
        rep.xml_len = len;

        *ret = rep;
        rep = (DmarcReport) {};
        return 0;
}

static char* row_key(const DmarcReportEntry *e) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        put_row_fields(f, e);
        if (memstream_finish(&f, &buf, &len) < 0)
                return NULL;
        return buf;
}

int dmarc_report_build(const DmarcReportEntry *entries, size_t n, uint64_t day_begin,
                       const DmarcReportMeta *meta, DmarcReport **ret_reports, size_t *ret_n) {
        _cleanup_free_ Item *items = NULL;
        DmarcReport *reports = NULL;
        size_t n_items = 0, n_reports = 0;
        int r = 0;

        assert(entries || n == 0);
        assert(meta);
        assert(ret_reports);
        assert(ret_n);

        if (isempty(meta->org_name) || isempty(meta->email) || !file_name_safe(meta->receiver))
                return -EINVAL;
        day_begin -= day_begin % DMARC_DAY_SEC;

        items = calloc(MAX(n, (size_t) 1), sizeof(Item));
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const DmarcReportEntry *e = &entries[i];

                if (e->time < day_begin || e->time - day_begin >= DMARC_DAY_SEC)
                        continue;
                if (e->n_rua == 0 || !file_name_safe(e->policy_domain) || entry_validate(e) < 0)
                        continue;
                items[n_items].e = e;
                items[n_items].key = row_key(e);
                if (!items[n_items].key) {
                        r = -ENOMEM;
                        goto finish;
                }
                n_items++;
        }
        qsort(items, n_items, sizeof(Item), item_compare);

        for (size_t i = 0; i < n_items; ) {
                size_t j = i + 1;
                DmarcReport *m;

                while (j < n_items && streq(items[j].e->policy_domain, items[i].e->policy_domain))
                        j++;
                m = reallocarray(reports, n_reports + 1, sizeof(DmarcReport));
                if (!m) {
                        r = -ENOMEM;
                        goto finish;
                }
                reports = m;
                r = report_make(items + i, j - i, day_begin, meta, &reports[n_reports]);
                if (r < 0)
                        goto finish;
                n_reports++;
                i = j;
        }

finish:
        for (size_t i = 0; i < n_items; i++)
                free(items[i].key);
        if (r < 0) {
                dmarc_reports_free(reports, n_reports);
                return r;
        }
        *ret_reports = reports;
        *ret_n = n_reports;
        return 0;
}

/* ---- gzip ---- */

int dmarc_gzip(const void *data, size_t size, void **ret, size_t *ret_size) {
        _cleanup_free_ void *out = NULL;
        z_stream z = {};
        uLong bound;
        int k;

        assert(data || size == 0);
        assert(ret);
        assert(ret_size);

        if (size > UINT32_MAX / 2)
                return -E2BIG;
        /* windowBits 15 + 16: a gzip header and trailer instead of zlib's */
        if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                return -ENOMEM;
        bound = deflateBound(&z, (uLong) size);
        out = malloc(bound);
        if (!out) {
                (void) deflateEnd(&z);
                return -ENOMEM;
        }
        z.next_in = (Bytef*) data;
        z.avail_in = (uInt) size;
        z.next_out = out;
        z.avail_out = (uInt) bound;
        k = deflate(&z, Z_FINISH);
        *ret_size = z.total_out;
        (void) deflateEnd(&z);
        if (k != Z_STREAM_END)
                return -EIO;
        *ret = TAKE_PTR(out);
        return 0;
}

int dmarc_gunzip(const void *data, size_t size, size_t max, void **ret, size_t *ret_size) {
        _cleanup_free_ unsigned char *out = NULL;
        size_t allocated = 0;
        z_stream z = {};
        int k;

        assert(data || size == 0);
        assert(ret);
        assert(ret_size);

        if (size > UINT32_MAX || max > UINT32_MAX)
                return -E2BIG;
        if (inflateInit2(&z, 15 + 16) != Z_OK)
                return -ENOMEM;
        z.next_in = (Bytef*) data;
        z.avail_in = (uInt) size;
        for (;;) {
                if (z.total_out + 1 >= allocated) {
                        size_t a = MAX(allocated * 2, (size_t) 4096);
                        unsigned char *m;

                        if (allocated > max + 1) {
                                (void) inflateEnd(&z);
                                return -EFBIG;
                        }
                        m = realloc(out, a);
                        if (!m) {
                                (void) inflateEnd(&z);
                                return -ENOMEM;
                        }
                        out = m;
                        allocated = a;
                }
                z.next_out = out + z.total_out;
                z.avail_out = (uInt) (allocated - z.total_out - 1);
                k = inflate(&z, Z_NO_FLUSH);
                if (k == Z_STREAM_END)
                        break;
                if (k != Z_OK || (z.avail_in == 0 && z.avail_out > 0)) {
                        (void) inflateEnd(&z);
                        return k == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
                }
        }
        if (z.total_out > max) {
                (void) inflateEnd(&z);
                return -EFBIG;
        }
        out[z.total_out] = '\0';
        *ret_size = z.total_out;
        (void) inflateEnd(&z);
        *ret = TAKE_PTR(out);
        return 0;
}

int dmarc_report_write_gz(const DmarcReport *report, int dir_fd) {
        _cleanup_free_ void *gz = NULL;
        _cleanup_close_ int fd = -1;
        char tmp[64];
        size_t gz_size;
        int r;

        assert(report);
        assert(report->file_name);

        if (faccessat(dir_fd, report->file_name, F_OK, AT_SYMLINK_NOFOLLOW) >= 0)
                return 0;
        if (errno != ENOENT)
                return -errno;

        r = dmarc_gzip(report->xml, report->xml_len, &gz, &gz_size);
        if (r < 0)
                return r;

        (void) snprintf(tmp, sizeof(tmp), ".dmarc-report.%ld.%lx.tmp", (long) getpid(),
                        (unsigned long) random());
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, gz, gz_size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0) {
                /* link() never replaces: a report that appeared meanwhile is kept */
                if (linkat(dir_fd, tmp, dir_fd, report->file_name, 0) < 0)
                        r = errno == EEXIST ? 0 : -errno;
                else
                        r = 1;
        }
        (void) unlinkat(dir_fd, tmp, 0);
        if (r > 0)
                (void) fsync(dir_fd);
        return r;
}
