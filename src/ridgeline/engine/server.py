"""The coordinator's HTTP API: the trial protocol. One aiohttp server in the engine's loop."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ridgeline.errors import ObservationError, StoreError

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

    TrialHandler = Callable[[web.Request, int], Awaitable[web.Response]]

    def for_trial(handler: TrialHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Resolve the ``{trial}`` in the path to a known trial number, or answer 400/404."""

        async def wrapped(request: web.Request) -> web.Response:
            number = trial_number(request)
            if isinstance(number, web.Response):
                return number
            return await handler(request, number)

        return wrapped

    async def health(request: web.Request) -> web.Response:
        return _json({"ok": True, "experiment_id": coordinator.engine.experiment_id})

    @for_trial
    async def get_trial(request: web.Request, number: int) -> web.Response:
        return _json(coordinator.trial_view(number))

    @for_trial
    async def post_metrics(request: web.Request, number: int) -> web.Response:
        try:
            body = json.loads(await request.read())
            reports = body["reports"]
            if not isinstance(reports, list):
                raise TypeError("reports must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            return _error(f"malformed report: {exc}", 400)
        try:
            accepted = await coordinator.on_reports(number, reports)
        except ObservationError as exc:
            return _error(str(exc), 400)
        return _json({"accepted": accepted, "stop": coordinator.stop_requested(number)})

    @for_trial
    async def get_stop(request: web.Request, number: int) -> web.Response:
        return _json({"stop": coordinator.stop_requested(number)})

    def long_poll_wait(request: web.Request) -> float:
        try:
            return max(0.0, min(float(request.query.get("wait", "30")), 60.0))
        except ValueError:
            return 30.0

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
        try:
            body = json.loads(await request.read())
            op_id = int(request.match_info["op"])
            coordinator.complete_operation(number, op_id, body.get("metric"))
        except ObservationError as exc:
            return _error(str(exc), 400)
        except (ValueError, TypeError) as exc:
            return _error(f"malformed completion: {exc}", 400)
        return _json({"ok": True})

    @for_trial
    async def post_progress(request: web.Request, number: int) -> web.Response:
        body = json.loads(await request.read() or b"{}")
        coordinator.record_progress(number, body)
        return _json({"ok": True})

    @for_trial
    async def post_checkpoint(request: web.Request, number: int) -> web.Response:
        try:
            body = json.loads(await request.read())
            record = coordinator.register_checkpoint(
                number, str(body["uuid"]), int(body["steps_completed"]), dict(body["metadata"])
            )
        except (ValueError, KeyError, TypeError, StoreError) as exc:
            return _error(f"cannot register checkpoint: {exc}", 400)
        return _json({"uuid": record.uuid})

    async def get_checkpoint(request: web.Request) -> web.Response:
        try:
            record = coordinator.store.get_checkpoint(request.match_info["uuid"])
        except StoreError as exc:
            return _error(str(exc), 404)
        return _json(
            {
                "uuid": record.uuid,
                "trial_id": record.trial_id,
                "steps_completed": record.steps_completed,
                "metadata": record.metadata,
                "state": record.state,
            }
        )

    async def delete_checkpoint(request: web.Request) -> web.Response:
        try:
            coordinator.delete_checkpoint(request.match_info["uuid"])
        except StoreError as exc:
            return _error(str(exc), 404)
        return _json({"ok": True})

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
        body = json.loads(await request.read() or b"{}")
        try:
            coordinator.report_early_exit(number, body.get("reason"))
        except ObservationError as exc:
            return _error(str(exc), 400)
        return _json({"ok": True})

    async def best_validation(request: web.Request) -> web.Response:
        return _json({"value": coordinator.best_validation})

    async def control(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action == "pause":
            coordinator.pause()
        elif action == "activate":
            coordinator.activate()
        elif action == "kill":
            coordinator.kill()
        else:
            return _error(f"unknown action {action!r}: use pause, activate or kill", 404)
        return _json({"state": coordinator.state})

    @for_trial
    async def kill_trial(request: web.Request, number: int) -> web.Response:
        coordinator.kill_trial(number)
        return _json({"ok": True})

    app = web.Application(middlewares=[check_token], client_max_size=16 * 1024 * 1024)
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/trials/{trial}", get_trial)
    app.router.add_post("/api/v1/trials/{trial}/metrics", post_metrics)
    app.router.add_get("/api/v1/trials/{trial}/stop", get_stop)
    app.router.add_get("/api/v1/trials/{trial}/operation", get_operation)
    app.router.add_post("/api/v1/trials/{trial}/operation/{op}/complete", complete_operation)
    app.router.add_post("/api/v1/trials/{trial}/progress", post_progress)
    app.router.add_post("/api/v1/trials/{trial}/checkpoints", post_checkpoint)
    app.router.add_get("/api/v1/trials/{trial}/preempt", get_preempt)
    app.router.add_post("/api/v1/trials/{trial}/preempt/ack", ack_preempt)
    app.router.add_post("/api/v1/trials/{trial}/early_exit", early_exit)
    app.router.add_get("/api/v1/trials/{trial}/best_validation", best_validation)
    app.router.add_post("/api/v1/trials/{trial}/kill", kill_trial)
    app.router.add_get("/api/v1/checkpoints/{uuid}", get_checkpoint)
    app.router.add_delete("/api/v1/checkpoints/{uuid}", delete_checkpoint)
    app.router.add_post("/api/v1/experiment/{action}", control)
    return app
