"""The sampler promises (``ridgeline.testing.sampler_conformance``) for the samplers that
wrap others and for those behind SHERPA's algorithms; the plain samplers' own test modules
run them for themselves."""

from __future__ import annotations

from typing import ClassVar

from ridgeline.samplers.base import Sampler
from ridgeline.samplers.compose import ChainSampler, LimitSampler, RepeatSampler
from ridgeline.samplers.grid import GridSampler
from ridgeline.samplers.random import RandomSampler
from ridgeline.sherpa.samplers.halving import SuccessiveHalvingSampler
from ridgeline.sherpa.samplers.hyperband import HyperbandSampler
from ridgeline.sherpa.samplers.pbt import PopulationBasedTrainingSampler
from ridgeline.testing.sampler_conformance import SamplerConformance


class TestChainConformance(SamplerConformance):
    def make(self) -> Sampler:
        return ChainSampler([GridSampler(num_grid_points=2), RandomSampler()])


class TestChainThatRunsOutConformance(SamplerConformance):
    exhausts = True

    def make(self) -> Sampler:
        return ChainSampler([LimitSampler(RandomSampler(), 3), GridSampler(num_grid_points=2)])


class TestLimitConformance(SamplerConformance):
    exhausts = True

    def make(self) -> Sampler:
        return LimitSampler(RandomSampler(), 7)


class TestRepeatConformance(SamplerConformance):
    repeats = 3

    def make(self) -> Sampler:
        return RepeatSampler(RandomSampler(), num_times=3)


class TestSuccessiveHalvingConformance(SamplerConformance):
    exhausts = True
    proposals: ClassVar[int] = 20

    def make(self) -> Sampler:
        return SuccessiveHalvingSampler(r=1, R=9, eta=3, max_finished_configs=2)


class TestHyperbandConformance(SamplerConformance):
    exhausts = True

    def make(self) -> Sampler:
        return HyperbandSampler(r=1, R=9, eta=3)


class TestPopulationBasedTrainingConformance(SamplerConformance):
    exhausts = True

    def make(self) -> Sampler:
        return PopulationBasedTrainingSampler(num_generations=3, population_size=4)
