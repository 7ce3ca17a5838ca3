/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cleanup.h"
#include "conf-parser.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

/* Limits on what a configuration file may make us allocate. */
#define CONFIG_LINE_MAX ((size_t) 64U * 1024U)
#define CONFIG_FILE_MAX ((size_t) 4U * 1024U * 1024U)
#define CONFIG_DROPINS_MAX 1024U

static inline void* mfree(void *p) {
        free(p);
        return NULL;
}

/* Message a typed parser left for the value it is refusing; picked up by the caller. */
static _Thread_local char *parser_error = NULL;

void config_parser_set_error(void *userdata_unused, const char *format, ...) {
        va_list ap;
        char *m;

        va_start(ap, format);
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);

        free(parser_error);
        parser_error = m;
}

static void parser_error_clear(void) {
        parser_error = mfree(parser_error);
}

void config_error_done(ConfigError *e) {
        if (!e)
                return;
        e->filename = mfree(e->filename);
        e->message = mfree(e->message);
        e->line = 0;
}

int config_error_set(ConfigError *e, int r, const char *filename, unsigned line,
                     const char *format, ...) {
        va_list ap;
        char *m = NULL;

        if (!e)
                return r;

        config_error_done(e);

        va_start(ap, format);
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);

        e->message = m;
        e->filename = filename ? strdup(filename) : NULL;
        e->line = line;
        return r;
}

static const ConfigTableItem* table_lookup(const ConfigTableItem *table, size_t n_table,
                                           const char *section, const char *lvalue) {
        for (size_t i = 0; i < n_table; i++)
                if (streq_ptr(table[i].section, section) && streq_ptr(table[i].lvalue, lvalue))
                        return table + i;
        return NULL;
}

static bool table_has_section(const ConfigTableItem *table, size_t n_table, const char *section) {
        for (size_t i = 0; i < n_table; i++)
                if (streq_ptr(table[i].section, section))
                        return true;
        return false;
}

typedef struct ParseState {
        const char *filename;
        const ConfigTableItem *table;
        size_t n_table;
        void *userdata;
        ConfigError *error;
        char *section;                  /* current section, NULL before the first header */
        bool section_known;
} ParseState;

static int parse_line(ParseState *s, unsigned line, char *l) {
        const ConfigTableItem *item;
        char *eq, *lvalue, *rvalue;
        int r;

        l = strstrip(l);
        if (*l == 0 || *l == '#' || *l == ';')
                return 0;

        if (*l == '[') {
                size_t k = strlen(l);
                char *name;

                if (l[k - 1] != ']')
                        return config_error_set(s->error, -EBADMSG, s->filename, line,
                                                "Invalid section header '%s'", l);
                l[k - 1] = 0;
                name = strstrip(l + 1);
                if (*name == 0 || strpbrk(name, "[]"))
                        return config_error_set(s->error, -EBADMSG, s->filename, line,
                                                "Invalid section header '[%s]'", name);

                if (free_and_strdup(&s->section, name) < 0)
                        return -ENOMEM;
                s->section_known = table_has_section(s->table, s->n_table, name);
                /* "X-" sections are for the administrator's own notes, as in systemd units. */
                if (!s->section_known && !startswith(name, "X-"))
                        log_warning("%s:%u: Unknown section '%s', ignoring.", s->filename, line, name);
                return 0;
        }

        eq = strchr(l, '=');
        if (!eq) {
                log_warning("%s:%u: Missing '=', ignoring line.", s->filename, line);
                return 0;
        }
        *eq = 0;
        lvalue = strstrip(l);
        rvalue = strstrip(eq + 1);

        if (!s->section) {
                log_warning("%s:%u: Assignment outside of section, ignoring.", s->filename, line);
                return 0;
        }
        if (!s->section_known)
                return 0;       /* warned about once at the section header */

        item = table_lookup(s->table, s->n_table, s->section, lvalue);
        if (!item || !item->parse) {
                if (!startswith(lvalue, "X-"))
                        log_warning("%s:%u: Unknown key '%s' in section [%s], ignoring.",
                                    s->filename, line, lvalue, s->section);
                return 0;
        }

        parser_error_clear();
        r = item->parse(s->filename, line, s->section, lvalue, item->ltype, rvalue,
                        (uint8_t*) s->userdata + item->offset, s->userdata);
        if (r < 0) {
                if (r == -ENOMEM) {
                        parser_error_clear();
                        return config_error_set(s->error, r, s->filename, line, "Out of memory");
                }
                if (parser_error) {
                        r = config_error_set(s->error, r, s->filename, line, "%s", parser_error);
                        parser_error_clear();
                        return r;
                }
                return config_error_set(s->error, r, s->filename, line,
                                        "Invalid value for %s=: %s", lvalue, rvalue);
        }

        parser_error_clear();
        return 0;
}

