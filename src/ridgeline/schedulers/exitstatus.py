"""A trial's exit status, kept on disk so that a coordinator started later still knows it.

Only a process's parent learns its exit status. A coordinator that was killed and restarted
re-attaches to trials that kept running, but it is not their parent; without a record it could
not tell a crash from a success. So each trial runs under a tiny POSIX shell wrapper (the
shell starts in about a millisecond; a second Python interpreter would cost tens) that waits
for the command and writes its status atomically to a file next to the job's output.

Signals: the wrapper and the trial share one process group, and the scheduler signals the
group (``kill -- -PID``), so the trial receives each signal exactly once. The wrapper itself
ignores SIGHUP, SIGINT and SIGTERM (through a no-op trap, which the command does not inherit)
so that it lives to record how the trial ended. SIGKILL of the group also ends the wrapper;
the scheduler that sent it knows the answer without the file.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from ridgeline.schedulers import jobfiles

__all__ = ["decode", "read_status", "start", "wrap"]

SHELL = "/bin/sh"
# $0 is the status file; "$@" the command. `s` is the command's status as the shell reports
# it: the exit code, or 128 + N when signal N ended it. The status is one write(2) of a few
# bytes, which readers see whole or (a wrapper killed between open and write) as an empty
# file, read as "not recorded": as good as a rename, without a second process (`mv`) per trial.
SCRIPT = r"""trap : HUP INT TERM
"$@"
s=$?
printf "%d\n" "$s" >"$0"
exit "$s"
"""


def wrap(argv: Sequence[str], status_file: str | os.PathLike[str]) -> list[str]:
    """``argv`` run under the wrapper that records its exit status in ``status_file``."""
    return [SHELL, "-c", SCRIPT, str(status_file), *argv]


def decode(status: int) -> int:
    """The shell's status as ``Popen.returncode`` reads: negative N for signal N.

    An exit code above 128 is indistinguishable from a signal to a shell; it reads as one."""
    return -(status - 128) if 128 < status < 128 + 65 else status


def read_status(path: str | os.PathLike[str] | None) -> int | None:
    """The recorded exit status (negative: the signal), or None when none was recorded."""
    text = jobfiles.read_digits(path)
    return None if text is None else decode(int(text))


def start(
    argv: Sequence[str],
    status_file: str | os.PathLike[str],
    env: Mapping[str, str],
    output: str | os.PathLike[str],
    cwd: str | None,
    new_session: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` under the wrapper, in a session (so a process group) of its own unless
    ``new_session`` is False, with stdin closed and stdout and stderr appended to ``output``.
    OSError when it cannot start."""
    with open(output, "ab") as out:
        return subprocess.Popen(
            wrap(argv, status_file),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
            cwd=cwd,
        )
