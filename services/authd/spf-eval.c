/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* check_host() (RFC 7208 §4) as an explicit state machine.
 *
 * The evaluation keeps a stack of frames, one per record being walked: the checked
 * domain at the bottom, an include's target above the record that includes it.
 * redirect= replaces the top frame (its result is the result of the record that
 * redirects). Only the top frame is ever active, so the state of a mechanism that
 * needs several lookups (mx, ptr) lives once in SpfEval, as does the state of the
 * "p" macro's lookups and of the exp= lookup.
 *
 * run() advances until it needs a DNS answer (it then stores what it asked for in
 * e->pending and returns SPF_STEP_LOOKUP) or the result is known. A mechanism whose
 * domain-spec uses %{p} first runs the p lookups and is then evaluated again from
 * its start: nothing is counted before its expansion succeeded, so the second pass
 * counts it once. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "spf-eval.h"
#include "spf-macro.h"
#include "string-util.h"

#define FRAMES_MAX (SPF_DNS_TERMS_MAX + 2U)
#define DEFAULT_EXPLANATION "See https://www.rfc-editor.org/rfc/rfc7208#section-2.6.4"

static const char* const result_table[_SPF_RESULT_MAX] = {
        [SPF_RESULT_NONE] = "none",
        [SPF_RESULT_NEUTRAL] = "neutral",
        [SPF_RESULT_PASS] = "pass",
        [SPF_RESULT_FAIL] = "fail",
        [SPF_RESULT_SOFTFAIL] = "softfail",
        [SPF_RESULT_TEMPERROR] = "temperror",
        [SPF_RESULT_PERMERROR] = "permerror",
};

const char* spf_result_to_string(SpfResult r) {
        return r >= 0 && r < _SPF_RESULT_MAX ? result_table[r] : NULL;
}

SpfResult spf_result_from_string(const char *s) {
        if (!s)
                return _SPF_RESULT_INVALID;
        for (SpfResult r = 0; r < _SPF_RESULT_MAX; r++)
                if (strcaseeq(s, result_table[r]))
                        return r;
        return _SPF_RESULT_INVALID;
}

static const char* const identity_table[_SPF_IDENTITY_MAX] = {
        [SPF_IDENTITY_MAILFROM] = "mailfrom",
        [SPF_IDENTITY_HELO] = "helo",
};

const char* spf_identity_to_string(SpfIdentity i) {
        return i >= 0 && i < _SPF_IDENTITY_MAX ? identity_table[i] : NULL;
}

typedef enum Pending {
        PENDING_NONE,
        PENDING_RECORD,         /* TXT of the top frame's domain */
        PENDING_A,              /* a: addresses of e->target */
        PENDING_MX,             /* mx: MX of e->target */
        PENDING_MX_ADDR,        /* mx: addresses of e->names[e->name_idx] */
        PENDING_PTR,            /* ptr: PTR of the client address */
        PENDING_PTR_ADDR,       /* ptr: addresses of e->names[e->name_idx] */
        PENDING_EXISTS,         /* exists: A of e->target */
        PENDING_P_PTR,          /* %{p}: PTR of the client address */
        PENDING_P_ADDR,         /* %{p}: addresses of e->p_names[e->p_idx] */
        PENDING_EXP,            /* exp=: TXT of e->target */
} Pending;

typedef enum PState {
        P_NOT_STARTED,
        P_RUNNING,
        P_DONE,
} PState;

typedef enum ExpState {
        EXP_NONE,               /* no explanation wanted (yet) */
        EXP_START,              /* expand the exp= domain-spec and look it up */
        EXP_TEXT,               /* the TXT is in e->exp_text: expand it */
} ExpState;

typedef struct Frame {
        char *domain;
        SpfRecord *record;      /* NULL until fetched */
        size_t index;           /* next mechanism */
        bool from_redirect;
} Frame;

struct SpfEval {
        /* the request */
        int family;
        union {
                struct in_addr in;
                struct in6_addr in6;
        } ip;
        SpfIdentity identity;
        char *sender, *local_part, *sender_domain, *helo, *receiver, *default_explanation;
        uint64_t now;

        Frame frames[FRAMES_MAX];
        size_t n_frames;
        unsigned dns_terms, void_lookups, lookups;

        /* the mechanism in progress */
        char *target;
        char **names;
        size_t n_names, name_idx;

        /* %{p} */
        PState p_state;
        char **p_names;                 /* PTR names of the client address */
        size_t n_p_names, p_idx;
        char **p_validated;             /* those whose addresses include the client's */
        size_t n_p_validated;

        ExpState exp_state;
        char *exp_text;

        Pending pending;
        char *lookup_name;
        uint16_t lookup_type;

        bool done;
        SpfOutcome outcome;
        char *top_domain, *mechanism, *explanation, *problem;
};

static void names_free(char ***l, size_t *n) {
        for (size_t i = 0; i < *n; i++)
                free((*l)[i]);
        free(*l);
        *l = NULL;
        *n = 0;
}

static int names_add(char ***l, size_t *n, const char *s) {
        char **a, *d;

        d = strdup(s);
        if (!d)
                return -ENOMEM;
        a = reallocarray(*l, *n + 1, sizeof(char*));
        if (!a) {
                free(d);
                return -ENOMEM;
        }
        a[(*n)++] = d;
        *l = a;
        return 0;
}

