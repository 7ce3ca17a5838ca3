/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One mail transaction (MAIL .. end of data) and the pure pieces around it: the strict
 * end-of-data scanner that spools DATA/BDAT content, the Received: field, and the EHLO
 * capability merge. Everything here is free of I/O except the spool memfd. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "smtp-reply.h"
#include "time-util.h"

/* ---- The end-of-data scanner ----
 *
 * Strict by design (SMTP smuggling): only CR LF "." CR LF ends DATA. A bare LF, a bare CR
 * or a NUL anywhere marks the message as bad; so does a line longer than the line limit,
 * a header block larger than the header limit or content larger than the size limit.
 * A bad message is still scanned to its real end so the session stays in step with the
 * client, but its content must not be relayed. In BDAT mode there is no dot handling and
 * no end marker: the chunk sizes delimit the content. */

typedef enum DataScanFlags {
        DATA_SCAN_BARE_LF        = 1 << 0,
        DATA_SCAN_BARE_CR        = 1 << 1,
        DATA_SCAN_NUL            = 1 << 2,
        DATA_SCAN_LINE_TOO_LONG  = 1 << 3,
        DATA_SCAN_HEADER_TOO_BIG = 1 << 4,
        DATA_SCAN_TOO_BIG        = 1 << 5,
} DataScanFlags;

typedef enum DataScanState {
        DATA_SCAN_LINE_START,   /* after CRLF (or at the start of the content) */
        DATA_SCAN_IN_LINE,
        DATA_SCAN_CR,           /* CR seen, LF must follow */
        DATA_SCAN_DOT,          /* "." at the start of a line */
        DATA_SCAN_DOT_CR,       /* ".\r" at the start of a line */
        _DATA_SCAN_STATE_MAX,
        _DATA_SCAN_STATE_INVALID = -EINVAL,
} DataScanState;

typedef struct DataScanner {
        bool bdat;
        DataScanState state;
        uint64_t max_line, max_header, max_size;
        uint64_t line_len;      /* content bytes of the current line, without CRLF */
        uint64_t size;          /* content bytes produced so far */
        uint64_t header_size;
        bool in_header;
        DataScanFlags flags;
} DataScanner;

void data_scanner_init(DataScanner *s, bool bdat, uint64_t max_line, uint64_t max_header, uint64_t max_size);

/* Scans in[0..n). The content (dot-unstuffed, without the final ".") is written to out,
 * which must hold n bytes and may be the same buffer as in. Returns the number of input
 * bytes consumed: all of them, or in DATA mode up to and including the final CRLF, in
 * which case *ret_end is set. */
size_t data_scanner_feed(DataScanner *s, const char *in, size_t n, char *out, size_t *ret_out_len, bool *ret_end);

/* BDAT LAST: a trailing CR is a bare CR. Returns true when the last line lacks its CRLF
 * (the caller appends one, and size has been counted for it). */
bool data_scanner_finish_bdat(DataScanner *s);

static inline bool data_scanner_is_bad(const DataScanner *s) {
        return s->flags != 0;
}

/* The final reply for bad content: "554 5.6.0 Message refused: bare <LF> in message"
 * and friends (static string, CRLF-terminated), or NULL for good content. */
const char* data_scan_flags_to_reply(DataScanFlags f);

/* ---- The transaction ---- */

typedef enum TxState {
        TX_STATE_MAIL,          /* MAIL relayed, waiting for the backend */
        TX_STATE_RCPT,          /* MAIL accepted, collecting recipients */
        TX_STATE_DATA,          /* receiving DATA */
        TX_STATE_BDAT,          /* receiving BDAT chunks */
        TX_STATE_RELAYING,      /* the message is on its way to the backend */
        _TX_STATE_MAX,
        _TX_STATE_INVALID = -EINVAL,
} TxState;
const char* tx_state_to_string(TxState s) _const_;

typedef enum BackendData {
        BACKEND_DATA_NONE,      /* not sent ahead (BDAT, CHUNKING backend): at the end */
        BACKEND_DATA_PENDING,   /* DATA sent, no answer yet */
        BACKEND_DATA_READY,     /* 354: the backend waits for the message */
        BACKEND_DATA_REFUSED,   /* the backend answered DATA with data_refusal */
        BACKEND_DATA_FAILED,    /* the connection failed meanwhile */
} BackendData;

/* The end-of-message checks run in parallel; each answer is kept here (copied: the bus
 * replies do not outlive their handlers) until all have come in. */
typedef enum TxCheck {
        TX_CHECK_AUTH = 1 << 0,         /* VerifyMessage (proxyd-checks.c) */
        TX_CHECK_SPAM = 1 << 1,         /* Classify (proxyd-spam.c) */
} TxCheck;

typedef struct TxAuthAnswer {
        int error;                      /* < 0: no usable answer */
        char *authentication_results;   /* the value, beginning with a space */
        char *received_spf;             /* or NULL */
        char *dmarc_result;
        char *dmarc_disposition;
        char *dmarc_domain;             /* or NULL */
        int fd;                         /* the message without forged fields, or -1 */
        uint64_t size;
} TxAuthAnswer;

