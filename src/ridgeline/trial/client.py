"""TrialClient: the trial side of the coordinator's HTTP protocol. Standard library only.

Every request retries with backoff while the coordinator is unreachable or answers 5xx (it may
be restarting); a report counts as accepted only once the coordinator has stored it, and the
coordinator skips a report it already has, so retries never duplicate and never lose one. A 4xx
is the coordinator's final word on that request: it is raised at once with its message.
"""

from __future__ import annotations

import json
import os
import time

from ridgeline.errors import CoordinatorUnavailable, ObservationError, TrialError
from ridgeline.trial import env
from ridgeline.trial.http import Connection
from ridgeline.values import check_uuid, plain

TYPE_CHECKING = False  # typing costs ~10 ms to import; trial processes start often
if TYPE_CHECKING:
    from typing import Any

MAX_REPORTS_PER_REQUEST = 10_000  # the coordinator refuses larger batches (413)
_DATA_REFUSED = (400, 413, 422)  # the coordinator refused what was sent, not who sent it
_TRY_AGAIN = (408, 429)  # the body arrived too slowly / too many requests: not final


def _decode(data: bytes) -> dict[str, Any]:
    """A reply's JSON object; a non-JSON body (a proxy's page, aiohttp's own 4xx) becomes
    ``{"error": <its text>}``."""
    try:
        decoded = json.loads(data) if data else {}
    except ValueError:
        return {"error": data[:300].decode(errors="replace").strip()}
    return decoded if isinstance(decoded, dict) else {"error": repr(decoded)[:300]}


def _refusal(status: int, reply: dict[str, Any], what: str) -> TrialError | ObservationError:
    """The exception for a refused request: ObservationError when the data was at fault."""
    message = f"coordinator refused {what} (HTTP {status}): {reply.get('error', 'no reason')}"
    return ObservationError(message) if status in _DATA_REFUSED else TrialError(message)


