#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsec-authd's limits, hit for real: mailsec-authd on a private bus, its only DNS
# server a small program on loopback that reads every query (UDP and TCP) and answers
# none, until the test tells it to answer NXDOMAIN to everything. Checked:
#
#   CheckTimeoutSec=   CheckSpf and VerifyMessage fail with org.freedesktop.DBus.Error.Timeout
#                      after it, not before and not much later; the statistics count the
#                      calls and no completed checks
#   MaxPendingChecks=  with two checks pending a third fails at once with
#                      ch.webtrend.Mailsec.Auth1.Error.Busy; once they ended calls go
#                      through again
#   a lost caller      a client that leaves the bus before its answer: authd drops the
#                      check (no crash), answers the next client and still exits on idle
#   MaxMessageSize=    a larger message is refused with ...Auth1.Error.BadMessage; one
#                      of exactly that size is accepted
#   SIGTERM            with a check pending: authd gives up its bus name at once (new
#                      calls would wait for the next activation), still answers the
#                      pending call itself, and exits 0 after it
#
# Environment: MAILSEC_AUTHD, AUTHD_CLIENT, MT_LIB_DIR. Exit status: 0 pass, 1 fail, 77 skipped.
set -u -o pipefail

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# shellcheck source=tests/lib/private-bus.sh
. "$MT_LIB_DIR/private-bus.sh"

DNS_IP=127.0.67.53

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (a DNS server on port 53)"; exit 77; }
mt_need dbus-daemon busctl "$MT_PYTHON" timeout
for v in MAILSEC_AUTHD AUTHD_CLIENT; do
        [ -x "${!v:-}" ] || { echo "SKIP: $v is not built"; exit 77; }
done

PASS=0
FAILS=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

