"""One coordinator per experiment, enforced by the store's lease: racing runners, racing
`experiment resume`, a killed holder, and a frozen holder whose lease was taken over."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.runner_script import write_runner

from ridgeline.store import open_store
from ridgeline.store.lease import this_holder

TRIAL = """
import os, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
open(os.path.join(out, f"started_{trial.id}_{os.getpid()}"), "w").close()
for i in range(1, 6):
    time.sleep(float(os.environ.get("TRIAL_SLEEP", "0.3")))
    client.send_metrics(trial=trial, iteration=i, objective=trial.parameters["x"] * i)
"""


@pytest.fixture
def search(workdir: Path) -> tuple[Path, Path, Path]:
    runner = write_runner(workdir)
    trial = workdir / "trial.py"
    trial.write_text(textwrap.dedent(TRIAL))
    return runner, trial, workdir / "out"


def start(runner: Path, trial: Path, out: Path, *flags: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(runner), str(trial), str(out), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def stored(out: Path) -> tuple[list, list]:
    store = open_store(out / "ridgeline.db")
    try:
        experiments = store.list_experiments()
        trials = [t for e in experiments for t in store.list_trials(e.id)]
        return experiments, trials
    finally:
        store.close()


def intermediate_rows(out: Path) -> list[tuple[str, str]]:
    with open(out / "results.csv") as handle:
        return [
            (r["Trial-ID"], r["Iteration"])
            for r in csv.DictReader(handle)
            if r["Status"] == "INTERMEDIATE"
        ]


def wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_two_fresh_searches_in_one_folder_create_one(
    search: tuple[Path, Path, Path], workdir: Path
) -> None:
    """Two runners start at the same instant in one empty folder (its store already made, so
    that nothing but the race separates them): one search, the other is told. Four rounds:
    a lost race is a matter of timing."""
    runner, trial, _ = search
    for k in range(4):
        folder, go = workdir / f"out{k}", workdir / f"go{k}"
        open_store(folder / "ridgeline.db").close()
        procs = [
            start(runner, trial, folder, GO_FILE=str(go), RUNNER_SPEC='{"trials": 1}')
            for _ in range(2)
        ]
        wait_for(lambda go=go: len(list(workdir.glob(f"{go.name}.*.ready"))) == 2)
        go.touch()
        results = [p.communicate(timeout=120) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes[0] == 0 and codes[1] != 0, results
        loser = next(err for p, (_, err) in zip(procs, results, strict=True) if p.returncode)
        assert "already holds a search" in loser, loser
        experiments, trials = stored(folder)
        assert len(experiments) == 1 and len(trials) == 1


def test_two_resumes_run_the_search_once(search: tuple[Path, Path, Path]) -> None:
    runner, trial, out = search
    first = start(runner, trial, out)
    wait_for(lambda: len(list(out.glob("started_*"))) >= 2)
    first.kill()  # SIGKILL: its lease stays in the store, its trials keep running
    first.wait()
    procs = [start(runner, trial, out, "--resume") for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    winners = [out_ for p, (out_, _) in zip(procs, results, strict=True) if p.returncode == 0]
    losers = [err for p, (_, err) in zip(procs, results, strict=True) if p.returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, results
    assert "already run by a coordinator" in losers[0] and "pid" in losers[0], losers[0]
    assert winners[0].count("BEST") == 1
    _, trials = stored(out)
    assert [t.number for t in trials] == [1, 2, 3, 4, 5, 6]
    assert all(t.state == "COMPLETED" for t in trials)
    for number in range(1, 7):  # trials 1 and 2 were re-attached, none ran twice
        assert len(list(out.glob(f"started_{number}_*"))) == 1, number
    inter = intermediate_rows(out)
    assert len(inter) == len(set(inter)) == 30


def test_frozen_coordinator_whose_lease_was_taken_cannot_write(
    search: tuple[Path, Path, Path],
) -> None:
    """A coordinator stopped past its lease (SIGSTOP: a frozen VM, a long GC) finds on waking
    that another holder took the experiment: it ends with LeaseLost, writes nothing more,
    and leaves the trial processes to the new holder, which finishes the search."""
    runner, trial, out = search
    env = {"RIDGELINE_LEASE_TTL": "1", "TRIAL_SLEEP": "0.5"}
    first = start(runner, trial, out, **env)
    wait_for(lambda: len(list(out.glob("started_*"))) >= 2)
    first.send_signal(signal.SIGSTOP)
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        lease = store.get_lease(experiment.id)
        assert lease is not None
        time.sleep(max(0.0, lease.expires_at - time.time()) + 0.2)
        token = store.acquire_lease(experiment.id, this_holder(), 60)
        assert token == lease.token + 1
        before = len(store.read_metrics(experiment.id))
        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=60)
        assert first.returncode != 0 and "LeaseLost" in err, err
        trial_pids = [int(p.name.split("_")[2]) for p in out.glob("started_*")]
        assert any(alive(pid) for pid in trial_pids)  # not killed by the fenced coordinator
        assert store.get_experiment(experiment.id).coordinator is not None  # not cleared
        # trials keep reporting, but the fenced coordinator recorded none of it
        assert len(store.read_metrics(experiment.id)) == before
        assert store.release_lease(experiment.id, token)
    finally:
        store.close()
    resumed = start(runner, trial, out, "--resume", **env)
    output, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err
    _, trials = stored(out)
    assert len(trials) == 6 and all(t.state == "COMPLETED" for t in trials)
    inter = intermediate_rows(out)
    assert len(inter) == len(set(inter)) == 30


# -- the Core-API door: `ridgeline experiment resume` ----------------------------------------
CORE_TRIAL = """
import os, time
import ridgeline as det
with det.core.init() as ctx:
    open(f"started_{os.getpid()}", "w").close()
    for op in ctx.searcher.operations():
        for batch in range(1, op.length + 1):
            time.sleep(0.02)
            if batch % 10 == 0:
                ctx.train.report_training_metrics(steps_completed=batch, metrics={"x": batch})
        ctx.train.report_validation_metrics(steps_completed=op.length, metrics={"x": 1.0})
        op.report_completed(1.0)
