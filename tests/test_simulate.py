"""The virtual-clock driver in ridgeline.testing.simulate: invariants with real searchers and a
scripted one that uses every action (parent, pause, relaunch, stop mid-operation, shutdown)."""

from __future__ import annotations

from typing import Any

import pytest

from ridgeline.errors import ConfigError
from ridgeline.searchers.base import Action, Close, Create, Pause, Searcher, Shutdown, Stop, Train
from ridgeline.space import Continuous, SearchSpace
from ridgeline.testing.simulate import (
    SimResult,
    Simulation,
    SimulationError,
    run_searcher,
    searcher_from_config,
)

HPARAMS = {"x": {"type": "double", "minval": 0.0, "maxval": 1.0}}
SPACE = SearchSpace([Continuous("x", [0.0, 1.0])])


class Recorder:
    """A train_fn whose "model" is its length; it checks the driver's continuity contract."""

    def __init__(self) -> None:
        self.length: dict[int, int] = {}
        self.calls: list[tuple[int, int | None, int, int]] = []
        self.forks: list[tuple[int, int, int]] = []

    def __call__(
        self, trial: int, params: dict[str, Any], parent: int | None, start: int, stop: int
    ) -> float:
        self.calls.append((trial, parent, start, stop))
        if parent is not None:
            assert trial not in self.length
            assert (trial, parent, start) in self.forks
        else:
            assert self.length.get(trial, 0) == start, "training continues from the checkpoint"
        assert stop >= start
        self.length[trial] = stop
        # Curves cross: small x starts worse and ends better.
        return (params["x"] - 0.3) ** 2 + (1.0 - params["x"]) / stop

    def fork(self, child: int, parent: int, length: int) -> None:
        assert self.length.get(parent, 0) == length
        self.forks.append((child, parent, length))


def check_invariants(result: SimResult, recorder: Recorder, capacity: int) -> None:
    assert result.peak_running <= capacity and result.peak_training <= capacity
    # Concurrency from the operations themselves (an end frees its slot before a start).
    edges = sorted(
        [(op.end, -1) for op in result.operations] + [(op.start, 1) for op in result.operations]
    )
    level = 0
    for _, step in edges:
        level += step
        assert level <= capacity
    # Lengths are absolute and never go back within a trial; reports come at the op's end.
    for trial in result.trials.values():
        ends = [op.to_length for op in trial.operations if op.completed]
        assert ends == sorted(ends)
        assert [length for length, _ in trial.reports] == ends
        froms = [op.from_length for op in trial.operations]
        assert not froms or froms[0] == trial.start_length
    # Budget: every length unit trained once, and only once.
    called = sum(stop - start for _, _, start, stop in recorder.calls)
    assert result.total_length == pytest.approx(called)  # nothing cut short in these runs
    assert result.total_length == pytest.approx(sum(t.trained for t in result.trials.values()))
    assert result.makespan >= result.total_length / capacity
    used = [p.length_used for p in result.curve]
    assert used == sorted(used) and used[-1] == pytest.approx(result.total_length)
    objectives = [p.objective for p in result.curve]
    assert result.best() == min(objectives)
    assert result.best_within(result.total_length) == result.best()
    assert result.length_to_reach(min(objectives)) is not None
    assert result.shutdown and not result.stalled
    assert all(t.status == "COMPLETED" for t in result.trials.values())


def test_random_trains_every_trial_to_max_length() -> None:
    searcher, space, lower = searcher_from_config(
        {"name": "random", "metric": "loss", "max_trials": 10, "max_length": 9}, HPARAMS
    )
    recorder = Recorder()
    result = run_searcher(searcher, space, recorder, capacity=3, lower_is_better=lower, seed=1)
    check_invariants(result, recorder, 3)
    assert len(result.trials) == 10 and result.total_length == 90
    assert all(
        [(0, 9)] == [(o.from_length, o.to_length) for o in t.operations]
        for t in result.trials.values()
    )
    assert result.makespan == 36  # 4 waves of 9 on 3 workers
    assert result.peak_running == 3


