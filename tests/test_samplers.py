"""Samplers: pure proposals from (space, history, pending, rng), JSON state that resumes."""

from __future__ import annotations

import json
import math
import random
import time
from typing import Any

import pytest

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import WAIT, History, Sampler, TrialView
from ridgeline.samplers.compose import ChainSampler, LimitSampler, RepeatSampler, aggregate_history
from ridgeline.samplers.grid import GridSampler
from ridgeline.samplers.iterate import IterateSampler
from ridgeline.samplers.qmc import QuasiRandomSampler
from ridgeline.samplers.random import RandomSampler
from ridgeline.sherpa.samplers.genetic import GeneticSampler
from ridgeline.sherpa.samplers.legacy import (
    LegacyAlgorithmSampler,
    aggregate_results,
    history_from_results,
    results_frame,
)
from ridgeline.sherpa.samplers.local import LocalSearchSampler
from ridgeline.space import Choice, Continuous, Discrete, Ordinal, SearchSpace
from ridgeline.testing.sampler_conformance import SamplerConformance

FINISHED = ("COMPLETED", "FAILED", "STOPPED")


def make_history(
    trials: list[tuple[dict[str, Any], str, list[tuple[int, float]]]],
    lower_is_better: bool = True,
) -> History:
    """A History from ``(params, status, curve)`` per trial (ids 1..n)."""
    h = History(lower_is_better=lower_is_better)
    for i, (params, status, curve) in enumerate(trials, start=1):
        best = None
        for _, v in curve:
            if h.is_better(v, best):
                best = v
        view = TrialView(
            number=i,
            params=dict(params),
            status=status,
            objective=best,
            last_step=max((s for s, _ in curve), default=None),
        )
        h.trials.append(view)
        h.curves[i] = list(curve)
        if status not in FINISHED:
            h.active[i] = view
    return h


def space3() -> SearchSpace:
    return SearchSpace(
        [
            Continuous("lr", [1e-4, 1e-1], scale="log"),
            Discrete("n", [1, 8]),
            Choice("act", ["relu", "tanh", "elu"]),
        ]
    )


def run(sampler: Sampler, space: SearchSpace, n: int, rng: random.Random, history=None):
    history = history or History()
    return [sampler.propose(space, history, [], rng) for _ in range(n)]


def assert_resumes(make, space: SearchSpace, before: int, after: int, history=None) -> None:
    """A sampler restored from JSON state (and the generator's state) continues identically."""
    history = history or History()
    rng = random.Random(11)
    a = make()
    run(a, space, before, rng, history)
    state = json.loads(json.dumps(a.state_dict()))
    rng_state = rng.getstate()
    expected = run(a, space, after, rng, history)
    b = make()
    b.load_state_dict(state)
    rng2 = random.Random()
    rng2.setstate(rng_state)
    assert run(b, space, after, rng2, history) == expected


# -- random -----------------------------------------------------------------------------------


def test_random_same_seed_same_suggestions():
    space = space3()
    a = run(RandomSampler(), space, 20, random.Random(5))
    b = run(RandomSampler(), space, 20, random.Random(5))
    c = run(RandomSampler(), space, 20, random.Random(6))
    assert a == b and a != c
    assert all(space.contains(p) for p in a)


def test_random_is_fast():
    space = space3()
    sampler, history, rng = RandomSampler(), History(), random.Random(0)
    start = time.perf_counter()
    for _ in range(10_000):
        sampler.propose(space, history, [], rng)
    per_call = (time.perf_counter() - start) / 10_000
    assert per_call < 50e-6  # a few microseconds in practice; generous for loaded CI


def test_random_state_round_trip():
    assert_resumes(RandomSampler, space3(), 5, 5)


# -- grid -------------------------------------------------------------------------------------


def test_grid_walks_whole_grid_then_none():
    space = SearchSpace([Choice("act", ["a", "b"]), Continuous("x", [0, 1]), Discrete("n", [1, 3])])
    sampler = GridSampler(num_grid_points=2)
    out = run(sampler, space, 9, random.Random(0))
    assert out[:8] == space.grid(2)
    assert out[8] is None and sampler.propose(space, History(), [], random.Random()) is None
    assert len({json.dumps(p, sort_keys=True) for p in out[:8]}) == 8
    assert {p["x"] for p in out[:8]} == {0.0, 1.0} and {p["n"] for p in out[:8]} == {1, 3}
    assert sampler.grid_size(space) == 8


