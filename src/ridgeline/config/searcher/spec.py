"""What every searcher name provides: its fields and their checks, its typed options, how it
is built, what preview-search says it will run and the training it plans to spend.

A spec reads the ``searcher:`` section in the order the config parser calls it
(``parse_length``, ``parse_trials``, ``parse_options``), so problems are listed in the same
order for every searcher. Options travel in ``SearcherConfig.options`` as a plain mapping (the
fields the config gave, defaults filled in); ``options()`` turns it into the spec's dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ridgeline.config.checks import Problems, as_int, as_number, join, show, suggest
from ridgeline.errors import ConfigError
from ridgeline.samplers.factory import SAMPLERS, sampler_for

if TYPE_CHECKING:
    from ridgeline.config.model import ExperimentConfig, SearcherConfig
    from ridgeline.samplers.base import Sampler
    from ridgeline.searchers.base import Searcher

__all__ = [
    "COMMON",
    "TRIALS",
    "NoOptions",
    "Plan",
    "SearcherSpec",
    "concurrency_text",
    "draw",
    "full_training",
    "length_text",
    "needs_budget",
    "parse_divisor",
    "parse_sampler",
]

#: Fields every searcher takes.
COMMON = ("name", "metric", "smaller_is_better", "source_trial_id", "source_checkpoint_uuid")
#: Fields of searchers that run a number of trials of one length.
TRIALS = ("max_length", "max_trials", "max_concurrent_trials")


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """Options of a searcher that has none beyond the common fields."""


class SearcherSpec:
    """One searcher name. Subclasses set ``name``, ``fields`` and ``Options`` and override
    the hooks their searcher needs; the defaults fit a searcher that runs ``max_trials``
    trials of ``max_length`` each."""

    name: ClassVar[str]
    #: Every field the searcher takes, common ones included (the order of did-you-mean hints).
    fields: ClassVar[tuple[str, ...]]
    #: The typed options; its defaults are Determined's and are written into the stored config.
    Options: ClassVar[type] = NoOptions
    #: Whether ``max_length`` must name its unit (Determined takes no bare integer there).
    unit_required: ClassVar[bool] = False
    #: Trials at once when the searcher fixes it (then ``max_concurrent_trials`` is no field).
    fixed_concurrency: ClassVar[int | None] = None

    # -- config validation --------------------------------------------------------------------

    def defaults(self) -> dict[str, Any]:
        """Defaults written into the stored ``searcher:`` mapping for absent fields."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self.Options):
            if f.default is not dataclasses.MISSING and f.default is not None:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out

    def refuse(self, p: Problems, data: dict[str, Any]) -> bool:
        """Record one problem and return True for a form of this searcher that is gone."""
        return False

    def misplaced_fix(self, key: str) -> str:
        """How to fix a field of another searcher given to this one."""
        return "remove it"

    def parse_length(
        self, p: Problems, data: dict[str, Any], length: int | None, unit: str | None
    ) -> tuple[int | None, str | None, dict[str, Any]]:
        """The training length each trial (or lineage) runs, and options parsed with it."""
        return length, unit, {}

    def parse_trials(
        self, p: Problems, data: dict[str, Any], options: dict[str, Any]
    ) -> int | None:
        """``max_trials``: required by default."""
        if data.get("max_trials") is None:
            p.missing(
                "searcher.max_trials",
                "max_trials",
                f"the {self.name} searcher needs the number of trials, e.g. max_trials: 16",
            )
            return None
        return as_int(p, "searcher.max_trials", data["max_trials"], 1)

    def parse_options(
        self, p: Problems, data: dict[str, Any], length: int | None
    ) -> dict[str, Any]:
        """The searcher's own fields, checked, defaults filled in."""
        return {}

    def options(self, searcher: SearcherConfig) -> Any:
        """``searcher.options`` as this spec's ``Options``."""
        return self.Options(**searcher.options)

    def time_horizon(self, searcher: SearcherConfig) -> tuple[str, int] | None:
        """(time_metric, max_time) when the searcher runs on a time metric, else None."""
        return None

    # -- running ------------------------------------------------------------------------------

    def build(self, config: ExperimentConfig) -> Searcher:
        """The searcher for a validated config; a ConfigError for one it cannot run."""
        raise needs_budget(self.name)

    def length_budget(self, searcher: SearcherConfig) -> tuple[int, int]:
        """(max_trials, max_length) of a searcher that trains by length; a ConfigError
        when no length was given (validation has filled max_trials by then)."""
        if searcher.max_length is None:
            raise needs_budget(self.name)
        return int(searcher.max_trials or 0), int(searcher.max_length)

    # -- preview-search and budgets -----------------------------------------------------------

    def plan(self, searcher: SearcherConfig, hyperparameters: Mapping[str, Any] | None) -> Plan:
        """What the searcher will run: ``max_trials`` trials trained to ``max_length`` at
        most (what full training would cost). ``hyperparameters`` is the config's raw
        section (None when unknown)."""
        s = searcher
        lines = [
            f"Trials: up to {s.max_trials}, each at most {length_text(s)}",
            concurrency_text(s),
        ]
        lines += [f"  {key}: {show(value)}" for key, value in s.options.items()]
        return Plan(s.max_trials, full_training(s), tuple(lines))


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a searcher will run, worked out once for ``preview-search`` (``lines``) and for
    ``experiment list`` (the budgets): ``trials`` is the most trials it creates and
    ``length`` the most training it spends over all of them; None where the script or a
    time metric decides."""

    trials: int | None
    length: int | None
    lines: tuple[str, ...]


def full_training(s: SearcherConfig, trials: int | None = None) -> int | None:
    """``trials`` (``max_trials`` by default) trained to ``max_length`` each, or None."""
    trials = s.max_trials if trials is None else trials
    return trials * s.max_length if trials is not None and s.max_length is not None else None


def parse_sampler(p: Problems, data: dict[str, Any], options: dict[str, Any]) -> None:
    """``sampler``: where new configurations come from (tpe under ASHA or Hyperband is BOHB)."""
    sampler = data.get("sampler")
    if sampler is None:
        return
    if sampler not in SAMPLERS:
        hint = suggest(str(sampler), SAMPLERS)
        fix = f"did you mean {hint!r}?" if hint else ""
        p.bad(join("searcher", "sampler"), f"one of {', '.join(SAMPLERS)}", sampler, fix)
    options["sampler"] = sampler


def parse_divisor(p: Problems, data: dict[str, Any], options: dict[str, Any], usual: str) -> None:
    """``divisor``: a number > 1; each rung keeps the best ``1/divisor`` of its trials."""
    if data.get("divisor") is None:
        return
    path = join("searcher", "divisor")
    d = as_number(p, path, data["divisor"])
    if d is not None and d <= 1:
        p.bad(path, "a number > 1", d, f"the usual divisor is {usual}")
    options["divisor"] = d


def draw(sampler: str | None) -> Sampler:
    """The sampler an adaptive searcher draws new configurations from."""
    return sampler_for(sampler or "random")


def length_text(s: SearcherConfig) -> str:
    """How long each trial trains, in words."""
    if s.max_length is None:
        return "trained for as long as its script decides (no searcher.max_length)"
    unit = s.length_unit or "units (the script's own)"
    if s.max_length == 1 and s.length_unit:
        unit = {"batches": "batch", "epochs": "epoch", "records": "record"}[s.length_unit]
    return f"trained to {s.max_length} {unit}"


def concurrency_text(s: SearcherConfig) -> str:
    """How many trials run at once, in words."""
    if s.max_concurrent_trials == 0:
        return "Concurrency: no limit (max_concurrent_trials: 0)"
    return f"Concurrency: up to {s.max_concurrent_trials} trials at once"


def needs_budget(name: str) -> ConfigError:
    """The error for an adaptive searcher given neither a length nor a time metric."""
    return ConfigError(
        f"searcher: the {name} searcher needs a training budget: searcher.max_length "
        f"(e.g. max_length: {{epochs: 10}}), or time_metric and max_time for adaptive_asha and "
        f"async_halving (Determined 0.38 style)"
    )
