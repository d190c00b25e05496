"""The real engine on simulated time: SimulatedScheduler, its virtual clock, run_on_engine.

Searches run through the real Engine, Coordinator and SQLite store; trials are coroutines that
speak the Core-API protocol. Where ``Simulation`` (the engine in miniature) is deterministic
too, both must report the same thing at the same simulated times.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from ridgeline.errors import SchedulerError
from ridgeline.experiment import Experiment
from ridgeline.schedulers.simulated import SimulatedScheduler, from_objective
from ridgeline.schedulers.virtualclock import ClockStalled, VirtualClockLoop
from ridgeline.searchers.base import Action, Close, Create, Pause, Searcher, Shutdown, Stop, Train
from ridgeline.space import Continuous, SearchSpace
from ridgeline.testing.engine_run import EngineRun, run_on_engine
from ridgeline.testing.simulate import Simulation, searcher_from_config

HPARAMS = {"x": {"type": "double", "minval": 0.0, "maxval": 1.0}}
SPACE = SearchSpace([Continuous("x", [0.0, 1.0])])
ASHA = {
    "name": "adaptive_asha",
    "metric": "loss",
    "max_trials": 40,
    "max_length": 27,
    "divisor": 3,
    "max_concurrent_trials": 4,
}
PBT = {
    "name": "pbt",
    "metric": "loss",
    "population_size": 8,
    "num_rounds": 3,
    "length_per_round": 3,
    "replace_function": {"truncate_fraction": 0.25},
    "explore_function": {"resample_probability": 0.2, "perturb_factor": 0.2},
}


def curve(params: dict[str, Any], length: int) -> float:
    """Curves cross: small x starts worse and ends better."""
    return (params["x"] - 0.3) ** 2 + (1.0 - params["x"]) / length


class Models:
    """A train_fn whose model is its lineage and length. It checks that every process
    continues from where its checkpoint (or its parent's) stood, and mutates the state it
    is given, which the scheduler's copies must keep out of the checkpoints."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, tuple[int, ...], int, int]] = []

    def __call__(
        self, trial: int, params: dict[str, Any], state: Any, start: int, stop: int
    ) -> tuple[float, Any]:
        if state is None:
            assert start == 0, f"trial {trial} starts afresh at {start}"
            state = {"trial": trial, "length": 0, "lineage": (trial,)}
        assert state["length"] == start, f"trial {trial} resumes at {state['length']}, not {start}"
        if state["trial"] != trial:  # a clone's first operation: its parent's model
            state["trial"], state["lineage"] = trial, (*state["lineage"], trial)
        state["length"] = stop
        self.calls.append((trial, state["lineage"], start, stop))
        return curve(params, stop), state


def simulate(config: dict[str, Any], capacity: int, seed: int, **options: Any) -> Simulation:
    searcher, space, lower = searcher_from_config(config, HPARAMS)
    return Simulation(
        searcher,
        capacity,
        objective=curve,
        lower_is_better=lower,
        seed=seed,
        space=space,
        ties="trial",
        **options,
    ).run()


def on_engine(
    config: dict[str, Any], capacity: int, seed: int, folder: Path, **options: Any
) -> EngineRun:
    searcher, space, lower = searcher_from_config(config, HPARAMS)
    options.setdefault("train_fn", Models())
    return run_on_engine(
        searcher,
        space,
        capacity=capacity,
        lower_is_better=lower,
        seed=seed,
        folder=folder,
        **options,
    )


def reports(run: EngineRun, per_unit: float = 1.0) -> list[tuple[float, int, int, float]]:
    return [(r.time / per_unit, r.trial, r.length, r.objective) for r in run.reports]


def simulated_reports(sim: Simulation) -> list[tuple[float, int, int, float]]:
    return [(p.time, p.trial, p.length, p.objective) for p in sim.result().curve]


# -- the clock ----------------------------------------------------------------------------------
def test_the_clock_jumps_to_the_next_event_and_releases_simultaneous_ones_one_by_one() -> None:
    seen: list[tuple[str, float]] = []

    async def trial(loop: VirtualClockLoop, name: str, seconds: float) -> None:
        await loop.sleep(seconds)
        seen.append((name, loop.time()))
        await asyncio.sleep(0)  # what it sets off settles before the next event
        seen.append((f"{name} settled", loop.time()))

    async def main() -> float:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        await asyncio.gather(trial(loop, "a", 500), trial(loop, "b", 500), trial(loop, "c", 30))
        await asyncio.sleep(1000)  # a timer
        before = loop.time()
        await asyncio.to_thread(time.sleep, 0.05)  # thread work takes no simulated time
        assert loop.time() == before
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 60)
        return loop.time()

    started = time.perf_counter()
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        assert runner.run(main()) == 1560
    assert time.perf_counter() - started < 5
    assert seen == [
        ("c", 30),
        ("c settled", 30),
        ("a", 500),
        ("a settled", 500),
        ("b", 500),
        ("b settled", 500),
    ]


