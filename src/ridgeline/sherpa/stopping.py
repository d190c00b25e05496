"""Stopping rules: should a running trial end early? (SHERPA's ``StoppingRule`` family).

Rules are pure functions of the learning curves. The native entry point is
``should_stop(trial_id, history)``; SHERPA's ``should_trial_stop(trial, results,
lower_is_better)`` on a results DataFrame is kept for scripts that call or override it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.sherpa.samplers.legacy import results_frame
from ridgeline.values import whole_number

if TYPE_CHECKING:
    from ridgeline.samplers.base import History

__all__ = ["MedianStoppingRule", "StoppingRule", "median_decision"]


class _TrialRef:
    """What a SHERPA rule reads of a trial: ``id`` and ``parameters``."""

    def __init__(self, id: int, parameters: dict[str, Any]) -> None:
        self.id = id
        self.parameters = parameters

    def __repr__(self) -> str:
        return f"Trial(id={self.id}, parameters={self.parameters})"


class StoppingRule:
    """Base stopping rule.

    Subclass and override **one** of:

    - ``should_stop(trial_id, history)`` (native; reads ``history.curves``, builds nothing);
    - ``should_trial_stop(trial, results, lower_is_better)`` (SHERPA's). The default
      ``should_stop`` then builds SHERPA's results DataFrame from the history on every call
      and hands it over: correct, but it costs a pass over every reported value.

    The base ``should_trial_stop`` builds nothing and raises ``NotImplementedError``, as
    SHERPA's does.
    """

    def should_stop(self, trial_id: int, history: History) -> bool:
        """True when trial ``trial_id`` should stop now."""
        if type(self).should_trial_stop is StoppingRule.should_trial_stop:
            raise NotImplementedError(
                f"{type(self).__name__} must override should_stop(trial_id, history) or "
                f"should_trial_stop(trial, results, lower_is_better)"
            )

        params = history.get(trial_id).params if 0 < trial_id <= len(history.trials) else {}
        results = results_frame(history)
        return bool(
            self.should_trial_stop(_TrialRef(trial_id, params), results, history.lower_is_better)
        )

    def should_trial_stop(self, trial: Any, results: Any, lower_is_better: bool) -> bool:
        """SHERPA's signature: ``trial`` has ``.id``; ``results`` is the results DataFrame."""
        raise NotImplementedError("StoppingRule class is not usable itself.")


def _best(values: Iterable[float], lower_is_better: bool) -> float:
    """Direction-aware best ignoring NaN; NaN when there is none."""
    best = math.nan
    for v in values:
        if math.isnan(v):
            continue
        if math.isnan(best) or (v < best if lower_is_better else v > best):
            best = v
    return best


def _median(values: Sequence[float]) -> float:
    finite = sorted(v for v in values if not math.isnan(v))
    n = len(finite)
    if n == 0:
        return math.nan
    mid = n // 2
    return finite[mid] if n % 2 else (finite[mid - 1] + finite[mid]) / 2.0


def median_decision(
    trial_id: int,
    curves: Mapping[int, Sequence[tuple[int, float]]],
    lower_is_better: bool,
    min_iterations: int = 0,
    min_trials: int = 1,
) -> bool:
    """The median rule on learning curves ``{trial id: [(step, objective), ...]}``.

    With ``i`` the trial's highest step:

    - no point yet, or ``i < min_iterations``: keep it;
    - every value NaN: stop it (SHERPA's rule);
    - each other trial whose highest step is ``>= min_iterations`` and which has a point at
      step ``<= i`` contributes its best over those points (NaN if all are NaN: it counts
      toward ``min_trials`` but not the median). This is the fix of REFERENCE 8.5: SHERPA
      compared against whole-history bests, so young trials lost to older trials' later
      improvements;
    - fewer than ``min_trials`` contributions, or no finite one: keep it;
    - otherwise stop it when its best is worse than the median of the contributions.
    """
    curve = curves.get(trial_id)
    if not curve:
        return False
    i = max(step for step, _ in curve)
    if i < min_iterations:
        return False
    own = _best((v for _, v in curve), lower_is_better)
    if math.isnan(own):
        return True
    contributions = []
    for tid, other in curves.items():
        if tid == trial_id or not other:
            continue
        if max(step for step, _ in other) < min_iterations:
            continue
        upto = [v for step, v in other if step <= i]
        if not upto:
            continue
        contributions.append(_best(upto, lower_is_better))
    if len(contributions) < min_trials:
        return False
    median = _median(contributions)
    if math.isnan(median):
        return False
    return own > median if lower_is_better else own < median


class MedianStoppingRule(StoppingRule):
    """Stop a trial whose best so far is worse than the median of the other trials' bests
    **at the same iteration** (Golovin et al., Google Vizier; SHERPA's rule with the
    alignment fix of REFERENCE 8.5). See ``median_decision`` for the exact rules.

    ``min_iterations``: a trial is never stopped before it reports this iteration, and only
    trials that reached it are compared against. ``min_trials``: how many comparison trials
    are needed before anything is stopped.
    """

    def __init__(self, min_iterations: int = 0, min_trials: int = 1) -> None:
        self.min_iterations = whole_number("min_iterations", min_iterations, minimum=0)
        self.min_trials = whole_number("min_trials", min_trials, minimum=0)

    def should_stop(self, trial_id: int, history: History) -> bool:
        return median_decision(
            trial_id, history.curves, history.lower_is_better, self.min_iterations, self.min_trials
        )

    def should_trial_stop(self, trial: Any, results: Any, lower_is_better: bool) -> bool:
        """The same rule on a SHERPA results DataFrame (``Trial-ID``, ``Iteration``,
        ``Objective``). Finished rows are harmless: they copy the trial's best value at its
        highest iteration, so they never change a best taken over ``Iteration <= i``.
        """
        if results is None or len(results) == 0:
            return False
        trial_id = int(getattr(trial, "id", trial))
        curves: dict[int, list[tuple[int, float]]] = {}
        for tid, step, value in zip(
            results["Trial-ID"], results["Iteration"], results["Objective"], strict=True
        ):
            curves.setdefault(int(tid), []).append((int(step), float(value)))
        return median_decision(
            trial_id, curves, lower_is_better, self.min_iterations, self.min_trials
        )

    def __repr__(self) -> str:
        return (
            f"MedianStoppingRule(min_iterations={self.min_iterations}, "
            f"min_trials={self.min_trials})"
        )
