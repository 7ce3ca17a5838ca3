/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mailsecctl dkim keygen|record|rotate: DKIM signing keys for mailsec-authd.
 *
 *   keygen  generates an RSA or Ed25519 key, writes it (PKCS#8 PEM, mode 0600, never over
 *           an existing file) and prints the TXT record to publish;
 *   record  prints the record of an existing key;
 *   rotate  checks through DNS that <selector>._domainkey.<domain> publishes exactly this
 *           key's public half, optionally polling for a bounded time, and only then
 *           switches mailsec-authd to the new selector: a drop-in of authd.conf whose
 *           Key= line replaces the domain's key of the same algorithm, then a restart of
 *           mailsec-authd.service through systemd (mailsec-authd lets the checks in hand
 *           end first, and calls made meanwhile wait for the new instance).
 *
 * Exit status: 0 success (rotate: the key is visible), 1 failure (rotate: not visible
 * yet, or a different key is published), 2 usage error.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cleanup.h"
#include "config.h"
#include "dkim-key.h"
#include "dmarc-eval.h"
#include "dns-resolver.h"
#include "mailsecctl.h"
#include "string-util.h"

#define DKIM_BITS_DEFAULT 2048U
#define DKIM_BITS_MAX 4096U                     /* what receivers commonly accept */
#define ROTATE_WAIT_MAX (24U * 3600U)
#define ROTATE_POLL_INTERVAL_USEC (2U * USEC_PER_SEC)
#define TXT_STRING_MAX 255U
#define DKIM_KEY_DIR SYSCONFDIR "/dkim"                 /* LoadCredential=dkim: of the unit */
#define AUTHD_DROPIN_DIR SYSCONFDIR "/authd.conf.d"
#define AUTHD_UNIT "mailsec-authd.service"

DEFINE_TRIVIAL_CLEANUP_FUNC_FULL(BIO*, BIO_free, NULL);

typedef struct DkimArgs {
        const char *domain;
        const char *selector;
        const char *algorithm;
        unsigned bits;
        const char *output;
        const char *key;
        const char *resolver;
        unsigned wait;
        const char *config_dir;         /* rotate: where the drop-in goes */
        const char *key_dir;            /* rotate: the directory of LoadCredential=dkim: */
        bool no_switch;
        bool no_restart;
} DkimArgs;

typedef enum DkimVerb {
        DKIM_KEYGEN,
        DKIM_RECORD,
        DKIM_ROTATE,
} DkimVerb;

static const char* const dkim_usage[] = {
        [DKIM_KEYGEN] = "Usage: mailsecctl dkim keygen --domain D --selector S --output DIR [--algorithm rsa|ed25519] [--bits N]\n",
        [DKIM_RECORD] = "Usage: mailsecctl dkim record --key FILE --domain D --selector S\n",
        [DKIM_ROTATE] = ("Usage: mailsecctl dkim rotate --domain D --new-selector S --key FILE [--wait SECONDS] [--resolver ADDR:PORT]\n"
                         "                           [--config-dir DIR] [--key-dir DIR] [--no-switch] [--no-restart]\n"),
};

/* A selector is one or more dot-separated labels (RFC 6376 §3.1). */
static bool selector_is_valid(const char *s) {
        _cleanup_free_ char *n = NULL;

        return s && !strchr(s, '/') && dmarc_domain_normalize(s, &n) >= 0 && streq(n, s);
}

