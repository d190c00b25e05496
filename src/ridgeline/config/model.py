"""The parsed experiment config: frozen records the runner, CLI and searchers read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ridgeline.space import SearchSpace

__all__ = [
    "CheckpointStorageConfig",
    "ConfigWarning",
    "DeprecatedConfigWarning",
    "ExperimentConfig",
    "SearcherConfig",
]


class ConfigWarning(UserWarning):
    """A config key that is accepted for compatibility with Determined but has no effect."""


class DeprecatedConfigWarning(ConfigWarning, FutureWarning):
    """A config key that Determined itself deprecated or removed; it is ignored.

    A ``FutureWarning`` (shown by default), not a ``DeprecationWarning`` (hidden by default
    outside ``__main__``): the people who should see it are config authors, not developers.
    """


@dataclass(frozen=True)
class SearcherConfig:
    """``searcher:`` with Determined's defaults filled in.

    ``max_length`` is the training length in ``length_unit`` (``batches``/``epochs``/``records``
    from the one-key form, or None for a plain integer); None when the config gives none
    (Determined 0.38 style: the script decides). ``max_concurrent_trials`` 0 means unlimited.
    ``options`` holds the searcher-specific fields (``divisor``, ``max_rungs``, ``mode``,
    ``bracket_rungs``, ``stop_once``, ``num_rungs``, ``time_metric``, ``max_time``, ...);
    the searcher's spec (``ridgeline.config.searcher``) reads them as its typed ``Options``.
    ``concurrency_given`` is False when the config set no ``max_concurrent_trials`` (the
    default 16 then shapes the searcher's plan, and a CPU-only machine lowers how many trial
    processes run at once to its cores).
    """

    name: str
    metric: str
    smaller_is_better: bool = True
    max_length: int | None = None
    length_unit: str | None = None
    max_trials: int | None = None
    max_concurrent_trials: int = 16
    source_trial_id: int | None = None
    source_checkpoint_uuid: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    concurrency_given: bool = True


@dataclass(frozen=True)
class CheckpointStorageConfig:
    """Where checkpoints go (an absolute directory) and how many are kept."""

    path: str
    save_experiment_best: int = 0
    save_trial_best: int = 1
    save_trial_latest: int = 1
    type: str = "shared_fs"


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment config.

    ``hyperparameters`` is the nested mapping as written (log ``base`` filled in); ``space``
    is its flattened search space (nested groups as dotted names ``a.b``, plain values as
    ``Constant``); ``raw`` is the whole validated mapping with defaults filled in and
    checkpoint paths made absolute: JSON data that ``parse_config`` turns back into an equal
    config. ``environment_variables`` maps each device to its variables.
    """

    name: str
    description: str
    entrypoint: list[str]
    hyperparameters: dict[str, Any]
    space: SearchSpace = field(compare=False, repr=False)
    searcher: SearcherConfig
    max_restarts: int = 5
    max_consecutive_failures: int = 10
    checkpoint_storage: CheckpointStorageConfig | None = None
    slots_per_trial: int = 1
    experiment_seed: int | None = None
    data: Any = None
    environment_variables: dict[str, dict[str, str | None]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def environment_for(self, device: str) -> dict[str, str | None]:
        """The ``environment.environment_variables`` of a trial that runs on ``device``
        (``cpu``, ``cuda`` or ``rocm``): a plain list applies to every device; None unsets."""
        return dict(self.environment_variables.get(device, {}))
