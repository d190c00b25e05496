"""Where a local job's output and exit status live, one pair of files per attempt.

A trial that is restarted runs again under the same job name. Its current attempt writes
``jobs/<name>.out`` (and ``jobs/<name>.exit`` once it ends); before a new attempt starts, the
previous attempt's files are kept as ``jobs/<name>.attempt<k>.out`` / ``.exit`` (k = 1, 2, ...
in the order the attempts ran). So ``<name>.out`` only ever shows the latest attempt, and a
failure message or ``ridgeline trial logs`` never repeats an earlier attempt's traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["attempt_outputs", "exit_path", "output_path", "read_digits", "retire_attempt"]


def output_path(jobs_dir: str | os.PathLike[str], name: str) -> Path:
    """The current attempt's output (stdout and stderr together)."""
    return Path(jobs_dir) / f"{name}.out"


def exit_path(jobs_dir: str | os.PathLike[str], name: str) -> Path:
    """The current attempt's exit status file, written when its process ends."""
    return Path(jobs_dir) / f"{name}.exit"


def read_digits(path: str | os.PathLike[str] | None) -> str | None:
    """The number a job's small file holds (its job id, its exit status), as written; None
    when there is no path, the file cannot be read (not yet written), or it holds anything
    else."""
    if not path:
        return None
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return text if text.isdigit() else None


def attempt_outputs(jobs_dir: str | os.PathLike[str], name: str) -> list[Path]:
    """Every attempt's output, oldest first; the last one is the current attempt's."""
    pattern = re.compile(rf"^{re.escape(name)}\.attempt(\d+)\.out$")
    older: list[tuple[int, Path]] = []
    folder = Path(jobs_dir)
    if folder.is_dir():
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match:
                older.append((int(match.group(1)), entry))
    paths = [path for _, path in sorted(older)]
    current = output_path(folder, name)
    if current.exists():
        paths.append(current)
    return paths


def retire_attempt(jobs_dir: str | os.PathLike[str], name: str) -> int | None:
    """Keep the previous attempt's files under ``<name>.attempt<k>.*`` before a new attempt
    starts; returns k, or None when there was no previous attempt."""
    out, status = output_path(jobs_dir, name), exit_path(jobs_dir, name)
    if not out.exists() and not status.exists():
        return None
    k = len(attempt_outputs(jobs_dir, name)) - (1 if out.exists() else 0) + 1
    while (Path(jobs_dir) / f"{name}.attempt{k}.out").exists():
        k += 1
    for path, suffix in ((out, "out"), (status, "exit")):
        if path.exists():
            os.replace(path, Path(jobs_dir) / f"{name}.attempt{k}.{suffix}")
    return k
