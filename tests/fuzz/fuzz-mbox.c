/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-mbox: any bytes as an mbox to mbox_reader_line(), a line at a time. Beside not
 * crashing, the split must survive a round trip: its messages written again as an mboxrd
 * (a "From " line, every line of '>'s and "From " quoted with one more '>', an empty line
 * after each) split into the same messages, whenever each of them ends with a line end
 * (a writer adds one to a message that does not). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mbox.h"

#define FUZZ_MBOX_INPUT_MAX ((size_t) 64U * 1024U)
#define FUZZ_MBOX_MESSAGES_MAX 64U

typedef struct Split {
        char *msgs[FUZZ_MBOX_MESSAGES_MAX];
        size_t lens[FUZZ_MBOX_MESSAGES_MAX];
        unsigned n;
        unsigned open;          /* the message begun and not ended, or 0 */
} Split;

static int on_begin(unsigned index, void *userdata) {
        Split *s = userdata;

        if (s->open != 0 || index != s->n + 1)
                abort();        /* a message begins only after the last one ended */
        if (index > FUZZ_MBOX_MESSAGES_MAX)
                return -E2BIG;
        s->n = s->open = index;
        return 0;
}

static int on_data(const char *p, size_t n, void *userdata) {
        Split *s = userdata;
        unsigned i;
        char *m;

        if (s->open == 0 || n == 0)
                abort();
        i = s->open - 1;
        m = realloc(s->msgs[i], s->lens[i] + n);
        if (!m)
                return -ENOMEM;
        memcpy(m + s->lens[i], p, n);
        s->msgs[i] = m;
        s->lens[i] += n;
        return 0;
}

static int on_end(unsigned index, void *userdata) {
        Split *s = userdata;

        if (index != s->open)
                abort();
        s->open = 0;
        return 0;
}

static const MboxCallbacks callbacks = { .begin = on_begin, .data = on_data, .end = on_end };

static int split(const char *p, size_t size, Split *s) {
        MboxReader r = MBOX_READER_INIT(&callbacks, s);
        size_t i = 0;
        int k;

        while (i < size) {
                const char *nl = memchr(p + i, '\n', size - i);
                size_t n = nl ? (size_t) (nl - (p + i)) + 1 : size - i;

                k = mbox_reader_line(&r, p + i, n);
                if (k < 0)
                        return k;
                i += n;
        }
        return mbox_reader_finish(&r);
}

static void split_done(Split *s) {
        for (unsigned i = 0; i < FUZZ_MBOX_MESSAGES_MAX; i++)
                free(s->msgs[i]);
}

/* s's messages as an mboxrd */
static char* write_mbox(const Split *s, size_t *ret_size) {
        size_t size = 0, n = 0;
        char *out;

        for (unsigned i = 0; i < s->n; i++)
                size += 8 + 2 * s->lens[i] + 1;         /* at most one '>' a byte */
        out = malloc(size + 1);
        if (!out)
                return NULL;
        for (unsigned i = 0; i < s->n; i++) {
                const char *m = s->msgs[i];
                size_t len = s->lens[i], at = 0;

                memcpy(out + n, "From x\n", 7);
                n += 7;
                while (at < len) {
                        const char *nl = memchr(m + at, '\n', len - at);
                        size_t l = nl ? (size_t) (nl - (m + at)) + 1 : len - at, q = 0;

                        while (q < l && m[at + q] == '>')
                                q++;
                        if (l - q >= 5 && memcmp(m + at + q, "From ", 5) == 0)
                                out[n++] = '>';
                        memcpy(out + n, m + at, l);
                        n += l;
                        at += l;
                }
                out[n++] = '\n';
        }
        *ret_size = n;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Split a = {}, b = {};
        char *again = NULL;
        size_t again_size = 0;
        bool ends = true;

        if (size > FUZZ_MBOX_INPUT_MAX)
                return 0;
        if (split((const char *) data, size, &a) < 0)
                goto finish;
        for (unsigned i = 0; i < a.n; i++)
                ends = ends && (a.lens[i] == 0 || a.msgs[i][a.lens[i] - 1] == '\n');
        if (!ends || a.n == 0)
                goto finish;

        again = write_mbox(&a, &again_size);
        if (!again)
                goto finish;
        if (split(again, again_size, &b) < 0 || b.n != a.n)
                abort();
        for (unsigned i = 0; i < a.n; i++)
                if (a.lens[i] != b.lens[i] || (a.lens[i] > 0 && memcmp(a.msgs[i], b.msgs[i], a.lens[i]) != 0))
                        abort();
finish:
        free(again);
        split_done(&a);
        split_done(&b);
        return 0;
}
