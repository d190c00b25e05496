"""Hyperparameter importance as a bias-corrected correlation ratio (ε²).

Why this method: it needs no model library (a random forest for fANOVA or permutation
importance would pull in scikit-learn), it is exact for what it claims (the share of the
metric's variance explained by one hyperparameter's groups, corrected for the variance that
many small groups explain by chance), and it reads the same for categorical and numeric
hyperparameters. It measures main effects only: interactions are not credited.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

__all__ = ["epsilon_squared", "groups"]


def groups(keys: Sequence[Hashable], categorical: bool, bins: int | None = None) -> list[int]:
    """A group index per trial: one per category, or quantile bins of a numeric parameter
    (about sqrt(n) of them, at most 10; ties share a bin). Quantiles make the grouping the
    same on a linear or log scale."""
    n = len(keys)
    if categorical:
        index: dict[Hashable, int] = {}
        return [index.setdefault(k, len(index)) for k in keys]
    distinct = sorted(set(keys))  # type: ignore[type-var]
    count = bins or max(2, min(10, round(math.sqrt(n))))
    if len(distinct) <= count:
        where = {v: i for i, v in enumerate(distinct)}
        return [where[k] for k in keys]
    order = sorted(range(n), key=lambda i: keys[i])  # type: ignore[arg-type,return-value]
    out = [0] * n
    group, previous = 0, None
    for rank, i in enumerate(order):
        target = rank * count // n
        if target > group and keys[i] != previous:
            group = target
        out[i] = group
        previous = keys[i]
    return out


def epsilon_squared(keys: Sequence[Hashable], y: Sequence[float], categorical: bool) -> float:
    """``(SS_between - (k-1) MS_within) / (SS_total + MS_within)``, clipped to [0, 1]: 0 when
    the groups explain no more than chance, 1 when they explain all of the variance."""
    labels = groups(keys, categorical)
    n, k = len(y), len(set(labels))
    if n < 3 or k < 2 or n <= k:
        return 0.0
    mean = sum(y) / n
    total = sum((v - mean) ** 2 for v in y)
    if total == 0:
        return 0.0
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for g, v in zip(labels, y, strict=True):
        sums[g] = sums.get(g, 0.0) + v
        counts[g] = counts.get(g, 0) + 1
    between = sum(counts[g] * (sums[g] / counts[g] - mean) ** 2 for g in sums)
    within = (total - between) / (n - k)
    value = (between - (k - 1) * within) / (total + within)
    return min(max(value, 0.0), 1.0)
