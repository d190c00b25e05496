"""Worker jobs: batch jobs that run trials one after another, instead of one job per trial.

On a busy cluster each job waits in the queue before it starts; with one job per trial every
trial pays that wait (and the batch system's start-up) again. A worker job pays it once: it
starts ``python -m ridgeline.launch.worker``, which asks the coordinator for a trial
(``POST /api/v1/workers/claim``, a long poll), runs it under the exit-status wrapper, tells the
coordinator it ended, and asks again. So a slot freed by one trial is taken by the next in the
time of two HTTP calls, whatever the queue looks like.

This module is the coordinator's side, on the event loop only. A trial submitted in this mode
is a ``Task`` in the queue; an idle worker's claim takes the oldest one. The pool keeps as many
worker jobs queued or running as there are trials that no worker is about to take (the
engine's concurrency limit bounds that number), lets a worker that found nothing to do for
``idle_s`` go, and at the end of the run tells idle workers to go and cancels the jobs that
would otherwise start with nothing to do (a worker that finds no coordinator ends by itself).
Workers prove themselves with a token of this pool's
own (256 random bits, compared as digests in constant time), which reaches them through the
batch system's environment like a trial's; a claim's answer holds that trial's variables,
its token among them, so a worker's token is as good as the trial tokens it receives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ridgeline.engine.credentials import new_token, token_digest
from ridgeline.launch.worker import WORKER_NAME, WORKER_TOKEN
from ridgeline.trial import env as trial_env

__all__ = ["TRIAL_ONLY", "Task", "WorkerPool"]

log = logging.getLogger(__name__)

#: A trial's own variables: not in a worker's environment, only in the trial's.
TRIAL_ONLY = (
    trial_env.TOKEN,
    trial_env.TRIAL_ID,
    trial_env.TRIAL_GLOBAL_ID,
    trial_env.SHERPA_TRIAL_ID,
    trial_env.HPARAMS,
    trial_env.TRIAL_SEED,
    trial_env.LATEST_CHECKPOINT,
    trial_env.TENSORBOARD_PATH,
)
DEFAULT_IDLE_S = 60.0


@dataclass(eq=False)
class Task:
    """One trial attempt for a worker: what to run and where its files go. ``submitted``
    gets the id of the job of the worker that takes it."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: str
    exit_file: str
    output: str
    submitted: concurrent.futures.Future[str]
    on_claimed: Callable[[str], None]  # with the worker's job id, once it is known
    on_lost: Callable[[], None]  # the hand-over to a worker did not reach it


@dataclass(eq=False)
class _Worker:
    name: str
    submitted: concurrent.futures.Future[str]  # its job id, once the submit tool answered
    state: str = "starting"  # starting | idle | busy | returning | leaving
    task: Task | None = None
    idle_since: float = field(default_factory=time.monotonic)
    base_env: dict[str, str] = field(default_factory=dict)