W=$(mktemp -d /tmp/mailsec-authd-limits.XXXXXX)
chmod 711 "$W"
AUTHD_PID=
cleanup() {
        local rc=$?
        [ -n "$AUTHD_PID" ] && { kill "$AUTHD_PID" 2>/dev/null; wait "$AUTHD_PID" 2>/dev/null; }
        mt_kill_pidfile "$W/dns.pid"
        bus_stop "$W/bus"
        if [ "${MT_KEEP:-0}" = 1 ]; then
                echo "state kept in $W"
        else
                rm -rf "$W"
        fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The DNS server: silent while $W/answer does not exist, NXDOMAIN for everything once it
# does. Counts the queries it read in $W/dns.count.
cat >"$W/dns.py" <<'PY'
import os, select, socket, struct, sys

ip, state = sys.argv[1], sys.argv[2]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
udp.bind((ip, 53))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((ip, 53))
tcp.listen(16)
conns = {}
count = 0
open(state + "/dns.ready", "w").close()

def nxdomain(q):
    # header and question only (no OPT record): QR RD RA, NXDOMAIN
    if len(q) < 12:
        return None
    o = 12
    while o < len(q) and q[o] != 0:
        o += 1 + q[o]
    o += 5
    if o > len(q):
        return None
    flags = 0x8000 | (struct.unpack(">H", q[2:4])[0] & 0x0100) | 0x0080 | 3
    return q[:2] + struct.pack(">HHHHH", flags, 1, 0, 0, 0) + q[12:o]

def note():
    global count
    count += 1
    with open(state + "/dns.count", "w") as f:
        f.write("%d\n" % count)

while True:
    r, _, _ = select.select([udp, tcp] + list(conns), [], [], 1.0)
    answering = os.path.exists(state + "/answer")
    for s in r:
        if s is udp:
            q, peer = udp.recvfrom(65535)
            note()
            a = nxdomain(q) if answering else None
            if a:
                udp.sendto(a, peer)
        elif s is tcp:
            c, _ = tcp.accept()
            conns[c] = b""
        else:
            try:
                d = s.recv(65535)
            except OSError:
                d = b""
            if not d:
                s.close()
                del conns[s]
                continue
            conns[s] += d
            while len(conns[s]) >= 2 and len(conns[s]) >= 2 + struct.unpack(">H", conns[s][:2])[0]:
                n = struct.unpack(">H", conns[s][:2])[0]
                q, conns[s] = conns[s][2:2 + n], conns[s][2 + n:]
                note()
                a = nxdomain(q) if answering else None
                if a:
                    s.sendall(struct.pack(">H", len(a)) + a)
PY
"$MT_PYTHON" "$W/dns.py" "$DNS_IP" "$W" 2>"$W/dns.log" &
echo $! >"$W/dns.pid"
for ((i = 0; i < 50; i++)); do
        [ -e "$W/dns.ready" ] && break
        sleep 0.1
done
[ -e "$W/dns.ready" ] || { cat "$W/dns.log"; echo "FAIL: the DNS server did not start"; exit 1; }

bus_start "$W/bus" || { echo "FAIL: the private bus did not start"; exit 1; }

NAME=ch.webtrend.Mailsec.Auth1
OBJ=/ch/webtrend/Mailsec/Auth1
IFACE=$NAME.Manager

# write_conf FILE CHECK-TIMEOUT IDLE-TIMEOUT
write_conf() {
        cat >"$1" <<EOF
[Resolver]
Servers=$DNS_IP:53
TimeoutSec=20s

[Authentication]
AuthservId=mx.receiver.test

[Service]
CheckTimeoutSec=$2
IdleTimeoutSec=$3
MaxPendingChecks=2
MaxMessageSize=1K
EOF
}

# start_authd CONF LOG
start_authd() {
        "$MAILSEC_AUTHD" --config="$1" --log-level=debug 2>"$2" &
        AUTHD_PID=$!
        for ((i = 0; i < 100; i++)); do
                busctl --system --timeout=1 status "$NAME" >/dev/null 2>&1 && return 0
                kill -0 "$AUTHD_PID" 2>/dev/null || break
                sleep 0.05
        done
        cat "$2"
        echo "FAIL: $NAME did not appear"
        exit 1
}

stat_of() { busctl --system --timeout=5 get-property "$NAME" "$OBJ" "$IFACE" "$1" 2>/dev/null | awk '{print $2}'; }
ms() { echo $(($(date +%s%N) / 1000000)); }

# A message of exactly 1024 octets, one of 1025, and a DKIM-signed-looking one (its key
# lookup never ends either).
msg_head='From: Alice <alice@example.test>\r\nTo: bob@receiver.test\r\nSubject: limits\r\nMessage-ID: <l1@example.test>\r\n\r\n'
{ printf "$msg_head"; printf 'x%.0s' $(seq 1 200); printf '\r\n'; } >"$W/msg.eml"
size=$(stat -c %s "$W/msg.eml")
{ printf "$msg_head"; head -c $((1024 - size + 200)) /dev/zero | tr '\0' 'y'; printf '\r\n'; } >"$W/exact.eml"
{ cat "$W/exact.eml"; printf 'z'; } >"$W/over.eml"
[ "$(stat -c %s "$W/exact.eml")" = 1024 ] && [ "$(stat -c %s "$W/over.eml")" = 1025 ] ||
        { echo "FAIL: test messages of the wrong size"; exit 1; }

write_conf "$W/authd.conf" 2s 30s
start_authd "$W/authd.conf" "$W/authd.log"
ok "mailsec-authd is up (CheckTimeoutSec=2s, MaxPendingChecks=2, MaxMessageSize=1K)"

# --- CheckTimeoutSec=
t0=$(ms)
out=$("$AUTHD_CLIENT" --timeout=20 spf 127.0.67.99 mx.example.test alice@example.test 2>&1)
t=$(($(ms) - t0))
case $out in "error org.freedesktop.DBus.Error.Timeout:"*) ok "CheckSpf: Timeout after $t ms";;
        *) bad "CheckSpf against a silent server: $out";; esac
[ $t -ge 1800 ] && [ $t -le 6000 ] && ok "CheckSpf's timeout came after 2 s ($t ms)" ||
        bad "CheckSpf's timeout came after $t ms, not about 2 s"

