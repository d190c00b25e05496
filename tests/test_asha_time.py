"""Determined 0.38 ASHA: stopping over a time metric, driven by validation reports (REFERENCE
4.3, 4.5-4.7). The searcher is driven by hand here: reports arrive at whatever times the
script reports, not at rung lengths."""

from __future__ import annotations

import json
import logging
import random
import warnings
from typing import Any

import pytest

from ridgeline.config import parse_config
from ridgeline.config.model import DeprecatedConfigWarning
from ridgeline.config.parse import describe_search
from ridgeline.engine.timemetric import TimeMetric
from ridgeline.experiment import build_searcher
from ridgeline.samplers.base import History
from ridgeline.samplers.iterate import IterateSampler
from ridgeline.samplers.random import RandomSampler
from ridgeline.searchers.asha_time import TimeAdaptiveASHASearcher, TimeASHASearcher
from ridgeline.searchers.base import Action, Searcher, Train
from ridgeline.testing.simulate import UNIT_SPACE as SPACE
from ridgeline.testing.simulate import brief


class Hand:
    """Drives a searcher as the engine would: creates are announced at once."""

    def __init__(self, searcher: Searcher, lower_is_better: bool = True) -> None:
        self.searcher = searcher
        searcher.bind(SPACE, History(lower_is_better=lower_is_better), random.Random(0))
        self.trials = 0

    def _apply(self, actions: list[Action]) -> list[tuple[Any, ...]]:
        out = []
        for action in actions:
            out.append(brief(action))
            if out[-1][0] == "N":
                self.trials += 1
                out += [brief(a) for a in self.searcher.on_trial_created(self.trials, out[-1][1])]
        return out

    def free(self, n: int) -> list[tuple[Any, ...]]:
        return self._apply(self.searcher.on_slots_free(n))

    def report(self, trial: int, time: int, value: float) -> list[tuple[Any, ...]]:
        return self._apply(self.searcher.on_report(trial, time, value))

    def exit(self, trial: int, status: str) -> list[tuple[Any, ...]]:
        return self._apply(self.searcher.on_trial_exited(trial, status))


def xs(*values: float) -> IterateSampler:
    return IterateSampler([{"x": x} for x in values])


def small(**kw: Any) -> TimeASHASearcher:
    """max_time 40, 3 rungs, divisor 2: rungs at 10, 20, 40; 4 trials, 2 at once."""
    options: dict[str, Any] = dict(
        max_trials=4, max_time=40, num_rungs=3, divisor=2, max_concurrent_trials=2
    )
    options.update(kw)
    return TimeASHASearcher(xs(0.3, 0.5, 0.1, 0.4, 0.9), **options)


def test_rungs_sit_at_max_time_over_powers_of_the_divisor() -> None:
    assert small().lengths == [10, 20, 40]
    assert TimeASHASearcher(RandomSampler(), 10, 100, 3).lengths == [6, 25, 100]
    # Determined's adaptive layout over max_time (4.6 example 1): brackets [2, 1].
    adaptive = TimeAdaptiveASHASearcher(RandomSampler(), 10, 100)
    assert [(p.num_rungs, p.max_trials, p.rung_lengths) for p in adaptive.plan] == [
        (2, 7, (25, 100)),
        (1, 3, (100,)),
    ]


