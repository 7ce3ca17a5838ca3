/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A small client of ch.webtrend.Mailsec.Auth1 for the integration suite: busctl cannot
 * pass sealed memfds, this can.
 *
 *   authd-client [OPTIONS] verify FILE [KEY=VALUE...]
 *   authd-client [OPTIONS] sign FILE DOMAIN
 *   authd-client [OPTIONS] seal FILE AUTHENTICATION-RESULTS
 *   authd-client [OPTIONS] spf CLIENT-IP HELO MAIL-FROM
 *
 * FILE is copied into a memfd, sealed (unless --unsealed) and passed as the message.
 * verify prints "dkim DOMAIN SELECTOR RESULT REASON" per signature, then "dmarc RESULT
 * POLICY DISPOSITION", "arc RESULT" and "ar VALUE" (CRLF shown as \r\n); spf prints
 * "spf RESULT"; sign and seal print the returned fields as they are. A bus error prints
 * "error NAME: MESSAGE" and exits with 2.
 *
 * Options:
 *   --unsealed      pass the memfd without seals
 *   --flags=N       the flags argument (default 0)
 *   --parallel=N    send N identical calls at once on one connection, in order, then
 *                   wait for all; each answer is printed as "call I (T ms): ..." in the
 *                   order the answers arrive; exits with 2 if any call failed
 *   --no-wait       send the call(s) and leave the bus at once, without the answer
 *   --leave-after=MS  like --no-wait, but stay on the bus MS milliseconds first
 *   --timeout=SEC   how long to wait for the answers (default 30) */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#define NAME "ch.webtrend.Mailsec.Auth1"
#define PATH "/ch/webtrend/Mailsec/Auth1"
#define IFACE NAME ".Manager"

static int message_fd(const char *path, int seal) {
        char buf[65536];
        ssize_t n;
        int in, fd;

        in = open(path, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -errno;
        fd = memfd_create("authd-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
                close(in);
                return -errno;
        }
        while ((n = read(in, buf, sizeof(buf))) > 0)
                if (write(fd, buf, (size_t) n) != n) {
                        close(in);
                        close(fd);
                        return -EIO;
                }
        close(in);
        if (n < 0 || (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)) {
                close(fd);
                return -EIO;
        }
        return fd;
}

static void print_escaped(const char *s) {
        for (; *s; s++)
                if (*s == '\r')
                        fputs("\\r", stdout);
                else if (*s == '\n')
                        fputs("\\n", stdout);
                else
                        putchar(*s);
}

typedef struct Call {
        unsigned index;
        uint64_t start;
        sd_bus_slot *slot;
        bool done, failed;
} Call;

static const char *arg_cmd = NULL;
static unsigned arg_parallel = 1;
static int arg_no_wait = 0;
static unsigned arg_leave_after_ms = 0;
static uint64_t arg_timeout_usec = 30 * 1000000ULL;
static unsigned n_waiting = 0;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* Prints the reply (or error) of one call; 0 on success, 2 for a bus error, 3 for a bad reply. */
static int print_reply(sd_bus_message *reply) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int r;

        if (e) {
                printf("error %s: %s\n", e->name ?: "?", e->message ?: "");
                return 2;
        }
        if (strcmp(arg_cmd, "verify") == 0) {
                const char *d, *s, *res, *reason, *dmarc, *policy, *dis, *arc, *ar;

                r = sd_bus_message_enter_container(reply, 'a', "(ssss)");
                while (r >= 0 && (r = sd_bus_message_read(reply, "(ssss)", &d, &s, &res, &reason)) > 0)
                        printf("dkim %s %s %s %s\n", d, s, res, reason);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "sssss", &dmarc, &policy, &dis, &arc, &ar);
                if (r < 0) {
                        fprintf(stderr, "reply: %s\n", strerror(-r));
                        return 3;
                }
                printf("dmarc %s %s %s\narc %s\nar ", dmarc, policy, dis, arc);
                print_escaped(ar);
                putchar('\n');
        } else if (strcmp(arg_cmd, "spf") == 0) {
                const char *result, *explanation, *received;

                r = sd_bus_message_read(reply, "sss", &result, &explanation, &received);
                if (r < 0) {
                        fprintf(stderr, "reply: %s\n", strerror(-r));
                        return 3;
                }
                printf("spf %s\n", result);
        } else {
                const char *s;

                r = sd_bus_message_read(reply, "s", &s);
                if (r < 0)
                        return 3;
                fputs(s, stdout);
        }
        return 0;
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;

        printf("call %u (%llu ms): ", c->index, (unsigned long long) ((now_usec() - c->start) / 1000));
        c->failed = print_reply(reply) != 0;
        c->done = true;
        n_waiting--;
        fflush(stdout);
        return 0;
}

