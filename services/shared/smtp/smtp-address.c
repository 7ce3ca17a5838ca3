/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* RFC 5321 §4.1.2 Path and Mailbox, RFC 6531 §3.3 for SMTPUTF8.
 *
 * Decisions worth knowing:
 *  - General-address-literal ("[tag:content]" other than IPv6) is refused: no standardized
 *    tag besides IPv6 exists and nothing could deliver to one.
 *  - IPv4 literals and the IPv4 tail of IPv6 literals are checked with inet_pton(), which
 *    refuses leading zeros in an octet ("01"); RFC 5321's Snum allows them, but they are
 *    ambiguous (octal) and no real client sends them.
 *  - IPv6 literals follow RFC 5321's own grammar on top of inet_pton(): "::" stands for
 *    at least two groups (at most 6 explicit groups with "::", 4 before an IPv4 tail).
 *  - Length limits (RFC 5321 §4.5.3.1): local part 64 octets as sent (quotes and
 *    backslashes count), domain 255 octets, a whole path 256 octets including "<", ">" and
 *    any source route, so a mailbox is at most 254 octets. Labels are at most 63 octets
 *    (RFC 1035); U-labels are only bounded by the domain limit, as their A-label form is
 *    computed by whoever resolves them.
 *  - With SMTP_PATH_UTF8, UTF8-non-ascii is allowed in atoms, quoted strings (not after a
 *    backslash: quoted-pairSMTP stays ASCII) and domain labels (U-labels, LDH rules for
 *    the ASCII characters). Without it any 8-bit byte gives -EILSEQ. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "smtp-address.h"

