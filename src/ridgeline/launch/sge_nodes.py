"""``python -m ridgeline.launch.sge_nodes SLOTS_PER_NODE PRELUDE COMMAND...``: a trial that
spans several Grid Engine hosts, run by its job script on the job's master host.

Grid Engine gives the job one slot on each of its hosts (a parallel environment with
``allocation_rule 1`` and ``control_slaves TRUE``, checked by ``SGEScheduler.check``) and
lists them in ``$PE_HOSTFILE``. This starts COMMAND once per host with ``qrsh -inherit`` (so
Grid Engine tracks, accounts and ends every host's process), each told the meeting point as
``slurm_nodes`` tells SLURM's nodes: the hosts' addresses, the master's first
(``RIDGELINE_CONTAINER_ADDRS``, ``DET_CHIEF_IP``), two ports free on the master for this
attempt (``C10D_PORT``, ``RIDGELINE_CHIEF_PORT``), the node's slots and its rank
(``RIDGELINE_CONTAINER_RANK``).

The trial's variables, its token among them, never travel with ``qrsh`` (``-V`` would write
them into each execution host's spool): every host first runs PRELUDE, a shell snippet from
the job script that sources the job's 0600 variables file on the shared folder and the
``environment`` script. Only the meeting point and the rank are on the command line.

The first host whose command fails ends the others (their ``qrsh`` is stopped, and Grid
Engine ends a job's remaining tasks when its script exits), and its status is this
program's: 128 + N when signal N ended it, as the shell reports.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

from ridgeline.launch.slurm_nodes import exports
from ridgeline.launch.torch_distributed import free_ports
from ridgeline.trial import env

__all__ = ["host_addresses", "main", "node_command", "pe_hosts"]

USAGE = "usage: python -m ridgeline.launch.sge_nodes SLOTS_PER_NODE PRELUDE COMMAND..."


def pe_hosts(pe_hostfile: str | os.PathLike[str], master: str) -> list[str]:
    """The job's hosts in ``$PE_HOSTFILE`` (first field of each line), ``master`` (this host,
    where the chief's ports are free) first when it is among them."""
    hosts: list[str] = []
    for line in Path(pe_hostfile).read_text().splitlines():
        fields = line.split()
        if fields and fields[0] not in hosts:
            hosts.append(fields[0])
    for name in (master, master.split(".")[0]):
        if name in hosts:
            hosts.remove(name)
            hosts.insert(0, name)
            break
    return hosts


def host_addresses(hosts: list[str]) -> list[str]:
    """The IPv4 address each host name resolves to (what its peers connect to), else its
    first address of any family."""
    addresses = []
    for host in hosts:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        ipv4 = [info for info in infos if info[0] == socket.AF_INET]
        addresses.append(str((ipv4 or infos)[0][4][0]))
    return addresses


def node_command(prelude: str, meeting: str, rank: int, command: list[str]) -> str:
    """What ``qrsh -inherit`` runs on the host of ``rank``: one shell word for its remote
    shell, bash running the prelude, the meeting point's exports, then COMMAND."""
    script = (
        f"cd {shlex.quote(os.getcwd())} && {prelude}\n{meeting}"
        f"export {env.CONTAINER_RANK}={rank}\nexec {shlex.join(command)}"
    )
    return f"/bin/bash -c {shlex.quote(script)}"


def run_all(hosts: list[str], commands: list[str]) -> int:
    """Run ``commands[k]`` on ``hosts[k]``; 0 when all succeed, else the first failure's
    status, the others stopped."""
    children: dict[int, subprocess.Popen[bytes]] = {}
    for host, command in zip(hosts, commands, strict=True):
        argv = ["qrsh", "-inherit", "-nostdin", host, command]
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        children[child.pid] = child
    status = 0
    signalled: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        signalled.append(signum)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    while children:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        if children.pop(pid, None) is None:
            continue
        code = os.waitstatus_to_exitcode(raw)
        code = 128 - code if code < 0 else code
        if code != 0 and status == 0:
            status = code
            for other in children.values():
                other.terminate()
    if status == 0 and signalled:
        status = 128 + signalled[0]
    return status


def main(args: list[str]) -> int:
    if len(args) < 3 or not args[0].isdigit() or int(args[0]) < 1:
        print(USAGE, file=sys.stderr)
        return 2
    hostfile = os.environ.get("PE_HOSTFILE")
    if not hostfile:
        print("sge_nodes: not inside a Grid Engine parallel job (no PE_HOSTFILE)", file=sys.stderr)
        return 2
    try:
        hosts = pe_hosts(hostfile, socket.gethostname())
        addresses = host_addresses(hosts)
    except OSError as exc:
        print(f"sge_nodes: cannot find the job's hosts: {exc}", file=sys.stderr)
        return 1
    meeting = exports(addresses, int(args[0]), free_ports(2))
    commands = [node_command(args[1], meeting, rank, args[2:]) for rank in range(len(hosts))]
    return run_all(hosts, commands)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
