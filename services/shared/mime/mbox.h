/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* An mbox (RFC 4155) split into its messages, a line at a time: a message begins after
 * a "From " line at the start of the input or after an empty line; neither that line
 * nor the empty line before it belongs to a message, and a line of '>' characters and
 * then "From " loses one '>' (mboxrd's quoting, which also undoes mboxo's). */

#include <stdbool.h>
#include <stddef.h>

typedef struct MboxCallbacks {
        int (*begin)(unsigned index, void *userdata);                /* 1, 2, ... */
        int (*data)(const char *p, size_t n, void *userdata);        /* the message's bytes */
        int (*end)(unsigned index, void *userdata);
} MboxCallbacks;

typedef struct MboxReader {
        const MboxCallbacks *cb;
        void *userdata;
        unsigned index;         /* messages begun */
        bool blank;             /* an empty line held back: before a "From " line it is the mbox's */
        bool blank_crlf;
} MboxReader;

#define MBOX_READER_INIT(callbacks, data) ((MboxReader) { .cb = (callbacks), .userdata = (data) })

/* One line of the input with its line end ("\n" or "\r\n"; the input's last line may have
 * none); NUL bytes are data. Returns 0, -EBADMSG when the input's first line is not a
 * "From " line (it is not an mbox), or a callback's negative return. */
int mbox_reader_line(MboxReader *r, const char *line, size_t n);

/* The end of the input: ends the last message (its empty last line is the mbox's).
 * -ENODATA when there was no message at all. */
int mbox_reader_finish(MboxReader *r);
