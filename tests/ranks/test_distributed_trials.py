"""Trials of several processes through the Core-API door, on the CPU: Determined's launcher
entrypoint running torch DDP (gloo), and a script that starts its own workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml
from tests.e2e.test_checkpoints import wait_for
from tests.e2e.test_core_api import cli, searcher_history, trials, user_env  # noqa: F401

import ridgeline

HERE = Path(__file__).parent
torch = pytest.importorskip("torch")


def experiment(tmp: Path, script: str, entrypoint: str, **fields: object) -> Path:
    shutil.copy(HERE / script, tmp / script)
    config = {
        "name": "distributed",
        "entrypoint": entrypoint,
        "resources": {"slots_per_trial": 2},
        "max_restarts": 0,
        **fields,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def trial_dir(experiment_id: int, number: int) -> Path:
    folder = json.loads(cli("e", "describe", str(experiment_id), "--json").stdout)["output_dir"]
    return Path(folder) / "trials" / str(number)


DDP = "python3 -m determined.launch.torch_distributed python3 ddp_trial.py"


def ddp_experiment(tmp: Path, hyperparameters: dict, searcher: dict, **fields: object) -> Path:
    """A config that trains ``ddp_trial.py`` on 2 ranks under Determined's launcher line."""
    return experiment(
        tmp, "ddp_trial.py", DDP, hyperparameters=hyperparameters, searcher=searcher, **fields
    )


LR = {"type": "log", "minval": -3, "maxval": -1, "base": 10}


