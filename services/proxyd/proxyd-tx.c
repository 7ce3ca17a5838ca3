/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "memfd-util.h"
#include "fd-util.h"
#include "proxyd-checks.h"
#include "proxyd-spam.h"
#include "proxyd-tx.h"
#include "string-util.h"

/* ---- The end-of-data scanner ---- */

void data_scanner_init(DataScanner *s, bool bdat, uint64_t max_line, uint64_t max_header, uint64_t max_size) {
        *s = (DataScanner) {
                .bdat = bdat,
                .state = DATA_SCAN_LINE_START,
                .max_line = max_line,
                .max_header = max_header,
                .max_size = max_size,
                .in_header = true,
        };
}

static inline void scan_emit(DataScanner *s, char c, char *out, size_t *o) {
        out[(*o)++] = c;
        s->size++;
        if (s->size > s->max_size)
                s->flags |= DATA_SCAN_TOO_BIG;
        if (s->in_header) {
                s->header_size++;
                if (s->header_size > s->max_header)
                        s->flags |= DATA_SCAN_HEADER_TOO_BIG;
        }
}

/* One byte inside a line (also the first byte of a line that is not a dot). */
static inline void scan_in_line(DataScanner *s, char c, char *out, size_t *o) {
        switch (c) {
        case '\r':
                scan_emit(s, c, out, o);
                s->state = DATA_SCAN_CR;
                return;
        case '\n':
                /* A bare LF is never a line end: the line continues, so nothing that
                 * follows it can be taken as the end of the data. */
                s->flags |= DATA_SCAN_BARE_LF;
                scan_emit(s, c, out, o);
                s->state = DATA_SCAN_IN_LINE;
                return;
        case '\0':
                s->flags |= DATA_SCAN_NUL;
                break;
        }
        scan_emit(s, c, out, o);
        s->line_len++;
        if (s->line_len > s->max_line)
                s->flags |= DATA_SCAN_LINE_TOO_LONG;
        s->state = DATA_SCAN_IN_LINE;
}

/* Bytes that end a run of ordinary line content: CR, LF and NUL. */
static size_t scan_plain_run(const char *p, size_t n) {
        size_t i = 0;

        while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
                i++;
        return i;
}

/* The same as scan_in_line() for each of n ordinary bytes, done at once: the counters
 * only grow, so checking the limits once at the end sets the same flags. */
static void scan_emit_run(DataScanner *s, const char *p, size_t n, char *out, size_t *o) {
        if (out + *o != p)
                memmove(out + *o, p, n);
        *o += n;
        s->size += n;
        if (s->size > s->max_size)
                s->flags |= DATA_SCAN_TOO_BIG;
        if (s->in_header) {
                s->header_size += n;
                if (s->header_size > s->max_header)
                        s->flags |= DATA_SCAN_HEADER_TOO_BIG;
        }
        s->line_len += n;
        if (s->line_len > s->max_line)
                s->flags |= DATA_SCAN_LINE_TOO_LONG;
        s->state = DATA_SCAN_IN_LINE;
}

size_t data_scanner_feed(DataScanner *s, const char *in, size_t n, char *out, size_t *ret_out_len, bool *ret_end) {
        size_t i, o = 0;
        bool end = false;

        for (i = 0; i < n && !end; i++) {
                char c = in[i];

                switch (s->state) {
                case DATA_SCAN_LINE_START:
                        if (c == '.' && !s->bdat) {
                                s->state = DATA_SCAN_DOT;
                                break;
                        }
                        scan_in_line(s, c, out, &o);
                        break;

                case DATA_SCAN_IN_LINE: {
                        size_t run = scan_plain_run(in + i, n - i);

                        if (run > 0) {
                                scan_emit_run(s, in + i, run, out, &o);
                                i += run - 1;   /* the loop adds the last one */
                        } else
                                scan_in_line(s, c, out, &o);
                        break;
                }

                case DATA_SCAN_CR:
                        if (c == '\n') {
                                scan_emit(s, c, out, &o);
                                if (s->line_len == 0)
                                        s->in_header = false;
                                s->line_len = 0;
                                s->state = DATA_SCAN_LINE_START;
                        } else {
                                s->flags |= DATA_SCAN_BARE_CR;
                                scan_in_line(s, c, out, &o);
                        }
                        break;

                case DATA_SCAN_DOT:
                        if (c == '\r')
                                s->state = DATA_SCAN_DOT_CR;
                        else if (c == '.') {
                                /* Dot-stuffed line: keep one of the two dots. */
                                scan_emit(s, c, out, &o);
                                s->line_len++;
                                s->state = DATA_SCAN_IN_LINE;
                        } else
                                /* RFC 5321 §4.5.2: the leading dot is removed in any case. */
                                scan_in_line(s, c, out, &o);
                        break;

                case DATA_SCAN_DOT_CR:
                        if (c == '\n') {
                                end = true;
                                break;
                        }
                        /* The message is bad now, so its content no longer matters; the
                         * held-back CR is not written, which keeps the output no longer
                         * than the input (callers scan in place). */
                        s->flags |= DATA_SCAN_BARE_CR;
                        scan_in_line(s, c, out, &o);
                        break;

                default:
                        assert(false);
                }
        }

        if (ret_out_len)
                *ret_out_len = o;
        if (ret_end)
                *ret_end = end;
        return i;
}

