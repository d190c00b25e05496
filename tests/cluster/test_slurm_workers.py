"""SLURM worker jobs (``SLURMScheduler(worker_jobs=True)``) on a real single-node SLURM: jobs
that run trial after trial, tell each trial's end apart as a job of its own would, take a
cancelled worker's trial as failed, end when idle or when the search ends, and let no one but
their own pool's workers claim a trial."""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import ridgeline as sherpa
from ridgeline.schedulers import SLURMScheduler
from ridgeline.store import open_store

from .test_slurm import wait_for

pytestmark = pytest.mark.usefixtures("slurm")

# Trial 3 exits with code 3; trial 5 waits to be cancelled (its worker's job, with scancel);
# the rest succeed. Each notes its SLURM job id and its environment-script variable.
TRIAL = """
import json, os, sys, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
seen = {"greeting": os.environ.get("GREETING"), "job": os.environ.get("SLURM_JOB_ID"),
        "worker_token": os.environ.get("RIDGELINE_WORKER_TOKEN")}
with open(os.path.join(out, f"seen_{trial.id}.json"), "w") as f:
    json.dump(seen, f)
if trial.id == 3:
    sys.exit(3)
if trial.id == 5:
    fd = os.open(os.path.join(out, "hang.json"), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({**seen, "token": os.environ["RIDGELINE_TOKEN"]}, f)
    time.sleep(120)
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
"""


def claim(url: str, token: str, worker: str = "worker_x_1") -> int:
    """The HTTP status of a claim for a trial with ``token``."""
    request = urllib.request.Request(
        f"{url}/api/v1/workers/claim?wait=0",
        data=json.dumps({"worker": worker}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def jobs_in(folder: Path) -> list[str]:
    listing = subprocess.run(
        ["squeue", "--noheader", "--format=%i %Z"], capture_output=True, text=True, timeout=30
    ).stdout
    return [
        job_id
        for job_id, _, where in (line.partition(" ") for line in listing.splitlines())
        if Path(where).is_relative_to(folder)
    ]


def test_worker_jobs_run_trial_after_trial_and_tell_each_end_apart(workdir: Path) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    (workdir / "env.sh").write_text("export GREETING=from-the-environment-script\n")
    out = workdir / "out"
    seen_while_running: dict[str, object] = {}

    def attack_then_cancel_trial_5() -> None:
        wait_for(lambda: (out / "hang.json").exists(), "trial 5 to start")
        time.sleep(0.1)  # written whole by then
        hang = json.loads((out / "hang.json").read_text())
        url = json.loads((out / "coordinator.json").read_text())["url"]
        seen_while_running["wrong token"] = claim(url, "x" * 43)
        seen_while_running["a trial's token"] = claim(url, hang["token"])
        seen_while_running["ps"] = subprocess.run(
            ["ps", "-eo", "args"], capture_output=True, text=True, check=True
        ).stdout
        # The other worker runs trial 6, then finds nothing to do for worker_idle_seconds.
        wait_for(lambda: (out / "seen_6.json").exists(), "trial 6 to start")
        time.sleep(2.5)
        seen_while_running["jobs"] = jobs_in(workdir)
        subprocess.run(["scancel", hang["job"]], check=True)

    attacker = threading.Thread(target=attack_then_cancel_trial_5, daemon=True)
    attacker.start()
    with pytest.warns(RuntimeWarning, match="Trial [35] failed"):
        best = sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=6),
            lower_is_better=True,
            scheduler=SLURMScheduler(
                "--comment=workers",
                str(workdir / "env.sh"),
                worker_jobs=True,
                worker_idle_seconds=1,
            ),  # fmt: skip
            filename=str(workdir / "trial.py"),
            output_dir=str(out),
            max_concurrent=2,
            verbose=0,
            seed=1,
        )
    attacker.join(timeout=30)

    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        states = {t.number: (t.state, t.exit_code) for t in store.list_trials(experiment.id)}
    finally:
        store.close()
    assert states == {
        1: ("COMPLETED", 0),
        2: ("COMPLETED", 0),
        3: ("FAILED", 3),  # its worker went on to the next trial
        4: ("COMPLETED", 0),
        5: ("FAILED", -15),  # its worker's job was cancelled: never a success
        6: ("COMPLETED", 0),
    }
    assert best["Trial-ID"] in (1, 2, 4, 6)

    # Six trials ran in two worker jobs, after the environment script; the worker's own
    # token is not in a trial's environment.
    seen = [json.loads((out / f"seen_{n}.json").read_text()) for n in range(1, 7)]
    assert {s["greeting"] for s in seen} == {"from-the-environment-script"}
    assert {s["worker_token"] for s in seen} == {None}
    assert len({s["job"] for s in seen}) == 2, seen
    # No one else claims a trial: not without the pool's token, not with a trial's.
    assert seen_while_running["wrong token"] == 401
    assert seen_while_running["a trial's token"] == 401
    # The worker that found nothing to do for worker_idle_seconds had ended by itself.
    assert len(seen_while_running["jobs"]) == 1, seen_while_running["jobs"]  # type: ignore[arg-type]
    outputs = "".join(p.read_text() for p in (out / "jobs").glob("worker_*.out"))
    assert "ends: no trial for 1 s" in outputs, outputs
    for number in range(1, 7):
        assert f"runs trial_{number}\n" in outputs
    # The search's end leaves no worker behind.
    wait_for(lambda: not jobs_in(workdir), "the workers to end", timeout=20)
    # Secrets: the worker scripts carry none, and no token is on a command line.
    for script in (out / "jobs").glob("worker_*.sbatch"):
        assert "TOKEN" not in script.read_text()
        assert script.stat().st_mode & 0o077 == 0
    hang = json.loads((out / "hang.json").read_text())
    assert hang["token"] not in str(seen_while_running["ps"])


