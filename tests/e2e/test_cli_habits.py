"""Determined's CLI habits through the ``ridgeline`` command, as a user types them: the first
trial's output from ``experiment logs``, ``trial describe --metrics``, archive, delete,
download of the best checkpoints, ``create --test`` and ``--storage`` after the subcommand.

One small grid experiment (three real trial processes) is run once per test that needs it;
the commands then run in-process through click's runner against its SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

import ridgeline
from ridgeline.cli import cli
from ridgeline.store import open_store

# Loss is the hyperparameter x; one checkpoint per trial. Trial x=1 also leaves a symlink in
# its checkpoint pointing at a file outside every checkpoint.
TRIAL = """
import os, sys
import ridgeline as det

info = det.get_cluster_info()
hp = info.trial.hparams
print(f"hello from x={hp['x']}", flush=True)
if hp["x"] == 0:
    print("this script is broken", file=sys.stderr, flush=True)
    sys.exit(3)
with det.core.init() as ctx:
    for op in ctx.searcher.operations():
        for step in range(1, op.length + 1):
            ctx.train.report_training_metrics(steps_completed=step, metrics={"train_loss": step})
        ctx.train.report_validation_metrics(
            steps_completed=op.length, metrics={"loss": float(hp["x"]), "acc": 1.0 / hp["x"]}
        )
        with ctx.checkpoint.store_path({"steps_completed": op.length}) as (path, uuid):
            (path / "weights").write_text(str(hp["x"]))
            if hp["x"] == 1:
                os.symlink(hp["secret"], path / "leak")
        op.report_completed(float(hp["x"]))