static void frame_done(Frame *f) {
        free(f->domain);
        spf_record_free(f->record);
        *f = (Frame) {};
}

SpfEval* spf_eval_free(SpfEval *e) {
        if (!e)
                return NULL;
        free(e->sender);
        free(e->local_part);
        free(e->sender_domain);
        free(e->helo);
        free(e->receiver);
        free(e->default_explanation);
        for (size_t i = 0; i < e->n_frames; i++)
                frame_done(e->frames + i);
        free(e->target);
        names_free(&e->names, &e->n_names);
        names_free(&e->p_names, &e->n_p_names);
        names_free(&e->p_validated, &e->n_p_validated);
        free(e->exp_text);
        free(e->lookup_name);
        free(e->top_domain);
        free(e->mechanism);
        free(e->explanation);
        free(e->problem);
        free(e);
        return NULL;
}

/* §4.3: is this a usable domain for check_host()? A fully qualified name (at least
 * two labels), labels of 1..63 octets, at most 253 octets, no address literal. */
static bool domain_valid(const char *d) {
        size_t len = strlen(d), label = 0, labels = 0;

        if (len > 0 && d[len - 1] == '.')
                len--;
        if (len == 0 || len > SPF_DOMAIN_NAME_MAX || d[0] == '[')
                return false;
        for (size_t i = 0; i <= len; i++) {
                if (i == len || d[i] == '.') {
                        if (label == 0 || label > 63)
                                return false;
                        labels++;
                        label = 0;
                } else if ((unsigned char) d[i] <= ' ' || (unsigned char) d[i] >= 0x7f)
                        return false;
                else
                        label++;
        }
        return labels >= 2;
}

int spf_eval_new(const SpfRequest *req, SpfEval **ret) {
        _cleanup_(spf_eval_freep) SpfEval *e = NULL;
        const char *at;

        assert(req);
        assert(ret);

        if (!IN_SET(req->family, AF_INET, AF_INET6))
                return -EINVAL;
        if (!req->helo && isempty(req->mail_from))
                return -EINVAL;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;

        e->family = req->family;
        if (req->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&req->ip.in6)) {
                e->family = AF_INET;
                memcpy(&e->ip.in, req->ip.in6.s6_addr + 12, 4);
        } else if (req->family == AF_INET6)
                e->ip.in6 = req->ip.in6;
        else
                e->ip.in = req->ip.in;
        e->now = req->now;

        e->helo = strdup(strempty(req->helo));
        e->receiver = strdup(req->receiver ?: "unknown");
        e->default_explanation = strdup(req->default_explanation ?: DEFAULT_EXPLANATION);
        if (!e->helo || !e->receiver || !e->default_explanation)
                return -ENOMEM;

        if (!isempty(req->mail_from)) {
                e->identity = SPF_IDENTITY_MAILFROM;
                at = strrchr(req->mail_from, '@');
                if (at) {
                        e->sender_domain = strdup(at + 1);
                        e->local_part = at == req->mail_from ? strdup("postmaster") :
                                        strndup(req->mail_from, (size_t) (at - req->mail_from));
                } else {
                        e->sender_domain = strdup(req->mail_from);
                        e->local_part = strdup("postmaster");
                }
        } else {
                /* §2.4: the null reverse-path checks postmaster@<HELO> */
                e->identity = SPF_IDENTITY_HELO;
                e->sender_domain = strdup(e->helo);
                e->local_part = strdup("postmaster");
        }
        if (!e->sender_domain || !e->local_part)
                return -ENOMEM;
        if (asprintf_safe(&e->sender, "%s@%s", e->local_part, e->sender_domain) < 0)
                return -ENOMEM;
        e->top_domain = strdup(e->sender_domain);
        if (!e->top_domain)
                return -ENOMEM;

        e->outcome = (SpfOutcome) {
                .result = SPF_RESULT_NONE,
                .identity = e->identity,
                .domain = e->top_domain,
                .sender = e->sender,
        };

        *ret = TAKE_PTR(e);
        return 0;
}

static Frame* top(SpfEval *e) {
        assert(e->n_frames > 0);
        return e->frames + e->n_frames - 1;
}

static int finish(SpfEval *e, SpfResult result, const char *mechanism, const char *problem) {
        e->done = true;
        e->exp_state = EXP_NONE;
        e->outcome.result = result;
        if (mechanism) {
                e->mechanism = strdup(mechanism);
                if (!e->mechanism)
                        return -ENOMEM;
        }
        if (problem) {
                e->problem = strdup(problem);
                if (!e->problem)
                        return -ENOMEM;
        }
        if (result == SPF_RESULT_FAIL && !e->explanation) {
                e->explanation = strdup(e->default_explanation);
                if (!e->explanation)
                        return -ENOMEM;
        }
        e->outcome.mechanism = e->mechanism;
        e->outcome.explanation = e->explanation;
        e->outcome.problem = e->problem;
        e->outcome.dns_terms = e->dns_terms;
        e->outcome.void_lookups = e->void_lookups;
        return 0;
}

static int finishf(SpfEval *e, SpfResult result, const char *fmt, ...) _printf_(3, 4);
static int finishf(SpfEval *e, SpfResult result, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return finish(e, result, NULL, m);
}

