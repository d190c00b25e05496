"""SHERPA's trial-side ``Client``: ``get_trial()`` and ``send_metrics()`` over HTTP."""

from __future__ import annotations

import os

from ridgeline.trial import env
from ridgeline.trial.client import TrialClient
from ridgeline.trial.records import Trial
from ridgeline.values import check_iteration, check_objective

TYPE_CHECKING = False  # keep typing out of trial processes' start-up
if TYPE_CHECKING:
    from typing import Any


class Client:
    """Used inside a trial script: ``trial = Client().get_trial()``.

    ``host``/``port`` override the coordinator address (SHERPA's database host and port);
    ``test_mode=True`` returns ``Trial(1, {})`` and checks but does not send metrics, for
    running a trial script by hand.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        test_mode: bool = False,
        **kwargs: Any,
    ) -> None:
        self.test_mode = test_mode
        self._client: TrialClient | None = None
        if test_mode:
            return
        master = None
        if host or port:
            host = host or os.environ.get(env.SHERPA_DB_HOST, "127.0.0.1")
            port = port or int(os.environ.get(env.SHERPA_DB_PORT, "0"))
            tls = os.environ.get(env.MASTER, "").startswith("https://")  # keep the scheme
            master = f"{'https' if tls else 'http'}://{host}:{port}"
        self._client = TrialClient(master=master, **kwargs)

    def get_trial(self) -> Trial:
        if self._client is None:
            return Trial(1, {})
        record = self._client.get_trial()
        return Trial(int(record["id"]), dict(record["parameters"]))

    def send_metrics(
        self,
        trial: Trial,
        iteration: int,
        objective: float,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Record ``objective`` at ``iteration``; returns once the coordinator stored it."""
        where = f"send_metrics(trial={getattr(trial, 'id', trial)}, iteration={iteration!r})"
        value = check_objective(objective, where)
        step = check_iteration(iteration, where)
        if self._client is None:
            return
        self._client.report([{"step": step, "objective": value, "context": dict(context or {})}])

    def should_stop(self) -> bool:
        """True once a stopping rule ended this trial: save what you need and exit."""
        return self._client.should_stop() if self._client is not None else False

    def keras_send_metrics(
        self, trial: Trial, objective_name: str, context_names: list[str] | None = None
    ) -> Any:
        """A Keras callback sending ``logs[objective_name]`` at each epoch end (0-based)."""
        # lazy: keeps trial processes light
        from ridgeline.integrations.keras import metrics_callback

        return metrics_callback(self.send_metrics, trial, objective_name, context_names or [])
