/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A streaming RFC 5322 / MIME reader (RFC 2045, 2046, 2047, 2231) for the services that
 * look into bodies (the spam filter's tokenizer, S/MIME). The message is fed in chunks
 * of any size; what comes out is a sequence of events through one callback:
 *
 *   PART_BEGIN  a message or body part, once its header block is read (part info)
 *   HEADER      each header field of that part: name as written, value unfolded and
 *               RFC 2047-decoded to UTF-8
 *   TEXT        UTF-8 text of a text/<any> part: transfer-decoded, converted from its
 *               charset, HTML reduced to text (html-text.h)
 *   URL         the lowercased host of a link in an HTML part
 *   MARKUP      the lowercased element name of a start tag in an HTML part (only after
 *               mime_parser_set_markup(): what a reader never sees, yet which tells how
 *               the message was made)
 *   COMMENT     the text of a comment in an HTML part, at most HTML_COMMENT_MAX bytes
 *               (only after mime_parser_set_comments(): what a reader never sees either)
 *   PART_END    the part is over; its counters are final
 *
 * Parts nest: PART_BEGIN/PART_END pairs of the children of a multipart or of a
 * message/rfc822 part come between the parent's PART_BEGIN and PART_END. The events are
 * the same however the message is cut into chunks.
 *
 * A TEXT chunk never ends inside a UTF-8 sequence, and never inside a word (it ends
 * after ASCII whitespace) unless the part ends there or a word is longer than
 * MIME_TEXT_WORD_MAX bytes, so a tokenizer can work on each chunk on its own.
 *
 * Memory stays within MimeLimits whatever the size of the message. Malformed input
 * never fails the parse: it sets defect flags (MimeDefect) and parsing goes on; beyond a
 * limit the parser degrades (stops descending, stops emitting text) and says so with a
 * defect flag. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct MimeLimits {
        unsigned max_depth;             /* nesting of multiparts and message/rfc822; top = 0 */
        unsigned max_parts;             /* parts including the top-level message */
        size_t max_header_bytes;        /* header block of one part; more fields are dropped */
        uint64_t max_text_bytes;        /* TEXT bytes for the whole message */
        size_t max_line;                /* longer lines are cut (at least 80) */
} MimeLimits;
/* A zero field in the limits given to mime_parser_new() takes its default. */
#define MIME_LIMITS_DEFAULT ((MimeLimits) {                     \
                .max_depth = 20,                                \
                .max_parts = 1000,                              \
                .max_header_bytes = 256U * 1024U,               \
                .max_text_bytes = 16U * 1024U * 1024U,          \
                .max_line = 64U * 1024U,                        \
        })

#define MIME_TEXT_CHUNK 4096U           /* TEXT chunks are about this size */
#define MIME_TEXT_WORD_MAX 256U         /* a word longer than this may be cut */

/* Defects: a bit mask for the message (mime_parser_defects()) and for each part
 * (MimePart.defects). */
typedef enum MimeDefect {
        MIME_DEFECT_HEADER_SYNTAX    = 1 << 0,  /* a header line that is not a field: the block ended there */
        MIME_DEFECT_HEADER_LIMIT     = 1 << 1,  /* header block over max_header_bytes, fields dropped */
        MIME_DEFECT_LINE_LIMIT       = 1 << 2,  /* a line over max_line, cut */
        MIME_DEFECT_CONTENT_TYPE     = 1 << 3,  /* Content-Type unparseable or repeated */
        MIME_DEFECT_NO_BOUNDARY      = 1 << 4,  /* multipart without boundary: read as text/plain */
        MIME_DEFECT_MISSING_CLOSE    = 1 << 5,  /* multipart without its close-delimiter */
        MIME_DEFECT_NO_PARTS         = 1 << 6,  /* multipart without any delimiter line */
        MIME_DEFECT_ENCODING         = 1 << 7,  /* unknown or misplaced Content-Transfer-Encoding */
        MIME_DEFECT_BASE64           = 1 << 8,  /* bad characters or truncation in base64 */
        MIME_DEFECT_QP               = 1 << 9,  /* bad quoted-printable escapes */
        MIME_DEFECT_CHARSET          = 1 << 10, /* unknown charset, or invalid sequences replaced */
        MIME_DEFECT_ENCODED_WORD     = 1 << 11, /* malformed RFC 2047 encoded word */
        MIME_DEFECT_8BIT_HEADER      = 1 << 12, /* raw 8-bit bytes in a header value */
        MIME_DEFECT_PARAM            = 1 << 13, /* malformed parameter (RFC 2045 §5.1, RFC 2231) */
        MIME_DEFECT_HTML             = 1 << 14, /* HTML ends inside a tag, comment or script */
        MIME_DEFECT_DEPTH_LIMIT      = 1 << 15, /* nesting over max_depth: not descended */
        MIME_DEFECT_PART_LIMIT       = 1 << 16, /* over max_parts: further parts skipped */
        MIME_DEFECT_TEXT_LIMIT       = 1 << 17, /* over max_text_bytes: no more TEXT */
} MimeDefect;

