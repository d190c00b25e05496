"""Initial schema: experiments, trials, operations, metrics, checkpoints, events, searcher states.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Spelled out column by column (not ``metadata.create_all``) so that later edits of schema.py do
not change what this revision creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# INTEGER on SQLite so the primary key aliases the rowid (with AUTOINCREMENT: never reused).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.Text  # JSON written by Python's json (keeps NaN/inf); see schema.JSONText
Time = sa.Double


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("coordinator", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "trials",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.BigInteger, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("request_id", sa.BigInteger, nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.BigInteger, nullable=True),
        sa.Column("restarts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("job", JSON, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("ended_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_trials_experiment_id_experiments"
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["trials.id"], name="fk_trials_parent_id_trials"),
        sa.UniqueConstraint("experiment_id", "number", name="uq_trials_experiment_id_number"),
        sa.UniqueConstraint(
            "experiment_id", "request_id", name="uq_trials_experiment_id_request_id"
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "operations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("trial_id", sa.BigInteger, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("metric", sa.Double, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operations"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_operations_trial_id_trials"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_operations_trial_id", "operations", ["trial_id"])
    op.create_table(
        "metrics",
        sa.Column("seq", Id, primary_key=True, autoincrement=True),
        sa.Column("trial_id", sa.BigInteger, nullable=False),
        sa.Column("experiment_id", sa.BigInteger, nullable=False),
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("values", JSON, nullable=False),
        sa.Column("time", Time, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_metrics"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_metrics_trial_id_trials"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_metrics_experiment_id_experiments"
        ),
        sa.UniqueConstraint("trial_id", "group", "step", name="uq_metrics_trial_id_group_step"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_metrics_experiment_id_seq", "metrics", ["experiment_id", "seq"])
    op.create_table(
        "checkpoints",
        sa.Column("uuid", sa.String(255), nullable=False),
        sa.Column("trial_id", sa.BigInteger, nullable=False),
        sa.Column("steps_completed", sa.BigInteger, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_checkpoints"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_checkpoints_trial_id_trials"),
    )
    op.create_index("ix_checkpoints_trial_id", "checkpoints", ["trial_id"])
    op.create_table(
        "events",
        sa.Column("seq", Id, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("time", Time, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_events_experiment_id_experiments"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_experiment_id_seq", "events", ["experiment_id", "seq"])
    op.create_table(
        "searcher_states",
        sa.Column("experiment_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_searcher_states"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_searcher_states_experiment_id_experiments",
        ),
    )


def downgrade() -> None:
    for table in (
        "searcher_states",
        "events",
        "checkpoints",
        "metrics",
        "operations",
        "trials",
        "experiments",
    ):
        op.drop_table(table)
