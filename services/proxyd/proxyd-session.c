/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include "cleanup.h"
#include "log.h"
#include "memfd-util.h"
#include "fd-util.h"
#include "proxyd-checks.h"
#include "proxyd-manager.h"
#include "proxyd-session.h"
#include "proxyd-spam.h"
#include "proxyd-tls.h"
#include "proxyd-tx.h"
#include "smtp-address.h"
#include "smtp-command.h"
#include "smtp-params.h"
#include "string-util.h"

/* Input is read in pieces of this size at most; a command line may be up to
 * MaxLineLength + CRLF, so the buffer grows to that if needed. */
#define IBUF_MIN 4096U          /* a small message in one read; freed again when idle */
#define IBUF_DATA 16384U
/* A client that does not read its replies stops being served at this much output. */
#define OBUF_HIGH (64U * 1024U)
/* Reads per session_advance() call, so one busy client cannot starve the others. */
#define READS_PER_ADVANCE 4U
#define READS_BLOCKED (READS_PER_ADVANCE + 1)  /* a read found nothing: no more this advance */

#define log_session_full_errno(s, level, error, ...)                                    \
        ({                                                                              \
                const Session *_s_ = (s);                                               \
                const char *_f_[] = { _s_->log_session, _s_->log_client, _s_->log_helo, NULL }; \
                log_full_errno_fields(level, error, _f_, __VA_ARGS__);                  \
        })
#define log_session(s, level, ...) (void) log_session_full_errno(s, level, 0, __VA_ARGS__)
#define log_session_errno(s, level, error, ...) log_session_full_errno(s, level, error, __VA_ARGS__)

static const char *const session_state_table[_SESSION_STATE_MAX] = {
        [SESSION_STATE_GREETING] = "greeting",
        [SESSION_STATE_COMMAND]  = "command",
        [SESSION_STATE_DATA]     = "data",
        [SESSION_STATE_STARTTLS] = "starttls",
        [SESSION_STATE_CLOSING]  = "closing",
};

const char* session_state_to_string(SessionState s) {
        if (s < 0 || s >= _SESSION_STATE_MAX)
                return NULL;
        return session_state_table[s];
}

static inline void* mfree(void *p) {
        free(p);
        return NULL;
}

#define IN_SET_READING(st) ((st) == SESSION_STATE_COMMAND || (st) == SESSION_STATE_DATA)

/* Reading a BDAT chunk (kept or discarded), as opposed to DATA content. */
static bool session_in_bdat(const Session *s) {
        return s->state == SESSION_STATE_DATA && !(s->tx && s->tx->state == TX_STATE_DATA);
}

static bool session_busy(const Session *s) {
        return s->flags & SESSION_FLAG_BACKEND_BUSY;
}

static void session_touch(Session *s) {
        s->last_activity = now(CLOCK_MONOTONIC);
}

/* ---- Output ---- */

static int session_write_raw(Session *s, const char *p, size_t n) {
        int r;

        if (s->ssl) {
                size_t written = 0;

                s->flags &= ~(SESSION_FLAG_SSL_WANT_READ | SESSION_FLAG_SSL_WANT_WRITE);
                r = SSL_write_ex(s->ssl, p, n, &written);
                if (r == 1)
                        return (int) MIN(written, (size_t) INT32_MAX);
                if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ)
                        s->flags |= SESSION_FLAG_SSL_WANT_READ;
                r = tls_ssl_error(s->ssl, r, "SSL_write");
                return r == 0 ? -ECONNRESET : r;
        }

        ssize_t k = send(s->fd, p, MIN(n, (size_t) INT32_MAX), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0)
                return errno == EINTR ? -EAGAIN : -errno;
        return (int) k;
}

static int session_append(Session *s, const char *p, size_t n) {
        if (s->obuf_end + n > s->obuf_size) {
                size_t pending = s->obuf_end - s->obuf_start, need = pending + n, size;
                char *b;

                if (s->obuf_start > 0 && need <= s->obuf_size) {
                        memmove(s->obuf, s->obuf + s->obuf_start, pending);
                } else {
                        size = MAX(need, (size_t) 512);
                        if (size < s->obuf_size * 2)
                                size = s->obuf_size * 2;
                        b = malloc(size);
                        if (!b)
                                return -ENOMEM;
                        if (pending > 0)
                                memcpy(b, s->obuf + s->obuf_start, pending);
                        free(s->obuf);
                        s->obuf = b;
                        s->obuf_size = size;
                }
                s->obuf_start = 0;
                s->obuf_end = pending;
        }
        memcpy(s->obuf + s->obuf_end, p, n);
        s->obuf_end += n;
        return 0;
}

static void session_reply(Session *s, const char *format, ...) _printf_(2, 3);
static void session_reply(Session *s, const char *format, ...) {
        char buf[1024];
        va_list ap;
        int n;

        va_start(ap, format);
        n = vsnprintf(buf, sizeof(buf) - 2, format, ap);
        va_end(ap);
        if (n < 0)
                return;
        n = MIN(n, (int) sizeof(buf) - 3);
        buf[n++] = '\r';
        buf[n++] = '\n';
        if (session_append(s, buf, n) < 0) {
                log_session(s, LOG_ERR, "Out of memory, closing session.");
                s->flags |= SESSION_FLAG_CLOSE;
        }
        log_session(s, LOG_DEBUG, "> %.*s", n - 2, buf);
}

/* The backend's reply, all lines, code and enhanced code as it sent them. */
static void session_reply_relay(Session *s, const SmtpReply *reply) {
        for (size_t i = 0; i < reply->n_lines; i++)
                session_reply(s, "%03u%c%s", reply->code, i + 1 < reply->n_lines ? '-' : ' ',
                              reply->lines[i]);
        if (reply->n_lines == 0)
                session_reply(s, "%03u", reply->code);
}

static void session_close(Session *s, const char *format, ...) _printf_(2, 3);
static void session_close(Session *s, const char *format, ...) {
        if (format && s->state != SESSION_STATE_STARTTLS) {
                char buf[512];
                va_list ap;

                va_start(ap, format);
                (void) vsnprintf(buf, sizeof(buf), format, ap);
                va_end(ap);
                session_reply(s, "%s", buf);
        }
        s->flags |= SESSION_FLAG_CLOSE | SESSION_FLAG_FLUSH;
        s->state = SESSION_STATE_CLOSING;
}

/* Every local 5xx counts against MaxBadCommands; the one that reaches it is answered
 * with 421 instead and ends the session. */
static void session_reply_bad(Session *s, const char *format, ...) _printf_(2, 3);
static void session_reply_bad(Session *s, const char *format, ...) {
        char buf[512];
        va_list ap;

        s->manager->stats.protocol_errors++;
        s->n_bad++;
        if (s->n_bad >= s->config->max_bad_commands) {
                log_session(s, LOG_NOTICE, "Too many bad commands (%u), closing session.", s->n_bad);
                session_close(s, "421 4.7.0 %s Too many errors", s->config->hostname);
                return;
        }

        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        session_reply(s, "%s", buf);
}

static void session_backend_failed(Session *s, int error, const char *what) {
        s->manager->stats.backend_failures++;
        s->flags |= SESSION_FLAG_BACKEND_DEAD;
        log_session_errno(s, LOG_WARNING, error, "Backend failed during %s: %m", what);
        s->upstream = upstream_free(s->upstream);
}

/* The session is done with its backend connection: hand it to the next session when
 * nothing of this one is left on it (no transaction, no call under way), else close it. */
static void session_release_upstream(Session *s) {
        if (!s->upstream)
                return;
        if (session_busy(s) || (s->flags & SESSION_FLAG_BACKEND_DEAD))
                s->upstream = upstream_free(s->upstream);
        else if (!s->tx || s->tx->mail_line)   /* a MAIL held back never reached it */
                manager_pool_put(s->manager, s->config, TAKE_PTR(s->upstream));
        else
                s->upstream = upstream_quit_and_free(s->upstream);
}

/* ---- The transaction's end ---- */

static void session_tx_end(Session *s, unsigned status, uint64_t size) {
        Transaction *t = s->tx;

        if (!t)
                return;
        log_session(s, LOG_INFO, "from=<%s> nrcpt=%zu size=%" PRIu64 " status=%u%s",
                    strempty(t->mail_from), t->n_rcpts + t->n_report_rcpts, size, status,
                    t->report_class >= 0 ? " report" : "");
        s->tx = transaction_free(s->tx);
}

static void on_reset_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        session_touch(s);
        if (error < 0)
                session_backend_failed(s, error, "RSET");
        session_advance(s);
}

/* Ends the backend's side of a transaction the client's side gave up on. */
static void session_backend_reset(Session *s) {
        int r;

        if (!s->upstream)
                return;
        r = upstream_command(s->upstream, "RSET", s->config->upstream.mail_timeout, on_reset_reply, s);
        if (r < 0)
                session_backend_failed(s, r, "RSET");
        else
                s->flags |= SESSION_FLAG_BACKEND_BUSY;
}

static void on_message_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;
        Transaction *t = s->tx;
        ProxyStats *st = &s->manager->stats;
        uint64_t size = t ? t->scanner.size : 0;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        s->flags |= SESSION_FLAG_FLUSH;
        session_touch(s);
        s->state = SESSION_STATE_COMMAND;

        if (error < 0) {
                session_backend_failed(s, error, "message transfer");
                session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
                st->messages_tempfailed++;
                session_tx_end(s, 451, size);
        } else {
                session_reply_relay(s, reply);
                if (reply->code >= 200 && reply->code < 300) {
                        st->messages_relayed++;
                        st->bytes_relayed += size;
                        s->messages++;
                } else if (reply->code >= 500)
                        st->messages_rejected++;
                else
                        st->messages_tempfailed++;
                session_tx_end(s, reply->code, size);
        }
        session_advance(s);
}

static int session_connect(Session *s, UpstreamHandler handler);

/* After DATA was sent ahead the backend waits for message content: the only way to
 * give up on it is to drop the connection (a lone "." would deliver an empty
 * message). The session goes on with a fresh connection, introduced as before. */
static void on_renew_hello(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        if (error < 0 || !smtp_reply_is_positive(reply))
                session_backend_failed(s, error < 0 ? error : -EPROTO, "reconnection");
        session_advance(s);
}

static void on_renew_greeting(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;
        int r;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        if (error >= 0 && reply->code == 220 && s->helo) {
                r = upstream_hello(u, s->helo, s->esmtp, !!s->ssl, on_renew_hello, s);
                if (r >= 0) {
                        s->flags |= SESSION_FLAG_BACKEND_BUSY;
                        return;
                }
                error = r;
        }
        session_backend_failed(s, error < 0 ? error : -ECONNREFUSED, "reconnection");
        session_advance(s);
}

