/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "cleanup.h"
#include "log.h"
#include "string-util.h"

#define LOG_LINE_MAX 4096
#define LOG_FIELDS_MAX 64
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static int log_max_level = LOG_INFO;
static LogTarget log_target = LOG_TARGET_AUTO;
static char *log_identifier = NULL;

static const char *const log_level_table[] = {
        [LOG_EMERG]   = "emerg",
        [LOG_ALERT]   = "alert",
        [LOG_CRIT]    = "crit",
        [LOG_ERR]     = "err",
        [LOG_WARNING] = "warning",
        [LOG_NOTICE]  = "notice",
        [LOG_INFO]    = "info",
        [LOG_DEBUG]   = "debug",
};

static const char *const log_target_table[_LOG_TARGET_MAX] = {
        [LOG_TARGET_AUTO]    = "auto",
        [LOG_TARGET_JOURNAL] = "journal",
        [LOG_TARGET_CONSOLE] = "console",
        [LOG_TARGET_NULL]    = "null",
};

int log_level_from_string(const char *s) {
        unsigned u;

        if (!s)
                return -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(log_level_table); i++)
                if (streq(s, log_level_table[i]))
                        return (int) i;
        /* systemd's spelling of LOG_ERR is "err", accept the long form too */
        if (streq(s, "error"))
                return LOG_ERR;
        if (streq(s, "emergency"))
                return LOG_EMERG;
        if (streq(s, "critical"))
                return LOG_CRIT;

        if (parse_unsigned(s, &u) >= 0 && u <= LOG_DEBUG)
                return (int) u;

        return -EINVAL;
}

const char* log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(log_level_table))
                return NULL;
        return log_level_table[level];
}

LogTarget log_target_from_string(const char *s) {
        if (!s)
                return _LOG_TARGET_INVALID;

        for (size_t i = 0; i < ELEMENTSOF(log_target_table); i++)
                if (streq(s, log_target_table[i]))
                        return (LogTarget) i;

        /* systemctl service-log-target knows these; we have no separate writers for them. */
        if (streq(s, "kmsg") || streq(s, "syslog") ||
            streq(s, "journal-or-kmsg") || streq(s, "syslog-or-kmsg"))
                return LOG_TARGET_JOURNAL;

        return _LOG_TARGET_INVALID;
}

const char* log_target_to_string(LogTarget t) {
        if ((int) t < 0 || t >= _LOG_TARGET_MAX)
                return NULL;
        return log_target_table[t];
}

int log_get_max_level(void) {
        return log_max_level;
}

void log_set_max_level(int level) {
        if (level < 0 || level > LOG_DEBUG)
                return;
        log_max_level = level;
}

LogTarget log_get_target(void) {
        return log_target;
}

void log_set_target(LogTarget t) {
        if ((int) t < 0 || t >= _LOG_TARGET_MAX)
                return;
        log_target = t;
}

const char* log_get_identifier(void) {
        return log_identifier ?: program_invocation_short_name;
}

void log_set_identifier(const char *ident) {
        (void) free_and_strdup(&log_identifier, ident);
}

void log_setup(void) {
        const char *e;

        e = secure_getenv("MAILSEC_LOG_LEVEL");
        if (e) {
                int l = log_level_from_string(e);
                if (l >= 0)
                        log_set_max_level(l);
        }

        e = secure_getenv("MAILSEC_LOG_TARGET");
        if (e) {
                LogTarget t = log_target_from_string(e);
                if ((int) t >= 0)
                        log_set_target(t);
        }
}

static LogTarget log_effective_target(void) {
        if (log_target != LOG_TARGET_AUTO)
                return log_target;

        return getenv("JOURNAL_STREAM") ? LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
}

