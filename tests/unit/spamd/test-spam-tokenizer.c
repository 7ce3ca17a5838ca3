/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "check-main.h"
#include "cleanup.h"
#include "spam-tokenizer.h"
#include "string-util.h"

static const SpamTokenKey key = { .bytes = "unit-test-key-01" };

static void tokenize(const char *msg, const char *client_ip, bool bigrams, SpamTokens *ret) {
        SpamTokenizerOptions opts = {
                .key = &key,
                .client_ip = client_ip,
                .bigrams = bigrams,
                .markup = true,
                .keep_text = true,
        };

        *ret = (SpamTokens) SPAM_TOKENS_NULL;
        ck_assert_int_eq(spam_tokenize(msg, strlen(msg), &opts, ret), 0);
}

/* The hash of a bigram token from its printable form "b:W1 D W2". */
static uint64_t bigram_hash(const char *token) {
        char w1[64], w2[64];
        unsigned d;

        ck_assert_int_eq(sscanf(token, "b:%63s %u %63s", w1, &d, w2), 3);
        return spam_tokenizer_bigram_hash(spam_token_hash(&key, "w:", w1, strlen(w1)), d,
                                          spam_token_hash(&key, "w:", w2, strlen(w2)));
}

/* Has the set the token, by its printable form and by its hash? */
static bool has(const SpamTokens *t, const char *token) {
        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->text[i], token) == 0) {
                        const char *colon = strrchr(token, ':');
                        char prefix[128];
                        size_t pl;

                        if (strncmp(token, "b:", 2) == 0) {
                                ck_assert_msg(t->hashes[i] == bigram_hash(token), "hash of %s", token);
                                return true;
                        }
                        /* the hash is of the prefix (up to the last ':' before the text) and
                         * the text; for ip: and u: tokens the text may hold ':' itself */
                        if (strncmp(token, "ip:", 3) == 0 || strncmp(token, "u:", 2) == 0)
                                colon = strchr(token, ':');
                        /* the words of a link's path: u:w:WORD */
                        if (strncmp(token, "u:w:", 4) == 0)
                                colon = token + 3;
                        /* and the shapes of header fields (h:NAME:shape:, h:NAME:fmt:,
                         * h:date:zone:): a time ("99:99:99") or a group ("a:;") */
                        if (strncmp(token, "h:", 2) == 0) {
                                const char *kind = strchr(token + 2, ':');

                                if (kind && (strncmp(kind, ":shape:", 7) == 0 || strncmp(kind, ":fmt:", 5) == 0 ||
                                             strncmp(kind, ":zone:", 6) == 0))
                                        colon = strchr(kind + 1, ':');
                        }
                        pl = (size_t) (colon + 1 - token);
                        memcpy(prefix, token, pl);
                        prefix[pl] = '\0';
                        ck_assert_msg(t->hashes[i] == spam_token_hash(&key, prefix, colon + 1, strlen(colon + 1)),
                                      "hash of %s", token);
                        return true;
                }
        return false;
}

static void dump(const SpamTokens *t) {
        for (size_t i = 0; i < t->n; i++)
                fprintf(stderr, "  %s\n", t->text[i]);
}

typedef struct Case {
        const char *name;
        const char *msg;
        const char *client_ip;
        const char *present[16];
        const char *absent[16];
} Case;

