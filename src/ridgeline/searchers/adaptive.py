"""Adaptive ASHA (``adaptive_asha``): a tournament of ASHA brackets run side by side (4.6).

Brackets differ in how aggressively they stop early (their number of rungs); running several
hedges against a bad guess. Each bracket is an independent ``ASHASearcher`` with its own trial
budget and concurrency, run by a ``BracketTournament``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ridgeline.errors import ConfigError
from ridgeline.searchers.asha import ASHABracket, ASHASearcher, rung_lengths
from ridgeline.searchers.tournament import BracketTournament
from ridgeline.searchers.validation import check_divisor, check_int, number_text

if TYPE_CHECKING:
    from ridgeline.samplers.base import Sampler

__all__ = [
    "MODES",
    "AdaptiveASHASearcher",
    "BracketPlan",
    "bracket_lines",
    "bracket_plan",
    "describe_plan",
]

MODES = ("standard", "aggressive", "conservative")


@dataclass(frozen=True)
class BracketPlan:
    """One bracket: its rungs and their absolute lengths, trial budget and concurrency."""

    num_rungs: int
    max_trials: int
    max_concurrent_trials: int
    rung_lengths: tuple[int, ...]


def _bracket_rungs(
    max_length: int,
    max_trials: int,
    divisor: float,
    max_rungs: int,
    mode: str,
    bracket_rungs: Sequence[int] | None,
) -> list[int]:
    """Rung counts per bracket, most rungs (most early stopping) first."""
    if bracket_rungs:
        rungs = [check_int("bracket_rungs[]", r, 1) for r in bracket_rungs]
    else:
        if mode not in MODES:
            raise ConfigError(f"searcher.mode must be one of {', '.join(MODES)}, got {mode!r}")
        # Floating-point logs, as upstream: int(log(1000)/log(10)) is 2.
        cap = min(
            max_rungs,
            int(math.log(max_length) / math.log(divisor)) + 1,
            int(math.log(max_trials) / math.log(divisor)) + 1,
        )
        if mode == "aggressive":
            rungs = [cap]
        elif mode == "standard":
            rungs = list(range((cap - 1) // 2 + 1, cap + 1))
        else:
            rungs = list(range(1, cap + 1))
    return sorted(rungs, reverse=True)


def bracket_plan(
    max_length: int,
    max_trials: int,
    divisor: float = 4,
    max_rungs: int = 5,
    mode: str = "standard",
    bracket_rungs: Sequence[int] | None = None,
    max_concurrent_trials: int = 16,
) -> list[BracketPlan]:
    """Determined's bracket layout (4.6): rungs, trials, concurrency and lengths per bracket.

    A bracket with r rungs weighs ``d**(r-1)/r`` and gets ``max(int(w/sum*max_trials), 1)``
    trials, the shortfall going to the first. Concurrency ``max(mct, #brackets)`` is split
    evenly with the remainder to the first brackets; with 0 (unlimited) each gets
    ``max(last bracket's trials, int(d))``."""
    check_int("max_length", max_length, 1)
    check_int("max_trials", max_trials, 1)
    check_int("max_rungs", max_rungs, 1)
    check_int("max_concurrent_trials", max_concurrent_trials, 0)
    d = check_divisor(divisor)
    rungs = _bracket_rungs(max_length, max_trials, d, max_rungs, mode, bracket_rungs)
    weights = [math.pow(d, r - 1) / r for r in rungs]
    total = sum(weights)
    trials = [max(int(w / total * max_trials), 1) for w in weights]
    trials[0] += max(max_trials - sum(trials), 0)
    count = len(rungs)
    if max_concurrent_trials > 0:
        slots = max(max_concurrent_trials, count)
        concurrency = [slots // count + (1 if i < slots % count else 0) for i in range(count)]
    else:
        concurrency = [max(trials[-1], int(d))] * count
    return [
        BracketPlan(r, n, c, tuple(rung_lengths(max_length, d, r)))
        for r, n, c in zip(rungs, trials, concurrency, strict=True)
    ]


def describe_plan(
    max_length: int,
    max_trials: int,
    divisor: float = 4,
    max_rungs: int = 5,
    mode: str = "standard",
    bracket_rungs: Sequence[int] | None = None,
    max_concurrent_trials: int = 16,
    unit: str | None = None,
    stop_once: bool = False,
) -> list[str]:
    """Lines for ``ridgeline preview-search``: what each bracket will run."""
    plans = bracket_plan(
        max_length, max_trials, divisor, max_rungs, mode, bracket_rungs, max_concurrent_trials
    )
    return bracket_lines(plans, divisor, mode, bracket_rungs, unit, stop_once)


def bracket_lines(
    plans: Sequence[BracketPlan],
    divisor: float = 4,
    mode: str = "standard",
    bracket_rungs: Sequence[int] | None = None,
    unit: str | None = None,
    stop_once: bool = False,
) -> list[str]:
    """``describe_plan`` for brackets already planned."""
    how = f"bracket_rungs {list(bracket_rungs)}" if bracket_rungs else f"mode {mode}"
    style = "stopped (stop_once)" if stop_once else "paused and may be promoted later"
    lines = [
        f"Brackets: {len(plans)} ({how}, divisor {number_text(float(divisor))}); "
        f"{sum(p.max_trials for p in plans)} trials in all",
        f"In each rung the best 1/{number_text(float(divisor))} go on; the others are {style}",
    ]
    suffix = f" {unit}" if unit else ""
    for i, p in enumerate(plans, 1):
        lengths = ", ".join(str(n) for n in p.rung_lengths)
        noun = "rung" if p.num_rungs == 1 else "rungs"
        lines.append(
            f"Bracket {i}: {p.num_rungs} {noun} at {lengths}{suffix}; {p.max_trials} trials, "
            f"up to {p.max_concurrent_trials} at once"
        )
    return lines


class AdaptiveASHASearcher(BracketTournament):
    """A tournament of ASHA brackets (Determined's ``adaptive_asha`` with ``tournament.go``)."""

    name = "adaptive ASHA"

    def __init__(
        self,
        sampler: Sampler,
        max_trials: int,
        max_length: int,
        divisor: float = 4,
        max_rungs: int = 5,
        mode: str = "standard",
        bracket_rungs: Sequence[int] | None = None,
        max_concurrent_trials: int = 16,
        stop_once: bool = False,
    ) -> None:
        self.plan = bracket_plan(
            max_length, max_trials, divisor, max_rungs, mode, bracket_rungs, max_concurrent_trials
        )
        brackets = [self.bracket(sampler, p, max_length, divisor, stop_once) for p in self.plan]
        super().__init__(sampler, brackets)

    @staticmethod
    def bracket(
        sampler: Sampler, plan: BracketPlan, max_length: int, divisor: float, stop_once: bool
    ) -> ASHABracket:
        """The searcher that runs one bracket of the plan."""
        return ASHASearcher.for_plan(sampler, plan, max_length, divisor, stop_once=stop_once)
