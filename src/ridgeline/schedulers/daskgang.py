"""Placing one trial on several dask workers at once (a gang), all or nothing.

The slot rule: a trial's ``resources.slots_per_trial`` counts the workers' ``GPU`` resource
when some worker offers one, else their ``slots`` resource (``dask worker --resources
slots=4`` for CPU slots). Slots per node are ``slots_per_node`` when the experiment gives it,
else the most any one worker offers. A trial that fits one node runs as one task, as before;
a larger one needs ``slots_per_trial / slots_per_node`` nodes (a whole number), one task per
node, each on a distinct worker holding that many slots.

dask places tasks one by one, so a gang placed by dask alone could start half-way (one node
running, the other queued behind another trial) or deadlock against another half-placed gang.
``reserve`` runs on the dask scheduler (``Client.run_on_scheduler``), where nothing else moves
while it runs: it picks distinct workers whose free slots (total, less used, less what other
gangs reserved and have not started yet) suffice, records the reservation, and returns the
workers; or returns None and reserves nothing, and the caller asks again later. The node tasks
are then pinned to those workers. A reservation stops counting once its task runs (dask
counts it as used then) or ends (``submitted`` tells a task that ended and was forgotten from
one not sent yet), or when it was never submitted within ``ttl`` seconds.

This module is sent to the dask scheduler by value (``cloudpickle.register_pickle_by_value``),
so the scheduler's machine needs no ridgeline; it imports only the standard library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["GangPlan", "plan_gang", "release", "reserve", "slot_resource", "submitted"]

#: Where a reservation's task is not yet counted in its worker's used resources.
NOT_STARTED = ("released", "waiting", "no-worker", "queued")
RESERVATIONS = "_ridgeline_gangs"  # attribute of the dask Scheduler object holding them


@dataclass(frozen=True)
class GangPlan:
    """How one trial is laid out: ``nodes`` tasks of ``per_node`` units of ``resource``."""

    resource: str | None  # "GPU", "slots", or None (workers offer neither)
    nodes: int
    per_node: int


def slot_resource(offers: list[dict[str, float]]) -> str | None:
    """The worker resource that slots count: ``GPU`` if any worker has it, else ``slots``."""
    for name in ("GPU", "slots"):
        if any(offer.get(name, 0) > 0 for offer in offers):
            return name
    return None


def plan_gang(
    slots_per_trial: int, offers: list[dict[str, float]], slots_per_node: int | None = None
) -> GangPlan:
    """The layout of a trial of ``slots_per_trial`` slots over workers offering ``offers``
    (each worker's resources); ValueError, saying why, when no layout fits."""
    resource = slot_resource(offers)
    if slots_per_trial <= 0:
        return GangPlan(resource, 1, 0)
    if resource is None:
        if not offers:  # no worker yet: ask for GPUs, as a trial of slots always did
            return GangPlan("GPU", 1, slots_per_trial)
        raise ValueError(
            f"resources.slots_per_trial is {slots_per_trial}, but no dask worker offers a GPU "
            f"or slots resource; start workers with --resources GPU=N (or slots=N for CPU "
            f"slots), or set resources.slots_per_trial: 0"
        )
    most = max(int(offer.get(resource, 0)) for offer in offers) if offers else 0
    per_node = slots_per_node or most
    if per_node <= 0:
        raise ValueError(f"no dask worker offers any {resource} resource")
    if slots_per_trial <= per_node:
        return GangPlan(resource, 1, slots_per_trial)
    if slots_per_trial % per_node:
        raise ValueError(
            f"resources.slots_per_trial is {slots_per_trial}, which does not split into nodes "
            f"of {per_node} {resource} slots each; make it a multiple of {per_node} "
            f"(or set slots_per_node)"
        )
    nodes = slots_per_trial // per_node
    able = sum(1 for offer in offers if offer.get(resource, 0) >= per_node)
    if offers and able < nodes:
        raise ValueError(
            f"resources.slots_per_trial is {slots_per_trial}: {nodes} nodes of {per_node} "
            f"{resource} slots, but only {able} dask worker(s) offer {per_node}"
        )
    return GangPlan(resource, nodes, per_node)


def reserve(
    gang: str,
    keys: list[str],
    resource: str,
    amount: float,
    ttl: float = 120.0,
    dask_scheduler: Any = None,
) -> list[str] | None:
    """On the dask scheduler: reserve ``len(keys)`` distinct workers with ``amount`` free
    ``resource`` each for the node tasks ``keys``; their addresses (spread over hosts first),
    or None when not enough are free now."""
    table: dict[str, dict[str, Any]] = getattr(dask_scheduler, RESERVATIONS, None) or {}
    setattr(dask_scheduler, RESERVATIONS, table)
    now = time.monotonic()
    held: dict[str, float] = {}
    for name, entry in list(table.items()):
        waiting = []
        for address, key in entry["nodes"]:
            task = dask_scheduler.tasks.get(key)
            if task is None and (entry.get("submitted") or now - entry["at"] > ttl):
                continue  # ended and forgotten, or never submitted (its client went away)
            if task is not None and task.state not in NOT_STARTED:
                continue  # running (counted as used by dask) or ended
            waiting.append((address, key))
            held[address] = held.get(address, 0.0) + entry["amount"]
        if waiting:
            entry["nodes"] = waiting
        else:
            del table[name]
    free: list[tuple[float, str, str]] = []
    for address, worker in dask_scheduler.workers.items():
        if getattr(worker.status, "name", str(worker.status)) != "running":
            continue
        total = worker.resources.get(resource, 0)
        left = total - worker.used_resources.get(resource, 0) - held.get(address, 0.0)
        if left >= amount:
            free.append((-left, address, worker.host))
    free.sort()
    chosen: list[str] = []
    hosts: set[str] = set()
    for spread in (True, False):  # distinct hosts first, then any distinct worker
        for _, address, host in free:
            if (
                len(chosen) < len(keys)
                and address not in chosen
                and (host not in hosts or not spread)
            ):
                chosen.append(address)
                hosts.add(host)
    if len(chosen) < len(keys):
        return None
    table[gang] = {"at": now, "amount": amount, "nodes": list(zip(chosen, keys, strict=True))}
    return chosen


def submitted(gang: str, dask_scheduler: Any = None) -> None:
    """On the dask scheduler: a gang's tasks were submitted; once gone, they have ended."""
    entry = (getattr(dask_scheduler, RESERVATIONS, None) or {}).get(gang)
    if entry is not None:
        entry["submitted"] = True


def release(gang: str, dask_scheduler: Any = None) -> None:
    """On the dask scheduler: drop a gang's reservation (its placement was abandoned)."""
    table = getattr(dask_scheduler, RESERVATIONS, None) or {}
    table.pop(gang, None)
