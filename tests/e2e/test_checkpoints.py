"""Checkpoints end to end: retention by the metric at each checkpoint's own steps, and the HTTP
API and CLI under attack (ids that are paths, other experiments' and trials' checkpoints,
symlinks out of a checkpoint or context folder, symlink loops)."""

from __future__ import annotations

import json
import os
import textwrap
import time
import urllib.error
import urllib.request
import uuid as uuidlib
from pathlib import Path
from typing import Any

import yaml
from tests.e2e.test_core_api import cli, user_env  # noqa: F401 - fixture

import ridgeline
from ridgeline.store import open_store


def write_config(path: Path, searcher: dict[str, Any], **top: Any) -> Path:
    cfg = {"name": "checkpoints", "entrypoint": "python3 trial.py", "searcher": searcher, **top}
    path.write_text(yaml.safe_dump(cfg))
    return path


def checkpoints_of(experiment_id: int) -> list[dict[str, Any]]:
    return list(json.loads(cli("e", "lc", str(experiment_id), "--json").stdout))


# -- retention ranks by the validation metric at each checkpoint's own steps ------------------
RANKED_TRIAL = """
import ridgeline as det

BATCHES_PER_EPOCH = 10
LOSS = {epoch: round(0.05 + 0.05 * abs(epoch - 10), 2) for epoch in range(1, 21)}  # best: 10

with det.core.init() as ctx:
    batches = 0
    for op in ctx.searcher.operations():  # lengths in epochs, steps in batches
        for epoch in range(1, op.length + 1):
            batches += BATCHES_PER_EPOCH
            ctx.train.report_validation_metrics(
                steps_completed=batches, metrics={"loss": LOSS[epoch]}
            )
            with ctx.checkpoint.store_path({"steps_completed": batches}) as (path, _):
                (path / "epoch").write_text(str(epoch))
        op.report_completed(LOSS[op.length])
"""


def test_retention_keeps_the_best_validation_with_epochs_as_length(user_env: Path) -> None:  # noqa: F811
    (user_env / "trial.py").write_text(textwrap.dedent(RANKED_TRIAL))
    root = user_env / "ckpts"
    cfg = write_config(
        user_env / "config.yaml",
        {
            "name": "single",
            "metric": "loss",
            "smaller_is_better": True,
            "max_length": {"epochs": 20},
        },
        hyperparameters={"lr": 0.1},
        checkpoint_storage={
            "type": "shared_fs",
            "host_path": str(root),
            "save_trial_latest": 1,
            "save_trial_best": 1,
            "save_experiment_best": 0,
        },
    )
    exp = ridgeline.Experiment.from_yaml(cfg, user_env)
    exp.run(verbose=0)
    listed = checkpoints_of(exp.id)
    assert len(listed) == 20
    kept = {c["steps_completed"] for c in listed if c["state"] == "COMPLETED"}
    assert kept == {100, 200}  # the best (epoch 10, loss 0.05) and the latest (epoch 20)
    folders = sorted((root / name / "epoch").read_text() for name in os.listdir(root))
    assert folders == ["10", "20"]


# -- attacks through the HTTP API and the CLI -----------------------------------------------
HELD_TRIAL = """
import json, os, pathlib, time
import ridgeline as det

info = det.get_cluster_info()
hp = info.trial.hparams
with det.core.init() as ctx:
    for op in ctx.searcher.operations():
        ids = []
        for steps in (1, 2):
            with ctx.checkpoint.store_path({"steps_completed": steps}) as (path, uuid):
                (path / "state").write_text(str(steps))
            ids.append(uuid)
        ctx.train.report_validation_metrics(steps_completed=2, metrics={"loss": 1.0})
        note = {"token": info.session_token, "checkpoints": ids}
        notes = pathlib.Path(hp["notes"])
        (notes / f"{info.trial.number}.tmp").write_text(json.dumps(note))
        os.replace(notes / f"{info.trial.number}.tmp", notes / f"{info.trial.number}.json")
        while not pathlib.Path(hp["release"]).exists():
            time.sleep(0.05)
        op.report_completed(1.0)
"""


