/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Runs Dominic Sayers' is_email address vectors (smtp-address-isemail/tests.xml) through
 * smtp_mailbox_parse(), the parser of the Mailbox in MAIL FROM / RCPT TO.
 *
 * Category mapping (see smtp-address-isemail/PROVENANCE.md):
 *   ISEMAIL_VALID_CATEGORY, ISEMAIL_DNSWARN, ISEMAIL_RFC5321  -> valid envelope Mailbox
 *     (DNSWARN only records that a 2010-2016 DNS lookup failed; the syntax is fine)
 *   ISEMAIL_CFWS, ISEMAIL_DEPREC, ISEMAIL_RFC5322, ISEMAIL_ERR -> invalid
 *     (comments, folding white space, obsolete forms such as "a".b local parts or
 *     quoted-pairs of control characters, RFC 5322 domain literals and over-long parts
 *     are all outside RFC 5321 §4.1.2; mailsec allows none of the legacy forms)
 *
 * Each vector is parsed twice, without and with SMTP_PATH_UTF8: the vectors are ASCII
 * (one has U+00A9 after a backslash, invalid either way), so the verdict must not
 * change. Vectors whose verdict mailsec deliberately does not follow are listed in
 * exceptions[] with the reason and counted as skipped.
 *
 * The XML is simple and fixed (PROVENANCE.md), so a small reader does: <test id="N">
 * elements with <address> (possibly <address/>) and <category>; the entities &amp; &lt;
 * &gt; &quot; &apos; and &#x..; / &#..; are decoded, and U+2400..U+241F stand for the
 * control characters 0x00..0x1F. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-address.h"

static const struct {
        unsigned id;
        const char *reason;
} exceptions[] = {
        /* none: every vector's category is followed */
        { 0, NULL },
};

static const char* exception_reason(unsigned id) {
        for (size_t i = 0; i < ELEMENTSOF(exceptions); i++)
                if (exceptions[i].reason && exceptions[i].id == id)
                        return exceptions[i].reason;
        return NULL;
}

