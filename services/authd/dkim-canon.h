/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DKIM canonicalization (RFC 6376 §3.4): the header fields a signature covers, chosen by
 * h= from the bottom of the header block up (§5.4.2), and the body, streamed into a
 * SHA-256 hash in chunks of any size. Bare LF line ends are read as CRLF. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dkim-signature.h"
#include "macro.h"
#include "rfc5322.h"

typedef struct DkimBuffer {
        char *data;
        size_t len;
        size_t alloc;
} DkimBuffer;
#define DKIM_BUFFER_NULL { .data = NULL, .len = 0, .alloc = 0 }

int dkim_buffer_append(DkimBuffer *b, const void *p, size_t n);
void dkim_buffer_done(DkimBuffer *b);

/* Append one canonicalized header field (with its CRLF) to out. buf is the buffer f was
 * read from. */
int dkim_canon_header(DkimCanon c, const char *buf, const Rfc5322Field *f, DkimBuffer *out);

/* The whole header hash input of a signature: the fields named in names[] (each name
 * takes the bottom-most field of that name not yet taken; a name with no field left adds
 * nothing, which is how over-signing works), then sig_field (the complete DKIM-Signature
 * field, "DKIM-Signature:" included, with the b= value already empty) canonicalized
 * without its final CRLF. */
int dkim_canon_signed_headers(DkimCanon c, const char *msg, const Rfc5322Field *fields, size_t n_fields,
                              char * const *names, size_t n_names,
                              const char *sig_field, size_t sig_field_len, DkimBuffer *out);

/* Read every header field of msg into a new array; *ret_body is the offset of the body. */
int dkim_header_fields(const char *msg, size_t len, Rfc5322Field **ret, size_t *ret_n, size_t *ret_body);

typedef struct DkimBodyHasher DkimBodyHasher;

/* limit: l=, or UINT64_MAX to hash the whole canonical body. */
int dkim_body_hasher_new(DkimCanon c, uint64_t limit, DkimBodyHasher **ret);
int dkim_body_hasher_feed(DkimBodyHasher *h, const void *p, size_t n);
/* Ends the body. ret_hash receives the SHA-256 (32 bytes); ret_total the length of the
 * whole canonical body (to compare l= with), may be NULL. */
int dkim_body_hasher_finish(DkimBodyHasher *h, uint8_t ret_hash[static 32], uint64_t *ret_total);
DkimBodyHasher* dkim_body_hasher_free(DkimBodyHasher *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(DkimBodyHasher*, dkim_body_hasher_free);

/* Canonicalize a whole body in memory into a new buffer (for tests and diagnostics). */
int dkim_canon_body(DkimCanon c, const char *body, size_t len, DkimBuffer *out);
