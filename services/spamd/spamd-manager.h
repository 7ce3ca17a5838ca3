/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* mailsec-spamd's Manager: the event loop, the bus, the configuration, the store and the
 * de-obfuscator built from the store's lexicon, and the operations the bus methods call
 * (spamd-bus.c does the arguments and the replies). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "macro.h"
#include "memfd-util.h"
#include "spam-bayes.h"
#include "spam-hmm.h"
#include "spam-store.h"
#include "spam-tokenizer.h"
#include "spamd-conf.h"

#define SPAM_BUS_NAME BUS_PREFIX ".Spam1"
#define SPAM_BUS_PATH BUS_PATH_PREFIX "/Spam1"
#define SPAM_BUS_INTERFACE SPAM_BUS_NAME ".Manager"
#define SPAM_ERROR_BAD_MESSAGE SPAM_BUS_NAME ".Error.BadMessage"
#define SPAM_ERROR_RATE_LIMITED SPAM_BUS_NAME ".Error.RateLimited"
#define SPAM_ERROR_NOT_ALLOWED SPAM_BUS_NAME ".Error.NotAllowed"

#define SPAMD_PROXY_USER "mailsec-proxy"
#define SPAMD_ADMIN_GROUP "mailsec"
#define SPAMD_TRUSTED_UIDS_MAX 16U
#define SPAMD_REPORTERS_MAX 4096U       /* rate-limit entries kept */
#define SPAMD_HMM_REBUILD_LEARNS 100U   /* learns before the lexicon is read again */
#define SPAMD_FLUSH_DELAY (2 * USEC_PER_SEC)    /* quiet time before pending counts are written */

typedef struct SpamdStats {
        uint64_t classified;
        uint64_t reports_accepted;
        uint64_t reports_refused;
        uint64_t autolearned;
} SpamdStats;

typedef struct ReporterWindow {
        char *reporter;
        usec_t window_start;
        unsigned count;
} ReporterWindow;

typedef struct Manager {
        char *config_path;
        char *state_dir;
        SpamConfig *config;

        sd_event *event;
        sd_bus *bus;

        SpamStore *store;
        sd_event_source *flush_timer;   /* writes pending counts once learning pauses */
        SpamHmm *hmm;                   /* NULL: Deobfuscate=no, or no lexicon yet */
        SpamHmmCache *hmm_cache;        /* kept across messages and rebuilds of hmm */
        MemfdReader message_reader;     /* the buffer messages of calls are read into */
        unsigned learns_since_hmm;

        /* root is always allowed; these uids may also name a reporter and ask for
         * auto-learning (mailsec-proxy) or name a reporter (TrustedReporters=) */
        uid_t proxy_uid;
        bool have_proxy_uid;
        uid_t trusted_uids[SPAMD_TRUSTED_UIDS_MAX];
        size_t n_trusted_uids;

        ReporterWindow *reporters;
        size_t n_reporters;

        SpamdStats stats;
} Manager;

int manager_new(const char *config_path, const char *state_dir, Manager **ret);
Manager* manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager*, manager_free);

int manager_load_config(Manager *m, ConfigError *error);
int manager_open_store(Manager *m);
int manager_setup_event(Manager *m);
int manager_connect_bus(Manager *m);
int manager_request_name(Manager *m);
bool manager_check_idle(void *userdata);

/* The operations. msg is the whole message. */
typedef struct ClassifyRequest {
        const char *client_ip;
        const char *domain;
        unsigned top;
        bool autolearn;
} ClassifyRequest;

typedef struct ClassifyResult {
        SpamBayesResult bayes;
        SpamTokens tokens;              /* with text when top > 0 */
        SpamTokenParts parts;           /* the words of each bigram, for tiled combining */
        bool learned;                   /* auto-learned */
} ClassifyResult;

void classify_result_done(ClassifyResult *r);

int manager_classify(Manager *m, const void *msg, size_t size, const ClassifyRequest *req, ClassifyResult *ret);

/* Returns 1 changed, 0 already learned so; ret_digest gets 64 hex digits + NUL: the
 * SHA-256 of the message without the fields its path adds (Received, Delivered-To, the
 * verdicts of filters, ...), with CRLF line ends, so that the copy a user reports from a
 * mailbox is the message learned at SMTP time. */
int manager_learn(Manager *m, const void *msg, size_t size, SpamClass class, SpamSource source,
                  const char *reporter, const char *domain, char ret_digest[static 65]);
int manager_forget(Manager *m, const char *digest_hex, const char *reporter);
/* spam_store_compact() with ForgetAfterSec= and AutoLearnKeep=; the records kept and the
 * journal's size after it. */
int manager_compact(Manager *m, uint64_t *ret_records, uint64_t *ret_bytes);
/* spam_store_reset(), and the de-obfuscator rebuilt from the empty lexicon. */
int manager_reset(Manager *m, const char *who);

/* Reports in the current hour of this reporter: 0 accepted (and counted), -EDQUOT over
 * ReportsPerHour=. */
int manager_rate_check(Manager *m, const char *reporter);
/* A report that changed nothing (the message was learned so already) does not count. */
void manager_rate_refund(Manager *m, const char *reporter);

int digest_from_hex(const char *s, uint8_t ret[static SPAM_DIGEST_SIZE]);
