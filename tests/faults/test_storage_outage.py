"""Storage faults: a PostgreSQL outage is ridden out by a bounded retry, and one longer than
the bound (or a full disk) ends in StorageUnavailable carrying the cause, never a hang."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ridgeline.errors import StorageUnavailable
from ridgeline.store import open_store

from .conftest import ThrowawayPostgres


def test_writes_during_a_short_outage_succeed_after_it(
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    store = open_store(throwaway_postgres.url)
    try:
        experiment = store.create_experiment("outage", {})
        trial = store.create_trial(experiment.id, 1, {})
        errors: list[BaseException] = []
        done = threading.Event()
        steps: list[int] = []

        def writer() -> None:
            try:
                step = 0
                while not done.is_set() or step < 5:
                    store.add_metrics(trial.id, "training", [(step, {"loss": 1.0 / (step + 1)})])
                    if step % 10 == 0:
                        store.create_trial(experiment.id, 1000 + step, {"step": step})
                        store.update_trial(trial.id, job={"step": step})
                    steps.append(step)
                    step += 1
                    time.sleep(0.02)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.5)
        throwaway_postgres.stop()
        stopped = len(steps)
        time.sleep(5)
        assert len(steps) <= stopped + 1  # the writer waited instead of failing
        throwaway_postgres.start()
        deadline = time.monotonic() + 30  # the next attempt comes within the backoff (<= 2 s)
        while len(steps) <= stopped + 5 and not errors and time.monotonic() < deadline:
            time.sleep(0.05)
        done.set()
        thread.join(60)
        assert not thread.is_alive() and errors == []
        assert len(steps) > stopped + 5  # it carried on after the outage
        metrics = store.trial_metrics(trial.id)
        assert [m.step for m in metrics] == steps  # nothing lost, nothing twice
        requests = sorted(t.request_id for t in store.list_trials(experiment.id))
        assert requests == [1] + [1000 + s for s in steps if s % 10 == 0]
    finally:
        store.close()


def test_outage_longer_than_the_bound_raises_storage_unavailable(
    throwaway_postgres: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_STORE_RETRY_SECONDS", "3")
    store = open_store(throwaway_postgres.url)
    try:
        experiment = store.create_experiment("outage", {})
        trial = store.create_trial(experiment.id, 1, {})
        throwaway_postgres.stop()
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="unavailable") as info:
            store.add_metrics(trial.id, "training", [(1, {"loss": 0.5})])
        assert 2.5 < time.monotonic() - started < 10
        assert info.value.__cause__ is not None  # the database's own error travels with it
        with pytest.raises(StorageUnavailable):
            store.get_trial(trial.id)
        throwaway_postgres.start()
        store.add_metrics(trial.id, "training", [(1, {"loss": 0.5})])  # the store recovers
        assert [m.step for m in store.trial_metrics(trial.id)] == [1]
    finally:
        store.close()


def test_full_sqlite_disk_raises_storage_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's "database or disk is full" (here: a page limit, as a full filesystem gives) is
    retried for the bound, then reported with its cause; nothing partial is written."""
    import sqlalchemy as sa

    monkeypatch.setenv("RIDGELINE_STORE_RETRY_SECONDS", "1")
    store = open_store(tmp_path / "store.db")
    try:
        experiment = store.create_experiment("full", {})
        trial = store.create_trial(experiment.id, 1, {})
        with store.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

        def limit(dbapi_conn, _record) -> None:
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

        store.engine.dispose()
        sa.event.listen(store.engine, "connect", limit)
        big = [(step, {"blob": "x" * 4000}) for step in range(50)]
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="full") as info:
            store.add_metrics(trial.id, "training", big)
        assert time.monotonic() - started < 10
        assert info.value.__cause__ is not None
        sa.event.remove(store.engine, "connect", limit)
        store.engine.dispose()
        assert store.trial_metrics(trial.id, "training") == []  # the failed write left nothing
        assert len(store.add_metrics(trial.id, "training", big)) == 50
    finally:
        store.close()
