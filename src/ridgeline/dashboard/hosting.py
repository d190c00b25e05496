"""Starting a dashboard: inside a running event loop (a coordinator's) or on its own.

A coordinator serves its experiment's dashboard from its own loop on a second, loopback-only
site; pages read the store on worker threads, so trials' requests are never kept waiting.
``ridgeline dashboard`` serves every experiment of a store the same way in its own process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import sys
import threading
from dataclasses import dataclass

from aiohttp import web

from ridgeline.dashboard.app import Dashboard, build_app
from ridgeline.dashboard.auth import Access
from ridgeline.errors import ConfigError
from ridgeline.store.base import Store

log = logging.getLogger("ridgeline")

DEFAULT_HOST = "127.0.0.1"
SHUTDOWN_SECONDS = 1.0  # open live streams are cut after this long when the site stops


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    """Loopback unless asked otherwise: anyone who can reach the port sees the login page."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigError(
            f"the dashboard listens on loopback only; to serve it on {host!r} pass "
            f"--allow-remote (anyone who reaches the port can try the login link)"
        )
    log.warning(
        "The dashboard listens on %s: reachable beyond this machine, over plain HTTP. "
        "Prefer an SSH tunnel to a loopback dashboard.",
        host,
    )


@dataclass
class Site:
    """A serving dashboard: its address and how to log in."""

    runner: web.AppRunner
    host: str
    port: int
    access: Access

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def login_url(self) -> str:
        return f"{self.url}login?token={self.access.token}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def start(
    store: Store,
    host: str = DEFAULT_HOST,
    port: int = 0,
    experiment_id: int | None = None,
    access: Access | None = None,
) -> Site:
    """Serve the dashboard from the running loop; ``experiment_id`` limits it to one."""
    dashboard = Dashboard(store, access, experiment_id)
    runner = web.AppRunner(build_app(dashboard), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"the dashboard cannot listen on {host}:{port}: {exc}") from None
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    if experiment_id is None:  # a dashboard of its own: read the newest searches ahead
        threading.Thread(target=_warm, args=(dashboard, store), daemon=True).start()
    return Site(runner, host, int(bound), dashboard.access)


def _warm(dashboard: Dashboard, store: Store) -> None:
    try:
        dashboard.views.warm(store)
    except Exception as exc:  # noqa: BLE001 - a page asked for later says what is wrong
        log.warning("The dashboard could not read the store ahead: %s", exc)


def serve(store: Store, host: str, port: int) -> None:
    """Run a dashboard over ``store`` until interrupted; prints the login link once."""

    async def main() -> None:
        site = await start(store, host, port)
        print(f"ridgeline dashboard on {site.url}", file=sys.stderr)
        print(f"Log in: {site.login_url}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await site.close()

    asyncio.run(main())
