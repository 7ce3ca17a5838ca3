/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "spam-hmm.h"

/* A lexicon in the shape the filter gives: ordinary words with high counts, the spam
 * vocabulary with fewer, and rare words with one or two. */
static const struct {
        const char *word;
        uint32_t weight;
} lexicon[] = {
        { "the", 50000 }, { "and", 30000 }, { "for", 20000 }, { "you", 18000 }, { "with", 15000 },
        { "this", 14000 }, { "that", 13000 }, { "your", 9000 }, { "from", 9000 }, { "have", 8000 },
        { "will", 7000 }, { "are", 12000 }, { "not", 9000 }, { "can", 6000 }, { "all", 6000 },
        { "now", 4000 }, { "buy", 900 }, { "new", 3000 }, { "today", 1500 }, { "please", 2000 },
        { "read", 1800 }, { "reply", 900 }, { "order", 900 }, { "best", 1200 }, { "price", 700 },
        { "free", 2500 }, { "offer", 1100 }, { "cheap", 600 }, { "money", 1300 }, { "cash", 500 },
        { "viagra", 800 }, { "cialis", 600 }, { "mortgage", 700 }, { "pharmacy", 500 },
        { "pills", 500 }, { "casino", 400 }, { "rolex", 300 }, { "watches", 350 }, { "loan", 400 },
        { "sex", 400 }, { "credit", 600 }, { "winner", 300 }, { "million", 700 }, { "dollars", 500 },
        { "discount", 400 }, { "replica", 200 }, { "meeting", 1500 }, { "report", 1400 },
        { "project", 1700 }, { "attached", 800 }, { "thanks", 1600 }, { "regards", 900 },
        { "software", 1200 }, { "license", 1100 }, { "program", 1300 }, { "version", 1200 },
        { "setting", 400 }, { "settings", 500 }, { "email", 1200 }, { "mail", 1500 },
        { "gage", 2 }, { "mort", 2 }, { "via", 1500 }, { "agra", 1 }, { "vlagra", 1 },
        { "cafe", 40 }, { "jose", 30 }, { "naive", 20 },
};

static SpamHmm* lexicon_build(void) {
        SpamHmm *h = NULL;

        ck_assert_int_eq(spam_hmm_new(&h), 0);
        for (size_t i = 0; i < ELEMENTSOF(lexicon); i++)
                ck_assert_int_eq(spam_hmm_add_word(h, lexicon[i].word, lexicon[i].weight), 0);
        /* and the long tail of a real vocabulary: words seen once or twice */
        for (unsigned i = 0; i < 300; i++) {
                char w[] = { 'q', (char) ('a' + i % 26), (char) ('a' + i / 26 % 26), 'x', 0 };

                ck_assert_int_eq(spam_hmm_add_word(h, w, 1 + i % 2), 0);
        }
        ck_assert_int_eq(spam_hmm_build(h), 0);
        return h;
}

#define REPORTS_MAX 16

typedef struct Reports {
        const char *text;
        size_t len;
        size_t n;
        char word[REPORTS_MAX][SPAM_HMM_WORD_MAX * 4 + 1];
        char span[REPORTS_MAX][256];
        double confidence[REPORTS_MAX];
        int stop_after;                 /* return an error from this report on (0: never) */
} Reports;

static int on_word(const char *word, size_t word_len, size_t start, size_t end, double confidence,
                   void *userdata) {
        Reports *r = userdata;

        /* the contract: a word within the bounds, a span inside the text, 0..1 */
        ck_assert_uint_ge(word_len, 1);
        ck_assert_uint_le(word_len, SPAM_HMM_WORD_MAX * 4);
        ck_assert_uint_eq(strlen(word), word_len);
        ck_assert_uint_lt(start, end);
        ck_assert_uint_le(end, r->len);
        ck_assert(confidence > 0.0 && confidence <= 1.0);

        if (r->n < REPORTS_MAX) {
                memcpy(r->word[r->n], word, word_len);
                r->word[r->n][word_len] = 0;
                snprintf(r->span[r->n], sizeof(r->span[r->n]), "%.*s", (int) (end - start), r->text + start);
                r->confidence[r->n] = confidence;
        }
        r->n++;
        if (r->stop_after > 0 && r->n >= (size_t) r->stop_after)
                return -ECANCELED;
        return 0;
}

static int scan(const SpamHmm *h, const char *text, Reports *r) {
        *r = (Reports) { .text = text, .len = strlen(text), .stop_after = r->stop_after };
        return spam_hmm_scan(h, text, r->len, on_word, r);
}

