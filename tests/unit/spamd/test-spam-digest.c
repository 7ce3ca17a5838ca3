/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include <openssl/evp.h>

#include "check-main.h"
#include "spam-digest.h"

#define SENT "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"

static void digest(const char *s, uint8_t ret[static SPAM_DIGEST_SIZE]) {
        spam_message_digest(s, strlen(s), ret);
}

/* Copies of SENT as a mailbox or a later hop holds them: all must be SENT to the digest. */
static const struct {
        const char *name;
        const char *text;
} same_table[] = {
        { "as sent", SENT },
        { "LF line ends", "From: alice@example.org\nTo: bob@example.org\nSubject: hi\n\nHello.\n" },
        { "mbox From line", "From alice@example.org Fri Nov 27 10:00:00 2026\n" SENT },
        { "trace fields", "Return-Path: <alice@example.org>\r\nDelivered-To: bob@example.org\r\n"
                          "Received: from mx.example.org\r\n\tby imap.example.org; Fri, 27 Nov 2026\r\n" SENT },
        { "filter verdicts", "X-Spam-Status: No, score=0.01\r\nX-Spam-Score: 0.01\r\n"
                             "Authentication-Results: mx.example.org; dkim=pass\r\n" SENT },
        { "mailbox bookkeeping", "From: alice@example.org\r\nTo: bob@example.org\r\nStatus: RO\r\nX-UID: 7\r\n"
                                 "Subject: hi\r\nContent-Length: 8\r\n\r\nHello.\r\n" },
        { "empty lines at the end", SENT "\r\n\r\n" },
        { "folded skipped field", "ARC-Seal: i=1; a=rsa-sha256;\r\n  b=abc\r\n" SENT },
        { "case of the field name", "received: from x\r\nX-SPAM-FLAG: YES\r\n" SENT },
};

/* Changes of the message itself: none may give SENT's digest. */
static const struct {
        const char *name;
        const char *text;
} other_table[] = {
        { "other body", "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello!\r\n" },
        { "other subject", "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: ho\r\n\r\nHello.\r\n" },
        { "extra field of the author", "X-Mailer: mutt\r\n" SENT },
        { "empty line inside the body", "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\n\r\nHello.\r\n" },
        { "trailing white space", "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello. \r\n" },
        { "continuation of a kept field", "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n there\r\n\r\nHello.\r\n" },
};

START_TEST(test_same)
{
        uint8_t want[SPAM_DIGEST_SIZE], got[SPAM_DIGEST_SIZE];
        unsigned len = 0;

        /* as sent, it is the plain SHA-256 of the bytes */
        ck_assert_int_eq(EVP_Digest(SENT, strlen(SENT), want, &len, EVP_sha256(), NULL), 1);
        for (size_t i = 0; i < ELEMENTSOF(same_table); i++) {
                digest(same_table[i].text, got);
                ck_assert_msg(memcmp(got, want, sizeof(want)) == 0, "%s: another digest", same_table[i].name);
        }
}
END_TEST

START_TEST(test_other)
{
        uint8_t sent[SPAM_DIGEST_SIZE], got[SPAM_DIGEST_SIZE];

        digest(SENT, sent);
        for (size_t i = 0; i < ELEMENTSOF(other_table); i++) {
                digest(other_table[i].text, got);
                ck_assert_msg(memcmp(got, sent, sizeof(sent)) != 0, "%s: the same digest", other_table[i].name);
        }
}
END_TEST

START_TEST(test_odd_input)
{
        static const char nul[] = "Subject: a\0b\r\n\r\nx\0y";
        uint8_t a[SPAM_DIGEST_SIZE], b[SPAM_DIGEST_SIZE], zero[SPAM_DIGEST_SIZE] = {};

        /* empty, no header block, NUL bytes, no line end at all: a digest each */
        spam_message_digest("", 0, a);
        ck_assert(memcmp(a, zero, sizeof(zero)) != 0);
        spam_message_digest("just text", 9, a);
        spam_message_digest("just text\n", 10, b);
        ck_assert_mem_eq(a, b, sizeof(a));
        spam_message_digest(nul, sizeof(nul) - 1, a);
        spam_message_digest(nul, 12, b);
        ck_assert(memcmp(a, b, sizeof(a)) != 0);
}
END_TEST

static Suite* spam_digest_suite(void) {
        Suite *s = suite_create("spam-digest");
        TCase *tc = tcase_create("digest");

        tcase_add_test(tc, test_same);
        tcase_add_test(tc, test_other);
        tcase_add_test(tc, test_odd_input);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(spam_digest_suite);
