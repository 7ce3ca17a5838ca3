/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "bus-util.h"
#include "config.h"
#include "log.h"
#include "proxyd-bus.h"
#include "proxyd-manager.h"
#include "proxyd-spam.h"
#include "string-util.h"

#define PROXY_BUS_NAME BUS_PREFIX ".Proxy1"
#define PROXY_BUS_PATH BUS_PATH_PREFIX "/Proxy1"
#define PROXY_BUS_INTERFACE PROXY_BUS_NAME ".Manager"
/* ListSessions and Reload are for root and this group (the bus policy says the same). */
#define MAILSEC_ADMIN_GROUP "mailsec"
#define PROXY_ERROR_RELOAD_FAILED PROXY_BUS_NAME ".Error.ReloadFailed"

/* Every error a caller is expected to act on, with the errno sd-bus gives a caller
 * that registered the same map (documented in the interface XML). */
static const sd_bus_error_map proxy_error_map[] = {
        SD_BUS_ERROR_MAP(PROXY_ERROR_RELOAD_FAILED, EINVAL),
        SD_BUS_ERROR_MAP_END
};

static int property_get_sessions_active(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply, void *userdata,
                                        sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) m->n_sessions);
}

static int method_list_sessions(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = bus_check_sender_admin(message, MAILSEC_ADMIN_GROUP, error);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(tssssut)");
        if (r < 0)
                return r;
        for (Session *s = m->sessions; s; s = s->sessions_next) {
                r = sd_bus_message_append(reply, "(tssssut)",
                                          s->id, strempty(s->client), strempty(s->helo),
                                          session_state_to_string(s->state), strempty(s->tls),
                                          s->started, (uint32_t) s->messages);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        ConfigError e = CONFIG_ERROR_NULL;
        Manager *m = userdata;
        int r;

        r = bus_check_sender_admin(message, MAILSEC_ADMIN_GROUP, error);
        if (r < 0)
                return r;

        r = manager_reload(m, &e);
        if (r < 0) {
                if (e.message)
                        r = sd_bus_error_setf(error, PROXY_ERROR_RELOAD_FAILED, "%s:%u: %s",
                                              strna(e.filename), e.line, e.message);
                else
                        r = sd_bus_error_setf(error, PROXY_ERROR_RELOAD_FAILED, "Reload failed: %s",
                                              strerror(-r));
                config_error_done(&e);
                return r;
        }
        return sd_bus_reply_method_return(message, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PROJECT_VERSION);
}

#define STAT(name, field)                                                               \
        SD_BUS_PROPERTY(name, "t", NULL, offsetof(Manager, stats) + offsetof(ProxyStats, field), \
                        0)

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("ListSessions",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(tssssut)", sessions),
                                method_list_sessions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload",
                                SD_BUS_NO_ARGS,
                                SD_BUS_NO_RESULT,
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SessionsActive", "u", property_get_sessions_active, 0,
                        0),
        STAT("SessionsTotal", sessions_total),
        STAT("SessionsRefused", sessions_refused),
        STAT("TlsSessions", tls_sessions),
        STAT("MessagesRelayed", messages_relayed),
        STAT("MessagesRejected", messages_rejected),
        STAT("MessagesTempFailed", messages_tempfailed),
        STAT("MessagesRejectedAsSpam", messages_rejected_as_spam),
        STAT("RecipientsRelayed", recipients_relayed),
        STAT("BytesRelayed", bytes_relayed),
        STAT("BackendFailures", backend_failures),
        STAT("ProtocolErrors", protocol_errors),
        SD_BUS_VTABLE_END,
};

int manager_connect_bus(Manager *m) {
        int r;

        r = bus_service_connect(m->event, "mailsec-proxyd", proxy_error_map, PROXY_BUS_PATH, PROXY_BUS_INTERFACE,
                                manager_vtable, m, &m->bus);
        if (r < 0)
                return r;

        r = bus_request_name_async_or_exit(m->bus, PROXY_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Cannot request bus name %s: %m", PROXY_BUS_NAME);
        return 0;
}
