"""SLURMScheduler on a real single-node SLURM: trials are sbatch jobs, their ends are told
apart (completed, failed with its code, cancelled, killed), and secrets stay off command
lines and out of files others can read."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import ridgeline as sherpa
from ridgeline.errors import SchedulerError
from ridgeline.schedulers import SLURMScheduler
from ridgeline.schedulers.base import Job
from ridgeline.store import open_store

pytestmark = pytest.mark.usefixtures("slurm")

# Trials 1 and 2 succeed, 3 exits with code 3, 4 waits to be cancelled with scancel. Each
# notes what it saw: its environment-script variable and its SLURM job id.
TRIAL = """
import json, os, sys, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
seen = {"greeting": os.environ.get("GREETING"), "job": os.environ.get("SLURM_JOB_ID")}
with open(os.path.join(out, f"seen_{trial.id}.json"), "w") as f:
    json.dump(seen, f)
if trial.id == 3:
    sys.exit(3)
if trial.id == 4:
    fd = os.open(os.path.join(out, "hang.json"), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({**seen, "token": os.environ["RIDGELINE_TOKEN"]}, f)
    time.sleep(120)
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def scontrol(job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout


def test_optimize_runs_trials_as_slurm_jobs_and_tells_their_ends_apart(workdir: Path) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    (workdir / "env.sh").write_text("export GREETING=from-the-environment-script\n")
    out = workdir / "out"
    tag = f"ridgeline-test-{uuid.uuid4().hex[:8]}"
    seen_while_running: dict[str, str] = {}
    spool_files: dict[str, int] = {}

    def cancel_trial_4() -> None:
        wait_for(lambda: (out / "hang.json").exists(), "trial 4 to start")
        time.sleep(0.1)  # the file is written whole by then
        hang = json.loads((out / "hang.json").read_text())
        seen_while_running["token"] = hang["token"]
        seen_while_running["ps"] = subprocess.run(
            ["ps", "-eo", "args"], capture_output=True, text=True, check=True
        ).stdout
        seen_while_running["scontrol"] = scontrol(hang["job"])
        for spool in (Path("/var/spool/slurmctld"), Path("/var/spool/slurmd")):
            for path in spool.rglob("*"):  # SLURM's copy of the job's environment
                if path.is_file() and hang["token"].encode() in path.read_bytes():
                    spool_files[str(path)] = stat.S_IMODE(path.stat().st_mode)
        subprocess.run(["scancel", hang["job"]], check=True)

    canceller = threading.Thread(target=cancel_trial_4, daemon=True)
    canceller.start()
    with pytest.warns(RuntimeWarning, match="Trial [34] failed"):
        best = sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=4),
            lower_is_better=True,
            scheduler=SLURMScheduler(f"--comment={tag}", str(workdir / "env.sh")),
            filename=str(workdir / "trial.py"),
            output_dir=str(out),
            max_concurrent=2,
            verbose=0,
            seed=1,
        )
    canceller.join(timeout=30)

    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        states = {t.number: (t.state, t.exit_code) for t in store.list_trials(experiment.id)}
    finally:
        store.close()
    assert states == {
        1: ("COMPLETED", 0),
        2: ("COMPLETED", 0),
        3: ("FAILED", 3),
        4: ("FAILED", -15),  # cancelled with scancel: never a success
    }
    assert best["Trial-ID"] in (1, 2)

    # Each trial ran as its own SLURM job, after the environment script was sourced.
    seen = [json.loads((out / f"seen_{n}.json").read_text()) for n in range(1, 5)]
    assert {s["greeting"] for s in seen} == {"from-the-environment-script"}
    assert len({s["job"] for s in seen}) == 4 and all(s["job"].isdigit() for s in seen)
    # submit_options reached sbatch; the job is named after the trial.
    assert f"Comment={tag}" in seen_while_running["scontrol"]
    assert "JobName=trial_4" in seen_while_running["scontrol"]

    # The token of a running trial is on no command line and in no file others can read.
    token = seen_while_running["token"]
    assert len(token) >= 16
    assert token not in seen_while_running["ps"]
    assert token not in seen_while_running["scontrol"]
    jobs = out / "jobs"
    assert stat.S_IMODE(jobs.stat().st_mode) == 0o700
    assert stat.S_IMODE((jobs / "trial_4.sbatch").stat().st_mode) == 0o700
    for path in out.rglob("*"):
        if path.is_file() and token.encode() in path.read_bytes():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert spool_files, "SLURM keeps the job's environment in its spool"
    assert all(mode & 0o077 == 0 for mode in spool_files.values()), spool_files


