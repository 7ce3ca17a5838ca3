/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DMARC aggregate reporting (RFC 7489 §7.2), as pure code plus file I/O in a state
 * directory:
 *
 *   1. Recording. Every DMARC evaluation becomes one DmarcReportEntry, appended with
 *      dmarc_report_record() to a per-day store file <state-dir>/dmarc-YYYY-MM-DD.log
 *      (UTC day of the entry's time). One record per line, fields percent-escaped, a
 *      CRC-32 at the end of the line. Files are only ever appended to; fsync() happens
 *      every DMARC_STORE_SYNC_BATCH records, on dmarc_store_flush() and when the store
 *      is freed. A line that was cut short by a crash is terminated before the next
 *      record is appended, and skipped (and counted) when the day is read back.
 *
 *   2. Aggregation. dmarc_report_build() takes the entries of one day, keeps those whose
 *      policy record has rua= URIs, groups them by reporting (policy) domain and then by
 *      identical rows, and writes one RFC 7489 Appendix C <feedback> document per
 *      reporting domain.
 *
 *   3. Output. dmarc_report_write_gz() gzips a report into the file name of RFC 7489
 *      §7.2.1.1 (receiver!policy-domain!begin!end.xml.gz), never replacing a file that
 *      already exists. Sending to the rua= URIs is the job of the outbound relay. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmarc-eval.h"
#include "dmarc-record.h"
#include "macro.h"

/* Limits of one store line and of what one entry may carry. */
#define DMARC_STORE_LINE_MAX ((size_t) 65536U)
#define DMARC_REPORT_DKIM_MAX 32U
#define DMARC_REPORT_REASONS_MAX 8U
#define DMARC_STORE_SYNC_BATCH 64U
#define DMARC_DAY_SEC ((uint64_t) 86400U)

/* SPF result (RFC 7208 §2.6), as the schema's SPFResultType. */
typedef enum DmarcReportSpfResult {
        DMARC_REPORT_SPF_NONE,
        DMARC_REPORT_SPF_NEUTRAL,
        DMARC_REPORT_SPF_PASS,
        DMARC_REPORT_SPF_FAIL,
        DMARC_REPORT_SPF_SOFTFAIL,
        DMARC_REPORT_SPF_TEMPERROR,
        DMARC_REPORT_SPF_PERMERROR,
        _DMARC_REPORT_SPF_MAX,
        _DMARC_REPORT_SPF_INVALID = -EINVAL,
} DmarcReportSpfResult;
const char* dmarc_report_spf_result_to_string(DmarcReportSpfResult r) _const_;
DmarcReportSpfResult dmarc_report_spf_result_from_string(const char *s) _pure_;

/* The identity SPF checked: "mfrom" (MAIL FROM) or "helo" (null reverse path). */
typedef enum DmarcReportSpfScope {
        DMARC_REPORT_SPF_SCOPE_MFROM,
        DMARC_REPORT_SPF_SCOPE_HELO,
        _DMARC_REPORT_SPF_SCOPE_MAX,
        _DMARC_REPORT_SPF_SCOPE_INVALID = -EINVAL,
} DmarcReportSpfScope;
const char* dmarc_report_spf_scope_to_string(DmarcReportSpfScope s) _const_;
DmarcReportSpfScope dmarc_report_spf_scope_from_string(const char *s) _pure_;

/* DKIM result (RFC 8601 §2.7.1), as the schema's DKIMResultType. */
typedef enum DmarcReportDkimResult {
        DMARC_REPORT_DKIM_NONE,
        DMARC_REPORT_DKIM_PASS,
        DMARC_REPORT_DKIM_FAIL,
        DMARC_REPORT_DKIM_POLICY,
        DMARC_REPORT_DKIM_NEUTRAL,
        DMARC_REPORT_DKIM_TEMPERROR,
        DMARC_REPORT_DKIM_PERMERROR,
        _DMARC_REPORT_DKIM_MAX,
        _DMARC_REPORT_DKIM_INVALID = -EINVAL,
} DmarcReportDkimResult;
const char* dmarc_report_dkim_result_to_string(DmarcReportDkimResult r) _const_;
DmarcReportDkimResult dmarc_report_dkim_result_from_string(const char *s) _pure_;

/* PolicyOverrideType of RFC 7489 §7.2.1.1 / Appendix C. */
typedef enum DmarcOverride {
        DMARC_OVERRIDE_FORWARDED,
        DMARC_OVERRIDE_SAMPLED_OUT,
        DMARC_OVERRIDE_TRUSTED_FORWARDER,
        DMARC_OVERRIDE_MAILING_LIST,
        DMARC_OVERRIDE_LOCAL_POLICY,
        DMARC_OVERRIDE_OTHER,
        _DMARC_OVERRIDE_MAX,
        _DMARC_OVERRIDE_INVALID = -EINVAL,
} DmarcOverride;
const char* dmarc_override_to_string(DmarcOverride o) _const_;
DmarcOverride dmarc_override_from_string(const char *s) _pure_;

typedef struct DmarcReportDkim {
        char *domain;                   /* d= */
        char *selector;                 /* s=, NULL when unknown */
        DmarcReportDkimResult result;
} DmarcReportDkim;

typedef struct DmarcReportReason {
        DmarcOverride type;
        char *comment;                  /* NULL or free text, e.g. the ARC chain that
                                         * rescued the message:
                                         * "arc=pass as[2].d=example.net as[2].s=sel" */
} DmarcReportReason;

/* One DMARC evaluation. Strings are owned by the entry (dmarc_report_entry_done() frees
 * them); dmarc_report_record() only reads them, so a caller may point them at its own
 * memory as long as it does not call dmarc_report_entry_done() then. */
typedef struct DmarcReportEntry {
        uint64_t time;                  /* seconds since the epoch, UTC */
        char *source_ip;                /* the connecting IP, textual IPv4 or IPv6 */
        char *header_from;              /* RFC5322.From domain */
        char *envelope_from;            /* RFC5321.MailFrom domain; NULL or "" for <> */
        char *envelope_to;              /* RFC5321.RcptTo domain, NULL when unknown */

        char *spf_domain;               /* the domain SPF checked (MAIL FROM or HELO) */
        DmarcReportSpfScope spf_scope;
        DmarcReportSpfResult spf_result;

        DmarcReportDkim *dkim;
        size_t n_dkim;

        /* The policy record (policy_published). */
        char *policy_domain;            /* where the record was found */
        DmarcAlignment adkim;
        DmarcAlignment aspf;
        DmarcPolicy p;
        DmarcPolicy sp;                 /* as applied: p when the record has no sp= */
        DmarcPolicy np;                 /* _DMARC_POLICY_INVALID when the record has none */
        unsigned pct;
        char *fo;                       /* "0", "1", "d", "s", colon-separated */
        char **rua;                     /* the record's rua= URIs */
        size_t n_rua;

        /* policy_evaluated */
        DmarcPolicy disposition;        /* what this receiver did */
        bool dkim_aligned;              /* DMARC-aligned DKIM pass */
        bool spf_aligned;               /* DMARC-aligned SPF pass */
        DmarcReportReason *reasons;
        size_t n_reasons;
} DmarcReportEntry;
#define DMARC_REPORT_ENTRY_NULL {                       \
                .spf_result = DMARC_REPORT_SPF_NONE,    \
                .p = DMARC_POLICY_NONE,                 \
                .sp = DMARC_POLICY_NONE,                \
                .np = _DMARC_POLICY_INVALID,            \
                .pct = 100,                             \
                .disposition = DMARC_POLICY_NONE,       \
        }
