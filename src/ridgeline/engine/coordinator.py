"""The coordinator: one asyncio loop running the engine, the HTTP API and the trial processes.

Nothing here sleeps in fixed steps: process exits arrive through the scheduler's ``wait``,
reports and long-polls through HTTP requests, and each is acted on the moment it arrives.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import ssl
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web

from ridgeline.engine.checkpoints import Checkpoints
from ridgeline.engine.credentials import Credentials
from ridgeline.engine.engine import OBJECTIVE_KEY, Engine
from ridgeline.engine.keepalive import keep_lease
from ridgeline.engine.live_results import LiveResults
from ridgeline.engine.runtime import ExitFacts, TrialRuntime, describe_exit, exit_status
from ridgeline.engine.server import make_runner
from ridgeline.engine.timemetric import TimeMetric
from ridgeline.engine.watchdog import DEFAULT_HEARTBEAT_SECONDS, Watchdog
from ridgeline.engine.writer import MetricWriter, Rows
from ridgeline.errors import LeaseLost, ObservationError, SchedulerError, SearchFailed
from ridgeline.faults import crash_point
from ridgeline.integrations import tensorboard
from ridgeline.integrations.follow import StoreFollower
from ridgeline.integrations.mlflow import MlflowExport
from ridgeline.integrations.tensorboard import TensorBoardExport
from ridgeline.results import ResultsTable
from ridgeline.samplers import background
from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.searchers.base import Action, Close, Pause, Shutdown, Stop, Train
from ridgeline.store.lease import lease_ttl
from ridgeline.store.records import (
    ACTIVE,
    CANCELED,
    COMPLETED,
    ERROR,
    FAILED,
    INVALID_HP,
    PAUSED,
    PENDING,
    RUNNING,
    STOPPED,
    TRIAL_DONE_STATES,
    CheckpointRecord,
    MetricRecord,
    TrialRecord,
)
from ridgeline.trial import env as trial_env
from ridgeline.values import check_iteration, check_objective

if TYPE_CHECKING:
    from ridgeline.config.network import Endpoint, NetworkChoice
    from ridgeline.dashboard.hosting import Site
    from ridgeline.engine.tls import Certificate

log = logging.getLogger("ridgeline")

TAIL_LINES = 20
YIELD_EVERY = 2000  # reports handled between yields to the loop within one request
SUGGESTION_TIME_LIMIT = 10.0  # seconds a model-based sampler may spend on one suggestion
SHERPA, CORE = "sherpa", "core"
DEFAULT_MAX_CONSECUTIVE_FAILURES = 10
SUCCEEDED = frozenset({COMPLETED, STOPPED, PAUSED})  # trial ends that count as a working run
TOKEN_DIGEST = "token_sha256"  # key of the attempt token's digest in a trial's job info


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


@dataclass
class RunSettings:
    """How trials of this experiment run, beyond the command."""

    front_door: str = SHERPA  # SHERPA: stops are SIGTERM at once; CORE: preempt flag first
    max_restarts: int = 0  # failed trials restart from their latest checkpoint this often
    checkpoint_dir: Path | None = None
    searcher_metric: str | None = None  # validation metric name for best-validation queries
    smaller_is_better: bool = True
    # extra variables per trial; None unsets one (Docker's bare "NAME" in Determined's configs)
    trial_env: Callable[[TrialRecord], dict[str, str | None]] | None = None
    trial_cwd: Callable[[TrialRecord], str | None] | None = None
    retention: dict[str, int] = field(default_factory=dict)
    max_length: float | None = None  # None: trials get no operations (SHERPA-style scripts)
    # The search ends ERROR after this many trials in a row failed (0 or None: no bound).
    max_consecutive_failures: int | None = DEFAULT_MAX_CONSECUTIVE_FAILURES
    # Determined 0.38 ASHA: validations carrying this metric and the searcher metric drive
    # the searcher, at this metric's value (ridgeline.engine.timemetric).
    time_metric: str | None = None
    # Seconds without a word from a running attempt (the trial client beats 4 times as
    # often) before it is declared lost, FAILED and restarted (0 or None: never).
    heartbeat_seconds: float | None = DEFAULT_HEARTBEAT_SECONDS
    # TensorBoard event files per trial under output_dir/tensorboard (integrations.tensorboard)
    tensorboard: bool = False
    # MLflow runs per trial at this tracking URI (integrations.mlflow); None: none
    mlflow_tracking_uri: str | None = None
    # The experiment's web dashboard, served on a second loopback port of this loop (0: any
    # free port); ``announce`` receives its login link (for a terminal, never the log).
    dashboard: bool = True
    dashboard_port: int = 0
    announce: Callable[[str], None] | None = None


class _Report(NamedTuple):
    """One checked report: the row to store and, for an objective, what the searcher sees.
    A tuple: a request may hold 100,000 of them."""

    group: str
    step: int
    values: dict[str, Any]
    objective: float | None  # set: the report drives the searcher
    context: dict[str, Any]
    mirror: bool = True  # also store it as a validation (False: it came from one)


class _Signal:
    """A level-triggered wake-up for long-polls: ``wait`` returns on the next ``fire``."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


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
        network: NetworkChoice | None = None,
        port: int = 0,
        on_progress: Callable[[Coordinator], None] | None = None,
        settings: RunSettings | None = None,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.scheduler = scheduler
        self.command = command
        self.output_dir = output_dir
        self.max_concurrent = max_concurrent
        self.credentials = Credentials(token)  # keeps digests only; trials get their own
        self.results = results  # follows the engine's events, with results.csv (LiveResults)
        self.resubmit_failed_trials = resubmit_failed_trials
        self.grace_period = grace_period
        self.network = network  # bind, advertise, tls (config.network; None: defaults)
        self.host = "127.0.0.1"  # the host trials call: decided in run()
        self.certificate: Certificate | None = None  # the TLS certificate, when TLS is on
        self.port = port
        self.on_progress = on_progress
        self.settings = settings or RunSettings()
        self.running: dict[int, Job] = {}
        self.waiting: list[int] = []  # trials with work to do, waiting for a free slot
        self.held: set[int] = set()  # trials a user paused: they wait for resume_trial
        self.trials: dict[int, TrialRuntime] = {}  # what this coordinator knows of each trial
        self.state: str = ACTIVE  # ACTIVE, PAUSED or CANCELED (killed)
        self.best_validation: float | None = None
        self.url = ""
        self.endpoint: Endpoint | None = None  # decided in run()
        self.dashboard: Site | None = None  # the web dashboard, while it serves
        self._finished = asyncio.Event()
        self._signals: dict[int, _Signal] = {}
        self.writer = MetricWriter(self.store)
        self.live_results = LiveResults(results, output_dir / "results.csv")
        engine.observers.add(self.live_results)
        self.tensorboard: TensorBoardExport | None = None
        if self.settings.tensorboard:
            self.tensorboard = TensorBoardExport(
                self.store,
                engine.experiment_id,
                output_dir,
                self.settings.searcher_metric or OBJECTIVE_KEY,
            )
            engine.observers.add(self.tensorboard)
        self.mlflow: MlflowExport | None = None
        if self.settings.mlflow_tracking_uri:
            self.mlflow = MlflowExport(
                self.store,
                engine.experiment_id,
                output_dir,
                self.settings.mlflow_tracking_uri,
                searcher_metric=self.settings.searcher_metric or OBJECTIVE_KEY,
                smaller_is_better=engine.history.lower_is_better,
                checkpoint_dir=self.settings.checkpoint_dir,
            )
            engine.observers.add(self.mlflow)
        self._tasks: set[asyncio.Task[None]] = set()
        self.interrupted = False
        self.lease_lost: LeaseLost | None = None  # another coordinator took the experiment over
        self.closing = False  # long-polls answer at once while the server shuts down
        self.error: str | None = None  # why the experiment ends ERROR (None: it does not)
        self.consecutive_failures = 0
        self._metric_seen = False  # the searcher metric arrived at least once (Core API)
        self._unmatched_validations: set[str] = set()  # metric names of validations without it
        self.time_metric: TimeMetric | None = None
        if self.settings.time_metric and self.settings.searcher_metric:
            self.time_metric = TimeMetric(self.settings.time_metric, self.settings.searcher_metric)
        beat = self.settings.heartbeat_seconds
        self.watchdog = Watchdog(beat, self._declare_lost) if beat else None

    # -- small helpers -----------------------------------------------------------------------
    def capacity(self) -> int:
        limit = self.max_concurrent
        scheduler_limit = self.scheduler.capacity()
        if scheduler_limit is not None:
            limit = min(limit, scheduler_limit)
        return limit

    def runtime(self, number: int) -> TrialRuntime:
        if number not in self.trials:
            self.trials[number] = TrialRuntime()
        return self.trials[number]

    def stop_requested(self, number: int) -> bool:
        return number in self.engine.stop_requested

    def signal(self, number: int) -> _Signal:
        if number not in self._signals:
            self._signals[number] = _Signal()
        return self._signals[number]

    def preempt_wanted(self, number: int) -> bool:
        return self.state != ACTIVE or number in self.engine.stop_requested or number in self.held

    def _wake(self, number: int | None = None) -> None:
        targets = [number] if number is not None else list(self._signals)
        for target in targets:
            self.signal(target).fire()

    # -- main --------------------------------------------------------------------------------
    async def run(self, resume: bool = False) -> None:
        runner = make_runner(self)
        await runner.setup()
        ssl_context = self._choose_endpoint()
        site = await self._bind(runner, ssl_context)
        # Model-based samplers compute on this worker; the loop keeps serving trials.
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        suggester = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ridgeline-suggest")
        if not self.scheduler.virtual_time:  # on simulated time they run inline, taking none
            background.install(
                suggester, lambda: loop.call_soon_threadsafe(self._fill), SUGGESTION_TIME_LIMIT
            )
        try:
            self.scheduler.attach(self)
            sockets = site._server.sockets  # type: ignore[union-attr]
            self.port = sockets[0].getsockname()[1]
            assert self.endpoint is not None
            self.url = self.endpoint.url(self.port)
            await self._start_dashboard()
            self._publish_address()
            self._keep_lease()
            for follower in self._followers():
                follower.start()
            self.engine.event("coordinator_started", url=self.url, pid=os.getpid(), resume=resume)
            experiment = self.store.get_experiment(self.engine.experiment_id)
            if experiment.state == PAUSED:
                self.state = PAUSED
            try:
                if experiment.state == CANCELED:  # killed while this coordinator started
                    self.kill()
                elif resume:
                    self._resume_trials()
                    self._handle(self.engine.take_replayed())
                else:
                    self._handle(self.engine.start())
                self._fill()
                self._check_finished()
            except Exception as exc:  # noqa: BLE001 - any failure ends the run with its cause
                self.fail(exc)
            await self._finished.wait()
            if self.lease_lost is not None:
                raise self.lease_lost
        except asyncio.CancelledError:
            self.interrupted = True
            raise
        finally:
            if self.interrupted:
                self._abandon_running()
            if self.lease_lost is None:  # else the new holder owns the files, store and trials
                try:
                    self.live_results.finish()
                    if not self.interrupted:
                        for follower in self._followers():  # what is left, off the loop
                            await asyncio.to_thread(follower.close)
                    if self._finished.is_set() and self.error is None:
                        self._collect_garbage()
                    self.store.update_experiment(self.engine.experiment_id, coordinator=None)
                except Exception as exc:  # noqa: BLE001 - the run is over; say why not tidied
                    log.error("Could not record the end of the run: %s", exc)
                    if self.error is None:
                        self.error = f"could not record the end of the run: {exc}"
            for follower in self._followers():  # interrupted or taken over: the next
                follower.abandon()  # coordinator carries on from the followers' cursors
            self.closing = True
            self.scheduler.detach(abandon=self.interrupted or self.lease_lost is not None)
            if self.watchdog is not None:
                self.watchdog.close()
            self._wake()
            background.uninstall()
            suggester.shutdown(wait=False, cancel_futures=True)
            if self.dashboard is not None:
                await self.dashboard.close()
            await runner.cleanup()

    def _followers(self) -> list[StoreFollower]:
        """The exports that copy reports elsewhere (TensorBoard, MLflow)."""
        return [f for f in (self.tensorboard, self.mlflow) if f is not None]

    def _choose_endpoint(self) -> ssl.SSLContext | None:
        """Decide where to listen and what trials call (``config.network``); with TLS, the
        experiment's certificate (made on the first run, the same one on a resume)."""
        from ridgeline.config.network import WILDCARDS, NetworkChoice, endpoint

        chosen = endpoint(self.network or NetworkChoice(), self.scheduler.callback_host())
        self.endpoint = chosen
        self.host = chosen.advertise
        if not chosen.tls:
            return None
        from ridgeline.engine.tls import coordinator_certificate

        hosts = [chosen.advertise, chosen.bind]
        hosts = [h for h in hosts if h not in WILDCARDS]
        self.certificate = coordinator_certificate(self.output_dir, hosts)
        return self.certificate.server_context()

    async def _bind(self, runner: web.AppRunner, ssl_context: ssl.SSLContext | None) -> web.TCPSite:
        """Bind the port used before (so re-attached trials find us), else any free one."""
        assert self.endpoint is not None
        host = self.endpoint.bind
        try:
            site = web.TCPSite(runner, host, self.port, ssl_context=ssl_context)
            await site.start()
        except OSError:
            if not self.port:
                raise
            log.warning("port %s is taken; trials find the new one via coordinator.json", self.port)
            site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
            await site.start()
        return site

    def _keep_lease(self) -> None:
        """Renew the lease this store handle holds (if any) while the coordinator runs; when
        it is lost, stop deciding and end the run with ``LeaseLost`` (trials live on)."""
        token = self.store.fence(self.engine.experiment_id)
        if token is None:
            return
        task = asyncio.create_task(
            keep_lease(self.store, self.engine.experiment_id, token, lease_ttl(), self.fail)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_dashboard(self) -> None:
        """Serve the experiment's dashboard beside the trial API (``ridgeline.dashboard``);
        a dashboard that cannot start is reported and the search goes on without it."""
        if not self.settings.dashboard:
            return
        from ridgeline.dashboard.hosting import start

        try:
            self.dashboard = await start(
                self.store,
                port=self.settings.dashboard_port,
                experiment_id=self.engine.experiment_id,
            )
        except Exception as exc:  # noqa: BLE001 - the search does not depend on it
            log.warning("The dashboard did not start: %s", exc)
            return
        log.info("Dashboard: %s (log in with the link printed when it started)", self.dashboard.url)
        if self.settings.announce is not None:
            self.settings.announce(self.dashboard.login_url)

    def _publish_address(self) -> None:
        address: dict[str, Any] = {"url": self.url, "pid": os.getpid()}
        record: dict[str, Any] = {}
        if self.dashboard is not None:  # in the store beside the control token, for the CLI
            record["dashboard"] = {
                "url": self.dashboard.url,
                "token": self.dashboard.access.token,
            }
        if self.certificate is not None:  # what trials and the CLI pin
            address[trial_env.CERT_KEY] = self.certificate.sha256
        path = self.output_dir / "coordinator.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(address))
        os.replace(tmp, path)
        self.store.update_experiment(
            self.engine.experiment_id, coordinator={**address, "port": self.port, **record}
        )

    # -- actions -----------------------------------------------------------------------------
    def _handle(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Train):
                self._wake(action.trial)
                record = self.engine.records[action.trial]
                if action.trial not in self.running and record.state in (PENDING, PAUSED):
                    if action.trial not in self.waiting:
                        self.waiting.append(action.trial)
            elif isinstance(action, Pause):
                self._wake(action.trial)
            elif isinstance(action, Close):
                self._wake(action.trial)
                record = self.engine.records[action.trial]
                if action.trial not in self.running and record.state == PAUSED:
                    self._end_paused(action.trial)
            elif isinstance(action, Stop):
                self._stop(action.trial, action.reason)
            elif isinstance(action, Shutdown):
                log.info("Search finished creating trials: %s", action.reason)

    def _launch_waiting(self) -> None:
        if self.error is not None:  # the run is ending ERROR: nothing new starts
            return
        while self.waiting and len(self.running) < self.capacity() and self.state == ACTIVE:
            number = self.waiting.pop(0)
            if number not in self.running and number not in self.held:
                self._launch(number)

    def _fill(self) -> None:
        """Use free slots: trials waiting to resume first, then new trials from the searcher."""
        if self.error is not None:
            return
        if self.state != ACTIVE:
            self._check_finished()
            return
        self._launch_waiting()
        while not self.engine.shutdown:
            free = self.capacity() - len(self.running) - len(self.waiting)
            if free <= 0:
                break
            before = len(self.running) + len(self.waiting)
            self._handle(self.engine.slots_free(free))
            self._launch_waiting()
            if len(self.running) + len(self.waiting) == before:
                break
        self._check_finished()

    def _end_paused(self, number: int) -> None:
        """A paused trial the searcher will not resume: it is complete."""
        if number in self.waiting:
            self.waiting.remove(number)
        self._handle(self.engine.trial_exited(number, COMPLETED, 0))
        self._collect_garbage(number)

    def _trial_env(self, record: TrialRecord, token: str) -> dict[str, str]:
        env = dict(os.environ)
        # `python3 train.py` in a trial finds the Python that runs ridgeline first.
        python_bin = os.path.dirname(sys.executable)
        if env.get("PATH", "").split(os.pathsep)[0] != python_bin:
            env["PATH"] = os.pathsep.join([python_bin, env.get("PATH", "")])
        number = record.number
        trial_output = str(self.output_dir)
        env.update(
            {
                trial_env.MASTER: self.url,
                trial_env.MASTER_FILE: str(self.output_dir / "coordinator.json"),
                trial_env.TOKEN: token,  # good for this trial's current attempt only
                trial_env.TRIAL_ID: str(number),
                trial_env.TRIAL_GLOBAL_ID: str(record.id),
                trial_env.EXPERIMENT_ID: str(self.engine.experiment_id),
                trial_env.OUTPUT_DIR: trial_output,
                trial_env.SHERPA_TRIAL_ID: str(number),
                trial_env.SHERPA_OUTPUT_DIR: trial_output,
                trial_env.SHERPA_DB_HOST: self.host,
                trial_env.SHERPA_DB_PORT: str(self.port),
                trial_env.TENSORBOARD_PATH: str(tensorboard.trial_folder(self.output_dir, number)),
            }
        )
        env.pop(trial_env.CERT_SHA256, None)
        if self.certificate is not None:
            env[trial_env.CERT_SHA256] = self.certificate.sha256
        env.pop(trial_env.LATEST_CHECKPOINT, None)
        env.pop(trial_env.HEARTBEAT_SECONDS, None)
        if self.watchdog is not None:  # the trial client beats while its process lives
            env[trial_env.HEARTBEAT_SECONDS] = f"{self.watchdog.interval:g}"
        if self.settings.checkpoint_dir is not None:  # only Core-API trials keep checkpoints
            env[trial_env.CHECKPOINT_STORAGE] = str(self.settings.checkpoint_dir)
            latest = self.engine.latest_checkpoint(number)
            if latest is not None:
                env[trial_env.LATEST_CHECKPOINT] = latest.uuid
        if self.settings.trial_env is not None:
            for name, value in self.settings.trial_env(record).items():
                if value is None:
                    env.pop(name, None)
                else:
                    env[name] = value
        return env

    def _launch(self, number: int) -> None:
        record = self.engine.records[number]
        log.info("Submitting Trial %d", number)
        cwd = self.settings.trial_cwd(record) if self.settings.trial_cwd else None
        token = self.credentials.issue(number)  # the previous attempt's token is void now
        try:
            job = self.scheduler.submit(
                self.command, self._trial_env(record, token), f"trial_{number}", cwd
            )
        except (SchedulerError, OSError) as exc:
            self.credentials.revoke(number)
            log.error("Trial %d could not start: %s", number, exc)
            self._handle(self.engine.trial_exited(number, FAILED, None))
            return
        self.runtime(number).new_attempt(job)
        # The digest travels with the job, so a restarted coordinator knows the token.
        self.engine.trial_started(
            number, {**job.info, TOKEN_DIGEST: self.credentials.digest(number)}
        )
        self._watch(number, job)

    def _watch(self, number: int, job: Job) -> None:
        self.running[number] = job
        self.runtime(number).job = job
        if self.watchdog is not None:
            self.watchdog.forget(number)  # its clock starts at its first contact
        task = asyncio.get_running_loop().create_task(self._await_exit(number, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _await_exit(self, number: int, job: Job) -> None:
        try:
            exit_code = await self.scheduler.wait(job)
            if self.running.get(number) is not job:
                return  # given up on after it was lost: its end is recorded already
            del self.running[number]
            if self.watchdog is not None:
                self.watchdog.forget(number)
            if self.interrupted or self.error is not None:
                return
            self._on_exit(number, job, exit_code)
        except Exception as exc:  # noqa: BLE001 - never a silent "Task exception never retrieved"
            self.fail(exc)

    # -- failure -------------------------------------------------------------------------------
    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A callback of ours raised (a timer, a wake-up): the run cannot be trusted to go on."""
        exc = context.get("exception")
        if isinstance(exc, Exception):
            self.fail(exc)
        else:
            loop.default_exception_handler(context)

    def fail(self, cause: BaseException | str) -> None:
        """End the experiment ERROR: log the cause, end the trial processes, finish the run.
        Everything already recorded stays; ``resume`` carries on from it."""
        if self.error is not None or self.lease_lost is not None:
            return
        if isinstance(cause, LeaseLost):  # another coordinator runs it now: leave it all be
            log.error("%s", cause)
            self.lease_lost = cause
            self._finished.set()
            return
        message = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        self.error = message
        if isinstance(cause, BaseException):
            log.error("The experiment stops with an error: %s", message, exc_info=cause)
        else:
            log.error("The experiment stops with an error: %s", message)
        for job in list(self.running.values()):
            try:
                self.scheduler.kill(job, force=True)
            except Exception as exc:  # noqa: BLE001 - keep ending the others
                log.error("Could not kill %s: %s", job.name, exc)
        self.running.clear()
        self.waiting.clear()
        try:
            self.engine.event("experiment_error", message=message)
        except Exception:  # noqa: BLE001 - the store may be what failed
            pass
        self._finished.set()

    def outcome(self) -> str:
        """The experiment's final state, honestly: CANCELED when killed; ERROR when the run
        failed, trials kept failing, no trial succeeded, or the searcher metric never came;
        else COMPLETED."""
        if self.state == CANCELED:
            return CANCELED
        if self.error is None:
            self.error = self._no_success_reason()
        return ERROR if self.error is not None else COMPLETED

    def conclude(self, what: str) -> None:
        """Record the experiment's final state; raise ``SearchFailed`` naming ``what`` when it
        is ERROR (the store keeps everything recorded, for a resume)."""
        final = self.outcome()
        self.store.update_experiment(self.engine.experiment_id, state=final)
        if final == ERROR:
            raise SearchFailed(f"{what} ended ERROR: {self.error}")

    def _no_success_reason(self) -> str | None:
        ran = [  # imported results (warm starts) never ran here
            r
            for r in self.engine.records.values()
            if r.state in TRIAL_DONE_STATES and not (r.request_id < 0 and r.job is None)
        ]
        if self.settings.front_door == CORE and self._unmatched_validations:
            if not self._metric_seen:
                return (
                    f"the searcher metric {self.settings.searcher_metric!r} was never reported; "
                    f"validations reported {sorted(self._unmatched_validations)}"
                )
        if self.time_metric is not None and (problem := self.time_metric.problem()):
            return problem
        if ran and not any(r.state in SUCCEEDED for r in ran):
            counts: dict[str, int] = {}
            for record in ran:
                counts[record.state] = counts.get(record.state, 0) + 1
            summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            return f"no trial succeeded ({summary}); see the trials' logs"
        return None

    def _exit_status(self, number: int, exit_code: int | None) -> str:
        runtime = self.runtime(number)
        has_metrics = bool(self.engine.history.curves.get(number))
        return exit_status(
            ExitFacts(
                exit_code=exit_code,
                experiment_state=self.state,
                stopping=runtime.stop_reason is not None,
                invalid_hp=runtime.invalid_hp,
                has_metrics=has_metrics,
                closed=number in self.engine.closed,
                final=number in self.engine.final,
                released=runtime.released,
                preempt_acked=runtime.preempt_acked,
                lost=runtime.lost is not None,
            )
        )

    def _sherpa_warning(self, message: str) -> None:
        """SHERPA's runner also raised a ``RuntimeWarning`` for a trial that ended without
        results; scripts and tests written for it (``pytest.warns``) expect one."""
        if self.settings.front_door == SHERPA:
            warnings.warn(message, RuntimeWarning, stacklevel=2)

    def _on_exit(self, number: int, job: Job, exit_code: int | None) -> None:
        crash_point("trial_exit_seen")
        status = self._exit_status(number, exit_code)
        record = self.engine.records[number]
        if status == FAILED:
            reason = self.runtime(number).lost or describe_exit(exit_code)
            output = job.info.get("output", "")
            log.error(
                "Trial %d failed (%s). Last lines of %s:\n%s",
                number,
                reason,
                output,
                tail(output) or "(no output)",
            )
            if record.restarts >= self.settings.max_restarts:
                self._sherpa_warning(f"Trial {number} failed ({reason}); its output is in {output}")
            if record.restarts < self.settings.max_restarts:
                self.engine.relaunch(number)
                log.info(
                    "Restarting trial %d (restart %d of %d) from its latest checkpoint",
                    number,
                    record.restarts + 1,
                    self.settings.max_restarts,
                )
                self._launch(number)
                return
        elif status == COMPLETED and not self.engine.history.curves.get(number):
            if self.settings.front_door == SHERPA:
                where = job.info.get("output", "its output")
                log.warning("Trial %d ended without sending metrics; see %s", number, where)
                self._sherpa_warning(f"Trial {number} ended without sending metrics; see {where}")
        if status == PAUSED:
            self.consecutive_failures = 0
            op = self.engine.ops.get(number)
            arrived = self.runtime(number).released and number not in self.engine.closed
            arrived = arrived and op is not None and not op.done  # work while it was exiting
            paused_actions = self.engine.trial_paused(number)
            log.info("Trial %d paused (checkpointed, exited)", number)
            if arrived and number not in self.engine.closed and self.state == ACTIVE:
                self.waiting.append(number)
            self._handle(paused_actions)  # work given in answer to the pause, in its order
        else:
            actions = self.engine.trial_exited(number, status, exit_code)
            self._count_outcome(number, status)
            again = self.resubmit_failed_trials and not self.runtime(number).resubmission
            if status == FAILED and again:
                new, new_actions = self.engine.add_trial(dict(record.params))
                self.runtime(new.number).resubmission = True
                log.info("Resubmitting failed trial %d as trial %d", number, new.number)
                self._handle(new_actions)
            self._handle(actions)
            self._collect_garbage(number)
        self._notify()
        self._fill()

    def _count_outcome(self, number: int, status: str) -> None:
        """Successes, and failures in a row: a search whose trials keep failing ends ERROR
        instead of relaunching a broken script without end."""
        if status in SUCCEEDED:
            self.consecutive_failures = 0
        elif status == FAILED:
            self.consecutive_failures += 1
            bound = self.settings.max_consecutive_failures
            if bound and self.consecutive_failures >= bound:
                self.fail(
                    f"{self.consecutive_failures} trials failed in a row (the last: trial "
                    f"{number}); fix the trial script, then resume (the bound is "
                    f"max_consecutive_failures={bound})"
                )

    def _stop(self, number: int, reason: str) -> None:
        """Tell the trial (preempt flag, op stream ends), then SIGTERM, then SIGKILL."""
        self._wake(number)
        job = self.running.get(number)
        runtime = self.runtime(number)
        if job is None or runtime.stop_reason is not None:
            return
        log.info("Stopping trial %d: %s", number, reason)
        runtime.stop_reason = reason
        crash_point("trial_stopping")
        loop = asyncio.get_running_loop()
        if self.settings.front_door == SHERPA:
            self.scheduler.kill(job)
            loop.call_later(self.grace_period, self._force_kill, number, job)
        else:
            loop.call_later(self.grace_period, self._terminate, number, job)

    def _terminate(self, number: int, job: Job) -> None:
        if self.running.get(number) is job:
            self.scheduler.kill(job)
            asyncio.get_running_loop().call_later(self.grace_period, self._force_kill, number, job)

    def _force_kill(self, number: int, job: Job) -> None:
        if self.running.get(number) is job:
            log.warning(
                "Trial %d ignored SIGTERM for %.0f s; killing it", number, self.grace_period
            )
            self.scheduler.kill(job, force=True)

    # -- lost attempts (ridgeline.engine.watchdog) ----------------------------------------------
    def contact(self, number: int, job: Job | None) -> None:
        """An authenticated request of trial ``number``'s attempt ``job`` arrived."""
        if self.watchdog is not None and job is not None and self.running.get(number) is job:
            if self.runtime(number).lost is None:
                self.watchdog.contact(number)

    def _declare_lost(self, number: int, silence: float) -> None:
        """The attempt went silent: its token dies now (late writes are refused), its job is
        killed, and its end counts as a failure, restarted per max_restarts like a crash."""
        job = self.running.get(number)
        runtime = self.runtime(number)
        if job is None or runtime.lost is not None or self.error is not None:
            return
        if runtime.stop_reason is not None or self.state == CANCELED:
            return  # being ended already; the kill that follows needs no word from it
        runtime.lost = f"sent nothing for {silence:.3g} s: declared lost"
        log.error("Trial %d %s", number, runtime.lost)
        self.credentials.revoke(number)
        self.engine.event(
            "trial_lost",
            trial=number,
            restarts=self.engine.records[number].restarts,
            message=f"Trial {number} {runtime.lost}",
        )
        self._wake(number)
        try:
            self.scheduler.kill(job, force=True)
        except Exception as exc:  # noqa: BLE001 - a dead node may refuse; its end comes anyway
            log.warning("Could not kill lost trial %d's job %s: %s", number, job.name, exc)
        # A job on a dead node or stuck in the kernel may never end: it is not waited for.
        asyncio.get_running_loop().call_later(self.grace_period, self._give_up_lost, number, job)

    def _give_up_lost(self, number: int, job: Job) -> None:
        if self.running.get(number) is not job or self.error is not None or self.interrupted:
            return
        log.warning(
            "Trial %d's job %s has not ended %.3g s after it was killed; its attempt is "
            "recorded as ended and a later exit of it is ignored",
            number,
            job.name,
            self.grace_period,
        )
        del self.running[number]
        self._on_exit(number, job, None)

    def _check_finished(self) -> None:
        if self.running or self.waiting:
            return
        if self.state == CANCELED or (self.engine.shutdown and self.state == ACTIVE):
            for number, record in sorted(self.engine.records.items()):
                if record.state == PAUSED and self.state == ACTIVE:
                    self._end_paused(number)  # paused by the searcher, never resumed
            self._finished.set()

    # -- control -----------------------------------------------------------------------------
    def pause(self) -> None:
        """Running trials are asked to checkpoint and exit; nothing new starts."""
        if self.state != ACTIVE:
            return
        self.state = PAUSED
        self.store.update_experiment(self.engine.experiment_id, state=PAUSED)
        self.engine.event("experiment_paused")
        log.info("Experiment paused: %d running trials asked to checkpoint", len(self.running))
        self._wake()
        loop = asyncio.get_running_loop()
        for number, job in list(self.running.items()):
            if self.settings.front_door == SHERPA:
                self.scheduler.kill(job)  # SHERPA scripts cannot checkpoint on request
                self.runtime(number).preempt_acked = True
            else:
                loop.call_later(self.grace_period * 6, self._terminate, number, job)

    def activate(self) -> None:
        """Resume a paused experiment: paused trials restart from their checkpoints."""
        if self.state != PAUSED:
            return
        self.state = ACTIVE
        self.store.update_experiment(self.engine.experiment_id, state=ACTIVE)
        self.engine.event("experiment_activated")
        for number, record in sorted(self.engine.records.items()):
            resumable = number not in self.engine.closed
            if record.state == PAUSED and resumable and number not in self.waiting:
                self.waiting.append(number)
        self._fill()

    def kill(self) -> None:
        """End everything now: trials are killed, the experiment is CANCELED."""
        self.state = CANCELED
        self.store.update_experiment(self.engine.experiment_id, state=CANCELED)
        self.engine.event("experiment_killed")
        self._wake()
        for job in list(self.running.values()):
            self.scheduler.kill(job, force=True)
        self.waiting.clear()  # none of them will start: they end CANCELED below
        for number, record in self.engine.records.items():
            if record.state in (PENDING, PAUSED) and number not in self.running:
                self.engine.trial_exited(number, CANCELED, None)
        self._check_finished()

    def kill_trial(self, number: int) -> None:
        job = self.running.get(number)
        self.engine.stop_requested.add(number)
        self.engine.closed.add(number)
        self.runtime(number).stop_reason = "killed by the user"
        self._wake(number)
        if job is not None:
            self.scheduler.kill(job, force=True)
        elif self.engine.records[number].state in (PENDING, PAUSED):
            self._handle(self.engine.trial_exited(number, STOPPED, None))
            self._fill()

    def pause_trial(self, number: int) -> None:
        """Ask one running Core-API trial to checkpoint and exit (PAUSED); it stays paused
        until ``resume_trial``, while the others run on."""
        if self.settings.front_door != CORE:
            raise ObservationError(
                "SHERPA-style trials cannot checkpoint on request, so they cannot be paused "
                "one by one: stop the trial, or pause the whole experiment"
            )
        job = self.running.get(number)
        if job is None:
            raise ObservationError(f"trial {number} is not running: only a running trial pauses")
        self.held.add(number)
        self.engine.event("trial_pause_requested", trial=number)
        log.info("Trial %d asked to checkpoint and pause", number)
        self._wake(number)
        asyncio.get_running_loop().call_later(self.grace_period * 6, self._terminate, number, job)

    def resume_trial(self, number: int) -> None:
        """Let a trial paused by ``pause_trial`` run again, from its latest checkpoint."""
        if number not in self.held:
            raise ObservationError(f"trial {number} was not paused by hand: nothing to resume")
        self.held.discard(number)
        self.engine.event("trial_resume_requested", trial=number)
        record = self.engine.records[number]
        if (
            record.state == PAUSED
            and number not in self.engine.closed
            and number not in self.waiting
        ):
            self.waiting.append(number)
        self._fill()

    def queue_trial(self, params: dict[str, Any]) -> int:
        """A configuration given by hand (the dashboard's "queue"): checked against the
        space's names, run as a trial of its own when a slot is free; it does not spend the
        searcher's budget. Returns its trial number."""
        if self.state == CANCELED or self._finished.is_set():
            raise ObservationError("the experiment has ended: it takes no new trial")
        self.engine.space.check_params(params)
        record, actions = self.engine.add_trial(dict(params))
        log.info("Trial %d queued by hand with %s", record.number, params)
        self._handle(actions)
        self._fill()
        return record.number

    # -- requests from trials ----------------------------------------------------------------
    def trial_view(self, number: int) -> dict[str, Any]:
        record = self.engine.records[number]
        return {
            "id": number,
            "experiment_id": record.experiment_id,
            "parameters": record.params,
            "state": record.state,
        }

    async def next_operation(self, number: int, wait: float) -> dict[str, Any]:
        """The trial's current operation, waiting up to ``wait`` s for the searcher to decide.
        ``done`` True: no more work now (the trial should exit, checkpointed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            op = self.engine.ops.get(number)
            if op is not None and not op.done:
                return {"op": {"id": op.id, "length": op.length}}
            if number in self.engine.closed or self.preempt_wanted(number):
                self.runtime(number).released = True
                return {"op": None, "done": True}
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closing:
                return {"op": None, "done": False}
            await self.signal(number).wait(remaining)

    async def wait_preemption(self, number: int, wait: float) -> bool:
        """True as soon as the trial should checkpoint and exit; False after ``wait`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not self.preempt_wanted(number):
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closing:
                return False
            await self.signal(number).wait(remaining)
        return True

    def acknowledge_preemption(self, number: int) -> None:
        self.runtime(number).preempt_acked = True

    def report_early_exit(self, number: int, reason: str) -> None:
        if reason != INVALID_HP:
            raise ObservationError(f"unknown early-exit reason {reason!r}: use INVALID_HP")
        self.runtime(number).invalid_hp = True

    async def job_exited(self, number: int, status: int) -> None:
        """The trial's batch job says its process ended (``schedulers/exitnotice.py``): its
        scheduler may end the wait at once instead of on its next poll."""
        job = self.running.get(number)
        if job is not None:
            await self.scheduler.exited(job, status)

    def record_progress(self, number: int, progress: dict[str, Any]) -> None:
        self.runtime(number).progress = progress

    # -- reports -----------------------------------------------------------------------------
    async def on_reports(self, number: int, reports: list[dict[str, Any]]) -> int:
        """Store reports from trial ``number``; returns how many were new.

        All are checked first (one bad report refuses the request, nothing stored), then
        committed in one transaction off the loop, grouped with other requests' reports (see
        ``MetricWriter``), and applied to the engine in arrival order before the answer. A
        huge request yields to the loop every YIELD_EVERY reports and allocates little per
        report (tuples, no per-report lists), so the garbage collector has little to walk."""
        parsed: list[_Report] = []
        by_group: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        metric = self._mirrored_metric()
        for index, raw in enumerate(reports, 1):
            report = self._parse_report(number, raw)
            parsed.append(report)
            by_group.setdefault(report.group, []).append((report.step, report.values))
            timed = self._timed_report(number, report)
            if timed is not None:
                parsed.append(timed)
                by_group.setdefault(timed.group, []).append((timed.step, timed.values))
            if report.objective is not None and metric is not None and report.mirror:
                mirrored = {metric: report.objective, **report.context}
                by_group.setdefault("validation", []).append((report.step, mirrored))
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a huge request leaves other requests their turn
        if not parsed:
            return 0
        trial_id = self.engine.records[number].id
        rows: list[Rows] = [(trial_id, group, entries) for group, entries in by_group.items()]
        return await self.writer.write(rows, lambda stored: self._on_stored(number, parsed, stored))

    def _timed_report(self, number: int, report: _Report) -> _Report | None:
        """Determined 0.38 ASHA: a validation with the searcher and time metrics is also the
        searcher's report, at the time metric's value (stored in the searcher's group, so a
        resume replays it)."""
        if self.time_metric is None or report.group != "validation":
            return None
        found = self.time_metric.searcher_input(number, report.values)
        if found is None:
            return None
        time, value = found
        return _Report(self.engine.searcher_group, time, {OBJECTIVE_KEY: value}, value, {}, False)

    def _mirrored_metric(self) -> str | None:
        """Core API searcher reports are validation metrics too (the best-validation query):
        the name they are stored under, or None."""
        if self.settings.front_door == CORE and self.settings.searcher_metric:
            return self.settings.searcher_metric
        return None

    def _parse_report(self, number: int, report: Any) -> _Report:
        if not isinstance(report, dict):
            raise ObservationError(f"trial {number}: a report must be an object, got {report!r}")
        if "group" in report:
            return self._parse_group_report(number, report)
        step, value = report.get("step"), report.get("objective")
        context = report.get("context")
        if type(step) is int and type(value) is float and 0 <= step < 2**63:
            if context is None or type(context) is dict:
                # What clients send, known good without building an error message; anything
                # else goes through the full checks below.
                context = context or {}
                values = {OBJECTIVE_KEY: value, **context}
                return _Report(self.engine.searcher_group, step, values, value, context)
        where = f"trial {number} iteration {report.get('step')!r}"
        step = check_iteration(report.get("step"), where)
        value = check_objective(report.get("objective"), where)
        context = report.get("context") or {}
        if not isinstance(context, dict):
            raise ObservationError(f"{where}: context must be an object, got {context!r}")
        values = {OBJECTIVE_KEY: value, **context}
        return _Report(self.engine.searcher_group, step, values, value, context)

    def _parse_group_report(self, number: int, report: dict[str, Any]) -> _Report:
        group, values = report.get("group"), report.get("values")
        where = f"trial {number} {group} metrics at step {report.get('step')!r}"
        if not isinstance(group, str) or not group or "." in group:
            raise ObservationError(f"{where}: group must be a name without '.'")
        if not isinstance(values, dict):
            raise ObservationError(f"{where}: values must be an object, got {values!r}")
        step = check_iteration(report.get("step"), where)
        if group == "validation":
            self._note_validation(number, values, where)
        return _Report(group, step, values, None, values)

    def _note_validation(self, number: int, values: dict[str, Any], where: str) -> None:
        """Validations must carry the searcher metric; say once which names came instead."""
        metric = self.settings.searcher_metric
        if metric in values:
            check_objective(values[metric], where)
            self._metric_seen = True
        elif not self._unmatched_validations.issuperset(values):
            if not self._unmatched_validations:
                log.warning(
                    "Trial %d reported validation metrics %s without the searcher metric %r "
                    "(searcher.metric in the config); the searcher cannot rank trials without it",
                    number,
                    sorted(values),
                    metric,
                )
            self._unmatched_validations.update(values)

    async def _on_stored(
        self, number: int, parsed: list[_Report], stored: list[list[MetricRecord]]
    ) -> int:
        """In the loop, in arrival order: the engine, searcher and results table learn of the
        reports the writer committed (``stored``: the records inserted, per group)."""
        new: dict[str, set[int]] = {}
        seqs: dict[int, int] = {}  # step -> seq of the searcher's stored reports
        for records in stored:
            for record in records:
                new.setdefault(record.group, set()).add(record.step)
                if record.group == self.engine.searcher_group:
                    seqs[record.step] = record.seq
        metric = self._mirrored_metric()
        accepted = 0
        for index, report in enumerate(parsed, 1):
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            steps = new.get(report.group)
            if not steps or report.step not in steps:
                continue  # stored before (a retry), or earlier in this request
            steps.discard(report.step)
            accepted += 1
            if report.objective is None:
                self._store_group(report.group, report.values)
                continue
            actions = self.engine.observed(
                number, report.step, report.objective, seqs.get(report.step, 0), report.context
            )
            mirrored = new.get("validation")
            if metric is not None and report.mirror and mirrored and report.step in mirrored:
                mirrored.discard(report.step)
                self._store_group("validation", {metric: report.objective})
            self._handle(actions)
        if accepted:
            self._notify()
        self._launch_waiting()  # paused trials the reports promoted start now
        return accepted

    def _store_group(self, group: str, values: dict[str, Any]) -> None:
        """A stored validation report may be the best so far (best-validation queries)."""
        metric = self.settings.searcher_metric
        if group == "validation" and metric in values:
            value = float(values[metric])
            best = self.best_validation
            if math.isfinite(value) and (
                best is None or (value < best if self.settings.smaller_is_better else value > best)
            ):
                self.best_validation = value

    def complete_operation(self, number: int, op_id: int, metric: Any) -> None:
        actions = self.engine.complete_operation(number, op_id, metric)
        self._metric_seen = True
        self._handle(actions)
        self._notify()
        self._launch_waiting()  # paused trials the report promoted start now

    # -- checkpoints (ridgeline.engine.checkpoints: ids checked, folders confined) -----------
    @functools.cached_property
    def checkpoints(self) -> Checkpoints:
        settings = self.settings
        return Checkpoints(
            self.engine, settings.checkpoint_dir, settings.searcher_metric, settings.retention
        )

    def register_checkpoint(
        self, number: int, uuid: Any, steps: Any, metadata: Any
    ) -> CheckpointRecord:
        return self.checkpoints.register(number, uuid, steps, metadata)

    def checkpoint_info(self, number: int | None, uuid: Any) -> CheckpointRecord:
        """``number`` None: any trial's checkpoint of this experiment (control requests)."""
        return self.checkpoints.info(uuid, number)

    def delete_checkpoint(self, number: int | None, uuid: Any) -> CheckpointRecord:
        return self.checkpoints.delete(uuid, number)

    def _collect_garbage(self, number: int | None = None) -> None:
        self.checkpoints.collect_garbage(number)

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self)

    # -- restart -----------------------------------------------------------------------------
    def _resume_trials(self) -> None:
        """Re-attach trials whose process outlived the old coordinator; re-run the others."""
        for number, record in sorted(self.engine.records.items()):
            if record.state in TRIAL_DONE_STATES or record.state == PAUSED:
                continue
            if number in self.engine.unclaimed:
                continue  # stored, but the searcher's saved state has not made it: it will
            job = None
            if record.state == RUNNING and record.job:
                job = self.scheduler.reattach(record.job, f"trial_{number}")
            if job is not None:
                log.info("Re-attached trial %d (pid %s)", number, job.info.get("pid"))
                digest = job.info.get(TOKEN_DIGEST)  # stored with the job at launch
                if digest:
                    self.credentials.restore(number, str(digest))
                else:
                    log.warning("Trial %d holds no token this coordinator knows", number)
                self._watch(number, job)
                if number in self.engine.stop_requested:  # asked before the restart: still is
                    self._stop(number, "asked to stop before the coordinator restarted")
            elif self.state == ACTIVE:
                if record.state == RUNNING:
                    self.engine.relaunch(number)
                log.info("Re-running trial %d, whose process is gone", number)
                self._launch(number)
        if self.state == ACTIVE:
            for number, record in sorted(self.engine.records.items()):
                op = self.engine.ops.get(number)
                has_work = number not in self.engine.closed or (op is not None and not op.done)
                idle = number not in self.waiting and number not in self.running
                claimed = number not in self.engine.unclaimed
                if record.state in (PAUSED, PENDING) and has_work and idle and claimed:
                    self.waiting.append(number)

    def _abandon_running(self) -> None:
        """On interrupt, end trial processes; they stay RUNNING in the store for a resume."""
        for job in self.running.values():
            self.scheduler.kill(job, force=False)
        print(
            "Interrupted: running trials were ended; resume the search to carry on.",
            file=sys.stderr,
        )


__all__ = ["CORE", "SHERPA", "Coordinator", "RunSettings"]