def test_a_job_is_reattached_by_a_new_scheduler(workdir: Path) -> None:
    first = SLURMScheduler(output_dir=str(workdir))
    command = [sys.executable, "-c", "import time, sys; time.sleep(1.5); sys.exit(4)"]

    async def submit_and_wait_for_id() -> Job:
        job = first.submit(command, dict(os.environ), "again")
        await asyncio.wrap_future(job.handle.submitted)
        return job

    job = asyncio.run(submit_and_wait_for_id())
    first.close()  # the coordinator is gone; the job runs on

    second = SLURMScheduler(output_dir=str(workdir))
    live = second.reattach(job.info, "again")
    assert live is not None
    assert asyncio.run(second.wait(live)) == 4
    ended = second.reattach(job.info, "again")  # after its end: known from the record
    assert ended is not None and asyncio.run(second.wait(ended)) == 4
    gone = dict(job.info, exit_file=str(workdir / "none.exit"))
    Path(job.info["job_id_file"]).write_text("99999999\n")
    assert second.reattach(gone, "again") is None  # SLURM never heard of it, no record
    second.close()


def test_bad_options_are_refused_before_anything_runs(workdir: Path) -> None:
    with pytest.raises(SchedulerError, match="sbatch refuses submit_options"):
        SLURMScheduler("--partition=no-such-partition").check()
    with pytest.raises(SchedulerError, match="environment 'missing.sh': no such file"):
        SLURMScheduler("", "missing.sh").check()
    with pytest.raises(SchedulerError, match="cannot be split"):
        SLURMScheduler("--comment='unclosed")
    with pytest.raises(SchedulerError, match="gpus_per_trial must be >= 0"):
        SLURMScheduler(gpus_per_trial=-1)


def test_gpus_are_asked_for_only_when_wanted(workdir: Path) -> None:
    plain = SLURMScheduler("-p debug").sbatch_argv("trial_1", "s.sbatch", "o.out", "/w")
    assert not any(a.startswith("--gres") for a in plain)
    argv = SLURMScheduler("-p debug", gpus_per_trial=2).sbatch_argv(
        "trial_1", "s.sbatch", "o.out", "/w"
    )
    assert "--gres=gpu:2" in argv
    assert argv[-3:] == ["-p", "debug", "s.sbatch"]  # user options after ours: they win


def test_slurm_scheduler_answers_sherpas_calls(workdir: Path) -> None:
    from ridgeline.schedulers import JobStatus

    scheduler = SLURMScheduler(output_dir=str(workdir))
    code = "import os, sys; print(os.environ['GREETING']); sys.exit(int(sys.argv[1]))"
    ok = scheduler.submit_job([sys.executable, "-c", code, "0"], {"GREETING": "hi"}, "ok")
    bad = scheduler.submit_job([sys.executable, "-c", code, "2"], {"GREETING": "hi"}, "bad")
    slow = scheduler.submit_job([sys.executable, "-c", "import time; time.sleep(60)"], {}, "slow")

    def until_done(job_id: str) -> int:
        statuses: list[int] = []
        wait_for(
            lambda: (
                statuses.append(scheduler.get_status(job_id))
                or statuses[-1] not in (JobStatus.queued, JobStatus.running)
            ),
            f"job {job_id} to end",
        )
        return statuses[-1]

    assert until_done(ok) == JobStatus.finished
    assert until_done(bad) == JobStatus.failed
    wait_for(lambda: scheduler.get_status(slow) == JobStatus.running, "slow to run")
    scheduler.kill_job(slow)
    assert until_done(slow) == JobStatus.killed
    assert (workdir / "jobs" / "ok.out").read_text().strip() == "hi"
    with pytest.raises(SchedulerError, match="no job"):
        scheduler.get_status("123456789")
    scheduler.close()
    again = scheduler.submit_job([sys.executable, "-c", code, "0"], {"GREETING": "hi"}, "again")
    assert until_done(again) == JobStatus.finished  # usable again after close()
    scheduler.close()


