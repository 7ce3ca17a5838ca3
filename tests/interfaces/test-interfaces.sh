#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The "interfaces" suite: interfaces/*.xml is the contract and the documentation
# of mailsec's bus API; these checks keep it valid and keep the daemons honest.
#
#   test-interfaces.sh static CHECKER DTDDIR XML...
#       every file is valid against the introspection DTD (xmllint --dtdvalid,
#       offline through the catalog), and documents every member and argument
#       (CHECKER lint); a broken copy of each check must be refused.
#   test-interfaces.sh live CHECKER PROXYD XML POLICY
#       starts mailsec-proxyd the way systemd does (systemd-socket-activate,
#       fd name "smtp") on a private bus standing in for the system bus, and
#       compares its live introspection with XML, order-independent; checks that
#       a changed copy of XML is detected as drift; checks the bus policy POLICY
#       as a non-root caller sees it.
#
# Exit status: 0 pass, 1 fail, 77 skipped (a tool or the daemon is missing).
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MT_LIB_DIR=$HERE/../lib
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"

FAILS=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
skip() { echo "SKIP: $*"; exit 77; }

W=
PIDS=()
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
stop_pid() { # TERM, bounded wait, KILL: only for processes this script started
        local p=$1 i
        alive "$p" || { wait "$p" 2>/dev/null; return 0; }
        kill -TERM "$p" 2>/dev/null
        for ((i = 0; i < 150; i++)); do alive "$p" || break; sleep 0.02; done
        alive "$p" && kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        return 0
}
cleanup() {
        local rc=$? p
        trap '' INT TERM
        for p in "${PIDS[@]}"; do stop_pid "$p"; done
        [ -n "$W" ] && rm -rf "$W"
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

xml_valid() { # DTDDIR FILE
        XML_CATALOG_FILES=$1/catalog.xml xmllint --noout --nonet --dtdvalid "$1/introspect.dtd" "$2"
}

cmd_static() {
        local checker=$1 dtd=$2 f
        shift 2
        mt_need xmllint
        [ -x "$MT_PYTHON" ] || skip "$MT_PYTHON is missing"
        W=$(mktemp -d /tmp/mailsec-ifaces.XXXXXX)
        for f in "$@"; do
                if out=$(xml_valid "$dtd" "$f" 2>&1) && [ -z "$out" ]; then
                        ok "$(basename "$f") is valid against the introspection DTD"
                else
                        bad "$(basename "$f") DTD validation: $out"
                fi
                if "$MT_PYTHON" "$checker" lint "$f"; then
                        ok "$(basename "$f") documents every member and argument"
                else
                        bad "$(basename "$f") lint"
                fi
                # the checks must be able to fail
                sed '0,/access="read"/s//access="sometimes"/' "$f" >"$W/bad-access.xml"
                xml_valid "$dtd" "$W/bad-access.xml" >/dev/null 2>&1 &&
                        bad "DTD accepted access=\"sometimes\"" || ok "DTD refuses a bad access="
                # drop the first comment inside the interface: its member is undocumented
                "$MT_PYTHON" - "$f" >"$W/undocumented.xml" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
i = s.index('<interface')
print(s[:i] + re.sub(r'<!--.*?-->', '', s[i:], count=1, flags=re.S))
PY
                "$MT_PYTHON" "$checker" lint "$W/undocumented.xml" 2>/dev/null &&
                        bad "lint accepted a member without a comment" ||
                        ok "lint refuses a member without a comment"
                sed '0,/type="t"/s//type="a{vs}"/' "$f" >"$W/bad-type.xml"
                "$MT_PYTHON" "$checker" lint "$W/bad-type.xml" 2>/dev/null &&
                        bad "lint accepted type a{vs}" || ok "lint refuses a bad signature"
        done
}

cmd_live() {
        local checker=$1 proxyd=$2 xml=$3 policy=$4 port backend_port i line name path
        mt_need dbus-daemon busctl systemd-socket-activate setpriv
        [ -x "$MT_PYTHON" ] || skip "$MT_PYTHON is missing"
        [ -x "$proxyd" ] || skip "$proxyd is not built yet"
        [ "$(id -u)" = 0 ] || skip "needs root (to call the bus as another user)"
        name=$(sed -n 's/.*<interface name="\([^"]*\)\.Manager".*/\1/p' "$xml" | head -n 1)
        path=/${name//.//}
        # 0711: nobody must reach the bus socket for the policy checks, nothing else
        W=$(mktemp -d /tmp/mailsec-ifaces.XXXXXX)
        chmod 711 "$W"

        # A system bus like Debian's (deny by default), with the real policy of the
        # service. Test-only: root may own the name, standing in for the user
        # mailsec-proxy, which does not exist on a test machine.
        cat >"$W/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$W/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>$(realpath "$policy")</include>
  <policy user="root">
    <allow own="$name"/>
  </policy>
</busconfig>
CONF
        dbus-daemon --config-file="$W/bus.conf" --nofork --nopidfile --nosyslog \
                </dev/null >"$W/bus.log" 2>&1 &
        PIDS+=($!)
        for ((i = 0; i < 100; i++)); do [ -S "$W/bus" ] && break; sleep 0.05; done
        [ -S "$W/bus" ] || { cat "$W/bus.log"; bad "private bus did not start"; return; }
        chmod 666 "$W/bus"
        export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$W/bus

        # The backend is a closed loopback port: the daemon connects to it only
        # when a client arrives, and this test needs no mail to flow.
        backend_port=$(mt_free_port 127.0.0.1)
        port=$(mt_free_port 127.0.0.1)
        printf '[Proxy]\nBackend=127.0.0.1:%s\n\n[TLS]\nSTARTTLS=no\n' "$backend_port" >"$W/proxyd.conf"
        systemd-socket-activate -l "127.0.0.1:$port" --fdname=smtp \
                -E DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" -E MAILSEC_LOG_LEVEL=debug \
                "$proxyd" --config="$W/proxyd.conf" 2>"$W/proxyd.log" &
        PIDS+=($!)
        mt_wait_tcp 127.0.0.1 "$port" 5 || { bad "socket not listening"; return; }
        # the daemon is started on the first connection
        line=$(timeout 10 "$MT_PYTHON" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
print(s.recv(512).decode(errors="replace").strip())' "$port" 2>&1) || true
        echo "first connection got: ${line:-nothing}"
        for ((i = 0; i < 250; i++)); do
                busctl --system status "$name" >/dev/null 2>&1 && break
                sleep 0.02
        done
        if ! busctl --system status "$name" >/dev/null 2>&1; then
                cat "$W/proxyd.log"
                bad "$name did not appear on the bus"
                return
        fi
        ok "$name is on the bus"

        if busctl --system --timeout=5 introspect --xml-interface "$name" "$path" >"$W/live.xml"; then
                if "$MT_PYTHON" "$checker" compare "$xml" "$W/live.xml"; then
                        ok "live introspection of $path equals $(basename "$xml")"
                else
                        bad "live introspection differs from $(basename "$xml") (diff above)"
                fi
        else
                bad "introspection of $path failed"
        fi
        # drift must be caught: a changed type, a missing and an extra member
        sed '0,/type="t"/s//type="u"/' "$xml" >"$W/drift-type.xml"
        "$MT_PYTHON" - "$xml" >"$W/drift-extra.xml" <<'PY'
import sys
s = open(sys.argv[1]).read()
i = s.index('</interface>')
print(s[:i] + '<method name="Frobnicate"><arg type="s" name="what" direction="in"/></method>\n' + s[i:])
PY
        for d in drift-type drift-extra; do
                "$MT_PYTHON" "$checker" compare "$W/$d.xml" "$W/live.xml" >/dev/null 2>&1 &&
                        bad "$d not detected" || ok "$d detected"
        done
        if busctl --system --timeout=5 introspect --xml-interface "$name" /org/freedesktop/LogControl1 \
                >"$W/logcontrol.xml" && grep -q '<interface name="org.freedesktop.LogControl1">' "$W/logcontrol.xml"; then
                ok "org.freedesktop.LogControl1 is served"
        else
                bad "org.freedesktop.LogControl1 is missing"
        fi

        # the bus policy, as an unprivileged local user sees it
        local as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups env
                         DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS")
        if out=$("${as_nobody[@]}" busctl --system --timeout=5 get-property "$name" "$path" \
                        "$name.Manager" Version 2>&1); then
                ok "nobody may read properties ($out)"
        else
                bad "nobody cannot read properties: $out"
        fi
        # busctl shows a policy refusal only as "Access denied", like the daemon's own
        # privilege check; the bus logs its refusals, so look there for the member
        local m
        for m in "Manager ListSessions" "Manager Reload" "LogControl1 Set"; do
                if [ "${m% *}" = LogControl1 ]; then
                        out=$("${as_nobody[@]}" busctl --system --timeout=5 set-property "$name" \
                                /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel s debug 2>&1)
                else
                        out=$("${as_nobody[@]}" busctl --system --timeout=5 call "$name" "$path" \
                                "$name.Manager" "${m#* }" 2>&1)
                fi
                if [ $? = 0 ]; then
                        bad "nobody may call ${m#* }: $out"
                elif grep -q "Rejected send message.*uid=65534.*member=\"${m#* }\"" "$W/bus.log"; then
                        ok "the bus policy refuses ${m#* } from nobody"
                else
                        bad "${m#* } from nobody failed, but not by the bus policy: $out"
                fi
        done
        if out=$(busctl --system --timeout=5 call "$name" "$path" "$name.Manager" ListSessions 2>&1); then
                ok "root may list sessions ($out)"
        else
                bad "root cannot list sessions: $out"
        fi
}

case ${1:-} in
static) [ $# -ge 4 ] || exit 2; shift; cmd_static "$@" ;;
live) [ $# = 5 ] || exit 2; shift; cmd_live "$@" ;;
*) echo "usage: $0 static CHECKER DTDDIR XML... | live CHECKER PROXYD XML POLICY" >&2; exit 2 ;;
esac
[ $FAILS = 0 ] || { echo "$FAILS check(s) failed"; exit 1; }
echo "all checks passed"
