/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Check suite of the streaming MIME parser (services/shared/mime/mime.c): messages in,
 * event transcripts out; the same transcript however the input is chunked; every limit
 * reached. */

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "mime-decode.h"
#include "mime.h"
#include "string-util.h"

/* ---- transcripts ------------------------------------------------------------------- */

typedef struct Recorder {
        MimeBuffer out;
        bool merge_text;        /* consecutive TEXT events as one line */
        bool in_text;
        unsigned n_begin;
        unsigned max_depth;
        uint64_t text_bytes;
        bool chunks_ok;         /* every non-final TEXT chunk ended after whitespace */
        const MimeEvent *last;
        int fail_at;            /* fail on the n-th event (1-based), 0: never */
        unsigned n_events;
} Recorder;

static void rec_printf(Recorder *r, const char *fmt, ...) _printf_(2, 3);
static void rec_printf(Recorder *r, const char *fmt, ...) {
        char buf[8192];
        va_list ap;
        int l;

        va_start(ap, fmt);
        l = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        ck_assert_int_ge(l, 0);
        ck_assert_int_eq(mime_buffer_append(&r->out, buf, MIN((size_t) l, sizeof(buf) - 1)), 0);
}

static bool utf8_valid(const char *s, size_t n) {
        _cleanup_(mime_buffer_done) MimeBuffer b = MIME_BUFFER_NULL;
        MimeConverter v = { .kind = MIME_CHARSET_UTF8 };

        ck_assert_int_eq(mime_converter_feed(&v, s, n, true, &b), (ssize_t) n);
        return v.replaced == 0;
}

/* PART_END lines also give the longest raw body line (MimePart.line_max). */
static bool record_lines = false;

static int record(const MimeEvent *e, void *userdata) {
        Recorder *r = userdata;
        const MimePart *p = e->part;

        r->n_events++;
        if (r->fail_at > 0 && r->n_events == (unsigned) r->fail_at)
                return -ECANCELED;

        if (e->type != MIME_EVENT_TEXT && r->in_text) {
                rec_printf(r, "\n");
                r->in_text = false;
        }

        switch (e->type) {
        case MIME_EVENT_PART_BEGIN:
                r->n_begin++;
                r->max_depth = MAX(r->max_depth, p->depth);
                rec_printf(r, "B %u.%u %s cs=%s fn=%s disp=%d enc=%s%s%s%s%s\n", p->depth, p->index,
                           p->content_type, strna(p->charset), strna(p->filename), (int) p->disposition,
                           mime_encoding_to_string(p->encoding), p->is_multipart ? " multi" : "",
                           p->is_message ? " msg" : "", p->is_text ? " text" : "", p->is_html ? " html" : "");
                break;
        case MIME_EVENT_HEADER:
                ck_assert_uint_eq(strlen(e->data), e->size);
                ck_assert(utf8_valid(e->data, e->size));
                rec_printf(r, "H %s: %s\n", e->name, e->data);
                break;
        case MIME_EVENT_TEXT:
                ck_assert_uint_gt(e->size, 0);
                ck_assert(utf8_valid(e->data, e->size));
                r->text_bytes += e->size;
                if (r->merge_text && r->in_text)
                        rec_printf(r, "%.*s", (int) e->size, e->data);
                else {
                        if (r->in_text)
                                rec_printf(r, "\n");
                        rec_printf(r, "T %.*s", (int) e->size, e->data);
                        r->in_text = true;
                }
                /* Only the last chunk of a part may end inside a word (within the word
                 * limit): a chunk after one that did fails chunks_ok. PART_END clears last. */
                if (r->last)
                        r->chunks_ok = false;
                r->last = IN_SET(e->data[e->size - 1], ' ', '\t', '\n', '\r', '\f', '\v') ? NULL : e;
                break;
        case MIME_EVENT_URL:
                rec_printf(r, "U %.*s\n", (int) e->size, e->data);
                break;
        case MIME_EVENT_MARKUP:
                ck_assert(p->is_html);
                ck_assert_uint_eq(strlen(e->data), e->size);
                rec_printf(r, "M %s\n", e->data);
                break;
        case MIME_EVENT_COMMENT:
                ck_assert(p->is_html);
                ck_assert(utf8_valid(e->data, e->size));
                rec_printf(r, "C %.*s\n", (int) e->size, e->data);
                break;
        case MIME_EVENT_PART_END:
                r->last = NULL;
                rec_printf(r, "E %u ins=%u urls=%u def=0x%x", p->index, p->insertions, p->urls, p->defects);
                if (record_lines)
                        rec_printf(r, " line=%llu", (unsigned long long) p->line_max);
                rec_printf(r, "\n");
                break;
        default:
                ck_abort();
        }
        return 0;
}

