/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SPF macro strings (RFC 7208 §7): syntax check and expansion. Pure: everything a
 * macro can refer to is in SpfMacroContext; the "p" letter's validated name is
 * looked up by the evaluator and handed in (or "unknown"). */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "macro.h"

/* An expansion never grows beyond this (exp= strings can repeat %{s} many times). */
#define SPF_MACRO_EXPANSION_MAX ((size_t) 4096U)
/* §7.3: an expanded domain name above 253 octets loses labels from the left. */
#define SPF_DOMAIN_NAME_MAX ((size_t) 253U)

typedef enum SpfMacroFlags {
        SPF_MACRO_EXPLANATION = 1 << 0, /* an explain-string: SP allowed, and the c r t letters */
        SPF_MACRO_DOMAIN      = 1 << 1, /* a domain name for a query: truncate to 253 (§7.3) */
} SpfMacroFlags;

typedef struct SpfMacroContext {
        const char *sender;             /* s: <sender>, "local-part@domain" */
        const char *local_part;         /* l */
        const char *sender_domain;      /* o */
        const char *domain;             /* d: the <domain> of the current check_host() */
        int family;                     /* AF_INET or AF_INET6 */
        union {
                struct in_addr in;
                struct in6_addr in6;
        } ip;                           /* i, c, v */
        const char *validated_name;     /* p: NULL means "unknown" */
        const char *helo;               /* h */
        const char *receiver;           /* r: NULL means "unknown" */
        uint64_t now;                   /* t: seconds since the epoch */
} SpfMacroContext;

/* Is s[0..len) a valid macro-string (flags & SPF_MACRO_EXPLANATION: explain-string)? */
bool spf_macro_string_valid(const char *s, size_t len, SpfMacroFlags flags) _pure_;
/* Does the macro string refer to the "p" letter (so the evaluator must look it up)? */
bool spf_macro_uses_p(const char *s) _pure_;

/* Expand s. Returns 0 and a new string in *ret, -EBADMSG for a syntax error (a
 * permerror when it comes from a record), -E2BIG when the result would exceed
 * SPF_MACRO_EXPANSION_MAX, -ENOMEM. */
int spf_macro_expand(const char *s, const SpfMacroContext *c, SpfMacroFlags flags, char **ret);
