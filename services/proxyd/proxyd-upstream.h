/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The relay to the next hop: one SMTP client connection per proxied session, driven by
 * the session through asynchronous calls. Every call completes by calling its handler
 * exactly once, with the next hop's reply or with a negative errno (connection refused,
 * timeout, TLS failure, a reply that breaks the protocol). After an error the Upstream
 * is dead: every further call fails with -ENOTCONN. The handler may free the Upstream.
 * A call that returns a negative errno itself (-ENOTCONN, -EBUSY while another call is
 * pending, -EINVAL, -EPROTONOSUPPORT from upstream_hello() when XCLIENT is configured but
 * not offered, which also kills the Upstream) does not call its handler.
 *
 * Message content comes from a sealed memfd holding the message exactly as the client
 * sent it: CRLF line ends, no dot-stuffing, without the terminating ".". */

#include <stdbool.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <systemd/sd-event.h>

#include "conf-parser.h"
#include "smtp-reply.h"
#include "time-util.h"

typedef enum BackendClientInfo {
        BACKEND_CLIENT_INFO_XCLIENT,    /* Postfix XCLIENT after the greeting */
        BACKEND_CLIENT_INFO_PROXY_V2,   /* HAProxy PROXY protocol v2 header before anything */
        BACKEND_CLIENT_INFO_NONE,
        _BACKEND_CLIENT_INFO_MAX,
        _BACKEND_CLIENT_INFO_INVALID = -EINVAL,
} BackendClientInfo;
const char* backend_client_info_to_string(BackendClientInfo i) _const_;   /* "xclient", "proxy-v2", "none" */
BackendClientInfo backend_client_info_from_string(const char *s) _pure_;

typedef enum BackendTls {
        BACKEND_TLS_NO,
        BACKEND_TLS_MAY,                /* STARTTLS when offered, certificate not checked */
        BACKEND_TLS_VERIFY,             /* STARTTLS required, chain (CAFile) or SPKI pin checked */
        _BACKEND_TLS_MAX,
        _BACKEND_TLS_INVALID = -EINVAL,
} BackendTls;
const char* backend_tls_to_string(BackendTls t) _const_;                  /* "no", "may", "verify" */
BackendTls backend_tls_from_string(const char *s) _pure_;

typedef struct UpstreamConfig {
        SocketAddress address;
        BackendClientInfo client_info;
        BackendTls tls;
        char *ca_file;                  /* BackendCAFile= */
        uint8_t pin[32];                /* BackendPin=: SHA-256 of the SPKI */
        bool have_pin;
        char *tls_name;                 /* BackendTLSName=: SNI and name check */
        char *helo;                     /* our own name towards the backend */
        usec_t connect_timeout, greeting_timeout, mail_timeout, rcpt_timeout,
               data_init_timeout, data_block_timeout, data_term_timeout;
        SSL_CTX *ssl_ctx;               /* client context, built by upstream_config_prepare() */
} UpstreamConfig;

/* Builds ssl_ctx from tls/ca_file (TLS 1.2+, AEAD/ECDHE only). -EINVAL with nothing logged
 * for a bad CA file: the caller logs. */
int upstream_config_prepare(UpstreamConfig *c);
/* Frees ssl_ctx and the strings (ca_file, tls_name, helo). */
void upstream_config_done(UpstreamConfig *c);
/* "ab12..." 64 hex digits -> pin */
int upstream_parse_pin(const char *s, uint8_t ret[static 32]);

typedef struct UpstreamClientInfo {
        const struct sockaddr *client;  /* the real client's address (remote end) */
        socklen_t client_len;
        const struct sockaddr *local;   /* where it connected to (our listening address) */
        socklen_t local_len;
} UpstreamClientInfo;

typedef struct Upstream Upstream;

/* reply: valid only during the call; NULL iff error < 0. */
typedef void (*UpstreamHandler)(Upstream *u, const SmtpReply *reply, int error, void *userdata);

/* Allocates and starts connecting at once (PROXY v2 header first if configured), reads
 * the greeting, sends EHLO with c->helo, and STARTTLS + EHLO again per c->tls.
 * handler gets the backend's 220 greeting (or an error; a 4xx/5xx greeting is passed as
 * a reply). The config and the event loop must outlive the Upstream. */
int upstream_new(sd_event *e, const UpstreamConfig *c, const UpstreamClientInfo *info,
                 UpstreamHandler handler, void *userdata, Upstream **ret);