static const Case cases[] = {
        {
                "header prefixes",
                "From: Bob Smith <bob@mail.example.org>\n"
                "Subject: Cheap PILLS today\n"
                "X-Spam-Status: Yes, score=20\n"
                "Date: Tue, 31 Jul 2001 21:36:20 +0000\n"
                "Received: from relay.example.net (relay.example.net [192.0.2.7]) by mx.example.com id 4711\n"
                "\n"
                "hello there\n",
                NULL,
                { "h:subject:cheap", "h:subject:pills", "h:subject:today", "h:from:bob", "h:from:smith",
                  "h:from:mail.example.org", "hf:subject", "hf:from", "h:received:relay.example.net",
                  "h:received:192.0.2.7", "w:hello", "w:there", "f:type:text/plain" },
                { "h:x-spam-status:yes", "hf:x-spam-status", "h:date:tue", "h:received:4711", "h:received:from",
                  "w:cheap", "h:subject:Cheap", "h:received:mx.example.com" },
        },
        {
                /* only the sending side of each hop; the collecting site's own hops (to and
                 * from the local machine) and software versions give nothing */
                "received: sending side of external hops",
                "Received: from localhost (localhost [127.0.0.1])\n"
                "\tby mail.example.org (Postfix) with ESMTP id 71CE443F9B for <user@localhost>\n"
                "Received: from pop.example.net [198.51.100.9]\n"
                "\tby localhost with POP3 (fetchmail-5.9.0) for user@localhost (single-drop)\n"
                "Received: from out.example.com (out.example.com [203.0.113.5]) by\n"
                "\tmx.example.org (8.11.6/8.11.6) with ESMTP id g7ME1MZ09279 for <user@example.org>\n"
                "Received: from unknown (HELO relay.example.com) (10.1.2.3) by out.example.com\n"
                "Received: (qmail 45116 invoked from network); 22 Aug 2002 14:01:22 -0000\n"
                "Received: from inner by mailhost with local\n"
                "Received: from abc.example.com by\n"
                "Subject: x\n"
                "\n"
                "body\n",
                NULL,
                { "h:received:out.example.com", "h:received:203.0.113.5", "h:received:relay.example.com",
                  "h:received:10.1.2.3", "hf:received" },
                { "h:received:localhost", "h:received:127.0.0.1", "h:received:mail.example.org",
                  "h:received:pop.example.net", "h:received:198.51.100.9", "h:received:fetchmail-5.9.0",
                  "h:received:8.11.6", "h:received:mx.example.org", "h:received:example.org",
                  "h:received:abc.example.com", "h:received:unknown" },
        },
        {
                /* where the collecting site delivered its copy is not the message's */
                "recipient side fields",
                "Delivered-To: user@example.org\n"
                "X-Original-To: user@example.org\n"
                "Envelope-To: user@example.org\n"
                "Return-Path: <sender@example.net>\n"
                "Subject: x\n"
                "\n"
                "body\n",
                NULL,
                { "h:return-path:example.net", "hf:return-path" },
                { "hf:delivered-to", "h:delivered-to:example.org", "h:delivered-to:user", "hf:x-original-to",
                  "h:x-original-to:example.org", "hf:envelope-to", "h:envelope-to:user" },
        },
        {
                /* the Date field gives how it is written and its zone, not the time; the
                 * date of an attached message gives nothing */
                "date: shape and zone",
                "Date: Tue, 31 Jul 2001 21:36:20 -0700 (PDT)\n"
                "Subject: x\n"
                "Content-Type: multipart/mixed; boundary=b\n"
                "\n"
                "--b\nContent-Type: text/plain\n\nbody\n"
                "--b\nContent-Type: message/rfc822\n\n"
                "Date: 5 Aug 02 10:02 GMT\nSubject: inner\n\ninner body\n"
                "--b--\n",
                NULL,
                { "h:date:shape:a, 99 a 9999 99:99:99 -9999 (a)", "h:date:zone:-0700", "hf:subject", "w:body" },
                { "h:date:tue", "h:date:jul", "h:date:2001", "h:date:21", "hf:date", "h:date:zone:(pdt)",
                  "h:date:zone:gmt", "h:date:shape:9 a 99 99:99 a" },
        },
        {
                /* the shape of the sender's local part (the address in angle brackets,
                 * not a display name that looks like one) and of the Message-ID's left
                 * part; an attached message's give nothing */
                "from, reply-to and message-id: shape of the left part",
                "From: \"offers@example.com\" <John.Smith42@example.org>\n"
                "Reply-To: x7hq2k@example.net (Sales)\n"
                "Sender: list-bounces@example.org\n"
                "Message-ID: <20020912182131.20322.qmail@relay.example.com>\n"
                "Subject: x\n"
                "Content-Type: message/rfc822\n"
                "\n"
                "From: Inner <inner_1@example.net>\n"
                "Message-ID: <AB.CD@example.net>\n"
                "\n"
                "body\n",
                NULL,
                { "h:from:shape:a.a9", "h:reply-to:shape:a9a9a", "h:from:john.smith42", "h:reply-to:x7hq2k",
                  "h:message-id:shape:9.9.a", "h:message-id:relay.example.com",
                  "h:from:fmt:\"a@a.a\" <a.a9@a.a>", "h:reply-to:fmt:a9a9a@a.a (a)", "h:content-type:fmt:a/a9" },
                { "h:from:shape:a", "h:sender:shape:a-a", "h:reply-to:shape:a9a9a9", "h:from:shape:a_9",
                  "h:message-id:shape:a.a", "h:message-id:shape:9.9.a@a.a.a", "h:sender:fmt:a-a@a.a",
                  "h:subject:fmt:a", "h:message-id:fmt:<9.9.a@a.a.a>", "h:from:fmt:a <a_9@a.a>" },
        },
        {
                /* how To, Cc and Content-Type are written: quoting, several addresses,
                 * the charset's shape; a part's Content-Type gives none */
                "to, cc and content-type: how they are written",
                "To: undisclosed-recipients:;\n"
                "Cc: Ann <ann@example.org>,\n\tbob@example.net\n"
                "Subject: x\n"
                "Content-Type: multipart/alternative;\n\tboundary=\"----=_NextPart_000_0001_01C25A2B.1B2F5B80\"\n"
                "\n"
                "------=_NextPart_000_0001_01C25A2B.1B2F5B80\n"
                "Content-Type: text/plain; charset=\"iso-8859-1\"\n\nbody\n"
                "------=_NextPart_000_0001_01C25A2B.1B2F5B80--\n",
                NULL,
                { "h:to:fmt:a-a:;", "h:cc:fmt:a <a@a.a>, a@a.a", "hf:content-type",
                  "h:content-type:fmt:a/a; a=\"----=_a_9_9_9a9a9a.9a9a9a9\"" },
                { "h:content-type:fmt:a/a; a=\"a-9-9\"", "h:to:fmt:", "h:cc:fmt:a <a@a.a>,\n a@a.a" },
        },
        {
                /* the longest line of plain text, in characters: 70 Cyrillic letters (140
                 * bytes) and 72 letters before a CRLF are lines of 72 at most */
                "wrap: lines in characters",
                "Subject: x\n"
                "Content-Type: text/plain; charset=utf-8\n"
                "\n"
                "\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\xd0\xb6\n"
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
                "short\n",
                NULL,
                { "f:wrap:72" },
                { "f:wrap:80", "f:wrap:100", "f:wrap:200", "f:wrap:long" },
        },
        {
                /* a paragraph a line, in quoted-printable with soft breaks: one line of
                 * 130 characters once decoded; an HTML part's lines do not count */
                "wrap: a paragraph a line",
                "Subject: x\n"
                "Content-Type: multipart/alternative; boundary=b\n"
                "\n"
                "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\n"
                "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
                "--b\nContent-Type: text/html\n\n<p>cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc</p>\n"
                "--b--\n",
                NULL,
                { "f:wrap:200" },
                { "f:wrap:72", "f:wrap:80", "f:wrap:100", "f:wrap:long" },
        },
        {
                "wrap: no plain text, no token",
                "Subject: x\n"
                "Content-Type: text/html\n"
                "\n"
                "<p>dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd</p>\n",
                NULL,
                { "f:html-only" },
                { "f:wrap:72", "f:wrap:80", "f:wrap:100", "f:wrap:200", "f:wrap:long" },
        },
        {
                "date: letters for a zone, and no time",
                "Date: 5 Aug 02 10:02 GMT\n"
                "Subject: x\n"
                "\n"
                "body\n",
                NULL,
                { "h:date:shape:9 a 99 99:99 a", "h:date:zone:gmt" },
                { "h:date:zone:GMT", "h:date:aug" },
        },
        {
                "date: no time, no zone",
                "Date:   Not  supplied \n"
                "Subject: x\n"
                "\n"
                "body\n",
                NULL,
                { "h:date:shape:a a" },
                { "h:date:zone:supplied", "h:date:zone:", "h:date:shape:a a " },
        },
        {
                "url hosts from html and text",
                "Content-Type: text/html\n"
                "\n"
                "<a href=\"http://WWW.Spam-Site.example.com/x?y\">click</a> and "
                "<img src=\"https://198.51.100.4/i.gif\"> vi<b></b>agra\n",
                NULL,
                { "u:www.spam-site.example.com", "u:example.com", "u:198.51.100.4", "f:url-ip", "w:click",
                  "w:viagra", "f:insertions:1", "f:html-only", "f:type:text/html", "m:a", "m:img", "m:b" },
                { "w:vi", "w:agra", "w:href" },
        },
        {
                /* the elements of an HTML part, not its text; nothing from plain text */
                "html elements",
                "Content-Type: multipart/alternative; boundary=x\n\n"
                "--x\nContent-Type: text/plain\n\n<center>plain</center>\n"
                "--x\nContent-Type: text/html\n\n"
                "<HTML><Table><tr><td><FONT face=Arial>Hi</FONT></td></tr></table>"
                "<script>document.write('<marquee>')</script><!-- <blink> --></HTML>\n"
                "--x--\n",
                NULL,
                { "m:html", "m:table", "m:tr", "m:td", "m:font", "m:script", "w:hi", "w:center", "w:plain" },
                { "m:marquee", "m:blink", "m:center", "m:/font", "w:font", "w:arial", "m:FONT" },
        },
        {
                "url hosts from plain text",
                "Subject: links\n"
                "\n"
                "visit http://foo.shop.example.net/path, (www.bar.example.co.uk) or ftp://files.example.org\n"
                "but not mailto:someone@example.com or wwwx.example.com\n",
                NULL,
                { "u:foo.shop.example.net", "u:example.net", "u:www.bar.example.co.uk", "u:example.co.uk",
                  "u:files.example.org", "w:visit" },
                { "u:example.com", "u:wwwx.example.com", "u:co.uk" },
        },
        {
                "bigram distances",
                "Subject: x\n"
                "\n"
                "alpha beta gamma delta epsilon zeta\n",
                NULL,
                { "b:alpha 1 beta", "b:beta 1 gamma", "b:epsilon 1 zeta" },
                /* the default window is 2: adjacent words only */
                { "b:alpha 2 gamma", "b:beta 1 alpha", "b:alpha 1 gamma", "b:beta 4 zeta" },
        },
        {
                "client ipv4",
                "Subject: x\n\nbody\n",
                "192.0.2.77",
                { "ip:192.0.2.77", "ip:192.0.2.0/24" },
                {},
        },
        {
                "client ipv6",
                "Subject: x\n\nbody\n",
                "[IPv6:2001:DB8:1:2::5]",
                { "ip:2001:db8:1:2::5", "ip:2001:db8:1::/48" },
                {},
        },
        {
                "client address that is none",
                "Subject: x\n\nbody\n",
                "unknown",
                {},
                { "ip:unknown" },
        },
        {
                "case folding and word bounds",
                "Subject: x\n"
                "Content-Type: text/plain; charset=utf-8\n"
                "\n"
                "ΚΑΛΗΜΕΡΑ ΟΔΟΣ Привет ÉCOLE Straße İstanbul a I'm don’t 1234567 $100 e-mail end. "
                "xxxxxxxxxxyyyyyyyyyyxxxxxxxxxxyyyyyyyyyyxxxxxxxxxx\n",
                NULL,
                { "w:καλημερα", "w:οδοσ", "w:привет", "w:école", "w:straße", "w:istanbul", "w:i'm", "w:don't",
                  "w:#7", "w:$100", "w:e-mail", "w:end", "f:skip:x 50", "f:charset:utf-8" },
                { "w:a", "w:end.", "w:1234567", "w:ΚΑΛΗΜΕΡΑ" },
        },
        {
                "mime defects",
                "Content-Type: multipart/mixed\n"
                "\n"
                "no boundary here\n",
                NULL,
                { "f:defect:no-boundary", "w:boundary" },
                {},
        },
        {
                "attachment features",
                "Content-Type: multipart/mixed; boundary=b\n"
                "\n"
                "--b\n"
                "Content-Type: text/plain\n"
                "\n"
                "see attached\n"
                "--b\n"
                "Content-Type: application/octet-stream; name=\"Invoice.EXE\"\n"
                "Content-Transfer-Encoding: base64\n"
                "\n"
                "TVqQAAMAAAAEAAAA\n"
                "--b--\n",
                NULL,
                { "f:type:application/octet-stream", "f:ext:exe", "h:content-type:application", "w:attached" },
                { "f:type:multipart/mixed", "f:html-only" },
        },
        {
                /* u:w:, the words of the path, query and fragment of an HTML link (split
                 * as body words are, references decoded, case folded); none for a link in
                 * plain text, whose words are body words already */
                "link words",
                "Subject: x\n"
                "Content-Type: multipart/alternative; boundary=b\n"
                "\n"
                "--b\nContent-Type: text/plain\n\nsee http://plain.example/catalog/items?page=2\n"
                "--b\nContent-Type: text/html\n\n"
                "<a href=\"http://www.offer.example/Remove.php?email=you&amp;list=42#x\">out</a>"
                "<img src=\"//img.example/banner_big.gif\">\n"
                "--b--\n",
                NULL,
                { "u:w:remove.php", "u:w:email", "u:w:you", "u:w:list", "u:w:42", "u:w:banner_big.gif",
                  "u:www.offer.example", "u:img.example", "w:catalog", "w:items", "u:plain.example" },
                { "u:w:catalog", "u:w:items", "u:w:page", "u:w:amp", "u:w:Remove.php", "u:w:offer",
                  "w:remove.php", "u:w:x", "w:email" },
        },
        {
                /* hc:, the words of HTML comments; none from plain text, none from a
                 * comment left open (which still counts as a comment) */
                "comment words",
                "Subject: x\n"
                "Content-Type: multipart/alternative; boundary=b\n"
                "\n"
                "--b\nContent-Type: text/plain\n\nplain <!-- Textcomment -->\n"
                "--b\nContent-Type: text/html\n\n"
                "<!--[if gte mso 9]><xml>Office</xml><![endif]-->Hello<!-- random Busterword -->"
                " world<!-- never closed Opentail\n"
                "--b--\n",
                NULL,
                { "hc:if", "hc:gte", "hc:mso", "hc:xml", "hc:office", "hc:endif", "hc:random", "hc:busterword",
                  "w:hello", "w:world", "w:textcomment", "f:html-comments:3-4" },
                { "hc:textcomment", "hc:opentail", "hc:never", "w:busterword", "w:office", "hc:Office", "hc:9" },
        },
};

