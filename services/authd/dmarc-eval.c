/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* meson defines HAVE_LIBPSL when it found libpsl (services/authd/meson.build). */
#ifndef HAVE_LIBPSL
#  define HAVE_LIBPSL 0
#endif
#if HAVE_LIBPSL
#  include <libpsl.h>
#endif

#include "auth-results.h"
#include "cleanup.h"
#include "dmarc-eval.h"
#include "string-util.h"

#define DOMAIN_MAX 253U
#define LABEL_MAX 63U

static const char* const dmarc_verdict_table[_DMARC_VERDICT_MAX] = {
        [DMARC_VERDICT_NONE] = "none",
        [DMARC_VERDICT_PASS] = "pass",
        [DMARC_VERDICT_FAIL] = "fail",
        [DMARC_VERDICT_TEMPERROR] = "temperror",
        [DMARC_VERDICT_PERMERROR] = "permerror",
};

const char* dmarc_verdict_to_string(DmarcVerdict v) {
        if (v < 0 || v >= _DMARC_VERDICT_MAX)
                return NULL;
        return dmarc_verdict_table[v];
}

void dmarc_result_done(DmarcResult *r) {
        if (!r)
                return;
        free(r->from_domain);
        free(r->org_domain);
        free(r->policy_domain);
        free(r->dkim_aligned_domain);
        free(r->spf_domain);
        dmarc_record_done(&r->record);
        *r = (DmarcResult) DMARC_RESULT_NULL;
}

int dmarc_domain_normalize(const char *domain, char **ret) {
        _cleanup_free_ char *d = NULL;
        size_t len, label = 0;

        assert(ret);

        if (isempty(domain))
                return -EINVAL;
        len = strlen(domain);
        if (domain[len - 1] == '.')
                len--;
        if (len == 0 || len > DOMAIN_MAX)
                return -EINVAL;

        d = strndup(domain, len);
        if (!d)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++) {
                char c = d[i];

                if (c >= 'A' && c <= 'Z')
                        d[i] = (char) (c - 'A' + 'a');
                else if (c == '.') {
                        if (label == 0)
                                return -EINVAL;         /* empty label */
                        label = 0;
                        continue;
                } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
                        return -EINVAL;
                if (++label > LABEL_MAX)
                        return -EINVAL;
        }
        if (label == 0)
                return -EINVAL;         /* "example.com.." */

        *ret = TAKE_PTR(d);
        return 0;
}

/* ---- organizational domain ---- */

#if HAVE_LIBPSL
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl_ctx = NULL;

static void psl_load(void) {
        /* psl_latest(NULL): the newer of the built-in list and the distribution's file
         * (/usr/share/publicsuffix/public_suffix_list.dafsa on Debian). The context is
         * kept for the life of the process. */
        psl_ctx = psl_latest(NULL);
        if (!psl_ctx)
                psl_ctx = psl_builtin();
}
#endif

