"""plotly figures over ``data.py``: Optuna's names and meanings, plus learning curves, rungs
and lineage. Each function takes what ``ridgeline.load`` returns, or anything ``load`` takes
(a Study, an experiment id, an output folder)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ridgeline.analysis import load
from ridgeline.visualization import data

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "plot_contour",
    "plot_intermediate_values",
    "plot_learning_curves",
    "plot_lineage",
    "plot_optimization_history",
    "plot_parallel_coordinate",
    "plot_param_importances",
    "plot_rungs",
    "plot_slice",
]

FAILED_COLOR = "#b0b0b0"
BEST_COLOR = "#d62728"


def _go() -> Any:
    try:
        import plotly.graph_objects as go  # lazy: optional extra (plots)
    except ImportError:
        raise ImportError(
            "ridgeline.visualization draws with plotly, which is not installed: "
            "pip install 'ridgeline[plots]' (or pip install plotly)"
        ) from None
    return go


def _prepared(source: Any, prepare: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``prepare(analysis, *args)`` for ``source``; a store opened for an id or a path is
    closed again (an Analysis or a Study passed in stays open)."""
    analysis = load(source)
    try:
        return prepare(analysis, *args)
    finally:
        if analysis is not source and not hasattr(source, "_engine"):
            analysis.close()


def _title(a: dict[str, Any], what: str) -> str:
    better = "smaller" if a["smaller_is_better"] else "larger"
    return (
        f"{what}<br><sup>experiment {a['experiment_id']}: {a['metric']} ({better} is better)</sup>"
    )


def _colorscale(d: dict[str, Any]) -> dict[str, Any]:
    """Darker is better, as in Optuna."""
    return {"colorscale": "Blues", "reversescale": bool(d["smaller_is_better"])}


# -- Optuna's plots ----------------------------------------------------------------------------
def plot_optimization_history(source: Any) -> go.Figure:
    """Each trial's best value by trial number, with the best value so far (failed trials are
    drawn grey and never set the best)."""
    go = _go()
    d = _prepared(source, data.optimization_history)
    counted = [p for p in d["trials"] if p["counted"]]
    failed = [p for p in d["trials"] if not p["counted"]]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p["number"] for p in counted],
            y=[p["value"] for p in counted],
            mode="markers",
            name="Objective Value",
        )
    )
    if failed:
        fig.add_trace(
            go.Scatter(
                x=[p["number"] for p in failed],
                y=[p["value"] for p in failed],
                mode="markers",
                marker={"color": FAILED_COLOR, "symbol": "x"},
                name="Failed or canceled (never the best)",
                text=[p["state"] for p in failed],
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[p["number"] for p in d["best"]],
            y=[p["value"] for p in d["best"]],
            mode="lines",
            line={"color": BEST_COLOR},
            name="Best Value",
        )
    )
    fig.update_layout(
        title=_title(d, "Optimization History"),
        xaxis_title="Trial",
        yaxis_title=d["metric"],
    )
    return fig


def _curve_traces(fig: Any, d: dict[str, Any], highlight: bool) -> None:
    """Background curves as one WebGL trace with gaps (fast for 10,000 trials); ranked ones
    as a trace each."""
    go = _go()
    xs: list[Any] = []
    ys: list[Any] = []
    ranked = []
    for curve in d["curves"]:
        if highlight and curve["rank"] is not None:
            ranked.append(curve)
            continue
        xs += [*curve["steps"], None]
        ys += [*curve["values"], None]
    if xs:
        fig.add_trace(
            go.Scattergl(
                x=xs,
                y=ys,
                mode="lines+markers" if not highlight and len(d["curves"]) <= 50 else "lines",
                line={"color": FAILED_COLOR if highlight else None, "width": 1},
                opacity=0.6 if highlight else 0.9,
                name="other trials" if highlight else "trials",
                connectgaps=False,
            )
        )
    for curve in sorted(ranked, key=lambda c: c["rank"]):
        fig.add_trace(
            go.Scattergl(
                x=curve["steps"],
                y=curve["values"],
                mode="lines+markers",
                name=f"#{curve['rank']}: trial {curve['number']}",
                line={"width": 2.5 if curve["rank"] == 1 else 1.5},
            )
        )


def plot_intermediate_values(source: Any) -> go.Figure:
    """Every trial's reported metric against its step (Optuna's intermediate values)."""
    go = _go()
    d = _prepared(source, data.learning_curves, 0)
    fig = go.Figure()
    _curve_traces(fig, d, highlight=False)
    fig.update_layout(
        title=_title(d, "Intermediate Values"),
        xaxis_title=f"Step ({d['unit']})",
        yaxis_title=d["metric"],
        showlegend=False,
    )
    return fig


