"""The Core-API door on a real single-node SLURM: the experiment YAML's ``slurm:`` section,
the user config file's ``cluster:`` defaults and ``experiment create --scheduler /
--cluster-option`` send the trials to ``sbatch``; each job reads its own SLURM record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import yaml

from ridgeline.store import open_store

pytestmark = pytest.mark.usefixtures("slurm")

# Each trial notes its SLURM job id and what `scontrol show job` says about its own job.
TRIAL = """
import os, pathlib, subprocess
import ridgeline as det

job = os.environ.get("SLURM_JOB_ID", "")
shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
with det.core.init() as ctx:
    number = det.get_cluster_info().trial.number
    pathlib.Path(os.environ["SEEN_DIR"], f"trial_{number}.txt").write_text(job + "\\n" + shown)
    for op in ctx.searcher.operations():
        ctx.train.report_validation_metrics(steps_completed=op.length, metrics={"x": number})
        op.report_completed(number)
"""


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private store, data folder and user config folder, for this process and the CLI's."""
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    (workdir / "seen").mkdir()
    return workdir


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args], capture_output=True, text=True, timeout=180
    )
    if check and result.returncode != 0:
        raise AssertionError(f"ridgeline {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
    return result


def write_experiment(folder: Path, trials: int, **extra: object) -> Path:
    (folder / "trial.py").write_text(textwrap.dedent(TRIAL))
    config = {
        "name": "on-slurm",
        "entrypoint": f"{sys.executable} trial.py",
        "hyperparameters": {"lr": {"type": "double", "minval": 0.1, "maxval": 1.0}},
        "searcher": {
            "name": "random",
            "metric": "x",
            "max_trials": trials,
            "max_length": {"batches": 1},
            "max_concurrent_trials": 2,
        },
        "resources": {"slots_per_trial": 0},  # the test node has no GPUs
        "environment": {"environment_variables": [f"SEEN_DIR={folder / 'seen'}"]},
        **extra,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def finished(experiment_id: int) -> tuple[str, list[tuple[str, int | None]]]:
    cli("experiment", "wait", str(experiment_id), "--timeout", "150")
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        state = store.get_experiment(experiment_id).state
        trials = [(t.state, t.exit_code) for t in store.list_trials(experiment_id)]
    finally:
        store.close()
    return state, trials


def seen_jobs(folder: Path) -> list[tuple[str, str]]:
    """Per trial: its SLURM job id and its job's ``scontrol show job`` record."""
    notes = sorted((folder / "seen").glob("trial_*.txt"))
    return [tuple(note.read_text().split("\n", 1)) for note in notes]  # type: ignore[misc]


def test_the_yaml_slurm_section_runs_every_trial_as_a_slurm_job(user_env: Path) -> None:
    tag = f"from-yaml-{uuid.uuid4().hex[:8]}"
    config = write_experiment(user_env, 2, slurm={"sbatch_args": [f"--comment={tag}"]})

    preview = cli("preview-search", str(config)).stdout
    assert f"Trials run as SLURM jobs (sbatch --comment={tag})" in preview
    assert "chosen by the experiment config" in preview

    created = cli("experiment", "create", str(config), "--json")
    experiment_id = json.loads(created.stdout)["id"]
    # Honest about storage: the test folders are under /tmp, which other nodes do not see.
    assert "under /tmp, which is local to this machine" in created.stderr
    assert finished(experiment_id) == ("COMPLETED", [("COMPLETED", 0), ("COMPLETED", 0)])

    jobs = seen_jobs(user_env)
    assert len(jobs) == 2 and len({job for job, _ in jobs}) == 2
    for job, record in jobs:
        assert job.isdigit(), "the trial ran outside SLURM"
        assert f"JobId={job}" in record
        assert f"Comment={tag}" in record  # sbatch_args reached sbatch
        assert "JobName=trial_" in record

    described = json.loads(cli("experiment", "describe", str(experiment_id), "--json").stdout)
    assert described["runs_on"].startswith(f"SLURM jobs (sbatch --comment={tag})")
    table = cli("experiment", "describe", str(experiment_id)).stdout
    assert f"Trials run as SLURM jobs (sbatch --comment={tag}); chosen by the experiment" in table


def test_user_config_defaults_are_overridden_by_the_command_line(user_env: Path) -> None:
    tag = f"from-cli-{uuid.uuid4().hex[:8]}"
    user_config = user_env / "xdg" / "ridgeline" / "config.yaml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text(
        "cluster:\n  backend: slurm\n  partition: debug\n  sbatch_args: --comment=from-user\n"
    )
    config = write_experiment(user_env, 1)  # no slurm: section; the user config picks SLURM

    preview = cli("preview-search", str(config)).stdout
    assert "SLURM jobs (sbatch --partition=debug --comment=from-user)" in preview
    assert f"chosen by the ridgeline config file {user_config}" in preview

    # Options sbatch refuses are refused at create (sbatch --test-only), not by failing jobs:
    # one GPU per trial (Determined's default slots_per_trial) on this GPU-less node ...
    gpus = write_experiment(user_env, 1, resources={"slots_per_trial": 1})
    refused = cli("experiment", "create", str(gpus), check=False)
    assert refused.returncode == 1 and "sbatch refuses" in refused.stderr
    assert "resources.slots_per_trial is 1, the GPUs each job asks for" in refused.stderr
    assert "--scheduler local runs the trials on this machine" in refused.stderr
    # ... and an option sbatch does not know.
    config = write_experiment(user_env, 1)
    refused = cli(
        "experiment", "create", str(config), "--cluster-option", "sbatch_args=--nope", check=False
    )
    assert refused.returncode == 1 and "sbatch refuses" in refused.stderr

    created = cli(
        "experiment",
        "create",
        str(config),
        "--json",
        "--cluster-option",
        f"sbatch_args=--comment={tag}",
    )
    experiment_id = json.loads(created.stdout)["id"]
    assert finished(experiment_id) == ("COMPLETED", [("COMPLETED", 0)])
    ((job, record),) = seen_jobs(user_env)
    assert job.isdigit() and f"JobId={job}" in record
    assert f"Comment={tag}" in record  # the command line's sbatch_args replaced the user's
    assert "Partition=debug" in record  # the user config's partition still applies


def test_test_mode_runs_its_trial_on_the_chosen_backend(user_env: Path) -> None:
    config = write_experiment(user_env, 3)
    tested = cli(
        "experiment",
        "create",
        str(config),
        "--test",
        "--json",
        "--scheduler",
        "slurm",
        "--cluster-option",
        "sbatch_args=--comment=test-mode",
    )
    assert json.loads(tested.stdout)["passed"] is True
    ((job, record),) = seen_jobs(user_env)
    assert job.isdigit() and "Comment=test-mode" in record


# Notes its SLURM job id, then sleeps until its job is cancelled.
SLEEPER = """
import os, pathlib, time
number = os.environ["RIDGELINE_TRIAL_ID"]
pathlib.Path(os.environ["SEEN_DIR"], f"job_{number}").write_text(os.environ["SLURM_JOB_ID"])
time.sleep(600)
"""


@pytest.mark.parametrize("worker_jobs", [False, True], ids=["job-per-trial", "worker-jobs"])
def test_kill_with_a_frozen_coordinator_cancels_the_trials_slurm_jobs(
    user_env: Path, worker_jobs: bool
) -> None:
    config = write_experiment(user_env, 2, slurm={"worker_jobs": worker_jobs})
    (user_env / "trial.py").write_text(textwrap.dedent(SLEEPER))
    created = cli("e", "create", str(config), str(user_env), "--json")
    experiment_id = json.loads(created.stdout)["id"]
    seen = user_env / "seen"
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    coordinator = None
    try:
        deadline = time.monotonic() + 60
        while len(list(seen.glob("job_*"))) < 2:
            assert time.monotonic() < deadline, "the two trials did not start"
            time.sleep(0.1)
        jobs = {int(p.name[4:]): p.read_text() for p in seen.glob("job_*")}
        coordinator = store.get_experiment(experiment_id).coordinator["pid"]
        os.kill(coordinator, signal.SIGSTOP)

        result = cli("e", "kill", str(experiment_id), "--timeout", "1")
        assert f"killed its unresponsive coordinator (pid {coordinator})" in result.stdout
        for number, job in jobs.items():
            assert f"cancelled trial {number}'s SLURM job {job}" in result.stdout, result.stdout
        listing = ""
        while time.monotonic() < deadline + 30:
            listing = subprocess.run(
                ["squeue", "--noheader", "--format=%i"], capture_output=True, text=True
            ).stdout
            if not set(listing.split()) & set(jobs.values()):
                break
            time.sleep(0.1)
        assert not set(listing.split()) & set(jobs.values()), listing
        assert store.get_experiment(experiment_id).state == "CANCELED"
        assert [t.state for t in store.list_trials(experiment_id)] == ["CANCELED", "CANCELED"]
    finally:
        if coordinator is not None:
            try:
                os.kill(coordinator, signal.SIGKILL)
            except ProcessLookupError:
                pass
        store.close()
