"""``searcher:``: names, common fields, lengths and the adaptive searchers' options."""

from __future__ import annotations

from typing import Any

from ridgeline.config.checks import (
    Problems,
    as_bool,
    as_int,
    as_number,
    as_str,
    join,
    show,
    suggest,
    whole,
)
from ridgeline.config.model import SearcherConfig

__all__ = ["LENGTH_UNITS", "REMOVED", "SEARCHERS", "budget", "parse_searcher", "time_mode"]

SEARCHERS = (
    "single",
    "random",
    "grid",
    "adaptive_asha",
    "async_halving",
    "sync_halving",
    "hyperband",
    "pbt",
    "bayesian",
    "tpe",
    "auto",
)
REMOVED = ("adaptive", "adaptive_simple", "custom")
#: Searchers whose trial count follows from other fields (max_trials optional or absent).
_TRIALS_OPTIONAL = ("hyperband",)
_PBT_FUNCTIONS = {
    "replace_function": {"truncate_fraction": (0.2, 0.5)},
    "explore_function": {"resample_probability": (0.2, 1.0), "perturb_factor": (0.2, 1.0)},
}
LENGTH_UNITS = ("batches", "epochs", "records")
MODES = ("standard", "aggressive", "conservative")

_COMMON = ("name", "metric", "smaller_is_better", "source_trial_id", "source_checkpoint_uuid")
_TRIALS = ("max_length", "max_trials", "max_concurrent_trials")
_ASHA = ("divisor", "stop_once", "time_metric", "max_time", "sampler")
#: What adaptive searchers may draw new configurations from (tpe with ASHA is BOHB).
SAMPLERS = ("random", "tpe", "bayesian", "auto")
FIELDS: dict[str, tuple[str, ...]] = {
    "single": (*_COMMON, "max_length"),
    "random": (*_COMMON, *_TRIALS),
    "grid": (*_COMMON, *_TRIALS),
    "async_halving": (*_COMMON, *_TRIALS, *_ASHA, "num_rungs"),
    "adaptive_asha": (*_COMMON, *_TRIALS, *_ASHA, "mode", "max_rungs", "bracket_rungs"),
    "sync_halving": (*_COMMON, *_TRIALS, "divisor", "num_rungs", "sampler"),
    "hyperband": (*_COMMON, *_TRIALS, "divisor", "max_rungs", "sampler"),
    "pbt": (
        *_COMMON,
        "population_size",
        "num_rounds",
        "length_per_round",
        "replace_function",
        "explore_function",
        "max_concurrent_trials",
        "sampler",
    ),
    "bayesian": (*_COMMON, *_TRIALS, "num_initial", "acquisition"),
    "tpe": (*_COMMON, *_TRIALS, "num_initial"),
    "auto": (*_COMMON, *_TRIALS),
}
_ALL_FIELDS = sorted({f for fields in FIELDS.values() for f in fields} | {"unit"})
#: Determined's defaults for the searcher-specific options.
OPTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "adaptive_asha": {
        "mode": "standard",
        "divisor": 4,
        "max_rungs": 5,
        "bracket_rungs": [],
        "stop_once": False,
    },
    "async_halving": {"divisor": 4, "stop_once": False},
    "sync_halving": {"divisor": 4},
    "hyperband": {"divisor": 3, "max_rungs": 5},
    "pbt": {
        "replace_function": {"truncate_fraction": 0.2},
        "explore_function": {"resample_probability": 0.2, "perturb_factor": 0.2},
    },
}
_ALTERNATIVES = "use adaptive_asha (early stopping), random, grid or single instead"
#: Fields of Determined's removed sync_halving that ridgeline's own sync_halving lacks.
_OLD_SYNC_HALVING = ("budget", "train_stragglers")
#: Searchers whose max_length Determined takes only with a unit (no bare integer).
_UNIT_REQUIRED = ("async_halving",)


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
    if name == "sync_halving" and any(key in data for key in _OLD_SYNC_HALVING):
        old = ", ".join(k for k in _OLD_SYNC_HALVING if k in data)
        p.add(
            path,
            f"sync_halving as Determined wrote it ({old}) "
            f"has been removed in Determined; ridgeline's sync_halving takes max_trials, "
            f"max_length, num_rungs and divisor (optionally max_concurrent_trials, sampler): "
            f"replace budget with max_trials and drop train_stragglers, or use adaptive_asha",
        )
        return None, dict(data)
    errors = len(p.items)
    fields = FIELDS.get(name or "", tuple(_ALL_FIELDS))
    options: dict[str, Any] = {}
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
        elif key in _ALL_FIELDS and name is not None:
            fix = "remove it"
            if name == "single" and key in ("max_trials", "max_concurrent_trials"):
                fix = "single runs exactly one trial; remove it, or use name: random"
            p.add(join(path, key), f"is not a field of the {name} searcher; {fix}")
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
    length, unit = _length(p, data)
    if name in _UNIT_REQUIRED and data.get("max_length") is not None and unit is None:
        if length is not None and not isinstance(data["max_length"], dict):
            p.bad(
                join(path, "max_length"),
                "a one-key mapping {batches|epochs|records: N} for the async_halving searcher",
                data["max_length"],
                f"e.g. max_length: {{batches: {length}}}",
            )
    if name == "pbt":
        length, unit, pbt = _pbt(p, data)
        options.update(pbt)

    max_trials: int | None = None
    if name == "single":
        max_trials = 1
    elif name == "pbt":
        if "replaced_per_round" in options and options.get("num_rounds"):
            max_trials = options["population_size"] + options["replaced_per_round"] * (
                options["num_rounds"] - 1
            )
    elif name in _TRIALS_OPTIONAL and data.get("max_trials") is None:
        pass
    elif name == "grid":
        if data.get("max_trials") is not None:
            p.notes.append(
                (
                    "searcher.max_trials is ignored by the grid searcher: it runs every grid point",
                    False,
                )
            )
    elif data.get("max_trials") is None:
        if name is not None:
            p.missing(
                join(path, "max_trials"),
                "max_trials",
                f"the {name} searcher needs the number of trials, e.g. max_trials: 16",
            )
    else:
        max_trials = as_int(p, join(path, "max_trials"), data["max_trials"], 1)
    concurrency = 1 if name == "single" else 16
    if name != "single" and data.get("max_concurrent_trials") is not None:
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

    if name in ("bayesian", "tpe"):
        options.update(_model(p, data))
    sampler = data.get("sampler")
    if sampler is not None and "sampler" in fields:
        if sampler not in SAMPLERS:
            hint = suggest(str(sampler), SAMPLERS)
            fix = f"did you mean {hint!r}?" if hint else ""
            p.bad(join(path, "sampler"), f"one of {', '.join(SAMPLERS)}", sampler, fix)
        options["sampler"] = sampler
    if name in ("adaptive_asha", "async_halving"):
        options.update(_adaptive(p, name, data, length))
    elif name in ("sync_halving", "hyperband"):
        options.update(_halving(p, name, data, length))

    written = dict(data)
    if name is not None:
        written["smaller_is_better"] = smaller
        if name != "single" and data.get("max_concurrent_trials") is not None:
            written["max_concurrent_trials"] = concurrency  # absent: the machine may bound it
        for key, value in OPTION_DEFAULTS.get(name, {}).items():
            if written.get(key) is None:
                written[key] = value
    if name is None or metric is None or len(p.items) != errors:
        return None, written
    return (
        SearcherConfig(
            name=name,
            metric=metric,
            smaller_is_better=smaller,
            max_length=length,
            length_unit=unit,
            max_trials=max_trials,
            max_concurrent_trials=concurrency,
            concurrency_given=name == "single" or data.get("max_concurrent_trials") is not None,
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


def _length(
    p: Problems, data: dict[str, Any], key: str = "max_length"
) -> tuple[int | None, str | None]:
    """``max_length`` as (length, unit); a plain integer has no unit unless ``unit`` says."""
    path = f"searcher.{key}"
    expected = "a positive integer or a one-key mapping {batches|epochs|records: N}"
    value = data.get(key)
    length: int | None = None
    unit: str | None = None
    if isinstance(value, dict):
        if len(value) != 1:
            p.bad(path, expected, value, "e.g. max_length: {epochs: 10}")
            return None, None
        ((key, n),) = value.items()
        if key in LENGTH_UNITS:
            unit = key
            length = as_int(p, join(path, key), n, 1)
        else:
            hint = suggest(str(key), LENGTH_UNITS)
            fix = f"did you mean {hint!r}?" if hint else f"use one of {', '.join(LENGTH_UNITS)}"
            if ":" in str(key):
                fix = "put a space after the colon, as in {epochs: 3}"
            p.add(join(path, key), f"unknown length unit (got {key!r}); {fix}")
    elif value is not None:
        length = whole(value)
        if length is None or length < 1:
            p.bad(path, expected, value, "e.g. max_length: {epochs: 10}")
            length = None
    declared = data.get("unit")
    if declared is not None:
        if declared not in LENGTH_UNITS:
            p.bad("searcher.unit", f"one of {', '.join(LENGTH_UNITS)}", declared)
        elif unit is not None and declared != unit:
            p.add(
                "searcher.unit",
                f"disagrees with max_length's unit (got unit {declared!r}, max_length in "
                f"{unit!r}); remove unit",
            )
        elif unit is None and length is not None:
            unit = declared
    return length, unit


def _model(p: Problems, data: dict[str, Any]) -> dict[str, Any]:
    """Options of the bayesian and tpe searchers."""
    opts: dict[str, Any] = {}
    if data.get("num_initial") is not None:
        opts["num_initial"] = as_int(p, "searcher.num_initial", data["num_initial"], 1)
    acquisition = data.get("acquisition")
    if acquisition is not None:
        if acquisition not in ("ei", "pi", "lcb"):
            p.bad("searcher.acquisition", "one of ei, pi, lcb", acquisition)
        opts["acquisition"] = acquisition
    return opts


def _halving(p: Problems, name: str, data: dict[str, Any], length: int | None) -> dict[str, Any]:
    """Options of sync_halving and hyperband, defaults filled in."""
    path = "searcher"
    opts = dict(OPTION_DEFAULTS[name])
    if data.get("divisor") is not None:
        d = as_number(p, join(path, "divisor"), data["divisor"])
        if d is not None and d <= 1:
            p.bad(join(path, "divisor"), "a number > 1", d, "the usual divisor is 3 (or 4)")
        opts["divisor"] = d
    rungs = "num_rungs" if name == "sync_halving" else "max_rungs"
    if data.get(rungs) is not None:
        opts[rungs] = as_int(p, join(path, rungs), data[rungs], 1)
    elif name == "sync_halving":
        p.missing(join(path, rungs), rungs, "give the number of rungs, e.g. 3")
    if length is None and data.get("max_length") is None:
        p.missing(
            join(path, "max_length"),
            "max_length",
            f"the {name} searcher needs the length of its top rung: max_length: {{epochs: N}}",
        )
    return opts


def _pbt(p: Problems, data: dict[str, Any]) -> tuple[int | None, str | None, dict[str, Any]]:
    """PBT's fields; returns (lineage length, unit, options)."""
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
        per_round, unit = _length(p, data, "length_per_round")
    opts["length_per_round"] = per_round
    for group, fields in _PBT_FUNCTIONS.items():
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
    if all(opts.get(k) is not None for k in ("population_size", "num_rounds", "truncate_fraction")):
        opts["replaced_per_round"] = int(opts["population_size"] * opts["truncate_fraction"])
    if per_round is None or opts.get("num_rounds") is None:
        return None, unit, opts
    return per_round * opts["num_rounds"], unit, opts


def _adaptive(p: Problems, name: str, data: dict[str, Any], length: int | None) -> dict[str, Any]:
    """Options of adaptive_asha and async_halving, defaults filled in."""
    path = "searcher"
    opts = dict(OPTION_DEFAULTS[name])
    if data.get("divisor") is not None:
        d = as_number(p, join(path, "divisor"), data["divisor"])
        if d is not None and d <= 1:
            p.bad(join(path, "divisor"), "a number > 1", d, "the usual divisor is 4 (or 3)")
        opts["divisor"] = d
    if data.get("stop_once") is not None:
        opts["stop_once"] = as_bool(p, join(path, "stop_once"), data["stop_once"])
    if name == "async_halving":
        if data.get("num_rungs") is None:
            p.missing(join(path, "num_rungs"), "num_rungs", "give the number of rungs, e.g. 3")
        else:
            opts["num_rungs"] = as_int(p, join(path, "num_rungs"), data["num_rungs"], 1)
    else:
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
    time_metric, max_time = data.get("time_metric"), data.get("max_time")
    if time_metric is not None:
        opts["time_metric"] = as_str(p, join(path, "time_metric"), time_metric)
    if max_time is not None:
        opts["max_time"] = as_int(p, join(path, "max_time"), max_time, 1)
    if time_metric is not None and max_time is not None:
        _note_038(p, name, data)
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
            f"the {name} searcher needs a training budget: max_length: {{epochs: N}} "
            f"(or time_metric and max_time, Determined 0.38 style)",
        )
    return opts


def _note_038(p: Problems, name: str, data: dict[str, Any]) -> None:
    """Determined 0.38 ASHA (time_metric + max_time): the fields it deprecates are warned of,
    as Determined does; the rungs follow max_time and trials are only ever stopped."""
    if data.get("max_length") is not None:
        p.notes.append(
            (
                f"searcher.max_length is deprecated in Determined 0.38 and not used by the "
                f"{name} searcher when time_metric and max_time are set: its rungs follow "
                f"max_time; remove max_length",
                True,
            )
        )
    if data.get("stop_once") is False:
        p.notes.append(
            (
                "searcher.stop_once: false is ignored: with time_metric and max_time (Determined "
                "0.38) ASHA only stops trials, it never pauses or promotes them; remove stop_once",
                True,
            )
        )
    elif data.get("stop_once") is not None:
        p.notes.append(
            (
                "searcher.stop_once is deprecated in Determined 0.38 (ASHA always stops trials "
                "there); remove it",
                True,
            )
        )


def time_mode(searcher: SearcherConfig) -> tuple[str, int] | None:
    """(time_metric, max_time) when an adaptive searcher runs Determined 0.38 style, else None."""
    if searcher.name not in ("adaptive_asha", "async_halving"):
        return None
    metric, horizon = searcher.options.get("time_metric"), searcher.options.get("max_time")
    if metric is None or horizon is None:
        return None
    return str(metric), int(horizon)


def describe(config: Any, grid_points: int | None) -> list[str]:
    """What the searcher of a validated ``ExperimentConfig`` will run, one line per fact."""
    s: SearcherConfig = config.searcher
    better = "smaller" if s.smaller_is_better else "larger"
    lines = [f"Searcher: {s.name}, optimizing {s.metric!r} ({better} is better)"]
    if s.max_length is not None:
        unit = s.length_unit or "units (the script's own)"
        if s.max_length == 1 and s.length_unit:
            unit = {"batches": "batch", "epochs": "epoch", "records": "record"}[s.length_unit]
        length = f"trained to {s.max_length} {unit}"
    else:
        length = "trained for as long as its script decides (no searcher.max_length)"
    concurrency = f"Concurrency: up to {s.max_concurrent_trials} trials at once"
    if s.max_concurrent_trials == 0:
        concurrency = "Concurrency: no limit (max_concurrent_trials: 0)"
    if s.name == "single":
        lines.append(f"Trials: 1, {length}")
        lines.append("Concurrency: 1")
    elif s.name == "random":
        lines.append(f"Trials: {s.max_trials} random configurations, each {length}")
        lines.append(concurrency)
    elif s.name == "grid":
        lines.append(f"Grid points: {grid_points}")
        lines.append(f"Trials: {grid_points}, one per grid point, each {length}")
        lines.append(concurrency)
    elif s.name in ("bayesian", "tpe", "auto"):
        model = {
            "bayesian": "a Gaussian process (expected improvement"
            + (f", {s.options['acquisition']}" if "acquisition" in s.options else "")
            + ")",
            "tpe": "a multivariate TPE",
            "auto": "a Gaussian process, or TPE for large budgets and spaces",
        }[s.name]
        first = s.options.get("num_initial")
        start = f"{first} space-filling points" if first else "a space-filling design"
        lines.append(f"Trials: {s.max_trials}, each {length}")
        lines.append(f"Suggestions: {start}, then {model}; running trials are accounted for")
        lines.append(concurrency)
    elif time_mode(s) is not None:
        from ridgeline.searchers.asha_time import describe_time_plan

        o = s.options
        metric, horizon = time_mode(s) or ("", 0)
        if s.name == "adaptive_asha":
            rungs = {"max_rungs": o["max_rungs"], "mode": o["mode"]}
            rungs["bracket_rungs"] = o["bracket_rungs"] or None
        else:  # one bracket of num_rungs
            rungs = {"max_rungs": o["num_rungs"], "bracket_rungs": [o["num_rungs"]]}
        lines += describe_time_plan(
            metric,
            horizon,
            int(s.max_trials or 1),
            divisor=o["divisor"],
            max_concurrent_trials=s.max_concurrent_trials,
            **rungs,
        )
    elif s.name in ("adaptive_asha", "async_halving") and s.max_length is not None:
        from ridgeline.searchers.adaptive import describe_plan

        o = s.options
        if s.name == "adaptive_asha":
            rungs = {"max_rungs": o["max_rungs"], "mode": o["mode"]}
            rungs["bracket_rungs"] = o["bracket_rungs"] or None
        else:  # one bracket of num_rungs
            rungs = {"max_rungs": o["num_rungs"], "bracket_rungs": [o["num_rungs"]]}
        lines += describe_plan(
            int(s.max_length),
            int(s.max_trials or 1),
            divisor=o["divisor"],
            max_concurrent_trials=s.max_concurrent_trials,
            unit=s.length_unit,
            stop_once=bool(o.get("stop_once")),
            **rungs,
        )
    elif s.name in ("sync_halving", "hyperband") and s.max_length is not None:
        from ridgeline.searchers.hyperband import describe_hyperband, describe_sync_halving

        o = s.options
        if s.name == "hyperband":
            lines += describe_hyperband(
                int(s.max_length),
                o["divisor"],
                o["max_rungs"],
                s.max_trials,
                s.max_concurrent_trials,
                s.length_unit,
            )
        else:
            lines += describe_sync_halving(
                int(s.max_length),
                int(s.max_trials or 1),
                o["num_rungs"],
                o["divisor"],
                s.max_concurrent_trials,
                s.length_unit,
            )
    elif s.name == "pbt":
        from ridgeline.searchers.pbt import describe_pbt

        o = s.options
        lines += describe_pbt(
            o["population_size"],
            o["num_rounds"],
            o["length_per_round"],
            o["truncate_fraction"],
            o["resample_probability"],
            o["perturb_factor"],
            s.length_unit,
        )
        lines.append(concurrency)
    else:
        lines.append(f"Trials: up to {s.max_trials}, each at most {length}")
        lines.append(concurrency)
        for key, value in s.options.items():
            lines.append(f"  {key}: {show(value)}")
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


def _units(value: Any) -> int | None:
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def budget(searcher: dict[str, Any]) -> tuple[int | None, int | None]:
    """(trials, training length) a validated ``searcher:`` mapping plans to spend at most.

    Random-style searchers: ``max_trials`` and ``max_trials x max_length`` (what full
    training would cost; ASHA stops short of it). Hyperband and successive halving: their exact
    plan. PBT: the population times its rounds."""
    name = searcher.get("name")
    length = _units(searcher.get("max_length"))
    if name in ("adaptive_asha", "async_halving") and searcher.get("time_metric") is not None:
        length = _units(searcher.get("max_time"))  # Determined 0.38: the rungs' horizon
    trials = searcher.get("max_trials")
    trials = trials if isinstance(trials, int) and not isinstance(trials, bool) else None
    if name == "pbt":
        size, rounds = searcher.get("population_size"), searcher.get("num_rounds")
        per_round = _units(searcher.get("length_per_round"))
        fraction = (searcher.get("replace_function") or {}).get("truncate_fraction", 0.2)
        if not (isinstance(size, int) and isinstance(rounds, int) and per_round):
            return None, None
        return size + int(size * fraction) * (rounds - 1), size * rounds * per_round
    if name in ("hyperband", "sync_halving") and length:
        from ridgeline.searchers.hyperband import hyperband_plan, planned_length, rung_sizes

        divisor = searcher.get("divisor") or OPTION_DEFAULTS[name]["divisor"]
        if name == "hyperband":
            plans = hyperband_plan(length, divisor, searcher.get("max_rungs") or 5, trials, 0)
            return sum(p.max_trials for p in plans), sum(planned_length(p) for p in plans)
        rungs = searcher.get("num_rungs")
        if trials and isinstance(rungs, int):
            from ridgeline.searchers.asha import rung_lengths

            lengths = rung_lengths(length, divisor, rungs)
            return trials, planned_length(rung_sizes(trials, rungs, divisor), lengths)
    return trials, trials * length if trials and length else None