@pytest.mark.parametrize("capacity", [4, 2])
def test_adaptive_asha_invariants_and_savings(capacity: int) -> None:
    config = {
        "name": "adaptive_asha",
        "metric": "loss",
        "max_trials": 40,
        "max_length": 27,
        "divisor": 3,
        "max_concurrent_trials": 4,
    }
    searcher, space, lower = searcher_from_config(config, HPARAMS)
    recorder = Recorder()
    result = run_searcher(searcher, space, recorder, capacity, lower_is_better=lower, seed=7)
    check_invariants(result, recorder, capacity)
    assert len(result.trials) == 40
    assert result.total_length < 40 * 27 / 2  # early stopping saves most of the budget
    assert any(t.launches > 1 for t in result.trials.values())  # paused, then promoted
    assert max(t.length for t in result.trials.values()) == 27
    again = run_searcher(
        searcher_from_config(config, HPARAMS)[0], space, Recorder(), capacity, lower, seed=7
    )
    assert [(p.trial, p.length, p.objective) for p in again.curve] == [
        (p.trial, p.length, p.objective) for p in result.curve
    ]


@pytest.mark.parametrize(
    "config",
    [
        {"name": "hyperband", "max_trials": 30, "max_length": 27, "divisor": 3, "max_rungs": 4},
        {"name": "sync_halving", "max_trials": 27, "max_length": 27, "divisor": 3, "num_rungs": 4},
        {
            "name": "pbt",
            "population_size": 8,
            "num_rounds": 3,
            "length_per_round": 3,
            "replace_function": {"truncate_fraction": 0.25},
            "explore_function": {"resample_probability": 0.2, "perturb_factor": 0.2},
        },
    ],
    ids=lambda c: c["name"],
)
def test_other_searchers_run_to_the_end(config: dict[str, Any]) -> None:
    searcher, space, lower = searcher_from_config({**config, "metric": "loss"}, HPARAMS)
    recorder = Recorder()
    result = run_searcher(searcher, space, recorder, 4, lower, seed=3, fork_fn=recorder.fork)
    check_invariants(result, recorder, 4)
    assert max(t.length for t in result.trials.values()) == 27 or config["name"] == "pbt"
    if config["name"] == "pbt":
        assert result.total_length == 8 * 3 * 3  # the population trains every round
        clones = [t for t in result.trials.values() if t.parent is not None]
        assert clones and len(recorder.forks) == len(clones)
        for clone in clones:  # a clone continues from its parent's length at its creation
            assert clone.start_length in (3, 6)
            assert clone.operations[0].from_length == clone.start_length


def test_run_searcher_is_the_simulation_with_ties_in_start_order() -> None:
    config = {"name": "adaptive_asha", "metric": "loss", "max_trials": 20, "max_length": 27}
    config.update(divisor=3, max_concurrent_trials=4)
    searcher, space, lower = searcher_from_config(config, HPARAMS)
    result = run_searcher(searcher, space, Recorder(), 4, lower, seed=0)

    def simulate(ties: Any) -> Simulation:
        fresh = searcher_from_config(config, HPARAMS)[0]
        return Simulation(
            fresh, 4, train_fn=Recorder(), lower_is_better=lower, seed=0, space=space, ties=ties
        ).run()

    def ties_out_of_number_order(curve: list[Any]) -> int:
        pairs = zip(curve, curve[1:], strict=False)
        return sum(a.time == b.time and a.trial > b.trial for a, b in pairs)

    started = simulate("started")
    assert started.result().curve == result.curve
    assert [e for e, *_ in started.log if e == "report"] == ["report"] * len(result.curve)
    assert ties_out_of_number_order(result.curve) > 0  # the first one started reports first
    assert ties_out_of_number_order(simulate("trial").result().curve) == 0


