#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsec-authd against real DNS: the DNSSEC test zone of tests/lib/dns-testbed.sh
# (nsd + validating unbound on loopback) serves example.test with SPF
# ("v=spf1 ip4:<MX address> -all"), DMARC (p=reject) and the Ed25519 DKIM key of
# RFC 8463 at sel1._domainkey. mailsec-authd runs on a private bus standing in
# for the system bus; busctl and authd-client (sealed memfds) call it.
#
# Environment: MAILSEC_AUTHD, AUTHD_CLIENT, CHECK_INTERFACES, AUTHD_XML, MT_LIB_DIR.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -u -o pipefail

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# Addresses of our own, so that the dns suite's test bed may run at the same time.
export DNS_TB_AUTH_IP=127.0.64.1 DNS_TB_RESOLVER_IP=127.0.64.2 DNS_TB_MX_IP=127.0.64.25
# shellcheck source=tests/lib/dns-testbed.sh
. "$MT_LIB_DIR/dns-testbed.sh"
# shellcheck source=tests/lib/private-bus.sh
. "$MT_LIB_DIR/private-bus.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (DNS servers on loopback, calls as nobody)"; exit 77; }
mt_need nsd unbound ldns-keygen ldns-signzone ldns-key2ds dig dbus-daemon busctl setpriv openssl
for v in MAILSEC_AUTHD AUTHD_CLIENT; do
        [ -x "${!v:-}" ] || { echo "SKIP: $v is not built"; exit 77; }
done

PASS=0
FAILS=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

W=$(mktemp -d /tmp/mailsec-authd-test.XXXXXX)
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
chmod 711 "$W/bus"
chmod 666 "$W/bus/bus"

# Keys: the RFC 8463 Ed25519 key (its public half is published at sel1) as a file, and
# an RSA key with no record (selector rsa1) as a credential.
python3 - >"$W/ed25519.pem" <<'PY'
import base64
seed = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
der = bytes.fromhex("302e020100300506032b657004220420") + seed
print("-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----")
PY
mkdir -p "$W/creds"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/creds/rsa1.pem" 2>/dev/null ||
        { echo "FAIL: openssl genpkey"; exit 1; }

cat >"$W/authd.conf" <<EOF
[Resolver]
Servers=$DNS_TB_RESOLVER_IP:53
TimeoutSec=2s

[Authentication]
AuthservId=mx.receiver.test

[Signing]
Key=example.test:sel1:ed25519:$W/ed25519.pem
Key=example.test:rsa1:rsa:rsa1.pem

[Service]
IdleTimeoutSec=5min
EOF

CREDENTIALS_DIRECTORY=$W/creds "$MAILSEC_AUTHD" --config="$W/authd.conf" --check-config >"$W/check.log" 2>&1 &&
        ok "--check-config accepts the configuration" || { cat "$W/check.log"; bad "--check-config"; }
printf '[Signing]\nKey=example.test:sel9:rsa:%s\n' "$W/ed25519.pem" >"$W/bad.conf"
"$MAILSEC_AUTHD" --config="$W/bad.conf" --check-config >"$W/bad.log" 2>&1 &&
        bad "--check-config accepted an Ed25519 key declared as rsa" ||
        ok "--check-config refuses a key of the wrong type ($(tail -n 1 "$W/bad.log"))"

CREDENTIALS_DIRECTORY=$W/creds "$MAILSEC_AUTHD" --config="$W/authd.conf" --log-level=debug 2>"$W/authd.log" &
AUTHD_PID=$!
NAME=ch.webtrend.Mailsec.Auth1
OBJ=/ch/webtrend/Mailsec/Auth1
IFACE=$NAME.Manager
for ((i = 0; i < 100; i++)); do
        busctl --system status "$NAME" >/dev/null 2>&1 && break
        sleep 0.05
