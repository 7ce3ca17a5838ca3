/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A small client of ch.webtrend.Mailsec.Auth1 for the integration suite: busctl cannot
 * pass sealed memfds, this can.
 *
 *   authd-client [--unsealed] [--flags=N] verify FILE [KEY=VALUE...]
 *   authd-client [--unsealed] [--flags=N] sign FILE DOMAIN
 *   authd-client [--unsealed] [--flags=N] seal FILE AUTHENTICATION-RESULTS
 *
 * FILE is copied into a memfd, sealed (unless --unsealed) and passed as the message.
 * verify prints "dkim DOMAIN SELECTOR RESULT REASON" per signature, then "dmarc RESULT
 * POLICY DISPOSITION", "arc RESULT" and "ar VALUE" (CRLF shown as \r\n); sign and seal
 * print the returned fields as they are. A bus error prints "error NAME: MESSAGE" and
 * exits with 2. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

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

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "unsealed", no_argument,       NULL, 'u' },
                { "flags",    required_argument, NULL, 'f' },
                {}
        };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus *bus = NULL;
        uint64_t flags = 0;
        int seal = 1, c, fd, r;
        const char *cmd;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'u':
                        seal = 0;
                        break;
                case 'f':
                        flags = strtoull(optarg, NULL, 0);
                        break;
                default:
                        return 3;
                }
        if (argc - optind < 2) {
                fprintf(stderr, "usage: %s [--unsealed] [--flags=N] verify|sign|seal FILE ...\n", argv[0]);
                return 3;
        }
        cmd = argv[optind];

        fd = message_fd(argv[optind + 1], seal);
        if (fd < 0) {
                fprintf(stderr, "%s: %s\n", argv[optind + 1], strerror(-fd));
                return 3;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "bus: %s\n", strerror(-r));
                return 3;
        }

        if (strcmp(cmd, "verify") == 0) {
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, "VerifyMessage");
                if (r >= 0)
                        r = sd_bus_message_append(m, "h", fd);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{sv}");
                for (int i = optind + 2; r >= 0 && i < argc; i++) {
                        char *eq = strchr(argv[i], '=');

                        if (!eq)
                                return 3;
                        *eq = 0;
                        r = sd_bus_message_append(m, "{sv}", argv[i], "s", eq + 1);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        } else if (strcmp(cmd, "sign") == 0 || strcmp(cmd, "seal") == 0) {
                if (argc - optind < 3)
                        return 3;
                r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE,
                                                   strcmp(cmd, "sign") == 0 ? "SignMessage" : "SealArc");
                if (r >= 0)
                        r = sd_bus_message_append(m, "hs", fd, argv[optind + 2]);
        } else
                return 3;
        if (r >= 0)
                r = sd_bus_message_append(m, "t", flags);
        if (r < 0) {
                fprintf(stderr, "message: %s\n", strerror(-r));
                return 3;
        }

        r = sd_bus_call(bus, m, 30 * 1000000ULL, &error, &reply);
        if (r < 0) {
                printf("error %s: %s\n", error.name ?: "?", error.message ?: strerror(-r));
                return 2;
        }

        if (strcmp(cmd, "verify") == 0) {
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
        } else {
                const char *s;

                r = sd_bus_message_read(reply, "s", &s);
                if (r < 0)
                        return 3;
                fputs(s, stdout);
        }
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        close(fd);
        return 0;
}