class Scripted(Searcher):
    """t1 trains to 4 and pauses; t2 clones it and trains to 5 then on towards 12; t1 is
    relaunched to 6, and its report stops t2 mid-operation and ends the search."""

    def __init__(self) -> None:
        self.exits: list[tuple[int, str]] = []
        self.parent_status = ""

    def start(self) -> list[Action]:
        return [Create(1, {"x": 0.1})]

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        if trial == 1:
            return [Train(1, 4)]
        self.parent_status = self.history.get(1).status
        return [Train(2, 5), Train(1, 6)]

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        if (trial, step) == (1, 4):
            return [Pause(1), Create(2, {"x": 0.5}, parent=1)]
        if (trial, step) == (2, 5):
            return [Train(2, 12)]
        assert (trial, step) == (1, 6)
        return [Stop(2), Close(1), Shutdown()]

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        self.exits.append((trial, status))
        return []

    def on_trial_paused(self, trial: int) -> list[Action]:
        self.exits.append((trial, "PAUSED"))
        return []


def test_every_action_parent_pause_relaunch_and_stop() -> None:
    searcher, recorder = Scripted(), Recorder()
    result = run_searcher(searcher, SPACE, recorder, capacity=2, fork_fn=recorder.fork)
    assert recorder.forks == [(2, 1, 4)]
    assert recorder.calls == [(1, None, 0, 4), (2, 1, 4, 5), (1, None, 4, 6)]
    assert searcher.parent_status == "PAUSED"
    assert searcher.exits == [(1, "PAUSED"), (2, "STOPPED"), (1, "COMPLETED")]
    one, two = result.trials[1], result.trials[2]
    assert (one.launches, two.launches) == (2, 1)
    assert (two.parent, two.start_length, two.length) == (1, 4, 5)
    cut = two.operations[-1]
    assert cut.aborted and not cut.completed and (cut.from_length, cut.to_length) == (5, 12)
    assert cut.trained == 1  # stopped at t=6, one unit into 5 -> 12
    assert result.total_length == 4 + 1 + 2 + 1
    assert [(p.time, p.length_used) for p in result.curve] == [(4, 4), (5, 6), (6, 8)]
    assert result.makespan == 6 and result.shutdown and not result.stalled
    assert searcher.history.active == {}


def test_protocol_violations_are_reported() -> None:
    class Bad(Searcher):
        def start(self) -> list[Action]:
            return [Create(1, {"x": 0.1}), Create(1, {"x": 0.2})]

    with pytest.raises(SimulationError, match="request id 1"):
        run_searcher(Bad(), SPACE, Recorder(), capacity=1)

    class Open(Searcher):
        def start(self) -> list[Action]:
            return [Create(1, {"x": 0.1})]

        def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
            return [Train(trial)]

    with pytest.raises(SimulationError, match="open_length"):
        run_searcher(Open(), SPACE, Recorder(), capacity=1)
    result = run_searcher(Open(), SPACE, Recorder(), capacity=1, open_length=3)
    assert result.total_length == 3 and result.stalled == [1]  # never told it was done


@pytest.mark.parametrize("name", ["adaptive_asha", "hyperband"])
def test_bohb_style_model_samplers_under_adaptive_searchers(name: str) -> None:
    config = {
        "name": name,
        "metric": "loss",
        "max_trials": 30,
        "max_length": 27,
        "divisor": 3,
        "max_concurrent_trials": 3,
        "sampler": "tpe",
    }
    searcher, space, lower = searcher_from_config(config, HPARAMS)
    recorder = Recorder()
    result = run_searcher(searcher, space, recorder, 3, lower_is_better=lower, seed=2)
    check_invariants(result, recorder, 3)
    assert len(result.trials) == 30
    points = {tuple(sorted(t.params.items())) for t in result.trials.values()}
    assert len(points) == 30  # the model never repeats a configuration
    with pytest.raises(ConfigError, match="sampler"):
        searcher_from_config({**config, "sampler": "tpee"}, HPARAMS)
