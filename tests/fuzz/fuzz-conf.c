/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-conf: the configuration parser with drop-ins. The input is split at lines that
 * read exactly "--- drop-in ---" into a main file and drop-ins, which are applied to one
 * configuration struct in order, as config_parse_with_dropins() does with files. The
 * table has one key per typed parser, so every parser sees fuzzed values. */

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "conf-parser.h"
#include "fuzz.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

/* Well above any real configuration of ours, far below the parser's own 4 MiB cap: big
 * inputs only make the fuzzer slow. */
#define FUZZ_CONF_INPUT_MAX ((size_t) 256U * 1024U)

#define DROPIN_SEPARATOR "\n--- drop-in ---\n"

typedef enum FuzzMode {
        FUZZ_MODE_XCLIENT,
        FUZZ_MODE_PROXY_V2,
        FUZZ_MODE_NONE,
        _FUZZ_MODE_MAX,
        _FUZZ_MODE_INVALID = -EINVAL,
} FuzzMode;

static FuzzMode fuzz_mode_from_string(const char *s) {
        if (streq(s, "xclient"))
                return FUZZ_MODE_XCLIENT;
        if (streq(s, "proxy-v2"))
                return FUZZ_MODE_PROXY_V2;
        if (streq(s, "none"))
                return FUZZ_MODE_NONE;
        return _FUZZ_MODE_INVALID;
}

static DEFINE_CONFIG_PARSE_ENUM(config_parse_fuzz_mode, fuzz_mode_from_string, FuzzMode);

typedef struct FuzzConfig {
        bool flag;
        unsigned count;
        uint64_t size;
        usec_t timeout;
        char *name;
        char *abs_path;
        char *rel_path;
        char **list;
        SocketAddress address;
        FuzzMode mode;
} FuzzConfig;

static const ConfigTableItem table[] = {
        { "Proxy",    "Hostname",         config_parse_string,         0, offsetof(FuzzConfig, name)     },
        { "Proxy",    "Backend",          config_parse_socket_address, 0, offsetof(FuzzConfig, address)  },
        { "Proxy",    "BackendClientInfo", config_parse_fuzz_mode,     0, offsetof(FuzzConfig, mode)     },
        { "Proxy",    "BackendCAFile",    config_parse_path,           0, offsetof(FuzzConfig, abs_path) },
        { "TLS",      "KeyFile",          config_parse_path,           1, offsetof(FuzzConfig, rel_path) },
        { "TLS",      "STARTTLS",         config_parse_bool,           0, offsetof(FuzzConfig, flag)     },
        { "Limits",   "MaxMessageSize",   config_parse_size,           0, offsetof(FuzzConfig, size)     },
        { "Limits",   "MaxRecipients",    config_parse_unsigned,       0, offsetof(FuzzConfig, count)    },
        { "Timeouts", "ServerTimeoutSec", config_parse_sec,            0, offsetof(FuzzConfig, timeout)  },
        { "Checks",   "Services",         config_parse_strv,           0, offsetof(FuzzConfig, list)     },
};

static void fuzz_config_done(FuzzConfig *c) {
        free(c->name);
        free(c->abs_path);
        free(c->rel_path);
        strv_free(c->list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzConfig c = { .mode = FUZZ_MODE_XCLIENT };
        const char *p = (const char*) data, *end = (const char*) data + size;
        unsigned n = 0;

        if (size > FUZZ_CONF_INPUT_MAX)
                return 0;

        /* Unknown keys are warnings; the fuzzer has no use for them on stderr. */
        if (!getenv("MAILSEC_FUZZ_LOG"))
                log_set_target(LOG_TARGET_NULL);

        while (p <= end) {
                ConfigError e = CONFIG_ERROR_NULL;
                const char *sep = memmem(p, (size_t) (end - p), DROPIN_SEPARATOR, STRLEN(DROPIN_SEPARATOR));
                size_t l = sep ? (size_t) (sep - p) : (size_t) (end - p);
                char filename[32];
                int r;

                if (n == 0)
                        snprintf(filename, sizeof(filename), "fuzz.conf");
                else
                        snprintf(filename, sizeof(filename), "fuzz.conf.d/%02u.conf", n);
                r = config_parse_text(filename, p, l, table, ELEMENTSOF(table), &c, &e);
                /* A refused value always comes with a location and a message. */
                if (r < 0 && r != -ENOMEM && (!e.filename || !e.message))
                        abort();
                if (r >= 0 && (e.filename || e.message))
                        abort();
                config_error_done(&e);
                /* As in config_parse_with_dropins(): the first refused value stops start-up. */
                if (r < 0)
                        break;

                if (!sep)
                        break;
                p = sep + STRLEN(DROPIN_SEPARATOR);
                n++;
        }

        /* Whatever was parsed must format back. */
        if (c.address.sockaddr.ss_family != AF_UNSPEC) {
                _cleanup_free_ char *s = NULL;
                SocketAddress again;

                if (socket_address_to_string(&c.address, &s) < 0)
                        abort();
                if (socket_address_parse(s, &again) < 0)
                        abort();
        }
        if (c.timeout != 0) {
                char buf[FORMAT_TIMESPAN_MAX];
                usec_t back;

                if (parse_sec(format_timespan(buf, sizeof(buf), c.timeout), &back) < 0 || back != c.timeout)
                        abort();
        }

        fuzz_config_done(&c);
        return 0;
}