RUNNER = """
import sys
import ridgeline as sherpa
sherpa.optimize(
    parameters=[sherpa.Continuous("x", [0.0, 1.0])],
    algorithm=sherpa.algorithms.RandomSearch(max_num_trials=2),
    lower_is_better=True,
    scheduler=sherpa.schedulers.SLURMScheduler("", "", worker_jobs="--workers" in sys.argv),
    filename=sys.argv[1],
    output_dir=sys.argv[2],
    max_concurrent=2,
    verbose=0,
    resume="--resume" in sys.argv,
)
"""

# Sends a metric, then waits for the test's word; trial 1 then fails with code 3.
WAITING = """
import os, sys, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
open(os.path.join(out, f"sent_{trial.id}_{os.environ['SLURM_JOB_ID']}"), "w").close()
while not os.path.exists(os.path.join(out, "release")):
    time.sleep(0.05)
sys.exit(3 if trial.id == 1 else 0)
"""


@pytest.mark.parametrize("worker_jobs", [False, True], ids=["job-per-trial", "worker-jobs"])
def test_a_resumed_search_reattaches_to_its_running_slurm_jobs(
    workdir: Path, worker_jobs: bool
) -> None:
    """Worker jobs too: a worker whose coordinator died reports its trial's end to the one
    that re-attached (the address file says where), then ends."""
    (workdir / "runner.py").write_text(textwrap.dedent(RUNNER))
    (workdir / "trial.py").write_text(textwrap.dedent(WAITING))
    out = workdir / "out"
    argv = [sys.executable, str(workdir / "runner.py"), str(workdir / "trial.py"), str(out)]
    argv += ["--workers"] if worker_jobs else []
    first = subprocess.Popen(argv)
    try:
        wait_for(lambda: len(list(out.glob("sent_*"))) == 2, "both trials to send a metric")
    finally:
        first.kill()  # the coordinator dies; its SLURM jobs run on
        first.wait()
    second = subprocess.Popen([*argv, "--resume"])
    try:
        wait_for(lambda: "Re-attached trial 2" in (out / "log.txt").read_text(), "the re-attach")
        (out / "release").write_text("")
        assert second.wait(timeout=60) == 0
    finally:
        if second.poll() is None:
            second.kill()
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        trials = {t.number: t for t in store.list_trials(experiment.id)}
    finally:
        store.close()
    assert (trials[1].state, trials[1].exit_code, trials[1].restarts) == ("FAILED", 3, 0)
    assert (trials[2].state, trials[2].exit_code) == ("COMPLETED", 0)
    assert len(list(out.glob("sent_*"))) == 2  # the same two jobs: nothing ran again
    if worker_jobs:  # the old coordinator's workers end: the new one does not know them

        def workers_left() -> bool:
            listing = subprocess.run(
                ["squeue", "--noheader", "--format=%Z"], capture_output=True, text=True
            ).stdout
            return any(Path(line).is_relative_to(workdir) for line in listing.split())

        wait_for(lambda: not workers_left(), "the workers to end", timeout=20)