def test_grid_state_round_trip():
    space = SearchSpace([Choice("a", [1, 2, 3]), Discrete("n", [1, 5])])
    assert_resumes(lambda: GridSampler(3), space, 4, 6)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_grid_validation(bad):
    with pytest.raises(ConfigError, match="num_grid_points"):
        GridSampler(bad)


# -- iterate ----------------------------------------------------------------------------------


def test_iterate_in_order_then_none():
    hp = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    sampler = IterateSampler(hp)
    out = run(sampler, SearchSpace([]), 3, random.Random(0))
    assert out == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, None]
    out[0]["a"] = 99
    assert hp[0]["a"] == 1  # copies


def test_iterate_state_round_trip():
    hp = [{"a": i} for i in range(6)]
    assert_resumes(lambda: IterateSampler(hp), SearchSpace([]), 2, 5)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"a": 1}, "list"),
        ([], "empty"),
        ([{"a": 1}, 3], r"hp_iter\[1\]"),
        ([{"a": 1}, {"b": 2}], r"hp_iter\[1\].*missing \['a'\]"),
    ],
)
def test_iterate_validation(bad, match):
    with pytest.raises(ConfigError, match=match):
        IterateSampler(bad)


# -- local search -----------------------------------------------------------------------------


def local_space() -> SearchSpace:
    return SearchSpace(
        [
            Continuous("lr", [0.01, 1.0]),
            Discrete("n", [1, 10]),
            Ordinal("size", [8, 16, 32]),
            Choice("act", ["relu", "tanh"]),
        ]
    )


SEED = {"lr": 0.5, "n": 5, "size": 16, "act": "relu"}


def _diff(a: dict, b: dict) -> list[str]:
    return [k for k in a if a[k] != b[k]]


def test_local_search_seed_first_then_single_moves():
    space = local_space()
    sampler = LocalSearchSampler(SEED)
    rng = random.Random(0)
    first = sampler.propose(space, History(), [], rng)
    assert first == SEED
    seen = [first]
    while True:
        p = sampler.propose(space, History(), [], rng)
        if p is None:
            break
        assert len(_diff(p, SEED)) == 1, p
        assert p not in seen
        seen.append(p)
    moves = [(k, p[k]) for p in seen[1:] for k in _diff(p, SEED)]
    lr = sorted(v for k, v in moves if k == "lr")
    assert lr == [pytest.approx(0.4), pytest.approx(0.6)]
    others = {m for m in moves if m[0] != "lr"}
    # int(5 * 0.8) = 4, int(5 * 1.2) = 6; Ordinal one step each way; Choice the other value
    assert others == {("n", 4), ("n", 6), ("size", 8), ("size", 32), ("act", "tanh")}
    assert len(moves) == 7


def test_local_search_clips_and_truncates():
    space = SearchSpace([Continuous("lr", [0.1, 1.0]), Discrete("n", [1, 3])])
    sampler = LocalSearchSampler({"lr": 0.95, "n": 3})
    rng = random.Random(1)
    out = [p for p in run(sampler, space, 10, rng) if p]
    values = {(k, p[k]) for p in out[1:] for k in _diff(p, {"lr": 0.95, "n": 3})}
    assert ("lr", 1.0) in values  # 0.95 * 1.2 clipped to the upper bound
    assert ("n", 2) in values  # int(3 * 0.8) = 2; 3 * 1.2 = 3.6 -> 3 clipped: no move
    assert all(space.contains(p) for p in out)


def test_local_search_moves_around_best_completed():
    space = local_space()
    sampler = LocalSearchSampler(SEED)
    rng = random.Random(2)
    assert sampler.propose(space, History(), [], rng) == SEED
    better = {**SEED, "act": "tanh"}
    history = make_history(
        [
            (SEED, "COMPLETED", [(1, 0.5)]),
            (better, "COMPLETED", [(1, 0.2)]),
            ({**SEED, "n": 9}, "FAILED", [(1, 0.01)]),  # failed: never the centre
        ]
    )
    for _ in range(5):
        p = sampler.propose(space, history, [], rng)
        assert len(_diff(p, better)) == 1
        assert p != SEED  # already run