int dmarc_org_domain_last_two_labels(const char *domain, char **ret) {
        _cleanup_free_ char *d = NULL;
        char *last, *prev = NULL;
        int r;

        assert(ret);

        r = dmarc_domain_normalize(domain, &d);
        if (r < 0)
                return r;

        last = strrchr(d, '.');
        if (last) {
                *last = '\0';
                prev = strrchr(d, '.');
                *last = '.';
        }
        if (!prev) {
                *ret = TAKE_PTR(d);
                return 0;
        }

        char *o = strdup(prev + 1);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

int dmarc_org_domain(const char *domain, char **ret) {
        _cleanup_free_ char *d = NULL;
        int r;

        assert(ret);

        r = dmarc_domain_normalize(domain, &d);
        if (r < 0)
                return r;

#if HAVE_LIBPSL
        (void) pthread_once(&psl_once, psl_load);
        if (psl_ctx) {
                const char *reg = psl_registrable_domain(psl_ctx, d);
                char *o;

                /* NULL: d is itself a public suffix (or malformed for libpsl); it is then
                 * its own organizational domain. */
                if (!reg || reg == d) {
                        *ret = TAKE_PTR(d);
                        return 0;
                }
                o = strdup(reg);
                if (!o)
                        return -ENOMEM;
                *ret = o;
                return 0;
        }
#endif

        r = dmarc_org_domain_last_two_labels(d, ret);
        if (r < 0)
                return r;
        return 1;
}

bool dmarc_domains_aligned(const char *authenticated, const char *from, DmarcAlignment mode) {
        _cleanup_free_ char *a = NULL, *f = NULL, *oa = NULL, *of = NULL;

        if (dmarc_domain_normalize(authenticated, &a) < 0 || dmarc_domain_normalize(from, &f) < 0)
                return false;
        if (streq(a, f))
                return true;
        if (mode == DMARC_ALIGNMENT_STRICT)
                return false;
        if (dmarc_org_domain(a, &oa) < 0 || dmarc_org_domain(f, &of) < 0)
                return false;
        return streq(oa, of);
}

/* ---- the step machine ---- */

struct DmarcEval {
        DmarcDiscovery discovery;
        bool from_nonexistent;
        bool spf_pass;
        char *spf_domain;               /* normalized, NULL when unusable */
        char **dkim_pass_domains;       /* normalized d= of passing signatures */
        unsigned sample;

        char *current;                  /* domain whose _dmarc record is asked for next */
        char *query_name;
        bool pending;
        bool at_org;                    /* RFC 7489 mode: second query done/asked */
        bool done;

        DmarcResult result;
};

DmarcEval* dmarc_eval_free(DmarcEval *e) {
        if (!e)
                return NULL;
        free(e->spf_domain);
        strv_free(e->dkim_pass_domains);
        free(e->current);
        free(e->query_name);
        dmarc_result_done(&e->result);
        free(e);
        return NULL;
}

static void compute_alignment(DmarcEval *e, DmarcAlignment aspf, DmarcAlignment adkim) {
        DmarcResult *res = &e->result;

        res->spf_aligned = e->spf_pass && e->spf_domain &&
                dmarc_domains_aligned(e->spf_domain, res->from_domain, aspf);

        STRV_FOREACH(d, e->dkim_pass_domains)
                if (dmarc_domains_aligned(*d, res->from_domain, adkim)) {
                        res->dkim_aligned = true;
                        if (!res->dkim_aligned_domain)
                                res->dkim_aligned_domain = strdup(*d);  /* OOM: stays NULL */
                        break;
                }
}

static void finish(DmarcEval *e, DmarcVerdict v, const char *reason) {
        DmarcResult *res = &e->result;

        if (res->from_domain)
                compute_alignment(e, DMARC_ALIGNMENT_RELAXED, DMARC_ALIGNMENT_RELAXED);
        res->verdict = v;
        res->reason = reason;
        res->disposition = DMARC_POLICY_NONE;
        e->done = true;
}

static DmarcPolicy policy_lower(DmarcPolicy p) {
        switch (p) {
        case DMARC_POLICY_REJECT:
                return DMARC_POLICY_QUARANTINE;
        default:
                return DMARC_POLICY_NONE;
        }
}

/* The policy record rec was found at _dmarc.<e->current>: decide. Takes rec. */
static int finish_with_record(DmarcEval *e, DmarcRecord *rec) {
        DmarcResult *res = &e->result;

        res->policy_domain = strdup(e->current);
        if (!res->policy_domain)
                return -ENOMEM;
        res->record = *rec;
        *rec = (DmarcRecord) DMARC_RECORD_NULL;
        res->have_record = true;

        if (streq(e->current, res->from_domain)) {
                res->policy = res->record.p;
                res->policy_source = DMARC_POLICY_SOURCE_P;
        } else if (e->from_nonexistent && res->record.np >= 0) {
                res->policy = res->record.np;
                res->policy_source = DMARC_POLICY_SOURCE_NP;
        } else {
                res->policy = res->record.sp >= 0 ? res->record.sp : res->record.p;
                res->policy_source = DMARC_POLICY_SOURCE_SP;
        }

        compute_alignment(e, res->record.aspf, res->record.adkim);

        res->verdict = res->spf_aligned || res->dkim_aligned ? DMARC_VERDICT_PASS : DMARC_VERDICT_FAIL;
        if (res->verdict == DMARC_VERDICT_PASS)
                res->disposition = DMARC_POLICY_NONE;
        else if (e->sample < res->record.pct)
                res->disposition = res->policy;
        else {
                /* §6.6.4: not selected by pct= sampling, apply the next lower policy. */
                res->sampled_out = true;
                res->disposition = policy_lower(res->policy);
        }
        res->reason = res->record.p_from_rua ? "no valid p=, acting as p=none because of rua=" : NULL;
        e->done = true;
        return 0;
}

static size_t count_labels(const char *d) {
        size_t n = 1;

        for (const char *p = d; *p; p++)
                if (*p == '.')
                        n++;
        return n;
}

/* No usable record at e->current: move to the next name or finish with none. */
static int advance(DmarcEval *e, const char *reason) {
        DmarcResult *res = &e->result;
        const char *next;
        char *n;

        if (e->discovery == DMARC_DISCOVERY_RFC7489) {
                if (e->at_org || streq(res->org_domain, res->from_domain)) {
                        finish(e, DMARC_VERDICT_NONE, reason);
                        return 0;
                }
                e->at_org = true;
                next = res->org_domain;
        } else {
                /* DMARCbis tree walk: with x labels, x < 8 drops the left-most label,
                 * otherwise labels are dropped until 7 remain; stop after the top level. */
                size_t x = count_labels(e->current), drop = x < 8 ? 1 : x - 7;

                if (x <= 1 || res->n_lookups >= DMARC_TREE_WALK_MAX) {
                        finish(e, DMARC_VERDICT_NONE, reason);
                        return 0;
                }
                next = e->current;
                for (size_t i = 0; i < drop; i++)
                        next = strchr(next, '.') + 1;
        }

        n = strdup(next);
        if (!n)
                return -ENOMEM;
        free(e->current);
        e->current = n;
        return 0;
}

int dmarc_eval_new(const DmarcInput *input, DmarcEval **ret) {
        _cleanup_(dmarc_eval_freep) DmarcEval *e = NULL;
        const char *spf;
        int r;

        assert(input);
        assert(ret);

        if (input->sample > 99)
                return -EINVAL;
        if (input->discovery < 0 || input->discovery >= _DMARC_DISCOVERY_MAX)
                return -EINVAL;
        if (input->n_dkim > 0 && !input->dkim)
                return -EINVAL;

        e = calloc(1, sizeof(DmarcEval));
        if (!e)
                return -ENOMEM;
        e->result = (DmarcResult) DMARC_RESULT_NULL;
        e->discovery = input->discovery;
        e->from_nonexistent = input->from_domain_nonexistent;
        e->spf_pass = input->spf_pass;
        e->sample = input->sample;

        /* RFC 7489 §4.1 / RFC 7208 §2.4: for the null reverse-path SPF checked
         * postmaster@<HELO>, so the HELO domain is the SPF-authenticated identity. */
        spf = !isempty(input->spf_mail_from_domain) ? input->spf_mail_from_domain : input->spf_helo_domain;
        if (spf) {
                r = dmarc_domain_normalize(spf, &e->spf_domain);
                if (r == -ENOMEM)
                        return r;       /* otherwise unusable (address literal ...): not aligned */
        }

        for (size_t i = 0; i < input->n_dkim; i++) {
                char *d = NULL;

                if (!input->dkim[i].pass)
                        continue;
                r = dmarc_domain_normalize(input->dkim[i].domain, &d);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        continue;
                r = strv_consume(&e->dkim_pass_domains, d);
                if (r < 0)
                        return r;
        }

        r = dmarc_domain_normalize(input->from_domain, &e->result.from_domain);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !strchr(e->result.from_domain, '.')) {
                /* A single label cannot be an Author Domain we can look up. */
                free(e->result.from_domain);
                e->result.from_domain = NULL;
                finish(e, DMARC_VERDICT_PERMERROR, "invalid RFC5322.From domain");
                *ret = TAKE_PTR(e);
                return 0;
        }

        r = dmarc_org_domain(e->result.from_domain, &e->result.org_domain);
        if (r < 0)
                return r;

        e->current = strdup(e->result.from_domain);
        if (!e->current)
                return -ENOMEM;

        *ret = TAKE_PTR(e);
        return 0;
}

