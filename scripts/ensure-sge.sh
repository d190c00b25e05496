#!/usr/bin/env bash
# Make sure a single-node Son of Grid Engine 8.1.9 (sge_qmaster + sge_execd, no systemd) runs
# on this machine with a queue instance ready for jobs; the SGE scheduler's tests run on it.
# Idempotent: when the queue instance is already available it does nothing; otherwise it
# installs the missing Debian packages, configures the cell (only a cell this script set up,
# or the one the packages left unconfigured) and starts the daemons that are not running,
# noting each in the file named by RIDGELINE_STARTED when that is set (scripts/with-daemons.sh
# stops them afterwards).
# Needs root; without root it says so and leaves the tests to skip.
#
# The five fixes of the stock Debian cell, in the order they matter (each is done below):
# 1. common/act_qmaster is left empty: write the host name into it;
# 2. 127.0.0.1 reverse-resolves to "localhost": common/host_aliases makes it the same host;
# 3. min_uid/min_gid 1000 reject root's jobs: set both to 0 (qconf -Mconf, file "global"),
# 4. before sge_execd starts (an execd started earlier keeps the old values: jobs go Eqw);
# 5. schedule_interval 15 s: 1 s, with flush_submit_sec/flush_finish_sec 1.
set -euo pipefail

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
H=$(hostname)
C=$SGE_ROOT/$SGE_CELL/common
MARK=$C/.ridgeline-ensure-sge
SLOTS=$(( $(nproc) > 8 ? $(nproc) : 8 ))  # parallel tests must not wait on each other's jobs

ready() { # the queue instance answers and is in no state (not unknown, disabled or in error)
  timeout 5 qstat -f -q all.q 2>/dev/null | awk -v q="all.q@$H" '$1 == q && NF == 5 {ok=1} END {exit !ok}'
}

if command -v qstat >/dev/null 2>&1 && ready; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-sge: not root, so Grid Engine is not set up here; its tests will be skipped."
  exit 0
fi
fail() { echo "ensure-sge: $*" >&2; exit 1; }
trap 'echo "ensure-sge: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
quiet() { # run a qconf change; its chatter only when it fails
  local out
  out=$("$@" 2>&1) || fail "$* failed: $out"
}

if ! command -v sge_qmaster >/dev/null && [ ! -x /usr/sbin/sge_qmaster ] \
  || [ ! -x /usr/sbin/sge_execd ] || ! command -v qsub >/dev/null; then
  echo "ensure-sge: installing gridengine-master gridengine-exec gridengine-client"
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      gridengine-master gridengine-exec gridengine-client >/dev/null
  }
  apt_install || { apt-get update -q >/dev/null && apt_install; } || fail "apt-get install failed"
fi
[ -d "$C" ] || fail "$C is missing: the gridengine-master package did not initialise the cell"
MASTER=$(tr -d '[:space:]' <"$C/act_qmaster" 2>/dev/null || true)
if [ -n "$MASTER" ] && [ "$MASTER" != "$H" ] && [ ! -e "$MARK" ]; then
  fail "$C/act_qmaster names $MASTER, not this host, and was not written by this script; left untouched"
fi

# Fixes 1 and 2: the cell's master is this host, and "localhost" is this host too.
echo "$H localhost" >"$C/host_aliases"
echo "$H" >"$C/act_qmaster"
touch "$MARK"

noted() { # a daemon this script started: listed for scripts/stop-daemons.sh when asked
  if [ -n "${RIDGELINE_STARTED:-}" ]; then echo "$1" >>"$RIDGELINE_STARTED"; fi
}
daemon() { pgrep -x "$1" >/dev/null 2>&1; }
if ! daemon sge_qmaster; then
  echo "ensure-sge: starting sge_qmaster"
  /usr/sbin/sge_qmaster
  noted sge_qmaster
fi
for _ in $(seq 100); do qconf -sh >/dev/null 2>&1 && break; sleep 0.2; done
qconf -sh >/dev/null 2>&1 || fail "sge_qmaster does not answer; see /var/spool/gridengine/qmaster/messages"

d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
qconf -sh 2>/dev/null | grep -qx "$H" || quiet qconf -ah "$H"
qconf -ss 2>/dev/null | grep -qx "$H" || quiet qconf -as "$H"
if ! qconf -se "$H" >/dev/null 2>&1; then
  printf '%s\n' "hostname $H" "load_scaling NONE" "complex_values NONE" "user_lists NONE" \
    "xuser_lists NONE" "projects NONE" "xprojects NONE" "usage_scaling NONE" \
    "report_variables NONE" >"$d/host"
  quiet qconf -Ae "$d/host"
fi
# Fixes 3 and 4: root's jobs are allowed, before sge_execd reads the configuration.
# (And the accounting file is written at each job's end, so qacct knows it at once.)
qconf -sconf global >"$d/current"
FLUSH='s/flush_time=\([0-9:]*\)/flush_time=\1 accounting_flush_time=00:00:00/'
grep -q accounting_flush_time "$d/current" && FLUSH='s/^$//'
sed -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' -e "$FLUSH" "$d/current" >"$d/global"
quiet qconf -Mconf "$d/global"
# Fix 5: the scheduler runs every second and right after each submission and job end.
qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
  -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
  -e 's/^flush_finish_sec .*/flush_finish_sec 1/' >"$d/sched"
quiet qconf -Msconf "$d/sched"
# The queue: one instance on this host. notify 2 s: a job submitted with -notify gets SIGUSR2
# (which ridgeline's job script turns into SIGTERM for the trial) 2 s before qdel's SIGKILL.
cat >"$d/queue" <<QUEUE
qname                 all.q
hostlist              $H
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               NONE
rerun                 FALSE
slots                 $SLOTS
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:02
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
QUEUE
if qconf -sq all.q >/dev/null 2>&1; then
  quiet qconf -Mq "$d/queue"
else
  quiet qconf -Aq "$d/queue"
fi

mkdir -p /var/spool/gridengine/execd
chown sgeadmin: /var/spool/gridengine/execd
if ! daemon sge_execd; then
  echo "ensure-sge: starting sge_execd"
  /usr/sbin/sge_execd
  noted sge_execd
fi
for _ in $(seq 150); do
  ready && { echo "ensure-sge: Grid Engine answers ($(qstat -f -q all.q | grep "^all.q@"))"; exit 0; }
  sleep 0.2
done
# A queue instance left in error by an earlier run comes back on request.
qmod -c "all.q@$H" >/dev/null 2>&1 || true
qmod -e "all.q@$H" >/dev/null 2>&1 || true
for _ in $(seq 50); do
  ready && { echo "ensure-sge: Grid Engine answers ($(qstat -f -q all.q | grep "^all.q@"))"; exit 0; }
  sleep 0.2
done
echo "ensure-sge: no Grid Engine queue instance became available; see" \
  "/var/spool/gridengine/qmaster/messages and /var/spool/gridengine/execd/$H/messages" >&2
qstat -f >&2 || true
exit 1
