"""The context snapshot: a copy of the experiment's folder taken at creation, so edits made
while it runs do not leak into its trials."""

from __future__ import annotations

import fnmatch
import warnings
from pathlib import Path

from ridgeline.errors import ConfigError
from ridgeline.filetree import Tree, copy_files, walk

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


def context_tree(context: Path) -> Tree:
    """What the snapshot takes from ``context``, honouring ``.ridgelineignore``. Symlinks out
    of the context, to folders, dangling or looping are left out (see ridgeline.filetree)."""
    patterns = _patterns(context)
    return walk(context, lambda rel, is_dir: not _ignored(rel, is_dir, patterns))


def context_files(context: Path) -> list[Path]:
    """Files of ``context`` that the snapshot takes."""
    return [path for _, path in context_tree(context).files]


def take_snapshot(context: Path, target: Path, limit: int = MAX_CONTEXT_BYTES) -> int:
    """Copy ``context`` into ``target``; returns the bytes copied. Too large: ConfigError.
    Symlinks that lead out of the context (or to folders) are not followed: a warning names
    them, and the trials do not see them."""
    if not context.is_dir():
        raise ConfigError(f"context directory {context} does not exist")
    tree = context_tree(context)
    sizes = {rel: path.stat().st_size for rel, path in tree.files}
    total = sum(sizes.values())
    if total > limit:
        biggest = sorted(sizes, key=lambda rel: sizes[rel], reverse=True)[:3]
        names = ", ".join(f"{rel} ({sizes[rel] >> 20} MiB)" for rel in biggest)
        raise ConfigError(
            f"context directory {context} holds {total >> 20} MiB, over the {limit >> 20} MiB "
            f"limit; list large files or folders (largest: {names}) in {IGNORE_FILE}"
        )
    message = tree.warning()
    if message is not None:
        warnings.warn(f"context snapshot: {message}", UserWarning, stacklevel=2)
    copy_files(tree, target)
    return total
