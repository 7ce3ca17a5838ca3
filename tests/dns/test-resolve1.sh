#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsec's systemd-resolved backend (services/shared/dns/dns-resolve1.c) against the
# real systemd-resolved, validating the DNSSEC test world of tests/lib/dns-testbed.sh.
#
# systemd-resolved runs with DNSSEC=yes, the test world's validating unbound as its only
# server and the private root's DS as its only positive trust anchor, inside a mount
# namespace of its own (unshare -m): a tmpfs on /run holds its runtime directory, its
# configuration drop-in and the trust anchors, and /etc/passwd and /etc/group are
# replaced by copies that know its user. The private bus (tests/lib/private-bus.sh)
# runs in the same namespace, so that it knows that user too; its socket is in the
# test's directory, where every other process reaches it. Nothing of the host's /run,
# /etc or /etc/resolv.conf changes.
#
# Then test-dns-live --resolve1 asks resolved through dns_resolver_query() (secure,
# insecure, bogus, NXDOMAIN, NODATA, TXT byte for byte), and mailsec-authd answers the
# same SPF and DKIM/DMARC checks once through the stub resolver and once through
# resolved ([Resolver] Servers= unset), with the same results.
#
# Debian's systemd-resolved package replaces /etc/resolv.conf when installed, so
# tools/setup-deps only unpacks it into a cache directory; an installed one is used too.
#
# Needs root, nsd, unbound, ldnsutils, dig, dbus-daemon, unshare; skips (77) otherwise.
# Env: DNS_TEST_LIVE, MAILSEC_AUTHD, AUTHD_CLIENT (optional), MAILSEC_RESOLVED (the
# binary), MAILSEC_DEPS_CACHE (setup-deps' cache), MT_KEEP=1 keeps the state directory.

set -uo pipefail
MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "$0")/../lib" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# Addresses of our own, so that the other DNS suites may run at the same time.
export DNS_TB_AUTH_IP=127.0.66.1 DNS_TB_RESOLVER_IP=127.0.66.2 DNS_TB_MX_IP=127.0.66.25
# shellcheck source=tests/lib/dns-testbed.sh
. "$MT_LIB_DIR/dns-testbed.sh"
# shellcheck source=tests/lib/private-bus.sh
. "$MT_LIB_DIR/private-bus.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (port 53, a mount namespace)"; exit 77; }
mt_need nsd nsd-checkconf unbound unbound-checkconf ldns-keygen ldns-signzone ldns-key2ds dig \
        dbus-daemon busctl unshare mount timeout
PROG=${DNS_TEST_LIVE:-}
[ -x "$PROG" ] || { echo "SKIP: test-dns-live is not built (set DNS_TEST_LIVE)"; exit 77; }

CACHE=${MAILSEC_DEPS_CACHE:-/var/cache/mailsec-test-deps}
RESOLVED=${MAILSEC_RESOLVED:-}
if [ -z "$RESOLVED" ]; then
        for f in "$CACHE/systemd-resolved/root/lib/systemd/systemd-resolved" \
                 "$CACHE/systemd-resolved/root/usr/lib/systemd/systemd-resolved" \
                 /lib/systemd/systemd-resolved /usr/lib/systemd/systemd-resolved; do
                [ -x "$f" ] && { RESOLVED=$f; break; }
        done
fi
if [ -z "$RESOLVED" ] || [ ! -x "$RESOLVED" ]; then
        echo "SKIP: no systemd-resolved binary (tools/setup-deps unpacks one into $CACHE)"
        exit 77
fi
if grep -q 'not found' < <(ldd "$RESOLVED" 2>/dev/null); then
        echo "SKIP: $RESOLVED does not match the installed systemd (libraries missing)"
        exit 77
fi

PASS=0
FAILS=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

