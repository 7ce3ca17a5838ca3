/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bus-util.h"
#include "cleanup.h"
#include "log.h"
#include "mime-decode.h"
#include "proxyd-spam.h"
#include "proxyd-tx.h"
#include "rfc5322.h"
#include "string-util.h"

static const char *const spam_failure_action_table[_SPAM_FAILURE_MAX] = {
        [SPAM_FAILURE_TEMPFAIL] = "tempfail",
        [SPAM_FAILURE_ACCEPT]   = "accept",
};

const char* spam_failure_action_to_string(SpamFailureAction a) {
        if (a < 0 || a >= _SPAM_FAILURE_MAX)
                return NULL;
        return spam_failure_action_table[a];
}

SpamFailureAction spam_failure_action_from_string(const char *s) {
        if (!s)
                return _SPAM_FAILURE_INVALID;
        for (int i = 0; i < _SPAM_FAILURE_MAX; i++)
                if (streq(spam_failure_action_table[i], s))
                        return i;
        return _SPAM_FAILURE_INVALID;
}

static const char *const spam_status_table[_SPAM_STATUS_MAX] = {
        [SPAM_STATUS_NO]     = "No",
        [SPAM_STATUS_UNSURE] = "Unsure",
        [SPAM_STATUS_YES]    = "Yes",
};

static const char *const spam_verdict_table[_SPAM_STATUS_MAX] = {
        [SPAM_STATUS_NO]     = "ham",
        [SPAM_STATUS_UNSURE] = "unsure",
        [SPAM_STATUS_YES]    = "spam",
};

const char* spam_status_to_string(SpamStatus s) {
        if (s < 0 || s >= _SPAM_STATUS_MAX)
                return NULL;
        return spam_status_table[s];
}

SpamStatus spam_status_from_verdict(const char *verdict) {
        if (!verdict)
                return _SPAM_STATUS_INVALID;
        for (int i = 0; i < _SPAM_STATUS_MAX; i++)
                if (streq(spam_verdict_table[i], verdict))
                        return i;
        return _SPAM_STATUS_INVALID;
}

int spam_reject_score_parse(const char *s, double *ret) {
        char *end = NULL;
        double v;

        assert(ret);
        if (isempty(s))
                return -EINVAL;
        if (streq(s, "no")) {
                *ret = SPAM_REJECT_SCORE_NEVER;
                return 0;
        }
        /* Digits and one dot only: no signs, exponents, hex floats, "nan" or "inf". */
        if (strspn(s, "0123456789.") != strlen(s))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || !end || *end != '\0' || end == s || !isfinite(v))
                return -EINVAL;
        if (!(v > 0.0 && v <= 1.0))
                return -ERANGE;
        *ret = v;
        return 0;
}

bool spam_score_rejects(double score, double reject_score) {
        return reject_score > 0.0 && score >= reject_score;
}

