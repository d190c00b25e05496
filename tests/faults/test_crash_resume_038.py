"""Determined 0.38 ASHA survives a coordinator killed mid-search (SIGKILL, no cleanup): after
``experiment resume`` the budget is spent once, no report is lost or doubled, and the trials
stopped are exactly those the stopping rule picks from the reports in the order they were
stored (the searcher's snapshot and the replay of what it had not seen agree)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from faults.crashing import TRIAL_SLEEP, CoreSearch, Stored, no_duplicates, read_store

TRIAL_038 = """
import json, os, pathlib, time
import ridgeline as det

def note(kind, step, **extra):
    with open("acked.jsonl", "a") as log:
        log.write(json.dumps({"kind": kind, "step": step, "pid": os.getpid(), **extra}) + "\\n")

with det.core.init() as ctx:
    info = det.get_cluster_info()
    pathlib.Path(f"pid_{os.getpid()}").touch()
    lr = info.trial.hparams["lr"]
    x, batch = 0.0, 0
    if info.latest_checkpoint is not None:
        with ctx.checkpoint.restore_path(info.latest_checkpoint) as path:
            x, batch = (float(v) for v in (path / "state").read_text().split(","))
            batch = int(batch)
    while batch < 8:  # the script's own length (max_time is 8 too)
        batch += 1
        x = info.trial.number + lr / 10 + 1 / batch  # later trials score worse: some stop
        time.sleep(SLEEP)
        if batch % 2 == 0:
            ctx.train.report_validation_metrics(
                steps_completed=batch, metrics={"loss": x, "batches": batch}
            )
            note("validation", batch)
            with ctx.checkpoint.store_path({"steps_completed": batch}) as (path, uuid):
                (path / "state").write_text(f"{x},{batch}")
            if ctx.preempt.should_preempt():
                break
"""

SEARCHER = {
    "name": "async_halving",
    "num_rungs": 2,  # rungs at batches 4 and 8
    "divisor": 2,
    "max_trials": 4,
    "max_concurrent_trials": 2,
    "time_metric": "batches",
    "max_time": 8,
}


class TimeSearch(CoreSearch):
    def config(self) -> Path:
        path = super().config()
        (path.parent / "train.py").write_text(TRIAL_038.replace("SLEEP", str(TRIAL_SLEEP)))
        return path


def rule_stops(stored: Stored, reports: list[tuple[int, int, float]]) -> set[int]:
    """Trials the stopping rule stops (lower is better, rungs 4 and 8, divisor 2)."""
    rungs: list[list[float]] = [[], []]
    level = dict.fromkeys(stored.trials, 0)
    decided: set[int] = set()
    stops: set[int] = set()
    for trial, time, value in reports:
        while trial not in decided and level[trial] < 2 and time >= (4, 8)[level[trial]]:
            held = rungs[level[trial]]
            index = sum(1 for v in held if v < value)
            held.insert(index, value)
            if level[trial] == 1:
                decided.add(trial)
            elif index >= max(len(held) // 2, 1):
                decided.add(trial)
                stops.add(trial)
            else:
                level[trial] += 1
    return stops


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    return workdir


@pytest.mark.parametrize(
    "point", ["metric_stored:3", "trial_exit_seen:2", "suggestion_stored:3", "trial_stopping:1"]
)
def test_time_metric_asha_crash_and_resume(user_env: Path, point: str) -> None:
    search = TimeSearch(user_env, dict(SEARCHER))
    try:
        search.crash(point)
        search.resume()
    finally:
        search.cleanup()
    stored = read_store(os.environ["RIDGELINE_STORAGE"], search.experiment_id)
    assert stored.experiment_state == "COMPLETED"
    assert sorted(stored.trials) == [1, 2, 3, 4]
    no_duplicates(stored)
    acked = search.acked()
    for number, trial in stored.trials.items():
        assert trial.state in ("COMPLETED", "STOPPED"), (number, trial.state, trial.exit_code)
        groups = stored.metrics[number]
        told = {a["step"] for a in acked.get(number, []) if a["kind"] == "validation"}
        assert told <= set(groups.get("validation", [])), f"trial {number} lost validations"
        # every validation (it carries the time metric) is also the searcher's report
        assert sorted(groups.get("searcher", [])) == sorted(groups.get("validation", []))
    store = search.store()
    try:
        reports: list[tuple[int, int, int, float]] = []
        for trial in store.list_trials(search.experiment_id):
            for m in store.trial_metrics(trial.id, "searcher"):
                reports.append((m.seq, trial.number, m.step, float(m.values["objective"])))
        events = store.read_events(search.experiment_id)
    finally:
        store.close()
    stopped = {e.data["trial"] for e in events if e.kind == "stop_requested"}
    expected = rule_stops(stored, [r[1:] for r in sorted(reports)])
    assert stopped == expected and stopped, (stopped, expected)
    states: dict[str, Any] = {n: t.state for n, t in stored.trials.items()}
    # a stop asked before the crash still counts once the trial is re-attached
    assert {n for n, s in states.items() if s == "STOPPED"} == stopped, states
