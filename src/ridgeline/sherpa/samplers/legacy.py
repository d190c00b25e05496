"""Run a user's SHERPA-style ``Algorithm`` (one that overrides ``get_suggestion``).

SHERPA algorithms read a pandas results table; this module builds that table from the
engine's ``History`` (and back), lazily importing pandas so that nothing else pays for it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import WAIT, History, Sampler, TrialView
from ridgeline.space import bound_rng
from ridgeline.store.records import COMPLETED, FAILED, RUNNING, STOPPED

if TYPE_CHECKING:
    import pandas

    from ridgeline.space import Parameter, SearchSpace

__all__ = [
    "LegacyAlgorithmSampler",
    "RESULT_COLUMNS",
    "aggregate_results",
    "history_from_results",
    "results_frame",
]

#: SHERPA's fixed result columns; parameters (sorted by name) sit between Iteration and Objective.
RESULT_COLUMNS = ("Trial-ID", "Status", "Iteration", "Objective")
_FINISHED = (COMPLETED, FAILED, STOPPED)


def _py(value: Any) -> Any:
    """numpy scalars as plain Python values (JSON-able, compare like Python numbers)."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _best_point(
    curve: Sequence[tuple[int, float]], lower_is_better: bool
) -> tuple[int, float] | None:
    best: tuple[int, float] | None = None
    for step, value in curve:
        if math.isnan(value):
            continue
        if best is None or (value < best[1] if lower_is_better else value > best[1]):
            best = (step, value)
    return best


def results_frame(history: History, names: Sequence[str] = ()) -> pandas.DataFrame:
    """SHERPA's ``Study.results`` built from ``history``.

    Columns ``Trial-ID, Status, Iteration``, every parameter key (those of ``names`` and of
    the trials' parameters, such as ``resource`` or ``save_to``) sorted by name, ``Objective``.
    Rows: one ``INTERMEDIATE`` row per curve point of each trial (trials in id order), then,
    for a finished trial, a copy of its best row with its final status and ``Iteration`` =
    its highest iteration (SHERPA's ``finalize``; none when every value is NaN).
    Cost: one pass over all curve points; only SHERPA-style code pays it.
    """
    import pandas  # lazy: pandas is heavy, loaded on use

    keys = set(names)
    for t in history.trials:
        keys.update(t.params)
    pkeys = sorted(keys)
    columns = ["Trial-ID", "Status", "Iteration", *pkeys, "Objective"]
    rows: list[list[Any]] = []
    lib = history.lower_is_better
    for t in history.trials:
        pvals = [t.params.get(k) for k in pkeys]
        curve = history.curves.get(t.number, [])
        for step, value in curve:
            rows.append([t.number, "INTERMEDIATE", step, *pvals, value])
        if t.status in _FINISHED:
            best = _best_point(curve, lib)
            if best is not None:
                top = max(step for step, _ in curve)
                rows.append([t.number, t.status, top, *pvals, best[1]])
            elif not curve and t.objective is not None:
                step = t.last_step if t.last_step is not None else 1
                rows.append([t.number, t.status, step, *pvals, t.objective])
    return pandas.DataFrame(rows, columns=columns)


def history_from_results(results: Any, lower_is_better: bool = True) -> History:
    """The ``History`` a SHERPA results table describes (inverse of ``results_frame``).

    Parameters are the columns between ``Iteration`` and ``Objective``; a trial without a
    finished row is ``RUNNING`` (active). Gaps in trial ids become ``FAILED`` placeholders
    without parameters, because ``History.trials`` is indexed by id. A table of only
    parameters, ``Objective`` and ``Status`` (as users build by hand) reads as one trial per
    row at iteration 1.
    """
    history = History(lower_is_better=lower_is_better)
    if results is None or len(results) == 0:
        return history
    missing = [c for c in ("Status", "Objective") if c not in results.columns]
    if missing:
        raise ConfigError(
            f"the results table lacks the column(s) {', '.join(missing)}; SHERPA's layout is "
            f"Trial-ID, Status, Iteration, the parameters, Objective"
        )
    cols = list(results.columns)
    if "Iteration" in cols and cols.index("Iteration") < cols.index("Objective"):
        pcols = cols[cols.index("Iteration") + 1 : cols.index("Objective")]
    else:
        pcols = [c for c in cols if c not in RESULT_COLUMNS]
    if "Trial-ID" not in cols or "Iteration" not in cols:
        results = results.copy()
        if "Trial-ID" not in cols:
            results["Trial-ID"] = range(1, len(results) + 1)
        if "Iteration" not in cols:
            results["Iteration"] = 1
    info: dict[int, dict[str, Any]] = {}
    records = results[["Trial-ID", "Status", "Iteration", "Objective", *pcols]].itertuples(
        index=False, name=None
    )
    for tid, status, iteration, objective, *pvals in records:
        tid = int(tid)
        entry = info.get(tid)
        if entry is None:
            params = {}
            for k, v in zip(pcols, pvals, strict=True):
                v = _py(v)
                if not (isinstance(v, float) and math.isnan(v)):
                    params[k] = v
            entry = info[tid] = {"params": params, "curve": [], "status": RUNNING, "best": None}
        step = int(iteration)
        value = float(objective)
        if status == "INTERMEDIATE":
            entry["curve"].append((step, value))
        else:
            entry["status"] = str(status)
        entry["last"] = max(entry.get("last", step), step)
        if history.is_better(value, entry["best"]):
            entry["best"] = value
    for tid in range(1, max(info) + 1):
        entry = info.get(tid)
        if entry is None:
            history.trials.append(TrialView(number=tid, params={}, status=FAILED))
            continue
        view = TrialView(
            number=tid,
            params=entry["params"],
            status=entry["status"],
            objective=entry["best"],
            last_step=entry["last"],
        )
        history.trials.append(view)
        history.curves[tid] = entry["curve"]
        if view.status not in _FINISHED:
            history.active[tid] = view
    return history


