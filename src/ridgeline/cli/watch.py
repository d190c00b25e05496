"""``experiment describe --watch``: the experiment and its trials, redrawn until it ends."""

from __future__ import annotations

import shutil
import time
from typing import Any

import click

from ridgeline.cli import control, experiment_row, trial_rows
from ridgeline.cli.tables import flat, table
from ridgeline.store.base import Store

#: How long an experiment may lack a live coordinator before the watch stops waiting for it.
NO_COORDINATOR_GRACE = 10.0


def _view(store: Store, experiment_id: int) -> tuple[Any, Any]:
    """The renderable of the experiment now, and its record."""
    from rich.console import Group  # lazy: rich is heavy, loaded on use
    from rich.text import Text  # lazy: rich is heavy, loaded on use

    record = store.get_experiment(experiment_id)
    summary = experiment_row(store, record)
    trials = flat(trial_rows(store, experiment_id))
    stamp = Text(f"updated {time.strftime('%H:%M:%S')}", style="dim")
    parts = [table([summary]), table(trials) if trials else Text("(no trials yet)"), stamp]
    return Group(*parts), record


def watch_experiment(store: Store, experiment_id: int, interval: float) -> str:
    """Redraw every ``interval`` seconds until the experiment ends (or no coordinator has
    run it for a while); Ctrl-C stops watching and leaves the experiment running. Returns
    the state it last had."""
    from rich.console import Console  # lazy: rich is heavy, loaded on use
    from rich.live import Live  # lazy: rich is heavy, loaded on use

    console = Console(width=max(120, shutil.get_terminal_size().columns))
    record = store.get_experiment(experiment_id)
    console.print(f"Watching experiment {experiment_id} every {interval:g} s; Ctrl-C stops.")
    console.file.flush()
    dead_since: float | None = None
    try:
        view, record = _view(store, experiment_id)
        with Live(view, console=console, auto_refresh=False) as live:
            while record.state not in control.TERMINAL:
                time.sleep(interval)
                view, record = _view(store, experiment_id)
                live.update(view, refresh=True)
                if control.coordinator_alive(record):
                    dead_since = None
                elif dead_since is None:
                    dead_since = time.monotonic()
                elif time.monotonic() - dead_since > NO_COORDINATOR_GRACE:
                    break
    except KeyboardInterrupt:
        console.line()
        console.print(f"Stopped watching; experiment {experiment_id} is {record.state}.")
        return str(record.state)
    if not console.is_terminal:
        console.line()  # a redirected Live leaves its last frame without a line end
    if record.state in control.TERMINAL:
        console.print(f"Experiment {experiment_id} ended: {record.state}")
    else:
        click.echo(
            f"No coordinator is running experiment {experiment_id} ({record.state}); "
            f"`ridgeline experiment resume {experiment_id}` carries it on.",
            err=True,
        )
    return str(record.state)
