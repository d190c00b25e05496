"""Opening a store safely: a damaged SQLite file or an unreachable database is a clear
``StoreError`` that names it and says what to do, never a driver traceback, and nothing is
written to a file that is not a healthy store."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from ridgeline.errors import StoreError
from ridgeline.private import mask_url

SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER = 100


def sqlite_path(url: str) -> Path | None:
    """The database file an SQLite URL names; None for other databases and in-memory ones."""
    try:
        u = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"invalid store URL {mask_url(url)!r}: {exc}") from None
    if u.get_backend_name() != "sqlite":
        return None
    if u.database in (None, "", ":memory:") or u.query.get("mode") == "memory":
        return None
    return Path(u.database)


def damaged(path: Path, why: str) -> StoreError:
    return StoreError(
        f"the store {path} cannot be used: {why}. Nothing in it was changed. Restore it from "
        f"a backup, or move it aside (then a new, empty store is made there), or choose "
        f"another storage location"
    )


def check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not an SQLite database, or one cut short (a partial copy, a
    full disk). A missing or empty file is a new store and passes."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    if path.is_dir():
        raise damaged(path, "it is a folder, not a database file")
    with open(path, "rb") as handle:
        header = handle.read(_HEADER)
    if len(header) < _HEADER or not header.startswith(SQLITE_MAGIC):
        raise damaged(path, "it is not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise damaged(path, f"its header is corrupt (page size {page_size})")
    if size % page_size:
        raise damaged(path, f"it is truncated ({size} bytes, not whole {page_size}-byte pages)")
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96]
    wal = path.with_name(path.name + "-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0
    if header_valid and pages * page_size > size and not wal_pending:
        raise damaged(path, f"it is truncated ({size} of {pages * page_size} bytes)")


def unusable(target: str | os.PathLike[str], exc: sa.exc.DBAPIError) -> StoreError:
    """The error for a store the database driver refused to open."""
    reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    why = reason[0] if reason else type(exc).__name__
    path = sqlite_path(os.fspath(target)) if "://" in os.fspath(target) else Path(target)
    if path is not None and "unable to open" in why:
        return StoreError(f"cannot open the store {path}: {why} (is its folder writable?)")
    if path is not None:
        return damaged(path, f"the database reports: {why}")
    return StoreError(f"cannot open the store {mask_url(target)}: {mask_url(why)}")
