/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "dkim-signature.h"
#include "string-util.h"

static const char* const algorithm_table[_DKIM_ALGORITHM_MAX] = {
        [DKIM_ALGORITHM_RSA_SHA256] = "rsa-sha256",
        [DKIM_ALGORITHM_ED25519_SHA256] = "ed25519-sha256",
        [DKIM_ALGORITHM_RSA_SHA1] = "rsa-sha1",
};

static const char* const canon_table[_DKIM_CANON_MAX] = {
        [DKIM_CANON_SIMPLE] = "simple",
        [DKIM_CANON_RELAXED] = "relaxed",
};

const char* dkim_algorithm_to_string(DkimAlgorithm a) {
        if (a < 0 || a >= _DKIM_ALGORITHM_MAX)
                return NULL;
        return algorithm_table[a];
}

DkimAlgorithm dkim_algorithm_from_string(const char *s, size_t len) {
        for (DkimAlgorithm a = 0; a < _DKIM_ALGORITHM_MAX; a++)
                if (strlen(algorithm_table[a]) == len && strncasecmp(algorithm_table[a], s, len) == 0)
                        return a;
        return _DKIM_ALGORITHM_INVALID;
}

const char* dkim_canon_to_string(DkimCanon c) {
        if (c < 0 || c >= _DKIM_CANON_MAX)
                return NULL;
        return canon_table[c];
}

static DkimCanon canon_from_string(const char *s, size_t len) {
        for (DkimCanon c = 0; c < _DKIM_CANON_MAX; c++)
                if (strlen(canon_table[c]) == len && strncasecmp(canon_table[c], s, len) == 0)
                        return c;
        return _DKIM_CANON_INVALID;
}

/* Character classes of the tag-list grammar (RFC 6376 §3.2), looked up once per byte. */
enum {
        CC_FWS = 1 << 0,                /* SP, HTAB, CR, LF */
        CC_ALPHA = 1 << 1,
        CC_DIGIT = 1 << 2,
        CC_VALCHAR = 1 << 3,            /* %x21-3A / %x3C-7E, and bytes above 0x7e (see below) */
};

/* VALCHAR is %x21-3A / %x3C-7E; bytes above 0x7e are let through (some key records carry
 * 8-bit notes in n=), the tags we interpret check their own syntax. */
static const uint8_t char_class[256] = {
        [' '] = CC_FWS, ['\t'] = CC_FWS, ['\r'] = CC_FWS, ['\n'] = CC_FWS,
        [0x21 ... 0x2f] = CC_VALCHAR,
        ['0' ... '9'] = CC_VALCHAR | CC_DIGIT,
        [':'] = CC_VALCHAR,
        [0x3c ... 0x40] = CC_VALCHAR,
        ['A' ... 'Z'] = CC_VALCHAR | CC_ALPHA,
        [0x5b ... 0x60] = CC_VALCHAR,
        ['a' ... 'z'] = CC_VALCHAR | CC_ALPHA,
        [0x7b ... 0x7e] = CC_VALCHAR,
        [0x80 ... 0xff] = CC_VALCHAR,
};

static bool has_class(char c, uint8_t mask) {
        return char_class[(uint8_t) c] & mask;
}

static bool is_fws(char c) {
        return has_class(c, CC_FWS);
}

static bool is_alpha(char c) {
        return has_class(c, CC_ALPHA);
}

static bool is_digit(char c) {
        return has_class(c, CC_DIGIT);
}

/* Base64 (RFC 4648 §4): a digit d is stored as d + 1, so that 0, the value of every byte
 * not listed, means "not base64". */
enum {
        B64_FWS = 65,
        B64_PAD = 66,
};

static const uint8_t b64_table[256] = {
        ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
        ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
        ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
        ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
        ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
        ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
        ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
        ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
        ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
        [' '] = B64_FWS, ['\t'] = B64_FWS, ['\r'] = B64_FWS, ['\n'] = B64_FWS,
        ['='] = B64_PAD,
};


