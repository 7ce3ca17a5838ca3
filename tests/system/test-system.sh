#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The "system" suite: mailsec-proxyd under a real service manager, with the real
# mailsec-proxyd.socket and mailsec-proxyd.service (the build-tree copies, whose
# ExecStart= points at the built daemon) and a real Postfix as the backend.
#
#   test-system.sh CHECKER MAILSECCTL UNITDIR XML
#
# The manager is a private "systemd --user" of root in its own mount namespace
# and cgroup (nothing changes on the host: /run/systemd/system exists only inside
# the namespace), with dbus-broker as its bus. The daemon uses that bus as its
# system bus (DBUS_SYSTEM_BUS_ADDRESS), so the test talks to it with --user.
#
# Exit status: 0 pass, 1 fail, 77 skipped (not root, or a tool or the daemon is missing).
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MT_LIB_DIR=$HERE/../lib
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# shellcheck source=tests/lib/postfix-backend.sh
. "$MT_LIB_DIR/postfix-backend.sh"
# shellcheck source=tests/lib/systemd-user.sh
. "$MT_LIB_DIR/systemd-user.sh"

CHECKER=$1 CTL=$2 UNITDIR=$3 XML=$4
NAME=ch.webtrend.Mailsec.Proxy1
OBJ=/ch/webtrend/Mailsec/Proxy1

FAILS=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (private systemd --user in a mount namespace)"
mt_need unshare systemctl busctl dbus-broker-launch postfix openssl setpriv script
[ -x /lib/systemd/systemd ] || skip "/lib/systemd/systemd is missing"
[ -x "$MT_PYTHON" ] || skip "$MT_PYTHON is missing"
PROXYD=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$UNITDIR/mailsec-proxyd.service")
[ -x "$PROXYD" ] || skip "$PROXYD is not built yet"

W=$(mktemp -d /tmp/mailsec-system.XXXXXX)     # units, logs, Postfix
# what the sandboxed service must see (it has PrivateTmp= and ProtectHome=)
R=$(mktemp -d /run/mailsec-system.XXXXXX)
chmod 755 "$W" "$R"