void dmarc_report_entry_done(DmarcReportEntry *e);
void dmarc_report_entries_free(DmarcReportEntry *entries, size_t n);

/* Fill the policy_published and policy_evaluated parts of *e from a finished DMARC
 * evaluation (copies; frees nothing that e held before, so start from
 * DMARC_REPORT_ENTRY_NULL). -ENODATA when r has no policy record (nothing to report);
 * -ENOMEM. The disposition is the one the domain asked for; a caller that overrides it
 * sets e->disposition and adds a reason afterwards. */
int dmarc_report_entry_set_result(DmarcReportEntry *e, const DmarcResult *r);

/* Append a reason (comment may be NULL). -E2BIG beyond DMARC_REPORT_REASONS_MAX. */
int dmarc_report_entry_add_reason(DmarcReportEntry *e, DmarcOverride type, const char *comment);
/* A trusted ARC sealer rescued the message (dmarc_arc_override()): the disposition
 * becomes none and a local_policy reason is added whose comment names the sealer's set as
 * RFC 8617 §7.2.1 shows, "arc=pass as[2].d=lists.example.net as[2].s=arc1". -EINVAL for
 * instance 0 or a missing domain or selector, -E2BIG as dmarc_report_entry_add_reason(). */
int dmarc_report_entry_set_arc_override(DmarcReportEntry *e, unsigned instance, const char *domain,
                                        const char *selector);