bool data_scanner_finish_bdat(DataScanner *s) {
        if (s->state == DATA_SCAN_CR) {
                s->flags |= DATA_SCAN_BARE_CR;
                return false;
        }
        if (s->state == DATA_SCAN_IN_LINE) {
                char crlf[2];
                size_t o = 0;

                scan_emit(s, '\r', crlf, &o);
                scan_emit(s, '\n', crlf, &o);
                s->state = DATA_SCAN_LINE_START;
                s->line_len = 0;
                return true;
        }
        return false;
}

const char* data_scan_flags_to_reply(DataScanFlags f) {
        /* Smuggling-relevant findings first: they say the most about the client. */
        if (f & DATA_SCAN_BARE_LF)
                return "554 5.6.0 Message refused: bare <LF> in message\r\n";
        if (f & DATA_SCAN_BARE_CR)
                return "554 5.6.0 Message refused: bare <CR> in message\r\n";
        if (f & DATA_SCAN_NUL)
                return "554 5.6.0 Message refused: NUL character in message\r\n";
        if (f & DATA_SCAN_TOO_BIG)
                return "552 5.3.4 Message size exceeds fixed maximum message size\r\n";
        if (f & DATA_SCAN_HEADER_TOO_BIG)
                return "552 5.3.4 Message header size exceeds limit\r\n";
        if (f & DATA_SCAN_LINE_TOO_LONG)
                return "554 5.6.0 Message refused: line too long\r\n";
        return NULL;
}

/* ---- The transaction ---- */

static const char* const tx_state_table[_TX_STATE_MAX] = {
        [TX_STATE_MAIL]     = "mail",
        [TX_STATE_RCPT]     = "rcpt",
        [TX_STATE_DATA]     = "data",
        [TX_STATE_BDAT]     = "bdat",
        [TX_STATE_RELAYING] = "relaying",
};

const char* tx_state_to_string(TxState s) {
        if (s < 0 || s >= _TX_STATE_MAX)
                return NULL;
        return tx_state_table[s];
}

int transaction_new(unsigned number, Transaction **ret) {
        Transaction *t;

        t = calloc(1, sizeof(Transaction));
        if (!t)
                return -ENOMEM;
        t->number = number;
        t->state = TX_STATE_MAIL;
        t->spool_fd = -1;
        t->auth_answer.fd = -1;
        t->report_class = -1;
        t->report_fd = -1;
        *ret = t;
        return 0;
}

Transaction* transaction_free(Transaction *t) {
        if (!t)
                return NULL;
        free(t->mail_from);
        strv_free(t->rcpts);
        free(t->pending_rcpt);
        free(t->mail_line);
        safe_close(t->spool_fd);
        smtp_reply_done(&t->data_refusal);
        free(t->received);
        auth_state_free(t->auth);
        spam_state_free(t->spam);
        free(t->auth_answer.authentication_results);
        free(t->auth_answer.received_spf);
        free(t->auth_answer.dmarc_result);
        free(t->auth_answer.dmarc_disposition);
        free(t->auth_answer.dmarc_domain);
        safe_close(t->auth_answer.fd);
        safe_close(t->report_fd);
        free(t);
        return NULL;
}

