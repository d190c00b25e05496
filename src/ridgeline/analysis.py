"""A finished (or running) search as data: ``ridgeline.load(...)`` and its DataFrames.

One object answers the questions people ask after a search (which trial won, how did each
learn, what did the searcher stop) for both doors: SHERPA-style searches keep the searcher's
input as ``objective`` in the ``validation`` group; Core-API experiments keep it in the
``searcher`` group and mirror it, under the searcher's metric name, into ``validation``.
pandas is imported only when a DataFrame is asked for.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.engine.progress import length_unit
from ridgeline.paths import default_storage
from ridgeline.space import Constant, Continuous, Discrete
from ridgeline.store import open_store
from ridgeline.store.records import (
    COMPLETED,
    PAUSED,
    RUNNING,
    STOPPED,
    TRIAL_DONE_STATES,
    CheckpointRecord,
    EventRecord,
    ExperimentRecord,
    MetricRecord,
    TrialRecord,
)

if TYPE_CHECKING:
    import pandas as pd

    from ridgeline.space import SearchSpace
    from ridgeline.store.base import Store

OBJECTIVE = "objective"
SEARCHER_GROUPS = ("searcher", "validation")
#: The file a SHERPA-style ``output_dir`` keeps its store in.
OUTPUT_STORE = "ridgeline.db"


def searcher_value(metric: MetricRecord, metric_name: str | None) -> float | None:
    """The searcher's input carried by one report, or None when it carries none."""
    if metric.group in SEARCHER_GROUPS and OBJECTIVE in metric.values:
        value = metric.values[OBJECTIVE]
    elif metric.group == "validation" and metric_name and metric_name in metric.values:
        value = metric.values[metric_name]
    else:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and not math.isinf(value)


@dataclass(frozen=True)
class TrialSummary:
    """One trial as the analysis sees it: its record and what its reports add up to."""

    record: TrialRecord
    best: float | None  # best finite searcher value, None when it reported none
    last: float | None  # the searcher value at its highest step
    steps: int  # highest step the searcher saw (0 when none)
    reports: int  # number of searcher reports
    stop_reason: str | None  # why the searcher or a person asked it to stop, when they did


