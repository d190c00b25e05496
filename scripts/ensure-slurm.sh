#!/usr/bin/env bash
# Make sure a single-node SLURM (slurmctld + slurmd + munged, no systemd, no cgroups, no
# accounting) answers on this machine; the SLURM scheduler's tests run on it.
# Idempotent: when `sinfo` already answers it does nothing; otherwise it installs the Debian
# packages that are missing, writes /etc/slurm/slurm.conf (only where none exists, or where
# this script wrote it), and starts the daemons that are not running, noting each in the file
# named by RIDGELINE_STARTED when that is set (scripts/with-daemons.sh stops them afterwards).
# Needs root; without root it says so and leaves the tests to skip.
set -euo pipefail

MARK="# Written by ridgeline scripts/ensure-slurm.sh (single node, for tests)."
CONF=/etc/slurm/slurm.conf

answers() {
  timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -Eqx 'idle|mixed|allocated|completing'
}

if command -v sinfo >/dev/null 2>&1 && answers; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-slurm: not root, so SLURM is not set up here; its tests will be skipped."
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  echo "ensure-slurm: installing slurmctld slurmd slurm-client munge"
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null
  }
  apt_install || { apt-get update -q >/dev/null && apt_install; }
fi

if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
  echo "ensure-slurm: $CONF exists and was not written by this script, but SLURM does not"
  echo "answer; start it yourself (left untouched)." >&2
  exit 1
fi

# Fast hand-over of a slot: sbatch only queues a job, and slurmctld starts queued jobs in
# scheduling passes that run once a second, except the one it runs at once when a node reports
# a job's epilog complete. Without an Epilog slurmd reports nothing (the end reaches the
# 1 s loop instead), so a no-op Epilog lets the next queued trial start milliseconds after the
# last one ended (benchmarks/slurm_handover.py).
H=$(hostname -s)
# At least 8 job slots, even on a 2-core machine: parallel tests each hold a job or two while
# waiting for others of their own to start, and must not wait on each other's.
SLOTS=$(( $(nproc) > 8 ? $(nproc) : 8 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
chown munge:munge /run/munge
NEW=$(mktemp)
cat >"$NEW" <<CONF
$MARK
ClusterName=ci
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_min_interval=0
Epilog=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=2
SlurmdParameters=config_overrides
NodeName=$H NodeAddr=127.0.0.1 CPUs=$SLOTS State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
# Room for nodes that register themselves (slurmd -Z, SLURM's dynamic nodes): the multi-node
# tests start slurmds inside network namespaces, with the feature "netns", which puts them in
# the partition "nodes" only; the default partition keeps to this machine.
MaxNodeCount=64
TreeWidth=65533
Nodeset=netnodes Feature=netns
PartitionName=nodes Nodes=netnodes MaxTime=INFINITE State=UP
CONF
if ! cmp -s "$NEW" "$CONF"; then
  install -m 0644 "$NEW" "$CONF"
fi
rm -f "$NEW"

noted() { # a daemon this script started: listed for scripts/stop-daemons.sh when asked
  if [ -n "${RIDGELINE_STARTED:-}" ]; then echo "$1" >>"$RIDGELINE_STARTED"; fi
}
running() { # pid file, program name
  [ -s "$1" ] && [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "$2" ]
}
if ! runuser -u munge -- munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  echo "ensure-slurm: starting munged"
  runuser -u munge -- /usr/sbin/munged
  noted munged
fi
if ! running /run/slurmctld.pid slurmctld; then
  echo "ensure-slurm: starting slurmctld"
  /usr/sbin/slurmctld
  noted slurmctld
fi
if ! running /run/slurmd.pid slurmd; then
  echo "ensure-slurm: starting slurmd"
  /usr/sbin/slurmd
  noted slurmd
fi
for _ in $(seq 1 100); do
  answers && { echo "ensure-slurm: SLURM answers ($(sinfo -h -o '%N %T'))"; exit 0; }
  sleep 0.1
done
# A node left down by an earlier run comes back on request.
scontrol update NodeName="$H" State=RESUME >/dev/null 2>&1 || true
for _ in $(seq 1 50); do
  answers && { echo "ensure-slurm: SLURM answers ($(sinfo -h -o '%N %T'))"; exit 0; }
  sleep 0.1
done
echo "ensure-slurm: SLURM does not answer; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo >&2 || true
exit 1
