"""The dashboard's aiohttp application: pages, JSON, live streams and controls.

Every store read runs on a worker thread (``Reader``), so a coordinator hosting the
dashboard keeps serving its trials while a page loads. Controls are POSTs that need the
session's CSRF token; they are forwarded to the experiment's live coordinator with the
experiment's control token, as the CLI does. No GET changes anything.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from ridgeline.dashboard import data
from ridgeline.dashboard.auth import CSRF_HEADER, Access
from ridgeline.dashboard.cache import Views
from ridgeline.errors import StoreError, UnsafePathError
from ridgeline.schedulers import jobfiles
from ridgeline.store.base import Store
from ridgeline.store.records import EXPERIMENT_DONE_STATES

log = logging.getLogger("ridgeline")

T = TypeVar("T")
STATIC = resources.files("ridgeline.dashboard") / "static"
PAGES = {"index": "index.html", "experiment": "experiment.html", "trial": "trial.html"}
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
LOG_CHUNK = 64 * 1024  # bytes of a trial's log sent at once
POLL_SECONDS = 1.0  # how often a live stream looks for news in the store
KEEPALIVE_POLLS = 10  # a comment goes out after this many quiet polls
EXPERIMENT_ACTIONS = ("pause", "activate", "kill")
TRIAL_ACTIONS = {"stop": "kill", "pause": "pause", "resume": "resume"}  # -> coordinator route


class Reader:
    """Runs store reads on worker threads, off the event loop."""

    def __init__(self, store: Store, workers: int = 2) -> None:
        self.store = store
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ridgeline-dash")

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, fn, self.store, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Dashboard:
    """What the routes share: the store reader, who may enter, which experiments show."""

    def __init__(
        self, store: Store, access: Access | None = None, experiment_id: int | None = None
    ) -> None:
        self.read = Reader(store)
        self.access = access or Access()
        self.experiment_id = experiment_id  # set: this dashboard shows that experiment only
        self.views = Views()
        self.closing = asyncio.Event()


STATE = web.AppKey("ridgeline.dashboard", Dashboard)


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=data.to_json(payload),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


def _int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise web.HTTPNotFound(text=f"{name} must be a positive integer")
    return int(raw)


# Scripts come from this server only; 'unsafe-eval' because plotly's WebGL plots (regl, the
# parallel coordinates) compile their drawing code at run time; inline styles are plotly's.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'"
    ),
}


def build_app(dashboard: Dashboard) -> web.Application:
    """The routes; ``dashboard`` holds the store, the access rules and the scope."""

    def session_of(request: web.Request) -> str | None:
        return request.cookies.get(dashboard.access.cookie)

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        """Everything but the login and the static assets needs a session; pages redirect
        to the login page, the API answers 401."""
        public = request.path == "/login" or request.path.startswith("/static/")
        if not public and dashboard.access.csrf_for(session_of(request)) is None:
            if request.path.startswith("/api/"):
                return _error("log in first: open the login link the dashboard printed", 401)
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
        if request.method not in ("GET", "HEAD") and not dashboard.access.csrf_ok(
            session_of(request), request.headers.get(CSRF_HEADER)
        ):
            return _error(f"missing or wrong {CSRF_HEADER} header", 403)
        try:
            response = await handler(request)
        except LookupError as exc:
            return _error(str(exc).strip("'\""), 404)
        except StoreError as exc:  # the store's "no experiment/trial with id N"
            unknown = str(exc).startswith("no ")
            if not unknown:
                log.error("Dashboard %s %s: %s", request.method, request.path, exc)
            return _error(
                str(exc) if unknown else "the store failed; see the log", 404 if unknown else 503
            )
        except web.HTTPException as exc:
            if exc.status >= 400 and request.path.startswith("/api/"):
                return _error(exc.text or exc.reason, exc.status)
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Dashboard %s %s failed", request.method, request.path)
            return _error("internal error in the dashboard; see its log", 500)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def scoped(experiment_id: int) -> int:
        if dashboard.experiment_id is not None and experiment_id != dashboard.experiment_id:
            raise LookupError(f"this dashboard shows experiment {dashboard.experiment_id} only")
        return experiment_id

    async def login(request: web.Request) -> web.Response:
        token = request.query.get("token", "")
        session = dashboard.access.login(token) if token else None
        if session is None:
            page = (
                "<!doctype html><title>ridgeline: log in</title><h1>Log in</h1>"
                "<p>Open the login link the dashboard printed on its terminal "
                "(<code>/login?token=...</code>).</p>"
            )
            return web.Response(text=page, status=401, content_type="text/html")
        target = request.query.get("next", "/")
        if not target.startswith("/") or target[1:2] in ("/", "\\"):  # no other site
            target = "/"
        response = web.Response(status=303, headers={"Location": target})
        response.set_cookie(
            dashboard.access.cookie, session, httponly=True, samesite="Strict", path="/"
        )
        return response

    def page(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            text = (STATIC / PAGES[name]).read_text(encoding="utf-8")
            return web.Response(
                text=text, content_type="text/html", headers={"Cache-Control": "no-store"}
            )

        return handler

    async def home(request: web.Request) -> web.Response:
        if dashboard.experiment_id is not None:
            raise web.HTTPSeeOther(f"/experiments/{dashboard.experiment_id}")
        return await page("index")(request)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "plotly.min.js":
            return plotly_js()
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.Response(
            body=(STATIC / name).read_bytes(),
            content_type=ASSETS[name],
            headers={"Cache-Control": "no-cache"},
        )

    async def session(request: web.Request) -> web.Response:
        csrf = dashboard.access.csrf_for(session_of(request))
        return _json({"csrf": csrf, "scope": dashboard.experiment_id})

    async def experiments(request: web.Request) -> web.Response:
        return _json(await dashboard.read(dashboard.views.rows, dashboard.experiment_id))

    async def experiment(request: web.Request) -> web.Response:
        experiment_id = scoped(_int(request, "experiment"))
        page = await dashboard.read(dashboard.views.get(experiment_id).page)
        return web.Response(
            text=page, content_type="application/json", headers={"Cache-Control": "no-store"}
        )

    async def trial(request: web.Request) -> web.Response:
        experiment_id = scoped(_int(request, "experiment"))
        number = _int(request, "trial")
        return _json(await dashboard.read(data.trial_detail, experiment_id, number))

    async def trial_log(request: web.Request) -> web.Response:
        experiment_id = scoped(_int(request, "experiment"))
        number = _int(request, "trial")
        offset = _offset(request.query.get("offset"))
        return _json(await dashboard.read(read_log, experiment_id, number, offset))

    async def control_experiment(request: web.Request) -> web.Response:
        experiment_id = scoped(_int(request, "experiment"))
        action = request.match_info["action"]
        if action not in EXPERIMENT_ACTIONS:
            return _error(f"unknown action {action[:40]!r}: use pause, activate or kill", 404)
        return await forward(experiment_id, f"/api/v1/experiment/{action}")

    async def trial_action(request: web.Request) -> web.Response:
        """Stop (kill), pause or resume one trial."""
        experiment_id = scoped(_int(request, "experiment"))
        number = _int(request, "trial")
        action = request.match_info["action"]
        if action not in TRIAL_ACTIONS:
            return _error(f"unknown action {action[:40]!r}: use stop, pause or resume", 404)
        await dashboard.read(data.find_trial, experiment_id, number)
        return await forward(experiment_id, f"/api/v1/trials/{number}/{TRIAL_ACTIONS[action]}")

    async def queue_trial(request: web.Request) -> web.Response:
        experiment_id = scoped(_int(request, "experiment"))
        try:
            body = await request.json()
        except ValueError:
            return _error('the body must be JSON: {"params": {name: value, ...}}', 400)
        params = body.get("params") if isinstance(body, dict) else None
        if not isinstance(params, dict) or not params:
            return _error("'params' must be an object of hyperparameter name -> value", 400)
        return await forward(experiment_id, "/api/v1/experiment/trials", {"params": params})

    async def forward(
        experiment_id: int, path: str, body: dict[str, Any] | None = None
    ) -> web.Response:
        """Send a control request to the experiment's live coordinator."""
        try:
            reply = await dashboard.read(_send, experiment_id, path, body)
        except RuntimeError as exc:
            return _error(f"the coordinator refused: {exc}", 409)
        if reply is None:
            return _error(
                f"no coordinator is running experiment {experiment_id}; "
                f"`ridgeline experiment resume {experiment_id}` starts one",
                409,
            )
        return _json(reply)

    async def experiment_stream(request: web.Request) -> web.StreamResponse:
        experiment_id = scoped(_int(request, "experiment"))
        await dashboard.read(lambda store: store.get_experiment(experiment_id))
        cursor = _offset(request.query.get("cursor"))
        return await stream(request, ExperimentFeed(experiment_id, cursor))

    async def trial_stream(request: web.Request) -> web.StreamResponse:
        experiment_id = scoped(_int(request, "experiment"))
        number = _int(request, "trial")
        trial = await dashboard.read(data.find_trial, experiment_id, number)
        cursor = _offset(request.query.get("cursor"))
        offset = _offset(request.query.get("offset"))
        return await stream(request, TrialFeed(experiment_id, number, trial.id, cursor, offset))

    async def stream(request: web.Request, feed: Feed) -> web.StreamResponse:
        """Server-sent events: each poll's news as one ``delta`` event until the page goes."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        try:
            await response.write(b": live\n\n")
            quiet = 0
            while not dashboard.closing.is_set():
                news = await dashboard.read(feed.poll)
                if news is not None:
                    body = data.to_json(news)
                    await response.write(f"event: delta\ndata: {body}\n\n".encode())
                    quiet = 0
                else:
                    quiet += 1
                    if quiet % KEEPALIVE_POLLS == 0:  # a page that left is noticed here
                        await response.write(b": still here\n\n")
                try:
                    await asyncio.wait_for(dashboard.closing.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    async def on_shutdown(app: web.Application) -> None:
        dashboard.closing.set()

    async def on_cleanup(app: web.Application) -> None:
        dashboard.read.close()

    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[STATE] = dashboard
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    add = app.router
    add.add_get("/", home)
    add.add_get("/login", login)
    add.add_get("/static/{name}", asset)
    add.add_get("/experiments/{experiment}", page("experiment"))
    add.add_get("/experiments/{experiment}/trials/{trial}", page("trial"))
    add.add_get("/api/session", session)
    add.add_get("/api/experiments", experiments)
    add.add_get("/api/experiments/{experiment}", experiment)
    add.add_get("/api/experiments/{experiment}/stream", experiment_stream)
    add.add_get("/api/experiments/{experiment}/trials/{trial}", trial)
    add.add_get("/api/experiments/{experiment}/trials/{trial}/log", trial_log)
    add.add_get("/api/experiments/{experiment}/trials/{trial}/stream", trial_stream)
    add.add_post("/api/experiments/{experiment}/trials/{trial}/{action}", trial_action)
    add.add_post("/api/experiments/{experiment}/trials", queue_trial)
    add.add_post("/api/experiments/{experiment}/{action}", control_experiment)
    return app


def _offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise web.HTTPBadRequest(text=f"expected a non-negative integer, got {raw[:40]!r}")
    return int(raw)


def _send(
    store: Store, experiment_id: int, path: str, body: dict[str, Any] | None
) -> dict[str, Any] | None:
    from ridgeline.cli import control  # lazy: ridgeline.cli.control loads click

    experiment = store.get_experiment(experiment_id)
    return control.request(experiment, "POST", path, timeout=10, body=body)


_PLOTLY: bytes | None = None


def plotly_js() -> web.Response:
    """plotly.js as the installed ``plotly`` package ships it (no CDN)."""
    global _PLOTLY
    if _PLOTLY is None:
        try:
            path = resources.files("plotly") / "package_data" / "plotly.min.js"
            _PLOTLY = path.read_bytes()
        except (ModuleNotFoundError, FileNotFoundError):
            return web.Response(
                text="window.PLOTLY_MISSING = 'pip install \"ridgeline[dashboard]\"';",
                content_type="text/javascript",
            )
    return web.Response(
        body=_PLOTLY,
        content_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


# -- trial logs ----------------------------------------------------------------------------------
def log_path(store: Store, experiment_id: int, number: int) -> Path | None:
    """Trial ``number``'s current output, confined to the experiment's ``jobs`` folder (None:
    the experiment records no output folder)."""
    experiment = store.get_experiment(experiment_id)
    data.find_trial(store, experiment_id, number)
    output_dir = experiment.config.get("output_dir")
    if not output_dir:
        return None
    jobs = (Path(output_dir) / "jobs").resolve()
    path = jobfiles.output_path(jobs, f"trial_{number}").resolve()
    if not path.is_relative_to(jobs):
        raise UnsafePathError(f"{path} is outside {jobs}")
    return path


def read_log(store: Store, experiment_id: int, number: int, offset: int) -> dict[str, Any]:
    """The log from byte ``offset`` (0: its last ``LOG_CHUNK`` bytes), and where it ends."""
    path = log_path(store, experiment_id, number)
    if path is None:
        return {"text": "", "offset": 0, "exists": False}
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if offset == 0 or offset > size:  # a first look, or a new attempt's shorter file
                offset = max(0, size - LOG_CHUNK)
            handle.seek(offset)
            chunk = handle.read(LOG_CHUNK)
    except FileNotFoundError:
        return {"text": "", "offset": 0, "exists": False}
    return {"text": chunk.decode(errors="replace"), "offset": offset + len(chunk), "exists": True}


# -- live feeds ----------------------------------------------------------------------------------
class Feed:
    def poll(self, store: Store) -> dict[str, Any] | None:  # pragma: no cover - interface
        raise NotImplementedError


class ExperimentFeed(Feed):
    """News of an experiment since the last poll: new reports, trials that changed state
    (looked up only when the store recorded an event: starts, exits, pauses, restarts)."""

    def __init__(self, experiment_id: int, cursor: int) -> None:
        self.experiment_id = experiment_id
        self.cursor = cursor
        self.event_cursor: int | None = None
        self.states: dict[int, str] = {}
        self.numbers: dict[int, int] = {}  # trial id -> number
        self.experiment_state: str | None = None

    def poll(self, store: Store) -> dict[str, Any] | None:
        experiment = store.get_experiment(self.experiment_id)
        metrics = store.read_metrics(self.experiment_id, after=self.cursor)
        events = store.read_events(self.experiment_id, after=self.event_cursor or 0)
        first = self.event_cursor is None
        if events:
            self.event_cursor = events[-1].seq
        elif first:
            self.event_cursor = 0
        changed: dict[int, str] = {}
        unknown = any(m.trial_id not in self.numbers for m in metrics)
        if events or first or unknown:
            trials = store.list_trials(self.experiment_id)
            self.numbers = {t.id: t.number for t in trials}
            states = {t.number: str(t.state) for t in trials}
            changed = {n: s for n, s in states.items() if self.states.get(n) != s}
            self.states = states
        state_changed = experiment.state != self.experiment_state
        self.experiment_state = str(experiment.state)
        if metrics:
            self.cursor = metrics[-1].seq
        if not metrics and not changed and not state_changed:
            return None
        reports = [
            {
                "trial": self.numbers.get(m.trial_id),
                "group": m.group,
                "step": m.step,
                "values": {k: v for k, v in m.values.items() if _finite(v)},
            }
            for m in metrics[-200:]
        ]
        return {
            "cursor": self.cursor,
            "reports": reports,
            "new_reports": len(metrics),
            "states": {} if first else changed,
            "state": self.experiment_state,
            "live": data.coordinator_alive(experiment),
        }


class TrialFeed(Feed):
    """News of one trial: its new reports, state, and what its log gained."""

    def __init__(
        self, experiment_id: int, number: int, trial_id: int, cursor: int, offset: int
    ) -> None:
        self.experiment_id = experiment_id
        self.number = number
        self.trial_id = trial_id
        self.cursor = cursor
        self.offset = offset
        self.state: str | None = None

    def poll(self, store: Store) -> dict[str, Any] | None:
        metrics = store.read_metrics(self.experiment_id, after=self.cursor)
        if metrics:
            self.cursor = metrics[-1].seq
        mine = [m for m in metrics if m.trial_id == self.trial_id]
        trial = store.get_trial(self.trial_id)
        experiment = store.get_experiment(self.experiment_id)
        log = read_log(store, self.experiment_id, self.number, self.offset)
        grew = log["exists"] and log["offset"] != self.offset
        if grew:
            self.offset = log["offset"]
        state_changed = trial.state != self.state
        self.state = str(trial.state)
        if not mine and not grew and not state_changed:
            return None
        return {
            "cursor": self.cursor,
            "reports": data.metric_rows(mine[-200:]),
            "log": log["text"] if grew else "",
            "offset": self.offset,
            "state": self.state,
            "live": data.coordinator_alive(experiment),
            "finished": experiment.state in EXPERIMENT_DONE_STATES and not mine and not grew,
        }


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)