/* Parse msg in chunks: chunk 0 = whole, SIZE_MAX = random sizes from seed. */
static char* transcript(const char *msg, size_t len, const MimeLimits *limits, size_t chunk, unsigned seed,
                        bool merge, unsigned *ret_defects, Recorder *ret_rec) {
        _cleanup_(mime_parser_freep) MimeParser *p = NULL;
        Recorder r = { .merge_text = merge, .chunks_ok = true };
        size_t i = 0;

        srand(seed);
        ck_assert_int_eq(mime_parser_new(limits, record, &r, &p), 0);
        while (i < len) {
                size_t k = chunk == 0 ? len - i : chunk == SIZE_MAX ? (size_t) (rand() % 200) : chunk;

                k = MIN(k, len - i);
                ck_assert_int_eq(mime_parser_feed(p, msg + i, k), 0);
                i += k;
        }
        ck_assert_int_eq(mime_parser_finish(p), 0);
        ck_assert_int_eq(mime_parser_feed(p, "x", 1), -ESTALE);
        if (r.in_text)
                rec_printf(&r, "\n");
        if (ret_defects)
                *ret_defects = mime_parser_defects(p);
        if (ret_rec) {
                *ret_rec = r;
                ret_rec->out = MIME_BUFFER_NULL;        /* the transcript is returned */
        }
        return r.out.data ? r.out.data : strdup("");
}

/* ---- messages ------------------------------------------------------------------------ */

/* multipart/alternative inside multipart/mixed, an attached message/rfc822, encoded-word
 * subjects in several charsets, a base64 iso-8859-1 body, an HTML body with obfuscation. */
static const char real_world[] =
        "Return-Path: <news@shop.example>\r\n"
        "From: =?iso-8859-1?q?J=F6rg_M=FCller?= <news@shop.example>\r\n"
        "To: you@example.org\r\n"
        "Subject: =?UTF-8?B?RXhjbHVzaXZlIG9mZmVyIOKCrA==?=\r\n"
        " =?UTF-8?Q?_f=C3=BCr_Sie?= =?koi8-r?b?8NLJ18XU?=\r\n"
        "Date: Mon, 3 Jun 2024 10:00:00 +0200\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed;\r\n"
        "\tboundary=\"----=_Part_1\"\r\n"
        "\r\n"
        "This is a multi-part message in MIME format.\r\n"
        "\r\n"
        "------=_Part_1\r\n"
        "Content-Type: multipart/alternative; boundary=alt-2\r\n"
        "\r\n"
        "--alt-2\r\n"
        "Content-Type: text/plain; charset=ISO-8859-1\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "R3LcP2UgYXVzIFr8cmljaCEgQ2Fm6SBjcuhtZSBicvts6WUu\r\n"
        "\r\n"
        "--alt-2\r\n"
        "Content-Type: text/html; charset=\"utf-8\"\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "<html><head><style>.x{color:red}</style><script>var a=3D'<b>';</script></head>=\r\n"
        "<body><p>Cheap V<font>I</font>AGRA &amp; ci<!-- -->alis</p>\r\n"
        "<div>Caf=C3=A9&nbsp;cr&egrave;me <a href=3D\"http://Click.Example.NET/r?id=3D1\">here=\r\n"
        "</a></div><img src=3D\"https://img.example.com/p.gif\"></body></html>\r\n"
        "--alt-2--\r\n"
        "\r\n"
        "------=_Part_1\r\n"
        "Content-Type: message/rfc822\r\n"
        "Content-Disposition: attachment;\r\n"
        " filename*0*=utf-8''Weiterleitung%20;\r\n"
        " filename*1=\"original.eml\"\r\n"
        "\r\n"
        "From: someone@example.net\r\n"
        "Subject: =?shift_jis?B?gqCCog==?=\r\n"
        "Content-Type: text/plain; charset=windows-1252\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Original \x93quoted\x94 text\r\n"
        "------=_Part_1--\r\n"
        "epilogue, ignored\r\n";

static const char real_world_transcript[] =
        "B 0.0 multipart/mixed cs=n/a fn=n/a disp=0 enc=7bit multi\n"
        "H Return-Path: <news@shop.example>\n"
        "H From: J\xc3\xb6rg M\xc3\xbcller <news@shop.example>\n"
        "H To: you@example.org\n"
        "H Subject: Exclusive offer \xe2\x82\xac f\xc3\xbcr Sie\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\n"
        "H Date: Mon, 3 Jun 2024 10:00:00 +0200\n"
        "H MIME-Version: 1.0\n"
        "H Content-Type: multipart/mixed;\tboundary=\"----=_Part_1\"\n"
        "B 1.1 multipart/alternative cs=n/a fn=n/a disp=0 enc=7bit multi\n"
        "H Content-Type: multipart/alternative; boundary=alt-2\n"
        "B 2.2 text/plain cs=iso-8859-1 fn=n/a disp=0 enc=base64 text\n"
        "H Content-Type: text/plain; charset=ISO-8859-1\n"
        "H Content-Transfer-Encoding: base64\n"
        "T Gr\xc3\x9c?e aus Z\xc3\xbcrich! Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e.\n"
        "E 2 ins=0 urls=0 def=0x0\n"
        "B 2.3 text/html cs=utf-8 fn=n/a disp=0 enc=quoted-printable text html\n"
        "H Content-Type: text/html; charset=\"utf-8\"\n"
        "H Content-Transfer-Encoding: quoted-printable\n"
        "U click.example.net\n"
        "U img.example.com\n"
        "T Cheap VIAGRA & cialis Caf\xc3\xa9 cr\xc3\xa8me here \n"
        "E 3 ins=3 urls=2 def=0x0\n"
        "E 1 ins=0 urls=0 def=0x0\n"
        "B 1.4 message/rfc822 cs=n/a fn=Weiterleitung original.eml disp=2 enc=7bit msg\n"
        "H Content-Type: message/rfc822\n"
        "H Content-Disposition: attachment; filename*0*=utf-8''Weiterleitung%20; filename*1=\"original.eml\"\n"
        "B 2.5 text/plain cs=windows-1252 fn=n/a disp=0 enc=8bit text\n"
        "H From: someone@example.net\n"
        "H Subject: \xe3\x81\x82\xe3\x81\x84\n"
        "H Content-Type: text/plain; charset=windows-1252\n"
        "H Content-Transfer-Encoding: 8bit\n"
        "T Original \xe2\x80\x9cquoted\xe2\x80\x9d text\n"
        "E 5 ins=0 urls=0 def=0x0\n"
        "E 4 ins=0 urls=0 def=0x0\n"
        "E 0 ins=0 urls=0 def=0x0\n";

