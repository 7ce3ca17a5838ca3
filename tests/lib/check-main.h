/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The common main() of every Check test binary:
 *
 *         static Suite* smtp_reply_suite(void) { ... }
 *         CHECK_MAIN(smtp_reply_suite);
 *
 * runs the suite in Check's default fork mode (a crash fails one test, not the run; set
 * CK_FORK=no when debugging), prints Check's summary and returns EXIT_SUCCESS only if
 * every test passed. A suite that cannot run here (missing optional tool) should not be
 * registered at all, or its binary exits with 77 (meson's "skipped") before CHECK_MAIN. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK_MAIN(suite_function)                                              \
        int main(void) {                                                        \
                SRunner *_sr_;                                                  \
                int _failed_;                                                   \
                                                                                \
                _sr_ = srunner_create(suite_function());                        \
                srunner_run_all(_sr_, CK_NORMAL);                               \
                _failed_ = srunner_ntests_failed(_sr_);                         \
                /* CK_NORMAL prints the summary line; say it once more for logs */ \
                fprintf(stderr, "%s: %d test(s) failed\n",                      \
                        #suite_function, _failed_);                             \
                srunner_free(_sr_);                                             \
                return _failed_ == 0 ? EXIT_SUCCESS : EXIT_FAILURE;             \
        }                                                                       \
        struct _check_main_needs_semicolon
