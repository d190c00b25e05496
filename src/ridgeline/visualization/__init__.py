"""Plots of a search as plotly figures, named as Optuna's so habits carry over.

``plot_optimization_history``, ``plot_parallel_coordinate``, ``plot_slice``, ``plot_contour``,
``plot_param_importances`` and ``plot_intermediate_values`` mean what they mean in Optuna;
``plot_learning_curves``, ``plot_rungs`` (ASHA, Hyperband) and ``plot_lineage`` (PBT) are
ridgeline's own. Each takes what ``ridgeline.load`` returns (or a Study, an experiment id,
an output folder). ``ridgeline.visualization.data`` prepares the same plots as plain
lists and dicts for a web page. plotly loads on the first plot, not on import.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Plot kinds by their command-line name (``ridgeline plot KIND``).
KINDS = {
    "optimization-history": "plot_optimization_history",
    "parallel-coordinate": "plot_parallel_coordinate",
    "slice": "plot_slice",
    "contour": "plot_contour",
    "param-importances": "plot_param_importances",
    "intermediate-values": "plot_intermediate_values",
    "learning-curves": "plot_learning_curves",
    "rungs": "plot_rungs",
    "lineage": "plot_lineage",
}

__all__ = ["KINDS", "plot", *sorted(KINDS.values())]


def plot(kind: str, source: Any, **options: Any) -> Any:
    """The figure of ``kind`` (a key of ``KINDS``; underscores work too) for ``source``."""
    name = KINDS.get(kind.replace("_", "-").removeprefix("plot-"))
    if name is None:
        raise ValueError(f"unknown plot {kind!r}; choose one of {', '.join(KINDS)}")
    return getattr(importlib.import_module("ridgeline.visualization.figures"), name)(
        source, **options
    )


def __getattr__(name: str) -> Any:
    if name in KINDS.values():
        return getattr(importlib.import_module("ridgeline.visualization.figures"), name)
    raise AttributeError(f"module 'ridgeline.visualization' has no attribute {name!r}")
