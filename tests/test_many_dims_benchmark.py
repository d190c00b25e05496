"""benchmarks/many_dims.py: the GP's lengthscale prior in many dimensions, beside the prior
centred at 0.5 everywhere, on functions outside the recorded benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "many_dims.py"


def tables(out: str) -> dict[int, dict[str, tuple[str, str]]]:
    """Per dimension: function -> (gp cell, gp-flat-prior cell)."""
    found: dict[int, dict[str, tuple[str, str]]] = {}
    for block in out.strip().split("\n\n**"):
        head = re.search(r"(\d+) dimensions", block)
        assert head, block
        d = int(head.group(1))
        rows = re.findall(r"^\| ([a-z0-9-]+) \| (.+?) \| (.+?) \|$", block, re.M)
        found[d] = {name: (gp, flat) for name, gp, flat in rows if name != "function"}
    return found


def test_the_prior_changes_nothing_up_to_six_dimensions_and_something_beyond(
    tmp_path: Path,
) -> None:
    args = ["--dims", "6", "8", "--seeds", "1", "--budget", "12", "--jobs", "1"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=tmp_path,
    )
    found = tables(done.stdout)
    assert set(found) == {6, 8}
    assert len(found[6]) == len(found[8]) == 7  # seven functions, no mean row
    # the same runs where the rule leaves the prior alone ...
    assert all(gp == flat for gp, flat in found[6].values())
    # ... and other runs where it shrinks it
    assert any(gp != flat for gp, flat in found[8].values())


def test_too_few_dimensions_are_refused_with_the_reason() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dims", "4"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "at least 6" in done.stderr
