#!/usr/bin/env bash
# Make sure the PostgreSQL server on 127.0.0.1:5432 runs, starting an installed, stopped one.
# The store's tests run against it; without it they are skipped (and fail under CI=true).
set -u
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "PostgreSQL is not installed here; its store tests will be skipped."
  exit 0
fi
pg_lsclusters -h | while read -r version cluster port status _; do
  if [ "$status" != "online" ]; then
    echo "Starting PostgreSQL $version/$cluster on port $port"
    if pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start; then
      # Noted for scripts/stop-daemons.sh when RIDGELINE_STARTED names a file.
      if [ -n "${RIDGELINE_STARTED:-}" ]; then
        echo "postgresql:$version $cluster" >>"$RIDGELINE_STARTED"
      fi
    fi
  fi
done
for _ in $(seq 1 50); do
  pg_isready -h 127.0.0.1 -p 5432 -q && exit 0
  sleep 0.2
done
echo "PostgreSQL on 127.0.0.1:5432 is not answering."
