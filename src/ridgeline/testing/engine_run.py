"""Run a searcher through the real engine on simulated time: ``run_searcher``'s twin.

``ridgeline.testing.simulate.Simulation`` re-implements the engine in miniature; this runs the
real one: ``Engine`` and ``Coordinator`` with a SQLite store in ``folder``, trials on a
``SimulatedScheduler`` (Core-API trials as coroutines on a virtual clock), checkpoints,
pauses, relaunches, restarts after failures and the heartbeat watchdog included. A search of
hours of simulated training takes seconds:

    searcher, space, lower = searcher_from_config({"name": "adaptive_asha", ...}, hparams)
    run = run_on_engine(searcher, space, from_objective(curve), 4, lower, seed=0, folder=tmp)
    run.reports, run.states(), run.best(), run.makespan

Where both are deterministic it reports what ``Simulation(..., ties="trial")`` does:
simultaneous operation ends report in trial number order, and each report's consequences (a
pause, the exit, the next trial) settle before the next report. One difference is by design:
a trial that the searcher pauses and, in the same decision, gives more work keeps its process
here (the engine never tells it to stop), where ``Simulation`` ends and relaunches it.
"""

from __future__ import annotations

import copy
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ridgeline.engine.coordinator import CORE, Coordinator, RunSettings
from ridgeline.engine.engine import OBJECTIVE_KEY, Engine
from ridgeline.engine.run import run_coordinator
from ridgeline.engine.watchdog import DEFAULT_HEARTBEAT_SECONDS
from ridgeline.errors import SearchFailed
from ridgeline.results import ResultsTable
from ridgeline.schedulers.simulated import SimulatedOperation, SimulatedScheduler, TrainFn
from ridgeline.searchers.base import Searcher
from ridgeline.space import SearchSpace
from ridgeline.store import open_store
from ridgeline.store.records import TrialRecord

__all__ = ["EngineRun", "Report", "run_on_engine"]

#: What a simulated search's store keeps of old checkpoints (the Core door's defaults).
RETENTION = {"save_trial_latest": 1, "save_trial_best": 1, "save_experiment_best": 0}


@dataclass(frozen=True)
class Report:
    """A searcher report as the store recorded it, with its simulated time."""

    time: float
    trial: int
    length: int
    objective: float


@dataclass
class EngineRun:
    """What a search on the engine left: the store's trials and reports, the scheduler's
    operations, the simulated makespan and the wall time it took."""

    trials: dict[int, TrialRecord]  # by trial number, as stored at the end
    parents: dict[int, int | None]
    reports: list[Report]  # in the order the store received them
    operations: list[SimulatedOperation]  # every stretch of training, in start order
    makespan: float  # simulated seconds from start to the end of the last operation
    wall_seconds: float
    outcome: str  # the experiment's final state
    error: str | None
    lower_is_better: bool
    folder: Path

    def states(self) -> dict[int, str]:
        return {number: record.state for number, record in self.trials.items()}

    def restarts(self) -> dict[int, int]:
        return {number: record.restarts for number, record in self.trials.items()}

    def best(self) -> float | None:
        """The best objective reported (None: nothing finite was)."""
        values = [r.objective for r in self.reports if math.isfinite(r.objective)]
        if not values:
            return None
        return min(values) if self.lower_is_better else max(values)

    def total_length(self) -> int:
        """Length trained by every attempt (stretches cut short included)."""
        return sum(op.trained for op in self.operations)

    def peak_training(self) -> int:
        """Most operations in training at once (an end frees its slot before a start)."""
        edges = sorted(
            [(op.end, -1) for op in self.operations] + [(op.start, 1) for op in self.operations]
        )
        level = peak = 0
        for _, step in edges:
            level += step
            peak = max(peak, level)
        return peak


def run_on_engine(
    searcher: Searcher,
    space: SearchSpace,
    train_fn: TrainFn,
    capacity: int,
    lower_is_better: bool = True,
    seed: int = 0,
    *,
    folder: str | Path,
    time_per_unit: float = 1.0,
    exits: Mapping[tuple[int, int], int] | None = None,
    max_restarts: int = 0,
    heartbeat_seconds: float | None = DEFAULT_HEARTBEAT_SECONDS,
    copy_state: Callable[[Any], Any] = copy.deepcopy,
) -> EngineRun:
    """Run ``searcher`` to the end on the real engine, at most ``capacity`` trials at once.

    ``folder`` receives the store ``ridgeline.db``, the checkpoints, ``results.csv`` and
    ``log.txt``. ``seed`` seeds the searcher's generator as ``run_searcher``'s does. The
    other options are ``SimulatedScheduler``'s (``exits``: failures on cue) and the run's
    (``max_restarts``: a failed trial restarts from its latest checkpoint this often)."""
    out = Path(folder).resolve()
    out.mkdir(parents=True, exist_ok=True)
    store = open_store(str(out / "ridgeline.db"))
    try:
        experiment = store.create_experiment(
            "simulated", {"front_door": CORE, "seed": seed, "output_dir": str(out)}
        )
        engine = Engine(
            store, experiment.id, space, searcher, lower_is_better, seed, searcher_group="searcher"
        )
        scheduler = SimulatedScheduler(
            train_fn,
            capacity,
            time_per_unit,
            exits=exits,
            copy_state=copy_state,
            output_dir=str(out),
        )
        checkpoints = out / "checkpoints"
        checkpoints.mkdir(exist_ok=True)
        coordinator = Coordinator(
            engine,
            scheduler,
            ["simulated-trial"],
            out,
            capacity,
            secrets.token_urlsafe(24),
            ResultsTable(lower_is_better),
            settings=RunSettings(
                front_door=CORE,
                max_restarts=max_restarts,
                checkpoint_dir=checkpoints,
                searcher_metric=OBJECTIVE_KEY,
                smaller_is_better=lower_is_better,
                retention=dict(RETENTION),
                max_length=math.inf,  # operations come from the searcher, absolute
                heartbeat_seconds=heartbeat_seconds,
                dashboard=False,
            ),
        )
        started = time.perf_counter()
        run_coordinator(coordinator, resume=False)
        error = None
        try:
            coordinator.conclude("the simulated search")
        except SearchFailed as exc:
            error = str(exc)
        wall = time.perf_counter() - started
        records = {r.number: r for r in store.list_trials(experiment.id)}
        numbers = {r.id: r.number for r in records.values()}
        ends = {
            (op.trial, op.to_length): op.end
            for op in scheduler.operations
            if op.outcome == "completed"
        }
        reports = [
            Report(
                ends.get((numbers[m.trial_id], m.step), math.nan),
                numbers[m.trial_id],
                m.step,
                float(m.values[OBJECTIVE_KEY]),
            )
            for m in store.read_metrics(experiment.id, group="searcher")
        ]
        final = store.get_experiment(experiment.id).state
    finally:
        store.close()
    return EngineRun(
        trials=records,
        parents={
            n: None if r.parent_id is None else numbers[r.parent_id] for n, r in records.items()
        },
        reports=reports,
        operations=scheduler.operations,
        makespan=max((op.end for op in scheduler.operations), default=0.0),
        wall_seconds=wall,
        outcome=final,
        error=error,
        lower_is_better=lower_is_better,
        folder=out,
    )
