/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth-results.h"
#include "cleanup.h"
#include "string-util.h"

typedef struct AuthResultsMethod {
        char *spec;                     /* "method=result" */
        char *reason;                   /* "reason=...", or NULL */
        char *properties[AUTH_RESULTS_MAX_PROPERTIES]; /* "ptype.property=value", quoted */
        size_t n_properties;
} AuthResultsMethod;

struct AuthResults {
        char *authserv_id;              /* as written: token or quoted-string */
        AuthResultsMethod methods[AUTH_RESULTS_MAX_METHODS];
        size_t n_methods;
};


static bool is_token(const char *s) {
        if (isempty(s))
                return false;
        for (; *s; s++)
                if (!auth_results_is_token_char(*s))
                        return false;
        return true;
}

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 8601 Keyword = ldh-str (RFC 5321): letters and digits, '-' only inside. */
static bool is_keyword(const char *s) {
        size_t n;

        if (isempty(s))
                return false;
        n = strlen(s);
        if (s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

/* RFC 5322 atext */
static bool is_atext(char c) {
        return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool is_dot_atom(const char *s, size_t n) {
        if (n == 0 || s[0] == '.' || s[n - 1] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '.') {
                        if (s[i + 1] == '.')
                                return false;
                } else if (!is_atext(s[i]))
                        return false;
        }
        return true;
}

static bool is_domain_name(const char *s, size_t n) {
        if (n == 0 || IN_SET(s[0], '.', '-') || IN_SET(s[n - 1], '.', '-'))
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '.' && s[i + 1] == '.')
                        return false;
                if (!is_alnum(s[i]) && !IN_SET(s[i], '-', '.', '_'))
                        return false;
        }
        return true;
}

/* pvalue (RFC 8601 §2.2) unquoted: a token, or [ [ local-part ] "@" ] domain-name. */
static bool is_bare_pvalue(const char *s) {
        const char *at;

        if (is_token(s))
                return true;
        at = strrchr(s, '@');
        if (!at)
                return false;
        if (at > s && !is_dot_atom(s, at - s))
                return false;
        return is_domain_name(at + 1, strlen(at + 1));
}

/* A value as a quoted-string; controls are refused (a value never spans lines). */
static int quote(const char *s, char **ret) {
        _cleanup_free_ char *q = NULL;
        size_t n = strlen(s), k = 0;

        if (n > AUTH_RESULTS_VALUE_MAX)
                return -E2BIG;
        q = malloc(2 * n + 3);
        if (!q)
                return -ENOMEM;
        q[k++] = '"';
        for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (c < 0x20 || c == 0x7f)
                        return -EINVAL;
                if (c == '"' || c == '\\')
                        q[k++] = '\\';
                q[k++] = (char) c;
        }
        q[k++] = '"';
        q[k] = '\0';
        *ret = TAKE_PTR(q);
        return 0;
}

static int format_value(const char *s, bool pvalue, char **ret) {
        char *c;

        if (strlen(s) > AUTH_RESULTS_VALUE_MAX)
                return -E2BIG;
        if (pvalue ? is_bare_pvalue(s) : is_token(s)) {
                c = strdup(s);
                if (!c)
                        return -ENOMEM;
                *ret = c;
                return 0;
        }
        return quote(s, ret);
}

int auth_results_new(const char *authserv_id, AuthResults **ret) {
        _cleanup_(auth_results_freep) AuthResults *ar = NULL;
        int r;

        assert(ret);

        if (isempty(authserv_id))
                return -EINVAL;

        ar = calloc(1, sizeof(AuthResults));
        if (!ar)
                return -ENOMEM;
        r = format_value(authserv_id, false, &ar->authserv_id);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(ar);
        return 0;
}

AuthResults* auth_results_free(AuthResults *ar) {
        if (!ar)
                return NULL;

        for (size_t i = 0; i < ar->n_methods; i++) {
                free(ar->methods[i].spec);
                free(ar->methods[i].reason);
                for (size_t j = 0; j < ar->methods[i].n_properties; j++)
                        free(ar->methods[i].properties[j]);
        }
        free(ar->authserv_id);
        free(ar);
        return NULL;
}

