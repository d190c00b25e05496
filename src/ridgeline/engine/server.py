"""The coordinator's HTTP API: the trial protocol. One aiohttp server in the engine's loop.

Every route but ``/api/v1/health`` needs a bearer token (see ``credentials``): a trial's
routes take that trial's current attempt token, the experiment's routes and trial kills the
control token. Input is bounded and checked (see ``limits``): what is malformed is a 4xx with
a message naming the problem, and an unexpected failure a logged 500 without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ridgeline.engine.checkpoints import CheckpointForbidden, CheckpointNotFound
from ridgeline.engine.credentials import Principal
from ridgeline.engine.limits import (
    HEADER_TIMEOUT,
    MAX_BODY_BYTES,
    ConnectionLimit,
    Refused,
    connection_cap,
    raise_fd_limit,
    read_json,
)
from ridgeline.errors import (
    CheckpointError,
    LeaseLost,
    ObservationError,
    StorageUnavailable,
    UnsafePathError,
)
from ridgeline.trial.client import MAX_REPORTS_PER_REQUEST
from ridgeline.values import check_objective

if TYPE_CHECKING:
    from ridgeline.engine.coordinator import Coordinator
    from ridgeline.store.records import CheckpointRecord

log = logging.getLogger("ridgeline")

PRINCIPAL = web.RequestKey("ridgeline.principal", Principal)  # who sent the request
MAX_WAIT = 60.0  # seconds a long-poll may last


def _json(data: Any, status: int = 200) -> web.Response:
    # NaN travels as JSON's NaN literal, which Python's json reads back.
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


def make_runner(coordinator: Coordinator) -> web.AppRunner:
    """The server's runner: the app, header timeouts, and a connection cap that fits the
    process's descriptor limit (raised to the hard limit first)."""
    limit = ConnectionLimit(connection_cap(raise_fd_limit()))
    return _Runner(build_app(coordinator, limit), limit)


class _Runner(web.AppRunner):
    def __init__(self, app: web.Application, limit: ConnectionLimit) -> None:
        # keepalive_timeout also bounds how long a new connection may take to send its
        # first request's headers: aiohttp closes it when that long passes in silence.
        super().__init__(app, access_log=None, keepalive_timeout=HEADER_TIMEOUT)
        self.limit = limit

    async def setup(self) -> None:
        await super().setup()
        assert self.server is not None
        self.limit.attach(self.server)


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None when there is none."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused("the Authorization header must be 'Bearer <token>'", 401)
    token = token.strip()
    if not token.isascii() or not token.isprintable():
        raise Refused("the token must be printable ASCII (as issued in RIDGELINE_TOKEN)")
    return token


