/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Decoders for MIME bodies and header values. All of them take what mail actually
 * carries rather than what the RFCs allow: a decoder that refuses input would let a
 * spammer hide text from the filter by breaking the encoding a little, so bad input is
 * decoded as well as it can be and counted, and the counts become defect flags. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "mime-decode.h"
#include "string-util.h"

/* ---- byte buffer ------------------------------------------------------------------ */

int mime_buffer_reserve(MimeBuffer *b, size_t extra) {
        size_t need, a;
        char *d;

        assert(b);

        if (extra > SIZE_MAX - 1 - b->size)
                return -ENOMEM;
        need = b->size + extra + 1;
        if (need <= b->allocated)
                return 0;

        a = MAX(b->allocated * 2, (size_t) 256);
        if (a < need)
                a = need;
        d = realloc(b->data, a);
        if (!d)
                return -ENOMEM;
        b->data = d;
        b->allocated = a;
        b->data[b->size] = '\0';       /* a reserved buffer is a valid string, even if nothing follows */
        return 0;
}

int mime_buffer_append(MimeBuffer *b, const void *p, size_t n) {
        int r;

        assert(b);
        assert(p || n == 0);

        r = mime_buffer_reserve(b, n);
        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->data + b->size, p, n);
        b->size += n;
        b->data[b->size] = '\0';
        return 0;
}

size_t utf8_encode_unichar(uint32_t c, char *out) {
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
                c = 0xFFFD;

        if (c < 0x80) {
                out[0] = (char) c;
                return 1;
        }
        if (c < 0x800) {
                out[0] = (char) (0xC0 | (c >> 6));
                out[1] = (char) (0x80 | (c & 0x3F));
                return 2;
        }
        if (c < 0x10000) {
                out[0] = (char) (0xE0 | (c >> 12));
                out[1] = (char) (0x80 | ((c >> 6) & 0x3F));
                out[2] = (char) (0x80 | (c & 0x3F));
                return 3;
        }
        out[0] = (char) (0xF0 | (c >> 18));
        out[1] = (char) (0x80 | ((c >> 12) & 0x3F));
        out[2] = (char) (0x80 | ((c >> 6) & 0x3F));
        out[3] = (char) (0x80 | (c & 0x3F));
        return 4;
}

int mime_buffer_append_unichar(MimeBuffer *b, uint32_t c) {
        char u[4];

        return mime_buffer_append(b, u, utf8_encode_unichar(c, u));
}

void mime_buffer_consume(MimeBuffer *b, size_t n) {
        assert(b);
        assert(n <= b->size);

        if (n == 0)
                return;
        memmove(b->data, b->data + n, b->size - n);
        b->size -= n;
        b->data[b->size] = '\0';
}

void mime_buffer_done(MimeBuffer *b) {
        assert(b);

        free(b->data);
        *b = MIME_BUFFER_NULL;
}

/* ---- base64 ----------------------------------------------------------------------- */

