"""MLflow runs per trial from real searches, read back with MLflow's own client from a local
file-backed tracking store."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

import ridgeline
import ridgeline as sherpa
from ridgeline.store import open_store

pytest.importorskip("mlflow", reason="MLflow is in the dev extra")

from mlflow import MlflowClient  # noqa: E402

CORE_TRIAL = """
import ridgeline as det

info = det.get_cluster_info()
with det.core.init() as ctx:
    inc = info.trial.hparams["inc"]
    x = 0
    for op in ctx.searcher.operations():
        for step in range(1, op.length + 1):
            x += inc if step <= 3 else -inc  # the best x is at step 3
            ctx.train.report_training_metrics(steps_completed=step, metrics={"loss": 1.0 / step})
            if step in (3, op.length):
                ctx.train.report_validation_metrics(steps_completed=step, metrics={"x": x})
                with ctx.checkpoint.store_path({"steps_completed": step}) as (path, uuid):
                    (path / "state").write_text(f"{x},{step}")
        op.report_completed(x)
"""

SHERPA_TRIAL = """
import time
import ridgeline as sherpa

client = sherpa.Client()
trial = client.get_trial()
for i in range(4):
    client.send_metrics(trial, iteration=i, objective=trial.parameters["v"] * (i + 1),
                        context={"extra": i})
    time.sleep(0.05)
"""


@pytest.fixture
def file_store(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it
    return (workdir / "mlruns").as_uri()


def test_core_experiment_trials_become_mlflow_runs(
    workdir: Path, file_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", file_store)
    (workdir / "trial.py").write_text(textwrap.dedent(CORE_TRIAL))
    config = {
        "name": "mlflow",
        "entrypoint": "python3 trial.py",
        "hyperparameters": {"inc": {"type": "int", "minval": 1, "maxval": 8}},
        "searcher": {
            "name": "random",
            "metric": "x",
            "smaller_is_better": False,
            "max_length": 5,
            "max_trials": 3,
            "max_concurrent_trials": 2,
        },
    }
    (workdir / "config.yaml").write_text(json.dumps(config))
    experiment = ridgeline.Experiment.from_yaml(workdir / "config.yaml", workdir)
    experiment.run(verbose=0)
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        trials = {t.number: t for t in store.list_trials(experiment.id)}
        checkpoints = {n: store.list_checkpoints(t.id) for n, t in trials.items()}
    finally:
        store.close()

    client = MlflowClient(tracking_uri=file_store)
    found = client.get_experiment_by_name(f"ridgeline mlflow #{experiment.id}")
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    by_trial = {int(r.data.tags["ridgeline.trial"]): r for r in runs}
    assert sorted(by_trial) == [1, 2, 3]
    for number, run in by_trial.items():
        inc = trials[number].params["inc"]
        assert run.info.run_name == f"trial_{number}"
        assert run.info.status == "FINISHED"
        assert run.data.tags["ridgeline.state"] == "COMPLETED"
        assert run.data.params == {"inc": str(inc)}
        loss = client.get_metric_history(run.info.run_id, "training/loss")
        assert sorted((m.step, m.value) for m in loss) == [
            (s, pytest.approx(1.0 / s)) for s in range(1, 6)
        ]
        x = client.get_metric_history(run.info.run_id, "validation/x")
        assert sorted((m.step, m.value) for m in x) == [(3, 3 * inc), (5, inc)]
        # the best checkpoint is the one at step 3, where x peaked
        (best,) = [c for c in checkpoints[number] if c.steps_completed == 3]
        assert run.data.tags["ridgeline.best_checkpoint"] == best.uuid
        local = client.download_artifacts(run.info.run_id, "best_checkpoint", str(workdir / "dl"))
        assert (Path(local) / "state").read_text() == f"{3 * inc},3"
        (workdir / "dl" / "best_checkpoint" / "state").unlink()


def test_runner_logs_states_and_survives_an_unreachable_server(
    workdir: Path, file_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(SHERPA_TRIAL))
    common = dict(
        parameters=[sherpa.Continuous("v", [0.0, 1.0])],
        lower_is_better=True,
        scheduler=sherpa.schedulers.LocalScheduler(),
        filename=str(workdir / "trial.py"),
        max_concurrent=2,
        verbose=0,
        seed=0,
    )
    sherpa.optimize(
        algorithm=sherpa.algorithms.Iterate([{"v": 0.1}, {"v": 0.2}, {"v": 0.9}]),
        stopping_rule=sherpa.MedianStoppingRule(min_iterations=1, min_trials=2),
        output_dir=str(workdir / "out"),
        mlflow_tracking_uri=file_store,
        **common,
    )
    client = MlflowClient(tracking_uri=file_store)
    (experiment,) = [e for e in client.search_experiments() if e.name.startswith("ridgeline ")]
    runs = {
        int(r.data.tags["ridgeline.trial"]): r
        for r in client.search_runs([experiment.experiment_id])
    }
    assert sorted(runs) == [1, 2, 3]
    states = {n: (r.info.status, r.data.tags["ridgeline.state"]) for n, r in runs.items()}
    assert states[1] == states[2] == ("FINISHED", "COMPLETED")
    assert states[3] == ("KILLED", "STOPPED")  # the median rule stopped the worst
    history = client.get_metric_history(runs[1].info.run_id, "validation/objective")
    assert sorted((m.step, m.value) for m in history) == [
        (i, pytest.approx(0.1 * (i + 1))) for i in range(4)
    ]
    assert len(client.get_metric_history(runs[3].info.run_id, "validation/extra")) < 4
    assert runs[2].data.params == {"v": "0.2"}

    # MLflow away: the search still ends as it should, and the log says why nothing arrived
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    best = sherpa.optimize(
        algorithm=sherpa.algorithms.Iterate([{"v": 0.3}]),
        output_dir=str(workdir / "away"),
        mlflow_tracking_uri="http://127.0.0.1:9",
        **common,
    )
    assert best["v"] == 0.3
    assert "MLflow logging:" in (workdir / "away" / "log.txt").read_text()
