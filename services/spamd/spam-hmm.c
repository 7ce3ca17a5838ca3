/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The de-obfuscator of mailsec-spamd (see spam-hmm.h): a lexicon-tree hidden Markov model
 * decoded with a beam-pruned Viterbi search, after Lee & Ng (CEAS 2005) and Lee, Jeong &
 * Choi (IJCAI 2007).
 *
 * The model
 *
 *   Hidden states are the nodes of a trie of the lexicon: a node is a prefix of one or more
 *   lexicon words, the root is the state "between words". Entering a child follows a trie
 *   edge and emits the edge's letter; the transition probability of the edge is the share
 *   of the lexicon weight below the child, W(child) / W(node), and ending a word at node n
 *   has probability w(n) / W(n), so that the transitions of one word multiply to its prior
 *   w / W(root). From the end of a word the search returns to the root, where the next word
 *   may start at once (two words run together) or after separators.
 *
 *   Emissions: a hidden letter emits itself (cost 0), or a look-alike: a digit or symbol
 *   ("0" o, "1" i or l, "3" e, "4" a, "@" a, "$" s, "!" i, "|" l or i, "(" c, "€" e, ...), a
 *   Cyrillic or Greek homoglyph, an accented form of the letter, or a short ASCII picture
 *   of it spanning several characters ("\/" v, "|\/|" m, "()" o, "|<" k; also "ph" f,
 *   "vv" w and "rn" m). A multi-character emission moves the search that many columns on.
 *
 *   Insertions are self-loops inside a word: separators (". - _ * ' ," and the invisible
 *   ones, soft hyphen and zero-width characters), white space (so that "m0rt gage" stays
 *   one word), and repeats of the letter just emitted ("viaggra"). Deletions are skip
 *   transitions: a letter of the word that was dropped ("viagr"), at most one per word
 *   and never the first letter; dropping one of a doubled pair is cheaper.
 *
 *   Outside words the root emits anything as "garbage" (letters dear, separators cheap),
 *   which is the background model a decoded word has to beat.
 *
 * Weighting (the "dynamically weighted" part)
 *
 *   A Bayesian filter's counts are Zipf-distributed: "the" is seen a thousand times for
 *   every "viagra". With the prior at full weight, the decoder would rather read a long
 *   rare word as two frequent short ones, or as garbage. Lee, Jeong & Choi weight the
 *   terms of the decoding score instead of taking the joint probability as is; we do the
 *   same with a fixed exponent on the transition (prior) term, HMM_PRIOR_WEIGHT = 0.5 (the
 *   prior counts as the square root of the probability), and judge each decoded word by
 *   two scores that do not depend on its length: its edit cost (emission, insertion and
 *   deletion costs, without the prior) per letter of the word must stay below
 *   HMM_EDIT_PER_LETTER_MAX, and its confidence, the logistic of the cost margin between
 *   the word and the best alternative reading of the same stretch (another word, or
 *   garbage), must reach HMM_CONFIDENCE_MIN. The unit tests check each of these.
 *
 * Speed
 *
 *   The published models decode every character (about 240 characters/s). Here the text is
 *   cut into chunks at white space and at characters that cannot be part of an obfuscated
 *   word, and almost all chunks are rejected in a single pass: a chunk of plain letters is
 *   looked up in the lexicon and skipped (also when it is unknown, unless it looks like a
 *   lexicon word with a doubled or dropped letter: two hash-set probes). Only chunks with a
 *   digit or symbol among letters, letters of two scripts, accented letters, separators
 *   between letters, or runs of single letters ("v i a g r a") become "suspect"; a suspect
 *   chunk and its short neighbours form a stretch (at most HMM_STRETCH_MAX characters) that
 *   the Viterbi search decodes, keeping the best HMM_BEAM_STATES states per column.
 *
 *   What keeps the common path cheap, without changing what is reported: ASCII is
 *   classified by a table and runs of letters are skipped eight bytes at a time; plain
 *   chunks are looked up in an index of (tag, pool offset) slots built by spam_hmm_build(),
 *   with a hash taken eight bytes at a time, and the look-ups of a segment are made
 *   together so that their cache misses overlap. A stretch is not searched when no word
 *   could be read next to its suspect characters (stretch_may_report()), nor when the same
 *   stretch reported nothing earlier in the scan (markup: "<font color"), or in an earlier
 *   message scanned with the same SpamHmmCache (a list's footer: "for (un)subscription";
 *   in protocol A of tests/bench/spam, 39 % fewer searches). In the search, a child of a
 *   trie node is found by its letter's rank in the node's bitmap of ASCII children, and
 *   the bitmaps of the grandchildren and of the word ends tell which children a dropped
 *   letter needs to try.
 *
 * A word is reported when it overlaps a suspect chunk, is not what is written there (after
 * case folding), passes the two scores above; its confidence comes from a second search
 * over the word's own span. */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "macro.h"
#include "spam-hmm.h"

/* Search limits */
#define HMM_BEAM_STATES 64U                            /* states kept per column */
#define HMM_BEAM_WIDTH 10.0f                            /* and only within this of the best */
#define HMM_DELETE_BEAM 5.0f                            /* letters dropped only near the best */
#define HMM_STRETCH_MAX (4U * SPAM_HMM_WORD_MAX)        /* code points decoded at once */
#define HMM_PATTERN_MAX 4U                              /* longest multi-character emission */
#define HMM_RING (HMM_PATTERN_MAX + 1U)
#define HMM_CANDIDATES_MAX 512U                         /* per column, before pruning */
#define HMM_CANDIDATE_SLOTS 1024U                       /* hash slots, a power of two */
#define HMM_EMISSIONS_MAX 10U
#define HMM_SEGMENT_CHUNKS 128U
#define HMM_CHUNK_MAX (2U * SPAM_HMM_WORD_MAX)          /* longer chunks are not words */
#define HMM_NEIGHBOUR_MAX 8U                            /* neighbours joining a stretch */
#define HMM_GAP_MAX 4U                                  /* characters between chunks */
#define HMM_WORDS_MAX 64U
#define HMM_MEMO_ENTRIES 64U                            /* stretches remembered per scan */
#define HMM_MEMO_KEY_MAX 256U                           /* bytes of one stretch's key */
#define HMM_MEMO_SIZE 8192U                             /* bytes of all keys */
#define HMM_CACHE_SLOTS 16384U                          /* stretches a SpamHmmCache holds */
#define HMM_CACHE_PROBES 4U                             /* slots tried from a key's home */
#define HMM_CACHE_ARENA (1024U * 1024U)                 /* bytes of their keys */

/* Costs, in nats (negative natural logarithms of probabilities) */
#define HMM_PRIOR_WEIGHT 0.35f
#define COST_LOOK_STRONG 1.2f           /* 0 o, 1 i, 3 e, 4 a, @ a, $ s, ! i */
#define COST_LOOK_WEAK 2.2f             /* 2 z, 6 b, 8 b, 9 g, + t, ... */
#define COST_GLYPH 0.5f                 /* a Cyrillic or Greek letter drawn like ours */
#define COST_GLYPH_NEAR 1.2f            /* ... drawn nearly like ours */
#define COST_ACCENT 0.8f
#define COST_INSERT_SEP 0.6f
#define COST_INSERT_SPACE 1.0f
#define COST_INSERT_SYMBOL 1.5f         /* '|', '+', '/', '\' between letters */
#define COST_DOUBLE 1.5f
#define COST_DELETE 3.5f
#define COST_DELETE_DOUBLE 2.0f         /* one of a doubled pair dropped: "ofer" */
#define COST_BOUNDARY 0.5f
#define COST_GARBAGE_LETTER 2.2f      /* about what a letter model of English gives */
#define COST_GARBAGE_SYMBOL 3.0f
#define COST_GARBAGE_SEP 0.3f

#define HMM_EDIT_PER_LETTER_MAX 1.3f
#define HMM_CONFIDENCE_MIN 0.6
#define HMM_CONFIDENCE_PLAIN_MIN 0.85   /* for a reading of plain letters (dropped, doubled) */
#define HMM_RUN_MAX 64U                 /* bytes without white space: base64, URLs, not words */
#define HMM_DELETE_MAX 1U

/* Character classes of the scanner */
typedef enum HmmClass {
        CLS_OTHER,              /* ends a chunk and a stretch */
        CLS_SPACE,
        CLS_LETTER,             /* ASCII letter */
        CLS_ACCENT,             /* accented Latin letter */
        CLS_GLYPH,              /* Greek or Cyrillic letter with a Latin look-alike */
        CLS_LOOK,               /* digit or symbol that may stand for a letter */
        CLS_SEP,                /* separator inserted between letters */
} HmmClass;

typedef struct Glyph {
        uint32_t cp;
        uint8_t cls;
        char letter[2];
        float cost[2];
} Glyph;