static int push_frame(SpfEval *e, const char *domain, bool from_redirect) {
        char *d;

        if (e->n_frames >= FRAMES_MAX)
                return finishf(e, SPF_RESULT_PERMERROR, "include nesting too deep");
        d = strdup(domain);
        if (!d)
                return -ENOMEM;
        e->frames[e->n_frames++] = (Frame) { .domain = d, .from_redirect = from_redirect };
        return 0;
}

static void mechanism_reset(SpfEval *e) {
        free(e->target);
        e->target = NULL;
        names_free(&e->names, &e->n_names);
        e->name_idx = 0;
}

static SpfResult qualifier_result(SpfQualifier q) {
        switch (q) {
        case SPF_QUALIFIER_FAIL:
                return SPF_RESULT_FAIL;
        case SPF_QUALIFIER_SOFTFAIL:
                return SPF_RESULT_SOFTFAIL;
        case SPF_QUALIFIER_NEUTRAL:
                return SPF_RESULT_NEUTRAL;
        default:
                return SPF_RESULT_PASS;
        }
}

static SpfMechanism* current(SpfEval *e) {
        Frame *f = top(e);

        assert(f->record && f->index < f->record->n_mechanisms);
        return f->record->mechanisms + f->index;
}

/* Ask for name/type. Returns SPF_STEP_LOOKUP, or 0 when the evaluation ended instead
 * (too many lookups in all). */
static int ask(SpfEval *e, Pending pending, const char *name, uint16_t type, SpfLookup *ret) {
        size_t len;
        char *n;

        if (++e->lookups > SPF_LOOKUPS_MAX)
                return finishf(e, SPF_RESULT_PERMERROR, "more than %u DNS lookups", SPF_LOOKUPS_MAX);

        len = strlen(name);
        if (len > 0 && name[len - 1] == '.')
                len--;
        n = strndup(name, len);
        if (!n)
                return -ENOMEM;
        free(e->lookup_name);
        e->lookup_name = n;
        e->lookup_type = type;
        e->pending = pending;
        *ret = (SpfLookup) { .name = e->lookup_name, .type = type };
        return SPF_STEP_LOOKUP;
}

static int reverse_name(SpfEval *e, char **ret) {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *b;
        char buf[74], *p = buf;

        if (e->family == AF_INET) {
                b = (const uint8_t*) &e->ip.in;
                return asprintf_safe(ret, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]) < 0 ? -ENOMEM : 0;
        }
        b = e->ip.in6.s6_addr;
        for (size_t i = 16; i > 0; i--) {
                *p++ = hex[b[i - 1] & 0xf];
                *p++ = '.';
                *p++ = hex[b[i - 1] >> 4];
                *p++ = '.';
        }
        strcpy(p, "ip6.arpa");
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static uint16_t address_type(SpfEval *e) {
        return e->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA;
}

static bool ip_match(SpfEval *e, const DnsRecord *rr, unsigned cidr4, unsigned cidr6) {
        if (e->family == AF_INET && rr->type == DNS_TYPE_A) {
                uint32_t a = ntohl(e->ip.in.s_addr), b = ntohl(rr->a.s_addr);
                uint32_t mask = cidr4 == 0 ? 0 : UINT32_MAX << (32 - cidr4);

                return (a & mask) == (b & mask);
        }
        if (e->family == AF_INET6 && rr->type == DNS_TYPE_AAAA) {
                const uint8_t *a = e->ip.in6.s6_addr, *b = rr->aaaa.s6_addr;
                unsigned bytes = cidr6 / 8, bits = cidr6 % 8;

                if (memcmp(a, b, bytes) != 0)
                        return false;
                if (bits == 0)
                        return true;
                return ((a[bytes] ^ b[bytes]) & (uint8_t) (0xff << (8 - bits))) == 0;
        }
        return false;
}

static bool is_subdomain_or_equal(const char *name, const char *domain) {
        size_t n = strlen(name), d = strlen(domain);

        if (n > 0 && name[n - 1] == '.')
                n--;
        if (d > 0 && domain[d - 1] == '.')
                d--;
        if (n < d || strncasecmp(name + n - d, domain, d) != 0)
                return false;
        return n == d || name[n - d - 1] == '.';
}

static const char* p_value(SpfEval *e, const char *domain) {
        /* §7.3: prefer the domain itself, then a subdomain of it, then any */
        for (size_t i = 0; i < e->n_p_validated; i++)
                if (is_subdomain_or_equal(e->p_validated[i], domain) &&
                    is_subdomain_or_equal(domain, e->p_validated[i]))
                        return e->p_validated[i];
        for (size_t i = 0; i < e->n_p_validated; i++)
                if (is_subdomain_or_equal(e->p_validated[i], domain))
                        return e->p_validated[i];
        return e->n_p_validated > 0 ? e->p_validated[0] : NULL;
}

/* Expand a macro string in the context of the top frame. Returns 0 with *ret,
 * SPF_STEP_LOOKUP when the "p" lookups must run first, or a negative errno
 * (-EBADMSG, -E2BIG: the string cannot be expanded). */
