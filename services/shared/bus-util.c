/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "bus-util.h"
#include "cleanup.h"
#include "log.h"
#include "string-util.h"

int bus_open_system_with_description(const char *description, sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        if (!ret)
                return -EINVAL;

        r = sd_bus_open_system_with_description(&bus, description);
        if (r < 0)
                return r;

        r = sd_bus_set_exit_on_disconnect(bus, false);
        if (r < 0) {
                sd_bus_flush_close_unref(bus);
                return r;
        }

        *ret = bus;
        return 0;
}

int bus_call_async_timeout(sd_bus *bus, sd_bus_slot **ret_slot, sd_bus_message *m,
                           sd_bus_message_handler_t callback, void *userdata, usec_t timeout) {
        if (!bus || !m)
                return -EINVAL;

        /* sd-bus reads 0 as "the default" (25s); infinity is not what a caller with a
         * per-check timeout wants either, so both are passed through unchanged and
         * the configuration parser is where sane values are enforced. */
        return sd_bus_call_async(bus, ret_slot, m, callback, userdata, timeout);
}

int bus_check_sender_uid(sd_bus_message *m, const uid_t *allowed, size_t n_allowed, sd_bus_error *error) {
        sd_bus_creds *creds = NULL;
        uid_t euid;
        int r;

        if (!m)
                return -EINVAL;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;

        r = sd_bus_creds_get_euid(creds, &euid);
        sd_bus_creds_unref(creds);
        if (r < 0)
                return r;

        if (euid == 0)
                return 0;
        for (size_t i = 0; i < n_allowed; i++)
                if (allowed[i] == euid)
                        return 0;

        log_debug("Refusing call %s.%s from uid %u.",
                  strna(sd_bus_message_get_interface(m)), strna(sd_bus_message_get_member(m)),
                  (unsigned) euid);
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "Access denied for uid %u.", (unsigned) euid);
}

int bus_check_sender_admin(sd_bus_message *m, const char *group, sd_bus_error *error) {
        sd_bus_creds *creds = NULL;
        const gid_t *gids = NULL;
        struct group grbuf, *gr = NULL;
        char buf[4096];
        uid_t euid;
        gid_t egid, admin_gid;
        int r, n;

        if (!m)
                return -EINVAL;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID |
                                      SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;

        r = sd_bus_creds_get_euid(creds, &euid);
        if (r < 0)
                goto finish;
        if (euid == 0) {
                r = 0;
                goto finish;
        }

        /* A missing group means: root only. */
        if (group && getgrnam_r(group, &grbuf, buf, sizeof(buf), &gr) == 0 && gr) {
                admin_gid = gr->gr_gid;
                if (sd_bus_creds_get_egid(creds, &egid) >= 0 && egid == admin_gid) {
                        r = 0;
                        goto finish;
                }
                n = sd_bus_creds_get_supplementary_gids(creds, &gids);
                for (int i = 0; n > 0 && i < n; i++)
                        if (gids[i] == admin_gid) {
                                r = 0;
                                goto finish;
                        }
        }

        log_debug("Refusing call %s.%s from uid %u, not root nor in group %s.",
                  strna(sd_bus_message_get_interface(m)), strna(sd_bus_message_get_member(m)),
                  (unsigned) euid, strna(group));
        r = sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                              "Access denied: root or group %s only.", strna(group));
finish:
        sd_bus_creds_unref(creds);
        return r;
}

/* org.freedesktop.LogControl1 (see systemd's logcontrol-example.c) */

static int property_get_log_level(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *reply, void *userdata,
                                  sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_level_to_string(log_get_max_level()));
}

static int property_set_log_level(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *value, void *userdata,
                                  sd_bus_error *error) {
        const char *t;
        int r, level;

        r = sd_bus_message_read(value, "s", &t);
        if (r < 0)
                return r;

        level = log_level_from_string(t);
        if (level < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid log level '%s'", t);

        log_set_max_level(level);
        log_debug("Log level set to %s by a LogControl1 client.", log_level_to_string(level));
        return 0;
}

static int property_get_log_target(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_target_to_string(log_get_target()));
}

