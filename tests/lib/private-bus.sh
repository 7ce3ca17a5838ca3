#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A private D-Bus bus (dbus-daemon) in a state directory, standing in for the
# system bus: point DBUS_SYSTEM_BUS_ADDRESS at it and sd_bus_open_system(),
# busctl --system and mailsec's services use it instead of the host's bus.
# Its policy lets every local peer own any name and call anything: access
# control of the real system bus is tested with the real policy files elsewhere.
#
#   bus_start DIR   starts it, prints nothing, sets and exports
#                   DBUS_SYSTEM_BUS_ADDRESS=unix:path=DIR/bus
#   bus_stop DIR    stops it (pidfile DIR/bus.pid)
# MT_DETACH=1 starts it in a session of its own (it outlives the terminal).
#
# Or run it: tests/lib/private-bus.sh start|stop DIR

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"

bus_start() {
        local d=$1 i
        bus_stop "$d"
        mkdir -p "$d" || return 1
        rm -f "$d/bus"
        cat >"$d/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
EOF
        local detach=()
        [ "${MT_DETACH:-0}" = 1 ] && detach=(setsid)
        "${detach[@]}" dbus-daemon --config-file="$d/bus.conf" --nofork --nopidfile --nosyslog \
                </dev/null >"$d/bus.log" 2>&1 &
        echo $! >"$d/bus.pid"
        for ((i = 0; i < 100; i++)); do
                [ -S "$d/bus" ] && break
                kill -0 "$(mt_pid_of "$d/bus.pid")" 2>/dev/null || break
                sleep 0.05
        done
        if [ ! -S "$d/bus" ]; then
                mt_log "private bus did not start:"
                cat "$d/bus.log" >&2
                return 1
        fi
        export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$d/bus"
}

bus_stop() {
        mt_kill_pidfile "$1/bus.pid"
        rm -f "$1/bus"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
        set -euo pipefail
        case ${1:-} in
        start) bus_start "${2:?DIR}"; echo "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS" ;;
        stop) bus_stop "${2:?DIR}" ;;
        *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
        esac
fi