/* The method call for arg_cmd with args (after FILE for the fd commands). */
static int build_call(sd_bus *bus, int fd, char **args, int n_args, uint64_t flags, sd_bus_message **ret) {
        sd_bus_message *m = NULL;
        int r;

        if (strcmp(arg_cmd, "verify") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "VerifyMessage");
                if (r >= 0)
                        r = sd_bus_message_append(m, "h", fd);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{sv}");
                for (int i = 0; r >= 0 && i < n_args; i++) {
                        const char *eq = strchr(args[i], '=');
                        char key[256];

                        if (!eq || (size_t) (eq - args[i]) >= sizeof key) {
                                r = -EINVAL;
                                break;
                        }
                        memcpy(key, args[i], (size_t) (eq - args[i]));
                        key[eq - args[i]] = 0;
                        r = sd_bus_message_append(m, "{sv}", key, "s", eq + 1);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        } else if (strcmp(arg_cmd, "sign") == 0 || strcmp(arg_cmd, "seal") == 0) {
                if (n_args < 1)
                        return -EINVAL;
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE,
                                                   strcmp(arg_cmd, "sign") == 0 ? "SignMessage" : "SealArc");
                if (r >= 0)
                        r = sd_bus_message_append(m, "hs", fd, args[0]);
        } else if (strcmp(arg_cmd, "spf") == 0) {
                if (n_args < 3)
                        return -EINVAL;
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "CheckSpf");
                if (r >= 0)
                        r = sd_bus_message_append(m, "sss", args[0], args[1], args[2]);
        } else
                return -EINVAL;
        if (r >= 0)
                r = sd_bus_message_append(m, "t", flags);
        if (r < 0) {
                sd_bus_message_unref(m);
                return r;
        }
        *ret = m;
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "unsealed", no_argument,       NULL, 'u' },
                { "flags",    required_argument, NULL, 'f' },
                { "parallel", required_argument, NULL, 'p' },
                { "no-wait",  no_argument,       NULL, 'n' },
                { "timeout",  required_argument, NULL, 't' },
                { "leave-after", required_argument, NULL, 'l' },
                {}
        };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_event *event = NULL;
        sd_bus *bus = NULL;
        Call *calls = NULL;
        uint64_t flags = 0, end;
        int seal = 1, c, fd = -1, r, n_args, ret = 0;
        char **args;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'u':
                        seal = 0;
                        break;
                case 'f':
                        flags = strtoull(optarg, NULL, 0);
                        break;
                case 'p':
                        arg_parallel = (unsigned) strtoul(optarg, NULL, 10);
                        if (arg_parallel < 1 || arg_parallel > 1000)
                                return 3;
                        break;
                case 'n':
                        arg_no_wait = 1;
                        break;
                case 'l':
                        arg_no_wait = 1;
                        arg_leave_after_ms = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 't':
                        arg_timeout_usec = strtoull(optarg, NULL, 10) * 1000000ULL;
                        if (arg_timeout_usec == 0)
                                return 3;
                        break;
                default:
                        return 3;
                }
        if (argc - optind < 2) {
                fprintf(stderr, "usage: %s [OPTIONS] verify|sign|seal FILE ... | spf IP HELO FROM\n", argv[0]);
                return 3;
        }
        arg_cmd = argv[optind];

        if (strcmp(arg_cmd, "spf") == 0) {
                args = argv + optind + 1;
                n_args = argc - optind - 1;
        } else {
                fd = message_fd(argv[optind + 1], seal);
                if (fd < 0) {
                        fprintf(stderr, "%s: %s\n", argv[optind + 1], strerror(-fd));
                        return 3;
                }
                args = argv + optind + 2;
                n_args = argc - optind - 2;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "bus: %s\n", strerror(-r));
                return 3;
        }

        if (arg_no_wait) {
                /* the calls go out, then the connection closes: the caller is gone */
                for (unsigned i = 0; i < arg_parallel; i++) {
                        r = build_call(bus, fd, args, n_args, flags, &m);
                        if (r >= 0)
                                r = sd_bus_send(bus, m, NULL);
                        m = sd_bus_message_unref(m);
                        if (r < 0) {
                                fprintf(stderr, "send: %s\n", strerror(-r));
                                return 3;
                        }
                }
                r = sd_bus_flush(bus);
                if (r < 0) {
                        fprintf(stderr, "flush: %s\n", strerror(-r));
                        return 3;
                }
                if (arg_leave_after_ms > 0)
                        (void) usleep(arg_leave_after_ms * 1000U);
                printf("sent\n");
                sd_bus_close_unref(bus);
                if (fd >= 0)
                        close(fd);
                return 0;
        }

        if (arg_parallel == 1) {
                r = build_call(bus, fd, args, n_args, flags, &m);
                if (r < 0) {
                        fprintf(stderr, "message: %s\n", strerror(-r));
                        return 3;
                }
                r = sd_bus_call(bus, m, arg_timeout_usec, &error, &reply);
                if (r < 0) {
                        printf("error %s: %s\n", error.name ?: "?", error.message ?: strerror(-r));
                        return 2;
                }
                ret = print_reply(reply);
                goto finish;
        }

        r = sd_event_new(&event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                fprintf(stderr, "event: %s\n", strerror(-r));
                return 3;
        }
        calls = calloc(arg_parallel, sizeof(Call));
        if (!calls)
                return 3;
        for (unsigned i = 0; i < arg_parallel; i++) {
                r = build_call(bus, fd, args, n_args, flags, &m);
                if (r < 0) {
                        fprintf(stderr, "message: %s\n", strerror(-r));
                        return 3;
                }
                calls[i] = (Call) { .index = i + 1, .start = now_usec() };
                r = sd_bus_call_async(bus, &calls[i].slot, m, on_reply, calls + i, arg_timeout_usec);
                m = sd_bus_message_unref(m);
                if (r < 0) {
                        fprintf(stderr, "send: %s\n", strerror(-r));
                        return 3;
                }
                n_waiting++;
        }
        end = now_usec() + arg_timeout_usec + 1000000ULL;
        while (n_waiting > 0 && now_usec() < end)
                if (sd_event_run(event, 100000) < 0)
                        break;
        for (unsigned i = 0; i < arg_parallel; i++) {
                if (!calls[i].done)
                        printf("call %u: no answer\n", calls[i].index);
                if (!calls[i].done || calls[i].failed)
                        ret = 2;
                sd_bus_slot_unref(calls[i].slot);
        }
        free(calls);

finish:
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        sd_bus_error_free(&error);
        sd_bus_flush_close_unref(bus);
        sd_event_unref(event);
        if (fd >= 0)
                close(fd);
        return ret;
}