/* 0..63: the sextet; -1 not in the alphabet; -2 whitespace; -3 '=' */
static const int8_t base64_table[256] = {
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -2, -2, -1, -1, -2, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -2, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
        52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -3, -1, -1,
        -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
        15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
        -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
        41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* Emit what a partial group holds: 2 sextets give 1 byte, 3 give 2, 1 is lost. */
static size_t base64_flush(Base64Decoder *d, uint8_t *out) {
        size_t o = 0;

        switch (d->n) {
        case 1:
                d->bad++;
                break;
        case 2:
                out[o++] = (uint8_t) (d->bits >> 4);
                break;
        case 3:
                out[o++] = (uint8_t) (d->bits >> 10);
                out[o++] = (uint8_t) (d->bits >> 2);
                break;
        }
        d->bits = 0;
        d->n = 0;
        return o;
}

size_t base64_decoder_feed(Base64Decoder *d, const char *in, size_t n, uint8_t *out) {
        const uint8_t *s = (const uint8_t*) in;
        uint32_t bits = d->bits;
        unsigned k = d->n;
        size_t o = 0;

        assert(d);
        assert(in || n == 0);

        for (size_t i = 0; i < n; i++) {
                int v = base64_table[s[i]];

                if (_likely_(v >= 0)) {
                        bits = (bits << 6) | (uint32_t) v;
                        if (++k == 4) {
                                out[o++] = (uint8_t) (bits >> 16);
                                out[o++] = (uint8_t) (bits >> 8);
                                out[o++] = (uint8_t) bits;
                                bits = 0;
                                k = 0;
                        }
                } else if (v == -3) {
                        d->bits = bits;
                        d->n = k;
                        o += base64_flush(d, out + o);
                        bits = 0;
                        k = 0;
                } else if (v == -1)
                        d->bad++;
        }

        d->bits = bits;
        d->n = k;
        return o;
}

size_t base64_decoder_finish(Base64Decoder *d, uint8_t *out) {
        assert(d);
        return base64_flush(d, out);
}

/* ---- quoted-printable -------------------------------------------------------------- */

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static bool is_wsp(char c) {
        return c == ' ' || c == '\t';
}

size_t qp_decoder_feed_line(QpDecoder *d, const char *in, size_t n, bool eol, char *out, bool *ret_hard_break) {
        size_t o = 0, i = 0;
        bool soft = false;

        assert(d);
        assert(in || n == 0);

        /* Complete an escape split by a cut line first. */
        if (d->n_carry > 0) {
                size_t k = d->n_carry, take = MIN(n, 3 - k), total = k + take;
                char tmp[3];

                memcpy(tmp, d->carry, k);
                memcpy(tmp + k, in, take);
                d->n_carry = 0;

                if (total == 3) {
                        int hi = unhex(tmp[1]), lo = unhex(tmp[2]);

                        if (hi >= 0 && lo >= 0) {
                                out[o++] = (char) (hi << 4 | lo);
                                i = take;
                        } else {
                                /* Not an escape: the '=' is literal, what follows is read again. */
                                d->bad++;
                                out[o++] = '=';
                                if (k == 2) {
                                        if (tmp[1] == '=') {
                                                d->carry[0] = '=';
                                                d->n_carry = 1;
                                                return o + qp_decoder_feed_line(d, in, n, eol, out + o, ret_hard_break);
                                        }
                                        out[o++] = tmp[1];
                                }
                                i = 0;
                        }
                } else if (!eol) {
                        /* Still incomplete (a very short cut piece): keep carrying. */
                        memcpy(d->carry, tmp, total);
                        d->n_carry = (unsigned) total;
                        if (ret_hard_break)
                                *ret_hard_break = false;
                        return o;
                } else {
                        /* The line ended: "=" (and trailing whitespace) is a soft break, "=X" literal. */
                        if (total == 1 || is_wsp(tmp[1]))
                                soft = true;
                        else {
                                d->bad++;
                                memcpy(out + o, tmp, total);
                                o += total;
                        }
                        if (ret_hard_break)
                                *ret_hard_break = !soft;
                        return o;
                }
        }

        if (eol)
                while (n > i && is_wsp(in[n - 1]))
                        n--;

        while (i < n) {
                const char *eq = memchr(in + i, '=', n - i);
                size_t run = eq ? (size_t) (eq - in) - i : n - i;

                memcpy(out + o, in + i, run);
                o += run;
                i += run;
                if (i >= n)
                        break;

                /* in[i] == '=' */
                if (i + 2 < n) {
                        int hi = unhex(in[i + 1]), lo = unhex(in[i + 2]);

                        if (hi >= 0 && lo >= 0) {
                                out[o++] = (char) (hi << 4 | lo);
                                i += 3;
                                continue;
                        }
                        d->bad++;
                        out[o++] = '=';
                        i++;
                        continue;
                }
                /* '=' or '=X' at the end of what we have. */
                if (!eol) {
                        d->n_carry = (unsigned) (n - i);
                        memcpy(d->carry, in + i, d->n_carry);
                        i = n;
                        break;
                }
                if (i + 1 == n) {
                        soft = true;
                        i = n;
                        break;
                }
                /* "=X" before the line end */
                d->bad++;
                out[o++] = '=';
                i++;
        }

        if (ret_hard_break)
                *ret_hard_break = eol && !soft;
        return o;
}

size_t qp_decoder_finish(QpDecoder *d, char *out) {
        size_t k;

        assert(d);

        k = d->n_carry;
        if (k > 0) {
                d->bad++;
                memcpy(out, d->carry, k);
                d->n_carry = 0;
        }
        return k;
}

/* ---- charsets ---------------------------------------------------------------------- */

#define CHARSET_NAME_MAX 40U
#define CHARSET_CACHE_SIZE 16U

typedef struct CharsetEntry {
        char name[CHARSET_NAME_MAX + 1];
        iconv_t cd;             /* (iconv_t) -1: iconv does not know the name */
} CharsetEntry;

struct MimeCharsets {
        CharsetEntry entries[CHARSET_CACHE_SIZE];
        size_t n_entries;
        size_t next_victim;
};

int mime_charsets_new(MimeCharsets **ret) {
        MimeCharsets *c;

        assert(ret);

        c = calloc(1, sizeof(MimeCharsets));
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

MimeCharsets* mime_charsets_free(MimeCharsets *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_entries; i++)
                if (c->entries[i].cd != (iconv_t) -1)
                        (void) iconv_close(c->entries[i].cd);
        free(c);
        return NULL;
}

/* Labels mail uses for charsets that are really a superset, after the WHATWG Encoding
 * Standard: decoding with the superset gives the text the sender's software showed. */
static const struct {
        const char *label;
        const char *name;
} charset_aliases[] = {
        { "iso-8859-1",       "WINDOWS-1252" },
        { "iso8859-1",        "WINDOWS-1252" },
        { "iso_8859-1",       "WINDOWS-1252" },
        { "latin1",           "WINDOWS-1252" },
        { "l1",               "WINDOWS-1252" },
        { "cp819",            "WINDOWS-1252" },
        { "iso-8859-9",       "WINDOWS-1254" },
        { "latin5",           "WINDOWS-1254" },
        { "iso-8859-11",      "WINDOWS-874" },
        { "tis-620",          "WINDOWS-874" },
        { "gb2312",           "GB18030" },
        { "gbk",              "GB18030" },
        { "x-gbk",            "GB18030" },
        { "cp936",            "GB18030" },
        { "euc-cn",           "GB18030" },
        { "big5",             "BIG5-HKSCS" },
        { "x-x-big5",         "BIG5-HKSCS" },
        { "euc-kr",           "CP949" },
        { "ks_c_5601-1987",   "CP949" },
        { "ks_c_5601",        "CP949" },
        { "windows-949",      "CP949" },
        { "shift_jis",        "CP932" },
        { "shift-jis",        "CP932" },
        { "sjis",             "CP932" },
        { "x-sjis",           "CP932" },
        { "ms_kanji",         "CP932" },
        { "windows-31j",      "CP932" },
};

static bool charset_is_fallback(const char *name) {
        static const char *const names[] = {
                "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "unknown", "unknown-8bit",
                "x-unknown", "default", "x-user-defined", "none", "8bit", "7bit",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(name, names[i]))
                        return true;
        return false;
}

/* Lowercase the label into buf; only characters that occur in charset names are
 * accepted, which also keeps '/' (iconv's "//TRANSLIT" suffixes) and anything
 * path-like away from iconv_open(). */
static bool charset_normalize(const char *charset, char buf[static CHARSET_NAME_MAX + 1]) {
        size_t n = 0;

        while (is_wsp(*charset))
                charset++;
        for (; *charset && !is_wsp(*charset); charset++) {
                char ch = *charset;

                if (n >= CHARSET_NAME_MAX)
                        return false;
                if (ch >= 'A' && ch <= 'Z')
                        ch = (char) (ch - 'A' + 'a');
                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("-_.:+()", ch)))
                        return false;
                buf[n++] = ch;
        }
        buf[n] = '\0';
        return n > 0;
}

