#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the Slurm tests (tests/test_slurm.py) and
# for trying `make grade-slurm` without a cluster of your own. Debian's slurm-wlm (22.05) and
# munge; starts as root without systemd in about 20 s.
#
#   .ci/slurm-cluster.sh start   install (as root, if missing), configure and start the
#                                daemons; print the line `export SLURM_CONF=...` to eval
#   .ci/slurm-cluster.sh stop    stop what `start` started, by its pid files
#   .ci/slurm-cluster.sh conf    print the slurm.conf that `start` writes
#
# Everything lives under $XNN_SLURM_DIR (default: $TMPDIR/xnn-slurm): slurm.conf, state, spool,
# logs and pid files. Client commands find the cluster through SLURM_CONF; a cluster of your
# own (/etc/slurm/slurm.conf) is not touched. XNN_SLURM_PORT moves the controller's port
# (default 6817; slurmd uses the next one) when those are taken.
set -euo pipefail

DIR="${XNN_SLURM_DIR:-${TMPDIR:-/tmp}/xnn-slurm}"
PORT="${XNN_SLURM_PORT:-6817}"
CONF="$DIR/slurm.conf"
MUNGE_SOCKET_DIR=/run/munge

say() { echo "[slurm-cluster] $*" >&2; }

write_conf() {
  local cpus mem_mb
  cpus="$(nproc)"
  # Memory as a consumable resource (so that --mem requests fit), less 1 GiB for the system.
  mem_mb="$(awk '/^MemTotal:/ {print int($2 / 1024) - 1024}' /proc/meminfo)"
  cat <<EOF
# Written by .ci/slurm-cluster.sh: a one-node test cluster, not for production.
ClusterName=xnn-test
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
# cgroup tracking (the default) fails every job in containers without systemd's cgroups.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
# Cores and memory as consumable resources: several array tasks share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# Start jobs as soon as they are submitted (the default waits for more submissions).
SchedulerParameters=batch_sched_delay=0
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Finished jobs stay visible to squeue/scontrol for a while (the tests read their states).
MinJobAge=300
# A job past its time limit gets SIGTERM, then SIGKILL after KillWait seconds (default 30): a
# test cluster has no job that needs the grace, and its test of the time limit waits less.
KillWait=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
NodeName=localhost CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null
  then
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "slurm-wlm and munge are not installed, and installing them needs root:"
    say "  sudo apt-get install -y --no-install-recommends slurm-wlm munge"
    exit 1
  fi
  say "installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm munge >/dev/null
}

start() {
  if [ "$(id -u)" -ne 0 ]; then
    say "starting the test cluster needs root (munged runs as the munge user, slurmd as root)"
    exit 1
  fi
  install_packages
  mkdir -p "$DIR/state" "$DIR/spool"
  write_conf >"$CONF"
  export SLURM_CONF="$CONF"

  # munged: one per machine (its socket is at a fixed place); start it only if none is running.
  mkdir -p "$MUNGE_SOCKET_DIR"
  chown munge:munge "$MUNGE_SOCKET_DIR"
  chmod 0755 "$MUNGE_SOCKET_DIR"
  if [ ! -S "$MUNGE_SOCKET_DIR/munge.socket.2" ] || ! munge -n </dev/null >/dev/null 2>&1; then
    [ -f /etc/munge/munge.key ] || { say "no /etc/munge/munge.key: run mungekey -c"; exit 1; }
    runuser -u munge -- munged --force
    # munged writes its pid file to its own folder; keep a copy beside ours for `stop`.
    cp "$MUNGE_SOCKET_DIR/munged.pid" "$DIR/munged.pid"
    say "munged started (pid $(cat "$DIR/munged.pid"))"
  fi

  alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
  alive "$DIR/slurmd.pid" || slurmd -f "$CONF" -N localhost

  local state=""
  for _ in $(seq 1 120); do
    state="$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)"
    case "$state" in
      idle|mixed|allocated) break ;;
    esac
    sleep 0.5
  done
  case "$state" in
    idle|mixed|allocated) ;;
    *)
      say "the node did not come up (state: ${state:-none}); logs in $DIR:"
      tail -n 20 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
      exit 1
      ;;
  esac
  say "cluster up: node localhost $state, $(nproc) CPUs; logs in $DIR"
  echo "export SLURM_CONF=$CONF"
}

stop_pid() {
  local name="$1" file="$2"
  if alive "$file"; then
    local pid
    pid="$(cat "$file")"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    say "stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

stop() {
  stop_pid slurmd "$DIR/slurmd.pid"
  stop_pid slurmctld "$DIR/slurmctld.pid"
  # Only a munged that `start` started has its pid here; one that was running before stays.
  stop_pid munged "$DIR/munged.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  conf) write_conf ;;
  *) echo "usage: $0 start|stop|conf" >&2; exit 2 ;;
esac
