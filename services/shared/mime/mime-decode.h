/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The decoders under the MIME parser (mime.h), usable on their own:
 *
 *   - a growable byte buffer (MimeBuffer);
 *   - Content-Transfer-Encoding: base64 (RFC 2045 §6.8) and quoted-printable (§6.7), both
 *     streaming and tolerant: bad input is counted, never refused;
 *   - charset conversion to UTF-8 through glibc iconv with a per-owner descriptor cache
 *     (MimeCharsets) and a streaming converter (MimeConverter);
 *   - RFC 2047 encoded words in header values;
 *   - RFC 2045 §5.1 parameters with the RFC 2231 extensions (continuations, charset and
 *     language, %XX), for Content-Type and Content-Disposition.
 *
 * Nothing here logs; every function returns 0 or a documented positive value on success
 * and -ENOMEM as its only failure unless it says otherwise. */

#include <iconv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* ---- byte buffer ------------------------------------------------------------------ */

typedef struct MimeBuffer {
        char *data;             /* NUL-terminated after any append, once allocated */
        size_t size;
        size_t allocated;
} MimeBuffer;
#define MIME_BUFFER_NULL ((MimeBuffer) {})

/* Make room for extra more bytes plus a terminating NUL. */
int mime_buffer_reserve(MimeBuffer *b, size_t extra);
int mime_buffer_append(MimeBuffer *b, const void *p, size_t n);
/* Append one code point as UTF-8 (U+FFFD for surrogates and values beyond U+10FFFF). */
int mime_buffer_append_unichar(MimeBuffer *b, uint32_t c);
/* Drop the first n bytes. */
void mime_buffer_consume(MimeBuffer *b, size_t n);
static inline void mime_buffer_clear(MimeBuffer *b) {
        b->size = 0;
        if (b->data)
                b->data[0] = '\0';
}
void mime_buffer_done(MimeBuffer *b);

/* Encode c as UTF-8 into out (at least 4 bytes), returns the length. */
size_t utf8_encode_unichar(uint32_t c, char *out);

/* ---- base64 (RFC 2045 §6.8) -------------------------------------------------------- */

/* Characters outside the alphabet other than whitespace are skipped and counted; '='
 * ends a group early (1 or 2 bytes out), so concatenated encodings decode; a group left
 * incomplete at the end (missing padding) is flushed by base64_decoder_finish(). */
typedef struct Base64Decoder {
        uint32_t bits;
        unsigned n;             /* sextets held in bits, 0..3 */
        unsigned bad;           /* skipped characters and lone trailing sextets */
} Base64Decoder;
#define BASE64_DECODER_NULL ((Base64Decoder) {})

/* Needs room for (n / 4 + 1) * 3 bytes at out; returns the bytes written. */
size_t base64_decoder_feed(Base64Decoder *d, const char *in, size_t n, uint8_t *out);
/* Flush a partial group (room for 2 bytes); returns the bytes written. */
size_t base64_decoder_finish(Base64Decoder *d, uint8_t *out);
#define BASE64_DECODED_MAX(n) (((n) / 4 + 1) * 3)

/* ---- quoted-printable (RFC 2045 §6.7) --------------------------------------------- */

/* Fed one line at a time, without its line end. eol says whether a line end followed:
 * then trailing whitespace is removed and a final '=' is a soft line break; otherwise
 * (a line cut because it was too long) an '=' or '=X' at the end is carried over to the
 * next call. "=XY" with hex digits (either case) is the byte; any other '=' is kept
 * literally and counted in bad. */
typedef struct QpDecoder {
        char carry[2];
        unsigned n_carry;
        unsigned bad;
} QpDecoder;
#define QP_DECODER_NULL ((QpDecoder) {})

/* Needs room for n + 2 bytes at out. Returns the bytes written; *ret_hard_break (may be
 * NULL) is set when eol and the line did not end in a soft break: the caller then owes
 * the text a line break. */
size_t qp_decoder_feed_line(QpDecoder *d, const char *in, size_t n, bool eol, char *out, bool *ret_hard_break);
/* Flush a carried '=' literally; room for 2 bytes. */
size_t qp_decoder_finish(QpDecoder *d, char *out);

/* ---- charsets ---------------------------------------------------------------------- */

typedef enum MimeCharsetKind {
        MIME_CHARSET_FALLBACK,  /* missing, us-ascii or unknown: UTF-8 where valid, else windows-1252 */
        MIME_CHARSET_UTF8,      /* declared UTF-8: invalid sequences become U+FFFD */
        MIME_CHARSET_CP1252,    /* windows-1252 and the labels that mean it (iso-8859-1, latin1, ...):
                                 * the commonest 8-bit charset, converted by table without iconv,
                                 * with the same result as iconv's WINDOWS-1252 */
        MIME_CHARSET_ICONV,     /* anything else iconv knows */
        _MIME_CHARSET_KIND_MAX,
        _MIME_CHARSET_KIND_INVALID = -EINVAL,
} MimeCharsetKind;