_AGG_COLUMNS = ["Status", "Iteration", "Objective", "ObjectiveVar", "ObjectiveCount"]


def aggregate_results(
    results: pandas.DataFrame, parameters: Sequence[Parameter], min_count: int = 0
) -> pandas.DataFrame:
    """SHERPA's ``Repeat.aggregate_results``: group rows by parameter values.

    Finished rows are grouped by (parameters, Status), intermediate rows by (parameters,
    Status, Iteration). ``Objective`` is the group mean; ``ObjectiveVar``, ``ObjectiveCount``
    and ``ObjectiveStdErr`` (sqrt(var / (count - 1)), as SHERPA) are added; groups with fewer
    than ``min_count`` rows are dropped. Intermediate groups come first; the index is reset.
    """
    import numpy  # lazy: numpy is heavy, loaded on use
    import pandas  # lazy: pandas is heavy, loaded on use

    names = [p.name for p in parameters]
    empty = pandas.DataFrame(columns=[*names, *_AGG_COLUMNS, "ObjectiveStdErr"])
    if results is None or len(results) == 0:
        return empty

    def flatten(frame: pandas.DataFrame) -> pandas.DataFrame:
        frame.columns = ["".join(c.capitalize() for c in col) for col in frame.columns.values]
        frame = frame.reset_index()
        frame["ObjectiveStdErr"] = numpy.sqrt(frame["ObjectiveVar"] / (frame["ObjectiveCount"] - 1))
        return frame[frame["ObjectiveCount"] >= min_count]

    is_inter = results["Status"] == "INTERMEDIATE"
    parts = []
    inter = results[is_inter]
    if len(inter):
        agg = inter.groupby([*names, "Status", "Iteration"]).agg(
            {"Objective": ["mean", "var", "count"]}
        )
        parts.append(flatten(agg))
    done = results[~is_inter]
    if len(done):
        agg = done.groupby([*names, "Status"]).agg(
            {"Objective": ["mean", "var", "count"], "Iteration": "max"}
        )
        parts.append(flatten(agg).rename(columns={"IterationMax": "Iteration"}))
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty
    full = pandas.concat(parts, sort=False, ignore_index=True)
    full = full.rename(columns={"ObjectiveMean": "Objective"})
    return full[[*names, *_AGG_COLUMNS, "ObjectiveStdErr"]]


class LegacyAlgorithmSampler(Sampler):
    """Adapts an object with SHERPA's ``get_suggestion(parameters, results, lower_is_better)``.

    Each ``propose`` builds the results table (``results_frame``; with
    ``aggregate_min_count``, ``aggregate_results`` of it, as SHERPA's ``Repeat(agg=True)``)
    and maps the answer: a dict is the suggestion, ``'DONE'`` or ``None`` means exhausted,
    ``'WAIT'`` means retry later. ``Parameter.sample()`` called without a generator inside
    ``get_suggestion`` draws from the experiment's generator, so seeding still works.

    State: the algorithm is arbitrary user code and **cannot be serialised**. ``state_dict``
    only records how many suggestions it made; ``load_state_dict`` hands that number to the
    algorithm's SHERPA ``load(num_trials)`` hook (e.g. ``Iterate`` resumes its position).
    Anything else the algorithm keeps in memory starts afresh after a restart.
    """

    def __init__(self, algorithm: Any, aggregate_min_count: int | None = None) -> None:
        if not callable(getattr(algorithm, "get_suggestion", None)):
            raise ConfigError(
                f"{type(algorithm).__name__} has no get_suggestion(parameters, results, "
                f"lower_is_better) method; subclass ridgeline.algorithms.Algorithm and define it"
            )
        self.algorithm = algorithm
        self.aggregate_min_count = aggregate_min_count
        self.suggested = 0

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        results = results_frame(history, space.names)
        parameters = space.parameters
        if self.aggregate_min_count is not None:
            results = aggregate_results(results, parameters, self.aggregate_min_count)
        with bound_rng(rng):
            out = self.algorithm.get_suggestion(parameters, results, history.lower_is_better)
        if out is None or (isinstance(out, str) and out == "DONE"):
            return None
        if isinstance(out, str) and out == WAIT:
            return WAIT
        if isinstance(out, Mapping):
            self.suggested += 1
            return {str(k): _py(v) for k, v in out.items()}
        raise ConfigError(
            f"{type(self.algorithm).__name__}.get_suggestion returned {out!r}; it must return "
            f"a dict of parameter values, 'DONE'/None when finished, or 'WAIT'"
        )

    def state_dict(self) -> dict[str, Any]:
        return {"suggested": self.suggested}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.suggested = int(state.get("suggested", 0))
        load = getattr(self.algorithm, "load", None)
        if callable(load):
            load(self.suggested)
