/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mailsecctl - administer the mailsec services over D-Bus.
 *
 * PURPOSE
 *      Shows which mailsec services are running or activatable on a bus, the
 *      statistics and open sessions of mailsec-proxyd, and asks it to reload.
 *      Runs the authentication checks (SPF, DKIM, ARC, DMARC) of libauthd on
 *      the command line (mailsecctl-auth.c) and manages DKIM keys
 *      (mailsecctl-dkim.c); those verbs use DNS, not the bus. See mailsecctl(8).
 *
 * SECURITY
 *      A plain bus client. It trusts the bus for the identity of the services
 *      (only their own users may own the names, by bus policy) and prints what
 *      they return after escaping it for the terminal or for JSON. Whether a
 *      caller may list sessions or reload is decided by the bus policy and the
 *      service, not here.
 *
 * BUS
 *      Calls ch.webtrend.Mailsec.<Svc>1 on /ch/webtrend/Mailsec/<Svc>1, the system bus by
 *      default ($DBUS_SYSTEM_BUS_ADDRESS is honoured), or the user bus (--user),
 *      or the system bus of another host over ssh (--host=).
 *
 * EXIT STATUS
 *      0 success, 1 the call failed, 2 usage error, 3 the service is not running.
 *      auth: 0 when the check was carried out (the verdict is in the output, even
 *      temperror), 1 when it could not be. dkim rotate: 0 only when the new key is
 *      visible in DNS.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "config.h"
#include "macro.h"
#include "mailsecctl.h"
#include "string-util.h"

#define PROXY_NAME BUS_PREFIX ".Proxy1"
#define PROXY_PATH BUS_PATH_PREFIX "/Proxy1"
#define PROXY_IFACE BUS_PREFIX ".Proxy1.Manager"

/* Longest bus name we construct an object path from (bus names are at most 255). */
#define NAME_MAX_LEN 255

typedef enum BusKind {
        BUS_SYSTEM,
        BUS_USER,
        BUS_REMOTE,
} BusKind;

bool arg_json = false;
static BusKind arg_bus = BUS_SYSTEM;
static const char *arg_host = NULL;

/* sd-bus.h provides sd_bus_flush_close_unrefp() and sd_bus_message_unrefp(). */
#define _cleanup_bus_error_ _cleanup_(sd_bus_error_free)

/* ---- output helpers ---------------------------------------------------------------------- */

static const char* format_age(char *buf, size_t size, uint64_t started_usec) {
        struct timespec ts;
        uint64_t now, age;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || started_usec == 0)
                return "-";
        now = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
        age = now > started_usec ? (now - started_usec) / 1000000ULL : 0;
        if (age < 60)
                snprintf(buf, size, "%" PRIu64 "s", age);
        else if (age < 3600)
                snprintf(buf, size, "%" PRIu64 "min %" PRIu64 "s", age / 60, age % 60);
        else if (age < 86400)
                snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "min", age / 3600, age % 3600 / 60);
        else
                snprintf(buf, size, "%" PRIu64 "d %" PRIu64 "h", age / 86400, age % 86400 / 3600);
        return buf;
}

/* ---- bus helpers ------------------------------------------------------------------------- */

int ctl_bus_connect(sd_bus **ret) {
        int r;

        switch (arg_bus) {
        case BUS_USER:
                r = sd_bus_open_user_with_description(ret, "mailsecctl");
                break;
        case BUS_REMOTE:
                r = sd_bus_open_system_remote(ret, arg_host);
                break;
        default:
                r = sd_bus_open_system_with_description(ret, "mailsecctl");
        }
        if (r < 0)
                fprintf(stderr, "Failed to connect to the %s bus: %s\n",
                        arg_bus == BUS_USER ? "user" : "system", strerror(-r));
        return r;
}

static bool bus_error_is_not_running(const sd_bus_error *e) {
        return sd_bus_error_has_names(e,
                                      SD_BUS_ERROR_SERVICE_UNKNOWN,
                                      SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      "org.freedesktop.systemd1.NoSuchUnit");
}

/* Maps a failed call to an exit status and says why. */
int ctl_call_failed(const char *what, const sd_bus_error *e, int r) {
        if (bus_error_is_not_running(e)) {
                fprintf(stderr, "%s: the service is not running.\n", what);
                return EXIT_NOT_RUNNING;
        }
        fprintf(stderr, "%s failed: %s\n", what, e && e->message ? e->message : strerror(-r));
        return EXIT_CALL_FAILED;
}