static void session_backend_renew(Session *s) {
        int r;

        s->upstream = upstream_free(s->upstream);
        r = session_connect(s, on_renew_greeting);
        if (r < 0)
                session_backend_failed(s, r, "reconnection");
}

/* The message is not relayed (bad content, internal error): end the backend's side of
 * the transaction too. */
static void session_tx_end_backend(Session *s, unsigned status, uint64_t size) {
        BackendData d = s->tx ? s->tx->backend_data : BACKEND_DATA_NONE;

        session_tx_end(s, status, size);
        if (IN_SET(d, BACKEND_DATA_PENDING, BACKEND_DATA_READY))
                session_backend_renew(s);
        else if (d != BACKEND_DATA_FAILED)
                session_backend_reset(s);
}

static void session_send_message(Session *s, char *received_take);

static void on_data_early_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;
        Transaction *t = s->tx;

        assert(t);
        if (error < 0) {
                t->backend_data = BACKEND_DATA_FAILED;
                session_backend_failed(s, error, "DATA");
        } else if (reply->code == 354)
                t->backend_data = BACKEND_DATA_READY;
        else {
                /* Keep the answer for the end of the message. */
                smtp_reply_done(&t->data_refusal);
                if (smtp_reply_copy(reply, &t->data_refusal) < 0) {
                        /* Without its text, the client gets a 451 at the end. */
                        t->backend_data = BACKEND_DATA_FAILED;
                        session_backend_failed(s, -ENOMEM, "DATA");
                } else
                        t->backend_data = BACKEND_DATA_REFUSED;
        }

        if (!t->complete)
                return;         /* the client is still sending; session_finish_message() goes on */

        /* The message was complete before the backend answered: finish it now. */
        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        t->complete = false;
        session_send_message(s, TAKE_PTR(t->received));
        session_advance(s);
}

static AuthRequest session_auth_request(const Session *s, char *id_buf, size_t id_size);

/* A transaction ends here without reaching the backend: reply, count, end both sides. */
static void session_tx_refuse(Session *s, unsigned code, const char *reply) {
        Transaction *t = s->tx;

        session_reply(s, "%s", reply);
        if (code >= 500)
                s->manager->stats.messages_rejected++;
        else
                s->manager->stats.messages_tempfailed++;
        session_tx_end_backend(s, code, t->scanner.size);
}

static void session_tx_internal_error(Session *s, int error) {
        char buf[128];

        log_session_errno(s, LOG_ERR, error, "Cannot relay message: %m");
        (void) snprintf(buf, sizeof(buf), "451 4.3.0 Internal error (session %016" PRIx64 ")", s->id);
        session_tx_refuse(s, 451, buf);
}

/* The message body as relayed: without the Authentication-Results fields mailsec-authd
 * found forged (its copy), and with Spam=yes without any X-Spam-* field of the sender's.
 * Returns 0, or -EBADMSG when the header block does not parse. */
static int session_tx_clean_body(Session *s) {
        Transaction *t = s->tx;
        TxAuthAnswer *a = &t->auth_answer;
        const void *data = NULL;
        size_t size = 0;
        _cleanup_close_ int fd = -EBADF;
        uint64_t new_size = 0;
        int r;

        if (s->config->authentication && a->error >= 0 && a->fd >= 0) {
                safe_close(t->spool_fd);
                t->spool_fd = TAKE_FD(a->fd);
                t->scanner.size = a->size;
        }
        if (!s->config->spam)
                return 0;

        r = memfd_map_sealed(t->spool_fd, UINT64_MAX, &data, &size);
        if (r < 0)
                return r;
        r = message_strip_fields(data, size, s->config->max_line_length, header_field_is_spam, NULL, &fd, &new_size);
        if (size > 0)
                munmap((void*) data, size);
        if (r < 0)
                return r;
        if (r > 0) {
                log_session(s, LOG_NOTICE, "Removed X-Spam-* field(s) that came with the message.");
                safe_close(t->spool_fd);
                t->spool_fd = TAKE_FD(fd);
                t->scanner.size = new_size;
        }
        return 0;
}

/* Every end-of-message check has answered or failed: apply the verdicts. A permanent
 * verdict stands even when another check could not answer; a DMARC reject goes before a
 * spam reject, and both before a failed check's tempfail. */
static void session_checks_done(Session *s) {
        Transaction *t = s->tx;
        const TxAuthAnswer *a = &t->auth_answer;
        const TxSpamAnswer *sp = &t->spam_answer;
        const ProxyConfig *c = s->config;
        bool auth_ok = c->authentication && a->error >= 0, spam_ok = c->spam && sp->error >= 0;
        bool quarantine = false, dmarc_reject = false;
        _cleanup_free_ char *received = TAKE_PTR(t->received), *prefix = NULL, *spam_fields = NULL;
        char buf[256];
        int r;

        if (auth_ok) {
                if (streq_ptr(a->dmarc_disposition, "reject"))
                        dmarc_reject = c->dmarc_reject;
                else if (streq_ptr(a->dmarc_disposition, "quarantine")) {
                        if (c->dmarc_quarantine == DMARC_QUARANTINE_REJECT)
                                dmarc_reject = true;
                        else
                                quarantine = true;
                }
        }
        if (dmarc_reject) {
                log_session(s, LOG_NOTICE, "Message rejected by DMARC policy of %s (disposition %s).",
                            strna(a->dmarc_domain), a->dmarc_disposition);
                (void) snprintf(buf, sizeof(buf), "550 5.7.1 Message rejected by DMARC policy of %s",
                                a->dmarc_domain ?: "the From domain");
                session_tx_refuse(s, 550, buf);
                return;
        }
        if (spam_ok && spam_score_rejects(sp->score, c->spam_reject_score)) {
                log_session(s, LOG_NOTICE, "Message rejected as spam (score %.3f, SpamRejectScore=%.3f).",
                            sp->score, c->spam_reject_score);
                s->manager->stats.messages_rejected_as_spam++;
                session_tx_refuse(s, 550, "550 5.7.1 Message rejected as spam");
                return;
        }

        if (c->authentication && a->error < 0) {
                if (c->on_auth_failure == AUTH_FAILURE_TEMPFAIL) {
                        log_session_errno(s, LOG_WARNING, a->error, "Message authentication failed, deferring message: %m");
                        session_tx_refuse(s, 451, "451 4.3.5 Message authentication unavailable, try again later");
                        return;
                }
                log_session_errno(s, LOG_NOTICE, a->error,
                                  "Message authentication failed, relaying without Authentication-Results: %m");
        }
        if (c->spam && sp->error < 0) {
                if (c->on_spam_failure == SPAM_FAILURE_TEMPFAIL) {
                        log_session_errno(s, LOG_WARNING, sp->error, "Spam check failed, deferring message: %m");
                        session_tx_refuse(s, 451, "451 4.3.5 Spam check unavailable, try again later");
                        return;
                }
                log_session_errno(s, LOG_NOTICE, sp->error, "Spam check failed, relaying without X-Spam fields: %m");
        }

        if (spam_ok) {
                r = spam_fields_build(sp->score, sp->status, c->spam_reject_score, &spam_fields);
                if (r < 0) {
                        session_tx_internal_error(s, r);
                        return;
                }
                log_session(s, LOG_DEBUG, "Spam score %.3f (%s).", sp->score, spam_status_to_string(sp->status));
        }

        if (asprintf_safe(&prefix, "%s%s%s%s%s%s%s%s%s",
                          received,
                          auth_ok ? "Authentication-Results:" : "",
                          auth_ok ? a->authentication_results : "",
                          auth_ok ? "\r\n" : "",
                          auth_ok && a->received_spf ? "Received-SPF: " : "",
                          auth_ok ? strempty(a->received_spf) : "",
                          auth_ok && a->received_spf ? "\r\n" : "",
                          quarantine ? "X-Mailsec-Quarantine: dmarc\r\n" : "",
                          strempty(spam_fields)) < 0) {
                session_tx_internal_error(s, -ENOMEM);
                return;
        }

        r = session_tx_clean_body(s);
        if (r == -EBADMSG) {
                log_session(s, LOG_NOTICE, "Message refused: its header block does not parse.");
                session_tx_refuse(s, 554, "554 5.6.0 Message refused: malformed header");
                return;
        }
        if (r < 0) {
                session_tx_internal_error(s, r);
                return;
        }

        session_send_message(s, TAKE_PTR(prefix));
}

static void session_report_auth_done(Session *s);

/* One of the checks has answered: go on once all have. */
static void session_check_answered(Session *s, TxCheck check) {
        Transaction *t = s->tx;

        t->checks_pending &= ~check;
        if (t->checks_pending != 0)
                return;
        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        session_touch(s);
        if (t->report_class >= 0)
                session_report_auth_done(s);
        else
                session_checks_done(s);
        session_advance(s);
}

static void on_auth_verdict(Transaction *t, const AuthVerdict *v, int error, void *userdata) {
        Session *s = userdata;
        int r;

        assert(s->tx == t);
        r = transaction_keep_auth(t, v, error);
        if (r < 0)
                log_session_errno(s, LOG_ERR, r, "Cannot keep the authentication verdict: %m");
        session_check_answered(s, TX_CHECK_AUTH);
}

static void on_spam_verdict(Transaction *t, const SpamVerdict *v, int error, void *userdata) {
        Session *s = userdata;

        assert(s->tx == t);
        t->spam_answer = (TxSpamAnswer) {
                .error = error < 0 ? error : 0,
                .score = v ? v->score : 0,
                .status = v ? (int) v->status : -1,
        };
        session_check_answered(s, TX_CHECK_SPAM);
}

/* ---- Reports by mail ---- */

static void on_report_done(Transaction *t, ReportOutcome outcome, bool changed, int error, void *userdata) {
        Session *s = userdata;
        const char *class = report_class_to_string(t->report_class);
        char buf[256];

        assert(s->tx == t);
        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        s->flags |= SESSION_FLAG_FLUSH;
        session_touch(s);

        switch (outcome) {
        case REPORT_OUTCOME_ACCEPTED:
                log_session(s, LOG_INFO, "Report of %s by <%s> accepted%s.", class, t->mail_from,
                            changed ? "" : " (learned before)");
                (void) snprintf(buf, sizeof(buf), "250 2.0.0 Report accepted: %s as %s", 
                                changed ? "learned" : "already learned", class);
                session_reply(s, "%s", buf);
                session_tx_end_backend(s, 250, t->scanner.size);
                break;
        case REPORT_OUTCOME_NOT_ALLOWED:
                log_session(s, LOG_NOTICE, "Report of %s by <%s> refused: not an address of ReportDomains=.",
                            class, t->mail_from);
                session_tx_refuse(s, 550, "550 5.7.1 Reports are taken only from addresses of the organisation");
                break;
        case REPORT_OUTCOME_RATE_LIMITED:
                log_session(s, LOG_NOTICE, "Report of %s by <%s> refused: too many reports.", class, t->mail_from);
                session_tx_refuse(s, 451, "451 4.7.1 Too many reports, try again later");
                break;
        case REPORT_OUTCOME_BAD_MESSAGE:
                log_session(s, LOG_NOTICE, "Report of %s by <%s> refused: the message cannot be learned.",
                            class, t->mail_from);
                session_tx_refuse(s, 554, "554 5.6.0 The reported message cannot be learned");
                break;
        default:
                log_session_errno(s, LOG_WARNING, error, "Report of %s by <%s> failed, deferring: %m",
                                  class, t->mail_from);
                session_tx_refuse(s, 451, "451 4.3.5 Spam filter unavailable, try again later");
        }
        session_advance(s);
}

