"""One trial across two Grid Engine hosts, for real: two network namespaces on a bridge
(``tests/cluster/netns.py``), an ``sge_execd`` inside each under its own host name
(``tests/cluster/sgenodes.py``), serving a queue and a parallel environment with one slot per
host, and the coordinator on the bridge address. A Core-API experiment with
``resources.slots_per_trial: 2`` and ``sge: {slots_per_node: 1, slot_type: cpu,
parallel_environment: ...}`` runs the small DDP model of ``tests/ranks/ddp_trial.py`` under
Determined's launcher line: one parallel job of two hosts, ``qrsh -inherit`` starting torchrun
on each, gloo between the namespaces. Each rank notes its network namespace, so the test sees
that the two ranks really ran on different hosts.

Needs root, ``ip netns``, ``unshare`` and the Grid Engine of ``scripts/ensure-sge.sh``;
skipped, with the reason, elsewhere."""

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
from tests.cluster.sgenodes import SgeNodes, _qconf, skip_unless_sge_nodes  # noqa: E402
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
from ridgeline.errors import ConfigError, SchedulerError  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*local to this machine"),
    pytest.mark.timeout(600),  # two attempts of a 2-host DDP trial on a loaded 2-core machine
]


@pytest.fixture(scope="module")
def sge_nodes(sge: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SgeNodes]:
    skip_unless_root("GRID ENGINE MULTI-NODE TESTS")
    skip_unless_sge_nodes()
    cluster = SgeNodes(tmp_path_factory.mktemp("sgenodes"))
    try:
        yield cluster
    finally:
        cluster.remove()


def write_config(tmp: Path, cluster: SgeNodes, hyperparameters: dict, **fields: object) -> Path:
    """A 2-slot experiment of ``ddp_trial.py`` on the two one-slot hosts."""
    shutil.copy(DDP, tmp / "ddp_trial.py")
    config = {
        "name": "two grid engine hosts",
        "entrypoint": LAUNCH,
        "resources": {"slots_per_trial": 2},
        "hyperparameters": hyperparameters,
        "searcher": {"name": "single", "metric": "loss", "max_length": 10},
        "sge": {
            "slots_per_node": 1,
            "slot_type": "cpu",
            "parallel_environment": cluster.pe,
            "qsub_args": ["-q", cluster.queue],
        },
        "max_restarts": 0,
        **fields,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def two_host_experiment(
    tmp: Path, cluster: SgeNodes, hyperparameters: dict, **fields: object
) -> ridgeline.Experiment:
    experiment = ridgeline.Experiment.from_yaml(
        write_config(tmp, cluster, hyperparameters, **fields), tmp
    )
    experiment.create(bind=cluster.nodes.host)  # where the hosts reach the coordinator
    return experiment


def test_a_ddp_trial_runs_as_one_parallel_job_across_two_grid_engine_hosts(
    sge_nodes: SgeNodes,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    exp = two_host_experiment(user_env, sge_nodes, {"lr": 0.05})
    exp.run(verbose=0)
    (record,) = trials(exp.id)
    assert (record.state, record.exit_code, record.restarts) == ("COMPLETED", 0, 0)
    folder = trial_dir(exp.id)
    nodes = sge_nodes.nodes
    net = {f"net:[{nodes.inode(k)}]": nodes.addresses[k] for k in (0, 1)}
    seen = nodes_seen(folder)
    assert seen[0][0] == "0" and seen[1][0] == "1", seen  # rank 0 on the master host
    assert {seen[0][2], seen[1][2]} == set(net), seen  # one rank in each namespace
    for _, address, namespace in seen.values():
        assert net[namespace] == address, seen  # at its own host's address
    for rank in (0, 1):
        assert "op 10 world=2 slots=[0]" in (folder / f"rank{rank}.log").read_text()
    jobs = folder.parents[1] / "jobs"
    script = (jobs / "trial_1.sge").read_text()
    assert "ridgeline.launch.sge_nodes 1" in script
    assert "RIDGELINE_TOKEN=" not in script  # the token reaches the hosts through the 0600 file
    assert not list(jobs.glob("*.env"))  # which is gone once the job ended
    assert not left_in(sge_nodes, "ddp_trial.py")


def test_a_crashed_host_ends_the_job_and_the_trial_resumes_on_both_from_its_checkpoint(
    sge_nodes: SgeNodes,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    exp = two_host_experiment(user_env, sge_nodes, {"lr": 0.05, "crash_rank": 1}, max_restarts=1)
    exp.run(verbose=0)
    log = (resumed_after_a_crash(exp.id).parents[1] / "log.txt").read_text()
    assert re.search(r"Trial 1 failed \(exit code \d+\)", log), log
    assert not left_in(sge_nodes, "ddp_trial.py")


def test_pausing_a_trial_across_grid_engine_hosts_ends_both_and_activating_resumes_both(
    sge_nodes: SgeNodes,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    config = write_config(
        user_env, sge_nodes, {"lr": 0.05, "step_sleep": 0.1},
        searcher={"name": "single", "metric": "loss", "max_length": 40},
    )  # fmt: skip
    created = cli(
        "e", "create", str(config), str(user_env), "--bind", sge_nodes.nodes.host, "--json"
    )  # fmt: skip
    experiment_id = json.loads(created.stdout)["id"]

    paused_and_resumed(experiment_id, sge_nodes, timeout=400)


def test_a_trial_across_hosts_is_refused_at_create_without_a_fitting_parallel_environment(
    sge_nodes: SgeNodes,
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    config = yaml.safe_load(write_config(user_env, sge_nodes, {"lr": 0.05}).read_text())

    def create(sge: dict) -> None:
        (user_env / "bad.yaml").write_text(yaml.safe_dump({**config, "sge": sge}))
        ridgeline.Experiment.from_yaml(user_env / "bad.yaml", user_env).create()

    base = {"slots_per_node": 1, "slot_type": "cpu", "qsub_args": ["-q", sge_nodes.queue]}
    with pytest.raises(ConfigError, match=r"sge: \{parallel_environment: NAME\}"):
        create(base)
    with pytest.raises(SchedulerError, match="no parallel environment 'rl-missing'"):
        create({**base, "parallel_environment": "rl-missing"})
    spread = user_env / "fill.pe"
    name = f"{sge_nodes.pe}fill"
    shown = _qconf("-sp", sge_nodes.pe).stdout.replace(sge_nodes.pe, name)
    spread.write_text(re.sub(r"(?m)^allocation_rule\s+\S+", "allocation_rule $fill_up", shown))
    _qconf("-Ap", str(spread))
    try:
        with pytest.raises(SchedulerError, match=r"allocation_rule \$fill_up.*one slot per host"):
            create({**base, "parallel_environment": name})
    finally:
        _qconf("-dp", name, check=False)
