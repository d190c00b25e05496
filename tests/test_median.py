"""The median stopping rule, compared at the same iteration (REFERENCE 1.8 with the 8.5 fix)."""

from __future__ import annotations

import math

import pytest

from ridgeline.samplers.base import History, TrialView
from ridgeline.sherpa.samplers.legacy import results_frame
from ridgeline.sherpa.stopping import MedianStoppingRule, StoppingRule, median_decision

NAN = math.nan


def history(curves: dict[int, list[tuple[int, float]]], lower_is_better: bool = True) -> History:
    h = History(lower_is_better=lower_is_better)
    for tid in sorted(curves):
        best = None
        for _, v in curves[tid]:
            if h.is_better(v, best):
                best = v
        last = max((s for s, _ in curves[tid]), default=None)
        view = TrialView(tid, {"x": tid / 10}, "RUNNING", best, last)
        h.trials.append(view)
        h.active[tid] = view
        h.curves[tid] = list(curves[tid])
    return h


class Trial:
    def __init__(self, id: int) -> None:
        self.id = id


def both(rule: MedianStoppingRule, tid: int, h: History) -> bool:
    """The native and the SHERPA DataFrame entry points must agree; return the decision."""
    native = rule.should_stop(tid, h)
    sherpa = rule.should_trial_stop(Trial(tid), results_frame(h), h.lower_is_better)
    assert native == sherpa
    return native


def test_young_trial_not_stopped_by_later_improvements():
    """Older trials improved after iteration 2; at iteration 2 the young trial is as good."""
    old = [(1, 1.0), (2, 0.8), (3, 0.3), (4, 0.1)]
    h = history({1: old, 2: old, 3: [(1, 0.9), (2, 0.7)]})
    rule = MedianStoppingRule()
    assert both(rule, 3, h) is False
    # SHERPA's unaligned rule compared 0.7 with the whole-history best 0.1 and stopped it;
    # had the older trials been that good by iteration 2, stopping would be right:
    early = [(1, 1.0), (2, 0.1), (3, 0.1)]
    assert both(rule, 3, history({1: early, 2: early, 3: h.curves[3]})) is True
    assert median_decision(3, h.curves, True) is False


def test_worse_than_median_at_same_iteration_is_stopped():
    h = history(
        {
            1: [(1, 1.0), (2, 0.5), (3, 0.1)],
            2: [(1, 1.0), (2, 0.6), (3, 0.2)],
            3: [(1, 1.2), (2, 0.9)],
        }
    )
    assert both(MedianStoppingRule(), 3, h) is True
    assert both(MedianStoppingRule(), 1, h) is False


def test_direction_higher_is_better():
    curves = {1: [(1, 0.5), (2, 0.9)], 2: [(1, 0.6), (2, 0.8)], 3: [(1, 0.2), (2, 0.3)]}
    assert both(MedianStoppingRule(), 3, history(curves, lower_is_better=False)) is True
    assert both(MedianStoppingRule(), 1, history(curves, lower_is_better=False)) is False
    # the same numbers with lower-is-better: trial 3 is the best
    assert both(MedianStoppingRule(), 3, history(curves, lower_is_better=True)) is False


def test_min_iterations():
    curves = {1: [(1, 0.1), (2, 0.1)], 2: [(1, 0.1), (2, 0.1)], 3: [(1, 5.0)]}
    assert both(MedianStoppingRule(min_iterations=2), 3, history(curves)) is False
    assert both(MedianStoppingRule(min_iterations=1), 3, history(curves)) is True
    # other trials below min_iterations are not compared against
    curves = {1: [(1, 0.1)], 2: [(1, 0.1), (2, 5.0), (3, 5.0)]}
    rule = MedianStoppingRule(min_iterations=2, min_trials=1)
    assert both(rule, 2, history(curves)) is False  # trial 1 never reached iteration 2


def test_min_trials():
    curves = {1: [(1, 0.1)], 2: [(1, 0.2)], 3: [(1, 0.9)]}
    assert both(MedianStoppingRule(min_trials=2), 3, history(curves)) is True
    assert both(MedianStoppingRule(min_trials=3), 3, history(curves)) is False


def test_nan_rules():
    # a trial whose values are all NaN is stopped
    curves = {1: [(1, 0.5)], 2: [(1, NAN), (2, NAN)]}
    assert both(MedianStoppingRule(), 2, history(curves)) is True
    # NaN values are skipped inside a curve
    curves = {1: [(1, 0.5)], 2: [(1, NAN), (2, 0.4)]}
    assert both(MedianStoppingRule(), 2, history(curves)) is False
    # all-NaN others count toward min_trials but not the median; no finite median: keep
    curves = {1: [(1, NAN)], 2: [(1, NAN)], 3: [(1, 0.9)]}
    assert both(MedianStoppingRule(min_trials=2), 3, history(curves)) is False
    curves = {1: [(1, NAN)], 2: [(1, 0.1)], 3: [(1, 0.9)]}
    assert both(MedianStoppingRule(min_trials=2), 3, history(curves)) is True


def test_no_data_never_stops():
    assert MedianStoppingRule().should_stop(1, History()) is False
    h = history({1: [], 2: [(1, 0.1)]})
    assert MedianStoppingRule().should_stop(1, h) is False
    import pandas as pd

    assert MedianStoppingRule().should_trial_stop(Trial(1), pd.DataFrame(), True) is False


def test_other_trial_without_points_at_or_below_i_is_ignored():
    curves = {1: [(5, 0.1), (6, 0.1)], 2: [(1, 0.9)]}
    assert both(MedianStoppingRule(), 2, history(curves)) is False


def test_median_of_even_count_and_equal_to_median_not_stopped():
    curves = {1: [(1, 0.1)], 2: [(1, 0.3)], 3: [(1, 0.2)]}
    assert both(MedianStoppingRule(), 3, history(curves)) is False  # 0.2 == median(0.1, 0.3)
    curves = {1: [(1, 0.1)], 2: [(1, 0.3)], 3: [(1, 0.21)]}
    assert both(MedianStoppingRule(), 3, history(curves)) is True


def test_finished_rows_in_dataframe_do_not_break_alignment():
    h = history({1: [(1, 1.0), (2, 0.8), (3, 0.05)], 3: [(1, 0.9), (2, 0.7)]})
    h.trials[0] = TrialView(1, {"x": 0.1}, "COMPLETED", 0.05, 3)
    del h.active[1]
    df = results_frame(h)
    assert "COMPLETED" in set(df["Status"])  # best row copied at iteration 3
    rule = MedianStoppingRule()
    assert rule.should_trial_stop(Trial(3), df, True) is False
    assert rule.should_trial_stop(3, df, True) is False  # a bare id works too


def test_base_rule_needs_an_override():
    with pytest.raises(NotImplementedError):
        StoppingRule().should_stop(1, history({1: [(1, 0.1)]}))
    with pytest.raises(NotImplementedError):
        StoppingRule().should_trial_stop(Trial(1), None, True)


def test_native_subclass_builds_no_dataframe():
    class Never(StoppingRule):
        def should_stop(self, trial_id, history):
            return False

    assert Never().should_stop(1, history({1: [(1, 0.1)]})) is False
