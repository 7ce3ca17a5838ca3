/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "check-main.h"
#include "cleanup.h"
#include "spam-tokenizer.h"

static const SpamTokenKey key = { .bytes = "unit-test-key-01" };

static void tokenize(const char *msg, const char *client_ip, bool bigrams, SpamTokens *ret) {
        SpamTokenizerOptions opts = {
                .key = &key,
                .client_ip = client_ip,
                .bigrams = bigrams,
                .keep_text = true,
        };

        *ret = (SpamTokens) SPAM_TOKENS_NULL;
        ck_assert_int_eq(spam_tokenize(msg, strlen(msg), &opts, ret), 0);
}

/* Has the set the token, by its printable form and by its hash? */
static bool has(const SpamTokens *t, const char *token) {
        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->text[i], token) == 0) {
                        const char *colon = strrchr(token, ':');
                        char prefix[128];
                        size_t pl;

                        /* the hash is of the prefix (up to the last ':' before the text) and
                         * the text; for ip: and u: tokens the text may hold ':' itself */
                        if (strncmp(token, "ip:", 3) == 0 || strncmp(token, "u:", 2) == 0 ||
                            strncmp(token, "b:", 2) == 0)
                                colon = strchr(token, ':');
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
                  "h:received:192.0.2.7", "h:received:mx.example.com", "w:hello", "w:there", "f:type:text/plain" },
                { "h:x-spam-status:yes", "hf:x-spam-status", "h:date:tue", "h:received:4711", "h:received:from",
                  "w:cheap", "h:subject:Cheap" },
        },
        {
                "url hosts from html and text",
                "Content-Type: text/html\n"
                "\n"
                "<a href=\"http://WWW.Spam-Site.example.com/x?y\">click</a> and "
                "<img src=\"https://198.51.100.4/i.gif\"> vi<b></b>agra\n",
                NULL,
                { "u:www.spam-site.example.com", "u:example.com", "u:198.51.100.4", "f:url-ip", "w:click",
                  "w:viagra", "f:insertions:1", "f:html-only", "f:type:text/html" },
                { "w:vi", "w:agra", "w:href" },
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
                { "b:alpha 1 beta", "b:alpha 2 gamma", "b:alpha 3 delta", "b:alpha 4 epsilon", "b:beta 4 zeta",
                  "b:epsilon 1 zeta" },
                { "b:alpha 5 zeta", "b:beta 1 alpha", "b:alpha 1 gamma" },
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
        tcase_add_test(tc, test_tokenizer_on_word_and_limits);
        tcase_add_test(tc, test_tokenizer_garbage);
        suite_add_tcase(s, tc);

        tc = tcase_create("folding");
        tcase_add_test(tc, test_fold_matches_libc);
        tcase_add_test(tc, test_fold_table);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(spam_tokenizer_suite);
