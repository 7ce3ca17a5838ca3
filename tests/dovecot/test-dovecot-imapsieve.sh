#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# "Train when I move mail to Junk": a private Dovecot with the IMAPSieve files of
# docs/dovecot-imapsieve/ (configuration snippet, Sieve scripts, mailsec-report),
# the real mailsec-spamd on a private bus, and a real IMAP client (python3 imaplib)
# moving one user's mail around.
#
# Dovecot runs as root with its own configuration, base_dir and state_dir in the state
# directory; the system Dovecot is neither used nor touched. Alice's mail processes,
# and so the Sieve scripts and mailsec-report, run as nobody:nogroup, the user named
# in TrustedReporters= of spamd's configuration. Everything listens on 127.0.93.1.
#
# Dovecot starts pipe programs with a cleaned environment, so the program Dovecot
# runs here is a wrapper that points DBUS_SYSTEM_BUS_ADDRESS at the private bus and
# MAILSECCTL at the build tree, then runs docs/dovecot-imapsieve/mailsec-report
# unchanged. An installation needs no wrapper: the system bus is the default.
#
# Needs root, dovecot with the imap_sieve and sieve_extprograms plugins, sievec,
# dbus-daemon, dbus-monitor, sha256sum and /usr/bin/python3; skips (77) without
# them or without a built mailsec-spamd and mailsecctl.
#
# Env: MAILSEC_SPAMD, MAILSECCTL (else found in $MESON_BUILD_ROOT or build/),
#      MT_KEEP=1 keeps the state directory.

set -uo pipefail
MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "$0")/../lib" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# shellcheck source=tests/lib/private-bus.sh
. "$MT_LIB_DIR/private-bus.sh"

SRC=$(cd "$MT_LIB_DIR/../.." && pwd)
DOCS=$SRC/docs/dovecot-imapsieve
CLIENT=$(cd "$(dirname "$0")" && pwd)/imap-client.py

if [ "$(id -u)" != 0 ]; then
        echo "SKIP: needs root (a private Dovecot whose mail processes run as nobody)"
        exit 77
fi
mt_need dovecot sievec dbus-daemon dbus-monitor sha256sum ss setpriv timeout
[ -x "$MT_PYTHON" ] || { echo "SKIP: $MT_PYTHON is missing"; exit 77; }
if ! getent passwd nobody >/dev/null || ! getent group nogroup >/dev/null; then
        echo "SKIP: no user nobody or group nogroup for the mail processes"
        exit 77
fi
for m in /usr/lib/dovecot/modules/lib95_imap_sieve_plugin.so \
        /usr/lib/dovecot/modules/sieve/lib90_sieve_extprograms_plugin.so \
        /usr/lib/dovecot/modules/sieve/lib90_sieve_imapsieve_plugin.so; do
        [ -e "$m" ] || { echo "SKIP: $m is missing (dovecot-sieve)"; exit 77; }
done

# find_built VAR RELPATH: $VAR if set (meson sets it), else RELPATH in
# $MESON_BUILD_ROOT or in the source tree's build/
find_built() {
        local var=$1 rel=$2 d
        if [ -n "${!var:-}" ]; then
                [ -x "${!var}" ] && echo "${!var}"
                return
        fi
        for d in "${MESON_BUILD_ROOT:-}" "$SRC/build"; do
                [ -n "$d" ] && [ -x "$d/$rel" ] && { echo "$d/$rel"; return; }
        done
}
MAILSEC_SPAMD=$(find_built MAILSEC_SPAMD services/spamd/mailsec-spamd)
MAILSECCTL=$(find_built MAILSECCTL tools/mailsecctl/mailsecctl)
[ -n "$MAILSEC_SPAMD" ] || { echo "SKIP: mailsec-spamd is not built (set MAILSEC_SPAMD)"; exit 77; }
[ -n "$MAILSECCTL" ] || { echo "SKIP: mailsecctl is not built (set MAILSECCTL)"; exit 77; }
for f in 90-mailsec-imapsieve.conf report-spam.sieve report-ham.sieve mailsec-report; do
        [ -r "$DOCS/$f" ] || { echo "missing $DOCS/$f"; exit 1; }