def test_ddp_under_determined_launcher_restarts_every_rank_from_the_sharded_checkpoint(
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    cfg = ddp_experiment(
        user_env,
        hyperparameters={"lr": LR, "crash_rank": 1},
        searcher={"name": "random", "metric": "loss", "max_length": 10, "max_trials": 1},
        max_restarts=1,
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    (record,) = trials(exp.id)
    assert record.state == "COMPLETED" and record.restarts == 1
    folder = trial_dir(exp.id, 1)
    assert (folder / "crashed").exists()  # rank 1 exited 3 at step 7 of the first attempt
    for rank in (0, 1):  # every rank restarted from the step-5 checkpoint, with both shards
        lines = (folder / f"rank{rank}.log").read_text().splitlines()
        assert "restored 5 ranks=['0', '1']" in lines, lines
        assert lines.count("op 10 world=2 slots=[0, 1]") == 2
    checkpoints = json.loads(cli("e", "lc", str(exp.id), "--json").stdout)
    latest = max(checkpoints, key=lambda c: c["steps_completed"])
    assert latest["steps_completed"] == 10
    assert sorted(latest["metadata"]["ranks"]) == ["0", "1"]


def test_adaptive_asha_promotes_a_paused_ddp_trial_on_every_rank(
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    cfg = ddp_experiment(
        user_env,
        hyperparameters={"lr": 0.01, "early_is_better": True},
        searcher={
            "name": "adaptive_asha",
            "metric": "loss",
            "max_length": 10,
            "max_trials": 2,
            "max_rungs": 2,
            "divisor": 2,
            "mode": "aggressive",
        },
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    records, lengths, events = searcher_history(exp.id)
    assert all(t.state == "COMPLETED" for t in records), [t.state for t in records]
    assert lengths == {1: [5, 10], 2: [5]}  # trial 1 paused at rung 0, then promoted
    promoted = [1]
    for number in promoted:
        for rank in (0, 1):
            lines = (trial_dir(exp.id, number) / f"rank{rank}.log").read_text().splitlines()
            assert "restored 5 ranks=['0', '1']" in lines, lines


def test_own_launcher_script_with_wrap_rank_pauses_and_resumes_all_ranks(
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    cfg = experiment(
        user_env,
        "ranks_trial.py",
        "python3 ranks_trial.py launcher",
        hyperparameters={"increment_by": 2, "sleep": 0.05},
        searcher={"name": "single", "metric": "x", "max_length": 200, "smaller_is_better": False},
    )
    experiment_id = json.loads(cli("e", "create", str(cfg), str(user_env), "--json").stdout)["id"]

    def checkpoints() -> int:
        return len(json.loads(cli("e", "lc", str(experiment_id), "--json").stdout))

    wait_for(lambda: checkpoints() >= 1)
    cli("e", "pause", str(experiment_id))
    wait_for(lambda: trials(experiment_id)[0].state == "PAUSED")
    cli("e", "activate", str(experiment_id))
    assert cli("e", "wait", str(experiment_id), check=False, timeout=180).returncode == 0
    (record,) = trials(experiment_id)
    assert record.state == "COMPLETED"
    folder = trial_dir(experiment_id, 1)
    resumed = {p.name.split("_")[1] for p in folder.glob("resumed_rank*")}
    assert resumed == {"rank0", "rank1"}  # both ranks came back from the checkpoint
    log = cli("trial", "logs", str(record.id)).stdout  # each line says which rank wrote it
    assert "[rank=0] worker 0 of 2 starting" in log and "[rank=1] worker 1 of 2 starting" in log
    summary = json.loads(cli("e", "describe", str(experiment_id), "--json").stdout)
    assert summary["trials"][0]["best_metric"] == 200 * 2 * 2  # two ranks add 2 per step


def processes(marker: str, under: Path) -> list[int]:
    """Live processes whose command line holds ``marker`` and that run under ``under``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and cwd.startswith(str(under)) and state != "Z":
            found.append(int(entry.name))
    return found


def test_a_killed_launcher_takes_every_rank_with_it(user_env: Path) -> None:  # noqa: F811
    cfg = ddp_experiment(
        user_env,
        hyperparameters={"lr": 0.01, "checkpoint_every": 100000},
        searcher={"name": "single", "metric": "loss", "max_length": 10_000_000},
    )
    experiment_id = json.loads(cli("e", "create", str(cfg), str(user_env), "--json").stdout)["id"]
    deadline = time.monotonic() + 120
    log = None
    while log is None or "op " not in log.read_text():
        assert time.monotonic() < deadline, "the ranks never started their operation"
        time.sleep(0.2)
        candidate = trial_dir(experiment_id, 1) / "rank1.log"
        log = candidate if candidate.exists() else None
    assert len(processes("ddp_trial.py", user_env)) >= 2  # both ranks train
    launcher = processes("ridgeline.launch.torch_distributed", user_env)[0]
    os.killpg(os.getpgid(launcher), signal.SIGKILL)  # launcher and torchrun die at once
    # The ranks, in sessions of their own, follow.
    wait_for(lambda: not processes("ddp_trial.py", user_env), timeout=15)
    assert cli("e", "wait", str(experiment_id), check=False, timeout=60).returncode != 0
    (record,) = trials(experiment_id)
    assert record.state == "FAILED"


def test_a_frozen_chief_is_declared_lost_and_every_rank_restarts(
    user_env: Path,  # noqa: F811 - fixture
) -> None:
    cfg = ddp_experiment(
        user_env,
        hyperparameters={"lr": 0.01, "freeze_chief": True},
        searcher={"name": "single", "metric": "loss", "max_length": 10},
        max_restarts=1,
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.create(cluster_options=["heartbeat_seconds=10"])  # margin for a loaded machine
    exp.run(verbose=0)
    (record,) = trials(exp.id)
    assert record.state == "COMPLETED" and record.restarts == 1
    _, _, events = searcher_history(exp.id)
    assert [e.data["trial"] for e in events if e.kind == "trial_lost"] == [1]
    folder = trial_dir(exp.id, 1)
    frozen = int((folder / "froze").read_text())
    assert not Path(f"/proc/{frozen}").exists() or "Z" in Path(f"/proc/{frozen}/stat").read_text()
    for rank in (0, 1):  # both ranks came back from the step-5 checkpoint
        assert "restored 5 ranks=['0', '1']" in (folder / f"rank{rank}.log").read_text()
