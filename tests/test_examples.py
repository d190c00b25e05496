"""The examples run as a new user would run them."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_runner_example(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "runner.py"),
            "--trials",
            "6",
            "--output-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Best result:" in result.stdout
    with open(out / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    finals = [r for r in table if r["Status"] != "INTERMEDIATE"]
    assert len(finals) == 6
    assert {r["Status"] for r in finals} <= {"COMPLETED", "STOPPED"}


def test_trial_script_runs_by_hand_in_test_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "trial.py"), "--test"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_study_loop_example() -> None:
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import study_loop
    finally:
        sys.path.pop(0)
    best = study_loop.main(max_trials=100, seed=0)
    assert best["Objective"] < 5  # Branin's minimum is 0.398; random search gets close