static int parse_dkim_argv(int argc, char *argv[], DkimVerb verb, DkimArgs *a) {
        enum {
                ARG_DOMAIN = 0x100,
                ARG_SELECTOR,
                ARG_ALGORITHM,
                ARG_BITS,
                ARG_OUTPUT,
                ARG_KEY,
                ARG_RESOLVER,
                ARG_WAIT,
                ARG_JSON,
                ARG_CONFIG_DIR,
                ARG_KEY_DIR,
                ARG_NO_SWITCH,
                ARG_NO_RESTART,
        };
        static const struct option options[] = {
                { "domain",       required_argument, NULL, ARG_DOMAIN    },
                { "selector",     required_argument, NULL, ARG_SELECTOR  },
                { "new-selector", required_argument, NULL, ARG_SELECTOR  },
                { "algorithm",    required_argument, NULL, ARG_ALGORITHM },
                { "bits",         required_argument, NULL, ARG_BITS      },
                { "output",       required_argument, NULL, ARG_OUTPUT    },
                { "key",          required_argument, NULL, ARG_KEY       },
                { "resolver",     required_argument, NULL, ARG_RESOLVER  },
                { "wait",         required_argument, NULL, ARG_WAIT      },
                { "json",         no_argument,       NULL, ARG_JSON      },
                { "config-dir",   required_argument, NULL, ARG_CONFIG_DIR },
                { "key-dir",      required_argument, NULL, ARG_KEY_DIR   },
                { "no-switch",    no_argument,       NULL, ARG_NO_SWITCH },
                { "no-restart",   no_argument,       NULL, ARG_NO_RESTART },
                {}
        };
        _cleanup_free_ char *norm = NULL;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_DOMAIN:
                        a->domain = optarg;
                        break;
                case ARG_SELECTOR:
                        a->selector = optarg;
                        break;
                case ARG_ALGORITHM:
                        a->algorithm = optarg;
                        break;
                case ARG_BITS:
                        if (parse_unsigned(optarg, &a->bits) < 0 ||
                            a->bits < DKIM_KEY_RSA_MIN_BITS || a->bits > DKIM_BITS_MAX) {
                                fprintf(stderr, "--bits must be between %u and %u.\n",
                                        DKIM_KEY_RSA_MIN_BITS, DKIM_BITS_MAX);
                                return -EINVAL;
                        }
                        break;
                case ARG_OUTPUT:
                        a->output = optarg;
                        break;
                case ARG_KEY:
                        a->key = optarg;
                        break;
                case ARG_RESOLVER:
                        a->resolver = optarg;
                        break;
                case ARG_WAIT:
                        if (parse_unsigned(optarg, &a->wait) < 0 || a->wait > ROTATE_WAIT_MAX) {
                                fprintf(stderr, "--wait takes seconds, at most %u.\n", ROTATE_WAIT_MAX);
                                return -EINVAL;
                        }
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_CONFIG_DIR:
                        a->config_dir = optarg;
                        break;
                case ARG_KEY_DIR:
                        a->key_dir = optarg;
                        break;
                case ARG_NO_SWITCH:
                        a->no_switch = true;
                        break;
                case ARG_NO_RESTART:
                        a->no_restart = true;
                        break;
                default:
                        return -EINVAL;
                }

        if (optind != argc || !a->domain || !a->selector ||
            (verb == DKIM_KEYGEN && !a->output) || (verb != DKIM_KEYGEN && !a->key) ||
            (verb != DKIM_KEYGEN && (a->algorithm || a->bits || a->output)) ||
            (verb != DKIM_ROTATE && (a->resolver || a->wait || a->config_dir || a->key_dir ||
                                     a->no_switch || a->no_restart))) {
                fputs(dkim_usage[verb], stderr);
                return -EINVAL;
        }
        if (dmarc_domain_normalize(a->domain, &norm) < 0) {
                fprintf(stderr, "Invalid domain name '%s'.\n", a->domain);
                return -EINVAL;
        }
        if (!selector_is_valid(a->selector)) {
                fprintf(stderr, "Invalid selector '%s' (lower-case labels of letters, digits, '-').\n", a->selector);
                return -EINVAL;
        }
        if (a->algorithm && !streq(a->algorithm, "rsa") && !streq(a->algorithm, "ed25519")) {
                fprintf(stderr, "--algorithm is rsa or ed25519.\n");
                return -EINVAL;
        }
        if (a->bits && a->algorithm && streq(a->algorithm, "ed25519")) {
                fprintf(stderr, "--bits applies to RSA keys only.\n");
                return -EINVAL;
        }
        return 0;
}

/* The p= value: base64 of the SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1), of the raw
 * 32-byte key for Ed25519 (RFC 8463 §4). */
