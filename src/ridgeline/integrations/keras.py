"""Keras callbacks. Keras is imported only when a callback is made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ridgeline.errors import ObservationError


def metrics_callback(
    send: Callable[..., None], trial: Any, objective_name: str, context_names: list[str]
) -> Any:
    """A ``LambdaCallback`` calling ``send(trial, iteration=epoch, objective, context)``."""
    import keras  # lazy: optional extra (keras)

    def on_epoch_end(epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        missing = [n for n in (objective_name, *context_names) if n not in logs]
        if missing:
            raise ObservationError(
                f"Keras logs have no {', '.join(map(repr, missing))} at epoch {epoch}; "
                f"available: {', '.join(sorted(logs))}"
            )
        send(
            trial=trial,
            iteration=epoch,
            objective=logs[objective_name],
            context={n: logs[n] for n in context_names},
        )

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)