MimeCharsetKind mime_charsets_lookup(MimeCharsets *c, const char *charset, iconv_t *ret_cd, bool *ret_known) {
        char name[CHARSET_NAME_MAX + 1];
        const char *iconv_name;
        CharsetEntry *e;
        iconv_t cd;

        assert(c);

        if (ret_known)
                *ret_known = true;
        if (isempty(charset))
                return MIME_CHARSET_FALLBACK;
        if (!charset_normalize(charset, name)) {
                if (ret_known)
                        *ret_known = false;
                return MIME_CHARSET_FALLBACK;
        }
        if (streq(name, "utf-8") || streq(name, "utf8"))
                return MIME_CHARSET_UTF8;
        if (charset_is_fallback(name))
                return MIME_CHARSET_FALLBACK;

        iconv_name = name;
        for (size_t i = 0; i < ELEMENTSOF(charset_aliases); i++)
                if (streq(name, charset_aliases[i].label)) {
                        iconv_name = charset_aliases[i].name;
                        break;
                }
        if (streq(iconv_name, "WINDOWS-1252") || streq(name, "windows-1252") || streq(name, "cp1252") ||
            streq(name, "x-cp1252"))
                return MIME_CHARSET_CP1252;

        for (size_t i = 0; i < c->n_entries; i++) {
                e = &c->entries[i];
                if (!streq(e->name, name))
                        continue;
                if (e->cd == (iconv_t) -1) {
                        if (ret_known)
                                *ret_known = false;
                        return MIME_CHARSET_FALLBACK;
                }
                *ret_cd = e->cd;
                return MIME_CHARSET_ICONV;
        }

        cd = iconv_open("UTF-8", iconv_name);

        if (c->n_entries < CHARSET_CACHE_SIZE)
                e = &c->entries[c->n_entries++];
        else {
                e = &c->entries[c->next_victim];
                c->next_victim = (c->next_victim + 1) % CHARSET_CACHE_SIZE;
                if (e->cd != (iconv_t) -1)
                        (void) iconv_close(e->cd);
        }
        strcpy(e->name, name);
        e->cd = cd;

        if (cd == (iconv_t) -1) {
                if (ret_known)
                        *ret_known = false;
                return MIME_CHARSET_FALLBACK;
        }
        *ret_cd = cd;
        return MIME_CHARSET_ICONV;
}

