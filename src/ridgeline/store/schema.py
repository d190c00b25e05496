"""The SQL schema of the durable store, as SQLAlchemy Core tables.

This module describes the schema at the newest migration; the migrations in
``ridgeline/store/migrations/versions`` create it step by step and a test checks that the two agree.
Importing it imports SQLAlchemy, so only ``sql.py`` and the migrations import it.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "JSONText",
    "Id",
    "metadata",
    "experiments",
    "trials",
    "operations",
    "metrics",
    "checkpoints",
    "events",
    "searcher_states",
    "leases",
    "dumps",
    "loads",
]


def dumps(value: Any) -> str:
    """Compact JSON that keeps NaN and +/-inf (as ``NaN``/``Infinity``, which Python reads back).

    Floats are written with ``repr``, so every float round-trips bit for bit.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


loads = json.loads  # accepts NaN, Infinity and -Infinity by default


class JSONText(sa.types.TypeDecorator[Any]):
    """JSON kept in a TEXT column.

    Database JSON types reject NaN (PostgreSQL's ``json``/``jsonb``) or turn it into NULL
    (SQLite's JSON functions); a diverged trial's NaN objective must come back as NaN, so the
    value is serialised by Python's json, which round-trips NaN and infinities.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else dumps(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else loads(value)

    def coerce_compared_value(self, op: Any, value: Any) -> sa.types.TypeEngine[Any]:
        return self.impl_instance


# 64-bit ids on PostgreSQL; on SQLite the PK must be spelled INTEGER to alias the rowid.
Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time: sa.types.TypeEngine[float] = (
    sa.Double()
)  # seconds since the epoch (time.time()); double precision on both backends

# Constraint names are explicit so later migrations (batch mode on SQLite) can refer to them.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# sqlite_autoincrement: ids and cursors are never reused, even after rows are deleted, so a
# trial id handed to a process or a metrics cursor held by a reader cannot point at new rows.
experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("config", JSONText, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("coordinator", JSONText, nullable=True),
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sqlite_autoincrement=True,
)

trials = sa.Table(
    "trials",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", sa.BigInteger, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("request_id", sa.BigInteger, nullable=False),
    sa.Column("params", JSONText, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("trials.id"), nullable=True),
    sa.Column("restarts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("job", JSONText, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("ended_at", Time, nullable=True),
    sa.UniqueConstraint("experiment_id", "number"),
    sa.UniqueConstraint("experiment_id", "request_id"),
    sqlite_autoincrement=True,
)

# A searcher's "train trial T to length L" (for a later feature: durable operations).
operations = sa.Table(
    "operations",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("trial_id", sa.BigInteger, sa.ForeignKey("trials.id"), nullable=False, index=True),
    sa.Column("length", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("metric", sa.Double, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sqlite_autoincrement=True,
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("seq", Id, primary_key=True, autoincrement=True),
    sa.Column("trial_id", sa.BigInteger, sa.ForeignKey("trials.id"), nullable=False),
    sa.Column("experiment_id", sa.BigInteger, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("group", sa.String(64), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("values", JSONText, nullable=False),
    sa.Column("time", Time, nullable=False),
    sa.UniqueConstraint("trial_id", "group", "step"),
    sa.Index(None, "experiment_id", "seq"),
    sqlite_autoincrement=True,
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("uuid", sa.String(255), primary_key=True),
    sa.Column("trial_id", sa.BigInteger, sa.ForeignKey("trials.id"), nullable=False, index=True),
    sa.Column("steps_completed", sa.BigInteger, nullable=False),
    sa.Column("metadata", JSONText, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", Id, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", sa.BigInteger, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("data", JSONText, nullable=False),
    sa.Column("time", Time, nullable=False),
    sa.Index(None, "experiment_id", "seq"),
    sqlite_autoincrement=True,
)

searcher_states = sa.Table(
    "searcher_states",
    metadata,
    sa.Column(
        "experiment_id",
        sa.BigInteger,
        sa.ForeignKey("experiments.id"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("state", JSONText, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

# One row per experiment that was ever leased: who may write for it now, and the fencing token
# that every write of that holder compares. The row outlives a release, so tokens only grow.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column(
        "experiment_id",
        sa.BigInteger,
        sa.ForeignKey("experiments.id"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("holder", sa.Text, nullable=True),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
)
