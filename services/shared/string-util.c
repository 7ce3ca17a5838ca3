/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "string-util.h"

const char* startswith(const char *s, const char *prefix) {
        size_t l;

        assert(s);
        assert(prefix);

        l = strlen(prefix);
        if (strncmp(s, prefix, l) != 0)
                return NULL;
        return s + l;
}

const char* startswith_no_case(const char *s, const char *prefix) {
        size_t l;

        assert(s);
        assert(prefix);

        l = strlen(prefix);
        if (strncasecmp(s, prefix, l) != 0)
                return NULL;
        return s + l;
}

bool endswith(const char *s, const char *suffix) {
        size_t sl, pl;

        assert(s);
        assert(suffix);

        sl = strlen(s);
        pl = strlen(suffix);
        if (pl > sl)
                return false;
        return memcmp(s + sl - pl, suffix, pl) == 0;
}

static bool is_ws(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char* strstrip(char *s) {
        char *e;

        if (!s)
                return NULL;

        while (is_ws(*s))
                s++;
        e = s + strlen(s);
        while (e > s && is_ws(e[-1]))
                e--;
        *e = 0;
        return s;
}

int free_and_strdup(char **p, const char *s) {
        char *t = NULL;

        assert(p);

        if (streq_ptr(*p, s))
                return 0;
        if (s) {
                t = strdup(s);
                if (!t)
                        return -ENOMEM;
        }
        free(*p);
        *p = t;
        return 1;
}

int parse_uint64(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (isempty(s))
                return -EINVAL;

        for (const char *p = s; *p; p++) {
                unsigned d;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }

        if (ret)
                *ret = v;
        return 0;
}

int parse_unsigned(const char *s, unsigned *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT_MAX)
                return -ERANGE;
        if (ret)
                *ret = (unsigned) v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char suffix;
                unsigned shift;
        } table[] = {
                { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 },
        };
        _cleanup_free_ char *copy = NULL;
        unsigned shift = 0;
        uint64_t v;
        char *t;
        size_t l;
        int r;

        if (!s)
                return -EINVAL;

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        t = strstrip(copy);
        l = strlen(t);
        if (l == 0)
                return -EINVAL;

        /* An optional "B" after the unit ("10MB") or alone ("4096B"). */
        if (l > 1 && (t[l-1] == 'B' || t[l-1] == 'b'))
                t[--l] = 0;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (l > 1 && (t[l-1] == table[i].suffix || t[l-1] == tolower(table[i].suffix))) {
                        shift = table[i].shift;
                        t[--l] = 0;
                        break;
                }

        /* Allow blanks between number and unit ("10 M") */
        while (l > 0 && is_ws(t[l-1]))
                t[--l] = 0;

        r = parse_uint64(t, &v);
        if (r < 0)
                return r;
        if (shift > 0 && v > (UINT64_MAX >> shift))
                return -ERANGE;

        if (ret)
                *ret = v << shift;
        return 0;
}

int asprintf_safe(char **ret, const char *format, ...) {
        va_list ap;
        char *s;
        int r;

        assert(ret);

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        *ret = s;
        return r;
}

char* hexmem(const void *p, size_t l) {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *x = p;
        char *r;

        if (l > (SIZE_MAX - 1) / 2)
                return NULL;
        r = malloc(l * 2 + 1);
        if (!r)
                return NULL;
        for (size_t i = 0; i < l; i++) {
                r[i*2] = hex[x[i] >> 4];
                r[i*2+1] = hex[x[i] & 15];
        }
        r[l * 2] = 0;
        return r;
}

char** strv_free(char **l) {
        STRV_FOREACH(s, l)
                free(*s);
        free(l);
        return NULL;
}

size_t strv_length(char * const *l) {
        size_t n = 0;

        if (!l)
                return 0;
        while (l[n])
                n++;
        return n;
}

int strv_consume(char ***l, char *s) {
        size_t n;
        char **t;

        assert(l);

        if (!s)
                return -EINVAL;

        n = strv_length(*l);
        t = reallocarray(*l, n + 2, sizeof(char*));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int strv_extend(char ***l, const char *s) {
        char *t;

        assert(l);
        assert(s);

        t = strdup(s);
        if (!t)
                return -ENOMEM;
        return strv_consume(l, t);
}

bool strv_contains(char * const *l, const char *s) {
        if (!l || !s)
                return false;
        for (char * const *p = l; *p; p++)
                if (streq(*p, s))
                        return true;
        return false;
}

char* strv_join(char * const *l, const char *sep) {
        size_t n = 0, k, seplen;
        char *r, *e;

        if (!sep)
                sep = " ";
        seplen = strlen(sep);

        k = 0;
        for (char * const *p = l; p && *p; p++, k++)
                n += strlen(*p);
        if (k > 1)
                n += seplen * (k - 1);

        r = malloc(n + 1);
        if (!r)
                return NULL;

        e = r;
        for (char * const *p = l; p && *p; p++) {
                if (p != l) {
                        memcpy(e, sep, seplen);
                        e += seplen;
                }
                e = stpcpy(e, *p);
        }
        *e = 0;
        return r;
}
