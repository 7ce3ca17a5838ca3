/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The statistics store of mailsec-spamd: journal, GDBM counts, their agreement after
 * crashes, rebuilds and damage. Every test works in its own temporary directory. */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check-main.h"
#include "cleanup.h"
#include "fd-util.h"
#include "spam-store.h"

static char test_dir[PATH_MAX];

static void rm_rf_flat(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        (void) rmdir(path);
}

static uint64_t test_memory_limit;

static void setup(void) {
        const char *tmp = getenv("TMPDIR") ?: "/var/tmp";

        test_memory_limit = UINT64_MAX;
        snprintf(test_dir, sizeof(test_dir), "%s/test-spam-store-XXXXXX", tmp);
        ck_assert_ptr_nonnull(mkdtemp(test_dir));
}

static void teardown(void) {
        rm_rf_flat(test_dir);
}

static char* path_in(const char *name) {
        static char buf[PATH_MAX + 64];

        snprintf(buf, sizeof(buf), "%s/%s", test_dir, name);
        return buf;
}

static bool exists(const char *name) {
        return access(path_in(name), F_OK) == 0;
}

static uint64_t file_size(const char *name) {
        struct stat st;

        ck_assert_int_eq(stat(path_in(name), &st), 0);
        return (uint64_t) st.st_size;
}

static ino_t file_inode(const char *name) {
        struct stat st;

        ck_assert_int_eq(stat(path_in(name), &st), 0);
        return st.st_ino;
}

static void make_digest(unsigned n, uint8_t d[static SPAM_DIGEST_SIZE]) {
        for (unsigned i = 0; i < SPAM_DIGEST_SIZE; i++)
                d[i] = (uint8_t) ((n * 2654435761U) >> (i % 4 * 8)) ^ (uint8_t) i;
}

/* A small PRNG, so that failures reproduce. */
static uint64_t rng_state;
static uint64_t rng(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

static int learn(SpamStore *s, unsigned n, SpamClass class, const char *domain,
                 const uint64_t *tokens, size_t n_tokens, char * const *words, size_t n_words) {
        SpamLearn l = {
                .class = class,
                .source = SPAM_SOURCE_REPORT,
                .reporter = "uid:1000",
                .domain = domain,
                .tokens = tokens,
                .n_tokens = n_tokens,
                .words = words,
                .n_words = n_words,
        };

        make_digest(n, l.digest);
        return spam_store_learn(s, &l);
}

static SpamCounts counts(SpamStore *s, const char *domain, uint64_t token) {
        SpamCounts c = { 77, 77 };

        ck_assert_int_eq(spam_store_counts(s, domain, token, &c), 0);
        return c;
}

static SpamTotals totals(SpamStore *s, const char *domain) {
        SpamTotals t = { 77, 77 };

        ck_assert_int_eq(spam_store_totals(s, domain, &t), 0);
        return t;
}

#define assert_counts(s, domain, token, sp, hm)                                 \
        do {                                                                    \
                SpamCounts _c = counts(s, domain, token);                       \
                ck_assert_uint_eq(_c.spam, sp);                                 \
                ck_assert_uint_eq(_c.ham, hm);                                  \
        } while (0)

#define assert_totals(s, domain, sp, hm)                                        \
        do {                                                                    \
                SpamTotals _t = totals(s, domain);                              \
                ck_assert_uint_eq(_t.spam, sp);                                 \
                ck_assert_uint_eq(_t.ham, hm);                                  \
        } while (0)

static SpamClass class_of(SpamStore *s, unsigned n) {
        uint8_t d[SPAM_DIGEST_SIZE];
        SpamClass c = _SPAM_CLASS_INVALID;
        int r;

        make_digest(n, d);
        r = spam_store_class_of(s, d, &c);
        if (r == -ENOENT)
                return _SPAM_CLASS_INVALID;
        ck_assert_int_eq(r, 0);
        return c;
}

static int forget(SpamStore *s, unsigned n) {
        uint8_t d[SPAM_DIGEST_SIZE];

        make_digest(n, d);
        return spam_store_forget(s, d, SPAM_SOURCE_ADMIN, "uid:0");
}

/* The memory the stores of a test may hold all counts in (spam_store_set_memory_limit());
 * loop tests run with each of these: the table of all counts, GDBM behind the cache only,
 * and a table that outgrows its limit on the way and is dropped for the cache. */
static const uint64_t memory_limits[] = { UINT64_MAX, 0, 256 * 1024 };

static SpamStore* open_store(void) {
        SpamStore *s = NULL;

        ck_assert_int_eq(spam_store_open(test_dir, &s), 0);
        ck_assert_ptr_nonnull(s);
        if (test_memory_limit != UINT64_MAX)
                spam_store_set_memory_limit(s, test_memory_limit);
        return s;
}

/* The reference CRC-32 (bit by bit), to forge records in the parser table. */
static uint32_t ref_crc32(uint32_t crc, const uint8_t *p, size_t n) {
        crc = ~crc;
        while (n--) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (UINT32_C(0xedb88320) & -(crc & 1));
        }
        return ~crc;
}

static void fix_crc(uint8_t *rec, size_t len) {
        uint32_t c = ref_crc32(ref_crc32(0, rec, 12), rec + 16, len - 16);

        for (int i = 0; i < 4; i++)
                rec[12 + i] = (uint8_t) (c >> (8 * i));
}

static uint8_t* read_journal(size_t *ret_size) {
        char *data = NULL;

        ck_assert_int_eq(read_full_file(path_in("journal"), 64 * 1024 * 1024, &data, ret_size), 0);
        return (uint8_t*) data;
}

/* ---- parser ---- */

typedef struct ParseCase {
        const char *name;
        size_t offset;          /* byte to change (SIZE_MAX: none) */
        uint8_t value;
        bool recrc;             /* make the CRC match again after the change */
        size_t size;            /* bytes given to the parser (0: the whole record) */
        int expected;           /* > 0: the record's length */
} ParseCase;

