#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The life cycle of mailsec-proxyd between real peers: reloads, signals, limits
# and failures of the daemon or of its backend (a private Postfix instance),
# with swaks, openssl s_client and Python clients. Loopback only (127.0.62.0/24).
#
#   test-lifecycle.sh CASE     CASE: reload, tls-policy, sigterm, max-sessions,
#                              backend-dies, proxy-killed, backend-reuse
#
# Every check prints "ok NAME" or "FAIL NAME: why"; the last line is
# "N passed, N failed" and the exit status is 1 when a check failed.
# Needs root (Postfix delivers as nobody), postfix, swaks, openssl,
# systemd-socket-activate and /usr/bin/python3; skips (77) without them.
#
# Env: MAILSEC_PROXYD (the daemon; else found in $MESON_BUILD_ROOT),
#      MT_KEEP=1 keeps the state directory.

set -uo pipefail
MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "$0")/../lib" && pwd)}
. "$MT_LIB_DIR/lib.sh"
. "$MT_LIB_DIR/pki.sh"
. "$MT_LIB_DIR/postfix-backend.sh"
. "$MT_LIB_DIR/proxyd.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT=$HERE/lifecycle-client.py

CASE=${1:-}
case $CASE in
reload|tls-policy|sigterm|max-sessions|backend-dies|proxy-killed|backend-reuse) ;;
*) echo "usage: $0 reload|tls-policy|sigterm|max-sessions|backend-dies|proxy-killed|backend-reuse" >&2; exit 2 ;;
esac

mt_need_root
mt_need postfix postconf swaks openssl systemd-socket-activate script ss timeout pgrep
[ -x "$MT_PYTHON" ] || { echo "SKIP: $MT_PYTHON is missing"; exit 77; }
MAILSEC_PROXYD=$(proxyd_find "${MESON_BUILD_ROOT:-}") || {
        echo "SKIP: mailsec-proxyd is not built (set MAILSEC_PROXYD or build services/proxyd)"
        exit 77
}
export MAILSEC_PROXYD

T=$(mktemp -d "/tmp/mailsec-lifecycle-$CASE.XXXXXX")
chmod 755 "$T"
PKI=$T/pki
PF=$T/postfix
NET=127.0.62
PROXY_IP=$NET.1
BACKEND_IP=$NET.2
PROXIES=()
CHILDREN=()
PASSED=0
FAILED=0

cleanup() {
        local p
        for p in "${CHILDREN[@]}"; do
                kill "$p" 2>/dev/null || true
        done
        for p in "${PROXIES[@]}"; do
                proxyd_stop "$p" "$T"
        done
        pf_backend_stop "$PF"
        if [ "${MT_KEEP:-0}" = 1 ] || [ "$FAILED" != 0 ]; then
                echo "state kept in $T"
        else
                rm -rf "$T"
        fi
}
trap cleanup EXIT
trap 'exit 1' TERM INT HUP

ok() { echo "ok   $CASE: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $CASE: $1"; FAILED=$((FAILED + 1)); }
# check NAME WHY COMMAND...: ok when COMMAND succeeds, else FAIL with WHY
check() {
        local name=$1 why=$2
        shift 2
        if "$@"; then ok "$name"; else fail "$name: $why"; fi
}
finish() {
        echo "$PASSED passed, $FAILED failed"
        [ "$FAILED" = 0 ]
        exit $?
}
# show FILE: a file's text, indented, for a failure's context
show() { sed 's/^/     | /' "$1" | tail -n "${2:-25}"; }
mark() { echo "mailsec-life-$1-$RANDOM$RANDOM"; }

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s
wait_for() {
        local secs=$1 i
        shift
        for ((i = 0; i < secs * 10; i++)); do
                "$@" && return 0
                sleep 0.1
        done
        return 1
}
exists() { [ -e "$1" ]; }
not() { ! "$@"; }
same_nonempty() { [ -n "$1" ] && [ "$1" = "$2" ]; }
dead() { ! kill -0 "$1" 2>/dev/null; }
log_has() { grep -Eq -- "$2" "$T/$1.log"; }