int auth_results_add(AuthResults *ar, const char *method, const char *result, const char *reason) {
        _cleanup_free_ char *spec = NULL, *rs = NULL;
        AuthResultsMethod *m;
        int r;

        assert(ar);

        if (!is_keyword(method) || !is_keyword(result))
                return -EINVAL;
        if (ar->n_methods >= AUTH_RESULTS_MAX_METHODS)
                return -E2BIG;

        r = asprintf_safe(&spec, "%s=%s", method, result);
        if (r < 0)
                return r;
        if (!isempty(reason)) {
                _cleanup_free_ char *v = NULL;

                r = format_value(reason, false, &v);
                if (r < 0)
                        return r;
                r = asprintf_safe(&rs, "reason=%s", v);
                if (r < 0)
                        return r;
        }

        m = ar->methods + ar->n_methods++;
        *m = (AuthResultsMethod) {
                .spec = TAKE_PTR(spec),
                .reason = TAKE_PTR(rs),
        };
        return 0;
}

int auth_results_add_property(AuthResults *ar, const char *ptype, const char *property, const char *value) {
        _cleanup_free_ char *v = NULL, *text = NULL;
        AuthResultsMethod *m;
        int r;

        assert(ar);

        if (!is_keyword(ptype) || !is_keyword(property))
                return -EINVAL;
        if (ar->n_methods == 0)
                return -ENOENT;
        if (isempty(value))
                return 0;

        m = ar->methods + ar->n_methods - 1;
        if (m->n_properties >= AUTH_RESULTS_MAX_PROPERTIES)
                return -E2BIG;

        r = format_value(value, true, &v);
        if (r < 0)
                return r;
        r = asprintf_safe(&text, "%s.%s=%s", ptype, property, v);
        if (r < 0)
                return r;

        m->properties[m->n_properties++] = TAKE_PTR(text);
        return 0;
}

/* Undo a failed convenience call, so the caller never reports half a result. */
static int drop_last(AuthResults *ar, int r) {
        AuthResultsMethod *m;

        assert(ar->n_methods > 0);

        m = ar->methods + --ar->n_methods;
        free(m->spec);
        free(m->reason);
        for (size_t j = 0; j < m->n_properties; j++)
                free(m->properties[j]);
        *m = (AuthResultsMethod) {};
        return r;
}

int auth_results_add_spf(AuthResults *ar, const char *result, const char *reason,
                         const char *mailfrom, const char *helo) {
        int r;

        r = auth_results_add(ar, "spf", result, reason);
        if (r < 0)
                return r;
        r = auth_results_add_property(ar, "smtp", "mailfrom", mailfrom);
        if (r < 0)
                return drop_last(ar, r);
        r = auth_results_add_property(ar, "smtp", "helo", helo);
        if (r < 0)
                return drop_last(ar, r);
        return 0;
}

int auth_results_add_dkim(AuthResults *ar, const char *result, const char *reason,
                          const char *domain, const char *selector, const char *header_b) {
        char b[AUTH_RESULTS_HEADER_B_LEN + 1] = {};
        int r;

        r = auth_results_add(ar, "dkim", result, reason);
        if (r < 0)
                return r;
        r = auth_results_add_property(ar, "header", "d", domain);
        if (r < 0)
                return drop_last(ar, r);
        r = auth_results_add_property(ar, "header", "s", selector);
        if (r < 0)
                return drop_last(ar, r);
        if (header_b) {
                /* the base64 text without any folding whitespace */
                for (size_t i = 0, k = 0; header_b[i] && k < AUTH_RESULTS_HEADER_B_LEN; i++)
                        if (!strchr(" \t\r\n", header_b[i]))
                                b[k++] = header_b[i];
                r = auth_results_add_property(ar, "header", "b", b);
                if (r < 0)
                        return drop_last(ar, r);
        }
        return 0;
}

int auth_results_add_dmarc(AuthResults *ar, const char *result, const char *reason,
                           const char *from_domain) {
        int r;

        r = auth_results_add(ar, "dmarc", result, reason);
        if (r < 0)
                return r;
        r = auth_results_add_property(ar, "header", "from", from_domain);
        if (r < 0)
                return drop_last(ar, r);
        return 0;
}

