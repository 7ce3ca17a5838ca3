/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mailsecctl spam classify|explain|report|learn|forget|stats|rebuild|compact|reset: talk to
 * mailsec-spamd (ch.webtrend.Mailsec.Spam1). A message is read from a file or stdin into
 * a sealed memfd, which is what the service takes.
 *
 *   classify FILE|-        score, verdict and the strongest tokens; --autolearn learns it
 *                          when the verdict is confident (root and mailsec-proxy)
 *   explain FILE|-         the same with up to 40 tokens, the direction each pushed
 *   report spam|ham FILE   a user's report (attributed to the caller's uid, or with
 *                          --reporter to someone else: root, mailsec-proxy and
 *                          TrustedReporters= only, e.g. Dovecot's IMAPSieve script)
 *   learn spam|ham FILE    an administrator's training (group mailsec)
 *                          report and learn take several files, directories and
 *                          Maildirs too (with --mbox: mailboxes), and then print how
 *                          many changed, were learned so already, or failed
 *   forget DIGEST|FILE...  take learned messages out again, by digest or by the digest
 *                          of each message given as for learn (group mailsec)
 *   stats                  the service's properties
 *   rebuild                recompute the counts from the training journal (group mailsec)
 *   compact                rewrite the journal with only the records in force (group mailsec)
 *   reset                  forget everything learned (group mailsec)
 *
 * Exit status: 0 success, 1 the call failed, 2 usage error, 3 the service is not running.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "mailsecctl.h"
#include "mbox.h"
#include "memfd-util.h"
#include "spam-digest.h"
#include "string-util.h"

#define SPAM_NAME "ch.webtrend.Mailsec.Spam1"
#define SPAM_PATH "/ch/webtrend/Mailsec/Spam1"
#define SPAM_IFACE SPAM_NAME ".Manager"
#define MESSAGE_MAX ((size_t) 64U * 1024U * 1024U)
#define EXPLAIN_TOP 40U

static bool str_in_list(const char *s, const char * const *list) {
        for (; *list; list++)
                if (streq(s, *list))
                        return true;
        return false;
}
#define STR_IN_SET(s, ...) str_in_list((s), (const char * const[]) { __VA_ARGS__, NULL })

typedef struct SpamArgs {
        const char *client_ip;
        const char *domain;
        const char *reporter;
        unsigned top;
        bool have_top;
        bool autolearn;
        bool mbox;
} SpamArgs;

