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

A trial of more slots than one worker holds runs across nodes (``schedulers/daskgang.py``
says how many and where): one task per node, placed all at once on distinct workers or not
at all (``wait`` asks the dask scheduler for a reservation until one is granted), each
running the trial's command with ``RIDGELINE_CONTAINER_RANK``, ``RIDGELINE_CONTAINER_ADDRS``
(the workers' hosts, the chief's first) and ``DET_CHIEF_IP``. The gang is one job: the first
node that fails (or is lost) fails the attempt with its exit code, and the other nodes are
sent SIGTERM, then SIGKILL after ``GANG_GRACE_S``; ``kill`` signals every node. All nodes
write to the one output file; node 0 records its status in ``<name>.exit``, node k in
``<name>.node<k>.exit``.
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
from ridgeline.schedulers import daskgang, daskjobs, exitstatus, jobfiles
from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.schedulers.cluster import check_gpus_per_trial
from ridgeline.trial import env as trial_env

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskScheduler"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
GANG_GRACE_S = 10.0  # after a node failed: how long the others get to end on SIGTERM
PLACE_EVERY_S = 0.5  # how often a waiting gang asks again for free workers


def _distributed() -> Any:
    try:
        import distributed  # lazy: optional extra (dask)
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


class _Gang:
    """A trial across nodes: its node tasks' futures once placed, the codes of nodes known to
    have ended (after re-attaching), and whether this scheduler ended it."""

    def __init__(self, nodes: int, submit: Any = None) -> None:
        self.futures: list[distributed.Future | None] = [None] * nodes
        self.ended: dict[int, int] = {}
        self.submit = submit  # places and submits the tasks (None: placed already)
        self.killed = False
        self.forced = False
        self.lock = threading.Lock()