def test_stopping_rule_by_hand() -> None:
    """Lower is better. The first arrival in a rung goes on (max(floor(1/2), 1) = 1); one report
    can pass several rungs; the top rung ends the searcher's interest (Close); an errored trial
    carries the worst score where it was; the budget counts every valid trial."""
    hand = Hand(small())
    assert hand.free(2) == [("N", 1), ("T", 1, 40), ("N", 2), ("T", 2, 40)]
    assert hand.report(1, 5, 0.3) == []  # below rung 0: nothing to judge
    assert hand.report(1, 10, 0.3) == []  # alone in rung 0: goes on
    assert hand.report(2, 12, 0.5) == [("S", 2)]  # index 1 >= max(floor(2/2), 1)
    assert hand.report(2, 20, 0.1) == []  # stopped: later reports change nothing
    assert hand.report(1, 40, 0.2) == [("C", 1)]  # passes rung 1 and reaches the top at once
    assert hand.exit(2, "STOPPED") == []
    assert hand.free(1) == [("N", 3), ("T", 3, 40)]
    assert hand.report(3, 10, 0.1) == []  # best of three in rung 0: floor(3/2) = 1 go on
    assert hand.exit(3, "FAILED") == []  # worst score in rung 1, where it was heading
    assert hand.exit(1, "COMPLETED") == []
    assert hand.free(2) == [("N", 4), ("T", 4, 40)]  # the budget: 4 valid trials
    assert hand.report(4, 30, 0.4) == [("S", 4), ("X",)]  # index 2 >= floor(4/2) in rung 0
    searcher = hand.searcher
    assert isinstance(searcher, TimeASHASearcher)
    assert [rung.trials for rung in searcher.rungs] == [[3, 1, 4, 2], [1, 3], [1]]
    assert searcher.progress() == pytest.approx(4 / 4.8)


def test_ties_go_before_equal_values_and_larger_is_better_negates() -> None:
    hand = Hand(small(), lower_is_better=False)
    hand.free(2)
    assert hand.report(1, 10, 7.0) == []
    assert hand.report(2, 10, 7.0) == []  # inserted before the equal score: index 0 goes on
    assert hand.report(2, 20, 3.0) == []
    assert hand.report(1, 20, 5.0) == []  # 5 beats 3 when larger is better
    searcher = hand.searcher
    assert isinstance(searcher, TimeASHASearcher)
    assert searcher.rungs[1].trials == [1, 2]


def test_invalid_hp_is_replaced_and_does_not_count() -> None:
    hand = Hand(small(max_trials=2))
    hand.free(2)
    hand.report(1, 10, 0.3)
    assert hand.exit(1, "INVALID_HP") == []
    searcher = hand.searcher
    assert isinstance(searcher, TimeASHASearcher)
    assert [len(r) for r in searcher.rungs] == [0, 0, 0]
    assert hand.free(1) == [("N", 3), ("T", 3, 40)]  # a third trial replaces it


def test_a_trial_that_ends_on_its_own_frees_its_slot_and_the_search_ends() -> None:
    hand = Hand(small(max_trials=2, max_concurrent_trials=1))
    assert hand.free(2) == [("N", 1), ("T", 1, 40)]
    hand.report(1, 30, 0.3)  # its script stops at 30, short of max_time
    assert hand.exit(1, "COMPLETED") == []
    assert hand.free(1) == [("N", 2), ("T", 2, 40)]
    assert hand.report(2, 40, 0.2) == [("C", 2), ("X",)]


def test_user_added_trials_run_to_max_time_outside_the_rungs() -> None:
    hand = Hand(small())
    searcher = hand.searcher
    assert searcher.on_trial_created(9, -1) == [Train(9, 40)]
    assert searcher.on_report(9, 20, 0.0) == []
    assert [brief(a) for a in searcher.on_report(9, 40, 0.0)] == [("C", 9)]


def test_state_round_trips_through_json_and_decisions_carry_on() -> None:
    """A coordinator restarted mid-search decides as the old one would have."""
    first = Hand(small())
    first.free(2)
    first.report(1, 10, 0.3)
    first.report(2, 10, 0.5)
    saved = json.loads(json.dumps(first.searcher.state_dict()))
    second = Hand(small())
    second.searcher.load_state_dict(saved)
    second.trials = first.trials
    assert second.searcher.state_dict() == first.searcher.state_dict()
    for hand in (first, second):
        assert hand.report(1, 40, 0.2) == [("C", 1)]
        assert hand.exit(2, "STOPPED") == []
        assert hand.free(1) == [("N", 3), ("T", 3, 40)]
    adaptive = TimeAdaptiveASHASearcher(RandomSampler(), 10, 100)
    Hand(adaptive).free(3)
    again = TimeAdaptiveASHASearcher(RandomSampler(), 10, 100)
    again.load_state_dict(json.loads(json.dumps(adaptive.state_dict())))
    assert again.state_dict() == adaptive.state_dict()


