"""The coordinator's HTTP API: the trial protocol. One aiohttp server in the engine's loop."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ridgeline.errors import ObservationError

if TYPE_CHECKING:
    from ridgeline.engine.coordinator import Coordinator


def _json(data: Any, status: int = 200) -> web.Response:
    # NaN travels as JSON's NaN literal, which Python's json reads back.
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


def build_app(coordinator: Coordinator) -> web.Application:
    token = coordinator.token

    @web.middleware
    async def check_token(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/api/v1/health":
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given, token):
                return _error("missing or wrong token", 401)
        return await handler(request)

    def trial_number(request: web.Request) -> int | web.Response:
        try:
            number = int(request.match_info["trial"])
        except ValueError:
            return _error("trial id must be an integer", 400)
        if number not in coordinator.engine.records:
            return _error(f"no trial {number} in this experiment", 404)
        return number

    async def health(request: web.Request) -> web.Response:
        return _json({"ok": True, "experiment_id": coordinator.engine.experiment_id})

    async def get_trial(request: web.Request) -> web.Response:
        number = trial_number(request)
        if isinstance(number, web.Response):
            return number
        record = coordinator.engine.records[number]
        return _json(
            {
                "id": number,
                "experiment_id": record.experiment_id,
                "parameters": record.params,
                "state": record.state,
            }
        )

    async def post_metrics(request: web.Request) -> web.Response:
        number = trial_number(request)
        if isinstance(number, web.Response):
            return number
        try:
            body = json.loads(await request.read())
            reports = body["reports"]
            if not isinstance(reports, list):
                raise TypeError("reports must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            return _error(f"malformed report: {exc}", 400)
        try:
            accepted = coordinator.on_reports(number, reports)
        except ObservationError as exc:
            return _error(str(exc), 400)
        return _json({"accepted": accepted, "stop": coordinator.stop_requested(number)})

    async def get_stop(request: web.Request) -> web.Response:
        number = trial_number(request)
        if isinstance(number, web.Response):
            return number
        return _json({"stop": coordinator.stop_requested(number)})

    app = web.Application(middlewares=[check_token], client_max_size=16 * 1024 * 1024)
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/trials/{trial}", get_trial)
    app.router.add_post("/api/v1/trials/{trial}/metrics", post_metrics)
    app.router.add_get("/api/v1/trials/{trial}/stop", get_stop)
    return app
