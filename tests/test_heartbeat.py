"""Lost trials: an attempt that stops talking (a frozen process, a dead node) is declared lost,
its token revoked, its job killed, and it is FAILED and restarted from its checkpoint.

Real trial processes on the local scheduler; a trial freezes itself with SIGSTOP, which stops
every thread of it, its heartbeat too."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import ridgeline
from ridgeline.config.cluster import resolve_cluster
from ridgeline.engine.run import process_alive
from ridgeline.errors import ConfigError, SearchFailed
from ridgeline.schedulers import LocalScheduler
from ridgeline.store import open_store

INTERVAL = 1.5

# A Core-API trial. Hyperparameters switch its faults: `freeze_at` saves a checkpoint,
# reports, then stops itself (once per trial folder); `nap` sleeps that long between steps.
TRIAL = """
import json, os, pathlib, signal, time, urllib.request, urllib.error
import ridgeline as det

info = det.get_cluster_info()
hp = info.trial.hparams
here = pathlib.Path(".")
beats = os.environ.get("RIDGELINE_HEARTBEAT_SECONDS", "")
(here / f"heartbeat_env_{os.getpid()}").write_text(beats)
with det.core.init() as ctx:
    x = 0
    if info.latest_checkpoint is not None:
        with ctx.checkpoint.restore_path(info.latest_checkpoint) as path:
            x = int((path / "state").read_text())
        (here / f"resumed_from_{x}").touch()
        old = here / "frozen_token"
        if old.exists():  # the lost attempt's token: a late write with it must be refused
            request = urllib.request.Request(
                f"{os.environ['RIDGELINE_MASTER']}/api/v1/trials/{info.trial.trial_id}/metrics",
                data=json.dumps({"reports": [{"step": 99, "objective": 1.0}]}).encode(),
                headers={"Authorization": f"Bearer {old.read_text()}"},
                method="POST",
            )
            try:
                urllib.request.urlopen(request, timeout=10)
                status = 200
            except urllib.error.HTTPError as exc:
                status = exc.code
            (here / "late_write_status").write_text(str(status))
    for op in ctx.searcher.operations():
        while x < op.length:
            x += 1
            time.sleep(hp.get("nap", 0))
            ctx.train.report_training_metrics(steps_completed=x, metrics={"x": x})
            if x == hp.get("freeze_at") and not (here / "froze").exists():
                with ctx.checkpoint.store_path({"steps_completed": x}) as (path, uuid):
                    (path / "state").write_text(str(x))
                (here / "frozen_token").write_text(os.environ["RIDGELINE_TOKEN"])
                (here / "froze").write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGSTOP)
        ctx.train.report_validation_metrics(steps_completed=x, metrics={"x": x})
        op.report_completed(x)
"""


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private store and data folder, and an empty user config file."""
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    monkeypatch.setenv("RIDGELINE_CONFIG", str(workdir / "ridgeline-config.yaml"))
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    return workdir


