/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cleanup.h"
#include "log.h"
#include "proxyd-tls.h"
#include "string-util.h"

static bool lib_is_input(int lib) {
        /* Errors raised while parsing what a file or a peer gave us. */
        return lib == ERR_LIB_PEM || lib == ERR_LIB_ASN1 || lib == ERR_LIB_X509 ||
               lib == ERR_LIB_X509V3 || lib == ERR_LIB_SSL || lib == ERR_LIB_EVP;
}

int tls_log_errors(const char *what) {
        unsigned long e;
        bool bad_input = false, any = false;

        while ((e = ERR_get_error()) != 0) {
                char buf[256];
                int lib = ERR_GET_LIB(e);

                any = true;
                if (lib_is_input(lib))
                        bad_input = true;
                ERR_error_string_n(e, buf, sizeof(buf));
                log_debug("%s: %s", strna(what), buf);
        }

        return any && !bad_input ? -EIO : -EBADMSG;
}

int tls_ssl_error(SSL *ssl, int ret, const char *what) {
        int e = SSL_get_error(ssl, ret);

        switch (e) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
                return -EAGAIN;
        case SSL_ERROR_ZERO_RETURN:
                return 0;
        case SSL_ERROR_SYSCALL:
                if (ERR_peek_error() == 0) {
                        /* Connection reset or EOF without close_notify. */
                        int saved = errno;
                        log_debug("%s: connection closed: %s", strna(what),
                                  saved ? strerror(saved) : "unexpected EOF");
                        return saved > 0 ? -saved : -ECONNRESET;
                }
                return tls_log_errors(what);
        default:
                return tls_log_errors(what);
        }
}

char* tls_describe(SSL *ssl) {
        char *s = NULL;

        if (!ssl)
                return NULL;
        if (asprintf_safe(&s, "%s %s", SSL_get_version(ssl), strna(SSL_get_cipher_name(ssl))) < 0)
                return NULL;
        return s;
}

int tls_resolve_key_path(const char *path, char **ret) {
        const char *d;
        char *p;

        if (isempty(path))
                return -EINVAL;

        if (path[0] == '/' || !(d = secure_getenv("CREDENTIALS_DIRECTORY")) || isempty(d))
                p = strdup(path);
        else if (asprintf_safe(&p, "%s/%s", d, path) < 0)
                p = NULL;
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

static void SSL_CTX_freep(SSL_CTX **p) {
        if (*p)
                SSL_CTX_free(*p);
}

int tls_server_context_new(char *const *certs, char *const *keys, SSL_CTX **ret, char **ret_message) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        size_t n_certs = strv_length(certs), n_keys = strv_length(keys);
        int r;

#define FAIL(r_, ...)                                                           \
        ({                                                                      \
                if (ret_message)                                                \
                        (void) asprintf_safe(ret_message, __VA_ARGS__);         \
                (r_);                                                           \
        })

        assert(ret);

        if (n_certs == 0)
                return FAIL(-EINVAL, "No CertificateFile= configured");
        if (n_certs != n_keys)
                return FAIL(-EINVAL, "%zu CertificateFile= but %zu KeyFile= settings; they come in pairs",
                            n_certs, n_keys);

        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx)
                return FAIL(tls_log_errors("SSL_CTX_new"), "Cannot create a TLS context");

        if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
                return FAIL(tls_log_errors("protocol versions"), "Cannot restrict TLS versions");

        if (SSL_CTX_set_cipher_list(ctx, TLS_SERVER_CIPHERS_TLS12) != 1)
                return FAIL(tls_log_errors("cipher list"), "Cannot set the TLS 1.2 cipher list");

        if (SSL_CTX_set1_groups_list(ctx, TLS_SERVER_GROUPS) != 1)
                return FAIL(tls_log_errors("groups"), "Cannot set the key exchange groups");

        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        /* TLS 1.3 stateful tickets are off too: no resumption state per client. */
        (void) SSL_CTX_set_num_tickets(ctx, 0);

        for (size_t i = 0; i < n_certs; i++) {
                _cleanup_free_ char *key = NULL;

                r = tls_resolve_key_path(keys[i], &key);
                if (r < 0)
                        return FAIL(r, "Invalid KeyFile=%s", keys[i]);

                if (SSL_CTX_use_certificate_chain_file(ctx, certs[i]) != 1)
                        return FAIL(tls_log_errors(certs[i]),
                                    "Cannot load certificate chain from %s", certs[i]);

                if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
                        return FAIL(tls_log_errors(key), "Cannot load private key from %s", key);

                /* Checks the key just loaded against the certificate of the same type. */
                if (SSL_CTX_check_private_key(ctx) != 1)
                        return FAIL(tls_log_errors(key), "Private key %s does not match certificate %s",
                                    key, certs[i]);
        }
#undef FAIL

        *ret = TAKE_PTR(ctx);
        return 0;
}
