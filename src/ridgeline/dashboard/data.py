"""What the pages draw, as plain JSON-able dicts computed from the store.

The plots' data come from ``ridgeline.visualization.data`` (the same numbers as the plotly
figures of ``ridgeline plot``); this module adds the tables and trims each plot for a page.
Large searches are downsampled here, not in the browser: a page gets at most a few tens of
thousands of points whatever the search's size, so it paints in well under a second.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

from ridgeline.analysis import Analysis, TrialSummary, searcher_value
from ridgeline.store.base import Store
from ridgeline.store.records import (
    COMPLETED,
    FAILED,
    RUNNING,
    TRIAL_DONE_STATES,
    ExperimentRecord,
    MetricRecord,
    TrialRecord,
)
from ridgeline.visualization import data as plots

TOP_N = 10  # learning curves drawn highlighted
MAX_CURVE_POINTS = 60  # per highlighted curve
MAX_BACKGROUND_TRIALS = 400  # other curves, drawn faint
MAX_BACKGROUND_POINTS = 12  # per faint curve
MAX_PARCOORDS = 2000  # lines in the parallel-coordinates plot
MAX_SCATTER = 4000  # points per slice plot
MAX_HISTORY = 2000  # points of the best-so-far curve
MAX_LINEAGE = 2000  # trials in the PBT lineage plot


def downsample(points: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` evenly spread items of ``points``, keeping the first and last."""
    n = len(points)
    if n <= limit:
        return list(points)
    if limit < 2:
        return [points[-1]]
    step = (n - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _clean(value: Any) -> Any:
    """JSON for browsers: NaN and infinities become null (JSON has no such literals)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(payload: Any) -> str:
    """JSON text a browser parses: a NaN or infinity anywhere (a user's metadata, a metric
    name's value) becomes null instead of failing the page."""
    try:
        return json.dumps(payload, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_nulled(payload), default=str, allow_nan=False)


def _nulled(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulled(v) for v in value]
    return _clean(value)


def coordinator_alive(experiment: ExperimentRecord) -> bool:
    # lazy: ridgeline.cli.control loads click
    from ridgeline.cli.control import coordinator_alive as alive

    return bool(experiment.coordinator and experiment.coordinator.get("url")) and alive(experiment)


# -- the experiments list ------------------------------------------------------------------------
def experiment_row(analysis: Analysis) -> dict[str, Any]:
    """One experiment in the list: state, trials by state, progress, best, failures."""
    experiment = analysis.experiment
    counts: dict[str, int] = {}
    for trial in analysis.trials:
        counts[str(trial.state)] = counts.get(str(trial.state), 0) + 1
    total = len(analysis.trials)
    done = sum(n for state, n in counts.items() if state in TRIAL_DONE_STATES)
    best = analysis.best_trial()
    limit = _trial_limit(experiment)
    return {
        "id": experiment.id,
        "name": experiment.name,
        "state": str(experiment.state),
        "trials": total,
        "done": done,
        "running": counts.get(RUNNING, 0),
        "failed": counts.get(FAILED, 0),
        "states": counts,
        "progress": _clean(done / limit) if limit else None,
        "max_trials": limit,
        "best": _clean(best.best) if best else None,
        "best_trial": best.record.number if best else None,
        "metric": analysis.metric_name,
        "created_at": experiment.created_at,
        "live": coordinator_alive(experiment),
    }


def _trial_limit(experiment: ExperimentRecord) -> int | None:
    """The number of trials the search will make, when its configuration says so."""
    config = experiment.config
    searcher = (config.get("raw") or {}).get("searcher") or {}
    for key in ("max_trials", "max_num_trials"):
        value = searcher.get(key) if key in searcher else config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    algorithm = config.get("algorithm")
    if isinstance(algorithm, dict):
        for key in ("max_num_trials", "max_trials", "num_trials"):
            value = algorithm.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return None


# -- one experiment ------------------------------------------------------------------------------
def experiment_overview(analysis: Analysis) -> dict[str, Any]:
    """Everything the experiment page draws, downsampled for size."""
    experiment = analysis.experiment
    summaries = analysis.summaries
    names = analysis.param_names
    last_values = _last_values(analysis.metrics)
    metric_names = sorted({k for values in last_values.values() for k in values})
    best = analysis.best_trial()
    return {
        "experiment": {
            "id": experiment.id,
            "name": experiment.name,
            "state": str(experiment.state),
            "metric": analysis.metric_name,
            "smaller_is_better": analysis.smaller_is_better,
            "live": coordinator_alive(experiment),
            "best": _clean(best.best) if best else None,
            "best_trial": best.record.number if best else None,
            "trials": len(summaries),
            "max_trials": _trial_limit(experiment),
        },
        "params": [{"name": p.name, "kind": p.kind, "log": p.log} for p in analysis.param_specs],
        "metrics": metric_names,
        "trials": [_trial_row(s, names, last_values.get(s.record.id, {})) for s in summaries],
        "history": _history(analysis),
        "curves": _curves(analysis),
        "parcoords": _parcoords(analysis),
        "slices": _slices(analysis),
        "importance": _importance(analysis),
        "rungs": _rungs(analysis),
        "lineage": _lineage(analysis),
        "cursor": _cursor(analysis.metrics),
    }


def _cursor(metrics: list[MetricRecord]) -> int:
    return max((m.seq for m in metrics), default=0)


def _last_values(metrics: list[MetricRecord]) -> dict[int, dict[str, Any]]:
    """Per trial id, the latest value of every numeric metric it reported (by name)."""
    out: dict[int, dict[str, Any]] = {}
    for record in metrics:
        values = out.setdefault(record.trial_id, {})
        for name, value in record.values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[name] = _clean(value)
    return out


def _trial_row(summary: TrialSummary, names: list[str], metrics: dict[str, Any]) -> dict[str, Any]:
    t = summary.record
    ended = t.ended_at if t.state in TRIAL_DONE_STATES else None
    return {
        "number": t.number,
        "state": str(t.state),
        "params": {n: t.params.get(n) for n in names},
        "best": _clean(summary.best),
        "last": _clean(summary.last),
        "steps": summary.steps,
        "restarts": t.restarts,
        "duration": round((ended or time.time()) - t.created_at, 1),
        "stop_reason": summary.stop_reason,
        "metrics": metrics,
    }


def _history(analysis: Analysis) -> dict[str, Any]:
    """Best so far by trial number (every improvement kept), and each trial's best."""
    history = plots.optimization_history(analysis)
    line = history["best"]
    improvements = [i for i, p in enumerate(line) if i == 0 or p["value"] != line[i - 1]["value"]]
    keep = sorted(
        set(improvements[-MAX_HISTORY // 2 :]) | set(downsample(range(len(line)), MAX_HISTORY // 2))
    )
    points = downsample(history["trials"], MAX_SCATTER)
    return {
        "number": [line[i]["number"] for i in keep],
        "best": [line[i]["value"] for i in keep],
        "trials": {
            "number": [p["number"] for p in points],
            "value": [p["value"] for p in points],
            "counted": [p["counted"] for p in points],
        },
    }


def _curves(analysis: Analysis) -> dict[str, Any]:
    """The ``TOP_N`` best trials' curves as they are, a sample of the others thinned."""
    curves = plots.learning_curves(analysis, top=TOP_N, max_points=MAX_CURVE_POINTS)["curves"]
    top = sorted((c for c in curves if c["rank"]), key=lambda c: c["rank"])
    others = downsample([c for c in curves if not c["rank"]], MAX_BACKGROUND_TRIALS)
    xs: list[int | None] = []
    ys: list[float | None] = []
    for curve in others:
        for step, value in downsample(
            list(zip(curve["steps"], curve["values"], strict=True)), MAX_BACKGROUND_POINTS
        ):
            xs.append(step)
            ys.append(value)
        xs.append(None)
        ys.append(None)
    return {
        "top": [{"trial": c["number"], "step": c["steps"], "value": c["values"]} for c in top],
        "others": {"step": xs, "value": ys, "trials": len(curves) - len(top)},
        "unit": analysis.length_unit,
    }


def _parcoords(analysis: Analysis) -> dict[str, Any]:
    """An axis per varied hyperparameter plus the metric, a line per counted trial (an
    even sample of ``MAX_PARCOORDS`` when there are more)."""
    result = plots.parallel_coordinates(analysis)
    rows = downsample(range(len(result["numbers"])), MAX_PARCOORDS)
    for dimension in result["dimensions"]:
        dimension["values"] = [dimension["values"][i] for i in rows]
        dimension.pop("log", None)
    return {
        "dimensions": result["dimensions"],
        "color": [result["objective"][i] for i in rows],
        "trials": [result["numbers"][i] for i in rows],
    }


def _slices(analysis: Analysis) -> list[dict[str, Any]]:
    out = []
    for param in plots.slices(analysis)["params"]:
        rows = downsample(range(len(param["x"])), MAX_SCATTER)
        out.append(
            {
                "param": param["name"],
                "kind": param["kind"],
                "log": param["log"],
                "x": [param["x"][i] for i in rows],
                "y": [param["y"][i] for i in rows],
                "trial": [param["numbers"][i] for i in rows],
            }
        )
    return out


def _importance(analysis: Analysis) -> dict[str, Any]:
    result = plots.importances(analysis)
    ordered = sorted(result["importances"], key=lambda item: item["importance"])
    return {
        "param": [item["name"] for item in ordered],
        "importance": [_clean(round(item["importance"], 4)) for item in ordered],
        "method": result["method"],
        "method_short": result["method_short"],
        "trials": result["trials"],
    }


def _rungs(analysis: Analysis) -> dict[str, Any]:
    """Per bracket and rung: how many trials reached it and how many were promoted."""
    try:
        result = plots.rungs(analysis)
    except ValueError as exc:  # not a search with rungs
        return {"brackets": [], "why": str(exc)}
    brackets = []
    for bracket in result["brackets"]:
        rungs = bracket["rungs"]
        brackets.append(
            {
                "index": bracket["index"],
                "length": [r["length"] for r in rungs],
                "reached": [len(r["trials"]) for r in rungs],
                "promoted": [sum(1 for t in r["trials"] if t["promoted"]) for r in rungs],
            }
        )
    return {"brackets": brackets, "unit": analysis.length_unit}


def _lineage(analysis: Analysis) -> dict[str, Any]:
    """PBT: each clone's curve joined to the point of its parent it continued from."""
    try:
        result = plots.lineage(analysis)
    except ValueError as exc:  # no trial was cloned from another
        return {"trials": [], "why": str(exc)}
    nodes = []
    for node in downsample(result["trials"], MAX_LINEAGE):
        pairs = downsample(
            list(zip(node["steps"], node["values"], strict=True)), MAX_BACKGROUND_POINTS
        )
        nodes.append(
            {
                "trial": node["number"],
                "parent": node["parent"],
                "generation": node["generation"],
                "from": node["from"],
                "step": [p[0] for p in pairs],
                "value": [p[1] for p in pairs],
            }
        )
    return {"trials": nodes, "unit": analysis.length_unit}


# -- one trial -----------------------------------------------------------------------------------
def find_trial(store: Store, experiment_id: int, number: int) -> TrialRecord:
    for trial in store.list_trials(experiment_id):
        if trial.number == number:
            return trial
    raise LookupError(f"experiment {experiment_id} has no trial {number}")


def metric_rows(records: list[MetricRecord]) -> list[dict[str, Any]]:
    return [
        {
            "seq": m.seq,
            "group": m.group,
            "step": m.step,
            "time": m.time,
            "values": {k: _clean(v) for k, v in m.values.items()},
        }
        for m in records
    ]


def trial_detail(store: Store, experiment_id: int, number: int) -> dict[str, Any]:
    """A trial's hyperparameters, reports (downsampled per group and name), checkpoints."""
    experiment = store.get_experiment(experiment_id)
    trial = find_trial(store, experiment_id, number)
    metrics = store.trial_metrics(trial.id)
    analysis = Analysis(store, experiment_id)
    searcher = [v for m in metrics if (v := searcher_value(m, analysis.metric_name)) is not None]
    series: dict[str, dict[str, list[Any]]] = {}
    for m in metrics:
        for name, value in m.values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                entry = series.setdefault(f"{m.group}/{name}", {"step": [], "value": []})
                entry["step"].append(m.step)
                entry["value"].append(_clean(value))
    for entry in series.values():
        pairs = downsample(list(zip(entry["step"], entry["value"], strict=True)), 500)
        entry["step"] = [p[0] for p in pairs]
        entry["value"] = [p[1] for p in pairs]
    parent = None
    if trial.parent_id:
        parent = next(
            (t.number for t in store.list_trials(experiment_id) if t.id == trial.parent_id), None
        )
    return {
        "experiment": {
            "id": experiment.id,
            "name": experiment.name,
            "state": str(experiment.state),
            "live": coordinator_alive(experiment),
            "metric": analysis.metric_name,
            # Core-API trials checkpoint on request, so one can be paused and resumed
            "pausable": experiment.config.get("front_door") == "core",
        },
        "trial": {
            "number": trial.number,
            "state": str(trial.state),
            "params": trial.params,
            "restarts": trial.restarts,
            "exit_code": trial.exit_code,
            "created_at": trial.created_at,
            "ended_at": trial.ended_at,
            "parent": parent,
            "best": _clean(min(searcher) if analysis.smaller_is_better else max(searcher))
            if searcher
            else None,
            "running": trial.state == RUNNING,
            "completed": trial.state == COMPLETED,
        },
        "series": series,
        "reports": metric_rows(metrics[-200:]),
        "checkpoints": [
            {
                "uuid": c.uuid,
                "steps_completed": c.steps_completed,
                "created_at": c.created_at,
                "state": c.state,
                "metadata": c.metadata,
            }
            for c in store.list_checkpoints(trial.id)
        ],
        "cursor": _cursor(metrics),
    }
