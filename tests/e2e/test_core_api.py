"""The Core-API front door end to end: YAML experiments, real trial processes, the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ridgeline
from ridgeline.errors import ConfigError
from ridgeline.store import open_store
from ridgeline.store.records import EXPERIMENT_DONE_STATES

REPO = Path(__file__).resolve().parents[2]
STAGES = REPO / "examples" / "core_api"

# A tutorial-shaped trial with switches for the fault tests (the hyperparameters carry them).
TRIAL = """
import os, pathlib, sys, time
import ridgeline as det

def main(ctx, info):
    hp = info.trial.hparams
    print(f"trial {info.trial.trial_id} starts with {hp}", flush=True)
    if hp.get("reject_odd") and hp["increment_by"] % 2:
        raise det.InvalidHP("odd increments are not allowed")
    x, start = 0, 0
    if info.latest_checkpoint is not None:
        with ctx.checkpoint.restore_path(info.latest_checkpoint) as path:
            x, start = map(int, (path / "state").read_text().split(","))
        pathlib.Path(f"resumed_from_{start}").touch()
    batch = start
    step = 100 - info.trial.number if hp.get("early_is_better") else hp["increment_by"]
    for op in ctx.searcher.operations():
        while batch < op.length:
            x += step
            batch += 1
            time.sleep(hp.get("sleep", 0.005))
            if batch % 10 == 0:
                ctx.train.report_training_metrics(steps_completed=batch, metrics={"x": x})
                with ctx.checkpoint.store_path({"steps_completed": batch}) as (path, uuid):
                    (path / "state").write_text(f"{x},{batch}")
                if hp.get("crash_at") == batch and not pathlib.Path("crashed").exists():
                    pathlib.Path("crashed").touch()
                    os._exit(7)
                if ctx.preempt.should_preempt():
                    return
        ctx.train.report_validation_metrics(steps_completed=batch, metrics={"x": x})
        op.report_completed(x)
    if batch % 10:  # paused or done between checkpoints: keep the state for a promotion
        with ctx.checkpoint.store_path({"steps_completed": batch}) as (path, uuid):
            (path / "state").write_text(f"{x},{batch}")

with det.core.init() as ctx:
    main(ctx, det.get_cluster_info())
"""


def config(tmp: Path, **searcher) -> Path:
    searcher.setdefault("name", "random")
    cfg = {
        "name": "test",
        "entrypoint": "python3 trial.py",
        "max_restarts": searcher.pop("max_restarts", 0),
        "hyperparameters": searcher.pop(
            "hyperparameters", {"increment_by": {"type": "int", "minval": 1, "maxval": 8}}
        ),
        "searcher": {
            "metric": "x",
            "smaller_is_better": False,
            "max_length": 30,
            "max_trials": 3,
            "max_concurrent_trials": 2,
            **searcher,
        },
    }
    (tmp / "trial.py").write_text(textwrap.dedent(TRIAL))
    path = tmp / "config.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private user-level store and data folder, for this process and the CLI's. An
    experiment a failed test left running is killed afterwards, coordinator and trials."""
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    yield workdir
    if not (workdir / "data" / "store.db").exists():
        return
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        running = [e.id for e in store.list_experiments() if e.state not in EXPERIMENT_DONE_STATES]
    finally:
        store.close()
    for experiment_id in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            cli("e", "kill", str(experiment_id), check=False, timeout=60)


def cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"ridgeline {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def trials(experiment_id: int = 1) -> list:
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        return store.list_trials(experiment_id)
    finally:
        store.close()


def searcher_history(experiment_id: int) -> tuple[list, dict[int, list[int]], list]:
    """Trials, the lengths each trial reported its searcher metric at, and the event log."""
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        records = store.list_trials(experiment_id)
        lengths = {
            t.number: [m.step for m in store.trial_metrics(t.id, "searcher")] for t in records
        }
        return records, lengths, store.read_events(experiment_id)
    finally:
        store.close()


