#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A private Postfix instance playing the organisation's mail server (the
# backend mailsec-proxyd relays to). Everything lives in one state directory:
#
#   DIR/etc/{main.cf,master.cf,recipient_access}   its configuration
#   DIR/queue DIR/data                             its own queue and data
#   DIR/maillog                                    its log (postlogd)
#   DIR/mail/Maildir/{new,cur}                     every mail for example.test
#
# The system instance in /etc/postfix is never started, read or changed.
#
# Listeners are given as ADDR:PORT[/OPTION...] on loopback addresses:
#   /proxy   the listener expects a PROXY protocol header (v1 or v2) first
#   /tls     the listener offers STARTTLS with PF_TLS_KEY + PF_TLS_CERT
#   /xclient-local  only 127.0.0.1 may send XCLIENT here, as in a deployment
#            where only the proxy's own address is authorised
# Settings from the environment:
#   PF_XCLIENT_HOSTS  who may send XCLIENT (default 127.0.0.0/8). Postfix checks
#                     a second XCLIENT in a session against the address the
#                     first one set, so the clients' addresses are included.
#   PF_TLS_KEY, PF_TLS_CERT  key and certificate chain (leaf first) for /tls
#   PF_REFUSE         recipients refused at RCPT time, one "address reply" per
#                     line, e.g. "nobody@example.test 550 5.1.1 no such user"
#   PF_HOSTNAME       myhostname (default backend.example.test)
#
# Source it and use the pf_backend_* functions, or run it:
#   tests/lib/postfix-backend.sh start DIR LISTEN...
#   tests/lib/postfix-backend.sh stop DIR

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"

pf_backend_master_cf() { # LISTEN...
        local l addr opts o
        for l in "$@"; do
                addr=${l%%/*}
                opts=
                [ "$addr" != "$l" ] && opts=${l#*/}
                printf '%s inet n - n - - smtpd\n' "$addr"
                for o in ${opts//\// }; do
                        case $o in
                        proxy) printf '  -o smtpd_upstream_proxy_protocol=haproxy\n' ;;
                        tls) printf '  -o smtpd_tls_security_level=may\n' ;;
                        xclient-local) printf '  -o smtpd_authorized_xclient_hosts=127.0.0.1/32\n' ;;
                        *) mt_log "unknown listener option $o"; return 1 ;;
                        esac
                done
        done
        cat <<'EOF'
pickup     unix  n  -  n  60    1  pickup
cleanup    unix  n  -  n  -     0  cleanup
qmgr       unix  n  -  n  300   1  qmgr
tlsmgr     unix  -  -  n  1000? 1  tlsmgr
rewrite    unix  -  -  n  -     -  trivial-rewrite
bounce     unix  -  -  n  -     0  bounce
defer      unix  -  -  n  -     0  bounce
trace      unix  -  -  n  -     0  bounce
verify     unix  -  -  n  -     1  verify
flush      unix  n  -  n  1000? 0  flush
proxymap   unix  -  -  n  -     -  proxymap
proxywrite unix  -  -  n  -     1  proxymap
smtp       unix  -  -  n  -     -  smtp
relay      unix  -  -  n  -     -  smtp
showq      unix  n  -  n  -     -  showq
error      unix  -  -  n  -     -  error
retry      unix  -  -  n  -     -  error
discard    unix  -  -  n  -     -  discard
local      unix  -  n  n  -     -  local
virtual    unix  -  n  n  -     -  virtual
lmtp       unix  -  -  n  -     -  lmtp
anvil      unix  -  -  n  -     1  anvil
scache     unix  -  -  n  -     1  scache
postlog    unix-dgram n - n -   1  postlogd
EOF
}

pf_backend_main_cf() { # DIR
        local d=$1
        cat <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/maillog
maillog_file_prefixes = $d
myhostname = ${PF_HOSTNAME:-backend.example.test}
mydomain = example.test
myorigin = \$myhostname
mydestination =
inet_protocols = ipv4
inet_interfaces = loopback-only
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtpd_banner = \$myhostname ESMTP
# no PTR lookups: the client name is "unknown" and only the address matters
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
# tests make many connections and errors on purpose: no anvil limits, no tarpit
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
default_process_limit = 100
message_size_limit = 64000000
smtpd_authorized_xclient_hosts = ${PF_XCLIENT_HOSTS:-127.0.0.0/8}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:$d/etc/recipient_access
virtual_mailbox_domains = example.test
virtual_mailbox_base = $d/mail
virtual_mailbox_maps = static:Maildir/
virtual_mailbox_limit = 0
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
smtpd_tls_security_level = none
smtpd_tls_loglevel = 1
EOF
        if [ -n "${PF_TLS_KEY:-}" ]; then
                echo "smtpd_tls_chain_files = $d/etc/tls-chain.pem"
        fi
}