int dmarc_eval_next(DmarcEval *e, const char **ret_name) {
        char *q;

        assert(e);
        assert(ret_name);

        if (e->done)
                return 0;
        if (e->pending)
                return -EBUSY;

        q = NULL;
        if (asprintf_safe(&q, "_dmarc.%s", e->current) < 0)
                return -ENOMEM;
        free(e->query_name);
        e->query_name = q;
        e->pending = true;
        *ret_name = q;
        return 1;
}

int dmarc_eval_feed(DmarcEval *e, const DnsAnswer *answer) {
        _cleanup_(dmarc_record_done) DmarcRecord rec = DMARC_RECORD_NULL;
        const char *reason = NULL;
        int r;

        assert(e);
        assert(answer);

        if (e->done || !e->pending)
                return -EBUSY;
        e->pending = false;
        e->result.n_lookups++;

        switch (answer->result) {
        case DNS_RESULT_TEMPFAIL:
                finish(e, DMARC_VERDICT_TEMPERROR, "temporary DNS failure during policy discovery");
                return 0;
        case DNS_RESULT_PERMFAIL:
                finish(e, DMARC_VERDICT_PERMERROR, "DNS failure during policy discovery");
                return 0;
        case DNS_RESULT_NXDOMAIN:
                return advance(e, "no DMARC record");
        case DNS_RESULT_OK:
                break;
        default:
                finish(e, DMARC_VERDICT_PERMERROR, "invalid DNS answer");
                return 0;
        }

        r = dmarc_record_select(answer, &rec, &reason);
        if (r == -ENOMEM)
                return r;
        if (r == -ENOTUNIQ) {
                /* RFC 7489 §6.6.3: several records end discovery without DMARC; DMARCbis
                 * discards them and walks on. */
                if (e->discovery == DMARC_DISCOVERY_RFC7489) {
                        finish(e, DMARC_VERDICT_NONE, "several DMARC records");
                        return 0;
                }
                return advance(e, "several DMARC records");
        }
        if (r < 0) {
                finish(e, DMARC_VERDICT_PERMERROR, reason ?: "invalid DMARC record");
                return 0;
        }
        if (r == 0)
                return advance(e, "no DMARC record");

        return finish_with_record(e, &rec);
}

