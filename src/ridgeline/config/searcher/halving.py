"""Synchronous successive halving: ``sync_halving`` (one bracket) and ``hyperband`` (brackets
of 1 to ``max_rungs`` rungs side by side)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ridgeline.config.checks import Problems, as_int, join
from ridgeline.config.searcher.spec import (
    COMMON,
    TRIALS,
    Plan,
    SearcherSpec,
    draw,
    parse_divisor,
    parse_sampler,
)

if TYPE_CHECKING:
    from ridgeline.config.model import ExperimentConfig, SearcherConfig
    from ridgeline.searchers.base import Searcher

__all__ = ["HYPERBAND", "SPECS", "SYNC_HALVING", "HyperbandOptions", "SyncHalvingOptions"]

#: Fields of Determined's removed sync_halving that ridgeline's own sync_halving lacks.
_OLD_SYNC_HALVING = ("budget", "train_stragglers")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyncHalvingOptions:
    divisor: float = 4
    num_rungs: int
    sampler: str | None = None


@dataclasses.dataclass(frozen=True)
class HyperbandOptions:
    divisor: float = 3
    max_rungs: int = 5
    sampler: str | None = None


class HalvingSpec(SearcherSpec):
    """What both share: a divisor, a rung count, a required ``max_length``, a sampler."""

    #: The field that counts the rungs.
    rungs_field: str

    def parse_options(
        self, p: Problems, data: dict[str, Any], length: int | None
    ) -> dict[str, Any]:
        opts = self.defaults()
        parse_sampler(p, data, opts)
        parse_divisor(p, data, opts, "3 (or 4)")
        path = "searcher"
        rungs = self.rungs_field
        if data.get(rungs) is not None:
            opts[rungs] = as_int(p, join(path, rungs), data[rungs], 1)
        elif rungs not in opts:
            p.missing(join(path, rungs), rungs, "give the number of rungs, e.g. 3")
        if length is None and data.get("max_length") is None:
            p.missing(
                join(path, "max_length"),
                "max_length",
                f"the {self.name} searcher needs the length of its top rung: "
                f"max_length: {{epochs: N}}",
            )
        return opts

    def searcher_class(self) -> Callable[..., Searcher]:
        """The searcher's class (loaded only when one is built)."""
        raise NotImplementedError

    def rung_plan(self, searcher: SearcherConfig, max_length: int) -> Plan:
        """``plan`` once the top rung's length is known."""
        raise NotImplementedError

    def plan(self, searcher: SearcherConfig, hyperparameters: Mapping[str, Any] | None) -> Plan:
        if searcher.max_length is None:  # no rungs to lay out
            return super().plan(searcher, hyperparameters)
        return self.rung_plan(searcher, int(searcher.max_length))

    def build(self, config: ExperimentConfig) -> Searcher:
        s = config.searcher
        o = self.options(s)
        _, max_length = self.length_budget(s)
        return self.searcher_class()(
            draw(o.sampler),
            max_trials=s.max_trials,
            max_length=max_length,
            divisor=o.divisor,
            max_concurrent_trials=s.max_concurrent_trials,
            **{self.rungs_field: getattr(o, self.rungs_field)},
        )


class SyncHalving(HalvingSpec):
    name = "sync_halving"
    fields = (*COMMON, *TRIALS, "divisor", "num_rungs", "sampler")
    Options = SyncHalvingOptions
    rungs_field = "num_rungs"

    def refuse(self, p: Problems, data: dict[str, Any]) -> bool:
        if not any(key in data for key in _OLD_SYNC_HALVING):
            return False
        old = ", ".join(k for k in _OLD_SYNC_HALVING if k in data)
        p.add(
            "searcher",
            f"sync_halving as Determined wrote it ({old}) "
            f"has been removed in Determined; ridgeline's sync_halving takes max_trials, "
            f"max_length, num_rungs and divisor (optionally max_concurrent_trials, sampler): "
            f"replace budget with max_trials and drop train_stragglers, or use adaptive_asha",
        )
        return True

    def searcher_class(self) -> Callable[..., Searcher]:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.hyperband import SyncHalvingSearcher

        return SyncHalvingSearcher

    def rung_plan(self, searcher: SearcherConfig, max_length: int) -> Plan:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.hyperband import (
            planned_length,
            sync_halving_lines,
            sync_halving_plan,
        )

        s = searcher
        o: SyncHalvingOptions = self.options(s)
        bracket = sync_halving_plan(
            max_length,
            int(s.max_trials or 1),
            o.num_rungs,
            o.divisor,
            s.max_concurrent_trials,
        )
        lines = sync_halving_lines(bracket, o.divisor, s.length_unit)
        return Plan(bracket.max_trials, planned_length(bracket), tuple(lines))


class Hyperband(HalvingSpec):
    name = "hyperband"
    fields = (*COMMON, *TRIALS, "divisor", "max_rungs", "sampler")
    Options = HyperbandOptions
    rungs_field = "max_rungs"

    def parse_trials(
        self, p: Problems, data: dict[str, Any], options: dict[str, Any]
    ) -> int | None:
        if data.get("max_trials") is None:  # the brackets decide how many
            return None
        return super().parse_trials(p, data, options)

    def searcher_class(self) -> Callable[..., Searcher]:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.hyperband import HyperbandSearcher

        return HyperbandSearcher

    def rung_plan(self, searcher: SearcherConfig, max_length: int) -> Plan:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.hyperband import hyperband_lines, hyperband_plan, planned_length

        s = searcher
        o: HyperbandOptions = self.options(s)
        brackets = hyperband_plan(
            max_length, o.divisor, o.max_rungs, s.max_trials, s.max_concurrent_trials
        )
        lines = hyperband_lines(brackets, o.divisor, s.length_unit)
        trials = sum(b.max_trials for b in brackets)
        return Plan(trials, sum(planned_length(b) for b in brackets), tuple(lines))


SYNC_HALVING, HYPERBAND = SyncHalving(), Hyperband()
#: This module's searchers, in the order messages list them.
SPECS = (SYNC_HALVING, HYPERBAND)
