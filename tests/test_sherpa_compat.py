"""SHERPA 1.0.6 scripts run unchanged with ``import ridgeline as sherpa``: its import paths,
``sherpa.rng``, the Study as an iterator, Repeat's end, duck-typed algorithms, GPyOpt's extras,
exact log grids and the warning a failed trial raises."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ridgeline as sherpa
from ridgeline.errors import ConfigError, SchedulerError, SearchFailed

TRIAL = """
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
"""


# -- import paths ---------------------------------------------------------------------------


def test_sherpa_submodule_paths_name_the_same_classes() -> None:
    bayesian_optimization = importlib.import_module("ridgeline.algorithms.bayesian_optimization")
    successive_halving = importlib.import_module("ridgeline.algorithms.successive_halving")
    core = importlib.import_module("ridgeline.algorithms.core")
    database = importlib.import_module("ridgeline.database")

    assert bayesian_optimization.GPyOpt is sherpa.algorithms.GPyOpt
    assert bayesian_optimization.GPyOpt is sherpa.sherpa.algorithms.GPyOpt
    assert successive_halving.SuccessiveHalving is sherpa.algorithms.SuccessiveHalving
    assert core.RandomSearch is sherpa.algorithms.RandomSearch is sherpa.RandomSearch
    assert database.Client is sherpa.database.Client is sherpa.Client
    assert sherpa.algorithms is sherpa.sherpa.algorithms


def test_core_answers_sherpa_names_and_keeps_the_core_api() -> None:
    assert sherpa.core.Study is sherpa.Study
    assert sherpa.core.Trial is sherpa.Trial
    assert sherpa.core.Parameter is sherpa.Parameter
    assert sherpa.core.Continuous is sherpa.Continuous
    assert callable(sherpa.core.init)  # the Core-API name is still there
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        sherpa.core.Nope  # noqa: B018


def test_grid_engine_scheduler_takes_sherpas_arguments_and_checks_them_first(
    workdir: Path,
) -> None:
    (workdir / "trial.py").write_text(TRIAL)
    scheduler = sherpa.schedulers.SGEScheduler(
        submit_options="-N example", environment="env.sh", output_dir="out"
    )
    assert (scheduler.submit_options, scheduler.environment, scheduler.output_dir) == (
        "-N example",
        "env.sh",
        "out",
    )
    # env.sh does not exist (and Grid Engine may not be here): refused before anything runs.
    # It runs jobs on a real Grid Engine in tests/cluster/test_sge.py.
    with pytest.raises(
        SchedulerError, match="SGEScheduler (needs Grid Engine|environment 'env.sh': no such)"
    ):
        sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=1),
            lower_is_better=True,
            scheduler=scheduler,
            filename="trial.py",
            output_dir=str(workdir / "sge"),
            verbose=0,
        )
    assert not (workdir / "sge").exists()
    with pytest.raises(SchedulerError, match="submit_options must be a string"):
        sherpa.schedulers.SGEScheduler(["-N", "example"], "")
    # SLURMScheduler takes SHERPA's arguments too (it runs jobs: tests/cluster/).
    slurm = sherpa.schedulers.SLURMScheduler("-N example", "env.sh", "out")
    assert (slurm.submit_options, slurm.environment, slurm.output_dir) == (
        "-N example",
        "env.sh",
        "out",
    )


# -- sherpa.rng -----------------------------------------------------------------------------


def test_seeding_rng_repeats_draws_and_suggestions() -> None:
    sherpa.rng.seed(1234)
    a = sherpa.rng.randn()
    sherpa.rng.seed(1234)
    assert sherpa.rng.randn() == a

    parameters = [sherpa.Continuous("lr", [1e-4, 1e-1], "log"), sherpa.Choice("act", ["a", "b"])]
    algorithm = sherpa.algorithms.RandomSearch()
    sherpa.rng.seed(1234)
    first = algorithm.get_suggestion(parameters)
    sherpa.rng.seed(1234)
    assert algorithm.get_suggestion(parameters) == first


def test_seeding_rng_repeats_a_study_given_no_seed() -> None:
    def run() -> list[dict[str, Any]]:
        sherpa.rng.seed(7)
        study = sherpa.Study(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=3),
            lower_is_better=True,
            disable_dashboard=True,
        )
        return [dict(t.parameters) for t in study]

    assert run() == run()
    sherpa.rng.seed(None)


# -- Study and algorithms -----------------------------------------------------------------


def _study(algorithm: Any, parameters: list[Any] | None = None) -> sherpa.Study:
    return sherpa.Study(
        parameters=parameters or [sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=algorithm,
        lower_is_better=True,
        disable_dashboard=True,
        seed=0,
    )


def test_study_is_its_own_iterator() -> None:
    study = _study(sherpa.algorithms.RandomSearch(max_num_trials=2))
    assert iter(study) is study
    first = next(study)
    second = study.next()
    assert (first.id, second.id) == (1, 2)
    with pytest.raises(StopIteration):
        next(study)


def test_repeat_answers_done_when_finished() -> None:
    parameters = [sherpa.Choice("a", [1, 2])]
    repeat = sherpa.algorithms.Repeat(sherpa.algorithms.GridSearch(), num_times=2)
    seen = []
    suggestion = repeat.get_suggestion(parameters)
    while suggestion != sherpa.AlgorithmState.DONE:
        seen.append(suggestion["a"])
        suggestion = repeat.get_suggestion(parameters)
    assert seen == [1, 1, 2, 2]
    assert repeat.get_suggestion(parameters) == sherpa.AlgorithmState.DONE


def test_repeat_waits_for_its_last_repeats_then_is_done() -> None:
    inner = sherpa.algorithms.RandomSearch(max_num_trials=1)
    study = _study(sherpa.algorithms.Repeat(inner, num_times=2, wait_for_completion=True))
    first, last = study.get_suggestion(), study.get_suggestion()
    assert first.parameters == last.parameters
    for t in (first, last):
        study.add_observation(t, objective=0.5)
    study.finalize(first)
    assert study.get_suggestion() == sherpa.AlgorithmState.WAIT
    study.finalize(last)
    assert study.get_suggestion() == sherpa.AlgorithmState.DONE


def test_repeat_of_gpyopt_repeats_each_suggestion() -> None:
    algorithm = sherpa.algorithms.Repeat(
        sherpa.algorithms.bayesian_optimization.GPyOpt(max_num_trials=2), num_times=3
    )
    study = _study(algorithm)
    params = []
    for trial in study:
        params.append(trial.parameters["x"])
        study.add_observation(trial, objective=trial.parameters["x"])
        study.finalize(trial)
    assert len(params) == 6
    assert params[0] == params[1] == params[2] != params[3] == params[4] == params[5]


class HalfwayAlgorithm:
    """Not a subclass of anything: SHERPA's protocol only."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def get_suggestion(
        self, parameters: list[Any], results: Any, lower_is_better: bool
    ) -> dict[str, Any] | str:
        self.calls.append(0 if results is None else len(results))
        if len(self.calls) > 3:
            return sherpa.AlgorithmState.DONE
        return {"x": 0.25 * len(self.calls)}

    def get_best_result(
        self, parameters: list[Any], results: pd.DataFrame, lower_is_better: bool
    ) -> dict[str, Any]:
        return {"x": "custom", "rows": len(results)}