/* Each disguise decodes to its word, read from the disguised span. */
static const struct {
        const char *name;
        const char *input;
        const char *word;
        const char *span;
} decode_cases[] = {
        { "digit for letter", "v1agra", "viagra", "v1agra" },
        { "upper case with digit", "V1AGRA", "viagra", "V1AGRA" },
        { "at sign", "vi@gra", "viagra", "vi@gra" },
        { "digits and symbols", "c1al1$", "cialis", "c1al1$" },
        { "dots between capitals", "V.I.A.G.R.A", "viagra", "V.I.A.G.R.A" },
        { "hyphens between letters", "c-i-a-l-i-s", "cialis", "c-i-a-l-i-s" },
        { "stars", "p*i*l*l*s", "pills", "p*i*l*l*s" },
        { "spaced letters", "please read: v i a g r a today", "viagra", "v i a g r a" },
        { "split with digit", "m0rt gage", "mortgage", "m0rt gage" },
        { "split inside a sentence", "your new m0rtg age offer", "mortgage", "m0rtg age" },
        { "slash picture", "\\/iagra", "viagra", "\\/iagra" },
        { "m picture", "|\\/|ortgage", "mortgage", "|\\/|ortgage" },
        { "o picture", "m()ney", "money", "m()ney" },
        { "pipe for l", "pi||s", "pills", "pi||s" },
        { "euro sign", "fr\u20ac\u20ac", "free", "fr\u20ac\u20ac" },
        { "zero in a word in text", "buy cheap r0lex watches", "rolex", "r0lex" },
        { "word joined to a plain word", "buyv1agra", "viagra", "v1agra" },
        { "digit in the middle", "ph4rmacy", "pharmacy", "ph4rmacy" },
        { "trailing digit", "discoun7", "discount", "discoun7" },
        { "dropped letter with digit", "m0rtgge", "mortgage", "m0rtgge" },
        { "doubled letter with digit", "v1aggra", "viagra", "v1aggra" },
        { "plain doubled letter", "viaggra", "viagra", "viaggra" },
        { "plain tripled letter", "viagraaa", "viagra", "viagraaa" },
        { "plain dropped letter", "pharmcy", "pharmacy", "pharmcy" },
        { "Cyrillic a and e", "vi\u0430gr\u0430", "viagra", "vi\u0430gr\u0430" },
        { "Cyrillic o and c", "\u0441\u0430sin\u043e", "casino", "\u0441\u0430sin\u043e" },
        { "Cyrillic i", "v\u0456agra", "viagra", "v\u0456agra" },
        { "Greek nu and omicron", "\u03bdiagra m\u03bfney", "viagra", "\u03bdiagra" },
        { "Greek capitals", "\u0391\u039c\u0395\u03a1 C\u0391SH", "cash", "C\u0391SH" },
        { "accented letter", "v\u00edagra", "viagra", "v\u00edagra" },
        { "two accents", "ph\u00e0rm\u00e1cy", "pharmacy", "ph\u00e0rm\u00e1cy" },
        { "zero-width space", "via\u200bgra", "viagra", "via\u200bgra" },
        { "soft hyphen", "mort\u00adgage", "mortgage", "mort\u00adgage" },
        { "in parentheses", "(v1agra)", "viagra", "v1agra" },
        { "at the end of a sentence", "Buy c1alis.", "cialis", "c1alis" },
};

START_TEST(test_decode)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();

        for (size_t i = 0; i < ELEMENTSOF(decode_cases); i++) {
                Reports r = {};
                bool found = false;
                int k;

                k = scan(h, decode_cases[i].input, &r);
                ck_assert_msg(k >= 1, "%s: \"%s\" gave %d", decode_cases[i].name, decode_cases[i].input, k);
                ck_assert_int_eq((size_t) k, r.n);
                for (size_t j = 0; j < r.n && j < REPORTS_MAX; j++)
                        if (strcmp(r.word[j], decode_cases[i].word) == 0) {
                                ck_assert_msg(strcmp(r.span[j], decode_cases[i].span) == 0,
                                              "%s: span \"%s\", expected \"%s\"", decode_cases[i].name,
                                              r.span[j], decode_cases[i].span);
                                ck_assert(r.confidence[j] >= 0.6);
                                found = true;
                        }
                ck_assert_msg(found, "%s: \"%s\" did not give %s (first: %s)", decode_cases[i].name,
                              decode_cases[i].input, decode_cases[i].word, r.n > 0 ? r.word[0] : "-");
        }
}
END_TEST

