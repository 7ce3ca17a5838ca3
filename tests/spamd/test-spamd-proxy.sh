#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsec-proxyd with [Checks] Spam=yes and ReportAddresses= between real peers: swaks
# as the client, a private Postfix backend (tests/lib/postfix-backend.sh), mailsec-authd
# and mailsec-spamd on a private bus, mailsec-authd against the DNSSEC test zone of
# tests/lib/dns-testbed.sh (example.test: SPF "ip4:<MX address> -all", DMARC p=reject,
# the Ed25519 key at sel1; plain.test without DMARC). mailsec-spamd is trained first with
# "mailsecctl spam learn" on generated spam (pills, loans) and ham (meetings, projects).
#
# Environment: MAILSEC_AUTHD, MAILSEC_SPAMD, MAILSEC_PROXYD, MAILSECCTL, AUTHD_CLIENT,
# MT_LIB_DIR. Exit status: 0 pass, 1 fail, 77 skipped.
set -u -o pipefail

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# Addresses of our own, so that other suites' test beds may run at the same time.
export DNS_TB_AUTH_IP=127.0.67.1 DNS_TB_RESOLVER_IP=127.0.67.2 DNS_TB_MX_IP=127.0.67.25
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
        systemd-socket-activate swaks
for v in MAILSEC_AUTHD MAILSEC_SPAMD MAILSEC_PROXYD MAILSECCTL AUTHD_CLIENT; do
        [ -x "${!v:-}" ] || { echo "SKIP: $v is not built"; exit 77; }
done

PASS=0
FAILS=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

W=$(mktemp -d /tmp/mailsec-spamd-proxy.XXXXXX)
chmod 755 "$W"
PF=$W/postfix
PROXY_IP=127.0.67.10
BACKEND_IP=127.0.67.11
OUTSIDE_IP=127.0.67.99
AUTHD_PID=
SPAMD_PID=
cleanup() {
        local rc=$?
        proxyd_stop proxy "$W"
        [ -n "$AUTHD_PID" ] && { kill "$AUTHD_PID" 2>/dev/null; wait "$AUTHD_PID" 2>/dev/null; }
        [ -n "$SPAMD_PID" ] && { kill "$SPAMD_PID" 2>/dev/null; wait "$SPAMD_PID" 2>/dev/null; }
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

# ---- mailsec-authd ----
"$MT_PYTHON" - >"$W/ed25519.pem" <<'PY'
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
IdleTimeoutSec=10min
EOF

bus_wait_name() { # NAME LOG PID
        local i
        for ((i = 0; i < 100; i++)); do
                busctl --system status "$1" >/dev/null 2>&1 && return 0
                kill -0 "$3" 2>/dev/null || break
                sleep 0.05
        done
        tail -n 30 "$2"
        return 1
}

"$MAILSEC_AUTHD" --config="$W/authd.conf" --log-level=debug 2>>"$W/authd.log" &
AUTHD_PID=$!
bus_wait_name ch.webtrend.Mailsec.Auth1 "$W/authd.log" "$AUTHD_PID" ||
        { echo "FAIL: ch.webtrend.Mailsec.Auth1 did not appear"; exit 1; }

# ---- mailsec-spamd, trained ----
spamd_conf() { # REPORT-DOMAINS
        cat >"$W/spamd.conf" <<EOF
[Learning]
ReportDomains=$1

[Service]
IdleTimeoutSec=10min
EOF
}
spamd_start() {
        "$MAILSEC_SPAMD" --config="$W/spamd.conf" --state-dir="$W/spamd-state" --log-level=debug \
                2>>"$W/spamd.log" &
        SPAMD_PID=$!
        bus_wait_name ch.webtrend.Mailsec.Spam1 "$W/spamd.log" "$SPAMD_PID"
}
spamd_stop() {
        [ -n "$SPAMD_PID" ] || return 0
        kill "$SPAMD_PID" 2>/dev/null
        wait "$SPAMD_PID" 2>/dev/null
        SPAMD_PID=
}
spam_prop() { # PROPERTY: a number
        busctl --system get-property ch.webtrend.Mailsec.Spam1 /ch/webtrend/Mailsec/Spam1 \
                ch.webtrend.Mailsec.Spam1.Manager "$1" | awk '{ print $2 }'
}

mkdir -p "$W/spamd-state" "$W/train"
spamd_conf example.test
spamd_start || { echo "FAIL: ch.webtrend.Mailsec.Spam1 did not appear"; exit 1; }

# N spam (pills, loans) and N ham (meetings, projects) messages, each a little different.
"$MT_PYTHON" - "$W/train" <<'PY'
import random, sys
d = sys.argv[1]
rnd = random.Random(5965)
spam_words = ("cheap viagra pills pharmacy discount order now online prescription cialis "
              "loan approved instant cash credit bad credit guaranteed lowest rate casino "
              "bonus winner claim prize free offer limited unsubscribe click here million "
              "dollars investment bitcoin profit weight loss miracle").split()
ham_words = ("meeting agenda tomorrow project schedule review minutes team quarterly report "
             "budget draft please find attached thanks regards colleague office room "
             "conference call deadline milestone planning notes lunch wednesday thursday "
             "presentation slides feedback update release documentation").split()
def msg(kind, i, words, sender, subject_words):
    body = " ".join(rnd.choice(words) for _ in range(60))
    subj = " ".join(rnd.choice(subject_words) for _ in range(4))
    return ("From: %s\r\nTo: user@example.test\r\nSubject: %s\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <%s-%d@train.test>\r\n\r\n%s\r\n"
            % (sender, subj, kind, i, body)).encode()
for i in range(40):
    open("%s/spam-%02d.eml" % (d, i), "wb").write(
        msg("spam", i, spam_words, "Deals <deals%d@offers.test>" % i, spam_words))
    open("%s/ham-%02d.eml" % (d, i), "wb").write(
        msg("ham", i, ham_words, "Bob <bob%d@partner.test>" % i, ham_words))
PY
trained=0
for f in "$W"/train/*.eml; do
        class=${f##*/}
        class=${class%%-*}
        "$MAILSECCTL" spam learn "$class" "$f" >>"$W/train.log" 2>&1 && trained=$((trained + 1))
