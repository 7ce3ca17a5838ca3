/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "smtp-params.h"

static bool is_alpha(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

size_t smtp_utf8_char_len(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char*) s;
        unsigned char lo = 0x80, hi = 0xBF;
        size_t n;

        /* RFC 3629 §4 UTF8-2/3/4 only: no overlong forms, no surrogates, nothing above
         * U+10FFFF. ASCII is not "non-ASCII UTF-8" and is refused here too. */
        if (len == 0)
                return 0;
        if (p[0] >= 0xC2 && p[0] <= 0xDF)
                n = 2;
        else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
                n = 3;
                if (p[0] == 0xE0)
                        lo = 0xA0;
                else if (p[0] == 0xED)
                        hi = 0x9F;
        } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
                n = 4;
                if (p[0] == 0xF0)
                        lo = 0x90;
                else if (p[0] == 0xF4)
                        hi = 0x8F;
        } else
                return 0;

        if (len < n)
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xBF)
                        return 0;
        return n;
}

void smtp_params_done(SmtpParams *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_params; i++) {
                free(p->params[i].keyword);
                free(p->params[i].value);
        }
        free(p->params);
        *p = (SmtpParams) SMTP_PARAMS_NULL;
}

static bool keyword_char(char c) {
        return is_alpha(c) || is_digit(c) || c == '-';
}

/* esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 adds UTF8-non-ascii. Returns 0 or a
 * negative errno for the first offending byte. */
static int value_check(const char *s, size_t len, bool allow_utf8) {
        if (len == 0)
                return -EBADMSG;

        for (size_t i = 0; i < len;) {
                unsigned char c = (unsigned char) s[i];

                if (c >= 0x80) {
                        size_t n;

                        if (!allow_utf8)
                                return -EILSEQ;
                        n = smtp_utf8_char_len(s + i, len - i);
                        if (n == 0)
                                return -EILSEQ;
                        i += n;
                        continue;
                }
                if (c < 33 || c > 126 || c == '=')
                        return -EBADMSG;
                i++;
        }
        return 0;
}

int smtp_params_parse(const char *s, size_t len, bool allow_utf8, SmtpParams *ret) {
        _cleanup_(smtp_params_done) SmtpParams params = SMTP_PARAMS_NULL;
        size_t i = 0;
        int r;

        assert(s || len == 0);
        assert(ret);

        params.params = calloc(SMTP_PARAMS_MAX, sizeof(SmtpParam));
        if (!params.params)
                return -ENOMEM;

        for (;;) {
                size_t kw_start, kw_len, val_start = 0, val_len = 0;
                bool has_value = false;
                SmtpParam *param;

                while (i < len && s[i] == ' ')
                        i++;
                if (i >= len)
                        break;

                kw_start = i;
                if (!is_alpha(s[i]) && !is_digit(s[i]))
                        return (unsigned char) s[i] >= 0x80 ? -EILSEQ : -EBADMSG;
                while (i < len && keyword_char(s[i]))
                        i++;
                kw_len = i - kw_start;

                if (i < len && s[i] == '=') {
                        i++;
                        has_value = true;
                        val_start = i;
                        while (i < len && s[i] != ' ')
                                i++;
                        val_len = i - val_start;
                        r = value_check(s + val_start, val_len, allow_utf8);
                        if (r < 0)
                                return r;
                } else if (i < len && s[i] != ' ')
                        return (unsigned char) s[i] >= 0x80 ? -EILSEQ : -EBADMSG;

                for (size_t j = 0; j < params.n_params; j++)
                        if (strlen(params.params[j].keyword) == kw_len &&
                            strncasecmp(params.params[j].keyword, s + kw_start, kw_len) == 0)
                                return -ENOTUNIQ;

                if (params.n_params >= SMTP_PARAMS_MAX)
                        return -E2BIG;

                param = &params.params[params.n_params];
                param->keyword = strndup(s + kw_start, kw_len);
                if (!param->keyword)
                        return -ENOMEM;
                if (has_value) {
                        param->value = strndup(s + val_start, val_len);
                        if (!param->value) {
                                free(param->keyword);
                                param->keyword = NULL;
                                return -ENOMEM;
                        }
                }
                params.n_params++;
        }

        if (params.n_params == 0) {
                free(params.params);
                params.params = NULL;
        }

        *ret = params;
        params = (SmtpParams) SMTP_PARAMS_NULL;
        return 0;
}

