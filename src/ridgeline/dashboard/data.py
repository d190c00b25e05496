"""What the pages draw, as plain JSON-able dicts computed from the store.

Large searches are downsampled here, not in the browser: a page gets at most a few tens of
thousands of points whatever the search's size, so it paints in well under a second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from ridgeline.analysis import Analysis, TrialSummary, finite, searcher_value
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

TOP_N = 10  # learning curves drawn highlighted
MAX_CURVE_POINTS = 60  # per highlighted curve
MAX_BACKGROUND_TRIALS = 400  # other curves, drawn faint
MAX_BACKGROUND_POINTS = 12  # per faint curve
MAX_PARCOORDS = 2000  # lines in the parallel-coordinates plot
MAX_SCATTER = 4000  # points per slice plot
MAX_HISTORY = 2000  # points of the best-so-far curve
IMPORTANCE_BINS = 8
IMPORTANCE_METHOD = (
    "first-order fANOVA estimate: the share of the objective's variance explained by each "
    f"hyperparameter's marginal means over {IMPORTANCE_BINS} quantile bins (η²)"
)


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


def coordinator_alive(experiment: ExperimentRecord) -> bool:
    from ridgeline.cli.control import coordinator_alive as alive

    return bool(experiment.coordinator and experiment.coordinator.get("url")) and alive(
        experiment
    )


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
def _param_kind(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "number"
    return "category"


def experiment_overview(analysis: Analysis) -> dict[str, Any]:
    """Everything the experiment page draws, downsampled for size."""
    experiment = analysis.experiment
    summaries = analysis.summaries
    names = analysis.param_names
    kinds = {n: _param_kind([t.params.get(n) for t in analysis.trials]) for n in names}
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
        "params": [{"name": n, "kind": kinds[n]} for n in names],
        "metrics": metric_names,
        "trials": [_trial_row(s, names, last_values.get(s.record.id, {})) for s in summaries],
        "history": best_so_far(analysis),
        "curves": learning_curves(analysis),
        "parcoords": parallel_coordinates(analysis, summaries, names, kinds),
        "slices": slices(summaries, names, kinds),
        "importance": importance(summaries, names, kinds),
        "rungs": rungs(analysis, summaries),
        "lineage": lineage(summaries),
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


def best_so_far(analysis: Analysis) -> dict[str, Any]:
    """The best searcher value after each report, by report count (with its time)."""
    times = {m.seq: m.time for m in analysis.metrics}
    points: list[tuple[float, float, int, int]] = []
    best: float | None = None
    for index, (seq, number, value) in enumerate(analysis.history(), 1):
        if best is None or analysis.better(value, best):
            best = value
            points.append((times.get(seq, 0.0), best, number, index))
        elif points:
            points.append((times.get(seq, 0.0), best, points[-1][2], index))
    # Keep every improvement, thin the flat stretches in between.
    improvements = [i for i, p in enumerate(points) if i == 0 or p[1] != points[i - 1][1]]
    keep = set(improvements[-MAX_HISTORY // 2 :])
    keep.update(downsample(range(len(points)), MAX_HISTORY // 2))
    kept = [points[i] for i in sorted(keep)]
    return {
        "time": [p[0] for p in kept],
        "best": [p[1] for p in kept],
        "trial": [p[2] for p in kept],
        "report": [p[3] for p in kept],
    }


def learning_curves(analysis: Analysis) -> dict[str, Any]:
    """Searcher value vs step: the top ``TOP_N`` trials each as their own curve, a sample of
    the others together as one faint trace (gaps between trials are nulls)."""
    numbers = {t.id: t.number for t in analysis.trials}
    reports = analysis.searcher_reports
    ranked = sorted(
        (s for s in analysis.summaries if s.best is not None),
        key=lambda s: s.best if analysis.smaller_is_better else -s.best,  # type: ignore[operator]
    )
    top_ids = [s.record.id for s in ranked[:TOP_N]]
    top = []
    for trial_id in top_ids:
        points = downsample(sorted((step, v) for _, step, v in reports.get(trial_id, [])), 60)
        top.append(
            {
                "trial": numbers[trial_id],
                "step": [p[0] for p in points],
                "value": [_clean(p[1]) for p in points],
            }
        )
    others = [i for i in reports if i not in set(top_ids)]
    xs: list[int | None] = []
    ys: list[float | None] = []
    for trial_id in downsample(sorted(others), MAX_BACKGROUND_TRIALS):
        points = sorted((step, v) for _, step, v in reports[trial_id])
        for step, value in downsample(points, MAX_BACKGROUND_POINTS):
            xs.append(step)
            ys.append(_clean(value))
        xs.append(None)
        ys.append(None)
    return {
        "top": top,
        "others": {"step": xs, "value": ys, "trials": len(others)},
        "metric": analysis.metric_name,
    }


def _ranked_sample(summaries: list[TrialSummary], limit: int) -> list[TrialSummary]:
    scored = [s for s in summaries if finite(s.best)]
    return downsample(sorted(scored, key=lambda s: s.record.number), limit)


def parallel_coordinates(
    analysis: Analysis, summaries: list[TrialSummary], names: list[str], kinds: dict[str, str]
) -> dict[str, Any]:
    """An axis per hyperparameter (categories as indices with their labels) plus the
    objective, one line per scored trial (a sample of ``MAX_PARCOORDS`` when more)."""
    sample = _ranked_sample(summaries, MAX_PARCOORDS)
    dimensions = []
    for name in names:
        values = [s.record.params.get(name) for s in sample]
        if kinds[name] == "number":
            dimensions.append({"label": name, "values": [_clean(v) for v in values]})
        else:
            labels = sorted({str(v) for v in values})
            index = {label: i for i, label in enumerate(labels)}
            dimensions.append(
                {
                    "label": name,
                    "values": [index[str(v)] for v in values],
                    "tickvals": list(range(len(labels))),
                    "ticktext": labels,
                }
            )
    objective = [s.best for s in sample]
    dimensions.append({"label": analysis.metric_name, "values": objective})
    return {"dimensions": dimensions, "color": objective, "trials": [s.record.number for s in sample]}


def slices(
    summaries: list[TrialSummary], names: list[str], kinds: dict[str, str]
) -> list[dict[str, Any]]:
    """Per hyperparameter: its value against each trial's best objective."""
    sample = _ranked_sample(summaries, MAX_SCATTER)
    out = []
    for name in names:
        xs = [s.record.params.get(name) for s in sample]
        out.append(
            {
                "param": name,
                "kind": kinds[name],
                "x": [_clean(x) if kinds[name] == "number" else str(x) for x in xs],
                "y": [s.best for s in sample],
                "trial": [s.record.number for s in sample],
            }
        )
    return out