int dkim_tag_list_next(const char *s, size_t len, size_t *offset, DkimTag *ret, const char **ret_reason) {
        size_t i, name_start, name_end, region_start, value_start, value_end;

        assert(s || len == 0);
        assert(offset);
        assert(ret);
        assert(ret_reason);

        i = *offset;
        while (i < len && is_fws(s[i]))
                i++;
        if (i >= len) {
                *offset = len;
                return 0;
        }

        name_start = i;
        if (!is_alpha(s[i])) {
                *ret_reason = s[i] == ';' ? "empty tag in tag list" : "tag name does not start with a letter";
                return -EBADMSG;
        }
        while (i < len && (has_class(s[i], CC_ALPHA | CC_DIGIT) || s[i] == '_'))
                i++;
        name_end = i;
        while (i < len && is_fws(s[i]))
                i++;
        if (i >= len || s[i] != '=') {
                *ret_reason = "tag without '='";
                return -EBADMSG;
        }
        i++;
        region_start = i;
        while (i < len && is_fws(s[i]))
                i++;
        value_start = value_end = i;
        while (i < len && s[i] != ';') {
                uint8_t k = char_class[(uint8_t) s[i]];

                if (k & CC_VALCHAR)
                        value_end = i + 1;
                else if (!(k & CC_FWS)) {
                        *ret_reason = "invalid character in tag value";
                        return -EBADMSG;
                }
                i++;
        }

        *ret = (DkimTag) {
                .name = s + name_start,
                .name_len = name_end - name_start,
                .value = s + value_start,
                .value_len = value_end - value_start,
                .region_start = region_start,
                .region_end = i,
        };
        *offset = i < len ? i + 1 : len;
        return 1;
}

int dkim_base64_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0, pad = 0, k = 0;
        uint32_t acc = 0;

        assert(s || len == 0);
        assert(ret);
        assert(ret_len);

        buf = malloc(len / 4 * 3 + 4);
        if (!buf)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++) {
                uint8_t v;

                /* Four digits at once while nothing else comes: the bulk of a key or a
                 * signature. */
                if (k == 0 && pad == 0)
                        while (i + 4 <= len) {
                                uint8_t a = (uint8_t) (b64_table[(uint8_t) s[i]] - 1),
                                        b = (uint8_t) (b64_table[(uint8_t) s[i + 1]] - 1),
                                        c = (uint8_t) (b64_table[(uint8_t) s[i + 2]] - 1),
                                        d = (uint8_t) (b64_table[(uint8_t) s[i + 3]] - 1);

                                if ((a | b | c | d) >= 64)      /* 0xff: not base64 */
                                        break;
                                acc = (uint32_t) a << 18 | (uint32_t) b << 12 | (uint32_t) c << 6 | d;
                                buf[n++] = (uint8_t) (acc >> 16);
                                buf[n++] = (uint8_t) (acc >> 8);
                                buf[n++] = (uint8_t) acc;
                                i += 4;
                        }
                if (i >= len)
                        break;
                acc = k == 0 ? 0 : acc;

                v = b64_table[(uint8_t) s[i]];
                if (v == B64_FWS)
                        continue;
                if (v == B64_PAD) {
                        pad++;
                        if (pad > 2)
                                return -EBADMSG;
                        continue;
                }
                if (pad > 0)            /* data after padding */
                        return -EBADMSG;
                if (v == 0)
                        return -EBADMSG;
                acc = (acc << 6) | (uint32_t) (v - 1);
                k++;
                if (k == 4) {
                        buf[n++] = (uint8_t) (acc >> 16);
                        buf[n++] = (uint8_t) (acc >> 8);
                        buf[n++] = (uint8_t) acc;
                        acc = 0;
                        k = 0;
                }
        }

        /* k data characters are left over; the padding must complete the quantum. */
        if (k == 1)
                return -EBADMSG;
        if (k == 0 && pad != 0)
                return -EBADMSG;
        if (k == 2) {
                if (pad != 2 && pad != 0)
                        return -EBADMSG;
                if (acc & 0xf)
                        return -EBADMSG;
                buf[n++] = (uint8_t) (acc >> 4);
        } else if (k == 3) {
                if (pad != 1 && pad != 0)
                        return -EBADMSG;
                if (acc & 0x3)
                        return -EBADMSG;
                buf[n++] = (uint8_t) (acc >> 10);
                buf[n++] = (uint8_t) (acc >> 2);
        }
        buf[n] = 0;

        *ret_len = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int dkim_base64_encode(const uint8_t *p, size_t len, char **ret) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out, *o;

        assert(p || len == 0);
        assert(ret);

        out = o = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;
                size_t rem = len - i;

                if (rem > 1)
                        v |= (uint32_t) p[i + 1] << 8;
                if (rem > 2)
                        v |= p[i + 2];
                *o++ = alphabet[(v >> 18) & 63];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = rem > 1 ? alphabet[(v >> 6) & 63] : '=';
                *o++ = rem > 2 ? alphabet[v & 63] : '=';
        }
        *o = 0;

        *ret = out;
        return 0;
}

