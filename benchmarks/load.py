"""Report load on one coordinator, printed as a table.

    python benchmarks/load.py                 # both scenarios, SQLite and PostgreSQL
    python benchmarks/load.py --markdown      # the same as a Markdown table
    python benchmarks/load.py --stores sqlite --scenarios processes

Scenarios (each ends with exactly ``trials x reports`` rows in the store, or it is reported):

* ``processes``: 64 trial scripts (``ridgeline.Client().send_metrics``) started by
  ``ridgeline.optimize`` with ``max_concurrent=64`` and a ``LocalScheduler``, 1,000 reports each.
* ``clients``: 256 trial clients (``ridgeline.trial.client.TrialClient``) on threads of one
  process against one coordinator whose scheduler starts nothing, 250 reports each.
* ``floor`` (``--scenarios floor``): the ``processes`` trial script, unchanged, against an
  aiohttp server that answers its two routes at once and keeps nothing: no token check, no
  store, no searcher. It is the most that per-report request and reply can carry on this
  machine, the ceiling for the other rows.

Measured: reports accepted per second (first send to last acknowledgement, over all trials),
p50/p99/max ``send_metrics`` latency (measured where the report is sent), the coordinator
process's CPU time and peak RSS, and the rows in the store afterwards. The coordinator runs in
its own process (this script, re-invoked), so its CPU and memory are its own.

PostgreSQL: ``--pg-url`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) names a
server where a throw-away database is created for each run and dropped afterwards; without a
server the PostgreSQL rows say so.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRIAL = """\
import array, os, time
import ridgeline

client = ridgeline.Client()
trial = client.get_trial()
reports = int(os.environ["LOAD_REPORTS"])
latencies = array.array("d")
start = time.time()
for step in range(1, reports + 1):
    sent = time.perf_counter()
    client.send_metrics(trial, step, 1.0 / step + trial.parameters["x"], {"seen": step})
    latencies.append(time.perf_counter() - sent)
end = time.time()
with open(os.path.join(os.environ["LOAD_OUT"], f"{trial.id}.bin"), "wb") as handle:
    array.array("d", [start, end]).tofile(handle)
    latencies.tofile(handle)