done

T=$(mktemp -d /tmp/mailsec-dovecot.XXXXXX)
# Alice's mail processes (nobody) reach her Maildir, the scripts and the bus through it.
chmod 711 "$T"
BUS=$T/bus
IP=127.0.93.1
MAIL_USER=nobody
MAIL_GROUP=nogroup
export IMAP_USER=alice IMAP_PASSWORD=alice-secret-93
START=$SECONDS

cleanup() {
        [ -f "$T/dovecot/run/master.pid" ] && mt_kill_pidfile "$T/dovecot/run/master.pid"
        mt_kill_pidfile "$T/spamd.pid"
        mt_kill_pidfile "$T/monitor.pid"
        bus_stop "$BUS"
        if [ "${MT_KEEP:-0}" = 1 ] || [ "${FAILED:-0}" != 0 ]; then
                echo "state kept in $T"
        else
                rm -rf "$T"
        fi
}
trap cleanup EXIT
trap 'exit 1' TERM INT HUP

die() { echo "$*" >&2; exit 1; }

# ---------------------------------------------------------------- mailsec-spamd
# spamd_start [CONFIG-LINES]: mailsec-spamd as root on the private bus, the
# statistics in $T/spamd-state (kept across restarts); the lines go to [Learning],
# after a ReportsPerHour=0 they may override
spamd_start() {
        local i
        {
                echo "[Learning]"
                echo "ReportsPerHour=0"
                printf '%s\n' "$@"
                echo "[Service]"
                echo "IdleTimeoutSec=600s"
        } >"$T/spamd.conf"
        "$MAILSEC_SPAMD" --config "$T/spamd.conf" --state-dir "$T/spamd-state" \
                </dev/null >>"$T/spamd.log" 2>&1 &
        echo $! >"$T/spamd.pid"
        for ((i = 0; i < 100; i++)); do
                "$MAILSECCTL" spam stats >/dev/null 2>&1 && return 0
                kill -0 "$(mt_pid_of "$T/spamd.pid")" 2>/dev/null || break
                sleep 0.1
        done
        cat "$T/spamd.log" >&2
        return 1
}

spamd_stop() {
        mt_kill_pidfile "$T/spamd.pid"
}

# spam_stat NAME: one of spamd's statistics
spam_stat() {
        "$MAILSECCTL" spam stats | awk -v k="$1" '$1 == k ":" { print $2 }'
}

# stats_are SPAM HAM ACCEPTED REFUSED: wait up to 5 s for these statistics
stats_are() {
        local want="$1 $2 $3 $4" got i
        for ((i = 0; i < 50; i++)); do
                got="$(spam_stat SpamLearned) $(spam_stat HamLearned) $(spam_stat ReportsAccepted) $(spam_stat ReportsRefused)"
                [ "$got" = "$want" ] && return 0
                sleep 0.1
        done
        echo "spamd statistics (spam ham accepted refused): $got, expected $want" >&2
        return 1
}

