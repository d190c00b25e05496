"""Determined 0.38 ASHA with real trial processes: the script trains to its own length and
reports the time metric with its validations; the searcher stops trials that fall behind."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

import ridgeline
from ridgeline.errors import SearchFailed
from ridgeline.store import open_store

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "core_api" / "3_hpsearch_038.yaml"


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    return workdir


def expected_stops(
    reports: list[tuple[int, int, float]], bracket_of: dict[int, tuple[int, ...]], divisor: float
) -> dict[int, int]:
    """Trial -> the rung time it must be stopped at, replaying the reports in the order the
    searcher saw them (REFERENCE 4.5: larger is better here; ties before equal values)."""
    rungs: dict[tuple[tuple[int, ...], int], list[float]] = {}
    level = dict.fromkeys(bracket_of, 0)
    decided: set[int] = set()
    stops: dict[int, int] = {}
    for trial, time, value in reports:
        times = bracket_of[trial]
        while trial not in decided and level[trial] < len(times) and time >= times[level[trial]]:
            held = rungs.setdefault((times, level[trial]), [])
            index = sum(1 for v in held if v > value)  # larger is better: better ones first
            held.insert(index, value)
            if level[trial] == len(times) - 1:
                decided.add(trial)
            elif index >= max(int(len(held) / divisor), 1):
                decided.add(trial)
                stops[trial] = times[level[trial]]
            else:
                level[trial] += 1
    return stops


def test_example_stops_trials_at_rungs_by_rank(user_env: Path) -> None:
    """The shipped example (adaptive_asha, max_time 100, 10 trials): brackets (25, 100) and
    (100); trials that fall behind at batch 25 are stopped, checkpoint and exit; the others
    train to batch 100. The experiment completes and its best comes from real reports."""
    context = user_env / "stage3"
    context.mkdir()
    for name in ("3_hpsearch_038.yaml", "3_hpsearch_038.py"):
        shutil.copy(EXAMPLE.parent / name, context / name)
    experiment = ridgeline.Experiment.from_yaml(context / "3_hpsearch_038.yaml", context)
    best = experiment.run(verbose=0)
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        assert store.get_experiment(experiment.id).state == "COMPLETED"
        records = store.list_trials(experiment.id)
        metrics = {t.number: store.trial_metrics(t.id, "searcher") for t in records}
        checkpoints = {t.number: store.list_checkpoints(t.id) for t in records}
        events = store.read_events(experiment.id)
    finally:
        store.close()
    assert len(records) == 10
    # Request ids alternate between the two brackets (rungs at 25 and 100, then 100 alone).
    bracket_of = {t.number: (25, 100) if t.request_id % 2 else (100,) for t in records}
    reports = sorted(
        (m.seq, number, m.step, float(m.values["objective"]))
        for number, rows in metrics.items()
        for m in rows
    )
    stops = expected_stops([r[1:] for r in reports], bracket_of, divisor=4)
    requested = {e.data["trial"]: e.data["reason"] for e in events if e.kind == "stop_requested"}
    assert set(requested) == set(stops) and stops, (requested, stops)
    for t in records:
        steps = [m.step for m in metrics[t.number]]
        if t.number in stops:
            assert t.state == "STOPPED" and t.exit_code == 0
            assert f"(time {stops[t.number]})" in requested[t.number]
            assert max(steps) < 100  # it exited at its next preemption check
            assert checkpoints[t.number]  # and checkpointed on the way out
        else:
            assert t.state == "COMPLETED" and steps[-1] == 100, (t.number, t.state, steps)
    values = [r[3] for r in reports]
    assert best["Objective"] == max(values)
    assert 100 * best["increment_by"] == best["Objective"]


TRIAL_WITHOUT_TIME = """
import ridgeline as det

with det.core.init() as ctx:
    for batch in range(1, 4):
        ctx.train.report_validation_metrics(steps_completed=batch, metrics={"x": batch})
"""


def test_validations_without_the_time_metric_end_error(
    user_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (user_env / "train.py").write_text(textwrap.dedent(TRIAL_WITHOUT_TIME))
    experiment = ridgeline.Experiment.from_dict(
        {
            "entrypoint": "python3 train.py",
            "hyperparameters": {"increment_by": 1},
            "searcher": {
                "name": "async_halving",
                "metric": "x",
                "num_rungs": 2,
                "max_trials": 1,
                "time_metric": "batches",
                "max_time": 4,
            },
        },
        user_env,
    )
    with pytest.raises(SearchFailed, match="never a usable time metric 'batches'"):
        experiment.run(verbose=0)
    said = [r for r in caplog.records if "without the time metric 'batches'" in r.getMessage()]
    assert len(said) == 1  # three such reports, one line in the log


TRIAL_WITH_OPERATIONS = """
import pathlib, time
import ridgeline as det

with det.core.init() as ctx:
    increment = det.get_cluster_info().trial.hparams["increment_by"]
    x = 0
    for op in ctx.searcher.operations():
        pathlib.Path("op_length").write_text(str(op.length))
        for batch in range(1, op.length + 1):
            x += increment
            time.sleep(0.01)
            if batch % 5 == 0:
                ctx.train.report_validation_metrics(
                    steps_completed=batch, metrics={"x": x, "batches": batch}
                )
                if ctx.preempt.should_preempt():
                    raise SystemExit(0)
        op.report_completed(x)
"""


def test_scripts_that_loop_over_operations_get_one_to_max_time(user_env: Path) -> None:
    (user_env / "train.py").write_text(textwrap.dedent(TRIAL_WITH_OPERATIONS))
    experiment = ridgeline.Experiment.from_dict(
        {
            "entrypoint": "python3 train.py",
            "hyperparameters": {"increment_by": {"type": "int", "minval": 1, "maxval": 8}},
            "searcher": {
                "name": "async_halving",
                "metric": "x",
                "smaller_is_better": False,
                "num_rungs": 2,
                "divisor": 2,
                "max_trials": 3,
                "max_concurrent_trials": 2,
                "time_metric": "batches",
                "max_time": 20,
            },
        },
        user_env,
    )
    experiment.run(verbose=0)
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        output = Path(store.get_experiment(experiment.id).config["output_dir"])
        assert store.get_experiment(experiment.id).state == "COMPLETED"
        records = store.list_trials(experiment.id)
        steps = {t.number: [m.step for m in store.trial_metrics(t.id, "searcher")] for t in records}
    finally:
        store.close()
    assert len(records) == 3
    for t in records:
        assert (output / "trials" / str(t.number) / "op_length").read_text() == "20"
        assert t.state in ("COMPLETED", "STOPPED"), (t.number, t.state)
        if t.state == "COMPLETED":
            assert steps[t.number][-1] == 20