/* Is the name owned right now? Does not start anything. */
static int name_has_owner(sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int has, r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "NameHasOwner", &error, &reply, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "b", &has);
        if (r < 0)
                return r;
        return has;
}

/* Collects the names from ListNames or ListActivatableNames that belong to mailsec. */
static int list_mailsec_names(sd_bus *bus, const char *method, char ***names, size_t *n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name;
        int r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", method, &error, &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "s", &name)) > 0) {
                bool dup = false;
                char **l;

                if (strncmp(name, BUS_PREFIX ".", STRLEN(BUS_PREFIX ".")) != 0 ||
                    strlen(name) > NAME_MAX_LEN)
                        continue;
                for (size_t i = 0; i < *n; i++)
                        if (strcmp((*names)[i], name) == 0)
                                dup = true;
                if (dup)
                        continue;
                l = realloc(*names, (*n + 2) * sizeof(char*));
                if (!l)
                        return -ENOMEM;
                *names = l;
                l[*n] = strdup(name);
                if (!l[*n])
                        return -ENOMEM;
                l[++*n] = NULL;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char* const*) a, *(char* const*) b);
}

/* "ch.webtrend.Mailsec.Proxy1" -> "/ch/webtrend/Mailsec/Proxy1" */
static void name_to_path(const char *name, char *buf, size_t size) {
        size_t i = 0;

        buf[i++] = '/';
        for (const char *p = name; *p && i + 1 < size; p++)
                buf[i++] = *p == '.' ? '/' : *p;
        buf[i] = '\0';
}

/* Prints one basic value from a variant; containers are printed as "…"/null. */
static int print_variant(FILE *f, sd_bus_message *m) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;

        switch (contents[0] == '\0' || contents[1] != '\0' ? 0 : contents[0]) {
        case 's':
        case 'o':
        case 'g': {
                const char *s;

                r = sd_bus_message_read_basic(m, contents[0], &s);
                if (r < 0)
                        return r;
                if (arg_json)
                        json_string(f, s);
                else
                        text_string(f, s, 0);
                break;
        }
        case 'b': {
                int b;

                r = sd_bus_message_read_basic(m, 'b', &b);
                if (r < 0)
                        return r;
                fputs(b ? (arg_json ? "true" : "yes") : (arg_json ? "false" : "no"), f);
                break;
        }
        case 'y': {
                uint8_t v;

                r = sd_bus_message_read_basic(m, 'y', &v);
                if (r < 0)
                        return r;
                fprintf(f, "%u", v);
                break;
        }
        case 'n': {
                int16_t v;

                r = sd_bus_message_read_basic(m, 'n', &v);
                if (r < 0)
                        return r;
                fprintf(f, "%d", v);
                break;
        }
        case 'q': {
                uint16_t v;

                r = sd_bus_message_read_basic(m, 'q', &v);
                if (r < 0)
                        return r;
                fprintf(f, "%u", v);
                break;
        }
        case 'i': {
                int32_t v;

                r = sd_bus_message_read_basic(m, 'i', &v);
                if (r < 0)
                        return r;
                fprintf(f, "%" PRIi32, v);
                break;
        }
        case 'u': {
                uint32_t v;

                r = sd_bus_message_read_basic(m, 'u', &v);
                if (r < 0)
                        return r;
                fprintf(f, "%" PRIu32, v);
                break;
        }
        case 'x': {
                int64_t v;

                r = sd_bus_message_read_basic(m, 'x', &v);
                if (r < 0)
                        return r;
                fprintf(f, "%" PRIi64, v);
                break;
        }
        case 't': {
                uint64_t v;

                r = sd_bus_message_read_basic(m, 't', &v);
                if (r < 0)
                        return r;
                fprintf(f, "%" PRIu64, v);
                break;
        }
        case 'd': {
                double v;

                r = sd_bus_message_read_basic(m, 'd', &v);
                if (r < 0)
                        return r;
                fprintf(f, "%.17g", v);
                break;
        }
        default:
                r = sd_bus_message_skip(m, contents);
                if (r < 0)
                        return r;
                fputs(arg_json ? "null" : "[" , f);
                if (!arg_json) {
                        text_string(f, contents, 0);
                        fputc(']', f);
                }
        }
        return sd_bus_message_exit_container(m);
}

