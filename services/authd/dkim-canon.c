/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 9)
#include <immintrin.h>
#define HAVE_AVX2_DISPATCH 1
#endif

#include "cleanup.h"
#include "dkim-canon.h"
#include "dkim-key.h"

int dkim_buffer_append(DkimBuffer *b, const void *p, size_t n) {
        assert(b);

        if (n == 0)
                return 0;
        if (b->len + n + 1 > b->alloc) {
                size_t a = MAX(b->alloc * 2, b->len + n + 1);
                char *d;

                a = MAX(a, (size_t) 256);
                d = realloc(b->data, a);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->alloc = a;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

void dkim_buffer_done(DkimBuffer *b) {
        assert(b);
        free(b->data);
        *b = (DkimBuffer) DKIM_BUFFER_NULL;
}

static bool is_wsp(char c) {
        return c == ' ' || c == '\t';
}

static int canon_header_simple(const char *raw, size_t len, DkimBuffer *out) {
        int r;

        /* Drop the field's own line end, then copy with bare LF turned into CRLF. */
        if (len > 0 && raw[len - 1] == '\n')
                len--;
        if (len > 0 && raw[len - 1] == '\r')
                len--;

        for (size_t i = 0, start = 0; i <= len; i++) {
                if (i < len && !(raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r')))
                        continue;
                r = dkim_buffer_append(out, raw + start, i - start);
                if (r < 0)
                        return r;
                if (i < len) {
                        r = dkim_buffer_append(out, "\r\n", 2);
                        if (r < 0)
                                return r;
                }
                start = i + 1;
        }
        return dkim_buffer_append(out, "\r\n", 2);
}

static int canon_header_relaxed(const char *name, size_t name_len, const char *value, size_t value_len,
                                DkimBuffer *out) {
        bool pending_space = false, started = false;
        char chunk[256];
        size_t n = 0;
        int r;

        for (size_t i = 0; i < name_len; i++) {
                if (n == sizeof(chunk)) {
                        r = dkim_buffer_append(out, chunk, n);
                        if (r < 0)
                                return r;
                        n = 0;
                }
                chunk[n++] = (char) tolower((unsigned char) name[i]);
        }
        r = dkim_buffer_append(out, chunk, n);
        if (r < 0)
                return r;
        r = dkim_buffer_append(out, ":", 1);
        if (r < 0)
                return r;

        n = 0;
        for (size_t i = 0; i < value_len; i++) {
                char c = value[i];

                if (c == '\r' || c == '\n')
                        continue;
                if (is_wsp(c)) {
                        pending_space = started;
                        continue;
                }
                if (n + 2 > sizeof(chunk)) {
                        r = dkim_buffer_append(out, chunk, n);
                        if (r < 0)
                                return r;
                        n = 0;
                }
                if (pending_space)
                        chunk[n++] = ' ';
                pending_space = false;
                started = true;
                chunk[n++] = c;
        }
        r = dkim_buffer_append(out, chunk, n);
        if (r < 0)
                return r;
        return dkim_buffer_append(out, "\r\n", 2);
}

int dkim_canon_header(DkimCanon c, const char *buf, const Rfc5322Field *f, DkimBuffer *out) {
        assert(buf);
        assert(f);
        assert(out);

        if (c == DKIM_CANON_SIMPLE)
                return canon_header_simple(buf + f->raw_offset, f->raw_len, out);
        return canon_header_relaxed(f->name, f->name_len, f->value, f->value_len, out);
}

int dkim_header_fields(const char *msg, size_t len, Rfc5322Field **ret, size_t *ret_n, size_t *ret_body) {
        _cleanup_free_ Rfc5322Field *fields = NULL;
        size_t offset = 0, n = 0, count = 0, alloc = 0;
        int r;

        assert(msg || len == 0);
        assert(ret);
        assert(ret_n);

        for (;;) {
                Rfc5322Field f;

                r = rfc5322_field_next(msg, len, NULL, &offset, &count, &f);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (n >= alloc) {
                        Rfc5322Field *a;

                        alloc = MAX(alloc * 2, (size_t) 32);
                        a = reallocarray(fields, alloc, sizeof(Rfc5322Field));
                        if (!a)
                                return -ENOMEM;
                        fields = a;
                }
                fields[n++] = f;
        }

        *ret = TAKE_PTR(fields);
        *ret_n = n;
        if (ret_body)
                *ret_body = offset;
        return 0;
}

int dkim_canon_signed_headers(DkimCanon c, const char *msg, const Rfc5322Field *fields, size_t n_fields,
                              char * const *names, size_t n_names,
                              const char *sig_field, size_t sig_field_len, DkimBuffer *out) {
        _cleanup_free_ bool *used = NULL;
        _cleanup_free_ char *copy = NULL;
        size_t offset = 0, before;
        Rfc5322Field f;
        int r;

        assert(fields || n_fields == 0);
        assert(names || n_names == 0);
        assert(sig_field);
        assert(out);

        used = calloc(MAX(n_fields, (size_t) 1), sizeof(bool));
        if (!used)
                return -ENOMEM;

        for (size_t k = 0; k < n_names; k++) {
                size_t nl = strlen(names[k]);

                for (size_t j = n_fields; j > 0; j--) {
                        const Rfc5322Field *h = fields + j - 1;

                        if (used[j - 1] || h->name_len != nl || strncasecmp(h->name, names[k], nl) != 0)
                                continue;
                        used[j - 1] = true;
                        r = dkim_canon_header(c, msg, h, out);
                        if (r < 0)
                                return r;
                        break;
                }
        }

        /* The signature field itself, parsed like any other field, without its CRLF. */
        copy = malloc(sig_field_len + 3);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, sig_field, sig_field_len);
        while (sig_field_len > 0 && IN_SET(copy[sig_field_len - 1], '\r', '\n'))
                sig_field_len--;
        memcpy(copy + sig_field_len, "\r\n", 3);
        r = rfc5322_field_next(copy, sig_field_len + 2, NULL, &offset, NULL, &f);
        if (r < 0)
                return r;
        if (r == 0)
                return -EINVAL;
        before = out->len;
        r = dkim_canon_header(c, copy, &f, out);
        if (r < 0)
                return r;
        assert(out->len >= before + 2);
        out->len -= 2;
        out->data[out->len] = 0;
        return 0;
}

/* Body canonicalization as a byte-at-a-time state machine, so that chunk boundaries
 * (even one between CR and LF) do not matter. Empty lines are counted and written only
 * when more content follows, which drops them at the end of the body (§3.4.3, §3.4.4).
 * Most of a body is its own canonical form: such stretches, lines with their CRLF
 * included, go straight from the caller's buffer into the hash, and only the bytes the
 * state machine changes or holds back pass through a small output buffer. Only the first
 * `limit` bytes are hashed, but all are counted. */
struct DkimBodyHasher {
        DkimCanon canon;
        EVP_MD_CTX *md;
        uint64_t limit;
        uint64_t total;
        uint64_t empty_lines;
        bool pending_cr;
        bool pending_wsp;
        bool line_has_content;
        DkimBuffer *sink;               /* when set, output is collected here too */
        size_t out_len;
        char out[4096];
};

DkimBodyHasher* dkim_body_hasher_free(DkimBodyHasher *h) {
        if (!h)
                return NULL;
        EVP_MD_CTX_free(h->md);
        free(h);
        return NULL;
}

int dkim_body_hasher_new(DkimCanon c, uint64_t limit, DkimBodyHasher **ret) {
        _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *h = NULL;

        assert(c >= 0 && c < _DKIM_CANON_MAX);
        assert(ret);

        h = calloc(1, sizeof(DkimBodyHasher));
        if (!h)
                return -ENOMEM;
        h->canon = c;
        h->limit = limit;
        h->md = EVP_MD_CTX_new();
        if (!h->md)
                return -ENOMEM;
        if (EVP_DigestInit_ex(h->md, dkim_sha256(), NULL) != 1)
                return dkim_openssl_error(-EIO, "EVP_DigestInit_ex(SHA-256)");

        *ret = TAKE_PTR(h);
        return 0;
}

static int flush_out(DkimBodyHasher *h) {
        if (h->sink) {
                int r = dkim_buffer_append(h->sink, h->out, h->out_len);
                if (r < 0)
                        return r;
        }
        if (h->out_len > 0 && EVP_DigestUpdate(h->md, h->out, h->out_len) != 1)
                return dkim_openssl_error(-EIO, "EVP_DigestUpdate");
        h->out_len = 0;
        return 0;
}

static int emit(DkimBodyHasher *h, const char *p, size_t n) {
        int r;

        for (size_t i = 0; i < n; i++) {
                if (h->total++ >= h->limit)
                        continue;
                if (h->out_len == sizeof(h->out)) {
                        r = flush_out(h);
                        if (r < 0)
                                return r;
                }
                h->out[h->out_len++] = p[i];
        }
        return 0;
}

static int emit_content(DkimBodyHasher *h, char c) {
        int r;

        for (; h->empty_lines > 0; h->empty_lines--) {
                r = emit(h, "\r\n", 2);
                if (r < 0)
                        return r;
        }
        if (h->pending_wsp) {
                h->pending_wsp = false;
                r = emit(h, " ", 1);
                if (r < 0)
                        return r;
        }
        h->line_has_content = true;
        return emit(h, &c, 1);
}

static int end_line(DkimBodyHasher *h) {
        h->pending_wsp = false;         /* relaxed: trailing WSP goes */
        if (!h->line_has_content) {
                h->empty_lines++;
                return 0;
        }
        h->line_has_content = false;
        return emit(h, "\r\n", 2);
}

static int feed_byte(DkimBodyHasher *h, char c) {
        int r;

        if (h->pending_cr) {
                h->pending_cr = false;
                if (c == '\n')
                        return end_line(h);
                r = emit_content(h, '\r');     /* a lone CR is data */
                if (r < 0)
                        return r;
        }
        if (c == '\r') {
                h->pending_cr = true;
                return 0;
        }
        if (c == '\n')
                return end_line(h);
        if (h->canon == DKIM_CANON_RELAXED && is_wsp(c)) {
                h->pending_wsp = true;
                return 0;
        }
        return emit_content(h, c);
}

/* Bytes that canonicalization passes through unchanged, hashed from where they are: all
 * are counted, the first ones up to the limit hashed. */
static int hash_span(DkimBodyHasher *h, const char *p, size_t n) {
        uint64_t room = h->total < h->limit ? h->limit - h->total : 0;
        size_t k = (uint64_t) n < room ? n : (size_t) room;
        int r;

        if (n == 0)
                return 0;
        r = flush_out(h);               /* what the state machine wrote comes first */
        if (r < 0)
                return r;
        h->total += n;
        if (k == 0)
                return 0;
        if (h->sink) {
                r = dkim_buffer_append(h->sink, p, k);
                if (r < 0)
                        return r;
        }
        if (EVP_DigestUpdate(h->md, p, k) != 1)
                return dkim_openssl_error(-EIO, "EVP_DigestUpdate");
        return 0;
}

/* Relaxed body: 0 for a byte passed through unchanged, 1 for SP (unchanged when it is
 * alone between two such bytes), 2 for the bytes the state machine must see. */
static const uint8_t relaxed_class[256] = {
        [' '] = 1, ['\t'] = 2, ['\r'] = 2, ['\n'] = 2,
};

#ifdef __SSE2__
static uint32_t eq_mask32(__m128i lo, __m128i hi, char c) {
        const __m128i k = _mm_set1_epi8(c);

        return (uint32_t) _mm_movemask_epi8(_mm_cmpeq_epi8(lo, k)) |
                (uint32_t) _mm_movemask_epi8(_mm_cmpeq_epi8(hi, k)) << 16;
}

/* Bit k set when s[k] stops the unchanged run (of the 32 bytes at s, with s[32] readable):
 * simple: CR and LF; relaxed: also HTAB, and SP followed by SP, HTAB, CR or LF. */
static uint32_t stop_mask32(DkimCanon c, const char *s) {
        const __m128i lo = _mm_loadu_si128((const __m128i*) s), hi = _mm_loadu_si128((const __m128i*) (s + 16));
        uint32_t line, sp, other, next;

        line = eq_mask32(lo, hi, '\r') | eq_mask32(lo, hi, '\n');
        if (c == DKIM_CANON_SIMPLE)
                return line;

        other = line | eq_mask32(lo, hi, '\t');
        sp = eq_mask32(lo, hi, ' ');
        next = (sp | other) >> 1 | (uint32_t) (relaxed_class[(uint8_t) s[32]] != 0) << 31;
        return other | (sp & next);
}
#endif

/* The end of the text from s[i] on, within one line, that canonicalization leaves as it
 * is: it stops at a line end and (relaxed) at white space other than a single SP between
 * two bytes that are not white space. */
#ifdef HAVE_AVX2_DISPATCH
/* stop_mask32() for 64 bytes at a time where the processor has AVX2 (chosen at run time;
 * the build targets plain x86-64), and without stopping at the CRLF that ends a line with
 * content (a CR whose next byte is LF and whose previous byte, inside this run, is not an
 * LF): such a line end is its own canonical form in both canonicalizations, so whole
 * paragraphs go to the hash in one stretch. An empty line still stops the run (its CR
 * follows an LF), and so does a bare CR or LF. */
__attribute__((target("avx2")))
static size_t plain_run_avx2(DkimCanon c, const char *s, size_t i, size_t n) {
        const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n'),
                tab = _mm256_set1_epi8('\t'), sp = _mm256_set1_epi8(' ');
        uint64_t prev_lf = 1;           /* the byte before the run: unknown, taken as an LF */
        uint64_t skip_lf = 0;           /* the LF of a line end whose CR ended the last block */

        while (i + 65 <= n) {
                __m256i lo = _mm256_loadu_si256((const __m256i*) (s + i)),
                        hi = _mm256_loadu_si256((const __m256i*) (s + i + 32));
                uint64_t m_cr, m_lf, normal_cr, line, other, space, next, stop;

                m_cr = (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, cr)) |
                        (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, cr)) << 32;
                m_lf = (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, lf)) |
                        (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, lf)) << 32;
                normal_cr = m_cr & (m_lf >> 1 | (uint64_t) (s[i + 64] == '\n') << 63) & ~(m_lf << 1 | prev_lf);
                line = (m_cr & ~normal_cr) | (m_lf & ~(normal_cr << 1 | skip_lf));
                if (c == DKIM_CANON_SIMPLE)
                        stop = line;
                else {
                        other = line |
                                (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, tab)) |
                                (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, tab)) << 32;
                        space = (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, sp)) |
                                (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, sp)) << 32;
                        /* white space before any CR or LF is trailing white space */
                        next = (space | other | m_cr | m_lf) >> 1 | (uint64_t) (relaxed_class[(uint8_t) s[i + 64]] != 0) << 63;
                        stop = other | (space & next);
                }
                if (stop != 0)
                        return i + (size_t) __builtin_ctzll(stop);
                prev_lf = m_lf >> 63;
                skip_lf = normal_cr >> 63;
                i += 64;
        }
        /* The line end split by the block boundary: its LF is the first byte of the rest,
         * which the callers read byte-wise; step over it here. */
        if (skip_lf && i < n && s[i] == '\n')
                i++;
        return i;
}

