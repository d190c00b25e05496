"""The ``searcher:`` section: the name, the fields every searcher shares and the length; each
searcher's own fields, building, description and budget are its spec's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ridgeline.config.checks import Problems, as_bool, as_int, as_str, join, suggest
from ridgeline.config.length import LENGTH_UNITS, length_units, parse_length
from ridgeline.config.model import SearcherConfig
from ridgeline.config.searcher.spec import parse_sampler
from ridgeline.config.searcher.table import SPECS, spec_for

__all__ = ["LENGTH_UNITS", "REMOVED", "SEARCHERS", "budget", "parse_searcher", "time_mode"]

SEARCHERS = tuple(SPECS)
REMOVED = ("adaptive", "adaptive_simple", "custom")
_ALL_FIELDS = sorted({f for spec in SPECS.values() for f in spec.fields} | {"unit"})
_ALTERNATIVES = "use adaptive_asha (early stopping), random, grid or single instead"


def parse_searcher(p: Problems, data: Any) -> tuple[SearcherConfig | None, dict[str, Any]]:
    """Validate ``searcher:``; the config and the mapping with defaults filled in."""
    path = "searcher"
    example = "e.g. searcher: {name: random, metric: validation_loss, max_trials: 10}"
    if data is None:
        p.missing(path, "a searcher section", f"add one, {example}")
        return None, {}
    if not isinstance(data, dict):
        p.bad(path, "a mapping", data, example)
        return None, {}
    errors = len(p.items)
    name = _name(p, data)
    if name is None and data.get("name") in REMOVED:
        return None, dict(data)  # one clear message; its other fields do not matter now
    spec = spec_for(name) if name is not None else None
    if spec is not None and spec.refuse(p, data):
        return None, dict(data)
    errors = len(p.items)
    fields = spec.fields if spec is not None else tuple(_ALL_FIELDS)
    for key in data:
        if key in fields:
            continue
        if key == "unit":
            p.notes.append(
                (
                    "searcher.unit is deprecated in Determined: write the unit into max_length, "
                    "e.g. max_length: {epochs: 10}",
                    True,
                )
            )
        elif key in _ALL_FIELDS and spec is not None:
            p.add(
                join(path, key), f"is not a field of the {name} searcher; {spec.misplaced_fix(key)}"
            )
        else:
            p.unknown_keys(path, {key: None}, fields, f"the {name} searcher" if name else "")

    metric = None
    if data.get("metric") is None:
        p.missing(
            join(path, "metric"),
            "metric",
            "name the validation metric to optimize, e.g. metric: validation_loss",
        )
    else:
        metric = as_str(p, join(path, "metric"), data["metric"])
    smaller = True
    if data.get("smaller_is_better") is not None:
        smaller = bool(as_bool(p, join(path, "smaller_is_better"), data["smaller_is_better"]))
    source_trial = source_uuid = None
    if data.get("source_trial_id") is not None:
        source_trial = as_int(p, join(path, "source_trial_id"), data["source_trial_id"], 1)
    if data.get("source_checkpoint_uuid") is not None:
        source_uuid = as_str(
            p, join(path, "source_checkpoint_uuid"), data["source_checkpoint_uuid"]
        )
    if source_trial is not None and source_uuid is not None:
        p.add(
            path,
            f"source_trial_id and source_checkpoint_uuid are both set (got {source_trial!r} "
            f"and {source_uuid!r}); give at most one warm-start source",
        )
    length, unit = parse_length(p, data)
    if spec is None:  # the searcher-independent checks still run, to list every problem
        for key, low in (("max_trials", 1), ("max_concurrent_trials", 0)):
            if data.get(key) is not None:
                fix = "0 means no limit" if low == 0 else ""
                as_int(p, join(path, key), data[key], low, fix)
        parse_sampler(p, data, {})
        return None, dict(data)
    if spec.unit_required and data.get("max_length") is not None and unit is None:
        if length is not None and not isinstance(data["max_length"], dict):
            p.bad(
                join(path, "max_length"),
                f"a one-key mapping {{batches|epochs|records: N}} for the {name} searcher",
                data["max_length"],
                f"e.g. max_length: {{batches: {length}}}",
            )
    length, unit, options = spec.parse_length(p, data, length, unit)
    max_trials = spec.parse_trials(p, data, options)
    concurrency = spec.fixed_concurrency or 16
    given = spec.fixed_concurrency is None and data.get("max_concurrent_trials") is not None
    if given:
        concurrency = (
            as_int(
                p,
                join(path, "max_concurrent_trials"),
                data["max_concurrent_trials"],
                0,
                "0 means no limit",
            )
            or 0
        )
    options.update(spec.parse_options(p, data, length))

    written = dict(data)
    written["smaller_is_better"] = smaller
    if given:
        written["max_concurrent_trials"] = concurrency  # absent: the machine may bound it
    for key, value in spec.defaults().items():
        if written.get(key) is None:
            written[key] = value
    if metric is None or len(p.items) != errors:
        return None, written
    return (
        SearcherConfig(
            name=spec.name,
            metric=metric,
            smaller_is_better=smaller,
            max_length=length,
            length_unit=unit,
            max_trials=max_trials,
            max_concurrent_trials=concurrency,
            concurrency_given=spec.fixed_concurrency is not None or given,
            source_trial_id=source_trial,
            source_checkpoint_uuid=source_uuid,
            options=options,
        ),
        written,
    )


def _name(p: Problems, data: dict[str, Any]) -> str | None:
    path = "searcher.name"
    name = data.get("name")
    if name is None:
        p.missing(path, "name", f"use one of {', '.join(SEARCHERS)}")
        return None
    if not isinstance(name, str):
        p.bad(path, f"one of {', '.join(SEARCHERS)}", name)
        return None
    if name in REMOVED:
        p.add(
            path,
            f"the {name!r} searcher has been removed and is not valid for new experiments "
            f"(got {name!r}); {_ALTERNATIVES}",
        )
        return None
    if name not in SEARCHERS:
        hint = suggest(name, SEARCHERS)
        fix = f"did you mean {hint!r}?" if hint else f"use one of {', '.join(SEARCHERS)}"
        p.add(path, f"unknown searcher (got {name!r}); {fix}")
        return None
    return name


def time_mode(searcher: SearcherConfig) -> tuple[str, int] | None:
    """(time_metric, max_time) when an adaptive searcher runs Determined 0.38 style, else None."""
    return spec_for(searcher.name).time_horizon(searcher)


def describe(config: Any) -> list[str]:
    """What the searcher of a validated ``ExperimentConfig`` will run, one line per fact."""
    s: SearcherConfig = config.searcher
    better = "smaller" if s.smaller_is_better else "larger"
    lines = [f"Searcher: {s.name}, optimizing {s.metric!r} ({better} is better)"]
    lines += spec_for(s.name).plan(s, config.hyperparameters).lines
    if s.options.get("sampler", "random") != "random":
        lines.append(
            f"New configurations come from the {s.options['sampler']} sampler, which learns from "
            f"every result reported so far (with tpe under ASHA or Hyperband this is BOHB)"
        )
    if s.source_trial_id is not None:
        lines.append(f"Every trial starts from trial {s.source_trial_id}'s latest checkpoint")
    if s.source_checkpoint_uuid is not None:
        lines.append(f"Every trial starts from checkpoint {s.source_checkpoint_uuid}")
    return lines


def budget(
    searcher: Mapping[str, Any], hyperparameters: Mapping[str, Any] | None = None
) -> tuple[int | None, int | None]:
    """(trials, training length) a stored ``searcher:`` mapping plans to spend at most, from
    its searcher's plan (``hyperparameters``, the raw section, sizes a grid).

    Random-style searchers: ``max_trials`` and ``max_trials x max_length`` (what full
    training would cost; ASHA stops short of it). Hyperband and successive halving: their exact
    plan. PBT: the population and its clones, times their rounds. A mapping this version does
    not validate gets the generic figures."""
    config, _ = parse_searcher(Problems(), dict(searcher))
    if config is not None:
        plan = spec_for(config.name).plan(config, hyperparameters)
        return plan.trials, plan.length
    trials = searcher.get("max_trials")
    trials = trials if isinstance(trials, int) and not isinstance(trials, bool) else None
    length = length_units(searcher.get("max_length"))
    return trials, trials * length if trials and length else None
