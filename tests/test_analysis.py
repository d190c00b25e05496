"""``ridgeline.load``: a search as DataFrames, for an in-process Study, a SHERPA output folder
and a Core-API experiment run by the CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.test_core_api import config

import ridgeline


def study_search(storage: Path | None = None) -> ridgeline.Study:
    parameters = [
        ridgeline.Continuous("lr", [1e-4, 1e-1], scale="log"),
        ridgeline.Choice("act", ["relu", "tanh"]),
    ]
    study = ridgeline.Study(
        parameters,
        ridgeline.RandomSearch(max_num_trials=5),
        lower_is_better=True,
        seed=3,
        storage=None if storage is None else str(storage),
    )
    for trial in study:
        if trial.id == 4:
            study.add_observation(trial, iteration=1, objective=math.nan)
            with pytest.warns(RuntimeWarning, match="only NaN"):
                study.finalize(trial, status="FAILED")
            continue
        for step in range(1, 4):
            study.add_observation(trial, iteration=step, objective=trial.parameters["lr"] / step)
        study.finalize(trial)
    return study


def test_study_trials_and_metrics_frames() -> None:
    study = study_search()
    analysis = ridgeline.load(study)
    trials = analysis.trials_dataframe()
    assert list(trials["number"]) == [1, 2, 3, 4, 5]
    assert {"params_lr", "params_act", "best", "last", "steps", "duration", "restarts"} <= set(
        trials.columns
    )
    completed = trials[trials["state"] == "COMPLETED"]
    assert (completed["best"] == completed["params_lr"] / 3).all()
    assert (completed["steps"] == 3).all() and (completed["reports"] == 3).all()
    failed = trials.set_index("number").loc[4]
    assert failed["state"] == "FAILED" and (failed["best"] is None or math.isnan(failed["best"]))
    best = analysis.best_trial()
    assert best is not None and best.record.state == "COMPLETED"
    assert best.best == pytest.approx(completed["best"].min())
    # The SHERPA results table and the analysis agree on the winner.
    assert study.get_best_result()["Trial-ID"] == best.record.number

    metrics = analysis.metrics_dataframe()
    assert list(metrics.columns) == ["number", "group", "step", "name", "value", "time"]
    assert len(metrics[metrics["name"] == "objective"]) == 4 * 3 + 1
    history = analysis.history()
    assert len(history) == 4 * 3  # the NaN report is no point of the history
    assert [seq for seq, _, _ in history] == sorted(seq for seq, _, _ in history)


def test_load_reads_new_rows_after_refresh() -> None:
    study = study_search()
    analysis = ridgeline.load(study)
    before = len(analysis.trials)
    analysis.store.create_trial(analysis.experiment_id, 99, {"lr": 0.01, "act": "relu"})
    assert len(analysis.trials) == before
    assert len(analysis.refresh().trials) == before + 1


def test_load_a_folder_or_file(tmp_path: Path) -> None:
    study_search(tmp_path / "ridgeline.db")
    with ridgeline.load(tmp_path) as analysis:
        assert len(analysis.trials_dataframe()) == 5
    with ridgeline.load(tmp_path / "ridgeline.db") as analysis:
        assert analysis.smaller_is_better is True and analysis.metric_name == "objective"
    with pytest.raises(FileNotFoundError, match="no ridgeline store"):
        ridgeline.load(tmp_path / "elsewhere")
    with pytest.raises(TypeError, match="experiment id"):
        ridgeline.load(3.5)


def test_core_api_experiment(workdir: Path) -> None:
    storage = workdir / "store.db"
    path = config(workdir, max_length=20, max_trials=2)
    subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", "--storage", str(storage), "e", "create"]
        + [str(path), str(workdir), "-f"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with ridgeline.load(1, storage=storage) as analysis:
        assert analysis.metric_name == "x" and analysis.smaller_is_better is False
        trials = analysis.trials_dataframe()
        assert list(trials["state"]) == ["COMPLETED", "COMPLETED"]
        # x grows by increment_by per batch: 20 batches; the searcher's copy counts once.
        assert list(trials["best"]) == list(20 * trials["params_increment_by"])
        assert list(trials["reports"]) == [1, 1] and list(trials["steps"]) == [20, 20]
        groups = set(analysis.metrics_dataframe()["group"])
        assert {"searcher", "validation", "training"} <= groups
    with pytest.raises(Exception, match="7"):
        ridgeline.load(7, storage=storage)


def test_loading_never_creates_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "store.db"
    for storage in (missing, f"sqlite:///{missing}"):
        with pytest.raises(FileNotFoundError, match="nothing was created"):
            ridgeline.load(1, storage=storage)
    assert not (tmp_path / "nowhere").exists()