/* Words as written, whatever their case or punctuation, and ordinary text are not reported. */
static const struct {
        const char *name;
        const char *input;
} plain_cases[] = {
        { "a lexicon word", "viagra" },
        { "capitals", "VIAGRA" },
        { "capitalized", "Viagra" },
        { "mixed case", "ViAgRa" },
        { "in a sentence", "Please read the attached report, thanks." },
        { "words with punctuation", "(free) offer! money? cash; credit: \"loan\"" },
        { "a split that is two words", "the via agra project" },
        { "two lexicon words in a row", "buy now" },
        { "hyphenated words", "well-known e-mail set-up" },
        { "apostrophe", "don't you're project's" },
        { "contractions of unknown stems", "doesn't weren't MPAA's Johansen's we'll they've I'd" },
        { "identifiers", "get_value setting_s readSha1File sha1 utf8 x86_64 mp3 3rd" },
        { "numbers and versions", "version 2.0.1, 100% 1st 2nd $5 $HOME 10:30 2005-07-21" },
        { "hexadecimal", "d41d8cd98f00b204e9800998ecf8427e deadbeef12" },
        { "address and link", "mail viagra@example.com or see https://example.com/v1agra/pills" },
        { "path", "/usr/share/doc/cialis/README" },
        { "function calls", "project(git) log() crypt() call(x)" },
        { "short words across spaces", "it s in v to r h older setting s" },
        { "base64", "dmlhZ3JhIGNpYWxpcyBtb3J0Z2FnZSBjaGVhcCBvZmZlciBmcmVlIG1vbmV5IGNhc2g=" },
        { "pure Cyrillic", "\u0441\u043e\u0440 \u0440\u0430\u0441 \u0441\u0435\u0441" },
        { "accented name", "Jos\u00e9 and Micha\u00ebl" },
        { "an unknown word", "Thisisnotaword qwxz" },
        { "empty", "" },
        { "white space only", "   \n\t \r\n " },
};

START_TEST(test_plain_not_reported)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();

        for (size_t i = 0; i < ELEMENTSOF(plain_cases); i++) {
                Reports r = {};
                int k;

                k = scan(h, plain_cases[i].input, &r);
                ck_assert_msg(k == 0, "%s: \"%s\" gave %d (%s from \"%s\")", plain_cases[i].name,
                              plain_cases[i].input, k, r.n > 0 ? r.word[0] : "-", r.n > 0 ? r.span[0] : "");
        }
}
END_TEST

/* A contraction or possessive is read as its stem alone would be: "MPAA's" and "doesn't"
 * are ordinary text, "monney's" a disguise as "monney" is, and "offr's" is not, as "offr"
 * is not. */
START_TEST(test_clitics)
{
        static const char* const stems[] = {
                "MPAA", "doesn", "Johansen", "don", "offr", "monney", "pharmcy", "casin", "viagr",
        };
        static const char* const clitics[] = { "'s", "\u2019s", "'t", "'ll", "'re", "'ve", "'d", "'m" };
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();
        unsigned reported = 0;

        for (size_t i = 0; i < ELEMENTSOF(stems); i++) {
                Reports plain = {};

                ck_assert_int_ge(scan(h, stems[i], &plain), 0);
                reported += plain.n > 0;
                for (size_t k = 0; k < ELEMENTSOF(clitics); k++) {
                        char text[64];
                        Reports r = {};

                        snprintf(text, sizeof(text), "%s%s", stems[i], clitics[k]);
                        ck_assert_int_ge(scan(h, text, &r), 0);
                        ck_assert_msg(r.n == plain.n, "\"%s\": %zu reports, \"%s\" %zu", text, r.n, stems[i],
                                      plain.n);
                        if (r.n > 0) {
                                ck_assert_str_eq(r.word[0], plain.word[0]);
                                ck_assert_str_eq(r.span[0], stems[i]);
                        }
                }
        }
        /* some stems are disguises, some are not */
        ck_assert_uint_gt(reported, 0);
        ck_assert_uint_lt(reported, ELEMENTSOF(stems));
}
END_TEST

/* Split and joined words: one word read across a space, two words read out of one run. */
START_TEST(test_split_joined)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();
        Reports r = {};

        /* across a space, once */
        ck_assert_int_eq(scan(h, "get a m0rt gage now", &r), 1);
        ck_assert_str_eq(r.word[0], "mortgage");
        ck_assert_str_eq(r.span[0], "m0rt gage");

        /* two disguised words run together: both, in text order */
        ck_assert_int_eq(scan(h, "ch3apv1agra", &r), 2);
        ck_assert_str_eq(r.word[0], "cheap");
        ck_assert_str_eq(r.span[0], "ch3ap");
        ck_assert_str_eq(r.word[1], "viagra");
        ck_assert_str_eq(r.span[1], "v1agra");

        /* a plain word joined to a disguised one: only the disguised one */
        ck_assert_int_eq(scan(h, "cheapv1agra", &r), 1);
        ck_assert_str_eq(r.word[0], "viagra");
        ck_assert_str_eq(r.span[0], "v1agra");

        /* several disguises in a line, each once */
        ck_assert_int_eq(scan(h, "fr3e c1alis and v-i-a-g-r-a for your m0rtgage", &r), 4);
        ck_assert_str_eq(r.word[0], "free");
        ck_assert_str_eq(r.word[1], "cialis");
        ck_assert_str_eq(r.word[2], "viagra");
        ck_assert_str_eq(r.word[3], "mortgage");
}
END_TEST

