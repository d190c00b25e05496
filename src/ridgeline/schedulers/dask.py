"""Trials on the workers of an existing ``dask.distributed`` cluster: one task, one trial.

Each attempt is one task (``schedulers/daskjobs.py`` runs on the worker): it starts the trial
command under the exit-status wrapper, output into ``<output_dir>/jobs/<name>.out`` and the
exit status into ``<name>.exit`` (the folder must be on a filesystem the workers share with
the coordinator, and the command's paths valid there), and returns the exit code. The trial's
variables (its token among them) travel as the task's pickled arguments over dask's own
connection, never on a command line: secure the cluster (dask's TLS ``Security``) when others
can reach its scheduler.

``wait`` awaits the task's future through a done-callback, so no thread blocks per trial.
``kill`` sends ``daskjobs.signal_trial`` to every worker (``Client.run``): the worker that
runs the trial signals its process group (SIGTERM, or SIGKILL with ``force``); a task not yet
started is cancelled and, should it start anyway, never starts the trial. Each task's future
is also published on the dask scheduler under its key (kept in the job's info), so the task
outlives a coordinator that dies, and a restarted coordinator re-attaches to it.

How a task ended: the wrapper's record first, else the task's result; a task dask lost (its
worker died: ``KilledWorker``, a cancelled or lost future) counts as killed, and a task dask
re-ran after its worker died returns SIGKILL's code rather than running the trial twice:
none of these is a success.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.errors import SchedulerError
from ridgeline.private import private_dir
from ridgeline.schedulers import daskjobs, exitstatus, jobfiles
from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.schedulers.cluster import check_gpus_per_trial

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskScheduler"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise SchedulerError(
            "DaskScheduler needs dask.distributed, which is not installed: "
            "pip install ridgeline[dask]"
        ) from exc
    return distributed


class _Task:
    """A job's private state: its dask future, and whether this scheduler ended it."""

    def __init__(self, future: distributed.Future) -> None:
        self.future = future
        self.killed = False
        self.forced = False


class _Ended:
    """The handle of a job that had ended before it was re-attached."""

    def __init__(self, code: int | None) -> None:
        self.code = code


