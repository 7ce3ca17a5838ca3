/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "spf-macro.h"
#include "spf-record.h"
#include "string-util.h"

static const char* const mechanism_table[_SPF_MECHANISM_MAX] = {
        [SPF_MECHANISM_ALL] = "all",
        [SPF_MECHANISM_INCLUDE] = "include",
        [SPF_MECHANISM_A] = "a",
        [SPF_MECHANISM_MX] = "mx",
        [SPF_MECHANISM_PTR] = "ptr",
        [SPF_MECHANISM_IP4] = "ip4",
        [SPF_MECHANISM_IP6] = "ip6",
        [SPF_MECHANISM_EXISTS] = "exists",
};

const char* spf_mechanism_type_to_string(SpfMechanismType t) {
        return t >= 0 && t < _SPF_MECHANISM_MAX ? mechanism_table[t] : NULL;
}

static const char* const qualifier_table[_SPF_QUALIFIER_MAX] = {
        [SPF_QUALIFIER_PASS] = "+",
        [SPF_QUALIFIER_FAIL] = "-",
        [SPF_QUALIFIER_SOFTFAIL] = "~",
        [SPF_QUALIFIER_NEUTRAL] = "?",
};

const char* spf_qualifier_to_string(SpfQualifier q) {
        return q >= 0 && q < _SPF_QUALIFIER_MAX ? qualifier_table[q] : NULL;
}

bool spf_record_is_spf(const char *txt, size_t len) {
        if (len < STRLEN("v=spf1") || strncasecmp(txt, "v=spf1", STRLEN("v=spf1")) != 0)
                return false;
        return len == STRLEN("v=spf1") || txt[STRLEN("v=spf1")] == ' ';
}

SpfRecord* spf_record_free(SpfRecord *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_mechanisms; i++) {
                free(r->mechanisms[i].domain_spec);
                free(r->mechanisms[i].text);
        }
        free(r->mechanisms);
        free(r->redirect);
        free(r->exp);
        free(r);
        return NULL;
}

static bool is_alpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_valid(const char *s, size_t len) {
        bool alpha = false;

        if (len == 0 || len > 63)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (is_alpha(s[i]))
                        alpha = true;
                else if (!is_digit(s[i]) && s[i] != '-')
                        return false;
        }
        if (alpha && !memchr(s, '-', len))
                return true;
        /* the form with a dash: starts and ends with alphanum */
        return s[0] != '-' && s[len - 1] != '-' && memchr(s, '-', len);
}

bool spf_domain_spec_valid(const char *s, size_t len) {
        const char *dot;
        size_t tl;

        if (len == 0 || !spf_macro_string_valid(s, len, 0))
                return false;

        /* domain-end = ( "." toplabel [ "." ] ) / macro-expand */
        if (s[len - 1] == '}') {
                /* ends in a macro-expand unless the brace is an escaped literal, which cannot
                 * happen: '}' is only a literal outside "%{", and then it is not the end of a
                 * macro-expand. Find the "%{" that opens it. */
                for (size_t i = len - 1; i > 0; i--)
                        if (s[i - 1] == '%' && s[i] == '{') {
                                size_t pct = 0;
                                for (size_t k = i; k > 0 && s[k - 1] == '%'; k--)
                                        pct++;
                                if (pct % 2 == 1 && !memchr(s + i, '}', len - 1 - i))
                                        return true;
                                break;
                        }
        }

        if (s[len - 1] == '.')
                len--;
        if (len == 0)
                return false;
        dot = NULL;
        for (size_t i = len; i > 0; i--)
                if (s[i - 1] == '.') {
                        dot = s + i - 1;
                        break;
                }
        if (!dot)
                return false;
        tl = len - (size_t) (dot - s) - 1;
        return toplabel_valid(dot + 1, tl);
}

/* "/" ("0" / %x31-39 0*N DIGIT), value <= max */
static size_t parse_cidr(const char *s, size_t len, unsigned max, unsigned *ret) {
        unsigned v = 0;
        size_t i = 1;

        if (len < 2 || s[0] != '/' || !is_digit(s[1]))
                return 0;
        if (s[1] == '0') {
                if (len > 2 && is_digit(s[2]))
                        return 0;
                *ret = 0;
                return 2;
        }
        while (i < len && is_digit(s[i]) && i < 5) {
                v = v * 10 + (unsigned) (s[i] - '0');
                i++;
        }
        if (v > max)
                return 0;
        *ret = v;
        return i;
}

static int record_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int record_error(char **ret_error, const char *fmt, ...) {
        va_list ap;
        char *m;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(&m, fmt, ap) < 0)
                        m = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = m;
        }
        return -EBADMSG;
}

/* Split an optional dual-cidr-length off the end of arg[0..*len). Returns false on
 * an invalid one. */
