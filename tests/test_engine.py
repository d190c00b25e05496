"""The engine on its own: events in, store rows and searcher actions out (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ridgeline.engine.engine import Engine, Operation
from ridgeline.errors import ObservationError
from ridgeline.samplers.random import RandomSampler
from ridgeline.searchers.base import Shutdown, Train
from ridgeline.searchers.fifo import FIFOSearcher
from ridgeline.space import Continuous, SearchSpace
from ridgeline.store import open_store
from ridgeline.store.base import Store
from ridgeline.store.records import COMPLETED, FAILED, PENDING

SPACE = SearchSpace([Continuous("x", [0.0, 1.0])])


def engine(store: Store, experiment_id: int, max_trials: int = 3) -> Engine:
    searcher = FIFOSearcher(RandomSampler(), max_trials=max_trials, max_length=10)
    return Engine(store, experiment_id, SPACE, searcher, True, seed=5, searcher_group="searcher")


def test_creates_are_stored_before_the_driver_hears_of_them() -> None:
    store = open_store(None)
    experiment = store.create_experiment("e", {})
    e = engine(store, experiment.id)
    assert e.start() == []
    actions = e.slots_free(2)
    trains = [a for a in actions if isinstance(a, Train)]
    assert [t.trial for t in trains] == [1, 2]
    assert [t.state for t in store.list_trials(experiment.id)] == [PENDING, PENDING]
    assert e.ops[1] == Operation(id=1, length=10)


def test_operations_complete_once_and_only_the_current_one() -> None:
    store = open_store(None)
    experiment = store.create_experiment("e", {})
    e = engine(store, experiment.id, max_trials=1)
    e.slots_free(1)
    with pytest.raises(ObservationError, match="not its current operation"):
        e.complete_operation(1, 99, 0.5)
    actions = e.complete_operation(1, 1, 0.5)
    assert e.ops[1].done
    assert e.complete_operation(1, 1, 0.5) == []  # a retry is acknowledged, not applied twice
    assert len(store.trial_metrics(e.records[1].id, "searcher")) == 1
    assert any(isinstance(a, Shutdown) for a in actions + e.slots_free(1)) or e.shutdown
    assert e.history.trials[0].objective == 0.5


def test_a_repeated_report_is_not_new() -> None:
    store = open_store(None)
    experiment = store.create_experiment("e", {})
    e = engine(store, experiment.id)
    e.slots_free(1)
    assert e.report(1, 3, 0.25)[0] is True
    assert e.report(1, 3, 0.25)[0] is False
    with pytest.raises(ObservationError):
        e.report(1, 4, "not a number")
    assert len(store.trial_metrics(e.records[1].id, "searcher")) == 1


def test_trial_exit_is_recorded_once() -> None:
    store = open_store(None)
    experiment = store.create_experiment("e", {})
    e = engine(store, experiment.id)
    e.slots_free(1)
    e.trial_exited(1, FAILED, 3)
    assert e.trial_exited(1, COMPLETED, 0) == []  # a second exit changes nothing
    (record,) = store.list_trials(experiment.id)
    assert (record.state, record.exit_code) == (FAILED, 3)


def test_resume_rebuilds_history_operations_and_skips_non_searcher_values(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    experiment = store.create_experiment("e", {})
    first = engine(store, experiment.id)
    first.slots_free(2)
    first.complete_operation(1, 1, 0.75)
    # Another group's values in the searcher's group must not poison a resume.
    store.add_metrics(first.records[2].id, "searcher", [(4, {"loss": "n/a"})])
    store.close()

    store = open_store(tmp_path / "store.db")
    second = engine(store, experiment.id)
    second.resume()
    assert second.ops == first.ops
    assert second.history.trials[0].objective == 0.75
    assert second.history.curves[2] == []
    assert sorted(second.records) == [1, 2]
    store.close()


def test_resume_replays_what_the_searcher_missed_in_a_crash(tmp_path: Path) -> None:
    """Reports and trial ends recorded after the searcher's last snapshot reach it on resume;
    a trial stored after that snapshot waits for the searcher to make it again."""
    store = open_store(tmp_path / "store.db")
    experiment = store.create_experiment("e", {})
    first = engine(store, experiment.id, max_trials=3)
    first.slots_free(2)  # trials 1 and 2 are known to the saved searcher state
    # What a crash leaves: a result stored, an exit and a new trial recorded, no new snapshot.
    store.add_metrics(first.records[1].id, "searcher", [(10, {"objective": 0.3})])
    store.update_trial(first.records[2].id, state=FAILED, exit_code=1)
    store.add_event(experiment.id, "trial_exited", {"trial": 2, "status": "FAILED"})
    store.create_trial(experiment.id, 3, {"x": 0.5})
    store.close()

    store = open_store(tmp_path / "store.db")
    second = engine(store, experiment.id, max_trials=3)
    second.resume()
    assert second.ops[1].done  # its operation's result was replayed to the searcher
    assert second.unclaimed == {3}
    assert 2 not in second.history.active
    second.take_replayed()
    second.slots_free(1)  # the searcher makes its third trial again: the stored one
    assert second.unclaimed == set()
    assert len(store.list_trials(experiment.id)) == 3
    store.close()
