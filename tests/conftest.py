"""Shared fixtures: every test runs in its own temporary directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh current directory; trial environment variables from outside are removed."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("RIDGELINE_", "SHERPA_")):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def python() -> str:
    return sys.executable