class Analysis:
    """Read-only view of one experiment in a store. Cheap to build; reads on first use and
    again after ``refresh()`` (a running search keeps adding rows)."""

    def __init__(
        self,
        store: Store,
        experiment_id: int,
        owns_store: bool = False,
        space: SearchSpace | None = None,
    ) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self._owns_store = owns_store
        self._space = space  # a Study's own space: scales and choices the store does not keep

    # -- what the experiment is --------------------------------------------------------------
    @cached_property
    def experiment(self) -> ExperimentRecord:
        return self.store.get_experiment(self.experiment_id)

    @property
    def raw_config(self) -> dict[str, Any]:
        return dict(self.experiment.config.get("raw") or {})

    @property
    def metric_name(self) -> str:
        """The searcher's metric: the Core-API YAML's ``searcher.metric``, else ``objective``."""
        return str((self.raw_config.get("searcher") or {}).get("metric") or OBJECTIVE)

    @property
    def smaller_is_better(self) -> bool:
        searcher = self.raw_config.get("searcher") or {}
        if "smaller_is_better" in searcher:
            return bool(searcher["smaller_is_better"])
        return bool(self.experiment.config.get("lower_is_better", True))

    @property
    def searcher_config(self) -> dict[str, Any]:
        """The Core-API ``searcher:`` mapping with its defaults; ``{}`` for SHERPA searches."""
        return dict(self.raw_config.get("searcher") or {})

    @property
    def length_unit(self) -> str:
        """What a step counts: the searcher's length unit (``batches``, ``epochs``,
        ``records``) when the config names one, ``steps`` (the script's own) for a Core-API
        length without a unit, ``iterations`` (SHERPA's word) for SHERPA searches."""
        return length_unit(self.searcher_config)

    def searcher_state(self) -> dict[str, Any]:
        """The searcher's last saved state (rungs, promotions, brackets); ``{}`` when the
        store keeps none (an in-memory Study)."""
        state = self.store.load_searcher_state(self.experiment_id) or {}
        return dict(state.get("searcher") or {})

    @cached_property
    def param_specs(self) -> list[ParamSpec]:
        """Each hyperparameter's kind and scale: from the Study's space or the experiment's
        ``hyperparameters:`` when known, else inferred from the values trials had."""
        declared: dict[str, ParamSpec] = {}
        if self._space is not None:
            declared = {p.name: _spec_of_parameter(p) for p in self._space.parameters}
        else:
            _specs_of_config(self.raw_config.get("hyperparameters") or {}, "", declared)
        out = []
        for name in self.param_names:
            spec = declared.get(name)
            out.append(spec if spec is not None else _inferred_spec(name, self.trials))
        return out

    def better(self, a: float, b: float) -> bool:
        return a < b if self.smaller_is_better else a > b

    # -- raw records, read once --------------------------------------------------------------
    @cached_property
    def trials(self) -> list[TrialRecord]:
        return self.store.list_trials(self.experiment_id)

    @cached_property
    def metrics(self) -> list[MetricRecord]:
        return self.store.read_metrics(self.experiment_id)

    @cached_property
    def events(self) -> list[EventRecord]:
        return self.store.read_events(self.experiment_id)

    def checkpoints(self, trial: TrialRecord) -> list[CheckpointRecord]:
        return self.store.list_checkpoints(trial.id)

    def refresh(self) -> Analysis:
        """Forget what was read, so the next question sees the store as it is now."""
        for name in (
            "experiment",
            "trials",
            "metrics",
            "events",
            "summaries",
            "searcher_reports",
            "curves",
            "param_specs",
        ):
            self.__dict__.pop(name, None)
        return self

    @property
    def param_names(self) -> list[str]:
        """Hyperparameter names in first-seen order across trials."""
        names: dict[str, None] = {}
        for trial in self.trials:
            names.update(dict.fromkeys(trial.params))
        return list(names)

    # -- summaries ---------------------------------------------------------------------------
    @cached_property
    def searcher_reports(self) -> dict[int, list[tuple[int, int, float]]]:
        """Per trial id, ``(seq, step, value)`` of each searcher report in stored order. Core
        API trials keep them in the ``searcher`` group and a mirror in ``validation``: when a
        trial has the former, only those count."""
        metric = self.metric_name
        found: dict[int, dict[str, list[tuple[int, int, float]]]] = {}
        # One pass over every report, inlined (``searcher_value`` per report costs a
        # second on a million reports).
        for record in self.metrics:
            group = record.group
            if group not in SEARCHER_GROUPS:
                continue
            values = record.values
            if OBJECTIVE in values:
                value = values[OBJECTIVE]
            elif group == "validation" and metric in values:
                value = values[metric]
            else:
                continue
            kind = type(value)
            if kind is not float and kind is not int:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
            groups = found.get(record.trial_id)
            if groups is None:
                groups = found[record.trial_id] = {}
            reports = groups.get(group)
            if reports is None:
                reports = groups[group] = []
            reports.append((record.seq, record.step, float(value)))
        return {
            trial: groups.get("searcher") or groups.get("validation") or []
            for trial, groups in found.items()
        }

    @cached_property
    def summaries(self) -> list[TrialSummary]:
        reasons: dict[int, str] = {}
        for event in self.events:
            if event.kind == "stop_requested" and "trial" in event.data:
                reasons[int(event.data["trial"])] = str(event.data.get("reason") or "stopped")
        out = []
        pick = min if self.smaller_is_better else max
        curves = self.curves
        for trial in self.trials:
            steps, values = curves.get(trial.id, ((), ()))
            good = list(values)
            if not math.isfinite(math.fsum(good)):  # a finite sum: every value is finite
                good = [v for v in good if finite(v)]
            out.append(
                TrialSummary(
                    record=trial,
                    best=pick(good) if good else None,
                    last=values[-1] if values else None,
                    steps=steps[-1] if steps else 0,
                    reports=len(steps),
                    stop_reason=reasons.get(trial.number),
                )
            )
        return out

    @cached_property
    def curves(self) -> dict[int, tuple[list[int], list[float]]]:
        """Per trial id, its searcher metric as ``(steps, values)`` by increasing step; when
        a step was reported twice (a restarted trial), the later report counts."""
        out = {}
        for trial, reports in self.searcher_reports.items():
            if not reports:
                continue
            _, step_tuple, value_tuple = zip(*reports, strict=True)
            steps, values = list(step_tuple), list(value_tuple)
            if steps != sorted(set(steps)):
                per_step = {r[1]: r[2] for r in reports}
                steps = sorted(per_step)
                values = [per_step[s] for s in steps]
            out[trial] = (steps, values)
        return out

    def best_trial(self) -> TrialSummary | None:
        """The trial with the best finite searcher value among those that did not fail: a
        failed trial's numbers are never called the best."""
        best: TrialSummary | None = None
        for summary in self.summaries:
            if summary.best is None or summary.record.state not in _MAY_WIN:
                continue
            if best is None or self.better(summary.best, best.best):  # type: ignore[arg-type]
                best = summary
        return best

    # -- DataFrames --------------------------------------------------------------------------
    def trials_dataframe(self) -> pd.DataFrame:
        """One row per trial: ``number``, ``trial_id``, ``state``, one ``params_<name>`` column
        per hyperparameter, ``best``/``last`` searcher value, ``steps``, ``reports``,
        ``started``/``ended`` timestamps, ``duration`` (seconds; until now when running),
        ``stop_reason``, ``restarts``, ``exit_code``, ``parent`` (PBT: the trial it was cloned
        from)."""
        import pandas as pd  # lazy: pandas is heavy, loaded on use

        numbers = {t.id: t.number for t in self.trials}
        names = self.param_names
        now = time.time()
        rows = []
        for s in self.summaries:
            t = s.record
            ended = t.ended_at if t.state in TRIAL_DONE_STATES else None
            row: dict[str, Any] = {"number": t.number, "trial_id": t.id, "state": str(t.state)}
            row.update({f"params_{n}": t.params.get(n) for n in names})
            row.update(
                best=s.best,
                last=s.last,
                steps=s.steps,
                reports=s.reports,
                started=pd.Timestamp(t.created_at, unit="s"),
                ended=pd.Timestamp(ended, unit="s") if ended else pd.NaT,
                duration=(ended or now) - t.created_at,
                stop_reason=s.stop_reason,
                restarts=t.restarts,
                exit_code=t.exit_code,
                parent=numbers.get(t.parent_id) if t.parent_id else None,
            )
            rows.append(row)
        columns = ["number", "trial_id", "state", *(f"params_{n}" for n in names)]
        columns += ["best", "last", "steps", "reports", "started", "ended", "duration"]
        columns += ["stop_reason", "restarts", "exit_code", "parent"]
        return pd.DataFrame(rows, columns=columns)

    def metrics_dataframe(self) -> pd.DataFrame:
        """Every report in long form: ``number``, ``group``, ``step``, ``name``, ``value``,
        ``time`` (one row per value of a report, in the order they were stored)."""
        import pandas as pd  # lazy: pandas is heavy, loaded on use

        numbers = {t.id: t.number for t in self.trials}
        rows = [
            (numbers.get(m.trial_id), m.group, m.step, name, value, m.time)
            for m in self.metrics
            for name, value in m.values.items()
        ]
        frame = pd.DataFrame(rows, columns=["number", "group", "step", "name", "value", "time"])
        frame["time"] = pd.to_datetime(frame["time"], unit="s")
        return frame

    def history(self) -> list[tuple[int, int, float]]:
        """``(seq, trial number, value)`` of every finite searcher report, in stored order: the
        optimisation history that best-so-far curves are drawn from."""
        numbers = {t.id: t.number for t in self.trials}
        out = [
            (seq, numbers[trial_id], value)
            for trial_id, reports in self.searcher_reports.items()
            for seq, _, value in reports
            if finite(value)
        ]
        return sorted(out)

    def close(self) -> None:
        """Close the store when ``load`` opened it."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Analysis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Analysis experiment={self.experiment_id} trials={len(self.trials)}>"


_MAY_WIN = frozenset({COMPLETED, STOPPED, RUNNING, PAUSED})


def may_win(state: str) -> bool:
    """Whether a trial in ``state`` may be called the best (a failed one never is)."""
    return state in _MAY_WIN


@dataclass(frozen=True)
class ParamSpec:
    """How to show one hyperparameter: ``kind`` is ``float``, ``int``, ``categorical`` or
    ``constant``; ``log`` for log-scaled ranges; ``choices`` for categorical ones;
    ``declared`` is False when the kind was inferred from values (SHERPA output folders keep
    no scales)."""

    name: str
    kind: str
    log: bool = False
    choices: tuple[Any, ...] = ()
    declared: bool = True


def _spec_of_parameter(parameter: Any) -> ParamSpec:
    log = getattr(parameter, "scale", "linear") == "log"
    if isinstance(parameter, Continuous):
        return ParamSpec(parameter.name, "float", log)
    if isinstance(parameter, Discrete):
        return ParamSpec(parameter.name, "int", log)
    if isinstance(parameter, Constant):
        return ParamSpec(parameter.name, "constant", choices=(parameter.range[0],))
    return ParamSpec(parameter.name, "categorical", choices=tuple(parameter.range))


_CONFIG_KINDS = {"double": "float", "log": "float", "int": "int", "categorical": "categorical"}


def _specs_of_config(group: dict[str, Any], prefix: str, out: dict[str, ParamSpec]) -> None:
    """Determined's ``hyperparameters:`` (nested groups are dotted names in trials)."""
    for key, value in group.items():
        name = prefix + str(key)
        if isinstance(value, dict) and "type" in value:
            kind = _CONFIG_KINDS.get(str(value["type"]), "constant")
            choices = tuple(value.get("vals") or ()) if kind == "categorical" else ()
            out[name] = ParamSpec(name, kind, value["type"] == "log", choices)
        elif isinstance(value, dict) and value:
            _specs_of_config(value, name + ".", out)
        else:
            out[name] = ParamSpec(name, "constant", choices=(value,))


