"""``ridgeline.visualization`` over an in-process Study with a stopping rule: every figure has
data, failed trials are never the best, log and categorical hyperparameters get their axes,
and the JSON preparation downsamples large searches."""

from __future__ import annotations

import json
import math
import random

import pytest

import ridgeline
from ridgeline import visualization as viz
from ridgeline.analysis import Analysis
from ridgeline.store.records import ExperimentRecord, MetricRecord, TrialRecord
from ridgeline.visualization import data

go = pytest.importorskip("plotly.graph_objects")

FAILED_TRIAL = 3


def objective(params: dict, step: int) -> float:
    """Depends strongly on lr (best near 1e-2.5), a little on act, not on layers."""
    lr_term = abs(math.log10(params["lr"]) + 2.5)
    return lr_term + (0.3 if params["act"] == "tanh" else 0.0) + 1.0 / step


@pytest.fixture(scope="module")
def study() -> ridgeline.Study:
    parameters = [
        ridgeline.Continuous("lr", [1e-4, 1e-1], scale="log"),
        ridgeline.Choice("act", ["relu", "tanh"]),
        ridgeline.Discrete("layers", [1, 4]),
    ]
    study = ridgeline.Study(
        parameters,
        ridgeline.RandomSearch(max_num_trials=16),
        lower_is_better=True,
        stopping_rule=ridgeline.MedianStoppingRule(min_iterations=3, min_trials=3),
        seed=5,
    )
    for trial in study:
        if trial.id == FAILED_TRIAL:  # the best number of all, from a trial that failed
            study.add_observation(trial, iteration=1, objective=-100.0)
            study.finalize(trial, status="FAILED")
            continue
        status = "COMPLETED"
        for step in range(1, 11):
            study.add_observation(
                trial, iteration=step, objective=objective(trial.parameters, step)
            )
            if study.should_trial_stop(trial):
                status = "STOPPED"
                break
        study.finalize(trial, status=status)
    return study


def test_every_plot_has_data(study: ridgeline.Study) -> None:
    analysis = ridgeline.load(study)
    states = set(analysis.trials_dataframe()["state"])
    assert {"COMPLETED", "STOPPED", "FAILED"} <= states
    for kind in viz.KINDS:
        if kind in ("rungs", "lineage"):
            continue
        figure = viz.plot(kind, analysis)
        assert isinstance(figure, go.Figure), kind
        assert figure.data and any(_points(trace) for trace in figure.data), kind
    # The Study itself works as well as what load returns, under Optuna's names.
    assert viz.plot_optimization_history(study).data
    assert viz.plot_param_importances(study).data


def _points(trace: object) -> int:
    for field in ("x", "values", "z"):
        value = getattr(trace, field, None)
        if value is not None and len(value):
            return len(value)
    dims = getattr(trace, "dimensions", None)
    return len(dims[0].values) if dims else 0


def test_failed_trials_are_never_the_best(study: ridgeline.Study) -> None:
    analysis = ridgeline.load(study)
    history = data.optimization_history(analysis)
    failed = [p for p in history["trials"] if p["number"] == FAILED_TRIAL]
    assert failed == [
        {"number": FAILED_TRIAL, "value": -100.0, "state": "FAILED", "counted": False}
    ]
    assert all(p["value"] > -100 for p in history["best"])
    assert history["best"][-1]["value"] == analysis.best_trial().best  # type: ignore[union-attr]
    assert all(p["value"] > -100 for p in history["best_over_time"])
    best_line = [t for t in viz.plot_optimization_history(analysis).data if t.name == "Best Value"]
    assert min(best_line[0].y) > -100
    curves = data.learning_curves(analysis, top=3)
    ranked = sorted((c for c in curves["curves"] if c["rank"]), key=lambda c: c["rank"])
    assert [c["number"] for c in ranked][:1] == [analysis.best_trial().record.number]  # type: ignore[union-attr]
    assert FAILED_TRIAL not in [c["number"] for c in ranked]
    assert all(FAILED_TRIAL not in p["numbers"] for p in data.slices(analysis)["params"])


def test_log_and_categorical_axes(study: ridgeline.Study) -> None:
    analysis = ridgeline.load(study)
    slice_fig = viz.plot_slice(analysis)
    axes = {slice_fig.layout[f"xaxis{'' if i == 1 else i}"].title.text: i for i in (1, 2, 3)}
    lr_axis = slice_fig.layout[f"xaxis{'' if axes['lr'] == 1 else axes['lr']}"]
    act_axis = slice_fig.layout[f"xaxis{'' if axes['act'] == 1 else axes['act']}"]
    assert lr_axis.type == "log" and act_axis.type == "category"
    assert list(act_axis.categoryarray) == ["relu", "tanh"]
    parallel = data.parallel_coordinates(analysis)
    by_label = {d["label"]: d for d in parallel["dimensions"]}
    assert by_label["lr"]["log"] and all(-4 <= v <= -1 for v in by_label["lr"]["values"])
    assert by_label["lr"]["ticktext"][0].startswith("1e")
    assert by_label["act"]["ticktext"] == ["relu", "tanh"]
    assert list(by_label)[-1] == "objective"
    contour = data.contour(analysis, ["lr", "layers"])
    assert contour["x"]["log"] and contour["grid"] is not None
    assert len(contour["grid"]["z"]) == 40
    figure = viz.plot_contour(analysis, ["lr", "act"])
    assert figure.layout.xaxis.type == "log"
    assert list(figure.layout.yaxis.ticktext) == ["relu", "tanh"]
    with pytest.raises(ValueError, match="two varied hyperparameters"):
        data.contour(analysis, ["lr", "nope"])