/* The file (or stdin) in a sealed memfd. */
static int message_memfd(const char *path) {
        _cleanup_close_ int in = -EBADF, fd = -EBADF;
        char buf[65536];
        size_t total = 0;
        int r;

        if (streq(path, "-"))
                in = dup(STDIN_FILENO);
        else
                in = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0) {
                r = -errno;
                fprintf(stderr, "Cannot open %s: %s\n", path, strerror(-r));
                return r;
        }
        fd = memfd_new_spool("mailsecctl-message");
        if (fd < 0)
                return fd;
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        fprintf(stderr, "Cannot read %s: %s\n", path, strerror(-r));
                        return r;
                }
                if (n == 0)
                        break;
                total += (size_t) n;
                if (total > MESSAGE_MAX) {
                        fprintf(stderr, "%s is larger than %zu bytes.\n", path, MESSAGE_MAX);
                        return -EFBIG;
                }
                r = memfd_append(fd, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
        if (total == 0) {
                fprintf(stderr, "%s is empty.\n", path);
                return -ENODATA;
        }
        r = memfd_seal(fd);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

static int parse_spam_args(int argc, char *argv[], const char *usage, SpamArgs *a) {
        enum {
                ARG_CLIENT_IP = 0x100,
                ARG_DOMAIN,
                ARG_TOP,
                ARG_JSON,
                ARG_REPORTER,
                ARG_AUTOLEARN,
                ARG_MBOX,
        };
        static const struct option options[] = {
                { "client-ip", required_argument, NULL, ARG_CLIENT_IP },
                { "domain",    required_argument, NULL, ARG_DOMAIN    },
                { "top",       required_argument, NULL, ARG_TOP       },
                { "json",      no_argument,       NULL, ARG_JSON      },
                { "reporter",  required_argument, NULL, ARG_REPORTER  },
                { "autolearn", no_argument,       NULL, ARG_AUTOLEARN },
                { "mbox",      no_argument,       NULL, ARG_MBOX      },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_CLIENT_IP:
                        a->client_ip = optarg;
                        break;
                case ARG_DOMAIN:
                        a->domain = optarg;
                        break;
                case ARG_TOP:
                        if (parse_unsigned(optarg, &a->top) < 0 || a->top > 100) {
                                fprintf(stderr, "--top takes a number up to 100.\n");
                                return -EINVAL;
                        }
                        a->have_top = true;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_REPORTER:
                        a->reporter = optarg;
                        break;
                case ARG_AUTOLEARN:
                        a->autolearn = true;
                        break;
                case ARG_MBOX:
                        a->mbox = true;
                        break;
                default:
                        fputs(usage, stderr);
                        return -EINVAL;
                }
        return optind;
}

static int append_options(sd_bus_message *m, const SpamArgs *a, bool classify) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (classify && a->client_ip) {
                r = sd_bus_message_append(m, "{sv}", "client_ip", "s", a->client_ip);
                if (r < 0)
                        return r;
        }
        if (a->domain) {
                r = sd_bus_message_append(m, "{sv}", "domain", "s", a->domain);
                if (r < 0)
                        return r;
        }
        if (a->reporter) {
                r = sd_bus_message_append(m, "{sv}", "reporter", "s", a->reporter);
                if (r < 0)
                        return r;
        }
        if (classify && a->autolearn) {
                r = sd_bus_message_append(m, "{sv}", "autolearn", "b", 1);
                if (r < 0)
                        return r;
        }
        if (classify && a->have_top) {
                r = sd_bus_message_append(m, "{sv}", "top", "u", (uint32_t) a->top);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static int spam_classify(sd_bus *bus, int argc, char *argv[], bool explain) {
        const char *usage = explain ? "Usage: mailsecctl spam explain FILE|- [--client-ip IP] [--domain D] [--top N]\n"
                                    : "Usage: mailsecctl spam classify FILE|- [--client-ip IP] [--domain D] [--top N] [--autolearn]\n";
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int fd = -EBADF;
        Output o = OUTPUT_INIT(stdout, 10);
        SpamArgs a = {};
        const char *verdict, *token;
        double score, prob;
        int k, r;

        k = parse_spam_args(argc, argv, usage, &a);
        if (k < 0)
                return EXIT_USAGE;
        if (argc - k != 1 || a.reporter || a.mbox || (explain && a.autolearn)) {
                fputs(usage, stderr);
                return EXIT_USAGE;
        }
        if (explain && !a.have_top) {
                a.top = EXPLAIN_TOP;
                a.have_top = true;
        }
        fd = message_memfd(argv[k]);
        if (fd < 0)
                return EXIT_CALL_FAILED;

        r = sd_bus_message_new_method_call(bus, &m, SPAM_NAME, SPAM_PATH, SPAM_IFACE, "Classify");
        if (r < 0)
                return EXIT_CALL_FAILED;
        r = sd_bus_message_append(m, "h", fd);
        if (r >= 0)
                r = append_options(m, &a, true);
        if (r < 0)
                return EXIT_CALL_FAILED;
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return ctl_call_failed("Classifying the message", &error, r);
        r = sd_bus_message_read(reply, "ds", &score, &verdict);
        if (r < 0)
                goto bad_reply;

        o.json = arg_json;
        if (arg_json) {
                printf("{\"score\":%.6f,\"verdict\":", score);
                json_string(stdout, verdict);
                fputs(",\"tokens\":[", stdout);
        } else
                printf("%10s: %.4f\n%10s: %s\n", "score", score, "verdict", verdict);

        r = sd_bus_message_enter_container(reply, 'a', "(sd)");
        if (r < 0)
                goto bad_reply;
        for (unsigned i = 0; (r = sd_bus_message_read(reply, "(sd)", &token, &prob)) > 0; i++) {
                if (arg_json) {
                        printf("%s{\"token\":", i ? "," : "");
                        json_string(stdout, token);
                        printf(",\"probability\":%.6f}", prob);
                } else {
                        if (i == 0)
                                printf("\n%-8s %-6s %s\n", "PROB", explain ? "PUSHES" : "", "TOKEN");
                        printf("%-8.4f %-6s ", prob, explain ? (prob >= 0.5 ? "spam" : "ham") : "");
                        text_string(stdout, token, 0);
                        fputc('\n', stdout);
                }
        }
        if (r < 0)
                goto bad_reply;
        if (arg_json)
                fputs("]}\n", stdout);
        (void) o;
        return 0;

bad_reply:
        fprintf(stderr, "Unexpected reply from %s: %s\n", SPAM_NAME, strerror(-r));
        return EXIT_CALL_FAILED;
}

/* Not an exit status: a report refused by ReportsPerHour=, after which the next ones
 * would be refused too. */
#define LEARN_RATE_LIMITED 100

static bool is_digest(const char *s) {
        return strlen(s) == SPAM_DIGEST_SIZE * 2 && strspn(s, "0123456789abcdefABCDEF") == SPAM_DIGEST_SIZE * 2;
}

/* Forget of a digest (64 hex digits): 0 with *ret_forgotten, or an exit status. */
static int forget_digest(sd_bus *bus, const char *digest, const char *what, int *ret_forgotten) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, SPAM_NAME, SPAM_PATH, SPAM_IFACE, "Forget", &error, &reply, "s", digest);
        if (r < 0) {
                _cleanup_free_ char *doing = NULL;

                if (asprintf_safe(&doing, "Forgetting %s", what) < 0)
                        return EXIT_CALL_FAILED;
                return ctl_call_failed(doing, &error, r);
        }
        r = sd_bus_message_read(reply, "b", ret_forgotten);
        if (r < 0) {
                fprintf(stderr, "Unexpected reply from %s: %s\n", SPAM_NAME, strerror(-r));
                return EXIT_CALL_FAILED;
        }
        return 0;
}

