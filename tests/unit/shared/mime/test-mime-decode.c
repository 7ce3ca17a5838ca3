/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Table-driven Check suite of the MIME decoders (services/shared/mime/mime-decode.c):
 * base64, quoted-printable, charset conversion, RFC 2047 encoded words, RFC 2231
 * parameters. */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "mime-decode.h"
#include "string-util.h"

typedef struct Base64Case {
        const char *name;
        const char *input;
        const char *output;
        bool bad;
} Base64Case;

static const Base64Case base64_cases[] = {
        { "padded",                "SGVsbG8=",             "Hello",        false },
        { "two pads",              "SGk=",                 "Hi",           false },
        { "no padding 1",          "SGVsbG8",              "Hello",        false },
        { "no padding 2",          "SGk",                  "Hi",           false },
        { "full group",            "YWJj",                 "abc",          false },
        { "line breaks",           "YW\r\nJj\nZGVm",       "abcdef",       false },
        { "bad characters",        "Y!W*J.j",              "abc",          true },
        { "concatenated",          "SGk=SGk=",             "HiHi",         false },
        { "lone sextet",           "YWJjZ",                "abc",          true },
        { "empty",                 "",                     "",             false },
        { "only padding",          "====",                 "",             false },
        { "8-bit junk",            "YW\xff\xfeJj",         "abc",          true },
};

START_TEST(test_base64_table)
{
        for (size_t i = 0; i < ELEMENTSOF(base64_cases); i++) {
                const Base64Case *c = &base64_cases[i];
                size_t n = strlen(c->input), k;
                uint8_t out[64];

                /* whole */
                Base64Decoder d = BASE64_DECODER_NULL;
                k = base64_decoder_feed(&d, c->input, n, out);
                k += base64_decoder_finish(&d, out + k);
                ck_assert_msg(k == strlen(c->output) && memcmp(out, c->output, k) == 0,
                              "case '%s': got '%.*s'", c->name, (int) k, out);
                ck_assert_msg((d.bad > 0) == c->bad, "case '%s': bad=%u", c->name, d.bad);

                /* byte by byte */
                d = BASE64_DECODER_NULL;
                k = 0;
                for (size_t j = 0; j < n; j++)
                        k += base64_decoder_feed(&d, c->input + j, 1, out + k);
                k += base64_decoder_finish(&d, out + k);
                ck_assert_msg(k == strlen(c->output) && memcmp(out, c->output, k) == 0,
                              "case '%s' bytewise: got '%.*s'", c->name, (int) k, out);
        }
}
END_TEST

typedef struct QpCase {
        const char *name;
        const char *lines[4];   /* fed as lines with a line end after each */
        const char *output;     /* "\n" where the decoder reports a hard break */
        bool bad;
} QpCase;

static const QpCase qp_cases[] = {
        { "plain",               { "hello world" },                  "hello world\n",  false },
        { "escapes",             { "caf=E9 =3D =c3=a9" },             "caf\xe9 = \xc3\xa9\n", false },
        { "soft break",          { "long wor=", "d here" },           "long word here\n", false },
        { "trailing whitespace", { "a b  \t", "c" },                  "a b\nc\n",      false },
        { "soft break + space",  { "abc= ", "def" },                  "abcdef\n",      false },
        { "bad escape kept",     { "100=% =ZZ" },                     "100=% =ZZ\n",   true },
        { "escape at end",       { "x=4" },                           "x=4\n",         true },
        { "lone =",              { "=" },                             "",              false },
        { "empty lines",         { "", "a", "" },                     "\na\n\n",       false },
};

START_TEST(test_qp_table)
{
        for (size_t i = 0; i < ELEMENTSOF(qp_cases); i++) {
                const QpCase *c = &qp_cases[i];
                QpDecoder d = QP_DECODER_NULL;
                char out[256];
                size_t k = 0;

                for (size_t j = 0; j < ELEMENTSOF(c->lines) && c->lines[j]; j++) {
                        bool hard;

                        k += qp_decoder_feed_line(&d, c->lines[j], strlen(c->lines[j]), true, out + k, &hard);
                        if (hard)
                                out[k++] = '\n';
                }
                k += qp_decoder_finish(&d, out + k);
                ck_assert_msg(k == strlen(c->output) && memcmp(out, c->output, k) == 0,
                              "case '%s': got '%.*s'", c->name, (int) k, out);
                ck_assert_msg((d.bad > 0) == c->bad, "case '%s': bad=%u", c->name, d.bad);
        }
}
END_TEST