const DmarcResult* dmarc_eval_result(const DmarcEval *e) {
        assert(e);
        return e->done ? &e->result : NULL;
}

int dmarc_result_to_auth_results(const DmarcResult *r, char **ret) {
        const char *v;

        assert(r);
        assert(ret);

        v = dmarc_verdict_to_string(r->verdict);
        if (!v)
                return -EINVAL;

        if (IN_SET(r->verdict, DMARC_VERDICT_PASS, DMARC_VERDICT_FAIL) && r->policy >= 0)
                return asprintf_safe(ret, "dmarc=%s (p=%s dis=%s) header.from=%s", v,
                                     dmarc_policy_to_string(r->policy),
                                     strempty(dmarc_policy_to_string(r->disposition)),
                                     strempty(r->from_domain)) < 0 ? -ENOMEM : 0;
        if (r->from_domain)
                return asprintf_safe(ret, "dmarc=%s header.from=%s", v, r->from_domain) < 0 ? -ENOMEM : 0;
        return asprintf_safe(ret, "dmarc=%s", v) < 0 ? -ENOMEM : 0;
}

/* ---- RFC5322.From ---- */

static bool is_atext(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                (c && strchr("!#$%&'*+-/=?^_`{|}~", c)) || (unsigned char) c >= 0x80;
}

/* Copy value with comments replaced by a space and line ends by spaces; quoted strings
 * are kept as they are (a '(' inside quotes is text). */
