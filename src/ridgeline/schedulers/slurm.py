"""Trials as SLURM batch jobs, through ``sbatch``, ``squeue``, ``scancel`` and ``scontrol``.

Each attempt gets a batch script ``jobs/<name>.sbatch`` (0700, in the private jobs folder): it
sources the ``environment`` script if one was given, then runs the trial under the exit-status
wrapper of ``schedulers/exitstatus.py``, so ``jobs/<name>.exit`` holds the trial's real exit
code whatever SLURM makes of it. The trial's variables (its token among them) reach the job
through ``sbatch``'s own environment, which SLURM hands to the job (``--export=ALL``): never
on a command line, never in a file of ours.

The CLI tools never run on the event loop: ``sbatch`` and ``scancel`` run in worker threads
(``submit`` returns at once; the job id follows), and one poller per event loop asks a single
``squeue`` about all the jobs being waited for, every 0.25 s while something changes, backing
off to every 3 s while nothing does. The job id is kept in ``jobs/<name>.jobid``, so a
coordinator started later re-attaches to jobs that are still queued or running.

How a job ended: the wrapper's record first; without one, SLURM's final state: CANCELLED is
a kill (SIGTERM, or SIGKILL when this scheduler forced it), FAILED and the other end states
take ``scontrol``'s exit code, and a job that left ``squeue`` without any record vanished and
counts as killed: none of these is a success. COMPLETED without a record (the environment
script exited before the trial ran, or the record could not be written) is unknown, which
counts as a success only for a trial that reported metrics.
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ridgeline.errors import SchedulerError
from ridgeline.private import private_dir
from ridgeline.schedulers import exitstatus, jobfiles, slurmcli
from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.schedulers.cluster import check_sherpa_arguments

__all__ = ["SLURMScheduler"]

log = logging.getLogger(__name__)

POLL_MIN_S = 0.25
POLL_MAX_S = 3.0
_TOOLS = ("sbatch", "squeue", "scancel", "scontrol")


class _Submission:
    """A job's private state: its ``sbatch`` call (a future of the job id) and whether this
    scheduler force-killed it."""

    def __init__(self, submitted: concurrent.futures.Future[str]) -> None:
        self.submitted = submitted
        self.forced = False


class _Ended:
    """The handle of a job that had ended before it was re-attached."""

    def __init__(self, code: int | None) -> None:
        self.code = code


def _done(job_id: str) -> concurrent.futures.Future[str]:
    future: concurrent.futures.Future[str] = concurrent.futures.Future()
    future.set_result(job_id)
    return future


def _read_job_id(path: str | None) -> str | None:
    if not path:
        return None
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return text if text.isdigit() else None


class SLURMScheduler(Scheduler):
    """SHERPA's SLURM scheduler, for real: each trial is one ``sbatch`` job.

    ``submit_options`` go to ``sbatch`` as they would on its command line (e.g.
    ``"-p gpu --time=10 --comment=search"``; they come after ridgeline's own options, so
    ``-J``/``--job-name`` or ``--error`` override them). ``environment`` is a script the job
    sources before the trial starts (e.g. one that loads modules or activates a virtualenv);
    "" for none. ``gpus_per_trial`` asks each job for that many GPUs (``--gres=gpu:N``).
    Output goes to ``<output_dir>/jobs/<name>.out``, as with ``LocalScheduler``; the folder
    must be one the compute nodes see.
    """

    def __init__(
        self,
        submit_options: str = "",
        environment: str = "",
        output_dir: str = "",
        gpus_per_trial: int = 0,
    ) -> None:
        check_sherpa_arguments(type(self).__name__, submit_options, environment)
        if isinstance(gpus_per_trial, bool) or not isinstance(gpus_per_trial, int):
            raise SchedulerError(
                f"SLURMScheduler gpus_per_trial must be a whole number, got {gpus_per_trial!r}"
            )
        if gpus_per_trial < 0:
            raise SchedulerError(
                f"SLURMScheduler gpus_per_trial must be >= 0, got {gpus_per_trial}"
            )
        try:
            self._options = shlex.split(submit_options)
        except ValueError as exc:
            raise SchedulerError(
                f"SLURMScheduler submit_options {submit_options!r} cannot be split like a shell "
                f"command line: {exc}"
            ) from exc
        self.submit_options = submit_options
        self.environment = environment
        self.output_dir = str(output_dir)
        self.gpus_per_trial = gpus_per_trial
        self._submitter: concurrent.futures.ThreadPoolExecutor | None = None
        self._canceller: concurrent.futures.ThreadPoolExecutor | None = None
        self._waiters: dict[str, list[asyncio.Future[str | None]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._nudge: asyncio.Event | None = None
        self._lock = threading.Lock()  # guards _canceller, which sbatch threads may start
        self._sherpa_jobs: dict[str, Job] = {}  # jobs started through submit_job, by job id

    # -- checks and the commands it builds ---------------------------------------------------

    def check(self) -> None:
        """SLURM's tools are on PATH, the environment script exists, and ``sbatch`` accepts
        the submit options (``sbatch --test-only``, which submits nothing)."""
        missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
        if missing:
            raise SchedulerError(
                f"SLURMScheduler needs SLURM's command-line tools, but {', '.join(missing)} "
                f"is not on PATH; run on a host of the cluster (scripts/ensure-slurm.sh sets "
                f"up a single-node SLURM for tests)"
            )
        if self.environment and not Path(self.environment).is_file():
            raise SchedulerError(
                f"SLURMScheduler environment {self.environment!r}: no such file (it is the "
                f"script each job sources before the trial; '' for none)"
            )
        argv = ["sbatch", "--test-only", *self._gres(), *self._options, "--wrap=true"]
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=slurmcli.TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchedulerError(f"SLURMScheduler: sbatch did not answer: {exc}") from exc
        if result.returncode != 0:
            raise SchedulerError(
                f"SLURMScheduler: sbatch refuses submit_options {self.submit_options!r}: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def _gres(self) -> list[str]:
        return [f"--gres=gpu:{self.gpus_per_trial}"] if self.gpus_per_trial else []

    def sbatch_argv(
        self, name: str, script: str | os.PathLike[str], output: str, cwd: str
    ) -> list[str]:
        """The ``sbatch`` command line of one job (no variable values on it, only names)."""
        return [
            "sbatch",
            "--parsable",
            "--export=ALL",
            f"--job-name={name}",
            f"--output={output}",
            f"--chdir={cwd}",
            *self._gres(),
            *self._options,
            str(script),
        ]

    def batch_script(self, command: Sequence[str], exit_file: str | os.PathLike[str]) -> str:
        """The job's script: source ``environment``, then the trial under the exit wrapper."""
        lines = ["#!/bin/bash", "# A ridgeline trial, submitted by SLURMScheduler."]
        if self.environment:
            lines.append(f". {shlex.quote(str(Path(self.environment).resolve()))}")
        lines.append(f"exec {shlex.join(exitstatus.wrap(list(command), exit_file))}")
        return "\n".join(lines) + "\n"

    # -- submitting ----------------------------------------------------------------------------

    def submit(
        self, command: Sequence[str], env: Mapping[str, str], name: str, cwd: str | None = None
    ) -> Job:
        jobs_dir = private_dir(Path(self.output_dir or ".").resolve() / "jobs")
        jobfiles.retire_attempt(jobs_dir, name)
        output = jobfiles.output_path(jobs_dir, name)
        exit_file = jobfiles.exit_path(jobs_dir, name)
        script = jobs_dir / f"{name}.sbatch"
        id_file = jobs_dir / f"{name}.jobid"
        id_file.unlink(missing_ok=True)
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.batch_script(command, exit_file))
        os.chmod(script, 0o700)
        argv = self.sbatch_argv(name, script, str(output), str(Path(cwd or os.getcwd()).resolve()))
        if self._submitter is None:
            self._submitter = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="sbatch")
        submitted = self._submitter.submit(_sbatch, argv, _job_env(env), id_file)
        if self._nudge is not None:
            self._nudge.set()  # a new job: look sooner
        info = {
            "output": str(output),
            "exit_file": str(exit_file),
            "script": str(script),
            "job_id_file": str(id_file),
        }
        return Job(name, info, _Submission(submitted))

    # -- waiting -------------------------------------------------------------------------------

    async def wait(self, job: Job) -> int | None:
        handle = job.handle
        if isinstance(handle, _Ended):
            return handle.code
        if not isinstance(handle, _Submission):
            raise SchedulerError(f"{job.name} was not submitted by this SLURMScheduler")
        try:
            job_id = await asyncio.wrap_future(handle.submitted)
        except SchedulerError as exc:
            log.error("%s could not be submitted: %s", job.name, exc)
            with open(job.info["output"], "a") as out:
                out.write(f"ridgeline: {exc}\n")
            return 1
        state = await self._until_ended(job_id)
        return await asyncio.to_thread(self._exit_code, job, job_id, state, handle.forced)

    async def _until_ended(self, job_id: str) -> str | None:
        """The job's final state from ``squeue``; None when it left ``squeue`` unseen."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
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
        """One ``squeue`` for every job waited for; faster while answers change."""
        delay, last = POLL_MIN_S, None
        while True:
            for job_id in [j for j, fs in self._waiters.items() if all(f.done() for f in fs)]:
                del self._waiters[job_id]  # only cancelled waiters left
            if not self._waiters:
                return
            ids = sorted(self._waiters, key=int)
            states = await _squeue(ids)
            if states is not None:
                for job_id in ids:
                    state = states.get(job_id)
                    if state is None or state not in slurmcli.ACTIVE:
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

    def _exit_code(self, job: Job, job_id: str, state: str | None, forced: bool) -> int | None:
        """How the job ended (see the module's docstring); runs in a thread (``scontrol``)."""
        recorded = exitstatus.read_status(job.info.get("exit_file"))
        if recorded is not None:
            return recorded
        killed = -int(signal.SIGKILL)
        if state is None:
            log.warning(
                "SLURM job %s (%s) vanished: it left squeue without recording an exit status; "
                "counted as killed",
                job_id,
                job.name,
            )
            return killed
        if state == "CANCELLED":
            return killed if forced else -int(signal.SIGTERM)
        if state == "COMPLETED":
            log.warning(
                "SLURM job %s (%s) completed without recording the trial's exit status (did "
                "the environment script exit?); its outcome is unknown",
                job_id,
                job.name,
            )
            return None
        shown = _scontrol_exit(job_id)
        code = shown[1] if shown is not None and shown[1] != 0 else killed
        log.warning("SLURM job %s (%s) ended %s (exit code %s)", job_id, job.name, state, code)
        return code

    # -- stopping ------------------------------------------------------------------------------

    def kill(self, job: Job, force: bool = False) -> None:
        """``scancel`` in a worker thread: SIGTERM to the running job (or cancel it while it
        is pending); ``force``: SIGKILL and cancel. A job still being submitted is ended as
        soon as its id is known."""
        handle = job.handle
        if not isinstance(handle, _Submission):
            return
        if force:
            handle.forced = True

        def send(submitted: concurrent.futures.Future[str]) -> None:
            if submitted.cancelled() or submitted.exception() is not None:
                return
            with self._lock:
                if self._canceller is None:
                    self._canceller = concurrent.futures.ThreadPoolExecutor(
                        1, thread_name_prefix="scancel"
                    )
                self._canceller.submit(_scancel, submitted.result(), force)

        handle.submitted.add_done_callback(send)

    # -- after a coordinator restart ------------------------------------------------------------

    def reattach(self, info: Mapping[str, Any], name: str) -> Job | None:
        """The job if SLURM still has it queued or running, or if it ended and how is known;
        None when it is gone without a trace (or was never submitted)."""
        recorded = exitstatus.read_status(info.get("exit_file"))
        job_id = _read_job_id(info.get("job_id_file"))
        if job_id is None:
            return None if recorded is None else Job(name, dict(info), _Ended(recorded))
        states = _run_squeue_sync([job_id])
        state = None if states is None else states.get(job_id)
        if states is None or (state is not None and state in slurmcli.ACTIVE):
            return Job(name, dict(info), _Submission(_done(job_id)))  # wait() polls it
        if recorded is not None:
            return Job(name, dict(info), _Ended(recorded))
        if state is None:
            return None
        job = Job(name, dict(info))
        return Job(name, dict(info), _Ended(self._exit_code(job, job_id, state, False)))

    # -- SHERPA's scheduler interface (scripts that drive a scheduler themselves) -------------

    def submit_job(
        self, command: Sequence[str] | str, env: Mapping[str, str] | None = None, job_name: str = ""
    ) -> str:
        """Submit ``command`` with this process's environment plus ``env``; returns the SLURM
        job id, which ``get_status`` and ``kill_job`` take. Waits for ``sbatch``."""
        argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        name = job_name or f"job_{len(self._sherpa_jobs) + 1}"
        job = self.submit(argv, {**os.environ, **dict(env or {})}, name)
        job_id = job.handle.submitted.result()  # raises SchedulerError when sbatch refused
        self._sherpa_jobs[job_id] = job
        return job_id

    def get_status(self, job_id: str) -> int:
        """SHERPA's ``_JobStatus`` of a job from ``submit_job`` (one ``squeue`` call): queued,
        running, finished (exit 0), killed (cancelled, or ended by a signal) or failed."""
        from ridgeline.schedulers.polling import JobStatus

        job = self._sherpa_jobs.get(str(job_id))
        if job is None:
            raise SchedulerError(f"no job {job_id!r} was started by this scheduler's submit_job")
        if not isinstance(job.handle, _Ended):
            states = _run_squeue_sync([str(job_id)])
            if states is None:
                return JobStatus.other
            state = states.get(str(job_id))
            if state == "PENDING":
                return JobStatus.queued
            if state is not None and state in slurmcli.ACTIVE:
                return JobStatus.running
            forced = isinstance(job.handle, _Submission) and job.handle.forced
            job.handle = _Ended(self._exit_code(job, str(job_id), state, forced))
        code = job.handle.code
        if code == 0:
            return JobStatus.finished
        if code is not None and code < 0:
            return JobStatus.killed
        return JobStatus.failed

    def kill_job(self, job_id: str) -> None:
        """Cancel a job from ``submit_job`` (``scancel``)."""
        job = self._sherpa_jobs.get(str(job_id))
        if job is None:
            raise SchedulerError(f"no job {job_id!r} was started by this scheduler's submit_job")
        self.kill(job, force=True)

    def close(self) -> None:
        """Wait for the ``sbatch`` and ``scancel`` calls under way; a later search may use the
        scheduler again."""
        if self._submitter is not None:
            self._submitter.shutdown(wait=True)  # may still ask for an scancel
            self._submitter = None
        with self._lock:
            canceller, self._canceller = self._canceller, None
        if canceller is not None:
            canceller.shutdown(wait=True)


# -- the tools, called from threads or as asyncio subprocesses ---------------------------------


def _job_env(env: Mapping[str, str]) -> dict[str, str]:
    """What ``sbatch`` runs with and hands to the job: the trial's variables, less the
    ``SLURM_*`` ones of a coordinator that itself runs inside a SLURM job (the trial's job
    gets its own; ``SLURM_CONF`` stays, it says which cluster to talk to)."""
    return {k: v for k, v in env.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}


def _sbatch(argv: list[str], env: dict[str, str], id_file: Path) -> str:
    """Submit; the job id, also written to ``id_file`` for re-attaching."""
    try:
        result = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=slurmcli.TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchedulerError(f"sbatch did not answer: {exc}") from exc
    if result.returncode != 0:
        raise SchedulerError(
            f"sbatch refused the job (exit code {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    job_id = result.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SchedulerError(f"sbatch answered {result.stdout.strip()!r}, not a job id")
    partial = id_file.with_name(id_file.name + ".partial")
    partial.write_text(job_id + "\n")
    os.replace(partial, id_file)
    return job_id


def _scancel(job_id: str, force: bool) -> None:
    for argv in slurmcli.scancel_argv(job_id, force):
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=slurmcli.TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("%s failed: %s", shlex.join(argv), exc)
            continue
        if result.returncode != 0:
            log.debug("%s: %s", shlex.join(argv), result.stderr.strip())


async def _squeue(job_ids: Sequence[str]) -> dict[str, str] | None:
    """``{id: state}`` of the jobs squeue still knows; None when squeue itself failed."""
    argv = slurmcli.squeue_argv(job_ids)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), slurmcli.TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    except (OSError, TimeoutError) as exc:
        log.warning("squeue did not answer: %s", exc)
        return None
    result = subprocess.CompletedProcess(argv, process.returncode or 0, out.decode(), err.decode())
    return _squeue_result(result)


def _run_squeue_sync(job_ids: Sequence[str]) -> dict[str, str] | None:
    argv = slurmcli.squeue_argv(job_ids)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=slurmcli.TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("squeue did not answer: %s", exc)
        return None
    return _squeue_result(result)


def _squeue_result(result: subprocess.CompletedProcess[str]) -> dict[str, str] | None:
    if slurmcli.squeue_unknown_ids(result):
        return {}
    if result.returncode != 0:
        log.warning("squeue failed (exit code %d): %s", result.returncode, result.stderr.strip())
        return None
    return slurmcli.parse_squeue(result.stdout)


def _scontrol_exit(job_id: str) -> tuple[str, int] | None:
    try:
        result = subprocess.run(
            ["scontrol", "show", "job", job_id],
            capture_output=True,
            text=True,
            timeout=slurmcli.TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return slurmcli.parse_exit_code(result.stdout) if result.returncode == 0 else None
