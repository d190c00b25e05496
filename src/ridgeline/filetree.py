"""Listing and copying a folder without ever leaving it. Standard library only.

Used for context snapshots, ``ridgeline checkpoint download`` and checkpoint uploads, whose
folders may hold links their owner did not mean to share. The rule, everywhere:

- regular files are taken; directories are entered, each real directory once (no loops);
- a symlink is never followed as a directory; a symlink to a regular file inside the tree is
  taken as that file's content; every other symlink (to a folder, out of the tree, dangling,
  looping) and every special file (FIFO, socket, device) is skipped and reported, so the
  caller can warn about it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ridgeline.paths import confined

log = logging.getLogger("ridgeline")

Keep = Callable[[str, bool], bool]  # (relative posix name, is a directory) -> take it?


@dataclass
class Tree:
    """What a walk found: files to take (relative name, path to read) and what was skipped."""

    root: Path
    files: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative name, why)

    def warning(self) -> str | None:
        """One line naming what was left out, or None when nothing was."""
        if not self.skipped:
            return None
        shown = "; ".join(f"{name} ({why})" for name, why in self.skipped[:5])
        more = f"; and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
        return f"left out of the copy of {self.root}: {shown}{more}"


def walk(root: str | os.PathLike[str], keep: Keep | None = None) -> Tree:
    """The files of ``root`` by the rule above; ``keep`` prunes names (ignore files)."""
    base = Path(os.path.realpath(root))
    tree = Tree(base)
    seen: set[tuple[int, int]] = set()
    stack = [base]
    while stack:
        folder = stack.pop()
        info = folder.stat()
        if (info.st_dev, info.st_ino) in seen:
            continue  # a bind mount or hard-linked folder seen before
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(folder) as entries:
            ordered = sorted(entries, key=lambda e: e.name)
        for entry in ordered:
            path = Path(entry.path)
            rel = path.relative_to(base).as_posix()
            if entry.is_symlink():
                if keep is not None and not keep(rel, False):
                    continue
                why = _link_problem(path, base)
                if why is None:
                    tree.files.append((rel, path))
                else:
                    tree.skipped.append((rel, why))
            elif entry.is_dir(follow_symlinks=False):
                if keep is None or keep(rel, True):
                    stack.append(path)
            elif entry.is_file(follow_symlinks=False):
                if keep is None or keep(rel, False):
                    tree.files.append((rel, path))
            elif keep is None or keep(rel, False):
                tree.skipped.append((rel, "not a regular file"))
    tree.files.sort()
    return tree


def _link_problem(link: Path, base: Path) -> str | None:
    """Why the symlink ``link`` is not taken (None: it names a regular file inside ``base``)."""
    target = Path(os.path.realpath(link))
    if not target.is_relative_to(base):
        return f"symlink to {os.readlink(link)} outside the folder"
    try:
        mode = os.stat(link).st_mode
    except OSError as exc:  # dangling, or a loop (ELOOP)
        return f"symlink that cannot be followed: {exc.strerror}"
    if stat.S_ISDIR(mode):
        return "symlink to a folder (not followed)"
    if not stat.S_ISREG(mode):
        return "symlink to a special file"
    return None


def copy_files(tree: Tree, target: str | os.PathLike[str]) -> int:
    """Copy ``tree``'s files into ``target`` (created); returns the bytes copied."""
    dest = Path(target)
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for rel, path in tree.files:
        out = confined(dest, rel, what="copy target", resolve_last=False)  # no link out of it
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_symlink():
            out.unlink()  # never write through a link already in the target
        shutil.copy2(path, out)
        total += out.stat().st_size
    return total


def remove_folder(root: str | os.PathLike[str], name: str) -> bool:
    """Remove the folder ``root/name`` without acting through a link: a symlink there is
    unlinked (its target survives), anything but a real folder is left alone (with a
    warning). ``name`` must stay inside ``root`` (UnsafePathError). True when nothing is left."""
    path = confined(root, name, what="folder", resolve_last=False)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return True
    if stat.S_ISLNK(mode):
        log.warning("%s is a symlink: only the link is removed, not %s", path, os.readlink(path))
        path.unlink()
        return True
    if not stat.S_ISDIR(mode):
        log.warning("%s is not a folder: left in place", path)
        return False
    failed: list[str] = []

    def note(function: object, where: str, exc: object) -> None:
        failed.append(where)

    # fd-based on Linux: never follows a link inside
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=note)
    else:
        shutil.rmtree(path, onerror=note)
    if failed:
        log.warning("%s removed in part; could not remove %s", path, ", ".join(failed[:3]))
    return not failed


__all__ = ["Tree", "copy_files", "remove_folder", "walk"]
