/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * auth-bench: throughput of libauthd's DKIM and SPF code, for tests/bench/auth.
 *
 *   auth-bench dkim-sign   --alg rsa|ed25519 --size BYTES --count N [--dir DIR]
 *   auth-bench dkim-verify --alg rsa|ed25519 --size BYTES --count N [--dir DIR]
 *   auth-bench body-hash   --size BYTES [--seconds S]
 *   auth-bench spf         --count N
 *   auth-bench prepare     --dir DIR --size BYTES...
 *
 * Keys are RSA 2048 and Ed25519, generated with OpenSSL when the program starts, or
 * loaded from DIR/rsa.pem and DIR/ed25519.pem when --dir is given and they exist (they
 * are written there otherwise, so that every run of one benchmark uses the same keys).
 * Messages are RFC 5322 text of exactly BYTES bytes (headers included), CRLF lines of
 * words, made by a fixed pseudo-random sequence: the same BYTES gives the same message.
 *
 * dkim-verify signs the message once with dkim_sign() and then verifies it N times; the
 * key record comes from a callback that returns it from memory (no DNS). Every
 * verification must pass, every signature must be produced, or the program exits 1.
 *
 * spf evaluates check_host() N times against one record set (an include chain, ip4,
 * ip6, a and mx: 7 lookups), answering every lookup from an in-memory cache that holds
 * the parsed answers, as a warm resolver cache would.
 *
 * prepare writes, for the other implementations measured by tests/bench/auth: the keys
 * (rsa.pem, ed25519.pem as PKCS#8; ed25519.seed as base64 of the 32-byte private key),
 * the key records (rsa.txt, ed25519.txt), and for each size msg-BYTES.eml and
 * signed-ALG-BYTES.eml (the message with a mailsec DKIM-Signature).
 *
 * Output: one line per measurement, "key=value" words; rate= is per second.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cleanup.h"
#include "dkim-canon.h"
#include "dkim-key.h"
#include "dkim-sign.h"
#include "dkim-signature.h"
#include "dkim-verify.h"
#include "dns-answer.h"
#include "macro.h"
#include "spf-eval.h"

#define SIZE_MIN 512U
#define SIZE_MAX_BYTES (64U * 1024U * 1024U)
#define COUNT_MAX 100000000U
#define DOMAIN "bench.example"
#define SELECTOR_RSA "rsa2048"
#define SELECTOR_ED25519 "ed2019"

typedef enum Alg {
        ALG_RSA,
        ALG_ED25519,
        _ALG_MAX,
} Alg;

static const char* const alg_name[_ALG_MAX] = {
        [ALG_RSA] = "rsa",
        [ALG_ED25519] = "ed25519",
};

static const char* const alg_selector[_ALG_MAX] = {
        [ALG_RSA] = SELECTOR_RSA,
        [ALG_ED25519] = SELECTOR_ED25519,
};

static Alg arg_alg = ALG_RSA;
static size_t arg_sizes[8];
static size_t arg_n_sizes = 0;
static uint64_t arg_count = 0;
static double arg_seconds = 1.0;
static const char *arg_dir = NULL;

static double now_seconds(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A fixed xorshift sequence, so a size always gives the same text. */
static uint32_t rng_next(uint32_t *s) {
        uint32_t x = *s;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return *s = x;
}

static void put_words(char *p, size_t n, uint32_t *rng) {
        size_t i = 0;

        /* Words of 1..10 letters separated by one space; no space at either end. */
        while (i < n) {
                size_t w = 1 + rng_next(rng) % 10;

                for (size_t k = 0; k < w && i < n; k++)
                        p[i++] = (char) ('a' + rng_next(rng) % 26);
                if (i + 1 < n)
                        p[i++] = ' ';
        }
}

/* Lines of 40..76 characters, each ending in CRLF, exactly n bytes in all (n >= 3). */
static void put_text(char *p, size_t n, uint32_t *rng) {
        size_t left = n;

        assert(n >= 3);

        while (left > 0) {
                size_t line;

                if (left > 160)
                        line = 40 + rng_next(rng) % 37;
                else if (left > 80)
                        line = left / 2 - 2;
                else
                        line = left - 2;
                put_words(p, line, rng);
                p[line] = '\r';
                p[line + 1] = '\n';
                p += line + 2;
                left -= line + 2;
        }
}

static int make_message(size_t size, char **ret) {
        static const char headers[] =
                "From: Alice Example <alice@" DOMAIN ">\r\n"
                "To: Bob Example <bob@receiver.example>\r\n"
                "Subject: Quarterly figures and the plan for the next release\r\n"
                "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
                "Message-ID: <20261127100000.4711@" DOMAIN ">\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "\r\n";
        uint32_t rng = 2463534242U;
        char *m;

        assert(size >= SIZE_MIN);

        m = malloc(size + 1);
        if (!m)
                return -ENOMEM;
        memcpy(m, headers, STRLEN(headers));
        put_text(m + STRLEN(headers), size - STRLEN(headers), &rng);
        m[size] = 0;
        *ret = m;
        return 0;
}

/* Keys */

static int key_generate(Alg a, EVP_PKEY **ret) {
        EVP_PKEY *k;

        if (a == ALG_RSA)
                k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        else
                k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!k)
                return -EIO;
        *ret = k;
        return 0;
}

static int key_write(EVP_PKEY *k, const char *path) {
        _cleanup_fclose_ FILE *f = NULL;

        f = fopen(path, "we");
        if (!f)
                return -errno;
        if (PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)
                return -EIO;
        return fflush(f) == 0 ? 0 : -errno;
}

static int key_load(Alg a, EVP_PKEY **ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        EVP_PKEY *k;
        int r;

        if (!arg_dir)
                return key_generate(a, ret);

        if (asprintf(&path, "%s/%s.pem", arg_dir, alg_name[a]) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f) {
                if (errno != ENOENT)
                        return -errno;
                r = key_generate(a, &k);
                if (r < 0)
                        return r;
                r = key_write(k, path);
                if (r < 0) {
                        EVP_PKEY_free(k);
                        return r;
                }
                *ret = k;
                return 0;
        }
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (!k)
                return -EBADMSG;
        *ret = k;
        return 0;
}

/* The key record text (RFC 6376 §3.6.1; RFC 8463 §4 for the raw Ed25519 key). */
static int key_record(Alg a, EVP_PKEY *k, char **ret) {
        _cleanup_free_ char *b64 = NULL;
        uint8_t raw[32];
        size_t raw_len = sizeof(raw);
        int r;

        if (a == ALG_RSA) {
                uint8_t *p = NULL;
                int n = i2d_PUBKEY(k, &p);

                if (n <= 0)
                        return -EIO;
                r = dkim_base64_encode(p, (size_t) n, &b64);
                OPENSSL_free(p);
        } else {
                if (EVP_PKEY_get_raw_public_key(k, raw, &raw_len) != 1)
                        return -EIO;
                r = dkim_base64_encode(raw, raw_len, &b64);
        }
        if (r < 0)
                return r;
        if (asprintf(ret, "v=DKIM1; k=%s; p=%s", a == ALG_RSA ? "rsa" : "ed25519", b64) < 0)
                return -ENOMEM;
        return 0;
}

static int sign_message(EVP_PKEY *k, Alg a, const char *msg, size_t len, char **ret) {
        DkimSigner s = DKIM_SIGNER_INIT;

        s.key = k;
        s.domain = DOMAIN;
        s.selector = alg_selector[a];
        return dkim_sign(msg, len, &s, 1, ret);
}

typedef struct KeyStore {
        const char *selector;
        const char *record;
        uint64_t lookups;
} KeyStore;

static int get_key_from_memory(const char *selector, const char *domain, char **ret_txt, void *userdata) {
        KeyStore *ks = userdata;
        char *t;

        ks->lookups++;
        if (strcmp(selector, ks->selector) != 0 || strcmp(domain, DOMAIN) != 0)
                return -ENXIO;
        t = strdup(ks->record);
        if (!t)
                return -ENOMEM;
        *ret_txt = t;
        return 0;
}

static void print_rate(const char *what, size_t size, uint64_t n, double secs) {
        double rate = (double) n / secs;

        printf("%s alg=%s size=%zu count=%" PRIu64 " seconds=%.3f rate=%.1f msg/s mbps=%.1f MB/s\n",
               what, alg_name[arg_alg], size, n, secs, rate, rate * (double) size / 1e6);
}

static int run_dkim(bool verify) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *msg = NULL, *record = NULL, *sig = NULL, *signed_msg = NULL;
        const char *reason = NULL;
        size_t size = arg_sizes[0], len;
        KeyStore ks = { .selector = alg_selector[arg_alg] };
        uint64_t failed = 0;
        double t0, t1;
        int r;

        r = key_load(arg_alg, &key);
        if (r < 0) {
                fprintf(stderr, "Failed to get the %s key: %s\n", alg_name[arg_alg], strerror(-r));
                return r;
        }
        r = make_message(size, &msg);
        if (r < 0)
                return r;

        if (!verify) {
                t0 = now_seconds();
                for (uint64_t i = 0; i < arg_count; i++) {
                        _cleanup_free_ char *s = NULL;

                        r = sign_message(key, arg_alg, msg, size, &s);
                        if (r < 0 || strncmp(s, "DKIM-Signature:", 15) != 0)
                                failed++;
                }
                t1 = now_seconds();
                if (failed > 0) {
                        fprintf(stderr, "dkim-sign: %" PRIu64 " of %" PRIu64 " signatures failed\n",
                                failed, arg_count);
                        return -EIO;
                }
                print_rate("dkim-sign", size, arg_count, t1 - t0);
                return 0;
        }

        r = key_record(arg_alg, key, &record);
        if (r < 0)
                return r;
        r = sign_message(key, arg_alg, msg, size, &sig);
        if (r < 0) {
                fprintf(stderr, "dkim_sign: %s\n", strerror(-r));
                return r;
        }
        len = strlen(sig) + size;
        signed_msg = malloc(len + 1);
        if (!signed_msg)
                return -ENOMEM;
        memcpy(signed_msg, sig, strlen(sig));
        memcpy(signed_msg + strlen(sig), msg, size + 1);

        ks.record = record;
        t0 = now_seconds();
        for (uint64_t i = 0; i < arg_count; i++) {
                _cleanup_(dkim_verify_results_done) DkimVerifyResults res = DKIM_VERIFY_RESULTS_NULL;

                r = dkim_verify(signed_msg, len, NULL, get_key_from_memory, &ks, &res);
                if (r < 0 || res.n_results != 1 || res.results[0].result != DKIM_RESULT_PASS) {
                        if (r >= 0 && res.n_results > 0 && !reason)
                                reason = res.results[0].reason;
                        failed++;
                }
        }
        t1 = now_seconds();
        if (failed > 0 || ks.lookups != arg_count) {
                fprintf(stderr, "dkim-verify: %" PRIu64 " of %" PRIu64 " verifications did not pass (%s)\n",
                        failed, arg_count, reason ?: "no reason");
                return -EIO;
        }
        print_rate("dkim-verify", size, arg_count, t1 - t0);
        printf("dkim-verify key-records=memory-callback dns=none\n");
        return 0;
}

