#!/bin/bash
# shellcheck disable=SC2154 # PORT_<name> are set by proxy() with printf -v
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsec-proxyd between real peers: swaks and Python clients on one side, a
# private Postfix instance as the organisation's mail server on the other, a
# private D-Bus bus for the statistics. Everything listens on 127.0.61.0/24.
#
# Needs root (Postfix delivers as nobody), postfix, swaks, openssl, dbus-daemon,
# busctl, systemd-socket-activate and /usr/bin/python3; skips (77) without them.
#
# Env: MAILSEC_PROXYD (the daemon; else found in $MESON_BUILD_ROOT),
#      MT_KEEP=1 keeps the state directory, MT_CASES="regexp" runs matching cases.

set -uo pipefail
MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "$0")/../lib" && pwd)}
. "$MT_LIB_DIR/lib.sh"
. "$MT_LIB_DIR/pki.sh"
. "$MT_LIB_DIR/postfix-backend.sh"
. "$MT_LIB_DIR/private-bus.sh"
. "$MT_LIB_DIR/proxyd.sh"

mt_need_root
mt_need postfix swaks openssl dbus-daemon busctl systemd-socket-activate script ss timeout
[ -x "$MT_PYTHON" ] || { echo "SKIP: $MT_PYTHON is missing"; exit 77; }
MAILSEC_PROXYD=$(proxyd_find "${MESON_BUILD_ROOT:-}") || {
        echo "SKIP: mailsec-proxyd is not built (set MAILSEC_PROXYD or build services/proxyd)"
        exit 77
}
export MAILSEC_PROXYD
RAW=$MT_LIB_DIR/smtp-raw.py

T=$(mktemp -d /tmp/mailsec-integration.XXXXXX)
chmod 755 "$T"
PKI=$T/pki
PF=$T/postfix
BUS=$T/bus
NET=127.0.61
PROXY_IP=$NET.1
BACKEND_IP=$NET.2
CLIENT_IP=$NET.100     # the "real client": what the backend must learn
PROXIES=()

cleanup() {
        local p
        for p in "${PROXIES[@]}"; do
                proxyd_stop "$p" "$T"
        done
        pf_backend_stop "$PF"
        bus_stop "$BUS"
        if [ "${MT_KEEP:-0}" = 1 ] || [ "${FAILED:-0}" != 0 ]; then
                echo "state kept in $T"
        else
                rm -rf "$T"
        fi
}
trap cleanup EXIT
trap 'exit 1' TERM INT HUP

# ---------------------------------------------------------------- set-up
FAILED=set-up   # keeps the state directory when the set-up fails
mt_pki "$PKI" || { echo "cannot make the test PKI"; exit 1; }
bus_start "$BUS" || exit 1

P_PLAIN=$(mt_free_port $BACKEND_IP 4) || exit 1
P_PROXY=$((P_PLAIN + 1))
P_TLS=$((P_PLAIN + 2))
P_STRICT=$((P_PLAIN + 3))
PF_TLS_KEY=$PKI/backend.key PF_TLS_CERT=$PKI/backend.chain.pem \
PF_REFUSE="nobody@example.test 550 5.1.1 <nobody@example.test>: no such user here" \
        pf_backend_start "$PF" "$BACKEND_IP:$P_PLAIN" "$BACKEND_IP:$P_PROXY/proxy" "$BACKEND_IP:$P_TLS/tls" \
        "$BACKEND_IP:$P_STRICT/xclient-local" || {
        echo "cannot start the Postfix backend"
        exit 1
}
postconf -c "$PF/etc" -e smtpd_tls_received_header=yes >/dev/null
postfix -c "$PF/etc" reload >/dev/null 2>&1

# proxy_conf NAME BACKEND-PORT [KEY=VALUE lines for the sections...]: writes $T/NAME.conf
proxy_conf() {
        local name=$1 port=$2
        shift 2
        {
                echo "[Proxy]"
                echo "Hostname=mx.example.test"
                echo "Backend=$BACKEND_IP:$port"
                printf '%s\n' "$@" | sed -n 's/^Proxy\.//p'
                echo "[TLS]"
                echo "CertificateFile=$PKI/mx-rsa.chain.pem"
                echo "KeyFile=$PKI/mx-rsa.key"
                echo "CertificateFile=$PKI/mx-ec.chain.pem"
                echo "KeyFile=$PKI/mx-ec.key"
                printf '%s\n' "$@" | sed -n 's/^TLS\.//p'
                echo "[Limits]"
                printf '%s\n' "$@" | sed -n 's/^Limits\.//p'
                echo "[Timeouts]"
                echo "BackendConnectTimeoutSec=5s"
                printf '%s\n' "$@" | sed -n 's/^Timeouts\.//p'
        } >"$T/$name.conf"
}

