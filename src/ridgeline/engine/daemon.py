"""``python -m ridgeline.engine.daemon EXPERIMENT_ID``: a detached coordinator.

The store comes in ``$RIDGELINE_COORDINATOR_STORAGE``, never in argv: anyone on the machine can
read a command line (``ps``), and a PostgreSQL URL may carry a password. The variable is
removed at once, so trial processes (which inherit the environment) never see it.
"""

from __future__ import annotations

import os
import sys

from ridgeline.errors import LeaseHeld, RidgelineError
from ridgeline.paths import COORDINATOR_STORAGE_ENV

LEASE_HELD = 3  # exit status: another coordinator runs the experiment


def main(argv: list[str]) -> int:
    storage = os.environ.pop(COORDINATOR_STORAGE_ENV, None)
    from ridgeline.experiment import run_experiment

    try:
        run_experiment(int(argv[0]), storage, verbose=1)
    except LeaseHeld as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return LEASE_HELD
    except RidgelineError as exc:  # the experiment's state and log.txt say the rest
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
