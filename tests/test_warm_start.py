"""Warm starts: earlier results become finished trials that model-based search learns from."""

from __future__ import annotations

from pathlib import Path

import pytest

import ridgeline as sherpa
from ridgeline.errors import ConfigError, ObservationError

PARAMS = [sherpa.Continuous("x", [-5.0, 10.0]), sherpa.Continuous("y", [0.0, 15.0])]


def branin(p: dict) -> float:
    import math

    x, y = p["x"], p["y"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def run(study: sherpa.Study) -> list[sherpa.Trial]:
    trials = []
    for trial in study:
        trials.append(trial)
        study.add_observation(trial, objective=branin(trial.parameters))
        study.finalize(trial)
    return trials


def test_earlier_results_do_not_spend_the_budget(tmp_path: Path) -> None:
    first = sherpa.Study(PARAMS, sherpa.algorithms.RandomSearch(8), True, seed=1)
    run(first)
    first.save(tmp_path)
    second = sherpa.Study(PARAMS, sherpa.algorithms.BayesianOptimization(max_num_trials=4), True)
    assert second.warm_start(tmp_path) == 8
    new = run(second)
    assert len(new) == 4 and [t.id for t in new] == [9, 10, 11, 12]
    table = second.results
    assert len(table[table["Status"] == "COMPLETED"]) == 12
    earlier_best = first.get_best_result()["Objective"]
    assert second.get_best_result()["Objective"] <= earlier_best
    # The GP started from the earlier results: no space-filling points any more, so its
    # suggestions sit near the good region rather than anywhere.
    assert min(branin(t.parameters) for t in new) < 2 * earlier_best + 5


def test_add_result_and_enqueued_points() -> None:
    study = sherpa.Study(PARAMS, sherpa.algorithms.TPE(max_num_trials=2), True, seed=3)
    known = study.add_result({"x": 3.14, "y": 2.27}, 0.3979)
    assert study.get_best_result()["Objective"] == pytest.approx(0.3979)
    study.add_trial(sherpa.Trial(0, {"x": -3.14, "y": 12.27}))  # runs first, then 2 suggestions
    ran = run(study)
    assert ran[0].parameters == {"x": -3.14, "y": 12.27} and len(ran) == 3
    assert known.id == 1 and {t.id for t in ran} == {2, 3, 4}
    with pytest.raises(ObservationError, match="unknown parameter"):
        study.add_result({"x": 1.0, "z": 2.0}, 1.0)
    with pytest.raises(ObservationError):
        study.add_result({"x": 1.0, "y": 2.0}, "bad")


def test_bad_sources_are_refused(tmp_path: Path) -> None:
    study = sherpa.Study(PARAMS, sherpa.algorithms.RandomSearch(2), True)
    with pytest.raises(ConfigError, match="no earlier results"):
        study.warm_start(tmp_path / "missing")
    (tmp_path / "results.csv").write_text("Trial-ID,Status,Objective,x\n1,COMPLETED,1.0,2.0\n")
    with pytest.raises(ConfigError, match="lack the column"):
        study.warm_start(tmp_path)
