"""SHERPA's results table: one INTERMEDIATE row per observation, one final row per ended trial.

Rows are kept as plain dicts and appended, never rescanned; the pandas DataFrame and the CSV
file are built only when asked for. The table follows an engine's events (it is an
``ridgeline.engine.observers.EngineObserver``): drivers add it to ``engine.observers``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.store.records import COMPLETED, FAILED

if TYPE_CHECKING:
    import pandas as pd

TRIAL_ID, STATUS, ITERATION, OBJECTIVE = "Trial-ID", "Status", "Iteration", "Objective"


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def _warn_caller(message: str) -> None:
    """A ``RuntimeWarning`` pointing at the first caller outside ridgeline (the user's
    ``finalize``), however many engine frames the event took to get here."""
    package = os.path.dirname(sys.modules["ridgeline"].__file__ or "") + os.sep
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


class ResultsTable:
    """Append-only results in SHERPA's layout, with the best row tracked as rows arrive."""

    def __init__(self, lower_is_better: bool) -> None:
        self.lower_is_better = lower_is_better
        self.rows: list[dict[str, Any]] = []
        self._param_names: set[str] = set()
        self._context_names: set[str] = set()
        self._trial_best: dict[int, int] = {}  # trial id -> index of its best row
        self._trial_last: dict[int, Any] = {}  # trial id -> highest iteration
        self._trial_seen: dict[int, set[Any]] = {}
        self._best: int | None = None
        self._finalized: set[int] = set()
        self._failed: set[int] = set()  # trials whose rows may never be the best

    def _better(self, a: float, b_index: int | None) -> bool:
        if not _finite(a):
            return False
        if b_index is None:
            return True
        b = self.rows[b_index][OBJECTIVE]
        return a < b if self.lower_is_better else a > b

    def has_any(self, trial_id: int) -> bool:
        return trial_id in self._trial_seen

    def has_observation(self, trial_id: int, iteration: Any) -> bool:
        return iteration in self._trial_seen.get(trial_id, ())

    def add_observation(
        self,
        trial_id: int,
        iteration: Any,
        parameters: dict[str, Any],
        objective: float,
        context: dict[str, Any],
    ) -> None:
        row = {TRIAL_ID: trial_id, STATUS: "INTERMEDIATE", ITERATION: iteration}
        row.update(parameters)
        row[OBJECTIVE] = objective
        row.update(context)
        self._param_names.update(parameters)
        self._context_names.update(context)
        index = len(self.rows)
        self.rows.append(row)
        self._trial_seen.setdefault(trial_id, set()).add(iteration)
        last = self._trial_last.get(trial_id)
        if last is None or iteration > last:
            self._trial_last[trial_id] = iteration
        best = self._trial_best.get(trial_id)
        if self._better(objective, best if best is not None and best >= 0 else None):
            self._trial_best[trial_id] = index
            if trial_id not in self._failed and self._better(objective, self._best):
                self._best = index
        elif best is None:
            self._trial_best[trial_id] = -1  # has rows, none finite yet

    def finalize(self, trial_id: int, status: str) -> dict[str, Any] | None:
        """Append a copy of the trial's best row with ``status``; None when it has no rows.
        A FAILED trial's rows stay in the table but never count as the best result."""
        if trial_id in self._finalized:
            return None
        if status == FAILED:
            self._exclude(trial_id)
        best = self._trial_best.get(trial_id)
        if best is None:
            return None
        self._finalized.add(trial_id)
        if best < 0:
            _warn_caller(
                f"Trial {trial_id} has only NaN or infinite objectives; no final row recorded."
            )
            return None
        row = dict(self.rows[best])
        row[STATUS] = status
        row[ITERATION] = self._trial_last[trial_id]
        self.rows.append(row)
        return row

    # -- engine events (EngineObserver) --------------------------------------------------------
    def trial_observed(
        self,
        number: int,
        step: int,
        params: dict[str, Any],
        objective: float,
        context: dict[str, Any],
    ) -> None:
        self.add_observation(number, step, params, objective, context)

    def trial_ended(self, number: int, status: str) -> None:
        self.finalize(number, status)

    def _exclude(self, trial_id: int) -> None:
        self._failed.add(trial_id)
        if self._best is None or self.rows[self._best][TRIAL_ID] != trial_id:
            return
        self._best = None
        for other, index in self._trial_best.items():
            if other not in self._failed and index >= 0:
                if self._better(self.rows[index][OBJECTIVE], self._best):
                    self._best = index

    def best(self) -> dict[str, Any]:
        """The best row (finite objectives only) without ``Status``; ``{}`` when none."""
        if self._best is None:
            return {}
        row = {k: self.rows[self._best].get(k) for k in self.columns() if k != STATUS}
        return row

    def columns(self) -> list[str]:
        return [
            TRIAL_ID,
            STATUS,
            ITERATION,
            *sorted(self._param_names),
            OBJECTIVE,
            *sorted(self._context_names - self._param_names - {OBJECTIVE}),
        ]

    def dataframe(self) -> pd.DataFrame:
        import pandas as pd  # lazy: pandas is heavy, loaded on use

        return pd.DataFrame(self.rows, columns=self.columns())

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """Write atomically, so a reader never sees half a file."""
        _write_all(Path(path), self.columns(), self.rows)