static int expand(SpfEval *e, const char *spec, SpfMacroFlags flags, char **ret, SpfLookup *lookup) {
        _cleanup_free_ char *rev = NULL;
        SpfMacroContext c;
        int r;

        if (spf_macro_uses_p(spec) && e->p_state != P_DONE) {
                assert(e->p_state == P_NOT_STARTED);
                r = reverse_name(e, &rev);
                if (r < 0)
                        return r;
                e->p_state = P_RUNNING;
                r = ask(e, PENDING_P_PTR, rev, DNS_TYPE_PTR, lookup);
                return r == 0 ? -ECANCELED : r;
        }

        c = (SpfMacroContext) {
                .sender = e->sender,
                .local_part = e->local_part,
                .sender_domain = e->sender_domain,
                .domain = top(e)->domain,
                .family = e->family,
                .helo = e->helo,
                .receiver = e->receiver,
                .now = e->now,
        };
        memcpy(&c.ip, &e->ip, sizeof(c.ip));
        if (e->p_state == P_DONE)
                c.validated_name = p_value(e, top(e)->domain);
        return spf_macro_expand(spec, &c, flags, ret);
}

static bool target_valid(const char *d) {
        size_t len = strlen(d), label = 0;

        if (len > 0 && d[len - 1] == '.')
                len--;
        if (len == 0 || len > SPF_DOMAIN_NAME_MAX)
                return false;
        for (size_t i = 0; i <= len; i++) {
                if (i == len || d[i] == '.') {
                        if (label == 0 || label > 63)
                                return false;
                        label = 0;
                } else
                        label++;
        }
        return true;
}

static int frame_result(SpfEval *e, SpfResult result, const char *mechanism);

static int mechanism_match(SpfEval *e) {
        SpfMechanism *m = current(e);

        mechanism_reset(e);
        return frame_result(e, qualifier_result(m->qualifier), m->text);
}

static int mechanism_next(SpfEval *e) {
        mechanism_reset(e);
        top(e)->index++;
        return 0;
}

static int void_lookup(SpfEval *e) {
        if (++e->void_lookups > SPF_VOID_LOOKUPS_MAX)
                return finishf(e, SPF_RESULT_PERMERROR, "more than %u void DNS lookups", SPF_VOID_LOOKUPS_MAX);
        return mechanism_next(e);
}

/* A record finished with a result other than an error. */
static int frame_result(SpfEval *e, SpfResult result, const char *mechanism) {
        Frame *f = top(e);

        if (e->n_frames > 1) {
                frame_done(f);
                e->n_frames--;
                /* §5.2: only a "pass" of the included record makes include match */
                if (result == SPF_RESULT_PASS)
                        return mechanism_match(e);
                return mechanism_next(e);
        }

        if (result == SPF_RESULT_FAIL && f->record && f->record->exp) {
                if (mechanism) {
                        e->mechanism = strdup(mechanism);
                        if (!e->mechanism)
                                return -ENOMEM;
                }
                e->exp_state = EXP_START;
                return 0;
        }
        return finish(e, result, mechanism, NULL);
}

static int eval_mechanism(SpfEval *e, SpfLookup *ret) {
        _cleanup_free_ char *target = NULL, *rev = NULL;
        SpfMechanism *m = current(e);
        int r;

        switch (m->type) {
        case SPF_MECHANISM_ALL:
                return mechanism_match(e);

        case SPF_MECHANISM_IP4:
                if (e->family == AF_INET &&
                    ip_match(e, &(DnsRecord) { .type = DNS_TYPE_A, .a = m->network.in }, m->cidr4, 0))
                        return mechanism_match(e);
                return mechanism_next(e);

        case SPF_MECHANISM_IP6:
                if (e->family == AF_INET6 &&
                    ip_match(e, &(DnsRecord) { .type = DNS_TYPE_AAAA, .aaaa = m->network.in6 }, 0, m->cidr6))
                        return mechanism_match(e);
                /* An IPv4-mapped network (::ffff:a.b.c.d/96..128) denotes IPv4 addresses, as
                 * an IPv4-mapped client address does (§5). */
                if (e->family == AF_INET && IN6_IS_ADDR_V4MAPPED(&m->network.in6) && m->cidr6 >= 96) {
                        DnsRecord rr = { .type = DNS_TYPE_A };

                        memcpy(&rr.a, m->network.in6.s6_addr + 12, 4);
                        if (ip_match(e, &rr, m->cidr6 - 96, 0))
                                return mechanism_match(e);
                }
                return mechanism_next(e);

        default:
                break;
        }

        if (m->domain_spec) {
                r = expand(e, m->domain_spec, SPF_MACRO_DOMAIN, &target, ret);
                if (r == SPF_STEP_LOOKUP)
                        return r;
                if (r == -ECANCELED)
                        return 0;
                if (IN_SET(r, -EBADMSG, -E2BIG, -EINVAL))
                        return finishf(e, SPF_RESULT_PERMERROR, "cannot expand '%s'", m->text);
                if (r < 0)
                        return r;
        } else {
                target = strdup(top(e)->domain);
                if (!target)
                        return -ENOMEM;
        }

        /* §4.6.4: include, a, mx, ptr, exists and redirect count against the limit */
        if (++e->dns_terms > SPF_DNS_TERMS_MAX)
                return finishf(e, SPF_RESULT_PERMERROR, "more than %u DNS-querying terms", SPF_DNS_TERMS_MAX);

        mechanism_reset(e);
        e->target = TAKE_PTR(target);

        /* A target that is no DNS name (an empty or over-long label, possibly made by a
         * macro) names nothing: as if it did not exist (§4.3, §4.8). */
        if (!target_valid(e->target)) {
                if (m->type == SPF_MECHANISM_INCLUDE)
                        return finishf(e, SPF_RESULT_PERMERROR, "include target '%s' is not a domain name",
                                       e->target);
                return void_lookup(e);
        }

        switch (m->type) {
        case SPF_MECHANISM_A:
                return ask(e, PENDING_A, e->target, address_type(e), ret);
        case SPF_MECHANISM_MX:
                return ask(e, PENDING_MX, e->target, DNS_TYPE_MX, ret);
        case SPF_MECHANISM_EXISTS:
                /* §5.7: always an A query, whatever the client's address family */
                return ask(e, PENDING_EXISTS, e->target, DNS_TYPE_A, ret);
        case SPF_MECHANISM_PTR:
                r = reverse_name(e, &rev);
                if (r < 0)
                        return r;
                return ask(e, PENDING_PTR, rev, DNS_TYPE_PTR, ret);
        case SPF_MECHANISM_INCLUDE:
                return push_frame(e, e->target, false);
        default:
                assert(false);
                return -EINVAL;
        }
}

