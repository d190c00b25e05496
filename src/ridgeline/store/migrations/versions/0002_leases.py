"""Experiment leases: one coordinator per experiment, fenced by a growing token.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("experiment_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("holder", sa.Text, nullable=True),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_leases"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name="fk_leases_experiment_id_experiments"
        ),
    )


def downgrade() -> None:
    op.drop_table("leases")
