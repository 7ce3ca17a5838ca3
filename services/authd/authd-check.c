/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "arc.h"
#include "auth-results.h"
#include "authd-check.h"
#include "cleanup.h"
#include "dkim-sign.h"
#include "dkim-verify.h"
#include "dmarc-eval.h"
#include "dmarc-report.h"
#include "log.h"
#include "memfd-util.h"
#include "rfc5322.h"
#include "string-util.h"

/* Rounds of "verify, look up the keys it asked for, verify again": DKIM needs one (its key
 * names are known beforehand), ARC one per set in the worst case. */
#define KEY_ROUNDS_MAX (2U * ARC_MAX_INSTANCES + 2U)
/* Key lookups of one check, over all rounds. */
#define KEY_LOOKUPS_MAX (DKIM_VERIFY_MAX_SIGNATURES_DEFAULT + 2U * ARC_MAX_INSTANCES)
#define SIGN_KEYS_MAX 16U

typedef enum CheckKind {
        CHECK_SPF,
        CHECK_VERIFY,
        CHECK_SEAL,
} CheckKind;

typedef enum CheckPhase {
        PHASE_SPF,
        PHASE_DKIM,
        PHASE_ARC,
        PHASE_DMARC,
        PHASE_DONE,
} CheckPhase;

typedef struct KeyEntry {
        AuthCheck *check;
        char *name;                     /* selector._domainkey.domain */
        DnsQuery *query;
        bool started, done;
        int error;                      /* -ENXIO no key, -EIO lookup failed */
        char *txt;
} KeyEntry;

struct AuthCheck {
        Manager *manager;
        AuthCheck *checks_prev, *checks_next;

        CheckKind kind;
        CheckPhase phase;
        sd_bus_message *request;
        sd_bus_track *track;
        sd_event_source *timeout;
        sd_event_source *start;         /* the deferred first step */
        char *session_field;            /* "MAILSEC_SESSION=..." or NULL */

        const char *msg;                /* the sealed memfd, mapped read-only */
        size_t msg_size;

        /* SPF */
        SpfRequest spf_req;
        char *client_ip, *helo, *mail_from;
        SpfEval *spf;
        char *spf_result;               /* given by the caller or evaluated */
        DnsQuery *query;                /* the SPF or DMARC lookup in progress */
        DnsAnswer answer;               /* its answer, until the step machine has it */
        bool have_answer;

        /* DKIM and ARC keys */
        KeyEntry *keys;
        size_t n_keys;
        unsigned keys_pending;
        bool keys_missing;
        unsigned key_rounds;
        bool dkim_prefetched;
        DkimVerifyResults dkim;
        ArcVerifyResult arc;

        /* DMARC */
        DmarcEval *dmarc;
        char *from_domain;
        ArcSetInfo *arc_sets;           /* read only when a trusted sealer may rescue DMARC */
        size_t n_arc_sets;
        bool overridden;                /* a trusted ARC sealer rescued a DMARC failure */
        DmarcArcOverride override;      /* strings point into arc_sets */

        /* SealArc */
        char *seal_ar;
};

static const char* check_kind_name(CheckKind k) {
        return k == CHECK_SPF ? "CheckSpf" : k == CHECK_VERIFY ? "VerifyMessage" : "SealArc";
}

#define check_log(c, level, error, ...)                                                 \
        ({                                                                              \
                const char *_f_[2] = { (c)->session_field, NULL };                      \
                log_full_errno_fields(level, error, _f_[0] ? _f_ : NULL, __VA_ARGS__);  \
        })

static void check_unlink(AuthCheck *c) {
        Manager *m = c->manager;

        if (!m)
                return;
        if (c->checks_prev)
                c->checks_prev->checks_next = c->checks_next;
        else if (m->checks == c)
                m->checks = c->checks_next;
        if (c->checks_next)
                c->checks_next->checks_prev = c->checks_prev;
        c->checks_prev = c->checks_next = NULL;
        m->n_checks--;
        c->manager = NULL;
}