/* Homoglyphs only count among Latin letters; a Cyrillic word is a Cyrillic word. */
START_TEST(test_homoglyphs)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();
        Reports r = {};

        /* every letter but one Cyrillic, the one Latin letter makes it a mixed word */
        ck_assert_int_eq(scan(h, "\u0441\u0430\u0455in\u043e", &r), 1);
        ck_assert_str_eq(r.word[0], "casino");
        ck_assert_int_eq(scan(h, "\u0441\u0430\u0455\u0456\u043e", &r), 0);  /* all Cyrillic */
        ck_assert_int_eq(scan(h, "\u0420\u0406LLS", &r), 1);
        ck_assert_str_eq(r.word[0], "pills");
}
END_TEST

/* The prior (the lexicon weights) and the length-normalized edit score decide. */
START_TEST(test_weighting)
{
        _cleanup_(spam_hmm_freep) SpamHmm *a = NULL, *b = NULL, *c = NULL;
        Reports r = {};

        /* "1" reads as i a little more readily than as l: with equal weights that is too
         * close to call, with more weight on one word it wins, and with a far heavier prior
         * the other word wins */
        ck_assert_int_eq(spam_hmm_new(&c), 0);
        ck_assert_int_eq(spam_hmm_add_word(c, "viagra", 100), 0);
        ck_assert_int_eq(spam_hmm_add_word(c, "vlagra", 100), 0);
        ck_assert_int_eq(spam_hmm_build(c), 0);
        ck_assert_int_eq(scan(c, "v1agra", &r), 0);

        ck_assert_int_eq(spam_hmm_new(&a), 0);
        ck_assert_int_eq(spam_hmm_add_word(a, "viagra", 1000), 0);
        ck_assert_int_eq(spam_hmm_add_word(a, "vlagra", 100), 0);
        ck_assert_int_eq(spam_hmm_build(a), 0);
        ck_assert_int_eq(scan(a, "v1agra", &r), 1);
        ck_assert_str_eq(r.word[0], "viagra");
        ck_assert(r.confidence[0] < 0.9);       /* still a close call */

        ck_assert_int_eq(spam_hmm_new(&b), 0);
        ck_assert_int_eq(spam_hmm_add_word(b, "viagra", 1), 0);
        ck_assert_int_eq(spam_hmm_add_word(b, "vlagra", 100000), 0);
        ck_assert_int_eq(spam_hmm_build(b), 0);
        ck_assert_int_eq(scan(b, "v1agra", &r), 1);
        ck_assert_str_eq(r.word[0], "vlagra");

        /* too many edits per letter: weak substitutes and separators between all of them
         * are not read as a word; strong ones, or fewer, are */
        ck_assert_int_eq(scan(a, "v.|.@.9.r.@", &r), 0);
        ck_assert_int_eq(scan(a, "v.1.a.g.r.a", &r), 1);
        ck_assert_int_eq(scan(a, "v|@gra", &r), 1);
}
END_TEST

/* Clean English text gives no report. GPL-3 is split: the lexicon is built from the words of
 * its first half (with their counts) and the spam words; the second half is scanned. */
static const char fallback_text[] =
        "The licenses for most software and other practical works are designed to take away your "
        "freedom to share and change the works. By contrast, the GNU General Public License is "
        "intended to guarantee your freedom to share and change all versions of a program--to make "
        "sure it remains free software for all its users. We, the Free Software Foundation, use the "
        "GNU General Public License for most of our software; it applies also to any other work "
        "released this way by its authors. You can apply it to your programs, too. When we speak of "
        "free software, we are referring to freedom, not price. Our General Public Licenses are "
        "designed to make sure that you have the freedom to distribute copies of free software (and "
        "charge for them if you wish), that you receive source code or can get it if you want it, "
        "that you can change the software or use pieces of it in new free programs, and that you "
        "know you can do these things.\n";

static void add_words_of(SpamHmm *h, const char *text, size_t len) {
        for (size_t i = 0; i < len;) {
                char w[SPAM_HMM_WORD_MAX + 1];
                size_t n = 0;

                while (i < len && !((text[i] | 0x20) >= 'a' && (text[i] | 0x20) <= 'z'))
                        i++;
                while (i < len && (text[i] | 0x20) >= 'a' && (text[i] | 0x20) <= 'z') {
                        if (n < SPAM_HMM_WORD_MAX)
                                w[n] = (char) (text[i] | 0x20);
                        n++;
                        i++;
                }
                if (n >= SPAM_HMM_WORD_MIN && n <= SPAM_HMM_WORD_MAX) {
                        w[n] = 0;
                        ck_assert_int_eq(spam_hmm_add_word(h, w, 1), 0);
                }
        }
}

