"""Followers that copy an experiment's reports elsewhere (TensorBoard files, MLflow runs)
from the store, on a worker thread of the coordinator.

Reports are durable and append-only in the store, so a follower reads them by cursor
(``read_metrics(after=...)``): the event loop only pokes the thread (as an engine observer)
and never waits on a disk, a protobuf or a tracking server; trial processes import nothing of
it. The cursor and what the follower made (runs, sessions) are kept in a small JSON file, so a
restarted coordinator carries on where the last one stopped: nothing that reached the store is
lost, and at worst the points of one interrupted batch are written twice. A follower that
fails (a tracking server away, a full disk) logs why and tries again later with backoff; it
never fails or slows the search.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("ridgeline")

POLL_SECONDS = 1.0
MAX_BACKOFF = 60.0


def flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameter groups as ``a.b`` names (trackers have no nesting)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict):
            out.update(flat_params(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def scalars(group: str, values: dict[str, Any]) -> dict[str, float]:
    """A report's numbers as ``<group>/<name>`` scalars (anything else is left out)."""
    return {
        f"{group}/{name}": float(value)
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


class StoreFollower:
    """The thread, the cursor and the trial ends; subclasses say where reports go."""

    name = "follower"
    #: groups not copied (the searcher's own group repeats a validation metric)
    skipped_groups: tuple[str, ...] = ("searcher",)

    def __init__(
        self,
        store: Any,
        experiment_id: int,
        state_file: Path,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self.state_file = state_file
        self.poll_seconds = poll_seconds
        self._ends: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        self._pending_ends: list[tuple[int, str]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._abandoned = threading.Event()
        self._thread: threading.Thread | None = None
        self._trials: dict[int, tuple[int, dict[str, Any]]] = {}  # trial id -> number, params
        self._numbers: dict[int, int] = {}  # number -> trial id
        self.state: dict[str, Any] = {"cursor": 0, "started": [], "ended": []} | self._load()
        self.last_error: str | None = None

    # -- engine observer (on the event loop: only queue and wake) ----------------------------
    def trial_observed(
        self,
        number: int,
        step: int,
        params: dict[str, Any],
        objective: float,
        context: dict[str, Any],
    ) -> None:
        self._wake.set()

    def trial_ended(self, number: int, status: str) -> None:
        self._ends.put((number, status))
        self._wake.set()

    # -- what subclasses do (on the thread) --------------------------------------------------
    def open(self) -> None:
        """Import and connect (first thing on the thread)."""

    def started(self, number: int, params: dict[str, Any], wall: float) -> None:
        """Trial ``number``'s first report is about to be copied."""

    def metric(
        self, number: int, group: str, step: int, values: dict[str, Any], wall: float
    ) -> None:
        """One report of trial ``number`` in a group that ``wants`` says to copy."""

    def ended(self, number: int, trial_id: int, status: str) -> None:
        """Trial ``number`` ended for good with ``status``."""

    def flush(self) -> None:
        """Make what was copied durable before the cursor moves past it."""

    def shut(self) -> None:
        """Release files and connections (last thing on the thread)."""

    def wants(self, group: str) -> bool:
        return group not in self.skipped_groups

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"ridgeline-{self.name}", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Copy what is left, then stop the thread; gives up waiting after ``timeout``."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: still busy after %.0f s; leaving it behind", self.name, timeout)
        self._thread = None

    def abandon(self) -> None:
        """Stop the thread without copying more (a coordinator interrupted or taken over:
        the next one carries on from the saved cursor); returns at once."""
        self._abandoned.set()
        self._stop.set()
        self._wake.set()
        self._thread = None

    def _run(self) -> None:
        backoff = self.poll_seconds
        opened = False
        try:
            while not self._abandoned.is_set():
                stopping = self._stop.is_set()
                try:
                    if not opened:
                        self.open()
                        opened = True
                    self._copy()
                    backoff = self.poll_seconds
                    self.last_error = None
                except Exception as exc:  # noqa: BLE001 - a follower never fails the search
                    message = f"{type(exc).__name__}: {exc}"
                    if message != self.last_error:
                        log.warning("%s: %s (trying again later)", self.name, message)
                    self.last_error = message
                    backoff = min(MAX_BACKOFF, backoff * 2)
                if stopping:
                    break
                self._wake.wait(backoff)
                self._wake.clear()
        finally:
            try:
                if opened:
                    self.shut()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: closing failed: %s", self.name, exc)

    def _copy(self) -> None:
        state = self.state
        while not self._ends.empty():  # taken before reading: their reports are stored
            self._pending_ends.append(self._ends.get())
        ends = list(self._pending_ends)
        metrics = self.store.read_metrics(self.experiment_id, after=state["cursor"])
        started: set[int] = set(state["started"])
        for record in metrics:
            number, params = self._trial(record.trial_id)
            if number not in started:
                self.started(number, params, record.time)
                started.add(number)
                state["started"] = sorted(started)
            if self.wants(record.group):
                self.metric(number, record.group, int(record.step), record.values, record.time)
        self.flush()  # copied before the cursor says so
        if metrics:
            state["cursor"] = metrics[-1].seq
        self._save()
        ended: set[int] = set(state["ended"])
        for number, status in ends:
            if number in started and number not in ended:
                self.ended(number, self._trial_id(number), status)
                ended.add(number)
                state["ended"] = sorted(ended)
                self._save()
        self._pending_ends = self._pending_ends[len(ends) :]

    def _trial(self, trial_id: int) -> tuple[int, dict[str, Any]]:
        if trial_id not in self._trials:
            record = self.store.get_trial(trial_id)
            self._trials[trial_id] = (record.number, flat_params(dict(record.params)))
            self._numbers[record.number] = trial_id
        return self._trials[trial_id]

    def _trial_id(self, number: int) -> int:
        if number not in self._numbers:  # started under an earlier coordinator
            for record in self.store.list_trials(self.experiment_id):
                self._numbers[record.number] = record.id
        return self._numbers[number]

    # -- where the follower stands -----------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            stored = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return stored if isinstance(stored, dict) else {}

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.state_file.with_suffix(".tmp")
        scratch.write_text(json.dumps(self.state))
        os.replace(scratch, self.state_file)


__all__ = ["POLL_SECONDS", "StoreFollower", "flat_params", "scalars"]