static bool split_dual_cidr(const char *arg, size_t *len, SpfMechanism *m) {
        size_t n = *len, k;
        const char *slash;

        /* ip6-cidr-length: "//" digits at the end */
        for (k = n; k > 0 && is_digit(arg[k - 1]); k--)
                ;
        if (k < n && k >= 2 && arg[k - 1] == '/' && arg[k - 2] == '/') {
                if (parse_cidr(arg + k - 1, n - k + 1, 128, &m->cidr6) != n - k + 1)
                        return false;
                n = k - 2;
        }
        for (k = n; k > 0 && is_digit(arg[k - 1]); k--)
                ;
        if (k < n && k >= 1 && arg[k - 1] == '/') {
                if (parse_cidr(arg + k - 1, n - k + 1, 32, &m->cidr4) != n - k + 1)
                        return false;
                n = k - 1;
        }
        /* a slash that is left right at the end, or "//" without digits, is malformed */
        slash = n > 0 ? arg + n - 1 : NULL;
        if (slash && *slash == '/')
                return false;
        *len = n;
        return true;
}

static int parse_mechanism(const char *term, size_t len, SpfMechanism *m, char **ret_error) {
        static const struct {
                const char *name;
                SpfMechanismType type;
        } names[] = {
                { "all", SPF_MECHANISM_ALL },
                { "include", SPF_MECHANISM_INCLUDE },
                { "a", SPF_MECHANISM_A },
                { "mx", SPF_MECHANISM_MX },
                { "ptr", SPF_MECHANISM_PTR },
                { "ip4", SPF_MECHANISM_IP4 },
                { "ip6", SPF_MECHANISM_IP6 },
                { "exists", SPF_MECHANISM_EXISTS },
        };
        const char *p = term, *arg = NULL;
        size_t n = len, name_len, arg_len = 0;
        char addr[INET6_ADDRSTRLEN + 1];

        m->qualifier = SPF_QUALIFIER_PASS;
        m->cidr4 = 32;
        m->cidr6 = 128;
        if (n > 0 && *p != 0 && strchr("+-~?", *p)) {
                m->qualifier = *p == '+' ? SPF_QUALIFIER_PASS :
                               *p == '-' ? SPF_QUALIFIER_FAIL :
                               *p == '~' ? SPF_QUALIFIER_SOFTFAIL : SPF_QUALIFIER_NEUTRAL;
                p++, n--;
        }

        for (name_len = 0; name_len < n && (is_alpha(p[name_len]) || is_digit(p[name_len])); name_len++)
                ;
        m->type = _SPF_MECHANISM_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strlen(names[i].name) == name_len && strncasecmp(p, names[i].name, name_len) == 0) {
                        m->type = names[i].type;
                        break;
                }
        if (m->type < 0)
                return record_error(ret_error, "unknown mechanism '%.*s'", (int) len, term);

        if (name_len < n) {
                if (p[name_len] == ':') {
                        arg = p + name_len + 1;
                        arg_len = n - name_len - 1;
                } else if (p[name_len] == '/') {
                        arg = p + name_len;
                        arg_len = n - name_len;
                } else
                        return record_error(ret_error, "malformed mechanism '%.*s'", (int) len, term);
        }

        switch (m->type) {
        case SPF_MECHANISM_ALL:
                if (arg)
                        return record_error(ret_error, "'all' takes no argument: '%.*s'", (int) len, term);
                return 0;

        case SPF_MECHANISM_INCLUDE:
        case SPF_MECHANISM_EXISTS:
        case SPF_MECHANISM_PTR:
                if (!arg && m->type != SPF_MECHANISM_PTR)
                        return record_error(ret_error, "'%.*s' needs a domain-spec", (int) len, term);
                if (!arg)
                        return 0;
                if (arg[-1] != ':')
                        return record_error(ret_error, "'%.*s' takes no CIDR length", (int) len, term);
                break;

        case SPF_MECHANISM_A:
        case SPF_MECHANISM_MX:
                if (!arg)
                        return 0;
                if (!split_dual_cidr(arg, &arg_len, m))
                        return record_error(ret_error, "invalid CIDR length in '%.*s'", (int) len, term);
                if (arg[-1] != ':') {
                        /* only a dual-cidr-length, no domain-spec */
                        if (arg_len != 0)
                                return record_error(ret_error, "malformed mechanism '%.*s'", (int) len, term);
                        return 0;
                }
                break;

        case SPF_MECHANISM_IP4:
        case SPF_MECHANISM_IP6: {
                bool v4 = m->type == SPF_MECHANISM_IP4;
                size_t k;

                if (!arg || arg[-1] != ':')
                        return record_error(ret_error, "'%.*s' needs an address", (int) len, term);
                for (k = arg_len; k > 0 && arg[k - 1] != '/'; k--)
                        ;
                if (k > 0) {
                        unsigned *cidr = v4 ? &m->cidr4 : &m->cidr6;

                        if (parse_cidr(arg + k - 1, arg_len - k + 1, v4 ? 32 : 128, cidr) != arg_len - k + 1)
                                return record_error(ret_error, "invalid CIDR length in '%.*s'", (int) len, term);
                        arg_len = k - 1;
                }
                if (arg_len == 0 || arg_len >= sizeof(addr))
                        return record_error(ret_error, "invalid address in '%.*s'", (int) len, term);
                memcpy(addr, arg, arg_len);
                addr[arg_len] = 0;
                if (inet_pton(v4 ? AF_INET : AF_INET6, addr, &m->network) != 1)
                        return record_error(ret_error, "invalid address in '%.*s'", (int) len, term);
                return 0;
        }

        default:
                assert(false);
        }

        if (!spf_domain_spec_valid(arg, arg_len))
                return record_error(ret_error, "invalid domain-spec in '%.*s'", (int) len, term);
        m->domain_spec = strndup(arg, arg_len);
        if (!m->domain_spec)
                return -ENOMEM;
        return 0;
}