static bool have_avx2(void) {
        static int cached = -1;

        if (cached < 0)
                cached = __builtin_cpu_supports("avx2") ? 1 : 0;
        return cached;
}
#endif

static size_t plain_run_end(DkimCanon c, const char *s, size_t i, size_t n) {
#ifdef HAVE_AVX2_DISPATCH
        if (n - i >= 65 && have_avx2()) {
                size_t j = plain_run_avx2(c, s, i, n);

                if (j + 65 <= n)
                        return j;               /* stopped at a byte that matters */
                i = j;                          /* the rest is shorter than 65 bytes */
        }
#endif
#ifdef __SSE2__
        while (i + 33 <= n) {
                uint32_t stop = stop_mask32(c, s + i);

                if (stop != 0)
                        return i + (size_t) __builtin_ctz(stop);
                i += 32;
        }
#endif
        while (i < n) {
                uint8_t k = c == DKIM_CANON_SIMPLE ? (s[i] == '\r' || s[i] == '\n') * 2 : relaxed_class[(uint8_t) s[i]];

                if (k == 0)
                        i++;
                else if (k == 1 && i + 1 < n && relaxed_class[(uint8_t) s[i + 1]] == 0)
                        i += 2;
                else
                        break;
        }
        return i;
}

/* With nothing pending, the end of the text from s[i] on that canonicalization leaves as
 * it is, across lines: the CRLF of a line with content is its own canonical form, an
 * empty line is not (it waits for what follows). Keeps h->line_has_content. */
