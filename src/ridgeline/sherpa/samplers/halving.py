"""SHERPA's asynchronous successive halving (Li et al. 2018) as a sampler.

Each promotion is a new trial that carries SHERPA's extra parameters: ``resource`` (how much
to train), ``rung``, ``load_from`` (the parent's ``save_to``: the script loads those weights)
and ``save_to`` (where the script saves its own).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import History, Sampler
from ridgeline.store.records import COMPLETED

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["SuccessiveHalvingSampler", "rungs_above", "whole"]


def rungs_above(r: float, R: float, eta: float) -> int:
    """``floor(log(R/r) / log(eta))``: how many times ``r`` grows by ``eta`` before passing
    ``R`` (the tolerance keeps log(1000)/log(10), 2.9999999999999996 in floats, at 3)."""
    return math.floor(math.log(R / r) / math.log(eta) + 1e-9)


def whole(resource: float) -> float:
    """A resource as SHERPA passes it to scripts: an int when it is a whole number."""
    return int(resource) if float(resource).is_integer() else resource


class SuccessiveHalvingSampler(Sampler):
    """Rungs ``0..K`` with ``K = floor(log(R/r)/log(eta)) - s``; rung k trains for
    ``r * eta**(s+k)``. Each proposal promotes, scanning rungs K-1 down to 0, the first trial
    not yet promoted among the best ``n // eta`` of a rung's n completed trials; otherwise it
    starts a new configuration at rung 0. Exhausted once ``max_finished_configs`` trials have
    completed rung K."""

    def __init__(
        self, r: float = 1, R: float = 9, eta: float = 3, s: int = 0, max_finished_configs: int = 50
    ) -> None:
        if not (r > 0 and R >= r and eta > 1 and s >= 0):
            raise ConfigError(
                f"SuccessiveHalving needs r > 0, R >= r, eta > 1 and s >= 0 "
                f"(got r={r}, R={R}, eta={eta}, s={s})"
            )
        self.r, self.R, self.eta, self.s = r, R, eta, s
        self.top = rungs_above(r, R, eta) - s
        if self.top < 0:
            raise ConfigError(f"SuccessiveHalving: s={s} leaves no rung; use s <= {self.top + s}")
        self.max_finished_configs = max_finished_configs
        self.promoted: set[int] = set()  # ids of trials already promoted
        self.count = 0  # proposals made; also the next ``save_to`` name

    def resource(self, rung: int) -> float:
        return whole(self.r * self.eta ** (self.s + rung))

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None:
        completed = [t for t in history.trials if t.status == COMPLETED]
        if sum(t.params.get("rung") == self.top for t in completed) >= self.max_finished_configs:
            return None
        self.count += 1
        for rung in range(self.top - 1, -1, -1):
            ranked = [t for t in completed if t.params.get("rung") == rung]
            ranked = [t for t in ranked if t.objective is not None]
            ranked.sort(key=lambda t: t.objective, reverse=not history.lower_is_better)  # type: ignore[arg-type,return-value]
            for parent in ranked[: len(ranked) // int(self.eta)]:
                if parent.number not in self.promoted:
                    self.promoted.add(parent.number)
                    params = {n: parent.params[n] for n in space.names}
                    return params | self._extras(rung + 1, str(parent.params.get("save_to", "")))
        return space.sample(rng) | self._extras(0, "")

    def _extras(self, rung: int, load_from: str) -> dict[str, Any]:
        return {
            "resource": self.resource(rung),
            "rung": rung,
            "load_from": load_from,
            "save_to": str(self.count),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"promoted": sorted(self.promoted), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.promoted = set(state["promoted"])
        self.count = state["count"]
