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
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install .[dask])")
pytest.importorskip("torch", reason="torch is not installed")

from tests.cluster.netns import Nodes, _wait_for, skip_unless_root  # noqa: E402
from tests.e2e.test_checkpoints import wait_for  # noqa: E402
from tests.e2e.test_core_api import cli, searcher_history, trials, user_env  # noqa: E402, F401

import ridgeline  # noqa: E402
from ridgeline.store import open_store  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DDP = REPO / "tests" / "ranks" / "ddp_trial.py"
# The test's nodes share this machine's /tmp, which create warns about for real clusters.
pytestmark = pytest.mark.filterwarnings("ignore:.*local to this machine")
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
    """A 2-slot experiment of ``ddp_trial.py`` on the cluster's two one-slot workers."""
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


def trial_dir(experiment_id: int | None, number: int = 1) -> Path:
    assert experiment_id is not None
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        out = store.get_experiment(experiment_id).config["output_dir"]
    finally:
        store.close()
    return Path(out) / "trials" / str(number)


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


def resumed_after_a_crash(experiment_id: int | None) -> Path:
    """The folder of trial 1 of a ``crash_rank: 1`` experiment, checked: rank 1 crashed once,
    and both ranks came back from the step-5 sharded checkpoint and completed."""
    (record,) = trials(experiment_id)
    assert (record.state, record.exit_code, record.restarts) == ("COMPLETED", 0, 1)
    folder = trial_dir(experiment_id)
    assert (folder / "crashed").exists()  # rank 1 (node 1) exited 3 at step 7, once
    for rank in (0, 1):
        lines = (folder / f"rank{rank}.log").read_text().splitlines()
        assert "restored 5 ranks=['0', '1']" in lines, lines
        assert lines.count("op 10 world=2 slots=[0]") == 2, lines
    return folder


def paused_and_resumed(experiment_id: int, cluster: Any, timeout: float) -> None:
    """Pause the running 2-node trial once it has a checkpoint, check that both nodes' ranks
    ended, activate it, and check that it completed with both ranks resumed from the
    checkpoint taken before the pause."""

    def checkpoints() -> int:
        return len(json.loads(cli("e", "lc", str(experiment_id), "--json").stdout))

    wait_for(lambda: checkpoints() >= 1)
    cli("e", "pause", str(experiment_id))
    wait_for(lambda: trials(experiment_id)[0].state == "PAUSED")
    # the nodes' ranks ended (a batch system may still be reaping their processes)
    wait_for(lambda: not left_in(cluster, "ddp_trial.py"))
    cli("e", "activate", str(experiment_id))
    assert cli("e", "wait", str(experiment_id), check=False, timeout=timeout).returncode == 0
    (record,) = trials(experiment_id)
    assert record.state == "COMPLETED"
    folder = trial_dir(experiment_id)
    for rank in (0, 1):  # both ranks came back from the checkpoint taken before the pause
        log = (folder / f"rank{rank}.log").read_text()
        assert re.search(r"^restored \d+ ranks=\['0', '1'\]$", log, re.MULTILINE), log


def left_in(cluster: Cluster, marker: str) -> list[int]:
    """Processes inside the nodes' namespaces whose command line holds ``marker``."""
    found = []
    for name in cluster.nodes.names:
        listing = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in listing.stdout.split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(pid))
    return found


def test_two_ddp_trials_each_across_two_nodes_run_one_after_the_other(
    cluster: Cluster,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    """Two trials of two nodes each, on two one-slot workers, both submitted at once: each
    runs on both nodes (one rank per namespace), and the second gang waits for the first
    instead of starting half-way."""
    exp = two_node_experiment(
        user_env,
        cluster,
        {"lr": {"type": "double", "minval": 0.01, "maxval": 0.1}},
        searcher={
            "name": "random",
            "metric": "loss",
            "max_length": 10,
            "max_trials": 2,
            "max_concurrent_trials": 2,
        },
    )
    exp.run(verbose=0)
    records = trials(exp.id)
    assert [(t.state, t.exit_code, t.restarts) for t in records] == [("COMPLETED", 0, 0)] * 2
    net = {f"net:[{cluster.nodes.inode(k)}]": cluster.nodes.addresses[k] for k in (0, 1)}
    windows = []
    _, _, events = searcher_history(exp.id)
    latencies = []
    for number in (1, 2):
        folder = trial_dir(exp.id, number)
        seen = nodes_seen(folder)
        assert seen[0][0] == "0" and seen[1][0] == "1", seen  # rank 0 on node 0, the chief
        assert {seen[0][2], seen[1][2]} == set(net), seen  # one rank in each namespace
        for _, address, namespace in seen.values():
            assert net[namespace] == address, seen  # at its own node's address
        for rank in (0, 1):  # both ranks trained the operation
            assert "op 10 world=2 slots=[0]" in (folder / f"rank{rank}.log").read_text()
        jobs = folder.parents[1] / "jobs"
        first_op = float((folder / "first_op").read_text())
        ended = max((jobs / f"trial_{number}{n}.exit").stat().st_mtime for n in ("", ".node1"))
        windows.append((first_op, ended))
        started = next(
            e.time for e in events if e.kind == "trial_started" and e.data["trial"] == number
        )
        latencies.append(first_op - started)
    windows.sort()
    assert windows[0][1] <= windows[1][0], windows  # never both gangs at once
    print(f"\n2-node trial: launch -> first op {min(latencies):.2f} s")
    assert not left_in(cluster, "ddp_trial.py")


def test_a_crashed_node_stops_every_node_and_the_trial_resumes_from_its_checkpoint(
    cluster: Cluster,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    exp = two_node_experiment(user_env, cluster, {"lr": 0.05, "crash_rank": 1}, max_restarts=1)
    exp.run(verbose=0)
    out = resumed_after_a_crash(exp.id).parents[1]
    assert "trial placed on 2 nodes" in (out / "jobs" / "trial_1.attempt1.out").read_text()
    log = (out / "log.txt").read_text()
    # the first failure's code is the attempt's (torchrun's 1 for a rank that exited 3), and
    # the other node was stopped rather than left waiting on its peer
    assert re.search(r"node \d ended with 1; stopping the other nodes", log), log
    assert "Trial 1 failed (exit code 1)" in log, log
    assert not left_in(cluster, "ddp_trial.py")


def test_pausing_a_trial_across_nodes_stops_both_and_activating_resumes_both(
    cluster: Cluster,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    two_node_experiment(
        user_env, cluster, {"lr": 0.05, "step_sleep": 0.1}, searcher={
            "name": "single", "metric": "loss", "max_length": 40
        }
    )  # fmt: skip
    created = cli("e", "create", str(user_env / "config.yaml"), str(user_env), "--json")
    experiment_id = json.loads(created.stdout)["id"]

    paused_and_resumed(experiment_id, cluster, timeout=120)
