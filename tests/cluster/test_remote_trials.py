"""Trials on another host, for real: a network namespace joined to this one by a veth pair
(10.233.X.1 here, 10.233.X.2 there, X free and picked under a lock so parallel test workers
never clash), a ``dask scheduler`` on 10.233.X.1 and a ``dask worker`` inside the namespace.
The trials run on that worker, so they reach the coordinator only over 10.233.X.1: the
namespace's loopback is its own. No traffic goes to any other address.

Needs root and ``ip``; everything made is removed afterwards, also when a test fails."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install .[dask])")

from tests.cluster.netns import (  # noqa: E402
    _make_namespace,
    _remove_namespace,
    _wait_for,
    skip_unless_root,
)

import ridgeline as sherpa  # noqa: E402
from ridgeline.errors import SearchFailed  # noqa: E402
from ridgeline.schedulers import DaskScheduler  # noqa: E402
from ridgeline.store import open_store  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
EXAMPLES = REPO / "examples"


@dataclass(frozen=True)
class Remote:
    """The namespace, its two addresses, and the dask scheduler trials are sent through."""

    namespace: str
    host: str  # this side of the veth pair: the address the coordinator may bind
    peer: str  # the namespace's side
    dask: str  # tcp://host:port of the dask scheduler


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    skip_unless_root("REMOTE-TRIAL TESTS")
    folder = tmp_path_factory.mktemp("remote")
    namespace, outside, x = _make_namespace()
    host, peer = f"10.233.{x}.1", f"10.233.{x}.2"
    processes: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    log = open(folder / "cluster.log", "ab")
    try:
        scheduler_file = folder / "scheduler.json"
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_scheduler",
                    "--host",
                    host,
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(scheduler_file),
                ],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )  # fmt: skip
        )
        _wait_for(lambda: scheduler_file.exists() and scheduler_file.stat().st_size > 0, "dask")
        address = json.loads(scheduler_file.read_text())["address"]
        processes.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    namespace,
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--host",
                    peer,
                    "--nworkers",
                    "2",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                ],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )  # fmt: skip
        )
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=30)
        yield Remote(namespace, host, peer, address)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        _remove_namespace(namespace, outside)
        log.close()


def _search(workdir: Path, trial: str, remote: Remote, trials: int = 2, **network: Any) -> Path:
    """A SHERPA-door search of ``trials`` trials of ``trial`` on the namespace's worker."""
    (workdir / "trial.py").write_text(textwrap.dedent(trial))
    out = workdir / "out"
    sherpa.optimize(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=trials),
        lower_is_better=True,
        scheduler=DaskScheduler(remote.dask),
        filename=str(workdir / "trial.py"),
        output_dir=str(out),
        max_concurrent=2,
        verbose=0,
        max_consecutive_failures=0,
        **network,
    )
    return out


def _states(out: Path) -> list[tuple[str, int | None]]:
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        return [(t.state, t.exit_code) for t in store.list_trials(experiment.id)]
    finally:
        store.close()


def _output(out: Path, number: int) -> str:
    return (out / "jobs" / f"trial_{number}.out").read_text(errors="replace")


# Reports one value and notes where it was told to call back.
NOTE_ENV = """
import os, ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
with open(os.path.join(os.environ["SHERPA_OUTPUT_DIR"], f"env_{trial.id}"), "w") as f:
    f.write(" ".join(os.environ.get(n, "-") for n in
            ("RIDGELINE_MASTER", "RIDGELINE_CERT_SHA256", "SHERPA_DB_HOST", "SHERPA_DB_PORT")))
client.send_metrics(trial, 1, trial.parameters["x"])
"""


