"""The coordinator's address settings (bind, advertise, tls): their sources in turn, the
defaults decided at start, clear refusals of bad values, and the trial side's TLS pinning
against a real TLS coordinator on loopback."""

from __future__ import annotations

import json
import logging
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import ridgeline as sherpa
from ridgeline.cli import cli
from ridgeline.config.cluster import load_user_cluster
from ridgeline.config.network import NetworkChoice, endpoint, resolve_network
from ridgeline.engine.tls import coordinator_certificate
from ridgeline.errors import CertificateRefused, ConfigError, TrialError
from ridgeline.schedulers import LocalScheduler
from ridgeline.trial.client import TrialClient, connect


@pytest.fixture
def user_config(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    path = workdir / "xdg" / "ridgeline" / "config.yaml"
    path.parent.mkdir(parents=True)
    return path


def test_the_user_file_is_overridden_by_what_is_given(user_config: Path) -> None:
    user_config.write_text("coordinator: {bind: 0.0.0.0, advertise: login1, tls: true}\n")
    choice = resolve_network(bind="10.0.0.5", where="optimize()")
    assert (choice.bind, choice.advertise, choice.tls) == ("10.0.0.5", "login1", True)
    assert choice.chosen_by["bind"] == "optimize()"
    assert choice.chosen_by["advertise"] == f"the ridgeline config file {user_config}"
    assert NetworkChoice.from_dict(choice.to_dict()) == choice  # as stored for a resume
    assert load_user_cluster()[0] == {}  # the cluster loader takes the coordinator section


def test_nothing_set_means_decided_at_start(user_config: Path) -> None:
    assert resolve_network() == NetworkChoice()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("coordinator: {bind: 'not a host!'}", "coordinator setting bind (from the ridgeline"),
        ("coordinator: {bind: 300.1.2.3}", "must be an IP address or host name"),
        ("coordinator: {tls: 'yes please'}", "tls (from the ridgeline config file"),
        ("coordinator: {advertise: 0.0.0.0}", "which trials cannot call"),
        ("coordinator: {port: 5}", "unknown coordinator setting port"),
        ("coordinator: 10.0.0.5", "coordinator must be a mapping"),
    ],
)
def test_bad_values_in_the_user_file_name_the_setting_and_the_file(
    user_config: Path, text: str, message: str
) -> None:
    user_config.write_text(text + "\n")
    with pytest.raises(ConfigError, match="config.yaml") as caught:
        resolve_network()
    assert message in str(caught.value)


