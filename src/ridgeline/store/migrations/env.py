"""Alembic environment for ridgeline's store.

``ridgeline.store.sql.migrate`` passes an open connection (already inside the transaction that
holds the migration lock) in ``config.attributes["connection"]``; the migrations then run inside
that transaction. Run by hand (``alembic -x url=sqlite:///study.db upgrade head`` with
``script_location`` pointing here), it connects to ``-x url`` or ``sqlalchemy.url`` itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from ridgeline.store.schema import metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    return url


def _configure(connection: sa.Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(_url())
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