bool dkim_domain_is_valid(const char *s, size_t len, bool allow_underscore) {
        size_t label = 0;

        if (len == 0 || len > 253)
                return false;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (c == '.') {
                        if (label == 0)
                                return false;
                        label = 0;
                        continue;
                }
                if (!(is_alpha(c) || is_digit(c) || c == '-' || (allow_underscore && c == '_')))
                        return false;
                if (++label > 63)
                        return false;
        }
        return label > 0;
}

static int strdup_lower(const char *s, size_t len, char **ret) {
        char *p;

        p = strndup(s, len);
        if (!p)
                return -ENOMEM;
        for (char *q = p; *q; q++)
                *q = (char) tolower((unsigned char) *q);
        *ret = p;
        return 0;
}

/* Decimal without sign, at most max_digits digits (t= and x= have 12, l= 76, but any
 * value above 2^64 is useless to us and refused). */
static int parse_decimal(const char *s, size_t len, size_t max_digits, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > max_digits)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                if (!is_digit(s[i]))
                        return -EBADMSG;
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        *ret = v;
        return 0;
}

DkimSignature* dkim_signature_free(DkimSignature *s) {
        if (!s)
                return NULL;
        free(s->signature);
        free(s->body_hash);
        free(s->domain);
        free(s->selector);
        if (s->headers)
                for (size_t i = 0; i < s->n_headers; i++)
                        free(s->headers[i]);
        free(s->headers);
        free(s->identity);
        free(s->identity_domain);
        free(s->copied_headers);
        free(s);
        return NULL;
}

static int parse_headers(DkimSignature *sig, const char *v, size_t len, const char **ret_reason) {
        size_t i = 0;
        bool from = false;

        sig->headers = calloc(DKIM_SIGNATURE_MAX_HEADERS, sizeof(char*));
        if (!sig->headers)
                return -ENOMEM;

        for (;;) {
                size_t start, end;

                while (i < len && is_fws(v[i]))
                        i++;
                start = i;
                while (i < len && v[i] != ':' && !is_fws(v[i])) {
                        unsigned char c = (unsigned char) v[i];
                        if (c < 0x21 || c > 0x7e) {
                                *ret_reason = "invalid header name in h=";
                                return -EBADMSG;
                        }
                        i++;
                }
                end = i;
                while (i < len && is_fws(v[i]))
                        i++;
                if (end == start) {
                        *ret_reason = "empty header name in h=";
                        return -EBADMSG;
                }
                if (sig->n_headers >= DKIM_SIGNATURE_MAX_HEADERS) {
                        *ret_reason = "too many header names in h=";
                        return -EBADMSG;
                }
                sig->headers[sig->n_headers] = strndup(v + start, end - start);
                if (!sig->headers[sig->n_headers])
                        return -ENOMEM;
                if (end - start == 4 && strncasecmp(v + start, "from", 4) == 0)
                        from = true;
                sig->n_headers++;

                if (i >= len)
                        break;
                if (v[i] != ':') {
                        *ret_reason = "header names in h= not separated by ':'";
                        return -EBADMSG;
                }
                i++;
        }

        if (!from) {
                *ret_reason = "From is not signed (h= lacks from)";
                return -EBADMSG;
        }
        return 0;
}

static bool colon_list_contains(const char *v, size_t len, const char *word) {
        size_t i = 0, wl = strlen(word);

        while (i <= len) {
                size_t start, end;

                while (i < len && is_fws(v[i]))
                        i++;
                start = i;
                while (i < len && v[i] != ':')
                        i++;
                end = i;
                while (end > start && is_fws(v[end - 1]))
                        end--;
                if (end - start == wl && strncasecmp(v + start, word, wl) == 0)
                        return true;
                i++;
        }
        return false;
}

enum {
        SEEN_V = 1 << 0, SEEN_A = 1 << 1, SEEN_B = 1 << 2, SEEN_BH = 1 << 3, SEEN_C = 1 << 4,
        SEEN_D = 1 << 5, SEEN_H = 1 << 6, SEEN_I = 1 << 7, SEEN_L = 1 << 8, SEEN_Q = 1 << 9,
        SEEN_S = 1 << 10, SEEN_T = 1 << 11, SEEN_X = 1 << 12, SEEN_Z = 1 << 13,
};

