"""Grid Engine execution hosts for tests on one machine: one ``sge_execd`` per network
namespace (``tests/cluster/netns.py``), each under a host name of its own (a UTS namespace)
that resolves, on this machine and inside the namespaces, to its address on the bridge: a
private hosts file bind-mounted inside (a mount namespace of the execd's own), and a line per
host in /etc/hosts here. Those lines stay afterwards, and host names follow from addresses:
sge_qmaster caches what names and addresses resolve to, and refuses for minutes a name that
stopped resolving or an address that came back under another name. The hosts serve a queue
and a parallel environment made for them (``allocation_rule 1``, ``control_slaves TRUE``)
and nothing else, so no other test's jobs land there. Needs root, ``unshare`` and the Grid
Engine of ``scripts/ensure-sge.sh``."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.cluster.netns import Nodes, _wait_for

__all__ = ["SgeNodes", "skip_unless_sge_nodes"]

SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}
HOSTS = Path("/etc/hosts")
HOSTS_LOCK = "/tmp/ridgeline-etc-hosts.lock"
SPOOL = Path("/var/spool/gridengine/execd")
EXECD = "/usr/sbin/sge_execd"
MARKER = "# a Grid Engine host of ridgeline's tests (tests/cluster/sgenodes.py)"


def _qconf(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["qconf", *args], capture_output=True, text=True, timeout=30, env={**os.environ, **SGE_ENV}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"qconf {' '.join(args)}: {result.stdout}{result.stderr}")
    return result


def skip_unless_sge_nodes() -> None:
    for tool in ("unshare", "qconf", EXECD):
        if shutil.which(tool) is None:
            pytest.skip(f"SKIPPED GRID ENGINE MULTI-NODE TESTS: {tool} is not installed")


def _add_hosts(pairs: list[tuple[str, str]]) -> None:
    """Make each (address, name) a line of /etc/hosts, dropping other lines for either; in
    place (the file may be a mount point) and under a lock."""
    taken = {part for pair in pairs for part in pair}
    with open(HOSTS_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lines = HOSTS.read_text().splitlines()
        kept = [ln for ln in lines if not taken & set(ln.split("#")[0].split())]
        HOSTS.write_text("\n".join([*kept, *(f"{a} {n} {MARKER}" for a, n in pairs)]) + "\n")


class SgeNodes:
    """Two (or ``count``) Grid Engine hosts with one slot each in the queue ``queue`` and the
    parallel environment ``pe``; ``remove`` ends and forgets them."""

    def __init__(self, folder: Path, count: int = 2) -> None:
        self.nodes = Nodes.make(count)
        x = self.nodes.bridge.removeprefix("rlbr")
        tag = f"{x}x{os.getpid()}"
        # one name per address: sge_qmaster caches what an address resolves to
        self.names = [f"rlsge{x}n{k}" for k in range(count)]
        self.queue, self.pe = f"rl{tag}.q", f"rlpe{tag}"
        self._made: list[tuple[str, ...]] = []  # qconf deletions, done in reverse by remove
        try:
            self._start(folder)
        except BaseException:
            self.remove()
            raise

    def _start(self, folder: Path) -> None:
        master = Path(SGE_ENV["SGE_ROOT"], SGE_ENV["SGE_CELL"], "common", "act_qmaster")
        qmaster = master.read_text().strip()
        pairs = list(zip(self.nodes.addresses, self.names, strict=True))
        _add_hosts(pairs)
        inside = folder / "hosts"
        inside.write_text(
            "\n".join(
                ["127.0.0.1 localhost", f"{self.nodes.host} {qmaster}"]
                + [f"{address} {name}" for address, name in pairs]
            )
            + "\n"
        )
        for name in self.names:
            for stale in ("-de", "-dh"):  # left by a run that could not clean up
                _qconf(stale, name, check=False)
            _qconf("-ah", name)
            self._made.append(("-dh", name))
            host = folder / f"{name}.host"
            host.write_text(
                f"hostname {name}\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\n"
                "xuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\n"
                "report_variables NONE\n"
            )
            # sge_qmaster may go on calling a name it just failed to resolve unknown for a while
            _wait_for(lambda h=host: _qconf("-Ae", str(h), check=False).returncode == 0,
                      f"sge_qmaster to resolve {name}", 120)  # fmt: skip
            self._made.append(("-de", name))
        pe = folder / "pe"
        pe.write_text(
            f"pe_name {self.pe}\nslots 999\nuser_lists NONE\nxuser_lists NONE\n"
            "start_proc_args NONE\nstop_proc_args NONE\nallocation_rule 1\n"
            "control_slaves TRUE\njob_is_first_task FALSE\nurgency_slots min\n"
            "accounting_summary FALSE\nqsort_args NONE\n"
        )
        _qconf("-Ap", str(pe))
        self._made.append(("-dp", self.pe))
        queue = folder / "queue"
        listing = _qconf("-sq", "all.q").stdout.splitlines()
        settings = {"qname": self.queue, "hostlist": " ".join(self.names), "pe_list": self.pe}
        settings["slots"] = "1"
        queue.write_text(
            "\n".join(
                f"{ln.split()[0]} {settings[ln.split()[0]]}"
                if ln.split() and ln.split()[0] in settings
                else ln
                for ln in listing
            )
            + "\n"
        )
        _qconf("-Aq", str(queue))
        self._made.append(("-dq", self.queue))
        for name, namespace in zip(self.names, self.nodes.names, strict=True):
            # sge_execd goes to the background itself, staying in these namespaces
            start = f"mount --bind {inside} /etc/hosts && hostname {name} && exec {EXECD}"
            subprocess.run(
                ["ip", "netns", "exec", namespace, "unshare", "--mount", "--uts", "sh", "-c",
                 start],
                env={**os.environ, **SGE_ENV}, check=True, timeout=60, capture_output=True,
            )  # fmt: skip
        _wait_for(self._ready, "the Grid Engine execution hosts to serve their queue", 90)

    def _ready(self) -> bool:
        shown = subprocess.run(
            ["qstat", "-f", "-q", self.queue], capture_output=True, text=True, timeout=30
        ).stdout
        ready = {ln.split()[0] for ln in shown.splitlines() if len(ln.split()) == 5}
        return all(f"{self.queue}@{name}" in ready for name in self.names)

    def remove(self) -> None:
        listing = subprocess.run(
            ["qstat", "-u", "*", "-q", self.queue], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()[2:]
        jobs = [ln.split()[0] for ln in listing if ln.split()]
        if jobs:
            subprocess.run(["qdel", "-f", *jobs], capture_output=True, timeout=30)
        for name in self.names:
            _qconf("-ke", name, check=False)
        time.sleep(0.5)
        self.nodes.remove()  # whatever still runs in the namespaces is killed
        for args in reversed(self._made):
            _qconf(*args, check=False)
        for name in self.names:
            shutil.rmtree(SPOOL / name, ignore_errors=True)