cleanup() {
        local rc=$?
        trap '' INT TERM
        su_cleanup
        pf_backend_stop "$W/pf"
        if [ $rc != 0 ] && [ $rc != 77 ]; then
                for f in "$W"/manager.log "$W"/logs/*.log "$W/pf/maillog"; do
                        [ -s "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
                done
        fi
        rm -rf "$W" "$R"
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the backend: a private Postfix on loopback --------------------------------------------
BPORT=$(mt_free_port 127.0.0.1) || { bad "no free port"; exit 1; }
pf_backend_start "$W/pf" "127.0.0.1:$BPORT" || { bad "Postfix backend did not start"; exit 1; }
ok "Postfix backend on 127.0.0.1:$BPORT"

# ---- the daemon, test key, certificate and configuration ---------------------------------------
# The build tree may be under /tmp, which the unit's PrivateTmp= hides from the service
# (203/EXEC): run a copy from the test's directory under /run.
install -m 755 "$PROXYD" "$R/mailsec-proxyd" || { bad "cannot copy $PROXYD"; exit 1; }
mkdir -p "$R/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=mx.example.test -addext subjectAltName=DNS:mx.example.test \
        -keyout "$R/tls/key.pem" -out "$R/tls/cert.pem" >/dev/null 2>&1 || { bad "openssl"; exit 1; }
chmod 600 "$R/tls/key.pem"         # only the manager reads it (LoadCredential=)
chmod 644 "$R/tls/cert.pem"
PORT=$(mt_free_port 127.0.0.1) || { bad "no free port"; exit 1; }
cat >"$R/proxyd.conf" <<CONF
[Proxy]
Hostname=mx.example.test
Backend=127.0.0.1:$BPORT

[TLS]
CertificateFile=$R/tls/cert.pem
KeyFile=tls-key.pem
CONF
chmod 644 "$R/proxyd.conf"

# ---- units: the real ones, plus test-only drop-ins -------------------------------------------
U=$W/units
mkdir -p "$U/sockets.target.wants" "$U/mailsec-proxyd.socket.d" "$U/mailsec-proxyd.service.d"
cp "$UNITDIR/mailsec-proxyd.socket" "$UNITDIR/mailsec-proxyd.service" "$U/"
ln -s ../mailsec-proxyd.socket "$U/sockets.target.wants/mailsec-proxyd.socket"
# Test-only: port 25 is the host's; listen on a free loopback port instead.
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$PORT" >"$U/mailsec-proxyd.socket.d/50-test.conf"
# Test-only, for what a test machine lacks (everything else is the shipped unit):
#  - the user mailsec-proxy does not exist here (sysusers.d is not applied to the
#    host), so User= is removed: the daemon runs as the manager's user (root),
#    still without any capability (CapabilityBoundingSet= is kept). With
#    User=nobody instead, READY=1 never reached this user manager and the start
#    timed out;
#  - the key and the configuration are test files, not the ones in /etc/mailsec;
#  - there is no system bus with the real policy: the manager's own bus stands in.
cat >"$U/mailsec-proxyd.service.d/50-test.conf" <<UNIT
[Service]
User=
LoadCredential=
LoadCredential=tls-key.pem:$R/tls/key.pem
ExecStart=
ExecStart=$R/mailsec-proxyd --config=$R/proxyd.conf
Environment=DBUS_SYSTEM_BUS_ADDRESS=unix:path=%t/bus
UNIT
su_prepare "$U" "$W" "$R" || { bad "cannot write the bus units"; exit 1; }

# ---- the manager -------------------------------------------------------------------------------
su_start "$W/home" || { bad "the private systemd --user did not start"; exit 1; }
unset DBUS_SYSTEM_BUS_ADDRESS
ok "private systemd --user running (pid $SU_PID)"

# ---- socket activation -----------------------------------------------------------------------
[ "$(systemctl --user is-active mailsec-proxyd.socket)" = active ] &&
        ok "mailsec-proxyd.socket is active at start" || bad "mailsec-proxyd.socket not active"
[ "$(systemctl --user is-active mailsec-proxyd.service)" = inactive ] &&
        ok "mailsec-proxyd.service is not started before a client comes" ||
        bad "mailsec-proxyd.service is $(systemctl --user is-active mailsec-proxyd.service) at start"

greeting=$(timeout 20 "$MT_PYTHON" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
f = s.makefile("rb")
line = f.readline().decode(errors="replace").strip()
print(line)
while line[3:4] == "-":
    line = f.readline().decode(errors="replace").strip()
s.sendall(b"QUIT\r\n")
f.readline()' "$PORT" 2>&1)
[[ "$greeting" == 220\ * ]] && ok "first connection started the service: '$greeting'" ||
        bad "no 220 greeting: '$greeting'"
for ((i = 0; i < 250; i++)); do
        [ "$(systemctl --user is-active mailsec-proxyd.service)" = active ] && break
        sleep 0.02
done
[ "$(systemctl --user is-active mailsec-proxyd.service)" = active ] &&
        ok "mailsec-proxyd.service is active" || bad "mailsec-proxyd.service is not active"
MAINPID=$(systemctl --user show -p MainPID --value mailsec-proxyd.service)
if [ -n "$MAINPID" ] && [ "$MAINPID" != 0 ]; then
        uid=$(awk '/^Uid:/ {print $2}' "/proc/$MAINPID/status")
        caps=$(awk '/^CapEff:/ {print $2}' "/proc/$MAINPID/status")
        [ "$caps" = 0000000000000000 ] &&
                ok "daemon runs as uid $uid without capabilities" || bad "daemon uid=$uid CapEff=$caps"
else
        bad "no MainPID"
fi

# a message end to end, when swaks is there
if command -v swaks >/dev/null 2>&1; then
        tag="mailsec-system-$$-$RANDOM"
        if timeout 60 swaks --server 127.0.0.1 --port "$PORT" --from sender@plain.test \
                --to user@example.test --header "Subject: $tag" --body "$tag" \
                --timeout 30 >"$W/swaks.log" 2>&1; then
                pf_backend_wait "$W/pf" "$tag" 1 30 >/dev/null &&
                        ok "a message went through the proxy to the backend" ||
                        bad "the message did not arrive at the backend"
        else
                tail -n 20 "$W/swaks.log"
                bad "swaks through the proxy failed"
        fi
else
        echo "note: swaks is not installed, no message sent"
fi

# ---- the bus interface -----------------------------------------------------------------------
for ((i = 0; i < 250; i++)); do
        busctl --user status "$NAME" >/dev/null 2>&1 && break
        sleep 0.02
done
if busctl --user --timeout=10 introspect --xml-interface "$NAME" "$OBJ" >"$W/live.xml" &&
   "$MT_PYTHON" "$CHECKER" compare "$XML" "$W/live.xml"; then
        ok "busctl --user introspect $NAME $OBJ equals $(basename "$XML")"
else
        bad "introspection differs from $(basename "$XML")"
fi

if out=$("$CTL" --user proxy stats 2>&1); then
        echo "$out" | sed 's/^/    /'
        total=$(printf '%s\n' "$out" | awk '$1 == "SessionsTotal" {print $2}')
        [ -n "$total" ] && [ "$total" -ge 1 ] && ok "mailsecctl proxy stats: SessionsTotal=$total" ||
                bad "mailsecctl proxy stats: SessionsTotal='$total'"
else
        bad "mailsecctl --user proxy stats failed: $out"
fi
if out=$("$CTL" --user --json proxy stats 2>&1); then
        total=$(printf '%s' "$out" | "$MT_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["SessionsTotal"])' 2>&1)
        [[ "$total" =~ ^[0-9]+$ ]] && [ "$total" -ge 1 ] &&
                ok "mailsecctl --json proxy stats: valid JSON, SessionsTotal=$total" ||
                bad "mailsecctl --json proxy stats: $out"
else
        bad "mailsecctl --user --json proxy stats failed: $out"
fi
if out=$("$CTL" --user status 2>&1) && [[ "$out" == *"$NAME"*running* ]]; then
        ok "mailsecctl status lists $NAME as running"
else
        bad "mailsecctl --user status: $out"
fi
out=$("$CTL" --user --json proxy sessions 2>&1) &&
        printf '%s' "$out" | "$MT_PYTHON" -c 'import json, sys; assert isinstance(json.load(sys.stdin), list)' &&
        ok "mailsecctl --json proxy sessions: a JSON list" || bad "mailsecctl proxy sessions: $out"

# ---- reload keeps the daemon -----------------------------------------------------------------
if systemctl --user reload mailsec-proxyd.service; then
        pid=$(systemctl --user show -p MainPID --value mailsec-proxyd.service)
        [ "$(systemctl --user is-active mailsec-proxyd.service)" = active ] && [ "$pid" = "$MAINPID" ] &&
                ok "systemctl reload: still active, same MainPID $pid" ||
                bad "systemctl reload: MainPID $MAINPID -> $pid, $(systemctl --user is-active mailsec-proxyd.service)"
else
        bad "systemctl --user reload mailsec-proxyd failed"
fi
if out=$("$CTL" --user proxy reload 2>&1); then
        pid=$(systemctl --user show -p MainPID --value mailsec-proxyd.service)
        [ "$pid" = "$MAINPID" ] && ok "mailsecctl proxy reload: same MainPID" ||
                bad "mailsecctl proxy reload: MainPID $MAINPID -> $pid"
else
        bad "mailsecctl --user proxy reload failed: $out"
fi
# still serving after the reloads
greeting=$(timeout 20 "$MT_PYTHON" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
print(s.makefile("rb").readline().decode(errors="replace").strip())' "$PORT" 2>&1)
[[ "$greeting" == 220\ * ]] && ok "still greeting after the reloads" || bad "after reload: '$greeting'"
[ "$(systemctl --user show -p NRestarts --value mailsec-proxyd.service)" = 0 ] &&
        ok "no restarts" || bad "the service restarted"

# ---- a stopped service: exit status 3 ----------------------------------------------------------
systemctl --user stop mailsec-proxyd.service mailsec-proxyd.socket
"$CTL" --user proxy stats >/dev/null 2>&1
rc=$?
[ $rc = 3 ] && ok "mailsecctl exits 3 when the proxy is not running" || bad "mailsecctl exit $rc for a stopped proxy"

# ---- teardown ----------------------------------------------------------------------------------
su_stop
left=$(su_cgroup_procs)
[ -z "$left" ] && ok "no process left in the manager's cgroup" || bad "left behind: $left"
[ -n "$MAINPID" ] && [ -e "/proc/$MAINPID" ] && bad "daemon $MAINPID still exists"
pf_backend_stop "$W/pf"
pf_backend_running "$W/pf" && bad "Postfix backend still running" || ok "Postfix backend stopped"

[ $FAILS = 0 ] || { echo "$FAILS check(s) failed"; exit 1; }
echo "all checks passed"