START_TEST(test_qp_cut_lines)
{
        /* A line cut anywhere (no line end between pieces) decodes like the whole line. */
        static const char *const lines[] = { "a=3Db=C3=A9c=", "x==41=4", "=\t", "q=ZZ=" };

        for (size_t l = 0; l < ELEMENTSOF(lines); l++) {
                size_t n = strlen(lines[l]);
                char whole[64], cut[64];
                size_t kw, kc;
                bool hw, hc;

                QpDecoder d = QP_DECODER_NULL;
                kw = qp_decoder_feed_line(&d, lines[l], n, true, whole, &hw);
                kw += qp_decoder_finish(&d, whole + kw);

                for (size_t at = 0; at <= n; at++)
                        for (size_t at2 = at; at2 <= n; at2++) {
                                QpDecoder e = QP_DECODER_NULL;

                                kc = qp_decoder_feed_line(&e, lines[l], at, false, cut, NULL);
                                kc += qp_decoder_feed_line(&e, lines[l] + at, at2 - at, false, cut + kc, NULL);
                                kc += qp_decoder_feed_line(&e, lines[l] + at2, n - at2, true, cut + kc, &hc);
                                kc += qp_decoder_finish(&e, cut + kc);
                                ck_assert_msg(kc == kw && memcmp(cut, whole, kw) == 0 && hc == hw,
                                              "line '%s' cut at %zu,%zu: '%.*s' vs '%.*s'", lines[l], at, at2,
                                              (int) kc, cut, (int) kw, whole);
                        }
        }
}
END_TEST

typedef struct ConvertCase {
        const char *name;
        const char *charset;
        const char *input;
        const char *output;
        int known;
        bool replaced;
} ConvertCase;

static const ConvertCase convert_cases[] = {
        { "no charset ascii",     NULL,           "hello",               "hello",                 1, false },
        { "no charset utf-8",     NULL,           "gr\xc3\xbc\xc3\x9f",  "gr\xc3\xbc\xc3\x9f",    1, false },
        { "no charset latin-1",   NULL,           "gr\xfc\xdf",          "gr\xc3\xbc\xc3\x9f",    1, true },
        { "us-ascii with 8bit",   "US-ASCII",     "\x80 \xe9",           "\xe2\x82\xac \xc3\xa9", 1, true },
        { "utf-8 valid",          "utf-8",        "\xe2\x82\xac",        "\xe2\x82\xac",          1, false },
        { "utf-8 invalid",        "UTF-8",        "a\xff" "b",           "a\xef\xbf\xbd" "b",     1, true },
        { "utf-8 overlong",       "utf-8",        "\xc0\xaf",            "\xef\xbf\xbd\xef\xbf\xbd", 1, true },
        { "utf-8 surrogate",      "utf8",         "\xed\xa0\x80",        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 1, true },
        { "utf-8 truncated",      "utf-8",        "a\xe2\x82",           "a\xef\xbf\xbd",         1, true },
        { "iso-8859-1",           "ISO-8859-1",   "caf\xe9",             "caf\xc3\xa9",           1, false },
        { "latin1 C1 as cp1252",  "latin1",       "\x93q\x94",           "\xe2\x80\x9cq\xe2\x80\x9d", 1, false },
        { "windows-1252 hole",    "windows-1252", "a\x81",               "a\xef\xbf\xbd",         1, true },
        { "iso-8859-15 euro",     "iso-8859-15",  "\xa4",                "\xe2\x82\xac",          1, false },
        { "iso-8859-2",           "iso-8859-2",   "\xb1",                "\xc4\x85",              1, false },
        { "koi8-r",               "koi8-r",       "\xf0\xd2\xc9\xd7\xc5\xd4", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 1, false },
        { "shift_jis",            "Shift_JIS",    "\x82\xa0",            "\xe3\x81\x82",          1, false },
        { "iso-2022-jp",          "iso-2022-jp",  "\x1b$B$\"\x1b(B!",    "\xe3\x81\x82!",         1, false },
        { "gb2312",               "gb2312",       "\xc4\xe3\xba\xc3",    "\xe4\xbd\xa0\xe5\xa5\xbd", 1, false },
        { "unknown charset",      "x-no-such",    "ok\xe9",              "ok\xc3\xa9",            0, true },
        { "hostile name",         "../../etc/x",  "ok",                  "ok",                    0, false },
        { "translit suffix",      "utf-8//TRANSLIT", "ok",               "ok",                    0, false },
};