# proxy NAME BUS|NOBUS BACKEND-PORT [settings...]: start it, set PORT_<NAME>.
# $GREETING is the reply code its first session must start with (default 220).
proxy() {
        local name=$1 bus=$2 bport=$3 port
        shift 3
        proxy_conf "$name" "$bport" "$@"
        port=$(mt_free_port $PROXY_IP) || return 1
        PROXIES+=("$name")
        proxyd_start "$name" "$T" "$PROXY_IP:$port" "$T/$name.conf" "$bus" || return 1
        proxyd_wake "$name" "$T" $PROXY_IP "$port" "${GREETING:-220}" || return 1
        printf -v "PORT_$name" '%s' "$port"
}

proxy main bus "$P_PLAIN" || { echo "cannot start mailsec-proxyd (main)"; exit 1; }
proxy pv2 nobus "$P_PROXY" "Proxy.BackendClientInfo=proxy-v2" || exit 1
proxy btls nobus "$P_TLS" "Proxy.BackendTLS=verify" "Proxy.BackendCAFile=$PKI/ca.crt" \
        "Proxy.BackendTLSName=backend.example.test" || exit 1
# it cannot verify the backend, so it answers with a 4xx at once
GREETING=4 proxy bwrong nobus "$P_TLS" "Proxy.BackendTLS=verify" "Proxy.BackendCAFile=$PKI/other-ca.crt" \
        "Proxy.BackendTLSName=backend.example.test" || exit 1
proxy perclient nobus "$P_PLAIN" "Limits.MaxSessionsPerClient=2" || exit 1
proxy idle nobus "$P_PLAIN" "Timeouts.ServerTimeoutSec=3s" || exit 1
proxy victim nobus "$P_PLAIN" || exit 1
proxy strict nobus "$P_STRICT" || exit 1
MAIN=$PROXY_IP:$PORT_main

# ---------------------------------------------------------------- helpers
PASSED=0
FAILED=0
RUN=0
CASE_OUT=

# run_case NAME FUNCTION: runs it with its output in $T/cases/NAME.out
run_case() {
        local name=$1 fn=$2 why
        if [ -n "${MT_CASES:-}" ] && ! [[ $name =~ $MT_CASES ]]; then
                return 0
        fi
        mkdir -p "$T/cases"
        CASE_OUT=$T/cases/$name.out
        RUN=$((RUN + 1))
        why=$("$fn" 2>&1 >"$CASE_OUT")
        if [ $? = 0 ]; then
                echo "ok   $name"
                PASSED=$((PASSED + 1))
        else
                echo "FAIL $name: ${why:-see $CASE_OUT}"
                sed 's/^/     | /' "$CASE_OUT" | tail -n 25
                FAILED=$((FAILED + 1))
        fi
}

# die WHY: fail the case (cases run in a subshell of run_case)
die() { echo "$*" >&2; exit 1; }

mark() { echo "mailsec-$1-$RANDOM$RANDOM"; }

sw() { # sw HOST:PORT swaks-args...: one transaction from the real client's address
        local server=$1
        shift
        timeout 120 swaks --server "$server" -li "$CLIENT_IP" --helo client.example.net \
                -f sender@example.net --timeout 60 "$@"
}

raw() { # raw CASE PORT args...
        local c=$1 port=$2
        shift 2
        timeout 180 "$MT_PYTHON" "$RAW" "$c" "$PROXY_IP" "$port" --src "$CLIENT_IP" "$@"
}

# delivered MARK [COUNT]: the files, after waiting for them
delivered() { pf_backend_wait "$PF" "$1" "${2:-1}" 30; }

# not_delivered MARK: after the queue settled, no message carries MARK
not_delivered() {
        pf_backend_settle "$PF" 30 || return 1
        sleep 0.5
        local n
        n=$(pf_backend_count "$PF" "$1")
        [ "$n" = 0 ] && return 0
        echo "$n message(s) with $1 reached the backend's Maildir" >&2
        return 1
}

