#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The "system" suite: mailsec-authd under a real service manager, with the real
# mailsec-authd.service (the build-tree copy, whose ExecStart= points at the built
# daemon), started by real D-Bus activation: the bus's activation file for
# ch.webtrend.Mailsec.Auth1 (units/dbus/, SystemdService=dbus-ch.webtrend.Mailsec.Auth1.service,
# the unit's Alias=, enabled here the way "systemctl enable" does) makes dbus-broker ask
# systemd to start the unit.
#
#   test-system-authd.sh UNITDIR AUTHD_CLIENT MAILSECCTL ACTIVATION_FILE
#
# The manager is a private "systemd --user" of root in its own mount namespace and
# cgroup with dbus-broker as its bus (tests/lib/systemd-user.sh); the daemon uses that
# bus as its system bus (DBUS_SYSTEM_BUS_ADDRESS), so the test talks to it with --user.
# DNS is the DNSSEC test bed of tests/lib/dns-testbed.sh on 127.0.68.0/24, with two
# additions: slow.example.test, delegated to a server on loopback that reads every
# query and answers none, and a second DKIM key (selector new1) for the rotation.
# Checked:
#
#   activation  a call activates the unit through systemd (Type=notify, ready, the bus
#               name's owner is the unit's main process); IdleTimeoutSec= ends it (inactive,
#               not failed); the next call activates it again
#   sandbox     with IPAddressAllow=localhost the service reaches the resolver on loopback
#               (SPF, DKIM and DMARC pass); a DMARC evaluation is recorded in
#               StateDirectory='s dmarc/
#   credentials LoadCredential=dkim:DIR hands the keys of DIR over as dkim_<file>, and
#               SignMessage signs with the Key= lines that name them
#   restart     "systemctl restart" with a check pending: that call still gets authd's
#               own answer, and a call made during the restart is answered by the new
#               instance
#   rotation    "mailsecctl --user dkim rotate" once the new key is published: systemd
#               restarts the service, which then signs with the new selector
#
# Exit status: 0 pass, 1 fail, 77 skipped (not root, or a tool or the daemon is missing).
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MT_LIB_DIR=$HERE/../lib
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# Addresses of our own, so that the other suites' test beds may run at the same time.
export DNS_TB_AUTH_IP=127.0.68.1 DNS_TB_RESOLVER_IP=127.0.68.2 DNS_TB_MX_IP=127.0.68.25
SILENT_IP=127.0.68.53
# shellcheck source=tests/lib/dns-testbed.sh
. "$MT_LIB_DIR/dns-testbed.sh"
# shellcheck source=tests/lib/systemd-user.sh
. "$MT_LIB_DIR/systemd-user.sh"

UNITDIR=${1:-} CLIENT=${2:-} CTL=${3:-} ACTIVATION=${4:-}
NAME=ch.webtrend.Mailsec.Auth1
OBJ=/ch/webtrend/Mailsec/Auth1
IFACE=$NAME.Manager
UNIT=mailsec-authd.service
ALIAS=dbus-$NAME.service
RES=$DNS_TB_RESOLVER_IP:53

PASS=0
FAILS=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (private systemd --user in a mount namespace, DNS on port 53)"
mt_need unshare nsenter setpriv systemctl busctl dbus-broker-launch nsd nsd-checkconf unbound unbound-checkconf \
        ldns-keygen ldns-signzone ldns-key2ds dig openssl timeout
[ -x /lib/systemd/systemd ] || skip "/lib/systemd/systemd is missing"
[ -x "$MT_PYTHON" ] || skip "$MT_PYTHON is missing"
[ -f "$UNITDIR/$UNIT" ] || skip "$UNITDIR/$UNIT is not generated"
[ -f "$ACTIVATION" ] || skip "the activation file $ACTIVATION is missing"
for x in "$CLIENT" "$CTL"; do [ -x "$x" ] || skip "$x is not built yet"; done
AUTHD=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$UNITDIR/$UNIT")
[ -x "$AUTHD" ] || skip "$AUTHD is not built yet"

W=$(mktemp -d /tmp/mailsec-system-authd.XXXXXX)     # units, logs, DNS
# what the sandboxed service must see (it has PrivateTmp= and ProtectHome=)
R=$(mktemp -d /run/mailsec-system-authd.XXXXXX)
chmod 755 "$W" "$R"
D=$W/dns

