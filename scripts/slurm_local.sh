#!/usr/bin/env bash
# A real single-node SLURM on localhost, for CI and for trying `./run_all.sh --executor slurm` on one machine.
#
#   scripts/slurm_local.sh install   # Debian's slurmctld, slurmd, slurm-client and munge (root, apt-get)
#   scripts/slurm_local.sh start     # install if needed, write slurm.conf, start munged, slurmctld, slurmd
#   scripts/slurm_local.sh stop      # stop the daemons this script started (by their pid files)
#   scripts/slurm_local.sh status    # sinfo
#   scripts/slurm_local.sh conf      # print the path of slurm.conf (export SLURM_CONF=<it> for the clients)
#
# State, spool, pid and log files live in $LRL_SLURM_DIR (default /tmp/lrl-slurm). Needs root and apt-get on a
# Debian-like system without systemd; exits 3 with one line when either is missing (tests skip on that).
# No cgroups (proctrack/linuxproc, task/none), no accounting database (sacct is not needed by the runner).
set -euo pipefail

DIR="${LRL_SLURM_DIR:-/tmp/lrl-slurm}"
CONF="$DIR/slurm.conf"
PACKAGES=(slurmctld slurmd slurm-client munge)

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "slurm_local.sh: needs root (to install and run slurmctld/slurmd/munged)" >&2
        exit 3
    fi
}

installed() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null
}

install() {
    installed && return 0
    need_root
    if ! command -v apt-get >/dev/null; then
        echo "slurm_local.sh: no apt-get: install ${PACKAGES[*]} with this system's package manager" >&2
        exit 3
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

write_conf() {
    local host cpus mem
    host="$(hostname -s)"
    cpus="$(nproc)"
    mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10))
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<EOF
ClusterName=lrl
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${LRL_SLURMCTLD_PORT:-6817}
SlurmdPort=${LRL_SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job (preemption: slurm_task.py requeues itself) may start again after cred_expire s (default 120)
AuthInfo=cred_expire=${LRL_SLURM_CRED_EXPIRE:-10}
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# a one-node cluster: look at pending jobs every second (default 60 s), e.g. a requeued job whose wait is over
SchedulerParameters=sched_interval=1,bf_interval=5
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
KillWait=10
MinJobAge=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    install
    need_root
    export SLURM_CONF="$CONF"
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
        echo "slurm_local.sh: already running (SLURM_CONF=$CONF)"
        return 0
    fi
    write_conf
    if [ ! -S /run/munge/munge.socket.2 ] || ! pgrep -u munge -x munged >/dev/null; then
        mkdir -p /run/munge
        chown munge:munge /run/munge
        chmod 0755 /run/munge
        runuser -u munge -- /usr/sbin/munged
        echo started >"$DIR/munged.started"
    fi
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 1 100); do
        if [ "$(sinfo -h -o %T 2>/dev/null | head -1)" = idle ]; then
            echo "slurm_local.sh: node idle (SLURM_CONF=$CONF)"
            return 0
        fi
        sleep 0.2
    done
    echo "slurm_local.sh: the node did not become idle in 20 s; see $DIR/log/" >&2
    exit 1
}

stop() {
    local f
    for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
        if alive "$f"; then
            kill "$(cat "$f")"
            for _ in $(seq 1 50); do alive "$f" || break; sleep 0.1; done
        fi
    done
    if [ -f "$DIR/munged.started" ] && [ -f /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
        rm -f "$DIR/munged.started"
    fi
    echo "slurm_local.sh: stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF="$CONF" sinfo ;;
    conf) echo "$CONF" ;;
    *)
        echo "usage: scripts/slurm_local.sh install|start|stop|status|conf" >&2
        exit 2
        ;;
esac
