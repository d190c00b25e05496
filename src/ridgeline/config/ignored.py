"""Settings ridgeline accepts but does not act on, checked the way Determined's schema checks
them, so a config Determined refuses is refused here too (and one it takes is taken).

Each check records problems on ``Problems``; none returns a value, since nothing reads them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ridgeline.config.checks import Problems, as_int, join, show

__all__ = ["check_ignored"]

LENGTH_UNITS = ("batches", "records", "epochs")
_MEMORY = re.compile(r"^([0-9]*[.])?[0-9]+ ?(([kmgtpKMGTP]([iI]?[bB])?)|[bB])?$")
LOG_ACTIONS = ("cancel_retries", "exclude_node")
CHECKPOINT_POLICIES = ("best", "all", "none")
#: Fields of the container Determined runs trials in, which its pod_spec may not change.
_OWN_CONTAINER = "determined-container"
_CONTAINER_FIXED = (
    "image",
    "command",
    "args",
    "working_dir",
    "ports",
    "liveness_probe",
    "readiness_probe",
    "startup_probe",
    "lifecycle",
    "termination_message_path",
    "termination_message_policy",
    "image_pull_policy",
    "security_context",
)


def check_ignored(p: Problems, cfg: dict[str, Any]) -> None:
    """Check the ignored top-level sections of ``cfg`` (and ``resources``/``environment``
    fields) against Determined's rules."""
    for key in ("min_validation_period", "min_checkpoint_period"):
        if cfg.get(key) is not None:
            length(p, key, cfg[key])
    if cfg.get("scheduling_unit") is not None:
        as_int(p, "scheduling_unit", cfg["scheduling_unit"], 1)
    if cfg.get("records_per_epoch") is not None:
        as_int(p, "records_per_epoch", cfg["records_per_epoch"])
    policy = cfg.get("checkpoint_policy")
    if policy is not None and policy not in CHECKPOINT_POLICIES:
        p.bad("checkpoint_policy", f"one of {', '.join(CHECKPOINT_POLICIES)}", policy)
    for key in ("perform_initial_validation", "debug"):
        if cfg.get(key) is not None and not isinstance(cfg[key], bool):
            p.bad(key, "true or false", cfg[key])
    for key in ("workspace", "project"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            p.bad(key, "a string", cfg[key])
    labels = cfg.get("labels")
    if labels is not None and (
        not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)
    ):
        p.bad("labels", "a list of strings", labels)
    _bind_mounts(p, cfg.get("bind_mounts"))
    _log_policies(p, cfg.get("log_policies"))
    _profiling(p, cfg.get("profiling"))
    _security(p, cfg.get("security"))
    resources = cfg.get("resources")
    if isinstance(resources, dict) and resources.get("shm_size") is not None:
        _shm_size(p, resources["shm_size"])
    environment = cfg.get("environment")
    if isinstance(environment, dict) and environment.get("pod_spec") is not None:
        _pod_spec(p, environment["pod_spec"])


def length(p: Problems, path: str, value: Any, minimum: int = 0) -> None:
    """Determined's Length: one of batches, records or epochs, a whole number >= minimum."""
    fix = "e.g. {batches: 100}"
    if not isinstance(value, dict) or len(value) != 1:
        p.bad(path, "a mapping with one of batches, records or epochs", value, fix)
        return
    ((unit, n),) = value.items()
    if unit not in LENGTH_UNITS:
        p.add(join(path, unit), f"unknown length unit; use one of {', '.join(LENGTH_UNITS)}")
        return
    as_int(p, join(path, unit), n, minimum)