def test_a_worker_waiting_in_the_queue_is_cancelled_when_the_search_ends(
    workdir: Path,
) -> None:
    """Two trials, two slots, but the node holds one worker at a time (each asks for all its
    CPUs): the second worker is still queued when the search ends, and is cancelled rather
    than left to start with nothing to do."""
    (workdir / "trial.py").write_text(
        "import ridgeline as sherpa\nc = sherpa.Client()\nt = c.get_trial()\n"
        "c.send_metrics(trial=t, iteration=1, objective=1.0)\n"
    )
    shown = subprocess.run(
        ["scontrol", "show", "node"], capture_output=True, text=True, check=True
    ).stdout
    cpus = int(shown.split("CPUTot=")[1].split()[0])  # the node's CPUs as SLURM counts them
    out = workdir / "out"
    sherpa.optimize(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=2),
        lower_is_better=True,
        scheduler=SLURMScheduler(f"--cpus-per-task={cpus}", worker_jobs=True),
        filename=str(workdir / "trial.py"),
        output_dir=str(out),
        max_concurrent=2,
        verbose=0,
    )
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        states = [t.state for t in store.list_trials(experiment.id)]
    finally:
        store.close()
    assert states == ["COMPLETED", "COMPLETED"]
    wait_for(lambda: not jobs_in(workdir), "no worker left in the queue", timeout=20)
    # Two workers were submitted; the one that never had a trial never started.
    jobs = out / "jobs"
    assert len(list(jobs.glob("worker_*.sbatch"))) == 2
    (started,) = jobs.glob("worker_*.out")
    assert "runs trial_1\n" in started.read_text() and "runs trial_2\n" in started.read_text()


# Trial 1 takes the place of its own exit record (as a full disk would leave it unwritten) and
# fails with code 3; before that it tries the claim route with its worker's token (read from
# the worker's environment, as a hostile process of the same user could) and bad bodies.
UNRECORDED = """
import json, os, pathlib, sys, urllib.error, urllib.request
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = pathlib.Path(os.environ["SHERPA_OUTPUT_DIR"])
(out / f"job_{trial.id}").write_text(os.environ["SLURM_JOB_ID"])
if trial.id == 1:
    stat = pathlib.Path(f"/proc/{os.getppid()}/stat").read_text()  # the exit wrapper's
    worker = stat.rsplit(")", 1)[1].split()[1]  # parent: the worker
    environ = pathlib.Path(f"/proc/{worker}/environ").read_bytes().split(b"\\0")
    token = next(v.split(b"=", 1)[1].decode() for v in environ
                 if v.startswith(b"RIDGELINE_WORKER_TOKEN="))
    answers = {}
    for label, body in [("not json", b"{"), ("a number", b'{"worker": 5}'),
                        ("a stranger", b'{"worker": "worker_nobody_1"}')]:
        request = urllib.request.Request(
            os.environ["RIDGELINE_MASTER"] + "/api/v1/workers/claim?wait=0", data=body,
            headers={"Authorization": f"Bearer {token}"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                answers[label] = [reply.status, json.loads(reply.read())]
        except urllib.error.HTTPError as exc:
            answers[label] = [exc.code, json.loads(exc.read())]
    (out / "answers.json").write_text(json.dumps(answers))
    os.mkdir(out / "jobs" / "trial_1.exit")  # the wrapper cannot write the record
    sys.exit(3)
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
"""


def test_a_trial_whose_exit_status_cannot_be_recorded_ends_its_worker_with_that_status(
    workdir: Path,
) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(UNRECORDED))
    out = workdir / "out"
    with pytest.warns(RuntimeWarning, match="Trial 1 failed"):
        sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=2),
            lower_is_better=True,
            scheduler=SLURMScheduler(worker_jobs=True),
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
    # Its worker ended with the trial's status, which SLURM kept: a failure with its code, not
    # a success; the next trial ran in a new worker.
    assert states == {1: ("FAILED", 3), 2: ("COMPLETED", 0)}
    assert (out / "job_1").read_text() != (out / "job_2").read_text()
    outputs = "".join(p.read_text() for p in (out / "jobs").glob("worker_*.out"))
    assert "trial_1's exit status 3 could not be recorded" in outputs, outputs
    # Malformed claims with a worker's token are refused with a message; a stranger's name
    # is sent away.
    answers = json.loads((out / "answers.json").read_text())
    assert answers["not json"][0] == 400 and answers["a number"][0] == 400, answers
    assert "'worker' must be the worker's name" in answers["a number"][1]["error"]
    assert answers["a stranger"] == [
        200,
        {"exit": "'worker_nobody_1' is not a worker of this coordinator"},
    ]
