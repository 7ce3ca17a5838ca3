/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Table-driven Check suite of the HTML to text reducer (services/shared/mime/html-text.c). */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "html-text.h"
#include "string-util.h"

typedef struct HtmlCase {
        const char *name;
        const char *input;
        const char *text;
        unsigned insertions;
        const char *urls;       /* hosts joined by ' ' */
} HtmlCase;

static const HtmlCase html_cases[] = {
        { "plain",                "hello world",                             "hello world", 0, "" },
        { "comment in word",      "vi<!-- x -->agra",                        "viagra", 1, "" },
        { "empty tags in word",   "vi<b></b>agra",                           "viagra", 1, "" },
        { "font in word",         "V<font color=red>I</font>AGRA",           "VIAGRA", 2, "" },
        { "tag between words",    "buy <b>now</b> please",                   "buy now please", 0, "" },
        { "block tag splits",     "one<br>two<p>three</p>four",              "one two three four", 0, "" },
        { "div td li",            "<div>a</div><table><tr><td>b</td><td>c</td></tr></table><ul><li>d</ul>",
                                                                              "a b c d ", 0, "" },
        { "headings",             "x<h1>T</h1>y<H6>U</H6>z",                 "x T y U z", 0, "" },
        { "script dropped",       "a<script type=\"x\">var s = '<b>no</b>';</script>b", "ab", 1, "" },
        { "style dropped",        "<style>p { color: red }</style>text",     "text", 0, "" },
        { "script case",          "a <SCRIPT>x</ScRiPt > b",                 "a b", 0, "" },
        { "named entities",       "&lt;b&gt; &amp; &quot;q&quot; &apos;",    "<b> & \"q\" '", 0, "" },
        { "latin-1 entities",     "caf&eacute; &Uuml;ber &szlig; &yuml; &copy;", "caf\xc3\xa9 \xc3\x9c" "ber \xc3\x9f \xc3\xbf \xc2\xa9", 0, "" },
        { "common entities",      "&euro;5 &hellip; &mdash; &trade;",        "\xe2\x82\xac" "5 \xe2\x80\xa6 \xe2\x80\x94 \xe2\x84\xa2", 0, "" },
        { "decimal",              "&#86;&#105;agra",                         "Viagra", 0, "" },
        { "hex",                  "&#x56;&#X69;agra",                        "Viagra", 0, "" },
        { "no semicolon",         "a &amp b &#65 c",                         "a & b A c", 0, "" },
        { "C1 reference",         "&#147;q&#148;",                           "\xe2\x80\x9cq\xe2\x80\x9d", 0, "" },
        { "invalid reference",    "&#0; &#xD800; &#99999999;",               "\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd", 0, "" },
        { "unknown entity",       "&bogus; & x &;",                          "&bogus; & x &;", 0, "" },
        { "digits then letters",  "&#65bc;",                                 "Abc;", 0, "" },
        { "nbsp is space",        "a&nbsp;&nbsp;b\xc2\xa0" "c",              "a b c", 0, "" },
        { "soft hyphen",          "vi&shy;agra",                             "viagra", 1, "" },
        { "zero-width space",     "vi&#8203;ag\xe2\x80\x8bra",               "viagra", 2, "" },
        { "whitespace collapse",  "  a \r\n\t b  ",                          "a b ", 0, "" },
        { "lone <",               "a < b <3",                                "a < b <3", 0, "" },
        { "doctype and pi",       "<!DOCTYPE html><?xml x?>hi",              "hi", 0, "" },
        { "cdata decl",           "a<![CDATA[x]]>b",                         "ab", 1, "" },
        { "comment with >",       "a<!-- b > c -->d",                        "ad", 1, "" },
        { "comment dashes",       "a<!---->b<!-- - -- --->c",                "abc", 2, "" },
        { "quoted >",             "a<img alt=\"x > y\">b",                   "ab", 1, "" },
        { "href",                 "<a href=\"HTTP://WWW.Example.COM/path?q\">x</a>", "x", 0, "www.example.com" },
        { "src and port",         "<img src='https://img.example.net:8443/a.png'>", "", 0, "img.example.net" },
        { "userinfo",             "<a href=http://user:pw@Evil.example/>x</a>", "x", 0, "evil.example" },
        { "protocol relative",    "<a href=\"//cdn.example.org/x\">y</a>",   "y", 0, "cdn.example.org" },
        { "relative ignored",     "<a href=\"/local\">y</a><a href=\"mailto:a@b.c\">z</a>", "yz", 1, "" },
        { "entity in url",        "<a href=\"http&#58;//obf.example/\">y</a>", "y", 0, "obf.example" },
        { "backslashes",          "<a href=\"http:\\\\back.example\\x\">y</a>", "y", 0, "back.example" },
        { "form action",          "x<form action=\"https://phish.example/login\">", "x ", 0, "phish.example" },
        { "several urls",         "<a href=http://a.example>1</a> <img src=http://b.example/x>", "1 ", 0,
                                  "a.example b.example" },
        { "unterminated tag",     "ok <b class=\"x",                          "ok ", 0, "" },
        { "trailing entity",      "x &amp",                                   "x &", 0, "" },
        { "trailing <",           "x <",                                      "x <", 0, "" },
};

