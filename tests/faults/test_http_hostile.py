"""The coordinator's HTTP API under attack: real experiments, real trial processes, and a test
that plays a hostile trial, a stranger and a flood of silent connections against them.

Each experiment runs through the CLI (a detached coordinator). Its trials write the credentials
they were given to a folder and wait for a ``release`` file, so the test can use and abuse those
credentials while the trials run; every test asserts on what the store holds afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ridgeline.errors import ObservationError
from ridgeline.store import open_store

TRIAL = """
import json, os, pathlib, time
import ridgeline as sherpa

folder = pathlib.Path(os.environ["HOSTILE_DIR"])
number = os.environ["RIDGELINE_TRIAL_ID"]
attempt = len(list(folder.glob(f"creds_{number}_*.json"))) + 1
creds = {k: os.environ[k] for k in ("RIDGELINE_TOKEN", "RIDGELINE_MASTER", "RIDGELINE_TRIAL_ID")}
tmp = folder / f"creds_{number}_{attempt}.tmp"
tmp.write_text(json.dumps(creds))
tmp.rename(folder / f"creds_{number}_{attempt}.json")

def released():
    while not (folder / "release").exists():
        time.sleep(0.05)

if os.environ.get("HOSTILE_REPORT_LATE"):
    released()
client = sherpa.Client()
trial = client.get_trial()
client.send_metrics(trial=trial, iteration=0, objective=1.0)
if os.environ.get("HOSTILE_CRASH_FIRST") and attempt == 1:
    os._exit(3)