static int public_key_base64(EVP_PKEY *key, const char **ret_k, char **ret_p) {
        _cleanup_free_ unsigned char *der = NULL;
        _cleanup_free_ char *b64 = NULL;
        unsigned char raw[32];
        size_t len;

        if (EVP_PKEY_is_a(key, "ED25519")) {
                len = sizeof(raw);
                if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw))
                        return dkim_openssl_error(-EIO, "EVP_PKEY_get_raw_public_key");
                *ret_k = "ed25519";
                der = malloc(len);
                if (!der)
                        return -ENOMEM;
                memcpy(der, raw, len);
        } else if (EVP_PKEY_is_a(key, "RSA")) {
                unsigned char *p = NULL;
                int n = i2d_PUBKEY(key, &p);

                if (n <= 0)
                        return dkim_openssl_error(-EIO, "i2d_PUBKEY");
                der = malloc((size_t) n);
                if (!der) {
                        OPENSSL_free(p);
                        return -ENOMEM;
                }
                memcpy(der, p, (size_t) n);
                OPENSSL_free(p);
                len = (size_t) n;
                *ret_k = "rsa";
        } else
                return -EOPNOTSUPP;

        b64 = malloc(4 * ((len + 2) / 3) + 1);
        if (!b64)
                return -ENOMEM;
        (void) EVP_EncodeBlock((unsigned char*) b64, der, (int) len);
        *ret_p = TAKE_PTR(b64);
        return 0;
}

typedef struct DkimRecord {
        char *name;                     /* "S._domainkey.D" */
        char *txt;                      /* "v=DKIM1; k=rsa; p=..." */
        char *zone;                     /* the zone file line, strings of at most 255 bytes */
        const char *k;
        unsigned bits;
} DkimRecord;

static void dkim_record_done(DkimRecord *r) {
        free(r->name);
        free(r->txt);
        free(r->zone);
}

static int dkim_record_build(EVP_PKEY *key, const char *domain, const char *selector, DkimRecord *ret) {
        _cleanup_free_ char *p = NULL, *zone = NULL;
        size_t len, zlen = 0, zsize;
        int k;

        k = public_key_base64(key, &ret->k, &p);
        if (k < 0)
                return k;
        ret->bits = (unsigned) EVP_PKEY_get_bits(key);
        if (asprintf_safe(&ret->name, "%s._domainkey.%s", selector, domain) < 0 ||
            asprintf_safe(&ret->txt, "v=DKIM1; k=%s; p=%s", ret->k, p) < 0)
                return -ENOMEM;

        len = strlen(ret->txt);
        zsize = strlen(ret->name) + len + 4 * (len / TXT_STRING_MAX + 1) + 32;
        zone = malloc(zsize);
        if (!zone)
                return -ENOMEM;
        zlen = (size_t) snprintf(zone, zsize, "%s. IN TXT (", ret->name);
        for (size_t i = 0; i < len; i += TXT_STRING_MAX) {
                size_t n = MIN(TXT_STRING_MAX, len - i);

                /* The record holds no '"' or '\\': no escaping needed. */
                zlen += (size_t) snprintf(zone + zlen, zsize - zlen, " \"%.*s\"", (int) n, ret->txt + i);
        }
        (void) snprintf(zone + zlen, zsize - zlen, " )");
        ret->zone = TAKE_PTR(zone);
        return 0;
}

static void output_record(Output *o, const DkimRecord *r, const char *domain, const char *selector) {
        output_string(o, "domain", domain);
        output_string(o, "selector", selector);
        output_string(o, "algorithm", r->k);
        output_unsigned(o, "bits", r->bits);
        output_string(o, "name", r->name);
        output_string(o, "txt", r->txt);
        output_string(o, "zone", r->zone);
}

static int load_private_key(const char *path, EVP_PKEY **ret) {
        _cleanup_(BIO_freep) BIO *b = NULL;
        EVP_PKEY *k;

        b = BIO_new_file(path, "r");
        if (!b) {
                (void) dkim_openssl_error(-ENOENT, "BIO_new_file");
                fprintf(stderr, "Cannot open the key '%s'.\n", path);
                return -ENOENT;
        }
        k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        if (!k) {
                (void) dkim_openssl_error(-EBADMSG, "PEM_read_bio_PrivateKey");
                fprintf(stderr, "'%s' is not a PEM private key.\n", path);
                return -EBADMSG;
        }
        if (!EVP_PKEY_is_a(k, "RSA") && !EVP_PKEY_is_a(k, "ED25519")) {
                EVP_PKEY_free(k);
                fprintf(stderr, "'%s' is neither an RSA nor an Ed25519 key.\n", path);
                return -EOPNOTSUPP;
        }
        if (EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) < (int) DKIM_KEY_RSA_MIN_BITS) {
                EVP_PKEY_free(k);
                fprintf(stderr, "'%s' is an RSA key under %u bits, which verifiers refuse.\n",
                        path, DKIM_KEY_RSA_MIN_BITS);
                return -EOPNOTSUPP;
        }
        *ret = k;
        return 0;
}