# cert_fp FILE: SHA-256 of a PEM certificate's DER form, lower-case hex
cert_fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- set-up
mt_pki "$PKI" || { echo "cannot make the test PKI"; FAILED=set-up; exit 1; }

P_BACKEND=$(mt_free_port $BACKEND_IP)
start_backend() { pf_backend_start "$PF" "$BACKEND_IP:$P_BACKEND"; }
start_backend || { echo "cannot start the Postfix backend"; FAILED=set-up; exit 1; }

# proxy_conf NAME [LINES...]: $T/NAME.conf relaying to the backend; LINES go
# into the [Limits] section unless they open a section of their own
proxy_conf() {
        local name=$1
        shift
        {
                echo "[Proxy]"
                echo "Hostname=mx.example.test"
                echo "Backend=$BACKEND_IP:$P_BACKEND"
                echo "[Timeouts]"
                echo "BackendConnectTimeoutSec=5s"
                echo "[Limits]"
                printf '%s\n' "$@"
        } >"$T/$name.conf"
}

# proxy NAME: start the daemon with $T/NAME.conf and wake it; sets PORT and PID
proxy() {
        local name=$1
        PORT=$(mt_free_port $PROXY_IP) || return 1
        PROXIES+=("$name")
        proxyd_start "$name" "$T" "$PROXY_IP:$PORT" "$T/$name.conf" nobus || return 1
        proxyd_wake "$name" "$T" $PROXY_IP "$PORT" || return 1
        PID=$(proxyd_pid "$name" "$T")
}

client() { timeout 120 "$MT_PYTHON" "$CLIENT" "$@"; }

# hold OUT ARGS...: a held session in the background; its PID in $HOLD_PID
hold() {
        local out=$1
        shift
        # a simple command: $! is timeout's PID, and timeout passes SIGTERM on
        timeout 120 "$MT_PYTHON" "$CLIENT" hold "$PROXY_IP" "$PORT" "$@" >"$out" 2>&1 &
        HOLD_PID=$!
        CHILDREN+=("$HOLD_PID")
}

# wait_child PID SECONDS: wait for a background child, bounded; its status
wait_child() {
        wait_for "$2" dead "$1" || { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 124; }
        wait "$1"
}

sw() { # sw PORT swaks-args...: one transaction through the proxy
        local port=$1
        shift
        timeout 60 swaks --server "$PROXY_IP:$port" --helo client.example.net \
                -f sender@example.net -t user@example.test --timeout 30 "$@"
}

delivered() { pf_backend_wait "$PF" "$1" 1 30 >/dev/null; }
# queue_settled: no committed message waits in the backend's queue. A queue
# file in incoming/ without the owner's x bit is one that smtpd never finished
# (it was killed mid-transaction): not a message, Postfix removes it later.
queue_settled() {
        [ -z "$(find "$PF/queue/incoming" -type f -perm -u+x 2>/dev/null | head -n 1)" ] &&
        [ -z "$(find "$PF/queue/active" "$PF/queue/deferred" "$PF/queue/maildrop" \
                -type f 2>/dev/null | head -n 1)" ]
}
# none_delivered MARK: after the queue settled, no message carries MARK
none_delivered() {
        wait_for 30 queue_settled || { echo "     queue of $PF not settled after 30 s"; return 1; }
        [ "$(pf_backend_count "$PF" "$1")" = 0 ]
}

# ---------------------------------------------------------------- cases

