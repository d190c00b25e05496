"""Network namespaces as the nodes of a test cluster, made with iproute2's ``ip`` (root).

``_make_namespace`` joins one namespace to this one by a veth pair (10.233.X.1 here,
10.233.X.2 there); ``Nodes`` joins several to a bridge on this side (10.233.X.1 on the bridge,
10.233.X.2, .3, ... inside), so the nodes reach each other and this machine on one subnet.
X is free and picked under a file lock, so parallel test workers never clash; everything made
is removed afterwards (``_remove_namespace``, ``Nodes.remove``), what runs inside is killed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

LOCK = "/tmp/ridgeline-netns.lock"
NEEDS_ROOT = (
    "they need root and iproute2's ip to make network namespaces joined by veth pairs; run "
    "the suite as root, as .ci/run does"
)


def skip_unless_root(what: str) -> None:
    """Skip, loudly, where namespaces cannot be made."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip(f"SKIPPED {what}: {NEEDS_ROOT}")
    probe = _ip("netns", "list")
    if probe.returncode != 0:
        pytest.skip(f"SKIPPED {what}: `ip netns` does not work here: {probe.stderr.strip()}")


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def _free_subnet() -> int:
    """An X for which no interface here holds an address in 10.233.X.0/24."""
    used = _ip("-o", "addr", "show").stdout
    for x in range(1, 255):
        if f"10.233.{x}." not in used:
            return x
    raise AssertionError("no free 10.233.X.0/24 subnet for the test namespaces")


def _run_steps(steps: list[list[str]], undo: Any) -> None:
    for step in steps:
        result = _ip(*step)
        if result.returncode != 0:
            undo()
            raise AssertionError(f"ip {' '.join(step)}: {result.stderr}")


def _make_namespace() -> tuple[str, str, int]:
    """A namespace with a veth pair to this one; (namespace, host-side device, X)."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        x = _free_subnet()
        namespace, outside, inside = f"ridgeline-{x}-{os.getpid()}", f"rlv{x}h", f"rlv{x}n"
        steps = [
            ["netns", "add", namespace],
            ["link", "add", outside, "type", "veth", "peer", "name", inside],
            ["link", "set", inside, "netns", namespace],
            ["addr", "add", f"10.233.{x}.1/30", "dev", outside],
            ["link", "set", outside, "up"],
            ["-n", namespace, "addr", "add", f"10.233.{x}.2/30", "dev", inside],
            ["-n", namespace, "link", "set", inside, "up"],
            ["-n", namespace, "link", "set", "lo", "up"],
        ]
        _run_steps(steps, lambda: _remove_namespace(namespace, outside))
    return namespace, outside, x


def _remove_namespace(namespace: str, outside: str) -> None:
    """End what still runs inside, then remove the namespace and the veth pair."""
    for pid in _ip("netns", "pids", namespace).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _ip("netns", "del", namespace)  # takes the inside end, and so the pair, with it
    _ip("link", "del", outside)  # gone already unless the pair was never moved


def _wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Nodes:
    """Namespaces on one bridge: ``host`` is this machine's address on it, ``addresses[i]``
    namespace ``names[i]``'s."""

    bridge: str
    host: str
    names: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, count: int) -> Nodes:
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            x = _free_subnet()
            nodes = cls(bridge=f"rlbr{x}", host=f"10.233.{x}.1")
            _run_steps(
                [
                    ["link", "add", nodes.bridge, "type", "bridge"],
                    ["addr", "add", f"{nodes.host}/24", "dev", nodes.bridge],
                    ["link", "set", nodes.bridge, "up"],
                ],
                nodes.remove,
            )
            for k in range(count):
                name = f"ridgeline-{x}n{k}-{os.getpid()}"
                outside, inside, address = f"rl{x}n{k}h", f"rl{x}n{k}i", f"10.233.{x}.{k + 2}"
                nodes.names.append(name)
                nodes.outside.append(outside)
                nodes.addresses.append(address)
                _run_steps(
                    [
                        ["netns", "add", name],
                        ["link", "add", outside, "type", "veth", "peer", "name", inside],
                        ["link", "set", inside, "netns", name],
                        ["link", "set", outside, "master", nodes.bridge],
                        ["link", "set", outside, "up"],
                        ["-n", name, "addr", "add", f"{address}/24", "dev", inside],
                        ["-n", name, "link", "set", inside, "up"],
                        ["-n", name, "link", "set", "lo", "up"],
                    ],
                    nodes.remove,
                )
        return nodes

    def inode(self, k: int) -> int:
        """The network namespace's inode: what ``/proc/PID/ns/net`` of a process inside names."""
        return os.stat(f"/run/netns/{self.names[k]}").st_ino

    def remove(self) -> None:
        for name, outside in zip(self.names, self.outside, strict=False):
            _remove_namespace(name, outside)
        _ip("link", "del", self.bridge)