START_TEST(test_record_parse_table)
{
        static const uint64_t tokens[] = { 30, 10, 20, 10 };
        static char *const words[] = { "viagra", "cheap", "pills", "cheap" };
        _cleanup_free_ uint8_t *journal = NULL;
        SpamStore *s = open_store();
        SpamLearn l = {};
        size_t size, len;
        uint64_t seq = 0;
        bool forget_flag = true;

        /* The reference CRC is the standard one. */
        ck_assert_uint_eq(ref_crc32(0, (const uint8_t*) "123456789", 9), UINT32_C(0xcbf43926));

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, "Example.ORG", tokens, 4, words, 4), 1);
        s = spam_store_free(s);
        journal = read_journal(&size);
        len = size;
        /* header + 3 distinct tokens + "uid:1000" + "example.org" + 3 words */
        ck_assert_uint_eq(len, 80 + 3 * 8 + 8 + 11 + (1 + 5) + (1 + 5) + (1 + 6));

        ck_assert_int_eq(spam_journal_record_parse(journal, len, &l, &forget_flag, &seq), (int) len);
        ck_assert(!forget_flag);
        ck_assert_uint_eq(seq, 1);
        ck_assert_int_eq(l.class, SPAM_CLASS_SPAM);
        ck_assert_int_eq(l.source, SPAM_SOURCE_REPORT);
        ck_assert_str_eq(l.reporter, "uid:1000");
        ck_assert_str_eq(l.domain, "example.org");
        ck_assert_uint_eq(l.n_tokens, 3);
        ck_assert_uint_eq(l.tokens[0], 10);
        ck_assert_uint_eq(l.tokens[1], 20);
        ck_assert_uint_eq(l.tokens[2], 30);
        ck_assert_uint_eq(l.n_words, 3);
        ck_assert_str_eq(l.words[0], "cheap");
        ck_assert_str_eq(l.words[1], "pills");
        ck_assert_str_eq(l.words[2], "viagra");
        ck_assert_uint_ne(l.time, 0);
        spam_learn_done(&l);
        ck_assert_ptr_null(l.allocation);

        const ParseCase cases[] = {
                { "whole",                      SIZE_MAX, 0,    false, 0,       (int) len },
                { "empty",                      SIZE_MAX, 0,    false, 1,       0 },
                { "magic only",                 SIZE_MAX, 0,    false, 4,       0 },
                { "half a header",              SIZE_MAX, 0,    false, 40,      0 },
                { "header without body",        SIZE_MAX, 0,    false, 80,      0 },
                { "one byte short",             SIZE_MAX, 0,    false, len - 1, 0 },
                { "wrong magic",                1,        'X',  false, 0,       -EBADMSG },
                { "wrong magic, short",         0,        0,    false, 3,       -EBADMSG },
                { "version 2",                  4,        2,    true,  0,       -EBADMSG },
                { "kind 2",                     6,        2,    true,  0,       -EBADMSG },
                { "class 2",                    7,        2,    true,  0,       -EBADMSG },
                { "length below the header",    8,        10,   true,  0,       -EBADMSG },
                { "length 16 MiB",              11,       1,    true,  0,       -EBADMSG },
                { "crc",                        12,       0x55, false, 0,       -EBADMSG },
                { "payload bit, old crc",       90,       0x01, false, 0,       -EBADMSG },
                { "sequence number 0",          16,       0,    true,  0,       -EBADMSG },
                { "source 3",                   64,       3,    true,  0,       -EBADMSG },
                { "reserved byte",              65,       1,    true,  0,       -EBADMSG },
                { "reporter length too long",   66,       200,  true,  0,       -EBADMSG },
                { "reserved field",             70,       1,    true,  0,       -EBADMSG },
                { "more tokens than fit",       72,       200,  true,  0,       -EBADMSG },
                { "tokens out of order",        80,       99,   true,  0,       -EBADMSG },
                { "control character in reporter", 80 + 24 + 1, '\n', true, 0,  -EBADMSG },
                { "upper case domain",          80 + 24 + 8, 'E', true,  0,       -EBADMSG },
                { "space in domain",            80 + 24 + 8 + 3, ' ', true, 0,    -EBADMSG },
                { "word length zero",           80 + 24 + 8 + 11, 0, true, 0,     -EBADMSG },
                { "word with NUL",              80 + 24 + 8 + 11 + 2, 0, true, 0, -EBADMSG },
                { "words out of order",         80 + 24 + 8 + 11 + 1, 'z', true, 0, -EBADMSG },
                { "last word overruns",         80 + 24 + 8 + 11 + 12, 7, true, 0, -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const ParseCase *c = cases + i;
                _cleanup_free_ uint8_t *copy = malloc(len);
                size_t n = c->size > 0 ? c->size - (c->size == 1) : len;
                int r;

                ck_assert_ptr_nonnull(copy);
                memcpy(copy, journal, len);
                if (c->offset != SIZE_MAX) {
                        copy[c->offset] = c->value;
                        /* the record holds the time it was written, so its CRC differs from
                         * run to run: a byte that already had the value (once in 256 runs
                         * for "crc") is changed another way */
                        if (copy[c->offset] == journal[c->offset])
                                copy[c->offset] ^= 0xff;
                        if (c->recrc)
                                fix_crc(copy, len);
                }
                r = spam_journal_record_parse(copy, n, NULL, NULL, NULL);
                ck_assert_msg(r == c->expected, "%s: %d, expected %d", c->name, r, c->expected);

                /* With ret, the same answer, and nothing to free on errors. */
                l = (SpamLearn) {};
                r = spam_journal_record_parse(copy, n, &l, NULL, NULL);
                ck_assert_msg(r == c->expected, "%s (ret): %d, expected %d", c->name, r, c->expected);
                if (r <= 0)
                        ck_assert_ptr_null(l.allocation);
                spam_learn_done(&l);
        }
}
END_TEST

/* ---- learning ---- */

START_TEST(test_learn_lookup)
{
        static const uint64_t a[] = { 1, 2, 3 }, b[] = { 2, 3, 4 };
        _cleanup_(spam_store_freep) SpamStore *s = open_store();

        assert_totals(s, NULL, 0, 0);
        assert_counts(s, NULL, 1, 0, 0);

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, NULL, a, 3, NULL, 0), 1);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_HAM, NULL, b, 3, NULL, 0), 1);

        assert_counts(s, NULL, 1, 1, 0);
        assert_counts(s, NULL, 2, 1, 1);
        assert_counts(s, NULL, 3, 1, 1);
        assert_counts(s, NULL, 4, 0, 1);
        assert_counts(s, NULL, 99, 0, 0);
        assert_totals(s, NULL, 1, 1);
        ck_assert_int_eq(class_of(s, 1), SPAM_CLASS_SPAM);
        ck_assert_int_eq(class_of(s, 2), SPAM_CLASS_HAM);
        ck_assert_int_eq(class_of(s, 3), _SPAM_CLASS_INVALID);

        /* The secret: 16 bytes, only for its owner, the same after a reopen. */
        SpamTokenKey key = *spam_store_key(s);
        struct stat st;
        ck_assert_int_eq(stat(path_in("secret"), &st), 0);
        ck_assert_uint_eq(st.st_size, 16);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);
        s = spam_store_free(s);
        s = open_store();
        ck_assert_mem_eq(spam_store_key(s)->bytes, key.bytes, SPAM_TOKEN_KEY_SIZE);
}
END_TEST

START_TEST(test_learn_invalid)
{
        static const uint64_t t[] = { 1 };
        static char *const long_word[] = {
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        };
        static char *const empty_word[] = { "" };
        _cleanup_(spam_store_freep) SpamStore *s = open_store();
        SpamStoreStats st;
        SpamLearn l = { .class = SPAM_CLASS_SPAM, .source = SPAM_SOURCE_ADMIN, .tokens = t, .n_tokens = 1 };

        l.class = 2;
        ck_assert_int_eq(spam_store_learn(s, &l), -EINVAL);
        l.class = SPAM_CLASS_SPAM;
        l.source = 7;
        ck_assert_int_eq(spam_store_learn(s, &l), -EINVAL);
        l.source = SPAM_SOURCE_ADMIN;
        l.n_tokens = SPAM_STORE_TOKENS_MAX + 1;
        ck_assert_int_eq(spam_store_learn(s, &l), -EINVAL);
        l.n_tokens = 1;
        l.reporter = "mail:alice@example.org\r\nX-Injected: 1";
        ck_assert_int_eq(spam_store_learn(s, &l), -EINVAL);
        l.reporter = NULL;
        l.domain = "exa mple.org";
        ck_assert_int_eq(spam_store_learn(s, &l), -EINVAL);
        l.domain = NULL;
        l.words = long_word;
        l.n_words = 1;
        ck_assert_int_eq(spam_store_learn(s, &l), -EINVAL);
        l.words = empty_word;
        ck_assert_int_eq(spam_store_learn(s, &l), -EINVAL);
        ck_assert_int_eq(spam_store_counts(s, "bad domain", 1, &(SpamCounts) {}), -EINVAL);

        /* Nothing was journaled; a record without reporter, domain or words is fine. */
        ck_assert_int_eq(spam_store_stats(s, &st), 0);
        ck_assert_uint_eq(st.journal_records, 0);
        l.words = NULL;
        l.n_words = 0;
        ck_assert_int_eq(spam_store_learn(s, &l), 1);
        assert_counts(s, NULL, 1, 1, 0);
}
END_TEST

START_TEST(test_same_class_twice)
{
        static const uint64_t a[] = { 5, 6 };
        _cleanup_(spam_store_freep) SpamStore *s = open_store();
        SpamStoreStats st;
        uint64_t size;

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, NULL, a, 2, NULL, 0), 1);
        size = file_size("journal");
        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, NULL, a, 2, NULL, 0), 0);
        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, "example.org", a, 1, NULL, 0), 0);
        ck_assert_uint_eq(file_size("journal"), size);
        assert_counts(s, NULL, 5, 1, 0);
        assert_totals(s, NULL, 1, 0);
        ck_assert_int_eq(spam_store_stats(s, &st), 0);
        ck_assert_uint_eq(st.journal_records, 1);
        ck_assert_uint_eq(st.tokens, 2);

        /* After a flush the digest is found in the database: still a no-op. */
        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, NULL, a, 2, NULL, 0), 0);
        ck_assert_uint_eq(file_size("journal"), size);
}
END_TEST

