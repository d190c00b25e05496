"""What the CLI needs beyond the store: reaching a live coordinator, following a log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ridgeline.schedulers import jobfiles
from ridgeline.store.base import Store
from ridgeline.store.records import ExperimentRecord
from ridgeline.trial.http import Connection

TERMINAL = ("COMPLETED", "CANCELED", "ERROR")


def coordinator_alive(experiment: ExperimentRecord) -> bool:
    """True when the experiment's recorded coordinator process still runs."""
    pid = (experiment.coordinator or {}).get("pid")
    if not pid:
        return False
    from ridgeline.runner import process_alive

    return process_alive(int(pid))


def request(experiment: ExperimentRecord, method: str, path: str) -> dict[str, Any] | None:
    """Send a control request to the live coordinator; None when none is reachable."""
    info = experiment.coordinator or {}
    if not info.get("url") or not coordinator_alive(experiment):
        return None
    host, _, port = str(info["url"]).removeprefix("http://").rpartition(":")
    conn = Connection(host, int(port), timeout=30)
    try:
        status, body = conn.request(
            method,
            path,
            b"{}",
            {"Authorization": f"Bearer {experiment.config['token']}"},
        )
    except OSError:
        return None
    finally:
        conn.close()
    reply: dict[str, Any] = json.loads(body or b"{}")
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


def trial_log(experiment: ExperimentRecord, number: int, attempt: int | None = None) -> Path:
    """The output of trial ``number``'s latest attempt, or of attempt ``attempt`` (1-based).

    Raises ``LookupError`` naming the attempts there are when ``attempt`` is not one."""
    jobs = Path(experiment.config["output_dir"]) / "jobs"
    name = f"trial_{number}"
    if attempt is None:
        return jobfiles.output_path(jobs, name)
    attempts = jobfiles.attempt_outputs(jobs, name)
    if not 1 <= attempt <= len(attempts):
        raise LookupError(
            f"trial {number} has no attempt {attempt}; its attempts are 1..{len(attempts)}"
            if attempts
            else f"trial {number} has no output yet"
        )
    return attempts[attempt - 1]