/* Forget of the message in fd, by the digest mailsec-spamd would compute for it. */
static int forget_fd(sd_bus *bus, int fd, const char *what, char **ret_digest, int *ret_forgotten) {
        _cleanup_free_ char *hex = NULL;
        uint8_t d[SPAM_DIGEST_SIZE];
        const void *p;
        size_t size;
        int r;

        if (memfd_map_sealed(fd, MESSAGE_MAX, &p, &size) < 0)
                return EXIT_CALL_FAILED;
        spam_message_digest(p, size, d);
        if (p)
                (void) munmap((void *) p, size);
        hex = hexmem(d, sizeof(d));
        if (!hex)
                return EXIT_CALL_FAILED;
        r = forget_digest(bus, hex, what, ret_forgotten);
        if (r == 0 && ret_digest)
                *ret_digest = TAKE_PTR(hex);
        return r;
}

/* One Report, Learn or Forget call for the message in the sealed memfd fd, named what in
 * errors: 0 with *ret_changed (the statistics changed: learned, moved or forgotten),
 * LEARN_RATE_LIMITED, or an exit status (the reason printed). */
static int learn_fd(sd_bus *bus, const char *method, const SpamArgs *a, const char *class, int fd,
                    const char *what, char **ret_digest, int *ret_changed) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *digest;
        int changed, r;

        if (streq(method, "Forget"))
                return forget_fd(bus, fd, what, ret_digest, ret_changed);
        r = sd_bus_message_new_method_call(bus, &m, SPAM_NAME, SPAM_PATH, SPAM_IFACE, method);
        if (r < 0)
                return EXIT_CALL_FAILED;
        r = sd_bus_message_append(m, "hs", fd, class);
        if (r >= 0)
                r = append_options(m, a, false);
        if (r < 0)
                return EXIT_CALL_FAILED;
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0 && sd_bus_error_has_name(&error, SPAM_NAME ".Error.RateLimited")) {
                fprintf(stderr, "%s refused: %s\n", what, error.message ?: "too many reports this hour");
                return LEARN_RATE_LIMITED;
        }
        if (r < 0) {
                _cleanup_free_ char *doing = NULL;

                if (asprintf_safe(&doing, "%s %s", streq(method, "Report") ? "Reporting" : "Learning", what) < 0)
                        return EXIT_CALL_FAILED;
                return ctl_call_failed(doing, &error, r);
        }
        r = sd_bus_message_read(reply, "sb", &digest, &changed);
        if (r < 0) {
                fprintf(stderr, "Unexpected reply from %s: %s\n", SPAM_NAME, strerror(-r));
                return EXIT_CALL_FAILED;
        }
        if (ret_digest) {
                *ret_digest = strdup(digest);
                if (!*ret_digest)
                        return EXIT_CALL_FAILED;
        }
        *ret_changed = changed;
        return 0;
}

