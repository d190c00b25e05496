"""Where ridgeline keeps user-level state (the CLI's store and experiment folders, all private
to the user: the store holds the experiments' tokens), and paths built from untrusted parts
that must stay inside their root. Standard library only: the trial side uses it too."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

from ridgeline.errors import UnsafePathError
from ridgeline.private import private_dir

STORAGE_ENV = "RIDGELINE_STORAGE"  # store URL or SQLite path for CLI-created experiments
DATA_DIR_ENV = "RIDGELINE_DATA_DIR"  # folder for experiment folders (and the default store)
# How a detached coordinator learns its store: a URL may hold a password, and argv is public.
COORDINATOR_STORAGE_ENV = "RIDGELINE_COORDINATOR_STORAGE"
CONFIG_FILE_ENV = "RIDGELINE_CONFIG"  # the user-level config file (cluster defaults)


def data_dir() -> Path:
    """The platform's per-user data folder for ridgeline (created on first use, owner-only)."""
    if os.environ.get(DATA_DIR_ENV):
        base = Path(os.environ[DATA_DIR_ENV])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "ridgeline"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home())) / "ridgeline"
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        base = Path(xdg) / "ridgeline"
    return private_dir(base)


def user_config_file() -> Path:
    """The user-level config file (``cluster:`` defaults): ``$RIDGELINE_CONFIG``, else
    ``config.yaml`` in the platform's per-user config folder (``$XDG_CONFIG_HOME/ridgeline``,
    by default ``~/.config/ridgeline``). It need not exist; nothing is created."""
    if os.environ.get(CONFIG_FILE_ENV):
        return Path(os.environ[CONFIG_FILE_ENV])
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "ridgeline"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA", Path.home())) / "ridgeline"
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        base = Path(xdg) / "ridgeline"
    return base / "config.yaml"


def default_storage(storage: str | None = None) -> str:
    """``storage`` if given, else ``$RIDGELINE_STORAGE``, else the SQLite file in data_dir()."""
    return storage or os.environ.get(STORAGE_ENV) or str(data_dir() / "ridgeline.db")


def new_experiment_dir() -> Path:
    """A fresh folder for one experiment's context, trial folders, logs and checkpoints."""
    parent = private_dir(data_dir() / "experiments")
    path = parent / uuid.uuid4().hex[:12]
    path.mkdir(mode=0o700)
    return private_dir(path)


def confined(
    root: str | os.PathLike[str],
    *parts: str,
    what: str = "path",
    allow_root: bool = False,
    resolve_last: bool = True,
) -> Path:
    """``root/parts...`` when it stays inside ``root`` once resolved (``..``, absolute parts and
    symlinks included); else UnsafePathError naming ``what``. The root itself counts as
    outside unless ``allow_root``: a request must never reach the whole folder.

    ``resolve_last=False`` checks the entry itself rather than what a symlink there points
    to (for removing or inspecting the entry without acting through it).

    Returns the path as built under the resolved root, not the resolved target, so a caller
    can still tell that its last part is a symlink (and not act through it)."""
    base = Path(os.path.realpath(root))
    joined = "/".join(str(part) for part in parts)
    if any(not isinstance(part, str) or "\x00" in part for part in parts):
        raise UnsafePathError(f"{what} {joined!r}: not a usable file name")
    built = base.joinpath(*parts)
    if resolve_last:
        resolved = Path(os.path.realpath(built))  # never raises on loops; stops resolving there
    elif built.name in ("", ".", ".."):
        resolved = base.parent  # no entry of its own: refused below
    else:
        resolved = Path(os.path.realpath(built.parent)) / built.name
    inside = resolved.is_relative_to(base) and (allow_root or resolved != base)
    if not inside or (not allow_root and built == base):
        raise UnsafePathError(f"{what} {joined!r} lies outside {base}; nothing was done")
    return built
