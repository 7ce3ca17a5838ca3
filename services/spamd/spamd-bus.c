/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "bus-util.h"
#include "cleanup.h"
#include "log.h"
#include "memfd-util.h"
#include "spamd-bus.h"
#include "spamd-manager.h"
#include "string-util.h"

#define SPAM_ARG_MAX 320U
#define SPAM_TOP_DEFAULT 10U
#define SPAM_TOP_MAX 100U

static const sd_bus_error_map spam_error_map[] = {
        SD_BUS_ERROR_MAP(SPAM_ERROR_BAD_MESSAGE, EBADMSG),
        SD_BUS_ERROR_MAP(SPAM_ERROR_RATE_LIMITED, EDQUOT),
        SD_BUS_ERROR_MAP(SPAM_ERROR_NOT_ALLOWED, EPERM),
        SD_BUS_ERROR_MAP_END
};


static int sender_uid(sd_bus_message *message, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r;

        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        return sd_bus_creds_get_euid(creds, ret);
}

/* root and mailsec-proxy: the callers that act for others. */
static bool uid_is_proxy(Manager *m, uid_t uid) {
        return uid == 0 || (m->have_proxy_uid && uid == m->proxy_uid);
}

static bool uid_may_name_reporter(Manager *m, uid_t uid) {
        if (uid_is_proxy(m, uid))
                return true;
        for (size_t i = 0; i < m->n_trusted_uids; i++)
                if (m->trusted_uids[i] == uid)
                        return true;
        return false;
}

/* The message of a call in memory: read into the manager's buffer, or mapped when large
 * (memfd_view_sealed()). Valid until the method returns. */
static int map_message(Manager *m, sd_bus_message *message, MemfdView *ret, sd_bus_error *error) {
        int fd, r;

        r = sd_bus_message_read(message, "h", &fd);
        if (r < 0)
                return r;
        r = memfd_view_sealed(fd, m->config->max_message_size, &m->message_reader, ret);
        if (r == -ENOMEM)
                return r;               /* ours, not the caller's */
        if (r == -EFBIG)
                return sd_bus_error_setf(error, SPAM_ERROR_BAD_MESSAGE,
                                         "The message is larger than MaxMessageSize=%" PRIu64 ".",
                                         m->config->max_message_size);
        if (r == -EPERM)
                return sd_bus_error_setf(error, SPAM_ERROR_BAD_MESSAGE,
                                         "The message memfd is not sealed against writing, growing, shrinking and sealing.");
        if (r < 0)
                return sd_bus_error_setf(error, SPAM_ERROR_BAD_MESSAGE, "The message is not a sealed memfd: %s",
                                         strerror(-r));
        if (ret->size == 0)
                return sd_bus_error_setf(error, SPAM_ERROR_BAD_MESSAGE, "The message is empty.");
        return 0;
}

typedef struct Options {
        const char *client_ip;
        const char *domain;
        const char *reporter;
        unsigned top;
        bool have_top;
        int autolearn;                  /* -1 not given */
} Options;