def describe(experiment_id: int) -> dict:
    return json.loads(cli("e", "describe", str(experiment_id), "--json").stdout)


def test_off_cluster_stand_ins(workdir: Path) -> None:
    with ridgeline.core.init(max_length=20) as ctx:
        lengths = []
        for op in ctx.searcher.operations():
            lengths.append(op.length)
            with ctx.checkpoint.store_path({"steps_completed": op.length}) as (path, uuid):
                (path / "w").write_text("1")
            op.report_completed(0.5)
            with pytest.raises(RuntimeError, match="already"):
                op.report_completed(0.5)
        assert lengths == [20]
        assert ctx.checkpoint.get_metadata(uuid) == {"steps_completed": 20}
        assert ctx.preempt.should_preempt() is False
        assert ctx.distributed.get_rank() == 0 and ctx.distributed.allgather(3) == [3]
    assert ridgeline.get_cluster_info() is None
    with pytest.raises(ValueError, match="steps_completed"):
        with ctx.checkpoint.store_path({}):
            pass
    with ridgeline.core.init() as ctx:
        with pytest.raises(RuntimeError, match="report_completed"):
            for _ in ctx.searcher.operations():
                pass


def test_random_search_from_python(user_env: Path) -> None:
    exp = ridgeline.Experiment.from_yaml(config(user_env), user_env)
    exp.run(verbose=0)
    rows = describe(exp.id)
    assert rows["state"] == "COMPLETED"
    assert [t["state"] for t in rows["trials"]] == ["COMPLETED"] * 3
    for t in rows["trials"]:
        assert t["best_metric"] == 30 * t["hparams"]["increment_by"]
        assert t["checkpoints"] >= 1
    # the snapshot: each trial ran in its own copy of the context
    out = Path(exp_dir(exp.id))
    assert (out / "context" / "trial.py").exists()
    assert (out / "trials" / "1" / "trial.py").exists()
    first = rows["trials"][0]
    assert f"trial {first['trial_id']} starts" in cli("t", "logs", str(first["trial_id"])).stdout


def exp_dir(experiment_id: int) -> str:
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        return store.get_experiment(experiment_id).config["output_dir"]
    finally:
        store.close()


def test_tutorial_stage3_via_cli(user_env: Path) -> None:
    context = user_env / "stage3"
    shutil.copytree(STAGES, context)
    created = cli(
        "e",
        "create",
        str(context / "3_hpsearch.yaml"),
        str(context),
        "--config",
        "searcher.name=random",
        "--config",
        "searcher.max_trials=4",
        "--json",
    )
    experiment_id = json.loads(created.stdout)["id"]
    cli("e", "wait", str(experiment_id))
    rows = describe(experiment_id)
    assert (rows["progress"], rows["max_trials"]) == ("100%", 4)
    assert (rows["length_trained"], rows["length_budget"]) == (400, 400)
    assert len(rows["trials"]) == 4
    for t in rows["trials"]:
        assert t["state"] == "COMPLETED"
        assert t["best_metric"] == 100 * t["hparams"]["increment_by"]
        assert t["checkpoints"] >= 1
    listed = cli("e", "list", "--json")
    assert json.loads(listed.stdout)[0]["state"] == "COMPLETED"
    checkpoints = json.loads(cli("e", "lc", str(experiment_id), "--json").stdout)
    kept = [c for c in checkpoints if c["state"] == "COMPLETED"]
    assert len(kept) == 4 and len(checkpoints) == 40  # retention: each trial's latest/best
    uuid = kept[0]["uuid"]
    cli("checkpoint", "download", uuid, "-o", str(user_env / "dl"))
    assert (user_env / "dl" / "state").exists() and (user_env / "dl" / "metadata.json").exists()
    trial = json.loads(cli("t", "describe", str(rows["trials"][0]["trial_id"]), "--json").stdout)
    assert {m["group"] for m in trial["metrics"]} >= {"training", "validation", "searcher"}


