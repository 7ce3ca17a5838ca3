#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsecctl auth spf|dmarc|verify and dkim rotate against real DNSSEC: the example.test
# zone of tests/lib/dns-testbed.sh (nsd + validating unbound on 127.0.63.0/24), which
# publishes "v=spf1 ip4:$DNS_TB_MX_IP -all", "v=DMARC1; p=reject; ..." and RFC 8463's
# Ed25519 key as sel1._domainkey. Messages are signed with that key (RFC 8463 A.1).
# For rotate, a new key record is added to example.test, the zone re-signed with the
# testbed's key and nsd restarted; rotate's drop-in then switches a mailsec-authd on a
# private bus from the RSA selector old1 to new1 (with MAILSEC_AUTHD and AUTHD_CLIENT).
#
# Needs root (port 53), nsd, unbound, ldnsutils, dig, openssl, python3; skips (77) otherwise.
# Env: MAILSECCTL, CTL_HELPER, MT_LIB_DIR; MT_KEEP=1 keeps the state directory.

set -uo pipefail
MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "$0")/../lib" && pwd)}
. "$MT_LIB_DIR/lib.sh"
. "$MT_LIB_DIR/dns-testbed.sh"
. "$MT_LIB_DIR/private-bus.sh"

if [ "$(id -u)" != 0 ]; then
        echo "SKIP: needs root (nsd and unbound listen on port 53)"
        exit 77
fi
mt_need nsd nsd-checkconf unbound unbound-checkconf ldns-keygen ldns-signzone ldns-key2ds dig timeout openssl python3
CTL=${MAILSECCTL:?}
HELPER=${CTL_HELPER:?}
RES=$DNS_TB_RESOLVER_IP:53

