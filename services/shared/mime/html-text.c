/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The HTML to text reducer (see html-text.h). It follows the HTML5 tokenizer only as far
 * as the visible text depends on it: what matters is that every byte a browser would
 * show comes out, that markup a browser would not show does not, and that markup cannot
 * be used to cut a word in two without the cut being counted. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "html-text.h"
#include "string-util.h"

enum {
        S_TEXT,
        S_TAG_OPEN,             /* after '<' */
        S_TAG,                  /* inside <...>, collecting */
        S_BANG,                 /* after "<!" */
        S_BANG_DASH,            /* after "<!-" */
        S_COMMENT,
        S_DECL,                 /* <!DOCTYPE ...>, <![CDATA[...]]>, <?...?> */
        S_ENTITY,               /* after '&' */
        S_RAW,                  /* script or style contents */
};

/* Byte classes in text: 0 plain, 1 '<', 2 '&', 3 ASCII whitespace, 4 a lead byte of a
 * character that may be a space or invisible (U+00A0, U+00AD, U+2000.., U+FEFF). */
enum { C_PLAIN, C_LT, C_AMP, C_SPACE, C_MAYBE };

static const uint8_t text_class[256] = {
        ['<'] = C_LT, ['&'] = C_AMP,
        [' '] = C_SPACE, ['\t'] = C_SPACE, ['\n'] = C_SPACE, ['\r'] = C_SPACE, ['\f'] = C_SPACE,
        [0xC2] = C_MAYBE, [0xE2] = C_MAYBE, [0xE3] = C_MAYBE, [0xEF] = C_MAYBE,
};

