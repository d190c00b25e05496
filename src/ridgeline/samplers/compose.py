"""Samplers built from samplers: chain them, repeat their suggestions, cap their count."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import WAIT, History, Sampler, TrialView
from ridgeline.store.records import COMPLETED
from ridgeline.values import whole_number

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["ChainSampler", "LimitSampler", "RepeatSampler", "Repeating", "aggregate_history"]


def _check_sampler(value: Any, what: str) -> Sampler:
    if not isinstance(value, Sampler):
        raise ConfigError(f"{what} must be a Sampler, got {type(value).__name__}")
    return value


@dataclass(eq=False, repr=False)
class _Index:
    index: int = 0  # the sampler in use


class ChainSampler(Sampler, _Index):
    """Runs each sampler in turn, moving on when it returns ``None`` (SHERPA's ``Chain``).

    ``WAIT`` from the current sampler is passed through. State: which sampler is current and
    every sampler's own state.
    """

    nested = ("samplers",)

    def __init__(self, samplers: Sequence[Sampler]) -> None:
        if not isinstance(samplers, (list, tuple)) or not samplers:
            raise ConfigError("ChainSampler needs a non-empty list of samplers")
        self.samplers = [_check_sampler(s, f"samplers[{i}]") for i, s in enumerate(samplers)]

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        while self.index < len(self.samplers):
            out = self.samplers[self.index].propose(space, history, pending, rng)
            if out is not None:
                return out
            self.index += 1
        return None


@dataclass(eq=False, repr=False)
class _Count:
    count: int = 0  # configurations proposed


class LimitSampler(Sampler, _Count):
    """Ends (``None``) after ``max_proposals`` configurations from ``inner``.

    Gives SHERPA's ``max_num_trials`` to samplers that never run out (random, genetic), so
    they can end a ``Chain`` step. ``WAIT`` does not count.
    """

    nested = ("inner",)

    def __init__(self, inner: Sampler, max_proposals: int) -> None:
        self.inner = _check_sampler(inner, "inner")
        self.max_proposals = whole_number("max_proposals", max_proposals)

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        if self.count >= self.max_proposals:
            return None
        out = self.inner.propose(space, history, pending, rng)
        if isinstance(out, dict):
            self.count += 1
        return out


def _key(params: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    out = []
    for n in names:
        v = params.get(n)
        try:
            hash(v)
        except TypeError:
            v = repr(v)
        out.append((type(v).__name__, v))
    return tuple(out)


def aggregate_history(history: History, space: SearchSpace, min_count: int = 0) -> History:
    """One ``COMPLETED`` trial per configuration that completed ``min_count`` times or more.

    Its objective is the mean of the repeats' objectives and its curve the per-step mean
    (NaN where every repeat is NaN). Ids are renumbered 1..k in order of first appearance;
    nothing is active. This is what ``Repeat(agg=True)`` shows the inner sampler, the
    ``History`` counterpart of SHERPA's ``Repeat.aggregate_results``.
    """
    names = space.names
    groups: dict[tuple[Any, ...], list[TrialView]] = {}
    for t in history.trials:
        if t.status == COMPLETED and t.objective is not None:
            groups.setdefault(_key(t.params, names), []).append(t)
    out = History(lower_is_better=history.lower_is_better)
    for members in groups.values():
        if len(members) < max(min_count, 1):
            continue
        tid = len(out.trials) + 1
        objective = sum(m.objective for m in members) / len(members)  # type: ignore[misc]
        steps = [m.last_step for m in members if m.last_step is not None]
        out.trials.append(
            TrialView(
                number=tid,
                params=dict(members[0].params),
                status=COMPLETED,
                objective=objective,
                last_step=max(steps) if steps else None,
            )
        )
        by_step: dict[int, list[float]] = {}
        for m in members:
            for step, value in history.curves.get(m.number, ()):
                by_step.setdefault(step, []).append(value)
        curve = []
        for step in sorted(by_step):
            finite = [v for v in by_step[step] if not math.isnan(v)]
            curve.append((step, sum(finite) / len(finite) if finite else math.nan))
        out.curves[tid] = curve
    return out


@dataclass(eq=False, repr=False)
class Repeating:
    """The state of a sampler that proposes a configuration several times in a row."""

    current: dict[str, Any] | None = None  # the configuration being repeated
    remaining: int = 0  # repeats still owed

    def repeat(self) -> dict[str, Any] | None:
        """The current configuration again while repeats are owed, else ``None``."""
        if self.remaining > 0 and self.current is not None:
            self.remaining -= 1
            return dict(self.current)
        return None

    def start_repeats(self, config: Mapping[str, Any], times: int) -> None:
        """Make ``config`` current; it is owed ``times - 1`` more proposals."""
        self.current = dict(config)
        self.remaining = times - 1


class RepeatSampler(Sampler, Repeating):
    """Each suggestion of ``inner`` ``num_times`` times in a row (SHERPA's ``Repeat``).

    ``wait_for_completion``: before asking ``inner`` for the next configuration, return
    ``WAIT`` while a trial of the current configuration is still active (in
    ``history.active`` or ``pending``). Unlike SHERPA, which counted completions, a failed
    repeat does not make it wait forever.
    ``agg``: ``inner`` sees ``aggregate_history(history, space, num_times)``: one trial per
    configuration, with the mean objective.
    State: the configuration being repeated, how many repeats are owed, and ``inner``'s state.
    """

    nested = ("inner",)

    def __init__(
        self,
        inner: Sampler,
        num_times: int = 5,
        wait_for_completion: bool = False,
        agg: bool = False,
    ) -> None:
        self.inner = _check_sampler(inner, "inner")
        self.num_times = whole_number("num_times", num_times)
        self.wait_for_completion = bool(wait_for_completion)
        self.agg = bool(agg)

    def _current_active(
        self, space: SearchSpace, history: History, pending: Sequence[Mapping[str, Any]]
    ) -> bool:
        assert self.current is not None
        names = space.names
        cur = {n: self.current.get(n) for n in names}

        def same(params: Mapping[str, Any]) -> bool:
            return all(n in params and params[n] == cur[n] for n in names)

        return any(same(t.params) for t in history.active.values()) or any(same(p) for p in pending)

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        again = self.repeat()
        if again is not None:
            return again
        if (
            self.wait_for_completion
            and self.current is not None
            and self._current_active(space, history, pending)
        ):
            return WAIT
        seen = aggregate_history(history, space, self.num_times) if self.agg else history
        out = self.inner.propose(space, seen, pending, rng)
        if not isinstance(out, dict):
            return out
        self.start_repeats(out, self.num_times)
        return out