# -- the coordinator's reading of validation reports ------------------------------------------
def test_time_metric_is_read_from_validations_and_problems_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = TimeMetric("batches", "x")
    assert reader.searcher_input(1, {"x": 2.5, "batches": 30}) == (30, 2.5)
    assert reader.searcher_input(1, {"x": 2.5, "batches": 30.9}) == (30, 2.5)  # truncated
    assert reader.searcher_input(1, {"loss": 1.0}) is None  # not the searcher's report
    assert reader.problem() is None
    caplog.set_level(logging.WARNING, "ridgeline")
    fresh = TimeMetric("batches", "x")
    for _ in range(3):
        assert fresh.searcher_input(2, {"x": 1.0}) is None
        assert fresh.searcher_input(2, {"x": 1.0, "batches": "ten"}) is None
        assert fresh.searcher_input(2, {"x": 1.0, "batches": -1}) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "without the time metric 'batches' (searcher.time_metric)" in messages[0]
    assert "'ten', which is not a number >= 0" in messages[1]
    problem = fresh.problem() or ""
    assert "never a usable time metric 'batches'" in problem


# -- config -----------------------------------------------------------------------------------
def config(**searcher: Any) -> dict[str, Any]:
    return {
        "entrypoint": "python3 train.py",
        "hyperparameters": {"increment_by": {"type": "int", "minval": 1, "maxval": 8}},
        "searcher": {
            "name": "adaptive_asha",
            "metric": "x",
            "max_trials": 10,
            "time_metric": "batches",
            "max_time": 100,
            **searcher,
        },
    }


def test_the_upstream_stage3_config_builds_a_stopping_searcher() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Determined's own 0.38 config warns of nothing
        parsed = parse_config(config())
    searcher = build_searcher(parsed)
    assert isinstance(searcher, TimeAdaptiveASHASearcher)
    halving = build_searcher(parse_config(config(name="async_halving", num_rungs=2)))
    assert isinstance(halving, TimeASHASearcher) and halving.lengths == [25, 100]


def test_preview_says_how_0_38_asha_runs() -> None:
    lines = describe_search(parse_config(config()))
    text = "\n".join(lines)
    assert "Determined 0.38 style" in text and "'batches'" in text
    assert "asked to stop" in text and "should_preempt()" in text
    assert "Bracket 1: 2 rungs at batches 25, 100; 7 trials" in text
    assert "checked but not run" not in text


def test_mixed_and_deprecated_fields_warn_as_determined_0_38() -> None:
    with pytest.warns(DeprecatedConfigWarning, match="max_length is deprecated") as caught:
        parsed = parse_config(config(max_length={"batches": 50}))
    assert isinstance(build_searcher(parsed), TimeAdaptiveASHASearcher)
    assert build_searcher(parsed).plan[0].rung_lengths == (25, 100)  # type: ignore[attr-defined]
    assert "rungs follow max_time" in str(caught[0].message)
    with pytest.warns(DeprecatedConfigWarning, match="stop_once: false is ignored"):
        parse_config(config(stop_once=False))
    with pytest.warns(DeprecatedConfigWarning, match="stop_once is deprecated"):
        parse_config(config(stop_once=True))


def test_budget_refusals_say_what_to_set() -> None:
    from ridgeline.config.checks import InvalidConfig

    bare = config()
    for key in ("time_metric", "max_time"):
        del bare["searcher"][key]
    with pytest.raises(InvalidConfig) as missing:
        parse_config(bare)
    assert "or time_metric and max_time, Determined 0.38 style" in str(missing.value)
    half = config()
    del half["searcher"]["max_time"]
    with pytest.raises(InvalidConfig) as one:
        parse_config(half)
    assert "time_metric and max_time go together" in str(one.value)
    assert "not available in this version" not in str(one.value)
    with pytest.raises(InvalidConfig, match="time_metric and max_time go together"):
        parse_config(config(max_time=None, max_length={"batches": 100}))  # not half of each
