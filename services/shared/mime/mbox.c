/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <string.h>

#include "mbox.h"

static bool is_from_line(const char *line, size_t n) {
        return n >= 5 && memcmp(line, "From ", 5) == 0;
}

static bool is_empty_line(const char *line, size_t n, bool *crlf) {
        *crlf = n == 2 && line[0] == '\r' && line[1] == '\n';
        return *crlf || (n == 1 && line[0] == '\n');
}

int mbox_reader_line(MboxReader *r, const char *line, size_t n) {
        size_t q;
        int k;

        if (r->index == 0 || (r->blank && is_from_line(line, n))) {
                if (!is_from_line(line, n))
                        return -EBADMSG;
                if (r->index > 0) {
                        k = r->cb->end(r->index, r->userdata);
                        if (k < 0)
                                return k;
                }
                r->blank = false;
                return r->cb->begin(++r->index, r->userdata);
        }

        if (r->blank) {
                k = r->cb->data(r->blank_crlf ? "\r\n" : "\n", r->blank_crlf ? 2 : 1, r->userdata);
                if (k < 0)
                        return k;
        }
        r->blank = is_empty_line(line, n, &r->blank_crlf);
        if (r->blank)
                return 0;

        /* ">From ", ">>From ", ...: one '>' was added when the mbox was written */
        for (q = 0; q < n && line[q] == '>'; q++)
                ;
        if (q > 0 && is_from_line(line + q, n - q)) {
                line++;
                n--;
        }
        return r->cb->data(line, n, r->userdata);
}

int mbox_reader_finish(MboxReader *r) {
        if (r->index == 0)
                return -ENODATA;
        r->blank = false;
        return r->cb->end(r->index, r->userdata);
}
