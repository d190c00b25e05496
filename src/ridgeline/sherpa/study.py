"""The in-process Study: SHERPA's ask/tell loop on the same engine the coordinator runs."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.engine.engine import Engine
from ridgeline.engine.progress import Progress, StudyProgress
from ridgeline.errors import ObservationError
from ridgeline.integrations.keras import metrics_callback
from ridgeline.results import ResultsTable, earlier_results
from ridgeline.searchers.base import Train
from ridgeline.sherpa.algorithms.core import Algorithm, trial_cap
from ridgeline.sherpa.build import build_searcher, build_space, describe
from ridgeline.sherpa.seeding import next_seed
from ridgeline.space import Parameter
from ridgeline.store import open_store
from ridgeline.trial.records import AlgorithmState, Trial, TrialStatus
from ridgeline.values import check_iteration, check_objective

if TYPE_CHECKING:
    import pandas as pd

    from ridgeline.sherpa.algorithms import Algorithm
    from ridgeline.sherpa.stopping import StoppingRule

_FINAL_STATUSES = (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.STOPPED)


class Study:
    """``for trial in study``: suggestions, observations and results in one process.

    In memory by default; ``storage`` (a file path or SQLAlchemy URL) makes it durable.
    """

    def __init__(
        self,
        parameters: Sequence[Parameter],
        algorithm: Algorithm,
        lower_is_better: bool,
        stopping_rule: StoppingRule | None = None,
        dashboard_port: int | None = None,
        disable_dashboard: bool = False,
        output_dir: str | os.PathLike[str] | None = None,
        seed: int | None = None,
        storage: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> None:
        self.space = build_space(parameters)
        self.parameters = list(self.space.parameters)
        self.algorithm = algorithm
        self.lower_is_better = bool(lower_is_better)
        self.stopping_rule = stopping_rule
        self.dashboard_port = dashboard_port
        self.disable_dashboard = disable_dashboard
        self.output_dir = output_dir
        self.seed = next_seed() if seed is None else int(seed)
        searcher = build_searcher(algorithm, stopping_rule)
        self.store = open_store(storage)
        config = describe(self.space, algorithm, self.lower_is_better) | {"seed": self.seed}
        experiment = self.store.create_experiment("study", config)
        self._engine = Engine(
            self.store, experiment.id, self.space, searcher, self.lower_is_better, self.seed
        )
        self._table = ResultsTable(self.lower_is_better)
        self._engine.observers.add(self._table)  # rows follow the engine's events
        self._queue: deque[Trial] = deque()
        self._finalized: set[int] = set()
        self._engine.start()
        self._progress = self._show_progress() if progress else None

    def _show_progress(self) -> Any:
        """A live progress line on stderr (``progress=True``), redrawn as results arrive;
        it ends when the study has no more trials to suggest."""
        bar = Progress(trial_cap(self.algorithm), trial_cap(self.algorithm, "length_budget"))
        follower = StudyProgress(self._engine, bar, lambda: self._table.best().get("Objective"))
        self._engine.observers.add(follower)
        return follower

    # -- suggestions -------------------------------------------------------------------------
    @property
    def num_trials(self) -> int:
        return len(self._engine.records)

    def get_suggestion(self) -> Trial | str:
        """The next trial, ``AlgorithmState.WAIT`` to try again later, or ``DONE``."""
        suggestion = self._suggest()
        if self._progress is not None:
            self._progress.redraw()
            if suggestion == AlgorithmState.DONE:
                self._progress.progress.stop()
        return suggestion

    def _suggest(self) -> Trial | str:
        if self._queue:
            queued = self._queue.popleft()
            record, _ = self._engine.add_trial(dict(queued.parameters))
            self._engine.trial_started(record.number)
            return Trial(record.number, dict(record.params))
        if self._engine.shutdown:
            return AlgorithmState.DONE
        trial: Trial | None = None
        for action in self._engine.slots_free(1):
            if isinstance(action, Train) and trial is None:
                record = self._engine.trial_started(action.trial)
                trial = Trial(record.number, dict(record.params))
        if trial is not None:
            return trial
        if self._engine.shutdown and not self._waits_for_last():
            return AlgorithmState.DONE
        return AlgorithmState.WAIT

    def _waits_for_last(self) -> bool:
        """``Repeat(wait_for_completion=True)`` says WAIT, not DONE, while its last repeats
        still run (SHERPA's behaviour)."""
        if not getattr(self.algorithm, "wait_for_completion", False):
            return False
        return any(n not in self._finalized for n in self._engine.records)

    def __iter__(self) -> Study:
        """The study is its own iterator (``for trial in study``, ``next(study)``): it yields
        trials until the next suggestion is not one (WAIT or DONE)."""
        return self

    def __next__(self) -> Trial:
        trial = self.get_suggestion()
        if not isinstance(trial, Trial):
            raise StopIteration
        return trial

    def next(self) -> Trial:
        """``next(study)`` under SHERPA's Python 2 name."""
        return self.__next__()

    def add_trial(self, trial: Trial) -> None:
        """Queue a fully specified trial; it runs before new suggestions. Its parameters are
        checked now; it gets the next trial id when suggested."""
        self.space.check_params(trial.parameters)
        self._queue.append(trial)

    def add_result(self, parameters: dict[str, Any], objective: float) -> Trial:
        """Record a result obtained elsewhere (an earlier run, a known point) as a finished
        trial: model-based algorithms learn from it, and it spends none of their budget."""
        record = self._engine.import_result(dict(parameters), objective)
        self._finalized.add(record.number)
        return Trial(record.number, dict(record.params))

    def warm_start(self, results: Any) -> int:
        """Add every COMPLETED trial of an earlier search over the same parameters
        (its ``results`` DataFrame, ``results.csv`` or output folder); returns how many."""
        rows = earlier_results(results, self.space.names)
        for params, objective in rows:
            self.add_result(params, objective)
        return len(rows)

    # -- observations ------------------------------------------------------------------------
    def _record(self, trial: Trial) -> Any:
        record = self._engine.records.get(getattr(trial, "id", None))  # type: ignore[arg-type]
        if record is None:
            raise ObservationError(
                f"trial {getattr(trial, 'id', trial)!r} was not suggested by this study; "
                f"use a trial returned by get_suggestion() or iteration"
            )
        return record

    def add_observation(
        self,
        trial: Trial,
        objective: float,
        iteration: int = 1,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Record ``objective`` for ``trial`` at ``iteration``; each iteration once."""
        record = self._record(trial)
        self.space.check_params(trial.parameters)
        where = f"trial {trial.id} iteration {iteration}"
        value = check_objective(objective, where)
        iteration = check_iteration(iteration, where)
        if self._table.has_observation(record.number, iteration):
            raise ObservationError(
                f"trial {trial.id} already has an observation at iteration {iteration}; "
                f"use a new iteration number"
            )
        if record.number in self._finalized:
            raise ObservationError(f"trial {trial.id} is already finalized")
        context = dict(context or {})
        self._engine.report(record.number, iteration, value, context)

    def finalize(self, trial: Trial, status: str = TrialStatus.COMPLETED) -> None:
        """End ``trial`` with ``status`` (COMPLETED, FAILED or STOPPED)."""
        if status not in _FINAL_STATUSES:
            raise ObservationError(
                f"status must be one of {', '.join(_FINAL_STATUSES)}, got {status!r}"
            )
        record = self._record(trial)
        if not self._table.has_any(record.number):
            raise ObservationError(
                f"trial {trial.id} has no observations; call add_observation before finalize"
            )
        self._finalized.add(record.number)
        self._engine.trial_exited(record.number, status)

    def keras_callback(
        self, trial: Trial, objective_name: str, context_names: list[str] | None = None
    ) -> Any:
        """A Keras callback adding an observation at each epoch end (iteration = epoch)."""
        return metrics_callback(self.add_observation, trial, objective_name, context_names or [])

    def should_trial_stop(self, trial: Trial) -> bool:
        return self._record(trial).number in self._engine.stop_requested

    # -- results -----------------------------------------------------------------------------
    @property
    def results(self) -> pd.DataFrame:
        return self._table.dataframe()

    def get_best_result(self) -> dict[str, Any]:
        """The best observation's row without ``Status`` (NaN never wins); ``{}`` if none.

        An algorithm that reports its own best (``Repeat``'s best mean, or a custom
        algorithm's ``get_best_result``) is asked instead, with the results table."""
        if self._table.rows and self._own_best():
            return self.algorithm.get_best_result(
                self.parameters, self.results, self.lower_is_better
            )
        return self._table.best()

    def _own_best(self) -> bool:
        algorithm = self.algorithm
        if getattr(algorithm, "aggregates_best", False) is True:
            return True
        if isinstance(algorithm, Algorithm):
            return type(algorithm).get_best_result is not Algorithm.get_best_result
        return callable(getattr(algorithm, "get_best_result", None))

    def save(self, output_dir: str | os.PathLike[str] | None = None) -> Path:
        """Write ``results.csv`` to ``output_dir`` (or the study's); returns its path."""
        target = output_dir or self.output_dir
        if target is None:
            raise ObservationError("save() needs an output_dir (none was given to the Study)")
        path = Path(target) / "results.csv"
        self._table.write_csv(path)
        return path