"""


def write_config(tmp: Path, xs: list[int], **extra: object) -> Path:
    secret = tmp / "outside" / "secret.txt"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("not a checkpoint file")
    config = {
        "name": "habits",
        "entrypoint": "python3 trial.py",
        "max_restarts": 0,
        "hyperparameters": {
            "x": {"type": "categorical", "vals": xs},
            "secret": {"type": "const", "val": str(secret)},
        },
        "searcher": {"name": "grid", "metric": "loss", "smaller_is_better": True, "max_length": 2},
        "checkpoint_storage": {"type": "shared_fs", "host_path": str(tmp / "ckpts")},
        **extra,
    }
    (tmp / "trial.py").write_text(textwrap.dedent(TRIAL))
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    return workdir


@pytest.fixture
def finished(user_env: Path) -> int:
    """A completed grid experiment over x in 3, 1, 2 (loss = x); its id."""
    exp = ridgeline.Experiment.from_yaml(write_config(user_env, [3, 1, 2]), user_env)
    exp.run(verbose=0)
    assert exp.id is not None
    return exp.id


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj={}, input=input)


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, f"ridgeline {' '.join(args)}:\n{result.output}"
    return result


def store_records(experiment_id: int) -> tuple:
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        experiment = store.get_experiment(experiment_id)
        trials = store.list_trials(experiment_id)
        checkpoints = [c for t in trials for c in store.list_checkpoints(t.id)]
        return experiment, trials, checkpoints
    finally:
        store.close()


def test_experiment_logs_shows_the_first_trial_and_the_coordinator_on_request(
    finished: int,
) -> None:
    _, trials, _ = store_records(finished)
    x = trials[0].params["x"]  # trial 1's
    first = ok("e", "logs", str(finished)).output
    assert first.count("hello from") == 1 and f"hello from x={x}" in first
    assert first == ok("t", "logs", str(trials[0].id)).output
    assert ok("e", "logs", "-f", str(finished)).output == first  # the trial ended: returns
    assert f"hello from x={x}" in ok("e", "logs", str(finished), "--all").output
    coordinator = ok("e", "logs", "--coordinator", str(finished)).output
    assert "Submitting Trial 1" in coordinator and "hello from" not in coordinator
    both = run("e", "logs", "--coordinator", "--all", str(finished))
    assert both.exit_code == 1 and "do not go with --coordinator" in both.stderr
    assert run("e", "logs", "999").exit_code == 1


def test_experiment_logs_of_an_experiment_without_trials(user_env: Path) -> None:
    cfg = write_config(user_env, [1])
    experiment_id = ridgeline.Experiment.from_yaml(cfg, user_env).create(paused=True)
    result = run("e", "logs", str(experiment_id))
    assert result.exit_code == 1
    assert "has no trials yet" in result.stderr and "--coordinator" in result.stderr


def test_trial_describe_metrics_prints_every_report(finished: int) -> None:
    _, trials, _ = store_records(finished)
    trial_id = str(next(t.id for t in trials if t.params["x"] == 1))
    plain = ok("t", "describe", trial_id).output
    assert "train_loss" not in plain and "show them with --metrics" in plain
    table = ok("t", "describe", trial_id, "--metrics").output
    assert "train_loss" in table and "validation" in table and "loss" in table
    rows = list(
        __import__("csv").DictReader(
            ok("t", "describe", trial_id, "--metrics", "--csv").output.splitlines()
        )
    )
    assert {r["group"] for r in rows} >= {"training", "validation"}
    (validation,) = [r for r in rows if r["group"] == "validation"]
    assert (validation["step"], validation["loss"], validation["acc"]) == ("2", "1.0", "1.0")
    assert [r["train_loss"] for r in rows if r["group"] == "training"] == ["1", "2"]
    data = json.loads(ok("t", "describe", trial_id, "--json").output)
    assert {m["group"] for m in data["metrics"]} >= {"training", "validation"}
    assert run("t", "describe", trial_id, "--csv").exit_code == 1


def test_download_copies_the_best_checkpoints_without_following_links(
    finished: int, user_env: Path
) -> None:
    _, trials, checkpoints = store_records(finished)
    x_of = {t.id: t.params["x"] for t in trials}
    by_x = {x_of[c.trial_id]: c.uuid for c in checkpoints if c.state == "COMPLETED"}
    best, second = by_x[1], by_x[2]
    out = user_env / "best"
    result = ok("e", "download", str(finished), "--top-n", "2", "--output-dir", str(out))
    assert sorted(p.name for p in out.iterdir()) == sorted([best, second])
    assert (out / best / "weights").read_text() == "1"
    assert (out / second / "weights").read_text() == "2"
    assert not (out / best / "leak").exists()  # the symlink out of the checkpoint stays behind
    assert "leak" in result.stderr and "loss 1" in result.stdout
    os.chdir(user_env)
    ok("e", "download", str(finished))  # default: the best one, into ./checkpoints
    assert [p.name for p in (user_env / "checkpoints").iterdir()] == [best]
    many = run("e", "download", str(finished), "--top-n", "5", "-o", str(user_env / "all"))
    assert many.exit_code == 0 and "Only 3" in many.stderr
    assert len(list((user_env / "all").iterdir())) == 3


def test_download_honours_larger_is_better(user_env: Path) -> None:
    cfg = write_config(user_env, [3, 1, 2])
    exp = ridgeline.Experiment.from_yaml(
        cfg, user_env, overrides=["searcher.smaller_is_better=false"]
    )
    exp.run(verbose=0)
    assert exp.id is not None
    _, trials, checkpoints = store_records(exp.id)
    x3 = next(t.id for t in trials if t.params["x"] == 3)
    best = next(c.uuid for c in checkpoints if c.trial_id == x3)
    ok("e", "download", str(exp.id), "-o", str(user_env / "out"))
    assert [p.name for p in (user_env / "out").iterdir()] == [best]


def test_archive_hides_from_list_until_unarchived(finished: int, user_env: Path) -> None:
    cfg = write_config(user_env, [1])
    paused = ridgeline.Experiment.from_yaml(cfg, user_env).create(paused=True)

    def listed(*flags: str) -> list[int]:
        return [row["id"] for row in json.loads(ok("e", "list", "--json", *flags).output)]

    assert listed() == [finished, paused]
    refused = run("e", "archive", str(paused))
    assert refused.exit_code == 1 and "PAUSED" in refused.stderr and "kill" in refused.stderr
    ok("e", "archive", str(finished))
    assert listed() == [paused]
    rows = json.loads(ok("e", "list", "--all", "--json").output)
    assert [(r["id"], r["archived"]) for r in rows] == [(finished, True), (paused, False)]
    assert json.loads(ok("e", "describe", str(finished), "--json").output)["archived"] is True
    ok("e", "unarchive", str(finished))
    assert listed() == [finished, paused]


def test_delete_removes_rows_and_checkpoints_and_nothing_else(
    finished: int, user_env: Path
) -> None:
    record, trials, checkpoints = store_records(finished)
    root = user_env / "ckpts"
    folders = {c.uuid for c in checkpoints if (root / c.uuid).exists()}
    assert len(folders) == 3
    (root / "not-ours").mkdir()  # another experiment's file in the shared checkpoint root
    (root / "not-ours" / "w").write_text("keep")
    output_dir = Path(record.config["output_dir"])
    assert output_dir.is_dir()

    declined = run("e", "delete", str(finished), input="n\n")
    assert declined.exit_code == 1 and "archive" in declined.output
    assert store_records(finished)[0].id == finished and all((root / u).exists() for u in folders)

    ok("e", "delete", str(finished), "--yes")
    assert not any((root / u).exists() for u in folders)
    assert (root / "not-ours" / "w").read_text() == "keep"
    assert (user_env / "outside" / "secret.txt").read_text() == "not a checkpoint file"
    assert not output_dir.exists()
    assert run("e", "describe", str(finished)).exit_code == 1
    assert json.loads(ok("e", "list", "--all", "--json").output) == []
    gone = run("t", "describe", str(trials[0].id))
    assert gone.exit_code == 1 and "no trial" in gone.stderr


def test_delete_refuses_an_active_experiment(user_env: Path) -> None:
    experiment_id = ridgeline.Experiment.from_yaml(write_config(user_env, [1]), user_env).create()
    result = run("e", "delete", str(experiment_id), "--yes")
    assert result.exit_code == 1
    assert "ACTIVE" in result.stderr and f"experiment kill {experiment_id}" in result.stderr
    assert store_records(experiment_id)[0].state == "ACTIVE"


def ridgeline_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_create_test_mode_runs_one_short_trial_and_says_how_it_went(user_env: Path) -> None:
    cfg = write_config(
        user_env,
        [3, 1, 2],
        searcher={"name": "random", "metric": "loss", "max_trials": 8, "max_length": 50},
    )
    passed = ridgeline_cli("e", "create", str(cfg), str(user_env), "--test")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "hello from x=" in passed.stdout and "Test passed" in passed.stdout
    (row,) = json.loads(ridgeline_cli("e", "list", "--all", "--json").stdout)
    assert row["archived"] is True and row["name"] == "[test] habits"
    assert row["trials"] == 1 and row["searcher"] == "single" and row["length_trained"] == 1
    assert json.loads(ridgeline_cli("e", "list", "--json").stdout) == []
    _, trials, _ = store_records(row["id"])
    assert [t.restarts for t in trials] == [0]

    broken = write_config(user_env, [0], max_restarts=3)
    failed = ridgeline_cli("e", "create", str(broken), str(user_env), "--test", "--json")
    assert failed.returncode == 1
    outcome = json.loads(failed.stdout)
    assert (outcome["passed"], outcome["trial_state"], outcome["exit_code"]) == (False, "FAILED", 3)
    _, trials, _ = store_records(outcome["id"])
    assert [t.restarts for t in trials] == [0]  # a test never retries


def test_follow_first_trial_long_form_and_storage_after_the_subcommand(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    store = str(workdir / "elsewhere.db")
    cfg = write_config(workdir, [2])
    created = ridgeline_cli(
        "experiment", "create", str(cfg), str(workdir), "--follow-first-trial", "--storage", store
    )
    assert created.returncode == 0, created.stderr
    assert "hello from x=2" in created.stdout
    after = json.loads(ridgeline_cli("experiment", "list", "--json", "--storage", store).stdout)
    before = json.loads(ridgeline_cli("--storage", store, "experiment", "list", "--json").stdout)
    assert [r["id"] for r in after] == [r["id"] for r in before] == [1]
    assert not (workdir / "data" / "store.db").exists()  # the default store was never touched
    ok("e", "wait", "1", "--storage", store)
    assert "hello from x=2" in ok("t", "logs", "1", "--storage", store).output
    help_text = ridgeline_cli("e", "create", "--help").stdout
    assert "--follow-first-trial" in help_text and "--test" in help_text
    # paused: nothing to follow yet, so it says so and returns instead of waiting forever
    paused = ok("e", "create", str(cfg), "--paused", "-f", "--json", "--storage", store)
    assert "after `activate`" in paused.stderr
    assert json.loads(paused.stdout)["id"] == 2
    ok("e", "kill", "2", "--storage", store)  # its coordinator would wait for `activate`
    assert run("e", "wait", "2", "--storage", store).exit_code == 1
