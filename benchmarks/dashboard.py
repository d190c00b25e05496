"""How fast the dashboard shows a large search, printed as a table.

    python benchmarks/dashboard.py [--trials 10000] [--steps 100] [--db PATH]

Records a search of ``trials`` x ``steps`` validation reports in an SQLite store (or reuses
``--db``), serves it with ``ridgeline dashboard`` in its own process, and measures:
the experiment page's JSON on the first request (the store read in full) and on the next one
(nothing new: the data computed before); then, in headless Chromium (/usr/bin/chromium with
Playwright), the experiment page from navigation to its first paint (header and trials table
drawn), and to every plot drawn (after the browser parsed plotly.js, 4.8 MB).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ridgeline.store import open_store
from ridgeline.testing.searchdata import record_search

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"]
ARGS += ["--disable-background-networking", "--enable-unsafe-swiftshader"]


def timed_get(opener: urllib.request.OpenerDirector, url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with opener.open(url, timeout=600) as response:
        size = len(response.read())
    return time.perf_counter() - start, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--db", help="an SQLite store to reuse (made when missing)")
    args = parser.parse_args()
    db = Path(args.db or Path(tempfile.mkdtemp()) / "big.db")
    if not db.exists():
        store = open_store(db)
        start = time.perf_counter()
        record_search(store, args.trials, args.steps, name="big", rungs=False)
        print(f"recorded {args.trials} x {args.steps} in {time.perf_counter() - start:.1f} s")
        store.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "ridgeline.cli", "--storage", str(db), "dashboard", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        link = ""
        while not link:
            found = re.search(r"Log in: (\S+)", server.stderr.readline())
            link = found.group(1) if found else ""
        base = link.split("login")[0]
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(link, timeout=30).read()
        cold, size = timed_get(opener, base + "api/experiments/1")
        warm, _ = timed_get(opener, base + "api/experiments/1")
        rows = [
            ("page JSON, first request (store read in full)", f"{cold:.2f} s"),
            ("page JSON, next request (nothing new)", f"{warm * 1000:.0f} ms"),
            ("page JSON size", f"{size / 1e6:.2f} MB"),
        ]
        rows += browser_times(link, base)
    finally:
        server.terminate()
        server.wait(10)
    print("| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


def browser_times(link: str, base: str) -> list[tuple[str, str]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(link)
        for visit in ("first visit", "next visit (plotly.js cached)"):
            start = time.perf_counter()
            page.goto(base + "experiments/1")
            page.wait_for_selector("body[data-painted='1']", timeout=600_000)
            painted = time.perf_counter() - start
            page.wait_for_function(
                "[...document.querySelectorAll('.plot')].every(d => d.dataset.plotted)",
                timeout=600_000,
            )
            plotted = time.perf_counter() - start
            fcp = page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
            )
            out.append((f"{visit}: first contentful paint (browser)", f"{fcp / 1000:.2f} s"))
            out.append((f"{visit}: header and table painted", f"{painted:.2f} s"))
            out.append((f"{visit}: every plot drawn", f"{plotted:.2f} s"))
        browser.close()
    return out


if __name__ == "__main__":
    main()
