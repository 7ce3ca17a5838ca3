#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsec-proxyd with [Checks] Authentication=yes between real peers: a Python SMTP
# client, a private Postfix backend (tests/lib/postfix-backend.sh), and mailsec-authd on
# a private bus against the DNSSEC test zone of tests/lib/dns-testbed.sh (example.test:
# SPF "ip4:<MX address> -all", DMARC p=reject, the RFC 8463 Ed25519 key at sel1).
#
# Environment: MAILSEC_AUTHD, MAILSEC_PROXYD, AUTHD_CLIENT, MT_LIB_DIR.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -u -o pipefail

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# Addresses of our own, so that other suites' test beds may run at the same time.
export DNS_TB_AUTH_IP=127.0.66.1 DNS_TB_RESOLVER_IP=127.0.66.2 DNS_TB_MX_IP=127.0.66.25
# shellcheck source=tests/lib/dns-testbed.sh
. "$MT_LIB_DIR/dns-testbed.sh"
# shellcheck source=tests/lib/private-bus.sh
. "$MT_LIB_DIR/private-bus.sh"
# shellcheck source=tests/lib/postfix-backend.sh
. "$MT_LIB_DIR/postfix-backend.sh"
# shellcheck source=tests/lib/proxyd.sh
. "$MT_LIB_DIR/proxyd.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (DNS servers on loopback, Postfix delivers as nobody)"; exit 77; }
mt_need nsd unbound ldns-keygen ldns-signzone ldns-key2ds dig dbus-daemon busctl postfix script \
        systemd-socket-activate openssl
for v in MAILSEC_AUTHD MAILSEC_PROXYD AUTHD_CLIENT; do
        [ -x "${!v:-}" ] || { echo "SKIP: $v is not built"; exit 77; }
done

PASS=0
FAILS=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