START_TEST(test_real_world)
{
        _cleanup_free_ char *t = NULL;
        unsigned defects;

        t = transcript(real_world, sizeof(real_world) - 1, NULL, 0, 0, true, &defects, NULL);
        ck_assert_msg(streq(t, real_world_transcript), "got:\n%s", t);
        ck_assert_uint_eq(defects, 0);
}
END_TEST

typedef struct MessageCase {
        const char *name;
        const char *input;
        const char *transcript;
        unsigned defects;
} MessageCase;

static const MessageCase message_cases[] = {
        { "LF only, no MIME",
          "Subject: hi\nFrom: a@b\n\nline one\nline two\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Subject: hi\nH From: a@b\n"
          "T line one\nline two\nE 0 ins=0 urls=0 def=0x0\n", 0 },
        { "no body",
          "Subject: x\r\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Subject: x\nE 0 ins=0 urls=0 def=0x0\n", 0 },
        { "mbox From line skipped",
          "From sender@example Mon Jun  3 10:00:00 2024\nSubject: s\n\nb\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Subject: s\nT b\nE 0 ins=0 urls=0 def=0x0\n", 0 },
        { "folded header unfolded",
          "Subject: a\r\n  b\r\n\tc\r\n\r\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Subject: a  b\tc\nE 0 ins=0 urls=0 def=0x0\n", 0 },
        { "header syntax error starts the body",
          "Subject: s\r\nthis is not a header\r\nmore\r\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Subject: s\nT this is not a header\nmore\n"
          "E 0 ins=0 urls=0 def=0x1\n", MIME_DEFECT_HEADER_SYNTAX },
        { "missing close-delimiter",
          "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n",
          "B 0.0 multipart/mixed cs=n/a fn=n/a disp=0 enc=7bit multi\nH Content-Type: multipart/mixed; boundary=b\n"
          "B 1.1 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nT one\nE 1 ins=0 urls=0 def=0x0\n"
          "B 1.2 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nT two\nE 2 ins=0 urls=0 def=0x0\n"
          "E 0 ins=0 urls=0 def=0x20\n", MIME_DEFECT_MISSING_CLOSE },
        { "outer boundary closes inner multipart",
          "Content-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: multipart/alternative; boundary=in\n\n"
          "--in\n\ninner\n--out\n\nsecond\n--out--\n",
          "B 0.0 multipart/mixed cs=n/a fn=n/a disp=0 enc=7bit multi\nH Content-Type: multipart/mixed; boundary=out\n"
          "B 1.1 multipart/alternative cs=n/a fn=n/a disp=0 enc=7bit multi\n"
          "H Content-Type: multipart/alternative; boundary=in\n"
          "B 2.2 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nT inner\nE 2 ins=0 urls=0 def=0x0\n"
          "E 1 ins=0 urls=0 def=0x20\n"
          "B 1.3 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nT second\nE 3 ins=0 urls=0 def=0x0\n"
          "E 0 ins=0 urls=0 def=0x0\n", MIME_DEFECT_MISSING_CLOSE },
        { "preamble, epilogue, padding, near-miss boundary",
          "Content-Type: multipart/mixed; boundary=\"b\"\n\npre\n--b  \n\nx\n--bb\ny\n--b--\t\npost\n--b\nlate\n",
          "B 0.0 multipart/mixed cs=n/a fn=n/a disp=0 enc=7bit multi\nH Content-Type: multipart/mixed; boundary=\"b\"\n"
          "B 1.1 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nT x\n--bb\ny\nE 1 ins=0 urls=0 def=0x0\n"
          "E 0 ins=0 urls=0 def=0x0\n", 0 },
        { "multipart without boundary read as text",
          "Content-Type: multipart/mixed\n\n--x\nbody\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Content-Type: multipart/mixed\nT --x\nbody\n"
          "E 0 ins=0 urls=0 def=0x10\n", MIME_DEFECT_NO_BOUNDARY },
        { "multipart without any delimiter",
          "Content-Type: multipart/mixed; boundary=z\n\njust text\n",
          "B 0.0 multipart/mixed cs=n/a fn=n/a disp=0 enc=7bit multi\nH Content-Type: multipart/mixed; boundary=z\n"
          "E 0 ins=0 urls=0 def=0x60\n", MIME_DEFECT_NO_PARTS | MIME_DEFECT_MISSING_CLOSE },
        { "part without headers, bad content type, unknown encoding",
          "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: nonsense\nContent-Transfer-Encoding: x-uue\n\n"
          "t\n--b--\n",
          "B 0.0 multipart/mixed cs=n/a fn=n/a disp=0 enc=7bit multi\nH Content-Type: multipart/mixed; boundary=b\n"
          "B 1.1 text/plain cs=n/a fn=n/a disp=0 enc=8bit text\nH Content-Type: nonsense\n"
          "H Content-Transfer-Encoding: x-uue\nT t\nE 1 ins=0 urls=0 def=0x88\nE 0 ins=0 urls=0 def=0x0\n",
          MIME_DEFECT_CONTENT_TYPE | MIME_DEFECT_ENCODING },
        { "base64 with junk and no padding",
          "Content-Transfer-Encoding: base64\n\naGVs!bG8gd2\n9ybGQ\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=base64 text\nH Content-Transfer-Encoding: base64\n"
          "T hello world\nE 0 ins=0 urls=0 def=0x100\n", MIME_DEFECT_BASE64 },
        { "quoted-printable soft breaks and bad escapes",
          "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: Quoted-Printable\n\n"
          "soft=\nly =C3=A9t=C3=A9   \n50=% off=\n",
          "B 0.0 text/plain cs=utf-8 fn=n/a disp=0 enc=quoted-printable text\n"
          "H Content-Type: text/plain; charset=utf-8\nH Content-Transfer-Encoding: Quoted-Printable\n"
          "T softly \xc3\xa9t\xc3\xa9\n50=% off\nE 0 ins=0 urls=0 def=0x200\n", MIME_DEFECT_QP },
        { "unknown charset falls back",
          "Content-Type: text/plain; charset=x-martian\n\nna\xefve\n",
          "B 0.0 text/plain cs=x-martian fn=n/a disp=0 enc=7bit text\nH Content-Type: text/plain; charset=x-martian\n"
          "T na\xc3\xafve\nE 0 ins=0 urls=0 def=0x400\n", MIME_DEFECT_CHARSET },
        { "digest parts default to message/rfc822",
          "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody\n--d--\n",
          "B 0.0 multipart/digest cs=n/a fn=n/a disp=0 enc=7bit multi\nH Content-Type: multipart/digest; boundary=d\n"
          "B 1.1 message/rfc822 cs=n/a fn=n/a disp=0 enc=7bit msg\n"
          "B 2.2 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Subject: one\nT body\nE 2 ins=0 urls=0 def=0x0\n"
          "E 1 ins=0 urls=0 def=0x0\nE 0 ins=0 urls=0 def=0x0\n", 0 },
        { "attachment not decoded, filename from name",
          "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/pdf; name=\"=?utf-8?q?R=C3=A9sum=C3=A9.pdf?=\"\n"
          "Content-Disposition: ATTACHMENT\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n",
          "B 0.0 multipart/mixed cs=n/a fn=n/a disp=0 enc=7bit multi\nH Content-Type: multipart/mixed; boundary=b\n"
          "B 1.1 application/pdf cs=n/a fn=R\xc3\xa9sum\xc3\xa9.pdf disp=2 enc=base64\n"
          "H Content-Type: application/pdf; name=\"R\xc3\xa9sum\xc3\xa9.pdf\"\nH Content-Disposition: ATTACHMENT\n"
          "H Content-Transfer-Encoding: base64\nE 1 ins=0 urls=0 def=0x0\nE 0 ins=0 urls=0 def=0x0\n", 0 },
        { "encoded message/rfc822 left alone",
          "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoK\n",
          "B 0.0 message/rfc822 cs=n/a fn=n/a disp=0 enc=base64\nH Content-Type: message/rfc822\n"
          "H Content-Transfer-Encoding: base64\nE 0 ins=0 urls=0 def=0x80\n", MIME_DEFECT_ENCODING },
        { "raw 8-bit header and bad encoded word",
          "Subject: Gr\xfc\xdf" "e =?utf-8?q?a b?=\n\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Subject: Gr\xc3\xbc\xc3\x9f" "e =?utf-8?q?a b?=\n"
          "E 0 ins=0 urls=0 def=0x1800\n", MIME_DEFECT_8BIT_HEADER | MIME_DEFECT_ENCODED_WORD },
        { "continuation before any field",
          " x\nSubject: s\n\n",
          "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Subject: s\nE 0 ins=0 urls=0 def=0x1\n",
          MIME_DEFECT_HEADER_SYNTAX },
        { "boundary inside a part's headers ends it",
          "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n--b\n\nz\n--b--\n",
          "B 0.0 multipart/mixed cs=n/a fn=n/a disp=0 enc=7bit multi\nH Content-Type: multipart/mixed; boundary=b\n"
          "B 1.1 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nH Content-Type: text/plain\nE 1 ins=0 urls=0 def=0x0\n"
          "B 1.2 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nT z\nE 2 ins=0 urls=0 def=0x0\n"
          "E 0 ins=0 urls=0 def=0x0\n", 0 },
        { "html unterminated comment",
          "Content-Type: text/html\n\n<p>see<!-- all of this is hidden\n",
          "B 0.0 text/html cs=n/a fn=n/a disp=0 enc=7bit text html\nH Content-Type: text/html\nT see\n"
          "E 0 ins=0 urls=0 def=0x4000\n", MIME_DEFECT_HTML },
};