typedef struct UrlSink {
        char buf[2048];
        size_t n;
        char rest[1024];        /* what follows each host, joined by '|' */
        size_t n_rest;
} UrlSink;

static int on_url(const char *host, size_t len, const char *rest, size_t rest_len, void *userdata) {
        UrlSink *s = userdata;

        ck_assert_uint_lt(s->n + len + 1, sizeof(s->buf));
        if (s->n > 0)
                s->buf[s->n++] = ' ';
        memcpy(s->buf + s->n, host, len);
        s->n += len;
        s->buf[s->n] = '\0';

        ck_assert_uint_lt(s->n_rest + rest_len + 1, sizeof(s->rest));
        if (s->n_rest > 0 || s->n > len)
                s->rest[s->n_rest++] = '|';
        memcpy(s->rest + s->n_rest, rest, rest_len);
        s->n_rest += rest_len;
        s->rest[s->n_rest] = '\0';
        return 0;
}

static void run_case(const HtmlCase *c, size_t chunk) {
        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
        UrlSink sink = { .buf = "" };
        size_t n = strlen(c->input);
        HtmlText h;

        html_text_init(&h);
        for (size_t i = 0; i < n; i += chunk) {
                size_t k = MIN(chunk, n - i);

                /* Keep UTF-8 sequences whole, as the reducer requires. */
                while (i + k < n && ((unsigned char) c->input[i + k] & 0xC0) == 0x80)
                        k++;
                ck_assert_int_eq(html_text_feed(&h, c->input + i, k, &out, on_url, &sink), 0);
                i += k - MIN(chunk, n - i);
        }
        ck_assert_int_eq(html_text_finish(&h, &out, on_url, &sink), 0);

        ck_assert_msg(streq(out.data ?: "", c->text), "case '%s' (chunk %zu): text '%s'", c->name, chunk,
                      out.data ?: "");
        ck_assert_msg(h.insertions == c->insertions, "case '%s' (chunk %zu): %u insertions", c->name, chunk,
                      h.insertions);
        ck_assert_msg(streq(sink.buf, c->urls), "case '%s' (chunk %zu): urls '%s'", c->name, chunk, sink.buf);
}

START_TEST(test_html_table)
{
        for (size_t i = 0; i < ELEMENTSOF(html_cases); i++) {
                run_case(&html_cases[i], SIZE_MAX / 2);
                run_case(&html_cases[i], 1);
                run_case(&html_cases[i], 3);
        }
}
END_TEST

START_TEST(test_html_unterminated)
{
        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
        HtmlText h;

        html_text_init(&h);
        ck_assert_int_eq(html_text_feed(&h, "a<!-- never closed", 18, &out, NULL, NULL), 0);
        ck_assert_int_eq(html_text_finish(&h, &out, NULL, NULL), 0);
        ck_assert_str_eq(out.data, "a");
        ck_assert_uint_eq(h.unterminated, 1);
}
END_TEST

static int url_fail(const char *host, size_t len, const char *rest, size_t rest_len, void *userdata) {
        return -ECANCELED;
}

static int on_comment(const char *text, size_t len, void *userdata) {
        UrlSink *s = userdata;

        ck_assert_uint_le(len, HTML_COMMENT_MAX);
        ck_assert_uint_lt(s->n + len + 2, sizeof(s->buf));
        s->buf[s->n++] = '[';
        memcpy(s->buf + s->n, text, len);
        s->n += len;
        s->buf[s->n++] = ']';
        s->buf[s->n] = '\0';
        return 0;
}

