/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "check-main.h"
#include "cleanup.h"
#include "dkim-canon.h"

/* RFC 6376 §3.4.5, exactly. */
#define RFC_HEADERS "A: X\r\nB : Y\t\r\n\tZ  \r\n"
#define RFC_BODY " C \r\nD \t E\r\n\r\n\r\n"

static void canon_headers(DkimCanon c, const char *msg, char * const *names, size_t n, const char *sig,
                          DkimBuffer *out) {
        _cleanup_free_ Rfc5322Field *fields = NULL;
        size_t n_fields, body;

        ck_assert_int_eq(dkim_header_fields(msg, strlen(msg), &fields, &n_fields, &body), 0);
        ck_assert_int_eq(dkim_canon_signed_headers(c, msg, fields, n_fields, names, n, sig, strlen(sig), out), 0);
}

START_TEST(test_rfc_example_headers)
{
        char *names[] = { (char*) "a", (char*) "b" };
        _cleanup_(dkim_buffer_done) DkimBuffer relaxed = DKIM_BUFFER_NULL, simple = DKIM_BUFFER_NULL;

        canon_headers(DKIM_CANON_RELAXED, RFC_HEADERS "\r\n" RFC_BODY, names, 2, "X-Sig: v", &relaxed);
        ck_assert_str_eq(relaxed.data, "a:X\r\nb:Y Z\r\nx-sig:v");
        canon_headers(DKIM_CANON_SIMPLE, RFC_HEADERS "\r\n" RFC_BODY, names, 2, "X-Sig: v", &simple);
        ck_assert_str_eq(simple.data, RFC_HEADERS "X-Sig: v");
}
END_TEST

static const struct {
        const char *name;
        DkimCanon canon;
        const char *in;
        const char *out;
} body_table[] = {
        { "rfc relaxed", DKIM_CANON_RELAXED, RFC_BODY, " C\r\nD E\r\n" },
        { "rfc simple", DKIM_CANON_SIMPLE, RFC_BODY, " C \r\nD \t E\r\n" },
        { "empty simple", DKIM_CANON_SIMPLE, "", "\r\n" },
        { "empty relaxed", DKIM_CANON_RELAXED, "", "" },
        { "only empty lines simple", DKIM_CANON_SIMPLE, "\r\n\r\n\r\n", "\r\n" },
        { "only empty lines relaxed", DKIM_CANON_RELAXED, "\r\n\r\n", "" },
        { "blank lines with spaces relaxed", DKIM_CANON_RELAXED, "a\r\n  \r\n\t\r\n", "a\r\n" },
        { "blank lines with spaces simple", DKIM_CANON_SIMPLE, "a\r\n  \r\n", "a\r\n  \r\n" },
        { "no final crlf simple", DKIM_CANON_SIMPLE, "a\r\nb", "a\r\nb\r\n" },
        { "no final crlf relaxed", DKIM_CANON_RELAXED, "a  \r\nb ", "a\r\nb\r\n" },
        { "inner empty lines kept", DKIM_CANON_RELAXED, "a\r\n\r\n\r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n" },
        { "bare lf read as crlf", DKIM_CANON_SIMPLE, "a\nb\n\n", "a\r\nb\r\n" },
        { "lone cr is data", DKIM_CANON_SIMPLE, "a\rb\r\n", "a\rb\r\n" },
        { "trailing lone cr", DKIM_CANON_SIMPLE, "a\r", "a\r\r\n" },
        { "leading wsp relaxed", DKIM_CANON_RELAXED, "\t\t x\r\n", " x\r\n" },
        { "8-bit bytes", DKIM_CANON_RELAXED, "gr\xc3\xbc\xc3\x9f  dich\r\n", "gr\xc3\xbc\xc3\x9f dich\r\n" },
};

START_TEST(test_body_table)
{
        for (size_t i = 0; i < ELEMENTSOF(body_table); i++) {
                _cleanup_(dkim_buffer_done) DkimBuffer out = DKIM_BUFFER_NULL;

                ck_assert_int_eq(dkim_canon_body(body_table[i].canon, body_table[i].in,
                                                 strlen(body_table[i].in), &out), 0);
                ck_assert_msg(out.len == strlen(body_table[i].out) &&
                              memcmp(out.data ? out.data : "", body_table[i].out, out.len) == 0,
                              "%s: got \"%.*s\"", body_table[i].name, (int) out.len, out.data ? out.data : "");
        }
}
END_TEST

static void hash_whole(DkimCanon c, const char *s, size_t n, uint64_t limit, uint8_t h[32], uint64_t *total) {
        _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *bh = NULL;

        ck_assert_int_eq(dkim_body_hasher_new(c, limit, &bh), 0);
        ck_assert_int_eq(dkim_body_hasher_feed(bh, s, n), 0);
        ck_assert_int_eq(dkim_body_hasher_finish(bh, h, total), 0);
}