/* Introduce the client. XCLIENT mode: "XCLIENT ADDR= PORT= NAME=[UNAVAILABLE] PROTO= HELO="
 * (values xtext-encoded, only attributes the backend advertised), the new 220, then
 * EHLO/HELO helo, the client's own verb. Other modes: EHLO helo, also for a client that
 * said HELO (HELO only when the backend refuses EHLO). handler gets the EHLO/HELO reply,
 * whose lines are the backend's capabilities (also kept, see upstream_capabilities()).
 * May be called again after the client's STARTTLS (the session then starts afresh). */
int upstream_hello(Upstream *u, const char *helo, bool esmtp, bool client_tls,
                   UpstreamHandler handler, void *userdata);

/* The connection is idle and was last introduced (upstream_hello(), answered 250 to EHLO)
 * with this HELO name, without client information (BackendClientInfo=none): an EHLO
 * with the same name would change nothing at the backend, and upstream_capabilities()
 * holds its answer. A connection handed on from a session whose client said the same
 * name does not need it again. */
bool upstream_introduced_as(Upstream *u, const char *helo);

/* Send one command (line without CRLF, e.g. "MAIL FROM:<a@b> SIZE=10") and wait for its
 * reply, bounded by timeout. */
int upstream_command(Upstream *u, const char *line, usec_t timeout, UpstreamHandler handler, void *userdata);

/* Send two commands in one write (RFC 2920; the backend must offer PIPELINING, else
 * -EOPNOTSUPP and nothing is sent), e.g. a MAIL held back until its first RCPT. handler
 * gets the second command's reply when the first was answered 2xx, else the first
 * command's reply (the second's, typically 503, is read and dropped; after a 421 the
 * connection is closed without waiting for it). upstream_reply_to_first() tells which,
 * during the handler. Each reply is bounded by its own timeout. */
int upstream_command_pipelined(Upstream *u, const char *first, usec_t first_timeout,
                               const char *second, usec_t second_timeout,
                               UpstreamHandler handler, void *userdata);
bool upstream_reply_to_first(Upstream *u);

/* Relay one message: "DATA", its 354, then prefix (e.g. our Received: field, CRLF-terminated)
 * and the memfd's content with dot-stuffing, then ".", and wait for the final reply
 * (BackendDataTermTimeoutSec). With CHUNKING at the backend, one "BDAT n LAST" is used
 * instead. The memfd is only read (pread); the caller keeps it. */
int upstream_send_message(Upstream *u, const char *prefix, size_t prefix_len, int memfd, uint64_t size,
                          UpstreamHandler handler, void *userdata);

/* Open, no call under way, nothing buffered in either direction: the connection may be
 * handed to another session (BackendReuse=). */
bool upstream_is_idle(Upstream *u);
/* The connection failed or was closed (also while idle, e.g. by the backend's own idle
 * timeout); every call would fail with -ENOTCONN. */
bool upstream_is_dead(Upstream *u);

/* Sends DATA ahead, while the client's message is still arriving, so that the 354
 * round trip overlaps with it. handler gets the backend's reply: after a 354 the
 * connection waits in the DATA state for upstream_send_message(), which then sends
 * the content right away; nothing else may be called then, and giving up on the
 * message means freeing the Upstream (a lone "." would deliver an empty message).
 * -EOPNOTSUPP when the backend offers CHUNKING: BDAT needs the size first. */
int upstream_data_start(Upstream *u, UpstreamHandler handler, void *userdata);
/* The backend said 354 to upstream_data_start() and waits for the content. */
bool upstream_data_ready(Upstream *u);

/* Capabilities from the last EHLO reply (NULL before one). */
const SmtpReply* upstream_capabilities(Upstream *u);
bool upstream_has_capability(Upstream *u, const char *keyword, const char **ret_param);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" when the backend connection is encrypted, else NULL. */
const char* upstream_tls_description(Upstream *u);

/* Send QUIT (best effort, without waiting long) and free. Returns NULL. */
Upstream* upstream_quit_and_free(Upstream *u);
/* Close at once and free; pending handlers are NOT called. Returns NULL. */
Upstream* upstream_free(Upstream *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(Upstream*, upstream_free);

/* Pure helpers, exposed for the unit suite and fuzzers. */
/* PROXY v2 header for a TCP/IPv4 or IPv6 stream (or LOCAL for AF_UNIX); returns its length. */
int proxy_v2_header_build(const struct sockaddr *src, const struct sockaddr *dst,
                          uint8_t *buf, size_t size);
/* RFC 3461 xtext encoding ('+' and non-printables as +HH); new string. */
int xtext_encode(const char *s, char **ret);
/* Dot-stuff a CRLF-line buffer chunk; 'at_line_start' carries state across chunks.
 * Writes at most 2*len bytes into out and returns the number written. */
size_t smtp_dot_stuff(const char *in, size_t len, bool *at_line_start, char *out);