START_TEST(test_html_comment_text)
{
        /* the text of each comment that ends, its closing dashes off, however the input is
         * cut; none for one left open, none without a callback */
        static const char in[] = "a<!-- one two -->b<!---->c<!-- x- --->d<!--[if mso]><b>z</b><![endif]-->e<!-- open";
        static const char expect[] = "[ one two ][][ x- ][[if mso]><b>z</b><![endif]]";
        size_t n = strlen(in);
        _cleanup_free_ char *big = NULL;

        for (size_t chunk = 1; chunk <= 128; chunk *= 2) {
                _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
                UrlSink sink = { .buf = "" };
                HtmlText h;

                html_text_init(&h);
                h.comment = on_comment;
                for (size_t i = 0; i < n; i += chunk)
                        ck_assert_int_eq(html_text_feed(&h, in + i, MIN(chunk, n - i), &out, NULL, &sink), 0);
                ck_assert_int_eq(html_text_finish(&h, &out, NULL, &sink), 0);
                ck_assert_msg(streq(sink.buf, expect), "chunk %zu: '%s'", chunk, sink.buf);
                ck_assert_str_eq(out.data, "abcde");
                ck_assert_uint_eq(h.comments, 5);
        }

        /* a long comment is cut to HTML_COMMENT_MAX bytes, not inside a character: "x" or
         * "xx", then "é" (2 bytes) over and over: with one x the bound falls inside an "é",
         * which goes (1023 bytes kept), with two it falls after one (1024 kept) */
        big = malloc(8 + 2 + 2 * HTML_COMMENT_MAX + 8);
        ck_assert_ptr_nonnull(big);
        for (unsigned x = 1; x <= 2; x++) {
                _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
                UrlSink sink = { .buf = "" };
                HtmlText h;

                n = (size_t) sprintf(big, "<!--%s", x == 1 ? "x" : "xx");
                for (size_t i = 0; i < HTML_COMMENT_MAX; i++)
                        n += (size_t) sprintf(big + n, "\xc3\xa9");
                n += (size_t) sprintf(big + n, "-->");
                html_text_init(&h);
                h.comment = on_comment;
                ck_assert_int_eq(html_text_feed(&h, big, n, &out, NULL, &sink), 0);
                ck_assert_uint_eq(sink.n, 2 + (x == 1 ? HTML_COMMENT_MAX - 1 : HTML_COMMENT_MAX));
                ck_assert(sink.buf[sink.n - 1] == ']' && (uint8_t) sink.buf[sink.n - 2] == 0xa9);
        }
}
END_TEST

START_TEST(test_html_url_rest)
{
        /* what follows the authority, with the attribute's references decoded, for each
         * URL reported; however the input is cut */
        static const char in[] =
                "<a href=\"http://a.example/remove.php?email=x&amp;id=7#top\">1</a>"
                "<IMG SRC=http://b.example:8080/img/x.gif><a href='//c.example'>2</a>"
                "<form action=\"https://d.example?q=1\"><a href=\"/local/path\">3</a>";
        static const char hosts[] = "a.example b.example c.example d.example";
        static const char rests[] = "/remove.php?email=x&id=7#top|/img/x.gif||?q=1";
        size_t n = strlen(in);

        for (size_t chunk = 1; chunk <= 256; chunk *= 4) {
                _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
                UrlSink sink = { .buf = "" };
                HtmlText h;

                html_text_init(&h);
                for (size_t i = 0; i < n; i += chunk)
                        ck_assert_int_eq(html_text_feed(&h, in + i, MIN(chunk, n - i), &out, on_url, &sink), 0);
                ck_assert_int_eq(html_text_finish(&h, &out, on_url, &sink), 0);
                ck_assert_msg(streq(sink.buf, hosts), "chunk %zu: hosts '%s'", chunk, sink.buf);
                ck_assert_msg(streq(sink.rest, rests), "chunk %zu: rests '%s'", chunk, sink.rest);
        }
}
END_TEST

START_TEST(test_html_url_callback_error)
{
        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
        HtmlText h;

        html_text_init(&h);
        ck_assert_int_eq(html_text_feed(&h, "<a href=http://x.example>", 25, &out, url_fail, NULL), -ECANCELED);
}
END_TEST

