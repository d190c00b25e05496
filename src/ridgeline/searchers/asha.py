"""Asynchronous successive halving (ASHA): one bracket, Determined <= 0.37 semantics.

REFERENCE 4.3-4.5. Trials train to absolute rung lengths and report one metric per rung. In
the default, promotion-based mode a trial that is not promoted on arrival is *paused*
(``Pause``, checkpoint kept) because a later arrival can still promote it; it is
then relaunched from its checkpoint with a ``Train`` to the next rung. With ``stop_once`` a
trial is judged once per rung and either continues or is stopped for good.

Concurrency is the number of trials with an open operation (running, or promoted and waiting
for a slot). Determined keeps it constant by creating a trial for every report that trained
nothing; here the engine asks through ``on_slots_free`` and the searcher creates while it is
below its limit, which gives the same trials in the same order of decisions.
"""

from __future__ import annotations

import bisect
import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import Sampler
from ridgeline.searchers.base import (
    Action,
    Close,
    CreatingSearcher,
    CreatingState,
    Pause,
    Shutdown,
    Stop,
    Train,
)
from ridgeline.searchers.validation import check_divisor, check_int, number_text
from ridgeline.statedict import init_fields
from ridgeline.store.records import INVALID_HP

if TYPE_CHECKING:
    from ridgeline.searchers.adaptive import BracketPlan

__all__ = ["ASHABracket", "ASHASearcher", "ASHAState", "WORST", "initial_trials", "rung_lengths"]

#: Score of a trial that exited early (Determined's ``math.MaxFloat64``). Finite, so that the
#: state stays strict JSON, and larger than any real score.
WORST = sys.float_info.max


def oriented_score(objective: float, lower_is_better: bool) -> float:
    """A metric as a lower-is-better score (Determined negates larger-is-better ones); NaN
    and values beyond the finite range score as ``WORST``."""
    value = float(objective)
    if math.isnan(value):
        return WORST
    if not lower_is_better:
        value = -value
    return min(max(value, -WORST), WORST)


def rung_lengths(max_length: int, divisor: float, num_rungs: int) -> list[int]:
    """Absolute length each rung trains to: ``max(floor(L / d**(n-1-i)), 1)`` (4.3).

    The top rung is ``max_length``; each rung below is ``divisor`` times shorter."""
    check_int("max_length", max_length, 1)
    check_int("num_rungs", num_rungs, 1)
    d = check_divisor(divisor)
    return [max(int(max_length / math.pow(d, num_rungs - 1 - i)), 1) for i in range(num_rungs)]


def initial_trials(
    max_trials: int, num_rungs: int, divisor: float, max_concurrent_trials: int
) -> int:
    """How many trials run at once (4.3): the limit, or ``d**(n-1)`` clamped when it is 0."""
    if max_concurrent_trials > 0:
        return min(max_concurrent_trials, max_trials)
    return max(min(int(math.pow(divisor, num_rungs - 1)), max_trials), 1)


@dataclass
class _Rung:
    """Scores of one rung with their trials, in ascending order of score (lower is better
    after orienting), and the trials promoted out of it."""

    metrics: list[tuple[int, float]] = field(default_factory=list)  # (trial, score)
    promoted: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.metrics)

    @property
    def trials(self) -> list[int]:
        return [t for t, _ in self.metrics]

    def insert(self, trial: int, score: float, after_equal: bool = True) -> int:
        """Insert keeping order; ties go after (promotion ASHA) or before (stopping ASHA)."""
        find = bisect.bisect_right if after_equal else bisect.bisect_left
        index = find(self.metrics, score, key=_score_of)
        self.metrics.insert(index, (trial, score))
        return index

    def remove(self, trial: int) -> None:
        for index, (t, _) in enumerate(self.metrics):
            if t == trial:
                del self.metrics[index]
                break
        self.promoted.discard(trial)

    def promotion(self, trial: int, score: float, divisor: float) -> int | None:
        """Determined's ``promotionsAsync``: insert ``score``; return the trial to promote.

        Of the s + 1 scores now held, the best ``floor((s+1)/d)`` deserve promotion. The new
        one is promoted if it is among them; otherwise, when that count just grew, the trial
        at index ``floor(s/d)`` is, unless it already was (no minimum of 1: with d = 4 the
        first three arrivals wait)."""
        held = len(self.metrics)
        before = int(held / divisor)
        after = int((held + 1) / divisor)
        index = self.insert(trial, score, after_equal=True)
        if index < after:
            self.promoted.add(trial)
            return trial
        if after != before and self.metrics[before][0] not in self.promoted:
            chosen = self.metrics[before][0]
            self.promoted.add(chosen)
            return chosen
        return None