# received_ok FILE: our Received: header, under Postfix's which names the real client
received_ok() {
        local f=$1 h first ours
        h=$(mt_headers "$f" | grep -i '^Received:')
        echo "$h"
        first=$(echo "$h" | head -n 1)
        ours=$(echo "$h" | grep -n 'by mx\.example\.test' | head -n 1 | cut -d: -f1)
        [[ $first == *"by backend.example.test"* ]] || die "top Received: is not the backend's: $first"
        [[ $first == *"[$CLIENT_IP]"* ]] || die "backend's Received: does not name the client $CLIENT_IP: $first"
        [ -n "$ours" ] || die "no Received: header by mx.example.test"
        [ "$ours" -gt 1 ] || die "our Received: is above the backend's"
}

prop() { # prop NAME: a statistics property of the main proxy, as a number
        busctl --system get-property ch.webtrend.Mailsec.Proxy1 /ch/webtrend/Mailsec/Proxy1 \
                ch.webtrend.Mailsec.Proxy1.Manager "$1" | awk '{ print $2 }'
}

# ---------------------------------------------------------------- cases
c_plain_xclient() {
        local m f
        m=$(mark plain)
        sw "$MAIN" -t user@example.test --header "Subject: $m" || die "swaks failed"
        f=$(delivered "$m") || die "not delivered"
        received_ok "$f"
}

c_plain_proxy_v2() {
        local m f
        m=$(mark pv2)
        sw "$PROXY_IP:$PORT_pv2" -t user@example.test --header "Subject: $m" || die "swaks failed"
        f=$(delivered "$m") || die "not delivered"
        received_ok "$f"
}

c_starttls_verified() {
        local m f
        m=$(mark tls)
        sw "$MAIN" --tls --tls-verify --tls-ca-path "$PKI/capath" --tls-sni mx.example.test \
                -t user@example.test --header "Subject: $m" || die "swaks with --tls-verify failed"
        f=$(delivered "$m") || die "not delivered"
        received_ok "$f"
}

c_starttls_xclient_proxy_only() {
        # the backend trusts XCLIENT from the proxy's address only, as a real
        # deployment does: STARTTLS must still work (the backend must not be
        # asked for a second XCLIENT on behalf of the client's address)
        local m f
        m=$(mark strict)
        sw "$PROXY_IP:$PORT_strict" --tls --tls-verify --tls-ca-path "$PKI/capath" \
                -t user@example.test --header "Subject: $m" || die "swaks failed"
        f=$(delivered "$m") || die "not delivered"
        received_ok "$f"
}

c_starttls_wrong_ca_refused() {
        # the same client refuses a proxy it cannot verify: proves the check is real
        if sw "$MAIN" --tls --tls-verify --tls-ca-path "$PKI/other-capath" -t user@example.test \
                --header "Subject: never"; then
                die "swaks verified the proxy against an unrelated CA"
        fi
        return 0
}

# s_client_key ARGS...: the public key type the proxy served for these client options
s_client_key() {
        echo QUIT | timeout 20 openssl s_client -connect "$MAIN" -starttls smtp \
                -servername mx.example.test -verify_hostname mx.example.test \
                -CAfile "$PKI/ca.crt" -verify_return_error "$@" >"$T/s_client.out" 2>&1
        cat "$T/s_client.out" >>"$CASE_OUT"
        grep -q 'Verify return code: 0 (ok)' "$T/s_client.out" || die "s_client: verification failed"
        sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$T/s_client.out" |
                openssl x509 -noout -text | sed -n 's/.*Public Key Algorithm: *//p'
}

c_tls13_rsa_cert() {
        local k
        k=$(s_client_key -tls1_3 -sigalgs rsa_pss_rsae_sha256:rsa_pss_rsae_sha384) || return 1
        [ "$k" = rsaEncryption ] || die "RSA-only client got a '$k' certificate"
}

c_tls13_ecdsa_cert() {
        local k
        k=$(s_client_key -tls1_3 -sigalgs ecdsa_secp256r1_sha256) || return 1
        [ "$k" = id-ecPublicKey ] || die "ECDSA-only client got a '$k' certificate"
}

c_tls12_rsa_cipher() {
        local k
        k=$(s_client_key -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256) || return 1
        [ "$k" = rsaEncryption ] || die "ECDHE-RSA client got a '$k' certificate"
}

