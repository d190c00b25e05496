"""Samplers by name, as both doors build them: ``random``, or a model (GP, TPE, or the one
picked for the budget). Model modules load on first use: they import NumPy and SciPy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # config validation reads SAMPLERS without loading any sampler
    from ridgeline.samplers.base import Sampler

__all__ = ["MODEL_KINDS", "SAMPLERS", "model_sampler", "sampler_for"]

#: Names a config may give a sampler (tpe under ASHA or Hyperband is BOHB).
SAMPLERS = ("random", "tpe", "bayesian", "auto")
#: The model each model-based name stands for.
MODEL_KINDS = {"bayesian": "gp", "tpe": "tpe", "auto": "auto"}


def sampler_for(name: str, **options: Any) -> Sampler:
    """The sampler a config names (one of ``SAMPLERS``); ``options`` go to a model's
    constructor."""
    if name == "random":
        from ridgeline.samplers.random import RandomSampler

        return RandomSampler()
    return model_sampler(MODEL_KINDS.get(name, name), None, **options)


def model_sampler(kind: str, max_num_trials: int | None, **options: Any) -> Sampler:
    """A "gp", "tpe" or "auto" sampler, run off the coordinator's loop, capped at
    ``max_num_trials``."""
    from ridgeline.samplers.background import BackgroundSampler
    from ridgeline.samplers.compose import LimitSampler

    inner: Sampler
    if kind == "gp":
        from ridgeline.samplers.gp import GPSampler

        inner = BackgroundSampler(GPSampler(**options))
    elif kind == "tpe":
        from ridgeline.samplers.tpe import TPESampler

        inner = BackgroundSampler(TPESampler(**options))
    else:
        from ridgeline.samplers.auto import AutoSampler

        inner = AutoSampler(model_sampler("gp", None), model_sampler("tpe", None))
    return LimitSampler(inner, max_num_trials) if max_num_trials else inner
