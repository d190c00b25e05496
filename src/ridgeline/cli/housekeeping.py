"""``experiment archive``, ``unarchive`` and ``delete``: tidy the store after experiments end.

Archiving only hides an experiment from ``experiment list``; deleting removes its rows, its
checkpoint folders and its own experiment folder for good. Files are removed only where they
are known to be the experiment's: each checkpoint folder is a UUID-named folder directly inside
the checkpoint root (``ridgeline.filetree.remove_folder``, as checkpoint retention deletes
them: a symlink is unlinked, never followed), and the experiment folder only when it lies
directly inside ridgeline's experiments folder (a SHERPA run's output folder is the user's).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ridgeline.cli import _experiment, checkpoint_root, control, experiment, fail, opened
from ridgeline.errors import RidgelineError
from ridgeline.store.base import Store
from ridgeline.values import check_uuid


def _refuse_unless_ended(store: Store, record: Any, action: str) -> None:
    """Exit with an error while the experiment may still run (a live coordinator or lease)."""
    lease = store.get_lease(record.id)
    running = control.coordinator_alive(record) or (lease is not None and lease.live())
    if record.state not in control.TERMINAL or running:
        fail(
            f"experiment {record.id} is {record.state}"
            f"{' with a running coordinator' if running else ''}; only an ended experiment "
            f"can be {action}: end it first with `ridgeline experiment kill {record.id}`"
        )


def _set_archived(ctx: click.Context, experiment_id: int, archived: bool) -> None:
    with opened(ctx) as store:
        record = _experiment(store, experiment_id)
        if archived:
            _refuse_unless_ended(store, record, "archived")
        store.update_experiment(experiment_id, archived=archived)
    click.echo(f"{'Archived' if archived else 'Unarchived'} experiment {experiment_id}")


@experiment.command("archive")
@click.argument("experiment_id", type=int)
@click.pass_context
def archive(ctx: click.Context, experiment_id: int) -> None:
    """Hide an ended experiment from `experiment list` (shown again with --all); nothing is
    deleted, and every other command still finds it."""
    _set_archived(ctx, experiment_id, True)


@experiment.command("unarchive")
@click.argument("experiment_id", type=int)
@click.pass_context
def unarchive(ctx: click.Context, experiment_id: int) -> None:
    """Show an archived experiment in `experiment list` again."""
    _set_archived(ctx, experiment_id, False)


@experiment.command("delete")
@click.argument("experiment_id", type=int)
@click.option("-y", "--yes", is_flag=True, help="Delete without asking for confirmation.")
@click.pass_context
def delete(ctx: click.Context, experiment_id: int, yes: bool) -> None:
    """Delete an ended experiment for good: its trials, metrics, logs and checkpoint files.

    Refused while the experiment is active or paused (`experiment kill` ends it first). To
    keep everything but hide it from `experiment list`, use `experiment archive` instead."""
    with opened(ctx) as store:
        record = _experiment(store, experiment_id)
        _refuse_unless_ended(store, record, "deleted")
        if not yes:
            click.confirm(
                f"Delete experiment {experiment_id} ({record.name}) with its trials, metrics, "
                f"logs and checkpoints? This cannot be undone; `experiment archive` only "
                f"hides it",
                abort=True,
            )
        left = _remove_checkpoints(store, record)
        if left:
            fail(
                f"could not remove every checkpoint folder of experiment {experiment_id} "
                f"({', '.join(left[:3])}); nothing else was deleted"
            )
        store.delete_experiment(experiment_id)
        note = _remove_experiment_folder(record)
    click.echo(f"Deleted experiment {experiment_id}")
    if note:
        click.echo(note, err=True)


def _remove_checkpoints(store: Store, record: Any) -> list[str]:
    """Remove the folders of the experiment's checkpoints; the paths that could not be."""
    from ridgeline.filetree import remove_folder  # lazy: keeps `import ridgeline.cli` light

    checkpoints = [c for t in store.list_trials(record.id) for c in store.list_checkpoints(t.id)]
    if not checkpoints:
        return []
    root = checkpoint_root(record)
    if root is None:
        return [f"{len(checkpoints)} checkpoints with no known folder"]
    left = []
    for c in checkpoints:
        try:
            if not remove_folder(root, check_uuid(c.uuid, "stored checkpoint")):
                left.append(str(root / c.uuid))
        except RidgelineError as exc:  # an id that names no folder of ours: left alone
            click.echo(f"Warning: {exc}; its files are not deleted", err=True)
    return left


def _remove_experiment_folder(record: Any) -> str | None:
    """Remove the experiment's own folder (logs, context, trial folders) when ridgeline made
    it; else say where it was left."""
    from ridgeline.filetree import remove_folder  # lazy: keeps `import ridgeline.cli` light
    from ridgeline.paths import data_dir  # lazy: keeps `import ridgeline.cli` light

    folder = record.config.get("output_dir")
    if not folder:
        return None
    path = Path(folder)
    experiments = data_dir() / "experiments"
    if path.parent.resolve() != experiments.resolve():
        return f"Its output folder {path} is not in {experiments}: left in place"
    for attempt in range(3):  # a trial process that just ended may still be closing files
        if remove_folder(experiments, path.name):
            return None
        time.sleep(0.2 * (attempt + 1))
    return f"Its folder {path} could not be removed completely"