/* allowed: the option names this method takes, "client_ip\0domain\0..." */
static int read_options(sd_bus_message *message, const char *allowed, Options *o, sd_bus_error *error) {
        const char *key;
        int r;

        *o = (Options) { .autolearn = -1 };
        r = sd_bus_message_enter_container(message, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                bool known = false;

                r = sd_bus_message_read(message, "s", &key);
                if (r < 0)
                        return r;
                for (const char *a = allowed; *a; a += strlen(a) + 1)
                        if (streq(a, key))
                                known = true;
                if (!known)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option: %s", key);

                if (streq(key, "top")) {
                        uint32_t u;

                        r = sd_bus_message_read(message, "v", "u", &u);
                        if (r == -ENXIO || r == -EINVAL)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option top must be a uint32.");
                        if (r < 0)
                                return r;
                        if (u > SPAM_TOP_MAX)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option top is at most %u.",
                                                         SPAM_TOP_MAX);
                        o->top = u;
                        o->have_top = true;
                } else if (streq(key, "autolearn")) {
                        int b;

                        r = sd_bus_message_read(message, "v", "b", &b);
                        if (r == -ENXIO || r == -EINVAL)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option autolearn must be a boolean.");
                        if (r < 0)
                                return r;
                        o->autolearn = b;
                } else {
                        const char *value, **field = streq(key, "client_ip") ? &o->client_ip :
                                                     streq(key, "domain") ? &o->domain : &o->reporter;

                        r = sd_bus_message_read(message, "v", "s", &value);
                        if (r == -ENXIO || r == -EINVAL)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option %s must be a string.", key);
                        if (r < 0)
                                return r;
                        if (isempty(value) || strlen(value) > SPAM_ARG_MAX ||
                            strpbrk(value, " \t\r\n\"\\") != NULL)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid value of option %s.", key);
                        *field = value;
                }
                r = sd_bus_message_exit_container(message);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

static int append_top(sd_bus_message *reply, const ClassifyResult *c) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(sd)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->bayes.n_top; i++) {
                const SpamTokenScore *s = c->bayes.top + i;
                const char *text = c->tokens.text && s->index < c->tokens.n ? c->tokens.text[s->index] : NULL;

                r = sd_bus_message_append(reply, "(sd)", strna(text), s->prob);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int method_classify(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(classify_result_done) ClassifyResult res = { .tokens = SPAM_TOKENS_NULL, .parts = SPAM_TOKEN_PARTS_NULL };
        _cleanup_(memfd_view_release) MemfdView msg = {};
        Manager *m = userdata;
        ClassifyRequest req = {};
        Options o;
        uid_t uid;
        int r;

        r = map_message(m, message, &msg, error);
        if (r < 0)
                return r;
        r = read_options(message, "client_ip\0domain\0top\0autolearn\0", &o, error);
        if (r < 0)
                return r;
        r = sender_uid(message, &uid);
        if (r < 0)
                return r;
        if (o.autolearn > 0 && !uid_is_proxy(m, uid))
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Only root and %s may ask for auto-learning.", SPAMD_PROXY_USER);

        req = (ClassifyRequest) {
                .client_ip = o.client_ip,
                .domain = o.domain,
                .top = o.have_top ? o.top : SPAM_TOP_DEFAULT,
                .autolearn = o.autolearn > 0,
        };
        r = manager_classify(m, msg.data, msg.size, &req, &res);
        if (r < 0)
                return r;

        log_debug("Classified %zu bytes from uid %u: %s (%.4f, %zu tokens used).", msg.size, (unsigned) uid,
                  spam_verdict_to_string(res.bayes.verdict), res.bayes.score, res.bayes.n_used);
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "ds", res.bayes.score, spam_verdict_to_string(res.bayes.verdict));
        if (r < 0)
                return r;
        r = append_top(reply, &res);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int read_class(sd_bus_message *message, SpamClass *ret, sd_bus_error *error) {
        const char *s;
        int r;

        r = sd_bus_message_read(message, "s", &s);
        if (r < 0)
                return r;
        *ret = spam_class_from_string(s);
        if (*ret < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown class \"%s\" (spam or ham).", s);
        return 0;
}

static int learn_reply(sd_bus_message *message, int r, const char *digest, sd_bus_error *error) {
        if (r == -EBADMSG)
                return sd_bus_error_setf(error, SPAM_ERROR_BAD_MESSAGE, "The message cannot be learned.");
        if (r == -EPERM)
                return sd_bus_error_setf(error, SPAM_ERROR_NOT_ALLOWED,
                                         "Message %s was classified by an administrator; a report does not change that.",
                                         digest);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "sb", digest, r > 0);
}

