"""The top level of an experiment config: load, override, validate every section, fill defaults."""

from __future__ import annotations

import json
import os
import re
import shlex
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ridgeline.config.checks import (
    InvalidConfig,
    Problems,
    as_int,
    as_mapping,
    as_str,
    ensure_valid,
    join,
    kind,
    plain_copy,
    show,
    suggest,
)
from ridgeline.config.cluster import check_cluster_sections
from ridgeline.config.entrypoint import check_entrypoint, check_launcher, launcher_of
from ridgeline.config.hyperparameters import (
    MAX_HPARAMS_BYTES,
    check_grid_size,
    check_sizes,
    grid_of,
    parse_hyperparameters,
    space_of,
)
from ridgeline.config.ignored import check_ignored
from ridgeline.config.model import (
    CheckpointStorageConfig,
    ConfigWarning,
    DeprecatedConfigWarning,
    ExperimentConfig,
)
from ridgeline.config.searcher import describe, parse_searcher
from ridgeline.errors import ConfigError, SpaceError

__all__ = ["describe_search", "grid_points", "load_config", "parse_config"]

TOP = (
    "name",
    "description",
    "entrypoint",
    "hyperparameters",
    "searcher",
    "max_restarts",
    "max_consecutive_failures",
    "data",
    "resources",
    "checkpoint_storage",
    "reproducibility",
    "environment",
    "slurm",
    "pbs",
    "sge",
    "dask",
)
#: Determined's Trial-API and other deprecated settings: accepted, ignored, warned about.
TOP_DEPRECATED = (
    "min_validation_period",
    "min_checkpoint_period",
    "records_per_epoch",
    "scheduling_unit",
    "perform_initial_validation",
    "optimizations",
    "profiling",
    "checkpoint_policy",
    "data_layer",
)
#: Sections whose every field is named in the warning (``optimizations.mixed_precision``).
NAMED_BY_FIELD = ("optimizations",)
#: Settings of a Determined cluster or its web UI: accepted, no effect here, warned about.
TOP_NO_EFFECT = (
    "labels",
    "workspace",
    "project",
    "bind_mounts",
    "log_policies",
    "tensorboard_storage",
    "security",
    "integrations",
    "debug",
    "internal",
)
RESOURCES_NO_EFFECT = (
    "max_slots",
    "weight",
    "priority",
    "resource_pool",
    "shm_size",
    "devices",
    "is_single_node",
    "slots",
)
RESOURCES_DEPRECATED = ("agent_label", "native_parallel")
ENVIRONMENT_NO_EFFECT = (
    "image",
    "pod_spec",
    "ports",
    "force_pull_image",
    "registry_auth",
    "add_capabilities",
    "drop_capabilities",
    "proxy_ports",
)
ACCELERATORS = ("cpu", "cuda", "gpu", "rocm")
DEVICES = ("cpu", "cuda", "rocm")
STORAGE_TYPES = ("shared_fs", "directory")
REMOTE_STORAGE = ("s3", "gcs", "azure", "hdfs")
RETENTION = {"save_experiment_best": 0, "save_trial_best": 1, "save_trial_latest": 1}
SHARED_FS_NO_EFFECT = ("propagation", "container_path", "checkpoint_path", "tensorboard_path")
_TRIAL_CLASS = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def load_config(
    source: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    *,
    warn: bool = True,
    context_dir: str | os.PathLike[str] | None = None,
) -> ExperimentConfig:
    """Read, override and validate an experiment config file.

    ``overrides`` are ``--config`` strings ``dotted.key=value`` with YAML values
    (``searcher.max_trials=5``, ``hyperparameters.lr.maxval=0.1``). Relative checkpoint paths
    are resolved against the file's directory. Every problem is reported in one
    ``InvalidConfig`` (a ``ConfigError``) with line numbers; ignored Determined keys are
    reported as ``ConfigWarning``/``DeprecatedConfigWarning`` unless ``warn`` is False.
    With ``context_dir`` (the folder the trials run in), the entrypoint's script must be there.
    """
    from ridgeline.config.yamlio import load_yaml  # lazy: ridgeline.config.yamlio loads yaml

    path = Path(source)
    shown = str(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such config file; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: is a directory; give the config file itself") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: is not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the config file ({exc.strerror})") from None
    data, lines, fatal = load_yaml(text, shown)
    if fatal and data is None:
        raise InvalidConfig(shown, fatal)
    if data is None:
        raise InvalidConfig(
            shown,
            ["the file is empty; an experiment config needs at least entrypoint and searcher"],
        )
    return _parse(
        data,
        shown,
        str(path.resolve().parent),
        warn=warn,
        overrides=overrides,
        lines=lines,
        early=fatal,
        default_name=path.stem,
        context_dir=context_dir,
    )