static int write_to_console(int level, const char *message, const char *const *fields) {
        /* One write per line, so lines from concurrent processes are not interleaved. */
        char prefix[16];
        struct iovec iov[3 + 2 * LOG_FIELDS_MAX];
        size_t n = 0, n_fields = 0;

        snprintf(prefix, sizeof(prefix), "<%i>", LOG_PRI(level));
        iov[n++] = (struct iovec) { .iov_base = prefix, .iov_len = strlen(prefix) };
        iov[n++] = (struct iovec) { .iov_base = (char*) message, .iov_len = strlen(message) };

        for (const char *const *f = fields; f && *f && n_fields < LOG_FIELDS_MAX; f++, n_fields++) {
                iov[n++] = (struct iovec) { .iov_base = (char*) " ", .iov_len = 1 };
                iov[n++] = (struct iovec) { .iov_base = (char*) *f, .iov_len = strlen(*f) };
        }
        iov[n++] = (struct iovec) { .iov_base = (char*) "\n", .iov_len = 1 };

        for (;;) {
                if (writev(STDERR_FILENO, iov, (int) n) >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

static int write_to_journal(int level, int error, const char *file, int line, const char *func,
                            const char *const *fields, const char *message) {

        char priority[STRLEN("PRIORITY=") + 4], errno_field[STRLEN("ERRNO=") + 16];
        char code_file[STRLEN("CODE_FILE=") + 256], code_line[STRLEN("CODE_LINE=") + 16];
        char code_func[STRLEN("CODE_FUNC=") + 256];
        _cleanup_free_ char *msg = NULL, *ident = NULL;
        struct iovec iov[8 + LOG_FIELDS_MAX];
        size_t n = 0, n_fields = 0;

        if (asprintf_safe(&msg, "MESSAGE=%s", message) < 0 ||
            asprintf_safe(&ident, "SYSLOG_IDENTIFIER=%s", strempty(log_get_identifier())) < 0)
                return -ENOMEM;

        snprintf(priority, sizeof(priority), "PRIORITY=%i", LOG_PRI(level));
        snprintf(code_file, sizeof(code_file), "CODE_FILE=%s", strempty(file));
        snprintf(code_line, sizeof(code_line), "CODE_LINE=%i", line);
        snprintf(code_func, sizeof(code_func), "CODE_FUNC=%s", strempty(func));

#define IOV_STR(s) (struct iovec) { .iov_base = (char*) (s), .iov_len = strlen(s) }
        iov[n++] = IOV_STR(msg);
        iov[n++] = IOV_STR(priority);
        iov[n++] = IOV_STR(ident);
        iov[n++] = IOV_STR(code_file);
        iov[n++] = IOV_STR(code_line);
        iov[n++] = IOV_STR(code_func);
        if (error != 0) {
                snprintf(errno_field, sizeof(errno_field), "ERRNO=%i", ABS(error));
                iov[n++] = IOV_STR(errno_field);
        }
        for (const char *const *f = fields; f && *f && n_fields < LOG_FIELDS_MAX; f++, n_fields++)
                /* Only well-formed "KEY=value" pairs; journald would drop the entry otherwise. */
                if (strchr(*f, '=') && **f != '=')
                        iov[n++] = IOV_STR(*f);
#undef IOV_STR

        return sd_journal_sendv(iov, (int) n);
}

int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *const *fields, const char *format, va_list ap) {

        char buffer[LOG_LINE_MAX];
        LogTarget t;
        int saved_errno = errno;

        if (error < 0)
                error = -error;

        if (LOG_PRI(level) > log_max_level)
                goto finish;

        t = log_effective_target();
        if (t == LOG_TARGET_NULL)
                goto finish;

        if (!format)
                goto finish;

        /* %m expands to strerror(errno) in glibc's printf: make it the error we log. */
        errno = error;
        (void) vsnprintf(buffer, sizeof(buffer), format, ap);

        /* sd_journal_sendv() silently succeeds when journald is not there at all: check,
         * and fall back to stderr rather than losing the line. */
        if (t == LOG_TARGET_JOURNAL && access(JOURNAL_SOCKET, F_OK) >= 0 &&
            write_to_journal(level, error, file, line, func, fields, buffer) >= 0)
                goto finish;
        (void) write_to_console(level, buffer, fields);

finish:
        errno = saved_errno;
        return -error;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *const *fields, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, file, line, func, fields, format, ap);
        va_end(ap);
        return r;
}
