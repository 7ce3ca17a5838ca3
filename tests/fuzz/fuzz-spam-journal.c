/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-spam-journal: the input is the content of mailsec-spamd's training journal.
 *
 * Every record spam_journal_record_parse() accepts must hold what the format promises
 * (sorted distinct tokens, bounded NUL-free strings, a lower-case domain), and the answer
 * must be a length, 0 (torn) or -EBADMSG, nothing else. Since random bytes rarely get
 * past a record's CRC, the input is also parsed with every record's CRC made valid, so
 * that the field checks see the mutations. That copy is then written as the journal of a
 * store (with a secret, in a temporary directory) and the store is opened: it must open,
 * or fail with -EBADMSG for damage in the middle, and an opened store must learn, forget,
 * rebuild and close without trouble. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "fuzz.h"
#include "log.h"
#include "spam-store.h"
#include "string-util.h"

#define FUZZ_SPAM_JOURNAL_INPUT_MAX ((size_t) 256U * 1024U)

static char *store_dir;

static uint32_t crc32_ref(uint32_t crc, const uint8_t *p, size_t n) {
        crc = ~crc;
        while (n--) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (UINT32_C(0xedb88320) & -(crc & 1));
        }
        return ~crc;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void check_record(const SpamLearn *l, bool forget) {
        size_t n;

        if (l->class < 0 || l->class >= _SPAM_CLASS_MAX || l->source < 0 || l->source >= _SPAM_SOURCE_MAX)
                abort();
        if (l->n_tokens > SPAM_STORE_TOKENS_MAX || l->n_words > SPAM_STORE_WORDS_MAX)
                abort();
        if (forget && (l->n_tokens > 0 || l->n_words > 0 || l->domain))
                abort();
        for (size_t i = 1; i < l->n_tokens; i++)
                if (l->tokens[i - 1] >= l->tokens[i])
                        abort();
        for (size_t i = 0; i < l->n_words; i++) {
                n = strlen(l->words[i]);
                if (n == 0 || n > SPAM_STORE_WORD_MAX)
                        abort();
                if (i > 0 && strcmp(l->words[i - 1], l->words[i]) >= 0)
                        abort();
        }
        if (!l->reporter || strlen(l->reporter) > SPAM_STORE_REPORTER_MAX)
                abort();
        if (l->domain) {
                n = strlen(l->domain);
                if (n == 0 || n > SPAM_STORE_DOMAIN_MAX)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if (l->domain[i] >= 'A' && l->domain[i] <= 'Z')
                                abort();
        }
}

/* Parses the records back to back; returns how many were whole. */
static size_t parse_all(const uint8_t *data, size_t size, uint8_t first_digest[static SPAM_DIGEST_SIZE]) {
        size_t p = 0, n = 0;

        while (p < size) {
                SpamLearn l = {};
                bool forget = false;
                uint64_t seq = 0;
                int r;

                r = spam_journal_record_parse(data + p, size - p, &l, &forget, &seq);
                if (r == 0 || r == -EBADMSG || r == -ENOMEM) {
                        if (l.allocation)
                                abort();
                        break;
                }
                if (r < 0 || (size_t) r > size - p || seq == 0)
                        abort();
                /* the same answer without ret */
                if (spam_journal_record_parse(data + p, size - p, NULL, NULL, NULL) != r)
                        abort();
                check_record(&l, forget);
                if (n == 0)
                        memcpy(first_digest, l.digest, SPAM_DIGEST_SIZE);
                spam_learn_done(&l);
                p += (size_t) r;
                n++;
        }
        return n;
}

static int write_file(const char *name, const void *data, size_t size) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;

        if (asprintf_safe(&path, "%s/%s", store_dir, name) < 0)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        return loop_write(fd, data, size);
}

static void clear_store_dir(void) {
        DIR *d = opendir(store_dir);
        struct dirent *de;

        if (!d)
                abort();
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
}

static void remove_store_dir(void) {
        clear_store_dir();
        (void) rmdir(store_dir);
}

static void open_store(const uint8_t *data, size_t size, size_t n_records, const uint8_t *first_digest) {
        static const uint8_t secret[16] = "fuzz-spam-secret";
        static const uint64_t tokens[] = { 1, 2, 3 };
        static char *const words[] = { "fuzz" };
        SpamStore *s = NULL;
        SpamStoreStats st;
        SpamLearn l = {
                .class = SPAM_CLASS_SPAM,
                .source = SPAM_SOURCE_ADMIN,
                .domain = "fuzz.example",
                .tokens = tokens,
                .n_tokens = 3,
                .words = words,
                .n_words = 1,
        };
        SpamClass class;
        int r;

        clear_store_dir();
        if (write_file("journal", data, size) < 0 || write_file("secret", secret, sizeof(secret)) < 0)
                abort();

        r = spam_store_open(store_dir, &s);
        if (r == -EBADMSG || r == -ENOMEM)
                return;
        if (r < 0)
                abort();

        if (spam_store_stats(s, &st) < 0)
                abort();
        if (st.journal_records > n_records || st.totals.spam + st.totals.ham > st.journal_records)
                abort();
        if (st.journal_bytes > size)
                abort();

        /* The store goes on from what it found. */
        if (n_records > 0 && spam_store_forget(s, first_digest, SPAM_SOURCE_ADMIN, "fuzz") < 0)
                abort();
        memset(l.digest, 0xfe, sizeof(l.digest));
        if (spam_store_learn(s, &l) < 0)
                abort();
        if (spam_store_class_of(s, l.digest, &class) < 0 || class != SPAM_CLASS_SPAM)
                abort();
        if (spam_store_rebuild(s) < 0)
                abort();
        if (spam_store_class_of(s, l.digest, &class) < 0 || class != SPAM_CLASS_SPAM)
                abort();
        spam_store_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t first_digest[SPAM_DIGEST_SIZE] = {};
        _cleanup_free_ uint8_t *fixed = NULL;
        size_t n;

        if (size > FUZZ_SPAM_JOURNAL_INPUT_MAX)
                return 0;

        if (!store_dir) {
                const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ?: "/tmp");

                log_set_max_level(getenv("FUZZ_SPAM_JOURNAL_LOG") ? LOG_DEBUG : LOG_CRIT);
                if (asprintf_safe(&store_dir, "%s/fuzz-spam-journal-XXXXXX", tmp) < 0 || !mkdtemp(store_dir))
                        abort();
                (void) atexit(remove_store_dir);
        }

        (void) parse_all(data, size, first_digest);

        /* The same bytes with every record's CRC made right. */
        fixed = malloc(size ?: 1);
        if (!fixed)
                return 0;
        memcpy(fixed, data, size);
        for (size_t p = 0; size - p >= 80;) {
                uint32_t len = le32(fixed + p + 8), c;

                if (len < 80 || len > size - p)
                        break;
                c = crc32_ref(crc32_ref(0, fixed + p, 12), fixed + p + 16, len - 16);
                fixed[p + 12] = (uint8_t) c;
                fixed[p + 13] = (uint8_t) (c >> 8);
                fixed[p + 14] = (uint8_t) (c >> 16);
                fixed[p + 15] = (uint8_t) (c >> 24);
                p += len;
        }
        n = parse_all(fixed, size, first_digest);

        open_store(fixed, size, n, first_digest);
        return 0;
}