def experiment(
    folder: Path,
    hparams: dict,
    max_restarts: int,
    heartbeat: str = f"{INTERVAL}",
    length: int = 8,
) -> ridgeline.Experiment:
    cfg = {
        "name": "heartbeat",
        "entrypoint": "python3 trial.py",
        "max_restarts": max_restarts,
        "hyperparameters": hparams,
        "searcher": {
            "name": "single",
            "metric": "x",
            "smaller_is_better": False,
            "max_length": length,
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    exp = ridgeline.Experiment.from_yaml(path, folder)
    exp.create(cluster_options=[f"heartbeat_seconds={heartbeat}"])
    return exp


def stored(experiment_id: int) -> tuple[list, list, dict]:
    """The trials, the event log and the experiment's config."""
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        return (
            store.list_trials(experiment_id),
            store.read_events(experiment_id),
            store.get_experiment(experiment_id).config,
        )
    finally:
        store.close()


def trial_folder(config: dict, number: int = 1) -> Path:
    return Path(config["output_dir"]) / "trials" / str(number)


def test_a_frozen_trial_is_declared_lost_and_restarted_from_its_checkpoint(
    user_env: Path,
) -> None:
    exp = experiment(user_env, {"freeze_at": 3}, max_restarts=2)
    exp.run(verbose=0)
    (trial,), events, config = stored(exp.id)
    assert trial.state == "COMPLETED" and trial.restarts == 1
    folder = trial_folder(config)
    assert (folder / "resumed_from_3").exists()  # RIDGELINE_LATEST_CHECKPOINT, restored
    (lost,) = [e for e in events if e.kind == "trial_lost"]
    assert lost.data["trial"] == 1 and lost.data["restarts"] == 0
    assert "sent nothing for" in lost.data["message"] and "declared lost" in lost.data["message"]
    # Declared lost about one interval after the freeze (beats come 4 times per interval).
    frozen_at = (folder / "froze").stat().st_mtime
    assert INTERVAL - 0.5 < lost.time - frozen_at < INTERVAL + 2.0
    kinds = [e.kind for e in events if e.data.get("trial") == 1]
    assert kinds.index("trial_lost") < kinds.index("trial_restarted")
    assert kinds.count("trial_started") == 2 and kinds.count("trial_exited") == 1
    # The lost attempt's token died with it: its late write was refused, nothing stored.
    assert (folder / "late_write_status").read_text() == "401"
    log = (Path(config["output_dir"]) / "log.txt").read_text()
    assert "Trial 1 sent nothing for" in log and "declared lost" in log
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        assert 99 not in [m.step for m in store.trial_metrics(trial.id, "searcher")]
    finally:
        store.close()
    # The frozen process was killed, not left stopped.
    assert not process_alive(int((folder / "froze").read_text()))


def test_a_trial_silent_between_reports_but_alive_is_not_lost(user_env: Path) -> None:
    # Two steps, each a nap longer than the interval with nothing sent by the script itself.
    nap = INTERVAL + 0.75
    exp = experiment(user_env, {"nap": nap}, max_restarts=0, length=2)
    start = time.monotonic()
    exp.run(verbose=0)
    assert time.monotonic() - start > 2 * nap
    (trial,), events, config = stored(exp.id)
    assert trial.state == "COMPLETED" and trial.restarts == 0
    assert not [e for e in events if e.kind == "trial_lost"]
    (env_file,) = trial_folder(config).glob("heartbeat_env_*")
    assert env_file.read_text() == f"{INTERVAL:g}"


def test_without_restarts_a_lost_trial_ends_failed_and_the_search_says_so(
    user_env: Path,
) -> None:
    exp = experiment(user_env, {"freeze_at": 2}, max_restarts=0)
    with pytest.raises(SearchFailed, match="no trial succeeded"):
        exp.run(verbose=0)
    (trial,), events, _ = stored(exp.id)
    assert trial.state == "FAILED" and trial.restarts == 0
    assert [e.kind for e in events].count("trial_lost") == 1
    exited = [e for e in events if e.kind == "trial_exited"]
    assert [e.data["status"] for e in exited] == ["FAILED"]


@pytest.fixture
def thaw() -> Iterator[list[Path]]:
    """Folders to watch: the process that froze in one is continued 2.5 intervals later."""
    folders: list[Path] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for folder in folders:
                marker = folder / "froze"
                if marker.exists() and marker.read_text():
                    time.sleep(2.5 * INTERVAL)
                    os.kill(int(marker.read_text()), signal.SIGCONT)
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield folders
    done.set()
    thread.join(5)


def test_with_the_heartbeat_off_nothing_is_declared_lost(user_env: Path, thaw: list) -> None:
    exp = experiment(user_env, {"freeze_at": 2}, max_restarts=2, heartbeat="off")
    config = stored(exp.id)[2]
    assert config["cluster"]["heartbeat_seconds"] == 0
    thaw.append(trial_folder(config))
    exp.run(verbose=0)
    (trial,), events, _ = stored(exp.id)
    assert trial.state == "COMPLETED" and trial.restarts == 0
    assert not [e for e in events if e.kind == "trial_lost"]
    (env_file,) = trial_folder(config).glob("heartbeat_env_*")
    assert env_file.read_text() == ""  # no beats asked for


SHERPA_TRIAL = """
import os, pathlib, signal, sys
import ridgeline as sherpa

client = sherpa.Client()
trial = client.get_trial()
client.send_metrics(trial, 1, trial.parameters["x"])
marker = pathlib.Path(sys.argv[1]) / "froze"
if trial.id == 1 and not marker.exists():
    marker.write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGSTOP)
client.send_metrics(trial, 2, trial.parameters["x"] / 2)
"""


def test_sherpa_door_a_frozen_trial_is_lost_and_resubmitted(workdir: Path) -> None:
    script = workdir / "trial.py"
    script.write_text(textwrap.dedent(SHERPA_TRIAL))
    out = workdir / "out"
    with pytest.warns(RuntimeWarning, match="Trial 1 failed"):
        best = ridgeline.optimize(
            [ridgeline.Choice("x", [1.0])],
            ridgeline.algorithms.GridSearch(),
            lower_is_better=True,
            scheduler=LocalScheduler(),
            command=[sys.executable, str(script), str(workdir)],
            output_dir=out,
            verbose=0,
            resubmit_failed_trials=True,
            heartbeat_seconds=INTERVAL,
        )
    assert best["Trial-ID"] == 2 and best["Objective"] == 0.5
    store = open_store(out / "ridgeline.db")
    try:
        states = {t.number: t.state for t in store.list_trials(1)}
        lost = [e for e in store.read_events(1) if e.kind == "trial_lost"]
    finally:
        store.close()
    assert states == {1: "FAILED", 2: "COMPLETED"}
    assert [e.data["trial"] for e in lost] == [1]
    assert "Trial 1 sent nothing for" in (out / "log.txt").read_text()


# -- the setting -------------------------------------------------------------------------------


def test_the_setting_comes_from_the_user_config_and_the_command_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = workdir / "config.yaml"
    monkeypatch.setenv("RIDGELINE_CONFIG", str(user))
    assert resolve_cluster({}).heartbeat_seconds == 60.0  # the default, locally too
    user.write_text("cluster: {heartbeat_seconds: 30}\n")
    assert resolve_cluster({}).heartbeat_seconds == 30.0
    assert resolve_cluster({}, options=["heartbeat_seconds=2.5"]).heartbeat_seconds == 2.5
    assert resolve_cluster({}, options=["heartbeat_seconds=off"]).heartbeat_seconds == 0.0
    user.write_text("cluster: {heartbeat_seconds: off}\n")
    assert resolve_cluster({}).heartbeat_seconds == 0.0


@pytest.mark.parametrize("value", ["-1", "abc", "nan", ".inf", "true", "[1]"])
def test_bad_values_are_refused_naming_the_setting(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("RIDGELINE_CONFIG", str(workdir / "none.yaml"))
    with pytest.raises(ConfigError, match="heartbeat_seconds: must be"):
        resolve_cluster({}, options=[f"heartbeat_seconds={value}"])
    user = workdir / "config.yaml"
    user.write_text(f"cluster: {{heartbeat_seconds: {value}}}\n")
    monkeypatch.setenv("RIDGELINE_CONFIG", str(user))
    with pytest.raises(ConfigError, match=r"cluster\.heartbeat_seconds"):
        resolve_cluster({})


@pytest.mark.parametrize("value", [-1, float("nan"), "soon", True])
def test_optimize_refuses_a_bad_interval(workdir: Path, value: object) -> None:
    script = workdir / "trial.py"
    script.write_text("")
    with pytest.raises(ConfigError, match="heartbeat_seconds must be"):
        ridgeline.optimize(
            [ridgeline.Choice("x", [1.0])],
            ridgeline.algorithms.GridSearch(),
            lower_is_better=True,
            scheduler=LocalScheduler(),
            filename=script,
            output_dir=workdir / "out",
            verbose=0,
            heartbeat_seconds=value,  # type: ignore[arg-type]
        )
    assert not (workdir / "out").exists()


# -- the watchdog's clock ------------------------------------------------------------------------


def test_the_watchdog_wakes_once_per_deadline_not_in_steps() -> None:
    """Beating attempts cost about one wake-up per interval in all; a silent one is reported
    once, one interval after its last contact."""
    from ridgeline.engine.watchdog import Watchdog

    async def main() -> tuple[list[tuple[int, float]], int]:
        silent: list[tuple[int, float]] = []
        loop = asyncio.get_running_loop()
        dog = Watchdog(0.2, lambda n, s: silent.append((n, loop.time() - start)))
        start = loop.time()
        for _ in range(16):  # trials 1..10 beat every 0.05 s for 0.8 s; trial 11 once
            for number in range(1, 11):
                dog.contact(number)
            if _ == 0:
                dog.contact(11)
            await asyncio.sleep(0.05)
        dog.close()
        return silent, dog.wakeups

    silent, wakeups = asyncio.run(main())
    assert [n for n, _ in silent] == [11]
    assert 0.19 < silent[0][1] < 0.6
    assert wakeups <= 8  # 0.8 s / 0.15 s (a deadline is at least 3/4 interval away)


def test_a_coordinator_that_did_not_run_declares_nobody_lost() -> None:
    """A stopped or blocked coordinator heard nothing, so the silence does not count."""
    from ridgeline.engine.watchdog import Watchdog

    async def main() -> list[int]:
        silent: list[int] = []
        dog = Watchdog(0.2, lambda n, s: silent.append(n))
        dog.contact(1)
        time.sleep(0.5)  # the loop is blocked past the deadline
        await asyncio.sleep(0.01)
        assert silent == []
        await asyncio.sleep(0.25)  # heard nothing since: now it counts
        dog.close()
        return silent

    assert asyncio.run(main()) == [1]


def test_describe_says_when_trials_are_lost() -> None:
    from ridgeline.config.cluster import ClusterChoice

    assert ClusterChoice().describe(0).endswith("trials lost after 60 s of silence")
    assert "heartbeat off" in ClusterChoice(heartbeat_seconds=0.0).describe(0)


class UnreachableNode(ridgeline.schedulers.Scheduler):
    """A user-written (SHERPA-interface) scheduler whose kills never reach the node, as with
    a node that was cut off: its jobs stay 'running' until the test ends them."""

    def __init__(self) -> None:
        self.jobs: dict[int, subprocess.Popen[bytes]] = {}

    def submit_job(self, command: list[str], env: dict[str, str], job_name: str) -> int:
        process = subprocess.Popen(command, env={**os.environ, **env})
        self.jobs[process.pid] = process
        return process.pid

    def get_status(self, job_id: int) -> Any:
        from ridgeline.schedulers import _JobStatus

        code = self.jobs[job_id].poll()
        if code is None:
            return _JobStatus.running
        return _JobStatus.finished if code == 0 else _JobStatus.failed

    def kill_job(self, job_id: int) -> None:
        pass  # the node does not answer


def test_a_lost_job_that_never_ends_is_not_waited_for(workdir: Path) -> None:
    script = workdir / "trial.py"
    script.write_text(textwrap.dedent(SHERPA_TRIAL))
    out = workdir / "out"
    scheduler = UnreachableNode()
    try:
        with pytest.warns(RuntimeWarning, match="Trial 1 failed"):
            best = ridgeline.optimize(
                [ridgeline.Choice("x", [1.0])],
                ridgeline.algorithms.GridSearch(),
                lower_is_better=True,
                scheduler=scheduler,
                command=[sys.executable, str(script), str(workdir)],
                output_dir=out,
                verbose=0,
                resubmit_failed_trials=True,
                grace_period=0.5,
                heartbeat_seconds=INTERVAL,
            )
        frozen = scheduler.jobs[int((workdir / "froze").read_text())]
        assert frozen.poll() is None  # still there, stopped: the search did not wait for it
    finally:
        for process in scheduler.jobs.values():
            process.kill()
            process.wait()
    assert best["Trial-ID"] == 2
    log = (out / "log.txt").read_text()
    assert "Trial 1's job trial_1 has not ended 0.5 s after it was killed" in log
    store = open_store(out / "ridgeline.db")
    try:
        states = {t.number: t.state for t in store.list_trials(1)}
    finally:
        store.close()
    assert states == {1: "FAILED", 2: "COMPLETED"}


def test_the_cli_refuses_a_bad_interval_naming_the_setting(user_env: Path) -> None:
    path = user_env / "config.yaml"
    cfg = {"entrypoint": "python3 trial.py", "searcher": {"name": "single", "metric": "x"}}
    path.write_text(yaml.safe_dump({"name": "t", **cfg}))
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", "e", "create", str(path), str(user_env)]
        + ["--cluster-option", "heartbeat_seconds=-5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "heartbeat_seconds: must be > 0 seconds, or off (got -5" in result.stderr