done
[ "$trained" = 80 ] && ok "mailsec-spamd trained on 40 spam and 40 ham messages" ||
        { bad "training: $trained of 80 learned: $(tail -n 3 "$W/train.log")"; exit 1; }
[ "$(spam_prop SpamLearned)" = 40 ] && [ "$(spam_prop HamLearned)" = 40 ] && ok "SpamLearned=40 HamLearned=40" ||
        bad "after training: SpamLearned=$(spam_prop SpamLearned) HamLearned=$(spam_prop HamLearned)"

# ---- mailsec-proxyd ----
P_PROXY=$(mt_free_port $PROXY_IP) || exit 1
proxy_conf() { # ON-SPAM-FAILURE
        cat >"$W/proxy.conf" <<EOF
[Proxy]
Hostname=mx.receiver.test
Backend=$BACKEND_IP:$P_BACKEND
[TLS]
STARTTLS=no
[Checks]
Authentication=yes
AuthTimeoutSec=10s
Spam=yes
SpamTimeoutSec=10s
OnSpamFailure=$1
SpamRejectScore=0.9
ReportAddresses=spam:spam-report@example.test ham:ham-report@example.test
EOF
}
proxy_conf tempfail

# ReportAddresses= without Authentication=yes is a start-up error
sed '/^Authentication=yes$/d' "$W/proxy.conf" >"$W/noauth.conf"
if MAILSEC_PROXYD_NO_BUS=1 "$MAILSEC_PROXYD" --config="$W/noauth.conf" --check-config >"$W/noauth.log" 2>&1; then
        bad "ReportAddresses= accepted without Authentication=yes"
else
        grep -q "ReportAddresses= needs Authentication=yes" "$W/noauth.log" &&
                ok "ReportAddresses= without Authentication=yes is a start-up error" ||
                bad "no-auth error: $(cat "$W/noauth.log")"
fi

proxy_up() {
        proxyd_start proxy "$W" "$PROXY_IP:$P_PROXY" "$W/proxy.conf" bus &&
                proxyd_wake proxy "$W" "$PROXY_IP" "$P_PROXY"
}
proxy_up || { echo "FAIL: proxy did not start"; exit 1; }