def test_bad_values_given_in_code_name_their_source(
    workdir: Path, user_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    with pytest.raises(ConfigError, match=r"tls \(from optimize\(\)\) must be true or false"):
        sherpa.optimize(
            [sherpa.Continuous("x", [0, 1])],
            sherpa.algorithms.RandomSearch(max_num_trials=1),
            True,
            LocalScheduler(),
            command=[sys.executable, "-c", "pass"],
            output_dir=str(workdir / "out"),
            tls="no",  # type: ignore[arg-type]
        )
    assert not (workdir / "out").exists()  # refused before anything was made
    config = workdir / "cfg.yaml"
    (workdir / "t.py").write_text("")
    config.write_text(
        "name: n\nentrypoint: python3 t.py\nhyperparameters: {}\n"
        "searcher: {name: single, metric: m, max_length: 1}\n"
    )
    result = CliRunner().invoke(cli, ["experiment", "create", str(config), "--bind", "a b"])
    assert isinstance(result.exception, ConfigError)  # `ridgeline` prints it, exit code 1
    assert "coordinator setting bind (from the experiment create options)" in str(result.exception)


def test_defaults_follow_the_address_the_nodes_route_to(caplog: pytest.LogCaptureFixture) -> None:
    local = endpoint(NetworkChoice(), "127.0.0.1")
    assert (local.bind, local.advertise, local.tls) == ("127.0.0.1", "127.0.0.1", False)
    assert local.url(80) == "http://127.0.0.1:80"
    cluster = endpoint(NetworkChoice(), "10.1.2.3")
    assert (cluster.bind, cluster.advertise, cluster.tls) == ("10.1.2.3", "10.1.2.3", True)
    every = endpoint(NetworkChoice(bind="0.0.0.0"), "10.1.2.3")
    assert (every.bind, every.advertise, every.tls) == ("0.0.0.0", "10.1.2.3", True)
    v6 = endpoint(NetworkChoice(bind="::1"), "127.0.0.1")
    assert v6.url(5) == "http://[::1]:5" and not v6.tls
    with caplog.at_level(logging.WARNING, "ridgeline"):
        plain = endpoint(NetworkChoice().over({"tls": False}, "the command line"), "10.1.2.3")
    assert not plain.tls and "without TLS (tls false, from the command line)" in caplog.text


def test_the_certificate_is_private_and_kept_for_a_resume(tmp_path: Path) -> None:
    first = coordinator_certificate(tmp_path, ["10.1.2.3"])
    again = coordinator_certificate(tmp_path, ["10.9.9.9"])
    assert first == again and len(first.sha256) == 64
    assert stat.S_IMODE(first.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.key.parent.stat().st_mode) == 0o700


def test_https_without_a_fingerprint_is_refused() -> None:
    with pytest.raises(TrialError, match="no certificate fingerprint"):
        connect("https://127.0.0.1:1", None)
    with pytest.raises(TrialError, match="use http"):
        connect("ftp://127.0.0.1:1", None)


# Runs a TLS coordinator on loopback; its trial checks a wrong pin, then reports.
TRIAL = """
import os, sys, time
import ridgeline as sherpa
from ridgeline.errors import CertificateRefused
from ridgeline.trial.client import TrialClient
good = sherpa.Client()  # the right pin, from the environment: works
trial = good.get_trial()
os.environ["RIDGELINE_CERT_SHA256"] = "00" * 32
start = time.monotonic()
try:
    TrialClient(retry_seconds=60).get_trial()
except CertificateRefused as exc:
    print("REFUSED", round(time.monotonic() - start, 1), exc)
good.send_metrics(trial, 1, 0.5)
"""


def test_a_trial_refuses_a_wrong_certificate_at_once(workdir: Path) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    start = time.monotonic()
    sherpa.optimize(
        [sherpa.Continuous("x", [0, 1])],
        sherpa.algorithms.RandomSearch(max_num_trials=1),
        True,
        LocalScheduler(),
        filename="trial.py",
        output_dir=str(workdir / "out"),
        verbose=0,
        tls=True,
    )
    assert time.monotonic() - start < 30
    output = (workdir / "out" / "jobs" / "trial_1.out").read_text()
    assert "REFUSED 0." in output and "not the pinned" in output, output
    address = json.loads((workdir / "out" / "coordinator.json").read_text())
    assert address["url"].startswith("https://127.0.0.1:") and len(address["cert_sha256"]) == 64
    with pytest.raises(TrialError, match="no coordinator address"):
        TrialClient(trial_id=1)  # nothing in the environment here
    assert CertificateRefused.__mro__[1] is TrialError


def test_the_cli_reaches_a_tls_coordinator_only_with_its_recorded_fingerprint(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from ridgeline.store import open_store

    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    (workdir / "trial.py").write_text("import time\ntime.sleep(600)\n")
    (workdir / "config.yaml").write_text(
        "name: tls\nentrypoint: python3 trial.py\nhyperparameters: {}\n"
        "searcher: {name: single, metric: m, max_length: 1}\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ridgeline.cli", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    created = run("e", "create", str(workdir / "config.yaml"), str(workdir), "--tls", "--json")
    assert created.returncode == 0, created.stderr
    experiment_id = json.loads(created.stdout)["id"]
    store = open_store(str(workdir / "data" / "store.db"))
    try:
        deadline = time.monotonic() + 30
        while [t.state for t in store.list_trials(experiment_id)] != ["RUNNING"]:
            assert time.monotonic() < deadline, "the trial did not start"
            time.sleep(0.1)
        record = store.get_experiment(experiment_id)
        address = dict(record.coordinator or {})
        assert address["url"].startswith("https://127.0.0.1:")
        store.update_experiment(experiment_id, coordinator={**address, "cert_sha256": "11" * 32})
        refused = run("e", "pause", str(experiment_id))
        assert refused.returncode == 1 and "not the pinned" in refused.stderr, refused.stderr
        store.update_experiment(experiment_id, coordinator=address)
        killed = run("e", "kill", str(experiment_id))
        assert killed.returncode == 0, killed.stderr
        assert run("e", "wait", str(experiment_id)).returncode != 0
        assert store.get_experiment(experiment_id).state == "CANCELED"
    finally:
        store.close()