def test_tutorial_stage3_adaptive_asha_as_written(user_env: Path) -> None:
    """Determined's 3_hpsearch.yaml (adaptive_asha, max_length 100, max_trials 10) to the end."""
    context = user_env / "stage3"
    shutil.copytree(STAGES, context)
    created = cli("e", "create", str(context / "3_hpsearch.yaml"), str(context), "--json")
    experiment_id = json.loads(created.stdout)["id"]
    cli("e", "wait", str(experiment_id), timeout=240)
    rows = describe(experiment_id)
    assert rows["state"] == "COMPLETED" and len(rows["trials"]) == 10
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        records = store.list_trials(experiment_id)
        steps = {t.id: [m.step for m in store.trial_metrics(t.id, "searcher")] for t in records}
        paused = {
            e.data["trial"] for e in store.read_events(experiment_id) if e.kind == "trial_paused"
        }
    finally:
        store.close()
    assert all(t.state == "COMPLETED" for t in records)
    assert all(s in ([25], [25, 100], [100]) for s in steps.values()), steps
    assert rows["length_trained"] < rows["length_budget"] == 1000
    for t in records:  # a promoted trial that had been paused resumed from its checkpoint
        if steps[t.id] == [25, 100] and t.number in paused:
            log = cli("trial", "logs", str(t.id)).stdout
            assert "at batch 25" in log and "resuming from checkpoint" in log


def test_tutorial_stage2_checkpoints(user_env: Path) -> None:
    exp = ridgeline.Experiment.from_yaml(STAGES / "2_checkpoints.yaml", STAGES)
    exp.run(verbose=0)
    (row,) = describe(exp.id)["trials"]
    assert row["state"] == "COMPLETED" and row["best_metric"] == 100
    assert row["checkpoints"] == 1  # default retention: the latest (no searcher metric: no best)


def test_checkpoint_retention_keeps_experiment_best(user_env: Path) -> None:
    cfg = config(user_env, max_trials=3)
    import yaml

    data = yaml.safe_load(cfg.read_text())
    data["checkpoint_storage"] = {
        "type": "shared_fs",
        "host_path": str(user_env / "ckpts"),
        "save_trial_latest": 0,
        "save_trial_best": 0,
        "save_experiment_best": 1,
    }
    cfg.write_text(yaml.safe_dump(data))
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    rows = describe(exp.id)["trials"]
    best_trial = max(rows, key=lambda t: t["best_metric"])
    kept = [
        c
        for c in json.loads(cli("e", "lc", str(exp.id), "--json").stdout)
        if c["state"] == "COMPLETED"
    ]
    assert len(kept) == 1
    assert kept[0]["trial_id"] == best_trial["trial_id"] and kept[0]["steps_completed"] == 30
    assert sorted(p.name for p in (user_env / "ckpts").iterdir()) == [kept[0]["uuid"]]