def test_a_job_that_ends_before_its_trial_runs_is_no_success(workdir: Path) -> None:
    """The environment script exits: no exit record, so SLURM's own end state decides."""
    (workdir / "exit5.sh").write_text("exit 5\n")
    (workdir / "exit0.sh").write_text("exit 0\n")
    failing = SLURMScheduler("", str(workdir / "exit5.sh"), str(workdir))
    silent = SLURMScheduler("", str(workdir / "exit0.sh"), str(workdir))
    command = [sys.executable, "-c", "print('never runs')"]

    async def scenario() -> list[int | None]:
        jobs = [failing.submit(command, dict(os.environ), "exit5")]
        jobs.append(silent.submit(command, dict(os.environ), "exit0"))
        return [await failing.wait(jobs[0]), await silent.wait(jobs[1])]

    assert asyncio.run(scenario()) == [5, None]  # FAILED ExitCode=5:0; COMPLETED, unknown
    assert not (workdir / "jobs" / "exit5.exit").exists()
    failing.close()
    silent.close()


class BlindSLURMScheduler(SLURMScheduler):
    """Real SLURM jobs, but for 30 s its squeue poll never sees them end: only the jobs' own
    word (confirmed by the exit file) can end a wait that soon."""

    BLIND_S = 30.0

    def __init__(self, environment: str = "") -> None:
        super().__init__(environment=environment)
        self.blind_until = time.monotonic() + self.BLIND_S

    async def _states(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        if time.monotonic() > self.blind_until:  # so a broken report fails, not hangs
            return await super()._states(job_ids)
        return dict.fromkeys(job_ids, "RUNNING")


# Trial 1 claims its exit while it still runs (and tries trial 2's route); the coordinator must
# wait for the real exit. Trial 2 exits with code 5.
CLAIMING = """
import os, sys, time
import ridgeline as sherpa
from ridgeline.errors import TrialError
from ridgeline.trial.client import TrialClient
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
if trial.id == 1:
    TrialClient().report_exit(0)  # a lie: the process runs on
    try:
        TrialClient(trial_id=2).report_exit(0)
        refused = "no"
    except TrialError as exc:
        refused = str(exc)
    open(os.path.join(out, "refused"), "w").write(refused)
    time.sleep(1.5)
    client.send_metrics(trial=trial, iteration=1, objective=0.5)
    open(os.path.join(out, "finished_1"), "w").close()
else:
    time.sleep(0.5)
    sys.exit(5)
"""


@pytest.mark.parametrize("sender", ["bash", "python"])
def test_a_job_says_when_its_trial_ended_and_only_its_exit_file_confirms_it(
    workdir: Path, sender: str
) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(CLAIMING))
    environment = ""
    if sender == "python":  # no bash on PATH: the job script falls back to Python's client
        (workdir / "bin").mkdir()
        (workdir / "bin" / "bash").write_text("#!/bin/sh\nexit 1\n")
        (workdir / "bin" / "bash").chmod(0o755)
        (workdir / "env.sh").write_text(f"export PATH={workdir / 'bin'}:$PATH\n")
        environment = str(workdir / "env.sh")
    out = workdir / "out"
    started = time.monotonic()
    with pytest.warns(RuntimeWarning, match="Trial 2 failed"):
        sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=2),
            lower_is_better=True,
            scheduler=BlindSLURMScheduler(environment=environment),
            filename=str(workdir / "trial.py"),
            output_dir=str(out),
            max_concurrent=2,
            verbose=0,
        )
    assert time.monotonic() - started < BlindSLURMScheduler.BLIND_S
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        states = {t.number: (t.state, t.exit_code) for t in store.list_trials(experiment.id)}
    finally:
        store.close()
    # Both ends came from the jobs' calls (the poll never saw them); trial 1's early claim
    # did not end its wait before its process did.
    assert states == {1: ("COMPLETED", 0), 2: ("FAILED", 5)}
    assert (out / "finished_1").exists()
    # Trial 1's token does not open trial 2's route.
    assert "HTTP 403" in (out / "refused").read_text()
