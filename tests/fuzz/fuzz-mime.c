/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-mime: a message through the streaming MIME parser (mime_parser_feed/finish), with
 * base64, quoted-printable, charsets, encoded words, RFC 2231 parameters and HTML. Twice:
 * whole with the default limits, then with small limits taken from the first bytes and
 * fed in chunks whose sizes also come from the input. The event stream of the first run
 * is hashed and must not change when the same message is fed in chunks of one byte and of
 * varying sizes; every TEXT and HEADER event must be valid UTF-8. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "html-text.h"
#include "mime-decode.h"
#include "mime.h"

/* Messages the filter reads are capped well below this; 1 MiB keeps runs fast. */
#define FUZZ_MIME_INPUT_MAX ((size_t) 1024U * 1024U)

typedef struct State {
        uint64_t hash;
        unsigned depth_max;
        unsigned limit_depth;
} State;

static void hash_bytes(State *s, const void *p, size_t n) {
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                s->hash = (s->hash ^ b[i]) * UINT64_C(0x100000001b3);
}

static bool utf8_valid(const char *p, size_t n) {
        MimeBuffer b = MIME_BUFFER_NULL;
        MimeConverter v = { .kind = MIME_CHARSET_UTF8 };
        ssize_t k;

        k = mime_converter_feed(&v, p, n, true, &b);
        mime_buffer_done(&b);
        return k == (ssize_t) n && v.replaced == 0;
}

static int on_event(const MimeEvent *e, void *userdata) {
        State *s = userdata;
        uint32_t t = (uint32_t) e->type;

        if (e->part->depth > s->limit_depth)
                abort();
        hash_bytes(s, &t, sizeof(t));
        hash_bytes(s, &e->part->index, sizeof(e->part->index));
        switch (e->type) {
        case MIME_EVENT_PART_BEGIN:
                if (!e->part->content_type)
                        abort();
                hash_bytes(s, e->part->content_type, strlen(e->part->content_type));
                break;
        case MIME_EVENT_HEADER:
                if (strlen(e->data) != e->size || !utf8_valid(e->data, e->size))
                        abort();
                hash_bytes(s, e->name, strlen(e->name));
                hash_bytes(s, e->data, e->size);
                break;
        case MIME_EVENT_TEXT:
                if (e->size == 0 || !utf8_valid(e->data, e->size))
                        abort();
                /* TEXT chunk boundaries are part of the contract too */
                hash_bytes(s, &e->size, sizeof(e->size));
                hash_bytes(s, e->data, e->size);
                break;
        case MIME_EVENT_URL:
                if (e->size == 0 || e->size > 255 || e->rest_size > HTML_TAG_MAX || (e->rest_size > 0 && !e->rest))
                        abort();
                hash_bytes(s, e->data, e->size);
                hash_bytes(s, e->rest, e->rest_size);
                break;
        case MIME_EVENT_MARKUP:
                /* an element name, from HTML only */
                if (!e->part->is_html || e->size == 0 || e->size > HTML_NAME_MAX || strlen(e->data) != e->size)
                        abort();
                hash_bytes(s, e->data, e->size);
                break;
        case MIME_EVENT_COMMENT:
                /* the text of an HTML comment, within the bound, never cut inside a character */
                if (!e->part->is_html || e->size > HTML_COMMENT_MAX || !utf8_valid(e->data, e->size))
                        abort();
                hash_bytes(s, e->data, e->size);
                break;
        case MIME_EVENT_PART_END:
                hash_bytes(s, &e->part->defects, sizeof(e->part->defects));
                hash_bytes(s, &e->part->insertions, sizeof(e->part->insertions));
                hash_bytes(s, &e->part->text_bytes, sizeof(e->part->text_bytes));
                /* the longest raw line, however the input was cut, within the raw body */
                if (e->part->line_max > e->part->body_bytes)
                        abort();
                hash_bytes(s, &e->part->line_max, sizeof(e->part->line_max));
                break;
        default:
                abort();
        }
        return 0;
}

/* chunks: NULL feeds everything at once; otherwise chunk sizes cycle through it. */
static uint64_t run(const uint8_t *data, size_t size, const MimeLimits *limits, const uint8_t *chunks,
                    size_t n_chunks, unsigned *ret_defects) {
        MimeParser *p = NULL;
        State s = {
                .hash = UINT64_C(0xcbf29ce484222325),
                .limit_depth = limits ? limits->max_depth : MIME_LIMITS_DEFAULT.max_depth,
        };
        size_t i = 0, c = 0;

        if (mime_parser_new(limits, on_event, &s, &p) < 0)
                abort();
        mime_parser_set_markup(p, true);
        mime_parser_set_comments(p, true);
        while (i < size) {
                size_t k = chunks ? (size_t) chunks[c++ % n_chunks] % 64 + 1 : size;

                k = k < size - i ? k : size - i;
                if (mime_parser_feed(p, data + i, k) < 0)
                        abort();        /* only -ENOMEM could fail */
                i += k;
        }
        if (mime_parser_finish(p) < 0)
                abort();
        *ret_defects = mime_parser_defects(p);
        mime_parser_free(p);
        return s.hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint8_t one = 0;
        MimeLimits limits;
        unsigned d1, d2;
        uint64_t h1, h2;

        if (size > FUZZ_MIME_INPUT_MAX)
                return 0;

        h1 = run(data, size, NULL, NULL, 0, &d1);
        h2 = run(data, size, NULL, &one, 1, &d2);
        if (h1 != h2 || d1 != d2)
                abort();
        if (size >= 64 && size <= 64 * 1024) {
                h2 = run(data, size, NULL, data, 16, &d2);
                if (h1 != h2 || d1 != d2)
                        abort();
        }

        if (size >= 6) {
                limits = (MimeLimits) {
                        .max_depth = data[0] % 8 + 1,
                        .max_parts = data[1] % 32 + 1,
                        .max_header_bytes = (size_t) data[2] * 8 + 1,
                        .max_text_bytes = (uint64_t) data[3] * 16 + 1,
                        .max_line = (size_t) data[4] * 4 + 1,
                };
                h1 = run(data + 6, size - 6, &limits, NULL, 0, &d1);
                h2 = run(data + 6, size - 6, &limits, data, 6, &d2);
                if (h1 != h2 || d1 != d2)
                        abort();
        }
        return 0;
}