def _write_all(target: Path, columns: list[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write a whole CSV file atomically (a temporary file renamed over the old one)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".results-", suffix=".csv")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsFile:
    """A ``results.csv`` kept in step with a growing ``ResultsTable``.

    Rows only ever get appended to the table, so the file does too: each ``update`` writes
    the rows that are new since the last one, in one write. The file is rewritten (atomically)
    only when the columns changed (a parameter or context name seen for the first time) or the
    file went missing. Safe to call from a worker thread while the table grows: the caller
    passes the row count and columns it saw, and updates run one at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._columns: list[str] | None = None
        self._written = 0

    def update(self, rows: Sequence[dict[str, Any]], count: int, columns: list[str]) -> None:
        """Make the file hold ``rows[:count]`` under ``columns``."""
        with self._lock:
            if count < self._written:
                return  # an older snapshot than what is on disk already
            if columns != self._columns or not self.path.exists():
                _write_all(self.path, columns, rows[:count])
            elif count > self._written:
                buffer = io.StringIO(newline="")
                writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
                writer.writerows(rows[self._written : count])
                with open(self.path, "a", newline="") as handle:
                    handle.write(buffer.getvalue())
            self._columns, self._written = columns, count


def earlier_results(source: Any, names: list[str]) -> list[tuple[dict[str, Any], float]]:
    """(parameters, objective) of each COMPLETED trial in an earlier SHERPA results table.

    ``source``: a DataFrame (``study.results``), a ``results.csv`` path, or the output folder
    that holds one. Only the columns in ``names`` become parameters; rows whose objective is
    not a finite number are skipped."""
    import pandas as pd  # lazy: pandas is heavy, loaded on use

    if not isinstance(source, pd.DataFrame):
        path = Path(source)
        if path.is_dir():
            path = path / "results.csv"
        if not path.is_file():
            raise ConfigError(f"no earlier results at {path}: give a results.csv or its folder")
        source = pd.read_csv(path)
    missing = [n for n in (STATUS, OBJECTIVE, *names) if n not in source.columns]
    if missing:
        raise ConfigError(
            f"earlier results lack the column(s) {', '.join(missing)}; they must come from a "
            f"search over the same parameters"
        )
    out = []
    for row in source[source[STATUS] == COMPLETED].to_dict("records"):
        value = row[OBJECTIVE]
        if isinstance(value, int | float) and _finite(float(value)):
            out.append(({n: _plain(row[n]) for n in names}, float(value)))
    return out


def _plain(value: Any) -> Any:
    """NumPy scalars from pandas as Python values."""
    return value.item() if hasattr(value, "item") else value