/* The comment alone. */
int dmarc_report_arc_override_comment(unsigned instance, const char *domain, const char *selector, char **ret);

/* Append a DKIM result (selector may be NULL). -E2BIG beyond DMARC_REPORT_DKIM_MAX. */
int dmarc_report_entry_add_dkim(DmarcReportEntry *e, const char *domain, const char *selector,
                                DmarcReportDkimResult result);

/* "YYYY-MM-DD" of the UTC day containing t, and back (the day's first second). */
int dmarc_report_day_format(uint64_t t, char ret[static 11]);
int dmarc_report_day_parse(const char *s, uint64_t *ret);

/* The store line of one entry (with its trailing "\n"). -EINVAL for an entry that lacks
 * source_ip, header_from or policy_domain, or holds out-of-range enums; -E2BIG when the
 * line would exceed DMARC_STORE_LINE_MAX. */
int dmarc_store_format_line(const DmarcReportEntry *e, char **ret, size_t *ret_len);

/* Parse the contents of a store file. Lines that are damaged (bad CRC, truncated,
 * malformed, over the limits) are skipped and counted in *ret_skipped; they never make
 * the call fail. Returns 0 or -ENOMEM. */
int dmarc_store_parse(const char *data, size_t size,
                      DmarcReportEntry **ret_entries, size_t *ret_n, unsigned *ret_skipped);

typedef struct DmarcStore DmarcStore;

/* The directory must exist. */
int dmarc_store_open(const char *state_dir, DmarcStore **ret);
/* Flushes (fsync) and closes. */
DmarcStore* dmarc_store_free(DmarcStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(DmarcStore*, dmarc_store_free);

/* Append one evaluation to the file of its day. -EINVAL/-E2BIG as
 * dmarc_store_format_line(); I/O errors as negative errno. */
int dmarc_report_record(DmarcStore *s, const DmarcReportEntry *e);
/* fsync() what was appended since the last sync. */
int dmarc_store_flush(DmarcStore *s);

/* Read the store file of the day starting at day_begin. -ENOENT when there is none. */
int dmarc_store_read_day(const char *state_dir, uint64_t day_begin,
                         DmarcReportEntry **ret_entries, size_t *ret_n, unsigned *ret_skipped);

typedef struct DmarcReportMeta {
        const char *org_name;           /* report_metadata/org_name */
        const char *email;              /* report_metadata/email */
        const char *extra_contact_info; /* optional */
        const char *receiver;           /* the receiver's domain, first part of file names */
} DmarcReportMeta;

typedef struct DmarcReport {
        char *policy_domain;
        char *report_id;                /* stable: the same day and domain give the same id */
        char *file_name;                /* receiver!policy-domain!begin!end.xml.gz */
        char **rua;                     /* NULL-terminated, from the newest entry */
        char *xml;
        size_t xml_len;
        uint64_t n_messages;            /* sum of the row counts */
        size_t n_rows;
} DmarcReport;
void dmarc_report_done(DmarcReport *r);
void dmarc_reports_free(DmarcReport *reports, size_t n);

/* Aggregate the entries of the day starting at day_begin (entries of other days are
 * ignored, as are entries whose policy has no rua=). Reports come sorted by policy
 * domain. -EINVAL for a missing org_name, email or receiver, or a receiver that cannot
 * be part of a file name; -ENOMEM. */
int dmarc_report_build(const DmarcReportEntry *entries, size_t n, uint64_t day_begin,
                       const DmarcReportMeta *meta, DmarcReport **ret_reports, size_t *ret_n);

/* gzip the report into dir_fd/report->file_name. Returns 1 when written, 0 when the file
 * already existed (it is left untouched), negative errno on failure (no partial file is
 * left behind). */
int dmarc_report_write_gz(const DmarcReport *report, int dir_fd);

/* gzip / gunzip a buffer in memory (the second for tests and tools; output bounded by
 * max). -EBADMSG for data that is not gzip. */
int dmarc_gzip(const void *data, size_t size, void **ret, size_t *ret_size);
int dmarc_gunzip(const void *data, size_t size, size_t max, void **ret, size_t *ret_size);