static AuthCheck* check_free(AuthCheck *c) {
        if (!c)
                return NULL;
        check_unlink(c);
        for (size_t i = 0; i < c->n_keys; i++) {
                dns_query_free(c->keys[i].query);
                free(c->keys[i].name);
                free(c->keys[i].txt);
        }
        free(c->keys);
        dns_query_free(c->query);
        dns_answer_done(&c->answer);
        spf_eval_free(c->spf);
        dmarc_eval_free(c->dmarc);
        arc_set_infos_free(c->arc_sets, c->n_arc_sets);
        dkim_verify_results_done(&c->dkim);
        sd_event_source_disable_unref(c->timeout);
        sd_event_source_disable_unref(c->start);
        sd_bus_track_unref(c->track);
        sd_bus_message_unref(c->request);
        if (c->msg_size > 0)
                (void) munmap((void*) c->msg, c->msg_size);
        free(c->session_field);
        free(c->client_ip);
        free(c->helo);
        free(c->mail_from);
        free(c->spf_result);
        free(c->from_domain);
        free(c->seal_ar);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(AuthCheck*, check_free);

/* The DMARC aggregate-report store (dmarc-report.h): the directory "dmarc" in
 * $STATE_DIRECTORY when systemd gives the service one (StateDirectory=mailsec/authd, so
 * /var/lib/mailsec/authd/dmarc, where mailsec-dmarc-report(8) reads it); no recording
 * without. */
static DmarcStore* report_store_get(Manager *m) {
        _cleanup_free_ char *dir = NULL;
        const char *state;
        int r;

        if (m->report_store_tried)
                return m->report_store;
        m->report_store_tried = true;
        state = secure_getenv("STATE_DIRECTORY");
        if (isempty(state))
                return NULL;
        /* StateDirectory= may list several directories: the first is ours */
        if (asprintf_safe(&dir, "%.*s/dmarc", (int) strcspn(state, ":"), state) < 0)
                return NULL;
        if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
                log_warning_errno(errno, "Cannot create %s, not recording DMARC evaluations: %m", dir);
                return NULL;
        }
        r = dmarc_store_open(dir, &m->report_store);
        if (r < 0) {
                log_warning_errno(r, "Cannot open the DMARC report store in %s, not recording: %m", dir);
                return NULL;
        }
        log_debug("Recording DMARC evaluations for aggregate reports in %s.", dir);
        return m->report_store;
}

void auth_check_free_all(Manager *m) {
        while (m->checks)
                check_free(m->checks);
        m->report_store = dmarc_store_free(m->report_store);
        m->report_store_tried = false;
}

static int check_fail(AuthCheck *c, int r) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        check_log(c, LOG_WARNING, r, "%s failed: %m", check_kind_name(c->kind));
        if (r == -EBADMSG)
                (void) sd_bus_error_setf(&e, AUTH_ERROR_BAD_MESSAGE, "The message cannot be parsed.");
        else
                (void) sd_bus_error_set_errno(&e, r);
        (void) sd_bus_reply_method_error(c->request, &e);
        check_free(c);
        return r;
}

static int map_message(Manager *m, int fd, const void **ret, size_t *ret_size, sd_bus_error *error) {
        int r;

        r = memfd_map_sealed(fd, m->config->max_message_size, ret, ret_size);
        if (r == -EFBIG)
                return sd_bus_error_setf(error, AUTH_ERROR_BAD_MESSAGE,
                                         "The message is larger than MaxMessageSize=%" PRIu64 ".",
                                         m->config->max_message_size);
        if (r == -EPERM)
                return sd_bus_error_setf(error, AUTH_ERROR_BAD_MESSAGE,
                                         "The message memfd is not sealed against writing, growing, shrinking and sealing.");
        if (r < 0)
                return sd_bus_error_setf(error, AUTH_ERROR_BAD_MESSAGE,
                                         "The message is not a sealed memfd: %s", strerror(-r));
        if (*ret_size == 0)
                return sd_bus_error_setf(error, AUTH_ERROR_BAD_MESSAGE, "The message is empty.");
        return 0;
}

static void check_advance(AuthCheck *c);

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        AuthCheck *c = userdata;

        check_log(c, LOG_WARNING, 0, "%s timed out waiting for DNS.", check_kind_name(c->kind));
        (void) sd_bus_error_setf(&e, SD_BUS_ERROR_TIMEOUT, "The DNS lookups did not finish in time.");
        (void) sd_bus_reply_method_error(c->request, &e);
        check_free(c);
        return 0;
}

static int on_caller_gone(sd_bus_track *t, void *userdata) {
        AuthCheck *c = userdata;

        check_log(c, LOG_DEBUG, 0, "%s: the caller left the bus, dropping the check.", check_kind_name(c->kind));
        check_free(c);
        return 0;
}

static int check_new(Manager *m, CheckKind kind, sd_bus_message *request, AuthCheck **ret, sd_bus_error *error) {
        _cleanup_(check_freep) AuthCheck *c = NULL;
        int r;

        if (m->n_checks >= m->config->max_pending)
                return sd_bus_error_setf(error, AUTH_ERROR_BUSY,
                                         "%u checks are in progress already; try again later.", m->n_checks);

        c = calloc(1, sizeof(AuthCheck));
        if (!c)
                return -ENOMEM;
        c->kind = kind;
        c->phase = kind == CHECK_SEAL ? PHASE_ARC : PHASE_SPF;
        c->request = sd_bus_message_ref(request);
        c->answer = (DnsAnswer) DNS_ANSWER_NULL;
        c->arc = (ArcVerifyResult) ARC_VERIFY_RESULT_NULL;
        c->dkim = (DkimVerifyResults) DKIM_VERIFY_RESULTS_NULL;

        c->manager = m;
        c->checks_next = m->checks;
        if (m->checks)
                m->checks->checks_prev = c;
        m->checks = c;
        m->n_checks++;

        r = sd_event_add_time_relative(m->event, &c->timeout, CLOCK_MONOTONIC, m->config->check_timeout, 0,
                                       on_timeout, c);
        if (r < 0)
                return r;

        r = sd_bus_track_new(sd_bus_message_get_bus(request), &c->track, on_caller_gone, c);
        if (r < 0)
                return r;
        r = sd_bus_track_add_sender(c->track, request);
        if (r < 0)
                return r;

        m->stats.checks_total++;
        *ret = TAKE_PTR(c);
        return 0;
}

