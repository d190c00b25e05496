"""Choosing where a YAML experiment's trials run: the ``slurm:``/``sge:``/``dask:`` sections,
``pbs:`` refused, the user config file's ``cluster:`` defaults, the command line's overrides,
the scheduler object built from the choice, and the shared-storage warning."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from ridgeline.cli import cli
from ridgeline.config import ConfigWarning, InvalidConfig, load_config
from ridgeline.config.cluster import (
    ClusterChoice,
    resolve_cluster,
    scheduler_for,
    shared_storage_warnings,
)
from ridgeline.errors import ConfigError, SchedulerError
from ridgeline.launch import sge_nodes
from ridgeline.schedulers import LocalScheduler, SGEScheduler, SLURMScheduler

BASE = """\
name: cluster
entrypoint: python3 train.py
hyperparameters:
  lr: {type: double, minval: 0.1, maxval: 1.0}
searcher: {name: random, metric: loss, max_trials: 2, max_length: {batches: 5}}
"""


@pytest.fixture
def user_config(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the user config file is read from (absent until a test writes it)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    path = workdir / "xdg" / "ridgeline" / "config.yaml"
    path.parent.mkdir(parents=True)
    return path


def write(folder: Path, extra: str = "") -> Path:
    path = folder / "config.yaml"
    path.write_text(BASE + textwrap.dedent(extra))
    return path


def problems(folder: Path, extra: str) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        load_config(write(folder, extra))
    return caught.value.problems


def test_the_slurm_section_is_taken_with_determined_fields_and_no_warning(workdir: Path) -> None:
    path = write(
        workdir,
        """
        resources: {slots_per_trial: 2}
        slurm:
          sbatch_args: ["--time=10", "--comment=x"]
          gpu_type: a100
          slots_per_node: 4
        """,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)  # no longer "accepted, no effect"
        config = load_config(path)
    choice = resolve_cluster(config.raw)
    assert choice.backend == "slurm" and choice.chosen_by == "the experiment config"
    assert choice.submit_args(2) == ["--gres=gpu:a100:2", "--time=10", "--comment=x"]


def test_bad_slurm_fields_are_refused_with_their_lines(workdir: Path) -> None:
    found = problems(
        workdir,
        """
        slurm:
          sbatch_args: --time=10
          gpu_type: 100
          slots_per_node: 0
          sbatch_arg: []
        """,
    )
    assert found == [
        "line 8: slurm.sbatch_args: must be a list of strings (got '--time=10'); "
        'e.g. ["--partition=gpu", "--time=60"]',
        "line 9: slurm.gpu_type: must be a non-empty string (got 100)",
        "line 10: slurm.slots_per_node: must be an integer >= 1 (got 0)",
        "line 11: slurm.sbatch_arg: unknown key for slurm:; did you mean 'sbatch_args'?",
    ]


def test_a_trial_wider_than_a_node_takes_whole_nodes(workdir: Path) -> None:
    found = problems(workdir, "resources: {slots_per_trial: 6}\nslurm: {slots_per_node: 4}\n")
    assert found == [
        "line 7: slurm.slots_per_node: is 4, which does not divide resources.slots_per_trial "
        "(6); a trial across nodes takes the same slots on each: make slots_per_trial a "
        "multiple of slots_per_node"
    ]
    config = load_config(
        write(workdir, "resources: {slots_per_trial: 8}\nslurm: {slots_per_node: 4}\n")
    )
    choice = resolve_cluster(config.raw)
    assert choice.nodes(8) == (2, 4) and choice.nodes(4) == (1, 4)
    assert choice.describe(8).startswith(
        "SLURM jobs (sbatch --nodes=2 --ntasks-per-node=1 --gres=gpu:4)"
    )
    slurm = scheduler_for(choice.to_dict(), str(workdir), 8, lambda: None)
    assert (slurm.nodes, slurm.slots_per_node, slurm.gpus_per_trial) == (2, 4, 8)
    argv = slurm.sbatch_argv("trial_1", workdir / "t.sbatch", "out", str(workdir))
    assert {"--gres=gpu:4", "--nodes=2", "--ntasks-per-node=1"} <= set(argv)  # GPUs per node
    script = slurm.batch_script(["python3", "train.py"], workdir / "t.exit")
    assert "-m ridgeline.launch.slurm_nodes 4" in script  # the nodes meet before srun
    assert "srun --ntasks-per-node=1 --kill-on-bad-exit=1" in script


def test_slots_may_be_cpus_on_slurm(workdir: Path) -> None:
    assert problems(workdir, "slurm: {slot_type: tpu}\n") == [
        "line 6: slurm.slot_type: must be gpu or cpu (got 'tpu'); cpu: each slot is a CPU"
    ]
    extra = "resources: {slots_per_trial: 2}\nslurm: {slots_per_node: 1, slot_type: cpu}\n"
    choice = resolve_cluster(load_config(write(workdir, extra)).raw)
    slurm = scheduler_for(choice.to_dict(), str(workdir), 2, lambda: None)
    assert slurm.submit_options == "--cpus-per-task=1" and slurm.gpus_per_trial == 0
    assert (slurm.nodes, slurm.slots_per_node) == (2, 1)


def test_slurm_worker_jobs_are_taken_checked_and_reach_the_scheduler(workdir: Path) -> None:
    extra = "slurm: {worker_jobs: true, worker_idle_seconds: 30}\n"
    choice = resolve_cluster(load_config(write(workdir, extra)).raw)
    assert (choice.worker_jobs, choice.worker_idle_seconds) == (True, 30.0)
    assert "worker jobs (sbatch), each running trials one after another" in choice.describe(0)
    slurm = scheduler_for(choice.to_dict(), str(workdir), 0, lambda: None)
    assert (slurm.worker_jobs, slurm.worker_idle_seconds) == (True, 30.0)
    plain = scheduler_for(ClusterChoice(backend="slurm").to_dict(), str(workdir), 0, lambda: None)
    assert (plain.worker_jobs, plain.worker_idle_seconds) == (False, 60.0)
    on_the_command_line = resolve_cluster({}, "slurm", ["worker_jobs=true"])
    assert on_the_command_line.worker_jobs is True
    assert problems(
        workdir,
        """
        resources: {slots_per_trial: 2}
        slurm: {worker_jobs: "yes", worker_idle_seconds: 0, slots_per_node: 1}
        """,
    ) == [
        "line 8: slurm.worker_jobs: must be true or false (got 'yes')",
        "line 8: slurm.worker_idle_seconds: must be a positive number of seconds (got 0); e.g. 60",
    ]
    assert problems(
        workdir, "resources: {slots_per_trial: 2}\nslurm: {worker_jobs: true, slots_per_node: 1}\n"
    ) == [
        "line 7: slurm.worker_jobs: a worker job runs trials of one node, but a trial of 2 slots "
        "at 1 per node spans several; drop worker_jobs or raise slots_per_node"
    ]
    with pytest.raises(SchedulerError, match="worker_jobs runs trials of one node"):
        SLURMScheduler(worker_jobs=True, nodes=2)
    with pytest.raises(SchedulerError, match="worker_idle_seconds must be a positive"):
        SLURMScheduler(worker_jobs=True, worker_idle_seconds=0)


def test_grid_engine_worker_jobs_take_their_variables_from_a_private_file(workdir: Path) -> None:
    choice = resolve_cluster(load_config(write(workdir, "sge: {worker_jobs: true}\n")).raw)
    sge = scheduler_for(choice.to_dict(), str(workdir), 0, lambda: None)
    assert isinstance(sge, SGEScheduler) and sge.worker_jobs
    with pytest.raises(SchedulerError, match="worker_jobs runs trials of one node"):
        SGEScheduler(worker_jobs=True, nodes=2, parallel_environment="mpi")
    argv, _ = sge._prepare_worker(
        {"RIDGELINE_WORKER_TOKEN": "secret", "PATH": "/bin"}, workdir, "worker_ab_1"
    )
    assert "secret" not in " ".join(argv) and "-notify" in argv
    env_file = workdir / "worker_ab_1.env"
    assert "secret" in env_file.read_text() and env_file.stat().st_mode & 0o077 == 0
    script = (workdir / "worker_ab_1.sge").read_text()
    assert f". {env_file}; rm -f {env_file}" in script  # the variables go before anything runs
    assert "-m ridgeline.launch.worker &" in script and "trap 'kill -TERM 0' USR2" in script


def test_pbs_is_refused(workdir: Path) -> None:
    (found,) = problems(workdir, "pbs: {pbsbatch_args: [-q, long]}\n")
    assert found.startswith("line 6: pbs: PBS is not a backend ridgeline runs trials on")


def test_one_backend_per_experiment(workdir: Path) -> None:
    (found,) = problems(workdir, "slurm: {}\ndask: {address: 'tcp://h:8786'}\n")
    assert (
        found == "line 7: dask: only one cluster backend per experiment (got slurm, dask); keep one"
    )


def test_sge_and_dask_sections_are_checked_and_on_only_with_their_scheduler(
    workdir: Path,
) -> None:
    assert problems(workdir, "dask: {address: 8786}\n") == [
        "line 6: dask.address: must be a non-empty string (got 8786)"
    ]
    assert problems(workdir, "sge: {qsub_args: [1]}\n")[0].startswith(
        "line 6: sge.qsub_args: must be a list of strings"
    )
    for backend, module, section in (
        ("sge", "ridgeline.schedulers.sge", "sge: {qsub_args: [-q, all.q]}\n"),
        ("dask", "ridgeline.schedulers.dask", "dask: {address: 'tcp://h:8786'}\n"),
    ):
        raw = load_config(write(workdir, section)).raw
        if importlib.util.find_spec(module) is None:
            with pytest.raises(ConfigError, match="not available in this version"):
                resolve_cluster(raw)
        else:  # the scheduler has landed: the same config picks it
            assert resolve_cluster(raw).backend == backend


def test_user_defaults_yaml_and_command_line_override_in_turn(
    workdir: Path, user_config: Path
) -> None:
    plain = load_config(write(workdir)).raw
    assert resolve_cluster(plain) == ClusterChoice()  # no user file: local processes

    user_config.write_text(
        "cluster:\n"
        "  backend: slurm\n"
        "  partition: gpu\n"
        "  sbatch_args: --time=60 --comment=user\n"
        "  environment: /opt/env.sh\n"
        "  address: tcp://dask:8786\n"  # a default for Dask, unused by SLURM
    )
    user = resolve_cluster(plain)
    assert user.chosen_by == f"the ridgeline config file {user_config}"
    assert user.submit_args(0) == ["--partition=gpu", "--time=60", "--comment=user"]
    assert user.environment == "/opt/env.sh" and user.address is None

    yaml_raw = load_config(write(workdir, "slurm: {sbatch_args: [--comment=yaml]}\n")).raw
    from_yaml = resolve_cluster(yaml_raw)
    assert from_yaml.chosen_by == "the experiment config"
    assert from_yaml.submit_args(0) == ["--partition=gpu", "--comment=yaml"]

    from_cli = resolve_cluster(yaml_raw, "slurm", ["sbatch_args=--comment=cli", "partition=p2"])
    assert from_cli.chosen_by == "the command line"
    assert from_cli.submit_args(0) == ["--partition=p2", "--comment=cli"]
    assert resolve_cluster(yaml_raw, "local").backend == "local"


def test_bad_command_line_options_are_refused(workdir: Path) -> None:
    raw = load_config(write(workdir, "slurm: {}\n")).raw
    with pytest.raises(ConfigError, match="did you mean 'partition'"):
        resolve_cluster(raw, None, ["partiton=gpu"])
    with pytest.raises(ConfigError, match="address: applies to dask, not to the slurm backend"):
        resolve_cluster(raw, None, ["address=tcp://h:1"])
    with pytest.raises(ConfigError, match="needs the address of a running dask"):
        resolve_cluster(raw, "dask")


def test_a_bad_user_config_names_the_file_and_line(workdir: Path, user_config: Path) -> None:
    raw = load_config(write(workdir)).raw
    user_config.write_text("cluster:\n  backend: slrum\n  sbatch_args: {a: 1}\nclusters: {}\n")
    with pytest.raises(ConfigError) as caught:
        resolve_cluster(raw)
    message = str(caught.value)
    assert message.startswith(f"{user_config}: problems in the ridgeline config file:")
    assert (
        "line 2: cluster.backend: unknown backend (got 'slrum'); did you mean 'slurm'?" in message
    )
    assert "line 3: cluster.sbatch_args: must be a list of strings" in message
    assert "line 4: clusters: unknown key for the ridgeline config file" in message
    user_config.write_text("cluster: [\n")
    with pytest.raises(ConfigError, match=str(user_config)):
        resolve_cluster(raw)


def test_the_scheduler_follows_the_stored_choice(workdir: Path) -> None:
    local = scheduler_for(None, str(workdir), 1, lambda: LocalScheduler(output_dir=str(workdir)))
    assert isinstance(local, LocalScheduler)
    choice = ClusterChoice(backend="slurm", partition="gpu", sbatch_args=["--comment=a b"])
    slurm = scheduler_for(choice.to_dict(), str(workdir), 2, lambda: None)
    assert isinstance(slurm, SLURMScheduler)
    assert slurm.submit_options == "--partition=gpu '--comment=a b'"
    assert slurm.gpus_per_trial == 2  # resources.slots_per_trial: --gres=gpu:2
    typed = ClusterChoice(backend="slurm", gpu_type="a100", environment="/opt/env.sh")
    slurm = scheduler_for(typed.to_dict(), str(workdir), 2, lambda: None)
    assert slurm.submit_options == "--gres=gpu:a100:2" and slurm.gpus_per_trial == 0
    assert slurm.environment == "/opt/env.sh" and slurm.output_dir == str(workdir)


def test_node_local_paths_are_warned_about_on_a_cluster_only() -> None:
    paths = {"output folder": "/tmp/x/out", "checkpoint storage": "/shared/ckpt"}
    with pytest.warns(ConfigWarning, match="output folder /tmp/x/out is under /tmp") as caught:
        shared_storage_warnings(ClusterChoice(backend="slurm"), paths)
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shared_storage_warnings(ClusterChoice(), paths)


def test_preview_search_says_where_trials_run(workdir: Path, user_config: Path) -> None:
    path = write(workdir, "resources: {slots_per_trial: 1}\n")
    result = CliRunner().invoke(cli, ["preview-search", str(path)])
    assert result.exit_code == 0, result.output
    assert "Trials run as local processes on the coordinator's machine; chosen by default" in (
        result.output
    )
    path = write(workdir, "resources: {slots_per_trial: 1}\nslurm: {}\n")
    result = CliRunner().invoke(cli, ["preview-search", str(path)])
    assert "Trials run as SLURM jobs (sbatch --gres=gpu:1); chosen by the experiment config" in (
        result.output
    )


def test_a_dask_trial_may_span_nodes_of_slots_per_node(workdir: Path) -> None:
    """Unlike slurm:, dask: runs a trial wider than a node across several workers."""
    pytest.importorskip("distributed")
    config = load_config(
        write(workdir, "resources: {slots_per_trial: 8}\ndask: {address: 'tcp://h:8786', "
              "slots_per_node: 4}\n")
    )  # fmt: skip
    choice = resolve_cluster(config.raw)
    assert (choice.backend, choice.slots_per_node) == ("dask", 4)
    dask = scheduler_for(choice.to_dict(), str(workdir), 8, lambda: None)
    assert (dask.gpus_per_trial, dask.slots_per_node) == (8, 4)
    assert resolve_cluster(config.raw, options=["slots_per_node=2"]).slots_per_node == 2
    assert problems(workdir, "dask: {address: 'tcp://h:8786', slots_per_node: 0}\n")[0].startswith(
        "line 6: dask.slots_per_node:"
    )


def test_a_slurm_job_across_nodes_is_checked_when_made() -> None:
    with pytest.raises(SchedulerError, match="nodes must be a whole number >= 1, got 0"):
        SLURMScheduler(nodes=0)
    with pytest.raises(SchedulerError, match=r"gpus_per_trial \(3\) must split evenly over"):
        SLURMScheduler(gpus_per_trial=3, nodes=2)


def test_the_node_meeting_point_refuses_to_run_outside_a_slurm_job(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    run = [sys.executable, "-m", "ridgeline.launch.slurm_nodes"]
    outside = subprocess.run([*run, "2"], env=env, capture_output=True, text=True, cwd=workdir)
    assert outside.returncode == 2 and outside.stdout == ""  # nothing to eval in the job
    assert "not inside a SLURM job" in outside.stderr
    for bad in ([], ["0"], ["two"], ["1", "2"]):
        refused = subprocess.run([*run, *bad], env=env, capture_output=True, text=True)
        assert refused.returncode == 2 and "usage:" in refused.stderr and refused.stdout == ""


def test_a_grid_engine_trial_wider_than_a_host_is_one_parallel_job(workdir: Path) -> None:
    extra = (
        "resources: {slots_per_trial: 4}\n"
        "sge: {slots_per_node: 2, parallel_environment: spread, qsub_args: [-q, gpu.q]}\n"
    )
    choice = resolve_cluster(load_config(write(workdir, extra)).raw)
    assert choice.nodes(4) == (2, 2) and choice.parallel_environment == "spread"
    assert choice.describe(4).startswith("Grid Engine jobs (qsub -pe spread 2 -q gpu.q)")
    sge = scheduler_for(choice.to_dict(), str(workdir), 4, lambda: None)
    assert isinstance(sge, SGEScheduler)
    assert (sge.nodes, sge.slots_per_node, sge.gpus_per_trial) == (2, 2, 4)
    argv = sge.qsub_argv("trial_1", workdir / "t.sge", "out", str(workdir))
    assert argv[argv.index("-pe") :][:5] == ["-pe", "spread", "2", "-l", "gpu=2"]  # per host
    script = sge.batch_script(["python3", "train.py"], workdir / "t.exit", workdir / "t.env")
    assert "-m ridgeline.launch.sge_nodes 2" in script
    assert script.index(f"rm -f {workdir / 't.env'}") > script.index("wait $child")  # kept
    cpu = "resources: {slots_per_trial: 2}\nsge: {slots_per_node: 1, slot_type: cpu}\n"
    choice = resolve_cluster(load_config(write(workdir, cpu)).raw)
    assert resolve_cluster(load_config(write(workdir, cpu)).raw, options=[
        "parallel_environment=mpi"
    ]).parallel_environment == "mpi"  # fmt: skip
    with pytest.raises(SchedulerError, match="needs parallel_environment"):
        scheduler_for(choice.to_dict(), str(workdir), 2, lambda: None)
    for hostile in ("spread; rm -rf ~", "-l gpu=8", "$(id)", ""):  # never reaches qsub
        with pytest.raises(SchedulerError, match="needs parallel_environment"):
            SGEScheduler(nodes=2, parallel_environment=hostile)
    with pytest.raises(SchedulerError, match="nodes must be a whole number >= 1, got 0"):
        SGEScheduler(nodes=0)
    with pytest.raises(SchedulerError, match=r"gpus_per_trial \(3\) must split evenly over"):
        SGEScheduler(gpus_per_trial=3, nodes=2, parallel_environment="spread")


def test_grid_engine_hosts_meet_with_the_master_first(workdir: Path) -> None:
    hostfile = workdir / "pe_hostfile"
    hostfile.write_text("b.example 1 q@b UNDEFINED\na 1 q@a UNDEFINED\nb.example 1 x UNDEFINED\n")
    assert sge_nodes.pe_hosts(hostfile, "a.example") == ["a", "b.example"]
    assert sge_nodes.pe_hosts(hostfile, "elsewhere") == ["b.example", "a"]
    line = sge_nodes.node_command(". '/jobs/t 1.env'", "export A='x y'\n", 1, ["echo", "a b"])
    assert line.startswith("/bin/bash -c ")
    (script,) = shlex.split(line)[2:]  # one word for qrsh's remote shell
    assert script.splitlines()[1:] == [
        "export A='x y'", "export RIDGELINE_CONTAINER_RANK=1", "exec echo 'a b'"
    ]  # fmt: skip
    assert script.splitlines()[0].endswith("&& . '/jobs/t 1.env'")
    env = {k: v for k, v in os.environ.items() if k != "PE_HOSTFILE"}
    run = [sys.executable, "-m", "ridgeline.launch.sge_nodes"]
    outside = subprocess.run([*run, "1", ":", "true"], env=env, capture_output=True, text=True)
    assert outside.returncode == 2 and "not inside a Grid Engine parallel job" in outside.stderr
    refused = subprocess.run([*run, "0", ":", "true"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "usage:" in refused.stderr
