"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): pages load,
every plot draws, the table sorts, filters and picks columns, a live search's reports and log
arrive without a reload, and "Stop" on a running trial ends its real process.

Screenshots of every page go to $RIDGELINE_SCREENSHOTS (default: the test's temporary
folder). Chromium comes from scripts/ensure-chromium.sh; without it these tests skip, except
under CI=true where they fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.test_dashboard_http import start_dashboard

from ridgeline.engine.run import process_alive
from ridgeline.store import open_store
from ridgeline.store.records import RUNNING, TRIAL_DONE_STATES
from ridgeline.testing.searchdata import record_search

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--enable-unsafe-swiftshader",  # WebGL in software: the parallel-coordinates lines
]
VIEWPORT = {"width": 1000, "height": 700}
PLOTS = ["history", "curves", "parcoords", "importance", "slice", "rungs", "lineage"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must provide it (scripts/ensure-chromium.sh, pip .[dev])")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module (a launch costs about half a second)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing (bash scripts/ensure-chromium.sh)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("RIDGELINE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone dashboard over a recorded ASHA/PBT-shaped search; its login link."""
    db = tmp_path_factory.mktemp("recorded") / "store.db"
    store = open_store(db)
    record_search(store, trials=80, steps=30, name="asha-pbt")
    store.close()
    process, link = start_dashboard(db)
    try:
        yield link
    finally:
        process.terminate()
        process.wait(10)


def plots_drawn(page: Any) -> dict[str, tuple[str | None, int, int]]:
    page.wait_for_function(
        "[...document.querySelectorAll('.plot')].every(d => d.dataset.plotted)", timeout=30000
    )
    drawn = {}
    for name in PLOTS:
        div = page.locator(f"#plot-{name}")
        drawn[name] = (
            div.get_attribute("data-plotted"),
            int(div.get_attribute("data-traces") or 0),
            int(div.get_attribute("data-marks") or 0),
        )
    return drawn


def test_pages_load_and_every_plot_draws(browser: Any, recorded: str, shots: Path) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(recorded)  # the login link: a session cookie, then the experiments list
    page.wait_for_selector("body[data-loaded='1']")
    row = page.locator("#experiments tbody tr")
    assert row.count() == 1 and "asha-pbt" in row.inner_text()
    page.screenshot(path=str(shots / "experiments.png"))

    page.click("#experiments tbody a >> nth=1")
    page.wait_for_selector("body[data-loaded='1']")
    drawn = plots_drawn(page)
    for name, (state, traces, marks) in drawn.items():
        assert state == "1" and traces >= 1 and marks >= 1, (name, drawn[name])
    assert drawn["curves"][1] == 11  # the others, faint, and the top 10
    assert "fANOVA" in page.inner_text("#importance-method")
    page.screenshot(path=str(shots / "experiment.png"), full_page=True)
    page.screenshot(path=str(shots / "experiment-top.png"))
    page.evaluate("document.getElementById('plot-importance').parentElement.scrollIntoView()")
    page.evaluate("window.scrollBy(0, -12)")
    page.screenshot(path=str(shots / "experiment-plots.png"))
    page.evaluate("window.scrollTo(0, 0)")

    # The table: one column per hyperparameter and metric; sort, filter, pick columns.
    headers = page.locator("#trials thead th").all_inner_texts()
    for column in ("lr", "layers", "optimizer", "best objective", "loss"):
        assert any(h.startswith(column) for h in headers), (column, headers)
    assert page.locator("#trials tbody tr").count() == 80
    page.click("#trials thead th[data-key='best']")
    best = [float(x) for x in page.locator("#trials tbody td[data-key='best']").all_inner_texts()]
    assert best == sorted(best)
    page.fill("#filter", "optimizer=adam")
    kinds = set(page.locator("#trials tbody td[data-key='p:optimizer']").all_inner_texts())
    assert kinds == {"adam"}
    page.fill("#filter", "")
    page.click("#columns summary")
    page.uncheck("#column-list input[data-key='p:layers']")
    assert "layers" not in page.locator("#trials thead th").all_inner_texts()

    page.click("#trials tbody tr >> nth=0 >> a")
    page.wait_for_selector("body[data-loaded='1']")
    page.wait_for_selector("#plot-metrics[data-plotted='1']")
    assert int(page.get_attribute("#plot-metrics", "data-marks") or 0) > 0
    assert page.locator("#params tr").count() == 3
    assert page.locator("#checkpoints tbody tr").count() == 1
    page.screenshot(path=str(shots / "trial-recorded.png"), full_page=True)
    assert not errors
    page.close()


def test_pages_need_a_login(browser: Any, recorded: str) -> None:
    context = browser.new_context()  # no cookie
    page = context.new_page()
    base = recorded.split("login")[0]
    response = page.goto(base + "experiments/1")
    assert response.status == 401 and "/login" in page.url
    assert "login link" in page.inner_text("body")
    context.close()


# -- a live search with its coordinator's dashboard ---------------------------------------------
TRIAL = """
import time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
for i in range(1, 2000):
    print(f"training step {i}", flush=True)
    client.send_metrics(trial=trial, iteration=i, objective=1.0 / i, context={"loss": 2.0 / i})
    time.sleep(0.3)
"""

RUNNER = """
import sys
import ridgeline as sherpa
sherpa.optimize(
    parameters=[sherpa.Continuous("lr", [0.001, 0.1])],
    algorithm=sherpa.algorithms.RandomSearch(max_num_trials=2),
    lower_is_better=True,
    scheduler=sherpa.schedulers.LocalScheduler(),
    filename="trial.py",
    output_dir="out",
    verbose=0,
)
"""


@pytest.fixture
def live_search(workdir: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """A real search (long trials, one at a time) run by ``optimize`` in its own process; its
    login link comes from the coordinator's terminal output."""
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    (workdir / "runner.py").write_text(textwrap.dedent(RUNNER))
    process = subprocess.Popen(
        [sys.executable, "runner.py"], stderr=subprocess.PIPE, text=True, cwd=workdir
    )
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            match = re.search(r"Dashboard: (\S+)", line)
            if match and not found:
                found.append(match.group(1))
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(30), "the coordinator printed no dashboard link"
        yield process, found[0], workdir / "out" / "ridgeline.db"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_live_updates_and_stopping_a_running_trial(
    browser: Any, live_search: tuple[subprocess.Popen[str], str, Path], shots: Path
) -> None:
    process, link, db = live_search
    page = browser.new_page(viewport=VIEWPORT)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(link)  # the coordinator's dashboard shows its own experiment
    page.wait_for_selector("body[data-loaded='1']")
    assert re.search(r"/experiments/1$", page.url)
    page.wait_for_selector("body[data-live='1']")
    page.wait_for_selector("#trials tbody tr[data-state='RUNNING'] button.stop", timeout=20000)
    plots_drawn(page)
    page.screenshot(path=str(shots / "experiment-live.png"))

    page.goto(link.split("login")[0] + "experiments/1/trials/1")
    page.wait_for_selector("body[data-loaded='1']")
    # New reports and log lines arrive over server-sent events, without a reload.
    page.wait_for_selector("#reports tr.new", timeout=15000)
    page.wait_for_function(
        "document.getElementById('log').textContent.includes('training step')", timeout=15000
    )
    first = int(page.locator("#reports tbody tr >> nth=0").get_attribute("data-seq") or 0)
    page.wait_for_function(
        f"+document.querySelector('#reports tbody tr').dataset.seq > {first}", timeout=15000
    )
    page.screenshot(path=str(shots / "trial.png"))
    assert page.is_disabled("#pause-trial")  # a SHERPA-style script cannot checkpoint on request

    store = open_store(db)
    try:
        trial = store.list_trials(1)[0]
        assert trial.number == 1 and trial.state == RUNNING
        pid = int(trial.job["pid"])  # type: ignore[index]
        assert process_alive(pid)
        page.click("#stop")
        deadline = time.monotonic() + 20
        while store.get_trial(trial.id).state not in TRIAL_DONE_STATES:
            assert time.monotonic() < deadline, "the stopped trial did not end"
            time.sleep(0.1)
        while process_alive(pid):
            assert time.monotonic() < deadline, f"trial process {pid} is still there"
            time.sleep(0.1)
        page.wait_for_function(
            "document.getElementById('state').textContent === 'STOPPED'", timeout=10000
        )
        assert store.get_trial(trial.id).state == "STOPPED"
    finally:
        store.close()

    # A configuration queued by hand becomes a trial of its own.
    page.goto(link.split("login")[0] + "experiments/1")
    page.wait_for_selector("body[data-live='1']")
    page.click("#queue summary")
    page.fill("#queue-params", '{"lr": 0.0123}')
    page.click("#queue-button")
    page.wait_for_selector("#queue-result[data-trial]")
    queued = int(page.get_attribute("#queue-result", "data-trial") or 0)
    store = open_store(db)
    try:
        by_number = {t.number: t for t in store.list_trials(1)}
        assert by_number[queued].params == {"lr": 0.0123}
    finally:
        store.close()
    page.fill("#queue-params", '{"learning_rate": 1}')
    page.click("#queue-button")
    page.wait_for_function(
        "document.getElementById('queue-result').textContent.includes('unknown parameter')"
    )

    # The experiment's Kill ends the search.
    page.click("#kill")
    assert process.wait(30) == 0
    store = open_store(db)
    try:
        assert store.get_experiment(1).state == "CANCELED"
        assert store.get_trial(by_number[queued].id).state == "CANCELED"  # it never started
    finally:
        store.close()
    page.close()