static size_t unchanged_end(DkimBodyHasher *h, const char *s, size_t i, size_t n) {
        for (;;) {
                size_t j = plain_run_end(h->canon, s, i, n);

                /* a run may cross line ends: the line it ends in has content unless the run
                 * ended right after one */
                if (j > i)
                        h->line_has_content = s[j - 1] != '\n';
                i = j;
                if (i + 1 >= n || s[i] != '\r' || s[i + 1] != '\n' || !h->line_has_content)
                        return i;
                i += 2;
                h->line_has_content = false;
        }
}

int dkim_body_hasher_feed(DkimBodyHasher *h, const void *p, size_t n) {
        const char *s = p;
        size_t span = 0;                /* s[span..i) is unchanged and not hashed yet */
        int r;

        assert(h);
        assert(p || n == 0);

        for (size_t i = 0; i < n;) {
                if (!h->pending_cr && h->empty_lines == 0 && !h->pending_wsp) {
                        size_t j = unchanged_end(h, s, i, n);

                        if (j > i) {
                                i = j;
                                continue;
                        }
                }
                r = hash_span(h, s + span, i - span);
                if (r < 0)
                        return r;
                r = feed_byte(h, s[i++]);
                if (r < 0)
                        return r;
                span = i;
        }
        return hash_span(h, s + span, n - span);
}

