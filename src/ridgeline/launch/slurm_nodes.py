"""``python -m ridgeline.launch.slurm_nodes SLOTS_PER_NODE``: the meeting point of a trial that
spans several SLURM nodes, run by its batch script on the first node before ``srun`` starts one
process per node.

It prints the ``export`` lines that every node's process inherits through ``srun``: the nodes'
addresses in SLURM's node order (``RIDGELINE_CONTAINER_ADDRS``; the first, the chief's, also as
``DET_CHIEF_IP``), two ports free on the chief's node for this attempt (torchrun's rendezvous,
``C10D_PORT``, and the ranks' channel, ``RIDGELINE_CHIEF_PORT``), and the slots of one node
(``RIDGELINE_SLOT_IDS``: one process per slot on each node). ``srun`` gives each process its
``SLURM_NODEID``, which the batch script hands on as ``RIDGELINE_CONTAINER_RANK``.

The addresses are the nodes' ``NodeAddr`` (``scontrol show node``: what slurmctld itself uses,
right for nodes that registered themselves too), in the order of ``scontrol show hostnames
$SLURM_JOB_NODELIST``, which is the order of ``SLURM_NODEID``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from ridgeline.launch.torch_distributed import free_ports
from ridgeline.trial import env

__all__ = ["main", "node_addresses"]

TIMEOUT_S = 30


def _scontrol(*args: str) -> str:
    result = subprocess.run(
        ["scontrol", *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"scontrol {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def node_addresses(nodelist: str) -> list[str]:
    """The ``NodeAddr`` of each node of ``nodelist`` (SLURM's compact form), in node order."""
    names = _scontrol("show", "hostnames", nodelist).split()
    addresses: dict[str, str] = {}
    for line in _scontrol("-o", "show", "node", ",".join(names)).splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "NodeName" in fields:
            addresses[fields["NodeName"]] = fields.get("NodeAddr") or fields["NodeName"]
    missing = [name for name in names if name not in addresses]
    if missing:
        raise RuntimeError(f"scontrol did not describe the nodes {', '.join(missing)}")
    return [addresses[name] for name in names]


def exports(addresses: list[str], slots_per_node: int, ports: list[int]) -> str:
    values = {
        env.CONTAINER_ADDRS: ",".join(addresses),
        env.CHIEF_IP: addresses[0],
        "C10D_PORT": str(ports[0]),
        env.CHIEF_PORT: str(ports[1]),
        env.SLOT_IDS: ",".join(str(i) for i in range(slots_per_node)),
    }
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def main(args: list[str]) -> int:
    if len(args) != 1 or not args[0].isdigit() or int(args[0]) < 1:
        print("usage: python -m ridgeline.launch.slurm_nodes SLOTS_PER_NODE", file=sys.stderr)
        return 2
    nodelist = os.environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        print("slurm_nodes: not inside a SLURM job (no SLURM_JOB_NODELIST)", file=sys.stderr)
        return 2
    try:
        addresses = node_addresses(nodelist)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"slurm_nodes: cannot find the job's nodes: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(exports(addresses, int(args[0]), free_ports(2)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
