"""A batch job whose trial froze still shows as running in squeue or qstat; the heartbeat
tells: the trial is declared lost, its job cancelled (scancel, qdel -f) and the trial FAILED."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import ridgeline as sherpa
from ridgeline.engine.run import process_alive
from ridgeline.schedulers import SGEScheduler, SLURMScheduler
from ridgeline.store import open_store

# Trial 1 reports, notes its job id and pid, then stops itself; trial 2 (its resubmission)
# finishes.
TRIAL = """
import os, pathlib, signal
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
client.send_metrics(trial, 1, trial.parameters["x"])
out = pathlib.Path(os.environ["SHERPA_OUTPUT_DIR"])
if trial.id == 1:
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("JOB_ID")
    (out / "frozen_job").write_text(f"{job} {os.getpid()}")
    os.kill(os.getpid(), signal.SIGSTOP)
client.send_metrics(trial, 2, trial.parameters["x"] / 2)
"""


def frozen_search(workdir: Path, scheduler: object) -> tuple[str, int]:
    """Run the search; the frozen trial's job id and pid."""
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    out = workdir / "out"
    with pytest.warns(RuntimeWarning, match="Trial 1 failed"):
        best = sherpa.optimize(
            parameters=[sherpa.Choice("x", [1.0])],
            algorithm=sherpa.algorithms.GridSearch(),
            lower_is_better=True,
            scheduler=scheduler,
            filename=str(workdir / "trial.py"),
            output_dir=str(out),
            verbose=0,
            resubmit_failed_trials=True,
            heartbeat_seconds=1.5,
        )
    assert best["Trial-ID"] == 2
    store = open_store(out / "ridgeline.db")
    try:
        states = {t.number: t.state for t in store.list_trials(1)}
        lost = [e.data["trial"] for e in store.read_events(1) if e.kind == "trial_lost"]
    finally:
        store.close()
    assert states == {1: "FAILED", 2: "COMPLETED"} and lost == [1]
    assert "Trial 1 sent nothing for" in (out / "log.txt").read_text()
    job, pid = (out / "frozen_job").read_text().split()
    return job, int(pid)


@pytest.mark.usefixtures("slurm")
@pytest.mark.parametrize("worker_jobs", [False, True], ids=["job-per-trial", "worker-jobs"])
def test_a_frozen_slurm_trial_is_declared_lost_and_its_job_cancelled(
    workdir: Path, worker_jobs: bool
) -> None:
    """With worker jobs, the job cancelled is the frozen trial's worker's."""
    tag = f"--comment=ridgeline-test-{uuid.uuid4().hex[:8]}"
    job, pid = frozen_search(workdir, SLURMScheduler(tag, "", worker_jobs=worker_jobs))
    shown = subprocess.run(
        ["scontrol", "show", "job", job], capture_output=True, text=True, check=True
    ).stdout
    assert "JobState=CANCELLED" in shown  # scancel'ed, not left RUNNING on the node
    assert not process_alive(pid)


@pytest.mark.usefixtures("sge")
def test_a_frozen_grid_engine_trial_is_declared_lost_and_its_job_deleted(workdir: Path) -> None:
    job, pid = frozen_search(workdir, SGEScheduler(f"-ac tag=hb{os.getpid()}", ""))
    listed = subprocess.run(["qstat", "-u", "*"], capture_output=True, text=True).stdout
    assert job not in listed.split()  # qdel -f'ed, not left running on the node
    deadline = time.monotonic() + 15  # the execd ends the job's processes after the qmaster
    while process_alive(pid):
        assert time.monotonic() < deadline, f"job {job}'s frozen trial {pid} still runs"
        time.sleep(0.1)
