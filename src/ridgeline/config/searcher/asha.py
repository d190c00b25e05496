"""Asynchronous successive halving: ``adaptive_asha`` (a tournament of ASHA brackets) and
``async_halving`` (one bracket), by length or, Determined 0.38 style, by a time metric."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ridgeline.config.checks import Problems, as_bool, as_int, as_str, join, suggest
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

__all__ = [
    "ADAPTIVE_ASHA",
    "ASYNC_HALVING",
    "MODES",
    "SPECS",
    "ASHASpec",
    "AdaptiveOptions",
    "AsyncHalvingOptions",
]

MODES = ("standard", "aggressive", "conservative")
_ASHA_FIELDS = ("divisor", "stop_once", "time_metric", "max_time", "sampler")


@dataclasses.dataclass(frozen=True)
class AdaptiveOptions:
    """``adaptive_asha``: brackets by ``mode`` (or ``bracket_rungs``), Determined's defaults."""

    mode: str = "standard"
    divisor: float = 4
    max_rungs: int = 5
    bracket_rungs: list[int] = dataclasses.field(default_factory=list)
    stop_once: bool = False
    time_metric: str | None = None
    max_time: int | None = None
    sampler: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class AsyncHalvingOptions:
    """``async_halving``: one bracket of ``num_rungs`` rungs."""

    divisor: float = 4
    stop_once: bool = False
    num_rungs: int
    time_metric: str | None = None
    max_time: int | None = None
    sampler: str | None = None


class ASHASpec(SearcherSpec):
    """What both ASHA searchers share: divisor, stop_once, the 0.38 time metric, sampler."""

    def parse_options(
        self, p: Problems, data: dict[str, Any], length: int | None
    ) -> dict[str, Any]:
        opts = self.defaults()
        parse_sampler(p, data, opts)
        parse_divisor(p, data, opts, "4 (or 3)")
        path = "searcher"
        if data.get("stop_once") is not None:
            opts["stop_once"] = as_bool(p, join(path, "stop_once"), data["stop_once"])
        self.parse_rungs(p, data, opts)
        time_metric, max_time = data.get("time_metric"), data.get("max_time")
        if time_metric is not None:
            opts["time_metric"] = as_str(p, join(path, "time_metric"), time_metric)
        if max_time is not None:
            opts["max_time"] = as_int(p, join(path, "max_time"), max_time, 1)
        if time_metric is not None and max_time is not None:
            self._note_038(p, data)
        if (time_metric is None) != (max_time is None):
            absent = "time_metric" if time_metric is None else "max_time"
            p.missing(
                join(path, absent),
                absent,
                "time_metric and max_time go together; set both, or set max_length instead",
            )
        elif length is None and data.get("max_length") is None and time_metric is None:
            p.missing(
                join(path, "max_length"),
                "max_length",
                f"the {self.name} searcher needs a training budget: max_length: {{epochs: N}} "
                f"(or time_metric and max_time, Determined 0.38 style)",
            )
        return opts

    def parse_rungs(self, p: Problems, data: dict[str, Any], opts: dict[str, Any]) -> None:
        """The fields that shape the brackets."""
        raise NotImplementedError

    def _note_038(self, p: Problems, data: dict[str, Any]) -> None:
        """Determined 0.38 ASHA (time_metric + max_time): the fields it deprecates are warned
        of, as Determined does; the rungs follow max_time and trials are only ever stopped."""
        if data.get("max_length") is not None:
            p.notes.append(
                (
                    f"searcher.max_length is deprecated in Determined 0.38 and not used by the "
                    f"{self.name} searcher when time_metric and max_time are set: its rungs "
                    f"follow max_time; remove max_length",
                    True,
                )
            )
        if data.get("stop_once") is False:
            p.notes.append(
                (
                    "searcher.stop_once: false is ignored: with time_metric and max_time "
                    "(Determined 0.38) ASHA only stops trials, it never pauses or promotes them; "
                    "remove stop_once",
                    True,
                )
            )
        elif data.get("stop_once") is not None:
            p.notes.append(
                (
                    "searcher.stop_once is deprecated in Determined 0.38 (ASHA always stops "
                    "trials there); remove it",
                    True,
                )
            )

    def time_horizon(self, searcher: SearcherConfig) -> tuple[str, int] | None:
        metric, horizon = searcher.options.get("time_metric"), searcher.options.get("max_time")
        if metric is None or horizon is None:
            return None
        return str(metric), int(horizon)

    def rungs(self, options: Any) -> dict[str, Any]:
        """The bracket arguments of ``bracket_plan`` (``max_rungs``, ``bracket_rungs``, ...)."""
        raise NotImplementedError

    def shape(self, options: Any) -> dict[str, Any]:
        """The arguments that shape the rungs, as the searcher's constructor takes them."""
        raise NotImplementedError

    def classes(self) -> tuple[Callable[..., Searcher], Callable[..., Searcher]]:
        """The searcher that ranks by length and the one that ranks by a time metric."""
        raise NotImplementedError

    def build(self, config: ExperimentConfig) -> Searcher:
        s = config.searcher
        o = self.options(s)
        by_length, by_time = self.classes()
        common = {"divisor": o.divisor, "max_concurrent_trials": s.max_concurrent_trials}
        timed = self.time_horizon(s)
        if timed is not None:  # Determined 0.38: stopping ASHA over the time metric
            return by_time(
                draw(o.sampler),
                max_trials=s.max_trials,
                max_time=timed[1],
                **common,
                **self.shape(o),
            )
        max_trials, max_length = self.length_budget(s)
        return by_length(
            draw(o.sampler),
            max_trials=max_trials,
            max_length=max_length,
            stop_once=bool(o.stop_once),
            **common,
            **self.shape(o),
        )

    def plan(self, searcher: SearcherConfig, hyperparameters: Mapping[str, Any] | None) -> Plan:
        """The brackets, their trials, and full training of every trial (ASHA stops short of
        it); Determined 0.38 style, training is measured by ``max_time``."""
        s = searcher
        o = self.options(s)
        timed = self.time_horizon(s)
        horizon = timed[1] if timed is not None else s.max_length
        if horizon is None:
            return super().plan(s, hyperparameters)
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.adaptive import bracket_lines, bracket_plan
        from ridgeline.searchers.asha_time import describe_time_plan

        rungs = self.rungs(o)
        brackets = bracket_plan(
            int(horizon),
            int(s.max_trials or 1),
            o.divisor,
            max_concurrent_trials=s.max_concurrent_trials,
            **rungs,
        )
        trials = sum(b.max_trials for b in brackets)
        shape = {k: v for k, v in rungs.items() if k in ("mode", "bracket_rungs")}
        if timed is not None:
            lines = describe_time_plan(brackets, timed[0], timed[1], o.divisor, **shape)
        else:
            lines = bracket_lines(
                brackets, o.divisor, unit=s.length_unit, stop_once=bool(o.stop_once), **shape
            )
        return Plan(trials, trials * int(horizon), tuple(lines))