static int property_set_log_target(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *value, void *userdata,
                                   sd_bus_error *error) {
        LogTarget target;
        const char *t;
        int r;

        r = sd_bus_message_read(value, "s", &t);
        if (r < 0)
                return r;

        target = log_target_from_string(t);
        if ((int) target < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid log target '%s'", t);

        log_set_target(target);
        log_debug("Log target set to %s by a LogControl1 client.", log_target_to_string(target));
        return 0;
}

static int property_get_syslog_identifier(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", strempty(log_get_identifier()));
}

/* The writable properties carry no SD_BUS_VTABLE_UNPRIVILEGED: sd-bus then only lets
 * privileged callers (root, or the service's own uid) set them. */
static const sd_bus_vtable log_control_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_WRITABLE_PROPERTY("LogLevel", "s", property_get_log_level, property_set_log_level, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("LogTarget", "s", property_get_log_target, property_set_log_target, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("SyslogIdentifier", "s", property_get_syslog_identifier, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

int bus_log_control_api_register(sd_bus *bus) {
        if (!bus)
                return -EINVAL;

        return sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/LogControl1",
                                        "org.freedesktop.LogControl1", log_control_vtable, NULL);
}

static int on_request_name_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name = userdata;
        sd_event *e;
        uint32_t ret;
        int r;

        e = sd_bus_get_event(sd_bus_message_get_bus(m));

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *err = sd_bus_message_get_error(m);

                r = -sd_bus_error_get_errno(err);
                if (r == 0)
                        r = -EIO;
                log_debug("Failed to request bus name %s: %s", strna(name), strna(err ? err->message : NULL));
                goto fail;
        }

        r = sd_bus_message_read(m, "u", &ret);
        if (r < 0) {
                log_debug("Failed to parse RequestName reply for %s.", strna(name));
                goto fail;
        }

        switch (ret) {
        case 1: /* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER */
        case 4: /* DBUS_REQUEST_NAME_REPLY_ALREADY_OWNER */
                log_debug("Acquired bus name %s.", strna(name));
                return 1;
        case 3: /* DBUS_REQUEST_NAME_REPLY_EXISTS */
                r = -EEXIST;
                break;
        default:
                r = -EBUSY;
        }
        log_debug("Bus name %s is owned by another peer.", strna(name));

fail:
        if (e)
                (void) sd_event_exit(e, r);
        return 1;
}

int bus_service_connect(sd_event *event, const char *description, const sd_bus_error_map *errors,
                        const char *path, const char *interface, const sd_bus_vtable *vtable, void *userdata,
                        sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (errors) {
                r = sd_bus_error_add_map(errors);
                if (r < 0)
                        return log_error_errno(r, "Cannot register the bus error names: %m");
        }
        r = bus_open_system_with_description(description, &bus);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the system bus: %m");
        r = sd_bus_add_object_vtable(bus, NULL, path, interface, vtable, userdata);
        if (r < 0)
                return log_error_errno(r, "Cannot add the manager object: %m");
        r = bus_log_control_api_register(bus);
        if (r < 0)
                return log_error_errno(r, "Cannot add LogControl1: %m");
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Cannot attach the bus to the event loop: %m");
        *ret = TAKE_PTR(bus);
        return 0;
}

int bus_request_name_async_or_exit(sd_bus *bus, const char *name) {
        if (!bus || isempty(name))
                return -EINVAL;

        /* name must outlive the request; callers pass a string constant. */
        return sd_bus_request_name_async(bus, NULL, name, 0, on_request_name_reply, (void*) name);
}

/* The loop of a bus-activated service goes through three states: it serves; it has asked
 * the bus to release its name (after idle_usec of idleness, or on SIGTERM/SIGINT) and
 * still serves whatever reaches it; the name is gone, and it finishes the work in hand and
 * exits. A call sent to the name after the release queues for the next activation. */
typedef enum IdleLoopState {
        IDLE_LOOP_SERVING,
        IDLE_LOOP_RELEASING,
        IDLE_LOOP_DRAINING,
} IdleLoopState;

typedef struct IdleLoop {
        sd_event *event;
        sd_bus *bus;
        const char *name;
        IdleLoopState state;
        unsigned n_signals;
} IdleLoop;

static int on_name_released(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        IdleLoop *l = userdata;

        /* The bus broker answers ReleaseName only after it has delivered everything it had
         * queued for us, and those messages are ahead of this reply in our input queue:
         * every call sent to the name has been dispatched, and the checks it started are
         * the work that is left. */
        if (sd_bus_message_is_method_error(m, NULL))
                log_debug("Releasing bus name %s failed: %s", strna(l->name),
                          strna(sd_bus_message_get_error(m)->message));
        l->state = IDLE_LOOP_DRAINING;
        return 1;
}

static int idle_loop_release(IdleLoop *l) {
        int r;

        if (l->state != IDLE_LOOP_SERVING)
                return 0;

        /* Tell the service manager first, so that it queues new start requests instead of
         * thinking we are still there to serve them. */
        (void) sd_notify(false, "STOPPING=1");

        l->state = IDLE_LOOP_DRAINING;
        if (!l->bus || isempty(l->name))
                return 0;
        r = sd_bus_release_name_async(l->bus, NULL, l->name, on_name_released, l);
        if (r < 0) {
                log_debug("Failed to release bus name %s: %s", l->name, strerror(-r));
                return 0;
        }
        l->state = IDLE_LOOP_RELEASING;
        return 0;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        IdleLoop *l = userdata;

        /* The first SIGTERM or SIGINT stops taking new work and lets the work in hand end
         * (each piece of it has its own timeout); a second one exits at once. */
        if (++l->n_signals > 1) {
                log_info("Received %s again, exiting now.", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                return sd_event_exit(l->event, 0);
        }
        log_info("Received %s, finishing the work in hand.", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        return idle_loop_release(l);
}

int bus_event_loop_with_idle(sd_event *e, sd_bus *bus, const char *name, usec_t idle_usec,
                             bool (*check_idle)(void *userdata), void *userdata) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *sigterm = NULL, *sigint = NULL;
        IdleLoop l = { .event = e, .bus = bus, .name = name, .state = IDLE_LOOP_SERVING };
        sigset_t mask;
        int r, code;

        if (!e)
                return -EINVAL;

        if (sigemptyset(&mask) < 0 || sigaddset(&mask, SIGTERM) < 0 || sigaddset(&mask, SIGINT) < 0 ||
            sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        r = sd_event_add_signal(e, &sigterm, SIGTERM, on_stop_signal, &l);
        if (r < 0)
                return r;
        r = sd_event_add_signal(e, &sigint, SIGINT, on_stop_signal, &l);
        if (r < 0)
                return r;

        for (;;) {
                bool idle;

                r = sd_event_get_state(e);
                if (r < 0)
                        return r;
                if (r == SD_EVENT_FINISHED)
                        break;

                idle = check_idle ? check_idle(userdata) : true;
                if (idle && bus) {
                        uint64_t n_read = 0, n_write = 0;

                        /* Work that sd-bus has already read or not yet written is not idle. */
                        if (sd_bus_get_n_queued_read(bus, &n_read) >= 0 &&
                            sd_bus_get_n_queued_write(bus, &n_write) >= 0)
                                idle = n_read == 0 && n_write == 0;
                }
                if (idle && l.state == IDLE_LOOP_DRAINING) {
                        r = sd_event_exit(e, 0);        /* dispatched by the run below */
                        if (r < 0)
                                return r;
                }

                r = sd_event_run(e, l.state != IDLE_LOOP_SERVING || !idle ? UINT64_MAX : idle_usec);
                if (r < 0)
                        return r;

                if (r == 0 && l.state == IDLE_LOOP_SERVING && idle) {
                        r = idle_loop_release(&l);
                        if (r < 0)
                                return r;
                }
        }

        if (bus) {
                /* Answer whatever is still queued, then make sure the replies went out. */
                for (unsigned i = 0; i < 1024; i++) {
                        r = sd_bus_process(bus, NULL);
                        if (r <= 0)
                                break;
                }
                (void) sd_bus_flush(bus);
        }

        r = sd_event_get_exit_code(e, &code);
        if (r < 0)
                return r;
        return code;
}