START_TEST(test_convert_table)
{
        _cleanup_(mime_charsets_freep) MimeCharsets *cs = NULL;

        ck_assert_int_eq(mime_charsets_new(&cs), 0);

        for (size_t i = 0; i < ELEMENTSOF(convert_cases); i++) {
                const ConvertCase *c = &convert_cases[i];
                size_t n = strlen(c->input);

                for (int mode = 0; mode < 2; mode++) {
                        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL, pending = MIME_BUFFER_NULL;
                        MimeConverter v;

                        ck_assert_int_eq(mime_converter_init(&v, cs, c->charset), c->known);
                        if (mode == 0)
                                ck_assert_int_eq(mime_converter_feed(&v, c->input, n, true, &out), (ssize_t) n);
                        else {
                                /* Byte by byte, with the unconsumed tail presented again. */
                                for (size_t j = 0; j <= n; j++) {
                                        ssize_t k;

                                        if (j < n)
                                                ck_assert_int_eq(mime_buffer_append(&pending, c->input + j, 1), 0);
                                        k = mime_converter_feed(&v, pending.data ?: "", pending.size, j == n, &out);
                                        ck_assert_int_ge(k, 0);
                                        mime_buffer_consume(&pending, (size_t) k);
                                        ck_assert_uint_le(pending.size, MIME_CONVERTER_TAIL_MAX);
                                }
                                ck_assert_uint_eq(pending.size, 0);
                        }
                        ck_assert_msg(streq(out.data ?: "", c->output), "case '%s' mode %d: got '%s'", c->name, mode,
                                      out.data ?: "");
                        ck_assert_msg((v.replaced > 0) == c->replaced, "case '%s': replaced=%u", c->name, v.replaced);
                }
        }
}
END_TEST

typedef struct Rfc2047Case {
        const char *name;
        const char *input;
        const char *output;
        unsigned defects;
} Rfc2047Case;

