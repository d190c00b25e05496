"""``python3 -m ridgeline.launch.torch_distributed [--trust] [TORCHRUN_ARGS... --] SCRIPT...``:
start this trial's share of a ``torch.distributed`` job with torchrun, one worker per slot.

What it asks torchrun for comes from the trial's ``ClusterInfo``: ``len(slot_ids)`` workers
on this machine, ``len(container_addrs)`` machines, this one being ``container_rank``, the
rendezvous on the first machine on a free port (across machines ``C10D_PORT``, which the
Dask backend sets to a port the chief's node picked for this attempt; else 29400).
TORCHRUN_ARGS, ended by ``--``, override those. Each worker's output is labelled with its rank
(``wrap_rank``). torchrun ends every worker when one fails (``--max_restarts 0``: a failed
worker fails the trial attempt, and the coordinator restarts the whole trial from its latest
checkpoint), and the exit status is torchrun's.

Across machines, gloo and NCCL must talk over the network that joins the nodes, not over the
interface the host name happens to resolve to (often loopback): unless ``GLOO_SOCKET_IFNAME``
/ ``NCCL_SOCKET_IFNAME`` are set, both are pointed at the interface holding this node's
address in ``container_addrs``.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import signal
import socket
import struct
import subprocess
import sys

from ridgeline.cluster import get_cluster_info
from ridgeline.trial import env

USAGE = (
    "usage: python3 -m ridgeline.launch.torch_distributed [--trust] [TORCHRUN_ARGS... --] SCRIPT..."
)
C10D_PORT = 29400  # torchrun's rendezvous port when the trial spans machines (Determined's)
SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(torchrun overrides, script) from the launcher's arguments."""
    args = [a for a in args if a != "--trust"]  # Determined's flag; nothing to trust here
    if "--" in args:
        cut = args.index("--")
        return args[:cut], args[cut + 1 :]
    return [], args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on every address of this machine now: the ports of
    a trial's chief node that its other nodes connect to."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def interface_of(address: str) -> str | None:
    """The name of the network interface that holds the IPv4 ``address`` (Linux), or None."""
    try:
        wanted = socket.inet_aton(socket.gethostbyname(address))
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            try:
                raw = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()))
            except OSError:  # no IPv4 address on it
                continue
            if raw[20:24] == wanted:
                return name
    return None


def torchrun_command(
    nodes: int, per_node: int, node_rank: int, chief: str, port: int, overrides: list[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        str(nodes),
        "--nproc_per_node",
        str(per_node),
        "--node_rank",
        str(node_rank),
        "--max_restarts",
        "0",
        "--master_addr",
        chief,
        "--master_port",
        str(port),
        *overrides,
        "--module",
        "ridgeline.launch.wrap_rank",
        "RANK",
        "--",
    ]


def main(args: list[str]) -> int:
    overrides, script = split_args(args)
    if not script:
        print(f"torch_distributed: no script to run\n{USAGE}", file=sys.stderr)
        return 2
    info = get_cluster_info()
    if info is None:
        print(
            "torch_distributed: not inside a ridgeline trial (RIDGELINE_MASTER is not set); "
            "run the script with torchrun directly",
            file=sys.stderr,
        )
        return 2
    if importlib.util.find_spec("torch") is None:
        print(
            "torch_distributed: PyTorch is not installed in this Python "
            f"({sys.executable}); install torch to run torch.distributed trials",
            file=sys.stderr,
        )
        return 2
    nodes = len(info.container_addrs)
    chief = info.container_addrs[0]
    local = nodes == 1
    port = free_port() if local else int(os.environ.get("C10D_PORT") or C10D_PORT)
    command = torchrun_command(
        nodes,
        max(1, len(info.slot_ids)),
        info.container_rank,
        "127.0.0.1" if local else chief,
        port,
        overrides,
    )
    child_env = dict(os.environ)
    child_env[env.CHIEF_IP] = chief
    if not local and 0 <= info.container_rank < nodes:
        device = interface_of(info.container_addrs[info.container_rank])
        if device is not None:
            child_env.setdefault("GLOO_SOCKET_IFNAME", device)
            child_env.setdefault("NCCL_SOCKET_IFNAME", device)
    child_env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, without its warning
    process = subprocess.Popen([*command, *script], env=child_env)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda number, _frame: process.send_signal(number))
    code = process.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