def test_local_search_higher_is_better():
    space = local_space()
    sampler = LocalSearchSampler(SEED)
    rng = random.Random(3)
    sampler.propose(space, History(), [], rng)
    other = {**SEED, "size": 32}
    history = make_history(
        [(SEED, "COMPLETED", [(1, 0.5)]), (other, "COMPLETED", [(1, 0.9)])],
        lower_is_better=False,
    )
    p = sampler.propose(space, history, [], rng)
    assert len(_diff(p, other)) == 1


def test_local_search_repeats_and_exhaustion():
    space = SearchSpace([Choice("act", ["a", "b"])])
    sampler = LocalSearchSampler({"act": "a"}, repeat_trials=2)
    rng = random.Random(0)
    assert run(sampler, space, 4, rng) == [{"act": "a"}, {"act": "a"}, {"act": "b"}, {"act": "b"}]
    running = make_history([({"act": "b"}, "RUNNING", [])])
    assert sampler.propose(space, running, [], rng) == WAIT  # a running trial may become best
    assert sampler.propose(space, History(), [{"act": "b"}], rng) == WAIT
    assert sampler.propose(space, History(), [], rng) is None


def test_local_search_deterministic_and_resumes():
    space = local_space()
    a = run(LocalSearchSampler(SEED), space, 8, random.Random(4))
    b = run(LocalSearchSampler(SEED), space, 8, random.Random(4))
    assert a == b
    assert_resumes(lambda: LocalSearchSampler(SEED, repeat_trials=2), space, 3, 8)


def test_local_search_validation():
    with pytest.raises(ConfigError, match="seed_configuration"):
        LocalSearchSampler([1, 2])
    with pytest.raises(ConfigError, match="perturbation_factors"):
        LocalSearchSampler(SEED, perturbation_factors=(0.8,))
    with pytest.raises(ConfigError, match="perturbation_factors"):
        LocalSearchSampler(SEED, perturbation_factors=(0, 1.2))
    with pytest.raises(ConfigError, match="repeat_trials"):
        LocalSearchSampler(SEED, repeat_trials=0)
    with pytest.raises(ConfigError, match="lacks parameter.*'act'"):
        LocalSearchSampler({"lr": 0.5, "n": 5, "size": 16}).propose(
            local_space(), History(), [], random.Random()
        )


# -- genetic ----------------------------------------------------------------------------------


def population(n: int, lower_is_better: bool = True) -> History:
    space = SearchSpace([Continuous("x", [0, 1]), Discrete("k", [0, 1000])])
    rng = random.Random(8)
    trials = []
    for i in range(n):
        p = space.sample(rng)
        p["k"] = i  # k identifies the trial; objective i: trial 0 best when lower is better
        trials.append((p, "COMPLETED", [(1, float(i))]))
    return make_history(trials, lower_is_better)


def test_genetic_random_until_ten_finished():
    space = SearchSpace([Continuous("x", [0, 1]), Discrete("k", [0, 1000])])
    h = population(9)
    out = run(GeneticSampler(mutation_rate=0.0), space, 30, random.Random(0), h)
    assert any(p["k"] >= 9 for p in out)  # values not taken from the 9 trials: random draws


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_genetic_inherits_from_top_third(lower_is_better):
    space = SearchSpace([Continuous("x", [0, 1]), Discrete("k", [0, 1000])])
    h = population(30, lower_is_better)
    top = set(range(10)) if lower_is_better else set(range(20, 30))
    by_k = {t.params["k"]: t.params["x"] for t in h.trials}
    out = run(GeneticSampler(mutation_rate=0.0), space, 200, random.Random(1), h)
    assert {p["k"] for p in out} <= top
    assert all(p["x"] in {by_k[k] for k in top} for p in out)
    assert len({p["k"] for p in out}) > 5  # drawn among several parents
    mixed = sum(by_k[p["k"]] != p["x"] for p in out)
    assert mixed > 20  # genes from two different parents