START_TEST(test_move)
{
        static const uint64_t a[] = { 1, 2, 3 }, a2[] = { 3, 4 };
        static char *const w[] = { "money" };
        _cleanup_(spam_store_freep) SpamStore *s = open_store();
        SpamStoreStats st;

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, "example.org", a, 3, w, 1), 1);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_SPAM, NULL, a, 3, NULL, 0), 1);
        ck_assert_int_eq(spam_store_flush(s), 0);

        /* Re-learned as ham (a user's "not spam"), tokenized anew: the old record's
         * tokens leave spam, the new record's join ham, in both scopes. */
        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_HAM, "example.org", a2, 2, w, 1), 1);
        ck_assert_int_eq(class_of(s, 1), SPAM_CLASS_HAM);
        assert_counts(s, NULL, 1, 1, 0);
        assert_counts(s, NULL, 3, 1, 1);
        assert_counts(s, NULL, 4, 0, 1);
        assert_counts(s, "example.org", 1, 0, 0);
        assert_counts(s, "example.org", 3, 0, 1);
        assert_totals(s, NULL, 1, 1);
        assert_totals(s, "example.org", 0, 1);

        /* And back, after the first move was written. */
        ck_assert_int_eq(spam_store_flush(s), 0);
        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, "example.org", a, 3, w, 1), 1);
        assert_counts(s, NULL, 1, 2, 0);
        assert_counts(s, NULL, 4, 0, 0);
        assert_counts(s, "example.org", 2, 1, 0);
        assert_totals(s, NULL, 2, 0);
        assert_totals(s, "example.org", 1, 0);

        ck_assert_int_eq(spam_store_stats(s, &st), 0);
        ck_assert_uint_eq(st.journal_records, 4);       /* one record per move */
        ck_assert_uint_eq(st.tokens, 3);
        ck_assert_uint_eq(st.lexicon_words, 1);
}
END_TEST

START_TEST(test_forget)
{
        static const uint64_t a[] = { 1, 2 }, b[] = { 2 };
        static char *const w[] = { "offer" };
        _cleanup_(spam_store_freep) SpamStore *s = open_store();
        SpamStoreStats st;

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, "example.org", a, 2, w, 1), 1);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_HAM, NULL, b, 1, NULL, 0), 1);
        ck_assert_int_eq(forget(s, 1), 1);
        ck_assert_int_eq(class_of(s, 1), _SPAM_CLASS_INVALID);
        ck_assert_int_eq(forget(s, 1), 0);
        ck_assert_int_eq(forget(s, 3), 0);
        assert_counts(s, NULL, 1, 0, 0);
        assert_counts(s, NULL, 2, 0, 1);
        assert_counts(s, "example.org", 1, 0, 0);
        assert_totals(s, NULL, 0, 1);
        assert_totals(s, "example.org", 0, 0);

        ck_assert_int_eq(spam_store_stats(s, &st), 0);
        ck_assert_uint_eq(st.journal_records, 3);
        ck_assert_uint_eq(st.tokens, 1);
        ck_assert_uint_eq(st.lexicon_words, 0);

        /* Forgetting a message that is in the database, then learning it again. */
        ck_assert_int_eq(forget(s, 2), 1);
        assert_totals(s, NULL, 0, 0);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_SPAM, NULL, b, 1, NULL, 0), 1);
        assert_counts(s, NULL, 2, 1, 0);
        s = spam_store_free(s);
        s = open_store();
        assert_counts(s, NULL, 2, 1, 0);
        ck_assert_int_eq(class_of(s, 2), SPAM_CLASS_SPAM);
}
END_TEST

START_TEST(test_domain_scope)
{
        static const uint64_t a[] = { 10, 11 }, b[] = { 11, 12 };
        _cleanup_(spam_store_freep) SpamStore *s = open_store();
        SpamStoreStats st;

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, "Example.ORG", a, 2, NULL, 0), 1);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_HAM, "other.example", b, 2, NULL, 0), 1);
        ck_assert_int_eq(learn(s, 3, SPAM_CLASS_HAM, NULL, a, 2, NULL, 0), 1);

        assert_counts(s, NULL, 11, 1, 2);
        assert_counts(s, "example.org", 11, 1, 0);
        assert_counts(s, "EXAMPLE.org", 10, 1, 0);
        assert_counts(s, "other.example", 11, 0, 1);
        assert_counts(s, "other.example", 10, 0, 0);
        assert_counts(s, "unknown.example", 11, 0, 0);
        assert_totals(s, NULL, 1, 2);
        assert_totals(s, "example.org", 1, 0);
        assert_totals(s, "other.example", 0, 1);
        assert_totals(s, "unknown.example", 0, 0);

        ck_assert_int_eq(spam_store_stats(s, &st), 0);
        ck_assert_uint_eq(st.domains, 2);
        s = spam_store_free(s);
        s = open_store();
        assert_counts(s, "example.org", 11, 1, 0);
        assert_counts(s, "other.example", 12, 0, 1);
        ck_assert_int_eq(learn(s, 4, SPAM_CLASS_SPAM, "third.example", a, 1, NULL, 0), 1);
        ck_assert_int_eq(spam_store_stats(s, &st), 0);
        ck_assert_uint_eq(st.domains, 3);
        assert_counts(s, "third.example", 10, 1, 0);
}
END_TEST

START_TEST(test_batching)
{
        static const uint64_t a[] = { 7, 8 };
        _cleanup_(spam_store_freep) SpamStore *s = open_store();
        ino_t ino = file_inode("tokens.gdbm");

        ck_assert(!exists("tokens.dirty"));
        for (unsigned i = 0; i < SPAM_STORE_BATCH - 1; i++) {
                ck_assert_int_eq(learn(s, i, i % 3 ? SPAM_CLASS_SPAM : SPAM_CLASS_HAM, NULL, a, 2, NULL, 0), 1);
                /* pending, yet visible */
                assert_counts(s, NULL, 7, i + 1 - (i / 3 + 1), i / 3 + 1);
                ck_assert(exists("tokens.dirty"));
        }
        assert_totals(s, NULL, SPAM_STORE_BATCH - 1 - 21, 21);

        /* The batch is written with its last learn. */
        ck_assert_int_eq(learn(s, 1000, SPAM_CLASS_SPAM, NULL, a, 2, NULL, 0), 1);
        ck_assert(!exists("tokens.dirty"));
        assert_counts(s, NULL, 8, SPAM_STORE_BATCH - 21, 21);

        ck_assert_int_eq(learn(s, 1001, SPAM_CLASS_SPAM, NULL, a, 2, NULL, 0), 1);
        ck_assert(exists("tokens.dirty"));
        ck_assert_int_eq(spam_store_flush(s), 0);
        ck_assert(!exists("tokens.dirty"));
        ck_assert_int_eq(spam_store_flush(s), 0);
        assert_counts(s, NULL, 8, SPAM_STORE_BATCH + 1 - 21, 21);
        ck_assert(file_inode("tokens.gdbm") == ino);
}
END_TEST

START_TEST(test_reopen)
{
        static const uint64_t a[] = { 1, 2 };
        SpamStore *s = open_store();
        ino_t ino;

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, "example.org", a, 2, NULL, 0), 1);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_HAM, NULL, a, 1, NULL, 0), 1);
        s = spam_store_free(s);
        ck_assert(!exists("tokens.dirty"));
        ino = file_inode("tokens.gdbm");

        s = open_store();
        ck_assert(file_inode("tokens.gdbm") == ino);      /* not rebuilt */
        assert_counts(s, NULL, 1, 1, 1);
        assert_counts(s, NULL, 2, 1, 0);
        assert_counts(s, "example.org", 2, 1, 0);
        assert_totals(s, NULL, 1, 1);
        ck_assert_int_eq(class_of(s, 2), SPAM_CLASS_HAM);

        /* A second opener is refused while the store is in use. */
        SpamStore *t = NULL;
        ck_assert_int_eq(spam_store_open(test_dir, &t), -EBUSY);
        ck_assert_ptr_null(t);
        s = spam_store_free(s);
}
END_TEST

/* The size of each record learn_five() writes: header, 3 tokens, "uid:1000". */
#define RECORD (80 + 3 * 8 + 8)

static void learn_five(void) {
        static const uint64_t a[] = { 1, 2, 3 };
        SpamStore *s = open_store();

        for (unsigned i = 1; i <= 5; i++)
                ck_assert_int_eq(learn(s, i, i % 2 ? SPAM_CLASS_SPAM : SPAM_CLASS_HAM, NULL, a, 3, NULL, 0), 1);
        spam_store_free(s);
}

