"""One trial across two nodes through the Dask backend, for real: two network namespaces on a
bridge (``tests/cluster/netns.py``), a ``dask worker`` with one CPU slot (``--resources
slots=1``) inside each, the dask scheduler and the coordinator on this machine's bridge
address. A Core-API experiment with ``resources.slots_per_trial: 2`` runs the small DDP model
of ``tests/ranks/ddp_trial.py`` under Determined's launcher line: one torchrun per node, gloo
between the namespaces. Each rank notes its network namespace, so the test sees that the two
ranks really ran on different nodes.

Needs root and ``ip netns``; skipped, with the reason, elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install .[dask])")
pytest.importorskip("torch", reason="torch is not installed")

from tests.cluster.netns import Nodes, _wait_for, skip_unless_root  # noqa: E402
from tests.e2e.test_core_api import searcher_history, trials, user_env  # noqa: E402, F401

import ridgeline  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DDP = REPO / "tests" / "ranks" / "ddp_trial.py"
LAUNCH = "python3 -m determined.launch.torch_distributed python3 ddp_trial.py"


@dataclass(frozen=True)
class Cluster:
    nodes: Nodes
    dask: str  # tcp://host:port of the dask scheduler, on the bridge


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    skip_unless_root("MULTI-NODE TRIAL TESTS")
    folder = tmp_path_factory.mktemp("multinode")
    nodes = Nodes.make(2)
    processes: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    log = open(folder / "cluster.log", "ab")

    def start(argv: list[str]) -> None:
        processes.append(
            subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
        )

    try:
        scheduler_file = folder / "scheduler.json"
        start(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", nodes.host,
             "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)]
        )  # fmt: skip
        _wait_for(lambda: scheduler_file.exists() and scheduler_file.stat().st_size > 0, "dask")
        address = json.loads(scheduler_file.read_text())["address"]
        for name, host in zip(nodes.names, nodes.addresses, strict=True):
            start(
                ["ip", "netns", "exec", name, sys.executable, "-m", "distributed.cli.dask_worker",
                 address, "--host", host, "--nworkers", "1", "--nthreads", "1",
                 "--resources", "slots=1", "--no-dashboard"]
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=30)
        yield Cluster(nodes, address)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        nodes.remove()
        log.close()


def two_node_experiment(
    tmp: Path, cluster: Cluster, hyperparameters: dict, **fields: object
) -> ridgeline.Experiment:
    shutil.copy(DDP, tmp / "ddp_trial.py")
    config = {
        "name": "two nodes",
        "entrypoint": LAUNCH,
        "resources": {"slots_per_trial": 2},
        "hyperparameters": hyperparameters,
        "searcher": {"name": "single", "metric": "loss", "max_length": 10},
        "dask": {"address": cluster.dask},
        "max_restarts": 0,
        **fields,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return ridgeline.Experiment.from_yaml(path, tmp)


def trial_dir(experiment: ridgeline.Experiment) -> Path:
    store = ridgeline.store.open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        out = store.get_experiment(experiment.id).config["output_dir"]
    finally:
        store.close()
    return Path(out) / "trials" / "1"


def nodes_seen(folder: Path) -> dict[int, tuple[str, str, str]]:
    """rank -> (node rank, node address, network namespace) as each rank noted them."""
    seen = {}
    for rank in (0, 1):
        line = next(
            ln for ln in (folder / f"rank{rank}.log").read_text().splitlines() if ln[:5] == "node "
        )
        _, node, address, namespace = line.split()
        seen[rank] = (node, address, namespace)
    return seen


def test_a_ddp_trial_runs_across_two_nodes(
    cluster: Cluster,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    exp = two_node_experiment(user_env, cluster, {"lr": 0.05})
    exp.run(verbose=0)
    (record,) = trials(exp.id)
    assert (record.state, record.exit_code, record.restarts) == ("COMPLETED", 0, 0)
    folder = trial_dir(exp)
    net = [f"net:[{cluster.nodes.inode(k)}]" for k in (0, 1)]
    seen = nodes_seen(folder)
    assert {seen[0], seen[1]} == {
        ("0", cluster.nodes.addresses[0], net[0]),
        ("1", cluster.nodes.addresses[1], net[1]),
    } or {seen[0], seen[1]} == {
        ("0", cluster.nodes.addresses[1], net[1]),
        ("1", cluster.nodes.addresses[0], net[0]),
    }, seen  # one rank in each namespace, each at its own node's address
    assert seen[0][0] == "0"  # the chief is node 0's rank
    for rank in (0, 1):  # both ranks trained the operation
        assert "op 10 world=2 slots=[0]" in (folder / f"rank{rank}.log").read_text()
    started = next(e.time for e in searcher_history(exp.id)[2] if e.kind == "trial_started")
    latency = float((folder / "first_op").read_text()) - started
    print(f"\n2-node trial: launch -> first op {latency:.2f} s")
    assert 0 < latency < 60


def test_a_crashed_node_stops_every_node_and_the_trial_resumes_from_its_checkpoint(
    cluster: Cluster,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    exp = two_node_experiment(user_env, cluster, {"lr": 0.05, "crash_rank": 1}, max_restarts=1)
    exp.run(verbose=0)
    (record,) = trials(exp.id)
    assert (record.state, record.restarts) == ("COMPLETED", 1)
    folder = trial_dir(exp)
    assert (folder / "crashed").exists()  # rank 1 (node 1) exited 3 at step 7, once
    for rank in (0, 1):  # every rank came back from the step-5 sharded checkpoint
        lines = (folder / f"rank{rank}.log").read_text().splitlines()
        assert "restored 5 ranks=['0', '1']" in lines, lines
    jobs = Path(folder).parents[1] / "jobs"
    first = (jobs / "trial_1.attempt1.out").read_text()
    assert "trial placed on 2 nodes" in first
    # node 0 did not finish the first attempt by itself: it was stopped
    assert (jobs / "trial_1.attempt1.exit").read_text().strip() != "0"
    _, _, events = searcher_history(exp.id)
    exits = [e.data for e in events if e.kind in ("trial_exited", "trial_failed")]
    print("\nexits:", exits)