int config_parse_text(const char *filename, const char *text, size_t len,
                      const ConfigTableItem *table, size_t n_table,
                      void *userdata, ConfigError *error) {

        ParseState s = {
                .filename = filename ?: "(string)",
                .table = table,
                .n_table = n_table,
                .userdata = userdata,
                .error = error,
        };
        _cleanup_free_ char *buf = NULL;        /* the logical line, continuations joined */
        size_t buf_len = 0;
        unsigned line = 0, logical_start = 0;
        const char *p = text, *end;
        int r = 0;

        if (!text && len > 0)
                return -EINVAL;
        if (len > CONFIG_FILE_MAX)
                return config_error_set(error, -EFBIG, s.filename, 0,
                                        "File too large (%zu bytes, at most %zu)", len, CONFIG_FILE_MAX);
        if (memchr(text ?: "", 0, len))
                return config_error_set(error, -EBADMSG, s.filename, 0, "File contains a NUL byte");

        buf = malloc(CONFIG_LINE_MAX + 1);
        if (!buf)
                return -ENOMEM;

        end = text ? text + len : text;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t l = nl ? (size_t) (nl - p) : (size_t) (end - p);
                bool continued;

                line++;
                if (buf_len == 0)
                        logical_start = line;

                if (l > 0 && p[l - 1] == '\r')
                        l--;

                if (l > CONFIG_LINE_MAX || buf_len + l > CONFIG_LINE_MAX) {
                        r = config_error_set(error, -ENOBUFS, s.filename, line,
                                             "Line too long (more than %zu bytes)", CONFIG_LINE_MAX);
                        goto finish;
                }

                /* Comment lines inside a continuation are skipped, as systemd does. */
                if (buf_len > 0) {
                        size_t i = 0;

                        while (i < l && (p[i] == ' ' || p[i] == '\t'))
                                i++;
                        if (i < l && (p[i] == '#' || p[i] == ';')) {
                                p = nl ? nl + 1 : end;
                                continue;
                        }
                }

                memcpy(buf + buf_len, p, l);
                buf_len += l;
                buf[buf_len] = 0;

                /* A trailing backslash (after trailing blanks) joins the next line. */
                while (buf_len > 0 && (buf[buf_len - 1] == ' ' || buf[buf_len - 1] == '\t'))
                        buf_len--;
                continued = buf_len > 0 && buf[buf_len - 1] == '\\';
                if (continued && !(buf_len > 1 && buf[buf_len - 2] == '\\')) {
                        buf[buf_len - 1] = ' ';
                        buf[buf_len] = 0;
                        p = nl ? nl + 1 : end;
                        if (p < end)
                                continue;
                } else
                        buf[buf_len] = 0;

                r = parse_line(&s, logical_start, buf);
                if (r < 0)
                        goto finish;
                buf_len = 0;
                p = nl ? nl + 1 : end;
        }

        if (buf_len > 0)
                r = parse_line(&s, logical_start, buf);

finish:
        free(s.section);
        return r < 0 ? r : 0;
}

