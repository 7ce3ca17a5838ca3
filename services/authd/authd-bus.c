/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "authd-bus.h"
#include "authd-check.h"
#include "authd-manager.h"
#include "bus-util.h"
#include "config.h"
#include "log.h"
#include "string-util.h"

#define AUTH_BUS_PATH BUS_PATH_PREFIX "/Auth1"
#define AUTH_BUS_INTERFACE AUTH_BUS_NAME ".Manager"
/* No flag is defined yet: every bit is refused. */
#define AUTH_FLAGS_KNOWN UINT64_C(0)
/* Longest string argument accepted (addresses, HELO names, domains, A-R payloads). */
#define AUTH_ARG_MAX 4096U

static const sd_bus_error_map auth_error_map[] = {
        SD_BUS_ERROR_MAP(AUTH_ERROR_BAD_MESSAGE, EBADMSG),
        SD_BUS_ERROR_MAP(AUTH_ERROR_NO_KEY, ENOKEY),
        SD_BUS_ERROR_MAP(AUTH_ERROR_BUSY, EBUSY),
        SD_BUS_ERROR_MAP_END
};

/* root, mailsec-proxy (when it exists), and the group mailsec. */
static int check_sender(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error first = SD_BUS_ERROR_NULL;

        if (bus_check_sender_uid(message, m->allowed_uids, m->n_allowed_uids, &first) >= 0)
                return 0;
        return bus_check_sender_admin(message, AUTHD_ADMIN_GROUP, error);
}

static int check_flags(uint64_t flags, sd_bus_error *error) {
        if (flags & ~AUTH_FLAGS_KNOWN)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown flags: 0x%" PRIx64, flags & ~AUTH_FLAGS_KNOWN);
        return 0;
}

static int check_string(const char *what, const char *s, sd_bus_error *error) {
        if (strlen(s) > AUTH_ARG_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s is too long.", what);
        return 0;
}

static int method_check_spf(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        const char *client_ip, *helo, *mail_from;
        Manager *m = userdata;
        SpfRequest req = {};
        uint64_t flags;
        int r;

        r = sd_bus_message_read(message, "ssst", &client_ip, &helo, &mail_from, &flags);
        if (r < 0)
                return r;
        r = check_flags(flags, error);
        if (r < 0)
                return r;
        if (check_string("helo", helo, error) < 0 || check_string("mail_from", mail_from, error) < 0)
                return -EINVAL;
        if (isempty(helo))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "helo must not be empty.");
        if (auth_parse_ip(client_ip, &req) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid client_ip: %s", client_ip);

        r = check_sender(m, message, error);
        if (r < 0)
                return r;

        req.helo = helo;
        req.mail_from = mail_from;
        return auth_check_spf_start(m, message, &req, error);
}

static int read_envelope(sd_bus_message *message, AuthEnvelope *env, sd_bus_error *error) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(message, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                const char **field = NULL, *value;

                r = sd_bus_message_read(message, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "client_ip"))
                        field = &env->client_ip;
                else if (streq(key, "helo"))
                        field = &env->helo;
                else if (streq(key, "mail_from"))
                        field = &env->mail_from;
                else if (streq(key, "spf_result"))
                        field = &env->spf_result;
                else if (streq(key, "session"))
                        field = &env->session;
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown envelope key: %s", key);

                r = sd_bus_message_read(message, "v", "s", &value);
                if (r == -ENXIO || r == -EINVAL)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Envelope key %s must be a string.", key);
                if (r < 0)
                        return r;
                r = check_string(key, value, error);
                if (r < 0)
                        return r;
                *field = value;

                r = sd_bus_message_exit_container(message);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(message);
        if (r < 0)
                return r;

        if (env->spf_result && spf_result_from_string(env->spf_result) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid spf_result: %s", env->spf_result);
        if (env->client_ip) {
                SpfRequest req = {};

                if (auth_parse_ip(env->client_ip, &req) < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid client_ip: %s",
                                                 env->client_ip);
        }
        if (env->session && strspn(env->session, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
                            != strlen(env->session))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid session identifier.");
        return 0;
}

static int method_verify_message(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        AuthEnvelope env = {};
        Manager *m = userdata;
        uint64_t flags;
        int fd, r;

        r = sd_bus_message_read(message, "h", &fd);
        if (r < 0)
                return r;
        r = read_envelope(message, &env, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "t", &flags);
        if (r < 0)
                return r;
        r = check_flags(flags, error);
        if (r < 0)
                return r;

        r = check_sender(m, message, error);
        if (r < 0)
                return r;

        return auth_check_verify_start(m, message, fd, &env, error);
}

static int method_sign_message(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *domain;
        uint64_t flags;
        int fd, r;

        r = sd_bus_message_read(message, "hst", &fd, &domain, &flags);
        if (r < 0)
                return r;
        r = check_flags(flags, error);
        if (r < 0)
                return r;
        if (isempty(domain) || strlen(domain) > 253)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid domain.");

        r = check_sender(m, message, error);
        if (r < 0)
                return r;

        return auth_sign_message(m, message, fd, domain, error);
}

static int method_seal_arc(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *ar;
        uint64_t flags;
        int fd, r;

        r = sd_bus_message_read(message, "hst", &fd, &ar, &flags);
        if (r < 0)
                return r;
        r = check_flags(flags, error);
        if (r < 0)
                return r;
        r = check_string("authentication_results", ar, error);
        if (r < 0)
                return r;
        if (isempty(ar))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "authentication_results must not be empty.");

        r = check_sender(m, message, error);
        if (r < 0)
                return r;

        return auth_check_seal_start(m, message, fd, ar, error);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PROJECT_VERSION);
}

#define STAT(name, field) \
        SD_BUS_PROPERTY(name, "t", NULL, offsetof(Manager, stats) + offsetof(AuthStats, field), 0)

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CheckSpf",
                                SD_BUS_ARGS("s", client_ip, "s", helo, "s", mail_from, "t", flags),
                                SD_BUS_RESULT("s", result, "s", explanation, "s", received_spf),
                                method_check_spf, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("VerifyMessage",
                                SD_BUS_ARGS("h", message, "a{sv}", envelope, "t", flags),
                                SD_BUS_RESULT("a(ssss)", dkim, "s", dmarc_result, "s", dmarc_policy,
                                              "s", dmarc_disposition, "s", arc_result,
                                              "s", authentication_results),
                                method_verify_message, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SignMessage",
                                SD_BUS_ARGS("h", message, "s", domain, "t", flags),
                                SD_BUS_RESULT("s", header),
                                method_sign_message, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SealArc",
                                SD_BUS_ARGS("h", message, "s", authentication_results, "t", flags),
                                SD_BUS_RESULT("s", headers),
                                method_seal_arc, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        STAT("ChecksTotal", checks_total),
        STAT("SpfChecks", spf_checks),
        STAT("DkimVerified", dkim_verified),
        STAT("DkimSigned", dkim_signed),
        STAT("DmarcEvaluated", dmarc_evaluated),
        SD_BUS_VTABLE_END,
};

int manager_connect_bus(Manager *m) {
        return bus_service_connect(m->event, "mailsec-authd", auth_error_map, AUTH_BUS_PATH, AUTH_BUS_INTERFACE,
                                   manager_vtable, m, &m->bus);
}

int manager_request_name(Manager *m) {
        int r;

        r = bus_request_name_async_or_exit(m->bus, AUTH_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Cannot request bus name %s: %m", AUTH_BUS_NAME);
        return 0;
}
