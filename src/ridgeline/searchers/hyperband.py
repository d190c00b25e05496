"""Synchronous successive halving (``sync_halving``) and Hyperband (``hyperband``).

Successive halving (Jamieson & Talwalkar 2016) trains ``n`` trials to rung 0's length, waits
until every one of them has reported, keeps the best ``n / d`` for the next rung, and so on up
to ``max_length``. A trial that has reported while its rung is still running is *paused*
(``Pause``: its checkpoint is kept and its slot freed); a kept trial is relaunched
from that checkpoint with a ``Train`` to the next rung. Unlike ASHA, no decision is taken on
partial information.

Hyperband (Li et al. 2018) hedges against a bad choice of the first rung's length by running
successive halving brackets with 1 to ``max_rungs`` rungs side by side, the brackets with
more rungs starting more trials (``ceil(R / r * d**(r-1))`` for r rungs of R).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import Sampler
from ridgeline.searchers.adaptive import BracketPlan
from ridgeline.searchers.asha import WORST, RungSearcher, RungState, rung_lengths
from ridgeline.searchers.base import Action, Close, Pause, Shutdown, Train
from ridgeline.searchers.tournament import BracketTournament
from ridgeline.searchers.validation import check_divisor, check_int, number_text
from ridgeline.store.records import INVALID_HP

__all__ = [
    "HyperbandPlan",
    "HyperbandSearcher",
    "SyncHalvingSearcher",
    "describe_hyperband",
    "hyperband_lines",
    "hyperband_plan",
    "planned_length",
    "rung_sizes",
    "sync_halving_lines",
    "sync_halving_plan",
]


def rung_sizes(max_trials: int, num_rungs: int, divisor: float) -> list[int]:
    """How many trials reach each rung: ``max(floor(n / d**k), 1)``."""
    return [max(int(max_trials / math.pow(divisor, k)), 1) for k in range(num_rungs)]


@dataclass(eq=False, repr=False)
class SyncHalvingState(RungState):
    """Each rung's members (in the order they joined) and the scores they reported there."""

    members: list[list[int]] = field(default_factory=list)
    scores: list[dict[int, float]] = field(default_factory=list)