static int read_file(const char *path, char **ret) {
        FILE *f;
        char *buf = NULL;
        size_t n = 0, cap = 0;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        for (;;) {
                size_t k;

                if (cap - n < 4096) {
                        char *b = realloc(buf, cap + 65536);
                        if (!b) {
                                free(buf);
                                fclose(f);
                                return -ENOMEM;
                        }
                        buf = b;
                        cap += 65536;
                }
                k = fread(buf + n, 1, cap - n - 1, f);
                n += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        buf[n] = '\0';
        *ret = buf;
        return 0;
}

/* Append code point cp as UTF-8, or as the control byte it stands for. */
static size_t put_cp(char *o, unsigned long cp) {
        if (cp >= 0x2400 && cp <= 0x241F) {
                o[0] = (char) (cp - 0x2400);
                return 1;
        }
        if (cp < 0x80) {
                o[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (char) (0xC0 | (cp >> 6));
                o[1] = (char) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (char) (0xE0 | (cp >> 12));
                o[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                o[2] = (char) (0x80 | (cp & 0x3F));
                return 3;
        }
        o[0] = (char) (0xF0 | (cp >> 18));
        o[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char) (0x80 | (cp & 0x3F));
        return 4;
}

/* Decode the text s[0..len) into out (at least len + 1 bytes); returns the length or -1. */
static long decode_text(const char *s, size_t len, char *out) {
        size_t o = 0;

        for (size_t i = 0; i < len;) {
                if (s[i] != '&') {
                        /* a literal U+24xx in UTF-8 is E2 90 80..9F */
                        if (len - i >= 3 && (unsigned char) s[i] == 0xE2 && (unsigned char) s[i + 1] == 0x90 &&
                            (unsigned char) s[i + 2] >= 0x80 && (unsigned char) s[i + 2] <= 0x9F) {
                                out[o++] = (char) ((unsigned char) s[i + 2] - 0x80);
                                i += 3;
                                continue;
                        }
                        out[o++] = s[i++];
                        continue;
                }
                const char *semi = memchr(s + i, ';', len - i);
                if (!semi)
                        return -1;
                size_t n = (size_t) (semi - (s + i)) + 1;
                static const struct { const char *name; char c; } named[] = {
                        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
                };
                bool done = false;
                for (size_t k = 0; k < ELEMENTSOF(named); k++)
                        if (strlen(named[k].name) == n && memcmp(named[k].name, s + i, n) == 0) {
                                out[o++] = named[k].c;
                                done = true;
                        }
                if (!done) {
                        unsigned long cp;
                        char *end;

                        if (n < 4 || s[i + 1] != '#')
                                return -1;
                        if (s[i + 2] == 'x' || s[i + 2] == 'X')
                                cp = strtoul(s + i + 3, &end, 16);
                        else
                                cp = strtoul(s + i + 2, &end, 10);
                        if (end != semi || cp > 0x10FFFF)
                                return -1;
                        o += put_cp(out + o, cp);
                }
                i += n;
        }
        out[o] = '\0';
        return (long) o;
}

/* Find <tag>text</tag> or <tag/> inside [s, e); ret_text and ret_len give the raw text. */
static bool find_element(const char *s, const char *e, const char *tag, const char **ret_text, size_t *ret_len) {
        char open[32], empty[32], close[32];
        const char *p, *q;

        snprintf(open, sizeof(open), "<%s>", tag);
        snprintf(empty, sizeof(empty), "<%s/>", tag);
        snprintf(close, sizeof(close), "</%s>", tag);

        p = memmem(s, (size_t) (e - s), empty, strlen(empty));
        if (p) {
                *ret_text = p;
                *ret_len = 0;
                return true;
        }
        p = memmem(s, (size_t) (e - s), open, strlen(open));
        if (!p)
                return false;
        p += strlen(open);
        q = memmem(p, (size_t) (e - p), close, strlen(close));
        if (!q)
                return false;
        *ret_text = p;
        *ret_len = (size_t) (q - p);
        return true;
}

static int expected_valid(const char *cat, size_t len) {
        static const struct { const char *name; bool valid; } map[] = {
                { "ISEMAIL_VALID_CATEGORY", true },
                { "ISEMAIL_DNSWARN",        true },
                { "ISEMAIL_RFC5321",        true },
                { "ISEMAIL_CFWS",           false },
                { "ISEMAIL_DEPREC",         false },
                { "ISEMAIL_RFC5322",        false },
                { "ISEMAIL_ERR",            false },
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strlen(map[i].name) == len && memcmp(map[i].name, cat, len) == 0)
                        return map[i].valid;
        return -1;
}

static void print_escaped(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c >= 0x7f || c == '\\')
                        printf("\\x%02x", c);
                else
                        putchar(c);
        }
}

int main(int argc, char *argv[]) {
        unsigned passed = 0, failed = 0, skipped = 0;
        char *xml = NULL;
        const char *p;
        int r;

        if (argc != 2) {
                fprintf(stderr, "Usage: %s TESTS.XML\n", argv[0]);
                return EXIT_FAILURE;
        }
        r = read_file(argv[1], &xml);
        if (r < 0) {
                fprintf(stderr, "Failed to read %s: %s\n", argv[1], strerror(-r));
                return EXIT_FAILURE;
        }

        for (p = xml; (p = strstr(p, "<test id=\"")); ) {
                const char *end = strstr(p, "</test>"), *text, *cat;
                size_t text_len, cat_len;
                unsigned id = (unsigned) strtoul(p + strlen("<test id=\""), NULL, 10);
                const char *reason;
                char *addr;
                long addr_len;
                int valid;

                if (!end || !find_element(p, end, "address", &text, &text_len) ||
                    !find_element(p, end, "category", &cat, &cat_len)) {
                        fprintf(stderr, "Test %u: malformed element\n", id);
                        free(xml);
                        return EXIT_FAILURE;
                }
                valid = expected_valid(cat, cat_len);
                addr = malloc(text_len + 1);
                if (!addr) {
                        free(xml);
                        return EXIT_FAILURE;
                }
                addr_len = decode_text(text, text_len, addr);
                if (valid < 0 || addr_len < 0) {
                        fprintf(stderr, "Test %u: cannot decode address or category\n", id);
                        free(addr);
                        free(xml);
                        return EXIT_FAILURE;
                }

                bool ok = true;
                int results[2];
                for (int k = 0; k < 2; k++) {
                        SmtpPath path = SMTP_PATH_NULL;

                        results[k] = smtp_mailbox_parse(addr, (size_t) addr_len, k ? SMTP_PATH_UTF8 : 0, &path);
                        if ((results[k] >= 0) != valid)
                                ok = false;
                        if (results[k] >= 0 && strlen(path.mailbox) != (size_t) addr_len)
                                ok = false;
                        smtp_path_done(&path);
                }

                reason = exception_reason(id);
                if (reason) {
                        skipped++;
                        printf("SKIP %u %.*s: %s\n", id, (int) cat_len, cat, reason);
                } else if (ok)
                        passed++;
                else {
                        failed++;
                        printf("FAIL %u [", id);
                        print_escaped(addr, (size_t) addr_len);
                        printf("] %.*s: expected %s, got %d / %d (UTF-8)\n", (int) cat_len, cat,
                               valid ? "valid" : "invalid", results[0], results[1]);
                }
                free(addr);
                p = end;
        }
        free(xml);

        if (passed + failed + skipped == 0) {
                fprintf(stderr, "No test vectors found in %s\n", argv[1]);
                return EXIT_FAILURE;
        }
        printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
        return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