# send FROM-IP MAIL-FROM RCPT FILE: one transaction with swaks; prints the reply to the
# end of the data, or to the command that failed.
send() {
        timeout 60 swaks --server "$PROXY_IP:$P_PROXY" --local-interface "$1" --helo mx.example.test \
                --from "$2" --to "$3" --data "$4" --timeout 50 >"$W/swaks.log" 2>&1
        awk '/^ *-> \.$/ { dot = 1; next }
             /^<[-*~]+ / { last = $0; if (dot) { print; found = 1; exit } }
             END { if (!found) print last }' "$W/swaks.log" | sed -E 's/^<[-*~]+ +//'
}

msg() { # msg FROM SUBJECT BODY [EXTRA-HEADER]: a message with CRLF line ends on stdout
        printf 'From: %s\r\n' "$1"
        [ -n "${4:-}" ] && printf '%s\r\n' "$4"
        printf 'To: user@example.test\r\nSubject: %s\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n' "$2"
        printf 'Message-ID: <%s@example.test>\r\n\r\n%s\r\n' "$2" "$3"
}
HAM_BODY="Hello, the project meeting agenda for tomorrow: schedule review, quarterly report draft, budget planning notes. Thanks, regards."
SPAM_BODY="cheap viagra pills pharmacy discount, order now online! instant cash loan approved, bad credit guaranteed, click here, free offer, limited bonus, winner claim prize"

# 1. ham: delivered with X-Spam-Status: No and X-Spam-Score
m1=mailsec-ham-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$m1" "$HAM_BODY" >"$W/m1.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test user@example.test "$W/m1.eml")
case $out in 250*) ok "ham accepted: $out";; *) bad "ham: $out";; esac
if f=$(pf_backend_wait "$PF" "$m1" 1 30); then
        f=$(echo "$f" | head -n 1)
        mt_headers "$f" >"$W/m1.headers"
        grep -Eq '^X-Spam-Status: No, score=0\.[0-9]{3} required=0\.900$' "$W/m1.headers" &&
                ok "ham delivered with $(grep '^X-Spam-Status:' "$W/m1.headers")" ||
                bad "ham X-Spam-Status: $(grep -i '^X-Spam' "$W/m1.headers")"
        grep -Eq '^X-Spam-Score: 0\.[0-9]{3}$' "$W/m1.headers" && ok "ham delivered with X-Spam-Score" ||
                bad "ham X-Spam-Score: $(grep -i '^X-Spam-Score' "$W/m1.headers")"
        # order: our Received:, Authentication-Results:, Received-SPF:, X-Spam-Status:, X-Spam-Score:
        order=$(grep -E '^(Received: from mx.example.test|Authentication-Results:|Received-SPF:|X-Spam-Status:|X-Spam-Score:)' \
                "$W/m1.headers" | cut -d: -f1 | tr '\n' ' ')
        case $order in *'Received Authentication-Results Received-SPF X-Spam-Status X-Spam-Score'*)
                ok "fields in order ($order)";; *) bad "field order: $order";; esac
else
        bad "ham not delivered"
fi

# 2. spam at or above SpamRejectScore=0.9: 550 5.7.1, not delivered, counted
rejected_before=$(busctl --system get-property ch.webtrend.Mailsec.Proxy1 /ch/webtrend/Mailsec/Proxy1 \
        ch.webtrend.Mailsec.Proxy1.Manager MessagesRejectedAsSpam | awk '{ print $2 }')
m2=mailsec-spam-$RANDOM$RANDOM
msg "Deals <alice@example.test>" "$m2" "$SPAM_BODY" >"$W/m2.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test user@example.test "$W/m2.eml")
case $out in '550 5.7.1 Message rejected as spam'*) ok "spam: $out";; *) bad "spam: $out";; esac
rejected=$(busctl --system get-property ch.webtrend.Mailsec.Proxy1 /ch/webtrend/Mailsec/Proxy1 \
        ch.webtrend.Mailsec.Proxy1.Manager MessagesRejectedAsSpam | awk '{ print $2 }')
[ "$rejected" = $((rejected_before + 1)) ] && ok "MessagesRejectedAsSpam counted it ($rejected)" ||
        bad "MessagesRejectedAsSpam: $rejected_before -> $rejected"

# 3. forged X-Spam-* fields from outside are removed
m3=mailsec-forged-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$m3" "$HAM_BODY" \
        "X-Spam-Status: Yes, score=1.000 forged-$m3"$'\r\n'"x-spam-flag: YES forged-$m3" >"$W/m3.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test user@example.test "$W/m3.eml")
