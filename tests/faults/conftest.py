"""Fixtures for fault tests: a throw-away PostgreSQL server that a test may stop and start.

The server is a fresh cluster (``initdb`` with the binaries under
``/usr/lib/postgresql/*/bin``) listening only on 127.0.0.1 on a free port, with its unix
sockets in its own folder. Under root it runs as the ``postgres`` OS user (PostgreSQL refuses
root), so its folder is made in the system temp dir, which that user can reach. Without the
binaries the tests that need it are skipped, except under ``CI``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL server of one test; ``stop()`` and ``start()`` make an outage."""

    bindir: Path
    folder: Path
    port: int
    as_postgres: bool

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = (self.folder / "server.log").read_text() if self.folder.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}\n{log}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.folder / "data"), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off "
            f"-c unix_socket_directories={self.folder / 'sockets'}"
        )
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-o", options,
                  "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop")


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL fault tests: install the server binaries")
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    folder = Path(tempfile.mkdtemp(prefix="ridgeline-pg-"))
    as_postgres = os.geteuid() == 0
    (folder / "sockets").mkdir()
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(folder / "sockets", "postgres", "postgres")
    server = ThrowawayPostgres(bindir, folder, _free_port(), as_postgres)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # already stopped
        shutil.rmtree(folder, ignore_errors=True)
