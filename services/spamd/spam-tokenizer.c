/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The tokenizer of mailsec-spamd (see spam-tokenizer.h): the events of the streaming MIME
 * parser turned into token hashes, without a per-token allocation (words are folded into
 * a fixed buffer on the stack, ASCII through a class table one byte at a time; each word
 * is hashed once, with its prefix, and a bigram's hash is derived from its two words'
 * hashes; no string is built for a token unless keep_text asks for printable forms).
 *
 * Token families, by prefix (the printable forms kept with keep_text):
 *
 *   w:WORD          body word, case-folded; pure digit runs of 5 or more become "#N" (N the
 *                   number of digits), so that order numbers and phone numbers share one
 *                   token per length instead of filling the store with singletons
 *   b:W1 D W2       bigram: W2 is D words after W1 in one part, D < bigram_window (default
 *                   2: adjacent words; up to 5 gives CRM114's orthogonal sparse bigrams).
 *                   Its hash is spam_tokenizer_bigram_hash() of the two w: hashes and D.
 *   h:NAME:WORD     word of header field NAME (lowercased). Message-ID, In-Reply-To and
 *                   References keep only their dotted words (hosts, and the dotted local
 *                   parts of ids). Received keeps only the host names and IPv4 addresses
 *                   of its "from" clause, the sending side of the hop: the receiving host,
 *                   "for <recipient>", ids, software versions and the date describe the
 *                   site that collected the message and the time, not the message; a hop
 *                   received by the local machine ("by localhost", "by mailhost": fetchmail,
 *                   local delivery) gives nothing, nor do localhost and 127/8. Date gives
 *                   only how it is written and its zone, not when (tokenize_date():
 *                   h:date:shape:a, 99 a 9999 99:99:99 +9999 and h:date:zone:+0100): the
 *                   time says which collection a message came from, the format which
 *                   program wrote it. Not read at all: fields that are noise or that
 *                   earlier filters add (X-Spam-*, X-Bogosity, Status, Lines, ...: set by
 *                   whoever handled the message before us, and forgeable either way),
 *                   and the recipient-side fields the delivering site adds (Delivered-To,
 *                   X-Original-To, Envelope-To, ...). Trained on mail collected from
 *                   mailboxes, such tokens describe how each class was
 *                   collected (on the SpamAssassin corpus: ham fetched over IMAP, spam over
 *                   POP3 through another host) and do not carry over to the gateway, which
 *                   sees messages before the site adds them.
 *   c:Word          a body word with capitals, as written ("FREE", "Viagra"), and
 *   !:word          a body word followed by '!' ("today!"), with opts->shapes: other
 *                   readings of the word w:word, which tiled combining counts once with
 *                   it (SpamTokenParts names the word twice); bogofilter keeps case and
 *                   the '!' in its tokens, and on group 1 of the SpamAssassin corpus both
 *                   readings improved every tuning protocol; only the ordering estimate
 *                   reads them (item 9 above spam_bayes_params_default)
 *   h:from:shape:S  the shape of the local part of the From (and Reply-To) address,
 *                   "a.a9" for John.Smith42@, and of the Message-ID's left part,
 *                   h:message-id:shape:9.9.a for 20020912182131.20322.qmail@
 *                   (tokenize_address_shape())
 *   h:to:fmt:S      how From, To, Cc, Reply-To and the top-level Content-Type are
 *                   written: "a <a@a.a>, a@a.a", "a/a; a=\"a-9-9\""
 *                   (tokenize_field_format()); the shapes of value_shape() say which
 *                   program wrote the header, where the values say who and when
 *   hf:NAME         the field is present (top-level header)
 *                   With field_families and parts, the tokens (hf: and h:) of the
 *                   top-level fields of one family (spam_field_family(): the mailing
 *                   list's fields, the mail program's, the MIME declaration) name the
 *                   family's first token twice, so that tiled combining counts each
 *                   block once: the fields of a block describe one fact.
 *   u:HOST          host of a link (HTML links and URLs in plain text), and its domain
 *                   (last two labels, three under a short second-level label: co.uk)
 *   u:w:WORD        a word of the path, query and fragment of an HTML link (href, src,
 *                   action, background), which the reader does not see: "remove.php"
 *                   and "email" of http://x.example/remove.php?email=... (the words of a
 *                   link written in plain text are the text's own)
 *   hc:WORD         a word of an HTML comment (its first HTML_COMMENT_MAX bytes): an
 *                   editor's "[if gte mso 9]", a generator's mark, the random words some
 *                   spam hides there; the reader does not see them
 *   ip:ADDR         the client address and its network (/24, /48)
 *   d:WORD          a lexicon word the HMM read out of obfuscated text; the same word also
 *                   counts as the plain body word w:WORD (the filter's knowledge of the
 *                   plain word applies to its disguises at once, while d:WORD learns how
 *                   telling the disguise itself is)
 *   m:ELEMENT       an HTML element used (start tags), with opts->markup only: how the
 *                   HTML was made (font, table, img, center, ...), which a reader never
 *                   sees; tried and not used by mailsec-spamd, as it makes HTML
 *                   newsletters look like spam (tests/bench/README.md)
 *   f:...           features: f:type:TYPE/SUB and f:ext:EXT of each part, f:charset:CS,
 *                   f:defect:NAME for each MIME defect, f:insertions:N and f:obfuscated:N
 *                   (count buckets 1, 2, 3-4, 5-8, 9+), f:skip:C N for a word over the
 *                   length bound (its first character and length in tens), f:text:N
 *                   (bucket of the text bytes), f:url-ip for a link to an address,
 *                   f:wrap:B the longest line of plain text in characters (72, 80, 100,
 *                   200 or long: how the sender's program wraps; measure_lines()), and
 *                   f:rawline:K:B of each part that is not a container, the longest line
 *                   of its body as sent, in bytes (K text, html or other; B the length
 *                   up to 80, then 100, 200, 998 or long: how the program encodes and
 *                   wraps what it sends, a base64 encoder's 76 or 72, an HTML part on
 *                   one line; add_raw_lines()), and for each HTML part f:html-case:C,
 *                   how its tags are written (upper, lower, mixed, or none without
 *                   tags), and f:html-comments:N, how many comments it has (0, 1, 2,
 *                   3-4, 5-8, 9+; add_html_style())
 *
 * Words: runs of letters and digits (any non-ASCII code point outside the punctuation,
 * symbol, space and private-use blocks counts as a letter), with '.', '-', '_' and the
 * apostrophe (also U+2019) kept inside a word when a word character follows, and a
 * leading '$' before a digit. Words shorter than SPAM_WORD_MIN code points are skipped,
 * longer than SPAM_WORD_MAX bytes become an f:skip feature. Case folding is a table for
 * Latin (Basic, Latin-1, Extended-A, Extended Additional), Greek, Cyrillic, Armenian and
 * the fullwidth forms; it agrees with towlower() of glibc's C.UTF-8 there and also folds
 * the final sigma, long s, capital sharp s and the dotted capital I as Unicode case
 * folding does.
 *
 * on_word is called once for each distinct body word of the message (when its w: token
 * is new), which is what the HMM lexicon and the training journal record. */

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "html-text.h"
#include "mime.h"
#include "spam-hmm.h"
#include "spam-tokenizer.h"
#include "string-util.h"

/* A weak reference: the de-obfuscator is only linked in by a program that builds one
 * (spam_hmm_new()), so the tokenizer does not drag it into programs that never use it,
 * and links while libspamd is built without it. opts->hmm can only be set when it is. */
#pragma weak spam_hmm_scan_cached

#define SPAM_WORD_MIN 2U                /* code points */
#define SPAM_WORD_MAX 40U               /* bytes, folded */
#define SPAM_NAME_MAX 40U               /* header field names are cut to this */
#define SPAM_BIGRAM_WINDOW SPAM_TOKENIZER_BIGRAM_WINDOW_MAX
#define SPAM_FEATURE_RESERVE 128U       /* room kept for the feature tokens at the end */
#define WORD_BUF (SPAM_WORD_MAX + 8U)   /* room for one more folded character */
#define WRAP_SHORT 72U                  /* the shortest bucket of f:wrap: */
#define RAW_LINE_EXACT 80U              /* f:rawline: lengths up to this are exact */

/* The body words of a message seen so far, by a cheap hash of their folded form: a
 * repeated word (half of a message's words) takes its w: token's hash and position from
 * here instead of hashing again (direct-mapped; a slot holds the last word that hashed
 * to it). */
#define WORD_CACHE_SLOTS 512U
typedef struct WordCacheEntry {
        uint64_t hash;                  /* the w: token's */
        uint32_t index;                 /* its position in the token set, or SPAM_TOKEN_NO_WORD */
        char word[SPAM_WORD_MAX];
} WordCacheEntry;

typedef struct Tokenizer {
        const SpamTokenizerOptions *opts;
        SpamTokens *tokens;
        WordCacheEntry *word_cache;     /* WORD_CACHE_SLOTS entries, valid where word_cache_len > 0 */
        uint8_t word_cache_len[WORD_CACHE_SLOTS];
        size_t max_tokens;
        size_t max_other;               /* tokens other than features: max_tokens less the room
                                         * kept for the features at the end */
        bool full;

        /* bigram window: the last words of the current part */
        char ring[SPAM_BIGRAM_WINDOW - 1][SPAM_WORD_MAX + 1];
        uint8_t ring_len[SPAM_BIGRAM_WINDOW - 1];
        uint32_t ring_word[SPAM_BIGRAM_WINDOW - 1];     /* index of the word's w: token */
        uint64_t ring_hash[SPAM_BIGRAM_WINDOW - 1];     /* hash of the word's w: token */
        unsigned ring_n, ring_pos;
        unsigned window;                /* bigram distances 1 .. window - 1 */

        uint64_t text_bytes;
        unsigned insertions;
        unsigned obfuscated;
        bool have_html, have_plain;
        bool have_lines;                /* plain text seen: line_max, line_len mean something */
        size_t line_max;                /* the longest line of plain text so far, in characters */
        size_t line_len;                /* the line being read so far (measure_lines()) */

        /* with opts->field_families: the first token of each family's fields, or
         * SPAM_TOKEN_NO_WORD */
        uint32_t family_anchor[_SPAM_FIELD_FAMILY_MAX];
} Tokenizer;

/* ---- character classes and folding ------------------------------------------------ */

/* ASCII character classes, one table look-up per byte on the hot path */
enum {
        CH_ALNUM = 1 << 0,              /* letters and digits: word characters */
        CH_INNER = 1 << 1,              /* '.', '-', '_', '\'': inside a word only */
        CH_DIGIT = 1 << 2,
};

static const uint8_t ascii_class[128] = {
        ['0' ... '9'] = CH_ALNUM | CH_DIGIT,
        ['A' ... 'Z'] = CH_ALNUM,
        ['a' ... 'z'] = CH_ALNUM,
        ['.'] = CH_INNER, ['-'] = CH_INNER, ['_'] = CH_INNER, ['\''] = CH_INNER,
};

static inline bool ascii_alnum(uint8_t c) {
        return c < 0x80 && (ascii_class[c] & CH_ALNUM);
}

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR_ONES UINT64_C(0x0101010101010101)
#define SWAR_HIGH UINT64_C(0x8080808080808080)

/* Bit 7 of each byte of v (seven-bit values) set when the byte is in [lo, hi]: adding
 * 0x80 − lo sets bit 7 from lo on, adding 0x7f − hi from hi + 1 on, without carries into
 * the next byte. */
static inline uint64_t swar_in_range(uint64_t v, uint8_t lo, uint8_t hi) {
        return (v + (0x80U - lo) * SWAR_ONES) & ~(v + (0x7fU - hi) * SWAR_ONES) & SWAR_HIGH;
}

/* How many of the eight bytes at s are ASCII letters or digits, from the first on; with
 * bit 7 set in *ret_upper for the capitals among them and in *ret_digit for the digits. */
static inline size_t swar_alnum_run(const char *s, uint64_t *ret_upper, uint64_t *ret_digit) {
        uint64_t x, v, ascii, upper, digit, alnum, run;
        size_t k;

        memcpy(&x, s, 8);
        ascii = ~x & SWAR_HIGH;
        v = x & ~SWAR_HIGH;
        upper = swar_in_range(v, 'A', 'Z') & ascii;
        digit = swar_in_range(v, '0', '9') & ascii;
        alnum = upper | digit | (swar_in_range(v, 'a', 'z') & ascii);
        k = alnum == SWAR_HIGH ? 8 : (size_t) __builtin_ctzll(~alnum & SWAR_HIGH) / 8;
        run = k == 8 ? SWAR_HIGH : SWAR_HIGH & ((UINT64_C(1) << (8 * k)) - 1);
        *ret_upper = upper & run;
        *ret_digit = digit & run;
        return k;
}
#endif


/* Decode one UTF-8 sequence at s (n > 0 bytes). Invalid input gives U+FFFD for one byte:
 * the parser's TEXT and HEADER data are valid UTF-8, this only keeps us safe anyway. */
static inline uint32_t utf8_next(const char *s, size_t n, size_t *ret_len) {
        const uint8_t *p = (const uint8_t*) s;
        uint32_t c;
        size_t l;

        if (p[0] < 0x80) {
                *ret_len = 1;
                return p[0];
        }
        if (p[0] >= 0xC2 && p[0] <= 0xDF) {
                c = p[0] & 0x1F;
                l = 2;
        } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
                c = p[0] & 0x0F;
                l = 3;
        } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
                c = p[0] & 0x07;
                l = 4;
        } else
                goto invalid;
        if (l > n)
                goto invalid;
        for (size_t i = 1; i < l; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        goto invalid;
                c = (c << 6) | (p[i] & 0x3F);
        }
        if ((l == 3 && c < 0x800) || (l == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c <= 0xDFFF))
                goto invalid;
        *ret_len = l;
        return c;

invalid:
        *ret_len = 1;
        return 0xFFFD;
}

