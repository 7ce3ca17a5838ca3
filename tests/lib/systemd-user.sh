# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real service manager for the "system" suite: a private "systemd --user" of root in
# its own mount namespace and cgroup, with dbus-broker as its bus. Nothing changes on
# the host: /run/systemd/system exists only inside the namespace, and every process the
# manager starts stays in the test's cgroup. Source this file (after lib.sh), then:
#
#   su_prepare UNITS WORK RUN  write the bus units into UNITS (dbus-broker with a
#                              journal-sink socket, which it needs to start, and a
#                              drop-in that sends every service's output to
#                              WORK/logs/UNIT.log, since there is no journald);
#                              activation files go to $SU_DBUS_SERVICES
#   su_start HOME              start the manager (XDG_CONFIG_HOME, the user manager's
#                              StateDirectory= root, is HOME/config); exports
#                              XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS; returns 0
#                              once its SystemState is "running", 1 otherwise
#   su_stop                    "systemctl --user exit", SIGKILL after 10 s
#   su_cleanup                 su_stop, then kill whatever is left in the cgroup and
#                              remove it (call it from the EXIT trap)
#   su_cgroup_procs            the PIDs still in the manager's cgroup
#
# Set by su_prepare/su_start: SU_PID (the manager), SU_LOG (its log: what it writes to
# /dev/kmsg and stderr), SU_DBUS_SERVICES.
#
# Unit-level requirements of the services that run here: a hardened unit with
# PrivateTmp= cannot run a binary under /tmp, and with ProtectHome= nothing under /root or
# /home: put what the service must see under RUN (a directory in /run).

if [ -d /sys/fs/cgroup/unified ]; then
        SU_CGV2=/sys/fs/cgroup/unified SU_CGROOTS=(/sys/fs/cgroup/unified /sys/fs/cgroup/systemd)
else
        SU_CGV2=/sys/fs/cgroup SU_CGROOTS=(/sys/fs/cgroup)
fi
SU_CG=mailsec-system-$$
SU_PID=
SU_U=
SU_W=
SU_R=
SU_LOG=
SU_DBUS_SERVICES=

su_cgroup_procs() { find "$SU_CGV2/$SU_CG" -name cgroup.procs -exec cat {} + 2>/dev/null; }

su_stop() {
        local i
        [ -n "$SU_PID" ] || return 0
        systemctl --user exit >/dev/null 2>&1 || kill -TERM "$SU_PID" 2>/dev/null
        for ((i = 0; i < 500; i++)); do kill -0 "$SU_PID" 2>/dev/null || break; sleep 0.02; done
        kill -0 "$SU_PID" 2>/dev/null && { echo "manager did not exit, SIGKILL"; kill -KILL "$SU_PID"; }
        wait "$SU_PID" 2>/dev/null
        SU_PID=
}

su_cleanup() {
        local i h
        su_stop
        # backstop: everything in our cgroup was started by this test
        [ -d "$SU_CGV2/$SU_CG" ] || return 0
        for ((i = 0; i < 100; i++)); do
                [ -z "$(su_cgroup_procs)" ] && break
                if [ -e "$SU_CGV2/$SU_CG/cgroup.kill" ]; then
                        echo 1 >"$SU_CGV2/$SU_CG/cgroup.kill"
                else
                        # shellcheck disable=SC2046
                        kill -KILL $(su_cgroup_procs) 2>/dev/null
                fi
                sleep 0.02
        done
        for h in "${SU_CGROOTS[@]}"; do find "$h/$SU_CG" -depth -type d -exec rmdir {} \; 2>/dev/null; done
        return 0
}