START_TEST(test_message_table)
{
        for (size_t i = 0; i < ELEMENTSOF(message_cases); i++) {
                const MessageCase *c = &message_cases[i];
                _cleanup_free_ char *t = NULL;
                unsigned defects;

                t = transcript(c->input, strlen(c->input), NULL, 0, 0, true, &defects, NULL);
                ck_assert_msg(streq(t, c->transcript), "case '%s': got:\n%s", c->name, t);
                ck_assert_msg(defects == c->defects, "case '%s': defects 0x%x", c->name, defects);
        }
}
END_TEST

/* ---- chunking ------------------------------------------------------------------------ */

static char* big_message(size_t *ret_len) {
        _cleanup_(mime_buffer_done) MimeBuffer m = MIME_BUFFER_NULL;
        static const char *const words[] = { "offer", "caf\xc3\xa9", "\xe2\x82\xac\x31\x30\x30", "money", "v<b></b>iagra",
                                             "&amp;", "<a href=\"http://x.example/\">click</a>", "<p>", "&#233;t\xc3\xa9" };
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        unsigned seed = 7;

#define APPEND(s) ck_assert_int_eq(mime_buffer_append(&m, (s), strlen(s)), 0)
        /* A big HTML part, a base64 koi8-r part and the real-world message attached. */
        APPEND("Subject: big\nContent-Type: multipart/mixed; boundary=BIG\n\n--BIG\n"
               "Content-Type: text/html; charset=utf-8\n\n");
        for (unsigned i = 0; i < 6000; i++) {
                const char *w;

                seed = seed * 1103515245 + 12345;
                w = words[seed % ELEMENTSOF(words)];
                APPEND(w);
                APPEND(i % 13 == 12 ? "\n" : " ");
        }
        APPEND("\n--BIG\nContent-Transfer-Encoding: base64\nContent-Type: text/plain; charset=koi8-r\n\n");
        for (unsigned i = 0; i < 400; i++) {
                char line[78];

                for (unsigned j = 0; j < 76; j++) {
                        seed = seed * 1103515245 + 12345;
                        line[j] = b64[seed >> 16 & 63];
                }
                line[76] = '\n';
                line[77] = '\0';
                APPEND(line);
        }
        APPEND("--BIG\nContent-Type: message/rfc822\n\n");
        APPEND(real_world);
        APPEND("--BIG--\n");
#undef APPEND

        *ret_len = m.size;
        return TAKE_PTR(m.data);
}