class SyncHalvingSearcher(RungSearcher, SyncHalvingState):
    """One bracket of synchronous successive halving.

    ``max_trials`` trials start at rung 0 (INVALID_HP ones are replaced). When every member of
    a rung has a score (a trial that exits early scores the worst), the best
    ``rung_sizes(...)[k+1]`` go on and the others are closed. ``max_concurrent_trials`` (0: all
    of rung 0 at once) limits the trials with an open operation.
    """

    rung_key = "members"

    def __init__(
        self,
        sampler: Sampler,
        max_trials: int,
        max_length: int,
        num_rungs: int,
        divisor: float = 4,
        max_concurrent_trials: int = 0,
    ) -> None:
        trials = check_int("max_trials", max_trials, 1)
        limit = check_int("max_concurrent_trials", max_concurrent_trials, 0)
        concurrency = min(limit, trials) if limit else trials
        super().__init__(sampler, trials, max_length, num_rungs, divisor, concurrency)
        if len(set(self.lengths)) < len(self.lengths):
            # A trial promoted to a rung of the length it has already trained gets no new
            # report, and the rung above would wait for it for ever.
            raise ConfigError(
                f"sync_halving: {self.num_rungs} rungs with divisor "
                f"{number_text(float(self.divisor))} under max_length {self.max_length} "
                f"repeat a length (rungs at {self.lengths}); use fewer rungs (num_rungs) or "
                f"a longer max_length"
            )
        self.sizes = rung_sizes(self.max_trials, self.num_rungs, self.divisor)
        self.members: list[list[int]] = [[] for _ in range(self.num_rungs)]
        self.scores: list[dict[int, float]] = [{} for _ in range(self.num_rungs)]

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        new = request_id >= 0 and trial not in self.rung_of
        actions = super().on_trial_created(trial, request_id)
        if new:
            self.members[0].append(trial)
        return actions

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        if trial in self.extra:
            return [Close(trial)] if step >= self.max_length else []
        if trial not in self.outstanding or step < self.lengths[self.rung_of[trial]]:
            return []
        k = self.rung_of[trial]
        self.outstanding.discard(trial)
        self.scores[k][trial] = self._score(objective)
        actions = self._settle()
        if trial not in self.outstanding and trial not in self.finished:
            actions.insert(0, Pause(trial))  # wait for the rest of the rung
        return actions

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        if trial in self.extra or trial not in self.rung_of or trial in self.finished:
            return []
        k = self.rung_of[trial]
        if status == INVALID_HP and k == 0 and trial in self.outstanding:
            self.outstanding.discard(trial)
            self.members[0].remove(trial)
            del self.rung_of[trial]
            self.invalid += 1  # replaced by a new trial
            return self._settle()
        self.finished.add(trial)
        if trial in self.outstanding:
            self.outstanding.discard(trial)
            self.scores[k][trial] = WORST
        return self._settle()

    # -- decisions ---------------------------------------------------------------------------
    def _rung_complete(self, k: int) -> bool:
        if k == 0 and (not self.creating_done or self.pending):
            return False
        return bool(self.members[k]) and len(self.scores[k]) == len(self.members[k])

    def _settle(self) -> list[Action]:
        """Promote out of every complete rung not yet decided, then shut down when done."""
        actions: list[Action] = []
        for k in range(self.num_rungs):
            if not self._rung_complete(k):
                break
            if k == self.num_rungs - 1:
                for t in self.members[k]:
                    if t not in self.finished:
                        self.finished.add(t)
                        actions.append(Close(t))
                break
            if self.members[k + 1]:
                continue  # decided earlier
            ranked = sorted(self.members[k], key=lambda t: (self.scores[k][t], t))
            keep = [t for t in ranked[: self.sizes[k + 1]] if t not in self.finished]
            for t in ranked:
                if t in keep:
                    self.rung_of[t] = k + 1
                    self.members[k + 1].append(t)
                    self.outstanding.add(t)
                    actions.append(Train(t, self.lengths[k + 1]))
                elif t not in self.finished:
                    self.finished.add(t)
                    actions.append(Close(t))
            if not keep:  # every survivor had exited: nothing can go further
                self.members[k + 1] = []
                break
        if not self.done and self.creating_done and not self.outstanding and not self.pending:
            self.done = True
            actions.append(Shutdown("successive halving: every rung has been decided"))
        return actions

    # -- progress and state ------------------------------------------------------------------
    def progress(self) -> float:
        """Share of the planned rung results that are in (1.0 once done)."""
        if self.done:
            return 1.0
        planned = sum(self.sizes)
        return min(sum(len(s) for s in self.scores) / planned, 1.0)


@dataclass(frozen=True)
class HyperbandPlan(BracketPlan):
    """One Hyperband bracket: an ASHA bracket's layout plus each rung's size."""

    rung_sizes: tuple[int, ...]


def hyperband_plan(
    max_length: int,
    divisor: float = 3,
    max_rungs: int = 5,
    max_trials: int | None = None,
    max_concurrent_trials: int = 0,
) -> list[HyperbandPlan]:
    """Brackets with ``R`` down to 1 rungs, ``R = min(max_rungs, floor(log_d L) + 1)``.

    Bracket r starts ``ceil(R / r * d**(r-1))`` trials (Li et al.); ``max_trials`` rescales
    those counts to that total (at least one a bracket, the remainder to the first).
    Concurrency ``max_concurrent_trials`` is split in proportion to the brackets' trials (at
    least one each); 0 lets each bracket start all its rung-0 trials at once (the scheduler's
    slots still apply)."""
    check_int("max_length", max_length, 1)
    check_int("max_rungs", max_rungs, 1)
    check_int("max_concurrent_trials", max_concurrent_trials, 0)
    d = check_divisor(divisor)
    top = max(min(max_rungs, int(math.log(max_length) / math.log(d) + 1e-9) + 1), 1)
    rungs = list(range(top, 0, -1))
    counts = [math.ceil(top / r * math.pow(d, r - 1)) for r in rungs]
    if max_trials is not None:
        check_int("max_trials", max_trials, 1)
        if max_trials < len(rungs):
            rungs, counts = rungs[:max_trials], counts[:max_trials]
        total = sum(counts)
        scaled = [max(int(c * max_trials / total), 1) for c in counts]
        scaled[0] += max(max_trials - sum(scaled), 0)
        counts = scaled
    concurrency = _split(max_concurrent_trials, counts) if max_concurrent_trials else counts
    return [
        HyperbandPlan(
            r,
            n,
            c,
            tuple(rung_lengths(max_length, d, r)),
            tuple(rung_sizes(n, r, d)),
        )
        for r, n, c in zip(rungs, counts, concurrency, strict=True)
    ]


