"""Stopping-based ASHA driven by a time metric: Determined 0.38's ``adaptive_asha`` and
``async_halving`` (REFERENCE 4.5, 4.7).

The script trains to its own length and reports validation metrics that carry the searcher
metric and the time metric; the coordinator turns each such report into ``on_report(trial,
time, metric)``. Rungs sit at ``max_time / divisor**k``. One report may pass several rungs: the
trial is ranked in each rung it reached, from its current one upward, and stopped at the first
rung where it is not among the best ``max(floor(N/d), 1)``. Reaching the top rung ends the
searcher's interest in it (it completes when its script ends). Nothing is paused or promoted.

Each trial gets one operation to ``max_time`` (``Train``), so scripts that still loop over
``searcher.operations()`` train to the horizon and end; its ``report_completed`` counts as a
report at ``max_time``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ridgeline.samplers.base import Sampler
from ridgeline.searchers.adaptive import AdaptiveASHASearcher, BracketPlan
from ridgeline.searchers.asha import WORST, ASHABracket
from ridgeline.searchers.base import Action, Close, Shutdown, Stop
from ridgeline.searchers.validation import number_text
from ridgeline.store.records import FAILED, INVALID_HP

__all__ = ["TimeASHASearcher", "TimeAdaptiveASHASearcher", "describe_time_plan"]


class TimeASHASearcher(ASHABracket):
    """One bracket of stopping ASHA over a time metric (``max_time`` is the top rung).

    Actions: ``Create``; ``Train(t, max_time)`` once per trial (its one operation);
    ``Stop(t)`` when t fails a rung's cut; ``Close(t)`` when t reaches the top
    rung; ``Shutdown`` once no trial will be created and every trial is decided or ended.
    Trials the user adds train to ``max_time`` outside the rungs and the budget."""

    def __init__(
        self,
        sampler: Sampler,
        max_trials: int,
        max_time: int,
        num_rungs: int,
        divisor: float = 4,
        max_concurrent_trials: int = 16,
    ) -> None:
        super().__init__(
            sampler, max_trials, max_time, num_rungs, divisor, max_concurrent_trials, stop_once=True
        )

    # -- events ------------------------------------------------------------------------------
    def train_length(self, trial: int) -> int:
        """Every trial's one operation trains to ``max_time``."""
        return self.max_length

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        """``step`` is the trial's time (the time metric's value at this report)."""
        if trial in self.extra:
            return [Close(trial)] if step >= self.max_length else []
        if trial not in self.outstanding:
            return []  # decided (stopped, at the top) or ended: nothing more to judge
        return self._walk(trial, step, self._score(objective)) + self._settle()

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        if trial in self.extra or trial not in self.rung_of or trial in self.ended:
            return []
        self.ended.add(trial)
        if status == INVALID_HP and trial not in self.finished:
            for rung in self.rungs:  # it does not count: its metrics leave, it is replaced
                rung.remove(trial)
            del self.rung_of[trial]
            self.invalid += 1
        elif status == FAILED and trial in self.outstanding:
            # Exited early: the worst score in the rung it was training for (not judged).
            self.rungs[self.rung_of[trial]].insert(trial, WORST, after_equal=False)
        self.outstanding.discard(trial)  # a trial that ended on its own frees its slot
        self.finished.add(trial)
        return self._settle()

    # -- decisions ---------------------------------------------------------------------------
    def _walk(self, trial: int, time: int, score: float) -> list[Action]:
        """Rank the trial in every rung its time reached, from its current one upward."""
        top = self.num_rungs - 1
        for k in range(self.rung_of[trial], self.num_rungs):
            self.rung_of[trial] = k
            if time < self.lengths[k]:
                return []
            rung = self.rungs[k]
            index = rung.insert(trial, score, after_equal=False)
            if k == top:
                self.outstanding.discard(trial)
                self.finished.add(trial)
                return [Close(trial)]
            keep = max(int(len(rung) / self.divisor), 1)
            if index >= keep:
                self.outstanding.discard(trial)
                self.finished.add(trial)
                return [
                    Stop(
                        trial,
                        f"ASHA: not in the top 1/{number_text(self.divisor)} of rung {k} "
                        f"(time {self.lengths[k]})",
                    )
                ]
            rung.promoted.add(trial)
        return []

    def _settle(self) -> list[Action]:
        if not self.done and self.creating_done and not self.outstanding and not self.pending:
            self.done = True
            return [Shutdown("ASHA: every trial has been stopped or has finished")]
        return []


class TimeAdaptiveASHASearcher(AdaptiveASHASearcher):
    """0.38 ``adaptive_asha``: Determined's bracket layout (4.6) over ``max_time``, each
    bracket a ``TimeASHASearcher``."""

    def __init__(
        self,
        sampler: Sampler,
        max_trials: int,
        max_time: int,
        divisor: float = 4,
        max_rungs: int = 5,
        mode: str = "standard",
        bracket_rungs: Sequence[int] | None = None,
        max_concurrent_trials: int = 16,
    ) -> None:
        super().__init__(
            sampler,
            max_trials,
            max_time,
            divisor,
            max_rungs,
            mode,
            bracket_rungs,
            max_concurrent_trials,
            stop_once=True,
        )

    @staticmethod
    def bracket(
        sampler: Sampler, plan: BracketPlan, max_length: int, divisor: float, stop_once: bool
    ) -> ASHABracket:
        return TimeASHASearcher.for_plan(sampler, plan, max_length, divisor)


def describe_time_plan(
    plans: Sequence[BracketPlan],
    time_metric: str,
    max_time: int,
    divisor: float = 4,
    mode: str = "standard",
    bracket_rungs: Sequence[int] | None = None,
) -> list[str]:
    """Lines for ``ridgeline preview-search``: how 0.38-style ASHA runs the brackets of
    ``bracket_plan`` (rungs in the time metric)."""
    how = f"bracket_rungs {list(bracket_rungs)}" if bracket_rungs else f"mode {mode}"
    d = number_text(float(divisor))
    lines = [
        f"Determined 0.38 style: each trial trains to the length its script sets; rungs are "
        f"measured in the time metric {time_metric!r} (max_time {max_time})",
        f"Validation reports carrying the searcher metric and {time_metric!r} are ranked in "
        f"every rung they reach; a trial outside the best 1/{d} of a rung is asked to stop "
        f"(should_preempt() turns True: checkpoint and exit; it ends STOPPED), the others go on",
        f"Brackets: {len(plans)} ({how}, divisor {d}); "
        f"{sum(p.max_trials for p in plans)} trials in all",
    ]
    for i, p in enumerate(plans, 1):
        times = ", ".join(str(n) for n in p.rung_lengths)
        noun = "rung" if p.num_rungs == 1 else "rungs"
        lines.append(
            f"Bracket {i}: {p.num_rungs} {noun} at {time_metric} {times}; {p.max_trials} "
            f"trials, up to {p.max_concurrent_trials} at once"
        )
    return lines
