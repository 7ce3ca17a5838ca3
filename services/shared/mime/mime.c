/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The streaming MIME reader (see mime.h).
 *
 * Input is cut into lines, or into pieces of limits.max_line bytes when a line is longer,
 * in the same places however it is fed: a piece either lies wholly in the caller's chunk
 * (and is used from there) or is assembled in p->line. Every later stage works on these
 * pieces, so the events do not depend on the chunking.
 *
 * Open entities (the message, its multiparts, nested messages, the current leaf part)
 * form a stack. A line starting with "--" is first compared with the boundaries of every
 * open multipart, innermost first: a match with an outer one closes the inner entities,
 * which is how a missing close-delimiter is tolerated. Other lines go to the top entity:
 * into its header block, or through the body pipeline of a leaf part
 *
 *     transfer decoding -> p->dec -> charset conversion -> [HTML reducer] -> p->text -> TEXT
 *
 * whose buffers are flushed by size, so memory stays bounded by the limits. The line end
 * before a delimiter belongs to the delimiter (RFC 2046 §5.1.1), so a leaf's line break
 * is only written out when the next body line arrives (pending_newline). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "html-text.h"
#include "mime-decode.h"
#include "mime.h"
#include "rfc5322.h"
#include "string-util.h"

#define DECODE_BATCH 4096U              /* transfer-decoded bytes converted at a time */
#define BOUNDARY_MAX 256U

typedef enum EntityState {
        ENTITY_HEADERS,
        ENTITY_BODY,                    /* a leaf part */
        ENTITY_PREAMBLE,                /* multipart, before the first delimiter */
        ENTITY_INSIDE,                  /* multipart, after a delimiter */
        ENTITY_EPILOGUE,                /* multipart, after the close-delimiter */
        ENTITY_MESSAGE,                 /* message/rfc822 with its nested message open */
        ENTITY_OPAQUE,                  /* body not looked into */
} EntityState;

typedef struct Entity {
        MimePart part;
        EntityState state;
        char *content_type;
        char *charset;
        char *filename;
        char *boundary;
        size_t boundary_len;
        bool digest;                    /* multipart/digest: children default to message/rfc822 */
        bool digest_child;
        uint64_t line_cur;              /* the raw body line being read, so far */
} Entity;

struct MimeParser {
        MimeLimits limits;
        MimeCallback cb;
        void *userdata;
        MimeCharsets *charsets;
        int error;
        bool finished;
        bool markup;                    /* MARKUP events wanted */
        bool comments;                  /* COMMENT events wanted */
        unsigned defects;

        Entity *stack;
        size_t n_stack;
        unsigned n_parts;
        uint64_t text_total;
        bool text_exhausted;

        /* line assembly */
        MimeBuffer line;
        bool line_cont;                 /* the previous piece had no line end */
        bool at_start;                  /* nothing read yet (an mbox "From " line is skipped) */

        /* header block of the top entity */
        MimeBuffer field;               /* the field being read, unfolded */
        bool field_dropped;
        MimeBuffer fields;              /* complete fields: name NUL value NUL, with lengths */
        size_t header_bytes;
        MimeBuffer scratch;

        /* body pipeline of the current leaf */
        bool text_active;
        bool pending_newline;
        Base64Decoder b64;
        QpDecoder qp;
        MimeConverter conv;
        HtmlText html;
        MimeBuffer dec;
        MimeBuffer utf8;
        MimeBuffer text;
};

static void defect(MimeParser *p, Entity *e, unsigned d) {
        p->defects |= d;
        if (e)
                e->part.defects |= d;
}

static Entity* top(MimeParser *p) {
        assert(p->n_stack > 0);
        return &p->stack[p->n_stack - 1];
}

static int dispatch(MimeParser *p, const MimeEvent *ev) {
        int r;

        if (!p->cb)
                return 0;
        r = p->cb(ev, p->userdata);
        return r < 0 ? r : 0;
}

static int emit(MimeParser *p, MimeEventType type, const Entity *e, const char *name, const char *data,
                size_t size) {
        return dispatch(p, &(MimeEvent) {
                .type = type,
                .part = &e->part,
                .name = name,
                .data = data,
                .size = size,
        });
}

static int on_html_markup(const char *element, size_t len, void *userdata);
static int on_html_comment(const char *text, size_t len, void *userdata);