c_tls12_ecdsa_cipher() {
        local k
        k=$(s_client_key -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256) || return 1
        [ "$k" = id-ecPublicKey ] || die "ECDHE-ECDSA client got a '$k' certificate"
}

c_pipelining() {
        local m f
        m=$(mark pipe)
        sw "$MAIN" --pipeline -t user@example.test,user2@example.test --header "Subject: $m" \
                >"$T/pipe.out" 2>&1 || { cat "$T/pipe.out"; die "swaks --pipeline failed"; }
        cat "$T/pipe.out"
        grep -q '^<-  250.PIPELINING' "$T/pipe.out" || die "EHLO does not offer PIPELINING"
        f=$(delivered "$m" 2) || die "not delivered to both recipients"
}

c_8bitmime() {
        local m f
        m=$(mark 8bit)
        raw 8bit "$PORT_main" --mark "$m" || die "8-bit transaction failed"
        f=$(delivered "$m") || die "not delivered"
        LC_ALL=C grep -q $'caf\xe9 na\xefve \xfcber' "$f" || die "8-bit body altered in transit"
}

c_smtputf8() {
        local m f
        m=$(mark utf8)
        raw utf8 "$PORT_main" --mark "$m" || die "SMTPUTF8 transaction failed"
        f=$(delivered "$m") || die "not delivered"
        grep -q '^Delivered-To: zoë@example.test' "$f" || die "UTF-8 recipient lost: $(grep -i '^Delivered-To' "$f")"
        grep -q 'Grüße aus Zürich' "$f" || die "UTF-8 body altered"
}

c_message_20mb() {
        local m f size
        m=$(mark big)
        raw send "$PORT_main" --mark "$m" --size 20000000 || die "20 MB transaction failed"
        f=$(delivered "$m") || die "not delivered"
        size=$(stat -c %s "$f")
        echo "delivered $size bytes"
        [ "$size" -ge 19500000 ] || die "delivered message has only $size bytes"
}

c_100_recipients() {
        local m n
        m=$(mark hundred)
        raw send "$PORT_main" --mark "$m" --rcpts 100 || die "100-recipient transaction failed"
        delivered "$m" 100 >/dev/null || die "only $(pf_backend_count "$PF" "$m") of 100 delivered"
        n=$(pf_backend_find "$PF" "$m" | xargs grep -h '^Delivered-To:' | sort -u | wc -l)
        [ "$n" = 100 ] || die "$n distinct recipients delivered, not 100"
}

c_refused_recipient_text() {
        local direct via
        direct=$(timeout 60 swaks --server "$BACKEND_IP:$P_PLAIN" -li "$CLIENT_IP" --helo client.example.net \
                -f sender@example.net -t nobody@example.test --quit-after RCPT 2>&1 | grep '^<\*\* *5')
        via=$(sw "$MAIN" -t nobody@example.test --quit-after RCPT 2>&1 | grep '^<\*\* *5')
        echo "backend: $direct"
        echo "proxy:   $via"
        [ -n "$direct" ] || die "the backend did not refuse nobody@example.test"
        [ "$direct" = "$via" ] || die "client saw '$via', backend said '$direct'"
}

c_backend_tls_verify() {
        local m f before after
        m=$(mark btls)
        before=$(grep -c 'TLS connection established' "$PF/maillog")
        sw "$PROXY_IP:$PORT_btls" -t user@example.test --header "Subject: $m" || die "swaks failed"
        f=$(delivered "$m") || die "not delivered"
        received_ok "$f" || return 1
        after=$(grep -c 'TLS connection established' "$PF/maillog")
        [ "$after" -gt "$before" ] || die "the backend saw no TLS connection"
        grep -m 1 -i '^Received:' < <(mt_headers "$f") | grep -q 'using TLSv1\.[23]' ||
                die "the backend's Received: shows no TLS"
}

c_backend_tls_wrong_ca() {
        local m out
        m=$(mark bwrong)
        out=$(sw "$PROXY_IP:$PORT_bwrong" -t user@example.test --header "Subject: $m" 2>&1)
        echo "$out"
        echo "$out" | grep -Eq '^<(\*\*|-) +4[0-9][0-9][ -]' || die "no 4xx reply to the client"
        grep -q '^<-  250 .*queued' <<<"$out" && die "the backend accepted the message"
        not_delivered "$m"
}