su_prepare() {
        SU_U=$1 SU_W=$2 SU_R=$3
        SU_LOG=$SU_W/manager.log
        SU_DBUS_SERVICES=$SU_W/dbus-services
        mkdir -p "$SU_U/service.d" "$SU_U/dbus-broker.service.d" "$SU_W/logs" "$SU_DBUS_SERVICES" || return 1
        # There is no journald: every service logs to a file.
        printf '[Service]\nStandardOutput=append:%s/logs/%%n.log\nStandardError=inherit\n' "$SU_W" \
                >"$SU_U/service.d/50-test-logs.conf"
        # The user bus: dbus-broker, which refuses to start without a journal socket.
        ln -sf /usr/lib/systemd/user/dbus-broker.service "$SU_U/dbus.service"
        printf '[Unit]\nDefaultDependencies=no\n[Socket]\nListenDatagram=/run/systemd/journal/socket\n' \
                >"$SU_U/journal-sink.socket"
        printf '[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/cat\nStandardInput=socket\n' \
                >"$SU_U/journal-sink.service"
        cat >"$SU_W/session.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>/usr/share/dbus-1/session.conf</include>
  <servicedir>$SU_DBUS_SERVICES</servicedir>
  <policy context="default"><allow user="*"/></policy>
</busconfig>
CONF
        printf '[Unit]\nRequires=journal-sink.socket\nAfter=journal-sink.socket\n[Service]\nExecStart=\nExecStart=/usr/bin/dbus-broker-launch --scope user --config-file=%s\n' \
                "$SU_W/session.conf" >"$SU_U/dbus-broker.service.d/50-test.conf"
}

su_start() {
        local home=$1 h st i
        # credentials/: systemd removes a unit's credentials only from a temporary file
        # system, and /run need not be one where there is no systemd as PID 1
        mkdir -p "$SU_R/xdg/credentials" "$home" || return 1
        chmod 755 "$SU_R/xdg"
        : >"$SU_LOG"
        for h in "${SU_CGROOTS[@]}"; do mkdir -p "$h/$SU_CG"; done
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" USER=root LOGNAME=root \
                XDG_RUNTIME_DIR="$SU_R/xdg" XDG_CONFIG_HOME="$home/config" XDG_DATA_HOME="$home/data" \
                XDG_STATE_HOME="$home/state" XDG_CACHE_HOME="$home/cache" \
                SYSTEMD_UNIT_PATH="$SU_U:/usr/lib/systemd/user" \
                SYSTEMD_LOG_TARGET=kmsg SYSTEMD_LOG_LEVEL=info SYSTEMD_LOG_COLOR=0 \
                MANAGER_LOG="$SU_LOG" CGDIRS="${SU_CGROOTS[*]/%//$SU_CG}" \
                unshare --mount --propagation private sh -c '
                        set -e
                        for c in $CGDIRS; do echo $$ >$c/cgroup.procs; done
                        mount --bind /run /run
                        mount -t tmpfs -o mode=0755 tmpfs /run/systemd
                        mkdir /run/systemd/system
                        I=/run/systemd/inaccessible
                        mkdir -m 0755 $I; mkdir -m 0 $I/dir; install -m 0 /dev/null $I/reg; mkfifo -m 0 $I/fifo
                        mknod -m 0 $I/chr c 0 0; mknod -m 0 $I/blk b 0 0
                        mount --bind "$MANAGER_LOG" /dev/kmsg
                        mount -t tmpfs -o mode=0700 tmpfs "$XDG_RUNTIME_DIR/credentials"
                        # systemd mounts the credentials of a unit in the forked child and relies on
                        # propagation back to the manager: make this private namespace shared
                        # within itself (the host is not a peer of these copies).
                        mount --make-rshared /
                        exec /lib/systemd/systemd --user' </dev/null >>"$SU_LOG" 2>&1 &
        SU_PID=$!
        export XDG_RUNTIME_DIR=$SU_R/xdg DBUS_SESSION_BUS_ADDRESS=unix:path=$SU_R/xdg/bus
        st=
        for ((i = 0; i < 500; i++)); do
                st=$(systemctl --user show -p SystemState --value 2>/dev/null)
                case $st in running | degraded) break ;; esac
                kill -0 "$SU_PID" 2>/dev/null || break
                sleep 0.02
        done
        [ "$st" = running ] && return 0
        echo "manager state '$st'"
        return 1
}