class DaskScheduler(Scheduler):
    """Runs each trial as one task on an existing dask cluster, e.g.
    ``DaskScheduler("tcp://10.0.0.5:8786")``.

    ``gpus_per_trial`` asks each task for that many of the workers' ``GPU`` resource (start
    workers with ``--resources GPU=2``); the trial gets ``CUDA_VISIBLE_DEVICES`` set to ids
    no other trial on that worker holds (the worker's own ``CUDA_VISIBLE_DEVICES`` entries,
    else 0..N-1). A worker runs as many trials at once as it has threads.

    ``gpus_per_trial`` is the trial's ``resources.slots_per_trial``: on workers that offer a
    ``slots`` resource and no ``GPU`` (``--resources slots=N``) it counts those CPU slots. A
    trial of more slots than ``slots_per_node`` (default: the most one worker offers) runs
    across several workers, one task per node (see the module's docstring).
    """

    def __init__(
        self,
        address: str,
        output_dir: str = "",
        gpus_per_trial: int = 0,
        slots_per_node: int | None = None,
    ) -> None:
        if not isinstance(address, str) or not address:
            raise SchedulerError(
                f"DaskScheduler address must be the dask scheduler's address such as "
                f"'tcp://127.0.0.1:8786', got {address!r}"
            )
        check_gpus_per_trial(type(self).__name__, gpus_per_trial)
        if slots_per_node is not None and (
            isinstance(slots_per_node, bool) or not isinstance(slots_per_node, int)
            or slots_per_node < 1
        ):  # fmt: skip
            raise SchedulerError(
                f"DaskScheduler slots_per_node must be a whole number >= 1, got {slots_per_node!r}"
            )
        self.slots_per_node = slots_per_node
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
        # lazy: keeps `import ridgeline.cli` light
        from ridgeline.schedulers.callback import toward, url_host

        return toward(url_host(self.address))

    def client(self) -> distributed.Client:
        """The connection to the dask scheduler, made on first use."""
        with self._lock:
            if self._client is None:
                dist = _distributed()
                # lazy: optional extra (cloudpickle)
                import cloudpickle  # type: ignore[import-untyped]

                # gangs are reserved by daskgang's calls on the dask scheduler, sent by value:
                # the scheduler's machine needs no ridgeline
                cloudpickle.register_pickle_by_value(daskgang)
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

    def submit_options(self, plan: daskgang.GangPlan | None = None) -> dict[str, Any]:
        """The options of each task's ``Client.submit`` beyond its function and arguments."""
        options: dict[str, Any] = {"pure": False, "retries": 0}
        if plan is not None and plan.resource and plan.per_node:
            options["resources"] = {plan.resource: plan.per_node}
        elif self.gpus_per_trial:
            options["resources"] = {"GPU": self.gpus_per_trial}
        return options

    def plan(self) -> daskgang.GangPlan:
        """How a trial is laid out over the workers there are now (one node, or a gang)."""
        if not self.gpus_per_trial:
            return daskgang.GangPlan(None, 1, 0)
        workers = self.client().scheduler_info().get("workers", {})
        offers = [dict(w.get("resources") or {}) for w in workers.values()]
        try:
            return daskgang.plan_gang(self.gpus_per_trial, offers, self.slots_per_node)
        except ValueError as exc:
            raise SchedulerError(f"DaskScheduler at {self.address}: {exc}") from None

    def check(self) -> None:
        """The dask scheduler answers, and (with slots) the workers can hold a trial."""
        self.client()
        self.plan()

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
        plan = self.plan()
        if plan.nodes > 1:
            return self._submit_gang(plan, command, env, name, cwd, jobs_dir, key)
        full_env = dict(env)
        if plan.resource == "slots" and plan.per_node:  # CPU slots: one process per slot
            full_env[trial_env.SLOT_IDS] = ",".join(str(i) for i in range(plan.per_node))
        future = self.client().submit(
            daskjobs.run_trial,
            key,
            list(command),
            full_env,
            str(Path(cwd or os.getcwd()).resolve()),
            str(output),
            str(exit_file),
            str(claim),
            plan.per_node if plan.resource == "GPU" else 0,
            key=key,
            **self.submit_options(plan),
        )
        self._background().submit(self._publish, future, key)
        info = {
            "key": key,
            "output": str(output),
            "exit_file": str(exit_file),
            "address": self.address,  # where to end it without a coordinator
        }
        return Job(name, info, _Task(future))

    def _submit_gang(
        self,
        plan: daskgang.GangPlan,
        command: Sequence[str],
        env: Mapping[str, str],
        name: str,
        cwd: str | None,
        jobs_dir: Path,
        gang: str,
    ) -> Job:
        """A trial across ``plan.nodes`` workers: the job now, its tasks once ``wait`` has
        found free workers for all of them."""
        env, command = dict(env), list(command)
        output = jobfiles.output_path(jobs_dir, name)
        nodes = []
        for rank in range(plan.nodes):
            stem = name if rank == 0 else f"{name}.node{rank}"
            exit_file, claim = jobs_dir / f"{stem}.exit", jobs_dir / f"{stem}.dask"
            if rank:
                exit_file.unlink(missing_ok=True)
            claim.unlink(missing_ok=True)
            nodes.append({"key": f"{gang}-node{rank}", "exit_file": str(exit_file)})
        folder = str(Path(cwd or os.getcwd()).resolve())
        keys = [n["key"] for n in nodes]

        def place_and_submit(hosts_by_worker: list[str]) -> list[distributed.Future]:
            # lazy: keeps `import ridgeline.cli` light
            from ridgeline.schedulers.callback import url_host

            hosts = [url_host(worker) for worker in hosts_by_worker]
            futures: list[distributed.Future] = []
            try:
                submit_nodes(hosts_by_worker, hosts, futures)
            except BaseException:
                if futures:
                    self.client().cancel(futures, force=True)
                self.client().run_on_scheduler(daskgang.release, gang)
                raise
            self.client().run_on_scheduler(daskgang.submitted, gang)
            with open(output, "a") as out:
                out.write(f"ridgeline: trial placed on {plan.nodes} nodes: {', '.join(hosts)}\n")
            for future, key in zip(futures, keys, strict=True):
                self._background().submit(self._publish, future, key)
            return futures

        def submit_nodes(
            hosts_by_worker: list[str], hosts: list[str], futures: list[distributed.Future]
        ) -> None:
            for rank, (worker, node) in enumerate(zip(hosts_by_worker, nodes, strict=True)):
                node_env = dict(env)
                node_env[trial_env.CONTAINER_ADDRS] = ",".join(hosts)
                node_env[trial_env.CONTAINER_RANK] = str(rank)
                node_env[trial_env.CHIEF_IP] = hosts[0]
                if plan.resource != "GPU":
                    node_env[trial_env.SLOT_IDS] = ",".join(str(i) for i in range(plan.per_node))
                stem = name if rank == 0 else f"{name}.node{rank}"
                futures.append(
                    self.client().submit(
                        daskjobs.run_trial,
                        node["key"],
                        list(command),
                        node_env,
                        folder,
                        str(output),
                        node["exit_file"],
                        str(jobs_dir / f"{stem}.dask"),
                        plan.per_node if plan.resource == "GPU" else 0,
                        {"rank": rank, "nodes": plan.nodes, "gang": gang},
                        key=node["key"],
                        workers=[worker],
                        allow_other_workers=False,
                        **self.submit_options(plan),
                    )
                )

        def reserve() -> list[str] | None:
            return self.client().run_on_scheduler(
                daskgang.reserve, gang, keys, plan.resource, plan.per_node
            )

        info = {
            "key": gang,
            "output": str(output),
            "exit_file": nodes[0]["exit_file"],
            "nodes": nodes,
            "address": self.address,
        }
        return Job(name, info, _Gang(plan.nodes, (reserve, place_and_submit)))

    def _publish(self, future: distributed.Future, key: str) -> None:
        try:
            self.client().publish_dataset(future, name=key, override=True)
        except Exception as exc:  # the task still runs; only re-attaching is lost
            log.warning("could not publish dask task %s (no re-attaching to it): %s", key, exc)

    async def wait(self, job: Job) -> int | None:
        handle = job.handle
        if isinstance(handle, _Ended):
            return handle.code
        if isinstance(handle, _Gang):
            return await self._wait_gang(job, handle)
        if not isinstance(handle, _Task):
            raise SchedulerError(f"{job.name} was not submitted by this DaskScheduler")
        await _settled(handle.future)
        # on the background thread, so that it comes after the task's publishing
        return await asyncio.wrap_future(self._background().submit(self._outcome, job, handle))

    def _outcome(self, job: Job, handle: _Task) -> int | None:
        """How the task ended (see the module's docstring); runs in a thread."""
        key = job.info["key"]
        try:
            return _task_code(job, handle.future, key, job.info.get("exit_file"), handle)
        finally:
            self._release(key, handle.killed)

    async def _wait_gang(self, job: Job, gang: _Gang) -> int | None:
        """Place the gang when it is new, then wait for every node; the first failure's code
        (the others are stopped when one fails), else 0."""
        if gang.submit is not None:
            placed = await self._place(job, gang)
            if placed is not None:
                return placed
        nodes = job.info["nodes"]
        first: int | None = None
        stopping: asyncio.TimerHandle | None = None
        pending: dict[asyncio.Future[Any], int] = {}
        for rank, future in enumerate(gang.futures):
            if rank in gang.ended:
                code = gang.ended[rank]
                first = code if first is None and code != 0 else first
            elif future is not None:
                pending[asyncio.ensure_future(_settled(future))] = rank
        if first is not None and pending:
            self.kill(job)
        loop = asyncio.get_running_loop()
        try:
            while pending:
                if first is not None and stopping is None:
                    stopping = loop.call_later(GANG_GRACE_S, self.kill, job, True)
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for settled in done:
                    rank = pending.pop(settled)
                    future = gang.futures[rank]
                    assert future is not None
                    code = await asyncio.to_thread(
                        _task_code, job, future, nodes[rank]["key"], nodes[rank]["exit_file"], gang
                    )
                    if code is None or code == 0 or first is not None:
                        continue
                    first = code
                    if pending:
                        log.info(
                            "%s: node %d ended with %s; stopping the other nodes",
                            job.name, rank, code,
                        )  # fmt: skip
                        self.kill(job)
        finally:
            if stopping is not None:
                stopping.cancel()
            for settled in pending:
                settled.cancel()
            await asyncio.wrap_future(
                self._background().submit(self._release_gang, job.info, gang.killed)
            )
        return first if first is not None else 0

    async def _place(self, job: Job, gang: _Gang) -> int | None:
        """Ask for distinct free workers until granted, then submit the node tasks; None once
        submitted, or the code of a gang killed before it was placed."""
        reserve, place_and_submit = gang.submit
        announced = False
        while True:
            with gang.lock:
                if gang.killed:
                    gang.submit = None
                    return -int(signal.SIGKILL if gang.forced else signal.SIGTERM)
            try:
                workers = await asyncio.to_thread(reserve)
                if workers is not None:
                    futures = await asyncio.to_thread(place_and_submit, workers)
                    break
            except Exception as exc:  # noqa: BLE001 - this attempt fails, the run goes on
                log.warning("%s could not be placed on the dask cluster: %s", job.name, exc)
                with open(job.info["output"], "a") as out:
                    out.write(f"ridgeline: the trial could not be placed on its nodes: {exc}\n")
                gang.submit = None
                await asyncio.wrap_future(
                    self._background().submit(self._release_gang, job.info, False)
                )
                return 1
            if not announced:
                announced = True
                log.info("%s waits for %d free workers", job.name, len(gang.futures))
            await asyncio.sleep(PLACE_EVERY_S)
        with gang.lock:
            gang.futures = list(futures)
            gang.submit = None
            killed, forced = gang.killed, gang.forced
        if killed:  # killed while its tasks were being submitted
            self._background().submit(self._signal_gang, job, gang, forced)
        return None

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

    def _release_gang(self, info: Mapping[str, Any], signalled: bool) -> None:
        for node in info["nodes"]:
            self._release(node["key"], signalled)
        try:
            daskjobs.forget_gang(info["key"], len(info["nodes"]), self.client())
        except Exception as exc:  # noqa: BLE001 - leftovers on the scheduler only
            log.debug("could not forget the gang %s: %s", info["key"], exc)

    # -- stopping ------------------------------------------------------------------------------

    def kill(self, job: Job, force: bool = False) -> None:
        """Signal the trial's process group on its worker (in a background thread); a task
        that has not started is cancelled. A trial across nodes: every node."""
        handle = job.handle
        if isinstance(handle, _Gang):
            with handle.lock:
                handle.killed = True
                handle.forced = handle.forced or force
                if handle.submit is not None:
                    return  # not placed yet: it never will be
            self._background().submit(self._signal_gang, job, handle, force)
            return
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

    def _signal_gang(self, job: Job, gang: _Gang, force: bool) -> None:
        sig = int(signal.SIGKILL if force else signal.SIGTERM)
        keys = [
            node["key"]
            for node, future in zip(job.info["nodes"], gang.futures, strict=True)
            if future is not None and not future.done()
        ]
        if not keys:
            return
        client = self.client()
        try:
            found = client.run(daskjobs.signal_trials, keys, sig, on_error="return")
        except Exception as exc:
            log.warning("could not signal the nodes of %s: %s", job.name, exc)
            found = {}
        running = {key for hits in found.values() if isinstance(hits, list) for key in hits}
        idle = [f for f in gang.futures if f is not None and f.key in set(keys) - running]
        if idle:
            client.cancel(idle, force=True)

    # -- after a coordinator restart -----------------------------------------------------------

    def reattach(self, info: Mapping[str, Any], name: str) -> Job | None:
        """The job if its task still runs (or ended and is still published on the dask
        scheduler), or if it ended and its exit status was recorded; None when the dask
        scheduler no longer knows the task (it was restarted): the trial then runs again."""
        if info.get("nodes"):
            return self._reattach_gang(info, name)
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

    def _reattach_gang(self, info: Mapping[str, Any], name: str) -> Job | None:
        """A trial across nodes: each node's recorded status, else its published task; a node
        with neither (never placed, or lost with the dask scheduler) counts as killed, so the
        wait stops the others. None when no node is known at all: the trial runs again."""
        nodes = info["nodes"]
        gang = _Gang(len(nodes))
        recorded: list[tuple[float, int, int]] = []
        known = 0
        for rank, node in enumerate(nodes):
            code = exitstatus.read_status(node.get("exit_file"))
            if code is not None:
                recorded.append((Path(node["exit_file"]).stat().st_mtime, rank, code))
                known += 1
                continue
            try:
                gang.futures[rank] = self.client().get_dataset(node["key"])
                known += 1
            except KeyError:
                gang.ended[rank] = -int(signal.SIGKILL)
        if not known:
            return None
        for _, rank, code in sorted(recorded):  # the earliest recorded failure counts first
            gang.ended[rank] = code
        if all(future is None for future in gang.futures):
            failures = [code for _, _, code in sorted(recorded) if code != 0]
            self._background().submit(self._release_gang, dict(info), False)
            return Job(name, dict(info), _Ended(failures[0] if failures else 0))
        return Job(name, dict(info), gang)

    def close(self) -> None:
        """Finish the background calls and disconnect; a later search connects again."""
        with self._lock:
            calls, self._calls = self._calls, None
            client, self._client = self._client, None
        if calls is not None:
            calls.shutdown(wait=True)
        if client is not None:
            client.close()