t0=$(ms)
out=$("$AUTHD_CLIENT" --timeout=20 verify "$W/msg.eml" client_ip=127.0.67.99 helo=mx.example.test \
        mail_from=alice@example.test 2>&1)
t=$(($(ms) - t0))
case $out in "error org.freedesktop.DBus.Error.Timeout:"*) ok "VerifyMessage: Timeout after $t ms";;
        *) bad "VerifyMessage against a silent server: $out";; esac
[ $t -ge 1800 ] && [ $t -le 6000 ] && ok "VerifyMessage's timeout came after 2 s ($t ms)" ||
        bad "VerifyMessage's timeout came after $t ms, not about 2 s"

# with the SPF result given, DMARC's lookup is what hangs
out=$("$AUTHD_CLIENT" --timeout=20 verify "$W/msg.eml" spf_result=pass mail_from=alice@example.test 2>&1)
case $out in "error org.freedesktop.DBus.Error.Timeout:"*) ok "VerifyMessage (DMARC lookup only): Timeout";;
        *) bad "VerifyMessage with spf_result: $out";; esac

[ "$(cat "$W/dns.count" 2>/dev/null || echo 0)" -ge 3 ] && ok "the server read the queries ($(cat "$W/dns.count"))" ||
        bad "the DNS server saw $(cat "$W/dns.count" 2>/dev/null || echo no) queries"
kill -0 "$AUTHD_PID" 2>/dev/null && ok "authd is still running" || bad "authd died"

total=$(stat_of ChecksTotal)
spf=$(stat_of SpfChecks)
dmarc=$(stat_of DmarcEvaluated)
[ "$total" = 3 ] && ok "ChecksTotal counts the 3 timed-out calls" || bad "ChecksTotal=$total after 3 calls"
[ "$spf" = 0 ] && [ "$dmarc" = 0 ] && ok "no SPF or DMARC evaluation is counted as done" ||
        bad "SpfChecks=$spf DmarcEvaluated=$dmarc after timeouts only"

# --- MaxPendingChecks=2: three calls sent in order on one connection
t0=$(ms)
"$AUTHD_CLIENT" --parallel=3 --timeout=20 spf 127.0.67.99 mx.example.test alice@example.test >"$W/par.out" 2>&1
t=$(($(ms) - t0))
sed 's/^/    /' "$W/par.out"
busy=$(grep -c "error $NAME.Error.Busy:" "$W/par.out")
tmo=$(grep -c 'error org.freedesktop.DBus.Error.Timeout:' "$W/par.out")
[ "$busy" = 1 ] && [ "$tmo" = 2 ] && ok "of 3 concurrent calls 1 is Busy, 2 time out" ||
        bad "3 concurrent calls: $busy Busy, $tmo Timeout"
grep -q "^call 3 ([0-9]* ms): error $NAME.Error.Busy:" "$W/par.out" && ok "the third call is the Busy one" ||
        bad "not the third call was Busy"
busy_ms=$(sed -n "s/^call 3 (\([0-9]*\) ms): error $NAME.Error.Busy:.*/\1/p" "$W/par.out")
[ -n "$busy_ms" ] && [ "$busy_ms" -lt 1500 ] && ok "Busy came at once ($busy_ms ms), while the others were pending" ||
        bad "Busy came after ${busy_ms:-?} ms"
# a fourth call from another client while two are pending is refused too
"$AUTHD_CLIENT" --parallel=2 --timeout=20 spf 127.0.67.99 mx.example.test alice@example.test >"$W/par2.out" 2>&1 &
par2=$!
for ((i = 0; i < 50; i++)); do
        [ "$(stat_of ChecksTotal)" = 7 ] && break
        sleep 0.05
done
out=$("$AUTHD_CLIENT" --timeout=20 spf 127.0.67.99 mx.example.test alice@example.test 2>&1)
case $out in "error $NAME.Error.Busy:"*) ok "a call from another client while 2 are pending: Busy";;
        *) bad "another client while 2 are pending: $out";; esac
