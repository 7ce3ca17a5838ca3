#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Trusted ARC sealers rescuing DMARC (TrustedArcSealers=, RFC 8617 §7.2), against real
# DNS: the DNSSEC test zone of tests/lib/dns-testbed.sh publishes example.test with
# DMARC p=reject and the Ed25519 key of RFC 8463 at sel1._domainkey, the only DKIM key of
# the zone, so example.test both signs the original message and, with the same key,
# seals the ARC set as the intermediary. The message travels like a mailing-list post:
#
#   1. mailsec-authd signs it for example.test (SignMessage);
#   2. the intermediary verifies it (VerifyMessage: dkim=pass, dmarc=pass), adds a
#      subject tag and a footer, which breaks the DKIM signature, and seals an ARC set
#      carrying what it saw (SealArc);
#   3. the receiver verifies it from an address outside example.test's SPF: DKIM and
#      SPF fail, so DMARC fails with p=reject, and the ARC chain validates.
#
# With TrustedArcSealers=example.test the receiver does not apply the policy
# (disposition none, Authentication-Results shows the override, the aggregate-report
# record says local_policy with the sealer's instance, domain and selector); with the
# sealer not trusted, with a broken chain, and with a set that does not carry the DMARC
# pass, the policy is applied.
#
# Environment: MAILSEC_AUTHD, AUTHD_CLIENT, MT_LIB_DIR.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -u -o pipefail

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# Addresses of our own, so that the other DNS test beds may run at the same time.
export DNS_TB_AUTH_IP=127.0.67.1 DNS_TB_RESOLVER_IP=127.0.67.2 DNS_TB_MX_IP=127.0.67.25
# shellcheck source=tests/lib/dns-testbed.sh
. "$MT_LIB_DIR/dns-testbed.sh"
# shellcheck source=tests/lib/private-bus.sh
. "$MT_LIB_DIR/private-bus.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (DNS servers on loopback)"; exit 77; }
mt_need nsd unbound ldns-keygen ldns-signzone ldns-key2ds dig dbus-daemon busctl python3
for v in MAILSEC_AUTHD AUTHD_CLIENT; do
        [ -x "${!v:-}" ] || { echo "SKIP: $v is not built"; exit 77; }
done

PASS=0
FAILS=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

W=$(mktemp -d /tmp/mailsec-authd-arc-test.XXXXXX)
chmod 711 "$W"
AUTHD_PID=
cleanup() {
        local rc=$?
        [ -n "$AUTHD_PID" ] && { kill "$AUTHD_PID" 2>/dev/null; wait "$AUTHD_PID" 2>/dev/null; }
        bus_stop "$W/bus"
        dns_testbed_stop "$W/dns"
        rm -rf "$W"
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dns_testbed_start "$W/dns" || { echo "FAIL: the DNS test bed did not start"; exit 1; }
bus_start "$W/bus" || { echo "FAIL: the private bus did not start"; exit 1; }

# The RFC 8463 Ed25519 key, whose public half the zone publishes at sel1.
python3 - >"$W/ed25519.pem" <<'PY'
import base64
seed = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
der = bytes.fromhex("302e020100300506032b657004220420") + seed
print("-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----")
PY

write_conf() { # write_conf FILE TRUSTED-SEALERS
        cat >"$1" <<EOF
[Resolver]
Servers=$DNS_TB_RESOLVER_IP:53
TimeoutSec=2s

[Authentication]
AuthservId=mx.receiver.test
TrustedArcSealers=$2

[Signing]
Key=example.test:sel1:ed25519:$W/ed25519.pem

[Service]
IdleTimeoutSec=5min
EOF
}

NAME=ch.webtrend.Mailsec.Auth1
start_authd() { # start_authd CONF LOG
        mkdir -p "$W/state"
        STATE_DIRECTORY=$W/state "$MAILSEC_AUTHD" --config="$1" --log-level=debug 2>"$2" &
        AUTHD_PID=$!
        for ((i = 0; i < 100; i++)); do
                busctl --system status "$NAME" >/dev/null 2>&1 && return 0
                sleep 0.05
        done
        cat "$2"
        return 1
}
stop_authd() {
        kill "$AUTHD_PID"
        wait "$AUTHD_PID" 2>/dev/null
        AUTHD_PID=
}

# The record of the newest evaluation in the aggregate-report store, percent-decoded.
last_record() {
        local f
        f=$(ls "$W"/state/dmarc/dmarc-*.log 2>/dev/null | tail -n 1)
        [ -n "$f" ] || return 1
        tail -n 1 "$f" | python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.stdin.read()), end="")'
}
records() { cat "$W"/state/dmarc/dmarc-*.log 2>/dev/null | wc -l; }

