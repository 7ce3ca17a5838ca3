/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* mailsec-proxyd's configuration: the [Proxy], [TLS], [Limits], [Timeouts] and [Checks] keys of
 * proxyd.conf (see mailsec-proxyd.conf(5)). A ProxyConfig is reference counted: every
 * session keeps the configuration it started with, so a reload (SIGHUP, Reload()) only
 * affects new sessions, and the backend settings outlive each session's Upstream. */

#include <stdbool.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "conf-parser.h"
#include "proxyd-checks.h"
#include "proxyd-spam.h"
#include "proxyd-upstream.h"
#include "time-util.h"

typedef struct ProxyConfig {
        unsigned n_ref;

        /* [Proxy] */
        char *hostname;                 /* Hostname= (default: gethostname()) */
        UpstreamConfig upstream;        /* Backend*=, and helo from BackendHelo= */
        bool backend_reuse;             /* BackendReuse=: keep idle backend connections */
        unsigned backend_reuse_max;     /* BackendReuseMax= */
        usec_t backend_reuse_timeout;   /* BackendReuseTimeoutSec= */

        /* [TLS] */
        char **certificate_files;       /* CertificateFile=, one per line */
        char **key_files;               /* KeyFile=, paired with certificate_files by position */
        bool starttls;                  /* STARTTLS= */

        /* [Limits] */
        unsigned max_line_length;
        uint64_t max_message_size;
        unsigned max_recipients;
        unsigned max_sessions;
        unsigned max_sessions_per_client;
        unsigned max_bad_commands;
        uint64_t max_header_size;

        /* [Timeouts]: ServerTimeoutSec=; the Backend*Sec= values live in upstream */
        usec_t server_timeout;

        /* [Checks] */
        bool authentication;            /* Authentication=: ask mailsec-authd */
        usec_t auth_timeout;            /* AuthTimeoutSec= */
        AuthFailureAction on_auth_failure;  /* OnAuthFailure= */
        bool dmarc_reject;              /* DmarcReject=: apply p=reject as 550 5.7.1 */
        DmarcQuarantine dmarc_quarantine;   /* DmarcQuarantine= */
        bool spam;                      /* Spam=: ask mailsec-spamd */
        usec_t spam_timeout;            /* SpamTimeoutSec= */
        SpamFailureAction on_spam_failure;  /* OnSpamFailure= */
        double spam_reject_score;       /* SpamRejectScore=: (0, 1] or SPAM_REJECT_SCORE_NEVER */
        bool spam_autolearn;            /* SpamAutoLearn= */
        char **report_addresses;        /* ReportAddresses=: "spam:address", "ham:address" */

        /* Built by proxy_config_prepare() */
        SSL_CTX *server_ctx;            /* NULL when STARTTLS is not offered */
} ProxyConfig;

#define PROXY_DEFAULT_BACKEND "127.0.0.1:10025"
#define PROXY_DEFAULT_MAX_LINE_LENGTH 1000U
#define PROXY_MIN_MAX_LINE_LENGTH 512U
#define PROXY_MAX_MAX_LINE_LENGTH 65536U
#define PROXY_DEFAULT_MAX_MESSAGE_SIZE (UINT64_C(50) * 1024 * 1024)
#define PROXY_DEFAULT_MAX_RECIPIENTS 1000U
#define PROXY_DEFAULT_MAX_SESSIONS 10000U
#define PROXY_DEFAULT_MAX_SESSIONS_PER_CLIENT 50U
#define PROXY_DEFAULT_MAX_BAD_COMMANDS 10U
#define PROXY_DEFAULT_MAX_HEADER_SIZE (UINT64_C(1) * 1024 * 1024)
#define PROXY_DEFAULT_SERVER_TIMEOUT (5 * USEC_PER_MINUTE)
#define PROXY_DEFAULT_BACKEND_REUSE_MAX 100U
#define PROXY_DEFAULT_BACKEND_REUSE_TIMEOUT (10 * USEC_PER_SEC)

/* A configuration with every default set (hostname not yet filled in). */
int proxy_config_new(ProxyConfig **ret);
ProxyConfig* proxy_config_ref(ProxyConfig *c);
ProxyConfig* proxy_config_unref(ProxyConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ProxyConfig*, proxy_config_unref);

/* The configuration table, exposed for the unit suite. */
extern const ConfigTableItem proxy_config_table[];
extern const size_t proxy_config_table_size;

/* Parse path and its drop-ins (or text, for tests), into c. */
int proxy_config_parse_file(ProxyConfig *c, const char *path, ConfigError *error);
int proxy_config_parse_text(ProxyConfig *c, const char *filename, const char *text, ConfigError *error);

/* Fill in derived defaults and check settings that depend on each other; with
 * load_tls, also build the TLS contexts (certificates, keys, backend CA). Errors are
 * described in *error (filename set to 'source', line 0). */
int proxy_config_prepare(ProxyConfig *c, const char *source, bool load_tls, ConfigError *error);

/* new + parse + prepare. */
int proxy_config_load(const char *path, ProxyConfig **ret, ConfigError *error);