c_starttls_injection() {
        local m
        m=$(mark inject)
        raw injection "$PORT_main" --mark "$m" || die "the injected commands were executed"
        not_delivered "$m" || return 1
        ! grep -q 'from=<injector@evil.test>' "$PF/maillog" || die "the backend saw the injected MAIL FROM"
}

c_smuggling() {
        local v m rc=0
        for v in lf cr lf-dot-lf crlf-dot-lf lf-dot-crlf cr-dot-cr crlf-dot-cr; do
                m=$(mark "smuggle-$v")
                echo "--- variant $v"
                raw smuggle "$PORT_main" --variant "$v" --mark "$m" || { echo "variant $v: not refused" >&2; rc=1; }
                not_delivered "$m" || { echo "variant $v: delivered" >&2; rc=1; }
        done
        return $rc
}

c_nul_in_command() { raw nul-cmd "$PORT_main" || die "NUL in MAIL FROM not refused"; }

c_nul_in_body() {
        local m
        m=$(mark nul)
        raw nul-body "$PORT_main" --mark "$m" || die "NUL in the body not refused"
        not_delivered "$m"
}

c_long_command() { raw long-cmd "$PORT_main" || die "5000-byte command not refused"; }

c_long_text_line() {
        local m
        m=$(mark longline)
        raw long-line "$PORT_main" --mark "$m" || die "5000-byte text line not refused"
        not_delivered "$m"
}

c_long_header() {
        local m
        m=$(mark longhdr)
        raw long-header "$PORT_main" --mark "$m" || die "2 MB header not refused"
        not_delivered "$m"
}

c_pipelining_flood() {
        local t0 t1
        t0=$(date +%s)
        raw flood "$PORT_main" --count 5000 || die "flood: proxy did not answer or did not survive"
        t1=$(date +%s)
        echo "flood took $((t1 - t0)) s"
        proxyd_running main "$T" || die "the proxy died"
        [ $((t1 - t0)) -le 60 ] || die "flood took $((t1 - t0)) s"
}

c_bus_statistics() {
        local m before after rb ra
        before=$(prop MessagesRelayed) || die "cannot read MessagesRelayed over the bus"
        rb=$(prop RecipientsRelayed)
        m=$(mark bus)
        sw "$MAIN" -t user@example.test,user2@example.test --header "Subject: $m" || die "swaks failed"
        after=$(prop MessagesRelayed)
        ra=$(prop RecipientsRelayed)
        echo "MessagesRelayed $before -> $after, RecipientsRelayed $rb -> $ra"
        [ "$after" = $((before + 1)) ] || die "MessagesRelayed went from $before to $after"
        [ "$ra" = $((rb + 2)) ] || die "RecipientsRelayed went from $rb to $ra"
}

c_bus_protocol_errors() {
        # after the bad-input cases above, the counter must show them
        local n
        n=$(prop ProtocolErrors) || die "cannot read ProtocolErrors"
        echo "ProtocolErrors $n"
        [ "$n" -gt 0 ] || die "ProtocolErrors is $n after the bad-input cases"
}

c_max_sessions_per_client() {
        local port=$PORT_perclient i out
        exec {h1}> >(exec timeout 60 "$MT_PYTHON" "$RAW" hold $PROXY_IP "$port" --src $NET.101 >"$T/hold1.out" 2>&1)
        exec {h2}> >(exec timeout 60 "$MT_PYTHON" "$RAW" hold $PROXY_IP "$port" --src $NET.101 >"$T/hold2.out" 2>&1)
        for ((i = 0; i < 100; i++)); do
                grep -q GREETING "$T/hold1.out" 2>/dev/null && grep -q GREETING "$T/hold2.out" 2>/dev/null && break
                sleep 0.1
        done
        cat "$T/hold1.out" "$T/hold2.out"
        out=$(timeout 20 "$MT_PYTHON" "$RAW" hold $PROXY_IP "$port" --src $NET.101 </dev/null 2>&1)
        echo "third from $NET.101: $out"
        other=$(timeout 20 "$MT_PYTHON" "$RAW" hold $PROXY_IP "$port" --src $NET.102 </dev/null 2>&1)
        echo "first from $NET.102: $other"
        exec {h1}>&- {h2}>&-
        grep -q 'GREETING 220' "$T/hold1.out" && grep -q 'GREETING 220' "$T/hold2.out" ||
                die "the first two sessions were not greeted"
        [[ $out == *"GREETING 4"* || $out == *"GREETING None"* ]] ||
                die "the third session of one client was not refused: $out"
        [[ $other == *"GREETING 220"* ]] || die "another client was refused too: $other"
}