START_TEST(test_tokenizer_cases)
{
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const Case *c = &cases[i];
                SpamTokens t;
                bool ok = true;

                tokenize(c->msg, c->client_ip, true, &t);
                for (size_t k = 0; k < ELEMENTSOF(c->present) && c->present[k]; k++)
                        if (!has(&t, c->present[k])) {
                                fprintf(stderr, "%s: missing %s\n", c->name, c->present[k]);
                                ok = false;
                        }
                for (size_t k = 0; k < ELEMENTSOF(c->absent) && c->absent[k]; k++)
                        if (has(&t, c->absent[k])) {
                                fprintf(stderr, "%s: unexpected %s\n", c->name, c->absent[k]);
                                ok = false;
                        }
                if (!ok)
                        dump(&t);
                ck_assert_msg(ok, "case '%s'", c->name);
                spam_tokens_done(&t);
        }
}
END_TEST

START_TEST(test_tokenizer_bigram_window)
{
        static const char msg[] = "Subject: x\n\nalpha beta gamma delta epsilon zeta\n";
        SpamTokenizerOptions opts = { .key = &key, .bigrams = true, .bigram_window = 5, .keep_text = true };
        SpamTokens t = SPAM_TOKENS_NULL;
        size_t n = 0;

        /* orthogonal sparse bigrams over a word and the next 4 */
        ck_assert_int_eq(spam_tokenize(msg, strlen(msg), &opts, &t), 0);
        ck_assert(has(&t, "b:alpha 1 beta"));
        ck_assert(has(&t, "b:alpha 2 gamma"));
        ck_assert(has(&t, "b:alpha 4 epsilon"));
        ck_assert(has(&t, "b:beta 4 zeta"));
        ck_assert(!has(&t, "b:alpha 5 zeta"));
        for (size_t i = 0; i < t.n; i++)
                if (t.kinds[i] == SPAM_TOKEN_BIGRAM)
                        n++;
        ck_assert_uint_eq(n, 4 + 4 + 3 + 2 + 1);
        spam_tokens_done(&t);

        /* beyond the maximum: the maximum */
        opts.bigram_window = 50;
        ck_assert_int_eq(spam_tokenize(msg, strlen(msg), &opts, &t), 0);
        ck_assert(has(&t, "b:alpha 4 epsilon"));
        ck_assert(!has(&t, "b:alpha 5 zeta"));
        spam_tokens_done(&t);

        /* 1: no bigrams */
        opts.bigram_window = 1;
        ck_assert_int_eq(spam_tokenize(msg, strlen(msg), &opts, &t), 0);
        for (size_t i = 0; i < t.n; i++)
                ck_assert_uint_ne(t.kinds[i], SPAM_TOKEN_BIGRAM);
        spam_tokens_done(&t);
}
END_TEST

