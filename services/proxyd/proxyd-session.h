/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One client connection: the SMTP server side of the relay. A table-driven state machine
 * (check_<verb>() without side effects, then proceed_<verb>()), with one strategy
 * function, session_advance(), that decides after every event what the connection needs
 * next: TLS handshake steps, flushing replies, the next buffered command, or more input.
 * Replies that depend on the backend are the backend's own, relayed verbatim. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "proxyd-conf.h"
#include "proxyd-tx.h"
#include "proxyd-upstream.h"

typedef struct Manager Manager;
typedef struct Session Session;

typedef enum SessionState {
        SESSION_STATE_GREETING,         /* waiting for the backend's greeting */
        SESSION_STATE_COMMAND,          /* reading commands */
        SESSION_STATE_DATA,             /* reading DATA content or a BDAT chunk */
        SESSION_STATE_STARTTLS,         /* TLS handshake in progress */
        SESSION_STATE_CLOSING,          /* last replies being flushed */
        _SESSION_STATE_MAX,
        _SESSION_STATE_INVALID = -EINVAL,
} SessionState;
const char* session_state_to_string(SessionState s) _const_;   /* as in ListSessions */

typedef enum SessionFlags {
        SESSION_FLAG_EOF             = 1 << 0,  /* the client closed its side */
        SESSION_FLAG_CLOSE           = 1 << 1,  /* close once the output is flushed */
        SESSION_FLAG_SKIP_LINE       = 1 << 2,  /* dropping the rest of an over-long line */
        SESSION_FLAG_FLUSH           = 1 << 3,  /* flush replies now (end of a pipelining group) */
        SESSION_FLAG_STARTTLS        = 1 << 4,  /* 220 for STARTTLS queued; handshake next */
        SESSION_FLAG_BACKEND_BUSY    = 1 << 5,  /* an upstream call is pending */
        SESSION_FLAG_BACKEND_DEAD    = 1 << 6,  /* the upstream failed; next command gets 421 */
        SESSION_FLAG_SSL_WANT_READ   = 1 << 7,
        SESSION_FLAG_SSL_WANT_WRITE  = 1 << 8,
        SESSION_FLAG_IN_ADVANCE      = 1 << 9,
        SESSION_FLAG_AGAIN           = 1 << 10,
        SESSION_FLAG_TIMED_OUT       = 1 << 11,
        SESSION_FLAG_BDAT_DISCARD    = 1 << 12, /* the BDAT chunk being read is refused */
        SESSION_FLAG_UPSTREAM_REUSED = 1 << 13, /* parked connection, not yet answered our EHLO */
} SessionFlags;

struct Session {
        Manager *manager;
        ProxyConfig *config;            /* the configuration this session started with */
        Session *sessions_next, *sessions_prev;

        uint64_t id;
        int fd;
        sd_event_source *io_source, *timer_source, *defer_source;
        uint32_t io_events;
        usec_t last_activity;           /* CLOCK_MONOTONIC */
        usec_t started;                 /* CLOCK_REALTIME */

        struct sockaddr_storage peer, local;
        socklen_t peer_len, local_len;
        char *client;                   /* "192.0.2.1:53211" */
        char *client_ip;                /* "192.0.2.1" */
        bool client_counted;            /* counted in Manager.clients */

        SessionState state;
        SessionFlags flags;

        SSL *ssl;
        char *tls;                      /* "TLSv1.3 TLS_AES_256_GCM_SHA384" once established */

        char *ibuf;                     /* bytes [ibuf_start, ibuf_end) are unprocessed */
        size_t ibuf_size, ibuf_start, ibuf_end;
        char *obuf;                     /* bytes [obuf_start, obuf_end) are to be sent */
        size_t obuf_size, obuf_start, obuf_end;

        Upstream *upstream;

        char *helo;
        bool esmtp;
        unsigned extensions;            /* SmtpExtension offered in our EHLO reply */
        uint64_t size_limit;            /* SIZE we announced */

        Transaction *tx;
        unsigned n_tx;
        unsigned n_bad;
        unsigned messages;              /* relayed with a 250 */

        uint64_t bdat_remaining;        /* bytes of the current BDAT chunk still to read */
        uint64_t bdat_size;
        bool bdat_last;
        const char *bdat_error;         /* reply after a discarded chunk */

        char *log_session, *log_client, *log_helo;  /* journal fields */
};

/* Takes fd (a connected, accepted socket) in all cases. The session starts the upstream
 * connection at once and greets the client when the backend has greeted us. */
int session_new(Manager *m, int fd, const struct sockaddr *peer, socklen_t peer_len, Session **ret);
Session* session_free(Session *s);

/* Shutdown: a last "421 4.3.2 Service shutting down" (best effort), then free. */
void session_shutdown(Session *s);

/* Tests and fuzzers: process whatever can be processed now. */
void session_advance(Session *s);
