/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* mailsec-spamd's configuration: /etc/mailsec/spamd.conf and spamd.conf.d/ drop-ins, the
 * [Filter], [Learning] and [Service] sections (mailsec-spamd.conf(5)). */

#include <stdbool.h>
#include <stdint.h>

#include "conf-parser.h"
#include "macro.h"
#include "spam-bayes.h"
#include "time-util.h"

#define SPAMD_DEFAULT_IDLE_TIMEOUT (60 * USEC_PER_SEC)
#define SPAMD_DEFAULT_MAX_MESSAGE_SIZE ((uint64_t) 50U * 1024U * 1024U)
#define SPAMD_DEFAULT_SCAN_SIZE ((uint64_t) 2U * 1024U * 1024U)
#define SPAMD_DEFAULT_REPORTS_PER_HOUR 60U
#define SPAMD_DEFAULT_LEXICON_MIN_MESSAGES 2U
#define SPAMD_DEFAULT_AUTOLEARN_HAM 0.02
#define SPAMD_DEFAULT_AUTOLEARN_SPAM 0.995
#define SPAMD_DEFAULT_AUTOLEARN_MAX_RATIO 3.0
#define SPAMD_DEFAULT_AUTOLEARN_MIN_MESSAGES 50U
#define SPAMD_DEFAULT_AUTOLEARN_KEEP UINT64_C(50000)

typedef struct SpamConfig {
        /* [Filter] */
        SpamBayesParams bayes;          /* HamCutoff= SpamCutoff= RobinsonS= RobinsonX=
                                         * MinDeviation= MaxTokens= OrderRobinsonS=
                                         * OrderFormRobinsonS= OrderMinDeviation=
                                         * VerdictMinMessages= */
        bool deobfuscate;               /* Deobfuscate= */
        unsigned lexicon_min_messages;  /* LexiconMinMessages= */
        bool domain_statistics;         /* DomainStatistics= */
        uint64_t scan_size;             /* ScanSize=: bytes of a message that are read */

        /* [Learning] */
        bool autolearn;                 /* AutoLearn= */
        double autolearn_ham;           /* AutoLearnHamBelow= */
        double autolearn_spam;          /* AutoLearnSpamAbove= */
        double autolearn_max_ratio;     /* AutoLearnMaxRatio= */
        unsigned autolearn_min_messages; /* AutoLearnMinMessages= */
        unsigned reports_per_hour;      /* ReportsPerHour= */
        char **report_domains;          /* ReportDomains= */
        char **trusted_reporters;       /* TrustedReporters= (user names) */
        usec_t forget_after;            /* ForgetAfterSec=: compaction forgets older learns */
        uint64_t autolearn_keep;        /* AutoLearnKeep=: compaction keeps the newest this many
                                         * auto-learned messages (UINT64_MAX: all) */

        /* [Service] */
        usec_t idle_timeout;
        uint64_t max_message_size;
} SpamConfig;

int spam_config_new(SpamConfig **ret);
SpamConfig* spam_config_free(SpamConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpamConfig*, spam_config_free);

int spam_config_parse_file(SpamConfig *c, const char *path, ConfigError *error);
int spam_config_parse_text(SpamConfig *c, const char *filename, const char *text, ConfigError *error);
/* Cross-checks (HamCutoff= below SpamCutoff=, AutoLearnHamBelow= below HamCutoff=, ...). */
int spam_config_verify(const SpamConfig *c, const char *path, ConfigError *error);

/* mail: reporter address (an address of ReportDomains=); no ReportDomains= accepts none. */
bool spam_config_report_domain_allowed(const SpamConfig *c, const char *address);

extern const ConfigTableItem spam_config_table[];
extern const size_t spam_config_table_size;
