/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* mailsec-dkim-tool: libauthd's DKIM signer and verifier on the command line, for the
 * cross-check against another implementation (test-dkim-crosscheck.py).
 *
 *   mailsec-dkim-tool sign --selector S --domain D --key FILE [--algorithm rsa|ed25519]
 *                          [--canon HEADER[/BODY]] [--header NAME]... [--no-oversign]
 *                          < msg > signed-msg
 *   mailsec-dkim-tool verify --dns-dir DIR < msg
 *
 * sign writes the DKIM-Signature field followed by the message, unchanged. verify reads
 * each key record from the file DIR/<selector>._domainkey.<domain> (the TXT text, one
 * line; a missing file is "no key") and prints one line per signature:
 *
 *   <result> d=<domain> s=<selector> a=<algorithm> [reason="..."]
 *
 * Exit status: 0 when there is at least one signature and all pass, 1 when a signature
 * does not pass or there is none, 2 on a usage or system error. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cleanup.h"
#include "dkim-key.h"
#include "dkim-sign.h"
#include "dkim-verify.h"
#include "log.h"
#include "string-util.h"

#define TOOL_INPUT_MAX ((size_t) 64U * 1024U * 1024U)
#define TOOL_KEY_RECORD_MAX ((size_t) DKIM_KEY_RECORD_MAX)

#define EXIT_NOT_PASS 1
#define EXIT_USAGE 2

static const char *arg_selector = NULL;
static const char *arg_domain = NULL;
static const char *arg_key = NULL;
static const char *arg_algorithm = NULL;
static const char *arg_dns_dir = NULL;
static DkimCanon arg_header_canon = DKIM_CANON_RELAXED;
static DkimCanon arg_body_canon = DKIM_CANON_RELAXED;
static char **arg_headers = NULL;
static bool arg_no_oversign = false;

