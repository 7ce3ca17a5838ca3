/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth-results-id.h"
#include "cleanup.h"
#include "string-util.h"

#define COMMENT_DEPTH_MAX 32U
#define VERSION_DIGITS_MAX 9U

/* Skip CFWS: blanks, line ends of folds, and comments (nested, with quoted-pairs).
 * Returns -EBADMSG for an unterminated or too deeply nested comment. */
static int skip_cfws(const char *s, size_t len, size_t *i) {
        unsigned depth = 0;

        while (*i < len) {
                char c = s[*i];

                if (depth > 0) {
                        if (c == '\\') {
                                if (*i + 1 >= len)
                                        return -EBADMSG;
                                *i += 2;
                                continue;
                        }
                        if (c == '(') {
                                if (++depth > COMMENT_DEPTH_MAX)
                                        return -EBADMSG;
                        } else if (c == ')')
                                depth--;
                        (*i)++;
                        continue;
                }

                if (IN_SET(c, ' ', '\t', '\r', '\n'))
                        (*i)++;
                else if (c == '(') {
                        depth = 1;
                        (*i)++;
                } else
                        break;
        }

        return depth > 0 ? -EBADMSG : 0;
}

/* A quoted-string starting at s[*i] == '"', unquoted into a new string; folds inside
 * are unfolded (their CR and LF dropped). */
static int read_quoted_string(const char *s, size_t len, size_t *i, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t k = 0;

        assert(s[*i] == '"');

        out = malloc(MIN(len - *i, (size_t) AUTH_RESULTS_VALUE_MAX) + 1);
        if (!out)
                return -ENOMEM;

        for (size_t j = *i + 1; j < len; j++) {
                char c = s[j];

                if (c == '"') {
                        out[k] = '\0';
                        *i = j + 1;
                        *ret = TAKE_PTR(out);
                        return 0;
                }
                if (c == '\\') {
                        if (++j >= len)
                                return -EBADMSG;
                        c = s[j];
                } else if (IN_SET(c, '\r', '\n'))
                        continue;
                else if (c == '\0')
                        return -EBADMSG;

                if (k >= AUTH_RESULTS_VALUE_MAX)
                        return -E2BIG;
                out[k++] = c;
        }
        return -EBADMSG;
}

int auth_results_parse_authserv_id(const char *value, size_t len, char **ret_id, unsigned *ret_version) {
        _cleanup_free_ char *id = NULL;
        unsigned version = 1;
        size_t i = 0;
        int r;

        assert(value || len == 0);
        assert(ret_id);

        r = skip_cfws(value, len, &i);
        if (r < 0)
                return r;
        if (i >= len)
                return -EBADMSG;

        if (value[i] == '"') {
                r = read_quoted_string(value, len, &i, &id);
                if (r < 0)
                        return r;
                if (isempty(id))
                        return -EBADMSG;
        } else {
                size_t start = i;

                /* A token; 8-bit bytes are taken too, for internationalized host names
                 * (RFC 8601 §2.2 with RFC 6532). */
                while (i < len && (auth_results_is_token_char(value[i]) || (unsigned char) value[i] >= 0x80))
                        i++;
                if (i == start)
                        return -EBADMSG;
                if (i - start > AUTH_RESULTS_VALUE_MAX)
                        return -E2BIG;
                id = strndup(value + start, i - start);
                if (!id)
                        return -ENOMEM;
        }

        r = skip_cfws(value, len, &i);
        if (r < 0)
                return r;

        /* authres-version = 1*DIGIT [CFWS] */
        if (i < len && value[i] >= '0' && value[i] <= '9') {
                size_t start = i;

                version = 0;
                while (i < len && value[i] >= '0' && value[i] <= '9') {
                        if (i - start >= VERSION_DIGITS_MAX)
                                return -EBADMSG;
                        version = version * 10 + (unsigned) (value[i] - '0');
                        i++;
                }
                r = skip_cfws(value, len, &i);
                if (r < 0)
                        return r;
        }

        /* What follows is "; none" or the resinfos, both starting with ';'. A value that
         * ends right after the id is taken too: it still claims the id. */
        if (i < len && value[i] != ';')
                return -EBADMSG;

        *ret_id = TAKE_PTR(id);
        if (ret_version)
                *ret_version = version;
        return 0;
}

bool auth_results_authserv_id_equal(const char *a, const char *b) {
        return a && b && strcasecmp(a, b) == 0;
}

int auth_results_find_ours(const char *msg, size_t len, const Rfc5322Limits *limits, const char *authserv_id,
                           Rfc5322Field **ret) {
        _cleanup_free_ Rfc5322Field *found = NULL;
        size_t offset = 0, n = 0, n_found = 0, alloc = 0;
        Rfc5322Field f;
        int r;

        assert(msg || len == 0);
        assert(authserv_id);
        assert(ret);

        while ((r = rfc5322_field_next(msg, len, limits, &offset, &n, &f)) > 0) {
                _cleanup_free_ char *id = NULL;

                if (!rfc5322_field_is(&f, AUTH_RESULTS_FIELD_NAME))
                        continue;
                r = auth_results_parse_authserv_id(f.value, f.value_len, &id, NULL);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || !auth_results_authserv_id_equal(id, authserv_id))
                        continue;

                if (n_found >= alloc) {
                        size_t na = MAX(alloc * 2, (size_t) 4);
                        Rfc5322Field *p = reallocarray(found, na, sizeof(Rfc5322Field));

                        if (!p)
                                return -ENOMEM;
                        found = p;
                        alloc = na;
                }
                found[n_found++] = f;
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(found);
        return (int) n_found;
}