START_TEST(test_body_chunking)
{
        /* Every split point, including one between CR and LF, gives the same hash. */
        static const char body[] = "line one  \r\n\r\n x\ty \r\nlast\r\n\r\n\r\n";
        size_t n = strlen(body);

        for (DkimCanon c = 0; c < _DKIM_CANON_MAX; c++) {
                uint8_t whole[32];
                uint64_t total;

                hash_whole(c, body, n, UINT64_MAX, whole, &total);
                for (size_t split = 0; split <= n; split++) {
                        _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *h = NULL;
                        uint8_t part[32];
                        uint64_t t2;

                        ck_assert_int_eq(dkim_body_hasher_new(c, UINT64_MAX, &h), 0);
                        ck_assert_int_eq(dkim_body_hasher_feed(h, body, split), 0);
                        ck_assert_int_eq(dkim_body_hasher_feed(h, body + split, n - split), 0);
                        ck_assert_int_eq(dkim_body_hasher_finish(h, part, &t2), 0);
                        ck_assert_mem_eq(whole, part, 32);
                        ck_assert_uint_eq(total, t2);
                }
        }
}
END_TEST

/* The body rules of RFC 6376 §3.4.3 and §3.4.4 written the obvious way, line by line,
 * without any of the hasher's shortcuts: a line ends at CRLF or a bare LF, a lone CR is
 * data; relaxed turns each run of WSP into one SP and drops it at the end of a line;
 * empty lines at the end go; simple turns an empty body into one CRLF. */
static void reference_body(DkimCanon c, const char *in, size_t n, DkimBuffer *out) {
        DkimBuffer line = DKIM_BUFFER_NULL;
        size_t empty = 0, i = 0;
        bool any = false;

        while (i < n) {
                size_t j = i;
                bool ended = false;

                line.len = 0;
                while (j < n) {
                        if (in[j] == '\n') {
                                j++;
                                ended = true;
                                break;
                        }
                        if (in[j] == '\r' && j + 1 < n && in[j + 1] == '\n') {
                                j += 2;
                                ended = true;
                                break;
                        }
                        if (c == DKIM_CANON_RELAXED && (in[j] == ' ' || in[j] == '\t')) {
                                while (j < n && (in[j] == ' ' || in[j] == '\t'))
                                        j++;
                                ck_assert_int_eq(dkim_buffer_append(&line, " ", 1), 0);
                                continue;
                        }
                        ck_assert_int_eq(dkim_buffer_append(&line, in + j, 1), 0);
                        j++;
                }
                (void) ended;
                if (c == DKIM_CANON_RELAXED && line.len > 0 && line.data[line.len - 1] == ' ')
                        line.len--;
                if (line.len == 0)
                        empty++;
                else {
                        for (; empty > 0; empty--)
                                ck_assert_int_eq(dkim_buffer_append(out, "\r\n", 2), 0);
                        ck_assert_int_eq(dkim_buffer_append(out, line.data, line.len), 0);
                        ck_assert_int_eq(dkim_buffer_append(out, "\r\n", 2), 0);
                        any = true;
                }
                i = j;
        }
        if (!any && c == DKIM_CANON_SIMPLE)
                ck_assert_int_eq(dkim_buffer_append(out, "\r\n", 2), 0);
        dkim_buffer_done(&line);
}

/* s with CR, LF and HTAB made visible, for failure messages. */
static char* show(const char *s, size_t n) {
        char *out = malloc(n * 2 + 1), *o = out;

        ck_assert_ptr_nonnull(out);
        for (size_t i = 0; i < n; i++)
                if (s[i] == '\r' || s[i] == '\n' || s[i] == '\t') {
                        *o++ = '\\';
                        *o++ = s[i] == '\r' ? 'r' : s[i] == '\n' ? 'n' : 't';
                } else
                        *o++ = s[i];
        *o = 0;
        return out;
}