START_TEST(test_tokenizer_bigram_hash)
{
        uint64_t a = spam_token_hash(&key, "w:", "cheap", 5), b = spam_token_hash(&key, "w:", "pills", 5);

        /* order and distance matter, and a bigram is not one of its words */
        ck_assert(spam_tokenizer_bigram_hash(a, 1, b) != spam_tokenizer_bigram_hash(b, 1, a));
        ck_assert(spam_tokenizer_bigram_hash(a, 1, b) != spam_tokenizer_bigram_hash(a, 2, b));
        ck_assert(spam_tokenizer_bigram_hash(a, 1, a) != a);
        ck_assert(spam_tokenizer_bigram_hash(a, 1, b) == spam_tokenizer_bigram_hash(a, 1, b));
}
END_TEST

/* Checks the parts of a tokenization with bigrams and without shapes: each bigram names
 * the w: tokens of its two words, every other token has none. Returns the bigrams. */
static unsigned check_bigram_parts(const SpamTokens *t, const SpamTokenParts *parts) {
        unsigned bigrams = 0;

        ck_assert_uint_eq(parts->n, t->n);
        for (size_t i = 0; i < t->n; i++) {
                char w1[64], w2[64], x[80];
                unsigned d;

                if (t->kinds[i] != SPAM_TOKEN_BIGRAM) {
                        ck_assert_uint_eq(parts->word[i][0], SPAM_TOKEN_NO_WORD);
                        ck_assert_uint_eq(parts->word[i][1], SPAM_TOKEN_NO_WORD);
                        continue;
                }
                bigrams++;
                ck_assert_int_eq(sscanf(t->text[i], "b:%63s %u %63s", w1, &d, w2), 3);
                ck_assert_uint_lt(parts->word[i][0], t->n);
                ck_assert_uint_lt(parts->word[i][1], t->n);
                snprintf(x, sizeof(x), "w:%s", w1);
                ck_assert_str_eq(t->text[parts->word[i][0]], x);
                snprintf(x, sizeof(x), "w:%s", w2);
                ck_assert_str_eq(t->text[parts->word[i][1]], x);
        }
        return bigrams;
}

/* With parts, each bigram names the w: tokens of its two words; repeated words keep the
 * index of their first occurrence, and every other token has none. */
START_TEST(test_tokenizer_parts)
{
        static const char msg[] = "Subject: x\n\ncheap pills cheap watches 1234567 pills\n";
        SpamTokenParts parts = SPAM_TOKEN_PARTS_NULL;
        SpamTokenizerOptions opts = { .key = &key, .bigrams = true, .keep_text = true, .parts = &parts };
        SpamTokens t = SPAM_TOKENS_NULL;

        ck_assert_int_eq(spam_tokenize(msg, strlen(msg), &opts, &t), 0);
        /* cheap-pills, pills-cheap, cheap-watches, watches-#7, #7-pills */
        ck_assert_uint_eq(check_bigram_parts(&t, &parts), 5);
        ck_assert(has(&t, "b:watches 1 #7"));
        spam_tokens_done(&t);
        spam_token_parts_done(&parts);
        ck_assert_ptr_null(parts.word);
}
END_TEST

/* The same with more distinct words than the tokenizer remembers at once (it keeps the
 * recent words of a message by a hash, one per slot): 600 words, then the same words in
 * another order, so that repeats meet both remembered and forgotten words. */
START_TEST(test_tokenizer_parts_many)
{
        SpamTokenParts parts = SPAM_TOKEN_PARTS_NULL;
        SpamTokenizerOptions opts = { .key = &key, .bigrams = true, .keep_text = true, .parts = &parts };
        SpamTokens t = SPAM_TOKENS_NULL;
        char msg[16384];
        size_t n = 0;
        unsigned words = 0;

        n += (size_t) snprintf(msg + n, sizeof(msg) - n, "Subject: x\n\n");
        for (unsigned round = 0; round < 2; round++)
                for (unsigned i = 0; i < 600; i++) {
                        unsigned k = round == 0 ? i : (i * 7) % 600;

                        n += (size_t) snprintf(msg + n, sizeof(msg) - n, "w%c%c%c ", 'a' + k / 100 % 10,
                                               'a' + k / 10 % 10, 'a' + k % 10);
                        ck_assert_uint_lt(n, sizeof(msg));
                }

        ck_assert_int_eq(spam_tokenize(msg, n, &opts, &t), 0);
        ck_assert_uint_ge(check_bigram_parts(&t, &parts), 1100);
        for (size_t i = 0; i < t.n; i++)
                words += t.kinds[i] == SPAM_TOKEN_WORD;
        ck_assert_uint_eq(words, 600);
        spam_tokens_done(&t);
        spam_token_parts_done(&parts);
}
END_TEST