def importance(
    summaries: list[TrialSummary], names: list[str], kinds: dict[str, str]
) -> dict[str, Any]:
    """How much of the objective's variance each hyperparameter's marginal explains."""
    scored = [s for s in summaries if finite(s.best)]
    ys = [float(s.best) for s in scored]  # type: ignore[arg-type]
    result: dict[str, float] = {}
    if len(ys) >= 3:
        mean = sum(ys) / len(ys)
        total = sum((y - mean) ** 2 for y in ys)
        for name in names:
            groups = _bins([s.record.params.get(name) for s in scored], kinds[name])
            between = 0.0
            for members in groups.values():
                group_mean = sum(ys[i] for i in members) / len(members)
                between += len(members) * (group_mean - mean) ** 2
            result[name] = between / total if total > 0 else 0.0
    ordered = sorted(result.items(), key=lambda kv: kv[1])
    return {
        "param": [k for k, _ in ordered],
        "importance": [round(v, 4) for _, v in ordered],
        "method": IMPORTANCE_METHOD,
        "trials": len(ys),
    }


def _bins(values: list[Any], kind: str) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    if kind == "number":
        order = sorted(range(len(values)), key=lambda i: float(values[i] or 0.0))
        for rank, i in enumerate(order):
            groups.setdefault(rank * IMPORTANCE_BINS // len(values), []).append(i)
    else:
        for i, value in enumerate(values):
            groups.setdefault(str(value), []).append(i)
    return groups


def rungs(analysis: Analysis, summaries: list[TrialSummary]) -> dict[str, Any]:
    """ASHA/Hyperband view: the budgets trials stopped at (rungs), how many reached each,
    and how many went on past it (promotions)."""
    levels = sorted({s.steps for s in summaries if s.steps > 0 and s.record.state != RUNNING})
    if len(levels) > 12:  # not a rung structure: every trial ends at its own step
        levels = downsample(levels, 12)
    reached = [sum(1 for s in summaries if s.steps >= level) for level in levels]
    promoted = [sum(1 for s in summaries if s.steps > level) for level in levels]
    return {"step": levels, "reached": reached, "promoted": promoted}


def lineage(summaries: list[TrialSummary]) -> dict[str, Any]:
    """PBT: each trial with the trial it was cloned from (edges), at its creation time."""
    by_id = {s.record.id: s for s in summaries}
    nodes = []
    edges = []
    for s in summaries:
        t = s.record
        nodes.append(
            {"trial": t.number, "time": t.created_at, "best": _clean(s.best), "state": t.state}
        )
        parent = by_id.get(t.parent_id) if t.parent_id else None
        if parent is not None:
            edges.append(
                {
                    "from": parent.record.number,
                    "to": t.number,
                    "x": [parent.record.created_at, t.created_at],
                    "y": [_clean(parent.best), _clean(s.best)],
                }
            )
    if not edges:
        nodes = []
    return {"nodes": nodes[:MAX_SCATTER], "edges": edges[:MAX_SCATTER]}


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
            "best": _clean(
                min(searcher) if analysis.smaller_is_better else max(searcher)
            )
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