const SmtpParam* smtp_params_find(const SmtpParams *p, const char *keyword) {
        if (!p || !keyword)
                return NULL;
        for (size_t i = 0; i < p->n_params; i++)
                if (strcasecmp(p->params[i].keyword, keyword) == 0)
                        return &p->params[i];
        return NULL;
}

int smtp_param_parse_size(const char *value, uint64_t *ret) {
        uint64_t v = 0;

        if (!value || !*value)
                return -EBADMSG;

        for (const char *p = value; *p; p++) {
                unsigned d;

                if (!is_digit(*p))
                        return -EBADMSG;
                d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }

        if (ret)
                *ret = v;
        return 0;
}

static const char* const smtp_body_table[_SMTP_BODY_MAX] = {
        [SMTP_BODY_7BIT]       = "7BIT",
        [SMTP_BODY_8BITMIME]   = "8BITMIME",
        [SMTP_BODY_BINARYMIME] = "BINARYMIME",
};

SmtpBody smtp_body_from_string(const char *s) {
        if (!s)
                return _SMTP_BODY_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(smtp_body_table); i++)
                if (strcasecmp(smtp_body_table[i], s) == 0)
                        return (SmtpBody) i;
        return _SMTP_BODY_INVALID;
}

static bool is_hexchar_upper(char c) {
        return is_digit(c) || (c >= 'A' && c <= 'F');
}

/* RFC 3461 §4: xtext = *( xchar / hexchar ), xchar = "!".."~" except "+" and "=",
 * hexchar = "+" 2(DIGIT / "A".."F"). Empty xtext is refused: every use is a non-empty
 * esmtp-value. */
static bool xtext_valid_n(const char *s, size_t len) {
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c == '+') {
                        if (len - i < 3 || !is_hexchar_upper(s[i + 1]) || !is_hexchar_upper(s[i + 2]))
                                return false;
                        i += 2;
                } else if (c < 33 || c > 126 || c == '=')
                        return false;
        }
        return true;
}

bool smtp_xtext_valid(const char *s) {
        return s && xtext_valid_n(s, strlen(s));
}

bool smtp_notify_valid(const char *s) {
        static const char* const words[] = { "SUCCESS", "FAILURE", "DELAY" };
        unsigned seen = 0;

        if (!s || !*s)
                return false;
        if (strcasecmp(s, "NEVER") == 0)
                return true;

        for (const char *p = s;;) {
                size_t n = strcspn(p, ",");
                bool found = false;

                for (size_t i = 0; i < ELEMENTSOF(words); i++)
                        if (strlen(words[i]) == n && strncasecmp(words[i], p, n) == 0) {
                                if (seen & (1u << i))
                                        return false;   /* repeated */
                                seen |= 1u << i;
                                found = true;
                        }
                if (!found)
                        return false;   /* also catches empty elements and NEVER in a list */
                if (p[n] == '\0')
                        return true;
                p += n + 1;
        }
}

bool smtp_ret_valid(const char *s) {
        return s && (strcasecmp(s, "FULL") == 0 || strcasecmp(s, "HDRS") == 0);
}

static bool atext_char(char c) {
        return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 3461 §4.2: ORCPT=addr-type ";" xtext, addr-type = atom ("rfc822", "utf-8"). The
 * RFC 6533 utf-8-addr-xtext form is plain xtext for "utf-8" once it is encoded, so both
 * are checked as xtext. */
bool smtp_orcpt_valid(const char *s) {
        const char *semi;

        if (!s)
                return false;
        semi = strchr(s, ';');
        if (!semi || semi == s)
                return false;
        for (const char *p = s; p < semi; p++)
                if (!atext_char(*p))
                        return false;
        return xtext_valid_n(semi + 1, strlen(semi + 1));
}