class DaskScheduler(Scheduler):
    """Runs each trial as one task on an existing dask cluster, e.g.
    ``DaskScheduler("tcp://10.0.0.5:8786")``.

    ``gpus_per_trial`` asks each task for that many of the workers' ``GPU`` resource (start
    workers with ``--resources GPU=2``); the trial gets ``CUDA_VISIBLE_DEVICES`` set to ids
    no other trial on that worker holds (the worker's own ``CUDA_VISIBLE_DEVICES`` entries,
    else 0..N-1). A worker runs as many trials at once as it has threads.
    """

    def __init__(self, address: str, output_dir: str = "", gpus_per_trial: int = 0) -> None:
        if not isinstance(address, str) or not address:
            raise SchedulerError(
                f"DaskScheduler address must be the dask scheduler's address such as "
                f"'tcp://127.0.0.1:8786', got {address!r}"
            )
        check_gpus_per_trial(type(self).__name__, gpus_per_trial)
        _distributed()
        self.address = address
        self.output_dir = str(output_dir)
        self.gpus_per_trial = gpus_per_trial
        self._client: distributed.Client | None = None
        self._calls: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- the connection ------------------------------------------------------------------------

    def callback_host(self) -> str:
        """The local address of this machine's connection to the dask scheduler (the route
        toward it): the workers reach this machine on that network."""
        from ridgeline.schedulers.callback import toward, url_host

        return toward(url_host(self.address))

    def client(self) -> distributed.Client:
        """The connection to the dask scheduler, made on first use."""
        with self._lock:
            if self._client is None:
                dist = _distributed()
                try:
                    self._client = dist.Client(
                        self.address, timeout=CONNECT_TIMEOUT_S, set_as_default=False
                    )
                except (OSError, TimeoutError) as exc:
                    raise SchedulerError(
                        f"DaskScheduler cannot reach the dask scheduler at {self.address!r}: {exc}"
                    ) from exc
            return self._client

    def _background(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._calls is None:
                self._calls = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dask")
            return self._calls

    def submit_options(self) -> dict[str, Any]:
        """The options of each task's ``Client.submit`` beyond its function and arguments."""
        options: dict[str, Any] = {"pure": False, "retries": 0}
        if self.gpus_per_trial:
            options["resources"] = {"GPU": self.gpus_per_trial}
        return options

    def check(self) -> None:
        """The dask scheduler answers, and (with ``gpus_per_trial``) some worker has the GPUs."""
        client = self.client()
        if not self.gpus_per_trial:
            return
        workers = client.scheduler_info().get("workers", {})
        offered = [w.get("resources", {}).get("GPU", 0) for w in workers.values()]
        if workers and max(offered) < self.gpus_per_trial:
            raise SchedulerError(
                f"DaskScheduler gpus_per_trial={self.gpus_per_trial}, but no worker of "
                f"{self.address} offers that many GPU resources (most: {max(offered)}); start "
                f"workers with --resources GPU=N"
            )

    # -- submitting and waiting ----------------------------------------------------------------

    def submit(
        self, command: Sequence[str], env: Mapping[str, str], name: str, cwd: str | None = None
    ) -> Job:
        jobs_dir = private_dir(Path(self.output_dir or ".").resolve() / "jobs")
        jobfiles.retire_attempt(jobs_dir, name)
        output = jobfiles.output_path(jobs_dir, name)
        exit_file = jobfiles.exit_path(jobs_dir, name)
        claim = jobs_dir / f"{name}.dask"
        claim.unlink(missing_ok=True)
        key = f"ridgeline-{name}-{uuid.uuid4().hex}"
        future = self.client().submit(
            daskjobs.run_trial,
            key,
            list(command),
            dict(env),
            str(Path(cwd or os.getcwd()).resolve()),
            str(output),
            str(exit_file),
            str(claim),
            self.gpus_per_trial,
            key=key,
            **self.submit_options(),
        )
        self._background().submit(self._publish, future, key)
        info = {"key": key, "output": str(output), "exit_file": str(exit_file)}
        return Job(name, info, _Task(future))

    def _publish(self, future: distributed.Future, key: str) -> None:
        try:
            self.client().publish_dataset(future, name=key, override=True)
        except Exception as exc:  # the task still runs; only re-attaching is lost
            log.warning("could not publish dask task %s (no re-attaching to it): %s", key, exc)

    async def wait(self, job: Job) -> int | None:
        handle = job.handle
        if isinstance(handle, _Ended):
            return handle.code
        if not isinstance(handle, _Task):
            raise SchedulerError(f"{job.name} was not submitted by this DaskScheduler")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        def settle(_: Any) -> None:  # called on one of dask's threads
            try:
                loop.call_soon_threadsafe(wake)
            except RuntimeError:  # the loop has closed: nobody waits any more
                pass

        handle.future.add_done_callback(settle)
        await done
        # on the background thread, so that it comes after the task's publishing
        return await asyncio.wrap_future(self._background().submit(self._outcome, job, handle))

    def _outcome(self, job: Job, handle: _Task) -> int | None:
        """How the task ended (see the module's docstring); runs in a thread."""
        future, key = handle.future, job.info["key"]
        try:
            status = future.status
            if status == "finished":
                return int(future.result())
            recorded = exitstatus.read_status(job.info.get("exit_file"))
            if recorded is not None:
                return recorded
            killed = -int(signal.SIGKILL)
            if handle.killed:
                return killed if handle.forced else -int(signal.SIGTERM)
            reason = future.exception() if status == "error" else f"the task was {status}"
            log.warning("dask task %s (%s) was lost: %s; counted as killed", key, job.name, reason)
            with open(job.info["output"], "a") as out:
                out.write(f"ridgeline: the dask task running this trial was lost: {reason}\n")
            return killed
        finally:
            self._release(key, handle.killed)

    def _release(self, key: str, signalled: bool) -> None:
        client = self.client()
        try:
            client.unpublish_dataset(key)
        except Exception:  # not published (it failed, or was released already)
            pass
        if signalled:
            try:
                client.run(daskjobs.forget, key, on_error="return")
            except Exception as exc:
                log.debug("could not clear the kill of %s on the workers: %s", key, exc)

    # -- stopping ------------------------------------------------------------------------------

    def kill(self, job: Job, force: bool = False) -> None:
        """Signal the trial's process group on its worker (in a background thread); a task
        that has not started is cancelled."""
        handle = job.handle
        if not isinstance(handle, _Task) or handle.future.done():
            return
        handle.killed = True
        handle.forced = handle.forced or force
        sig = int(signal.SIGKILL if force else signal.SIGTERM)
        self._background().submit(self._signal, handle.future, job.info["key"], sig)

    def _signal(self, future: distributed.Future, key: str, sig: int) -> None:
        client = self.client()
        try:
            found = client.run(daskjobs.signal_trial, key, sig, on_error="return")
        except Exception as exc:
            log.warning("could not signal dask task %s: %s", key, exc)
            found = {}
        if not any(result is True for result in found.values()):
            client.cancel([future], force=True)

    # -- after a coordinator restart -----------------------------------------------------------

    def reattach(self, info: Mapping[str, Any], name: str) -> Job | None:
        """The job if its task still runs (or ended and is still published on the dask
        scheduler), or if it ended and its exit status was recorded; None when the dask
        scheduler no longer knows the task (it was restarted): the trial then runs again."""
        recorded = exitstatus.read_status(info.get("exit_file"))
        key = info.get("key")
        if recorded is not None:
            if key:
                self._background().submit(self._release, key, False)
            return Job(name, dict(info), _Ended(recorded))
        if not key:
            return None
        try:
            future = self.client().get_dataset(key)
        except KeyError:
            return None
        return Job(name, dict(info), _Task(future))

    def close(self) -> None:
        """Finish the background calls and disconnect; a later search connects again."""
        with self._lock:
            calls, self._calls = self._calls, None
            client, self._client = self._client, None
        if calls is not None:
            calls.shutdown(wait=True)
        if client is not None:
            client.close()
