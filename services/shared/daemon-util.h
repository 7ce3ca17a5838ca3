/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The command line every mailsec daemon takes (STYLE.md §8):
 *
 *   -h --help, --version, --config=PATH, --check-config, --log-level=LEVEL
 *
 * and the options of its own, given as extra[] (values from DAEMON_ARG_EXTRA on) and
 * handled by on_extra(). No positional arguments. */

#include <getopt.h>
#include <stdbool.h>

#define DAEMON_ARG_EXTRA 0x200
#define DAEMON_OPTIONS_MAX 16U          /* common and extra together */

typedef struct DaemonArgs {
        const char *config;             /* in: the default; out: --config= */
        bool check_config;
} DaemonArgs;

/* Returns 1 to go on, 0 when --help or --version was answered (exit 0), or a negative errno
 * for a usage error (logged). on_extra() returns 0 or a negative errno. */
int daemon_parse_argv(int argc, char *argv[], void (*help)(void), const struct option *extra,
                      int (*on_extra)(int c, const char *arg), DaemonArgs *args);