static int strdup_or_null(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int transaction_keep_auth(Transaction *t, const AuthVerdict *v, int error) {
        TxAuthAnswer *a = &t->auth_answer;
        _cleanup_close_ int fd = v ? v->fd : -EBADF;

        free(a->authentication_results);
        free(a->received_spf);
        free(a->dmarc_result);
        free(a->dmarc_disposition);
        free(a->dmarc_domain);
        a->fd = safe_close(a->fd);
        *a = (TxAuthAnswer) { .error = error, .fd = -EBADF };
        if (error < 0)
                return 0;
        assert(v);

        if (strdup_or_null(v->authentication_results, &a->authentication_results) < 0 ||
            strdup_or_null(v->received_spf, &a->received_spf) < 0 ||
            strdup_or_null(v->dmarc_result, &a->dmarc_result) < 0 ||
            strdup_or_null(v->dmarc_disposition, &a->dmarc_disposition) < 0 ||
            strdup_or_null(v->dmarc_domain, &a->dmarc_domain) < 0) {
                a->error = -ENOMEM;
                return -ENOMEM;
        }
        a->fd = TAKE_FD(fd);
        a->size = v->size;
        return 0;
}

const char* transaction_rcpt_domain(const Transaction *t) {
        return t->n_rcpts > 0 ? mailbox_domain(t->rcpts[0]) : NULL;
}

int transaction_add_rcpt(Transaction *t, const char *mailbox) {
        int r;

        r = strv_extend(&t->rcpts, mailbox);
        if (r < 0)
                return r;
        t->n_rcpts++;
        return 0;
}

int transaction_start_data(Transaction *t, bool bdat, uint64_t max_line, uint64_t max_header, uint64_t max_size) {
        int fd;

        assert(t->spool_fd < 0);

        fd = memfd_new_spool("mailsec-spool");
        if (fd < 0)
                return fd;
        t->spool_fd = fd;
        data_scanner_init(&t->scanner, bdat, max_line, max_header, max_size);
        t->state = bdat ? TX_STATE_BDAT : TX_STATE_DATA;
        return 0;
}

int transaction_feed(Transaction *t, const char *in, size_t n, char *out, size_t *ret_consumed, bool *ret_end) {
        size_t consumed, out_len;
        bool end;
        int r;

        consumed = data_scanner_feed(&t->scanner, in, n, out, &out_len, &end);
        /* Once the content is bad nothing more is spooled: it will never be relayed. */
        if (!data_scanner_is_bad(&t->scanner) && out_len > 0) {
                r = memfd_append(t->spool_fd, out, out_len);
                if (r < 0)
                        return r;
        }
        if (ret_consumed)
                *ret_consumed = consumed;
        if (ret_end)
                *ret_end = end;
        return 0;
}

/* ---- Received: ---- */

const char* received_protocol(bool esmtp, bool tls, bool utf8) {
        if (utf8)
                return tls ? "UTF8SMTPS" : "UTF8SMTP";
        if (esmtp)
                return tls ? "ESMTPS" : "ESMTP";
        return tls ? "SMTPS" : "SMTP";
}

int rfc5322_date(usec_t when, char *buf, size_t size) {
        static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        time_t t = (time_t) (when / USEC_PER_SEC);
        struct tm tm;
        long off;
        int n;

        if (!localtime_r(&t, &tm))
                return -EINVAL;
        off = tm.tm_gmtoff / 60;
        /* Names from our own tables: strftime's %a/%b follow the locale. */
        n = snprintf(buf, size, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
                     days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', ABS(off) / 60, ABS(off) % 60);
        if (n < 0 || (size_t) n >= size)
                return -ENOBUFS;
        return 0;
}

/* The client's HELO name goes into a header: anything but a domain or an address literal
 * becomes '?', so the field always parses. */
static char* header_safe(const char *s) {
        char *c = strdup(strempty(s));

        if (!c)
                return NULL;
        for (char *p = c; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]", *p))
                        *p = '?';
        return c;
}

int received_field_build(const ReceivedInfo *i, char **ret) {
        _cleanup_free_ char *helo = NULL, *tls = NULL, *for_rcpt = NULL, *s = NULL;
        char date[64];
        int r;

        r = rfc5322_date(i->when, date, sizeof(date));
        if (r < 0)
                return r;

        helo = header_safe(i->helo);
        if (!helo)
                return -ENOMEM;

        if (i->tls) {
                const char *sp = strchr(i->tls, ' ');

                if (sp)
                        r = asprintf_safe(&tls, "\r\n\t(using %.*s with cipher %s)", (int) (sp - i->tls), i->tls, sp + 1);
                else
                        r = asprintf_safe(&tls, "\r\n\t(using %s)", i->tls);
                if (r < 0)
                        return -ENOMEM;
        }
        if (i->rcpt && !strpbrk(i->rcpt, "\r\n") && asprintf_safe(&for_rcpt, "\r\n\tfor <%s>", i->rcpt) < 0)
                return -ENOMEM;

        if (asprintf_safe(&s,
                          "Received: from %s ([%s])\r\n"
                          "\tby %s (mailsec) with %s id %016" PRIx64 ".%u%s%s; %s\r\n",
                          helo, strempty(i->client_ip), i->hostname, i->protocol, i->session_id,
                          i->tx_number, strempty(tls), strempty(for_rcpt), date) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- EHLO ---- */

int ehlo_reply_build(const char *hostname, const SmtpReply *backend, uint64_t max_size, bool offer_starttls,
                     char **ret_text, uint64_t *ret_size, unsigned *ret_extensions) {
        _cleanup_strv_free_ char **lines = NULL;
        _cleanup_free_ char *text = NULL;
        unsigned ext = SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_CHUNKING;
        uint64_t size = max_size;
        const char *param = NULL;
        char *l;
        size_t n, total = 0;
        int r;

        if (backend && smtp_reply_ehlo_has(backend, "SIZE", &param) && !isempty(param)) {
                uint64_t b;

                /* SIZE 0 means "no fixed limit" (RFC 1870). */
                if (parse_uint64(param, &b) >= 0 && b > 0 && b < size)
                        size = b;
        }
        if (backend && smtp_reply_ehlo_has(backend, "8BITMIME", NULL))
                ext |= SMTP_EXT_8BITMIME;
        if (backend && smtp_reply_ehlo_has(backend, "SMTPUTF8", NULL))
                ext |= SMTP_EXT_SMTPUTF8;
        if (backend && smtp_reply_ehlo_has(backend, "DSN", NULL))
                ext |= SMTP_EXT_DSN;
        if (offer_starttls)
                ext |= SMTP_EXT_STARTTLS;

        if (strv_extend(&lines, hostname) < 0 ||
            strv_extend(&lines, "PIPELINING") < 0)
                return -ENOMEM;
        if (asprintf_safe(&l, "SIZE %" PRIu64, size) < 0 || strv_consume(&lines, l) < 0)
                return -ENOMEM;
        if ((ext & SMTP_EXT_8BITMIME) && strv_extend(&lines, "8BITMIME") < 0)
                return -ENOMEM;
        if ((ext & SMTP_EXT_SMTPUTF8) && strv_extend(&lines, "SMTPUTF8") < 0)
                return -ENOMEM;
        if ((ext & SMTP_EXT_DSN) && strv_extend(&lines, "DSN") < 0)
                return -ENOMEM;
        if (strv_extend(&lines, "ENHANCEDSTATUSCODES") < 0 ||
            strv_extend(&lines, "CHUNKING") < 0)
                return -ENOMEM;
        if ((ext & SMTP_EXT_STARTTLS) && strv_extend(&lines, "STARTTLS") < 0)
                return -ENOMEM;

        n = strv_length(lines);
        STRV_FOREACH(i, lines)
                total += strlen(*i) + 6;
        text = malloc(total + 1);
        if (!text)
                return -ENOMEM;
        l = text;
        for (size_t i = 0; i < n; i++) {
                r = sprintf(l, "250%c%s\r\n", i + 1 < n ? '-' : ' ', lines[i]);
                l += r;
        }

        *ret_text = TAKE_PTR(text);
        if (ret_size)
                *ret_size = size;
        if (ret_extensions)
                *ret_extensions = ext;
        return 0;
}
