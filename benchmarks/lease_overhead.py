"""Cost of the lease fence on store writes, printed as a table.

    python benchmarks/lease_overhead.py [--postgres URL] [--writes N]

A handle that holds an experiment's lease reads the lease row in every write transaction
(PostgreSQL: ``FOR SHARE``). This times single-report ``add_metrics`` and ``create_trial``
calls, the coordinator's most frequent writes, on the same database with and without a lease.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ridgeline.store import open_store
from ridgeline.store.base import Store


def timed(fn: Callable[[int], object], first: int, n: int) -> float:
    """Microseconds per call of ``fn(first) ... fn(first + n - 1)``."""
    start = time.perf_counter()
    for i in range(first, first + n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


def measure(target: str, n: int, rounds: int = 7) -> list[tuple[str, float, float]]:
    """Median per-call cost on two handles of one database, one holding a lease; rounds
    alternate between them so that load on the machine hits both alike."""
    plain, fenced = open_store(target), open_store(target)
    try:
        rows = []
        handles: list[tuple[Store, int, int]] = []
        for store in (plain, fenced):
            experiment = store.create_experiment("bench", {})
            trial = store.create_trial(experiment.id, 0, {})
            handles.append((store, experiment.id, trial.id))
        fenced.acquire_lease(handles[1][1], "bench:1:1", 600)
        writes: dict[str, Callable[[Store, int, int, int], object]] = {
            "add_metrics": lambda s, e, t, i: s.add_metrics(t, "t", [(i, {"loss": 0.5})]),
            "create_trial": lambda s, e, t, i: s.create_trial(e, i + 1, {"x": i}),
        }
        for what, write in writes.items():
            times: list[list[float]] = [[], []]
            for r in range(rounds):
                for k, (store, eid, tid) in enumerate(handles):
                    times[k].append(
                        timed(lambda i, s=store, e=eid, t=tid, w=write: w(s, e, t, i), r * n, n)
                    )
            rows.append((what, statistics.median(times[0]), statistics.median(times[1])))
        return rows
    finally:
        plain.close()
        fenced.close()


@contextmanager
def scratch_postgres(admin: str) -> Iterator[str]:
    """A new database on the server ``admin`` names, dropped afterwards."""
    import psycopg
    import sqlalchemy as sa

    name = f"ridgeline_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    print(f"{'store':<11} {'write':<13} {'no lease us':>12} {'leased us':>10} {'extra':>7}")
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        targets = [("SQLite", str(Path(folder) / "bench.db"))]
        if args.postgres:
            try:
                targets.append(("PostgreSQL", stack.enter_context(scratch_postgres(args.postgres))))
            except Exception as exc:  # no server: only its rows are missing
                print(f"PostgreSQL  unavailable: {exc}")
        for name, target in targets:
            for what, a, b in measure(target, args.writes):
                print(f"{name:<11} {what:<13} {a:>12.0f} {b:>10.0f} {(b - a) / a:>7.0%}")


if __name__ == "__main__":
    main()
