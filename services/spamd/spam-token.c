/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Token hashes and the per-message token set of mailsec-spamd (see spam-token.h).
 *
 * The hash is SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF",
 * 2012): a 128-bit key, 64-bit output, two compression rounds per 8-byte block and four
 * finalisation rounds. It is written here as a small streaming hasher so that a token's
 * prefix and text are hashed without being copied into one buffer. The input of a token
 * is
 *
 *         one byte: strlen(prefix) | prefix | text
 *
 * so that moving bytes between prefix and text always changes the hash. */

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "spam-token.h"

typedef struct SipHash {
        uint64_t v0, v1, v2, v3;
        uint8_t tail[8];
        size_t n_tail;
        uint64_t total;
} SipHash;

static inline uint64_t rotl64(uint64_t x, unsigned b) {
        return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p) {
        return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16 | (uint64_t) p[3] << 24 |
               (uint64_t) p[4] << 32 | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48 | (uint64_t) p[7] << 56;
}

static inline void sip_round(SipHash *s) {
        s->v0 += s->v1;
        s->v1 = rotl64(s->v1, 13);
        s->v1 ^= s->v0;
        s->v0 = rotl64(s->v0, 32);
        s->v2 += s->v3;
        s->v3 = rotl64(s->v3, 16);
        s->v3 ^= s->v2;
        s->v0 += s->v3;
        s->v3 = rotl64(s->v3, 21);
        s->v3 ^= s->v0;
        s->v2 += s->v1;
        s->v1 = rotl64(s->v1, 17);
        s->v1 ^= s->v2;
        s->v2 = rotl64(s->v2, 32);
}

static inline void sip_compress(SipHash *s, uint64_t m) {
        s->v3 ^= m;
        sip_round(s);
        sip_round(s);
        s->v0 ^= m;
}

static void siphash_init(SipHash *s, const uint8_t key[static SPAM_TOKEN_KEY_SIZE]) {
        uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);

        /* "somepseudorandomlygeneratedbytes" */
        *s = (SipHash) {
                .v0 = k0 ^ UINT64_C(0x736f6d6570736575),
                .v1 = k1 ^ UINT64_C(0x646f72616e646f6d),
                .v2 = k0 ^ UINT64_C(0x6c7967656e657261),
                .v3 = k1 ^ UINT64_C(0x7465646279746573),
        };
}

static void siphash_update(SipHash *s, const void *data, size_t n) {
        const uint8_t *p = data;

        if (n == 0)
                return;                 /* data may be NULL then, and memcpy() must not see it */
        s->total += n;
        if (s->n_tail > 0) {
                size_t k = MIN(n, 8 - s->n_tail);

                memcpy(s->tail + s->n_tail, p, k);
                s->n_tail += k;
                p += k;
                n -= k;
                if (s->n_tail < 8)
                        return;
                sip_compress(s, load_le64(s->tail));
                s->n_tail = 0;
        }
        for (; n >= 8; p += 8, n -= 8)
                sip_compress(s, load_le64(p));
        memcpy(s->tail, p, n);
        s->n_tail = n;
}

