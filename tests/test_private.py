"""Secrets stay with their owner: private stores, folders and command lines."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import ridgeline
from ridgeline.private import mask_url
from ridgeline.store import open_store

PASSWORD = "secretpw"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default: new files 0644, folders 0755 unless code says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def data_env(workdir: Path, monkeypatch: pytest.MonkeyPatch, umask_022: None) -> Path:
    """A user-level data folder that does not exist yet, with the default store in it."""
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    return workdir / "data"


CONFIG = {
    "name": "private",
    "entrypoint": "python3 trial.py",
    "hyperparameters": {"a": {"type": "int", "minval": 1, "maxval": 3}},
    "searcher": {"name": "random", "metric": "x", "max_trials": 1, "max_length": 2},
}

TRIAL = """
import json, os
import ridgeline as det

with open("env.json", "w") as handle:
    json.dump(dict(os.environ), handle)
with det.core.init() as ctx:
    for op in ctx.searcher.operations():
        ctx.train.report_validation_metrics(steps_completed=op.length, metrics={"x": 1.0})
        op.report_completed(1.0)
"""


def test_user_level_store_data_dir_and_experiment_folders_are_private(data_env: Path) -> None:
    context = data_env.parent / "ctx"
    context.mkdir()
    (context / "trial.py").write_text(TRIAL)
    experiment = ridgeline.Experiment.from_dict(CONFIG, context)
    experiment_id = experiment.create()
    store = open_store(data_env / "ridgeline.db")
    try:
        folder = Path(store.get_experiment(experiment_id).config["output_dir"])
        store.add_event(experiment_id, "probe", {})  # a write: the WAL and its index exist now
        companions = [data_env / "ridgeline.db-wal", data_env / "ridgeline.db-shm"]
        assert all(p.exists() for p in companions)
        assert [mode(p) for p in companions] == [0o600, 0o600]
    finally:
        store.close()
    assert mode(data_env) == 0o700
    assert mode(data_env / "experiments") == 0o700
    assert folder.parent == data_env / "experiments" and mode(folder) == 0o700
    assert mode(data_env / "ridgeline.db") == 0o600


def test_existing_data_dir_and_store_are_tightened(data_env: Path) -> None:
    data_env.mkdir(mode=0o755)
    os.chmod(data_env, 0o755)
    store = open_store(data_env / "ridgeline.db")
    store.close()
    os.chmod(data_env / "ridgeline.db", 0o644)  # a store made by an earlier version
    ridgeline.Experiment.from_dict(CONFIG).create()
    assert mode(data_env) == 0o700
    assert mode(data_env / "ridgeline.db") == 0o600


def test_sqlite_url_store_is_private(workdir: Path, umask_022: None) -> None:
    store = open_store(f"sqlite:///{workdir / 'by_url.db'}")
    store.close()
    assert mode(workdir / "by_url.db") == 0o600


def test_optimize_output_store_is_private(workdir: Path, umask_022: None) -> None:
    trial = workdir / "trial.py"
    trial.write_text(
        textwrap.dedent(
            """
            import ridgeline as sherpa
            client = sherpa.Client()
            trial = client.get_trial()
            client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
            """
        )
    )
    ridgeline.optimize(
        parameters=[ridgeline.Continuous("x", [0.0, 1.0])],
        algorithm=ridgeline.algorithms.RandomSearch(max_num_trials=1),
        lower_is_better=True,
        scheduler=ridgeline.schedulers.LocalScheduler(),
        filename=str(trial),
        output_dir=str(workdir / "out"),
        verbose=0,
    )
    assert mode(workdir / "out" / "ridgeline.db") == 0o600
    for name in ("ridgeline.db-wal", "ridgeline.db-shm"):
        if (workdir / "out" / name).exists():
            assert mode(workdir / "out" / name) == 0o600


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql+psycopg://u:p%40ss@h/db?x=1", "postgresql+psycopg://u:***@h/db?x=1"),
        ("postgresql://u:a@b@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?password=pw&sslmode=on",
            "postgresql://u@h/db?password=***&sslmode=on",
        ),
        ("sqlite:////home/a:b@c/store.db", "sqlite:////home/a:b@c/store.db"),
        ("/plain/path.db", "/plain/path.db"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args], capture_output=True, text=True, timeout=120
    )
    if check and result.returncode:
        raise AssertionError(f"ridgeline {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_unreachable_store_is_one_line_without_the_password(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_STORE_RETRY_SECONDS", "1")
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/nothing"
    result = cli("--storage", url, "e", "list", check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Error: cannot open the store postgresql+psycopg://postgres:***@127.0.0.1:1" in (
        result.stderr
    )
    assert PASSWORD not in result.stdout + result.stderr


@pytest.fixture
def postgres_with_password() -> Iterator[str]:
    """A fresh database on the local server, reached with a password in the URL."""
    try:
        import psycopg

        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    except Exception as exc:  # no server here
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    name = f"ridgeline_private_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_detached_coordinator_keeps_the_password_off_its_command_line(
    data_env: Path, postgres_with_password: str
) -> None:
    import yaml

    context = data_env.parent / "ctx"
    context.mkdir()
    (context / "trial.py").write_text(TRIAL)
    (context / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    url = postgres_with_password
    created = cli("--storage", url, "e", "create", str(context / "config.yaml"), "--json")
    info = json.loads(created.stdout)
    try:
        argv = Path(f"/proc/{info['coordinator_pid']}/cmdline").read_bytes()
    except FileNotFoundError:  # it ended already: too late to look
        pytest.fail("the coordinator ended before its command line could be read")
    assert b"ridgeline.engine.daemon" in argv
    assert PASSWORD.encode() not in argv
    waited = cli("--storage", url, "e", "wait", str(info["id"]))
    described = cli("--storage", url, "e", "describe", str(info["id"]), "--json")
    listed = cli("--storage", url, "e", "list")
    assert json.loads(described.stdout)["state"] == "COMPLETED"
    store = open_store(url)
    try:
        out = Path(store.get_experiment(info["id"]).config["output_dir"])
    finally:
        store.close()
    printed = [r.stdout + r.stderr for r in (created, waited, described, listed)]
    logs = [(out / name).read_text() for name in ("log.txt", "coordinator.log")]
    trial_env = (out / "trials" / "1" / "env.json").read_text()  # trials never get the URL
    for text in [*printed, *logs, trial_env]:
        assert PASSWORD not in text
    deadline = time.monotonic() + 30  # the coordinator exits after recording the end
    while Path(f"/proc/{info['coordinator_pid']}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
