#!/usr/bin/env bash
# Run a command with the test daemons up, and afterwards stop the ones this run started.
#   bash scripts/with-daemons.sh make checks
# The ensure scripts (PostgreSQL, SLURM, Grid Engine; chromium, which has no daemon, is only
# installed) start only what is not running and note each daemon they start in the file named
# by RIDGELINE_STARTED; on exit (success, failure or interruption) scripts/stop-daemons.sh
# stops exactly those. Daemons that ran before are left alone, so a developer's own cluster
# keeps running. The command's exit code is the result.
set -uo pipefail
cd "$(dirname "$0")/.."
RIDGELINE_STARTED=$(mktemp /tmp/ridgeline-started.XXXXXX)
export RIDGELINE_STARTED
trap 'bash scripts/stop-daemons.sh "$RIDGELINE_STARTED"; rm -f "$RIDGELINE_STARTED"' EXIT
trap 'exit 130' INT TERM  # the EXIT trap still runs
bash scripts/ensure-postgres.sh || exit
bash scripts/ensure-slurm.sh || exit
bash scripts/ensure-sge.sh || exit
bash scripts/ensure-chromium.sh || exit
"$@"