def _split(slots: int, counts: list[int]) -> list[int]:
    """``slots`` shared in proportion to ``counts``, at least 1 and at most the count each."""
    total = sum(counts)
    shares = [min(n, max(int(slots * n / total), 1)) for n in counts]
    for i, n in enumerate(counts):
        spare = slots - sum(shares)
        if spare <= 0:
            break
        shares[i] += min(spare, n - shares[i])
    return shares


class HyperbandSearcher(BracketTournament):
    """Hyperband: successive-halving brackets with different first-rung lengths, side by side."""

    name = "Hyperband"

    def __init__(
        self,
        sampler: Sampler,
        max_length: int,
        divisor: float = 3,
        max_rungs: int = 5,
        max_trials: int | None = None,
        max_concurrent_trials: int = 0,
    ) -> None:
        self.plan = hyperband_plan(
            max_length, divisor, max_rungs, max_trials, max_concurrent_trials
        )
        brackets = [
            SyncHalvingSearcher(
                sampler, p.max_trials, max_length, p.num_rungs, divisor, p.max_concurrent_trials
            )
            for p in self.plan
        ]
        super().__init__(sampler, brackets)


def _bracket_line(label: str, plan: HyperbandPlan, unit: str | None) -> str:
    suffix = f" {unit}" if unit else ""
    steps = ", ".join(
        f"{n} x {length}" for n, length in zip(plan.rung_sizes, plan.rung_lengths, strict=True)
    )
    at_once = min(plan.max_concurrent_trials or plan.max_trials, plan.max_trials)
    return f"{label}: trials x length per rung: {steps}{suffix}; up to {at_once} at once"


def describe_hyperband(
    max_length: int,
    divisor: float = 3,
    max_rungs: int = 5,
    max_trials: int | None = None,
    max_concurrent_trials: int = 0,
    unit: str | None = None,
) -> list[str]:
    """Lines for ``ridgeline preview-search``: each bracket's rungs and budget."""
    plans = hyperband_plan(max_length, divisor, max_rungs, max_trials, max_concurrent_trials)
    return hyperband_lines(plans, divisor, unit)


def hyperband_lines(
    plans: Sequence[HyperbandPlan], divisor: float, unit: str | None = None
) -> list[str]:
    """``describe_hyperband`` for brackets already planned."""
    total = sum(planned_length(p) for p in plans)
    lines = [
        f"Brackets: {len(plans)} (divisor {number_text(float(divisor))}); "
        f"{sum(p.max_trials for p in plans)} trials, {total} {unit or 'units'} of training "
        f"in all",
        "Each rung waits for all its trials; the best 1/"
        f"{number_text(float(divisor))} go on (paused until then), the others end",
    ]
    lines += [_bracket_line(f"Bracket {i}", p, unit) for i, p in enumerate(plans, 1)]
    return lines


def sync_halving_plan(
    max_length: int,
    max_trials: int,
    num_rungs: int,
    divisor: float = 4,
    max_concurrent_trials: int = 0,
) -> HyperbandPlan:
    """The one bracket of successive halving: its rungs' lengths and sizes."""
    lengths = rung_lengths(max_length, check_divisor(divisor), num_rungs)
    sizes = rung_sizes(max_trials, num_rungs, float(divisor))
    limit = min(max_concurrent_trials, max_trials) if max_concurrent_trials else 0
    return HyperbandPlan(num_rungs, max_trials, limit, tuple(lengths), tuple(sizes))


def sync_halving_lines(plan: HyperbandPlan, divisor: float, unit: str | None = None) -> list[str]:
    """Lines for ``ridgeline preview-search`` of one successive-halving bracket."""
    return [
        f"Successive halving: {plan.max_trials} trials, {planned_length(plan)} "
        f"{unit or 'units'} of training in all; the best 1/{number_text(float(divisor))} of "
        f"each rung go on",
        _bracket_line("Rungs", plan, unit),
    ]


def planned_length(
    plan: HyperbandPlan | Sequence[int], lengths: Sequence[int] | None = None
) -> int:
    """Training length a bracket spends: each rung's trials train on from the rung below.
    Takes a plan, or rung sizes and rung lengths."""
    sizes: Sequence[int] = plan.rung_sizes if isinstance(plan, HyperbandPlan) else plan
    if isinstance(plan, HyperbandPlan):
        lengths = plan.rung_lengths
    assert lengths is not None
    total, previous = 0, 0
    for n, length in zip(sizes, lengths, strict=True):
        total += n * (length - previous)
        previous = length
    return total
