#!/usr/bin/env bash
# A throw-away single-node Slurm cluster on this machine, from Debian's packages (munge,
# slurmctld, slurmd, slurm-client; deploy/install-deps.sh installs them), for the Slurm
# integration test and for trying deploy/slurm/ by hand. Everything Slurm writes stays in
# DIR; munged is shared with the machine (started here only when none answers).
#   usage: tests/slurm/single-node-slurm.sh start DIR   (prints SLURM_CONF=DIR/slurm.conf)
#          tests/slurm/single-node-slurm.sh stop DIR
# Needs root (slurmd starts job steps as the submitting user). `start` exits 77 with the
# reason on stderr when Slurm cannot run here (not root, packages missing, daemons that
# do not come up); a caller treats that as "skip", anything else non-zero as a failure.
set -uo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z $cmd || -z $dir ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

skip() {
  echo "single-node-slurm: cannot start Slurm here: $*" >&2
  exit 77
}

stop_pid_file() {
  local file=$1
  [[ -s $file ]] || return 0
  local pid
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

if [[ $cmd == stop ]]; then
  stop_pid_file "$dir/slurmd.pid"
  stop_pid_file "$dir/slurmctld.pid"
  stop_pid_file "$dir/munged.pid"  # only when this script started it
  exit 0
fi
[[ $cmd == start ]] || { echo "unknown command $cmd (start or stop)" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || skip "needs root (slurmd runs job steps as their user)"
for tool in munged munge unmunge slurmctld slurmd sbatch sinfo; do
  command -v "$tool" >/dev/null || skip "$tool not found: run deploy/install-deps.sh"
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# munge: reuse a running munged, else start one with the packaged key.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [[ -s /etc/munge/munge.key ]] || {
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chmod 400 /etc/munge/munge.key
  }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
  su -s /bin/sh munge -c /usr/sbin/munged || skip "munged did not start"
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || skip "munged does not answer"
  pgrep -u munge -n munged >"$dir/munged.pid"
fi

# Ports of our own, so that two runs (or a site's Slurm) do not meet.
base=$((20000 + ($$ % 5000) * 2))
host=$(hostname)
mkdir -p "$dir/state" "$dir/spool"
cat >"$dir/slurm.conf" <<EOF
ClusterName=sftest
SlurmctldHost=$host
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# Four task slots on any machine (the test runs four workers; they mostly wait).
SlurmdParameters=config_overrides
# SIGTERM, then SIGKILL this many seconds later: the workers' time to release leases.
KillWait=20
MinJobAge=600
NodeName=$host CPUs=4 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$dir/slurm.conf

slurmctld -c -f "$SLURM_CONF" || skip "slurmctld did not start; see $dir/slurmctld.log"
slurmd -f "$SLURM_CONF" || { "$0" stop "$dir"; skip "slurmd did not start; see $dir/slurmd.log"; }
for _ in $(seq 150); do
  state=$(sinfo -h -o %T 2>/dev/null | head -n1)
  [[ $state == idle* ]] && break
  sleep 0.2
done
if [[ ${state:-} != idle* ]]; then
  "$0" stop "$dir"
  skip "node not idle after 30 s (state '${state:-none}'); see $dir/slurmctld.log, $dir/slurmd.log"
fi
echo "SLURM_CONF=$SLURM_CONF"