static int strip_comments(const char *s, size_t len, char **ret) {
        _cleanup_free_ char *o = NULL;
        size_t n = 0;
        unsigned depth = 0;
        bool quoted = false;

        o = malloc(len + 1);
        if (!o)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (c == '\0')
                        return -EBADMSG;
                if (c == '\r' || c == '\n')
                        c = ' ';
                if (depth > 0) {
                        if (c == '\\') {
                                if (++i >= len)
                                        return -EBADMSG;
                        } else if (c == '(')
                                depth++;
                        else if (c == ')' && --depth == 0)
                                o[n++] = ' ';
                        continue;
                }
                if (quoted) {
                        if (c == '\\') {
                                if (i + 1 >= len)
                                        return -EBADMSG;
                                o[n++] = c;
                                c = s[++i];
                        } else if (c == '"')
                                quoted = false;
                        o[n++] = c;
                        continue;
                }
                if (c == '(') {
                        if (++depth > 64)
                                return -EBADMSG;
                        continue;
                }
                if (c == ')')
                        return -EBADMSG;
                if (c == '"')
                        quoted = true;
                o[n++] = c;
        }
        if (depth > 0 || quoted)
                return -EBADMSG;
        o[n] = '\0';
        *ret = TAKE_PTR(o);
        return 0;
}

/* Next top-level (outside quotes and angle brackets) occurrence of one of chars in
 * [p, end), or end. */
static const char* find_top(const char *p, const char *end, const char *chars) {
        bool quoted = false, angle = false;

        for (; p < end; p++) {
                if (quoted) {
                        if (*p == '\\' && p + 1 < end)
                                p++;
                        else if (*p == '"')
                                quoted = false;
                        continue;
                }
                if (*p == '"')
                        quoted = true;
                else if (*p == '<')
                        angle = true;
                else if (*p == '>')
                        angle = false;
                else if (!angle && strchr(chars, *p))
                        return p;
        }
        return end;
}

static void trim(const char **a, const char **b) {
        while (*a < *b && (**a == ' ' || **a == '\t'))
                (*a)++;
        while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
                (*b)--;
}

/* addr-spec in [a, b): dot-atom or quoted-string local part, '@', dot-atom domain. */
static int addr_spec_domain(const char *a, const char *b, char **ret) {
        _cleanup_free_ char *dom = NULL;
        const char *at = NULL;
        bool quoted = false;
        int r;

        trim(&a, &b);
        for (const char *p = a; p < b; p++) {
                if (quoted) {
                        if (*p == '\\' && p + 1 < b)
                                p++;
                        else if (*p == '"')
                                quoted = false;
                        continue;
                }
                if (*p == '"')
                        quoted = true;
                else if (*p == '@')
                        at = p;
        }
        if (!at || at == a)
                return -EBADMSG;

        /* local part: quoted-string, or dot-atom (obs-local-part's spaces are refused) */
        const char *le = at;
        trim(&a, &le);
        if (*a == '"') {
                if (le - a < 2 || le[-1] != '"')
                        return -EBADMSG;
        } else {
                if (a == le || *a == '.' || le[-1] == '.')
                        return -EBADMSG;
                for (const char *p = a; p < le; p++)
                        if (!is_atext(*p) && !(*p == '.' && p[1] != '.'))
                                return -EBADMSG;
        }

        const char *da = at + 1, *db = b;
        trim(&da, &db);
        if (da == db || *da == '[')
                return -EBADMSG;        /* empty domain or domain-literal: nothing to look up */

        dom = strndup(da, (size_t) (db - da));
        if (!dom)
                return -ENOMEM;
        if (dom[strlen(dom) - 1] == '.')
                return -EBADMSG;        /* a From address has no root dot */
        r = dmarc_domain_normalize(dom, ret);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        return 0;
}

