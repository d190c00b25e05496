"""The address a cluster's nodes call the coordinator back on: the local address that routes
to the cluster's controller (the nodes share its network), found without sending a packet."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_SLURMCTLD = re.compile(r"^\s*(?:SlurmctldHost\[0\]|ControlMachine)\s*=\s*(\S+)", re.MULTILINE)


def route_source(host: str) -> str:
    """The local address this machine uses to reach ``host`` (a UDP socket's connect picks
    the route and sends nothing); loopback when ``host`` cannot be resolved or reached."""
    try:
        infos = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
    except OSError as exc:
        log.debug("cannot resolve %s (%s); calling back on loopback", host, exc)
        return LOOPBACK
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.connect(address)
                return str(probe.getsockname()[0])
        except OSError:
            continue
    return LOOPBACK


def url_host(address: str) -> str:
    """The host of ``tcp://host:port``-style addresses (brackets of IPv6 removed)."""
    rest = address.split("://", 1)[-1].split("/", 1)[0]
    host = rest.rsplit(":", 1)[0] if rest.count(":") == 1 or rest.startswith("[") else rest
    return host.strip("[]")


def slurm_controller() -> str | None:
    """The host of slurmctld (``SlurmctldHost``; its address when the config gives one)."""
    try:
        result = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _SLURMCTLD.search(result.stdout)
    if found is None:
        return None
    name, _, address = found.group(1).partition("(")
    return address.rstrip(")") or name


def sge_master() -> str | None:
    """The host of Grid Engine's qmaster (``$SGE_ROOT/$SGE_CELL/common/act_qmaster``)."""
    root = os.environ.get("SGE_ROOT") or "/var/lib/gridengine"
    cell = os.environ.get("SGE_CELL") or "default"
    try:
        return (Path(root) / cell / "common" / "act_qmaster").read_text().strip() or None
    except OSError:
        return None


def toward(host: str | None) -> str:
    """The callback address for a cluster controlled from ``host`` (loopback if unknown)."""
    return route_source(host) if host else LOOPBACK
