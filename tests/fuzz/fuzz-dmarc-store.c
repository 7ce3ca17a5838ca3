/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-dmarc-store: the input is the content of a DMARC report store file
 * (dmarc-YYYY-MM-DD.log). dmarc_store_parse() must skip what is damaged, never fail
 * on it; every entry it returns must survive being written back (same line) and being
 * aggregated into reports. The input is parsed twice: as it is (where random bytes
 * rarely get past the CRC of a line) and with a valid " crc=" appended to each of its
 * lines, so the field parser sees the mutations. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dmarc-report.h"
#include "fuzz.h"

#define FUZZ_DMARC_STORE_INPUT_MAX ((size_t) (4U * DMARC_STORE_LINE_MAX))

static void check(const char *data, size_t size) {
        static const DmarcReportMeta meta = {
                .org_name = "fuzz",
                .email = "fuzz@example.com",
                .receiver = "mx.example.com",
        };
        DmarcReportEntry *entries = NULL;
        DmarcReport *reports = NULL;
        size_t n = 0, n_reports = 0;
        unsigned skipped = 0;
        int r;

        r = dmarc_store_parse(data, size, &entries, &n, &skipped);
        if (r == -ENOMEM)
                return;
        if (r < 0)
                abort();

        for (size_t i = 0; i < n; i++) {
                DmarcReportEntry *again = NULL;
                char *line = NULL;
                size_t len = 0, m = 0;
                unsigned s2 = 0;

                /* A parsed entry formats back into a line that parses to one entry. */
                r = dmarc_store_format_line(&entries[i], &line, &len);
                if (r == -ENOMEM)
                        continue;
                if (r < 0 || len == 0 || line[len - 1] != '\n')
                        abort();
                if (dmarc_store_parse(line, len, &again, &m, &s2) == 0) {
                        if (m != 1 || s2 != 0 || again[0].time != entries[i].time)
                                abort();
                        dmarc_report_entries_free(again, m);
                }
                free(line);
        }

        if (n > 0 &&
            dmarc_report_build(entries, n, entries[0].time, &meta, &reports, &n_reports) == 0) {
                for (size_t i = 0; i < n_reports; i++)
                        if (!reports[i].xml || reports[i].n_rows == 0 ||
                            !strstr(reports[i].file_name, ".xml.gz"))
                                abort();
                dmarc_reports_free(reports, n_reports);
        }

        dmarc_report_entries_free(entries, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *s = (const char*) data;
        char *fixed = NULL;
        size_t fixed_size = 0;
        FILE *f;

        if (size > FUZZ_DMARC_STORE_INPUT_MAX)
                return 0;

        check(s, size);

        f = open_memstream(&fixed, &fixed_size);
        if (!f)
                return 0;
        for (size_t start = 0; start < size; ) {
                const char *nl = memchr(s + start, '\n', size - start);
                size_t end = nl ? (size_t) (nl - s) : size;

                (void) fwrite(s + start, 1, end - start, f);
                fprintf(f, " crc=%08lx\n", (unsigned long) crc32(0L, (const Bytef*) s + start,
                                                              (uInt) (end - start)));
                start = end + 1;
        }
        if (fclose(f) == 0)
                check(fixed, fixed_size);
        free(fixed);
        return 0;
}