# 1. New certificates on SIGHUP, for new sessions only; a broken reload keeps
#    the running configuration.
case_reload() {
        local fpa fpb fpnew m out line
        mt_pki_leaf "$PKI" mx-ec-b ec mx.example.test localhost IP:127.0.0.1 || { fail "certificate B"; return; }
        fpa=$(cert_fp "$PKI/mx-ec.crt")
        fpb=$(cert_fp "$PKI/mx-ec-b.crt")
        [ "$fpa" != "$fpb" ] || { fail "certificates A and B are the same"; return; }
        install -m 644 "$PKI/mx-ec.chain.pem" "$T/live.chain.pem"
        install -m 600 "$PKI/mx-ec.key" "$T/live.key"
        proxy_conf reload "[TLS]" "CertificateFile=$T/live.chain.pem" "KeyFile=$T/live.key"
        proxy reload || { fail "cannot start the proxy"; return; }

        m=$(mark reload)
        hold "$T/old.out" --tls --ca "$PKI/ca.crt" --stop-after ehlo --ready "$T/old.ready" \
                --go "$T/old.go" --mark "$m"
        local old=$HOLD_PID
        if ! wait_for 30 exists "$T/old.ready"; then
                fail "old session: not ready"; show "$T/old.out"; return
        fi
        check "old session got certificate A" "got $(cat "$T/old.ready")" \
                [ "$(cat "$T/old.ready")" = "$fpa" ]

        # replace the files in place (as a renewal does), then SIGHUP
        install -m 644 "$PKI/mx-ec-b.chain.pem" "$T/live.chain.pem.new" &&
                mv "$T/live.chain.pem.new" "$T/live.chain.pem"
        install -m 600 "$PKI/mx-ec-b.key" "$T/live.key.new" && mv "$T/live.key.new" "$T/live.key"
        kill -HUP "$PID"
        check "SIGHUP reloads" "no 'Configuration reloaded' in the log" \
                wait_for 10 log_has reload 'Configuration reloaded'
        check "proxy alive after SIGHUP" "the daemon is gone" kill -0 "$PID"

        out=$(client fingerprint "$PROXY_IP" "$PORT" --ca "$PKI/ca.crt" 2>&1)
        fpnew=$(sed -n 's/^fingerprint: //p' <<<"$out")
        check "new session gets certificate B" "got '${fpnew:-nothing}': $out" [ "$fpnew" = "$fpb" ]

        : >"$T/old.go"
        wait_child "$old" 60
        check "old session completes its transaction after the reload" "$(tail -n 8 "$T/old.out" | tr '\n' ' ')" \
                grep -q '^final: 250$' "$T/old.out"
        check "old session stayed on its TLS connection" "no TLS in its output" \
                grep -q '^tls: TLSv1\.[23]' "$T/old.out"
        check "old session's message is in the Maildir" "mark $m not delivered" delivered "$m"

        # a broken configuration is refused with file:line, the running one stays
        cp "$T/reload.conf" "$T/reload.conf.good"
        printf '%s\n' "[Limits]" "MaxMessageSize=bogus" >>"$T/reload.conf"
        line=$(grep -n '^MaxMessageSize=bogus' "$T/reload.conf" | cut -d: -f1)
        kill -HUP "$PID"
        check "broken reload logs file:line" "no '$T/reload.conf:$line:' error in the log" \
                wait_for 10 log_has reload "$T/reload.conf:$line: .*keeping the running configuration"
        check "proxy alive after the broken reload" "the daemon is gone" kill -0 "$PID"
        out=$(client fingerprint "$PROXY_IP" "$PORT" --ca "$PKI/ca.crt" 2>&1)
        fpnew=$(sed -n 's/^fingerprint: //p' <<<"$out")
        check "after the broken reload: still served with certificate B" "got '${fpnew:-nothing}': $out" \
                [ "$fpnew" = "$fpb" ]
        m=$(mark after-bad-reload)
        sw "$PORT" --header "Subject: $m" >"$T/sw-bad.out" 2>&1
        check "after the broken reload: mail still relayed" "mark $m not delivered" delivered "$m"
        [ "$FAILED" = 0 ] || show "$T/reload.log" 40
}