static void entity_done(Entity *e) {
        free(e->content_type);
        free(e->charset);
        free(e->filename);
        free(e->boundary);
        *e = (Entity) {};
}

static void header_reset(MimeParser *p) {
        mime_buffer_clear(&p->field);
        mime_buffer_clear(&p->fields);
        p->field_dropped = false;
        p->header_bytes = 0;
}

static void entity_push(MimeParser *p, bool digest_child) {
        Entity *e;

        assert(p->n_stack <= p->limits.max_depth);

        e = &p->stack[p->n_stack++];
        *e = (Entity) {
                .state = ENTITY_HEADERS,
                .part.depth = (unsigned) p->n_stack - 1,
                .part.index = p->n_parts++,
                .digest_child = digest_child,
        };
        header_reset(p);
}

/* ---- header block ------------------------------------------------------------------ */

static bool is_wsp(char c) {
        return c == ' ' || c == '\t';
}

/* A complete field goes to p->fields as [size_t name_len][size_t value_len]name\0value\0. */
static int field_flush(MimeParser *p) {
        static const Rfc5322Limits unlimited = { .max_line = SIZE_MAX, .max_field = SIZE_MAX, .max_fields = SIZE_MAX };
        size_t offset = 0, lens[2], vl;
        Rfc5322Field f;
        int r;

        if (p->field.size == 0)
                return 0;

        r = rfc5322_field_next(p->field.data, p->field.size, &unlimited, &offset, NULL, &f);
        if (r <= 0) {
                mime_buffer_clear(&p->field);
                return 0;       /* the first line was checked when it arrived */
        }

        /* Trim the value (folds are already gone). */
        vl = f.value_len;
        while (vl > 0 && is_wsp(f.value[0])) {
                f.value++;
                vl--;
        }
        while (vl > 0 && is_wsp(f.value[vl - 1]))
                vl--;

        lens[0] = f.name_len;
        lens[1] = vl;
        r = mime_buffer_reserve(&p->fields, sizeof(lens) + f.name_len + vl + 2);
        if (r < 0)
                return r;
        /* f points into p->field, which is not touched by these appends. */
        (void) mime_buffer_append(&p->fields, lens, sizeof(lens));
        (void) mime_buffer_append(&p->fields, f.name, f.name_len);
        (void) mime_buffer_append(&p->fields, "", 1);
        (void) mime_buffer_append(&p->fields, f.value, vl);
        (void) mime_buffer_append(&p->fields, "", 1);
        mime_buffer_clear(&p->field);
        return 0;
}

static int field_append(MimeParser *p, Entity *e, const char *s, size_t n) {
        if (p->field_dropped)
                return 0;
        if (p->header_bytes + n + 2 > p->limits.max_header_bytes || p->header_bytes + n + 2 < n) {
                defect(p, e, MIME_DEFECT_HEADER_LIMIT);
                p->field_dropped = true;
                mime_buffer_clear(&p->field);
                return 0;
        }
        p->header_bytes += n + 2;
        return mime_buffer_append(&p->field, s, n);
}

typedef struct FieldView {
        const char *name;
        const char *value;
        size_t value_len;
} FieldView;

static bool field_iterate(const MimeBuffer *b, size_t *offset, FieldView *ret) {
        size_t lens[2];

        if (*offset >= b->size)
                return false;
        memcpy(lens, b->data + *offset, sizeof(lens));
        ret->name = b->data + *offset + sizeof(lens);
        ret->value = ret->name + lens[0] + 1;
        ret->value_len = lens[1];
        *offset += sizeof(lens) + lens[0] + lens[1] + 2;
        return true;
}

static unsigned header_defects_to_mime(unsigned d) {
        unsigned m = 0;

        if (d & MIME_HEADER_DEFECT_ENCODED_WORD)
                m |= MIME_DEFECT_ENCODED_WORD;
        if (d & MIME_HEADER_DEFECT_CHARSET)
                m |= MIME_DEFECT_CHARSET;
        if (d & MIME_HEADER_DEFECT_8BIT)
                m |= MIME_DEFECT_8BIT_HEADER;
        if (d & MIME_HEADER_DEFECT_PARAM)
                m |= MIME_DEFECT_PARAM;
        return m;
}

