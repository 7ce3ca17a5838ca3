/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mailsecctl auth spf|verify|dmarc: the checks of mailsec-authd (libauthd) run on the
 * command line against live DNS, for administrators debugging a delivery. No bus: the
 * lookups go through the stub resolver to --resolver or the servers of /etc/resolv.conf.
 *
 * Exit status: 0 when the check was carried out, whatever the verdict (temperror
 * included: it is in the output); 1 when it could not be (unreadable or unparseable
 * message, no resolver, out of memory); 2 for usage errors.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "arc.h"
#include "auth-results.h"
#include "cleanup.h"
#include "dkim-key.h"
#include "dkim-verify.h"
#include "dmarc-eval.h"
#include "dns-resolver.h"
#include "mailsecctl.h"
#include "rfc5322.h"
#include "spf-eval.h"
#include "string-util.h"

#define MESSAGE_SIZE_MAX (64U * 1024U * 1024U)
/* A bound on one synchronous lookup beyond the resolver's own timeouts. */
#define LOOKUP_TIMEOUT_USEC (60U * USEC_PER_SEC)
#define RESOLV_CONF "/etc/resolv.conf"

/* ---- synchronous DNS --------------------------------------------------------------------- */

struct CtlResolver {
        sd_event *event;
        DnsResolver *resolver;
        char *description;
};

typedef struct CtlLookup {
        DnsAnswer *answer;
        bool done;
        int error;
} CtlLookup;

CtlResolver* ctl_resolver_free(CtlResolver *r) {
        if (!r)
                return NULL;
        dns_resolver_free(r->resolver);
        sd_event_unref(r->event);
        free(r->description);
        free(r);
        return NULL;
}

const char* ctl_resolver_description(const CtlResolver *r) {
        return r->description;
}

/* "ADDR:PORT", "[V6]:PORT", or a bare address with port 53. */
static int parse_server(const char *s, SocketAddress *ret) {
        _cleanup_free_ char *t = NULL;
        struct in6_addr in6;
        struct in_addr in;

        if (inet_pton(AF_INET, s, &in) == 1) {
                if (asprintf_safe(&t, "%s:53", s) < 0)
                        return -ENOMEM;
        } else if (inet_pton(AF_INET6, s, &in6) == 1) {
                if (asprintf_safe(&t, "[%s]:53", s) < 0)
                        return -ENOMEM;
        }
        return socket_address_parse(t ?: s, ret);
}

int ctl_resolver_new(const char *spec, CtlResolver **ret) {
        _cleanup_(ctl_resolver_freep) CtlResolver *r = NULL;
        DnsServerConfig servers[DNS_STUB_SERVERS_MAX] = {};
        size_t n = 0;
        int k;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;

        if (spec) {
                k = parse_server(spec, &servers[n].address);
                if (k < 0 || servers[n].address.sockaddr.ss_family == AF_UNIX) {
                        fprintf(stderr, "Invalid resolver address '%s' (expected ADDR:PORT).\n", spec);
                        return -EINVAL;
                }
                n++;
        } else {
                _cleanup_fclose_ FILE *f = fopen(RESOLV_CONF, "re");
                char line[512];

                while (f && n < DNS_STUB_SERVERS_MAX && fgets(line, sizeof(line), f)) {
                        char *p = strstrip(line), *a, *e;
                        const char *rest = startswith(p, "nameserver");

                        if (!rest || !strchr(" \t", *rest))
                                continue;
                        a = strstrip(p + (rest - p));
                        e = a + strcspn(a, " \t#;%");   /* no scope ids */
                        *e = '\0';
                        if (parse_server(a, &servers[n].address) >= 0)
                                n++;
                }
                if (n == 0) {
                        fprintf(stderr, "No name server in %s; use --resolver ADDR:PORT.\n", RESOLV_CONF);
                        return -ENOENT;
                }
        }

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *a = NULL, *d = NULL;

                if (socket_address_to_string(&servers[i].address, &a) < 0)
                        return -ENOMEM;
                if (asprintf_safe(&d, "%s%s%s", strempty(r->description), i > 0 ? " " : "", a) < 0)
                        return -ENOMEM;
                free(r->description);
                r->description = TAKE_PTR(d);
        }

        k = sd_event_new(&r->event);
        if (k < 0)
                return k;
        k = dns_resolver_new_stub(r->event, &(DnsStubConfig) { .servers = servers, .n_servers = n },
                                  &r->resolver);
        if (k < 0) {
                fprintf(stderr, "Failed to set up the resolver: %s\n", strerror(-k));
                return k;
        }
        *ret = TAKE_PTR(r);
        return 0;
}

