/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Stand-alone driver for the fuzz targets, for builds without libFuzzer (any compiler):
 *
 *         fuzz-conf-standalone FILE|DIR...
 *
 * runs LLVMFuzzerTestOneInput() once on every file given and on every regular file in
 * every directory given (in lexical order, not recursive). A crash or sanitizer report
 * fails the run; so does an unreadable input. This is the fuzz-regress suite: every
 * input that ever crashed a target stays in its corpus and keeps being replayed. */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fd-util.h"
#include "fuzz.h"
#include "string-util.h"

/* Larger than any target's cap, so that the target's own refusal is exercised. */
#define FUZZ_INPUT_MAX ((size_t) 16U * 1024U * 1024U)

static int run_one(const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, FUZZ_INPUT_MAX, &data, &size);
        if (r < 0) {
                fprintf(stderr, "%s: failed to read: %s\n", path, strerror(-r));
                return r;
        }

        /* A copy of exactly size bytes, so that ASan catches reads past the end. */
        _cleanup_free_ uint8_t *copy = malloc(size ?: 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, size);

        printf("%s (%zu bytes)... ", path, size);
        fflush(stdout);
        (void) LLVMFuzzerTestOneInput(copy, size);
        printf("ok\n");
        return 0;
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

static int run_dir(const char *dir, unsigned *n_run) {
        _cleanup_strv_free_ char **files = NULL;
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = opendir(dir);
        if (!d) {
                fprintf(stderr, "%s: failed to open: %m\n", dir);
                return -errno;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&p, "%s/%s", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                r = strv_consume(&files, TAKE_PTR(p));
                if (r < 0)
                        break;
        }
        closedir(d);
        if (r < 0)
                return r;

        if (files)
                qsort(files, strv_length(files), sizeof(char*), cmp_strp);
        STRV_FOREACH(f, files) {
                r = run_one(*f);
                if (r < 0)
                        return r;
                (*n_run)++;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned n_run = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIR...\n", argv[0]);
                return EXIT_FAILURE;
        }

        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        return EXIT_FAILURE;
                }
                if (S_ISDIR(st.st_mode))
                        r = run_dir(argv[i], &n_run);
                else {
                        r = run_one(argv[i]);
                        if (r >= 0)
                                n_run++;
                }
                if (r < 0)
                        return EXIT_FAILURE;
        }

        printf("%u input(s) run without a crash.\n", n_run);
        if (n_run == 0) {
                /* An empty corpus tests nothing: say so instead of passing. */
                fprintf(stderr, "No inputs found, skipping.\n");
                return 77;
        }
        return EXIT_SUCCESS;
}