static bool content_type_valid(const char *t) {
        const char *slash = strchr(t, '/');

        if (!slash || slash == t || !slash[1] || strchr(slash + 1, '/'))
                return false;
        for (const char *c = t; *c; c++)
                if ((unsigned char) *c <= ' ' || (unsigned char) *c >= 0x7f || strchr("()<>@,;:\\\"[]?=", *c))
                        return false;
        return true;
}

static int entity_parse_content_headers(MimeParser *p, Entity *e, MimeEncoding *ret_encoding) {
        _cleanup_(mime_params_done) MimeParams ct = MIME_PARAMS_NULL, cd = MIME_PARAMS_NULL;
        bool have_ct = false, have_cd = false, have_cte = false;
        MimeEncoding encoding = MIME_ENCODING_7BIT;
        unsigned hd = 0;
        size_t offset = 0;
        FieldView f;
        const char *v;
        int r;

        while (field_iterate(&p->fields, &offset, &f)) {
                if (strcaseeq(f.name, "Content-Type")) {
                        if (have_ct) {
                                defect(p, e, MIME_DEFECT_CONTENT_TYPE);
                                continue;
                        }
                        have_ct = true;
                        r = mime_params_parse(p->charsets, f.value, f.value_len, &ct, &hd);
                        if (r < 0)
                                return r;
                } else if (strcaseeq(f.name, "Content-Disposition")) {
                        if (have_cd)
                                continue;
                        have_cd = true;
                        r = mime_params_parse(p->charsets, f.value, f.value_len, &cd, &hd);
                        if (r < 0)
                                return r;
                } else if (strcaseeq(f.name, "Content-Transfer-Encoding")) {
                        _cleanup_(mime_params_done) MimeParams cte = MIME_PARAMS_NULL;

                        if (have_cte)
                                continue;
                        have_cte = true;
                        r = mime_params_parse(p->charsets, f.value, f.value_len, &cte, NULL);
                        if (r < 0)
                                return r;
                        if (streq(cte.value, "base64"))
                                encoding = MIME_ENCODING_BASE64;
                        else if (streq(cte.value, "quoted-printable"))
                                encoding = MIME_ENCODING_QUOTED_PRINTABLE;
                        else if (streq(cte.value, "8bit"))
                                encoding = MIME_ENCODING_8BIT;
                        else if (streq(cte.value, "binary"))
                                encoding = MIME_ENCODING_BINARY;
                        else if (streq(cte.value, "7bit") || isempty(cte.value))
                                encoding = MIME_ENCODING_7BIT;
                        else {
                                defect(p, e, MIME_DEFECT_ENCODING);
                                encoding = MIME_ENCODING_8BIT;
                        }
                }
        }
        defect(p, e, header_defects_to_mime(hd & (MIME_HEADER_DEFECT_PARAM | MIME_HEADER_DEFECT_CHARSET)));

        if (have_ct && content_type_valid(ct.value))
                e->content_type = strdup(ct.value);
        else {
                if (have_ct)
                        defect(p, e, MIME_DEFECT_CONTENT_TYPE);
                e->content_type = strdup(e->digest_child ? "message/rfc822" : "text/plain");
        }
        if (!e->content_type)
                return -ENOMEM;

        v = mime_params_get(&ct, "charset");
        if (!isempty(v)) {
                e->charset = strdup(v);
                if (!e->charset)
                        return -ENOMEM;
                for (char *c = e->charset; *c; c++)
                        if (*c >= 'A' && *c <= 'Z')
                                *c = (char) (*c - 'A' + 'a');
        }
        v = mime_params_get(&ct, "boundary");
        if (!isempty(v) && strlen(v) <= BOUNDARY_MAX) {
                e->boundary = strdup(v);
                if (!e->boundary)
                        return -ENOMEM;
                e->boundary_len = strlen(v);
        }

        v = mime_params_get(&cd, "filename") ?: mime_params_get(&ct, "name");
        if (!isempty(v)) {
                e->filename = strdup(v);
                if (!e->filename)
                        return -ENOMEM;
        }
        if (have_cd)
                e->part.disposition = streq(cd.value, "inline") ? MIME_DISPOSITION_INLINE : MIME_DISPOSITION_ATTACHMENT;

        *ret_encoding = encoding;
        return 0;
}