/* mailsec-authd has answered for a report: it goes on to mailsec-spamd only when the
 * reporter's mail passes DMARC for its From domain and that is the envelope sender's. */
static void session_report_auth_done(Session *s) {
        Transaction *t = s->tx;
        const TxAuthAnswer *a = &t->auth_answer;
        const char *domain = mailbox_domain(t->mail_from);
        _cleanup_free_ char *reporter = NULL;
        int r;

        if (a->error < 0) {
                log_session_errno(s, LOG_WARNING, a->error, "Cannot authenticate a report, deferring it: %m");
                session_tx_refuse(s, 451, "451 4.3.5 Sender authentication unavailable, try again later");
                return;
        }
        if (!domain || !streq_ptr(a->dmarc_result, "pass") || !a->dmarc_domain ||
            !strcaseeq(a->dmarc_domain, domain)) {
                log_session(s, LOG_NOTICE, "Report by <%s> refused: dmarc=%s for %s.", t->mail_from,
                            strna(a->dmarc_result), strna(a->dmarc_domain));
                session_tx_refuse(s, 550, "550 5.7.1 Reports are taken only from senders whose domain passes DMARC");
                return;
        }

        if (asprintf_safe(&reporter, "mail:%s", t->mail_from) < 0) {
                session_tx_internal_error(s, -ENOMEM);
                return;
        }
        r = spam_report(s->manager->bus, t, &(ReportRequest) {
                                .fd = t->report_fd,
                                .class = t->report_class,
                                .reporter = reporter,
                                .domain = domain,
                                .timeout = s->config->spam_timeout,
                        }, on_report_done, s);
        if (r < 0) {
                log_session_errno(s, LOG_WARNING, r, "Cannot pass a report on, deferring it: %m");
                session_tx_refuse(s, 451, "451 4.3.5 Spam filter unavailable, try again later");
                return;
        }
        s->flags |= SESSION_FLAG_BACKEND_BUSY;
}

/* A report's content is complete and sealed: find the message reported, then ask
 * mailsec-authd about the reporter. */
static void session_report_start(Session *s) {
        Transaction *t = s->tx;
        _cleanup_free_ char *msg = NULL;
        _cleanup_close_ int fd = -EBADF;
        const void *data = NULL;
        size_t size = 0, n = 0;
        ReportSource source = _REPORT_SOURCE_INVALID;
        char id[17];
        AuthRequest req;
        int r;

        r = memfd_map_sealed(t->spool_fd, UINT64_MAX, &data, &size);
        if (r < 0) {
                session_tx_internal_error(s, r);
                return;
        }
        r = report_extract_message(data, size, &msg, &n, &source);
        if (size > 0)
                munmap((void*) data, size);
        if (r == -ENOMSG) {
                log_session(s, LOG_NOTICE, "Report by <%s> refused: no attached message.", t->mail_from);
                session_tx_refuse(s, 554, "554 5.6.0 No reported message found: attach it as message/rfc822");
                return;
        }
        if (r < 0) {
                session_tx_internal_error(s, r);
                return;
        }
        log_session(s, LOG_DEBUG, "Report of %s: %zu bytes from the %s.", report_class_to_string(t->report_class),
                    n, report_source_to_string(source));

        fd = memfd_new_spool("mailsec-report");
        if (fd < 0) {
                session_tx_internal_error(s, fd);
                return;
        }
        r = memfd_append(fd, msg, n);
        if (r >= 0)
                r = memfd_seal(fd);
        if (r < 0) {
                session_tx_internal_error(s, r);
                return;
        }
        safe_close(t->report_fd);
        t->report_fd = TAKE_FD(fd);

        req = session_auth_request(s, id, sizeof(id));
        r = auth_verify_message(s->manager->bus, t, &req, on_auth_verdict, s);
        if (r < 0) {
                log_session_errno(s, LOG_WARNING, r, "Cannot authenticate a report, deferring it: %m");
                session_tx_refuse(s, 451, "451 4.3.5 Sender authentication unavailable, try again later");
                return;
        }
        t->checks_pending = TX_CHECK_AUTH;
        s->flags |= SESSION_FLAG_BACKEND_BUSY;
}

/* RCPT to an address of ReportAddresses= (class >= 0), or any RCPT in a transaction that
 * has one: answered here. Report recipients take a transaction of their own, one class
 * at a time; what does not fit gets 452 4.5.3, and the client sends it again in the next
 * transaction (RFC 5321 §3.3). */
static void session_rcpt_report(Session *s, ReportClass class) {
        Transaction *t = s->tx;

        if (class < 0 || t->n_rcpts > 0) {
                session_reply(s, "452 4.5.3 Report addresses take a mail transaction of their own");
                return;
        }
        if (t->report_class >= 0 && t->report_class != class) {
                session_reply(s, "452 4.5.3 Spam and ham reports take separate mail transactions");
                return;
        }
        t->report_class = class;
        t->n_report_rcpts++;
        t->n_rcpt_relayed++;
        session_reply(s, "250 2.1.5 Ok, %s report", report_class_to_string(class));
}

/* The client's content is complete (final dot, or BDAT LAST). */
static void session_finish_message(Session *s) {
        Transaction *t = s->tx;
        const char *bad;
        _cleanup_free_ char *received = NULL;
        int r;

        assert(t);
        s->state = SESSION_STATE_COMMAND;
        s->flags |= SESSION_FLAG_FLUSH;

        bad = data_scan_flags_to_reply(t->scanner.flags);
        if (bad) {
                log_session(s, LOG_NOTICE, "Message refused: %.*s", (int) strlen(bad) - 2, bad);
                (void) session_append(s, bad, strlen(bad));
                s->manager->stats.messages_rejected++;
                s->manager->stats.protocol_errors++;
                session_tx_end_backend(s, (unsigned) atoi(bad), t->scanner.size);
                return;
        }

        r = memfd_seal(t->spool_fd);
        if (r < 0)
                goto internal;

        if (t->report_class >= 0) {
                session_report_start(s);
                return;
        }

        r = received_field_build(&(ReceivedInfo) {
                        .helo = s->helo,
                        .client_ip = s->client_ip,
                        .hostname = s->config->hostname,
                        .protocol = received_protocol(s->esmtp, !!s->tls, t->smtputf8),
                        .tls = s->tls,
                        .session_id = s->id,
                        .tx_number = t->number,
                        .rcpt = t->n_rcpts == 1 ? t->rcpts[0] : NULL,
                        .when = now(CLOCK_REALTIME),
                }, &received);
        if (r < 0)
                goto internal;

        if ((s->config->authentication || s->config->spam) &&
            !IN_SET(t->backend_data, BACKEND_DATA_REFUSED, BACKEND_DATA_FAILED)) {
                /* Both checks run at once; the session waits for them: no further command
                 * is taken meanwhile. A call that cannot be made counts as its failure. */
                free(t->received);
                t->received = TAKE_PTR(received);
                t->checks_pending = 0;

                if (s->config->authentication) {
                        char id[17];
                        AuthRequest req = session_auth_request(s, id, sizeof(id));

                        r = auth_verify_message(s->manager->bus, t, &req, on_auth_verdict, s);
                        if (r >= 0)
                                t->checks_pending |= TX_CHECK_AUTH;
                        else
                                (void) transaction_keep_auth(t, NULL, r);
                }
                if (s->config->spam) {
                        r = spam_classify(s->manager->bus, t, &(SpamRequest) {
                                                  .client_ip = s->client_ip,
                                                  .domain = transaction_rcpt_domain(t),
                                                  .autolearn = s->config->spam_autolearn,
                                                  .timeout = s->config->spam_timeout,
                                          }, on_spam_verdict, s);
                        if (r >= 0)
                                t->checks_pending |= TX_CHECK_SPAM;
                        else
                                t->spam_answer = (TxSpamAnswer) { .error = r, .status = -1 };
                }

                if (t->checks_pending != 0) {
                        s->flags |= SESSION_FLAG_BACKEND_BUSY;
                        return;
                }
                session_checks_done(s);
                return;
        }

        session_send_message(s, TAKE_PTR(received));
        return;

internal:
        session_tx_internal_error(s, r);
}

/* The message is complete, sealed and good: relay it, or wait for the 354 of a DATA
 * sent ahead. Takes received (our Received: field). */
static void session_send_message(Session *s, char *received_take) {
        _cleanup_free_ char *received = received_take;
        Transaction *t = s->tx;
        int r;

        switch (t->backend_data) {
        case BACKEND_DATA_PENDING:
                /* The 354 is still on its way: on_data_early_reply() comes back here. */
                t->complete = true;
                t->state = TX_STATE_RELAYING;
                free(t->received);
                t->received = TAKE_PTR(received);
                s->flags |= SESSION_FLAG_BACKEND_BUSY;
                return;
        case BACKEND_DATA_REFUSED:
                /* The backend's answer to DATA is the answer to the message. */
                session_reply_relay(s, &t->data_refusal);
                if (t->data_refusal.code >= 500)
                        s->manager->stats.messages_rejected++;
                else
                        s->manager->stats.messages_tempfailed++;
                session_tx_end(s, t->data_refusal.code, t->scanner.size);
                return;
        case BACKEND_DATA_FAILED:
                r = -ECONNRESET;
                goto backend;
        default:
                break;
        }

        if (!s->upstream) {
                r = -ENOTCONN;
                goto backend;
        }
        r = upstream_send_message(s->upstream, received, strlen(received), t->spool_fd, t->scanner.size,
                                  on_message_reply, s);
        if (r < 0)
                goto backend;
        t->state = TX_STATE_RELAYING;
        s->flags |= SESSION_FLAG_BACKEND_BUSY;
        return;

backend:
        if (s->upstream)
                session_backend_failed(s, r, "message transfer");
        session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
        s->manager->stats.messages_tempfailed++;
        session_tx_end(s, 451, t->scanner.size);
}

/* ---- Commands ---- */

