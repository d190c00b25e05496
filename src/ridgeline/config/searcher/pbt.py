"""Population-based training (``pbt``): a population trained in rounds, the worst replaced
by perturbed clones of the best at each round end."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ridgeline.config.checks import Problems, as_int, as_number, join
from ridgeline.config.length import parse_length
from ridgeline.config.searcher.spec import (
    COMMON,
    Plan,
    SearcherSpec,
    concurrency_text,
    draw,
    parse_sampler,
)

if TYPE_CHECKING:
    from ridgeline.config.model import ExperimentConfig, SearcherConfig
    from ridgeline.searchers.base import Searcher

__all__ = ["PBT", "SPECS", "PBTOptions"]

#: The nested mappings of PBT's settings: each field's default and upper bound.
_FUNCTIONS = {
    "replace_function": {"truncate_fraction": (0.2, 0.5)},
    "explore_function": {"resample_probability": (0.2, 1.0), "perturb_factor": (0.2, 1.0)},
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PBTOptions:
    population_size: int
    num_rounds: int
    length_per_round: int
    truncate_fraction: float = 0.2
    resample_probability: float = 0.2
    perturb_factor: float = 0.2
    #: Members replaced at each round end (population_size x truncate_fraction, rounded down).
    replaced_per_round: int
    sampler: str | None = None


class PopulationBased(SearcherSpec):
    name = "pbt"
    fields = (
        *COMMON,
        "population_size",
        "num_rounds",
        "length_per_round",
        "replace_function",
        "explore_function",
        "max_concurrent_trials",
        "sampler",
    )
    Options = PBTOptions

    def defaults(self) -> dict[str, Any]:
        return {
            group: {key: default for key, (default, _) in fields.items()}
            for group, fields in _FUNCTIONS.items()
        }

    def parse_length(
        self, p: Problems, data: dict[str, Any], length: int | None, unit: str | None
    ) -> tuple[int | None, str | None, dict[str, Any]]:
        """PBT's fields; the length is a lineage's (``length_per_round x num_rounds``)."""
        path = "searcher"
        opts: dict[str, Any] = {}
        for key, example in (("population_size", 10), ("num_rounds", 5)):
            if data.get(key) is None:
                p.missing(join(path, key), key, f"e.g. {key}: {example}")
            else:
                opts[key] = as_int(p, join(path, key), data[key], 1)
        per_round, unit = None, None
        if data.get("length_per_round") is None:
            p.missing(
                join(path, "length_per_round"),
                "length_per_round",
                "how long each round trains, e.g. length_per_round: {epochs: 2}",
            )
        else:
            per_round, unit = parse_length(p, data, "length_per_round")
        opts["length_per_round"] = per_round
        for group, fields in _FUNCTIONS.items():
            given = data.get(group)
            if given is None:
                given = {}
            if not isinstance(given, dict):
                p.bad(
                    join(path, group),
                    "a mapping",
                    given,
                    f"e.g. {group}: {{{next(iter(fields))}: 0.2}}",
                )
                given = {}
            p.unknown_keys(
                join(path, group), {k: None for k in given if k not in fields}, tuple(fields)
            )
            for key, (default, high) in fields.items():
                value = given.get(key, default)
                number = as_number(p, f"{path}.{group}.{key}", value)
                if number is not None and not 0 <= number <= high:
                    p.bad(f"{path}.{group}.{key}", f"a number in [0, {high}]", value)
                opts[key] = number
        counts = ("population_size", "num_rounds", "truncate_fraction")
        if all(opts.get(k) is not None for k in counts):
            opts["replaced_per_round"] = int(opts["population_size"] * opts["truncate_fraction"])
        if per_round is None or opts.get("num_rounds") is None:
            return None, unit, opts
        return per_round * opts["num_rounds"], unit, opts

    def parse_trials(
        self, p: Problems, data: dict[str, Any], options: dict[str, Any]
    ) -> int | None:
        """The population, then the clones of every later round."""
        if "replaced_per_round" in options and options.get("num_rounds"):
            return int(
                options["population_size"]
                + options["replaced_per_round"] * (options["num_rounds"] - 1)
            )
        return None

    def parse_options(
        self, p: Problems, data: dict[str, Any], length: int | None
    ) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        parse_sampler(p, data, opts)
        return opts

    def build(self, config: ExperimentConfig) -> Searcher:
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.pbt import PBTSearcher

        s = config.searcher
        o: PBTOptions = self.options(s)
        return PBTSearcher(
            draw(o.sampler), **_population(o), max_concurrent_trials=s.max_concurrent_trials
        )

    def plan(self, searcher: SearcherConfig, hyperparameters: Mapping[str, Any] | None) -> Plan:
        """The population plus its clones; the population times its rounds' length."""
        # lazy: keeps `import ridgeline.config` light
        from ridgeline.searchers.pbt import describe_pbt

        s = searcher
        o: PBTOptions = self.options(s)
        lines = describe_pbt(**_population(o), unit=s.length_unit)
        length = o.population_size * o.num_rounds * o.length_per_round
        return Plan(s.max_trials, length, (*lines, concurrency_text(s)))


_POPULATION = (
    *("population_size", "num_rounds", "length_per_round"),
    *("truncate_fraction", "resample_probability", "perturb_factor"),
)


def _population(o: PBTOptions) -> dict[str, Any]:
    """The options that shape the population, as the searcher and its description take them."""
    return {name: getattr(o, name) for name in _POPULATION}


PBT = PopulationBased()
#: This module's searchers.
SPECS = (PBT,)