static int emit_headers(MimeParser *p, Entity *e) {
        size_t offset = 0;
        FieldView f;
        int r;

        while (field_iterate(&p->fields, &offset, &f)) {
                unsigned hd = 0;

                mime_buffer_clear(&p->scratch);
                r = rfc2047_decode(p->charsets, f.value, f.value_len, &p->scratch, &hd);
                if (r < 0)
                        return r;
                defect(p, e, header_defects_to_mime(hd));
                r = emit(p, MIME_EVENT_HEADER, e, f.name, p->scratch.data ?: "", p->scratch.size);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int headers_done(MimeParser *p, Entity *e) {
        MimeEncoding encoding = MIME_ENCODING_7BIT;
        bool multipart, message;
        int r;

        r = field_flush(p);
        if (r < 0)
                return r;
        r = entity_parse_content_headers(p, e, &encoding);
        if (r < 0)
                return r;

        multipart = startswith(e->content_type, "multipart/");
        message = streq(e->content_type, "message/rfc822") || streq(e->content_type, "message/global");

        if (multipart && !e->boundary) {
                defect(p, e, MIME_DEFECT_NO_BOUNDARY);
                free(e->content_type);
                e->content_type = strdup("text/plain");
                if (!e->content_type)
                        return -ENOMEM;
                multipart = false;
        }
        if ((multipart || message) && !IN_SET(encoding, MIME_ENCODING_7BIT, MIME_ENCODING_8BIT, MIME_ENCODING_BINARY)) {
                /* RFC 2045 §6.4: composite types are never encoded. A multipart can still
                 * be read line by line; an encoded message is left alone. */
                defect(p, e, MIME_DEFECT_ENCODING);
                if (multipart)
                        encoding = MIME_ENCODING_7BIT;
        }

        e->part.content_type = e->content_type;
        e->part.charset = e->charset;
        e->part.filename = e->filename;
        e->part.encoding = encoding;
        e->part.is_html = streq(e->content_type, "text/html");
        e->digest = streq(e->content_type, "multipart/digest");

        if (multipart) {
                e->part.is_multipart = true;
                if (p->n_stack > p->limits.max_depth) {
                        defect(p, e, MIME_DEFECT_DEPTH_LIMIT);
                        e->state = ENTITY_OPAQUE;
                } else
                        e->state = ENTITY_PREAMBLE;
        } else if (message && IN_SET(encoding, MIME_ENCODING_7BIT, MIME_ENCODING_8BIT, MIME_ENCODING_BINARY)) {
                e->part.is_message = true;
                if (p->n_stack > p->limits.max_depth) {
                        defect(p, e, MIME_DEFECT_DEPTH_LIMIT);
                        e->state = ENTITY_OPAQUE;
                } else if (p->n_parts >= p->limits.max_parts) {
                        defect(p, e, MIME_DEFECT_PART_LIMIT);
                        e->state = ENTITY_OPAQUE;
                } else
                        e->state = ENTITY_MESSAGE;
        } else {
                e->state = ENTITY_BODY;
                e->part.is_text = startswith(e->content_type, "text/") && !p->text_exhausted;
        }

        r = emit(p, MIME_EVENT_PART_BEGIN, e, NULL, NULL, 0);
        if (r < 0)
                return r;
        r = emit_headers(p, e);
        if (r < 0)
                return r;
        header_reset(p);

        if (e->state == ENTITY_BODY) {
                p->text_active = e->part.is_text;
                p->pending_newline = false;
                p->b64 = BASE64_DECODER_NULL;
                p->qp = QP_DECODER_NULL;
                mime_buffer_clear(&p->dec);
                mime_buffer_clear(&p->utf8);
                mime_buffer_clear(&p->text);
                if (p->text_active) {
                        if (mime_converter_init(&p->conv, p->charsets, e->charset) == 0)
                                defect(p, e, MIME_DEFECT_CHARSET);
                        html_text_init(&p->html);
                        if (p->markup)
                                p->html.markup = on_html_markup;
                        if (p->comments)
                                p->html.comment = on_html_comment;
                }
        } else if (e->state == ENTITY_MESSAGE)
                entity_push(p, false);

        return 0;
}

/* ---- body pipeline ----------------------------------------------------------------- */

static int on_html_url(const char *host, size_t len, const char *rest, size_t rest_len, void *userdata) {
        MimeParser *p = userdata;
        Entity *e = top(p);

        e->part.urls++;
        return dispatch(p, &(MimeEvent) {
                .type = MIME_EVENT_URL,
                .part = &e->part,
                .data = host,
                .size = len,
                .rest = rest,
                .rest_size = rest_len,
        });
}

static int on_html_markup(const char *element, size_t len, void *userdata) {
        MimeParser *p = userdata;

        return emit(p, MIME_EVENT_MARKUP, top(p), NULL, element, len);
}

static int on_html_comment(const char *text, size_t len, void *userdata) {
        MimeParser *p = userdata;

        return emit(p, MIME_EVENT_COMMENT, top(p), NULL, text, len);
}

static bool is_text_space(char c) {
        return IN_SET(c, ' ', '\t', '\n', '\r', '\f', '\v');
}

/* Where a TEXT chunk of b may end: after the last whitespace among the last
 * MIME_TEXT_WORD_MAX bytes, else at the last character boundary. */
static size_t text_cut(const char *b, size_t n) {
        size_t i, lead;

        for (i = n; i > 0 && n - i <= MIME_TEXT_WORD_MAX; i--)
                if (is_text_space(b[i - 1]))
                        return i;

        /* No word end: cut before the last character unless it is complete. */
        lead = n;
        while (lead > 0 && n - lead < 4 && ((unsigned char) b[lead - 1] & 0xC0) == 0x80)
                lead--;
        if (lead == 0)
                return n;
        lead--;                         /* start of the last character */
        {
                unsigned char c = (unsigned char) b[lead];
                size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;

                return n - lead >= need ? n : lead;
        }
}

/* The longest prefix of b of at most max bytes that ends on a character boundary. */
static size_t utf8_prefix(const char *b, size_t n, size_t max) {
        size_t k = MIN(n, max);

        while (k > 0 && k < n && ((unsigned char) b[k] & 0xC0) == 0x80)
                k--;
        return k;
}

static int text_emit(MimeParser *p, Entity *e, bool final) {
        int r;

        while (p->text.size > 0 && p->text_active) {
                uint64_t left = p->limits.max_text_bytes - p->text_total;
                size_t k;

                if (final)
                        k = p->text.size;
                else if (p->text.size < MIME_TEXT_CHUNK)
                        break;
                else
                        k = text_cut(p->text.data, p->text.size);
                if (k == 0)
                        break;

                if (k > left) {
                        k = utf8_prefix(p->text.data, p->text.size, (size_t) left);
                        defect(p, e, MIME_DEFECT_TEXT_LIMIT);
                        p->text_exhausted = true;
                        p->text_active = false;
                }
                if (k > 0) {
                        r = emit(p, MIME_EVENT_TEXT, e, NULL, p->text.data, k);
                        if (r < 0)
                                return r;
                        p->text_total += k;
                        e->part.text_bytes += k;
                }
                mime_buffer_consume(&p->text, k);
        }
        if (!p->text_active)
                mime_buffer_clear(&p->text);
        return 0;
}

static int pipeline_flush(MimeParser *p, Entity *e, bool final) {
        ssize_t k;
        int r;

        if (!p->text_active)
                return 0;

        k = mime_converter_feed(&p->conv, p->dec.data ?: "", p->dec.size, final,
                                e->part.is_html ? &p->utf8 : &p->text);
        if (k < 0)
                return (int) k;
        mime_buffer_consume(&p->dec, (size_t) k);

        if (e->part.is_html) {
                r = html_text_feed(&p->html, p->utf8.data ?: "", p->utf8.size, &p->text, on_html_url, p);
                if (r < 0)
                        return r;
                mime_buffer_clear(&p->utf8);
                if (final) {
                        r = html_text_finish(&p->html, &p->text, on_html_url, p);
                        if (r < 0)
                                return r;
                }
        }

        return text_emit(p, e, final);
}

static int body_line(MimeParser *p, Entity *e, const char *s, size_t n, bool eol) {
        int r;

        if (!p->text_active)
                return 0;

        if (p->pending_newline) {
                r = mime_buffer_append(&p->dec, "\n", 1);
                if (r < 0)
                        return r;
                p->pending_newline = false;
        }

        switch (e->part.encoding) {
        case MIME_ENCODING_BASE64:
                r = mime_buffer_reserve(&p->dec, BASE64_DECODED_MAX(n));
                if (r < 0)
                        return r;
                p->dec.size += base64_decoder_feed(&p->b64, s, n, (uint8_t*) p->dec.data + p->dec.size);
                p->dec.data[p->dec.size] = '\0';
                break;
        case MIME_ENCODING_QUOTED_PRINTABLE:
                r = mime_buffer_reserve(&p->dec, n + 2);
                if (r < 0)
                        return r;
                p->dec.size += qp_decoder_feed_line(&p->qp, s, n, eol, p->dec.data + p->dec.size,
                                                    &p->pending_newline);
                p->dec.data[p->dec.size] = '\0';
                break;
        default:
                r = mime_buffer_append(&p->dec, s, n);
                if (r < 0)
                        return r;
                p->pending_newline = eol;
                break;
        }

        if (p->dec.size >= DECODE_BATCH)
                return pipeline_flush(p, e, false);
        return 0;
}

static int body_end(MimeParser *p, Entity *e) {
        char tail[4];
        size_t k;
        int r;

        if (!p->text_active)
                return 0;

        if (e->part.encoding == MIME_ENCODING_BASE64) {
                k = base64_decoder_finish(&p->b64, (uint8_t*) tail);
                if (p->b64.bad > 0)
                        defect(p, e, MIME_DEFECT_BASE64);
        } else if (e->part.encoding == MIME_ENCODING_QUOTED_PRINTABLE) {
                k = qp_decoder_finish(&p->qp, tail);
                if (p->qp.bad > 0)
                        defect(p, e, MIME_DEFECT_QP);
        } else
                k = 0;
        r = mime_buffer_append(&p->dec, tail, k);
        if (r < 0)
                return r;

        r = pipeline_flush(p, e, true);
        if (r < 0)
                return r;

        if (p->conv.replaced > 0)
                defect(p, e, MIME_DEFECT_CHARSET);
        if (e->part.is_html) {
                e->part.insertions = p->html.insertions;
                e->part.tags_upper = p->html.tags_upper;
                e->part.tags_lower = p->html.tags_lower;
                e->part.html_comments = p->html.comments;
                if (p->html.unterminated > 0)
                        defect(p, e, MIME_DEFECT_HTML);
        }
        p->text_active = false;
        return 0;
}

/* ---- entities ------------------------------------------------------------------------ */

static int entity_end(MimeParser *p) {
        Entity *e = top(p);
        int r;

        if (e->state == ENTITY_HEADERS) {
                r = headers_done(p, e);
                if (r < 0)
                        return r;
                /* headers_done() may have opened a nested message: close it first. */
                if (top(p) != e) {
                        r = entity_end(p);
                        if (r < 0)
                                return r;
                }
        }

        if (e->state == ENTITY_BODY) {
                r = body_end(p, e);
                if (r < 0)
                        return r;
        } else if (e->state == ENTITY_PREAMBLE) {
                defect(p, e, MIME_DEFECT_NO_PARTS | MIME_DEFECT_MISSING_CLOSE);
        } else if (e->state == ENTITY_INSIDE)
                defect(p, e, MIME_DEFECT_MISSING_CLOSE);

        r = emit(p, MIME_EVENT_PART_END, e, NULL, NULL, 0);
        entity_done(e);
        p->n_stack--;
        return r;
}

/* Returns 1 when the line was a delimiter of an open multipart and has been acted on. */
static int delimiter_check(MimeParser *p, const char *s, size_t n) {
        for (size_t i = p->n_stack; i-- > 0;) {
                Entity *e = &p->stack[i];
                bool close = false;
                size_t k;
                int r;

                if (!e->boundary || !IN_SET(e->state, ENTITY_PREAMBLE, ENTITY_INSIDE))
                        continue;
                if (n - 2 < e->boundary_len || memcmp(s + 2, e->boundary, e->boundary_len) != 0)
                        continue;
                k = 2 + e->boundary_len;
                if (n - k >= 2 && s[k] == '-' && s[k + 1] == '-') {
                        close = true;
                        k += 2;
                }
                while (k < n && is_wsp(s[k]))
                        k++;
                if (k < n)
                        continue;

                while (p->n_stack > i + 1) {
                        r = entity_end(p);
                        if (r < 0)
                                return r;
                }

                e->part.body_bytes += n + 1;
                if (close) {
                        e->state = ENTITY_EPILOGUE;
                        return 1;
                }
                e->state = ENTITY_INSIDE;
                if (p->n_parts >= p->limits.max_parts) {
                        defect(p, e, MIME_DEFECT_PART_LIMIT);
                        return 1;
                }
                entity_push(p, e->digest);
                return 1;
        }
        return 0;
}

static int line_dispatch(MimeParser *p, const char *s, size_t n, bool eol, bool cont);

static int header_line(MimeParser *p, Entity *e, const char *s, size_t n, bool eol, bool cont) {
        static const Rfc5322Limits unlimited = { .max_line = SIZE_MAX, .max_field = SIZE_MAX, .max_fields = SIZE_MAX };
        size_t offset = 0;
        Rfc5322Field f;
        int r;

        if (cont)
                return field_append(p, e, s, n);
        if (n == 0)
                return headers_done(p, e);
        if (is_wsp(s[0])) {
                /* Unfolding: the line end goes, the whitespace stays. */
                if (p->field.size == 0 && !p->field_dropped) {
                        defect(p, e, MIME_DEFECT_HEADER_SYNTAX);
                        return 0;
                }
                return field_append(p, e, s, n);
        }
        if (p->at_start && n >= 5 && memcmp(s, "From ", 5) == 0)
                return 0;       /* mbox separator */

        if (rfc5322_field_next(s, n, &unlimited, &offset, NULL, &f) <= 0) {
                /* Not a field: the header block ends here and this is the first body line. */
                defect(p, e, MIME_DEFECT_HEADER_SYNTAX);
                r = headers_done(p, e);
                if (r < 0)
                        return r;
                return line_dispatch(p, s, n, eol, false);
        }

        r = field_flush(p);
        if (r < 0)
                return r;
        p->field_dropped = false;
        return field_append(p, e, s, n);
}

static int line_dispatch(MimeParser *p, const char *s, size_t n, bool eol, bool cont) {
        Entity *e = top(p);

        switch (e->state) {
        case ENTITY_HEADERS:
                return header_line(p, e, s, n, eol, cont);
        case ENTITY_BODY:
                e->part.body_bytes += n + eol;
                e->line_cur = (cont ? e->line_cur : 0) + n;
                e->part.line_max = MAX(e->part.line_max, e->line_cur);
                return body_line(p, e, s, n, eol);
        default:
                e->part.body_bytes += n + eol;
                return 0;
        }
}

/* One piece of input: a line without its line end (eol), or a cut piece of a long line. */
static int piece(MimeParser *p, const char *s, size_t n, bool eol, bool cut) {
        bool cont = p->line_cont;
        int r;

        p->line_cont = !eol;
        if (cut)
                defect(p, top(p), MIME_DEFECT_LINE_LIMIT);
        if (eol && n > 0 && s[n - 1] == '\r')
                n--;

        if (!cont && n >= 2 && s[0] == '-' && s[1] == '-') {
                r = delimiter_check(p, s, n);
                if (r != 0)
                        return r < 0 ? r : 0;
        }

        r = line_dispatch(p, s, n, eol, cont);
        p->at_start = false;
        return r;
}

/* ---- API ------------------------------------------------------------------------------ */

int mime_parser_new(const MimeLimits *limits, MimeCallback cb, void *userdata, MimeParser **ret) {
        _cleanup_(mime_parser_freep) MimeParser *p = NULL;
        const MimeLimits defaults = MIME_LIMITS_DEFAULT;
        int r;

        assert(ret);

        p = calloc(1, sizeof(MimeParser));
        if (!p)
                return -ENOMEM;

        p->limits = limits ? *limits : defaults;
        if (p->limits.max_depth == 0)
                p->limits.max_depth = defaults.max_depth;
        if (p->limits.max_parts == 0)
                p->limits.max_parts = defaults.max_parts;
        if (p->limits.max_header_bytes == 0)
                p->limits.max_header_bytes = defaults.max_header_bytes;
        if (p->limits.max_text_bytes == 0)
                p->limits.max_text_bytes = defaults.max_text_bytes;
        if (p->limits.max_line == 0)
                p->limits.max_line = defaults.max_line;
        p->limits.max_depth = MIN(p->limits.max_depth, 1000U);
        p->limits.max_line = MAX(p->limits.max_line, (size_t) 80);

        p->cb = cb;
        p->userdata = userdata;
        p->at_start = true;

        r = mime_charsets_new(&p->charsets);
        if (r < 0)
                return r;
        p->stack = calloc(p->limits.max_depth + 1, sizeof(Entity));
        if (!p->stack)
                return -ENOMEM;

        entity_push(p, false);

        *ret = TAKE_PTR(p);
        return 0;
}

MimeParser* mime_parser_free(MimeParser *p) {
        if (!p)
                return NULL;

        for (size_t i = 0; i < p->n_stack; i++)
                entity_done(&p->stack[i]);
        free(p->stack);
        mime_charsets_free(p->charsets);
        mime_buffer_done(&p->line);
        mime_buffer_done(&p->field);
        mime_buffer_done(&p->fields);
        mime_buffer_done(&p->scratch);
        mime_buffer_done(&p->dec);
        mime_buffer_done(&p->utf8);
        mime_buffer_done(&p->text);
        free(p);
        return NULL;
}

int mime_parser_feed(MimeParser *p, const void *data, size_t size) {
        const char *d = data;
        size_t max = p ? p->limits.max_line : 0;
        int r = 0;

        assert_return(p, -EINVAL);
        assert_return(data || size == 0, -EINVAL);

        if (p->error < 0)
                return p->error;
        if (p->finished)
                return -ESTALE;

        while (size > 0) {
                size_t have = p->line.size, room = max - have, look = MIN(size, room);
                const char *nl = memchr(d, '\n', look);

                if (nl) {
                        size_t k = (size_t) (nl - d);

                        if (have == 0)
                                r = piece(p, d, k, /* eol= */ true, /* cut= */ false);
                        else {
                                r = mime_buffer_append(&p->line, d, k);
                                if (r >= 0)
                                        r = piece(p, p->line.data, p->line.size, true, false);
                                mime_buffer_clear(&p->line);
                        }
                        d += k + 1;
                        size -= k + 1;
                } else if (size >= room) {
                        if (have == 0)
                                r = piece(p, d, room, /* eol= */ false, /* cut= */ true);
                        else {
                                r = mime_buffer_append(&p->line, d, room);
                                if (r >= 0)
                                        r = piece(p, p->line.data, p->line.size, false, true);
                                mime_buffer_clear(&p->line);
                        }
                        d += room;
                        size -= room;
                } else {
                        r = mime_buffer_append(&p->line, d, size);
                        size = 0;
                }
                if (r < 0)
                        return (p->error = r);
        }
        return 0;
}

int mime_parser_finish(MimeParser *p) {
        int r;

        assert_return(p, -EINVAL);

        if (p->error < 0)
                return p->error;
        if (p->finished)
                return -ESTALE;

        if (p->line.size > 0) {
                r = piece(p, p->line.data, p->line.size, /* eol= */ false, /* cut= */ false);
                mime_buffer_clear(&p->line);
                if (r < 0)
                        return (p->error = r);
        }
        while (p->n_stack > 0) {
                r = entity_end(p);
                if (r < 0)
                        return (p->error = r);
        }
        p->finished = true;
        return 0;
}

void mime_parser_set_markup(MimeParser *p, bool b) {
        assert(p);
        p->markup = b;
}

void mime_parser_set_comments(MimeParser *p, bool b) {
        assert(p);
        p->comments = b;
}

unsigned mime_parser_defects(const MimeParser *p) {
        return p ? p->defects : 0;
}

static const char *const event_type_table[_MIME_EVENT_TYPE_MAX] = {
        [MIME_EVENT_PART_BEGIN] = "part-begin",
        [MIME_EVENT_HEADER]     = "header",
        [MIME_EVENT_TEXT]       = "text",
        [MIME_EVENT_URL]        = "url",
        [MIME_EVENT_MARKUP]     = "markup",
        [MIME_EVENT_COMMENT]    = "comment",
        [MIME_EVENT_PART_END]   = "part-end",
};

const char* mime_event_type_to_string(MimeEventType t) {
        return t >= 0 && t < _MIME_EVENT_TYPE_MAX ? event_type_table[t] : NULL;
}

static const char *const encoding_table[_MIME_ENCODING_MAX] = {
        [MIME_ENCODING_7BIT]             = "7bit",
        [MIME_ENCODING_8BIT]             = "8bit",
        [MIME_ENCODING_BINARY]           = "binary",
        [MIME_ENCODING_BASE64]           = "base64",
        [MIME_ENCODING_QUOTED_PRINTABLE] = "quoted-printable",
};

const char* mime_encoding_to_string(MimeEncoding e) {
        return e >= 0 && e < _MIME_ENCODING_MAX ? encoding_table[e] : NULL;
}
