"""The durable store: one SQLAlchemy Core implementation for SQLite files and PostgreSQL.

Concurrency (what tests/store/test_store.py::test_concurrent_trial_numbers and its neighbours
race for real on both backends):

* SQLite runs in WAL mode with a 30 s busy timeout. pysqlite's own transaction handling is off
  and every write transaction starts with ``BEGIN IMMEDIATE``: a deferred ``BEGIN`` fails at once
  with "database is locked" when two read-then-write transactions race, and pysqlite's legacy
  mode runs the read outside the transaction and silently duplicates trial numbers. Reads run
  without a transaction (each SELECT is atomic by itself), so they never wait for a writer.
* PostgreSQL numbers trials under ``SELECT ... FOR UPDATE`` on the experiment row; without a
  lock, READ COMMITTED hands two writers the same ``max(number) + 1``.

Leases: ``acquire_lease`` makes this handle a fenced writer. Each later write transaction first
reads the experiment's lease row (one primary-key lookup; PostgreSQL takes it ``FOR SHARE``, so
a takeover's UPDATE waits for the write to commit, and a write waits for a takeover, then sees
the new token) and raises ``LeaseLost`` if the token moved on.

Transient database errors (connection refused or lost, "database is locked", "disk I/O error",
"database or disk is full") are retried with exponential backoff for a bounded time
(``RIDGELINE_STORE_RETRY_SECONDS``, default 30 s), then raise ``StorageUnavailable`` with the
last error as its cause. Every write is one transaction, so a failed attempt left nothing
behind; creating trials, metrics and checkpoints is idempotent on their keys, and the other
writes set values, so running one again is harmless.

The schema is brought to the newest revision when a store opens. Checking that costs one query
and does not import Alembic; Alembic is imported only when an upgrade is actually needed.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ridgeline.errors import StorageUnavailable, StoreError
from ridgeline.private import private_sqlite
from ridgeline.store import lease
from ridgeline.store import schema as S
from ridgeline.store.base import (
    _UNSET,
    Store,
    changed_fields,
    experiment_exists,
    no_checkpoint,
    no_experiment,
    no_parent,
    no_trial,
    same_checkpoint,
)
from ridgeline.store.lease import LeaseRecord
from ridgeline.store.records import (
    ACTIVE,
    PENDING,
    CheckpointRecord,
    CheckpointState,
    EventRecord,
    ExperimentRecord,
    MetricRecord,
    TrialRecord,
)

__all__ = ["SQLStore", "REVISIONS", "HEAD", "MIGRATIONS_DIR", "migrate", "current_revision"]

#: Every Alembic revision this code knows, oldest first. A new migration must be added here:
#: opening a store compares the database's revision with ``HEAD`` without importing Alembic.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003")
HEAD = REVISIONS[-1]
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

_READ = "ridgeline_read"  # execution option: this connection only reads (SQLite: no BEGIN)
_MIGRATION_LOCK = 0x7269646765  # pg_advisory_xact_lock key: b"ridge"
_CREATE_LOCK = 0x7269646766  # pg_advisory_xact_lock key of exclusive experiment creation
DEFAULT_RETRY_SECONDS = 30.0
# SQLite reports these as OperationalError, like "no such table": only these are worth a retry.
_SQLITE_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
    "unable to open database file",
)
log = logging.getLogger("ridgeline")
F = TypeVar("F", bound=Callable[..., Any])


def retry_seconds() -> float:
    """How long a store call retries transient errors: ``RIDGELINE_STORE_RETRY_SECONDS``."""
    raw = os.environ.get("RIDGELINE_STORE_RETRY_SECONDS")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_RETRY_SECONDS
    except ValueError:
        return DEFAULT_RETRY_SECONDS


def transient(exc: BaseException) -> bool:
    """True for database errors that a later attempt may not meet (outage, lock, full disk)."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    message = str(exc.orig if exc.orig is not None else exc).lower()
    if "sqlite" in type(exc.orig).__module__ or "BEGIN IMMEDIATE" in str(exc.statement):
        return any(text in message for text in _SQLITE_TRANSIENT)
    return True  # PostgreSQL: connection refused/lost, admin shutdown, disk full, deadlock


class _Call(threading.local):
    """The store call in progress on this thread: its timestamp, the same in every attempt
    (so a row an attempt wrote can be told from others), and whether this is a retry."""

    now: float | None = None
    retry: bool = False


_call = _Call()


def _stamp() -> float:
    """The current call's timestamp (``time.time()`` outside a retried call)."""
    return _call.now if _call.now is not None else time.time()