/* Reads one basic property into a uint64_t (for the status summary). */
static int get_property_u64(sd_bus *bus, const char *prop, char type, uint64_t *ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t u;
        int r;

        if (type == 'u') {
                r = sd_bus_get_property_trivial(bus, PROXY_NAME, PROXY_PATH, PROXY_IFACE, prop,
                                                &error, 'u', &u);
                if (r >= 0)
                        *ret = u;
                return r;
        }
        return sd_bus_get_property_trivial(bus, PROXY_NAME, PROXY_PATH, PROXY_IFACE, prop,
                                           &error, 't', ret);
}

/* ---- verbs ------------------------------------------------------------------------------- */

static int verb_status(sd_bus *bus) {
        static const struct {
                const char *property;
                char type;
                const char *label;
        } summary[] = {
                { "SessionsActive",     'u', "sessions active" },
                { "SessionsTotal",      't', "sessions since start" },
                { "SessionsRefused",    't', "sessions refused" },
                { "TlsSessions",        't', "sessions with TLS" },
                { "MessagesRelayed",    't', "messages relayed" },
                { "MessagesRejected",   't', "messages rejected" },
                { "MessagesTempFailed", 't', "messages temp-failed" },
                { "BackendFailures",    't', "backend failures" },
        };
        char **names = NULL;
        size_t n_names = 0, n_running = 0;
        bool proxy_running = false;
        uint64_t values[ELEMENTSOF(summary)] = {};
        bool have_values = true;
        int r, ret = 0;

        r = list_mailsec_names(bus, "ListNames", &names, &n_names);
        if (r >= 0)
                r = list_mailsec_names(bus, "ListActivatableNames", &names, &n_names);
        if (r < 0) {
                fprintf(stderr, "Failed to list the names on the bus: %s\n", strerror(-r));
                ret = EXIT_CALL_FAILED;
                goto finish;
        }
        if (n_names > 0)
                qsort(names, n_names, sizeof(char*), compare_strings);

        if (arg_json)
                fputs("{\"services\":[", stdout);
        else if (n_names > 0)
                printf("%-36s %-12s %s\n", "SERVICE", "STATE", "VERSION");

        for (size_t i = 0; i < n_names; i++) {
                _cleanup_free_ char *version = NULL;
                char path[NAME_MAX_LEN + 2], iface[NAME_MAX_LEN + 16];
                bool running;

                r = name_has_owner(bus, names[i]);
                if (r < 0) {
                        fprintf(stderr, "Failed to look up %s: %s\n", names[i], strerror(-r));
                        ret = EXIT_CALL_FAILED;
                        goto finish;
                }
                running = r > 0;
                if (running) {
                        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;

                        n_running++;
                        if (strcmp(names[i], PROXY_NAME) == 0)
                                proxy_running = true;
                        name_to_path(names[i], path, sizeof(path));
                        snprintf(iface, sizeof(iface), "%s.Manager", names[i]);
                        /* A service without a Version property is still listed. */
                        (void) sd_bus_get_property_string(bus, names[i], path, iface, "Version",
                                                          &error, &version);
                }

                if (arg_json) {
                        fputs(i > 0 ? ",{\"name\":" : "{\"name\":", stdout);
                        json_string(stdout, names[i]);
                        printf(",\"state\":\"%s\",\"version\":", running ? "running" : "activatable");
                        if (version)
                                json_string(stdout, version);
                        else
                                fputs("null", stdout);
                        fputc('}', stdout);
                } else {
                        text_string(stdout, names[i], 36);
                        printf(" %-12s ", running ? "running" : "activatable");
                        text_string(stdout, version ?: "-", 0);
                        fputc('\n', stdout);
                }
        }

        if (proxy_running)
                for (size_t i = 0; i < ELEMENTSOF(summary); i++)
                        if (get_property_u64(bus, summary[i].property, summary[i].type, &values[i]) < 0)
                                have_values = false;

        if (arg_json) {
                fputs("],\"proxy\":", stdout);
                if (proxy_running && have_values) {
                        for (size_t i = 0; i < ELEMENTSOF(summary); i++)
                                printf("%s\"%s\":%" PRIu64, i == 0 ? "{" : ",",
                                       summary[i].property, values[i]);
                        fputc('}', stdout);
                } else
                        fputs("null", stdout);
                fputs("}\n", stdout);
        } else {
                if (n_names == 0)
                        printf("No mailsec service is running or activatable on this bus.\n");
                if (proxy_running && have_values) {
                        printf("\nProxy:\n");
                        for (size_t i = 0; i < ELEMENTSOF(summary); i++)
                                printf("  %-22s %" PRIu64 "\n", summary[i].label, values[i]);
                } else if (proxy_running)
                        printf("\nProxy: statistics not available.\n");
        }

        if (n_running == 0)
                ret = EXIT_NOT_RUNNING;
finish:
        for (size_t i = 0; i < n_names; i++)
                free(names[i]);
        free(names);
        return ret;
}

