/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ch.webtrend.Mailsec.Proxy1.Manager at /ch/webtrend/Mailsec/Proxy1: statistics, the
 * session list and Reload(), as described in interfaces/ch.webtrend.Mailsec.Proxy1.Manager.xml. */

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

extern const sd_bus_vtable manager_vtable[];

/* Connects to the system bus, adds the object, LogControl1, attaches to the event loop
 * and requests the name. */
int manager_connect_bus(Manager *m);
