/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "spam-token.h"

/* The test vectors of the SipHash paper's reference implementation: key 00 01 .. 0f,
 * message 00 01 .. (n − 1), SipHash-2-4 with 64-bit output, for n = 1 .. 63 (n = 15 is
 * the worked example of the paper's appendix A, a129ca6149be45e5). spam_token_hash()
 * hashes the prefix length as one byte first; with an empty prefix that byte is 00, the
 * first byte of every vector, so the vectors test the hash as the tokenizer uses it. */
static const uint64_t siphash_vectors[63] = {
        UINT64_C(0x74f839c593dc67fd), UINT64_C(0x0d6c8009d9a94f5a), UINT64_C(0x85676696d7fb7e2d),
        UINT64_C(0xcf2794e0277187b7), UINT64_C(0x18765564cd99a68d), UINT64_C(0xcbc9466e58fee3ce),
        UINT64_C(0xab0200f58b01d137), UINT64_C(0x93f5f5799a932462), UINT64_C(0x9e0082df0ba9e4b0),
        UINT64_C(0x7a5dbbc594ddb9f3), UINT64_C(0xf4b32f46226bada7), UINT64_C(0x751e8fbc860ee5fb),
        UINT64_C(0x14ea5627c0843d90), UINT64_C(0xf723ca908e7af2ee), UINT64_C(0xa129ca6149be45e5),
        UINT64_C(0x3f2acc7f57c29bdb), UINT64_C(0x699ae9f52cbe4794), UINT64_C(0x4bc1b3f0968dd39c),
        UINT64_C(0xbb6dc91da77961bd), UINT64_C(0xbed65cf21aa2ee98), UINT64_C(0xd0f2cbb02e3b67c7),
        UINT64_C(0x93536795e3a33e88), UINT64_C(0xa80c038ccd5ccec8), UINT64_C(0xb8ad50c6f649af94),
        UINT64_C(0xbce192de8a85b8ea), UINT64_C(0x17d835b85bbb15f3), UINT64_C(0x2f2e6163076bcfad),
        UINT64_C(0xde4daaaca71dc9a5), UINT64_C(0xa6a2506687956571), UINT64_C(0xad87a3535c49ef28),
        UINT64_C(0x32d892fad841c342), UINT64_C(0x7127512f72f27cce), UINT64_C(0xa7f32346f95978e3),
        UINT64_C(0x12e0b01abb051238), UINT64_C(0x15e034d40fa197ae), UINT64_C(0x314dffbe0815a3b4),
        UINT64_C(0x027990f029623981), UINT64_C(0xcadcd4e59ef40c4d), UINT64_C(0x9abfd8766a33735c),
        UINT64_C(0x0e3ea96b5304a7d0), UINT64_C(0xad0c42d6fc585992), UINT64_C(0x187306c89bc215a9),
        UINT64_C(0xd4a60abcf3792b95), UINT64_C(0xf935451de4f21df2), UINT64_C(0xa9538f0419755787),
        UINT64_C(0xdb9acddff56ca510), UINT64_C(0xd06c98cd5c0975eb), UINT64_C(0xe612a3cb9ecba951),
        UINT64_C(0xc766e62cfcadaf96), UINT64_C(0xee64435a9752fe72), UINT64_C(0xa192d576b245165a),
        UINT64_C(0x0a8787bf8ecb74b2), UINT64_C(0x81b3e73d20b49b6f), UINT64_C(0x7fa8220ba3b2ecea),
        UINT64_C(0x245731c13ca42499), UINT64_C(0xb78dbfaf3a8d83bd), UINT64_C(0xea1ad565322a1a0b),
        UINT64_C(0x60e61c23a3795013), UINT64_C(0x6606d7e446282b93), UINT64_C(0x6ca4ecb15c5f91e1),
        UINT64_C(0x9f626da15c9625f3), UINT64_C(0xe51b38608ef25f57), UINT64_C(0x958a324ceb064572),
};

static const SpamTokenKey vector_key = {
        .bytes = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
};

START_TEST(test_siphash_vectors)
{
        uint8_t msg[64];

        for (unsigned i = 0; i < sizeof(msg); i++)
                msg[i] = (uint8_t) i;

        for (size_t n = 1; n <= 63; n++)
                ck_assert_msg(spam_token_hash(&vector_key, "", msg + 1, n - 1) == siphash_vectors[n - 1],
                              "vector %zu", n);
        ck_assert(spam_token_hash(&vector_key, NULL, msg + 1, 14) == UINT64_C(0xa129ca6149be45e5));
}
END_TEST

