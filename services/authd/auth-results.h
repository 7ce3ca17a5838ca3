/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Authentication-Results header field (RFC 8601): building the value mailsec adds
 * from the outcomes of its checks, and reading the authserv-id of fields already present
 * so that those claiming ours, which can only come from outside, are removed (§5).
 *
 *         _cleanup_(auth_results_freep) AuthResults *ar = NULL;
 *         r = auth_results_new("mx.example.com", &ar);
 *         r = auth_results_add_spf(ar, "pass", NULL, "sender@example.net", "mail.example.net");
 *         r = auth_results_add_dkim(ar, "pass", NULL, "example.net", "sel", "dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSb");
 *         r = auth_results_add_dmarc(ar, "pass", NULL, "example.net");
 *         r = auth_results_format(ar, &value);     // " mx.example.com;\r\n\tspf=pass ..."
 *
 * Pure code: no DNS, no bus, no logging above debug. Reading the authserv-id of fields
 * already present is in services/shared/mime/auth-results-id.h, which the proxy uses too. */

#include <stdbool.h>
#include <stddef.h>

#include "auth-results-id.h"
#include "macro.h"

#define AUTH_RESULTS_MAX_METHODS 64U            /* resinfo entries in one field */
#define AUTH_RESULTS_MAX_PROPERTIES 16U         /* propspecs in one resinfo */
#define AUTH_RESULTS_FOLD_COLUMN 78U
#define AUTH_RESULTS_HEADER_B_LEN 8U            /* header.b= prefix length (RFC 6008 §4) */

typedef struct AuthResults AuthResults;

/* authserv-id: a token or anything that can be written as a quoted-string (normally the
 * host's domain name). Returns -EINVAL for an empty or unrepresentable id. */
int auth_results_new(const char *authserv_id, AuthResults **ret);
AuthResults* auth_results_free(AuthResults *ar);
DEFINE_TRIVIAL_CLEANUP_FUNC(AuthResults*, auth_results_free);

/* A resinfo "method=result [reason=...]" in the order added. method and result must be
 * RFC 8601 keywords (ldh-str: letters, digits, inner '-'); reason is free text (quoted when it
 * is not a token) or NULL. Returns -EINVAL for bad syntax, -E2BIG beyond
 * AUTH_RESULTS_MAX_METHODS, -ENOMEM. */
int auth_results_add(AuthResults *ar, const char *method, const char *result, const char *reason);

/* A propspec "ptype.property=value" on the resinfo added last (-ENOENT when there is
 * none). ptype and property are keywords; value is written as is when it is a token, an
 * addr-spec or "@domain", otherwise as a quoted-string. A NULL or empty value adds
 * nothing. */
int auth_results_add_property(AuthResults *ar, const char *ptype, const char *property, const char *value);

/* The methods mailsec reports, with the properties RFC 8601 §2.7 and RFC 6008 name.
 * NULL arguments are left out. */
int auth_results_add_spf(AuthResults *ar, const char *result, const char *reason,
                         const char *mailfrom, const char *helo);
/* header_b: the signature's b= in base64; only its first AUTH_RESULTS_HEADER_B_LEN
 * characters are written (RFC 6008), to tell several signatures of one domain apart. */
int auth_results_add_dkim(AuthResults *ar, const char *result, const char *reason,
                          const char *domain, const char *selector, const char *header_b);
int auth_results_add_dmarc(AuthResults *ar, const char *result, const char *reason,
                           const char *from_domain);
/* smtp.remote-ip is the property RFC 8617 §10.2 registers for "arc". */
int auth_results_add_arc(AuthResults *ar, const char *result, const char *reason,
                         const char *remote_ip);

/* The field value, beginning with a space after "Authentication-Results:", folded before
 * each resinfo and wherever a line would pass AUTH_RESULTS_FOLD_COLUMN (counting the
 * field name), CRLF line ends inside, no final CRLF. No resinfo: "<id>; none". */
int auth_results_format(const AuthResults *ar, char **ret);

/* Reading an Authentication-Results payload (RFC 8601 §2.2), e.g. the one an ARC set
 * carries in ARC-Authentication-Results: "authserv-id [version] ; method[/version]=result
 * [reason=value] [ptype.property=value ...] ; ...", comments and folding anywhere CFWS is
 * allowed, or "authserv-id; none". Method, result, ptype and property are lower-cased;
 * values are unquoted. */
typedef struct AuthResultsProperty {
        char *ptype;                    /* "header" */
        char *property;                 /* "from" */
        char *value;                    /* "example.com" */
} AuthResultsProperty;

typedef struct AuthResultsInfo {
        char *method;                   /* "dmarc" */
        char *result;                   /* "pass" */
        char *reason;                   /* NULL when absent */
        AuthResultsProperty properties[AUTH_RESULTS_MAX_PROPERTIES];
        size_t n_properties;
} AuthResultsInfo;

typedef struct AuthResultsParsed {
        char *authserv_id;
        AuthResultsInfo *infos;
        size_t n_infos;
} AuthResultsParsed;

/* Returns 0 and a new AuthResultsParsed, -EBADMSG for a payload that does not follow the
 * grammar (a NUL byte, an unterminated comment or quoted-string, a resinfo without "=result", junk
 * where a propspec should be), -E2BIG beyond AUTH_RESULTS_MAX_METHODS resinfos,
 * AUTH_RESULTS_MAX_PROPERTIES propspecs in one resinfo or a value longer than
 * AUTH_RESULTS_VALUE_MAX, -ENOMEM. */
int auth_results_parse(const char *value, size_t len, AuthResultsParsed **ret);
AuthResultsParsed* auth_results_parsed_free(AuthResultsParsed *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(AuthResultsParsed*, auth_results_parsed_free);

/* The value of ptype.property in info (case-insensitive names), NULL when absent. */
const char* auth_results_info_property(const AuthResultsInfo *info, const char *ptype, const char *property);