int config_parse_file(const char *path, const ConfigTableItem *table, size_t n_table,
                      void *userdata, ConfigError *error) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        assert(path);

        r = read_full_file(path, CONFIG_FILE_MAX, &text, &size);
        if (r == -ENOENT)
                return r;
        if (r == -EFBIG)
                return config_error_set(error, r, path, 0, "File too large (more than %zu bytes)",
                                        CONFIG_FILE_MAX);
        if (r < 0)
                return config_error_set(error, r, path, 0, "Failed to read file: %s", strerror(-r));

        log_debug("Reading configuration file %s", path);
        return config_parse_text(path, text, size, table, n_table, userdata, error);
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

int config_parse_with_dropins(const char *main_path, const ConfigTableItem *table, size_t n_table,
                              void *userdata, ConfigError *error) {

        _cleanup_free_ char *dir = NULL;
        _cleanup_strv_free_ char **files = NULL;
        DIR *d;
        int r;

        assert(main_path);

        r = config_parse_file(main_path, table, n_table, userdata, error);
        if (r < 0 && r != -ENOENT)
                return r;

        if (asprintf_safe(&dir, "%s.d", main_path) < 0)
                return -ENOMEM;

        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                r = -errno;
                return config_error_set(error, r, dir, 0, "Failed to open drop-in directory: %s",
                                        strerror(-r));
        }

        for (;;) {
                struct dirent *de;
                char *f;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        r = errno > 0 ? -errno : 0;
                        break;
                }
                if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf"))
                        continue;
                if (strv_length(files) >= CONFIG_DROPINS_MAX) {
                        r = config_error_set(error, -E2BIG, dir, 0, "Too many drop-ins (more than %u)",
                                             CONFIG_DROPINS_MAX);
                        break;
                }
                if (asprintf_safe(&f, "%s/%s", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = strv_consume(&files, f);
                if (r < 0)
                        break;
        }
        closedir(d);
        if (r < 0)
                return r;

        if (files)
                qsort(files, strv_length(files), sizeof(char*), cmp_strp);

        STRV_FOREACH(f, files) {
                r = config_parse_file(*f, table, n_table, userdata, error);
                /* A drop-in that vanished between readdir() and open() is no longer there to apply. */
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        return 0;
}

/* Typed parsers */

static int parse_boolean(const char *v) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcaseeq(v, yes[i]))
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcaseeq(v, no[i]))
                        return 0;
        return -EINVAL;
}

int config_parse_bool(const char *filename, unsigned line, const char *section, const char *lvalue,
                      int ltype, const char *rvalue, void *data, void *userdata) {
        int b;

        assert(data);

        b = parse_boolean(strempty(rvalue));
        if (b < 0) {
                config_parser_set_error(userdata, "Invalid boolean for %s=: %s", lvalue, strempty(rvalue));
                return -EINVAL;
        }
        *(bool*) data = b;
        return 0;
}

int config_parse_unsigned(const char *filename, unsigned line, const char *section, const char *lvalue,
                          int ltype, const char *rvalue, void *data, void *userdata) {
        unsigned u;
        int r;

        assert(data);

        r = parse_unsigned(rvalue, &u);
        if (r < 0) {
                config_parser_set_error(userdata, "Invalid number for %s=: %s", lvalue, strempty(rvalue));
                return r == -ERANGE ? -ERANGE : -EINVAL;
        }
        *(unsigned*) data = u;
        return 0;
}

int config_parse_size(const char *filename, unsigned line, const char *section, const char *lvalue,
                      int ltype, const char *rvalue, void *data, void *userdata) {
        uint64_t v;
        int r;

        assert(data);

        r = parse_size(rvalue, &v);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                config_parser_set_error(userdata, "Invalid size for %s=: %s", lvalue, strempty(rvalue));
                return r == -ERANGE ? -ERANGE : -EINVAL;
        }
        *(uint64_t*) data = v;
        return 0;
}

