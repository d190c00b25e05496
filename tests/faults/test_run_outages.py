"""A whole search through storage faults: a short PostgreSQL outage is ridden out with nothing
lost or doubled; a long one, or a full disk, ends the search with the cause instead of a hang."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

import ridgeline as sherpa
from ridgeline.errors import SearchFailed, StorageUnavailable
from ridgeline.store import open_store

from .conftest import ThrowawayPostgres

TRIAL = """
import time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
for step in range(STEPS):
    client.send_metrics(trial=trial, iteration=step, objective=trial.parameters["x"] + step,
                        context={"pad": "PAD"})
    time.sleep(0.1)
"""


def search(folder: Path, storage: str, steps: int, pad: int = 1, trials: int = 2) -> dict:
    script = TRIAL.replace("STEPS", str(steps)).replace('"PAD"', f'"{"x" * pad}"')
    (folder / "trial.py").write_text(script)
    return sherpa.optimize(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=trials),
        lower_is_better=True,
        scheduler=sherpa.schedulers.LocalScheduler(),
        filename=str(folder / "trial.py"),
        output_dir=str(folder / "out"),
        max_concurrent=2,
        storage=storage,
        verbose=0,
        seed=3,
    )


def test_a_short_database_outage_loses_and_doubles_nothing(
    workdir: Path, throwaway_postgres: ThrowawayPostgres
) -> None:
    def outage() -> None:
        time.sleep(1.5)
        throwaway_postgres.stop()
        time.sleep(2.0)
        throwaway_postgres.start()

    interruption = threading.Thread(target=outage)
    interruption.start()
    best = search(workdir, throwaway_postgres.url, steps=40)
    interruption.join()
    assert best["Objective"] is not None
    store = open_store(throwaway_postgres.url)
    try:
        (experiment,) = store.list_experiments()
        assert experiment.state == "COMPLETED"
        trials = store.list_trials(experiment.id)
        assert [t.state for t in trials] == ["COMPLETED", "COMPLETED"]
        for trial in trials:
            steps = [m.step for m in store.trial_metrics(trial.id, "validation")]
            assert steps == list(range(40))  # every report once, none lost
    finally:
        store.close()


def test_a_long_database_outage_ends_the_search_with_its_cause(
    workdir: Path, throwaway_postgres: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_STORE_RETRY_SECONDS", "2")
    threading.Timer(1.5, throwaway_postgres.stop).start()
    started = time.monotonic()
    with pytest.raises((SearchFailed, StorageUnavailable)) as info:
        search(workdir, throwaway_postgres.url, steps=400)
    assert time.monotonic() - started < 60  # bounded, not a stall
    assert "StorageUnavailable" in repr(info.value) or "database" in str(info.value)
    log = (workdir / "out" / "log.txt").read_text()
    assert "The experiment stops with an error: StorageUnavailable" in log
    leftover = subprocess.run(["pgrep", "-f", str(workdir / "trial.py")], capture_output=True)
    assert leftover.stdout == b""  # no trial process left running
    throwaway_postgres.start()
    store = open_store(throwaway_postgres.url)
    try:  # what was recorded before the outage is all there, nothing half-written
        (experiment,) = store.list_experiments()
        for trial in store.list_trials(experiment.id):
            steps = [m.step for m in store.trial_metrics(trial.id, "validation")]
            assert steps == list(range(len(steps)))
    finally:
        store.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Path:
    """A 1 MiB filesystem (tmpfs) that a search can fill; skipped where mounting is refused."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_ends_the_search_with_its_cause(
    workdir: Path, tiny_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_STORE_RETRY_SECONDS", "1")
    started = time.monotonic()
    with pytest.raises((SearchFailed, StorageUnavailable)) as info:
        search(workdir, str(tiny_disk / "store.db"), steps=200, pad=4000)
    assert time.monotonic() - started < 60
    assert "full" in str(info.value)
    log = (workdir / "out" / "log.txt").read_text()
    assert "The experiment stops with an error" in log and "full" in log
