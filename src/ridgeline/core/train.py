"""``TrainContext``: training and validation metrics, progress, early exit."""

from __future__ import annotations

import enum
import logging
import math
import os
import pathlib
import tempfile
from typing import TYPE_CHECKING, Any

from ridgeline.trial import env

if TYPE_CHECKING:
    import pathlib

    from ridgeline.core.distributed import DistributedContext
    from ridgeline.trial.client import TrialClient

log = logging.getLogger("ridgeline.core")


class EarlyExitReason(enum.Enum):
    INVALID_HP = "EXITED_REASON_INVALID_HP"
    USER_REQUESTED_STOP = "EXITED_REASON_USER_REQUESTED_STOP"


def _plain_metrics(group: str, metrics: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(metrics, dict):
        raise TypeError(f"{group} metrics must be a dict of name -> value, got {metrics!r}")
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, bytes | bytearray):
            continue  # Determined drops bytes values
        if value is None and group == "validation":
            raise RuntimeError(f"validation metric {name!r} is None; report a number")
        item = getattr(value, "item", None)
        out[str(name)] = item() if callable(item) else value
    return out


class TrainContext:
    """Metrics and progress go to the coordinator from the chief only: a distributed trial
    is one trial, and its workers reporting too would record every value several times."""

    def __init__(
        self, client: TrialClient | None, distributed: DistributedContext | None = None
    ) -> None:
        self._client = client
        self._rank = 0 if distributed is None else distributed.rank
        self._exited = False

    def _only_chief(self, call: str) -> None:
        if self._rank != 0:
            raise RuntimeError(
                f"train.{call}() was called on a worker (rank {self._rank}): only the chief "
                "(distributed.rank == 0) reports; wrap the call in "
                "`if core_context.distributed.rank == 0:`"
            )

    def report_metrics(self, group: str, steps_completed: int, metrics: dict[str, Any]) -> None:
        self._only_chief("report_metrics")
        if "." in group or not group:
            raise ValueError(f"metric group {group!r} must be a non-empty name without '.'")
        values = _plain_metrics(group, metrics)
        if self._client is None:
            log.info("%s metrics at %s: %s", group, steps_completed, values)
            return
        self._client.report_group(group, int(steps_completed), values)

    def report_training_metrics(
        self,
        steps_completed: int,
        metrics: dict[str, Any],
        batch_metrics: list[dict[str, Any]] | None = None,
    ) -> None:
        self.report_metrics("training", steps_completed, metrics)

    def report_validation_metrics(self, steps_completed: int, metrics: dict[str, Any]) -> None:
        self.report_metrics("validation", steps_completed, metrics)

    def report_progress(self, progress: float) -> None:
        if not 0 <= progress <= 1 or math.isnan(progress):
            raise ValueError(f"progress must be between 0 and 1, got {progress}")
        self._only_chief("report_progress")
        if self._client is not None:
            self._client.report_progress(fraction=float(progress))

    def report_early_exit(self, reason: EarlyExitReason) -> None:
        if self._exited:
            raise RuntimeError("report_early_exit() may be called only once")
        self._only_chief("report_early_exit")
        self._exited = True
        if self._client is not None:
            self._client.early_exit(EarlyExitReason(reason).name)

    def get_experiment_best_validation(self) -> float | None:
        return None if self._client is None else self._client.best_validation()

    def get_tensorboard_path(self) -> pathlib.Path:
        """This trial's TensorBoard run folder (``<experiment output>/tensorboard/trial_<n>``,
        on the shared filesystem, so nothing is uploaded): files written here, e.g. by a
        ``SummaryWriter``, show in the same run as the metrics ridgeline exports. Off-cluster,
        a folder under the system's temporary directory, as in Determined."""
        where = os.environ.get(env.TENSORBOARD_PATH)
        if not where:
            where = os.path.join(tempfile.gettempdir(), f"ridgeline-tensorboard-{os.getpid()}")
        path = pathlib.Path(where)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def set_status(self, status: str) -> None:
        log.info("trial status: %s", status)
