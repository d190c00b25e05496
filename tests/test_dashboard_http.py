"""The dashboard's server over HTTP, as a browser or a script would meet it: login, session
cookie, CSRF on POSTs, nothing changed by a GET; and the coordinator serving one."""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ridgeline
from ridgeline.store import open_store
from ridgeline.store.records import COMPLETED
from ridgeline.testing.searchdata import record_search

REPO = Path(__file__).resolve().parent.parent


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def start_dashboard(db: Path) -> tuple[subprocess.Popen[str], str]:
    """``ridgeline dashboard`` on a free port; its process and login link."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ridgeline.cli", "--storage", str(db), "dashboard", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for _ in range(20):
        line = process.stderr.readline()
        found = re.search(r"Log in: (http://127\.0\.0\.1:\d+/login\?token=\S+)", line)
        if found:
            return process, found.group(1)
    process.kill()
    raise AssertionError("the dashboard printed no login link")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("dash") / "store.db"
    store = open_store(db)
    record_search(store, trials=12, steps=9)
    store.close()
    process, link = start_dashboard(db)
    try:
        yield link, db
    finally:
        process.terminate()
        process.wait(10)


def opener(jar: http.cookiejar.CookieJar | None = None) -> urllib.request.OpenerDirector:
    handlers: list[Any] = [_NoRedirect()]
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    return urllib.request.build_opener(*handlers)


def call(
    open_: urllib.request.OpenerDirector,
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with open_.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def logged_in(link: str) -> tuple[urllib.request.OpenerDirector, str]:
    jar = http.cookiejar.CookieJar()
    browser = opener(jar)
    status, headers, _ = call(browser, link)
    assert status == 303
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    base = link.split("login")[0]
    _, _, body = call(browser, base + "api/session")
    return browser, json.loads(body)["csrf"]


def test_login_is_required(served: tuple[str, Path]) -> None:
    link, _ = served
    base = link.split("login")[0]
    anonymous = opener()
    status, _, body = call(anonymous, base + "api/experiments")
    assert status == 401 and b"log in" in body
    status, headers, _ = call(anonymous, base + "experiments/1")
    assert status == 303 and headers["Location"].startswith("/login?next=")
    status, headers, _ = call(anonymous, base + "login?token=wrong")
    assert status == 401 and "Set-Cookie" not in headers
    status, _, _ = call(anonymous, base + "login")
    assert status == 401
    # The static assets are public, the data is not.
    assert call(anonymous, base + "static/dashboard.js")[0] == 200


def test_a_session_reads_and_plotly_is_served_offline(served: tuple[str, Path]) -> None:
    link, _ = served
    base = link.split("login")[0]
    browser, csrf = logged_in(link)
    assert csrf
    for elsewhere in ("//evil.example/x", "/\\evil.example", "https://evil.example"):
        status, headers, _ = call(opener(), f"{link}&next={elsewhere}")
        assert status == 303 and headers["Location"] == "/"  # never to another site
    status, headers, body = call(browser, base + "api/experiments")
    assert status == 200 and headers["X-Frame-Options"] == "DENY"
    (row,) = json.loads(body)
    assert row["trials"] == 12 and row["state"] == COMPLETED and row["best"] is not None
    status, _, body = call(browser, base + "api/experiments/1")
    overview = json.loads(body)
    assert {p["name"] for p in overview["params"]} == {"lr", "layers", "optimizer"}
    assert len(overview["trials"]) == 12 and overview["curves"]["top"]
    assert call(browser, base + "api/experiments/7")[0] == 404
    status, headers, body = call(browser, base + "static/plotly.min.js")
    assert status == 200 and b"plotly.js" in body[:200] and "max-age" in headers["Cache-Control"]


def test_state_changes_need_post_and_the_csrf_token(served: tuple[str, Path]) -> None:
    link, db = served
    base = link.split("login")[0]
    browser, csrf = logged_in(link)
    kill = base + "api/experiments/1/kill"
    assert call(browser, kill, "POST")[0] == 403  # no CSRF header
    assert call(browser, kill, "POST", {"X-CSRF-Token": "forged"})[0] == 403
    assert call(opener(), kill, "POST", {"X-CSRF-Token": csrf})[0] == 401  # no session
    assert call(browser, kill)[0] == 405  # GET changes nothing
    assert call(browser, base + "api/experiments/1/trials/1/stop")[0] == 405
    # The right token passes the guard; with no coordinator running, the page is told so.
    status, _, body = call(browser, kill, "POST", {"X-CSRF-Token": csrf})
    assert status == 409 and b"no coordinator is running experiment 1" in body
    queue = base + "api/experiments/1/trials"
    status, _, body = call(browser, queue, "POST", {"X-CSRF-Token": csrf}, b'{"params": 3}')
    assert status == 400 and b"'params' must be an object" in body
    status, _, body = call(browser, queue, "POST", {"X-CSRF-Token": csrf}, b'{"params": {"lr": 1}}')
    assert status == 409 and b"no coordinator" in body
    store = open_store(db)
    try:
        assert store.get_experiment(1).state == COMPLETED
    finally:
        store.close()


def test_a_remote_host_needs_an_explicit_flag(tmp_path: Path) -> None:
    open_store(tmp_path / "s.db").close()
    result = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", "--storage", str(tmp_path / "s.db")]
        + ["dashboard", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "--allow-remote" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", "dashboard", "--storage", str(tmp_path / "no.db")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "no ridgeline store at" in missing.stderr
    assert not (tmp_path / "no.db").exists()


TRIAL = """
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
"""


@pytest.mark.parametrize("disable", [False, True])
def test_the_coordinator_serves_a_dashboard_unless_disabled(
    workdir: Path, disable: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    ridgeline.optimize(
        parameters=[ridgeline.Continuous("x", [0.0, 1.0])],
        algorithm=ridgeline.algorithms.RandomSearch(max_num_trials=1),
        lower_is_better=True,
        scheduler=ridgeline.schedulers.LocalScheduler(),
        filename="trial.py",
        output_dir="out",
        verbose=0,
        disable_dashboard=disable,
    )
    err = capsys.readouterr().err
    log = (workdir / "out" / "log.txt").read_text()
    store = open_store(workdir / "out" / "ridgeline.db")
    try:
        started = [e.data for e in store.read_events(1) if e.kind == "coordinator_started"]
    finally:
        store.close()
    assert started
    link = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+/)login\?token=(\S+)", err)
    if disable:
        assert link is None and "Dashboard" not in log
    else:
        assert link is not None
        # The log names the address, never the token.
        assert f"Dashboard: {link.group(1)}" in log and link.group(2) not in log


def test_experiment_create_prints_the_dashboard_link(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Core-API experiment's coordinator serves the dashboard; `experiment create` prints
    its login link (the coordinator's log names only the address)."""
    import shutil

    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    shutil.copytree(REPO / "examples" / "core_api", workdir / "stage3")
    ridgeline_cli = [sys.executable, "-m", "ridgeline.cli"]
    created = subprocess.run(
        [*ridgeline_cli, "e", "create", "stage3/3_hpsearch.yaml", "stage3"]
        + ["--config", "searcher.name=random", "--config", "searcher.max_trials=1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    link = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+/)login\?token=(\S+)", created.stdout)
    assert link is not None, created.stdout
    subprocess.run([*ridgeline_cli, "e", "wait", "1"], capture_output=True, timeout=120)
    log = subprocess.run(
        [*ridgeline_cli, "e", "logs", "--coordinator", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert f"Dashboard: {link.group(1)}" in log and link.group(2) not in log


def _wait(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_pause_and_resume_one_core_api_trial(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the dashboard: a running Core-API trial checkpoints and pauses while the
    experiment stays active, then resumes from its checkpoint in a new process."""
    from tests.e2e.test_core_api import config

    from ridgeline.engine.run import process_alive

    db = workdir / "data" / "store.db"
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(db))
    hyperparameters = {"increment_by": 1, "sleep": 0.02}
    cfg = config(workdir, hyperparameters=hyperparameters, max_length=100_000, max_trials=1)
    created = subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", "e", "create", str(cfg), str(workdir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = re.search(r"Dashboard: (\S+)", created.stdout)
    assert found is not None, created.stdout
    browser, csrf = logged_in(found.group(1))
    base = found.group(1).split("login")[0] + "api/experiments/1/"
    post = {"X-CSRF-Token": csrf}
    store = open_store(db)
    try:

        def trial() -> Any:
            trials = store.list_trials(1)
            return trials[0] if trials else None

        first = _wait("a running trial", lambda: (t := trial()) and t.state == "RUNNING" and t)
        _wait("a checkpoint", lambda: store.list_checkpoints(first.id))
        assert call(browser, base + "trials/1/pause", "POST", post)[0] == 200
        _wait("the trial paused", lambda: trial().state == "PAUSED")
        _wait("its process gone", lambda: not process_alive(int(first.job["pid"])))
        time.sleep(1.0)
        assert trial().state == "PAUSED" and store.get_experiment(1).state == "ACTIVE"
        status, _, body = call(browser, base + "trials/1/pause", "POST", post)
        assert status == 409 and b"not running" in body
        assert call(browser, base + "trials/1/resume", "POST", post)[0] == 200
        again = _wait(
            "the trial running again",
            lambda: (
                (t := trial()) and t.state == "RUNNING" and t.job["pid"] != first.job["pid"] and t
            ),
        )
        assert process_alive(int(again.job["pid"]))
        assert call(browser, base + "kill", "POST", post)[0] == 200
        _wait("the experiment killed", lambda: store.get_experiment(1).state == "CANCELED")
    finally:
        store.close()
        subprocess.run(
            [sys.executable, "-m", "ridgeline.cli", "e", "kill", "1"], capture_output=True
        )
