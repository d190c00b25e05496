"""YAML experiment configs (Determined's format): parse, validate, fill defaults, explain errors.

``load_config("cfg.yaml", ["searcher.max_trials=5"])`` reads a file; ``parse_config(mapping)``
validates data already loaded. Every problem in a config is reported at once in one
``InvalidConfig`` (a ``ridgeline.errors.ConfigError``), each line ``key.path: what is wrong
(got X); fix``. Determined keys that do nothing here are accepted with a ``ConfigWarning``
(cluster settings) or ``DeprecatedConfigWarning`` (deprecated Determined settings).

This package imports PyYAML; ``import ridgeline`` does not import it.
"""

from __future__ import annotations

from ridgeline.config.checks import InvalidConfig
from ridgeline.config.hyperparameters import nest_params
from ridgeline.config.model import (
    CheckpointStorageConfig,
    ConfigWarning,
    DeprecatedConfigWarning,
    ExperimentConfig,
    SearcherConfig,
)
from ridgeline.config.parse import describe_search, grid_points, load_config, parse_config
from ridgeline.config.searcher import LENGTH_UNITS, REMOVED, SEARCHERS

__all__ = [
    "LENGTH_UNITS",
    "REMOVED",
    "SEARCHERS",
    "CheckpointStorageConfig",
    "ConfigWarning",
    "DeprecatedConfigWarning",
    "ExperimentConfig",
    "InvalidConfig",
    "SearcherConfig",
    "describe_search",
    "grid_points",
    "load_config",
    "nest_params",
    "parse_config",
]