def test_importance_names_its_method_and_finds_the_strong_parameter(
    study: ridgeline.Study,
) -> None:
    analysis = ridgeline.load(study)
    result = data.importances(analysis)
    assert result["importances"][0]["name"] == "lr"
    first, second = (i["importance"] for i in result["importances"][:2])
    assert first > 0.1 and first > 2 * second
    assert all(0 <= i["importance"] <= 1 for i in result["importances"])
    figure = viz.plot_param_importances(analysis)
    assert "ε²" in figure.layout.title.text
    assert any("variance" in a.text for a in figure.layout.annotations)


def test_rungs_and_lineage_say_what_they_need(study: ridgeline.Study) -> None:
    with pytest.raises(ValueError, match="no rungs"):
        viz.plot_rungs(study)
    with pytest.raises(ValueError, match="pbt"):
        viz.plot_lineage(study)
    with pytest.raises(ValueError, match="unknown plot"):
        viz.plot("pie", study)


def test_data_is_plain_json(study: ridgeline.Study) -> None:
    analysis = ridgeline.load(study)
    for prepared in (
        data.optimization_history(analysis),
        data.learning_curves(analysis),
        data.slices(analysis),
        data.parallel_coordinates(analysis),
        data.contour(analysis),
        data.importances(analysis),
        {"params": data.param_axes(analysis)},
    ):
        text = json.dumps(prepared, allow_nan=False)  # no NaN, no numpy types
        assert json.loads(text) == prepared


def synthetic(trials: int, steps: int) -> Analysis:
    """An analysis over ``trials`` x ``steps`` reports made in memory (no store)."""
    rng = random.Random(0)
    records = [
        TrialRecord(i, 1, i, i, {"lr": 10 ** rng.uniform(-4, -1)}, "COMPLETED", 0.0)
        for i in range(1, trials + 1)
    ]
    metrics, seq = [], 0
    for t in records:
        base = rng.random()
        for s in range(1, steps + 1):
            seq += 1
            value = math.nan if (t.id == 2 and s == 3) else base + 1 / s
            metrics.append(MetricRecord(seq, t.id, "validation", s, {"objective": value}, seq))
    analysis = Analysis(None, 1)  # type: ignore[arg-type]
    experiment = ExperimentRecord(1, "synthetic", "COMPLETED", {}, 0.0)
    analysis.__dict__.update(trials=records, metrics=metrics, events=[], experiment=experiment)
    return analysis


def test_learning_curves_downsample_large_searches() -> None:
    analysis = synthetic(2_000, 100)
    curves = data.learning_curves(analysis, top=5, max_points=200, point_budget=20_000)
    assert len(curves["curves"]) == 2_000
    top = [c for c in curves["curves"] if c["rank"]]
    assert len(top) == 5 and all(len(c["steps"]) == 100 and not c["downsampled"] for c in top)
    rest = [c for c in curves["curves"] if not c["rank"]]
    assert sum(len(c["steps"]) for c in rest) <= 20_000 + 4 * len(rest)
    for c in rest:
        assert c["downsampled"] and c["steps"][0] == 1 and c["steps"][-1] == 100
        assert c["values"][-1] == min(v for v in c["values"] if v is not None)  # best kept
    nan_curve = next(c for c in curves["curves"] if c["number"] == 2)
    json.dumps(nan_curve, allow_nan=False)  # NaN became None
    figure = viz.plot_learning_curves(analysis, top=5)
    assert len(figure.data) == 6 and figure.data[0].type == "scattergl"


def test_rungs_of_sherpa_successive_halving() -> None:
    """SHERPA's SuccessiveHalving: each rung a trial, promotions by load_from/save_to."""
    from ridgeline.algorithms import SuccessiveHalving

    study = ridgeline.Study(
        [ridgeline.Continuous("x", [0, 1])],
        SuccessiveHalving(r=1, R=9, eta=3, max_finished_configs=2),
        lower_is_better=True,
        seed=1,
    )
    for trial in study:
        for i in range(1, int(trial.parameters["resource"]) + 1):
            study.add_observation(trial, iteration=i, objective=trial.parameters["x"] + 1 / i)
        study.finalize(trial)
    rungs = data.rungs(ridgeline.load(study))
    [bracket] = rungs["brackets"]
    assert bracket["rung_lengths"] == [1.0, 3.0, 9.0]
    first, second, top = (r["trials"] for r in bracket["rungs"])
    configs = {t["config"] for t in second}
    assert configs <= {t["number"] for t in first if t["promoted"]}
    assert any(not t["promoted"] for t in first) and all(t["top"] for t in top)
    figure = viz.plot_rungs(study)
    assert any("top rung" in (t.name or "") for t in figure.data)