typedef struct CommandArgs {
        SmtpEnvelopeArg env;
        bool smtputf8;
        bool body_8bit;
        uint64_t size;
        bool last;
} CommandArgs;

static void command_args_done(CommandArgs *a) {
        smtp_envelope_arg_done(&a->env);
}

/* check_*: state and syntax only, no side effects; returns a reply (5xx counted as bad)
 * or NULL. proceed_*: the action. */
typedef const char* (*CheckFunc)(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size);
typedef void (*ProceedFunc)(Session *s, const SmtpCommand *c, CommandArgs *a);

static const char* check_hello(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size) {
        if (c->arg_len == 0 || c->arg_len > 255)
                return "501 5.5.4 Syntax: EHLO hostname";
        for (size_t i = 0; i < c->arg_len; i++)
                if ((unsigned char) c->arg[i] <= ' ' || (unsigned char) c->arg[i] >= 0x7f)
                        return "501 5.5.4 Syntax: EHLO hostname";
        return NULL;
}

static int session_connect(Session *s, UpstreamHandler handler) {
        int r;

        r = upstream_new(s->manager->event, &s->config->upstream,
                         &(UpstreamClientInfo) {
                                 .client = (const struct sockaddr*) &s->peer,
                                 .client_len = s->peer_len,
                                 .local = (const struct sockaddr*) &s->local,
                                 .local_len = s->local_len,
                         }, handler, s, &s->upstream);
        if (r < 0)
                return r;
        s->flags |= SESSION_FLAG_BACKEND_BUSY;
        return 0;
}

static void on_hello_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata);

static void on_retry_greeting(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;
        int r;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        if (error >= 0 && reply->code == 220) {
                r = upstream_hello(u, s->helo, s->esmtp, !!s->ssl, on_hello_reply, s);
                if (r >= 0) {
                        s->flags |= SESSION_FLAG_BACKEND_BUSY;
                        return;
                }
                error = r;
        }
        session_backend_failed(s, error < 0 ? error : -ECONNREFUSED, "EHLO");
        session_close(s, "421 4.4.1 %s Backend mail server not available, try again later",
                      s->config->hostname);
        session_advance(s);
}

/* A parked backend connection may have been closed meanwhile (the backend's idle
 * timeout, a restart) without our noticing yet: the client must not pay for it, so a
 * fresh connection takes its place, once. Returns 0 when the retry is under way. */
static int session_retry_fresh_backend(Session *s, int error) {
        if (!(s->flags & SESSION_FLAG_UPSTREAM_REUSED))
                return error;
        s->flags &= ~SESSION_FLAG_UPSTREAM_REUSED;
        log_session_errno(s, LOG_DEBUG, error, "Reused backend connection failed (%m), connecting afresh.");
        s->upstream = upstream_free(s->upstream);
        return session_connect(s, on_retry_greeting);
}

/* The backend accepted the client's name: answer EHLO with the capabilities we offer
 * on top of the backend's, or HELO. */
static void session_hello_accepted(Session *s, Upstream *u) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (!s->esmtp) {
                s->extensions = 0;
                s->size_limit = s->config->max_message_size;
                session_reply(s, "250 %s", s->config->hostname);
                return;
        }

        r = ehlo_reply_build(s->config->hostname, upstream_capabilities(u), s->config->max_message_size,
                             s->config->server_ctx && s->config->starttls && !s->ssl,
                             &text, &s->size_limit, &s->extensions);
        if (r < 0) {
                log_session_errno(s, LOG_ERR, r, "Cannot build EHLO reply: %m");
                session_close(s, "421 4.3.0 %s Internal error (session %016" PRIx64 ")",
                              s->config->hostname, s->id);
                return;
        }
        (void) session_append(s, text, strlen(text));
        log_session(s, LOG_DEBUG, "> EHLO reply (%zu bytes)", strlen(text));
}

static void on_hello_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        s->flags |= SESSION_FLAG_FLUSH;
        session_touch(s);

        if (error < 0 && session_retry_fresh_backend(s, error) >= 0)
                return;
        s->flags &= ~SESSION_FLAG_UPSTREAM_REUSED;

        if (error < 0) {
                session_backend_failed(s, error, "EHLO");
                session_close(s, "421 4.4.1 %s Backend mail server not available, try again later",
                              s->config->hostname);
                goto finish;
        }

        if (!smtp_reply_is_positive(reply)) {
                /* The backend refuses the name: its answer is the answer. */
                s->helo = mfree(s->helo);
                s->log_helo = mfree(s->log_helo);
                session_reply_relay(s, reply);
                goto finish;
        }

        session_hello_accepted(s, u);

finish:
        session_advance(s);
}

static void proceed_hello(Session *s, const SmtpCommand *c, CommandArgs *a) {
        int r;

        /* RFC 5321 §4.1.4: EHLO/HELO resets the transaction. */
        s->tx = transaction_free(s->tx);
        s->esmtp = c->verb == SMTP_VERB_EHLO;
        free(s->helo);
        s->helo = strndup(c->arg, c->arg_len);
        free(s->log_helo);
        s->log_helo = NULL;
        if (!s->helo || asprintf_safe(&s->log_helo, "MAILSEC_HELO=%s", s->helo) < 0) {
                session_close(s, "421 4.3.0 %s Internal error (session %016" PRIx64 ")",
                              s->config->hostname, s->id);
                return;
        }

        if ((s->flags & SESSION_FLAG_UPSTREAM_REUSED) && upstream_introduced_as(s->upstream, s->helo)) {
                /* The first EHLO on a connection handed on (without a transaction) by a
                 * session whose client said the same name: the backend knows it already. */
                s->flags &= ~SESSION_FLAG_UPSTREAM_REUSED;
                s->flags |= SESSION_FLAG_FLUSH;
                session_hello_accepted(s, s->upstream);
                return;
        }

        r = upstream_hello(s->upstream, s->helo, s->esmtp, !!s->ssl, on_hello_reply, s);
        if (r < 0 && session_retry_fresh_backend(s, r) >= 0)
                return;
        if (r < 0) {
                session_backend_failed(s, r, "EHLO");
                session_close(s, "421 4.4.1 %s Backend mail server not available, try again later",
                              s->config->hostname);
                return;
        }
        s->flags |= SESSION_FLAG_BACKEND_BUSY;
}

/* MAIL FROM:/RCPT TO: syntax errors: a bad path is 553 5.1.3 (RFC 3463 "bad destination
 * mailbox address syntax"), bad parameters 501 5.5.4. */
static const char* envelope_error(const SmtpCommand *c, bool is_mail, SmtpPathFlags flags, int r) {
        const char *p = c->arg;
        size_t n = c->arg_len, k = is_mail ? STRLEN("FROM:") : STRLEN("TO:");
        _cleanup_(smtp_path_done) SmtpPath path = SMTP_PATH_NULL;
        size_t consumed;

        if (r == -EILSEQ)
                return "553 5.6.7 Non-ASCII address needs SMTPUTF8";
        if (n < k || strncasecmp(p, is_mail ? "FROM:" : "TO:", k) != 0)
                return is_mail ? "501 5.5.4 Syntax: MAIL FROM:<address>" : "501 5.5.4 Syntax: RCPT TO:<address>";
        if (n == k || p[k] != '<' ||
            smtp_path_parse(p + k, n - k, flags | SMTP_PATH_UTF8, &path, &consumed) < 0)
                return is_mail ? "553 5.1.3 Bad sender address syntax" : "553 5.1.3 Bad recipient address syntax";
        return "501 5.5.4 Syntax error in parameters";
}

static const char* check_params(Session *s, const SmtpParams *params, bool is_mail, CommandArgs *a) {
        for (size_t i = 0; i < params->n_params; i++) {
                const SmtpParam *p = params->params + i;

                if (is_mail && strcaseeq(p->keyword, "SIZE")) {
                        if (!p->value || smtp_param_parse_size(p->value, &a->size) < 0)
                                return "501 5.5.4 Invalid SIZE parameter";
                        if (a->size > s->size_limit)
                                return "552 5.3.4 Message size exceeds fixed maximum message size";
                } else if (is_mail && strcaseeq(p->keyword, "BODY")) {
                        SmtpBody b = p->value ? smtp_body_from_string(p->value) : _SMTP_BODY_INVALID;

                        if (b < 0)
                                return "501 5.5.4 Invalid BODY parameter";
                        if (b == SMTP_BODY_BINARYMIME)
                                return "555 5.5.4 BODY=BINARYMIME not supported";
                        if (b == SMTP_BODY_8BITMIME && !(s->extensions & SMTP_EXT_8BITMIME))
                                return "555 5.5.4 BODY=8BITMIME not supported";
                        a->body_8bit = b == SMTP_BODY_8BITMIME;
                } else if (is_mail && strcaseeq(p->keyword, "SMTPUTF8")) {
                        if (!(s->extensions & SMTP_EXT_SMTPUTF8))
                                return "555 5.5.4 SMTPUTF8 not supported";
                        if (p->value)
                                return "501 5.5.4 SMTPUTF8 takes no value";
                        a->smtputf8 = true;
                } else if (is_mail && (strcaseeq(p->keyword, "RET") || strcaseeq(p->keyword, "ENVID"))) {
                        if (!(s->extensions & SMTP_EXT_DSN))
                                return "555 5.5.4 DSN not supported";
                        if (!p->value ||
                            (strcaseeq(p->keyword, "RET") ? !smtp_ret_valid(p->value) : !smtp_xtext_valid(p->value)))
                                return "501 5.5.4 Invalid DSN parameter";
                } else if (!is_mail && (strcaseeq(p->keyword, "NOTIFY") || strcaseeq(p->keyword, "ORCPT"))) {
                        if (!(s->extensions & SMTP_EXT_DSN))
                                return "555 5.5.4 DSN not supported";
                        if (!p->value ||
                            (strcaseeq(p->keyword, "NOTIFY") ? !smtp_notify_valid(p->value) : !smtp_orcpt_valid(p->value)))
                                return "501 5.5.4 Invalid DSN parameter";
                } else
                        return "555 5.5.4 Unsupported parameter";
        }
        return NULL;
}

static const char* check_mail(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size) {
        SmtpPathFlags flags = SMTP_PATH_ALLOW_NULL;
        int r;

        if (!s->helo)
                return "503 5.5.1 Send HELO/EHLO first";
        if (s->tx)
                return "503 5.5.1 Nested MAIL command";

        r = smtp_envelope_arg_parse(c->arg, c->arg_len, /* is_mail= */ true, flags, &a->env);
        if (r == -ENOMEM)
                return "451 4.3.0 Out of memory";
        if (r < 0)
                return envelope_error(c, true, flags, r);
        return check_params(s, &a->env.params, true, a);
}