/* Sorted by code point. */
static const Glyph glyphs[] = {
        { '!', CLS_LOOK, { 'i', 0 }, { COST_LOOK_STRONG, 0 } },
        { '$', CLS_LOOK, { 's', 0 }, { COST_LOOK_STRONG, 0 } },
        { '(', CLS_LOOK, { 'c', 0 }, { COST_LOOK_STRONG, 0 } },
        { ')', CLS_LOOK, { 0, 0 }, { 0, 0 } },
        { '+', CLS_LOOK, { 't', 0 }, { COST_LOOK_WEAK, 0 } },
        { '/', CLS_LOOK, { 0, 0 }, { 0, 0 } },
        { '0', CLS_LOOK, { 'o', 0 }, { COST_LOOK_STRONG, 0 } },
        { '1', CLS_LOOK, { 'i', 'l' }, { COST_LOOK_STRONG, 1.5f } },
        { '2', CLS_LOOK, { 'z', 0 }, { COST_LOOK_WEAK, 0 } },
        { '3', CLS_LOOK, { 'e', 0 }, { COST_LOOK_STRONG, 0 } },
        { '4', CLS_LOOK, { 'a', 0 }, { COST_LOOK_STRONG, 0 } },
        { '5', CLS_LOOK, { 's', 0 }, { 1.5f, 0 } },
        { '6', CLS_LOOK, { 'b', 'g' }, { COST_LOOK_WEAK, COST_LOOK_WEAK } },
        { '7', CLS_LOOK, { 't', 0 }, { 1.5f, 0 } },
        { '8', CLS_LOOK, { 'b', 0 }, { COST_LOOK_WEAK, 0 } },
        { '9', CLS_LOOK, { 'g', 0 }, { COST_LOOK_WEAK, 0 } },
        { '<', CLS_LOOK, { 0, 0 }, { 0, 0 } },
        { '@', CLS_LOOK, { 'a', 0 }, { 1.0f, 0 } },
        { '\\', CLS_LOOK, { 0, 0 }, { 0, 0 } },
        { '|', CLS_LOOK, { 'l', 'i' }, { COST_LOOK_STRONG, 1.5f } },
        { 0xA1, CLS_LOOK, { 'i', 0 }, { COST_LOOK_STRONG, 0 } },        /* ¡ */
        { 0xA2, CLS_LOOK, { 'c', 0 }, { COST_LOOK_STRONG, 0 } },        /* ¢ */
        { 0xA3, CLS_LOOK, { 'l', 'e' }, { COST_LOOK_WEAK, COST_LOOK_WEAK } }, /* £ */
        { 0xA5, CLS_LOOK, { 'y', 0 }, { COST_LOOK_STRONG, 0 } },        /* ¥ */
        { 0xA7, CLS_LOOK, { 's', 0 }, { COST_LOOK_WEAK, 0 } },          /* § */
        { 0xA9, CLS_LOOK, { 'c', 'o' }, { COST_LOOK_STRONG, COST_LOOK_WEAK } }, /* © */
        { 0xAE, CLS_LOOK, { 'r', 0 }, { COST_LOOK_STRONG, 0 } },        /* ® */
        { 0xB5, CLS_LOOK, { 'u', 0 }, { COST_LOOK_STRONG, 0 } },        /* µ */
        { 0x192, CLS_LOOK, { 'f', 0 }, { COST_ACCENT, 0 } },            /* ƒ */
        { 0x391, CLS_GLYPH, { 'a', 0 }, { COST_GLYPH, 0 } },            /* Greek capitals */
        { 0x392, CLS_GLYPH, { 'b', 0 }, { COST_GLYPH, 0 } },
        { 0x395, CLS_GLYPH, { 'e', 0 }, { COST_GLYPH, 0 } },
        { 0x396, CLS_GLYPH, { 'z', 0 }, { COST_GLYPH, 0 } },
        { 0x397, CLS_GLYPH, { 'h', 0 }, { COST_GLYPH, 0 } },
        { 0x399, CLS_GLYPH, { 'i', 'l' }, { COST_GLYPH, COST_GLYPH_NEAR } },
        { 0x39A, CLS_GLYPH, { 'k', 0 }, { COST_GLYPH, 0 } },
        { 0x39C, CLS_GLYPH, { 'm', 0 }, { COST_GLYPH, 0 } },
        { 0x39D, CLS_GLYPH, { 'n', 0 }, { COST_GLYPH, 0 } },
        { 0x39F, CLS_GLYPH, { 'o', 0 }, { COST_GLYPH, 0 } },
        { 0x3A1, CLS_GLYPH, { 'p', 0 }, { COST_GLYPH, 0 } },
        { 0x3A4, CLS_GLYPH, { 't', 0 }, { COST_GLYPH, 0 } },
        { 0x3A5, CLS_GLYPH, { 'y', 0 }, { COST_GLYPH, 0 } },
        { 0x3A7, CLS_GLYPH, { 'x', 0 }, { COST_GLYPH, 0 } },
        { 0x3B1, CLS_GLYPH, { 'a', 0 }, { COST_GLYPH_NEAR, 0 } },       /* Greek small */
        { 0x3B2, CLS_GLYPH, { 'b', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x3B3, CLS_GLYPH, { 'y', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x3B5, CLS_GLYPH, { 'e', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x3B7, CLS_GLYPH, { 'n', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x3B9, CLS_GLYPH, { 'i', 0 }, { COST_GLYPH, 0 } },
        { 0x3BA, CLS_GLYPH, { 'k', 0 }, { COST_GLYPH, 0 } },
        { 0x3BC, CLS_GLYPH, { 'u', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x3BD, CLS_GLYPH, { 'v', 0 }, { COST_GLYPH, 0 } },
        { 0x3BF, CLS_GLYPH, { 'o', 0 }, { COST_GLYPH, 0 } },
        { 0x3C1, CLS_GLYPH, { 'p', 0 }, { COST_GLYPH, 0 } },
        { 0x3C4, CLS_GLYPH, { 't', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x3C5, CLS_GLYPH, { 'u', 0 }, { COST_GLYPH, 0 } },
        { 0x3C7, CLS_GLYPH, { 'x', 0 }, { COST_GLYPH, 0 } },
        { 0x3C9, CLS_GLYPH, { 'w', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x405, CLS_GLYPH, { 's', 0 }, { COST_GLYPH, 0 } },            /* Cyrillic capitals */
        { 0x406, CLS_GLYPH, { 'i', 'l' }, { COST_GLYPH, COST_GLYPH_NEAR } },
        { 0x408, CLS_GLYPH, { 'j', 0 }, { COST_GLYPH, 0 } },
        { 0x410, CLS_GLYPH, { 'a', 0 }, { COST_GLYPH, 0 } },
        { 0x412, CLS_GLYPH, { 'b', 0 }, { COST_GLYPH, 0 } },
        { 0x415, CLS_GLYPH, { 'e', 0 }, { COST_GLYPH, 0 } },
        { 0x41A, CLS_GLYPH, { 'k', 0 }, { COST_GLYPH, 0 } },
        { 0x41C, CLS_GLYPH, { 'm', 0 }, { COST_GLYPH, 0 } },
        { 0x41D, CLS_GLYPH, { 'h', 0 }, { COST_GLYPH, 0 } },
        { 0x41E, CLS_GLYPH, { 'o', 0 }, { COST_GLYPH, 0 } },
        { 0x420, CLS_GLYPH, { 'p', 0 }, { COST_GLYPH, 0 } },
        { 0x421, CLS_GLYPH, { 'c', 0 }, { COST_GLYPH, 0 } },
        { 0x422, CLS_GLYPH, { 't', 0 }, { COST_GLYPH, 0 } },
        { 0x423, CLS_GLYPH, { 'y', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x425, CLS_GLYPH, { 'x', 0 }, { COST_GLYPH, 0 } },
        { 0x430, CLS_GLYPH, { 'a', 0 }, { COST_GLYPH, 0 } },            /* Cyrillic small */
        { 0x432, CLS_GLYPH, { 'b', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x435, CLS_GLYPH, { 'e', 0 }, { COST_GLYPH, 0 } },
        { 0x43A, CLS_GLYPH, { 'k', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x43C, CLS_GLYPH, { 'm', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x43D, CLS_GLYPH, { 'h', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x43E, CLS_GLYPH, { 'o', 0 }, { COST_GLYPH, 0 } },
        { 0x440, CLS_GLYPH, { 'p', 0 }, { COST_GLYPH, 0 } },
        { 0x441, CLS_GLYPH, { 'c', 0 }, { COST_GLYPH, 0 } },
        { 0x442, CLS_GLYPH, { 't', 0 }, { COST_GLYPH_NEAR, 0 } },
        { 0x443, CLS_GLYPH, { 'y', 0 }, { COST_GLYPH, 0 } },
        { 0x445, CLS_GLYPH, { 'x', 0 }, { COST_GLYPH, 0 } },
        { 0x451, CLS_GLYPH, { 'e', 0 }, { COST_ACCENT, 0 } },
        { 0x455, CLS_GLYPH, { 's', 0 }, { COST_GLYPH, 0 } },
        { 0x456, CLS_GLYPH, { 'i', 0 }, { COST_GLYPH, 0 } },
        { 0x457, CLS_GLYPH, { 'i', 0 }, { COST_ACCENT, 0 } },
        { 0x458, CLS_GLYPH, { 'j', 0 }, { COST_GLYPH, 0 } },
        { 0x501, CLS_GLYPH, { 'd', 0 }, { COST_GLYPH, 0 } },
        { 0x20AC, CLS_LOOK, { 'e', 0 }, { COST_LOOK_STRONG, 0 } },      /* € */
};

/* Base letters of Latin-1 (U+00C0..U+00FF) and Latin Extended-A (U+0100..U+017F); '?' for
 * the two signs that are not letters. */
static const char latin1_base[] =
        "aaaaaaaceeeeiiiidnooooo?ouuuuypb"
        "aaaaaaaceeeeiiiidnooooo?ouuuuypy";
static const char latin_ext_a_base[] =
        "aaaaaacccccccc" "dddd" "eeeeeeeeee" "gggggggg" "hhhh" "iiiiiiiiii" "ii" "jj" "kkk"
        "llllllllll" "nnnnnnnnn" "oooooooo" "rrrrrr" "ssssssss" "tttttt" "uuuuuuuuuuuu" "ww"
        "yyy" "zzzzzz" "s";

/* Pictures of letters drawn with several ASCII characters */
typedef struct Pattern {
        const char *text;
        char letter;
        float cost;
} Pattern;

static const Pattern patterns[] = {
        { "|\\/|", 'm', 1.0f },
        { "/\\/\\", 'm', 1.0f },
        { "\\/\\/", 'w', 1.0f },
        { "|-|", 'h', 1.2f },
        { "\\/", 'v', 0.8f },
        { "/\\", 'a', 1.5f },
        { "|<", 'k', 1.2f },
        { "|)", 'd', 1.5f },
        { "|3", 'b', 1.5f },
        { "()", 'o', 1.0f },
        { "vv", 'w', 2.0f },
        { "ph", 'f', 2.0f },
        { "rn", 'm', 2.5f },
};

typedef struct HmmNode {
        uint32_t letter;                /* code point on the edge from the parent */
        uint32_t parent;
        uint32_t first_child;           /* children are contiguous, sorted by letter */
        uint32_t word;                  /* index of the word ending here + 1, or 0 */
        uint16_t n_children;
        uint8_t depth;
        bool drop_other;                /* a child of another script ends a word whose last
                                         * letter may be dropped (final_drop_ok()) */
        float enter_cost;               /* -log W(node)/W(parent) */
        float end_cost;                 /* -log w(word)/W(node) */
        uint32_t ascii_children;        /* bit k: a child for the letter 'a' + k */
        uint32_t drop_ascii;            /* of those, the ones ending a word whose last letter
                                         * may be dropped */
        uint32_t grand_ascii;           /* the ascii_children of the children, together */
} HmmNode;

typedef struct HmmWord {
        uint64_t hash;
        uint32_t offset;                /* in the pool, NUL-terminated */
        uint16_t len;                   /* bytes */
        uint8_t n_cp;
        uint64_t weight;
} HmmWord;

/* A slot of the look-up index: the top 24 bits of the word's hash and its length in bytes
 * (index_tag()), and where the word is in the pool + 1 (0: empty). */
typedef struct HmmIndexSlot {
        uint32_t tag;
        uint32_t offset;
} HmmIndexSlot;

/* Open-addressed set of 64-bit hashes (0 is stored as 1). */
typedef struct HashSet {
        uint64_t *keys;
        size_t mask;
} HashSet;

struct SpamHmm {
        bool built;

        HmmWord *words;
        size_t n_words, words_alloc;
        uint32_t *slots;                /* word index + 1, or 0 */
        size_t slots_mask;

        char *pool;
        size_t pool_size, pool_alloc;

        HmmIndexSlot *index;            /* the words by hash, built by spam_hmm_build() */
        size_t index_mask;

        HmmNode *nodes;
        size_t n_nodes;

        uint64_t plain_weight_min;      /* the upper quartile of the weights: see report_word() */

        HashSet collapsed;              /* lexicon words with doubled letters collapsed */
        HashSet deletions;              /* lexicon words (≥ 6 letters) with one letter dropped */

        uint64_t serial;                /* unique to the build in this process, for caches */
};

/* ---- small helpers ---- */

static uint64_t hash_init(void) {
        return UINT64_C(0xcbf29ce484222325);
}

static uint64_t hash_byte(uint64_t h, uint8_t c) {
        return (h ^ c) * UINT64_C(0x100000001b3);
}

static uint64_t hash_final(uint64_t h) {
        /* FNV-1a spreads badly in the low bits; mix before masking */
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        h *= UINT64_C(0xc4ceb9fe1a85ec53);
        h ^= h >> 33;
        return h ?: 1;
}

static uint64_t hash_bytes(const char *s, size_t n) {
        uint64_t h = hash_init();

        for (size_t i = 0; i < n; i++)
                h = hash_byte(h, (uint8_t) s[i]);
        return hash_final(h);
}

/* The index's hash, eight bytes at a time; fold_ascii: of the bytes with bit 5 set, which
 * is the small letter of an ASCII letter (the caller knows that all are letters). */
static uint64_t index_hash(const char *s, size_t n, bool fold_ascii) {
        const uint64_t fold = fold_ascii ? UINT64_C(0x2020202020202020) : 0;
        uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ n, v;

        for (; n >= 8; s += 8, n -= 8) {
                memcpy(&v, s, 8);
                h = (h ^ (v | fold)) * UINT64_C(0xff51afd7ed558ccd);
                h ^= h >> 32;
        }
        if (n >= 4) {
                /* two loads that overlap: the same bytes land on the same bits */
                uint32_t lo, hi;

                memcpy(&lo, s, 4);
                memcpy(&hi, s + n - 4, 4);
                v = (uint64_t) (lo | (uint32_t) fold) | (uint64_t) (hi | (uint32_t) fold) << (8 * (n - 4));
                h = (h ^ v) * UINT64_C(0xff51afd7ed558ccd);
        } else if (n > 0) {
                v = (uint64_t) ((uint8_t) s[0] | (uint8_t) fold) |
                        (uint64_t) ((uint8_t) s[n / 2] | (uint8_t) fold) << (8 * (n / 2)) |
                        (uint64_t) ((uint8_t) s[n - 1] | (uint8_t) fold) << (8 * (n - 1));
                h = (h ^ v) * UINT64_C(0xff51afd7ed558ccd);
        }
        return hash_final(h);
}

static uint32_t index_tag(uint64_t hash, size_t len) {
        return (uint32_t) (hash >> 40) << 8 | (uint32_t) len;
}

static int hash_set_init(HashSet *s, size_t n) {
        size_t size = 16;

        while (size < n * 2)
                size <<= 1;
        s->keys = calloc(size, sizeof(uint64_t));
        if (!s->keys)
                return -ENOMEM;
        s->mask = size - 1;
        return 0;
}

static void hash_set_add(HashSet *s, uint64_t key) {
        for (size_t i = key & s->mask;; i = (i + 1) & s->mask) {
                if (s->keys[i] == key)
                        return;
                if (s->keys[i] == 0) {
                        s->keys[i] = key;
                        return;
                }
        }
}

static bool hash_set_contains(const HashSet *s, uint64_t key) {
        if (!s->keys)
                return false;
        for (size_t i = key & s->mask;; i = (i + 1) & s->mask) {
                if (s->keys[i] == key)
                        return true;
                if (s->keys[i] == 0)
                        return false;
        }
}

/* utf8_decode() of a sequence that is not ASCII. */
static size_t utf8_decode_multi(const char *s, size_t n, uint32_t *ret) {
        const uint8_t *p = (const uint8_t*) s;
        uint32_t cp, min;
        size_t len;

        if ((p[0] & 0xE0) == 0xC0) {
                len = 2;
                cp = p[0] & 0x1F;
                min = 0x80;
        } else if ((p[0] & 0xF0) == 0xE0) {
                len = 3;
                cp = p[0] & 0x0F;
                min = 0x800;
        } else if ((p[0] & 0xF8) == 0xF0) {
                len = 4;
                cp = p[0] & 0x07;
                min = 0x10000;
        } else
                goto invalid;
        if (len > n)
                goto invalid;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        goto invalid;
                cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                goto invalid;
        *ret = cp;
        return len;

invalid:
        *ret = 0xFFFD;
        return 1;
}

/* Decodes one UTF-8 sequence; an invalid byte comes back as U+FFFD of length 1. */
static inline size_t utf8_decode(const char *s, size_t n, uint32_t *ret) {
        if ((uint8_t) s[0] < 0x80) {
                *ret = (uint8_t) s[0];
                return 1;
        }
        return utf8_decode_multi(s, n, ret);
}

static size_t utf8_encode(uint32_t cp, char *buf) {
        if (cp < 0x80) {
                buf[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                buf[0] = (char) (0xC0 | (cp >> 6));
                buf[1] = (char) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                buf[0] = (char) (0xE0 | (cp >> 12));
                buf[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                buf[2] = (char) (0x80 | (cp & 0x3F));
                return 3;
        }
        buf[0] = (char) (0xF0 | (cp >> 18));
        buf[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        buf[3] = (char) (0x80 | (cp & 0x3F));
        return 4;
}

/* Simple case folding for the scripts the model knows (ASCII, Latin-1, Latin Extended-A,
 * Greek, Cyrillic). */
static uint32_t fold(uint32_t cp) {
        if (cp < 0x80)
                return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
        if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
                return cp + 0x20;
        if (cp >= 0x100 && cp <= 0x17F) {
                if (cp == 0x130)
                        return 'i';
                if (cp == 0x178)
                        return 0xFF;
                if ((cp <= 0x137 || (cp >= 0x14A && cp <= 0x177)) && cp % 2 == 0)
                        return cp + 1;
                if (((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) && cp % 2 == 1)
                        return cp + 1;
                return cp;
        }
        if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2)
                return cp + 0x20;
        if (cp >= 0x410 && cp <= 0x42F)
                return cp + 0x20;
        if (cp >= 0x400 && cp <= 0x40F)
                return cp + 0x50;
        return cp;
}

static const Glyph* glyph_find(uint32_t cp) {
        size_t lo = 0, hi = ELEMENTSOF(glyphs);

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (glyphs[mid].cp == cp)
                        return &glyphs[mid];
                if (glyphs[mid].cp < cp)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static char accent_base(uint32_t cp) {
        char c = 0;

        if (cp >= 0xC0 && cp <= 0xFF)
                c = latin1_base[cp - 0xC0];
        else if (cp >= 0x100 && cp <= 0x17F)
                c = latin_ext_a_base[cp - 0x100];
        return c == '?' ? 0 : c;
}

static bool is_space(uint32_t cp) {
        return IN_SET(cp, ' ', '\t', '\n', '\r', '\f', '\v', 0x85, 0xA0, 0x1680, 0x2028, 0x2029,
                      0x202F, 0x205F, 0x3000) ||
                (cp >= 0x2000 && cp <= 0x200A);
}

static bool is_sep(uint32_t cp) {
        return IN_SET(cp, '.', '-', '_', '*', '\'', ',', '~', '=', ':', ';', '`', '^',
                      0xAD, 0xB7, 0x200B, 0x200C, 0x200D, 0x2018, 0x2019, 0x2022, 0x2027,
                      0x2060, 0xFEFF) ||
                (cp >= 0x2010 && cp <= 0x2015);
}

/* The classes of ASCII, as char_class_slow() gives them (spam_hmm_build() checks). */
static const uint8_t ascii_class[128] = {
        ['\t' ... '\r'] = CLS_SPACE,
        [' '] = CLS_SPACE,
        ['A' ... 'Z'] = CLS_LETTER,
        ['a' ... 'z'] = CLS_LETTER,
        ['0' ... '9'] = CLS_LOOK,
        ['!'] = CLS_LOOK, ['$'] = CLS_LOOK, ['('] = CLS_LOOK, [')'] = CLS_LOOK, ['+'] = CLS_LOOK,
        ['/'] = CLS_LOOK, ['<'] = CLS_LOOK, ['@'] = CLS_LOOK, ['\\'] = CLS_LOOK, ['|'] = CLS_LOOK,
        ['.'] = CLS_SEP, ['-'] = CLS_SEP, ['_'] = CLS_SEP, ['*'] = CLS_SEP, ['\''] = CLS_SEP,
        [','] = CLS_SEP, ['~'] = CLS_SEP, ['='] = CLS_SEP, [':'] = CLS_SEP, [';'] = CLS_SEP,
        ['`'] = CLS_SEP, ['^'] = CLS_SEP,
};

static HmmClass char_class_slow(uint32_t cp) {
        const Glyph *g;

        if (cp < 0x80) {
                if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
                        return CLS_LETTER;
                if (cp == ' ' || (cp >= '\t' && cp <= '\r'))
                        return CLS_SPACE;
        }
        g = glyph_find(cp);
        if (g)
                return g->cls;
        if (accent_base(cp))
                return CLS_ACCENT;
        if (is_space(cp))
                return CLS_SPACE;
        if (is_sep(cp))
                return CLS_SEP;
        return CLS_OTHER;
}

static HmmClass char_class(uint32_t cp) {
        return cp < 0x80 ? (HmmClass) ascii_class[cp] : char_class_slow(cp);
}

/* ---- the lexicon ---- */

int spam_hmm_new(SpamHmm **ret) {
        SpamHmm *h;

        assert(ret);

        h = calloc(1, sizeof(SpamHmm));
        if (!h)
                return -ENOMEM;
        *ret = h;
        return 0;
}

SpamHmm* spam_hmm_free(SpamHmm *h) {
        if (!h)
                return NULL;
        free(h->words);
        free(h->slots);
        free(h->index);
        free(h->pool);
        free(h->nodes);
        free(h->collapsed.keys);
        free(h->deletions.keys);
        free(h);
        return NULL;
}

size_t spam_hmm_size(const SpamHmm *h) {
        return h ? h->n_words : 0;
}

static const HmmWord* word_lookup(const SpamHmm *h, const char *s, size_t n, uint64_t hash) {
        if (!h->slots)
                return NULL;
        for (size_t i = hash & h->slots_mask;; i = (i + 1) & h->slots_mask) {
                const HmmWord *w;

                if (h->slots[i] == 0)
                        return NULL;
                w = &h->words[h->slots[i] - 1];
                if (w->hash == hash && w->len == n && memcmp(h->pool + w->offset, s, n) == 0)
                        return w;
        }
}

/* The scanner's lexicon look-ups, after spam_hmm_build(): one cache line of the index for
 * a word that is not there, and the word's bytes for one that is. */
static bool lexicon_find(const SpamHmm *h, const char *s, size_t n) {
        uint64_t hash;
        uint32_t tag;

        if (n > SPAM_HMM_WORD_MAX * 4)
                return false;           /* longer than any word, and than a tag's length */
        hash = index_hash(s, n, /* fold_ascii= */ false);
        tag = index_tag(hash, n);

        for (size_t i = hash & h->index_mask;; i = (i + 1) & h->index_mask) {
                const HmmIndexSlot *e = &h->index[i];

                if (e->offset == 0)
                        return false;
                if (e->tag == tag && memcmp(h->pool + e->offset - 1, s, n) == 0)
                        return true;
        }
}

/* The same for ASCII letters in any case (n at most SPAM_HMM_WORD_MAX); hash: their
 * index_hash() with fold_ascii. */
static bool lexicon_find_ascii(const SpamHmm *h, const char *s, size_t n, uint64_t hash) {
        uint32_t tag = index_tag(hash, n);

        for (size_t i = hash & h->index_mask;; i = (i + 1) & h->index_mask) {
                const HmmIndexSlot *e = &h->index[i];
                const char *p;
                size_t k = 0;

                if (e->offset == 0)
                        return false;
                if (e->tag != tag)
                        continue;
                p = h->pool + e->offset - 1;
                while (k < n && p[k] == (char) ((uint8_t) s[k] | 0x20))
                        k++;
                if (k == n)
                        return true;
        }
}

static int words_rehash(SpamHmm *h, size_t size) {
        uint32_t *slots;

        slots = calloc(size, sizeof(uint32_t));
        if (!slots)
                return -ENOMEM;
        for (size_t k = 0; k < h->n_words; k++)
                for (size_t i = h->words[k].hash & (size - 1);; i = (i + 1) & (size - 1))
                        if (slots[i] == 0) {
                                slots[i] = (uint32_t) k + 1;
                                break;
                        }
        free(h->slots);
        h->slots = slots;
        h->slots_mask = size - 1;
        return 0;
}

int spam_hmm_add_lexicon_word(const char *word, uint32_t spam, uint32_t ham, void *hmm) {
        size_t n = strlen(word);
        int r;

        if (n < SPAM_HMM_WORD_MIN || n > SPAM_HMM_WORD_MAX)
                return 0;
        r = spam_hmm_add_word(hmm, word, spam + ham);
        return r == -EINVAL ? 0 : r;
}

int spam_hmm_add_word(SpamHmm *h, const char *word, uint32_t weight) {
        char buf[SPAM_HMM_WORD_MAX * 4 + 1];
        const HmmWord *found;
        size_t n = 0, n_cp = 0;
        uint64_t hash;
        int r;

        assert_return(h, -EINVAL);
        assert_return(word, -EINVAL);
        if (h->built)
                return -EBUSY;

        /* Fold and validate: letters only, ASCII or not; no digits, symbols or spaces. */
        for (const char *p = word; *p;) {
                uint32_t cp;
                size_t l = utf8_decode(p, strlen(p), &cp);
                HmmClass c;

                if (cp == 0xFFFD)
                        return -EINVAL;
                c = char_class(cp);
                if (cp < 0x80 ? c != CLS_LETTER : IN_SET(c, CLS_SPACE, CLS_SEP, CLS_LOOK))
                        return -EINVAL;
                if (cp >= 0x80 && (cp < 0xC0 || (cp >= 0x2000 && cp < 0x3000)))
                        return -EINVAL;         /* Latin-1 signs and general punctuation */
                if (++n_cp > SPAM_HMM_WORD_MAX)
                        return -EINVAL;
                n += utf8_encode(fold(cp), buf + n);
                p += l;
        }
        if (n_cp < SPAM_HMM_WORD_MIN)
                return -EINVAL;

        hash = hash_bytes(buf, n);
        found = word_lookup(h, buf, n, hash);
        if (found) {
                ((HmmWord*) found)->weight += weight;
                return 0;
        }

        if (h->n_words >= UINT32_MAX / 2)
                return -E2BIG;
        if (h->n_words >= h->words_alloc) {
                size_t a = MAX(h->words_alloc * 2, (size_t) 256);
                HmmWord *w = reallocarray(h->words, a, sizeof(HmmWord));

                if (!w)
                        return -ENOMEM;
                h->words = w;
                h->words_alloc = a;
        }
        if (h->pool_size + n + 1 > h->pool_alloc) {
                size_t a = MAX(h->pool_alloc * 2, h->pool_size + n + 1 + 4096);
                char *p;

                if (a > UINT32_MAX)
                        return -E2BIG;
                p = realloc(h->pool, a);
                if (!p)
                        return -ENOMEM;
                h->pool = p;
                h->pool_alloc = a;
        }
        if ((h->n_words + 1) * 2 > (h->slots ? h->slots_mask + 1 : 0)) {
                r = words_rehash(h, h->slots ? (h->slots_mask + 1) * 2 : 512);
                if (r < 0)
                        return r;
        }

        memcpy(h->pool + h->pool_size, buf, n);
        h->pool[h->pool_size + n] = 0;
        h->words[h->n_words] = (HmmWord) {
                .hash = hash,
                .offset = (uint32_t) h->pool_size,
                .len = (uint16_t) n,
                .n_cp = (uint8_t) n_cp,
                .weight = weight,
        };
        h->pool_size += n + 1;
        h->n_words++;

        for (size_t i = hash & h->slots_mask;; i = (i + 1) & h->slots_mask)
                if (h->slots[i] == 0) {
                        h->slots[i] = (uint32_t) h->n_words;
                        break;
                }
        return 0;
}

static const SpamHmm *sort_model;

static int word_cmp(const void *a, const void *b) {
        const HmmWord *x = &sort_model->words[*(const uint32_t*) a],
                *y = &sort_model->words[*(const uint32_t*) b];

        /* byte order of UTF-8 is code point order; a prefix sorts first */
        return strcmp(sort_model->pool + x->offset, sort_model->pool + y->offset);
}

static int u64_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t*) a, y = *(const uint64_t*) b;

        return (x > y) - (x < y);
}

typedef struct BuildItem {
        uint32_t node, lo, hi;
} BuildItem;

/* Hashes of the ASCII forms the scanner probes for plain unknown words: the word with
 * doubled letters collapsed, and (for words of 6 letters or more) the word with one letter
 * dropped. */
static void add_variants(SpamHmm *h, const HmmWord *w) {
        const char *s = h->pool + w->offset;
        uint64_t c = hash_init();

        for (size_t i = 0; i < w->len; i++)
                if ((uint8_t) s[i] >= 0x80)
                        return;
        for (size_t i = 0; i < w->len; i++)
                if (i == 0 || s[i] != s[i - 1])
                        c = hash_byte(c, (uint8_t) s[i]);
        hash_set_add(&h->collapsed, hash_final(c));

        if (w->len < 6)
                return;
        for (size_t j = 1; j < w->len; j++) {
                if (j + 1 == w->len && strchr("sdrney", s[j]))
                        continue;       /* see final_drop_ok() */
                uint64_t d = hash_init();

                for (size_t i = 0; i < w->len; i++)
                        if (i != j)
                                d = hash_byte(d, (uint8_t) s[i]);
                hash_set_add(&h->deletions, hash_final(d));
        }
}

static bool final_drop_ok(const HmmNode *child);

static int index_build(SpamHmm *h) {
        size_t size = 16;

        if (h->pool_size >= UINT32_MAX)
                return -E2BIG;
        while (size < h->n_words * 2)
                size <<= 1;
        h->index = calloc(size, sizeof(HmmIndexSlot));
        if (!h->index)
                return -ENOMEM;
        h->index_mask = size - 1;
        for (size_t k = 0; k < h->n_words; k++) {
                const HmmWord *w = &h->words[k];
                uint64_t hash = index_hash(h->pool + w->offset, w->len, /* fold_ascii= */ false);

                for (size_t i = hash & h->index_mask;; i = (i + 1) & h->index_mask)
                        if (h->index[i].offset == 0) {
                                h->index[i] = (HmmIndexSlot) {
                                        .tag = index_tag(hash, w->len),
                                        .offset = w->offset + 1,
                                };
                                break;
                        }
        }
        return 0;
}

int spam_hmm_build(SpamHmm *h) {
        _cleanup_free_ uint32_t *order = NULL, *cursor = NULL;
        _cleanup_free_ BuildItem *queue = NULL;
        _cleanup_free_ double *weight = NULL;
        size_t n_nodes_max = 1, head = 0, tail = 0;
        int r;

        assert_return(h, -EINVAL);
        if (h->built)
                return -EBUSY;

        for (uint32_t cp = 0; cp < 0x80; cp++)
                assert(ascii_class[cp] == char_class_slow(cp));

        for (size_t k = 0; k < h->n_words; k++)
                n_nodes_max += h->words[k].n_cp;

        h->nodes = calloc(n_nodes_max, sizeof(HmmNode));
        order = calloc(MAX(h->n_words, (size_t) 1), sizeof(uint32_t));
        cursor = calloc(MAX(h->n_words, (size_t) 1), sizeof(uint32_t));
        queue = calloc(n_nodes_max, sizeof(BuildItem));
        weight = calloc(n_nodes_max, sizeof(double));
        if (!h->nodes || !order || !cursor || !queue || !weight)
                return -ENOMEM;

        for (size_t k = 0; k < h->n_words; k++)
                order[k] = (uint32_t) k;
        sort_model = h;
        qsort(order, h->n_words, sizeof(uint32_t), word_cmp);
        sort_model = NULL;

        /* Breadth first, so that the children of a node are contiguous and come after it. */
        h->n_nodes = 1;
        queue[tail++] = (BuildItem) { .node = 0, .lo = 0, .hi = (uint32_t) h->n_words };
        while (head < tail) {
                BuildItem it = queue[head++];
                HmmNode *node = &h->nodes[it.node];
                uint32_t i = it.lo;

                if (i < it.hi && cursor[i] == h->words[order[i]].len) {
                        node->word = order[i] + 1;
                        i++;
                }
                node->first_child = (uint32_t) h->n_nodes;
                while (i < it.hi) {
                        const HmmWord *w = &h->words[order[i]];
                        uint32_t cp, j = i;
                        size_t l;

                        l = utf8_decode(h->pool + w->offset + cursor[i], w->len - cursor[i], &cp);
                        for (; j < it.hi; j++) {
                                const HmmWord *v = &h->words[order[j]];
                                uint32_t cp2;
                                size_t l2;

                                l2 = utf8_decode(h->pool + v->offset + cursor[j], v->len - cursor[j], &cp2);
                                if (cp2 != cp)
                                        break;
                                cursor[j] += (uint32_t) l2;
                        }
                        assert(h->n_nodes < n_nodes_max);
                        h->nodes[h->n_nodes] = (HmmNode) {
                                .letter = cp,
                                .parent = it.node,
                                .depth = (uint8_t) (node->depth + 1),
                        };
                        queue[tail++] = (BuildItem) { .node = (uint32_t) h->n_nodes, .lo = i, .hi = j };
                        h->n_nodes++;
                        node = &h->nodes[it.node];
                        node->n_children++;
                        if (cp >= 'a' && cp <= 'z')
                                node->ascii_children |= UINT32_C(1) << (cp - 'a');
                        (void) l;
                        i = j;
                }
        }

        /* Subtree weights, leaves first; then the transition costs. */
        for (size_t n = h->n_nodes; n-- > 0;) {
                HmmNode *node = &h->nodes[n];

                if (node->word)
                        weight[n] += (double) MAX(h->words[node->word - 1].weight, (uint64_t) 1);
                if (n > 0)
                        weight[node->parent] += weight[n];
        }
        for (size_t n = 0; n < h->n_nodes; n++) {
                HmmNode *node = &h->nodes[n];

                node->enter_cost = n > 0 ? (float) log(weight[node->parent] / weight[n]) : 0.0f;
                node->end_cost = node->word ?
                        (float) log(weight[n] / (double) MAX(h->words[node->word - 1].weight, (uint64_t) 1)) :
                        INFINITY;
                if (n > 0)
                        h->nodes[node->parent].grand_ascii |= node->ascii_children;
                if (n > 0 && node->word && final_drop_ok(node)) {
                        if (node->letter >= 'a' && node->letter <= 'z')
                                h->nodes[node->parent].drop_ascii |= UINT32_C(1) << (node->letter - 'a');
                        else
                                h->nodes[node->parent].drop_other = true;
                }
        }

        /* the upper quartile of the word weights */
        if (h->n_words > 0) {
                _cleanup_free_ uint64_t *ws = calloc(h->n_words, sizeof(uint64_t));

                if (!ws)
                        return -ENOMEM;
                for (size_t k = 0; k < h->n_words; k++)
                        ws[k] = h->words[k].weight;
                qsort(ws, h->n_words, sizeof(uint64_t), u64_cmp);
                h->plain_weight_min = ws[h->n_words * 3 / 4];

        }

        r = index_build(h);
        if (r < 0)
                return r;
        r = hash_set_init(&h->collapsed, h->n_words);
        if (r < 0)
                return r;
        r = hash_set_init(&h->deletions, h->n_words * 12);
        if (r < 0)
                return r;
        for (size_t k = 0; k < h->n_words; k++)
                add_variants(h, &h->words[k]);

        {
                static uint64_t builds = 0;

                h->serial = __atomic_add_fetch(&builds, 1, __ATOMIC_RELAXED);
        }
        h->built = true;
        return 0;
}

static unsigned popcount32(uint32_t x) {
        /* without -mpopcnt, __builtin_popcount() is a library call */
        x = x - ((x >> 1) & UINT32_C(0x55555555));
        x = (x & UINT32_C(0x33333333)) + ((x >> 2) & UINT32_C(0x33333333));
        x = (x + (x >> 4)) & UINT32_C(0x0F0F0F0F);
        return (x * UINT32_C(0x01010101)) >> 24;
}

static const HmmNode* node_child(const SpamHmm *h, const HmmNode *node, uint32_t letter) {
        size_t lo, hi;

        /* Lexicon letters are folded: the children of a node are the small ASCII letters
         * in order, then letters of other scripts (U+00C0 and up). An ASCII letter's child
         * is found by its rank among the node's ASCII children. */
        if (letter >= 'a' && letter <= 'z') {
                uint32_t bit = UINT32_C(1) << (letter - 'a');

                if (!(node->ascii_children & bit))
                        return NULL;
                return &h->nodes[node->first_child + popcount32(node->ascii_children & (bit - 1))];
        }
        if (letter < 0x80)
                return NULL;

        lo = node->first_child + popcount32(node->ascii_children);
        hi = node->first_child + node->n_children;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (h->nodes[mid].letter == letter)
                        return &h->nodes[mid];
                if (h->nodes[mid].letter < letter)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

/* ---- the search ---- */

typedef struct Obs {
        size_t start, end;              /* bytes of the text */
        uint32_t cp;                    /* folded (capitals with a look of their own: as is) */
        uint8_t cls;
        bool suspect;                   /* part of a suspect chunk */
} Obs;

typedef struct Emission {
        uint32_t letter;
        float cost;
        uint8_t span;                   /* observations consumed */
} Emission;

typedef struct HmmState {
        uint32_t node;
        uint32_t word_node;             /* root states reached by ending a word: its node */
        uint32_t last_word;             /* root states: the node of the last word on the path */
        int32_t prev;                   /* index in the pool, -1 at the start */
        float cost;
        float edit;                     /* edit cost of the current word (or the one ended) */
        uint16_t col;                   /* column of the state (set in the pool) */
        uint16_t word_start;            /* column where that word began */
        uint8_t dels;                   /* letters dropped in the current word */
        uint8_t digits;                 /* digits read as letters in the current word */
        uint8_t looks;                  /* digits and symbols read as letters */
        bool inserted;                  /* the last step was an inserted separator */
} HmmState;

typedef struct HmmAcc {
        HmmState cand[HMM_CANDIDATES_MAX];
        uint16_t slot[HMM_CANDIDATE_SLOTS];     /* candidate index + 1 */
        size_t n;
} HmmAcc;

typedef struct HmmWork {
        Obs obs[HMM_STRETCH_MAX];
        Emission emis[HMM_STRETCH_MAX][HMM_EMISSIONS_MAX];
        uint8_t n_emis[HMM_STRETCH_MAX];
        size_t n_obs;
        size_t from, to;                /* the window being decoded */

        HmmState pool[(HMM_STRETCH_MAX + 1) * (HMM_BEAM_STATES + 1)];
        size_t n_pool;

        HmmAcc acc[HMM_RING];

        /* Stretches of this scan that were decoded and reported nothing: markup repeats
         * within a message ("<font color", "<td width"), and its tags are suspect. What a
         * stretch reports depends only on its key (see stretch_key()), so a stretch met
         * again is not decoded again. */
        size_t n_memo, memo_used;
        uint64_t memo_hash[HMM_MEMO_ENTRIES];
        uint16_t memo_offset[HMM_MEMO_ENTRIES], memo_len[HMM_MEMO_ENTRIES];
        char memo[HMM_MEMO_SIZE];
} HmmWork;

/* A slot of SpamHmmCache's table: a stretch's key, by hash, in the arena. */
typedef struct HmmCacheSlot {
        uint64_t hash;
        uint32_t offset;
        uint16_t len;                   /* 0: empty */
} HmmCacheSlot;

struct SpamHmmCache {
        HmmWork *work;                  /* the search's memory, kept between scans */
        uint64_t serial;                /* of the model the stretches were read with */
        size_t n;                       /* stretches held */
        size_t arena_used;
        HmmCacheSlot slots[HMM_CACHE_SLOTS];
        char arena[HMM_CACHE_ARENA];
};

typedef struct DecodedWord {
        uint32_t node;
        uint16_t start, end;            /* observations */
        float edit;
        uint8_t dels, digits, looks;
} DecodedWord;

static size_t acc_home(uint32_t node) {
        return (node * UINT32_C(2654435761)) & (HMM_CANDIDATE_SLOTS - 1);
}

static void acc_offer(HmmAcc *a, const HmmState *s) {
        size_t i = acc_home(s->node);

        for (;; i = (i + 1) & (HMM_CANDIDATE_SLOTS - 1)) {
                uint16_t k = a->slot[i];

                if (k == 0)
                        break;
                if (a->cand[k - 1].node == s->node) {
                        if (s->cost < a->cand[k - 1].cost)
                                a->cand[k - 1] = *s;
                        return;
                }
        }
        if (a->n >= HMM_CANDIDATES_MAX)
                return;
        a->cand[a->n] = *s;
        a->slot[i] = (uint16_t) ++a->n;
}

static void acc_clear(HmmAcc *a) {
        /* only the probe chains of the candidates were written */
        for (size_t k = 0; k < a->n; k++)
                for (size_t i = acc_home(a->cand[k].node); a->slot[i] != 0; i = (i + 1) & (HMM_CANDIDATE_SLOTS - 1))
                        a->slot[i] = 0;
        a->n = 0;
}

static void obs_emissions(HmmWork *w, size_t i) {
        const Obs *o = &w->obs[i];
        Emission *e = w->emis[i];
        size_t n = 0;
        const Glyph *g;
        char base;

        if (IN_SET(o->cls, CLS_LETTER, CLS_ACCENT, CLS_GLYPH))
                e[n++] = (Emission) { .letter = fold(o->cp), .cost = 0.0f, .span = 1 };
        g = glyph_find(o->cp);
        /* '(' is c only after a letter ("vi(odin"); before one it opens a call or a remark */
        if (g && o->cp == '(' && (i == 0 || !IN_SET(w->obs[i - 1].cls, CLS_LETTER, CLS_ACCENT, CLS_GLYPH, CLS_LOOK)))
                g = NULL;
        if (g)
                for (size_t k = 0; k < 2; k++)
                        if (g->letter[k] != 0)
                                e[n++] = (Emission) { .letter = (uint8_t) g->letter[k], .cost = g->cost[k], .span = 1 };
        base = accent_base(o->cp);
        if (base)
                e[n++] = (Emission) { .letter = (uint8_t) base, .cost = COST_ACCENT, .span = 1 };

        if (o->cp < 0x80 && strchr("|/\\(vpr", (int) o->cp))
                for (size_t p = 0; p < ELEMENTSOF(patterns) && n < HMM_EMISSIONS_MAX; p++) {
                        const char *t = patterns[p].text;
                        size_t k = 0;

                        for (; t[k]; k++)
                                if (i + k >= w->n_obs || w->obs[i + k].cp != (uint8_t) t[k])
                                        break;
                        if (t[k] == 0)
                                e[n++] = (Emission) { .letter = (uint8_t) patterns[p].letter,
                                                      .cost = patterns[p].cost, .span = (uint8_t) k };
                }
        w->n_emis[i] = (uint8_t) n;
}

static float insert_cost(const Obs *o, const Obs *prev, const HmmNode *node, bool *ret_double) {
        /* a doubled letter is the same character twice in a row: "viaggra", not "g.g" */
        *ret_double = fold(o->cp) == node->letter && prev && prev->cp == o->cp;
        if (*ret_double)
                return COST_DOUBLE;
        switch (o->cls) {
        case CLS_SEP:
                return COST_INSERT_SEP;
        case CLS_SPACE:
                return COST_INSERT_SPACE;
        case CLS_LOOK:
                return IN_SET(o->cp, (uint32_t) '|', (uint32_t) '+', (uint32_t) '/', (uint32_t) '\\') ?
                        COST_INSERT_SYMBOL : INFINITY;
        default:
                return INFINITY;
        }
}

static float garbage_cost(const Obs *o) {
        switch (o->cls) {
        case CLS_SEP:
        case CLS_SPACE:
                return COST_GARBAGE_SEP;
        case CLS_LETTER:
                return COST_GARBAGE_LETTER;
        default:
                return COST_GARBAGE_SYMBOL;
        }
}

static float delete_cost(const HmmNode *node, const HmmNode *child) {
        return child->letter == node->letter ? COST_DELETE_DOUBLE : COST_DELETE;
}

/* A word's last letter may not be the dropped one when it is an inflection ("setting" is
 * not a disguised "settings", nor "bundle" of "bundled"). */
static bool final_drop_ok(const HmmNode *child) {
        return !IN_SET(child->letter, (uint32_t) 's', (uint32_t) 'd', (uint32_t) 'r', (uint32_t) 'n',
                       (uint32_t) 'e', (uint32_t) 'y');
}

static int state_cmp(const void *a, const void *b) {
        float x = ((const HmmState*) a)->cost, y = ((const HmmState*) b)->cost;

        return (x > y) - (x < y);
}

typedef struct Finals {
        uint32_t target;                /* node of the word whose confidence is wanted */
        float target_cost;              /* best complete path ending in that word */
        float other_cost;               /* best complete path ending otherwise */
} Finals;

static void finals_offer(Finals *f, uint32_t node, float cost) {
        if (!f)
                return;
        if (node != 0 && node == f->target)
                f->target_cost = MIN(f->target_cost, cost);
        else
                f->other_cost = MIN(f->other_cost, cost);
}

/* A word read with its last letter dropped: child ci of the node of s ends it. */
static void offer_drop_end(const SpamHmm *h, const HmmNode *node, const HmmState *s, size_t idx, uint32_t ci,
                           HmmState *root, Finals *finals) {
        const HmmNode *ch = &h->nodes[ci];
        float d, c;

        d = delete_cost(node, ch);
        c = s->cost + d + HMM_PRIOR_WEIGHT * (ch->enter_cost + ch->end_cost) + COST_BOUNDARY;
        finals_offer(finals, ci, c);
        if (c < root->cost)
                *root = (HmmState) { .node = 0, .word_node = ci, .last_word = ci,
                                     .prev = (int32_t) idx,
                                     .cost = c, .edit = s->edit + d,
                                     .word_start = s->word_start,
                                     .dels = (uint8_t) (s->dels + 1), .digits = s->digits,
                                     .looks = s->looks };
}

/* Prunes the candidates of column col to the beam, appends them to the pool, and closes
 * over word ends: a terminal node, or a node whose dropped next letter ends a word, goes
 * back to the root. On the last column, finals collects the complete paths. */
static void column_finalize(const SpamHmm *h, HmmWork *w, size_t col, size_t *ret_begin, size_t *ret_end,
                            Finals *finals) {

        HmmAcc *a = &w->acc[col % HMM_RING];
        HmmState root = { .node = 0, .cost = INFINITY, .prev = -1 };
        size_t n = 0, n_cand = a->n, begin = w->n_pool;
        float best = INFINITY;

        /* the hash slots are not needed any more; cleared before the candidates move, as
         * acc_clear() finds the slots from the candidates */
        acc_clear(a);

        /* the root apart: it is never pruned */
        for (size_t i = 0; i < n_cand; i++) {
                if (a->cand[i].node == 0)
                        root = a->cand[i];
                else {
                        a->cand[n++] = a->cand[i];
                        best = MIN(best, a->cand[i].cost);
                }
        }
        /* garbage after the word ("viagraaa" read as "viagra" and two junk letters) still
         * reads the word */
        finals_offer(finals, root.last_word, root.cost);
        if (n > HMM_BEAM_STATES)
                qsort(a->cand, n, sizeof(HmmState), state_cmp);

        for (size_t i = 0; i < n && w->n_pool - begin < HMM_BEAM_STATES; i++) {
                const HmmState *s = &a->cand[i];
                const HmmNode *node = &h->nodes[s->node];
                size_t idx;

                if (s->cost > best + HMM_BEAM_WIDTH)
                        continue;
                idx = w->n_pool++;
                w->pool[idx] = *s;
                w->pool[idx].col = (uint16_t) col;

                /* a word ends on a letter, not on an inserted separator */
                if (s->inserted)
                        continue;
                if (node->word) {
                        float c = s->cost + HMM_PRIOR_WEIGHT * node->end_cost + COST_BOUNDARY;

                        finals_offer(finals, s->node, c);
                        if (c < root.cost)
                                root = (HmmState) { .node = 0, .word_node = s->node, .last_word = s->node,
                                                    .prev = (int32_t) idx,
                                                    .cost = c, .edit = s->edit, .word_start = s->word_start,
                                                    .dels = s->dels, .digits = s->digits,
                                                    .looks = s->looks };
                }
                if (s->dels >= HMM_DELETE_MAX)
                        continue;
                /* the children that end such a word, in order: the ASCII ones from their
                 * mask, then the others */
                for (uint32_t m = node->drop_ascii; m != 0; m &= m - 1)
                        offer_drop_end(h, node, s, idx,
                                       node->first_child + popcount32(node->ascii_children & ((m & -m) - 1)),
                                       &root, finals);
                if (node->drop_other)
                        for (uint32_t k = popcount32(node->ascii_children); k < node->n_children; k++) {
                                const HmmNode *ch = &h->nodes[node->first_child + k];

                                if (ch->word && final_drop_ok(ch))
                                        offer_drop_end(h, node, s, idx, node->first_child + k, &root,
                                                       finals);
                        }
        }
        if (isfinite(root.cost)) {
                root.col = (uint16_t) col;
                w->pool[w->n_pool++] = root;
        }
        *ret_begin = begin;
        *ret_end = w->n_pool;
}

static void column_expand(const SpamHmm *h, HmmWork *w, size_t col, size_t begin, size_t end) {
        float best = INFINITY;
        size_t at = w->from + col;
        const Obs *o = &w->obs[at], *prev = col > 0 ? &w->obs[at - 1] : NULL;
        const Emission *em = w->emis[at];
        size_t n_em = w->n_emis[at];
        uint8_t digit = o->cp >= '0' && o->cp <= '9', look = o->cls == CLS_LOOK;
        uint32_t em_ascii = 0;          /* the small ASCII letters emitted */
        bool em_other = false;          /* and whether a letter of another script is */

        for (size_t idx = begin; idx < end; idx++)
                best = MIN(best, w->pool[idx].cost);
        for (size_t k = 0; k < n_em; k++)
                if (em[k].letter >= 'a' && em[k].letter <= 'z')
                        em_ascii |= UINT32_C(1) << (em[k].letter - 'a');
                else
                        em_other = true;

        for (size_t idx = begin; idx < end; idx++) {
                const HmmState *s = &w->pool[idx];
                const HmmNode *node = &h->nodes[s->node];
                bool doubled;
                float ins;

                if (s->node == 0) {
                        HmmState g = { .node = 0, .prev = (int32_t) idx, .cost = s->cost + garbage_cost(o),
                                       .last_word = s->last_word };

                        acc_offer(&w->acc[(col + 1) % HMM_RING], &g);
                        for (size_t k = 0; k < n_em; k++) {
                                const HmmNode *ch = node_child(h, node, em[k].letter);
                                HmmState t;

                                if (!ch || at + em[k].span > w->to)
                                        continue;
                                t = (HmmState) {
                                        .node = (uint32_t) (ch - h->nodes),
                                        .prev = (int32_t) idx,
                                        .cost = s->cost + em[k].cost + HMM_PRIOR_WEIGHT * ch->enter_cost,
                                        .edit = em[k].cost,
                                        .word_start = (uint16_t) col,
                                        .digits = digit,
                                        .looks = look,
                                };
                                acc_offer(&w->acc[(col + em[k].span) % HMM_RING], &t);
                        }
                        continue;
                }

                /* emit the next letter */
                for (size_t k = 0; k < n_em; k++) {
                        const HmmNode *ch = node_child(h, node, em[k].letter);
                        HmmState t;

                        if (!ch || at + em[k].span > w->to)
                                continue;
                        t = *s;
                        t.node = (uint32_t) (ch - h->nodes);
                        t.prev = (int32_t) idx;
                        t.cost += em[k].cost + HMM_PRIOR_WEIGHT * ch->enter_cost;
                        t.edit += em[k].cost;
                        t.digits += digit;
                        t.looks += look;
                        t.inserted = false;
                        acc_offer(&w->acc[(col + em[k].span) % HMM_RING], &t);
                }

                /* a letter was dropped, and the one after it is emitted: every child of the
                 * node is tried, which is what costs most, so only close to the best */
                if (s->dels < HMM_DELETE_MAX && s->cost <= best + HMM_DELETE_BEAM &&
                    ((node->grand_ascii & em_ascii) || em_other))
                        for (uint32_t c = 0; c < node->n_children; c++) {
                                const HmmNode *ch = &h->nodes[node->first_child + c];
                                float d;

                                /* no grandchild for any emitted letter */
                                if (!(ch->ascii_children & em_ascii) && !em_other)
                                        continue;
                                d = delete_cost(node, ch);
                                for (size_t k = 0; k < n_em; k++) {
                                        const HmmNode *gc = node_child(h, ch, em[k].letter);
                                        HmmState t;

                                        if (!gc || at + em[k].span > w->to)
                                                continue;
                                        t = *s;
                                        t.node = (uint32_t) (gc - h->nodes);
                                        t.prev = (int32_t) idx;
                                        t.cost += d + em[k].cost +
                                                HMM_PRIOR_WEIGHT * (ch->enter_cost + gc->enter_cost);
                                        t.edit += d + em[k].cost;
                                        t.dels++;
                                        t.digits += digit;
                                        t.looks += look;
                                        t.inserted = false;
                                        acc_offer(&w->acc[(col + em[k].span) % HMM_RING], &t);
                                }
                        }

                /* a separator, a space or the same letter again */
                ins = insert_cost(o, prev, node, &doubled);
                if (isfinite(ins)) {
                        HmmState t = *s;

                        t.prev = (int32_t) idx;
                        t.cost += ins;
                        t.edit += ins;
                        t.inserted = !doubled;
                        acc_offer(&w->acc[(col + 1) % HMM_RING], &t);
                }
        }
}

/* Viterbi over the observations [from, to). Returns the pool index of the best complete
 * path (a root state on the last column), or -1. */
static ssize_t viterbi(const SpamHmm *h, HmmWork *w, size_t from, size_t to, Finals *finals) {
        HmmState start = { .node = 0, .prev = -1, .cost = 0.0f };
        size_t begin = 0, end = 0;

        assert(from <= to && to <= w->n_obs);
        assert(to - from <= HMM_STRETCH_MAX);

        w->from = from;
        w->to = to;
        w->n_pool = 0;
        for (size_t r = 0; r < HMM_RING; r++)
                acc_clear(&w->acc[r]);
        acc_offer(&w->acc[0], &start);

        for (size_t col = 0;; col++) {
                bool last = col == to - from;

                column_finalize(h, w, col, &begin, &end, last ? finals : NULL);
                if (last)
                        break;
                column_expand(h, w, col, begin, end);
        }
        for (size_t r = 0; r < HMM_RING; r++)
                acc_clear(&w->acc[r]);

        for (size_t i = begin; i < end; i++)
                if (w->pool[i].node == 0)
                        return (ssize_t) i;
        return -1;
}

/* ---- scanning ---- */

typedef struct HmmChunk {
        size_t start, end;              /* bytes of the text, trimmed */
        uint32_t n_cp;
        bool fragment;                  /* may take part in a stretch */
        bool plain;                     /* ASCII letters only */
        bool known;                     /* plain, and a lexicon word */
        bool suspect;
        bool included;
        bool pending;                   /* plain, known and suspect not looked up yet */
        uint64_t hash;                  /* pending: index_hash() of the folded word; after
                                         * chunk_lookup(), the collapsed word's hash */
        uint64_t word_hash;             /* after chunk_lookup(): the word's hash */
} HmmChunk;

typedef struct Scanner {
        const SpamHmm *h;
        const char *text;
        SpamHmmWordCallback cb;
        void *userdata;
        HmmWork *work;
        SpamHmmCache *cache;            /* or NULL */
        int reported;

        HmmChunk chunks[HMM_SEGMENT_CHUNKS + 1];       /* the last: the chunk being read */
        size_t n_chunks;
} Scanner;

static uint8_t ascii_lower(uint8_t c) {
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The number of ASCII letters s starts with. */
static size_t ascii_letters(const char *s, size_t n) {
        size_t i = 0;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* eight at a time: with bit 5 set and bit 7 cleared, a byte is a letter when it is
         * 0x61..0x7a, which adding 0x1f and 0x05 tells in bit 7 without carries, and
         * its bit 7 was clear */
        for (; i + 8 <= n; i += 8) {
                const uint64_t high = UINT64_C(0x8080808080808080), ones = UINT64_C(0x0101010101010101);
                uint64_t x, v, letters;

                memcpy(&x, s + i, 8);
                v = (x | 0x20 * ones) & ~high;
                letters = (v + 0x1f * ones) & ~(v + 0x05 * ones) & ~x & high;
                if (letters != high)
                        return i + (size_t) __builtin_ctzll(~letters & high) / 8;
        }
#endif
        while (i < n && ((uint8_t) s[i] | 0x20) >= 'a' && ((uint8_t) s[i] | 0x20) <= 'z')
                i++;
        return i;
}

/* Lexicon lookup of any text, folded. */
static bool lexicon_has_folded(const SpamHmm *h, const char *s, size_t n) {
        char buf[SPAM_HMM_WORD_MAX * 4];
        size_t m = 0, n_cp = 0;

        for (size_t i = 0; i < n;) {
                uint32_t cp;

                i += utf8_decode(s + i, n - i, &cp);
                if (++n_cp > SPAM_HMM_WORD_MAX)
                        return false;
                m += utf8_encode(fold(cp), buf + m);
        }
        return n_cp >= SPAM_HMM_WORD_MIN && lexicon_find(h, buf, m);
}

/* A plain chunk that is not a lexicon word is suspect when it is one with a doubled letter
 * added or removed ("viaggra", "ofer"), or, from 5 letters on, with a letter dropped
 * ("viagr"). Two hash-set probes. */
static void plain_unknown_hashes(const char *s, size_t n, uint64_t *ret_collapsed, uint64_t *ret_word) {
        uint64_t c = hash_init(), d = hash_init();

        for (size_t i = 0; i < n; i++) {
                uint8_t x = ascii_lower((uint8_t) s[i]);

                if (i == 0 || x != ascii_lower((uint8_t) s[i - 1]))
                        c = hash_byte(c, x);
                d = hash_byte(d, x);
        }
        *ret_collapsed = hash_final(c);
        *ret_word = hash_final(d);
}

static bool plain_unknown_probe(const SpamHmm *h, size_t n, uint64_t collapsed, uint64_t word) {
        if (hash_set_contains(&h->collapsed, collapsed))
                return true;
        return n >= 5 && hash_set_contains(&h->deletions, word);
}

static bool plain_unknown_suspect(const SpamHmm *h, const char *s, size_t n) {
        uint64_t c, d;

        plain_unknown_hashes(s, n, &c, &d);
        return plain_unknown_probe(h, n, c, d);
}

/* The length of the stem of an English contraction or possessive, ASCII letters and an
 * apostrophe (' or U+2019) before "s", "t", "d", "m", "ll", "re" or "ve" at the end of the
 * chunk ("don't", "Johansen's", "we'll"); 0 for other chunks. */
static size_t clitic_stem(const char *s, size_t n) {
        static const char* const clitics[] = { "s", "t", "d", "m", "ll", "re", "ve" };
        size_t stem = ascii_letters(s, n), rest;

        if (stem == 0 || stem == n)
                return 0;
        if (s[stem] == '\'')
                rest = stem + 1;
        else if (n - stem >= 3 && memcmp(s + stem, "\xe2\x80\x99", 3) == 0)
                rest = stem + 3;
        else
                return 0;
        if (ascii_letters(s + rest, n - rest) != n - rest)
                return 0;
        for (size_t k = 0; k < ELEMENTSOF(clitics); k++)
                if (n - rest == strlen(clitics[k]) && strncasecmp(s + rest, clitics[k], n - rest) == 0)
                        return stem;
        return 0;
}

/* Separators between letters: "V.I.A.G.R.A", "vi-agra", "mort.gage". A chunk whose only
 * separators are hyphens and apostrophes ("well-known", "don't") is ordinary text unless a
 * part of it is an unknown word of three letters or more. A contraction or possessive is
 * as suspect as its stem alone would be as a plain chunk: "don't" and "MPAA's" are
 * ordinary text whether or not "don" and "mpaa" are words of the lexicon. */
static bool separated_suspect(const SpamHmm *h, const char *s, size_t n) {
        size_t stem = clitic_stem(s, n);
        unsigned singles = 0;
        bool only_hyphens = true, any_unknown = false, any_known = false, ascii = true;
        uint64_t concat = hash_init();
        size_t part = 0, concat_len = 0;

        if (stem > 0) {
                if (stem >= SPAM_HMM_WORD_MIN && stem <= SPAM_HMM_WORD_MAX &&
                    lexicon_find_ascii(h, s, stem, index_hash(s, stem, /* fold_ascii= */ true)))
                        return false;
                return stem >= 4 && stem <= SPAM_HMM_WORD_MAX && plain_unknown_suspect(h, s, stem);
        }

        for (size_t i = 0; i <= n;) {
                uint32_t cp = 0;
                size_t l = 1;
                HmmClass c = CLS_SEP;

                if (i < n) {
                        l = utf8_decode(s + i, n - i, &cp);
                        c = char_class(cp);
                }
                if (c == CLS_SEP) {
                        size_t plen = i - part;

                        if (plen == 1)
                                singles++;
                        else if (plen >= 3 && !lexicon_has_folded(h, s + part, plen))
                                any_unknown = true;
                        else if (plen >= 3)
                                any_known = true;
                        if (i < n && !IN_SET(cp, (uint32_t) '-', (uint32_t) '\'', 0x2019U, 0x2010U, 0x2011U))
                                only_hyphens = false;
                        part = i + l;
                } else if (c == CLS_LETTER) {
                        concat = hash_byte(concat, ascii_lower((uint8_t) s[i]));
                        concat_len++;
                } else
                        ascii = false;
                i += l;
        }
        if (singles >= 3)
                return true;
        /* "clean-ups", "e-mail" are spellings; "vi-agra" is a disguise */
        if (only_hyphens)
                return any_unknown && !any_known;
        if (any_unknown)
                return true;
        if (!ascii)
                return false;
        /* "mort.gage": the letters together make a lexicon word (up to doubled letters) */
        return concat_len >= SPAM_HMM_WORD_MIN && concat_len <= SPAM_HMM_WORD_MAX &&
                hash_set_contains(&h->collapsed, hash_final(concat));
}

/* Every part between separators is a single character: "v_i_a_g_r_a". */
static bool separated_singles(const char *s, size_t n) {
        size_t run = 0;

        for (size_t i = 0; i < n;) {
                uint32_t cp;

                i += utf8_decode(s + i, n - i, &cp);
                if (char_class(cp) == CLS_SEP)
                        run = 0;
                else if (++run > 1)
                        return false;
        }
        return true;
}

static void chunk_classify(const SpamHmm *h, const char *text, HmmChunk *c) {
        const char *s = text + c->start;
        size_t n = c->end - c->start;
        unsigned letters = 0, accents = 0, glyphs_ = 0, looks = 0, seps = 0, digits = 0, inner_digits = 0,
                pending_digits = 0, hex_letters = 0;
        bool slash = false, backslash = false, pipe = false, at = false, dot_after_at = false,
                camel = false, was_lower = false, underscore = false;

        c->n_cp = 0;
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t l = utf8_decode(s + i, n - i, &cp);

                switch (char_class(cp)) {
                case CLS_LETTER:
                        /* an upper-case letter after a lower-case one: an identifier or
                         * encoded junk ("RNuTX", "m4Y"), not a disguised word */
                        camel = camel || (was_lower && cp >= 'A' && cp <= 'Z');
                        was_lower = cp >= 'a' && cp <= 'z';
                        hex_letters += (cp | 0x20) >= 'a' && (cp | 0x20) <= 'f';
                        if (letters > 0)
                                inner_digits += pending_digits;
                        pending_digits = 0;
                        letters++;
                        break;
                case CLS_ACCENT:
                        accents++;
                        break;
                case CLS_GLYPH:
                        glyphs_++;
                        break;
                case CLS_LOOK:
                        if (cp >= '0' && cp <= '9') {
                                digits++;
                                pending_digits++;
                                break;
                        }
                        /* "$HOME", "$(git": a variable; "project(git", "macro(parse": a call */
                        if ((cp == '$' && i == 0) || cp == '(')
                                break;
                        looks++;
                        slash = slash || cp == '/';
                        backslash = backslash || cp == '\\';
                        pipe = pipe || cp == '|';
                        at = at || cp == '@';
                        break;
                case CLS_SEP:
                        seps++;
                        dot_after_at = dot_after_at || (at && cp == '.');
                        underscore = underscore || cp == '_';
                        break;
                default:
                        break;
                }
                c->n_cp++;
                i += l;
        }

        c->plain = letters == c->n_cp;
        c->known = false;
        c->suspect = false;
        c->included = false;
        c->fragment = c->n_cp <= HMM_CHUNK_MAX &&
                (letters + accents + glyphs_ > 0 || (c->n_cp == 1 && looks == 1));
        if (!c->fragment)
                return;

        /* addresses, URLs and paths are not words ("://" has a '/', which sets slash) */
        if ((at && dot_after_at) || (slash && ((!backslash && !pipe) || memmem(s, n, "://", 3)))) {
                c->fragment = false;
                return;
        }

        if (c->plain) {
                c->known = n >= SPAM_HMM_WORD_MIN && n <= SPAM_HMM_WORD_MAX &&
                lexicon_find_ascii(h, s, n, index_hash(s, n, /* fold_ascii= */ true));
                if (!c->known && c->n_cp >= 4 && c->n_cp <= SPAM_HMM_WORD_MAX)
                        c->suspect = plain_unknown_suspect(h, s, n);
                return;
        }

        /* identifiers of programs: "getValue", "read_sha1_file" (but "v_i_a_g_r_a") */
        if (camel || (underscore && !separated_singles(s, n)))
                return;

        /* digits between letters, fewer than the letters, and not a hexadecimal number:
         * "m0rtgage", not "sha1", "3rd", "x86_64" or "d41d8cd9" */
        if (inner_digits > 0 && digits <= letters && !(digits >= 2 && hex_letters == letters))
                looks += inner_digits;
        /* one digit at an end of a longer word: "urgen7", "8anking" (not "sha1", "mp3") */
        else if (digits == 1 && letters >= 4)
                looks++;

        if (looks > 0 && letters + glyphs_ + accents > 0)
                c->suspect = true;                      /* "v1agra", "vi@gra", "\/iagra" */
        else if (glyphs_ > 0 && letters > 0)
                c->suspect = true;                      /* Cyrillic or Greek among Latin */
        else if (accents > 0 && letters > 0 && seps == 0)
                c->suspect = !lexicon_has_folded(h, s, n);
        if (!c->suspect && seps > 0 && letters + accents + glyphs_ >= 2)
                c->suspect = separated_suspect(h, s, n);
}

/* Fetches the bytes of the lexicon word a pending chunk probably is. */
static void chunk_prefetch(const SpamHmm *h, const HmmChunk *c) {
        uint32_t tag = index_tag(c->hash, c->end - c->start);

        for (size_t i = c->hash & h->index_mask;; i = (i + 1) & h->index_mask) {
                const HmmIndexSlot *e = &h->index[i];

                if (e->offset == 0)
                        return;
                if (e->tag == tag) {
                        __builtin_prefetch(h->pool + e->offset - 1);
                        return;
                }
        }
}

/* A plain chunk's look-up: a lexicon word, done; or not, and if it may be one with a
 * doubled letter or a letter dropped, the hashes for plain_unknown_probe() (in hash and
 * word_hash; the chunk stays pending), whose slots are fetched. */
static void chunk_lookup(const SpamHmm *h, const char *text, HmmChunk *c) {
        const char *s = text + c->start;
        size_t n = c->end - c->start;

        c->known = lexicon_find_ascii(h, s, n, c->hash);
        if (c->known || n < 4) {
                c->pending = false;
                return;
        }
        plain_unknown_hashes(s, n, &c->hash, &c->word_hash);
        __builtin_prefetch(&h->collapsed.keys[c->hash & h->collapsed.mask]);
        if (n >= 5)
                __builtin_prefetch(&h->deletions.keys[c->word_hash & h->deletions.mask]);
}

/* Two neighbouring plain chunks that make a lexicon word together ("via gra"). */
static bool lexicon_has_concat(const SpamHmm *h, const char *text, const HmmChunk *a, const HmmChunk *b,
                               const HmmChunk *c) {
        char buf[SPAM_HMM_WORD_MAX];
        const HmmChunk *parts[3] = { a, b, c };
        size_t n = 0;

        for (size_t k = 0; k < 3 && parts[k]; k++) {
                if (n + (parts[k]->end - parts[k]->start) > sizeof(buf))
                        return false;
                for (size_t i = parts[k]->start; i < parts[k]->end; i++)
                        buf[n++] = (char) ascii_lower((uint8_t) text[i]);
        }
        return n >= SPAM_HMM_WORD_MIN && lexicon_find(h, buf, n);
}

/* The pieces of a word's span, split at white space and separators, must be pieces of a
 * disguise, not words of the text joined:
 *
 *   single letters, three or more          "V.I.A.G.R.A", "v-1-a-g-r-a", "v i a g r a"
 *   a disguised piece among plain ones     "m0rt gage", "ci al!s", "pi| ls"
 *   an invisible separator                 "via<U+200B>gra"
 *   plain pieces none of which is a word   "mort.gage", "mor tgage"
 *
 * but not "it s", "h older", "hello world", "get_value", nor, in code, a short piece behind
 * a separator ("port1.on", "section-5"). A word of three letters must be all there, in one
 * piece or as single letters ("S.E.X"), with no digit or symbol read as a letter. */
static bool pieces_ok(const SpamHmm *h, const HmmWork *w, const DecodedWord *dw, unsigned n_cp) {
        unsigned pieces = 0, short_any = 0, short_behind_sep = 0, singles = 0, disguised = 0, known = 0,
                long_pieces = 0;
        bool after_sep = false;

        for (size_t i = dw->start; i < dw->end;) {
                char buf[HMM_STRETCH_MAX * 4];
                size_t n = 0, m = 0;
                bool plain = true, sep = false;

                for (; i < dw->end && !IN_SET(w->obs[i].cls, CLS_SPACE, CLS_SEP); i++, n++) {
                        plain = plain && w->obs[i].cls == CLS_LETTER;
                        m += utf8_encode(fold(w->obs[i].cp), buf + m);
                }
                for (; i < dw->end && IN_SET(w->obs[i].cls, CLS_SPACE, CLS_SEP); i++) {
                        sep = sep || w->obs[i].cls == CLS_SEP;
                        /* an invisible separator is a disguise by itself */
                        disguised += IN_SET(w->obs[i].cp, 0xADU, 0x200BU, 0x200CU, 0x200DU, 0x2060U, 0xFEFFU);
                }
                if (n == 0)
                        continue;
                pieces++;
                disguised += !plain;
                singles += n == 1;
                if (n <= 2) {
                        short_any++;
                        /* a short piece on either side of a separator */
                        short_behind_sep += after_sep || (sep && i < dw->end);
                } else {
                        long_pieces++;
                        if (plain && lexicon_find(h, buf, m))
                                known++;
                }
                after_sep = sep;
        }
        if (n_cp <= SPAM_HMM_WORD_MIN)
                return dw->looks == 0 && dw->dels == 0 && (pieces == 1 || singles == pieces);
        if (pieces <= 1)
                return true;
        if (pieces >= 3 && short_any == pieces)
                return true;
        if (disguised == 0)
                return known == 0 && short_any == 0;
        return short_behind_sep == 0;
}

/* "José": an upper-case first letter and lower-case letters after it. */
static bool written_capitalized(const char *text, size_t start, size_t end) {
        bool first = true;

        for (size_t i = start; i < end;) {
                uint32_t cp;

                i += utf8_decode(text + i, end - i, &cp);
                if (fold(cp) != cp) {
                        if (!first)
                                return false;
                } else if (first)
                        return false;
                first = false;
        }
        return true;
}

static int report_word(Scanner *sc, const DecodedWord *dw) {
        const SpamHmm *h = sc->h;
        HmmWork *w = sc->work;
        const HmmWord *word = &h->words[h->nodes[dw->node].word - 1];
        const char *s = h->pool + word->offset;
        Finals finals = { .target = dw->node, .target_cost = INFINITY, .other_cost = INFINITY };
        char written[HMM_STRETCH_MAX * 4];
        size_t m = 0;
        bool suspect = false, plain = true;
        unsigned accents = 0;
        double confidence;
        int r;

        /* the edit cost per letter: the word must be mostly there */
        if (dw->edit > HMM_EDIT_PER_LETTER_MAX * (float) word->n_cp)
                return 0;

        /* digits are most of a short identifier ("G11", "T13"), rarely of a disguise */
        if (dw->digits * 2 > word->n_cp)
                return 0;
        /* only what was obfuscated, not a plain neighbour, and not the word as written */
        for (size_t i = dw->start; i < dw->end; i++) {
                suspect = suspect || w->obs[i].suspect;
                m += utf8_encode(fold(w->obs[i].cp), written + m);
        }
        if (!suspect)
                return 0;
        if (m == word->len && memcmp(written, s, m) == 0)
                return 0;
        if (!pieces_ok(h, w, dw, word->n_cp))
                return 0;
        for (size_t i = dw->start; i < dw->end; i++) {
                plain = plain && IN_SET(w->obs[i].cls, CLS_LETTER, CLS_ACCENT);
                accents += w->obs[i].cls == CLS_ACCENT;
        }
        if (plain) {
                /* Letters only, dropped, doubled or accented: the weakest evidence, as
                 * ordinary text has its unknown words, names and other languages. The word
                 * must be a common one of the lexicon (the upper quarter by weight), five
                 * letters or more, and the first letter is not the one doubled ("ccache",
                 * "ppid"). Accented words spelt like names ("José", "Michaël") are names. */
                const Obs *o = &w->obs[dw->start];

                if (word->weight < h->plain_weight_min || word->n_cp < 5)
                        return 0;
                if (dw->end - dw->start >= 2 && o[0].cp == o[1].cp && s[0] != s[1])
                        return 0;
                if (accents > 0 && written_capitalized(sc->text, o->start, w->obs[dw->end - 1].end))
                        return 0;
        }

        /* confidence: the word against the best other reading of its own span */
        if (viterbi(h, w, dw->start, dw->end, &finals) < 0 || !isfinite(finals.target_cost))
                return 0;
        confidence = 1.0 / (1.0 + exp((double) finals.target_cost - (double) finals.other_cost));
        if (confidence < (plain ? HMM_CONFIDENCE_PLAIN_MIN : HMM_CONFIDENCE_MIN))
                return 0;

        r = sc->cb(s, word->len, w->obs[dw->start].start, w->obs[dw->end - 1].end, confidence, sc->userdata);
        if (r < 0)
                return r;
        sc->reported++;
        return 0;
}

/* Whether observation i can be part of a word's span: it emits a letter, is inserted (a
 * separator, white space, '|', '+', '/', '\\'), or lies inside a multi-character emission
 * that starts before it. */
static bool obs_in_word(const HmmWork *w, size_t i) {
        const Obs *o = &w->obs[i];

        if (w->n_emis[i] > 0 || IN_SET(o->cls, CLS_SEP, CLS_SPACE))
                return true;
        if (o->cls == CLS_LOOK &&
            IN_SET(o->cp, (uint32_t) '|', (uint32_t) '+', (uint32_t) '/', (uint32_t) '\\'))
                return true;
        for (size_t j = i > HMM_PATTERN_MAX ? i - HMM_PATTERN_MAX : 0; j < i; j++)
                for (size_t k = 0; k < w->n_emis[j]; k++)
                        if (j + w->emis[j][k].span > i)
                                return true;
        return false;
}

/* A reported word has three letters or more and at most one of them dropped (none in a
 * word of three letters: see pieces_ok()), so its span holds at least three observations
 * that emit a letter, and one of a suspect chunk. Most suspect stretches of mail are
 * markup ("<p", "<br"), where an observation that can be nothing inside a word ('<')
 * leaves too few letters next to the suspect ones: those need no search, as the search
 * could only come back without a word to report. */
static bool stretch_may_report(const HmmWork *w) {
        size_t emitting = 0;
        bool suspect = false;

        for (size_t i = 0; i < w->n_obs; i++) {
                if (!obs_in_word(w, i)) {
                        emitting = 0;
                        suspect = false;
                        continue;
                }
                emitting += w->n_emis[i] > 0;
                suspect = suspect || w->obs[i].suspect;
                if (suspect && emitting >= 3)
                        return true;
        }
        return false;
}

/* What decode_stretch() reads: the bytes from the first chunk's start to the last one's
 * end, and for each chunk where it starts and ends and whether it is suspect. Returns the
 * key's length, or 0 when it is too long to remember. */
static size_t stretch_key(const Scanner *sc, size_t first, size_t last, char key[static HMM_MEMO_KEY_MAX]) {
        size_t n = 0;

        for (size_t k = first; k <= last; k++) {
                const HmmChunk *c = &sc->chunks[k];
                size_t from = k > first ? sc->chunks[k - 1].end : c->start;

                if (c->start - from > UINT8_MAX || c->end - c->start > UINT8_MAX ||
                    n + 3 + (c->end - from) > HMM_MEMO_KEY_MAX)
                        return 0;
                key[n++] = (char) c->suspect;
                key[n++] = (char) (c->start - from);
                key[n++] = (char) (c->end - c->start);
                memcpy(key + n, sc->text + from, c->end - from);
                n += c->end - from;
        }
        return n;
}

static bool memo_find(const HmmWork *w, const char *key, size_t n, uint64_t hash) {
        for (size_t k = 0; k < w->n_memo; k++)
                if (w->memo_hash[k] == hash && w->memo_len[k] == n &&
                    memcmp(w->memo + w->memo_offset[k], key, n) == 0)
                        return true;
        return false;
}

static void memo_add(HmmWork *w, const char *key, size_t n, uint64_t hash) {
        if (w->n_memo >= HMM_MEMO_ENTRIES || w->memo_used + n > HMM_MEMO_SIZE)
                return;
        memcpy(w->memo + w->memo_used, key, n);
        w->memo_hash[w->n_memo] = hash;
        w->memo_offset[w->n_memo] = (uint16_t) w->memo_used;
        w->memo_len[w->n_memo] = (uint16_t) n;
        w->n_memo++;
        w->memo_used += n;
}

static void cache_clear(SpamHmmCache *c) {
        memset(c->slots, 0, sizeof(c->slots));
        c->n = c->arena_used = 0;
}

static bool cache_find(const SpamHmmCache *c, const char *key, size_t n, uint64_t hash) {
        for (size_t k = 0; k < HMM_CACHE_PROBES; k++) {
                const HmmCacheSlot *slot = &c->slots[(hash + k) & (HMM_CACHE_SLOTS - 1)];

                if (slot->len == n && slot->hash == hash && memcmp(c->arena + slot->offset, key, n) == 0)
                        return true;
        }
        return false;
}

/* Into the first empty slot of the key's probes, or over its home slot; when the arena
 * is full, the cache starts over. */
static void cache_add(SpamHmmCache *c, const char *key, size_t n, uint64_t hash) {
        HmmCacheSlot *slot = &c->slots[hash & (HMM_CACHE_SLOTS - 1)];

        assert(n > 0 && n <= HMM_MEMO_KEY_MAX);

        if (c->arena_used + n > HMM_CACHE_ARENA) {
                cache_clear(c);
                slot = &c->slots[hash & (HMM_CACHE_SLOTS - 1)];
        }
        for (size_t k = 0; k < HMM_CACHE_PROBES; k++) {
                HmmCacheSlot *x = &c->slots[(hash + k) & (HMM_CACHE_SLOTS - 1)];

                if (x->len == 0) {
                        slot = x;
                        break;
                }
        }
        if (slot->len == 0)
                c->n++;
        memcpy(c->arena + c->arena_used, key, n);
        *slot = (HmmCacheSlot) { .hash = hash, .offset = (uint32_t) c->arena_used, .len = (uint16_t) n };
        c->arena_used += n;
}

/* A stretch read as no word: remembered for the rest of the scan, and by the cache. */
static void remember_nothing(Scanner *sc, const char *key, size_t n, uint64_t hash) {
        memo_add(sc->work, key, n, hash);
        if (sc->cache)
                cache_add(sc->cache, key, n, hash);
}

static HmmWork* work_new(void) {
        /* most of it is written before it is read; only the hash slots and the counts
         * must start clear (calloc would touch every page) */
        HmmWork *w = malloc(sizeof(HmmWork));

        if (!w)
                return NULL;
        for (size_t k = 0; k < HMM_RING; k++) {
                memset(w->acc[k].slot, 0, sizeof(w->acc[k].slot));
                w->acc[k].n = 0;
        }
        w->n_memo = w->memo_used = 0;
        return w;
}

int spam_hmm_cache_new(SpamHmmCache **ret) {
        SpamHmmCache *c;

        assert_return(ret, -EINVAL);

        c = calloc(1, sizeof(SpamHmmCache));
        if (!c)
                return -ENOMEM;
        c->work = work_new();
        if (!c->work) {
                free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

SpamHmmCache* spam_hmm_cache_free(SpamHmmCache *c) {
        if (!c)
                return NULL;
        free(c->work);
        free(c);
        return NULL;
}

size_t spam_hmm_cache_size(const SpamHmmCache *c) {
        return c ? c->n : 0;
}

static int decode_stretch(Scanner *sc, size_t first, size_t last) {
        DecodedWord words[HMM_WORDS_MAX];
        char key[HMM_MEMO_KEY_MAX];
        size_t n_words = 0, key_len;
        uint64_t key_hash = 0;
        int reported = sc->reported;
        HmmWork *w;
        ssize_t best;
        int r;

        if (!sc->work) {
                sc->work = work_new();
                if (!sc->work)
                        return -ENOMEM;
        }
        w = sc->work;

        key_len = stretch_key(sc, first, last, key);
        if (key_len > 0) {
                key_hash = hash_bytes(key, key_len);
                if (memo_find(w, key, key_len, key_hash))
                        return 0;
                if (sc->cache && cache_find(sc->cache, key, key_len, key_hash))
                        return 0;
        }

        /* the observations: every code point of the chunks and of the gaps between them, a
         * run of white space counting once */
        w->n_obs = 0;
        for (size_t k = first; k <= last; k++) {
                const HmmChunk *c = &sc->chunks[k];
                size_t i = k > first ? sc->chunks[k - 1].end : c->start;

                while (i < c->end && w->n_obs < HMM_STRETCH_MAX) {
                        uint32_t cp;
                        size_t l = utf8_decode(sc->text + i, c->end - i, &cp);
                        HmmClass cls = char_class(cp);

                        if (cls == CLS_SPACE && w->n_obs > 0 && w->obs[w->n_obs - 1].cls == CLS_SPACE)
                                w->obs[w->n_obs - 1].end = i + l;
                        else
                                w->obs[w->n_obs++] = (Obs) {
                                        .start = i,
                                        .end = i + l,
                                        /* capitals that look unlike their small letter
                                         * (Greek Η, Cyrillic В) keep their own entry */
                                        .cp = cls == CLS_SPACE ? ' ' :
                                                glyph_find(cp) && !glyph_find(fold(cp)) ? cp : fold(cp),
                                        /* look-alikes trimmed off a chunk ("(", ")", "!")
                                         * stand for nothing */
                                        .cls = (uint8_t) (i < c->start && cls == CLS_LOOK ? CLS_OTHER : cls),
                                        .suspect = i >= c->start && c->suspect,
                                };
                        i += l;
                }
        }
        for (size_t i = 0; i < w->n_obs; i++)
                obs_emissions(w, i);
        if (!stretch_may_report(w)) {
                if (key_len > 0)
                        remember_nothing(sc, key, key_len, key_hash);
                return 0;
        }

        best = viterbi(sc->h, w, 0, w->n_obs, NULL);
        for (ssize_t i = best; i >= 0 && n_words < HMM_WORDS_MAX; i = w->pool[i].prev) {
                const HmmState *s = &w->pool[i];

                if (s->node == 0 && s->word_node != 0)
                        words[n_words++] = (DecodedWord) {
                                .node = s->word_node,
                                .start = s->word_start,
                                .end = s->col,
                                .edit = s->edit,
                                .dels = s->dels,
                                .digits = s->digits,
                                .looks = s->looks,
                        };
        }

        /* in text order; report_word() reuses the pool */
        for (size_t k = n_words; k-- > 0;) {
                r = report_word(sc, &words[k]);
                if (r < 0)
                        return r;
        }
        if (key_len > 0 && sc->reported == reported)
                remember_nothing(sc, key, key_len, key_hash);
        return 0;
}

/* Marks the suspect chunks of a segment (chunks with short gaps between them), adds their
 * short neighbours, and decodes each run of marked chunks. */
static int segment_flush(Scanner *sc) {
        HmmChunk *ch = sc->chunks;
        size_t n = sc->n_chunks;
        bool any = false;
        int r;

        sc->n_chunks = 0;

        /* the look-ups of the plain chunks, together, so that their cache misses overlap:
         * the words' bytes are fetched, the lexicon is asked, and for the unknown words
         * the hash sets of plain_unknown_suspect() are fetched, then asked */
        for (size_t k = 0; k < n; k++)
                if (ch[k].pending)
                        chunk_prefetch(sc->h, &ch[k]);
        for (size_t k = 0; k < n; k++)
                if (ch[k].pending)
                        chunk_lookup(sc->h, sc->text, &ch[k]);
        for (size_t k = 0; k < n; k++)
                if (ch[k].pending) {
                        ch[k].suspect = plain_unknown_probe(sc->h, ch[k].n_cp, ch[k].hash, ch[k].word_hash);
                        ch[k].pending = false;
                }

        /* runs of single characters: "v i a g r a", "V - I - A" */
        for (size_t k = 0; k < n;) {
                size_t e = k;

                while (e < n && ch[e].n_cp == 1)
                        e++;
                if (e - k >= 3)
                        for (size_t i = k; i < e; i++)
                                ch[i].suspect = true;
                k = e > k ? e : k + 1;
        }

        /* split words: "via gra", "vi ag ra" */
        for (size_t k = 0; k + 1 < n; k++) {
                HmmChunk *a = &ch[k], *b = &ch[k + 1];

                if (!a->plain || !b->plain)
                        continue;
                if (((!a->known && a->n_cp >= 3) || (!b->known && b->n_cp >= 3)) &&
                    lexicon_has_concat(sc->h, sc->text, a, b, NULL))
                        a->suspect = b->suspect = true;
                else if (k + 2 < n && a->n_cp <= 2 && b->n_cp <= 2 && ch[k + 2].plain && ch[k + 2].n_cp <= 2 &&
                         lexicon_has_concat(sc->h, sc->text, a, b, &ch[k + 2]))
                        a->suspect = b->suspect = ch[k + 2].suspect = true;
        }

        for (size_t k = 0; k < n; k++)
                if (ch[k].suspect) {
                        ch[k].included = any = true;
                        /* a short neighbour on each side, and more of them if tiny */
                        for (size_t j = k, hops = 0; j-- > 0 && hops < 3; hops++) {
                                if (ch[j].n_cp > (hops == 0 ? HMM_NEIGHBOUR_MAX : 2U))
                                        break;
                                ch[j].included = true;
                        }
                        for (size_t j = k + 1, hops = 0; j < n && hops < 3; j++, hops++) {
                                if (ch[j].n_cp > (hops == 0 ? HMM_NEIGHBOUR_MAX : 2U))
                                        break;
                                ch[j].included = true;
                        }
                }
        if (!any)
                return 0;

        for (size_t k = 0; k < n;) {
                size_t e = k, size = 0;

                if (!ch[k].included) {
                        k++;
                        continue;
                }
                /* a run of included chunks, cut to the stretch limit (a gap is at most
                 * HMM_GAP_MAX observations) */
                while (e < n && ch[e].included && size + ch[e].n_cp + HMM_GAP_MAX <= HMM_STRETCH_MAX) {
                        size += ch[e].n_cp + HMM_GAP_MAX;
                        e++;
                }
                if (e == k)
                        e = k + 1;      /* cannot happen: a chunk is at most HMM_CHUNK_MAX */
                for (size_t i = k; i < e; i++)
                        if (ch[i].suspect) {
                                r = decode_stretch(sc, k, e - 1);
                                if (r < 0)
                                        return r;
                                break;
                        }
                k = e;
        }
        return 0;
}

int spam_hmm_scan(const SpamHmm *h, const char *text, size_t len, SpamHmmWordCallback cb, void *userdata) {
        return spam_hmm_scan_cached(h, NULL, text, len, cb, userdata);
}

int spam_hmm_scan_cached(const SpamHmm *h, SpamHmmCache *cache, const char *text, size_t len,
                         SpamHmmWordCallback cb, void *userdata) {
        Scanner sc = {
                .h = h,
                .text = text,
                .cb = cb,
                .userdata = userdata,
                .cache = cache,
        };
        size_t i = 0, gap = 0, newlines = 0, run_start = 0;
        bool joined = false;            /* the next chunk may join the segment */
        int r = 0;

        assert_return(h, -EINVAL);
        assert_return(text || len == 0, -EINVAL);
        assert_return(cb, -EINVAL);
        assert_return(h->built, -EINVAL);

        if (h->n_words == 0)
                return 0;
        if (cache) {
                if (cache->serial != h->serial) {
                        /* what another model read as no word, this one may read */
                        cache_clear(cache);
                        cache->serial = h->serial;
                }
                sc.work = cache->work;
                sc.work->n_memo = sc.work->memo_used = 0;
        }

        while (i < len) {
                size_t start, end, trim_end, l;
                bool plain = true, lead = true;
                HmmChunk *c;
                uint32_t cp;
                HmmClass cls;

                /* white space and the characters that end everything */
                l = utf8_decode(text + i, len - i, &cp);
                cls = char_class(cp);
                if (cls == CLS_SPACE) {
                        gap++;
                        newlines += cp == '\n';
                        i += l;
                        run_start = i;
                        continue;
                }
                if (cls == CLS_OTHER) {
                        joined = false;
                        i += l;
                        continue;
                }

                /* a chunk: letters, look-alikes and separators; separators at its ends
                 * belong to the gaps */
                start = trim_end = i;
                while (i < len) {
                        uint8_t b = (uint8_t) text[i];

                        if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') {
                                /* the common case, without decoding */
                                i += ascii_letters(text + i, len - i);
                                lead = false;
                                trim_end = i;
                                continue;
                        }
                        l = utf8_decode(text + i, len - i, &cp);
                        cls = char_class(cp);
                        if (IN_SET(cls, CLS_SPACE, CLS_OTHER))
                                break;
                        plain = false;
                        /* separators at the ends belong to the gaps; so do parentheses
                         * ("(i.e", "log()"), and a '!' at the end */
                        if (cls == CLS_SEP || (cls == CLS_LOOK && IN_SET(cp, (uint32_t) '!', (uint32_t) ')', (uint32_t) '('))) {
                                if (lead && (cls == CLS_SEP || cp == '(')) {
                                        start = i + l;
                                        gap++;
                                }
                        } else {
                                lead = false;
                                trim_end = i + l;
                        }
                        i += l;
                }
                end = trim_end;
                if (end <= start) {
                        gap++;
                        continue;
                }

                /* a long run without white space (base64, a URL, a path) holds no words */
                if (start > run_start || (i < len && char_class(text[i]) != CLS_SPACE)) {
                        size_t j = i;

                        while (j < len && j - run_start <= HMM_RUN_MAX && !IN_SET(text[j], ' ', '\t', '\n', '\r'))
                                j++;
                        if (j - run_start > HMM_RUN_MAX) {
                                while (j < len && !IN_SET(text[j], ' ', '\t', '\n', '\r'))
                                        j++;
                                r = segment_flush(&sc);
                                if (r < 0)
                                        goto finish;
                                i = j;
                                joined = false;
                                continue;
                        }
                }

                /* built in place, after the chunks of the segment (a flush leaves it alone) */
                c = &sc.chunks[sc.n_chunks];
                *c = (HmmChunk) { .start = start, .end = end };
                if (plain) {
                        /* letters only, the bulk of any text: a lexicon lookup and done */
                        c->n_cp = (uint32_t) (end - start);
                        c->plain = true;
                        c->fragment = c->n_cp <= HMM_CHUNK_MAX;
                        if (c->n_cp >= SPAM_HMM_WORD_MIN && c->n_cp <= SPAM_HMM_WORD_MAX) {
                                /* looked up when the segment is flushed (chunk_resolve()),
                                 * by then the index slot is in the cache */
                                c->hash = index_hash(text + start, end - start, /* fold_ascii= */ true);
                                c->pending = true;
                                __builtin_prefetch(&h->index[c->hash & h->index_mask]);
                        }
                } else
                        chunk_classify(h, text, c);

                if (!joined || gap > HMM_GAP_MAX || newlines > 1 || !c->fragment ||
                    sc.n_chunks >= HMM_SEGMENT_CHUNKS) {
                        size_t at = sc.n_chunks;

                        r = segment_flush(&sc);
                        if (r < 0)
                                goto finish;
                        if (c->fragment && at > 0) {
                                sc.chunks[0] = sc.chunks[at];
                                c = &sc.chunks[0];
                        }
                }
                if (c->fragment)
                        sc.n_chunks++;
                joined = c->fragment;
                gap = 0;
                newlines = 0;
                /* the trailing separators count into the next gap */
                for (size_t j = end; j < i; j += utf8_decode(text + j, i - j, &cp))
                        gap++;
        }
        r = segment_flush(&sc);

finish:
        if (!cache)
                free(sc.work);
        return r < 0 ? r : sc.reported;
}