def _score_of(metric: tuple[int, float]) -> float:
    return metric[1]


@dataclass(eq=False, repr=False)
class RungState(CreatingState):
    """What a successive-halving bracket saves, beyond what every creating searcher does."""

    rung_of: dict[int, int] = field(default_factory=dict)  # each valid trial's current rung


class RungSearcher(CreatingSearcher, RungState):
    """What every successive-halving bracket shares: a trial budget, a concurrency limit,
    creation from the sampler, and the bookkeeping of open operations.

    Subclasses set ``lengths`` (absolute rung lengths) and decide in ``_settle``, which runs
    after every batch of creates and returns the decisions that became possible. Their state
    extends ``RungState``; ``rung_key`` names its list with one entry per rung, checked
    against the searcher's rungs on resume."""

    rung_key = "rungs"

    def __init__(
        self,
        sampler: Sampler,
        max_trials: int,
        max_length: int,
        num_rungs: int,
        divisor: float,
        concurrency: int,
    ) -> None:
        self.sampler = sampler
        self.max_trials = check_int("max_trials", max_trials, 1)
        self.max_length = check_int("max_length", max_length, 1)
        self.num_rungs = check_int("num_rungs", num_rungs, 1)
        self.divisor = check_divisor(divisor)
        self.lengths = rung_lengths(self.max_length, self.divisor, self.num_rungs)
        self.concurrency = concurrency
        init_fields(self)

    # -- accounting --------------------------------------------------------------------------
    @property
    def busy(self) -> int:
        """Trials holding a concurrency slot: open operations plus creates not yet announced."""
        return len(self.outstanding) + len(self.pending)

    @property
    def creating_done(self) -> bool:
        """No trial will be created any more (the budget counts valid trials only)."""
        return self.exhausted or self.created - self.invalid >= self.max_trials

    def room(self) -> int:
        """How many trials this bracket would create now."""
        if self.done or self.creating_done:
            return 0
        return max(self.concurrency - self.busy, 0)

    def _score(self, objective: float) -> float:
        return oriented_score(objective, self.history.lower_is_better)

    def _settle(self) -> list[Action]:
        raise NotImplementedError

    # -- events ------------------------------------------------------------------------------
    def on_slots_free(self, n: int) -> list[Action]:
        return self.fill(n)

    def fill(self, n: int, pending_params: list[dict[str, Any]] | None = None) -> list[Action]:
        """Create up to ``n`` trials within the budget and the concurrency limit.

        ``pending_params`` (shared by a tournament across brackets) lists the parameters of
        running trials and of creates not yet applied, for the sampler."""
        if self.done:
            return []
        if pending_params is None:
            pending_params = self.history.pending_params()
        actions = self._create(n, lambda: self.room() > 0, pending_params)
        return actions + self._settle()

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        if request_id < 0:
            return self._adopt(trial, self.max_length)
        if trial not in self.rung_of:  # else announced again (a replay after a restart)
            self.pending.discard(request_id)
            self.rung_of[trial] = 0
            self.outstanding.add(trial)
        return [Train(trial, self.train_length(trial))] if trial in self.outstanding else []

    def train_length(self, trial: int) -> int:
        """How far the trial's open operation trains: its rung's length."""
        return self.lengths[self.rung_of[trial]]

    # -- state -------------------------------------------------------------------------------
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Refuses a state saved with another number of rungs (another config)."""
        saved = len(state[self.rung_key])
        if saved != self.num_rungs:
            raise ConfigError(
                f"the saved searcher state has {saved} rungs but the searcher has "
                f"{self.num_rungs}; resume with the experiment's original searcher config"
            )
        super().load_state_dict(state)  # in a tournament, without the shared sampler


@dataclass(eq=False, repr=False)
class ASHAState(RungState):
    """An ASHA bracket's rungs, and the trials whose exit it has seen."""

    rungs: list[_Rung] = field(default_factory=list)
    ended: set[int] = field(default_factory=set)  # exit events seen, INVALID_HP ones included


