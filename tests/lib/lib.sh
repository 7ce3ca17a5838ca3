# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Common helpers of mailsec's shell tests and tools. Source this file.
#
# Every helper is bounded in time and stops only processes it started, found
# through pidfiles. Nothing here touches the system Postfix, /etc/resolv.conf or
# anything outside the state directory the caller gives.

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# Scripts run the distribution's Python, never a user's pyenv or virtualenv.
MT_PYTHON=${MT_PYTHON:-/usr/bin/python3}

mt_log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# mt_wait_tcp HOST PORT [SECONDS]: wait until something listens on HOST:PORT.
mt_wait_tcp() {
        local host=$1 port=$2 secs=${3:-10} i
        for ((i = 0; i < secs * 10; i++)); do
                if grep -q "$host:$port" < <(ss -Hltn "sport = :$port" 2>/dev/null); then
                        return 0
                fi
                sleep 0.1
        done
        mt_log "nothing listens on $host:$port after ${secs}s"
        return 1
}

# mt_wait_closed HOST PORT [SECONDS]: wait until nothing listens on HOST:PORT.
mt_wait_closed() {
        local host=$1 port=$2 secs=${3:-10} i
        for ((i = 0; i < secs * 10; i++)); do
                grep -q "$host:$port" < <(ss -Hltn "sport = :$port" 2>/dev/null) || return 0
                sleep 0.1
        done
        return 1
}

# mt_free_port HOST [N]: print a TCP port P (20000-29999) such that nothing
# listens on P .. P+N-1 (N defaults to 1), on HOST or on any address.
mt_free_port() {
        local host=$1 n=${2:-1} port i j used
        for ((i = 0; i < 200; i++)); do
                port=$((20000 + RANDOM % (10000 - n)))
                used=
                for ((j = port; j < port + n; j++)); do
                        if grep -q ":$j\b" < <(ss -Hltn "sport = :$j" 2>/dev/null); then
                                used=1
                                break
                        fi
                done
                if [ -z "$used" ]; then
                        echo "$port"
                        return 0
                fi
        done
        mt_log "no free port on $host"
        return 1
}

mt_pid_of() { # mt_pid_of PIDFILE: the number in it, or nothing
        [ -s "$1" ] && tr -dc 0-9 <"$1"
}

# mt_kill_pidfile PIDFILE [SIGNAL]: stop the process named in PIDFILE (by PID only),
# SIGKILL after 5 s, then remove the pidfile.
mt_kill_pidfile() {
        local f=$1 sig=${2:-TERM} pid i
        pid=$(mt_pid_of "$f") || true
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                kill -s "$sig" "$pid" 2>/dev/null || true
                for ((i = 0; i < 50; i++)); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
}

# mt_need CMD...: exit 77 (meson's "skipped") naming the first missing command.
mt_need() {
        local c
        for c in "$@"; do
                if ! command -v "$c" >/dev/null 2>&1; then
                        echo "SKIP: $c is not installed (tools/setup-deps installs it)"
                        exit 77
                fi
        done
}

mt_need_root() {
        if [ "$(id -u)" != 0 ]; then
                echo "SKIP: needs root (private Postfix instances, mail delivery as nobody)"
                exit 77
        fi
}

# mt_headers FILE: the header block of a message, one unfolded field per line.
mt_headers() {
        awk '/^\r?$/ { exit }
             /^[ \t]/ { sub(/^[ \t]+/, " "); h = h $0; next }
             { if (h != "") print h; h = $0 }
             END { if (h != "") print h }' "$1" | tr -d '\r'
}
