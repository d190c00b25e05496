"""One trial across two dask workers (``DaskScheduler`` gangs), through the scheduler's own
interface on a real loopback cluster (two one-slot workers, ``--resources slots=1``): what
each node is told, the first failure's code with the other node stopped, a kill that ends
every node, a gang that waits for free workers rather than starting half-way, and a re-attach
by a new scheduler. Plain Python commands stand in for the trial, so no torch is needed; the
trial across network namespaces with torch DDP is ``test_multinode.py``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install .[dask])")

from tests.cluster.test_dask import start_cluster, stop_cluster, wait_for  # noqa: E402

from ridgeline.errors import SchedulerError  # noqa: E402
from ridgeline.schedulers import DaskScheduler  # noqa: E402
from ridgeline.schedulers.base import Job  # noqa: E402
from ridgeline.schedulers.daskgang import plan_gang  # noqa: E402
from ridgeline.schedulers.local import process_start_time  # noqa: E402

# Notes what the node was told and its pid, then behaves as NODE_<rank> in its environment
# says: "exit N", "exit N after 0" (once node 0 has noted), or "sleep" (until signalled).
NODE = textwrap.dedent("""
    import json, os, sys, time
    rank = os.environ["RIDGELINE_CONTAINER_RANK"]
    names = ("RIDGELINE_CONTAINER_ADDRS", "DET_CHIEF_IP", "C10D_PORT", "RIDGELINE_CHIEF_PORT",
             "RIDGELINE_SLOT_IDS")
    note = {name: os.environ.get(name) for name in names}
    note["pid"] = os.getpid()
    with open(f"node{rank}.json", "w") as f:
        json.dump(note, f)
    what = os.environ.get(f"NODE_{rank}", "exit 0").split()
    while what[-1] == "0" and what[-2] == "after" and not os.path.exists("node0.json"):
        time.sleep(0.05)
    if what[0] == "sleep":
        time.sleep(120)
    sys.exit(int(what[1]))