/* Field families: with field_families and parts, every token of the top-level fields of a
 * family names the family's first token twice (fields of a family after other fields
 * too); other header tokens, tokens of a part's own fields and body tokens get nothing. */
START_TEST(test_tokenizer_field_families)
{
        static const char msg[] =
                "From: Ann <ann@example.org>\n"
                "List-Id: Offers <offers.lists.example.net>\n"
                "Subject: cheap pills\n"
                "Precedence: bulk\n"
                "X-Mailer: Outlook Express 6\n"
                "MIME-Version: 1.0\n"
                "List-Unsubscribe: <mailto:leave@lists.example.net>\n"
                "X-MSMail-Priority: High\n"
                "Content-Type: multipart/alternative; boundary=b\n"
                "Received: from relay.example.com (relay.example.com [192.0.2.7]) by mx.example.org\n"
                "\n"
                "--b\n"
                "Content-Type: text/plain; format=flowed\n"
                "\n"
                "cheap pills today\n"
                "--b--\n";
        static const struct {
                const char *token;
                SpamFieldFamily family;
        } expected[] = {
                { "hf:list-id", SPAM_FIELD_FAMILY_LIST },
                { "h:list-id:offers", SPAM_FIELD_FAMILY_LIST },
                { "h:list-id:offers.lists.example.net", SPAM_FIELD_FAMILY_LIST },
                { "hf:precedence", SPAM_FIELD_FAMILY_LIST },
                { "h:precedence:bulk", SPAM_FIELD_FAMILY_LIST },
                { "hf:list-unsubscribe", SPAM_FIELD_FAMILY_LIST },
                { "h:list-unsubscribe:lists.example.net", SPAM_FIELD_FAMILY_LIST },
                { "hf:x-mailer", SPAM_FIELD_FAMILY_PROGRAM },
                { "h:x-mailer:outlook", SPAM_FIELD_FAMILY_PROGRAM },
                { "h:x-msmail-priority:high", SPAM_FIELD_FAMILY_PROGRAM },
                { "hf:mime-version", SPAM_FIELD_FAMILY_MIME },
                { "h:content-type:multipart", SPAM_FIELD_FAMILY_MIME },
                { "h:content-type:alternative", SPAM_FIELD_FAMILY_MIME },
                { "hf:from", SPAM_FIELD_FAMILY_NONE },
                { "h:from:ann", SPAM_FIELD_FAMILY_NONE },
                { "h:subject:cheap", SPAM_FIELD_FAMILY_NONE },
                { "h:received:relay.example.com", SPAM_FIELD_FAMILY_NONE },
                /* the part's own Content-Type is not the message's declaration */
                { "h:content-type:flowed", SPAM_FIELD_FAMILY_NONE },
                { "w:cheap", SPAM_FIELD_FAMILY_NONE },
        };
        SpamTokenParts parts = SPAM_TOKEN_PARTS_NULL;
        SpamTokenizerOptions opts = { .key = &key, .bigrams = true, .keep_text = true, .parts = &parts };
        SpamTokens t = SPAM_TOKENS_NULL;

        for (int on = 0; on <= 1; on++) {
                uint32_t anchor[_SPAM_FIELD_FAMILY_MAX];

                for (size_t f = 0; f < ELEMENTSOF(anchor); f++)
                        anchor[f] = SPAM_TOKEN_NO_WORD;
                opts.field_families = on;
                ck_assert_int_eq(spam_tokenize(msg, sizeof(msg) - 1, &opts, &t), 0);
                ck_assert_uint_eq(parts.n, t.n);
                for (size_t k = 0; k < ELEMENTSOF(expected); k++) {
                        SpamFieldFamily f = on ? expected[k].family : SPAM_FIELD_FAMILY_NONE;
                        size_t i;

                        for (i = 0; i < t.n && !streq(t.text[i], expected[k].token); i++)
                                ;
                        ck_assert_msg(i < t.n, "%s", expected[k].token);
                        ck_assert_uint_eq(parts.word[i][0], parts.word[i][1]);
                        if (f == SPAM_FIELD_FAMILY_NONE) {
                                ck_assert_msg(parts.word[i][0] == SPAM_TOKEN_NO_WORD, "%s", expected[k].token);
                                continue;
                        }
                        /* one anchor per family: the first token of its first field */
                        if (anchor[f] == SPAM_TOKEN_NO_WORD)
                                anchor[f] = parts.word[i][0];
                        ck_assert_msg(parts.word[i][0] == anchor[f], "%s", expected[k].token);
                }
                if (on) {
                        ck_assert_str_eq(t.text[anchor[SPAM_FIELD_FAMILY_LIST]], "hf:list-id");
                        ck_assert_str_eq(t.text[anchor[SPAM_FIELD_FAMILY_PROGRAM]], "hf:x-mailer");
                        ck_assert_str_eq(t.text[anchor[SPAM_FIELD_FAMILY_MIME]], "hf:mime-version");
                }
                spam_tokens_done(&t);
                spam_token_parts_done(&parts);
        }

        ck_assert_int_eq(spam_field_family("list-archive"), SPAM_FIELD_FAMILY_LIST);
        ck_assert_int_eq(spam_field_family("x-beenthere"), SPAM_FIELD_FAMILY_LIST);
        ck_assert_int_eq(spam_field_family("errors-to"), SPAM_FIELD_FAMILY_LIST);
        ck_assert_int_eq(spam_field_family("user-agent"), SPAM_FIELD_FAMILY_PROGRAM);
        ck_assert_int_eq(spam_field_family("content-class"), SPAM_FIELD_FAMILY_PROGRAM);
        ck_assert_int_eq(spam_field_family("content-transfer-encoding"), SPAM_FIELD_FAMILY_MIME);
        ck_assert_int_eq(spam_field_family("reply-to"), SPAM_FIELD_FAMILY_NONE);
        ck_assert_int_eq(spam_field_family("listing"), SPAM_FIELD_FAMILY_NONE);
}
END_TEST

START_TEST(test_tokenizer_no_bigrams)
{
        SpamTokens t;

        tokenize("Subject: x\n\nalpha beta gamma\n", NULL, false, &t);
        ck_assert(has(&t, "w:alpha"));
        for (size_t i = 0; i < t.n; i++)
                ck_assert_uint_ne(t.kinds[i], SPAM_TOKEN_BIGRAM);
        spam_tokens_done(&t);
}
END_TEST