static int envelope_line(const char *prefix, const SmtpEnvelopeArg *env, char **ret) {
        _cleanup_free_ char *l = NULL;

        if (asprintf_safe(&l, "%s<%s>", prefix, env->path.mailbox) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < env->params.n_params; i++) {
                const SmtpParam *p = env->params.params + i;
                char *n;

                if (asprintf_safe(&n, "%s %s%s%s", l, p->keyword, p->value ? "=" : "", strempty(p->value)) < 0)
                        return -ENOMEM;
                free(l);
                l = n;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static AuthRequest session_auth_request(const Session *s, char *id_buf, size_t id_size) {
        (void) snprintf(id_buf, id_size, "%016" PRIx64, s->id);
        return (AuthRequest) {
                .client_ip = s->client_ip,
                .helo = s->helo,
                .session = id_buf,
                .max_line = s->config->max_line_length,
                .timeout = s->config->auth_timeout,
        };
}

/* MAIL is accepted: SPF is evaluated while the client sends recipients and data. A failure
 * here only means that VerifyMessage evaluates SPF itself (and says so if it cannot). */
static void session_check_spf(Session *s) {
        char id[17];
        AuthRequest req;
        int r;

        if (!s->config->authentication)
                return;
        req = session_auth_request(s, id, sizeof(id));
        r = auth_check_spf(s->manager->bus, s->tx, &req);
        if (r < 0)
                log_session_errno(s, LOG_DEBUG, r, "Cannot ask for SPF: %m");
}

static void on_mail_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        session_touch(s);

        if (error < 0) {
                session_backend_failed(s, error, "MAIL");
                session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
                s->tx = transaction_free(s->tx);
        } else {
                session_reply_relay(s, reply);
                if (s->tx && smtp_reply_is_positive(reply)) {
                        s->tx->state = TX_STATE_RCPT;
                        session_check_spf(s);
                } else
                        s->tx = transaction_free(s->tx);
        }
        session_advance(s);
}

static void proceed_mail(Session *s, const SmtpCommand *c, CommandArgs *a) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        _cleanup_free_ char *line = NULL;
        int r;

        r = transaction_new(++s->n_tx, &t);
        if (r >= 0)
                r = envelope_line("MAIL FROM:", &a->env, &line);
        if (r >= 0) {
                t->mail_from = strdup(a->env.path.mailbox);
                if (!t->mail_from)
                        r = -ENOMEM;
        }
        if (r < 0) {
                session_reply(s, "451 4.3.0 Internal error (session %016" PRIx64 ")", s->id);
                return;
        }
        t->smtputf8 = a->smtputf8;
        t->body_8bit = a->body_8bit;
        t->declared_size = a->size;

        if (upstream_has_capability(s->upstream, "PIPELINING", NULL) && !upstream_is_dead(s->upstream)) {
                /* MAIL waits for the first recipient and goes with it in one write: a
                 * round trip less per message. The backend's answer to MAIL then comes
                 * with the RCPT's (a refusal is the answer to that RCPT, as with
                 * Postfix's smtpd_delay_reject); a transaction without recipients never
                 * reaches the backend at all. */
                t->mail_line = TAKE_PTR(line);
                t->state = TX_STATE_RCPT;
                s->tx = TAKE_PTR(t);
                session_reply(s, "250 2.1.0 Ok");
                session_check_spf(s);
                return;
        }

        r = upstream_command(s->upstream, line, s->config->upstream.mail_timeout, on_mail_reply, s);
        if (r < 0) {
                session_backend_failed(s, r, "MAIL");
                session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
                return;
        }
        s->tx = TAKE_PTR(t);
        s->flags |= SESSION_FLAG_BACKEND_BUSY;
}

static const char* check_rcpt(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size) {
        SmtpPathFlags flags = SMTP_PATH_ALLOW_POSTMASTER;
        int r;

        if (!s->tx || s->tx->state != TX_STATE_RCPT)
                return "503 5.5.1 Need MAIL command";
        if (s->tx->n_rcpt_relayed >= s->config->max_recipients)
                return "452 4.5.3 Too many recipients";
        if (s->tx->smtputf8)
                flags |= SMTP_PATH_UTF8;

        r = smtp_envelope_arg_parse(c->arg, c->arg_len, /* is_mail= */ false, flags, &a->env);
        if (r == -ENOMEM)
                return "451 4.3.0 Out of memory";
        if (r < 0)
                return envelope_error(c, false, flags, r);
        return check_params(s, &a->env.params, false, a);
}

static void on_rcpt_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;
        Transaction *t = s->tx;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        session_touch(s);

        if (error < 0) {
                session_backend_failed(s, error, "RCPT");
                session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
                s->tx = transaction_free(s->tx);
        } else if (upstream_reply_to_first(u)) {
                /* The MAIL sent along was refused: that is this recipient's answer, and
                 * the next RCPT brings the MAIL again. */
                session_reply_relay(s, reply);
        } else {
                if (t)
                        t->mail_line = mfree(t->mail_line);
                session_reply_relay(s, reply);
                if (t && t->pending_rcpt && smtp_reply_is_positive(reply)) {
                        if (transaction_add_rcpt(t, t->pending_rcpt) < 0) {
                                /* The backend has the recipient; we cannot follow: end it. */
                                log_session(s, LOG_ERR, "Out of memory, closing session.");
                                session_close(s, "421 4.3.0 %s Internal error (session %016" PRIx64 ")",
                                              s->config->hostname, s->id);
                        } else
                                s->manager->stats.recipients_relayed++;
                }
        }
        if (s->tx)
                s->tx->pending_rcpt = mfree(s->tx->pending_rcpt);
        session_advance(s);
}

static void proceed_rcpt(Session *s, const SmtpCommand *c, CommandArgs *a) {
        _cleanup_free_ char *line = NULL;
        ReportClass class;
        int r;

        class = report_addresses_lookup(s->config->report_addresses, a->env.path.mailbox);
        if (class >= 0 || s->tx->report_class >= 0) {
                session_rcpt_report(s, class);
                return;
        }

        r = envelope_line("RCPT TO:", &a->env, &line);
        if (r >= 0) {
                free(s->tx->pending_rcpt);
                s->tx->pending_rcpt = strdup(a->env.path.mailbox);
                if (!s->tx->pending_rcpt)
                        r = -ENOMEM;
        }
        if (r < 0) {
                session_reply(s, "451 4.3.0 Internal error (session %016" PRIx64 ")", s->id);
                return;
        }

        s->tx->n_rcpt_relayed++;
        if (s->tx->mail_line)
                r = upstream_command_pipelined(s->upstream, s->tx->mail_line, s->config->upstream.mail_timeout,
                                               line, s->config->upstream.rcpt_timeout, on_rcpt_reply, s);
        else
                r = upstream_command(s->upstream, line, s->config->upstream.rcpt_timeout, on_rcpt_reply, s);
        if (r < 0) {
                session_backend_failed(s, r, "RCPT");
                session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
                s->tx = transaction_free(s->tx);
                return;
        }
        s->flags |= SESSION_FLAG_BACKEND_BUSY;
}

static const char* check_data(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size) {
        if (!s->tx)
                return "503 5.5.1 Need MAIL command";
        if (s->tx->state == TX_STATE_BDAT)
                return "503 5.5.1 DATA not allowed after BDAT";
        if (s->tx->state != TX_STATE_RCPT)
                return "503 5.5.1 Bad sequence of commands";
        if (s->tx->n_rcpts == 0 && s->tx->n_report_rcpts == 0)
                return "554 5.5.1 No valid recipients";
        return NULL;
}

static void proceed_data(Session *s, const SmtpCommand *c, CommandArgs *a) {
        int r;

        /* The backend went away while the client was between commands: say so now
         * rather than after taking the whole message. (A report never goes there.) */
        if (s->tx->report_class < 0 && upstream_is_dead(s->upstream)) {
                session_backend_failed(s, -ECONNRESET, "DATA");
                session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
                session_tx_end(s, 451, 0);
                return;
        }

        r = transaction_start_data(s->tx, /* bdat= */ false, s->config->max_line_length,
                                   s->config->max_header_size, s->size_limit);
        if (r < 0) {
                log_session_errno(s, LOG_ERR, r, "Cannot create spool file: %m");
                session_reply(s, "451 4.3.0 Internal error (session %016" PRIx64 ")", s->id);
                session_tx_end(s, 451, 0);
                session_backend_reset(s);
                return;
        }
        session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
        s->state = SESSION_STATE_DATA;
        s->flags |= SESSION_FLAG_FLUSH;
        if (s->tx->report_class >= 0)
                return;

        /* DATA goes to the backend now, so that its 354 crosses the message on the way
         * in; the content follows only once it is complete and checked. (A backend
         * with CHUNKING gets BDAT at the end: its size is not known before.) */
        r = upstream_data_start(s->upstream, on_data_early_reply, s);
        if (r >= 0)
                s->tx->backend_data = BACKEND_DATA_PENDING;
        else if (r != -EOPNOTSUPP)
                log_session_errno(s, LOG_DEBUG, r, "Cannot send DATA ahead, sending it at the end: %m");
}

static const char* check_bdat(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size) {
        const char *sp = memchr(c->arg, ' ', c->arg_len);
        size_t k = sp ? (size_t) (sp - c->arg) : c->arg_len;
        char n[21];

        /* Only the syntax: the chunk must be read (and maybe discarded) whatever the state. */
        if (k == 0 || k >= sizeof(n))
                return "501 5.5.4 Syntax: BDAT size [LAST]";
        memcpy(n, c->arg, k);
        n[k] = 0;
        if (parse_uint64(n, &a->size) < 0)
                return "501 5.5.4 Syntax: BDAT size [LAST]";
        if (sp) {
                if (c->arg_len - k - 1 != 4 || strncasecmp(sp + 1, "LAST", 4) != 0)
                        return "501 5.5.4 Syntax: BDAT size [LAST]";
                a->last = true;
        }
        return NULL;
}