def held_experiment(base: Path, name: str, root: Path, trials: int) -> tuple[Path, Path]:
    """A context folder and config whose trials checkpoint twice, then wait for ``release``."""
    context = base / name
    notes = base / f"{name}_notes"
    context.mkdir()
    notes.mkdir()
    (context / "trial.py").write_text(textwrap.dedent(HELD_TRIAL))
    cfg = write_config(
        base / f"{name}.yaml",
        {
            "name": "random",
            "metric": "loss",
            "max_length": 1,
            "max_trials": trials,
            "max_concurrent_trials": trials,
        },
        hyperparameters={"notes": str(notes), "release": str(base / f"{name}_release")},
        checkpoint_storage={"type": "shared_fs", "host_path": str(root)},
    )
    return context, cfg


def http(method: str, url: str, token: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            status, raw = reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:
        return status, {"error": raw.decode(errors="replace")}


def wait_for(predicate: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links not followed) with its content or link target."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_text()
    return found


def test_checkpoint_api_and_cli_under_attack(user_env: Path) -> None:  # noqa: F811
    root = user_env / "shared_checkpoints"  # shared by both experiments, as configs allow
    victim = user_env / "victim"
    victim.mkdir()
    (victim / "secret.txt").write_text("precious")
    before = tree(victim)

    # Experiment A runs to the end and keeps its checkpoints in the shared folder.
    context_a, cfg_a = held_experiment(user_env, "a", root, trials=1)
    (user_env / "a_release").touch()
    exp_a = ridgeline.Experiment.from_yaml(cfg_a, context_a)
    exp_a.run(verbose=0)
    a_uuid = max(checkpoints_of(exp_a.id), key=lambda c: c["steps_completed"])["uuid"]
    a_folder = tree(root / a_uuid)
    assert a_folder["state"] == "2"

    # Experiment B shares the folder; its trials wait while they are attacked.
    context_b, cfg_b = held_experiment(user_env, "b", root, trials=2)
    exp_b = json.loads(cli("e", "create", str(cfg_b), str(context_b), "--json").stdout)["id"]
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        record = store.get_experiment(exp_b)
        control = record.config["token"]
        wait_for(lambda: all((user_env / "b_notes" / f"{n}.json").exists() for n in (1, 2)))
        url = store.get_experiment(exp_b).coordinator["url"]
        notes = {n: json.loads((user_env / "b_notes" / f"{n}.json").read_text()) for n in (1, 2)}
        token = notes[1]["token"]
        own, theirs = notes[1]["checkpoints"], notes[2]["checkpoints"]
        trial_1 = f"{url}/api/v1/trials/1/checkpoints"

        # Registration: ids that are paths, another experiment's checkpoint, a link out.
        fresh = str(uuidlib.uuid4())
        linked = str(uuidlib.uuid4())
        (root / linked).symlink_to(victim)
        hostile = [
            str(victim),
            "../victim",
            "",
            "a/../../victim",
            str(root / a_uuid),
            a_uuid,
            own[0].upper(),
            f"{{{own[0]}}}",
            fresh,
            linked,
            7,
            None,
        ]
        for bad in hostile:
            body = {"uuid": bad, "steps_completed": 3, "metadata": {}}
            status, reply = http("POST", trial_1, token, body)
            assert status in (400, 403), (bad, status, reply)
            assert "error" in reply and "Traceback" not in reply["error"]
        status, reply = http("POST", trial_1, token, {"uuid": "", "steps_completed": 3})
        assert status == 400 and "metadata" in reply["error"]

        # Reading and deleting: not another experiment's checkpoint, not another trial's.
        for path in (f"{trial_1}/{a_uuid}", f"{url}/api/v1/checkpoints/{a_uuid}"):
            for method in ("GET", "DELETE"):
                status, reply = http(method, path, token if path.startswith(trial_1) else control)
                assert status == 404, (method, path, status, reply)
        for method in ("GET", "DELETE"):
            status, reply = http(method, f"{trial_1}/{theirs[0]}", token)
            assert status == 403, (method, status, reply)
        for bad in ("..", "%2E%2E", "..%2F..%2Fvictim", "%2Ftmp", "not-a-uuid"):
            for path, key in (
                (f"{trial_1}/{bad}", token),
                (f"{url}/api/v1/checkpoints/{bad}", control),
            ):
                status, _ = http("DELETE", path, key)
                assert 400 <= status < 500 and status != 401, (path, status)
        status, reply = http("GET", f"{trial_1}/{own[1]}", token)
        assert status == 200 and reply["steps_completed"] == 2 and reply["state"] == "COMPLETED"

        # Trial 1's second checkpoint gains links out and loops: download skips them.
        inside = root / own[1]
        (inside / "escape").symlink_to(victim)
        (inside / "secret.txt").symlink_to(victim / "secret.txt")
        (inside / "loop").symlink_to(".")
        (inside / "ping").symlink_to("pong")
        (inside / "pong").symlink_to("ping")
        (inside / "copy_of_state").symlink_to("state")
        download = user_env / "download"
        got = cli("checkpoint", "download", own[1], "-o", str(download), timeout=60)
        assert "escape" in got.stderr and "loop" in got.stderr
        assert tree(download) == {
            "copy_of_state": "2",
            "metadata.json": (inside / "metadata.json").read_text(),
            "state": "2",
        }
        # ...and deleting it removes the folder, never what its links point at.
        status, reply = http("DELETE", f"{trial_1}/{own[1]}", token)
        assert status == 200 and reply["state"] == "DELETED"
        assert not os.path.lexists(inside)

        # Trial 1's first checkpoint folder is swapped for a link out: only the link goes.
        (root / own[0] / "state").unlink()
        (root / own[0] / "metadata.json").unlink()
        (root / own[0]).rmdir()
        (root / own[0]).symlink_to(victim)
        status, reply = http("DELETE", f"{url}/api/v1/checkpoints/{own[0]}", control)
        assert status == 200 and reply["state"] == "DELETED"
        assert not os.path.lexists(root / own[0])
        assert tree(victim) == before

        (user_env / "b_release").touch()
        cli("e", "wait", str(exp_b), timeout=120)
        assert store.get_experiment(exp_b).state == "COMPLETED"
        b_trials = store.list_trials(exp_b)
        assert all(len(store.list_checkpoints(t.id)) == 2 for t in b_trials)  # none added
        assert store.get_checkpoint(a_uuid).state == "COMPLETED"
    finally:
        (user_env / "b_release").touch()
        store.close()
    assert tree(victim) == before
    assert tree(root / a_uuid) == a_folder
    assert (root / theirs[1]).is_dir()  # trial 2's latest survives retention

    # A record whose id is a path (as older versions accepted) is never followed by the CLI.
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        (a_trial,) = store.list_trials(exp_a.id)
        for legacy in ("../victim", str(victim)):
            store.add_checkpoint(legacy, a_trial.id, 9, {})
    finally:
        store.close()
    for legacy in ("../victim", str(victim)):
        refused = cli("checkpoint", "download", legacy, "-o", str(user_env / "dl2"), check=False)
        assert refused.returncode == 1 and "UUID" in refused.stderr
        assert "Traceback" not in refused.stderr and not (user_env / "dl2").exists()
        described = json.loads(cli("checkpoint", "describe", legacy, "--json").stdout)
        assert described["path"] is None


def test_context_snapshot_never_leaves_the_context(user_env: Path) -> None:  # noqa: F811
    victim = user_env / "victim"
    victim.mkdir()
    (victim / "secret.txt").write_text("precious")
    context, cfg = held_experiment(user_env, "c", user_env / "ckpts", trials=1)
    (context / "outside").symlink_to(victim)
    (context / "secret.txt").symlink_to(victim / "secret.txt")
    (context / "loop").symlink_to(".")
    (context / "ping").symlink_to("pong")
    (context / "pong").symlink_to("ping")
    (context / "sub").mkdir()
    (context / "sub" / "up").symlink_to("..")
    (context / "sub" / "same_as_trial.py").symlink_to("../trial.py")
    created = cli("e", "create", str(cfg), str(context), "--paused", "--json", timeout=60)
    assert "outside" in created.stderr and "loop" in created.stderr
    experiment_id = json.loads(created.stdout)["id"]
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        snapshot = Path(store.get_experiment(experiment_id).config["output_dir"]) / "context"
    finally:
        store.close()
    trial_py = (context / "trial.py").read_text()
    assert tree(snapshot) == {"trial.py": trial_py, "sub/same_as_trial.py": trial_py}
    cli("e", "kill", str(experiment_id))
