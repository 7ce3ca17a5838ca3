/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "proxyd-conf.h"
#include "proxyd-tls.h"
#include "string-util.h"

static inline void* mfree(void *p) {
        free(p);
        return NULL;
}

static DEFINE_CONFIG_PARSE_ENUM(config_parse_backend_client_info, backend_client_info_from_string, BackendClientInfo);
static DEFINE_CONFIG_PARSE_ENUM(config_parse_backend_tls, backend_tls_from_string, BackendTls);
static DEFINE_CONFIG_PARSE_ENUM(config_parse_auth_failure, auth_failure_action_from_string, AuthFailureAction);
static DEFINE_CONFIG_PARSE_ENUM(config_parse_dmarc_quarantine, dmarc_quarantine_from_string, DmarcQuarantine);
static DEFINE_CONFIG_PARSE_ENUM(config_parse_spam_failure, spam_failure_action_from_string, SpamFailureAction);

static int config_parse_spam_reject_score(const char *filename, unsigned line, const char *section, const char *lvalue,
                                          int ltype, const char *rvalue, void *data, void *userdata) {
        double v;

        if (spam_reject_score_parse(rvalue, &v) < 0) {
                config_parser_set_error(userdata, "%s= must be \"no\" or a number above 0 and at most 1: %s",
                                        lvalue, rvalue);
                return -ERANGE;
        }
        *(double*) data = v;
        return 0;
}

/* ReportAddresses=: "spam:ADDRESS ham:ADDRESS ...", appended; an empty value resets. */
static int config_parse_report_addresses(const char *filename, unsigned line, const char *section, const char *lvalue,
                                         int ltype, const char *rvalue, void *data, void *userdata) {
        char ***l = data;
        int r;

        if (isempty(rvalue)) {
                *l = strv_free(*l);
                return 0;
        }
        r = report_addresses_parse(rvalue, l);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                config_parser_set_error(userdata, "Invalid %s= (\"spam:ADDRESS ham:ADDRESS\" expected): %s",
                                        lvalue, rvalue);
                return r;
        }
        return 0;
}

/* Hostname= and BackendHelo=: a domain name as it appears in our 220 greeting, EHLO and
 * Received: field; letters, digits, '-', '.' only. */
