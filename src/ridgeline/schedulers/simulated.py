"""Trials on simulated time: the real coordinator runs a whole search in seconds.

``SimulatedScheduler(train_fn, slots=4)`` runs each trial attempt as a coroutine in the
coordinator's own event loop, which is a ``VirtualClockLoop`` (``loop_factory``). The coroutine
plays a Core-API trial script: it asks for operations, trains each one for
``(to_length - from_length) * time_per_unit`` simulated seconds, saves a checkpoint, and
completes the operation with the metric ``train_fn`` returned. It calls the coordinator entry
points the HTTP API calls, after the same token check, so the engine, searcher, store and
coordinator are the real ones and cannot tell these trials from processes. Operations that
end at the same instant report in trial number order, each report settled (its pauses,
exits and new trials) before the next, as in ``Simulation(ties="trial")``. Like a real trial
it beats while it lives, checkpoints and exits when preempted (a stop, a pause), exits when
told there is no more work, dies on ``kill``, and restarts from its latest checkpoint.

A checkpoint is a copy of the model state ``train_fn`` returned, kept here under the
checkpoint's id (and an empty folder where the experiment keeps checkpoints, which the
coordinator checks and its retention deletes); a relaunched trial, or a clone started from its
parent's checkpoint, gets a copy of it back. ``exits[(trial, length)] = code`` makes that
trial's process exit with ``code`` when it reaches ``length`` instead of reporting (once), a
failure on cue. What happened is in ``operations``. The checkpoints live in this object: a
coordinator resumed with another one finds its trials gone and cannot restore them.

Use it through a front door that runs Core-API trials: ``Experiment(...).run(scheduler=...)``
or ``ridgeline.testing.engine_run.run_on_engine``.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import math
import os
import signal
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.errors import SchedulerError
from ridgeline.schedulers import jobfiles
from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.schedulers.virtualclock import VirtualClockLoop
from ridgeline.trial import env as trial_env

if TYPE_CHECKING:
    from ridgeline.engine.coordinator import Coordinator

__all__ = ["SimulatedOperation", "SimulatedScheduler", "TrainFn", "from_objective"]

#: ``train_fn(trial, params, state, from_length, to_length) -> (objective, state)``: train
#: from ``from_length`` to ``to_length``; the searcher metric there and the model state then.
#: ``state`` is where the process stands: None for a fresh start, else what its previous
#: operation returned, or a copy of the checkpoint it started from (its own, or its parent's
#: for a clone). A process that is preempted mid-operation trains up to its last whole unit.
TrainFn = Callable[[int, dict[str, Any], Any, int, int], tuple[float, Any]]
POLL_SECONDS = 60.0  # each long-poll of a simulated trial (the server's longest)
BEATS_PER_INTERVAL = 4  # as the trial client's heartbeat
PRUNE_AT = 64  # checkpoints kept before looking for those retention deleted


def from_objective(objective: Callable[[dict[str, Any], int], float]) -> TrainFn:
    """A ``TrainFn`` for a learning curve ``objective(params, length)`` that keeps no model."""

    def train(trial: int, params: dict[str, Any], state: Any, a: int, b: int) -> tuple[float, Any]:
        del trial, state, a
        return objective(params, b), None

    return train


@dataclass
class SimulatedOperation:
    """One stretch of training by one attempt, on the simulated clock.

    ``outcome``: "completed" (reported), "preempted" (checkpointed at ``reached`` and exited),
    "exited" (its process ended there, on cue), "killed", or "" while it trains."""

    trial: int
    attempt: int
    start: float
    from_length: int
    to_length: int
    end: float = math.nan
    reached: int = 0  # the length trained to when it ended
    outcome: str = ""
    objective: float | None = None

    @property
    def trained(self) -> int:
        return self.reached - self.from_length


@dataclass(frozen=True)
class _Saved:
    trial: int
    length: int
    state: Any


class _Process:
    """A simulated trial process: its coroutine, and the signal that ended it, if one did."""

    def __init__(self, task: asyncio.Task[int]) -> None:
        self.task = task
        self.signal: int | None = None


class SimulatedScheduler(Scheduler):
    """Trials as coroutines on simulated time; see the module docstring.

    ``slots``: trials at once (its ``capacity``). ``time_per_unit``: simulated seconds per
    unit of length. ``copy_state``: how a model state is copied into and out of a checkpoint.
    ``start_time`` and ``idle_limit``: the clock's (``VirtualClockLoop``)."""

    virtual_time = True

    def __init__(
        self,
        train_fn: TrainFn,
        slots: int = 1,
        time_per_unit: float = 1.0,
        exits: Mapping[tuple[int, int], int] | None = None,
        copy_state: Callable[[Any], Any] = copy.deepcopy,
        start_time: float = 0.0,
        idle_limit: float = 3600.0,
        output_dir: str = "",
    ) -> None:
        if type(slots) is not int or slots < 1:
            raise SchedulerError(f"SimulatedScheduler slots must be an integer >= 1, got {slots!r}")
        if not (isinstance(time_per_unit, int | float) and time_per_unit > 0):
            raise SchedulerError(
                f"SimulatedScheduler time_per_unit must be a number of seconds > 0, "
                f"got {time_per_unit!r}"
            )
        self.train_fn = train_fn
        self.slots = slots
        self.time_per_unit = float(time_per_unit)
        self.exits = dict(exits or {})
        self.copy_state = copy_state
        self.start_time = float(start_time)
        self.idle_limit = float(idle_limit)
        self.output_dir = str(output_dir)
        self.operations: list[SimulatedOperation] = []
        self.attempts: dict[int, int] = {}  # trial -> processes started
        self.checkpoints: dict[str, _Saved] = {}  # uuid -> what the process saved there
        self._coordinator: Coordinator | None = None
        self._live: set[_Process] = set()
        self._prune_at = PRUNE_AT

    # -- the scheduler interface ---------------------------------------------------------------
    def capacity(self) -> int:
        return self.slots

    def loop_factory(self) -> Callable[[], VirtualClockLoop]:
        return functools.partial(VirtualClockLoop, self.start_time, self.idle_limit)

    def attach(self, coordinator: Coordinator) -> None:
        if coordinator.settings.max_length is None:
            raise SchedulerError(
                "SimulatedScheduler runs Core-API trials, which train by operations; this "
                "search serves none (no searcher max_length): run it as an Experiment"
            )
        self._coordinator = coordinator

    def submit(
        self, command: Sequence[str], env: Mapping[str, str], name: str, cwd: str | None = None
    ) -> Job:
        if self._coordinator is None:
            raise SchedulerError(f"cannot start {name}: no coordinator attached this scheduler")
        if len(self._live) >= self.slots:
            raise SchedulerError(f"no free slot for {name}: all {self.slots} are in use")
        number = int(env[trial_env.TRIAL_ID])
        attempt = self.attempts.get(number, 0) + 1
        self.attempts[number] = attempt
        output = ""
        if self.output_dir:
            jobs = Path(self.output_dir) / "jobs"
            jobs.mkdir(parents=True, exist_ok=True)
            jobfiles.retire_attempt(jobs, name)
            output = str(jobfiles.output_path(jobs, name))
        trial = _Trial(self, self._coordinator, number, attempt, dict(env), output)
        process = _Process(asyncio.get_running_loop().create_task(trial.run()))
        self._live.add(process)
        return Job(name, {"simulated": attempt, "output": output}, process)

    async def wait(self, job: Job) -> int | None:
        process: _Process = job.handle
        try:
            await asyncio.wait({process.task})
        finally:
            self._live.discard(process)
        if process.task.cancelled():
            return -(process.signal or signal.SIGKILL)
        error = process.task.exception()
        if error is None:
            return process.task.result()
        if job.info.get("output"):
            text = "".join(traceback.format_exception(error))
            with open(job.info["output"], "a") as out:
                out.write(text)
        return 1  # what Python exits with after an uncaught exception

    def kill(self, job: Job, force: bool = False) -> None:
        process: _Process | None = job.handle
        if process is None or process.task.done():
            return
        process.signal = signal.SIGKILL if force else signal.SIGTERM
        process.task.cancel()  # no trial script handles SIGTERM: it dies either way

    # -- checkpoints -------------------------------------------------------------------------
    def _save(self, trial: int, length: int, state: Any, root: str | None) -> str:
        """Keep a copy of ``state``; the id it is kept under, with an empty folder in ``root``.
        Copies whose folder retention has deleted are dropped."""
        if root and len(self.checkpoints) >= self._prune_at:  # now and then: it reads folders
            gone = [u for u in self.checkpoints if not os.path.isdir(os.path.join(root, u))]
            for name in gone:
                del self.checkpoints[name]
            self._prune_at = max(PRUNE_AT, 2 * len(self.checkpoints))
        name = str(uuid.uuid4())
        if root:
            os.makedirs(os.path.join(root, name))
        self.checkpoints[name] = _Saved(trial, length, self.copy_state(state))
        return name


