"""Searchers that run every trial to ``max_length`` from configurations a model of the results
so far suggests: ``bayesian`` (a Gaussian process), ``tpe`` and ``auto`` (either, by budget)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ridgeline.config.checks import Problems, as_int
from ridgeline.config.searcher.spec import (
    COMMON,
    TRIALS,
    Plan,
    SearcherSpec,
    concurrency_text,
    full_training,
    length_text,
)
from ridgeline.samplers.factory import sampler_for

if TYPE_CHECKING:
    from ridgeline.config.model import ExperimentConfig, SearcherConfig
    from ridgeline.searchers.base import Searcher

__all__ = ["AUTO", "BAYESIAN", "SPECS", "TPE", "ModelOptions"]


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """Options of the model-based searchers; None leaves the sampler's own default."""

    num_initial: int | None = None
    acquisition: str | None = None


class ModelBased(SearcherSpec):
    """``max_trials`` configurations suggested by a model of the results so far."""

    Options = ModelOptions
    #: The model that suggests configurations, as preview-search names it.
    model: ClassVar[str]

    def parse_options(
        self, p: Problems, data: dict[str, Any], length: int | None
    ) -> dict[str, Any]:
        # tpe has no acquisition: one given there is refused as another searcher's field, and
        # a bad value is named as well.
        opts: dict[str, Any] = {}
        if data.get("num_initial") is not None:
            opts["num_initial"] = as_int(p, "searcher.num_initial", data["num_initial"], 1)
        acquisition = data.get("acquisition")
        if acquisition is not None:
            if acquisition not in ("ei", "pi", "lcb"):
                p.bad("searcher.acquisition", "one of ei, pi, lcb", acquisition)
            opts["acquisition"] = acquisition
        return opts

    def build(self, config: ExperimentConfig) -> Searcher:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.fifo import FIFOSearcher

        s = config.searcher
        sampler = sampler_for(self.name, **s.options)
        return FIFOSearcher(sampler, s.max_trials, s.max_length, replace_invalid=True)

    def model_text(self, options: ModelOptions) -> str:
        """The model, in words, with the options that shape it."""
        return self.model

    def plan(self, searcher: SearcherConfig, hyperparameters: Mapping[str, Any] | None) -> Plan:
        s = searcher
        options = self.options(s)
        first = options.num_initial
        start = f"{first} space-filling points" if first else "a space-filling design"
        lines = (
            f"Trials: {s.max_trials}, each {length_text(s)}",
            f"Suggestions: {start}, then {self.model_text(options)}; running trials are "
            f"accounted for",
            concurrency_text(s),
        )
        return Plan(s.max_trials, full_training(s), lines)


class Bayesian(ModelBased):
    name = "bayesian"
    fields = (*COMMON, *TRIALS, "num_initial", "acquisition")
    model = "a Gaussian process"

    def model_text(self, options: ModelOptions) -> str:
        acquisition = f", {options.acquisition}" if options.acquisition is not None else ""
        return f"{self.model} (expected improvement{acquisition})"


class Tpe(ModelBased):
    name = "tpe"
    fields = (*COMMON, *TRIALS, "num_initial")
    model = "a multivariate TPE"


class Auto(ModelBased):
    name = "auto"
    fields = (*COMMON, *TRIALS)
    model = "a Gaussian process, or TPE for large budgets and spaces"

    def parse_options(
        self, p: Problems, data: dict[str, Any], length: int | None
    ) -> dict[str, Any]:
        return {}


BAYESIAN, TPE, AUTO = Bayesian(), Tpe(), Auto()
#: This module's searchers, in the order messages list them.
SPECS = (BAYESIAN, TPE, AUTO)