static int eval_redirect(SpfEval *e, SpfLookup *ret) {
        _cleanup_free_ char *target = NULL;
        Frame *f = top(e);
        int r;

        r = expand(e, f->record->redirect, SPF_MACRO_DOMAIN, &target, ret);
        if (r == SPF_STEP_LOOKUP)
                return r;
        if (r == -ECANCELED)
                return 0;
        if (IN_SET(r, -EBADMSG, -E2BIG, -EINVAL))
                return finishf(e, SPF_RESULT_PERMERROR, "cannot expand redirect=%s", f->record->redirect);
        if (r < 0)
                return r;

        if (++e->dns_terms > SPF_DNS_TERMS_MAX)
                return finishf(e, SPF_RESULT_PERMERROR, "more than %u DNS-querying terms", SPF_DNS_TERMS_MAX);

        if (!target_valid(target))
                return finishf(e, SPF_RESULT_PERMERROR, "redirect target '%s' is not a domain name", target);

        /* §6.1: the redirect target's result is this record's result */
        frame_done(f);
        *f = (Frame) { .domain = TAKE_PTR(target), .from_redirect = true };
        return 0;
}

static int eval_exp(SpfEval *e, SpfLookup *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        if (e->exp_state == EXP_START) {
                r = expand(e, top(e)->record->exp, SPF_MACRO_DOMAIN, &s, ret);
                if (r == SPF_STEP_LOOKUP)
                        return r;
                if (r == -ECANCELED)
                        return 0;
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || isempty(s))
                        /* §6.2: an exp= that cannot be used is ignored */
                        return finish(e, SPF_RESULT_FAIL, NULL, NULL);
                return ask(e, PENDING_EXP, s, DNS_TYPE_TXT, ret);
        }

        assert(e->exp_state == EXP_TEXT);
        r = expand(e, e->exp_text, SPF_MACRO_EXPLANATION, &s, ret);
        if (r == SPF_STEP_LOOKUP)
                return r;
        if (r == -ECANCELED)
                return 0;
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                e->explanation = TAKE_PTR(s);
        return finish(e, SPF_RESULT_FAIL, NULL, NULL);
}

static int run(SpfEval *e, SpfLookup *ret) {
        int r;

        for (;;) {
                Frame *f;

                if (e->done)
                        return SPF_STEP_DONE;

                if (e->exp_state != EXP_NONE) {
                        r = eval_exp(e, ret);
                        if (r != 0)
                                return r;
                        continue;
                }

                f = top(e);
                if (!f->record) {
                        r = ask(e, PENDING_RECORD, f->domain, DNS_TYPE_TXT, ret);
                        if (r != 0)
                                return r;
                        continue;
                }

                if (f->index < f->record->n_mechanisms)
                        r = eval_mechanism(e, ret);
                else if (f->record->redirect)
                        r = eval_redirect(e, ret);
                else
                        /* §4.7: no match and no redirect */
                        r = frame_result(e, SPF_RESULT_NEUTRAL, NULL);
                if (r != 0)
                        return r;
        }
}

static size_t count_type(const DnsAnswer *a, uint16_t type) {
        size_t n = 0;

        if (a->result != DNS_RESULT_OK)
                return 0;
        for (size_t i = 0; i < a->n_records; i++)
                if (a->records[i].type == type)
                        n++;
        return n;
}

static bool dns_failed(const DnsAnswer *a) {
        return IN_SET(a->result, DNS_RESULT_TEMPFAIL, DNS_RESULT_PERMFAIL);
}