static uint64_t siphash_final(SipHash *s) {
        uint64_t b = (s->total & 0xff) << 56;

        for (size_t i = 0; i < s->n_tail; i++)
                b |= (uint64_t) s->tail[i] << (8 * i);
        sip_compress(s, b);
        s->v2 ^= 0xff;
        for (unsigned i = 0; i < 4; i++)
                sip_round(s);
        return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/* SipHash-2-4 of n contiguous bytes followed by 8 zero bytes (which are not hashed, but
 * let the last block be read whole): the same value as siphash_update() and
 * siphash_final() give, without their tail buffer. */
static uint64_t siphash_oneshot(SipHash *s, const uint8_t *p, size_t n) {
        const uint8_t *end = p + (n & ~(size_t) 7);

        for (; p < end; p += 8)
                sip_compress(s, load_le64(p));
        /* the 0 to 7 bytes left, the zeros after them, and the length in the top byte */
        sip_compress(s, load_le64(p) | (uint64_t) (n & 0xff) << 56);
        s->v2 ^= 0xff;
        for (unsigned i = 0; i < 4; i++)
                sip_round(s);
        return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/* The input of most tokens fits here, and is hashed in one pass. */
#define TOKEN_HASH_BUF 128

uint64_t spam_token_hash(const SpamTokenKey *key, const char *prefix, const void *text, size_t len) {
        size_t plen = prefix ? strlen(prefix) : 0;
        uint8_t l;
        SipHash s;

        assert(key);
        assert(plen <= UINT8_MAX);
        assert(text || len == 0);

        l = (uint8_t) plen;
        siphash_init(&s, key->bytes);
        if (plen < TOKEN_HASH_BUF && len <= TOKEN_HASH_BUF - 1 - plen) {
                uint8_t buf[TOKEN_HASH_BUF + 8];
                size_t n = 1 + plen + len;

                buf[0] = l;
                if (plen > 0)
                        memcpy(buf + 1, prefix, plen);
                if (len > 0)
                        memcpy(buf + 1 + plen, text, len);
                memset(buf + n, 0, 8);
                return siphash_oneshot(&s, buf, n);
        }
        siphash_update(&s, &l, 1);
        siphash_update(&s, prefix, plen);
        siphash_update(&s, text, len);
        return siphash_final(&s);
}

static const char* const token_kind_table[_SPAM_TOKEN_KIND_MAX] = {
        [SPAM_TOKEN_WORD] = "word",
        [SPAM_TOKEN_HEADER] = "header",
        [SPAM_TOKEN_URL] = "url",
        [SPAM_TOKEN_IP] = "ip",
        [SPAM_TOKEN_BIGRAM] = "bigram",
        [SPAM_TOKEN_DEOBFUSCATED] = "deobfuscated",
        [SPAM_TOKEN_FEATURE] = "feature",
        [SPAM_TOKEN_MARKUP] = "markup",
        [SPAM_TOKEN_SHAPE] = "shape",
};

const char* spam_token_kind_to_string(SpamTokenKind k) {
        if ((unsigned) k >= _SPAM_TOKEN_KIND_MAX)
                return NULL;
        return token_kind_table[k];
}

/* The index holds position + 1 (0: empty slot) and is kept at most half full. Token
 * hashes are keyed PRF outputs and already uniform, but the set also takes hashes from
 * elsewhere (tests, tools): a multiplicative mix makes the slot depend on every bit. */
#define TOKENS_INDEX_MIN 256U

static inline size_t tokens_slot(uint64_t hash, size_t mask) {
        return (size_t) ((hash * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & mask;
}

static int tokens_reindex(SpamTokens *t, size_t size) {
        uint32_t *index;
        size_t mask = size - 1;

        index = calloc(size, sizeof(uint32_t));
        if (!index)
                return -ENOMEM;
        for (size_t i = 0; i < t->n; i++) {
                size_t slot = tokens_slot(t->hashes[i], mask);

                while (index[slot] != 0)
                        slot = (slot + 1) & mask;
                index[slot] = (uint32_t) (i + 1);
        }
        free(t->index);
        t->index = index;
        t->index_size = size;
        return 0;
}

ssize_t spam_tokens_find(const SpamTokens *t, uint64_t hash) {
        size_t mask, slot;

        assert(t);

        if (t->index_size == 0)
                return -ENOENT;
        mask = t->index_size - 1;
        for (slot = tokens_slot(hash, mask); t->index[slot] != 0; slot = (slot + 1) & mask)
                if (t->hashes[t->index[slot] - 1] == hash)
                        return (ssize_t) t->index[slot] - 1;
        return -ENOENT;
}

bool spam_tokens_contains(const SpamTokens *t, uint64_t hash) {
        return spam_tokens_find(t, hash) >= 0;
}

/* Grows the arrays to hold n tokens (the printable forms too with keep_text). */
static int tokens_grow(SpamTokens *t, size_t n) {
        uint64_t *h;
        uint8_t *k;

        if (n <= t->alloc)
                return 0;
        h = realloc(t->hashes, n * sizeof(uint64_t));
        if (!h)
                return -ENOMEM;
        t->hashes = h;
        k = realloc(t->kinds, n);
        if (!k)
                return -ENOMEM;
        t->kinds = k;
        if (t->keep_text) {
                char **x = realloc(t->text, n * sizeof(char*));

                if (!x)
                        return -ENOMEM;
                t->text = x;
        }
        t->alloc = n;
        return 0;
}

int spam_tokens_reserve(SpamTokens *t, size_t n) {
        size_t size = TOKENS_INDEX_MIN;
        int r;

        assert(t);

        if (n >= UINT32_MAX / 2)
                return -E2BIG;
        while (size < 2 * n)
                size *= 2;
        if (size > t->index_size) {
                r = tokens_reindex(t, size);
                if (r < 0)
                        return r;
        }
        return tokens_grow(t, n);
}

int spam_tokens_add(SpamTokens *t, uint64_t hash, SpamTokenKind kind, const char *text, size_t text_len) {
        size_t mask, slot;
        int r;

        assert(t);
        assert((unsigned) kind < _SPAM_TOKEN_KIND_MAX);

        if (t->n >= UINT32_MAX - 1)
                return -E2BIG;

        if ((t->n + 1) * 2 > t->index_size) {
                r = tokens_reindex(t, t->index_size == 0 ? TOKENS_INDEX_MIN : t->index_size * 2);
                if (r < 0)
                        return r;
        }

        mask = t->index_size - 1;
        for (slot = tokens_slot(hash, mask); t->index[slot] != 0; slot = (slot + 1) & mask)
                if (t->hashes[t->index[slot] - 1] == hash)
                        return 0;

        if (t->n >= t->alloc) {
                r = tokens_grow(t, t->alloc == 0 ? TOKENS_INDEX_MIN / 2 : t->alloc * 2);
                if (r < 0)
                        return r;
        }

        if (t->keep_text) {
                char *s = malloc(text_len + 1);

                if (!s)
                        return -ENOMEM;
                if (text_len > 0)
                        memcpy(s, text, text_len);
                s[text_len] = '\0';
                t->text[t->n] = s;
        }
        t->hashes[t->n] = hash;
        t->kinds[t->n] = (uint8_t) kind;
        t->n++;
        t->index[slot] = (uint32_t) t->n;
        return 1;
}

void spam_tokens_done(SpamTokens *t) {
        if (!t)
                return;
        if (t->text)
                for (size_t i = 0; i < t->n; i++)
                        free(t->text[i]);
        free(t->text);
        free(t->hashes);
        free(t->kinds);
        free(t->index);
        t->hashes = NULL;
        t->kinds = NULL;
        t->text = NULL;
        t->index = NULL;
        t->n = t->alloc = t->index_size = 0;
}
