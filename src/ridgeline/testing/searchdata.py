"""A recorded search of any size, written through the store's API: for the dashboard's
tests and its first-paint benchmark (10,000 trials x 100 steps).

The search looks as asynchronous successive halving (4 rungs, divisor 3) with PBT-style clones
would leave it: three hyperparameters (a log float, an int, a category), validation reports
on a smooth curve whose level depends on them, trials stopped at a rung (about half go on at
each), every fifth trial cloned from an earlier one, and a checkpoint at each trial's end.
"""

from __future__ import annotations

import math
import random
import uuid

from ridgeline.searchers.asha import rung_lengths
from ridgeline.store.base import Store
from ridgeline.store.records import COMPLETED, STOPPED

DIVISOR, NUM_RUNGS = 3, 4


def record_search(
    store: Store,
    trials: int = 30,
    steps: int = 20,
    seed: int = 0,
    name: str = "recorded",
    rungs: bool = True,
) -> int:
    """Write a finished search of ``trials`` trials and up to ``steps`` steps; its id.
    ``rungs=False``: every trial reports all ``steps`` steps (none is stopped at a rung)."""
    rng = random.Random(seed)
    searcher = {
        "name": "async_halving",
        "metric": "objective",
        "smaller_is_better": True,
        "max_length": {"batches": steps},
        "num_rungs": NUM_RUNGS,
        "divisor": DIVISOR,
        "max_trials": trials,
    }
    rungs_at = rung_lengths(steps, DIVISOR, NUM_RUNGS)
    config = {"raw": {"searcher": searcher}, "output_dir": "", "token": uuid.uuid4().hex}
    experiment = store.create_experiment(name, config, state=COMPLETED)
    made: list[int] = []
    batch: list[tuple[int, str, list[tuple[int, dict[str, float]]]]] = []
    for index in range(trials):
        lr = 10 ** rng.uniform(-4, -1)
        layers = rng.randint(1, 6)
        optimizer = rng.choice(["adam", "sgd", "rmsprop"])
        parent = made[rng.randrange(len(made))] if made and index % 5 == 4 else None
        trial = store.create_trial(
            experiment.id,
            index + 1,
            {"lr": lr, "layers": layers, "optimizer": optimizer},
            parent_id=parent,
            state=COMPLETED,
        )
        made.append(trial.id)
        level = abs(math.log10(lr) + 2.5) + 0.1 * abs(layers - 3)
        level += {"adam": 0.0, "sgd": 0.3, "rmsprop": 0.15}[optimizer]
        length = steps
        if rungs:
            length = next((r for r in rungs_at if r < steps and rng.random() < 0.5), steps)
        entries = [
            (step, {"objective": level + 1.0 / step + rng.gauss(0, 0.01), "loss": 2.0 / step})
            for step in range(1, length + 1)
        ]
        batch.append((trial.id, "validation", entries))
        ended = trial.created_at + length * 0.01
        state = COMPLETED if length == steps else STOPPED
        store.update_trial(trial.id, state=state, exit_code=0, ended_at=ended)
        if index < 200:
            store.add_checkpoint(str(uuid.uuid4()), trial.id, length, {"steps": length})
        if len(batch) >= 200:
            store.add_metrics_batch(batch)
            batch = []
    if batch:
        store.add_metrics_batch(batch)
    return experiment.id
