"""What every sampler promises, as tests that each sampler's own test module runs.

A sampler's tests subclass ``SamplerConformance`` and say how to make the sampler (and, when
it needs one, the space it searches); pytest then runs the checks below for it::

    class TestRandomConformance(SamplerConformance):
        def make(self) -> Sampler:
            return RandomSampler()

The checks: every proposal lies in the space; the same seed gives the same proposals; a
sampler restored from its JSON state (with the generator's state) goes on exactly as the one
that never stopped; configurations of running trials are not proposed again (beyond
``repeats`` copies, for a sampler that repeats on purpose); and a sampler
that runs out (``exhausts = True``) says so with ``None`` and keeps saying it, while one that
does not never does. Results are fed back as the engine would: each proposal runs to
completion before the next, with a deterministic objective.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from copy import deepcopy
from typing import Any, ClassVar

from ridgeline.samplers.base import WAIT, History, Sampler
from ridgeline.space import Choice, Continuous, Discrete, SearchSpace

__all__ = ["SamplerConformance", "observe"]

COMPLETED = "COMPLETED"


def observe(history: History, params: Mapping[str, Any], value: float | None, status: str) -> None:
    """Record one trial that ended with ``status`` (after one report of ``value``, if any)."""
    number = len(history.trials) + 1
    history.remember(number, dict(params), "RUNNING")
    if value is not None:
        history.observe(number, 1, value)
    history.remember(number, dict(params), status)


def default_space() -> SearchSpace:
    """Continuous (linear and log), integer and categorical parameters."""
    return SearchSpace(
        [
            Continuous("x", [-2.0, 3.0]),
            Continuous("lr", [1e-4, 1e-1], scale="log"),
            Discrete("n", [1, 16]),
            Choice("act", ["relu", "tanh", "elu"]),
        ]
    )


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


class SamplerConformance:
    """Subclass it in a test module (with a name pytest collects) and define ``make``."""

    #: How many proposals each check draws.
    proposals: ClassVar[int] = 12
    #: True for samplers that run out (a grid, a list): they must end with ``None``.
    exhausts: ClassVar[bool] = False
    #: How many trials of one configuration may run at once (more than 1 for samplers that
    #: repeat a configuration on purpose, to average out noise).
    repeats: ClassVar[int] = 1

    def make(self) -> Sampler:
        raise NotImplementedError("return a new sampler of the kind under test")

    def space(self) -> SearchSpace:
        return default_space()

    def objective(self, params: Mapping[str, Any]) -> float:
        """A deterministic value of a configuration (lower is better)."""
        total = 0.0
        for name in sorted(params):
            value = params[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                total += (sum(map(ord, str(value))) % 7) / 7.0
            else:
                total += math.sin(float(value) * 1.3) ** 2
        return total

    def drive(
        self, sampler: Sampler, rng: random.Random, count: int, history: History | None = None
    ) -> list[dict[str, Any] | None]:
        """``count`` proposals, each completed (and recorded) before the next."""
        history = history if history is not None else History()
        space = self.space()
        out: list[dict[str, Any] | None] = []
        for _ in range(count):
            params = sampler.propose(space, history, [], rng)
            assert params != WAIT, "WAIT with no trial running"
            if params is None or isinstance(params, str):
                out.append(None)
                continue
            out.append(params)
            observe(history, params, self.objective(params), COMPLETED)
        return out

    # -- the checks ---------------------------------------------------------------------------

    def test_proposals_lie_in_the_space(self) -> None:
        space = self.space()
        for params in self.drive(self.make(), random.Random(1), self.proposals):
            if params is not None:
                assert space.contains(params), params

    def test_the_same_seed_gives_the_same_proposals(self) -> None:
        first = self.drive(self.make(), random.Random(7), self.proposals)
        again = self.drive(self.make(), random.Random(7), self.proposals)
        assert [_key(p) if p else None for p in first] == [_key(p) if p else None for p in again]

    def test_a_restored_sampler_goes_on_as_the_one_that_never_stopped(self) -> None:
        half = self.proposals // 2
        history, rng = History(), random.Random(3)
        sampler = self.make()
        self.drive(sampler, rng, half, history)
        state = json.loads(json.dumps(sampler.state_dict()))  # JSON, as snapshots store it
        rng_state = rng.getstate()
        copy = deepcopy(history)
        expected = self.drive(sampler, rng, half, history)
        restored = self.make()
        restored.load_state_dict(state)
        rng.setstate(rng_state)
        assert self.drive(restored, rng, half, copy) == expected

    def test_running_configurations_are_not_proposed_again(self) -> None:
        space, history, rng = self.space(), History(), random.Random(5)
        sampler = self.make()
        running: list[dict[str, Any]] = []
        for _ in range(self.proposals):
            params = sampler.propose(space, history, running, rng)
            if params is None or params == WAIT:
                break
            assert isinstance(params, dict)
            running.append(params)
            copies = sum(_key(p) == _key(params) for p in running)
            assert copies <= self.repeats, f"{params} runs {copies} times at once"

    def test_running_out_is_said_with_none_and_is_final(self) -> None:
        proposals = self.drive(self.make(), random.Random(9), self.proposals)
        if not self.exhausts:
            assert None not in proposals, "a sampler that does not run out proposed None"
            return
        sampler, history, rng = self.make(), History(), random.Random(9)
        for _ in range(10_000):
            if self.drive(sampler, rng, 1, history) == [None]:
                break
        else:
            raise AssertionError("an exhaustible sampler never ran out")
        assert self.drive(sampler, rng, 3, history) == [None] * 3