# ---------------------------------------------------------------- Dovecot
DC=$T/dovecot
dovecot_setup() {
        local port=$1
        mkdir -p "$DC/run" "$DC/state" "$T/sieve" "$T/sieve-pipe" "$T/home/alice" || return 1
        chown "$MAIL_USER:$MAIL_GROUP" "$T/home/alice"
        chmod 700 "$T/home/alice"

        # The administrator's files, as README.md installs them, at paths in $T.
        sed -e "s|/etc/dovecot/sieve/mailsec|$T/sieve|g" \
            -e "s|/usr/local/lib/mailsec/sieve-pipe|$T/sieve-pipe|g" \
                "$DOCS/90-mailsec-imapsieve.conf" >"$DC/90-mailsec-imapsieve.conf"
        if ! grep -q "$T/sieve/report-spam.sieve" "$DC/90-mailsec-imapsieve.conf" ||
                ! grep -q "$T/sieve/report-ham.sieve" "$DC/90-mailsec-imapsieve.conf" ||
                ! grep -q "sieve_pipe_bin_dir = $T/sieve-pipe" "$DC/90-mailsec-imapsieve.conf"; then
                die "90-mailsec-imapsieve.conf no longer names the paths README.md installs to"
        fi
        install -m 644 "$DOCS/report-spam.sieve" "$DOCS/report-ham.sieve" "$T/sieve/"
        install -m 755 "$DOCS/mailsec-report" "$T/mailsec-report"
        cat >"$T/sieve-pipe/mailsec-report" <<EOF
#!/bin/sh
# Test only: Dovecot clears the environment; an installation uses the system bus.
DBUS_SYSTEM_BUS_ADDRESS='$DBUS_SYSTEM_BUS_ADDRESS'
MAILSECCTL='$MAILSECCTL'
MAILSEC_REPORT_TIMEOUT=1
export DBUS_SYSTEM_BUS_ADDRESS MAILSECCTL MAILSEC_REPORT_TIMEOUT
exec /bin/sh '$T/mailsec-report' "\$@"
EOF
        chmod 755 "$T/sieve-pipe/mailsec-report"

        echo "$IMAP_USER:{PLAIN}$IMAP_PASSWORD:$(id -u $MAIL_USER):$(getent group $MAIL_GROUP | cut -d: -f3)::$T/home/alice::" \
                >"$DC/passwd"
        chmod 644 "$DC/passwd"

        cat >"$DC/dovecot.conf" <<EOF
# A private Dovecot for test-dovecot-imapsieve.sh; nothing of /etc/dovecot is read.
instance_name = mailsec-test-imapsieve
base_dir = $DC/run
state_dir = $DC/state
protocols = imap
listen = $IP
log_path = $DC/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC/passwd
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  mailbox Junk {
    auto = create
    special_use = \Junk
  }
  mailbox Trash {
    auto = create
    special_use = \Trash
  }
  mailbox Archive {
    auto = create
    special_use = \Archive
  }
}
service imap-login {
  inet_listener imap {
    address = $IP
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
!include $DC/90-mailsec-imapsieve.conf
plugin {
  # shorter than the snippet's 10s for the case of a hung mailsec-spamd, and longer
  # than MAILSEC_REPORT_TIMEOUT of the wrapper, as in an installation
  sieve_pipe_exec_timeout = 3s
}
EOF
        # What an installation does after copying the scripts: compile them as root,
        # since the mail user may not write next to them.
        if ! sievec -c "$DC/dovecot.conf" "$T/sieve/report-spam.sieve" ||
                ! sievec -c "$DC/dovecot.conf" "$T/sieve/report-ham.sieve"; then
                die "sievec cannot compile the Sieve scripts"
        fi
        doveconf -c "$DC/dovecot.conf" -n >"$DC/doveconf.out" 2>&1 || {
                cat "$DC/doveconf.out" >&2
                die "Dovecot refuses the configuration"
        }
}

dovecot_start() {
        dovecot -c "$DC/dovecot.conf" || { cat "$DC/dovecot.log" >&2; return 1; }
        mt_wait_tcp "$IP" "$PORT" 10 || { cat "$DC/dovecot.log" >&2; return 1; }
}

imap() { "$MT_PYTHON" "$CLIENT" "$IP" "$PORT" "$@"; }

# in_box MAILBOX MESSAGE-ID N: the message is there N times
in_box() {
        local n
        n=$(imap count "$1" "$2") || die "cannot look into $1"
        [ "$n" = "$3" ] || die "$2 is $n times in $1, expected $3"
}

# message FILE MESSAGE-ID SUBJECT: a message with CRLF line ends, as clients send them
message() {
        printf '%s\r\n' \
                "From: Prize Desk <winner@lottery.example>" \
                "To: Alice <alice@example.org>" \
                "Subject: $3" \
                "Date: Fri, 27 Nov 2026 10:00:00 +0000" \
                "Message-ID: $2" \
                "MIME-Version: 1.0" \
                "Content-Type: text/plain; charset=us-ascii" \
                "" \
                "You have won a prize. Claim your million now, click the link below." \
                "Limited offer, act today: http://claim.lottery.example/alice" >"$1"
}

# learned_signals: the Learned signals so far, one "DIGEST CLASS SOURCE" a line
learned_signals() {
        awk '/member=Learned/ { n = 3; line = ""; next }
             n > 0 && $1 == "string" { gsub(/"/, "", $2); line = line (line ? " " : "") $2
                                       if (--n == 0) print line }' "$T/monitor.log"
}

# ---------------------------------------------------------------- set-up
FAILED=set-up
bus_start "$BUS" || exit 1
chmod 711 "$BUS"
dbus-monitor --address "$DBUS_SYSTEM_BUS_ADDRESS" \
        "type='signal',interface='ch.webtrend.Mailsec.Spam1.Manager',member='Learned'" \
        >"$T/monitor.log" 2>&1 &
echo $! >"$T/monitor.pid"
spamd_start "TrustedReporters=$MAIL_USER" || die "mailsec-spamd does not start"
PORT=$(mt_free_port "$IP") || exit 1
dovecot_setup "$PORT" || exit 1
dovecot_start || die "Dovecot does not start"

M1=$T/m1.eml
ID1="<prize-$RANDOM$RANDOM@lottery.example>"
message "$M1" "$ID1" "You are a winner"
D1=$(sha256sum "$M1" | cut -d' ' -f1)

# ---------------------------------------------------------------- cases
PASSED=0
FAILED=0

run_case() {
        local name=$1 fn=$2 why t0
        mkdir -p "$T/cases"
        t0=$(date +%s%3N)
        if why=$("$fn" 2>&1 >"$T/cases/$name.out"); then
                echo "ok   $name ($(($(date +%s%3N) - t0)) ms)"
                PASSED=$((PASSED + 1))
        else
                echo "FAIL $name: ${why:-see $T/cases/$name.out}"
                FAILED=$((FAILED + 1))
        fi
}

c_append_inbox_reports_nothing() {
        imap append INBOX "$M1" || die "APPEND to INBOX failed"
        in_box INBOX "$ID1" 1
        stats_are 0 0 0 0
}

c_move_to_junk_reports_spam() {
        imap move INBOX Junk "$ID1" || die "MOVE to Junk failed"
        in_box Junk "$ID1" 1
        in_box INBOX "$ID1" 0
        stats_are 1 0 1 0
        # reported by the IMAP user, the whole message as the client stored it
        grep -q "Learned $D1 as spam (report, imap:$IMAP_USER)" "$T/spamd.log" ||
                die "spamd's log has no spam report of $D1 by imap:$IMAP_USER"
}

c_move_out_of_junk_reports_ham() {
        imap move Junk INBOX "$ID1" || die "MOVE to INBOX failed"
        in_box INBOX "$ID1" 1
        stats_are 0 1 2 0
        grep -q "Learned $D1 as ham (report, imap:$IMAP_USER)" "$T/spamd.log" ||
                die "spamd's log has no ham report of $D1 by imap:$IMAP_USER"
}

c_copy_delete_to_junk_reports_spam() {
        imap copy-delete INBOX Junk "$ID1" || die "COPY to Junk and EXPUNGE failed"
        in_box Junk "$ID1" 1
        in_box INBOX "$ID1" 0
        stats_are 1 0 3 0
}

c_append_to_junk_again_counts_once() {
        # a second copy of the same message arrives in Junk: reported, learned once
        imap append Junk "$M1" || die "APPEND to Junk failed"
        in_box Junk "$ID1" 2
        stats_are 1 0 4 0
        [ "$(grep -c "Learned $D1 as spam" "$T/spamd.log")" = 2 ] ||
                die "expected two spam learns of $D1 in spamd's log (moved twice), got others"
}

c_junk_to_trash_reports_nothing() {
        imap move Junk Trash "$ID1" || die "MOVE to Trash failed"
        in_box Trash "$ID1" 1
        in_box Junk "$ID1" 1
        sleep 0.5
        stats_are 1 0 4 0
}

c_learned_signals() {
        local want got
        want=$(printf '%s\n' "$D1 spam report" "$D1 ham report" "$D1 spam report")
        for ((i = 0; i < 30; i++)); do
                got=$(learned_signals)
                [ "$got" = "$want" ] && return 0
                sleep 0.1
        done
        printf 'Learned signals:\n%s\nexpected:\n%s\n' "$got" "$want" >&2
        return 1
}

c_bulk_move_reports_each() {
        local i files=() n t0
        for ((i = 1; i <= 20; i++)); do
                message "$T/bulk$i.eml" "<bulk-$i-$RANDOM$RANDOM@lottery.example>" "Bulk offer number $i"
                echo "Unsubscribe code $i$RANDOM" >>"$T/bulk$i.eml"
                files+=("$T/bulk$i.eml")
        done
        imap append INBOX "${files[@]}" || die "APPEND to INBOX failed"
        t0=$(date +%s%3N)
        n=$(imap move-subject INBOX Junk "Bulk offer") || die "MOVE of 20 messages to Junk failed"
        echo "20 messages moved and reported in $(($(date +%s%3N) - t0)) ms"
        [ "$n" = 20 ] || die "moved $n messages, expected 20"
        stats_are 21 0 24 0
}

c_spamd_stopped_move_succeeds() {
        local t0
        spamd_stop
        t0=$SECONDS
        imap move Junk Archive "$ID1" || die "MOVE to Archive failed while mailsec-spamd is stopped"
        [ $((SECONDS - t0)) -lt 8 ] || die "the MOVE took $((SECONDS - t0)) s"
        in_box Archive "$ID1" 1
        in_box Junk "$ID1" 0
        grep -q "mailsec-report: mailsec-spamd is not available, the ham report of imap:$IMAP_USER was dropped" \
                "$DC/dovecot.log" || die "Dovecot's log does not say that the report was dropped"
        # the report was dropped, not queued
        spamd_start "TrustedReporters=$MAIL_USER" || die "mailsec-spamd does not start again"
        stats_are 21 0 0 0
}

c_spamd_hung_move_succeeds() {
        local t0 id3="<hang-$RANDOM$RANDOM@lottery.example>" m3=$T/m3.eml pid r
        message "$m3" "$id3" "Prize while the filter hangs"
        imap append INBOX "$m3" || die "APPEND to INBOX failed"
        pid=$(mt_pid_of "$T/spamd.pid")
        kill -STOP "$pid" || die "cannot stop mailsec-spamd"
        t0=$SECONDS
        imap move INBOX Junk "$id3"
        r=$?
        kill -CONT "$pid"
        [ "$r" = 0 ] || die "MOVE to Junk failed while mailsec-spamd hangs"
        [ $((SECONDS - t0)) -lt 8 ] || die "the MOVE took $((SECONDS - t0)) s"
        in_box Junk "$id3" 1
        grep -q "mailsec-report: mailsec-spamd did not answer within 1 s, the spam report of imap:$IMAP_USER" \
                "$DC/dovecot.log" || die "Dovecot's log does not say that mailsec-spamd did not answer"
}

c_rate_limited() {
        local i files=() n spam
        spamd_stop
        spamd_start "TrustedReporters=$MAIL_USER" "ReportsPerHour=2" || die "mailsec-spamd does not start again"
        spam=$(spam_stat SpamLearned)
        for ((i = 1; i <= 3; i++)); do
                message "$T/rate$i.eml" "<rate-$i-$RANDOM$RANDOM@lottery.example>" "Rate offer $i"
                echo "Rate code $i$RANDOM" >>"$T/rate$i.eml"
                files+=("$T/rate$i.eml")
        done
        imap append INBOX "${files[@]}" || die "APPEND to INBOX failed"
        n=$(imap move-subject INBOX Junk "Rate offer") || die "MOVE to Junk failed with reports refused"
        [ "$n" = 3 ] || die "moved $n messages, expected 3"
        # two of these three
        stats_are $((spam + 2)) 0 2 1
        grep -q "mailsec-report: the spam report of imap:$IMAP_USER failed (mailsecctl exit 1): .*imap:$IMAP_USER sent 2 reports in the last hour already" \
                "$DC/dovecot.log" || die "Dovecot's log does not say that the report was rate-limited"
}

bad() { # bad ARGS...: mailsec-report as the mail user, with a message on stdin
        setpriv --reuid="$MAIL_USER" --regid="$MAIL_GROUP" --clear-groups \
                "$T/sieve-pipe/mailsec-report" "$@" <"$M1" 2>>"$T/bad-args.err" ||
                die "mailsec-report $* exited non-zero"
}

# mailsec-report itself, as Dovecot runs it (as the mail user, through the wrapper),
# with arguments it must refuse: it exits 0, reads its input and reports nothing.
c_bad_arguments() {
        local before after
        before=$(spam_stat ReportsAccepted)/$(spam_stat ReportsRefused)
        bad spam
        bad spam 'alice;id'
        bad spam 'ali ce'
        bad junk alice
        bad
        bad ham "$(printf 'a%.0s' {1..300})"
        cat "$T/bad-args.err"
        [ "$(grep -c '^mailsec-report: ' "$T/bad-args.err")" = 6 ] ||
                die "expected one log line per refused call: $(cat "$T/bad-args.err")"
        after=$(spam_stat ReportsAccepted)/$(spam_stat ReportsRefused)
        [ "$before" = "$after" ] || die "reports went from $before to $after (accepted/refused)"
}

c_untrusted_mail_user_refused() {
        local m2=$T/m2.eml id2="<offer-$RANDOM$RANDOM@lottery.example>"
        spamd_stop
        spamd_start || die "mailsec-spamd does not start again"
        message "$m2" "$id2" "Another prize"
        imap append INBOX "$m2" || die "APPEND to INBOX failed"
        imap move INBOX Junk "$id2" || die "MOVE to Junk failed with the report refused"
        in_box Junk "$id2" 1
        stats_are 21 0 0 1
        grep -q "mailsec-report: the spam report of imap:$IMAP_USER failed" "$DC/dovecot.log" ||
                die "Dovecot's log does not say that the report failed"
}

FAILED=0
run_case append-inbox-reports-nothing c_append_inbox_reports_nothing
run_case move-to-junk-reports-spam c_move_to_junk_reports_spam
run_case move-out-of-junk-reports-ham c_move_out_of_junk_reports_ham
run_case copy-delete-to-junk-reports-spam c_copy_delete_to_junk_reports_spam
run_case append-to-junk-again-counts-once c_append_to_junk_again_counts_once
run_case junk-to-trash-reports-nothing c_junk_to_trash_reports_nothing
run_case learned-signals c_learned_signals
run_case bulk-move-reports-each c_bulk_move_reports_each
run_case spamd-stopped-move-succeeds c_spamd_stopped_move_succeeds
run_case untrusted-mail-user-refused c_untrusted_mail_user_refused
run_case spamd-hung-move-succeeds c_spamd_hung_move_succeeds
run_case rate-limited-reports-moves-succeed c_rate_limited
run_case report-program-refuses-bad-arguments c_bad_arguments

# A report that cannot be made is one line of mailsec-report's in the log, never a
# Sieve error (a failed or killed program) or worse.
if grep -E "Fatal|Panic|sieve: |program exec:" "$DC/dovecot.log" >&2; then
        echo "FAIL Dovecot logged errors besides mailsec-report's"
        FAILED=$((FAILED + 1))
fi
echo "$PASSED passed, $FAILED failed ($((SECONDS - START)) s)"
[ "$FAILED" = 0 ]
