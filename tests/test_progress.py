"""The live progress display as the user sees it: counts by state, training in its unit,
elapsed and ETA, and log lines printed above the bar, never inside it."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from rich.console import Console

import ridgeline
from ridgeline.engine.progress import Progress, StudyProgress, length_unit
from ridgeline.engine.run import setup_logging

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_study(study: ridgeline.Study, log: logging.Logger | None = None) -> None:
    for trial in study:
        if trial.id == 2:
            study.add_observation(trial, iteration=1, objective=5.0)
            study.finalize(trial, status="FAILED")
            continue
        for step in range(1, 4):
            study.add_observation(trial, iteration=step, objective=trial.id + 1.0 / step)
            if log is not None:
                log.warning("trial %d reached step %d", trial.id, step)
        study.finalize(trial)


def make_study(**options: object) -> ridgeline.Study:
    return ridgeline.Study(
        [ridgeline.Continuous("x", [0, 1])],
        ridgeline.RandomSearch(max_num_trials=4),
        lower_is_better=True,
        seed=1,
        **options,  # type: ignore[arg-type]
    )


def test_study_shows_progress(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    run_study(make_study(progress=True))
    err = ANSI.sub("", capsys.readouterr().err)
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert "trials" in last and "4/4" in last
    assert "0 running, 3 completed, 1 failed" in last
    assert "trained 10 iterations" in last  # 3 x 3 + 1 reports
    assert "best 1.33333" in last
    assert re.search(r"elapsed \d:\d\d:\d\d ETA 0:00:00", last)


def test_log_lines_go_above_the_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(tmp_path, verbose=1)  # the terminal handler a run sets up
    log = logging.getLogger("ridgeline")
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200, color_system=None)
    study = make_study()
    bar = Progress(4, None, unit="epochs", console=console)
    follower = StudyProgress(study._engine, bar, lambda: study.get_best_result().get("Objective"))
    study._engine.observers.add(follower)
    try:
        run_study(study, log)
    finally:
        bar.stop()
    # Nothing went around the console to the real stderr while the bar was up.
    assert "reached step" not in capsys.readouterr().err
    text = ANSI.sub("", screen.getvalue())
    lines = [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]
    logged = [line for line in lines if "reached step" in line]
    assert len(logged) == 9
    for line in logged:  # each log line whole, on its own line, with no bar in it
        assert re.fullmatch(r"WARNING: trial \d reached step \d", line), line
    bars = [line for line in lines if line.startswith("trials")]
    assert bars and "trained 10 epochs" in bars[-1] and "1 failed" in bars[-1]
    # The bar gone, the terminal handler is back.
    assert any(type(h) is logging.StreamHandler for h in log.handlers)
    log.warning("after the bar")
    assert "WARNING: after the bar" in capsys.readouterr().err


def test_length_unit() -> None:
    assert length_unit(None) == "iterations"
    assert length_unit({"name": "random", "max_length": {"epochs": 3}}) == "epochs"
    assert length_unit({"name": "pbt", "length_per_round": {"batches": 10}}) == "batches"
    assert length_unit({"name": "random", "max_length": 30}) == "steps"
