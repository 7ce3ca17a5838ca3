/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* mailsec-dmarc-report(8): writes the DMARC aggregate reports (RFC 7489 §7.2) of one
 * finished UTC day from the evaluations mailsec-authd recorded in its state directory.
 * Run daily by mailsec-dmarc-report.timer. See the man page for options and exit codes. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "dmarc-report.h"
#include "log.h"
#include "string-util.h"

#define DEFAULT_STATE_DIR "/var/lib/mailsec/authd/dmarc"
#define DEFAULT_OUTPUT_DIR "/var/lib/mailsec/authd/dmarc-reports"

/* Exit codes (documented in mailsec-dmarc-report.8) */
enum {
        EXIT_OK = 0,            /* all reports written, or nothing to report */
        EXIT_ERROR = 1,         /* reading the store or writing a report failed */
        EXIT_USAGE = 2,         /* invalid command line */
};

static const char *arg_state_dir = DEFAULT_STATE_DIR;
static const char *arg_output_dir = DEFAULT_OUTPUT_DIR;
static const char *arg_day = NULL;
static const char *arg_org_name = NULL;
static const char *arg_org_email = NULL;
static const char *arg_extra_contact = NULL;
static const char *arg_receiver = NULL;

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "Write the DMARC aggregate reports of one finished UTC day.\n\n"
               "  -h --help                 Show this help\n"
               "     --version              Show the version\n"
               "     --state-dir=DIR        Where mailsec-authd records evaluations\n"
               "                            (default: " DEFAULT_STATE_DIR ")\n"
               "     --output-dir=DIR       Where reports are written\n"
               "                            (default: " DEFAULT_OUTPUT_DIR ")\n"
               "     --day=YYYY-MM-DD       The UTC day to report (default: yesterday)\n"
               "     --receiver=DOMAIN      This receiver's domain (default: host name)\n"
               "     --org-name=NAME        report_metadata/org_name (default: receiver)\n"
               "     --org-email=ADDRESS    report_metadata/email (default: postmaster@receiver)\n"
               "     --extra-contact-info=TEXT  report_metadata/extra_contact_info\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_STATE_DIR,
                ARG_OUTPUT_DIR,
                ARG_DAY,
                ARG_RECEIVER,
                ARG_ORG_NAME,
                ARG_ORG_EMAIL,
                ARG_EXTRA_CONTACT,
        };
        static const struct option options[] = {
                { "help",               no_argument,       NULL, 'h'               },
                { "version",            no_argument,       NULL, ARG_VERSION       },
                { "state-dir",          required_argument, NULL, ARG_STATE_DIR     },
                { "output-dir",         required_argument, NULL, ARG_OUTPUT_DIR    },
                { "day",                required_argument, NULL, ARG_DAY           },
                { "receiver",           required_argument, NULL, ARG_RECEIVER      },
                { "org-name",           required_argument, NULL, ARG_ORG_NAME      },
                { "org-email",          required_argument, NULL, ARG_ORG_EMAIL     },
                { "extra-contact-info", required_argument, NULL, ARG_EXTRA_CONTACT },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("%s %s\n", PROJECT_NAME, PROJECT_VERSION);
                        return 0;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_OUTPUT_DIR:
                        arg_output_dir = optarg;
                        break;
                case ARG_DAY:
                        arg_day = optarg;
                        break;
                case ARG_RECEIVER:
                        arg_receiver = optarg;
                        break;
                case ARG_ORG_NAME:
                        arg_org_name = optarg;
                        break;
                case ARG_ORG_EMAIL:
                        arg_org_email = optarg;
                        break;
                case ARG_EXTRA_CONTACT:
                        arg_extra_contact = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        assert(false);
                }
        if (optind < argc) {
                log_error("%s takes no arguments.", program_invocation_short_name);
                return -EINVAL;
        }
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_free_ char *hostname = NULL, *email = NULL;
        DmarcReportEntry *entries = NULL;
        DmarcReport *reports = NULL;
        _cleanup_close_ int out_fd = -1;
        size_t n = 0, n_reports = 0;
        uint64_t day, today;
        unsigned skipped = 0, written = 0, existing = 0;
        char day_str[11];
        int r, ret = EXIT_OK;

        log_setup();

        r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_USAGE;
        if (r == 0)
                return EXIT_OK;

        today = (uint64_t) time(NULL);
        today -= today % DMARC_DAY_SEC;
        if (arg_day) {
                r = dmarc_report_day_parse(arg_day, &day);
                if (r < 0) {
                        log_error("Invalid day '%s', expected YYYY-MM-DD.", arg_day);
                        return EXIT_USAGE;
                }
                if (day >= today) {
                        log_error("Day %s is not over yet (UTC); refusing to report it.", arg_day);
                        return EXIT_USAGE;
                }
        } else
                day = today - DMARC_DAY_SEC;
        r = dmarc_report_day_format(day, day_str);
        if (r < 0)
                return EXIT_USAGE;

        if (!arg_receiver) {
                char buf[256] = "";

                if (gethostname(buf, sizeof(buf) - 1) < 0 || isempty(buf)) {
                        log_error("Cannot determine the host name; use --receiver=.");
                        return EXIT_USAGE;
                }
                hostname = strdup(buf);
                if (!hostname)
                        return log_oom(), EXIT_ERROR;
                arg_receiver = hostname;
        }
        if (!arg_org_email) {
                if (asprintf_safe(&email, "postmaster@%s", arg_receiver) < 0)
                        return log_oom(), EXIT_ERROR;
                arg_org_email = email;
        }
        DmarcReportMeta meta = {
                .org_name = arg_org_name ?: arg_receiver,
                .email = arg_org_email,
                .extra_contact_info = arg_extra_contact,
                .receiver = arg_receiver,
        };

        r = dmarc_store_read_day(arg_state_dir, day, &entries, &n, &skipped);
        if (r == -ENOENT) {
                log_info("No DMARC evaluations recorded for %s, nothing to report.", day_str);
                return EXIT_OK;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to read the DMARC store of %s in %s: %m", day_str, arg_state_dir);
                return EXIT_ERROR;
        }
        if (skipped > 0)
                log_warning("Skipped %u damaged line(s) in the DMARC store of %s, ignoring.", skipped, day_str);

        r = dmarc_report_build(entries, n, day, &meta, &reports, &n_reports);
        dmarc_report_entries_free(entries, n);
        if (r == -EINVAL) {
                log_error("Invalid receiver '%s' (a domain name is expected) or empty org name/email.",
                          arg_receiver);
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to build the DMARC reports of %s: %m", day_str);
                return EXIT_ERROR;
        }

        if (n_reports > 0) {
                if (mkdir(arg_output_dir, 0750) < 0 && errno != EEXIST) {
                        log_error_errno(-errno, "Failed to create %s: %m", arg_output_dir);
                        dmarc_reports_free(reports, n_reports);
                        return EXIT_ERROR;
                }
                out_fd = open(arg_output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (out_fd < 0) {
                        log_error_errno(-errno, "Failed to open %s: %m", arg_output_dir);
                        dmarc_reports_free(reports, n_reports);
                        return EXIT_ERROR;
                }
        }

        for (size_t i = 0; i < n_reports; i++) {
                r = dmarc_report_write_gz(&reports[i], out_fd);
                if (r < 0) {
                        log_error_errno(r, "Failed to write %s/%s: %m", arg_output_dir, reports[i].file_name);
                        ret = EXIT_ERROR;
                } else if (r == 0) {
                        log_debug("%s exists already, not rewritten.", reports[i].file_name);
                        existing++;
                } else {
                        log_info("Wrote %s/%s (%zu rows, %llu messages).", arg_output_dir,
                                 reports[i].file_name, reports[i].n_rows,
                                 (unsigned long long) reports[i].n_messages);
                        written++;
                }
        }
        log_info("DMARC reports of %s: %u written, %u present already, %zu evaluations read.",
                 day_str, written, existing, n);
        dmarc_reports_free(reports, n_reports);
        return ret;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
