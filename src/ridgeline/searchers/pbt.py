"""Population-based training (``pbt``, Jaderberg et al. 2017) for Core-API trials.

A population trains in rounds of ``length_per_round``. At the end of a round every member has
reported and is paused (its process checkpointed and exited). Then the worst
``truncate_fraction`` end, and each of the best that many is cloned: a new trial starts from
the parent's checkpoint (exploit) with its hyperparameters perturbed (explore). The others
resume from their own checkpoints. Lineage is the trial's ``parent``, recorded in the store.

Pausing every member at a round end is what makes a clone exact: the parent's checkpoint at
the round's length exists before the child starts, whatever the script's checkpoint period.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ridgeline.samplers.base import Sampler
from ridgeline.searchers.asha import WORST, oriented_score
from ridgeline.searchers.base import (
    Action,
    Close,
    Create,
    CreatingSearcher,
    CreatingState,
    Pause,
    Shutdown,
    Train,
)
from ridgeline.searchers.validation import check_fraction, check_int
from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal, Parameter, SearchSpace
from ridgeline.statedict import init_fields
from ridgeline.store.records import INVALID_HP

__all__ = ["PBTSearcher", "describe_pbt", "explore", "replaced_per_round"]


def replaced_per_round(population_size: int, truncate_fraction: float) -> int:
    """Members replaced by clones at each round end."""
    return int(population_size * truncate_fraction)


def explore(
    space: SearchSpace,
    params: dict[str, Any],
    rng: random.Random,
    resample_probability: float,
    perturb_factor: float,
) -> dict[str, Any]:
    """Determined's explore: each value is resampled with ``resample_probability``; otherwise
    a number is multiplied by ``1 + f`` or ``1 - f`` (clipped to its range, integers rounded),
    an ordinal moves one step, and a categorical value stays."""
    out = dict(params)
    for p in space.parameters:
        if isinstance(p, Constant) or p.name not in out:
            continue
        if rng.random() < resample_probability:
            out[p.name] = p.sample(rng)
        else:
            out[p.name] = _perturb(p, out[p.name], rng, perturb_factor)
    return out


def _perturb(p: Parameter, value: Any, rng: random.Random, factor: float) -> Any:
    scale = 1 + factor if rng.random() < 0.5 else 1 - factor
    if isinstance(p, Continuous | Discrete):
        low, high = p.range
        moved = min(max(value * scale, low), high)
        return int(round(moved)) if isinstance(p, Discrete) else float(moved)
    if isinstance(p, Ordinal):
        i = min(max(p.index(value) + (1 if scale > 1 else -1), 0), len(p.range) - 1)
        return p.range[i]
    assert isinstance(p, Choice)
    return value


@dataclass(eq=False, repr=False)
class PBTState(CreatingState):
    """Where the population stands: this round's members, results and targets."""

    round: int = 1
    members: list[int] = field(default_factory=list)  # this round's population
    scores: dict[int, float] = field(default_factory=dict)  # this round's results
    target: dict[int, int] = field(default_factory=dict)  # each member's length this round
    awaiting: set[int] = field(default_factory=set)  # told to pause, process not gone yet
    failed: set[int] = field(default_factory=set)  # ended without finishing its round
    children: dict[int, int] = field(default_factory=dict)  # request id -> parent, unannounced