class ASHABracket(RungSearcher, ASHAState):
    """What ASHA's brackets, by length or by time, share: the concurrency of 4.3, one
    ``_Rung`` per rung, and ``stop_once`` (stopping ASHA, 4.5, rather than promotion)."""

    def __init__(
        self,
        sampler: Sampler,
        max_trials: int,
        max_length: int,
        num_rungs: int,
        divisor: float = 4,
        max_concurrent_trials: int = 16,
        stop_once: bool = False,
    ) -> None:
        self.max_concurrent_trials = check_int("max_concurrent_trials", max_concurrent_trials, 0)
        concurrency = initial_trials(
            check_int("max_trials", max_trials, 1),
            num_rungs,
            check_divisor(divisor),
            self.max_concurrent_trials,
        )
        super().__init__(sampler, max_trials, max_length, num_rungs, divisor, concurrency)
        self.rungs = [_Rung() for _ in range(self.num_rungs)]
        self.stop_once = bool(stop_once)

    @classmethod
    def for_plan(
        cls, sampler: Sampler, plan: BracketPlan, max_length: int, divisor: float, **options: Any
    ) -> Self:
        """The bracket ``plan`` lays out (``adaptive.bracket_plan``), over ``max_length``."""
        return cls(
            sampler,
            plan.max_trials,
            max_length,
            plan.num_rungs,
            divisor,
            plan.max_concurrent_trials,
            **options,
        )

    # -- progress and state ------------------------------------------------------------------
    def progress(self) -> float:
        """4.3: rung-0 fill with 20 % overhead; once full, at least the share of ended trials."""
        count = len(self.rungs[0])
        value = count / (1.2 * self.max_trials)
        if count >= self.max_trials:
            value = max(value, (len(self.ended) - self.invalid) / self.max_trials)
        if self.done and len(self.ended) >= self.created:
            value = 1.0  # the sampler ran dry before the budget was spent
        return min(value, 1.0)


@dataclass(eq=False, repr=False)
class _ExitedState(ASHAState):
    """``ASHASearcher``'s: also the trials that ended before it decided on them."""

    exited: set[int] = field(default_factory=set)  # Determined: exited early