static const Rfc2047Case rfc2047_cases[] = {
        { "plain",                  "Hello world",                               "Hello world", 0 },
        { "empty",                  "",                                          "", 0 },
        { "Q latin-1",              "=?iso-8859-1?q?J=F6rg?= <j@x>",             "J\xc3\xb6rg <j@x>", 0 },
        { "Q underscore",           "=?utf-8?Q?a_b=3F?=",                        "a b?", 0 },
        { "B utf-8",                "=?UTF-8?B?4oKsIDEwMA==?=",                  "\xe2\x82\xac 100", 0 },
        { "adjacent joined",        "=?utf-8?q?a?= =?utf-8?q?b?=",               "ab", 0 },
        { "adjacent folded",        "=?utf-8?q?a?=\r\n\t=?utf-8?q?b?= c",        "ab c", 0 },
        { "split character",        "=?UTF-8?B?4oI=?= =?UTF-8?B?rA==?=",         "\xe2\x82\xac", 0 },
        { "text between kept",      "=?utf-8?q?a?= x =?utf-8?q?b?=",             "a x b", 0 },
        { "different charsets",     "=?iso-8859-1?q?=E9?= =?koi8-r?b?8A==?=",    "\xc3\xa9\xd0\x9f", 0 },
        { "koi8-r",                 "=?koi8-r?B?8NLJ18XU?=",                     "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 0 },
        { "shift_jis",              "=?Shift_JIS?B?gqA=?=",                      "\xe3\x81\x82", 0 },
        { "gb2312",                 "=?GB2312?B?xOO6ww==?=",                     "\xe4\xbd\xa0\xe5\xa5\xbd", 0 },
        { "language suffix",        "=?us-ascii*en?q?hi?=",                      "hi", 0 },
        { "unknown charset raw",    "=?x-nope?q?abc?= d",                        "=?x-nope?q?abc?= d", MIME_HEADER_DEFECT_CHARSET },
        { "unknown then known",     "=?x-nope?q?a?= =?utf-8?q?b?=",              "=?x-nope?q?a?= b", MIME_HEADER_DEFECT_CHARSET },
        { "bad Q escape kept",      "=?utf-8?q?100=%?=",                         "100=%", MIME_HEADER_DEFECT_ENCODED_WORD },
        { "bad B chars",            "=?utf-8?b?a*GVsbG8=?=",                     "hello", MIME_HEADER_DEFECT_ENCODED_WORD },
        { "unterminated",           "=?utf-8?q?abc",                             "=?utf-8?q?abc", 0 },
        { "space inside",           "=?utf-8?q?a b?=",                           "=?utf-8?q?a b?=", MIME_HEADER_DEFECT_ENCODED_WORD },
        { "bad encoding letter",    "=?utf-8?x?abc?=",                           "=?utf-8?x?abc?=", MIME_HEADER_DEFECT_ENCODED_WORD },
        { "raw 8-bit latin-1",      "Gr\xfc\xdf" "e",                            "Gr\xc3\xbc\xc3\x9f" "e", MIME_HEADER_DEFECT_8BIT },
        { "raw 8-bit utf-8",        "Gr\xc3\xbc\xc3\x9f" "e",                    "Gr\xc3\xbc\xc3\x9f" "e", MIME_HEADER_DEFECT_8BIT },
        { "empty word",             "=?utf-8?q?" "?=x",                             "x", 0 },
        { "mixed",                  "Re: =?utf-8?q?caf=C3=A9?= ok",              "Re: caf\xc3\xa9 ok", 0 },
};

START_TEST(test_rfc2047_table)
{
        _cleanup_(mime_charsets_freep) MimeCharsets *cs = NULL;

        ck_assert_int_eq(mime_charsets_new(&cs), 0);

        for (size_t i = 0; i < ELEMENTSOF(rfc2047_cases); i++) {
                const Rfc2047Case *c = &rfc2047_cases[i];
                _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
                unsigned defects = 0;

                ck_assert_int_eq(rfc2047_decode(cs, c->input, strlen(c->input), &out, &defects), 0);
                ck_assert_msg(streq(out.data ?: "", c->output), "case '%s': got '%s'", c->name, out.data ?: "");
                ck_assert_msg(defects == c->defects, "case '%s': defects 0x%x", c->name, defects);
        }
}
END_TEST

START_TEST(test_rfc2047_nul)
{
        _cleanup_(mime_charsets_freep) MimeCharsets *cs = NULL;
        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
        static const char in[] = "a\0b =?utf-8?q?c=00d?= =?koi8-r?q?=00=F0?=";

        ck_assert_int_eq(mime_charsets_new(&cs), 0);
        ck_assert_int_eq(rfc2047_decode(cs, in, sizeof(in) - 1, &out, NULL), 0);
        /* NUL inside raw text becomes U+FFFD, so the value stays a C string */
        ck_assert_str_eq(out.data, "a\xef\xbf\xbd" "b c\xef\xbf\xbd" "d\xef\xbf\xbd\xd0\x9f");
        ck_assert_uint_eq(strlen(out.data), out.size);

        /* ASCII is copied eight bytes at a time: a NUL at the end of such a block, at the
         * start of the next, and in the last bytes, after the blocks */
        {
                static const char in2[] = "1234567\0" "\0bcdefghijklmno" "pq\0";

                mime_buffer_clear(&out);
                ck_assert_int_eq(rfc2047_decode(cs, in2, sizeof(in2) - 1, &out, NULL), 0);
                ck_assert_str_eq(out.data, "1234567\xef\xbf\xbd" "\xef\xbf\xbd" "bcdefghijklmno" "pq\xef\xbf\xbd");
                ck_assert_uint_eq(strlen(out.data), out.size);
        }
}
END_TEST

typedef struct ParamsCase {
        const char *name;
        const char *input;
        const char *value;
        const char *params[8];  /* name, value pairs */
        unsigned defects;
} ParamsCase;

static const ParamsCase params_cases[] = {
        { "simple",          "text/plain; charset=us-ascii",        "text/plain", { "charset", "us-ascii" }, 0 },
        { "case and space",  " Text/HTML ;\r\n\tCharset = \"UTF-8\" ", "text/html", { "charset", "UTF-8" }, 0 },
        { "quoted escapes",  "a/b; x=\"q\\\"u;o\\\\te\"; y=z",      "a/b", { "x", "q\"u;o\\te", "y", "z" }, 0 },
        { "boundary raw",    "multipart/mixed; boundary=\"=_=?x?=_\"", "multipart/mixed", { "boundary", "=_=?x?=_" }, 0 },
        { "comments",        "text/plain (a comment); (c) charset=x", "text/plain", { "charset", "x" }, 0 },
        { "first wins",      "a/b; n=1; n=2",                        "a/b", { "n", "1" }, 0 },
        { "rfc2231 charset", "attachment; filename*=iso-8859-1'de'f%FCr.txt", "attachment",
          { "filename", "f\xc3\xbcr.txt" }, 0 },
        { "rfc2231 utf-8",   "a/b; name*=UTF-8''%E2%82%AC.pdf",      "a/b", { "name", "\xe2\x82\xac.pdf" }, 0 },
        { "continuations",   "a/b; name*1=\"two\"; name*0=\"one-\"; name*2=-three", "a/b",
          { "name", "one-two-three" }, 0 },
        { "ext continuations", "a/b; f*0*=utf-8''%C3; f*1*=%A9; f*2=.txt", "a/b", { "f", "\xc3\xa9.txt" }, 0 },
        { "2231 over plain", "a/b; name=\"plain\"; name*=utf-8''better", "a/b", { "name", "better" }, 0 },
        { "2047 in quotes",  "a/b; name=\"=?utf-8?b?w6k=?=.doc\"",   "a/b", { "name", "\xc3\xa9.doc" }, 0 },
        { "unknown 2231 cs", "a/b; n*=x-nope''%E9", "a/b", { "n", "\xc3\xa9" }, MIME_HEADER_DEFECT_CHARSET },
        { "2231 no quotes",  "a/b; n*=abc", "a/b", { "n", "abc" }, MIME_HEADER_DEFECT_PARAM },
        { "bad percent",     "a/b; n*=utf-8''a%zz", "a/b", { "n", "a%zz" }, MIME_HEADER_DEFECT_PARAM },
        { "section gap",     "a/b; n*0=a; n*2=c", "a/b", { "n", "a" }, 0 },
        { "no section 0",    "a/b; n*1=a", "a/b", { NULL }, MIME_HEADER_DEFECT_PARAM },
        { "unquoted spaces", "attachment; filename=my file.pdf", "attachment", { "filename", "my file.pdf" }, 0 },
        { "no equals",       "a/b; junk; c=d", "a/b", { "c", "d" }, MIME_HEADER_DEFECT_PARAM },
        { "unterminated",    "a/b; c=\"d", "a/b", { "c", "d" }, MIME_HEADER_DEFECT_PARAM },
        { "empty",           "", "", { NULL }, 0 },
        { "empty values",    "a/b; c=; d=\"\"", "a/b", { "c", "", "d", "" }, 0 },
        { "only semicolons", ";;;", "", { NULL }, 0 },
        { "raw 8-bit name",  "a/b; name=\"\xe9t\xe9.txt\"", "a/b", { "name", "\xc3\xa9t\xc3\xa9.txt" }, MIME_HEADER_DEFECT_8BIT },
};

START_TEST(test_params_table)
{
        _cleanup_(mime_charsets_freep) MimeCharsets *cs = NULL;

        ck_assert_int_eq(mime_charsets_new(&cs), 0);

        for (size_t i = 0; i < ELEMENTSOF(params_cases); i++) {
                const ParamsCase *c = &params_cases[i];
                _cleanup_(mime_params_done) MimeParams p = MIME_PARAMS_NULL;
                unsigned defects = 0;
                size_t n = 0;

                ck_assert_int_eq(mime_params_parse(cs, c->input, strlen(c->input), &p, &defects), 0);
                ck_assert_msg(streq(p.value, c->value), "case '%s': value '%s'", c->name, p.value);
                for (; n < ELEMENTSOF(c->params) / 2 && c->params[2 * n]; n++) {
                        const char *v = mime_params_get(&p, c->params[2 * n]);

                        ck_assert_msg(v && streq(v, c->params[2 * n + 1]), "case '%s': %s='%s'", c->name,
                                      c->params[2 * n], v ?: "(null)");
                }
                ck_assert_msg(p.n_params == n, "case '%s': %zu params", c->name, p.n_params);
                ck_assert_msg(defects == c->defects, "case '%s': defects 0x%x", c->name, defects);
        }
}
END_TEST

START_TEST(test_params_bounded)
{
        _cleanup_(mime_charsets_freep) MimeCharsets *cs = NULL;
        _cleanup_(mime_params_done) MimeParams p = MIME_PARAMS_NULL;
        _cleanup_(mime_buffer_done) MimeBuffer in = MIME_BUFFER_NULL;
        unsigned defects = 0;
        char piece[32];

        ck_assert_int_eq(mime_charsets_new(&cs), 0);
        ck_assert_int_eq(mime_buffer_append(&in, "a/b", 3), 0);
        for (unsigned i = 0; i < 1000; i++) {
                int l = snprintf(piece, sizeof(piece), "; p%u=%u", i, i);
                ck_assert_int_eq(mime_buffer_append(&in, piece, (size_t) l), 0);
        }
        ck_assert_int_eq(mime_params_parse(cs, in.data, in.size, &p, &defects), 0);
        ck_assert_uint_eq(p.n_params, MIME_PARAMS_MAX);
        ck_assert_str_eq(mime_params_get(&p, "p0"), "0");
        ck_assert(defects & MIME_HEADER_DEFECT_PARAM);
}
END_TEST

START_TEST(test_charset_cache)
{
        _cleanup_(mime_charsets_freep) MimeCharsets *cs = NULL;
        iconv_t a = (iconv_t) -1, b = (iconv_t) -1;
        bool known;
        char name[32];

        ck_assert_int_eq(mime_charsets_new(&cs), 0);
        ck_assert_int_eq(mime_charsets_lookup(cs, "KOI8-R", &a, &known), MIME_CHARSET_ICONV);
        ck_assert(known);
        ck_assert_int_eq(mime_charsets_lookup(cs, "koi8-r", &b, &known), MIME_CHARSET_ICONV);
        ck_assert_ptr_eq(a, b);
        ck_assert_int_eq(mime_charsets_lookup(cs, "us-ascii", &b, &known), MIME_CHARSET_FALLBACK);
        ck_assert(known);
        ck_assert_int_eq(mime_charsets_lookup(cs, "x-nope", &b, &known), MIME_CHARSET_FALLBACK);
        ck_assert(!known);
        ck_assert_int_eq(mime_charsets_lookup(cs, "iso-8859-1", &b, &known), MIME_CHARSET_CP1252);
        ck_assert_int_eq(mime_charsets_lookup(cs, "utf8", &b, &known), MIME_CHARSET_UTF8);

        /* More names than the cache holds: entries are replaced, lookups stay right. */
        for (unsigned i = 1; i <= 10; i++) {
                snprintf(name, sizeof(name), "iso-8859-%u", i == 1 ? 2 : i);
                ck_assert_int_eq(mime_charsets_lookup(cs, name, &b, &known), MIME_CHARSET_ICONV);
                snprintf(name, sizeof(name), "x-unknown-%u", i);
                ck_assert_int_eq(mime_charsets_lookup(cs, name, &b, &known), MIME_CHARSET_FALLBACK);
                ck_assert(!known);
        }
        ck_assert_int_eq(mime_charsets_lookup(cs, "koi8-r", &b, &known), MIME_CHARSET_ICONV);
        ck_assert(known);
}
END_TEST

static Suite* mime_decode_suite(void) {
        Suite *s = suite_create("mime-decode");
        TCase *tc;

        tc = tcase_create("base64");
        tcase_add_test(tc, test_base64_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("quoted-printable");
        tcase_add_test(tc, test_qp_table);
        tcase_add_test(tc, test_qp_cut_lines);
        suite_add_tcase(s, tc);

        tc = tcase_create("charsets");
        tcase_add_test(tc, test_convert_table);
        tcase_add_test(tc, test_charset_cache);
        suite_add_tcase(s, tc);

        tc = tcase_create("rfc2047");
        tcase_add_test(tc, test_rfc2047_table);
        tcase_add_test(tc, test_rfc2047_nul);
        suite_add_tcase(s, tc);

        tc = tcase_create("parameters");
        tcase_add_test(tc, test_params_table);
        tcase_add_test(tc, test_params_bounded);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(mime_decode_suite);