static int finish_stream(DkimBodyHasher *h) {
        int r;

        if (h->pending_cr) {
                h->pending_cr = false;
                r = emit_content(h, '\r');
                if (r < 0)
                        return r;
        }
        if (h->line_has_content) {      /* a last line without CRLF gets one */
                r = end_line(h);
                if (r < 0)
                        return r;
        }
        h->empty_lines = 0;
        if (h->canon == DKIM_CANON_SIMPLE && h->total == 0)
                return emit(h, "\r\n", 2);    /* §3.4.3: an empty body is one CRLF */
        return 0;
}

int dkim_body_hasher_finish(DkimBodyHasher *h, uint8_t ret_hash[static 32], uint64_t *ret_total) {
        unsigned len = 0;
        int r;

        assert(h);

        r = finish_stream(h);
        if (r < 0)
                return r;
        r = flush_out(h);
        if (r < 0)
                return r;

        if (EVP_DigestFinal_ex(h->md, ret_hash, &len) != 1 || len != 32)
                return dkim_openssl_error(-EIO, "EVP_DigestFinal_ex");
        if (ret_total)
                *ret_total = h->total;
        return 0;
}

/* The same state machine with its output collected as well (tests, tools). */
int dkim_canon_body(DkimCanon c, const char *body, size_t len, DkimBuffer *out) {
        _cleanup_(dkim_body_hasher_freep) DkimBodyHasher *h = NULL;
        uint8_t hash[32];
        int r;

        assert(body || len == 0);
        assert(out);

        r = dkim_body_hasher_new(c, UINT64_MAX, &h);
        if (r < 0)
                return r;
        h->sink = out;
        r = dkim_body_hasher_feed(h, body, len);
        if (r < 0)
                return r;
        return dkim_body_hasher_finish(h, hash, NULL);
}