START_TEST(test_torn_tail)
{
        static const struct {
                const char *name;
                long cut;               /* bytes cut off the end */
                size_t zeros;           /* then zeros appended */
        } cases[] = {
                { "cut in the tokens", 10, 0 },
                { "cut in the header", RECORD - 40, 0 },
                { "only the magic", RECORD - 4, 0 },
                { "zeros after the file grew", 0, 300 },
                { "a torn record then zeros", 50, 4096 },
        };
        const uint64_t record = RECORD;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SpamStore *s;
                SpamStoreStats st;
                int fd;

                rm_rf_flat(test_dir);
                ck_assert_int_eq(mkdir(test_dir, 0700), 0);
                learn_five();
                ck_assert_uint_eq(file_size("journal"), 5 * record);

                ck_assert_int_eq(truncate(path_in("journal"), (off_t) (5 * record - (uint64_t) cases[i].cut)), 0);
                fd = open(path_in("journal"), O_WRONLY | O_APPEND);
                ck_assert_int_ge(fd, 0);
                for (size_t z = 0; z < cases[i].zeros; z++)
                        ck_assert_int_eq(write(fd, "", 1), 1);
                close(fd);

                s = open_store();
                ck_assert_int_eq(spam_store_stats(s, &st), 0);
                ck_assert_msg(st.journal_records == (cases[i].cut > 0 ? 4U : 5U), "%s", cases[i].name);
                ck_assert_uint_eq(file_size("journal"), (cases[i].cut > 0 ? 4 : 5) * record);
                ck_assert_int_eq(class_of(s, 4), SPAM_CLASS_HAM);
                ck_assert_int_eq(class_of(s, 5), cases[i].cut > 0 ? _SPAM_CLASS_INVALID : SPAM_CLASS_SPAM);
                assert_totals(s, NULL, cases[i].cut > 0 ? 2 : 3, 2);
                assert_counts(s, NULL, 2, cases[i].cut > 0 ? 2 : 3, 2);

                /* The store goes on from the cut. */
                ck_assert_int_eq(learn(s, 6, SPAM_CLASS_SPAM, NULL, (const uint64_t[]) { 9 }, 1, NULL, 0), 1);
                spam_store_free(s);
                s = open_store();
                ck_assert_int_eq(class_of(s, 6), SPAM_CLASS_SPAM);
                spam_store_free(s);
        }
}
END_TEST

START_TEST(test_corrupt_middle)
{
        const uint64_t record = RECORD;
        SpamStore *s = NULL;
        int fd;

        learn_five();

        /* One bit of a token of the second record. */
        fd = open(path_in("journal"), O_RDWR);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, "\x40", 1, (off_t) (record + 85)), 1);
        close(fd);
        ck_assert_int_eq(spam_store_open(test_dir, &s), -EBADMSG);
        ck_assert_ptr_null(s);
        /* Nothing was cut. */
        ck_assert_uint_eq(file_size("journal"), 5 * record);

        /* A damaged length field reads as "longer than the file": still not a torn tail,
         * since valid records follow. */
        rm_rf_flat(test_dir);
        ck_assert_int_eq(mkdir(test_dir, 0700), 0);
        learn_five();
        fd = open(path_in("journal"), O_RDWR);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, "\xff\xff", 2, (off_t) (2 * record + 9)), 2);
        close(fd);
        ck_assert_int_eq(spam_store_open(test_dir, &s), -EBADMSG);
        ck_assert_uint_eq(file_size("journal"), 5 * record);
}
END_TEST

START_TEST(test_secret_missing)
{
        SpamStore *s = NULL;

        learn_five();
        ck_assert_int_eq(unlink(path_in("secret")), 0);
        ck_assert_int_eq(spam_store_open(test_dir, &s), -ENOKEY);
        ck_assert(!exists("secret"));
}
END_TEST

/* ---- rebuilds ---- */

#define POOL 240U
#define N_DOMAINS 3U
static const char *const domains[N_DOMAINS + 1] = { NULL, "a.example", "b.example", "c.example" };

typedef struct Msg {
        bool learned;
        SpamClass class;
        unsigned domain;
        uint64_t tokens[40];
        size_t n_tokens;
        unsigned words[6];
        size_t n_words;
} Msg;

static uint64_t pool_token(unsigned i) {
        return (uint64_t) i * UINT64_C(0x9e3779b97f4a7c15) + 1;
}

static char word_buf[POOL][16];
static char* pool_word(unsigned i) {
        snprintf(word_buf[i], sizeof(word_buf[i]), "word%u", i);
        return word_buf[i];
}

/* Every token's counts in every scope, the totals and the lexicon against what msgs say. */
typedef struct LexiconCheck {
        uint32_t spam[POOL], ham[POOL];
        unsigned seen;
        uint32_t min;
} LexiconCheck;

static int on_lexicon_check(const char *word, uint32_t spam, uint32_t ham, void *userdata) {
        LexiconCheck *c = userdata;
        unsigned i;

        ck_assert_int_eq(sscanf(word, "word%u", &i), 1);
        ck_assert_uint_lt(i, POOL);
        ck_assert_uint_eq(spam, c->spam[i]);
        ck_assert_uint_eq(ham, c->ham[i]);
        ck_assert_uint_ge(spam + ham, c->min);
        c->seen++;
        return 0;
}

static void check_model(SpamStore *s, const Msg *msgs, size_t n_msgs) {
        LexiconCheck lex = { .min = 2 };
        unsigned expect_seen = 0;

        for (unsigned d = 0; d <= N_DOMAINS; d++) {
                uint64_t ts = 0, th = 0;

                for (size_t m = 0; m < n_msgs; m++)
                        if (msgs[m].learned && (d == 0 || msgs[m].domain == d)) {
                                ts += msgs[m].class == SPAM_CLASS_SPAM;
                                th += msgs[m].class == SPAM_CLASS_HAM;
                        }
                assert_totals(s, domains[d], ts, th);

                for (unsigned t = 0; t < POOL; t++) {
                        uint32_t cs = 0, ch = 0;

                        for (size_t m = 0; m < n_msgs; m++) {
                                if (!msgs[m].learned || (d != 0 && msgs[m].domain != d))
                                        continue;
                                for (size_t k = 0; k < msgs[m].n_tokens; k++)
                                        if (msgs[m].tokens[k] == pool_token(t)) {
                                                cs += msgs[m].class == SPAM_CLASS_SPAM;
                                                ch += msgs[m].class == SPAM_CLASS_HAM;
                                                break;
                                        }
                        }
                        assert_counts(s, domains[d], pool_token(t), cs, ch);
                }
        }

        for (size_t m = 0; m < n_msgs; m++)
                if (msgs[m].learned)
                        for (size_t k = 0; k < msgs[m].n_words; k++) {
                                unsigned w = msgs[m].words[k];

                                lex.spam[w] += msgs[m].class == SPAM_CLASS_SPAM;
                                lex.ham[w] += msgs[m].class == SPAM_CLASS_HAM;
                        }
        for (unsigned w = 0; w < POOL; w++)
                expect_seen += lex.spam[w] + lex.ham[w] >= lex.min;
        ck_assert_int_eq(spam_store_lexicon(s, lex.min, on_lexicon_check, &lex), 0);
        ck_assert_uint_eq(lex.seen, expect_seen);
}

static void random_msg(Msg *m) {
        char seen[POOL] = {};

        m->class = rng() % 2 ? SPAM_CLASS_SPAM : SPAM_CLASS_HAM;
        m->domain = (unsigned) (rng() % (N_DOMAINS + 1));
        m->n_tokens = 1 + rng() % 40;
        for (size_t k = 0; k < m->n_tokens; k++)
                /* duplicates on purpose: the store counts a token once per message */
                m->tokens[k] = pool_token((unsigned) (rng() % POOL));
        m->n_words = 0;
        for (size_t k = 0; k < 6; k++) {
                unsigned w = (unsigned) (rng() % 20);

                if (!seen[w]) {
                        seen[w] = 1;
                        m->words[m->n_words++] = w;
                }
        }
}

static int learn_msg(SpamStore *s, unsigned n, const Msg *m) {
        char *words[6];

        for (size_t k = 0; k < m->n_words; k++)
                words[k] = pool_word(m->words[k]);
        return learn(s, n, m->class, domains[m->domain], m->tokens, m->n_tokens, words, m->n_words);
}

START_TEST(test_rebuild_equals_incremental)
{
        test_memory_limit = memory_limits[_i];
        _cleanup_free_ Msg *msgs = calloc(120, sizeof(Msg));
        SpamStore *s = open_store();
        SpamStoreStats before, after;
        ino_t ino;

        rng_state = 0x5eed5eedULL;
        ck_assert_ptr_nonnull(msgs);

        for (unsigned op = 0; op < 400; op++) {
                unsigned n = (unsigned) (rng() % 120);
                Msg *m = msgs + n;
                unsigned what = (unsigned) (rng() % 10);

                if (what < 7 || !m->learned) {
                        Msg fresh;
                        bool same;
                        int r;

                        random_msg(&fresh);
                        same = m->learned && m->class == fresh.class;
                        if (m->learned && !same) {
                                /* a move keeps where the message went, with new tokens */
                                r = learn_msg(s, n, &fresh);
                                ck_assert_int_eq(r, 1);
                                *m = fresh;
                        } else if (same) {
                                ck_assert_int_eq(learn_msg(s, n, &fresh), 0);
                        } else {
                                ck_assert_int_eq(learn_msg(s, n, &fresh), 1);
                                *m = fresh;
                        }
                        m->learned = true;
                } else {
                        ck_assert_int_eq(forget(s, n), 1);
                        m->learned = false;
                }

                if (op % 97 == 0)
                        check_model(s, msgs, 120);
        }
        check_model(s, msgs, 120);
        ck_assert_int_eq(spam_store_stats(s, &before), 0);

        /* Replayed from the journal, the same counts. */
        ino = file_inode("tokens.gdbm");
        ck_assert_int_eq(spam_store_rebuild(s), 0);
        ck_assert(file_inode("tokens.gdbm") != ino);
        ck_assert(!exists("tokens.gdbm.new"));
        check_model(s, msgs, 120);
        ck_assert_int_eq(spam_store_stats(s, &after), 0);
        ck_assert_mem_eq(&before, &after, offsetof(SpamStoreStats, db_bytes));

        /* And after a close and an open. */
        s = spam_store_free(s);
        s = open_store();
        check_model(s, msgs, 120);
        spam_store_free(s);
}
END_TEST