# s_client_run OUT ARGS...: one STARTTLS handshake with openssl s_client
s_client_run() {
        local out=$1
        shift
        echo QUIT | timeout 20 openssl s_client -connect "$PROXY_IP:$PORT" -starttls smtp \
                -servername mx.example.test -CAfile "$PKI/ca.crt" "$@" >"$out" 2>&1
}
# leaf_key OUT: the public key algorithm of the leaf the server sent
leaf_key() {
        sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$1" | openssl x509 -noout -text 2>/dev/null |
                sed -n 's/.*Public Key Algorithm: *//p' | head -n 1
}
# handshake_done OUT: s_client negotiated a cipher
handshake_done() { grep -Eq '^(New|Reused), TLSv1\.[0-3], Cipher is [A-Z0-9]' "$1" && ! grep -q 'Cipher is (NONE)' "$1"; }
# sent_hello OUT: s_client did send a ClientHello (the refusal came from the server)
sent_hello() { grep -Eq 'SSL handshake has read [0-9]+ bytes and written [1-9]' "$1"; }

# 2. RSA and ECDSA side by side; only TLS 1.2+ with ECDHE and AEAD; no renegotiation.
case_tls_policy() {
        local k o=$T/s_client.out
        proxy_conf tls "[TLS]" "CertificateFile=$PKI/mx-rsa.chain.pem" "KeyFile=$PKI/mx-rsa.key" \
                "CertificateFile=$PKI/mx-ec.chain.pem" "KeyFile=$PKI/mx-ec.key"
        proxy tls || { fail "cannot start the proxy"; return; }

        s_client_run "$o" -tls1_2 -sigalgs ECDSA+SHA256
        k=$(leaf_key "$o")
        check "TLS 1.2 ECDSA+SHA256 client gets the ECDSA leaf" "got '$k'" [ "$k" = id-ecPublicKey ]
        check "ECDSA leaf verifies" "$(grep -m1 'Verify return code' "$o")" grep -q 'Verify return code: 0 (ok)' "$o"

        s_client_run "$o" -tls1_2 -sigalgs RSA-PSS+SHA256:RSA+SHA256
        k=$(leaf_key "$o")
        check "TLS 1.2 RSA client gets the RSA leaf" "got '$k'" [ "$k" = rsaEncryption ]
        check "RSA leaf verifies" "$(grep -m1 'Verify return code' "$o")" grep -q 'Verify return code: 0 (ok)' "$o"

        s_client_run "$o" -tls1_3 -sigalgs ecdsa_secp256r1_sha256
        k=$(leaf_key "$o")
        check "TLS 1.3 ECDSA client gets the ECDSA leaf" "got '$k'" [ "$k" = id-ecPublicKey ]

        # The client is allowed everything (security level 0), so a refusal is the server's.
        local v
        for v in tls1 tls1_1; do
                s_client_run "$o" "-$v" -cipher 'ALL:@SECLEVEL=0'
                if handshake_done "$o"; then
                        fail "-$v refused: negotiated $(grep -m1 'Cipher is' "$o")"
                elif ! sent_hello "$o"; then
                        fail "-$v refused: the client sent no ClientHello (cannot tell)"; show "$o" 8
                else
                        ok "-$v refused"
                fi
        done

        for k in AES128-SHA AES256-GCM-SHA384 ECDHE-RSA-AES128-SHA DHE-RSA-AES128-GCM-SHA256; do
                s_client_run "$o" -tls1_2 -cipher "$k:@SECLEVEL=0"
                if handshake_done "$o"; then
                        fail "TLS 1.2 cipher $k refused: $(grep -m1 'Cipher is' "$o")"
                else
                        ok "TLS 1.2 cipher $k refused"
                fi
        done
        s_client_run "$o" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
        check "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 accepted (control)" "$(grep -m1 'Cipher is' "$o")" \
                handshake_done "$o"

        # Renegotiation: s_client's "R" command asks for it after EHLO; the server
        # must refuse it (no_renegotiation alert), and the session must not go on.
        { sleep 1; echo "EHLO client.example.net"; sleep 1; echo R; sleep 2; echo "NOOP"; sleep 1; echo QUIT; sleep 1; } |
                timeout 30 openssl s_client -connect "$PROXY_IP:$PORT" -starttls smtp -tls1_2 -crlf \
                -CAfile "$PKI/ca.crt" -servername mx.example.test >"$o" 2>&1
        cp "$o" "$T/reneg.out"
        check "renegotiation: TLS 1.2 session and EHLO before it" "no TLS 1.2 session or EHLO reply" \
                grep -q '^250 ' <(sed -n '/Cipher is ECDHE/,/^RENEGOTIATING/p' "$o")
        if ! grep -q '^RENEGOTIATING' "$o"; then
                fail "renegotiation refused: s_client did not try"; show "$o" 15
        elif grep -q '^250 ' < <(sed -n '/^RENEGOTIATING/,$p' "$o"); then
                fail "renegotiation refused: the session went on after it"; show "$o" 15
        elif ! grep -q 'no renegotiation' "$o"; then
                fail "renegotiation refused: no 'no renegotiation' alert"; show "$o" 15
        else
                ok "renegotiation refused (no_renegotiation alert)"
        fi
}

