"""Checkpoint retention: which checkpoints may go (Determined's save_* settings)."""

from __future__ import annotations

from collections.abc import Sequence

from ridgeline.store.records import CheckpointRecord

Scored = tuple[CheckpointRecord, float | None]  # a checkpoint and the metric at its step


def best_first(scored: Sequence[Scored], lower_is_better: bool) -> list[CheckpointRecord]:
    """Checkpoints with a metric, best first (those without one are never 'best')."""
    ranked = [(c, v) for c, v in scored if v is not None]
    ranked.sort(key=lambda cv: cv[1] or 0.0, reverse=not lower_is_better)
    return [c for c, _ in ranked]


def to_delete(
    trials: Sequence[Sequence[Scored]],
    lower_is_better: bool,
    save_trial_latest: int = 1,
    save_trial_best: int = 1,
    save_experiment_best: int = 0,
    experiment_done: bool = False,
) -> list[CheckpointRecord]:
    """Checkpoints of ended ``trials`` that no setting keeps.

    Each trial keeps its newest ``save_trial_latest`` and best ``save_trial_best``. Until the
    experiment is done a trial also keeps its best ``save_experiment_best`` (candidates for the
    experiment's best); once it is done, only the experiment's best that many stay beside that.
    """
    keep: set[str] = set()
    every: list[Scored] = []
    for scored in trials:
        every += scored
        by_time = sorted((c for c, _ in scored), key=lambda c: (c.steps_completed, c.created_at))
        if save_trial_latest:
            keep |= {c.uuid for c in by_time[-save_trial_latest:]}
        best = best_first(scored, lower_is_better)
        keep |= {c.uuid for c in best[:save_trial_best]}
        if not experiment_done:
            keep |= {c.uuid for c in best[:save_experiment_best]}
    if experiment_done:
        keep |= {c.uuid for c in best_first(every, lower_is_better)[:save_experiment_best]}
    return [c for c, _ in every if c.uuid not in keep]