static int on_markup(const char *element, size_t len, void *userdata) {
        UrlSink *s = userdata;
        int k;

        ck_assert_uint_eq(strlen(element), len);
        ck_assert_uint_le(len, HTML_NAME_MAX);
        k = snprintf(s->buf + s->n, sizeof(s->buf) - s->n, "%s%s", s->n > 0 ? "|" : "", element);
        ck_assert_int_gt(k, 0);
        ck_assert_uint_lt(s->n + (size_t) k, sizeof(s->buf));
        s->n += (size_t) k;
        return 0;
}

static void run_markup(const char *in, size_t chunk, const char *expect) {
        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
        UrlSink sink = { .buf = "" };
        size_t n = strlen(in);
        HtmlText h;

        html_text_init(&h);
        h.markup = on_markup;
        for (size_t i = 0; i < n; i += chunk)
                ck_assert_int_eq(html_text_feed(&h, in + i, MIN(chunk, n - i), &out, NULL, &sink), 0);
        ck_assert_int_eq(html_text_finish(&h, &out, NULL, &sink), 0);
        ck_assert_msg(streq(sink.buf, expect), "chunk %zu: markup '%s', expected '%s'", chunk, sink.buf, expect);
}

START_TEST(test_html_markup)
{
        /* Start tags, names lowercased; end tags, comments, declarations and the
         * contents of script do not count; an over-long element name counts by its
         * first HTML_NAME_MAX bytes. */
        const char *in =
                "<!DOCTYPE html><HTML><body BGCOLOR=#FFFFFF>"
                "<Font face=\"Arial, Helvetica\" SIZE='+2' color = red>Buy</font>"
                "<!-- <b x=1> --><script>var a = '<i y=2>';</script>"
                "<img src=http://img.example/a.gif width=1 height=1 border=0 />"
                "<input checked><averyveryverylongelementname a=b>x";
        const char *expect = "html|body|font|script|img|input|averyveryverylo";

        run_markup(in, SIZE_MAX / 2, expect);
        run_markup(in, 1, expect);
        run_markup(in, 7, expect);
}
END_TEST

static int markup_fail(const char *element, size_t len, void *userdata) {
        return streq(element, "p") ? -ECANCELED : 0;
}

START_TEST(test_html_markup_callback_error)
{
        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
        HtmlText h;

        html_text_init(&h);
        h.markup = markup_fail;
        ck_assert_int_eq(html_text_feed(&h, "<b>x</b>", 8, &out, NULL, NULL), 0);
        ck_assert_int_eq(html_text_feed(&h, "<p class=x>", 11, &out, NULL, NULL), -ECANCELED);
}
END_TEST

START_TEST(test_html_long_tag)
{
        /* A tag longer than HTML_TAG_MAX is still skipped whole. */
        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
        _cleanup_free_ char *in = NULL;
        size_t n = HTML_TAG_MAX * 4;
        HtmlText h;

        in = malloc(n + 16);
        ck_assert_ptr_nonnull(in);
        memcpy(in, "ab<x y=\"", 8);
        memset(in + 8, 'z', n);
        memcpy(in + 8 + n, "\">cd", 5);
        html_text_init(&h);
        ck_assert_int_eq(html_text_feed(&h, in, strlen(in), &out, NULL, NULL), 0);
        ck_assert_int_eq(html_text_finish(&h, &out, NULL, NULL), 0);
        ck_assert_str_eq(out.data, "abcd");
        ck_assert_uint_eq(h.insertions, 1);
}
END_TEST

