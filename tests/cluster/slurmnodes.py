"""SLURM nodes for tests and benchmarks on one machine: slurmds that register themselves with
this machine's slurmctld as dynamic nodes (``slurmd -Z``) from inside network namespaces
(``tests/cluster/netns.py``), with the feature ``netns``, so they join only the partition
``nodes`` that ``scripts/ensure-slurm.sh`` defines. Needs root, ``nsenter`` and that SLURM."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.cluster.netns import Nodes, _wait_for

__all__ = ["SlurmNodes", "skip_unless_dynamic_nodes"]


def _scontrol(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30)


def skip_unless_dynamic_nodes() -> None:
    if shutil.which("slurmd") is None or shutil.which("nsenter") is None:
        pytest.skip("SKIPPED SLURM MULTI-NODE TESTS: slurmd or nsenter is not installed")
    config = _scontrol("show", "config")
    count = re.search(r"^MaxNodeCount\s*=\s*(\d+)", config.stdout, re.MULTILINE)
    partition = _scontrol("show", "partition", "nodes")
    if config.returncode != 0 or not count or int(count.group(1)) < 2 or partition.returncode:
        pytest.skip(
            "SKIPPED SLURM MULTI-NODE TESTS: the running SLURM has no room for dynamic nodes "
            "(MaxNodeCount and the partition 'nodes' of scripts/ensure-slurm.sh)"
        )


class SlurmNodes:
    """Dynamic SLURM nodes (``cpus[k]`` CPUs each), each a slurmd in its own network
    namespace, joined to this machine's slurmctld over a bridge; ``remove`` ends and forgets
    them."""

    def __init__(self, folder: Path, cpus: tuple[int, ...] = (1, 1)) -> None:
        self.nodes = Nodes.make(len(cpus))
        self.names = [f"rl{os.getpid()}n{k}" for k in range(len(cpus))]
        self.processes: list[subprocess.Popen[bytes]] = []
        conf = Path("/etc/slurm/slurm.conf").read_text()
        conf = re.sub(
            r"^SlurmctldHost=(\w[\w.-]*).*$",
            lambda m: f"SlurmctldHost={m.group(1)}({self.nodes.host})",
            conf,
            flags=re.MULTILINE,
        )
        for key, value in (
            ("SlurmdSpoolDir", f"{folder}/%n/spool"),
            ("SlurmdPidFile", f"{folder}/%n/slurmd.pid"),
            ("SlurmdLogFile", f"{folder}/%n/slurmd.log"),
        ):
            conf = re.sub(rf"^{key}=.*$", f"{key}={value}", conf, flags=re.MULTILINE)
        self.conf = folder / "node.conf"
        self.conf.write_text(conf)
        self.log = open(folder / "slurmd.out", "ab")
        for name, namespace, count in zip(self.names, self.nodes.names, cpus, strict=True):
            (folder / name / "spool").mkdir(parents=True)
            self.processes.append(
                subprocess.Popen(
                    ["nsenter", f"--net=/run/netns/{namespace}", "slurmd", "-D",
                     "-f", str(self.conf), "-Z", "-N", name,
                     "--conf", f"CPUs={count} Feature=netns"],
                    stdout=self.log, stderr=self.log, start_new_session=True,
                )
            )  # fmt: skip
        _wait_for(self._idle, "the slurmd nodes to register", timeout=60)

    def _idle(self) -> bool:
        shown = subprocess.run(
            ["sinfo", "-h", "-N", "-n", ",".join(self.names), "-o", "%N %T"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        states = dict(line.split() for line in shown.stdout.splitlines() if line.strip())
        return all(states.get(name) == "idle" for name in self.names)

    def remove(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for _ in range(50):  # a node leaves once no job holds it
            if _scontrol("delete", f"nodename={','.join(self.names)}").returncode == 0:
                break
            subprocess.run(["scancel", "-p", "nodes", "-w", ",".join(self.names)], check=False)
            time.sleep(0.2)
        self.nodes.remove()
        self.log.close()