wait $par2
[ "$(grep -c 'Error.Timeout' "$W/par2.out")" = 2 ] && ok "the two pending calls then time out" ||
        bad "the two pending calls: $(cat "$W/par2.out")"

total=$(stat_of ChecksTotal)
[ "$total" = 7 ] && ok "ChecksTotal counts accepted calls only (7), not the Busy ones" ||
        bad "ChecksTotal=$total, expected 7"

# after they ended: calls go through again (the server now answers NXDOMAIN: SPF none)
touch "$W/answer"
"$AUTHD_CLIENT" --parallel=2 --timeout=20 spf 127.0.67.99 mx.example.test alice@nowhere.test >"$W/par3.out" 2>&1
[ "$(grep -c '): spf none$' "$W/par3.out")" = 2 ] && ok "after the pending calls ended, 2 concurrent calls succeed" ||
        bad "after the pending calls: $(cat "$W/par3.out")"
spf=$(stat_of SpfChecks)
[ "$spf" = 2 ] && ok "SpfChecks counts the 2 completed evaluations" || bad "SpfChecks=$spf, expected 2"

# --- MaxMessageSize=1K
out=$("$AUTHD_CLIENT" verify "$W/over.eml" spf_result=pass mail_from=alice@example.test 2>&1)
case $out in "error $NAME.Error.BadMessage:"*MaxMessageSize=1024*) ok "1025 octets: BadMessage ($out)";;
        *) bad "a message over MaxMessageSize=: $out";; esac
out=$("$AUTHD_CLIENT" verify "$W/exact.eml" spf_result=pass mail_from=alice@example.test 2>&1)
case $out in *"dmarc none"*) ok "exactly 1024 octets are accepted (dmarc none)";; *) bad "1024 octets: $out";; esac
kill -0 "$AUTHD_PID" 2>/dev/null && ok "authd is still running" || bad "authd died"

kill "$AUTHD_PID"; wait "$AUTHD_PID" 2>/dev/null; AUTHD_PID=

# --- a lost caller: CheckTimeoutSec= far away, so only dropping the check lets authd go idle
rm -f "$W/answer"
write_conf "$W/lost.conf" 60s 2s
start_authd "$W/lost.conf" "$W/lost.log"
before=$(cat "$W/dns.count" 2>/dev/null || echo 0)
# stays on the bus until authd has taken the call and asked DNS, then leaves
out=$("$AUTHD_CLIENT" --leave-after=700 verify "$W/msg.eml" client_ip=127.0.67.99 helo=mx.example.test \
        mail_from=alice@example.test 2>&1)
[ "$out" = sent ] || bad "--leave-after: $out"
for ((i = 0; i < 50; i++)); do
        grep -q 'caller left the bus' "$W/lost.log" && break
        sleep 0.1
done
grep -q 'caller left the bus' "$W/lost.log" && ok "authd noticed that the caller left and dropped the check" ||
        bad "no sign that the check of the lost caller was dropped"
[ "$(cat "$W/dns.count" 2>/dev/null || echo 0)" -gt "$before" ] && ok "the lost caller's check had started its lookup" ||
        bad "the lost caller's check never asked DNS"
kill -0 "$AUTHD_PID" 2>/dev/null && ok "authd survived the lost caller" || bad "authd died after the lost caller"
# callers gone before authd even reads their calls, and two pending ones lost at once
"$AUTHD_CLIENT" --no-wait verify "$W/msg.eml" client_ip=127.0.67.99 helo=mx.example.test >/dev/null 2>&1
"$AUTHD_CLIENT" --no-wait --parallel=3 spf 127.0.67.99 mx.example.test alice@example.test >/dev/null 2>&1
"$AUTHD_CLIENT" --leave-after=500 --parallel=2 spf 127.0.67.99 mx.example.test alice@example.test >/dev/null 2>&1
sleep 0.3
kill -0 "$AUTHD_PID" 2>/dev/null && ok "authd survived callers that left at once" || bad "authd died after lost callers"
touch "$W/answer"
out=$("$AUTHD_CLIENT" --timeout=20 spf 127.0.67.99 mx.example.test alice@nowhere.test 2>&1)
case $out in "spf none") ok "another client's call afterwards works (spf none)";; *) bad "the call after the lost caller: $out";; esac
t0=$(ms)
for ((i = 0; i < 150; i++)); do
        kill -0 "$AUTHD_PID" 2>/dev/null || break
        sleep 0.1
