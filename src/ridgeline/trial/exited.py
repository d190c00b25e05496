"""``python -m ridgeline.trial.exited STATUS``: a batch job's last word to its coordinator.

A cluster job's script runs this right after the trial's exit wrapper has recorded the exit
status, so the coordinator learns at once that the slot is free instead of on its next
``squeue``/``qstat`` poll (the batch system reports a finished job a few hundred ms later).
It is a nudge with the status in it: the coordinator accepts it only with this attempt's
token, checks it against the recorded exit file, and still asks the batch system about jobs
that never call. So a failure here changes nothing but the delay: it tries briefly, then gives
up silently (exit code 0 either way, the job's own exit code is the trial's).
"""

from __future__ import annotations

import sys

from ridgeline.trial.client import TrialClient

RETRY_SECONDS = 2.0  # the coordinator may be restarting; its poller covers for us then


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m ridgeline.trial.exited STATUS (0-255)", file=sys.stderr)
        return 2
    try:
        client = TrialClient(retry_seconds=RETRY_SECONDS)
        try:
            client.report_exit(int(argv[0]))
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - a nudge; the batch system stays the authority
        print(f"ridgeline: could not tell the coordinator the trial exited: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