static void on_lookup_answer(DnsQuery *q, const DnsAnswer *answer, void *userdata) {
        CtlLookup *l = userdata;
        int k;

        (void) q;
        l->answer->result = answer->result;
        l->answer->dnssec = answer->dnssec;
        for (size_t i = 0; i < answer->n_records; i++) {
                k = dns_answer_add(l->answer, &answer->records[i]);
                if (k < 0 && l->error == 0)
                        l->error = k;
        }
        l->done = true;
}

int ctl_resolve(CtlResolver *r, const char *name, uint16_t type, DnsAnswer *ret) {
        _cleanup_(dns_query_freep) DnsQuery *q = NULL;
        CtlLookup l = { .answer = ret };
        usec_t deadline = now(CLOCK_MONOTONIC) + LOOKUP_TIMEOUT_USEC;
        int k;

        k = dns_resolver_query(r->resolver, name, type, on_lookup_answer, &l, &q);
        if (k < 0)
                return k;
        while (!l.done) {
                usec_t t = now(CLOCK_MONOTONIC);

                if (t >= deadline)
                        return -ETIMEDOUT;
                k = sd_event_run(r->event, deadline - t);
                if (k < 0)
                        return k;
        }
        return l.error;
}

/* A DkimGetKey on the resolver: the first TXT record that parses as a DKIM key, else
 * the first; -ENXIO when there is none, -EAGAIN for a failed lookup. */
static int get_key(const char *selector, const char *domain, char **ret_txt, void *userdata) {
        _cleanup_(dns_answer_done) DnsAnswer a = DNS_ANSWER_NULL;
        _cleanup_free_ char *name = NULL;
        const DnsRecord *pick = NULL;
        int k;

        if (asprintf_safe(&name, "%s._domainkey.%s", selector, domain) < 0)
                return -ENOMEM;
        k = ctl_resolve(userdata, name, DNS_TYPE_TXT, &a);
        if (k == -ENOMEM)
                return k;
        if (k < 0 || IN_SET(a.result, DNS_RESULT_TEMPFAIL, DNS_RESULT_PERMFAIL))
                return -EAGAIN;
        for (size_t i = 0; i < a.n_records; i++) {
                _cleanup_(dkim_key_freep) DkimKey *key = NULL;

                if (a.records[i].type != DNS_TYPE_TXT)
                        continue;
                if (!pick)
                        pick = &a.records[i];
                if (dkim_key_parse(a.records[i].txt.data, a.records[i].txt.len, &key, NULL) >= 0) {
                        pick = &a.records[i];
                        break;
                }
        }
        if (!pick)
                return -ENXIO;
        *ret_txt = strndup(pick->txt.data, pick->txt.len);
        return *ret_txt ? 0 : -ENOMEM;
}

/* ---- option parsing shared by the auth verbs --------------------------------------------- */

typedef struct AuthArgs {
        const char *resolver;
        const char *ip;
        const char *helo;
        const char *mail_from;
        const char *receiver;           /* also the authserv-id */
        bool tree_walk;
        const char *positional;
} AuthArgs;

typedef enum AuthVerb {
        AUTH_SPF,
        AUTH_VERIFY,
        AUTH_DMARC,
} AuthVerb;