int config_parse_sec(const char *filename, unsigned line, const char *section, const char *lvalue,
                     int ltype, const char *rvalue, void *data, void *userdata) {
        usec_t u;
        int r;

        assert(data);

        r = parse_sec(rvalue, &u);
        if (r < 0) {
                config_parser_set_error(userdata, "Invalid time span for %s=: %s", lvalue, strempty(rvalue));
                return r == -ERANGE ? -ERANGE : -EINVAL;
        }
        *(usec_t*) data = u;
        return 0;
}

int config_parse_unsigned_min(const char *filename, unsigned line, const char *section, const char *lvalue,
                              int ltype, const char *rvalue, void *data, void *userdata) {
        unsigned u;
        int r;

        r = config_parse_unsigned(filename, line, section, lvalue, ltype, rvalue, &u, userdata);
        if (r < 0)
                return r;
        if (u < (unsigned) ltype) {
                config_parser_set_error(userdata, "%s= must be at least %i: %s", lvalue, ltype, rvalue);
                return -ERANGE;
        }
        *(unsigned*) data = u;
        return 0;
}

/* A timeout of 0 would fire at once; "infinity" is allowed. */
int config_parse_timeout(const char *filename, unsigned line, const char *section, const char *lvalue,
                         int ltype, const char *rvalue, void *data, void *userdata) {
        usec_t u;
        int r;

        r = config_parse_sec(filename, line, section, lvalue, ltype, rvalue, &u, userdata);
        if (r < 0)
                return r;
        if (u == 0) {
                config_parser_set_error(userdata, "%s= must not be 0", lvalue);
                return -ERANGE;
        }
        *(usec_t*) data = u;
        return 0;
}

int config_parse_probability(const char *filename, unsigned line, const char *section, const char *lvalue,
                             int ltype, const char *rvalue, void *data, void *userdata) {
        char *end = NULL;
        double d;

        assert(data);

        errno = 0;
        d = strtod(strempty(rvalue), &end);
        if (errno != 0 || !end || end == rvalue || *end != 0 || !isfinite(d) || d < 0.0 || d > 1.0) {
                config_parser_set_error(userdata, "Invalid value for %s= (a number from 0 to 1 expected): %s",
                                        lvalue, strempty(rvalue));
                return -EINVAL;
        }
        *(double*) data = d;
        return 0;
}

int (config_parse_string)(const char *filename, unsigned line, const char *section, const char *lvalue,
                          int ltype, const char *rvalue, void *data, void *userdata) {
        assert(data);

        return free_and_strdup((char**) data, isempty(rvalue) ? NULL : rvalue) < 0 ? -ENOMEM : 0;
}

int config_parse_path(const char *filename, unsigned line, const char *section, const char *lvalue,
                      int ltype, const char *rvalue, void *data, void *userdata) {
        assert(data);

        if (isempty(rvalue))
                return free_and_strdup((char**) data, NULL) < 0 ? -ENOMEM : 0;

        if (ltype != 1 && rvalue[0] != '/') {
                config_parser_set_error(userdata, "%s= must be an absolute path: %s", lvalue, rvalue);
                return -EINVAL;
        }
        if (strlen(rvalue) >= PATH_MAX) {
                config_parser_set_error(userdata, "Path for %s= too long", lvalue);
                return -ENAMETOOLONG;
        }
        return free_and_strdup((char**) data, rvalue) < 0 ? -ENOMEM : 0;
}

int config_parse_strv(const char *filename, unsigned line, const char *section, const char *lvalue,
                      int ltype, const char *rvalue, void *data, void *userdata) {
        char ***sv = data;
        const char *p;

        assert(data);

        if (isempty(rvalue)) {
                *sv = strv_free(*sv);
                return 0;
        }

        p = rvalue;
        for (;;) {
                size_t n;
                char *w;
                int r;

                p += strspn(p, " \t");
                if (!*p)
                        break;
                n = strcspn(p, " \t");
                w = strndup(p, n);
                if (!w)
                        return -ENOMEM;
                r = strv_consume(sv, w);
                if (r < 0)
                        return r;
                p += n;
        }
        return 0;
}