/* spam_store_counts_many() of tokens[0..n) gives what spam_store_counts() gives for each:
 * the look-ahead must not change a count, pending or written, in the table, the cache or
 * GDBM. */
static void assert_counts_many(SpamStore *s, const char *domain, const uint64_t *tokens, size_t n) {
        _cleanup_free_ SpamCounts *c = calloc(n, sizeof(SpamCounts));

        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(spam_store_counts_many(s, domain, tokens, n, c), 1);
        for (size_t i = 0; i < n; i++) {
                SpamCounts one;

                ck_assert_int_eq(spam_store_counts(s, domain, tokens[i], &one), 0);
                ck_assert_msg(c[i].spam == one.spam && c[i].ham == one.ham, "token %zu: %u/%u, one by one %u/%u",
                              i, c[i].spam, c[i].ham, one.spam, one.ham);
        }
}

START_TEST(test_many_tokens)
{
        test_memory_limit = memory_limits[_i];
        /* Many distinct tokens in two scopes, looked up while they are learned (through
         * the counts cache in front of GDBM, and colliding in it): every count stays
         * right across batches, a forget, a rebuild and an open. */
        enum { MSGS = 60, PER = 250 };
        _cleanup_free_ uint64_t *tokens = calloc(MSGS * PER, sizeof(uint64_t));
        SpamStore *s = open_store();

        ck_assert_ptr_nonnull(tokens);
        for (unsigned i = 0; i < MSGS * PER; i++)
                tokens[i] = UINT64_C(0xfeed000000000000) + (uint64_t) i * 7919;

        ck_assert_int_eq(learn(s, 0, SPAM_CLASS_SPAM, NULL, tokens, PER, NULL, 0), 1);
        assert_counts(s, NULL, tokens[0], 1, 0);
        assert_counts(s, NULL, tokens[PER], 0, 0);

        for (unsigned m = 1; m < MSGS; m++) {
                ck_assert_int_eq(learn(s, m, m % 2 ? SPAM_CLASS_HAM : SPAM_CLASS_SPAM, "example.org",
                                       tokens + m * PER, PER, NULL, 0), 1);
                /* look-ups in between, of tokens pending and written */
                assert_counts(s, NULL, tokens[m * PER], m % 2 ? 0 : 1, m % 2 ? 1 : 0);
                assert_counts(s, NULL, tokens[(m - 1) * PER + 1], (m - 1) % 2 ? 0 : 1, (m - 1) % 2 ? 1 : 0);
                if (m % 10 == 0)
                        assert_counts_many(s, "example.org", tokens, (m + 1) * PER);
        }
        ck_assert_int_eq(spam_store_flush(s), 0);
        assert_counts_many(s, NULL, tokens, MSGS * PER);
        assert_counts_many(s, "example.org", tokens, MSGS * PER);
        {
                /* a domain without statistics: 0, and zero counts */
                SpamCounts c[3];

                memset(c, 0xff, sizeof(c));
                ck_assert_int_eq(spam_store_counts_many(s, "unknown.example", tokens, 3, c), 0);
                for (unsigned i = 0; i < 3; i++)
                        ck_assert(c[i].spam == 0 && c[i].ham == 0);
        }
        for (unsigned i = 0; i < MSGS * PER; i++) {
                unsigned m = i / PER;

                assert_counts(s, NULL, tokens[i], m % 2 ? 0 : 1, m % 2 ? 1 : 0);
                if (m > 0)
                        assert_counts(s, "example.org", tokens[i], m % 2 ? 0 : 1, m % 2 ? 1 : 0);
                else
                        assert_counts(s, "example.org", tokens[i], 0, 0);
        }
        assert_counts(s, NULL, UINT64_C(0x1234), 0, 0);

        /* forgotten: zero again */
        ck_assert_int_eq(forget(s, 3), 1);
        ck_assert_int_eq(spam_store_flush(s), 0);
        assert_counts(s, NULL, tokens[3 * PER + 5], 0, 0);

        ck_assert_int_eq(spam_store_rebuild(s), 0);
        assert_counts(s, NULL, tokens[3 * PER + 5], 0, 0);
        assert_counts(s, NULL, tokens[MSGS * PER - 1], 0, 1);
        s = spam_store_free(s);
        s = open_store();
        for (unsigned i = 0; i < MSGS * PER; i += 37) {
                unsigned m = i / PER;

                assert_counts(s, NULL, tokens[i], m == 3 || m % 2 ? 0 : 1, m == 3 || !(m % 2) ? 0 : 1);
        }
        spam_store_free(s);
}
END_TEST

static void write_marker(const char *content);

START_TEST(test_compact_and_reset)
{
        test_memory_limit = memory_limits[_i];
        _cleanup_free_ Msg *msgs = calloc(100, sizeof(Msg));
        SpamStore *s = open_store();
        SpamStoreStats before, after;
        uint64_t size_before, kept = 0, learned = 0;
        SpamClass cls;
        SpamSource src;
        uint8_t d[SPAM_DIGEST_SIZE];

        rng_state = 0xc0ffeeULL;
        ck_assert_ptr_nonnull(msgs);

        /* learns, moves and forgets: many records no longer in force */
        for (unsigned op = 0; op < 500; op++) {
                unsigned n = (unsigned) (rng() % 100);
                Msg *m = msgs + n;

                if (rng() % 10 < 7 || !m->learned) {
                        Msg fresh;
                        int r;

                        random_msg(&fresh);
                        r = learn_msg(s, n, &fresh);
                        ck_assert_int_ge(r, 0);
                        if (r > 0 || !m->learned)
                                *m = fresh;
                        m->learned = true;
                } else {
                        ck_assert_int_eq(forget(s, n), 1);
                        m->learned = false;
                }
        }
        for (unsigned n = 0; n < 100; n++)
                learned += msgs[n].learned;
        ck_assert_int_eq(spam_store_stats(s, &before), 0);
        ck_assert_uint_gt(before.journal_records, learned);
        size_before = file_size("journal");

        /* Compaction: one record per learned message, the same statistics. */
        ck_assert_int_eq(spam_store_compact(s, NULL, &kept, NULL), 0);
        ck_assert_uint_eq(kept, learned);
        ck_assert(!exists("journal.new"));
        ck_assert_uint_lt(file_size("journal"), size_before);
        check_model(s, msgs, 100);
        ck_assert_int_eq(spam_store_stats(s, &after), 0);
        ck_assert_uint_eq(after.journal_records, learned);
        ck_assert_uint_eq(after.totals.spam, before.totals.spam);
        ck_assert_uint_eq(after.totals.ham, before.totals.ham);
        ck_assert_uint_eq(after.tokens, before.tokens);
        ck_assert_uint_eq(after.lexicon_words, before.lexicon_words);
        for (unsigned n = 0; n < 100; n++) {
                ck_assert_int_eq(class_of(s, n), msgs[n].learned ? (int) msgs[n].class : _SPAM_CLASS_INVALID);
                if (msgs[n].learned) {
                        make_digest(n, d);
                        ck_assert_int_eq(spam_store_learned_by(s, d, &cls, &src), 0);
                        ck_assert_int_eq(cls, msgs[n].class);
                        ck_assert_int_eq(src, SPAM_SOURCE_REPORT);
                }
        }

        /* Compacting again changes nothing; learning, moving and forgetting go on, and an
         * open reads the compacted journal. */
        size_before = file_size("journal");
        ck_assert_int_eq(spam_store_compact(s, NULL, &kept, NULL), 0);
        ck_assert_uint_eq(kept, learned);
        ck_assert_uint_eq(file_size("journal"), size_before);
        for (unsigned op = 0; op < 60; op++) {
                unsigned n = (unsigned) (rng() % 100);
                Msg fresh;
                int r;

                if (msgs[n].learned && op % 3 == 0) {
                        ck_assert_int_eq(forget(s, n), 1);
                        msgs[n].learned = false;
                        continue;
                }
                random_msg(&fresh);
                r = learn_msg(s, n, &fresh);
                ck_assert_int_ge(r, 0);
                if (r > 0 || !msgs[n].learned)
                        msgs[n] = fresh;
                msgs[n].learned = true;
        }
        check_model(s, msgs, 100);
        s = spam_store_free(s);
        s = open_store();
        check_model(s, msgs, 100);

        /* Reset: nothing learned, an empty journal, and learning starts afresh. */
        ck_assert_int_eq(spam_store_reset(s), 0);
        ck_assert_uint_eq(file_size("journal"), 0);
        for (unsigned n = 0; n < 100; n++)
                msgs[n].learned = false;
        check_model(s, msgs, 100);
        ck_assert_int_eq(spam_store_stats(s, &after), 0);
        ck_assert_uint_eq(after.journal_records, 0);
        ck_assert_uint_eq(after.tokens, 0);
        ck_assert_uint_eq(after.lexicon_words, 0);
        random_msg(&msgs[7]);
        ck_assert_int_eq(learn_msg(s, 7, &msgs[7]), 1);
        msgs[7].learned = true;
        check_model(s, msgs, 100);
        s = spam_store_free(s);
        s = open_store();
        check_model(s, msgs, 100);
        spam_store_free(s);
}
END_TEST