static int parse_auth_argv(int argc, char *argv[], AuthVerb verb, AuthArgs *a) {
        enum {
                ARG_RESOLVER = 0x100,
                ARG_IP,
                ARG_HELO,
                ARG_MAIL_FROM,
                ARG_RECEIVER,
                ARG_TREE_WALK,
                ARG_JSON,
        };
        static const struct option options[] = {
                { "resolver",  required_argument, NULL, ARG_RESOLVER  },
                { "ip",        required_argument, NULL, ARG_IP        },
                { "helo",      required_argument, NULL, ARG_HELO      },
                { "mail-from", required_argument, NULL, ARG_MAIL_FROM },
                { "receiver",  required_argument, NULL, ARG_RECEIVER  },
                { "tree-walk", no_argument,       NULL, ARG_TREE_WALK },
                { "json",      no_argument,       NULL, ARG_JSON      },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_RESOLVER:
                        a->resolver = optarg;
                        break;
                case ARG_IP:
                        a->ip = optarg;
                        break;
                case ARG_HELO:
                        a->helo = optarg;
                        break;
                case ARG_MAIL_FROM:
                        a->mail_from = optarg;
                        break;
                case ARG_RECEIVER:
                        a->receiver = optarg;
                        break;
                case ARG_TREE_WALK:
                        a->tree_walk = true;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                default:
                        return -EINVAL;
                }

        if (verb == AUTH_SPF) {
                if (optind != argc || !a->ip || !a->helo) {
                        fprintf(stderr, "Usage: mailsecctl auth spf --ip ADDR --helo NAME [--mail-from ADDR] [--resolver ADDR:PORT]\n");
                        return -EINVAL;
                }
        } else {
                if (optind + 1 != argc) {
                        fprintf(stderr, verb == AUTH_VERIFY ?
                                "Usage: mailsecctl auth verify FILE|- [--ip ADDR --helo NAME [--mail-from ADDR]] [--resolver ADDR:PORT]\n" :
                                "Usage: mailsecctl auth dmarc DOMAIN [--tree-walk] [--resolver ADDR:PORT]\n");
                        return -EINVAL;
                }
                a->positional = argv[optind];
                if (verb == AUTH_VERIFY && (!a->ip) != (!a->helo)) {
                        fprintf(stderr, "--ip and --helo go together (SPF needs both).\n");
                        return -EINVAL;
                }
        }
        return 0;
}

static const char* default_receiver(char *buf, size_t size) {
        if (gethostname(buf, size) < 0 || buf[0] == '\0')
                return "localhost";
        buf[size - 1] = '\0';
        return buf;
}

/* ---- SPF --------------------------------------------------------------------------------- */

typedef struct SpfRun {
        SpfEval *eval;
        const SpfOutcome *outcome;
        char *received_spf;
        char *auth_results;
} SpfRun;

static void spf_run_done(SpfRun *s) {
        spf_eval_free(s->eval);
        free(s->received_spf);
        free(s->auth_results);
}

/* Returns 0 with the outcome, -EINVAL for a bad --ip (said), or another negative errno. */
static int spf_run(CtlResolver *res, const AuthArgs *a, const char *receiver, SpfRun *ret) {
        SpfRequest req = {
                .mail_from = a->mail_from,
                .helo = a->helo,
                .receiver = receiver,
                .now = (uint64_t) time(NULL),
        };
        SpfLookup lookup;
        int k;

        if (inet_pton(AF_INET, a->ip, &req.ip.in) == 1)
                req.family = AF_INET;
        else if (inet_pton(AF_INET6, a->ip, &req.ip.in6) == 1)
                req.family = AF_INET6;
        else {
                fprintf(stderr, "Invalid IP address '%s'.\n", a->ip);
                return -EINVAL;
        }

        k = spf_eval_new(&req, &ret->eval);
        if (k < 0) {
                fprintf(stderr, "Cannot evaluate SPF for this request: %s\n", strerror(-k));
                return k;
        }
        /* The machine is given NULL first, then the answer to its last question. */
        k = spf_eval_step(ret->eval, NULL, &lookup);
        while (k == SPF_STEP_LOOKUP) {
                _cleanup_(dns_answer_done) DnsAnswer answer = DNS_ANSWER_NULL;

                k = ctl_resolve(res, lookup.name, lookup.type, &answer);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        answer.result = DNS_RESULT_TEMPFAIL;
                k = spf_eval_step(ret->eval, &answer, &lookup);
        }
        if (k < 0)
                return k;

        k = spf_eval_result(ret->eval, &ret->outcome);
        if (k < 0)
                return k;
        k = spf_eval_received_spf(ret->eval, &ret->received_spf);
        if (k < 0)
                return k;
        return spf_eval_auth_results(ret->eval, &ret->auth_results);
}