static int verb_proxy_stats(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name;
        bool first = true;
        int r;

        r = sd_bus_call_method(bus, PROXY_NAME, PROXY_PATH, "org.freedesktop.DBus.Properties",
                               "GetAll", &error, &reply, "s", PROXY_IFACE);
        if (r < 0)
                return ctl_call_failed("Reading the proxy statistics", &error, r);

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                goto bad_reply;
        if (arg_json)
                fputc('{', stdout);
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        goto bad_reply;
                if (arg_json) {
                        if (!first)
                                fputc(',', stdout);
                        json_string(stdout, name);
                        fputc(':', stdout);
                } else {
                        text_string(stdout, name, 20);
                        fputc(' ', stdout);
                }
                first = false;
                r = print_variant(stdout, reply);
                if (r < 0)
                        goto bad_reply;
                if (!arg_json)
                        fputc('\n', stdout);
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        goto bad_reply;
        }
        if (r < 0)
                goto bad_reply;
        if (arg_json)
                fputs("}\n", stdout);
        return 0;

bad_reply:
        fprintf(stderr, "Unexpected reply from %s: %s\n", PROXY_NAME, strerror(-r));
        return EXIT_CALL_FAILED;
}

static int verb_proxy_sessions(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *client, *helo, *state, *tls;
        uint64_t id, started;
        uint32_t messages;
        unsigned n = 0;
        int r;

        r = sd_bus_call_method(bus, PROXY_NAME, PROXY_PATH, PROXY_IFACE, "ListSessions",
                               &error, &reply, NULL);
        if (r < 0)
                return ctl_call_failed("Listing the proxy sessions", &error, r);

        r = sd_bus_message_enter_container(reply, 'a', "(tssssut)");
        if (r < 0)
                goto bad_reply;
        if (arg_json)
                fputc('[', stdout);
        /* The signature is the contract: after the four strings come the message
         * count (u) and the start time (t). */
        while ((r = sd_bus_message_read(reply, "(tssssut)", &id, &client, &helo, &state, &tls,
                                        &messages, &started)) > 0) {
                char age[64];

                if (arg_json) {
                        printf("%s{\"id\":%" PRIu64 ",\"client\":", n > 0 ? "," : "", id);
                        json_string(stdout, client);
                        fputs(",\"helo\":", stdout);
                        json_string(stdout, helo);
                        fputs(",\"state\":", stdout);
                        json_string(stdout, state);
                        fputs(",\"tls\":", stdout);
                        json_string(stdout, tls);
                        printf(",\"started\":%" PRIu64 ",\"messages\":%" PRIu32 "}", started, messages);
                } else {
                        if (n == 0)
                                printf("%-10s %-26s %-24s %-9s %-30s %-12s %s\n",
                                       "ID", "CLIENT", "HELO", "STATE", "TLS", "AGE", "MSGS");
                        printf("%-10" PRIu64 " ", id);
                        text_string(stdout, client, 26);
                        fputc(' ', stdout);
                        text_string(stdout, helo[0] ? helo : "-", 24);
                        fputc(' ', stdout);
                        text_string(stdout, state, 9);
                        fputc(' ', stdout);
                        text_string(stdout, tls[0] ? tls : "-", 30);
                        printf(" %-12s %" PRIu32 "\n", format_age(age, sizeof(age), started), messages);
                }
                n++;
        }
        if (r < 0)
                goto bad_reply;
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                goto bad_reply;
        if (arg_json)
                fputs("]\n", stdout);
        else
                printf("%s%u session%s.\n", n > 0 ? "\n" : "", n, n == 1 ? "" : "s");
        return 0;

bad_reply:
        fprintf(stderr, "Unexpected reply from %s: %s\n", PROXY_NAME, strerror(-r));
        return EXIT_CALL_FAILED;
}