W=$(mktemp -d /tmp/mailsec-authd-proxy.XXXXXX)
chmod 755 "$W"
PF=$W/postfix
PROXY_IP=127.0.66.10
BACKEND_IP=127.0.66.11
AUTHD_PID=
cleanup() {
        local rc=$?
        proxyd_stop proxy "$W"
        [ -n "$AUTHD_PID" ] && { kill "$AUTHD_PID" 2>/dev/null; wait "$AUTHD_PID" 2>/dev/null; }
        pf_backend_stop "$PF"
        bus_stop "$W/bus"
        dns_testbed_stop "$W/dns"
        if [ "$FAILS" != 0 ] || [ "${MT_KEEP:-0}" = 1 ]; then echo "state kept in $W"; else rm -rf "$W"; fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dns_testbed_start "$W/dns" || { echo "FAIL: the DNS test bed did not start"; exit 1; }
bus_start "$W/bus" || { echo "FAIL: the private bus did not start"; exit 1; }
P_BACKEND=$(mt_free_port $BACKEND_IP) || exit 1
pf_backend_start "$PF" "$BACKEND_IP:$P_BACKEND" || { echo "FAIL: the Postfix backend did not start"; exit 1; }

python3 - >"$W/ed25519.pem" <<'PY'
import base64
seed = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
der = bytes.fromhex("302e020100300506032b657004220420") + seed
print("-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----")
PY
cat >"$W/authd.conf" <<EOF
[Resolver]
Servers=$DNS_TB_RESOLVER_IP:53
TimeoutSec=2s

[Authentication]
AuthservId=mx.receiver.test

[Signing]
Key=example.test:sel1:ed25519:$W/ed25519.pem

[Service]
IdleTimeoutSec=5min
EOF

NAME=ch.webtrend.Mailsec.Auth1
authd_start() {
        local i
        "$MAILSEC_AUTHD" --config="$W/authd.conf" --log-level=debug 2>>"$W/authd.log" &
        AUTHD_PID=$!
        for ((i = 0; i < 100; i++)); do
                busctl --system status "$NAME" >/dev/null 2>&1 && return 0
                sleep 0.05
        done
        cat "$W/authd.log"
        return 1
}
authd_start || { echo "FAIL: $NAME did not appear"; exit 1; }

cat >"$W/proxy.conf" <<EOF
[Proxy]
Hostname=mx.receiver.test
Backend=$BACKEND_IP:$P_BACKEND
[TLS]
STARTTLS=no
[Checks]
Authentication=yes
AuthTimeoutSec=10s
EOF

# --no-bus and Authentication=yes do not go together
if MAILSEC_PROXYD_NO_BUS=1 "$MAILSEC_PROXYD" --config="$W/proxy.conf" --check-config >"$W/nobus.log" 2>&1; then
        bad "Authentication=yes accepted without the bus"
else
        grep -q "needs the system bus" "$W/nobus.log" && ok "Authentication=yes without the bus is a start-up error" ||
                bad "no-bus error: $(cat "$W/nobus.log")"
fi

P_PROXY=$(mt_free_port $PROXY_IP) || exit 1
proxyd_start proxy "$W" "$PROXY_IP:$P_PROXY" "$W/proxy.conf" bus || { echo "FAIL: proxy did not start"; exit 1; }
proxyd_wake proxy "$W" "$PROXY_IP" "$P_PROXY" || { echo "FAIL: proxy did not greet"; exit 1; }

# send FROM-IP MAIL-FROM FILE: one transaction; prints the final reply ("250 ...")
send() {
        timeout 60 python3 - "$PROXY_IP" "$P_PROXY" "$1" "$2" "$3" <<'PY'
import smtplib, sys
host, port, src, sender, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
data = open(path, "rb").read()
s = smtplib.SMTP(host, port, local_hostname="mx.example.test", source_address=(src, 0), timeout=50)
s.ehlo("mx.example.test")
try:
    code, _ = s.mail(sender)
    assert code == 250, code
    code, _ = s.rcpt("user@example.test")
    assert code == 250, code
    code, text = s.data(data)
except smtplib.SMTPResponseException as e:
    code, text = e.smtp_code, e.smtp_error
print(code, text.decode(errors="replace").replace("\n", " "))
try:
    s.quit()
except Exception:
    pass
PY
}

msg() { # msg FROM SUBJECT [EXTRA-HEADER]: a message with CRLF line ends on stdout
        printf 'From: %s\r\n' "$1"
        [ -n "${3:-}" ] && printf '%s\r\n' "$3"
        printf 'To: user@example.test\r\nSubject: %s\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n' "$2"
        printf 'Message-ID: <%s@example.test>\r\n\r\nHello,\r\n\r\nthis is %s.\r\n' "$2" "$2"
}

# 1. signed, from the SPF-allowed address: delivered with our fields
m1=mailsec-ok-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$m1" >"$W/m1.eml"
if "$AUTHD_CLIENT" sign "$W/m1.eml" example.test >"$W/sig1.txt" 2>&1; then
        cat "$W/sig1.txt" "$W/m1.eml" >"$W/m1.signed"
        out=$(send "$DNS_TB_MX_IP" alice@example.test "$W/m1.signed")
        case $out in 250*) ok "signed message from the SPF-allowed address accepted: $out";; *) bad "signed message: $out";; esac
        if f=$(pf_backend_wait "$PF" "$m1" 1 30); then
                f=$(echo "$f" | head -n 1)
                ar=$(sed -n '/^Authentication-Results:/,/^[^ \t]/p' "$f" | sed '$d' | tr -d '\r\n')
                echo "    A-R: $ar"
                case $ar in *'mx.receiver.test;'*'spf=pass'*) ok "delivered with spf=pass";; *) bad "spf in A-R: $ar";; esac
                case $ar in *'dkim=pass'*) ok "delivered with dkim=pass";; *) bad "dkim in A-R: $ar";; esac
                case $ar in *'dmarc=pass'*) ok "delivered with dmarc=pass";; *) bad "dmarc in A-R: $ar";; esac
                grep -q "^Received-SPF: pass" "$f" && ok "delivered with Received-SPF: pass" ||
                        bad "no Received-SPF: pass in $(grep -i '^Received-SPF' "$f")"
                # order: our Received:, then Authentication-Results:, then Received-SPF:
                order=$(grep -E '^(Received: from mx.example.test|Authentication-Results:|Received-SPF:)' "$f" |
                        cut -d: -f1 | tr '\n' ' ')
                case $order in *'Received Authentication-Results Received-SPF'*) ok "fields after our Received: ($order)";;
                        *) bad "field order: $order";; esac
        else
                bad "signed message not delivered"
        fi