static void output_spf(Output *o, const SpfRun *s, bool prefixed) {
        const SpfOutcome *out = s->outcome;

        output_string(o, prefixed ? "spf" : "result", spf_result_to_string(out->result));
        output_string(o, prefixed ? "spf-identity" : "identity", spf_identity_to_string(out->identity));
        output_string(o, prefixed ? "spf-domain" : "domain", out->domain);
        output_string(o, prefixed ? "spf-sender" : "sender", out->sender);
        output_string(o, prefixed ? "spf-mechanism" : "mechanism", out->mechanism);
        output_string(o, prefixed ? "spf-explanation" : "explanation", out->explanation);
        output_string(o, prefixed ? "spf-problem" : "problem", out->problem);
        if (!prefixed) {
                output_unsigned(o, "dns-terms", out->dns_terms);
                output_unsigned(o, "void-lookups", out->void_lookups);
        }
        output_string(o, "received-spf", s->received_spf);
}

int verb_auth_spf(int argc, char *argv[]) {
        _cleanup_(ctl_resolver_freep) CtlResolver *res = NULL;
        _cleanup_(spf_run_done) SpfRun s = {};
        AuthArgs a = {};
        char host[256];
        Output o = OUTPUT_INIT(stdout, 15);
        int k;

        if (parse_auth_argv(argc, argv, AUTH_SPF, &a) < 0)
                return EXIT_USAGE;
        k = ctl_resolver_new(a.resolver, &res);
        if (k < 0)
                return k == -EINVAL ? EXIT_USAGE : EXIT_CALL_FAILED;

        k = spf_run(res, &a, a.receiver ?: default_receiver(host, sizeof(host)), &s);
        if (k == -EINVAL && !s.eval)
                return EXIT_USAGE;
        if (k < 0) {
                fprintf(stderr, "SPF evaluation failed: %s\n", strerror(-k));
                return EXIT_CALL_FAILED;
        }

        o.json = arg_json;
        output_spf(&o, &s, false);
        output_string(&o, "auth-results", s.auth_results);
        output_string(&o, "resolver", ctl_resolver_description(res));
        output_end(&o);
        return 0;
}

/* ---- DMARC ------------------------------------------------------------------------------- */

typedef struct DmarcRun {
        DmarcEval *eval;
        const DmarcResult *result;
        char *record_text;              /* the DMARC TXT record at the policy domain */
} DmarcRun;

static void dmarc_run_done(DmarcRun *d) {
        dmarc_eval_free(d->eval);
        free(d->record_text);
}

