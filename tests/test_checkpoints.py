"""The engine's checkpoint module on a real store: ownership, confinement and retention."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import ridgeline as sherpa
from ridgeline.engine.checkpoints import CheckpointForbidden, CheckpointNotFound, Checkpoints
from ridgeline.engine.engine import Engine
from ridgeline.errors import CheckpointError
from ridgeline.sherpa.build import build_searcher, build_space
from ridgeline.store import open_store
from ridgeline.store.base import Store
from ridgeline.store.records import COMPLETED

KEEP = {"save_trial_latest": 1, "save_trial_best": 1, "save_experiment_best": 0}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "store.db"))
    yield opened
    opened.close()


def experiment(store: Store, trials: int = 2) -> Engine:
    record = store.create_experiment("e", {})
    engine = Engine(
        store,
        record.id,
        build_space([sherpa.Continuous("x", [0.0, 1.0])]),
        build_searcher(sherpa.algorithms.RandomSearch(max_num_trials=trials)),
        lower_is_better=True,
        seed=1,
    )
    for _ in range(trials):
        engine.add_trial({"x": 0.5})
    return engine


def save(root: Path, keeper: Checkpoints, number: int, steps: int) -> str:
    name = str(uuid.uuid4())
    (root / name).mkdir(parents=True)
    (root / name / "state").write_text(str(steps))
    keeper.register(number, name, steps, {"steps_completed": steps})
    return name


def test_ids_are_checked_and_folders_must_be_real(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    root.mkdir()
    keeper = Checkpoints(experiment(store), root, "loss", KEEP)
    for bad in ["/tmp/x", "../x", "", "a/../../b", str(root), None]:
        with pytest.raises(CheckpointError, match="UUID"):
            keeper.register(1, bad, 1, {})
    missing = str(uuid.uuid4())
    with pytest.raises(CheckpointError, match="no folder"):
        keeper.register(1, missing, 1, {})
    linked = str(uuid.uuid4())
    (root / linked).symlink_to(tmp_path)
    with pytest.raises(CheckpointError, match="symlink"):
        keeper.register(1, linked, 1, {})
    name = save(root, keeper, 1, 1)
    for steps, metadata in [(-1, {}), ("x", {}), (1, [])]:
        with pytest.raises(ValueError):
            keeper.register(1, name, steps, metadata)
    assert keeper.register(1, name, 1, {}).uuid == name  # a retry returns the record
    with pytest.raises(CheckpointForbidden):
        keeper.register(2, name, 1, {})  # another trial cannot claim it


def test_other_experiments_and_trials_are_out_of_reach(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "shared"
    mine = Checkpoints(experiment(store), root, "loss", KEEP)
    theirs = Checkpoints(experiment(store), root, "loss", KEEP)
    their_one = save(root, theirs, 1, 1)
    own_one, own_two = save(root, mine, 1, 1), save(root, mine, 2, 1)
    for number in (None, 1):
        with pytest.raises(CheckpointNotFound):
            mine.info(their_one, number)
        with pytest.raises(CheckpointNotFound):
            mine.delete(their_one, number)
    with pytest.raises(CheckpointForbidden):
        mine.register(1, their_one, 1, {})
    with pytest.raises(CheckpointForbidden):
        mine.info(own_two, 1)
    with pytest.raises(CheckpointForbidden):
        mine.delete(own_two, 1)
    assert (root / their_one).is_dir() and (root / own_two).is_dir()
    assert store.get_checkpoint(their_one).state == COMPLETED
    assert mine.info(own_two, 2).uuid == own_two and mine.info(own_two).uuid == own_two
    assert mine.delete(own_one, 1).state == "DELETED" and not (root / own_one).exists()


def test_retention_scores_each_checkpoint_by_its_own_steps(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    engine = experiment(store, trials=1)
    keeper = Checkpoints(engine, root, "loss", KEEP)
    trial_id = engine.records[1].id
    losses = {10: 0.9, 20: 0.5, 30: 0.05, 40: 0.3, 50: 0.6}
    store.add_metrics(trial_id, "validation", [(s, {"loss": v}) for s, v in losses.items()])
    store.add_metrics(trial_id, "searcher", [(2, {"objective": 0.01})])  # lengths: epochs
    names = {steps: save(root, keeper, 1, steps) for steps in [*losses, 60]}
    scored = {c.steps_completed: v for c, v in keeper.scored(1)}
    assert scored == {**losses, 60: None}
    assert keeper.collect_garbage(1) == []  # the trial has not ended
    engine.trial_exited(1, COMPLETED, 0)
    gone = {c.steps_completed for c in keeper.collect_garbage(1)}
    assert gone == {10, 20, 40, 50}
    assert sorted(p.name for p in root.iterdir()) == sorted([names[30], names[60]])


def test_a_stored_id_that_is_a_path_never_reaches_the_disk(store: Store, tmp_path: Path) -> None:
    """Records from before ids were checked ('' once named the whole folder) are left alone."""
    root = tmp_path / "ckpts"
    engine = experiment(store, trials=1)
    keeper = Checkpoints(engine, root, "loss", {**KEEP, "save_trial_latest": 0})
    kept = save(root, keeper, 1, 5)
    for legacy in ["", "../victim", str(tmp_path)]:
        store.add_checkpoint(legacy, engine.records[1].id, 1, {})
    (tmp_path / "victim").mkdir()
    engine.trial_exited(1, COMPLETED, 0)
    keeper.collect_garbage()
    assert not (root / kept).exists()  # no metric, not latest: it goes
    assert root.is_dir() and (tmp_path / "victim").is_dir()
    with pytest.raises(CheckpointError):
        keeper.delete("", None)
