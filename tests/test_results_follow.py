"""SHERPA's results table follows the engine's events: the rows come from what the engine
records, the same whether they arrive live or are rebuilt from the store after a restart."""

from __future__ import annotations

import asyncio
import csv
import math
from pathlib import Path
from typing import Any

import pytest

import ridgeline as sherpa
from ridgeline.engine.coordinator import Coordinator
from ridgeline.engine.engine import Engine
from ridgeline.engine.run import rebuild_results
from ridgeline.results import ResultsTable
from ridgeline.samplers.random import RandomSampler
from ridgeline.schedulers.local import LocalScheduler
from ridgeline.searchers.fifo import FIFOSearcher
from ridgeline.space import Continuous, SearchSpace
from ridgeline.store import open_store
from ridgeline.store.base import Store
from ridgeline.store.records import COMPLETED, FAILED, STOPPED

SPACE = SearchSpace([Continuous("x", [0.0, 1.0])])


def _engine(store: Store, experiment_id: int, max_trials: int = 3) -> Engine:
    searcher = FIFOSearcher(RandomSampler(), max_trials=max_trials)
    return Engine(store, experiment_id, SPACE, searcher, True, seed=7)


def _rows(table: ResultsTable) -> list[tuple[Any, ...]]:
    return [
        (r["Trial-ID"], r["Status"], r["Iteration"], r["Objective"], r.get("acc"))
        for r in table.rows
    ]


def test_the_table_follows_a_scripted_run_and_a_rebuild_gives_the_same_rows() -> None:
    store = open_store(None)
    experiment = store.create_experiment("e", {})
    engine = _engine(store, experiment.id)
    live = ResultsTable(lower_is_better=True)
    engine.observers.add(live)
    engine.slots_free(3)
    engine.report(1, 1, 0.5, {"acc": 0.7})
    engine.report(1, 2, 0.25, {"acc": 0.8})
    assert engine.report(1, 2, 0.1)[0] is False  # a repeated step: no new row
    engine.report(2, 1, math.nan)
    engine.trial_exited(1, COMPLETED)
    engine.report(3, 1, 0.05)
    engine.trial_exited(3, FAILED)
    with pytest.warns(RuntimeWarning, match="Trial 2 has only NaN") as caught:
        engine.trial_exited(2, STOPPED)
    assert caught[0].filename == __file__  # points at the caller, not the engine's frames
    engine.trial_exited(1, FAILED)  # already ended: the engine ignores it, so does the table
    imported = engine.import_result({"x": 0.5}, 0.2)

    assert _rows(live)[:3] == [
        (1, "INTERMEDIATE", 1, 0.5, 0.7),
        (1, "INTERMEDIATE", 2, 0.25, 0.8),
        (2, "INTERMEDIATE", 1, _rows(live)[2][3], None),
    ]
    assert math.isnan(_rows(live)[2][3])
    assert _rows(live)[3:] == [
        (1, COMPLETED, 2, 0.25, 0.8),  # the best row, at the last iteration
        (3, "INTERMEDIATE", 1, 0.05, None),
        (3, FAILED, 1, 0.05, None),
        (imported.number, "INTERMEDIATE", 1, 0.2, None),
        (imported.number, COMPLETED, 1, 0.2, None),
    ]
    assert live.best()["Objective"] == 0.2  # the FAILED trial's 0.05 never counts

    rebuilt = ResultsTable(lower_is_better=True)
    after_restart = _engine(store, experiment.id)
    after_restart.observers.add(rebuilt)
    with pytest.warns(RuntimeWarning, match="Trial 2 has only NaN"):
        rebuild_results(store, after_restart)
    assert repr(_rows(rebuilt)) == repr(_rows(live))  # repr: NaN equals NaN
    assert rebuilt.best() == live.best()


def test_study_rows_come_from_the_engine() -> None:
    study = sherpa.Study(
        [sherpa.Continuous("x", [0.0, 1.0])], sherpa.algorithms.RandomSearch(2), True, seed=1
    )
    first = study.get_suggestion()
    assert isinstance(first, sherpa.Trial)
    study.add_observation(first, iteration=1, objective=0.3, context={"acc": 0.9})
    study.finalize(first)
    known = study.add_result({"x": 0.1}, 0.2)
    assert list(study.results["Status"]) == ["INTERMEDIATE", COMPLETED, "INTERMEDIATE", COMPLETED]
    assert list(study.results["Trial-ID"]) == [first.id, first.id, known.id, known.id]
    assert study.results["acc"].iloc[1] == 0.9
    assert study.get_best_result()["Objective"] == 0.2


def test_a_paused_trial_the_user_kills_gets_its_final_row(tmp_path: Path) -> None:
    """Every trial end reaches the table, not only those a process exit announces: a paused
    trial killed by the user ends STOPPED with its best row, as a rebuild would show it."""

    async def scenario() -> Coordinator:
        store = open_store(None)
        experiment = store.create_experiment("e", {})
        coordinator = Coordinator(
            _engine(store, experiment.id, max_trials=1),
            LocalScheduler(output_dir=str(tmp_path)),
            ["true"],
            tmp_path,
            max_concurrent=1,
            token="t",
            results=ResultsTable(True),
        )
        coordinator.engine.slots_free(1)
        report = {"step": 3, "objective": 0.4, "context": {"acc": 0.6}}
        assert await coordinator.on_reports(1, [report]) == 1
        coordinator.engine.trial_paused(1)
        coordinator.kill_trial(1)
        coordinator.live_results.finish()
        return coordinator

    coordinator = asyncio.run(scenario())
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["Trial-ID"], r["Status"], r["Iteration"], r["acc"]) for r in rows] == [
        ("1", "INTERMEDIATE", "3", "0.6"),
        ("1", STOPPED, "3", "0.6"),
    ]
    assert coordinator.results.best()["Objective"] == 0.4