/* The credential name for LoadCredential= of mailsec-authd.service. */
static const char* key_algorithm(EVP_PKEY *key) {
        return EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? "ed25519" : "rsa";
}

/* The Key= line of authd.conf that signs with this key: a file directly in key_dir (the
 * directory mailsec-authd.service hands over with LoadCredential=dkim:DIR) is the
 * credential "dkim_<file name>", any other file its absolute path. */
static int key_line(const char *domain, const char *selector, EVP_PKEY *key, const char *path,
                    const char *key_dir, char **ret) {
        _cleanup_free_ char *abs = NULL, *dir = NULL, *parent = NULL;
        const char *slash;

        abs = realpath(path, NULL);
        if (!abs)
                return -errno;
        slash = strrchr(abs, '/');
        parent = strndup(abs, slash == abs ? 1 : (size_t) (slash - abs));
        if (!parent)
                return -ENOMEM;
        dir = realpath(key_dir ?: DKIM_KEY_DIR, NULL);
        if (dir && streq(dir, parent))
                return asprintf_safe(ret, "Key=%s:%s:%s:dkim_%s", domain, selector, key_algorithm(key), slash + 1);
        return asprintf_safe(ret, "Key=%s:%s:%s:%s", domain, selector, key_algorithm(key), abs);
}

/* Writes DIR/90-dkim-DOMAIN-ALG.conf, replacing an earlier one atomically: the file sorts
 * after the drop-ins an admin writes by hand (50-...), and a later Key= line for the same
 * domain and algorithm replaces an earlier one (mailsec-authd.conf(5)). */
static int write_dropin(const char *config_dir, const char *domain, EVP_PKEY *key, const char *line,
                        char **ret_path) {
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_close_ int fd = -EBADF;
        char date[64];
        time_t t = time(NULL);
        struct tm tm;

        if (mkdir(config_dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (asprintf_safe(&path, "%s/90-dkim-%s-%s.conf", config_dir, domain, key_algorithm(key)) < 0 ||
            asprintf_safe(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f)
                return -errno;
        TAKE_FD(fd);
        if (!gmtime_r(&t, &tm) || strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                strcpy(date, "?");
        fprintf(f, "# Written by \"mailsecctl dkim rotate\" on %s, once the new key was visible in DNS.\n"
                   "# It replaces the %s key of %s given earlier (mailsec-authd.conf(5), [Signing]).\n"
                   "[Signing]\n%s\n", date, key_algorithm(key), domain, line);
        if (fflush(f) != 0 || fsync(fileno(f)) < 0 || ferror(f)) {
                int k = -errno;
                (void) unlink(tmp);
                return k ?: -EIO;
        }
        if (rename(tmp, path) < 0) {
                int k = -errno;
                (void) unlink(tmp);
                return k;
        }
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* Asks systemd to restart mailsec-authd.service if it runs (TryRestartUnit): it reads its
 * configuration and its credentials only when it starts. Returns 1 when the restart was
 * queued, 0 when systemd is not there to ask, negative errno when systemd refused. */
static int restart_authd(const char **ret_problem) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0) {
                *ret_problem = "no system bus";
                return 0;
        }
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "TryRestartUnit", &e, &reply, "ss",
                               AUTHD_UNIT, "replace");
        if (r >= 0)
                return 1;
        if (sd_bus_error_has_names(&e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                *ret_problem = "systemd is not on the bus";
                return 0;
        }
        fprintf(stderr, "systemd did not restart %s: %s\n", AUTHD_UNIT, e.message ?: strerror(-r));
        *ret_problem = "refused by systemd";
        return r;
}

int verb_dkim_keygen(int argc, char *argv[]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(dkim_record_done) DkimRecord rec = {};
        _cleanup_free_ char *path = NULL, *cred = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_fclose_ FILE *f = NULL;
        Output o = OUTPUT_INIT(stdout, 10);
        DkimArgs a = {};
        int k;

        if (parse_dkim_argv(argc, argv, DKIM_KEYGEN, &a) < 0)
                return EXIT_USAGE;

        if (!a.algorithm || streq(a.algorithm, "rsa"))
                key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) (a.bits ?: DKIM_BITS_DEFAULT));
        else
                key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!key) {
                (void) dkim_openssl_error(-EIO, "EVP_PKEY_Q_keygen");
                fprintf(stderr, "Key generation failed.\n");
                return EXIT_CALL_FAILED;
        }

        if (asprintf_safe(&path, "%s/%s.%s.pem", a.output, a.selector, a.domain) < 0)
                return EXIT_CALL_FAILED;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                fprintf(stderr, "Cannot create '%s': %s\n", path, strerror(errno));
                return EXIT_CALL_FAILED;
        }
        f = fdopen(fd, "w");
        if (!f) {
                fprintf(stderr, "Cannot write '%s': %s\n", path, strerror(errno));
                (void) unlink(path);
                return EXIT_CALL_FAILED;
        }
        fd = -EBADF;    /* now f's */
        if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
            fsync(fileno(f)) < 0) {
                (void) dkim_openssl_error(-EIO, "PEM_write_PrivateKey");
                fprintf(stderr, "Failed to write the key to '%s'.\n", path);
                (void) unlink(path);
                return EXIT_CALL_FAILED;
        }

        k = dkim_record_build(key, a.domain, a.selector, &rec);
        if (k < 0) {
                fprintf(stderr, "Failed to build the DNS record: %s\n", strerror(-k));
                return EXIT_CALL_FAILED;
        }
        if (key_line(a.domain, a.selector, key, path, NULL, &cred) < 0)
                return EXIT_CALL_FAILED;

        o.json = arg_json;
        output_string(&o, "key", path);
        output_record(&o, &rec, a.domain, a.selector);
        output_string(&o, "key-line", cred);
        output_end(&o);
        return 0;
}

