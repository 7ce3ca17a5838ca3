/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "spamd-conf.h"
#include "string-util.h"

/* A positive number up to 1000 (Robinson's s, the auto-learning ratio); with ltype 1, 0
 * too (a bound that 0 turns off). */
static int config_parse_positive(const char *filename, unsigned line, const char *section, const char *lvalue,
                                 int ltype, const char *rvalue, void *data, void *userdata) {
        char *end = NULL;
        double d;

        errno = 0;
        d = strtod(rvalue, &end);
        if (errno != 0 || !end || end == rvalue || *end != 0 || !isfinite(d) || d < 0.0 || (d == 0.0 && ltype != 1) ||
            d > 1000.0) {
                config_parser_set_error(userdata, "Invalid value for %s= (a number %s expected): %s", lvalue,
                                        ltype == 1 ? "from 0 to 1000" : "above 0, at most 1000", rvalue);
                return -EINVAL;
        }
        *(double*) data = d;
        return 0;
}

static int config_parse_size_t(const char *filename, unsigned line, const char *section, const char *lvalue,
                               int ltype, const char *rvalue, void *data, void *userdata) {
        unsigned u;
        int r;

        r = config_parse_unsigned(filename, line, section, lvalue, ltype, rvalue, &u, userdata);
        if (r < 0)
                return r;
        *(size_t*) data = u;
        return 0;
}


/* AutoLearnKeep=: a positive count, or "infinity" (every auto-learned message stays). */
static int config_parse_keep(const char *filename, unsigned line, const char *section, const char *lvalue,
                             int ltype, const char *rvalue, void *data, void *userdata) {
        unsigned long long u;
        char *end = NULL;

        if (streq(rvalue, "infinity")) {
                *(uint64_t*) data = UINT64_MAX;
                return 0;
        }
        errno = 0;
        u = strtoull(rvalue, &end, 10);
        if (errno != 0 || !end || end == rvalue || *end != 0 || rvalue[0] == '-' || rvalue[0] == '+' || u == 0 ||
            u == ULLONG_MAX) {
                config_parser_set_error(userdata, "Invalid value for %s= (a number above 0, or infinity): %s", lvalue,
                                        rvalue);
                return -EINVAL;
        }
        *(uint64_t*) data = (uint64_t) u;
        return 0;
}

static bool domain_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || strstr(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '-' || *p == '.'))
                        return false;
        return true;
}