class AdaptiveASHA(ASHASpec):
    name = "adaptive_asha"
    fields = (*COMMON, *TRIALS, *_ASHA_FIELDS, "mode", "max_rungs", "bracket_rungs")
    Options = AdaptiveOptions

    def parse_rungs(self, p: Problems, data: dict[str, Any], opts: dict[str, Any]) -> None:
        path = "searcher"
        mode = data.get("mode")
        if mode is not None:
            if mode not in MODES:
                hint = suggest(str(mode), MODES)
                fix = f"did you mean {hint!r}?" if hint else ""
                p.bad(join(path, "mode"), f"one of {', '.join(MODES)}", mode, fix)
            opts["mode"] = mode
        if data.get("max_rungs") is not None:
            opts["max_rungs"] = as_int(p, join(path, "max_rungs"), data["max_rungs"], 1)
        rungs = data.get("bracket_rungs")
        if rungs is not None:
            if not isinstance(rungs, list):
                p.bad(join(path, "bracket_rungs"), "a list of rung counts", rungs, "e.g. [3, 2]")
            else:
                for i, r in enumerate(rungs):
                    as_int(p, f"{path}.bracket_rungs[{i}]", r, 1)
                opts["bracket_rungs"] = list(rungs)

    def rungs(self, options: AdaptiveOptions) -> dict[str, Any]:
        return {
            "max_rungs": options.max_rungs,
            "mode": options.mode,
            "bracket_rungs": options.bracket_rungs or None,
        }

    def shape(self, options: AdaptiveOptions) -> dict[str, Any]:
        return self.rungs(options)

    def classes(self) -> tuple[Callable[..., Searcher], Callable[..., Searcher]]:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.adaptive import AdaptiveASHASearcher
        from ridgeline.searchers.asha_time import TimeAdaptiveASHASearcher

        return AdaptiveASHASearcher, TimeAdaptiveASHASearcher


class AsyncHalving(ASHASpec):
    name = "async_halving"
    fields = (*COMMON, *TRIALS, *_ASHA_FIELDS, "num_rungs")
    Options = AsyncHalvingOptions
    unit_required = True

    def parse_rungs(self, p: Problems, data: dict[str, Any], opts: dict[str, Any]) -> None:
        if data.get("num_rungs") is None:
            p.missing("searcher.num_rungs", "num_rungs", "give the number of rungs, e.g. 3")
        else:
            opts["num_rungs"] = as_int(p, "searcher.num_rungs", data["num_rungs"], 1)

    def rungs(self, options: AsyncHalvingOptions) -> dict[str, Any]:
        return {"max_rungs": options.num_rungs, "bracket_rungs": [options.num_rungs]}

    def shape(self, options: AsyncHalvingOptions) -> dict[str, Any]:
        return {"num_rungs": options.num_rungs}

    def classes(self) -> tuple[Callable[..., Searcher], Callable[..., Searcher]]:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.asha import ASHASearcher
        from ridgeline.searchers.asha_time import TimeASHASearcher

        return ASHASearcher, TimeASHASearcher


ADAPTIVE_ASHA, ASYNC_HALVING = AdaptiveASHA(), AsyncHalving()
#: This module's searchers, in the order messages list them.
SPECS = (ADAPTIVE_ASHA, ASYNC_HALVING)
