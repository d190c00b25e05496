"""What runs on a dask worker for ``DaskScheduler``: one task holds one trial process.

The task starts the trial under the exit-status wrapper (``schedulers/exitstatus.py``) in its
own process group, output into the attempt's file on the shared filesystem, waits for it and
returns its exit code. Ending a trial cannot go through dask itself (cancelling a future
leaves a running task's subprocess alone), so each worker process keeps a table of the trials
it runs, by task key, and ``signal_trial`` (sent to every worker with ``Client.run``) signals
the one it finds. A signal that arrives before its task has started is remembered, and the
task then never starts the trial.

A worker that dies mid-trial makes dask run the task again elsewhere. The trial must not run
twice under one attempt, so the first run claims ``<name>.dask`` (host, pid, start time of the
wrapper) with an exclusive create; a second run finds the claim, ends the first run's trial
if it still runs on this host (the dead worker's orphan), and returns SIGKILL's code: a
failure, never a success.

A trial across nodes is one such task per node (``run_trial`` with ``node``), each pinned to
its own worker (``schedulers/daskgang.py``). Before any node starts the trial, the node tasks
meet: each announces itself in a dask ``Variable`` named after the attempt, the chief's
carrying the two rendezvous ports it picked free on its own machine (torchrun's, as
``C10D_PORT``, and the rank channel's, as ``RIDGELINE_CHIEF_PORT``); every node waits until all
have announced, so no node starts the trial before the whole gang runs, and concurrent trials
never share a port (a fresh pair per attempt, from the chief's own free ports).

This module imports only the standard library at import time; dask is imported by the few
calls that need it, on the worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ridgeline.launch.torch_distributed import free_ports
from ridgeline.schedulers import exitstatus
from ridgeline.schedulers.local import process_start_time
from ridgeline.trial import env as trial_env

__all__ = ["run_trial", "signal_trial", "signal_trials"]

GANG_START_TIMEOUT = 600.0  # seconds a node waits for the rest of its gang to start

_lock = threading.Lock()
_running: dict[str, subprocess.Popen[bytes]] = {}  # task key -> the wrapper process
_doomed: dict[str, int] = {}  # task key -> signal that came before the task started
_gpus_in_use: set[str] = set()


def run_trial(
    key: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    output: str,
    exit_file: str,
    claim: str,
    gpus: int,
    node: Mapping[str, Any] | None = None,
) -> int:
    """Run one trial attempt (or, with ``node``, one node's share of it) on this worker; its
    exit code (negative: the signal). ``node``: ``rank``, ``nodes``, ``gang`` (the attempt's
    key) and ``timeout`` (seconds to wait for the other nodes)."""
    try:
        fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _end_orphan(claim)
        with open(output, "a") as out:
            out.write(
                "ridgeline: the dask worker running this trial died mid-trial; dask started "
                "its task again, which ends the trial (killed) rather than run it twice\n"
            )
        return -int(signal.SIGKILL)
    full_env = dict(env)
    try:
        granted = _take_gpus(gpus) if gpus else []
    except BaseException:
        os.close(fd)
        raise
    if gpus:
        ids = ",".join(granted)
        full_env["CUDA_VISIBLE_DEVICES"] = ids
        full_env[trial_env.SLOT_IDS] = ids
        full_env[trial_env.RESOURCE] = ids
        full_env[trial_env.SHERPA_RESOURCE] = ids
    try:
        if node is not None:
            failed = _join_gang(key, node, full_env, output)
            if failed is not None:
                os.close(fd)
                return failed
        with _lock:
            if key in _doomed:
                os.close(fd)
                return -_doomed.pop(key)
            try:
                process = exitstatus.start(argv, exit_file, full_env, output, cwd)
            except OSError as exc:
                os.close(fd)
                with open(output, "a") as out:
                    out.write(
                        f"ridgeline: cannot start {argv[0]!r} on {socket.gethostname()}: {exc}\n"
                    )
                return 127
            _running[key] = process
        with os.fdopen(fd, "w") as handle:
            started = process_start_time(process.pid)
            handle.write(f"{socket.gethostname()} {process.pid} {started}\n")
        try:
            code = exitstatus.decode(process.wait())
        finally:
            with _lock:
                _running.pop(key, None)
        recorded = exitstatus.read_status(exit_file)
        return recorded if recorded is not None else code
    finally:
        if granted:
            with _lock:
                _gpus_in_use.difference_update(granted)


def signal_trial(key: str, sig: int) -> bool:
    """Signal the trial process group of task ``key`` if this worker runs it (True), else
    remember the signal so that the task, should it start here, never starts the trial."""
    with _lock:
        process = _running.get(key)
        if process is None:
            _doomed[key] = sig
            return False
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    return True


def signal_trials(keys: Sequence[str], sig: int) -> list[str]:
    """``signal_trial`` for each of ``keys`` (the nodes of one trial); the keys found here."""
    return [key for key in keys if signal_trial(key, sig)]


def forget(key: str) -> None:
    """Drop a remembered signal for a task that ended (sent to every worker)."""
    with _lock:
        _doomed.pop(key, None)


def _gang_variable(gang: str, rank: int) -> str:
    return f"{gang}-node{rank}-up"


def _join_gang(
    key: str, node: Mapping[str, Any], full_env: dict[str, str], output: str
) -> int | None:
    """Announce this node and wait for every other node of the gang (see the module's
    docstring); sets the rendezvous ports in ``full_env``. None when all are there, else
    the exit code this node ends with (a signal that came meanwhile, or a timeout)."""
    from distributed import Variable  # lazy: optional extra (distributed)

    rank, nodes, gang = int(node["rank"]), int(node["nodes"]), str(node["gang"])
    timeout = float(node.get("timeout") or GANG_START_TIMEOUT)
    mine = {"host": socket.gethostname()}
    if rank == 0:
        c10d, channel = free_ports(2)
        mine.update(c10d=str(c10d), channel=str(channel))
    Variable(_gang_variable(gang, rank)).set(mine)
    deadline = time.monotonic() + timeout
    seen: dict[int, dict[str, str]] = {rank: mine}
    while len(seen) < nodes:
        with _lock:
            if key in _doomed:
                return -_doomed.pop(key)
        for other in range(nodes):
            if other in seen:
                continue
            try:
                seen[other] = Variable(_gang_variable(gang, other)).get(timeout=0.2)
            except Exception:  # noqa: BLE001 - not announced yet (dask raises TimeoutError)
                break
        if len(seen) < nodes and time.monotonic() > deadline:
            missing = sorted(set(range(nodes)) - set(seen))
            with open(output, "a") as out:
                out.write(
                    f"ridgeline: node {rank} of {nodes}: nodes {missing} of this trial did not "
                    f"start within {timeout:.0f} s; this node gives up without starting it\n"
                )
            return 1
    full_env["C10D_PORT"] = seen[0]["c10d"]
    full_env[trial_env.CHIEF_PORT] = seen[0]["channel"]
    return None


def forget_gang(gang: str, nodes: int, client: Any = None) -> None:
    """Delete the announcements of a gang that ended (called from the coordinator's side)."""
    from distributed import Variable  # lazy: optional extra (distributed)

    for rank in range(nodes):
        try:
            Variable(_gang_variable(gang, rank), client=client).delete()
        except Exception:  # noqa: BLE001 - never announced, or gone already
            pass


def _end_orphan(claim: str) -> None:
    """SIGKILL the process group a previous run of this task started, if it runs here."""
    try:
        host, pid, started = Path(claim).read_text().split()
    except (OSError, ValueError):
        return
    if host != socket.gethostname() or not pid.isdigit():
        return
    if str(process_start_time(int(pid))) != started:
        return  # gone, or the pid was reused
    try:
        os.killpg(int(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _take_gpus(count: int) -> list[str]:
    """``count`` GPU ids of this worker that no other trial here holds. dask's ``GPU``
    resource bounds how many are taken at once; which ones is this table's job. The ids are
    the worker's ``CUDA_VISIBLE_DEVICES`` entries, else 0..N-1 for its ``GPU`` resource."""
    from distributed import get_worker  # lazy: optional extra (distributed)

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [g.strip() for g in visible.split(",") if g.strip()]
    else:
        total = int(get_worker().state.total_resources.get("GPU", 0))
        ids = [str(i) for i in range(total)]
    with _lock:
        free = [g for g in ids if g not in _gpus_in_use][:count]
        _gpus_in_use.update(free)
    return free