static const struct {
        const char *name;
        unsigned flag;
} known_tags[] = {
        { "v", SEEN_V }, { "a", SEEN_A }, { "b", SEEN_B }, { "bh", SEEN_BH }, { "c", SEEN_C },
        { "d", SEEN_D }, { "h", SEEN_H }, { "i", SEEN_I }, { "l", SEEN_L }, { "q", SEEN_Q },
        { "s", SEEN_S }, { "t", SEEN_T }, { "x", SEEN_X }, { "z", SEEN_Z },
};

static int parse_tag(DkimSignature *sig, unsigned flag, const DkimTag *t, const char **ret_reason) {
        const char *v = t->value;
        size_t n = t->value_len;
        int r;

        switch (flag) {
        case SEEN_V:
                if (n != 1 || v[0] != '1') {
                        *ret_reason = "unsupported signature version (v= must be 1)";
                        return -EBADMSG;
                }
                return 0;

        case SEEN_A:
                sig->algorithm = dkim_algorithm_from_string(v, n);
                if (sig->algorithm < 0) {
                        *ret_reason = "unknown signing algorithm in a=";
                        return -EBADMSG;
                }
                return 0;

        case SEEN_B:
                r = dkim_base64_decode(v, n, &sig->signature, &sig->signature_len);
                if (r == -EBADMSG || (r >= 0 && sig->signature_len == 0)) {
                        *ret_reason = r < 0 ? "b= is not valid base64" : "b= is empty";
                        return -EBADMSG;
                }
                if (r < 0)
                        return r;
                sig->b_region_start = t->region_start;
                sig->b_region_end = t->region_end;
                return 0;

        case SEEN_BH:
                r = dkim_base64_decode(v, n, &sig->body_hash, &sig->body_hash_len);
                if (r == -EBADMSG || (r >= 0 && sig->body_hash_len == 0)) {
                        *ret_reason = r < 0 ? "bh= is not valid base64" : "bh= is empty";
                        return -EBADMSG;
                }
                return r;

        case SEEN_C: {
                const char *slash = memchr(v, '/', n);
                size_t hl = slash ? (size_t) (slash - v) : n;

                sig->header_canon = canon_from_string(v, hl);
                sig->body_canon = slash ? canon_from_string(slash + 1, n - hl - 1) : DKIM_CANON_SIMPLE;
                if (sig->header_canon < 0 || sig->body_canon < 0) {
                        *ret_reason = "unknown canonicalization in c=";
                        return -EBADMSG;
                }
                return 0;
        }

        case SEEN_D:
                if (!dkim_domain_is_valid(v, n, /* allow_underscore= */ false)) {
                        *ret_reason = "d= is not a valid domain name";
                        return -EBADMSG;
                }
                return strdup_lower(v, n, &sig->domain);

        case SEEN_H:
                return parse_headers(sig, v, n, ret_reason);

        case SEEN_I: {
                const char *at = memrchr(v, '@', n);

                if (!at) {
                        *ret_reason = "i= has no '@'";
                        return -EBADMSG;
                }
                if (!dkim_domain_is_valid(at + 1, n - (size_t) (at + 1 - v), /* allow_underscore= */ false)) {
                        *ret_reason = "i= domain is not a valid domain name";
                        return -EBADMSG;
                }
                sig->identity = strndup(v, n);
                if (!sig->identity)
                        return -ENOMEM;
                return strdup_lower(at + 1, n - (size_t) (at + 1 - v), &sig->identity_domain);
        }

        case SEEN_L:
                r = parse_decimal(v, n, 76, &sig->length);
                if (r < 0) {
                        *ret_reason = "l= is not a valid length";
                        return -EBADMSG;
                }
                sig->has_length = true;
                return 0;

        case SEEN_Q:
                if (!colon_list_contains(v, n, "dns/txt")) {
                        *ret_reason = "q= does not offer dns/txt";
                        return -EBADMSG;
                }
                return 0;

        case SEEN_S:
                if (!dkim_domain_is_valid(v, n, /* allow_underscore= */ true)) {
                        *ret_reason = "s= is not a valid selector";
                        return -EBADMSG;
                }
                return strdup_lower(v, n, &sig->selector);

        case SEEN_T:
                if (parse_decimal(v, n, 12, &sig->timestamp) < 0) {
                        *ret_reason = "t= is not a valid timestamp";
                        return -EBADMSG;
                }
                sig->has_timestamp = true;
                return 0;

        case SEEN_X:
                if (parse_decimal(v, n, 12, &sig->expiration) < 0) {
                        *ret_reason = "x= is not a valid timestamp";
                        return -EBADMSG;
                }
                sig->has_expiration = true;
                return 0;

        case SEEN_Z:
                sig->copied_headers = strndup(v, n);
                return sig->copied_headers ? 0 : -ENOMEM;
        }

        assert(false);
        return -EINVAL;
}

