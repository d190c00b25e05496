"""Runner script (SHERPA's parallel-guide shape): searches two hyperparameters of trial.py.

Run it from anywhere: ``python examples/runner.py``. Results land in ``examples/output``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ridgeline as sherpa

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--output-dir", default=str(HERE / "output"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    parameters = [
        sherpa.Continuous("learning_rate", [1e-4, 1e-1], scale="log"),
        sherpa.Discrete("num_units", [8, 128]),
        sherpa.Choice("activation", ["relu", "tanh"]),
    ]
    algorithm = sherpa.algorithms.RandomSearch(max_num_trials=args.trials)
    stopping_rule = sherpa.algorithms.MedianStoppingRule(min_iterations=3, min_trials=3)
    best = sherpa.optimize(
        parameters=parameters,
        algorithm=algorithm,
        lower_is_better=True,
        stopping_rule=stopping_rule,
        filename=str(HERE / "trial.py"),
        scheduler=sherpa.schedulers.LocalScheduler(),
        max_concurrent=args.concurrent,
        output_dir=args.output_dir,
        seed=args.seed,
        resume=args.resume,
    )
    print("Best result:", best)


if __name__ == "__main__":
    main()
