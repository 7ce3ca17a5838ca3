/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "mbox.h"

typedef struct MboxCase {
        const char *name;
        const char *input;
        size_t input_len;       /* 0: strlen(input) */
        int ret;                /* of the line that fails, or of mbox_reader_finish() */
        size_t n_messages;
        const char *messages[4];
        size_t lens[4];         /* 0: strlen */
} MboxCase;

static const MboxCase mbox_cases[] = {
        { "two messages", "From a@b Sat Nov 28 12:00:00 2026\nSubject: 1\n\nbody\n\nFrom c@d Sat Nov 28 12:00:01 2026\nSubject: 2\n\nbody 2\n",
          .n_messages = 2, .messages = { "Subject: 1\n\nbody\n", "Subject: 2\n\nbody 2\n" } },
        { "quoting undone once", "From a\nX: 1\n\n>From here\n>>From there\n>Fromage\n> From space\nFrom glued to the line before\n",
          .n_messages = 1, .messages = { "X: 1\n\nFrom here\n>From there\n>Fromage\n> From space\nFrom glued to the line before\n" } },
        { "CRLF", "From a\r\nX: 1\r\n\r\nb\r\n\r\nFrom b\r\nY: 2\r\n",
          .n_messages = 2, .messages = { "X: 1\r\n\r\nb\r\n", "Y: 2\r\n" } },
        { "two empty lines: one is the message's", "From a\nX\n\n\nFrom b\nY\n",
          .n_messages = 2, .messages = { "X\n\n", "Y\n" } },
        { "an empty line not before From stays", "From a\nX\n\nbody\n\n\nmore\n",
          .n_messages = 1, .messages = { "X\n\nbody\n\n\nmore\n" } },
        { "no line end at the end", "From a\nX: 1\n\nbody",
          .n_messages = 1, .messages = { "X: 1\n\nbody" } },
        { "an empty message", "From a\n\nFrom b\nX\n",
          .n_messages = 2, .messages = { "", "X\n" } },
        { "NUL bytes are data", "From a\nX\0Y\n", .input_len = 11,
          .n_messages = 1, .messages = { "X\0Y\n" }, .lens = { 4 } },
        { "not an mbox", "Received: from x\nFrom y\n", .ret = -EBADMSG },
        { "From: is not From_", "From: a@b\n\nbody\n", .ret = -EBADMSG },
        { "empty input", "", .ret = -ENODATA },
};

typedef struct Collect {
        char *msgs[8];
        size_t lens[8];
        unsigned begun, ended;
        int fail_data;          /* data() returns this once the first message has bytes */
} Collect;

static int on_begin(unsigned index, void *userdata) {
        Collect *c = userdata;

        ck_assert_uint_eq(index, c->begun + 1);
        ck_assert_uint_eq(c->begun, c->ended);  /* the last message ended first */
        ck_assert_uint_lt(c->begun, 8);
        c->begun = index;
        c->msgs[index - 1] = calloc(1, 1);
        ck_assert_ptr_nonnull(c->msgs[index - 1]);
        return 0;
}

static int on_data(const char *p, size_t n, void *userdata) {
        Collect *c = userdata;
        size_t i = c->begun - 1;

        ck_assert_uint_gt(c->begun, c->ended);
        if (c->fail_data && c->lens[i] > 0)
                return c->fail_data;
        c->msgs[i] = realloc(c->msgs[i], c->lens[i] + n + 1);
        ck_assert_ptr_nonnull(c->msgs[i]);
        memcpy(c->msgs[i] + c->lens[i], p, n);
        c->lens[i] += n;
        return 0;
}

static int on_end(unsigned index, void *userdata) {
        Collect *c = userdata;

        ck_assert_uint_eq(index, c->begun);
        ck_assert_uint_eq(c->ended + 1, index);
        c->ended = index;
        return 0;
}

static const MboxCallbacks collect_callbacks = { .begin = on_begin, .data = on_data, .end = on_end };

/* Feeds input line by line (each with its line end); the first negative return, or that
 * of mbox_reader_finish(). */
static int feed(MboxReader *r, const char *input, size_t len) {
        size_t i = 0;
        int k;

        while (i < len) {
                const char *nl = memchr(input + i, '\n', len - i);
                size_t n = nl ? (size_t) (nl - (input + i)) + 1 : len - i;

                k = mbox_reader_line(r, input + i, n);
                if (k < 0)
                        return k;
                i += n;
        }
        return mbox_reader_finish(r);
}

START_TEST(test_mbox_cases)
{
        const MboxCase *t = &mbox_cases[_i];
        Collect c = {};
        MboxReader r = MBOX_READER_INIT(&collect_callbacks, &c);
        int k;

        k = feed(&r, t->input, t->input_len ?: strlen(t->input));
        ck_assert_msg(k == t->ret, "%s: returned %d, expected %d", t->name, k, t->ret);
        if (t->ret == 0) {
                ck_assert_msg(c.ended == t->n_messages, "%s: %u messages", t->name, c.ended);
                for (size_t i = 0; i < t->n_messages; i++) {
                        size_t want = t->lens[i] ?: strlen(t->messages[i]);

                        ck_assert_msg(c.lens[i] == want && memcmp(c.msgs[i], t->messages[i], want) == 0,
                                      "%s: message %zu is \"%.*s\"", t->name, i + 1, (int) c.lens[i], c.msgs[i]);
                }
        } else
                ck_assert_uint_eq(c.begun, 0);
        for (size_t i = 0; i < 8; i++)
                free(c.msgs[i]);
}
END_TEST

START_TEST(test_mbox_callback_error)
{
        /* a callback's error comes back, and nothing more is read */
        Collect c = { .fail_data = -EIO };
        MboxReader r = MBOX_READER_INIT(&collect_callbacks, &c);

        ck_assert_int_eq(mbox_reader_line(&r, "From a\n", 7), 0);
        ck_assert_int_eq(mbox_reader_line(&r, "X: 1\n", 5), 0);
        ck_assert_int_eq(mbox_reader_line(&r, "Y: 2\n", 5), -EIO);
        ck_assert_uint_eq(c.lens[0], 5);
        free(c.msgs[0]);
}
END_TEST

static Suite* mbox_suite(void) {
        Suite *s = suite_create("mbox");
        TCase *tc = tcase_create("split");

        tcase_add_loop_test(tc, test_mbox_cases, 0, sizeof(mbox_cases) / sizeof(mbox_cases[0]));
        tcase_add_test(tc, test_mbox_callback_error);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(mbox_suite);