def _finite_or_none(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(f"progress {name} must be a number, got {value!r:.60}")
    if not (math.isfinite(value) and low <= value <= high):
        raise Refused(f"progress {name} must be between {low:g} and {high:g}, got {value!r}")


def admit_trial(coordinator: Coordinator, number: int, principal: Principal) -> None:
    """Refuse ``principal`` unless it holds trial ``number``'s running attempt; else count the
    request as word from that attempt. The trial routes' check (in-process trials too)."""
    if principal.trial != number:
        raise Refused(
            f"{principal} may not act for trial {number}: each trial's routes take "
            f"that trial's own token",
            403,
        )
    job = coordinator.running.get(number)
    if job is None:
        raise Refused(f"trial {number}'s attempt has ended; its token is void", 401)
    # Any word from it shows it lived then (the end of a long-poll does not: a frozen
    # process's socket still takes the answer).
    coordinator.contact(number, job)


def build_app(coordinator: Coordinator, limit: ConnectionLimit | None = None) -> web.Application:
    credentials = coordinator.credentials

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        """Refusals become 4xx with their message; anything unexpected a logged 500 that
        tells the client nothing of the coordinator's insides."""
        try:
            return await handler(request)
        except Refused as exc:
            response = _error(exc.message, exc.status)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            return response
        except ObservationError as exc:
            return _error(str(exc), 400)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(f"{exc.reason}: {request.method} {request.path}", exc.status)
        except asyncio.CancelledError:
            raise
        except (StorageUnavailable, LeaseLost) as exc:
            # The store is gone past its retry bound, or another coordinator took over: the
            # run ends (ERROR with the cause, or handed over); the trial may retry elsewhere.
            coordinator.fail(exc)
            return _error(f"the coordinator cannot record this now: {exc}", 503)
        except Exception:
            log.exception("HTTP %s %s failed", request.method, request.path)
            return _error("internal error in the coordinator; see its log", 500)

    def authenticate(request: web.Request) -> Principal:
        token = bearer_token(request)
        if token is None:
            raise Refused("missing token: send 'Authorization: Bearer <token>'", 401)
        principal = credentials.identify(token)
        if principal is None:
            raise Refused("wrong or expired token", 401)
        request[PRINCIPAL] = principal
        return principal

    def trial_number(request: web.Request) -> int:
        raw = request.match_info["trial"]
        if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
            raise Refused(f"trial id must be a positive integer, got {raw[:40]!r}")
        return int(raw)

    Handler = Callable[[web.Request], Awaitable[web.Response]]
    TrialHandler = Callable[[web.Request, int], Awaitable[web.Response]]

    def for_trial(handler: TrialHandler) -> Handler:
        """A trial's own route: only the token of that trial's running attempt opens it."""

        async def wrapped(request: web.Request) -> web.Response:
            number = trial_number(request)
            admit_trial(coordinator, number, authenticate(request))
            return await handler(request, number)

        return wrapped

    def for_control(handler: Handler) -> Handler:
        """The experiment's routes: only its control token (the CLI's) opens them."""

        async def wrapped(request: web.Request) -> web.Response:
            principal = authenticate(request)
            if not principal.is_control:
                raise Refused(
                    f"{principal} may not {request.method} {request.path}: it needs the "
                    f"experiment's control token",
                    403,
                )
            return await handler(request)

        return wrapped

    def for_anyone(handler: Handler) -> Handler:
        """Routes any credential of this experiment opens; ``request[PRINCIPAL]`` says whose."""

        async def wrapped(request: web.Request) -> web.Response:
            trial = authenticate(request).trial
            if trial is not None:  # a trial's word counts as contact on any route
                coordinator.contact(trial, coordinator.running.get(trial))
            return await handler(request)

        return wrapped

    async def health(request: web.Request) -> web.Response:
        return _json({"ok": True})

    @for_trial
    async def get_trial(request: web.Request, number: int) -> web.Response:
        return _json(coordinator.trial_view(number))

    @for_trial
    async def post_metrics(request: web.Request, number: int) -> web.Response:
        reports = (await read_json(request)).get("reports")
        if not isinstance(reports, list):
            raise Refused(f"malformed report: 'reports' must be a list, got {reports!r:.60}")
        if len(reports) > MAX_REPORTS_PER_REQUEST:
            raise Refused(
                f"{len(reports)} reports in one request: send at most "
                f"{MAX_REPORTS_PER_REQUEST} per request",
                413,
            )
        accepted = await coordinator.on_reports(number, reports)
        return _json({"accepted": accepted, "stop": coordinator.stop_requested(number)})

    @for_trial
    async def heartbeat(request: web.Request, number: int) -> web.Response:
        """The trial process lives (its client beats while it does); nothing is stored."""
        return _json({"ok": True})

    @for_trial
    async def get_stop(request: web.Request, number: int) -> web.Response:
        return _json({"stop": coordinator.stop_requested(number)})

    def long_poll_wait(request: web.Request) -> float:
        raw = request.query.get("wait", "30")
        try:
            wait = float(raw)
        except ValueError:
            raise Refused(f"wait must be a number of seconds, got {raw[:40]!r}") from None
        if math.isnan(wait):
            raise Refused("wait must be a number of seconds, got NaN")
        return max(0.0, min(wait, MAX_WAIT))

    @for_trial
    async def get_operation(request: web.Request, number: int) -> web.Response:
        if coordinator.settings.max_length is None:
            return _error(
                "this experiment sets no searcher.max_length, so there are no operations; "
                "set searcher.max_length in the config or do not call operations()",
                409,
            )
        return _json(await coordinator.next_operation(number, long_poll_wait(request)))

    @for_trial
    async def complete_operation(request: web.Request, number: int) -> web.Response:
        body = await read_json(request)
        raw = request.match_info["op"]
        if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
            raise Refused(f"operation id must be a positive integer, got {raw[:40]!r}")
        metric = check_objective(body.get("metric"), f"trial {number} operation {raw}")
        coordinator.complete_operation(number, int(raw), metric)
        return _json({"ok": True})

    @for_trial
    async def post_progress(request: web.Request, number: int) -> web.Response:
        body = await read_json(request)
        _finite_or_none(body, "fraction", 0.0, 1.0)
        _finite_or_none(body, "length", 0.0, math.inf)
        coordinator.record_progress(number, body)
        return _json({"ok": True})

    @for_trial
    async def post_exited(request: web.Request, number: int) -> web.Response:
        status = (await read_json(request)).get("status")
        if type(status) is not int or not 0 <= status <= 255:
            raise Refused(f"exit status must be an integer 0 to 255, got {status!r:.60}")
        await coordinator.job_exited(number, status)
        return _json({"ok": True})

    # Checkpoints: ids are checked to be UUIDs, folders confined to the checkpoint root; a
    # checkpoint of another experiment is unknown here (404), another trial's is refused (403).
    def checkpoint_reply(action: Callable[[], CheckpointRecord]) -> web.Response:
        try:
            record = action()
        except CheckpointNotFound as exc:
            return _error(str(exc), 404)
        except CheckpointForbidden as exc:
            return _error(str(exc), 403)
        except (CheckpointError, UnsafePathError, ObservationError) as exc:
            return _error(str(exc), 400)
        return _json(
            {
                "uuid": record.uuid,
                "trial_id": record.trial_id,
                "steps_completed": record.steps_completed,
                "metadata": record.metadata,
                "state": record.state,
            }
        )

    @for_trial
    async def post_checkpoint(request: web.Request, number: int) -> web.Response:
        body = await read_json(request)
        missing = [k for k in ("uuid", "steps_completed", "metadata") if k not in body]
        if missing:
            raise Refused(f"cannot register checkpoint: missing {', '.join(missing)}")
        uuid, steps, metadata = body["uuid"], body["steps_completed"], body["metadata"]
        return checkpoint_reply(
            lambda: coordinator.register_checkpoint(number, uuid, steps, metadata)
        )

    @for_trial
    async def get_trial_checkpoint(request: web.Request, number: int) -> web.Response:
        uuid = request.match_info["uuid"]
        return checkpoint_reply(lambda: coordinator.checkpoint_info(number, uuid))

    @for_trial
    async def delete_trial_checkpoint(request: web.Request, number: int) -> web.Response:
        uuid = request.match_info["uuid"]
        return checkpoint_reply(lambda: coordinator.delete_checkpoint(number, uuid))

    def caller(request: web.Request) -> int | None:
        """The trial a request speaks for (None: the control token, any trial's)."""
        principal = request[PRINCIPAL]
        return principal.trial

    @for_anyone
    async def get_checkpoint(request: web.Request) -> web.Response:
        """A checkpoint of this experiment only: a trial's token reaches its own (and the one
        it started from), the control token any."""
        uuid = request.match_info["uuid"]
        return checkpoint_reply(lambda: coordinator.checkpoint_info(caller(request), uuid))

    @for_anyone
    async def delete_checkpoint(request: web.Request) -> web.Response:
        uuid = request.match_info["uuid"]
        return checkpoint_reply(lambda: coordinator.delete_checkpoint(caller(request), uuid))

    @for_trial
    async def get_preempt(request: web.Request, number: int) -> web.Response:
        wanted = await coordinator.wait_preemption(number, long_poll_wait(request))
        return _json({"preempt": wanted})

    @for_trial
    async def ack_preempt(request: web.Request, number: int) -> web.Response:
        coordinator.acknowledge_preemption(number)
        return _json({"ok": True})

    @for_trial
    async def early_exit(request: web.Request, number: int) -> web.Response:
        reason = (await read_json(request)).get("reason")
        if not isinstance(reason, str):
            raise Refused(
                f"early-exit reason must be a string such as INVALID_HP, got {reason!r:.60}"
            )
        coordinator.report_early_exit(number, reason)
        return _json({"ok": True})

    @for_trial
    async def best_validation(request: web.Request, number: int) -> web.Response:
        return _json({"value": coordinator.best_validation})

    @for_control
    async def control(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action == "pause":
            coordinator.pause()
        elif action == "activate":
            coordinator.activate()
        elif action == "kill":
            coordinator.kill()
        else:
            return _error(f"unknown action {action[:40]!r}: use pause, activate or kill", 404)
        return _json({"state": coordinator.state})

    @for_control
    async def queue_trial(request: web.Request) -> web.Response:
        params = (await read_json(request)).get("params")
        if not isinstance(params, dict):
            raise Refused(f"'params' must be an object of name -> value, got {params!r:.60}")
        return _json({"trial": coordinator.queue_trial(params)})

    def trial_control(act: Callable[[int], None]) -> Handler:
        """A control route acting on one trial of this experiment (kill, pause, resume)."""

        @for_control
        async def handler(request: web.Request) -> web.Response:
            number = trial_number(request)
            if number not in coordinator.engine.records:
                return _error(f"no trial {number} in this experiment", 404)
            act(number)
            return _json({"ok": True})

        return handler

    async def claim_trial(request: web.Request) -> web.Response:
        """A worker job asks for its next trial (``schedulers/workerpool.py``); only the
        worker token of this coordinator's pool opens it."""
        pool = getattr(coordinator.scheduler, "workers", None)
        if pool is None:
            return _error("this experiment's scheduler runs no worker jobs", 404)
        token = bearer_token(request)
        if token is None or not pool.admits(token):
            raise Refused("wrong or missing worker token", 401)
        name = (await read_json(request)).get("worker")
        if not isinstance(name, str) or not name.isascii() or len(name) > 100:
            raise Refused(f"'worker' must be the worker's name, got {name!r:.60}")
        return _json(await pool.claim(name, long_poll_wait(request)))

    kill_trial = trial_control(coordinator.kill_trial)
    pause_trial = trial_control(coordinator.pause_trial)
    resume_trial = trial_control(coordinator.resume_trial)

    middlewares = [guard] if limit is None else [limit.middleware, guard]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/trials/{trial}", get_trial)
    app.router.add_post("/api/v1/trials/{trial}/metrics", post_metrics)
    app.router.add_get("/api/v1/trials/{trial}/stop", get_stop)
    app.router.add_post("/api/v1/trials/{trial}/heartbeat", heartbeat)
    app.router.add_get("/api/v1/trials/{trial}/operation", get_operation)
    app.router.add_post("/api/v1/trials/{trial}/operation/{op}/complete", complete_operation)
    app.router.add_post("/api/v1/trials/{trial}/progress", post_progress)
    app.router.add_post("/api/v1/trials/{trial}/exited", post_exited)
    app.router.add_post("/api/v1/trials/{trial}/checkpoints", post_checkpoint)
    app.router.add_get("/api/v1/trials/{trial}/checkpoints/{uuid}", get_trial_checkpoint)
    app.router.add_delete("/api/v1/trials/{trial}/checkpoints/{uuid}", delete_trial_checkpoint)
    app.router.add_get("/api/v1/trials/{trial}/preempt", get_preempt)
    app.router.add_post("/api/v1/trials/{trial}/preempt/ack", ack_preempt)
    app.router.add_post("/api/v1/trials/{trial}/early_exit", early_exit)
    app.router.add_get("/api/v1/trials/{trial}/best_validation", best_validation)
    app.router.add_post("/api/v1/trials/{trial}/kill", kill_trial)
    app.router.add_post("/api/v1/trials/{trial}/pause", pause_trial)
    app.router.add_post("/api/v1/trials/{trial}/resume", resume_trial)
    app.router.add_get("/api/v1/checkpoints/{uuid}", get_checkpoint)
    app.router.add_delete("/api/v1/checkpoints/{uuid}", delete_checkpoint)
    app.router.add_post("/api/v1/workers/claim", claim_trial)
    app.router.add_post("/api/v1/experiment/trials", queue_trial)
    app.router.add_post("/api/v1/experiment/{action}", control)
    return app
