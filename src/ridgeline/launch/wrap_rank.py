"""``python3 -m ridgeline.launch.wrap_rank RANK -- COMMAND...``: run COMMAND with each line of
its output prefixed by ``[rank=RANK] ``, so the interleaved log of a distributed trial says
which process wrote what. RANK is a number, or the name of an environment variable that holds
one (``RANK``, as torchrun sets it). The exit status is COMMAND's.

torchrun starts each worker in a session of its own, so a SIGKILL of torchrun (a force-killed
trial) would leave the workers running. On Linux this wrapper, and COMMAND under it, are
killed when their parent dies (``PR_SET_PDEATHSIG``), so no rank outlives its trial."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from typing import BinaryIO

USAGE = "usage: python3 -m ridgeline.launch.wrap_rank RANK -- COMMAND..."


def rank_of(word: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """``word`` as a rank: digits, or an environment variable's name whose value is digits."""
    value = word if word.isdigit() else environ.get(word, "")
    if not value.isdigit():
        raise ValueError(f"rank {word!r} is neither a number nor a variable that holds one")
    return int(value)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent ends (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _copy_lines(source: BinaryIO, sink: BinaryIO, prefix: bytes) -> None:
    for line in iter(source.readline, b""):
        sink.write(prefix + line)
        sink.flush()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    try:
        rank = rank_of(argv[0])
    except ValueError as exc:
        print(f"wrap_rank: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    prefix = f"[rank={rank}] ".encode()
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the parent ended before the request took effect
        return 1
    try:
        process = subprocess.Popen(
            argv[2:],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, in the child
        )
    except OSError as exc:
        print(f"{prefix.decode()}cannot run {argv[2]!r}: {exc}", file=sys.stderr)
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda number, _frame: process.send_signal(number))
    assert process.stdout is not None and process.stderr is not None
    copies = [
        threading.Thread(target=_copy_lines, args=(process.stdout, sys.stdout.buffer, prefix)),
        threading.Thread(target=_copy_lines, args=(process.stderr, sys.stderr.buffer, prefix)),
    ]
    for copy in copies:
        copy.start()
    code = process.wait()
    for copy in copies:
        copy.join()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