static void proceed_bdat(Session *s, const SmtpCommand *c, CommandArgs *a) {
        int r;

        s->bdat_remaining = a->size;
        s->bdat_size = a->size;
        s->bdat_last = a->last;
        s->bdat_error = NULL;
        s->flags &= ~SESSION_FLAG_BDAT_DISCARD;
        s->state = SESSION_STATE_DATA;

        if (!s->helo || !s->esmtp)
                s->bdat_error = "503 5.5.1 Send EHLO first";
        else if (!s->tx || (s->tx->state != TX_STATE_RCPT && s->tx->state != TX_STATE_BDAT))
                s->bdat_error = "503 5.5.1 Need MAIL command";
        else if (s->tx->n_rcpts == 0 && s->tx->n_report_rcpts == 0)
                s->bdat_error = "554 5.5.1 No valid recipients";
        else if (s->tx->state == TX_STATE_BDAT &&
                 (a->size > s->size_limit || s->tx->scanner.size + a->size > s->size_limit))
                s->bdat_error = "552 5.3.4 Message size exceeds fixed maximum message size";
        else if (s->tx->state == TX_STATE_RCPT && a->size > s->size_limit)
                s->bdat_error = "552 5.3.4 Message size exceeds fixed maximum message size";

        if (s->bdat_error) {
                s->flags |= SESSION_FLAG_BDAT_DISCARD;
                return;
        }

        if (s->tx->state == TX_STATE_RCPT) {
                r = transaction_start_data(s->tx, /* bdat= */ true, s->config->max_line_length,
                                           s->config->max_header_size, s->size_limit);
                if (r < 0) {
                        log_session_errno(s, LOG_ERR, r, "Cannot create spool file: %m");
                        s->bdat_error = "451 4.3.0 Internal error";
                        s->flags |= SESSION_FLAG_BDAT_DISCARD;
                        return;
                }
        }
        s->tx->bdat_chunks++;
}

/* A BDAT chunk has been read completely. */
static void session_bdat_done(Session *s) {
        s->state = SESSION_STATE_COMMAND;

        if (s->flags & SESSION_FLAG_BDAT_DISCARD) {
                const char *e = s->bdat_error;

                s->flags &= ~SESSION_FLAG_BDAT_DISCARD;
                if (startswith(e, "552")) {
                        /* The transaction cannot succeed any more. */
                        s->manager->stats.messages_rejected++;
                        session_tx_end(s, 552, s->tx ? s->tx->scanner.size : 0);
                        session_backend_reset(s);
                }
                if (e[0] == '5')
                        session_reply_bad(s, "%s", e);
                else
                        session_reply(s, "%s", e);
                return;
        }

        if (s->bdat_last) {
                if (data_scanner_finish_bdat(&s->tx->scanner) && !data_scanner_is_bad(&s->tx->scanner)) {
                        int r = memfd_append(s->tx->spool_fd, "\r\n", 2);
                        if (r < 0) {
                                log_session_errno(s, LOG_ERR, r, "Cannot write spool file: %m");
                                session_reply(s, "451 4.3.0 Internal error (session %016" PRIx64 ")", s->id);
                                session_tx_end(s, 451, s->tx->scanner.size);
                                session_backend_reset(s);
                                return;
                        }
                }
                session_finish_message(s);
                return;
        }

        session_reply(s, "250 2.0.0 %" PRIu64 " bytes received", s->bdat_size);
}

static void on_rset_reply(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        session_touch(s);
        if (error < 0) {
                session_backend_failed(s, error, "RSET");
                session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
        } else
                session_reply_relay(s, reply);
        session_advance(s);
}

static void proceed_rset(Session *s, const SmtpCommand *c, CommandArgs *a) {
        int r;

        s->tx = transaction_free(s->tx);
        r = upstream_command(s->upstream, "RSET", s->config->upstream.mail_timeout, on_rset_reply, s);
        if (r < 0) {
                session_backend_failed(s, r, "RSET");
                session_reply(s, "451 4.4.1 Backend mail server not available, try again later");
                return;
        }
        s->flags |= SESSION_FLAG_BACKEND_BUSY;
}

static void proceed_noop(Session *s, const SmtpCommand *c, CommandArgs *a) {
        session_reply(s, "250 2.0.0 Ok");
}

static void proceed_vrfy(Session *s, const SmtpCommand *c, CommandArgs *a) {
        session_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void proceed_help(Session *s, const SmtpCommand *c, CommandArgs *a) {
        session_reply(s, "214 2.0.0 mailsec SMTP relay, see RFC 5321 <https://www.rfc-editor.org/rfc/rfc5321>");
}

static void proceed_quit(Session *s, const SmtpCommand *c, CommandArgs *a) {
        session_close(s, "221 2.0.0 %s Bye", s->config->hostname);
        session_release_upstream(s);
}

static const char* check_expn(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size) {
        return "502 5.5.1 EXPN not available";
}

static const char* check_auth(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size) {
        return "502 5.5.1 AUTH not available on this relay";
}

static const char* check_starttls(Session *s, const SmtpCommand *c, CommandArgs *a, char *buf, size_t size) {
        if (!s->config->server_ctx || !s->config->starttls)
                return "502 5.5.1 STARTTLS not available";
        if (s->ssl)
                return "503 5.5.1 Already in TLS";
        if (s->tx)
                return "503 5.5.1 STARTTLS not allowed in a mail transaction";
        return NULL;
}

static void proceed_starttls(Session *s, const SmtpCommand *c, CommandArgs *a) {
        session_reply(s, "220 2.0.0 Ready to start TLS");
        /* Anything the client pipelined after STARTTLS was sent in plaintext and must never
         * be taken as a command of the encrypted session. */
        s->ibuf_start = s->ibuf_end = 0;
        s->flags |= SESSION_FLAG_STARTTLS | SESSION_FLAG_FLUSH;
}

typedef struct SmtpCommandHandler {
        SmtpVerb verb;
        CheckFunc check;
        ProceedFunc proceed;
        bool last_in_group;             /* RFC 2920 §3.1: replies are flushed after it */
} SmtpCommandHandler;

static const SmtpCommandHandler command_table[_SMTP_VERB_MAX] = {
        [SMTP_VERB_HELO]     = { SMTP_VERB_HELO,     check_hello,    proceed_hello,    true  },
        [SMTP_VERB_EHLO]     = { SMTP_VERB_EHLO,     check_hello,    proceed_hello,    true  },
        [SMTP_VERB_MAIL]     = { SMTP_VERB_MAIL,     check_mail,     proceed_mail,     false },
        [SMTP_VERB_RCPT]     = { SMTP_VERB_RCPT,     check_rcpt,     proceed_rcpt,     false },
        [SMTP_VERB_DATA]     = { SMTP_VERB_DATA,     check_data,     proceed_data,     true  },
        [SMTP_VERB_BDAT]     = { SMTP_VERB_BDAT,     check_bdat,     proceed_bdat,     false },
        [SMTP_VERB_RSET]     = { SMTP_VERB_RSET,     NULL,           proceed_rset,     false },
        [SMTP_VERB_NOOP]     = { SMTP_VERB_NOOP,     NULL,           proceed_noop,     true  },
        [SMTP_VERB_QUIT]     = { SMTP_VERB_QUIT,     NULL,           proceed_quit,     true  },
        [SMTP_VERB_VRFY]     = { SMTP_VERB_VRFY,     NULL,           proceed_vrfy,     true  },
        [SMTP_VERB_EXPN]     = { SMTP_VERB_EXPN,     check_expn,     NULL,             true  },
        [SMTP_VERB_HELP]     = { SMTP_VERB_HELP,     NULL,           proceed_help,     true  },
        [SMTP_VERB_STARTTLS] = { SMTP_VERB_STARTTLS, check_starttls, proceed_starttls, true  },
        [SMTP_VERB_AUTH]     = { SMTP_VERB_AUTH,     check_auth,     NULL,             true  },
};

static void session_handle_command(Session *s, const char *line, size_t len) {
        _cleanup_(command_args_done) CommandArgs args = { .env = SMTP_ENVELOPE_ARG_NULL };
        const SmtpCommandHandler *h;
        SmtpCommand c;
        const char *e;
        char buf[256];
        int r;

        if (memchr(line, 0, len)) {
                session_reply_bad(s, "500 5.5.2 NUL character not allowed");
                return;
        }

        log_session(s, LOG_DEBUG, "< %.*s", (int) MIN(len, (size_t) 512), line);

        r = smtp_command_parse(line, len, &c);
        if (r == -EOPNOTSUPP) {
                session_reply_bad(s, "500 5.5.2 Command unrecognized");
                return;
        }
        if (r == -EINVAL) {
                session_reply_bad(s, "501 5.5.4 Syntax error in parameters or arguments");
                return;
        }
        if (r < 0 || c.verb < 0 || c.verb >= _SMTP_VERB_MAX) {
                session_reply_bad(s, "500 5.5.2 Syntax error");
                return;
        }

        h = command_table + c.verb;

        if ((s->flags & SESSION_FLAG_BACKEND_DEAD) && c.verb != SMTP_VERB_QUIT) {
                session_close(s, "421 4.4.1 %s Backend mail server not available, closing connection",
                              s->config->hostname);
                return;
        }

        if (h->last_in_group)
                s->flags |= SESSION_FLAG_FLUSH;

        e = h->check ? h->check(s, &c, &args, buf, sizeof(buf)) : NULL;
        if (e) {
                if (e[0] == '5')
                        session_reply_bad(s, "%s", e);
                else
                        session_reply(s, "%s", e);
                return;
        }

        assert(h->proceed);
        h->proceed(s, &c, &args);
}

/* ---- Input ---- */

static size_t session_ibuf_cap(const Session *s) {
        return MAX((size_t) s->config->max_line_length + 2, (size_t) IBUF_DATA);
}

static void session_consume(Session *s, size_t n) {
        s->ibuf_start += n;
        assert(s->ibuf_start <= s->ibuf_end);
        if (s->ibuf_start == s->ibuf_end)
                s->ibuf_start = s->ibuf_end = 0;
}

/* One step of input processing. Returns 1 when something was consumed, 0 when more
 * input is needed. */
static int session_process_input(Session *s) {
        size_t n = s->ibuf_end - s->ibuf_start;
        char *p = n > 0 ? s->ibuf + s->ibuf_start : NULL;       /* ibuf is NULL while idle */
        int r;

        if (n == 0 && !(session_in_bdat(s) && s->bdat_remaining == 0))
                return 0;

        if (s->state == SESSION_STATE_DATA) {
                if (s->tx && s->tx->state == TX_STATE_DATA) {
                        size_t consumed;
                        bool end;

                        r = transaction_feed(s->tx, p, n, p, &consumed, &end);
                        session_consume(s, consumed);
                        if (r < 0) {
                                log_session_errno(s, LOG_ERR, r, "Cannot write spool file: %m");
                                session_close(s, "421 4.3.0 %s Internal error (session %016" PRIx64 ")",
                                              s->config->hostname, s->id);
                                return 1;
                        }
                        if (end)
                                session_finish_message(s);
                        return 1;
                }

                /* A BDAT chunk (kept or discarded). */
                size_t k = (size_t) MIN((uint64_t) n, s->bdat_remaining);
                if (k > 0) {
                        if (!(s->flags & SESSION_FLAG_BDAT_DISCARD)) {
                                size_t consumed;

                                r = transaction_feed(s->tx, p, k, p, &consumed, NULL);
                                if (r < 0) {
                                        log_session_errno(s, LOG_ERR, r, "Cannot write spool file: %m");
                                        session_close(s, "421 4.3.0 %s Internal error (session %016" PRIx64 ")",
                                                      s->config->hostname, s->id);
                                        return 1;
                                }
                                assert(consumed == k);
                        }
                        session_consume(s, k);
                        s->bdat_remaining -= k;
                }
                if (s->bdat_remaining == 0)
                        session_bdat_done(s);
                return 1;
        }

        if (s->flags & SESSION_FLAG_SKIP_LINE) {
                for (size_t i = 0; i + 1 < n; i++)
                        if (p[i] == '\r' && p[i + 1] == '\n') {
                                session_consume(s, i + 2);
                                s->flags &= ~SESSION_FLAG_SKIP_LINE;
                                return 1;
                        }
                /* Keep a trailing CR: its LF may be next. */
                if (p[n - 1] == '\r') {
                        if (n == 1)
                                return 0;
                        session_consume(s, n - 1);
                } else
                        session_consume(s, n);
                return 1;
        }

        for (size_t i = 0; i < n; i++) {
                if (p[i] == '\n') {
                        session_consume(s, i + 1);
                        session_reply_bad(s, "500 5.5.2 Bare <LF> not allowed");
                        return 1;
                }
                if (p[i] != '\r')
                        continue;
                if (i + 1 == n)
                        break;          /* need the next byte */
                if (p[i + 1] != '\n') {
                        session_consume(s, i + 1);
                        session_reply_bad(s, "500 5.5.2 Bare <CR> not allowed");
                        return 1;
                }
                if (i > s->config->max_line_length) {
                        session_consume(s, i + 2);
                        session_reply_bad(s, "500 5.5.2 Line too long");
                        return 1;
                }
                session_handle_command(s, p, i);
                /* The command may have discarded the buffer (STARTTLS). */
                if (s->ibuf_end > 0 && !(s->flags & SESSION_FLAG_STARTTLS))
                        session_consume(s, i + 2);
                return 1;
        }

        if (n >= (size_t) s->config->max_line_length + 2) {
                session_consume(s, n);
                s->flags |= SESSION_FLAG_SKIP_LINE;
                session_reply_bad(s, "500 5.5.2 Line too long");
                return 1;
        }
        return 0;
}

/* Returns > 0 bytes read, 0 on EOF, -EAGAIN, or another negative errno. */
static int session_read(Session *s) {
        size_t cap = session_ibuf_cap(s), want;
        int r;

        if (s->ibuf_start > 0 && s->ibuf_end == s->ibuf_size) {
                memmove(s->ibuf, s->ibuf + s->ibuf_start, s->ibuf_end - s->ibuf_start);
                s->ibuf_end -= s->ibuf_start;
                s->ibuf_start = 0;
        }
        if (s->ibuf_end == s->ibuf_size) {
                size_t size = s->ibuf_size == 0 ? IBUF_MIN : MIN(s->ibuf_size * 2, cap);
                char *b;

                if (size <= s->ibuf_size)
                        return -ENOBUFS;        /* cannot happen: full buffers are processed */
                b = realloc(s->ibuf, size);
                if (!b)
                        return -ENOMEM;
                s->ibuf = b;
                s->ibuf_size = size;
        }
        want = s->ibuf_size - s->ibuf_end;

        if (s->ssl) {
                size_t got = 0;

                s->flags &= ~(SESSION_FLAG_SSL_WANT_READ | SESSION_FLAG_SSL_WANT_WRITE);
                r = SSL_read_ex(s->ssl, s->ibuf + s->ibuf_end, want, &got);
                if (r != 1) {
                        if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_WRITE)
                                s->flags |= SESSION_FLAG_SSL_WANT_WRITE;
                        return tls_ssl_error(s->ssl, r, "SSL_read");
                }
                s->ibuf_end += got;
                return (int) got;
        }

        ssize_t k = recv(s->fd, s->ibuf + s->ibuf_end, want, MSG_DONTWAIT);
        if (k < 0)
                return errno == EINTR || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        s->ibuf_end += k;
        return (int) k;
}

