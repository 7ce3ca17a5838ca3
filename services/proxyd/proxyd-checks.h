/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Message authentication in the relay: mailsec-proxyd asks ch.webtrend.Mailsec.Auth1
 * for SPF when MAIL is accepted, and for DKIM, DMARC and ARC once the message is complete
 * (VerifyMessage, the message passed as a sealed memfd). The answers become the
 * Authentication-Results: and Received-SPF: fields placed after our Received: field, and
 * a DMARC reject or quarantine disposition is applied as configured ([Checks] in
 * proxyd.conf). The calls are asynchronous with a timeout; their slots live in the
 * Transaction, so ending the transaction cancels them. A silent, missing or confused
 * mailsec-authd means OnAuthFailure=: tempfail (451 4.3.5) unless configured otherwise.
 *
 * Authentication-Results: fields of the received message that claim our authserv-id are
 * forgeries (RFC 8601 §5): they are removed from the message relayed. The authserv-id is
 * the one mailsec-authd puts into the value it returns. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum AuthFailureAction {
        AUTH_FAILURE_TEMPFAIL,  /* 451 4.3.5 */
        AUTH_FAILURE_ACCEPT,    /* relay without the authentication fields, log a notice */
        _AUTH_FAILURE_MAX,
        _AUTH_FAILURE_INVALID = -EINVAL,
} AuthFailureAction;
const char* auth_failure_action_to_string(AuthFailureAction a) _const_;
AuthFailureAction auth_failure_action_from_string(const char *s) _pure_;

typedef enum DmarcQuarantine {
        DMARC_QUARANTINE_HEADER,        /* add "X-Mailsec-Quarantine: dmarc" */
        DMARC_QUARANTINE_REJECT,        /* 550 5.7.1, like p=reject */
        _DMARC_QUARANTINE_MAX,
        _DMARC_QUARANTINE_INVALID = -EINVAL,
} DmarcQuarantine;
const char* dmarc_quarantine_to_string(DmarcQuarantine q) _const_;
DmarcQuarantine dmarc_quarantine_from_string(const char *s) _pure_;

#define PROXY_DEFAULT_AUTH_TIMEOUT (30 * USEC_PER_SEC)

#define AUTH1_BUS_NAME "ch.webtrend.Mailsec.Auth1"
#define AUTH1_BUS_PATH "/ch/webtrend/Mailsec/Auth1"
#define AUTH1_BUS_INTERFACE "ch.webtrend.Mailsec.Auth1.Manager"


#include "rfc5322.h"

/* Which header fields of a received message are removed: forgeries of fields that only
 * mailsec itself may add. */
/* Returns > 0 to remove the field, 0 to keep it, a negative errno to fail. */
typedef int (*HeaderFieldMatch)(const Rfc5322Field *f, void *userdata);

/* Copies the message in (header block and body) to a new sealed memfd without the header
 * fields match() selects (the body is never looked at). Returns 0 and
 * *ret_fd = -1 when there is none (the original can be relayed as is), 1 and the new fd
 * and its size otherwise, -EBADMSG when the header block does not parse, or match()'s
 * error. */
int message_strip_fields(const char *msg, size_t size, size_t max_line, HeaderFieldMatch match, void *userdata,
                         int *ret_fd, uint64_t *ret_size);

/* message_strip_fields() for the Authentication-Results: fields whose authserv-id is
 * authserv_id (case-insensitive). */
int message_strip_auth_results(const char *msg, size_t size, size_t max_line, const char *authserv_id,
                               int *ret_fd, uint64_t *ret_size);

/* Matches X-Spam-* fields (any case): mailsec-proxyd adds X-Spam-Status: and
 * X-Spam-Score:, and a message must not arrive with a verdict of its sender's choice. */
int header_field_is_spam(const Rfc5322Field *f, void *userdata);

#include <systemd/sd-bus.h>

#include "time-util.h"

typedef struct Transaction Transaction;
typedef struct AuthState AuthState;

/* What VerifyMessage said, handed to the session. */
typedef struct AuthVerdict {
        const char *authentication_results;     /* the value, beginning with a space */
        const char *received_spf;               /* the Received-SPF value, or NULL */
        const char *dmarc_result;               /* "pass", "fail", "none", ... */
        const char *dmarc_disposition;          /* "none", "quarantine", "reject" */
        const char *dmarc_domain;               /* header.from= of the dmarc result, or NULL */
        int fd;                                 /* the message without forged fields, or -1;
                                                 * owned by the handler */
        uint64_t size;
} AuthVerdict;

/* error < 0: no usable answer (no bus, authd missing, timeout, error reply, malformed). */
typedef void (*AuthHandler)(Transaction *t, const AuthVerdict *v, int error, void *userdata);

typedef struct AuthRequest {
        const char *client_ip;
        const char *helo;
        const char *session;            /* logged by mailsec-authd as MAILSEC_SESSION= */
        size_t max_line;                /* for reading the header block */
        usec_t timeout;
} AuthRequest;

AuthState* auth_state_free(AuthState *a);

/* MAIL was accepted: start CheckSpf for t->mail_from; the answer is kept in t. Failures
 * are only logged: VerifyMessage then evaluates SPF itself. */
int auth_check_spf(sd_bus *bus, Transaction *t, const AuthRequest *req);

/* The message in t->spool_fd is complete and sealed: call VerifyMessage once CheckSpf
 * has answered, then handler (exactly once, unless t is freed first, which cancels
 * everything). */
int auth_verify_message(sd_bus *bus, Transaction *t, const AuthRequest *req, AuthHandler handler, void *userdata);