START_TEST(test_body_against_reference)
{
        /* Random bodies from the bytes that matter (and enough plain text for the long
         * unchanged stretches that are hashed in place), fed in random pieces, with and
         * without l=: the hash and the length must be those of the reference. */
        static const char alphabet[] = "aaaaaaaaaaaaaaaabbbbbbbbbb      \t\r\r\n\n\n\xc3";
        unsigned seed = 20261127;

        for (unsigned round = 0; round < 3000; round++) {
                _cleanup_(dkim_buffer_done) DkimBuffer ref = DKIM_BUFFER_NULL;
                _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *h = NULL;
                DkimCanon c = round % 2 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
                size_t n = (size_t) rand_r(&seed) % (round < 2000 ? 80 : 700), limit;
                char body[700];
                uint8_t got[32], expected[32];
                uint64_t total;

                for (size_t i = 0; i < n; i++)
                        body[i] = alphabet[(size_t) rand_r(&seed) % (sizeof(alphabet) - 1)];
                reference_body(c, body, n, &ref);
                {
                        _cleanup_(dkim_buffer_done) DkimBuffer whole = DKIM_BUFFER_NULL;
                        _cleanup_free_ char *shown = show(body, n), *a = NULL, *b = NULL;

                        ck_assert_int_eq(dkim_canon_body(c, body, n, &whole), 0);
                        a = show(whole.data, whole.len);
                        b = show(ref.data, ref.len);
                        ck_assert_msg(whole.len == ref.len && memcmp(whole.data ?: "", ref.data ?: "", ref.len) == 0,
                                      "round %u, %s \"%s\": got \"%s\", expected \"%s\"",
                                      round, dkim_canon_to_string(c), shown, a, b);
                }
                limit = rand_r(&seed) % 4 == 0 ? (size_t) rand_r(&seed) % (ref.len + 2) : SIZE_MAX;

                ck_assert_int_eq(dkim_body_hasher_new(c, limit == SIZE_MAX ? UINT64_MAX : limit, &h), 0);
                for (size_t i = 0; i < n;) {
                        size_t k = (size_t) rand_r(&seed) % 40;

                        k += rand_r(&seed) % 3 == 0 ? 0 : 1;    /* now and then an empty piece */
                        k = MIN(k, n - i);

                        ck_assert_int_eq(dkim_body_hasher_feed(h, body + i, k), 0);
                        i += k;
                }
                ck_assert_int_eq(dkim_body_hasher_finish(h, got, &total), 0);
                ck_assert_msg(total == ref.len, "round %u (%s, %zu bytes): canonical length %" PRIu64 ", expected %zu",
                              round, dkim_canon_to_string(c), n, total, ref.len);
                ck_assert_int_eq(EVP_Digest(ref.data ?: "", MIN(ref.len, limit), expected, NULL, EVP_sha256(), NULL), 1);
                ck_assert_msg(memcmp(got, expected, 32) == 0, "round %u (%s, %zu bytes, l=%zu): hash differs",
                              round, dkim_canon_to_string(c), n, limit);
        }
}
END_TEST

/* A body of text lines as mail has them: words of letters and single spaces, CRLF line
 * ends, now and then an empty line (several at the end, sometimes), a trailing space or
 * tab, a bare LF: long unchanged stretches across line ends, which the hasher reads
 * 64 bytes at a time. */
static size_t text_body(char *out, size_t max, unsigned *seed) {
        size_t n = 0;

        while (n + 120 < max) {
                unsigned kind = (unsigned) rand_r(seed) % 20;
                size_t len = (size_t) rand_r(seed) % 100;

                if (kind == 0) {                /* an empty line, or a few */
                        for (unsigned k = (unsigned) rand_r(seed) % 3 + 1; k > 0; k--) {
                                out[n++] = '\r';
                                out[n++] = '\n';
                        }
                        continue;
                }
                for (size_t k = 0; k < len; k++)
                        out[n++] = (k % 7 == 6 && k + 1 < len) ? ' ' : (char) ('a' + rand_r(seed) % 26);
                if (kind == 1)
                        out[n++] = ' ';         /* trailing white space */
                else if (kind == 2)
                        out[n++] = '\t';
                if (kind == 3)
                        out[n++] = '\n';        /* a bare LF */
                else {
                        out[n++] = '\r';
                        out[n++] = '\n';
                }
        }
        for (unsigned k = (unsigned) rand_r(seed) % 3; k > 0; k--) {   /* empty lines at the end */
                out[n++] = '\r';
                out[n++] = '\n';
        }
        return n;
}

START_TEST(test_text_bodies_against_reference)
{
        unsigned seed = 4711;

        for (unsigned round = 0; round < 400; round++) {
                _cleanup_(dkim_buffer_done) DkimBuffer ref = DKIM_BUFFER_NULL;
                DkimCanon c = round % 2 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
                char body[3000];
                size_t n = text_body(body, (size_t) rand_r(&seed) % 2500 + 200, &seed);
                uint8_t got[32], expected[32];
                uint64_t total;

                reference_body(c, body, n, &ref);
                /* whole, and in pieces */
                for (unsigned pieces = 0; pieces < 2; pieces++) {
                        _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *h = NULL;

                        ck_assert_int_eq(dkim_body_hasher_new(c, UINT64_MAX, &h), 0);
                        for (size_t i = 0; i < n;) {
                                size_t k = pieces ? (size_t) rand_r(&seed) % 300 + 1 : n;

                                k = MIN(k, n - i);
                                ck_assert_int_eq(dkim_body_hasher_feed(h, body + i, k), 0);
                                i += k;
                        }
                        ck_assert_int_eq(dkim_body_hasher_finish(h, got, &total), 0);
                        ck_assert_msg(total == ref.len, "round %u (%s, %zu bytes, %s): canonical length %" PRIu64
                                      ", expected %zu", round, dkim_canon_to_string(c), n,
                                      pieces ? "in pieces" : "whole", total, ref.len);
                        ck_assert_int_eq(EVP_Digest(ref.data ?: "", ref.len, expected, NULL, EVP_sha256(), NULL), 1);
                        ck_assert_msg(memcmp(got, expected, 32) == 0, "round %u (%s, %zu bytes, %s): hash differs",
                                      round, dkim_canon_to_string(c), n, pieces ? "in pieces" : "whole");
                }
        }
}
END_TEST

