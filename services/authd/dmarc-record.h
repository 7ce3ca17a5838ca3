/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DMARC policy records (RFC 7489 §6.3 and §6.4, plus the np= and psd= tags of DMARCbis):
 * the TXT record published at _dmarc.<domain>, parsed into typed values, and the choice
 * of the one record among the TXT records of a name (§6.6.3).
 *
 * Leniency follows the RFC: "v=DMARC1" must come first and match exactly; p= is required,
 * but an invalid or absent p= (or an invalid sp=) with at least one valid rua= URI makes
 * the record act as "p=none" (§6.6.3 step 6 / §6.3); an invalid value of any other known
 * tag falls back to that tag's default and is noted in DmarcRecord.invalid_tags; unknown
 * tags are ignored. A tag given twice makes the whole record invalid. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns-answer.h"
#include "macro.h"

/* Longest record we look at; real ones are well under 1 KiB. */
#define DMARC_RECORD_MAX ((size_t) 8192U)
/* Report URIs kept per rua=/ruf= tag (RFC 7489 §6.2 asks for at least two); more are
 * dropped and the tag is marked invalid. */
#define DMARC_URIS_MAX 16U

typedef enum DmarcPolicy {
        DMARC_POLICY_NONE,
        DMARC_POLICY_QUARANTINE,
        DMARC_POLICY_REJECT,
        _DMARC_POLICY_MAX,
        _DMARC_POLICY_INVALID = -EINVAL,
} DmarcPolicy;
const char* dmarc_policy_to_string(DmarcPolicy p) _const_;         /* "none", ... */
DmarcPolicy dmarc_policy_from_string(const char *s) _pure_;        /* case-insensitive */

typedef enum DmarcAlignment {
        DMARC_ALIGNMENT_RELAXED,
        DMARC_ALIGNMENT_STRICT,
        _DMARC_ALIGNMENT_MAX,
        _DMARC_ALIGNMENT_INVALID = -EINVAL,
} DmarcAlignment;
const char* dmarc_alignment_to_string(DmarcAlignment a) _const_;   /* "r", "s" */

typedef enum DmarcPsd {
        DMARC_PSD_UNSPECIFIED,  /* "u" or absent */
        DMARC_PSD_YES,          /* "y": a public suffix operator's record */
        DMARC_PSD_NO,           /* "n": the organizational domain */
        _DMARC_PSD_MAX,
        _DMARC_PSD_INVALID = -EINVAL,
} DmarcPsd;

/* fo= (RFC 7489 §6.3), colon-separated */
typedef enum DmarcFailureOptions {
        DMARC_FO_ALL_FAIL = 1 << 0,     /* "0": report when all mechanisms fail to align (default) */
        DMARC_FO_ANY_FAIL = 1 << 1,     /* "1": report when any mechanism fails */
        DMARC_FO_DKIM     = 1 << 2,     /* "d" */
        DMARC_FO_SPF      = 1 << 3,     /* "s" */
} DmarcFailureOptions;

/* rf= report formats, colon-separated; only "afrf" is defined (unknown ones are ignored) */
typedef enum DmarcReportFormats {
        DMARC_RF_AFRF = 1 << 0,
} DmarcReportFormats;

/* Which known tags carried an invalid value that was replaced by the default (or, for
 * rua/ruf, which lists lost some URIs); DMARC_TAG_OTHER: a malformed "tag=value" piece
 * that was skipped. Useful for diagnostics (mailsecctl auth dmarc). */
typedef enum DmarcTag {
        DMARC_TAG_P     = 1 << 0,
        DMARC_TAG_SP    = 1 << 1,
        DMARC_TAG_NP    = 1 << 2,
        DMARC_TAG_ADKIM = 1 << 3,
        DMARC_TAG_ASPF  = 1 << 4,
        DMARC_TAG_PCT   = 1 << 5,
        DMARC_TAG_RUA   = 1 << 6,
        DMARC_TAG_RUF   = 1 << 7,
        DMARC_TAG_FO    = 1 << 8,
        DMARC_TAG_RF    = 1 << 9,
        DMARC_TAG_RI    = 1 << 10,
        DMARC_TAG_PSD   = 1 << 11,
        DMARC_TAG_OTHER = 1 << 12,
} DmarcTag;

typedef struct DmarcUri {
        char *uri;              /* as published, e.g. "mailto:dmarc@example.com" */
        uint64_t max_size;      /* from "!10m", in bytes; 0 when no limit was given */
} DmarcUri;

typedef struct DmarcRecord {
        DmarcPolicy p;                  /* always valid after a successful parse */
        DmarcPolicy sp;                 /* _DMARC_POLICY_INVALID when absent: use p */
        DmarcPolicy np;                 /* _DMARC_POLICY_INVALID when absent: use sp, then p */
        DmarcAlignment adkim;           /* default relaxed */
        DmarcAlignment aspf;            /* default relaxed */
        unsigned pct;                   /* 0..100, default 100 */
        DmarcUri *rua;
        size_t n_rua;
        DmarcUri *ruf;
        size_t n_ruf;
        DmarcFailureOptions fo;         /* default DMARC_FO_ALL_FAIL */
        DmarcReportFormats rf;          /* default DMARC_RF_AFRF */
        uint32_t ri;                    /* seconds, default 86400 */
        DmarcPsd psd;                   /* DMARCbis, default unspecified */
        bool p_from_rua;                /* p= was absent/invalid (or sp= invalid): acting as p=none
                                         * because rua= holds a valid URI (§6.6.3) */
        DmarcTag invalid_tags;          /* see DmarcTag */
} DmarcRecord;
#define DMARC_RECORD_NULL {                     \
                .p = _DMARC_POLICY_INVALID,     \
                .sp = _DMARC_POLICY_INVALID,    \
                .np = _DMARC_POLICY_INVALID,    \
        }
void dmarc_record_done(DmarcRecord *r);

/* True when s starts with the version tag ("v" *WSP "=" *WSP "DMARC1", then the end,
 * WSP or ';'): the §6.6.3 filter applied before a record is parsed. */
bool dmarc_record_is_dmarc(const char *s, size_t len) _pure_;

/* Parse one record of len bytes (it need not be NUL-terminated and may contain NUL bytes,
 * which are refused). Returns 0 with *ret filled, or
 *   -EBADMSG  not a usable DMARC record: bad or misplaced version, malformed tag list,
 *             duplicate tag, no valid p= and no valid rua= URI;
 *   -E2BIG    longer than DMARC_RECORD_MAX;
 *   -ENOMEM.
 * On -EBADMSG/-E2BIG *ret_reason (when not NULL) points to a static English explanation.
 * *ret is written only on success. */
int dmarc_record_parse(const char *s, size_t len, DmarcRecord *ret, const char **ret_reason);

/* §6.6.3 record selection from the TXT answer of one _dmarc name (the caller handles a
 * non-OK DnsAnswer.result). TXT records not starting with v=DMARC1 are discarded. Returns
 *   1  exactly one DMARC record, parsed into *ret;
 *   0  no DMARC record at all;
 *   -ENOTUNIQ  several records start with v=DMARC1 (DMARC is then not applied);
 *   -EBADMSG, -E2BIG  the single DMARC record is invalid (*ret_reason says why);
 *   -ENOMEM. */
int dmarc_record_select(const DnsAnswer *a, DmarcRecord *ret, const char **ret_reason);