static bool is_alpha(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_hex(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_atext(char c) {
        return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

void smtp_path_done(SmtpPath *p) {
        if (!p)
                return;
        free(p->mailbox);
        *p = (SmtpPath) SMTP_PATH_NULL;
}

typedef struct Parser {
        const char *s;
        size_t len;
        size_t i;
        SmtpPathFlags flags;
        bool utf8;
} Parser;

static bool at_end(const Parser *p) {
        return p->i >= p->len;
}

static char peek(const Parser *p) {
        return at_end(p) ? '\0' : p->s[p->i];
}

static bool peek_8bit(const Parser *p) {
        return !at_end(p) && (unsigned char) p->s[p->i] >= 0x80;
}

/* Consume one UTF8-non-ascii character at the cursor. */
static int take_utf8(Parser *p) {
        size_t n;

        if (!(p->flags & SMTP_PATH_UTF8))
                return -EILSEQ;
        n = smtp_utf8_char_len(p->s + p->i, p->len - p->i);
        if (n == 0)
                return -EILSEQ;
        p->i += n;
        p->utf8 = true;
        return 0;
}

/* Dot-string / Quoted-string. */
static int parse_local_part(Parser *p) {
        size_t start = p->i;
        int r;

        if (peek(p) == '"') {
                p->i++;
                for (;;) {
                        unsigned char c;

                        if (at_end(p))
                                return -EBADMSG;
                        c = (unsigned char) p->s[p->i];
                        if (c == '"') {
                                p->i++;
                                break;
                        }
                        if (c == '\\') {
                                /* quoted-pairSMTP = %d92 %d32-126 */
                                p->i++;
                                if (at_end(p))
                                        return -EBADMSG;
                                c = (unsigned char) p->s[p->i];
                                if (c >= 0x80)
                                        return (p->flags & SMTP_PATH_UTF8) ? -EBADMSG : -EILSEQ;
                                if (c < 32 || c > 126)
                                        return -EBADMSG;
                                p->i++;
                        } else if (c >= 0x80) {
                                r = take_utf8(p);
                                if (r < 0)
                                        return r;
                        } else if (c >= 32 && c <= 126)   /* qtextSMTP: all but '"' and '\' */
                                p->i++;
                        else
                                return -EBADMSG;
                }
        } else {
                for (;;) {
                        size_t atom = p->i;

                        for (;;) {
                                if (peek_8bit(p)) {
                                        r = take_utf8(p);
                                        if (r < 0)
                                                return r;
                                } else if (is_atext(peek(p)))
                                        p->i++;
                                else
                                        break;
                        }
                        if (p->i == atom)
                                return -EBADMSG;   /* empty atom: leading, trailing or ".." */
                        if (peek(p) != '.')
                                break;
                        p->i++;
                }
        }

        if (p->i - start > SMTP_LOCAL_PART_MAX)
                return -E2BIG;
        return 0;
}

/* sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str] (or a U-label). Stops at
 * the first character that cannot continue the domain. */
static int parse_dot_domain(Parser *p) {
        size_t start = p->i;
        int r;

        for (;;) {
                size_t label = p->i;
                bool last_hyphen = false;

                for (;;) {
                        char c = peek(p);

                        if (peek_8bit(p)) {
                                r = take_utf8(p);
                                if (r < 0)
                                        return r;
                                last_hyphen = false;
                        } else if (is_alpha(c) || is_digit(c)) {
                                p->i++;
                                last_hyphen = false;
                        } else if (c == '-') {
                                if (p->i == label)
                                        return -EBADMSG;   /* label starts with '-' */
                                p->i++;
                                last_hyphen = true;
                        } else
                                break;
                }
                if (p->i == label || last_hyphen)
                        return -EBADMSG;
                if (p->i - label > 63) {
                        bool ascii = true;

                        for (size_t j = label; j < p->i; j++)
                                if ((unsigned char) p->s[j] >= 0x80)
                                        ascii = false;
                        if (ascii)
                                return -E2BIG;
                }
                if (peek(p) != '.')
                        break;
                p->i++;
        }

        if (p->i - start > SMTP_DOMAIN_MAX)
                return -E2BIG;
        return 0;
}

static bool ipv4_valid(const char *s, size_t len) {
        char buf[16];
        struct in_addr a;

        if (len >= sizeof(buf))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!is_digit(s[i]) && s[i] != '.')
                        return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        return inet_pton(AF_INET, buf, &a) == 1;
}

static bool ipv6_valid(const char *s, size_t len) {
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a;
        size_t groups = 0, colons = 0;
        bool compressed = false, v4 = false;

        if (len == 0 || len >= sizeof(buf))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
                        return false;

        /* RFC 5321's IPv6-addr counts: 8 groups uncompressed (6 before an IPv4 tail), at
         * most 6 explicit groups around "::" (4 with an IPv4 tail). */
        for (size_t i = 0; i < len;) {
                if (s[i] == ':') {
                        colons++;
                        if (i + 1 < len && s[i + 1] == ':') {
                                if (compressed)
                                        return false;
                                compressed = true;
                                i += 2;
                                continue;
                        }
                        i++;
                        continue;
                }
                size_t j = i;
                while (j < len && s[j] != ':')
                        j++;
                if (memchr(s + i, '.', j - i)) {
                        if (j != len)
                                return false;
                        v4 = true;
                } else
                        groups++;
                i = j;
        }
        if (compressed) {
                if (groups > (v4 ? 4u : 6u))
                        return false;
        } else if (groups != (v4 ? 6u : 8u))
                return false;

        memcpy(buf, s, len);
        buf[len] = '\0';
        return inet_pton(AF_INET6, buf, &a) == 1;
}

/* Domain = dot-domain / address-literal */
static int parse_domain(Parser *p, bool *ret_literal) {
        size_t start = p->i;

        if (peek(p) != '[') {
                *ret_literal = false;
                return parse_dot_domain(p);
        }

        p->i++;
        size_t content = p->i;
        while (!at_end(p) && p->s[p->i] != ']') {
                unsigned char c = (unsigned char) p->s[p->i];

                /* dcontent = %d33-90 / %d94-126 */
                if (c >= 0x80)
                        return (p->flags & SMTP_PATH_UTF8) ? -EBADMSG : -EILSEQ;
                if (c < 33 || c > 126 || c == '[' || c == '\\')
                        return -EBADMSG;
                p->i++;
        }
        if (at_end(p))
                return -EBADMSG;
        size_t content_len = p->i - content;
        p->i++;   /* ']' */

        if (p->i - start > SMTP_DOMAIN_MAX)
                return -E2BIG;

        if (content_len > 5 && strncasecmp(p->s + content, "IPv6:", 5) == 0) {
                if (!ipv6_valid(p->s + content + 5, content_len - 5))
                        return -EBADMSG;
        } else if (!ipv4_valid(p->s + content, content_len))
                return -EBADMSG;   /* also every General-address-literal */

        *ret_literal = true;
        return 0;
}

static int mailbox_build(const Parser *p, size_t start, size_t local_len, bool literal,
                         bool postmaster, SmtpPath *ret) {
        char *m;

        m = strndup(p->s + start, p->i - start);
        if (!m)
                return -ENOMEM;
        *ret = (SmtpPath) {
                .mailbox = m,
                .local_len = local_len,
                .is_postmaster = postmaster,
                .utf8 = p->utf8,
                .address_literal = literal,
        };
        return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ), cursor left after it. */
static int parse_mailbox(Parser *p, SmtpPath *ret) {
        size_t start = p->i, local_len;
        bool literal;
        int r;

        r = parse_local_part(p);
        if (r < 0)
                return r;
        local_len = p->i - start;
        if (peek(p) != '@')
                return peek_8bit(p) && !(p->flags & SMTP_PATH_UTF8) ? -EILSEQ : -EBADMSG;
        p->i++;
        r = parse_domain(p, &literal);
        if (r < 0)
                return r;
        if (p->i - start > SMTP_PATH_MAX - 2)
                return -E2BIG;

        return mailbox_build(p, start, local_len, literal, /* postmaster= */ false, ret);
}

static bool is_postmaster_at(const Parser *p) {
        return p->len - p->i >= STRLEN("Postmaster>") &&
                strncasecmp(p->s + p->i, "Postmaster>", STRLEN("Postmaster>")) == 0;
}

int smtp_path_parse(const char *s, size_t len, SmtpPathFlags flags, SmtpPath *ret, size_t *ret_consumed) {
        _cleanup_(smtp_path_done) SmtpPath path = SMTP_PATH_NULL;
        Parser p = { .s = s, .len = len, .flags = flags };
        int r;

        assert(s || len == 0);
        assert(ret);

        if (peek(&p) != '<')
                return -EBADMSG;
        p.i++;

        if (peek(&p) == '>') {
                if (!(flags & SMTP_PATH_ALLOW_NULL))
                        return -EBADMSG;
                path.mailbox = strdup("");
                if (!path.mailbox)
                        return -ENOMEM;
                path.is_null = true;
                p.i++;
                goto done;
        }

        if ((flags & SMTP_PATH_ALLOW_POSTMASTER) && is_postmaster_at(&p)) {
                p.i += STRLEN("Postmaster");
                r = mailbox_build(&p, 1, STRLEN("Postmaster"), false, /* postmaster= */ true, &path);
                if (r < 0)
                        return r;
                p.i++;
                goto done;
        }

        /* A-d-l = At-domain *( "," At-domain ) ":", accepted and dropped (RFC 5321 §4.1.2,
         * Appendix C). */
        if (peek(&p) == '@') {
                for (;;) {
                        bool literal;

                        p.i++;   /* '@' */
                        r = parse_domain(&p, &literal);
                        if (r < 0)
                                return r;
                        if (peek(&p) == ':') {
                                p.i++;
                                break;
                        }
                        if (peek(&p) != ',')
                                return -EBADMSG;
                        p.i++;
                        if (peek(&p) != '@')
                                return -EBADMSG;
                }
                if (p.i > SMTP_PATH_MAX)
                        return -E2BIG;
        }

        r = parse_mailbox(&p, &path);
        if (r < 0)
                return r;
        if (peek(&p) != '>')
                return peek_8bit(&p) && !(flags & SMTP_PATH_UTF8) ? -EILSEQ : -EBADMSG;
        p.i++;

done:
        if (p.i > SMTP_PATH_MAX)
                return -E2BIG;
        if (ret_consumed)
                *ret_consumed = p.i;
        *ret = path;
        path = (SmtpPath) SMTP_PATH_NULL;
        return 0;
}

int smtp_mailbox_parse(const char *s, size_t len, SmtpPathFlags flags, SmtpPath *ret) {
        _cleanup_(smtp_path_done) SmtpPath path = SMTP_PATH_NULL;
        Parser p = { .s = s, .len = len, .flags = flags };
        int r;

        assert(s || len == 0);
        assert(ret);

        r = parse_mailbox(&p, &path);
        if (r < 0)
                return r;
        if (!at_end(&p))
                return peek_8bit(&p) && !(flags & SMTP_PATH_UTF8) ? -EILSEQ : -EBADMSG;

        *ret = path;
        path = (SmtpPath) SMTP_PATH_NULL;
        return 0;
}

void smtp_envelope_arg_done(SmtpEnvelopeArg *a) {
        if (!a)
                return;
        smtp_path_done(&a->path);
        smtp_params_done(&a->params);
}

/* Where the path that starts at s[0] == '<' ends (index after '>'), or 0. Only a quoted
 * string can hide a '>', so this needs to know nothing else of the grammar. */
static size_t path_end(const char *s, size_t len) {
        bool quoted = false;

        for (size_t i = 1; i < len; i++) {
                if (quoted) {
                        if (s[i] == '\\')
                                i++;
                        else if (s[i] == '"')
                                quoted = false;
                } else if (s[i] == '"')
                        quoted = true;
                else if (s[i] == '>')
                        return i + 1;
        }
        return 0;
}

static bool has_8bit_values(const SmtpParams *params) {
        for (size_t i = 0; i < params->n_params; i++)
                for (const char *c = params->params[i].value; c && *c; c++)
                        if ((unsigned char) *c >= 0x80)
                                return true;
        return false;
}

int smtp_envelope_arg_parse(const char *arg, size_t len, bool is_mail, SmtpPathFlags flags,
                            SmtpEnvelopeArg *ret) {
        _cleanup_(smtp_envelope_arg_done) SmtpEnvelopeArg a = SMTP_ENVELOPE_ARG_NULL;
        const char *prefix = is_mail ? "FROM:" : "TO:";
        size_t plen = strlen(prefix), i, end, consumed;
        bool utf8;
        int r;

        assert(arg || len == 0);
        assert(ret);

        if (len < plen || strncasecmp(arg, prefix, plen) != 0)
                return -EBADMSG;
        i = plen;
        if ((flags & SMTP_PATH_LENIENT_SPACE) && i < len && arg[i] == ' ')
                i++;
        if (i >= len || arg[i] != '<')
                return -EBADMSG;

        end = path_end(arg + i, len - i);
        if (end == 0)
                return -EBADMSG;

        /* Parameters: after one or more SP, or nothing. */
        size_t j = i + end;
        if (j < len && arg[j] != ' ')
                return (unsigned char) arg[j] >= 0x80 && !(flags & SMTP_PATH_UTF8) ? -EILSEQ : -EBADMSG;
        r = smtp_params_parse(arg + j, len - j, /* allow_utf8= */ true, &a.params);
        if (r < 0)
                return r;

        utf8 = flags & SMTP_PATH_UTF8;
        if (is_mail) {
                const SmtpParam *u = smtp_params_find(&a.params, "SMTPUTF8");

                if (u) {
                        if (u->value)
                                return -EBADMSG;   /* RFC 6531 §3.4: no value */
                        utf8 = true;
                }
        }
        if (!utf8 && has_8bit_values(&a.params))
                return -EILSEQ;

        flags &= ~(SMTP_PATH_ALLOW_NULL | SMTP_PATH_ALLOW_POSTMASTER | SMTP_PATH_UTF8);
        flags |= is_mail ? SMTP_PATH_ALLOW_NULL : SMTP_PATH_ALLOW_POSTMASTER;
        if (utf8)
                flags |= SMTP_PATH_UTF8;

        r = smtp_path_parse(arg + i, end, flags, &a.path, &consumed);
        if (r < 0)
                return r;
        if (consumed != end)
                return -EBADMSG;   /* a '>' the path grammar did not end on */

        *ret = a;
        a = (SmtpEnvelopeArg) SMTP_ENVELOPE_ARG_NULL;
        return 0;
}