class WorkerPool:
    """The trials waiting for workers, and the workers (see the module's docstring).
    ``start_worker(name, env)`` submits one worker job with ``env`` as its environment and
    returns the future of its job id; ``cancel(job_id, force)`` cancels one; ``watch(job_id)``
    waits until the batch system no longer lists it."""

    def __init__(
        self,
        start_worker: Callable[[str, dict[str, str]], concurrent.futures.Future[str]],
        cancel: Callable[[str, bool], None],
        watch: Callable[[str], Any],
        idle_s: float = DEFAULT_IDLE_S,
    ) -> None:
        self._start_worker = start_worker
        self.prefix = f"worker_{secrets.token_hex(3)}"  # apart from an earlier run's workers
        self._cancel = cancel
        self._watch = watch
        self.idle_s = idle_s
        self.token = new_token()
        self._digest = token_digest(self.token)
        self.queue: deque[Task] = deque()
        self.workers: dict[str, _Worker] = {}
        self._claims: deque[tuple[_Worker, asyncio.Future[Task | None]]] = deque()
        self._count = 0
        self.closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the coordinator's side ----------------------------------------------------------------

    def admits(self, token: str) -> bool:
        """Whether ``token`` is this pool's worker token (constant time)."""
        return hmac.compare_digest(token_digest(token), self._digest)

    def add(self, task: Task) -> None:
        """Queue a trial: an idle worker takes it at once, else a worker job is started when
        none is on its way."""
        self.queue.append(task)
        self._dispatch()

    def remove(self, task: Task) -> bool:
        """Take back a trial no worker has taken yet; False when one has."""
        try:
            self.queue.remove(task)
        except ValueError:
            return False
        return True

    def runs(self, task: Task) -> _Worker | None:
        """The worker that is running ``task`` now, if any."""
        return next((w for w in self.workers.values() if w.task is task), None)

    def trial_ended(self, task: Task, worker_leaves: bool) -> None:
        """``task``'s worker said the trial ended: the worker asks for the next one, unless it
        is being cancelled (``worker_leaves``)."""
        worker = self.runs(task)
        if worker is not None:
            worker.task = None
            worker.state = "leaving" if worker_leaves else "returning"
            worker.idle_since = time.monotonic()

    def stop_worker_of(self, task: Task, force: bool) -> bool:
        """Cancel the job of the worker running ``task`` (once its id is known; ``force``:
        at once, without the grace of a signal first), which then leaves; False when no
        worker runs it any more."""
        worker = self.runs(task)
        if worker is None:
            return False
        worker.state = "leaving"
        self._cancel_when_known(worker, force)
        return True

    def close(self, abandon: bool) -> None:
        """The run is over: idle workers are told to go, and the jobs that would start (or
        ask again) with nothing to do are cancelled. ``abandon``: the coordinator stops
        while trials run on; their workers are left to finish them (a resumed coordinator
        re-attaches to those trials)."""
        self.closed = True
        for _, claim in self._claims:
            if not claim.done():
                claim.set_result(None)
        self._claims.clear()
        for worker in list(self.workers.values()):
            # An idle or returning worker ends by itself: told so, or finding no coordinator.
            if worker.state == "starting" or (worker.state == "busy" and not abandon):
                worker.state = "leaving"
                self._cancel_when_known(worker)
        for task in self._tasks:
            task.cancel()

    # -- the workers' side (the claim route) ---------------------------------------------------

    async def claim(self, name: str, wait: float) -> dict[str, Any]:
        """A worker asks for a trial: ``{"trial": ...}`` to run, ``{"wait": true}`` to ask
        again, or ``{"exit": reason}`` to end."""
        worker = self.workers.get(name)
        if worker is None:
            return {"exit": f"{name!r} is not a worker of this coordinator"}
        if self.closed or worker.state == "leaving":
            return {"exit": "the search has no more work for this worker"}
        if worker.state == "busy" and worker.task is not None:
            lost = worker.task
            log.warning(
                "worker %s asked for a trial while %s was handed to it: that hand-over did "
                "not reach it",
                name,
                lost.name,
            )
            worker.task = None
            lost.on_lost()
        if worker.state != "idle":
            worker.idle_since = time.monotonic()
        worker.state = "idle"
        if self.queue:
            return self._hand(worker, self.queue.popleft())
        idle_for = time.monotonic() - worker.idle_since
        if idle_for >= self.idle_s:
            worker.state = "leaving"
            return {"exit": f"no trial for {idle_for:.0f} s"}
        claim: asyncio.Future[Task | None] = asyncio.get_running_loop().create_future()
        self._claims.append((worker, claim))
        try:
            await asyncio.wait_for(asyncio.shield(claim), min(wait, self.idle_s - idle_for))
        except TimeoutError:
            pass
        except asyncio.CancelledError:  # the worker hung up: a trial given to it goes back
            given = claim.result() if claim.done() else None
            if given is not None:
                self.queue.appendleft(given)
                self._dispatch()
            raise
        finally:
            if not claim.done():
                claim.cancel()
        task = claim.result() if not claim.cancelled() else None
        if task is not None:
            return self._hand(worker, task)
        if self.closed:
            worker.state = "leaving"
            return {"exit": "the search is over"}
        idle_for = time.monotonic() - worker.idle_since
        if idle_for >= self.idle_s:
            worker.state = "leaving"
            return {"exit": f"no trial for {idle_for:.0f} s"}
        return {"wait": True}

    def _hand(self, worker: _Worker, task: Task) -> dict[str, Any]:
        worker.state, worker.task = "busy", task
        worker.submitted.add_done_callback(
            lambda f: task.on_claimed(f.result()) if f.exception() is None else None
        )
        changed = {k: v for k, v in task.env.items() if worker.base_env.get(k) != v}
        return {
            "trial": {
                "name": task.name,
                "command": task.command,
                "env": changed,
                "unset": sorted(k for k in worker.base_env if k not in task.env),
                "cwd": task.cwd,
                "exit_file": task.exit_file,
                "output": task.output,
            }
        }

    # -- keeping enough workers ----------------------------------------------------------------

    def _dispatch(self) -> None:
        while self.queue and self._claims:
            _, claim = self._claims.popleft()
            if not claim.done():
                claim.set_result(self.queue.popleft())
        asking = {id(w) for w, claim in self._claims if not claim.done()}
        coming = sum(
            1
            for w in self.workers.values()
            if w.state in ("starting", "returning") or (w.state == "idle" and id(w) not in asking)
        )
        for _ in range(len(self.queue) - coming):
            self._start(self.queue[0].env)

    def _start(self, task_env: Mapping[str, str]) -> None:
        self._count += 1
        name = f"{self.prefix}_{self._count}"
        base = {k: v for k, v in task_env.items() if k not in TRIAL_ONLY}
        submitted = self._start_worker(name, {**base, WORKER_NAME: name, WORKER_TOKEN: self.token})
        worker = _Worker(name, submitted, base_env=base)
        self.workers[name] = worker
        task = asyncio.get_running_loop().create_task(self._follow(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, worker: _Worker) -> None:
        """Forget a worker once its job has ended (or could not be submitted)."""
        try:
            job_id = await asyncio.wrap_future(worker.submitted)
            await self._watch(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the submit tool refused: a trial fails
            log.error("worker job %s could not be submitted: %s", worker.name, exc)
            if self.queue:  # as a trial's own job would: the engine counts the failure
                refused = self.queue.popleft()
                if not refused.submitted.done():
                    refused.submitted.set_exception(exc)
        self.workers.pop(worker.name, None)
        if not self.closed:
            self._dispatch()

    def _cancel_when_known(self, worker: _Worker, force: bool = False) -> None:
        def cancel(future: concurrent.futures.Future[str]) -> None:
            if not future.cancelled() and future.exception() is None:
                self._cancel(future.result(), force)

        worker.submitted.add_done_callback(cancel)