START_TEST(test_clean_text)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        const char *text = fallback_text;
        size_t len = strlen(fallback_text), half;
        Reports r = {};

        f = fopen("/usr/share/common-licenses/GPL-3", "re");
        if (f) {
                buf = malloc(1 << 20);
                ck_assert_ptr_nonnull(buf);
                len = fread(buf, 1, (1 << 20) - 1, f);
                buf[len] = 0;
                text = buf;
        }
        half = len / 2;

        ck_assert_int_eq(spam_hmm_new(&h), 0);
        add_words_of(h, text, half);
        for (size_t i = 0; i < ELEMENTSOF(lexicon); i++)
                ck_assert_int_eq(spam_hmm_add_word(h, lexicon[i].word, lexicon[i].weight), 0);
        ck_assert_int_eq(spam_hmm_build(h), 0);

        r = (Reports) { .text = text + half, .len = len - half };
        ck_assert_int_eq(spam_hmm_scan(h, text + half, len - half, on_word, &r), 0);

        /* and the same text with disguises in it gives exactly those */
        {
                _cleanup_free_ char *mixed = NULL;
                size_t n = len - half;

                mixed = malloc(n + 64);
                ck_assert_ptr_nonnull(mixed);
                memcpy(mixed, text + half, n);
                memcpy(mixed + n, " buy v1agra and c-i-a-l-i-s\n", 29);
                r = (Reports) { .text = mixed, .len = n + 28 };
                ck_assert_int_eq(spam_hmm_scan(h, mixed, n + 28, on_word, &r), 2);
                ck_assert_str_eq(r.word[0], "viagra");
                ck_assert_str_eq(r.word[1], "cialis");
        }
}
END_TEST

START_TEST(test_lexicon)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = NULL;
        char longest[SPAM_HMM_WORD_MAX + 2];
        Reports r = {};

        ck_assert_int_eq(spam_hmm_new(&h), 0);
        ck_assert_uint_eq(spam_hmm_size(h), 0);
        ck_assert_uint_eq(spam_hmm_size(NULL), 0);

        /* bounds and letters */
        ck_assert_int_eq(spam_hmm_add_word(h, "ab", 1), -EINVAL);
        ck_assert_int_eq(spam_hmm_add_word(h, "abc", 1), 0);
        memset(longest, 'a', SPAM_HMM_WORD_MAX);
        longest[SPAM_HMM_WORD_MAX] = 0;
        ck_assert_int_eq(spam_hmm_add_word(h, longest, 1), 0);
        longest[SPAM_HMM_WORD_MAX] = 'a';
        longest[SPAM_HMM_WORD_MAX + 1] = 0;
        ck_assert_int_eq(spam_hmm_add_word(h, longest, 1), -EINVAL);
        ck_assert_int_eq(spam_hmm_add_word(h, "v1agra", 1), -EINVAL);
        ck_assert_int_eq(spam_hmm_add_word(h, "two words", 1), -EINVAL);
        ck_assert_int_eq(spam_hmm_add_word(h, "dot.ted", 1), -EINVAL);
        ck_assert_int_eq(spam_hmm_add_word(h, "bad\xff", 1), -EINVAL);
        ck_assert_int_eq(spam_hmm_add_word(h, "\xc3", 1), -EINVAL);
        ck_assert_int_eq(spam_hmm_add_word(h, "", 1), -EINVAL);
        /* non-ASCII letters count as one each */
        ck_assert_int_eq(spam_hmm_add_word(h, "\u00e9t\u00e9", 1), 0);
        ck_assert_int_eq(spam_hmm_add_word(h, "\u043c\u0438\u0440", 1), 0);

        /* twice is once, with the weights added; case is folded */
        ck_assert_int_eq(spam_hmm_add_word(h, "viagra", 5), 0);
        ck_assert_int_eq(spam_hmm_add_word(h, "VIAGRA", 5), 0);
        ck_assert_uint_eq(spam_hmm_size(h), 5);

        /* not before it is built; nothing added after */
        ck_assert_int_eq(spam_hmm_scan(h, "v1agra", 6, on_word, &r), -EINVAL);
        ck_assert_int_eq(spam_hmm_build(h), 0);
        ck_assert_int_eq(spam_hmm_build(h), -EBUSY);
        ck_assert_int_eq(spam_hmm_add_word(h, "cialis", 1), -EBUSY);
        ck_assert_uint_eq(spam_hmm_size(h), 5);

        ck_assert_int_eq(scan(h, "v1agra", &r), 1);
        ck_assert_str_eq(r.word[0], "viagra");
        ck_assert_int_eq(scan(h, "\u00e9t3", &r), 0);       /* three letters need all of theirs */
}
END_TEST

/* The store's lexicon callback: words outside the bounds are skipped, not errors, and a
 * word weighs what both classes saw of it. */
