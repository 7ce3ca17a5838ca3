/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "macro.h"

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strcaseeq(a, b) (strcasecmp((a), (b)) == 0)
static inline bool streq_ptr(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}
static inline const char* strempty(const char *s) {
        return s ?: "";
}
static inline const char* strna(const char *s) {
        return s ?: "n/a";
}
static inline bool isempty(const char *s) {
        return !s || !s[0];
}

/* Returns pointer after the prefix, or NULL. */
const char* startswith(const char *s, const char *prefix) _pure_;
const char* startswith_no_case(const char *s, const char *prefix) _pure_;
bool endswith(const char *s, const char *suffix) _pure_;

char* strstrip(char *s);                 /* in place, returns s (leading whitespace skipped) */
int free_and_strdup(char **p, const char *s);
int parse_uint64(const char *s, uint64_t *ret);     /* decimal, no sign, no trailing junk */
int parse_unsigned(const char *s, unsigned *ret);
int parse_size(const char *s, uint64_t *ret);       /* "10M", "1G", "4096"; base 1024 */
/* printf into a new string */
int asprintf_safe(char **ret, const char *format, ...) _printf_(2, 3);
/* Hex encoding for ids */
char* hexmem(const void *p, size_t l);

/* strv: NULL-terminated string arrays */
size_t strv_length(char * const *l);
int strv_extend(char ***l, const char *s);
int strv_consume(char ***l, char *s);    /* takes s even on failure */
bool strv_contains(char * const *l, const char *s);
char* strv_join(char * const *l, const char *sep);
/* strv_free() is declared in cleanup.h */
#define STRV_FOREACH(s, l) for (char **s = (l); s && *s; s++)
