#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsec-proxyd socket-activated by systemd-socket-activate, as systemd would
# start it from mailsec-proxyd.socket: one listening socket named "smtp". The
# daemon is started by the first connection (systemd-socket-activate execs it
# in its own place, so the pidfile names the daemon itself).
#
#   proxyd_find BUILDDIR          print the path of the built daemon
#   proxyd_start NAME DIR ADDR:PORT CONF [bus|nobus]
#       logs to DIR/NAME.log, pidfile DIR/NAME.pid; "bus" passes
#       DBUS_SYSTEM_BUS_ADDRESS, "nobus" (default) runs it without a bus
#   proxyd_wake NAME DIR ADDR PORT [CODE]  make the first connection, wait for
#                                 its greeting (220 unless CODE says otherwise)
#   proxyd_stop NAME DIR
#
# The binary is $MAILSEC_PROXYD.

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"

proxyd_find() {
        local b=${1:-} f
        for f in "${MAILSEC_PROXYD:-}" "$b/services/proxyd/mailsec-proxyd"; do
                if [ -n "$f" ] && [ -x "$f" ]; then
                        echo "$f"
                        return 0
                fi
        done
        return 1
}

proxyd_start() {
        local name=$1 d=$2 listen=$3 conf=$4 bus=${5:-nobus}
        local -a env=(-E "MAILSEC_LOG_LEVEL=${MAILSEC_LOG_LEVEL:-debug}" -E "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        proxyd_stop "$name" "$d"
        if [ "$bus" = bus ]; then
                env+=(-E "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS")
        else
                env+=(-E MAILSEC_PROXYD_NO_BUS=1)
        fi
        systemd-socket-activate -l "$listen" --fdname=smtp "${env[@]}" \
                "$MAILSEC_PROXYD" --config="$conf" </dev/null >"$d/$name.log" 2>&1 &
        echo $! >"$d/$name.pid"
        mt_wait_tcp "${listen%:*}" "${listen##*:}" 10
}

# proxyd_wake NAME DIR ADDR PORT [CODE]: the first connection starts the daemon;
# true once it greeted with a reply starting with CODE (default 220).
proxyd_wake() {
        local name=$1 d=$2 addr=$3 port=$4 want=${5:-220} line i
        for ((i = 0; i < 3; i++)); do
                line=$(timeout 15 "$MT_PYTHON" - "$addr" "$port" <<'EOF' 2>/dev/null
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rb")
while True:
    l = f.readline()
    if not l or l[3:4] != b"-":
        break
print(l.decode(errors="replace").strip())
s.sendall(b"QUIT\r\n")
f.readline()
EOF
)
                case $line in "$want"*) return 0 ;; esac
                sleep 0.5
        done
        mt_log "proxy $name did not greet (got '$line'); its log:"
        tail -n 30 "$d/$name.log" >&2
        return 1
}

proxyd_pid() { mt_pid_of "$2/$1.pid"; }

proxyd_running() {
        local pid
        pid=$(proxyd_pid "$1" "$2") || return 1
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

proxyd_stop() { mt_kill_pidfile "$2/$1.pid"; }