static const struct {
        const char *name;
        uint32_t c;
} entities[] = {
        { "AElig", 0x00C6 },
        { "Aacute", 0x00C1 },
        { "Acirc", 0x00C2 },
        { "Agrave", 0x00C0 },
        { "Alpha", 0x0391 },
        { "Aring", 0x00C5 },
        { "Atilde", 0x00C3 },
        { "Auml", 0x00C4 },
        { "Beta", 0x0392 },
        { "Ccedil", 0x00C7 },
        { "Dagger", 0x2021 },
        { "Delta", 0x0394 },
        { "ETH", 0x00D0 },
        { "Eacute", 0x00C9 },
        { "Ecirc", 0x00CA },
        { "Egrave", 0x00C8 },
        { "Euml", 0x00CB },
        { "Gamma", 0x0393 },
        { "Iacute", 0x00CD },
        { "Icirc", 0x00CE },
        { "Igrave", 0x00CC },
        { "Iuml", 0x00CF },
        { "NewLine", 0x000A },
        { "NoBreak", 0x2060 },
        { "Ntilde", 0x00D1 },
        { "OElig", 0x0152 },
        { "Oacute", 0x00D3 },
        { "Ocirc", 0x00D4 },
        { "Ograve", 0x00D2 },
        { "Oslash", 0x00D8 },
        { "Otilde", 0x00D5 },
        { "Ouml", 0x00D6 },
        { "Prime", 0x2033 },
        { "Scaron", 0x0160 },
        { "THORN", 0x00DE },
        { "Tab", 0x0009 },
        { "Uacute", 0x00DA },
        { "Ucirc", 0x00DB },
        { "Ugrave", 0x00D9 },
        { "Uuml", 0x00DC },
        { "Yacute", 0x00DD },
        { "Yuml", 0x0178 },
        { "ZeroWidthSpace", 0x200B },
        { "aacute", 0x00E1 },
        { "acirc", 0x00E2 },
        { "acute", 0x00B4 },
        { "aelig", 0x00E6 },
        { "agrave", 0x00E0 },
        { "alpha", 0x03B1 },
        { "amp", 0x0026 },
        { "apos", 0x0027 },
        { "aring", 0x00E5 },
        { "ast", 0x002A },
        { "atilde", 0x00E3 },
        { "auml", 0x00E4 },
        { "bdquo", 0x201E },
        { "beta", 0x03B2 },
        { "brvbar", 0x00A6 },
        { "bsol", 0x005C },
        { "bull", 0x2022 },
        { "ccedil", 0x00E7 },
        { "cedil", 0x00B8 },
        { "cent", 0x00A2 },
        { "check", 0x2713 },
        { "circ", 0x02C6 },
        { "clubs", 0x2663 },
        { "colon", 0x003A },
        { "comma", 0x002C },
        { "commat", 0x0040 },
        { "copy", 0x00A9 },
        { "curren", 0x00A4 },
        { "dagger", 0x2020 },
        { "darr", 0x2193 },
        { "dash", 0x2010 },
        { "deg", 0x00B0 },
        { "delta", 0x03B4 },
        { "diams", 0x2666 },
        { "divide", 0x00F7 },
        { "dollar", 0x0024 },
        { "eacute", 0x00E9 },
        { "ecirc", 0x00EA },
        { "egrave", 0x00E8 },
        { "emsp", 0x2003 },
        { "ensp", 0x2002 },
        { "equals", 0x003D },
        { "eth", 0x00F0 },
        { "euml", 0x00EB },
        { "euro", 0x20AC },
        { "excl", 0x0021 },
        { "fnof", 0x0192 },
        { "frac12", 0x00BD },
        { "frac14", 0x00BC },
        { "frac34", 0x00BE },
        { "frasl", 0x2044 },
        { "gamma", 0x03B3 },
        { "ge", 0x2265 },
        { "grave", 0x0060 },
        { "gt", 0x003E },
        { "hearts", 0x2665 },
        { "hellip", 0x2026 },
        { "hyphen", 0x2010 },
        { "iacute", 0x00ED },
        { "icirc", 0x00EE },
        { "iexcl", 0x00A1 },
        { "igrave", 0x00EC },
        { "infin", 0x221E },
        { "iquest", 0x00BF },
        { "iuml", 0x00EF },
        { "laquo", 0x00AB },
        { "larr", 0x2190 },
        { "lcub", 0x007B },
        { "ldquo", 0x201C },
        { "le", 0x2264 },
        { "lowbar", 0x005F },
        { "lpar", 0x0028 },
        { "lrm", 0x200E },
        { "lsaquo", 0x2039 },
        { "lsqb", 0x005B },
        { "lsquo", 0x2018 },
        { "lt", 0x003C },
        { "macr", 0x00AF },
        { "mdash", 0x2014 },
        { "micro", 0x00B5 },
        { "middot", 0x00B7 },
        { "minus", 0x2212 },
        { "mu", 0x03BC },
        { "nbhy", 0x2011 },
        { "nbsp", 0x00A0 },
        { "ndash", 0x2013 },
        { "ne", 0x2260 },
        { "not", 0x00AC },
        { "ntilde", 0x00F1 },
        { "num", 0x0023 },
        { "oacute", 0x00F3 },
        { "ocirc", 0x00F4 },
        { "oelig", 0x0153 },
        { "ograve", 0x00F2 },
        { "oline", 0x203E },
        { "omega", 0x03C9 },
        { "ordf", 0x00AA },
        { "ordm", 0x00BA },
        { "oslash", 0x00F8 },
        { "otilde", 0x00F5 },
        { "ouml", 0x00F6 },
        { "para", 0x00B6 },
        { "percnt", 0x0025 },
        { "period", 0x002E },
        { "permil", 0x2030 },
        { "pi", 0x03C0 },
        { "plus", 0x002B },
        { "plusmn", 0x00B1 },
        { "pound", 0x00A3 },
        { "prime", 0x2032 },
        { "quest", 0x003F },
        { "quot", 0x0022 },
        { "radic", 0x221A },
        { "raquo", 0x00BB },
        { "rarr", 0x2192 },
        { "rcub", 0x007D },
        { "rdquo", 0x201D },
        { "reg", 0x00AE },
        { "rlm", 0x200F },
        { "rpar", 0x0029 },
        { "rsaquo", 0x203A },
        { "rsqb", 0x005D },
        { "rsquo", 0x2019 },
        { "sbquo", 0x201A },
        { "scaron", 0x0161 },
        { "sect", 0x00A7 },
        { "semi", 0x003B },
        { "shy", 0x00AD },
        { "sigma", 0x03C3 },
        { "sol", 0x002F },
        { "spades", 0x2660 },
        { "star", 0x2606 },
        { "starf", 0x2605 },
        { "sum", 0x2211 },
        { "sup1", 0x00B9 },
        { "sup2", 0x00B2 },
        { "sup3", 0x00B3 },
        { "szlig", 0x00DF },
        { "thinsp", 0x2009 },
        { "thorn", 0x00FE },
        { "tilde", 0x02DC },
        { "times", 0x00D7 },
        { "trade", 0x2122 },
        { "uacute", 0x00FA },
        { "uarr", 0x2191 },
        { "ucirc", 0x00FB },
        { "ugrave", 0x00F9 },
        { "uml", 0x00A8 },
        { "uuml", 0x00FC },
        { "verbar", 0x007C },
        { "wj", 0x2060 },
        { "yacute", 0x00FD },
        { "yen", 0x00A5 },
        { "yuml", 0x00FF },
        { "zwj", 0x200D },
        { "zwnj", 0x200C },
};