/* windows-1252 0x80..0x9F; 0 marks the five unassigned bytes. */
static const uint16_t cp1252_c1[32] = {
        0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
        0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

static uint32_t cp1252_to_unichar(uint8_t b) {
        if (b < 0x80 || b >= 0xA0)
                return b;
        return cp1252_c1[b - 0x80] ?: 0xFFFD;
}

/* Length of the valid UTF-8 sequence at s: 1..4; 0 when invalid; and when the bytes
 * present are a valid beginning cut by the end of the buffer, 0 with *ret_incomplete.
 * When invalid, *ret_subpart is the length of the valid beginning (at least 1), which is
 * replaced by a single U+FFFD (the "maximal subpart" rule of Unicode §3.9). */
static size_t utf8_sequence(const uint8_t *s, size_t n, bool *ret_incomplete, size_t *ret_subpart) {
        uint8_t c = s[0], lo = 0x80, hi = 0xBF;
        size_t need;

        *ret_incomplete = false;
        *ret_subpart = 1;
        if (c < 0x80)
                return 1;
        if (c < 0xC2)
                return 0;
        if (c < 0xE0)
                need = 2;
        else if (c < 0xF0) {
                need = 3;
                if (c == 0xE0)
                        lo = 0xA0;
                else if (c == 0xED)
                        hi = 0x9F;
        } else if (c < 0xF5) {
                need = 4;
                if (c == 0xF0)
                        lo = 0x90;
                else if (c == 0xF4)
                        hi = 0x8F;
        } else
                return 0;

        for (size_t i = 1; i < need; i++) {
                if (i >= n) {
                        *ret_incomplete = true;
                        *ret_subpart = i;
                        return 0;
                }
                if (s[i] < lo || s[i] > hi) {
                        *ret_subpart = i;
                        return 0;
                }
                lo = 0x80;
                hi = 0xBF;
        }
        return need;
}

/* UTF-8 input: valid sequences are copied; an invalid byte becomes U+FFFD, or with
 * fallback its windows-1252 character. nul_replace turns NUL into U+FFFD (header values
 * are C strings). Returns the bytes consumed. */
static ssize_t convert_utf8(const char *in, size_t n, bool final, bool fallback, bool nul_replace,
                            MimeBuffer *out, unsigned *replaced) {
        const uint8_t *s = (const uint8_t*) in;
        size_t i = 0;
        char *o;
        int r;

        /* Each input byte gives at most 3 output bytes. */
        if (n > (SIZE_MAX - 16) / 3)
                return -ENOMEM;
        r = mime_buffer_reserve(out, n * 3);
        if (r < 0)
                return r;
        o = out->data + out->size;

        while (i < n) {
                bool incomplete;
                size_t k, subpart;

                /* ASCII, eight bytes at a time (with nul_replace, eight without a NUL:
                 * a byte of w is 0 when w − 0x01… borrows into its top bit) */
                while (i + 8 <= n) {
                        uint64_t w;

                        memcpy(&w, s + i, 8);
                        if (w & UINT64_C(0x8080808080808080))
                                break;
                        if (nul_replace && ((w - UINT64_C(0x0101010101010101)) & ~w & UINT64_C(0x8080808080808080)))
                                break;
                        memcpy(o, s + i, 8);
                        o += 8;
                        i += 8;
                }
                if (i >= n)
                        break;

                if (s[i] < 0x80 && (s[i] != 0 || !nul_replace)) {
                        *o++ = (char) s[i++];
                        continue;
                }
                if (s[i] == 0) {
                        o += utf8_encode_unichar(0xFFFD, o);
                        i++;
                        continue;
                }

                k = utf8_sequence(s + i, n - i, &incomplete, &subpart);
                if (k > 0) {
                        memcpy(o, s + i, k);
                        o += k;
                        i += k;
                        continue;
                }
                if (incomplete && !final)
                        break;

                (*replaced)++;
                if (fallback) {
                        o += utf8_encode_unichar(cp1252_to_unichar(s[i]), o);
                        i++;
                } else {
                        o += utf8_encode_unichar(0xFFFD, o);
                        i += subpart;
                }
        }

        out->size = (size_t) (o - out->data);
        out->data[out->size] = '\0';
        return (ssize_t) i;
}

static ssize_t convert_cp1252(const char *in, size_t n, bool nul_replace, MimeBuffer *out, unsigned *replaced) {
        const uint8_t *s = (const uint8_t*) in;
        size_t i = 0;
        char *o;
        int r;

        if (n > (SIZE_MAX - 16) / 3)
                return -ENOMEM;
        r = mime_buffer_reserve(out, n * 3);
        if (r < 0)
                return r;
        o = out->data + out->size;

        while (i < n) {
                uint32_t c;

                if (!nul_replace)
                        while (i + 8 <= n) {
                                uint64_t w;

                                memcpy(&w, s + i, 8);
                                if (w & UINT64_C(0x8080808080808080))
                                        break;
                                memcpy(o, s + i, 8);
                                o += 8;
                                i += 8;
                        }
                if (i >= n)
                        break;
                if (s[i] < 0x80 && (s[i] != 0 || !nul_replace)) {
                        *o++ = (char) s[i++];
                        continue;
                }
                c = s[i] == 0 ? 0xFFFD : cp1252_to_unichar(s[i]);
                if (c == 0xFFFD)
                        (*replaced)++;
                o += utf8_encode_unichar(c, o);
                i++;
        }

        out->size = (size_t) (o - out->data);
        out->data[out->size] = '\0';
        return (ssize_t) n;
}

static ssize_t convert_iconv(iconv_t cd, const char *in, size_t n, bool final, MimeBuffer *out,
                             unsigned *replaced) {
        char *inp = (char*) in;
        size_t inleft = n;
        int r;

        if (n > (SIZE_MAX - 64) / 4)
                return -ENOMEM;
        r = mime_buffer_reserve(out, n * 2 + 16);
        if (r < 0)
                return r;

        for (;;) {
                char *outp = out->data + out->size;
                size_t outleft = out->allocated - out->size - 1, k;
                int saved;

                k = iconv(cd, inleft > 0 ? &inp : NULL, &inleft, &outp, &outleft);
                saved = errno;
                out->size = (size_t) (outp - out->data);
                out->data[out->size] = '\0';

                if (k != (size_t) -1) {
                        if (inleft > 0)
                                continue;
                        break;
                }
                if (saved == E2BIG) {
                        r = mime_buffer_reserve(out, inleft * 4 + 64);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (saved == EINVAL && !final && inleft <= MIME_CONVERTER_TAIL_MAX)
                        break;          /* incomplete sequence: the caller brings more */
                if (saved == EINVAL && final) {
                        (*replaced)++;
                        inp += inleft;
                        inleft = 0;
                } else {
                        /* EILSEQ, or a tail too long to be a sequence */
                        (*replaced)++;
                        inp++;
                        inleft--;
                }
                r = mime_buffer_append_unichar(out, 0xFFFD);
                if (r < 0)
                        return r;
                if (inleft == 0)
                        break;
        }

        if (final) {
                /* Return a stateful decoder to its initial state, emitting what it holds. */
                char *outp;
                size_t outleft;

                r = mime_buffer_reserve(out, 64);
                if (r < 0)
                        return r;
                outp = out->data + out->size;
                outleft = out->allocated - out->size - 1;
                (void) iconv(cd, NULL, NULL, &outp, &outleft);
                out->size = (size_t) (outp - out->data);
                out->data[out->size] = '\0';
                (void) iconv(cd, NULL, NULL, NULL, NULL);
        }

        return (ssize_t) (n - inleft);
}

int mime_converter_init(MimeConverter *v, MimeCharsets *c, const char *charset) {
        iconv_t cd = (iconv_t) -1;
        bool known;

        assert(v);
        assert(c);

        *v = (MimeConverter) {
                .kind = mime_charsets_lookup(c, charset, &cd, &known),
                .cd = cd,
        };
        if (v->kind == MIME_CHARSET_ICONV)
                (void) iconv(cd, NULL, NULL, NULL, NULL);
        return known;
}

ssize_t mime_converter_feed(MimeConverter *v, const char *in, size_t n, bool final, MimeBuffer *out) {
        assert(v);
        assert(in || n == 0);
        assert(out);

        if (v->kind == MIME_CHARSET_ICONV)
                return convert_iconv(v->cd, in, n, final, out, &v->replaced);
        if (v->kind == MIME_CHARSET_CP1252)
                return convert_cp1252(in, n, /* nul_replace= */ false, out, &v->replaced);
        return convert_utf8(in, n, final, v->kind == MIME_CHARSET_FALLBACK, /* nul_replace= */ false, out,
                            &v->replaced);
}

/* NUL bytes appended to out since offset from become U+FFFD (header values are C strings;
 * iconv passes NUL through). */
static int replace_nul(MimeBuffer *out, size_t from) {
        size_t n_nul = 0;
        char *q;

        for (size_t i = from; i < out->size; i++)
                n_nul += out->data[i] == '\0';
        if (n_nul == 0)
                return 0;
        if (mime_buffer_reserve(out, n_nul * 2) < 0)
                return -ENOMEM;

        /* Expand in place from the end. */
        q = out->data + out->size + n_nul * 2;
        *q = '\0';
        for (size_t i = out->size; i-- > from;) {
                if (out->data[i] != '\0')
                        *--q = out->data[i];
                else {
                        *--q = (char) 0xBD;
                        *--q = (char) 0xBF;
                        *--q = (char) 0xEF;
                }
        }
        out->size += n_nul * 2;
        return 0;
}

int mime_convert(MimeCharsets *c, const char *charset, const char *in, size_t n, MimeBuffer *out) {
        MimeConverter v;
        ssize_t k;
        int r;

        assert(c);

        if (mime_converter_init(&v, c, charset) == 0)
                return 0;
        if (v.kind == MIME_CHARSET_ICONV) {
                size_t from = out->size;

                k = convert_iconv(v.cd, in, n, /* final= */ true, out, &v.replaced);
                if (k >= 0) {
                        r = replace_nul(out, from);
                        if (r < 0)
                                return r;
                }
        } else if (v.kind == MIME_CHARSET_CP1252)
                k = convert_cp1252(in, n, /* nul_replace= */ true, out, &v.replaced);
        else
                k = convert_utf8(in, n, /* final= */ true, v.kind == MIME_CHARSET_FALLBACK,
                                 /* nul_replace= */ true, out, &v.replaced);
        if (k < 0)
                return (int) k;
        return 1;
}

/* ---- RFC 2047 ------------------------------------------------------------------------ */

/* Fallback conversion of raw header text (8-bit flagged). */
static int header_text_append(const char *s, size_t n, MimeBuffer *out, unsigned *defects) {
        unsigned replaced = 0;
        ssize_t k;

        for (size_t i = 0; i < n; i++)
                if ((uint8_t) s[i] >= 0x80) {
                        *defects |= MIME_HEADER_DEFECT_8BIT;
                        break;
                }
        k = convert_utf8(s, n, /* final= */ true, /* fallback= */ true, /* nul_replace= */ true, out, &replaced);
        return k < 0 ? (int) k : 0;
}

/* Parse an encoded word at s (which starts with "=?"): returns its length, 0 when it is
 * not one. charset and text are views. */
static size_t encoded_word_parse(const char *s, size_t n, const char **ret_charset, size_t *ret_charset_len,
                                 char *ret_encoding, const char **ret_text, size_t *ret_text_len) {
        size_t i = 2, cs, cs_end, t;

        cs = i;
        while (i < n && s[i] != '?') {
                unsigned char ch = (unsigned char) s[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      (ch != 0 && strchr("-_.:+*()", ch))))
                        return 0;
                i++;
        }
        if (i >= n || i == cs || i - cs > CHARSET_NAME_MAX)
                return 0;
        cs_end = i;
        i++;                                    /* '?' */
        if (i + 1 >= n || !IN_SET(s[i], 'B', 'b', 'Q', 'q') || s[i + 1] != '?')
                return 0;
        *ret_encoding = (char) (s[i] | 0x20);
        i += 2;
        t = i;
        while (i + 1 < n && !(s[i] == '?' && s[i + 1] == '=')) {
                if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
                        return 0;
                i++;
        }
        if (i + 1 >= n)
                return 0;

        *ret_charset = s + cs;
        *ret_charset_len = cs_end - cs;
        *ret_text = s + t;
        *ret_text_len = i - t;
        return i + 2;
}

static int encoded_word_decode(char encoding, const char *t, size_t n, MimeBuffer *bytes, unsigned *defects) {
        int r;

        r = mime_buffer_reserve(bytes, n + 3);
        if (r < 0)
                return r;

        if (encoding == 'b') {
                Base64Decoder d = BASE64_DECODER_NULL;
                uint8_t *o = (uint8_t*) bytes->data + bytes->size;
                size_t k;

                k = base64_decoder_feed(&d, t, n, o);
                k += base64_decoder_finish(&d, o + k);
                if (d.bad > 0)
                        *defects |= MIME_HEADER_DEFECT_ENCODED_WORD;
                bytes->size += k;
        } else {
                char *o = bytes->data + bytes->size;

                for (size_t i = 0; i < n; i++) {
                        int hi, lo;

                        if (t[i] == '_')
                                *o++ = ' ';
                        else if (t[i] == '=' && i + 2 < n &&
                                 (hi = unhex(t[i + 1])) >= 0 && (lo = unhex(t[i + 2])) >= 0) {
                                *o++ = (char) (hi << 4 | lo);
                                i += 2;
                        } else {
                                if (t[i] == '=')
                                        *defects |= MIME_HEADER_DEFECT_ENCODED_WORD;
                                *o++ = t[i];
                        }
                }
                bytes->size = (size_t) (o - bytes->data);
        }
        bytes->data[bytes->size] = '\0';
        return 0;
}

static int pending_flush(MimeCharsets *c, const char *charset, MimeBuffer *bytes, MimeBuffer *out,
                         unsigned *defects) {
        int r;

        if (bytes->size == 0)
                return 0;
        r = mime_convert(c, charset, bytes->data, bytes->size, out);
        if (r < 0)
                return r;
        assert(r > 0);          /* only known charsets get here */
        mime_buffer_clear(bytes);
        return 0;
}

/* The first "=?" in s[0..n), or NULL (memchr() for the '=', cheaper than memmem() on
 * the many header values without one). */
static const char* find_encoded_word(const char *s, size_t n) {
        const char *end = s + n;

        while (end - s >= 2) {
                s = memchr(s, '=', (size_t) (end - s) - 1);
                if (!s)
                        return NULL;
                if (s[1] == '?')
                        return s;
                s++;
        }
        return NULL;
}

int rfc2047_decode(MimeCharsets *c, const char *value, size_t n, MimeBuffer *out, unsigned *ret_defects) {
        _cleanup_(mime_buffer_done) MimeBuffer bytes = MIME_BUFFER_NULL;
        char pending_charset[CHARSET_NAME_MAX + 1] = "";
        bool have_pending = false;
        unsigned defects = 0;
        size_t pos = 0;
        int r;

        assert(c);
        assert(value || n == 0);
        assert(out);

        r = mime_buffer_reserve(out, n);
        if (r < 0)
                return r;

        while (pos < n) {
                const char *p = find_encoded_word(value + pos, n - pos), *cs, *text;
                size_t start, len, cs_len, text_len, k;
                char charset[CHARSET_NAME_MAX + 1], encoding, *star;
                bool gap_blank = true, known;
                iconv_t cd;

                if (!p)
                        break;
                start = (size_t) (p - value);
                len = encoded_word_parse(p, n - start, &cs, &cs_len, &encoding, &text, &text_len);
                if (len == 0) {
                        /* Not an encoded word: "=?" is text. */
                        if (memmem(p + 2, n - start - 2, "?=", 2))
                                defects |= MIME_HEADER_DEFECT_ENCODED_WORD;
                        if (have_pending) {
                                r = pending_flush(c, pending_charset, &bytes, out, &defects);
                                if (r < 0)
                                        return r;
                                have_pending = false;
                        }
                        r = header_text_append(value + pos, start + 2 - pos, out, &defects);
                        if (r < 0)
                                return r;
                        pos = start + 2;
                        continue;
                }

                for (k = pos; k < start; k++)
                        if (!IN_SET(value[k], ' ', '\t', '\r', '\n')) {
                                gap_blank = false;
                                break;
                        }
                if (have_pending && !gap_blank) {
                        r = pending_flush(c, pending_charset, &bytes, out, &defects);
                        if (r < 0)
                                return r;
                        have_pending = false;
                }
                if (!have_pending) {
                        r = header_text_append(value + pos, start - pos, out, &defects);
                        if (r < 0)
                                return r;
                }

                /* RFC 2231 §5: charset*language */
                memcpy(charset, cs, cs_len);
                charset[cs_len] = '\0';
                star = strchr(charset, '*');
                if (star)
                        *star = '\0';

                (void) mime_charsets_lookup(c, charset, &cd, &known);
                if (!known) {
                        /* Keep the word as written. */
                        defects |= MIME_HEADER_DEFECT_CHARSET;
                        if (have_pending) {
                                r = pending_flush(c, pending_charset, &bytes, out, &defects);
                                if (r < 0)
                                        return r;
                                have_pending = false;
                        }
                        r = header_text_append(p, len, out, &defects);
                        if (r < 0)
                                return r;
                        pos = start + len;
                        continue;
                }

                if (have_pending && strcasecmp(pending_charset, charset) != 0) {
                        r = pending_flush(c, pending_charset, &bytes, out, &defects);
                        if (r < 0)
                                return r;
                }
                strcpy(pending_charset, charset);
                have_pending = true;
                r = encoded_word_decode(encoding, text, text_len, &bytes, &defects);
                if (r < 0)
                        return r;
                pos = start + len;
        }

        if (have_pending) {
                r = pending_flush(c, pending_charset, &bytes, out, &defects);
                if (r < 0)
                        return r;
        }
        if (pos < n) {
                r = header_text_append(value + pos, n - pos, out, &defects);
                if (r < 0)
                        return r;
        }

        if (ret_defects)
                *ret_defects |= defects;
        return 0;
}

/* ---- parameters (RFC 2045 §5.1, RFC 2231) ------------------------------------------ */

typedef struct ParamPiece {
        char *name;             /* lowercased, RFC 2231 suffixes removed */
        int section;            /* -1: not a continuation */
        bool extended;          /* value is charset'lang'%XX (section 0) or %XX */
        char *value;            /* unquoted, raw bytes */
} ParamPiece;

#define PARAM_PIECES_MAX 256U

static size_t skip_comment(const char *s, size_t n, size_t i) {
        unsigned level = 0;

        /* s[i] == '(' */
        for (; i < n; i++) {
                if (s[i] == '\\' && i + 1 < n)
                        i++;
                else if (s[i] == '(')
                        level++;
                else if (s[i] == ')' && --level == 0)
                        return i + 1;
        }
        return n;
}

static size_t skip_cfws(const char *s, size_t n, size_t i) {
        while (i < n) {
                if (IN_SET(s[i], ' ', '\t', '\r', '\n'))
                        i++;
                else if (s[i] == '(')
                        i = skip_comment(s, n, i);
                else
                        break;
        }
        return i;
}

static char* strndup_trim(const char *s, size_t n, bool lower) {
        char *d;

        while (n > 0 && IN_SET(s[0], ' ', '\t', '\r', '\n')) {
                s++;
                n--;
        }
        while (n > 0 && IN_SET(s[n - 1], ' ', '\t', '\r', '\n'))
                n--;
        d = strndup(s, n);
        if (d && lower)
                for (char *q = d; *q; q++)
                        if (*q >= 'A' && *q <= 'Z')
                                *q = (char) (*q - 'A' + 'a');
        return d;
}

static void pieces_free(ParamPiece *pieces, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(pieces[i].name);
                free(pieces[i].value);
        }
        free(pieces);
}