# 3. SIGTERM: every session gets 421 4.3.2, the daemon exits 0.
case_sigterm() {
        local st plain tls
        proxy_conf term "[TLS]" "CertificateFile=$PKI/mx-ec.chain.pem" "KeyFile=$PKI/mx-ec.key"
        proxy term || { fail "cannot start the proxy"; return; }
        hold "$T/plain.out" --stop-after ehlo --ready "$T/plain.ready" --wait 30
        plain=$HOLD_PID
        hold "$T/tls.out" --tls --ca "$PKI/ca.crt" --stop-after mail --ready "$T/tls.ready" --wait 30
        tls=$HOLD_PID
        wait_for 30 exists "$T/plain.ready" && wait_for 30 exists "$T/tls.ready" || {
                fail "sessions not ready"; show "$T/plain.out"; show "$T/tls.out"; return
        }
        kill -TERM "$PID"
        if wait_for 10 dead "$PID"; then
                wait "$PID"
                st=$?
                ok "daemon exits within 10 s"
                check "exit status 0" "exit status $st" [ "$st" = 0 ]
        else
                fail "daemon exits within 10 s: still running"
        fi
        wait_child "$plain" 20
        wait_child "$tls" 20
        check "plain session gets 421 4.3.2" "$(tail -n 4 "$T/plain.out" | tr '\n' ' ')" \
                grep -q '^S: 421 4\.3\.2' "$T/plain.out"
        check "plain session closed" "no EOF" grep -q '^EOF$' "$T/plain.out"
        check "TLS session (after MAIL) gets 421 4.3.2" "$(tail -n 4 "$T/tls.out" | tr '\n' ' ')" \
                grep -q '^S: 421 4\.3\.2' "$T/tls.out"
        check "TLS session closed" "no EOF" grep -q '^EOF$' "$T/tls.out"
        check "shutdown logged" "no 'Shutting down' line" log_has term 'Shutting down, closing 2 session'
}

# 4. MaxSessions=3: the 4th concurrent connection gets 421 4.7.0 at once; a freed
#    place is served again.
case_max_sessions() {
        local i out t0 t1 pids=()
        proxy_conf max "MaxSessions=3" "MaxSessionsPerClient=100"
        proxy max || { fail "cannot start the proxy"; return; }
        # the wake-up session must be gone before we count
        sleep 1
        for i in 1 2 3; do
                hold "$T/h$i.out" --stop-after ehlo --ready "$T/h$i.ready" --wait 60
                pids+=("$HOLD_PID")
                wait_for 20 exists "$T/h$i.ready" || { fail "session $i not served"; show "$T/h$i.out"; return; }
        done
        ok "3 sessions served"
        t0=$(date +%s%N)
        out=$(client greet "$PROXY_IP" "$PORT" --timeout 5 2>&1)
        t1=$(date +%s%N)
        check "4th session gets 421 4.7.0" "got: $out" grep -q '^S: 421 4\.7\.0' <<<"$out"
        check "4th session refused at once (<2 s)" "took $(((t1 - t0) / 1000000)) ms" [ $((t1 - t0)) -lt 2000000000 ]
        check "4th session closed" "no EOF: $out" grep -q '^EOF$' <<<"$out"

        kill "${pids[0]}"
        wait "${pids[0]}" 2>/dev/null
        for ((i = 0; i < 50; i++)); do
                out=$(client greet "$PROXY_IP" "$PORT" --timeout 5 2>&1)
                grep -q '^S: 220' <<<"$out" && break
                sleep 0.2
        done
        check "after one closed, a new session is served" "got: $out" grep -q '^S: 220' <<<"$out"
        check "refusal logged" "no 'MaxSessions= reached'" log_has max 'MaxSessions= reached'
        kill "${pids[1]}" "${pids[2]}" 2>/dev/null
}