write_conf "$W/trusted.conf" "lists.example.net example.test"
write_conf "$W/untrusted.conf" "lists.example.net"
"$MAILSEC_AUTHD" --config="$W/trusted.conf" --check-config >"$W/check.log" 2>&1 &&
        ok "--check-config accepts TrustedArcSealers=" || { cat "$W/check.log"; bad "--check-config"; }
write_conf "$W/bad.conf" "example.test 192.0.2.1"
"$MAILSEC_AUTHD" --config="$W/bad.conf" --check-config >"$W/bad.log" 2>&1 &&
        bad "--check-config accepted an address in TrustedArcSealers=" ||
        ok "--check-config refuses an address in TrustedArcSealers= ($(tail -n 1 "$W/bad.log"))"

start_authd "$W/trusted.conf" "$W/authd.log" || { echo "FAIL: $NAME did not appear"; exit 1; }
ok "$NAME is on the bus (TrustedArcSealers=lists.example.net example.test)"

# 1. the author's domain signs
printf 'From: Alice <alice@example.test>\r\nTo: list@lists.example.test\r\nSubject: meeting\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <arc1@example.test>\r\n\r\nSee you at ten.\r\n' >"$W/msg.eml"
"$AUTHD_CLIENT" sign "$W/msg.eml" example.test >"$W/sig.txt" 2>&1 || { cat "$W/sig.txt"; echo "FAIL: SignMessage"; exit 1; }
cat "$W/sig.txt" "$W/msg.eml" >"$W/signed.eml"

# 2. the intermediary: verify, modify, seal with what it saw
out=$("$AUTHD_CLIENT" verify "$W/signed.eml" client_ip="$DNS_TB_MX_IP" helo=mx.example.test mail_from=alice@example.test 2>&1)
grep -q '^dmarc pass reject none' <<<"$out" && ok "the intermediary sees DMARC pass" || bad "intermediary: $out"
seen=$(echo "$out" | sed -n 's/^ar //p' | sed 's/\\r\\n[[:space:]]*/ /g; s/^ *//')
case $seen in *'dmarc=pass'*'header.from=example.test'*) ok "its Authentication-Results: $seen";;
        *) bad "intermediary Authentication-Results: $seen";; esac
sed -e 's/^Subject: meeting/Subject: [team] meeting/' "$W/signed.eml" >"$W/modified.eml"
printf -- '--\r\nteam mailing list\r\n' >>"$W/modified.eml"

seal() { # seal IN AR OUT
        "$AUTHD_CLIENT" seal "$1" "$2" >"$W/set.txt" 2>&1 && grep -q '^ARC-Seal:' "$W/set.txt" ||
                { cat "$W/set.txt"; return 1; }
        cat "$W/set.txt" "$1" >"$3"
}
seal "$W/modified.eml" "$seen" "$W/sealed.eml" && ok "SealArc sealed the modified message" || bad "SealArc"
grep -q '^ARC-Seal: i=1;.*d=example.test' "$W/sealed.eml" || grep -q 'd=example.test' < <(grep -A3 '^ARC-Seal:' "$W/sealed.eml") ||
        bad "the seal is not by example.test: $(grep -A3 '^ARC-Seal:' "$W/sealed.eml")"

