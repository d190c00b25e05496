"""The coordinator dies at each point that matters (SIGKILL, no cleanup), is resumed, and the
store ends exactly as an uninterrupted run would leave it: the trial budget spent once, every
acknowledged metric and checkpoint recorded once, every trial in a final state.

Crash points: see ``ridgeline.faults``. ``NAME:N`` crashes at the N-th visit, so some cases die
mid-run with trials alive (they are re-attached) rather than at the very first event.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from faults.crashing import (
    HPARAMS,
    CoreSearch,
    SherpaSearch,
    Stored,
    expected_trials,
    no_duplicates,
    read_store,
)

# -- the SHERPA door: optimize() with a trial script -----------------------------------------
SHERPA_CASES = [
    ("random", "suggestion_stored:2"),
    ("random", "trial_running:2"),
    ("random", "metric_stored:3"),
    ("random", "trial_exit_seen"),
    ("grid", "suggestion_stored:3"),
    ("grid", "trial_exit_seen:2"),
    ("median", "metric_stored:6"),
    ("median", "trial_exit_seen:2"),
]


def check_sherpa(search: SherpaSearch, stored: Stored) -> None:
    assert stored.experiment_state == "COMPLETED"
    assert sorted(stored.trials) == list(range(1, search.trials + 1))
    no_duplicates(stored)
    acked = search.acked()
    full = list(range(1, search.iterations + 1))
    for number, trial in stored.trials.items():
        steps = stored.metrics[number].get("validation", [])
        assert set(acked.get(number, [])) <= set(steps), f"trial {number} lost acknowledged steps"
        if search.algorithm == "median":
            assert trial.state in ("COMPLETED", "STOPPED"), (number, trial.state)
            assert sorted(steps) == full[: len(steps)], f"trial {number}: gaps in {steps}"
        else:
            assert trial.state == "COMPLETED", (number, trial.state, trial.exit_code)
            assert sorted(steps) == full, f"trial {number}: {steps}"
    if search.algorithm != "median":
        assert sum(trial.state == "COMPLETED" for trial in stored.trials.values()) == 3


@pytest.mark.parametrize(("algorithm", "point"), SHERPA_CASES)
def test_sherpa_door_crash_and_resume(workdir: Path, algorithm: str, point: str) -> None:
    search = SherpaSearch(workdir, algorithm, trials=3 if algorithm != "median" else 4)
    try:
        search.crash(point)
        search.resume()
    finally:
        search.cleanup()
    check_sherpa(search, read_store(search.out / "ridgeline.db"))


# -- the Core-API door: YAML experiments via `experiment create` and `experiment resume` -----
SEARCHERS = {
    "random": {"name": "random", "max_trials": 3, "max_length": 4, "max_concurrent_trials": 2},
    "grid": {"name": "grid", "max_length": 4, "max_concurrent_trials": 2},
    "asha": {
        "name": "adaptive_asha",
        "max_trials": 4,
        "max_length": 4,
        "divisor": 2,
        "max_rungs": 2,
        "max_concurrent_trials": 2,
    },
    "pbt": {
        "name": "pbt",
        "population_size": 3,
        "num_rounds": 2,
        "length_per_round": 2,
        "replace_function": {"truncate_fraction": 0.34},
        "max_concurrent_trials": 2,
    },
}
CORE_CASES = [
    ("random", "suggestion_stored:2"),
    ("random", "trial_running"),
    ("random", "trial_exit_seen"),
    ("random", "checkpoint_files_written:2"),
    ("random", "checkpoint_registered:3"),
    ("random", "metric_stored"),
    ("grid", "trial_running:3"),
    ("grid", "checkpoint_files_written:3"),
    ("asha", "metric_stored:2"),
    ("asha", "trial_exit_seen:2"),
    ("asha", "checkpoint_registered:2"),
    ("pbt", "metric_stored:3"),
    ("pbt", "trial_exit_seen:2"),
    ("pbt", "suggestion_stored:4"),
]


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    return workdir


def check_core(search: CoreSearch, stored: Stored, expected: int) -> None:
    assert stored.experiment_state == "COMPLETED"
    assert sorted(stored.trials) == list(range(1, expected + 1))
    no_duplicates(stored)
    acked = search.acked()
    checkpoint_dir = search.out / "checkpoints"
    on_disk = {p.name for p in checkpoint_dir.iterdir()} if checkpoint_dir.exists() else set()
    kept: set[str] = set()
    for number, trial in stored.trials.items():
        assert trial.state == "COMPLETED", (number, trial.state, trial.exit_code)
        groups = stored.metrics[number]
        seen = acked.get(number, [])
        for group in ("training", "validation", "searcher"):
            told = {a["step"] for a in seen if a["kind"] == group}
            assert told <= set(groups.get(group, [])), f"trial {number} lost {group} metrics"
        training = sorted(groups.get("training", []))
        start = training[0] if training else 0
        assert training == list(range(start, start + len(training))), f"trial {number}: gaps"
        assert groups.get("searcher"), f"trial {number} never reported its searcher metric"
        if search.searcher["name"] in ("random", "grid"):  # each trial trains to the end once
            length = search.searcher["max_length"]
            assert training == list(range(1, length + 1)), f"trial {number}: {training}"
            assert groups["searcher"] == groups["validation"] == [length]
        # every checkpoint the trial was told is saved is recorded, COMPLETED or DELETED
        records = {c.uuid: c for c in stored.checkpoints[number]}
        told = {a["uuid"] for a in seen if a["kind"] == "checkpoint"}
        assert told <= set(records), f"trial {number} lost checkpoints {told - set(records)}"
        assert {c.state for c in records.values()} <= {"COMPLETED", "DELETED"}
        live = [c for c in records.values() if c.state == "COMPLETED"]
        # retention (latest 1, best 1): the loss falls with training, so latest is best
        assert [c.steps_completed for c in live] == [training[-1]], f"trial {number}: {live}"
        kept |= {c.uuid for c in live}
    # no orphans: the files on disk are exactly the live checkpoints
    assert on_disk == kept, f"files {on_disk - kept} have no live record; {kept - on_disk} lost"


@pytest.mark.parametrize(("searcher", "point"), CORE_CASES)
def test_core_door_crash_and_resume(user_env: Path, searcher: str, point: str) -> None:
    config = SEARCHERS[searcher]
    expected = 3 if searcher == "grid" else expected_trials(config, HPARAMS)
    search = CoreSearch(user_env, config)
    try:
        search.crash(point)
        search.resume()
    finally:
        search.cleanup()
    check_core(search, read_store(os.environ["RIDGELINE_STORAGE"], search.experiment_id), expected)


# -- trial processes killed -----------------------------------------------------------------
def saved_a_checkpoint(search: CoreSearch, number: int, pid: int) -> bool:
    return any(
        a["pid"] == pid and a["kind"] == "checkpoint" for a in search.acked().get(number, [])
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_killed_trial_restarts_then_fails(user_env: Path) -> None:
    """SIGKILL a trial: it restarts from its checkpoint (max_restarts 1); killed again it
    ends FAILED with the signal. Nothing it saw acknowledged is lost."""
    config = dict(SEARCHERS["random"], max_length=40)
    search = CoreSearch(user_env, config, max_restarts=1)
    search.start()
    killed: list[int] = []
    try:
        for attempt in (1, 2):
            wait_for(lambda n=attempt: len(search.trial_pids(1)) == n)
            (pid,) = set(search.trial_pids(1)) - set(killed)
            wait_for(lambda p=pid: saved_a_checkpoint(search, 1, p))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        search.wait()
    finally:
        search.cleanup()
    stored = read_store(os.environ["RIDGELINE_STORAGE"], search.experiment_id)
    assert stored.experiment_state == "COMPLETED"
    first = stored.trials[1]
    assert (first.state, first.restarts, first.exit_code) == ("FAILED", 1, -signal.SIGKILL)
    assert [stored.trials[n].state for n in (2, 3)] == ["COMPLETED", "COMPLETED"]
    no_duplicates(stored)
    acked = search.acked()
    for number, seen in acked.items():
        for group in ("training", "validation", "searcher"):
            told = {a["step"] for a in seen if a["kind"] == group}
            assert told <= set(stored.metrics[number].get(group, []))
    # the restart went on from the first attempt's latest checkpoint, not from scratch
    second = [a["step"] for a in acked[1] if a["pid"] == killed[1] and a["kind"] == "training"]
    saved = [a["step"] for a in acked[1] if a["pid"] == killed[0] and a["kind"] == "checkpoint"]
    assert second[0] == max(saved) + 1
    training = sorted(stored.metrics[1]["training"])
    assert training == list(range(1, len(training) + 1))  # nothing lost across the restart
