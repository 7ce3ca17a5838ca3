/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon-util.h"
#include "log.h"
#include "macro.h"

enum {
        ARG_VERSION = 0x100,
        ARG_CONFIG,
        ARG_CHECK_CONFIG,
        ARG_LOG_LEVEL,
};

static const struct option common_options[] = {
        { "help",         no_argument,       NULL, 'h'              },
        { "version",      no_argument,       NULL, ARG_VERSION      },
        { "config",       required_argument, NULL, ARG_CONFIG       },
        { "check-config", no_argument,       NULL, ARG_CHECK_CONFIG },
        { "log-level",    required_argument, NULL, ARG_LOG_LEVEL    },
};

int daemon_parse_argv(int argc, char *argv[], void (*help)(void), const struct option *extra,
                      int (*on_extra)(int c, const char *arg), DaemonArgs *args) {
        struct option options[DAEMON_OPTIONS_MAX + 1] = {};
        size_t n = 0;
        int c, l, r;

        assert(help);
        assert(args);

        for (size_t i = 0; i < ELEMENTSOF(common_options); i++)
                options[n++] = common_options[i];
        for (const struct option *o = extra; o && o->name; o++) {
                assert(n < DAEMON_OPTIONS_MAX);
                assert(o->val >= DAEMON_ARG_EXTRA && on_extra);
                options[n++] = *o;
        }

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("%s %s\n", PROJECT_NAME, PROJECT_VERSION);
                        return 0;
                case ARG_CONFIG:
                        args->config = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        args->check_config = true;
                        break;
                case ARG_LOG_LEVEL:
                        l = log_level_from_string(optarg);
                        if (l < 0)
                                return log_error_errno(-EINVAL, "Invalid log level: %s", optarg);
                        log_set_max_level(l);
                        break;
                default:
                        if (c < DAEMON_ARG_EXTRA)
                                return -EINVAL;         /* getopt_long() has said what is wrong */
                        r = on_extra(c, optarg);
                        if (r < 0)
                                return r;
                }

        if (optind < argc)
                return log_error_errno(-EINVAL, "%s takes no arguments.", program_invocation_short_name);
        return 1;
}