static int dmarc_run(CtlResolver *res, const DmarcInput *in, DmarcRun *ret) {
        _cleanup_strv_free_ char **names = NULL, **texts = NULL;
        const char *name;
        int k;

        k = dmarc_eval_new(in, &ret->eval);
        if (k < 0)
                return k;
        while ((k = dmarc_eval_next(ret->eval, &name)) > 0) {
                _cleanup_(dns_answer_done) DnsAnswer answer = DNS_ANSWER_NULL;
                const char *text = "";

                k = ctl_resolve(res, name, DNS_TYPE_TXT, &answer);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        answer.result = DNS_RESULT_TEMPFAIL;
                for (size_t i = 0; i < answer.n_records; i++)
                        if (answer.records[i].type == DNS_TYPE_TXT &&
                            dmarc_record_is_dmarc(answer.records[i].txt.data, answer.records[i].txt.len)) {
                                text = answer.records[i].txt.data;
                                break;
                        }
                if (strv_extend(&names, name) < 0 || strv_extend(&texts, text) < 0)
                        return -ENOMEM;
                k = dmarc_eval_feed(ret->eval, &answer);
                if (k < 0)
                        return k;
        }
        if (k < 0)
                return k;
        ret->result = dmarc_eval_result(ret->eval);
        if (!ret->result)
                return -EIO;

        if (ret->result->policy_domain) {
                _cleanup_free_ char *want = NULL;

                if (asprintf_safe(&want, "_dmarc.%s", ret->result->policy_domain) < 0)
                        return -ENOMEM;
                for (size_t i = 0; names && names[i]; i++)
                        if (strcaseeq(names[i], want) && texts[i][0]) {
                                ret->record_text = strdup(texts[i]);
                                if (!ret->record_text)
                                        return -ENOMEM;
                        }
        }
        return 0;
}

static const char* policy_or_null(DmarcPolicy p) {
        return p < 0 ? NULL : dmarc_policy_to_string(p);
}

static const char* dmarc_found_where(const DmarcResult *r) {
        if (!r->have_record || !r->policy_domain)
                return NULL;
        if (strcaseeq(r->policy_domain, r->from_domain))
                return "from-domain";
        if (r->org_domain && strcaseeq(r->policy_domain, r->org_domain))
                return "organizational-domain";
        return "parent-domain";
}

static void output_dmarc_record(Output *o, const DmarcRun *d) {
        const DmarcRecord *rec = &d->result->record;
        static const struct {
                DmarcTag tag;
                const char *name;
        } tags[] = {
                { DMARC_TAG_P, "p" }, { DMARC_TAG_SP, "sp" }, { DMARC_TAG_NP, "np" },
                { DMARC_TAG_ADKIM, "adkim" }, { DMARC_TAG_ASPF, "aspf" }, { DMARC_TAG_PCT, "pct" },
                { DMARC_TAG_RUA, "rua" }, { DMARC_TAG_RUF, "ruf" }, { DMARC_TAG_FO, "fo" },
                { DMARC_TAG_RF, "rf" }, { DMARC_TAG_RI, "ri" }, { DMARC_TAG_PSD, "psd" },
                { DMARC_TAG_OTHER, "malformed" },
        };
        char invalid[128] = "";

        output_string(o, "record", d->record_text);
        if (!d->result->have_record)
                return;
        output_string(o, "p", policy_or_null(rec->p));
        output_string(o, "sp", policy_or_null(rec->sp));
        output_string(o, "np", policy_or_null(rec->np));
        output_string(o, "adkim", dmarc_alignment_to_string(rec->adkim));
        output_string(o, "aspf", dmarc_alignment_to_string(rec->aspf));
        output_unsigned(o, "pct", rec->pct);
        output_unsigned(o, "ri", rec->ri);
        output_array_begin(o, "rua");
        for (size_t i = 0; i < rec->n_rua; i++)
                output_string(o, o->json ? NULL : "rua", rec->rua[i].uri);
        output_array_end(o);
        output_array_begin(o, "ruf");
        for (size_t i = 0; i < rec->n_ruf; i++)
                output_string(o, o->json ? NULL : "ruf", rec->ruf[i].uri);
        output_array_end(o);
        output_bool(o, "p-from-rua", rec->p_from_rua);
        for (size_t i = 0; i < ELEMENTSOF(tags); i++)
                if (rec->invalid_tags & tags[i].tag) {
                        if (invalid[0])
                                strcat(invalid, " ");
                        strcat(invalid, tags[i].name);
                }
        output_string(o, "invalid-tags", invalid[0] ? invalid : NULL);
}

