"""Run helpers both doors share: running the coordinator's loop, logging to the output folder,
the live progress line, replaying stored results after a restart, giving the lease back."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.engine.engine import OBJECTIVE_KEY, Engine
from ridgeline.engine.progress import Progress
from ridgeline.errors import StoreError
from ridgeline.store.base import Store
from ridgeline.store.records import TRIAL_DONE_STATES

if TYPE_CHECKING:
    from ridgeline.engine.coordinator import Coordinator

__all__ = [
    "Progress",
    "process_alive",
    "rebuild_results",
    "release_quietly",
    "run_coordinator",
    "setup_logging",
]


def run_coordinator(coordinator: Coordinator, resume: bool) -> None:
    """Run the coordinator to its end on the event loop its scheduler asks for (asyncio's
    default, or the simulated scheduler's virtual clock), as ``asyncio.run`` would."""
    with asyncio.Runner(loop_factory=coordinator.scheduler.loop_factory()) as runner:
        runner.run(coordinator.run(resume=resume))


log = logging.getLogger("ridgeline")


def release_quietly(store: Store, experiment_id: int, token: int) -> None:
    """Give the lease back at the end of a run; a lease already lost, or a store that is
    down, only means the lease expires by itself."""
    try:
        store.release_lease(experiment_id, token)
    except StoreError as exc:
        log.warning("could not release the lease on experiment %d: %s", experiment_id, exc)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def rebuild_results(store: Store, engine: Engine) -> None:
    """Tell the engine's observers (the results table) the stored observations and trial ends
    in the order they happened: the metrics the searcher saw (SHERPA reports, Core-API
    operation results), every one of them. After a restart, before new events arrive."""
    trials = {r.id: r for r in store.list_trials(engine.experiment_id)}
    events: list[tuple[float, int, Any]] = []
    for metric in store.read_metrics(engine.experiment_id, group=engine.searcher_group):
        events.append((metric.time, 0, metric))
    for record in trials.values():
        if record.state in TRIAL_DONE_STATES and record.ended_at is not None:
            events.append((record.ended_at, 1, record))
    events.sort(key=lambda e: (e[0], e[1]))
    for _, kind, item in events:
        if kind == 0:
            record = trials[item.trial_id]
            values = dict(item.values)
            if OBJECTIVE_KEY not in values:
                continue  # a group report (validation metrics), not a searcher observation
            objective = values.pop(OBJECTIVE_KEY)
            if not isinstance(objective, int | float) or isinstance(objective, bool):
                objective = math.nan  # not a number: kept in the table, never the best
            engine.observers.observed(record.number, item.step, record.params, objective, values)
        else:
            engine.observers.ended(item.number, item.state)


def setup_logging(out: Path, verbose: int) -> None:
    logger = logging.getLogger("ridgeline")
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        if getattr(handler, "_ridgeline", False):
            logger.removeHandler(handler)
            handler.close()
    file_handler = logging.FileHandler(out / "log.txt")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handlers: list[logging.Handler] = [file_handler]
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        handlers.append(console)
    for handler in handlers:
        handler._ridgeline = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
