"""``python -m ridgeline.launch.worker``: a worker job's program (``schedulers/workerpool.py``).

It asks its coordinator for a trial, runs it under the exit-status wrapper (so the trial's
exit file is written exactly as in a job of its own), tells the coordinator that the trial
ended (with that trial's token), and asks again; it ends when the coordinator says so, when
the coordinator cannot be reached (a restarted coordinator has workers of its own: this one's
token means nothing to it), or after a signal (``scancel``: the trial runs in the worker's
process group, so the batch system's signal reaches it too; the worker waits for the trial's
end, reports it and leaves). Its exit code is 0 unless it
was started without its variables (2) or a trial's exit status could not be recorded (a full
disk): then that status, so that the job's end tells it as a job of its own would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ridgeline.schedulers import exitstatus, jobfiles
from ridgeline.trial import env
from ridgeline.trial.client import _decode, connect
from ridgeline.trial.http import Connection

__all__ = ["WORKER_NAME", "WORKER_TOKEN", "Worker", "apply", "main"]

WORKER_TOKEN = "RIDGELINE_WORKER_TOKEN"  # the worker's credential (its claims only)
WORKER_NAME = "RIDGELINE_WORKER"  # which of its pool's workers a job is

CLAIM_WAIT_S = 30.0
TRIES = 4  # per call, 0.5 s apart: a coordinator that stays away this long is gone for us


class Worker:
    """One worker's connection and loop."""

    def __init__(self, master: str, fingerprint: str | None, name: str, token: str) -> None:
        self.name, self.token, self.master = name, token, master
        self.connection: Connection = connect(master, fingerprint, timeout=CLAIM_WAIT_S + 30)
        self.stopping = False

    def moved(self) -> bool:
        """Whether the coordinator's address file names another address (a coordinator
        started since, which re-attached to the running trials); if so, connect there."""
        try:
            with open(os.environ.get(env.MASTER_FILE, "")) as handle:
                address = json.load(handle)
            url, fingerprint = str(address["url"]), address.get(env.CERT_KEY)
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if url == self.master:
            return False
        self.connection.close()
        self.master = url
        self.connection = connect(url, fingerprint or None, timeout=CLAIM_WAIT_S + 30)
        return True

    def call(self, path: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
        """POST ``body``; (status, reply), or (0, {}) when the coordinator cannot be reached."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        payload = json.dumps(body).encode()
        for attempt in range(TRIES):
            try:
                status, data = self.connection.request("POST", path, payload, headers)
            except OSError as exc:
                error = exc
            else:
                if status < 500:
                    return status, _decode(data)
                error = OSError(f"HTTP {status}")
            if attempt + 1 < TRIES and not self.stopping:
                time.sleep(0.5)
        say(f"the coordinator did not answer {path}: {error}")
        return 0, {}

    def run(self) -> int:
        while not self.stopping:
            status, reply = self.call(
                f"/api/v1/workers/claim?wait={CLAIM_WAIT_S:g}", {"worker": self.name}, self.token
            )
            if status != 200:
                if status:
                    say(f"the coordinator refused it (HTTP {status}): {reply.get('error')}")
                return 0
            if "exit" in reply:
                say(f"ends: {reply['exit']}")
                return 0
            trial = reply.get("trial")
            if isinstance(trial, dict):
                ended = self.run_trial(trial)
                if ended is not None:
                    return ended
        return 0

    def run_trial(self, trial: dict[str, Any]) -> int | None:
        """Run one trial and report its end; the worker's exit code when it should end
        after it (None: ask for the next trial)."""
        trial_vars = apply(os.environ, trial["env"], trial.get("unset", []))
        say(f"runs {trial['name']}")
        try:
            # In the worker's process group: the batch system's signals to the job's group
            # (scancel --full --signal=TERM) reach the trial once, as in a job of its own.
            process = exitstatus.start(
                trial["command"],
                trial["exit_file"],
                trial_vars,
                trial["output"],
                trial["cwd"],
                new_session=False,
            )
            code = process.wait()
        except OSError as exc:
            with open(trial["output"], "a") as out:
                out.write(f"ridgeline: the worker could not start the trial: {exc}\n")
            code = 127
            with contextlib.suppress(OSError), open(trial["exit_file"], "w") as record:
                record.write(f"{code}\n")
        recorded = jobfiles.read_digits(trial["exit_file"])
        status = int(recorded) if recorded is not None else (128 - code if code < 0 else code)
        number = trial_vars.get(env.TRIAL_ID, "")
        notice = (
            f"/api/v1/trials/{number}/exited",
            {"status": status},
            trial_vars.get(env.TOKEN, ""),
        )
        answer, _ = self.call(*notice)
        if answer == 0 and self.moved():  # the new coordinator knows the trial's token
            answer, _ = self.call(*notice)
        if recorded is None:
            # (a full disk, say) the coordinator trusts only the record, or else the job's
            # end: end the job with the trial's status, as a job of its own would.
            say(
                f"{trial['name']}'s exit status {status} could not be recorded in "
                f"{trial['exit_file']}; the worker ends with it"
            )
            return status
        return 0 if answer != 200 or self.stopping else None


def apply(
    base: Mapping[str, str], changed: Mapping[str, str], unset: Sequence[str]
) -> dict[str, str]:
    """A trial's environment in a worker: the worker's own, less its credentials, with the
    trial's own variables on top."""
    out = {k: v for k, v in base.items() if k not in (WORKER_TOKEN, WORKER_NAME)}
    for key in unset:
        out.pop(key, None)
    out.update(changed)
    return out


def say(message: str) -> None:
    print(f"ridgeline worker {os.environ.get(WORKER_NAME, '?')}: {message}", flush=True)


def main() -> int:
    token = os.environ.pop(WORKER_TOKEN, "")
    name = os.environ.get(WORKER_NAME, "")
    master = os.environ.get(env.MASTER, "")
    if not (token and name and master):
        print(
            f"ridgeline worker: {WORKER_TOKEN}, {WORKER_NAME} and {env.MASTER} must be set "
            f"(a worker runs as a job that ridgeline submits)",
            file=sys.stderr,
        )
        return 2
    worker = Worker(master, os.environ.get(env.CERT_SHA256) or None, name, token)

    def stop(signum: int, frame: object) -> None:
        worker.stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