static int method_report(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(memfd_view_release) MemfdView msg = {};
        _cleanup_free_ char *own = NULL;
        Manager *m = userdata;
        const char *reporter;
        char digest[65];
        SpamClass class;
        Options o;
        uid_t uid;
        int r;

        r = map_message(m, message, &msg, error);
        if (r < 0)
                return r;
        r = read_class(message, &class, error);
        if (r < 0)
                return r;
        r = read_options(message, "domain\0reporter\0", &o, error);
        if (r < 0)
                return r;
        r = sender_uid(message, &uid);
        if (r < 0)
                return r;

        if (o.reporter) {
                if (!uid_may_name_reporter(m, uid)) {
                        m->stats.reports_refused++;
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "uid %u may only report for itself (TrustedReporters=).", (unsigned) uid);
                }
                if (!startswith(o.reporter, "mail:") && !startswith(o.reporter, "imap:"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "A reporter is \"mail:ADDRESS\" or \"imap:USER\".");
                /* Poisoning guard: only the organisation's own users teach the filter. */
                if (startswith(o.reporter, "mail:") &&
                    !spam_config_report_domain_allowed(m->config, o.reporter + 5)) {
                        m->stats.reports_refused++;
                        log_notice("Refused a %s report from %s: not an address of ReportDomains=.",
                                   spam_class_to_string(class), o.reporter);
                        return sd_bus_error_setf(error, SPAM_ERROR_NOT_ALLOWED,
                                                 "%s is not an address of the organisation.", o.reporter + 5);
                }
                reporter = o.reporter;
        } else {
                if (asprintf_safe(&own, "uid:%u", (unsigned) uid) < 0)
                        return -ENOMEM;
                reporter = own;
        }

        r = manager_rate_check(m, reporter);
        if (r == -EDQUOT) {
                m->stats.reports_refused++;
                log_notice("Refused a report from %s: more than ReportsPerHour=%u.", reporter,
                           m->config->reports_per_hour);
                return sd_bus_error_setf(error, SPAM_ERROR_RATE_LIMITED,
                                         "%s sent %u reports in the last hour already.", reporter,
                                         m->config->reports_per_hour);
        }
        if (r < 0)
                return r;

        r = manager_learn(m, msg.data, msg.size, class, SPAM_SOURCE_REPORT, reporter, o.domain, digest);
        if (r >= 0)
                m->stats.reports_accepted++;
        else if (r == -EPERM)
                m->stats.reports_refused++;
        if (r <= 0)
                manager_rate_refund(m, reporter);
        return learn_reply(message, r, digest, error);
}

static int method_learn(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(memfd_view_release) MemfdView msg = {};
        _cleanup_free_ char *who = NULL;
        Manager *m = userdata;
        char digest[65];
        SpamClass class;
        Options o;
        uid_t uid;
        int r;

        r = bus_check_sender_admin(message, SPAMD_ADMIN_GROUP, error);
        if (r < 0)
                return r;
        r = map_message(m, message, &msg, error);
        if (r < 0)
                return r;
        r = read_class(message, &class, error);
        if (r < 0)
                return r;
        r = read_options(message, "domain\0", &o, error);
        if (r < 0)
                return r;
        if (sender_uid(message, &uid) < 0 || asprintf_safe(&who, "admin:uid:%u", (unsigned) uid) < 0)
                return -ENOMEM;
        r = manager_learn(m, msg.data, msg.size, class, SPAM_SOURCE_ADMIN, who, o.domain, digest);
        return learn_reply(message, r, digest, error);
}

static int method_forget(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *who = NULL;
        Manager *m = userdata;
        const char *digest;
        uid_t uid;
        int r;

        r = bus_check_sender_admin(message, SPAMD_ADMIN_GROUP, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "s", &digest);
        if (r < 0)
                return r;
        if (sender_uid(message, &uid) < 0 || asprintf_safe(&who, "admin:uid:%u", (unsigned) uid) < 0)
                return -ENOMEM;
        r = manager_forget(m, digest, who);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "A digest is 64 hex digits.");
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "b", r > 0);
}

static int method_rebuild(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        SpamStoreStats st = {};
        int r;

        r = bus_check_sender_admin(message, SPAMD_ADMIN_GROUP, error);
        if (r < 0)
                return r;
        r = spam_store_rebuild(m->store);
        if (r < 0)
                return r;
        (void) spam_store_stats(m->store, &st);
        log_info("Statistics rebuilt from %" PRIu64 " journal records.", st.journal_records);
        return sd_bus_reply_method_return(message, "t", st.journal_records);
}