def test_duck_typed_algorithm_runs_a_study_and_reports_its_best() -> None:
    algorithm = HalfwayAlgorithm()
    study = _study(algorithm)
    assert study.get_best_result() == {}
    xs = []
    for trial in study:
        xs.append(trial.parameters["x"])
        study.add_observation(trial, objective=trial.parameters["x"])
        study.finalize(trial)
    assert xs == [0.25, 0.5, 0.75]
    assert algorithm.calls[1:] == [2, 4, 6]  # SHERPA's results table: 2 rows a trial
    assert study.get_best_result() == {"x": "custom", "rows": 6}


def test_a_subclass_get_best_result_is_used() -> None:
    class Mine(sherpa.algorithms.RandomSearch):
        def get_best_result(self, parameters: Any, results: Any, lower_is_better: bool) -> Any:
            return {"best": "mine"}

    study = _study(Mine(max_num_trials=1))
    trial = next(study)
    study.add_observation(trial, objective=1.0)
    study.finalize(trial)
    assert study.get_best_result() == {"best": "mine"}


def test_something_without_get_suggestion_is_refused() -> None:
    with pytest.raises(ConfigError, match="get_suggestion"):
        _study(object())


def test_duck_typed_algorithm_runs_optimize(workdir: Path) -> None:
    (workdir / "trial.py").write_text(TRIAL)
    best = sherpa.optimize(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=HalfwayAlgorithm(),
        lower_is_better=True,
        scheduler=sherpa.schedulers.LocalScheduler(),
        filename="trial.py",
        output_dir=str(workdir / "out"),
        verbose=0,
    )
    assert best["x"] == 0.25
    rows = pd.read_csv(workdir / "out" / "results.csv")
    assert sorted(rows[rows["Status"] == "COMPLETED"]["x"]) == [0.25, 0.5, 0.75]