T=$(mktemp -d /tmp/mailsec-ctl-dns.XXXXXX)
cleanup() {
        dns_testbed_stop "$T"
        if [ "${MT_KEEP:-0}" = 1 ]; then echo "state kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

if ! dns_testbed_start "$T"; then
        echo "FAIL: the DNS testbed did not start"
        exit 1
fi

fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok - $*"; }
bad() { fails=$((fails + 1)); echo "not ok - $*"; }
run() { # run WANT DESC CMD...: output in $T/out
        local want=$1 desc=$2 rc
        shift 2
        timeout 60 "$@" >"$T/out" 2>"$T/err"
        rc=$?
        if [ "$rc" = "$want" ]; then ok "$desc (exit $rc)"; else bad "$desc: exit $rc, want $want"; cat "$T/out" "$T/err"; fi
}
field() { # field KEY [SUBKEY INDEX]: a value of the JSON in $T/out
        python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[int(k)] if k.isdigit() else v[k]
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$T/out" "$@"
}
expect() { # expect DESC WANT KEY...
        local desc=$1 want=$2 got
        shift 2
        got=$(field "$@" 2>&1)
        if [ "$got" = "$want" ]; then ok "$desc: $got"; else bad "$desc: got '$got', want '$want'"; cat "$T/out"; fi
}

# SPF
run 0 "auth spf, allowed address" "$CTL" --json auth spf --ip "$DNS_TB_MX_IP" --helo mx.example.test --mail-from alice@example.test --resolver "$RES"
expect "spf allowed" pass result
expect "spf mechanism" "ip4:$DNS_TB_MX_IP" mechanism
if grep -q "^pass .*client-ip=$DNS_TB_MX_IP" < <(field received-spf); then ok "Received-SPF value"; else bad "Received-SPF: $(field received-spf)"; fi
run 0 "auth spf, other address" "$CTL" --json auth spf --ip 192.0.2.99 --helo mx.example.test --mail-from alice@example.test --resolver "$RES"
expect "spf other" fail result
if [ "$(field explanation)" != null ]; then ok "fail has an explanation"; else bad "no explanation"; fi
run 0 "auth spf, text output" "$CTL" auth spf --ip 192.0.2.99 --helo mx.example.test --mail-from alice@example.test --resolver "$RES"
if grep -qx ' *result: fail' "$T/out"; then ok "text output aligned key: value"; else bad "text output"; cat "$T/out"; fi
run 0 "auth spf, bogus domain is temperror (still exit 0)" "$CTL" --json auth spf --ip 192.0.2.99 --helo mx.bogus.test --mail-from a@bogus.test --resolver "$RES"
expect "spf bogus" temperror result

# DMARC
run 0 "auth dmarc example.test" "$CTL" --json auth dmarc example.test --resolver "$RES"
expect "dmarc policy" reject p
expect "dmarc found at" from-domain found-at
expect "dmarc rua" mailto:dmarc@example.test rua 0
run 0 "auth dmarc for a subdomain" "$CTL" --json auth dmarc sub.example.test --resolver "$RES"
expect "subdomain policy from the organizational domain" organizational-domain found-at
expect "subdomain policy" reject policy
run 0 "auth dmarc plain.test (no record)" "$CTL" --json auth dmarc plain.test --resolver "$RES"
expect "no record" none status

# verify: a message signed with the testbed's key (RFC 8463 A.1)
(printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'; printf 'nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=' | base64 -d) |
        openssl pkey -inform DER -out "$T/sel1.pem" 2>/dev/null
printf 'From: Alice <alice@example.test>\r\nTo: bob@example.org\r\nSubject: test\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHello.\r\n' >"$T/msg"
if "$HELPER" sign "$T/sel1.pem" example.test sel1 <"$T/msg" >"$T/signed"; then ok "message signed"; else bad "signing"; fi
run 0 "auth verify, signed message" "$CTL" --json auth verify "$T/signed" --ip "$DNS_TB_MX_IP" --helo mx.example.test --mail-from alice@example.test --receiver mx.example.org --resolver "$RES"
expect "dkim pass" pass dkim 0 result
expect "dkim domain" example.test dkim 0 domain
expect "dkim selector" sel1 dkim 0 selector
expect "spf in verify" pass spf
expect "dmarc pass" pass dmarc
expect "dmarc policy" reject dmarc-policy
expect "dmarc disposition" none dmarc-disposition
expect "arc" none arc
if grep -q '^ *mx.example.org; spf=pass .*dkim=pass .*header.d=example.test.*dmarc=pass' < <(field auth-results); then ok "Authentication-Results value"; else bad "A-R: $(field auth-results)"; fi
sed 's/^Hello\./Hello!/' "$T/signed" >"$T/tampered"
run 0 "auth verify, tampered body" "$CTL" --json auth verify "$T/tampered" --resolver "$RES"
expect "dkim fail" fail dkim 0 result
expect "dmarc fail" fail dmarc
expect "dmarc disposition" reject dmarc-disposition
run 0 "auth verify from stdin, text" "$CTL" auth verify - --resolver "$RES" <"$T/signed"
if grep -qx ' *dkim\[1\] result: pass' "$T/out"; then ok "text output per signature"; else bad "text output"; cat "$T/out"; fi

# switch_test: mailsec-authd reads authd.conf (RSA old1 and Ed25519 sel1 for example.test)
# and rotate's drop-in in authd.conf.d, with $T/creds as $CREDENTIALS_DIRECTORY the way
# LoadCredential=dkim:DIR names the files of DIR. It must sign with new1 instead of old1,
# keep sel1, and its own verification of the result must pass.
switch_test() {
        local pid out i
        if [ -z "${MAILSEC_AUTHD:-}" ] || [ -z "${AUTHD_CLIENT:-}" ]; then
                echo "# mailsec-authd not built: the switch itself is not checked"
                return 0
        fi
        "$CTL" dkim keygen --domain example.test --selector old1 --output "$T" >/dev/null || { bad "keygen old1"; return 0; }
        mkdir -p "$T/creds"
        cp "$T/new1.example.test.pem" "$T/creds/dkim_new1.example.test.pem"
        printf '[Resolver]\nServers=%s\n\n[Authentication]\nAuthservId=mx.example.org\n\n[Signing]\nKey=example.test:old1:rsa:%s\nKey=example.test:sel1:ed25519:%s\n' \
                "$RES" "$T/old1.example.test.pem" "$T/sel1.pem" >"$T/authd.conf"
        bus_start "$T/bus" || { bad "private bus"; return 0; }
        CREDENTIALS_DIRECTORY=$T/creds "$MAILSEC_AUTHD" --config="$T/authd.conf" --log-level=debug 2>"$T/authd.log" &
        pid=$!
        for ((i = 0; i < 100; i++)); do
                busctl --system status ch.webtrend.Mailsec.Auth1 >/dev/null 2>&1 && break
                sleep 0.05
        done
        if "$AUTHD_CLIENT" sign "$T/msg" example.test >"$T/sigs" 2>&1; then
                grep -q 's=new1;' "$T/sigs" && ok "authd signs with new1 after the switch" || bad "no s=new1: $(cat "$T/sigs")"
                grep -q 's=old1;' "$T/sigs" && bad "authd still signs with old1" || ok "old1 no longer signs"
                grep -q 's=sel1;' "$T/sigs" && ok "the Ed25519 selector sel1 still signs" || bad "sel1 gone: $(cat "$T/sigs")"
                grep -qi "replace" "$T/authd.log" && ok "authd logs which Key= line replaced which" ||
                        bad "no replacement in the log: $(grep -i key "$T/authd.log" | head -5)"
                cat "$T/sigs" "$T/msg" >"$T/rotated.eml"
                out=$("$AUTHD_CLIENT" verify "$T/rotated.eml" 2>&1)
                grep -q '^dkim example.test new1 pass' <<<"$out" && ok "the new1 signature verifies against DNS" ||
                        bad "verify after the switch: $out"
        else
                bad "SignMessage after the switch: $(cat "$T/sigs")"; tail -5 "$T/authd.log"
        fi
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        bus_stop "$T/bus"
}

# dkim rotate: refused while absent, refused for another key, accepted once published
"$CTL" dkim keygen --domain example.test --selector new1 --output "$T" >/dev/null || bad "keygen"
ROT=(--resolver "$RES" --config-dir "$T/authd.conf.d" --key-dir "$T" --no-restart)
run 1 "rotate refused: record absent" "$CTL" --json dkim rotate --domain example.test --new-selector new1 --key "$T/new1.example.test.pem" "${ROT[@]}"
expect "absent" absent status
if grep -q 'does not publish this key' "$T/err"; then ok "clear message"; else bad "message: $(cat "$T/err")"; fi
run 1 "rotate refused: another key at sel1" "$CTL" --json dkim rotate --domain example.test --new-selector sel1 --key "$T/new1.example.test.pem" "${ROT[@]}"
if [ ! -e "$T/authd.conf.d" ]; then ok "refused rotations switch nothing"; else bad "a refused rotation wrote $(ls "$T/authd.conf.d")"; fi
expect "different" different-key status
run 0 "rotate accepted for sel1's own key (--no-switch)" "$CTL" --json dkim rotate --domain example.test --new-selector sel1 --key "$T/sel1.pem" "${ROT[@]}" --no-switch
expect "visible" visible status
expect "secure" secure dnssec

# publish new1, re-sign example.test with the testbed's key, restart nsd
zone_line=$("$CTL" --json dkim record --key "$T/new1.example.test.pem" --domain example.test --selector new1 |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["zone"])')
printf '%s\n' "$zone_line" >>"$T/zones/example.test.zone"
kex=$(cd "$T/keys" && ls K*example.test*.private | head -1)
if ldns-signzone -f "$T/zones/example.test.signed" "$T/zones/example.test.zone" "$T/keys/${kex%.private}" >/dev/null 2>&1 &&
   mt_kill_pidfile "$T/nsd.pid" && nsd -c "$T/nsd.conf"; then
        run 0 "rotate accepted once published (--wait)" "$CTL" --json dkim rotate --domain example.test --new-selector new1 --key "$T/new1.example.test.pem" "${ROT[@]}" --wait 40
        expect "visible" visible status
        expect "key line: the credential of a file in --key-dir" "Key=example.test:new1:rsa:dkim_new1.example.test.pem" key-line
        expect "drop-in" "$T/authd.conf.d/90-dkim-example.test-rsa.conf" drop-in
        expect "restart" not-requested restart
        if grep -qx 'Key=example.test:new1:rsa:dkim_new1.example.test.pem' "$T/authd.conf.d/90-dkim-example.test-rsa.conf" &&
           grep -qx '\[Signing\]' "$T/authd.conf.d/90-dkim-example.test-rsa.conf"; then
                ok "the drop-in holds the Key= line under [Signing]"
        else
                bad "drop-in: $(cat "$T/authd.conf.d/90-dkim-example.test-rsa.conf" 2>&1)"
        fi
        switch_test
        run 0 "rotate with a key outside --key-dir" "$CTL" --json dkim rotate --domain example.test --new-selector new1 --key "$T/new1.example.test.pem" --resolver "$RES" --config-dir "$T/authd.conf.d" --no-restart
        expect "key line: an absolute path" "Key=example.test:new1:rsa:$T/new1.example.test.pem" key-line
else
        bad "could not publish the new record"
fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
