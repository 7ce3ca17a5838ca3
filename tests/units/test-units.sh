#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Checks of mailsec's unit files with systemd-analyze (no systemd as PID 1 needed).
#
#   test-units.sh verify UNITDIR      "systemd-analyze verify" on every unit in
#                                     UNITDIR (the build-tree copies, whose
#                                     ExecStart= points at the built binaries);
#                                     any output at all is a failure, because
#                                     unknown keys and bad values are only warnings
#   test-units.sh security UNITDIR THRESHOLD SERVICE...
#                                     "systemd-analyze security --offline=yes";
#                                     THRESHOLD is on systemd's 0..100 scale (10 x
#                                     the exposure shown), prints each score
#   test-units.sh policy FILE...      the D-Bus policy files load into dbus-daemon
#
# Exit status: 0 pass, 1 fail, 77 skipped (tool or binary missing).
set -u -o pipefail

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed"; }

units_in() { # the unit files of a directory, by name
        local f
        for f in "$1"/*.service "$1"/*.socket "$1"/*.timer; do
                [ -f "$f" ] && basename "$f"
        done
}

# ExecStart= binaries must exist, or verify fails for a reason that is not the unit's
need_binaries() {
        local dir=$1 u exe
        for u in $(units_in "$dir"); do
                for exe in $(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$dir/$u"); do
                        case $exe in
                        /bin/kill) ;;
                        *) [ -x "$exe" ] || skip "$exe is not built yet ($u)" ;;
                        esac
                done
        done
}

cmd_verify() {
        local dir=$1 out rc units
        need systemd-analyze
        need_binaries "$dir"
        units=$(units_in "$dir")
        [ -n "$units" ] || fail "no units in $dir"
        # --man=no: the man pages are not installed while testing from the build tree
        out=$(cd "$dir" && systemd-analyze verify --man=no $units 2>&1)
        rc=$?
        echo "systemd-analyze verify" $units
        [ -n "$out" ] && printf '%s\n' "$out"
        [ $rc = 0 ] || fail "verify exited with $rc"
        [ -z "$out" ] || fail "verify printed warnings"
        echo "ok: verify clean"
}

cmd_security() {
        local dir=$1 threshold=$2 s out rc bad=0
        shift 2
        need systemd-analyze
        for s in "$@"; do
                [ -f "$dir/$s" ] || fail "$dir/$s does not exist"
                out=$(cd "$dir" && systemd-analyze security --offline=yes --no-pager \
                        --threshold="$threshold" "$s" 2>&1)
                rc=$?
                # the detail lines of what is not yet locked down, then the score
                printf '%s\n' "$out" | grep -E '^✗' || true
                printf '%s\n' "$out" | grep -F 'Overall exposure level' ||
                        { printf '%s\n' "$out"; fail "no score for $s"; }
                if [ $rc != 0 ]; then
                        echo "FAIL: $s is above the threshold $threshold (0..100 scale)"
                        bad=1
                fi
        done
        [ $bad = 0 ] || exit 1
        echo "ok: exposure within $threshold/100"
}

cmd_policy() {
        local f i ok=0
        need dbus-daemon
        need xmllint
        POLICY_PID=
        POLICY_DIR=$(mktemp -d /tmp/mailsec-policy.XXXXXX) || fail "mktemp"
        trap '[ -n "$POLICY_PID" ] && { kill "$POLICY_PID" 2>/dev/null; wait "$POLICY_PID" 2>/dev/null; }; rm -rf "$POLICY_DIR"' EXIT
        local d=$POLICY_DIR pid
        {
                echo '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"'
                echo ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">'
                echo "<busconfig><type>system</type><listen>unix:path=$d/bus</listen><auth>EXTERNAL</auth>"
                for f in "$@"; do echo "<include>$(realpath "$f")</include>"; done
                echo '</busconfig>'
        } >"$d/bus.conf"
        for f in "$@"; do
                xmllint --noout --nonet "$f" 2>&1 || fail "$f is not well-formed"
        done
        dbus-daemon --config-file="$d/bus.conf" --nofork --nopidfile --nosyslog \
                </dev/null >"$d/log" 2>&1 &
        pid=$!
        POLICY_PID=$pid
        for ((i = 0; i < 100; i++)); do
                [ -S "$d/bus" ] && { ok=1; break; }
                kill -0 $pid 2>/dev/null || break
                sleep 0.05
        done
        cat "$d/log"
        [ $ok = 1 ] || fail "dbus-daemon refused the policy"
        # unknown users/groups (not created on the test host) are reported, nothing else
        if grep -q -v -e 'Unknown username' -e 'Unknown group' -e 'Failed to set fd limit' "$d/log"; then
                fail "dbus-daemon complained about the policy"
        fi
        echo "ok: policy accepted by dbus-daemon"
}

case ${1:-} in
verify) [ $# = 2 ] || fail "usage"; cmd_verify "$2" ;;
security) [ $# -ge 4 ] || fail "usage"; shift; cmd_security "$@" ;;
policy) [ $# -ge 2 ] || fail "usage"; shift; cmd_policy "$@" ;;
*) echo "usage: $0 verify UNITDIR | security UNITDIR THRESHOLD SERVICE... | policy FILE..." >&2; exit 2 ;;
esac