typedef enum MimeEncoding {
        MIME_ENCODING_7BIT,
        MIME_ENCODING_8BIT,
        MIME_ENCODING_BINARY,
        MIME_ENCODING_BASE64,
        MIME_ENCODING_QUOTED_PRINTABLE,
        _MIME_ENCODING_MAX,
        _MIME_ENCODING_INVALID = -EINVAL,
} MimeEncoding;

typedef enum MimeDisposition {
        MIME_DISPOSITION_NONE,          /* no Content-Disposition */
        MIME_DISPOSITION_INLINE,
        MIME_DISPOSITION_ATTACHMENT,    /* also any unknown disposition type (RFC 2183 §2.8) */
        _MIME_DISPOSITION_MAX,
        _MIME_DISPOSITION_INVALID = -EINVAL,
} MimeDisposition;

typedef struct MimePart {
        unsigned depth;                 /* 0: the message itself */
        unsigned index;                 /* 0, 1, 2... in the order the parts begin */
        const char *content_type;       /* "type/subtype", lowercased, never NULL */
        const char *charset;            /* lowercased charset parameter, or NULL */
        const char *filename;           /* UTF-8 filename (disposition) or name (type), or NULL */
        MimeDisposition disposition;
        MimeEncoding encoding;
        bool is_multipart;              /* children follow */
        bool is_message;                /* message/rfc822: a nested message follows */
        bool is_text;                   /* TEXT events follow (text/<any>, within the limits) */
        bool is_html;

        /* Final at PART_END: */
        uint64_t body_bytes;            /* raw body bytes, line ends included */
        uint64_t line_max;              /* the longest body line as sent (before transfer decoding),
                                         * bytes without its line end */
        uint64_t text_bytes;            /* TEXT bytes emitted */
        unsigned insertions;            /* markup removed inside words (HTML) */
        unsigned tags_upper;            /* HTML tags whose name begins with a capital letter */
        unsigned tags_lower;            /* ... with a small letter */
        unsigned html_comments;         /* HTML comments */
        unsigned urls;                  /* URL events */
        unsigned defects;               /* MimeDefect seen in this part itself */
} MimePart;

typedef enum MimeEventType {
        MIME_EVENT_PART_BEGIN,
        MIME_EVENT_HEADER,
        MIME_EVENT_TEXT,
        MIME_EVENT_URL,
        MIME_EVENT_MARKUP,
        MIME_EVENT_COMMENT,
        MIME_EVENT_PART_END,
        _MIME_EVENT_TYPE_MAX,
        _MIME_EVENT_TYPE_INVALID = -EINVAL,
} MimeEventType;

typedef struct MimeEvent {
        MimeEventType type;
        const MimePart *part;           /* valid during the callback only */
        const char *name;               /* HEADER: field name as written, NUL-terminated */
        const char *data;               /* HEADER: value (NUL-terminated); TEXT: text; URL: host;
                                         * MARKUP: element (NUL-terminated); COMMENT: text */
        size_t size;                    /* bytes at data */
        const char *rest;               /* URL: what follows the host and port (path, query,
                                         * fragment, as written), not NUL-terminated */
        size_t rest_size;               /* bytes at rest, possibly 0 */
} MimeEvent;

/* A negative return stops the parser: mime_parser_feed()/finish() return it, then and
 * on every later call. */
typedef int (*MimeCallback)(const MimeEvent *event, void *userdata);

typedef struct MimeParser MimeParser;

int mime_parser_new(const MimeLimits *limits, MimeCallback cb, void *userdata, MimeParser **ret);
MimeParser* mime_parser_free(MimeParser *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(MimeParser*, mime_parser_free);

/* Returns 0, -ENOMEM, the callback's error, or -ESTALE after mime_parser_finish(). */
int mime_parser_feed(MimeParser *p, const void *data, size_t size);
/* End of message: closes every open part. */
int mime_parser_finish(MimeParser *p);

/* Whether MARKUP events are emitted (off by default). */
void mime_parser_set_markup(MimeParser *p, bool b);
/* Whether COMMENT events are emitted (off by default). */
void mime_parser_set_comments(MimeParser *p, bool b);

unsigned mime_parser_defects(const MimeParser *p) _pure_;

const char* mime_event_type_to_string(MimeEventType t) _const_;
const char* mime_encoding_to_string(MimeEncoding e) _const_;
