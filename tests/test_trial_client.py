"""The trial client's retry policy against a real HTTP server that answers as scripted: a 4xx is
final and raised at once with the server's message; 5xx and lost connections are retried."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ridgeline.errors import CoordinatorUnavailable, ObservationError, TrialError
from ridgeline.trial.client import MAX_REPORTS_PER_REQUEST, TrialClient


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next (status, body, close) of ``script``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[tuple[int, bytes, bool]] = []
        self.seen: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.seen.append(json.loads(self.rfile.read(length) or b"{}"))
        status, body, close = self.server.script.pop(0) if self.server.script else (200, b"{}", 0)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = bool(close)  # closes without saying so: the client must cope

    do_GET = do_POST


@pytest.fixture
def server() -> Iterator[Scripted]:
    srv = Scripted()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def client(server: Scripted, retry_seconds: float = 5.0) -> TrialClient:
    port = server.server_address[1]
    return TrialClient(f"http://127.0.0.1:{port}", "token", 1, retry_seconds=retry_seconds)


OK = b'{"accepted": 1, "stop": false}'


def test_a_4xx_is_raised_at_once_with_the_server_s_message(server: Scripted) -> None:
    c = client(server, retry_seconds=60)
    server.script = [(400, b'{"error": "step must be between 0 and 2**63-1"}', False)]
    started = time.monotonic()
    with pytest.raises(ObservationError, match=r"HTTP 400\): step must be between"):
        c.report([{"step": 1, "objective": 1.0}])
    # aiohttp's own refusals and proxies answer in plain text: still final, still readable
    server.script = [(413, b"Request Entity Too Large", False)]
    with pytest.raises(ObservationError, match="Request Entity Too Large"):
        c.report([{"step": 1, "objective": 1.0}])
    server.script = [(403, b'{"error": "trial 1 may not act for trial 2"}', False)]
    with pytest.raises(TrialError, match="may not act for trial 2"):
        c.best_validation()
    server.script = [(401, b'{"error": "wrong or expired token"}', False)]
    with pytest.raises(TrialError, match="wrong or expired token"):
        c.report([{"step": 1, "objective": 1.0}])
    assert time.monotonic() - started < 1.0
    assert len(server.seen) == 4  # one request each, no retries


def test_5xx_and_lost_connections_are_retried(server: Scripted) -> None:
    c = client(server)
    server.script = [
        (503, b"busy", False),
        (500, b'{"error": "x"}', False),
        (408, b'{"error": "request body not received within 30 s"}', False),
        (200, OK, True),
    ]
    assert c.report([{"step": 1, "objective": 1.0}])["accepted"] == 1
    assert len(server.seen) == 4
    # The server closed the kept connection after that reply; the next request reconnects.
    time.sleep(1.2)
    server.script = [(200, OK, False)]
    assert c.report([{"step": 2, "objective": 1.0}])["accepted"] == 1
    c.close()


def test_retrying_gives_up_after_the_retry_budget(server: Scripted) -> None:
    c = client(server, retry_seconds=0.5)
    server.script = [(500, b'{"error": "store unavailable"}', False)] * 50
    started = time.monotonic()
    with pytest.raises(CoordinatorUnavailable, match="store unavailable"):
        c.report([{"step": 1, "objective": 1.0}])
    assert time.monotonic() - started < 5


def test_large_batches_are_sent_in_requests_the_server_accepts(server: Scripted) -> None:
    c = client(server)
    reports = [{"step": i, "objective": 1.0} for i in range(MAX_REPORTS_PER_REQUEST + 5)]
    server.script = [(200, b'{"accepted": 10000}', False), (200, b'{"accepted": 5}', False)]
    assert c.report(reports)["accepted"] == len(reports)
    assert [len(body["reports"]) for body in server.seen] == [MAX_REPORTS_PER_REQUEST, 5]