# kill_backend: SIGKILL the Postfix master and its children (smtpd included)
kill_backend() {
        local master kids
        master=$(mt_pid_of "$PF/queue/pid/master.pid")
        [ -n "$master" ] || return 1
        kids=$(pgrep -P "$master" | tr '\n' ' ')
        # shellcheck disable=SC2086
        kill -9 "$master" $kids
        wait_for 10 dead "$master"
}

# 5 and 7. The backend dies mid-transaction: 4xx, never 250, nothing delivered;
#    the transaction log carries MAILSEC_SESSION.
case_backend_dies() {
        local m f id rid line sid
        proxy_conf dies
        proxy dies || { fail "cannot start the proxy"; return; }

        # a good transaction first: its summary line and its Received: id
        m=$(mark good)
        sw "$PORT" --header "Subject: $m" >"$T/sw-good.out" 2>&1
        if f=$(pf_backend_wait "$PF" "$m" 1 30); then
                ok "transaction relayed"
                rid=$(mt_headers "$f" | sed -n 's/^Received: .*by mx\.example\.test (mailsec) .* id \([0-9a-f]\{16\}\)\..*/\1/p')
                line=$(grep -E 'from=<sender@example.net> nrcpt=1 size=[0-9]+ status=250' "$T/dies.log" | tail -n 1)
                id=$(sed -n 's/.* MAILSEC_SESSION=\([0-9a-f]*\)\b.*/\1/p' <<<"$line")
                check "summary line carries MAILSEC_SESSION=<16 hex>" "line: '$line'" \
                        grep -Eq '^[0-9a-f]{16}$' <<<"$id"
                check "summary line carries MAILSEC_CLIENT and MAILSEC_HELO" "line: '$line'" \
                        grep -Eq 'MAILSEC_CLIENT=127\.0\.0\.1:[0-9]+ .*MAILSEC_HELO=client\.example\.net' <<<"$line"
                check "MAILSEC_SESSION matches the Received: id" "log $id, Received: ${rid:-none}" \
                        same_nonempty "$id" "$rid"
        else
                fail "transaction relayed"; show "$T/sw-good.out"
        fi

        m=$(mark dies)
        hold "$T/dies.out" --stop-after rcpt --ready "$T/dies.ready" --go "$T/dies.go" --mark "$m"
        local c=$HOLD_PID
        wait_for 30 exists "$T/dies.ready" || { fail "session not ready"; show "$T/dies.out"; return; }
        check "backend killed (SIGKILL) after RCPT" "it survived" kill_backend
        : >"$T/dies.go"
        wait_child "$c" 60
        check "client gets a 4xx for DATA or the end of data" "$(tail -n 6 "$T/dies.out" | tr '\n' ' ')" \
                grep -Eq '^S: 4[0-9][0-9] ' <(sed -n '/RCPT TO/,$p' "$T/dies.out")
        check "client never gets 250 for the end of data" "$(grep '^final:' "$T/dies.out")" \
                not grep -q '^final: 250' "$T/dies.out"
        check "proxy alive" "the daemon is gone" kill -0 "$PID"

        line=$(grep -E 'from=<sender@example.net> nrcpt=1 size=[0-9]+ status=4[0-9][0-9]' "$T/dies.log" | tail -n 1)
        sid=$(sed -n 's/.* MAILSEC_SESSION=\([0-9a-f]*\)\b.*/\1/p' <<<"$line")
        check "failed transaction logged with MAILSEC_SESSION=<16 hex>" "line: '$line'" \
                grep -Eq '^[0-9a-f]{16}$' <<<"$sid"
        check "backend failure logged under the same session id" "no 'Backend failed' line for $sid" \
                log_has dies "Backend failed during .*MAILSEC_SESSION=${sid:-none}"
        # 451 4.3.0 replies name the session; 451 4.4.1 (backend down) replies do not
        if grep -q '^S: 451 4\.3\.0' "$T/dies.out"; then
                check "451 4.3.0 reply names the session" "$(grep '^S: 451' "$T/dies.out")" \
                        grep -q "^S: 451 4\.3\.0 .*$sid" "$T/dies.out"
        fi

        # the backend back: nothing of the failed transaction was delivered, and
        # the proxy relays again
        start_backend || { fail "backend restart"; return; }
        check "nothing delivered of the failed transaction" "mark $m in the Maildir" none_delivered "$m"
        m=$(mark again)
        sw "$PORT" --header "Subject: $m" >"$T/sw-again.out" 2>&1
        check "relays again once the backend is back" "mark $m not delivered" delivered "$m"
        [ "$FAILED" = 0 ] || show "$T/dies.log" 40
}

