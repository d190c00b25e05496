"""The crash hook: dies by SIGKILL exactly at the named point and visit, and nowhere else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

PROGRAM = """
import sys
from ridgeline.faults import crash_point
for i in range(1, 4):
    crash_point("elsewhere")
    print(i, flush=True)
    crash_point("here")
print("end", flush=True)
"""


def run(spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RIDGELINE_CRASH_AT"}
    if spec is not None:
        env["RIDGELINE_CRASH_AT"] = spec
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("spec", "printed"), [("here", "1\n"), ("here:1", "1\n"), ("here:3", "1\n2\n3\n")]
)
def test_dies_at_the_named_visit_without_cleanup(spec: str, printed: str) -> None:
    result = run(spec)
    assert result.returncode == -signal.SIGKILL
    assert result.stdout == printed


@pytest.mark.parametrize("spec", [None, "", "nowhere", "here:4"])
def test_runs_through_when_no_point_matches(spec: str | None) -> None:
    result = run(spec)
    assert result.returncode == 0 and result.stdout.endswith("end\n")
