"""MLflow runs per trial, logged by the coordinator from what trials report.

Each trial becomes one MLflow run (``trial_<number>``, tagged with the ridgeline experiment
and trial) in one MLflow experiment per search: its hyperparameters as params, every report
as metrics ``<group>/<name>`` at its step (``validation/objective`` for a SHERPA objective),
its end as the run's state (COMPLETED: FINISHED, FAILED: FAILED, STOPPED or CANCELED:
KILLED; the exact state in the ``ridgeline.state`` tag), and its best checkpoint (by the
searcher metric's validations; else its latest) as the ``best_checkpoint`` artifact folder.

Turned on by ``MLFLOW_TRACKING_URI`` in the coordinator's environment, or
``optimize(..., mlflow_tracking_uri=...)``. MLflow's file store (``file:...``) also needs
``MLFLOW_ALLOW_FILE_STORE=true`` since MLflow 3; ``sqlite:///mlflow.db`` needs nothing more.

Logging runs on a worker thread that follows the store by cursor
(``ridgeline.integrations.follow``): the coordinator's loop never waits on MLflow, and an
MLflow that fails or is away is named in the log and tried again later, never failing the
search. ``pip install 'ridgeline[mlflow]'`` (``mlflow-skinny`` is enough).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ridgeline.integrations.follow import POLL_SECONDS, StoreFollower, scalars
from ridgeline.paths import confined

STATE_FILE = ".ridgeline-mlflow.json"
ENV = "MLFLOW_TRACKING_URI"
_RUN_STATUS = {"COMPLETED": "FINISHED", "FAILED": "FAILED", "STOPPED": "KILLED"}
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


def tracking_uri(explicit: str | None = None) -> str | None:
    """The tracking URI to log to: ``explicit``, else ``MLFLOW_TRACKING_URI``; None: off."""
    return explicit or os.environ.get(ENV) or None


class MlflowExport(StoreFollower):
    """Trials as MLflow runs; see the module docstring."""

    name = "MLflow logging"

    def __init__(
        self,
        store: Any,
        experiment_id: int,
        output_dir: str | os.PathLike[str],
        uri: str,
        *,
        searcher_metric: str = "objective",
        smaller_is_better: bool = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        experiment_name: str | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        super().__init__(store, experiment_id, Path(output_dir) / STATE_FILE, poll_seconds)
        self.uri = uri
        self.searcher_metric = searcher_metric
        self.smaller_is_better = smaller_is_better
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.experiment_name = experiment_name
        self.state = {"runs": {}, "best": {}} | self.state
        self._client: Any = None
        self._mlflow_experiment: str | None = None
        self._pending: dict[str, list[Any]] = {}

    def open(self) -> None:
        from mlflow import MlflowClient  # lazy: optional extra (mlflow)

        self._client = MlflowClient(tracking_uri=self.uri)
        record = self.store.get_experiment(self.experiment_id)
        name = self.experiment_name or f"ridgeline {record.name} #{self.experiment_id}"
        found = self._client.get_experiment_by_name(name)
        self._mlflow_experiment = (
            found.experiment_id if found is not None else self._client.create_experiment(name)
        )

    def _run_id(self, number: int) -> str:
        return str(self.state["runs"][str(number)])

    def started(self, number: int, params: dict[str, Any], wall: float) -> None:
        if str(number) in self.state["runs"]:
            return  # made before a restart
        run = self._client.create_run(
            self._mlflow_experiment,
            start_time=int(wall * 1000),
            run_name=f"trial_{number}",
            tags={
                "ridgeline.experiment_id": str(self.experiment_id),
                "ridgeline.trial": str(number),
            },
        )
        self.state["runs"][str(number)] = run.info.run_id
        self._save()  # the run exists: never make it twice
        from mlflow.entities import Param  # lazy: optional extra (mlflow)

        plain = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for first in range(0, len(plain), 100):
            self._client.log_batch(run.info.run_id, params=plain[first : first + 100])

    def metric(
        self, number: int, group: str, step: int, values: dict[str, Any], wall: float
    ) -> None:
        from mlflow.entities import Metric  # lazy: optional extra (mlflow)

        value = values.get(self.searcher_metric)
        if group == "validation" and isinstance(value, int | float):
            self._track_best(number, float(value), step)
        stamp = int(wall * 1000)
        found = [Metric(k, v, stamp, step) for k, v in scalars(group, values).items()]
        self._pending.setdefault(self._run_id(number), []).extend(found)

    def _track_best(self, number: int, value: float, step: int) -> None:
        if value != value:  # NaN is never the best
            return
        best = self.state["best"].get(str(number))
        better = best is None or (value < best[0] if self.smaller_is_better else value > best[0])
        if better:
            self.state["best"][str(number)] = [value, step]

    def flush(self) -> None:
        for run_id, metrics in list(self._pending.items()):
            while metrics:
                self._client.log_batch(run_id, metrics=metrics[:_BATCH])
                del metrics[:_BATCH]
            del self._pending[run_id]

    def ended(self, number: int, trial_id: int, status: str) -> None:
        self.flush()
        run_id = self._run_id(number)
        uuid = self._log_best_checkpoint(number, trial_id, run_id)
        if uuid is not None:
            self._client.set_tag(run_id, "ridgeline.best_checkpoint", uuid)
        self._client.set_tag(run_id, "ridgeline.state", status)
        self._client.set_terminated(run_id, _RUN_STATUS.get(status, "KILLED"))

    def _log_best_checkpoint(self, number: int, trial_id: int, run_id: str) -> str | None:
        if self.checkpoint_dir is None:
            return None
        kept = [c for c in self.store.list_checkpoints(trial_id) if c.state == "COMPLETED"]
        if not kept:
            return None
        best = self.state["best"].get(str(number))
        at_best = [c for c in kept if best is not None and c.steps_completed == best[1]]
        chosen = (at_best or sorted(kept, key=lambda c: (c.steps_completed, c.created_at)))[-1]
        folder = confined(self.checkpoint_dir, chosen.uuid, what="checkpoint")
        if not folder.is_dir():
            return None  # removed by the retention policy meanwhile
        self._client.log_artifacts(run_id, str(folder), artifact_path="best_checkpoint")
        return str(chosen.uuid)


__all__ = ["ENV", "MlflowExport", "tracking_uri"]