/* The same for the message in the file at path. */
static int learn_one(sd_bus *bus, const char *method, const SpamArgs *a, const char *class, const char *path,
                     char **ret_digest, int *ret_changed) {
        _cleanup_close_ int fd = -EBADF;

        fd = message_memfd(path);
        if (fd < 0)
                return EXIT_CALL_FAILED;
        return learn_fd(bus, method, a, class, fd, path, ret_digest, ret_changed);
}

/* How many messages changed the statistics, were learned so already, or failed. */
typedef struct LearnCounts {
        uint64_t changed, unchanged, failed;
} LearnCounts;

static void learn_count(LearnCounts *c, int r, int changed) {
        if (r != 0)
                c->failed++;
        else if (changed)
                c->changed++;
        else
                c->unchanged++;
}

/* Learning the messages of one mbox, as mbox_reader_line() hands them over. */
typedef struct MboxLearn {
        sd_bus *bus;
        const char *method, *class, *path;
        const SpamArgs *args;
        LearnCounts *counts;
        int fd;                 /* the message's memfd */
        size_t size;
        bool too_large;
        int stop;               /* an exit status to stop with */
} MboxLearn;

static int mbox_begin(unsigned index, void *userdata) {
        MboxLearn *l = userdata;

        l->fd = memfd_new_spool("mailsecctl-message");
        if (l->fd < 0)
                return l->fd;
        l->size = 0;
        l->too_large = false;
        return 0;
}

static int mbox_data(const char *p, size_t n, void *userdata) {
        MboxLearn *l = userdata;

        if (l->too_large)
                return 0;
        if (l->size + n > MESSAGE_MAX) {
                l->too_large = true;
                return 0;
        }
        l->size += n;
        return memfd_append(l->fd, p, n);
}

static int mbox_end(unsigned index, void *userdata) {
        MboxLearn *l = userdata;
        _cleanup_free_ char *what = NULL;
        int changed = 0, r;

        if (asprintf_safe(&what, "%s, message %u", l->path, index) < 0)
                return -ENOMEM;
        if (l->too_large) {
                fprintf(stderr, "%s is larger than %zu bytes.\n", what, MESSAGE_MAX);
                r = EXIT_CALL_FAILED;
        } else if (l->size == 0) {
                fprintf(stderr, "%s is empty.\n", what);
                r = EXIT_CALL_FAILED;
        } else
                r = memfd_seal(l->fd) < 0 ? EXIT_CALL_FAILED :
                    learn_fd(l->bus, l->method, l->args, l->class, l->fd, what, NULL, &changed);
        l->fd = safe_close(l->fd);
        if (r != EXIT_NOT_RUNNING)
                learn_count(l->counts, r, changed);
        if (r == EXIT_NOT_RUNNING || r == LEARN_RATE_LIMITED) {
                l->stop = r;
                return -ESHUTDOWN;
        }
        return 0;
}

/* Learns each message of the mbox at path (mbox.h). Returns 0, EXIT_NOT_RUNNING or
 * LEARN_RATE_LIMITED (stop), or EXIT_CALL_FAILED when the rest of the mbox could not be
 * read into messages. */
static int learn_mbox(sd_bus *bus, const char *method, const SpamArgs *a, const char *class, const char *path,
                      LearnCounts *c) {
        static const MboxCallbacks callbacks = {
                .begin = mbox_begin,
                .data = mbox_data,
                .end = mbox_end,
        };
        MboxLearn l = {
                .bus = bus, .method = method, .class = class, .path = path, .args = a, .counts = c,
                .fd = -EBADF,
        };
        MboxReader reader = MBOX_READER_INIT(&callbacks, &l);
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        int r;

        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "Cannot open %s: %s\n", path, strerror(errno));
                c->failed++;
                return 0;
        }
        for (;;) {
                ssize_t n;

                errno = 0;
                n = getline(&line, &size, f);
                if (n < 0) {
                        r = errno != 0 ? -errno : mbox_reader_finish(&reader);
                        break;
                }
                r = mbox_reader_line(&reader, line, (size_t) n);
                if (r < 0)
                        break;
        }
        safe_close(l.fd);
        if (l.stop != 0)
                return l.stop;
        if (r == -EBADMSG || r == -ENODATA) {
                fprintf(stderr, "%s is not an mbox: it does not begin with a \"From \" line.\n", path);
                c->failed++;
                return 0;
        }
        if (r < 0) {
                fprintf(stderr, "Cannot read %s: %s\n", path, strerror(-r));
                return EXIT_CALL_FAILED;
        }
        return 0;
}

