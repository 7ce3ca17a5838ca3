/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "authd-conf.h"
#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "string-util.h"

static void* mfree(void *p) {
        free(p);
        return NULL;
}

/* Servers=: addresses with ports, appended; empty resets to "none given" (resolve1 when
 * systemd-resolved runs, see auth_config_servers()). */
static int config_parse_servers(const char *filename, unsigned line, const char *section, const char *lvalue,
                                int ltype, const char *rvalue, void *data, void *userdata) {
        AuthConfig *c = userdata;
        _cleanup_strv_free_ char **words = NULL;
        SocketAddress a;
        int r;

        r = config_parse_strv(filename, line, section, lvalue, ltype, rvalue, &words, userdata);
        if (r < 0)
                return r;
        if (!words) {
                c->servers = strv_free(c->servers);
                return 0;
        }
        STRV_FOREACH(w, words) {
                if (socket_address_parse(*w, &a) < 0 ||
                    (a.sockaddr.ss_family != AF_INET && a.sockaddr.ss_family != AF_INET6)) {
                        config_parser_set_error(userdata, "Invalid DNS server for %s= (ADDRESS:PORT expected): %s",
                                                lvalue, *w);
                        return -EINVAL;
                }
                if (strv_length(c->servers) >= DNS_STUB_SERVERS_MAX) {
                        config_parser_set_error(userdata, "Too many servers in %s= (at most %u)",
                                                lvalue, DNS_STUB_SERVERS_MAX);
                        return -E2BIG;
                }
                r = strv_extend(&c->servers, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* AuthservId=: a token (RFC 8601 §2.2, normally the host's domain name). */
static int config_parse_authserv_id(const char *filename, unsigned line, const char *section, const char *lvalue,
                                    int ltype, const char *rvalue, void *data, void *userdata) {
        char **p = data;

        if (isempty(rvalue)) {
                *p = mfree(*p);
                return 0;
        }
        if (strlen(rvalue) > 253 ||
            strspn(rvalue, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != strlen(rvalue)) {
                config_parser_set_error(userdata, "Invalid %s= (a domain name expected): %s", lvalue, rvalue);
                return -EINVAL;
        }
        return free_and_strdup(p, rvalue) < 0 ? -ENOMEM : 0;
}

/* Key=: one key a line, kept as written with its file and line, and parsed by
 * auth_config_prepare() (which applies the replacement rule: the keys of the main file and
 * of every drop-in must be known first). An empty value forgets the lines before it. */
static int config_parse_key_line(const char *filename, unsigned line, const char *section, const char *lvalue,
                                 int ltype, const char *rvalue, void *data, void *userdata) {
        AuthConfig *c = userdata;
        _cleanup_free_ char *origin = NULL;
        int r;

        if (isempty(rvalue)) {
                c->key_lines = strv_free(c->key_lines);
                c->key_origins = strv_free(c->key_origins);
                return 0;
        }
        if (strlen(rvalue) >= PATH_MAX) {
                config_parser_set_error(userdata, "%s= too long", lvalue);
                return -ENAMETOOLONG;
        }
        r = asprintf_safe(&origin, "%s:%u", strna(filename), line);
        if (r < 0)
                return r;
        r = strv_extend(&c->key_lines, rvalue);
        if (r < 0)
                return r;
        r = strv_extend(&c->key_origins, origin);
        if (r < 0) {
                /* keep both lists the same length */
                size_t n = strv_length(c->key_lines);

                free(c->key_lines[n - 1]);
                c->key_lines[n - 1] = NULL;
                return r;
        }
        return 0;
}

static bool domain_valid(const char *s);

/* TrustedArcSealers=: domains, separated by spaces, appended; empty forgets the list. */
static int config_parse_arc_sealers(const char *filename, unsigned line, const char *section, const char *lvalue,
                                    int ltype, const char *rvalue, void *data, void *userdata) {
        char ***l = data;
        _cleanup_strv_free_ char **words = NULL;
        int r;

        r = config_parse_strv(filename, line, section, lvalue, ltype, rvalue, &words, userdata);
        if (r < 0)
                return r;
        if (!words) {
                *l = strv_free(*l);
                return 0;
        }
        STRV_FOREACH(w, words) {
                size_t n = strlen(*w);

                /* one final dot is the same domain */
                if (n > 1 && (*w)[n - 1] == '.')
                        (*w)[--n] = 0;
                /* a domain of two labels at least, whose last label is not a number (no
                 * address literals) */
                if (!domain_valid(*w) || !strchr(*w, '.') ||
                    strspn(strrchr(*w, '.') + 1, "0123456789") == strlen(strrchr(*w, '.') + 1)) {
                        config_parser_set_error(userdata, "Invalid domain in %s=: %s", lvalue, *w);
                        return -EINVAL;
                }
                for (char *q = *w; *q; q++)
                        *q = (char) tolower((unsigned char) *q);
                if (strv_contains(*l, *w))
                        continue;
                if (strv_length(*l) >= AUTHD_TRUSTED_ARC_SEALERS_MAX) {
                        config_parser_set_error(userdata, "Too many domains in %s= (at most %u)",
                                                lvalue, AUTHD_TRUSTED_ARC_SEALERS_MAX);
                        return -E2BIG;
                }
                r = strv_extend(l, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}


const ConfigTableItem auth_config_table[] = {
        { "Resolver",       "Servers",              config_parse_servers,          0, 0 },
        { "Resolver",       "TimeoutSec",           config_parse_sec,              0, offsetof(AuthConfig, resolver_timeout) },
        { "Authentication", "AuthservId",           config_parse_authserv_id,      0, offsetof(AuthConfig, authserv_id) },
        { "Authentication", "DkimAllowPartialBody", config_parse_bool,             0, offsetof(AuthConfig, dkim_allow_partial_body) },
        { "Authentication", "DmarcTreeWalk",        config_parse_bool,             0, offsetof(AuthConfig, dmarc_tree_walk) },
        { "Authentication", "TrustedArcSealers",    config_parse_arc_sealers,      0, offsetof(AuthConfig, trusted_arc_sealers) },
        { "Signing",        "Key",                  config_parse_key_line,         0, offsetof(AuthConfig, key_lines) },
        { "Signing",        "ArcKey",               config_parse_string,           0, offsetof(AuthConfig, arc_key) },
        { "Service",        "IdleTimeoutSec",       config_parse_sec,              0, offsetof(AuthConfig, idle_timeout) },
        { "Service",        "CheckTimeoutSec",      config_parse_timeout,          0, offsetof(AuthConfig, check_timeout) },
        { "Service",        "MaxPendingChecks",     config_parse_unsigned_min,     1, offsetof(AuthConfig, max_pending) },
        { "Service",        "MaxMessageSize",       config_parse_size,             0, offsetof(AuthConfig, max_message_size) },
};
const size_t auth_config_table_size = ELEMENTSOF(auth_config_table);

int auth_config_new(AuthConfig **ret) {
        AuthConfig *c;

        c = calloc(1, sizeof(AuthConfig));
        if (!c)
                return -ENOMEM;
        c->idle_timeout = AUTHD_DEFAULT_IDLE_TIMEOUT;
        c->check_timeout = AUTHD_DEFAULT_CHECK_TIMEOUT;
        c->max_pending = AUTHD_DEFAULT_MAX_PENDING;
        c->max_message_size = AUTHD_DEFAULT_MAX_MESSAGE_SIZE;
        *ret = c;
        return 0;
}

static void auth_config_free_keys(AuthConfig *c) {
        for (size_t i = 0; i < c->n_keys; i++) {
                free(c->keys[i].domain);
                free(c->keys[i].selector);
                free(c->keys[i].source);
                free(c->keys[i].origin);
                EVP_PKEY_free(c->keys[i].pkey);
        }
        c->keys = mfree(c->keys);
        c->n_keys = 0;
}

AuthConfig* auth_config_free(AuthConfig *c) {
        if (!c)
                return NULL;
        strv_free(c->servers);
        free(c->authserv_id);
        strv_free(c->trusted_arc_sealers);
        strv_free(c->key_lines);
        strv_free(c->key_origins);
        auth_config_free_keys(c);
        free(c->arc_key);
        free(c);
        return NULL;
}

int auth_config_parse_file(AuthConfig *c, const char *path, ConfigError *error) {
        return config_parse_with_dropins(path, auth_config_table, auth_config_table_size, c, error);
}

int auth_config_parse_text(AuthConfig *c, const char *filename, const char *text, ConfigError *error) {
        return config_parse_text(filename, text, strlen(text), auth_config_table, auth_config_table_size,
                                 c, error);
}

static bool domain_valid(const char *s) {
        size_t n = strlen(s);

        return n > 0 && n <= 253 && s[0] != '.' && s[0] != '-' && s[n - 1] != '.' && !strstr(s, "..") &&
                strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == n;
}

static int key_line_parse(const char *line, AuthSigningKey *ret) {
        _cleanup_free_ char *copy = NULL;
        char *domain, *selector, *type, *source, *p;

        copy = strdup(line);
        if (!copy)
                return -ENOMEM;
        domain = copy;
        p = strchr(domain, ':');
        if (!p)
                return -EINVAL;
        *p = 0;
        selector = p + 1;
        p = strchr(selector, ':');
        if (!p)
                return -EINVAL;
        *p = 0;
        type = p + 1;
        p = strchr(type, ':');
        if (!p)
                return -EINVAL;
        *p = 0;
        source = p + 1;

        if (!domain_valid(domain) || !domain_valid(selector) || isempty(source))
                return -EINVAL;
        if (source[0] != '/' && (strchr(source, '/') || streq(source, ".") || streq(source, "..")))
                return -EINVAL;
        if (streq(type, "rsa"))
                ret->type = DKIM_KEY_RSA;
        else if (streq(type, "ed25519"))
                ret->type = DKIM_KEY_ED25519;
        else
                return -EINVAL;

        for (char *q = domain; *q; q++)
                *q = (char) tolower((unsigned char) *q);
        ret->domain = strdup(domain);
        ret->selector = strdup(selector);
        ret->source = strdup(source);
        ret->pkey = NULL;
        if (!ret->domain || !ret->selector || !ret->source) {
                free(ret->domain);
                free(ret->selector);
                free(ret->source);
                return -ENOMEM;
        }
        return 0;
}

static int key_load(AuthSigningKey *k, ConfigError *error, const char *source) {
        _cleanup_free_ char *path = NULL;
        char *data = NULL;
        size_t size = 0;
        BIO *bio;
        int r;

        if (k->source[0] == '/')
                path = strdup(k->source);
        else {
                const char *d = getenv("CREDENTIALS_DIRECTORY");

                if (isempty(d))
                        return config_error_set(error, -ENOENT, source, 0,
                                                "Key %s for %s:%s is a credential name, but $CREDENTIALS_DIRECTORY is not set",
                                                k->source, k->domain, k->selector);
                r = asprintf_safe(&path, "%s/%s", d, k->source);
                if (r < 0)
                        return r;
        }
        if (!path)
                return -ENOMEM;

        r = read_full_file(path, AUTHD_KEY_FILE_MAX, &data, &size);
        if (r < 0)
                return config_error_set(error, r, source, 0, "Cannot read the key %s for %s:%s: %s",
                                        path, k->domain, k->selector, strerror(-r));

        bio = BIO_new_mem_buf(data, (int) size);
        if (bio) {
                k->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
                BIO_free(bio);
        }
        erase_and_free(data, size);
        if (!k->pkey)
                return config_error_set(error, dkim_openssl_error(-EBADMSG, "PEM_read_bio_PrivateKey"), source, 0,
                                        "%s is not a PEM private key (for %s:%s)", path, k->domain, k->selector);

        if ((k->type == DKIM_KEY_RSA && EVP_PKEY_base_id(k->pkey) != EVP_PKEY_RSA) ||
            (k->type == DKIM_KEY_ED25519 && EVP_PKEY_base_id(k->pkey) != EVP_PKEY_ED25519))
                return config_error_set(error, -EINVAL, source, 0, "%s is not a %s key (for %s:%s)",
                                        path, dkim_key_type_to_string(k->type), k->domain, k->selector);
        if (k->type == DKIM_KEY_RSA && EVP_PKEY_get_bits(k->pkey) < (int) DKIM_KEY_RSA_MIN_BITS)
                return config_error_set(error, -EINVAL, source, 0, "%s: RSA keys need at least %u bits (for %s:%s)",
                                        path, DKIM_KEY_RSA_MIN_BITS, k->domain, k->selector);
        return 0;
}

static void key_done(AuthSigningKey *k) {
        free(k->domain);
        free(k->selector);
        free(k->source);
        free(k->origin);
        EVP_PKEY_free(k->pkey);
        *k = (AuthSigningKey) {};
}

/* "file:line" back into its parts, for ConfigError. */
static unsigned origin_split(const char *origin, char **ret_file) {
        const char *colon = origin ? strrchr(origin, ':') : NULL;
        unsigned line = 0;

        *ret_file = NULL;
        if (!colon)
                return 0;
        for (const char *p = colon + 1; *p >= '0' && *p <= '9' && line < 10000000U; p++)
                line = line * 10 + (unsigned) (*p - '0');
        *ret_file = strndup(origin, (size_t) (colon - origin));
        if (!*ret_file)
                return 0;
        return line;
}

static int key_line_error(ConfigError *error, int r, const char *origin, const char *source,
                          const char *format, ...) _printf_(5, 6);
static int key_line_error(ConfigError *error, int r, const char *origin, const char *source,
                          const char *format, ...) {
        _cleanup_free_ char *file = NULL, *message = NULL;
        unsigned line;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&message, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        line = origin_split(origin, &file);
        return config_error_set(error, r, file ?: source, line, "%s", message);
}

int auth_config_prepare(AuthConfig *c, const char *source, bool load_keys, ConfigError *error) {
        _cleanup_strv_free_ char **replaced = NULL;     /* "domain:selector" of replaced keys */
        size_t n;
        int r;

        if (!c->authserv_id) {
                char buf[HOST_NAME_MAX + 2] = {};

                if (gethostname(buf, sizeof(buf) - 1) < 0 || isempty(buf))
                        return config_error_set(error, -EINVAL, source, 0,
                                                "Cannot determine the host name; set AuthservId=");
                c->authserv_id = strdup(buf);
                if (!c->authserv_id)
                        return -ENOMEM;
        }

        auth_config_free_keys(c);
        n = strv_length(c->key_lines);
        if (n > 0) {
                c->keys = calloc(n, sizeof(AuthSigningKey));
                if (!c->keys)
                        return -ENOMEM;
        }
        for (size_t j = 0; j < n; j++) {
                const char *origin = j < strv_length(c->key_origins) ? c->key_origins[j] : NULL;
                AuthSigningKey k = {};
                size_t slot = c->n_keys;

                r = key_line_parse(c->key_lines[j], &k);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return key_line_error(error, r, origin, source,
                                              "Invalid Key= (DOMAIN:SELECTOR:rsa|ed25519:PATH-OR-CREDENTIAL expected): %s",
                                              c->key_lines[j]);
                k.origin = strdup(origin ?: strna(source));
                if (!k.origin) {
                        key_done(&k);
                        return -ENOMEM;
                }

                /* the replacement rule: same domain, same algorithm */
                for (size_t i = 0; i < c->n_keys; i++)
                        if (streq(c->keys[i].domain, k.domain) && c->keys[i].type == k.type) {
                                slot = i;
                                break;
                        }
                for (size_t i = 0; i < c->n_keys; i++)
                        if (i != slot && streq(c->keys[i].domain, k.domain) &&
                            streq(c->keys[i].selector, k.selector)) {
                                _cleanup_free_ char *first = strdup(c->keys[i].origin);

                                r = key_line_error(error, -EEXIST, k.origin, source,
                                                   "Key= %s:%s is configured twice (first at %s)",
                                                   k.domain, k.selector, strna(first));
                                key_done(&k);
                                return r;
                        }

                if (slot < c->n_keys) {
                        _cleanup_free_ char *name = NULL;
                        AuthSigningKey *old = &c->keys[slot];

                        log_info("Key= at %s (%s:%s, %s) replaces the %s key of %s at %s (selector %s).",
                                 k.origin, k.domain, k.selector, dkim_key_type_to_string(k.type),
                                 dkim_key_type_to_string(old->type), old->domain, old->origin, old->selector);
                        if (!streq(old->selector, k.selector)) {
                                if (asprintf_safe(&name, "%s:%s", old->domain, old->selector) < 0 ||
                                    strv_extend(&replaced, name) < 0) {
                                        key_done(&k);
                                        return -ENOMEM;
                                }
                        }
                        key_done(old);
                        *old = k;
                } else
                        c->keys[c->n_keys++] = k;
        }

        /* only the keys that are left are read: a replaced key need not exist any more */
        for (size_t i = 0; load_keys && i < c->n_keys; i++) {
                r = key_load(&c->keys[i], error, source);
                if (r < 0)
                        return r;
        }

        if (c->arc_key) {
                bool found = false;

                for (size_t i = 0; i < c->n_keys && !found; i++) {
                        _cleanup_free_ char *name = NULL;

                        if (asprintf_safe(&name, "%s:%s", c->keys[i].domain, c->keys[i].selector) < 0)
                                return -ENOMEM;
                        found = strcaseeq(name, c->arc_key);
                }
                if (!found && strv_contains(replaced, c->arc_key))
                        return config_error_set(error, -ENOENT, source, 0,
                                                "ArcKey=%s names a key that a later Key= line replaced", c->arc_key);
                if (!found)
                        return config_error_set(error, -ENOENT, source, 0,
                                                "ArcKey=%s names no Key= line", c->arc_key);
        }
        return 0;
}

int auth_config_servers(const AuthConfig *c, DnsServerConfig **ret, size_t *ret_n) {
        _cleanup_free_ DnsServerConfig *s = NULL;
        size_t n;
        int r;

        n = strv_length(c->servers);
        s = calloc(n > 0 ? n : 1, sizeof(DnsServerConfig));
        if (!s)
                return -ENOMEM;
        if (n == 0) {
                r = socket_address_parse(AUTHD_DEFAULT_SERVER, &s[0].address);
                if (r < 0)
                        return r;
                n = 1;
        } else
                for (size_t i = 0; i < n; i++) {
                        r = socket_address_parse(c->servers[i], &s[i].address);
                        if (r < 0)
                                return r;
                        s[i].trust = DNS_SERVER_TRUST_AUTO;
                }
        *ret = TAKE_PTR(s);
        *ret_n = n;
        return 0;
}

size_t auth_config_keys_for_domain(const AuthConfig *c, const char *domain,
                                   const AuthSigningKey **ret, size_t n_max) {
        size_t n = 0;
        size_t l = strlen(domain);

        /* a final dot is the same domain */
        if (l > 0 && domain[l - 1] == '.')
                l--;
        for (size_t i = 0; i < c->n_keys && n < n_max; i++)
                if (strlen(c->keys[i].domain) == l && strncasecmp(c->keys[i].domain, domain, l) == 0)
                        ret[n++] = &c->keys[i];
        return n;
}

const AuthSigningKey* auth_config_arc_key(const AuthConfig *c) {
        if (c->n_keys == 0)
                return NULL;
        if (!c->arc_key)
                return &c->keys[0];
        for (size_t i = 0; i < c->n_keys; i++) {
                size_t l = strlen(c->keys[i].domain);

                if (strncasecmp(c->arc_key, c->keys[i].domain, l) == 0 && c->arc_key[l] == ':' &&
                    streq(c->arc_key + l + 1, c->keys[i].selector))
                        return &c->keys[i];
        }
        return NULL;
}