def test_genetic_mutation_rate():
    space = SearchSpace([Continuous("x", [0, 1]), Discrete("k", [0, 1000])])
    h = population(30)
    out = run(GeneticSampler(mutation_rate=1.0), space, 100, random.Random(2), h)
    assert sum(p["k"] >= 10 for p in out) > 80  # almost all resampled out of the top third
    assert run(GeneticSampler(0.3), space, 10, random.Random(3), h) == run(
        GeneticSampler(0.3), space, 10, random.Random(3), h
    )


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.1", None])
def test_genetic_validation(bad):
    with pytest.raises(ConfigError, match="mutation_rate"):
        GeneticSampler(bad)


# -- compose ----------------------------------------------------------------------------------


def test_chain_runs_each_until_none():
    space = SearchSpace([Choice("a", [1, 2])])
    chain = ChainSampler([IterateSampler([{"a": 2}]), GridSampler(), IterateSampler([{"a": 1}])])
    out = run(chain, space, 5, random.Random(0))
    assert out == [{"a": 2}, {"a": 1}, {"a": 2}, {"a": 1}, None]


def test_chain_state_round_trip():
    space = SearchSpace([Choice("a", [1, 2, 3])])
    make = lambda: ChainSampler([GridSampler(), LimitSampler(RandomSampler(), 4)])  # noqa: E731
    assert_resumes(make, space, 2, 6)
    assert_resumes(make, space, 5, 3)


def test_chain_validation():
    with pytest.raises(ConfigError):
        ChainSampler([])
    with pytest.raises(ConfigError, match=r"samplers\[1\]"):
        ChainSampler([RandomSampler(), "grid"])


def test_limit_sampler():
    space = space3()
    out = run(LimitSampler(RandomSampler(), 3), space, 5, random.Random(0))
    assert [p is None for p in out] == [False, False, False, True, True]
    with pytest.raises(ConfigError, match="max_proposals"):
        LimitSampler(RandomSampler(), 0)


def test_repeat_repeats_each_suggestion():
    space = space3()
    out = run(RepeatSampler(RandomSampler(), num_times=3), space, 9, random.Random(0))
    assert out[0] == out[1] == out[2] != out[3] == out[4] == out[5] != out[6]
    out = run(RepeatSampler(IterateSampler([{"a": 1}]), num_times=2), SearchSpace([]), 3, None)
    assert out == [{"a": 1}, {"a": 1}, None]


def test_repeat_wait_for_completion():
    space = SearchSpace([Choice("a", [1, 2, 3])])
    sampler = RepeatSampler(IterateSampler([{"a": 1}, {"a": 2}]), 2, wait_for_completion=True)
    rng = random.Random(0)
    assert sampler.propose(space, History(), [], rng) == {"a": 1}
    one_running = make_history([({"a": 1}, "RUNNING", [])])
    assert sampler.propose(space, one_running, [], rng) == {"a": 1}  # the owed repeat: no wait
    both = make_history([({"a": 1}, "COMPLETED", [(1, 0.3)]), ({"a": 1}, "RUNNING", [(1, 0.2)])])
    assert sampler.propose(space, both, [], rng) == WAIT
    assert sampler.propose(space, History(), [{"a": 1}], rng) == WAIT  # pending counts too
    done = make_history([({"a": 1}, "COMPLETED", [(1, 0.3)]), ({"a": 1}, "FAILED", [])])
    assert sampler.propose(space, done, [], rng) == {"a": 2}  # a failed repeat: no deadlock
    no_wait = RepeatSampler(IterateSampler([{"a": 1}, {"a": 2}]), 1)
    assert no_wait.propose(space, both, [], rng) == {"a": 1}
    assert no_wait.propose(space, both, [], rng) == {"a": 2}


def test_repeat_state_round_trip():
    make = lambda: RepeatSampler(RandomSampler(), num_times=3)  # noqa: E731
    assert_resumes(make, space3(), 4, 7)


