"""Secrets stay with their owner: stores and token files are 0600, their folders 0700, and a
storage URL is shown without its password.

Modes are set explicitly (``chmod``), so they hold whatever the umask. A file or folder that
belongs to someone else is left as it is: we could not change it, and it is theirs to guard.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700

_PASSWORD_IN_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)[^&]*")


def _tighten(path: Path, mode: int) -> None:
    if os.name == "nt":  # no POSIX modes; the per-user profile folders are private already
        return
    try:
        if (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
    except OSError:  # someone else's, or gone meanwhile
        pass


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) and make the folder itself owner-only."""
    folder = Path(path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=DIR_MODE, exist_ok=True)
    _tighten(folder, DIR_MODE)
    return folder


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty if missing; make it owner-only either way (contents untouched)."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _tighten(target, FILE_MODE)
    return target


def private_sqlite(path: str | os.PathLike[str]) -> None:
    """An SQLite database file and its ``-wal``/``-shm`` companions, owner-only. SQLite
    creates the companions with the database file's mode, so a new store stays private."""
    database = Path(path)
    if not database.parent.is_dir():
        return  # SQLite reports the missing folder itself
    if database.exists():
        _tighten(database, FILE_MODE)
    else:
        private_file(database)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            _tighten(companion, FILE_MODE)


def mask_url(url: str | os.PathLike[str]) -> str:
    """``url`` with any password replaced by ``***``, for logs, messages and the CLI."""
    text = os.fspath(url)
    scheme, sep, rest = text.partition("://")
    if sep:
        authority_end = len(rest)
        for stop in "?#":
            if stop in rest:
                authority_end = min(authority_end, rest.index(stop))
        at = rest.rfind("@", 0, authority_end)
        if at >= 0:
            userinfo = rest[:at]
            if ":" in userinfo and "/" not in userinfo.split(":", 1)[0]:
                user = userinfo.split(":", 1)[0]
                rest = f"{user}:***{rest[at:]}"
        text = f"{scheme}://{rest}"
    return _PASSWORD_IN_QUERY.sub(r"\1***", text)