class PBTSearcher(CreatingSearcher, PBTState):
    """Synchronous rounds over a population of ``population_size`` trials.

    Round r trains every member to ``r * length_per_round`` (absolute; a clone starts at its
    parent's length). ``num_rounds`` rounds in all. Members that exit early score the worst
    and are replaced like the worst ones; INVALID_HP members of the first round are replaced
    by new random ones.
    """

    def __init__(
        self,
        sampler: Sampler,
        population_size: int,
        num_rounds: int,
        length_per_round: int,
        truncate_fraction: float = 0.2,
        resample_probability: float = 0.2,
        perturb_factor: float = 0.2,
        max_concurrent_trials: int = 0,
    ) -> None:
        self.sampler = sampler
        self.population_size = check_int("population_size", population_size, 1)
        self.num_rounds = check_int("num_rounds", num_rounds, 1)
        self.length_per_round = check_int("length_per_round", length_per_round, 1)
        self.truncate_fraction = check_fraction(
            "replace_function.truncate_fraction", truncate_fraction, 0.5
        )
        self.resample_probability = check_fraction(
            "explore_function.resample_probability", resample_probability, 1.0
        )
        self.perturb_factor = check_fraction("explore_function.perturb_factor", perturb_factor, 1.0)
        limit = check_int("max_concurrent_trials", max_concurrent_trials, 0)
        self.concurrency = min(limit, population_size) if limit else population_size
        init_fields(self)

    @property
    def max_length(self) -> int:
        return self.num_rounds * self.length_per_round

    # -- events ------------------------------------------------------------------------------
    def on_slots_free(self, n: int) -> list[Action]:
        """First round only: create members up to the population and the concurrency limit."""
        if self.round > 1 or self.done or self.exhausted:
            return self._end_round()

        def can_create() -> bool:
            return (
                self.created - self.invalid < self.population_size
                and len(self.outstanding) + len(self.pending) < self.concurrency
            )

        actions = self._create(n, can_create, self.history.pending_params())
        return actions + self._end_round()

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        if request_id < 0:
            return self._adopt(trial, self.max_length)
        if trial in self.target:  # announced again (a replay after a restart)
            return [Train(trial, self.target[trial])] if trial in self.outstanding else []
        self.children.pop(request_id, None)
        self.pending.discard(request_id)
        self.members.append(trial)
        self.target[trial] = self.round * self.length_per_round  # a clone continues its parent
        self.outstanding.add(trial)
        return [Train(trial, self.target[trial])]

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        if trial in self.extra:
            return [Close(trial)] if step >= self.max_length else []
        if trial not in self.outstanding or step < self.target[trial]:
            return []
        self.outstanding.discard(trial)
        self.scores[trial] = self._score(objective)
        if self.round == self.num_rounds:
            self.finished.add(trial)
            return [Close(trial), *self._end_round()]
        self.awaiting.add(trial)
        return [Pause(trial)]

    def on_trial_paused(self, trial: int) -> list[Action]:
        if trial not in self.awaiting:
            return []
        self.awaiting.discard(trial)
        return self._end_round()

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        if trial in self.extra or trial not in self.target or trial in self.finished:
            return []
        self.awaiting.discard(trial)
        if trial in self.outstanding:
            self.outstanding.discard(trial)
            if status == INVALID_HP and self.round == 1 and trial in self.members:
                self.members.remove(trial)
                self.invalid += 1  # replaced by a new random member
                return []
            self.scores[trial] = WORST
            self.failed.add(trial)
        elif trial in self.scores:  # scored, then ended instead of pausing: it cannot go on
            self.failed.add(trial)
        self.finished.add(trial)
        return self._end_round()

    # -- decisions ---------------------------------------------------------------------------
    def _score(self, objective: float) -> float:
        return oriented_score(objective, self.history.lower_is_better)

    def _round_over(self) -> bool:
        if self.round == 1 and not self.exhausted:
            if self.created - self.invalid < self.population_size or self.pending:
                return False
        if self.children or self.outstanding or self.awaiting or not self.members:
            return False
        return all(t in self.scores for t in self.members)

    def _end_round(self) -> list[Action]:
        if self.done or not self._round_over():
            return []
        if self.round >= self.num_rounds:
            self.done = True
            return [Shutdown("PBT: every round has finished")]
        ranked = sorted(self.members, key=lambda t: (self.scores[t], t))
        healthy = [t for t in ranked if t not in self.failed]
        replace = max(replaced_per_round(len(ranked), self.truncate_fraction), len(self.failed))
        replace = min(replace, len(ranked))
        losers = ranked[len(ranked) - replace :]
        survivors = [t for t in ranked if t not in losers]
        actions: list[Action] = []
        for t in losers:
            if t not in self.finished:
                self.finished.add(t)
                actions.append(Close(t))
        self.round += 1
        self.members = list(survivors)
        self.scores = {}
        self.failed = set()
        for t in survivors:
            self.target[t] += self.length_per_round
            self.outstanding.add(t)
            actions.append(Train(t, self.target[t]))
        if healthy:
            for i in range(replace):
                parent = healthy[i % len(healthy)]
                params = explore(
                    self.space,
                    self.history.get(parent).params,
                    self.rng,
                    self.resample_probability,
                    self.perturb_factor,
                )
                self.created += 1
                self.children[self.created] = parent
                actions.append(Create(self.created, params, parent=parent))
        if not self.members and not self.children:
            self.done = True
            actions.append(Shutdown("PBT: no member of the population can go on"))
        return actions

    # -- progress and state ------------------------------------------------------------------
    def progress(self) -> float:
        if self.done:
            return 1.0
        share = len(self.scores) / max(len(self.members), self.population_size, 1)
        return min((self.round - 1 + share) / self.num_rounds, 1.0)


def describe_pbt(
    population_size: int,
    num_rounds: int,
    length_per_round: int,
    truncate_fraction: float,
    resample_probability: float,
    perturb_factor: float,
    unit: str | None = None,
) -> list[str]:
    """Lines for ``ridgeline preview-search``."""
    replaced = replaced_per_round(population_size, truncate_fraction)
    suffix = f" {unit}" if unit else ""
    trials = population_size + replaced * (num_rounds - 1)
    return [
        f"Population: {population_size} trials, {num_rounds} rounds of {length_per_round}"
        f"{suffix} (each lineage trains to {num_rounds * length_per_round}{suffix})",
        f"At each round end the worst {replaced} end and the best {replaced} are cloned from "
        f"their checkpoints, each value resampled with probability {resample_probability:g} "
        f"or scaled by 1 +/- {perturb_factor:g}",
        f"Trials: {trials} in all; every member pauses (checkpoints) at each round end",
    ]
