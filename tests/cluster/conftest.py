"""A single-node SLURM for the cluster tests, set up by ``scripts/ensure-slurm.sh``.

The script is idempotent (a quick no-op once ``sinfo`` answers); a file lock keeps parallel
test workers from installing at the same time. Only a test run without root skips, loudly:
everywhere else a SLURM that cannot be brought up fails the tests.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = Path("/tmp/ridgeline-ensure-slurm.lock")


@pytest.fixture(scope="session")
def slurm() -> None:
    if os.geteuid() != 0:
        pytest.skip(
            "SKIPPED SLURM TESTS: they need root to install and start a single-node SLURM "
            "(scripts/ensure-slurm.sh); run the suite as root, as .ci/run does"
        )
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["bash", str(REPO / "scripts" / "ensure-slurm.sh")],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, (
        f"scripts/ensure-slurm.sh could not bring up SLURM:\n{result.stdout}\n{result.stderr}"
    )


@pytest.fixture(autouse=True)
def cancel_leftover_jobs(tmp_path: Path) -> Iterator[None]:
    """A test that fails midway may leave jobs running (trials wait to be released or
    cancelled); cancel the jobs that ran in its folder, so they do not hold the node's CPUs
    for the tests after it."""
    yield
    if os.geteuid() != 0 or shutil.which("squeue") is None:
        return
    listing = subprocess.run(
        ["squeue", "--noheader", "--format=%i %Z"], capture_output=True, text=True, timeout=30
    ).stdout
    leftover = [
        job_id
        for job_id, _, folder in (line.partition(" ") for line in listing.splitlines())
        if Path(folder).is_relative_to(tmp_path)
    ]
    if leftover:
        subprocess.run(["scancel", *leftover], capture_output=True, timeout=30)
