/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* mailsec-authd's configuration: the [Resolver], [Authentication], [Signing] and [Service]
 * keys of authd.conf (see mailsec-authd.conf(5)). Read once at start-up; a bus-activated
 * service that exits on idle picks up changes at its next start. */

#include <stdbool.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "conf-parser.h"
#include "dkim-key.h"
#include "dns-resolver.h"
#include "time-util.h"

#define AUTHD_DEFAULT_SERVER "127.0.0.1:53"
#define AUTHD_DEFAULT_MAX_MESSAGE_SIZE (UINT64_C(50) * 1024 * 1024)
#define AUTHD_DEFAULT_MAX_PENDING 256U
#define AUTHD_DEFAULT_CHECK_TIMEOUT (30 * USEC_PER_SEC)
#define AUTHD_DEFAULT_IDLE_TIMEOUT (30 * USEC_PER_SEC)
#define AUTHD_KEY_FILE_MAX (64U * 1024U)
#define AUTHD_TRUSTED_ARC_SEALERS_MAX 64U

/* One Key= line: "domain:selector:rsa|ed25519:source". */
typedef struct AuthSigningKey {
        char *domain;                   /* lower case */
        char *selector;
        DkimKeyType type;
        char *source;                   /* absolute path, or a credential name */
        char *origin;                   /* "file:line" of the Key= line */
        EVP_PKEY *pkey;                 /* loaded by auth_config_prepare() */
} AuthSigningKey;

typedef struct AuthConfig {
        /* [Resolver] */
        char **servers;                 /* Servers=, "ADDRESS:PORT" words; NULL: not set */
        usec_t resolver_timeout;        /* TimeoutSec=: per try; 0 = the backend's default */

        /* [Authentication] */
        char *authserv_id;              /* AuthservId= (default: the host name) */
        bool dkim_allow_partial_body;   /* DkimAllowPartialBody= */
        bool dmarc_tree_walk;           /* DmarcTreeWalk= */
        char **trusted_arc_sealers;     /* TrustedArcSealers=, lower case, no final dot */

        /* [Signing] */
        char **key_lines;               /* Key=, as written; parsed into keys */
        char **key_origins;             /* "file:line" of each Key= line, for messages */
        AuthSigningKey *keys;
        size_t n_keys;
        char *arc_key;                  /* ArcKey= "domain:selector"; NULL: the first key */

        /* [Service] */
        usec_t idle_timeout;            /* IdleTimeoutSec= */
        usec_t check_timeout;           /* CheckTimeoutSec= */
        unsigned max_pending;           /* MaxPendingChecks= */
        uint64_t max_message_size;      /* MaxMessageSize= */
} AuthConfig;

/* A configuration with every default set. */
int auth_config_new(AuthConfig **ret);
AuthConfig* auth_config_free(AuthConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AuthConfig*, auth_config_free);

extern const ConfigTableItem auth_config_table[];
extern const size_t auth_config_table_size;

/* Parse path and its drop-ins, or text (tests). */
int auth_config_parse_file(AuthConfig *c, const char *path, ConfigError *error);
int auth_config_parse_text(AuthConfig *c, const char *filename, const char *text, ConfigError *error);

/* Fill in defaults (AuthservId=), parse the Key= lines and check ArcKey=; with load_keys
 * also read the private keys (files, or $CREDENTIALS_DIRECTORY). Errors in *error.
 *
 * A later Key= line for the same domain and the same algorithm replaces the earlier one
 * in its place (logged at info level), so that a drop-in can switch a domain's RSA or
 * Ed25519 selector; keys of different algorithms sign side by side. One selector of a
 * domain named by two lines of different algorithms is an error. */
int auth_config_prepare(AuthConfig *c, const char *source, bool load_keys, ConfigError *error);

/* The stub resolver servers of Servers= (or the default), in *ret (n in *ret_n). */
int auth_config_servers(const AuthConfig *c, DnsServerConfig **ret, size_t *ret_n);

/* Signing keys for a domain (case-insensitive), in configuration order. */
size_t auth_config_keys_for_domain(const AuthConfig *c, const char *domain,
                                   const AuthSigningKey **ret, size_t n_max);
/* The key ArcKey= names, else the first; NULL when there is none. */
const AuthSigningKey* auth_config_arc_key(const AuthConfig *c);
