"""SHERPA's scheduler interface (``submit_job``, ``get_status``, ``kill_job``): LocalScheduler
answers it, and a scheduler a user wrote to it runs a search."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ridgeline as sherpa
from ridgeline.errors import ConfigError, SchedulerError
from ridgeline.schedulers import JobStatus, _JobStatus

TRIAL = """
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
"""


def _until_done(scheduler: Any, job_id: Any, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = scheduler.get_status(job_id)
        if status not in (JobStatus.running, JobStatus.queued):
            return int(status)
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still running after {timeout}s")


def test_local_scheduler_answers_sherpas_calls(workdir: Path) -> None:
    scheduler = sherpa.schedulers.LocalScheduler(output_dir=str(workdir))
    code = "import os, sys; print(os.environ['GREETING']); sys.exit(int(sys.argv[1]))"
    ok = scheduler.submit_job([sys.executable, "-c", code, "0"], {"GREETING": "hi"}, "ok")
    bad = scheduler.submit_job([sys.executable, "-c", code, "2"], {"GREETING": "hi"}, "bad")
    slow = scheduler.submit_job([sys.executable, "-c", "import time; time.sleep(60)"], {}, "slow")
    assert _until_done(scheduler, ok) == _JobStatus.finished
    assert _until_done(scheduler, bad) == _JobStatus.failed
    assert scheduler.get_status(slow) == _JobStatus.running
    scheduler.kill_job(slow)
    assert _until_done(scheduler, slow) == _JobStatus.killed
    assert (workdir / "jobs" / "ok.out").read_text().strip() == "hi"
    with pytest.raises(SchedulerError, match="no job"):
        scheduler.get_status(123456789)


class ProcessScheduler(sherpa.schedulers.Scheduler):
    """Written to SHERPA's interface only, as a user's own scheduler would be."""

    def __init__(self) -> None:
        self.jobs: dict[int, subprocess.Popen[bytes]] = {}
        self.names: list[str] = []
        self.killed: set[int] = set()

    def submit_job(self, command: list[str], env: dict[str, str], job_name: str) -> int:
        self.names.append(job_name)
        process = subprocess.Popen(command, env={**os.environ, **env})
        self.jobs[process.pid] = process
        return process.pid

    def get_status(self, job_id: int) -> int:
        code = self.jobs[job_id].poll()
        if code is None:
            return _JobStatus.running
        if job_id in self.killed:
            return _JobStatus.killed
        return _JobStatus.finished if code == 0 else _JobStatus.failed

    def kill_job(self, job_id: int) -> None:
        self.killed.add(job_id)
        self.jobs[job_id].terminate()


def test_a_sherpa_style_scheduler_runs_a_search(workdir: Path) -> None:
    (workdir / "trial.py").write_text(TRIAL)
    scheduler = ProcessScheduler()
    best = sherpa.optimize(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=3),
        lower_is_better=True,
        scheduler=scheduler,
        filename="trial.py",
        output_dir=str(workdir / "out"),
        max_concurrent=2,
        verbose=0,
        seed=1,
    )
    rows = pd.read_csv(workdir / "out" / "results.csv")
    completed = rows[rows["Status"] == "COMPLETED"]
    assert len(completed) == 3
    assert best["Objective"] == completed["Objective"].min()
    assert sorted(scheduler.names) == ["trial_1", "trial_2", "trial_3"]


def test_an_object_that_is_no_scheduler_is_refused(workdir: Path) -> None:
    (workdir / "trial.py").write_text(TRIAL)
    with pytest.raises(ConfigError, match="submit_job"):
        sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=1),
            lower_is_better=True,
            scheduler=object(),
            filename="trial.py",
            output_dir=str(workdir / "out"),
            verbose=0,
        )