START_TEST(test_html_tag_case)
{
        /* tags_upper / tags_lower: start and end tags by the first letter of the name,
         * however the input is cut; comments, declarations and '<' in text not at all;
         * comments: the comments, also inside a word */
        static const struct {
                const char *input;
                unsigned upper, lower, comments;
        } cases[] = {
                { "<HTML><BODY><FONT face=Arial>Hi</FONT></BODY></HTML>", 6, 0, 0 },
                { "<html><body><p>hi</p><br/></body></html>",              0, 7, 0 },
                { "<Table><tr><TD>x</TD></tr></Table>",                    4, 2, 0 },
                { "<!DOCTYPE html><!-- <B> -->a < b, 3<4 <3x>",             0, 0, 1 },
                { "vi<!-- x -->agra<!----><!--[if gte mso 9]><xml></xml><![endif]--><! -- no -->", 0, 0, 3 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
                        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
                        size_t n = strlen(cases[i].input);
                        HtmlText h;

                        html_text_init(&h);
                        for (size_t j = 0; j < n; j += chunk)
                                ck_assert_int_eq(html_text_feed(&h, cases[i].input + j, MIN(chunk, n - j), &out,
                                                                NULL, NULL), 0);
                        ck_assert_int_eq(html_text_finish(&h, &out, NULL, NULL), 0);
                        ck_assert_msg(h.tags_upper == cases[i].upper && h.tags_lower == cases[i].lower &&
                                      h.comments == cases[i].comments,
                                      "case %zu (chunk %zu): %u upper, %u lower, %u comments", i, chunk,
                                      h.tags_upper, h.tags_lower, h.comments);
                }
}
END_TEST

typedef struct HostCase {
        const char *url;
        const char *host;
        const char *rest;       /* what follows the authority, when there is a host */
} HostCase;

static const HostCase host_cases[] = {
        { "http://Example.COM",            "example.com",   "" },
        { "  https://a.b.c:80/x",          "a.b.c",         "/x" },
        { "ftp://u@files.example./",       "files.example", "/" },
        { "http://[2001:DB8::1]:8080/",    "[2001:db8::1]", "/" },
        { "HTTPS:example.org/x",           "example.org",   "/x" },
        { "//x.example?q",                 "x.example",     "?q" },
        { "http://x.example#frag",         "x.example",     "#frag" },
        { "http://x.example\\Path",       "x.example",     "\\Path" },
        { "javascript:alert(1)",           "",              NULL },
        { "mailto:someone@example.com",    "",              NULL },
        { "relative/path",                 "",              NULL },
        { "http://",                       "",              NULL },
        { "http://@/",                     "",              NULL },
        { "",                              "",              NULL },
};

START_TEST(test_url_host_table)
{
        for (size_t i = 0; i < ELEMENTSOF(host_cases); i++) {
                char buf[HTML_HOST_MAX + 1];
                size_t n = strlen(host_cases[i].url), rest = SIZE_MAX;
                size_t k = html_url_host(host_cases[i].url, n, buf, &rest);

                ck_assert_msg(k == strlen(host_cases[i].host) && (k == 0 || streq(buf, host_cases[i].host)),
                              "url '%s': host '%.*s'", host_cases[i].url, (int) k, buf);
                if (k > 0) {
                        ck_assert_uint_le(rest, n);
                        ck_assert_msg(streq(host_cases[i].url + rest, host_cases[i].rest), "url '%s': rest '%s'",
                                      host_cases[i].url, host_cases[i].url + rest);
                }
                ck_assert_uint_eq(html_url_host(host_cases[i].url, n, buf, NULL), k);
        }
}
END_TEST

START_TEST(test_entity_lookup)
{
        ck_assert_uint_eq(html_entity_lookup("amp", 3), '&');
        ck_assert_uint_eq(html_entity_lookup("nbsp", 4), 0xA0);
        ck_assert_uint_eq(html_entity_lookup("yuml", 4), 0xFF);
        ck_assert_uint_eq(html_entity_lookup("Yuml", 4), 0x178);
        ck_assert_uint_eq(html_entity_lookup("AElig", 5), 0xC6);
        ck_assert_uint_eq(html_entity_lookup("euro", 4), 0x20AC);
        ck_assert_uint_eq(html_entity_lookup("amp;", 3), '&');          /* length-bounded */
        ck_assert_uint_eq(html_entity_lookup("AMP", 3), 0);             /* case-sensitive */
        ck_assert_uint_eq(html_entity_lookup("am", 2), 0);
        ck_assert_uint_eq(html_entity_lookup("ampx", 4), 0);
        ck_assert_uint_eq(html_entity_lookup("", 0), 0);
}
END_TEST

static Suite* html_text_suite(void) {
        Suite *s = suite_create("html-text");
        TCase *tc;

        tc = tcase_create("reduce");
        tcase_add_test(tc, test_html_table);
        tcase_add_test(tc, test_html_unterminated);
        tcase_add_test(tc, test_html_url_rest);
        tcase_add_test(tc, test_html_comment_text);
        tcase_add_test(tc, test_html_url_callback_error);
        tcase_add_test(tc, test_html_long_tag);
        tcase_add_test(tc, test_html_tag_case);
        tcase_add_test(tc, test_html_markup);
        tcase_add_test(tc, test_html_markup_callback_error);
        suite_add_tcase(s, tc);

        tc = tcase_create("urls and entities");
        tcase_add_test(tc, test_url_host_table);
        tcase_add_test(tc, test_entity_lookup);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(html_text_suite);