def test_gpyopt_reads_a_hand_built_results_frame_and_predicts_the_best() -> None:
    from ridgeline.algorithms.bayesian_optimization import GPyOpt

    parameters = [sherpa.Continuous("x", [0.0, 1.0])]
    xs = [i / 9 for i in range(10)]
    results = pd.DataFrame({"x": xs, "Objective": xs, "Status": ["COMPLETED"] * 10})
    algorithm = GPyOpt(num_initial_data_points=2)
    suggestion = algorithm.get_suggestion(parameters, results, True)
    assert isinstance(suggestion["x"], float) and 0.0 <= suggestion["x"] <= 1.0
    assert algorithm.get_best_pred(parameters, results, True)["x"] == pytest.approx(0.0, abs=0.02)
    assert algorithm.get_best_pred(parameters, results, False)["x"] == pytest.approx(1.0, abs=0.02)
    assert GPyOpt(num_initial_data_points=20).get_best_pred(parameters, results, True) == {}


def test_initial_data_points_give_floats_for_continuous_parameters() -> None:
    from ridgeline.algorithms.bayesian_optimization import GPyOpt

    parameters = [sherpa.Continuous("x", [0.0, 7.0]), sherpa.Discrete("n", [1, 9])]
    algorithm = GPyOpt(initial_data_points=[{"x": 2, "n": 3}], max_num_trials=1)
    trial = next(_study(algorithm, parameters))
    assert trial.parameters == {"x": 2.0, "n": 3}
    assert type(trial.parameters["x"]) is float and type(trial.parameters["n"]) is int


def test_log_grid_points_are_exact_at_powers_of_ten() -> None:
    parameters = [sherpa.Continuous("lr", [1e-4, 1e-2], "log")]
    grid = sherpa.algorithms.GridSearch(num_grid_points=3)
    seen = []
    suggestion = grid.get_suggestion(parameters)
    while suggestion != sherpa.AlgorithmState.DONE:
        seen.append(suggestion["lr"])
        suggestion = grid.get_suggestion(parameters)
    assert seen == [1e-4, 1e-3, 1e-2]
    wide = sherpa.Continuous("c", [1e-6, 1.0], "log").grid_points(7)
    assert wide == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]


# -- a failed trial --------------------------------------------------------------------------


def test_a_failed_trial_raises_sherpas_runtime_warning(workdir: Path) -> None:
    (workdir / "trial.py").write_text("import sys\nsys.exit(3)\n")
    with pytest.warns(RuntimeWarning, match="Trial 1 failed"), pytest.raises(SearchFailed):
        sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=1),
            lower_is_better=True,
            scheduler=sherpa.schedulers.LocalScheduler(),
            filename="trial.py",
            output_dir=str(workdir / "out"),
            verbose=0,
            max_consecutive_failures=1,
        )
    assert "Trial 1 failed" in (workdir / "out" / "log.txt").read_text()