static int read_all(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, alloc = 0;

        for (;;) {
                ssize_t n;

                if (alloc - len < 4096) {
                        size_t na = alloc == 0 ? 65536 : alloc * 2;
                        char *p;

                        if (na > max + 1)
                                na = max + 1;
                        if (na <= len)
                                return -E2BIG;
                        p = realloc(buf, na + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        alloc = na;
                }
                n = read(fd, buf + len, alloc - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -E2BIG;
        }
        if (!buf) {
                buf = strdup("");
                if (!buf)
                        return -ENOMEM;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int parse_canon_one(const char *s, size_t len, DkimCanon *ret) {
        if (len == STRLEN("simple") && strncasecmp(s, "simple", len) == 0)
                *ret = DKIM_CANON_SIMPLE;
        else if (len == STRLEN("relaxed") && strncasecmp(s, "relaxed", len) == 0)
                *ret = DKIM_CANON_RELAXED;
        else
                return -EINVAL;
        return 0;
}

/* "relaxed/simple", or one word for the header canonicalisation with a simple body
 * (RFC 6376 §3.5, c=). */
static int parse_canon(const char *s) {
        const char *slash = strchr(s, '/');
        int r;

        r = parse_canon_one(s, slash ? (size_t) (slash - s) : strlen(s), &arg_header_canon);
        if (r < 0)
                return r;
        if (!slash) {
                arg_body_canon = DKIM_CANON_SIMPLE;
                return 0;
        }
        return parse_canon_one(slash + 1, strlen(slash + 1), &arg_body_canon);
}

static int load_key(const char *path, EVP_PKEY **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        EVP_PKEY *k;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (!k)
                return dkim_openssl_error(-EBADMSG, "PEM_read_PrivateKey");
        *ret = k;
        return 0;
}

static int do_sign(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *msg = NULL, *sig = NULL;
        DkimSigner s = DKIM_SIGNER_INIT;
        size_t len;
        int r;

        if (!arg_selector || !arg_domain || !arg_key)
                return log_error_errno(-EINVAL, "sign needs --selector, --domain and --key.");

        r = load_key(arg_key, &key);
        if (r < 0)
                return log_error_errno(r, "Failed to load private key '%s': %m", arg_key);
        if (arg_algorithm) {
                int want = streq(arg_algorithm, "rsa") ? EVP_PKEY_RSA :
                           streq(arg_algorithm, "ed25519") ? EVP_PKEY_ED25519 : -1;

                if (want < 0)
                        return log_error_errno(-EINVAL, "Unknown algorithm '%s'.", arg_algorithm);
                if (EVP_PKEY_get_base_id(key) != want)
                        return log_error_errno(-EINVAL, "Key '%s' is not an %s key.", arg_key, arg_algorithm);
        }

        r = read_all(STDIN_FILENO, TOOL_INPUT_MAX, &msg, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to read the message: %m");

        s.key = key;
        s.domain = arg_domain;
        s.selector = arg_selector;
        s.header_canon = arg_header_canon;
        s.body_canon = arg_body_canon;
        s.headers = arg_headers;
        s.no_oversign = arg_no_oversign;

        r = dkim_sign(msg, len, &s, 1, &sig);
        if (r < 0)
                return log_error_errno(r, "Failed to sign the message: %m");

        r = write_all(STDOUT_FILENO, sig, strlen(sig));
        if (r >= 0)
                r = write_all(STDOUT_FILENO, msg, len);
        if (r < 0)
                return log_error_errno(r, "Failed to write the signed message: %m");
        return 0;
}

static int get_key_from_dir(const char *selector, const char *domain, char **ret_txt, void *userdata) {
        const char *dir = userdata;
        _cleanup_free_ char *path = NULL, *txt = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len;
        int r;

        /* selector and domain have passed the signature parser's syntax check, so they
         * cannot climb out of dir; refuse a '/' all the same. */
        if (strchr(selector, '/') || strchr(domain, '/'))
                return -ENXIO;

        r = asprintf_safe(&path, "%s/%s._domainkey.%s", dir, selector, domain);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ENXIO : -errno;
        r = read_all(fd, TOOL_KEY_RECORD_MAX, &txt, &len);
        if (r < 0)
                return r;
        while (len > 0 && strchr("\r\n", txt[len - 1]))
                txt[--len] = '\0';
        *ret_txt = TAKE_PTR(txt);
        return 0;
}

static int do_verify(void) {
        _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;
        DkimVerifyOptions opts = DKIM_VERIFY_OPTIONS_DEFAULT;
        _cleanup_free_ char *msg = NULL;
        bool all_pass;
        size_t len;
        int r;

        if (!arg_dns_dir)
                return log_error_errno(-EINVAL, "verify needs --dns-dir.");

        r = read_all(STDIN_FILENO, TOOL_INPUT_MAX, &msg, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to read the message: %m");

        r = dkim_verify(msg, len, &opts, get_key_from_dir, (void*) arg_dns_dir, &res);
        if (r < 0)
                return log_error_errno(r, "Failed to verify the message: %m");

        all_pass = res.n_results > 0;
        for (size_t i = 0; i < res.n_results; i++) {
                const DkimVerifyResult *v = res.results + i;

                printf("%s d=%s s=%s a=%s", dkim_result_to_string(v->result),
                       strna(v->domain), strna(v->selector),
                       strna(dkim_algorithm_to_string(v->algorithm)));
                if (v->reason)
                        printf(" reason=\"%s\"", v->reason);
                putchar('\n');
                all_pass = all_pass && v->result == DKIM_RESULT_PASS;
        }
        if (res.n_results == 0)
                printf("none\n");
        if (fflush(stdout) != 0)
                return log_error_errno(-EIO, "Failed to write the results.");
        return all_pass ? 0 : EXIT_NOT_PASS;
}

static void help(void) {
        printf("%s sign --selector S --domain D --key FILE [--algorithm rsa|ed25519]\n"
               "        [--canon HEADER[/BODY]] [--header NAME]... [--no-oversign] < msg\n"
               "%s verify --dns-dir DIR < msg\n",
               program_invocation_short_name, program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_SELECTOR = 0x100,
                ARG_DOMAIN,
                ARG_KEY,
                ARG_ALGORITHM,
                ARG_CANON,
                ARG_HEADER,
                ARG_NO_OVERSIGN,
                ARG_DNS_DIR,
        };
        static const struct option options[] = {
                { "help",        no_argument,       NULL, 'h'             },
                { "selector",    required_argument, NULL, ARG_SELECTOR    },
                { "domain",      required_argument, NULL, ARG_DOMAIN      },
                { "key",         required_argument, NULL, ARG_KEY         },
                { "algorithm",   required_argument, NULL, ARG_ALGORITHM   },
                { "canon",       required_argument, NULL, ARG_CANON       },
                { "header",      required_argument, NULL, ARG_HEADER      },
                { "no-oversign", no_argument,       NULL, ARG_NO_OVERSIGN },
                { "dns-dir",     required_argument, NULL, ARG_DNS_DIR     },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_SELECTOR:
                        arg_selector = optarg;
                        break;
                case ARG_DOMAIN:
                        arg_domain = optarg;
                        break;
                case ARG_KEY:
                        arg_key = optarg;
                        break;
                case ARG_ALGORITHM:
                        arg_algorithm = optarg;
                        break;
                case ARG_CANON:
                        r = parse_canon(optarg);
                        if (r < 0)
                                return log_error_errno(r, "Invalid canonicalization '%s'.", optarg);
                        break;
                case ARG_HEADER:
                        r = strv_extend(&arg_headers, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                case ARG_NO_OVERSIGN:
                        arg_no_oversign = true;
                        break;
                case ARG_DNS_DIR:
                        arg_dns_dir = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        assert(false);
                }
        return 1;
}

int main(int argc, char *argv[]) {
        const char *verb;
        int r;

        log_setup();

        r = parse_argv(argc, argv);
        if (r <= 0) {
                strv_free(arg_headers);
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        }

        verb = optind < argc ? argv[optind] : NULL;
        if (verb && optind + 1 < argc) {
                log_error("Too many arguments.");
                r = -EINVAL;
        } else if (verb && streq(verb, "sign"))
                r = do_sign();
        else if (verb && streq(verb, "verify"))
                r = do_verify();
        else {
                log_error("Expected a verb: sign or verify.");
                r = -EINVAL;
        }

        strv_free(arg_headers);
        return r < 0 ? EXIT_USAGE : r;
}