static bool is_dir(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* The regular files of dir whose names do not begin with '.', in name order, appended
 * to files. */
static int dir_files(const char *dir, char ***files) {
        _cleanup_strv_free_ char **names = NULL;
        DIR *d;
        struct dirent *de;
        int r = 0;

        d = opendir(dir);
        if (!d) {
                r = -errno;
                fprintf(stderr, "Cannot open %s: %s\n", dir, strerror(-r));
                return r;
        }
        for (;;) {
                char *path = NULL;
                struct stat st;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno > 0) {
                                r = -errno;
                                fprintf(stderr, "Cannot read %s: %s\n", dir, strerror(-r));
                        }
                        break;
                }
                if (de->d_name[0] == '.')
                        continue;
                if (asprintf_safe(&path, "%s/%s", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
                        free(path);
                        continue;
                }
                r = strv_consume(&names, path);
                if (r < 0)
                        break;
        }
        closedir(d);
        if (r < 0)
                return r;
        if (names)
                qsort(names, strv_length(names), sizeof(char*), cmp_strp);
        STRV_FOREACH(n, names) {
                r = strv_extend(files, *n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The messages a path names: a file, a directory's files, or a Maildir's cur/ and new/
 * (tmp/ holds deliveries not yet finished). */
static int path_messages(const char *path, char ***files) {
        _cleanup_free_ char *cur = NULL, *new = NULL;
        int r;

        if (!is_dir(path))
                return strv_extend(files, path);
        if (asprintf_safe(&cur, "%s/cur", path) < 0 || asprintf_safe(&new, "%s/new", path) < 0)
                return -ENOMEM;
        if (!is_dir(cur) && !is_dir(new))
                return dir_files(path, files);
        if (is_dir(cur)) {
                r = dir_files(cur, files);
                if (r < 0)
                        return r;
        }
        return is_dir(new) ? dir_files(new, files) : 0;
}

/* Every message of paths (files, directories, Maildirs; with --mbox mailboxes; for Forget
 * also digests) through method, counted in c. Returns 0, or an exit status to stop with. */
static int learn_paths(sd_bus *bus, const char *method, const SpamArgs *a, const char *class, char **paths,
                       LearnCounts *c) {
        _cleanup_strv_free_ char **files = NULL;
        int changed, r;

        STRV_FOREACH(p, paths) {
                if (streq(*p, "-")) {
                        fprintf(stderr, "Standard input (-) is one message: give it alone.\n");
                        return EXIT_USAGE;
                }
                if (a->mbox || (streq(method, "Forget") && is_digest(*p) && access(*p, F_OK) < 0)) {
                        /* read below, as they are */
                        r = strv_extend(&files, *p);
                        if (r < 0)
                                return EXIT_CALL_FAILED;
                        continue;
                }
                r = path_messages(*p, &files);
                if (r == -ENOMEM)
                        return EXIT_CALL_FAILED;
                if (r < 0)
                        c->failed++;
        }
        STRV_FOREACH(f, files) {
                changed = 0;
                if (streq(method, "Forget") && is_digest(*f) && access(*f, F_OK) < 0) {
                        r = forget_digest(bus, *f, *f, &changed);
                        if (r != EXIT_NOT_RUNNING)
                                learn_count(c, r, changed);
                } else if (a->mbox) {
                        r = learn_mbox(bus, method, a, class, *f, c);
                        if (r == EXIT_CALL_FAILED)     /* the rest of this mbox is not read */
                                c->failed++;
                } else {
                        r = learn_one(bus, method, a, class, *f, NULL, &changed);
                        if (r != EXIT_NOT_RUNNING)
                                learn_count(c, r, changed);
                }
                if (r == EXIT_NOT_RUNNING)
                        return r;
                if (r == LEARN_RATE_LIMITED) {
                        /* the rest would be refused too */
                        fprintf(stderr, "Stopped: no more of your reports are taken this hour (ReportsPerHour=); "
                                "the rest were not tried.\n");
                        break;
                }
        }
        return 0;
}

static int spam_learn(sd_bus *bus, int argc, char *argv[], const char *method) {
        const char *usage = streq(method, "Report") ? "Usage: mailsecctl spam report spam|ham FILE|DIR...|- [--mbox] [--domain D] [--reporter mail:ADDRESS|imap:USER]\n"
                                                    : "Usage: mailsecctl spam learn spam|ham FILE|DIR...|- [--mbox] [--domain D]\n";
        Output o = OUTPUT_INIT(stdout, 9);
        LearnCounts c = {};
        SpamArgs a = {};
        int changed, k, r;

        k = parse_spam_args(argc, argv, usage, &a);
        if (k < 0)
                return EXIT_USAGE;
        if (argc - k < 2 || a.client_ip || a.have_top || a.autolearn || !STR_IN_SET(argv[k], "spam", "ham") ||
            (a.reporter && !streq(method, "Report"))) {
                fputs(usage, stderr);
                return EXIT_USAGE;
        }
        o.json = arg_json;

        if (argc - k == 2 && !a.mbox && !is_dir(argv[k + 1])) {
                /* one message: its digest, and whether the statistics changed */
                _cleanup_free_ char *digest = NULL;

                r = learn_one(bus, method, &a, argv[k], argv[k + 1], &digest, &changed);
                if (r != 0)
                        return r == LEARN_RATE_LIMITED ? EXIT_CALL_FAILED : r;
                output_string(&o, "digest", digest);
                output_string(&o, "class", argv[k]);
                output_bool(&o, "changed", changed);
                output_end(&o);
                return 0;
        }

        /* Many: how many changed the statistics, were learned so already, failed. */
        r = learn_paths(bus, method, &a, argv[k], argv + k + 1, &c);
        if (r != 0)
                return r;
        output_string(&o, "class", argv[k]);
        output_unsigned(&o, "messages", c.changed + c.unchanged);
        output_unsigned(&o, "changed", c.changed);
        output_unsigned(&o, "unchanged", c.unchanged);
        output_unsigned(&o, "failed", c.failed);
        output_end(&o);
        return c.failed > 0 ? EXIT_CALL_FAILED : 0;
}

static int spam_forget(sd_bus *bus, int argc, char *argv[]) {
        static const char usage[] = "Usage: mailsecctl spam forget DIGEST|FILE|DIR... [--mbox]\n";
        Output o = OUTPUT_INIT(stdout, 11);
        LearnCounts c = {};
        SpamArgs a = {};
        int forgotten, k, r;

        k = parse_spam_args(argc, argv, usage, &a);
        if (k < 0)
                return EXIT_USAGE;
        if (argc - k < 1 || a.client_ip || a.have_top || a.autolearn || a.reporter || a.domain) {
                fputs(usage, stderr);
                return EXIT_USAGE;
        }
        o.json = arg_json;

        if (argc - k == 1 && !a.mbox && access(argv[k], F_OK) < 0) {
                /* one digest (mailsec-spamd says what is wrong with one that is not):
                 * whether it was learned */
                r = forget_digest(bus, argv[k], "the message", &forgotten);
                if (r != 0)
                        return r;
                output_string(&o, "digest", argv[k]);
                output_bool(&o, "forgotten", forgotten);
                output_end(&o);
                return forgotten ? 0 : EXIT_CALL_FAILED;
        }
        /* Files and the rest: each message by the digest mailsec-spamd gives it. */
        r = learn_paths(bus, "Forget", &a, NULL, argv + k, &c);
        if (r != 0)
                return r;
        output_unsigned(&o, "messages", c.changed + c.unchanged);
        output_unsigned(&o, "forgotten", c.changed);
        output_unsigned(&o, "not_learned", c.unchanged);
        output_unsigned(&o, "failed", c.failed);
        output_end(&o);
        return c.failed > 0 ? EXIT_CALL_FAILED : 0;
}

static int spam_rebuild(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Output o = OUTPUT_INIT(stdout, 8);
        uint64_t records;
        int r;

        /* Replaying a long journal takes time: no call timeout. */
        r = sd_bus_call_method(bus, SPAM_NAME, SPAM_PATH, SPAM_IFACE, "Rebuild", &error, &reply, "");
        if (r < 0)
                return ctl_call_failed("Rebuilding the statistics", &error, r);
        r = sd_bus_message_read(reply, "t", &records);
        if (r < 0)
                return EXIT_CALL_FAILED;
        o.json = arg_json;
        output_unsigned(&o, "records", records);
        output_end(&o);
        return 0;
}

static int spam_compact(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Output o = OUTPUT_INIT(stdout, 8);
        uint64_t records, bytes;
        int r;

        /* Like Rebuild, it takes as long as the journal is long: no call timeout. */
        r = sd_bus_call_method(bus, SPAM_NAME, SPAM_PATH, SPAM_IFACE, "Compact", &error, &reply, "");
        if (r < 0)
                return ctl_call_failed("Compacting the training journal", &error, r);
        r = sd_bus_message_read(reply, "tt", &records, &bytes);
        if (r < 0)
                return EXIT_CALL_FAILED;
        o.json = arg_json;
        output_unsigned(&o, "records", records);
        output_unsigned(&o, "bytes", bytes);
        output_end(&o);
        return 0;
}

static int spam_reset(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, SPAM_NAME, SPAM_PATH, SPAM_IFACE, "Reset", &error, NULL, "");
        if (r < 0)
                return ctl_call_failed("Resetting the statistics", &error, r);
        return 0;
}

static int spam_stats(sd_bus *bus) {
        static const char* const props[] = {
                "Version", "MessagesClassified", "SpamLearned", "HamLearned", "Tokens", "LexiconWords",
                "ReportsAccepted", "ReportsRefused", "AutoLearned", "JournalRecords", "JournalBytes",
                "DatabaseBytes",
        };
        Output o = OUTPUT_INIT(stdout, 18);

        o.json = arg_json;
        for (size_t i = 0; i < ELEMENTSOF(props); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int r;

                if (i == 0) {
                        _cleanup_free_ char *v = NULL;

                        r = sd_bus_get_property_string(bus, SPAM_NAME, SPAM_PATH, SPAM_IFACE, props[i], &error, &v);
                        if (r < 0)
                                return ctl_call_failed("Reading the spam filter's statistics", &error, r);
                        output_string(&o, props[i], v);
                } else {
                        uint64_t v;

                        r = sd_bus_get_property_trivial(bus, SPAM_NAME, SPAM_PATH, SPAM_IFACE, props[i], &error, 't', &v);
                        if (r < 0)
                                return ctl_call_failed("Reading the spam filter's statistics", &error, r);
                        output_unsigned(&o, props[i], v);
                }
        }
        output_end(&o);
        return 0;
}

int verb_spam(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *verb = argv[0];
        int r;

        if (!STR_IN_SET(verb, "classify", "explain", "report", "learn", "forget", "stats", "rebuild", "compact",
                        "reset")) {
                fprintf(stderr, "Unknown command 'spam %s'; see mailsecctl --help.\n", verb);
                return EXIT_USAGE;
        }
        /* the counts of arguments, before anything talks to the bus */
        if ((STR_IN_SET(verb, "stats", "rebuild", "compact") && argc != 1) ||
            (streq(verb, "reset") && (argc != 2 || !streq(argv[1], "--yes"))) ||
            (STR_IN_SET(verb, "classify", "explain") && argc < 2) ||
            (STR_IN_SET(verb, "report", "learn") && argc < 3) ||
            (streq(verb, "forget") && argc < 2)) {
                fprintf(stderr, "Usage: mailsecctl spam %s%s\n", verb,
                        STR_IN_SET(verb, "classify", "explain") ? " FILE|- [--client-ip IP] [--domain D] [--top N]" :
                        streq(verb, "report") ? " spam|ham FILE|DIR...|- [--mbox] [--domain D] [--reporter R]" :
                        streq(verb, "learn") ? " spam|ham FILE|DIR...|- [--mbox] [--domain D]" :
                        streq(verb, "forget") ? " DIGEST|FILE|DIR... [--mbox]" :
                        streq(verb, "reset") ? " --yes" : "");
                return EXIT_USAGE;
        }
        r = ctl_bus_connect(&bus);
        if (r < 0)
                return EXIT_CALL_FAILED;

        if (streq(verb, "classify"))
                return spam_classify(bus, argc, argv, false);
        if (streq(verb, "explain"))
                return spam_classify(bus, argc, argv, true);
        if (streq(verb, "report"))
                return spam_learn(bus, argc, argv, "Report");
        if (streq(verb, "learn"))
                return spam_learn(bus, argc, argv, "Learn");
        if (streq(verb, "forget"))
                return spam_forget(bus, argc, argv);
        if (streq(verb, "rebuild"))
                return spam_rebuild(bus);
        if (streq(verb, "compact"))
                return spam_compact(bus);
        if (streq(verb, "reset"))
                return spam_reset(bus);
        return spam_stats(bus);
}
