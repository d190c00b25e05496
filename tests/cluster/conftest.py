"""A single-node SLURM and a single-node Grid Engine for the cluster tests, set up by
``scripts/ensure-slurm.sh`` and ``scripts/ensure-sge.sh``.

The scripts are idempotent (a quick no-op once the system answers); a file lock keeps parallel
test workers from installing at the same time. Only a test run without root skips, loudly:
everywhere else a cluster that cannot be brought up fails the tests.
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


def ensure(script: str, system: str) -> None:
    """Run ``scripts/<script>`` once at a time; skip (loudly) only without root."""
    if os.geteuid() != 0:
        pytest.skip(
            f"SKIPPED {system.upper()} TESTS: they need root to install and start a single-node "
            f"{system} (scripts/{script}); run the suite as root, as .ci/run does"
        )
    with open(Path(f"/tmp/ridgeline-{script}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["bash", str(REPO / "scripts" / script)], capture_output=True, text=True, timeout=600
        )
    assert result.returncode == 0, (
        f"scripts/{script} could not bring up {system}:\n{result.stdout}\n{result.stderr}"
    )


@pytest.fixture(scope="session")
def slurm() -> None:
    ensure("ensure-slurm.sh", "SLURM")


@pytest.fixture(scope="session")
def sge() -> None:
    ensure("ensure-sge.sh", "Grid Engine")


@pytest.fixture(autouse=True)
def cancel_leftover_jobs(tmp_path: Path) -> Iterator[None]:
    """A test that fails midway may leave jobs running (trials wait to be released or
    cancelled); cancel the jobs that ran in its folder, so they do not hold the node's CPUs
    for the tests after it."""
    yield
    if os.geteuid() != 0:
        return
    if shutil.which("qstat") is not None:
        delete_leftover_sge_jobs(tmp_path)
    if shutil.which("squeue") is None:
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


def delete_leftover_sge_jobs(tmp_path: Path) -> None:
    listing = subprocess.run(["qstat"], capture_output=True, text=True, timeout=30).stdout
    ids = [line.split()[0] for line in listing.splitlines()[2:] if line.split()]
    leftover = []
    for job_id in ids:
        shown = subprocess.run(["qstat", "-j", job_id], capture_output=True, text=True, timeout=30)
        for line in shown.stdout.splitlines():
            if line.startswith("cwd:") and Path(line.split(None, 1)[1]).is_relative_to(tmp_path):
                leftover.append(job_id)
    if leftover:
        subprocess.run(["qdel", "-f", *leftover], capture_output=True, timeout=30)
