/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "spf-macro.h"
#include "string-util.h"

#define SPF_MACRO_DELIMITERS ".-+,/_="

typedef struct MacroBuf {
        char *data;
        size_t len, size;
} MacroBuf;

static int buf_append(MacroBuf *b, const char *s, size_t n) {
        if (n > SPF_MACRO_EXPANSION_MAX || b->len + n > SPF_MACRO_EXPANSION_MAX)
                return -E2BIG;
        if (b->len + n + 1 > b->size) {
                size_t size = MAX(b->size * 2, b->len + n + 1);
                char *d;

                size = MAX(size, (size_t) 64U);
                d = realloc(b->data, size);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->size = size;
        }
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

static bool is_macro_literal(char c) {
        /* %x21-24 / %x26-7E */
        return (c >= 0x21 && c <= 0x24) || (c >= 0x26 && c <= 0x7e);
}

static bool is_letter(char c, SpfMacroFlags flags) {
        if (c >= 'A' && c <= 'Z')
                c = (char) (c - 'A' + 'a');
        if (strchr("slodiphv", c) && c != 0)
                return true;
        /* c, r, t are valid only in an explanation (§7.1) */
        return (flags & SPF_MACRO_EXPLANATION) && c != 0 && strchr("crt", c);
}

/* Parses one "%{...}" starting at s[0] == '%' and s[1] == '{'. Returns the length
 * consumed, or 0 on a syntax error. */
typedef struct MacroExpand {
        char letter;            /* as written (case carries URL escaping) */
        uint64_t digits;        /* 0: all parts */
        bool reverse;
        char delimiters[sizeof(SPF_MACRO_DELIMITERS)];
} MacroExpand;

static size_t parse_expand(const char *s, size_t len, SpfMacroFlags flags, MacroExpand *ret) {
        MacroExpand m = {};
        size_t i = 2, n_delim = 0;
        bool have_digits = false;

        if (i >= len || !is_letter(s[i], flags))
                return 0;
        m.letter = s[i++];
        while (i < len && s[i] >= '0' && s[i] <= '9') {
                /* saturate: any count above the number of parts means "all of them" */
                if (m.digits < 1000)
                        m.digits = m.digits * 10 + (uint64_t) (s[i] - '0');
                have_digits = true;
                i++;
        }
        if (have_digits && m.digits == 0)
                return 0;       /* §7.3: a DIGIT transformer must be nonzero */
        if (i < len && (s[i] == 'r' || s[i] == 'R')) {
                m.reverse = true;
                i++;
        }
        while (i < len && s[i] != 0 && strchr(SPF_MACRO_DELIMITERS, s[i])) {
                if (!memchr(m.delimiters, s[i], n_delim) && n_delim < sizeof(m.delimiters) - 1)
                        m.delimiters[n_delim++] = s[i];
                i++;
        }
        if (i >= len || s[i] != '}')
                return 0;
        *ret = m;
        return i + 1;
}

bool spf_macro_string_valid(const char *s, size_t len, SpfMacroFlags flags) {
        for (size_t i = 0; i < len;) {
                if (s[i] == '%') {
                        MacroExpand m;
                        size_t n;

                        if (i + 1 >= len)
                                return false;
                        if (IN_SET(s[i + 1], '%', '_', '-')) {
                                i += 2;
                                continue;
                        }
                        if (s[i + 1] != '{')
                                return false;
                        n = parse_expand(s + i, len - i, flags, &m);
                        if (n == 0)
                                return false;
                        i += n;
                } else if (is_macro_literal(s[i]) || ((flags & SPF_MACRO_EXPLANATION) && s[i] == ' '))
                        i++;
                else
                        return false;
        }
        return true;
}

bool spf_macro_uses_p(const char *s) {
        for (const char *p = s; (p = strstr(p, "%{")); p += 2)
                if (p[2] == 'p' || p[2] == 'P') {
                        /* "%%{p}" is a literal "%{p}" */
                        size_t n = 0;
                        for (const char *q = p; q > s && q[-1] == '%'; q--)
                                n++;
                        if (n % 2 == 0)
                                return true;
                }
        return false;
}

static int letter_value(char letter, const SpfMacroContext *c, SpfMacroFlags flags, char **ret) {
        char buf[INET6_ADDRSTRLEN + 1];
        const char *v = NULL;
        char *d;

        switch (letter) {
        case 's':
                v = c->sender;
                break;
        case 'l':
                v = c->local_part;
                break;
        case 'o':
                v = c->sender_domain;
                break;
        case 'd':
                v = c->domain;
                break;
        case 'h':
                v = c->helo;
                break;
        case 'p':
                v = c->validated_name ?: "unknown";
                break;
        case 'r':
                v = c->receiver ?: "unknown";
                break;
        case 'v':
                v = c->family == AF_INET6 ? "ip6" : "in-addr";
                break;
        case 't':
                return asprintf_safe(ret, "%" PRIu64, c->now) < 0 ? -ENOMEM : 0;
        case 'c':
                if (!inet_ntop(c->family, &c->ip, buf, sizeof(buf)))
                        return -EINVAL;
                v = buf;
                break;
        case 'i':
                if (c->family == AF_INET6) {
                        /* §7.3: dot-format, 32 nibbles. Case does not matter in a DNS name;
                         * §7.4 writes them in lower case there. In explanation text the
                         * openspf suite (v-macro-ip6) expects upper case, as pyspf writes. */
                        const char *hex = (flags & SPF_MACRO_EXPLANATION) ? "0123456789ABCDEF" :
                                                                            "0123456789abcdef";
                        char nib[64];

                        for (size_t k = 0; k < 16; k++) {
                                nib[k * 4] = hex[c->ip.in6.s6_addr[k] >> 4];
                                nib[k * 4 + 1] = '.';
                                nib[k * 4 + 2] = hex[c->ip.in6.s6_addr[k] & 0xf];
                                nib[k * 4 + 3] = '.';
                        }
                        nib[63] = 0;
                        d = strdup(nib);
                        if (!d)
                                return -ENOMEM;
                        *ret = d;
                        return 0;
                }
                if (!inet_ntop(AF_INET, &c->ip.in, buf, sizeof(buf)))
                        return -EINVAL;
                v = buf;
                break;
        default:
                return -EBADMSG;
        }

        d = strdup(strempty(v));
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

static bool is_unreserved(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                IN_SET(c, '-', '.', '_', '~');
}

static int append_transformed(MacroBuf *b, const char *value, const MacroExpand *m) {
        const char *delims = m->delimiters[0] ? m->delimiters : ".";
        const char *parts[256];
        size_t lens[256], n = 0, first;
        bool escape = m->letter >= 'A' && m->letter <= 'Z';
        MacroBuf t = {};
        int r = 0;

        /* Split on the delimiters; values come from our own request and DNS names, so a
         * value with more than ELEMENTSOF(parts) parts has its leftmost ones merged. */
        for (const char *p = value;;) {
                size_t k = strcspn(p, delims);

                if (n == ELEMENTSOF(parts)) {
                        /* merge into the last slot: extend it to the end */
                        lens[n - 1] = strlen(parts[n - 1]);
                        break;
                }
                parts[n] = p;
                lens[n] = k;
                n++;
                if (p[k] == 0)
                        break;
                p += k + 1;
        }

        if (m->reverse)
                for (size_t i = 0; i < n / 2; i++) {
                        const char *tp = parts[i];
                        size_t tl = lens[i];

                        parts[i] = parts[n - 1 - i];
                        lens[i] = lens[n - 1 - i];
                        parts[n - 1 - i] = tp;
                        lens[n - 1 - i] = tl;
                }

        first = m->digits > 0 && m->digits < n ? n - (size_t) m->digits : 0;
        for (size_t i = first; i < n; i++) {
                if (i > first) {
                        r = buf_append(&t, ".", 1);
                        if (r < 0)
                                goto finish;
                }
                r = buf_append(&t, parts[i], lens[i]);
                if (r < 0)
                        goto finish;
        }

        if (!escape) {
                r = buf_append(b, strempty(t.data), t.len);
                goto finish;
        }
        for (size_t i = 0; i < t.len; i++) {
                char enc[4];

                if (is_unreserved(t.data[i])) {
                        r = buf_append(b, t.data + i, 1);
                } else {
                        (void) snprintf(enc, sizeof(enc), "%%%02X", (unsigned char) t.data[i]);
                        r = buf_append(b, enc, 3);
                }
                if (r < 0)
                        goto finish;
        }

finish:
        free(t.data);
        return r;
}

/* §7.3: drop labels from the left until the name fits in 253 octets. */
static void truncate_domain(MacroBuf *b) {
        size_t off = 0;

        while (b->len - off > SPF_DOMAIN_NAME_MAX) {
                const char *dot = memchr(b->data + off, '.', b->len - off);

                if (!dot) {
                        /* one label longer than a name: nothing sensible is left */
                        off = b->len;
                        break;
                }
                off = (size_t) (dot - b->data) + 1;
        }
        if (off > 0) {
                memmove(b->data, b->data + off, b->len - off);
                b->len -= off;
                b->data[b->len] = 0;
        }
}

int spf_macro_expand(const char *s, const SpfMacroContext *c, SpfMacroFlags flags, char **ret) {
        MacroBuf b = {};
        size_t len;
        int r;

        assert(s);
        assert(c);
        assert(ret);

        len = strlen(s);
        if (!spf_macro_string_valid(s, len, flags))
                return -EBADMSG;

        r = buf_append(&b, "", 0);
        if (r < 0)
                return r;

        for (size_t i = 0; i < len;) {
                if (s[i] != '%') {
                        size_t k = strcspn(s + i, "%");

                        r = buf_append(&b, s + i, k);
                        if (r < 0)
                                goto fail;
                        i += k;
                        continue;
                }
                switch (s[i + 1]) {
                case '%':
                        r = buf_append(&b, "%", 1);
                        i += 2;
                        break;
                case '_':
                        r = buf_append(&b, " ", 1);
                        i += 2;
                        break;
                case '-':
                        r = buf_append(&b, "%20", 3);
                        i += 2;
                        break;
                default: {
                        _cleanup_free_ char *value = NULL;
                        MacroExpand m;
                        size_t n;
                        char lower;

                        n = parse_expand(s + i, len - i, flags, &m);
                        assert(n > 0);  /* validated above */
                        lower = m.letter >= 'A' && m.letter <= 'Z' ? (char) (m.letter - 'A' + 'a') : m.letter;
                        r = letter_value(lower, c, flags, &value);
                        if (r < 0)
                                goto fail;
                        r = append_transformed(&b, value, &m);
                        i += n;
                }
                }
                if (r < 0)
                        goto fail;
        }

        if (flags & SPF_MACRO_DOMAIN)
                truncate_domain(&b);

        *ret = b.data;
        return 0;

fail:
        free(b.data);
        return r;
}