"""


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ridgeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def daemons(folder: Path) -> list[int]:
    """Live coordinator processes of the experiment whose folder is ``folder``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"ridgeline.engine.daemon" in argv and cwd == str(folder) and alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def test_second_experiment_resume_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    storage = str(workdir / "data" / "store.db")
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", storage)
    (workdir / "trial.py").write_text(textwrap.dedent(CORE_TRIAL))
    cfg = workdir / "config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "name": "lease",
                "entrypoint": "python3 trial.py",
                "hyperparameters": {"h": {"type": "int", "minval": 1, "maxval": 9}},
                "searcher": {
                    "name": "random",
                    "metric": "x",
                    "max_length": 100,
                    "max_trials": 2,
                    "max_concurrent_trials": 2,
                },
            }
        )
    )
    created = cli("e", "create", str(cfg), str(workdir), "--json")
    out, err = created.communicate(timeout=120)
    assert created.returncode == 0, err
    experiment_id = json.loads(out)["id"]

    store = open_store(storage)
    try:
        folder = Path(store.get_experiment(experiment_id).config["output_dir"])
        wait_for(lambda: len(store.list_trials(experiment_id)) == 2)
        wait_for(lambda: all(t.state == "RUNNING" for t in store.list_trials(experiment_id)))
        (first,) = daemons(folder)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: not alive(first))
        procs = [cli("e", "resume", str(experiment_id)) for _ in range(2)]
        results = [p.communicate(timeout=120) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes[0] == 0 and codes[1] != 0, results
        refused = next(err for p, (_, err) in zip(procs, results, strict=True) if p.returncode)
        assert "already" in refused and "pid" in refused, refused
        assert len(daemons(folder)) == 1  # the refused one is gone
        wait_for(lambda: store.get_experiment(experiment_id).state == "COMPLETED", 120)
        wait_for(lambda: not daemons(folder))
        trials = store.list_trials(experiment_id)
        assert [t.state for t in trials] == ["COMPLETED", "COMPLETED"]
        starts = sorted((folder / "trials").glob("*/started_*"))
        assert len(starts) == 2, starts  # both re-attached: no trial ran twice
        assert not [p for p in starts if alive(int(p.name.split("_")[1]))]
    finally:
        store.close()