def retrying(method: F) -> F:
    """Run ``method`` again while it fails transiently, for at most ``retry_seconds()``.

    A failure while committing leaves it unknown whether the commit happened; writes that are
    not idempotent on their own keys look, on a retry, for the row their earlier attempt may
    have written (``_call.retry``, ``_stamp()``)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = (_call.now, _call.retry)
        _call.now, _call.retry = time.time(), False
        deadline: float | None = None
        delay = 0.05
        try:
            while True:
                try:
                    return method(*args, **kwargs)
                except sa.exc.DBAPIError as exc:
                    if not transient(exc):
                        raise
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + retry_seconds()
                        log.warning("store: %s; retrying", _cause(exc))
                    if now >= deadline:
                        raise StorageUnavailable(
                            f"the store is unavailable (gave up after {retry_seconds():.0f} s):"
                            f" {_cause(exc)}"
                        ) from exc
                    time.sleep(min(delay, deadline - now))
                    delay = min(delay * 2, 2.0)
                    _call.retry = True
        finally:
            _call.now, _call.retry = outer

    return cast(F, wrapper)


def _cause(exc: sa.exc.DBAPIError) -> str:
    orig = exc.orig if exc.orig is not None else exc
    text = " ".join(str(orig).split())
    return f"{type(orig).__name__}: {text[:300]}"


_SUPPORTED = ("sqlite", "postgresql")
_PG_METRICS_PAGE = 5000  # rows per INSERT in add_metrics_batch


def normalize_url(url: str | sa.URL) -> sa.URL:
    """Parse ``url``; plain ``postgresql://`` (and ``postgres://``) mean psycopg 3."""
    u = sa.make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Hand transaction control to us (the "begin" hook below) instead of pysqlite.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; no fsync per commit
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # Writes: IMMEDIATE takes the write lock up front, so the busy timeout applies and a
    # read-then-write transaction can never fail on a lock upgrade. Reads: no BEGIN at all, so
    # each SELECT sees the latest commit and never waits for, or blocks, a writer. The
    # statement goes straight to the DBAPI connection: through exec_driver_sql it would cost
    # as much as the query it precedes.
    if not conn.get_execution_options().get(_READ):
        dbapi_conn: Any = conn.connection.dbapi_connection
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
        except dbapi_conn.OperationalError as exc:  # still locked after the busy timeout
            raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc


