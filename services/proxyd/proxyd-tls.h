/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The server side of STARTTLS, and the one place where OpenSSL's error queue is turned
 * into errno values: callers only ever see -EBADMSG (bad input: certificate, key,
 * handshake data) or -EIO (anything else), and the queue is logged at debug level. */

#include <openssl/ssl.h>

#include "macro.h"

#define TLS_SERVER_CIPHERS_TLS12 "ECDHE+AESGCM:ECDHE+CHACHA20"
#define TLS_SERVER_GROUPS "X25519:P-256:P-384"

/* TLS 1.2 and 1.3 only, ECDHE with AEAD for 1.2, server preference, no compression,
 * renegotiation, tickets or session cache, SSL_MODE_RELEASE_BUFFERS. Every
 * certs[i]/keys[i] pair goes into the same context (RSA and ECDSA side by side).
 * Relative key paths are looked up in $CREDENTIALS_DIRECTORY. On failure *ret_message
 * (if given) says which file and why. */
int tls_server_context_new(char *const *certs, char *const *keys, SSL_CTX **ret, char **ret_message);

/* Logs and clears the OpenSSL error queue at debug level; returns -EBADMSG if any entry
 * came from parsing input (PEM, ASN.1, X.509, a handshake alert), else -EIO. */
int tls_log_errors(const char *what);

/* Maps SSL_get_error() after a failed SSL_* call: WANT_READ/WANT_WRITE -> -EAGAIN,
 * ZERO_RETURN -> 0 (orderly close), everything else through tls_log_errors(). */
int tls_ssl_error(SSL *ssl, int ret, const char *what);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for an established connection; new string. */
char* tls_describe(SSL *ssl);

/* Resolves a key path: absolute stays, relative is joined to $CREDENTIALS_DIRECTORY
 * (or kept relative to the working directory when that is unset). New string. */
int tls_resolve_key_path(const char *path, char **ret);
