/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "fd-util.h"
#include "spamd-conf.h"
#include "string-util.h"

/* The shipped spamd.conf shows every key commented out with its default: with each
 * "#Key=value" line uncommented it must parse, and give what no file at all gives. */
START_TEST(test_shipped_defaults)
{
        _cleanup_(spam_config_freep) SpamConfig *d = NULL, *c = NULL;
        _cleanup_free_ char *text = NULL;
        ConfigError e = CONFIG_ERROR_NULL;
        const char *path = getenv("SPAMD_CONF");
        size_t size, n = 0, keys = 0;

        ck_assert_ptr_nonnull(path);
        ck_assert_int_eq(read_full_file(path, 65536, &text, &size), 0);
        /* drop the '#' of every "#Key=" line, in place */
        for (size_t i = 0; i < size; i++) {
                bool line_start = i == 0 || text[i - 1] == '\n';
                const char *eol = memchr(text + i, '\n', size - i);

                if (line_start && text[i] == '#' && i + 1 < size && text[i + 1] >= 'A' && text[i + 1] <= 'Z' &&
                    memchr(text + i, '=', (eol ? (size_t) (eol - text) : size) - i)) {
                        keys++;
                        continue;
                }
                text[n++] = text[i];
        }
        text[n] = '\0';
        ck_assert_uint_ge(keys, 20);

        ck_assert_int_eq(spam_config_new(&d), 0);
        ck_assert_int_eq(spam_config_new(&c), 0);
        ck_assert_msg(spam_config_parse_text(c, "spamd.conf", text, &e) >= 0, "%s:%u: %s", e.filename, e.line,
                      e.message);
        ck_assert_int_eq(spam_config_verify(c, "spamd.conf", &e), 0);

#define SAME(field) ck_assert_msg(c->field == d->field, "%s: shipped %g, default %g", #field, \
                                  (double) c->field, (double) d->field)
        SAME(bayes.robinson_s);
        SAME(bayes.robinson_x);
        SAME(bayes.min_dev);
        SAME(bayes.ham_cutoff);
        SAME(bayes.spam_cutoff);
        SAME(bayes.max_tokens);
        SAME(bayes.bigram_s);
        SAME(bayes.esf);
        SAME(bayes.order_s);
        SAME(bayes.order_min_dev);
        SAME(bayes.order_form_s);
        SAME(bayes.min_messages);
        SAME(bayes.spam_min_messages);
        SAME(bayes.order_nats_per_message);
        SAME(deobfuscate);
        SAME(lexicon_min_messages);
        SAME(domain_statistics);
        SAME(scan_size);
        SAME(autolearn);
        SAME(autolearn_ham);
        SAME(autolearn_spam);
        SAME(autolearn_max_ratio);
        SAME(autolearn_min_messages);
        SAME(reports_per_hour);
        SAME(forget_after);
        SAME(autolearn_keep);
        SAME(idle_timeout);
        SAME(max_message_size);
#undef SAME
        ck_assert(strv_length(c->report_domains) == 0);
        ck_assert(strv_length(c->trusted_reporters) == 0);
        config_error_done(&e);
}
END_TEST

/* A configuration text that is refused, and the line its error names. */
typedef struct Refused {
        const char *text;
        unsigned line;
} Refused;

static void check_refused(SpamConfig *c, const Refused *refused, size_t n) {
        ConfigError e = CONFIG_ERROR_NULL;

        for (size_t i = 0; i < n; i++) {
                ck_assert_msg(spam_config_parse_text(c, "t.conf", refused[i].text, &e) < 0, "accepted: %s",
                              refused[i].text);
                ck_assert_uint_eq(e.line, refused[i].line);
                config_error_done(&e);
        }
}

/* The ordering estimate's keys and the cold start's: 0 turns the estimate or the bound
 * off, a value out of range is refused with its line. */
