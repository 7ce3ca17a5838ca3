/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helper of test-ctl.sh, built on libauthd:
 *
 *   test-ctl-helper sign KEY.pem DOMAIN SELECTOR <msg >signed   DKIM-sign a message
 *   test-ctl-helper check-record KEY.pem 'v=DKIM1; ...'        exit 0 when the record parses
 *                                                               as a DKIM key and holds
 *                                                               exactly KEY's public half */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cleanup.h"
#include "dkim-key.h"
#include "dkim-sign.h"

static EVP_PKEY* load_key(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");

        return f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
}

static int do_sign(const char *keyfile, const char *domain, const char *selector) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = load_key(keyfile);
        _cleanup_free_ char *msg = NULL, *sig = NULL;
        size_t len = 0, size = 0;
        DkimSigner s = DKIM_SIGNER_INIT;
        int r;

        if (!key) {
                fprintf(stderr, "cannot load %s\n", keyfile);
                return 1;
        }
        for (;;) {
                size_t n;

                if (len == size) {
                        char *p = realloc(msg, (size = size ? 2 * size : 65536) + 1);
                        if (!p)
                                return 1;
                        msg = p;
                }
                n = fread(msg + len, 1, size - len, stdin);
                if (n == 0)
                        break;
                len += n;
        }
        if (!msg)
                return 1;
        s.key = key;
        s.domain = domain;
        s.selector = selector;
        r = dkim_sign(msg, len, &s, 1, &sig);
        if (r < 0) {
                fprintf(stderr, "dkim_sign: %s\n", strerror(-r));
                return 1;
        }
        fputs(sig, stdout);
        fwrite(msg, 1, len, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
}

static int do_check_record(const char *keyfile, const char *txt) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = load_key(keyfile);
        _cleanup_(dkim_key_freep) DkimKey *k = NULL;
        const char *reason = NULL;
        int r;

        if (!key) {
                fprintf(stderr, "cannot load %s\n", keyfile);
                return 1;
        }
        r = dkim_key_parse(txt, strlen(txt), &k, &reason);
        if (r < 0) {
                fprintf(stderr, "record does not parse: %s\n", reason ?: strerror(-r));
                return 1;
        }
        if (k->revoked || EVP_PKEY_eq(k->pkey, key) != 1) {
                fprintf(stderr, "record holds another key\n");
                return 1;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        if (argc == 5 && strcmp(argv[1], "sign") == 0)
                return do_sign(argv[2], argv[3], argv[4]);
        if (argc == 4 && strcmp(argv[1], "check-record") == 0)
                return do_check_record(argv[2], argv[3]);
        fprintf(stderr, "usage: test-ctl-helper sign KEY DOMAIN SELECTOR | check-record KEY TXT\n");
        return 2;
}
