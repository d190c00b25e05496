"""Synchronous successive halving, Hyperband and PBT on the miniature engine (no processes)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from ridgeline.errors import ConfigError
from ridgeline.samplers.iterate import IterateSampler
from ridgeline.samplers.random import RandomSampler
from ridgeline.searchers.base import Searcher
from ridgeline.searchers.hyperband import (
    HyperbandSearcher,
    SyncHalvingSearcher,
    describe_hyperband,
    hyperband_plan,
    rung_sizes,
)
from ridgeline.searchers.pbt import PBTSearcher, explore
from ridgeline.space import Choice, Continuous, Discrete, Ordinal, SearchSpace
from ridgeline.testing.simulate import TERMINAL, searcher_from_config, shifted
from ridgeline.testing.simulate import UNIT_SPACE as SPACE
from ridgeline.testing.simulate import Simulation as Sim

HPARAMS = {"x": {"type": "double", "minval": 0.0, "maxval": 1.0}}

XS = (0.55, 0.15, 0.95, 0.35, 0.75, 0.05, 0.65, 0.25, 0.85)


def iterate(*xs: float) -> IterateSampler:
    return IterateSampler([{"x": x} for x in xs])


def reports(sim: Sim) -> dict[int, list[int]]:
    """Lengths each trial reported at, in order."""
    out: dict[int, list[int]] = {}
    for trial, curve in sim.history.curves.items():
        out[trial] = [step for step, _ in curve]
    return out


def test_sync_halving_rungs_and_promotions_are_exact() -> None:
    searcher = SyncHalvingSearcher(iterate(*XS), max_trials=9, max_length=9, num_rungs=3, divisor=3)
    sim = Sim(searcher, capacity=3).run()
    assert searcher.lengths == [1, 3, 9] and searcher.sizes == [9, 3, 1]
    assert searcher.members[0] == list(range(1, 10))
    # Trials rank by x: 6 (0.05), 2 (0.15), 8 (0.25) reach rung 1; 6 alone the top rung.
    assert sorted(searcher.members[1]) == [2, 6, 8]
    assert searcher.members[2] == [6]
    got = reports(sim)
    assert got[6] == [1, 3, 9] and got[2] == [1, 3] and got[8] == [1, 3]
    assert all(got[t] == [1] for t in (1, 3, 4, 5, 7, 9))
    # No promotion before the whole rung reported: the first rung-1 step starts after the
    # ninth rung-0 report, and promoted trials resume from their own checkpoint at length 1.
    assert sorted(sim.relaunched) == [(2, 3), (6, 3), (6, 9), (8, 3)]
    first_promotion = min(clock for e, clock, t, d, _ in sim.log if e == "report" and d == 3)
    last_rung0 = max(clock for e, clock, t, d, _ in sim.log if e == "report" and d == 1)
    assert first_promotion > last_rung0
    assert sim.shutdown and all(s in TERMINAL for s in sim.state.values())
    assert sim.peaks[0] <= 3 and sim.progress[-1] == 1.0


def test_sync_halving_larger_is_better_and_failures() -> None:
    exits = {(9, 3): "FAILED", (4, 1): "INVALID_HP"}
    searcher = SyncHalvingSearcher(
        iterate(*XS, 0.45), max_trials=9, max_length=9, num_rungs=3, divisor=3
    )
    sim = Sim(
        searcher, capacity=9, objective=lambda p, n: p["x"], lower_is_better=False, exits=exits
    ).run()
    # Trial 4 rejected its hyperparameters and was replaced by a tenth (x = 0.45).
    assert searcher.invalid == 1 and sim.state[4] == "INVALID_HP" and 10 in searcher.members[0]
    # The best three by x: 3 (0.95), 9 (0.85), 5 (0.75); 9 fails in rung 1 and scores worst.
    assert sorted(searcher.members[1]) == [3, 5, 9]
    assert sim.state[9] == "FAILED" and searcher.members[2] == [3]
    assert sim.shutdown and all(s in TERMINAL for s in sim.state.values())


def test_sync_halving_refuses_rungs_that_repeat_a_length() -> None:
    # divisor 4, 4 rungs under 27 would be rungs [1, 1, 6, 27]: a promotion to the second
    # rung trains nothing new, reports nothing, and the rung above would wait for ever
    with pytest.raises(ConfigError, match=r"repeat a length \(rungs at \[1, 1, 6, 27\]\)"):
        SyncHalvingSearcher(RandomSampler(), 16, 27, num_rungs=4)
    config = {"name": "sync_halving", "metric": "loss", "max_trials": 16, "max_length": 27}
    with pytest.raises(ConfigError, match="use fewer rungs"):
        searcher_from_config({**config, "num_rungs": 4}, HPARAMS)
    assert SyncHalvingSearcher(RandomSampler(), 16, 27, num_rungs=3).lengths == [1, 6, 27]


def test_hyperband_plan_matches_the_paper() -> None:
    plans = hyperband_plan(81, divisor=3, max_rungs=5)
    assert [p.max_trials for p in plans] == [81, 34, 15, 8, 5]
    assert [p.rung_sizes for p in plans] == [
        (81, 27, 9, 3, 1),
        (34, 11, 3, 1),
        (15, 5, 1),
        (8, 2),
        (5,),
    ]
    assert plans[0].rung_lengths == (1, 3, 9, 27, 81) and plans[-1].rung_lengths == (81,)
    assert rung_sizes(34, 4, 3) == [34, 11, 3, 1]
    scaled = hyperband_plan(27, divisor=3, max_rungs=5, max_trials=20, max_concurrent_trials=16)
    assert sum(p.max_trials for p in scaled) == 20
    assert sum(p.max_concurrent_trials for p in scaled) == 16
    lines = describe_hyperband(27, 3, 5, 20, 16, "epochs")
    assert "20 trials, 144 epochs of training in all" in lines[0]
    with pytest.raises(ConfigError, match="divisor"):
        hyperband_plan(27, divisor=1)


def _hyperband() -> Searcher:
    return HyperbandSearcher(RandomSampler(), 27, 3, 4, max_trials=24, max_concurrent_trials=6)


def test_hyperband_runs_every_bracket_within_its_slots() -> None:
    searcher = _hyperband()
    assert isinstance(searcher, HyperbandSearcher)
    sim = Sim(searcher, capacity=6, seed=3, group=lambda t: 0).run()
    assert sim.shutdown and all(s in TERMINAL for s in sim.state.values())
    assert len(sim.state) == 24  # (Sim checks that processes never exceed capacity)
    # Every bracket's top rung was reached by exactly one trial, at length 27.
    finals = [t for t, steps in reports(sim).items() if steps and steps[-1] == 27]
    assert len(finals) == len(searcher.plan)
    budget = sum(
        n * (length - previous)
        for p in searcher.plan
        for n, length, previous in zip(
            p.rung_sizes, p.rung_lengths, (0, *p.rung_lengths[:-1]), strict=True
        )
    )
    trained = sum(max(steps) for steps in reports(sim).values() if steps)
    assert trained == budget < 24 * 27


@pytest.mark.parametrize(
    "factory",
    [
        _hyperband,
        lambda: SyncHalvingSearcher(RandomSampler(), 9, 9, 3, 3, 4),
        lambda: PBTSearcher(RandomSampler(), 6, 4, 2, 0.34, 0.3, 0.2, 4),
    ],
)
def test_state_round_trip_continues_identically(factory: Callable[[], Searcher]) -> None:
    exits = {(3, 1): "INVALID_HP", (5, 3): "FAILED"}
    whole = Sim(factory(), capacity=5, seed=7, exits=dict(exits)).run()
    for after in (1, 4, 9):
        resumed = Sim(
            factory(), capacity=5, seed=7, exits=dict(exits), restart_after=after, factory=factory
        ).run()
        assert resumed.decisions() == whole.decisions()


def _pbt_objective(params: dict[str, float], length: int) -> float:
    return shifted(params, length)


def test_pbt_replaces_the_worst_with_clones_of_the_best() -> None:
    searcher = PBTSearcher(
        iterate(0.4, 0.1, 0.7, 0.3),
        population_size=4,
        num_rounds=3,
        length_per_round=2,
        truncate_fraction=0.25,
        resample_probability=0.0,
        perturb_factor=0.2,
    )
    sim = Sim(searcher, capacity=2, objective=_pbt_objective, seed=5).run()
    # Round 1: 3 (x 0.7) is worst and ends; 2 (x 0.1) is cloned as trial 5 from length 2.
    assert sim.parents[5] == 2 and sim.state[3] == "COMPLETED"
    assert reports(sim)[3] == [2]
    assert reports(sim)[5] == [4, 6] or reports(sim)[5] == [4]
    x5 = sim.history.trials[4].params["x"]
    assert x5 == pytest.approx(0.1 * 1.2) or x5 == pytest.approx(0.1 * 0.8)
    # Every member paused at each round end (their processes exit and checkpoint).
    paused = [t for e, _, t, _, _ in sim.log if e == "paused"]
    assert set(paused) >= {1, 2, 3, 4}
    # Six trials: four, then one clone after each of the two round ends.
    assert len(sim.state) == 6 and [sim.parents[n] is not None for n in (5, 6)] == [True, True]
    # Lengths are absolute: a clone created at length 2 trains to 4, then 6.
    assert max(reports(sim)[2]) == 6 and all(max(s) <= 6 for s in reports(sim).values() if s)
    assert sim.shutdown and all(s in TERMINAL for s in sim.state.values())
    assert sim.progress[-1] == 1.0  # (Sim checks that processes never exceed capacity)


def test_pbt_replaces_failed_members() -> None:
    searcher = PBTSearcher(iterate(0.4, 0.1, 0.7, 0.3), 4, 2, 2, 0.25, 0.0, 0.2)
    sim = Sim(searcher, capacity=4, exits={(1, 2): "FAILED", (3, 2): "FAILED"}).run()
    # Two members failed in round 1: both are replaced by clones of the two healthy best.
    assert {sim.parents[5], sim.parents[6]} == {2, 4}
    assert sim.shutdown and all(s in TERMINAL for s in sim.state.values())


def test_explore_keeps_values_legal() -> None:
    space = SearchSpace(
        [
            Continuous("lr", [1e-4, 1e-1], "log"),
            Discrete("units", [8, 64]),
            Ordinal("batch", [16, 32, 64]),
            Choice("act", ["relu", "tanh"]),
        ]
    )
    rng = random.Random(0)
    params = {"lr": 0.1, "units": 64, "batch": 64, "act": "tanh"}
    for _ in range(200):
        params = explore(space, params, rng, 0.2, 0.5)
        assert space.contains(params)


def test_pbt_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="truncate_fraction"):
        PBTSearcher(RandomSampler(), 4, 2, 2, truncate_fraction=0.9)
    with pytest.raises(ConfigError, match="population_size"):
        PBTSearcher(RandomSampler(), 0, 2, 2)
    assert SPACE.names == ["x"]