case $out in 250*) ok "message with forged X-Spam fields accepted: $out";; *) bad "forged fields: $out";; esac
if f=$(pf_backend_wait "$PF" "$m3" 1 30); then
        f=$(echo "$f" | head -n 1)
        grep -q "forged-$m3" "$f" && bad "a forged X-Spam field reached the mailbox" ||
                ok "the forged X-Spam fields did not reach the mailbox"
        [ "$(mt_headers "$f" | grep -c '^X-Spam-Status: No, score=')" = 1 ] && ok "only our X-Spam-Status is there" ||
                bad "X-Spam-Status fields: $(mt_headers "$f" | grep -i '^X-Spam')"
else
        bad "message with forged fields not delivered"
fi

# ---- reports by mail ----
# report FROM-ADDR SUBJECT REPORTED-FILE: a report mail with the message attached
report_mail() {
        printf 'From: %s\r\nTo: spam-report@example.test\r\nSubject: %s\r\n' "$1" "$2"
        printf 'Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <%s@example.test>\r\n' "$2"
        printf 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="report-b"\r\n\r\n'
        printf -- '--report-b\r\nContent-Type: text/plain\r\n\r\nThis is spam.\r\n'
        printf -- '--report-b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n'
        cat "$3"
        printf -- '\r\n--report-b--\r\n'
}
reported=$W/reported.eml
msg "Loans <loans@offers.test>" "reported-$RANDOM$RANDOM" \
        "instant cash loan approved today, bad credit guaranteed, lowest rate, casino bonus $RANDOM" >"$reported"

# 4. from a domain whose DMARC passes (signed by mailsec-authd): learned
r4=mailsec-report-$RANDOM$RANDOM
report_mail "Alice <alice@example.test>" "$r4" "$reported" >"$W/r4.eml"
if "$AUTHD_CLIENT" sign "$W/r4.eml" example.test >"$W/sig4.txt" 2>&1; then
        cat "$W/sig4.txt" "$W/r4.eml" >"$W/r4.signed"
        spam_before=$(spam_prop SpamLearned)
        out=$(send "$DNS_TB_MX_IP" alice@example.test spam-report@example.test "$W/r4.signed")
        case $out in '250 2.0.0 Report accepted: learned as spam'*) ok "report by mail: $out";; *) bad "report: $out";; esac
        spam_after=$(spam_prop SpamLearned)
        [ "$spam_after" = $((spam_before + 1)) ] && ok "SpamLearned grew by the report ($spam_before -> $spam_after)" ||
                bad "SpamLearned after the report: $spam_before -> $spam_after"
        # the same message again: mailsec-spamd knows it
        out=$("$MAILSECCTL" spam learn spam "$reported" 2>&1)
        printf '%s\n' "$out" | grep -Eiq '^ *changed: *(no|false)$' &&
                ok "Learn of the reported message: changed=no, it was learned from the report" ||
                bad "Learn of the reported message: $(echo $out)"
        
        [ "$(pf_backend_count "$PF" "$r4")" = 0 ] || bad "the report went to the backend"
else
        bad "SignMessage: $(cat "$W/sig4.txt")"
fi

# 5. from an outside domain (plain.test publishes no DMARC): 550, nothing learned
r5=mailsec-report-outside-$RANDOM$RANDOM
report_mail "Bob <bob@plain.test>" "$r5" "$reported" >"$W/r5.eml"
spam_before=$(spam_prop SpamLearned)
out=$(send "$DNS_TB_MX_IP" bob@plain.test spam-report@example.test "$W/r5.eml")
case $out in '550 5.7.1'*) ok "report from an outside domain: $out";; *) bad "outside report: $out";; esac
[ "$(spam_prop SpamLearned)" = "$spam_before" ] && ok "nothing learned from the outside report" ||
        bad "SpamLearned moved for an outside report"

# 6. a report without an attached message: 554 5.6.0
r6=mailsec-report-empty-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$r6" "$SPAM_BODY" >"$W/r6.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test spam-report@example.test "$W/r6.eml")
case $out in '554 5.6.0'*) ok "report without an attachment: $out";; *) bad "report without attachment: $out";; esac