done
t=$(($(ms) - t0))
if kill -0 "$AUTHD_PID" 2>/dev/null; then
        bad "authd still runs 15 s later: the lost callers' checks are kept (IdleTimeoutSec=2s)"
else
        wait "$AUTHD_PID"; rc=$?; AUTHD_PID=
        [ $rc = 0 ] && ok "authd exits on idle ($t ms after the last call), status 0" ||
                bad "authd exit status $rc"
        [ $t -lt 10000 ] && ok "idle exit did not wait for CheckTimeoutSec=60s" || bad "idle exit took $t ms"
fi
grep -q 'timed out waiting for DNS' "$W/lost.log" && bad "a dropped check timed out later" ||
        ok "no dropped check reached its timeout"

# --- SIGTERM with a check pending: the name goes at once, the call is still answered
# CheckTimeoutSec=8s: long enough that the check is still pending when SIGTERM comes,
# also on a loaded machine where the call takes a while to reach DNS.
rm -f "$W/answer"
write_conf "$W/term.conf" 8s 60s
start_authd "$W/term.conf" "$W/term.log"
before=$(cat "$W/dns.count" 2>/dev/null || echo 0)
"$AUTHD_CLIENT" --timeout=30 spf 127.0.67.99 mx.example.test alice@example.test >"$W/term.out" 2>&1 &
client=$!
seen=no
for ((i = 0; i < 200; i++)); do
        [ "$(cat "$W/dns.count" 2>/dev/null || echo 0)" -gt "$before" ] && { seen=yes; break; }
        sleep 0.05
done
[ $seen = yes ] || bad "the check did not reach its DNS lookup within 10 s"
t0=$(ms)
kill -TERM "$AUTHD_PID"
owner=yes
for ((i = 0; i < 40; i++)); do
        busctl --system --timeout=1 call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s "$NAME" 2>/dev/null | grep -q '^b false' && { owner=no; break; }
        sleep 0.05
done
t=$(($(ms) - t0))
[ $owner = no ] && ok "after SIGTERM the bus name is gone within $t ms" || bad "authd still owns $NAME 2 s after SIGTERM"
kill -0 "$AUTHD_PID" 2>/dev/null && ok "authd is still there for the pending check" ||
        bad "authd left before answering its pending check"
wait "$client"
out=$(cat "$W/term.out")
case $out in "error org.freedesktop.DBus.Error.Timeout: The DNS lookups did not finish in time.")
        ok "the pending call was answered by authd: ${out#error }";;
        *) bad "the pending call after SIGTERM got: $out";; esac
for ((i = 0; i < 100; i++)); do
        kill -0 "$AUTHD_PID" 2>/dev/null || break
        sleep 0.05
done
if kill -0 "$AUTHD_PID" 2>/dev/null; then
        bad "authd still runs 5 s after its last check ended"
else
        wait "$AUTHD_PID"; rc=$?; AUTHD_PID=
        [ $rc = 0 ] && ok "authd exits 0 once the check is answered" || bad "authd exit status $rc after SIGTERM"
fi
grep -q 'Received SIGTERM, finishing the work in hand' "$W/term.log" && ok "the log says why it stops" ||
        bad "no SIGTERM line in the log"

echo "$PASS passed, $FAILS failed"
if [ $FAILS != 0 ]; then
        echo "--- mailsec-authd log (tail)"
        tail -n 40 "$W/authd.log"
        echo "--- second instance"
        tail -n 40 "$W/lost.log"
        exit 1
fi
exit 0