/* Body hashing: the body hasher of both canonicalizations, and for reference in the same
 * process SHA-256 over the same bytes and memcpy of them. */

typedef enum HashKind {
        HASH_RELAXED,
        HASH_SIMPLE,
        HASH_SHA256,
        HASH_MEMCPY,
        _HASH_KIND_MAX,
} HashKind;

static const char* const hash_kind_name[_HASH_KIND_MAX] = {
        [HASH_RELAXED] = "relaxed",
        [HASH_SIMPLE] = "simple",
        [HASH_SHA256] = "sha256-evp",
        [HASH_MEMCPY] = "memcpy",
};

static int hash_once(HashKind k, const char *body, size_t size, char *scratch) {
        _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *h = NULL;
        uint8_t md[32];
        uint64_t total;
        int r;

        switch (k) {
        case HASH_RELAXED:
        case HASH_SIMPLE:
                r = dkim_body_hasher_new(k == HASH_RELAXED ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
                                         UINT64_MAX, &h);
                if (r < 0)
                        return r;
                r = dkim_body_hasher_feed(h, body, size);
                if (r < 0)
                        return r;
                r = dkim_body_hasher_finish(h, md, &total);
                if (r < 0)
                        return r;
                /* The text has no trailing white space and no empty lines. */
                return total == size ? 0 : -EIO;
        case HASH_SHA256:
                return EVP_Digest(body, size, md, NULL, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
        case HASH_MEMCPY:
                memcpy(scratch, body, size);
                __asm__ __volatile__("" : : "r" (scratch) : "memory");
                return 0;
        default:
                assert(false);
                return -EINVAL;
        }
}

static int run_body_hash(void) {
        _cleanup_free_ char *body = NULL, *scratch = NULL;
        size_t size = arg_sizes[0];
        uint32_t rng = 88172645U;
        int r;

        body = malloc(size);
        scratch = malloc(size);
        if (!body || !scratch)
                return -ENOMEM;
        put_text(body, size, &rng);

        for (HashKind k = 0; k < _HASH_KIND_MAX; k++) {
                uint64_t n = 0;
                double t0, t;

                r = hash_once(k, body, size, scratch);     /* warm up */
                if (r < 0)
                        return r;
                t0 = now_seconds();
                do {
                        r = hash_once(k, body, size, scratch);
                        if (r < 0)
                                return r;
                        n++;
                        t = now_seconds() - t0;
                } while (arg_count > 0 ? n < arg_count : t < arg_seconds);
                printf("body-hash canon=%s size=%zu count=%" PRIu64 " seconds=%.3f rate=%.1f MB/s\n",
                       hash_kind_name[k], size, n, t, (double) n * (double) size / t / 1e6);
        }
        return 0;
}

/* SPF with a warm cache: every answer already parsed, looked up by name and type. */

typedef struct CacheEntry {
        const char *name;
        uint16_t type;
        DnsAnswer answer;
} CacheEntry;

static CacheEntry spf_cache[] = {
        { "bench.example", DNS_TYPE_TXT, DNS_ANSWER_NULL },
        { "bench.example", DNS_TYPE_A, DNS_ANSWER_NULL },
        { "bench.example", DNS_TYPE_MX, DNS_ANSWER_NULL },
        { "mx1.bench.example", DNS_TYPE_A, DNS_ANSWER_NULL },
        { "mx2.bench.example", DNS_TYPE_A, DNS_ANSWER_NULL },
        { "_spf.mailhost.example", DNS_TYPE_TXT, DNS_ANSWER_NULL },
        { "_spf.crm.example", DNS_TYPE_TXT, DNS_ANSWER_NULL },
};

static const DnsAnswer spf_nxdomain = { .result = DNS_RESULT_NXDOMAIN, .dnssec = DNSSEC_INDETERMINATE };

static void spf_cache_done(void) {
        for (size_t i = 0; i < ELEMENTSOF(spf_cache); i++)
                dns_answer_done(&spf_cache[i].answer);
}

static int spf_cache_txt(size_t i, const char *txt) {
        return dns_answer_add_txt(&spf_cache[i].answer, txt, strlen(txt), 3600);
}

static int spf_cache_a(size_t i, const char *ip) {
        struct in_addr in;

        if (inet_pton(AF_INET, ip, &in) != 1)
                return -EINVAL;
        return dns_answer_add_a(&spf_cache[i].answer, &in, 3600);
}

static int spf_cache_fill(void) {
        int r = 0;

        /* The domain's record, a TXT that is not SPF next to it, and what its terms need:
         * the client matches only in the second include, after every other term missed. */
        r = r ?: spf_cache_txt(0, "v=spf1 ip4:192.0.2.0/25 ip6:2001:db8:10::/48 a mx "
                                  "include:_spf.mailhost.example include:_spf.crm.example -all");
        r = r ?: spf_cache_txt(0, "google-site-verification=2f8c1e0a9b7d6c5e4f3a2b1c0d9e8f7a");
        r = r ?: spf_cache_a(1, "192.0.2.200");
        r = r ?: dns_answer_add_mx(&spf_cache[2].answer, 10, "mx1.bench.example", 3600);
        r = r ?: dns_answer_add_mx(&spf_cache[2].answer, 20, "mx2.bench.example", 3600);
        r = r ?: spf_cache_a(3, "192.0.2.210");
        r = r ?: spf_cache_a(4, "192.0.2.211");
        r = r ?: spf_cache_txt(5, "v=spf1 ip4:203.0.113.0/26 ip4:203.0.113.128/27 "
                                  "ip6:2001:db8:20::/48 ~all");
        r = r ?: spf_cache_txt(6, "v=spf1 ip4:198.51.100.64/26 ip6:2001:db8:30::/48 -all");
        return r;
}

static const DnsAnswer* spf_cache_lookup(const SpfLookup *l) {
        for (size_t i = 0; i < ELEMENTSOF(spf_cache); i++)
                if (spf_cache[i].type == l->type && strcasecmp(spf_cache[i].name, l->name) == 0)
                        return &spf_cache[i].answer;
        return &spf_nxdomain;
}

static int spf_once(const SpfRequest *req, unsigned *ret_lookups, SpfResult *ret_result) {
        _cleanup_(spf_eval_freep) SpfEval *e = NULL;
        const SpfOutcome *o;
        unsigned lookups = 0;
        SpfLookup l;
        int r;

        r = spf_eval_new(req, &e);
        if (r < 0)
                return r;
        for (const DnsAnswer *a = NULL;; lookups++) {
                r = spf_eval_step(e, a, &l);
                if (r < 0)
                        return r;
                if (r == SPF_STEP_DONE)
                        break;
                a = spf_cache_lookup(&l);
        }
        r = spf_eval_result(e, &o);
        if (r < 0)
                return r;
        *ret_lookups = lookups;
        *ret_result = o->result;
        return 0;
}

static int run_spf(void) {
        SpfRequest req = {
                .family = AF_INET,
                .mail_from = "alice@bench.example",
                .helo = "mail.crm.example",
                .receiver = "mx.receiver.example",
                .now = 1795780800,
        };
        unsigned lookups = 0;
        SpfResult result = _SPF_RESULT_INVALID;
        uint64_t failed = 0;
        double t0, t1;
        int r;

        if (inet_pton(AF_INET, "198.51.100.77", &req.ip.in) != 1)
                return -EINVAL;

        r = spf_cache_fill();
        if (r < 0)
                goto finish;

        r = spf_once(&req, &lookups, &result);
        if (r < 0)
                goto finish;
        if (result != SPF_RESULT_PASS) {
                fprintf(stderr, "spf: expected pass, got %s\n", spf_result_to_string(result));
                r = -EIO;
                goto finish;
        }

        t0 = now_seconds();
        for (uint64_t i = 0; i < arg_count; i++) {
                unsigned n;
                SpfResult res;

                r = spf_once(&req, &n, &res);
                if (r < 0 || res != SPF_RESULT_PASS || n != lookups)
                        failed++;
        }
        t1 = now_seconds();
        r = 0;
        if (failed > 0) {
                fprintf(stderr, "spf: %" PRIu64 " of %" PRIu64 " evaluations did not pass\n", failed, arg_count);
                r = -EIO;
                goto finish;
        }
        printf("spf count=%" PRIu64 " seconds=%.3f rate=%.1f eval/s result=pass lookups-per-eval=%u "
               "resolver=warm-cache (every lookup answered from parsed answers in memory, no DNS)\n",
               arg_count, t1 - t0, (double) arg_count / (t1 - t0), lookups);
finish:
        spf_cache_done();
        return r;
}

/* Files for the other implementations. */

static int write_file(const char *name, const char *data, size_t len) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;

        if (asprintf(&path, "%s/%s", arg_dir, name) < 0)
                return -ENOMEM;
        f = fopen(path, "we");
        if (!f)
                return -errno;
        if (fwrite(data, 1, len, f) != len)
                return -EIO;
        return fflush(f) == 0 ? 0 : -errno;
}