# pf_backend_start DIR LISTEN...: (re)write the configuration and start Postfix.
pf_backend_start() {
        local d=$1 l out
        shift
        [ $# -gt 0 ] || { mt_log "pf_backend_start: no listener"; return 2; }
        pf_backend_stop "$d"
        # Postfix daemons run as postfix, deliveries as nobody: the path must be searchable
        mkdir -p "$d/etc" "$d/queue" "$d/data" "$d/mail" || return 1
        chmod 755 "$d" "$d/etc" "$d/mail"
        chown nobody:nogroup "$d/mail"
        pf_backend_main_cf "$d" >"$d/etc/main.cf"
        pf_backend_master_cf "$@" >"$d/etc/master.cf" || return 1
        printf '%s\n' "${PF_REFUSE:-}" | sed '/^[[:space:]]*$/d' >"$d/etc/recipient_access"
        if [ -n "${PF_TLS_KEY:-}" ]; then
                # smtpd_tls_chain_files: the key, then its chain, in one file
                cat "$PF_TLS_KEY" "$PF_TLS_CERT" >"$d/etc/tls-chain.pem"
                chmod 600 "$d/etc/tls-chain.pem"
        fi
        : >"$d/maillog"
        postfix -c "$d/etc" set-permissions >/dev/null 2>&1 || true
        # postfix(1) reports errors only to a terminal: give it one with script(1)
        out=$(script -qec "postfix -c '$d/etc' start" /dev/null 2>&1) || {
                mt_log "postfix -c $d/etc start failed:"
                printf '%s\n' "$out" | tr -d '\r' >&2
                tail -n 20 "$d/maillog" >&2
                return 1
        }
        for l in "$@"; do
                l=${l%%/*}
                mt_wait_tcp "${l%:*}" "${l##*:}" 15 || {
                        tail -n 20 "$d/maillog" >&2
                        return 1
                }
        done
}

# pf_backend_stop DIR: stop the instance if it runs (its master, by pidfile).
pf_backend_stop() {
        local d=$1 pid
        [ -f "$d/etc/main.cf" ] || return 0
        pid=$(mt_pid_of "$d/queue/pid/master.pid") || true
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                timeout 20 postfix -c "$d/etc" stop >/dev/null 2>&1 || true
                mt_kill_pidfile "$d/queue/pid/master.pid"
        fi
        return 0
}

pf_backend_running() { # DIR
        local pid
        pid=$(mt_pid_of "$1/queue/pid/master.pid") || return 1
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

pf_backend_maildir() { echo "$1/mail/Maildir"; }

# pf_backend_settle DIR [SECONDS]: wait until the queue is empty, so that a
# check of the Maildir sees every delivery of mail Postfix accepted. In incoming/
# only committed files count: cleanup(8) sets the owner execute bit on a queue file
# once it is complete, and leaves an unfinished one behind (mode 0600) when smtpd
# is cut off mid-transaction; that file is no mail Postfix accepted.
pf_backend_settle() {
        local d=$1 secs=${2:-30} i
        for ((i = 0; i < secs * 5; i++)); do
                if [ -z "$( { find "$d/queue/incoming" -type f -perm -u=x
                              find "$d/queue/active" "$d/queue/deferred" "$d/queue/maildrop" -type f
                            } 2>/dev/null | head -n 1)" ]; then
                        return 0
                fi
                sleep 0.2
        done
        mt_log "queue of $d not empty after ${secs}s"
        return 1
}

# pf_backend_find DIR STRING: the delivered messages containing STRING (fixed).
pf_backend_find() {
        local m
        m=$(pf_backend_maildir "$1")
        [ -d "$m" ] || return 0
        grep -rlF -- "$2" "$m/new" "$m/cur" 2>/dev/null || true
}

pf_backend_count() { # DIR STRING
        pf_backend_find "$1" "$2" | grep -c . || true
}

# pf_backend_wait DIR STRING [COUNT] [SECONDS]: wait until COUNT (default 1)
# delivered messages contain STRING; print their file names.
pf_backend_wait() {
        local d=$1 s=$2 n=${3:-1} secs=${4:-30} i
        for ((i = 0; i < secs * 5; i++)); do
                if [ "$(pf_backend_count "$d" "$s")" -ge "$n" ]; then
                        pf_backend_find "$d" "$s"
                        return 0
                fi
                sleep 0.2
        done
        return 1
}

pf_backend_log() { echo "$1/maillog"; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
        set -euo pipefail
        case ${1:-} in
        start) shift; d=${1:?DIR}; shift; pf_backend_start "$d" "$@" ;;
        stop) pf_backend_stop "${2:?DIR}" ;;
        *) echo "usage: $0 start DIR ADDR:PORT[/proxy][/tls][/xclient-local]... | stop DIR" >&2; exit 2 ;;
        esac
fi