def plot_learning_curves(source: Any, top: int = 10) -> go.Figure:
    """Metric against step for every trial, the ``top`` best trials highlighted and named."""
    go = _go()
    d = _prepared(source, data.learning_curves, top)
    fig = go.Figure()
    _curve_traces(fig, d, highlight=True)
    fig.update_layout(
        title=_title(d, f"Learning Curves (top {d['top']} highlighted)"),
        xaxis_title=f"Step ({d['unit']})",
        yaxis_title=d["metric"],
    )
    return fig


def plot_parallel_coordinate(source: Any) -> go.Figure:
    """One axis per hyperparameter and one for the metric; lines coloured by the metric.
    Log-scaled hyperparameters are on log10 axes labelled 1eN; categories by name."""
    go = _go()
    d = _prepared(source, data.parallel_coordinates)
    dimensions = []
    for dim in d["dimensions"]:
        present = [v for v in dim["values"] if v is not None]
        entry: dict[str, Any] = {"label": dim["label"], "values": dim["values"]}
        if present:
            entry["range"] = dim.get("range") or [min(present), max(present)]
        for key in ("tickvals", "ticktext"):
            if key in dim:
                entry[key] = dim[key]
        dimensions.append(entry)
    fig = go.Figure(
        go.Parcoords(
            dimensions=dimensions,
            line={"color": d["objective"], "showscale": True, **_colorscale(d)},
        )
    )
    fig.update_layout(title=_title(d, "Parallel Coordinate"), margin={"t": 130})
    return fig