START_TEST(test_tokenizer_markup_option)
{
        static const char msg[] = "Content-Type: text/html\n\n<table><tr><td><font size=7>big</font></td></tr></table>\n";
        SpamTokenizerOptions opts = { .key = &key, .keep_text = true };
        SpamTokens t = SPAM_TOKENS_NULL;
        unsigned markup = 0;

        for (int on = 0; on <= 1; on++) {
                opts.markup = on;
                markup = 0;
                ck_assert_int_eq(spam_tokenize(msg, sizeof(msg) - 1, &opts, &t), 0);
                ck_assert(has(&t, "w:big"));
                for (size_t i = 0; i < t.n; i++)
                        if (t.kinds[i] == SPAM_TOKEN_MARKUP) {
                                ck_assert(strncmp(t.text[i], "m:", 2) == 0);
                                markup++;
                        }
                /* table, tr, td, font; each element once however often it is used */
                ck_assert_uint_eq(markup, on ? 4 : 0);
                spam_tokens_done(&t);
        }
}
END_TEST

/* Shapes: a body word with capitals as written (c:) and a word followed by '!' (!:), each
 * naming its w: token twice in parts; words in lower case get neither, header words never. */
START_TEST(test_tokenizer_shapes)
{
        static const char msg[] =
                "Subject: FREE Offer!\n"
                "Content-Type: text/plain; charset=utf-8\n"
                "\n"
                "FREE money Today! \xc3\x89" "COLE don\xe2\x80\x99t Don\xe2\x80\x99t stop! stop now free!\n"
                /* 40 dotted capital I: 40 bytes folded, 80 as written */
                "\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0"
                "\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0"
                "\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0"
                "\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\xc4\xb0\n";
        static const char *const expected[] = {
                "c:FREE", "c:Today", "!:today", ("c:\xc3\x89" "COLE"), "c:Don't", "!:stop", "!:free",
        };
        SpamTokenParts parts = SPAM_TOKEN_PARTS_NULL;
        SpamTokenizerOptions opts = { .key = &key, .bigrams = true, .keep_text = true };
        SpamTokens t = SPAM_TOKENS_NULL;
        unsigned shapes = 0;

        for (int on = 0; on <= 1; on++) {
                opts.shapes = on;
                opts.parts = on ? &parts : NULL;
                ck_assert_int_eq(spam_tokenize(msg, sizeof(msg) - 1, &opts, &t), 0);
                ck_assert(has(&t, "w:free"));
                ck_assert(has(&t, "w:\xc3\xa9" "cole"));
                ck_assert(has(&t, "w:don't"));
                ck_assert(has(&t, "h:subject:free"));
                ck_assert(has(&t, "w:iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii"));
                shapes = 0;
                for (size_t i = 0; i < t.n; i++) {
                        char w[80];

                        if (t.kinds[i] != SPAM_TOKEN_SHAPE)
                                continue;
                        shapes++;
                        /* its word: the w: token of the folded text */
                        ck_assert_uint_eq(parts.word[i][0], parts.word[i][1]);
                        ck_assert_uint_lt(parts.word[i][0], t.n);
                        ck_assert_uint_eq(t.kinds[parts.word[i][0]], SPAM_TOKEN_WORD);
                        ck_assert(strlen(t.text[i]) < sizeof(w));
                        snprintf(w, sizeof(w), "w:%s", t.text[i] + 2);
                        for (char *c = w + 2; *c; c++)
                                if (*c >= 'A' && *c <= 'Z')
                                        *c += 32;
                        if (strncmp(t.text[i], "c:\xc3\x89", 4) == 0)
                                ck_assert_str_eq(t.text[parts.word[i][0]], "w:\xc3\xa9" "cole");
                        else
                                ck_assert_str_eq(t.text[parts.word[i][0]], w);
                }
                ck_assert_uint_eq(shapes, on ? ELEMENTSOF(expected) : 0);
                for (size_t k = 0; k < ELEMENTSOF(expected); k++)
                        ck_assert_msg(has(&t, expected[k]) == (bool) on, "%s with shapes %s", expected[k],
                                      on ? "on" : "off");
                ck_assert(!has(&t, "c:money"));
                ck_assert(!has(&t, "!:now"));
                ck_assert(!has(&t, "c:Offer"));
                spam_tokens_done(&t);
                spam_token_parts_done(&parts);
        }
}
END_TEST

/* The word tokens of "Subject: x", a blank line and body, with shapes, joined in order
 * into buf: those of words (w:), of capitals and marks (c:, !:) and of words too long
 * (f:skip). */
static void word_tokens(const char *body, char *buf, size_t size) {
        SpamTokenizerOptions opts = { .key = &key, .shapes = true, .keep_text = true };
        SpamTokens t = SPAM_TOKENS_NULL;
        char msg[512];
        size_t n = 0;

        ck_assert_int_lt(snprintf(msg, sizeof(msg), "Subject: x\n\n%s", body), (int) sizeof(msg));
        ck_assert_int_eq(spam_tokenize(msg, strlen(msg), &opts, &t), 0);
        buf[0] = '\0';
        for (size_t i = 0; i < t.n; i++)
                if (strncmp(t.text[i], "w:", 2) == 0 || strncmp(t.text[i], "c:", 2) == 0 ||
                    strncmp(t.text[i], "!:", 2) == 0 || strncmp(t.text[i], "f:skip:", 7) == 0) {
                        ck_assert_uint_lt(n + strlen(t.text[i]) + 2, size);
                        n += (size_t) sprintf(buf + n, "%s|", t.text[i]);
                }
        spam_tokens_done(&t);
}

/* Runs of ASCII letters and digits are read eight bytes at a time where eight are left,
 * one at a time near the end of the text: a word gives the same tokens wherever it
 * starts and whatever follows it. */