static int run_prepare(void) {
        EVP_PKEY *keys[_ALG_MAX] = {};
        int r = 0;

        for (Alg a = 0; a < _ALG_MAX && r >= 0; a++) {
                _cleanup_free_ char *record = NULL, *name = NULL;

                r = key_load(a, &keys[a]);
                if (r < 0)
                        break;
                r = key_record(a, keys[a], &record);
                if (r < 0)
                        break;
                if (asprintf(&name, "%s.txt", alg_name[a]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = write_file(name, record, strlen(record));
        }
        if (r >= 0) {
                /* dkimpy wants the Ed25519 private key as base64 of its 32 bytes. */
                _cleanup_free_ char *b64 = NULL;
                uint8_t raw[32];
                size_t raw_len = sizeof(raw);

                if (EVP_PKEY_get_raw_private_key(keys[ALG_ED25519], raw, &raw_len) != 1)
                        r = -EIO;
                else
                        r = dkim_base64_encode(raw, raw_len, &b64);
                if (r >= 0)
                        r = write_file("ed25519.seed", b64, strlen(b64));
        }
        for (size_t i = 0; i < arg_n_sizes && r >= 0; i++) {
                _cleanup_free_ char *msg = NULL, *name = NULL;

                r = make_message(arg_sizes[i], &msg);
                if (r < 0)
                        break;
                if (asprintf(&name, "msg-%zu.eml", arg_sizes[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = write_file(name, msg, arg_sizes[i]);
                for (Alg a = 0; a < _ALG_MAX && r >= 0; a++) {
                        _cleanup_free_ char *sig = NULL, *out = NULL, *sname = NULL;

                        r = sign_message(keys[a], a, msg, arg_sizes[i], &sig);
                        if (r < 0)
                                break;
                        if (asprintf(&out, "%s%s", sig, msg) < 0 ||
                            asprintf(&sname, "signed-%s-%zu.eml", alg_name[a], arg_sizes[i]) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        r = write_file(sname, out, strlen(out));
                }
        }
        for (Alg a = 0; a < _ALG_MAX; a++)
                EVP_PKEY_free(keys[a]);
        if (r < 0)
                fprintf(stderr, "prepare: %s\n", strerror(-r));
        return r;
}

static void help(void) {
        printf("Usage: auth-bench dkim-sign|dkim-verify --alg rsa|ed25519 --size BYTES --count N [--dir DIR]\n"
               "       auth-bench body-hash --size BYTES [--seconds S | --count N]\n"
               "       auth-bench spf --count N\n"
               "       auth-bench prepare --dir DIR --size BYTES [--size BYTES...]\n");
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "alg",     required_argument, NULL, 'a' },
                { "size",    required_argument, NULL, 's' },
                { "count",   required_argument, NULL, 'n' },
                { "seconds", required_argument, NULL, 't' },
                { "dir",     required_argument, NULL, 'd' },
                { "help",    no_argument,       NULL, 'h' },
                {}
        };
        const char *mode;
        uint64_t v;
        int c, r;

        if (argc < 2 || argv[1][0] == '-') {
                help();
                return argc < 2 ? 2 : 0;
        }
        mode = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "a:s:n:t:d:h", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        if (strcmp(optarg, "rsa") == 0)
                                arg_alg = ALG_RSA;
                        else if (strcmp(optarg, "ed25519") == 0)
                                arg_alg = ALG_ED25519;
                        else {
                                fprintf(stderr, "Unknown algorithm '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 's':
                        if (arg_n_sizes >= ELEMENTSOF(arg_sizes) ||
                            parse_u64(optarg, SIZE_MIN, SIZE_MAX_BYTES, &v) < 0) {
                                fprintf(stderr, "Bad or too many --size '%s' (%u..%u bytes)\n",
                                        optarg, SIZE_MIN, SIZE_MAX_BYTES);
                                return 2;
                        }
                        arg_sizes[arg_n_sizes++] = (size_t) v;
                        break;
                case 'n':
                        if (parse_u64(optarg, 1, COUNT_MAX, &arg_count) < 0) {
                                fprintf(stderr, "Bad --count '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 't':
                        if (parse_u64(optarg, 1, 600, &v) < 0) {
                                fprintf(stderr, "Bad --seconds '%s' (1..600)\n", optarg);
                                return 2;
                        }
                        arg_seconds = (double) v;
                        break;
                case 'd':
                        arg_dir = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "Unexpected argument '%s'\n", argv[optind]);
                return 2;
        }

        if (strcmp(mode, "dkim-sign") == 0 || strcmp(mode, "dkim-verify") == 0) {
                if (arg_n_sizes != 1 || arg_count == 0) {
                        fprintf(stderr, "%s needs one --size and --count\n", mode);
                        return 2;
                }
                r = run_dkim(strcmp(mode, "dkim-verify") == 0);
        } else if (strcmp(mode, "body-hash") == 0) {
                if (arg_n_sizes != 1) {
                        fprintf(stderr, "body-hash needs one --size\n");
                        return 2;
                }
                r = run_body_hash();
        } else if (strcmp(mode, "spf") == 0) {
                if (arg_count == 0) {
                        fprintf(stderr, "spf needs --count\n");
                        return 2;
                }
                r = run_spf();
        } else if (strcmp(mode, "prepare") == 0) {
                if (!arg_dir || arg_n_sizes == 0) {
                        fprintf(stderr, "prepare needs --dir and --size\n");
                        return 2;
                }
                r = run_prepare();
        } else {
                fprintf(stderr, "Unknown mode '%s'\n", mode);
                help();
                return 2;
        }
        return r < 0 ? 1 : 0;
}
