"""``python -m ridgeline.engine.daemon EXPERIMENT_ID STORAGE``: a detached coordinator."""

from __future__ import annotations

import sys

from ridgeline.errors import LeaseHeld, RidgelineError
from ridgeline.experiment import run_experiment

LEASE_HELD = 3  # exit status: another coordinator runs the experiment


def main(argv: list[str]) -> int:
    experiment_id, storage = int(argv[0]), argv[1]
    try:
        run_experiment(experiment_id, storage, verbose=1)
    except LeaseHeld as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return LEASE_HELD
    except RidgelineError as exc:  # the experiment's state and log.txt say the rest
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
