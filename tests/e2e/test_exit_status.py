"""A trial that ends while no coordinator watches it keeps its true exit status.

The coordinator is SIGKILLed while trials that already sent metrics run; the trials then end
(exit code 3, SIGKILL, or exit 3 after the new coordinator re-attached to them). Resuming must
record trial 1 as FAILED with that status, never COMPLETED because it had metrics.
"""

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
from tests.runner_script import write_runner

from ridgeline.store import open_store

# Sends one metric, then waits for the test to say how to end. A second run of the same trial
# (what a coordinator does with a trial whose process it lost) ends at once with code 0.
TRIAL = """
import glob, os, sys, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
again = glob.glob(os.path.join(out, f"sent_{trial.id}_*"))
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
if again:
    sys.exit(0)
open(os.path.join(out, f"sent_{trial.id}_{os.getpid()}"), "w").close()
release = os.path.join(out, "release")
while not os.path.exists(release):
    time.sleep(0.05)
if trial.id == 1 and open(release).read() == "exit":
    sys.exit(3)
if trial.id == 1:
    time.sleep(600)  # the test kills it
"""


def wait_for(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pid_of(out: Path, number: int) -> int:
    (path,) = out.glob(f"sent_{number}_*")
    return int(path.name.split("_")[2])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:  # a zombie has ended
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:  # reaped between the two looks
        return True


@pytest.mark.parametrize(
    ("ending", "expected"),
    [("exit", 3), ("sigkill", -signal.SIGKILL), ("exit_after_reattach", 3)],
)
def test_trial_ending_without_coordinator_keeps_its_exit_status(
    workdir: Path, ending: str, expected: int
) -> None:
    runner = write_runner(workdir)
    trial = workdir / "trial.py"
    trial.write_text(textwrap.dedent(TRIAL))
    out = workdir / "out"
    spec = json.dumps({"trials": 2, "seed": 3})
    first = subprocess.Popen([sys.executable, str(runner), str(trial), str(out), spec])
    try:
        wait_for(lambda: len(list(out.glob("sent_*"))) == 2, "both trials to send a metric")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    pid = pid_of(out, 1)
    resume = [sys.executable, str(runner), str(trial), str(out), spec, "--resume"]
    if ending == "exit_after_reattach":
        second = subprocess.Popen(resume)
        wait_for(lambda: "Re-attached trial 1" in (out / "log.txt").read_text(), "the re-attach")
        (out / "release").write_text("exit")
        assert second.wait(timeout=120) == 0
    else:
        (out / "release").write_text("exit" if ending == "exit" else "hang")
        if ending == "sigkill":
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: gone(pid), "trial 1 to end")
        wait_for(lambda: (out / "jobs" / "trial_2.exit").exists(), "trial 2 to end")
        subprocess.run(resume, check=True, timeout=120)
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        trials = {t.number: t for t in store.list_trials(experiment.id)}
    finally:
        store.close()
    assert (trials[1].state, trials[1].exit_code) == ("FAILED", expected)
    assert trials[1].restarts == 0  # judged by its recorded end, not run again
    assert (trials[2].state, trials[2].exit_code) == ("COMPLETED", 0)
    assert len(list(out.glob("sent_*"))) == 2
    log = (out / "log.txt").read_text()
    assert "Trial 1 failed" in log
