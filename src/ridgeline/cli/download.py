"""``experiment download``: copy an experiment's best checkpoints to a folder.

Checkpoints are ranked as checkpoint retention ranks them: by the searcher metric reported in
a validation at the checkpoint's own steps_completed, smaller or larger first as the
searcher's ``smaller_is_better`` says. Each is copied by ``checkpoint download``'s code, which
never follows a symlink out of the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import click

from ridgeline.cli import _experiment, copy_checkpoint, experiment, fail, opened


@experiment.command("download")
@click.argument("experiment_id", type=int)
@click.option(
    "--top-n",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many checkpoints to copy, best first by the searcher metric.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    default="checkpoints",
    show_default=True,
    help="Each checkpoint goes to OUTPUT_DIR/<uuid>/.",
)
@click.pass_context
def download(ctx: click.Context, experiment_id: int, top_n: int, output_dir: str) -> None:
    """Copy the experiment's best checkpoints to OUTPUT_DIR/<uuid>/.

    A checkpoint is ranked by the searcher metric of the validation reported at its
    steps_completed (searcher.smaller_is_better decides the order); checkpoints without such
    a validation are not ranked and not copied."""
    # lazy: keeps `import ridgeline.cli` light
    from ridgeline.engine.checkpoints import scored_checkpoints
    from ridgeline.engine.retention import best_first  # lazy: keeps `import ridgeline.cli` light

    with opened(ctx) as store:
        record = _experiment(store, experiment_id)
        searcher = (record.config.get("raw") or {}).get("searcher") or {}
        metric = searcher.get("metric")
        if not metric:
            fail(f"experiment {experiment_id} has no searcher metric to rank checkpoints by")
        smaller = bool(searcher.get("smaller_is_better", True))
        trials = {t.id: t for t in store.list_trials(experiment_id)}
        scored = [s for t in trials for s in scored_checkpoints(store, t, metric)]
        values = {c.uuid: v for c, v in scored}
        best = best_first(scored, smaller)[:top_n]
        if not best:
            fail(
                f"experiment {experiment_id} has no checkpoint with a validation of {metric} "
                f"at its steps_completed; nothing to download"
            )
        for c in best:
            target = Path(output_dir) / c.uuid
            copy_checkpoint(store, c, target)
            click.echo(
                f"Checkpoint {c.uuid} (trial {c.trial_id}, steps {c.steps_completed}, "
                f"{metric} {values[c.uuid]:g}) downloaded to {target}"
            )
    if len(best) < top_n:
        click.echo(
            f"Only {len(best)} of the experiment's checkpoints have a validation of {metric} "
            f"at their steps_completed; {top_n} were asked for",
            err=True,
        )