static void check_chunking(const char *msg, size_t len, const MimeLimits *limits) {
        _cleanup_free_ char *whole = NULL;
        unsigned dw, d;

        whole = transcript(msg, len, limits, 0, 0, false, &dw, NULL);
        ck_assert_uint_gt(strlen(whole), 0);

        for (unsigned mode = 0; mode < 6; mode++) {
                _cleanup_free_ char *t = NULL;
                size_t chunk = mode == 0 ? 1 : mode == 1 ? 2 : mode == 2 ? 4093 : SIZE_MAX;

                t = transcript(msg, len, limits, chunk, mode, false, &d, NULL);
                ck_assert_msg(streq(t, whole), "chunking mode %u differs", mode);
                ck_assert_uint_eq(d, dw);
        }
}

START_TEST(test_chunking_invariance)
{
        _cleanup_free_ char *big = NULL;
        MimeLimits small = { .max_line = 100 };
        size_t len;

        check_chunking(real_world, sizeof(real_world) - 1, NULL);
        check_chunking(real_world, sizeof(real_world) - 1, &small);
        for (size_t i = 0; i < ELEMENTSOF(message_cases); i++)
                check_chunking(message_cases[i].input, strlen(message_cases[i].input), NULL);

        big = big_message(&len);
        check_chunking(big, len, NULL);
        check_chunking(big, len, &small);
}
END_TEST

START_TEST(test_text_chunks)
{
        _cleanup_free_ char *big = NULL, *t = NULL;
        Recorder r;
        size_t len;

        big = big_message(&len);
        t = transcript(big, len, NULL, SIZE_MAX, 3, false, NULL, &r);
        ck_assert(r.chunks_ok);
        ck_assert_uint_gt(r.text_bytes, 3 * MIME_TEXT_CHUNK);
        /* several chunks for the big HTML part */
        ck_assert_ptr_nonnull(strstr(strstr(t, "B 1.1 text/html"), "\nT "));
        mime_buffer_done(&r.out);
}
END_TEST

START_TEST(test_long_word_cut)
{
        /* A "word" far over MIME_TEXT_WORD_MAX is cut, at a character boundary. */
        _cleanup_(mime_buffer_done) MimeBuffer m = MIME_BUFFER_NULL;
        _cleanup_free_ char *t = NULL;
        Recorder r;

        ck_assert_int_eq(mime_buffer_append(&m, "Content-Type: text/plain; charset=utf-8\n\n", 41), 0);
        for (unsigned i = 0; i < 20000; i++)
                ck_assert_int_eq(mime_buffer_append(&m, "\xc3\xa9", 2), 0);
        t = transcript(m.data, m.size, NULL, 1000, 0, false, NULL, &r);
        ck_assert_uint_eq(r.text_bytes, 40000);         /* utf8_valid() checked every chunk */
        mime_buffer_done(&r.out);
}
END_TEST

/* ---- limits ------------------------------------------------------------------------- */