/* iconv descriptors by normalised charset name, opened on first use (failures are
 * remembered too, so a hostile message cannot make us retry iconv_open() per part). */
typedef struct MimeCharsets MimeCharsets;

int mime_charsets_new(MimeCharsets **ret);
MimeCharsets* mime_charsets_free(MimeCharsets *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(MimeCharsets*, mime_charsets_free);

/* Look up a declared charset name (NULL: none declared). Returns the kind; for
 * MIME_CHARSET_ICONV *ret_cd is a descriptor owned by the cache. A name iconv does not
 * know gives MIME_CHARSET_FALLBACK with *ret_known = false (ret_known may be NULL). */
MimeCharsetKind mime_charsets_lookup(MimeCharsets *c, const char *charset, iconv_t *ret_cd, bool *ret_known);

/* Streaming conversion of one text to UTF-8. Invalid input never fails: it becomes
 * U+FFFD (or windows-1252 in fallback mode) and is counted in replaced. */
typedef struct MimeConverter {
        MimeCharsetKind kind;
        iconv_t cd;             /* owned by the MimeCharsets cache */
        unsigned replaced;
} MimeConverter;

/* Returns 1 when the charset is known (or none was declared), 0 when it is unknown and
 * the fallback is used. Resets the shift state of a cached descriptor. */
int mime_converter_init(MimeConverter *v, MimeCharsets *c, const char *charset);
/* Convert in, appending to out. Unless final, an incomplete multi-byte sequence at the
 * end (at most MIME_CONVERTER_TAIL_MAX bytes) is left unconsumed: the caller presents it
 * again in front of the next input. With final everything is consumed and a stateful
 * decoder is reset. Returns the bytes consumed, or -ENOMEM. */
#define MIME_CONVERTER_TAIL_MAX 16U
ssize_t mime_converter_feed(MimeConverter *v, const char *in, size_t n, bool final, MimeBuffer *out);

/* One-shot conversion of a complete piece of text. Returns 1 when converted, 0 when the
 * charset is unknown to iconv (nothing appended), -ENOMEM. charset NULL converts with
 * the fallback. */
int mime_convert(MimeCharsets *c, const char *charset, const char *in, size_t n, MimeBuffer *out);

/* ---- header values --------------------------------------------------------------- */

/* Flags returned through *ret_defects by the header decoders. */
typedef enum MimeHeaderDefect {
        MIME_HEADER_DEFECT_ENCODED_WORD = 1 << 0,       /* malformed encoded word, bad B/Q data */
        MIME_HEADER_DEFECT_CHARSET      = 1 << 1,       /* unknown charset, or invalid sequences */
        MIME_HEADER_DEFECT_8BIT         = 1 << 2,       /* raw 8-bit bytes outside encoded words */
        MIME_HEADER_DEFECT_PARAM        = 1 << 3,       /* malformed parameter list or RFC 2231 value */
} MimeHeaderDefect;

/* RFC 2047: decode the encoded words of an unfolded header value into UTF-8 appended to
 * out. B and Q encodings; whitespace between adjacent encoded words is dropped and their
 * bytes are joined before conversion when they share a charset (so a character split
 * across two words survives); an encoded word in a charset iconv does not know is kept
 * as written. Text outside encoded words is converted with the fallback; NUL bytes
 * become U+FFFD. *ret_defects (may be NULL) gets MIME_HEADER_DEFECT_* bits or'ed in. */
int rfc2047_decode(MimeCharsets *c, const char *value, size_t n, MimeBuffer *out, unsigned *ret_defects);

typedef struct MimeParam {
        char *name;             /* lowercased, without RFC 2231 '*' suffixes */
        char *value;            /* UTF-8, unquoted, continuations joined */
} MimeParam;

typedef struct MimeParams {
        char *value;            /* the value before the first ';', trimmed and lowercased */
        MimeParam *params;
        size_t n_params;
} MimeParams;
#define MIME_PARAMS_NULL ((MimeParams) {})

/* Parse "value; name=token; name="quoted"; name*=utf-8''%E2%82%AC; name*0=a; name*1=b"
 * (RFC 2045 §5.1, RFC 2231 §3-§4, comments skipped). The first occurrence of a name
 * wins; an RFC 2231 form wins over a plain one. Values in a charset iconv does not know
 * use the fallback conversion. Malformed pieces are skipped and flagged. At most
 * MIME_PARAMS_MAX parameters and MIME_PARAM_SECTIONS_MAX continuation sections are
 * kept. */
#define MIME_PARAMS_MAX 64U
#define MIME_PARAM_SECTIONS_MAX 64U
int mime_params_parse(MimeCharsets *c, const char *value, size_t n, MimeParams *ret, unsigned *ret_defects);
const char* mime_params_get(const MimeParams *p, const char *name) _pure_;
void mime_params_done(MimeParams *p);
