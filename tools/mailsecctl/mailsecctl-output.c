/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Output helpers of mailsecctl: JSON string literals, terminal-safe text, and the
 * "key: value" / JSON object writer of the local verbs (mailsecctl.h). */

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "mailsecctl.h"

/* Writes s as a JSON string literal (RFC 8259): quotes, backslash and control
 * characters are escaped; bytes >= 0x80 are passed through (sd-bus guarantees
 * UTF-8 for strings). */
void json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char*) (s ?: ""); *p; p++)
                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\b':
                        fputs("\\b", f);
                        break;
                case '\f':
                        fputs("\\f", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                fprintf(f, "\\u%04x", *p);
                        else
                                fputc(*p, f);
                }
        fputc('"', f);
}

/* Strings from the bus may carry anything a client sent (HELO names); keep the
 * terminal safe by replacing control characters. */
void text_string(FILE *f, const char *s, int width) {
        int n = 0;

        for (const unsigned char *p = (const unsigned char*) (s ?: ""); *p; p++, n++)
                fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
        for (; n < width; n++)
                fputc(' ', f);
}

static void output_key(Output *o, const char *key) {
        if (o->json) {
                if (!o->started) {
                        fputc('{', o->f);
                        o->started = true;
                        o->first[0] = true;
                }
                if (!o->first[o->depth])
                        fputc(',', o->f);
                o->first[o->depth] = false;
                if (key) {
                        json_string(o->f, key);
                        fputc(':', o->f);
                }
                return;
        }

        if (o->label) {
                char buf[128];

                snprintf(buf, sizeof(buf), "%s %s", o->label, key);
                fprintf(o->f, "%*s: ", o->width, buf);
        } else
                fprintf(o->f, "%*s: ", o->width, key);
}

void output_string(Output *o, const char *key, const char *value) {
        output_key(o, key);
        if (o->json) {
                if (value)
                        json_string(o->f, value);
                else
                        fputs("null", o->f);
        } else {
                text_string(o->f, value ?: "-", 0);
                fputc('\n', o->f);
        }
}

void output_unsigned(Output *o, const char *key, uint64_t value) {
        output_key(o, key);
        fprintf(o->f, o->json ? "%" PRIu64 : "%" PRIu64 "\n", value);
}

void output_bool(Output *o, const char *key, bool value) {
        output_key(o, key);
        if (o->json)
                fputs(value ? "true" : "false", o->f);
        else
                fputs(value ? "yes\n" : "no\n", o->f);
}

void output_array_begin(Output *o, const char *key) {
        if (!o->json)
                return;
        output_key(o, key);
        fputc('[', o->f);
        assert(o->depth + 1 < OUTPUT_DEPTH_MAX);
        o->first[++o->depth] = true;
}

void output_array_end(Output *o) {
        if (!o->json)
                return;
        assert(o->depth > 0);
        o->depth--;
        fputc(']', o->f);
}

void output_object_begin(Output *o, const char *label) {
        o->label = label;
        if (!o->json)
                return;
        output_key(o, NULL);
        fputc('{', o->f);
        assert(o->depth + 1 < OUTPUT_DEPTH_MAX);
        o->first[++o->depth] = true;
}

void output_object_end(Output *o) {
        o->label = NULL;
        if (!o->json)
                return;
        assert(o->depth > 0);
        o->depth--;
        fputc('}', o->f);
}

void output_end(Output *o) {
        if (!o->json)
                return;
        if (!o->started)
                fputc('{', o->f);
        fputs("}\n", o->f);
        o->started = false;
}