int dkim_signature_parse(const char *value, size_t len, DkimSignature **ret, const char **ret_reason) {
        _cleanup_(dkim_signature_freep) DkimSignature *sig = NULL;
        const char *reason = NULL;
        unsigned seen = 0;
        size_t offset = 0;
        int r;

        assert(value || len == 0);
        assert(ret);

        if (!ret_reason)
                ret_reason = &reason;

        if (len > DKIM_SIGNATURE_VALUE_MAX) {
                *ret_reason = "signature field too long";
                return -EBADMSG;
        }

        sig = calloc(1, sizeof(DkimSignature));
        if (!sig)
                return -ENOMEM;
        sig->header_canon = sig->body_canon = DKIM_CANON_SIMPLE;

        for (;;) {
                DkimTag t;
                unsigned flag = 0;

                r = dkim_tag_list_next(value, len, &offset, &t, ret_reason);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                for (size_t k = 0; k < ELEMENTSOF(known_tags); k++)
                        if (strlen(known_tags[k].name) == t.name_len &&
                            memcmp(known_tags[k].name, t.name, t.name_len) == 0) {
                                flag = known_tags[k].flag;
                                break;
                        }
                if (flag == 0)          /* unknown tags are ignored (§3.2) */
                        continue;
                if (seen & flag) {
                        *ret_reason = "duplicate tag in signature";
                        return -EBADMSG;
                }
                seen |= flag;

                r = parse_tag(sig, flag, &t, ret_reason);
                if (r < 0)
                        return r;
        }

        static const struct {
                unsigned flag;
                const char *reason;
        } required[] = {
                { SEEN_V, "missing v= tag" }, { SEEN_A, "missing a= tag" }, { SEEN_B, "missing b= tag" },
                { SEEN_BH, "missing bh= tag" }, { SEEN_D, "missing d= tag" }, { SEEN_H, "missing h= tag" },
                { SEEN_S, "missing s= tag" },
        };
        for (size_t k = 0; k < ELEMENTSOF(required); k++)
                if (!(seen & required[k].flag)) {
                        *ret_reason = required[k].reason;
                        return -EBADMSG;
                }

        if (sig->identity) {
                size_t il = strlen(sig->identity_domain), dl = strlen(sig->domain);

                if (!(il == dl && streq(sig->identity_domain, sig->domain)) &&
                    !(il > dl && sig->identity_domain[il - dl - 1] == '.' &&
                      streq(sig->identity_domain + il - dl, sig->domain))) {
                        *ret_reason = "i= domain is not d= or a subdomain of it";
                        return -EBADMSG;
                }
        } else {
                r = asprintf_safe(&sig->identity, "@%s", sig->domain);
                if (r < 0)
                        return r;
                sig->identity_domain = strdup(sig->domain);
                if (!sig->identity_domain)
                        return -ENOMEM;
        }

        if (sig->has_timestamp && sig->has_expiration && sig->expiration <= sig->timestamp) {
                *ret_reason = "x= is not after t=";
                return -EBADMSG;
        }

        if (IN_SET(sig->algorithm, DKIM_ALGORITHM_RSA_SHA256, DKIM_ALGORITHM_ED25519_SHA256) &&
            sig->body_hash_len != 32) {
                *ret_reason = "bh= has the wrong length for SHA-256";
                return -EBADMSG;
        }
        if (sig->algorithm == DKIM_ALGORITHM_ED25519_SHA256 && sig->signature_len != 64) {
                *ret_reason = "b= has the wrong length for Ed25519";
                return -EBADMSG;
        }

        *ret = TAKE_PTR(sig);
        return 0;
}