int auth_results_add_arc(AuthResults *ar, const char *result, const char *reason,
                         const char *remote_ip) {
        int r;

        r = auth_results_add(ar, "arc", result, reason);
        if (r < 0)
                return r;
        r = auth_results_add_property(ar, "smtp", "remote-ip", remote_ip);
        if (r < 0)
                return drop_last(ar, r);
        return 0;
}

typedef struct Writer {
        char *data;
        size_t len;
        size_t alloc;
        size_t column;
} Writer;

static int writer_put(Writer *w, const char *s) {
        size_t n = strlen(s);

        if (w->len + n + 1 > w->alloc) {
                size_t na = MAX(w->alloc * 2, w->len + n + 1);
                char *p;

                na = MAX(na, (size_t) 256);
                p = realloc(w->data, na);
                if (!p)
                        return -ENOMEM;
                w->data = p;
                w->alloc = na;
        }
        memcpy(w->data + w->len, s, n + 1);
        w->len += n;
        for (const char *p = s; *p; p++)
                w->column = *p == '\n' ? 0 : *p == '\t' ? w->column + 8 : w->column + 1;
        return 0;
}

/* " element", or a fold and the element when it would cross the column limit. */
static int writer_element(Writer *w, const char *e) {
        int r;

        if (w->column + 1 + strlen(e) > AUTH_RESULTS_FOLD_COLUMN)
                r = writer_put(w, "\r\n\t");
        else
                r = writer_put(w, " ");
        if (r < 0)
                return r;
        return writer_put(w, e);
}

int auth_results_format(const AuthResults *ar, char **ret) {
        Writer w = { .column = STRLEN(AUTH_RESULTS_FIELD_NAME ":") };
        int r;

        assert(ar);
        assert(ret);

#define PUT(s) do { r = writer_put(&w, (s)); if (r < 0) goto fail; } while (false)
#define ELEMENT(s) do { r = writer_element(&w, (s)); if (r < 0) goto fail; } while (false)
        PUT(" ");
        PUT(ar->authserv_id);
        PUT(";");
        if (ar->n_methods == 0)
                ELEMENT("none");

        for (size_t i = 0; i < ar->n_methods; i++) {
                const AuthResultsMethod *m = ar->methods + i;

                /* every resinfo begins a line of its own */
                PUT("\r\n\t");
                PUT(m->spec);
                if (m->reason)
                        ELEMENT(m->reason);
                for (size_t j = 0; j < m->n_properties; j++)
                        ELEMENT(m->properties[j]);
                if (i + 1 < ar->n_methods)
                        PUT(";");
        }
#undef PUT
#undef ELEMENT

        *ret = TAKE_PTR(w.data);
        return 0;

fail:
        free(w.data);
        return r;
}

/* Reading. */

typedef struct Lexer {
        const char *s;
        size_t len;
        size_t i;
} Lexer;

static bool lexer_end(const Lexer *l) {
        return l->i >= l->len;
}

static char lexer_peek(const Lexer *l) {
        return l->i < l->len ? l->s[l->i] : 0;
}

/* CFWS: white space, folds and (nested) comments with quoted-pairs. */
static int lexer_skip_cfws(Lexer *l) {
        while (l->i < l->len) {
                char c = l->s[l->i];

                if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                        l->i++;
                        continue;
                }
                if (c != '(')
                        break;
                for (unsigned depth = 0;;) {
                        if (l->i >= l->len)
                                return -EBADMSG;
                        c = l->s[l->i++];
                        if (c == '\\') {
                                if (l->i >= l->len)
                                        return -EBADMSG;
                                l->i++;
                        } else if (c == '(')
                                depth++;
                        else if (c == ')' && --depth == 0)
                                break;
                }
        }
        return 0;
}

static bool is_keyword_char(char c) {
        return is_alnum(c) || c == '-' || c == '_';
}

