"""The coordinator's decisions without trial processes: long-polls, preemption, outcomes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ridgeline.engine.coordinator import CORE, Coordinator, RunSettings
from ridgeline.engine.engine import Engine
from ridgeline.errors import ObservationError
from ridgeline.results import ResultsTable
from ridgeline.samplers.random import RandomSampler
from ridgeline.schedulers.local import LocalScheduler
from ridgeline.searchers.base import Close, Train
from ridgeline.searchers.fifo import FIFOSearcher
from ridgeline.space import Continuous, SearchSpace
from ridgeline.store import open_store
from ridgeline.store.records import COMPLETED, FAILED, STOPPED

SPACE = SearchSpace([Continuous("x", [0.0, 1.0])])


def coordinator(tmp_path: Path, max_trials: int = 2) -> Coordinator:
    store = open_store(None)
    experiment = store.create_experiment("e", {})
    searcher = FIFOSearcher(RandomSampler(), max_trials=max_trials, max_length=10)
    engine = Engine(store, experiment.id, SPACE, searcher, True, 1, searcher_group="searcher")
    return Coordinator(
        engine,
        LocalScheduler(output_dir=str(tmp_path)),
        ["true"],
        tmp_path,
        max_concurrent=2,
        token="t",
        results=ResultsTable(True),
        settings=RunSettings(front_door=CORE, max_length=10, searcher_metric="loss"),
    )


def test_next_operation_answers_the_moment_the_searcher_decides(tmp_path: Path) -> None:
    async def scenario() -> None:
        c = coordinator(tmp_path)
        c.engine.slots_free(1)
        assert await c.next_operation(1, 0.0) == {"op": {"id": 1, "length": 10}}
        c.engine.ops[1].done = True  # reported; the searcher has not decided yet
        waiting = asyncio.ensure_future(c.next_operation(1, 5.0))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # nothing to do yet: the long-poll waits
        c._handle(c.engine._apply([Train(1, 20)]))  # the searcher extends the trial
        assert await asyncio.wait_for(waiting, 1.0) == {"op": {"id": 2, "length": 20}}
        c.engine.ops[1].done = True
        c._handle(c.engine._apply([Close(1)]))
        assert await c.next_operation(1, 5.0) == {"op": None, "done": True}
        assert c.runtime(1).released

    asyncio.run(scenario())


def test_pause_wakes_preemption_waiters(tmp_path: Path) -> None:
    async def scenario() -> None:
        c = coordinator(tmp_path)
        c.engine.slots_free(1)
        assert await c.wait_preemption(1, 0.0) is False
        waiting = asyncio.ensure_future(c.wait_preemption(1, 5.0))
        await asyncio.sleep(0.05)
        c.pause()
        assert await asyncio.wait_for(waiting, 1.0) is True

    asyncio.run(scenario())


def test_early_exit_names_the_reasons_it_knows(tmp_path: Path) -> None:
    c = coordinator(tmp_path)
    c.engine.slots_free(1)
    with pytest.raises(ObservationError, match="INVALID_HP"):
        c.report_early_exit(1, "BORED")
    c.report_early_exit(1, "INVALID_HP")
    assert c.runtime(1).invalid_hp


@pytest.mark.parametrize(
    ("ends", "outcome"),
    [
        ((FAILED, FAILED), "ERROR"),
        ((FAILED, COMPLETED), "COMPLETED"),
        ((FAILED, STOPPED), "COMPLETED"),
    ],
)
def test_outcome_is_error_when_no_trial_succeeded(
    tmp_path: Path, ends: tuple[str, str], outcome: str
) -> None:
    c = coordinator(tmp_path)
    c.engine.slots_free(2)
    for number, state in enumerate(ends, start=1):
        c.engine.trial_exited(number, state, 1 if state == FAILED else 0)
    assert c.outcome() == outcome
    assert (c.error is not None) == (outcome == "ERROR")


def test_outcome_is_error_when_validations_never_carry_the_searcher_metric(
    tmp_path: Path,
) -> None:
    c = coordinator(tmp_path)
    c.engine.slots_free(1)
    c._parse_group_report(1, {"group": "validation", "step": 1, "values": {"acc": 0.5}})
    c.engine.trial_exited(1, COMPLETED, 0)
    assert c.outcome() == "ERROR"
    assert "'loss' was never reported" in (c.error or "")


def test_a_coordinator_that_finds_its_experiment_killed_runs_nothing(tmp_path: Path) -> None:
    """`experiment kill` can land while a detached coordinator is still starting: it must end
    the experiment, not launch trials that nobody will stop."""
    c = coordinator(tmp_path)
    c.store.update_experiment(c.engine.experiment_id, state="CANCELED")
    asyncio.run(asyncio.wait_for(c.run(), 30))
    assert c.outcome() == "CANCELED"
    assert c.store.list_trials(c.engine.experiment_id) == []  # nothing was created or run
    assert not list(tmp_path.glob("jobs/*"))