# 3. the receiver, trusting the sealer
verify_at_receiver() { # verify_at_receiver FILE
        "$AUTHD_CLIENT" verify "$1" client_ip=127.0.67.99 helo=lists.example.test \
                mail_from=alice@example.test session=arc-test 2>&1
}
n0=$(records)
out=$(verify_at_receiver "$W/sealed.eml")
echo "$out" | sed 's/^/    /'
grep -q '^dkim example.test sel1 fail' <<<"$out" && ok "the modification broke the DKIM signature" || bad "dkim: $out"
grep -q '^arc pass' <<<"$out" && ok "the ARC chain validates" || bad "arc: $out"
grep -q '^dmarc fail reject none$' <<<"$out" &&
        ok "trusted sealer: DMARC fail, policy reject, disposition none (overridden)" || bad "trusted: $out"
ar=$(echo "$out" | sed -n 's/^ar //p' | sed 's/\\r\\n[[:space:]]*/ /g')
case $ar in *'dmarc=fail reason="local policy override: arc=pass as[1].d=example.test as[1].s=sel1" header.from=example.test'*)
        ok "Authentication-Results keeps dmarc=fail and shows the override";;
        *) bad "Authentication-Results: $ar";; esac
grep -q 'overridden by local policy' "$W/authd.log" && ok "the override is logged" || bad "no override in the log"
rec=$(last_record)
if [ "$(records)" = $((n0 + 1)) ]; then
        case $rec in *'dis=none'*) ok "report record: disposition none";; *) bad "record disposition: $rec";; esac
        case $rec in *'local_policy,arc=pass as[1].d=example.test as[1].s=sel1'*)
                ok "report record: local_policy naming as[1].d=example.test as[1].s=sel1";;
                *) bad "record reason: $rec";; esac
else
        bad "no report record was written ($(records) records, $n0 before)"
fi

# a broken chain never rescues: the body changes after sealing
sed 's/^team mailing list/team mailing list, changed/' "$W/sealed.eml" >"$W/broken.eml"
out=$(verify_at_receiver "$W/broken.eml")
grep -q '^arc fail' <<<"$out" && grep -q '^dmarc fail reject reject$' <<<"$out" &&
        ok "broken chain (arc=fail): policy applied" || bad "broken chain: $out"
case $(last_record) in *local_policy*) bad "broken chain recorded an override";; *) ok "broken chain: no override recorded";; esac

# a trusted set without the DMARC pass never rescues
seal "$W/modified.eml" "lists.example.test; dkim=pass header.d=example.test; dmarc=fail header.from=example.test" \
        "$W/nopass.eml" || bad "SealArc (no pass)"
out=$(verify_at_receiver "$W/nopass.eml")
grep -q '^arc pass' <<<"$out" && grep -q '^dmarc fail reject reject$' <<<"$out" &&
        ok "trusted sealer whose set says dmarc=fail: policy applied" || bad "no pass: $out"
seal "$W/modified.eml" "lists.example.test; dmarc=pass header.from=other.test" "$W/otherfrom.eml" || bad "SealArc (other From)"
out=$(verify_at_receiver "$W/otherfrom.eml")
grep -q '^dmarc fail reject reject$' <<<"$out" &&
        ok "trusted sealer vouching for another From domain: policy applied" || bad "other From: $out"

stop_authd

# the same message at a receiver that does not trust example.test
start_authd "$W/untrusted.conf" "$W/authd2.log" || { echo "FAIL: $NAME did not appear again"; exit 1; }
out=$(verify_at_receiver "$W/sealed.eml")
grep -q '^arc pass' <<<"$out" && grep -q '^dmarc fail reject reject$' <<<"$out" &&
        ok "untrusted sealer: policy applied (disposition reject)" || bad "untrusted: $out"
case $out in *'local policy'*) bad "untrusted: override shown: $out";; *) ok "untrusted: no override in Authentication-Results";; esac
case $(last_record) in *local_policy*) bad "untrusted: override recorded";;
        *'dis=reject'*) ok "untrusted: report record says disposition reject";;
        *) bad "untrusted record: $(last_record)";; esac
stop_authd

echo "$PASS passed, $FAILS failed"
if [ $FAILS != 0 ]; then
        echo "--- mailsec-authd log (tail)"
        tail -n 40 "$W/authd.log"
        exit 1
fi
exit 0
