"""SHERPA-style Hyperband (Li et al. 2018) as a sampler: synchronous brackets, new trials.

Like SHERPA's ``SuccessiveHalving``, every promotion is a new trial carrying ``resource`` (how
much to train), ``rung``, ``bracket``, ``load_from`` (the parent's ``save_to``: the script
loads those weights) and ``save_to``. Brackets run one after another; inside a bracket a rung
is decided only once all its trials have finished (the sampler answers ``WAIT`` until then).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import WAIT, History, Sampler
from ridgeline.sherpa.samplers.halving import rungs_above, whole
from ridgeline.store.records import CANCELED, COMPLETED, FAILED, INVALID_HP, STOPPED

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["HyperbandSampler"]

_ENDED = (COMPLETED, FAILED, STOPPED, INVALID_HP, CANCELED)


@dataclass(eq=False, repr=False)
class HyperbandState:
    """Where the brackets stand."""

    bracket: int = 0  # index into brackets(), s = s_max - bracket
    rung: int = 0
    quota: int = 0  # trials the current rung gets
    issued: int = 0  # trials proposed in the current rung
    count: int = 0  # proposals made; also the next ``save_to`` name


class HyperbandSampler(Sampler, HyperbandState):
    """Brackets ``s = s_max .. 0`` with ``s_max = floor(log(R/r)/log(eta))``: bracket s starts
    ``ceil((s_max+1)/(s+1) * eta**s)`` configurations with resource ``R * eta**-s`` and keeps
    the best ``1/eta`` of each rung, multiplying the resource by ``eta``, up to ``R``."""

    def __init__(self, r: float = 1, R: float = 9, eta: float = 3) -> None:
        if not (r > 0 and R >= r and eta > 1):
            raise ConfigError(
                f"Hyperband needs r > 0, R >= r and eta > 1 (got r={r}, R={R}, eta={eta})"
            )
        self.r, self.R, self.eta = r, R, eta
        self.s_max = rungs_above(r, R, eta)
        self.quota = self.sizes(0)[0]

    def sizes(self, bracket: int) -> list[int]:
        """Trials per rung of a bracket."""
        s = self.s_max - bracket
        n = math.ceil((self.s_max + 1) / (s + 1) * self.eta**s)
        return [max(int(n / self.eta**k), 1) for k in range(s + 1)]

    def resource(self, bracket: int, rung: int) -> float:
        return whole(self.R * self.eta ** (rung - (self.s_max - bracket)))

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        while self.bracket <= self.s_max:
            if self.issued < self.quota:
                return self._next(space, history, rng)
            mine = self._ranked(history, self.rung, ended_only=False)
            if len(mine) < self.issued or any(t.status not in _ENDED for t in mine):
                return WAIT  # synchronous: the rung is decided when all of it has finished
            sizes = self.sizes(self.bracket)
            if self.rung + 1 < len(sizes):
                survivors = len(self._ranked(history, self.rung))
                self.rung += 1
                self.quota = min(sizes[self.rung], survivors)
            else:
                self.quota = 0
            if self.quota == 0:  # the bracket is over (or nothing survived): next bracket
                self.bracket, self.rung = self.bracket + 1, 0
                self.quota = self.sizes(self.bracket)[0] if self.bracket <= self.s_max else 0
            self.issued = 0
        return None

    def _ranked(self, history: History, rung: int, ended_only: bool = True) -> list[Any]:
        """The current bracket's trials at ``rung``; by default the completed ones with a
        result, best first."""
        found = [
            t
            for t in history.trials
            if t.params.get("bracket") == self.bracket and t.params.get("rung") == rung
        ]
        if not ended_only:
            return found
        found = [t for t in found if t.status == COMPLETED and t.objective is not None]
        return sorted(found, key=lambda t: t.objective, reverse=not history.lower_is_better)

    def _next(self, space: SearchSpace, history: History, rng: random.Random) -> dict[str, Any]:
        self.count += 1
        if self.rung == 0:
            params, load_from = space.sample(rng), ""
        else:
            parent = self._ranked(history, self.rung - 1)[self.issued]
            params = {n: parent.params[n] for n in space.names}
            load_from = str(parent.params.get("save_to", ""))
        self.issued += 1
        return params | {
            "resource": self.resource(self.bracket, self.rung),
            "rung": self.rung,
            "bracket": self.bracket,
            "load_from": load_from,
            "save_to": str(self.count),
        }