START_TEST(test_order_keys)
{
        static const Refused refused[] = {
                { "[Filter]\n\nOrderRobinsonS=-1\n", 3 },
                { "[Filter]\nOrderFormRobinsonS=-0.5\n", 2 },
                { "[Filter]\nOrderMinDeviation=2\n", 2 },
                { "[Filter]\nOrderNatsPerMessage=-1\n", 2 },
                { "[Filter]\nOrderNatsPerMessage=1001\n", 2 },
                { "[Filter]\nOrderNatsPerMessage=one\n", 2 },
                { "[Filter]\nRobinsonS=0\n", 2 },            /* RobinsonS= still refuses 0 */
                { "[Filter]\nSpamVerdictMinMessages=-3\n", 2 },
        };
        _cleanup_(spam_config_freep) SpamConfig *c = NULL;
        ConfigError e = CONFIG_ERROR_NULL;

        ck_assert_int_eq(spam_config_new(&c), 0);
        ck_assert_int_eq(spam_config_parse_text(c, "t.conf", "[Filter]\nOrderRobinsonS=0\nOrderMinDeviation=0.1\nOrderFormRobinsonS=1e-7\n", &e), 0);
        ck_assert(c->bayes.order_s == 0);
        ck_assert(c->bayes.order_form_s == 1e-7);
        ck_assert(c->bayes.order_min_dev == 0.1);
        ck_assert_int_eq(spam_config_parse_text(c, "t.conf", "[Filter]\nOrderNatsPerMessage=0.5\nSpamVerdictMinMessages=200\n", &e), 0);
        ck_assert(c->bayes.order_nats_per_message == 0.5);
        ck_assert_uint_eq(c->bayes.spam_min_messages, 200);
        ck_assert_int_eq(spam_config_parse_text(c, "t.conf", "[Filter]\nOrderNatsPerMessage=0\n", &e), 0);
        ck_assert(c->bayes.order_nats_per_message == 0);
        check_refused(c, refused, ELEMENTSOF(refused));
}
END_TEST

/* What a compaction forgets: by default nothing by age and the auto-learned messages
 * beyond the newest 50,000; "infinity" keeps all, 0 and nonsense are refused. */
START_TEST(test_retention_keys)
{
        static const Refused refused[] = {
                { "[Learning]\nForgetAfterSec=0\n", 2 },
                { "[Learning]\nForgetAfterSec=soon\n", 2 },
                { "[Learning]\n\nAutoLearnKeep=0\n", 3 },
                { "[Learning]\nAutoLearnKeep=-5\n", 2 },
                { "[Learning]\nAutoLearnKeep=5k\n", 2 },
                { "[Learning]\nAutoLearnKeep=\n", 2 },
                { "[Learning]\nAutoLearnKeep=99999999999999999999999\n", 2 },
        };
        _cleanup_(spam_config_freep) SpamConfig *c = NULL;
        ConfigError e = CONFIG_ERROR_NULL;

        ck_assert_int_eq(spam_config_new(&c), 0);
        ck_assert(c->forget_after == USEC_INFINITY);
        ck_assert_uint_eq(c->autolearn_keep, 50000);
        ck_assert_int_eq(spam_config_parse_text(c, "t.conf", "[Learning]\nForgetAfterSec=365d\nAutoLearnKeep=120000\n", &e), 0);
        ck_assert(c->forget_after == 365 * 24 * 3600 * USEC_PER_SEC);
        ck_assert_uint_eq(c->autolearn_keep, 120000);
        ck_assert_int_eq(spam_config_parse_text(c, "t.conf", "[Learning]\nForgetAfterSec=infinity\nAutoLearnKeep=infinity\n", &e), 0);
        ck_assert(c->forget_after == USEC_INFINITY);
        ck_assert(c->autolearn_keep == UINT64_MAX);
        check_refused(c, refused, ELEMENTSOF(refused));
}
END_TEST

static Suite* spamd_conf_suite(void) {
        Suite *s = suite_create("spamd-conf");
        TCase *tc = tcase_create("keys");

        tcase_add_test(tc, test_shipped_defaults);
        tcase_add_test(tc, test_order_keys);
        tcase_add_test(tc, test_retention_keys);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(spamd_conf_suite);