typedef struct TxSpamAnswer {
        int error;                      /* < 0: no usable answer */
        double score;
        int status;                     /* SpamStatus */
} TxSpamAnswer;

typedef struct Transaction {
        unsigned number;        /* 1, 2, ... within the session */
        TxState state;
        char *mail_from;        /* mailbox, "" for <> */
        bool smtputf8;
        bool body_8bit;
        uint64_t declared_size; /* SIZE=, 0 when not given */

        char **rcpts;           /* recipients the backend accepted */
        size_t n_rcpts;
        unsigned n_rcpt_relayed;
        char *pending_rcpt;     /* RCPT waiting for the backend's reply */
        char *mail_line;        /* MAIL held back, to go with the first RCPT (backend
                                 * PIPELINING); NULL once the backend accepted it */

        int spool_fd;           /* memfd, -1 until DATA/BDAT */
        DataScanner scanner;
        uint64_t bdat_chunks;

        /* DATA sent to the backend while the client's message still arrives. */
        BackendData backend_data;
        SmtpReply data_refusal;         /* BACKEND_DATA_REFUSED: the backend's answer */
        bool complete;                  /* the message ended while DATA was pending */
        char *received;                 /* our Received: field, kept while DATA is pending */

        struct AuthState *auth;         /* calls to mailsec-authd (proxyd-checks.c) */
        struct SpamState *spam;         /* calls to mailsec-spamd (proxyd-spam.c) */
        TxCheck checks_pending;         /* answers still awaited */
        TxAuthAnswer auth_answer;
        TxSpamAnswer spam_answer;

        /* Reports by mail (ReportAddresses=): the recipients are ours, never the backend's. */
        int report_class;               /* ReportClass of the report recipients, -1 while none */
        unsigned n_report_rcpts;
        int report_fd;                  /* the reported message, sealed memfd, or -1 */
} Transaction;

int transaction_new(unsigned number, Transaction **ret);
Transaction* transaction_free(Transaction *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Transaction*, transaction_free);

int transaction_add_rcpt(Transaction *t, const char *mailbox);

/* Keeps VerifyMessage's answer (v NULL when error < 0); takes v->fd in all cases. */
struct AuthVerdict;
int transaction_keep_auth(Transaction *t, const struct AuthVerdict *v, int error);
/* The first recipient's domain (for per-domain spam statistics), or NULL. */
const char* transaction_rcpt_domain(const Transaction *t);
/* Creates the spool memfd and starts the scanner. */
int transaction_start_data(Transaction *t, bool bdat, uint64_t max_line, uint64_t max_header, uint64_t max_size);
/* Feed content, appending to the spool while the content is good. */
int transaction_feed(Transaction *t, const char *in, size_t n, char *out, size_t *ret_consumed, bool *ret_end);

/* ---- Received: ---- */

typedef struct ReceivedInfo {
        const char *helo;       /* the client's HELO/EHLO name */
        const char *client_ip;  /* "192.0.2.1", "2001:db8::1" */
        const char *hostname;   /* ours */
        const char *protocol;   /* "ESMTP", "ESMTPS", "UTF8SMTP", "UTF8SMTPS", "SMTP" */
        const char *tls;        /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or NULL */
        uint64_t session_id;
        unsigned tx_number;
        const char *rcpt;       /* when exactly one recipient, else NULL */
        usec_t when;            /* CLOCK_REALTIME */
} ReceivedInfo;

/* RFC 5321 §4.4 trace field, CRLF-terminated, folded with tabs. */
int received_field_build(const ReceivedInfo *i, char **ret);
/* "ESMTPS" etc. per RFC 3848 / RFC 6531. */
const char* received_protocol(bool esmtp, bool tls, bool utf8) _const_;
/* RFC 5322 date-time in local time, "Thu, 27 Nov 2025 18:25:00 +0100". */
int rfc5322_date(usec_t when, char *buf, size_t size);

/* ---- EHLO ---- */

typedef enum SmtpExtension {
        SMTP_EXT_PIPELINING          = 1 << 0,
        SMTP_EXT_SIZE                = 1 << 1,
        SMTP_EXT_8BITMIME            = 1 << 2,
        SMTP_EXT_SMTPUTF8            = 1 << 3,
        SMTP_EXT_DSN                 = 1 << 4,
        SMTP_EXT_ENHANCEDSTATUSCODES = 1 << 5,
        SMTP_EXT_CHUNKING            = 1 << 6,
        SMTP_EXT_STARTTLS            = 1 << 7,
} SmtpExtension;

/* Our EHLO reply: "250-<hostname>" then PIPELINING, SIZE (the smaller of max_size and the
 * backend's SIZE), 8BITMIME/SMTPUTF8/DSN when the backend has them, ENHANCEDSTATUSCODES,
 * CHUNKING, and STARTTLS when offer_starttls. backend may be NULL (nothing optional).
 * Returns the CRLF-terminated text, the SIZE announced and the extensions offered. */
int ehlo_reply_build(const char *hostname, const SmtpReply *backend, uint64_t max_size, bool offer_starttls,
                     char **ret_text, uint64_t *ret_size, unsigned *ret_extensions);
