"""Searchers that run every trial to ``max_length`` from fixed or random configurations:
``single``, ``random``, ``grid`` and ``quasi_random``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ridgeline.config.checks import Problems
from ridgeline.config.hyperparameters import grid_size, parse_hyperparameters
from ridgeline.config.searcher.spec import (
    COMMON,
    TRIALS,
    Plan,
    SearcherSpec,
    concurrency_text,
    full_training,
    length_text,
)

if TYPE_CHECKING:
    from ridgeline.config.model import ExperimentConfig, SearcherConfig
    from ridgeline.samplers.base import Sampler
    from ridgeline.searchers.base import Searcher

__all__ = ["GRID", "QUASI_RANDOM", "RANDOM", "SINGLE", "SPECS"]


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
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.samplers.random import RandomSampler
        from ridgeline.searchers.fifo import FIFOSearcher

        return FIFOSearcher(RandomSampler(), 1, config.searcher.max_length)

    def plan(self, searcher: SearcherConfig, hyperparameters: Mapping[str, Any] | None) -> Plan:
        lines = (f"Trials: 1, {length_text(searcher)}", "Concurrency: 1")
        return Plan(1, full_training(searcher, 1), lines)


class Random(SearcherSpec):
    """``max_trials`` configurations drawn at random."""

    name = "random"
    fields = (*COMMON, *TRIALS)
    #: What the trials' configurations are, for ``preview-search``.
    drawn = "random configurations"

    def sampler(self) -> Sampler:
        """Where the configurations come from (loaded only when a searcher is built)."""
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.samplers.random import RandomSampler

        return RandomSampler()

    def build(self, config: ExperimentConfig) -> Searcher:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.fifo import FIFOSearcher

        s = config.searcher
        return FIFOSearcher(self.sampler(), s.max_trials, s.max_length, replace_invalid=True)

    def plan(self, searcher: SearcherConfig, hyperparameters: Mapping[str, Any] | None) -> Plan:
        s = searcher
        lines = (
            f"Trials: {s.max_trials} {self.drawn}, each {length_text(s)}",
            concurrency_text(s),
        )
        return Plan(s.max_trials, full_training(s), lines)


class QuasiRandom(Random):
    """``max_trials`` configurations from a scrambled Sobol' sequence: even coverage of the
    space from the first trials on, at random search's cost."""

    name = "quasi_random"
    drawn = (
        "quasi-random configurations (a scrambled Sobol' sequence, spread evenly over the space)"
    )

    def sampler(self) -> Sampler:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.samplers.qmc import QuasiRandomSampler

        return QuasiRandomSampler()


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
        from ridgeline.config import grid_points  # lazy: import cycle with ridgeline.config

        # lazy: keeps `import ridgeline.config` light
        from ridgeline.samplers.iterate import IterateSampler
        from ridgeline.samplers.random import RandomSampler
        from ridgeline.searchers.fifo import FIFOSearcher

        length = config.searcher.max_length
        points = grid_points(config)
        if not points:  # no hyperparameters: no grid point, no trial (as Determined)
            return FIFOSearcher(RandomSampler(), 0, length)
        return FIFOSearcher(IterateSampler(points), None, length)

    def plan(self, searcher: SearcherConfig, hyperparameters: Mapping[str, Any] | None) -> Plan:
        problems = Problems()
        _, flat = parse_hyperparameters(problems, hyperparameters or {}, grid=True)
        if hyperparameters is None or problems:  # the grid is unknown: so is its size
            return super().plan(searcher, hyperparameters)
        size = grid_size(flat)
        lines = (
            f"Grid points: {size}",
            f"Trials: {size}, one per grid point, each {length_text(searcher)}",
            concurrency_text(searcher),
        )
        return Plan(size, full_training(searcher, size), lines)


SINGLE, RANDOM, QUASI_RANDOM, GRID = Single(), Random(), QuasiRandom(), Grid()
#: This module's searchers, in the order messages list them.
SPECS = (SINGLE, RANDOM, GRID, QUASI_RANDOM)
