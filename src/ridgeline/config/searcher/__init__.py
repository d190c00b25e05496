"""``searcher:``: one spec per searcher name (Determined's ``searcher.name``).

Config validation, building (``ridgeline.experiment.build_searcher``), ``preview-search``
and budgets look the name up in ``table.SPECS``. ``section.py`` checks what every searcher
shares (name, metric, lengths, trials, concurrency) and hands the rest to the name's spec;
``spec.py`` is what a spec provides; ``fifo``, ``asha``, ``halving``, ``pbt`` and ``model``
hold the specs, one family of searchers each, and list them in their ``SPECS``.

A new searcher is a ``SearcherSpec`` in one of those modules, added to its ``SPECS``: its
fields, an ``Options`` dataclass with Determined's defaults, the checks of its fields,
``build`` and ``plan`` (what preview-search prints, and the trials and training it spends at
most, which ``experiment list`` shows). Specs load no searcher and no sampler until they build
or plan one.
"""

from __future__ import annotations

from ridgeline.config.searcher.section import (
    LENGTH_UNITS,
    REMOVED,
    SEARCHERS,
    budget,
    describe,
    parse_searcher,
    time_mode,
)
from ridgeline.config.searcher.spec import SearcherSpec
from ridgeline.config.searcher.table import SPECS, spec_for

__all__ = [
    "LENGTH_UNITS",
    "REMOVED",
    "SEARCHERS",
    "SPECS",
    "SearcherSpec",
    "budget",
    "describe",
    "parse_searcher",
    "spec_for",
    "time_mode",
]