def _axis(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["kind"] == "categorical":
        return {"type": "category", "categoryorder": "array", "categoryarray": spec["choices"]}
    return {"type": "log"} if spec["log"] else {}


def plot_slice(source: Any) -> go.Figure:
    """The metric against each hyperparameter, one panel each (log axes for log scales,
    categories by name); darker points are later trials."""
    go = _go()
    from plotly.subplots import make_subplots  # lazy: optional extra (plotly)

    d = _prepared(source, data.slices)
    params = d["params"] or [{"name": "(no varied hyperparameter)", "x": [], "y": []}]
    fig = make_subplots(rows=1, cols=len(params), shared_yaxes=True)
    for i, p in enumerate(params, start=1):
        fig.add_trace(
            go.Scatter(
                x=p["x"],
                y=p["y"],
                mode="markers",
                name=p["name"],
                text=[f"trial {n}" for n in p.get("numbers", [])],
                marker={
                    "color": p.get("numbers", []),
                    "colorscale": "Blues",
                    "showscale": i == len(params),
                    "colorbar": {"title": "Trial"},
                    "line": {"width": 0.5, "color": "Grey"},
                },
                showlegend=False,
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(title_text=p["name"], row=1, col=i, **_axis(p) if "kind" in p else {})
    fig.update_yaxes(title_text=d["metric"], row=1, col=1)
    fig.update_layout(title=_title(d, "Slice Plot"))
    return fig


def _contour_axis(spec: dict[str, Any], coords: list[float]) -> tuple[list[Any], dict[str, Any]]:
    """Values to draw at and the axis settings: real values on a log axis for log scales,
    indices labelled by name for categories."""
    if spec["kind"] == "categorical":
        ticks = list(range(len(spec["choices"])))
        labels = [str(c) for c in spec["choices"]]
        return coords, {"tickvals": ticks, "ticktext": labels}
    if spec["log"]:
        return [10**c for c in coords], {"type": "log"}
    return coords, {}


def plot_contour(source: Any, params: list[str] | None = None) -> go.Figure:
    """The metric over two hyperparameters (default: the two most important), interpolated
    between the trials, with the trials as points."""
    go = _go()
    d = _prepared(source, data.contour, params)
    fig = go.Figure()
    px, xaxis = _contour_axis(d["x"], d["points"]["x"])
    py, yaxis = _contour_axis(d["y"], d["points"]["y"])
    if d["grid"] is not None:
        gx, _ = _contour_axis(d["x"], d["grid"]["x"])
        gy, _ = _contour_axis(d["y"], d["grid"]["y"])
        fig.add_trace(
            go.Contour(
                x=gx,
                y=gy,
                z=d["grid"]["z"],
                connectgaps=False,
                colorbar={"title": d["metric"]},
                **_colorscale(d),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=px,
            y=py,
            mode="markers",
            marker={"color": "black", "size": 6},
            text=[
                f"trial {n}: {v:.6g}"
                for n, v in zip(d["points"]["numbers"], d["points"]["value"], strict=True)
            ],
            name="trials",
            showlegend=False,
        )
    )
    fig.update_xaxes(title_text=d["x"]["name"], **xaxis)
    fig.update_yaxes(title_text=d["y"]["name"], **yaxis)
    fig.update_layout(title=_title(d, "Contour Plot"))
    return fig


def plot_param_importances(source: Any) -> go.Figure:
    """Hyperparameter importances, the method named in the title and spelled out below."""
    go = _go()
    d = _prepared(source, data.importances)
    items = list(reversed(d["importances"]))  # plotly draws bars bottom-up
    fig = go.Figure(
        go.Bar(
            x=[i["importance"] for i in items],
            y=[i["name"] for i in items],
            orientation="h",
            text=[f"{i['importance']:.2f}" for i in items],
            textposition="outside",
        )
    )
    note = d["method"] if items else f"needs 4 finished trials or more; {d['trials']} so far"
    fig.update_layout(
        title=_title(d, f"Hyperparameter Importances: {d['method_short']}"),
        xaxis_title="Importance (share of the metric's variance)",
        yaxis_title="Hyperparameter",
        xaxis_range=[0, 1],
        margin={"b": 120},
    )
    fig.add_annotation(
        text=_wrap(note, 110),
        xref="paper",
        yref="paper",
        x=0,
        y=-0.3,
        showarrow=False,
        align="left",
        font={"size": 11},
    )
    return fig


def _wrap(text: str, width: int) -> str:
    return "<br>".join(textwrap.wrap(text, width))


# -- ridgeline's own ---------------------------------------------------------------------------
def plot_rungs(source: Any) -> go.Figure:
    """ASHA / Hyperband: the metric each trial reported at each rung, a line per trial
    through the rungs it reached; filled markers were promoted, hollow ones were not, stars
    reached the top rung."""
    go = _go()
    d = _prepared(source, data.rungs)
    fig = go.Figure()
    for bracket in d["brackets"]:
        name = (
            f"bracket {bracket['index'] + 1} (rungs {', '.join(map(str, bracket['rung_lengths']))})"
        )
        paths: dict[int, list[tuple[int, Any]]] = {}
        for rung in bracket["rungs"]:
            for t in rung["trials"]:
                paths.setdefault(t.get("config", t["number"]), []).append(
                    (rung["length"], t["value"])
                )
        xs: list[Any] = []
        ys: list[Any] = []
        for path in paths.values():
            if len(path) > 1:
                xs += [p[0] for p in path] + [None]
                ys += [p[1] for p in path] + [None]
        group = f"b{bracket['index']}"
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"width": 1, "color": "rgba(120,120,120,0.5)"},
                    legendgroup=group,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        kinds = (
            ("promoted", "circle", lambda t: t["promoted"] and not t["top"]),
            ("not promoted", "circle-open", lambda t: not t["promoted"] and not t["top"]),
            ("top rung (full length)", "star", lambda t: t["top"]),
        )
        for label, symbol, belongs in kinds:
            points = [
                (rung["length"], t)
                for rung in bracket["rungs"]
                for t in rung["trials"]
                if belongs(t)
            ]
            if not points:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in points],
                    y=[p[1]["value"] for p in points],
                    mode="markers",
                    marker={"symbol": symbol, "size": 10, "color": _palette(bracket["index"])},
                    text=[f"trial {p[1]['number']} ({p[1]['state']})" for p in points],
                    name=f"{name}: {label}",
                    legendgroup=group,
                )
            )
    lengths = sorted({n for b in d["brackets"] for n in b["rung_lengths"]})
    fig.update_xaxes(
        title_text=f"Rung length ({d['unit']})",
        type="log" if lengths and lengths[-1] / max(lengths[0], 1) >= 8 else "linear",
        tickvals=lengths,
    )
    fig.update_layout(title=_title(d, "Rungs and Promotions"), yaxis_title=d["metric"])
    return fig


def _palette(i: int) -> str:
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    return colors[i % len(colors)]


def plot_lineage(source: Any) -> go.Figure:
    """Population-based training: each trial's curve coloured by generation, and a dotted
    link from the parent's point a clone continued from to the clone's first report."""
    go = _go()
    d = _prepared(source, data.lineage)
    fig = go.Figure()
    top = max((n["generation"] for n in d["trials"]), default=0)
    for node in d["trials"]:
        color = _palette(node["generation"])
        if node["from"] is not None and node["steps"]:
            fig.add_trace(
                go.Scatter(
                    x=[node["from"]["step"], node["steps"][0]],
                    y=[node["from"]["value"], node["values"][0]],
                    mode="lines",
                    line={"dash": "dot", "color": color, "width": 1},
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        parent = f", cloned from trial {node['parent']}" if node["parent"] is not None else ""
        fig.add_trace(
            go.Scatter(
                x=node["steps"],
                y=node["values"],
                mode="lines+markers",
                line={"color": color},
                name=f"trial {node['number']} (generation {node['generation']}{parent})",
            )
        )
    fig.update_layout(
        title=_title(d, f"PBT Lineage ({top + 1} generations)"),
        xaxis_title=f"Step ({d['unit']})",
        yaxis_title=d["metric"],
    )
    return fig