class _Trial:
    """One attempt of one trial: a Core-API script's life, on the simulated clock."""

    def __init__(
        self,
        scheduler: SimulatedScheduler,
        coordinator: Coordinator,
        number: int,
        attempt: int,
        env: dict[str, str],
        output: str,
    ) -> None:
        from ridgeline.engine import server  # loaded with the coordinator

        self.scheduler = scheduler
        self.coordinator = coordinator
        self.number = number
        self.attempt = attempt
        self.token = env.get(trial_env.TOKEN, "")
        self.env = env
        self.output = output
        self._admit = server.admit_trial
        self._refused = server.Refused

    def admit(self) -> None:
        """The check an HTTP request of this attempt passes (it counts as word from it)."""
        principal = self.coordinator.credentials.identify(self.token)
        if principal is None:
            raise self._refused("wrong or expired token", 401)
        self._admit(self.coordinator, self.number, principal)

    async def run(self) -> int:
        self.admit()
        params = dict(self.coordinator.trial_view(self.number)["parameters"])
        state, length = self._restore()
        beats = asyncio.ensure_future(self._beat())
        try:
            while True:
                self.admit()
                reply = await self.coordinator.next_operation(self.number, POLL_SECONDS)
                op = reply.get("op")
                if op is None:
                    if reply.get("done"):
                        return 0
                    continue
                target = int(op["length"])
                code, state, length = await self._train(params, state, length, op["id"], target)
                if code is not None:
                    return code
        finally:
            beats.cancel()

    def _restore(self) -> tuple[Any, int]:
        """Where this attempt starts: its latest checkpoint (or its parent's), else afresh."""
        name = self.env.get(trial_env.LATEST_CHECKPOINT)
        if not name:
            return None, 0
        self.admit()
        self.coordinator.checkpoint_info(self.number, name)  # its own, or its parent's
        saved = self.scheduler.checkpoints.get(name)
        if saved is None:
            raise SchedulerError(
                f"trial {self.number}: checkpoint {name} was not saved by this scheduler"
            )
        return self.scheduler.copy_state(saved.state), saved.length

    async def _train(
        self, params: dict[str, Any], state: Any, length: int, op_id: int, target: int
    ) -> tuple[int | None, Any, int]:
        """Train one operation; (exit code or None to go on, state, length) afterwards."""
        loop = asyncio.get_running_loop()
        scheduler = self.scheduler
        record = SimulatedOperation(self.number, self.attempt, loop.time(), length, target)
        record.reached = length
        scheduler.operations.append(record)
        seconds = max(0, target - length) * scheduler.time_per_unit
        done: asyncio.Future[Any] = (
            loop.sleep(seconds, rank=self.number)  # simultaneous ends: lowest trial first
            if isinstance(loop, VirtualClockLoop)
            else asyncio.ensure_future(asyncio.sleep(seconds))
        )
        preempt = asyncio.ensure_future(self._preempted())
        try:
            await asyncio.wait({done, preempt}, return_when=asyncio.FIRST_COMPLETED)
            trained = done.done() and not done.cancelled()
        except asyncio.CancelledError:
            record.outcome = "killed"
            self._end(record, length + self._units(record, target))
            raise
        finally:
            done.cancel()
            preempt.cancel()
        if not trained:  # preempted first
            preempt.result()  # a refusal (its attempt was given up on) ends the process
            reached = length + self._units(record, target)
            if reached > length:
                _, state = scheduler.train_fn(self.number, params, state, length, reached)
                self._checkpoint(state, reached)
            self.admit()
            self.coordinator.acknowledge_preemption(self.number)
            record.outcome = "preempted"
            self._end(record, reached)
            return 0, state, reached
        code = scheduler.exits.pop((self.number, target), None)
        if code is not None:
            record.outcome = "exited"
            self._end(record, target)
            if self.output:
                with open(self.output, "a") as out:
                    out.write(f"exits with code {code} at length {target}, on cue\n")
            return code, state, length
        objective, state = scheduler.train_fn(self.number, params, state, length, target)
        self._checkpoint(state, target)
        record.outcome, record.objective = "completed", float(objective)
        self._end(record, target)
        self.admit()
        self.coordinator.complete_operation(self.number, op_id, objective)
        return None, state, target

    def _units(self, record: SimulatedOperation, target: int) -> int:
        """Whole units trained since the operation started (a unit is never half saved)."""
        elapsed = asyncio.get_running_loop().time() - record.start
        units = math.floor(elapsed / self.scheduler.time_per_unit + 1e-9)
        return max(0, min(target - record.from_length, units))

    @staticmethod
    def _end(record: SimulatedOperation, reached: int) -> None:
        record.end = asyncio.get_running_loop().time()
        record.reached = reached

    def _checkpoint(self, state: Any, length: int) -> None:
        root = self.env.get(trial_env.CHECKPOINT_STORAGE)
        name = self.scheduler._save(self.number, length, state, root)
        self.admit()
        self.coordinator.register_checkpoint(self.number, name, length, {"steps_completed": length})

    async def _preempted(self) -> bool:
        """Returns once the coordinator wants this trial to checkpoint and exit."""
        while True:
            self.admit()
            if await self.coordinator.wait_preemption(self.number, POLL_SECONDS):
                return True

    async def _beat(self) -> None:
        """The trial client's heartbeat, while the process lives."""
        try:
            seconds = float(self.env.get(trial_env.HEARTBEAT_SECONDS, ""))
        except ValueError:
            return
        if not 0 < seconds < math.inf:
            return
        while True:
            await asyncio.sleep(seconds / BEATS_PER_INTERVAL)
            try:
                self.admit()
            except self._refused:
                return  # the attempt is void: nobody listens to its beats any more
