"""PyTorch Lightning callbacks for both doors. Lightning is imported only when one is made.

- ``MetricsCallback(client, trial, objective="val_loss")``: the SHERPA door (a ``Client`` in a
  trial script, or an in-process ``Study``). Each epoch's validation metrics become an
  observation at ``iteration = epoch``; when a stopping rule ends the trial, training stops
  after that epoch (``trainer.should_stop``), so the fit ends normally. (A runner search
  stops trial processes as SHERPA does, with SIGTERM at once; Lightning's own handler turns
  that into a clean exit at the next batch, exit status 0.)
- ``CoreCallback(core_context, searcher_metric="val_loss")``: the Core-API door. The searcher's
  operations say how many epochs to train (lengths in epochs, absolute): the callback sets
  ``max_epochs`` to each operation's length, reports every epoch's metrics (names starting
  with ``val`` as validation metrics, the others as training metrics), checkpoints through the
  checkpoint context and completes the operation when its length is reached; when the trial is
  paused or stopped (``preempt.should_preempt()``) it checkpoints first, then stops. Pass
  ``ckpt_path=callback.restore(info.latest_checkpoint)`` to ``trainer.fit`` to carry on from
  the latest checkpoint after a pause or a restart.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ridgeline.errors import ObservationError

CHECKPOINT_FILE = "lightning.ckpt"


def _lightning() -> Any:
    """``lightning.pytorch``, or the older standalone ``pytorch_lightning``."""
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(
        "the Lightning callbacks need PyTorch Lightning: pip install 'ridgeline[lightning]'"
    )


def _scalars(trainer: Any) -> dict[str, float]:
    """The epoch's logged metrics as plain floats (tensors of one value)."""
    out: dict[str, float] = {}
    for name, value in trainer.callback_metrics.items():
        item = getattr(value, "item", None)
        try:
            out[str(name)] = float(item() if callable(item) else value)
        except (TypeError, ValueError, RuntimeError):
            continue  # not a scalar: nothing a searcher can compare
    return out


def _metric(metrics: dict[str, float], name: str, epoch: int) -> float:
    if name not in metrics:
        raise ObservationError(
            f"no {name!r} was logged by epoch {epoch}; log it with self.log({name!r}, ...) in "
            f"validation_step (available: {', '.join(sorted(metrics)) or 'none'})"
        )
    return metrics[name]


def MetricsCallback(
    client: Any, trial: Any, objective: str = "val_loss", context: Sequence[str] = ()
) -> Any:
    """A Lightning callback sending ``objective`` (and ``context`` metrics) at each epoch end
    through ``client`` (a SHERPA ``Client`` or a ``Study``), stopping once the trial is told
    to stop."""
    pl = _lightning()
    if hasattr(client, "send_metrics"):
        send: Callable[..., None] = client.send_metrics
        stop: Callable[[], bool] = client.should_stop
    elif hasattr(client, "add_observation"):
        send = client.add_observation

        def stop() -> bool:
            return bool(client.should_trial_stop(trial))
    else:
        raise TypeError(f"client must be a ridgeline Client or Study, got {client!r}")

    base: Any = pl.Callback

    class _Metrics(base):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            epoch = int(trainer.current_epoch)
            metrics = _scalars(trainer)
            send(
                trial=trial,
                iteration=epoch,
                objective=_metric(metrics, objective, epoch),
                context={n: _metric(metrics, n, epoch) for n in context},
            )
            if stop():
                trainer.should_stop = True

    return _Metrics()


def CoreCallback(
    core_context: Any, searcher_metric: str = "val_loss", time_metric: str | None = None
) -> Any:
    """A Lightning callback driven by the Core API's searcher, checkpoint and preempt
    contexts; see the module's docstring. ``time_metric`` (Determined 0.38's ASHA with
    ``time_metric: epochs``) adds the epochs trained to every validation under that name."""
    pl = _lightning()

    base: Any = pl.Callback

    class _Core(base):
        def __init__(self) -> None:
            self._ops: Iterator[Any] | None = None
            self._op: Any = None
            self._saved_at = -1
            self._scratch: tempfile.TemporaryDirectory[str] | None = None
            self._restored_metric: float | None = None

        def restore(self, latest_checkpoint: str | None) -> str | None:
            """The Lightning checkpoint file of ``latest_checkpoint`` (a storage id), for
            ``trainer.fit(..., ckpt_path=...)``; None to start from scratch."""
            if latest_checkpoint is None:
                return None
            self._scratch = tempfile.TemporaryDirectory(prefix="ridgeline-ckpt-")
            core_context.checkpoint.download(latest_checkpoint, self._scratch.name)
            metadata = core_context.checkpoint.get_metadata(latest_checkpoint)
            self._restored_metric = metadata.get("searcher_metric")
            path = Path(self._scratch.name) / CHECKPOINT_FILE
            if not path.is_file():
                raise FileNotFoundError(
                    f"checkpoint {latest_checkpoint} has no {CHECKPOINT_FILE}; it was not "
                    "saved by CoreCallback"
                )
            return str(path)

        def _next_op(self, trainer: Any) -> None:
            assert self._ops is not None
            self._op = next(self._ops, None)  # waits for the searcher's decision
            if self._op is None:
                trainer.should_stop = True
            else:
                trainer.fit_loop.max_epochs = int(self._op.length)

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            self._ops = iter(core_context.searcher.operations())
            self._next_op(trainer)

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            done = int(trainer.current_epoch)  # after a restore: the epochs already trained
            while self._op is not None and done >= self._op.length:
                # trained that far before a restart: the checkpoint kept the metric
                if self._restored_metric is None:
                    raise RuntimeError(
                        f"the checkpoint holds {done} epochs, the operation asks for "
                        f"{self._op.length}, and it records no {searcher_metric!r} to report"
                    )
                self._op.report_completed(self._restored_metric)
                self._next_op(trainer)

        def _save(self, trainer: Any, epochs: int, metric: float | None) -> None:
            if self._saved_at == epochs:
                return
            metadata: dict[str, Any] = {"steps_completed": epochs, "framework": "lightning"}
            if metric is not None:
                metadata["searcher_metric"] = metric
            with core_context.checkpoint.store_path(metadata) as (path, _uuid):
                trainer.save_checkpoint(str(Path(path) / CHECKPOINT_FILE))
            self._saved_at = epochs

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self._op is None:
                return
            epochs = int(trainer.current_epoch) + 1
            metrics = _scalars(trainer)
            validation = {k: v for k, v in metrics.items() if k.startswith("val")}
            if time_metric is not None and validation:
                validation[time_metric] = epochs
            training = {k: v for k, v in metrics.items() if not k.startswith("val")}
            if training:
                core_context.train.report_training_metrics(epochs, training)
            if validation:
                core_context.train.report_validation_metrics(epochs, validation)
            self._op.report_progress(min(epochs, self._op.length))
            if epochs >= self._op.length:
                value = _metric(validation, searcher_metric, epochs - 1)
                self._save(trainer, epochs, value)
                self._op.report_completed(value)
                self._next_op(trainer)
            if self._op is not None and core_context.preempt.should_preempt():
                # paused or stopped: keep the state, then end the fit after this epoch
                self._save(trainer, epochs, validation.get(searcher_metric))
                trainer.should_stop = True
                self._op = None

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None

    return _Core()


__all__ = ["CHECKPOINT_FILE", "CoreCallback", "MetricsCallback"]
