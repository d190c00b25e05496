"""ASHA and adaptive ASHA (REFERENCE 4.3-4.6) driven by a small pure simulation.

No engine, no processes: ``Sim`` keeps a ``History`` the way the engine does, runs trials on a
virtual clock (one unit of length per tick) and applies the searcher's actions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import History
from ridgeline.samplers.iterate import IterateSampler
from ridgeline.samplers.random import RandomSampler
from ridgeline.searchers.adaptive import (
    AdaptiveASHASearcher,
    BracketPlan,
    bracket_plan,
    describe_plan,
)
from ridgeline.searchers.asha import WORST, ASHASearcher, rung_lengths
from ridgeline.searchers.base import Close, Pause, Searcher, Train
from ridgeline.testing.simulate import TERMINAL, brief, shifted
from ridgeline.testing.simulate import UNIT_SPACE as SPACE
from ridgeline.testing.simulate import Simulation as Sim


def iterate(*xs: float) -> IterateSampler:
    return IterateSampler([{"x": x} for x in xs])


HAND_XS = (0.3, 0.5, 0.8, 0.1, 0.6, 0.2)


def hand_searcher(xs: tuple[float, ...] = HAND_XS, **kw: Any) -> ASHASearcher:
    """d 2, lengths 1, 2, 4; 6 trials, 2 at once; x in ``xs`` order."""
    options: dict[str, Any] = dict(
        max_trials=6, max_length=4, num_rungs=3, divisor=2, max_concurrent_trials=2
    )
    options.update(kw)
    return ASHASearcher(iterate(*xs), **options)


# -- rungs ------------------------------------------------------------------------------------
def test_rung_lengths_examples_of_4_3() -> None:
    assert rung_lengths(9000, 3, 3) == [1000, 3000, 9000]
    assert rung_lengths(12, 3, 3) == [1, 4, 12]
    assert rung_lengths(100, 4, 2) == [25, 100]
    assert rung_lengths(1000, 4, 4) == [15, 62, 250, 1000]
    assert rung_lengths(1, 4, 3) == [1, 1, 1]  # never below 1
    with pytest.raises(ConfigError, match="divisor"):
        rung_lengths(100, 1, 3)


def test_initial_trials_of_4_3() -> None:
    assert hand_searcher().concurrency == 2
    assert hand_searcher(max_concurrent_trials=16).concurrency == 6  # min(mct, max_trials)
    # Unlimited: d**(n-1) clamped to [1, max_trials].
    assert ASHASearcher(RandomSampler(), 40, 27, 3, 3, 0).concurrency == 9
    assert ASHASearcher(RandomSampler(), 5, 27, 3, 3, 0).concurrency == 5


# -- promotion-based ASHA (4.4) -----------------------------------------------------------------
def test_promotions_by_hand() -> None:
    """x = 0.3, 0.5, 0.8, 0.1, 0.6, 0.2; metric x + 1/length; rungs 1, 2, 4; d 2.

    t1 arrives alone (floor(1/2) = 0: no promotion, paused). t2 is worse, but two arrivals
    promote one: the paused t1 at index floor(1/2) = 0 is relaunched to 2. t4 and t6 are
    promoted on arrival. When t6 fills rung 0 (6 = max_trials) with no trial still owed to
    it, rung 0's unpromoted trials close; rung 1 closes when t6 reports there.
    """
    sim = Sim(hand_searcher(), capacity=10).run()
    assert sim.decisions() == [
        (1, 1, 1, [("P", 1)]),
        (1, 2, 1, [("P", 2), ("T", 1, 2)]),
        (2, 1, 2, [("P", 1)]),
        (2, 3, 1, [("P", 3)]),
        (3, 4, 1, [("T", 4, 2)]),
        (3, 5, 1, [("P", 5)]),
        (4, 4, 2, [("T", 4, 4)]),
        (4, 6, 1, [("T", 6, 2), ("C", 2), ("C", 5), ("C", 3)]),
        (5, 6, 2, [("C", 6), ("C", 1)]),
        (6, 4, 4, [("C", 4), ("X",)]),
    ]
    searcher = sim.searcher
    assert isinstance(searcher, ASHASearcher)
    rungs = searcher.state_dict()["rungs"]
    assert [[t for t, _ in r["metrics"]] for r in rungs] == [[4, 6, 1, 2, 5, 3], [4, 6, 1], [4]]
    assert [r["promoted"] for r in rungs] == [[1, 4, 6], [4], []]
    assert rungs[0]["metrics"][0] == [4, pytest.approx(1.1)]
    # The paused trial is the one promoted later, relaunched from its checkpoint.
    assert sim.relaunched == [(1, 2)]
    assert sim.peaks == {0: 2}
    assert all(s == "COMPLETED" for s in sim.state.values()) and len(sim.state) == 6
    assert sim.progress[-1] == 1.0


def test_larger_is_better_negates() -> None:
    """smaller_is_better: false gives the same decisions on the negated metric."""

    def negated(params: dict[str, Any], length: int) -> float:
        return -shifted(params, length)

    low = Sim(hand_searcher(), capacity=10).run()
    high = Sim(hand_searcher(), capacity=10, objective=negated, lower_is_better=False).run()
    assert high.decisions() == low.decisions()


def test_ties_go_after_equal_values() -> None:
    """4.4 inserts after equals: the second of two equal scores is not promoted; the first
    (paused) one is. Rung 0 is then full, so the second closes for good at once."""
    searcher = ASHASearcher(iterate(0.5, 0.5), 2, 4, 2, 2, 2)
    sim = Sim(searcher, capacity=4).run()
    assert sim.decisions()[:2] == [(2, 1, 2, [("P", 1)]), (2, 2, 2, [("T", 1, 4), ("C", 2)])]


def test_no_promotion_before_d_arrivals() -> None:
    """d = 4: floor(s+1 / 4) is 0 for the first three arrivals, however good."""
    searcher = ASHASearcher(iterate(0.4, 0.3, 0.2, 0.1, 0.9), 5, 16, 2, 4, 5)
    sim = Sim(searcher, capacity=5).run()
    first = sim.decisions()[:5]
    assert [d[3] for d in first] == [
        [("P", 1)],
        [("P", 2)],
        [("P", 3)],
        [("T", 4, 16)],  # fourth arrival, best so far: promoted at once
        [("C", 3), ("C", 2), ("C", 1), ("C", 5)],  # rung 0 full: the others close, best first
    ]


def test_concurrency_budget_and_every_trial_ends() -> None:
    searcher = ASHASearcher(RandomSampler(), 40, 27, 3, 3, 5)
    sim = Sim(searcher, capacity=100, seed=3).run()
    assert sim.peaks == {0: 5}  # the searcher's own limit, with process slots to spare
    assert len(sim.state) == 40 and searcher.created == 40
    assert all(s == "COMPLETED" for s in sim.state.values())
    assert sim.shutdown and searcher.done
    assert len(searcher.rungs[0]) == 40
    assert searcher.lengths == [3, 9, 27]
    assert sim.relaunched  # some paused trials were promoted later
    for trial, length in sim.relaunched:
        assert trial in searcher.rungs[searcher.lengths.index(length) - 1].promoted
    assert sim.progress == sorted(sim.progress) and sim.progress[-1] == 1.0
    # Every promoted trial reported in the next rung; at least floor(n/d) were promoted.
    for below, above in zip(searcher.rungs, searcher.rungs[1:], strict=False):
        assert sorted(above.trials) == sorted(below.promoted)
        assert len(below.promoted) >= len(below) // 3
    # Fewer process slots than the searcher's limit: still finishes.
    small = Sim(ASHASearcher(RandomSampler(), 40, 27, 3, 3, 5), capacity=2, seed=3).run()
    assert small.peaks[0] <= 5 and small.shutdown
    assert all(s == "COMPLETED" for s in small.state.values())


def test_progress_formula() -> None:
    searcher = hand_searcher()
    sim = Sim(searcher, capacity=10)
    sim.run()
    # After the 6th rung-0 report rung 0 is full: max(6/7.2, closed/6).
    assert searcher.progress() == 1.0
    fresh = hand_searcher()
    fresh.bind(SPACE, History(), random.Random(0))
    assert fresh.progress() == 0.0
    fresh.fill(2)
    fresh.on_trial_created(1, 1)
    fresh.on_report(1, 1, 0.5)
    assert fresh.progress() == pytest.approx(1 / 7.2)


# -- early exits and invalid hyperparameters ----------------------------------------------------
def test_failed_trial_gets_worst_metric_and_resolves_promotions() -> None:
    """t2 fails at rung 0: it counts as the worst score, which promotes the paused t1."""
    sim = Sim(hand_searcher(), capacity=10, exits={(2, 1): "FAILED"}).run()
    assert sim.decisions()[:2] == [(1, 1, 1, [("P", 1)]), (1, 2, "FAILED", [("T", 1, 2)])]
    searcher = sim.searcher
    assert isinstance(searcher, ASHASearcher)
    assert [2, WORST] in searcher.state_dict()["rungs"][0]["metrics"]
    assert sim.state[2] == "FAILED" and len(sim.state) == 6  # it counts toward max_trials
    assert sim.shutdown and all(s in TERMINAL for s in sim.state.values())


def test_promoting_an_exited_trial_resolves_at_once() -> None:
    """A paused trial that ended (killed by the user) and is then promoted takes the worst
    score in the next rung at once (Determined's recursive promoteAsync)."""
    searcher = ASHASearcher(iterate(0.1, 0.2, 0.3, 0.4), 4, 4, 3, 2, 4)
    searcher.bind(SPACE, History(), random.Random(0))
    assert [brief(a) for a in searcher.on_slots_free(4)] == [("N", r) for r in (1, 2, 3, 4)]
    for t in (1, 2, 3, 4):
        assert searcher.on_trial_created(t, t) == [Train(t, 1)]
    assert searcher.on_report(1, 1, 1.0) == [Pause(1)]
    assert searcher.on_trial_exited(1, "CANCELED") == []
    # t2 is worse: the count of promotions grows to 1 and t1 (index 0) is due.
    assert searcher.on_report(2, 1, 2.0) == [Pause(2)]
    assert searcher.rung_of[1] == 1
    assert searcher.state_dict()["rungs"][1]["metrics"] == [[1, WORST]]
    # The next rung-1 arrival beats the worst score and is promoted.
    assert searcher.on_report(3, 1, 0.5) == [Train(3, 2)]
    assert searcher.on_report(3, 2, 0.5) == [Train(3, 4)]


def test_invalid_hp_is_replaced_and_not_counted() -> None:
    searcher = ASHASearcher(RandomSampler(), 8, 4, 3, 2, 3)
    sim = Sim(searcher, capacity=10, exits={(2, 1): "INVALID_HP", (5, 1): "INVALID_HP"}).run()
    assert len(sim.state) == 10 and searcher.invalid == 2
    assert sim.state[2] == sim.state[5] == "INVALID_HP"
    valid = [t for t, s in sim.state.items() if s != "INVALID_HP"]
    assert sorted(searcher.rungs[0].trials) == valid
    assert sim.shutdown and all(s in TERMINAL for s in sim.state.values())
    assert sim.progress[-1] == 1.0


def test_invalid_hp_after_a_promotion_removes_every_metric() -> None:
    """t1 reached rung 1 (length 2) before rejecting its hyperparameters."""
    searcher = hand_searcher((*HAND_XS, 0.7))
    sim = Sim(searcher, capacity=10, exits={(1, 2): "INVALID_HP"}).run()
    assert all(1 not in rung.trials for rung in searcher.rungs)
    assert searcher.invalid == 1 and len(sim.state) == 7  # replaced by a 7th trial
    assert len(searcher.rungs[0]) == 6
    assert sim.shutdown and all(s in TERMINAL for s in sim.state.values())


def test_sampler_running_dry_closes_out() -> None:
    """Three configurations for a budget of 10: rung 0 never holds max_trials metrics, so
    close-out starts when the sampler is exhausted."""
    searcher = ASHASearcher(iterate(0.3, 0.2, 0.1), 10, 4, 2, 2, 2)
    sim = Sim(searcher, capacity=4).run()
    assert len(sim.state) == 3 and sim.shutdown
    assert all(s == "COMPLETED" for s in sim.state.values())
    assert searcher.progress() == 1.0


def test_user_added_trial_runs_full_length_outside_the_rungs() -> None:
    searcher = hand_searcher()
    searcher.bind(SPACE, History(), random.Random(0))
    assert searcher.on_trial_created(7, -1) == [Train(7, 4)]
    assert searcher.on_report(7, 2, 0.1) == []
    assert searcher.on_report(7, 4, 0.1) == [Close(7)]
    assert searcher.on_trial_exited(7, "COMPLETED") == []
    assert all(len(r) == 0 for r in searcher.rungs) and searcher.created == 0


# -- stopping-based ASHA (4.5) ------------------------------------------------------------------
def test_stop_once_by_hand() -> None:
    """c = max(floor(N/d), 1) with N including the new score: the first arrival in a rung
    always continues; a stop or a top-rung completion makes room for a new trial."""
    searcher = hand_searcher(max_trials=5, stop_once=True)
    sim = Sim(searcher, capacity=10).run()
    assert sim.decisions() == [
        (1, 1, 1, [("T", 1, 2)]),
        (1, 2, 1, [("S", 2)]),
        (2, 1, 2, [("T", 1, 4)]),
        (2, 3, 1, [("S", 3)]),
        (3, 4, 1, [("T", 4, 2)]),
        (4, 1, 4, [("C", 1)]),
        (4, 4, 2, [("T", 4, 4)]),
        (5, 5, 1, [("S", 5)]),
        (6, 4, 4, [("C", 4), ("X",)]),
    ]
    assert sim.state == {1: "COMPLETED", 2: "STOPPED", 3: "STOPPED", 4: "COMPLETED", 5: "STOPPED"}
    assert not sim.relaunched  # nothing is ever paused
    assert [rung.trials for rung in searcher.rungs] == [[4, 1, 2, 5, 3], [4, 1], [4, 1]]


def test_stop_once_ties_go_before_equal_values() -> None:
    searcher = ASHASearcher(iterate(0.5, 0.5), 2, 4, 2, 2, 2, stop_once=True)
    sim = Sim(searcher, capacity=4).run()
    # The second equal score is inserted first: index 0 < max(floor(2/2), 1) -> continues.
    assert sim.decisions()[:2] == [(2, 1, 2, [("T", 1, 4)]), (2, 2, 2, [("T", 2, 4)])]


def test_stop_once_early_exit_counts_worst() -> None:
    searcher = hand_searcher(max_trials=5, stop_once=True)
    sim = Sim(searcher, capacity=10, exits={(2, 1): "FAILED"}).run()
    assert [2, WORST] in searcher.state_dict()["rungs"][0]["metrics"]
    assert sim.state[2] == "FAILED" and len(sim.state) == 5 and sim.shutdown


def test_stop_once_concurrency_and_budget() -> None:
    searcher = ASHASearcher(RandomSampler(), 30, 27, 3, 3, 4, stop_once=True)
    sim = Sim(searcher, capacity=50, seed=5).run()
    assert sim.peaks == {0: 4} and len(sim.state) == 30 and sim.shutdown
    assert set(sim.state.values()) == {"COMPLETED", "STOPPED"}
    assert sim.progress[-1] == 1.0


# -- state round trip ---------------------------------------------------------------------------
def _asha() -> Searcher:
    return ASHASearcher(RandomSampler(), 20, 27, 3, 3, 4)


def _asha_stop() -> Searcher:
    return ASHASearcher(RandomSampler(), 20, 27, 3, 3, 4, stop_once=True)


def _asha_iterate() -> Searcher:
    return ASHASearcher(iterate(*[i / 20 for i in range(20, 0, -1)]), 16, 8, 3, 2, 3)


def _adaptive() -> Searcher:
    return AdaptiveASHASearcher(RandomSampler(), 30, 64, max_concurrent_trials=5)


@pytest.mark.parametrize("factory", [_asha, _asha_stop, _asha_iterate, _adaptive])
def test_state_round_trip_continues_identically(factory: Callable[[], Searcher]) -> None:
    exits = {(3, 1): "INVALID_HP", (6, 1): "FAILED"}
    whole = Sim(factory(), capacity=8, seed=11, exits=exits).run()
    assert whole.shutdown
    for after in (1, 5, 12, whole.reports - 1):
        resumed = Sim(
            factory(), capacity=8, seed=11, exits=exits, restart_after=after, factory=factory
        ).run()
        assert resumed.log == whole.log, f"diverged after restoring at report {after}"
        assert resumed.state == whole.state


# -- adaptive ASHA (4.6) ------------------------------------------------------------------------
def test_bracket_plan_example_1() -> None:
    assert bracket_plan(100, 10) == [
        BracketPlan(2, 7, 8, (25, 100)),
        BracketPlan(1, 3, 8, (100,)),
    ]


def test_bracket_plan_example_2() -> None:
    assert bracket_plan(1000, 100) == [
        BracketPlan(4, 70, 6, (15, 62, 250, 1000)),
        BracketPlan(3, 22, 5, (62, 250, 1000)),
        BracketPlan(2, 8, 5, (250, 1000)),
    ]


def test_bracket_plan_modes_overrides_and_unlimited() -> None:
    assert [p.num_rungs for p in bracket_plan(1000, 100, mode="aggressive")] == [4]
    assert [p.num_rungs for p in bracket_plan(1000, 100, mode="conservative")] == [4, 3, 2, 1]
    assert [p.num_rungs for p in bracket_plan(1000, 100, bracket_rungs=[2, 3])] == [3, 2]
    # max_concurrent_trials 0: max(last bracket's trials, int(d)) each.
    assert [p.max_concurrent_trials for p in bracket_plan(1000, 100, max_concurrent_trials=0)] == [
        8,
        8,
        8,
    ]
    # More brackets than slots: max(mct, #brackets), one each.
    assert [p.max_concurrent_trials for p in bracket_plan(1000, 100, max_concurrent_trials=2)] == [
        1,
        1,
        1,
    ]
    # Floating-point logs, as upstream: log(1000)/log(10) is just under 3.
    assert [p.num_rungs for p in bracket_plan(1000, 1000, divisor=10)] == [3, 2]
    with pytest.raises(ConfigError, match="mode"):
        bracket_plan(1000, 100, mode="bold")


def test_describe_plan() -> None:
    lines = describe_plan(1000, 100, unit="batches")
    assert lines[0] == "Brackets: 3 (mode standard, divisor 4); 100 trials in all"
    assert "Bracket 1: 4 rungs at 15, 62, 250, 1000 batches; 70 trials, up to 6 at once" in lines
    assert "Bracket 3: 2 rungs at 250, 1000 batches; 8 trials, up to 5 at once" in lines
    assert "Bracket 2: 1 rung at 100; 3 trials, up to 8 at once" in describe_plan(100, 10)


def test_adaptive_example_1_starts_all_ten_at_once() -> None:
    searcher = AdaptiveASHASearcher(RandomSampler(), 10, 100)
    sim = Sim(searcher, capacity=16, group=lambda t: searcher.owner[t])
    sim.apply("start", None, None, searcher.start())
    sim.fill()
    assert len(sim.state) == 10 and len(sim.running) == 10
    sim.run()
    owners = [searcher.owner[t] for t in sorted(searcher.owner)]
    assert owners.count(0) == 7 and owners.count(1) == 3
    assert [len(b.rungs[0]) for b in searcher.brackets] == [7, 3]
    assert sim.peaks == {0: 7, 1: 3}
    assert sim.shutdown and searcher.done and sim.progress[-1] == 1.0
    assert all(s == "COMPLETED" for s in sim.state.values())
    # Bracket 1 (one rung) trains straight to 100; bracket 0 to 25 first.
    for t, b in searcher.owner.items():
        assert sim.history.curves[t][0][0] == (25 if b == 0 else 100)


def test_adaptive_example_2_bracket_concurrency() -> None:
    searcher = AdaptiveASHASearcher(RandomSampler(), 100, 1000)
    sim = Sim(searcher, capacity=16, seed=2, group=lambda t: searcher.owner[t]).run()
    assert sim.peaks == {0: 6, 1: 5, 2: 5}
    owners = list(searcher.owner.values())
    assert [owners.count(b) for b in range(3)] == [70, 22, 8]
    assert sim.shutdown and all(s == "COMPLETED" for s in sim.state.values())
    # Scarce process slots are shared: every bracket still gets its trials.
    scarce = AdaptiveASHASearcher(RandomSampler(), 100, 1000)
    run = Sim(scarce, capacity=3, seed=2, group=lambda t: scarce.owner[t]).run()
    owners = list(scarce.owner.values())
    assert [owners.count(b) for b in range(3)] == [70, 22, 8] and run.shutdown
    assert set(run.peaks) == {0, 1, 2}


def test_adaptive_routes_invalid_hp_and_user_trials() -> None:
    searcher = AdaptiveASHASearcher(RandomSampler(), 10, 100, max_concurrent_trials=4)
    sim = Sim(searcher, capacity=4, exits={(1, 25): "INVALID_HP", (2, 100): "INVALID_HP"})
    sim.run()
    assert len(sim.state) == 12 and sim.shutdown
    assert [b.invalid for b in searcher.brackets] == [1, 1]
    assert sorted(sim.requests) == sorted(set(sim.requests))
    user = AdaptiveASHASearcher(RandomSampler(), 10, 100)
    user.bind(SPACE, History(), random.Random(0))
    assert user.on_trial_created(50, -1) == [Train(50, 100)]
    assert user.on_report(50, 100, 0.3) == [Close(50)]


def test_nan_scores_worst() -> None:
    """A diverged trial (NaN) ranks below every number, whatever the direction."""
    for lower in (True, False):
        searcher = ASHASearcher(iterate(0.1, 0.2), 2, 4, 2, 2, 2)
        searcher.bind(SPACE, History(lower_is_better=lower), random.Random(0))
        searcher.fill(2)
        searcher.on_trial_created(1, 1)
        searcher.on_trial_created(2, 2)
        assert searcher.on_report(1, 2, float("nan")) == [Pause(1)]
        assert searcher.on_report(2, 2, 5.0) == [Train(2, 4), Close(1)]
        assert searcher.state_dict()["rungs"][0]["metrics"][1] == [1, WORST]