done
busctl --system status "$NAME" >/dev/null 2>&1 || { cat "$W/authd.log"; echo "FAIL: $NAME did not appear"; exit 1; }
ok "$NAME is on the bus"

call() { busctl --system --timeout=30 call "$NAME" "$OBJ" "$IFACE" "$@" 2>&1; }

# SPF
out=$(call CheckSpf ssst "$DNS_TB_MX_IP" mx.example.test someone@example.test 0)
case $out in 'sss "pass"'*) ok "SPF pass for $DNS_TB_MX_IP";; *) bad "SPF for $DNS_TB_MX_IP: $out";; esac
case $out in *'client-ip='"$DNS_TB_MX_IP"*'receiver=mx.receiver.test'*) ok "Received-SPF names client and receiver";;
        *) bad "Received-SPF: $out";; esac
out=$(call CheckSpf ssst 127.0.64.99 mx.example.test someone@example.test 0)
case $out in 'sss "fail"'*) ok "SPF fail for 127.0.64.99";; *) bad "SPF for 127.0.64.99: $out";; esac
out=$(call CheckSpf ssst 127.0.64.99 mx.plain.test someone@plain.test 0)
case $out in 'sss "softfail"'*) ok "SPF softfail for plain.test";; *) bad "SPF for plain.test: $out";; esac
out=$(call CheckSpf ssst 127.0.64.99 mx.nowhere.test someone@nowhere.test 0)
case $out in 'sss "none"'*) ok "SPF none for a domain that does not exist";; *) bad "SPF none: $out";; esac
out=$(call CheckSpf ssst "$DNS_TB_MX_IP" mx.example.test someone@example.test 1)
case $out in *InvalidArgs*|*"Unknown flags"*) ok "unknown flags refused";; *) bad "flags=1: $out";; esac
out=$(call CheckSpf ssst 300.1.2.3 mx.example.test someone@example.test 0)
case $out in *"Invalid client_ip"*) ok "a bad address is refused";; *) bad "bad address: $out";; esac

# the sender check: nobody is refused by the daemon (the private bus lets it through)
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS")
out=$("${as_nobody[@]}" busctl --system --timeout=10 call "$NAME" "$OBJ" "$IFACE" \
        CheckSpf ssst "$DNS_TB_MX_IP" mx.example.test a@example.test 0 2>&1)
case $out in *"Access denied"*|*AccessDenied*|*"ermission denied"*) ok "nobody is refused: $out";;
        *) bad "nobody got: $out";; esac
out=$("${as_nobody[@]}" busctl --system --timeout=10 get-property "$NAME" "$OBJ" "$IFACE" Version 2>&1)
case $out in 's "'*) ok "nobody may read properties";; *) bad "nobody reading Version: $out";; esac

# DKIM sign, then verify
printf 'From: Alice <alice@example.test>\r\nTo: bob@receiver.test\r\nSubject: mailsec authd test\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <t1@example.test>\r\n\r\nHello Bob,\r\n\r\nthis message is signed.\r\n' >"$W/msg.eml"
if "$AUTHD_CLIENT" sign "$W/msg.eml" example.test >"$W/sig.txt" 2>&1; then
        n=$(grep -c '^DKIM-Signature:' "$W/sig.txt")
        [ "$n" = 2 ] && ok "SignMessage made 2 signatures (Ed25519 and RSA)" || bad "SignMessage: $n signatures: $(cat "$W/sig.txt")"
        grep -q 'a=ed25519-sha256' "$W/sig.txt" && grep -q 'a=rsa-sha256' "$W/sig.txt" &&
                ok "both algorithms present" || bad "algorithms: $(cat "$W/sig.txt")"
else
        bad "SignMessage: $(cat "$W/sig.txt")"
fi
cat "$W/sig.txt" "$W/msg.eml" >"$W/signed.eml"
out=$("$AUTHD_CLIENT" verify "$W/signed.eml" client_ip="$DNS_TB_MX_IP" helo=mx.example.test \
        mail_from=alice@example.test session=test-1 2>&1)
