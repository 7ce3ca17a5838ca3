/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "time-util.h"

/* Open the system bus (honours $DBUS_SYSTEM_BUS_ADDRESS as sd-bus does), with a
 * description, exit-on-disconnect off (services handle loss of the bus themselves). */
int bus_open_system_with_description(const char *description, sd_bus **ret);

/* sd_bus_call_async() with an explicit timeout; the slot is owned by the caller. */
int bus_call_async_timeout(sd_bus *bus, sd_bus_slot **ret_slot, sd_bus_message *m,
                           sd_bus_message_handler_t callback, void *userdata, usec_t timeout);

/* Checks the sender's effective uid (sd_bus_query_sender_creds). uid 0 is always allowed.
 * Returns 0 and sets a ch.webtrend...AccessDenied style error (org.freedesktop.DBus.Error.AccessDenied)
 * on refusal with -EPERM, 0 on success. */
int bus_check_sender_uid(sd_bus_message *m, const uid_t *allowed, size_t n_allowed, sd_bus_error *error);

/* For administrative methods flagged SD_BUS_VTABLE_UNPRIVILEGED: allows root and members of
 * group (effective or supplementary gid; a group that does not exist allows root only).
 * Returns 0 when allowed, a negative errno with org.freedesktop.DBus.Error.AccessDenied set
 * in error otherwise. The bus policy file says the same; this is the second check. */
int bus_check_sender_admin(sd_bus_message *m, const char *group, sd_bus_error *error);

/* Serves org.freedesktop.LogControl1 at /org/freedesktop/LogControl1 on bus, backed by
 * log.h (LogLevel, LogTarget, SyslogIdentifier). Writes need a privileged caller. */
int bus_log_control_api_register(sd_bus *bus);

/* A service's connection to the system bus: its error map registered, the manager object
 * (path, interface, vtable, userdata) and LogControl1 served, attached to event. Logs what
 * failed. The name is requested separately (bus_request_name_async_or_exit()), once the
 * service is ready for calls. */
int bus_service_connect(sd_event *event, const char *description, const sd_bus_error_map *errors,
                        const char *path, const char *interface, const sd_bus_vtable *vtable, void *userdata,
                        sd_bus **ret);

/* Request a name asynchronously; a failure to get it makes the event loop exit with an error. */
int bus_request_name_async_or_exit(sd_bus *bus, const char *name);

/* Exit-on-idle for bus-activated services: runs the loop; after idle_usec with
 * check_idle(userdata) true and no pending bus traffic, or at the first SIGTERM or SIGINT
 * (which it blocks and handles itself), releases name, goes on serving the calls that had
 * reached it and the work they started until check_idle() is true again, and returns the
 * loop's exit code. A second SIGTERM/SIGINT exits at once. Calls sent to the name after
 * the release wait for the next activation. */
int bus_event_loop_with_idle(sd_event *e, sd_bus *bus, const char *name, usec_t idle_usec,
                             bool (*check_idle)(void *userdata), void *userdata);