def create_engine(url: str | sa.URL) -> sa.Engine:
    """An engine configured as the module docstring explains."""
    u = normalize_url(url)
    backend = u.get_backend_name()
    if backend not in _SUPPORTED:
        raise StoreError(
            f"unsupported database {u.drivername!r} in store URL; use sqlite:///path or "
            "postgresql://user@host/db"
        )
    if backend == "sqlite":
        memory = u.database in (None, "", ":memory:") or u.query.get("mode") == "memory"
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30, "check_same_thread": False}}
        if memory:  # every connection would otherwise see its own empty database
            kwargs["poolclass"] = sa.pool.StaticPool
        else:  # the store holds tokens: owner-only, whatever the umask (WAL/SHM inherit it)
            private_sqlite(str(u.database))
        engine = sa.create_engine(u, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(u, pool_recycle=3600)


def current_revision(conn: sa.Connection) -> str | None:
    """The database's Alembic revision, or None for a database without ridgeline tables."""
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _check_known(revision: str | None, url: Any) -> None:
    if revision is not None and revision not in REVISIONS:
        raise StoreError(
            f"the database {url} is at schema revision {revision!r}, which this version of "
            f"ridgeline does not know (newest known: {HEAD!r}); upgrade ridgeline"
        )


def migrate(engine: sa.Engine) -> bool:
    """Bring the schema to ``HEAD``; returns True when an upgrade ran.

    Safe when several processes open one new database at once: the upgrade runs inside a write
    transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock) that re-checks the
    revision, and DDL is transactional on both backends.
    """
    with engine.execution_options(**{_READ: True}).connect() as conn:
        revision = current_revision(conn)
    _check_known(revision, engine.url)
    if revision == HEAD:
        return False
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        revision = current_revision(conn)
        _check_known(revision, engine.url)
        if revision == HEAD:
            return False
        from alembic import command  # lazy: alembic is heavy, loaded on use
        from alembic.config import Config  # lazy: alembic is heavy, loaded on use

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return True


# -- row -> record ------------------------------------------------------------------------------
def _experiment(r: Any) -> ExperimentRecord:
    return ExperimentRecord(
        r.id, r.name, r.state, r.config, r.created_at, r.coordinator, bool(r.archived)
    )


def _trial(r: Any) -> TrialRecord:
    return TrialRecord(
        r.id,
        r.experiment_id,
        r.number,
        r.request_id,
        r.params,
        r.state,
        r.created_at,
        r.parent_id,
        r.restarts,
        r.exit_code,
        r.job,
        r.ended_at,
    )


def _metric(r: Any) -> MetricRecord:
    return MetricRecord(r.seq, r.trial_id, r.group, r.step, r.values, r.time)


def _event(r: Any) -> EventRecord:
    return EventRecord(r.seq, r.experiment_id, r.kind, r.data, r.time)


def _checkpoint(r: Any) -> CheckpointRecord:
    return CheckpointRecord(
        r.uuid, r.trial_id, r.steps_completed, r.created_at, r.metadata, r.state
    )


def _holds(row: Any, params: dict[str, Any]) -> bool:
    """True when ``row`` already has every column value in ``params`` (bind names aside)."""
    return all(getattr(row, k) == v for k, v in params.items() if not k.startswith("b_"))


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None, "INSERT returned no primary key"
    return int(key[0])


_b = sa.bindparam
E, T, M, C, V, SS = S.experiments, S.trials, S.metrics, S.checkpoints, S.events, S.searcher_states
L = S.leases

# Statements are built once; per call only parameters change, so SQLAlchemy's compiled cache
# hits every time. Bind names start with "b_" where they must not collide with column names
# (UPDATE takes its SET columns from the execute() parameters).
_SEL_EXPERIMENT = sa.select(E).where(E.c.id == _b("b_id"))
_LIST_EXPERIMENTS = sa.select(E).order_by(E.c.id)
_SAME_EXPERIMENT = sa.select(E).where(E.c.name == _b("b_name"), E.c.created_at == _b("b_at"))
_LOCK_EXPERIMENT = sa.select(E.c.id).where(E.c.id == _b("b_id")).with_for_update()
_HAS_EXPERIMENT = sa.select(E.c.id).where(E.c.id == _b("b_id"))
_UPD_EXPERIMENT = sa.update(E).where(E.c.id == _b("b_id"))

_SEL_TRIAL = sa.select(T).where(T.c.id == _b("b_id"))
_HAS_TRIAL = sa.select(T.c.id).where(T.c.id == _b("b_id"))


class _Owner(NamedTuple):
    """What rows belong to (an experiment or a trial): how to tell that one exists, and the
    error when it does not."""

    exists: sa.Select[Any]
    missing: Callable[[int], StoreError]


_OF_EXPERIMENT = _Owner(_HAS_EXPERIMENT, no_experiment)
_OF_TRIAL = _Owner(_HAS_TRIAL, no_trial)

_TRIAL_EXPERIMENT = sa.select(T.c.experiment_id).where(T.c.id == _b("b_id"))
# One round trip for "was this request recorded?" and "which number comes next?". It must run
# after the FOR UPDATE statement: a PostgreSQL statement reads the snapshot taken when it starts.
_REQUEST_AND_NEXT = sa.select(
    sa.select(T.c.id)
    .where(T.c.experiment_id == _b("b_exp"), T.c.request_id == _b("b_req"))
    .scalar_subquery(),
    sa.select(sa.func.coalesce(sa.func.max(T.c.number), 0) + 1)
    .where(T.c.experiment_id == _b("b_exp"))
    .scalar_subquery(),
)
_LIST_TRIALS = sa.select(T).where(T.c.experiment_id == _b("b_exp")).order_by(T.c.number)
_UPD_TRIAL = sa.update(T).where(T.c.id == _b("b_id"))
_CAS_TRIAL = sa.update(T).where(T.c.id == _b("b_id"), T.c.state == _b("b_expect"))

_READ_METRICS = (
    sa.select(M).where(M.c.experiment_id == _b("b_exp"), M.c.seq > _b("b_after")).order_by(M.c.seq)
)
_READ_METRICS_GROUP = _READ_METRICS.where(M.c.group == _b("b_group"))
_TRIAL_METRICS = sa.select(M).where(M.c.trial_id == _b("b_trial")).order_by(M.c.seq)
_TRIAL_METRICS_GROUP = _TRIAL_METRICS.where(M.c.group == _b("b_group"))
_SAME_METRICS = sa.select(M.c.seq, M.c.step).where(
    M.c.trial_id == _b("b_trial"), M.c.group == _b("b_group"), M.c.time == _b("b_time")
)

_LOAD_STATE = sa.select(SS.c.state).where(SS.c.experiment_id == _b("b_exp"))
_SAME_EVENT = sa.select(V.c.seq).where(
    V.c.experiment_id == _b("b_exp"), V.c.kind == _b("b_kind"), V.c.time == _b("b_time")
)
_READ_EVENTS = (
    sa.select(V).where(V.c.experiment_id == _b("b_exp"), V.c.seq > _b("b_after")).order_by(V.c.seq)
)

_SEL_CHECKPOINT = sa.select(C).where(C.c.uuid == _b("b_uuid"))
_LIST_CHECKPOINTS = (
    sa.select(C)
    .where(C.c.trial_id == _b("b_trial"))
    .order_by(C.c.steps_completed, C.c.created_at, C.c.uuid)
)
_UPD_CHECKPOINT = sa.update(C).where(C.c.uuid == _b("b_uuid"))
# UPDATE ... RETURNING (SQLite >= 3.35, PostgreSQL): the new row without a second query.
_RETURNING = {
    stmt: stmt.returning(*stmt.table.c)
    for stmt in (_UPD_EXPERIMENT, _UPD_TRIAL, _CAS_TRIAL, _UPD_CHECKPOINT)
}
_INS_EXPERIMENT = sa.insert(E)
_SEL_LEASE = sa.select(L).where(L.c.experiment_id == _b("b_exp"))
_LOCK_LEASE = _SEL_LEASE.with_for_update()
# The fence: FOR SHARE on PostgreSQL (writes of one holder do not wait for each other, a
# takeover waits for them); SQLite's BEGIN IMMEDIATE already serialises every writer.
_FENCE = sa.select(L.c.token).where(L.c.experiment_id == _b("b_exp")).with_for_update(read=True)
_SQLITE_FENCE = "SELECT token FROM leases WHERE experiment_id = ?"
_TAKE_LEASE = sa.update(L).where(L.c.experiment_id == _b("b_exp"))
_RENEW_LEASE = sa.update(L).where(
    L.c.experiment_id == _b("b_exp"), L.c.token == _b("b_token"), L.c.holder.is_not(None)
)
_INS_TRIAL = sa.insert(T)
# delete_experiment: children first, so every foreign key holds after each statement.
_EXP_TRIALS = sa.select(T.c.id).where(T.c.experiment_id == _b("b_exp")).scalar_subquery()
_DELETE_EXPERIMENT = (
    sa.delete(M).where(M.c.experiment_id == _b("b_exp")),
    sa.delete(C).where(C.c.trial_id.in_(_EXP_TRIALS)),
    sa.delete(S.operations).where(S.operations.c.trial_id.in_(_EXP_TRIALS)),
    sa.update(T)  # a child in another experiment loses its parent, not its row
    .where(T.c.parent_id.in_(_EXP_TRIALS), T.c.experiment_id != _b("b_exp"))
    .values(parent_id=None),
    sa.delete(T).where(T.c.experiment_id == _b("b_exp")),
    sa.delete(V).where(V.c.experiment_id == _b("b_exp")),
    sa.delete(SS).where(SS.c.experiment_id == _b("b_exp")),
    sa.delete(L).where(L.c.experiment_id == _b("b_exp")),
    sa.delete(E).where(E.c.id == _b("b_exp")),
)
_INS_EVENT = sa.insert(V)
_INS_CHECKPOINT = sa.insert(C)


_MetricRow = tuple[int, int, str, int, dict[str, Any], float]
_SQLITE_INSERT_METRIC = (
    'INSERT INTO metrics (trial_id, experiment_id, "group", step, "values", time) '
    'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (trial_id, "group", step) DO NOTHING'
)


def _insert_metrics_sqlite(
    c: sa.Connection, rows: Iterator[_MetricRow]
) -> list[tuple[int, int, str, int]]:
    """Many metric rows through the driver's executemany, which loops in C: SQLAlchemy's
    per-row work would hold the interpreter lock that the event loop needs. Inside the write
    transaction (BEGIN IMMEDIATE: no other writer) and with AUTOINCREMENT (``seq`` only
    grows), the rows inserted are exactly those past the highest ``seq`` seen before."""
    dbapi: Any = c.connection.dbapi_connection
    cursor = dbapi.cursor()
    try:
        before = cursor.execute("SELECT coalesce(max(seq), 0) FROM metrics").fetchone()[0]
        cursor.executemany(
            _SQLITE_INSERT_METRIC,
            ((t, e, g, step, S.dumps(values), now) for t, e, g, step, values, now in rows),
        )
        cursor.execute('SELECT seq, trial_id, "group", step FROM metrics WHERE seq > ?', (before,))
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


_PG_INSERT_METRICS = (
    'INSERT INTO metrics (trial_id, experiment_id, "group", step, "values", time) '
    "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::text[], "
    '%s::float8[]) ON CONFLICT (trial_id, "group", step) DO NOTHING '
    'RETURNING seq, trial_id, "group", step'
)


def _insert_metrics_postgresql(
    c: sa.Connection, rows: Iterator[_MetricRow]
) -> list[tuple[int, int, str, int]]:
    """Many metric rows as one INSERT ... SELECT FROM unnest(arrays) per page: the driver sends
    six arrays instead of six parameters per row, and RETURNING names the rows inserted."""
    dbapi: Any = c.connection.dbapi_connection
    inserted: list[tuple[int, int, str, int]] = []
    with dbapi.cursor() as cursor:
        while page := list(itertools.islice(rows, _PG_METRICS_PAGE)):
            trials, experiments, groups, steps, values, times = map(list, zip(*page, strict=True))
            values = [S.dumps(v) for v in values]
            cursor.execute(_PG_INSERT_METRICS, (trials, experiments, groups, steps, values, times))
            inserted.extend((seq, t, g, step) for seq, t, g, step in cursor.fetchall())
    return inserted


class SQLStore(Store):
    """A store in an SQL database, given by an SQLAlchemy URL (``sqlite:///...``,
    ``postgresql://...``). Safe to share between threads and processes."""

    durable = True

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        super().__init__()
        self._engine = create_engine(url)
        read_options: dict[str, Any] = {_READ: True}
        if self._engine.dialect.name == "postgresql":
            # A lone SELECT needs no transaction; in autocommit psycopg skips BEGIN and ROLLBACK,
            # one round trip instead of three. (SQLite reads already run without one.)
            read_options["isolation_level"] = "AUTOCOMMIT"
        self._read_engine = self._engine.execution_options(**read_options)
        self.dialect: str = self._engine.dialect.name
        self._closed = False
        self._trial_experiment: dict[int, int] = {}  # see _experiment_of
        dialect_insert = (
            pg_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert
        )
        self._ins_metrics = (
            dialect_insert(M)
            .on_conflict_do_nothing(index_elements=[M.c.trial_id, M.c.group, M.c.step])
            .returning(M.c.seq, M.c.step)
        )
        self._ins_lease = dialect_insert(L).on_conflict_do_nothing(
            index_elements=[L.c.experiment_id]
        )
        ins_state = dialect_insert(SS)
        self._save_state = ins_state.on_conflict_do_update(
            index_elements=[SS.c.experiment_id],
            set_={"state": ins_state.excluded.state, "updated_at": ins_state.excluded.updated_at},
        )
        self._update_returning = bool(self._engine.dialect.update_returning)
        if upgrade:
            try:
                retrying(migrate)(self._engine)
            except BaseException:
                self._engine.dispose()
                raise

    def __repr__(self) -> str:
        return f"SQLStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for tools such as the dashboard's ad-hoc queries)."""
        return self._engine

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._engine.begin() as conn:
            if self._fences:
                self._check_fences(conn)
            yield conn

    def _check_fences(self, conn: sa.Connection) -> None:
        for experiment_id, token in self._fences.items():
            if self.dialect == "sqlite":  # straight to the driver: a third of the cost
                dbapi_conn: Any = conn.connection.dbapi_connection
                row = dbapi_conn.execute(_SQLITE_FENCE, (experiment_id,)).fetchone()
                current = row[0] if row else None
            else:
                current = conn.execute(_FENCE, {"b_exp": experiment_id}).scalar()
            if current != token:
                raise lease.lost(experiment_id, token, self._lease_row(conn, experiment_id))

    @staticmethod
    def _lease_row(conn: sa.Connection, experiment_id: int) -> LeaseRecord | None:
        row = conn.execute(_SEL_LEASE, {"b_exp": experiment_id}).first()
        if row is None or (row.token == 0 and row.holder is None):
            return None
        return LeaseRecord(experiment_id, row.holder, row.token, row.expires_at)

    # -- leases --------------------------------------------------------------------------------
    @retrying
    def acquire_lease(self, experiment_id: int, holder: str, ttl: float) -> int:
        with self._engine.begin() as c:  # not _write: taking a lease is not fenced by one
            try:  # the row every later acquisition locks (a no-op once it exists)
                c.execute(
                    self._ins_lease,
                    {"experiment_id": experiment_id, "holder": None, "token": 0, "expires_at": 0},
                )
            except sa.exc.IntegrityError:
                raise no_experiment(experiment_id) from None
            row = c.execute(_LOCK_LEASE, {"b_exp": experiment_id}).one()
            now = time.time()
            if _call.retry and row.holder == holder and row.expires_at > now:
                token = int(row.token)  # the earlier attempt took it; its commit was not seen
                self._fences[experiment_id] = token
                return token
            current = LeaseRecord(experiment_id, row.holder, row.token, row.expires_at)
            lease.refuse_unless_free(experiment_id, current, holder, now)
            token = int(row.token) + 1
            c.execute(
                _TAKE_LEASE,
                {"b_exp": experiment_id, "holder": holder, "token": token, "expires_at": now + ttl},
            )
        self._fences[experiment_id] = token
        return token

    @retrying
    def renew_lease(self, experiment_id: int, token: int, ttl: float) -> None:
        with self._engine.begin() as c:
            done = c.execute(
                _RENEW_LEASE,
                {"b_exp": experiment_id, "b_token": token, "expires_at": time.time() + ttl},
            ).rowcount
            if not done:
                raise lease.lost(experiment_id, token, self._lease_row(c, experiment_id))

    @retrying
    def release_lease(self, experiment_id: int, token: int) -> bool:
        if self._fences.get(experiment_id) == token:
            del self._fences[experiment_id]
        with self._engine.begin() as c:
            return bool(
                c.execute(
                    _RENEW_LEASE,
                    {"b_exp": experiment_id, "b_token": token, "holder": None, "expires_at": 0.0},
                ).rowcount
            )

    @retrying
    def get_lease(self, experiment_id: int) -> LeaseRecord | None:
        with self._read() as c:
            record = self._lease_row(c, experiment_id)
            if (
                record is None
                and c.execute(_HAS_EXPERIMENT, {"b_id": experiment_id}).first() is None
            ):
                raise no_experiment(experiment_id)
        return record

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._read_engine.connect() as conn:
            yield conn

    def _one(
        self, select: sa.Select[Any], params: dict[str, Any], missing: Callable[[Any], StoreError]
    ) -> Any:
        """The row ``select`` reads by its key, the one value in ``params``; none raises
        ``missing(key)``."""
        with self._read() as c:
            row = c.execute(select, params).first()
        if row is None:
            (key,) = params.values()
            raise missing(key)
        return row

    def _rows(
        self, select: sa.Select[Any], params: dict[str, Any], owner: _Owner, owner_id: int
    ) -> Sequence[Any]:
        """The rows ``select`` reads for one experiment or trial (``owner_id``). No rows at all
        and no such owner (checked in the same read) raise ``owner.missing``; an owner with no
        rows gets an empty list."""
        with self._read() as c:
            rows = c.execute(select, params).all()
            if not rows and c.execute(owner.exists, {"b_id": owner_id}).first() is None:
                raise owner.missing(owner_id)
        return rows

    def _update_one(
        self, conn: sa.Connection, stmt: sa.Update, select: sa.Select[Any], params: dict[str, Any]
    ) -> Any:
        """Run a one-row UPDATE and return the new row (None when no row matched)."""
        if self._update_returning:
            return conn.execute(_RETURNING[stmt], params).first()
        if conn.execute(stmt, params).rowcount == 0:
            return None
        return conn.execute(select, params).first()

    def _experiment_of(self, conn: sa.Connection, trial_id: int) -> int:
        """The trial's experiment id. Cached: ids are never reused and never change owner."""
        experiment_id = self._trial_experiment.get(trial_id)
        if experiment_id is None:
            experiment_id = conn.execute(_TRIAL_EXPERIMENT, {"b_id": trial_id}).scalar()
            if experiment_id is None:
                raise no_trial(trial_id)
            self._trial_experiment[trial_id] = experiment_id
        return experiment_id

    # -- experiments ---------------------------------------------------------------------------
    @retrying
    def create_experiment(
        self,
        name: str,
        config: dict[str, Any],
        state: str = ACTIVE,
        *,
        unless: Callable[[ExperimentRecord], bool] | None = None,
    ) -> ExperimentRecord:
        now = _stamp()
        with self._write() as c:
            if _call.retry:  # the earlier attempt may have committed
                row = c.execute(_SAME_EXPERIMENT, {"b_name": name, "b_at": now}).first()
                if row is not None:
                    return _experiment(row)
            if unless is not None:
                if self.dialect == "postgresql":
                    c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CREATE_LOCK})
                for row in c.execute(_LIST_EXPERIMENTS):
                    if unless(_experiment(row)):
                        raise experiment_exists(_experiment(row))
            result = c.execute(
                _INS_EXPERIMENT,
                {"name": name, "state": state, "config": config, "created_at": now},
            )
            eid = _inserted_id(result)
        return ExperimentRecord(eid, name, state, config, now, None, False)

    @retrying
    def get_experiment(self, experiment_id: int) -> ExperimentRecord:
        return _experiment(self._one(_SEL_EXPERIMENT, {"b_id": experiment_id}, no_experiment))

    @retrying
    def list_experiments(self) -> list[ExperimentRecord]:
        with self._read() as c:
            return [_experiment(r) for r in c.execute(_LIST_EXPERIMENTS)]

    @retrying
    def update_experiment(
        self,
        experiment_id: int,
        *,
        state: str | None = None,
        config: dict[str, Any] | None = None,
        coordinator: dict[str, Any] | None = _UNSET,
        archived: bool | None = None,
    ) -> ExperimentRecord:
        changes = changed_fields(
            state=state, config=config, coordinator=coordinator, archived=archived
        )
        if not changes:
            return self.get_experiment(experiment_id)
        with self._write() as c:
            row = self._update_one(
                c, _UPD_EXPERIMENT, _SEL_EXPERIMENT, {"b_id": experiment_id, **changes}
            )
        if row is None:
            raise no_experiment(experiment_id)
        return _experiment(row)

    @retrying
    def delete_experiment(self, experiment_id: int) -> None:
        with self._write() as c:
            if c.execute(_LOCK_EXPERIMENT, {"b_id": experiment_id}).first() is None:
                raise no_experiment(experiment_id)
            params = {"b_exp": experiment_id}
            for stmt in _DELETE_EXPERIMENT:
                c.execute(stmt, params)
        self._fences.pop(experiment_id, None)
        self._trial_experiment = {
            t: e for t, e in self._trial_experiment.items() if e != experiment_id
        }

    # -- trials --------------------------------------------------------------------------------
    @retrying
    def create_trial(
        self,
        experiment_id: int,
        request_id: int,
        params: dict[str, Any],
        parent_id: int | None = None,
        state: str = PENDING,
    ) -> TrialRecord:
        with self._write() as c:
            # Serialises numbering per experiment (PostgreSQL; SQLite is already serialised by
            # BEGIN IMMEDIATE and SQLAlchemy leaves FOR UPDATE out there).
            if c.execute(_LOCK_EXPERIMENT, {"b_id": experiment_id}).first() is None:
                raise no_experiment(experiment_id)
            existing, number = c.execute(
                _REQUEST_AND_NEXT, {"b_exp": experiment_id, "b_req": request_id}
            ).one()
            if existing is not None:  # a replayed Create
                return _trial(c.execute(_SEL_TRIAL, {"b_id": existing}).one())
            if parent_id is not None and c.execute(_HAS_TRIAL, {"b_id": parent_id}).first() is None:
                raise no_parent(parent_id)
            now = time.time()
            result = c.execute(
                _INS_TRIAL,
                {
                    "experiment_id": experiment_id,
                    "number": number,
                    "request_id": request_id,
                    "params": params,
                    "state": state,
                    "parent_id": parent_id,
                    "restarts": 0,
                    "created_at": now,
                },
            )
            tid = _inserted_id(result)
        self._trial_experiment[tid] = experiment_id  # only once committed: ids roll back too
        return TrialRecord(
            tid, experiment_id, number, request_id, params, state, now, parent_id, 0, None, None
        )

    @retrying
    def get_trial(self, trial_id: int) -> TrialRecord:
        return _trial(self._one(_SEL_TRIAL, {"b_id": trial_id}, no_trial))

    @retrying
    def list_trials(self, experiment_id: int) -> list[TrialRecord]:
        rows = self._rows(_LIST_TRIALS, {"b_exp": experiment_id}, _OF_EXPERIMENT, experiment_id)
        return [_trial(r) for r in rows]

    @retrying
    def update_trial(
        self,
        trial_id: int,
        *,
        expect_state: str | None = None,
        state: str | None = None,
        exit_code: int | None = _UNSET,
        job: dict[str, Any] | None = _UNSET,
        restarts: int | None = None,
        ended_at: float | None = _UNSET,
    ) -> TrialRecord | None:
        changes = changed_fields(
            state=state, exit_code=exit_code, job=job, restarts=restarts, ended_at=ended_at
        )
        if not changes:  # nothing to change: a read (and a state check)
            rec = self.get_trial(trial_id)
            return None if expect_state is not None and rec.state != expect_state else rec
        params: dict[str, Any] = {"b_id": trial_id, **changes}
        with self._write() as c:
            if expect_state is None:
                row = self._update_one(c, _UPD_TRIAL, _SEL_TRIAL, params)
            else:
                params["b_expect"] = expect_state
                row = self._update_one(c, _CAS_TRIAL, _SEL_TRIAL, params)
            if row is None:
                current = c.execute(_SEL_TRIAL, {"b_id": trial_id}).first()
                if current is None:
                    raise no_trial(trial_id)
                if _call.retry and _holds(current, params):
                    return _trial(current)  # the earlier attempt's commit was not seen
                return None  # the compare-and-set lost: the state was not expect_state
        return _trial(row)

    # -- metrics -------------------------------------------------------------------------------
    @retrying
    def add_metrics(
        self, trial_id: int, group: str, entries: Sequence[tuple[int, dict[str, Any]]]
    ) -> list[MetricRecord]:
        # A step repeated within one call: the first report wins, as it would across calls.
        values_by_step: dict[int, dict[str, Any]] = {}
        for step, values in entries:
            values_by_step.setdefault(step, values)
        with self._write() as c:
            experiment_id = self._experiment_of(c, trial_id)
            if not values_by_step:
                return []
            now = _stamp()
            params = [
                {
                    "trial_id": trial_id,
                    "experiment_id": experiment_id,
                    "group": group,
                    "step": step,
                    "values": values,
                    "time": now,
                }
                for step, values in values_by_step.items()
            ]
            # One row: a plain execute; several: SQLAlchemy's "insertmanyvalues" batches them
            # into multi-row INSERT ... RETURNING statements.
            result = c.execute(self._ins_metrics, params[0] if len(params) == 1 else params)
            inserted = sorted((seq, step) for seq, step in result)  # skipped steps are absent
            if _call.retry:  # count rows the earlier attempt wrote (same call time) as inserted
                earlier = c.execute(
                    _SAME_METRICS, {"b_trial": trial_id, "b_group": group, "b_time": now}
                )
                inserted = sorted(set(inserted) | {(seq, step) for seq, step in earlier})
        return [
            MetricRecord(seq, trial_id, group, step, values_by_step[step], now)
            for seq, step in inserted
        ]

    @retrying
    def add_metrics_batch(
        self, batches: Sequence[tuple[int, str, Sequence[tuple[int, dict[str, Any]]]]]
    ) -> list[list[MetricRecord]]:
        # One transaction for everything: the reports of many requests cost one commit (one
        # lock, one sync) instead of one each. Rows are made as they are inserted, so a batch
        # of 100,000 never holds 100,000 parameter sets for the garbage collector to walk (a
        # full collection over them stalls every thread, the event loop's too, for seconds).
        first: dict[tuple[int, str, int], tuple[int, dict[str, Any]]] = {}
        for index, (trial_id, group, entries) in enumerate(batches):
            for step, values in entries:
                first.setdefault((trial_id, group, step), (index, values))
        out: list[list[MetricRecord]] = [[] for _ in batches]
        if not first:
            return out
        with self._write() as c:
            experiments = {t: self._experiment_of(c, t) for t, _, _ in batches}
            now = _stamp()
            rows = (
                (trial_id, experiments[trial_id], group, step, values, now)
                for (trial_id, group, step), (_, values) in first.items()
            )
            if self.dialect == "sqlite":
                inserted = _insert_metrics_sqlite(c, rows)
            else:
                inserted = _insert_metrics_postgresql(c, rows)
            if _call.retry:  # rows the earlier attempt wrote (same call time) count as inserted
                known = set(inserted)
                for trial_id, group in {(t, g) for t, g, _ in first}:
                    params = {"b_trial": trial_id, "b_group": group, "b_time": now}
                    for seq, step in c.execute(_SAME_METRICS, params):
                        known.add((seq, trial_id, group, step))
                inserted = list(known)
        inserted.sort()
        for seq, trial_id, group, step in inserted:
            index, values = first[(trial_id, group, step)]
            out[index].append(MetricRecord(seq, trial_id, group, step, values, now))
        return out

    @retrying
    def read_metrics(
        self, experiment_id: int, after: int = 0, group: str | None = None
    ) -> list[MetricRecord]:
        params: dict[str, Any] = {"b_exp": experiment_id, "b_after": after}
        if group is None:
            rows = self._rows(_READ_METRICS, params, _OF_EXPERIMENT, experiment_id)
        else:
            params["b_group"] = group
            rows = self._rows(_READ_METRICS_GROUP, params, _OF_EXPERIMENT, experiment_id)
        return [_metric(r) for r in rows]

    @retrying
    def trial_metrics(self, trial_id: int, group: str | None = None) -> list[MetricRecord]:
        if group is None:
            rows = self._rows(_TRIAL_METRICS, {"b_trial": trial_id}, _OF_TRIAL, trial_id)
        else:
            params = {"b_trial": trial_id, "b_group": group}
            rows = self._rows(_TRIAL_METRICS_GROUP, params, _OF_TRIAL, trial_id)
        return [_metric(r) for r in rows]

    # -- searcher snapshots and events ---------------------------------------------------------
    @retrying
    def save_searcher_state(self, experiment_id: int, state: dict[str, Any]) -> None:
        try:
            with self._write() as c:
                c.execute(
                    self._save_state,
                    {"experiment_id": experiment_id, "state": state, "updated_at": time.time()},
                )
        except sa.exc.IntegrityError:  # the foreign key: every other column is ours
            raise no_experiment(experiment_id) from None

    @retrying
    def load_searcher_state(self, experiment_id: int) -> dict[str, Any] | None:
        with self._read() as c:
            row = c.execute(_LOAD_STATE, {"b_exp": experiment_id}).first()
            if row is None:
                if c.execute(_HAS_EXPERIMENT, {"b_id": experiment_id}).first() is None:
                    raise no_experiment(experiment_id)
                return None
        return row[0]

    @retrying
    def add_event(self, experiment_id: int, kind: str, data: dict[str, Any]) -> EventRecord:
        now = _stamp()
        try:
            with self._write() as c:
                if _call.retry:  # the earlier attempt may have committed
                    seq = c.execute(
                        _SAME_EVENT, {"b_exp": experiment_id, "b_kind": kind, "b_time": now}
                    ).scalar()
                    if seq is not None:
                        return EventRecord(seq, experiment_id, kind, data, now)
                result = c.execute(
                    _INS_EVENT,
                    {"experiment_id": experiment_id, "kind": kind, "data": data, "time": now},
                )
                seq = _inserted_id(result)
        except sa.exc.IntegrityError:  # the foreign key: every other column is ours
            raise no_experiment(experiment_id) from None
        return EventRecord(seq, experiment_id, kind, data, now)

    @retrying
    def read_events(self, experiment_id: int, after: int = 0) -> list[EventRecord]:
        params = {"b_exp": experiment_id, "b_after": after}
        return [_event(r) for r in self._rows(_READ_EVENTS, params, _OF_EXPERIMENT, experiment_id)]

    # -- checkpoints ---------------------------------------------------------------------------
    @retrying
    def add_checkpoint(
        self,
        uuid: str,
        trial_id: int,
        steps_completed: int,
        metadata: dict[str, Any],
    ) -> CheckpointRecord:
        """Record a checkpoint; idempotent on ``uuid`` (a retried report returns the record)."""
        with self._write() as c:
            row = c.execute(_SEL_CHECKPOINT, {"b_uuid": uuid}).first()
            if row is not None:
                return same_checkpoint(_checkpoint(row), trial_id)
            if c.execute(_HAS_TRIAL, {"b_id": trial_id}).first() is None:
                raise no_trial(trial_id)
            now = time.time()
            c.execute(
                _INS_CHECKPOINT,
                {
                    "uuid": uuid,
                    "trial_id": trial_id,
                    "steps_completed": steps_completed,
                    "metadata": metadata,
                    "state": CheckpointState.COMPLETED,
                    "created_at": now,
                },
            )
        return CheckpointRecord(
            uuid, trial_id, steps_completed, now, metadata, CheckpointState.COMPLETED
        )

    @retrying
    def get_checkpoint(self, uuid: str) -> CheckpointRecord:
        return _checkpoint(self._one(_SEL_CHECKPOINT, {"b_uuid": uuid}, no_checkpoint))

    @retrying
    def list_checkpoints(self, trial_id: int) -> list[CheckpointRecord]:
        rows = self._rows(_LIST_CHECKPOINTS, {"b_trial": trial_id}, _OF_TRIAL, trial_id)
        return [_checkpoint(r) for r in rows]

    @retrying
    def set_checkpoint_state(self, uuid: str, state: str) -> CheckpointRecord:
        with self._write() as c:
            row = self._update_one(
                c, _UPD_CHECKPOINT, _SEL_CHECKPOINT, {"b_uuid": uuid, "state": state}
            )
        if row is None:
            raise no_checkpoint(uuid)
        return _checkpoint(row)

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()