static int session_flush(Session *s) {
        int progress = 0;

        while (s->obuf_start < s->obuf_end) {
                int r = session_write_raw(s, s->obuf + s->obuf_start, s->obuf_end - s->obuf_start);
                if (r == -EAGAIN)
                        break;
                if (r < 0)
                        return r;
                s->obuf_start += r;
                progress = 1;
        }
        if (s->obuf_start == s->obuf_end) {
                s->obuf_start = s->obuf_end = 0;
                s->flags &= ~SESSION_FLAG_FLUSH;
        }
        if (progress)
                session_touch(s);
        return progress;
}

static bool session_has_complete_line(const Session *s) {
        if (s->state != SESSION_STATE_COMMAND)
                return false;
        return memmem(s->ibuf + s->ibuf_start, s->ibuf_end - s->ibuf_start, "\n", 1) != NULL;
}

static int session_handshake(Session *s) {
        int r;

        s->flags &= ~(SESSION_FLAG_SSL_WANT_READ | SESSION_FLAG_SSL_WANT_WRITE);
        r = SSL_accept(s->ssl);
        if (r == 1) {
                s->tls = tls_describe(s->ssl);
                s->state = SESSION_STATE_COMMAND;
                s->manager->stats.tls_sessions++;
                /* RFC 3207 §4.2: forget everything learnt before; the client must EHLO again. */
                s->helo = mfree(s->helo);
                s->log_helo = mfree(s->log_helo);
                s->esmtp = false;
                s->extensions = 0;
                session_touch(s);
                log_session(s, LOG_DEBUG, "TLS established: %s", strna(s->tls));
                return 1;
        }

        switch (SSL_get_error(s->ssl, r)) {
        case SSL_ERROR_WANT_READ:
                s->flags |= SESSION_FLAG_SSL_WANT_READ;
                return 0;
        case SSL_ERROR_WANT_WRITE:
                s->flags |= SESSION_FLAG_SSL_WANT_WRITE;
                return 0;
        default:
                r = tls_ssl_error(s->ssl, r, "SSL_accept");
                log_session_errno(s, LOG_INFO, r ?: -ECONNRESET, "TLS handshake failed: %m");
                return -ECONNRESET;
        }
}

static int session_start_tls(Session *s) {
        s->flags &= ~SESSION_FLAG_STARTTLS;
        s->ibuf_start = s->ibuf_end = 0;

        s->ssl = SSL_new(s->config->server_ctx);
        if (!s->ssl)
                return tls_log_errors("SSL_new");
        if (SSL_set_fd(s->ssl, s->fd) != 1)
                return tls_log_errors("SSL_set_fd");
        SSL_set_accept_state(s->ssl);
        s->state = SESSION_STATE_STARTTLS;
        return 0;
}

/* One round of the strategy. Returns > 0 on progress, 0 when waiting for an event, < 0
 * when the session is over. */
static int session_step(Session *s, unsigned *reads) {
        int progress = 0, r;

        if (s->state == SESSION_STATE_STARTTLS)
                return session_handshake(s);

        /* Replies go out when nothing else is to be answered right away (RFC 2920). */
        if (s->obuf_end > s->obuf_start &&
            ((s->flags & (SESSION_FLAG_FLUSH | SESSION_FLAG_CLOSE | SESSION_FLAG_STARTTLS)) ||
             session_busy(s) || !session_has_complete_line(s) || s->obuf_end - s->obuf_start > OBUF_HIGH / 2)) {
                r = session_flush(s);
                if (r < 0) {
                        log_session_errno(s, LOG_DEBUG, r, "Cannot write to client: %m");
                        return r;
                }
                progress = r;
        }

        if (s->flags & SESSION_FLAG_CLOSE)
                return s->obuf_end > s->obuf_start ? progress : -ECONNRESET;

        if (s->flags & SESSION_FLAG_STARTTLS) {
                if (s->obuf_end > s->obuf_start)
                        return progress;
                r = session_start_tls(s);
                if (r < 0) {
                        log_session_errno(s, LOG_ERR, r, "Cannot start TLS: %m");
                        return r;
                }
                return 1;
        }

        if (session_busy(s) || s->state == SESSION_STATE_GREETING)
                return progress;

        if (s->obuf_end - s->obuf_start > OBUF_HIGH)
                return progress;

        r = session_process_input(s);
        if (r != 0) {
                session_touch(s);
                return r;
        }

        if (s->flags & SESSION_FLAG_EOF) {
                log_session(s, LOG_DEBUG, "Client closed the connection.");
                s->flags |= SESSION_FLAG_CLOSE;
                return 1;
        }

        if (*reads >= READS_PER_ADVANCE)
                return progress;
        (*reads)++;

        r = session_read(s);
        if (r == -EAGAIN) {
                /* nothing more will come within this advance: do not ask again */
                *reads = READS_BLOCKED;
                return progress;
        }
        if (r < 0) {
                log_session_errno(s, LOG_DEBUG, r, "Cannot read from client: %m");
                return r;
        }
        if (r == 0) {
                s->flags |= SESSION_FLAG_EOF;
                return 1;
        }
        session_touch(s);
        return 1;
}

static int on_client_io(sd_event_source *source, int fd, uint32_t revents, void *userdata);

