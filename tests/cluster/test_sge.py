"""SGEScheduler on a real single-node Grid Engine: trials are qsub jobs, their ends are told
apart (completed, failed with its code, deleted, killed), stops go through qdel, and secrets
stay off command lines, out of ``qstat -j`` and out of files others can read."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import ridgeline as sherpa
from ridgeline.errors import SchedulerError
from ridgeline.schedulers import JobStatus, SGEScheduler
from ridgeline.store import open_store

pytestmark = pytest.mark.usefixtures("sge")

# Trials 1 and 2 succeed, 3 exits with code 3, 4 waits to be deleted with qdel. Each notes
# what it saw: its environment-script variable and its Grid Engine job id.
TRIAL = """
import json, os, sys, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
seen = {"greeting": os.environ.get("GREETING"), "job": os.environ.get("JOB_ID")}
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


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def trial_states(out: Path) -> dict[int, tuple[str, int | None]]:
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        return {t.number: (t.state, t.exit_code) for t in store.list_trials(experiment.id)}
    finally:
        store.close()


def test_optimize_runs_trials_as_grid_engine_jobs_and_tells_their_ends_apart(
    workdir: Path,
) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    (workdir / "env.sh").write_text("export GREETING=from-the-environment-script\n")
    out = workdir / "out"
    tag = f"ridgeline-test-{uuid.uuid4().hex[:8]}"
    seen: dict[str, str] = {}
    spool_hits: list[str] = []

    def delete_trial_4() -> None:
        wait_for(lambda: (out / "hang.json").exists(), "trial 4 to start")
        time.sleep(0.1)  # the file is written whole by then
        hang = json.loads((out / "hang.json").read_text())
        seen["token"], seen["job"] = hang["token"], hang["job"]
        seen["ps"] = run("ps", "-eo", "args")
        seen["qstat"] = run("qstat", "-j", hang["job"])
        seen["env_file_left"] = str((out / "jobs" / "trial_4.env").exists())
        for path in Path("/var/spool/gridengine").rglob("*"):
            if path.is_file() and hang["token"].encode() in path.read_bytes():
                spool_hits.append(str(path))
        run("qdel", hang["job"])  # from outside ridgeline

    deleter = threading.Thread(target=delete_trial_4, daemon=True)
    deleter.start()
    with pytest.warns(RuntimeWarning, match="Trial [34] failed"):
        best = sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=4),
            lower_is_better=True,
            scheduler=SGEScheduler(f"-ac tag={tag}", str(workdir / "env.sh")),
            filename=str(workdir / "trial.py"),
            output_dir=str(out),
            max_concurrent=2,
            verbose=0,
            seed=1,
        )
    deleter.join(timeout=30)

    assert trial_states(out) == {
        1: ("COMPLETED", 0),
        2: ("COMPLETED", 0),
        3: ("FAILED", 3),
        4: ("FAILED", -15),  # deleted with qdel: SIGTERM through -notify, never a success
    }
    assert best["Trial-ID"] in (1, 2)
    # Each trial ran as its own job, after the environment script was sourced.
    noted = [json.loads((out / f"seen_{n}.json").read_text()) for n in range(1, 5)]
    assert {s["greeting"] for s in noted} == {"from-the-environment-script"}
    assert len({s["job"] for s in noted}) == 4 and all(s["job"].isdigit() for s in noted)
    # submit_options reached qsub; the job is named after the trial.
    assert f"tag={tag}" in seen["qstat"]
    assert "job_name:                   trial_4" in seen["qstat"]

    # The token of a running trial is on no command line, not in qstat -j, not in Grid
    # Engine's spool, and in no file others can read (its variables file is gone already).
    token = seen["token"]
    assert len(token) >= 16
    assert token not in seen["ps"]
    assert token not in seen["qstat"]
    assert spool_hits == []
    assert seen["env_file_left"] == "False"
    jobs = out / "jobs"
    assert stat.S_IMODE(jobs.stat().st_mode) == 0o700
    assert stat.S_IMODE((jobs / "trial_4.sge").stat().st_mode) == 0o700
    for path in out.rglob("*"):
        if path.is_file() and token.encode() in path.read_bytes():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_bad_options_are_refused_before_anything_runs(workdir: Path) -> None:
    with pytest.raises(SchedulerError, match="qsub refuses submit_options"):
        SGEScheduler("-q no-such-queue").check()
    with pytest.raises(SchedulerError, match="environment 'missing.sh': no such file"):
        SGEScheduler("", "missing.sh").check()
    with pytest.raises(SchedulerError, match="cannot be split"):
        SGEScheduler("-N 'unclosed")
    argv = SGEScheduler("-N mine -P p", gpus_per_trial=2).qsub_argv("t", "s.sge", "o", "/w")
    assert argv[-7:] == ["-l", "gpu=2", "-N", "mine", "-P", "p", "s.sge"]  # user's last: wins
    assert not any(a.startswith("gpu") for a in SGEScheduler().qsub_argv("t", "s", "o", "/w"))