echo "$out" | sed 's/^/    /'
grep -q '^dkim example.test sel1 pass' <<<"$out" && ok "Ed25519 signature verifies (dkim=pass)" || bad "dkim sel1"
grep -q '^dkim example.test rsa1 permerror' <<<"$out" && ok "RSA signature without a published key: permerror" ||
        bad "dkim rsa1"
grep -q '^dmarc pass reject none' <<<"$out" && ok "DMARC pass (p=reject, disposition none)" || bad "dmarc pass"
grep -q '^arc none' <<<"$out" && ok "no ARC chain: none" || bad "arc none"
ar=$(echo "$out" | sed -n 's/^ar //p')
case $ar in *'mx.receiver.test;'*'spf=pass'*'dkim=pass'*'header.s=sel1'*'dmarc=pass'*'header.from=example.test'*) ok "Authentication-Results carries spf, dkim, dmarc";;
        *) bad "Authentication-Results: $ar";; esac
grep -q 'MAILSEC_SESSION=test-1' "$W/authd.log" && ok "the session is logged as MAILSEC_SESSION=" || bad "no MAILSEC_SESSION= in the log"

# the SPF result given by the caller is used as is
out=$("$AUTHD_CLIENT" verify "$W/signed.eml" client_ip=127.0.64.99 helo=mx.example.test \
        mail_from=alice@example.test spf_result=softfail 2>&1)
case $out in *'spf=softfail'*) ok "spf_result from the envelope is used";; *) bad "spf_result: $out";; esac

# tampered: the body changed after signing; SPF fails too, so DMARC fails
sed 's/signed\./changed./' "$W/signed.eml" >"$W/tampered.eml"
out=$("$AUTHD_CLIENT" verify "$W/tampered.eml" client_ip=127.0.64.99 helo=mx.example.test mail_from=alice@example.test 2>&1)
echo "$out" | sed 's/^/    /'
grep -q '^dkim example.test sel1 fail' <<<"$out" && ok "tampered message: dkim=fail" || bad "tampered dkim"
grep -q '^dmarc fail reject reject' <<<"$out" && ok "tampered message: DMARC fail, disposition reject" || bad "tampered dmarc"

# refusals
out=$("$AUTHD_CLIENT" --unsealed verify "$W/signed.eml" 2>&1)
case $out in *"$NAME.Error.BadMessage"*) ok "an unsealed memfd is refused with BadMessage";; *) bad "unsealed: $out";; esac
out=$("$AUTHD_CLIENT" --flags=4 verify "$W/signed.eml" 2>&1)
case $out in *InvalidArgs*) ok "VerifyMessage refuses unknown flags";; *) bad "verify flags: $out";; esac
out=$("$AUTHD_CLIENT" verify "$W/signed.eml" colour=blue 2>&1)
case $out in *InvalidArgs*) ok "an unknown envelope key is refused";; *) bad "envelope key: $out";; esac
out=$("$AUTHD_CLIENT" sign "$W/msg.eml" example.org 2>&1)
case $out in *"$NAME.Error.NoKey"*) ok "SignMessage without a key for the domain: NoKey";; *) bad "NoKey: $out";; esac
out=$("$AUTHD_CLIENT" --unsealed sign "$W/msg.eml" example.test 2>&1)
case $out in *"$NAME.Error.BadMessage"*) ok "SignMessage refuses an unsealed memfd";; *) bad "sign unsealed: $out";; esac