/* learn_msg() at a time and from a source */
static int learn_msg_at(SpamStore *s, unsigned n, const Msg *m, uint64_t time, SpamSource source) {
        char *words[6];
        SpamLearn l = {
                .class = m->class,
                .source = source,
                .reporter = source == SPAM_SOURCE_AUTOLEARN ? "autolearn" : "uid:1000",
                .domain = domains[m->domain],
                .time = time,
                .tokens = m->tokens,
                .n_tokens = m->n_tokens,
                .words = words,
                .n_words = m->n_words,
        };

        for (size_t k = 0; k < m->n_words; k++)
                words[k] = pool_word(m->words[k]);
        make_digest(n, l.digest);
        return spam_store_learn(s, &l);
}

START_TEST(test_compact_policy)
{
        /* Compaction forgets by age (the time of the record in force) and keeps the newest
         * AutoLearnKeep= auto-learned messages; the counts are then exactly those of the
         * messages kept. */
        test_memory_limit = memory_limits[_i];
        static const uint64_t t0 = UINT64_C(1700000000);
        const SpamCompactPolicy policy = { .forget_before = t0 + 1000, .autolearn_keep = 4 };
        _cleanup_free_ Msg *msgs = calloc(40, sizeof(Msg));
        SpamStore *s = open_store();
        uint64_t kept = 0, forgotten = 0, learned = 0;
        SpamStoreStats st;
        Msg moved;

        rng_state = 0xa6e0a6e0ULL;
        ck_assert_ptr_nonnull(msgs);
        /* one message every 100 s: an auto-learned one, a report, an administrator's */
        for (unsigned n = 0; n < 40; n++) {
                random_msg(&msgs[n]);
                ck_assert_int_eq(learn_msg_at(s, n, &msgs[n], t0 + 100 * n, (SpamSource) (n % 3)), 1);
                msgs[n].learned = true;
        }
        /* message 4 (an old report) moved by a late report: its record in force is new */
        moved = msgs[4];
        moved.class = moved.class == SPAM_CLASS_SPAM ? SPAM_CLASS_HAM : SPAM_CLASS_SPAM;
        ck_assert_int_eq(learn_msg_at(s, 4, &moved, t0 + 10000, SPAM_SOURCE_REPORT), 1);
        msgs[4] = moved;
        msgs[4].learned = true;
        /* message 7 (an old report) forgotten already */
        ck_assert_int_eq(forget(s, 7), 1);
        msgs[7].learned = false;

        /* By age: 0–9 but 4 (moved late) and 7 (not in force), eight messages. Of the
         * auto-learned ones left (12, 15, ..., 39), the six oldest. */
        ck_assert_int_eq(spam_store_compact(s, &policy, &kept, &forgotten), 0);
        ck_assert_uint_eq(forgotten, 8 + 6);
        for (unsigned n = 0; n < 10; n++)
                if (n != 4)
                        msgs[n].learned = false;
        for (unsigned n = 12; n <= 27; n += 3)
                msgs[n].learned = false;
        for (unsigned n = 0; n < 40; n++)
                learned += msgs[n].learned;
        ck_assert_uint_eq(kept, learned);
        ck_assert_int_eq(spam_store_stats(s, &st), 0);
        ck_assert_uint_eq(st.journal_records, learned);
        check_model(s, msgs, 40);
        for (unsigned n = 0; n < 40; n++)
                ck_assert_int_eq(class_of(s, n), msgs[n].learned ? (int) msgs[n].class : _SPAM_CLASS_INVALID);

        /* Again: nothing more to forget; without a policy neither. */
        ck_assert_int_eq(spam_store_compact(s, &policy, &kept, &forgotten), 0);
        ck_assert_uint_eq(forgotten, 0);
        ck_assert_uint_eq(kept, learned);
        ck_assert_int_eq(spam_store_compact(s, NULL, &kept, &forgotten), 0);
        ck_assert_uint_eq(forgotten, 0);
        ck_assert_uint_eq(kept, learned);
        /* a bound above what is learned forgets nothing (and need not count) */
        ck_assert_int_eq(spam_store_compact(s, &(const SpamCompactPolicy) { .autolearn_keep = learned }, &kept,
                                            &forgotten), 0);
        ck_assert_uint_eq(forgotten, 0);
        ck_assert_uint_eq(kept, learned);

        /* A forgotten message is new again, and the store reopens as it was left. */
        ck_assert_int_eq(learn_msg_at(s, 12, &msgs[12], t0 + 20000, SPAM_SOURCE_AUTOLEARN), 1);
        msgs[12].learned = true;
        check_model(s, msgs, 40);
        s = spam_store_free(s);
        s = open_store();
        check_model(s, msgs, 40);

        /* Every auto-learned message is kept with UINT64_MAX; an age past them all forgets
         * everything. */
        ck_assert_int_eq(spam_store_compact(s, &(const SpamCompactPolicy) { .autolearn_keep = UINT64_MAX }, &kept,
                                            &forgotten), 0);
        ck_assert_uint_eq(forgotten, 0);
        ck_assert_int_eq(spam_store_compact(s, &(const SpamCompactPolicy) { .forget_before = t0 + 30000,
                                                                            .autolearn_keep = UINT64_MAX },
                                            &kept, &forgotten), 0);
        ck_assert_uint_eq(forgotten, learned + 1);
        ck_assert_uint_eq(kept, 0);
        for (unsigned n = 0; n < 40; n++)
                msgs[n].learned = false;
        check_model(s, msgs, 40);
        ck_assert_uint_eq(file_size("journal"), 0);
        spam_store_free(s);
}
END_TEST

START_TEST(test_compact_crash_after_rename)
{
        /* A crash between putting the new journal in place and the end of the rebuild: the
         * dirty marker says "writing", and the next open rebuilds from the new journal. */
        _cleanup_free_ Msg *msgs = calloc(30, sizeof(Msg));
        SpamStore *s = open_store();
        uint64_t kept = 0;

        rng_state = 0xbadc0deULL;
        ck_assert_ptr_nonnull(msgs);
        for (unsigned n = 0; n < 30; n++) {
                random_msg(&msgs[n]);
                ck_assert_int_eq(learn_msg(s, n, &msgs[n]), 1);
                msgs[n].learned = true;
        }
        for (unsigned n = 0; n < 30; n += 3) {
                ck_assert_int_eq(forget(s, n), 1);
                msgs[n].learned = false;
        }
        ck_assert_int_eq(spam_store_compact(s, NULL, &kept, NULL), 0);
        ck_assert_uint_eq(kept, 20);
        s = spam_store_free(s);

        /* what a crash right after the rename leaves: the marker, and a database that
         * cannot be trusted */
        write_marker("w");
        ck_assert_int_eq(truncate(path_in("tokens.gdbm"), 0), 0);
        s = open_store();
        check_model(s, msgs, 30);
        spam_store_free(s);
}
END_TEST

static void write_marker(const char *content) {
        int fd = open(path_in("tokens.dirty"), O_WRONLY | O_CREAT | O_TRUNC, 0600);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        close(fd);
}