def test_grid_engine_scheduler_answers_sherpas_calls_and_knows_failed_starts(
    workdir: Path,
) -> None:
    scheduler = SGEScheduler(output_dir=str(workdir))
    code = "import os, sys; print(os.environ['GREETING']); sys.exit(int(sys.argv[1]))"
    ok = scheduler.submit_job([sys.executable, "-c", code, "0"], {"GREETING": "hi"}, "ok")
    bad = scheduler.submit_job([sys.executable, "-c", code, "2"], {"GREETING": "hi"}, "bad")
    slow = scheduler.submit_job([sys.executable, "-c", "import time; time.sleep(60)"], {}, "slow")
    (workdir / "exit5.sh").write_text("exit 5\n")  # the environment script ends the job
    early = SGEScheduler("", str(workdir / "exit5.sh"), str(workdir))
    never = early.submit_job([sys.executable, "-c", "print('never runs')"], {}, "exit5")
    nowhere = SGEScheduler("-wd /no/such/folder", output_dir=str(workdir))  # goes Eqw
    stuck = nowhere.submit_job([sys.executable, "-c", "print('never runs')"], {}, "stuck")

    def until_done(sched: SGEScheduler, job_id: str) -> int:
        statuses: list[int] = []
        wait_for(
            lambda: (
                statuses.append(sched.get_status(job_id))
                or statuses[-1] not in (JobStatus.queued, JobStatus.running)
            ),
            f"job {job_id} to end",
        )
        return statuses[-1]

    assert until_done(scheduler, ok) == JobStatus.finished
    assert until_done(scheduler, bad) == JobStatus.failed
    wait_for(lambda: scheduler.get_status(slow) == JobStatus.running, "slow to run")
    scheduler.kill_job(slow)
    assert until_done(scheduler, slow) == JobStatus.killed
    assert (workdir / "jobs" / "ok.out").read_text().strip() == "hi"
    assert until_done(early, never) == JobStatus.failed  # exit 5, known from qacct
    assert not (workdir / "jobs" / "exit5.exit").exists()
    assert until_done(nowhere, stuck) == JobStatus.failed  # error state: deleted, failed
    assert stuck not in [line.split()[0] for line in run("qstat").splitlines()[2:]]
    assert not (workdir / "jobs" / "stuck.env").exists()  # its variables do not linger
    with pytest.raises(SchedulerError, match="no job"):
        scheduler.get_status("123456789")
    for sched in (scheduler, early, nowhere):
        sched.close()


RUNNER = """
import sys
import ridgeline as sherpa
sherpa.optimize(
    parameters=[sherpa.Continuous("x", [0.0, 1.0])],
    algorithm=sherpa.algorithms.RandomSearch(max_num_trials=2),
    lower_is_better=True,
    scheduler=sherpa.schedulers.SGEScheduler("", ""),
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
open(os.path.join(out, f"sent_{trial.id}_{os.environ['JOB_ID']}"), "w").close()
while not os.path.exists(os.path.join(out, "release")):
    time.sleep(0.05)
sys.exit(3 if trial.id == 1 else 0)
"""


def test_a_resumed_search_reattaches_to_its_running_grid_engine_jobs(workdir: Path) -> None:
    (workdir / "runner.py").write_text(textwrap.dedent(RUNNER))
    (workdir / "trial.py").write_text(textwrap.dedent(WAITING))
    out = workdir / "out"
    argv = [sys.executable, str(workdir / "runner.py"), str(workdir / "trial.py"), str(out)]
    first = subprocess.Popen(argv)
    try:
        wait_for(lambda: len(list(out.glob("sent_*"))) == 2, "both trials to send a metric")
    finally:
        first.kill()  # the coordinator dies; its jobs run on
        first.wait()
    second = subprocess.Popen([*argv, "--resume"])
    try:
        wait_for(lambda: "Re-attached trial 2" in (out / "log.txt").read_text(), "the re-attach")
        (out / "release").write_text("")
        assert second.wait(timeout=60) == 0
    finally:
        if second.poll() is None:
            second.kill()
    states = trial_states(out)
    assert states == {1: ("FAILED", 3), 2: ("COMPLETED", 0)}
    assert len(list(out.glob("sent_*"))) == 2  # the same two jobs: nothing ran again


# Notes its worker's job id, what `qstat -j` shows of that job and the jobs folder's files.
IN_A_WORKER = """
import json, os, subprocess
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
job = os.environ["JOB_ID"]
seen = {
    "job": job,
    "qstat": subprocess.run(["qstat", "-j", job], capture_output=True, text=True).stdout,
    "files": sorted(os.listdir(os.path.join(out, "jobs"))),
    "token": os.environ["RIDGELINE_TOKEN"],
    "worker_token": os.environ.get("RIDGELINE_WORKER_TOKEN"),
}
with open(os.path.join(out, f"seen_{trial.id}.json"), "w") as f:
    json.dump(seen, f)
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
"""


def test_grid_engine_worker_jobs_keep_their_secrets_out_of_qstat(workdir: Path) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(IN_A_WORKER))
    out = workdir / "out"
    sherpa.optimize(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=3),
        lower_is_better=True,
        scheduler=SGEScheduler(worker_jobs=True),
        filename=str(workdir / "trial.py"),
        output_dir=str(out),
        max_concurrent=1,
        verbose=0,
    )
    assert trial_states(out) == {n: ("COMPLETED", 0) for n in (1, 2, 3)}
    seen = [json.loads((out / f"seen_{n}.json").read_text()) for n in (1, 2, 3)]
    assert len({s["job"] for s in seen}) == 1  # one worker ran all three, one after another
    for s in seen:
        assert s["worker_token"] is None
        assert s["token"] not in s["qstat"] and "TOKEN" not in s["qstat"]
        assert not [f for f in s["files"] if f.endswith(".env")]  # read and deleted at start