else
        bad "SignMessage: $(cat "$W/sig1.txt")"
fi

# 2. unsigned, From: example.test (p=reject), from an address SPF does not allow
m2=mailsec-reject-$RANDOM$RANDOM
msg "Mallory <ceo@example.test>" "$m2" >"$W/m2.eml"
out=$(send 127.0.66.99 ceo@example.test "$W/m2.eml")
case $out in '550 5.7.1 Message rejected by DMARC policy of example.test'*) ok "DMARC p=reject: $out";;
        *) bad "DMARC reject: $out";; esac

# 3. a forged Authentication-Results claiming our authserv-id is removed
m3=mailsec-forged-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$m3" \
        "Authentication-Results: mx.receiver.test; dkim=pass header.d=example.test (forged-$m3)" >"$W/m3.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test "$W/m3.eml")
case $out in 250*) ok "message with a forged field accepted: $out";; *) bad "forged field: $out";; esac
if f=$(pf_backend_wait "$PF" "$m3" 1 30); then
        f=$(echo "$f" | head -n 1)
        grep -q "forged-$m3" "$f" && bad "the forged Authentication-Results reached the mailbox" ||
                ok "the forged Authentication-Results did not reach the mailbox"
        grep -q '^Authentication-Results: mx.receiver.test;' "$f" && ok "our own Authentication-Results is there" ||
                bad "no Authentication-Results of ours"
else
        bad "message with a forged field not delivered"
fi

# 4. mailsec-authd gone: 451 4.3.5 with the default OnAuthFailure=tempfail
kill "$AUTHD_PID"; wait "$AUTHD_PID" 2>/dev/null; AUTHD_PID=
m4=mailsec-tempfail-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$m4" >"$W/m4.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test "$W/m4.eml")
case $out in '451 4.3.5'*) ok "authd stopped: $out";; *) bad "authd stopped: $out";; esac

# 5. OnAuthFailure=accept: relayed without the authentication fields
sed -i 's/^AuthTimeoutSec=10s$/AuthTimeoutSec=10s\nOnAuthFailure=accept/' "$W/proxy.conf"
proxyd_start proxy "$W" "$PROXY_IP:$P_PROXY" "$W/proxy.conf" bus && proxyd_wake proxy "$W" "$PROXY_IP" "$P_PROXY" ||
        bad "proxy with OnAuthFailure=accept did not start"
m5=mailsec-accept-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$m5" >"$W/m5.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test "$W/m5.eml")
case $out in 250*) ok "OnAuthFailure=accept, authd stopped: $out";; *) bad "OnAuthFailure=accept: $out";; esac
if f=$(pf_backend_wait "$PF" "$m5" 1 30); then
        f=$(echo "$f" | head -n 1)
        grep -q '^Authentication-Results:' "$f" && bad "Authentication-Results without an answer from authd" ||
                ok "relayed without Authentication-Results"
else
        bad "OnAuthFailure=accept: not delivered"
fi
grep -q "relaying without Authentication-Results" "$W/proxy.log" && ok "OnAuthFailure=accept logs a notice" ||
        bad "no notice for OnAuthFailure=accept"

# nothing of the refused messages was delivered
pf_backend_settle "$PF" 20 || true
[ "$(pf_backend_count "$PF" "$m2")" = 0 ] && ok "the DMARC-rejected message was not delivered" ||
        bad "the DMARC-rejected message was delivered"
[ "$(pf_backend_count "$PF" "$m4")" = 0 ] && ok "the deferred message was not delivered" ||
        bad "the deferred message was delivered"
proxyd_running proxy "$W" && ok "mailsec-proxyd is still running" || bad "mailsec-proxyd died"

echo "$PASS passed, $FAILS failed"
if [ "$FAILS" != 0 ]; then
        echo "--- proxy log"; tail -n 40 "$W/proxy.log"
        echo "--- authd log"; tail -n 20 "$W/authd.log"
        exit 1
fi
exit 0