START_TEST(test_depth_limit)
{
        _cleanup_(mime_buffer_done) MimeBuffer m = MIME_BUFFER_NULL;
        _cleanup_free_ char *t = NULL;
        MimeLimits limits = { .max_depth = 5 };
        char line[128];
        unsigned defects;
        Recorder r;

        for (unsigned i = 0; i < 40; i++) {
                int l = snprintf(line, sizeof(line), "Content-Type: multipart/mixed; boundary=b%u\n\n--b%u\n", i, i);
                ck_assert_int_eq(mime_buffer_append(&m, line, (size_t) l), 0);
        }
        ck_assert_int_eq(mime_buffer_append(&m, "\ndeep text\n--b2\n\nshallow\n", 25), 0);
        t = transcript(m.data, m.size, &limits, 0, 0, true, &defects, &r);
        ck_assert(defects & MIME_DEFECT_DEPTH_LIMIT);
        ck_assert_uint_eq(r.max_depth, 5);
        ck_assert_ptr_null(strstr(t, "deep text"));
        ck_assert_ptr_nonnull(strstr(t, "B 3.6 text/plain"));       /* the b2 part after the closed ones */
        ck_assert_ptr_nonnull(strstr(t, "T shallow"));
        mime_buffer_done(&r.out);
}
END_TEST

START_TEST(test_part_limit)
{
        _cleanup_(mime_buffer_done) MimeBuffer m = MIME_BUFFER_NULL;
        _cleanup_free_ char *t = NULL;
        MimeLimits limits = { .max_parts = 10 };
        unsigned defects;
        Recorder r;

        ck_assert_int_eq(mime_buffer_append(&m, "Content-Type: multipart/mixed; boundary=p\n\n", 43), 0);
        for (unsigned i = 0; i < 2000; i++)
                ck_assert_int_eq(mime_buffer_append(&m, "--p\n\nx\n", 7), 0);
        t = transcript(m.data, m.size, &limits, 0, 0, true, &defects, &r);
        ck_assert(defects & MIME_DEFECT_PART_LIMIT);
        ck_assert_uint_eq(r.n_begin, 10);
        mime_buffer_done(&r.out);

        /* The default limit holds as well. */
        free(t);
        t = transcript(m.data, m.size, NULL, 0, 0, true, &defects, &r);
        ck_assert(defects & MIME_DEFECT_PART_LIMIT);
        ck_assert_uint_eq(r.n_begin, 1000);
        mime_buffer_done(&r.out);
}
END_TEST

START_TEST(test_header_limit)
{
        _cleanup_(mime_buffer_done) MimeBuffer m = MIME_BUFFER_NULL;
        _cleanup_free_ char *t = NULL;
        MimeLimits limits = { .max_header_bytes = 1000 };
        unsigned defects;
        Recorder r;

        ck_assert_int_eq(mime_buffer_append(&m, "Subject: first\n", 15), 0);
        for (unsigned i = 0; i < 200; i++)
                ck_assert_int_eq(mime_buffer_append(&m, "X-Filler: 0123456789\n", 21), 0);
        ck_assert_int_eq(mime_buffer_append(&m, "X-Last: dropped\n\nbody survives\n", 31), 0);
        t = transcript(m.data, m.size, &limits, 0, 0, true, &defects, &r);
        ck_assert(defects & MIME_DEFECT_HEADER_LIMIT);
        ck_assert_ptr_nonnull(strstr(t, "H Subject: first"));
        ck_assert_ptr_null(strstr(t, "X-Last"));
        ck_assert_ptr_nonnull(strstr(t, "T body survives"));
        mime_buffer_done(&r.out);
}
END_TEST

START_TEST(test_text_limit)
{
        _cleanup_free_ char *big = NULL, *t = NULL;
        MimeLimits limits = { .max_text_bytes = 5000 };
        unsigned defects;
        Recorder r;
        size_t len;

        big = big_message(&len);
        t = transcript(big, len, &limits, 0, 0, true, &defects, &r);
        ck_assert(defects & MIME_DEFECT_TEXT_LIMIT);
        ck_assert_uint_le(r.text_bytes, 5000);
        ck_assert_uint_gt(r.text_bytes, 4000);
        /* structure is still reported after the limit */
        ck_assert_ptr_nonnull(strstr(t, "cs=koi8-r"));
        ck_assert_ptr_nonnull(strstr(t, "B 1.2 text/plain cs=koi8-r fn=n/a disp=0 enc=base64\n"));
        mime_buffer_done(&r.out);
}
END_TEST

START_TEST(test_line_limit)
{
        _cleanup_(mime_buffer_done) MimeBuffer m = MIME_BUFFER_NULL;
        _cleanup_free_ char *t = NULL;
        MimeLimits limits = { .max_line = 100 };
        unsigned defects;
        Recorder r;

        ck_assert_int_eq(mime_buffer_append(&m, "Content-Type: text/plain\n\n", 26), 0);
        for (unsigned i = 0; i < 100; i++)
                ck_assert_int_eq(mime_buffer_append(&m, "word ", 5), 0);
        ck_assert_int_eq(mime_buffer_append(&m, "\n", 1), 0);
        t = transcript(m.data, m.size, &limits, 0, 0, true, &defects, &r);
        ck_assert(defects & MIME_DEFECT_LINE_LIMIT);
        ck_assert_uint_eq(r.text_bytes, 500);   /* no text lost, the final line end belongs to no delimiter */
        mime_buffer_done(&r.out);
}
END_TEST

