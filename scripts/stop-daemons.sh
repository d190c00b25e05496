#!/usr/bin/env bash
# Stop the daemons listed in FILE (one name a line, as scripts/ensure-*.sh note each daemon
# they start), the last started first; leave every other daemon alone. Each is found through
# its pid file, asked to stop the daemon's own way, and signalled only if it does not.
# Idempotent: a daemon that is already gone is skipped.
#   bash scripts/stop-daemons.sh FILE
set -uo pipefail
FILE=${1:?usage: stop-daemons.sh FILE}
[ -s "$FILE" ] || exit 0
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default

pid_file() {
  case "$1" in
    slurmctld) echo /run/slurmctld.pid ;;
    slurmd) echo /run/slurmd.pid ;;
    munged) echo /run/munge/munged.pid ;;
    sge_qmaster) echo /var/spool/gridengine/qmaster/qmaster.pid ;;
    sge_execd) compgen -G "/var/spool/gridengine/execd/*/execd.pid" | head -n1 ;;
  esac
}
pid_of() { # name: the pid of that daemon when it runs, else nothing
  local file pid
  file=$(pid_file "$1")
  [ -n "$file" ] && [ -s "$file" ] || return 1
  pid=$(tr -dc 0-9 <"$file")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}
await() { # name pid: wait up to 15 s for it to exit, then SIGKILL it
  for _ in $(seq 150); do [ -d "/proc/$2" ] || return 0; sleep 0.1; done
  echo "stop-daemons: $1 (pid $2) did not stop in 15 s; killing it" >&2
  kill -KILL "$2" 2>/dev/null || true
}

tac "$FILE" | awk '!seen[$0]++' | while read -r what; do
  case "$what" in
    postgresql:*)
      cluster=${what#postgresql:}
      echo "stop-daemons: stopping PostgreSQL $cluster"
      # shellcheck disable=SC2086 # "version cluster", two words
      pg_ctlcluster --skip-systemctl-redirect $cluster stop >/dev/null 2>&1 || true
      continue
      ;;
    slurmctld | slurmd | munged | sge_execd | sge_qmaster) ;;
    *)
      echo "stop-daemons: unknown entry '$what' in $FILE; skipped" >&2
      continue
      ;;
  esac
  pid=$(pid_of "$what") || continue
  echo "stop-daemons: stopping $what"
  case "$what" in
    slurmctld) timeout 10 scontrol shutdown slurmctld >/dev/null 2>&1 || kill "$pid" ;;
    munged) runuser -u munge -- /usr/sbin/munged --stop >/dev/null 2>&1 || kill "$pid" ;;
    sge_execd) timeout 10 qconf -ke "$(hostname)" >/dev/null 2>&1 || kill "$pid" ;;
    sge_qmaster) timeout 10 qconf -km >/dev/null 2>&1 || kill "$pid" ;;
    *) kill "$pid" ;;
  esac
  await "$what" "$pid"
done
exit 0