static int answer_record(SpfEval *e, const DnsAnswer *a) {
        _cleanup_(spf_record_freep) SpfRecord *rec = NULL;
        _cleanup_free_ char *error = NULL;
        Frame *f = top(e);
        const DnsRecord *found = NULL;
        size_t n = 0;
        int r;

        if (dns_failed(a))
                return finishf(e, SPF_RESULT_TEMPERROR, "DNS %s looking up the SPF record of %s",
                               dns_result_to_string(a->result), f->domain);

        if (a->result == DNS_RESULT_OK)
                for (size_t i = 0; i < a->n_records; i++) {
                        const DnsRecord *rr = a->records + i;

                        if (rr->type != DNS_TYPE_TXT || !spf_record_is_spf(rr->txt.data, rr->txt.len))
                                continue;
                        found = rr;
                        n++;
                }

        if (n == 0) {
                if (e->n_frames > 1)
                        return finishf(e, SPF_RESULT_PERMERROR, "included domain %s has no SPF record", f->domain);
                if (f->from_redirect)
                        return finishf(e, SPF_RESULT_PERMERROR, "redirect target %s has no SPF record", f->domain);
                return finishf(e, SPF_RESULT_NONE, "%s has no SPF record", f->domain);
        }
        if (n > 1)
                return finishf(e, SPF_RESULT_PERMERROR, "%s has %zu SPF records", f->domain, n);

        r = spf_record_parse(found->txt.data, found->txt.len, &rec, &error);
        if (r == -EBADMSG)
                return finishf(e, SPF_RESULT_PERMERROR, "SPF record of %s: %s", f->domain, strna(error));
        if (r < 0)
                return r;

        f->record = TAKE_PTR(rec);
        f->index = 0;
        return 0;
}

static int next_mx_addr(SpfEval *e, SpfLookup *ret) {
        if (e->name_idx >= e->n_names)
                return mechanism_next(e);
        /* §4.6.4: querying the addresses of more than 10 MX hosts is a permerror; the
         * hosts are tried in order, so a match among the first 10 still counts */
        if (e->name_idx >= SPF_MX_NAMES_MAX)
                return finishf(e, SPF_RESULT_PERMERROR, "%s has more than %u MX records",
                               e->target, SPF_MX_NAMES_MAX);
        return ask(e, PENDING_MX_ADDR, e->names[e->name_idx], address_type(e), ret);
}

static int next_ptr_addr(SpfEval *e, SpfLookup *ret) {
        if (e->name_idx >= e->n_names)
                return mechanism_next(e);
        return ask(e, PENDING_PTR_ADDR, e->names[e->name_idx], address_type(e), ret);
}

static int next_p_addr(SpfEval *e, SpfLookup *ret) {
        if (e->p_idx >= e->n_p_names) {
                e->p_state = P_DONE;
                return 0;
        }
        return ask(e, PENDING_P_ADDR, e->p_names[e->p_idx], address_type(e), ret);
}

static int process_answer(SpfEval *e, Pending pending, const DnsAnswer *a, SpfLookup *ret) {
        SpfMechanism *m;
        size_t n;
        int r;

        switch (pending) {
        case PENDING_RECORD:
                return answer_record(e, a);

        case PENDING_A:
        case PENDING_EXISTS:
                m = current(e);
                if (dns_failed(a))
                        return finishf(e, SPF_RESULT_TEMPERROR, "DNS %s looking up %s",
                                       dns_result_to_string(a->result), e->target);
                if (count_type(a, e->lookup_type) == 0)
                        return void_lookup(e);
                if (pending == PENDING_EXISTS)
                        return mechanism_match(e);
                for (size_t i = 0; i < a->n_records; i++)
                        if (ip_match(e, a->records + i, m->cidr4, m->cidr6))
                                return mechanism_match(e);
                return mechanism_next(e);

        case PENDING_MX:
                if (dns_failed(a))
                        return finishf(e, SPF_RESULT_TEMPERROR, "DNS %s looking up MX of %s",
                                       dns_result_to_string(a->result), e->target);
                n = count_type(a, DNS_TYPE_MX);
                if (n == 0)
                        return void_lookup(e);
                for (size_t i = 0; i < a->n_records; i++) {
                        const DnsRecord *rr = a->records + i;

                        /* a null MX (RFC 7505) names no host */
                        if (rr->type != DNS_TYPE_MX || isempty(rr->mx.exchange) || streq(rr->mx.exchange, "."))
                                continue;
                        r = names_add(&e->names, &e->n_names, rr->mx.exchange);
                        if (r < 0)
                                return r;
                }
                e->name_idx = 0;
                return next_mx_addr(e, ret);

        case PENDING_MX_ADDR:
                m = current(e);
                if (dns_failed(a))
                        return finishf(e, SPF_RESULT_TEMPERROR, "DNS %s looking up %s",
                                       dns_result_to_string(a->result), e->names[e->name_idx]);
                if (a->result == DNS_RESULT_OK)
                        for (size_t i = 0; i < a->n_records; i++)
                                if (ip_match(e, a->records + i, m->cidr4, m->cidr6))
                                        return mechanism_match(e);
                e->name_idx++;
                return next_mx_addr(e, ret);

        case PENDING_PTR:
                /* §5.5: a DNS error on the PTR lookup makes the mechanism not match */
                if (dns_failed(a))
                        return mechanism_next(e);
                if (count_type(a, DNS_TYPE_PTR) == 0)
                        return void_lookup(e);
                n = 0;
                for (size_t i = 0; i < a->n_records && n < SPF_PTR_NAMES_MAX; i++) {
                        const DnsRecord *rr = a->records + i;

                        if (rr->type != DNS_TYPE_PTR || !rr->name)
                                continue;
                        n++;    /* §4.6.4: names past the 10th are ignored */
                        /* only names that could match the target are worth validating */
                        if (!is_subdomain_or_equal(rr->name, e->target))
                                continue;
                        r = names_add(&e->names, &e->n_names, rr->name);
                        if (r < 0)
                                return r;
                }
                e->name_idx = 0;
                return next_ptr_addr(e, ret);

        case PENDING_PTR_ADDR:
                /* errors: this name is not validated, go on with the next (§5.5) */
                if (a->result == DNS_RESULT_OK)
                        for (size_t i = 0; i < a->n_records; i++)
                                if (ip_match(e, a->records + i, 32, 128))
                                        return mechanism_match(e);
                e->name_idx++;
                return next_ptr_addr(e, ret);

        case PENDING_P_PTR:
                if (a->result == DNS_RESULT_OK)
                        for (size_t i = 0; i < a->n_records && e->n_p_names < SPF_PTR_NAMES_MAX; i++) {
                                const DnsRecord *rr = a->records + i;

                                if (rr->type != DNS_TYPE_PTR || !rr->name)
                                        continue;
                                r = names_add(&e->p_names, &e->n_p_names, rr->name);
                                if (r < 0)
                                        return r;
                        }
                e->p_idx = 0;
                return next_p_addr(e, ret);

        case PENDING_P_ADDR:
                if (a->result == DNS_RESULT_OK)
                        for (size_t i = 0; i < a->n_records; i++)
                                if (ip_match(e, a->records + i, 32, 128)) {
                                        r = names_add(&e->p_validated, &e->n_p_validated, e->p_names[e->p_idx]);
                                        if (r < 0)
                                                return r;
                                        break;
                                }
                e->p_idx++;
                return next_p_addr(e, ret);

        case PENDING_EXP: {
                const DnsRecord *found = NULL;

                /* §6.2: anything but exactly one TXT record: as if there were no exp= */
                if (count_type(a, DNS_TYPE_TXT) != 1)
                        return finish(e, SPF_RESULT_FAIL, NULL, NULL);
                for (size_t i = 0; i < a->n_records; i++)
                        if (a->records[i].type == DNS_TYPE_TXT)
                                found = a->records + i;
                if (!found->txt.data || memchr(found->txt.data, 0, found->txt.len))
                        return finish(e, SPF_RESULT_FAIL, NULL, NULL);
                e->exp_text = strndup(found->txt.data, found->txt.len);
                if (!e->exp_text)
                        return -ENOMEM;
                e->exp_state = EXP_TEXT;
                return 0;
        }

        default:
                return -EINVAL;
        }
}

