/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Logging: to the journal with structured fields when running under systemd
 * ($JOURNAL_STREAM set, or --log-target=journal), otherwise "<N>message" lines on
 * stderr, which is what the tests see. Shared code logs at debug level only. */

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,        /* journal if $JOURNAL_STREAM is set, else stderr */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_CONSOLE,     /* stderr */
        LOG_TARGET_NULL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

/* Reads $MAILSEC_LOG_LEVEL / $MAILSEC_LOG_TARGET (secure_getenv), decides the target. */
void log_setup(void);

int log_get_max_level(void);
void log_set_max_level(int level);
LogTarget log_get_target(void);
void log_set_target(LogTarget t);
/* The identifier LogControl1 reports (SyslogIdentifier), e.g. "mailsec-proxyd". */
const char* log_get_identifier(void);
void log_set_identifier(const char *ident);

/* "emerg".."debug" or a number 0..7 <-> LOG_* */
int log_level_from_string(const char *s);
const char* log_level_to_string(int level);
/* "auto", "journal", "console", "null" (also "kmsg"/"syslog" map to journal) */
LogTarget log_target_from_string(const char *s);
const char* log_target_to_string(LogTarget t);

/* Returns -ABS(error) (or 0 if error == 0), so callers can "return log_error_errno(r, ...)".
 * %m in format expands to strerror(error). fields: NULL or a NULL-terminated array of
 * "KEY=value" strings added to the journal entry (and appended as " KEY=value" on stderr). */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *const *fields, const char *format, ...) _printf_(7, 8);
int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *const *fields, const char *format, va_list ap) _printf_(7, 0);

#define log_full_errno_fields(level, error, fields, ...)                                \
        ({                                                                              \
                int _level_ = (level), _e_ = (error);                                   \
                (log_get_max_level() >= LOG_PRI(_level_))                               \
                        ? log_internal(_level_, _e_, __FILE__, __LINE__, __func__,      \
                                       (fields), __VA_ARGS__)                           \
                        : -ABS(_e_);                                                    \
        })

#define log_full_errno(level, error, ...) log_full_errno_fields(level, error, NULL, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...)  log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")