int verb_auth_dmarc(int argc, char *argv[]) {
        _cleanup_(ctl_resolver_freep) CtlResolver *res = NULL;
        _cleanup_(dmarc_run_done) DmarcRun d = {};
        _cleanup_free_ char *norm = NULL;
        Output o = OUTPUT_INIT(stdout, 14);
        AuthArgs a = {};
        const DmarcResult *r;
        int k;

        if (parse_auth_argv(argc, argv, AUTH_DMARC, &a) < 0)
                return EXIT_USAGE;
        if (dmarc_domain_normalize(a.positional, &norm) < 0) {
                fprintf(stderr, "Invalid domain name '%s'.\n", a.positional);
                return EXIT_USAGE;
        }
        k = ctl_resolver_new(a.resolver, &res);
        if (k < 0)
                return k == -EINVAL ? EXIT_USAGE : EXIT_CALL_FAILED;

        /* No authenticated identifier at all: the verdict says whether a policy applies. */
        k = dmarc_run(res, &(DmarcInput) {
                        .from_domain = norm,
                        .discovery = a.tree_walk ? DMARC_DISCOVERY_TREE_WALK : DMARC_DISCOVERY_RFC7489,
                }, &d);
        if (k < 0) {
                fprintf(stderr, "DMARC evaluation failed: %s\n", strerror(-k));
                return EXIT_CALL_FAILED;
        }
        r = d.result;

        o.json = arg_json;
        output_string(&o, "domain", r->from_domain);
        output_string(&o, "org-domain", r->org_domain);
        output_string(&o, "status", r->have_record ? "found" :
                      r->verdict == DMARC_VERDICT_TEMPERROR ? "temperror" :
                      r->verdict == DMARC_VERDICT_PERMERROR ? "permerror" : "none");
        output_string(&o, "reason", r->reason);
        output_string(&o, "policy-domain", r->policy_domain);
        output_string(&o, "found-at", dmarc_found_where(r));
        output_string(&o, "policy", policy_or_null(r->policy));
        output_dmarc_record(&o, &d);
        output_unsigned(&o, "lookups", r->n_lookups);
        output_string(&o, "resolver", ctl_resolver_description(res));
        output_end(&o);
        return 0;
}

/* ---- verify ------------------------------------------------------------------------------ */

