"""The store conformance suite on every backend, plus SQL-only durability and migration tests."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

import ridgeline
from ridgeline.errors import StoreError
from ridgeline.store import MemoryStore, open_store
from ridgeline.store.base import Store
from ridgeline.testing import store_conformance as conformance

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SRC = str(Path(ridgeline.__file__).resolve().parents[1])


@pytest.mark.parametrize("check", conformance.CHECKS, ids=lambda c: c.__name__[len("check_") :])
def test_conformance(check: Callable[[Store], None], store: Store) -> None:
    check(store)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_concurrent_trial_numbers(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    conformance.check_concurrent_trial_numbers(url, processes=4, per_process=15)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_concurrent_open_of_new_database(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    conformance.check_concurrent_open(url, processes=4)


# -- open_store ---------------------------------------------------------------------------------
def test_open_store_targets(tmp_path: Path) -> None:
    from ridgeline.store.sql import SQLStore

    assert isinstance(open_store(None), MemoryStore) and not MemoryStore.durable
    nested = tmp_path / "a" / "b" / "study.db"
    for target in (nested, str(nested), f"sqlite:///{nested}"):
        store = open_store(target)
        try:
            assert isinstance(store, SQLStore) and store.durable
        finally:
            store.close()
    assert nested.is_file()
    # A relative path is resolved against the working directory, once.
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        store = open_store("rel/x.db")
    finally:
        os.chdir(cwd)
    try:
        assert (tmp_path / "rel" / "x.db").is_file()
        assert str(tmp_path / "rel" / "x.db") in repr(store)
    finally:
        store.close()


def test_unsupported_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="mysql"):
        open_store("mysql://u@localhost/db")


def test_postgres_url_maps_to_psycopg() -> None:
    from ridgeline.store.sql import normalize_url

    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"


def _run_python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_store_is_cheap() -> None:
    out = _run_python(
        "import sys, ridgeline.store\n"
        "from ridgeline.store import open_store\n"
        "s = open_store(None)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))"
    )
    assert out.strip() == "[]"


# -- durability (SQLite file) -------------------------------------------------------------------
def _dump(store: Store, experiment_id: int) -> str:
    """Everything the store holds about an experiment, as text that is exact for floats."""
    trials = store.list_trials(experiment_id)
    data = {
        "experiment": asdict(store.get_experiment(experiment_id)),
        "trials": [asdict(t) for t in trials],
        "metrics": [asdict(m) for m in store.read_metrics(experiment_id)],
        "events": [asdict(e) for e in store.read_events(experiment_id)],
        "state": store.load_searcher_state(experiment_id),
        "checkpoints": [asdict(c) for t in trials for c in store.list_checkpoints(t.id)],
    }
    return json.dumps(data, allow_nan=True)


def test_sqlite_reopen_keeps_everything_exactly(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    store = open_store(path)
    params = {
        "lr": 0.1 + 0.2,
        "wd": 5e-324,
        "layers": [64, 128],
        "act": "gelu",
        "opt": {"name": "adam", "betas": [0.9, 0.999]},
        "big": 2**53 + 1,
        "nan": float("nan"),
    }
    e = store.create_experiment("durable", {"objective": {"metric": "loss", "smaller": True}})
    t = store.create_trial(e.id, 1, params)
    store.update_trial(t.id, state="RUNNING", job={"pid": 1, "start_time": 12345.678})
    store.add_metrics(
        t.id, "validation", [(1, {"loss": float("nan")}), (2, {"loss": 1 / 3, "acc": -math.inf})]
    )
    store.add_event(e.id, "created", {"trial": t.id})
    store.save_searcher_state(e.id, {"rng": [2**63 - 1, 0.5], "best": float("inf")})
    store.add_checkpoint("c-1", t.id, 2, {"path": "/x/ckpt", "loss": float("nan")})
    before = _dump(store, e.id)
    loss = store.read_metrics(e.id)[1].values["loss"]
    store.close()

    reopened = open_store(path)
    try:
        assert _dump(reopened, e.id) == before
        again = reopened.read_metrics(e.id)
        assert math.isnan(again[0].values["loss"])
        assert struct.pack("<d", again[1].values["loss"]) == struct.pack("<d", loss)
        assert reopened.get_trial(t.id).params["big"] == 2**53 + 1
        # Numbering and idempotency continue from the file, not from zero.
        assert reopened.create_trial(e.id, 1, {}).id == t.id
        assert reopened.create_trial(e.id, 2, {}).number == 2
    finally:
        reopened.close()


def test_sqlite_pragmas_and_locking(tmp_path: Path) -> None:
    """Writes hold SQLite's write lock from BEGIN on (BEGIN IMMEDIATE); reads take none."""
    import sqlite3

    from ridgeline.store.sql import SQLStore

    path = tmp_path / "store.db"
    store = SQLStore(f"sqlite:///{path}")
    e = store.create_experiment("a", {})
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with store.engine.connect() as conn:
            pragma = conn.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 30000
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None and dbapi.isolation_level is None and dbapi.in_transaction
            # This transaction has not written anything yet, and still another writer is shut out.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        # While another process writes, reads go on (WAL, no lock taken by a read).
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE experiments SET name = 'b'")
        assert store.get_experiment(e.id).name == "a"
        assert store.list_trials(e.id) == []
        other.execute("COMMIT")
        assert store.get_experiment(e.id).name == "b"
    finally:
        other.close()
        store.close()