def _mapping(p: Problems, path: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        p.bad(path, "a mapping", value)
        return None
    return value


def _entries(
    p: Problems, key: str, value: Any, fields: tuple[str, ...]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each mapping of the list at ``key`` (None: none), with its path ``key[i]``. A value
    that is not a list, and an entry that is not a mapping, are reported (naming ``fields``,
    the keys an entry must have) and skipped."""
    if value is None:
        return
    if not isinstance(value, list):
        p.bad(key, f"a list of {{{', '.join(fields)}}} mappings", value)
        return
    for i, entry in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(entry, dict):
            p.bad(where, f"a mapping with {', '.join(fields[:-1])} and {fields[-1]}", entry)
            continue
        yield where, entry


def _bind_mounts(p: Problems, value: Any) -> None:
    for where, mount in _entries(p, "bind_mounts", value, ("host_path", "container_path")):
        p.unknown_keys(where, mount, ("host_path", "container_path", "read_only", "propagation"))
        host, container = mount.get("host_path"), mount.get("container_path")
        if not isinstance(host, str) or not host.startswith("/"):
            p.bad(join(where, "host_path"), "an absolute path", host)
        if not isinstance(container, str) or container == ".":
            p.bad(join(where, "container_path"), 'a path other than "."', container)


def _log_policies(p: Problems, value: Any) -> None:
    for where, policy in _entries(p, "log_policies", value, ("name", "pattern", "action")):
        p.unknown_keys(where, policy, ("name", "pattern", "action"))
        legacy = policy.get("pattern") is not None and policy.get("action") is not None
        if policy.get("name") is None and not legacy:
            p.add(where, '"name" must be set (and "pattern", unless it disables a policy)')
        for key in ("name", "pattern"):
            if policy.get(key) is not None and not isinstance(policy[key], str):
                p.bad(join(where, key), "a string", policy[key])
        action = policy.get("action")
        if isinstance(action, dict):  # the legacy form {type: cancel_retries}
            if set(action) != {"type"} or action.get("type") not in LOG_ACTIONS:
                p.bad(join(where, "action"), '"cancel_retries" or "exclude_node"', action)
        elif action is not None and action not in LOG_ACTIONS:
            p.bad(join(where, "action"), '"cancel_retries" or "exclude_node"', action)


def _profiling(p: Problems, value: Any) -> None:
    section = _mapping(p, "profiling", value)
    if not section:
        return
    p.unknown_keys(
        "profiling", section, ("enabled", "begin_on_batch", "end_after_batch", "sync_timings")
    )
    begin = section.get("begin_on_batch")
    end = section.get("end_after_batch")
    first = as_int(p, "profiling.begin_on_batch", begin, 0) if begin is not None else 0
    last = as_int(p, "profiling.end_after_batch", end, 0) if end is not None else None
    if first is not None and last is not None and first > last:
        p.add(
            "profiling",
            f"begin_on_batch must be less than end_after_batch (got {first} and {last})",
        )


def _security(p: Problems, value: Any) -> None:
    section = _mapping(p, "security", value)
    if not section:
        return
    p.unknown_keys("security", section, ("kerberos",))
    kerberos = _mapping(p, "security.kerberos", section.get("kerberos"))
    if kerberos is not None and not isinstance(kerberos.get("config_file"), str):
        p.bad("security.kerberos.config_file", "a string", kerberos.get("config_file"))


def _shm_size(p: Problems, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | str) or not _MEMORY.match(str(value)):
        p.bad("resources.shm_size", "a valid memory size", value, "e.g. 4 gb, 512m or 1048576")


def _pod_spec(p: Problems, value: Any) -> None:
    spec = _mapping(p, "environment.pod_spec", value)
    if not spec:
        return
    for key in ("name", "name_space"):
        if key in spec:
            p.add(join("environment.pod_spec", key), "the pod's name is not configurable")
    inner = spec.get("spec")
    containers = inner.get("containers") if isinstance(inner, dict) else None
    for i, container in enumerate(containers if isinstance(containers, list) else []):
        if not isinstance(container, dict) or container.get("name") != _OWN_CONTAINER:
            continue
        fixed = [k for k in container if k in _CONTAINER_FIXED]
        if fixed:
            p.add(
                f"environment.pod_spec.spec.containers[{i}]",
                f"{', '.join(fixed)} of {_OWN_CONTAINER!r} not configurable (got "
                f"{show(container)}); set them elsewhere in the experiment config",
            )
