"""The context snapshot: a copy of the experiment's folder taken at creation, so edits made
while it runs do not leak into its trials."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

from ridgeline.errors import ConfigError

IGNORE_FILE = ".ridgelineignore"
ALWAYS_IGNORED = [".git/", "__pycache__/", ".ridgeline/", "*.pyc"]
MAX_CONTEXT_BYTES = 96 * 1024 * 1024


def _patterns(context: Path) -> list[str]:
    patterns = list(ALWAYS_IGNORED)
    ignore = context / IGNORE_FILE
    if ignore.is_file():
        for line in ignore.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line)
    return patterns


def _ignored(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    """gitignore-like: ``name`` matches at any depth, ``a/b`` from the top, ``dir/`` dirs."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pattern.lstrip("/"):
            if fnmatch.fnmatch(rel, pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatch(name, pattern):
            return True
    return False


def context_files(context: Path) -> list[Path]:
    """Files of ``context`` that the snapshot takes, honouring ``.ridgelineignore``."""
    patterns = _patterns(context)
    chosen: list[Path] = []
    stack = [context]
    while stack:
        folder = stack.pop()
        for entry in sorted(folder.iterdir()):
            rel = entry.relative_to(context).as_posix()
            if entry.is_symlink() and not entry.exists():
                continue
            if entry.is_dir():
                if not _ignored(rel, True, patterns):
                    stack.append(entry)
            elif not _ignored(rel, False, patterns):
                chosen.append(entry)
    return chosen


def take_snapshot(context: Path, target: Path, limit: int = MAX_CONTEXT_BYTES) -> int:
    """Copy ``context`` into ``target``; returns the bytes copied. Too large: ConfigError."""
    if not context.is_dir():
        raise ConfigError(f"context directory {context} does not exist")
    files = context_files(context)
    total = sum(f.stat().st_size for f in files)
    if total > limit:
        biggest = sorted(files, key=lambda f: f.stat().st_size, reverse=True)[:3]
        names = ", ".join(
            f"{f.relative_to(context)} ({f.stat().st_size >> 20} MiB)" for f in biggest
        )
        raise ConfigError(
            f"context directory {context} holds {total >> 20} MiB, over the {limit >> 20} MiB "
            f"limit; list large files or folders (largest: {names}) in {IGNORE_FILE}"
        )
    for file in files:
        dest = target / file.relative_to(context)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, dest)
    target.mkdir(parents=True, exist_ok=True)
    return total