/* Binary search over a sorted table of names; inline comparison, as this runs for every
 * tag and reference. */
static int name_compare(const char *key, size_t n, const char *name) {
        size_t i;

        for (i = 0; i < n && name[i]; i++)
                if (key[i] != name[i])
                        return (unsigned char) key[i] < (unsigned char) name[i] ? -1 : 1;
        if (i < n)
                return 1;               /* name is a prefix of key */
        return name[i] ? -1 : 0;
}

uint32_t html_entity_lookup(const char *name, size_t n) {
        size_t lo = 0, hi = ELEMENTSOF(entities);

        if (n == 0 || n > HTML_ENTITY_MAX)
                return 0;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = name_compare(name, n, entities[mid].name);

                if (c == 0)
                        return entities[mid].c;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return 0;
}

static bool is_word_byte(uint8_t c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static bool is_alpha(uint8_t c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(uint8_t c) {
        return is_alpha(c) || (c >= '0' && c <= '9');
}

static char lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static bool is_blank(uint8_t c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool unichar_is_space(uint32_t c) {
        return c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || c == 0xA0 ||
                (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool unichar_is_invisible(uint32_t c) {
        return c == 0xAD || (c >= 0x200B && c <= 0x200F) || (c >= 0x2060 && c <= 0x2064) || c == 0xFEFF ||
                c == 0x034F;
}

void html_text_init(HtmlText *h) {
        assert(h);

        *h = (HtmlText) {
                .state = S_TEXT,
                .last_space = true,
        };
}

static int emit_text(HtmlText *h, MimeBuffer *out, const char *s, size_t n) {
        if (h->gap && h->last_word && is_word_byte((uint8_t) s[0]))
                h->insertions++;
        h->gap = false;
        h->last_word = is_word_byte((uint8_t) s[n - 1]);
        h->last_space = false;
        return mime_buffer_append(out, s, n);
}

static int emit_space(HtmlText *h, MimeBuffer *out) {
        h->gap = false;
        h->last_word = false;
        if (h->last_space)
                return 0;
        h->last_space = true;
        return mime_buffer_append(out, " ", 1);
}

static int emit_unichar(HtmlText *h, MimeBuffer *out, uint32_t c) {
        char u[4];

        if (unichar_is_space(c))
                return emit_space(h, out);
        if (unichar_is_invisible(c)) {
                h->gap = true;
                return 0;
        }
        return emit_text(h, out, u, utf8_encode_unichar(c, u));
}

/* windows-1252 for numeric references to C1 controls (HTML5 §13.2.5.80). */
static uint32_t numeric_reference_fixup(uint32_t c) {
        static const uint16_t c1[32] = {
                0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178,
        };

        if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                return 0xFFFD;
        if (c >= 0x80 && c <= 0x9F)
                return c1[c - 0x80];
        return c;
}

/* Parse a numeric reference "#123" / "#x1F" held in e[0..n): returns the number of bytes
 * used (0 when there are no digits) and the code point. */
static size_t numeric_reference_parse(const char *e, size_t n, uint32_t *ret) {
        bool hex = n > 1 && (e[1] == 'x' || e[1] == 'X');
        size_t i = hex ? 2 : 1, start = i;
        uint32_t v = 0;

        for (; i < n; i++) {
                int d;

                if (e[i] >= '0' && e[i] <= '9')
                        d = e[i] - '0';
                else if (hex && lower(e[i]) >= 'a' && lower(e[i]) <= 'f')
                        d = lower(e[i]) - 'a' + 10;
                else
                        break;
                v = v * (hex ? 16 : 10) + (uint32_t) d;
                if (v > 0x10FFFF)
                        v = 0x110000;   /* saturate: stays invalid */
        }
        if (i == start)
                return 0;
        *ret = numeric_reference_fixup(v);
        return i;
}

static int entity_done(HtmlText *h, MimeBuffer *out, bool semicolon) {
        const char *e = h->entity;
        size_t n = h->entity_len;
        uint32_t c = 0;
        size_t used = 0;
        int r;

        h->entity_len = 0;

        if (n > 0 && e[0] == '#')
                used = numeric_reference_parse(e, n, &c);
        else if (n > 0) {
                c = html_entity_lookup(e, n);
                used = c ? n : 0;
        }

        if (used == 0) {
                /* Not a reference: the text as written. */
                r = emit_text(h, out, "&", 1);
                if (r < 0)
                        return r;
                if (n > 0) {
                        r = emit_text(h, out, e, n);
                        if (r < 0)
                                return r;
                }
                return semicolon ? emit_text(h, out, ";", 1) : 0;
        }

        r = emit_unichar(h, out, c);
        if (r < 0)
                return r;
        if (used < n) {
                /* "&#65bc": the digits are the reference, the rest is text (and so is ';'). */
                r = emit_text(h, out, e + used, n - used);
                if (r < 0)
                        return r;
                if (semicolon)
                        return emit_text(h, out, ";", 1);
        }
        return 0;
}

static const char *const block_tags[] = {      /* sorted for bsearch() */
        "address", "article", "aside", "blockquote", "body", "br", "button", "caption", "center", "dd",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "frame", "h1", "h2", "h3",
        "h4", "h5", "h6", "head", "header", "hr", "html", "iframe", "legend", "li", "main", "nav", "ol",
        "option", "p", "pre", "section", "select", "table", "tbody", "td", "textarea", "tfoot", "th",
        "thead", "title", "tr", "ul",
};

static bool is_block_tag(const char *name, size_t n) {
        size_t lo = 0, hi = ELEMENTSOF(block_tags);

        while (n > 0 && lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = name_compare(name, n, block_tags[mid]);

                if (c == 0)
                        return true;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return false;
}

/* Decode character references in an attribute value into buf (bounded), so that
 * "http&#58;//host" is seen as the browser sees it. */
static size_t attribute_decode(const char *v, size_t n, char *buf, size_t size) {
        size_t o = 0;

        for (size_t i = 0; i < n && o + 4 < size; i++) {
                uint32_t c = 0;
                size_t j, used = 0;

                if (v[i] != '&') {
                        buf[o++] = v[i];
                        continue;
                }
                for (j = i + 1; j < n && j - i - 1 < HTML_ENTITY_MAX && (is_alnum((uint8_t) v[j]) || (v[j] == '#' && j == i + 1)); j++)
                        ;
                if (j > i + 1 && v[i + 1] == '#')
                        used = numeric_reference_parse(v + i + 1, j - i - 1, &c);
                else if (j > i + 1) {
                        c = html_entity_lookup(v + i + 1, j - i - 1);
                        used = c ? j - i - 1 : 0;
                }
                if (used == 0) {
                        buf[o++] = '&';
                        continue;
                }
                o += utf8_encode_unichar(c, buf + o);
                i += used;
                if (i + 1 < n && v[i + 1] == ';')
                        i++;
        }
        return o;
}

static bool url_authority_end(char c) {
        switch (c) {
        case '/': case '\\': case '?': case '#': case ' ': case '\t': case '\r': case '\n': case '\0':
                return true;
        default:
                return false;
        }
}

size_t html_url_host(const char *url, size_t n, char *buf, size_t *ret_rest) {
        size_t i = 0, j, a, host, host_end, len;

        assert(url || n == 0);
        assert(buf);

        while (i < n && (uint8_t) url[i] <= ' ')
                i++;

        for (j = i; j < n && (is_alnum((uint8_t) url[j]) || url[j] == '+' || url[j] == '-' || url[j] == '.'); j++)
                ;
        if (j > i && j < n && url[j] == ':' && is_alpha((uint8_t) url[i])) {
                size_t l = j - i;

                if (!((l == 4 && strncasecmp(url + i, "http", 4) == 0) ||
                      (l == 5 && strncasecmp(url + i, "https", 5) == 0) ||
                      (l == 3 && strncasecmp(url + i, "ftp", 3) == 0)))
                        return 0;
                i = j + 1;
                /* Browsers take any number of '/' or '\' here. */
                while (i < n && (url[i] == '/' || url[i] == '\\'))
                        i++;
        } else if (i + 1 < n && (url[i] == '/' || url[i] == '\\') && (url[i + 1] == '/' || url[i + 1] == '\\'))
                i += 2;
        else
                return 0;

        a = i;
        while (i < n && !url_authority_end(url[i]))
                i++;
        host = a;
        for (j = a; j < i; j++)
                if (url[j] == '@')
                        host = j + 1;
        host_end = host;
        if (host < i && url[host] == '[') {
                while (host_end < i && url[host_end] != ']')
                        host_end++;
                if (host_end < i)
                        host_end++;
        } else
                while (host_end < i && url[host_end] != ':')
                        host_end++;
        while (host_end > host && url[host_end - 1] == '.')
                host_end--;

        len = host_end - host;
        if (len == 0 || len > HTML_HOST_MAX)
                return 0;
        for (j = 0; j < len; j++)
                buf[j] = lower(url[host + j]);
        buf[len] = '\0';
        if (ret_rest)
                *ret_rest = i;
        return len;
}

static int report_url(HtmlText *h, const char *v, size_t n, HtmlUrlFunc url, void *userdata) {
        char decoded[HTML_TAG_MAX + 4], host[HTML_HOST_MAX + 1];
        size_t k, m, rest = 0;
        int r;

        m = attribute_decode(v, n, decoded, sizeof(decoded));
        k = html_url_host(decoded, m, host, &rest);
        if (k == 0)
                return 0;
        h->urls++;
        if (!url)
                return 0;
        r = url(host, k, decoded + rest, m - rest, userdata);
        return r < 0 ? r : 0;
}

static int tag_done(HtmlText *h, MimeBuffer *out, HtmlUrlFunc url, void *userdata) {
        const char *t = h->tag;
        size_t n = h->tag_len, i = 0, k = 0;
        char name[HTML_NAME_MAX + 1];
        bool end = false;
        int r;

        if (i < n && t[i] == '/') {
                end = true;
                i++;
        }
        if (i < n && t[i] >= 'A' && t[i] <= 'Z')
                h->tags_upper++;
        else if (i < n && t[i] >= 'a' && t[i] <= 'z')
                h->tags_lower++;
        while (i < n && (is_alnum((uint8_t) t[i]) || t[i] == '-' || t[i] == ':')) {
                if (k < sizeof(name) - 1)
                        name[k++] = lower(t[i]);
                i++;
        }
        name[k] = '\0';

        if (is_block_tag(name, k)) {
                r = emit_space(h, out);
                if (r < 0)
                        return r;
        } else
                h->gap = true;

        if (end)
                return 0;

        if (streq(name, "script") || streq(name, "style")) {
                h->state = S_RAW;
                h->raw_end = name[1] == 'c' ? "</script" : "</style";
                h->raw_match = 0;
        }

        if (h->markup && k > 0) {
                r = h->markup(name, k, userdata);
                if (r < 0)
                        return r;
        }

        /* Attributes: name [= value], value quoted or not. */
        while (i < n) {
                size_t an, al, vs, vl;

                while (i < n && (is_blank((uint8_t) t[i]) || t[i] == '/'))
                        i++;
                an = i;
                while (i < n && !is_blank((uint8_t) t[i]) && t[i] != '=' && t[i] != '/')
                        i++;
                al = i - an;
                if (al == 0) {
                        i++;
                        continue;
                }
                while (i < n && is_blank((uint8_t) t[i]))
                        i++;
                if (i >= n || t[i] != '=')
                        continue;
                i++;
                while (i < n && is_blank((uint8_t) t[i]))
                        i++;
                if (i < n && (t[i] == '"' || t[i] == '\'')) {
                        char q = t[i++];

                        vs = i;
                        while (i < n && t[i] != q)
                                i++;
                        vl = i - vs;
                        if (i < n)
                                i++;
                } else {
                        vs = i;
                        while (i < n && !is_blank((uint8_t) t[i]))
                                i++;
                        vl = i - vs;
                }

                if ((al == 4 && strncasecmp(t + an, "href", 4) == 0) ||
                    (al == 3 && strncasecmp(t + an, "src", 3) == 0) ||
                    (al == 6 && strncasecmp(t + an, "action", 6) == 0) ||
                    (al == 10 && strncasecmp(t + an, "background", 10) == 0)) {
                        r = report_url(h, t + vs, vl, url, userdata);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static void tag_begin(HtmlText *h) {
        h->tag_len = 0;
        h->quote = 0;
        h->tag_prev = 0;
}

/* A possibly special character at s (lead byte 0xC2, 0xE2, 0xE3 or 0xEF): its length
 * and code point when the sequence is complete, 0 otherwise. */
static size_t maybe_special(const uint8_t *s, size_t n, uint32_t *ret) {
        if (s[0] == 0xC2) {
                if (n < 2 || (s[1] & 0xC0) != 0x80)
                        return 0;
                *ret = (uint32_t) (s[0] & 0x1F) << 6 | (s[1] & 0x3F);
                return 2;
        }
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
                return 0;
        *ret = (uint32_t) (s[0] & 0x0F) << 12 | (uint32_t) (s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return 3;
}

int html_text_feed(HtmlText *h, const char *in, size_t n, MimeBuffer *out, HtmlUrlFunc url, void *userdata) {
        const uint8_t *s = (const uint8_t*) in;
        size_t i = 0;
        int r;

        assert(h);
        assert(in || n == 0);
        assert(out);

        while (i < n) {
                switch (h->state) {

                case S_TEXT: {
                        size_t start = i, k;
                        uint32_t c;

                        /* A run of plain bytes, with single spaces between them taken along
                         * (emit_space() would write just that). */
                        for (;;) {
                                while (i < n && text_class[s[i]] == C_PLAIN)
                                        i++;
                                if (i > start && i + 1 < n && s[i] == ' ' && text_class[s[i + 1]] == C_PLAIN)
                                        i += 2;
                                else
                                        break;
                        }
                        if (i > start) {
                                r = emit_text(h, out, in + start, i - start);
                                if (r < 0)
                                        return r;
                        }
                        if (i >= n)
                                break;

                        switch (text_class[s[i]]) {
                        case C_LT:
                                h->state = S_TAG_OPEN;
                                i++;
                                break;
                        case C_AMP:
                                h->state = S_ENTITY;
                                h->entity_len = 0;
                                i++;
                                break;
                        case C_SPACE:
                                r = emit_space(h, out);
                                if (r < 0)
                                        return r;
                                i++;
                                break;
                        default:
                                k = maybe_special(s + i, n - i, &c);
                                if (k > 0 && (unichar_is_space(c) || unichar_is_invisible(c)))
                                        r = emit_unichar(h, out, c);
                                else {
                                        k = MAX(k, (size_t) 1);
                                        r = emit_text(h, out, in + i, k);
                                }
                                if (r < 0)
                                        return r;
                                i += k;
                                break;
                        }
                        break;
                }

                case S_TAG_OPEN:
                        if (is_alpha(s[i])) {
                                tag_begin(h);
                                h->state = S_TAG;
                        } else if (s[i] == '/') {
                                tag_begin(h);
                                h->tag[h->tag_len++] = '/';
                                h->state = S_TAG;
                                i++;
                        } else if (s[i] == '!') {
                                h->state = S_BANG;
                                i++;
                        } else if (s[i] == '?') {
                                h->state = S_DECL;
                                i++;
                        } else {
                                /* "a < b": a literal '<', the byte after it is text again. */
                                h->state = S_TEXT;
                                r = emit_text(h, out, "<", 1);
                                if (r < 0)
                                        return r;
                        }
                        break;

                case S_TAG: {
                        /* Locals: stores into h->tag would otherwise force reloads of every
                         * field per byte (char stores alias everything). */
                        size_t len = h->tag_len;
                        char quote = h->quote, prev = h->tag_prev;

                        for (; i < n; i++) {
                                char c = (char) s[i];

                                if (quote) {
                                        if (c == quote)
                                                quote = 0;
                                } else if (c == '>')
                                        break;
                                else if ((c == '"' || c == '\'') && prev == '=')
                                        quote = c;
                                if (len < HTML_TAG_MAX)
                                        h->tag[len++] = c;
                                if (!is_blank((uint8_t) c))
                                        prev = c;
                        }
                        h->tag_len = len;
                        h->quote = quote;
                        h->tag_prev = prev;
                        if (i < n) {
                                i++;
                                h->state = S_TEXT;
                                r = tag_done(h, out, url, userdata);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }

                case S_BANG:
                        if (s[i] == '-') {
                                h->state = S_BANG_DASH;
                                i++;
                        } else
                                h->state = S_DECL;
                        break;

                case S_BANG_DASH:
                        if (s[i] == '-') {
                                h->state = S_COMMENT;
                                h->comments++;
                                h->comment_len = 0;
                                h->dashes = 0;
                                i++;
                        } else
                                h->state = S_DECL;
                        break;

                case S_COMMENT: {
                        size_t from = i;

                        for (; i < n; i++) {
                                if (s[i] == '-')
                                        h->dashes++;
                                else if (s[i] == '>' && h->dashes >= 2)
                                        break;
                                else
                                        h->dashes = 0;
                        }
                        if (h->comment) {
                                /* the text up to the '>' (its "--" are taken off below) */
                                size_t k = MIN(i - from, HTML_COMMENT_MAX - h->comment_len);

                                memcpy(h->comment_text + h->comment_len, s + from, k);
                                h->comment_len += k;
                        }
                        if (i < n) {
                                i++;
                                h->state = S_TEXT;
                                h->gap = true;
                                if (h->comment) {
                                        size_t k = h->comment_len;

                                        if (k == HTML_COMMENT_MAX) {
                                                /* cut: not inside a character (the text is UTF-8) */
                                                size_t j = k;
                                                uint8_t lead;

                                                while (j > 0 && k - j < 3 && ((uint8_t) h->comment_text[j - 1] & 0xC0) == 0x80)
                                                        j--;
                                                lead = j > 0 ? (uint8_t) h->comment_text[j - 1] : 0;
                                                if (lead >= 0xC0 && k - (j - 1) < (lead >= 0xF0 ? 4U : lead >= 0xE0 ? 3U : 2U))
                                                        k = j - 1;
                                        }
                                        while (k > 0 && h->comment_text[k - 1] == '-')
                                                k--;
                                        r = h->comment(h->comment_text, k, userdata);
                                        if (r < 0)
                                                return r;
                                }
                        }
                        break;
                }

                case S_DECL: {
                        const uint8_t *gt = memchr(s + i, '>', n - i);

                        if (!gt) {
                                i = n;
                                break;
                        }
                        i = (size_t) (gt - s) + 1;
                        h->state = S_TEXT;
                        h->gap = true;
                        break;
                }

                case S_ENTITY:
                        if (h->entity_len < HTML_ENTITY_MAX &&
                            (is_alnum(s[i]) || (s[i] == '#' && h->entity_len == 0))) {
                                h->entity[h->entity_len++] = (char) s[i++];
                                break;
                        }
                        h->state = S_TEXT;
                        if (s[i] == ';') {
                                i++;
                                r = entity_done(h, out, true);
                        } else
                                r = entity_done(h, out, false);
                        if (r < 0)
                                return r;
                        break;

                case S_RAW:
                        while (i < n) {
                                char c;

                                if (h->raw_match == 0) {
                                        const uint8_t *lt = memchr(s + i, '<', n - i);

                                        if (!lt) {
                                                i = n;
                                                break;
                                        }
                                        i = (size_t) (lt - s) + 1;
                                        h->raw_match = 1;
                                        continue;
                                }
                                c = lower((char) s[i++]);
                                if (c == h->raw_end[h->raw_match]) {
                                        if (h->raw_end[++h->raw_match] == '\0') {
                                                tag_begin(h);
                                                h->tag_len = strlen(h->raw_end) - 1;
                                                memcpy(h->tag, h->raw_end + 1, h->tag_len);
                                                h->state = S_TAG;
                                                break;
                                        }
                                } else
                                        h->raw_match = c == '<' ? 1 : 0;
                        }
                        break;

                default:
                        assert(false);
                        return -EINVAL;
                }
        }

        return 0;
}

int html_text_finish(HtmlText *h, MimeBuffer *out, HtmlUrlFunc url, void *userdata) {
        int r = 0;

        assert(h);
        assert(out);

        switch (h->state) {
        case S_TEXT:
                break;
        case S_ENTITY:
                r = entity_done(h, out, false);
                break;
        case S_TAG_OPEN:
                r = emit_text(h, out, "<", 1);
                break;
        default:
                h->unterminated++;
                break;
        }
        h->state = S_TEXT;
        return r;
}
