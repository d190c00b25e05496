"""``ridgeline dashboard``: the web dashboard over a store, in this process."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ridgeline.cli import cli
from ridgeline.store import open_store
from ridgeline.store.base import Store


@cli.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8880, show_default=True, type=int, help="Port (0: any free).")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host beyond loopback (plain HTTP; prefer an SSH tunnel).",
)
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, allow_remote: bool) -> None:
    """Serve the dashboard for every experiment of the store until Ctrl-C.

    Prints a login link with a one-off token: open it in a browser on this machine (or
    through an SSH tunnel). Controls act on experiments whose coordinator runs."""
    # lazy: ridgeline.dashboard.hosting loads aiohttp
    from ridgeline.dashboard.hosting import check_host, serve
    from ridgeline.paths import default_storage  # lazy: keeps `import ridgeline.cli` light

    if not 0 <= port <= 65535:
        raise click.BadParameter(f"{port} is not a port number (0 to 65535)", param_hint="--port")
    check_host(host, allow_remote)
    target = default_storage(ctx.obj["storage"])
    if "://" not in str(target) and not Path(target).is_file():
        raise click.UsageError(f"no ridgeline store at {target} (give one with --storage)")
    store = open_store(target)
    try:
        serve(store, host, port)
    finally:
        store.close()


def login_link(store: Store, experiment_id: int, pid: int, wait: float = 5.0) -> str | None:
    """The login link of the dashboard the experiment's new coordinator serves, once it
    records one (None when it does not within ``wait`` seconds, or its process ended)."""
    from ridgeline.engine.run import process_alive  # lazy: keeps `import ridgeline.cli` light

    deadline = time.monotonic() + wait
    while True:
        info = (store.get_experiment(experiment_id).coordinator or {}).get("dashboard")
        if info and info.get("url") and info.get("token"):
            return f"{info['url']}login?token={info['token']}"
        if time.monotonic() > deadline or not process_alive(pid):
            return None
        time.sleep(0.1)


def echo_login_link(store: Store, experiment_id: int, pid: int) -> None:
    link = login_link(store, experiment_id, pid)
    if link is not None:
        click.echo(f"Dashboard: {link}")