/* A keyword (method, result, ptype, property), lower-cased. */
static int lexer_keyword(Lexer *l, char **ret) {
        size_t start = l->i;
        char *k;

        while (l->i < l->len && is_keyword_char(l->s[l->i]))
                l->i++;
        if (l->i == start)
                return -EBADMSG;
        if (l->i - start > AUTH_RESULTS_VALUE_MAX)
                return -E2BIG;
        k = strndup(l->s + start, l->i - start);
        if (!k)
                return -ENOMEM;
        for (char *q = k; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                        *q = (char) (*q - 'A' + 'a');
        *ret = k;
        return 0;
}

/* A value: a quoted-string (unquoted here), or a run of printable characters up to CFWS,
 * ';' or '(' (a token, an addr-spec or "@domain"; lenient about characters the grammar
 * does not allow, as readers of this field must be). */
static int lexer_value(Lexer *l, char **ret) {
        _cleanup_free_ char *v = NULL;
        size_t n = 0;

        if (lexer_peek(l) == '"') {
                v = malloc(AUTH_RESULTS_VALUE_MAX + 1);
                if (!v)
                        return -ENOMEM;
                l->i++;
                for (;;) {
                        char c;

                        if (l->i >= l->len)
                                return -EBADMSG;
                        c = l->s[l->i++];
                        if (c == '"')
                                break;
                        if (c == '\\') {
                                if (l->i >= l->len)
                                        return -EBADMSG;
                                c = l->s[l->i++];
                        } else if (c == '\r' || c == '\n')
                                continue;       /* a fold inside the quoted-string */
                        if (n >= AUTH_RESULTS_VALUE_MAX)
                                return -E2BIG;
                        v[n++] = c;
                }
                v[n] = 0;
        } else {
                size_t start = l->i;

                while (l->i < l->len) {
                        char c = l->s[l->i];

                        if (c <= 0x20 || c >= 0x7f || c == ';' || c == '(' || c == '"')
                                break;
                        l->i++;
                }
                if (l->i == start)
                        return -EBADMSG;
                if (l->i - start > AUTH_RESULTS_VALUE_MAX)
                        return -E2BIG;
                v = strndup(l->s + start, l->i - start);
                if (!v)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

static bool lexer_take(Lexer *l, char c) {
        if (lexer_peek(l) != c)
                return false;
        l->i++;
        return true;
}

static void info_done(AuthResultsInfo *info) {
        free(info->method);
        free(info->result);
        free(info->reason);
        for (size_t i = 0; i < info->n_properties; i++) {
                free(info->properties[i].ptype);
                free(info->properties[i].property);
                free(info->properties[i].value);
        }
}

AuthResultsParsed* auth_results_parsed_free(AuthResultsParsed *p) {
        if (!p)
                return NULL;
        free(p->authserv_id);
        for (size_t i = 0; i < p->n_infos; i++)
                info_done(&p->infos[i]);
        free(p->infos);
        free(p);
        return NULL;
}

/* "method[/version]=result [reason=value] [ptype.property=value]..." into info. */
static int parse_resinfo(Lexer *l, AuthResultsInfo *info) {
        int r;

        r = lexer_keyword(l, &info->method);
        if (r < 0)
                return r;
        r = lexer_skip_cfws(l);
        if (r < 0)
                return r;
        if (lexer_take(l, '/')) {
                size_t start;

                r = lexer_skip_cfws(l);
                if (r < 0)
                        return r;
                start = l->i;
                while (l->i < l->len && l->s[l->i] >= '0' && l->s[l->i] <= '9')
                        l->i++;
                if (l->i == start)
                        return -EBADMSG;
                r = lexer_skip_cfws(l);
                if (r < 0)
                        return r;
        }
        if (!lexer_take(l, '='))
                return -EBADMSG;
        r = lexer_skip_cfws(l);
        if (r < 0)
                return r;
        r = lexer_keyword(l, &info->result);
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_free_ char *k = NULL;
                AuthResultsProperty *p;

                r = lexer_skip_cfws(l);
                if (r < 0)
                        return r;
                if (lexer_end(l) || lexer_peek(l) == ';')
                        return 0;
                r = lexer_keyword(l, &k);
                if (r < 0)
                        return r;
                r = lexer_skip_cfws(l);
                if (r < 0)
                        return r;
                if (streq(k, "reason") && !info->reason && info->n_properties == 0 && lexer_take(l, '=')) {
                        r = lexer_skip_cfws(l);
                        if (r < 0)
                                return r;
                        r = lexer_value(l, &info->reason);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!lexer_take(l, '.'))
                        return -EBADMSG;
                if (info->n_properties >= AUTH_RESULTS_MAX_PROPERTIES)
                        return -E2BIG;
                p = &info->properties[info->n_properties];
                r = lexer_skip_cfws(l);
                if (r < 0)
                        return r;
                r = lexer_keyword(l, &p->property);
                if (r < 0)
                        return r;
                p->ptype = TAKE_PTR(k);
                info->n_properties++;     /* from here on info_done() frees it */
                r = lexer_skip_cfws(l);
                if (r < 0)
                        return r;
                if (!lexer_take(l, '='))
                        return -EBADMSG;
                r = lexer_skip_cfws(l);
                if (r < 0)
                        return r;
                r = lexer_value(l, &p->value);
                if (r < 0)
                        return r;
        }
}

int auth_results_parse(const char *value, size_t len, AuthResultsParsed **ret) {
        _cleanup_(auth_results_parsed_freep) AuthResultsParsed *p = NULL;
        Lexer l = { .s = value, .len = len };
        int r;

        assert(value || len == 0);
        assert(ret);

        /* No NUL in a header field (RFC 5322 §2.2); inside a quoted string it would cut
         * the value short once it is a C string. */
        if (len > 0 && memchr(value, 0, len))
                return -EBADMSG;

        p = calloc(1, sizeof(AuthResultsParsed));
        if (!p)
                return -ENOMEM;

        r = lexer_skip_cfws(&l);
        if (r < 0)
                return r;
        if (lexer_peek(&l) == ';' || lexer_end(&l))
                return -EBADMSG;
        r = lexer_value(&l, &p->authserv_id);
        if (r < 0)
                return r;
        if (isempty(p->authserv_id))    /* "" names no one */
                return -EBADMSG;
        r = lexer_skip_cfws(&l);
        if (r < 0)
                return r;
        /* authres-version */
        if (lexer_peek(&l) >= '0' && lexer_peek(&l) <= '9') {
                while (lexer_peek(&l) >= '0' && lexer_peek(&l) <= '9')
                        l.i++;
                r = lexer_skip_cfws(&l);
                if (r < 0)
                        return r;
        }

        for (bool none = false;;) {
                AuthResultsInfo *n;
                size_t mark;

                r = lexer_skip_cfws(&l);
                if (r < 0)
                        return r;
                if (lexer_end(&l))
                        break;
                if (none || !lexer_take(&l, ';'))
                        return -EBADMSG;
                r = lexer_skip_cfws(&l);
                if (r < 0)
                        return r;
                if (lexer_end(&l))
                        break;          /* a final ';' is common enough to accept */

                /* no-result: "; none" as the only resinfo */
                mark = l.i;
                if (p->n_infos == 0 && l.len - l.i >= 4 && strncasecmp(l.s + l.i, "none", 4) == 0) {
                        l.i += 4;
                        r = lexer_skip_cfws(&l);
                        if (r < 0)
                                return r;
                        if (lexer_end(&l)) {
                                none = true;
                                continue;
                        }
                        l.i = mark;
                }

                if (p->n_infos >= AUTH_RESULTS_MAX_METHODS)
                        return -E2BIG;
                n = reallocarray(p->infos, p->n_infos + 1, sizeof(AuthResultsInfo));
                if (!n)
                        return -ENOMEM;
                p->infos = n;
                p->infos[p->n_infos] = (AuthResultsInfo) {};
                p->n_infos++;
                r = parse_resinfo(&l, &p->infos[p->n_infos - 1]);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(p);
        return 0;
}

const char* auth_results_info_property(const AuthResultsInfo *info, const char *ptype, const char *property) {
        for (size_t i = 0; i < info->n_properties; i++)
                if (strcaseeq(info->properties[i].ptype, ptype) &&
                    strcaseeq(info->properties[i].property, property))
                        return info->properties[i].value;
        return NULL;
}