# 7. report and ordinary recipients do not mix: 452 4.5.3 for the second kind
out=$(timeout 30 "$MT_PYTHON" - "$PROXY_IP" "$P_PROXY" "$DNS_TB_MX_IP" <<'PY'
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="mx.example.test", source_address=(sys.argv[3], 0), timeout=20)
s.ehlo("mx.example.test")
s.mail("alice@example.test")
a = s.rcpt("user@example.test")[0]
b = s.rcpt("spam-report@example.test")[0]
s.rset()
s.mail("alice@example.test")
c = s.rcpt("spam-report@example.test")[0]
d = s.rcpt("user@example.test")[0]
e = s.rcpt("ham-report@example.test")[0]
s.quit()
print(a, b, c, d, e)
PY
)
[ "$out" = "250 452 250 452 452" ] && ok "report addresses take a transaction of their own ($out)" ||
        bad "mixed recipients: $out"

# 8. mailsec-spamd refuses reporters outside ReportDomains=: 550
spamd_stop
spamd_conf example.org
spamd_start || bad "mailsec-spamd did not start again"
r8=mailsec-report-notallowed-$RANDOM$RANDOM
report_mail "Alice <alice@example.test>" "$r8" "$reported" >"$W/r8.eml"
if "$AUTHD_CLIENT" sign "$W/r8.eml" example.test >"$W/sig8.txt" 2>&1; then
        cat "$W/sig8.txt" "$W/r8.eml" >"$W/r8.signed"
        out=$(send "$DNS_TB_MX_IP" alice@example.test spam-report@example.test "$W/r8.signed")
        case $out in '550 5.7.1 Reports are taken only from addresses of the organisation'*)
                ok "reporter outside ReportDomains=: $out";; *) bad "NotAllowed: $out";; esac
else
        bad "SignMessage: $(cat "$W/sig8.txt")"
fi

# 9. mailsec-spamd gone (no activation on this bus): 451 4.3.5 with OnSpamFailure=tempfail
spamd_stop
m9=mailsec-tempfail-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$m9" "$HAM_BODY" >"$W/m9.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test user@example.test "$W/m9.eml")
case $out in '451 4.3.5'*) ok "spamd stopped: $out";; *) bad "spamd stopped: $out";; esac

# 10. OnSpamFailure=accept: relayed without X-Spam-* fields
proxy_conf accept
proxy_up || bad "proxy with OnSpamFailure=accept did not start"
m10=mailsec-accept-$RANDOM$RANDOM
msg "Alice <alice@example.test>" "$m10" "$HAM_BODY" "X-Spam-Status: Yes, forged-$m10" >"$W/m10.eml"
out=$(send "$DNS_TB_MX_IP" alice@example.test user@example.test "$W/m10.eml")
case $out in 250*) ok "OnSpamFailure=accept, spamd stopped: $out";; *) bad "OnSpamFailure=accept: $out";; esac
if f=$(pf_backend_wait "$PF" "$m10" 1 30); then
        f=$(echo "$f" | head -n 1)
        grep -qi '^X-Spam-' < <(mt_headers "$f") && bad "X-Spam fields without an answer from spamd" ||
                ok "relayed without X-Spam-* fields"
        grep -q '^Authentication-Results: mx.receiver.test;' < <(mt_headers "$f") && ok "still authenticated" ||
                bad "no Authentication-Results"
else
        bad "OnSpamFailure=accept: not delivered"
fi
grep -q "relaying without X-Spam fields" "$W/proxy.log" && ok "OnSpamFailure=accept logs a notice" ||
        bad "no notice for OnSpamFailure=accept"

# nothing of the refused messages was delivered
pf_backend_settle "$PF" 20 || true
for id in "$m2" "$m9" "$r5" "$r6" "$r8"; do
        [ "$(pf_backend_count "$PF" "$id")" = 0 ] || bad "$id was delivered"
done
[ "$(pf_backend_count "$PF" "$m2")" = 0 ] && ok "the spam was not delivered"
[ "$(pf_backend_count "$PF" "$m9")" = 0 ] && ok "the deferred message was not delivered"
proxyd_running proxy "$W" && ok "mailsec-proxyd is still running" || bad "mailsec-proxyd died"

echo "$PASS passed, $FAILS failed"
if [ "$FAILS" != 0 ]; then
        echo "--- proxy log"; tail -n 40 "$W/proxy.log"
        echo "--- spamd log"; tail -n 20 "$W/spamd.log"
        echo "--- authd log"; tail -n 10 "$W/authd.log"
        exit 1
fi
exit 0