START_TEST(test_raw_line_max)
{
        /* The longest body line as sent, per part: before transfer decoding, without the
         * line end (LF or CRLF), summed over the pieces of a line cut at the line limit,
         * and the same however the input is chunked. A container's own lines (preamble,
         * delimiters) are not its body's. */
        static const char msg[] =
                "Content-Type: multipart/mixed; boundary=\"b\"\r\n"
                "\r\n"
                "a preamble line that is longer than any line of the parts below, by far\r\n"
                "--b\r\n"
                "Content-Type: text/plain\r\n"
                "\r\n"
                "short\r\n"
                "a line of forty bytes: 0123456789abcdefg\r\n"
                "--b\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Content-Transfer-Encoding: base64\r\n"
                "\r\n"
                "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n"
                "QUFBQUFBQUFBQUFBQUFB\r\n"
                "--b--\r\n";
        _cleanup_(mime_buffer_done) MimeBuffer m = MIME_BUFFER_NULL;
        _cleanup_free_ char *t = NULL, *u = NULL;
        MimeLimits limits = { .max_line = 100 };

        record_lines = true;
        t = transcript(msg, sizeof(msg) - 1, NULL, 0, 0, true, NULL, NULL);
        ck_assert_ptr_nonnull(strstr(t, "E 1 ins=0 urls=0 def=0x0 line=40\n"));
        ck_assert_ptr_nonnull(strstr(t, "E 2 ins=0 urls=0 def=0x0 line=76\n"));
        ck_assert_ptr_nonnull(strstr(t, "E 0 ins=0 urls=0 def=0x0 line=0\n"));
        check_chunking(msg, sizeof(msg) - 1, NULL);

        /* a line of 500 bytes, cut into pieces of at most 100 */
        ck_assert_int_eq(mime_buffer_append(&m, "Content-Type: text/plain\n\nfirst\n", 32), 0);
        for (unsigned i = 0; i < 100; i++)
                ck_assert_int_eq(mime_buffer_append(&m, "word ", 5), 0);
        ck_assert_int_eq(mime_buffer_append(&m, "\nlast\n", 6), 0);
        u = transcript(m.data, m.size, &limits, 0, 0, true, NULL, NULL);
        ck_assert_ptr_nonnull(strstr(u, " line=500\n"));
        check_chunking(m.data, m.size, &limits);
        check_chunking(real_world, sizeof(real_world) - 1, NULL);
        record_lines = false;
}
END_TEST

/* ---- API ---------------------------------------------------------------------------- */

START_TEST(test_callback_error)
{
        for (int at = 1; at <= 12; at++) {
                _cleanup_(mime_parser_freep) MimeParser *p = NULL;
                Recorder r = { .fail_at = at };
                int k;

                ck_assert_int_eq(mime_parser_new(NULL, record, &r, &p), 0);
                k = mime_parser_feed(p, real_world, sizeof(real_world) - 1);
                if (k == 0)
                        k = mime_parser_finish(p);
                ck_assert_int_eq(k, -ECANCELED);
                ck_assert_uint_eq(r.n_events, (unsigned) at);
                /* sticky */
                ck_assert_int_eq(mime_parser_feed(p, "x\n", 2), -ECANCELED);
                ck_assert_int_eq(mime_parser_finish(p), -ECANCELED);
                mime_buffer_done(&r.out);
        }
}
END_TEST

START_TEST(test_no_callback)
{
        _cleanup_(mime_parser_freep) MimeParser *p = NULL;

        ck_assert_int_eq(mime_parser_new(NULL, NULL, NULL, &p), 0);
        ck_assert_int_eq(mime_parser_feed(p, real_world, sizeof(real_world) - 1), 0);
        ck_assert_int_eq(mime_parser_finish(p), 0);
        ck_assert_int_eq(mime_parser_finish(p), -ESTALE);
        ck_assert_uint_eq(mime_parser_defects(p), 0);
        ck_assert_ptr_null(mime_parser_free(NULL));
}
END_TEST

START_TEST(test_markup_events)
{
        /* MARKUP events come only when asked for, only from HTML parts, inside their part,
         * after the transfer encoding is undone; text/plain that looks like HTML gives none. */
        static const char msg[] =
                "Content-Type: multipart/alternative; boundary=b\n\n"
                "--b\nContent-Type: text/plain\n\n<font size=7>plain</font>\n"
                "--b\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n"
                "<FONT face=3D\"Arial\" size=3D+2>Big</FONT><br>\n"
                "--b--\n";
        static const char expect[] =
                "B 0.0 multipart/alternative cs=n/a fn=n/a disp=0 enc=7bit multi\n"
                "H Content-Type: multipart/alternative; boundary=b\n"
                "B 1.1 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\n"
                "H Content-Type: text/plain\n"
                "T <font size=7>plain</font>\n"
                "E 1 ins=0 urls=0 def=0x0\n"
                "B 1.2 text/html cs=n/a fn=n/a disp=0 enc=quoted-printable text html\n"
                "H Content-Type: text/html\n"
                "H Content-Transfer-Encoding: quoted-printable\n"
                "M font\nM br\n"
                "T Big \n"
                "E 2 ins=0 urls=0 def=0x0\n"
                "E 0 ins=0 urls=0 def=0x0\n";

        for (int on = 0; on <= 1; on++)
                for (size_t chunk = 1; chunk <= sizeof(msg); chunk += sizeof(msg) - 1) {
                        _cleanup_(mime_parser_freep) MimeParser *p = NULL;
                        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
                        Recorder r = { .merge_text = true, .chunks_ok = true };

                        ck_assert_int_eq(mime_parser_new(NULL, record, &r, &p), 0);
                        mime_parser_set_markup(p, on);
                        for (size_t i = 0; i < sizeof(msg) - 1; i += chunk)
                                ck_assert_int_eq(mime_parser_feed(p, msg + i, MIN(chunk, sizeof(msg) - 1 - i)), 0);
                        ck_assert_int_eq(mime_parser_finish(p), 0);
                        ck_assert_int_eq(mime_buffer_append(&r.out, "", 1), 0);
                        out = r.out;
                        if (on)
                                ck_assert_msg(streq(out.data, expect), "chunk %zu:\n%s", chunk, out.data);
                        else
                                ck_assert_msg(!strstr(out.data, "\nM "), "markup without asking:\n%s", out.data);
                }
}
END_TEST