/* Split "name*3*" into name, section 3, extended. */
static void piece_name_split(ParamPiece *piece) {
        size_t l = strlen(piece->name);
        char *star;

        piece->section = -1;
        if (l > 1 && piece->name[l - 1] == '*') {
                piece->extended = true;
                piece->name[--l] = '\0';
        }
        star = strrchr(piece->name, '*');
        if (star && star > piece->name && star[1] && strspn(star + 1, "0123456789") == strlen(star + 1) &&
            strlen(star + 1) <= 3) {
                piece->section = atoi(star + 1);
                *star = '\0';
        }
}

static int percent_decode_append(const char *s, MimeBuffer *b, unsigned *defects) {
        size_t n = strlen(s);
        char *o;
        int r;

        r = mime_buffer_reserve(b, n);
        if (r < 0)
                return r;
        o = b->data + b->size;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;

                if (s[i] == '%' && i + 2 < n &&
                    (hi = unhex(s[i + 1])) >= 0 && (lo = unhex(s[i + 2])) >= 0) {
                        *o++ = (char) (hi << 4 | lo);
                        i += 2;
                } else {
                        if (s[i] == '%')
                                *defects |= MIME_HEADER_DEFECT_PARAM;
                        *o++ = s[i];
                }
        }
        b->size = (size_t) (o - b->data);
        b->data[b->size] = '\0';
        return 0;
}

