"""What the CLI needs beyond the store: reaching a live coordinator, following a log."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from ridgeline.errors import TrialError
from ridgeline.schedulers import jobfiles
from ridgeline.schedulers.local import process_start_time
from ridgeline.store.base import Store
from ridgeline.store.lease import local_holder_pid
from ridgeline.store.records import (
    CANCELED,
    COMPLETED,
    ERROR,
    RUNNING,
    TRIAL_DONE_STATES,
    ExperimentRecord,
)
from ridgeline.trial import env as trial_env
from ridgeline.trial.client import connect

TERMINAL = (COMPLETED, CANCELED, ERROR)


def coordinator_alive(experiment: ExperimentRecord) -> bool:
    """True when the experiment's recorded coordinator process still runs."""
    pid = (experiment.coordinator or {}).get("pid")
    if not pid:
        return False
    from ridgeline.engine.run import process_alive  # lazy: keeps `import ridgeline.cli` light

    return process_alive(int(pid))


def request(
    experiment: ExperimentRecord,
    method: str,
    path: str,
    timeout: float = 30,
    body: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Send a control request (with a JSON ``body``) to the live coordinator; None when none
    is reachable or it does not answer within ``timeout`` seconds."""
    info = experiment.coordinator or {}
    if not info.get("url") or not coordinator_alive(experiment):
        return None
    try:  # https: the certificate must be the one the coordinator recorded
        conn = connect(str(info["url"]), info.get(trial_env.CERT_KEY), timeout=timeout)
    except TrialError as exc:
        raise RuntimeError(str(exc)) from None
    try:
        status, answer = conn.request(
            method,
            path,
            json.dumps(body or {}).encode(),
            {"Authorization": f"Bearer {experiment.config['token']}"},
        )
    except OSError:
        return None
    except TrialError as exc:  # CertificateRefused: not the coordinator it should be
        raise RuntimeError(str(exc)) from None
    finally:
        conn.close()
    reply: dict[str, Any] = json.loads(answer or b"{}")
    if status != 200:
        raise RuntimeError(reply.get("error", f"HTTP {status}"))
    return reply


def wait_until(store: Store, experiment_id: int, states: tuple[str, ...], timeout: float) -> str:
    """Poll the store (the CLI is a separate process) until the experiment is in ``states``.

    Gives up after ``timeout`` seconds, or once no coordinator has run it for 10 s (one that
    was just launched needs a moment to record itself)."""
    deadline = time.monotonic() + timeout
    dead_since: float | None = None
    while True:
        experiment = store.get_experiment(experiment_id)
        now = time.monotonic()
        if experiment.state in states or now > deadline:
            return experiment.state
        if coordinator_alive(experiment):
            dead_since = None
        elif dead_since is None:
            dead_since = now
        elif now - dead_since > 10:
            return experiment.state
        time.sleep(0.2)


def follow(path: Path, done: Any, echo: Any) -> None:
    """Print ``path`` as it grows until ``done()`` is true and nothing more arrives."""
    position = 0
    while True:
        finished = done()
        if path.exists():
            with open(path, "rb") as handle:
                handle.seek(position)
                data = handle.read()
                position += len(data)
            if data:
                echo(data.decode(errors="replace"), nl=False)
        if finished:
            return
        time.sleep(0.2)


def trial_attempts(experiment: ExperimentRecord, number: int) -> list[Path]:
    """Every attempt's output of trial ``number``, oldest first (the latest is last)."""
    jobs = Path(experiment.config["output_dir"]) / "jobs"
    return jobfiles.attempt_outputs(jobs, f"trial_{number}")


def trial_log(experiment: ExperimentRecord, number: int, attempt: int | None = None) -> Path:
    """The output of trial ``number``'s latest attempt, or of attempt ``attempt`` (1-based).

    Raises ``LookupError`` naming the attempts there are when ``attempt`` is not one."""
    jobs = Path(experiment.config["output_dir"]) / "jobs"
    name = f"trial_{number}"
    if attempt is None:
        return jobfiles.output_path(jobs, name)
    attempts = trial_attempts(experiment, number)
    if not 1 <= attempt <= len(attempts):
        raise LookupError(
            f"trial {number} has no attempt {attempt}; its attempts are 1..{len(attempts)}"
            if attempts
            else f"trial {number} has no output yet"
        )
    return attempts[attempt - 1]


def _own_coordinator(store: Store, experiment: ExperimentRecord) -> int | None:
    """The pid of the experiment's coordinator when it runs on this host: the holder of the
    experiment's lease, identified by host, pid and start time (a reused pid, or a
    coordinator on another host, is never signalled)."""
    lease = store.get_lease(experiment.id)
    return local_holder_pid(lease.holder) if lease is not None else None


def kill_without_coordinator(store: Store, experiment: ExperimentRecord) -> list[str]:
    """End an experiment whose coordinator does not answer: kill that coordinator (a frozen
    or hung one would otherwise carry on when it wakes), kill the trial processes it left
    (each checked against its recorded start time, so a reused pid is never signalled) and
    end the SLURM and Grid Engine jobs and dask tasks it left (by the ids kept with the
    trials), and
    record the unfinished trials and the experiment CANCELED. Returns what was done."""
    done: list[str] = []
    pid = _own_coordinator(store, experiment)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
            done.append(f"killed its unresponsive coordinator (pid {pid})")
        except ProcessLookupError:
            pass
    canceled = []
    for trial in store.list_trials(experiment.id):
        if trial.state in TRIAL_DONE_STATES:
            continue
        job = trial.job or {}
        exit_code = None
        trial_pid = job.get("pid")
        if trial_pid and trial.state == RUNNING:
            started = process_start_time(int(trial_pid))
            if started is not None and started == job.get("start_time"):
                try:
                    os.killpg(int(trial_pid), signal.SIGKILL)
                    exit_code = -signal.SIGKILL
                    done.append(f"killed trial {trial.number} (process group {trial_pid})")
                except (ProcessLookupError, PermissionError):
                    pass
        elif job.get("job_id_file"):  # a SLURM or Grid Engine job: its batch system ends it
            from ridgeline.schedulers.batch import cancel_recorded_job  # lazy: cli stays light

            cancelled = cancel_recorded_job(job)
            if cancelled is not None:
                exit_code = -signal.SIGKILL
                done.append(f"cancelled trial {trial.number}'s {cancelled}")
        elif job.get("key") and job.get("address"):  # a dask task: its worker ends it
            from ridgeline.schedulers.dask import kill_recorded_task  # lazy: imports dask

            try:
                killed = kill_recorded_task(job, f"trial_{trial.number}")
            except Exception as exc:  # noqa: BLE001 - the dask scheduler may be gone too
                done.append(f"could not reach trial {trial.number}'s dask task: {exc}")
                killed = None
            if killed is not None:
                exit_code = -signal.SIGKILL
                done.append(f"killed trial {trial.number}'s {killed}")
        updated = store.update_trial(
            trial.id,
            expect_state=trial.state,
            state=CANCELED,
            exit_code=exit_code,
            ended_at=time.time(),
        )
        if updated is not None:
            canceled.append(str(trial.number))
    store.update_experiment(experiment.id, state=CANCELED, coordinator=None)
    store.add_event(experiment.id, "experiment_killed", {"by": "cli", "coordinator": pid})
    if canceled:
        plural = "s" if len(canceled) > 1 else ""
        done.append(f"marked trial{plural} {', '.join(canceled)} CANCELED")
    done.append("marked the experiment CANCELED")
    return done
