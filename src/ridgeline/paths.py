"""Where ridgeline keeps user-level state: the CLI's store and experiment folders.

All of it is private to the user (folders 0700): the store holds the experiments' tokens."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ridgeline.private import private_dir

STORAGE_ENV = "RIDGELINE_STORAGE"  # store URL or SQLite path for CLI-created experiments
DATA_DIR_ENV = "RIDGELINE_DATA_DIR"  # folder for experiment folders (and the default store)
# How a detached coordinator learns its store: a URL may hold a password, and argv is public.
COORDINATOR_STORAGE_ENV = "RIDGELINE_COORDINATOR_STORAGE"


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


def default_storage(storage: str | None = None) -> str:
    """``storage`` if given, else ``$RIDGELINE_STORAGE``, else the SQLite file in data_dir()."""
    return storage or os.environ.get(STORAGE_ENV) or str(data_dir() / "ridgeline.db")


def new_experiment_dir() -> Path:
    """A fresh folder for one experiment's context, trial folders, logs and checkpoints."""
    import uuid

    parent = private_dir(data_dir() / "experiments")
    path = parent / uuid.uuid4().hex[:12]
    path.mkdir(mode=0o700)
    return private_dir(path)
