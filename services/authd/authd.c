/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* mailsec-authd: message authentication for the other mailsec services.
 *
 * PURPOSE
 *      Evaluates SPF (RFC 7208), verifies DKIM signatures (RFC 6376, RFC 8301, RFC 8463)
 *      and ARC chains (RFC 8617), evaluates DMARC (RFC 7489) and builds the
 *      Authentication-Results value (RFC 8601) for received mail; signs outgoing mail
 *      with DKIM and seals ARC sets. The checks themselves are libauthd's pure code;
 *      this daemon feeds them DNS answers from the configured resolver.
 *
 * SECURITY
 *      Messages arrive as sealed memfds only, checked for their seals and size before
 *      they are mapped. Callers are root, mailsec-proxy and the group mailsec (bus policy,
 *      and a check of the sender's credentials in every method). Everything in a
 *      message and in DNS is hostile and parsed within libauthd's limits. Signing keys
 *      are read once at start-up, through $CREDENTIALS_DIRECTORY.
 *
 * BUS
 *      Bus-activated; owns ch.webtrend.Mailsec.Auth1 (object /ch/webtrend/Mailsec/Auth1,
 *      ch.webtrend.Mailsec.Auth1.Manager, org.freedesktop.LogControl1) and exits after
 *      IdleTimeoutSec= without pending checks.
 *
 * FILES
 *      SYSCONFDIR/authd.conf and authd.conf.d/ (read only); private keys through
 *      $CREDENTIALS_DIRECTORY or absolute paths. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "authd-bus.h"
#include "authd-check.h"
#include "authd-manager.h"
#include "bus-util.h"
#include "cleanup.h"
#include "config.h"
#include "daemon-util.h"
#include "log.h"
#include "string-util.h"

static const char *arg_config = SYSCONFDIR "/authd.conf";
static bool arg_check_config = false;

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "The mailsec authentication service (SPF, DKIM, DMARC, ARC; bus activated).\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --config=PATH       Configuration file (default: %s)\n"
               "     --check-config      Parse the configuration, load the signing keys, and exit\n"
               "     --log-level=LEVEL   emerg, alert, crit, err, warning, notice, info, debug\n"
               "\nSee mailsec-authd(8) and mailsec-authd.conf(5).\n",
               program_invocation_short_name, SYSCONFDIR "/authd.conf");
}

static int parse_argv(int argc, char *argv[]) {
        DaemonArgs args = { .config = arg_config };
        int r;

        r = daemon_parse_argv(argc, argv, help, NULL, NULL, &args);
        arg_config = args.config;
        arg_check_config = args.check_config;
        return r;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        ConfigError error = CONFIG_ERROR_NULL;
        int r;

        /* 1. logging, arguments */
        log_set_identifier("mailsec-authd");
        log_setup();

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        /* 2. configuration (and the signing keys): a failure stops start-up */
        r = manager_new(arg_config, &m);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate manager: %m");

        r = manager_load_config(m, &error);
        if (r < 0) {
                if (error.message)
                        log_error("%s:%u: %s", strna(error.filename), error.line, error.message);
                else
                        log_error_errno(r, "Cannot load configuration %s: %m", arg_config);
                config_error_done(&error);
                return r;
        }
        if (arg_check_config) {
                log_info("Configuration %s is valid (%zu signing key(s)).", arg_config, m->config->n_keys);
                return 0;
        }

        /* 3. event loop, watchdog. SIGTERM/SIGINT release the name and let the checks in
         * hand end (bus_event_loop_with_idle()); no reload: the next activation reads the
         * configuration again, and a restart loses no call */
        r = manager_setup_event(m);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the event loop: %m");

        /* 4. no inherited sockets. 5. the bus, then the resolver (resolve1 needs the bus),
         * then the name: calls queue in the bus until then */
        r = manager_connect_bus(m);
        if (r < 0)
                return r;
        r = manager_setup_resolver(m);
        if (r < 0)
                return r;
        r = manager_request_name(m);
        if (r < 0)
                return r;

        /* 6. ready; run until idle */
        (void) sd_notify(0, "READY=1\nSTATUS=Processing requests.");
        log_info("mailsec-authd %s running (authserv-id %s, %zu signing key(s)).", PROJECT_VERSION,
                 m->config->authserv_id, m->config->n_keys);

        r = bus_event_loop_with_idle(m->event, m->bus, AUTH_BUS_NAME, m->config->idle_timeout,
                                     manager_check_idle, m);
        (void) sd_notify(0, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

DEFINE_MAIN_FUNCTION(run);