static void session_update_io(Session *s) {
        uint32_t events = 0;
        bool client_turn;
        int r;

        if (s->state == SESSION_STATE_STARTTLS)
                events = (s->flags & SESSION_FLAG_SSL_WANT_WRITE) ? EPOLLOUT : EPOLLIN;
        else {
                if (s->obuf_end > s->obuf_start)
                        events |= EPOLLOUT;
                if (s->flags & SESSION_FLAG_SSL_WANT_READ)
                        events |= EPOLLIN;
                if (s->flags & SESSION_FLAG_SSL_WANT_WRITE)
                        events |= EPOLLOUT;
                if (!session_busy(s) && IN_SET_READING(s->state) &&
                    !(s->flags & (SESSION_FLAG_CLOSE | SESSION_FLAG_EOF | SESSION_FLAG_STARTTLS)) &&
                    s->obuf_end - s->obuf_start <= OBUF_HIGH)
                        events |= EPOLLIN;
        }

        if (!s->io_source) {
                /* Added to epoll only once there is something to wait for: no add and
                 * remove while the greeting waits for the backend. */
                if (events != 0) {
                        r = sd_event_add_io(s->manager->event, &s->io_source, s->fd, events, on_client_io, s);
                        if (r < 0)
                                log_session_errno(s, LOG_WARNING, r, "Cannot watch the client connection, ignoring: %m");
                        else {
                                (void) sd_event_source_set_description(s->io_source, "session-io");
                                s->io_events = events;
                        }
                }
        } else if (events != s->io_events) {
                if (events == 0)
                        r = sd_event_source_set_enabled(s->io_source, SD_EVENT_OFF);
                else {
                        r = sd_event_source_set_io_events(s->io_source, events);
                        if (r >= 0)
                                r = sd_event_source_set_enabled(s->io_source, SD_EVENT_ON);
                }
                if (r < 0)
                        log_session_errno(s, LOG_WARNING, r, "Cannot update I/O events, ignoring: %m");
                s->io_events = events;
        }

        /* The timeout runs while it is the client's turn: to send, or to read our replies. */
        client_turn = s->state != SESSION_STATE_GREETING && !session_busy(s);
        if (client_turn) {
                usec_t t = s->config->server_timeout;

                (void) sd_event_source_set_time(s->timer_source,
                                                t == USEC_INFINITY ? USEC_INFINITY : s->last_activity + t);
                (void) sd_event_source_set_enabled(s->timer_source,
                                                   t == USEC_INFINITY ? SD_EVENT_OFF : SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);

        /* Idle sessions keep no buffers. */
        if (s->ibuf_start == s->ibuf_end && s->ibuf) {
                s->ibuf = mfree(s->ibuf);
                s->ibuf_size = s->ibuf_start = s->ibuf_end = 0;
        }
        if (s->obuf_start == s->obuf_end && s->obuf) {
                s->obuf = mfree(s->obuf);
                s->obuf_size = s->obuf_start = s->obuf_end = 0;
        }
}

static int on_defer(sd_event_source *source, void *userdata) {
        Session *s = userdata;

        s->defer_source = sd_event_source_unref(s->defer_source);
        session_advance(s);
        return 0;
}

void session_advance(Session *s) {
        unsigned reads = 0;
        int r;

        if (s->flags & SESSION_FLAG_IN_ADVANCE) {
                s->flags |= SESSION_FLAG_AGAIN;
                return;
        }
        s->flags |= SESSION_FLAG_IN_ADVANCE;

        for (;;) {
                s->flags &= ~SESSION_FLAG_AGAIN;
                r = session_step(s, &reads);
                if (r < 0)
                        break;
                if (r == 0 && !(s->flags & SESSION_FLAG_AGAIN))
                        break;
        }
        s->flags &= ~SESSION_FLAG_IN_ADVANCE;

        if (r < 0) {
                session_free(s);
                return;
        }

        /* Stopped because of the read budget with decrypted bytes still inside OpenSSL:
         * epoll would not tell us, so come back on the next loop iteration. */
        if (reads == READS_PER_ADVANCE && s->ssl && SSL_pending(s->ssl) > 0 && !s->defer_source)
                (void) sd_event_add_defer(s->manager->event, &s->defer_source, on_defer, s);

        session_update_io(s);
}

/* ---- Life cycle ---- */

static void session_greet(Session *s) {
        s->state = SESSION_STATE_COMMAND;
        s->flags |= SESSION_FLAG_FLUSH;
        session_reply(s, "220 %s ESMTP mailsec", s->config->hostname);
}

static void on_greeting(Upstream *u, const SmtpReply *reply, int error, void *userdata) {
        Session *s = userdata;

        s->flags &= ~SESSION_FLAG_BACKEND_BUSY;
        session_touch(s);

        if (error < 0 || reply->code < 200 || reply->code >= 300) {
                s->manager->stats.backend_failures++;
                if (error < 0)
                        log_session_errno(s, LOG_WARNING, error, "Backend not available: %m");
                else
                        log_session(s, LOG_WARNING, "Backend refused the connection: %u %s", reply->code,
                                    reply->n_lines > 0 ? reply->lines[0] : "");
                s->flags |= SESSION_FLAG_BACKEND_DEAD;
                s->upstream = upstream_free(s->upstream);
                s->state = SESSION_STATE_COMMAND;
                session_close(s, "421 4.3.2 %s Service not available, try again later", s->config->hostname);
        } else
                session_greet(s);
        session_advance(s);
}

static int on_client_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Session *s = userdata;

        if ((revents & (EPOLLHUP | EPOLLERR)) && !(s->io_events & EPOLLIN)) {
                /* Nothing left to read and nowhere to write. */
                log_session(s, LOG_DEBUG, "Client connection lost.");
                session_free(s);
                return 0;
        }
        session_advance(s);
        return 0;
}

static int on_session_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        Session *s = userdata;

        if (s->flags & (SESSION_FLAG_TIMED_OUT | SESSION_FLAG_CLOSE) || s->state == SESSION_STATE_STARTTLS) {
                log_session(s, LOG_INFO, "Timeout, dropping connection.");
                session_free(s);
                return 0;
        }

        log_session(s, LOG_INFO, "Timeout waiting for the client, closing session.");
        s->flags |= SESSION_FLAG_TIMED_OUT;
        session_touch(s);
        if (s->tx) {
                session_tx_end(s, 421, 0);
                if (s->upstream)
                        s->upstream = upstream_free(s->upstream);
        }
        session_close(s, "421 4.4.2 %s Error: timeout exceeded", s->config->hostname);
        session_advance(s);
        return 0;
}

static int sockaddr_format(const struct sockaddr *sa, socklen_t len, char **ret_ip, char **ret_full) {
        char ip[INET6_ADDRSTRLEN] = "";
        unsigned port = 0;
        char *full;

        if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in*) sa;
                inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
                port = ntohs(in->sin_port);
                if (asprintf_safe(&full, "%s:%u", ip, port) < 0)
                        return -ENOMEM;
        } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6*) sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
                port = ntohs(in6->sin6_port);
                if (asprintf_safe(&full, "[%s]:%u", ip, port) < 0)
                        return -ENOMEM;
        } else {
                strcpy(ip, "local");
                full = strdup("local");
                if (!full)
                        return -ENOMEM;
        }
        *ret_ip = strdup(ip);
        if (!*ret_ip) {
                free(full);
                return -ENOMEM;
        }
        *ret_full = full;
        return 0;
}

int session_new(Manager *m, int fd, const struct sockaddr *peer, socklen_t peer_len, Session **ret) {
        _cleanup_close_ int fd_close = fd;
        Session *s;
        int r;

        assert(m);
        assert(fd >= 0);

        s = calloc(1, sizeof(Session));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->config = proxy_config_ref(m->config);
        s->fd = TAKE_FD(fd_close);
        s->state = SESSION_STATE_GREETING;
        s->started = now(CLOCK_REALTIME);
        s->size_limit = s->config->max_message_size;
        session_touch(s);

        /* Link first, so session_free() can undo everything below. */
        s->sessions_next = m->sessions;
        if (m->sessions)
                m->sessions->sessions_prev = s;
        m->sessions = s;
        m->n_sessions++;

        s->id = manager_next_session_id(m);

        if (peer && peer_len > 0 && peer_len <= sizeof(s->peer)) {
                memcpy(&s->peer, peer, peer_len);
                s->peer_len = peer_len;
        } else {
                s->peer_len = sizeof(s->peer);
                if (getpeername(s->fd, (struct sockaddr*) &s->peer, &s->peer_len) < 0)
                        s->peer_len = 0;
        }
        /* Where the client connected to matters only to XCLIENT (DESTADDR) and PROXY v2. */
        if (s->config->upstream.client_info != BACKEND_CLIENT_INFO_NONE) {
                s->local_len = sizeof(s->local);
                if (getsockname(s->fd, (struct sockaddr*) &s->local, &s->local_len) < 0)
                        s->local_len = 0;
        }

        r = sockaddr_format((const struct sockaddr*) &s->peer, s->peer_len, &s->client_ip, &s->client);
        if (r < 0)
                goto fail;
        r = manager_client_ref(m, s->client_ip);
        if (r < 0)
                goto fail;
        s->client_counted = true;
        if (asprintf_safe(&s->log_session, "MAILSEC_SESSION=%016" PRIx64, s->id) < 0 ||
            asprintf_safe(&s->log_client, "MAILSEC_CLIENT=%s", s->client) < 0) {
                r = -ENOMEM;
                goto fail;
        }

        r = sd_event_add_time(m->event, &s->timer_source, CLOCK_MONOTONIC, USEC_INFINITY, 0,
                              on_session_timeout, s);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(s->timer_source, "session-timeout");

        m->stats.sessions_total++;
        log_session(s, LOG_DEBUG, "Connection from %s.", s->client);

        /* A parked backend connection has greeted already: greet the client at once. */
        s->upstream = manager_pool_take(m, s->config);
        if (s->upstream) {
                s->flags |= SESSION_FLAG_UPSTREAM_REUSED;
                session_greet(s);
                goto done;
        }

        r = session_connect(s, on_greeting);
        if (r < 0) {
                m->stats.backend_failures++;
                log_session_errno(s, LOG_WARNING, r, "Cannot connect to the backend: %m");
                s->flags |= SESSION_FLAG_BACKEND_DEAD;
                s->state = SESSION_STATE_COMMAND;
                session_close(s, "421 4.3.2 %s Service not available, try again later", s->config->hostname);
        }

done:
        if (ret)
                *ret = s;
        session_advance(s);     /* may free s when the backend failed and the 421 went out */
        return 0;

fail:
        session_free(s);
        return r;
}

Session* session_free(Session *s) {
        Manager *m;

        if (!s)
                return NULL;
        m = s->manager;

        log_session(s, LOG_DEBUG, "Disconnected, %u message(s) relayed.", s->messages);

        if (s->sessions_prev)
                s->sessions_prev->sessions_next = s->sessions_next;
        else if (m->sessions == s)
                m->sessions = s->sessions_next;
        if (s->sessions_next)
                s->sessions_next->sessions_prev = s->sessions_prev;
        m->n_sessions--;

        /* Before the transaction is closed: an open one keeps the connection from reuse. */
        session_release_upstream(s);
        if (s->tx)
                session_tx_end(s, 421, 0);
        sd_event_source_disable_unref(s->io_source);
        sd_event_source_disable_unref(s->timer_source);
        sd_event_source_disable_unref(s->defer_source);
        if (s->ssl) {
                if (s->state != SESSION_STATE_STARTTLS)
                        (void) SSL_shutdown(s->ssl);
                SSL_free(s->ssl);
        }
        safe_close(s->fd);
        proxy_config_unref(s->config);
        free(s->ibuf);
        free(s->obuf);
        free(s->client);
        if (s->client_counted)
                manager_client_unref(s->manager, s->client_ip);
        free(s->client_ip);
        free(s->tls);
        free(s->helo);
        free(s->log_session);
        free(s->log_client);
        free(s->log_helo);
        free(s);
        return NULL;
}

void session_shutdown(Session *s) {
        if (s->state != SESSION_STATE_STARTTLS && !(s->flags & SESSION_FLAG_CLOSE)) {
                session_reply(s, "421 4.3.2 Service shutting down");
                (void) session_flush(s);
        }
        session_free(s);
}
