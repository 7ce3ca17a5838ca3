/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-rfc5322-headers: a message through rfc5322_field_next() until the end of the
 * header block or an error, twice: with the default limits and with small ones taken
 * from the first bytes, so that every limit is reached. Each field is unfolded. */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "rfc5322.h"

/* Header blocks are rarely above a few hundred KiB; 1 MiB keeps runs fast. */
#define FUZZ_RFC5322_INPUT_MAX ((size_t) 1024U * 1024U)

static void walk(const char *buf, size_t len, const Rfc5322Limits *limits) {
        size_t offset = 0, n = 0;

        for (;;) {
                size_t before = offset;
                Rfc5322Field f;
                char *u = NULL;
                int r;

                r = rfc5322_field_next(buf, len, limits, &offset, &n, &f);
                if (r < 0) {
                        if (offset != before)
                                abort();
                        return;
                }
                if (r == 0) {
                        if (offset < before || offset > len)
                                abort();
                        return;
                }
                if (offset <= before || offset > len || f.raw_offset != before ||
                    f.raw_offset + f.raw_len != offset || f.name_len == 0 ||
                    f.value < f.name || f.value + f.value_len > buf + offset ||
                    (limits && (f.raw_len > limits->max_field || n > limits->max_fields)))
                        abort();
                if (!rfc5322_field_is(&f, "Subject") && f.name_len == 7 && strncasecmp(f.name, "subject", 7) == 0)
                        abort();
                if (rfc5322_unfold(f.value, f.value_len, &u) < 0)
                        abort();   /* only -ENOMEM can fail */
                if (strlen(u) > f.value_len)
                        abort();
                free(u);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Rfc5322Limits limits;

        if (size > FUZZ_RFC5322_INPUT_MAX)
                return 0;

        walk((const char*) data, size, NULL);

        if (size >= 3) {
                limits = (Rfc5322Limits) {
                        .max_line = data[0],
                        .max_field = (size_t) data[1] * 4,
                        .max_fields = data[2] % 16,
                };
                walk((const char*) data + 3, size - 3, &limits);
        }
        return 0;
}