/* spam_token_hash() hashes an input of up to 128 bytes in one pass from a buffer and a
 * longer one as a stream; both must be SipHash-2-4. Values from an independent
 * implementation of the paper's algorithm that reproduces the vectors above: the vector
 * message (00 01 .. ff 00 ..) of n bytes, and the input 02 'w' ':' followed by k 'a'. */
START_TEST(test_siphash_long)
{
        static const struct {
                size_t n;
                uint64_t hash;
        } vectors[] = {
                { 127, UINT64_C(0x9e7db1ba81dc7e3a) },
                { 128, UINT64_C(0xdeb79e256c8736ae) },
                { 129, UINT64_C(0x10498d0645502cf8) },
                { 200, UINT64_C(0x10849fe512591651) },
                { 300, UINT64_C(0x4b0b710db6117839) },
        }, words[] = {
                { 125, UINT64_C(0x8f2eeb6d980af1db) },
                { 126, UINT64_C(0x5f25eb8fd2a11f37) },
                { 200, UINT64_C(0x57a4ddf90bb75b57) },
        };
        uint8_t msg[300];
        char a[200];

        for (unsigned i = 0; i < sizeof(msg); i++)
                msg[i] = (uint8_t) i;
        memset(a, 'a', sizeof(a));

        for (size_t i = 0; i < ELEMENTSOF(vectors); i++)
                ck_assert_msg(spam_token_hash(&vector_key, "", msg + 1, vectors[i].n - 1) == vectors[i].hash,
                              "vector of %zu bytes", vectors[i].n);
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                ck_assert_msg(spam_token_hash(&vector_key, "w:", a, words[i].n) == words[i].hash,
                              "w: and %zu letters", words[i].n);
}
END_TEST

START_TEST(test_token_hash_prefix)
{
        static const SpamTokenKey other = { .bytes = "another key 0123" };
        static const struct {
                const char *p1, *t1, *p2, *t2;
        } differ[] = {
                { "h:a", "b", "h:ab", "" },
                { "w:", "viagra", "d:", "viagra" },
                { "w:", "abc", "w:", "abd" },
                { "", "w:x", "w:", "x" },
        };

        for (size_t i = 0; i < ELEMENTSOF(differ); i++)
                ck_assert_msg(spam_token_hash(&vector_key, differ[i].p1, differ[i].t1, strlen(differ[i].t1)) !=
                              spam_token_hash(&vector_key, differ[i].p2, differ[i].t2, strlen(differ[i].t2)),
                              "case %zu", i);

        /* deterministic, and keyed */
        ck_assert(spam_token_hash(&vector_key, "w:", "spam", 4) == spam_token_hash(&vector_key, "w:", "spam", 4));
        ck_assert(spam_token_hash(&vector_key, "w:", "spam", 4) != spam_token_hash(&other, "w:", "spam", 4));
}
END_TEST

START_TEST(test_token_kind_strings)
{
        ck_assert_str_eq(spam_token_kind_to_string(SPAM_TOKEN_WORD), "word");
        ck_assert_str_eq(spam_token_kind_to_string(SPAM_TOKEN_DEOBFUSCATED), "deobfuscated");
        ck_assert_str_eq(spam_token_kind_to_string(SPAM_TOKEN_FEATURE), "feature");
        ck_assert_ptr_null(spam_token_kind_to_string(_SPAM_TOKEN_KIND_MAX));
        for (int k = 0; k < _SPAM_TOKEN_KIND_MAX; k++)
                ck_assert_ptr_nonnull(spam_token_kind_to_string(k));
}
END_TEST

START_TEST(test_tokens_dedup)
{
        SpamTokens t = SPAM_TOKENS_NULL;
        const size_t n = 50000;

        ck_assert(!spam_tokens_contains(&t, 42));
        ck_assert_int_eq(spam_tokens_find(&t, 42), -ENOENT);

        /* many, so the index grows several times; hashes with equal low bits collide */
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(spam_tokens_add(&t, (uint64_t) i << 20, SPAM_TOKEN_WORD, NULL, 0), 1);
        for (size_t i = 0; i < n; i += 7)
                ck_assert_int_eq(spam_tokens_add(&t, (uint64_t) i << 20, SPAM_TOKEN_BIGRAM, NULL, 0), 0);
        ck_assert_uint_eq(t.n, n);
        for (size_t i = 0; i < n; i++) {
                ck_assert(spam_tokens_contains(&t, (uint64_t) i << 20));
                ck_assert_int_eq(spam_tokens_find(&t, (uint64_t) i << 20), (ssize_t) i);
                ck_assert_uint_eq(t.hashes[i], (uint64_t) i << 20);
                ck_assert_uint_eq(t.kinds[i], SPAM_TOKEN_WORD);
        }
        ck_assert(!spam_tokens_contains(&t, (uint64_t) n << 20));
        ck_assert_int_eq(spam_tokens_find(&t, (uint64_t) n << 20), -ENOENT);
        ck_assert(!spam_tokens_contains(&t, 1));
        ck_assert_ptr_null(t.text);

        /* hash 0 is a token like any other */
        ck_assert_int_eq(spam_tokens_add(&t, 0, SPAM_TOKEN_FEATURE, NULL, 0), 0);
        ck_assert_int_eq(spam_tokens_add(&t, 1, SPAM_TOKEN_FEATURE, NULL, 0), 1);

        spam_tokens_done(&t);
        ck_assert_uint_eq(t.n, 0);
        ck_assert_ptr_null(t.hashes);
        spam_tokens_done(&t);
}
END_TEST