/* ReportDomains=: domains, appended; empty clears. */
static int config_parse_domains(const char *filename, unsigned line, const char *section, const char *lvalue,
                                int ltype, const char *rvalue, void *data, void *userdata) {
        char ***list = data;
        _cleanup_strv_free_ char **words = NULL;
        int r;

        r = config_parse_strv(filename, line, section, lvalue, ltype, rvalue, &words, userdata);
        if (r < 0)
                return r;
        if (!words) {
                *list = strv_free(*list);
                return 0;
        }
        STRV_FOREACH(w, words) {
                if (!domain_valid(*w)) {
                        config_parser_set_error(userdata, "Invalid domain in %s=: %s", lvalue, *w);
                        return -EINVAL;
                }
                for (char *p = *w; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char) (*p - 'A' + 'a');
                r = strv_extend(list, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* TrustedReporters=: user names, appended; empty clears. */
static int config_parse_users(const char *filename, unsigned line, const char *section, const char *lvalue,
                              int ltype, const char *rvalue, void *data, void *userdata) {
        char ***list = data;
        _cleanup_strv_free_ char **words = NULL;
        int r;

        r = config_parse_strv(filename, line, section, lvalue, ltype, rvalue, &words, userdata);
        if (r < 0)
                return r;
        if (!words) {
                *list = strv_free(*list);
                return 0;
        }
        STRV_FOREACH(w, words) {
                if (strlen(*w) > 32 || strspn(*w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(*w) ||
                    (*w)[0] == '-') {
                        config_parser_set_error(userdata, "Invalid user name in %s=: %s", lvalue, *w);
                        return -EINVAL;
                }
                r = strv_extend(list, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

const ConfigTableItem spam_config_table[] = {
        { "Filter",   "HamCutoff",              config_parse_probability,  0, offsetof(SpamConfig, bayes.ham_cutoff) },
        { "Filter",   "SpamCutoff",             config_parse_probability,  0, offsetof(SpamConfig, bayes.spam_cutoff) },
        { "Filter",   "RobinsonS",              config_parse_positive,     0, offsetof(SpamConfig, bayes.robinson_s) },
        { "Filter",   "RobinsonX",              config_parse_probability,  0, offsetof(SpamConfig, bayes.robinson_x) },
        { "Filter",   "MinDeviation",           config_parse_probability,  0, offsetof(SpamConfig, bayes.min_dev) },
        { "Filter",   "MaxTokens",              config_parse_size_t,       0, offsetof(SpamConfig, bayes.max_tokens) },
        { "Filter",   "OrderRobinsonS",         config_parse_probability,  0, offsetof(SpamConfig, bayes.order_s) },
        { "Filter",   "OrderFormRobinsonS",     config_parse_probability,  0, offsetof(SpamConfig, bayes.order_form_s) },
        { "Filter",   "OrderMinDeviation",      config_parse_probability,  0, offsetof(SpamConfig, bayes.order_min_dev) },
        { "Filter",   "OrderNatsPerMessage",    config_parse_positive,     1, offsetof(SpamConfig, bayes.order_nats_per_message) },
        { "Filter",   "VerdictMinMessages",     config_parse_unsigned,     0, offsetof(SpamConfig, bayes.min_messages) },
        { "Filter",   "SpamVerdictMinMessages", config_parse_unsigned,     0, offsetof(SpamConfig, bayes.spam_min_messages) },
        { "Filter",   "Deobfuscate",            config_parse_bool,         0, offsetof(SpamConfig, deobfuscate) },
        { "Filter",   "LexiconMinMessages",     config_parse_unsigned_min, 1, offsetof(SpamConfig, lexicon_min_messages) },
        { "Filter",   "DomainStatistics",       config_parse_bool,         0, offsetof(SpamConfig, domain_statistics) },
        { "Filter",   "ScanSize",               config_parse_size,         0, offsetof(SpamConfig, scan_size) },
        { "Learning", "AutoLearn",              config_parse_bool,         0, offsetof(SpamConfig, autolearn) },
        { "Learning", "AutoLearnHamBelow",      config_parse_probability,  0, offsetof(SpamConfig, autolearn_ham) },
        { "Learning", "AutoLearnSpamAbove",     config_parse_probability,  0, offsetof(SpamConfig, autolearn_spam) },
        { "Learning", "AutoLearnMaxRatio",      config_parse_positive,     0, offsetof(SpamConfig, autolearn_max_ratio) },
        { "Learning", "AutoLearnMinMessages",   config_parse_unsigned,     0, offsetof(SpamConfig, autolearn_min_messages) },
        { "Learning", "ReportsPerHour",         config_parse_unsigned,     0, offsetof(SpamConfig, reports_per_hour) },
        { "Learning", "ReportDomains",          config_parse_domains,      0, offsetof(SpamConfig, report_domains) },
        { "Learning", "TrustedReporters",       config_parse_users,        0, offsetof(SpamConfig, trusted_reporters) },
        { "Learning", "ForgetAfterSec",         config_parse_timeout,         0, offsetof(SpamConfig, forget_after) },
        { "Learning", "AutoLearnKeep",          config_parse_keep,         0, offsetof(SpamConfig, autolearn_keep) },
        { "Service",  "IdleTimeoutSec",         config_parse_sec,          0, offsetof(SpamConfig, idle_timeout) },
        { "Service",  "MaxMessageSize",         config_parse_size,         0, offsetof(SpamConfig, max_message_size) },
};
const size_t spam_config_table_size = ELEMENTSOF(spam_config_table);

int spam_config_new(SpamConfig **ret) {
        SpamConfig *c;

        c = calloc(1, sizeof(SpamConfig));
        if (!c)
                return -ENOMEM;
        c->bayes = spam_bayes_params_default;
        c->deobfuscate = true;
        c->lexicon_min_messages = SPAMD_DEFAULT_LEXICON_MIN_MESSAGES;
        c->domain_statistics = true;
        c->scan_size = SPAMD_DEFAULT_SCAN_SIZE;
        c->autolearn = true;
        c->autolearn_ham = SPAMD_DEFAULT_AUTOLEARN_HAM;
        c->autolearn_spam = SPAMD_DEFAULT_AUTOLEARN_SPAM;
        c->autolearn_max_ratio = SPAMD_DEFAULT_AUTOLEARN_MAX_RATIO;
        c->autolearn_min_messages = SPAMD_DEFAULT_AUTOLEARN_MIN_MESSAGES;
        c->reports_per_hour = SPAMD_DEFAULT_REPORTS_PER_HOUR;
        c->forget_after = USEC_INFINITY;
        c->autolearn_keep = SPAMD_DEFAULT_AUTOLEARN_KEEP;
        c->idle_timeout = SPAMD_DEFAULT_IDLE_TIMEOUT;
        c->max_message_size = SPAMD_DEFAULT_MAX_MESSAGE_SIZE;
        *ret = c;
        return 0;
}

SpamConfig* spam_config_free(SpamConfig *c) {
        if (!c)
                return NULL;
        strv_free(c->report_domains);
        strv_free(c->trusted_reporters);
        free(c);
        return NULL;
}

int spam_config_parse_file(SpamConfig *c, const char *path, ConfigError *error) {
        return config_parse_with_dropins(path, spam_config_table, spam_config_table_size, c, error);
}

int spam_config_parse_text(SpamConfig *c, const char *filename, const char *text, ConfigError *error) {
        return config_parse_text(filename, text, strlen(text), spam_config_table, spam_config_table_size, c, error);
}

int spam_config_verify(const SpamConfig *c, const char *path, ConfigError *error) {
        if (c->scan_size < 1024)
                return config_error_set(error, -EINVAL, path, 0, "ScanSize=%" PRIu64 " is below 1K", c->scan_size);
        if (c->bayes.ham_cutoff > c->bayes.spam_cutoff)
                return config_error_set(error, -EINVAL, path, 0,
                                        "HamCutoff=%g must not be above SpamCutoff=%g",
                                        c->bayes.ham_cutoff, c->bayes.spam_cutoff);
        if (c->autolearn_ham > c->bayes.ham_cutoff)
                return config_error_set(error, -EINVAL, path, 0,
                                        "AutoLearnHamBelow=%g must not be above HamCutoff=%g: only ham "
                                        "verdicts are learned as ham", c->autolearn_ham, c->bayes.ham_cutoff);
        if (c->autolearn_spam < c->bayes.spam_cutoff)
                return config_error_set(error, -EINVAL, path, 0,
                                        "AutoLearnSpamAbove=%g must not be below SpamCutoff=%g: only spam "
                                        "verdicts are learned as spam", c->autolearn_spam, c->bayes.spam_cutoff);
        if (c->autolearn_max_ratio < 1.0)
                return config_error_set(error, -EINVAL, path, 0,
                                        "AutoLearnMaxRatio=%g must be at least 1", c->autolearn_max_ratio);
        return 0;
}

bool spam_config_report_domain_allowed(const SpamConfig *c, const char *address) {
        const char *at;

        if (!address)
                return false;
        at = strrchr(address, '@');
        if (!at || at[1] == 0)
                return false;
        STRV_FOREACH(d, c->report_domains) {
                size_t n = strlen(*d), m = strlen(at + 1);

                /* the domain itself, or a subdomain of it */
                if (strcaseeq(at + 1, *d) ||
                    (m > n + 1 && at[m - n] == '.' && strcasecmp(at + 1 + m - n, *d) == 0))
                        return true;
        }
        return false;
}
