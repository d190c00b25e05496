"""One trial across two SLURM nodes, for real: two network namespaces on a bridge
(``tests/cluster/netns.py``), a ``slurmd`` inside each that registers itself with this machine's
slurmctld as a dynamic node (``slurmd -Z``, feature ``netns``, so it joins only the partition
``nodes`` that ``scripts/ensure-slurm.sh`` defines), and the coordinator on the bridge address.
A Core-API experiment with ``resources.slots_per_trial: 2`` and ``slurm: {slots_per_node: 1,
slot_type: cpu}`` runs the small DDP model of ``tests/ranks/ddp_trial.py`` under Determined's
launcher line: one ``sbatch`` job of two nodes, ``srun`` starting torchrun on each, gloo
between the namespaces. Each rank notes its network namespace, so the test sees that the two
ranks really ran on different nodes.

Needs root, ``ip netns`` and the SLURM of ``scripts/ensure-slurm.sh`` (with room for dynamic
nodes); skipped, with the reason, elsewhere."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch", reason="torch is not installed")

from tests.cluster.netns import skip_unless_root  # noqa: E402
from tests.cluster.slurmnodes import SlurmNodes, skip_unless_dynamic_nodes  # noqa: E402
from tests.cluster.test_multinode import (  # noqa: E402
    DDP,
    LAUNCH,
    left_in,
    nodes_seen,
    paused_and_resumed,
    resumed_after_a_crash,
    trial_dir,
)
from tests.e2e.test_core_api import cli, trials, user_env  # noqa: E402, F401

import ridgeline  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*local to this machine"),
    pytest.mark.timeout(600),  # two attempts of a 2-node DDP trial on a loaded 2-core machine
]


@pytest.fixture(scope="module")
def slurm_nodes(slurm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmNodes]:
    skip_unless_root("SLURM MULTI-NODE TESTS")
    skip_unless_dynamic_nodes()
    cluster = SlurmNodes(tmp_path_factory.mktemp("slurmnodes"))
    try:
        yield cluster
    finally:
        cluster.remove()


def two_node_experiment(
    tmp: Path, cluster: SlurmNodes, hyperparameters: dict, **fields: object
) -> ridgeline.Experiment:
    """A 2-slot experiment of ``ddp_trial.py`` on the two one-CPU nodes."""
    shutil.copy(DDP, tmp / "ddp_trial.py")
    config = {
        "name": "two slurm nodes",
        "entrypoint": LAUNCH,
        "resources": {"slots_per_trial": 2},
        "hyperparameters": hyperparameters,
        "searcher": {"name": "single", "metric": "loss", "max_length": 10},
        "slurm": {"slots_per_node": 1, "slot_type": "cpu", "sbatch_args": ["--partition=nodes"]},
        "max_restarts": 0,
        **fields,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    experiment = ridgeline.Experiment.from_yaml(path, tmp)
    experiment.create(bind=cluster.nodes.host)  # where the nodes reach the coordinator
    return experiment


def test_a_ddp_trial_runs_as_one_job_across_two_slurm_nodes(
    slurm_nodes: SlurmNodes,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    exp = two_node_experiment(user_env, slurm_nodes, {"lr": 0.05})
    exp.run(verbose=0)
    (record,) = trials(exp.id)
    assert (record.state, record.exit_code, record.restarts) == ("COMPLETED", 0, 0)
    folder = trial_dir(exp.id)
    nodes = slurm_nodes.nodes
    net = {f"net:[{nodes.inode(k)}]": nodes.addresses[k] for k in (0, 1)}
    seen = nodes_seen(folder)
    assert seen[0][0] == "0" and seen[1][0] == "1", seen  # rank 0 on node 0, the chief
    assert {seen[0][2], seen[1][2]} == set(net), seen  # one rank in each namespace
    for _, address, namespace in seen.values():
        assert net[namespace] == address, seen  # at its own node's address
    for rank in (0, 1):
        assert "op 10 world=2 slots=[0]" in (folder / f"rank{rank}.log").read_text()
    script = (folder.parents[1] / "jobs" / "trial_1.sbatch").read_text()
    assert "--kill-on-bad-exit=1" in script and "ridgeline.launch.slurm_nodes 1" in script
    assert not left_in(slurm_nodes, "ddp_trial.py")


def test_a_crashed_node_ends_the_job_and_the_trial_resumes_on_both_from_its_checkpoint(
    slurm_nodes: SlurmNodes,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    exp = two_node_experiment(user_env, slurm_nodes, {"lr": 0.05, "crash_rank": 1}, max_restarts=1)
    exp.run(verbose=0)
    log = (resumed_after_a_crash(exp.id).parents[1] / "log.txt").read_text()
    # srun's status: the failed node's exit code, or the SIGTERM that ended the other first
    assert re.search(r"Trial 1 failed \((exit code|killed by signal) \d+\)", log), log


def test_pausing_a_trial_across_slurm_nodes_ends_both_and_activating_resumes_both(
    slurm_nodes: SlurmNodes,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    shutil.copy(DDP, user_env / "ddp_trial.py")
    config = {
        "name": "pause across slurm nodes",
        "entrypoint": LAUNCH,
        "resources": {"slots_per_trial": 2},
        "hyperparameters": {"lr": 0.05, "step_sleep": 0.1},
        "searcher": {"name": "single", "metric": "loss", "max_length": 40},
        "slurm": {"slots_per_node": 1, "slot_type": "cpu", "sbatch_args": ["--partition=nodes"]},
        "max_restarts": 0,
    }
    (user_env / "config.yaml").write_text(yaml.safe_dump(config))
    created = cli(
        "e", "create", str(user_env / "config.yaml"), str(user_env),
        "--bind", slurm_nodes.nodes.host, "--json",
    )  # fmt: skip
    experiment_id = json.loads(created.stdout)["id"]

    paused_and_resumed(experiment_id, slurm_nodes, timeout=400)
