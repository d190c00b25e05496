"""``python -m ridgeline.engine.daemon EXPERIMENT_ID STORAGE``: a detached coordinator."""

from __future__ import annotations

import sys

from ridgeline.experiment import run_experiment


def main(argv: list[str]) -> int:
    experiment_id, storage = int(argv[0]), argv[1]
    run_experiment(experiment_id, storage, verbose=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