int spam_fields_build(double score, SpamStatus status, double reject_score, char **ret) {
        char required[32] = "";

        assert(ret);
        if (!spam_status_to_string(status) || !(score >= 0.0 && score <= 1.0))
                return -EINVAL;
        if (reject_score > 0.0)
                (void) snprintf(required, sizeof(required), " required=%.3f", reject_score);
        if (asprintf_safe(ret, "X-Spam-Status: %s, score=%.3f%s\r\nX-Spam-Score: %.3f\r\n",
                          spam_status_to_string(status), score, required, score) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- Reports by mail: addresses ---- */

static const char *const report_class_table[_REPORT_CLASS_MAX] = {
        [REPORT_CLASS_SPAM] = "spam",
        [REPORT_CLASS_HAM]  = "ham",
};

const char* report_class_to_string(ReportClass c) {
        if (c < 0 || c >= _REPORT_CLASS_MAX)
                return NULL;
        return report_class_table[c];
}

static const char *const report_source_table[_REPORT_SOURCE_MAX] = {
        [REPORT_SOURCE_ATTACHMENT] = "attachment",
        [REPORT_SOURCE_ARF]        = "feedback report",
};

const char* report_source_to_string(ReportSource s) {
        if (s < 0 || s >= _REPORT_SOURCE_MAX)
                return NULL;
        return report_source_table[s];
}

const char* mailbox_domain(const char *mailbox) {
        const char *at = mailbox ? strrchr(mailbox, '@') : NULL;

        if (!at || isempty(at + 1))
                return NULL;
        return at + 1;
}

/* local@domain: a dot-atom local part, an LDH domain with a dot. Report addresses are
 * the organisation's own: nothing exotic is needed. */
static bool report_address_valid(const char *a, size_t n) {
        const char *at = memchr(a, '@', n);
        size_t local, domain;

        if (!at || n > 254)
                return false;
        local = at - a;
        domain = n - local - 1;
        if (local == 0 || local > 64 || domain == 0 || memchr(at + 1, '@', domain))
                return false;
        for (size_t i = 0; i < local; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.", a[i]))
                        return false;
        if (a[0] == '.' || a[local - 1] == '.')
                return false;
        for (size_t i = 0; i < domain; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.", at[1 + i]))
                        return false;
        if (at[1] == '.' || at[1] == '-' || at[domain] == '.' || !memchr(at + 1, '.', domain))
                return false;
        return true;
}

int report_addresses_parse(const char *s, char ***l) {
        _cleanup_strv_free_ char **add = NULL;
        const char *p = s;
        int r;

        assert(s && l);

        for (;;) {
                const char *w, *colon;
                size_t n, k;
                ReportClass class = _REPORT_CLASS_INVALID;
                char *e;

                p += strspn(p, " \t");
                if (!*p)
                        break;
                w = p;
                n = strcspn(p, " \t");
                p += n;

                colon = memchr(w, ':', n);
                if (!colon)
                        return -EINVAL;
                k = colon - w;
                for (int i = 0; i < _REPORT_CLASS_MAX; i++)
                        if (strlen(report_class_table[i]) == k && strncasecmp(w, report_class_table[i], k) == 0)
                                class = i;
                if (class < 0)
                        return -EINVAL;
                if (!report_address_valid(colon + 1, n - k - 1))
                        return -EINVAL;
                if (asprintf_safe(&e, "%s:%.*s", report_class_table[class], (int) (n - k - 1), colon + 1) < 0)
                        return -ENOMEM;
                for (char *c = e; *c; c++)
                        if (*c >= 'A' && *c <= 'Z')
                                *c = *c - 'A' + 'a';
                r = strv_consume(&add, e);
                if (r < 0)
                        return r;
        }
        if (!add)
                return -EINVAL;

        STRV_FOREACH(a, add) {
                r = strv_extend(l, *a);
                if (r < 0)
                        return r;
        }
        return 0;
}

ReportClass report_addresses_lookup(char * const *l, const char *mailbox) {
        if (isempty(mailbox))
                return -ENOENT;
        for (char * const *a = l; a && *a; a++) {
                const char *colon = strchr(*a, ':');

                if (colon && strcaseeq(colon + 1, mailbox))
                        return strncmp(*a, "spam:", 5) == 0 ? REPORT_CLASS_SPAM : REPORT_CLASS_HAM;
        }
        return -ENOENT;
}

/* ---- Reports by mail: the reported message ----
 *
 * A reader over the raw MIME structure: the streaming parser (mime.h) gives decoded text
 * and header values, not the bytes of a part, which is what a report needs. */

static const Rfc5322Limits report_header_limits = {
        .max_line = 65536,
        .max_field = 65536,
        .max_fields = 1000,
};

typedef struct ReportEntity {
        const char *body;
        size_t body_size;
        MimeParams type;                /* value: "type/subtype", lowercased; "" when absent */
        char *encoding;                 /* lowercased Content-Transfer-Encoding, or NULL */
} ReportEntity;

static void report_entity_done(ReportEntity *e) {
        mime_params_done(&e->type);
        free(e->encoding);
}

/* Reads the header block of an entity. -ENOMSG when it does not parse. */
static int report_entity_read(MimeCharsets *cs, const char *p, size_t n, ReportEntity *ret) {
        size_t offset = 0;
        Rfc5322Field f;
        bool have_type = false;
        int r;

        *ret = (ReportEntity) {};
        for (;;) {
                r = rfc5322_field_next(p, n, &report_header_limits, &offset, NULL, &f);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return -ENOMSG;
                if (r == 0)
                        break;
                if (!have_type && rfc5322_field_is(&f, "Content-Type")) {
                        _cleanup_free_ char *v = NULL;

                        r = rfc5322_unfold(f.value, f.value_len, &v);
                        if (r < 0)
                                return r;
                        r = mime_params_parse(cs, v, strlen(v), &ret->type, NULL);
                        if (r < 0)
                                return r;
                        have_type = true;
                } else if (!ret->encoding && rfc5322_field_is(&f, "Content-Transfer-Encoding")) {
                        r = rfc5322_unfold(f.value, f.value_len, &ret->encoding);
                        if (r < 0)
                                return r;
                        for (char *c = ret->encoding; *c; c++)
                                if (*c >= 'A' && *c <= 'Z')
                                        *c = *c - 'A' + 'a';
                }
        }
        ret->body = p + offset;
        ret->body_size = n - offset;
        return 0;
}

static const char* report_entity_type(const ReportEntity *e) {
        return strempty(e->type.value);
}

/* The body of e, transfer-decoded, into a new buffer. */
static int report_entity_decode(const ReportEntity *e, char **ret_data, size_t *ret_size) {
        _cleanup_(mime_buffer_done) MimeBuffer out = MIME_BUFFER_NULL;
        int r;

        if (streq_ptr(e->encoding, "base64")) {
                Base64Decoder d = BASE64_DECODER_NULL;
                size_t k;

                r = mime_buffer_reserve(&out, BASE64_DECODED_MAX(e->body_size) + 2);
                if (r < 0)
                        return r;
                k = base64_decoder_feed(&d, e->body, e->body_size, (uint8_t*) out.data);
                k += base64_decoder_finish(&d, (uint8_t*) out.data + k);
                out.size = k;
                out.data[k] = 0;
        } else if (streq_ptr(e->encoding, "quoted-printable")) {
                QpDecoder d = QP_DECODER_NULL;
                const char *p = e->body, *end = e->body + e->body_size;

                while (p < end) {
                        const char *nl = memchr(p, '\n', end - p);
                        size_t len = (nl ? nl : end) - p;
                        bool hard = false;

                        if (nl && len > 0 && p[len - 1] == '\r')
                                len--;
                        /* The line, a carried "=X" and CRLF. */
                        r = mime_buffer_reserve(&out, len + 4);
                        if (r < 0)
                                return r;
                        out.size += qp_decoder_feed_line(&d, p, len, nl != NULL, out.data + out.size, &hard);
                        if (hard) {
                                out.data[out.size++] = '\r';
                                out.data[out.size++] = '\n';
                        }
                        p = nl ? nl + 1 : end;
                }
                r = mime_buffer_reserve(&out, 2);
                if (r < 0)
                        return r;
                out.size += qp_decoder_finish(&d, out.data + out.size);
                out.data[out.size] = 0;
        } else {
                /* 7bit, 8bit, binary, none, or unknown: the bytes as they are. */
                r = mime_buffer_append(&out, e->body, e->body_size);
                if (r < 0)
                        return r;
        }

        if (out.size == 0 || !out.data)
                return -ENOMSG;
        *ret_size = out.size;
        *ret_data = TAKE_PTR(out.data);
        return 0;
}

typedef struct ReportPart {
        const char *p;
        size_t n;
} ReportPart;

/* The body parts of a multipart body (RFC 2046 §5.1.1): the line end before a delimiter
 * belongs to the delimiter; the preamble and the epilogue are dropped; a body without
 * its close-delimiter ends at its end. At most max parts. */
static int multipart_split(const char *body, size_t size, const char *boundary, size_t max,
                           ReportPart **ret, size_t *ret_n) {
        _cleanup_free_ ReportPart *parts = NULL;
        size_t blen = strlen(boundary), n = 0, part_start = SIZE_MAX, ls = 0;

        parts = calloc(max, sizeof(ReportPart));
        if (!parts)
                return -ENOMEM;

        while (ls < size) {
                const char *nl = memchr(body + ls, '\n', size - ls);
                size_t le = nl ? (size_t) (nl - body) : size;   /* the '\n' or the end */
                size_t ce = le > ls && body[le - 1] == '\r' ? le - 1 : le;
                size_t next = nl ? le + 1 : size;
                const char *l = body + ls;
                size_t k = ce - ls;

                if (k >= 2 + blen && l[0] == '-' && l[1] == '-' && memcmp(l + 2, boundary, blen) == 0) {
                        size_t rest = 2 + blen;
                        bool close = false;

                        if (k >= rest + 2 && l[rest] == '-' && l[rest + 1] == '-') {
                                close = true;
                                rest += 2;
                        }
                        while (rest < k && (l[rest] == ' ' || l[rest] == '\t'))
                                rest++;
                        if (rest == k) {
                                if (part_start != SIZE_MAX) {
                                        size_t pe = ls;

                                        /* The line end before the delimiter is its own. */
                                        if (pe > part_start && body[pe - 1] == '\n')
                                                pe--;
                                        if (pe > part_start && body[pe - 1] == '\r')
                                                pe--;
                                        if (n >= max)
                                                break;
                                        parts[n++] = (ReportPart) { body + part_start, pe - part_start };
                                }
                                if (close) {
                                        part_start = SIZE_MAX;
                                        break;
                                }
                                part_start = next;
                        }
                }
                ls = next;
        }
        if (part_start != SIZE_MAX && part_start <= size && n < max)
                parts[n++] = (ReportPart) { body + part_start, size - part_start };

        *ret_n = n;
        *ret = TAKE_PTR(parts);
        return 0;
}

typedef struct ReportWalk {
        MimeCharsets *charsets;
        unsigned parts;
} ReportWalk;

static int report_walk(ReportWalk *w, const char *p, size_t n, unsigned depth,
                       char **ret_data, size_t *ret_size, ReportSource *ret_source) {
        _cleanup_(report_entity_done) ReportEntity e = {};
        _cleanup_free_ ReportPart *parts = NULL;
        const char *type, *boundary;
        size_t n_parts = 0;
        int r;

        if (++w->parts > REPORT_MAX_PARTS)
                return -ENOMSG;
        r = report_entity_read(w->charsets, p, n, &e);
        if (r < 0)
                return r;
        type = report_entity_type(&e);

        if (depth > 0 && streq(type, "message/rfc822")) {
                r = report_entity_decode(&e, ret_data, ret_size);
                if (r < 0)
                        return r;
                *ret_source = REPORT_SOURCE_ATTACHMENT;
                return 0;
        }
        if (!startswith(type, "multipart/") || depth >= REPORT_MAX_DEPTH)
                return -ENOMSG;
        boundary = mime_params_get(&e.type, "boundary");
        if (isempty(boundary) || strlen(boundary) > 200)
                return -ENOMSG;

        r = multipart_split(e.body, e.body_size, boundary, REPORT_MAX_PARTS, &parts, &n_parts);
        if (r < 0)
                return r;

        /* RFC 5965 §2: a feedback report's third part is the message, or its header. */
        if (streq(type, "multipart/report") && n_parts >= 3 &&
            strcaseeq(strempty(mime_params_get(&e.type, "report-type")), "feedback-report")) {
                _cleanup_(report_entity_done) ReportEntity third = {};

                r = report_entity_read(w->charsets, parts[2].p, parts[2].n, &third);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && (streq(report_entity_type(&third), "message/rfc822") ||
                               streq(report_entity_type(&third), "text/rfc822-headers"))) {
                        r = report_entity_decode(&third, ret_data, ret_size);
                        if (r < 0)
                                return r;
                        *ret_source = REPORT_SOURCE_ARF;
                        return 0;
                }
        }

        for (size_t i = 0; i < n_parts; i++) {
                r = report_walk(w, parts[i].p, parts[i].n, depth + 1, ret_data, ret_size, ret_source);
                if (r != -ENOMSG)
                        return r;
        }
        return -ENOMSG;
}

int report_extract_message(const char *msg, size_t size, char **ret_data, size_t *ret_size,
                           ReportSource *ret_source) {
        _cleanup_(mime_charsets_freep) MimeCharsets *charsets = NULL;
        _cleanup_free_ char *data = NULL;
        ReportWalk w = {};
        ReportSource source = _REPORT_SOURCE_INVALID;
        size_t n = 0, offset = 0;
        Rfc5322Field f;
        int r;

        assert(msg || size == 0);
        assert(ret_data && ret_size);

        r = mime_charsets_new(&charsets);
        if (r < 0)
                return r;
        w.charsets = charsets;

        r = report_walk(&w, msg, size, 0, &data, &n, &source);
        if (r < 0)
                return r;

        /* What was found must at least begin like a message. */
        r = rfc5322_field_next(data, n, &report_header_limits, &offset, NULL, &f);
        if (r <= 0)
                return r == -ENOMEM ? r : -ENOMSG;

        *ret_size = n;
        *ret_data = TAKE_PTR(data);
        if (ret_source)
                *ret_source = source;
        return 0;
}

/* ---- The bus calls ---- */

struct SpamState {
        Transaction *tx;
        sd_bus *bus;
        sd_bus_slot *classify_slot, *report_slot;
        SpamHandler handler;
        ReportHandler report_handler;
        void *userdata, *report_userdata;
};

SpamState* spam_state_free(SpamState *s) {
        if (!s)
                return NULL;
        sd_bus_slot_unref(s->classify_slot);
        sd_bus_slot_unref(s->report_slot);
        sd_bus_unref(s->bus);
        free(s);
        return NULL;
}

static int spam_state_get(Transaction *t, sd_bus *bus, SpamState **ret) {
        SpamState *s = t->spam;

        if (!s) {
                s = calloc(1, sizeof(SpamState));
                if (!s)
                        return -ENOMEM;
                s->tx = t;
                t->spam = s;
        }
        if (!s->bus)
                s->bus = sd_bus_ref(bus);
        *ret = s;
        return 0;
}

static void classify_done(SpamState *s, const SpamVerdict *v, int error) {
        SpamHandler h = s->handler;

        s->handler = NULL;
        if (h)
                h(s->tx, v, error, s->userdata);        /* s may be freed here */
}

static int on_classify_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        SpamState *s = userdata;
        const sd_bus_error *e;
        const char *verdict = NULL;
        double score = 0;
        SpamStatus status = _SPAM_STATUS_INVALID;
        int r;

        s->classify_slot = sd_bus_slot_unref(s->classify_slot);

        e = sd_bus_message_get_error(reply);
        if (e) {
                log_notice("Classify failed: %s: %s", e->name, strna(e->message));
                classify_done(s, NULL, -sd_bus_message_get_errno(reply) ?: -EIO);
                return 0;
        }
        r = sd_bus_message_read(reply, "ds", &score, &verdict);
        if (r >= 0)
                r = sd_bus_message_skip(reply, "a(sd)");
        if (r >= 0) {
                status = spam_status_from_verdict(verdict);
                if (status < 0 || !(score >= 0.0 && score <= 1.0))
                        r = -EBADMSG;
        }
        if (r < 0) {
                log_error_errno(r, "Classify: malformed reply from %s: %m", SPAM1_BUS_NAME);
                classify_done(s, NULL, r);
                return 0;
        }
        classify_done(s, &(SpamVerdict) { .score = score, .status = status }, 0);
        return 0;
}

int spam_classify(sd_bus *bus, Transaction *t, const SpamRequest *req, SpamHandler handler, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        SpamState *s;
        int r;

        assert(t && req && handler);
        if (!bus)
                return -ENOTCONN;
        if (t->spool_fd < 0)
                return -EBADF;

        r = spam_state_get(t, bus, &s);
        if (r < 0)
                return r;
        s->classify_slot = sd_bus_slot_unref(s->classify_slot);

        r = sd_bus_message_new_method_call(bus, &m, SPAM1_BUS_NAME, SPAM1_BUS_PATH, SPAM1_BUS_INTERFACE, "Classify");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "h", t->spool_fd);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (!isempty(req->client_ip)) {
                r = sd_bus_message_append(m, "{sv}", "client_ip", "s", req->client_ip);
                if (r < 0)
                        return r;
        }
        if (!isempty(req->domain)) {
                r = sd_bus_message_append(m, "{sv}", "domain", "s", req->domain);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_append(m, "{sv}", "autolearn", "b", (int) req->autolearn);
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "top", "u", UINT32_C(0));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;

        r = bus_call_async_timeout(bus, &s->classify_slot, m, on_classify_reply, s, req->timeout);
        if (r < 0)
                return r;
        s->handler = handler;
        s->userdata = userdata;
        return 0;
}

static void report_done(SpamState *s, ReportOutcome outcome, bool changed, int error) {
        ReportHandler h = s->report_handler;

        s->report_handler = NULL;
        if (h)
                h(s->tx, outcome, changed, error, s->report_userdata);  /* s may be freed here */
}

static int on_report_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        SpamState *s = userdata;
        const sd_bus_error *e;
        const char *digest = NULL;
        int changed = 0, r;

        s->report_slot = sd_bus_slot_unref(s->report_slot);

        e = sd_bus_message_get_error(reply);
        if (e) {
                int error = -sd_bus_message_get_errno(reply) ?: -EIO;

                log_debug("Report refused: %s: %s", e->name, strna(e->message));
                if (sd_bus_error_has_name(e, SPAM1_ERROR_NOT_ALLOWED))
                        report_done(s, REPORT_OUTCOME_NOT_ALLOWED, false, error);
                else if (sd_bus_error_has_name(e, SPAM1_ERROR_RATE_LIMITED))
                        report_done(s, REPORT_OUTCOME_RATE_LIMITED, false, error);
                else if (sd_bus_error_has_name(e, SPAM1_ERROR_BAD_MESSAGE))
                        report_done(s, REPORT_OUTCOME_BAD_MESSAGE, false, error);
                else {
                        log_notice("Report failed: %s: %s", e->name, strna(e->message));
                        report_done(s, REPORT_OUTCOME_UNAVAILABLE, false, error);
                }
                return 0;
        }
        r = sd_bus_message_read(reply, "sb", &digest, &changed);
        if (r >= 0 && strlen(digest) != 64)
                r = -EBADMSG;
        if (r < 0) {
                log_error_errno(r, "Report: malformed reply from %s: %m", SPAM1_BUS_NAME);
                report_done(s, REPORT_OUTCOME_UNAVAILABLE, false, r);
                return 0;
        }
        log_debug("Report accepted, digest %s%s.", digest, changed ? "" : " (known already)");
        report_done(s, REPORT_OUTCOME_ACCEPTED, changed, 0);
        return 0;
}

int spam_report(sd_bus *bus, Transaction *t, const ReportRequest *req, ReportHandler handler, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        SpamState *s;
        int r;

        assert(t && req && handler);
        if (!bus)
                return -ENOTCONN;
        if (req->fd < 0 || !report_class_to_string(req->class) || isempty(req->reporter))
                return -EINVAL;

        r = spam_state_get(t, bus, &s);
        if (r < 0)
                return r;
        s->report_slot = sd_bus_slot_unref(s->report_slot);

        r = sd_bus_message_new_method_call(bus, &m, SPAM1_BUS_NAME, SPAM1_BUS_PATH, SPAM1_BUS_INTERFACE, "Report");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "hs", req->fd, report_class_to_string(req->class));
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "{sv}", "reporter", "s", req->reporter);
        if (r >= 0 && !isempty(req->domain))
                r = sd_bus_message_append(m, "{sv}", "domain", "s", req->domain);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;

        r = bus_call_async_timeout(bus, &s->report_slot, m, on_report_reply, s, req->timeout);
        if (r < 0)
                return r;
        s->report_handler = handler;
        s->report_userdata = userdata;
        return 0;
}