def connect(url: str, fingerprint: str | None, timeout: float = 60.0) -> Connection:
    """A connection to the coordinator at ``url`` (http://host:port or https://host:port);
    https needs the certificate's ``fingerprint``, which the connection pins."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower() if sep else "http"
    if scheme not in ("http", "https"):
        raise TrialError(f"coordinator address {url!r}: use http://HOST:PORT or https://HOST:PORT")
    host, _, port = (rest if sep else url).rstrip("/").rpartition(":")
    if scheme == "https" and not fingerprint:
        raise TrialError(
            f"the coordinator at {url} speaks TLS but no certificate fingerprint was given "
            f"({env.CERT_SHA256}, which ridgeline sets for the trials it launches); refusing "
            f"to send the token to an unverified server"
        )
    return Connection(
        host.strip("[]") or "127.0.0.1",
        int(port or (443 if scheme == "https" else 80)),
        timeout,
        fingerprint if scheme == "https" else None,
    )


class TrialClient:
    """One trial's connection to its coordinator."""

    def __init__(
        self,
        master: str | None = None,
        token: str | None = None,
        trial_id: int | None = None,
        retry_seconds: float | None = None,
    ) -> None:
        self.master_file = os.environ.get(env.MASTER_FILE)
        self.fingerprint = os.environ.get(env.CERT_SHA256) or None  # https: the pinned cert
        found = master or os.environ.get(env.MASTER) or self._read_master_file()
        if not found:
            raise TrialError(
                f"no coordinator address: set {env.MASTER} (ridgeline sets it for trials it "
                f"launches) or use test_mode=True to run a trial script by hand"
            )
        self.master: str = found
        self.token = token if token is not None else os.environ.get(env.TOKEN, "")
        raw_id = trial_id if trial_id is not None else os.environ.get(env.TRIAL_ID)
        raw_id = raw_id if raw_id is not None else os.environ.get(env.SHERPA_TRIAL_ID)
        if raw_id is None:
            raise TrialError(
                f"no trial id: {env.TRIAL_ID} / {env.SHERPA_TRIAL_ID} is not set; run this "
                f"script through ridgeline.optimize(), or use test_mode=True"
            )
        self.trial_id = int(raw_id)
        if retry_seconds is None:
            retry_seconds = float(os.environ.get(env.RETRY_SECONDS, env.DEFAULT_RETRY_SECONDS))
        self.retry_seconds = retry_seconds
        self._conn: Connection | None = None
        self.stop_requested = False
        if os.environ.get(env.HEARTBEAT_SECONDS):  # the coordinator watches for silence
            from ridgeline.trial import heartbeat  # lazy: keeps `import ridgeline.cli` light

            heartbeat.start(self)

    # -- protocol ----------------------------------------------------------------------------
    def get_trial(self, wait_seconds: float = 30.0) -> dict[str, Any]:
        """The trial's record; waits up to ``wait_seconds`` while it is not yet visible."""
        deadline = time.monotonic() + wait_seconds
        delay = 0.05
        while True:
            status, body = self._request("GET", f"/api/v1/trials/{self.trial_id}")
            if status == 200:
                return body
            if status != 404 or time.monotonic() > deadline:
                raise TrialError(
                    f"coordinator at {self.master} has no trial {self.trial_id} "
                    f"({env.SHERPA_TRIAL_ID}/{env.TRIAL_ID}): {body.get('error', status)}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def report(self, reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Send reports (in batches the coordinator accepts); returns once it stored them."""
        accepted = 0
        body: dict[str, Any] = {}
        for start in range(0, max(len(reports), 1), MAX_REPORTS_PER_REQUEST):
            batch = reports[start : start + MAX_REPORTS_PER_REQUEST]
            status, body = self._request(
                "POST", f"/api/v1/trials/{self.trial_id}/metrics", {"reports": batch}
            )
            if status != 200:
                raise _refusal(status, body, "the report")
            accepted += int(body.get("accepted", 0))
            self.stop_requested = bool(body.get("stop", False))
        return {**body, "accepted": accepted}

    def heartbeat(self) -> bool:
        """Tell the coordinator this process lives; False once it refuses this attempt (its
        token was revoked: the attempt was declared lost or has ended)."""
        try:
            status, _ = self._request("POST", f"/api/v1/trials/{self.trial_id}/heartbeat", {})
        except CoordinatorUnavailable:
            return True  # away for now (restarting?): beat again later
        except TrialError:
            return False  # 401: the token is void
        return not 400 <= status < 500

    def should_stop(self) -> bool:
        """True once the searcher wants this trial to end (save state and exit)."""
        if not self.stop_requested:
            status, body = self._request("GET", f"/api/v1/trials/{self.trial_id}/stop")
            self.stop_requested = status == 200 and bool(body.get("stop", False))
        return self.stop_requested

    def report_exit(self, status: int) -> None:
        """Tell the coordinator this attempt's process ended with ``status`` (the shell's exit
        status, 128 + N for signal N); a batch job's script calls it (``trial/exited.py``)."""
        self._ok("POST", "/exited", {"status": status})

    # -- Core API ----------------------------------------------------------------------------
    def _ok(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, reply = self._request(method, f"/api/v1/trials/{self.trial_id}{path}", body)
        if status != 200:
            raise _refusal(status, reply, f"{method} {path}")
        return reply

    def next_operation(self, wait: float = 30.0) -> dict[str, Any]:
        """Long-poll for the trial's current operation.

        Returns ``{"op": {"id", "length"}}``, ``{"op": None, "done": True}`` when the searcher
        has no further work for this trial, or ``{"op": None, "done": False}`` on timeout."""
        return self._ok("GET", f"/operation?wait={wait:g}")

    def complete_operation(self, op_id: int, metric: float) -> None:
        self._ok("POST", f"/operation/{op_id}/complete", {"metric": metric})

    def report_progress(self, fraction: float | None = None, length: float | None = None) -> None:
        self._ok("POST", "/progress", {"fraction": fraction, "length": length})

    def report_group(self, group: str, steps: int, values: dict[str, Any]) -> None:
        """Store metrics of ``group`` at ``steps`` (no searcher decision depends on them)."""
        self._ok(
            "POST", "/metrics", {"reports": [{"group": group, "step": steps, "values": values}]}
        )

    def register_checkpoint(self, uuid: str, steps: int, metadata: dict[str, Any]) -> None:
        self._ok(
            "POST",
            "/checkpoints",
            {"uuid": uuid, "steps_completed": steps, "metadata": metadata},
        )

    def checkpoint(self, uuid: str) -> dict[str, Any] | None:
        """This trial's checkpoint ``uuid`` (or the one it was cloned from); else None."""
        check_uuid(uuid, "checkpoint")
        status, reply = self._request("GET", f"/api/v1/trials/{self.trial_id}/checkpoints/{uuid}")
        return reply if status == 200 else None

    def delete_checkpoint(self, uuid: str) -> None:
        """Delete one of this trial's checkpoints (the coordinator removes its folder)."""
        check_uuid(uuid, "checkpoint")
        status, reply = self._request(
            "DELETE", f"/api/v1/trials/{self.trial_id}/checkpoints/{uuid}"
        )
        if status != 200:
            raise _refusal(status, reply, f"deleting checkpoint {uuid}")

    def preemption(self, wait: float = 30.0) -> bool:
        """Long-poll: True as soon as the trial should checkpoint and exit."""
        return bool(self._ok("GET", f"/preempt?wait={wait:g}").get("preempt"))

    def acknowledge_preemption(self) -> None:
        self._ok("POST", "/preempt/ack", {})

    def early_exit(self, reason: str) -> None:
        self._ok("POST", "/early_exit", {"reason": reason})

    def best_validation(self) -> float | None:
        value = self._ok("GET", "/best_validation").get("value")
        return None if value is None else float(value)

    # -- transport ---------------------------------------------------------------------------
    def _read_master_file(self) -> str | None:
        """The address in the coordinator's address file (and its certificate's fingerprint,
        kept in ``self.fingerprint``); None when there is none to read."""
        if not self.master_file:
            return None
        try:
            with open(self.master_file) as handle:
                address = json.load(handle)
            url = str(address["url"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if address.get(env.CERT_KEY):
            self.fingerprint = str(address[env.CERT_KEY])
        return url

    def _connect(self) -> Connection:
        if self._conn is None:
            self._conn = connect(self.master, self.fingerprint)
        return self._conn

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        payload = None if body is None else json.dumps(body, default=plain).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        last_error: Exception | None = None
        while True:
            try:
                status, data = self._connect().request(method, path, payload, headers)
                reply = _decode(data)
                if status == 401:
                    raise TrialError(
                        f"coordinator at {self.master} rejected the token of trial "
                        f"{self.trial_id}: {reply.get('error', 'unauthorized')}"
                    )
                if status < 500 and status not in _TRY_AGAIN:
                    return status, reply
                last_error = TrialError(f"HTTP {status}: {reply.get('error', '')}")
            except OSError as exc:
                last_error = exc
                self._close()
            if time.monotonic() + delay > deadline:
                raise CoordinatorUnavailable(
                    f"coordinator at {self.master} unreachable for {self.retry_seconds:.0f} s "
                    f"({last_error}); the report was not accepted"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            self.master = self._read_master_file() or self.master

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._close()
