"""Searchers that run every trial to ``max_length``: ``single``, ``random``, ``grid`` and the
model-based ``bayesian``, ``tpe`` and ``auto``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from ridgeline.config.checks import Problems, as_int
from ridgeline.config.searcher.spec import (
    COMMON,
    TRIALS,
    SearcherSpec,
    concurrency_text,
    length_text,
)

if TYPE_CHECKING:
    from ridgeline.config.model import ExperimentConfig
    from ridgeline.searchers.base import Searcher

__all__ = ["AUTO", "BAYESIAN", "GRID", "RANDOM", "SINGLE", "TPE", "ModelOptions"]


class Single(SearcherSpec):
    """One trial of the constant (or first drawn) configuration."""

    name = "single"
    fields = (*COMMON, "max_length")
    fixed_concurrency = 1

    def misplaced_fix(self, key: str) -> str:
        if key in ("max_trials", "max_concurrent_trials"):
            return "single runs exactly one trial; remove it, or use name: random"
        return super().misplaced_fix(key)

    def parse_trials(self, p: Problems, data: dict[str, Any], options: dict[str, Any]) -> int:
        return 1

    def build(self, config: ExperimentConfig) -> Searcher:
        from ridgeline.samplers.random import RandomSampler
        from ridgeline.searchers.fifo import FIFOSearcher

        return FIFOSearcher(RandomSampler(), 1, config.searcher.max_length)

    def describe(self, config: ExperimentConfig) -> list[str]:
        return [f"Trials: 1, {length_text(config.searcher)}", "Concurrency: 1"]


class Random(SearcherSpec):
    """``max_trials`` configurations drawn at random."""

    name = "random"
    fields = (*COMMON, *TRIALS)

    def build(self, config: ExperimentConfig) -> Searcher:
        from ridgeline.samplers.random import RandomSampler
        from ridgeline.searchers.fifo import FIFOSearcher

        s = config.searcher
        return FIFOSearcher(RandomSampler(), s.max_trials, s.max_length, replace_invalid=True)

    def describe(self, config: ExperimentConfig) -> list[str]:
        s = config.searcher
        return [
            f"Trials: {s.max_trials} random configurations, each {length_text(s)}",
            concurrency_text(s),
        ]


class Grid(SearcherSpec):
    """One trial per grid point of the hyperparameters."""

    name = "grid"
    fields = (*COMMON, *TRIALS)

    def parse_trials(self, p: Problems, data: dict[str, Any], options: dict[str, Any]) -> None:
        if data.get("max_trials") is not None:
            p.notes.append(
                (
                    "searcher.max_trials is ignored by the grid searcher: it runs every grid point",
                    False,
                )
            )
        return None

    def build(self, config: ExperimentConfig) -> Searcher:
        from ridgeline.config import grid_points
        from ridgeline.samplers.iterate import IterateSampler
        from ridgeline.samplers.random import RandomSampler
        from ridgeline.searchers.fifo import FIFOSearcher

        length = config.searcher.max_length
        points = grid_points(config)
        if not points:  # no hyperparameters: no grid point, no trial (as Determined)
            return FIFOSearcher(RandomSampler(), 0, length)
        return FIFOSearcher(IterateSampler(points), None, length)

    def describe(self, config: ExperimentConfig) -> list[str]:
        from ridgeline.config.hyperparameters import grid_size, parse_hyperparameters

        _, flat = parse_hyperparameters(Problems(), config.hyperparameters, grid=True)
        size = grid_size(flat)
        s = config.searcher
        return [
            f"Grid points: {size}",
            f"Trials: {size}, one per grid point, each {length_text(s)}",
            concurrency_text(s),
        ]


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """Options of the model-based searchers; None leaves the sampler's own default."""

    num_initial: int | None = None
    acquisition: str | None = None


class ModelBased(SearcherSpec):
    """``max_trials`` configurations suggested by a model of the results so far."""

    Options = ModelOptions
    #: What preview-search says suggests the configurations.
    model: ClassVar[str]

    def parse_options(
        self, p: Problems, data: dict[str, Any], length: int | None
    ) -> dict[str, Any]:
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
        from ridgeline.samplers.factory import sampler_for
        from ridgeline.searchers.fifo import FIFOSearcher

        s = config.searcher
        sampler = sampler_for(self.name, **s.options)
        return FIFOSearcher(sampler, s.max_trials, s.max_length, replace_invalid=True)

    def model_text(self, options: ModelOptions) -> str:
        return self.model

    def describe(self, config: ExperimentConfig) -> list[str]:
        s = config.searcher
        options = self.options(s)
        first = options.num_initial
        start = f"{first} space-filling points" if first else "a space-filling design"
        return [
            f"Trials: {s.max_trials}, each {length_text(s)}",
            f"Suggestions: {start}, then {self.model_text(options)}; running trials are "
            f"accounted for",
            concurrency_text(s),
        ]


class Bayesian(ModelBased):
    name = "bayesian"
    fields = (*COMMON, *TRIALS, "num_initial", "acquisition")
    model = "a Gaussian process (expected improvement"

    def model_text(self, options: ModelOptions) -> str:
        acquisition = f", {options.acquisition}" if options.acquisition is not None else ""
        return f"{self.model}{acquisition})"


class Tpe(ModelBased):
    name = "tpe"
    fields = (*COMMON, *TRIALS, "num_initial")
    model = "a multivariate TPE"


class Auto(ModelBased):
    name = "auto"
    fields = (*COMMON, *TRIALS)
    Options = ModelOptions
    model = "a Gaussian process, or TPE for large budgets and spaces"

    def parse_options(
        self, p: Problems, data: dict[str, Any], length: int | None
    ) -> dict[str, Any]:
        return {}


SINGLE, RANDOM, GRID = Single(), Random(), Grid()
BAYESIAN, TPE, AUTO = Bayesian(), Tpe(), Auto()