# ARC: seal the verified message, then the chain validates
if "$AUTHD_CLIENT" seal "$W/signed.eml" "mx.receiver.test; dkim=pass header.d=example.test; dmarc=pass" \
        >"$W/arc.txt" 2>&1 && grep -q '^ARC-Seal:' "$W/arc.txt" && grep -q '^ARC-Message-Signature:' "$W/arc.txt" &&
        grep -q '^ARC-Authentication-Results: i=1;' "$W/arc.txt"; then
        ok "SealArc added ARC set i=1"
        cat "$W/arc.txt" "$W/signed.eml" >"$W/sealed.eml"
        out=$("$AUTHD_CLIENT" verify "$W/sealed.eml" client_ip="$DNS_TB_MX_IP" helo=mx.example.test mail_from=alice@example.test 2>&1)
        grep -q '^arc pass' <<<"$out" && ok "the sealed chain validates (arc=pass)" || bad "arc after sealing: $out"
else
        bad "SealArc: $(cat "$W/arc.txt")"
fi

# statistics
out=$(busctl --system get-property "$NAME" "$OBJ" "$IFACE" ChecksTotal SpfChecks DkimVerified DkimSigned DmarcEvaluated 2>&1)
echo "    $(echo "$out" | tr '\n' ' ')"
mapfile -t stats < <(echo "$out" | awk '{print $2}')
if [ "${stats[0]:-0}" -ge 10 ] && [ "${stats[1]:-0}" -ge 6 ] && [ "${stats[2]:-0}" -ge 6 ] &&
        [ "${stats[3]:-0}" = 2 ] && [ "${stats[4]:-0}" -ge 4 ]; then
        ok "statistics count the calls"
else
        bad "statistics: $out"
fi

# live introspection equals the XML
if [ -n "${CHECK_INTERFACES:-}" ] && [ -n "${AUTHD_XML:-}" ]; then
        busctl --system --timeout=5 introspect --xml-interface "$NAME" "$OBJ" >"$W/live.xml" &&
                "$MT_PYTHON" "$CHECK_INTERFACES" compare "$AUTHD_XML" "$W/live.xml" &&
                ok "live introspection equals $(basename "$AUTHD_XML")" || bad "introspection differs"
        sed '0,/type="t"/s//type="u"/' "$AUTHD_XML" >"$W/drift.xml"
        "$MT_PYTHON" "$CHECK_INTERFACES" compare "$W/drift.xml" "$W/live.xml" >/dev/null 2>&1 &&
                bad "drift not detected" || ok "a changed XML is detected as drift"
        busctl --system --timeout=5 introspect --xml-interface "$NAME" /org/freedesktop/LogControl1 2>/dev/null |
                grep -q 'org.freedesktop.LogControl1' && ok "LogControl1 is served" || bad "LogControl1 missing"
fi

kill "$AUTHD_PID"; wait "$AUTHD_PID" 2>/dev/null; AUTHD_PID=

# exit on idle: a second instance with IdleTimeoutSec=1s leaves by itself
sed 's/^IdleTimeoutSec=.*/IdleTimeoutSec=1s/' "$W/authd.conf" >"$W/idle.conf"
CREDENTIALS_DIRECTORY=$W/creds "$MAILSEC_AUTHD" --config="$W/idle.conf" 2>"$W/idle.log" &
AUTHD_PID=$!
for ((i = 0; i < 100; i++)); do busctl --system status "$NAME" >/dev/null 2>&1 && break; sleep 0.05; done
call CheckSpf ssst "$DNS_TB_MX_IP" mx.example.test someone@example.test 0 >/dev/null
for ((i = 0; i < 100; i++)); do kill -0 "$AUTHD_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$AUTHD_PID" 2>/dev/null; then
        bad "still running 10 s after IdleTimeoutSec=1s"
else
        wait "$AUTHD_PID"; rc=$?; AUTHD_PID=
        [ $rc = 0 ] && ok "exits on idle with status 0" || { cat "$W/idle.log"; bad "idle exit status $rc"; }
fi

echo "$PASS passed, $FAILS failed"
if [ $FAILS != 0 ]; then
        echo "--- mailsec-authd log (tail)"
        tail -n 60 "$W/authd.log"
        exit 1
fi
exit 0