# -- migrations ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_migrations_reach_head_and_match_schema(
    backend: str, request: pytest.FixtureRequest
) -> None:
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from ridgeline.store import schema
    from ridgeline.store.sql import HEAD, MIGRATIONS_DIR, REVISIONS, SQLStore, current_revision

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_current_head() == HEAD
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == list(REVISIONS)

    url = request.getfixturevalue(f"{backend}_url")
    store = SQLStore(url)
    try:
        with store.engine.connect() as conn:
            assert current_revision(conn) == HEAD
            assert set(sa.inspect(conn).get_table_names()) >= set(schema.metadata.tables)
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, schema.metadata)
            assert diff == [], f"migrations and schema.py disagree: {diff}"
    finally:
        store.close()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_experiments_stored_before_archiving_existed_are_not_archived(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """A database at revision 0002 with experiments in it opens at HEAD; they stay listed."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from ridgeline.store.sql import MIGRATIONS_DIR, SQLStore, create_engine

    url = request.getfixturevalue(f"{backend}_url")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
            conn.execute(
                sa.text(
                    "INSERT INTO experiments (name, state, config, created_at) "
                    "VALUES ('old', 'COMPLETED', '{}', 1.0)"
                )
            )
    finally:
        engine.dispose()
    store = SQLStore(url)
    try:
        (old,) = store.list_experiments()
        assert (old.name, old.archived) == ("old", False)
        assert store.update_experiment(old.id, archived=True).archived is True
    finally:
        store.close()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_open_migrated_database_does_not_import_alembic(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    open_store(url).close()  # migrates
    out = _run_python(
        "import sys\n"
        "from ridgeline.store import open_store\n"
        f"s = open_store({url!r})\n"
        "e = s.create_experiment('x', {})\n"
        "s.create_trial(e.id, 1, {})\n"
        "s.close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    assert out.strip() == "[]"


def test_newer_database_is_refused(sqlite_url: str) -> None:
    from ridgeline.store.sql import SQLStore

    open_store(sqlite_url).close()
    store = SQLStore(sqlite_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    store.close()
    with pytest.raises(StoreError, match="9999"):
        open_store(sqlite_url)


@pytest.mark.parametrize(
    "check",
    [
        conformance.check_experiments,
        conformance.check_update_trial,
        conformance.check_update_trial_cas,
        conformance.check_checkpoints,
        conformance.check_unknown_ids,
    ],
    ids=lambda c: c.__name__[len("check_") :],
)
def test_sql_store_without_update_returning(
    check: Callable[[Store], None], sqlite_url: str
) -> None:
    """SQLite before 3.35 has no UPDATE ... RETURNING; the fallback must behave the same."""
    from ridgeline.store.sql import SQLStore

    store = SQLStore(sqlite_url)
    store._update_returning = False
    try:
        check(store)
    finally:
        store.close()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_stale_handle_is_fenced(backend: str, request: pytest.FixtureRequest) -> None:
    conformance.check_lease_fencing(request.getfixturevalue(f"{backend}_url"))


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_concurrent_create_and_lease(backend: str, request: pytest.FixtureRequest) -> None:
    conformance.check_concurrent_create_and_lease(request.getfixturevalue(f"{backend}_url"))


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_retry_after_a_lost_commit_reply_writes_once(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """The connection fails right after the database committed (the reply is lost): the
    retried write must neither repeat itself nor report that it did nothing."""
    from ridgeline.store.sql import SQLStore

    store = SQLStore(request.getfixturevalue(f"{backend}_url"))
    dialect = store.engine.dialect
    commit = dialect.do_commit
    lose_next_reply = [False]

    def committed_then_lost(dbapi_connection: object) -> None:
        commit(dbapi_connection)
        if lose_next_reply[0]:
            lose_next_reply[0] = False
            module = dialect.loaded_dbapi
            raise module.OperationalError(
                "disk I/O error" if backend == "sqlite" else "server closed the connection"
            )

    dialect.do_commit = committed_then_lost  # type: ignore[method-assign]

    def lossy(write: Callable[[], object]) -> object:
        lose_next_reply[0] = True
        result = write()
        assert not lose_next_reply[0], "the fault did not fire"
        return result

    try:
        e = lossy(lambda: store.create_experiment("once", {}))
        assert [x.id for x in store.list_experiments()] == [e.id]  # type: ignore[attr-defined]
        eid = e.id  # type: ignore[attr-defined]
        assert lossy(lambda: store.acquire_lease(eid, "h:1:1", 60)) == 1
        t = lossy(lambda: store.create_trial(eid, 7, {}))
        tid = t.id  # type: ignore[attr-defined]
        added = lossy(lambda: store.add_metrics(tid, "g", [(1, {"v": 1}), (2, {"v": 2})]))
        assert [m.step for m in added] == [1, 2]  # type: ignore[attr-defined]
        assert [m.step for m in store.trial_metrics(tid)] == [1, 2]
        assert store.add_metrics(tid, "g", [(1, {"v": 1})]) == []  # a real duplicate still is
        moved = lossy(lambda: store.update_trial(tid, expect_state="PENDING", state="RUNNING"))
        assert moved is not None and moved.state == "RUNNING"  # type: ignore[attr-defined]
        assert store.update_trial(tid, expect_state="PENDING", state="RUNNING") is None
        lossy(lambda: store.add_event(eid, "k", {}))
        assert len(store.read_events(eid)) == 1
        assert len(store.list_trials(eid)) == 1
    finally:
        dialect.do_commit = commit  # type: ignore[method-assign]
        store.close()
