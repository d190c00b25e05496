"""Time the JSON preparation of plots for a large search, printed as a table.

    python benchmarks/plot_data.py                     # 10,000 trials x 100 steps
    python benchmarks/plot_data.py --trials 2000 --steps 500

The reports are made in memory (no store: reading a million rows is the store's cost, not
the plots'), then each step is timed: the analysis's per-trial searcher reports and curves,
the trial summaries, the downsampled learning curves, the optimisation history, and the JSON
encoding of the learning curves.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from typing import Any

from ridgeline.analysis import Analysis
from ridgeline.store.records import ExperimentRecord, MetricRecord, TrialRecord
from ridgeline.visualization import data


def synthetic(trials: int, steps: int, seed: int = 0) -> Analysis:
    rng = random.Random(seed)
    records = [
        TrialRecord(i, 1, i, i, {"lr": 10 ** rng.uniform(-4, -1)}, "COMPLETED", 0.0)
        for i in range(1, trials + 1)
    ]
    metrics = []
    seq = 0
    for t in records:
        base = rng.random()
        for s in range(1, steps + 1):
            seq += 1
            metrics.append(
                MetricRecord(seq, t.id, "validation", s, {"objective": base + 1 / s}, seq)
            )
    analysis = Analysis(None, 1)  # type: ignore[arg-type]
    experiment = ExperimentRecord(1, "synthetic", "COMPLETED", {}, 0.0)
    analysis.__dict__.update(trials=records, metrics=metrics, events=[], experiment=experiment)
    return analysis


def timed(what: str, call: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    print(f"| {what} | {time.perf_counter() - wall:.3f} | {time.process_time() - cpu:.3f} |")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    import numpy  # noqa: F401  (loaded already wherever a dashboard or notebook runs)

    a = synthetic(args.trials, args.steps)
    print(f"{args.trials} trials x {args.steps} steps = {args.trials * args.steps:,} reports\n")
    print("| step | wall s | CPU s |\n|---|---|---|")
    timed("searcher reports (one pass)", lambda: a.searcher_reports)
    timed("per-trial curves", lambda: a.curves)
    timed("summaries", lambda: a.summaries)
    curves = timed("learning_curves (downsampled)", lambda: data.learning_curves(a, top=10))
    timed("optimization_history", lambda: data.optimization_history(a))
    text = timed("JSON of the learning curves", lambda: json.dumps(curves))
    points = sum(len(c["steps"]) for c in curves["curves"])
    print(f"\n{points:,} points kept, {len(text) / 1e6:.1f} MB of JSON")


if __name__ == "__main__":
    main()
