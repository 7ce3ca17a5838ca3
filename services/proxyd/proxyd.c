/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* mailsec-proxyd: the transparent reverse SMTP relay.
 *
 * PURPOSE
 *      Accepts SMTP connections on the sockets systemd passes ("smtp", "submission"),
 *      offers STARTTLS, and relays every session to the organisation's mail server (the
 *      backend), passing the real client address on with XCLIENT or PROXY v2. It says 250
 *      to a message only after the backend has said 250: nothing is ever queued here.
 *
 * SECURITY
 *      Everything from the network is hostile: command lines, parameters and message
 *      content are parsed within configured limits (MaxLineLength=, MaxMessageSize=,
 *      MaxHeaderSize=, MaxRecipients=, MaxBadCommands=, MaxSessions*=). Line ends must be
 *      CRLF everywhere; bare CR or LF is refused so that no SMTP smuggling can pass the
 *      relay. Input pipelined after STARTTLS is discarded. The backend's replies are
 *      trusted only as far as the protocol: they are relayed verbatim to the client.
 *
 * BUS
 *      Owns ch.webtrend.Mailsec.Proxy1 (object /ch/webtrend/Mailsec/Proxy1,
 *      ch.webtrend.Mailsec.Proxy1.Manager, org.freedesktop.LogControl1) unless --no-bus
 *      or MAILSEC_PROXYD_NO_BUS=1.
 *
 * FILES
 *      SYSCONFDIR/proxyd.conf and proxyd.conf.d/ (read only); private keys through
 *      $CREDENTIALS_DIRECTORY. Message content lives in sealed memfds only. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "config.h"
#include "daemon-util.h"
#include "log.h"
#include "proxyd-bus.h"
#include "proxyd-conf.h"
#include "proxyd-manager.h"
#include "string-util.h"

static const char *arg_config = SYSCONFDIR "/proxyd.conf";
static bool arg_check_config = false;
static bool arg_no_bus = false;

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "The mailsec SMTP relay (socket activated).\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --config=PATH       Configuration file (default: %s)\n"
               "     --check-config      Parse the configuration, load certificates, and exit\n"
               "     --log-level=LEVEL   emerg, alert, crit, err, warning, notice, info, debug\n"
               "     --no-bus            Do not connect to the system bus\n"
               "\nSee mailsec-proxyd(8) and mailsec-proxyd.conf(5).\n",
               program_invocation_short_name, SYSCONFDIR "/proxyd.conf");
}

enum {
        ARG_NO_BUS = DAEMON_ARG_EXTRA,
};

static int parse_extra(int c, const char *arg) {
        assert(c == ARG_NO_BUS);
        arg_no_bus = true;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option extra[] = {
                { "no-bus", no_argument, NULL, ARG_NO_BUS },
                {}
        };
        DaemonArgs args = { .config = arg_config };
        const char *e;
        int r;

        e = secure_getenv("MAILSEC_PROXYD_NO_BUS");
        if (e && streq(e, "1"))
                arg_no_bus = true;

        r = daemon_parse_argv(argc, argv, help, extra, parse_extra, &args);
        arg_config = args.config;
        arg_check_config = args.check_config;
        return r;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        ConfigError error = CONFIG_ERROR_NULL;
        int r;

        log_set_identifier("mailsec-proxyd");
        log_setup();

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

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
        if (arg_no_bus && m->config->authentication)
                return log_error_errno(-EINVAL, "Authentication=yes needs the system bus; it cannot be used with --no-bus.");
        if (arg_no_bus && m->config->spam)
                return log_error_errno(-EINVAL, "Spam=yes needs the system bus; it cannot be used with --no-bus.");
        if (arg_check_config) {
                log_info("Configuration %s is valid.", arg_config);
                return 0;
        }

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Cannot enable the watchdog, ignoring: %m");

        r = manager_setup_signals(m);
        if (r < 0)
                return log_error_errno(r, "Cannot set up signal handlers: %m");

        r = manager_listen_fds(m);
        if (r < 0)
                return r;

        if (!arg_no_bus) {
                r = manager_connect_bus(m);
                if (r < 0)
                        return r;
        }

        (void) sd_notifyf(0, "READY=1\nSTATUS=Relaying to the backend.");
        log_info("mailsec-proxyd %s running (%zu socket(s)%s).", PROJECT_VERSION, m->n_listeners,
                 arg_no_bus ? ", no bus" : "");

        r = sd_event_loop(m->event);
        (void) sd_notify(0, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}

DEFINE_MAIN_FUNCTION(run);