static int method_compact(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uint64_t records = 0, bytes = 0;
        int r;

        r = bus_check_sender_admin(message, SPAMD_ADMIN_GROUP, error);
        if (r < 0)
                return r;
        r = manager_compact(m, &records, &bytes);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "tt", records, bytes);
}

static int method_reset(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *who = NULL;
        Manager *m = userdata;
        uid_t uid;
        int r;

        r = bus_check_sender_admin(message, SPAMD_ADMIN_GROUP, error);
        if (r < 0)
                return r;
        if (sender_uid(message, &uid) < 0 || asprintf_safe(&who, "admin:uid:%u", (unsigned) uid) < 0)
                return -ENOMEM;
        r = manager_reset(m, who);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, NULL);
}

static int property_get_store(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        SpamStoreStats st = {};
        uint64_t v;
        int r;

        r = spam_store_stats(m->store, &st);
        if (r < 0)
                return r;
        if (streq(property, "SpamLearned"))
                v = st.totals.spam;
        else if (streq(property, "HamLearned"))
                v = st.totals.ham;
        else if (streq(property, "Tokens"))
                v = st.tokens;
        else if (streq(property, "JournalRecords"))
                v = st.journal_records;
        else if (streq(property, "JournalBytes"))
                v = st.journal_bytes;
        else if (streq(property, "DatabaseBytes"))
                v = st.db_bytes;
        else
                v = st.lexicon_words;
        return sd_bus_message_append(reply, "t", v);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PROJECT_VERSION);
}

#define STAT(name, field) \
        SD_BUS_PROPERTY(name, "t", NULL, offsetof(Manager, stats) + offsetof(SpamdStats, field), 0)

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Classify",
                                SD_BUS_ARGS("h", message, "a{sv}", options),
                                SD_BUS_RESULT("d", score, "s", verdict, "a(sd)", top_tokens),
                                method_classify, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Report",
                                SD_BUS_ARGS("h", message, "s", class, "a{sv}", options),
                                SD_BUS_RESULT("s", digest, "b", changed),
                                method_report, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Learn",
                                SD_BUS_ARGS("h", message, "s", class, "a{sv}", options),
                                SD_BUS_RESULT("s", digest, "b", changed),
                                method_learn, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Forget",
                                SD_BUS_ARGS("s", digest),
                                SD_BUS_RESULT("b", forgotten),
                                method_forget, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rebuild",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("t", records),
                                method_rebuild, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Compact",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("t", records, "t", bytes),
                                method_compact, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reset",
                                SD_BUS_NO_ARGS,
                                SD_BUS_NO_RESULT,
                                method_reset, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Learned",
                                SD_BUS_ARGS("s", digest, "s", class, "s", source),
                                0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        STAT("MessagesClassified", classified),
        SD_BUS_PROPERTY("SpamLearned", "t", property_get_store, 0, 0),
        SD_BUS_PROPERTY("HamLearned", "t", property_get_store, 0, 0),
        SD_BUS_PROPERTY("Tokens", "t", property_get_store, 0, 0),
        SD_BUS_PROPERTY("LexiconWords", "t", property_get_store, 0, 0),
        SD_BUS_PROPERTY("JournalRecords", "t", property_get_store, 0, 0),
        SD_BUS_PROPERTY("JournalBytes", "t", property_get_store, 0, 0),
        SD_BUS_PROPERTY("DatabaseBytes", "t", property_get_store, 0, 0),
        STAT("ReportsAccepted", reports_accepted),
        STAT("ReportsRefused", reports_refused),
        STAT("AutoLearned", autolearned),
        SD_BUS_VTABLE_END
};

int manager_connect_bus(Manager *m) {
        return bus_service_connect(m->event, "mailsec-spamd", spam_error_map, SPAM_BUS_PATH, SPAM_BUS_INTERFACE,
                                   manager_vtable, m, &m->bus);
}

int manager_request_name(Manager *m) {
        int r;

        r = bus_request_name_async_or_exit(m->bus, SPAM_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Cannot request bus name %s: %m", SPAM_BUS_NAME);
        return 0;
}