@pytest.mark.timeout(20)
def test_deadlines_a_rounding_error_ahead_are_reached() -> None:
    """Timers at 20/3 s intervals (lease renewals) leave the clock a rounding error below a
    long-poll's deadline; its remaining wait must not be waited for again and again."""

    async def renewals() -> None:
        while True:
            await asyncio.sleep(20 / 3)

    async def long_polls() -> float:
        loop = asyncio.get_running_loop()
        renewing = asyncio.ensure_future(renewals())
        for _ in range(50):
            deadline = loop.time() + 60
            while (remaining := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.Event().wait(), remaining)
        renewing.cancel()
        return loop.time()

    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        assert runner.run(long_polls()) == pytest.approx(3000)


def test_a_run_with_nothing_left_to_happen_is_reported_not_hung() -> None:
    with pytest.raises(ClockStalled, match="nothing is left"):
        with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
            runner.run(asyncio.Event().wait())

    async def housekeeping_only() -> None:
        while True:  # a timer that never ends, with nothing simulated going on
            await asyncio.sleep(10)

    def factory() -> VirtualClockLoop:
        return VirtualClockLoop(idle_limit=100)

    with pytest.raises(ClockStalled, match="only timers are left"):
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(housekeeping_only())


# -- whole searches against Simulation ----------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "capacity", "seed"),
    [
        ({"name": "random", "metric": "loss", "max_trials": 10, "max_length": 9}, 3, 1),
        (ASHA, 4, 7),
        (ASHA, 2, 3),
        (
            {
                "name": "sync_halving",
                "max_trials": 27,
                "max_length": 27,
                "num_rungs": 4,
                "divisor": 3,
            },
            4,
            7,
        ),
        (PBT, 4, 3),
    ],
    ids=["random", "adaptive_asha", "adaptive_asha-2", "sync_halving", "pbt"],
)
def test_the_engine_reports_what_the_simulation_does(
    tmp_path: Path, config: dict[str, Any], capacity: int, seed: int
) -> None:
    config = {"metric": "loss", **config}
    models = Models()
    run = on_engine(config, capacity, seed, tmp_path, train_fn=models)
    sim = simulate(config, capacity, seed)
    assert run.outcome == "COMPLETED" and run.error is None
    assert reports(run) == simulated_reports(sim)  # trials, lengths, values and times
    assert run.states() == {n: str(s) for n, s in sim.state.items()}
    assert run.parents == sim.parents
    assert run.makespan == sim.result().makespan
    assert run.total_length() == sim.result().total_length
    assert run.peak_training() == sim.result().peak_training <= capacity
    best = min(p.objective for p in sim.result().curve)
    assert run.best() == best
    # Each report was one trained operation, continuing its checkpoint (Models checks it).
    assert sum(b - a for *_, a, b in models.calls) == run.total_length()


def test_asha_pauses_and_relaunches_trials_from_their_checkpoints(tmp_path: Path) -> None:
    models = Models()
    run = on_engine(ASHA, 4, 7, tmp_path, train_fn=models)
    relaunched = [op for op in run.operations if op.attempt > 1]
    assert relaunched, "promotions relaunch paused trials"
    for op in relaunched:  # from the length its last checkpoint holds, never from 0
        assert op.from_length > 0 and op.outcome == "completed"
    assert all(len(lineage) == 1 for _, lineage, _, _ in models.calls)  # no clones in ASHA
    assert (tmp_path / "ridgeline.db").exists() and (tmp_path / "results.csv").exists()