START_TEST(test_dirty_rebuild)
{
        _cleanup_free_ Msg *msgs = calloc(80, sizeof(Msg));
        SpamStore *s = open_store();
        ino_t ino;

        rng_state = 0xd1127ULL;
        for (unsigned n = 0; n < 80; n++) {
                random_msg(msgs + n);
                ck_assert_int_eq(learn_msg(s, n, msgs + n), 1);
                msgs[n].learned = true;
        }
        s = spam_store_free(s);
        ck_assert(!exists("tokens.dirty"));
        ino = file_inode("tokens.gdbm");

        /* An empty marker with a database that has every record: nothing to do. */
        write_marker("");
        s = open_store();
        ck_assert(file_inode("tokens.gdbm") == ino);
        ck_assert(!exists("tokens.dirty"));
        check_model(s, msgs, 80);
        s = spam_store_free(s);

        /* As a kill -9 in the middle of writing a batch leaves it. */
        write_marker("w");
        s = open_store();
        ck_assert(file_inode("tokens.gdbm") != ino);
        ck_assert(!exists("tokens.dirty"));
        check_model(s, msgs, 80);
        spam_store_free(s);
}
END_TEST

/* A process that learns and dies without writing its last batch. */
static void learn_and_die(const Msg *msgs, unsigned from, unsigned to) {
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                SpamStore *s = NULL;

                if (spam_store_open(test_dir, &s) < 0)
                        _exit(2);
                for (unsigned n = from; n < to; n++)
                        if (learn_msg(s, n, msgs + n) != 1)
                                _exit(3);
                _exit(0);       /* no spam_store_free(): the pending counts are lost */
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(test_catch_up)
{
        _cleanup_free_ Msg *msgs = calloc(200, sizeof(Msg));
        SpamStore *s = open_store();
        ino_t ino;

        rng_state = 0xca7c4ULL;
        for (unsigned n = 0; n < 200; n++) {
                random_msg(msgs + n);
                msgs[n].learned = n < 150;
        }
        for (unsigned n = 0; n < 30; n++)
                ck_assert_int_eq(learn_msg(s, n, msgs + n), 1);
        s = spam_store_free(s);
        ino = file_inode("tokens.gdbm");

        /* 120 learns: one batch written, 56 only in the journal. */
        learn_and_die(msgs, 30, 150);
        ck_assert(exists("tokens.dirty"));
        s = open_store();
        ck_assert(file_inode("tokens.gdbm") == ino);      /* caught up, not rebuilt */
        ck_assert(!exists("tokens.dirty"));
        check_model(s, msgs, 200);
        s = spam_store_free(s);

        /* A header behind the journal without a marker (it was never synced): the same. */
        learn_and_die(msgs, 150, 160);
        for (unsigned n = 150; n < 160; n++)
                msgs[n].learned = true;
        ck_assert_int_eq(unlink(path_in("tokens.dirty")), 0);
        s = open_store();
        ck_assert(file_inode("tokens.gdbm") == ino);
        check_model(s, msgs, 200);
        spam_store_free(s);
}
END_TEST

START_TEST(test_schema_and_damage_rebuild)
{
        static const uint64_t a[] = { 1, 2 };
        SpamStore *s = open_store();
        GDBM_FILE db;
        datum key = { .dptr = (char*) "V", .dsize = 1 }, v;
        ino_t ino;
        int fd;

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, "example.org", a, 2, NULL, 0), 1);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_HAM, NULL, a, 1, NULL, 0), 1);
        s = spam_store_free(s);

        /* Another schema version in the header. */
        db = gdbm_open(path_in("tokens.gdbm"), 0, GDBM_WRITER, 0600, NULL);
        ck_assert_ptr_nonnull(db);
        v = gdbm_fetch(db, key);
        ck_assert_ptr_nonnull(v.dptr);
        ck_assert_int_eq(v.dsize, 48);
        ck_assert_int_eq(v.dptr[0], SPAM_STORE_SCHEMA);
        v.dptr[0] = 99;
        ck_assert_int_eq(gdbm_store(db, key, v, GDBM_REPLACE), 0);
        free(v.dptr);
        gdbm_close(db);

        ino = file_inode("tokens.gdbm");
        s = open_store();
        ck_assert(file_inode("tokens.gdbm") != ino);
        assert_counts(s, NULL, 1, 1, 1);
        assert_counts(s, "example.org", 2, 1, 0);
        s = spam_store_free(s);

        /* A database that is not a GDBM file at all. */
        fd = open(path_in("tokens.gdbm"), O_WRONLY | O_TRUNC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "garbage, not a database", 23), 23);
        close(fd);
        s = open_store();
        assert_counts(s, NULL, 1, 1, 1);
        assert_totals(s, "example.org", 1, 0);
        s = spam_store_free(s);

        /* A database that is missing. */
        ck_assert_int_eq(unlink(path_in("tokens.gdbm")), 0);
        s = open_store();
        assert_counts(s, NULL, 2, 1, 0);
        spam_store_free(s);
}
END_TEST

/* Rewrites the token page that holds token 1 of the global scope with what damage() makes
 * of its value (of n bytes). */
static void damage_page(void (*damage)(uint8_t *v, int *n)) {
        uint8_t k[7] = { 'P', 0, 0, 0, 0, 0, 0 }, buf[64];
        datum key = { .dptr = (char*) k, .dsize = sizeof(k) }, v;
        GDBM_FILE db;
        int n;

        /* no lock: the store may have the database open */
        db = gdbm_open(path_in("tokens.gdbm"), 0, GDBM_WRITER | GDBM_NOLOCK | GDBM_NOMMAP, 0600, NULL);
        ck_assert_ptr_nonnull(db);
        v = gdbm_fetch(db, key);
        ck_assert_ptr_nonnull(v.dptr);
        ck_assert_int_eq(v.dsize, 64);          /* tokens 1 and 2, 16 bytes each, room for 4 */
        for (int i = 32; i < 64; i++)
                ck_assert_int_eq(v.dptr[i], 0);
        memcpy(buf, v.dptr, (size_t) v.dsize);
        n = v.dsize;
        free(v.dptr);
        damage(buf, &n);
        v = (datum) { .dptr = (char*) buf, .dsize = n };
        ck_assert_int_eq(gdbm_store(db, key, v, GDBM_REPLACE), 0);
        gdbm_close(db);
}

static void damage_cut(uint8_t *v, int *n) {
        (*n)--;
}

static void damage_order(uint8_t *v, int *n) {
        uint8_t t[16];

        memcpy(t, v, 16);
        memcpy(v, v + 16, 16);
        memcpy(v + 16, t, 16);
}

static void damage_page_of(uint8_t *v, int *n) {
        v[7] = 0x80;                            /* token 1 now belongs to page 0x8000 */
}

static void damage_zero(uint8_t *v, int *n) {
        memset(v + 8, 0, 8);                    /* a token with no counts */
}

static void damage_empty(uint8_t *v, int *n) {
        *n = 0;
}

static void damage_padding(uint8_t *v, int *n) {
        v[40] = 1;
}

static void damage_short(uint8_t *v, int *n) {
        *n = 32;                                /* the entries without their room */
}

START_TEST(test_page_damage_rebuild)
{
        static void (*const damages[])(uint8_t *v, int *n) = {
                damage_cut, damage_order, damage_page_of, damage_zero, damage_empty, damage_padding, damage_short,
        };
        static const uint64_t a[] = { 1, 2, UINT64_C(0x8000000000000001) };
        SpamStore *s = open_store();

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, NULL, a, 3, NULL, 0), 1);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_HAM, NULL, a, 1, NULL, 0), 1);
        s = spam_store_free(s);

        for (size_t i = 0; i < ELEMENTSOF(damages); i++) {
                ino_t ino;

                damage_page(damages[i]);
                ino = file_inode("tokens.gdbm");
                s = open_store();
                /* the database is derived from the journal: rebuilt, nothing lost */
                ck_assert_msg(file_inode("tokens.gdbm") != ino, "damage %zu: not rebuilt", i);
                assert_counts(s, NULL, 1, 1, 1);
                assert_counts(s, NULL, 2, 1, 0);
                assert_counts(s, NULL, UINT64_C(0x8000000000000001), 1, 0);
                assert_counts(s, NULL, 3, 0, 0);
                s = spam_store_free(s);
        }

        /* Found by a look-up without the table of all counts: the look-up rebuilds and
         * answers. The page keeps its size, so GDBM rewrites it in place, where the
         * store's open database reads it. */
        s = open_store();
        spam_store_set_memory_limit(s, 1);
        for (size_t i = 1; i <= 3; i++) {
                ino_t ino = file_inode("tokens.gdbm");

                damage_page(damages[i]);
                /* GDBM keeps the last value it read of each of its buckets: another page
                 * first, then a token of the damaged one that the counts cache does not
                 * hold yet */
                assert_counts(s, NULL, UINT64_C(0x8000000000000100) + i, 0, 0);
                assert_counts(s, NULL, 100 + i, 0, 0);
                ck_assert_msg(file_inode("tokens.gdbm") != ino, "damage %zu: not rebuilt by the look-up", i);
                assert_counts(s, NULL, 1, 1, 1);
                assert_counts(s, NULL, 2, 1, 0);
        }
        spam_store_free(s);
}
END_TEST

