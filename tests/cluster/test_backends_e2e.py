"""End to end on each real backend (single-node SLURM and single-node Grid Engine, each with
one job per trial and with worker jobs, a local dask cluster): the SHERPA runner example and the
Core-API stage-3 YAML (``adaptive_asha``) run to the end, a trial the search stops gets SIGTERM
through the backend, and a trial cancelled from outside (``scancel`` / ``qdel`` / its process
killed on its dask worker) fails, is restarted per ``max_restarts`` and resumes from its
checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import ridgeline as sherpa
from ridgeline.store import open_store

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BACKENDS = ["slurm", "slurm-workers", "sge", "sge-workers", "dask"]


@pytest.fixture(scope="module")
def dask_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    from .test_dask import start_cluster, stop_cluster

    address, processes = start_cluster(tmp_path_factory.mktemp("dask"))
    yield address
    stop_cluster(processes)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The backend's name and its Core-API YAML section (the daemons brought up)."""
    name: str = request.param
    if name == "dask":
        return name, {"address": request.getfixturevalue("dask_address")}
    if name.endswith("-workers"):  # jobs that run trial after trial
        name = name.removesuffix("-workers")
        request.getfixturevalue(name)
        args = "sbatch_args" if name == "slurm" else "qsub_args"
        return name, {args: [], "worker_jobs": True}
    request.getfixturevalue(name)
    return name, {"sbatch_args": []} if name == "slurm" else {"qsub_args": []}


def scheduler_for(name: str, section: dict[str, Any]) -> sherpa.schedulers.Scheduler:
    if name == "slurm":
        return sherpa.schedulers.SLURMScheduler(worker_jobs=section.get("worker_jobs", False))
    if name == "sge":
        return sherpa.schedulers.SGEScheduler(worker_jobs=section.get("worker_jobs", False))
    return sherpa.schedulers.DaskScheduler(section["address"])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_sherpa_runner_example_runs_to_the_end(
    backend: tuple[str, dict[str, Any]], workdir: Path
) -> None:
    """examples/runner.py's search, with the backend's scheduler instead of LocalScheduler."""
    name, section = backend
    out = workdir / "out"
    best = sherpa.optimize(
        parameters=[
            sherpa.Continuous("learning_rate", [1e-4, 1e-1], scale="log"),
            sherpa.Discrete("num_units", [8, 128]),
            sherpa.Choice("activation", ["relu", "tanh"]),
        ],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=4),
        lower_is_better=True,
        stopping_rule=sherpa.algorithms.MedianStoppingRule(min_iterations=3, min_trials=3),
        filename=str(EXAMPLES / "trial.py"),
        scheduler=scheduler_for(name, section),
        max_concurrent=2,
        output_dir=str(out),
        seed=7,
        verbose=0,
    )
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        trials = store.list_trials(experiment.id)
        steps = {t.number: [m.step for m in store.trial_metrics(t.id)] for t in trials}
        states = {t.number: (t.state, t.exit_code) for t in trials}
    finally:
        store.close()
    assert sorted(states) == [1, 2, 3, 4]
    # Every trial ended by itself (8 epochs) or was stopped by the median rule through the
    # backend (the example trial has no SIGTERM handler: it ends by the signal, or by itself
    # when its last epoch beat the signal): no failures.
    for number, (state, code) in states.items():
        if state == "COMPLETED":
            assert code == 0 and steps[number] == list(range(8)), (number, code, steps)
        else:
            assert state == "STOPPED" and code in (0, -15), (number, state, code)
            assert steps[number] == list(range(len(steps[number]))), steps
            assert len(steps[number]) >= 3, steps  # the rule's min_iterations
    # The median rule stops trials that lag (with seed 7, trials 3 and 4), through the
    # backend's scancel / qdel / task kill.
    assert any(state == "STOPPED" for state, _ in states.values()), states
    assert best["Trial-ID"] in states and states[best["Trial-ID"]][0] == "COMPLETED"
    assert best["Objective"] == pytest.approx(min(best_losses(out)))


def best_losses(out: Path) -> list[float]:
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        return [
            store.trial_metrics(t.id)[-1].values["objective"]
            for t in store.list_trials(experiment.id)
            if t.state == "COMPLETED"
        ]
    finally:
        store.close()


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private store, data folder and user config folder, for this process and the CLI's."""
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    return workdir


def cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args], capture_output=True, text=True, timeout=180
    )
    if result.returncode != 0:
        raise AssertionError(f"ridgeline {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def create(config: dict[str, Any], folder: Path) -> int:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return int(json.loads(cli("experiment", "create", str(path), str(folder), "--json"))["id"])


def outcome(experiment_id: int) -> tuple[str, list[Any]]:
    cli("experiment", "wait", str(experiment_id), "--timeout", "150")
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        state = store.get_experiment(experiment_id).state
        trials = store.list_trials(experiment_id)
    finally:
        store.close()
    return state, trials


def test_the_core_api_stage_3_search_runs_to_the_end(
    backend: tuple[str, dict[str, Any]], user_env: Path
) -> None:
    """adaptive_asha (<= 0.37, max_length) pauses trials at its rungs (the job checkpoints
    and exits) and promotes them (a new job starts from latest_checkpoint)."""
    name, section = backend
    folder = user_env / "stage3"
    folder.mkdir()
    shutil.copy(EXAMPLES / "core_api" / "3_hpsearch.py", folder)
    config = yaml.safe_load((EXAMPLES / "core_api" / "3_hpsearch.yaml").read_text())
    config["entrypoint"] = f"{sys.executable} 3_hpsearch.py"
    config["searcher"].update(
        max_trials=4,
        max_length=40,
        max_concurrent_trials=1,
        mode="aggressive",
        divisor=2,
        max_rungs=2,
    )
    config["resources"] = {"slots_per_trial": 0}  # the test node has no GPUs
    config["reproducibility"] = {"experiment_seed": 1}
    config[name] = section
    state, trials = outcome(create(config, folder))
    assert state == "COMPLETED"
    assert len(trials) == 4 and {(t.state, t.exit_code) for t in trials} == {("COMPLETED", 0)}
    # One trial at a time, with seeded hyperparameters (increment_by 3, 2, 5, 2), so the
    # rungs go the same way on every backend. Trial 1 pauses at the first rung (20): its job
    # checkpoints and exits; when trial 2 reaches the rung, trial 1 is promoted and runs again
    # as a second job, which resumes from latest_checkpoint at batch 20 and trains to 40.
    # Trial 3 is the best at the rung when it arrives: promoted at once, in the same job.
    # Trials 2 and 4 stay paused at 20.
    assert [t.params["increment_by"] for t in trials] == [3, 2, 5, 2]
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        steps = {t.number: [m.step for m in store.trial_metrics(t.id, "training")] for t in trials}
    finally:
        store.close()
    assert steps == {1: [10, 20, 30, 40], 2: [10, 20], 3: [10, 20, 30, 40], 4: [10, 20]}
    for t in trials:
        logs = cli("trial", "logs", str(t.id), "--all")
        assert t.restarts == 0  # pauses and promotions are no restarts
        if t.number == 1:
            assert "==> attempt 2" in logs and "==> attempt 3" not in logs, logs
            assert "resuming from checkpoint" in logs and "at batch 20" in logs, logs
        else:
            assert "==> attempt 2" not in logs and "resuming" not in logs, logs


# Trains, checkpoints every 5 steps and resumes like the stage-3 example; notes each job's
# start (its checkpoint, its job id or pid) and, in its first job, waits after its first
# checkpoint for the test to cancel it from outside.
RESUMING = """
import json, os, pathlib, time
import ridgeline as det

info = det.get_cluster_info()
notes = pathlib.Path(os.environ["NOTES"])
job = os.environ.get("SLURM_JOB_ID") or os.environ.get("JOB_ID") or str(os.getpid())

def note(start, checkpoint):
    (notes / f"{job}.partial").write_text(
        json.dumps({"start": start, "checkpoint": checkpoint, "job": job})
    )
    os.replace(notes / f"{job}.partial", notes / f"{job}.json")

with det.core.init() as ctx:
    step = 0
    if info.latest_checkpoint is not None:
        with ctx.checkpoint.restore_path(info.latest_checkpoint) as path:
            step = int((path / "step").read_text())
    start = step
    for op in ctx.searcher.operations():
        while step < op.length:
            step += 1
            ctx.train.report_training_metrics(steps_completed=step, metrics={"x": step})
            if step % 5 == 0:
                with ctx.checkpoint.store_path({"steps_completed": step}) as (path, uuid):
                    (path / "step").write_text(str(step))
                op.report_progress(step)
                if info.latest_checkpoint is None:
                    note(start, None)
                    time.sleep(120)  # cancelled from outside here
        ctx.train.report_validation_metrics(steps_completed=step, metrics={"x": step})
        op.report_completed(step)
    note(start, info.latest_checkpoint)
"""


def test_a_trial_cancelled_from_outside_restarts_from_its_checkpoint(
    backend: tuple[str, dict[str, Any]], user_env: Path
) -> None:
    name, section = backend
    folder = user_env / "resuming"
    notes = user_env / "notes"
    folder.mkdir()
    notes.mkdir()
    (folder / "trial.py").write_text(textwrap.dedent(RESUMING))
    config = {
        "name": f"cancelled-on-{name}",
        "entrypoint": f"{sys.executable} trial.py",
        "max_restarts": 1,
        "hyperparameters": {"lr": {"type": "double", "minval": 0.1, "maxval": 1.0}},
        "searcher": {
            "name": "single",
            "metric": "x",
            "smaller_is_better": False,
            "max_length": {"batches": 12},
        },
        "resources": {"slots_per_trial": 0},
        "environment": {"environment_variables": [f"NOTES={notes}"]},
        name: section,
    }
    experiment_id = create(config, folder)

    wait_for(lambda: any(notes.glob("*.json")), "the trial's first checkpoint", timeout=60)
    first = json.loads(next(notes.glob("*.json")).read_text())
    if name == "slurm":
        subprocess.run(["scancel", first["job"]], check=True, timeout=30)
    elif name == "sge":
        subprocess.run(["qdel", first["job"]], check=True, capture_output=True, timeout=30)
    else:
        os.kill(int(first["job"]), signal.SIGKILL)

    state, trials = outcome(experiment_id)
    assert state == "COMPLETED"
    (trial,) = trials
    assert (trial.state, trial.exit_code, trial.restarts) == ("COMPLETED", 0, 1)
    # The cancelled job was a failure, not a success, and the trial was restarted for it.
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        output_dir = Path(store.get_experiment(experiment_id).config["output_dir"])
        steps = [m.step for m in store.trial_metrics(trial.id, "training")]
        (checkpoint_at_5,) = [c for c in store.list_checkpoints(trial.id) if c.steps_completed == 5]
    finally:
        store.close()
    log = (output_dir / "log.txt").read_text()
    signal_number = int(signal.SIGKILL if name == "dask" else signal.SIGTERM)
    assert f"Trial 1 failed (killed by signal {signal_number})" in log, log
    assert "Restarting trial 1 (restart 1 of 1) from its latest checkpoint" in log, log
    # Two jobs: the second started from the first's checkpoint at step 5 and trained on.
    runs = {r["job"]: r for r in (json.loads(p.read_text()) for p in notes.glob("*.json"))}
    assert len(runs) == 2, runs
    second = next(r for job, r in runs.items() if job != first["job"])
    assert (second["start"], second["checkpoint"]) == (5, checkpoint_at_5.uuid)
    assert steps == list(range(1, 13))


# Trials 1 and 2 do well and end; trial 3 does badly until the stopping rule stops it, and
# notes the SIGTERM that reaches it (through scancel, qdel or the dask task's cancel).
STOPPABLE = """
import os, signal, sys, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
def on_term(signum, frame):
    open(os.path.join(out, f"terminated_{trial.id}"), "w").close()
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
for i in range(1, 100):
    client.send_metrics(trial=trial, iteration=i, objective=10.0 if trial.id == 3 else 1.0 / i)
    time.sleep(0.2 if trial.id == 3 else 0.02)
    if trial.id != 3 and i == 3:
        break
"""


def test_a_trial_the_search_stops_gets_sigterm_through_the_backend(
    backend: tuple[str, dict[str, Any]], workdir: Path
) -> None:
    name, section = backend
    (workdir / "trial.py").write_text(textwrap.dedent(STOPPABLE))
    out = workdir / "out"
    sherpa.optimize(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=3),
        stopping_rule=sherpa.algorithms.MedianStoppingRule(min_iterations=2, min_trials=2),
        lower_is_better=True,
        scheduler=scheduler_for(name, section),
        filename=str(workdir / "trial.py"),
        output_dir=str(out),
        max_concurrent=1,
        verbose=0,
    )
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        states = {t.number: (t.state, t.exit_code) for t in store.list_trials(experiment.id)}
    finally:
        store.close()
    assert states == {1: ("COMPLETED", 0), 2: ("COMPLETED", 0), 3: ("STOPPED", 0)}
    assert (out / "terminated_3").exists()  # its SIGTERM handler ran, inside the job or task