def test_pbt_clones_start_from_their_parents_checkpoints(tmp_path: Path) -> None:
    models = Models()
    run = on_engine(PBT, 4, 3, tmp_path, train_fn=models)
    clones = {n: p for n, p in run.parents.items() if p is not None}
    assert clones
    for child, parent in clones.items():
        first = next(call for call in models.calls if call[0] == child)
        assert first[1][-2:] == (parent, child)  # the parent's model, trained on
        assert first[2] in (3, 6)  # from the parent's length when the clone was made


def test_a_thousand_simulated_seconds_take_a_few_wall_seconds(tmp_path: Path) -> None:
    """12 simulated seconds per unit: operations of up to 27 units run minutes, longer than
    the 60 s heartbeat interval, so the simulated trials' beats keep them alive too."""
    run = on_engine(ASHA, 4, 7, tmp_path, time_per_unit=12.0)
    assert run.makespan >= 1000
    assert run.wall_seconds < run.makespan / 100, run.wall_seconds
    assert reports(run, per_unit=12.0) == simulated_reports(simulate(ASHA, 4, 7))
    assert max(op.end - op.start for op in run.operations) > 60
    assert run.states() == dict.fromkeys(run.trials, "COMPLETED")


def test_model_based_samplers_are_reproducible_on_simulated_time(tmp_path: Path) -> None:
    config = {**ASHA, "max_trials": 16, "sampler": "tpe"}
    first = on_engine(config, 3, 2, tmp_path / "a")
    again = on_engine(config, 3, 2, tmp_path / "b")
    assert reports(first) == reports(again) == simulated_reports(simulate(config, 3, 2))


# -- failures, restarts, stops ------------------------------------------------------------------
def test_a_failure_on_cue_restarts_from_the_latest_checkpoint(tmp_path: Path) -> None:
    exits = {(5, 3): 1}  # trial 5's process dies when it reaches length 3, once
    run = on_engine(ASHA, 4, 7, tmp_path, exits=exits, max_restarts=1)
    assert run.restarts() == {n: int(n == 5) for n in run.trials}
    assert run.trials[5].state != "FAILED" and run.outcome == "COMPLETED"
    fives = [op for op in run.operations if op.trial == 5]
    died = next(op for op in fives if op.outcome == "exited")
    again = fives[fives.index(died) + 1]
    assert (died.from_length, died.to_length, died.end) == (1, 3, 4.0)
    assert (again.attempt, again.from_length, again.to_length) == (died.attempt + 1, 1, 3)
    assert again.start == died.end  # restarted at once, from its checkpoint at length 1
    assert again.outcome == "completed"


def test_without_restarts_a_failure_on_cue_fails_the_trial_as_in_the_simulation(
    tmp_path: Path,
) -> None:
    run = on_engine(ASHA, 4, 7, tmp_path, exits={(5, 3): 1})
    sim = simulate(ASHA, 4, 7, exits={(5, 3): "FAILED"})
    assert run.trials[5].state == "FAILED" and run.restarts()[5] == 0
    assert run.states() == {n: str(s) for n, s in sim.state.items()}
    assert reports(run) == simulated_reports(sim)


def test_a_train_fn_that_raises_fails_its_trial_with_the_traceback_in_its_output(
    tmp_path: Path,
) -> None:
    def train(trial: int, params: dict[str, Any], state: Any, a: int, b: int) -> Any:
        if trial == 2:
            raise RuntimeError("out of memory in trial 2")
        return curve(params, b), None

    config = {"name": "random", "metric": "loss", "max_trials": 3, "max_length": 5}
    run = on_engine(config, 2, 0, tmp_path, train_fn=train)
    assert run.states() == {1: "COMPLETED", 2: "FAILED", 3: "COMPLETED"}
    assert "RuntimeError: out of memory in trial 2" in (tmp_path / "jobs/trial_2.out").read_text()


