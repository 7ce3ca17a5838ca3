/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* mailsec-spamd: the spam filter of mailsec.
 *
 * PURPOSE
 *      Classifies messages with a Bayesian filter (Robinson, Fisher's chi-square) over
 *      header words, body words, orthogonal sparse bigrams, link hosts and the client
 *      address, with a hidden-Markov-model de-obfuscator that reads "v1@gra" back into
 *      the filter's vocabulary, and keeps learning: from confident verdicts on traffic,
 *      from users' reports (over the bus, by mail through mailsec-proxyd, from IMAP
 *      through Dovecot) and from administrators.
 *
 * SECURITY
 *      Messages arrive as sealed memfds only. Everything in a message is hostile and
 *      read within the MIME parser's limits. Classify and Report are open to local users;
 *      a report is attributed to its caller's uid and rate-limited, and only root,
 *      mailsec-proxy and TrustedReporters= may report for someone else; reports by mail
 *      are taken only from addresses of ReportDomains=. Learn, Forget and Rebuild are for
 *      root and the group mailsec.
 *
 * BUS
 *      Bus-activated; owns ch.webtrend.Mailsec.Spam1 (object /ch/webtrend/Mailsec/Spam1,
 *      ch.webtrend.Mailsec.Spam1.Manager, org.freedesktop.LogControl1) and exits after
 *      IdleTimeoutSec= without calls.
 *
 * FILES
 *      SYSCONFDIR/spamd.conf and spamd.conf.d/ (read only); the statistics in
 *      $STATE_DIRECTORY (StateDirectory=mailsec/spamd): journal, tokens.gdbm, secret. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "bus-util.h"
#include "cleanup.h"
#include "config.h"
#include "daemon-util.h"
#include "log.h"
#include "spamd-manager.h"
#include "string-util.h"

#define SPAMD_STATE_DIR_DEFAULT "/var/lib/mailsec/spamd"

static const char *arg_config = SYSCONFDIR "/spamd.conf";
static const char *arg_state_dir = NULL;
static bool arg_check_config = false;

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "The mailsec spam filter (bus activated).\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --config=PATH       Configuration file (default: %s)\n"
               "     --state-dir=PATH    Statistics (default: $STATE_DIRECTORY, else %s)\n"
               "     --check-config      Parse the configuration and exit\n"
               "     --log-level=LEVEL   emerg, alert, crit, err, warning, notice, info, debug\n"
               "\nSee mailsec-spamd(8) and mailsec-spamd.conf(5).\n",
               program_invocation_short_name, SYSCONFDIR "/spamd.conf", SPAMD_STATE_DIR_DEFAULT);
}

enum {
        ARG_STATE_DIR = DAEMON_ARG_EXTRA,
};

static int parse_extra(int c, const char *arg) {
        assert(c == ARG_STATE_DIR);
        arg_state_dir = arg;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option extra[] = {
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                {}
        };
        DaemonArgs args = { .config = arg_config };
        int r;

        r = daemon_parse_argv(argc, argv, help, extra, parse_extra, &args);
        arg_config = args.config;
        arg_check_config = args.check_config;
        return r;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        ConfigError error = CONFIG_ERROR_NULL;
        _cleanup_free_ char *state = NULL;
        const char *e;
        int r;

        /* 1. logging, arguments */
        log_set_identifier("mailsec-spamd");
        log_setup();

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        if (!arg_state_dir) {
                e = secure_getenv("STATE_DIRECTORY");
                /* StateDirectory= may list several: the first is ours */
                state = strndup(isempty(e) ? SPAMD_STATE_DIR_DEFAULT : e,
                                isempty(e) ? strlen(SPAMD_STATE_DIR_DEFAULT) : strcspn(e, ":"));
                if (!state)
                        return log_oom();
                arg_state_dir = state;
        }

        /* 2. configuration: a failure stops start-up */
        r = manager_new(arg_config, arg_state_dir, &m);
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
                log_info("Configuration %s is valid.", arg_config);
                return 0;
        }

        /* 3. the statistics (a journal with a torn tail is cut back, unsynced counts are
         * rebuilt), the de-obfuscator */
        r = manager_open_store(m);
        if (r < 0)
                return r;

        /* 4. event loop, watchdog; SIGTERM/SIGINT release the name and finish the call in
         * hand (bus_event_loop_with_idle()) */
        r = manager_setup_event(m);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the event loop: %m");

        /* 5. the bus, then the name: calls queue in the bus until then */
        r = manager_connect_bus(m);
        if (r < 0)
                return r;
        r = manager_request_name(m);
        if (r < 0)
                return r;

        (void) sd_notify(0, "READY=1\nSTATUS=Processing requests.");
        log_info("mailsec-spamd %s running (statistics in %s).", PROJECT_VERSION, arg_state_dir);

        r = bus_event_loop_with_idle(m->event, m->bus, SPAM_BUS_NAME, m->config->idle_timeout,
                                     manager_check_idle, m);
        (void) sd_notify(0, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        r = spam_store_flush(m->store);
        if (r < 0)
                return log_error_errno(r, "Cannot write the statistics: %m");
        return 0;
}

DEFINE_MAIN_FUNCTION(run);
