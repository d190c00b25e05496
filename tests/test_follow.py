"""Report followers pick up where they stopped: a new follower (a restarted coordinator) reads
from the cursor it saved, so every report is written once and none is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from ridgeline.integrations.tensorboard import TensorBoardExport, trial_folder
from ridgeline.paths import UnsafePathError
from ridgeline.store import open_store

pytest.importorskip("tensorboard", reason="TensorBoard is in the dev extra")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def _points(folder: Path, tag: str) -> list[tuple[int, float]]:
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def test_a_restarted_export_carries_on_from_its_cursor(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store.db"))
    try:
        experiment = store.create_experiment("e", {})
        first = store.create_trial(experiment.id, 1, {"lr": 0.1, "opt": {"kind": "sgd"}})
        store.add_metrics(first.id, "validation", [(1, {"objective": 3.0, "note": "text"})])
        store.add_metrics(first.id, "searcher", [(1, {"objective": 3.0})])  # not copied

        export = TensorBoardExport(store, experiment.id, tmp_path, poll_seconds=0.05)
        export.start()
        export.close()
        store.add_metrics(first.id, "validation", [(2, {"objective": 2.0})])
        second = store.create_trial(experiment.id, 2, {"lr": 0.2, "opt": {"kind": "adam"}})
        store.add_metrics(second.id, "training", [(1, {"loss": 0.5})])

        again = TensorBoardExport(store, experiment.id, tmp_path, poll_seconds=0.05)
        again.start()
        again.trial_ended(1, "COMPLETED")
        again.close()
    finally:
        store.close()
    root = tmp_path / "tensorboard"
    assert _points(root / "trial_1", "validation/objective") == [(1, 3.0), (2, 2.0)]
    assert _points(root / "trial_2", "training/loss") == [(1, 0.5)]
    accumulator = EventAccumulator(str(root / "trial_1"))
    accumulator.Reload()
    assert accumulator.Tags()["scalars"] == ["validation/objective"]  # text and searcher: no
    hparams = set(accumulator.PluginTagToContent("hparams"))
    assert hparams == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    assert not export.last_error and not again.last_error


def test_trial_folders_stay_inside_the_output(tmp_path: Path) -> None:
    assert trial_folder(tmp_path, 3) == tmp_path.resolve() / "tensorboard" / "trial_3"
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / "tensorboard" / "trial_4").symlink_to("/etc")
    with pytest.raises(UnsafePathError):
        trial_folder(tmp_path, 4)
