/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* systemd-style INI configuration: a main file plus drop-ins "<main>.d/<name>.conf" read in
 * lexical order, '#'/';' comments, [Section] headers, Key=Value lines, line continuation
 * with a trailing backslash. A table maps Section+Key to a typed parser writing at an
 * offset into the caller's struct. Unknown sections/keys are warnings with file:line;
 * a value a parser refuses is an error with file:line (start-up stops). */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "macro.h"
#include "time-util.h"

typedef int (*ConfigParserCallback)(
                const char *filename, unsigned line,
                const char *section, const char *lvalue, int ltype,
                const char *rvalue, void *data, void *userdata);

typedef struct ConfigTableItem {
        const char *section;            /* "Proxy" */
        const char *lvalue;             /* "MaxMessageSize" */
        ConfigParserCallback parse;
        int ltype;                      /* passed through to the parser */
        size_t offset;                  /* data = (uint8_t*) userdata + offset */
} ConfigTableItem;

typedef struct ConfigError {
        char *filename;
        unsigned line;
        char *message;                  /* "Invalid value for MaxMessageSize=: 10X" */
} ConfigError;
#define CONFIG_ERROR_NULL { .filename = NULL, .line = 0, .message = NULL }
void config_error_done(ConfigError *e);
/* Replace e's contents with filename:line and a formatted message; returns r (for
 * "return config_error_set(...)"). line 0 means the error is not tied to a line (a
 * setting that conflicts with another, a certificate that does not load). */
int config_error_set(ConfigError *e, int r, const char *filename, unsigned line,
                     const char *format, ...) _printf_(5, 6);

/* Parse one file. A missing file is -ENOENT (callers decide whether that is OK).
 * On a refused value returns -EINVAL (or the parser's error) and fills *error. */
int config_parse_file(const char *path, const ConfigTableItem *table, size_t n_table,
                      void *userdata, ConfigError *error);

/* Parse main_path (missing is fine) then every "<main_path>.d/<name>.conf" in lexical order. */
int config_parse_with_dropins(const char *main_path, const ConfigTableItem *table, size_t n_table,
                              void *userdata, ConfigError *error);

/* Parse from memory (tests and fuzzers); filename is used in messages only.
 * Also reachable as the 7-argument form config_parse_string(filename, text, len, table,
 * n_table, userdata, error): see the dispatch macro at the end of this file. */
int config_parse_text(const char *filename, const char *text, size_t len,
                      const ConfigTableItem *table, size_t n_table,
                      void *userdata, ConfigError *error);

/* Typed parsers. Each may set a message through config_parser_set_error() before
 * returning a negative errno; otherwise a generic "Invalid value" message is used. */
int config_parse_bool(const char *filename, unsigned line, const char *section, const char *lvalue,
                      int ltype, const char *rvalue, void *data, void *userdata);          /* bool* */
int config_parse_unsigned(const char *filename, unsigned line, const char *section, const char *lvalue,
                          int ltype, const char *rvalue, void *data, void *userdata);      /* unsigned* */
int config_parse_size(const char *filename, unsigned line, const char *section, const char *lvalue,
                      int ltype, const char *rvalue, void *data, void *userdata);          /* uint64_t*, K/M/G/T (1024) */
int config_parse_sec(const char *filename, unsigned line, const char *section, const char *lvalue,
                     int ltype, const char *rvalue, void *data, void *userdata);           /* usec_t*, "5min 3s", "infinity" */
int config_parse_unsigned_min(const char *filename, unsigned line, const char *section, const char *lvalue,
                              int ltype, const char *rvalue, void *data, void *userdata);  /* unsigned*, at least ltype */
int config_parse_timeout(const char *filename, unsigned line, const char *section, const char *lvalue,
                         int ltype, const char *rvalue, void *data, void *userdata);       /* usec_t*, not 0 ("infinity" is fine) */
int config_parse_probability(const char *filename, unsigned line, const char *section, const char *lvalue,
                             int ltype, const char *rvalue, void *data, void *userdata);   /* double*, from 0 to 1 */
int config_parse_string(const char *filename, unsigned line, const char *section, const char *lvalue,
                        int ltype, const char *rvalue, void *data, void *userdata);        /* char**, empty -> NULL */
int config_parse_path(const char *filename, unsigned line, const char *section, const char *lvalue,
                      int ltype, const char *rvalue, void *data, void *userdata);          /* char**, absolute unless ltype=1 */
int config_parse_strv(const char *filename, unsigned line, const char *section, const char *lvalue,
                      int ltype, const char *rvalue, void *data, void *userdata);          /* char***, appends words; empty resets */
int config_parse_socket_address(const char *filename, unsigned line, const char *section, const char *lvalue,
                                int ltype, const char *rvalue, void *data, void *userdata);/* SocketAddress* */

/* Used by parsers to give a precise message; the text is copied. */
void config_parser_set_error(void *userdata_unused, const char *format, ...) _printf_(2, 3);

/* "127.0.0.1:25", "[::1]:25", "host.example:25" is refused (addresses only), "/path" = AF_UNIX. */
typedef struct SocketAddress {
        struct sockaddr_storage sockaddr;
        socklen_t size;
} SocketAddress;
int socket_address_parse(const char *s, SocketAddress *ret);
/* "127.0.0.1:25" / "[::1]:25" / "/run/x.sock"; returns a newly allocated string. */
int socket_address_to_string(const SocketAddress *a, char **ret);

/* Maps an enum string table: ltype must be a ConfigEnumParser index is not needed;
 * use DEFINE_CONFIG_PARSE_ENUM(func, from_string, type) to create a parser. */
#define DEFINE_CONFIG_PARSE_ENUM(function, from_string, type)                           \
        int function(const char *filename, unsigned line, const char *section,          \
                     const char *lvalue, int ltype, const char *rvalue, void *data,     \
                     void *userdata) {                                                  \
                type x = from_string(rvalue);                                           \
                if ((int) x < 0) {                                                      \
                        config_parser_set_error(userdata, "Invalid value for %s=: %s",  \
                                                lvalue, rvalue);                        \
                        return -EINVAL;                                                 \
                }                                                                       \
                *(type*) data = x;                                                      \
                return 0;                                                               \
        }

/* config_parse_string names two things: the typed parser for char* settings (8 arguments;
 * also what a ConfigTableItem refers to, as a plain function designator) and, called with 7
 * arguments, parsing configuration from memory (config_parse_text()). A function-like macro
 * only expands when called, so table entries still get the typed parser. */
#define _CONFIG_PARSE_STRING_PICK(_1, _2, _3, _4, _5, _6, _7, _8, name, ...) name
#define config_parse_string(...)                                                        \
        _CONFIG_PARSE_STRING_PICK(__VA_ARGS__, config_parse_string, config_parse_text,   \
                                  _config_parse_string_bad_argument_count)(__VA_ARGS__)