""")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    address, processes = start_cluster(
        tmp_path_factory.mktemp("dask-gang"), ("--resources", "slots=1")
    )
    yield address
    stop_cluster(processes)


def gang(cluster: str, workdir: Path) -> DaskScheduler:
    return DaskScheduler(cluster, output_dir=str(workdir), gpus_per_trial=2)


def submit(scheduler: DaskScheduler, workdir: Path, name: str, **nodes: str) -> Job:
    folder = workdir / name
    folder.mkdir()
    env = {**os.environ, **{f"NODE_{rank[-1]}": what for rank, what in nodes.items()}}
    return scheduler.submit([sys.executable, "-c", NODE], env, name, str(folder))


def notes(workdir: Path, name: str) -> list[dict]:
    return [json.loads((workdir / name / f"node{r}.json").read_text()) for r in (0, 1)]


def test_the_slot_rule() -> None:
    one_slot = [{"slots": 1}, {"slots": 1}]
    assert (plan_gang(2, one_slot).nodes, plan_gang(2, one_slot).per_node) == (2, 1)
    assert plan_gang(1, one_slot).nodes == 1
    gpus = [{"GPU": 4, "slots": 16}, {"GPU": 4}]
    assert (plan_gang(8, gpus).resource, plan_gang(8, gpus).nodes) == ("GPU", 2)
    assert plan_gang(4, gpus, slots_per_node=2).nodes == 2
    with pytest.raises(ValueError, match="multiple of 4"):
        plan_gang(6, gpus)
    with pytest.raises(ValueError, match="only 2 dask worker"):
        plan_gang(12, gpus)
    with pytest.raises(ValueError, match="no dask worker offers a GPU or slots"):
        plan_gang(2, [{}, {}])


def test_each_node_is_told_its_rank_the_chief_and_one_pair_of_ports(
    cluster: str, workdir: Path
) -> None:
    scheduler = gang(cluster, workdir)
    job = submit(scheduler, workdir, "told")
    assert asyncio.run(scheduler.wait(job)) == 0
    scheduler.close()
    first, second = notes(workdir, "told")
    for note in (first, second):
        assert note["RIDGELINE_CONTAINER_ADDRS"] == "127.0.0.1,127.0.0.1"
        assert note["DET_CHIEF_IP"] == "127.0.0.1" and note["RIDGELINE_SLOT_IDS"] == "0"
    assert first["C10D_PORT"] == second["C10D_PORT"] != first["RIDGELINE_CHIEF_PORT"]
    assert first["RIDGELINE_CHIEF_PORT"] == second["RIDGELINE_CHIEF_PORT"]
    assert "trial placed on 2 nodes" in (workdir / "jobs" / "told.out").read_text()


def test_a_failed_node_fails_the_attempt_with_its_code_and_stops_the_other(
    cluster: str, workdir: Path
) -> None:
    scheduler = gang(cluster, workdir)
    job = submit(scheduler, workdir, "fails", node0="sleep", node1="exit 5 after 0")
    started = time.monotonic()
    assert asyncio.run(scheduler.wait(job)) == 5
    assert time.monotonic() - started < 20  # the sleeping node was stopped, not waited for
    scheduler.close()
    sleeper = notes(workdir, "fails")[0]["pid"]
    assert process_start_time(sleeper) is None
    assert (workdir / "jobs" / "fails.node1.exit").read_text().strip() == "5"


def test_a_kill_ends_every_node_and_a_waiting_gang_never_starts(
    cluster: str, workdir: Path
) -> None:
    scheduler = gang(cluster, workdir)

    async def scenario() -> tuple[int | None, int | None]:
        running = submit(scheduler, workdir, "running", node0="sleep", node1="sleep")
        waits = asyncio.ensure_future(scheduler.wait(running))
        await asyncio.to_thread(
            wait_for, lambda: (workdir / "running" / "node1.json").exists(), "both nodes"
        )
        await asyncio.to_thread(
            wait_for, lambda: (workdir / "running" / "node0.json").exists(), "both nodes"
        )
        queued = submit(scheduler, workdir, "queued")  # no free workers: it waits
        waits_too = asyncio.ensure_future(scheduler.wait(queued))
        await asyncio.sleep(1.0)
        assert not (workdir / "queued" / "node0.json").exists()
        scheduler.kill(queued)
        scheduler.kill(running)
        return await waits, await waits_too

    codes = asyncio.run(scenario())
    scheduler.close()
    assert codes == (-15, -15)
    assert all(process_start_time(n["pid"]) is None for n in notes(workdir, "running"))
    assert not list((workdir / "queued").iterdir())  # neither node of it ever ran


# A coordinator that submits a gang, waits until both nodes run, prints the job's info and
# dies at once (no clean-up), as a killed coordinator would.
DIES = """
import asyncio, json, os, sys, time
from ridgeline.schedulers import DaskScheduler
address, folder = sys.argv[1], sys.argv[2]
scheduler = DaskScheduler(address, output_dir=folder, gpus_per_trial=2)
env = {**os.environ, "NODE_0": "sleep", "NODE_1": "sleep"}
os.mkdir(os.path.join(folder, "again"))
job = scheduler.submit([sys.executable, "-c", sys.argv[3]], env, "again",
                       os.path.join(folder, "again"))
async def placed():
    waits = asyncio.ensure_future(scheduler.wait(job))
    while not all(os.path.exists(os.path.join(folder, "again", f"node{r}.json")) for r in (0, 1)):
        await asyncio.sleep(0.05)
    scheduler._background().submit(lambda: None).result()  # the tasks are published
    print(json.dumps(job.info), flush=True)
    os._exit(0)
asyncio.run(placed())
"""


def test_a_gang_is_reattached_by_a_new_scheduler(cluster: str, workdir: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", DIES, cluster, str(workdir), NODE],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert dead.returncode == 0, dead.stderr
    info = json.loads(dead.stdout)
    second = gang(cluster, workdir)
    live = second.reattach(info, "again")
    assert live is not None

    async def stop() -> int | None:
        waits = asyncio.ensure_future(second.wait(live))
        await asyncio.sleep(0.2)
        second.kill(live)
        return await waits

    assert asyncio.run(stop()) == -15
    assert all(process_start_time(n["pid"]) is None for n in notes(workdir, "again"))
    ended = second.reattach(info, "again")  # both ended: from their records
    assert ended is not None and asyncio.run(second.wait(ended)) == -15
    second.close()


def test_a_trial_larger_than_the_cluster_is_refused(cluster: str) -> None:
    with pytest.raises(SchedulerError, match="only 2 dask worker"):
        DaskScheduler(cluster, gpus_per_trial=3, slots_per_node=1).check()
