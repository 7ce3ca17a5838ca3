/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* RFC 5322 §2.2 / §3.6.8 header fields, with the obsolete syntax of §4.5 that real mail
 * still carries: WSP between the field name and the colon (obs-optional), whitespace-only
 * continuation lines (obs-FWS). Field names are ftext (printable ASCII but ':'); values
 * are taken as they are, 8-bit and control bytes included: deciding about them is the
 * job of whoever interprets a field, and refusing a whole message for an odd byte in,
 * say, an X- header would lose mail. A line is at most limits->max_line bytes without
 * its line end. A header block that ends at the end of the buffer without an empty line
 * is accepted (its last field may lack a line end). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rfc5322.h"

static bool is_wsp(char c) {
        return c == ' ' || c == '\t';
}

/* Find the line starting at pos: *ret_content = bytes before the line end, *ret_next =
 * start of the next line (after CRLF or LF; == len when the buffer ends first). */
static void line_at(const char *buf, size_t len, size_t pos, size_t *ret_content, size_t *ret_next) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end;

        if (!nl) {
                *ret_content = len - pos;
                *ret_next = len;
                return;
        }
        end = (size_t) (nl - buf);
        *ret_next = end + 1;
        if (end > pos && buf[end - 1] == '\r')
                end--;
        *ret_content = end - pos;
}

int rfc5322_field_next(const char *buf, size_t len, const Rfc5322Limits *limits,
                       size_t *offset, size_t *n, Rfc5322Field *ret) {
        static const Rfc5322Limits default_limits = RFC5322_LIMITS_DEFAULT;
        size_t pos, content, next, name_len, colon, field_end, value_end;

        assert(buf || len == 0);
        assert(offset);
        assert(ret);

        if (!limits)
                limits = &default_limits;

        pos = *offset;
        if (pos >= len) {
                *offset = len;
                return 0;
        }

        line_at(buf, len, pos, &content, &next);
        if (content > limits->max_line)
                return -E2BIG;
        if (content == 0) {
                /* The empty line (or a lone line end at the end of the buffer). */
                *offset = next;
                return 0;
        }
        if (is_wsp(buf[pos]))
                return -EBADMSG;   /* continuation without a field */

        /* field-name = 1*ftext, ftext = %d33-57 / %d59-126 */
        name_len = 0;
        while (name_len < content) {
                unsigned char c = (unsigned char) buf[pos + name_len];

                if (c < 33 || c > 126 || c == ':')
                        break;
                name_len++;
        }
        colon = name_len;
        while (colon < content && is_wsp(buf[pos + colon]))
                colon++;
        if (name_len == 0 || colon >= content || buf[pos + colon] != ':')
                return -EBADMSG;

        if (n && *n >= limits->max_fields)
                return -E2BIG;

        /* Take continuation lines. */
        value_end = pos + content;
        field_end = next;
        while (field_end < len && is_wsp(buf[field_end])) {
                line_at(buf, len, field_end, &content, &next);
                if (content > limits->max_line)
                        return -E2BIG;
                value_end = field_end + content;
                field_end = next;
                if (field_end - pos > limits->max_field)
                        return -E2BIG;
        }
        if (field_end - pos > limits->max_field)
                return -E2BIG;

        *ret = (Rfc5322Field) {
                .name = buf + pos,
                .name_len = name_len,
                .value = buf + pos + colon + 1,
                .value_len = value_end - (pos + colon + 1),
                .raw_offset = pos,
                .raw_len = field_end - pos,
        };
        if (n)
                (*n)++;
        *offset = field_end;
        return 1;
}

bool rfc5322_field_is(const Rfc5322Field *f, const char *name) {
        if (!f || !name)
                return false;
        return strlen(name) == f->name_len && strncasecmp(f->name, name, f->name_len) == 0;
}

int rfc5322_unfold(const char *value, size_t len, char **ret) {
        size_t start = 0, end = len, o = 0;
        char *s;

        assert(value || len == 0);
        assert(ret);

        s = malloc(len + 1);
        if (!s)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++) {
                /* Drop a line end (CRLF or LF) that is followed by WSP, keep the WSP. */
                if (value[i] == '\r' && i + 2 < len && value[i + 1] == '\n' && is_wsp(value[i + 2])) {
                        i++;
                        continue;
                }
                if (value[i] == '\n' && i + 1 < len && is_wsp(value[i + 1]))
                        continue;
                s[o++] = value[i];
        }

        end = o;
        while (end > 0 && is_wsp(s[end - 1]))
                end--;
        while (start < end && is_wsp(s[start]))
                start++;
        memmove(s, s + start, end - start);
        s[end - start] = '\0';

        *ret = s;
        return 0;
}