int verb_dkim_record(int argc, char *argv[]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(dkim_record_done) DkimRecord rec = {};
        Output o = OUTPUT_INIT(stdout, 10);
        DkimArgs a = {};
        int k;

        if (parse_dkim_argv(argc, argv, DKIM_RECORD, &a) < 0)
                return EXIT_USAGE;
        if (load_private_key(a.key, &key) < 0)
                return EXIT_CALL_FAILED;
        k = dkim_record_build(key, a.domain, a.selector, &rec);
        if (k < 0) {
                fprintf(stderr, "Failed to build the DNS record: %s\n", strerror(-k));
                return EXIT_CALL_FAILED;
        }

        o.json = arg_json;
        output_string(&o, "key", a.key);
        output_record(&o, &rec, a.domain, a.selector);
        output_end(&o);
        return 0;
}

typedef enum RotateState {
        ROTATE_VISIBLE,                 /* a record with exactly this key */
        ROTATE_ABSENT,                  /* no such name, or no DKIM key record */
        ROTATE_DIFFERENT,               /* key records, none with this key */
        ROTATE_REVOKED,                 /* p= empty */
        ROTATE_LOOKUP_FAILED,
} RotateState;

static const char* const rotate_state_table[] = {
        [ROTATE_VISIBLE] = "visible",
        [ROTATE_ABSENT] = "absent",
        [ROTATE_DIFFERENT] = "different-key",
        [ROTATE_REVOKED] = "revoked",
        [ROTATE_LOOKUP_FAILED] = "lookup-failed",
};

static int rotate_check(CtlResolver *res, const char *name, EVP_PKEY *key,
                        RotateState *ret_state, DnssecStatus *ret_dnssec, const char **ret_problem) {
        _cleanup_(dns_answer_done) DnsAnswer answer = DNS_ANSWER_NULL;
        RotateState state = ROTATE_ABSENT;
        int k;

        *ret_problem = NULL;
        k = ctl_resolve(res, name, DNS_TYPE_TXT, &answer);
        if (k == -ENOMEM)
                return k;
        *ret_dnssec = answer.dnssec;
        if (k < 0 || IN_SET(answer.result, DNS_RESULT_TEMPFAIL, DNS_RESULT_PERMFAIL)) {
                *ret_state = ROTATE_LOOKUP_FAILED;
                *ret_problem = k < 0 ? "no answer" : dns_result_to_string(answer.result);
                return 0;
        }
        for (size_t i = 0; i < answer.n_records; i++) {
                _cleanup_(dkim_key_freep) DkimKey *dk = NULL;
                const char *reason = NULL;

                if (answer.records[i].type != DNS_TYPE_TXT)
                        continue;
                k = dkim_key_parse(answer.records[i].txt.data, answer.records[i].txt.len, &dk, &reason);
                if (k == -ENOMEM)
                        return k;
                if (k < 0) {
                        *ret_problem = reason;
                        continue;
                }
                if (dk->revoked) {
                        if (state == ROTATE_ABSENT)
                                state = ROTATE_REVOKED;
                        continue;
                }
                if (EVP_PKEY_eq(dk->pkey, key) == 1) {
                        state = ROTATE_VISIBLE;
                        *ret_problem = NULL;
                        break;
                }
                state = ROTATE_DIFFERENT;
        }
        *ret_state = state;
        return 0;
}

