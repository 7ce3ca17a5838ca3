/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* RFC 5321 §4.2 replies and RFC 3463 enhanced status codes.
 *
 * Text is taken as the next hop sends it except for bytes that would be unsafe to carry
 * on: NUL, CR, LF and the other C0 controls but HTAB, and DEL are refused (-EBADMSG).
 * 8-bit bytes are kept: servers send UTF-8 text under SMTPUTF8 (RFC 6531 §3.7.4) and the
 * relay decides what to pass on. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp-reply.h"

static void lines_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

void smtp_reply_done(SmtpReply *r) {
        if (!r)
                return;
        lines_free(r->lines);
        *r = (SmtpReply) SMTP_REPLY_NULL;
}

int smtp_reply_copy(const SmtpReply *r, SmtpReply *ret) {
        SmtpReply c = *r;

        c.lines = calloc(r->n_lines + 1, sizeof(char*));
        if (!c.lines)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_lines; i++) {
                c.lines[i] = strdup(r->lines[i]);
                if (!c.lines[i]) {
                        lines_free(c.lines);
                        return -ENOMEM;
                }
        }
        *ret = c;
        return 0;
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* subject / detail = "0" / (%x31-39 0*2DIGIT). Returns bytes consumed or 0. */
static size_t parse_enh_number(const char *s, size_t len, unsigned *ret) {
        size_t n = 0;
        unsigned v = 0;

        while (n < len && n < 4 && is_digit(s[n])) {
                v = v * 10 + (unsigned) (s[n] - '0');
                n++;
        }
        if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
                return 0;
        *ret = v;
        return n;
}

static void parse_enhanced(SmtpReply *r, const char *text, size_t len) {
        unsigned class, subject, detail;
        size_t i = 0, n;

        /* class = "2" / "4" / "5", and it must agree with the reply code. */
        if (len < 5 || !strchr("245", text[0]) || text[0] == '\0' ||
            (unsigned) (text[0] - '0') != r->code / 100 || text[1] != '.')
                return;
        class = (unsigned) (text[0] - '0');
        i = 2;
        n = parse_enh_number(text + i, len - i, &subject);
        if (n == 0)
                return;
        i += n;
        if (i >= len || text[i] != '.')
                return;
        i++;
        n = parse_enh_number(text + i, len - i, &detail);
        if (n == 0)
                return;
        i += n;
        if (i < len && text[i] != ' ')
                return;

        r->has_enhanced = true;
        r->enh_class = class;
        r->enh_subject = subject;
        r->enh_detail = detail;
}

int smtp_reply_feed(SmtpReply *r, const char *line, size_t len) {
        unsigned code;
        bool last;
        const char *text;
        size_t text_len;
        char **l, *t;

        assert(r);
        assert(line || len == 0);

        if (r->complete)
                return -EALREADY;
        if (len > SMTP_REPLY_LINE_MAX)
                return -E2BIG;
        if (r->n_lines >= SMTP_REPLY_LINES_MAX)
                return -E2BIG;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) line[i];

                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return -EBADMSG;
        }

        if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
                return -EBADMSG;
        code = (unsigned) (line[0] - '0') * 100 + (unsigned) (line[1] - '0') * 10 +
                (unsigned) (line[2] - '0');
        if (code < 200 || code > 599)
                return -EBADMSG;
        if (r->n_lines > 0 && code != r->code)
                return -EBADMSG;

        if (len == 3) {
                last = true;
                text = line + 3;
                text_len = 0;
        } else if (line[3] == ' ' || line[3] == '-') {
                last = line[3] == ' ';
                text = line + 4;
                text_len = len - 4;
        } else
                return -EBADMSG;

        t = strndup(text, text_len);
        if (!t)
                return -ENOMEM;
        l = realloc(r->lines, (r->n_lines + 2) * sizeof(char*));
        if (!l) {
                free(t);
                return -ENOMEM;
        }
        l[r->n_lines] = t;
        l[r->n_lines + 1] = NULL;
        r->lines = l;

        if (r->n_lines == 0) {
                r->code = code;
                parse_enhanced(r, text, text_len);
        }
        r->n_lines++;
        r->complete = last;
        return last ? 1 : 0;
}

int smtp_reply_parse(const char *buf, SmtpReply *ret) {
        SmtpReply reply = SMTP_REPLY_NULL;
        const char *p;
        int r = 0;

        assert(buf);
        assert(ret);

        p = buf;
        if (!*p)
                return -EBADMSG;
        while (*p) {
                const char *eol = strstr(p, "\r\n");

                if (!eol || r > 0) {
                        /* unterminated line, or data after the final line */
                        smtp_reply_done(&reply);
                        return -EBADMSG;
                }
                r = smtp_reply_feed(&reply, p, (size_t) (eol - p));
                if (r < 0) {
                        smtp_reply_done(&reply);
                        return r;
                }
                p = eol + 2;
        }
        if (r == 0) {
                smtp_reply_done(&reply);
                return -EBADMSG;   /* ended on a continuation line */
        }

        *ret = reply;
        return 0;
}

bool smtp_reply_ehlo_has(const SmtpReply *r, const char *keyword, const char **ret_param) {
        size_t kl;

        if (!r || !keyword)
                return false;
        kl = strlen(keyword);

        for (size_t i = 1; i < r->n_lines; i++) {
                const char *l = r->lines[i], *param;

                if (strncasecmp(l, keyword, kl) != 0 || (l[kl] != '\0' && l[kl] != ' '))
                        continue;
                param = l + kl;
                while (*param == ' ')
                        param++;
                if (ret_param)
                        *ret_param = *param ? param : NULL;
                return true;
        }
        return false;
}