"""


# -- the coordinator side (this script re-invoked) ----------------------------------------------
def _spool_scheduler(spool: Path) -> Any:
    """A scheduler that starts nothing: each trial's environment goes to ``spool`` for the
    clients to pick up, and the trial ends when its ``<n>.exit`` file appears."""
    from ridgeline.schedulers.base import Job, Scheduler

    class SpoolScheduler(Scheduler):
        def submit(
            self,
            command: Sequence[str],
            env: Mapping[str, str],
            name: str,
            cwd: str | None = None,
        ) -> Job:
            keep = {k: v for k, v in env.items() if k.startswith("RIDGELINE_")}
            tmp = spool / f".{name}.json"
            tmp.write_text(json.dumps(keep))
            tmp.rename(spool / f"{name}.json")
            return Job(name, {})

        async def wait(self, job: Job) -> int | None:
            done = spool / f"{job.name}.exit"
            while not done.exists():
                await asyncio.sleep(0.1)
            return 0

        def kill(self, job: Job, force: bool = False) -> None:
            (spool / f"{job.name}.exit").touch()

    return SpoolScheduler()


def coordinator_main(args: argparse.Namespace) -> None:
    """Run one search in this process; write its figures to ``args.result``."""
    import ridgeline
    from ridgeline.store import open_store

    work = Path(args.work)
    out = work / "out"
    if args.scenario == "floor":
        floor_main(args, work)
        return
    if args.scenario == "processes":
        script = work / "trial.py"
        script.write_text(TRIAL)
        scheduler: Any = ridgeline.LocalScheduler()
        command: str | None = f"{sys.executable} {script}"
    else:
        scheduler = _spool_scheduler(work / "spool")
        command = "true"
    os.environ["LOAD_REPORTS"] = str(args.reports)
    os.environ["LOAD_OUT"] = str(work / "latency")
    wall = time.time()
    ridgeline.optimize(
        [ridgeline.Continuous("x", [0.0, 1.0])],
        ridgeline.algorithms.RandomSearch(max_num_trials=args.trials),
        True,
        scheduler,
        command=command,
        output_dir=str(out),
        max_concurrent=args.trials,
        verbose=0,
        seed=0,
        storage=args.storage or None,
    )
    wall = time.time() - wall
    usage = resource.getrusage(resource.RUSAGE_SELF)
    store = open_store(args.storage or out / "ridgeline.db")
    try:
        experiment = store.list_experiments()[-1]
        rows = len(store.read_metrics(experiment.id))
    finally:
        store.close()
    csv_rows = sum(1 for _ in (out / "results.csv").open()) - 1
    Path(args.result).write_text(
        json.dumps(
            {
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "rss_mb": usage.ru_maxrss / 1024,
                "rows": rows,
                "csv_rows": csv_rows,
                "wall_s": wall,
            }
        )
    )


def floor_main(args: argparse.Namespace, work: Path) -> None:
    """The ``floor`` scenario: the trial script against a server that does nothing."""
    from aiohttp import web

    async def trial(request: web.Request) -> web.Response:
        return web.json_response({"id": int(request.match_info["n"]), "parameters": {"x": 0.5}})

    async def metrics(request: web.Request) -> web.Response:
        await request.json()
        return web.json_response({"accepted": 1, "stop": False})

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/trials/{n}", trial)
        app.router.add_post("/api/v1/trials/{n}/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        script = work / "trial.py"
        script.write_text(TRIAL)
        env = {**os.environ, "LOAD_REPORTS": str(args.reports), "LOAD_OUT": str(work / "latency")}
        env |= {"RIDGELINE_MASTER": f"http://127.0.0.1:{port}", "RIDGELINE_TOKEN": "-"}
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, str(script), env={**env, "RIDGELINE_TRIAL_ID": str(n)}
            )
            for n in range(1, args.trials + 1)
        ]
        codes = [await proc.wait() for proc in procs]
        await runner.cleanup()
        if any(codes):
            raise RuntimeError(f"trial scripts exited with {sorted(set(codes))}")

    wall = time.time()
    asyncio.run(serve())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}
    figures |= {"rows": None, "csv_rows": None, "wall_s": time.time() - wall}
    Path(args.result).write_text(json.dumps(figures))


# -- the client side ----------------------------------------------------------------------------
def run_clients(spool: Path, latency_dir: Path, trials: int, reports: int) -> None:
    """``trials`` threads, one TrialClient each, as the spool scheduler hands out trials."""
    from ridgeline.trial.client import TrialClient

    def one(env: dict[str, str], name: str) -> None:
        client = TrialClient(
            master=env["RIDGELINE_MASTER"],
            token=env["RIDGELINE_TOKEN"],
            trial_id=int(env["RIDGELINE_TRIAL_ID"]),
        )
        latencies = array.array("d")
        start = time.time()
        for step in range(1, reports + 1):
            sent = time.perf_counter()
            client.report([{"step": step, "objective": 1.0 / step, "context": {"seen": step}}])
            latencies.append(time.perf_counter() - sent)
        end = time.time()
        client.close()
        with open(latency_dir / f"{name}.bin", "wb") as handle:
            array.array("d", [start, end]).tofile(handle)
            latencies.tofile(handle)
        (spool / f"{name}.exit").touch()

    threads: list[threading.Thread] = []
    seen: set[str] = set()
    deadline = time.time() + 120
    while len(seen) < trials and time.time() < deadline:
        for path in spool.glob("trial_*.json"):
            if path.stem not in seen:
                seen.add(path.stem)
                env = json.loads(path.read_text())
                thread = threading.Thread(target=one, args=(env, path.stem), daemon=True)
                thread.start()
                threads.append(thread)
        time.sleep(0.02)
    for thread in threads:
        thread.join()


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def read_latencies(latency_dir: Path) -> dict[str, float]:
    starts, ends, latencies = [], [], array.array("d")
    for path in latency_dir.glob("*.bin"):
        values = array.array("d")
        values.frombytes(path.read_bytes())
        starts.append(values[0])
        ends.append(values[1])
        latencies.extend(values[2:])
    ordered = sorted(latencies)
    if not ordered:
        return {"reports": 0}
    return {
        "reports": len(ordered),
        "rate": len(ordered) / (max(ends) - min(starts)),
        "p50_ms": 1000 * _percentile(ordered, 0.50),
        "p99_ms": 1000 * _percentile(ordered, 0.99),
        "max_ms": 1000 * ordered[-1],
    }


# -- PostgreSQL ---------------------------------------------------------------------------------
class ThrowAwayDatabase:
    """A database created on the server for one run, dropped afterwards."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.name = f"ridgeline_load_{os.getpid()}_{int(time.time() * 1000) % 10**8}"

    def _admin(self, sql: str) -> None:
        import psycopg

        url = self.server_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def __enter__(self) -> str:
        self._admin(f'CREATE DATABASE "{self.name}"')
        base = self.server_url.rsplit("/", 1)[0]
        return f"{base}/{self.name}"

    def __exit__(self, *exc: object) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- one run ------------------------------------------------------------------------------------