/* Join the RFC 2231 pieces of one parameter. Returns 1 with *ret set, 0 when they do not
 * start with section 0 (or a lone "name*="). */
static int param_assemble_rfc2231(MimeCharsets *c, const ParamPiece *pieces, size_t n_pieces, const char *name,
                                  bool raw, char **ret, unsigned *defects) {
        _cleanup_(mime_buffer_done) MimeBuffer bytes = MIME_BUFFER_NULL, out = MIME_BUFFER_NULL;
        _cleanup_free_ char *charset = NULL;
        unsigned sec;
        int r;

        for (sec = 0; sec < MIME_PARAM_SECTIONS_MAX; sec++) {
                const ParamPiece *p = NULL;
                const char *v;

                for (size_t j = 0; j < n_pieces; j++)
                        if (streq(pieces[j].name, name) &&
                            (pieces[j].section == (int) sec ||
                             (sec == 0 && pieces[j].section < 0 && pieces[j].extended))) {
                                p = &pieces[j];
                                break;
                        }
                if (!p)
                        break;

                v = p->value;
                if (sec == 0 && p->extended) {
                        const char *q1 = strchr(v, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;

                        if (q2) {
                                charset = strndup(v, (size_t) (q1 - v));
                                if (!charset)
                                        return -ENOMEM;
                                v = q2 + 1;
                        } else
                                *defects |= MIME_HEADER_DEFECT_PARAM;
                }
                if (p->extended)
                        r = percent_decode_append(v, &bytes, defects);
                else
                        r = mime_buffer_append(&bytes, v, strlen(v));
                if (r < 0)
                        return r;
                if (sec == 0 && p->section < 0) {
                        sec++;
                        break;
                }
        }
        if (sec == 0)
                return 0;

        if (raw)
                r = mime_buffer_append(&out, bytes.data ?: "", bytes.size);
        else {
                r = mime_convert(c, charset, bytes.data ?: "", bytes.size, &out);
                if (r == 0) {
                        *defects |= MIME_HEADER_DEFECT_CHARSET;
                        r = mime_convert(c, NULL, bytes.data ?: "", bytes.size, &out);
                }
        }
        if (r < 0)
                return r;

        *ret = strdup(out.data ?: "");
        if (!*ret)
                return -ENOMEM;
        return 1;
}

int mime_params_parse(MimeCharsets *c, const char *value, size_t n, MimeParams *ret, unsigned *ret_defects) {
        _cleanup_(mime_params_done) MimeParams p = MIME_PARAMS_NULL;
        ParamPiece *pieces = NULL;
        size_t n_pieces = 0, pieces_alloc = 0, i = 0;
        unsigned defects = 0;
        int r;

        assert(c);
        assert(value || n == 0);
        assert(ret);

        /* The value before the first ';', without whitespace and comments. */
        {
                _cleanup_(mime_buffer_done) MimeBuffer v = MIME_BUFFER_NULL;

                r = mime_buffer_reserve(&v, n);
                if (r < 0)
                        return r;
                while (i < n && value[i] != ';') {
                        if (value[i] == '(') {
                                i = skip_comment(value, n, i);
                                continue;
                        }
                        if (!IN_SET(value[i], ' ', '\t', '\r', '\n', '"')) {
                                char ch = value[i];

                                if (ch >= 'A' && ch <= 'Z')
                                        ch = (char) (ch - 'A' + 'a');
                                v.data[v.size++] = ch;
                        }
                        i++;
                }
                v.data[v.size] = '\0';
                p.value = strdup(v.data);
                if (!p.value)
                        return -ENOMEM;
        }

        while (i < n) {
                _cleanup_(mime_buffer_done) MimeBuffer v = MIME_BUFFER_NULL;
                _cleanup_free_ char *name = NULL;
                size_t start;

                /* value[i] == ';' */
                i = skip_cfws(value, n, i + 1);
                if (i >= n)
                        break;
                start = i;
                while (i < n && value[i] != '=' && value[i] != ';')
                        i++;
                if (i >= n || value[i] == ';') {
                        if (i > start)
                                defects |= MIME_HEADER_DEFECT_PARAM;
                        continue;
                }
                name = strndup_trim(value + start, i - start, /* lower= */ true);
                if (!name) {
                        r = -ENOMEM;
                        goto finish;
                }
                i = skip_cfws(value, n, i + 1);

                r = mime_buffer_reserve(&v, n - i);
                if (r < 0)
                        goto finish;
                if (i < n && value[i] == '"') {
                        bool closed = false;

                        for (i++; i < n; i++) {
                                if (value[i] == '\\' && i + 1 < n)
                                        v.data[v.size++] = value[++i];
                                else if (value[i] == '"') {
                                        closed = true;
                                        i++;
                                        break;
                                } else
                                        v.data[v.size++] = value[i];
                        }
                        if (!closed)
                                defects |= MIME_HEADER_DEFECT_PARAM;
                        /* Anything between the closing quote and the next ';' is junk. */
                        i = skip_cfws(value, n, i);
                        if (i < n && value[i] != ';') {
                                defects |= MIME_HEADER_DEFECT_PARAM;
                                while (i < n && value[i] != ';')
                                        i++;
                        }
                        v.data[v.size] = '\0';
                } else {
                        /* A token; spaces inside are taken, as senders forget quotes. */
                        start = i;
                        while (i < n && value[i] != ';')
                                i++;
                        free(v.data);
                        v = MIME_BUFFER_NULL;
                        v.data = strndup_trim(value + start, i - start, /* lower= */ false);
                        if (!v.data) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        v.size = strlen(v.data);
                        v.allocated = v.size + 1;
                }

                if (isempty(name) || strpbrk(name, " \t\r\n")) {
                        defects |= MIME_HEADER_DEFECT_PARAM;
                        continue;
                }
                if (n_pieces >= PARAM_PIECES_MAX) {
                        defects |= MIME_HEADER_DEFECT_PARAM;
                        break;
                }
                if (n_pieces == pieces_alloc) {
                        /* most fields have a parameter or two; room grows as they come */
                        size_t a = MIN(MAX(pieces_alloc * 2, (size_t) 4), (size_t) PARAM_PIECES_MAX);
                        ParamPiece *np = reallocarray(pieces, a, sizeof(ParamPiece));

                        if (!np) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        pieces = np;
                        pieces_alloc = a;
                }
                pieces[n_pieces] = (ParamPiece) {
                        .name = TAKE_PTR(name),
                        .value = TAKE_PTR(v.data),
                };
                piece_name_split(&pieces[n_pieces]);
                n_pieces++;
        }

        p.params = calloc(MIN(n_pieces, (size_t) MIME_PARAMS_MAX) + 1, sizeof(MimeParam));
        if (!p.params) {
                r = -ENOMEM;
                goto finish;
        }

        for (size_t j = 0; j < n_pieces; j++) {
                const char *name = pieces[j].name;
                bool rfc2231 = false, raw = streq(name, "boundary");
                _cleanup_free_ char *v = NULL;

                if (mime_params_get(&p, name))
                        continue;
                if (p.n_params >= MIME_PARAMS_MAX) {
                        defects |= MIME_HEADER_DEFECT_PARAM;
                        break;
                }

                for (size_t k = j; k < n_pieces; k++)
                        if (streq(pieces[k].name, name) && (pieces[k].section >= 0 || pieces[k].extended))
                                rfc2231 = true;
                if (rfc2231) {
                        r = param_assemble_rfc2231(c, pieces, n_pieces, name, raw, &v, &defects);
                        if (r < 0)
                                goto finish;
                        if (r == 0)
                                defects |= MIME_HEADER_DEFECT_PARAM;
                }
                if (!v) {
                        /* The first plain piece of that name, if any. */
                        const ParamPiece *plain = NULL;

                        for (size_t k = j; k < n_pieces; k++)
                                if (streq(pieces[k].name, name) && pieces[k].section < 0 && !pieces[k].extended) {
                                        plain = &pieces[k];
                                        break;
                                }
                        if (!plain)
                                continue;
                        if (raw)
                                v = strdup(plain->value);
                        else {
                                _cleanup_(mime_buffer_done) MimeBuffer d = MIME_BUFFER_NULL;

                                r = rfc2047_decode(c, plain->value, strlen(plain->value), &d, &defects);
                                if (r < 0)
                                        goto finish;
                                v = strdup(d.data ?: "");
                        }
                        if (!v) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }

                p.params[p.n_params].name = strdup(name);
                if (!p.params[p.n_params].name) {
                        r = -ENOMEM;
                        goto finish;
                }
                p.params[p.n_params++].value = TAKE_PTR(v);
        }

        if (ret_defects)
                *ret_defects |= defects;
        *ret = p;
        p = MIME_PARAMS_NULL;
        r = 0;

finish:
        pieces_free(pieces, n_pieces);
        return r;
}

const char* mime_params_get(const MimeParams *p, const char *name) {
        if (!p || !name)
                return NULL;
        for (size_t i = 0; i < p->n_params; i++)
                if (streq(p->params[i].name, name))
                        return p->params[i].value;
        return NULL;
}

void mime_params_done(MimeParams *p) {
        if (!p)
                return;
        free(p->value);
        for (size_t i = 0; i < p->n_params; i++) {
                free(p->params[i].name);
                free(p->params[i].value);
        }
        free(p->params);
        *p = MIME_PARAMS_NULL;
}