async def _settled(future: distributed.Future) -> None:
    """Wait for a dask future to finish, fail or be cancelled, without a thread."""
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

    future.add_done_callback(settle)
    await done


def _task_code(
    job: Job, future: distributed.Future, key: str, exit_file: str | None, ended_by: Any
) -> int:
    """How one task ended: its result, else its recorded status, else killed (by this
    scheduler, or lost with its worker, which is said in the trial's output)."""
    status = future.status
    if status == "finished":
        return int(future.result())
    recorded = exitstatus.read_status(exit_file)
    if recorded is not None:
        return recorded
    killed = -int(signal.SIGKILL)
    if ended_by.killed:
        return killed if ended_by.forced else -int(signal.SIGTERM)
    reason = future.exception() if status == "error" else f"the task was {status}"
    log.warning("dask task %s (%s) was lost: %s; counted as killed", key, job.name, reason)
    with open(job.info["output"], "a") as out:
        out.write(f"ridgeline: the dask task running this trial was lost: {reason}\n")
    return killed


def kill_recorded_task(info: Mapping[str, Any], name: str) -> str | None:
    """End the dask task(s) of a trial's stored job ``info`` for a coordinator that cannot
    (``experiment kill`` when it does not answer): its process group on its worker gets
    SIGKILL, a task not started is cancelled. ``"dask task <key>"``, or None when ``info``
    names no task that the dask scheduler still knows."""
    address, key = info.get("address"), info.get("key")
    if not address or not key:
        return None
    scheduler = DaskScheduler(str(address))
    try:
        job = scheduler.reattach(info, name)
        if job is None or isinstance(job.handle, _Ended):
            return None
        scheduler.kill(job, force=True)
    finally:
        scheduler.close()  # waits for the kill
    return f"dask task {key}"