int dmarc_from_domain_extract(const char *value, size_t len, char **ret) {
        _cleanup_free_ char *clean = NULL;
        const char *p, *end, *colon, *mbox_a = NULL, *mbox_b = NULL;
        unsigned n = 0;
        int r;

        assert(value || len == 0);
        assert(ret);

        if (len > 65536)
                return -EBADMSG;
        r = strip_comments(value, len, &clean);
        if (r < 0)
                return r;

        p = clean;
        end = clean + strlen(clean);

        /* group syntax "name: list ;" (obsolete in From:, but seen as "undisclosed:;") */
        colon = find_top(p, end, ":");
        if (colon < end) {
                const char *semi = find_top(colon + 1, end, ";");
                const char *t = semi < end ? semi + 1 : end;

                if (semi >= end)
                        return -EBADMSG;
                while (t < end && (*t == ' ' || *t == '\t'))
                        t++;
                if (t != end)
                        return -EBADMSG;
                p = colon + 1;
                end = semi;
        }

        /* mailbox-list: non-empty elements separated by ',' */
        while (p <= end) {
                const char *c = find_top(p, end, ",");
                const char *a = p, *b = c;

                trim(&a, &b);
                if (a < b) {
                        if (++n > 1)
                                return -ENOTUNIQ;
                        mbox_a = a;
                        mbox_b = b;
                }
                if (c >= end)
                        break;
                p = c + 1;
        }
        if (n == 0)
                return -ENXIO;

        /* name-addr: [display-name] "<" addr-spec ">" */
        const char *q = NULL;
        bool quoted = false;

        for (const char *x = mbox_a; x < mbox_b; x++) {
                if (quoted) {
                        if (*x == '\\' && x + 1 < mbox_b)
                                x++;
                        else if (*x == '"')
                                quoted = false;
                        continue;
                }
                if (*x == '"')
                        quoted = true;
                else if (*x == '<') {
                        q = x;
                        break;
                }
        }
        if (!q)
                return addr_spec_domain(mbox_a, mbox_b, ret);

        /* display name: words of atext or quoted strings (not validated further) */
        if (mbox_b[-1] != '>')
                return -EBADMSG;
        const char *ia = q + 1, *ib = mbox_b - 1;
        if (memchr(ia, '<', (size_t) (ib - ia)) || memchr(ia, '>', (size_t) (ib - ia)))
                return -EBADMSG;
        trim(&ia, &ib);
        if (ia < ib && *ia == '@') {
                /* obs-route "@a,@b:" before the addr-spec */
                const char *rc = memchr(ia, ':', (size_t) (ib - ia));
                if (!rc)
                        return -EBADMSG;
                ia = rc + 1;
        }
        return addr_spec_domain(ia, ib, ret);
}

/* Equal domains, ignoring case and one final dot on either side. */
static bool domain_equal(const char *a, const char *b) {
        size_t la, lb;

        if (isempty(a) || isempty(b))
                return false;
        la = strlen(a);
        lb = strlen(b);
        if (la > 1 && a[la - 1] == '.')
                la--;
        if (lb > 1 && b[lb - 1] == '.')
                lb--;
        return la == lb && strncasecmp(a, b, la) == 0;
}

static bool sealer_trusted(char * const *trusted, const char *domain) {
        STRV_FOREACH(t, (char**) trusted)
                if (domain_equal(*t, domain))
                        return true;
        return false;
}

int dmarc_arc_override(const DmarcResult *r, ArcChainStatus chain, const ArcSetInfo *sets, size_t n_sets,
                       char * const *trusted_sealers, DmarcArcOverride *ret) {
        int k;

        assert(r);
        assert(sets || n_sets == 0);
        assert(ret);

        if (r->verdict != DMARC_VERDICT_FAIL || r->disposition == DMARC_POLICY_NONE)
                return 0;
        if (chain != ARC_CHAIN_PASS || isempty(r->from_domain))
                return 0;

        for (size_t i = n_sets; i > 0; i--) {
                const ArcSetInfo *s = &sets[i - 1];
                _cleanup_(auth_results_parsed_freep) AuthResultsParsed *p = NULL;

                if (!sealer_trusted(trusted_sealers, s->domain))
                        continue;
                k = auth_results_parse(s->aar, s->aar_len, &p);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        continue;
                for (size_t j = 0; j < p->n_infos; j++) {
                        const AuthResultsInfo *info = &p->infos[j];

                        if (!streq(info->method, "dmarc") || !streq(info->result, "pass"))
                                continue;
                        if (!domain_equal(auth_results_info_property(info, "header", "from"), r->from_domain))
                                continue;
                        *ret = (DmarcArcOverride) {
                                .instance = s->instance,
                                .domain = s->domain,
                                .selector = s->selector,
                        };
                        return 1;
                }
        }
        return 0;
}
