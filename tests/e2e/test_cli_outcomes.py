"""What the CLI and the progress line say about how trials ended: restarted trials' logs,
failed and stopped counts, and the exit status of ``experiment wait``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ridgeline.store import open_store

# Trial 1 fails in every attempt with a traceback naming the attempt; trial 2 runs until killed.
TRIAL = """
import os, pathlib, time
number = int(os.environ["RIDGELINE_TRIAL_ID"])
if number == 1:
    k = len(list(pathlib.Path(".").glob("attempt_*"))) + 1
    pathlib.Path(f"attempt_{k}").touch()
    print(f"output of attempt {k}", flush=True)
    raise RuntimeError(f"boom in attempt {k}")
time.sleep(600)
"""

CONFIG = """
name: outcomes
entrypoint: python3 trial.py
max_restarts: 2
hyperparameters:
  x: {type: double, minval: 0, maxval: 1}
searcher: {name: random, metric: loss, max_trials: 2, max_concurrent_trials: 2, max_length: 1}
"""


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    return workdir


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args], capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"ridgeline {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
    return result


def trials(experiment_id: int) -> list:
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        return store.list_trials(experiment_id)
    finally:
        store.close()


def wait_for(condition, what: str, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_restarted_trial_shows_each_attempt_and_counts_appear(user_env: Path) -> None:
    (user_env / "trial.py").write_text(textwrap.dedent(TRIAL))
    (user_env / "config.yaml").write_text(textwrap.dedent(CONFIG))
    created = cli("e", "create", str(user_env / "config.yaml"), str(user_env), "--json")
    experiment_id = json.loads(created.stdout)["id"]
    wait_for(
        lambda: [t.state for t in trials(experiment_id)] == ["FAILED", "RUNNING"],
        "trial 1 to fail three times while trial 2 runs",
    )
    first, second = trials(experiment_id)
    cli("t", "kill", str(second.id))
    cli("e", "wait", str(experiment_id), check=False)
    assert [t.state for t in trials(experiment_id)] == ["FAILED", "STOPPED"]
    assert first.restarts == 2

    # the coordinator's failure message for each attempt shows that attempt only
    log = cli("e", "logs", "--coordinator", str(experiment_id)).stdout
    failures = log.split("Trial 1 failed")[1:]
    assert len(failures) == 3
    for k, message in enumerate(failures, start=1):
        message = message.split("Restarting trial")[0]
        assert f"boom in attempt {k}" in message
        assert all(f"attempt {j}" not in message for j in range(1, 4) if j != k)

    # `trial logs`: the latest attempt, the earlier ones on request
    latest = cli("t", "logs", str(first.id)).stdout
    assert "boom in attempt 3" in latest and "attempt 1" not in latest
    assert latest.count("Traceback") == 1
    one = cli("t", "logs", str(first.id), "--attempt", "1").stdout
    assert "boom in attempt 1" in one and "attempt 2" not in one
    every = cli("t", "logs", str(first.id), "--all").stdout
    assert every.count("Traceback") == 3 and "==> attempt 3 (trial_1.out, latest) <==" in every
    assert every.index("boom in attempt 1") < every.index("boom in attempt 2")
    missing = cli("t", "logs", str(first.id), "--attempt", "4", check=False)
    assert missing.returncode == 1 and "attempts are 1..3" in missing.stderr
    both = cli("t", "logs", str(first.id), "--attempt", "1", "--all", check=False)
    assert both.returncode == 1 and "do not go together" in both.stderr

    # failed and stopped counts in `e list` and `e describe` (JSON and table)
    (row,) = json.loads(cli("e", "list", "--json").stdout)
    assert (row["failed"], row["stopped"]) == (1, 1)
    described = json.loads(cli("e", "describe", str(experiment_id), "--json").stdout)
    assert (described["failed"], described["stopped"]) == (1, 1)
    table = cli("e", "describe", str(experiment_id)).stdout
    assert "failed" in table and "stopped" in table


def test_wait_exit_status_follows_the_outcome(user_env: Path) -> None:
    from ridgeline.experiment import Experiment

    (user_env / "trial.py").write_text("print('hi')\n")
    (user_env / "config.yaml").write_text(textwrap.dedent(CONFIG))
    outcomes = {}
    for state in ("COMPLETED", "ERROR", "CANCELED"):
        experiment_id = Experiment.from_yaml(user_env / "config.yaml", user_env).create()
        store = open_store(os.environ["RIDGELINE_STORAGE"])
        try:
            store.update_experiment(experiment_id, state=state)
        finally:
            store.close()
        result = cli("e", "wait", str(experiment_id), check=False)
        outcomes[state] = (result.returncode, result.stdout.strip())
    assert outcomes["COMPLETED"] == (0, "Experiment 1: COMPLETED")
    assert outcomes["ERROR"][0] != 0 and outcomes["ERROR"][1] == "Experiment 2: ERROR"
    assert outcomes["CANCELED"][0] != 0 and outcomes["CANCELED"][1] == "Experiment 3: CANCELED"


PROGRESS_RUNNER = """
import sys
import ridgeline as sherpa
FAIL_BUT_TRIAL_2 = "import os, sys; sys.exit(os.environ['SHERPA_TRIAL_ID'] != '2')"
sherpa.optimize(
    parameters=[sherpa.Continuous("x", [0.0, 1.0])],
    algorithm=sherpa.algorithms.RandomSearch(max_num_trials=3),
    lower_is_better=True,
    scheduler=sherpa.schedulers.LocalScheduler(),
    command=[sys.executable, "-c", FAIL_BUT_TRIAL_2],
    output_dir=sys.argv[1],
    max_concurrent=1,
    seed=1,
    verbose=1,
)
"""


def test_progress_line_counts_failed_trials(workdir: Path) -> None:
    runner = workdir / "runner.py"
    runner.write_text(textwrap.dedent(PROGRESS_RUNNER))
    result = subprocess.run(
        [sys.executable, str(runner), str(workdir / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "2 failed" in result.stdout + result.stderr


SLEEPER = """
import os, pathlib, time
out, number = os.environ["RIDGELINE_OUTPUT_DIR"], os.environ["RIDGELINE_TRIAL_ID"]
pathlib.Path(out, f"pid_{number}").write_text(str(os.getpid()))
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_kill_with_a_frozen_coordinator_kills_the_trials_itself(user_env: Path) -> None:
    (user_env / "trial.py").write_text(textwrap.dedent(SLEEPER))
    (user_env / "config.yaml").write_text(
        textwrap.dedent(CONFIG).replace("max_trials: 2", "max_trials: 3")
    )
    created = cli("e", "create", str(user_env / "config.yaml"), str(user_env), "--json")
    experiment_id = json.loads(created.stdout)["id"]
    decoy = subprocess.Popen(["sleep", "600"])  # an unrelated process
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    coordinator = None
    try:
        wait_for(
            lambda: (
                [t.state for t in trials(experiment_id)] == ["RUNNING", "RUNNING"]
                and all(t.job for t in trials(experiment_id))
            ),
            "two running trials",
        )
        out = Path(store.get_experiment(experiment_id).config["output_dir"])
        wait_for(lambda: len(list(out.glob("pid_*"))) == 2, "the trials' pids")
        pids = {n: int((out / f"pid_{n}").read_text()) for n in (1, 2)}
        coordinator = store.get_experiment(experiment_id).coordinator["pid"]
        os.kill(coordinator, signal.SIGSTOP)
        # trial 2's record names a pid that now belongs to someone else: it must survive
        second = trials(experiment_id)[1]
        store.update_trial(second.id, job={**second.job, "pid": decoy.pid})

        result = cli("e", "kill", str(experiment_id), "--timeout", "1")
        assert "did not answer" in result.stdout
        assert f"killed its unresponsive coordinator (pid {coordinator})" in result.stdout
        assert "killed trial 1" in result.stdout and "killed trial 2" not in result.stdout
        wait_for(lambda: not alive(pids[1]) and not alive(coordinator), "the kills to land")
        assert alive(decoy.pid) and alive(pids[2])
        assert store.get_experiment(experiment_id).state == "CANCELED"
        assert [t.state for t in trials(experiment_id)] == ["CANCELED", "CANCELED"]
        assert cli("e", "wait", str(experiment_id), check=False).returncode == 1
    finally:
        for pid in (coordinator, *(int(p.read_text()) for p in out.glob("pid_*"))):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        decoy.kill()
        decoy.wait()
        store.close()
