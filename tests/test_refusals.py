"""Resuming what is not there, or a damaged store, is refused with a message that names the
file and the fix; nothing recorded (``results.csv``, the store file) is touched."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import ridgeline
from ridgeline.errors import ConfigError, StoreError
from ridgeline.store import open_store

RESULTS = "Trial-ID,Status,Iteration,x,Objective\n1,COMPLETED,1,0.5,0.5\n"
TRIAL = """
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
"""


def resume(workdir: Path, **kwargs: object) -> dict:
    trial = workdir / "trial.py"
    trial.write_text(TRIAL)
    return ridgeline.optimize(
        parameters=[ridgeline.Continuous("x", [0.0, 1.0])],
        algorithm=ridgeline.algorithms.RandomSearch(max_num_trials=2),
        lower_is_better=True,
        scheduler=ridgeline.schedulers.LocalScheduler(),
        filename=str(trial),
        output_dir=str(workdir / "out"),
        verbose=0,
        **kwargs,  # type: ignore[arg-type]
    )


def a_search_store(path: Path) -> None:
    """A store holding a search with enough rows to span many pages."""
    store = open_store(path)
    try:
        experiment = store.create_experiment("out", {"front_door": "sherpa"})
        trial = store.create_trial(experiment.id, 1, {"x": 0.5})
        rows = [(i, {"objective": float(i), "note": "n" * 200}) for i in range(500)]
        store.add_metrics(trial.id, "validation", rows)
    finally:
        store.close()


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00not a database\xff" * 300)


def truncated(path: Path) -> None:
    a_search_store(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def truncated_at_a_page(path: Path) -> None:
    a_search_store(path)
    data = path.read_bytes()
    path.write_bytes(data[: (len(data) // 2) // 4096 * 4096])


def header_only(path: Path) -> None:
    a_search_store(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xee" * 3996  # the schema page is overwritten
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage": garbage,
    "truncated": truncated,
    "truncated_at_a_page": truncated_at_a_page,
    "schema_page_overwritten": header_only,
}


@pytest.fixture
def out(workdir: Path) -> Path:
    folder = workdir / "out"
    folder.mkdir()
    (folder / "results.csv").write_text(RESULTS)
    return folder


def test_resume_without_a_store_is_refused(workdir: Path, out: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothing to resume in .*out: there is no store"):
        resume(workdir, resume=True)
    assert (out / "results.csv").read_text() == RESULTS
    assert not (out / "ridgeline.db").exists()


def test_resume_of_a_folder_that_does_not_exist_creates_nothing(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        resume(workdir, load=True)  # SHERPA's name for it
    assert not (workdir / "out").exists()


def test_resume_with_an_empty_store_file_is_refused(workdir: Path, out: Path) -> None:
    (out / "ridgeline.db").touch()
    with pytest.raises(ConfigError, match=r"ridgeline\.db: the file is empty"):
        resume(workdir, resume=True)
    assert (out / "results.csv").read_text() == RESULTS
    assert (out / "ridgeline.db").stat().st_size == 0


def test_resume_with_a_store_that_holds_no_search_is_refused(workdir: Path, out: Path) -> None:
    open_store(out / "ridgeline.db").close()
    with pytest.raises(ConfigError, match="holds no search"):
        resume(workdir, resume=True)
    assert (out / "results.csv").read_text() == RESULTS


@pytest.mark.parametrize("damage", DAMAGE)
def test_resume_with_a_damaged_store_is_refused(workdir: Path, out: Path, damage: str) -> None:
    db = out / "ridgeline.db"
    DAMAGE[damage](db)
    before = db.read_bytes()
    with pytest.raises(StoreError, match=rf"the store {db} cannot be used: .*move it aside"):
        resume(workdir, resume=True)
    assert (out / "results.csv").read_text() == RESULTS
    assert db.read_bytes() == before


@pytest.mark.parametrize("damage", DAMAGE)
def test_study_on_a_damaged_store_is_refused(workdir: Path, damage: str) -> None:
    db = workdir / "study.db"
    DAMAGE[damage](db)
    with pytest.raises(StoreError, match=rf"the store {db} cannot be used"):
        ridgeline.Study(
            [ridgeline.Continuous("x", [0.0, 1.0])],
            ridgeline.algorithms.RandomSearch(max_num_trials=1),
            lower_is_better=True,
            storage=str(db),
        )
    with pytest.raises(StoreError, match="cannot be used"):
        ridgeline.Study(
            [ridgeline.Continuous("x", [0.0, 1.0])],
            ridgeline.algorithms.RandomSearch(max_num_trials=1),
            lower_is_better=True,
            storage=f"sqlite:///{db}",
        )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
@pytest.mark.parametrize("command", [["e", "list"], ["e", "resume", "1"], ["t", "describe", "1"]])
def test_cli_on_a_damaged_store_says_which_file(
    workdir: Path, damage: str, command: list[str]
) -> None:
    db = workdir / "store.db"
    DAMAGE[damage](db)
    before = db.read_bytes()
    result = cli("--storage", str(db), *command)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Error: the store {db} cannot be used")
    assert db.read_bytes() == before


def test_cli_resume_of_an_unknown_experiment_is_refused(workdir: Path) -> None:
    db = workdir / "store.db"
    a_search_store(db)
    result = cli("--storage", str(db), "e", "resume", "42")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no experiment 42" in result.stderr