static int config_parse_hostname(const char *filename, unsigned line, const char *section, const char *lvalue,
                                 int ltype, const char *rvalue, void *data, void *userdata) {
        char **p = data;

        if (isempty(rvalue)) {
                *p = mfree(*p);
                return 0;
        }
        if (strlen(rvalue) > 253 || rvalue[0] == '.' || rvalue[0] == '-' ||
            strspn(rvalue, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != strlen(rvalue)) {
                config_parser_set_error(userdata, "Invalid host name for %s=: %s", lvalue, rvalue);
                return -EINVAL;
        }
        return free_and_strdup(p, rvalue) < 0 ? -ENOMEM : 0;
}

static int config_parse_backend_pin(const char *filename, unsigned line, const char *section, const char *lvalue,
                                    int ltype, const char *rvalue, void *data, void *userdata) {
        UpstreamConfig *u = data;

        if (isempty(rvalue)) {
                u->have_pin = false;
                return 0;
        }
        if (upstream_parse_pin(rvalue, u->pin) < 0) {
                config_parser_set_error(userdata, "Invalid %s= (64 hex digits expected): %s", lvalue, rvalue);
                return -EINVAL;
        }
        u->have_pin = true;
        return 0;
}

/* CertificateFile=/KeyFile=: one file per line, appended; an empty value resets the list.
 * ltype 1: relative names allowed (KeyFile=, looked up in $CREDENTIALS_DIRECTORY). */
static int config_parse_file_list(const char *filename, unsigned line, const char *section, const char *lvalue,
                                  int ltype, const char *rvalue, void *data, void *userdata) {
        char ***l = data;

        if (isempty(rvalue)) {
                *l = strv_free(*l);
                return 0;
        }
        if (ltype != 1 && rvalue[0] != '/') {
                config_parser_set_error(userdata, "%s= must be an absolute path: %s", lvalue, rvalue);
                return -EINVAL;
        }
        if (ltype == 1 && rvalue[0] != '/' && (strstr(rvalue, "..") || strchr(rvalue, '/'))) {
                config_parser_set_error(userdata, "%s= must be absolute or a plain credential name: %s",
                                        lvalue, rvalue);
                return -EINVAL;
        }
        if (strlen(rvalue) >= PATH_MAX) {
                config_parser_set_error(userdata, "Path for %s= too long", lvalue);
                return -ENAMETOOLONG;
        }
        return strv_extend(l, rvalue);
}

/* Unsigned with a lower bound given as ltype: a limit of 0 would lock everybody out. */
static int config_parse_line_length(const char *filename, unsigned line, const char *section, const char *lvalue,
                                    int ltype, const char *rvalue, void *data, void *userdata) {
        unsigned u;
        int r;

        r = config_parse_unsigned(filename, line, section, lvalue, ltype, rvalue, &u, userdata);
        if (r < 0)
                return r;
        if (u < PROXY_MIN_MAX_LINE_LENGTH || u > PROXY_MAX_MAX_LINE_LENGTH) {
                config_parser_set_error(userdata, "%s= must be between %u and %u: %s", lvalue,
                                        PROXY_MIN_MAX_LINE_LENGTH, PROXY_MAX_MAX_LINE_LENGTH, rvalue);
                return -ERANGE;
        }
        *(unsigned*) data = u;
        return 0;
}

static int config_parse_nonzero_size(const char *filename, unsigned line, const char *section, const char *lvalue,
                                     int ltype, const char *rvalue, void *data, void *userdata) {
        uint64_t v;
        int r;

        r = config_parse_size(filename, line, section, lvalue, ltype, rvalue, &v, userdata);
        if (r < 0)
                return r;
        if (v < 1024) {
                config_parser_set_error(userdata, "%s= must be at least 1K: %s", lvalue, rvalue);
                return -ERANGE;
        }
        *(uint64_t*) data = v;
        return 0;
}


#define UP(f) (offsetof(ProxyConfig, upstream) + offsetof(UpstreamConfig, f))

const ConfigTableItem proxy_config_table[] = {
        { "Proxy",    "Hostname",                   config_parse_hostname,            0, offsetof(ProxyConfig, hostname) },
        { "Proxy",    "Backend",                    config_parse_socket_address,      0, UP(address) },
        { "Proxy",    "BackendClientInfo",          config_parse_backend_client_info, 0, UP(client_info) },
        { "Proxy",    "BackendTLS",                 config_parse_backend_tls,         0, UP(tls) },
        { "Proxy",    "BackendCAFile",              config_parse_path,                0, UP(ca_file) },
        { "Proxy",    "BackendPin",                 config_parse_backend_pin,         0, offsetof(ProxyConfig, upstream) },
        { "Proxy",    "BackendTLSName",             config_parse_hostname,            0, UP(tls_name) },
        { "Proxy",    "BackendHelo",                config_parse_hostname,            0, UP(helo) },
        { "Proxy",    "BackendReuse",               config_parse_bool,                0, offsetof(ProxyConfig, backend_reuse) },
        { "Proxy",    "BackendReuseMax",            config_parse_unsigned_min,        0, offsetof(ProxyConfig, backend_reuse_max) },
        { "TLS",      "CertificateFile",            config_parse_file_list,           0, offsetof(ProxyConfig, certificate_files) },
        { "TLS",      "KeyFile",                    config_parse_file_list,           1, offsetof(ProxyConfig, key_files) },
        { "TLS",      "STARTTLS",                   config_parse_bool,                0, offsetof(ProxyConfig, starttls) },
        { "Limits",   "MaxLineLength",              config_parse_line_length,         0, offsetof(ProxyConfig, max_line_length) },
        { "Limits",   "MaxMessageSize",             config_parse_nonzero_size,        0, offsetof(ProxyConfig, max_message_size) },
        { "Limits",   "MaxRecipients",              config_parse_unsigned_min,        1, offsetof(ProxyConfig, max_recipients) },
        { "Limits",   "MaxSessions",                config_parse_unsigned_min,        1, offsetof(ProxyConfig, max_sessions) },
        { "Limits",   "MaxSessionsPerClient",       config_parse_unsigned_min,        1, offsetof(ProxyConfig, max_sessions_per_client) },
        { "Limits",   "MaxBadCommands",             config_parse_unsigned_min,        1, offsetof(ProxyConfig, max_bad_commands) },
        { "Limits",   "MaxHeaderSize",              config_parse_nonzero_size,        0, offsetof(ProxyConfig, max_header_size) },
        { "Timeouts", "ServerTimeoutSec",           config_parse_timeout,             0, offsetof(ProxyConfig, server_timeout) },
        { "Timeouts", "BackendConnectTimeoutSec",   config_parse_timeout,             0, UP(connect_timeout) },
        { "Timeouts", "BackendGreetingTimeoutSec",  config_parse_timeout,             0, UP(greeting_timeout) },
        { "Timeouts", "BackendMailTimeoutSec",      config_parse_timeout,             0, UP(mail_timeout) },
        { "Timeouts", "BackendRcptTimeoutSec",      config_parse_timeout,             0, UP(rcpt_timeout) },
        { "Timeouts", "BackendDataInitTimeoutSec",  config_parse_timeout,             0, UP(data_init_timeout) },
        { "Timeouts", "BackendDataBlockTimeoutSec", config_parse_timeout,             0, UP(data_block_timeout) },
        { "Timeouts", "BackendDataTermTimeoutSec",  config_parse_timeout,             0, UP(data_term_timeout) },
        { "Timeouts", "BackendReuseTimeoutSec",     config_parse_timeout,             0, offsetof(ProxyConfig, backend_reuse_timeout) },
        { "Checks",   "Authentication",             config_parse_bool,                0, offsetof(ProxyConfig, authentication) },
        { "Checks",   "AuthTimeoutSec",             config_parse_timeout,             0, offsetof(ProxyConfig, auth_timeout) },
        { "Checks",   "OnAuthFailure",              config_parse_auth_failure,        0, offsetof(ProxyConfig, on_auth_failure) },
        { "Checks",   "DmarcReject",                config_parse_bool,                0, offsetof(ProxyConfig, dmarc_reject) },
        { "Checks",   "DmarcQuarantine",            config_parse_dmarc_quarantine,    0, offsetof(ProxyConfig, dmarc_quarantine) },
        { "Checks",   "Spam",                       config_parse_bool,                0, offsetof(ProxyConfig, spam) },
        { "Checks",   "SpamTimeoutSec",             config_parse_timeout,             0, offsetof(ProxyConfig, spam_timeout) },
        { "Checks",   "OnSpamFailure",              config_parse_spam_failure,        0, offsetof(ProxyConfig, on_spam_failure) },
        { "Checks",   "SpamRejectScore",            config_parse_spam_reject_score,   0, offsetof(ProxyConfig, spam_reject_score) },
        { "Checks",   "SpamAutoLearn",              config_parse_bool,                0, offsetof(ProxyConfig, spam_autolearn) },
        { "Checks",   "ReportAddresses",            config_parse_report_addresses,    0, offsetof(ProxyConfig, report_addresses) },
};
const size_t proxy_config_table_size = ELEMENTSOF(proxy_config_table);

int proxy_config_new(ProxyConfig **ret) {
        ProxyConfig *c;
        int r;

        assert(ret);

        c = calloc(1, sizeof(ProxyConfig));
        if (!c)
                return -ENOMEM;

        *c = (ProxyConfig) {
                .n_ref = 1,
                .upstream = {
                        .client_info = BACKEND_CLIENT_INFO_XCLIENT,
                        .tls = BACKEND_TLS_MAY,
                        .connect_timeout = 30 * USEC_PER_SEC,
                        .greeting_timeout = 5 * USEC_PER_MINUTE,
                        .mail_timeout = 5 * USEC_PER_MINUTE,
                        .rcpt_timeout = 5 * USEC_PER_MINUTE,
                        .data_init_timeout = 2 * USEC_PER_MINUTE,
                        .data_block_timeout = 3 * USEC_PER_MINUTE,
                        .data_term_timeout = 10 * USEC_PER_MINUTE,
                },
                .backend_reuse = true,
                .backend_reuse_max = PROXY_DEFAULT_BACKEND_REUSE_MAX,
                .backend_reuse_timeout = PROXY_DEFAULT_BACKEND_REUSE_TIMEOUT,
                .starttls = true,
                .max_line_length = PROXY_DEFAULT_MAX_LINE_LENGTH,
                .max_message_size = PROXY_DEFAULT_MAX_MESSAGE_SIZE,
                .max_recipients = PROXY_DEFAULT_MAX_RECIPIENTS,
                .max_sessions = PROXY_DEFAULT_MAX_SESSIONS,
                .max_sessions_per_client = PROXY_DEFAULT_MAX_SESSIONS_PER_CLIENT,
                .max_bad_commands = PROXY_DEFAULT_MAX_BAD_COMMANDS,
                .max_header_size = PROXY_DEFAULT_MAX_HEADER_SIZE,
                .server_timeout = PROXY_DEFAULT_SERVER_TIMEOUT,
                .auth_timeout = PROXY_DEFAULT_AUTH_TIMEOUT,
                .on_auth_failure = AUTH_FAILURE_TEMPFAIL,
                .dmarc_reject = true,
                .dmarc_quarantine = DMARC_QUARANTINE_HEADER,
                .spam = false,
                .spam_timeout = PROXY_DEFAULT_SPAM_TIMEOUT,
                .on_spam_failure = SPAM_FAILURE_TEMPFAIL,
                .spam_reject_score = SPAM_REJECT_SCORE_NEVER,
                .spam_autolearn = true,
        };

        r = socket_address_parse(PROXY_DEFAULT_BACKEND, &c->upstream.address);
        if (r < 0) {
                free(c);
                return r;
        }

        *ret = c;
        return 0;
}

ProxyConfig* proxy_config_ref(ProxyConfig *c) {
        if (c)
                c->n_ref++;
        return c;
}

ProxyConfig* proxy_config_unref(ProxyConfig *c) {
        if (!c)
                return NULL;
        assert(c->n_ref > 0);
        if (--c->n_ref > 0)
                return NULL;

        free(c->hostname);
        strv_free(c->certificate_files);
        strv_free(c->key_files);
        strv_free(c->report_addresses);
        if (c->server_ctx)
                SSL_CTX_free(c->server_ctx);

        /* Releases the client TLS context and the strings parsed into it. */
        upstream_config_done(&c->upstream);
        free(c);
        return NULL;
}

int proxy_config_parse_file(ProxyConfig *c, const char *path, ConfigError *error) {
        return config_parse_with_dropins(path, proxy_config_table, proxy_config_table_size, c, error);
}

int proxy_config_parse_text(ProxyConfig *c, const char *filename, const char *text, ConfigError *error) {
        return config_parse_text(filename, text, strlen(text), proxy_config_table, proxy_config_table_size,
                                 c, error);
}

int proxy_config_prepare(ProxyConfig *c, const char *source, bool load_tls, ConfigError *error) {
        int r;

        assert(c);

        if (!c->hostname) {
                char buf[HOST_NAME_MAX + 1] = {};

                if (gethostname(buf, sizeof(buf) - 1) < 0 || isempty(buf))
                        return config_error_set(error, -EINVAL, source, 0, "Hostname= is not set and the host has no name");
                c->hostname = strdup(buf);
                if (!c->hostname)
                        return -ENOMEM;
        }
        if (!c->upstream.helo) {
                c->upstream.helo = strdup(c->hostname);
                if (!c->upstream.helo)
                        return -ENOMEM;
        }

        if (c->upstream.tls == BACKEND_TLS_VERIFY && !c->upstream.ca_file && !c->upstream.have_pin)
                return config_error_set(error, -EINVAL, source, 0,
                                     "BackendTLS=verify needs BackendCAFile= or BackendPin=");

        /* A report teaches the filter: it is taken only from senders whose mail passes
         * DMARC, and only mailsec-authd can say that. */
        if (c->report_addresses && !c->authentication)
                return config_error_set(error, -EINVAL, source, 0,
                                        "ReportAddresses= needs Authentication=yes: reports are taken only from "
                                        "senders whose mail passes DMARC");

        if (strv_length(c->certificate_files) != strv_length(c->key_files))
                return config_error_set(error, -EINVAL, source, 0,
                                     "%zu CertificateFile= but %zu KeyFile= settings; they come in pairs",
                                     strv_length(c->certificate_files), strv_length(c->key_files));

        if (!load_tls)
                return 0;

        if (c->starttls && c->certificate_files) {
                _cleanup_free_ char *m = NULL;

                if (c->server_ctx) {
                        SSL_CTX_free(c->server_ctx);
                        c->server_ctx = NULL;
                }
                r = tls_server_context_new(c->certificate_files, c->key_files, &c->server_ctx, &m);
                if (r < 0)
                        return config_error_set(error, r, source, 0, "%s", m ?: "Cannot set up TLS");
        }

        r = upstream_config_prepare(&c->upstream);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return config_error_set(error, r, source, 0, "Cannot set up TLS towards the backend (BackendCAFile=%s)",
                                     strna(c->upstream.ca_file));
        return 0;
}

int proxy_config_load(const char *path, ProxyConfig **ret, ConfigError *error) {
        _cleanup_(proxy_config_unrefp) ProxyConfig *c = NULL;
        int r;

        r = proxy_config_new(&c);
        if (r < 0)
                return r;

        r = proxy_config_parse_file(c, path, error);
        if (r < 0)
                return r;

        r = proxy_config_prepare(c, path, /* load_tls= */ true, error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}
