"""The in-process Study, used as a SHERPA user would."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

import ridgeline as sherpa
from ridgeline.errors import ObservationError


def space() -> list:
    return [
        sherpa.Continuous("lr", [1e-4, 1e-1], scale="log"),
        sherpa.Discrete("units", [1, 4]),
        sherpa.Choice("act", ["relu", "tanh"]),
    ]


def make_study(n: int = 5, **kwargs) -> sherpa.Study:
    return sherpa.Study(
        parameters=space(),
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=n),
        lower_is_better=True,
        disable_dashboard=True,
        **kwargs,
    )


def test_loop_results_have_sherpa_columns_and_rows() -> None:
    study = make_study(3, seed=1)
    for trial in study:
        for it in range(1, 3):
            study.add_observation(
                trial, iteration=it, objective=trial.id * 10 - it, context={"acc": it}
            )
        study.finalize(trial)
    df = study.results
    assert list(df.columns) == [
        "Trial-ID",
        "Status",
        "Iteration",
        "act",
        "lr",
        "units",
        "Objective",
        "acc",
    ]
    assert len(df) == 3 * 3
    finals = df[df.Status == "COMPLETED"]
    assert list(finals["Trial-ID"]) == [1, 2, 3]
    # the final row copies the best observation, with the highest iteration
    assert list(finals.Objective) == [8, 18, 28]
    assert list(finals.Iteration) == [2, 2, 2]
    assert study.num_trials == 3
    best = study.get_best_result()
    assert best["Trial-ID"] == 1 and best["Objective"] == 8 and "Status" not in best


def test_same_seed_same_suggestions_and_different_seed_differs() -> None:
    def params(seed: int) -> list[dict]:
        study = make_study(5, seed=seed)
        out = []
        for trial in study:
            out.append(trial.parameters)
            study.add_observation(trial, objective=1.0)
            study.finalize(trial)
        return out

    assert params(3) == params(3)
    assert params(3) != params(4)


def test_discrete_upper_bound_reached_and_values_in_range() -> None:
    study = make_study(200, seed=0)
    seen = set()
    for trial in study:
        seen.add(trial.parameters["units"])
        assert 1e-4 <= trial.parameters["lr"] <= 1e-1
        study.add_observation(trial, objective=0.0)
        study.finalize(trial)
    assert seen == {1, 2, 3, 4}


def test_nan_recorded_but_never_best() -> None:
    study = make_study(3, seed=0)
    values = iter([math.nan, 5.0, math.inf])
    for trial in study:
        study.add_observation(trial, objective=next(values))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            study.finalize(trial)
    assert study.results.Objective.isna().sum() == 1
    assert study.get_best_result()["Objective"] == 5.0


def test_bad_observations_raise_clear_errors() -> None:
    study = make_study(2, seed=0)
    trial = study.get_suggestion()
    with pytest.raises(ObservationError, match="objective must be a number.*'high'"):
        study.add_observation(trial, objective="high")
    bad = sherpa.Trial(trial.id, {**trial.parameters, "momentum": 0.9})
    with pytest.raises(ObservationError, match="momentum"):
        study.add_observation(bad, objective=1.0)
    study.add_observation(trial, iteration=1, objective=1.0)
    with pytest.raises(ValueError, match="iteration 1"):
        study.add_observation(trial, iteration=1, objective=2.0)
    with pytest.raises(ObservationError, match="not suggested"):
        study.add_observation(sherpa.Trial(99, trial.parameters), objective=1.0)
    other = study.get_suggestion()
    with pytest.raises(ObservationError, match="no observations"):
        study.finalize(other)
    with pytest.raises(ObservationError, match="status"):
        study.finalize(trial, status="DONE")
    # nothing recorded was lost
    assert len(study.results) == 1


def test_done_after_budget_and_wait_is_not_a_trial() -> None:
    study = make_study(1, seed=0)
    first = study.get_suggestion()
    assert isinstance(first, sherpa.Trial)
    assert study.get_suggestion() == sherpa.AlgorithmState.DONE


def test_add_trial_runs_first_and_does_not_spend_budget() -> None:
    study = make_study(2, seed=0)
    study.add_trial(sherpa.Trial(1, {"lr": 0.01, "units": 2, "act": "tanh"}))
    trials = []
    for trial in study:
        trials.append(trial)
        study.add_observation(trial, objective=1.0)
        study.finalize(trial)
    assert trials[0].parameters == {"lr": 0.01, "units": 2, "act": "tanh"}
    assert len(trials) == 3
    assert [t.id for t in trials] == [1, 2, 3]


def test_median_rule_stops_bad_trial() -> None:
    study = sherpa.Study(
        parameters=space(),
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=4),
        stopping_rule=sherpa.algorithms.MedianStoppingRule(min_iterations=2, min_trials=2),
        lower_is_better=True,
        disable_dashboard=True,
        seed=0,
    )
    curves = {1: [5, 4, 3], 2: [5, 4, 3], 3: [9, 9, 9]}
    stopped = {}
    for trial in study:
        for it, value in enumerate(curves.get(trial.id, [1, 1, 1]), start=1):
            study.add_observation(trial, iteration=it, objective=value)
            if study.should_trial_stop(trial):
                stopped[trial.id] = it
                study.finalize(trial, status="STOPPED")
                break
        else:
            study.finalize(trial)
    assert stopped == {3: 2}
    assert "STOPPED" in set(study.results.Status)


def test_grid_search_covers_grid() -> None:
    study = sherpa.Study(
        parameters=[sherpa.Choice("a", [1, 2]), sherpa.Continuous("b", [0.0, 1.0])],
        algorithm=sherpa.algorithms.GridSearch(num_grid_points=3),
        lower_is_better=False,
        disable_dashboard=True,
    )
    combos = []
    for trial in study:
        combos.append((trial.parameters["a"], trial.parameters["b"]))
        study.add_observation(trial, objective=trial.parameters["b"])
        study.finalize(trial)
    assert sorted(combos) == [(a, b) for a in (1, 2) for b in (0.0, 0.5, 1.0)]
    assert study.get_best_result()["b"] == 1.0


def test_save_writes_results_csv(tmp_path: Path) -> None:
    study = make_study(2, seed=0, output_dir=tmp_path)
    for trial in study:
        study.add_observation(trial, objective=trial.id)
        study.finalize(trial)
    path = study.save()
    frame = pd.read_csv(path)
    assert list(frame.columns) == list(study.results.columns)
    assert len(frame) == 4


def test_storage_persists_to_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    study = make_study(3, seed=0, storage=db)
    for trial in study:
        study.add_observation(trial, iteration=1, objective=float(trial.id))
        study.finalize(trial)
    study.store.close()
    from ridgeline.store import open_store

    store = open_store(db)
    (experiment,) = store.list_experiments()
    trials = store.list_trials(experiment.id)
    assert [t.state for t in trials] == ["COMPLETED"] * 3
    metrics = store.read_metrics(experiment.id)
    assert [m.values["objective"] for m in metrics] == [1.0, 2.0, 3.0]
    store.close()


def test_iterate_and_chain() -> None:
    algo = sherpa.algorithms.Chain(
        [
            sherpa.algorithms.Iterate([{"a": 1}, {"a": 2}]),
            sherpa.algorithms.RandomSearch(max_num_trials=2),
        ]
    )
    study = sherpa.Study(
        parameters=[sherpa.Discrete("a", [0, 10])],
        algorithm=algo,
        lower_is_better=True,
        disable_dashboard=True,
        seed=0,
    )
    seen = []
    for trial in study:
        seen.append(trial.parameters["a"])
        study.add_observation(trial, objective=1.0)
        study.finalize(trial)
    assert seen[:2] == [1, 2] and len(seen) == 4
