"""Model-based samplers (GP, TPE, or the one picked for the budget) as both doors build them."""

from __future__ import annotations

from typing import Any

from ridgeline.samplers.base import Sampler
from ridgeline.samplers.compose import LimitSampler


def model_sampler(kind: str, max_num_trials: int | None, **options: Any) -> Sampler:
    """A "gp", "tpe" or "auto" sampler, run off the coordinator's loop, capped at
    ``max_num_trials`` (modules load on first use: they import NumPy and SciPy)."""
    from ridgeline.samplers.background import BackgroundSampler

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