START_TEST(test_comment_events)
{
        /* COMMENT events only when asked for, with the comment's text, from HTML parts
         * only, whatever the chunking; an unterminated comment gives none */
        static const char msg[] =
                "Content-Type: multipart/alternative; boundary=b\n\n"
                "--b\nContent-Type: text/plain\n\nplain <!-- not html -->\n"
                "--b\nContent-Type: text/html\n\n"
                "a<!-- one two -->b<!---->c<!--[if gte mso 9]><xml>x</xml><![endif]-->d<!-- open\n"
                "--b--\n";

        for (int on = 0; on <= 1; on++)
                for (size_t chunk = 1; chunk < sizeof(msg); chunk = chunk * 3 + 1) {
                        _cleanup_(mime_parser_freep) MimeParser *p = NULL;
                        Recorder r = { .merge_text = true, .chunks_ok = true };

                        ck_assert_int_eq(mime_parser_new(NULL, record, &r, &p), 0);
                        mime_parser_set_comments(p, on);
                        for (size_t i = 0; i < sizeof(msg) - 1; i += chunk)
                                ck_assert_int_eq(mime_parser_feed(p, msg + i, MIN(chunk, sizeof(msg) - 1 - i)), 0);
                        ck_assert_int_eq(mime_parser_finish(p), 0);
                        ck_assert_int_eq(mime_buffer_append(&r.out, "", 1), 0);
                        if (on)
                                ck_assert_msg(strstr(r.out.data, "\nC  one two \nC \nC [if gte mso 9]><xml>x</xml><![endif]\nT ") &&
                                              !strstr(r.out.data, "C  not html") && !strstr(r.out.data, "C  open"),
                                              "chunk %zu:\n%s", chunk, r.out.data);
                        else
                                ck_assert_msg(!strstr(r.out.data, "\nC "), "comments without asking:\n%s", r.out.data);
                        mime_buffer_done(&r.out);
                }
        ck_assert_str_eq(mime_event_type_to_string(MIME_EVENT_COMMENT), "comment");
}
END_TEST

START_TEST(test_empty_message)
{
        _cleanup_free_ char *t = NULL;
        unsigned defects;

        t = transcript("", 0, NULL, 0, 0, true, &defects, NULL);
        ck_assert_str_eq(t, "B 0.0 text/plain cs=n/a fn=n/a disp=0 enc=7bit text\nE 0 ins=0 urls=0 def=0x0\n");
        ck_assert_uint_eq(defects, 0);
}
END_TEST

START_TEST(test_strings)
{
        ck_assert_str_eq(mime_event_type_to_string(MIME_EVENT_URL), "url");
        ck_assert_str_eq(mime_event_type_to_string(MIME_EVENT_MARKUP), "markup");
        ck_assert_ptr_null(mime_event_type_to_string(_MIME_EVENT_TYPE_MAX));
        ck_assert_str_eq(mime_encoding_to_string(MIME_ENCODING_QUOTED_PRINTABLE), "quoted-printable");
        ck_assert_ptr_null(mime_encoding_to_string(_MIME_ENCODING_INVALID));
}
END_TEST

static Suite* mime_suite(void) {
        Suite *s = suite_create("mime");
        TCase *tc;

        tc = tcase_create("messages");
        tcase_add_test(tc, test_real_world);
        tcase_add_test(tc, test_message_table);
        tcase_add_test(tc, test_empty_message);
        tcase_add_test(tc, test_comment_events);
        tcase_add_test(tc, test_markup_events);
        suite_add_tcase(s, tc);

        tc = tcase_create("streaming");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_chunking_invariance);
        tcase_add_test(tc, test_text_chunks);
        tcase_add_test(tc, test_long_word_cut);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_depth_limit);
        tcase_add_test(tc, test_part_limit);
        tcase_add_test(tc, test_header_limit);
        tcase_add_test(tc, test_text_limit);
        tcase_add_test(tc, test_line_limit);
        tcase_add_test(tc, test_raw_line_max);
        suite_add_tcase(s, tc);

        tc = tcase_create("api");
        tcase_add_test(tc, test_callback_error);
        tcase_add_test(tc, test_no_callback);
        tcase_add_test(tc, test_strings);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(mime_suite);
