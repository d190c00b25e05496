"""Each experiment's records held in memory and brought up to date with the store's cursors.

Reading a large search from the store is the slow part (a million reports take tens of
seconds to read); after the first read a dashboard asks only for what is new
(``read_metrics(after=seq)``, ``read_events(after=seq)``) and reuses the page data it
computed while nothing changed, so a page of a 10,000-trial search is served at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ridgeline.analysis import Analysis
from ridgeline.dashboard import data
from ridgeline.store.base import Store
from ridgeline.store.records import EventRecord, ExperimentRecord, MetricRecord, TrialRecord

# A page's data is computed again at most this often, and never more than a fifth of the
# time (a search of 10,000 trials takes seconds of CPU: a coordinator serving its own
# dashboard keeps most of the machine for its trials).
MIN_AGE = 2.0
SHARE = 5.0


class ExperimentView:
    """One experiment as last read: its record, trials, reports, events, and the JSON of
    its list row and page, computed on demand and kept until something changes."""

    def __init__(self, experiment_id: int) -> None:
        self.experiment_id = experiment_id
        self.lock = threading.Lock()
        self.experiment: ExperimentRecord | None = None
        self.trials: list[TrialRecord] = []
        self.metrics: list[MetricRecord] = []
        self.events: list[EventRecord] = []
        self._analysis: Analysis | None = None
        self._page: str | None = None
        self._row: dict[str, Any] | None = None
        self._computed_at = 0.0
        self._cost = 0.0  # seconds the last page took to compute

    @property
    def metric_cursor(self) -> int:
        return self.metrics[-1].seq if self.metrics else 0

    def update(self, store: Store) -> bool:
        """Read what is new; True when anything changed since the last look."""
        experiment = store.get_experiment(self.experiment_id)
        metrics = store.read_metrics(self.experiment_id, after=self.metric_cursor)
        events = store.read_events(
            self.experiment_id, after=self.events[-1].seq if self.events else 0
        )
        # Trials change state and restart with an event; new reports change their numbers.
        changed = self.experiment is None or experiment != self.experiment
        changed = changed or bool(metrics or events)
        if changed:
            self.metrics.extend(metrics)
            self.events.extend(events)
            self.trials = store.list_trials(self.experiment_id)
            self.experiment = experiment
            self._analysis = None
            self._page = self._row = None
        return changed

    def analysis(self, store: Store) -> Analysis:
        """An ``Analysis`` over the records held here (it reads nothing more), shared by the
        list row and the page until something changes."""
        if self._analysis is None:
            analysis = Analysis(store, self.experiment_id)
            analysis.__dict__.update(
                experiment=self.experiment,
                trials=self.trials,
                metrics=self.metrics,
                events=self.events,
            )
            self._analysis = analysis
        return self._analysis

    def page(self, store: Store) -> str:
        """The experiment page's data as JSON text."""
        with self.lock:
            age = time.monotonic() - self._computed_at
            if self._page is not None and age < max(MIN_AGE, SHARE * self._cost):
                return self._page
            start = time.monotonic()
            self.update(store)
            if self._page is None:
                overview = data.experiment_overview(self.analysis(store))
                self._page = data.to_json(overview)
            self._computed_at = time.monotonic()
            self._cost = self._computed_at - start
            return self._page

    def row(self, store: Store) -> dict[str, Any]:
        """The experiment's row in the experiments list."""
        with self.lock:
            self.update(store)
            if self._row is None:
                self._row = data.experiment_row(self.analysis(store))
            return self._row


class Views:
    """The views of every experiment a dashboard has shown, by id."""

    def __init__(self) -> None:
        self._views: dict[int, ExperimentView] = {}
        self._lock = threading.Lock()

    def get(self, experiment_id: int) -> ExperimentView:
        with self._lock:
            if experiment_id not in self._views:
                self._views[experiment_id] = ExperimentView(experiment_id)
            return self._views[experiment_id]

    def rows(self, store: Store, only: int | None = None) -> list[dict[str, Any]]:
        ids = [e.id for e in store.list_experiments()] if only is None else [only]
        return [self.get(i).row(store) for i in sorted(ids)]

    def warm(self, store: Store, newest: int = 5) -> None:
        """Read the ``newest`` experiments ahead of the first visit (a large one takes a
        while); a page asked for meanwhile waits for its own experiment only."""
        for experiment in sorted(store.list_experiments(), key=lambda e: -e.id)[:newest]:
            self.get(experiment.id).page(store)
