"""Overhead of ridgeline's machinery, printed as a table.

    python benchmarks/overhead.py            # everything (Optuna optional: pip install optuna)
    python benchmarks/overhead.py --quick    # smaller runs

1. In-process Study cost per trial (random search, suggest + observe + finalize) at 1,000 and
   10,000 trials, beside Optuna's in-memory ask/tell with its RandomSampler on the same loop.
2. Runner launch latency: trial submitted -> hyperparameters in the trial's hands, one trial
   at a time, and while 8 trials start together.
3. Runner throughput: 8 concurrent trials of 1 s each; share of slot time busy; slot refill
   latency (a trial's exit seen -> next trial submitted); metric latency (the algorithm sees a
   report relative to ``send_metrics`` returning).
4. ``import ridgeline`` time (its own modules, from ``python -X importtime``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import ridgeline as sherpa
from ridgeline.schedulers.local import LocalScheduler


def space() -> list:
    return [
        sherpa.Continuous("lr", [1e-5, 1e-1], scale="log"),
        sherpa.Continuous("dropout", [0.0, 0.5]),
        sherpa.Discrete("units", [16, 512]),
        sherpa.Choice("act", ["relu", "tanh", "gelu"]),
    ]


def objective(p: dict) -> float:
    return (p["dropout"] - 0.2) ** 2 + abs(p["units"] - 128) / 512 + p["lr"]


def ridgeline_study(n: int) -> float:
    start = time.perf_counter()
    study = sherpa.Study(
        space(),
        sherpa.algorithms.RandomSearch(max_num_trials=n),
        True,
        disable_dashboard=True,
        seed=0,
    )
    for trial in study:
        study.add_observation(trial, objective=objective(trial.parameters))
        study.finalize(trial)
    return (time.perf_counter() - start) / n


def optuna_study(n: int) -> float | None:
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {
        "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
        "dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
        "units": optuna.distributions.IntDistribution(16, 512),
        "act": optuna.distributions.CategoricalDistribution(["relu", "tanh", "gelu"]),
    }
    start = time.perf_counter()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(n):
        trial = study.ask(dists)
        study.tell(trial, objective(trial.params))
    return (time.perf_counter() - start) / n


TRIAL = """
import os, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
got = time.time()
time.sleep({duration})
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
returned = time.time()
with open(os.path.join(os.environ["SHERPA_OUTPUT_DIR"], f"t_{{trial.id}}"), "w") as f:
    f.write(f"{{got}} {{returned}}")
"""


class TimedScheduler(LocalScheduler):
    """Records when each trial is submitted and when its exit is seen."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: dict[str, float] = {}
        self.exited: dict[str, float] = {}

    def submit(self, command, env, name, cwd=None):  # type: ignore[no-untyped-def]
        self.submitted[name] = time.time()
        return super().submit(command, env, name, cwd)

    async def wait(self, job):  # type: ignore[no-untyped-def]
        code = await super().wait(job)
        self.exited[job.name] = time.time()
        return code


class SeenRule(sherpa.algorithms.MedianStoppingRule):
    """Never stops; records when the algorithm sees each report."""

    def __init__(self) -> None:
        super().__init__(min_iterations=10**9)
        self.seen: dict[int, float] = {}

    def should_stop(self, trial_id, history):  # type: ignore[no-untyped-def]
        self.seen[trial_id] = time.time()
        return False


def runner(n: int, concurrent: int, duration: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        script = Path(tmp) / "trial.py"
        script.write_text(textwrap.dedent(TRIAL.format(duration=duration)))
        scheduler = TimedScheduler()
        rule = SeenRule()
        start = time.time()
        sherpa.optimize(
            [sherpa.Continuous("x", [0, 1])],
            sherpa.algorithms.RandomSearch(max_num_trials=n),
            True,
            scheduler,
            filename=str(script),
            output_dir=str(out),
            max_concurrent=concurrent,
            stopping_rule=rule,
            verbose=0,
            seed=0,
        )
        wall = time.time() - start
        launch, metric, busy = [], [], 0.0
        for i in range(1, n + 1):
            got, returned = map(float, (out / f"t_{i}").read_text().split())
            launch.append(got - scheduler.submitted[f"trial_{i}"])
            metric.append(rule.seen[i] - returned)
            busy += scheduler.exited[f"trial_{i}"] - scheduler.submitted[f"trial_{i}"]
        exits = sorted(scheduler.exited.values())
        submits = sorted(scheduler.submitted.values())
        refill = [min(s for s in submits if s >= e) - e for e in exits[: n - concurrent]]
        first, last = min(submits), max(exits)
        return {
            "launch_median_ms": 1000 * statistics.median(launch),
            "launch_max_ms": 1000 * max(launch),
            "metric_max_ms": 1000 * max(metric),
            "refill_median_ms": 1000 * statistics.median(refill),
            "refill_max_ms": 1000 * max(refill),
            "busy": busy / (concurrent * (last - first)),
            "wall_s": wall,
            "trials_per_s": n / (last - first),
        }


def import_time(runs: int = 7) -> float:
    """Median self-inclusive import time of ridgeline's own package, in ms."""
    values = []
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import ridgeline"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        for line in err.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] == "ridgeline":
                values.append(int(parts[1]) / 1000)
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [1000] if args.quick else [1000, 10000]
    print("| measure | ridgeline | Optuna (in-memory, RandomSampler) | target |")
    print("| --- | --- | --- | --- |")
    for n in sizes:
        ours = ridgeline_study(n)
        theirs = optuna_study(n)
        ratio = f" ({theirs / ours:.1f}x faster)" if theirs else ""
        theirs_s = f"{theirs * 1e3:.3f} ms" if theirs else "not installed"
        print(
            f"| Study cost per trial, {n:,} trials | {ours * 1e3:.3f} ms{ratio} | {theirs_s} "
            f"| <= 1 ms, >= 2x faster |"
        )
    alone = runner(10, 1, 0.0)
    print(
        f"| launch latency, one trial at a time (submit -> hyperparameters in hand), "
        f"median / max | {alone['launch_median_ms']:.0f} / {alone['launch_max_ms']:.0f} ms "
        f"| | <= 150 ms |"
    )
    n = 16 if args.quick else 40
    stats = runner(n, 8, 1.0)
    print(
        f"| launch latency, 8 trials starting together on 2 cores, median / max "
        f"| {stats['launch_median_ms']:.0f} / {stats['launch_max_ms']:.0f} ms | | |"
    )
    print(
        f"| workers busy, 8 concurrent trials of 1 s ({n} trials) | {100 * stats['busy']:.1f} % "
        f"| | >= 95 % |"
    )
    print(
        f"| slot refill (exit seen -> next submit), median / max "
        f"| {stats['refill_median_ms']:.2f} / {stats['refill_max_ms']:.2f} ms | | <= 100 ms |"
    )
    print(
        f"| metric seen by the algorithm, relative to send_metrics returning (max) "
        f"| {stats['metric_max_ms']:+.2f} ms | | <= 50 ms |"
    )
    print(f"| import ridgeline (own modules) | {import_time():.1f} ms | | <= 50 ms |")


if __name__ == "__main__":
    main()
