/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* mailsec-spamd's statistics store: the training journal (the source of truth) and the
 * GDBM counts derived from it. See spam-store.h for what the files are for; this comment
 * fixes their layouts. All integers are little-endian.
 *
 * JOURNAL ("journal"): records back to back, no file header. One record:
 *
 *   offset size
 *        0    4  magic "MSJ1" (bytes 4d 53 4a 31)
 *        4    2  version, 1
 *        6    1  kind: 0 learn, 1 forget
 *        7    1  class: 0 ham, 1 spam (for a forget: the class the message had)
 *        8    4  length of the whole record in bytes
 *       12    4  CRC-32 (ISO-HDLC, as zlib's crc32()) over bytes [0, 12) and [16, length)
 *       16    8  sequence number: 1 for the first record, +1 for each next one
 *       24    8  time, seconds since the epoch
 *       32   32  message digest (SHA-256 of the message as received)
 *       64    1  source: 0 autolearn, 1 report, 2 admin
 *       65    1  reserved, 0
 *       66    2  reporter length R (0..320)
 *       68    2  domain length D (0..253; 0: no per-domain statistics)
 *       70    2  reserved, 0
 *       72    4  number of token hashes T (0..65536)
 *       76    4  number of lexicon words W (0..4096)
 *       80  8*T  token hashes, u64, strictly increasing
 *            R  reporter: no control characters
 *            D  domain: lower case, no control characters, no spaces
 *               W words: u8 length (1..255), then that many bytes (no NUL), the words
 *               strictly increasing in byte order
 *
 * A forget record has T = W = D = 0. A learn of a digest that is learned with the other
 * class (a move) is an ordinary learn record: replaying it takes the message's tokens off
 * the class of its previous record and adds this record's, exactly as when it was learned.
 * Each record is written with one write() at the end of the file and fdatasync()ed before
 * the learn returns.
 *
 * Opening the store reads and checks every record. A record that is incomplete or fails
 * its checks, with no valid record after it, is a torn tail (a kill -9 or a power cut in
 * the middle of a write, which was never acknowledged) and is cut off with ftruncate().
 * A bad record followed by valid ones is damage that cutting would make worse: opening
 * fails with -EBADMSG and logs the offset. mailsec-spamd then refuses to start and says
 * so; the administrator keeps a copy of the journal and either restores it from a backup
 * or cuts it at the logged offset (losing what follows, which a rebuild then reflects),
 * e.g. with truncate(1), and restarts the service.
 *
 * GDBM ("tokens.gdbm"), keys and values:
 *
 *   "V"                             header: u32 schema (SPAM_STORE_SCHEMA), u32 next
 *                                   domain scope id, u64 sequence number of the last
 *                                   journal record applied, u64 journal length applied,
 *                                   u64 distinct global tokens, u64 lexicon words,
 *                                   8 bytes key id (SHA-256 of the secret, first 8 bytes)
 *                                   (48 bytes)
 *   'P' u32 scope, u16 page         the counts of the scope's tokens whose hash has page
 *                                   as its top 16 bits: entries of u64 token, u32 spam
 *                                   messages, u32 ham messages, sorted by token, then
 *                                   zeros up to page_padded_size() (a token page)
 *   'S' u32 scope                   u64 spam messages, u64 ham messages (class totals)
 *   'D' digest[32]                  u8 class, 3 bytes 0, u32 scope, u64 journal offset of
 *                                   the message's latest learn record
 *   'N' domain                      u32 scope
 *   'W' word                        u32 spam messages, u32 ham messages (lexicon)
 *
 * Scope 0 is global; domains get the scopes 1, 2, ... in the order they are first
 * learned. A learn with a domain counts in the global scope and in the domain's scope.
 * Keys whose counts drop to zero are deleted, and so are tokens from their page (and a
 * page left without tokens).
 *
 * Why pages: GDBM spends about 90 bytes of file on a record of 8 bytes (its bucket entry,
 * the key, the bucket's free room), and two thirds of the tokens of a filter are seen in
 * one message only. With one record per token, group 1 of the SpamAssassin corpus (3,250
 * messages, 476,701 tokens) took 45.6 MB; in 65,536 pages per scope, with room for a
 * few more tokens in each (page_padded_size()), it takes 12.7 MB when written anew (a
 * rebuild, a compaction) and about 18 MB when learned message by message, as pages that
 * outgrow their room leave their old space behind (tests/bench/README.md has the
 * figures). A page is read, merged with the batch's deltas and written once per batch
 * that touches it.
 *
 * Count changes are kept in memory (tokens in an open-addressing table, the rest in
 * search trees) and written every SPAM_STORE_BATCH learns, on flush and on free, followed
 * by gdbm_sync(); the header is written last. "tokens.dirty" is created (empty) before the
 * first journal record that the database does not reflect yet, and removed after the
 * sync. Before the database is written to, the marker gets the content "w" and is synced:
 * from then until the sync the database may be half written.
 *
 * When the store is opened:
 *   - marker "w" (a crash or kill -9 while a batch was written), a database GDBM cannot
 *     open, another schema, no header, or a header that names a journal position the
 *     journal does not have: the counts are rebuilt, the journal replayed into
 *     "tokens.gdbm.new", which is then renamed over "tokens.gdbm";
 *   - a header behind the journal otherwise (a crash or kill -9 between batches, with the
 *     marker empty): the database is as its last sync left it, and only the records after
 *     the header's position are replayed (caught up), if the first of them carries the
 *     next sequence number; else the counts are rebuilt.
 * A rebuild is linear in the journal's length (minutes for millions of records), a catch-up
 * in the records of one batch.
 *
 * SECRET ("secret"): 16 bytes from getrandom(), mode 0600, created with O_EXCL and synced.
 * A secret of another size (a crash while it was created) is made anew while the journal
 * is empty, and is an error once it is not. */

#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "spam-store.h"
#include "string-util.h"

#define JOURNAL_MAGIC UINT32_C(0x314a534d)
#define JOURNAL_VERSION 1U
#define JOURNAL_HEADER_SIZE 80U
#define JOURNAL_KIND_LEARN 0U
#define JOURNAL_KIND_FORGET 1U
#define JOURNAL_RECORD_MAX                                                      \
        ((size_t) JOURNAL_HEADER_SIZE + 8U * SPAM_STORE_TOKENS_MAX +            \
         SPAM_STORE_REPORTER_MAX + SPAM_STORE_DOMAIN_MAX +                      \
         SPAM_STORE_WORDS_MAX * (1U + SPAM_STORE_WORD_MAX))

#define JOURNAL_FILE "journal"
#define DB_FILE "tokens.gdbm"
#define DB_NEW_FILE "tokens.gdbm.new"
#define JOURNAL_NEW_FILE "journal.new"
#define DIRTY_FILE "tokens.dirty"
#define SECRET_FILE "secret"
#define DIRTY_WRITING "w"       /* the content of DIRTY_FILE while the database is written */

#define KEY_HEADER 'V'
#define KEY_PAGE 'P'
#define KEY_TOTALS 'S'
#define KEY_DIGEST 'D'
#define KEY_DOMAIN 'N'
#define KEY_WORD 'W'
#define KEY_MAX (1U + SPAM_STORE_WORD_MAX)      /* the longest key: 'W' and a word */

/* GDBM's block (and bucket) size for a database it creates. The file grows by blocks, and
 * GDBM maps it into memory anew whenever it grows past the mapping: with its default of
 * 4 KiB, learning 15,000 messages of tests/bench/spam-store-scale spent most of its time
 * unmapping and faulting the file back in (33.7 s, against 13.9 s with 64 KiB blocks;
 * the file is the same size). */
#define DB_BLOCK_SIZE 65536

#define HEADER_SIZE 48U
#define PAGE_KEY_SIZE 7U
#define PAGE_BITS 16
#define PAGE_ENTRY_SIZE 16U
#define COUNTS_SIZE 8U
#define TOTALS_SIZE 16U
#define DIGEST_VALUE_SIZE 16U
#define KEY_ID_SIZE 8U

/* A rebuild writes what it has gathered to the database when this much is pending, so
 * that replaying a long journal needs bounded memory. */
#define REBUILD_TOKENS_PENDING_MAX (4U * 1024U * 1024U)
#define REBUILD_ITEMS_PENDING_MAX (512U * 1024U)

/* Buffer of the sequential journal reader; grows for records larger than this. */
#define JOURNAL_READ_CHUNK (1024U * 1024U)

/* ---- little-endian fields, CRC-32 ---- */

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (size_t i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
        for (size_t i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p) {
        return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p) {
        uint32_t v = 0;

        for (size_t i = 0; i < 4; i++)
                v |= (uint32_t) p[i] << (8 * i);
        return v;
}

static uint64_t get_le64(const uint8_t *p) {
        uint64_t v = 0;

        for (size_t i = 0; i < 8; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

static uint32_t crc32_table[256];
static bool crc32_table_ready;

/* The reflected CRC-32 with polynomial 0x04c11db7 (ISO-HDLC), the one zlib and gzip use,
 * so that crc32(1) tools can check a record by hand. Chains like zlib's: pass the
 * previous result to continue. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
        if (!crc32_table_ready) {
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t c = i;

                        for (unsigned k = 0; k < 8; k++)
                                c = c & 1 ? UINT32_C(0xedb88320) ^ (c >> 1) : c >> 1;
                        crc32_table[i] = c;
                }
                crc32_table_ready = true;
        }

        crc = ~crc;
        for (size_t i = 0; i < n; i++)
                crc = crc32_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
        return ~crc;
}

static uint32_t journal_record_crc(const uint8_t *rec, size_t length) {
        assert(length >= JOURNAL_HEADER_SIZE);

        return crc32_update(crc32_update(0, rec, 12), rec + 16, length - 16);
}

/* ---- names ---- */

static const char* const spam_class_table[_SPAM_CLASS_MAX] = {
        [SPAM_CLASS_HAM] = "ham",
        [SPAM_CLASS_SPAM] = "spam",
};

static const char* const spam_source_table[_SPAM_SOURCE_MAX] = {
        [SPAM_SOURCE_AUTOLEARN] = "autolearn",
        [SPAM_SOURCE_REPORT] = "report",
        [SPAM_SOURCE_ADMIN] = "admin",
};

const char* spam_class_to_string(SpamClass c) {
        if (c < 0 || c >= _SPAM_CLASS_MAX)
                return NULL;
        return spam_class_table[c];
}

SpamClass spam_class_from_string(const char *s) {
        if (!s)
                return _SPAM_CLASS_INVALID;
        for (int i = 0; i < _SPAM_CLASS_MAX; i++)
                if (streq(s, spam_class_table[i]))
                        return (SpamClass) i;
        return _SPAM_CLASS_INVALID;
}

const char* spam_source_to_string(SpamSource s) {
        if (s < 0 || s >= _SPAM_SOURCE_MAX)
                return NULL;
        return spam_source_table[s];
}

SpamSource spam_source_from_string(const char *s) {
        if (!s)
                return _SPAM_SOURCE_INVALID;
        for (int i = 0; i < _SPAM_SOURCE_MAX; i++)
                if (streq(s, spam_source_table[i]))
                        return (SpamSource) i;
        return _SPAM_SOURCE_INVALID;
}

/* ---- field checks, shared by learn and by the record parser ---- */

static bool reporter_valid(const char *s, size_t n) {
        if (n > SPAM_STORE_REPORTER_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((uint8_t) s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

static bool domain_valid(const char *s, size_t n) {
        if (n == 0 || n > SPAM_STORE_DOMAIN_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((uint8_t) s[i] <= 0x20 || s[i] == 0x7f || (s[i] >= 'A' && s[i] <= 'Z'))
                        return false;
        return true;
}

/* The domain as stored (ASCII lower case) into buf; 0 and an empty buf for none. */
static int domain_fold(const char *domain, char buf[static SPAM_STORE_DOMAIN_MAX + 1]) {
        size_t n;

        buf[0] = 0;
        if (isempty(domain))
                return 0;

        n = strnlen(domain, SPAM_STORE_DOMAIN_MAX + 1);
        if (n > SPAM_STORE_DOMAIN_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                buf[i] = domain[i] >= 'A' && domain[i] <= 'Z' ? (char) (domain[i] - 'A' + 'a') : domain[i];
        buf[n] = 0;

        return domain_valid(buf, n) ? 1 : -EINVAL;
}

/* ---- journal records ---- */

void spam_learn_done(SpamLearn *l) {
        if (!l)
                return;
        free(l->allocation);
        *l = (SpamLearn) {};
}

int spam_journal_record_parse(const uint8_t *buf, size_t size, SpamLearn *ret, bool *ret_forget,
                              uint64_t *ret_seq) {
        static const uint8_t magic[4] = { 0x4d, 0x53, 0x4a, 0x31 };
        uint32_t length, n_tokens, n_words;
        uint16_t reporter_len, domain_len;
        size_t p, words_start, words_bytes = 0;
        uint8_t kind, class, source;
        uint64_t seq, prev_token = 0;

        assert(buf || size == 0);

        /* What is there of the magic must match: a tail of zeros (a power cut after the
         * file grew) is corrupt, not merely short. */
        if (memcmp(buf, magic, MIN(size, sizeof(magic))) != 0)
                return -EBADMSG;
        if (size < JOURNAL_HEADER_SIZE)
                return 0;

        if (get_le16(buf + 4) != JOURNAL_VERSION)
                return -EBADMSG;
        kind = buf[6];
        class = buf[7];
        if (kind > JOURNAL_KIND_FORGET || class >= _SPAM_CLASS_MAX)
                return -EBADMSG;
        length = get_le32(buf + 8);
        if (length < JOURNAL_HEADER_SIZE || length > JOURNAL_RECORD_MAX)
                return -EBADMSG;
        if (size < length)
                return 0;
        if (get_le32(buf + 12) != journal_record_crc(buf, length))
                return -EBADMSG;

        seq = get_le64(buf + 16);
        source = buf[64];
        reporter_len = get_le16(buf + 66);
        domain_len = get_le16(buf + 68);
        n_tokens = get_le32(buf + 72);
        n_words = get_le32(buf + 76);
        if (seq == 0 || source >= _SPAM_SOURCE_MAX || buf[65] != 0 || get_le16(buf + 70) != 0)
                return -EBADMSG;
        if (reporter_len > SPAM_STORE_REPORTER_MAX || domain_len > SPAM_STORE_DOMAIN_MAX ||
            n_tokens > SPAM_STORE_TOKENS_MAX || n_words > SPAM_STORE_WORDS_MAX)
                return -EBADMSG;
        if (kind == JOURNAL_KIND_FORGET && (n_tokens > 0 || n_words > 0 || domain_len > 0))
                return -EBADMSG;

        p = JOURNAL_HEADER_SIZE;
        if ((size_t) n_tokens * 8U + reporter_len + domain_len > length - p)
                return -EBADMSG;
        for (uint32_t i = 0; i < n_tokens; i++) {
                uint64_t t = get_le64(buf + p + 8U * i);

                if (i > 0 && t <= prev_token)
                        return -EBADMSG;
                prev_token = t;
        }
        p += 8U * n_tokens;
        if (!reporter_valid((const char*) buf + p, reporter_len))
                return -EBADMSG;
        p += reporter_len;
        if (domain_len > 0 && !domain_valid((const char*) buf + p, domain_len))
                return -EBADMSG;
        p += domain_len;

        words_start = p;
        for (uint32_t i = 0; i < n_words; i++) {
                size_t n;

                if (p >= length)
                        return -EBADMSG;
                n = buf[p++];
                if (n == 0 || n > length - p || memchr(buf + p, 0, n))
                        return -EBADMSG;
                if (i > 0) {
                        /* strictly increasing: compare with the previous word */
                        const uint8_t *prev = buf + words_start + 1;
                        size_t prev_n = buf[words_start];
                        int c = memcmp(prev, buf + p, MIN(prev_n, n));

                        if (c > 0 || (c == 0 && prev_n >= n))
                                return -EBADMSG;
                        words_start = p - 1;
                }
                p += n;
                words_bytes += n + 1;
        }
        if (p != length)
                return -EBADMSG;

        if (ret) {
                size_t tokens_off, words_off, strings_off, alloc_size;
                uint8_t *a;
                char *str, **words;
                uint64_t *tokens;

                /* One allocation: tokens, word pointers, then the NUL-terminated strings
                 * (reporter, domain, words). */
                tokens_off = 0;
                words_off = (size_t) n_tokens * sizeof(uint64_t);
                strings_off = words_off + (size_t) n_words * sizeof(char*);
                alloc_size = strings_off + reporter_len + 1 + domain_len + 1 + words_bytes;

                a = malloc(alloc_size);
                if (!a)
                        return -ENOMEM;
                tokens = (uint64_t*) (a + tokens_off);
                words = (char**) (a + words_off);
                str = (char*) (a + strings_off);

                for (uint32_t i = 0; i < n_tokens; i++)
                        tokens[i] = get_le64(buf + JOURNAL_HEADER_SIZE + 8U * i);

                p = JOURNAL_HEADER_SIZE + 8U * n_tokens;
                memcpy(str, buf + p, reporter_len);
                str[reporter_len] = 0;
                *ret = (SpamLearn) {
                        .class = (SpamClass) class,
                        .source = (SpamSource) source,
                        .reporter = str,
                        .time = get_le64(buf + 24),
                        .tokens = n_tokens > 0 ? tokens : NULL,
                        .n_tokens = n_tokens,
                        .words = n_words > 0 ? words : NULL,
                        .n_words = n_words,
                        .allocation = a,
                };
                memcpy(ret->digest, buf + 32, SPAM_DIGEST_SIZE);
                str += reporter_len + 1;
                p += reporter_len;

                memcpy(str, buf + p, domain_len);
                str[domain_len] = 0;
                ret->domain = domain_len > 0 ? str : NULL;
                str += domain_len + 1;
                p += domain_len;

                for (uint32_t i = 0; i < n_words; i++) {
                        size_t n = buf[p++];

                        memcpy(str, buf + p, n);
                        str[n] = 0;
                        words[i] = str;
                        str += n + 1;
                        p += n;
                }
        }

        if (ret_forget)
                *ret_forget = kind == JOURNAL_KIND_FORGET;
        if (ret_seq)
                *ret_seq = seq;
        return (int) length;
}

/* ---- the store ---- */

typedef struct TokenDelta {
        uint64_t token;
        uint32_t scope;
        bool used;
        int64_t spam, ham;
} TokenDelta;

/* A pending change of one non-token key (totals, digest, word), or a cached domain. The
 * key is the GDBM key. */
typedef struct Item {
        int64_t spam, ham;              /* KEY_TOTALS, KEY_WORD: deltas */
        uint64_t offset;                /* KEY_DIGEST */
        uint32_t scope;                 /* KEY_DIGEST, KEY_DOMAIN */
        uint8_t class;                  /* KEY_DIGEST */
        bool present;                   /* KEY_DIGEST: false once forgotten */
        bool dirty;                     /* KEY_DOMAIN: not in the database yet */
        size_t key_len;
        uint8_t key[];
} Item;

/* A direct-mapped cache of the database's token counts (also of tokens it does not
 * have), in front of every look-up by spam_store_counts() while the counts table below
 * is not loaded (allocated the first time it is needed): the database is ours alone,
 * so it changes only where we write it (store_write_pending(), a new database), and
 * those places drop what they change. 2^18 entries of 24 bytes, 6 MiB. A GDBM look-up
 * reads and searches a token page, and a classification looks up hundreds of tokens,
 * most of them common ones: with group 1 of the SpamAssassin corpus learned and no
 * table, classifying group 2 takes 0.27 µs a look-up against 0.14 with the table. */
#define COUNTS_CACHE_BITS 18
typedef struct CountsCacheEntry {
        uint64_t token;
        uint32_t scope;                 /* scope + 1; 0: the entry is empty */
        uint32_t spam, ham;
} CountsCacheEntry;

/* Every token count of the database in memory, when they fit in memory_limit
 * (spam_store_set_memory_limit(), 64 MiB by default: 2^21 entries of 24 bytes, at most
 * half full, so about a million tokens): then a look-up never goes to GDBM, and a token
 * that is not in the table has no counts. Loaded from the database's keys when the store
 * is opened and after a rebuild (GDBM gives group 1's 476,701 tokens, in 65,536 pages,
 * in about 0.12 s here; a look-up loads it when it is missing otherwise), kept in step by
 * store_write_pending(), which writes every change to both. Past the limit the table is
 * dropped, and the cache above serves until the next rebuild. Open addressing, linear
 * probing, at most half full. */
typedef struct CountsTableEntry {
        uint64_t token;
        uint32_t scope;                 /* scope + 1; 0: the entry is empty */
        uint32_t spam, ham;
} CountsTableEntry;
#define COUNTS_TABLE_MIN 4096U
#define SPAM_STORE_MEMORY_LIMIT_DEFAULT (UINT64_C(64) * 1024 * 1024)

typedef struct DigestInfo {
        bool known;
        SpamClass class;
        uint32_t scope;
        uint64_t offset;
} DigestInfo;

struct SpamStore {
        char *dir;
        char *db_path;
        int dir_fd;
        int journal_fd;
        GDBM_FILE db;
        CountsCacheEntry *cache;        /* what the database says, for tokens looked up lately */
        CountsTableEntry *table;        /* all of the database's token counts, when they fit */
        size_t table_size, table_used;  /* entries (a power of two), of them in use */
        bool table_unfit;               /* more than memory_limit: not loaded again until a rebuild */
        uint64_t memory_limit;
        SpamTokenKey key;
        uint8_t key_id[KEY_ID_SIZE];

        /* The journal as read and written; what the header holds after the next write. */
        uint64_t seq;
        uint64_t journal_end;
        uint64_t n_records;
        uint32_t next_scope;
        uint64_t global_tokens;
        uint64_t lexicon_words;

        /* pending count changes */
        TokenDelta *tokens;
        size_t tokens_size;             /* a power of two, or 0 */
        size_t tokens_used;
        void *items;                    /* tsearch tree of Item */
        size_t n_items;
        void *domains;                  /* tsearch tree of Item: domain name -> scope */

        unsigned batch;                 /* learns and forgets since the last write */
        bool dirty;                     /* DIRTY_FILE exists */
        bool db_broken;                 /* a write failed half way: rebuild before use */
        bool journal_broken;            /* a failed append could not be taken back */

        uint8_t *wbuf;
        size_t wbuf_size;
};

static int db_error(GDBM_FILE db) {
        gdbm_error e = db ? gdbm_last_errno(db) : gdbm_errno;

        if (gdbm_check_syserr(e) && errno > 0)
                return -errno;
        switch (e) {
        case GDBM_NO_ERROR:
                return -EIO;
        case GDBM_MALLOC_ERROR:
                return -ENOMEM;
        case GDBM_CANT_BE_WRITER:
        case GDBM_CANT_BE_READER:
                return -EBUSY;
        case GDBM_ITEM_NOT_FOUND:
                return -ENOENT;
        case GDBM_FILE_OPEN_ERROR:
                return -EACCES;
        default:
                return -EBADMSG;
        }
}

static const char* db_strerror(GDBM_FILE db) {
        return gdbm_strerror(db ? gdbm_last_errno(db) : gdbm_errno);
}

/* 1 and the value, 0 when the key is not there, -EBADMSG for a value of another size. */
static int db_fetch(GDBM_FILE db, const void *key, size_t key_len, void *ret, size_t value_size) {
        datum k = { .dptr = (char*) key, .dsize = (int) key_len };
        datum v;

        v = gdbm_fetch(db, k);
        if (!v.dptr) {
                if (gdbm_last_errno(db) == GDBM_ITEM_NOT_FOUND) {
                        gdbm_clear_error(db);
                        return 0;
                }
                return db_error(db);
        }
        if ((size_t) v.dsize != value_size) {
                free(v.dptr);
                return -EBADMSG;
        }
        memcpy(ret, v.dptr, value_size);
        free(v.dptr);
        return 1;
}

static int db_store(GDBM_FILE db, const void *key, size_t key_len, const void *value, size_t value_size) {
        datum k = { .dptr = (char*) key, .dsize = (int) key_len };
        datum v = { .dptr = (char*) value, .dsize = (int) value_size };

        if (gdbm_store(db, k, v, GDBM_REPLACE) != 0)
                return db_error(db);
        return 0;
}

static int db_delete(GDBM_FILE db, const void *key, size_t key_len) {
        datum k = { .dptr = (char*) key, .dsize = (int) key_len };

        if (gdbm_delete(db, k) != 0) {
                if (gdbm_last_errno(db) == GDBM_ITEM_NOT_FOUND) {
                        gdbm_clear_error(db);
                        return 0;
                }
                return db_error(db);
        }
        return 0;
}

/* ---- token pages ---- */

static uint16_t page_of(uint64_t token) {
        return (uint16_t) (token >> (64 - PAGE_BITS));
}

static size_t key_page(uint8_t k[static PAGE_KEY_SIZE], uint32_t scope, uint16_t page) {
        k[0] = KEY_PAGE;
        put_le32(k + 1, scope);
        put_le16(k + 5, page);
        return PAGE_KEY_SIZE;
}

/* The bytes a page with n bytes of entries is stored in: room for a multiple of 4 entries
 * up to 32, of 8 up to 64, of 16 up to 128, and so on (at most a quarter more than
 * needed beyond 32), the rest zeros. GDBM writes a value of the same size in place and
 * moves one of another size, freeing its old space, which it reuses only for smaller
 * values. Pages that gain a token or two per batch keep their size and place most of the
 * time this way: learning group 1 message by message leaves a file of 17.7 MB instead of
 * 24.7 MB with pages of the exact size (4 KiB blocks; tests/bench/README.md). */
static size_t page_padded_size(size_t n) {
        size_t entries = n / PAGE_ENTRY_SIZE, step = 4;

        while (entries > 8 * step)
                step *= 2;
        return (entries + step - 1) / step * step * PAGE_ENTRY_SIZE;
}

/* Checks the value of a token page: whole entries, sorted by token and distinct, each of
 * this page, none with both counts at zero, then zeros up to page_padded_size(). Returns
 * the size of the entries, or -EBADMSG. */
static ssize_t page_check(const uint8_t *v, size_t size, uint16_t page) {
        uint64_t prev = 0;
        size_t n = 0;

        if (size % PAGE_ENTRY_SIZE != 0)
                return -EBADMSG;
        for (; n < size; n += PAGE_ENTRY_SIZE) {
                uint64_t token = get_le64(v + n);

                if (get_le32(v + n + 8) == 0 && get_le32(v + n + 12) == 0)
                        break;          /* the padding */
                if (page_of(token) != page || (n > 0 && token <= prev))
                        return -EBADMSG;
                prev = token;
        }
        if (n == 0 || page_padded_size(n) != size)
                return -EBADMSG;
        for (size_t i = n; i < size; i++)
                if (v[i] != 0)
                        return -EBADMSG;
        return (ssize_t) n;
}

/* 1 and the page's value in *ret (to be freed), 0 when the database has no such page, or
 * negative errno. A page that fails its checks marks the database broken (it is derived
 * from the journal, so the next use rebuilds it) and gives -EBADMSG. */
static int page_fetch(SpamStore *s, uint32_t scope, uint16_t page, uint8_t **ret, size_t *ret_size) {
        uint8_t key[PAGE_KEY_SIZE];
        datum k = { .dptr = (char*) key, .dsize = (int) key_page(key, scope, page) };
        datum v;
        ssize_t n;

        *ret = NULL;
        *ret_size = 0;
        v = gdbm_fetch(s->db, k);
        if (!v.dptr) {
                if (gdbm_last_errno(s->db) == GDBM_ITEM_NOT_FOUND) {
                        gdbm_clear_error(s->db);
                        return 0;
                }
                return db_error(s->db);
        }
        n = v.dsize <= 0 ? -EBADMSG : page_check((const uint8_t*) v.dptr, (size_t) v.dsize, page);
        if (n < 0) {
                free(v.dptr);
                s->db_broken = true;
                return log_error_errno(EBADMSG,
                                       "%s: token page %u of scope %" PRIu32 " is damaged, the counts will be rebuilt "
                                       "from the journal.", s->db_path, page, scope);
        }
        *ret = (uint8_t*) v.dptr;
        *ret_size = (size_t) n;
        return 1;
}

/* A token's counts in a checked page: true when it is there. */
static bool page_find(const uint8_t *v, size_t size, uint64_t token, uint32_t *ret_spam, uint32_t *ret_ham) {
        size_t lo = 0, hi = size / PAGE_ENTRY_SIZE;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                uint64_t t = get_le64(v + mid * PAGE_ENTRY_SIZE);

                if (t == token) {
                        *ret_spam = get_le32(v + mid * PAGE_ENTRY_SIZE + 8);
                        *ret_ham = get_le32(v + mid * PAGE_ENTRY_SIZE + 12);
                        return true;
                }
                if (t < token)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

/* ---- pending token deltas: open addressing, linear probing ---- */

static uint64_t mix64(uint64_t x) {
        /* Token hashes are keyed and uniform already; the mixing protects the table from
         * structured values (the scope in the high bits, tests, a crafted journal). */
        x ^= x >> 33;
        x *= UINT64_C(0xff51afd7ed558ccd);
        x ^= x >> 33;
        x *= UINT64_C(0xc4ceb9fe1a85ec53);
        x ^= x >> 33;
        return x;
}

static size_t token_slot(const SpamStore *s, uint32_t scope, uint64_t token) {
        return (size_t) mix64(token ^ ((uint64_t) scope * UINT64_C(0x9e3779b97f4a7c15))) & (s->tokens_size - 1);
}

static CountsCacheEntry* counts_cache_slot(const SpamStore *s, uint32_t scope, uint64_t token) {
        if (!s->cache)
                return NULL;
        return s->cache + (mix64(token ^ ((uint64_t) scope << 32)) >> (64 - COUNTS_CACHE_BITS));
}

static void counts_cache_drop(SpamStore *s, uint32_t scope, uint64_t token) {
        CountsCacheEntry *e = counts_cache_slot(s, scope, token);

        if (e && e->scope == scope + 1 && e->token == token)
                e->scope = 0;
}

static void counts_cache_clear(SpamStore *s) {
        if (s->cache)
                memset(s->cache, 0, sizeof(CountsCacheEntry) << COUNTS_CACHE_BITS);
}

static size_t counts_table_home(const SpamStore *s, uint32_t scope, uint64_t token) {
        return (size_t) mix64(token ^ ((uint64_t) scope << 32) ^ UINT64_C(0x5bd1e995)) & (s->table_size - 1);
}

static CountsTableEntry* counts_table_find(const SpamStore *s, uint32_t scope, uint64_t token) {
        size_t mask = s->table_size - 1;

        for (size_t i = counts_table_home(s, scope, token);; i = (i + 1) & mask) {
                CountsTableEntry *e = s->table + i;

                if (e->scope == 0)
                        return NULL;
                if (e->scope == scope + 1 && e->token == token)
                        return e;
        }
}

static void counts_table_drop(SpamStore *s) {
        free(s->table);
        s->table = NULL;
        s->table_size = s->table_used = 0;
}

/* Grows to size entries, if the memory limit allows; false when it does not (or no
 * memory): the table is dropped then, and marked unfit. */
static bool counts_table_resize(SpamStore *s, size_t size) {
        CountsTableEntry *t, *old = s->table;
        size_t old_size = s->table_size;

        if ((uint64_t) size * sizeof(CountsTableEntry) > s->memory_limit ||
            !(t = calloc(size, sizeof(CountsTableEntry)))) {
                counts_table_drop(s);
                s->table_unfit = true;
                return false;
        }
        s->table = t;
        s->table_size = size;
        for (size_t i = 0; i < old_size; i++)
                if (old[i].scope != 0) {
                        size_t j = counts_table_home(s, old[i].scope - 1, old[i].token);

                        while (t[j].scope != 0)
                                j = (j + 1) & (size - 1);
                        t[j] = old[i];
                }
        free(old);
        return true;
}

/* Sets a token's counts in the table (a token at zero stays, with zero counts). */
static void counts_table_set(SpamStore *s, uint32_t scope, uint64_t token, uint32_t spam, uint32_t ham) {
        CountsTableEntry *e;
        size_t i;

        if (!s->table)
                return;
        e = counts_table_find(s, scope, token);
        if (e) {
                e->spam = spam;
                e->ham = ham;
                return;
        }
        if ((s->table_used + 1) * 2 > s->table_size && !counts_table_resize(s, s->table_size * 2))
                return;
        for (i = counts_table_home(s, scope, token); s->table[i].scope != 0; i = (i + 1) & (s->table_size - 1))
                ;
        s->table[i] = (CountsTableEntry) { .token = token, .scope = scope + 1, .spam = spam, .ham = ham };
        s->table_used++;
}

/* All token counts of the database, if they fit. On failure there is no table. */
static void counts_table_load(SpamStore *s) {
        size_t size = COUNTS_TABLE_MIN;
        datum key;

        counts_table_drop(s);
        if (!s->db || s->table_unfit)
                return;

        /* the global tokens are most of them: at most half full with those */
        while (size < 2 * s->global_tokens + 2 && size < SIZE_MAX / 4)
                size *= 2;
        if (!counts_table_resize(s, size))
                return;

        gdbm_errno = GDBM_NO_ERROR;
        for (key = gdbm_firstkey(s->db); key.dptr && s->table; ) {
                datum next;

                if (key.dsize == PAGE_KEY_SIZE && key.dptr[0] == KEY_PAGE) {
                        uint32_t scope = get_le32((const uint8_t*) key.dptr + 1);
                        _cleanup_free_ uint8_t *v = NULL;
                        size_t page_size;
                        int r = page_fetch(s, scope, get_le16((const uint8_t*) key.dptr + 5), &v, &page_size);

                        if (r < 0) {
                                free(key.dptr);
                                counts_table_drop(s);
                                return;
                        }
                        for (size_t i = 0; i < page_size && s->table; i += PAGE_ENTRY_SIZE)
                                counts_table_set(s, scope, get_le64(v + i), get_le32(v + i + 8), get_le32(v + i + 12));
                }
                next = gdbm_nextkey(s->db, key);
                free(key.dptr);
                key = next;
        }
        if (key.dptr)
                free(key.dptr);         /* stopped early: the table went over the limit */
        else if (gdbm_errno != GDBM_NO_ERROR && gdbm_errno != GDBM_ITEM_NOT_FOUND)
                counts_table_drop(s);   /* the iteration broke off: the table would miss tokens */
}

static const TokenDelta* token_delta_find(const SpamStore *s, uint32_t scope, uint64_t token) {
        if (s->tokens_used == 0)
                return NULL;

        for (size_t i = token_slot(s, scope, token);; i = (i + 1) & (s->tokens_size - 1)) {
                const TokenDelta *d = s->tokens + i;

                if (!d->used)
                        return NULL;
                if (d->token == token && d->scope == scope)
                        return d;
        }
}

static int token_table_grow(SpamStore *s) {
        size_t n = s->tokens_size > 0 ? s->tokens_size * 2 : 4096;
        TokenDelta *old = s->tokens, *t;
        size_t old_size = s->tokens_size;

        t = calloc(n, sizeof(TokenDelta));
        if (!t)
                return -ENOMEM;
        s->tokens = t;
        s->tokens_size = n;
        for (size_t i = 0; i < old_size; i++) {
                size_t j;

                if (!old[i].used)
                        continue;
                for (j = token_slot(s, old[i].scope, old[i].token); t[j].used; j = (j + 1) & (n - 1))
                        ;
                t[j] = old[i];
        }
        free(old);
        return 0;
}

static int token_delta_add(SpamStore *s, uint32_t scope, uint64_t token, int64_t spam, int64_t ham) {
        size_t i;
        int r;

        if ((s->tokens_used + 1) * 2 > s->tokens_size) {
                r = token_table_grow(s);
                if (r < 0)
                        return r;
        }

        for (i = token_slot(s, scope, token); s->tokens[i].used; i = (i + 1) & (s->tokens_size - 1))
                if (s->tokens[i].token == token && s->tokens[i].scope == scope) {
                        s->tokens[i].spam += spam;
                        s->tokens[i].ham += ham;
                        return 0;
                }

        s->tokens[i] = (TokenDelta) {
                .token = token,
                .scope = scope,
                .used = true,
                .spam = spam,
                .ham = ham,
        };
        s->tokens_used++;
        return 0;
}

static void token_table_clear(SpamStore *s) {
        if (s->tokens_used == 0)
                return;
        /* After a rebuild's large batch, give the memory back rather than clearing it. */
        if (s->tokens_size > 1024U * 1024U) {
                free(s->tokens);
                s->tokens = NULL;
                s->tokens_size = 0;
        } else
                memset(s->tokens, 0, s->tokens_size * sizeof(TokenDelta));
        s->tokens_used = 0;
}

/* ---- pending changes of the other keys, and the domain cache ---- */

static int item_compare(const void *a, const void *b) {
        const Item *x = a, *y = b;

        if (x->key_len != y->key_len)
                return x->key_len < y->key_len ? -1 : 1;
        return memcmp(x->key, y->key, x->key_len);
}

static Item* item_find(void *const *root, const uint8_t *key, size_t key_len) {
        _Alignas(Item) uint8_t probe_buf[sizeof(Item) + KEY_MAX];
        Item *probe = (Item*) probe_buf;
        void *node;

        assert(key_len <= KEY_MAX);

        if (!*root)
                return NULL;
        probe->key_len = key_len;
        memcpy(probe->key, key, key_len);
        node = tfind(probe, root, item_compare);
        return node ? *(Item**) node : NULL;
}

static int item_get(void **root, size_t *counter, const uint8_t *key, size_t key_len, Item **ret) {
        Item *i;

        i = item_find(root, key, key_len);
        if (!i) {
                void *node;

                i = calloc(1, sizeof(Item) + key_len);
                if (!i)
                        return -ENOMEM;
                i->key_len = key_len;
                memcpy(i->key, key, key_len);
                node = tsearch(i, root, item_compare);
                if (!node) {
                        free(i);
                        return -ENOMEM;
                }
                if (counter)
                        (*counter)++;
        }

        *ret = i;
        return 0;
}

static void items_clear(void **root) {
        if (*root)
                tdestroy(*root, free);
        *root = NULL;
}

static size_t key_totals(uint8_t k[static 5], uint32_t scope) {
        k[0] = KEY_TOTALS;
        put_le32(k + 1, scope);
        return 5;
}

static size_t key_digest(uint8_t k[static 1 + SPAM_DIGEST_SIZE], const uint8_t *digest) {
        k[0] = KEY_DIGEST;
        memcpy(k + 1, digest, SPAM_DIGEST_SIZE);
        return 1 + SPAM_DIGEST_SIZE;
}

/* s: a domain (at most 253 bytes) or a word (at most 255 bytes). */
static size_t key_string(uint8_t k[static KEY_MAX], uint8_t type, const char *s) {
        size_t n = strlen(s);

        assert(n < KEY_MAX);
        k[0] = type;
        memcpy(k + 1, s, n);
        return 1 + n;
}

/* base + delta, kept within [0, max]. Anything outside is a bug (or a database that does
 * not belong to the journal): it is logged and clamped rather than wrapped around. */
static uint64_t counts_clamp(uint64_t base, int64_t delta, uint64_t max, const char *what) {
        if (delta < 0 && (uint64_t) -delta > base) {
                log_error("Spam statistics: %s would drop below zero (%" PRIu64 " %" PRIi64 "), using 0.",
                          what, base, delta);
                return 0;
        }
        if (delta > 0 && (uint64_t) delta > max - MIN(base, max)) {
                log_error("Spam statistics: %s would exceed %" PRIu64 ", clamped.", what, max);
                return max;
        }
        return (uint64_t) ((int64_t) base + delta);
}

/* 1 and the scope of a domain, 0 when it has none yet (and create is false). */
static int store_domain_scope(SpamStore *s, const char *domain, bool create, uint32_t *ret) {
        uint8_t key[KEY_MAX], v[4];
        size_t key_len;
        uint32_t scope = 0;
        Item *i;
        int r;

        key_len = key_string(key, KEY_DOMAIN, domain);
        i = item_find(&s->domains, key, key_len);
        if (i) {
                *ret = i->scope;
                return 1;
        }

        r = db_fetch(s->db, key, key_len, v, sizeof(v));
        if (r < 0)
                return r;
        if (r > 0) {
                scope = get_le32(v);
                if (scope == 0 || scope >= s->next_scope)
                        return -EBADMSG;
        } else if (!create)
                return 0;
        else if (s->next_scope == UINT32_MAX)
                return -E2BIG;

        r = item_get(&s->domains, NULL, key, key_len, &i);
        if (r < 0)
                return r;
        if (scope == 0) {
                scope = s->next_scope++;
                i->dirty = true;
        }
        i->scope = scope;

        *ret = scope;
        return 1;
}

static int store_digest_lookup(SpamStore *s, const uint8_t *digest, DigestInfo *ret) {
        uint8_t key[1 + SPAM_DIGEST_SIZE], v[DIGEST_VALUE_SIZE];
        Item *i;
        int r;

        key_digest(key, digest);
        i = item_find(&s->items, key, sizeof(key));
        if (i) {
                *ret = (DigestInfo) {
                        .known = i->present,
                        .class = (SpamClass) i->class,
                        .scope = i->scope,
                        .offset = i->offset,
                };
                return 0;
        }

        r = db_fetch(s->db, key, sizeof(key), v, sizeof(v));
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = (DigestInfo) {};
                return 0;
        }
        if (v[0] >= _SPAM_CLASS_MAX)
                return -EBADMSG;
        *ret = (DigestInfo) {
                .known = true,
                .class = (SpamClass) v[0],
                .scope = get_le32(v + 4),
                .offset = get_le64(v + 8),
        };
        return 0;
}

static int store_totals_scope(SpamStore *s, uint32_t scope, SpamTotals *ret) {
        uint8_t key[5], v[TOTALS_SIZE];
        uint64_t spam = 0, ham = 0;
        const Item *i;
        int r;

        key_totals(key, scope);
        r = db_fetch(s->db, key, sizeof(key), v, sizeof(v));
        if (r < 0)
                return r;
        if (r > 0) {
                spam = get_le64(v);
                ham = get_le64(v + 8);
        }
        i = item_find(&s->items, key, sizeof(key));
        if (i) {
                spam = counts_clamp(spam, i->spam, INT64_MAX, "spam message total");
                ham = counts_clamp(ham, i->ham, INT64_MAX, "ham message total");
        }

        *ret = (SpamTotals) { .spam = spam, .ham = ham };
        return 0;
}

/* Adds (sign 1) or takes off (sign -1) one message's tokens, words and totals. */
static int store_count_message(SpamStore *s, const SpamLearn *m, SpamClass class, uint32_t scope, int sign) {
        int64_t ds = class == SPAM_CLASS_SPAM ? sign : 0, dh = class == SPAM_CLASS_HAM ? sign : 0;
        uint8_t key[KEY_MAX];
        Item *i;
        int r;

        for (size_t k = 0; k < m->n_tokens; k++) {
                r = token_delta_add(s, 0, m->tokens[k], ds, dh);
                if (r < 0)
                        return r;
                if (scope != 0) {
                        r = token_delta_add(s, scope, m->tokens[k], ds, dh);
                        if (r < 0)
                                return r;
                }
        }

        for (size_t k = 0; k < m->n_words; k++) {
                r = item_get(&s->items, &s->n_items, key, key_string(key, KEY_WORD, m->words[k]), &i);
                if (r < 0)
                        return r;
                i->spam += ds;
                i->ham += dh;
        }

        for (unsigned n = 0; n < (scope != 0 ? 2U : 1U); n++) {
                r = item_get(&s->items, &s->n_items, key, key_totals(key, n == 0 ? 0 : scope), &i);
                if (r < 0)
                        return r;
                i->spam += ds;
                i->ham += dh;
        }

        return 0;
}

/* Applies one journal record (at offset) to the pending counts. old: what the digest was
 * before; old_rec: its learn record when it was known. */
static int store_apply(SpamStore *s, const SpamLearn *rec, bool forget, uint64_t offset,
                       const DigestInfo *old, const SpamLearn *old_rec) {
        uint8_t key[1 + SPAM_DIGEST_SIZE];
        uint32_t scope = 0;
        Item *i;
        int r;

        if (old->known) {
                r = store_count_message(s, old_rec, old->class, old->scope, -1);
                if (r < 0)
                        return r;
        }

        if (!forget) {
                if (rec->domain) {
                        r = store_domain_scope(s, rec->domain, /* create= */ true, &scope);
                        if (r < 0)
                                return r;
                }
                r = store_count_message(s, rec, rec->class, scope, 1);
                if (r < 0)
                        return r;
        }

        r = item_get(&s->items, &s->n_items, key, key_digest(key, rec->digest), &i);
        if (r < 0)
                return r;
        i->present = !forget;
        i->class = (uint8_t) rec->class;
        i->scope = scope;
        i->offset = offset;
        return 0;
}

/* ---- writing the pending counts ---- */

static void header_encode(const SpamStore *s, uint8_t v[static HEADER_SIZE]) {
        put_le32(v, SPAM_STORE_SCHEMA);
        put_le32(v + 4, s->next_scope);
        put_le64(v + 8, s->seq);
        put_le64(v + 16, s->journal_end);
        put_le64(v + 24, s->global_tokens);
        put_le64(v + 32, s->lexicon_words);
        memcpy(v + 40, s->key_id, KEY_ID_SIZE);
}

typedef struct WriteContext {
        SpamStore *store;
        int r;
} WriteContext;

static int write_counts(SpamStore *s, const uint8_t *key, size_t key_len, int64_t dspam, int64_t dham,
                        uint64_t *distinct, const char *what, uint32_t ret[static 2]) {
        uint8_t v[COUNTS_SIZE];
        uint64_t spam = 0, ham = 0;
        bool was, is;
        int r;

        if (dspam == 0 && dham == 0)
                return 0;

        r = db_fetch(s->db, key, key_len, v, sizeof(v));
        if (r < 0)
                return r;
        if (r > 0) {
                spam = get_le32(v);
                ham = get_le32(v + 4);
        }
        was = spam + ham > 0;
        spam = counts_clamp(spam, dspam, UINT32_MAX, what);
        ham = counts_clamp(ham, dham, UINT32_MAX, what);
        is = spam + ham > 0;
        ret[0] = (uint32_t) spam;
        ret[1] = (uint32_t) ham;

        if (distinct) {
                if (!was && is)
                        (*distinct)++;
                else if (was && !is && *distinct > 0)
                        (*distinct)--;
        }

        if (!is)
                return db_delete(s->db, key, key_len);
        put_le32(v, (uint32_t) spam);
        put_le32(v + 4, (uint32_t) ham);
        return db_store(s->db, key, key_len, v, sizeof(v));
}

static void item_write_one(const void *nodep, VISIT which, void *userdata) {
        WriteContext *c = userdata;
        SpamStore *s = c->store;
        const Item *i = *(Item* const*) nodep;
        uint8_t v[TOTALS_SIZE];
        int r = 0;

        if (!IN_SET(which, postorder, leaf) || c->r < 0)
                return;

        switch (i->key[0]) {

        case KEY_TOTALS: {
                uint64_t spam = 0, ham = 0;

                if (i->spam == 0 && i->ham == 0)
                        break;
                r = db_fetch(s->db, i->key, i->key_len, v, TOTALS_SIZE);
                if (r < 0)
                        break;
                if (r > 0) {
                        spam = get_le64(v);
                        ham = get_le64(v + 8);
                }
                spam = counts_clamp(spam, i->spam, INT64_MAX, "spam message total");
                ham = counts_clamp(ham, i->ham, INT64_MAX, "ham message total");
                if (spam == 0 && ham == 0)
                        r = db_delete(s->db, i->key, i->key_len);
                else {
                        put_le64(v, spam);
                        put_le64(v + 8, ham);
                        r = db_store(s->db, i->key, i->key_len, v, TOTALS_SIZE);
                }
                break;
        }

        case KEY_WORD:
                r = write_counts(s, i->key, i->key_len, i->spam, i->ham, &s->lexicon_words, "lexicon word count",
                                 (uint32_t[2]) {});
                break;

        case KEY_DIGEST:
                if (!i->present) {
                        r = db_delete(s->db, i->key, i->key_len);
                        break;
                }
                memset(v, 0, DIGEST_VALUE_SIZE);
                v[0] = i->class;
                put_le32(v + 4, i->scope);
                put_le64(v + 8, i->offset);
                r = db_store(s->db, i->key, i->key_len, v, DIGEST_VALUE_SIZE);
                break;

        case KEY_DOMAIN:
                if (!i->dirty)
                        break;
                put_le32(v, i->scope);
                r = db_store(s->db, i->key, i->key_len, v, 4);
                if (r >= 0)
                        ((Item*) i)->dirty = false;
                break;
        }

        if (r < 0)
                c->r = r;
}

static int token_delta_compare(const void *a, const void *b) {
        const TokenDelta *x = *(const TokenDelta* const*) a, *y = *(const TokenDelta* const*) b;

        if (x->scope != y->scope)
                return x->scope < y->scope ? -1 : 1;
        return x->token < y->token ? -1 : x->token > y->token;
}

/* Writes the pending token deltas, a page at a time: each page the deltas touch is read,
 * merged with them in token order, and written back (or deleted when no token is left). */
static int store_write_tokens(SpamStore *s) {
        _cleanup_free_ const TokenDelta **v = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0, buf_size = 0;
        int r;

        if (s->tokens_used == 0)
                return 0;
        v = malloc(s->tokens_used * sizeof(TokenDelta*));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < s->tokens_size; i++)
                if (s->tokens[i].used && (s->tokens[i].spam != 0 || s->tokens[i].ham != 0))
                        v[n++] = s->tokens + i;
        qsort(v, n, sizeof(TokenDelta*), token_delta_compare);

        for (size_t i = 0, j; i < n; i = j) {
                uint32_t scope = v[i]->scope;
                uint16_t page = page_of(v[i]->token);
                _cleanup_free_ uint8_t *old = NULL;
                size_t old_size, a = 0, out = 0, need;
                uint8_t key[PAGE_KEY_SIZE];

                for (j = i + 1; j < n && v[j]->scope == scope && page_of(v[j]->token) == page; j++)
                        ;
                r = page_fetch(s, scope, page, &old, &old_size);
                if (r < 0)
                        return r;

                need = page_padded_size(old_size + (j - i) * PAGE_ENTRY_SIZE);
                if (need > buf_size) {
                        uint8_t *t = realloc(buf, need);

                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        buf_size = need;
                }

                for (size_t k = i; a < old_size || k < j;) {
                        uint64_t spam = 0, ham = 0, token;
                        bool was, is;

                        if (k >= j || (a < old_size && get_le64(old + a) < v[k]->token)) {
                                /* a token of the page that nothing changed */
                                memcpy(buf + out, old + a, PAGE_ENTRY_SIZE);
                                out += PAGE_ENTRY_SIZE;
                                a += PAGE_ENTRY_SIZE;
                                continue;
                        }
                        token = v[k]->token;
                        if (a < old_size && get_le64(old + a) == token) {
                                spam = get_le32(old + a + 8);
                                ham = get_le32(old + a + 12);
                                a += PAGE_ENTRY_SIZE;
                        }
                        was = spam + ham > 0;
                        spam = counts_clamp(spam, v[k]->spam, UINT32_MAX, "token count");
                        ham = counts_clamp(ham, v[k]->ham, UINT32_MAX, "token count");
                        is = spam + ham > 0;
                        k++;

                        if (scope == 0) {
                                if (!was && is)
                                        s->global_tokens++;
                                else if (was && !is && s->global_tokens > 0)
                                        s->global_tokens--;
                        }
                        counts_cache_drop(s, scope, token);
                        counts_table_set(s, scope, token, (uint32_t) spam, (uint32_t) ham);
                        if (!is)
                                continue;
                        put_le64(buf + out, token);
                        put_le32(buf + out + 8, (uint32_t) spam);
                        put_le32(buf + out + 12, (uint32_t) ham);
                        out += PAGE_ENTRY_SIZE;
                }

                key_page(key, scope, page);
                if (out == 0)
                        r = db_delete(s->db, key, sizeof(key));
                else {
                        size_t padded = page_padded_size(out);

                        memset(buf + out, 0, padded - out);
                        r = db_store(s->db, key, sizeof(key), buf, padded);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Writes everything pending to s->db, the header last, and syncs. */
static int store_write_pending(SpamStore *s) {
        WriteContext c = { .store = s };
        uint8_t header[HEADER_SIZE];
        int r;

        r = store_write_tokens(s);
        if (r < 0) {
                /* the database may or may not have them now: no table to trust */
                counts_table_drop(s);
                return r;
        }

        twalk_r(s->items, item_write_one, &c);
        if (c.r < 0)
                return c.r;
        twalk_r(s->domains, item_write_one, &c);
        if (c.r < 0)
                return c.r;

        header_encode(s, header);
        r = db_store(s->db, (const uint8_t[]) { KEY_HEADER }, 1, header, sizeof(header));
        if (r < 0)
                return r;
        if (gdbm_sync(s->db) != 0)
                return db_error(s->db);

        token_table_clear(s);
        items_clear(&s->items);
        s->n_items = 0;
        s->batch = 0;
        return 0;
}

static void store_reset_pending(SpamStore *s) {
        token_table_clear(s);
        items_clear(&s->items);
        items_clear(&s->domains);
        s->n_items = 0;
        s->batch = 0;
}

/* Before the first journal record the database does not reflect. The database itself
 * is untouched until store_mark_writing(), so this marker need not be synced: without it,
 * a header behind the journal is caught up with just the same. */
static int store_mark_dirty(SpamStore *s) {
        int fd;

        if (s->dirty)
                return 0;

        fd = openat(s->dir_fd, DIRTY_FILE, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return log_error_errno(errno, "%s/" DIRTY_FILE ": cannot create: %m", s->dir);
        safe_close(fd);
        s->dirty = true;
        return 0;
}

/* Before the database is written to: from now on it may be half written until the sync, and
 * only a rebuild can repair it. The marker says so with its content. */
static int store_mark_writing(SpamStore *s) {
        _cleanup_close_ int fd = -1;
        bool created = !s->dirty;

        fd = openat(s->dir_fd, DIRTY_FILE, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return log_error_errno(errno, "%s/" DIRTY_FILE ": cannot create: %m", s->dir);
        if (pwrite(fd, DIRTY_WRITING, 1, 0) != 1 || fdatasync(fd) < 0)
                return log_error_errno(errno, "%s/" DIRTY_FILE ": cannot write: %m", s->dir);
        if (created && fsync(s->dir_fd) < 0)
                return log_error_errno(errno, "%s: cannot sync the directory: %m", s->dir);
        s->dirty = true;
        return 0;
}

static void store_unmark_dirty(SpamStore *s) {
        if (unlinkat(s->dir_fd, DIRTY_FILE, 0) < 0 && errno != ENOENT)
                log_warning_errno(errno, "%s/" DIRTY_FILE ": cannot remove, the next start will rebuild the counts: %m",
                                  s->dir);
        else
                s->dirty = false;
}

static int store_flush(SpamStore *s) {
        int r;

        if (!s->dirty)
                return 0;

        r = store_mark_writing(s);
        if (r >= 0)
                r = store_write_pending(s);
        if (r < 0) {
                /* Part of the batch may be in the database: only a rebuild is safe now. */
                s->db_broken = true;
                return log_error_errno(r, "%s/" DB_FILE ": cannot write the counts (%s), they will be rebuilt: %m",
                                       s->dir, db_strerror(s->db));
        }

        store_unmark_dirty(s);
        return 0;
}

/* ---- the journal ---- */

static int pread_full(int fd, void *buf, size_t n, uint64_t offset) {
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = pread(fd, p, n, (off_t) offset);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;    /* the file is shorter than it was */
                p += k;
                n -= (size_t) k;
                offset += (uint64_t) k;
        }
        return 0;
}

typedef struct JournalReader {
        int fd;
        uint64_t end;                   /* bytes of the file to read */
        uint64_t offset;                /* file offset of buf[pos] */
        uint8_t *buf;
        size_t alloc, pos, avail;       /* buf[pos, pos + avail) holds data */
} JournalReader;

static void journal_reader_done(JournalReader *jr) {
        free(jr->buf);
        jr->buf = NULL;
}

/* Makes want bytes (or all the file has left) available at buf + pos. */
static int journal_reader_fill(JournalReader *jr, size_t want) {
        uint64_t left = jr->end - jr->offset;

        if (want > left)
                want = (size_t) left;
        if (jr->avail >= want)
                return 0;

        if (jr->pos + want > jr->alloc) {
                if (jr->avail > 0)
                        memmove(jr->buf, jr->buf + jr->pos, jr->avail);
                jr->pos = 0;
                if (want > jr->alloc) {
                        size_t n = MAX(want, (size_t) JOURNAL_READ_CHUNK);
                        uint8_t *b = realloc(jr->buf, n);

                        if (!b)
                                return -ENOMEM;
                        jr->buf = b;
                        jr->alloc = n;
                }
        }

        while (jr->avail < want) {
                size_t room = jr->alloc - jr->pos - jr->avail;
                size_t n = (size_t) MIN((uint64_t) room, left - jr->avail);
                ssize_t k;

                k = pread(jr->fd, jr->buf + jr->pos + jr->avail, n, (off_t) (jr->offset + jr->avail));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                jr->avail += (size_t) k;
        }
        return 0;
}

/* 1: the next record (parsed into ret when not NULL), 0: the end, -EBADMSG: the record at
 * *ret_offset is incomplete or corrupt, other negative errno: I/O or memory. */
static int journal_reader_next(JournalReader *jr, SpamLearn *ret, bool *ret_forget, uint64_t *ret_seq,
                               uint64_t *ret_offset, size_t *ret_len) {
        size_t want = JOURNAL_HEADER_SIZE;
        int r;

        if (jr->offset >= jr->end)
                return 0;
        *ret_offset = jr->offset;

        r = journal_reader_fill(jr, JOURNAL_HEADER_SIZE);
        if (r < 0)
                return r;
        if (jr->avail >= JOURNAL_HEADER_SIZE) {
                uint32_t length = get_le32(jr->buf + jr->pos + 8);

                if (length > JOURNAL_HEADER_SIZE && length <= JOURNAL_RECORD_MAX)
                        want = length;
        }
        r = journal_reader_fill(jr, want);
        if (r < 0)
                return r;

        r = spam_journal_record_parse(jr->buf + jr->pos, jr->avail, ret, ret_forget, ret_seq);
        if (r == -ENOMEM)
                return r;
        if (r <= 0)
                return -EBADMSG;

        jr->pos += (size_t) r;
        jr->avail -= (size_t) r;
        jr->offset += (uint64_t) r;
        *ret_len = (size_t) r;
        return 1;
}

/* Whether a valid record starts anywhere in [from, end): tells a torn tail (nothing
 * valid after the bad record) from damage in the middle. */
static int journal_valid_record_after(int fd, uint64_t from, uint64_t end, uint64_t *ret_offset) {
        const size_t window = 2 * JOURNAL_RECORD_MAX + JOURNAL_READ_CHUNK;
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t pos = from;
        int r;

        if (from >= end)
                return 0;
        buf = malloc((size_t) MIN((uint64_t) window, end - from));
        if (!buf)
                return -ENOMEM;

        while (pos < end) {
                size_t n = (size_t) MIN((uint64_t) window, end - pos), scan;

                r = pread_full(fd, buf, n, pos);
                if (r < 0)
                        return r;
                /* Records that start in the scanned part fit in the window whole. */
                scan = pos + n == end ? n : n - JOURNAL_RECORD_MAX;

                for (size_t i = 0; i < scan; i++) {
                        const uint8_t *m = memchr(buf + i, 0x4d, scan - i);

                        if (!m)
                                break;
                        i = (size_t) (m - buf);
                        if (spam_journal_record_parse(m, n - i, NULL, NULL, NULL) > 0) {
                                *ret_offset = pos + i;
                                return 1;
                        }
                }
                pos += scan;
        }
        return 0;
}

/* Reads and checks every record; cuts a torn tail off. */
static int journal_load(SpamStore *s) {
        _cleanup_(journal_reader_done) JournalReader jr = { .fd = s->journal_fd };
        struct stat st;
        int r;

        if (fstat(s->journal_fd, &st) < 0)
                return log_error_errno(errno, "%s/" JOURNAL_FILE ": cannot stat: %m", s->dir);
        jr.end = (uint64_t) st.st_size;

        for (;;) {
                uint64_t seq, offset, next;
                size_t len;

                r = journal_reader_next(&jr, NULL, NULL, &seq, &offset, &len);
                if (r == 0)
                        break;
                if (r == -EBADMSG) {
                        r = journal_valid_record_after(s->journal_fd, offset + 1, jr.end, &next);
                        if (r < 0)
                                return log_error_errno(r, "%s/" JOURNAL_FILE ": cannot read: %m", s->dir);
                        if (r > 0)
                                return log_error_errno(EBADMSG,
                                                       "%s/" JOURNAL_FILE ": the record at offset %" PRIu64 " is corrupt "
                                                       "and valid records follow at %" PRIu64 "; keep a copy, then restore "
                                                       "the journal or cut it at offset %" PRIu64 ".",
                                                       s->dir, offset, next, offset);

                        log_warning("%s/" JOURNAL_FILE ": the last record (offset %" PRIu64 ", %" PRIu64 " bytes) "
                                    "was not written completely, cutting it off.",
                                    s->dir, offset, jr.end - offset);
                        if (ftruncate(s->journal_fd, (off_t) offset) < 0 || fsync(s->journal_fd) < 0)
                                return log_error_errno(errno, "%s/" JOURNAL_FILE ": cannot truncate: %m", s->dir);
                        break;
                }
                if (r < 0)
                        return log_error_errno(r, "%s/" JOURNAL_FILE ": cannot read: %m", s->dir);
                if (seq <= s->seq)
                        return log_error_errno(EBADMSG,
                                               "%s/" JOURNAL_FILE ": the record at offset %" PRIu64 " has sequence "
                                               "number %" PRIu64 ", not above %" PRIu64 "; keep a copy, then restore "
                                               "the journal or cut it at offset %" PRIu64 ".",
                                               s->dir, offset, seq, s->seq, offset);

                s->seq = seq;
                s->n_records++;
                s->journal_end = offset + len;
        }

        return 0;
}

static int journal_read_record(SpamStore *s, uint64_t offset, SpamLearn *ret) {
        uint8_t header[JOURNAL_HEADER_SIZE];
        _cleanup_free_ uint8_t *buf = NULL;
        uint32_t length;
        bool forget;
        int r;

        if (offset >= s->journal_end || s->journal_end - offset < JOURNAL_HEADER_SIZE)
                return -EBADMSG;
        r = pread_full(s->journal_fd, header, sizeof(header), offset);
        if (r < 0)
                return r;
        length = get_le32(header + 8);
        if (length < JOURNAL_HEADER_SIZE || length > JOURNAL_RECORD_MAX || length > s->journal_end - offset)
                return -EBADMSG;

        buf = malloc(length);
        if (!buf)
                return -ENOMEM;
        r = pread_full(s->journal_fd, buf, length, offset);
        if (r < 0)
                return r;

        r = spam_journal_record_parse(buf, length, ret, &forget, NULL);
        if (r == -ENOMEM)
                return r;
        if (r != (int) length || forget) {
                if (r > 0)
                        spam_learn_done(ret);
                return -EBADMSG;
        }
        return 0;
}

static void* memdup_array(const void *p, size_t n, size_t size) {
        void *q = reallocarray(NULL, n, size);

        if (q)
                memcpy(q, p, n * size);
        return q;
}

static int u64_compare(const void *a, const void *b) {
        uint64_t x = *(const uint64_t*) a, y = *(const uint64_t*) b;

        return x < y ? -1 : x > y;
}

static int string_compare(const void *a, const void *b) {
        return strcmp(*(char* const*) a, *(char* const*) b);
}

/* Builds a record into s->wbuf. tokens and words are sorted and distinct. */
static int journal_record_build(SpamStore *s, unsigned kind, SpamClass class, SpamSource source,
                                const char *reporter, const char *domain, const uint8_t *digest, uint64_t time,
                                const uint64_t *tokens, size_t n_tokens, char * const *words, size_t n_words,
                                size_t *ret_len) {
        size_t reporter_len = strlen(reporter), domain_len = strlen(domain), len, p;
        uint8_t *b;

        len = JOURNAL_HEADER_SIZE + 8 * n_tokens + reporter_len + domain_len;
        for (size_t i = 0; i < n_words; i++)
                len += 1 + strlen(words[i]);
        assert(len <= JOURNAL_RECORD_MAX);

        if (len > s->wbuf_size) {
                size_t n = MAX(len, (size_t) 64 * 1024);

                b = realloc(s->wbuf, n);
                if (!b)
                        return -ENOMEM;
                s->wbuf = b;
                s->wbuf_size = n;
        }
        b = s->wbuf;

        memset(b, 0, JOURNAL_HEADER_SIZE);
        memcpy(b, (const uint8_t[]) { 0x4d, 0x53, 0x4a, 0x31 }, 4);
        put_le16(b + 4, JOURNAL_VERSION);
        b[6] = (uint8_t) kind;
        b[7] = (uint8_t) class;
        put_le32(b + 8, (uint32_t) len);
        put_le64(b + 16, s->seq + 1);
        put_le64(b + 24, time);
        memcpy(b + 32, digest, SPAM_DIGEST_SIZE);
        b[64] = (uint8_t) source;
        put_le16(b + 66, (uint16_t) reporter_len);
        put_le16(b + 68, (uint16_t) domain_len);
        put_le32(b + 72, (uint32_t) n_tokens);
        put_le32(b + 76, (uint32_t) n_words);

        p = JOURNAL_HEADER_SIZE;
        for (size_t i = 0; i < n_tokens; i++, p += 8)
                put_le64(b + p, tokens[i]);
        memcpy(b + p, reporter, reporter_len);
        p += reporter_len;
        memcpy(b + p, domain, domain_len);
        p += domain_len;
        for (size_t i = 0; i < n_words; i++) {
                size_t n = strlen(words[i]);

                b[p++] = (uint8_t) n;
                memcpy(b + p, words[i], n);
                p += n;
        }
        assert(p == len);

        put_le32(b + 12, journal_record_crc(b, len));
        *ret_len = len;
        return 0;
}

/* One write() at the end, then fdatasync(): the record is durable when this returns 0. */
static int journal_append(SpamStore *s, const uint8_t *buf, size_t len) {
        ssize_t k;
        int r = 0;

        r = store_mark_dirty(s);
        if (r < 0)
                return r;

        k = pwrite(s->journal_fd, buf, len, (off_t) s->journal_end);
        if (k < 0)
                r = -errno;
        else if ((size_t) k != len)
                r = -ENOSPC;    /* a short write to a regular file: the file system is full */
        else if (fdatasync(s->journal_fd) < 0)
                r = -errno;
        if (r < 0) {
                /* Take the record back: it was never acknowledged. If that fails too, no
                 * more records may follow it. */
                if (ftruncate(s->journal_fd, (off_t) s->journal_end) < 0) {
                        s->journal_broken = true;
                        log_error_errno(errno, "%s/" JOURNAL_FILE ": cannot take back a failed record, "
                                        "refusing further learns until restarted: %m", s->dir);
                }
                return log_error_errno(r, "%s/" JOURNAL_FILE ": cannot append a record: %m", s->dir);
        }

        s->journal_end += len;
        s->seq++;
        s->n_records++;
        return 0;
}

/* ---- rebuild ---- */

/* Replays the journal from offset from on into the pending counts, writing them out
 * when they grow large. With after_seq > 0 (catching up), the first record must be the
 * one after after_seq, or -ESTALE. */
static int store_replay(SpamStore *s, uint64_t from, uint64_t after_seq, uint64_t *ret_applied) {
        _cleanup_(journal_reader_done) JournalReader jr = {
                .fd = s->journal_fd,
                .offset = from,
                .end = s->journal_end,
        };
        uint64_t applied = 0;
        int r;

        for (bool first = true;; first = false) {
                _cleanup_(spam_learn_done) SpamLearn rec = {}, old_rec = {};
                uint64_t seq, offset;
                DigestInfo old;
                bool forget;
                size_t len;

                r = journal_reader_next(&jr, &rec, &forget, &seq, &offset, &len);
                if (r == 0)
                        break;
                if (r < 0)
                        return log_error_errno(r, "%s/" JOURNAL_FILE ": cannot replay the record at offset %" PRIu64 ": %m",
                                               s->dir, offset);
                if (first && after_seq > 0 && seq != after_seq + 1)
                        return log_warning_errno(ESTALE, "%s/" JOURNAL_FILE ": the record at offset %" PRIu64 " has "
                                                 "sequence number %" PRIu64 ", not %" PRIu64 ".",
                                                 s->dir, offset, seq, after_seq + 1);

                r = store_digest_lookup(s, rec.digest, &old);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot look a message up (%s): %m", s->dir, db_strerror(s->db));
                /* Records that change nothing are never written; tolerate them anyway. */
                if (forget ? !old.known : old.known && old.class == rec.class)
                        continue;
                if (old.known) {
                        r = journal_read_record(s, old.offset, &old_rec);
                        if (r < 0)
                                return log_error_errno(r, "%s/" JOURNAL_FILE ": the record at offset %" PRIu64 " refers "
                                                       "to an unreadable record at %" PRIu64 ": %m",
                                                       s->dir, offset, old.offset);
                }

                r = store_apply(s, &rec, forget, offset, &old, &old_rec);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot count the record at offset %" PRIu64 ": %m",
                                               s->dir, offset);
                applied++;

                if (s->tokens_used > REBUILD_TOKENS_PENDING_MAX || s->n_items > REBUILD_ITEMS_PENDING_MAX) {
                        r = store_write_pending(s);
                        if (r < 0)
                                return log_error_errno(r, "%s: cannot write the counts (%s): %m",
                                                       s->dir, db_strerror(s->db));
                }
        }

        *ret_applied = applied;
        return 0;
}

int spam_store_rebuild(SpamStore *s) {
        _cleanup_free_ char *new_path = NULL;
        GDBM_FILE old_db, new_db;
        uint64_t applied = 0;
        int r;

        assert_return(s, -EINVAL);

        if (s->journal_broken)
                return -EIO;

        r = asprintf_safe(&new_path, "%s/" DB_NEW_FILE, s->dir);
        if (r < 0)
                return log_oom();

        /* A crash during the rebuild must rebuild again. */
        r = store_mark_writing(s);
        if (r < 0)
                return r;

        if (unlinkat(s->dir_fd, DB_NEW_FILE, 0) < 0 && errno != ENOENT)
                return log_error_errno(errno, "%s: cannot remove: %m", new_path);
        new_db = gdbm_open(new_path, DB_BLOCK_SIZE, GDBM_NEWDB | GDBM_CLOEXEC, 0600, NULL);
        if (!new_db)
                return log_error_errno(db_error(NULL), "%s: cannot create (%s): %m", new_path, db_strerror(NULL));

        old_db = s->db;
        s->db = new_db;
        counts_cache_clear(s);
        counts_table_drop(s);
        s->table_unfit = false;         /* a rebuild may have made it smaller */
        store_reset_pending(s);
        s->next_scope = 1;
        s->global_tokens = 0;
        s->lexicon_words = 0;

        r = store_replay(s, 0, 0, &applied);
        if (r < 0)
                goto fail;

        r = store_write_pending(s);
        if (r < 0) {
                log_error_errno(r, "%s: cannot write (%s): %m", new_path, db_strerror(new_db));
                goto fail;
        }

        if (renameat(s->dir_fd, DB_NEW_FILE, s->dir_fd, DB_FILE) < 0) {
                r = log_error_errno(errno, "%s: cannot rename to " DB_FILE ": %m", new_path);
                goto fail;
        }
        if (fsync(s->dir_fd) < 0)
                log_warning_errno(errno, "%s: cannot sync the directory, ignoring: %m", s->dir);
        if (old_db)
                gdbm_close(old_db);

        s->db_broken = false;
        store_unmark_dirty(s);
        counts_table_load(s);

        log_info("%s: counts rebuilt from %" PRIu64 " journal records (%" PRIu64 " applied).",
                 s->dir, s->n_records, applied);
        return 0;

fail:
        gdbm_close(new_db);
        (void) unlinkat(s->dir_fd, DB_NEW_FILE, 0);
        s->db = old_db;
        counts_cache_clear(s);
        counts_table_drop(s);
        store_reset_pending(s);
        s->db_broken = true;
        return r;
}

/* ---- compaction and reset ---- */

static int store_ensure_usable(SpamStore *s);

/* The next record of jr that is in force: the one that gave a learned message its class
 * (not a forget record, not a record of a message forgotten or moved since). Returns 1,
 * 0 at the end, negative errno. */
static int journal_next_in_force(SpamStore *s, JournalReader *jr, SpamLearn *rec, uint64_t *ret_seq,
                                 uint64_t *ret_offset, size_t *ret_len) {
        int r;

        for (;;) {
                DigestInfo info;
                bool forget;

                spam_learn_done(rec);
                r = journal_reader_next(jr, rec, &forget, ret_seq, ret_offset, ret_len);
                if (r == 0)
                        return 0;
                if (r < 0)
                        return log_error_errno(r, "%s/" JOURNAL_FILE ": cannot read the record at offset %" PRIu64 ": %m",
                                               s->dir, *ret_offset);
                if (forget)
                        continue;
                r = store_digest_lookup(s, rec->digest, &info);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot look a message up (%s): %m", s->dir, db_strerror(s->db));
                if (info.known && info.offset == *ret_offset)
                        return 1;
                /* forgotten, or moved by a later record */
        }
}

/* Whether policy forgets the in-force record rec; *drop_auto: how many of the oldest
 * auto-learned records are still to go. */
static bool compact_forgets(const SpamCompactPolicy *policy, const SpamLearn *rec, uint64_t *drop_auto) {
        if (!policy)
                return false;
        if (rec->time < policy->forget_before)
                return true;
        if (rec->source == SPAM_SOURCE_AUTOLEARN && *drop_auto > 0) {
                (*drop_auto)--;
                return true;
        }
        return false;
}

/* Writes journal.new with the records still in force that policy (NULL: all) keeps
 * (keep_live: the learn record that gives each learned message its class, in journal
 * order, byte for byte; otherwise none), puts it in place of the journal and rebuilds the
 * counts from it. The old records' sequence numbers stay; the next record follows the
 * last one kept.
 *
 * Crash safety: journal.new is synced before the rename, and the dirty marker says
 * "writing" before it, so a crash after the rename rebuilds the counts from the new
 * journal at the next open; a crash before it leaves the old journal in force (and a
 * stale journal.new, truncated by the next compaction). */
static int store_rewrite_journal(SpamStore *s, bool keep_live, const SpamCompactPolicy *policy,
                                 uint64_t *ret_kept, uint64_t *ret_forgotten) {
        _cleanup_(journal_reader_done) JournalReader jr = {
                .fd = s->journal_fd,
                .end = s->journal_end,
        };
        _cleanup_(spam_learn_done) SpamLearn rec = {};
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t kept = 0, forgotten = 0, out = 0, last_seq = 0, drop_auto = 0, seq, offset;
        size_t buf_size = 0, len;
        int r;

        assert(s);

        if (s->journal_broken)
                return -EIO;
        r = store_ensure_usable(s);
        if (r < 0)
                return r;
        /* every message's record offset in the database, not in pending items */
        r = store_flush(s);
        if (r < 0)
                return r;

        if (keep_live && policy && policy->autolearn_keep != UINT64_MAX) {
                SpamTotals t = {};

                r = spam_store_totals(s, NULL, &t);
                if (r < 0)
                        return r;
                /* Fewer messages learned than may be auto-learned: nothing to count. Else a
                 * first pass: how many auto-learned messages the age leaves, of which the
                 * oldest beyond autolearn_keep go too. */
                if (t.spam + t.ham > policy->autolearn_keep) {
                        _cleanup_(journal_reader_done) JournalReader count = {
                                .fd = s->journal_fd,
                                .end = s->journal_end,
                        };
                        uint64_t n_auto = 0;

                        while ((r = journal_next_in_force(s, &count, &rec, &seq, &offset, &len)) > 0)
                                n_auto += rec.source == SPAM_SOURCE_AUTOLEARN && rec.time >= policy->forget_before;
                        if (r < 0)
                                return r;
                        drop_auto = n_auto > policy->autolearn_keep ? n_auto - policy->autolearn_keep : 0;
                }
        }

        fd = openat(s->dir_fd, JOURNAL_NEW_FILE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return log_error_errno(errno, "%s/" JOURNAL_NEW_FILE ": cannot create: %m", s->dir);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return log_error_errno(errno, "%s/" JOURNAL_NEW_FILE ": cannot lock: %m", s->dir);

        while (keep_live) {
                ssize_t k;

                r = journal_next_in_force(s, &jr, &rec, &seq, &offset, &len);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (compact_forgets(policy, &rec, &drop_auto)) {
                        forgotten++;
                        continue;
                }

                if (len > buf_size) {
                        uint8_t *b = realloc(buf, len);

                        if (!b)
                                return log_oom();
                        buf = b;
                        buf_size = len;
                }
                r = pread_full(s->journal_fd, buf, len, offset);
                if (r < 0)
                        return log_error_errno(r, "%s/" JOURNAL_FILE ": cannot read: %m", s->dir);
                k = pwrite(fd, buf, len, (off_t) out);
                if (k < 0 || (size_t) k != len)
                        return log_error_errno(k < 0 ? errno : ENOSPC, "%s/" JOURNAL_NEW_FILE ": cannot write: %m", s->dir);
                out += len;
                kept++;
                last_seq = seq;
        }
        if (fsync(fd) < 0)
                return log_error_errno(errno, "%s/" JOURNAL_NEW_FILE ": cannot sync: %m", s->dir);

        r = store_mark_writing(s);
        if (r < 0)
                return r;
        if (renameat(s->dir_fd, JOURNAL_NEW_FILE, s->dir_fd, JOURNAL_FILE) < 0)
                return log_error_errno(errno, "%s/" JOURNAL_NEW_FILE ": cannot rename to " JOURNAL_FILE ": %m", s->dir);
        if (fsync(s->dir_fd) < 0)
                log_warning_errno(errno, "%s: cannot sync the directory, ignoring: %m", s->dir);

        /* From here on the new journal is the one in force. */
        safe_close(s->journal_fd);
        s->journal_fd = TAKE_FD(fd);
        s->journal_end = out;
        s->n_records = kept;
        s->seq = last_seq;

        r = spam_store_rebuild(s);
        if (r < 0)
                return r;
        if (ret_kept)
                *ret_kept = kept;
        if (ret_forgotten)
                *ret_forgotten = forgotten;
        return 0;
}

int spam_store_compact(SpamStore *s, const SpamCompactPolicy *policy, uint64_t *ret_kept, uint64_t *ret_forgotten) {
        uint64_t before, kept = 0, forgotten = 0;
        int r;

        assert_return(s, -EINVAL);

        before = s->journal_end;
        r = store_rewrite_journal(s, /* keep_live= */ true, policy, &kept, &forgotten);
        if (r < 0)
                return r;
        log_info("%s/" JOURNAL_FILE ": compacted to %" PRIu64 " records, %" PRIu64 " bytes (from %" PRIu64 "), "
                 "%" PRIu64 " forgotten.", s->dir, kept, s->journal_end, before, forgotten);
        if (ret_kept)
                *ret_kept = kept;
        if (ret_forgotten)
                *ret_forgotten = forgotten;
        return 0;
}

int spam_store_reset(SpamStore *s) {
        uint64_t before;
        int r;

        assert_return(s, -EINVAL);

        before = s->n_records;
        r = store_rewrite_journal(s, /* keep_live= */ false, NULL, NULL, NULL);
        if (r < 0)
                return r;
        log_notice("%s: statistics reset, %" PRIu64 " journal records dropped.", s->dir, before);
        return 0;
}

/* ---- opening and closing ---- */

static int store_compute_key_id(SpamStore *s) {
        static const char label[] = "mailsec-spamd token key id";
        uint8_t in[sizeof(label) - 1 + SPAM_TOKEN_KEY_SIZE], md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;

        memcpy(in, label, sizeof(label) - 1);
        memcpy(in + sizeof(label) - 1, s->key.bytes, SPAM_TOKEN_KEY_SIZE);
        if (EVP_Digest(in, sizeof(in), md, &md_len, EVP_sha256(), NULL) != 1 || md_len < KEY_ID_SIZE) {
                explicit_bzero(in, sizeof(in));
                return log_error_errno(EIO, "Cannot compute SHA-256 of the token key.");
        }
        explicit_bzero(in, sizeof(in));
        memcpy(s->key_id, md, KEY_ID_SIZE);
        return 0;
}

static int store_load_secret(SpamStore *s) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        ssize_t k;

        fd = openat(s->dir_fd, SECRET_FILE, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
                if (fstat(fd, &st) < 0)
                        return log_error_errno(errno, "%s/" SECRET_FILE ": cannot stat: %m", s->dir);
                if (st.st_size == SPAM_TOKEN_KEY_SIZE) {
                        if (st.st_mode & 0077)
                                log_warning("%s/" SECRET_FILE ": readable by others than its owner (mode %04o), "
                                            "it should be 0600.", s->dir, (unsigned) (st.st_mode & 07777));
                        k = pread_full(fd, s->key.bytes, SPAM_TOKEN_KEY_SIZE, 0);
                        if (k < 0)
                                return log_error_errno((int) k, "%s/" SECRET_FILE ": cannot read: %m", s->dir);
                        return store_compute_key_id(s);
                }
                /* Only a crash while it was being created leaves a secret of another size;
                 * with nothing learned yet it can simply be made again. */
                if (s->n_records > 0)
                        return log_error_errno(EBADMSG, "%s/" SECRET_FILE ": %lld bytes instead of %u; restore it "
                                               "from a backup.", s->dir, (long long) st.st_size, SPAM_TOKEN_KEY_SIZE);
                log_warning("%s/" SECRET_FILE ": %lld bytes instead of %u, nothing learned yet: making a new one.",
                            s->dir, (long long) st.st_size, SPAM_TOKEN_KEY_SIZE);
                fd = safe_close(fd);
                if (unlinkat(s->dir_fd, SECRET_FILE, 0) < 0)
                        return log_error_errno(errno, "%s/" SECRET_FILE ": cannot remove: %m", s->dir);
        } else if (errno != ENOENT)
                return log_error_errno(errno, "%s/" SECRET_FILE ": cannot open: %m", s->dir);
        else if (s->n_records > 0)
                return log_error_errno(ENOKEY, "%s/" SECRET_FILE " is missing but the journal holds %" PRIu64 " records, "
                                       "whose token hashes only that secret makes useful: restore it from a backup, "
                                       "or move the journal away to start learning again.", s->dir, s->n_records);

        k = getrandom(s->key.bytes, SPAM_TOKEN_KEY_SIZE, 0);
        if (k != SPAM_TOKEN_KEY_SIZE)
                return log_error_errno(k < 0 ? errno : EIO, "Cannot get random bytes for the token key: %m");

        fd = openat(s->dir_fd, SECRET_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return log_error_errno(errno, "%s/" SECRET_FILE ": cannot create: %m", s->dir);
        if (loop_write(fd, s->key.bytes, SPAM_TOKEN_KEY_SIZE) < 0 || fsync(fd) < 0 || fsync(s->dir_fd) < 0)
                return log_error_errno(errno, "%s/" SECRET_FILE ": cannot write: %m", s->dir);

        log_info("%s/" SECRET_FILE ": new token key created.", s->dir);
        return store_compute_key_id(s);
}

/* The database is consistent as of its header, which is behind the journal: replay what
 * it misses rather than everything. */
static int store_catch_up(SpamStore *s, uint64_t from, uint64_t after_seq) {
        uint64_t applied = 0;
        int r;

        r = store_mark_writing(s);
        if (r < 0)
                return r;
        r = store_replay(s, from, after_seq, &applied);
        if (r < 0)
                return r;
        r = store_flush(s);
        if (r < 0)
                return r;

        log_info("%s: counts caught up with %" PRIu64 " journal records.", s->dir, applied);
        return 0;
}

/* 1 when DIRTY_FILE exists (*ret_writing: the database was being written), 0 when not. */
static int store_read_marker(SpamStore *s, bool *ret_writing) {
        _cleanup_close_ int fd = -1;
        char c = 0;
        ssize_t k;

        fd = openat(s->dir_fd, DIRTY_FILE, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(errno, "%s/" DIRTY_FILE ": cannot open: %m", s->dir);
        }
        k = read(fd, &c, 1);
        if (k < 0)
                return log_error_errno(errno, "%s/" DIRTY_FILE ": cannot read: %m", s->dir);
        *ret_writing = k != 0 && c == DIRTY_WRITING[0];
        return 1;
}

static int store_open_db(SpamStore *s) {
        uint8_t header[HEADER_SIZE];
        bool writing = false;
        char why[160] = "";
        int r;

        r = store_read_marker(s, &writing);
        if (r < 0)
                return r;
        if (r > 0) {
                s->dirty = true;
                if (writing)
                        snprintf(why, sizeof(why), "a batch was being written when the store was last used "
                                 "(" DIRTY_FILE ")");
        }

        counts_cache_clear(s);
        counts_table_drop(s);
        s->db = gdbm_open(s->db_path, DB_BLOCK_SIZE, GDBM_WRCREAT | GDBM_CLOEXEC, 0600, NULL);
        if (!s->db) {
                gdbm_error e = gdbm_errno;

                if (gdbm_check_syserr(e) || IN_SET(e, GDBM_MALLOC_ERROR, GDBM_CANT_BE_WRITER, GDBM_CANT_BE_READER))
                        return log_error_errno(db_error(NULL), "%s: cannot open (%s): %m", s->db_path, gdbm_strerror(e));
                if (!why[0])
                        snprintf(why, sizeof(why), "the database cannot be opened (%s)", gdbm_strerror(e));
        }

        if (!why[0]) {
                r = db_fetch(s->db, (const uint8_t[]) { KEY_HEADER }, 1, header, sizeof(header));
                if (r == -EBADMSG)
                        snprintf(why, sizeof(why), "the database header has an unknown layout");
                else if (r < 0)
                        return log_error_errno(r, "%s: cannot read the header (%s): %m", s->db_path, db_strerror(s->db));
                else if (r == 0 && s->n_records > 0)
                        snprintf(why, sizeof(why), "the database has no header");
                else if (r == 0) {
                        /* A new store. */
                        s->next_scope = 1;
                        header_encode(s, header);
                        r = db_store(s->db, (const uint8_t[]) { KEY_HEADER }, 1, header, sizeof(header));
                        if (r < 0 || gdbm_sync(s->db) != 0)
                                return log_error_errno(r < 0 ? r : db_error(s->db), "%s: cannot write (%s): %m",
                                                       s->db_path, db_strerror(s->db));
                        if (s->dirty)
                                store_unmark_dirty(s);
                        return 0;
                } else if (get_le32(header) != SPAM_STORE_SCHEMA)
                        snprintf(why, sizeof(why), "the database has schema %" PRIu32 ", not %u",
                                 get_le32(header), SPAM_STORE_SCHEMA);
                else if (memcmp(header + 40, s->key_id, KEY_ID_SIZE) != 0)
                        return log_error_errno(EKEYREJECTED, "%s: the counts were made with another token key than "
                                               "%s/" SECRET_FILE "; restore the secret that belongs to them.",
                                               s->db_path, s->dir);
                else if (get_le32(header + 4) == 0)
                        snprintf(why, sizeof(why), "the database header is damaged");
                else {
                        uint64_t seq = get_le64(header + 8), end = get_le64(header + 16);

                        s->next_scope = get_le32(header + 4);
                        s->global_tokens = get_le64(header + 24);
                        s->lexicon_words = get_le64(header + 32);

                        if (seq == s->seq && end == s->journal_end) {
                                /* Nothing was left unsynced. */
                                if (s->dirty)
                                        store_unmark_dirty(s);
                                return 0;
                        }

                        if (seq < s->seq && end < s->journal_end) {
                                r = store_catch_up(s, end, seq);
                                if (r >= 0)
                                        return 0;
                                store_reset_pending(s);
                        }
                        snprintf(why, sizeof(why), "they reflect journal record %" PRIu64 ", the journal ends with %" PRIu64,
                                 seq, s->seq);
                }
        }

        log_notice("%s: rebuilding the counts from the journal: %s.", s->dir, why);
        return spam_store_rebuild(s);
}

int spam_store_open(const char *dir, SpamStore **ret) {
        _cleanup_(spam_store_freep) SpamStore *s = NULL;
        int r;

        assert_return(!isempty(dir), -EINVAL);
        assert_return(ret, -EINVAL);

        s = calloc(1, sizeof(SpamStore));
        if (!s)
                return log_oom();
        s->dir_fd = s->journal_fd = -1;
        s->dir = strdup(dir);
        if (!s->dir)
                return log_oom();
        s->memory_limit = SPAM_STORE_MEMORY_LIMIT_DEFAULT;
        r = asprintf_safe(&s->db_path, "%s/" DB_FILE, dir);
        if (r < 0)
                return log_oom();

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "%s: cannot create: %m", dir);
        s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0)
                return log_error_errno(errno, "%s: cannot open: %m", dir);

        s->journal_fd = openat(s->dir_fd, JOURNAL_FILE, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (s->journal_fd >= 0) {
                if (fsync(s->dir_fd) < 0)
                        return log_error_errno(errno, "%s: cannot sync the directory: %m", dir);
        } else if (errno == EEXIST)
                s->journal_fd = openat(s->dir_fd, JOURNAL_FILE, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (s->journal_fd < 0)
                return log_error_errno(errno, "%s/" JOURNAL_FILE ": cannot open: %m", dir);

        /* mailsec-spamd is the only writer; a second instance must not interleave. */
        if (flock(s->journal_fd, LOCK_EX | LOCK_NB) < 0)
                return log_error_errno(errno == EWOULDBLOCK ? EBUSY : errno,
                                       "%s: in use by another process: %m", dir);

        r = journal_load(s);
        if (r < 0)
                return r;
        r = store_load_secret(s);
        if (r < 0)
                return r;
        r = store_open_db(s);
        if (r < 0)
                return r;
        /* now rather than at the first classification */
        if (!s->table && !s->table_unfit)
                counts_table_load(s);
        if (s->db_broken) {
                /* a damaged token page */
                r = spam_store_rebuild(s);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

SpamStore* spam_store_free(SpamStore *s) {
        if (!s)
                return NULL;

        if (s->db && !s->db_broken)
                (void) store_flush(s);
        if (s->db)
                gdbm_close(s->db);

        free(s->tokens);
        free(s->cache);
        free(s->table);
        items_clear(&s->items);
        items_clear(&s->domains);
        safe_close(s->journal_fd);
        safe_close(s->dir_fd);
        free(s->wbuf);
        free(s->db_path);
        free(s->dir);
        explicit_bzero(&s->key, sizeof(s->key));
        free(s);
        return NULL;
}

void spam_store_set_memory_limit(SpamStore *s, uint64_t bytes) {
        if (!s)
                return;
        s->memory_limit = bytes;
        s->table_unfit = false;
        counts_table_drop(s);           /* loaded again, within the new limit, when next needed */
}

const SpamTokenKey* spam_store_key(const SpamStore *s) {
        assert_return(s, NULL);
        return &s->key;
}

/* Before any use: a store whose database write failed is rebuilt first. */
static int store_ensure_usable(SpamStore *s) {
        if (s->journal_broken)
                return -EIO;
        if (s->db_broken)
                return spam_store_rebuild(s);
        return 0;
}

/* ---- lookups ---- */

/* 1 and the scope of domain (0 for NULL), 0 for a domain without statistics. */
static int store_lookup_scope(SpamStore *s, const char *domain, uint32_t *ret) {
        char folded[SPAM_STORE_DOMAIN_MAX + 1];
        int r;

        r = domain_fold(domain, folded);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = 0;
                return 1;
        }
        return store_domain_scope(s, folded, /* create= */ false, ret);
}

/* The scope of domain (NULL: the global one) in a usable store: 1 with *ret_scope, 0
 * when the domain has no statistics, or negative errno. */
static int store_usable_scope(SpamStore *s, const char *domain, uint32_t *ret_scope) {
        int r;

        r = store_ensure_usable(s);
        if (r < 0)
                return r;
        return store_lookup_scope(s, domain, ret_scope);
}

/* Loads the counts table, or allocates the cache when the table does not fit, at the first
 * look-up. */
static void counts_prepare(SpamStore *s) {
        if (!s->table && !s->table_unfit)
                counts_table_load(s);
        if (!s->table && !s->cache) {
                /* only needed when the counts do not fit in memory; without it, every
                 * look-up goes to the database */
                s->cache = calloc((size_t) 1 << COUNTS_CACHE_BITS, sizeof(CountsCacheEntry));
                if (!s->cache)
                        log_warning("%s: no memory for the counts cache, going without.", s->dir);
        }
}

static int counts_of(SpamStore *s, uint32_t scope, uint64_t token, SpamCounts *ret) {
        uint64_t spam = 0, ham = 0;
        const TokenDelta *d;
        CountsCacheEntry *e;
        int r;

        e = s->table ? NULL : counts_cache_slot(s, scope, token);
        if (s->table) {
                const CountsTableEntry *te = counts_table_find(s, scope, token);

                if (te) {
                        spam = te->spam;
                        ham = te->ham;
                }
        } else if (e && e->scope == scope + 1 && e->token == token) {
                spam = e->spam;
                ham = e->ham;
        } else {
                _cleanup_free_ uint8_t *v = NULL;
                uint32_t page_spam, page_ham;
                size_t size;

                r = page_fetch(s, scope, page_of(token), &v, &size);
                if (r < 0)
                        return r;
                if (r > 0 && page_find(v, size, token, &page_spam, &page_ham)) {
                        spam = page_spam;
                        ham = page_ham;
                }
                if (e)
                        *e = (CountsCacheEntry) { .token = token, .scope = scope + 1,
                                                  .spam = (uint32_t) spam, .ham = (uint32_t) ham };
        }
        d = token_delta_find(s, scope, token);
        if (d) {
                spam = counts_clamp(spam, d->spam, UINT32_MAX, "token count");
                ham = counts_clamp(ham, d->ham, UINT32_MAX, "token count");
        }

        *ret = (SpamCounts) { .spam = (uint32_t) spam, .ham = (uint32_t) ham };
        return 0;
}

/* How many look-ups ahead spam_store_counts_many() fetches a token's slot of the table:
 * enough for the cache misses of several look-ups to overlap. */
#define COUNTS_PREFETCH_AHEAD 16U

static int store_counts_many(SpamStore *s, const char *domain, const uint64_t *tokens, size_t n, SpamCounts *ret) {
        uint32_t scope;
        int r;

        r = store_usable_scope(s, domain, &scope);
        if (r <= 0) {
                for (size_t i = 0; i < n; i++)
                        ret[i] = (SpamCounts) {};
                return r;
        }
        counts_prepare(s);

        if (s->table)
                for (size_t i = 0; i < MIN(n, (size_t) COUNTS_PREFETCH_AHEAD); i++)
                        __builtin_prefetch(s->table + counts_table_home(s, scope, tokens[i]));
        for (size_t i = 0; i < n; i++) {
                if (s->table && i + COUNTS_PREFETCH_AHEAD < n)
                        __builtin_prefetch(s->table + counts_table_home(s, scope, tokens[i + COUNTS_PREFETCH_AHEAD]));
                r = counts_of(s, scope, tokens[i], &ret[i]);
                if (r < 0)
                        return r;
        }
        return 1;
}

int spam_store_counts_many(SpamStore *s, const char *domain, const uint64_t *tokens, size_t n, SpamCounts *ret) {
        int r;

        assert_return(s, -EINVAL);
        assert_return(tokens || n == 0, -EINVAL);
        assert_return(ret || n == 0, -EINVAL);

        r = store_counts_many(s, domain, tokens, n, ret);
        if (r == -EBADMSG && s->db_broken)
                /* a damaged token page, found by this look-up: once more, after the rebuild */
                r = store_counts_many(s, domain, tokens, n, ret);
        return r;
}

int spam_store_counts(SpamStore *s, const char *domain, uint64_t token, SpamCounts *ret) {
        int r;

        assert_return(ret, -EINVAL);

        r = spam_store_counts_many(s, domain, &token, 1, ret);
        return r < 0 ? r : 0;
}

int spam_store_totals(SpamStore *s, const char *domain, SpamTotals *ret) {
        uint32_t scope;
        int r;

        assert_return(s, -EINVAL);
        assert_return(ret, -EINVAL);

        r = store_usable_scope(s, domain, &scope);
        if (r <= 0) {
                *ret = (SpamTotals) {};
                return r;
        }
        return store_totals_scope(s, scope, ret);
}

/* The record of a learned digest; -ENOENT when it is not learned. */
static int store_digest_known(SpamStore *s, const uint8_t digest[static SPAM_DIGEST_SIZE], DigestInfo *ret) {
        int r;

        assert_return(s, -EINVAL);
        assert_return(digest, -EINVAL);

        r = store_ensure_usable(s);
        if (r < 0)
                return r;
        r = store_digest_lookup(s, digest, ret);
        if (r < 0)
                return r;
        return ret->known ? 0 : -ENOENT;
}

int spam_store_class_of(SpamStore *s, const uint8_t digest[static SPAM_DIGEST_SIZE], SpamClass *ret) {
        DigestInfo info;
        int r;

        r = store_digest_known(s, digest, &info);
        if (r < 0)
                return r;
        if (ret)
                *ret = info.class;
        return 0;
}

int spam_store_learned_by(SpamStore *s, const uint8_t digest[static SPAM_DIGEST_SIZE], SpamClass *ret_class,
                          SpamSource *ret_source) {
        _cleanup_(spam_learn_done) SpamLearn rec = {};
        DigestInfo info;
        int r;

        r = store_digest_known(s, digest, &info);
        if (r < 0)
                return r;
        r = journal_read_record(s, info.offset, &rec);
        if (r < 0)
                return r;
        if (ret_class)
                *ret_class = info.class;
        if (ret_source)
                *ret_source = rec.source;
        return 0;
}

/* ---- learning ---- */

/* After a record is durable: apply it and write the batch when it is full. A failure here
 * loses nothing (the record is in the journal) but makes the counts stale, so they are
 * rebuilt before the next use. */
static void store_after_append(SpamStore *s, const SpamLearn *rec, bool forget, uint64_t offset,
                               const DigestInfo *old, const SpamLearn *old_rec) {
        int r;

        r = store_apply(s, rec, forget, offset, old, old_rec);
        if (r < 0) {
                s->db_broken = true;
                log_error_errno(r, "%s: cannot count the record at offset %" PRIu64 ", the counts will be rebuilt: %m",
                                s->dir, offset);
                return;
        }

        if (++s->batch >= SPAM_STORE_BATCH)
                (void) store_flush(s);
}

static int learn_check(const SpamLearn *l, size_t *ret_reporter_len) {
        size_t n;

        if (l->class < 0 || l->class >= _SPAM_CLASS_MAX || l->source < 0 || l->source >= _SPAM_SOURCE_MAX)
                return -EINVAL;
        if (l->n_tokens > SPAM_STORE_TOKENS_MAX || (l->n_tokens > 0 && !l->tokens))
                return -EINVAL;
        if (l->n_words > SPAM_STORE_WORDS_MAX || (l->n_words > 0 && !l->words))
                return -EINVAL;
        for (size_t i = 0; i < l->n_words; i++) {
                if (!l->words[i])
                        return -EINVAL;
                n = strnlen(l->words[i], SPAM_STORE_WORD_MAX + 1);
                if (n == 0 || n > SPAM_STORE_WORD_MAX)
                        return -EINVAL;
        }

        n = l->reporter ? strnlen(l->reporter, SPAM_STORE_REPORTER_MAX + 1) : 0;
        if (!reporter_valid(strempty(l->reporter), n))
                return -EINVAL;
        *ret_reporter_len = n;
        return 0;
}

int spam_store_learn(SpamStore *s, const SpamLearn *l) {
        _cleanup_(spam_learn_done) SpamLearn rec = {}, old_rec = {};
        _cleanup_free_ uint64_t *tokens = NULL;
        _cleanup_free_ char **words = NULL;
        char domain[SPAM_STORE_DOMAIN_MAX + 1];
        size_t n_tokens = 0, n_words = 0, reporter_len, len;
        uint64_t offset;
        DigestInfo old;
        int r;

        assert_return(s, -EINVAL);
        assert_return(l, -EINVAL);

        r = learn_check(l, &reporter_len);
        if (r < 0)
                return r;
        r = domain_fold(l->domain, domain);
        if (r < 0)
                return r;

        r = store_ensure_usable(s);
        if (r < 0)
                return r;
        r = store_digest_lookup(s, l->digest, &old);
        if (r < 0)
                return log_error_errno(r, "%s: cannot look the message up (%s): %m", s->db_path, db_strerror(s->db));
        if (old.known && old.class == l->class)
                return 0;
        if (old.known) {
                /* Read before writing anything: a move needs what was counted. */
                r = journal_read_record(s, old.offset, &old_rec);
                if (r < 0)
                        return log_error_errno(r, "%s/" JOURNAL_FILE ": cannot read the message's previous record "
                                               "at offset %" PRIu64 ": %m", s->dir, old.offset);
        }

        /* The journal holds each token and word once, sorted. */
        if (l->n_tokens > 0) {
                tokens = memdup_array(l->tokens, l->n_tokens, sizeof(uint64_t));
                if (!tokens)
                        return -ENOMEM;
                qsort(tokens, l->n_tokens, sizeof(uint64_t), u64_compare);
                for (size_t i = 0; i < l->n_tokens; i++)
                        if (n_tokens == 0 || tokens[n_tokens - 1] != tokens[i])
                                tokens[n_tokens++] = tokens[i];
        }
        if (l->n_words > 0) {
                words = memdup_array(l->words, l->n_words, sizeof(char*));
                if (!words)
                        return -ENOMEM;
                qsort(words, l->n_words, sizeof(char*), string_compare);
                for (size_t i = 0; i < l->n_words; i++)
                        if (n_words == 0 || !streq(words[n_words - 1], words[i]))
                                words[n_words++] = words[i];
        }

        r = journal_record_build(s, JOURNAL_KIND_LEARN, l->class, l->source, strempty(l->reporter), domain,
                                 l->digest, l->time ?: (uint64_t) time(NULL), tokens, n_tokens, words, n_words,
                                 &len);
        if (r < 0)
                return r;
        /* Count exactly what the journal holds, as a replay will. */
        r = spam_journal_record_parse(s->wbuf, len, &rec, NULL, NULL);
        if (r < 0)
                return r;
        assert((size_t) r == len);

        offset = s->journal_end;
        r = journal_append(s, s->wbuf, len);
        if (r < 0)
                return r;

        store_after_append(s, &rec, /* forget= */ false, offset, &old, &old_rec);
        return 1;
}

int spam_store_forget(SpamStore *s, const uint8_t digest[static SPAM_DIGEST_SIZE], SpamSource source,
                      const char *reporter) {
        _cleanup_(spam_learn_done) SpamLearn rec = {}, old_rec = {};
        size_t reporter_len, len;
        uint64_t offset;
        DigestInfo old;
        int r;

        assert_return(s, -EINVAL);
        assert_return(digest, -EINVAL);

        if (source < 0 || source >= _SPAM_SOURCE_MAX)
                return -EINVAL;
        reporter_len = reporter ? strnlen(reporter, SPAM_STORE_REPORTER_MAX + 1) : 0;
        if (!reporter_valid(strempty(reporter), reporter_len))
                return -EINVAL;

        r = store_ensure_usable(s);
        if (r < 0)
                return r;
        r = store_digest_lookup(s, digest, &old);
        if (r < 0)
                return log_error_errno(r, "%s: cannot look the message up (%s): %m", s->db_path, db_strerror(s->db));
        if (!old.known)
                return 0;
        r = journal_read_record(s, old.offset, &old_rec);
        if (r < 0)
                return log_error_errno(r, "%s/" JOURNAL_FILE ": cannot read the message's record at offset %" PRIu64 ": %m",
                                       s->dir, old.offset);

        r = journal_record_build(s, JOURNAL_KIND_FORGET, old.class, source, strempty(reporter), "", digest,
                                 (uint64_t) time(NULL), NULL, 0, NULL, 0, &len);
        if (r < 0)
                return r;
        r = spam_journal_record_parse(s->wbuf, len, &rec, NULL, NULL);
        if (r < 0)
                return r;

        offset = s->journal_end;
        r = journal_append(s, s->wbuf, len);
        if (r < 0)
                return r;

        store_after_append(s, &rec, /* forget= */ true, offset, &old, &old_rec);
        return 1;
}

int spam_store_flush(SpamStore *s) {
        assert_return(s, -EINVAL);

        if (s->journal_broken)
                return -EIO;
        if (s->db_broken)
                return spam_store_rebuild(s);
        return store_flush(s);
}

/* ---- lexicon and statistics ---- */

typedef struct PendingWords {
        const Item **items;
        size_t n, alloc;
        int r;
} PendingWords;

static void pending_word_collect(const void *nodep, VISIT which, void *userdata) {
        PendingWords *p = userdata;
        const Item *i = *(Item* const*) nodep;

        if (!IN_SET(which, postorder, leaf) || p->r < 0 || i->key[0] != KEY_WORD)
                return;
        if (p->n == p->alloc) {
                size_t n = MAX(p->alloc * 2, (size_t) 64);
                const Item **a = reallocarray(p->items, n, sizeof(Item*));

                if (!a) {
                        p->r = -ENOMEM;
                        return;
                }
                p->items = a;
                p->alloc = n;
        }
        p->items[p->n++] = i;
}

static int lexicon_report(const uint8_t *key, size_t key_len, uint64_t spam, uint64_t ham, const Item *pending,
                          uint32_t min_messages, SpamLexiconCallback cb, void *userdata) {
        char word[SPAM_STORE_WORD_MAX + 1];

        if (pending) {
                spam = counts_clamp(spam, pending->spam, UINT32_MAX, "lexicon word count");
                ham = counts_clamp(ham, pending->ham, UINT32_MAX, "lexicon word count");
        }
        if (spam + ham == 0 || spam + ham < min_messages)
                return 0;

        memcpy(word, key + 1, key_len - 1);
        word[key_len - 1] = 0;
        return cb(word, (uint32_t) spam, (uint32_t) ham, userdata);
}

int spam_store_lexicon(SpamStore *s, uint32_t min_messages, SpamLexiconCallback cb, void *userdata) {
        PendingWords pending = {};
        datum key;
        int r;

        assert_return(s, -EINVAL);
        assert_return(cb, -EINVAL);

        r = store_ensure_usable(s);
        if (r < 0)
                return r;

        /* The words in the database, with what is pending added; the callback must not
         * change the store while the traversal runs. */
        key = gdbm_firstkey(s->db);
        while (key.dptr) {
                datum next;

                if (key.dsize >= 2 && (size_t) key.dsize <= KEY_MAX && key.dptr[0] == KEY_WORD) {
                        const uint8_t *k = (const uint8_t*) key.dptr;
                        uint8_t v[COUNTS_SIZE];

                        r = db_fetch(s->db, k, (size_t) key.dsize, v, sizeof(v));
                        if (r > 0)
                                r = lexicon_report(k, (size_t) key.dsize, get_le32(v), get_le32(v + 4),
                                                   item_find(&s->items, k, (size_t) key.dsize),
                                                   min_messages, cb, userdata);
                        if (r < 0) {
                                free(key.dptr);
                                return r;
                        }
                }

                next = gdbm_nextkey(s->db, key);
                free(key.dptr);
                key = next;
        }
        if (!IN_SET(gdbm_last_errno(s->db), GDBM_NO_ERROR, GDBM_ITEM_NOT_FOUND))
                return log_error_errno(db_error(s->db), "%s: cannot traverse (%s): %m", s->db_path, db_strerror(s->db));
        gdbm_clear_error(s->db);

        /* Words only pending so far. */
        twalk_r(s->items, pending_word_collect, &pending);
        r = pending.r;
        for (size_t i = 0; r >= 0 && i < pending.n; i++) {
                const Item *item = pending.items[i];
                datum k = { .dptr = (char*) item->key, .dsize = (int) item->key_len };

                if (gdbm_exists(s->db, k))
                        continue;
                gdbm_clear_error(s->db);
                r = lexicon_report(item->key, item->key_len, 0, 0, item, min_messages, cb, userdata);
        }
        free(pending.items);
        return r < 0 ? r : 0;
}

int spam_store_stats(SpamStore *s, SpamStoreStats *ret) {
        struct stat st;
        int r;

        assert_return(s, -EINVAL);
        assert_return(ret, -EINVAL);

        /* Distinct tokens and words are counted as the batch is written. */
        r = spam_store_flush(s);
        if (r < 0)
                return r;

        *ret = (SpamStoreStats) {
                .tokens = s->global_tokens,
                .domains = s->next_scope - 1,
                .lexicon_words = s->lexicon_words,
                .journal_records = s->n_records,
                .journal_bytes = s->journal_end,
        };
        r = store_totals_scope(s, 0, &ret->totals);
        if (r < 0)
                return r;
        if (fstat(gdbm_fdesc(s->db), &st) < 0)
                return -errno;
        ret->db_bytes = (uint64_t) st.st_size;
        return 0;
}
