"""SHERPA's ``sherpa.algorithms.successive_halving``."""

from __future__ import annotations

from ridgeline.samplers.base import Sampler
from ridgeline.sherpa.algorithms.core import Algorithm
from ridgeline.sherpa.samplers.halving import SuccessiveHalvingSampler
from ridgeline.values import whole_number

__all__ = ["SuccessiveHalving"]


class SuccessiveHalving(Algorithm):
    """SHERPA's asynchronous successive halving: trials get ``resource``, ``rung``,
    ``load_from`` and ``save_to`` parameters; a promoted configuration is a new trial that
    loads its parent's saved weights (``load_from``) and trains ``resource`` more."""

    def __init__(
        self,
        r: float = 1,
        R: float = 9,
        eta: float = 3,
        s: int = 0,
        max_finished_configs: int = 50,
    ) -> None:
        self.max_finished_configs = whole_number("max_finished_configs", max_finished_configs)
        self.r, self.R, self.eta, self.s = r, R, eta, s
        SuccessiveHalvingSampler(r, R, eta, s, self.max_finished_configs)  # validates now
        self.max_trials = None

    def _native_sampler(self) -> Sampler:
        return SuccessiveHalvingSampler(self.r, self.R, self.eta, self.s, self.max_finished_configs)

    make_sampler = Algorithm._sampler