START_TEST(test_lexicon_callback)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = NULL, *ref = NULL;
        Reports r = {}, rr = {};

        ck_assert_int_eq(spam_hmm_new(&h), 0);
        ck_assert_int_eq(spam_hmm_add_lexicon_word("ab", 3, 3, h), 0);
        ck_assert_int_eq(spam_hmm_add_lexicon_word("v1agra", 3, 3, h), 0);
        ck_assert_int_eq(spam_hmm_add_lexicon_word("dot.ted", 3, 3, h), 0);
        ck_assert_uint_eq(spam_hmm_size(h), 0);
        ck_assert_int_eq(spam_hmm_add_lexicon_word("viagra", 2, 5, h), 0);
        ck_assert_int_eq(spam_hmm_add_lexicon_word("mortgage", 0, 1, h), 0);
        ck_assert_uint_eq(spam_hmm_size(h), 2);
        ck_assert_int_eq(spam_hmm_build(h), 0);
        ck_assert_int_eq(spam_hmm_add_lexicon_word("cialis", 1, 1, h), -EBUSY);

        /* the same lexicon through spam_hmm_add_word() with the summed weights reads alike */
        ck_assert_int_eq(spam_hmm_new(&ref), 0);
        ck_assert_int_eq(spam_hmm_add_word(ref, "viagra", 7), 0);
        ck_assert_int_eq(spam_hmm_add_word(ref, "mortgage", 1), 0);
        ck_assert_int_eq(spam_hmm_build(ref), 0);
        ck_assert_int_eq(scan(h, "v1agra and m0rtgage", &r), scan(ref, "v1agra and m0rtgage", &rr));
        ck_assert_int_ge(r.n, 1);
        for (size_t i = 0; i < r.n; i++)
                ck_assert_str_eq(r.word[i], rr.word[i]);
}
END_TEST

START_TEST(test_empty_lexicon)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = NULL;
        Reports r = {};

        ck_assert_int_eq(spam_hmm_new(&h), 0);
        ck_assert_int_eq(spam_hmm_build(h), 0);
        ck_assert_uint_eq(spam_hmm_size(h), 0);
        ck_assert_int_eq(scan(h, "v1agra V.I.A.G.R.A m0rt gage", &r), 0);
        ck_assert_int_eq(spam_hmm_scan(h, NULL, 0, on_word, &r), 0);
}
END_TEST

/* Bytes that are not UTF-8, NULs, control characters: no crash, spans inside the text, and
 * the disguise next to them still found. */
START_TEST(test_not_utf8)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();
        static const char junk[] = "\xff\xfe v1agra \xc3\x28 \xe2\x82 \xf0\x9f\x98 c\x00" "1alis \x80\x80\x80"
                "\xed\xa0\x80 \xc0\xaf m\xc3" "0rtgage \x01\x02\x7f";
        Reports r = { .text = junk, .len = sizeof(junk) - 1 };
        int k;

        k = spam_hmm_scan(h, junk, sizeof(junk) - 1, on_word, &r);
        ck_assert_int_ge(k, 1);
        ck_assert_str_eq(r.word[0], "viagra");
        ck_assert_str_eq(r.span[0], "v1agra");
        for (size_t i = 0; i < r.n; i++)
                ck_assert_str_ne(r.word[i], "cialis");  /* the NUL splits it */

        /* every byte value, every pair of a lead byte and a follower */
        for (unsigned a = 0; a < 256; a++) {
                char s[8] = { 'v', (char) a, 'a', 'g', 'r', 'a', 0 };

                r = (Reports) { .text = s, .len = 6 };
                k = spam_hmm_scan(h, s, 6, on_word, &r);
                ck_assert_int_ge(k, 0);
                ck_assert_int_le(k, 1);
                for (unsigned b = 0x80; b < 0x100; b += 7) {
                        char t[4] = { (char) a, (char) b, 'x', 0 };

                        r = (Reports) { .text = t, .len = 3 };
                        ck_assert_int_ge(spam_hmm_scan(h, t, 3, on_word, &r), 0);
                }
        }
}
END_TEST

/* Megabytes in one call, long runs without spaces, stretches longer than the model decodes
 * at once, and a callback that stops the scan. */