static int parse_modifier(SpfRecord *rec, const char *term, size_t len, size_t eq, char **ret_error) {
        const char *value = term + eq + 1;
        size_t value_len = len - eq - 1;
        char **target = NULL;

        /* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
        if (eq == 0 || !is_alpha(term[0]))
                return record_error(ret_error, "malformed term '%.*s'", (int) len, term);
        for (size_t i = 1; i < eq; i++)
                if (!is_alpha(term[i]) && !is_digit(term[i]) && !IN_SET(term[i], '-', '_', '.'))
                        return record_error(ret_error, "malformed term '%.*s'", (int) len, term);

        if (eq == STRLEN("redirect") && strncasecmp(term, "redirect", eq) == 0)
                target = &rec->redirect;
        else if (eq == STRLEN("exp") && strncasecmp(term, "exp", eq) == 0)
                target = &rec->exp;

        if (!target) {
                /* unknown-modifier = name "=" macro-string: checked, then ignored (§6) */
                if (!spf_macro_string_valid(value, value_len, 0))
                        return record_error(ret_error, "invalid macro-string in '%.*s'", (int) len, term);
                rec->n_unknown_modifiers++;
                return 0;
        }

        if (*target)
                return record_error(ret_error, "modifier '%.*s' given twice", (int) eq, term);
        if (!spf_domain_spec_valid(value, value_len))
                return record_error(ret_error, "invalid domain-spec in '%.*s'", (int) len, term);
        *target = strndup(value, value_len);
        if (!*target)
                return -ENOMEM;
        return 0;
}

int spf_record_parse(const char *text, size_t len, SpfRecord **ret, char **ret_error) {
        _cleanup_(spf_record_freep) SpfRecord *rec = NULL;
        size_t i;
        int r;

        assert(text || len == 0);
        assert(ret);

        if (len > SPF_RECORD_LEN_MAX)
                return record_error(ret_error, "record is %zu octets, more than %zu", len, SPF_RECORD_LEN_MAX);
        if (!spf_record_is_spf(text, len))
                return record_error(ret_error, "record does not start with \"v=spf1\"");
        for (i = 0; i < len; i++)
                if ((unsigned char) text[i] < 0x20 || (unsigned char) text[i] > 0x7e)
                        return record_error(ret_error, "record holds a non-ASCII or control octet 0x%02x at %zu",
                                            (unsigned char) text[i], i);

        rec = calloc(1, sizeof(*rec));
        if (!rec)
                return -ENOMEM;

        i = STRLEN("v=spf1");
        for (;;) {
                const char *term, *sp;
                size_t tl, eq, name_len;

                while (i < len && text[i] == ' ')
                        i++;
                if (i >= len)
                        break;
                term = text + i;
                sp = memchr(term, ' ', len - i);
                tl = sp ? (size_t) (sp - term) : len - i;
                i += tl;

                if (rec->n_mechanisms + rec->n_unknown_modifiers + !!rec->redirect + !!rec->exp >= SPF_RECORD_TERMS_MAX)
                        return record_error(ret_error, "record has more than %zu terms", SPF_RECORD_TERMS_MAX);

                /* A modifier is name "=" ...; a mechanism never holds "=" before a ":" or "/". */
                for (name_len = 0; name_len < tl && (is_alpha(term[name_len]) || is_digit(term[name_len]) ||
                                                     IN_SET(term[name_len], '-', '_', '.')); name_len++)
                        ;
                eq = name_len;
                if (eq < tl && term[eq] == '=') {
                        r = parse_modifier(rec, term, tl, eq, ret_error);
                        if (r < 0)
                                return r;
                        continue;
                }

                SpfMechanism m = {};
                SpfMechanism *l;

                r = parse_mechanism(term, tl, &m, ret_error);
                if (r < 0) {
                        free(m.domain_spec);
                        return r;
                }
                m.text = strndup(term, tl);
                l = m.text ? reallocarray(rec->mechanisms, rec->n_mechanisms + 1, sizeof(SpfMechanism)) : NULL;
                if (!l) {
                        free(m.domain_spec);
                        free(m.text);
                        return -ENOMEM;
                }
                rec->mechanisms = l;
                rec->mechanisms[rec->n_mechanisms++] = m;
        }

        *ret = TAKE_PTR(rec);
        return 0;
}
