"""Helpers for crash tests: run a search whose coordinator dies at a named crash point, resume
it, and read back what the store holds next to what each trial saw acknowledged.

Trials log every acknowledged report and checkpoint to ``acked.jsonl`` in their working folder
(one line per acknowledgement, with the pid), so the tests can check "nothing lost" against
what a trial was told, not against log text.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tests.runner_script import write_runner

from ridgeline.engine.run import process_alive
from ridgeline.faults import CRASH_ENV
from ridgeline.store import open_store

HPARAMS = {"lr": {"type": "double", "minval": 0.0, "maxval": 1.0}}
TRIAL_SLEEP = 0.05  # seconds per batch / iteration: long enough to be caught mid-run
STALL_SECONDS = 30.0

# -- the SHERPA door -----------------------------------------------------------------------
SHERPA_TRIAL = """
import json, os, sys, time
import ridgeline as sherpa

client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
with open(os.path.join(out, f"pid_{trial.id}_{os.getpid()}"), "w"):
    pass
for i in range(1, ITERATIONS + 1):
    time.sleep(SLEEP)
    objective = (trial.parameters["lr"] - 0.3) ** 2 + 1 / i
    client.send_metrics(trial=trial, iteration=i, objective=objective)
    with open(os.path.join(out, f"acked_{trial.id}.jsonl"), "a") as log:
        log.write(json.dumps({"group": "validation", "step": i, "pid": os.getpid()}) + "\\n")
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIDGELINE_", "SHERPA_"))}
    for key in ("RIDGELINE_DATA_DIR", "RIDGELINE_STORAGE"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env


@dataclass
class SherpaSearch:
    """An ``optimize()`` search in ``folder/out`` run by a runner script in its own process."""

    folder: Path
    algorithm: str
    trials: int = 3
    iterations: int = 4

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def _files(self) -> tuple[Path, Path]:
        trial = self.folder / "trial.py"
        source = SHERPA_TRIAL.replace("ITERATIONS", str(self.iterations))
        trial.write_text(source.replace("SLEEP", str(TRIAL_SLEEP)))
        return trial, write_runner(self.folder)

    def _argv(self, *extra: str) -> list[str]:
        trial, runner = self._files()
        spec = {"algorithm": self.algorithm, "trials": self.trials, "params": "lr", "seed": 11}
        spec = json.dumps(spec)
        return [sys.executable, str(runner), str(trial), str(self.out), spec, *extra]

    def crash(self, point: str, timeout: float = 120) -> None:
        """Run until the coordinator kills itself at ``point``; fail if it never gets there."""
        result = subprocess.run(self._argv(), env=clean_env(**{CRASH_ENV: point}), timeout=timeout)
        assert result.returncode == -signal.SIGKILL, (
            f"the coordinator did not crash at {point} (exit code {result.returncode})"
        )

    def resume(self, timeout: float = 180) -> None:
        subprocess.run(self._argv("--resume"), env=clean_env(), check=True, timeout=timeout)

    def cleanup(self) -> None:
        """End trial processes a failed run left behind."""
        kill_all([int(p.name.split("_")[2]) for p in self.out.glob("pid_*")])

    def acked(self) -> dict[int, list[int]]:
        """Steps each trial saw acknowledged (any of its processes), in order."""
        seen: dict[int, list[int]] = {}
        for path in self.out.glob("acked_*.jsonl"):
            number = int(path.stem.split("_")[1])
            seen[number] = [json.loads(line)["step"] for line in path.read_text().splitlines()]
        return seen


# -- the Core-API door ---------------------------------------------------------------------
CORE_TRIAL = """
import json, os, pathlib, time
import ridgeline as det

def note(kind, step, **extra):
    with open("acked.jsonl", "a") as log:
        log.write(json.dumps({"kind": kind, "step": step, "pid": os.getpid(), **extra}) + "\\n")

def save(ctx, batch, x):
    with ctx.checkpoint.store_path({"steps_completed": batch}) as (path, uuid):
        (path / "state").write_text(f"{x},{batch}")
    note("checkpoint", batch, uuid=uuid)

with det.core.init() as ctx:
    info = det.get_cluster_info()
    pathlib.Path(f"pid_{os.getpid()}").touch()
    lr = info.trial.hparams["lr"]
    x, batch = 0.0, 0
    if info.latest_checkpoint is not None:
        with ctx.checkpoint.restore_path(info.latest_checkpoint) as path:
            x, batch = (float(v) for v in (path / "state").read_text().split(","))
            batch = int(batch)
    for op in ctx.searcher.operations():
        preempted = False
        while batch < op.length and not preempted:
            batch += 1
            x = (lr - 0.3) ** 2 + 1 / batch
            time.sleep(SLEEP)
            ctx.train.report_training_metrics(steps_completed=batch, metrics={"loss": x})
            note("training", batch)
            if batch % 2 == 0:
                save(ctx, batch, x)
            preempted = ctx.preempt.should_preempt()
        if preempted:
            break
        ctx.train.report_validation_metrics(steps_completed=batch, metrics={"loss": x})
        note("validation", batch)
        op.report_completed(x)
        note("searcher", batch)
    if batch % 2:
        save(ctx, batch, x)
"""


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or clean_env(),
    )
    if result.returncode:
        raise AssertionError(f"ridgeline {args} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if pid and process_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs after {timeout} s"
        time.sleep(0.1)


@dataclass
class CoreSearch:
    """A YAML experiment created and resumed through the CLI (detached coordinators)."""

    folder: Path
    searcher: dict[str, Any]
    max_restarts: int = 0
    experiment_id: int = 0
    pids: list[int] = field(default_factory=list)

    def config(self) -> Path:
        context = self.folder / "context"
        context.mkdir(exist_ok=True)
        (context / "train.py").write_text(CORE_TRIAL.replace("SLEEP", str(TRIAL_SLEEP)))
        cfg = {
            "name": "crash",
            "entrypoint": "python3 train.py",
            "max_restarts": self.max_restarts,
            "hyperparameters": HPARAMS,
            "searcher": {"metric": "loss", "smaller_is_better": True, **self.searcher},
        }
        if self.searcher["name"] == "grid":
            cfg["hyperparameters"] = {"lr": {"type": "categorical", "vals": [0.1, 0.5, 0.9]}}
        path = context / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def start(self, point: str | None = None) -> int:
        path = self.config()
        env = clean_env(**({CRASH_ENV: point} if point else {}))
        created = json.loads(cli("e", "create", str(path), str(path.parent), "--json", env=env))
        self.experiment_id = int(created["id"])
        self.pids.append(int(created["coordinator_pid"]))
        return self.pids[-1]

    def crash(self, point: str, timeout: float = 120) -> None:
        """Create the experiment with a coordinator that kills itself at ``point``."""
        wait_gone(self.start(point), timeout)
        state = self.experiment().state
        assert state == "ACTIVE", f"the coordinator did not crash at {point} (state {state})"

    def resume(self, timeout: float = 240) -> None:
        """``experiment resume``, then wait until the experiment ends."""
        cli("e", "resume", str(self.experiment_id))
        self.wait(timeout)

    def wait(self, timeout: float = 240, stall: float = STALL_SECONDS) -> None:
        """Until the experiment ends. Fails early when its coordinator is gone, or when the
        store has not changed for ``stall`` seconds (a hang, not a slow machine: trials write
        a metric every few tens of milliseconds while they work)."""
        deadline = time.monotonic() + timeout
        last, since, gone_since = None, time.monotonic(), None
        while True:
            store = self.store()
            try:
                experiment = store.get_experiment(self.experiment_id)
                trials = store.list_trials(self.experiment_id)
                events = store.read_events(self.experiment_id)
                seqs = [m.seq for t in trials for m in store.trial_metrics(t.id)]
            finally:
                store.close()
            if experiment.state in ("COMPLETED", "CANCELED", "ERROR"):
                return
            states = {t.number: t.state for t in trials}
            now = time.monotonic()
            where = f"experiment {experiment.state}, trials {states}"
            pid = (experiment.coordinator or {}).get("pid")
            if pid is not None and process_alive(int(pid)):
                gone_since = None
            elif gone_since is None:
                gone_since = now
            elif now - gone_since > 10:  # a new coordinator records itself within moments
                raise AssertionError(f"no coordinator runs the experiment: {where}")
            fingerprint = (max(seqs, default=0), len(events), tuple(sorted(states.items())))
            if fingerprint != last:
                last, since = fingerprint, now
            elif now - since > stall:
                raise AssertionError(f"nothing moved for {stall:.0f} s: {where}")
            assert now < deadline, f"not finished after {timeout:.0f} s: {where}"
            time.sleep(0.25)

    def cleanup(self) -> None:
        """End whatever this search left running (coordinators, trials) after a failure."""
        pids = list(self.pids)
        if self.experiment_id:
            pids.append((self.experiment().coordinator or {}).get("pid") or 0)
            pids += [int(p.name.split("_")[1]) for p in self.out.glob("trials/*/pid_*")]
        kill_all(pids)

    def store(self) -> Any:
        return open_store(os.environ["RIDGELINE_STORAGE"])

    def experiment(self) -> Any:
        store = self.store()
        try:
            return store.get_experiment(self.experiment_id)
        finally:
            store.close()

    @property
    def out(self) -> Path:
        return Path(self.experiment().config["output_dir"])

    def acked(self) -> dict[int, list[dict[str, Any]]]:
        """Per trial number, everything its processes saw acknowledged."""
        seen: dict[int, list[dict[str, Any]]] = {}
        for path in (self.out / "trials").glob("*/acked.jsonl"):
            lines = path.read_text().splitlines()
            seen[int(path.parent.name)] = [json.loads(line) for line in lines]
        return seen

    def trial_pids(self, number: int) -> list[int]:
        if not self.experiment_id:
            return []
        folder = self.out / "trials" / str(number)
        return [int(p.name.split("_")[1]) for p in folder.glob("pid_*")]


# -- what the store holds ------------------------------------------------------------------
@dataclass
class Stored:
    experiment_state: str
    trials: dict[int, Any]  # number -> TrialRecord
    metrics: dict[int, dict[str, list[int]]]  # number -> group -> steps, in store order
    checkpoints: dict[int, list[Any]]  # number -> CheckpointRecords


def read_store(target: str | Path, experiment_id: int | None = None) -> Stored:
    store = open_store(target)
    try:
        if experiment_id is None:
            (experiment,) = store.list_experiments()
        else:
            experiment = store.get_experiment(experiment_id)
        trials = {t.number: t for t in store.list_trials(experiment.id)}
        metrics: dict[int, dict[str, list[int]]] = {}
        checkpoints: dict[int, list[Any]] = {}
        for number, trial in trials.items():
            groups: dict[str, list[int]] = {}
            for m in store.trial_metrics(trial.id):
                groups.setdefault(m.group, []).append(m.step)
            metrics[number] = groups
            checkpoints[number] = store.list_checkpoints(trial.id)
        return Stored(experiment.state, trials, metrics, checkpoints)
    finally:
        store.close()


def no_duplicates(stored: Stored) -> None:
    for number, groups in stored.metrics.items():
        for group, steps in groups.items():
            repeated = [s for s, n in Counter(steps).items() if n > 1]
            assert not repeated, f"trial {number} {group}: steps stored twice: {repeated}"


def expected_trials(searcher: dict[str, Any], hyperparameters: dict[str, Any]) -> int:
    """How many trials the searcher creates, from a run on the simulated clock (the count of
    these searchers does not depend on the metrics)."""
    from ridgeline.testing.simulate import run_searcher, searcher_from_config

    built, space, lower = searcher_from_config({"metric": "loss", **searcher}, hyperparameters)
    curve: Callable[..., float] = lambda t, p, parent, start, stop: 1.0 / max(stop, 1)  # noqa: E731
    result = run_searcher(built, space, curve, searcher.get("max_concurrent_trials", 1), lower)
    return len(result.trials)