START_TEST(test_huge)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();
        static const char line[] = "Please read the attached report, thanks for your v1agra order today.\n";
        size_t n_lines = 60000, len = n_lines * (sizeof(line) - 1), i;
        _cleanup_free_ char *big = malloc(len + 1), *run = NULL, *singles = NULL;
        Reports r = {};

        ck_assert_ptr_nonnull(big);
        for (i = 0; i < n_lines; i++)
                memcpy(big + i * (sizeof(line) - 1), line, sizeof(line) - 1);
        big[len] = 0;
        r = (Reports) { .text = big, .len = len };
        ck_assert_int_eq(spam_hmm_scan(h, big, len, on_word, &r), (int) n_lines);
        ck_assert_uint_eq(r.n, n_lines);

        /* the callback stops it: its value comes back */
        r = (Reports) { .text = big, .len = len, .stop_after = 3 };
        ck_assert_int_eq(spam_hmm_scan(h, big, len, on_word, &r), -ECANCELED);
        ck_assert_uint_eq(r.n, 3);

        /* a megabyte without white space is no word */
        run = malloc((1 << 20) + 1);
        ck_assert_ptr_nonnull(run);
        for (i = 0; i < (1 << 20); i++)
                run[i] = "v1agra.-"[i % 8];
        run[1 << 20] = 0;
        r = (Reports) { .text = run, .len = 1 << 20 };
        ck_assert_int_eq(spam_hmm_scan(h, run, 1 << 20, on_word, &r), 0);

        /* single letters and look-alikes for a megabyte: decoded in bounded stretches */
        singles = malloc((1 << 20) + 1);
        ck_assert_ptr_nonnull(singles);
        for (i = 0; i < (1 << 20); i++)
                singles[i] = i % 2 ? ' ' : "v1agrasex"[(i / 2) % 9];
        singles[1 << 20] = 0;
        r = (Reports) { .text = singles, .len = 1 << 20 };
        ck_assert_int_ge(spam_hmm_scan(h, singles, 1 << 20, on_word, &r), 0);
}
END_TEST

/* One model, many scans: it is only read. */
START_TEST(test_reuse)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();
        Reports r = {};

        for (unsigned i = 0; i < 100; i++) {
                ck_assert_int_eq(scan(h, "v1agra and c1alis", &r), 2);
                ck_assert_str_eq(r.word[0], "viagra");
                ck_assert_str_eq(r.word[1], "cialis");
        }
}
END_TEST

/* Markup repeats within a message, and so do disguises: a stretch met again is read as
 * the first time, whether it reported nothing ("<font color") or a word. */
START_TEST(test_repeated)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();
        _cleanup_free_ char *text = NULL;
        Reports r = {};
        size_t n = 0;

        text = malloc(64 * 80 + 1);
        ck_assert_ptr_nonnull(text);
        for (unsigned i = 0; i < 64; i++)
                n += (size_t) sprintf(text + n, "<font color=red> %s <br>\n<td width=3D50%%>\n",
                                      i % 2 ? "v1agra" : "read this");
        r = (Reports) { .text = text, .len = n };
        ck_assert_int_eq(spam_hmm_scan(h, text, n, on_word, &r), 32);
        for (size_t i = 0; i < REPORTS_MAX; i++) {
                ck_assert_str_eq(r.word[i], "viagra");
                ck_assert_str_eq(r.span[i], "v1agra");
        }

        ck_assert_int_eq(scan(h, "v1agra v1agra v1agra v1agra v1agra v1agra", &r), 6);
        ck_assert_int_eq(scan(h, "buy v1agra. buy v1agra. buy v1agra. buy v1agra.", &r), 4);
}
END_TEST

/* A cache kept from one scan to the next changes nothing that is reported: every text
 * of the decode table and some ordinary ones, scanned twice with a cache (the second time
 * the stretches that read as no word are not searched again) and once without. */
START_TEST(test_cache)
{
        static const char* const plain[] = {
                "<font color=red> read this <br>", "Booth at the EFF, r=sourceforge1",
                "for (un)subscription, see refcode1=vs3390", "v1agra and c1alis", "the meeting agenda",
        };
        _cleanup_(spam_hmm_freep) SpamHmm *h = lexicon_build();
        _cleanup_(spam_hmm_cache_freep) SpamHmmCache *c = NULL;
        size_t n = ELEMENTSOF(decode_cases) + ELEMENTSOF(plain);

        ck_assert_int_eq(spam_hmm_cache_new(&c), 0);
        ck_assert_uint_eq(spam_hmm_cache_size(c), 0);
        for (unsigned pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                        const char *text = i < ELEMENTSOF(decode_cases) ? decode_cases[i].input :
                                                                          plain[i - ELEMENTSOF(decode_cases)];
                        Reports a = { .text = text, .len = strlen(text) }, b = a;
                        int ka, kb;

                        ka = spam_hmm_scan(h, text, a.len, on_word, &a);
                        kb = spam_hmm_scan_cached(h, c, text, b.len, on_word, &b);
                        ck_assert_msg(ka == kb, "pass %u, \"%s\": %d reports, with the cache %d", pass, text, ka, kb);
                        for (size_t k = 0; k < MIN(a.n, (size_t) REPORTS_MAX); k++) {
                                ck_assert_str_eq(a.word[k], b.word[k]);
                                ck_assert_str_eq(a.span[k], b.span[k]);
                                ck_assert(a.confidence[k] == b.confidence[k]);
                        }
                }
        ck_assert_uint_gt(spam_hmm_cache_size(c), 0);
}
END_TEST

/* What one model read as no word, another may read: a cache forgets all it holds when it
 * is used with a new build. */
