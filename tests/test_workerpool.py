"""The worker pool's bookkeeping (``schedulers/workerpool.py``) in one event loop: how many
worker jobs it asks for, what a claim hands out, when a worker is told to go, and what happens
to a hand-over that never arrived or a worker job the batch system refused. The batch system
is played by three small functions; tests/cluster/test_slurm_workers.py runs the real one."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import pytest

from ridgeline.errors import SchedulerError
from ridgeline.launch.worker import WORKER_NAME, WORKER_TOKEN, apply
from ridgeline.schedulers.workerpool import Task, WorkerPool


class Cluster:
    """What the pool calls: submissions (job ids 100, 101, ...), cancels, and job ends."""

    def __init__(self, refuse: bool = False) -> None:
        self.submitted: list[tuple[str, dict[str, str]]] = []
        self.cancelled: list[str] = []
        self.refuse = refuse
        self.ended: dict[str, asyncio.Event] = {}

    def start(self, name: str, env: dict[str, str]) -> concurrent.futures.Future[str]:
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        if self.refuse:
            future.set_exception(SchedulerError("sbatch refused the job: no such partition"))
            return future
        self.submitted.append((name, env))
        future.set_result(str(99 + len(self.submitted)))
        return future

    def cancel(self, job_id: str, force: bool) -> None:
        self.cancelled.append(job_id)

    async def watch(self, job_id: str) -> None:
        await self.ended.setdefault(job_id, asyncio.Event()).wait()


def task(number: int, **extra: str) -> Task:
    env = {"PATH": "/bin", "RIDGELINE_TOKEN": f"token-{number}", "RIDGELINE_TRIAL_ID": str(number)}
    claimed: list[str] = []
    lost: list[bool] = []
    made = Task(
        f"trial_{number}", ["python3", "train.py"], {**env, **extra}, "/work",
        f"/out/jobs/trial_{number}.exit", f"/out/jobs/trial_{number}.out",
        concurrent.futures.Future(), claimed.append, lambda: lost.append(True),
    )  # fmt: skip
    made.claimed, made.lost = claimed, lost  # type: ignore[attr-defined]
    return made


def pool_with(cluster: Cluster, idle_s: float = 60.0) -> WorkerPool:
    return WorkerPool(cluster.start, cluster.cancel, cluster.watch, idle_s)


def test_each_trial_no_worker_is_about_to_take_gets_a_worker_job() -> None:
    async def scenario() -> dict[str, Any]:
        cluster = Cluster()
        pool = pool_with(cluster)
        first, second = task(1, SEED="1"), task(2)
        pool.add(first)
        pool.add(second)
        assert len(cluster.submitted) == 2  # nobody was on the way for either
        (name, env), _ = cluster.submitted
        # A worker's environment: the trials' common variables and its credentials, none of
        # a trial's own.
        assert env[WORKER_NAME] == name and pool.admits(env[WORKER_TOKEN])
        assert "RIDGELINE_TOKEN" not in env and "RIDGELINE_TRIAL_ID" not in env
        assert not pool.admits("token-1")
        given = await pool.claim(name, 30)
        trial = given["trial"]
        # It sends what differs from the worker's own environment, and what to drop.
        assert trial["name"] == "trial_1" and trial["command"] == ["python3", "train.py"]
        assert trial["env"] == {"RIDGELINE_TOKEN": "token-1", "RIDGELINE_TRIAL_ID": "1"}
        assert trial["unset"] == []
        assert first.claimed == ["100"]  # type: ignore[attr-defined]
        # The other worker's environment came from the same variables: trial 2 has no SEED.
        other = (await pool.claim(cluster.submitted[1][0], 30))["trial"]
        assert other["name"] == "trial_2" and other["unset"] == ["SEED"]
        # The trial ends; the worker is on its way back, so a new trial needs no new job.
        pool.trial_ended(first, worker_leaves=False)
        third = task(3)
        pool.add(third)
        assert len(cluster.submitted) == 2
        again = await pool.claim(name, 30)
        return {"again": again["trial"]["name"]}

    assert asyncio.run(scenario()) == {"again": "trial_3"}


def test_a_worker_variable_layering_keeps_the_workers_own_and_drops_its_credentials() -> None:
    worker_env = {"PATH": "/bin", "SLURM_JOB_ID": "7", WORKER_TOKEN: "w", WORKER_NAME: "n"}
    trial = apply(worker_env, {"RIDGELINE_TOKEN": "t"}, ["GONE"])
    assert trial == {"PATH": "/bin", "SLURM_JOB_ID": "7", "RIDGELINE_TOKEN": "t"}


def test_an_idle_worker_waits_then_is_told_to_go() -> None:
    async def scenario() -> list[dict[str, Any]]:
        cluster = Cluster()
        pool = pool_with(cluster, idle_s=0.2)
        pool.add(task(1))
        name = cluster.submitted[0][0]
        await pool.claim(name, 30)
        pool.trial_ended(pool.workers[name].task, worker_leaves=False)  # type: ignore[arg-type]
        answers = [await pool.claim(name, 0.05)]  # asks again before idle_s has passed
        answers.append(await pool.claim(name, 30))  # waits out idle_s: told to go
        answers.append(await pool.claim("worker_stranger_1", 30))
        return answers

    waited, gone, stranger = asyncio.run(scenario())
    assert waited == {"wait": True}
    assert gone["exit"].startswith("no trial for")
    assert "not a worker of this coordinator" in stranger["exit"]


def test_a_waiting_worker_takes_a_new_trial_at_once() -> None:
    async def scenario() -> tuple[dict[str, Any], int]:
        cluster = Cluster()
        pool = pool_with(cluster)
        pool.add(task(1))
        name = cluster.submitted[0][0]
        await pool.claim(name, 30)
        pool.trial_ended(pool.workers[name].task, worker_leaves=False)  # type: ignore[arg-type]
        waiting = asyncio.ensure_future(pool.claim(name, 30))
        await asyncio.sleep(0.01)
        pool.add(task(2))
        return await asyncio.wait_for(waiting, 1), len(cluster.submitted)

    given, jobs = asyncio.run(scenario())
    assert given["trial"]["name"] == "trial_2" and jobs == 1


def test_a_hand_over_that_never_arrived_fails_that_trial() -> None:
    async def scenario() -> Task:
        cluster = Cluster()
        pool = pool_with(cluster)
        first = task(1)
        pool.add(first)
        name = cluster.submitted[0][0]
        await pool.claim(name, 30)
        await pool.claim(name, 0.01)  # asks again without the first trial's end
        return first

    first = asyncio.run(scenario())
    assert first.lost == [True]  # type: ignore[attr-defined]


def test_the_end_of_the_run_cancels_queued_workers_and_sends_waiting_ones_away() -> None:
    async def scenario() -> tuple[Cluster, dict[str, Any], bool]:
        cluster = Cluster()
        pool = pool_with(cluster)
        pool.add(task(1))
        pool.add(task(2))
        idle, queued = (name for name, _ in cluster.submitted)
        await pool.claim(idle, 30)
        pool.trial_ended(pool.workers[idle].task, worker_leaves=False)  # type: ignore[arg-type]
        pool.remove(pool.queue[0])  # trial 2 is stopped before any worker took it
        waiting = asyncio.ensure_future(pool.claim(idle, 30))
        await asyncio.sleep(0.01)
        pool.close(abandon=False)
        return cluster, await asyncio.wait_for(waiting, 1), pool.closed

    cluster, answer, closed = asyncio.run(scenario())
    assert closed and answer == {"exit": "the search is over"}
    assert cluster.cancelled == ["101"]  # the worker still queued; the idle one leaves itself


def test_a_refused_worker_job_fails_the_trial_waiting_for_it() -> None:
    async def scenario() -> Task:
        pool = pool_with(Cluster(refuse=True))
        waiting = task(1)
        pool.add(waiting)
        await asyncio.sleep(0.05)
        return waiting

    waiting = asyncio.run(scenario())
    with pytest.raises(SchedulerError, match="no such partition"):
        waiting.submitted.result(timeout=0)


def test_stopping_a_running_trial_cancels_its_workers_job_only_while_it_runs_it() -> None:
    async def scenario() -> tuple[Cluster, bool, bool, dict[str, Any]]:
        cluster = Cluster()
        pool = pool_with(cluster)
        first = task(1)
        pool.add(first)
        name = cluster.submitted[0][0]
        await pool.claim(name, 30)
        stopped = pool.stop_worker_of(first, force=False)
        pool.trial_ended(first, worker_leaves=True)
        again = pool.stop_worker_of(first, force=True)  # it ended: nothing more to cancel
        return cluster, stopped, again, await pool.claim(name, 30)

    cluster, stopped, again, answer = asyncio.run(scenario())
    assert (stopped, again) == (True, False)
    assert cluster.cancelled == ["100"]
    assert "no more work" in answer["exit"]  # a cancelled worker takes no new trial