int spf_eval_step(SpfEval *e, const DnsAnswer *answer, SpfLookup *ret_lookup) {
        SpfLookup lookup = {};
        Pending pending;
        int r;

        assert(e);
        assert(ret_lookup);

        if (e->done)
                return -ESTALE;

        if (e->pending == PENDING_NONE) {
                if (answer)
                        return -EINVAL;
                if (e->n_frames == 0) {
                        /* §4.3: a domain that is not a usable name gives "none" */
                        if (!domain_valid(e->sender_domain))
                                r = finishf(e, SPF_RESULT_NONE, "'%s' is not a valid domain name", e->sender_domain);
                        else
                                r = push_frame(e, e->sender_domain, false);
                        if (r < 0)
                                return r;
                }
        } else {
                if (!answer)
                        return -EINVAL;
                pending = e->pending;
                e->pending = PENDING_NONE;
                r = process_answer(e, pending, answer, &lookup);
                if (r < 0)
                        return r;
                if (r == SPF_STEP_LOOKUP) {
                        *ret_lookup = lookup;
                        return r;
                }
        }

        r = run(e, &lookup);
        if (r < 0)
                return r;
        if (r == SPF_STEP_LOOKUP)
                *ret_lookup = lookup;
        return r;
}

int spf_eval_result(SpfEval *e, const SpfOutcome **ret) {
        assert(e);
        assert(ret);

        if (!e->done)
                return -EBUSY;
        *ret = &e->outcome;
        return 0;
}

/* Append s to a header value as an RFC 5322 quoted-string, or bare when it is a
 * dot-atom (with '@' allowed, for addresses). Control characters and non-ASCII octets
 * never reach a header: they become '?'. */
static bool is_atext(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~.@", c));
}

static int append(char **buf, size_t *len, const char *s, size_t n) {
        char *d = realloc(*buf, *len + n + 1);

        if (!d)
                return -ENOMEM;
        memcpy(d + *len, s, n);
        *len += n;
        d[*len] = 0;
        *buf = d;
        return 0;
}

static int append_value(char **buf, size_t *len, const char *s) {
        bool bare = !isempty(s) && s[0] != '.' && s[0] != '@';
        int r;

        for (const char *p = s; *p && bare; p++)
                bare = is_atext(*p);
        if (bare)
                return append(buf, len, s, strlen(s));

        r = append(buf, len, "\"", 1);
        for (const char *p = s; r >= 0 && *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (c == '"' || c == '\\') {
                        r = append(buf, len, "\\", 1);
                        if (r >= 0)
                                r = append(buf, len, p, 1);
                } else if (c < 0x20 || c >= 0x7f)
                        r = append(buf, len, "?", 1);
                else
                        r = append(buf, len, p, 1);
        }
        if (r >= 0)
                r = append(buf, len, "\"", 1);
        return r;
}

