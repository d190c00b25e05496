"""Trial rows for ``experiment describe`` and ``list-trials``, from ``ridgeline.analysis`` (one
reading of the searcher metric for the CLI, notebooks and plots): one column per
hyperparameter, sorting, the best K, and the live view of ``describe --watch``."""

from __future__ import annotations

import json
import math
from typing import Any

from ridgeline.analysis import Analysis, may_win
from ridgeline.store.base import Store
from ridgeline.store.records import COMPLETED

#: Columns every trial row has, in order; hyperparameter columns go after ``state``.
FIXED = ("trial_id", "number", "state")
AFTER = ("best_metric", "last_metric", "steps", "restarts", "checkpoints", "exit_code", "parent")


def trial_rows(store: Store, experiment_id: int) -> list[dict[str, Any]]:
    """One dict per trial: its fields, ``hparams`` (the trial's hyperparameters as a
    mapping), the best and last searcher metric and the highest step it reported."""
    analysis = Analysis(store, experiment_id)
    numbers = {t.id: t.number for t in analysis.trials}
    rows = []
    for s in analysis.summaries:
        trial = s.record
        checkpoints = [c for c in store.list_checkpoints(trial.id) if c.state == COMPLETED]
        rows.append(
            {
                "trial_id": trial.id,
                "number": trial.number,
                "state": trial.state,
                "hparams": trial.params,
                "best_metric": s.best,
                "last_metric": s.last,
                "steps": s.steps,
                "restarts": trial.restarts,
                "checkpoints": len(checkpoints),
                "exit_code": trial.exit_code,
                "parent": numbers.get(trial.parent_id) if trial.parent_id else None,
            }
        )
    return rows


def param_column(name: str) -> str:
    """A hyperparameter's column: its name, unless a fixed column has it already."""
    return f"hp.{name}" if name in FIXED + AFTER else name


def flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with one column per hyperparameter in place of the ``hparams`` mapping."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row["hparams"]))
    out = []
    for row in rows:
        flat_row = {key: row[key] for key in FIXED}
        flat_row.update({param_column(n): row["hparams"].get(n) for n in names})
        flat_row.update({key: row[key] for key in AFTER})
        out.append(flat_row)
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def best_k(rows: list[dict[str, Any]], k: int, smaller_is_better: bool) -> list[dict[str, Any]]:
    """The ``k`` best trials by their best searcher metric, best first; failed trials and
    trials without a finite metric are never among them."""
    ranked = [r for r in rows if _finite(r["best_metric"]) and may_win(str(r["state"]))]
    ranked.sort(key=lambda r: r["best_metric"], reverse=not smaller_is_better)
    return ranked[:k]


def sort_rows(
    rows: list[dict[str, Any]], column: str, reverse: bool = False
) -> list[dict[str, Any]]:
    """Rows ordered by ``column`` (numbers before text; empty cells last either way)."""
    if rows and column not in rows[0]:
        raise KeyError(column)

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = row.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (2, 0)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, value)
        return (1, str(value))

    present = [r for r in rows if key(r)[0] < 2]
    missing = [r for r in rows if key(r)[0] == 2]
    numbers = sorted((r for r in present if key(r)[0] == 0), key=key, reverse=reverse)
    texts = sorted((r for r in present if key(r)[0] == 1), key=key, reverse=reverse)
    return numbers + texts + missing


def shown(value: Any) -> str:
    """A table cell: floats to six significant digits (JSON and CSV keep every digit)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def table(rows: list[dict[str, Any]], title: str | None = None) -> Any:
    """A rich Table of rows, numbers rounded."""
    from rich.table import Table  # lazy: rich is heavy, loaded on use

    columns = list(rows[0]) if rows else []
    out = Table(*columns, title=title)
    for row in rows:
        out.add_row(*(shown(row.get(c)) for c in columns))
    return out