W=$(mktemp -d /tmp/mailsec-resolve1.XXXXXX)
chmod 711 "$W"
AUTHD_PID=
cleanup() {
        local rc=$?
        [ -n "$AUTHD_PID" ] && { kill "$AUTHD_PID" 2>/dev/null; wait "$AUTHD_PID" 2>/dev/null; }
        mt_kill_pidfile "$W/resolved.pid"
        bus_stop "$W/bus"
        dns_testbed_stop "$W/dns"
        if [ "${MT_KEEP:-0}" = 1 ]; then
                echo "state kept in $W"
        else
                rm -rf "$W"
        fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dns_testbed_start "$W/dns" || { echo "FAIL: the DNS test bed did not start"; exit 1; }

# What resolved finds in its namespace: /run (a tmpfs, filled from $W/run), the user.
mkdir -p "$W/run/systemd/resolved.conf.d" "$W/run/dnssec-trust-anchors.d"
cat >"$W/run/systemd/resolved.conf.d/50-mailsec-test.conf" <<EOF
[Resolve]
DNS=$DNS_TB_RESOLVER_IP
FallbackDNS=
Domains=
DNSSEC=yes
DNSOverTLS=no
LLMNR=no
MulticastDNS=no
DNSStubListener=no
ReadEtcHosts=no
EOF
# Positive trust anchor: the private root's DS ("NAME IN DS ..." without the TTL). Its
# presence replaces resolved's built-in root anchor.
awk '$3 == "IN" && $4 == "DS" { $2 = ""; print }' "$W/dns/root.ds" >"$W/run/dnssec-trust-anchors.d/root.positive"
grep -q ' DS ' "$W/run/dnssec-trust-anchors.d/root.positive" || { echo "FAIL: no root DS"; exit 1; }
# Any negative trust anchor file replaces the built-in ones, which include test. (RFC
# 6761): without this, everything under test. would be insecure without validation.
echo "nowhere.invalid" >"$W/run/dnssec-trust-anchors.d/mailsec-test.negative"

cp /etc/passwd "$W/passwd"
cp /etc/group "$W/group"
if ! grep -q '^systemd-resolve:' "$W/passwd"; then
        for ((uid = 999; uid > 900; uid--)); do
                grep -qx "$uid" < <(cut -d: -f3 "$W/passwd" "$W/group") || break
        done
        echo "systemd-resolve:x:$uid:$uid:systemd Resolver:/:/usr/sbin/nologin" >>"$W/passwd"
        grep -q '^systemd-resolve:' "$W/group" || echo "systemd-resolve:x:$uid:" >>"$W/group"
fi

# The namespace: mounts, the bus (in the background), then resolved in place of the shell.
# SYSTEMD_LOG_* make it log to stderr; the pidfiles name the processes for the cleanup.
HOST_RESOLVE_DIR=$(ls -ld /run/systemd/resolve 2>&1)
HOST_ANCHORS=$(ls -d /run/dnssec-trust-anchors.d 2>&1)
mkdir -p "$W/bus"
chmod 711 "$W/bus"
unshare -m --propagation private bash -c '
        set -e
        W=$1 RESOLVED=$2 MT_LIB_DIR=$3
        mount -t tmpfs -o mode=0755 mailsec-test /run
        cp -a "$W/run/." /run/
        mount --bind "$W/passwd" /etc/passwd
        mount --bind "$W/group" /etc/group
        . "$MT_LIB_DIR/private-bus.sh"
        bus_start "$W/bus" 2>"$W/bus-start.log"
        chmod 666 "$W/bus/bus"
        export SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_COLOR=0
        exec "$RESOLVED"
' resolved-ns "$W" "$RESOLVED" "$MT_LIB_DIR" >"$W/resolved.log" 2>&1 &
echo $! >"$W/resolved.pid"
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$W/bus/bus"

for ((i = 0; i < 100; i++)); do
        busctl --system --timeout=1 status org.freedesktop.resolve1 >/dev/null 2>&1 && break
        kill -0 "$(mt_pid_of "$W/resolved.pid")" 2>/dev/null || break
        sleep 0.1
done
if ! busctl --system --timeout=1 status org.freedesktop.resolve1 >/dev/null 2>&1; then
        echo "FAIL: systemd-resolved did not appear on the private bus"
        cat "$W/bus-start.log" 2>/dev/null
        grep -v '^\(Sent\|Got\) message' "$W/resolved.log" | tail -n 30
        exit 1
fi
ok "systemd-resolved ($RESOLVED) is on the private bus"
if [ "$HOST_RESOLVE_DIR" = "$(ls -ld /run/systemd/resolve 2>&1)" ] && [ "$HOST_ANCHORS" = "$(ls -d /run/dnssec-trust-anchors.d 2>&1)" ]; then
        ok "the host's /run is untouched"
else
        bad "the host's /run changed: $(ls -ld /run/systemd/resolve /run/dnssec-trust-anchors.d 2>&1)"
fi
grep -q "^\. IN DS" "$W/resolved.log" && ok "resolved loaded the test world's trust anchor" ||
        bad "resolved did not log the trust anchor"

# dns-resolve1.c through dns_resolver_query()
if timeout 60 "$PROG" --resolve1 "$DNS_TB_MX_IP" "$DNS_TB_DKIM_1$DNS_TB_DKIM_2" >"$W/live.log" 2>&1; then
        ok "test-dns-live --resolve1: $(tail -n 1 "$W/live.log")"
else
        bad "test-dns-live --resolve1"
fi
sed 's/^/    /' "$W/live.log"

# mailsec-authd: the same checks through the stub resolver and through resolved
if [ -x "${MAILSEC_AUTHD:-}" ] && [ -x "${AUTHD_CLIENT:-}" ]; then
        NAME=ch.webtrend.Mailsec.Auth1
        OBJ=/ch/webtrend/Mailsec/Auth1
        IFACE=$NAME.Manager

        # the RFC 8463 Ed25519 test key, whose public half sel1._domainkey.example.test publishes
        "$MT_PYTHON" - >"$W/ed25519.pem" <<'PY'
import base64
seed = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
der = bytes.fromhex("302e020100300506032b657004220420") + seed
print("-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----")
PY
        common="[Authentication]
AuthservId=mx.receiver.test

[Signing]
Key=example.test:sel1:ed25519:$W/ed25519.pem

[Service]
IdleTimeoutSec=5min"
        printf '[Resolver]\nServers=%s:53\nTimeoutSec=2s\n\n%s\n' "$DNS_TB_RESOLVER_IP" "$common" >"$W/stub.conf"
        printf '%s\n' "$common" >"$W/resolved.conf"
        printf 'From: Alice <alice@example.test>\r\nTo: bob@receiver.test\r\nSubject: resolve1\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <r1@example.test>\r\n\r\nHello Bob.\r\n' >"$W/msg.eml"

        spf_cases=(
                "$DNS_TB_MX_IP mx.example.test alice@example.test"
                "127.0.66.99 mx.example.test alice@example.test"
                "127.0.66.99 mx.plain.test alice@plain.test"
                "127.0.66.99 mx.nowhere.test alice@nowhere.test"
                "127.0.66.99 mx.example.test alice@nosuch.example.test"
                "127.0.66.99 mx.bogus.test alice@bogus.test"
        )

        # run_authd CONF TAG: start authd, run every check, write $W/TAG.out, stop authd
        run_authd() {
                local conf=$1 tag=$2 c
                "$MAILSEC_AUTHD" --config="$conf" --log-level=debug 2>"$W/authd-$tag.log" &
                AUTHD_PID=$!
                for ((i = 0; i < 100; i++)); do
                        busctl --system --timeout=1 status "$NAME" >/dev/null 2>&1 && break
                        sleep 0.05
                done
                {
                        for c in "${spf_cases[@]}"; do
                                read -r ip helo from <<<"$c"
                                echo "spf $c: $(busctl --system --timeout=30 call "$NAME" "$OBJ" "$IFACE" \
                                        CheckSpf ssst "$ip" "$helo" "$from" 0 2>&1)"
                        done
                        if [ "$tag" = stub ]; then
                                "$AUTHD_CLIENT" sign "$W/msg.eml" example.test >"$W/sig.txt" 2>&1
                                cat "$W/sig.txt" "$W/msg.eml" >"$W/signed.eml"
                        fi
                        "$AUTHD_CLIENT" verify "$W/signed.eml" client_ip="$DNS_TB_MX_IP" helo=mx.example.test \
                                mail_from=alice@example.test 2>&1
                        sed 's/signed/tampered/; s/Hello Bob/Hello Eve/' "$W/signed.eml" >"$W/tampered.eml"
                        "$AUTHD_CLIENT" verify "$W/tampered.eml" client_ip=127.0.66.99 helo=mx.example.test \
                                mail_from=alice@example.test 2>&1
                } >"$W/$tag.out"
                kill "$AUTHD_PID"
                wait "$AUTHD_PID" 2>/dev/null
                AUTHD_PID=
        }

        run_authd "$W/stub.conf" stub
        run_authd "$W/resolved.conf" resolved
        grep -q 'DNS lookups go through systemd-resolved' "$W/authd-resolved.log" &&
                ok "authd without Servers= uses systemd-resolved" || bad "authd did not pick systemd-resolved"
        grep -q 'DNS lookups go to' "$W/authd-stub.log" && ok "authd with Servers= uses the stub resolver" ||
                bad "authd with Servers= did not use the stub resolver"
        sed 's/^/    /' "$W/resolved.out"
        expect=("spf $DNS_TB_MX_IP .*\"pass\"" 'spf 127.0.66.99 mx.example.test .*"fail"'
                'spf 127.0.66.99 mx.plain.test .*"softfail"' 'spf 127.0.66.99 mx.nowhere.test .*"none"'
                'spf 127.0.66.99 mx.example.test alice@nosuch.*"none"' 'spf 127.0.66.99 mx.bogus.test .*"temperror"'
                '^dkim example.test sel1 pass' '^dmarc pass reject none' '^dkim example.test sel1 fail'
                '^dmarc fail reject reject')
        for e in "${expect[@]}"; do
                grep -q -- "$e" "$W/resolved.out" && ok "through resolved: $e" || bad "through resolved, no line like: $e"
        done
        if diff -u "$W/stub.out" "$W/resolved.out" >"$W/diff.txt"; then
                ok "every check gives the same answer through resolved as through the stub resolver"
        else
                bad "the checks differ between the stub resolver and resolved:"
                cat "$W/diff.txt"
        fi
else
        echo "(mailsec-authd or authd-client not built: the authd comparison is left out)"
fi

echo "$PASS passed, $FAILS failed"
if [ $FAILS != 0 ]; then
        echo "--- systemd-resolved log (tail, without bus messages)"
        grep -v '^\(Sent\|Got\) message' "$W/resolved.log" | tail -n 40
        exit 1
fi
exit 0