def run(scenario: str, storage: str, trials: int, reports: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ridgeline-load-") as tmp:
        work = Path(tmp)
        (work / "latency").mkdir()
        (work / "spool").mkdir()
        result = work / "result.json"
        argv = [
            sys.executable,
            __file__,
            "--coordinator",
            "--scenario",
            scenario,
            "--work",
            str(work),
            "--result",
            str(result),
            "--trials",
            str(trials),
            "--reports",
            str(reports),
            "--storage",
            storage,
        ]
        coordinator = subprocess.Popen(argv)
        try:
            if scenario == "clients":
                run_clients(work / "spool", work / "latency", trials, reports)
            code = coordinator.wait(timeout=3600)
        finally:
            if coordinator.poll() is None:
                coordinator.kill()
                coordinator.wait()
        if code != 0:
            raise RuntimeError(f"the coordinator of {scenario} exited with {code}")
        figures = json.loads(result.read_text())
        figures.update(read_latencies(work / "latency"))
        figures["expected"] = trials * reports
        return figures


def row(scenario: str, store: str, trials: int, reports: int, f: dict[str, Any]) -> list[str]:
    if "error" in f:
        return [scenario, store, f"{trials} x {reports:,}", f["error"], "", "", "", "", "", ""]
    rows = "(keeps none)" if f["rows"] is None else f"{f['rows']:,}"
    if f["rows"] is not None and f["rows"] != f["expected"]:
        rows += f" (expected {f['expected']:,})"
    return [
        scenario,
        store,
        f"{trials} x {reports:,}",
        f"{f['rate']:,.0f}",
        f"{f['p50_ms']:.1f}",
        f"{f['p99_ms']:.1f}",
        f"{f['max_ms']:.0f}",
        f"{f['cpu_s']:.1f}",
        f"{f['rss_mb']:.0f}",
        rows,
    ]


HEADER = [
    "scenario",
    "store",
    "trials x reports",
    "metrics/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "coordinator CPU s",
    "peak RSS MB",
    "rows stored",
]


def print_table(rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "|".join(" --- " for _ in HEADER) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    for r in [HEADER, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=textwrap.dedent(__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--scenarios", default="processes,clients")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the reports")
    # the coordinator process (internal)
    parser.add_argument("--coordinator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reports", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--storage", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.coordinator:
        coordinator_main(args)
        return
    shapes = {"processes": (64, 1000), "clients": (256, 250), "floor": (64, 1000)}
    rows = []
    for scenario in args.scenarios.split(","):
        trials, reports = shapes[scenario]
        reports = max(1, round(reports * args.scale))
        for store in ["none"] if scenario == "floor" else args.stores.split(","):
            try:
                if store == "sqlite":
                    figures = run(scenario, "", trials, reports)
                else:
                    with ThrowAwayDatabase(args.pg_url) as url:
                        figures = run(scenario, url, trials, reports)
            except Exception as exc:  # one failed run still leaves the others' figures
                figures = {"error": f"failed: {exc}"}
            rows.append(row(scenario, store, trials, reports, figures))
            print(" ".join(rows[-1]), file=sys.stderr, flush=True)
    print_table(rows, args.markdown)


if __name__ == "__main__":
    main()
