"""The Gaussian-process sampler: design, model, pending points, failures, state, speed."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

import ridgeline
from ridgeline.errors import ConfigError
from ridgeline.samplers.auto import AutoSampler
from ridgeline.samplers.base import History, TrialView
from ridgeline.samplers.gp import GPSampler
from ridgeline.samplers.random import RandomSampler
from ridgeline.samplers.tpe import TPESampler
from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal, SearchSpace
from ridgeline.testing.sampler_conformance import SamplerConformance


def branin(p: dict[str, Any]) -> float:
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN = SearchSpace([Continuous("x1", [-5, 10]), Continuous("x2", [0, 15])])


def mixed_space() -> SearchSpace:
    return SearchSpace(
        [
            Choice("opt", ["sgd", "adam", "rmsprop"]),
            Continuous("lr", [1e-5, 1e-1], scale="log"),
            Discrete("units", [8, 512], scale="log"),
            Discrete("layers", [1, 4]),
            Ordinal("batch", [16, 32, 64, 128]),
            Constant("seed", 7),
        ]
    )


def mixed_objective(p: dict[str, Any]) -> float:
    return (
        (math.log10(p["lr"]) + 3) ** 2
        + (math.log2(p["units"]) - 6) ** 2 / 4
        + abs(p["layers"] - 2)
        + {"sgd": 1.0, "adam": 0.0, "rmsprop": 0.5}[p["opt"]]
        + (p["batch"] != 64) * 0.3
    )


def add(
    h: History, params: dict[str, Any], objective: float | None, status: str = "COMPLETED"
) -> None:
    h.trials.append(TrialView(len(h.trials) + 1, dict(params), status, objective, 1))


def run(
    sampler: Any,
    space: SearchSpace,
    f: Callable[[dict[str, Any]], float],
    n: int,
    seed: int,
    lower_is_better: bool = True,
) -> tuple[History, list[dict[str, Any]]]:
    h = History(lower_is_better=lower_is_better)
    rng = random.Random(seed)
    proposed = []
    for _ in range(n):
        p = sampler.propose(space, h, [], rng)
        proposed.append(p)
        add(h, p, f(p))
    return h, proposed


def best(h: History) -> float:
    return min(t.objective for t in h.trials if t.objective is not None)  # type: ignore[type-var]


def test_initial_design_then_model() -> None:
    s = GPSampler(num_initial=5)
    h = History()
    rng = random.Random(0)
    for i in range(8):
        p = s.propose(BRANIN, h, [], rng)
        assert BRANIN.contains(p)
        add(h, p, branin(p))
        assert s.state_dict()["design_count"] == min(i + 1, 5)
    assert s.state_dict()["theta"] is not None  # the model phase fitted hyperparameters


def test_default_initial_design_size() -> None:
    s = GPSampler()
    run(s, BRANIN, branin, 7, seed=1)
    assert s.state_dict()["design_count"] == 5  # max(2 parameters + 1, 5)


def test_beats_random_search_on_branin() -> None:
    gp_best, rs_best = [], []
    for seed in range(3):
        gp_best.append(best(run(GPSampler(), BRANIN, branin, 40, seed)[0]))
        rs_best.append(best(run(RandomSampler(), BRANIN, branin, 40, seed)[0]))
    assert sum(gp_best) / 3 < sum(rs_best) / 3
    assert max(gp_best) < 0.5  # the optimum is 0.3979; random search with 40 points: ~1.5


def test_maximisation_finds_the_maximum() -> None:
    def neg(p: dict[str, Any]) -> float:
        return -branin(p)

    h = History(lower_is_better=False)
    rng = random.Random(4)
    s = GPSampler()
    for _ in range(25):
        p = s.propose(BRANIN, h, [], rng)
        add(h, p, neg(p))
    assert max(t.objective for t in h.trials) > -1.0  # type: ignore[type-var]


@pytest.mark.parametrize("acquisition", ["ei", "pi", "lcb"])
def test_mixed_space_returns_legal_values(acquisition: str) -> None:
    space = mixed_space()
    s = GPSampler(acquisition=acquisition)
    h, proposed = run(s, space, mixed_objective, 18, seed=2)
    for p in proposed:
        assert space.contains(p), p
        assert set(p) == set(space.names)
        assert type(p["units"]) is int and type(p["layers"]) is int
        assert type(p["lr"]) is float and p["seed"] == 7
        assert p["batch"] in (16, 32, 64, 128) and p["opt"] in ("sgd", "adam", "rmsprop")
    keys = [tuple(sorted(p.items())) for p in proposed]
    assert len(set(keys)) == len(keys)  # never the same configuration twice
    assert best(h) < 1.5  # the optimum is 0; random search with 18 points: about 2.5


def observed(n: int, seed: int = 0) -> History:
    h = History()
    rng = random.Random(seed)
    for _ in range(n):
        p = BRANIN.sample(rng)
        add(h, p, branin(p))
    return h


def test_pending_points_give_distinct_spread_suggestions() -> None:
    h = observed(12)
    s = GPSampler()
    rng = random.Random(5)
    pending: list[dict[str, Any]] = []
    for _ in range(6):
        pending.append(s.propose(BRANIN, h, pending, rng))
    seen = [(t.params["x1"], t.params["x2"]) for t in h.trials]
    points = [(p["x1"], p["x2"]) for p in pending]
    assert len(set(points)) == 6 and not set(points) & set(seen)
    # no herding: every pair of suggestions at least 1% of the range apart
    for i, a in enumerate(points):
        for b in points[:i]:
            assert math.hypot((a[0] - b[0]) / 15, (a[1] - b[1]) / 15) > 0.01


def test_running_trials_in_history_count_as_pending() -> None:
    h = observed(12)
    s = GPSampler()
    first = s.propose(BRANIN, h, [], random.Random(5))
    add(h, first, None, status="RUNNING")
    second = GPSampler().propose(BRANIN, h, [], random.Random(5))
    assert second != first


def test_failed_trials_are_avoided_and_never_reproposed() -> None:
    space = SearchSpace([Discrete("k", [0, 19]), Continuous("x", [0, 1])])

    def outcome(p: dict[str, Any]) -> tuple[float | None, str]:
        if p["k"] < 5:  # the best-looking region crashes
            return None, "FAILED"
        return p["k"] + (p["x"] - 0.5) ** 2, "COMPLETED"

    h = History()
    rng = random.Random(3)
    s = GPSampler(num_initial=6)
    failed = 0
    keys = set()
    for i in range(25):
        p = s.propose(space, h, [], rng)
        key = (p["k"], p["x"])
        assert key not in keys
        keys.add(key)
        value, status = outcome(p)
        if status == "FAILED" and i >= 10:
            failed += 1
        add(h, p, value, status=status)
    assert failed <= 4
    assert best(h) < 6.5


def test_invalid_and_nan_results_count_as_failures() -> None:
    h = observed(10)
    rng = random.Random(1)
    bad = {"x1": 3.0, "x2": 2.0}  # near a minimum: without the failure it would be attractive
    add(h, bad, float("nan"))
    add(h, {"x1": 3.2, "x2": 2.5}, None, status="INVALID_HP")
    s = GPSampler()
    for _ in range(3):
        p = s.propose(BRANIN, h, [], rng)
        assert p != bad
        add(h, p, branin(p))


def test_same_seed_same_suggestions() -> None:
    a = run(GPSampler(), mixed_space(), mixed_objective, 12, seed=9)[1]
    b = run(GPSampler(), mixed_space(), mixed_objective, 12, seed=9)[1]
    c = run(GPSampler(), mixed_space(), mixed_objective, 12, seed=10)[1]
    assert a == b and a != c


def test_state_round_trips_through_json() -> None:
    space = mixed_space()
    s = GPSampler()
    h, _ = run(s, space, mixed_objective, 9, seed=4)
    state = json.loads(json.dumps(s.state_dict()))
    restored = GPSampler()
    restored.load_state_dict(state)
    assert restored.state_dict() == s.state_dict()
    rng_a, rng_b = random.Random(11), random.Random(11)
    for _ in range(2):
        pa = s.propose(space, h, [], rng_a)
        pb = restored.propose(space, h, [], rng_b)
        assert pa == pb
        add(h, pa, mixed_objective(pa))
    # state taken during the initial design continues the same sequence
    s1 = GPSampler(num_initial=6)
    h1, _ = run(s1, space, mixed_objective, 3, seed=2)
    s2 = GPSampler(num_initial=6)
    s2.load_state_dict(json.loads(json.dumps(s1.state_dict())))
    assert s1.propose(space, h1, [], random.Random(1)) == s2.propose(
        space, h1, [], random.Random(1)
    )


def test_warm_started_history_skips_the_initial_design() -> None:
    h = observed(8)
    s = GPSampler()
    p = s.propose(BRANIN, h, [], random.Random(0))
    assert BRANIN.contains(p)
    assert s.state_dict()["design_count"] == 0 and s.state_dict()["theta"] is not None


@pytest.mark.parametrize("log_objective", [False, True])
def test_heavy_tailed_objective(log_objective: bool) -> None:
    def f(p: dict[str, Any]) -> float:
        return math.exp(min(0.08 * branin(p), 700.0))  # spans 1 to 1e10 and beyond

    s = GPSampler(log_objective=log_objective)
    h, proposed = run(s, BRANIN, f, 30, seed=6)
    h.trials.append(
        TrialView(len(h.trials) + 1, BRANIN.sample(random.Random(1)), "COMPLETED", float("inf"), 1)
    )
    p = s.propose(BRANIN, h, [], random.Random(2))
    assert BRANIN.contains(p) and all(BRANIN.contains(q) for q in proposed)
    assert branin(min(proposed, key=f)) < 1.5


def test_log_objective_with_nonpositive_values() -> None:
    s = GPSampler(log_objective=True)
    h, proposed = run(s, BRANIN, branin, 12, seed=1)
    shifted = History()
    for t in h.trials:
        add(shifted, t.params, t.objective - 50.0)  # type: ignore[operator]
    assert BRANIN.contains(s.propose(BRANIN, shifted, [], random.Random(0)))


def test_constant_objective_and_tiny_spaces() -> None:
    s = GPSampler(num_initial=2)
    space = SearchSpace([Choice("c", ["a", "b", "c"]), Discrete("k", [1, 2])])
    h, proposed = run(s, space, lambda p: 1.0, 8, seed=0)
    keys = {(p["c"], p["k"]) for p in proposed[:6]}
    assert len(keys) == 6  # all six configurations before any repeat
    assert all(space.contains(p) for p in proposed)
    only_constants = SearchSpace([Constant("a", 1), Choice("b", ["x"])])
    assert GPSampler().propose(only_constants, h, [], random.Random(0)) == {"a": 1, "b": "x"}


def test_time_limit_still_returns_a_legal_point() -> None:
    h = observed(30)
    s = GPSampler(time_limit=1e-6)
    p = s.propose(BRANIN, h, [], random.Random(0))
    assert BRANIN.contains(p)


def test_many_observations_stay_fast() -> None:
    space = SearchSpace([Continuous(f"x{i}", [0, 1]) for i in range(6)])
    h = History()
    rng = random.Random(0)
    for _ in range(600):
        p = space.sample(rng)
        add(h, p, sum((v - 0.3) ** 2 for v in p.values()))
    s = GPSampler()
    start = time.perf_counter()
    p = s.propose(space, h, [], rng)
    assert time.perf_counter() - start < 10.0  # about 1 s on a busy 2-core machine
    assert space.contains(p)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_initial": 0}, "num_initial"),
        ({"num_initial": 2.5}, "num_initial"),
        ({"num_initial": True}, "num_initial"),
        ({"acquisition": "ucb"}, "acquisition"),
        ({"log_objective": "yes"}, "log_objective"),
        ({"time_limit": 0}, "time_limit"),
        ({"input_warping": "yes"}, "input_warping"),
        ({"time_limit": float("nan")}, "time_limit"),
        ({"time_limit": "1s"}, "time_limit"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GPSampler(**kwargs)


def test_study_with_bayesian_optimization() -> None:
    study = ridgeline.Study(
        parameters=[ridgeline.Continuous("x1", [-5, 10]), ridgeline.Continuous("x2", [0, 15])],
        algorithm=ridgeline.algorithms.BayesianOptimization(max_num_trials=20),
        lower_is_better=True,
        disable_dashboard=True,
        seed=1,
    )
    for trial in study:
        study.add_observation(trial, iteration=1, objective=branin(trial.parameters))
        study.finalize(trial)
    assert study.num_trials == 20
    assert study.get_best_result()["Objective"] < 2.0


def test_study_with_gpyopt_initial_points() -> None:
    start = [{"x1": 3.0, "x2": 3.0}, {"x1": -3.0, "x2": 12.0}]
    study = ridgeline.Study(
        parameters=[ridgeline.Continuous("x1", [-5, 10]), ridgeline.Continuous("x2", [0, 15])],
        algorithm=ridgeline.algorithms.GPyOpt(
            max_num_trials=15, initial_data_points=start, acquisition_type="LCB"
        ),
        lower_is_better=True,
        disable_dashboard=True,
        seed=2,
    )
    ran = []
    for trial in study:
        ran.append(trial.parameters)
        study.add_observation(trial, iteration=1, objective=branin(trial.parameters))
        study.finalize(trial)
    assert len(ran) == 15
    assert ran[0] == start[0] and ran[1] == start[1]
    assert study.get_best_result()["Objective"] < 3.0


# Seven parameters of five kinds where the best ``x`` depends on a category: a search that
# settles in the first good category ("sgd", 0.6) must step out to find "adam" (0).
_BASINS = {"sgd": (-2.17, 0.6), "adam": (1.63, 0.0), "rmsprop": (3.41, 0.35)}
_ACTIVATION = {"relu": 0.0, "tanh": 0.35, "gelu": 0.12, "sigmoid": 0.9}
SEVEN = SearchSpace(
    [
        Choice("optimizer", list(_BASINS)),
        Continuous("x", [-5.0, 5.0]),
        Continuous("lr", [1e-5, 1.0], scale="log"),
        Discrete("width", [4, 1024], scale="log"),
        Discrete("depth", [1, 8]),
        Continuous("dropout", [0.0, 0.8]),
        Choice("activation", list(_ACTIVATION)),
    ]
)


def seven(p: dict[str, Any]) -> float:
    x0, depth = _BASINS[p["optimizer"]]
    return (
        depth
        + 0.25 * (p["x"] - x0) ** 2
        + 0.5 * (math.log10(p["lr"]) + 2.71 + 0.15 * (p["depth"] - 3)) ** 2
        + 0.3 * (math.log2(p["width"]) - 5.4) ** 2
        + 0.2 * abs(p["depth"] - 3)
        + 2.0 * (p["dropout"] - 0.137) ** 2
        + _ACTIVATION[p["activation"]]
    )


def test_steps_out_of_a_category_that_stopped_improving() -> None:
    # Seeds on which the search first converges inside "sgd" (0.6 and no lower without the
    # step out). What is asserted is the escape into "adam", the only basin below rmsprop's
    # 0.35: how far the remaining budget then refines the numbers (0.0 to 0.25 here) varies
    # with the machine's floating-point rounding.
    for seed in (5, 8):
        h, _ = run(GPSampler(), SEVEN, seven, 60, seed)
        assert best(h) < 0.35, (seed, best(h))


# A categorical trap: "a" opens a broad, shallow basin (0), "c" a medium one (-0.3) and "b" a
# narrow, deep one (-1), near the same numbers. A search that settles in "a" must try the other
# categories at the numbers that work there; drawing numbers anew with them lands on the
# plateau (0.3) and worse, and teaches the model that those categories are bad.
_TRAP_BASINS = {"a": (0.31, 0.0, 0.6), "b": (0.72, -1.0, 0.12), "c": (0.5, -0.3, 0.25)}
TRAP = SearchSpace(
    [
        Choice("kind", list(_TRAP_BASINS)),
        Continuous("u", [0.0, 1.0]),
        Continuous("v", [0.0, 1.0]),
        Discrete("n", [1, 512], scale="log"),
        Discrete("k", [0, 20]),
    ]
)


def trap(p: dict[str, Any]) -> float:
    centre, depth, width = _TRAP_BASINS[p["kind"]]
    r2 = ((p["u"] - centre) ** 2 + (p["v"] - centre) ** 2) / (2 * width * width)
    return (
        0.3
        + (depth - 0.3) * math.exp(-r2)
        + 0.05 * (math.log2(p["n"]) - math.log2(181)) ** 2
        + 0.01 * (p["k"] - 13) ** 2
    )


def test_steps_out_to_another_category_at_the_numbers_that_work() -> None:
    # Seeds on which the search settles in "a" (-0.10 and 0.00 when every step out also
    # draws numbers anew); in a long stall, steps out first switch a category alone.
    found = [best(run(GPSampler(), TRAP, trap, 60, seed)[0]) for seed in (11, 13)]
    assert max(found) < -0.25, found


# k-NN-like: with one neighbour the weighting does not matter, and neither do the components
# from 45 on, so many distinct points tie exactly at 0.023; 0.019 lies at k = 4, "d", p = 2.
PLATEAU = SearchSpace(
    [
        Discrete("k", [1, 200], scale="log"),
        Choice("w", ["u", "d"]),
        Discrete("p", [1, 4]),
        Discrete("c", [2, 64], scale="log"),
    ]
)


def plateau(p: dict[str, Any]) -> float:
    too_few = 0.3 * max(0.0, math.log(45 / p["c"]))
    if p["k"] == 1:
        base = 0.023
    else:
        base = 0.019 + 0.003 * abs(math.log2(p["k"] / 4)) + (0.006 if p["w"] == "u" else 0.0)
    return round(base + 0.004 * abs(p["p"] - 2) + too_few, 6)


def test_does_not_spend_the_budget_on_a_plateau() -> None:
    # Seeds on which the search, once on the plateau, kept suggesting more of its points (4
    # to 20 of 40 evaluations at exactly 0.023, never finding 0.019) before plateau points
    # the model is sure of were passed over; one may still stick where rounding differs.
    runs = [run(GPSampler(), PLATEAU, plateau, 40, seed)[0] for seed in (11, 14, 20, 23)]
    escaped = [best(h) < 0.023 for h in runs]
    ties = [sum(t.objective == 0.023 for t in h.trials) for h in runs]
    assert sum(escaped) >= 3 and sum(ties) <= 40, (escaped, ties)


def noisy_bowl_search(seed: int) -> float:
    """The mean true value of the last 10 of 40 suggestions on a bowl seen through noise of
    sd 0.6 (its values span 0 to 2.6)."""
    space = SearchSpace([Continuous("x", [0, 1]), Continuous("y", [0, 1])])

    def truth(p: dict[str, Any]) -> float:
        return 4 * ((p["x"] - 0.7) ** 2 + (p["y"] - 0.3) ** 2)

    noise = random.Random(1000 + seed)
    _, proposed = run(GPSampler(), space, lambda p: truth(p) + noise.gauss(0, 0.6), 40, seed)
    return sum(truth(p) for p in proposed[-10:]) / 10


def test_under_heavy_noise_improves_on_the_prediction_not_on_a_lucky_result() -> None:
    # Seeds on which EI, aiming past the lowest result (partly luck), spent the last ten
    # suggestions at a mean true value of 0.91, 0.67 and 0.71; aiming past the best
    # prediction, 0.29, 0.48 and 0.56.
    last = [noisy_bowl_search(seed) for seed in (4, 6, 10)]
    assert sum(v < 0.6 for v in last) >= 2, last


def edge_dip(p: dict[str, Any]) -> float:
    # all that matters happens in the first twentieth of "a"'s range
    return -math.exp(-(((p["a"] - 0.03) / 0.02) ** 2)) + 0.1 * (p["b"] - 0.5) ** 2


EDGE = SearchSpace([Continuous("a", [0, 1]), Continuous("b", [0, 1])])


def test_input_warping_finds_an_optimum_packed_into_one_end_of_a_range() -> None:
    # Without warping, seeds 0 and 1 end at -0.60 and -0.80 here: a stationary kernel fit to a
    # range that is flat but for one narrow dip takes the dip for noise.
    for seed in (0, 1):
        warped = best(run(GPSampler(input_warping=True), EDGE, edge_dip, 30, seed)[0])
        assert warped < -0.95, (seed, warped)


def test_warped_model_gradients_match_finite_differences() -> None:
    import numpy as np

    from ridgeline.samplers import gp_model

    gen = np.random.default_rng(0)
    x = gen.random((30, 3))
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2
    warp = gp_model.InputWarp(np.array([0.5, 1.0, 2.0]), np.array([1.0, 2.0, 2.0]))
    model = gp_model.GP(x, y, np.array([-1.0, -1.0, -1.0, 0.0, -6.0]), [0, 1, 2], [False] * 3, warp)
    xq, pending, free, eps = gen.random((4, 3)), gen.random((3, 3)), np.arange(3), 1e-6
    _, _, dmu, dvar = model.predict_grad(xq, free)
    _, dcrowd = model.crowding(xq, pending, free)
    assert dcrowd is not None
    for j in range(3):
        up, down = xq.copy(), xq.copy()
        up[:, j] += eps
        down[:, j] -= eps
        (mu_u, var_u), (mu_d, var_d) = model.predict(up), model.predict(down)
        assert np.allclose((mu_u - mu_d) / (2 * eps), dmu[:, j], atol=1e-6)
        assert np.allclose((var_u - var_d) / (2 * eps), dvar[:, j], atol=1e-6)
        crowd = (model.crowding(up, pending)[0] - model.crowding(down, pending)[0]) / (2 * eps)
        assert np.allclose(crowd, dcrowd[:, j], atol=1e-6)


class TestGPConformance(SamplerConformance):
    proposals = 10  # past the initial design

    def make(self) -> GPSampler:
        return GPSampler(num_initial=4)


class TestAutoConformance(SamplerConformance):
    proposals = 10

    def make(self) -> AutoSampler:
        return AutoSampler(GPSampler(num_initial=4), TPESampler(num_initial=4))
