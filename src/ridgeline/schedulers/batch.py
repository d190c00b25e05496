"""What the batch-system schedulers (SLURM, Grid Engine) share: each trial attempt is one
batch job whose script (``jobs/<name>.<suffix>``, 0700, in the private jobs folder) sources
the ``environment`` script and runs the trial under the exit-status wrapper of
``schedulers/exitstatus.py``, so ``jobs/<name>.exit`` holds the trial's real exit code
whatever the batch system makes of it.

The command-line tools never run on the event loop: the submit tool and the cancel tool run in
worker threads (``submit`` returns at once; the job id follows), and one poller per event loop
asks the batch system about all the jobs being waited for in one call, every 0.25 s while
something changes, backing off to every 3 s while nothing does. A job need not wait for that
poll: once the wrapper has recorded the exit status, the job script tells the coordinator
(``schedulers/exitnotice.py``), which hands it to ``exited``; the wait ends at once when the
exit file confirms it. Jobs that never call
(cancelled, lost, or without a route back) are still found by the poll. The job id is kept in
``jobs/<name>.jobid``, so a coordinator started later re-attaches to jobs still queued or
running. A subclass says how to call its tools: the ``_``-prefixed hooks below.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ridgeline.errors import SchedulerError
from ridgeline.private import private_dir
from ridgeline.schedulers import exitstatus, jobfiles
from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.schedulers.cluster import check_gpus_per_trial, check_sherpa_arguments
from ridgeline.schedulers.polling import JobStatus
from ridgeline.schedulers.workerpool import DEFAULT_IDLE_S, Task, WorkerPool

__all__ = [
    "BatchScheduler",
    "cancel_recorded_job",
    "run_tool",
    "run_tool_async",
    "said",
    "submit_job",
    "write_job_id",
]

log = logging.getLogger(__name__)

POLL_MIN_S = 0.25
POLL_MAX_S = 3.0
#: What a waiter is told when the job itself said it ended; no batch system has this state.
_SAID_ENDED = "(the job said it ended)"
#: How long the answer to a job's word waits for the coordinator to submit the trial after it.
SETTLE_S = 2.0


class _Submission:
    """A job's private state: its submission (a future of the job id) and whether this
    scheduler asked it to end (``killed``) or force-killed it (``forced``)."""

    def __init__(self, submitted: concurrent.futures.Future[str]) -> None:
        self.submitted = submitted
        self.killed = False
        self.forced = False
        self.said: int | None = None  # the status the job's script reported, if it did
        self.waiter: asyncio.Future[str | None] | None = None
        self.handled: asyncio.Future[None] | None = None  # set once the coordinator has its end
        self.task: Task | None = None  # in worker-job mode: the trial as the workers see it


class _StoppedBeforeStart(SchedulerError):
    """A trial stopped while it waited for a worker; ``code`` is how it counts as ended."""

    def __init__(self, code: int) -> None:
        super().__init__(f"stopped before a worker took it (signal {-code})")
        self.code = code


class _Ended:
    """The handle of a job that had ended before it was re-attached."""

    def __init__(self, code: int | None) -> None:
        self.code = code


def _settle(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _done(job_id: str) -> concurrent.futures.Future[str]:
    future: concurrent.futures.Future[str] = concurrent.futures.Future()
    future.set_result(job_id)
    return future


def write_job_id(id_file: Path, job_id: str) -> None:
    """Keep the job id for re-attaching (atomically: a reader sees all of it or nothing)."""
    partial = id_file.with_name(id_file.name + ".partial")
    partial.write_text(job_id + "\n")
    os.replace(partial, id_file)


def _call(
    argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one of the batch system's tools, stdin closed, its output kept as text. OSError
    when it cannot run, ``TimeoutExpired`` when it does not answer within ``timeout``."""
    return subprocess.run(
        list(argv),
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def said(result: subprocess.CompletedProcess[str]) -> str:
    """What a tool said about its failure: its stderr, else its stdout."""
    return result.stderr.strip() or result.stdout.strip()


def run_tool(
    argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str] | None:
    """Run one of the batch system's tools; None (logged) when it cannot run or does not
    answer within ``timeout``."""
    try:
        return _call(argv, timeout, env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s did not answer: %s", shlex.join(argv), exc)
        return None


def submit_job(
    argv: list[str], env: Mapping[str, str], timeout: float, parse: Callable[[str], str | None]
) -> str:
    """Run the submit tool ``argv`` (in a worker thread); the job id ``parse`` finds in its
    answer. ``SchedulerError`` when the tool does not answer, refuses the job or answers
    something else."""
    tool = argv[0]
    try:
        result = _call(argv, timeout, env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchedulerError(f"{tool} did not answer: {exc}") from exc
    if result.returncode != 0:
        raise SchedulerError(
            f"{tool} refused the job (exit code {result.returncode}): {said(result)}"
        )
    job_id = parse(result.stdout)
    if job_id is None:
        raise SchedulerError(f"{tool} answered {result.stdout.strip()!r}, not a job id")
    return job_id


async def run_tool_async(
    argv: Sequence[str], timeout: float
) -> subprocess.CompletedProcess[str] | None:
    """``run_tool`` without blocking the event loop (status polls run there)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    except (OSError, TimeoutError) as exc:
        log.warning("%s did not answer: %s", shlex.join(argv), exc)
        return None
    return subprocess.CompletedProcess(
        list(argv), process.returncode or 0, out.decode(), err.decode()
    )


class BatchScheduler(Scheduler):
    """A scheduler whose jobs go through a batch system's command-line tools."""

    #: The batch system's name, for messages; the job script's file suffix.
    system = "batch"
    script_suffix = ".job"

    def __init__(
        self,
        submit_options: str = "",
        environment: str = "",
        output_dir: str = "",
        gpus_per_trial: int = 0,
    ) -> None:
        cls = type(self).__name__
        check_sherpa_arguments(cls, submit_options, environment)
        self.gpus_per_trial = check_gpus_per_trial(cls, gpus_per_trial)
        try:
            self._options = shlex.split(submit_options)
        except ValueError as exc:
            raise SchedulerError(
                f"{cls} submit_options {submit_options!r} cannot be split like a shell "
                f"command line: {exc}"
            ) from exc
        self.submit_options = submit_options
        self.environment = environment
        self.output_dir = str(output_dir)
        self._submitter: concurrent.futures.ThreadPoolExecutor | None = None
        self._canceller: concurrent.futures.ThreadPoolExecutor | None = None
        self._waiters: dict[str, list[asyncio.Future[str | None]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._nudge: asyncio.Event | None = None
        self._lock = threading.Lock()  # guards _canceller, which submit threads may start
        self._sherpa_jobs: dict[str, Job] = {}  # jobs started through submit_job, by job id
        self._in_flight: set[concurrent.futures.Future[str]] = set()  # submit tools running
        #: Worker-job mode (``schedulers/workerpool.py``): trials go to long-lived jobs.
        self.worker_jobs = False
        self.worker_idle_seconds = DEFAULT_IDLE_S
        self.workers: WorkerPool | None = None

    # -- hooks ---------------------------------------------------------------------------------

    def _check_setup(
        self, tools: Sequence[str], setup_script: str, dry_run: list[str], timeout: float
    ) -> None:
        """The backend's tools are on PATH, the environment script exists, and the
        submission's dry run (``dry_run``, which submits nothing) accepts the submit options:
        so a mistake is refused before any trial runs."""
        name = type(self).__name__
        missing = [tool for tool in tools if shutil.which(tool) is None]
        if missing:
            raise SchedulerError(
                f"{name} needs {self.system}'s command-line tools, but {', '.join(missing)} "
                f"is not on PATH; run on a host of the cluster ({setup_script} sets up a "
                f"single-node {self.system} for tests)"
            )
        self._check_environment()
        tool = dry_run[0]
        try:
            result = _call(dry_run, timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchedulerError(f"{name}: {tool} did not answer: {exc}") from exc
        if result.returncode != 0:
            raise SchedulerError(
                f"{name}: {tool} refuses submit_options {self.submit_options!r}: {said(result)}"
            )

    def _environment_line(self) -> list[str]:
        if not self.environment:
            return []
        return [f". {shlex.quote(str(Path(self.environment).resolve()))}"]

    def _check_environment(self) -> None:
        if self.environment and not Path(self.environment).is_file():
            raise SchedulerError(
                f"{type(self).__name__} environment {self.environment!r}: no such file (it is "
                f"the script each job sources before the trial; '' for none)"
            )

    def _prepare(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        jobs_dir: Path,
        name: str,
        cwd: str,
    ) -> tuple[list[str], dict[str, str], str]:
        """Write the job's files; the submit argv, the submit tool's environment and the
        script's path."""
        raise NotImplementedError

    def _submit_now(self, argv: list[str], env: dict[str, str]) -> str:
        """Run the submit tool (in a worker thread); the job id."""
        raise NotImplementedError

    def _prepare_worker(
        self, env: Mapping[str, str], jobs_dir: Path, name: str
    ) -> tuple[list[str], dict[str, str]]:
        """Write a worker job's script (``schedulers/workerpool.py``); the submit argv and the
        submit tool's environment."""
        raise SchedulerError(f"{type(self).__name__} cannot run worker jobs")

    async def _states(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        """``{id: state}`` of the jobs the batch system still lists; None when it failed."""
        raise NotImplementedError

    def _states_sync(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        raise NotImplementedError

    def _is_active(self, state: str) -> bool:
        """Whether a listed job is still queued or running (else it ended in that state)."""
        raise NotImplementedError

    def _is_queued(self, state: str) -> bool:
        raise NotImplementedError

    def _cancel_now(self, job_id: str, force: bool) -> None:
        """Run the cancel tool (in a worker thread)."""
        raise NotImplementedError

    def _end_code(
        self, job: Job, job_id: str, state: str | None, handle: _Submission | None
    ) -> int | None:
        """How a job without an exit record ended (runs in a thread); ``state`` None: the
        batch system no longer lists it."""
        raise NotImplementedError

    # -- submitting ----------------------------------------------------------------------------

    def write_script(self, path: Path, text: str) -> None:
        """A job's private file: owner-only from its creation on."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o700)

    def submit(
        self, command: Sequence[str], env: Mapping[str, str], name: str, cwd: str | None = None
    ) -> Job:
        jobs_dir = self._jobs_dir()
        jobfiles.retire_attempt(jobs_dir, name)
        id_file = jobs_dir / f"{name}.jobid"
        id_file.unlink(missing_ok=True)
        where = str(Path(cwd or os.getcwd()).resolve())
        info = {
            "output": str(jobfiles.output_path(jobs_dir, name)),
            "exit_file": str(jobfiles.exit_path(jobs_dir, name)),
            "script": "",
            "job_id_file": str(id_file),
            "system": self.system,  # whose tool ends it without a coordinator
        }
        if self.workers is not None:
            return self._to_worker(command, env, name, where, info)
        argv, tool_env, info["script"] = self._prepare(command, env, jobs_dir, name, where)
        submitted = self._in_thread(self._submit_and_keep, argv, tool_env, id_file)
        return Job(name, info, _Submission(submitted))

    def _jobs_dir(self) -> Path:
        return private_dir(Path(self.output_dir or ".").resolve() / "jobs")

    def _in_thread(self, submit: Callable[..., str], *args: Any) -> concurrent.futures.Future[str]:
        """Run a submission on the submit threads; the future of its job id."""
        if self._submitter is None:
            self._submitter = concurrent.futures.ThreadPoolExecutor(
                2, thread_name_prefix=f"{self.system}-submit"
            )
        submitted = self._submitter.submit(submit, *args)
        self._in_flight.add(submitted)
        submitted.add_done_callback(self._in_flight.discard)
        if self._nudge is not None:
            self._nudge.set()  # a new job: look sooner
        return submitted

    # -- worker jobs ---------------------------------------------------------------------------

    def attach(self, coordinator: Any) -> None:
        """In worker-job mode, a pool of workers for this coordinator's trials."""
        if self.worker_jobs:
            self.workers = WorkerPool(
                self._start_worker, self._cancel_soon, self._until_ended, self.worker_idle_seconds
            )

    def detach(self, abandon: bool) -> None:
        if self.workers is not None:
            self.workers.close(abandon)
            self.workers = None

    def _start_worker(self, name: str, env: dict[str, str]) -> concurrent.futures.Future[str]:
        argv, tool_env = self._prepare_worker(env, self._jobs_dir(), name)
        return self._in_thread(self._submit_now, argv, tool_env)

    def _to_worker(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        name: str,
        cwd: str,
        info: dict[str, Any],
    ) -> Job:
        """A trial for the worker pool: ``submitted`` gets the id of the worker's job."""
        assert self.workers is not None
        submitted: concurrent.futures.Future[str] = concurrent.futures.Future()
        handle = _Submission(submitted)
        id_file = Path(info["job_id_file"])

        def claimed(job_id: str) -> None:
            write_job_id(id_file, job_id)
            if not submitted.done():
                submitted.set_result(job_id)

        def lost() -> None:
            if not submitted.done():
                submitted.set_exception(SchedulerError("the hand-over to a worker was lost"))
            elif handle.waiter is not None and not handle.waiter.done():
                handle.waiter.set_result(None)  # counts as a job that vanished

        handle.task = Task(
            name, list(command), dict(env), cwd, info["exit_file"], info["output"],
            submitted, claimed, lost,
        )  # fmt: skip
        self.workers.add(handle.task)
        return Job(name, info, handle)

    def _cancel_soon(self, job_id: str, force: bool = False) -> None:
        with self._lock:
            if self._canceller is None:
                self._canceller = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix=f"{self.system}-cancel"
                )
            self._canceller.submit(self._cancel_now, job_id, force)

    def _submit_and_keep(self, argv: list[str], env: dict[str, str], id_file: Path) -> str:
        job_id = self._submit_now(argv, env)
        write_job_id(id_file, job_id)
        return job_id

    # -- waiting -------------------------------------------------------------------------------

    async def wait(self, job: Job) -> int | None:
        handle = job.handle
        if isinstance(handle, _Ended):
            return handle.code
        if not isinstance(handle, _Submission):
            raise SchedulerError(f"{job.name} was not submitted by this {type(self).__name__}")
        try:
            job_id = await asyncio.wrap_future(handle.submitted)
        except _StoppedBeforeStart as exc:
            return exc.code
        except SchedulerError as exc:
            log.error("%s could not be submitted: %s", job.name, exc)
            with open(job.info["output"], "a") as out:
                out.write(f"ridgeline: {exc}\n")
            return 1
        while True:
            state = await self._until_ended(job_id, handle)
            if state != _SAID_ENDED:
                return await asyncio.to_thread(self._exit_code, job, job_id, state, handle)
            recorded = await asyncio.to_thread(exitstatus.read_status, job.info.get("exit_file"))
            if recorded is not None:
                if handle.said is not None and exitstatus.decode(handle.said) != recorded:
                    log.warning(
                        "%s said it exited with %s, but its exit file records %s; the file counts",
                        job.name,
                        handle.said,
                        recorded,
                    )
                # Runs after the caller has handled this end (the rest of its step).
                asyncio.get_running_loop().call_soon(_settle, handle.handled)
                return recorded
            log.debug("%s said it ended, but no exit status is recorded; polling", job.name)
            handle.said = None  # unconfirmed: from here on only the poll tells
            _settle(handle.handled)

    async def exited(self, job: Job, status: int) -> None:
        """The job's script says the trial ended: stop waiting for the next poll. Its word
        counts only once the exit file confirms it (``wait`` reads that); otherwise the
        poll goes on.

        Returns once the coordinator has handled the end and the submissions it made then have
        reached the batch system (at most ``SETTLE_S`` each): the job ends after this answer,
        so its successor is queued before its end, and SLURM's scheduling pass at a job's end
        starts the successor at once instead of at its next periodic pass (up to 1 s later)."""
        handle = job.handle
        if not isinstance(handle, _Submission):
            return
        handled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handle.handled = handled
        handle.said = status
        if self.workers is not None and handle.task is not None:
            self.workers.trial_ended(handle.task, worker_leaves=handle.killed)
        if handle.waiter is not None and not handle.waiter.done():
            handle.waiter.set_result(_SAID_ENDED)
        done, _ = await asyncio.wait({handled}, timeout=SETTLE_S)
        pending = [asyncio.wrap_future(f) for f in list(self._in_flight)]
        if done and pending:
            await asyncio.wait(pending, timeout=SETTLE_S)

    async def _until_ended(self, job_id: str, handle: _Submission | None = None) -> str | None:
        """The job's final state as listed; None when it left the listing unseen;
        ``_SAID_ENDED`` when the job said it ended (``exited``) before the poll saw it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
        if handle is not None:
            if handle.said is not None:  # it said so before this wait began
                return _SAID_ENDED
            handle.waiter = future
        self._waiters.setdefault(job_id, []).append(future)
        poller = self._poller
        if poller is None or poller.done() or poller.get_loop() is not loop:
            self._nudge = asyncio.Event()
            self._poller = loop.create_task(self._poll(self._nudge))
        else:
            assert self._nudge is not None
            self._nudge.set()
        return await future

    async def _poll(self, nudge: asyncio.Event) -> None:
        """One listing call for every job waited for; faster while answers change."""
        delay, last = POLL_MIN_S, None
        while True:
            for job_id in [j for j, fs in self._waiters.items() if all(f.done() for f in fs)]:
                del self._waiters[job_id]  # only cancelled waiters left
            if not self._waiters:
                return
            ids = sorted(self._waiters, key=int)
            states = await self._states(ids)
            if states is not None:
                for job_id in ids:
                    state = states.get(job_id)
                    if state is None or not self._is_active(state):
                        for future in self._waiters.pop(job_id, []):
                            if not future.done():
                                future.set_result(state)
            delay = POLL_MIN_S if states != last else min(delay * 1.5, POLL_MAX_S)
            last = states
            if not self._waiters:
                return
            nudge.clear()
            try:
                await asyncio.wait_for(nudge.wait(), delay)
                delay = POLL_MIN_S
            except TimeoutError:
                pass

    def _exit_code(
        self, job: Job, job_id: str, state: str | None, handle: _Submission | None
    ) -> int | None:
        recorded = exitstatus.read_status(job.info.get("exit_file"))
        if recorded is not None:
            return recorded
        return self._end_code(job, job_id, state, handle)

    # -- stopping ------------------------------------------------------------------------------

    def kill(self, job: Job, force: bool = False) -> None:
        """The cancel tool in a worker thread; a job still being submitted is ended as soon as
        its id is known."""
        handle = job.handle
        if not isinstance(handle, _Submission):
            return
        handle.killed = True
        if force:
            handle.forced = True
        if self.workers is not None and handle.task is not None:
            self._stop_in_worker(handle, force)
            return

        def send(submitted: concurrent.futures.Future[str]) -> None:
            if submitted.cancelled() or submitted.exception() is not None:
                return
            self._cancel_soon(submitted.result(), force)

        handle.submitted.add_done_callback(send)

    def _stop_in_worker(self, handle: _Submission, force: bool) -> None:
        """A trial waiting for a worker ends there; one a worker runs ends with its worker's
        job (the batch system's cancel signals every process of it: the worker records the
        trial's end, reports it and leaves)."""
        assert self.workers is not None and handle.task is not None
        if self.workers.remove(handle.task):
            stopped = -int(signal.SIGKILL if force else signal.SIGTERM)
            if not handle.submitted.done():
                handle.submitted.set_exception(_StoppedBeforeStart(stopped))
            return
        self.workers.stop_worker_of(handle.task, force)

    def cancel(self, job_id: str, force: bool = True) -> None:
        """Cancel one of this batch system's jobs now (waits for the cancel tool)."""
        self._cancel_now(job_id, force)

    # -- after a coordinator restart ------------------------------------------------------------

    def reattach(self, info: Mapping[str, Any], name: str) -> Job | None:
        """The job if the batch system still has it queued or running, or if it ended and how
        is known; None when it is gone without a trace (or was never submitted)."""
        recorded = exitstatus.read_status(info.get("exit_file"))
        job_id = jobfiles.read_digits(info.get("job_id_file"))
        if job_id is None:
            return None if recorded is None else Job(name, dict(info), _Ended(recorded))
        states = self._states_sync([job_id])
        state = None if states is None else states.get(job_id)
        if states is None or (state is not None and self._is_active(state)):
            return Job(name, dict(info), _Submission(_done(job_id)))  # wait() polls it
        if recorded is not None:
            return Job(name, dict(info), _Ended(recorded))
        if state is None:
            return None
        job = Job(name, dict(info))
        return Job(name, dict(info), _Ended(self._exit_code(job, job_id, state, None)))

    # -- SHERPA's scheduler interface (scripts that drive a scheduler themselves) -------------

    def submit_job(
        self, command: Sequence[str] | str, env: Mapping[str, str] | None = None, job_name: str = ""
    ) -> str:
        """Submit ``command`` with this process's environment plus ``env``; returns the job
        id, which ``get_status`` and ``kill_job`` take. Waits for the submit tool."""
        argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        name = job_name or f"job_{len(self._sherpa_jobs) + 1}"
        job = self.submit(argv, {**os.environ, **dict(env or {})}, name)
        job_id = job.handle.submitted.result()  # raises SchedulerError when it was refused
        self._sherpa_jobs[job_id] = job
        return job_id

    def get_status(self, job_id: str) -> int:
        """SHERPA's ``_JobStatus`` of a job from ``submit_job`` (one listing call): queued,
        running, finished (exit 0), killed (cancelled, or ended by a signal) or failed."""
        job = self._sherpa_jobs.get(str(job_id))
        if job is None:
            raise SchedulerError(f"no job {job_id!r} was started by this scheduler's submit_job")
        if not isinstance(job.handle, _Ended):
            states = self._states_sync([str(job_id)])
            if states is None:
                return JobStatus.other
            state = states.get(str(job_id))
            if state is not None and self._is_active(state):
                return JobStatus.queued if self._is_queued(state) else JobStatus.running
            handle = job.handle if isinstance(job.handle, _Submission) else None
            job.handle = _Ended(self._exit_code(job, str(job_id), state, handle))
        code = job.handle.code
        if code == 0:
            return JobStatus.finished
        if code is not None and code < 0:
            return JobStatus.killed
        return JobStatus.failed

    def kill_job(self, job_id: str) -> None:
        """Cancel a job from ``submit_job``."""
        job = self._sherpa_jobs.get(str(job_id))
        if job is None:
            raise SchedulerError(f"no job {job_id!r} was started by this scheduler's submit_job")
        self.kill(job, force=True)

    def close(self) -> None:
        """Wait for the submit and cancel calls under way; a later search may use the
        scheduler again."""
        if self._submitter is not None:
            self._submitter.shutdown(wait=True)  # may still ask for a cancel
            self._submitter = None
        with self._lock:
            canceller, self._canceller = self._canceller, None
        if canceller is not None:
            canceller.shutdown(wait=True)


def cancel_recorded_job(info: Mapping[str, Any]) -> str | None:
    """Cancel the batch job a trial's stored job ``info`` names (its id kept in
    ``job_id_file``), for a coordinator that cannot: ``"<system> job <id>"``, or None when
    ``info`` names no batch job. Used by ``experiment kill`` when the coordinator is gone."""
    job_id = jobfiles.read_digits(info.get("job_id_file"))
    if job_id is None:
        return None
    system = info.get("system") or (
        "SGE" if str(info.get("script", "")).endswith(".sge") else "SLURM"
    )
    from ridgeline import schedulers  # lazy: the backends import this module

    scheduler = schedulers.SGEScheduler() if system == "SGE" else schedulers.SLURMScheduler()
    scheduler.cancel(job_id, force=True)
    return f"{scheduler.system} job {job_id}"
