"""SHERPA's algorithm names: validation, samplers they build, SHERPA-style entry points."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ridgeline import algorithms
from ridgeline.algorithms import (
    Algorithm,
    Chain,
    Genetic,
    GridSearch,
    Iterate,
    LocalSearch,
    MedianStoppingRule,
    RandomSearch,
    Repeat,
    StoppingRule,
    get_sample_results_and_params,
)
from ridgeline.errors import ConfigError
from ridgeline.samplers.base import WAIT, History, Sampler, TrialView
from ridgeline.sherpa.samplers.legacy import LegacyAlgorithmSampler, results_frame
from ridgeline.space import Choice, Continuous, Discrete, SearchSpace


def drive(alg: Algorithm, space: SearchSpace, n: int, seed: int = 0) -> list:
    sampler = alg.make_sampler()
    rng = random.Random(seed)
    return [sampler.propose(space, History(), [], rng) for _ in range(n)]


SPACE = SearchSpace([Continuous("x", [0, 1]), Choice("c", ["a", "b"])])


def test_names_exported():
    for name in (
        "Algorithm",
        "Chain",
        "Repeat",
        "RandomSearch",
        "Iterate",
        "GridSearch",
        "LocalSearch",
        "StoppingRule",
        "MedianStoppingRule",
        "Genetic",
        "get_sample_results_and_params",
    ):
        assert hasattr(algorithms, name), name
    assert algorithms.MedianStoppingRule.__module__ == "ridgeline.sherpa.stopping"


def test_module_import_is_light():
    src = str(Path(algorithms.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = (
        "import sys, ridgeline.algorithms; print('pandas' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.split() == ["False", "False"]


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: RandomSearch(0), "max_num_trials"),
        (lambda: RandomSearch(-3), "max_num_trials"),
        (lambda: RandomSearch(2.5), "max_num_trials"),
        (lambda: GridSearch(0), "num_grid_points"),
        (lambda: GridSearch("3"), "num_grid_points"),
        (lambda: Iterate({"a": 1}), "hp_iter"),
        (lambda: Iterate([]), "hp_iter"),
        (lambda: Iterate([{"a": 1}, {"b": 1}]), r"hp_iter\[1\]"),
        (lambda: Repeat(RandomSearch(), num_times=0), "num_times"),
        (lambda: Repeat(Genetic()), "Genetic.*allow"),
        (lambda: Repeat("random"), "algorithm"),
        (lambda: Chain([]), "non-empty"),
        (lambda: Chain([RandomSearch(1), "grid"]), r"algorithms\[1\]"),
        (lambda: LocalSearch([1]), "seed_configuration"),
        (lambda: LocalSearch({"x": 1}, perturbation_factors=1.2), "perturbation_factors"),
        (lambda: LocalSearch({"x": 1}, repeat_trials=0), "repeat_trials"),
        (lambda: Genetic(mutation_rate=2), "mutation_rate"),
        (lambda: Genetic(max_num_trials=0), "max_num_trials"),
        (lambda: MedianStoppingRule(min_iterations=-1), "min_iterations"),
        (lambda: MedianStoppingRule(min_trials="2"), "min_trials"),
    ],
)
def test_constructor_validation(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# -- built-ins --------------------------------------------------------------------------------


def test_random_search_caps_and_is_seeded():
    alg = RandomSearch(max_num_trials=3)
    assert alg.max_trials == 3 and RandomSearch().max_trials is None
    out = drive(alg, SPACE, 5, seed=1)
    assert [o is None for o in out] == [False, False, False, True, True]
    assert out[:3] == drive(RandomSearch(3), SPACE, 3, seed=1)
    assert all(SPACE.contains(o) for o in out[:3])


def test_grid_search_covers_grid():
    out = drive(GridSearch(num_grid_points=3), SPACE, 7)
    assert out[:6] == SPACE.grid(3) and out[6] is None
    assert {o["x"] for o in out[:6]} == {0.0, 0.5, 1.0}


def test_iterate_and_get_parameters():
    hp = [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": 1, "b": [1, 2]}]
    alg = Iterate(hp)
    assert alg.max_trials == 3
    params = alg.get_parameters()
    assert [(type(p), p.name, p.range) for p in params] == [
        (Choice, "a", [1, 2]),
        (Choice, "b", ["x", [1, 2]]),
    ]
    space = SearchSpace(params)
    assert drive(alg, space, 4) == [*hp, None]
    alg.load(2)  # SHERPA's resume hook
    assert drive(alg, space, 2) == [hp[2], None]


def test_chain_moves_on_after_each_ends():
    alg = Chain([Iterate([{"x": 0.5, "c": "b"}]), RandomSearch(2), GridSearch()])
    assert alg.max_trials is None
    out = drive(alg, SPACE, 8)
    assert out[0] == {"x": 0.5, "c": "b"}
    assert out[3:7] == SPACE.grid(2) and out[7] is None
    assert Chain([RandomSearch(2), Iterate([{"x": 1, "c": "a"}])]).max_trials == 3


def test_repeat_and_its_best_result():
    alg = Repeat(RandomSearch(2), num_times=3)
    assert alg.max_trials == 6 and alg.aggregates_best
    out = drive(alg, SPACE, 7)
    assert out[0] == out[1] == out[2] != out[3] == out[4] == out[5]
    assert out[6] is None

    # best = best mean over configurations with >= num_times completed repeats
    params = [Continuous("x", [0, 1])]
    h = History()
    rows = [(0.1, [1.0, 1.0, 1.0]), (0.2, [0.1, 0.2, 2.1]), (0.3, [0.1, 0.1])]
    for x, objectives in rows:
        for o in objectives:
            tid = len(h.trials) + 1
            h.trials.append(TrialView(tid, {"x": x}, "COMPLETED", o, 1))
            h.curves[tid] = [(1, o)]
    results = results_frame(h)
    best = Repeat(RandomSearch(), num_times=3).get_best_result(params, results, True)
    assert best["x"] == 0.2 and best["Objective"] == pytest.approx(0.8)
    assert best["ObjectiveCount"] == 3 and "Status" not in best
    assert Repeat(RandomSearch(), 3).get_best_result(params, results.iloc[:0], True) == {}
    agg = Repeat.aggregate_results(results, params, min_count=3)
    assert set(agg["x"]) == {0.1, 0.2}


def test_repeat_wait_for_completion_returns_wait():
    alg = Repeat(Iterate([{"x": 0.1, "c": "a"}, {"x": 0.2, "c": "a"}]), 2, wait_for_completion=True)
    sampler = alg.make_sampler()
    rng = random.Random(0)
    first = sampler.propose(SPACE, History(), [], rng)
    assert sampler.propose(SPACE, History(), [], rng) == first
    h = History()
    h.trials.append(TrialView(1, first, "RUNNING"))
    h.active[1] = h.trials[0]
    assert sampler.propose(SPACE, h, [], rng) == WAIT


def test_local_search_algorithm():
    alg = LocalSearch({"x": 0.5, "c": "a"})
    out = drive(alg, SPACE, 5)
    assert out[0] == {"x": 0.5, "c": "a"}
    assert {json.dumps(o, sort_keys=True) for o in out[1:4]} == {
        json.dumps(d, sort_keys=True)
        for d in ({"x": 0.4, "c": "a"}, {"x": 0.6, "c": "a"}, {"x": 0.5, "c": "b"})
    }
    assert out[4] is None


def test_genetic_algorithm_caps():
    alg = Genetic(mutation_rate=0.5, max_num_trials=4)
    assert alg.max_trials == 4 and not alg.allows_repetition
    assert [o is None for o in drive(alg, SPACE, 5)] == [False] * 4 + [True]


def test_allows_repetition_flags():
    assert RandomSearch.allows_repetition and GridSearch.allows_repetition
    assert Iterate.allows_repetition and LocalSearch.allows_repetition
    assert not Algorithm.allows_repetition and not Genetic.allows_repetition


# -- SHERPA-style custom algorithms -----------------------------------------------------------


class Cycle(Algorithm):
    """A user algorithm in SHERPA style: only get_suggestion."""

    allows_repetition = True

    def __init__(self):
        self.count = 0

    def get_suggestion(self, parameters, results, lower_is_better):
        self.count += 1
        if self.count > 3:
            return "DONE"
        if len(results) and self.count == 3:
            return {"x": float(results["Objective"].min()), "c": "b"}
        return {p.name: p.sample() for p in parameters}


def test_custom_algorithm_runs_through_legacy_sampler():
    alg = Cycle()
    sampler = alg.make_sampler()
    assert isinstance(sampler, LegacyAlgorithmSampler)
    h = History()
    h.trials.append(TrialView(1, {"x": 0.3, "c": "a"}, "COMPLETED", 0.25, 1))
    h.curves[1] = [(1, 0.25)]
    rng = random.Random(0)
    out = [sampler.propose(SPACE, h, [], rng) for _ in range(4)]
    assert SPACE.contains(out[0]) and SPACE.contains(out[1])
    assert out[2] == {"x": 0.25, "c": "b"}
    assert out[3] is None


def test_custom_algorithm_in_repeat_and_chain():
    out = drive(Repeat(Cycle(), num_times=2), SPACE, 7)
    assert out[0] == out[1] and out[2] == out[3] and out[6] is None
    out = drive(Chain([Cycle(), Iterate([{"x": 1.0, "c": "a"}])]), SPACE, 5)
    assert out[3] == {"x": 1.0, "c": "a"} and out[4] is None


def test_subclass_overriding_get_suggestion_wins():
    class Fixed(RandomSearch):
        def get_suggestion(self, parameters, results=None, lower_is_better=True):
            return {"x": 0.75, "c": "a"}

    assert drive(Fixed(), SPACE, 2) == [{"x": 0.75, "c": "a"}] * 2


def test_base_algorithm_must_be_overridden():
    with pytest.raises(NotImplementedError, match="must override get_suggestion"):
        Algorithm().get_suggestion(SPACE.parameters, pd.DataFrame(), True)
    with pytest.raises(NotImplementedError):
        drive(Algorithm(), SPACE, 1)


def test_builtin_get_suggestion_sherpa_style():
    parameters, results, lower_is_better = get_sample_results_and_params()
    out = RandomSearch(2)
    suggestions = [out.get_suggestion(parameters, results, lower_is_better) for _ in range(3)]
    assert suggestions[2] == "DONE"
    assert all(SearchSpace(parameters).contains(s) for s in suggestions[:2])
    grid = GridSearch(2)
    got = [grid.get_suggestion(parameters) for _ in range(7)]
    assert got[-1] == "DONE" and len(got[:-1]) == 6
    it = Iterate([{"param_a": 1, "param_b": 0.5}])
    assert it.get_suggestion(parameters) == {"param_a": 1, "param_b": 0.5}
    assert it.get_suggestion(parameters) is None
    local = LocalSearch({"param_a": 1, "param_b": 0.5})
    assert local.get_suggestion(parameters, results, True) == {"param_a": 1, "param_b": 0.5}
    moved = local.get_suggestion(parameters, results, True)
    best = results.loc[results["Status"] == "COMPLETED"].sort_values("Objective").iloc[0]
    centre = {"param_a": int(best["param_a"]), "param_b": float(best["param_b"])}
    assert sum(moved[k] != centre[k] for k in centre) == 1  # a move around the best completed


# -- get_best_result --------------------------------------------------------------------------


def test_get_best_result():
    parameters, results, _ = get_sample_results_and_params()
    best = Algorithm().get_best_result(parameters, results, True)
    assert "Status" not in best
    assert best["Objective"] == results["Objective"].min()
    assert set(best) == {"Trial-ID", "Iteration", "param_a", "param_b", "Objective"}
    assert type(best["Trial-ID"]) is int and type(best["Objective"]) is float
    worst = Algorithm().get_best_result(parameters, results, False)
    assert worst["Objective"] == results["Objective"].max()
    nan = results.assign(Objective=math.nan)
    assert Algorithm().get_best_result(parameters, nan, True) == {}
    assert Algorithm().get_best_result(parameters, pd.DataFrame(), True) == {}
    some_nan = results.copy()
    some_nan.loc[0, "Objective"] = math.nan
    assert not math.isnan(Algorithm().get_best_result(parameters, some_nan, False)["Objective"])


def test_sample_results_and_params():
    parameters, results, lower_is_better = get_sample_results_and_params()
    assert lower_is_better is True
    assert [p.name for p in parameters] == ["param_a", "param_b"]
    assert isinstance(parameters[0], Choice) and isinstance(parameters[1], Continuous)
    assert list(results.columns) == [
        "Trial-ID",
        "Status",
        "Iteration",
        "param_a",
        "param_b",
        "Objective",
    ]
    assert set(results["Status"]) == {"INTERMEDIATE", "COMPLETED", "STOPPED"}
    inter = results[results["Status"] == "INTERMEDIATE"]
    expected = inter["param_a"] * inter["param_b"] / inter["Iteration"]
    assert (inter["Objective"] - expected).abs().max() < 1e-12
    again = get_sample_results_and_params()[1]
    assert again.equals(results)


def test_stopping_rule_reexport_and_custom_rule():
    class StopTrialTwo(StoppingRule):
        def should_trial_stop(self, trial, results, lower_is_better):
            assert list(results.columns)[:3] == ["Trial-ID", "Status", "Iteration"]
            return trial.id == 2

    h = History()
    for tid in (1, 2):
        h.trials.append(TrialView(tid, {"x": 0.5}, "RUNNING"))
        h.curves[tid] = [(1, 0.5)]
    rule = StopTrialTwo()
    assert [rule.should_stop(t, h) for t in (1, 2)] == [False, True]
    assert isinstance(MedianStoppingRule(), StoppingRule)


def test_make_sampler_returns_fresh_samplers():
    alg = RandomSearch(2)
    a, b = alg.make_sampler(), alg.make_sampler()
    assert a is not b and isinstance(a, Sampler)
    drive_a = [a.propose(SPACE, History(), [], random.Random(0)) for _ in range(3)]
    assert drive_a[2] is None
    assert b.propose(SPACE, History(), [], random.Random(0)) is not None


def test_discrete_grid_in_grid_search():
    space = SearchSpace([Discrete("n", [1, 4])])
    assert drive(GridSearch(2), space, 3) == [{"n": 1}, {"n": 4}, None]