def parse_config(
    data: Mapping[str, Any],
    source: str = "<config>",
    base_dir: str | None = None,
    *,
    warn: bool = True,
    context_dir: str | os.PathLike[str] | None = None,
) -> ExperimentConfig:
    """Validate an already-loaded config mapping (``Experiment.from_dict``, a stored ``raw``).

    ``base_dir`` (default: the current directory) resolves relative checkpoint paths; with
    ``context_dir``, the entrypoint's script must be in that folder.
    """
    return _parse(data, source, base_dir or os.getcwd(), warn=warn, context_dir=context_dir)


def _parse(
    data: Any,
    source: str,
    base_dir: str,
    *,
    warn: bool,
    overrides: Sequence[str] = (),
    lines: Mapping[str, int] | None = None,
    early: Sequence[str] = (),
    default_name: str = "experiment",
    context_dir: str | os.PathLike[str] | None = None,
) -> ExperimentConfig:
    lines = lines or {}
    p = Problems()
    for message in early:
        p.add("", message)
    if not isinstance(data, Mapping):
        p.add(
            "",
            f"the top level must be a mapping of keys such as entrypoint, hyperparameters and "
            f"searcher (got {kind(data)} {show(data)})",
        )
        ensure_valid(p, source, lines, ())
    copied = plain_copy(p, data)
    if copied is None:
        ensure_valid(p, source, lines, ())
    cfg: dict[str, Any] = copied
    overridden = _overrides(p, cfg, overrides)

    _top_keys(p, cfg)
    check_ignored(p, cfg)
    name = default_name
    if cfg.get("name") is not None:
        name = as_str(p, "name", cfg["name"]) or name
    description = ""
    if cfg.get("description") is not None:
        description = as_str(p, "description", cfg["description"], empty=True) or ""
    entrypoint = _entrypoint(p, cfg.get("entrypoint"))
    if entrypoint is not None and context_dir is not None:
        check_entrypoint(p, entrypoint, context_dir)
    searcher, searcher_raw = parse_searcher(p, cfg.get("searcher"))
    is_grid = searcher_raw.get("name") == "grid"
    hp_errors = len(p.items)
    hyperparameters, flat = parse_hyperparameters(p, cfg.get("hyperparameters"), is_grid)
    if len(p.items) == hp_errors:
        check_sizes(p, flat)
        if is_grid:
            check_grid_size(p, flat)
    max_restarts = 5
    if cfg.get("max_restarts") is not None:
        max_restarts = as_int(p, "max_restarts", cfg["max_restarts"], 0) or 0
    max_failures = 10  # trials failing in a row before the experiment ends ERROR; 0: no bound
    if cfg.get("max_consecutive_failures") is not None:
        value = cfg["max_consecutive_failures"]
        max_failures = as_int(p, "max_consecutive_failures", value, 0) or 0
    slots, resources = _resources(p, cfg.get("resources"))
    if entrypoint is not None:
        check_launcher(p, entrypoint, context_dir)
    check_cluster_sections(p, cfg, slots)
    seed = _reproducibility(p, cfg.get("reproducibility"))
    env, environment = _environment(p, cfg.get("environment"))
    storage, storage_raw = _checkpoint_storage(p, cfg.get("checkpoint_storage"), base_dir)
    data_value = cfg.get("data")
    if data_value is None:
        data_value = {}
    data_size = len(json.dumps(data_value, ensure_ascii=False).encode())
    if data_size > MAX_HPARAMS_BYTES:
        p.add(
            "data",
            f"takes {data_size} bytes as JSON, more than {MAX_HPARAMS_BYTES} (it reaches each "
            f"trial in its environment); put large data in a file and pass its path",
        )

    ensure_valid(p, source, lines, overridden)
    assert entrypoint is not None and searcher is not None
    try:
        space = space_of(flat)
    except SpaceError as exc:  # validated per parameter already; kept as a safety net
        raise InvalidConfig(source, [f"hyperparameters: {exc}"]) from None

    raw = dict(cfg)
    raw.update(
        name=name,
        description=description,
        hyperparameters=hyperparameters,
        searcher=searcher_raw,
        max_restarts=max_restarts,
        max_consecutive_failures=max_failures,
        resources=resources,
        data=data_value,
    )
    if environment is not None:
        raw["environment"] = environment
    if storage_raw is not None:
        raw["checkpoint_storage"] = storage_raw
    if warn:
        _warn(p, source)
    return ExperimentConfig(
        name=name,
        description=description,
        entrypoint=entrypoint,
        hyperparameters=hyperparameters,
        space=space,
        searcher=searcher,
        max_restarts=max_restarts,
        max_consecutive_failures=max_failures,
        checkpoint_storage=storage,
        slots_per_trial=slots,
        experiment_seed=seed,
        data=data_value,
        environment_variables=env,
        raw=raw,
    )


