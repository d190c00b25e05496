"""Every searcher name works from one spec: a small config of each validates, previews,
states its budget, builds and runs to the end in the simulator within that budget."""

from __future__ import annotations

from typing import Any

import pytest

from ridgeline.config import SEARCHERS, describe_search, parse_config
from ridgeline.config.searcher import budget
from ridgeline.testing.simulate import run_searcher, searcher_from_config

HPARAMS = {"x": {"type": "double", "minval": 0.0, "maxval": 1.0, "count": 4}}
#: The fields each searcher needs beyond name and metric (a new searcher adds its own here).
SMALL: dict[str, dict[str, Any]] = {
    "single": {"max_length": 4},
    "random": {"max_trials": 4, "max_length": 4},
    "grid": {"max_length": 4},
    "quasi_random": {"max_trials": 4, "max_length": 4},
    "adaptive_asha": {"max_trials": 8, "max_length": 16, "max_concurrent_trials": 2},
    "async_halving": {"max_trials": 8, "max_length": {"batches": 16}, "num_rungs": 3},
    "sync_halving": {"max_trials": 8, "max_length": 16, "num_rungs": 3},
    "hyperband": {"max_length": 9, "divisor": 3, "max_rungs": 2},
    "pbt": {"population_size": 4, "num_rounds": 3, "length_per_round": 2},
    "bayesian": {"max_trials": 4, "max_length": 2, "num_initial": 2},
    "tpe": {"max_trials": 4, "max_length": 2, "num_initial": 2},
    "auto": {"max_trials": 4, "max_length": 2},
}


def loss(trial: int, params: dict[str, Any], parent: int | None, start: int, stop: int) -> float:
    return float((params["x"] - 0.3) ** 2 + 1.0 / stop)


def test_every_searcher_name_is_covered() -> None:
    assert set(SMALL) == set(SEARCHERS)


@pytest.mark.parametrize("name", SEARCHERS)
def test_each_searcher_validates_previews_and_runs_within_its_budget(name: str) -> None:
    section = {"name": name, "metric": "loss", **SMALL[name]}
    config = parse_config(
        {"entrypoint": "python3 train.py", "searcher": section, "hyperparameters": HPARAMS}
    )
    lines = describe_search(config)
    assert lines[0] == f"Searcher: {name}, optimizing 'loss' (smaller is better)"
    trials, length = budget(config.raw["searcher"], config.raw["hyperparameters"])

    searcher, space, lower = searcher_from_config(section, HPARAMS)
    result = run_searcher(searcher, space, loss, capacity=2, lower_is_better=lower, seed=1)
    assert result.trials and not result.stalled
    assert len(result.trials) == trials
    if length is not None:
        assert result.total_length <= length


def test_a_stored_section_that_does_not_validate_gets_no_invented_budget() -> None:
    # experiment list reads stored configs, some from other versions or hand-edited stores
    assert budget({"name": "gone_searcher", "max_trials": 3, "max_length": 5}) == (3, 15)
    assert budget({"name": "random", "metric": "l", "max_trials": "many"}) == (None, None)
    assert budget({}) == (None, None)
    grid = {"name": "grid", "metric": "loss", "max_length": 4}
    assert budget(grid, {"x": {"type": "int", "minval": 5, "maxval": 1}})[0] is None
    assert budget(grid) == (None, None)  # no hyperparameters stored: the grid is unknown
    huge = {"x": {"type": "int", "minval": 0, "maxval": 10**12, "count": 10**9}}
    assert budget(grid, huge) == (10**9, 4 * 10**9)  # counted, not enumerated