static int read_message(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, size = 0;

        if (streq(path, "-"))
                fd = dup(STDIN_FILENO);
        else
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n;

                if (len == size) {
                        char *p;

                        if (size >= MESSAGE_SIZE_MAX)
                                return -EFBIG;
                        size = size ? size * 2 : 65536;
                        p = realloc(buf, size + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                n = read(fd, buf + len, size - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (!buf)
                buf = calloc(1, 1);
        if (!buf)
                return -ENOMEM;
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* The From field's domain: -ENXIO when there is no From, -ENOTUNIQ for several. */
static int message_from_domain(const char *msg, size_t len, char **ret) {
        const Rfc5322Field *from = NULL;
        Rfc5322Field fields[2], f;
        size_t offset = 0;
        unsigned n = 0;
        int k;

        while ((k = rfc5322_field_next(msg, len, NULL, &offset, NULL, &f)) > 0)
                if (rfc5322_field_is(&f, "From")) {
                        if (n < ELEMENTSOF(fields))
                                fields[n] = f;
                        n++;
                }
        if (k < 0)
                return k;
        if (n == 0)
                return -ENXIO;
        if (n > 1)
                return -ENOTUNIQ;
        from = &fields[0];
        return dmarc_from_domain_extract(from->value, from->value_len, ret);
}

static const char* mail_from_domain(const char *mail_from) {
        const char *at;

        if (isempty(mail_from))
                return NULL;
        at = strrchr(mail_from, '@');
        return at ? at + 1 : mail_from;
}

int verb_auth_verify(int argc, char *argv[]) {
        _cleanup_(ctl_resolver_freep) CtlResolver *res = NULL;
        _cleanup_(dkim_verify_results_done) DkimVerifyResults dkim = DKIM_VERIFY_RESULTS_NULL;
        _cleanup_(spf_run_done) SpfRun s = {};
        _cleanup_(dmarc_run_done) DmarcRun d = {};
        _cleanup_(auth_results_freep) AuthResults *ar = NULL;
        _cleanup_free_ DmarcDkimResult *dmarc_dkim = NULL;
        _cleanup_free_ char *msg = NULL, *from_domain = NULL, *folded = NULL, *ar_value = NULL;
        DkimVerifyOptions opts = DKIM_VERIFY_OPTIONS_DEFAULT;
        ArcVerifyResult arc = ARC_VERIFY_RESULT_NULL;
        Output o = OUTPUT_INIT(stdout, 22);
        const char *receiver, *from_problem = NULL;
        AuthArgs a = {};
        char host[256];
        size_t len = 0;
        int k;

        if (parse_auth_argv(argc, argv, AUTH_VERIFY, &a) < 0)
                return EXIT_USAGE;
        receiver = a.receiver ?: default_receiver(host, sizeof(host));

        k = read_message(a.positional, &msg, &len);
        if (k < 0) {
                fprintf(stderr, "Failed to read '%s': %s\n", a.positional, strerror(-k));
                return EXIT_CALL_FAILED;
        }
        k = ctl_resolver_new(a.resolver, &res);
        if (k < 0)
                return k == -EINVAL ? EXIT_USAGE : EXIT_CALL_FAILED;

        if (a.ip) {
                k = spf_run(res, &a, receiver, &s);
                if (k == -EINVAL && !s.eval)
                        return EXIT_USAGE;
                if (k < 0) {
                        fprintf(stderr, "SPF evaluation failed: %s\n", strerror(-k));
                        return EXIT_CALL_FAILED;
                }
        }

        opts.now = (uint64_t) time(NULL);
        k = dkim_verify(msg, len, &opts, get_key, res, &dkim);
        if (k < 0) {
                fprintf(stderr, "Cannot verify the message: %s\n",
                        k == -EBADMSG ? "its header block does not parse" : strerror(-k));
                return EXIT_CALL_FAILED;
        }
        k = arc_verify(msg, len, get_key, res, &arc);
        if (k < 0) {
                fprintf(stderr, "ARC verification failed: %s\n", strerror(-k));
                return EXIT_CALL_FAILED;
        }

        k = message_from_domain(msg, len, &from_domain);
        if (k == -ENOMEM)
                return EXIT_CALL_FAILED;
        if (k < 0)
                from_problem = k == -ENXIO ? "no From field" :
                               k == -ENOTUNIQ ? "several From fields or mailboxes" : "unparseable From field";
        else {
                dmarc_dkim = calloc(dkim.n_results ?: 1, sizeof(DmarcDkimResult));
                if (!dmarc_dkim)
                        return EXIT_CALL_FAILED;
                for (size_t i = 0; i < dkim.n_results; i++)
                        dmarc_dkim[i] = (DmarcDkimResult) {
                                .domain = dkim.results[i].domain,
                                .pass = dkim.results[i].result == DKIM_RESULT_PASS,
                        };
                /* sample 0: a message is always selected by pct= (pct=0 aside). */
                k = dmarc_run(res, &(DmarcInput) {
                                .from_domain = from_domain,
                                .spf_pass = s.outcome && s.outcome->result == SPF_RESULT_PASS &&
                                            s.outcome->identity == SPF_IDENTITY_MAILFROM,
                                .spf_mail_from_domain = mail_from_domain(a.mail_from),
                                .spf_helo_domain = a.helo,
                                .dkim = dmarc_dkim,
                                .n_dkim = dkim.n_results,
                                .discovery = a.tree_walk ? DMARC_DISCOVERY_TREE_WALK : DMARC_DISCOVERY_RFC7489,
                        }, &d);
                if (k < 0) {
                        fprintf(stderr, "DMARC evaluation failed: %s\n", strerror(-k));
                        return EXIT_CALL_FAILED;
                }
        }

        /* The Authentication-Results value mailsec-authd would add. */
        k = auth_results_new(receiver, &ar);
        if (k < 0) {
                fprintf(stderr, "Cannot use '%s' as authserv-id: %s\n", receiver, strerror(-k));
                return EXIT_USAGE;
        }
        if (s.outcome)
                k = auth_results_add_spf(ar, spf_result_to_string(s.outcome->result), NULL,
                                         s.outcome->identity == SPF_IDENTITY_MAILFROM ? s.outcome->sender : NULL,
                                         a.helo);
        for (size_t i = 0; k >= 0 && i < dkim.n_results; i++) {
                const DkimVerifyResult *v = &dkim.results[i];
                char b64[16] = "";

                if (v->b_prefix_len > 0 && v->b_prefix_len <= 8)
                        (void) EVP_EncodeBlock((unsigned char*) b64, v->b_prefix, (int) v->b_prefix_len);
                k = auth_results_add_dkim(ar, dkim_result_to_string(v->result), v->reason,
                                          v->domain, v->selector, b64[0] ? b64 : NULL);
        }
        if (k >= 0 && dkim.n_results == 0)
                k = auth_results_add(ar, "dkim", "none", NULL);
        if (k >= 0 && arc.status != ARC_CHAIN_NONE)
                k = auth_results_add_arc(ar, arc_chain_status_to_string(arc.status), arc.reason, a.ip);
        if (k >= 0 && d.result)
                k = auth_results_add_dmarc(ar, dmarc_verdict_to_string(d.result->verdict), NULL,
                                           d.result->from_domain);
        if (k >= 0)
                k = auth_results_format(ar, &folded);
        if (k >= 0)
                k = rfc5322_unfold(folded, strlen(folded), &ar_value);
        if (k >= 0)     /* unfolded on one line: the folding tabs become spaces */
                for (char *p = ar_value; *p; p++)
                        if (*p == '\t')
                                *p = ' ';
        if (k < 0) {
                fprintf(stderr, "Failed to build the Authentication-Results value: %s\n", strerror(-k));
                return EXIT_CALL_FAILED;
        }

        o.json = arg_json;
        if (s.outcome)
                output_spf(&o, &s, true);
        output_unsigned(&o, "dkim-signatures", dkim.n_results);
        output_array_begin(&o, "dkim");
        for (size_t i = 0; i < dkim.n_results; i++) {
                const DkimVerifyResult *v = &dkim.results[i];
                char label[32];

                snprintf(label, sizeof(label), "dkim[%zu]", i + 1);
                output_object_begin(&o, label);
                output_string(&o, "result", dkim_result_to_string(v->result));
                output_string(&o, "reason", v->reason);
                output_string(&o, "domain", v->domain);
                output_string(&o, "selector", v->selector);
                output_string(&o, "identity", v->identity);
                output_string(&o, "algorithm", v->domain ? dkim_algorithm_to_string(v->algorithm) : NULL);
                output_unsigned(&o, "key-bits", v->key_bits);
                output_bool(&o, "testing", v->testing);
                output_object_end(&o);
        }
        output_array_end(&o);
        output_string(&o, "arc", arc_chain_status_to_string(arc.status));
        output_string(&o, "arc-reason", arc.reason);
        output_unsigned(&o, "arc-sets", arc.n_sets);
        if (d.result) {
                const DmarcResult *r = d.result;

                output_string(&o, "dmarc", dmarc_verdict_to_string(r->verdict));
                output_string(&o, "dmarc-reason", r->reason);
                output_string(&o, "from-domain", r->from_domain);
                output_string(&o, "dmarc-policy-domain", r->policy_domain);
                output_string(&o, "dmarc-record", d.record_text);
                output_string(&o, "dmarc-policy", policy_or_null(r->policy));
                output_string(&o, "dmarc-disposition", dmarc_policy_to_string(r->disposition));
                output_bool(&o, "dmarc-spf-aligned", r->spf_aligned);
                output_bool(&o, "dmarc-dkim-aligned", r->dkim_aligned);
        } else {
                output_string(&o, "dmarc", "permerror");
                output_string(&o, "dmarc-reason", from_problem);
        }
        output_string(&o, "auth-results", ar_value);
        output_string(&o, "resolver", ctl_resolver_description(res));
        output_end(&o);
        return 0;
}
