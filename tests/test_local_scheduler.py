"""LocalScheduler with real processes: exit statuses that survive the scheduler, signals that
reach the trial once, and one output file per attempt."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from ridgeline.schedulers.local import LocalScheduler

# Counts the SIGTERMs it receives, then exits with that count after the second signal or 5 s.
COUNT_TERMS = """
import signal, sys, time
got = []
signal.signal(signal.SIGTERM, lambda *_: got.append(1))
print("ready", flush=True)
deadline = time.time() + 5
while time.time() < deadline and not got:
    time.sleep(0.01)
time.sleep(0.3)  # a duplicate delivery would arrive now
sys.exit(10 + len(got))
"""


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def start(tmp_path: Path, code: str, name: str = "trial_1"):  # type: ignore[no-untyped-def]
    scheduler = LocalScheduler(output_dir=str(tmp_path))
    job = scheduler.submit([sys.executable, "-c", code], dict(os.environ), name)
    return scheduler, job


def wait_for_output(path: str, text: str) -> None:
    deadline = time.monotonic() + 30
    while text not in Path(path).read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_exit_code_and_signals_are_reported(tmp_path: Path) -> None:
    scheduler, job = start(tmp_path, "import sys; sys.exit(3)")
    assert run(scheduler.wait(job)) == 3
    scheduler, job = start(tmp_path, "import time; print('ready', flush=True); time.sleep(60)")
    wait_for_output(job.info["output"], "ready")
    scheduler.kill(job)
    assert run(scheduler.wait(job)) == -signal.SIGTERM
    scheduler, job = start(tmp_path, "import time; print('ready', flush=True); time.sleep(60)")
    wait_for_output(job.info["output"], "ready")
    scheduler.kill(job, force=True)
    assert run(scheduler.wait(job)) == -signal.SIGKILL


def test_sigterm_reaches_the_trial_exactly_once(tmp_path: Path) -> None:
    scheduler, job = start(tmp_path, COUNT_TERMS)
    wait_for_output(job.info["output"], "ready")
    scheduler.kill(job)
    assert run(scheduler.wait(job)) == 11


def test_exit_status_survives_the_scheduler(tmp_path: Path) -> None:
    """A new scheduler (a restarted coordinator) learns how a job it did not start ended."""
    scheduler, job = start(tmp_path, "import time; print('ready', flush=True); time.sleep(0.5)")
    wait_for_output(job.info["output"], "ready")
    info = dict(job.info)
    later = LocalScheduler(output_dir=str(tmp_path))
    attached = later.reattach(info, "trial_1")  # still running: re-attached by pid
    assert attached is not None and attached.handle is None
    assert run(later.wait(attached)) == 0
    job.handle.wait()

    _, job = start(tmp_path, "import sys; sys.exit(5)", "trial_2")
    job.handle.wait()  # it ended while "no coordinator" watched
    attached = LocalScheduler(output_dir=str(tmp_path)).reattach(dict(job.info), "trial_2")
    assert attached is not None
    assert run(LocalScheduler(output_dir=str(tmp_path)).wait(attached)) == 5


def test_a_vanished_job_without_a_record_is_not_reattached(tmp_path: Path) -> None:
    scheduler, job = start(tmp_path, "import time; print('ready', flush=True); time.sleep(60)")
    wait_for_output(job.info["output"], "ready")
    scheduler.kill(job, force=True)  # wrapper and trial together: nothing is recorded
    job.handle.wait()
    assert not Path(job.info["exit_file"]).exists()
    assert LocalScheduler(output_dir=str(tmp_path)).reattach(dict(job.info), "trial_1") is None


def test_each_attempt_gets_its_own_output(tmp_path: Path) -> None:
    scheduler = LocalScheduler(output_dir=str(tmp_path))
    outputs = []
    for attempt in (1, 2, 3):
        code = f"import sys; print('attempt {attempt}'); sys.exit({attempt})"
        job = scheduler.submit([sys.executable, "-c", code], dict(os.environ), "trial_7")
        assert run(scheduler.wait(job)) == attempt
        outputs.append(job.info["output"])
    jobs = tmp_path / "jobs"
    assert set(outputs) == {str(jobs / "trial_7.out")}
    assert (jobs / "trial_7.out").read_text() == "attempt 3\n"
    assert (jobs / "trial_7.attempt1.out").read_text() == "attempt 1\n"
    assert (jobs / "trial_7.attempt2.out").read_text() == "attempt 2\n"
    assert (jobs / "trial_7.attempt2.exit").read_text() == "2\n"
