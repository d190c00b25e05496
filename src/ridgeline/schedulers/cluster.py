"""The argument checks the cluster schedulers (``SLURMScheduler``, ``SGEScheduler``,
``DaskScheduler``) share."""

from __future__ import annotations

from typing import Any

from ridgeline.errors import SchedulerError

__all__ = ["check_gpus_per_trial", "check_nodes", "check_sherpa_arguments", "check_worker_jobs"]


def check_sherpa_arguments(cls_name: str, submit_options: Any, environment: Any) -> None:
    """SHERPA's cluster schedulers take ``submit_options`` and ``environment`` as strings."""
    if not isinstance(submit_options, str):
        raise SchedulerError(
            f"{cls_name} submit_options must be a string such as '-N example -P project', "
            f"got {submit_options!r}"
        )
    if not isinstance(environment, str):
        raise SchedulerError(
            f"{cls_name} environment must be the path of a file to source, got {environment!r}"
        )


def check_gpus_per_trial(cls_name: str, gpus_per_trial: Any) -> int:
    """GPUs asked for each job: a whole number, 0 for none."""
    if isinstance(gpus_per_trial, bool) or not isinstance(gpus_per_trial, int):
        raise SchedulerError(
            f"{cls_name} gpus_per_trial must be a whole number, got {gpus_per_trial!r}"
        )
    if gpus_per_trial < 0:
        raise SchedulerError(f"{cls_name} gpus_per_trial must be >= 0, got {gpus_per_trial}")
    return gpus_per_trial


def check_nodes(cls_name: str, gpus_per_trial: int, nodes: Any, slots_per_node: Any) -> int:
    """The slots each node of a trial's job gets: its share of ``gpus_per_trial`` (which must
    split evenly over ``nodes``), else ``slots_per_node`` logical slots."""
    for label, value in (("nodes", nodes), ("slots_per_node", slots_per_node)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SchedulerError(f"{cls_name} {label} must be a whole number >= 1, got {value!r}")
    if gpus_per_trial % nodes:
        raise SchedulerError(
            f"{cls_name} gpus_per_trial ({gpus_per_trial}) must split evenly over its {nodes} nodes"
        )
    return int(gpus_per_trial // nodes if gpus_per_trial else slots_per_node)


def check_worker_jobs(
    cls_name: str, worker_jobs: Any, worker_idle_seconds: Any, nodes: int
) -> tuple[bool, float]:
    """Worker jobs (``schedulers/workerpool.py``) run trials of one node, and an idle worker
    waits a positive number of seconds before it ends."""
    if worker_jobs and nodes > 1:
        raise SchedulerError(
            f"{cls_name} worker_jobs runs trials of one node; a trial across {nodes} nodes is "
            f"one job of its own (worker_jobs=False)"
        )
    idle = worker_idle_seconds
    if isinstance(idle, bool) or not isinstance(idle, int | float) or not idle > 0:
        raise SchedulerError(
            f"{cls_name} worker_idle_seconds must be a positive number of seconds, got {idle!r}"
        )
    return bool(worker_jobs), float(idle)