START_TEST(test_tokenizer_word_alignment)
{
        static const struct {
                const char *word, *tokens;
        } words[] = {
                { "offer", "w:offer|" },
                { "Offer", "w:offer|c:Offer|" },
                { "OFFER2!", "w:offer2|c:OFFER2|!:offer2|" },
                { "abcdefgh", "w:abcdefgh|" },
                { "ABCDEFGHijklmnopQ", "w:abcdefghijklmnopq|c:ABCDEFGHijklmnopQ|" },
                { "x86", "w:x86|" },
                { "1234", "w:1234|" },
                { "123456789", "w:#9|" },
                { "1234567a", "w:1234567a|" },
                { "a1B2c3D4e5", "w:a1b2c3d4e5|c:a1B2c3D4e5|" },
                { "Jean-Luc's", "w:jean-luc's|c:Jean-Luc's|" },
                { "$5", "w:$5|" },
                { "\xc3\x89" "cole", "w:\xc3\xa9" "cole|c:\xc3\x89" "cole|" },
                { "caf\xc3\xa9s", "w:caf\xc3\xa9s|" },
                /* 40 bytes: the longest word; 41: too long */
                { "Abcdefghijabcdefghijabcdefghijabcdefghij",
                  "w:abcdefghijabcdefghijabcdefghijabcdefghij|c:Abcdefghijabcdefghijabcdefghijabcdefghij|" },
                { "Abcdefghijabcdefghijabcdefghijabcdefghijk", "f:skip:a 40|" },
        };
        static const char *const tails[] = { "", "\n", " ", "          \n", ".\n" };

        for (size_t k = 0; k < ELEMENTSOF(words); k++)
                for (unsigned pad = 0; pad < 9; pad++)
                        for (size_t m = 0; m < ELEMENTSOF(tails); m++) {
                                char body[128], got[512];

                                snprintf(body, sizeof(body), "%*s%s%s", (int) pad, "", words[k].word, tails[m]);
                                word_tokens(body, got, sizeof(got));
                                ck_assert_msg(streq(got, words[k].tokens), "\"%s\" after %u spaces, tail %zu: %s",
                                              words[k].word, pad, m, got);
                        }
}
END_TEST

static void count_word(const char *word, size_t len, void *userdata) {
        unsigned *n = userdata;

        ck_assert_uint_eq(strlen(word), len);
        ck_assert(strncmp(word, "repeat", len) == 0 || strncmp(word, "other", len) == 0);
        (*n)++;
}

START_TEST(test_tokenizer_on_word_and_limits)
{
        static const char msg[] = "Subject: x\n\nrepeat Repeat REPEAT other repeat\n";
        SpamTokenizerOptions opts = { .key = &key, .bigrams = true, .on_word = count_word };
        SpamTokens t = SPAM_TOKENS_NULL;
        unsigned n = 0;
        _cleanup_free_ char *big = NULL;
        size_t len = 0;

        opts.userdata = &n;
        ck_assert_int_eq(spam_tokenize(msg, strlen(msg), &opts, &t), 0);
        ck_assert_uint_eq(n, 2);                /* once per distinct body word */
        ck_assert_ptr_null(t.text);
        ck_assert(spam_tokens_contains(&t, spam_token_hash(&key, "w:", "repeat", 6)));
        spam_tokens_done(&t);

        /* max_tokens: a message with thousands of distinct words stays within it, and
         * still gets its feature tokens */
        big = malloc(200000);
        ck_assert_ptr_nonnull(big);
        len = (size_t) sprintf(big, "Subject: x\n\n");
        for (unsigned i = 0; len < 190000; i++)
                len += (size_t) sprintf(big + len, "w%u ", i);
        opts.on_word = NULL;
        opts.max_tokens = 1000;
        ck_assert_int_eq(spam_tokenize(big, len, &opts, &t), 0);
        ck_assert_uint_le(t.n, 1000);
        ck_assert_uint_ge(t.n, 800);
        n = 0;
        for (size_t i = 0; i < t.n; i++)
                if (t.kinds[i] == SPAM_TOKEN_FEATURE)
                        n++;
        ck_assert_uint_ge(n, 2);                /* f:type:text/plain, f:text:N */
        spam_tokens_done(&t);
}
END_TEST

/* f:html-case:C, how an HTML part writes its tags, and f:html-comments:N */
START_TEST(test_tokenizer_html_case)
{
        static const struct {
                const char *html;
                const char *token;
                const char *comments;
        } html_cases[] = {
                { "<HTML><BODY><FONT SIZE=3>Hi</FONT></BODY></HTML>", "f:html-case:upper", "f:html-comments:0" },
                { "<html><p>hi</p></html>",                          "f:html-case:lower", "f:html-comments:0" },
                { "<HTML><!-- a --><p>hi</p></HTML>",                "f:html-case:mixed", "f:html-comments:1" },
                { "no tags at all <!----> vi<!-- x -->agra <!--z-->", "f:html-case:none",  "f:html-comments:3-4" },
        };
        static const char *const all[] = {
                "f:html-case:upper", "f:html-case:lower", "f:html-case:mixed", "f:html-case:none",
        };

        for (size_t i = 0; i < ELEMENTSOF(html_cases); i++) {
                _cleanup_free_ char *msg = NULL;
                SpamTokens t;

                ck_assert_int_ge(asprintf_safe(&msg, "Subject: x\nContent-Type: text/html\n\n%s\n", html_cases[i].html), 0);
                tokenize(msg, NULL, false, &t);
                for (size_t j = 0; j < ELEMENTSOF(all); j++)
                        ck_assert_msg(has(&t, all[j]) == streq(all[j], html_cases[i].token), "case %zu: %s", i, all[j]);
                ck_assert_msg(has(&t, html_cases[i].comments), "case %zu: %s", i, html_cases[i].comments);
                spam_tokens_done(&t);
        }
}
END_TEST

/* The tokens of what the reader of HTML does not see (link paths, comments, in the table
 * above) are of the kinds that say so: u:w: URL, hc: markup. */
START_TEST(test_tokenizer_hidden_kinds)
{
        static const char msg[] =
                "Subject: x\nContent-Type: text/html\n\n"
                "<a href=\"http://x.example/remove.php?email=you\">out</a><!-- random words -->\n";
        SpamTokens t;
        unsigned urls = 0, comments = 0;

        tokenize(msg, NULL, false, &t);
        for (size_t i = 0; i < t.n; i++)
                if (strncmp(t.text[i], "u:w:", 4) == 0) {
                        ck_assert_int_eq(t.kinds[i], SPAM_TOKEN_URL);
                        urls++;
                } else if (strncmp(t.text[i], "hc:", 3) == 0) {
                        ck_assert_int_eq(t.kinds[i], SPAM_TOKEN_MARKUP);
                        comments++;
                }
        ck_assert_uint_eq(urls, 3);             /* remove.php, email, you */
        ck_assert_uint_eq(comments, 2);
        spam_tokens_done(&t);
}
END_TEST

/* f:rawline:KIND:B, the longest line of each part as sent: per part, before transfer
 * decoding, exact up to 80 bytes and then in buckets; none for a container. */