def _overrides(p: Problems, cfg: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    if not overrides:
        return []
    from ridgeline.config.yamlio import apply_overrides  # lazy: ridgeline.config.yamlio loads yaml

    return apply_overrides(p, cfg, overrides)


def _top_keys(p: Problems, cfg: dict[str, Any]) -> None:
    for key in cfg:
        if key in TOP:
            continue
        if key in TOP_DEPRECATED:
            value = cfg[key]
            if key in NAMED_BY_FIELD and isinstance(value, dict) and value:
                p.deprecated.extend(join(key, field) for field in value)
            else:
                p.deprecated.append(key)
        elif key in TOP_NO_EFFECT:
            p.no_effect.append(key)
        else:
            p.unknown_keys("", {key: None}, TOP + TOP_DEPRECATED + TOP_NO_EFFECT)


def _entrypoint(p: Problems, value: Any) -> list[str] | None:
    fix = "give the command that runs one trial, e.g. entrypoint: python3 train.py"
    if value is None:
        p.missing("entrypoint", "entrypoint", fix)
        return None
    argv: list[str] = []
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            p.add("entrypoint", f"cannot be split into arguments: {exc} (got {show(value)})")
            return None
    elif isinstance(value, list):
        bad = [i for i, arg in enumerate(value) if not isinstance(arg, str)]
        for i in bad:
            p.bad(f"entrypoint[{i}]", "a string", value[i], "quote it")
        if bad:
            return None
        argv = list(value)
    else:
        p.bad("entrypoint", "a command string or a list of arguments", value, fix)
        return None
    if not argv:
        p.bad("entrypoint", "a non-empty command", value, fix)
        return None
    trial_class = [arg for arg in argv if _TRIAL_CLASS.match(arg) and "/" not in arg]
    if trial_class and (len(argv) == 1 or launcher_of(argv) is not None):
        p.add(
            "entrypoint",
            f"{trial_class[0]!r} names a Trial-API class (module:Class), which ridgeline does not "
            f"run "
            f"(got {show(value)}); write a Core-API script and give the command that runs it, "
            f"e.g. entrypoint: python3 train.py",
        )
        return None
    return argv


def _resources(p: Problems, value: Any) -> tuple[int, dict[str, Any]]:
    resources = as_mapping(p, "resources", value, "e.g. resources: {slots_per_trial: 1}")
    if resources is None:
        return 1, {}
    slots = 1
    for key in resources:
        if key == "slots_per_trial":
            continue
        if key in RESOURCES_NO_EFFECT:
            p.no_effect.append(join("resources", key))
        elif key in RESOURCES_DEPRECATED:
            p.deprecated.append(join("resources", key))
        else:
            valid = ("slots_per_trial", *RESOURCES_NO_EFFECT, *RESOURCES_DEPRECATED)
            p.unknown_keys("resources", {key: None}, valid)
    if resources.get("slots_per_trial") is not None:
        given = as_int(
            p,
            "resources.slots_per_trial",
            resources["slots_per_trial"],
            0,
            "the number of GPUs each trial gets (0: CPU only)",
        )
        slots = 1 if given is None else given
    return slots, {**resources, "slots_per_trial": slots}


def _reproducibility(p: Problems, value: Any) -> int | None:
    section = as_mapping(p, "reproducibility", value, "e.g. reproducibility: {experiment_seed: 7}")
    if not section:
        return None
    p.unknown_keys("reproducibility", section, ("experiment_seed",))
    if section.get("experiment_seed") is None:
        return None
    return as_int(p, "reproducibility.experiment_seed", section["experiment_seed"], 0)


def _environment(
    p: Problems, value: Any
) -> tuple[dict[str, dict[str, str | None]], dict[str, Any] | None]:
    section = as_mapping(p, "environment", value)
    if section is None or value is None:
        return {}, None
    for key in section:
        if key in ENVIRONMENT_NO_EFFECT:
            p.no_effect.append(join("environment", key))
        elif key != "environment_variables":
            p.unknown_keys(
                "environment", {key: None}, ("environment_variables", *ENVIRONMENT_NO_EFFECT)
            )
    return _environment_variables(p, section.get("environment_variables")), section


def _environment_variables(p: Problems, value: Any) -> dict[str, dict[str, str | None]]:
    """``["K=V", ...]`` (every device), or ``{cpu: [...], cuda: [...], rocm: [...]}`` (``gpu``
    is Determined's old name for ``cuda``): the variables per device, picked per trial by the
    device it runs on (``ExperimentConfig.environment_for``). An entry without ``=`` unsets
    that variable (None), as Docker reads Determined's list."""
    path = "environment.environment_variables"
    form = "a list of 'KEY=VALUE' strings, or a mapping of cpu/cuda/rocm to such lists"
    if value is None:
        return {}
    lists: dict[str, list[Any]] = {}
    if isinstance(value, list):
        lists[""] = value
    elif isinstance(value, dict):
        for key, entries in value.items():
            where = join(path, key)
            if key not in ACCELERATORS:
                hint = suggest(key, ACCELERATORS)
                fix = f"did you mean {hint!r}?" if hint else f"environment_variables is {form}"
                p.add(where, f"unknown key; {fix}")
            elif entries is not None and not isinstance(entries, list):
                p.bad(where, "a list of 'KEY=VALUE' strings", entries)
            elif entries:
                lists[key] = entries
    else:
        p.bad(path, form, value, "e.g. environment_variables: [OMP_NUM_THREADS=4]")
        return {}
    parsed: dict[str, dict[str, str | None]] = {}
    for group, entries in lists.items():
        out = parsed.setdefault(group, {})
        where = join(path, group) if group else path
        for i, entry in enumerate(entries):
            name, eq, setting = entry.partition("=") if isinstance(entry, str) else ("", "", "")
            if not name.strip() or "\x00" in entry:
                fix = "e.g. OMP_NUM_THREADS=4 (or a bare NAME to unset NAME)"
                p.bad(f"{where}[{i}]", "a 'KEY=VALUE' string", entry, fix)
                continue
            out[name.strip()] = setting if eq else None  # a bare NAME unsets it, as in Docker
    if isinstance(value, list):
        return {device: dict(parsed.get("", {})) for device in DEVICES}
    return {
        "cpu": parsed.get("cpu", {}),
        "cuda": {**parsed.get("gpu", {}), **parsed.get("cuda", {})},
        "rocm": parsed.get("rocm", {}),
    }


def _checkpoint_storage(
    p: Problems, value: Any, base_dir: str
) -> tuple[CheckpointStorageConfig | None, dict[str, Any] | None]:
    path = "checkpoint_storage"
    supported = "use type: shared_fs with host_path, or type: directory with container_path"
    section = as_mapping(p, path, value, supported)
    if section is None or value is None:
        return None, None
    storage_type = section.get("type")
    if storage_type is None:
        p.missing(join(path, "type"), "type", supported)
        return None, None
    if storage_type in REMOTE_STORAGE:
        p.add(
            join(path, "type"),
            f"{storage_type!r} storage is not available in ridgeline (got {storage_type!r}); "
            f"the supported types are {' and '.join(STORAGE_TYPES)}: {supported}, on a "
            f"filesystem every trial reaches",
        )
        return None, None
    if storage_type not in STORAGE_TYPES:
        hint = suggest(str(storage_type), STORAGE_TYPES)
        fix = f"did you mean {hint!r}?" if hint else supported
        p.add(join(path, "type"), f"unknown storage type (got {show(storage_type)}); {fix}")
        return None, None
    errors = len(p.items)
    written = dict(section)
    retention = dict(RETENTION)
    for key in RETENTION:
        if section.get(key) is not None:
            retention[key] = as_int(p, join(path, key), section[key], 0) or 0
        written[key] = retention[key]
    if storage_type == "shared_fs":
        for key in section:
            if key in SHARED_FS_NO_EFFECT:
                p.no_effect.append(join(path, key))
        p.unknown_keys(
            path,
            section,
            ("type", "host_path", "storage_path", *SHARED_FS_NO_EFFECT, *RETENTION),
            "shared_fs storage",
        )
        host = _directory(p, join(path, "host_path"), section.get("host_path"), base_dir)
        target = host
        storage = section.get("storage_path")
        if host is not None and storage is not None:
            sub = as_str(p, join(path, "storage_path"), storage)
            if sub is not None:
                target = os.path.normpath(os.path.join(host, os.path.expanduser(sub)))
                if os.path.commonpath([host, target]) != host:
                    p.add(
                        join(path, "storage_path"),
                        f"must be a relative directory or a subdirectory of host_path "
                        f"(got {sub!r}, host_path {host!r}); make it relative to host_path",
                    )
        if host is not None:
            written["host_path"] = host
    else:
        p.unknown_keys(path, section, ("type", "container_path", *RETENTION), "directory storage")
        target = _directory(
            p, join(path, "container_path"), section.get("container_path"), base_dir
        )
        if target is not None:
            written["container_path"] = target
    if target is None or len(p.items) != errors:
        return None, written
    return CheckpointStorageConfig(path=target, type=storage_type, **retention), written


def _directory(p: Problems, path: str, value: Any, base_dir: str) -> str | None:
    if value is None:
        p.missing(
            path,
            path.rsplit(".", 1)[-1],
            "give a directory; relative paths start at the config file's folder",
        )
        return None
    text = as_str(p, path, value)
    if text is None:
        return None
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(text)))