/* ---- lexicon ---- */

typedef struct Seen {
        char words[8][16];
        uint32_t spam[8], ham[8];
        unsigned n;
        int stop_after;
} Seen;

static int on_word(const char *word, uint32_t spam, uint32_t ham, void *userdata) {
        Seen *s = userdata;

        ck_assert_uint_lt(s->n, 8);
        snprintf(s->words[s->n], sizeof(s->words[s->n]), "%s", word);
        s->spam[s->n] = spam;
        s->ham[s->n] = ham;
        s->n++;
        return s->stop_after > 0 && (int) s->n >= s->stop_after ? -ECANCELED : 0;
}

static bool seen_word(const Seen *s, const char *w, uint32_t spam, uint32_t ham) {
        for (unsigned i = 0; i < s->n; i++)
                if (strcmp(s->words[i], w) == 0)
                        return s->spam[i] == spam && s->ham[i] == ham;
        return false;
}

START_TEST(test_lexicon)
{
        static char *const w1[] = { "mortgage", "viagra", "hello" };
        static char *const w2[] = { "viagra", "meeting" };
        static char *const w3[] = { "hello", "meeting", "agenda" };
        _cleanup_(spam_store_freep) SpamStore *s = open_store();
        Seen seen = {};

        ck_assert_int_eq(learn(s, 1, SPAM_CLASS_SPAM, NULL, NULL, 0, w1, 3), 1);
        ck_assert_int_eq(learn(s, 2, SPAM_CLASS_SPAM, NULL, NULL, 0, w2, 2), 1);
        ck_assert_int_eq(spam_store_flush(s), 0);
        /* pending: a new word, and changes to words in the database */
        ck_assert_int_eq(learn(s, 3, SPAM_CLASS_HAM, NULL, NULL, 0, w3, 3), 1);

        ck_assert_int_eq(spam_store_lexicon(s, 0, on_word, &seen), 0);
        ck_assert_uint_eq(seen.n, 5);
        ck_assert(seen_word(&seen, "mortgage", 1, 0));
        ck_assert(seen_word(&seen, "viagra", 2, 0));
        ck_assert(seen_word(&seen, "hello", 1, 1));
        ck_assert(seen_word(&seen, "meeting", 1, 1));
        ck_assert(seen_word(&seen, "agenda", 0, 1));

        seen = (Seen) {};
        ck_assert_int_eq(spam_store_lexicon(s, 2, on_word, &seen), 0);
        ck_assert_uint_eq(seen.n, 3);
        ck_assert(seen_word(&seen, "viagra", 2, 0));
        ck_assert(!seen_word(&seen, "agenda", 0, 1));

        /* Forgetting takes words out; pending, then written. */
        ck_assert_int_eq(forget(s, 1), 1);
        seen = (Seen) {};
        ck_assert_int_eq(spam_store_lexicon(s, 1, on_word, &seen), 0);
        ck_assert_uint_eq(seen.n, 4);
        ck_assert(!seen_word(&seen, "mortgage", 1, 0));
        ck_assert(seen_word(&seen, "hello", 0, 1));
        ck_assert_int_eq(spam_store_flush(s), 0);
        seen = (Seen) {};
        ck_assert_int_eq(spam_store_lexicon(s, 1, on_word, &seen), 0);
        ck_assert_uint_eq(seen.n, 4);

        /* The callback's error ends the iteration and is returned. */
        seen = (Seen) { .stop_after = 2 };
        ck_assert_int_eq(spam_store_lexicon(s, 0, on_word, &seen), -ECANCELED);
        ck_assert_uint_eq(seen.n, 2);
}
END_TEST

/* ---- kill -9 ---- */

static void kill_child(int fd) {
        _cleanup_(spam_store_freep) SpamStore *s = NULL;
        uint64_t tokens[50];

        if (spam_store_open(test_dir, &s) < 0)
                _exit(2);
        for (unsigned n = 0;; n++) {
                uint8_t ack[2];
                SpamClass class = (n * 7) % 3 == 0 ? SPAM_CLASS_HAM : SPAM_CLASS_SPAM;

                for (size_t k = 0; k < 50; k++)
                        tokens[k] = (uint64_t) (n * 50 + k) % 997;
                if (learn(s, n, class, n % 2 ? "example.org" : NULL, tokens, 50, NULL, 0) != 1)
                        _exit(3);
                ack[0] = (uint8_t) n;
                ack[1] = (uint8_t) class;
                /* n < 256 per run is plenty; the low byte and the order identify it */
                if (write(fd, ack, 2) != 2)
                        _exit(4);
        }
}

START_TEST(test_kill9)
{
        unsigned total_acked = 0;

        srand((unsigned) time(NULL) ^ (unsigned) getpid());
        for (unsigned round = 0; round < 4; round++) {
                SpamClass acked[4096];
                unsigned n_acked = 0;
                SpamStore *s;
                SpamStoreStats st;
                uint8_t buf[2];
                int p[2], status;
                pid_t pid;

                rm_rf_flat(test_dir);
                ck_assert_int_eq(mkdir(test_dir, 0700), 0);
                ck_assert_int_eq(pipe(p), 0);
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        close(p[0]);
                        kill_child(p[1]);
                        _exit(1);
                }
                close(p[1]);

                /* Let it learn a while, then kill it at a random moment. */
                usleep(20000 + (useconds_t) (rand() % 150000));
                ck_assert_int_eq(kill(pid, SIGKILL), 0);
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

                while (read(p[0], buf, 2) == 2) {
                        ck_assert_uint_eq(buf[0], n_acked & 0xff);
                        ck_assert_uint_lt(n_acked, ELEMENTSOF(acked));
                        acked[n_acked++] = (SpamClass) buf[1];
                }
                close(p[0]);

                s = open_store();
                for (unsigned n = 0; n < n_acked; n++)
                        ck_assert_msg(class_of(s, n) == acked[n], "round %u: message %u of %u acknowledged lost",
                                      round, n, n_acked);
                ck_assert_int_eq(spam_store_stats(s, &st), 0);
                /* at most one more record than acknowledged: the one in flight */
                ck_assert_uint_ge(st.journal_records, n_acked);
                ck_assert_uint_le(st.journal_records, n_acked + 1);
                ck_assert_uint_eq(st.totals.spam + st.totals.ham, st.journal_records);
                ck_assert_uint_eq(st.domains, st.journal_records >= 2 ? 1 : 0);
                spam_store_free(s);
                total_acked += n_acked;
        }
        ck_assert_uint_gt(total_acked, 0);
}
END_TEST

static Suite* spam_store_suite(void) {
        Suite *s = suite_create("spam-store");
        TCase *tc;

        tc = tcase_create("journal records");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_record_parse_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("learning");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_learn_lookup);
        tcase_add_test(tc, test_learn_invalid);
        tcase_add_test(tc, test_same_class_twice);
        tcase_add_test(tc, test_move);
        tcase_add_test(tc, test_forget);
        tcase_add_test(tc, test_domain_scope);
        tcase_add_test(tc, test_batching);
        tcase_add_test(tc, test_reopen);
        tcase_add_test(tc, test_lexicon);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);

        tc = tcase_create("recovery");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_torn_tail);
        tcase_add_test(tc, test_corrupt_middle);
        tcase_add_test(tc, test_secret_missing);
        tcase_add_test(tc, test_dirty_rebuild);
        tcase_add_test(tc, test_catch_up);
        tcase_add_test(tc, test_schema_and_damage_rebuild);
        tcase_add_test(tc, test_page_damage_rebuild);
        tcase_add_loop_test(tc, test_rebuild_equals_incremental, 0, ELEMENTSOF(memory_limits));
        tcase_add_loop_test(tc, test_compact_and_reset, 0, ELEMENTSOF(memory_limits));
        tcase_add_loop_test(tc, test_many_tokens, 0, ELEMENTSOF(memory_limits));
        tcase_add_loop_test(tc, test_compact_policy, 0, ELEMENTSOF(memory_limits));
        tcase_add_test(tc, test_compact_crash_after_rename);
        tcase_add_test(tc, test_kill9);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(spam_store_suite);
