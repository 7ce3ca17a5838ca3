/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* mailsec-spamd's statistics, owned by mailsec-spamd alone, in its state directory:
 *
 *   journal       append-only training journal, the source of truth: one record per
 *                 learn or forget (sequence number, time, message digest, class, source,
 *                 reporter, domain, the message's token hashes and its lexicon words),
 *                 each with its length and CRC-32; a torn last record (kill -9 in the
 *                 middle of a write) is cut off when the store is opened.
 *   tokens.gdbm   GDBM counts derived from the journal: per scope (global, and each
 *                 domain) the spam and ham message counts of every token and the class
 *                 totals; the class of every learned digest and where its record is; the
 *                 lexicon (word -> spam and ham counts) the HMM is built from; the schema
 *                 version. Written in batches; "tokens.dirty" exists while a batch is not
 *                 synced, and a store opened with it present replays the journal: only
 *                 the records the database misses, or all of them (a rebuild) when the
 *                 database may be half written (see spam-store.c).
 *   secret        16 random bytes (mode 0600): the SipHash key of the token hashes.
 *
 * spam_store_learn() returns only once its journal record is on disk (fdatasync), so a
 * caller may acknowledge the learn then: nothing acknowledged is lost to kill -9 or a
 * crash. Learning a digest again with the same class changes nothing; with the other
 * class it moves the message (its tokens are taken off the old class, from its journal
 * record, and added to the new). Forget takes a digest off entirely. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "spam-bayes.h"
#include "spam-token.h"

#define SPAM_DIGEST_SIZE 32U            /* SHA-256 of the message as received */
#define SPAM_STORE_SCHEMA 2U             /* 1: a GDBM key per token; 2: token pages */
#define SPAM_STORE_DOMAIN_MAX 253U
#define SPAM_STORE_REPORTER_MAX 320U
#define SPAM_STORE_TOKENS_MAX 65536U    /* per record */
#define SPAM_STORE_WORDS_MAX 4096U      /* lexicon words per record */
#define SPAM_STORE_WORD_MAX 255U        /* bytes of one lexicon word */

typedef enum SpamClass {
        SPAM_CLASS_HAM,
        SPAM_CLASS_SPAM,
        _SPAM_CLASS_MAX,
        _SPAM_CLASS_INVALID = -22,
} SpamClass;

typedef enum SpamSource {
        SPAM_SOURCE_AUTOLEARN,          /* a confident verdict on traffic */
        SPAM_SOURCE_REPORT,             /* a user's report (bus, mail, IMAP) */
        SPAM_SOURCE_ADMIN,              /* Learn by an administrator */
        _SPAM_SOURCE_MAX,
        _SPAM_SOURCE_INVALID = -22,
} SpamSource;

const char* spam_class_to_string(SpamClass c) _const_;
SpamClass spam_class_from_string(const char *s) _pure_;
const char* spam_source_to_string(SpamSource s) _const_;
SpamSource spam_source_from_string(const char *s) _pure_;

typedef struct SpamLearn {
        uint8_t digest[SPAM_DIGEST_SIZE];
        SpamClass class;
        SpamSource source;
        const char *reporter;           /* "uid:1000", "mail:alice@example.org", "autolearn" */
        const char *domain;             /* recipient domain for per-domain statistics; NULL */
        uint64_t time;                  /* seconds since the epoch; 0: now */
        const uint64_t *tokens;         /* distinct token hashes */
        size_t n_tokens;
        char * const *words;            /* distinct lexicon words (folded body words) */
        size_t n_words;

        /* Set by spam_journal_record_parse() only: the one allocation the pointers above
         * point into, freed by spam_learn_done(). NULL in a SpamLearn built by a caller. */
        void *allocation;
} SpamLearn;

typedef struct SpamStoreStats {
        SpamTotals totals;              /* global */
        uint64_t tokens;                /* distinct global tokens */
        uint64_t domains;
        uint64_t lexicon_words;
        uint64_t journal_records;
        uint64_t journal_bytes;
        uint64_t db_bytes;
} SpamStoreStats;

typedef struct SpamStore SpamStore;

/* Opens (creating what is missing) the store in dir. A journal with a torn tail is cut
 * back to its last whole record; counts that were not synced are rebuilt. */
int spam_store_open(const char *dir, SpamStore **ret);
/* Syncs pending counts and closes. */
SpamStore* spam_store_free(SpamStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpamStore*, spam_store_free);

const SpamTokenKey* spam_store_key(const SpamStore *s);

/* How much memory the store may take to hold all token counts of the database, so that a
 * look-up never reads GDBM (64 MiB by default, about a million tokens; 0: never, every
 * look-up goes through a cache of 6 MiB to GDBM). */
void spam_store_set_memory_limit(SpamStore *s, uint64_t bytes);

/* domain NULL: global. Unknown token: zero counts, 0. */
int spam_store_counts(SpamStore *s, const char *domain, uint64_t token, SpamCounts *ret);
/* The counts of tokens[0..n) into ret[0..n), the table's memory fetched ahead. Returns 1,
 * or 0 with zero counts when the domain has no statistics, or negative errno. */
int spam_store_counts_many(SpamStore *s, const char *domain, const uint64_t *tokens, size_t n, SpamCounts *ret);
int spam_store_totals(SpamStore *s, const char *domain, SpamTotals *ret);

/* Returns 1 when the statistics changed, 0 when the digest was learned with this class
 * already (nothing is journaled then), negative errno (-EINVAL for a bad record). The
 * journal record is durable when this returns > 0. */
int spam_store_learn(SpamStore *s, const SpamLearn *l);
/* Returns 1 forgotten, 0 not known. */
int spam_store_forget(SpamStore *s, const uint8_t digest[static SPAM_DIGEST_SIZE], SpamSource source,
                      const char *reporter);
/* -ENOENT when the digest is not learned. */
int spam_store_class_of(SpamStore *s, const uint8_t digest[static SPAM_DIGEST_SIZE], SpamClass *ret);
/* The same, and the source of the record that gave the message its class (read from the
 * journal). */
int spam_store_learned_by(SpamStore *s, const uint8_t digest[static SPAM_DIGEST_SIZE], SpamClass *ret_class,
                          SpamSource *ret_source);

/* Writes pending counts to the database and syncs it (also done every
 * SPAM_STORE_BATCH learns and when the store is freed). */
#define SPAM_STORE_BATCH 64U
int spam_store_flush(SpamStore *s);
/* Throws the counts away and replays the whole journal. */
int spam_store_rebuild(SpamStore *s);

/* What a compaction forgets besides what is no longer in force: the messages learned
 * before forget_before (seconds since the epoch, the time of the record that gave them
 * their class; 0: none), and of the auto-learned messages left, all but the newest
 * autolearn_keep (UINT64_MAX: none). Reports and an administrator's learns go by age
 * only. */
typedef struct SpamCompactPolicy {
        uint64_t forget_before;
        uint64_t autolearn_keep;
} SpamCompactPolicy;

/* Rewrites the journal with only the records still in force (for every learned message
 * the record that gave it its class; forgotten messages, moved messages' older records
 * and forget records go) that policy (NULL: keep all) keeps, then rebuilds the counts
 * from it: the statistics stay as they are but for the messages policy forgot, which
 * leave them exactly, and the journal shrinks. *ret_kept: the records kept,
 * *ret_forgotten: the messages forgotten by policy. */
int spam_store_compact(SpamStore *s, const SpamCompactPolicy *policy, uint64_t *ret_kept, uint64_t *ret_forgotten);
/* Throws every learned message away: an empty journal, empty counts. The secret (and so
 * the token hashes) stays. */
int spam_store_reset(SpamStore *s);

/* Every lexicon word seen in at least min_messages learned messages. */
typedef int (*SpamLexiconCallback)(const char *word, uint32_t spam, uint32_t ham, void *userdata);
int spam_store_lexicon(SpamStore *s, uint32_t min_messages, SpamLexiconCallback cb, void *userdata);

int spam_store_stats(SpamStore *s, SpamStoreStats *ret);

/* The journal record format, for the fuzz target and tools: parse one record at the start
 * of buf. Returns the record's length, 0 for a torn (incomplete) record, -EBADMSG for a
 * corrupt one. ret's pointers point into an allocation freed by spam_learn_done(); ret,
 * ret_forget and ret_seq may be NULL (ret NULL: only check, nothing allocated). */
int spam_journal_record_parse(const uint8_t *buf, size_t size, SpamLearn *ret, bool *ret_forget,
                              uint64_t *ret_seq);
void spam_learn_done(SpamLearn *l);