START_TEST(test_cache_new_model)
{
        static const char* const small[] = { "the", "and", "buy", "now", "money", "today" };
        static const char text[] = "buy v1agra now";
        _cleanup_(spam_hmm_freep) SpamHmm *a = NULL, *b = lexicon_build();
        _cleanup_(spam_hmm_cache_freep) SpamHmmCache *c = NULL;
        Reports r = { .text = text, .len = strlen(text) };

        ck_assert_int_eq(spam_hmm_new(&a), 0);
        for (size_t i = 0; i < ELEMENTSOF(small); i++)
                ck_assert_int_eq(spam_hmm_add_word(a, small[i], 1000), 0);
        ck_assert_int_eq(spam_hmm_build(a), 0);
        ck_assert_int_eq(spam_hmm_cache_new(&c), 0);

        /* without "viagra" in the lexicon, nothing to read: remembered as such */
        ck_assert_int_eq(spam_hmm_scan_cached(a, c, text, r.len, on_word, &r), 0);
        ck_assert_uint_gt(spam_hmm_cache_size(c), 0);

        /* the other model has the word */
        r.n = 0;
        ck_assert_int_eq(spam_hmm_scan_cached(b, c, text, r.len, on_word, &r), 1);
        ck_assert_str_eq(r.word[0], "viagra");
        ck_assert_str_eq(r.span[0], "v1agra");
}
END_TEST

/* Plain words are looked up whatever their case and length (the look-up reads them eight
 * letters at a time); their disguises are read back. */
static const struct {
        const char *input;
        const char *word;               /* NULL: nothing reported */
} long_cases[] = {
        { "internationalization", NULL },
        { "INTERNATIONALIZATION", NULL },
        { "Internationalization", NULL },
        { "1nternationalization", "internationalization" },
        { "internati0nalization", "internationalization" },
        { "internationalizati0n", "internationalization" },
        { "internationalizattion", "internationalization" },
        { "pharmaceuticals", NULL },
        { "PHARMACEUTICALS", NULL },
        { "pharmaceutica1s", "pharmaceuticals" },
        { "pharmaceuticalls", "pharmaceuticals" },
        { "pharmaceutcals", "pharmaceuticals" },
        { "abc", NULL },
        { "ABCD", NULL },
        { "abcdefgh", NULL },
        { "ABCDEFGHI", NULL },
        { "the internationalization of pharmaceuticals", NULL },
        { "the INTERNATI0NALIZATION of pharmaceuticals", "internationalization" },
};

START_TEST(test_long_words)
{
        _cleanup_(spam_hmm_freep) SpamHmm *h = NULL;
        static const char *const words[] = {
                "the", "and", "abc", "abcd", "abcdefgh", "abcdefghi", "international", "nation",
        };

        ck_assert_int_eq(spam_hmm_new(&h), 0);
        ck_assert_int_eq(spam_hmm_add_word(h, "internationalization", 5000), 0);
        ck_assert_int_eq(spam_hmm_add_word(h, "pharmaceuticals", 5000), 0);
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                ck_assert_int_eq(spam_hmm_add_word(h, words[i], 100), 0);
        ck_assert_int_eq(spam_hmm_build(h), 0);

        for (size_t i = 0; i < ELEMENTSOF(long_cases); i++) {
                Reports r = {};
                int k;

                k = scan(h, long_cases[i].input, &r);
                if (!long_cases[i].word)
                        ck_assert_msg(k == 0, "\"%s\" gave %d (%s)", long_cases[i].input, k,
                                      r.n > 0 ? r.word[0] : "-");
                else {
                        ck_assert_msg(k == 1, "\"%s\" gave %d", long_cases[i].input, k);
                        ck_assert_str_eq(r.word[0], long_cases[i].word);
                }
        }
}
END_TEST

static Suite* spam_hmm_suite(void) {
        Suite *s = suite_create("spam-hmm");
        TCase *tc;

        tc = tcase_create("decode");
        tcase_add_test(tc, test_decode);
        tcase_add_test(tc, test_split_joined);
        tcase_add_test(tc, test_homoglyphs);
        tcase_add_test(tc, test_weighting);
        tcase_add_test(tc, test_repeated);
        tcase_add_test(tc, test_cache);
        tcase_add_test(tc, test_cache_new_model);
        tcase_add_test(tc, test_long_words);
        suite_add_tcase(s, tc);

        tc = tcase_create("false reports");
        tcase_add_test(tc, test_plain_not_reported);
        tcase_add_test(tc, test_clitics);
        tcase_add_test(tc, test_clean_text);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_lexicon);
        tcase_add_test(tc, test_lexicon_callback);
        tcase_add_test(tc, test_empty_lexicon);
        tcase_add_test(tc, test_not_utf8);
        tcase_add_test(tc, test_huge);
        tcase_add_test(tc, test_reuse);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(spam_hmm_suite);