def test_invalid_hp_does_not_count(user_env: Path) -> None:
    cfg = config(
        user_env,
        max_trials=3,
        hyperparameters={
            "increment_by": {"type": "int", "minval": 1, "maxval": 8},
            "reject_odd": True,
        },
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    states = [t.state for t in trials(exp.id)]
    assert states.count("COMPLETED") == 3
    assert all(s in ("COMPLETED", "INVALID_HP") for s in states)
    for t in trials(exp.id):
        assert (t.state == "INVALID_HP") == (t.params["increment_by"] % 2 == 1)


def test_crash_after_checkpoint_restarts_from_it(user_env: Path) -> None:
    cfg = config(
        user_env,
        max_trials=1,
        max_restarts=2,
        hyperparameters={"increment_by": 1, "crash_at": 20},
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    (trial,) = trials(exp.id)
    assert trial.state == "COMPLETED" and trial.restarts == 1
    folder = Path(exp_dir(exp.id)) / "trials" / "1"
    assert (folder / "resumed_from_20").exists()
    rows = describe(exp.id)
    assert rows["trials"][0]["best_metric"] == 30  # x continued from the checkpoint


def test_pause_activate_kill_and_resume(user_env: Path) -> None:
    cfg = config(
        user_env,
        max_trials=2,
        max_length=1000,  # long enough to outlast the steps below on a loaded machine
        hyperparameters={"increment_by": 1, "sleep": 0.01},
    )
    experiment_id = json.loads(cli("e", "create", str(cfg), str(user_env), "--json").stdout)["id"]

    def wait_for(predicate, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.1)

    def checkpoints() -> int:
        return len(json.loads(cli("e", "lc", str(experiment_id), "--json").stdout))

    wait_for(lambda: checkpoints() >= 2)
    cli("e", "pause", str(experiment_id))
    wait_for(lambda: all(t.state == "PAUSED" for t in trials(experiment_id)))
    cli("e", "activate", str(experiment_id))
    wait_for(
        lambda: (
            any(
                (Path(exp_dir(experiment_id)) / "trials" / str(n)).glob("resumed_from_*")
                for n in (1, 2)
            )
            and all(t.state == "RUNNING" for t in trials(experiment_id))
        )
    )
    # the coordinator dies outright; `resume` starts a new one that carries on
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    pid = store.get_experiment(experiment_id).coordinator["pid"]
    store.close()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    cli("e", "resume", str(experiment_id))
    wait_for(lambda: checkpoints() >= 6)
    cli("e", "kill", str(experiment_id))
    assert cli("e", "wait", str(experiment_id), check=False).returncode == 1
    assert {t.state for t in trials(experiment_id)} == {"CANCELED"}


def test_bad_config_creates_nothing(user_env: Path) -> None:
    bad = user_env / "bad.yaml"
    bad.write_text("entrypoint: python3 x.py\nsearcher: {name: random, metrc: x}\n")
    result = cli("e", "create", str(bad), str(user_env), check=False)
    assert result.returncode != 0
    assert "metrc" in result.stderr and "metric" in result.stderr
    assert json.loads(cli("e", "list", "--json").stdout) == []


def test_sherpa_trial_script_as_entrypoint(user_env: Path) -> None:
    (user_env / "sherpa_trial.py").write_text(
        textwrap.dedent("""
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        for i in range(1, 4):
            client.send_metrics(trial=trial, iteration=i, objective=trial.parameters["lr"] * i)
    """)
    )
    cfg = user_env / "sherpa.yaml"
    cfg.write_text(
        textwrap.dedent("""
        entrypoint: python3 sherpa_trial.py
        hyperparameters:
          lr: {type: double, minval: 0.1, maxval: 1.0}
        searcher: {name: random, metric: loss, max_trials: 2}
    """)
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    assert [t.state for t in trials(exp.id)] == ["COMPLETED", "COMPLETED"]
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        metrics = store.trial_metrics(trials(exp.id)[0].id, "validation")
    finally:
        store.close()
    assert [m.step for m in metrics] == [1, 2, 3] and "loss" in metrics[0].values


def test_cli_paused_create_activate_trial_kill_and_preview(user_env: Path) -> None:
    cfg = config(user_env, max_trials=2, max_length=2000, hyperparameters={"increment_by": 1})
    preview = cli("preview-search", str(cfg), "--config", "searcher.max_trials=7").stdout
    assert "7" in preview and "random" in preview
    experiment_id = json.loads(cli("e", "create", str(cfg), "--paused", "--json").stdout)["id"]
    time.sleep(1.0)
    assert trials(experiment_id) == []  # paused: nothing starts
    cli("e", "unpause", str(experiment_id))
    deadline = time.monotonic() + 60
    while not any(t.state == "RUNNING" for t in trials(experiment_id)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    running = next(t for t in trials(experiment_id) if t.state == "RUNNING")
    cli("t", "kill", str(running.id))
    while store_trial(running.id).state == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert store_trial(running.id).state == "STOPPED"
    assert "Submitting Trial 1" in cli("e", "logs", str(experiment_id), "--coordinator").stdout
    cli("e", "kill", str(experiment_id))
    assert cli("e", "wait", str(experiment_id), check=False).returncode == 1
    assert cli("e", "describe", "999", check=False).returncode == 1


def store_trial(trial_id: int):
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        return store.get_trial(trial_id)
    finally:
        store.close()


def test_adaptive_asha_pauses_and_promotes_with_checkpoints(user_env: Path) -> None:
    # Earlier trials score better, so a trial paused at rung 0 is promoted later on.
    cfg = config(
        user_env,
        name="adaptive_asha",
        max_trials=10,
        max_length=100,
        max_concurrent_trials=3,
        hyperparameters={"increment_by": 1, "early_is_better": True},
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    records, lengths, events = searcher_history(exp.id)
    assert len(records) == 10 and all(t.state == "COMPLETED" for t in records)
    assert all(steps in ([25], [25, 100], [100]) for steps in lengths.values()), lengths
    summary = describe(exp.id)  # the training-length budget shows what early stopping saved
    assert summary["length_trained"] == sum(max(s) for s in lengths.values()) < 1000
    paused = {e.data["trial"] for e in events if e.kind == "trial_paused"}
    resumed = [n for n in paused if lengths[n] == [25, 100]]
    assert resumed, (lengths, paused)  # a paused trial was promoted and relaunched
    folder = Path(exp_dir(exp.id)) / "trials"
    rows = describe(exp.id)["trials"]
    # Retention ran as trials ended (checkpoints every 10 steps: the older ones went), yet a
    # paused trial's checkpoint survived until its promotion needed it (resumed_from_25).
    checkpoints = json.loads(cli("e", "lc", str(exp.id), "--json").stdout)
    assert any(c["state"] == "DELETED" for c in checkpoints)
    kept = {(c["trial_id"], c["steps_completed"]) for c in checkpoints if c["state"] == "COMPLETED"}
    assert {(t.id, max(lengths[t.number])) for t in records} <= kept  # each trial's latest
    for number in resumed:  # relaunched from its own checkpoint: it went on from step 25
        assert (folder / str(number) / "resumed_from_25").exists()
        assert rows[number - 1]["best_metric"] == 100 * (100 - number)
    peak = 0
    live: set[int] = set()
    for event in events:
        trial = event.data.get("trial")
        if event.kind == "trial_started":
            live.add(trial)
        elif event.kind in ("trial_exited", "trial_paused"):
            live.discard(trial)
        peak = max(peak, len(live))
    assert peak <= 3


def test_asha_trial_failing_in_a_later_rung_restarts_from_its_checkpoint(user_env: Path) -> None:
    cfg = config(
        user_env,
        name="async_halving",
        num_rungs=2,
        max_trials=4,
        max_length={"batches": 100},
        max_concurrent_trials=2,
        max_restarts=1,
        hyperparameters={"increment_by": 1, "early_is_better": True, "crash_at": 50},
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    records = trials(exp.id)
    assert all(t.state == "COMPLETED" for t in records)
    folder = Path(exp_dir(exp.id)) / "trials"
    crashed = [t for t in records if (folder / str(t.number) / "crashed").exists()]
    assert crashed and all(t.restarts == 1 for t in crashed)  # only rung 1 passes step 50
    for t in crashed:
        assert (folder / str(t.number) / "resumed_from_50").exists()
        assert describe(exp.id)["trials"][t.number - 1]["best_metric"] == 100 * (100 - t.number)


def peak_live(events: list) -> int:
    """Most trial processes alive at once, from the event log."""
    peak, live = 0, set()
    for event in events:
        trial = event.data.get("trial")
        if event.kind == "trial_started":
            live.add(trial)
        elif event.kind in ("trial_exited", "trial_paused"):
            live.discard(trial)
        peak = max(peak, len(live))
    return peak


def test_hyperband_brackets_pause_and_resume_from_checkpoints(user_env: Path) -> None:
    cfg = config(
        user_env,
        name="hyperband",
        max_trials=6,
        max_length=90,
        divisor=3,
        max_rungs=3,
        max_concurrent_trials=2,
        hyperparameters={"increment_by": 1, "early_is_better": True},
    )
    assert (
        "Bracket 1: trials x length per rung: 4 x 10, 1 x 30, 1 x 90"
        in cli("preview-search", str(cfg)).stdout
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    records, lengths, events = searcher_history(exp.id)
    assert len(records) == 6 and all(t.state == "COMPLETED" for t in records), records
    # Brackets of 3, 2 and 1 rungs (4, 1 and 1 trials): bracket 1's best (the earliest trial)
    # goes 10 -> 30 -> 90. It waited paused for rung 0 and resumed from its own checkpoint;
    # alone in rung 1, it was the last to report there and went on without a restart.
    assert sorted(map(tuple, lengths.values())) == sorted(
        [(10, 30, 90), (10,), (10,), (10,), (30, 90), (90,)]
    ), lengths
    folder = Path(exp_dir(exp.id)) / "trials"
    top = next(n for n, steps in lengths.items() if steps == [10, 30, 90])
    assert (folder / str(top) / "resumed_from_10").exists()
    assert not (folder / str(top) / "resumed_from_30").exists()
    assert peak_live(events) <= 2
    summary = describe(exp.id)
    assert summary["max_trials"] == 6
    assert summary["length_trained"] == summary["length_budget"] == 4 * 10 + 20 + 60 + 90 + 90


def test_pbt_clones_checkpoints_and_records_lineage(user_env: Path) -> None:
    cfg = config(
        user_env,
        name="pbt",
        population_size=4,
        num_rounds=3,
        length_per_round=10,
        replace_function={"truncate_fraction": 0.25},
        explore_function={"resample_probability": 0.0, "perturb_factor": 0.5},
        max_concurrent_trials=2,
    )
    for key in ("max_length", "max_trials"):
        yaml_text = cfg.read_text().replace(f"  {key}: ", f"  # {key}: ")
        cfg.write_text(yaml_text)
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        records = store.list_trials(exp.id)
        curves = {
            t.number: [
                (m.step, m.values["objective"]) for m in store.trial_metrics(t.id, "searcher")
            ]
            for t in records
        }
        events = store.read_events(exp.id)
    finally:
        store.close()
    assert len(records) == 4 + 1 * 2 and all(t.state == "COMPLETED" for t in records)
    by_id = {t.id: t for t in records}
    clones = [t for t in records if t.parent_id is not None]
    assert len(clones) == 2
    folder = Path(exp_dir(exp.id)) / "trials"
    for clone in clones:
        parent = by_id[clone.parent_id]
        start, first = curves[clone.number][0]
        cloned_at = start - 10
        # Exploit: it restored the parent's checkpoint at the round's end and went on from its
        # x (x grows by increment_by per batch); explore: the increment was scaled by 1 +/- 0.5.
        assert (folder / str(clone.number) / f"resumed_from_{cloned_at}").exists()
        parent_x = dict(curves[parent.number])[cloned_at]
        inc = clone.params["increment_by"]
        assert first == parent_x + 10 * inc
        scaled = (parent.params["increment_by"] * f for f in (0.5, 1.5))
        assert inc in {round(min(max(v, 1), 8)) for v in scaled}  # clipped to the range
    assert peak_live(events) <= 2
    lineage = json.loads(cli("trial", "describe", str(clones[-1].id), "--json").stdout)["lineage"]
    assert lineage and lineage[-1] == clones[-1].parent_id
    rows = describe(exp.id)["trials"]
    assert {r["number"]: r["parent"] for r in rows if r["parent"]} == {
        c.number: by_id[c.parent_id].number for c in clones
    }
    summary = describe(exp.id)
    assert summary["length_trained"] == summary["length_budget"] == 4 * 3 * 10


@pytest.mark.parametrize("name", ["bayesian", "tpe"])
def test_model_based_searchers_run_trials_off_the_loop(user_env: Path, name: str) -> None:
    cfg = config(
        user_env,
        name=name,
        max_trials=8,
        max_length=10,
        max_concurrent_trials=2,
        num_initial=3,
        hyperparameters={
            "increment_by": {"type": "int", "minval": 1, "maxval": 8},
            "lr": {"type": "log", "base": 10, "minval": -4, "maxval": -1},
        },
    )
    assert "then a" in cli("preview-search", str(cfg)).stdout
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    best = exp.run(verbose=0)
    records = trials(exp.id)
    assert len(records) == 8 and all(t.state == "COMPLETED" for t in records)
    points = {(t.params["increment_by"], t.params["lr"]) for t in records}
    assert len(points) == 8  # pending-aware: no duplicates
    assert best["Objective"] == max(10 * t.params["increment_by"] for t in records)


def test_warm_start_from_an_earlier_experiment(user_env: Path) -> None:
    space = {"increment_by": {"type": "int", "minval": 1, "maxval": 8}}
    first = config(user_env, max_trials=3, max_length=10, hyperparameters=space)
    earlier = json.loads(cli("e", "create", str(first), str(user_env), "--json").stdout)["id"]
    cli("e", "wait", str(earlier))
    second = config(user_env, name="tpe", max_trials=2, max_length=10, hyperparameters=space)
    created = cli("e", "create", str(second), str(user_env), "--warm-start", str(earlier), "--json")
    later = json.loads(created.stdout)["id"]
    cli("e", "wait", str(later))
    before = [t.params["increment_by"] for t in trials(earlier)]
    records = trials(later)
    imported, new = records[:3], records[3:]
    assert [t.params["increment_by"] for t in imported] == before
    assert all(t.state == "COMPLETED" and t.request_id < 0 for t in imported)
    assert len(new) == 2 and all(t.state == "COMPLETED" for t in new)  # the budget is whole
    rows = describe(later)["trials"]
    assert [r["best_metric"] for r in rows[:3]] == [10 * i for i in before]
    bad = cli("e", "create", str(second), str(user_env), "--warm-start", "99", check=False)
    assert bad.returncode != 0 and "99" in bad.stderr + bad.stdout


def test_asha_with_a_tpe_sampler_runs_real_trials(user_env: Path) -> None:
    cfg = config(
        user_env,
        name="async_halving",
        num_rungs=2,
        divisor=3,
        max_trials=9,
        max_length={"batches": 30},
        max_concurrent_trials=3,
        sampler="tpe",
        hyperparameters={"increment_by": {"type": "int", "minval": 1, "maxval": 50}},
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    records, lengths, events = searcher_history(exp.id)
    assert len(records) == 9 and all(t.state == "COMPLETED" for t in records)
    assert all(steps in ([10], [10, 30]) for steps in lengths.values()), lengths
    assert len({t.params["increment_by"] for t in records}) >= 8
    assert peak_live(events) <= 3


def test_tutorial_stage2_continues_from_a_source_trial_or_checkpoint(user_env: Path) -> None:
    first = ridgeline.Experiment.from_yaml(STAGES / "2_checkpoints.yaml", STAGES)
    first.run(verbose=0)
    (source,) = trials(first.id)
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        latest = max(store.list_checkpoints(source.id), key=lambda c: c.steps_completed)
    finally:
        store.close()
    # Determined's "continue training": the weights (x) carry on, the batch count restarts
    for key, value in (("source_trial_id", source.id), ("source_checkpoint_uuid", latest.uuid)):
        again = ridgeline.Experiment.from_yaml(
            STAGES / "2_checkpoints.yaml", STAGES, [f"searcher.{key}={value}"]
        )
        again.run(verbose=0)
        (row,) = describe(again.id)["trials"]
        assert row["state"] == "COMPLETED" and row["best_metric"] == 200, (key, row)
    missing = ridgeline.Experiment.from_yaml(
        STAGES / "2_checkpoints.yaml", STAGES, ["searcher.source_trial_id=999"]
    )
    with pytest.raises(ConfigError, match="no trial 999"):
        missing.create()
    unknown = "0b4e7a52-6c1d-4f0e-9a55-3e8c6b1f2d7a"
    missing = ridgeline.Experiment.from_yaml(
        STAGES / "2_checkpoints.yaml", STAGES, [f"searcher.source_checkpoint_uuid={unknown}"]
    )
    with pytest.raises(ConfigError, match="no such checkpoint"):
        missing.create()
    # its folder must be a real folder in its experiment's storage: a link there is not followed
    folder = Path(exp_dir(first.id)) / "checkpoints" / latest.uuid
    folder.rename(user_env / "moved")
    folder.symlink_to(user_env / "moved")
    linked = ridgeline.Experiment.from_yaml(
        STAGES / "2_checkpoints.yaml", STAGES, [f"searcher.source_checkpoint_uuid={latest.uuid}"]
    )
    with pytest.raises(ConfigError, match="is not a folder"):
        linked.create()


def test_cpu_trial_gets_the_cpu_variables_and_bare_names_unset(
    user_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_GPUS", "")  # a CPU-only machine, whatever this one has
    monkeypatch.setenv("DETCONFIG_INHERITED", "from the shell")
    (user_env / "env.py").write_text(
        "import json, os\n"
        "import ridgeline as det\n"
        "names = ('DEVICE', 'DETCONFIG_INHERITED')\n"
        "open('env.json', 'w').write(json.dumps({n: os.environ.get(n) for n in names}))\n"
        "with det.core.init() as ctx:\n"
        "    ctx.train.report_validation_metrics(steps_completed=1, metrics={'x': 1})\n"
    )
    exp = ridgeline.Experiment.from_dict(
        {
            "entrypoint": "python3 env.py",
            "searcher": {"name": "single", "metric": "x", "max_length": 1},
            "environment": {
                "environment_variables": {
                    "cpu": ["DEVICE=cpu", "DETCONFIG_INHERITED"],
                    "cuda": ["DEVICE=cuda"],
                }
            },
        },
        user_env,
    )
    exp.run(verbose=0)
    seen = json.loads((Path(exp_dir(exp.id)) / "trials" / "1" / "env.json").read_text())
    assert seen == {"DEVICE": "cpu", "DETCONFIG_INHERITED": None}


def test_a_halving_plan_that_would_never_finish_is_refused_and_nothing_is_stored(
    user_env: Path,
) -> None:
    # rungs [1, 1, 6, 27]: a promotion to the repeated rung would train nothing and the rung
    # above would wait for it for ever
    (user_env / "train.py").write_text("raise SystemExit('never launched')\n")
    (user_env / "config.yaml").write_text(
        "entrypoint: python3 train.py\n"
        "hyperparameters: {x: {type: double, minval: 0, maxval: 1}}\n"
        "searcher: {name: sync_halving, metric: loss, max_trials: 16, max_length: 27,"
        " num_rungs: 4}\n"
    )
    result = cli("e", "create", str(user_env / "config.yaml"), str(user_env), check=False)
    assert result.returncode == 1
    assert "repeat a length (rungs at [1, 1, 6, 27])" in result.stderr
    assert "use fewer rungs (num_rungs) or a longer max_length" in result.stderr
    if Path(os.environ["RIDGELINE_STORAGE"]).exists():
        store = open_store(os.environ["RIDGELINE_STORAGE"])
        try:
            assert store.list_experiments() == []
        finally:
            store.close()