static int verb_proxy_reload(sd_bus *bus) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, PROXY_NAME, PROXY_PATH, PROXY_IFACE, "Reload", &error, NULL, NULL);
        if (r < 0)
                return ctl_call_failed("Reloading the proxy", &error, r);
        if (arg_json)
                fputs("{\"reloaded\":true}\n", stdout);
        return 0;
}

/* ---- command line ------------------------------------------------------------------------ */

static void help(void) {
        printf("mailsecctl [OPTIONS...] COMMAND\n\n"
               "Administer the mailsec services.\n\n"
               "Commands:\n"
               "  status            Show the mailsec services on the bus and a proxy summary\n"
               "  proxy stats       Show all statistics of mailsec-proxyd\n"
               "  proxy sessions    List the open SMTP sessions\n"
               "  proxy reload      Make mailsec-proxyd read its configuration again\n"
               "  auth spf --ip ADDR --helo NAME [--mail-from ADDR]\n"
               "                    Evaluate SPF for a client\n"
               "  auth verify FILE|- [--ip ADDR --helo NAME --mail-from ADDR]\n"
               "                    Check DKIM, ARC, DMARC (and SPF) of a message\n"
               "  auth dmarc DOMAIN Find and parse the DMARC policy of a domain\n"
               "  dkim keygen --domain D --selector S --output DIR [--algorithm rsa|ed25519]\n"
               "                    Generate a DKIM key and print its DNS record\n"
               "  dkim record --key FILE --domain D --selector S\n"
               "                    Print the DNS record of an existing key\n"
               "  dkim rotate --domain D --new-selector S --key FILE [--wait SEC]\n"
               "              [--config-dir DIR] [--key-dir DIR] [--no-switch] [--no-restart]\n"
               "                    Once the new key is published, switch mailsec-authd to it\n"
               "  (auth and dkim rotate take --resolver ADDR[:PORT]; see mailsecctl(8))\n"
               "  spam classify FILE|- [--client-ip IP] [--domain D] [--top N] [--autolearn]\n"
               "                    Score a message with mailsec-spamd\n"
               "  spam explain FILE|-\n"
               "                    Show which tokens moved the score\n"
               "  spam report spam|ham FILE|DIR...|- [--mbox] [--domain D] [--reporter R]\n"
               "                    Report messages (as the calling user)\n"
               "  spam learn spam|ham FILE|DIR...|- [--mbox] [--domain D]\n"
               "                    Train the filter (group mailsec); a DIR's files, or a\n"
               "                    Maildir's cur/ and new/; with --mbox FILEs are mailboxes\n"
               "  spam forget DIGEST|FILE|DIR... [--mbox]\n"
               "                    Take learned messages out of the statistics\n"
               "  spam stats        Show the spam filter's statistics\n"
               "  spam rebuild      Recompute the counts from the training journal\n"
               "  spam compact      Rewrite the training journal with only what is in force\n"
               "  spam reset --yes  Forget everything the filter learned\n\n"
               "Options:\n"
               "  -h --help         Show this help\n"
               "     --version      Show the version\n"
               "     --json         Print JSON\n"
               "     --system       Talk to the system bus (default)\n"
               "     --user         Talk to the user bus\n"
               "  -H --host=[USER@]HOST\n"
               "                    Talk to the system bus of a remote host over ssh\n\n"
               "Exit status: 0 success, 1 the call failed, 2 usage error, 3 service not running.\n"
               "See mailsecctl(8).\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_SYSTEM,
                ARG_USER,
        };
        static const struct option options[] = {
                { "help",    no_argument,       NULL, 'h'         },
                { "version", no_argument,       NULL, ARG_VERSION },
                { "json",    no_argument,       NULL, ARG_JSON    },
                { "system",  no_argument,       NULL, ARG_SYSTEM  },
                { "user",    no_argument,       NULL, ARG_USER    },
                { "host",    required_argument, NULL, 'H'         },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "+hH:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("%s %s\n", PROJECT_NAME, PROJECT_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_SYSTEM:
                        arg_bus = BUS_SYSTEM;
                        break;
                case ARG_USER:
                        arg_bus = BUS_USER;
                        break;
                case 'H':
                        if (optarg[0] == '\0') {
                                fprintf(stderr, "--host= needs a host name.\n");
                                return -EINVAL;
                        }
                        arg_bus = BUS_REMOTE;
                        arg_host = optarg;
                        break;
                default:
                        /* getopt_long() has said what is wrong. */
                        return -EINVAL;
                }
        return 1;
}