released()
client.send_metrics(trial=trial, iteration=1, objective=0.5)
"""


def cli(*args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if result.returncode != 0 and args[:2] != ("e", "wait"):
        raise AssertionError(f"ridgeline {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


class Search:
    """One experiment whose trials wait for ``release()``; the test holds their credentials."""

    def __init__(
        self,
        root: Path,
        trials: int = 2,
        max_restarts: int = 0,
        concurrent: int | None = None,
        **cli_kw: Any,
    ) -> None:
        self.root = root
        (root / "trial.py").write_text(textwrap.dedent(TRIAL))
        (root / "config.yaml").write_text(
            textwrap.dedent(f"""
            name: hostile
            entrypoint: python3 trial.py
            max_restarts: {max_restarts}
            hyperparameters:
              lr: {{type: double, minval: 0.1, maxval: 1.0}}
            searcher: {{name: random, metric: loss, max_trials: {trials},
                        max_concurrent_trials: {concurrent or trials}}}
            """)
        )
        created = cli("e", "create", str(root / "config.yaml"), str(root), "--json", **cli_kw)
        self.id = int(json.loads(created.stdout)["id"])

    def experiment(self) -> Any:
        store = open_store(os.environ["RIDGELINE_STORAGE"])
        try:
            return store.get_experiment(self.id)
        finally:
            store.close()

    def coordinator(self, timeout: float = 60) -> dict[str, Any]:
        """The live coordinator's address record ({url, pid, port})."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.experiment().coordinator
            if info and info.get("url"):
                return dict(info)
            time.sleep(0.1)
        raise AssertionError("the coordinator never recorded its address")

    @property
    def url(self) -> str:
        return str(self.coordinator()["url"])

    @property
    def control_token(self) -> str:
        return str(self.experiment().config["token"])

    def creds(self, trial: int, attempt: int = 1, timeout: float = 90) -> dict[str, str]:
        path = self.root / f"creds_{trial}_{attempt}.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"trial {trial} attempt {attempt} never started")
            time.sleep(0.05)
        return dict(json.loads(path.read_text()))

    def token(self, trial: int, attempt: int = 1) -> str:
        return self.creds(trial, attempt)["RIDGELINE_TOKEN"]

    def release(self) -> None:
        (self.root / "release").touch()

    def wait(self, timeout: float = 120) -> str:
        cli("e", "wait", str(self.id), timeout=timeout)
        return str(self.experiment().state)

    def trials(self) -> dict[int, Any]:
        store = open_store(os.environ["RIDGELINE_STORAGE"])
        try:
            return {t.number: t for t in store.list_trials(self.id)}
        finally:
            store.close()

    def steps(self, trial: int) -> list[int]:
        store = open_store(os.environ["RIDGELINE_STORAGE"])
        try:
            record = self.trials()[trial]
            return [m.step for m in store.trial_metrics(record.id, "validation")]
        finally:
            store.close()

    def close(self) -> None:
        """Leave no process behind, whatever the test did."""
        self.release()
        info = self.experiment().coordinator or {}
        if info.get("pid"):
            try:
                os.kill(int(info["pid"]), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def user_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    monkeypatch.setenv("HOSTILE_DIR", str(workdir))
    return workdir


@pytest.fixture
def search(user_env: Path) -> Iterator[Search]:
    running = Search(user_env)
    try:
        yield running
    finally:
        running.close()


def call(
    url: str,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request as any HTTP client would send it; returns (status, JSON reply)."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    assert response.headers.get_content_type() == "application/json", data[:200]
    return response.status, json.loads(data)


def raw_request(url: str, head: bytes, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send bytes no well-behaved client would (non-ASCII headers); returns (status, JSON)."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        head_part, _, rest = reply.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head_part.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(rest) < length:
            rest += sock.recv(65536)
    status = int(head_part.split(b" ")[1])
    return status, json.loads(rest[:length])


def report(step: Any, objective: Any = 0.5, **extra: Any) -> dict[str, Any]:
    return {"reports": [{"step": step, "objective": objective, **extra}]}


# -- credentials ---------------------------------------------------------------------------


def test_a_trial_token_opens_its_own_trial_and_nothing_else(search: Search) -> None:
    one, two = search.token(1), search.token(2)
    url = search.url
    assert one != two and search.control_token not in (one, two)

    status, mine = call(url, "GET", "/api/v1/trials/1", one)
    assert status == 200 and "lr" in mine["parameters"]
    for method, path, body in [
        ("GET", "/api/v1/trials/2", None),
        ("POST", "/api/v1/trials/2/metrics", report(7, 99.0)),
        ("POST", "/api/v1/trials/2/progress", {"fraction": 0.5}),
        ("POST", "/api/v1/trials/2/early_exit", {"reason": "INVALID_HP"}),
        ("POST", "/api/v1/trials/2/exited", {"status": 0}),
        ("POST", "/api/v1/trials/2/preempt/ack", {}),
        ("POST", "/api/v1/trials/2/kill", {}),
        ("POST", "/api/v1/trials/1/kill", {}),
        ("POST", "/api/v1/experiment/kill", {}),
        ("POST", "/api/v1/experiment/pause", {}),
    ]:
        status, reply = call(url, method, path, one, body)
        assert status == 403, (method, path, status, reply)
        assert "trial 1" in reply["error"]

    # Strangers get nothing; the control token cannot pose as a trial.
    assert call(url, "GET", "/api/v1/trials/1")[0] == 401
    assert call(url, "GET", "/api/v1/trials/1", "x" * 43)[0] == 401
    assert call(url, "POST", "/api/v1/experiment/kill", one[:-1] + "A")[0] in (401, 403)
    status, reply = call(url, "POST", "/api/v1/trials/1/metrics", search.control_token, report(7))
    assert status == 403 and "control token" in reply["error"]
    assert call(url, "GET", "/api/v1/health") == (200, {"ok": True})

    # The control token (the CLI's) kills a trial; the other trial finishes untouched. Trial 2
    # sends its own first report before it waits; the kill comes after that has landed.
    deadline = time.monotonic() + 60
    while not search.steps(2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert call(url, "POST", "/api/v1/trials/2/kill", search.control_token, {})[0] == 200
    search.release()
    assert search.wait() == "COMPLETED"
    trials = search.trials()
    assert trials[1].state == "COMPLETED" and trials[2].state == "STOPPED"
    assert search.steps(1) == [0, 1]
    assert search.steps(2) == [0]  # nothing from trial 1's token landed in trial 2


def test_a_restarted_attempt_voids_the_previous_token(
    user_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTILE_CRASH_FIRST", "1")  # attempt 1 reports, then crashes
    search = Search(user_env, trials=1, max_restarts=1)
    try:
        first = search.token(1, attempt=1)
        second = search.token(1, attempt=2)  # the restart, waiting for release
        url = search.url
        assert first != second
        # A leftover process of attempt 1 (it still holds that token) cannot write.
        status, reply = call(url, "POST", "/api/v1/trials/1/metrics", first, report(5, 42.0))
        assert status == 401, reply
        assert call(url, "GET", "/api/v1/trials/1", first)[0] == 401
        assert call(url, "GET", "/api/v1/trials/1", second)[0] == 200
        search.release()
        assert search.wait() == "COMPLETED"
        (trial,) = search.trials().values()
        assert trial.state == "COMPLETED" and trial.restarts == 1
        assert search.steps(1) == [0, 1]  # no step 5
    finally:
        search.close()


def test_a_reattached_trial_keeps_working_with_its_token(
    user_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTILE_REPORT_LATE", "1")
    search = Search(user_env, trials=1)
    try:
        token = search.token(1)
        old = search.coordinator()
        os.kill(int(old["pid"]), signal.SIGKILL)  # the trial process runs on
        deadline = time.monotonic() + 30
        while Path(f"/proc/{old['pid']}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        cli("e", "resume", str(search.id))
        deadline = time.monotonic() + 60
        while (search.experiment().coordinator or {}).get("pid") in (None, old["pid"]):
            assert time.monotonic() < deadline, "no new coordinator"
            time.sleep(0.1)
        url = search.url
        status, reply = call(url, "GET", "/api/v1/trials/1", token)
        assert status == 200, reply
        search.release()
        assert search.wait() == "COMPLETED"
        (trial,) = search.trials().values()
        assert trial.state == "COMPLETED" and trial.restarts == 0  # re-attached, not re-run
        assert search.steps(1) == [0, 1]
    finally:
        search.close()


# -- bounded, checked input ----------------------------------------------------------------

BAD_REPORTS: list[tuple[str, bytes, str]] = [
    ("malformed JSON", b'{"reports": [', "malformed JSON"),
    ("body not an object", b"[1, 2]", "must be a JSON object"),
    ("reports not a list", b'{"reports": 3}', "must be a list"),
    ("report not an object", b'{"reports": [3]}', "must be an object"),
    ("step 2**63", json.dumps(report(2**63)).encode(), "2**63-1"),
    ("step -1", json.dumps(report(-1)).encode(), "between 0 and 2**63-1"),
    ("step NaN", b'{"reports": [{"step": NaN, "objective": 1.0}]}', "must be an integer"),
    ("step a string", json.dumps(report("3")).encode(), "must be an integer"),
    ("objective a string", json.dumps(report(1, "0.5")).encode(), "must be a number"),
    ("objective too big for a float", json.dumps(report(1, 10**400)).encode(), "too large"),
    (
        "integer of 5,000 digits",
        b'{"reports": [{"step": 1, "objective": 1' + b"0" * 5000 + b"}]}",
        "malformed JSON",
    ),
    ("context not an object", json.dumps(report(1, 0.5, context=[1])).encode(), "context"),
    (
        "lone surrogate in a value",
        b'{"reports": [{"step": 1, "objective": 1.0, "context": {"note": "\\ud800"}}]}',
        "surrogate",
    ),
    (
        "lone surrogate in a key",
        b'{"reports": [{"step": 1, "objective": 1.0, "context": {"\\udfff": 1}}]}',
        "surrogate",
    ),
    (
        "invalid UTF-8",
        b'{"reports": [{"step": 1, "objective": 1.0, "x": "\xff\xfe"}]}',
        "malformed JSON",
    ),
    ("nesting 100,000 deep", b'{"reports": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    (
        "nesting 40 deep",
        b'{"reports": [{"step": 1, "objective": 1.0, "context": '
        + b'{"a": ' * 40
        + b"1"
        + b"}" * 40
        + b"}]}",
        "nested deeper than 32",
    ),
    (
        "group metrics with a negative step",
        json.dumps({"reports": [{"group": "training", "step": -5, "values": {}}]}).encode(),
        "between 0 and 2**63-1",
    ),
    (
        "searcher metric a string",
        json.dumps(
            {"reports": [{"group": "validation", "step": 1, "values": {"loss": "low"}}]}
        ).encode(),
        "must be a number",
    ),
]


def test_hostile_bodies_get_a_400_with_the_reason_and_nothing_is_stored(search: Search) -> None:
    token, url = search.token(1), search.url
    path = "/api/v1/trials/1/metrics"
    for name, body, words in BAD_REPORTS:
        status, reply = call(url, "POST", path, token, raw=body)
        assert status == 400, (name, status, reply)
        assert words in reply["error"], (name, reply)

    too_many = {"reports": [{"step": i, "objective": 1.0} for i in range(10_001)]}
    status, reply = call(url, "POST", path, token, too_many)
    assert status == 413 and "at most 10000 per request" in reply["error"]
    status, reply = call(url, "POST", path, token, raw=b" " * (9 * 1024 * 1024))
    assert status == 413 and "larger than" in reply["error"]

    for method, where, body, words in [
        ("POST", "/api/v1/trials/1/progress", b'{"fraction": NaN}', "fraction"),
        ("POST", "/api/v1/trials/1/progress", b'{"length": "far"}', "length"),
        ("POST", "/api/v1/trials/1/early_exit", b'{"reason": ["INVALID_HP"]}', "reason"),
        ("POST", "/api/v1/trials/1/exited", b'{"status": 256}', "exit status"),
        ("POST", "/api/v1/trials/1/exited", b'{"status": true}', "exit status"),
        ("POST", "/api/v1/trials/1/operation/1/complete", b'{"metric": "good"}', "number"),
        ("POST", "/api/v1/trials/1/operation/99999999999999999999/complete", b"{}", "operation"),
        ("GET", "/api/v1/trials/abc", None, "trial id"),
        ("GET", "/api/v1/trials/1/preempt?wait=soon", None, "wait"),
    ]:
        status, reply = call(url, method, where, token, raw=body)
        assert status == 400, (where, body, status, reply)
        assert words in reply["error"], (where, reply)

    # A token that is not ASCII is refused for what it is, not with a traceback.
    head = (
        (b"GET /api/v1/trials/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
        + "t\u00f6ken\u2603".encode()
        + b"\r\n"
    )
    status, reply = raw_request(url, head)
    assert status == 400 and "ASCII" in reply["error"]

    head = b"GET /api/v1/trials/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
    assert raw_request(url, head)[0] == 400
    # Unknown routes and methods answer in JSON too.
    assert call(url, "GET", "/api/v1/nothing", token)[0] == 404
    assert call(url, "DELETE", "/api/v1/trials/1/metrics", token)[0] == 405

    # The trial itself is unharmed: it reports, finishes, and only its reports are stored.
    search.release()
    assert search.wait() == "COMPLETED"
    assert search.steps(1) == [0, 1] and search.steps(2) == [0, 1]


def test_trial_client_refuses_bad_steps_at_once(
    search: Search, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``send_metrics`` with a step no store can hold fails within a second, with the reason,
    and the coordinator's 4xx is final for the trial client (no retrying for minutes)."""
    import ridgeline as sherpa
    from ridgeline.trial.client import TrialClient

    creds = search.creds(1)
    for name, value in creds.items():
        monkeypatch.setenv(name, value)
    client = sherpa.Client()
    trial = client.get_trial()
    for step in (2**63, -1):
        started = time.monotonic()
        with pytest.raises(ObservationError, match=r"between 0 and 2\*\*63-1"):
            client.send_metrics(trial=trial, iteration=step, objective=0.5)
        assert time.monotonic() - started < 1.0

    # Past the client-side check, straight to the coordinator: its 400 is raised at once.
    raw = TrialClient(retry_seconds=60)
    for reports, words in (
        ([{"step": 2**63, "objective": 0.5}], "2**63-1"),
        ([{"group": "training", "step": -1, "values": {"x": 1}}], "2**63-1"),
        ([{"step": 1, "objective": 10**400}], "too large for a float"),
    ):
        started = time.monotonic()
        with pytest.raises(ObservationError, match="HTTP 400") as caught:
            raw.report(reports)
        assert time.monotonic() - started < 1.0
        assert words in str(caught.value)
    raw.close()
    search.release()
    assert search.wait() == "COMPLETED"
    assert search.steps(1) == [0, 1]


def test_stalled_requests_are_cut_off(search: Search) -> None:
    """Headers that never end, a body that never comes: the coordinator closes the first
    and answers 408 to the second instead of holding them for an hour."""
    from ridgeline.engine.limits import BODY_TIMEOUT, HEADER_TIMEOUT

    token, url = search.token(1), search.url
    host, _, port = url.removeprefix("http://").rpartition(":")
    headers = socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT + 30)
    body = socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT + 30)
    try:
        started = time.monotonic()
        headers.sendall(b"GET /api/v1/trials/1 HTTP/1.1\r\nHost: x\r\n")
        body.sendall(
            f"POST /api/v1/trials/1/metrics HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"reports": ['
        )
        assert headers.recv(1024) == b""  # closed without a reply
        assert time.monotonic() - started < HEADER_TIMEOUT + 10
        reply = b""
        while b"}" not in reply:
            chunk = body.recv(65536)
            assert chunk, "closed without a reply"
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408")
        assert b"not received within" in reply
        assert time.monotonic() - started < BODY_TIMEOUT + 10
    finally:
        headers.close()
        body.close()
    search.release()
    assert search.wait() == "COMPLETED"
    assert search.steps(1) == [0, 1]


# -- connection floods ---------------------------------------------------------------------


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _soft_fd_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit")


def _silent_connections(port: int, pid: int, count: int) -> list[socket.socket]:
    """Open ``count`` connections to the coordinator ``pid`` that send nothing, in waves of
    100 that it has taken in (or stopped taking in) before the next: a listener's backlog
    is short, and the kernel drops what overflows it until the client retries."""
    sockets: list[socket.socket] = []
    while len(sockets) < count:
        before = _fds(pid)
        for _ in range(min(100, count - len(sockets))):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            sockets.append(sock)
        deadline = time.monotonic() + 3
        while _fds(pid) < before + 95 and time.monotonic() < deadline:
            time.sleep(0.05)
    return sockets


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_silent_connections_cannot_starve_trials(
    user_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,100 connections that never send a byte: a coordinator started with the common soft
    limit of 1,024 descriptors keeps serving, its trials still connect, report and finish."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard open-file limit ({hard}) leaves no room for the flood")
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 4096, hard)
    )
    monkeypatch.setenv("HOSTILE_REPORT_LATE", "1")  # trials connect only once the flood is on

    def common_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    # One trial at a time: the second starts while the flood is on.
    search = Search(user_env, trials=2, concurrent=1, preexec_fn=common_limit)
    flood: list[socket.socket] = []
    try:
        search.creds(1)
        info = search.coordinator()
        pid, port = int(info["pid"]), int(info["port"])
        flood = _silent_connections(port, pid, 1100)
        peak = _fds(pid)
        search.release()
        deadline = time.monotonic() + 60
        while search.experiment().state == "ACTIVE" and time.monotonic() < deadline:
            peak = max(peak, _fds(pid)) if Path(f"/proc/{pid}").exists() else peak
            time.sleep(0.2)
        assert search.experiment().state == "COMPLETED", "trials were starved"
        trials = search.trials()
        assert [trials[n].state for n in (1, 2)] == ["COMPLETED", "COMPLETED"]
        assert search.steps(1) == [0, 1] and search.steps(2) == [0, 1]
        assert peak <= 1024 + 200  # the connection cap, plus the store, logs and trials
    finally:
        for sock in flood:
            sock.close()
        search.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_coordinator_raises_its_open_file_limit(user_env: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip("the hard limit is too low to tell")

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    search = Search(user_env, trials=1, preexec_fn=low_limit)
    try:
        search.creds(1)
        pid = int(search.coordinator()["pid"])
        expected = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        assert _soft_fd_limit(pid) == expected
        search.release()
        assert search.wait() == "COMPLETED"
    finally:
        search.close()