int verb_dkim_rotate(int argc, char *argv[]) {
        _cleanup_(ctl_resolver_freep) CtlResolver *res = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(dkim_record_done) DkimRecord rec = {};
        _cleanup_free_ char *cred = NULL, *dropin = NULL;
        Output o = OUTPUT_INIT(stdout, 15);
        DnssecStatus dnssec = DNSSEC_INDETERMINATE;
        RotateState state;
        const char *problem = NULL, *restart = NULL, *restart_problem = NULL;
        bool failed = false;
        unsigned attempts = 0;
        DkimArgs a = {};
        usec_t deadline;
        int k;

        if (parse_dkim_argv(argc, argv, DKIM_ROTATE, &a) < 0)
                return EXIT_USAGE;
        if (load_private_key(a.key, &key) < 0)
                return EXIT_CALL_FAILED;
        k = dkim_record_build(key, a.domain, a.selector, &rec);
        if (k < 0) {
                fprintf(stderr, "Failed to build the DNS record: %s\n", strerror(-k));
                return EXIT_CALL_FAILED;
        }
        k = ctl_resolver_new(a.resolver, &res);
        if (k < 0)
                return k == -EINVAL ? EXIT_USAGE : EXIT_CALL_FAILED;

        deadline = now(CLOCK_MONOTONIC) + (usec_t) a.wait * USEC_PER_SEC;
        for (;;) {
                usec_t t;

                attempts++;
                k = rotate_check(res, rec.name, key, &state, &dnssec, &problem);
                if (k < 0) {
                        fprintf(stderr, "Failed to look up %s: %s\n", rec.name, strerror(-k));
                        return EXIT_CALL_FAILED;
                }
                if (state == ROTATE_VISIBLE)
                        break;
                t = now(CLOCK_MONOTONIC);
                if (t >= deadline)
                        break;
                (void) usleep((useconds_t) MIN(ROTATE_POLL_INTERVAL_USEC, deadline - t));
        }

        if (state == ROTATE_VISIBLE && key_line(a.domain, a.selector, key, a.key, a.key_dir, &cred) < 0)
                return EXIT_CALL_FAILED;

        /* Only a visible key is switched to: mail signed with it can be verified at once. */
        if (state == ROTATE_VISIBLE && !a.no_switch) {
                k = write_dropin(a.config_dir ?: AUTHD_DROPIN_DIR, a.domain, key, cred, &dropin);
                if (k < 0) {
                        fprintf(stderr, "Cannot write the drop-in into %s: %s\n",
                                a.config_dir ?: AUTHD_DROPIN_DIR, strerror(-k));
                        return EXIT_CALL_FAILED;
                }
                if (a.no_restart)
                        restart = "not-requested";
                else {
                        k = restart_authd(&restart_problem);
                        restart = k > 0 ? "requested" : k == 0 ? "unavailable" : "failed";
                        if (k < 0)
                                failed = true;
                }
        }

        o.json = arg_json;
        output_string(&o, "name", rec.name);
        output_string(&o, "status", rotate_state_table[state]);
        output_string(&o, "problem", problem);
        output_string(&o, "dnssec", dnssec_status_to_string(dnssec));
        output_unsigned(&o, "attempts", attempts);
        output_string(&o, "expected", rec.txt);
        output_string(&o, "key-line", cred);
        output_string(&o, "drop-in", dropin);
        output_string(&o, "restart", restart);
        output_string(&o, "restart-problem", restart_problem);
        output_string(&o, "resolver", ctl_resolver_description(res));
        output_end(&o);

        if (state != ROTATE_VISIBLE) {
                fprintf(stderr, "%s does not publish this key yet (%s); publish:\n%s\n",
                        rec.name, rotate_state_table[state], rec.zone);
                return EXIT_CALL_FAILED;
        }
        if (restart && streq(restart, "unavailable"))
                fprintf(stderr, "%s could not be restarted (%s): it signs with %s after its next start.\n",
                        AUTHD_UNIT, restart_problem, a.selector);
        return failed ? EXIT_CALL_FAILED : 0;
}