cleanup() {
        local rc=$? f
        trap '' INT TERM
        su_cleanup
        dns_testbed_stop "$D"
        mt_kill_pidfile "$W/silent.pid"
        if [ $rc != 0 ] && [ $rc != 77 ]; then
                for f in "$W"/manager.log "$W"/logs/*.log "$D"/unbound.log; do
                        [ -s "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
                done
        fi
        if [ "${MT_KEEP:-0}" = 1 ]; then echo "state kept in $W and $R"; else rm -rf "$W" "$R"; fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ms() { echo $(($(date +%s%N) / 1000000)); }
prop() { systemctl --user show -p "$1" --value "$UNIT" 2>/dev/null; }
# wait_state STATE SECONDS: until the unit's ActiveState is STATE
wait_state() {
        local i
        for ((i = 0; i < $2 * 20; i++)); do
                [ "$(prop ActiveState)" = "$1" ] && return 0
                sleep 0.05
        done
        return 1
}
# the calls, as root on the user bus; authd-client opens the "system" bus
call() { busctl --user --timeout=30 call "$NAME" "$OBJ" "$IFACE" "$@" 2>&1; }
client() { DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS "$CLIENT" "$@" 2>&1; }
has_owner() {
        busctl --user --timeout=5 call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "$NAME" 2>/dev/null | grep -q true
}
jfield() { # jfield FILE KEY
        "$MT_PYTHON" -c 'import json, sys; v = json.load(open(sys.argv[1])).get(sys.argv[2]); print("null" if v is None else v)' "$1" "$2" 2>&1
}
# sig_has FILE SELECTOR: FILE (header fields, folded) has a DKIM-Signature with s=SELECTOR
sig_has() { grep -q "^DKIM-Signature:.* s=$2;" < <(mt_headers "$1"); }
# exits: "SERVICE_RESULT EXIT_CODE EXIT_STATUS" of every instance that ended, in order
exits() { cat "$W/exits" 2>/dev/null; }
environ_of() { # environ_of PID VAR
        tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | sed -n "s/^$2=//p"
}

# ---- DNS: the test bed, the new key, slow.example.test and its silent server -------------
t_start=$(ms)
dns_testbed_start "$D" || { bad "the DNS test bed did not start"; exit 1; }

mkdir -p "$R/dkim"
chmod 700 "$R/dkim"     # only the manager reads it (LoadCredential=)
# the RFC 8463 Ed25519 key, published in the test bed as sel1
"$MT_PYTHON" - >"$R/dkim/sel1.pem" <<'PY'
import base64
seed = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
der = bytes.fromhex("302e020100300506032b657004220420") + seed
print("-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----")
PY
"$CTL" dkim keygen --domain example.test --selector old1 --output "$R/dkim" >/dev/null &&
        "$CTL" dkim keygen --domain example.test --selector new1 --output "$R/dkim" >/dev/null ||
        { bad "mailsecctl dkim keygen"; exit 1; }
chmod 600 "$R/dkim"/*.pem
NEWKEY=$R/dkim/new1.example.test.pem
new_record=$("$CTL" --json dkim record --key "$NEWKEY" --domain example.test --selector new1 |
        "$MT_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["zone"])') ||
        { bad "mailsecctl dkim record"; exit 1; }
{
        printf '%s\n' "$new_record"
        printf 'slow NS ns.slow.example.test.\nns.slow A %s\n' "$SILENT_IP"
} >>"$D/zones/example.test.zone"
kex=$(cd "$D/keys" && ls K*example.test*.private | head -n 1)
if ! ldns-signzone -f "$D/zones/example.test.signed" "$D/zones/example.test.zone" "$D/keys/${kex%.private}" \
        >"$W/signzone.log" 2>&1 || ! mt_kill_pidfile "$D/nsd.pid" || ! nsd -c "$D/nsd.conf"; then
        cat "$W/signzone.log"
        bad "could not publish new1 and slow.example.test"
        exit 1
fi
for ((i = 0; i < 50; i++)); do
        dig +time=1 +tries=1 @"$DNS_TB_RESOLVER_IP" new1._domainkey.example.test TXT 2>/dev/null |
                grep -q 'flags:.* ad[ ;].*ANSWER: 1' && break
        sleep 0.1
done
[ $i -lt 50 ] && ok "new1._domainkey.example.test is published and validates" ||
        { bad "new1._domainkey.example.test does not resolve"; exit 1; }

# The server slow.example.test is delegated to: it reads every query, UDP and TCP, and
# answers none.
cat >"$W/silent.py" <<'PY'
import select, socket, sys
ip, ready = sys.argv[1], sys.argv[2]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((ip, 53))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((ip, 53))
tcp.listen(16)
conns = []
open(ready, "w").close()
while True:
    r, _, _ = select.select([udp, tcp] + conns, [], [], 1.0)
    for s in r:
        if s is udp:
            udp.recvfrom(65535)
        elif s is tcp:
            conns.append(tcp.accept()[0])
        elif not s.recv(65535):
            s.close()
            conns.remove(s)
PY
"$MT_PYTHON" "$W/silent.py" "$SILENT_IP" "$W/silent.ready" 2>"$W/silent.log" &
echo $! >"$W/silent.pid"
for ((i = 0; i < 50; i++)); do [ -e "$W/silent.ready" ] && break; sleep 0.1; done
[ -e "$W/silent.ready" ] || { cat "$W/silent.log"; bad "the silent DNS server did not start"; exit 1; }
echo "note: DNS ready after $(($(ms) - t_start)) ms"

# ---- the configuration the service reads ---------------------------------------------------
# The unit runs mailsec-authd without --config, so it reads SYSCONFDIR/authd.conf; the
# test's drop-in below adds --config= for a file of its own (as the proxy's system test
# does for proxyd.conf), whose drop-in directory is authd.conf.d next to it. Keys are
# named by their credentials only: they are found in $CREDENTIALS_DIRECTORY or nowhere.
cat >"$R/authd.conf" <<EOF
[Resolver]
Servers=$RES
TimeoutSec=3s

[Authentication]
AuthservId=mx.receiver.test

[Signing]
Key=example.test:sel1:ed25519:dkim_sel1.pem
Key=example.test:old1:rsa:dkim_old1.example.test.pem

[Service]
IdleTimeoutSec=3s
EOF
mkdir -p "$R/authd.conf.d" "$W/creds"
chmod 755 "$R/authd.conf.d"
chmod 644 "$R/authd.conf"
for f in "$R"/dkim/*.pem; do cp "$f" "$W/creds/dkim_$(basename "$f")"; done
CREDENTIALS_DIRECTORY=$W/creds "$AUTHD" --config="$R/authd.conf" --check-config >"$W/check.log" 2>&1 ||
        { cat "$W/check.log"; bad "mailsec-authd --check-config refuses the test's configuration"; exit 1; }

# ---- units: the real one, its alias, the bus's activation file, test-only drop-ins -------
U=$W/units
mkdir -p "$U/$UNIT.d"
cp "$UNITDIR/$UNIT" "$U/"
# what "systemctl enable" makes of [Install] Alias=
grep -qx "Alias=$ALIAS" "$U/$UNIT" || bad "$UNIT has no Alias=$ALIAS"
ln -s "$UNIT" "$U/$ALIAS"
su_prepare "$U" "$W" "$R" || { bad "cannot write the bus units"; exit 1; }
cp "$ACTIVATION" "$SU_DBUS_SERVICES/$NAME.service"
# Test-only, for what a test machine lacks (everything else is the shipped unit):
#  - the user mailsec-auth does not exist here (sysusers.d is not applied to the host),
#    so User= is removed: the daemon runs as the manager's user (root), still without
#    any capability (CapabilityBoundingSet= is kept);
#  - the configuration and the keys are test files, not the ones in /etc/mailsec;
#  - there is no system bus with the real policy: the manager's own bus stands in.
cat >"$U/$UNIT.d/50-test.conf" <<UNIT
[Service]
User=
LoadCredential=
LoadCredential=dkim:$R/dkim
ExecStart=
ExecStart=$AUTHD --config=$R/authd.conf --log-level=debug
Environment=DBUS_SYSTEM_BUS_ADDRESS=unix:path=%t/bus
UNIT
# Test-only, outside the sandbox ("+"): how each instance ended. An inactive unit is
# unloaded at once, taking Result= and ExecMainStatus= with it.
printf '[Service]\nExecStopPost=+/bin/sh -c %s\n' \
        "'echo \"\$\$SERVICE_RESULT \$\$EXIT_CODE \$\$EXIT_STATUS\" >>$W/exits'" >"$U/$UNIT.d/60-test-exits.conf"
case $AUTHD in
/tmp/* | /home/* | /root/*)
        # PrivateTmp= and ProtectHome= hide the build tree: run a copy from /run
        install -m 755 "$AUTHD" "$R/mailsec-authd" || { bad "cannot copy $AUTHD"; exit 1; }
        sed -i "s|^ExecStart=$AUTHD |ExecStart=$R/mailsec-authd |" "$U/$UNIT.d/50-test.conf"
        ;;
esac
LOG=$W/logs/$UNIT.log

# ---- the manager -----------------------------------------------------------------------------
su_start "$R/home" || { bad "the private systemd --user did not start"; exit 1; }
unset DBUS_SYSTEM_BUS_ADDRESS
ok "private systemd --user running (pid $SU_PID)"
[ "$(systemctl --user show -p Id --value "$ALIAS")" = "$UNIT" ] &&
        ok "$ALIAS is an alias of $UNIT" || bad "$ALIAS does not name $UNIT"
[ "$(prop ActiveState)" = inactive ] && ok "$UNIT is not started before a call" ||
        bad "$UNIT is $(prop ActiveState) at start"
grep -q "^$NAME " < <(busctl --user --acquired --activatable list 2>/dev/null) &&
        ok "$NAME is activatable on the bus" || bad "$NAME is not activatable"

# ---- 1. activation, ready, idle exit, activation again --------------------------------------
t0=$(ms)
out=$(call CheckSpf ssst "$DNS_TB_MX_IP" mx.example.test someone@example.test 0)
t1=$(ms)
case $out in 'sss "pass"'*) ok "the first call activated $UNIT and got SPF pass ($((t1 - t0)) ms)" ;;
        *) bad "first call: $out" ;; esac
MAINPID=$(prop MainPID)
INV1=$(prop InvocationID)
st="ActiveState=$(prop ActiveState) SubState=$(prop SubState) Type=$(prop Type) StatusText=$(prop StatusText)"
[ "$st" = "ActiveState=active SubState=running Type=notify StatusText=Processing requests." ] &&
        ok "systemctl show: $st" || bad "systemctl show: $st"
owner=$(busctl --user status "$NAME" 2>/dev/null | sed -n 's/^PID=//p')
[ -n "$MAINPID" ] && [ "$MAINPID" != 0 ] && [ "$owner" = "$MAINPID" ] &&
        ok "$NAME is owned by the unit's main process $MAINPID" || bad "$NAME owner '$owner', MainPID '$MAINPID'"
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$MAINPID/status" 2>/dev/null)
[ "$caps" = 0000000000000000 ] && ok "the daemon runs without capabilities" || bad "CapEff='$caps'"
STATE_DIR=$(environ_of "$MAINPID" STATE_DIRECTORY)
CREDS_DIR=$(environ_of "$MAINPID" CREDENTIALS_DIRECTORY)
[ "$STATE_DIR" = "$R/home/config/mailsec/authd" ] && ok "STATE_DIRECTORY=$STATE_DIR" ||
        bad "STATE_DIRECTORY='$STATE_DIR'"
creds=$(nsenter -t "$MAINPID" -m ls "$CREDS_DIR" 2>&1 | tr '\n' ' ')
[ "$creds" = "dkim_new1.example.test.pem dkim_old1.example.test.pem dkim_sel1.pem " ] &&
        ok "the service sees the credentials $creds" || bad "credentials in '$CREDS_DIR': $creds"

if wait_state inactive 10; then
        t2=$(ms)
        ok "$UNIT went inactive $((t2 - t1)) ms after the call (IdleTimeoutSec=3s)"
        [ $((t2 - t1)) -ge 2500 ] || bad "idle exit came before IdleTimeoutSec=3s"
else
        bad "$UNIT is $(prop ActiveState) 10 s after the call"
fi
[ "$(exits)" = "success exited 0" ] && ok "idle exit: SERVICE_RESULT, EXIT_CODE, EXIT_STATUS: $(exits)" ||
        bad "idle exit: $(exits | tr '\n' ';')"
[ "$(systemctl --user is-failed "$UNIT")" != failed ] && ok "the unit is not failed" || bad "the unit failed"
grep -q 'Acquired bus name\|running (authserv-id' "$LOG" && ok "the daemon logs to $LOG" ||
        bad "no daemon log in $LOG"

# From now on the service stays until it is stopped: the next activation reads the drop-in.
printf '[Service]\nIdleTimeoutSec=5min\n' >"$R/authd.conf.d/50-idle.conf"
chmod 644 "$R/authd.conf.d/50-idle.conf"
out=$(call CheckSpf ssst 127.0.68.99 mx.example.test someone@example.test 0)
case $out in 'sss "fail"'*) ok "the next call activated it again (SPF fail for 127.0.68.99)" ;;
        *) bad "second activation: $out" ;; esac
INV2=$(prop InvocationID)
[ "$(prop ActiveState)" = active ] && [ -n "$INV2" ] && [ "$INV2" != "$INV1" ] &&
        ok "a new invocation ($INV2)" || bad "InvocationID $INV1 -> $INV2, $(prop ActiveState)"
[ "$(prop MainPID)" != "$MAINPID" ] && ok "a new main process $(prop MainPID)" || bad "same MainPID $MAINPID"

# The sender check under the sandbox (ProtectProc=invisible, ProcSubset=pid): the user
# bus lets everyone through, the daemon itself refuses nobody and answers root.
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups env DBUS_SESSION_BUS_ADDRESS="$DBUS_SESSION_BUS_ADDRESS")
out=$("${as_nobody[@]}" busctl --user --timeout=10 call "$NAME" "$OBJ" "$IFACE" \
        CheckSpf ssst "$DNS_TB_MX_IP" mx.example.test a@example.test 0 2>&1)
case $out in *"Access denied"* | *AccessDenied* | *"ermission denied"*) ok "the daemon refuses nobody: $out" ;;
        *) bad "nobody got: $out" ;; esac
out=$("${as_nobody[@]}" busctl --user --timeout=10 get-property "$NAME" "$OBJ" "$IFACE" Version 2>&1)
case $out in 's "'*) ok "nobody may read properties ($out)" ;; *) bad "nobody reading Version: $out" ;; esac

# IPAddressAllow=localhost, IPAddressDeny=any: systemd's cgroup firewall, probed by a
# process moved into the service's cgroup. It may send to the resolver on loopback, and
# not to this host's own address on another interface.
other_ip=$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}')
cg=$(prop ControlGroup)
if [ -z "$other_ip" ]; then
        echo "note: no address outside loopback, IPAddressDeny= not probed"
elif [ -z "$cg" ] || [ ! -e "$SU_CGV2$cg/cgroup.procs" ]; then
        bad "the service's cgroup '$cg' is not in $SU_CGV2"
else
        probe=$("$MT_PYTHON" - "$SU_CGV2$cg/cgroup.procs" "$DNS_TB_RESOLVER_IP" "$other_ip" <<'PY' 2>&1
import os, socket, sys
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
for ip in sys.argv[2:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"\0" * 12, (ip, 53))
        print(ip, "sent")
    except OSError as e:
        print(ip, "errno", e.errno)
PY
)
        echo "$probe" | sed 's/^/    /'
        grep -qx "$DNS_TB_RESOLVER_IP sent" <<<"$probe" &&
                ok "IPAddressAllow=localhost: the resolver on loopback may be reached" ||
                bad "sending to $DNS_TB_RESOLVER_IP from the service's cgroup: $probe"
        grep -qx "$other_ip errno 1" <<<"$probe" &&
                ok "IPAddressDeny=any: $other_ip is refused with EPERM" ||
                bad "IPAddressDeny=any is not in force: sending to $other_ip from the service's cgroup: $probe"
fi

# ---- 2 and 3. LoadCredential=, SignMessage, VerifyMessage, the DMARC record ----------------
printf 'From: Alice <alice@example.test>\r\nTo: bob@receiver.test\r\nSubject: mailsec system test\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <s1@example.test>\r\n\r\nHello Bob.\r\n' >"$W/msg.eml"
out=$(client sign "$W/msg.eml" example.test)
printf '%s\n' "$out" >"$W/sig.txt"
if sig_has "$W/sig.txt" sel1 && sig_has "$W/sig.txt" old1; then
        ok "SignMessage signs with the credentials dkim_sel1.pem and dkim_old1.example.test.pem"
else
        bad "SignMessage: $out"
fi
cat "$W/sig.txt" "$W/msg.eml" >"$W/signed.eml"
out=$(client verify "$W/signed.eml" client_ip="$DNS_TB_MX_IP" helo=mx.example.test mail_from=alice@example.test)
echo "$out" | sed 's/^/    /'
grep -q '^dkim example.test sel1 pass' <<<"$out" && ok "VerifyMessage: dkim=pass (sel1, from DNS)" ||
        bad "VerifyMessage dkim sel1"
grep -q '^dmarc pass reject none' <<<"$out" && ok "VerifyMessage: DMARC pass (p=reject)" || bad "VerifyMessage dmarc"
case $out in *'spf=pass'*) ok "VerifyMessage: spf=pass" ;; *) bad "VerifyMessage spf" ;; esac
rec=$(find "$STATE_DIR/dmarc" -type f -newer "$W/msg.eml" 2>/dev/null | head -n 1)
if [ -n "$rec" ] && grep -q "$DNS_TB_MX_IP" "$rec" && grep -q 'example.test' "$rec"; then
        ok "the DMARC evaluation is recorded in $rec"
else
        bad "no DMARC record in $STATE_DIR/dmarc: $(ls -la "$STATE_DIR/dmarc" 2>&1 | tr '\n' ' ')"
fi
mode=$(stat -c %a "$STATE_DIR" 2>/dev/null)
[ "$mode" = 750 ] && ok "StateDirectoryMode=0750 applied" || bad "state directory mode '$mode'"

# ---- 4. a restart with a check pending --------------------------------------------------------
PID_OLD=$(prop MainPID)
INV_OLD=$(prop InvocationID)
lines=$(wc -l <"$LOG")
t0=$(ms)
busctl --user --timeout=60 call "$NAME" "$OBJ" "$IFACE" CheckSpf ssst 127.0.68.99 mx.slow.example.test \
        someone@slow.example.test 0 >"$W/slow.out" 2>&1 &
slow_pid=$!
for ((i = 0; i < 100; i++)); do
        grep -q 'Looking up slow.example.test' < <(tail -n +"$((lines + 1))" "$LOG") && break
        sleep 0.02
done
[ $i -lt 100 ] && ok "a check for slow.example.test is pending" || bad "the slow check did not start"
t_restart=$(ms)
systemctl --user restart --no-block "$UNIT" || bad "systemctl --user restart --no-block $UNIT"
for ((i = 0; i < 200; i++)); do has_owner || break; sleep 0.01; done
has_owner && bad "the old instance kept $NAME after SIGTERM" || ok "the old instance gave up $NAME ($(($(ms) - t_restart)) ms)"
during_state=$(prop ActiveState)
t_during=$(ms)
client sign "$W/msg.eml" example.test >"$W/during.out" &
during_pid=$!
wait "$slow_pid"
slow_rc=$?
t_slow=$(ms)
wait "$during_pid"
during_rc=$?
t_done=$(ms)
out=$(cat "$W/slow.out")
if [ $slow_rc = 0 ] && [[ $out == 'sss "temperror"'* ]]; then
        ok "the pending call got authd's answer: ${out:0:20}... after $((t_slow - t0)) ms"
else
        bad "the pending call: rc=$slow_rc: $out"
fi
[ $((t_slow - t_restart)) -ge 500 ] && ok "it was answered $((t_slow - t_restart)) ms after the restart began" ||
        bad "the pending call ended only $((t_slow - t_restart)) ms after the restart: not pending"
echo "note: during the restart the unit was $during_state"
if [ $during_rc = 0 ] && sig_has "$W/during.out" sel1; then
        ok "a call made during the restart was answered after $((t_done - t_during)) ms"
else
        bad "the call during the restart: rc=$during_rc: $(cat "$W/during.out")"
fi
PID_NEW=$(prop MainPID)
INV_NEW=$(prop InvocationID)
[ "$(prop ActiveState)" = active ] && [ "$PID_NEW" != "$PID_OLD" ] && [ "$INV_NEW" != "$INV_OLD" ] &&
        ok "restarted: MainPID $PID_OLD -> $PID_NEW, a new invocation" ||
        bad "after the restart: $(prop ActiveState), MainPID $PID_OLD -> $PID_NEW"
[ $t_done -ge $t_slow ] && ok "the call made during the restart ended after the old instance's last answer" ||
        bad "the call during the restart ended before the pending one: answered by the old instance?"
checks=$(busctl --user get-property "$NAME" "$OBJ" "$IFACE" ChecksTotal 2>&1 | awk '{print $2}')
[ "$checks" = 1 ] && ok "the new instance counts that one call (ChecksTotal=1)" ||
        bad "the new instance's ChecksTotal='$checks'"
grep -q 'Received SIGTERM, finishing the work in hand' < <(tail -n +"$((lines + 1))" "$LOG") &&
        ok "the old instance finished its work after SIGTERM" || bad "no SIGTERM line in the log"
last=$(exits | tail -n 1)
[ "$last" = "success exited 0" ] && ok "the old instance exited 0 after SIGTERM ($last)" ||
        bad "the old instance ended with '$last'"
[ "$(prop NRestarts)" = 0 ] && ok "no automatic restart" || bad "NRestarts=$(prop NRestarts)"

# ---- 5. mailsecctl dkim rotate: systemd restarts the service, which signs with new1 ----------
INV_OLD=$(prop InvocationID)
TS_OLD=$(prop ExecMainStartTimestampMonotonic)
"$CTL" --user --json dkim rotate --domain example.test --new-selector new1 --key "$NEWKEY" --resolver "$RES" \
        --config-dir "$R/authd.conf.d" --key-dir "$R/dkim" >"$W/rotate.json" 2>"$W/rotate.err"
rc=$?
if [ $rc = 0 ]; then
        ok "mailsecctl --user dkim rotate (exit 0)"
else
        bad "mailsecctl dkim rotate exit $rc: $(cat "$W/rotate.json" "$W/rotate.err")"
fi
for k in status:visible restart:requested key-line:Key=example.test:new1:rsa:dkim_new1.example.test.pem; do
        got=$(jfield "$W/rotate.json" "${k%%:*}")
        [ "$got" = "${k#*:}" ] && ok "rotate: ${k%%:*} $got" || bad "rotate: ${k%%:*} '$got', want '${k#*:}'"
done
for ((i = 0; i < 200; i++)); do
        [ "$(prop InvocationID)" != "$INV_OLD" ] && [ "$(prop ActiveState)" = active ] && break
        sleep 0.05
done
TS_NEW=$(prop ExecMainStartTimestampMonotonic)
[ "$(prop InvocationID)" != "$INV_OLD" ] && [ "$TS_NEW" -gt "$TS_OLD" ] &&
        ok "systemd restarted $UNIT (a new invocation, ExecMainStartTimestamp later)" ||
        bad "no restart after rotate: InvocationID $(prop InvocationID), start $TS_OLD -> $TS_NEW"
out=$(client sign "$W/msg.eml" example.test)
printf '%s\n' "$out" >"$W/sig2.txt"
sig_has "$W/sig2.txt" new1 && ok "SignMessage signs with s=new1 after the rotation" ||
        bad "no s=new1: $out"
sig_has "$W/sig2.txt" old1 && bad "old1 still signs" || ok "old1 no longer signs"
sig_has "$W/sig2.txt" sel1 && ok "the Ed25519 key sel1 still signs" || bad "sel1 gone: $out"
cat "$W/sig2.txt" "$W/msg.eml" >"$W/rotated.eml"
out=$(client verify "$W/rotated.eml" client_ip="$DNS_TB_MX_IP" helo=mx.example.test mail_from=alice@example.test)
grep -q '^dkim example.test new1 pass' <<<"$out" && ok "the new1 signature verifies against DNS" ||
        bad "verify after the rotation: $out"

# ---- teardown ---------------------------------------------------------------------------------
MAINPID=$(prop MainPID)
su_stop
left=$(su_cgroup_procs)
[ -z "$left" ] && ok "no process left in the manager's cgroup" || bad "left behind: $left"
[ -n "$MAINPID" ] && [ "$MAINPID" != 0 ] && [ -e "/proc/$MAINPID" ] && bad "daemon $MAINPID still exists"
n=$(exits | wc -l)
bad_exits=$(exits | grep -vx 'success exited 0')
[ "$n" = 4 ] && [ -z "$bad_exits" ] && ok "all 4 instances ended with status 0 (idle, restart, rotation, stop)" ||
        bad "instances ended: $(exits | tr '\n' ';')"
errs=$(grep -E "^<[0-3]>.*$UNIT|$UNIT.*(Failed|failed)" "$SU_LOG")
[ -z "$errs" ] && ok "the manager logged no error for $UNIT" || bad "the manager logged: $errs"
echo "note: $(($(ms) - t_start)) ms in all"

echo "$PASS passed, $FAILS failed"
[ $FAILS = 0 ] || exit 1
exit 0