/* Text inside a comment: parentheses and backslashes quoted, controls replaced. */
static int append_comment_text(char **buf, size_t *len, const char *s) {
        int r = 0;

        for (const char *p = s; r >= 0 && *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (IN_SET(c, '(', ')', '\\')) {
                        r = append(buf, len, "\\", 1);
                        if (r >= 0)
                                r = append(buf, len, p, 1);
                } else if (c < 0x20 || c >= 0x7f)
                        r = append(buf, len, "?", 1);
                else
                        r = append(buf, len, p, 1);
        }
        return r;
}

int spf_eval_received_spf(SpfEval *e, char **ret) {
        char ip[INET6_ADDRSTRLEN + 1];
        _cleanup_free_ char *comment = NULL, *buf = NULL;
        const char *who, *r_s;
        size_t len = 0;
        int r;

        assert(e);
        assert(ret);

        if (!e->done)
                return -EBUSY;
        if (!inet_ntop(e->family, &e->ip, ip, sizeof(ip)))
                return -EINVAL;

        who = e->identity == SPF_IDENTITY_MAILFROM ? e->sender : e->helo;
        switch (e->outcome.result) {
        case SPF_RESULT_PASS:
                r = asprintf_safe(&comment, "domain of %s designates %s as permitted sender", who, ip);
                break;
        case SPF_RESULT_FAIL:
                r = asprintf_safe(&comment, "domain of %s does not designate %s as permitted sender", who, ip);
                break;
        case SPF_RESULT_SOFTFAIL:
                r = asprintf_safe(&comment, "domain of transitioning %s does not designate %s as permitted sender",
                                  who, ip);
                break;
        case SPF_RESULT_NEUTRAL:
                r = asprintf_safe(&comment, "%s is neither permitted nor denied by domain of %s", ip, who);
                break;
        case SPF_RESULT_NONE:
                r = asprintf_safe(&comment, "domain of %s does not publish an SPF record", who);
                break;
        case SPF_RESULT_TEMPERROR:
                r = asprintf_safe(&comment, "temporary error checking the domain of %s", who);
                break;
        default:
                r = asprintf_safe(&comment, "permanent error in the SPF record for the domain of %s", who);
        }
        if (r < 0)
                return -ENOMEM;

        r_s = spf_result_to_string(e->outcome.result);
        r = append(&buf, &len, r_s, strlen(r_s));
        if (r >= 0)
                r = append(&buf, &len, " (", 2);
        if (r >= 0)
                r = append_comment_text(&buf, &len, e->receiver);
        if (r >= 0)
                r = append(&buf, &len, ": ", 2);
        if (r >= 0)
                r = append_comment_text(&buf, &len, comment);
        if (r >= 0)
                r = append(&buf, &len, ") client-ip=", STRLEN(") client-ip="));
        if (r >= 0)
                r = append(&buf, &len, ip, strlen(ip));
        if (r >= 0)
                r = append(&buf, &len, "; envelope-from=", STRLEN("; envelope-from="));
        if (r >= 0)
                r = append_value(&buf, &len, e->sender);
        if (r >= 0)
                r = append(&buf, &len, "; helo=", STRLEN("; helo="));
        if (r >= 0)
                r = append_value(&buf, &len, e->helo);
        if (r >= 0)
                r = append(&buf, &len, "; receiver=", STRLEN("; receiver="));
        if (r >= 0)
                r = append_value(&buf, &len, e->receiver);
        if (r >= 0)
                r = append(&buf, &len, "; identity=", STRLEN("; identity="));
        if (r >= 0)
                r = append(&buf, &len, spf_identity_to_string(e->identity),
                           strlen(spf_identity_to_string(e->identity)));
        if (r >= 0 && e->outcome.mechanism) {
                r = append(&buf, &len, "; mechanism=", STRLEN("; mechanism="));
                if (r >= 0)
                        r = append_value(&buf, &len, e->outcome.mechanism);
        }
        if (r >= 0 && e->outcome.problem && IN_SET(e->outcome.result, SPF_RESULT_PERMERROR, SPF_RESULT_TEMPERROR)) {
                r = append(&buf, &len, "; problem=", STRLEN("; problem="));
                if (r >= 0)
                        r = append_value(&buf, &len, e->outcome.problem);
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(buf);
        return 0;
}

int spf_eval_auth_results(SpfEval *e, char **ret) {
        _cleanup_free_ char *buf = NULL;
        const char *r_s;
        size_t len = 0;
        int r;

        assert(e);
        assert(ret);

        if (!e->done)
                return -EBUSY;

        r_s = spf_result_to_string(e->outcome.result);
        r = append(&buf, &len, "spf=", 4);
        if (r >= 0)
                r = append(&buf, &len, r_s, strlen(r_s));
        if (r >= 0 && e->identity == SPF_IDENTITY_MAILFROM) {
                r = append(&buf, &len, " smtp.mailfrom=", STRLEN(" smtp.mailfrom="));
                if (r >= 0)
                        r = append_value(&buf, &len, e->sender);
        } else if (r >= 0) {
                r = append(&buf, &len, " smtp.helo=", STRLEN(" smtp.helo="));
                if (r >= 0)
                        r = append_value(&buf, &len, e->helo);
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(buf);
        return 0;
}
