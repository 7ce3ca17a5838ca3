/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The checks behind ch.webtrend.Mailsec.Auth1.Manager. Each asynchronous call becomes an
 * AuthCheck that keeps its request message, drives the libauthd step machines (SPF, DMARC)
 * and key lookups (DKIM, ARC) against the resolver, and replies from the completion of its
 * last lookup. A check ends with its reply, with an error reply after CheckTimeoutSec=, or
 * silently when its caller left the bus (sd_bus_track): nobody waits for the answer then.
 * Checks live in the Manager's list; the manager is idle when the list is empty. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "authd-manager.h"
#include "config.h"
#include "spf-eval.h"

#define AUTH_BUS_NAME BUS_PREFIX ".Auth1"
#define AUTH_ERROR_BAD_MESSAGE AUTH_BUS_NAME ".Error.BadMessage"
#define AUTH_ERROR_NO_KEY AUTH_BUS_NAME ".Error.NoKey"
#define AUTH_ERROR_BUSY AUTH_BUS_NAME ".Error.Busy"

/* The envelope of VerifyMessage(), validated by the caller; strings borrowed. */
typedef struct AuthEnvelope {
        const char *client_ip;          /* NULL: unknown */
        const char *helo;
        const char *mail_from;          /* NULL: unknown, "": the null reverse-path */
        const char *spf_result;         /* NULL: evaluate here */
        const char *session;            /* NULL: none */
} AuthEnvelope;

/* Parse "192.0.2.1" / "2001:db8::1" into req's family and address. -EINVAL otherwise. */
int auth_parse_ip(const char *s, SpfRequest *req);

/* Each returns 1 when the check was started (the reply follows later), or a negative errno
 * with *error set (the caller replies with the error). The message is not yet authorised
 * nor validated beyond its arguments' syntax: callers do that first. */
int auth_check_spf_start(Manager *m, sd_bus_message *request, const SpfRequest *req, sd_bus_error *error);
int auth_check_verify_start(Manager *m, sd_bus_message *request, int fd, const AuthEnvelope *env,
                            sd_bus_error *error);
int auth_check_seal_start(Manager *m, sd_bus_message *request, int fd, const char *authentication_results,
                          sd_bus_error *error);

/* SignMessage() needs no DNS: signs at once; returns the method reply's status. */
int auth_sign_message(Manager *m, sd_bus_message *request, int fd, const char *domain, sd_bus_error *error);

/* Drop every pending check without replying (shutdown). */
void auth_check_free_all(Manager *m);
