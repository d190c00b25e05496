"""The coordinator: one asyncio loop running the engine, the HTTP API and the trial processes.

Nothing here sleeps in fixed steps: process exits arrive through the scheduler's ``wait``,
reports through HTTP requests, and each is acted on the moment it arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ridgeline.engine.engine import Engine
from ridgeline.engine.server import build_app
from ridgeline.errors import ObservationError, SchedulerError
from ridgeline.results import ResultsTable
from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.searchers.base import Action, Shutdown, Stop, Train
from ridgeline.store.records import (
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    STOPPED,
    TRIAL_DONE_STATES,
)
from ridgeline.trial import env as trial_env
from ridgeline.values import check_iteration, check_objective

log = logging.getLogger("ridgeline")

TAIL_LINES = 20
RESULTS_WRITE_DELAY = 0.2  # seconds: many reports in a burst cost one results.csv write


def tail(path: str | os.PathLike[str], lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ('' when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class Coordinator:
    """Runs one experiment's trials until the searcher shuts down and every trial ended."""

    def __init__(
        self,
        engine: Engine,
        scheduler: Scheduler,
        command: list[str],
        output_dir: Path,
        max_concurrent: int,
        token: str,
        results: ResultsTable,
        resubmit_failed_trials: bool = False,
        grace_period: float = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
        on_progress: Callable[[Coordinator], None] | None = None,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.scheduler = scheduler
        self.command = command
        self.output_dir = output_dir
        self.max_concurrent = max_concurrent
        self.token = token
        self.results = results
        self.resubmit_failed_trials = resubmit_failed_trials
        self.grace_period = grace_period
        self.host = host
        self.port = port
        self.on_progress = on_progress
        self.running: dict[int, Job] = {}
        self.stopping: set[int] = set()
        self.resubmitted: set[int] = set()  # trials that are themselves resubmissions
        self.url = ""
        self._finished = asyncio.Event()
        self._write_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.interrupted = False

    # -- capacity ----------------------------------------------------------------------------
    def capacity(self) -> int:
        limit = self.max_concurrent
        scheduler_limit = self.scheduler.capacity()
        if scheduler_limit is not None:
            limit = min(limit, scheduler_limit)
        return limit

    def stop_requested(self, number: int) -> bool:
        return number in self.engine.stop_requested

    # -- main --------------------------------------------------------------------------------
    async def run(self, resume: bool = False) -> None:
        runner = web.AppRunner(build_app(self), access_log=None)
        await runner.setup()
        site = await self._bind(runner)
        try:
            sockets = site._server.sockets  # type: ignore[union-attr]
            self.port = sockets[0].getsockname()[1]
            self.url = f"http://{self.host}:{self.port}"
            self._publish_address()
            self.engine.event("coordinator_started", url=self.url, pid=os.getpid(), resume=resume)
            if resume:
                self._resume_trials()
            else:
                self._handle(self.engine.start())
            self._fill()
            self._check_finished()
            await self._finished.wait()
        except asyncio.CancelledError:
            self.interrupted = True
            raise
        finally:
            if self.interrupted:
                self._abandon_running()
            self._write_results()
            self.store.update_experiment(self.engine.experiment_id, coordinator=None)
            await runner.cleanup()

    async def _bind(self, runner: web.AppRunner) -> web.TCPSite:
        """Bind the port used before (so re-attached trials find us), else any free one."""
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except OSError:
            if not self.port:
                raise
            log.warning(
                "port %s is taken; trials will find the new one via coordinator.json", self.port
            )
            site = web.TCPSite(runner, self.host, 0)
            await site.start()
        return site

    def _publish_address(self) -> None:
        address = {"url": self.url, "pid": os.getpid()}
        path = self.output_dir / "coordinator.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(address))
        os.replace(tmp, path)
        self.store.update_experiment(
            self.engine.experiment_id, coordinator={**address, "port": self.port}
        )

    # -- actions -----------------------------------------------------------------------------
    def _handle(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Train):
                if action.trial not in self.running:
                    self._launch(action.trial)
            elif isinstance(action, Stop):
                self._stop(action.trial, action.reason)
            elif isinstance(action, Shutdown):
                log.info("Search finished creating trials: %s", action.reason)

    def _fill(self) -> None:
        free = self.capacity() - len(self.running)
        while free > 0 and not self.engine.shutdown:
            before = len(self.running)
            self._handle(self.engine.slots_free(free))
            launched = len(self.running) - before
            if launched == 0:
                break
            free -= launched
        self._check_finished()

    def _trial_env(self, number: int) -> dict[str, str]:
        env = dict(os.environ)
        trial_output = str(self.output_dir)
        env.update(
            {
                trial_env.MASTER: self.url,
                trial_env.MASTER_FILE: str(self.output_dir / "coordinator.json"),
                trial_env.TOKEN: self.token,
                trial_env.TRIAL_ID: str(number),
                trial_env.EXPERIMENT_ID: str(self.engine.experiment_id),
                trial_env.OUTPUT_DIR: trial_output,
                trial_env.SHERPA_TRIAL_ID: str(number),
                trial_env.SHERPA_OUTPUT_DIR: trial_output,
                trial_env.SHERPA_DB_HOST: self.host,
                trial_env.SHERPA_DB_PORT: str(self.port),
            }
        )
        return env

    def _launch(self, number: int) -> None:
        log.info("Submitting Trial %d", number)
        try:
            job = self.scheduler.submit(self.command, self._trial_env(number), f"trial_{number}")
        except SchedulerError as exc:
            log.error("Trial %d could not start: %s", number, exc)
            self._handle(self.engine.trial_exited(number, FAILED, None))
            self.results.finalize(number, FAILED)
            return
        self.engine.trial_started(number, job.info)
        self._watch(number, job)

    def _watch(self, number: int, job: Job) -> None:
        self.running[number] = job
        task = asyncio.get_running_loop().create_task(self._await_exit(number, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _await_exit(self, number: int, job: Job) -> None:
        exit_code = await self.scheduler.wait(job)
        self.running.pop(number, None)
        if self.interrupted:
            return
        self._on_exit(number, job, exit_code)

    def _on_exit(self, number: int, job: Job, exit_code: int | None) -> None:
        has_metrics = self.results.has_any(number)
        if number in self.stopping:
            status = STOPPED
        elif exit_code == 0 or (exit_code is None and has_metrics):
            status = COMPLETED
        else:
            status = FAILED
        if status == FAILED:
            reason = (
                "exit code unknown (re-attached)"
                if exit_code is None
                else (
                    f"killed by signal {-exit_code}" if exit_code < 0 else f"exit code {exit_code}"
                )
            )
            output = job.info.get("output", "")
            log.error(
                "Trial %d failed (%s). Last lines of %s:\n%s",
                number,
                reason,
                output,
                tail(output) or "(no output)",
            )
        elif not has_metrics:
            log.warning(
                "Trial %d ended without sending metrics; see %s",
                number,
                job.info.get("output", "its output"),
            )
        actions = self.engine.trial_exited(number, status, exit_code)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.results.finalize(number, status)
        for warning in caught:
            log.warning("%s", warning.message)
        self._write_results()
        if status == FAILED and self.resubmit_failed_trials and number not in self.resubmitted:
            record = self.engine.add_trial(dict(self.engine.records[number].params))
            self.resubmitted.add(record.number)
            log.info("Resubmitting failed trial %d as trial %d", number, record.number)
            self._launch(record.number)
        self._handle(actions)
        self._notify()
        self._fill()

    def _stop(self, number: int, reason: str) -> None:
        job = self.running.get(number)
        if job is None or number in self.stopping:
            return
        log.info("Stopping trial %d: %s", number, reason)
        self.stopping.add(number)
        self.scheduler.kill(job)
        loop = asyncio.get_running_loop()
        loop.call_later(self.grace_period, self._force_kill, number, job)

    def _force_kill(self, number: int, job: Job) -> None:
        if self.running.get(number) is job:
            log.warning(
                "Trial %d ignored SIGTERM for %.0f s; killing it", number, self.grace_period
            )
            self.scheduler.kill(job, force=True)

    def _check_finished(self) -> None:
        if self.engine.shutdown and not self.running:
            self._finished.set()

    # -- reports -----------------------------------------------------------------------------
    def on_reports(self, number: int, reports: list[dict[str, Any]]) -> int:
        """Store reports from trial ``number``; returns how many were new."""
        accepted = 0
        for report in reports:
            if not isinstance(report, dict):
                raise ObservationError(
                    f"trial {number}: a report must be an object, got {report!r}"
                )
            where = f"trial {number} iteration {report.get('step')!r}"
            step = check_iteration(report.get("step"), where)
            value = check_objective(report.get("objective"), where)
            context = report.get("context") or {}
            if not isinstance(context, dict):
                raise ObservationError(f"{where}: context must be an object, got {context!r}")
            new, actions = self.engine.report(number, step, value, context)
            if new:
                accepted += 1
                params = self.engine.records[number].params
                self.results.add_observation(number, step, params, value, context)
                self._handle(actions)
        if accepted:
            self._schedule_write()
            self._notify()
        return accepted

    # -- results -----------------------------------------------------------------------------
    def _schedule_write(self) -> None:
        if self._write_handle is None:
            loop = asyncio.get_running_loop()
            self._write_handle = loop.call_later(RESULTS_WRITE_DELAY, self._write_results)

    def _write_results(self) -> None:
        if self._write_handle is not None:
            self._write_handle.cancel()
            self._write_handle = None
        self.results.write_csv(self.output_dir / "results.csv")

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self)

    # -- restart -----------------------------------------------------------------------------
    def _resume_trials(self) -> None:
        """Re-attach trials whose process outlived the old coordinator; re-run the others."""
        for number, record in sorted(self.engine.records.items()):
            if record.state in TRIAL_DONE_STATES:
                continue
            job = None
            if record.state == RUNNING and record.job:
                job = self.scheduler.reattach(record.job, f"trial_{number}")
            if job is not None:
                log.info("Re-attached trial %d (pid %s)", number, job.info.get("pid"))
                self._watch(number, job)
            elif record.state in (RUNNING, PENDING):
                if record.state == RUNNING:
                    self.engine.relaunch(number)
                log.info("Re-running trial %d, whose process is gone", number)
                self._launch(number)

    def _abandon_running(self) -> None:
        """On interrupt, end trial processes; they stay RUNNING in the store for a resume."""
        for job in self.running.values():
            self.scheduler.kill(job, force=False)
        print(
            "Interrupted: running trials were ended; run again with resume=True to carry on.",
            file=sys.stderr,
        )
