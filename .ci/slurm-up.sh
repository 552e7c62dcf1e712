#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (loopback only), for `npm run test:slurm`.
#
# Idempotent: a cluster that already answers is left alone. Fails soft: when Slurm cannot be
# installed or started (no root, apt unreachable, …) it says why and exits 0, and the
# integration test then skips. What it started is listed in $SLURM_CI_DIR/started (pids), so
# .ci/slurm-down.sh stops exactly that and nothing else.
#
# Facts (Debian 12, slurm-wlm 22.05): munged runs as the munge user, then slurmctld, then
# slurmd, all started directly (no systemd); ProctrackType=proctrack/linuxproc and
# TaskPlugin=task/none need no cgroups; DefMemPerCPU keeps a job without --mem from asking
# for the whole node (jobs then run side by side); accounting stays off (scontrol show job
# gives state and exit code).
set -uo pipefail

SLURM_CI_DIR="${SLURM_CI_DIR:-/tmp/report-slurm-ci}"
CONF=/etc/slurm/slurm.conf
MARK="# written by literate-report .ci/slurm-up.sh"

say() { echo "slurm-up: $*"; }
soft_fail() { say "$* — the Slurm integration test will skip"; exit 0; }

answers() { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' && timeout 10 sinfo -h -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; }

if command -v scontrol >/dev/null 2>&1 && answers; then
  say "a cluster already answers; left as it is"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  soft_fail "not root: cannot install or start Slurm"
fi

if ! command -v sbatch >/dev/null 2>&1 || ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 ||
    { timeout 300 apt-get update -qq >/dev/null 2>&1 && timeout 600 apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1; } ||
    soft_fail "apt-get could not install slurm-wlm and munge"
fi

mkdir -p "$SLURM_CI_DIR"
host="$(hostname -s)"
node_line="$(slurmd -C 2>/dev/null | head -1)"
[ -n "$node_line" ] || soft_fail "slurmd -C printed nothing"

ours=0
if [ ! -f "$CONF" ] || grep -qF "$MARK" "$CONF"; then
  ours=1
  mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
  cat >"$CONF" <<EOF
$MARK
ClusterName=report-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$SLURM_CI_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_CI_DIR/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
else
  say "$CONF exists and was not written by this script; using it as it is"
fi

if ! pgrep -u munge -x munged >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null && chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key; }
  runuser -u munge -- munged || soft_fail "munged did not start"
  sleep 0.5
  pgrep -u munge -x munged >>"$SLURM_CI_DIR/started"
fi
if ! pgrep -x slurmctld >/dev/null 2>&1; then
  # On a cluster this script configured, start clean (-c): no jobs recovered from a saved state
  # of an earlier run, whose names would be those of this run's jobs. Someone else's cluster
  # keeps its state (-i: ignore errors in it).
  if [ "$ours" = 1 ]; then clean=-c; else clean=-i; fi
  slurmctld "$clean" || soft_fail "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
  sleep 1
  pgrep -x slurmctld >>"$SLURM_CI_DIR/started"
fi
if ! pgrep -x slurmd >/dev/null 2>&1; then
  slurmd || soft_fail "slurmd did not start (see /var/log/slurm/slurmd.log)"
  sleep 1
  pgrep -x slurmd >>"$SLURM_CI_DIR/started"
fi

for _ in $(seq 1 30); do
  if answers; then
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    say "one-node cluster up: $(sinfo -h -o '%P %D %t %c CPUs %m MB' | head -1)"
    exit 0
  fi
  sleep 1
done
soft_fail "the cluster did not answer within 30 s (see /var/log/slurm/)"