static inline size_t utf8_put(uint32_t c, char *out) {
        if (c < 0x80) {
                out[0] = (char) c;
                return 1;
        }
        if (c < 0x800) {
                out[0] = (char) (0xC0 | (c >> 6));
                out[1] = (char) (0x80 | (c & 0x3F));
                return 2;
        }
        if (c < 0x10000) {
                out[0] = (char) (0xE0 | (c >> 12));
                out[1] = (char) (0x80 | ((c >> 6) & 0x3F));
                out[2] = (char) (0x80 | (c & 0x3F));
                return 3;
        }
        out[0] = (char) (0xF0 | (c >> 18));
        out[1] = (char) (0x80 | ((c >> 12) & 0x3F));
        out[2] = (char) (0x80 | ((c >> 6) & 0x3F));
        out[3] = (char) (0x80 | (c & 0x3F));
        return 4;
}

/* Is a non-ASCII code point part of words? Letters of every script are, punctuation,
 * symbols, spaces, controls, private use and emoji are not. */
static inline bool unichar_is_word(uint32_t c) {
        if (c < 0xC0)
                return c == 0xAA || c == 0xB5 || c == 0xBA;
        if (c == 0xD7 || c == 0xF7)
                return false;
        if (c >= 0x2000 && c <= 0x2BFF)         /* punctuation, symbols, arrows, shapes */
                return false;
        if (c >= 0x3000 && c <= 0x303F)         /* CJK punctuation */
                return false;
        if (c >= 0xD800 && c <= 0xF8FF)         /* surrogates, private use */
                return false;
        if (c >= 0xFE00 && c <= 0xFE0F)         /* variation selectors */
                return false;
        if ((c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
            (c >= 0xFF5B && c <= 0xFF65))
                return false;
        if (c >= 0xFFF0 && c <= 0xFFFF)         /* specials, U+FFFD */
                return false;
        if (c >= 0x1F000 && c <= 0x1FBFF)       /* emoji and pictographs */
                return false;
        if (c >= 0xE0000)
                return false;
        return true;
}

/* Simple case folding of the scripts spam is written in (see the top of this file). */
uint32_t spam_unichar_fold(uint32_t c) {
        if (c < 0x80)
                return c >= 'A' && c <= 'Z' ? c + 32 : c;
        if (c < 0x100)
                return c >= 0xC0 && c <= 0xDE && c != 0xD7 ? c + 32 : c;
        if (c < 0x180) {
                if (c == 0x130)                 /* İ */
                        return 'i';
                if (c == 0x178)                 /* Ÿ */
                        return 0xFF;
                if (c == 0x17F)                 /* ſ */
                        return 's';
                if (c == 0x138 || c == 0x149)
                        return c;
                if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
                        return (c & 1) ? c + 1 : c;
                return (c & 1) ? c : c + 1;
        }
        if (c < 0x370)
                return c;
        if (c < 0x400) {
                if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
                        return c + 32;
                if (c == 0x386)
                        return 0x3AC;
                if (c >= 0x388 && c <= 0x38A)
                        return c + 37;
                if (c == 0x38C)
                        return 0x3CC;
                if (c == 0x38E || c == 0x38F)
                        return c + 63;
                if (c == 0x3C2)                 /* final sigma */
                        return 0x3C3;
                if ((c >= 0x3D8 && c <= 0x3EF) || IN_SET(c, 0x370, 0x372, 0x376, 0x3FA))
                        return (c & 1) ? c : c + 1;
                switch (c) {
                case 0x37F: return 0x3F3;
                case 0x3F7: return 0x3F8;
                case 0x3CF: return 0x3D7;
                case 0x3F4: return 0x3B8;
                case 0x3F9: return 0x3F2;
                case 0x3FD: return 0x37B;
                case 0x3FE: return 0x37C;
                case 0x3FF: return 0x37D;
                }
                return c;
        }
        if (c < 0x530) {
                if (c < 0x410)
                        return c + 80;
                if (c < 0x430)
                        return c + 32;
                if (c < 0x460)
                        return c;
                if (c <= 0x481 || (c >= 0x48A && c <= 0x4BF) || c >= 0x4D0)
                        return (c & 1) ? c : c + 1;
                if (c == 0x4C0)
                        return 0x4CF;
                if (c >= 0x4C1 && c <= 0x4CE)
                        return (c & 1) ? c + 1 : c;
                return c;
        }
        if (c >= 0x531 && c <= 0x556)           /* Armenian */
                return c + 48;
        if (c >= 0x1E00 && c <= 0x1EFF) {
                if (c == 0x1E9E)                /* capital sharp s */
                        return 0xDF;
                if (c >= 0x1E96 && c <= 0x1E9F)
                        return c;
                return (c & 1) ? c : c + 1;
        }
        if (c >= 0xFF21 && c <= 0xFF3A)         /* fullwidth A-Z */
                return c + 32;
        return c;
}

/* ---- adding tokens ---------------------------------------------------------------- */

/* With keep_text: the token with its printable form, for explanations only, cut to the
 * buffer (apart from tok_add_hash(), whose common path then needs no buffer). */
static _noinline_ int tok_add_text(Tokenizer *t, uint64_t h, SpamTokenKind kind, const char *prefix,
                                   const char *text, size_t len) {
        char buf[512];
        size_t plen, k;

        plen = MIN(strlen(prefix), sizeof(buf) - 1);
        memcpy(buf, prefix, plen);
        k = MIN(len, sizeof(buf) - 1 - plen);
        memcpy(buf + plen, text, k);
        return spam_tokens_add(t->tokens, h, kind, buf, plen + k);
}

static int tok_add_hash(Tokenizer *t, SpamTokenKind kind, const char *prefix, const char *text, size_t len,
                        uint64_t *ret_hash) {
        uint64_t h;

        if (t->tokens->n >= (kind == SPAM_TOKEN_FEATURE ? t->max_tokens : t->max_other)) {
                t->full = true;
                return -ENOSPC;
        }

        h = spam_token_hash(t->opts->key, prefix, text, len);
        if (ret_hash)
                *ret_hash = h;
        if (!t->tokens->keep_text)
                return spam_tokens_add(t->tokens, h, kind, NULL, 0);
        return tok_add_text(t, h, kind, prefix, text, len);
}

static int tok_add(Tokenizer *t, SpamTokenKind kind, const char *prefix, const char *text, size_t len) {
        int r;

        r = tok_add_hash(t, kind, prefix, text, len, NULL);
        return r == -ENOSPC ? 0 : r;
}

/* ---- bigram parts ----------------------------------------------------------------- */

void spam_token_parts_done(SpamTokenParts *p) {
        if (!p)
                return;
        free(p->word);
        *p = (SpamTokenParts) SPAM_TOKEN_PARTS_NULL;
}

/* Extends opts->parts to the first n tokens (the new ones are not bigrams). */
static int parts_extend(Tokenizer *t, size_t n) {
        SpamTokenParts *p = t->opts->parts;

        if (n > p->alloc) {
                size_t a = MAX(n, p->alloc * 2);
                uint32_t (*v)[2] = reallocarray(p->word, a, sizeof(p->word[0]));

                if (!v)
                        return -ENOMEM;
                p->word = v;
                p->alloc = a;
        }
        for (; p->n < n; p->n++)
                p->word[p->n][0] = p->word[p->n][1] = SPAM_TOKEN_NO_WORD;
        return 0;
}

static int tok_addf(Tokenizer *t, SpamTokenKind kind, const char *prefix, const char *format, ...) _printf_(4, 5);
static int tok_addf(Tokenizer *t, SpamTokenKind kind, const char *prefix, const char *format, ...) {
        char buf[256];
        va_list ap;
        int k;

        va_start(ap, format);
        k = vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        if (k < 0)
                return 0;
        return tok_add(t, kind, prefix, buf, MIN((size_t) k, sizeof(buf) - 1));
}

static const char* count_bucket(unsigned n) {
        return n <= 1 ? "1" : n == 2 ? "2" : n <= 4 ? "3-4" : n <= 8 ? "5-8" : "9+";
}

/* ---- words ------------------------------------------------------------------------ */

typedef enum WordContext {
        WORD_BODY,
        WORD_HEADER,
        WORD_HEADER_DOTTED,             /* header field of which only dotted words count */
        WORD_HEADER_HOST,               /* only host names and IPv4 addresses count */
        WORD_URL,                       /* the path and query of a link: URL tokens */
        WORD_COMMENT,                   /* an HTML comment: markup tokens */
} WordContext;

uint64_t spam_tokenizer_bigram_hash(uint64_t first, unsigned distance, uint64_t second) {
        uint64_t x;

        /* Two keyed hashes and a distance into one, with odd multipliers (bijections) and a
         * 64-bit finaliser (MurmurHash3's fmix64): order matters, and every input bit
         * reaches every output bit. The inputs are SipHash outputs under the secret key,
         * so without the key nobody can aim a collision here either. */
        x = first * UINT64_C(0x9e3779b97f4a7c15);
        x ^= ((second << 29) | (second >> 35)) * UINT64_C(0xc2b2ae3d27d4eb4f);
        x ^= (uint64_t) distance * UINT64_C(0x165667b19e3779f9);
        x ^= x >> 33;
        x *= UINT64_C(0xff51afd7ed558ccd);
        x ^= x >> 33;
        x *= UINT64_C(0xc4ceb9fe1a85ec53);
        x ^= x >> 33;
        return x;
}

/* A shape reading of the body word whose w: token is index word (SPAM_TOKEN_NO_WORD
 * without parts): the token, and with parts the word it stands for, twice. */
static int add_shape(Tokenizer *t, const char *prefix, const char *text, size_t len, uint32_t word) {
        int r;

        r = tok_add_hash(t, SPAM_TOKEN_SHAPE, prefix, text, len, NULL);
        if (r == -ENOSPC)
                return 0;
        if (r <= 0 || !t->opts->parts)
                return r;

        r = parts_extend(t, t->tokens->n);
        if (r < 0)
                return r;
        t->opts->parts->word[t->tokens->n - 1][0] = word;
        t->opts->parts->word[t->tokens->n - 1][1] = word;
        return 0;
}

/* The slot of a folded word in the message's word cache: a multiplicative hash of its
 * bytes taken eight at a time. w has room for eight bytes from any of its first len
 * (a word buffer of WORD_BUF bytes, or the eight of a digit run's shape); those past the
 * word are masked off. */
static unsigned word_cache_slot(const char *w, size_t len) {
        uint64_t x = len;

        for (size_t i = 0; i < len; i += 8) {
                uint64_t m;

                memcpy(&m, w + i, 8);
                if (len - i < 8)
                        m &= (UINT64_C(1) << (8 * (len - i))) - 1;
                x = (x ^ m) * UINT64_C(0x9e3779b97f4a7c15);
                x ^= x >> 29;
        }
        return (unsigned) (x >> 32) & (WORD_CACHE_SLOTS - 1);
}

/* One folded word (digits: it is all ASCII digits). written: the word as written, only
 * normalised as the folded one is but for case, when it differs from w (it has capitals),
 * else NULL; bang: a '!' follows it. */
static int on_body_word(Tokenizer *t, char *w, size_t len, bool digits, const char *written,
                        size_t written_len, bool bang) {
        char shape[8];
        uint32_t word = SPAM_TOKEN_NO_WORD;
        uint64_t h = 0;
        unsigned cached;
        int r;

        /* long digit runs by their length */
        if (digits && len >= 5) {
                int k = snprintf(shape, sizeof(shape), "#%zu", len);

                w = shape;
                len = (size_t) k;
        }

        cached = word_cache_slot(w, len);
        if (t->word_cache_len[cached] == len && memcmp(t->word_cache[cached].word, w, len) == 0) {
                /* a word of this message again: its token is in the set */
                if (t->tokens->n >= t->max_other) {
                        t->full = true;
                        return 0;
                }
                h = t->word_cache[cached].hash;
                word = t->word_cache[cached].index;
        } else {
                r = tok_add_hash(t, SPAM_TOKEN_WORD, "w:", w, len, &h);
                if (r == -ENOSPC)
                        return 0;
                if (r < 0)
                        return r;
                if (r > 0 && t->opts->on_word && w != shape)
                        t->opts->on_word(w, len, t->opts->userdata);
                if (t->opts->parts) {
                        /* the w: token's position, for the bigrams' and shapes' parts */
                        ssize_t k = r > 0 ? (ssize_t) t->tokens->n - 1 : spam_tokens_find(t->tokens, h);

                        word = k >= 0 ? (uint32_t) k : SPAM_TOKEN_NO_WORD;
                }
                if (len > 0 && len <= SPAM_WORD_MAX) {
                        t->word_cache[cached].hash = h;
                        t->word_cache[cached].index = word;
                        memcpy(t->word_cache[cached].word, w, len);
                        t->word_cache_len[cached] = (uint8_t) len;
                }
        }

        if (t->opts->shapes && w != shape) {
                if (written) {
                        r = add_shape(t, "c:", written, written_len, word);
                        if (r < 0)
                                return r;
                }
                if (bang) {
                        r = add_shape(t, "!:", w, len, word);
                        if (r < 0)
                                return r;
                }
        }

        if (!t->opts->bigrams || t->window < 2)
                return 0;

        for (unsigned d = 1; d <= t->ring_n && d < t->window; d++) {
                unsigned slot = (t->ring_pos + SPAM_BIGRAM_WINDOW - 1 - d) % (SPAM_BIGRAM_WINDOW - 1);
                uint64_t bh = spam_tokenizer_bigram_hash(t->ring_hash[slot], d, h);

                if (t->tokens->n >= t->max_other) {
                        t->full = true;
                        return 0;
                }
                if (t->tokens->keep_text) {
                        /* the printable form "W1 D W2", for explanations only */
                        char text[3 + 2 * SPAM_WORD_MAX + 8];
                        size_t pl = t->ring_len[slot];

                        memcpy(text, "b:", 2);
                        memcpy(text + 2, t->ring[slot], pl);
                        text[2 + pl] = ' ';
                        text[3 + pl] = (char) ('0' + d);
                        text[4 + pl] = ' ';
                        memcpy(text + 5 + pl, w, len);
                        r = spam_tokens_add(t->tokens, bh, SPAM_TOKEN_BIGRAM, text, 5 + pl + len);
                } else
                        r = spam_tokens_add(t->tokens, bh, SPAM_TOKEN_BIGRAM, NULL, 0);
                if (r < 0)
                        return r;
                if (r > 0 && t->opts->parts) {
                        size_t n = t->tokens->n;

                        r = parts_extend(t, n);
                        if (r < 0)
                                return r;
                        t->opts->parts->word[n - 1][0] = t->ring_word[slot];
                        t->opts->parts->word[n - 1][1] = word;
                }
        }
        if (t->tokens->keep_text) {
                memcpy(t->ring[t->ring_pos], w, len);
                t->ring_len[t->ring_pos] = (uint8_t) len;
        }
        t->ring_hash[t->ring_pos] = h;
        t->ring_word[t->ring_pos] = word;
        t->ring_pos = (t->ring_pos + 1) % (SPAM_BIGRAM_WINDOW - 1);
        if (t->ring_n < SPAM_BIGRAM_WINDOW - 1)
                t->ring_n++;
        return 0;
}

/* Is the folded dotted word w a host name (its last label letters only) or an IPv4 address,
 * and not the local machine? Software versions in Received fields ("8.11.6",
 * "5.0.2195.2966", "fetchmail-5.9.0") are neither. */
static bool host_like(const char *w, size_t n) {
        size_t last = n, parts = 1;
        unsigned v = 0;
        bool letters = true;

        while (last > 0 && w[last - 1] != '.')
                last--;
        if (last == 0)
                return false;
        for (size_t i = last; i < n; i++)
                if (!(w[i] >= 'a' && w[i] <= 'z'))
                        letters = false;
        if (letters)
                return n - last >= 2 && (n < 9 || strncmp(w, "localhost", 9) != 0);

        /* otherwise only a dotted quad */
        for (size_t i = 0; i < n; i++) {
                if (w[i] == '.') {
                        if (i == 0 || w[i - 1] == '.')
                                return false;
                        parts++;
                        v = 0;
                } else if (w[i] >= '0' && w[i] <= '9') {
                        v = v * 10 + (unsigned) (w[i] - '0');
                        if (v > 255)
                                return false;
                } else
                        return false;
        }
        return parts == 4 && !startswith(w, "127.") && !startswith(w, "0.");
}

/* The word s[0..n) (as tokenize_words() found it) as written: normalised as the folded
 * form is (the typographic apostrophe as '\''), but not folded. false when it does not fit
 * into buf. */
static bool word_as_written(const char *s, size_t n, char *buf, size_t size, size_t *ret_len) {
        size_t k = 0;

        for (size_t i = 0; i < n;) {
                uint32_t c;
                size_t l = 1;

                c = (uint8_t) s[i] < 0x80 ? (uint8_t) s[i] : utf8_next(s + i, n - i, &l);
                if (c == 0x2019)
                        c = '\'';
                if (k + 4 > size)
                        return false;
                k += utf8_put(c, buf + k);
                i += l;
        }
        *ret_len = k;
        return true;
}

/* Split UTF-8 text into words and hand each to its context. prefix: the header token
 * prefix ("h:subject:") for the header contexts. */
static int tokenize_words(Tokenizer *t, const char *s, size_t n, WordContext ctx, const char *prefix) {
        char w[WORD_BUF], cw[WORD_BUF];        /* folded; as written (body words with shapes) */
        size_t i = 0;
        int r;

        while (i < n) {
                size_t wl = 0, chars = 0, l, start;
                bool too_long = false, dotted = false, digits = true;
                bool cased = false;     /* a character was folded to another */
                bool plain = true;      /* the text is the word as written: ASCII, no U+2019 */
                uint32_t c, first = 0;
                uint8_t b = (uint8_t) s[i];

                /* find the start of a word */
                if (b < 0x80) {
                        if (!(ascii_class[b] & CH_ALNUM) &&
                            !(b == '$' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')) {
                                i++;
                                continue;
                        }
                } else {
                        c = utf8_next(s + i, n - i, &l);
                        if (!unichar_is_word(c)) {
                                i += l;
                                continue;
                        }
                }

                start = i;
                while (i < n) {
                        uint32_t written = 0;    /* c before folding, when it was folded */

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                        if (i + 8 <= n) {
                                /* the common case, eight bytes at a time: a run of ASCII
                                 * letters and digits, folded by setting bit 5 of the capitals
                                 * (w has room for the eight bytes written) */
                                uint64_t upper, digit, x;
                                size_t k = swar_alnum_run(s + i, &upper, &digit);

                                if (k > 0) {
                                        if (chars == 0)
                                                first = (uint8_t) s[i] | (upper & 0x80 ? 0x20 : 0);
                                        chars += k;
                                        if (digit != (SWAR_HIGH & ((k == 8 ? 0 : UINT64_C(1) << (8 * k)) - 1)))
                                                digits = false;
                                        if (!too_long) {
                                                if (wl + k > SPAM_WORD_MAX)
                                                        too_long = true;
                                                else {
                                                        memcpy(&x, s + i, 8);
                                                        x |= upper >> 2;
                                                        memcpy(w + wl, &x, 8);
                                                        wl += k;
                                                        cased = cased || upper != 0;
                                                }
                                        }
                                        i += k;
                                        if (k == 8)
                                                continue;
                                }
                                if (i >= n)
                                        break;
                        }
#endif
                        b = (uint8_t) s[i];
                        if (b < 0x80 && (ascii_class[b] & CH_ALNUM)) {
                                /* one ASCII letter or digit, folded in place */
                                c = b >= 'A' && b <= 'Z' ? b + 32U : b;
                                if (!(ascii_class[b] & CH_DIGIT))
                                        digits = false;
                                i++;
                                if (chars++ == 0)
                                        first = c;
                                if (too_long)
                                        continue;
                                if (wl + 1 > SPAM_WORD_MAX)
                                        too_long = true;
                                else {
                                        w[wl++] = (char) c;
                                        cased = cased || c != b;
                                }
                                continue;
                        }
                        if (b < 0x80) {
                                if (b == '$' && i == start) {
                                        c = b;
                                        l = 1;
                                } else if ((ascii_class[b] & CH_INNER) && i + 1 < n) {
                                        uint8_t nb = (uint8_t) s[i + 1];
                                        size_t nl;

                                        if (!(nb < 0x80 ? ascii_alnum(nb) : unichar_is_word(utf8_next(s + i + 1, n - i - 1, &nl))))
                                                break;
                                        if (b == '.')
                                                dotted = true;
                                        c = b;
                                        l = 1;
                                } else
                                        break;
                        } else {
                                c = utf8_next(s + i, n - i, &l);
                                if (c == 0x2019 && i + l < n) {
                                        /* typographic apostrophe inside a word */
                                        uint8_t nb = (uint8_t) s[i + l];
                                        size_t nl;

                                        if (!(nb < 0x80 ? ascii_alnum(nb) : unichar_is_word(utf8_next(s + i + l, n - i - l, &nl))))
                                                break;
                                        c = '\'';
                                        plain = false;
                                } else if (unichar_is_word(c)) {
                                        written = c;
                                        c = spam_unichar_fold(c);
                                } else
                                        break;
                        }
                        digits = false;
                        i += l;
                        if (chars == 0)
                                first = c;
                        chars++;
                        if (too_long)
                                continue;
                        if (wl + 4 > SPAM_WORD_MAX) {
                                size_t k;
                                char tmp[4];

                                k = utf8_put(c, tmp);
                                if (wl + k > SPAM_WORD_MAX) {
                                        too_long = true;
                                        continue;
                                }
                                memcpy(w + wl, tmp, k);
                                wl += k;
                        } else
                                wl += utf8_put(c, w + wl);
                        if (written != 0) {
                                cased = cased || written != c;
                                plain = false;
                        }
                }
                if (i == start) {
                        /* a lone inner character that did not start a word */
                        i++;
                        continue;
                }

                if (chars < SPAM_WORD_MIN)
                        continue;

                if (too_long) {
                        char f[8];
                        size_t k;

                        if (ctx != WORD_BODY)
                                continue;
                        k = utf8_put(first, f);
                        f[k] = '\0';
                        r = tok_addf(t, SPAM_TOKEN_FEATURE, "f:skip:", "%s %zu", f, MIN(i - start, (size_t) 1000) / 10 * 10);
                        if (r < 0)
                                return r;
                        continue;
                }
                w[wl] = '\0';

                if (ctx == WORD_BODY) {
                        const char *written = NULL;
                        size_t written_len = 0;

                        if (cased && t->opts->shapes) {
                                if (plain) {
                                        /* ASCII letters and inner characters: as in the text */
                                        written = s + start;
                                        written_len = i - start;
                                } else if (word_as_written(s + start, i - start, cw, sizeof(cw),
                                                           &written_len))
                                        written = cw;
                        }
                        r = on_body_word(t, w, wl, digits, written, written_len, i < n && s[i] == '!');
                }
                else if (ctx == WORD_URL || ctx == WORD_COMMENT)
                        r = tok_add(t, ctx == WORD_URL ? SPAM_TOKEN_URL : SPAM_TOKEN_MARKUP, prefix, w, wl);
                else if (ctx == WORD_HEADER || (ctx == WORD_HEADER_DOTTED && dotted) ||
                         (ctx == WORD_HEADER_HOST && dotted && host_like(w, wl)))
                        r = tok_add(t, SPAM_TOKEN_HEADER, prefix, w, wl);
                else
                        continue;
                if (r < 0)
                        return r;
                if (t->full)
                        return 0;
        }
        return 0;
}

/* ---- links ------------------------------------------------------------------------ */

static bool host_char(char c) {
        return ascii_alnum((uint8_t) c) || c == '.' || c == '-' || c == '_';
}

static int add_host(Tokenizer *t, const char *host, size_t len) {
        size_t n = 0, dots = 0, start2 = 0, start3 = 0, last = 0, prev = 0;
        bool digits_only = true;
        char h[HTML_HOST_MAX + 1];
        int r;

        if (len > 0 && host[0] == '[') {
                /* an IPv6 literal */
                for (n = 1; n < len && n < HTML_HOST_MAX && host[n] != ']'; n++)
                        if (!(ascii_alnum((uint8_t) host[n]) || host[n] == ':' || host[n] == '.'))
                                return 0;
                if (n >= len || n < 3)
                        return 0;
                r = tok_add(t, SPAM_TOKEN_URL, "u:", host, n + 1);
                if (r < 0)
                        return r;
                return tok_add(t, SPAM_TOKEN_FEATURE, "f:", "url-ip", 6);
        }

        /* keep the leading host characters, lowercased, without trailing dots */
        for (n = 0; n < len && n < HTML_HOST_MAX && host_char(host[n]); n++) {
                char c = host[n];

                h[n] = c >= 'A' && c <= 'Z' ? c + 32 : c;
                if (c == '.')
                        dots++;
                else if (!(c >= '0' && c <= '9'))
                        digits_only = false;
        }
        while (n > 0 && h[n - 1] == '.') {
                n--;
                dots--;
        }
        if (n == 0 || dots == 0 || h[0] == '.')
                return 0;

        r = tok_add(t, SPAM_TOKEN_URL, "u:", h, n);
        if (r < 0)
                return r;
        if (digits_only)
                return tok_add(t, SPAM_TOKEN_FEATURE, "f:", "url-ip", 6);

        if (dots < 2)
                return 0;
        /* the domain: last two labels, three when the second-level label is short (co.uk) */
        for (size_t i = 0; i < n; i++)
                if (h[i] == '.') {
                        start3 = start2;
                        start2 = prev;
                        prev = i + 1;
                }
        last = prev;
        if (n - last == 2 && last - start2 - 1 <= 3 && start3 < start2)
                start2 = start3;
        return tok_add(t, SPAM_TOKEN_URL, "u:", h + start2, n - start2);
}

/* The first needle (of n_needle bytes, 2 or more) in [p, end), or NULL: memchr() for its
 * first byte, then a comparison; cheaper than memmem() for the needles here. */
static const char* find_needle(const char *p, const char *end, const char *needle, size_t n_needle) {
        while (end - p >= (ptrdiff_t) n_needle) {
                p = memchr(p, needle[0], (size_t) (end - p) - n_needle + 1);
                if (!p)
                        return NULL;
                if (memcmp(p + 1, needle + 1, n_needle - 1) == 0)
                        return p;
                p++;
        }
        return NULL;
}

/* URLs written as text: "scheme://host" for http, https and ftp, and "www.host". */
static int find_text_urls(Tokenizer *t, const char *s, size_t n) {
        char host[HTML_HOST_MAX + 1];
        const char *p, *end = s + n;
        int r;

        for (p = s; p < end && (p = find_needle(p, end, "://", 3)); p += 3) {
                const char *a = p;
                size_t k;

                while (a > s && a > p - 5 && ascii_alnum((uint8_t) a[-1]))
                        a--;
                if (a == p)
                        continue;
                k = html_url_host(a, (size_t) (end - a), host, NULL);
                if (k == 0)
                        continue;
                r = add_host(t, host, k);
                if (r < 0)
                        return r;
        }

        for (p = s; p + 4 < end; p++) {
                size_t k;

                p = find_needle(p, end, "www.", 4);
                if (!p || end - p < 5)
                        break;
                if (p > s && (host_char(p[-1]) || p[-1] == '/'))
                        continue;
                for (k = 0; p + k < end && host_char(p[k]); k++)
                        ;
                r = add_host(t, p, k);
                if (r < 0)
                        return r;
                p += k > 0 ? k - 1 : 0;
        }
        return 0;
}

/* ---- header fields ---------------------------------------------------------------- */

static bool header_ignored(const char *name) {
        static const char* const ignored[] = {
                "content-length", "lines", "status", "x-status", "x-uid", "x-keywords",
                "x-bogosity", "delivery-date", "x-original-date", "x-mozilla-status", "x-mozilla-status2",
                /* the recipient side: where the collecting site delivered the copy */
                "delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "x-delivered-to", "x-rcpt-to",
        };

        if (strncmp(name, "x-spam", 6) == 0 || strncmp(name, "x-virus", 7) == 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
                if (name[0] == ignored[i][0] && streq(name, ignored[i]))
                        return true;
        return false;
}

static bool is_space(char c) {
        return IN_SET(c, ' ', '\t', '\r', '\n');
}

/* The part of a Received field that names the sending side of the hop: "from HOST (NAME
 * [ADDRESS])", up to the word "by". What follows — the receiving host, "for <recipient>",
 * the queue id and the date — describes the receiving site and the time, not the message.
 * A hop received by the local machine ("by localhost", or by a host name without a dot:
 * fetchmail, local delivery) is the collecting site talking to itself, and gives nothing
 * (length 0). */
static size_t received_from_clause(const char *s, size_t n) {
        for (size_t i = 0; i + 2 <= n; i++) {
                size_t h, k;
                bool dot = false;

                if ((s[i] | 0x20) != 'b' || (s[i + 1] | 0x20) != 'y' ||
                    (i > 0 && !is_space(s[i - 1]) && s[i - 1] != ')') || (i + 2 < n && !is_space(s[i + 2])))
                        continue;
                for (h = i + 2; h < n && is_space(s[h]); h++)
                        ;
                for (k = h; k < n && host_char(s[k]); k++)
                        if (s[k] == '.')
                                dot = true;
                if (k == h || !dot || (k - h >= 9 && strncasecmp(s + h, "localhost", 9) == 0))
                        return 0;
                return i;
        }
        return n;
}

SpamFieldFamily spam_field_family(const char *name) {
        static const struct {
                const char *name;
                SpamFieldFamily family;
        } table[] = {
                { "x-beenthere",        SPAM_FIELD_FAMILY_LIST },
                { "x-mailman-version",  SPAM_FIELD_FAMILY_LIST },
                { "mailing-list",       SPAM_FIELD_FAMILY_LIST },
                { "x-loop",             SPAM_FIELD_FAMILY_LIST },
                { "sender",             SPAM_FIELD_FAMILY_LIST },
                { "errors-to",          SPAM_FIELD_FAMILY_LIST },
                { "precedence",         SPAM_FIELD_FAMILY_LIST },
                { "x-mailer",           SPAM_FIELD_FAMILY_PROGRAM },
                { "user-agent",         SPAM_FIELD_FAMILY_PROGRAM },
                { "x-mimeole",          SPAM_FIELD_FAMILY_PROGRAM },
                { "x-msmail-priority",  SPAM_FIELD_FAMILY_PROGRAM },
                { "x-priority",         SPAM_FIELD_FAMILY_PROGRAM },
                { "importance",         SPAM_FIELD_FAMILY_PROGRAM },
                { "content-class",      SPAM_FIELD_FAMILY_PROGRAM },
                { "thread-index",       SPAM_FIELD_FAMILY_PROGRAM },
                { "mime-version",       SPAM_FIELD_FAMILY_MIME },
        };

        assert(name);

        if (startswith(name, "list-"))
                return SPAM_FIELD_FAMILY_LIST;
        /* Content-Class is Outlook's, not MIME's */
        if (startswith(name, "content-") && !streq(name, "content-class"))
                return SPAM_FIELD_FAMILY_MIME;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (name[0] == table[i].name[0] && streq(name, table[i].name))
                        return table[i].family;
        return SPAM_FIELD_FAMILY_NONE;
}

/* With field_families, the header tokens from index first on (those of one field just
 * read) are named as their family's evidence: the family's first token twice. */
static int header_family(Tokenizer *t, const char *name, size_t first) {
        SpamFieldFamily f;
        uint32_t anchor;
        int r;

        if (!t->opts->field_families || !t->opts->parts || t->tokens->n <= first)
                return 0;
        f = spam_field_family(name);
        if (f == SPAM_FIELD_FAMILY_NONE)
                return 0;

        if (t->family_anchor[f] == SPAM_TOKEN_NO_WORD)
                t->family_anchor[f] = (uint32_t) first;
        anchor = t->family_anchor[f];

        r = parts_extend(t, t->tokens->n);
        if (r < 0)
                return r;
        for (size_t i = first; i < t->tokens->n; i++)
                t->opts->parts->word[i][0] = t->opts->parts->word[i][1] = anchor;
        return 0;
}

/* The shape of s[0..n) in out (at most size bytes; returns its length): a digit 9 (each
 * one with each_digit, else a run of them), a run of ASCII letters a, a run of white space
 * one space (none at either end), a run of bytes outside printable ASCII ?, any other
 * character as it is. What is written is left out, how it is written stays: "Tue, 31 Jul
 * 2001 21:36:20 +0000" gives "a, 99 a 9999 99:99:99 +9999" (each digit), "text/plain;
 * charset=iso-8859-1" gives "a/a; a=a-9-9", "John.Smith42" gives "a.a9". */
static size_t value_shape(const char *s, size_t n, bool each_digit, char *out, size_t size) {
        size_t k = 0;

        for (size_t i = 0; i < n && k < size; i++) {
                uint8_t c = (uint8_t) s[i];
                char o = c >= '0' && c <= '9' ? '9' :
                         ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? 'a' :
                         is_space((char) c) ? ' ' :
                         c >= 0x21 && c < 0x7f ? (char) c : '?';

                if (o == ' ' && k == 0)
                        continue;
                if (k > 0 && out[k - 1] == o && (IN_SET(o, 'a', '?', ' ') || (o == '9' && !each_digit)))
                        continue;
                out[k++] = o;
        }
        while (k > 0 && out[k - 1] == ' ')
                k--;
        return k;
}

/* The Date field of the message's own header: how it is written, not when. Its shape
 * (value_shape() with each digit, cut to SPAM_WORD_MAX bytes: "a, 99 a 9999 99:99:99
 * +9999") names the program that wrote it, and its zone (the word after the time, RFC 5322
 * section 3.3: "+0100", "-0700", "EST"; lowercased) where its sender is. The day, month,
 * year and time are left out: they say when the message was written, and in a collection
 * of mail, which collection. */
static int tokenize_date(Tokenizer *t, const char *s, size_t n) {
        char shape[SPAM_WORD_MAX], zone[SPAM_WORD_MAX];
        size_t k, z = 0;
        bool after_time = false, in_zone = false;
        int r;

        k = value_shape(s, n, /* each_digit= */ true, shape, sizeof(shape));
        if (k == 0)
                return 0;
        r = tok_add(t, SPAM_TOKEN_HEADER, "h:date:shape:", shape, k);
        if (r < 0)
                return r;

        /* the zone: the word that follows the one with the time's ':' */
        for (size_t i = 0; i < n; i++) {
                uint8_t c = (uint8_t) s[i];
                bool word = !is_space((char) c);

                if (word && !in_zone && after_time && z == 0 && (i == 0 || is_space(s[i - 1])))
                        in_zone = true;
                if (in_zone) {
                        if (!word)
                                break;
                        if (z < sizeof(zone))
                                zone[z++] = (char) (c >= 'A' && c <= 'Z' ? c + 32 : c);
                }
                if (c == ':')
                        after_time = true;
        }
        return z > 0 ? tok_add(t, SPAM_TOKEN_HEADER, "h:date:zone:", zone, z) : 0;
}

/* The shape of the local part of the address in From or Reply-To, or of the left part of
 * the Message-ID (the one in angle brackets, else the first), by value_shape(), cut to 32
 * bytes ("john.smith" a.a, "x7hq2k" a9a9a, "info" a; a Message-ID
 * "20020912182131.20322.qmail" 9.9.a). How a sender's name is made tells a person or a
 * role from a generated address, and how an id is made tells which program made it, where
 * the address and the id themselves are new with every message. */
static int tokenize_address_shape(Tokenizer *t, const char *name, const char *s, size_t n) {
        const char *lt = memchr(s, '<', n), *at, *b;
        char shape[32], prefix[SPAM_NAME_MAX + 12];
        size_t k;

        if (lt) {
                b = lt + 1;
                at = memchr(b, '@', n - (size_t) (b - s));
        } else {
                at = memchr(s, '@', n);
                for (b = at; b && b > s && !is_space(b[-1]) && !IN_SET(b[-1], '"', ',', '(', ':', ';'); b--)
                        ;
        }
        if (!at || at == b)
                return 0;

        k = value_shape(b, (size_t) (at - b), /* each_digit= */ false, shape, sizeof(shape));
        if (k == 0)
                return 0;
        snprintf(prefix, sizeof(prefix), "h:%s:shape:", name);
        return tok_add(t, SPAM_TOKEN_HEADER, prefix, shape, k);
}

/* How the fields that a sender's program formats its own way are written (value_shape(),
 * cut to SPAM_WORD_MAX bytes): the addresses of From, To, Cc and Reply-To ("\"a a\"
 * <a.a9@a.a>", "a@a.a (a a)", "a@a.a, a@a.a") and the top-level Content-Type ("a/a;
 * a=\"a-9-9\"" against "a/a; a=a-9-9": whether and how parameters are quoted, which
 * charset). */
static bool field_format_read(const char *name) {
        return streq(name, "from") || streq(name, "to") || streq(name, "cc") || streq(name, "reply-to") ||
               streq(name, "content-type");
}

static int tokenize_field_format(Tokenizer *t, const char *name, const char *s, size_t n) {
        char shape[SPAM_WORD_MAX], prefix[SPAM_NAME_MAX + 12];
        size_t k;

        k = value_shape(s, n, /* each_digit= */ false, shape, sizeof(shape));
        if (k == 0)
                return 0;
        snprintf(prefix, sizeof(prefix), "h:%s:fmt:", name);
        return tok_add(t, SPAM_TOKEN_HEADER, prefix, shape, k);
}

static int on_header(Tokenizer *t, const MimeEvent *e) {
        char name[SPAM_NAME_MAX + 1], prefix[SPAM_NAME_MAX + 4];
        WordContext ctx = WORD_HEADER;
        size_t n, first = t->tokens->n;
        int r;

        for (n = 0; e->name[n] && n < SPAM_NAME_MAX; n++) {
                char c = e->name[n];

                name[n] = c >= 'A' && c <= 'Z' ? c + 32 : c;
        }
        name[n] = '\0';
        if (n == 0 || header_ignored(name))
                return 0;

        /* below the top level only the fields that describe the part itself */
        if (e->part->depth > 0 && !startswith(name, "content-"))
                return 0;

        /* the date: its shape and zone only (tokenize_date()) */
        if (streq(name, "date"))
                return tokenize_date(t, e->data, e->size);

        if (e->part->depth == 0) {
                r = tok_add(t, SPAM_TOKEN_HEADER, "hf:", name, n);
                if (r < 0)
                        return r;
        }

        /* "h:NAME:" (n is at most SPAM_NAME_MAX) */
        prefix[0] = 'h', prefix[1] = ':';
        memcpy(prefix + 2, name, n);
        prefix[n + 2] = ':', prefix[n + 3] = '\0';

        if (streq(name, "received"))
                return tokenize_words(t, e->data, received_from_clause(e->data, e->size), WORD_HEADER_HOST,
                                      prefix);
        if (e->part->depth == 0 && (streq(name, "from") || streq(name, "reply-to") || streq(name, "message-id"))) {
                r = tokenize_address_shape(t, name, e->data, e->size);
                if (r < 0)
                        return r;
        }
        if (e->part->depth == 0 && field_format_read(name)) {
                /* within the field's tokens: Content-Type's counts with the MIME family */
                r = tokenize_field_format(t, name, e->data, e->size);
                if (r < 0)
                        return r;
        }
        if (IN_SET(name[0], 'm', 'i', 'r') &&
            (streq(name, "message-id") || streq(name, "in-reply-to") || streq(name, "references")))
                ctx = WORD_HEADER_DOTTED;

        r = tokenize_words(t, e->data, e->size, ctx, prefix);
        if (r < 0)
                return r;
        /* families are of the message's own header, not of a part's */
        return e->part->depth == 0 ? header_family(t, name, first) : 0;
}

/* ---- the MIME events -------------------------------------------------------------- */

/* The characters of s[0..n) of UTF-8: its bytes less the continuation bytes and a
 * carriage return at the end. */
static size_t line_chars(const char *s, size_t n) {
        size_t c = 0;

        if (n > 0 && s[n - 1] == '\r')
                n--;
        for (size_t i = 0; i < n; i++)
                c += ((uint8_t) s[i] & 0xC0) != 0x80;
        return c;
}

/* The lines of plain text, for f:wrap:: how long the longest is says how the sender's
 * program wraps text (a mail program at 72 or so; a paragraph a line when it does not
 * wrap or sends quoted-printable with soft breaks). A line counts in characters once it
 * is longer than the shortest bucket, in bytes before (a short line's bytes are at
 * least its characters, and it stays in that bucket either way). */
static void measure_lines(Tokenizer *t, const char *s, size_t n) {
        const char *p = s, *end = s + n;

        t->have_lines = true;
        for (;;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t k = (size_t) ((nl ?: end) - p);

                t->line_len += t->line_len + k > WRAP_SHORT ? line_chars(p, k) : k;
                if (!nl)
                        break;
                t->line_max = MAX(t->line_max, t->line_len);
                t->line_len = 0;
                p = nl + 1;
        }
}

/* f:rawline: for a part that is not a container: the longest line of its body as sent
 * (MimePart.line_max), by the kind of part. Up to RAW_LINE_EXACT bytes the length itself,
 * since an encoder's line (base64 at 76, 72 or 64, quoted-printable at 76 or 73) and a
 * mail program's wrap name the program exactly; longer lines in buckets (100, 200, the
 * 998 of RFC 5322, long). Beside f:wrap:, which measures the text the reader sees: the
 * two differ for every encoded part, and both together ranked group 1 better than either
 * alone, and better than tiled as one piece (tests/bench/README.md). */
static int add_raw_lines(Tokenizer *t, const MimePart *part) {
        const char *prefix = part->is_html ? "f:rawline:html:" : part->is_text ? "f:rawline:text:" :
                                                                                 "f:rawline:other:";
        uint64_t l = part->line_max;

        if (part->is_multipart || part->is_message)
                return 0;
        if (l <= RAW_LINE_EXACT)
                return tok_addf(t, SPAM_TOKEN_FEATURE, prefix, "%u", (unsigned) l);
        return tok_addf(t, SPAM_TOKEN_FEATURE, prefix, "%s",
                        l <= 100 ? "100" : l <= 200 ? "200" : l <= 998 ? "998" : "long");
}

/* How an HTML part was written, for an HTML part: f:html-case:, whether its program
 * writes tags in capitals (<FONT>, as many bulk mailers and the HTML editors of 2002
 * did), in small letters, or both; f:html-comments:, how many comments it leaves (an
 * editor's conditional comments, a generator's marks, comments splitting words). Group 1
 * ranked better with each, by position and in b1, and no worse by sender; the quoting of
 * attribute values, a DOCTYPE or other declaration, an <html> element, XHTML's "<br/>",
 * entities and the values of attributes did not, and the number of images made a
 * newsletter a false positive in protocol B (tests/bench/README.md). */
static int add_html_style(Tokenizer *t, const MimePart *part) {
        unsigned u = part->tags_upper, l = part->tags_lower, c = part->html_comments;
        int r;

        if (!part->is_html)
                return 0;
        r = tok_addf(t, SPAM_TOKEN_FEATURE, "f:html-case:", "%s",
                     u + l == 0 ? "none" : l == 0 ? "upper" : u == 0 ? "lower" : "mixed");
        if (r < 0)
                return r;
        return tok_addf(t, SPAM_TOKEN_FEATURE, "f:html-comments:", "%s", c == 0 ? "0" : count_bucket(c));
}

static int on_hmm_word(const char *word, size_t word_len, size_t start, size_t end, double confidence,
                       void *userdata) {
        Tokenizer *t = userdata;
        int r;

        (void) start;
        (void) end;
        (void) confidence;

        if (word_len == 0 || word_len > SPAM_WORD_MAX)
                return 0;
        t->obfuscated++;
        r = tok_add(t, SPAM_TOKEN_DEOBFUSCATED, "d:", word, word_len);
        if (r < 0)
                return r;
        r = tok_add(t, SPAM_TOKEN_WORD, "w:", word, word_len);
        return r < 0 ? r : 0;
}

static int on_part_begin(Tokenizer *t, const MimePart *p) {
        int r;

        t->ring_n = t->ring_pos = 0;
        /* a part begins on a line of its own */
        t->line_max = MAX(t->line_max, t->line_len);
        t->line_len = 0;

        if (!p->is_multipart && !p->is_message) {
                r = tok_add(t, SPAM_TOKEN_FEATURE, "f:type:", p->content_type, strlen(p->content_type));
                if (r < 0)
                        return r;
        }
        if (p->is_html)
                t->have_html = true;
        else if (p->is_text)
                t->have_plain = true;
        if (p->charset) {
                r = tok_add(t, SPAM_TOKEN_FEATURE, "f:charset:", p->charset, strnlen(p->charset, 40));
                if (r < 0)
                        return r;
        }
        if (p->filename) {
                const char *dot = strrchr(p->filename, '.');
                size_t k;

                if (dot && dot[1] && (k = strlen(dot + 1)) <= 10) {
                        char ext[11];

                        for (size_t i = 0; i <= k; i++)
                                ext[i] = dot[1 + i] >= 'A' && dot[1 + i] <= 'Z' ? dot[1 + i] + 32 : dot[1 + i];
                        r = tok_add(t, SPAM_TOKEN_FEATURE, "f:ext:", ext, k);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int on_mime_event(const MimeEvent *e, void *userdata) {
        Tokenizer *t = userdata;
        int r = 0;

        switch (e->type) {
        case MIME_EVENT_PART_BEGIN:
                r = on_part_begin(t, e->part);
                break;
        case MIME_EVENT_HEADER:
                r = on_header(t, e);
                break;
        case MIME_EVENT_TEXT:
                if (!e->part->is_html)
                        measure_lines(t, e->data, e->size);
                t->text_bytes += e->size;
                r = tokenize_words(t, e->data, e->size, WORD_BODY, NULL);
                if (r >= 0)
                        r = find_text_urls(t, e->data, e->size);
                if (r >= 0 && t->opts->hmm && spam_hmm_scan_cached) {
                        r = spam_hmm_scan_cached(t->opts->hmm, t->opts->hmm_cache, e->data, e->size, on_hmm_word, t);
                        if (r > 0)
                                r = 0;
                }
                break;
        case MIME_EVENT_URL:
                r = add_host(t, e->data, e->size);
                /* the words of its path and query, which the reader of the HTML does not see
                 * (those of a link in plain text are the text's own words) */
                if (r >= 0 && e->rest_size > 0)
                        r = tokenize_words(t, e->rest, e->rest_size, WORD_URL, "u:w:");
                break;
        case MIME_EVENT_MARKUP:
                r = tok_add(t, SPAM_TOKEN_MARKUP, "m:", e->data, e->size);
                break;
        case MIME_EVENT_COMMENT:
                r = tokenize_words(t, e->data, e->size, WORD_COMMENT, "hc:");
                break;
        case MIME_EVENT_PART_END:
                t->insertions += e->part->insertions;
                r = add_raw_lines(t, e->part);
                if (r >= 0)
                        r = add_html_style(t, e->part);
                t->ring_n = t->ring_pos = 0;
                break;
        default:
                break;
        }
        if (r < 0)
                return r;
        /* a full set stops the parser; the features are still added */
        return t->full ? -ECANCELED : 0;
}

static int add_client_ip(Tokenizer *t, const char *ip) {
        char buf[INET6_ADDRSTRLEN + 8], a[INET6_ADDRSTRLEN];
        unsigned char addr[16];
        size_t n;
        int r;

        /* "[192.0.2.1]", "[IPv6:2001:db8::1]" as in Received fields, or plain */
        n = strlen(ip);
        if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') {
                ip++;
                n -= 2;
        }
        if (n >= 5 && strncasecmp(ip, "ipv6:", 5) == 0) {
                ip += 5;
                n -= 5;
        }
        if (n == 0 || n >= sizeof(buf))
                return 0;
        memcpy(buf, ip, n);
        buf[n] = '\0';

        if (inet_pton(AF_INET, buf, addr) == 1) {
                if (!inet_ntop(AF_INET, addr, a, sizeof(a)))
                        return 0;
                r = tok_add(t, SPAM_TOKEN_IP, "ip:", a, strlen(a));
                if (r < 0)
                        return r;
                return tok_addf(t, SPAM_TOKEN_IP, "ip:", "%u.%u.%u.0/24", addr[0], addr[1], addr[2]);
        }
        if (inet_pton(AF_INET6, buf, addr) == 1) {
                if (!inet_ntop(AF_INET6, addr, a, sizeof(a)))
                        return 0;
                r = tok_add(t, SPAM_TOKEN_IP, "ip:", a, strlen(a));
                if (r < 0)
                        return r;
                memset(addr + 6, 0, 10);
                if (!inet_ntop(AF_INET6, addr, a, sizeof(a)))
                        return 0;
                return tok_addf(t, SPAM_TOKEN_IP, "ip:", "%s/48", a);
        }
        return 0;
}

static const char* const defect_names[] = {
        "header-syntax", "header-limit", "line-limit", "content-type", "no-boundary", "missing-close",
        "no-parts", "encoding", "base64", "qp", "charset", "encoded-word", "8bit-header", "param",
        "html", "depth-limit", "part-limit", "text-limit",
};

static int add_features(Tokenizer *t, unsigned defects) {
        static const uint64_t text_buckets[] = { 0, 100, 1000, 10000, 100000 };
        unsigned tb = 0;
        int r;

        for (unsigned i = 0; i < ELEMENTSOF(defect_names); i++)
                if (defects & (1U << i)) {
                        r = tok_add(t, SPAM_TOKEN_FEATURE, "f:defect:", defect_names[i], strlen(defect_names[i]));
                        if (r < 0)
                                return r;
                }
        if (t->insertions > 0) {
                r = tok_addf(t, SPAM_TOKEN_FEATURE, "f:insertions:", "%s", count_bucket(t->insertions));
                if (r < 0)
                        return r;
        }
        if (t->obfuscated > 0) {
                r = tok_addf(t, SPAM_TOKEN_FEATURE, "f:obfuscated:", "%s", count_bucket(t->obfuscated));
                if (r < 0)
                        return r;
        }
        while (tb + 1 < ELEMENTSOF(text_buckets) && t->text_bytes > text_buckets[tb + 1])
                tb++;
        r = tok_addf(t, SPAM_TOKEN_FEATURE, "f:text:", "%" PRIu64, text_buckets[tb]);
        if (r < 0)
                return r;
        if (t->have_lines) {
                size_t m = MAX(t->line_max, t->line_len);
                const char *b = m <= WRAP_SHORT ? "72" : m <= 80 ? "80" : m <= 100 ? "100" : m <= 200 ? "200" : "long";

                r = tok_add(t, SPAM_TOKEN_FEATURE, "f:wrap:", b, strlen(b));
                if (r < 0)
                        return r;
        }
        if (t->have_html && !t->have_plain) {
                r = tok_add(t, SPAM_TOKEN_FEATURE, "f:", "html-only", 9);
                if (r < 0)
                        return r;
        }
        return 0;
}

int spam_tokenize(const char *msg, size_t len, const SpamTokenizerOptions *opts, SpamTokens *ret) {
        _cleanup_(mime_parser_freep) MimeParser *p = NULL;
        SpamTokens tokens = SPAM_TOKENS_NULL;
        WordCacheEntry word_cache[WORD_CACHE_SLOTS];    /* only where t.word_cache_len says */
        Tokenizer t = {
                .opts = opts,
                .tokens = &tokens,
                .word_cache = word_cache,
        };
        int r;

        assert(msg || len == 0);
        assert(opts);
        assert(opts->key);
        assert(ret);

        for (size_t i = 0; i < ELEMENTSOF(t.family_anchor); i++)
                t.family_anchor[i] = SPAM_TOKEN_NO_WORD;
        t.max_tokens = opts->max_tokens > 0 ? opts->max_tokens : SPAM_TOKENIZER_MAX_TOKENS_DEFAULT;
        t.max_other = t.max_tokens - MIN(t.max_tokens / 2, SPAM_FEATURE_RESERVE);
        t.window = opts->bigram_window > 0 ? MIN(opts->bigram_window, SPAM_BIGRAM_WINDOW) :
                                             SPAM_TOKENIZER_BIGRAM_WINDOW_DEFAULT;
        tokens.keep_text = opts->keep_text;
        /* room for the tokens a message of this size gives, so that the set does not
         * grow and rehash three or four times on the way (a token for every 16 bytes or
         * so: 10–20 in the SpamAssassin corpus) */
        r = spam_tokens_reserve(&tokens, MIN(len / 16 + 64, t.max_tokens));
        if (r < 0)
                goto fail;

        r = mime_parser_new(NULL, on_mime_event, &t, &p);
        if (r < 0)
                return r;
        mime_parser_set_markup(p, opts->markup);
        mime_parser_set_comments(p, true);

        r = mime_parser_feed(p, msg, len);
        if (r >= 0)
                r = mime_parser_finish(p);
        if (r < 0 && r != -ECANCELED)
                goto fail;

        if (opts->client_ip) {
                r = add_client_ip(&t, opts->client_ip);
                if (r < 0)
                        goto fail;
        }
        r = add_features(&t, mime_parser_defects(p));
        if (r < 0)
                goto fail;
        if (opts->parts) {
                r = parts_extend(&t, tokens.n);
                if (r < 0)
                        goto fail;
        }

        *ret = tokens;
        return 0;

fail:
        if (opts->parts)
                spam_token_parts_done(opts->parts);
        spam_tokens_done(&tokens);
        return r;
}