int main(int argc, char *argv[]) {
        static const struct {
                const char *group;
                const char *verb;
                int (*run)(sd_bus *bus);
        } verbs[] = {
                { NULL,    "status",   verb_status         },
                { "proxy", "stats",    verb_proxy_stats    },
                { "proxy", "sessions", verb_proxy_sessions },
                { "proxy", "reload",   verb_proxy_reload   },
        };
        static const struct {
                const char *group;
                const char *verb;
                int (*run)(int argc, char *argv[]);
        } local_verbs[] = {
#if HAVE_AUTHD
                { "auth", "spf",    verb_auth_spf    },
                { "auth", "verify", verb_auth_verify },
                { "auth", "dmarc",  verb_auth_dmarc  },
                { "dkim", "keygen", verb_dkim_keygen },
                { "dkim", "record", verb_dkim_record },
                { "dkim", "rotate", verb_dkim_rotate },
#else
                { "", "", NULL },
#endif
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *group = NULL, *verb;
        int left, r;

        r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_USAGE;
        if (r == 0)
                return EXIT_SUCCESS;

        left = argc - optind;
        if (left == 0) {
                fprintf(stderr, "Missing command; see mailsecctl --help.\n");
                return EXIT_USAGE;
        }
        verb = argv[optind];
        if (streq(verb, "spam")) {
                if (left < 2) {
                        fprintf(stderr, "Usage: mailsecctl spam classify|explain|report|learn|forget|stats|rebuild|compact|reset ...\n");
                        return EXIT_USAGE;
                }
                r = verb_spam(left - 1, argv + optind + 1);
                if (fflush(stdout) != 0 || ferror(stdout)) {
                        fprintf(stderr, "Failed to write the output.\n");
                        return EXIT_CALL_FAILED;
                }
                return r;
        }
        if (streq(verb, "auth") || streq(verb, "dkim")) {
                /* Local verbs parse their own options; they need no bus. */
                if (left < 2) {
                        fprintf(stderr, "Usage: mailsecctl %s\n",
                                streq(verb, "auth") ? "auth spf|verify|dmarc ..." : "dkim keygen|record|rotate ...");
                        return EXIT_USAGE;
                }
                for (size_t i = 0; i < ELEMENTSOF(local_verbs); i++) {
                        if (!local_verbs[i].run || !streq(verb, local_verbs[i].group) || !streq(argv[optind + 1], local_verbs[i].verb))
                                continue;
                        r = local_verbs[i].run(left - 1, argv + optind + 1);
                        if (fflush(stdout) != 0 || ferror(stdout)) {
                                fprintf(stderr, "Failed to write the output.\n");
                                return EXIT_CALL_FAILED;
                        }
                        return r;
                }
                fprintf(stderr, "Unknown command '%s %s'; see mailsecctl --help.\n", verb, argv[optind + 1]);
                return EXIT_USAGE;
        }
        if (strcmp(verb, "proxy") == 0) {
                if (left != 2) {
                        fprintf(stderr, "Usage: mailsecctl proxy stats|sessions|reload\n");
                        return EXIT_USAGE;
                }
                group = verb;
                verb = argv[optind + 1];
        } else if (left != 1) {
                fprintf(stderr, "Too many arguments; see mailsecctl --help.\n");
                return EXIT_USAGE;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if ((verbs[i].group == NULL) != (group == NULL) ||
                    (group && strcmp(group, verbs[i].group) != 0) ||
                    strcmp(verb, verbs[i].verb) != 0)
                        continue;

                r = ctl_bus_connect(&bus);
                if (r < 0)
                        return EXIT_CALL_FAILED;
                r = verbs[i].run(bus);
                if (fflush(stdout) != 0 || ferror(stdout)) {
                        fprintf(stderr, "Failed to write the output.\n");
                        return EXIT_CALL_FAILED;
                }
                return r;
        }

        fprintf(stderr, "Unknown command '%s%s%s'; see mailsecctl --help.\n",
                group ?: "", group ? " " : "", verb);
        return EXIT_USAGE;
}
