"""What each plot shows, as plain lists and dicts (JSON-ready: no NaN, no numpy types).

The plotly figures in ``figures.py`` draw these, and a web page can send them as they are:
one preparation (best-so-far, downsampling, importance, rungs, lineage) for both views.
Every function takes what ``ridgeline.load`` returns. Values are the searcher's metric;
"counted" trials are those that may be called the best (a failed trial never is).
"""

from __future__ import annotations

import bisect
import math
from itertools import chain, repeat
from typing import Any

from ridgeline.analysis import Analysis, ParamSpec, TrialSummary, finite, may_win
from ridgeline.searchers.adaptive import bracket_plan
from ridgeline.searchers.asha import rung_lengths
from ridgeline.searchers.hyperband import hyperband_plan
from ridgeline.visualization.importance import epsilon_squared

__all__ = [
    "contour",
    "importances",
    "learning_curves",
    "lineage",
    "optimization_history",
    "parallel_coordinates",
    "param_axes",
    "rungs",
    "slices",
]

#: Points all background learning curves share at most (top curves keep up to max_points).
CURVE_POINT_BUDGET = 200_000


def _num(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if finite(value) else None


def _header(a: Analysis) -> dict[str, Any]:
    return {
        "experiment_id": a.experiment_id,
        "metric": a.metric_name,
        "smaller_is_better": a.smaller_is_better,
        "unit": a.length_unit,
    }


def _counted(a: Analysis) -> list[TrialSummary]:
    """Trials with a finite best value that may be called the best, by trial number."""
    return sorted(
        (s for s in a.summaries if s.best is not None and may_win(s.record.state)),
        key=lambda s: s.record.number,
    )


def _ranked(a: Analysis) -> list[TrialSummary]:
    """Counted trials, best first."""
    return sorted(_counted(a), key=lambda s: s.best, reverse=not a.smaller_is_better)  # type: ignore[arg-type,return-value]


# -- optimisation history ---------------------------------------------------------------------
def optimization_history(a: Analysis) -> dict[str, Any]:
    """Each trial's best value by trial number, the best-so-far line over counted trials, and
    the best-so-far over time (seconds since the experiment began, one point per
    improvement). Failed trials are listed with ``counted: false`` and never set the best."""
    points: list[dict[str, Any]] = []
    for s in sorted(a.summaries, key=lambda s: s.record.number):
        if s.best is None:
            continue
        points.append(
            {
                "number": s.record.number,
                "value": s.best,
                "state": str(s.record.state),
                "counted": may_win(s.record.state),
            }
        )
    best: list[dict[str, Any]] = []
    current: float | None = None
    for point in points:
        if point["counted"] and (current is None or a.better(point["value"], current)):
            current = point["value"]
        if current is not None and point["counted"]:
            best.append({"number": point["number"], "value": current})
    return _header(a) | {"trials": points, "best": best, "best_over_time": _best_over_time(a)}


def _best_over_time(a: Analysis) -> list[dict[str, Any]]:
    """One point per report that bettered every earlier one (in stored order) among
    counted trials: seconds since the experiment began, the value, the trial. Vectorised:
    a million reports take a fraction of a second."""
    import numpy as np  # lazy: numpy is heavy, loaded on use

    numbers = {t.id: t.number for t in a.trials}
    counted = {t.id for t in a.trials if may_win(t.state)}

    lists = [(t, r) for t, r in a.searcher_reports.items() if r and t in counted]
    if not lists:
        return []
    total = sum(len(r) for _, r in lists)
    flat = chain.from_iterable(chain.from_iterable(r for _, r in lists))
    table = np.fromiter(flat, dtype=float, count=3 * total).reshape(total, 3)
    owners = chain.from_iterable(repeat(t, len(r)) for t, r in lists)
    trial_ids = np.fromiter(owners, dtype=np.int64, count=total)
    keep = np.isfinite(table[:, 2])
    table, trial_ids = table[keep], trial_ids[keep]
    if not len(table):
        return []
    order = np.argsort(table[:, 0], kind="stable")
    table, trial_ids = table[order], trial_ids[order]
    running = (np.minimum if a.smaller_is_better else np.maximum).accumulate(table[:, 2])
    better = np.flatnonzero(np.r_[True, running[1:] != running[:-1]])
    start = a.experiment.created_at
    out = []
    for i in better.tolist():
        seq = int(table[i, 0])
        out.append(
            {
                "seconds": _report_time(a, seq) - start,
                "value": float(table[i, 2]),
                "number": numbers[int(trial_ids[i])],
            }
        )
    return out


def _report_time(a: Analysis, seq: int) -> float:
    """When report ``seq`` was stored (reports are read in ``seq`` order)."""
    metrics = a.metrics
    i = bisect.bisect_left(metrics, seq, key=lambda m: m.seq)
    if i < len(metrics) and metrics[i].seq == seq:
        return metrics[i].time
    return next(m.time for m in metrics if m.seq == seq)


# -- learning curves ----------------------------------------------------------------------------
def _clean(values: list[Any]) -> list[Any]:
    """Values with NaN and infinities as None; a finite sum proves there are none (fast)."""
    try:
        if math.isfinite(math.fsum(values)):
            return values
    except (TypeError, OverflowError):
        pass
    return [_num(v) for v in values]


def _curve(steps: list[int], raw: list[float], keep: int) -> tuple[list[int], list[Any], bool]:
    """One trial's curve thinned to about ``keep`` points by an even stride that always keeps
    the first, the last, the lowest and the highest point. Returns (steps, values,
    downsampled)."""
    values = _clean(raw)
    n = len(steps)
    if n <= keep:
        return list(steps), list(values), False
    stride = math.ceil(n / max(keep - 1, 1))
    index = set(range(0, n, stride))
    index.add(n - 1)
    present = values if values is raw else [v for v in values if v is not None]
    if present:
        index.add(values.index(min(present)))
        index.add(values.index(max(present)))
    chosen = sorted(index)
    return [steps[i] for i in chosen], [values[i] for i in chosen], True


def learning_curves(
    a: Analysis, top: int = 10, max_points: int = 200, point_budget: int = CURVE_POINT_BUDGET
) -> dict[str, Any]:
    """The searcher metric against the step for every trial that reported, the ``top`` best
    counted trials ranked (``rank`` 1 is the best) and kept at up to ``max_points`` points;
    the others share ``point_budget`` points, at least 8 each (downsampled server side, so
    10,000 trials of 100 steps stay a light page)."""
    ranks = {s.record.id: i + 1 for i, s in enumerate(_ranked(a)[: max(top, 0)])}
    records = {t.id: t for t in a.trials}
    reported = [(trial_id, c) for trial_id, c in a.curves.items() if c[0]]
    background = max(len(reported) - len(ranks), 1)
    keep_background = max(min(max_points, point_budget // background), 8)
    summaries = {s.record.id: s for s in a.summaries}
    curves: list[dict[str, Any]] = []
    for trial_id, (all_steps, all_values) in reported:
        record = records.get(trial_id)
        if record is None:
            continue
        rank = ranks.get(trial_id)
        keep = max_points if rank else keep_background
        steps, values, thinned = _curve(all_steps, all_values, keep)
        curves.append(
            {
                "number": record.number,
                "state": str(record.state),
                "rank": rank,
                "best": _num(summaries[trial_id].best),
                "steps": steps,
                "values": values,
                "downsampled": thinned,
            }
        )
    curves.sort(key=lambda c: c["number"])
    return _header(a) | {"top": len(ranks), "curves": curves}


# -- hyperparameters ---------------------------------------------------------------------------
def _spec_dict(spec: ParamSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": spec.kind,
        "log": spec.log,
        "choices": [_jsonable(c) for c in spec.choices],
        "declared": spec.declared,
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return _num(value)
    return repr(value)


def param_axes(a: Analysis) -> list[dict[str, Any]]:
    """Each hyperparameter: ``name``, ``kind`` (float, int, categorical, constant), ``log``,
    ``choices`` and whether the kind was declared or inferred."""
    return [_spec_dict(spec) for spec in a.param_specs]


def _varied(a: Analysis) -> list[ParamSpec]:
    return [s for s in a.param_specs if s.kind != "constant"]


def _categories(spec: ParamSpec, values: list[Any]) -> list[Any]:
    """Category labels in declared order, then any value seen that was not declared."""
    labels = [_jsonable(c) for c in spec.choices]
    for value in values:
        if _jsonable(value) not in labels:
            labels.append(_jsonable(value))
    return labels


def _coordinate(spec: ParamSpec, value: Any, labels: list[Any]) -> float | None:
    """Where ``value`` sits on the parameter's axis: log10 for log scales, the category's
    index for categorical ones."""
    if spec.kind == "categorical":
        return float(labels.index(_jsonable(value)))
    number = _num(value)
    if number is None:
        return None
    if spec.log:
        return math.log10(number) if number > 0 else None
    return number


def slices(a: Analysis) -> dict[str, Any]:
    """One scatter per varied hyperparameter: its values against each counted trial's best."""
    counted = _counted(a)
    params = []
    for spec in _varied(a):
        rows = [s for s in counted if spec.name in s.record.params]
        x = [s.record.params[spec.name] for s in rows]
        axis = _spec_dict(spec)
        if spec.kind == "categorical":
            axis["choices"] = _categories(spec, x)
            x = [_jsonable(v) for v in x]
        params.append(
            axis
            | {
                "x": x,
                "y": [s.best for s in rows],
                "numbers": [s.record.number for s in rows],
            }
        )
    return _header(a) | {"params": params}


def parallel_coordinates(a: Analysis) -> dict[str, Any]:
    """One axis per varied hyperparameter and one for the metric, over counted trials.
    Values are axis coordinates (log10 for log scales, indices for categories) with
    ``tickvals``/``ticktext`` that label them in the user's terms."""
    counted = [s for s in _counted(a) if all(p.name in s.record.params for p in _varied(a))]
    dimensions = []
    for spec in _varied(a):
        raw = [s.record.params[spec.name] for s in counted]
        labels = _categories(spec, raw) if spec.kind == "categorical" else []
        coords = [_coordinate(spec, v, labels) for v in raw]
        dimension: dict[str, Any] = {"label": spec.name, "values": coords, "log": spec.log}
        if spec.kind == "categorical":
            dimension["tickvals"] = list(range(len(labels)))
            dimension["ticktext"] = [str(label) for label in labels]
            dimension["range"] = [0, max(len(labels) - 1, 1)]
        elif spec.log:
            present = [c for c in coords if c is not None]
            if present:
                ticks = list(range(math.floor(min(present)), math.ceil(max(present)) + 1))
                dimension["tickvals"] = ticks
                dimension["ticktext"] = [f"1e{t}" for t in ticks]
        dimensions.append(dimension)
    objective = [s.best for s in counted]
    dimensions.append({"label": a.metric_name, "values": objective, "log": False})
    return _header(a) | {
        "numbers": [s.record.number for s in counted],
        "objective": objective,
        "dimensions": dimensions,
    }


def contour(
    a: Analysis, params: tuple[str, str] | list[str] | None = None, resolution: int = 40
) -> dict[str, Any]:
    """The metric over two hyperparameters: counted trials as points and a linear
    interpolation between them on a ``resolution`` x ``resolution`` grid (None outside their
    convex hull). Default pair: the two most important hyperparameters."""
    varied = {s.name: s for s in _varied(a)}
    if params is None:
        ranked = [i["name"] for i in importances(a)["importances"] if i["name"] in varied]
        chosen = (ranked + [n for n in varied if n not in ranked])[:2]
    else:
        chosen = list(params)
        unknown = [n for n in chosen if n not in varied]
        if len(chosen) != 2 or unknown:
            raise ValueError(
                f"contour needs two varied hyperparameters of {sorted(varied)}, got {chosen}"
            )
    if len(chosen) < 2:
        raise ValueError(
            f"a contour needs two hyperparameters that vary; experiment {a.experiment_id} "
            f"has {sorted(varied) or 'none'}"
        )
    sx, sy = varied[chosen[0]], varied[chosen[1]]
    rows = [s for s in _counted(a) if sx.name in s.record.params and sy.name in s.record.params]
    lx = (
        _categories(sx, [s.record.params[sx.name] for s in rows])
        if sx.kind == "categorical"
        else []
    )
    ly = (
        _categories(sy, [s.record.params[sy.name] for s in rows])
        if sy.kind == "categorical"
        else []
    )
    px = [_coordinate(sx, s.record.params[sx.name], lx) for s in rows]
    py = [_coordinate(sy, s.record.params[sy.name], ly) for s in rows]
    keep = [i for i in range(len(rows)) if px[i] is not None and py[i] is not None]
    px, py = [px[i] for i in keep], [py[i] for i in keep]
    values = [rows[i].best for i in keep]
    grid = _interpolate(px, py, values, resolution)  # type: ignore[arg-type]
    return _header(a) | {
        "x": _spec_dict(sx) | {"choices": lx or _spec_dict(sx)["choices"]},
        "y": _spec_dict(sy) | {"choices": ly or _spec_dict(sy)["choices"]},
        "points": {
            "x": px,
            "y": py,
            "value": values,
            "numbers": [rows[i].record.number for i in keep],
        },
        "grid": grid,
    }


def _interpolate(
    x: list[float], y: list[float], z: list[float], resolution: int
) -> dict[str, Any] | None:
    """scipy's linear interpolation on a regular grid in axis coordinates; None when the
    points span no area (fewer than three, or all on a line)."""
    import numpy as np  # lazy: numpy is heavy, loaded on use
    from scipy.interpolate import griddata  # lazy: scipy is heavy, loaded on use
    from scipy.spatial import QhullError  # lazy: scipy is heavy, loaded on use

    if len(x) < 3 or min(x) == max(x) or min(y) == max(y):
        return None
    gx = np.linspace(min(x), max(x), resolution)
    gy = np.linspace(min(y), max(y), resolution)
    mesh_x, mesh_y = np.meshgrid(gx, gy)
    try:
        gz = griddata((np.array(x), np.array(y)), np.array(z), (mesh_x, mesh_y), method="linear")
    except QhullError:
        return None
    rows = [[None if math.isnan(v) else float(v) for v in row] for row in gz]
    return {"x": gx.tolist(), "y": gy.tolist(), "z": rows}


# -- importance ----------------------------------------------------------------------------------
IMPORTANCE_METHOD = (
    "ε² (bias-corrected correlation ratio): the share of the metric's variance across trials "
    "that each hyperparameter explains on its own, with numeric values grouped into quantile "
    "bins; a first-order (main-effect) measure, as fANOVA's, estimated from the trials "
    "directly instead of through a model"
)


def importances(a: Analysis) -> dict[str, Any]:
    """Each varied hyperparameter's importance (see ``IMPORTANCE_METHOD``), largest first.
    Needs four counted trials or more; with fewer, the list is empty."""
    counted = _counted(a)
    out: list[dict[str, Any]] = []
    if len(counted) >= 4:
        y = [float(s.best) for s in counted]  # type: ignore[arg-type]
        for spec in _varied(a):
            column = [s.record.params.get(spec.name) for s in counted]
            categorical = spec.kind == "categorical" or any(_num(v) is None for v in column)
            keys = [_jsonable(v) for v in column] if categorical else [float(v) for v in column]  # type: ignore[arg-type]
            out.append({"name": spec.name, "importance": epsilon_squared(keys, y, categorical)})
        out.sort(key=lambda item: -item["importance"])
    return _header(a) | {
        "method": IMPORTANCE_METHOD,
        "method_short": "ε², share of variance explained",
        "trials": len(counted),
        "importances": out,
    }


# -- rungs and lineage ---------------------------------------------------------------------------
def _length(value: Any) -> int | None:
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def rung_plan(searcher: dict[str, Any]) -> list[list[int]]:
    """Rung lengths per bracket from a validated ``searcher:`` mapping (ASHA, adaptive ASHA,
    Hyperband, successive halving); [] for searchers without rungs."""
    name = searcher.get("name")
    length = _length(searcher.get("max_length"))
    if length is None or searcher.get("time_metric") is not None:
        return []
    trials = searcher.get("max_trials")
    divisor = searcher.get("divisor") or (3 if name == "hyperband" else 4)
    if name == "adaptive_asha":
        plans = bracket_plan(
            length,
            int(trials or 1),
            divisor,
            int(searcher.get("max_rungs") or 5),
            str(searcher.get("mode") or "standard"),
            searcher.get("bracket_rungs") or None,
            int(searcher.get("max_concurrent_trials") or 0),
        )
        return [list(p.rung_lengths) for p in plans]
    if name == "hyperband":
        hb = hyperband_plan(length, divisor, int(searcher.get("max_rungs") or 5), trials)
        return [list(p.rung_lengths) for p in hb]
    if name in ("async_halving", "sync_halving") and searcher.get("num_rungs"):
        return [rung_lengths(length, divisor, int(searcher["num_rungs"]))]
    return []


def _snapshot_brackets(state: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """The saved searcher's brackets (each with its rungs) and which bracket owns a trial."""
    if "brackets" in state:
        owner = {int(t): int(b) for t, b in state.get("owner") or ()}
        return list(state["brackets"]), owner
    if "rungs" in state:
        return [state], {}
    return [], {}


def rungs(a: Analysis) -> dict[str, Any]:
    """ASHA and Hyperband rungs: per bracket, each rung's length and the trials that reached
    it with the metric they reported there; ``promoted`` when the trial went on to the next
    rung (or the searcher has promoted it and it waits for a slot); ``top`` at the last rung
    (trained to the full length)."""
    plan = rung_plan(a.searcher_config)
    if not plan and any("rung" in t.params and "resource" in t.params for t in a.trials):
        return _sherpa_rungs(a)
    if not plan and a.searcher_config.get("time_metric") is not None:
        raise ValueError(
            f"experiment {a.experiment_id} runs ASHA on a time metric "
            f"({a.searcher_config['time_metric']!r}, Determined 0.38 style); plot_rungs draws "
            f"length-based rungs only"
        )
    if not plan:
        name = a.searcher_config.get("name") or a.experiment.config.get("algorithm")
        raise ValueError(
            f"experiment {a.experiment_id} ran {name!r}, which has no rungs: plot rungs of "
            f"an adaptive_asha, async_halving, sync_halving or hyperband search"
        )
    saved, owner = _snapshot_brackets(a.searcher_state())
    promoted: list[list[set[int]]] = [
        [{int(t) for t in rung.get("promoted") or ()} for rung in bracket.get("rungs") or ()]
        for bracket in saved
    ]
    brackets: list[dict[str, Any]] = [
        {
            "index": b,
            "rung_lengths": lengths,
            "rungs": [{"rung": i, "length": n, "trials": []} for i, n in enumerate(lengths)],
        }
        for b, lengths in enumerate(plan)
    ]
    for s in sorted(a.summaries, key=lambda s: s.record.number):
        per_step = {step: v for _, step, v in a.searcher_reports.get(s.record.id, [])}
        if not per_step:
            continue
        number = s.record.number
        b = owner.get(number)
        if b is None or b >= len(plan):  # no saved owner: the bracket whose rungs fit
            fits = [i for i, lengths in enumerate(plan) if set(per_step) <= set(lengths)]
            b = fits[0] if fits else 0
        lengths = plan[b]
        for i, length in enumerate(lengths):
            if length not in per_step:
                continue
            went_on = i + 1 < len(lengths) and lengths[i + 1] in per_step
            chosen = b < len(promoted) and i < len(promoted[b]) and number in promoted[b][i]
            brackets[b]["rungs"][i]["trials"].append(
                {
                    "number": number,
                    "value": _num(per_step[length]),
                    "state": str(s.record.state),
                    "promoted": went_on or chosen,
                    "top": i == len(lengths) - 1,  # trained to max_length: nothing above
                    "config": number,  # the trial that carries the configuration
                }
            )
    return _header(a) | {"brackets": brackets}


def _sherpa_rungs(a: Analysis) -> dict[str, Any]:
    """SHERPA's SuccessiveHalving and Hyperband: each rung is a trial of its own (parameters
    ``rung``, ``resource``, ``bracket``); a promotion is a later trial whose ``load_from`` is
    this trial's ``save_to``. ``config`` is the first trial of a configuration's chain."""
    by_save = {str(t.params.get("save_to")): t.number for t in a.trials if t.params.get("save_to")}
    parent = {
        t.number: by_save[str(t.params["load_from"])]
        for t in a.trials
        if str(t.params.get("load_from") or "") in by_save
    }
    promoted = set(parent.values())

    def root(number: int) -> int:
        seen = {number}
        while number in parent and parent[number] not in seen:
            number = parent[number]
            seen.add(number)
        return number

    summaries = {s.record.number: s for s in a.summaries}
    cells: dict[int, dict[int, list[dict[str, Any]]]] = {}
    lengths: dict[int, dict[int, float]] = {}
    for t in sorted(a.trials, key=lambda t: t.number):
        if "rung" not in t.params or summaries[t.number].last is None:
            continue
        bracket, rung = int(t.params.get("bracket") or 0), int(t.params["rung"])
        lengths.setdefault(bracket, {})[rung] = float(t.params["resource"])
        cells.setdefault(bracket, {}).setdefault(rung, []).append(
            {
                "number": t.number,
                "value": _num(summaries[t.number].last),
                "state": str(t.state),
                "promoted": t.number in promoted,
                "top": False,
                "config": root(t.number),
            }
        )
    longest = max((n for per_rung in lengths.values() for n in per_rung.values()), default=0)
    for bracket, per_bracket in cells.items():
        for rung, entries in per_bracket.items():
            for entry in entries:  # trained with the most resource: nothing above it
                entry["top"] = lengths[bracket][rung] == longest
    brackets = []
    for index, bracket in enumerate(sorted(cells)):
        rungs_of = sorted(lengths[bracket])
        brackets.append(
            {
                "index": index,
                "rung_lengths": [lengths[bracket][r] for r in rungs_of],
                "rungs": [
                    {"rung": r, "length": lengths[bracket][r], "trials": cells[bracket][r]}
                    for r in rungs_of
                ],
            }
        )
    return _header(a) | {"unit": "resource", "brackets": brackets}


def _parent_numbers(a: Analysis) -> dict[int, int]:
    """Trial number -> the number of the trial it was cloned from: the store's ``parent``
    (Core-API PBT), else the last entry of SHERPA's ``lineage`` parameter."""
    numbers = {t.id: t.number for t in a.trials}
    known = set(numbers.values())
    parents: dict[int, int] = {}
    for t in a.trials:
        if t.parent_id is not None and t.parent_id in numbers:
            parents[t.number] = numbers[t.parent_id]
            continue
        chain = [p for p in str(t.params.get("lineage") or "").split(",") if p.strip()]
        if chain and chain[-1].strip().isdigit() and int(chain[-1]) in known:
            parents[t.number] = int(chain[-1])
    return parents


def lineage(a: Analysis) -> dict[str, Any]:
    """PBT lineage: every trial's curve with its parent and generation (0 for the first
    population), and for each clone the parent's point it continued from."""
    parents = _parent_numbers(a)
    if not parents:
        raise ValueError(
            f"none of experiment {a.experiment_id}'s trials was cloned from another: plot "
            f"lineage of a population-based training (pbt) search"
        )
    curves = {c["number"]: c for c in learning_curves(a, top=0, max_points=10_000)["curves"]}

    def generation(number: int) -> int:
        depth, seen = 0, {number}
        while number in parents and parents[number] not in seen:
            number = parents[number]
            seen.add(number)
            depth += 1
        return depth

    nodes = []
    for t in sorted(a.trials, key=lambda t: t.number):
        curve = curves.get(t.number, {"steps": [], "values": []})
        parent = parents.get(t.number)
        source = None
        if parent is not None and parent in curves and curves[parent]["steps"]:
            first = curve["steps"][0] if curve["steps"] else math.inf
            before = [i for i, s in enumerate(curves[parent]["steps"]) if s < first]
            i = before[-1] if before else len(curves[parent]["steps"]) - 1
            source = {"step": curves[parent]["steps"][i], "value": curves[parent]["values"][i]}
        nodes.append(
            {
                "number": t.number,
                "parent": parent,
                "generation": generation(t.number),
                "state": str(t.state),
                "steps": curve["steps"],
                "values": curve["values"],
                "from": source,
            }
        )
    return _header(a) | {"trials": nodes}
