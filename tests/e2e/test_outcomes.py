"""Outcomes say what happened: failed searches end ERROR, a failed trial is never the best,
trials that keep failing stop the search, and a Core-API experiment resumes after it has
validation metrics."""

from __future__ import annotations

import csv
import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from tests.e2e.test_core_api import cli, user_env  # noqa: F401 - fixture
from tests.e2e.test_optimize import PARAMS, run, script, trial_states

import ridgeline as sherpa
from ridgeline.errors import SearchFailed
from ridgeline.store import open_store


def experiment_state(path: Path) -> str:
    store = open_store(path)
    try:
        (experiment,) = store.list_experiments()
        return experiment.state
    finally:
        store.close()


def test_a_search_whose_trials_all_failed_ends_error(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import sys
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        client.send_metrics(trial=trial, iteration=1, objective=-100.0)  # then it breaks
        sys.exit(2)
        """,
    )
    with pytest.raises(SearchFailed, match="no trial succeeded"):
        run(workdir, trial, n=3)
    assert {state for state, _ in trial_states(workdir).values()} == {"FAILED"}
    assert experiment_state(workdir / "out" / "ridgeline.db") == "ERROR"


def test_the_best_result_never_comes_from_a_failed_trial(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import sys
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        client.send_metrics(trial=trial, iteration=1, objective=-100.0 if trial.id == 1 else 5.0)
        sys.exit(4 if trial.id == 1 else 0)
        """,
    )
    best = run(workdir, trial, n=3, max_concurrent=1)
    assert best["Objective"] == 5.0 and best["Trial-ID"] != 1
    assert trial_states(workdir)[1] == ("FAILED", 4)
    assert experiment_state(workdir / "out" / "ridgeline.db") == "COMPLETED"


def test_trials_that_keep_failing_stop_an_unbounded_search(workdir: Path) -> None:
    trial = script(workdir / "trial.py", "import sys\nsys.exit(5)\n")
    started = time.monotonic()
    with pytest.raises(SearchFailed, match="3 trials failed in a row"):
        run(
            workdir,
            trial,
            algorithm=sherpa.algorithms.RandomSearch(),  # no maximum: never stops by itself
            max_consecutive_failures=3,
            max_concurrent=1,
        )
    assert time.monotonic() - started < 60
    states = trial_states(workdir)
    assert [state for state, _ in states.values()] == ["FAILED"] * 3
    log = (workdir / "out" / "log.txt").read_text()
    assert "3 trials failed in a row" in log


def test_a_results_table_that_cannot_be_written_ends_the_run_error(workdir: Path) -> None:
    (workdir / "out").mkdir()
    (workdir / "out" / "results.csv").mkdir()  # every write of the results table fails
    trial = script(
        workdir / "trial.py",
        """
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        client.send_metrics(trial=trial, iteration=1, objective=1.0)
        """,
    )
    with pytest.raises(SearchFailed, match="results.csv"):
        run(workdir, trial, n=2, parameters=PARAMS)
    assert experiment_state(workdir / "out" / "ridgeline.db") == "ERROR"
    log = (workdir / "out" / "log.txt").read_text()
    assert "Could not record the end of the run" in log and "results.csv" in log


CORE_TRIAL = """
import time
import ridgeline as det

with det.core.init() as ctx:
    x = 0
    for op in ctx.searcher.operations():
        while x < op.length:
            x += 1
            time.sleep(0.02)
            if x % 5 == 0:
                ctx.train.report_validation_metrics(steps_completed=x, metrics={"x": x, "y": 1})
        op.report_completed(x)
"""


def core_config(folder: Path, trial: str, metric: str, **searcher: object) -> Path:
    (folder / "trial.py").write_text(textwrap.dedent(trial))
    cfg = {
        "name": "outcomes",
        "entrypoint": "python3 trial.py",
        "max_restarts": 0,
        "hyperparameters": {"a": {"type": "int", "minval": 1, "maxval": 9}},
        "searcher": {
            "name": "random",
            "metric": metric,
            "smaller_is_better": False,
            "max_trials": 2,
            "max_concurrent_trials": 2,
            **searcher,
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _experiment(experiment_id: int, group: str = "searcher") -> tuple[object, list, list]:
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        trials = store.list_trials(experiment_id)
        metrics = [m for t in trials for m in store.trial_metrics(t.id, group)]
        return store.get_experiment(experiment_id), trials, metrics
    finally:
        store.close()


def test_core_experiment_resumes_after_validation_metrics(user_env: Path) -> None:  # noqa: F811
    cfg = core_config(user_env, CORE_TRIAL, "x", max_length=300)
    created = cli("e", "create", str(cfg), str(user_env), "--json")
    experiment_id = json.loads(created.stdout)["id"]
    deadline = time.monotonic() + 60
    while not _experiment(experiment_id, "validation")[2]:  # a validation metric exists
        assert time.monotonic() < deadline, "no validation in time"
        time.sleep(0.05)
    experiment, _, _ = _experiment(experiment_id)
    os.kill(experiment.coordinator["pid"], signal.SIGKILL)  # type: ignore[attr-defined]
    time.sleep(0.3)
    cli("e", "resume", str(experiment_id))
    assert cli("e", "wait", str(experiment_id), timeout=120).returncode == 0
    experiment, trials, searcher = _experiment(experiment_id)
    assert experiment.state == "COMPLETED"  # type: ignore[attr-defined]
    assert [t.state for t in trials] == ["COMPLETED", "COMPLETED"]
    folder = Path(experiment.config["output_dir"])  # type: ignore[attr-defined]
    with open(folder / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    observations = [r for r in table if r["Status"] == "INTERMEDIATE"]
    assert len(observations) == len(searcher)  # every observation kept through the resume


def test_core_experiment_without_its_searcher_metric_ends_error(user_env: Path) -> None:  # noqa: F811
    trial = """
    import ridgeline as det
    with det.core.init() as ctx:
        for step in (1, 2):
            ctx.train.report_validation_metrics(steps_completed=step, metrics={"acc": 0.5})
    """
    cfg = core_config(user_env, trial, "val_loss")
    created = cli("e", "create", str(cfg), str(user_env), "--json")
    experiment_id = json.loads(created.stdout)["id"]
    waited = cli("e", "wait", str(experiment_id), check=False, timeout=120)
    assert waited.returncode != 0
    experiment, trials, _ = _experiment(experiment_id)
    assert experiment.state == "ERROR"  # type: ignore[attr-defined]
    log = (Path(experiment.config["output_dir"]) / "log.txt").read_text()  # type: ignore[attr-defined]
    assert log.count("without the searcher metric 'val_loss'") == 1
    assert "['acc']" in log


def test_a_grid_too_large_is_refused_before_anything_is_made(workdir: Path) -> None:
    from ridgeline.errors import SpaceError

    trial = script(workdir / "trial.py", "print('never runs')\n")
    huge = [sherpa.Choice(name, list(range(1000))) for name in ("a", "b")]
    with pytest.raises(SpaceError, match="the grid has 1000000 points"):
        run(workdir, trial, parameters=huge, algorithm=sherpa.algorithms.GridSearch())
    assert not (workdir / "out" / "ridgeline.db").exists()