START_TEST(test_tokens_keep_text)
{
        SpamTokens t = SPAM_TOKENS_NULL;

        t.keep_text = true;
        ck_assert_int_eq(spam_tokens_add(&t, 7, SPAM_TOKEN_WORD, "w:cheap", 7), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 8, SPAM_TOKEN_URL, "u:example.com-and-more", 13), 1);
        ck_assert_int_eq(spam_tokens_add(&t, 7, SPAM_TOKEN_WORD, "w:other", 7), 0);
        ck_assert_str_eq(t.text[0], "w:cheap");
        ck_assert_str_eq(t.text[1], "u:example.com");
        ck_assert_uint_eq(t.kinds[1], SPAM_TOKEN_URL);
        spam_tokens_done(&t);
}
END_TEST

/* Room made at once: the set neither moves its arrays nor rehashes while it fills up to
 * it, keeps what it held, and still grows past it. */
START_TEST(test_tokens_reserve)
{
        SpamTokens t = SPAM_TOKENS_NULL;
        uint64_t *hashes;
        uint32_t *index;

        t.keep_text = true;
        ck_assert_int_eq(spam_tokens_add(&t, 5, SPAM_TOKEN_WORD, "w:before", 8), 1);
        ck_assert_int_eq(spam_tokens_reserve(&t, 1000), 0);
        ck_assert_uint_ge(t.alloc, 1000);
        ck_assert_uint_ge(t.index_size, 2000);
        ck_assert(spam_tokens_contains(&t, 5));
        ck_assert_str_eq(t.text[0], "w:before");

        hashes = t.hashes;
        index = t.index;
        for (uint64_t i = 1; i < 1000; i++)
                ck_assert_int_eq(spam_tokens_add(&t, (i << 20) | 1, SPAM_TOKEN_WORD, "w:x", 3), 1);
        ck_assert_ptr_eq(t.hashes, hashes);
        ck_assert_ptr_eq(t.index, index);
        ck_assert_uint_eq(t.n, 1000);

        /* less than there is room for: nothing changes */
        ck_assert_int_eq(spam_tokens_reserve(&t, 10), 0);
        ck_assert_ptr_eq(t.index, index);

        for (uint64_t i = 1000; i < 5000; i++)
                ck_assert_int_eq(spam_tokens_add(&t, (i << 20) | 1, SPAM_TOKEN_WORD, NULL, 0), 1);
        for (uint64_t i = 1; i < 5000; i++)
                ck_assert(spam_tokens_contains(&t, (i << 20) | 1));
        ck_assert(spam_tokens_contains(&t, 5));
        ck_assert_int_eq(spam_tokens_add(&t, 5, SPAM_TOKEN_WORD, NULL, 0), 0);

        ck_assert_int_eq(spam_tokens_reserve(&t, SIZE_MAX / 4), -E2BIG);
        spam_tokens_done(&t);

        /* on an empty set */
        ck_assert_int_eq(spam_tokens_reserve(&t, 0), 0);
        ck_assert_int_eq(spam_tokens_add(&t, 9, SPAM_TOKEN_WORD, NULL, 0), 1);
        ck_assert(spam_tokens_contains(&t, 9));
        spam_tokens_done(&t);
}
END_TEST

static Suite* spam_token_suite(void) {
        Suite *s = suite_create("spam-token");
        TCase *tc;

        tc = tcase_create("siphash");
        tcase_add_test(tc, test_siphash_vectors);
        tcase_add_test(tc, test_siphash_long);
        tcase_add_test(tc, test_token_hash_prefix);
        tcase_add_test(tc, test_token_kind_strings);
        suite_add_tcase(s, tc);

        tc = tcase_create("tokens");
        tcase_add_test(tc, test_tokens_dedup);
        tcase_add_test(tc, test_tokens_keep_text);
        tcase_add_test(tc, test_tokens_reserve);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(spam_token_suite);
