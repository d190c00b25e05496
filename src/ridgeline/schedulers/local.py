"""Trial processes on this machine, with optional GPU (or any resource) slots."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ridgeline.errors import SchedulerError
from ridgeline.schedulers import exitstatus, jobfiles
from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.schedulers.polling import JobStatus
from ridgeline.trial import env as trial_env


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of a live ``pid`` (clock ticks since boot), which tells a reused
    pid apart; None when no such process runs (a zombie has ended: it only awaits reaping)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def gpu_ids() -> list[str]:
    """This machine's NVIDIA GPU indices (``RIDGELINE_GPUS=0,1`` overrides; [] without any)."""
    override = os.environ.get("RIDGELINE_GPUS")
    if override is not None:
        return [g.strip() for g in override.split(",") if g.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip().isdigit()]


class LocalScheduler(Scheduler):
    """Runs each trial as a local process in its own session.

    ``submit_options`` prefixes the command (e.g. ``"nice -n 10"``). With ``resources`` (e.g.
    GPU ids ``[0, 1]``; repeat an entry to share it) each trial gets one entry as
    ``SHERPA_RESOURCE`` and ``CUDA_VISIBLE_DEVICES``, and no more trials run at once than
    there are entries. Output goes to ``<output_dir>/jobs/<name>.out`` (an earlier attempt's
    to ``<name>.attempt<k>.out``), the exit status to ``<name>.exit`` through a tiny shell
    wrapper (``schedulers/exitstatus.py``), so that it is known after a coordinator restart.
    """

    def __init__(
        self,
        submit_options: str = "",
        output_dir: str = "",
        resources: Sequence[Any] | None = None,
    ) -> None:
        if not isinstance(submit_options, str):
            raise SchedulerError(
                f"LocalScheduler submit_options must be a string such as 'nice -n 10', "
                f"got {submit_options!r}"
            )
        self.submit_options = submit_options
        self.output_dir = str(output_dir)
        if resources is not None:
            if isinstance(resources, str | bytes) or not isinstance(resources, Sequence):
                raise SchedulerError(
                    f"LocalScheduler resources must be a list such as [0, 1], got {resources!r}"
                )
            if len(resources) == 0:
                raise SchedulerError(
                    "LocalScheduler resources is empty: give at least one entry, or None"
                )
        self.resources = None if resources is None else [str(r) for r in resources]
        self._free = list(self.resources or [])
        self._force_killed: set[int] = set()  # pids this scheduler sent SIGKILL
        self._sherpa_jobs: dict[int, Job] = {}  # jobs started through submit_job, by pid
        self._sherpa_killed: set[int] = set()
        self.check()

    def capacity(self) -> int | None:
        return None if self.resources is None else len(self.resources)

    def check(self) -> None:
        prefix = shlex.split(self.submit_options)
        if prefix and shutil.which(prefix[0]) is None:
            raise SchedulerError(
                f"LocalScheduler submit_options {self.submit_options!r}: program "
                f"{prefix[0]!r} not found on PATH"
            )

    def submit(
        self, command: Sequence[str], env: Mapping[str, str], name: str, cwd: str | None = None
    ) -> Job:
        full_env = dict(env)
        resource: str | None = None
        if self.resources is not None:
            if not self._free:
                raise SchedulerError(
                    f"no free resource for {name}: all of {self.resources} are in use"
                )
            resource = self._free.pop(0)
            full_env["CUDA_VISIBLE_DEVICES"] = resource
        full_env[trial_env.SHERPA_RESOURCE] = resource or ""
        full_env[trial_env.RESOURCE] = resource or ""
        full_env[trial_env.SLOT_IDS] = resource or ""
        jobs_dir = (Path(self.output_dir or ".") / "jobs").resolve()
        jobs_dir.mkdir(parents=True, exist_ok=True)
        jobfiles.retire_attempt(jobs_dir, name)
        out_path = jobfiles.output_path(jobs_dir, name)
        status_path = jobfiles.exit_path(jobs_dir, name)
        argv = [*shlex.split(self.submit_options), *command]
        try:
            process = exitstatus.start(argv, status_path, full_env, out_path, cwd)
        except OSError as exc:
            if resource is not None:
                self._free.append(resource)
            raise SchedulerError(f"cannot start {name}: {argv[0]!r}: {exc}") from exc
        info = {
            "pid": process.pid,
            "start_time": process_start_time(process.pid),
            "resource": resource,
            "output": str(out_path),
            "exit_file": str(status_path),
        }
        return Job(name, info, process)

    async def wait(self, job: Job) -> int | None:
        """The exit code (negative: the signal): recorded by the wrapper, else the wrapper's
        own end, else SIGKILL when this scheduler sent it; None only when nothing tells."""
        pid = job.info["pid"]
        try:
            if isinstance(job.handle, _Ended):
                return job.handle.code
            await _pid_exit(pid)
            code = None
            if isinstance(job.handle, subprocess.Popen):
                code = exitstatus.decode(job.handle.wait())
            recorded = exitstatus.read_status(job.info.get("exit_file"))
            if recorded is not None:
                return recorded
            if code is None and pid in self._force_killed:
                return -signal.SIGKILL
            return code
        finally:
            self._force_killed.discard(pid)
            resource = job.info.get("resource")
            if resource is not None and self.resources is not None:
                self._free.append(resource)

    def kill(self, job: Job, force: bool = False) -> None:
        sig = signal.SIGKILL if force else signal.SIGTERM
        try:
            os.killpg(job.info["pid"], sig)
        except (ProcessLookupError, PermissionError):
            return
        if force:
            self._force_killed.add(job.info["pid"])

    def reattach(self, info: Mapping[str, Any], name: str) -> Job | None:
        """The job if its process still runs, or if it ended while no coordinator watched
        and its exit status was recorded; None when it is gone without a trace."""
        pid = info.get("pid")
        started = process_start_time(pid) if pid else None
        handle: _Ended | None = None
        if started is None or started != info.get("start_time"):
            code = exitstatus.read_status(info.get("exit_file"))
            if code is None:
                return None
            handle = _Ended(code)
        resource = info.get("resource")
        if resource is not None and resource in self._free:
            self._free.remove(resource)
        return Job(name, dict(info), handle)

    # -- SHERPA's scheduler interface (scripts that drive a scheduler themselves) -------------

    def submit_job(
        self, command: Sequence[str] | str, env: Mapping[str, str] | None = None, job_name: str = ""
    ) -> int:
        """Start ``command`` with this process's environment plus ``env``; returns its pid,
        the job id that ``get_status`` and ``kill_job`` take."""
        argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        name = job_name or f"job_{len(self._sherpa_jobs) + 1}"
        job = self.submit(argv, {**os.environ, **dict(env or {})}, name)
        pid = int(job.info["pid"])
        self._sherpa_jobs[pid] = job
        return pid

    def get_status(self, job_id: int) -> int:
        """SHERPA's ``_JobStatus`` of a job from ``submit_job``: running, finished (exit 0),
        killed (through ``kill_job`` or SIGTERM) or failed."""
        job = self._sherpa_jobs.get(job_id)
        if job is None:
            raise SchedulerError(f"no job {job_id!r} was started by this scheduler's submit_job")
        process = job.handle
        if isinstance(process, subprocess.Popen):
            if process.poll() is None:
                return JobStatus.running
            code = exitstatus.read_status(job.info.get("exit_file"))
            if code is None:
                code = exitstatus.decode(process.returncode)
            job.handle = _Ended(code)
            resource = job.info.get("resource")
            if resource is not None and self.resources is not None:
                self._free.append(resource)
        assert isinstance(job.handle, _Ended)
        code = job.handle.code
        if code == 0:
            return JobStatus.finished
        if job_id in self._sherpa_killed or code == -signal.SIGTERM:
            return JobStatus.killed
        return JobStatus.failed

    def kill_job(self, job_id: int) -> None:
        """End a job from ``submit_job`` (SIGTERM to its process group)."""
        job = self._sherpa_jobs.get(job_id)
        if job is None:
            raise SchedulerError(f"no job {job_id!r} was started by this scheduler's submit_job")
        self._sherpa_killed.add(job_id)
        self.kill(job)


class _Ended:
    """The handle of a job that ended before it was re-attached: its recorded exit code."""

    def __init__(self, code: int) -> None:
        self.code = code


async def _pid_exit(pid: int) -> None:
    """Wait for ``pid`` to exit without polling: a pidfd becomes readable when it does."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    done = loop.create_future()

    def exited() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, exited)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