# 6. SIGKILL of the proxy at several points: never a 250 for the end of data,
#    never a message in the Maildir. The exception is the kill right after the
#    final dot: the backend may then have received the whole message and accepted
#    it although the client never heard so. This is SMTP's at-least-once
#    delivery: the client retries and the message may arrive twice, but it is
#    never lost, because the client was never told 250. To make this point
#    certain the backend delays its reply to the end of data by 3 s.
case_proxy_killed() {
        local p m c marks=()
        postconf -c "$PF/etc" -e 'smtpd_end_of_data_restrictions = sleep 3' >/dev/null &&
                postfix -c "$PF/etc" reload >/dev/null 2>&1 || { fail "cannot delay the backend"; return; }
        sleep 1
        for p in mail rcpt data body dot; do
                proxy_conf "kill-$p"
                proxy "kill-$p" || { fail "$p: cannot start the proxy"; continue; }
                m=$(mark "kill-$p")
                marks+=("$p:$m")
                hold "$T/$p.out" --stop-after "$p" --ready "$T/$p.ready" --mark "$m" --size 200000 --wait 20
                c=$HOLD_PID
                if ! wait_for 30 exists "$T/$p.ready"; then
                        fail "$p: session not ready"; show "$T/$p.out"; continue
                fi
                # (the shell's "Killed" notice about its own child is noise)
                { kill -9 "$PID"; wait_for 10 dead "$PID" && wait "$PID"; } 2>/dev/null ||
                        true
                dead "$PID" || { fail "$p: daemon survived SIGKILL"; continue; }
                wait_child "$c" 30
                check "killed after $p: client sees the connection close" "$(tail -n 3 "$T/$p.out" | tr '\n' ' ')" \
                        grep -q '^EOF$' "$T/$p.out"
                check "killed after $p: no 250 for the end of data" "$(grep '^final:' "$T/$p.out")" \
                        grep -q '^final: none$' "$T/$p.out"
        done
        postconf -c "$PF/etc" -e 'smtpd_end_of_data_restrictions =' >/dev/null
        postfix -c "$PF/etc" reload >/dev/null 2>&1
        sleep 4   # a backend smtpd still sleeping on the last message
        wait_for 30 queue_settled
        for p in "${marks[@]}"; do
                m=${p#*:}
                p=${p%%:*}
                if [ "$p" = dot ]; then
                        echo "     killed after dot: $(pf_backend_count "$PF" "$m") copy(ies) delivered (0 or 1 is right)"
                        check "killed after dot: at most one copy delivered" "$(pf_backend_count "$PF" "$m") copies" \
                                [ "$(pf_backend_count "$PF" "$m")" -le 1 ]
                else
                        check "killed after $p: nothing delivered" "mark $m in the Maildir" none_delivered "$m"
                fi
        done
        # a proxy started again serves as before
        proxy_conf again
        proxy again || { fail "restart after SIGKILL"; return; }
        m=$(mark again)
        sw "$PORT" --header "Subject: $m" >"$T/sw-again.out" 2>&1
        check "a restarted proxy relays" "mark $m not delivered" delivered "$m"
}

# 8. BackendReuse=: with BackendClientInfo=none a session that ends cleanly leaves its
#    backend connection to the next one; XCLIENT never reuses; a backend restart
#    costs the next client nothing.
backend_connects() { grep -c "smtpd\[[0-9]*\]: connect from" "$PF/maillog"; }

case_backend_reuse() {
        local m before after i
        proxy_conf reuse "[Proxy]" "BackendClientInfo=none" "[Timeouts]" "BackendReuseTimeoutSec=60s"
        proxy reuse || { fail "cannot start the proxy"; return; }

        before=$(backend_connects)
        for i in 1 2 3; do
                m=$(mark reuse$i)
                sw "$PORT" --header "Subject: $m" >"$T/sw-reuse$i.out" 2>&1
                check "message $i relayed" "mark $m not delivered" delivered "$m"
        done
        after=$(backend_connects)
        # One at most: the connection parked by the session that woke the daemon
        # may serve all three. Without reuse it would be three.
        check "three sessions, at most one new backend connection" "$((after - before)) connections" \
                test "$((after - before))" -le 1

        # The backend restarts: the parked connection is gone, the next client must
        # not notice.
        pf_backend_stop "$PF"
        start_backend || { fail "backend restart"; return; }
        m=$(mark afterrestart)
        sw "$PORT" --header "Subject: $m" >"$T/sw-restart.out" 2>&1
        check "relays after a backend restart, client got 250" "$(tail -n 4 "$T/sw-restart.out" | tr '\n' ' ')" \
                grep -q '^<- *250 .*\(queued\|Ok\)' "$T/sw-restart.out"
        check "message after the restart delivered" "mark $m not delivered" delivered "$m"

        # A session that ends inside a transaction (MAIL sent, then QUIT) never
        # leaves its connection: the next session gets a fresh one.
        before=$(backend_connects)
        m=$(mark midtx)
        timeout 60 swaks --server "$PROXY_IP:$PORT" --helo client.example.net -f sender@example.net \
                -t user@example.test --quit-after RCPT >"$T/sw-midtx.out" 2>&1
        m=$(mark aftermidtx)
        sw "$PORT" --header "Subject: $m" >"$T/sw-aftermidtx.out" 2>&1
        check "message after an abandoned transaction delivered" "mark $m not delivered" delivered "$m"
        after=$(backend_connects)
        # The abandoned session may have taken the parked connection, but it must not
        # hand it on: the session after it needs a connection of its own.
        check "an abandoned transaction's connection is not reused" "$((after - before)) connections" \
                test "$((after - before))" -ge 1

        # BackendReuse=no: every session connects.
        proxy_conf noreuse "[Proxy]" "BackendClientInfo=none" "BackendReuse=no"
        proxy noreuse || { fail "cannot start the proxy without reuse"; return; }
        before=$(backend_connects)
        for i in 1 2; do
                m=$(mark noreuse$i)
                sw "$PORT" --header "Subject: $m" >"$T/sw-noreuse$i.out" 2>&1
                check "BackendReuse=no: message $i relayed" "mark $m not delivered" delivered "$m"
        done
        after=$(backend_connects)
        check "BackendReuse=no: one backend connection per session" "$((after - before)) connections" \
                test "$((after - before))" = 2

        # XCLIENT names the client per connection: no reuse.
        proxy_conf xclient "[Proxy]" "BackendClientInfo=xclient"
        proxy xclient || { fail "cannot start the XCLIENT proxy"; return; }
        before=$(backend_connects)
        for i in 1 2; do
                m=$(mark xclient$i)
                sw "$PORT" --header "Subject: $m" >"$T/sw-xclient$i.out" 2>&1
                check "XCLIENT message $i relayed" "mark $m not delivered" delivered "$m"
        done
        after=$(backend_connects)
        check "XCLIENT: one backend connection per session" "$((after - before)) connections" \
                test "$((after - before))" = 2
        [ "$FAILED" = 0 ] || show "$T/reuse.log" 40
}

case_${CASE//-/_}
finish
