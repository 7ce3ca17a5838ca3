/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ch.webtrend.Mailsec.Auth1.Manager at /ch/webtrend/Mailsec/Auth1, as described in
 * interfaces/ch.webtrend.Mailsec.Auth1.Manager.xml. */

#include <systemd/sd-bus.h>

#include "authd-manager.h"

extern const sd_bus_vtable manager_vtable[];

/* Connects to the system bus, adds the object and LogControl1, attaches the bus to the
 * event loop. The name is requested by manager_request_name(), once the resolver is set
 * up, so that no call arrives before the service can answer it. */
int manager_connect_bus(Manager *m);
int manager_request_name(Manager *m);