int config_parse_socket_address(const char *filename, unsigned line, const char *section, const char *lvalue,
                                int ltype, const char *rvalue, void *data, void *userdata) {
        SocketAddress a;
        int r;

        assert(data);

        r = socket_address_parse(rvalue, &a);
        if (r < 0) {
                config_parser_set_error(userdata, "Invalid socket address for %s=: %s", lvalue,
                                        strempty(rvalue));
                return -EINVAL;
        }
        *(SocketAddress*) data = a;
        return 0;
}

/* Socket addresses */

static int parse_port(const char *s, uint16_t *ret) {
        unsigned u;

        if (parse_unsigned(s, &u) < 0 || u < 1 || u > 65535)
                return -EINVAL;
        /* Refuse leading zeros ("025") so a port has one spelling. */
        if (s[0] == '0')
                return -EINVAL;
        *ret = (uint16_t) u;
        return 0;
}

int socket_address_parse(const char *s, SocketAddress *ret) {
        SocketAddress a = {};
        uint16_t port;

        if (isempty(s) || !ret)
                return -EINVAL;

        if (s[0] == '/') {
                struct sockaddr_un *un = (struct sockaddr_un*) &a.sockaddr;
                size_t l = strlen(s);

                if (l >= sizeof(un->sun_path))
                        return -EINVAL;
                un->sun_family = AF_UNIX;
                memcpy(un->sun_path, s, l + 1);
                a.size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);

        } else if (s[0] == '[') {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6*) &a.sockaddr;
                char host[INET6_ADDRSTRLEN];
                const char *e;
                size_t l;

                e = strchr(s, ']');
                if (!e || e[1] != ':')
                        return -EINVAL;
                l = (size_t) (e - s - 1);
                if (l == 0 || l >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s + 1, l);
                host[l] = 0;
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
                        return -EINVAL;
                if (parse_port(e + 2, &port) < 0)
                        return -EINVAL;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                a.size = sizeof(struct sockaddr_in6);

        } else {
                struct sockaddr_in *in = (struct sockaddr_in*) &a.sockaddr;
                char host[INET_ADDRSTRLEN];
                const char *e;
                size_t l;

                e = strrchr(s, ':');
                if (!e)
                        return -EINVAL;
                l = (size_t) (e - s);
                if (l == 0 || l >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s, l);
                host[l] = 0;
                /* inet_pton() takes dotted quads only; host names are refused here. */
                if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                        return -EINVAL;
                if (parse_port(e + 1, &port) < 0)
                        return -EINVAL;
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                a.size = sizeof(struct sockaddr_in);
        }

        *ret = a;
        return 0;
}

int socket_address_to_string(const SocketAddress *a, char **ret) {
        char host[INET6_ADDRSTRLEN];

        if (!a || !ret)
                return -EINVAL;

        switch (a->sockaddr.ss_family) {

        case AF_INET: {
                const struct sockaddr_in *in = (const struct sockaddr_in*) &a->sockaddr;

                if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
                        return -errno;
                return asprintf_safe(ret, "%s:%u", host, (unsigned) ntohs(in->sin_port)) < 0 ? -ENOMEM : 0;
        }

        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6*) &a->sockaddr;

                if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
                        return -errno;
                return asprintf_safe(ret, "[%s]:%u", host, (unsigned) ntohs(in6->sin6_port)) < 0 ? -ENOMEM : 0;
        }

        case AF_UNIX: {
                const struct sockaddr_un *un = (const struct sockaddr_un*) &a->sockaddr;
                size_t max = sizeof(un->sun_path);
                char *s;

                if (a->size > offsetof(struct sockaddr_un, sun_path))
                        max = MIN(max, (size_t) a->size - offsetof(struct sockaddr_un, sun_path));
                s = strndup(un->sun_path, max);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }

        default:
                return -EAFNOSUPPORT;
        }
}
