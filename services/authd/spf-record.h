/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SPF record parser (RFC 7208 §4.5, §5, §6, §12). Pure: a record's text in, a list of
 * terms out. Domain-specs are kept unexpanded (macro strings, checked for syntax here
 * and expanded by spf-macro at evaluation time). Any syntax error is a permerror for
 * the evaluator: spf_record_parse() returns -EBADMSG and says why. */

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* Limits on what a peer's DNS data can make us allocate. A TXT record may hold
 * several character-strings; real records stay well below these. */
#define SPF_RECORD_LEN_MAX ((size_t) 4096U)
#define SPF_RECORD_TERMS_MAX ((size_t) 128U)

typedef enum SpfQualifier {
        SPF_QUALIFIER_PASS,             /* "+" (the default) */
        SPF_QUALIFIER_FAIL,             /* "-" */
        SPF_QUALIFIER_SOFTFAIL,         /* "~" */
        SPF_QUALIFIER_NEUTRAL,          /* "?" */
        _SPF_QUALIFIER_MAX,
        _SPF_QUALIFIER_INVALID = -EINVAL,
} SpfQualifier;

typedef enum SpfMechanismType {
        SPF_MECHANISM_ALL,
        SPF_MECHANISM_INCLUDE,
        SPF_MECHANISM_A,
        SPF_MECHANISM_MX,
        SPF_MECHANISM_PTR,
        SPF_MECHANISM_IP4,
        SPF_MECHANISM_IP6,
        SPF_MECHANISM_EXISTS,
        _SPF_MECHANISM_MAX,
        _SPF_MECHANISM_INVALID = -EINVAL,
} SpfMechanismType;

const char* spf_mechanism_type_to_string(SpfMechanismType t) _const_;   /* "all", "include", ... */
const char* spf_qualifier_to_string(SpfQualifier q) _const_;            /* "+", "-", "~", "?" */

typedef struct SpfMechanism {
        SpfMechanismType type;
        SpfQualifier qualifier;
        char *domain_spec;              /* unexpanded macro string; NULL: the current domain */
        union {                         /* ip4 / ip6 network */
                struct in_addr in;
                struct in6_addr in6;
        } network;
        unsigned cidr4;                 /* 0..32, 32 when not given */
        unsigned cidr6;                 /* 0..128, 128 when not given */
        char *text;                     /* the term as written, for results and logs */
} SpfMechanism;

typedef struct SpfRecord {
        SpfMechanism *mechanisms;
        size_t n_mechanisms;
        char *redirect;                 /* redirect= domain-spec, or NULL */
        char *exp;                      /* exp= domain-spec, or NULL */
        size_t n_unknown_modifiers;     /* syntactically valid, ignored (§6) */
} SpfRecord;

/* Does this TXT record announce SPF? Exactly "v=spf1" (case-insensitive) followed by a
 * space or the end (§4.5); "v=spf10" does not. */
bool spf_record_is_spf(const char *txt, size_t len) _pure_;

/* Parse one record (including its "v=spf1"). On success returns 0 and *ret. On a syntax
 * error returns -EBADMSG and, if ret_error is not NULL, a message naming the offending
 * term in *ret_error (freed by the caller); other failures are -ENOMEM. Records above
 * SPF_RECORD_LEN_MAX or with more than SPF_RECORD_TERMS_MAX terms give -EBADMSG too.
 * NUL bytes, control characters and non-ASCII octets are syntax errors (§3.1, §12). */
int spf_record_parse(const char *text, size_t len, SpfRecord **ret, char **ret_error);
SpfRecord* spf_record_free(SpfRecord *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpfRecord*, spf_record_free);

/* Syntax checks used by the parser, exposed for tests and the evaluator. */
bool spf_domain_spec_valid(const char *s, size_t len) _pure_;   /* §7.1 domain-spec */
