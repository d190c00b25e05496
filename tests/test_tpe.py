"""The multivariate TPE sampler: initial design, model phase, parallel suggestions, failures."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from typing import Any

import pytest

import ridgeline
from ridgeline.errors import ConfigError
from ridgeline.samplers.base import History, TrialView
from ridgeline.samplers.tpe import TPESampler
from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal, SearchSpace
from ridgeline.testing.sampler_conformance import SamplerConformance

Objective = Callable[[dict[str, Any]], float]


def unit_space(d: int = 2) -> SearchSpace:
    return SearchSpace([Continuous(f"x{i}", [0.0, 1.0]) for i in range(d)])


def sphere(p: dict[str, Any]) -> float:
    """Minimum 0 at x_i = 0.3."""
    return sum((v - 0.3) ** 2 for k, v in p.items() if k.startswith("x"))


def observe(history: History, params: dict[str, Any], value: float | None, status: str) -> None:
    tid = len(history.trials) + 1
    history.trials.append(TrialView(tid, dict(params), status, value, 1))
    if value is not None:
        history.curves[tid] = [(1, value)]


def run(
    sampler: TPESampler, space: SearchSpace, f: Objective, n: int, seed: int
) -> tuple[list[dict[str, Any]], list[float]]:
    history = History(lower_is_better=True)
    rng = random.Random(seed)
    points, values = [], []
    for _ in range(n):
        p = sampler.propose(space, history, [], rng)
        y = f(p)
        observe(history, p, y, "COMPLETED")
        points.append(p)
        values.append(y)
    return points, values


def filled(space: SearchSpace, f: Objective, n: int, seed: int = 0) -> History:
    """A history of ``n`` completed random trials."""
    history = History(lower_is_better=True)
    rng = random.Random(seed)
    for _ in range(n):
        p = space.sample(rng)
        observe(history, p, f(p), "COMPLETED")
    return history


def with_values(history: History, f: Objective) -> History:
    """The same parameters (same dict objects' contents), other objective values."""
    out = History(lower_is_better=history.lower_is_better)
    for t in history.trials:
        observe(out, t.params, f(t.params), t.status)
    return out


def test_initial_design_ignores_values_and_the_model_phase_uses_them() -> None:
    space = unit_space(2)
    base = filled(space, sphere, 4)
    flipped = with_values(base, lambda p: -sphere(p))
    sampler = TPESampler(num_initial=5)
    # 4 results < 5: random, so the values cannot matter
    a = sampler.propose(space, base, [], random.Random(3))
    b = TPESampler(num_initial=5).propose(space, flipped, [], random.Random(3))
    assert a == b
    # 5 results: the model decides, and the values matter
    for h in (base, flipped):
        p = space.sample(random.Random(9))
        observe(h, p, sphere(p) if h is base else -sphere(p), "COMPLETED")
    differ = 0
    for seed in range(5):
        a = TPESampler(num_initial=5).propose(space, base, [], random.Random(seed))
        b = TPESampler(num_initial=5).propose(space, flipped, [], random.Random(seed))
        differ += a != b
    assert differ >= 4


def test_warm_started_history_skips_the_initial_design() -> None:
    space = unit_space(2)
    base = filled(space, sphere, 20)
    flipped = with_values(base, lambda p: -sphere(p))
    differ = sum(
        TPESampler().propose(space, base, [], random.Random(s))
        != TPESampler().propose(space, flipped, [], random.Random(s))
        for s in range(5)
    )
    assert differ >= 4
    # and the suggestions concentrate near the best observations
    near = 0
    for s in range(20):
        p = TPESampler().propose(space, base, [], random.Random(s))
        near += sphere(p) < 0.1
    assert near >= 12  # a uniform point lands there about 1 time in 4


def test_beats_random_search() -> None:
    space = unit_space(3)
    wins, tpe_total, random_total = 0, 0.0, 0.0
    for seed in range(4):
        _, tpe = run(TPESampler(), space, sphere, 40, seed)
        rng = random.Random(seed + 100)
        rand = [sphere(space.sample(rng)) for _ in range(40)]
        wins += min(tpe) < min(rand)
        tpe_total += min(tpe)
        random_total += min(rand)
    assert wins >= 3
    assert tpe_total < 0.5 * random_total


def mixed_space() -> SearchSpace:
    return SearchSpace(
        [
            Continuous("lr", [1e-5, 1e-1], scale="log"),
            Continuous("x", [-2.0, 2.0]),
            Discrete("units", [1, 5]),
            Discrete("batch", [8, 1024], scale="log"),
            Choice("act", ["relu", "tanh", None]),
            Ordinal("size", [16, 32, 64, 128]),
            Constant("seed", 7),
        ]
    )


def mixed_objective(p: dict[str, Any]) -> float:
    return (
        (math.log10(p["lr"]) + 3) ** 2
        + p["x"] ** 2
        + abs(p["units"] - 3)
        + abs(math.log2(p["batch"]) - 6)
        + (0.0 if p["act"] == "tanh" else 1.0)
        + abs(p["size"] - 64) / 32
    )


def test_mixed_space_gives_legal_values_and_learns() -> None:
    space = mixed_space()
    points, values = run(TPESampler(num_initial=8), space, mixed_objective, 50, seed=2)
    for p in points:
        assert space.contains(p), p
        assert list(p) == space.names
        assert type(p["units"]) is int and type(p["batch"]) is int
        assert isinstance(p["lr"], float) and p["seed"] == 7
    assert {p["act"] for p in points} == {"relu", "tanh", None}
    assert {1, 5} <= {p["units"] for p in points}  # the bounds are reachable
    assert min(values[25:]) < min(values[:8])
    assert sum(p["act"] == "tanh" for p in points[25:]) > 12  # the best category wins


def test_univariate_mode_and_maximisation() -> None:
    space = unit_space(2)
    history = filled(space, lambda p: -sphere(p), 30)
    history.lower_is_better = False
    near = 0
    for s in range(20):
        p = TPESampler(multivariate=False).propose(space, history, [], random.Random(s))
        assert space.contains(p)
        near += sphere(p) < 0.1
    assert near >= 12


def test_pending_points_give_distinct_suggestions() -> None:
    space = unit_space(2)
    history = filled(space, sphere, 20)
    sampler = TPESampler()
    rng = random.Random(4)
    pending: list[dict[str, Any]] = []
    for _ in range(8):
        pending.append(sampler.propose(space, history, pending, rng))
    keys = {tuple(p.values()) for p in pending}
    assert len(keys) == 8
    spread = max(p["x0"] for p in pending) - min(p["x0"] for p in pending)
    assert spread > 0.02


def test_small_discrete_space_never_repeats_while_new_points_remain() -> None:
    space = SearchSpace([Discrete("a", [1, 4]), Choice("b", ["p", "q", "r"])])  # 12 points
    history = History()
    rng = random.Random(0)
    for _ in range(6):
        p = space.sample(rng)
        observe(history, p, float(p["a"]) + (p["b"] == "q"), "COMPLETED")
    seen = {(t.params["a"], t.params["b"]) for t in history.trials}
    sampler = TPESampler(num_initial=3)
    pending: list[dict[str, Any]] = []
    for _ in range(12 - len(seen)):
        p = sampler.propose(space, history, pending, rng)
        key = (p["a"], p["b"])
        assert key not in seen
        seen.add(key)
        pending.append(p)
    assert len(seen) == 12
    assert space.contains(sampler.propose(space, history, pending, rng))  # full: still answers


def test_failed_trials_are_avoided() -> None:
    space = unit_space(1)
    history = History()
    rng = random.Random(1)
    for i in range(40):
        x = rng.random()
        if x > 0.6:  # the right part of the space always fails, one way or another
            status, value = ("FAILED", None) if i % 3 else ("INVALID_HP", None)
            if i % 5 == 0:
                status, value = "COMPLETED", math.nan
            observe(history, {"x0": x}, value, status)
        else:
            observe(history, {"x0": x}, (x - 0.55) ** 2, "COMPLETED")
    history.trials.append(TrialView(41, {}, "FAILED"))  # a gap the engine filled
    observe(history, {"x0": 0.5, "unknown": 1}, 0.0, "CANCELED")
    sampler = TPESampler()
    inside = 0
    for s in range(30):
        p = sampler.propose(space, history, [], random.Random(s))
        assert 0.0 <= p["x0"] <= 1.0
        inside += p["x0"] <= 0.65
    assert inside >= 24


def test_only_failures_fall_back_to_random() -> None:
    space = unit_space(2)
    history = History()
    for i in range(15):
        observe(history, space.sample(random.Random(i)), None, "FAILED")
    p = TPESampler().propose(space, history, [], random.Random(0))
    assert space.contains(p)


def test_same_seed_same_suggestions() -> None:
    space = mixed_space()
    a, _ = run(TPESampler(num_initial=5), space, mixed_objective, 25, seed=11)
    b, _ = run(TPESampler(num_initial=5), space, mixed_objective, 25, seed=11)
    c, _ = run(TPESampler(num_initial=5), space, mixed_objective, 25, seed=12)
    assert a == b
    assert a != c


def test_state_round_trips_through_json() -> None:
    space = unit_space(3)
    history = filled(space, sphere, 15)
    first = TPESampler(num_initial=4)
    first.propose(space, history, [], random.Random(0))
    state = json.loads(json.dumps(first.state_dict()))
    second = TPESampler(num_initial=4)
    second.load_state_dict(state)
    rng_a, rng_b = random.Random(5), random.Random(5)
    for _ in range(3):
        assert first.propose(space, history, [], rng_a) == second.propose(space, history, [], rng_b)


@pytest.mark.parametrize("completed", [12, 3])
def test_early_ended_trials_are_compared_at_a_common_step(completed: int) -> None:
    """ASHA-like: trials that a searcher ended early report values at a lower step (here
    misleadingly good ones, far from the optimum); they must not be called good."""
    space = unit_space(2)
    history = History()
    rng = random.Random(2)

    def add(p: dict[str, Any], status: str, curve: list[tuple[int, float]]) -> None:
        tid = len(history.trials) + 1
        best = min(v for _, v in curve)
        history.trials.append(TrialView(tid, p, status, best, curve[-1][0]))
        history.curves[tid] = curve

    for _ in range(completed):
        p = space.sample(rng)
        add(p, "COMPLETED", [(1, 5.0), (2, sphere(p) + 0.5), (3, sphere(p))])
    for _ in range(20):  # reached step 2: with 3 completed, the comparison happens there
        p = space.sample(rng)
        add(p, "STOPPED", [(1, 5.0), (2, sphere(p) + 0.5)])
    for _ in range(15):  # stopped at step 1 near (0.85, 0.85) with "great" early values
        p = {"x0": 0.8 + 0.1 * rng.random(), "x1": 0.8 + 0.1 * rng.random()}
        add(p, "PAUSED" if rng.random() < 0.5 else "STOPPED", [(1, -1.0)])
    near = 0
    for s in range(20):
        p = TPESampler().propose(space, history, [], random.Random(s))
        assert space.contains(p)
        near += sphere(p) < 0.1
    assert near >= 12


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_initial": 0}, "num_initial"),
        ({"num_initial": 2.5}, "num_initial"),
        ({"num_initial": True}, "num_initial"),
        ({"num_candidates": 0}, "num_candidates"),
        ({"num_candidates": "24"}, "num_candidates"),
        ({"multivariate": "yes"}, "multivariate"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": "0.2"}, "gamma"),
        ({"gamma": True}, "gamma"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        TPESampler(**kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)


def test_gamma_sets_the_good_share() -> None:
    space = unit_space(2)
    history = filled(space, sphere, 20)
    p = TPESampler(gamma=0.5, num_candidates=64).propose(space, history, [], random.Random(0))
    assert space.contains(p)


def test_through_the_public_study() -> None:
    study = ridgeline.Study(
        parameters=[
            ridgeline.Continuous("x", [-5.0, 10.0]),
            ridgeline.Continuous("y", [0.0, 15.0]),
            ridgeline.Choice("shift", [0.0, 5.0]),
        ],
        algorithm=ridgeline.algorithms.TPE(max_num_trials=30),
        lower_is_better=True,
        seed=1,
        disable_dashboard=True,
    )
    values = []
    for trial in study:
        p = trial.parameters
        objective = (p["x"] - 2.0) ** 2 + (p["y"] - 3.0) ** 2 + p["shift"]
        values.append(objective)
        study.add_observation(trial, iteration=1, objective=objective)
        study.finalize(trial)
    assert study.num_trials == 30
    assert min(values[15:]) < min(values[:10])
    assert study.get_best_result()["Objective"] == min(values)


class TestTPEConformance(SamplerConformance):
    proposals = 16  # past the initial design

    def make(self) -> TPESampler:
        return TPESampler(num_initial=5)