class ASHASearcher(ASHABracket, _ExitedState):
    """One bracket of asynchronous successive halving (``async_halving``; an adaptive bracket).

    Actions it emits, and what they can target:

    - ``Train(t, rung_length)``: a new trial, the reporting trial (still running), or a
      *paused* trial promoted later (relaunch it from its latest checkpoint; its process may
      still be exiting after its ``Pause``).
    - ``Pause(t)``: the reporting trial was not promoted; pause it.
    - ``Close(t)``: done with t. The reporting trial at the top rung, or, at
      close-out, a trial that is paused (not running) and was told ``Pause``.
    - ``Stop(t)`` (``stop_once`` only): the reporting trial, right after its operation.
    - ``Shutdown``: once no trial will be created and every trial has been decided.

    Trials the user adds (``request_id < 0``) train to ``max_length`` outside the rungs and
    the budget.
    """

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        if trial in self.extra:
            return [Close(trial)] if step >= self.max_length else []
        if trial not in self.outstanding:
            return []  # paused, decided, or not ours: nothing to decide
        if step < self.lengths[self.rung_of[trial]]:
            return []  # an intermediate report, not the rung's metric
        actions = self._decide(trial, self._score(objective))
        return _merge_closes(actions + self._settle())

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        if trial in self.extra or trial not in self.rung_of or trial in self.ended:
            return []
        self.ended.add(trial)
        actions: list[Action] = []
        if status == INVALID_HP and trial not in self.finished:
            # The trial does not count: its metrics leave every rung and it is replaced.
            for rung in self.rungs:
                rung.remove(trial)
            self.outstanding.discard(trial)
            del self.rung_of[trial]
            self.invalid += 1
        elif trial not in self.finished:
            # Exited early: it carries the worst score in the rung it was training for, with
            # the promotions that causes. A paused one keeps its score; promoting it later
            # resolves at once with the worst score.
            self.finished.add(trial)
            self.exited.add(trial)
            if trial in self.outstanding:
                actions = self._decide(trial, WORST)
        return _merge_closes(actions + self._settle())

    # -- decisions ---------------------------------------------------------------------------
    def _decide(self, trial: int, score: float) -> list[Action]:
        """Record ``score`` for the trial's rung: the top rung finishes it, a lower one
        promotes (``_promote``) or judges (``_judge``, ``stop_once``)."""
        k = self.rung_of[trial]
        self.outstanding.discard(trial)
        if k == self.num_rungs - 1:
            return self._finish_top(trial, score)
        if self.stop_once:
            return self._judge(trial, k, score)
        return self._promote(trial, k, score)

    def _promote(self, trial: int, k: int, score: float) -> list[Action]:
        """Determined's ``promoteAsync``: record ``score`` in rung ``k`` and promote."""
        rung = self.rungs[k]
        chosen = rung.promotion(trial, score, self.divisor)
        actions: list[Action] = []
        if chosen != trial and trial not in self.finished:
            actions.append(Pause(trial))  # paused: a later arrival may promote it
        if chosen is None:
            return actions
        self.rung_of[chosen] = k + 1
        if chosen in self.finished:  # exited early: as if it ran and scored the worst
            return actions + self._decide(chosen, WORST)
        self.outstanding.add(chosen)
        return actions + [Train(chosen, self.lengths[k + 1])]

    def _finish_top(self, trial: int, score: float) -> list[Action]:
        """The top rung: record the score; the trial is done."""
        self.rungs[-1].insert(trial, score)
        if trial in self.finished:
            return []
        self.finished.add(trial)
        return [Close(trial)]

    def _judge(self, trial: int, k: int, score: float) -> list[Action]:
        """Stopping ASHA (4.5): continue while in the top ``max(floor(N/d), 1)``, else stop."""
        rung = self.rungs[k]
        index = rung.insert(trial, score, after_equal=False)
        keep = max(int(len(rung) / self.divisor), 1)
        if trial in self.finished:
            return []  # exited early: its worst score counts, it goes no further
        if index < keep:
            rung.promoted.add(trial)
            self.rung_of[trial] = k + 1
            self.outstanding.add(trial)
            return [Train(trial, self.lengths[k + 1])]
        self.finished.add(trial)
        return [Stop(trial, f"ASHA: not in the top 1/{number_text(self.divisor)} of rung {k}")]

    def _settle(self) -> list[Action]:
        """Close out finished rungs, then shut down once everything is decided."""
        actions = [] if self.stop_once else self._close_out()
        if not self.done and self.creating_done and not self.outstanding and not self.pending:
            self.done = True
            actions.append(Shutdown("ASHA: every trial has finished its last rung"))
        return actions

    def _close_out(self) -> list[Action]:
        """Once rung 0 is complete, close the unpromoted trials of each rung from 0 upward
        that has no outstanding trial (4.4 close-out; ``len(rung 0) == max_trials``, or the
        sampler ran dry)."""
        if not self.creating_done or self.pending:
            return []
        busy_rungs = {self.rung_of[t] for t in self.outstanding}
        actions: list[Action] = []
        for k, rung in enumerate(self.rungs):
            if k in busy_rungs:
                break
            for t in rung.trials:
                if t not in rung.promoted and t not in self.finished:
                    self.finished.add(t)
                    actions.append(Close(t))
        return actions


def _merge_closes(actions: list[Action]) -> list[Action]:
    """Drop a pause that the same event turned into a close (close-out)."""
    closed = {a.trial for a in actions if isinstance(a, Close)}
    return [a for a in actions if not (isinstance(a, Pause) and a.trial in closed)]
