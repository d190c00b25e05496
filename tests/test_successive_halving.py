"""SHERPA's SuccessiveHalving through the Study: promotions are new trials loading parents."""

from __future__ import annotations

import pytest

import ridgeline as sherpa
from ridgeline.errors import ConfigError


def run(max_finished: int = 2, seed: int = 0) -> list[sherpa.Trial]:
    study = sherpa.Study(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.SuccessiveHalving(
            r=1, R=9, eta=3, max_finished_configs=max_finished
        ),
        lower_is_better=True,
        disable_dashboard=True,
        seed=seed,
    )
    trials = []
    for trial in study:
        trials.append(trial)
        # more resource helps; the configuration sets the floor
        study.add_observation(
            trial, objective=trial.parameters["x"] + 1 / trial.parameters["resource"]
        )
        study.finalize(trial)
    assert set(study.results.columns) >= {"resource", "rung", "load_from", "save_to"}
    return trials


def test_rungs_resources_and_lineage() -> None:
    trials = run()
    by_save = {t.parameters["save_to"]: t for t in trials}
    assert [t.parameters["save_to"] for t in trials] == [str(i) for i in range(1, len(trials) + 1)]
    assert {t.parameters["rung"]: t.parameters["resource"] for t in trials} == {0: 1, 1: 3, 2: 9}
    for trial in trials:
        p = trial.parameters
        if p["rung"] == 0:
            assert p["load_from"] == ""
        else:
            parent = by_save[p["load_from"]]
            assert parent.parameters["rung"] == p["rung"] - 1
            assert parent.parameters["x"] == p["x"]  # the same configuration, promoted
    top = [t for t in trials if t.parameters["rung"] == 2]
    assert len(top) == 2  # done once max_finished_configs completed the top rung
    # the first promotion comes once rung 0 holds eta completed trials: the best of them
    first = next(t for t in trials if t.parameters["rung"] == 1)
    assert first.id == 4
    assert by_save[first.parameters["load_from"]].parameters["x"] == min(
        t.parameters["x"] for t in trials[:3]
    )


def test_same_seed_same_run_and_bad_arguments() -> None:
    assert [t.parameters for t in run(seed=3)] == [t.parameters for t in run(seed=3)]
    with pytest.raises(ConfigError, match="eta"):
        sherpa.algorithms.SuccessiveHalving(eta=1)
    with pytest.raises(ConfigError, match="max_finished_configs"):
        sherpa.algorithms.SuccessiveHalving(max_finished_configs=0)


def test_hyperband_brackets_in_the_study() -> None:
    algorithm = sherpa.algorithms.Hyperband(r=1, R=9, eta=3)
    assert algorithm.max_trials == 22
    study = sherpa.Study(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=algorithm,
        lower_is_better=True,
        disable_dashboard=True,
        seed=4,
    )
    trials = []
    for trial in study:
        trials.append(trial)
        p = trial.parameters
        study.add_observation(trial, objective=p["x"] + 1 / p["resource"])
        study.finalize(trial)
    shape = [
        (t.parameters["bracket"], t.parameters["rung"], t.parameters["resource"]) for t in trials
    ]
    expected = [(0, 0, 1)] * 9 + [(0, 1, 3)] * 3 + [(0, 2, 9)] + [(1, 0, 3)] * 5 + [(1, 1, 9)]
    assert shape == expected + [(2, 0, 9)] * 3
    by_save = {t.parameters["save_to"]: t for t in trials}
    for trial in trials:
        p = trial.parameters
        if p["rung"] == 0:
            assert p["load_from"] == ""
            continue
        parent = by_save[p["load_from"]].parameters
        assert parent["x"] == p["x"] and parent["rung"] == p["rung"] - 1
        assert parent["bracket"] == p["bracket"]
    # The three promoted out of bracket 0's first rung are its three best configurations.
    first = sorted(t.parameters["x"] for t in trials[:9])[:3]
    assert sorted(t.parameters["x"] for t in trials[9:12]) == first


def test_hyperband_waits_for_a_whole_rung() -> None:
    from ridgeline.samplers.base import WAIT
    from ridgeline.sherpa.samplers.hyperband import HyperbandSampler

    study = sherpa.Study(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.Hyperband(r=1, R=3, eta=3),
        lower_is_better=True,
        disable_dashboard=True,
        seed=0,
    )
    first = [study.get_suggestion() for _ in range(3)]
    assert study.get_suggestion() == WAIT  # rung 0 of bracket 0 is still running
    for trial in first[:2]:
        study.add_observation(trial, objective=trial.parameters["x"])
        study.finalize(trial)
    assert study.get_suggestion() == WAIT
    study.add_observation(first[2], objective=first[2].parameters["x"])
    study.finalize(first[2])
    promoted = study.get_suggestion()
    assert promoted.parameters["rung"] == 1 and promoted.parameters["resource"] == 3
    with pytest.raises(ConfigError, match="eta > 1"):
        HyperbandSampler(1, 9, 1)