def test_repeat_agg_shows_means_to_inner():
    space = SearchSpace([Choice("a", [1, 2])])
    h = make_history(
        [
            ({"a": 1}, "COMPLETED", [(1, 4.0), (2, 1.0)]),
            ({"a": 1}, "COMPLETED", [(1, 2.0), (2, 3.0)]),
            ({"a": 2}, "COMPLETED", [(1, 0.5)]),  # one repeat only: left out
            ({"a": 1}, "RUNNING", [(1, 9.0)]),
        ]
    )
    agg = aggregate_history(h, space, min_count=2)
    assert len(agg.trials) == 1
    t = agg.trials[0]
    assert (t.number, t.params, t.status, t.objective, t.last_step) == (
        1,
        {"a": 1},
        "COMPLETED",
        1.5,
        2,
    )
    assert agg.curves[1] == [(1, 3.0), (2, 2.0)]
    assert agg.active == {}

    class Spy(Sampler):
        def propose(self, space, history, pending, rng):
            self.seen = history
            return {"a": 1}

    spy = Spy()
    RepeatSampler(spy, num_times=2, agg=True).propose(space, h, [], random.Random())
    assert [t.objective for t in spy.seen.trials] == [1.5]


def test_repeat_validation():
    with pytest.raises(ConfigError, match="num_times"):
        RepeatSampler(RandomSampler(), num_times=0)
    with pytest.raises(ConfigError, match="inner"):
        RepeatSampler("random")


# -- legacy -----------------------------------------------------------------------------------


def test_results_frame_matches_sherpa_layout():
    h = make_history(
        [
            ({"x": 0.5, "act": "a"}, "COMPLETED", [(1, 0.9), (2, 0.4), (3, 0.6)]),
            ({"x": 0.1, "act": "b"}, "RUNNING", [(1, 0.7)]),
            ({"x": 0.2, "act": "b"}, "FAILED", [(1, math.nan)]),  # all NaN: no final row
            ({"x": 0.3, "act": "a", "save_to": "4"}, "STOPPED", [(1, 0.8), (2, math.nan)]),
        ]
    )
    df = results_frame(h, ["x", "act"])
    assert list(df.columns) == [
        "Trial-ID",
        "Status",
        "Iteration",
        "act",
        "save_to",
        "x",
        "Objective",
    ]
    rows = df[["Trial-ID", "Status", "Iteration", "Objective"]].values.tolist()
    assert rows[:4] == [
        [1, "INTERMEDIATE", 1, 0.9],
        [1, "INTERMEDIATE", 2, 0.4],
        [1, "INTERMEDIATE", 3, 0.6],
        [1, "COMPLETED", 3, 0.4],  # best row copied, Iteration = highest
    ]
    assert rows[4] == [2, "INTERMEDIATE", 1, 0.7]
    assert rows[5][:3] == [3, "INTERMEDIATE", 1] and math.isnan(rows[5][3])
    assert [r[1] for r in rows if r[0] == 3] == ["INTERMEDIATE"]
    assert rows[-1] == [4, "STOPPED", 2, 0.8]
    assert df.loc[df["Trial-ID"] == 4, "save_to"].tolist() == ["4", "4", "4"]
    empty = results_frame(History(), ["x"])
    assert len(empty) == 0 and list(empty.columns) == [
        "Trial-ID",
        "Status",
        "Iteration",
        "x",
        "Objective",
    ]


def test_history_from_results_round_trip():
    h = make_history(
        [
            ({"x": 0.5}, "COMPLETED", [(1, 0.9), (2, 0.4)]),
            ({"x": 0.1}, "RUNNING", [(1, 0.7)]),
        ],
        lower_is_better=True,
    )
    back = history_from_results(results_frame(h), True)
    assert back.trials == h.trials
    assert back.curves == h.curves
    assert set(back.active) == {2}


