"""Store fixtures: an SQLite file per test, and a fresh PostgreSQL database per test.

PostgreSQL: ``RIDGELINE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
names a maintenance database where the tests may CREATE and DROP databases. If the server cannot
be reached, PostgreSQL tests are skipped, except under ``CI`` where that is a failure: a CI
run that silently skips the PostgreSQL backend proves nothing about it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ridgeline.store.base import Store

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _admin_url() -> str:
    return os.environ.get("RIDGELINE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """The maintenance URL, after checking that the server answers (skip or fail otherwise)."""
    url = _admin_url()
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # ImportError, OperationalError: both mean "no PostgreSQL here"
        message = f"PostgreSQL at {url} is not usable ({type(exc).__name__}: {exc})"
        if os.environ.get("CI"):
            pytest.fail(
                f"{message}; CI must run the PostgreSQL store tests: start the server or set "
                "RIDGELINE_TEST_POSTGRES_URL",
                pytrace=False,
            )
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A new, empty database (unique name, so xdist workers never share one), dropped after."""
    import psycopg
    import sqlalchemy as sa

    name = f"ridgeline_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(postgres_admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """None for the in-memory store, else a URL of a fresh database."""
    if request.param == "memory":
        return None
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def make_store(backend_url: str | None) -> Iterator[Callable[[], Store]]:
    """Opens a store on this test's backend (every call a new handle on the same database;
    for memory, a new empty store); closes them all at the end."""
    from ridgeline.store import open_store

    opened: list[Store] = []

    def make() -> Store:
        store = open_store(backend_url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    return make_store()
