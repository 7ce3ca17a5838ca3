/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The spam filter in the relay. With [Checks] Spam=yes, mailsec-proxyd asks
 * ch.webtrend.Mailsec.Spam1 (mailsec-spamd) to Classify every complete message, at the same
 * time as mailsec-authd verifies it, passing the sealed spool memfd. The score becomes
 *
 *   X-Spam-Status: Yes, score=0.987 required=0.900
 *   X-Spam-Score: 0.987
 *
 * after our Received: and the authentication fields (Yes/No/Unsure is mailsec-spamd's
 * verdict "spam"/"ham"/"unsure", the score has three decimals, and " required=" gives
 * SpamRejectScore= only when it is set); a score at or above SpamRejectScore= is refused
 * with 550 5.7.1. X-Spam-* fields that come with the message are removed.
 *
 * Reports by mail: RCPT to an address of ReportAddresses= ("spam:spam-report@example.org
 * ham:ham-report@example.org") is answered by the proxy itself. The message reported is
 * read from the first message/rfc822 attachment, or from an ARF feedback report (RFC 5965:
 * multipart/report; report-type=feedback-report, its third part message/rfc822 or
 * text/rfc822-headers), and handed to mailsec-spamd's Report for "mail:<sender>", once
 * mailsec-authd has found that the sender's mail passes DMARC for its From domain and
 * that domain is the envelope sender's.
 *
 * The calls are asynchronous with SpamTimeoutSec=; their slots live in the Transaction,
 * so ending the transaction cancels them. The parts above the bus calls are pure and
 * tested in the unit suite. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "time-util.h"

#define SPAM1_BUS_NAME "ch.webtrend.Mailsec.Spam1"
#define SPAM1_BUS_PATH "/ch/webtrend/Mailsec/Spam1"
#define SPAM1_BUS_INTERFACE "ch.webtrend.Mailsec.Spam1.Manager"
#define SPAM1_ERROR_NOT_ALLOWED "ch.webtrend.Mailsec.Spam1.Error.NotAllowed"
#define SPAM1_ERROR_RATE_LIMITED "ch.webtrend.Mailsec.Spam1.Error.RateLimited"
#define SPAM1_ERROR_BAD_MESSAGE "ch.webtrend.Mailsec.Spam1.Error.BadMessage"
#define SPAM1_ERROR_BUSY "ch.webtrend.Mailsec.Spam1.Error.Busy"

#define PROXY_DEFAULT_SPAM_TIMEOUT (30 * USEC_PER_SEC)
#define SPAM_REJECT_SCORE_NEVER (-1.0)

typedef enum SpamFailureAction {
        SPAM_FAILURE_TEMPFAIL,  /* 451 4.3.5 */
        SPAM_FAILURE_ACCEPT,    /* relay without X-Spam-* fields, log a notice */
        _SPAM_FAILURE_MAX,
        _SPAM_FAILURE_INVALID = -EINVAL,
} SpamFailureAction;
const char* spam_failure_action_to_string(SpamFailureAction a) _const_;
SpamFailureAction spam_failure_action_from_string(const char *s) _pure_;

/* mailsec-spamd's verdict, as X-Spam-Status: shows it. */
typedef enum SpamStatus {
        SPAM_STATUS_NO,         /* "ham" */
        SPAM_STATUS_UNSURE,     /* "unsure" */
        SPAM_STATUS_YES,        /* "spam" */
        _SPAM_STATUS_MAX,
        _SPAM_STATUS_INVALID = -EINVAL,
} SpamStatus;
const char* spam_status_to_string(SpamStatus s) _const_;       /* "No", "Unsure", "Yes" */
SpamStatus spam_status_from_verdict(const char *verdict) _pure_;       /* "ham", ... */

/* SpamRejectScore=: "no" (SPAM_REJECT_SCORE_NEVER) or a number in (0, 1]. */
int spam_reject_score_parse(const char *s, double *ret);
/* The score reaches the reject score (never with SPAM_REJECT_SCORE_NEVER). */
bool spam_score_rejects(double score, double reject_score) _const_;

/* "X-Spam-Status: Yes, score=0.987 required=0.900\r\nX-Spam-Score: 0.987\r\n"; the
 * required= part only when reject_score is not SPAM_REJECT_SCORE_NEVER. */
int spam_fields_build(double score, SpamStatus status, double reject_score, char **ret);

/* ---- Reports by mail ---- */

typedef enum ReportClass {
        REPORT_CLASS_SPAM,
        REPORT_CLASS_HAM,
        _REPORT_CLASS_MAX,
        _REPORT_CLASS_INVALID = -EINVAL,
} ReportClass;
const char* report_class_to_string(ReportClass c) _const_;     /* "spam", "ham" */

/* One ReportAddresses= value: "spam:ADDRESS ham:ADDRESS ..." separated by whitespace.
 * Appends "spam:address" entries (address lowercased) to *l. -EINVAL for a missing or
 * unknown class or an address that is not local@domain. */
int report_addresses_parse(const char *s, char ***l);
/* The class of a recipient mailbox in the list (case-insensitive), or -ENOENT. */
ReportClass report_addresses_lookup(char * const *l, const char *mailbox);

/* The domain of a mailbox (after the last '@'), or NULL. */
const char* mailbox_domain(const char *mailbox) _pure_;

typedef enum ReportSource {
        REPORT_SOURCE_ATTACHMENT,       /* the first message/rfc822 part */
        REPORT_SOURCE_ARF,              /* the third part of a feedback report */
        _REPORT_SOURCE_MAX,
        _REPORT_SOURCE_INVALID = -EINVAL,
} ReportSource;
const char* report_source_to_string(ReportSource s) _const_;

#define REPORT_MAX_DEPTH 10U
#define REPORT_MAX_PARTS 1000U

/* Finds the reported message in a report mail (a whole message, header and body): with a
 * feedback report (multipart/report; report-type=feedback-report) its third part, if
 * that is message/rfc822 or text/rfc822-headers, otherwise the first message/rfc822 part
 * in the order of the MIME tree, at most REPORT_MAX_DEPTH multiparts deep. The part is
 * decoded (base64 and quoted-printable, which RFC 2046 forbids there but mail programs
 * use) into a new buffer. Returns 0 with the message and where it was found, -ENOMSG when
 * there is none (or it does not start with a header field), -ENOMEM. */
int report_extract_message(const char *msg, size_t size, char **ret_data, size_t *ret_size,
                           ReportSource *ret_source);

/* ---- The bus calls ---- */

#include <systemd/sd-bus.h>

typedef struct Transaction Transaction;
typedef struct SpamState SpamState;

/* What Classify said. */
typedef struct SpamVerdict {
        double score;
        SpamStatus status;
} SpamVerdict;

/* error < 0: no usable answer (no bus, spamd missing, timeout, error reply, malformed). */
typedef void (*SpamHandler)(Transaction *t, const SpamVerdict *v, int error, void *userdata);

typedef struct SpamRequest {
        const char *client_ip;
        const char *domain;             /* of the first recipient, or NULL */
        bool autolearn;
        usec_t timeout;
} SpamRequest;

typedef enum ReportOutcome {
        REPORT_OUTCOME_ACCEPTED,        /* learned (or known already) */
        REPORT_OUTCOME_NOT_ALLOWED,     /* Spam1.Error.NotAllowed: not of ReportDomains= */
        REPORT_OUTCOME_RATE_LIMITED,    /* Spam1.Error.RateLimited */
        REPORT_OUTCOME_BAD_MESSAGE,     /* Spam1.Error.BadMessage: too large, cannot be learned */
        REPORT_OUTCOME_UNAVAILABLE,     /* no answer, another error, malformed */
        _REPORT_OUTCOME_MAX,
        _REPORT_OUTCOME_INVALID = -EINVAL,
} ReportOutcome;

/* changed: the message was not yet learned with this class. error: for the log. */
typedef void (*ReportHandler)(Transaction *t, ReportOutcome outcome, bool changed, int error, void *userdata);

typedef struct ReportRequest {
        int fd;                         /* the reported message, a sealed memfd */
        ReportClass class;
        const char *reporter;           /* "mail:alice@example.org" */
        const char *domain;             /* the reporter's domain */
        usec_t timeout;
} ReportRequest;

SpamState* spam_state_free(SpamState *s);

/* The message in t->spool_fd is complete and sealed: call Classify, then handler (exactly
 * once, unless t is freed first, which cancels the call). */
int spam_classify(sd_bus *bus, Transaction *t, const SpamRequest *req, SpamHandler handler, void *userdata);

/* Call Report, then handler (exactly once, unless t is freed first). */
int spam_report(sd_bus *bus, Transaction *t, const ReportRequest *req, ReportHandler handler, void *userdata);