class Recorder:
    """A SHERPA-style algorithm that records what it was given."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []
        self.loaded = None

    def get_suggestion(self, parameters, results, lower_is_better):
        self.calls.append((parameters, results, lower_is_better))
        answer = self.answers.pop(0)
        return answer(parameters) if callable(answer) else answer

    def load(self, num_trials):
        self.loaded = num_trials


def test_legacy_maps_answers():
    space = SearchSpace([Continuous("x", [0, 1])])
    alg = Recorder([{"x": 0.5}, "WAIT", "DONE", None, {"x": 0.1}])
    sampler = LegacyAlgorithmSampler(alg)
    h = make_history([({"x": 0.3}, "COMPLETED", [(1, 2.0)])], lower_is_better=False)
    out = [sampler.propose(space, h, [], random.Random()) for _ in range(5)]
    assert out == [{"x": 0.5}, WAIT, None, None, {"x": 0.1}]
    params, results, lib = alg.calls[0]
    assert [p.name for p in params] == ["x"] and lib is False
    assert list(results["Status"]) == ["INTERMEDIATE", "COMPLETED"]
    assert sampler.state_dict() == {"suggested": 2}
    fresh = Recorder([])
    LegacyAlgorithmSampler(fresh).load_state_dict({"suggested": 2})
    assert fresh.loaded == 2


def test_legacy_sample_without_rng_is_seeded():
    space = SearchSpace([Continuous("x", [0, 1]), Choice("c", ["a", "b", "c"])])

    def draw(parameters):
        return {p.name: p.sample() for p in parameters}

    a = LegacyAlgorithmSampler(Recorder([draw] * 5))
    b = LegacyAlgorithmSampler(Recorder([draw] * 5))
    assert run(a, space, 5, random.Random(3)) == run(b, space, 5, random.Random(3))


def test_legacy_errors():
    with pytest.raises(ConfigError, match="get_suggestion"):
        LegacyAlgorithmSampler(object())
    sampler = LegacyAlgorithmSampler(Recorder([42]))
    with pytest.raises(ConfigError, match="returned 42"):
        sampler.propose(SearchSpace([]), History(), [], random.Random())


def test_aggregate_results_like_sherpa():
    space = SearchSpace([Choice("a", [1, 2])])
    h = make_history(
        [
            ({"a": 1}, "COMPLETED", [(1, 4.0), (2, 1.0)]),
            ({"a": 1}, "COMPLETED", [(1, 2.0), (2, 3.0)]),
            ({"a": 2}, "COMPLETED", [(1, 0.5)]),
        ]
    )
    agg = aggregate_results(results_frame(h), space.parameters, min_count=2)
    assert list(agg.columns) == [
        "a",
        "Status",
        "Iteration",
        "Objective",
        "ObjectiveVar",
        "ObjectiveCount",
        "ObjectiveStdErr",
    ]
    done = agg[agg["Status"] == "COMPLETED"].iloc[0]
    assert (done["a"], done["Objective"], done["ObjectiveCount"], done["Iteration"]) == (
        1,
        1.5,
        2,
        2,
    )
    assert done["ObjectiveVar"] == pytest.approx(0.5)
    assert done["ObjectiveStdErr"] == pytest.approx(math.sqrt(0.5))
    inter = agg[agg["Status"] == "INTERMEDIATE"]
    assert inter[["Iteration", "Objective"]].values.tolist() == [[1, 3.0], [2, 2.0]]
    assert len(aggregate_results(results_frame(History()), space.parameters)) == 0


# -- what every sampler promises (ridgeline.testing.sampler_conformance) ----------------------


class TestRandomConformance(SamplerConformance):
    def make(self) -> Sampler:
        return RandomSampler()


class TestQuasiRandomConformance(SamplerConformance):
    def make(self) -> Sampler:
        return QuasiRandomSampler()


def test_quasi_random_points_cover_the_space_evenly() -> None:
    """16 points of a scrambled Sobol' sequence put exactly one point in each sixteenth of
    every axis, which random points rarely do; log scales are even in the exponent."""
    space = SearchSpace([Continuous("x", [0.0, 1.0]), Continuous("lr", [1e-5, 1e-1], "log")])
    sampler, rng = QuasiRandomSampler(), random.Random(0)
    points = [sampler.propose(space, History(), [], rng) for _ in range(16)]
    assert sorted(int(p["x"] * 16) for p in points) == list(range(16))
    assert sorted(int((math.log10(p["lr"]) + 5) * 4) for p in points) == list(range(16))


class TestGridConformance(SamplerConformance):
    exhausts = True

    def make(self) -> Sampler:
        return GridSampler(num_grid_points=2)


class TestLocalSearchConformance(SamplerConformance):
    def make(self) -> Sampler:
        return LocalSearchSampler({"x": 0.5, "lr": 0.01, "n": 4, "act": "tanh"})


class TestGeneticConformance(SamplerConformance):
    def make(self) -> Sampler:
        return GeneticSampler()


class TestIterateConformance(SamplerConformance):
    exhausts = True

    def make(self) -> Sampler:
        return IterateSampler(
            [{"x": float(i) / 4, "lr": 0.01, "n": i + 1, "act": "elu"} for i in range(5)]
        )