START_TEST(test_body_length_limit)
{
        uint8_t h[32], expected[32];
        uint64_t total;

        /* l=5 hashes "hello" of "hello\r\nworld\r\n" but counts all 14 bytes. */
        hash_whole(DKIM_CANON_SIMPLE, "hello\r\nworld\r\n", 14, 5, h, &total);
        ck_assert_uint_eq(total, 14);
        ck_assert_int_eq(EVP_Digest("hello", 5, expected, NULL, EVP_sha256(), NULL), 1);
        ck_assert_mem_eq(h, expected, 32);

        /* The empty body's well-known hashes (RFC 6376 §3.4.3/3.4.4 with errata 1384). */
        hash_whole(DKIM_CANON_SIMPLE, "", 0, UINT64_MAX, h, &total);
        ck_assert_int_eq(EVP_Digest("\r\n", 2, expected, NULL, EVP_sha256(), NULL), 1);
        ck_assert_mem_eq(h, expected, 32);
        hash_whole(DKIM_CANON_RELAXED, "", 0, UINT64_MAX, h, &total);
        ck_assert_int_eq(EVP_Digest("", 0, expected, NULL, EVP_sha256(), NULL), 1);
        ck_assert_mem_eq(h, expected, 32);
        ck_assert_uint_eq(total, 0);
}
END_TEST

START_TEST(test_header_selection)
{
        /* Bottom-up choice for repeated names, case-insensitive, absent names (over-signing)
         * contribute nothing. */
        static const char msg[] = "Received: one\r\nFrom: a@x\r\nreceived: two\r\nSubject: s\r\n\r\nbody\r\n";
        char *names[] = { (char*) "Received", (char*) "RECEIVED", (char*) "received", (char*) "from",
                          (char*) "subject", (char*) "subject", (char*) "to" };
        _cleanup_(dkim_buffer_done) DkimBuffer out = DKIM_BUFFER_NULL;

        canon_headers(DKIM_CANON_SIMPLE, msg, names, ELEMENTSOF(names), "DKIM-Signature: b=", &out);
        ck_assert_str_eq(out.data, "received: two\r\nReceived: one\r\nFrom: a@x\r\nSubject: s\r\nDKIM-Signature: b=");
}
END_TEST

START_TEST(test_header_relaxed_folding)
{
        static const char msg[] = "SUBJECT :  hello \r\n   world\t\r\nFrom:x\n\n";
        char *names[] = { (char*) "subject", (char*) "from" };
        _cleanup_(dkim_buffer_done) DkimBuffer out = DKIM_BUFFER_NULL, simple = DKIM_BUFFER_NULL;

        canon_headers(DKIM_CANON_RELAXED, msg, names, 2, "DKIM-Signature:  a=1;\r\n b=  ", &out);
        ck_assert_str_eq(out.data, "subject:hello world\r\nfrom:x\r\ndkim-signature:a=1; b=");
        /* simple turns a bare LF into CRLF */
        canon_headers(DKIM_CANON_SIMPLE, msg, names, 2, "S: x", &simple);
        ck_assert_str_eq(simple.data, "SUBJECT :  hello \r\n   world\t\r\nFrom:x\r\nS: x");
}
END_TEST

static Suite* dkim_canon_suite(void) {
        Suite *s = suite_create("dkim-canon");
        TCase *tc;

        tc = tcase_create("rfc6376 example");
        tcase_add_test(tc, test_rfc_example_headers);
        suite_add_tcase(s, tc);

        tc = tcase_create("body");
        tcase_add_test(tc, test_body_table);
        tcase_add_test(tc, test_body_chunking);
        tcase_add_test(tc, test_body_against_reference);
        tcase_add_test(tc, test_text_bodies_against_reference);
        tcase_set_timeout(tc, 120);     /* 3000 random bodies, also under the sanitizers */
        tcase_add_test(tc, test_body_length_limit);
        suite_add_tcase(s, tc);

        tc = tcase_create("headers");
        tcase_add_test(tc, test_header_selection);
        tcase_add_test(tc, test_header_relaxed_folding);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(dkim_canon_suite);