static int answer_copy(const DnsAnswer *from, DnsAnswer *to) {
        int r;

        dns_answer_done(to);
        to->result = from->result;
        to->dnssec = from->dnssec;
        for (size_t i = 0; i < from->n_records; i++) {
                r = dns_answer_add(to, &from->records[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The SPF and DMARC lookups: one at a time, answered into c->answer. */
static void on_step_answer(DnsQuery *q, const DnsAnswer *answer, void *userdata) {
        AuthCheck *c = userdata;
        int r;

        r = answer_copy(answer, &c->answer);
        if (r < 0) {
                check_fail(c, r);
                return;
        }
        c->have_answer = true;
        check_advance(c);
}

static int check_lookup(AuthCheck *c, const char *name, uint16_t type) {
        c->query = dns_query_free(c->query);
        dns_answer_done(&c->answer);
        c->answer = (DnsAnswer) DNS_ANSWER_NULL;
        c->have_answer = false;
        check_log(c, LOG_DEBUG, 0, "Looking up %s (type %u).", name, type);
        return dns_resolver_query(c->manager->resolver, name, type, on_step_answer, c, &c->query);
}

/* Keys (DKIM and ARC share the cache of one check). */

static KeyEntry* key_find(AuthCheck *c, const char *name) {
        for (size_t i = 0; i < c->n_keys; i++)
                if (strcaseeq(c->keys[i].name, name))
                        return &c->keys[i];
        return NULL;
}

static int key_add(AuthCheck *c, const char *name) {
        KeyEntry *n;

        if (key_find(c, name))
                return 0;
        if (c->n_keys >= KEY_LOOKUPS_MAX)
                return -E2BIG;
        n = reallocarray(c->keys, c->n_keys + 1, sizeof(KeyEntry));
        if (!n)
                return -ENOMEM;
        c->keys = n;
        c->keys[c->n_keys] = (KeyEntry) { .check = c };
        c->keys[c->n_keys].name = strdup(name);
        if (!c->keys[c->n_keys].name)
                return -ENOMEM;
        c->n_keys++;
        return 0;
}

static void on_key_answer(DnsQuery *q, const DnsAnswer *answer, void *userdata) {
        AuthCheck *c = userdata;
        KeyEntry *k = NULL;
        const DnsRecord *txt = NULL;

        for (size_t i = 0; i < c->n_keys; i++)
                if (c->keys[i].query == q)
                        k = &c->keys[i];
        if (!k)
                return;
        k->done = true;
        if (answer->result == DNS_RESULT_NXDOMAIN)
                k->error = -ENXIO;
        else if (answer->result != DNS_RESULT_OK)
                k->error = -EIO;
        else {
                /* the first record that looks like a key, else the first (dkim-verify.h) */
                for (size_t i = 0; i < answer->n_records; i++) {
                        const DnsRecord *rr = &answer->records[i];

                        if (rr->type != DNS_TYPE_TXT)
                                continue;
                        if (!txt)
                                txt = rr;
                        if (startswith(rr->txt.data, "v=DKIM1")) {
                                txt = rr;
                                break;
                        }
                }
                if (!txt)
                        k->error = -ENXIO;
                else {
                        k->txt = strndup(txt->txt.data, txt->txt.len);
                        if (!k->txt)
                                k->error = -ENOMEM;
                }
        }
        check_log(c, LOG_DEBUG, k->error, "Key %s: %s.", k->name,
                  k->error == 0 ? "found" : k->error == -ENXIO ? "none" : "lookup failed");
        if (k->error == -ENOMEM) {
                check_fail(c, -ENOMEM);
                return;
        }
        if (c->keys_pending > 0 && --c->keys_pending == 0)
                check_advance(c);
}

/* Start every key lookup not yet started. Returns the number started. */
static int keys_start(AuthCheck *c) {
        int r, n = 0;

        for (size_t i = 0; i < c->n_keys; i++) {
                KeyEntry *k = &c->keys[i];

                if (k->started)
                        continue;
                k->started = true;
                r = dns_resolver_query(c->manager->resolver, k->name, DNS_TYPE_TXT, on_key_answer, c, &k->query);
                if (r < 0)
                        return r;
                c->keys_pending++;
                n++;
        }
        return n;
}

static int get_key(const char *selector, const char *domain, char **ret_txt, void *userdata) {
        AuthCheck *c = userdata;
        _cleanup_free_ char *name = NULL;
        KeyEntry *k;
        int r;

        r = asprintf_safe(&name, "%s._domainkey.%s", selector, domain);
        if (r < 0)
                return r;
        k = key_find(c, name);
        if (!k || !k->done) {
                /* not known yet: remember it, verify again once it is */
                c->keys_missing = true;
                if (!k) {
                        r = key_add(c, name);
                        if (r == -ENOMEM)
                                return r;
                }
                return -EAGAIN;
        }
        if (k->error < 0)
                return k->error;
        *ret_txt = strdup(k->txt);
        return *ret_txt ? 0 : -ENOMEM;
}

/* One verification round: 1 when finished, 0 when waiting for keys. */
static int keyed_round(AuthCheck *c, int (*run)(AuthCheck *c)) {
        int r;

        c->keys_missing = false;
        r = run(c);
        if (r < 0)
                return r;
        if (!c->keys_missing || ++c->key_rounds > KEY_ROUNDS_MAX)
                return 1;               /* what is still missing counts as a failed lookup */
        r = keys_start(c);
        if (r < 0)
                return r;
        return r > 0 ? 0 : 1;
}

static int run_dkim(AuthCheck *c) {
        DkimVerifyOptions o = DKIM_VERIFY_OPTIONS_DEFAULT;

        o.now = (uint64_t) time(NULL);
        o.allow_partial_body = c->manager->config->dkim_allow_partial_body;
        dkim_verify_results_done(&c->dkim);
        return dkim_verify(c->msg, c->msg_size, &o, get_key, c, &c->dkim);
}

static int run_arc(AuthCheck *c) {
        c->arc = (ArcVerifyResult) ARC_VERIFY_RESULT_NULL;
        return arc_verify(c->msg, c->msg_size, get_key, c, &c->arc);
}

/* The RFC5322.From domain; NULL when there is not exactly one usable From field. */
static int from_domain(AuthCheck *c) {
        Rfc5322Limits limits = RFC5322_LIMITS_DEFAULT;
        Rfc5322Field f, from = {};
        size_t offset = 0, n = 0;
        unsigned count = 0;
        int r;

        for (;;) {
                r = rfc5322_field_next(c->msg, c->msg_size, &limits, &offset, &n, &f);
                if (r < 0)
                        return r == -ENOMEM ? r : 0;
                if (r == 0)
                        break;
                if (rfc5322_field_is(&f, "From")) {
                        from = f;
                        count++;
                }
        }
        if (count != 1)
                return 0;
        r = dmarc_from_domain_extract(from.value, from.value_len, &c->from_domain);
        return r == -ENOMEM ? r : 0;
}

static const char* mail_from_domain(const char *mail_from) {
        const char *at;

        if (isempty(mail_from))
                return NULL;
        at = strrchr(mail_from, '@');
        return at ? at + 1 : NULL;
}

static int dmarc_start(AuthCheck *c) {
        _cleanup_free_ DmarcDkimResult *dkim = NULL;
        DmarcInput in = {};
        int r;

        r = from_domain(c);
        if (r < 0)
                return r;
        if (c->dkim.n_results > 0) {
                dkim = calloc(c->dkim.n_results, sizeof(DmarcDkimResult));
                if (!dkim)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < c->dkim.n_results; i++) {
                dkim[i].domain = c->dkim.results[i].domain;
                dkim[i].pass = c->dkim.results[i].result == DKIM_RESULT_PASS;
        }
        in.from_domain = c->from_domain ?: "";
        in.spf_pass = streq_ptr(c->spf_result, "pass");
        in.spf_mail_from_domain = mail_from_domain(c->mail_from);
        in.spf_helo_domain = c->helo;
        in.dkim = dkim;
        in.n_dkim = c->dkim.n_results;
        in.sample = arc4random_uniform(100);
        in.discovery = c->manager->config->dmarc_tree_walk ? DMARC_DISCOVERY_TREE_WALK : DMARC_DISCOVERY_RFC7489;
        return dmarc_eval_new(&in, &c->dmarc);
}

/* Runs the phases as far as possible: 1 when all are done, 0 when waiting for DNS. */
static int check_step(AuthCheck *c) {
        const char *name;
        SpfLookup lookup;
        int r;

        for (;;)
                switch (c->phase) {

                case PHASE_SPF:
                        if (!c->spf) {
                                c->phase = c->kind == CHECK_SPF ? PHASE_DONE : PHASE_DKIM;
                                break;
                        }
                        r = spf_eval_step(c->spf, c->have_answer ? &c->answer : NULL, &lookup);
                        c->have_answer = false;
                        if (r < 0)
                                return r;
                        if (r == SPF_STEP_LOOKUP) {
                                r = check_lookup(c, lookup.name, lookup.type);
                                return r < 0 ? r : 0;
                        }
                        {
                                const SpfOutcome *o;

                                r = spf_eval_result(c->spf, &o);
                                if (r < 0)
                                        return r;
                                r = free_and_strdup(&c->spf_result, spf_result_to_string(o->result));
                                if (r < 0)
                                        return r;
                                check_log(c, LOG_INFO, 0, "SPF %s for %s from %s (%s).",
                                          c->spf_result, strna(o->sender), strna(c->client_ip),
                                          strna(o->mechanism ?: o->problem));
                        }
                        c->manager->stats.spf_checks++;
                        c->phase = c->kind == CHECK_SPF ? PHASE_DONE : PHASE_DKIM;
                        break;

                case PHASE_DKIM:
                        if (!c->dkim_prefetched) {
                                _cleanup_strv_free_ char **names = NULL;

                                c->dkim_prefetched = true;
                                r = dkim_verify_key_names(c->msg, c->msg_size, &names);
                                if (r == -ENOMEM)
                                        return r;
                                STRV_FOREACH(n, names) {
                                        r = key_add(c, *n);
                                        if (r == -ENOMEM)
                                                return r;
                                }
                                r = keys_start(c);
                                if (r < 0)
                                        return r;
                                if (r > 0)
                                        return 0;
                        }
                        r = keyed_round(c, run_dkim);
                        if (r == -EBADMSG) {
                                /* no parseable header: no signature can verify */
                                dkim_verify_results_done(&c->dkim);
                                r = 1;
                        }
                        if (r <= 0)
                                return r;
                        c->manager->stats.dkim_verified += c->dkim.n_results;
                        c->key_rounds = 0;
                        c->phase = PHASE_ARC;
                        break;

                case PHASE_ARC:
                        r = keyed_round(c, run_arc);
                        if (r <= 0)
                                return r;
                        c->phase = c->kind == CHECK_SEAL ? PHASE_DONE : PHASE_DMARC;
                        break;

                case PHASE_DMARC:
                        if (!c->dmarc) {
                                r = dmarc_start(c);
                                if (r < 0)
                                        return r;
                        } else if (c->have_answer) {
                                c->have_answer = false;
                                r = dmarc_eval_feed(c->dmarc, &c->answer);
                                if (r < 0)
                                        return r;
                        }
                        r = dmarc_eval_next(c->dmarc, &name);
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                r = check_lookup(c, name, DNS_TYPE_TXT);
                                return r < 0 ? r : 0;
                        }
                        c->manager->stats.dmarc_evaluated++;
                        c->phase = PHASE_DONE;
                        break;

                case PHASE_DONE:
                        return 1;
                }
}

static int reply_spf(AuthCheck *c) {
        _cleanup_free_ char *received = NULL;
        const SpfOutcome *o;
        const char *explanation;
        int r;

        r = spf_eval_result(c->spf, &o);
        if (r < 0)
                return r;
        r = spf_eval_received_spf(c->spf, &received);
        if (r < 0)
                return r;
        explanation = o->result == SPF_RESULT_FAIL ? o->explanation : o->problem;
        return sd_bus_reply_method_return(c->request, "sss", spf_result_to_string(o->result),
                                          strempty(explanation), received);
}

/* TrustedArcSealers= (dmarc_arc_override() has the rule). */
static int dmarc_local_policy(AuthCheck *c, const DmarcResult *d) {
        char * const *trusted = c->manager->config->trusted_arc_sealers;
        int r;

        if (strv_length(trusted) == 0 || d->verdict != DMARC_VERDICT_FAIL || c->arc.status != ARC_CHAIN_PASS)
                return 0;
        r = arc_sets_read(c->msg, c->msg_size, &c->arc_sets, &c->n_arc_sets);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;
        r = dmarc_arc_override(d, c->arc.status, c->arc_sets, c->n_arc_sets, trusted, &c->override);
        if (r < 0)
                return r;
        c->overridden = r > 0;
        if (c->overridden)
                check_log(c, LOG_INFO, 0,
                          "DMARC fail for %s (disposition %s) overridden by local policy: the trusted ARC sealer "
                          "as[%u].d=%s as[%u].s=%s saw dmarc=pass.",
                          strna(d->from_domain), dmarc_policy_to_string(d->disposition),
                          c->override.instance, c->override.domain, c->override.instance, c->override.selector);
        return 0;
}

/* One aggregate-report record per DMARC evaluation that found a policy record. Failing to
 * record never fails the check. */
static void record_dmarc(AuthCheck *c, const DmarcResult *d) {
        _cleanup_(dmarc_report_entry_done) DmarcReportEntry e = DMARC_REPORT_ENTRY_NULL;
        const char *mf = mail_from_domain(c->mail_from);
        DmarcStore *store;
        int r;

        if (!d->have_record || isempty(c->client_ip))
                return;
        store = report_store_get(c->manager);
        if (!store)
                return;

        e.time = (uint64_t) time(NULL);
        e.source_ip = strdup(c->client_ip);
        if (!e.source_ip)
                goto oom;
        if (mf) {
                e.envelope_from = strdup(mf);
                if (!e.envelope_from)
                        goto oom;
        }
        if (mf || !isempty(c->helo)) {
                e.spf_domain = strdup(mf ?: c->helo);
                if (!e.spf_domain)
                        goto oom;
                e.spf_scope = mf ? DMARC_REPORT_SPF_SCOPE_MFROM : DMARC_REPORT_SPF_SCOPE_HELO;
        }
        if (c->spf_result) {
                DmarcReportSpfResult x = dmarc_report_spf_result_from_string(c->spf_result);

                e.spf_result = x >= 0 ? x : DMARC_REPORT_SPF_NONE;
        }
        for (size_t i = 0; i < c->dkim.n_results && i < DMARC_REPORT_DKIM_MAX; i++) {
                const DkimVerifyResult *v = &c->dkim.results[i];
                DmarcReportDkimResult x = dmarc_report_dkim_result_from_string(dkim_result_to_string(v->result));

                if (isempty(v->domain))
                        continue;
                r = dmarc_report_entry_add_dkim(&e, v->domain, v->selector, x >= 0 ? x : DMARC_REPORT_DKIM_PERMERROR);
                if (r == -ENOMEM)
                        goto oom;
        }
        r = dmarc_report_entry_set_result(&e, d);
        if (r == -ENODATA)
                return;
        if (r < 0)
                goto oom;
        if (c->overridden) {
                r = dmarc_report_entry_set_arc_override(&e, c->override.instance, c->override.domain,
                                                        c->override.selector);
                if (r == -ENOMEM)
                        goto oom;
        }
        r = dmarc_report_record(store, &e);
        if (r < 0)
                check_log(c, LOG_WARNING, r, "Cannot record the DMARC evaluation for %s, ignoring: %m",
                          strna(d->from_domain));
        return;

oom:
        check_log(c, LOG_WARNING, -ENOMEM, "Cannot record the DMARC evaluation, ignoring: %m");
}

static int build_auth_results(AuthCheck *c, const DmarcResult *d, char **ret) {
        _cleanup_(auth_results_freep) AuthResults *ar = NULL;
        int r;

        r = auth_results_new(c->manager->config->authserv_id, &ar);
        if (r < 0)
                return r;
        if (c->spf_result) {
                r = auth_results_add_spf(ar, c->spf_result, NULL,
                                         isempty(c->mail_from) ? NULL : c->mail_from,
                                         isempty(c->mail_from) ? c->helo : NULL);
                if (r < 0)
                        return r;
        }
        if (c->dkim.n_results == 0) {
                r = auth_results_add(ar, "dkim", "none", NULL);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < c->dkim.n_results; i++) {
                const DkimVerifyResult *v = &c->dkim.results[i];
                _cleanup_free_ char *b = NULL;

                if (v->b_prefix_len > 0) {
                        r = dkim_base64_encode(v->b_prefix, v->b_prefix_len < 6 ? v->b_prefix_len : 6, &b);
                        if (r < 0)
                                return r;
                }
                r = auth_results_add_dkim(ar, dkim_result_to_string(v->result), v->reason, v->domain,
                                          v->selector, b);
                if (r == -E2BIG)
                        break;
                if (r < 0)
                        return r;
        }
        if (c->kind == CHECK_VERIFY) {
                _cleanup_free_ char *reason = NULL;

                /* A rescued failure stays dmarc=fail: the result reports the evaluation
                 * (RFC 8601 §2.7.1 lists no "overridden" result), and the local decision
                 * goes into reason=, naming the set that vouched for the From domain in the
                 * form RFC 8617 §7.2.1 uses for the report comment. */
                if (c->overridden &&
                    asprintf_safe(&reason, "local policy override: arc=pass as[%u].d=%s as[%u].s=%s",
                                  c->override.instance, c->override.domain, c->override.instance,
                                  c->override.selector) < 0)
                        return -ENOMEM;
                r = auth_results_add_dmarc(ar, dmarc_verdict_to_string(d->verdict), reason ?: d->reason,
                                           d->from_domain);
                if (r < 0)
                        return r;
        }
        r = auth_results_add_arc(ar, arc_chain_status_to_string(c->arc.status), c->arc.reason, c->client_ip);
        if (r < 0)
                return r;
        return auth_results_format(ar, ret);
}

static int reply_verify(AuthCheck *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *ar = NULL;
        const DmarcResult *d;
        int r;

        d = dmarc_eval_result(c->dmarc);
        if (!d)
                return -ESTALE;
        r = dmarc_local_policy(c, d);
        if (r < 0)
                return r;
        record_dmarc(c, d);
        r = build_auth_results(c, d, &ar);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_return(c->request, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->dkim.n_results; i++) {
                const DkimVerifyResult *v = &c->dkim.results[i];

                r = sd_bus_message_append(reply, "(ssss)", strempty(v->domain), strempty(v->selector),
                                          dkim_result_to_string(v->result), strempty(v->reason));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "sssss",
                                  dmarc_verdict_to_string(d->verdict),
                                  d->policy >= 0 ? dmarc_policy_to_string(d->policy) : "",
                                  dmarc_policy_to_string(c->overridden ? DMARC_POLICY_NONE : d->disposition),
                                  arc_chain_status_to_string(c->arc.status),
                                  ar);
        if (r < 0)
                return r;

        check_log(c, LOG_INFO, 0, "Verified: %zu DKIM signature(s), DMARC %s (%s, disposition %s%s), ARC %s.",
                  c->dkim.n_results, dmarc_verdict_to_string(d->verdict), strna(d->from_domain),
                  dmarc_policy_to_string(c->overridden ? DMARC_POLICY_NONE : d->disposition),
                  c->overridden ? ", overridden by local policy" : "", arc_chain_status_to_string(c->arc.status));
        return sd_bus_send(NULL, reply, NULL);
}

static int reply_seal(AuthCheck *c) {
        _cleanup_free_ char *headers = NULL;
        ArcSealer s = ARC_SEALER_INIT;
        const AuthSigningKey *k;
        int r;

        k = auth_config_arc_key(c->manager->config);
        if (!k)
                return -ENOKEY;
        s.key = k->pkey;
        s.domain = k->domain;
        s.selector = k->selector;
        s.timestamp = (uint64_t) time(NULL);

        r = arc_seal(c->msg, c->msg_size, c->arc.status, c->seal_ar, &s, &headers);
        if (r == -ERANGE || r == -EINVAL) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                (void) sd_bus_error_setf(&e, SD_BUS_ERROR_INVALID_ARGS, "Cannot seal this message: %s",
                                         r == -ERANGE ? "the chain holds 50 sets already"
                                                      : "the chain or the Authentication-Results value is unusable");
                return sd_bus_reply_method_error(c->request, &e);
        }
        if (r < 0)
                return r;
        check_log(c, LOG_INFO, 0, "ARC chain %s, %s.", arc_chain_status_to_string(c->arc.status),
                  headers ? "sealed" : "not sealed (cv=fail)");
        return sd_bus_reply_method_return(c->request, "s", strempty(headers));
}

static void check_advance(AuthCheck *c) {
        int r;

        r = check_step(c);
        if (r == 0)
                return;
        if (r > 0) {
                if (c->kind == CHECK_SPF)
                        r = reply_spf(c);
                else if (c->kind == CHECK_VERIFY)
                        r = reply_verify(c);
                else
                        r = reply_seal(c);
        }
        if (r < 0) {
                check_fail(c, r);
                return;
        }
        check_free(c);
}

/* Checks start from the event loop, like their DNS answers: replies never come from within
 * the method handler, so a check may end in any phase without special cases. */
static int on_start(sd_event_source *s, void *userdata) {
        AuthCheck *c = userdata;

        c->start = sd_event_source_disable_unref(c->start);
        check_advance(c);
        return 0;
}

static int check_launch(AuthCheck *c) {
        int r;

        r = sd_event_add_defer(c->manager->event, &c->start, on_start, c);
        return r < 0 ? r : 1;
}

int auth_parse_ip(const char *s, SpfRequest *req) {
        if (inet_pton(AF_INET, s, &req->ip.in) == 1) {
                req->family = AF_INET;
                return 0;
        }
        if (inet_pton(AF_INET6, s, &req->ip.in6) == 1) {
                req->family = AF_INET6;
                return 0;
        }
        return -EINVAL;
}

static int check_spf_init(AuthCheck *c, const SpfRequest *req, const char *client_ip) {
        SpfRequest r = *req;

        c->client_ip = strdup(client_ip);
        c->helo = strdup(req->helo);
        c->mail_from = strdup(strempty(req->mail_from));
        if (!c->client_ip || !c->helo || !c->mail_from)
                return -ENOMEM;
        r.helo = c->helo;
        r.mail_from = c->mail_from;
        r.receiver = c->manager->config->authserv_id;
        r.now = (uint64_t) time(NULL);
        return spf_eval_new(&r, &c->spf);
}

int auth_check_spf_start(Manager *m, sd_bus_message *request, const SpfRequest *req, sd_bus_error *error) {
        _cleanup_(check_freep) AuthCheck *c = NULL;
        char ip[INET6_ADDRSTRLEN];
        int r;

        r = check_new(m, CHECK_SPF, request, &c, error);
        if (r < 0)
                return r;
        if (!inet_ntop(req->family, &req->ip, ip, sizeof(ip)))
                return -EINVAL;
        r = check_spf_init(c, req, ip);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unusable SPF request.");
        if (r < 0)
                return r;
        r = check_launch(c);
        if (r < 0)
                return r;
        TAKE_PTR(c);
        return 1;
}

int auth_check_verify_start(Manager *m, sd_bus_message *request, int fd, const AuthEnvelope *env,
                            sd_bus_error *error) {
        _cleanup_(check_freep) AuthCheck *c = NULL;
        const void *p;
        size_t size;
        int r;

        r = map_message(m, fd, &p, &size, error);
        if (r < 0)
                return r;
        r = check_new(m, CHECK_VERIFY, request, &c, error);
        if (r < 0) {
                (void) munmap((void*) p, size);
                return r;
        }
        c->msg = p;
        c->msg_size = size;

        if (env->session) {
                r = asprintf_safe(&c->session_field, "MAILSEC_SESSION=%s", env->session);
                if (r < 0)
                        return r;
        }
        if (env->spf_result) {
                c->spf_result = strdup(env->spf_result);
                c->mail_from = env->mail_from ? strdup(env->mail_from) : NULL;
                c->helo = env->helo ? strdup(env->helo) : NULL;
                c->client_ip = env->client_ip ? strdup(env->client_ip) : NULL;
                if (!c->spf_result || (env->mail_from && !c->mail_from) || (env->helo && !c->helo) ||
                    (env->client_ip && !c->client_ip))
                        return -ENOMEM;
        } else if (env->client_ip && !isempty(env->helo)) {
                SpfRequest req = {
                        .helo = env->helo,
                        .mail_from = env->mail_from,
                };

                if (auth_parse_ip(env->client_ip, &req) < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Invalid client_ip: %s", env->client_ip);
                r = check_spf_init(c, &req, env->client_ip);
                if (r == -EINVAL)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unusable SPF request.");
                if (r < 0)
                        return r;
        } else {
                c->client_ip = env->client_ip ? strdup(env->client_ip) : NULL;
                c->mail_from = env->mail_from ? strdup(env->mail_from) : NULL;
                if ((env->client_ip && !c->client_ip) || (env->mail_from && !c->mail_from))
                        return -ENOMEM;
        }

        r = check_launch(c);
        if (r < 0)
                return r;
        TAKE_PTR(c);
        return 1;
}

int auth_check_seal_start(Manager *m, sd_bus_message *request, int fd, const char *authentication_results,
                          sd_bus_error *error) {
        _cleanup_(check_freep) AuthCheck *c = NULL;
        const void *p;
        size_t size;
        int r;

        if (!auth_config_arc_key(m->config))
                return sd_bus_error_setf(error, AUTH_ERROR_NO_KEY, "No ARC sealing key is configured.");
        r = map_message(m, fd, &p, &size, error);
        if (r < 0)
                return r;
        r = check_new(m, CHECK_SEAL, request, &c, error);
        if (r < 0) {
                (void) munmap((void*) p, size);
                return r;
        }
        c->msg = p;
        c->msg_size = size;
        c->seal_ar = strdup(authentication_results);
        if (!c->seal_ar)
                return -ENOMEM;
        r = check_launch(c);
        if (r < 0)
                return r;
        TAKE_PTR(c);
        return 1;
}

int auth_sign_message(Manager *m, sd_bus_message *request, int fd, const char *domain, sd_bus_error *error) {
        const AuthSigningKey *keys[SIGN_KEYS_MAX];
        DkimSigner signers[SIGN_KEYS_MAX];
        _cleanup_free_ char *header = NULL;
        const void *p;
        size_t size, n;
        uint64_t t;
        int r;

        n = auth_config_keys_for_domain(m->config, domain, keys, SIGN_KEYS_MAX);
        if (n == 0)
                return sd_bus_error_setf(error, AUTH_ERROR_NO_KEY, "No signing key is configured for %s.", domain);

        r = map_message(m, fd, &p, &size, error);
        if (r < 0)
                return r;

        m->stats.checks_total++;
        t = (uint64_t) time(NULL);
        for (size_t i = 0; i < n; i++) {
                signers[i] = (DkimSigner) DKIM_SIGNER_INIT;
                signers[i].key = keys[i]->pkey;
                signers[i].domain = keys[i]->domain;
                signers[i].selector = keys[i]->selector;
                signers[i].timestamp = t;
        }
        r = dkim_sign(p, size, signers, n, &header);
        (void) munmap((void*) p, size);
        if (r == -EBADMSG)
                return sd_bus_error_setf(error, AUTH_ERROR_BAD_MESSAGE,
                                         "The message cannot be signed: no single From field, or its header does not parse.");
        if (r < 0)
                return r;
        m->stats.dkim_signed += n;
        log_info("Signed a message for %s with %zu key(s).", domain, n);
        return sd_bus_reply_method_return(request, "s", header);
}