class Scripted(Searcher):
    """t1 trains to 4 and pauses; t2 clones it and trains to 5, then on towards 12; t1 is
    relaunched to 6, and its report stops t2 mid-operation and ends the search."""

    def __init__(self) -> None:
        self.ends: list[tuple[int, str]] = []

    def start(self) -> list[Action]:
        return [Create(1, {"x": 0.1})]

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        return [Train(1, 4)] if trial == 1 else [Train(2, 5), Train(1, 6)]

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        if (trial, step) == (1, 4):
            return [Pause(1), Create(2, {"x": 0.5}, parent=1)]
        if (trial, step) == (2, 5):
            return [Train(2, 12)]
        return [Stop(2), Close(1), Shutdown()]

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        self.ends.append((trial, str(status)))
        return []

    def on_trial_paused(self, trial: int) -> list[Action]:
        self.ends.append((trial, "PAUSED"))
        return []


def test_a_stop_mid_operation_checkpoints_what_was_trained_and_exits(tmp_path: Path) -> None:
    searcher, models = Scripted(), Models()
    run = run_on_engine(searcher, SPACE, models, capacity=2, folder=tmp_path)
    assert run.states() == {1: "COMPLETED", 2: "STOPPED"} and run.parents == {1: None, 2: 1}
    assert [(r.time, r.trial, r.length) for r in run.reports] == [(4, 1, 4), (5, 2, 5), (6, 1, 6)]
    cut = [op for op in run.operations if op.trial == 2][-1]
    assert (cut.from_length, cut.to_length, cut.outcome) == (5, 12, "preempted")
    assert (cut.start, cut.end, cut.trained) == (5, 6, 1)  # one unit in, as the simulation
    # The clone trained on from its parent's model; the stop saved the unit it trained.
    assert models.calls == [(1, (1,), 0, 4), (2, (1, 2), 4, 5), (1, (1,), 4, 6), (2, (1, 2), 5, 6)]
    # Trial 1 was paused and given more work in one decision, before its process heard of
    # the pause: it trains on in the same process. The simulation ends and relaunches it.
    assert sorted(searcher.ends) == [(1, "COMPLETED"), (2, "STOPPED")]
    assert {op.attempt for op in run.operations if op.trial == 1} == {1}
    simulated = Scripted()
    sim = Simulation(simulated, 2, objective=curve, space=SPACE).run()
    assert sorted(simulated.ends) == [(1, "COMPLETED"), (1, "PAUSED"), (2, "STOPPED")]
    assert simulated_reports(sim) == reports(run)


# -- the doors --------------------------------------------------------------------------------
def test_an_experiment_runs_on_a_simulated_scheduler(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    config = {
        "name": "simulated",
        "entrypoint": "python3 train.py",  # never run: the scheduler's coroutines train
        "searcher": ASHA,
        "hyperparameters": HPARAMS,
        "reproducibility": {"experiment_seed": 7},
    }
    # A minute per unit: the lease's renewals every 20/3 s share the clock with long-polls.
    scheduler = SimulatedScheduler(from_objective(curve), slots=4, time_per_unit=60.0)
    experiment = Experiment.from_dict(config, storage=str(workdir / "store.db"))
    best = experiment.run(verbose=0, scheduler=scheduler)
    sim = simulate(ASHA, 4, 7)
    assert best["Objective"] == pytest.approx(min(p.objective for p in sim.result().curve))
    completed = [  # in the order they started
        (round(op.end / 60, 6), op.trial, op.to_length)
        for op in scheduler.operations
        if op.objective is not None
    ]
    assert sorted(completed) == sorted((p.time, p.trial, p.length) for p in sim.result().curve)


def test_a_search_without_operations_is_refused(tmp_path: Path) -> None:
    import ridgeline

    with pytest.raises(SchedulerError, match="Core-API trials"):
        ridgeline.optimize(
            [ridgeline.Continuous("x", [0.0, 1.0])],
            ridgeline.algorithms.RandomSearch(max_num_trials=2),
            lower_is_better=True,
            scheduler=SimulatedScheduler(from_objective(curve)),
            command="true",
            output_dir=tmp_path,
            verbose=0,
            disable_dashboard=True,
        )


def test_bad_settings_are_refused() -> None:
    with pytest.raises(SchedulerError, match="slots"):
        SimulatedScheduler(from_objective(curve), slots=0)
    with pytest.raises(SchedulerError, match="time_per_unit"):
        SimulatedScheduler(from_objective(curve), time_per_unit=0)
