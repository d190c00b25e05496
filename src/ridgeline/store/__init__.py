"""The store: where experiments, trials, metrics and checkpoints live.

``open_store`` picks the implementation. Importing this package stays cheap (no SQLAlchemy):
the in-process Study with its default in-memory store never pays for the SQL machinery.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ridgeline.errors import StorageUnavailable
from ridgeline.private import mask_url
from ridgeline.store.base import Store
from ridgeline.store.memory import MemoryStore

if TYPE_CHECKING:
    from ridgeline.store.sql import SQLStore

__all__ = ["Store", "MemoryStore", "SQLStore", "open_store"]


def open_store(target: str | os.PathLike[str] | None) -> Store:
    """Open the store ``target`` names.

    * ``None``: a new in-memory store (nothing survives the process);
    * a string containing ``://``: an SQLAlchemy URL, e.g. ``sqlite:////abs/study.db`` or
      ``postgresql://user@host/db`` (psycopg 3);
    * anything else: the path of an SQLite file, created with its parent directories if missing.

    SQLite files are owner-only (0600). A damaged file or an unreachable database is a
    ``StoreError`` that names it and says what to do.
    """
    if target is None:
        return MemoryStore()
    import sqlalchemy as sa  # lazy: sqlalchemy is heavy, loaded on use

    # lazy: ridgeline.store.files loads sqlalchemy
    from ridgeline.store.files import check_sqlite_file, sqlite_path, unusable
    from ridgeline.store.sql import SQLStore  # lazy: ridgeline.store.sql loads sqlalchemy

    if isinstance(target, str) and "://" in target:
        url = target
        path = sqlite_path(url)
    else:
        path = Path(os.fspath(target)).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    if path is not None:
        check_sqlite_file(path)
    try:
        return SQLStore(url)
    except sa.exc.DBAPIError as exc:
        raise unusable(url, exc) from None
    except StorageUnavailable as exc:  # unreachable for the whole retry bound
        raise StorageUnavailable(f"cannot open the store {mask_url(url)}: {exc}") from exc


def __getattr__(name: str) -> object:
    # ``from ridgeline.store import SQLStore`` works, importing SQLAlchemy only then.
    if name == "SQLStore":
        from ridgeline.store.sql import SQLStore  # lazy: ridgeline.store.sql loads sqlalchemy

        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