def _warn(p: Problems, source: str) -> None:
    """One warning names every field ridgeline accepts but does not act on; then the notes."""
    parts = []
    if p.no_effect:
        parts.append(f"{', '.join(p.no_effect)} (cluster, container and UI settings)")
    if p.deprecated:
        parts.append(
            f"{', '.join(p.deprecated)} (deprecated in Determined: Trial API or removed "
            f"features; remove them)"
        )
    if parts:
        warnings.warn(
            f"{source}: accepted for compatibility with Determined but not acted on (no effect "
            f"in ridgeline): {'; '.join(parts)}",
            DeprecatedConfigWarning if p.deprecated else ConfigWarning,
            stacklevel=4,
        )
    for message, deprecated in p.notes:
        warnings.warn(
            f"{source}: {message}",
            DeprecatedConfigWarning if deprecated else ConfigWarning,
            stacklevel=4,
        )


# -- helpers for the runner and the CLI ---------------------------------------------------------


def grid_points(config: ExperimentConfig) -> list[dict[str, Any]]:
    """Every grid point of ``config`` (flattened dotted names), in Determined's trial order.

    Axes per REFERENCE 3.2: ``const`` one value, ``categorical`` all ``vals``, ``int`` up to
    ``count`` rounded points including the ends, ``double``/``log`` ``count`` points (``log``
    over evenly spaced exponents); ``count: 1`` is the midpoint. Determined pops points from
    the end of the cartesian product (names sorted, first name slowest), so the first point
    here is that product's last. With no hyperparameters there is none (0 trials).
    """
    p = Problems()
    _, flat = parse_hyperparameters(p, config.hyperparameters, grid=True)
    if p:
        raise InvalidConfig("grid search", p.messages({}))
    return grid_of(flat)


def describe_search(config: ExperimentConfig) -> list[str]:
    """Lines for ``ridgeline preview-search``: trials, lengths, concurrency, grid size."""
    return describe(config)