c_server_timeout() {
        local out secs
        out=$(timeout 60 "$MT_PYTHON" "$RAW" idle $PROXY_IP "$PORT_idle" --src "$CLIENT_IP" --wait 20 2>&1)
        echo "$out"
        [[ $out == *"verdict: ok"* ]] || die "an idle client was not disconnected with 421"
        secs=$(echo "$out" | sed -n 's/^closed after \([0-9]*\)\..*/\1/p')
        [ "${secs:-0}" -ge 2 ] || die "closed after ${secs}s, before ServerTimeoutSec=3s"
}

c_kill9_mid_data() {
        local m pid i out
        m=$(mark kill9)
        pid=$(proxyd_pid victim "$T")
        timeout 60 "$MT_PYTHON" "$RAW" halfdata $PROXY_IP "$PORT_victim" --src "$CLIENT_IP" \
                --mark "$m" --wait 20 >"$T/half.out" 2>&1 &
        local cpid=$!
        for ((i = 0; i < 150; i++)); do
                grep -q '^HALF' "$T/half.out" && break
                sleep 0.1
        done
        grep -q '^HALF' "$T/half.out" || { cat "$T/half.out"; die "client did not reach the middle of DATA"; }
        sleep 0.3
        kill -9 "$pid" || die "cannot kill $pid"
        wait "$cpid"
        local rc=$?
        cat "$T/half.out"
        [ $rc = 0 ] || die "client saw a 250 or failed"
        not_delivered "$m"
}

c_backend_down() {
        local out m
        m=$(mark down)
        pf_backend_stop "$PF"
        mt_wait_closed $BACKEND_IP "$P_PLAIN" 10 || die "Postfix still listens"
        out=$(sw "$MAIN" -t user@example.test --header "Subject: $m" 2>&1)
        echo "$out"
        echo "$out" | grep -Eq '^<(\*\*|-) +4[0-9][0-9][ -]' || die "no 4xx reply with the backend down"
        echo "$out" | grep -Eq '^<(\*\*|-) +5[0-9][0-9][ -]' && die "a 5xx with the backend down"
        proxyd_running main "$T" || die "the proxy died"
        local f
        f=$(prop BackendFailures) && echo "BackendFailures $f"
        [ "${f:-0}" -gt 0 ] || die "BackendFailures is ${f:-unreadable}"
}

run_case plain-xclient c_plain_xclient
run_case plain-proxy-v2 c_plain_proxy_v2
run_case starttls-verified c_starttls_verified
run_case starttls-xclient-proxy-address-only c_starttls_xclient_proxy_only
run_case starttls-wrong-ca-refused c_starttls_wrong_ca_refused
run_case tls13-rsa-certificate c_tls13_rsa_cert
run_case tls13-ecdsa-certificate c_tls13_ecdsa_cert
run_case tls12-ecdhe-rsa c_tls12_rsa_cipher
run_case tls12-ecdhe-ecdsa c_tls12_ecdsa_cipher
run_case pipelining c_pipelining
run_case 8bitmime c_8bitmime
run_case smtputf8 c_smtputf8
run_case message-20mb c_message_20mb
run_case 100-recipients c_100_recipients
run_case refused-recipient-text c_refused_recipient_text
run_case backend-tls-verify c_backend_tls_verify
run_case backend-tls-wrong-ca c_backend_tls_wrong_ca
run_case bus-statistics c_bus_statistics
run_case starttls-injection c_starttls_injection
run_case smuggling c_smuggling
run_case nul-in-command c_nul_in_command
run_case nul-in-body c_nul_in_body
run_case long-command c_long_command
run_case long-text-line c_long_text_line
run_case long-header c_long_header
run_case pipelining-flood c_pipelining_flood
run_case bus-protocol-errors c_bus_protocol_errors
run_case max-sessions-per-client c_max_sessions_per_client
run_case server-timeout c_server_timeout
run_case kill9-mid-data c_kill9_mid_data
run_case backend-down c_backend_down

echo "$PASSED passed, $FAILED failed"
[ "$RUN" -gt 0 ] || { echo "no case matched MT_CASES=$MT_CASES"; exit 1; }
[ "$FAILED" = 0 ]
