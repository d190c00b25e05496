"""SHERPA's PopulationBasedTraining through the Study."""

from __future__ import annotations

import pytest

import ridgeline as sherpa
from ridgeline.errors import ConfigError


def test_generations_exploit_and_explore() -> None:
    study = sherpa.Study(
        parameters=[
            sherpa.Continuous("lr", [0.001, 1.0]),
            sherpa.Ordinal("batch", [16, 32, 64]),
            sherpa.Choice("act", ["relu", "tanh"]),
        ],
        algorithm=sherpa.algorithms.PopulationBasedTraining(
            num_generations=3, population_size=5, parameter_range={"lr": [0.001, 0.5]}
        ),
        lower_is_better=True,
        disable_dashboard=True,
        seed=1,
    )
    trials = []
    for trial in study:
        trials.append(trial)
        study.add_observation(trial, objective=trial.parameters["lr"])
        study.finalize(trial)
    assert len(trials) == 15
    assert [t.parameters["generation"] for t in trials] == [1] * 5 + [2] * 5 + [3] * 5
    assert [t.parameters["save_to"] for t in trials] == [str(i) for i in range(1, 16)]
    by_save = {t.parameters["save_to"]: t for t in trials}
    first = sorted(trials[:5], key=lambda t: t.parameters["lr"])
    second = trials[5:10]
    # the first 80 % copy the previous generation's best, in order, unchanged
    for slot in range(4):
        parent = by_save[second[slot].parameters["load_from"]]
        assert parent.id == first[slot].id
        assert second[slot].parameters["lr"] == parent.parameters["lr"]
        assert second[slot].parameters["lineage"] == f"{parent.id},"
    # the rest perturb one of the top population_size // 5 (here the best): lr * 0.8 or 1.2
    explorer = second[4]
    best = first[0].parameters["lr"]
    assert explorer.parameters["load_from"] == first[0].parameters["save_to"]
    assert explorer.parameters["lr"] in (
        pytest.approx(best * 0.8),
        pytest.approx(min(best * 1.2, 0.5)),
    )
    third = trials[10]
    assert third.parameters["lineage"].count(",") == 2  # grandparent, parent


def test_next_generation_waits_for_the_previous() -> None:
    study = sherpa.Study(
        parameters=[sherpa.Continuous("lr", [0.001, 1.0])],
        algorithm=sherpa.algorithms.PopulationBasedTraining(num_generations=2, population_size=2),
        lower_is_better=True,
        disable_dashboard=True,
        seed=0,
    )
    a, b = study.get_suggestion(), study.get_suggestion()
    assert study.get_suggestion() == sherpa.AlgorithmState.WAIT
    for t in (a, b):
        study.add_observation(t, objective=1.0)
        study.finalize(t)
    assert study.get_suggestion().parameters["generation"] == 2
    with pytest.raises(ConfigError):
        sherpa.algorithms.PopulationBasedTraining(num_generations=0)