def _inferred_spec(name: str, trials: list[TrialRecord]) -> ParamSpec:
    """A kind from the values seen: numbers that span three decades or more, all positive,
    are shown on a log axis (how log-uniform draws look); anything else non-numeric is a
    category."""
    values = [t.params[name] for t in trials if name in t.params]
    numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not values or len(numeric) < len(values):
        choices = tuple(dict.fromkeys(_hashable(v) for v in values))
        return ParamSpec(name, "categorical", choices=choices, declared=False)
    kind = "int" if all(isinstance(v, int) for v in numeric) else "float"
    low, high = min(numeric), max(numeric)
    log = low > 0 and high / low >= 1000
    if low == high:
        return ParamSpec(name, "constant", choices=(low,), declared=False)
    return ParamSpec(name, kind, log, declared=False)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def load(
    source: int | str | os.PathLike[str] | Any, storage: str | os.PathLike[str] | None = None
) -> Analysis:
    """The search ``source`` names, ready for analysis:

    * an experiment id (``int``): that experiment in ``storage`` (default: the user's store,
      as the CLI's ``--storage`` / ``$RIDGELINE_STORAGE``);
    * an output folder (SHERPA's ``output_dir``) or an SQLite file: its newest experiment;
    * a ``ridgeline.Study``: the study's own store and experiment, live;
    * an ``Analysis``: itself.
    """
    if isinstance(source, Analysis):
        return source
    engine = getattr(source, "_engine", None)
    if engine is not None and hasattr(engine, "store"):
        return Analysis(engine.store, engine.experiment_id, space=getattr(engine, "space", None))
    if isinstance(source, bool):
        raise TypeError("load() takes an experiment id, an output folder or a Study, not a bool")
    if isinstance(source, int):
        url = default_storage(None if storage is None else str(storage))
        _must_exist(url)
        store = open_store(url)
        try:
            store.get_experiment(source)
        except Exception:
            store.close()
            raise
        return Analysis(store, source, owns_store=True)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        target = path / OUTPUT_STORE if path.is_dir() else path
        if not target.is_file():
            raise FileNotFoundError(
                f"{path}: no ridgeline store here (expected an output folder with "
                f"{OUTPUT_STORE} or an SQLite file)"
            )
        store = open_store(str(target))
        experiments = store.list_experiments()
        if not experiments:
            store.close()
            raise LookupError(f"{target}: the store holds no experiment")
        return Analysis(store, max(e.id for e in experiments), owns_store=True)
    raise TypeError(
        f"load() takes an experiment id, an output folder or a Study, not {type(source).__name__}"
    )


def _must_exist(target: str) -> None:
    """Reading never creates a store: an SQLite file that is not there is an error (opening
    it would leave an empty database behind)."""
    from ridgeline.store.files import sqlite_path  # lazy: ridgeline.store.files loads sqlalchemy

    path = sqlite_path(target) if "://" in target else Path(target)
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"{path}: no ridgeline store here (nothing was created)")
