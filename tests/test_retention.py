"""Checkpoint retention decisions."""

from __future__ import annotations

from ridgeline.engine.retention import to_delete
from ridgeline.store.records import CheckpointRecord


def ckpt(uuid: str, steps: int) -> CheckpointRecord:
    return CheckpointRecord(uuid=uuid, trial_id=1, steps_completed=steps, created_at=float(steps))


def test_trial_keeps_latest_and_best() -> None:
    trial = [
        (ckpt("a", 10), 0.5),
        (ckpt("b", 20), 0.1),
        (ckpt("c", 30), 0.3),
        (ckpt("d", 40), None),
    ]
    doomed = to_delete([trial], lower_is_better=True)
    assert sorted(c.uuid for c in doomed) == ["a", "c"]  # kept: d (latest), b (best)


def test_experiment_best_survives_only_at_the_end() -> None:
    one = [(ckpt("a", 10), 0.9), (ckpt("b", 20), 0.2)]
    two = [(ckpt("c", 10), 0.5)]
    settings = {"save_trial_latest": 0, "save_trial_best": 0, "save_experiment_best": 1}
    during = to_delete([one], lower_is_better=True, **settings)
    assert [c.uuid for c in during] == ["a"]  # b may be the experiment's best
    at_end = to_delete([one, two], lower_is_better=True, experiment_done=True, **settings)
    assert sorted(c.uuid for c in at_end) == ["a", "c"]
    larger = to_delete([one, two], lower_is_better=False, experiment_done=True, **settings)
    assert sorted(c.uuid for c in larger) == ["b", "c"]