START_TEST(test_tokenizer_raw_lines)
{
        static const char msg[] =
                "Subject: x\n"
                "Content-Type: multipart/mixed; boundary=b\n"
                "\n"
                "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\n"
                "bbbbbbbbbb\n"
                "--b\nContent-Type: text/html\n\n"
                "<p>ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc</p>\n"
                "--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n"
                "QUFB\n"
                "--b--\n";
        static const char *const absent[] = {
                "f:rawline:other:0", "f:rawline:text:100", "f:rawline:html:120", "f:rawline:other:4",
                "f:rawline:text:10",
        };
        _cleanup_free_ char *big = NULL;
        SpamTokens t;
        size_t len;

        tokenize(msg, NULL, false, &t);
        if (!has(&t, "f:rawline:text:76"))
                dump(&t);
        ck_assert(has(&t, "f:rawline:text:76"));        /* the encoder's line, not the 85 letters */
        ck_assert(has(&t, "f:rawline:html:200"));       /* 120 bytes */
        ck_assert(has(&t, "f:rawline:other:72"));
        ck_assert(has(&t, "f:wrap:100"));               /* the reader's line: 85 letters */
        ck_assert(has(&t, "f:html-case:lower"));        /* <p>, </p>; the text part gives none */
        ck_assert(!has(&t, "f:html-case:none"));
        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                ck_assert_msg(!has(&t, absent[i]), "%s", absent[i]);
        spam_tokens_done(&t);

        /* a message that is not MIME is one part; 998 bytes is the last bucket before long */
        big = malloc(4096);
        ck_assert_ptr_nonnull(big);
        for (unsigned n = 997; n <= 999; n++) {
                len = (size_t) sprintf(big, "Subject: x\n\nshort\n");
                memset(big + len, 'x', n);
                len += n;
                strcpy(big + len, "\r\nend\n");
                tokenize(big, NULL, false, &t);
                ck_assert(has(&t, n <= 998 ? "f:rawline:text:998" : "f:rawline:text:long"));
                ck_assert(!has(&t, n <= 998 ? "f:rawline:text:long" : "f:rawline:text:998"));
                spam_tokens_done(&t);
        }
}
END_TEST

START_TEST(test_tokenizer_garbage)
{
        static const char *inputs[] = {
                "",
                "\n\n\n",
                "no header at all, just words\n",
                "Content-Type: text/html\n\n<a href=\"http://",
                "Subject: =?utf-8?B?////?=\n\n\xff\xfe\x80 bytes\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                SpamTokens t;

                tokenize(inputs[i], "999.1.1.1", true, &t);
                /* at least the text-size feature */
                ck_assert_uint_ge(t.n, 1);
                spam_tokens_done(&t);
        }
}
END_TEST

/* The folding table agrees with glibc's C.UTF-8 towlower() over the scripts it covers,
 * except where it follows Unicode case folding instead (final sigma, long s). */
START_TEST(test_fold_matches_libc)
{
        static const struct {
                uint32_t first, last;
        } ranges[] = {
                { 0x0000, 0x017F }, { 0x0370, 0x03FF }, { 0x0400, 0x052F }, { 0x0531, 0x0556 },
                { 0x1E00, 0x1EFF }, { 0xFF21, 0xFF3A },
        };
        locale_t l;

        l = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
        if (!l)
                return;         /* no C.UTF-8 here: the table cases below still run */

        for (size_t r = 0; r < ELEMENTSOF(ranges); r++)
                for (uint32_t c = ranges[r].first; c <= ranges[r].last; c++) {
                        if (c == 0x17F || c == 0x3C2)
                                continue;
                        ck_assert_msg(spam_unichar_fold(c) == (uint32_t) towlower_l((wint_t) c, l),
                                      "U+%04X: %04X, libc %04X", c, spam_unichar_fold(c),
                                      (unsigned) towlower_l((wint_t) c, l));
                }
        freelocale(l);
}
END_TEST

START_TEST(test_fold_table)
{
        static const uint32_t table[][2] = {
                { 'A', 'a' }, { 'z', 'z' }, { '0', '0' },
                { 0xC9, 0xE9 },         /* É */
                { 0xD7, 0xD7 },         /* × */
                { 0xDF, 0xDF },         /* ß */
                { 0x130, 'i' },         /* İ */
                { 0x17F, 's' },         /* ſ */
                { 0x178, 0xFF },        /* Ÿ */
                { 0x141, 0x142 },       /* Ł */
                { 0x391, 0x3B1 },       /* Α */
                { 0x3A3, 0x3C3 },       /* Σ */
                { 0x3C2, 0x3C3 },       /* ς */
                { 0x386, 0x3AC },       /* Ά */
                { 0x401, 0x451 },       /* Ё */
                { 0x416, 0x436 },       /* Ж */
                { 0x490, 0x491 },       /* Ґ */
                { 0x1E9E, 0xDF },       /* ẞ */
                { 0x1EA0, 0x1EA1 },     /* Ạ */
                { 0xFF21, 0xFF41 },     /* Ａ */
                { 0x4E2D, 0x4E2D },     /* 中 */
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                ck_assert_msg(spam_unichar_fold(table[i][0]) == table[i][1], "U+%04X", table[i][0]);
}
END_TEST

static Suite* spam_tokenizer_suite(void) {
        Suite *s = suite_create("spam-tokenizer");
        TCase *tc;

        tc = tcase_create("messages");
        tcase_add_test(tc, test_tokenizer_cases);
        tcase_add_test(tc, test_tokenizer_no_bigrams);
        tcase_add_test(tc, test_tokenizer_markup_option);
        tcase_add_test(tc, test_tokenizer_shapes);
        tcase_add_test(tc, test_tokenizer_bigram_window);
        tcase_add_test(tc, test_tokenizer_bigram_hash);
        tcase_add_test(tc, test_tokenizer_parts);
        tcase_add_test(tc, test_tokenizer_parts_many);
        tcase_add_test(tc, test_tokenizer_word_alignment);
        tcase_add_test(tc, test_tokenizer_field_families);
        tcase_add_test(tc, test_tokenizer_on_word_and_limits);
        tcase_add_test(tc, test_tokenizer_raw_lines);
        tcase_add_test(tc, test_tokenizer_hidden_kinds);
        tcase_add_test(tc, test_tokenizer_html_case);
        tcase_add_test(tc, test_tokenizer_garbage);
        suite_add_tcase(s, tc);

        tc = tcase_create("folding");
        tcase_add_test(tc, test_fold_matches_libc);
        tcase_add_test(tc, test_fold_table);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(spam_tokenizer_suite);