def test_the_loopback_bind_leaves_trials_on_other_hosts_failed(
    remote: Remote, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_RETRY_SECONDS", "2")
    with pytest.raises(SearchFailed), pytest.warns(RuntimeWarning, match="failed"):
        _search(workdir, NOTE_ENV, remote, bind="127.0.0.1")
    out = workdir / "out"
    assert [state for state, _ in _states(out)] == ["FAILED", "FAILED"]
    for number in (1, 2):
        assert "unreachable for 2 s" in _output(out, number), _output(out, number)
    assert json.loads((out / "coordinator.json").read_text())["url"].startswith("http://127.0.0.1:")


def test_the_cluster_address_with_tls_serves_a_sherpa_search(remote: Remote, workdir: Path) -> None:
    """No settings: the coordinator binds the address that routes to the dask scheduler,
    and speaks TLS there; the trials get https and the certificate's fingerprint."""
    out = _search(workdir, NOTE_ENV, remote)
    assert _states(out) == [("COMPLETED", 0), ("COMPLETED", 0)]
    address = json.loads((out / "coordinator.json").read_text())
    cert = out / "coordinator-tls" / "cert.pem"
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert address["cert_sha256"] == hashlib.sha256(der).hexdigest()
    for number in (1, 2):
        master, fingerprint, db_host, db_port = (out / f"env_{number}").read_text().split()
        assert master == address["url"] == f"https://{remote.host}:{db_port}"
        assert fingerprint == address["cert_sha256"] and db_host == remote.host
    for name in ("cert.pem", "key.pem"):
        assert stat.S_IMODE((out / "coordinator-tls" / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "coordinator-tls").stat().st_mode) == 0o700
    key = (out / "coordinator-tls" / "key.pem").read_text()
    assert key.strip() not in (out / "log.txt").read_text()


def test_a_core_api_experiment_runs_on_the_bind_address_given_at_create(
    remote: Remote, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    monkeypatch.setenv("NOTE_DIR", str(workdir))
    folder = workdir / "stage3"
    folder.mkdir()
    script = (EXAMPLES / "core_api" / "3_hpsearch.py").read_text()
    note = (
        "import os, pathlib\n"
        "pathlib.Path(os.environ['NOTE_DIR'], f'env_{os.getpid()}').write_text("
        "os.environ['RIDGELINE_MASTER'] + ' ' + os.environ.get('RIDGELINE_CERT_SHA256', '-'))\n"
    )
    (folder / "3_hpsearch.py").write_text(note + script)
    config = yaml.safe_load((EXAMPLES / "core_api" / "3_hpsearch.yaml").read_text())
    config["entrypoint"] = f"{sys.executable} 3_hpsearch.py"
    config["searcher"].update(max_trials=2, max_length=20, max_concurrent_trials=2)
    config["resources"] = {"slots_per_trial": 0}
    config["dask"] = {"address": remote.dask}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "ridgeline.cli", *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    created = cli(
        "experiment", "create", str(folder / "config.yaml"), str(folder),
        "--bind", remote.host, "--json",
    )  # fmt: skip
    experiment_id = json.loads(created)["id"]
    cli("experiment", "wait", str(experiment_id), "--timeout", "90")
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        experiment = store.get_experiment(experiment_id)
        trials = store.list_trials(experiment_id)
    finally:
        store.close()
    assert experiment.state == "COMPLETED"
    assert {(t.state, t.exit_code) for t in trials} == {("COMPLETED", 0)}
    assert experiment.config["network"]["bind"] == remote.host  # kept for `experiment resume`
    out = Path(experiment.config["output_dir"])
    der = ssl.PEM_cert_to_DER_cert((out / "coordinator-tls" / "cert.pem").read_text())
    notes = [p.read_text().split() for p in workdir.glob("env_*")]
    assert notes and all(master.startswith(f"https://{remote.host}:") for master, _ in notes)
    assert {fingerprint for _, fingerprint in notes} == {hashlib.sha256(der).hexdigest()}


def test_a_wrong_fingerprint_is_refused_at_once(
    remote: Remote, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_RETRY_SECONDS", "60")  # a retry loop would show in the time
    wrong = """
    import os
    os.environ["RIDGELINE_CERT_SHA256"] = "ab" * 32
    import ridgeline as sherpa
    sherpa.Client().get_trial()
    """
    start = time.monotonic()
    with pytest.raises(SearchFailed), pytest.warns(RuntimeWarning, match="failed"):
        _search(workdir, wrong, remote, trials=1, bind=remote.host)
    assert time.monotonic() - start < 30
    out = workdir / "out"
    assert _states(out) == [("FAILED", 1)]
    assert "CertificateRefused" in _output(out, 1) and "not the pinned" in _output(out, 1)


# Trials 1 and 2 run at once; each leaves its token where the other finds it (the attacker's
# loot), then tries it on its own routes, its own token on the other's routes, no token at all,
# and plain HTTP to the TLS port. It notes each answer, then reports normally.
ATTACK = """
import json, os, socket, time
import ridgeline as sherpa
from ridgeline.trial.client import connect
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
me, other = trial.id, 3 - trial.id
token = os.environ["RIDGELINE_TOKEN"]
with open(os.path.join(out, f"loot_{me}"), "w") as f:
    f.write(token)
while not os.path.exists(os.path.join(out, f"loot_{other}")):
    time.sleep(0.05)
stolen = open(os.path.join(out, f"loot_{other}")).read()
conn = connect(os.environ["RIDGELINE_MASTER"], os.environ["RIDGELINE_CERT_SHA256"], 10)
seen = {}
def ask(name, path, headers):
    status, body = conn.request("GET", path, None, headers)
    seen[name] = status
ask("stolen token, own route", f"/api/v1/trials/{me}", {"Authorization": f"Bearer {stolen}"})
ask("own token, other's route", f"/api/v1/trials/{other}", {"Authorization": f"Bearer {token}"})
ask("no token", f"/api/v1/trials/{me}", {})
ask("bad token", f"/api/v1/trials/{me}", {"Authorization": "Bearer x"})
host = os.environ["SHERPA_DB_HOST"]
port = int(os.environ["SHERPA_DB_PORT"])
with socket.create_connection((host, port), timeout=10) as plain:
    plain.sendall(f"GET /api/v1/trials/{me} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".encode())
    try:
        reply = plain.recv(100)
    except OSError as exc:
        reply = repr(exc).encode()
seen["plain http"] = reply.decode("latin-1")
with open(os.path.join(out, f"seen_{me}"), "w") as f:
    json.dump(seen, f)
client.send_metrics(trial, 1, trial.parameters["x"])
"""


def test_other_trials_tokens_missing_tokens_and_plain_http_are_refused_over_tls(
    remote: Remote, workdir: Path
) -> None:
    out = _search(workdir, ATTACK, remote, bind=remote.host)
    assert _states(out) == [("COMPLETED", 0), ("COMPLETED", 0)]
    for number in (1, 2):
        seen = json.loads((out / f"seen_{number}").read_text())
        assert seen["stolen token, own route"] == 403, seen
        assert seen["own token, other's route"] == 403, seen
        assert seen["no token"] == 401 and seen["bad token"] == 401, seen
        assert not seen["plain http"].startswith("HTTP/"), seen  # no answer in clear text
