"""Which backend runs a YAML experiment's trials, and the scheduler object that does it.

Three layers, each overriding the one before: the ``cluster:`` section of the user-level
config file (``paths.user_config_file()``), the experiment YAML (Determined's ``slurm:``
section; ridgeline's own ``sge:`` and ``dask:`` where Determined has none), and the command
line of ``experiment create`` (``--scheduler``, ``--cluster-option KEY=VALUE``). The choice
is made once, at create, and stored with the experiment, so a coordinator started later runs
its trials where the first one did, whatever the user config says by then.

Backends whose scheduler class this installation lacks are refused at create ("not available
in this version"); the check is an import, so a version that has the class runs them.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shlex
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ridgeline.config.checks import (
    Problems,
    as_bool,
    as_int,
    as_mapping,
    as_number,
    as_str,
    join,
    plain_copy,
    show,
    suggest,
)
from ridgeline.config.model import ConfigWarning
from ridgeline.engine.watchdog import DEFAULT_HEARTBEAT_SECONDS, heartbeat_setting
from ridgeline.errors import ConfigError, SchedulerError

__all__ = [
    "BACKENDS",
    "ClusterChoice",
    "check_backend",
    "check_cluster_sections",
    "load_user_cluster",
    "resolve_cluster",
    "scheduler_for",
    "shared_storage_warnings",
]

BACKENDS = ("local", "slurm", "sge", "dask")
#: Experiment-YAML sections that pick a backend, and the fields each takes.
SECTIONS: dict[str, tuple[str, ...]] = {
    # Determined's SlurmConfig, and slot_type (its resource manager's): cpu on GPU-less nodes
    # worker_jobs, worker_idle_seconds (also sge:): jobs that run trial after trial
    # (schedulers/workerpool.py)
    "slurm": (
        "sbatch_args",
        "gpu_type",
        "slots_per_node",
        "slot_type",
        "worker_jobs",
        "worker_idle_seconds",
    ),
    # parallel_environment: the one that spreads a trial across hosts (schedulers/sge.py)
    "sge": (
        "qsub_args",
        "slots_per_node",
        "slot_type",
        "parallel_environment",
        "worker_jobs",
        "worker_idle_seconds",
    ),
    "dask": ("address", "slots_per_node"),  # slots_per_node: see schedulers/daskgang.py
}
#: Fields of the user config's ``cluster:`` and of ``--cluster-option``, and their backends.
FIELDS: dict[str, tuple[str, ...]] = {
    "partition": ("slurm", "sge"),
    "sbatch_args": ("slurm",),
    "gpu_type": ("slurm",),
    "qsub_args": ("sge",),
    "environment": ("slurm", "sge"),
    "address": ("dask",),
    "slots_per_node": ("slurm", "sge", "dask"),
    "slot_type": ("slurm", "sge"),
    "parallel_environment": ("sge",),
    "worker_jobs": ("slurm", "sge"),
    "worker_idle_seconds": ("slurm", "sge"),
    "heartbeat_seconds": BACKENDS,  # silence before a trial is lost (ridgeline.engine.watchdog)
}
#: Where each cluster backend's scheduler class lives (module, class).
CLASSES = {
    "slurm": ("ridgeline.schedulers.slurm", "SLURMScheduler"),
    "sge": ("ridgeline.schedulers.sge", "SGEScheduler"),
    "dask": ("ridgeline.schedulers.dask", "DaskScheduler"),
}
NAMES = {"local": "local processes", "slurm": "SLURM", "sge": "Grid Engine", "dask": "Dask"}
SLOT_TYPES = ("gpu", "cpu")
#: Fields whose ``--cluster-option`` value is read as YAML (the rest are text).
YAML_VALUED = ("heartbeat_seconds", "slots_per_node", "worker_jobs", "worker_idle_seconds")
#: Folders that are private to one machine: a cluster's other nodes do not see them.
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run/user")


@dataclass(frozen=True)
class ClusterChoice:
    """The backend that runs the trials and its settings, with where the backend was chosen
    (``default``, the user config file, ``experiment config`` or ``command line``)."""

    backend: str = "local"
    partition: str | None = None
    sbatch_args: list[str] = field(default_factory=list)
    gpu_type: str | None = None
    slots_per_node: int | None = None
    slot_type: str = "gpu"
    qsub_args: list[str] = field(default_factory=list)
    parallel_environment: str | None = None
    environment: str = ""
    address: str | None = None
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS  # 0.0: off
    worker_jobs: bool = False
    worker_idle_seconds: float | None = None  # None: the scheduler's default
    chosen_by: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ClusterChoice:
        """The stored choice; experiments created before clusters run locally."""
        return cls(**dict(data)) if data else cls()

    def nodes(self, slots_per_trial: int) -> tuple[int, int]:
        """How many nodes a trial's job spans, and its slots on each: one node unless
        ``slots_per_node`` is below ``slots_per_trial`` (SLURM, Grid Engine; the check at create
        makes it divide evenly). Dask places its gangs itself (schedulers/daskgang.py)."""
        per_node = self.slots_per_node
        if self.backend not in ("slurm", "sge") or not per_node or slots_per_trial <= per_node:
            return 1, max(slots_per_trial, 1)
        return slots_per_trial // per_node, per_node

    def submit_args(self, slots_per_trial: int) -> list[str]:
        """The options handed to ``sbatch``/``qsub``: partition first, then GPUs (per node,
        as SLURM counts them) or CPUs, then the user's own arguments (the later option wins on
        both tools' command lines)."""
        if self.backend == "slurm":
            args = [f"--partition={self.partition}"] if self.partition else []
            _, per_node = self.nodes(slots_per_trial)
            if self.slot_type == "cpu" and slots_per_trial > 0:
                args.append(f"--cpus-per-task={per_node}")
            elif self.gpu_type and slots_per_trial > 0:
                args.append(f"--gres=gpu:{self.gpu_type}:{per_node}")
            return args + list(self.sbatch_args)
        if self.backend == "sge":
            return (["-q", self.partition] if self.partition else []) + list(self.qsub_args)
        return []

    def describe(self, slots_per_trial: int) -> str:
        """One line for ``preview-search`` and ``experiment describe``."""
        if self.backend == "local":
            text = "local processes on the coordinator's machine"
        elif self.backend == "dask":
            text = f"Dask workers of the cluster at {self.address}"
        else:
            tool = "sbatch" if self.backend == "slurm" else "qsub"
            args = self.submit_args(slots_per_trial)
            nodes, per_node = self.nodes(slots_per_trial)
            gpus = slots_per_trial > 0 and self.slot_type == "gpu" and not self.gpu_type
            if self.backend == "slurm" and gpus:
                args = [f"--gres=gpu:{per_node}", *args]
            if nodes > 1 and self.backend == "slurm":
                args = [f"--nodes={nodes}", "--ntasks-per-node=1", *args]
            elif nodes > 1:
                args = ["-pe", str(self.parallel_environment), str(nodes), *args]
            shown = f" ({tool} {shlex.join(args)})" if args else f" ({tool})"
            text = f"{NAMES[self.backend]} jobs{shown}"
            if self.worker_jobs:
                idle = self.worker_idle_seconds
                text = (
                    f"{NAMES[self.backend]} worker jobs{shown}, each running trials one after "
                    f"another" + (f" (one idle {idle:g} s ends)" if idle else "")
                )
        beat = self.heartbeat_seconds
        lost = f"lost after {beat:g} s of silence" if beat else "never lost (heartbeat off)"
        return f"{text}; chosen by {self.chosen_by}; trials {lost}"


# -- the experiment YAML ------------------------------------------------------------------------


def check_cluster_sections(p: Problems, cfg: Mapping[str, Any], slots_per_trial: int) -> None:
    """Check ``slurm:``/``sge:``/``dask:`` (Determined's types) and refuse ``pbs:``."""
    if "pbs" in cfg:
        p.add(
            "pbs",
            "PBS is not a backend ridgeline runs trials on; use slurm: (sbatch_args, gpu_type, "
            "slots_per_node), sge: {qsub_args} or dask: {address}, or remove pbs:",
        )
    given = [name for name in SECTIONS if name in cfg]
    if len(given) > 1:
        p.add(
            given[1],
            f"only one cluster backend per experiment (got {', '.join(given)}); keep one",
        )
    for name in given:
        section = as_mapping(p, name, cfg[name], _example(name))
        if section is None:
            continue
        p.unknown_keys(name, section, SECTIONS[name], f"{name}:")
        fields = _fields(p, name, section)
        per_node = fields.get("slots_per_node")
        if per_node is not None and slots_per_trial > per_node and fields.get("worker_jobs"):
            p.add(
                join(name, "worker_jobs"),
                f"a worker job runs trials of one node, but a trial of {slots_per_trial} "
                f"slots at {per_node} per node spans several; drop worker_jobs or raise "
                f"slots_per_node",
            )
        if per_node is not None and slots_per_trial > per_node and slots_per_trial % per_node:
            p.add(
                join(name, "slots_per_node"),
                f"is {per_node}, which does not divide resources.slots_per_trial "
                f"({slots_per_trial}); a trial across nodes takes the same slots on each: "
                f"make slots_per_trial a multiple of slots_per_node",
            )


def _example(name: str) -> str:
    return {
        "slurm": 'e.g. slurm: {sbatch_args: ["--partition=gpu"]}',
        "sge": 'e.g. sge: {qsub_args: ["-q", "all.q"]}',
        "dask": "e.g. dask: {address: tcp://scheduler:8786, slots_per_node: 4}",
    }[name]


def _fields(p: Problems, where: str, section: Mapping[str, Any]) -> dict[str, Any]:
    """The typed values of the fields of ``section`` that ``FIELDS``/``SECTIONS`` know."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        path = join(where, key)
        if value is None:
            continue
        if key in ("sbatch_args", "qsub_args"):
            args = _args(p, path, value)
            if args is not None:
                out[key] = args
        elif key in ("partition", "gpu_type", "address", "environment", "parallel_environment"):
            text = as_str(p, path, value)
            if text is not None:
                out[key] = text
        elif key == "slots_per_node":
            number = as_int(p, path, value, 1)
            if number is not None:
                out[key] = number
        elif key == "slot_type":
            if value in SLOT_TYPES:
                out[key] = value
            else:
                p.bad(path, " or ".join(SLOT_TYPES), value, "cpu: each slot is a CPU")
        elif key == "worker_jobs":
            flag = as_bool(p, path, value)
            if flag is not None:
                out[key] = flag
        elif key == "worker_idle_seconds":
            seconds = as_number(p, path, value)
            if seconds is not None and seconds <= 0:
                p.bad(path, "a positive number of seconds", value, "e.g. 60")
            elif seconds is not None:
                out[key] = float(seconds)
        elif key == "heartbeat_seconds":
            try:
                out[key] = heartbeat_setting(value, path or key)
            except ConfigError as exc:
                p.add(path, str(exc).removeprefix(f"{path} "))
    return out


def _args(p: Problems, path: str, value: Any) -> list[str] | None:
    """A list of strings (Determined's type). In the user config and on the command line a
    single string is split as a shell would split it."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if isinstance(value, str) and not path.startswith(("slurm.", "sge.")):
        try:
            return shlex.split(value)
        except ValueError as exc:
            p.add(path, f"cannot be split into arguments: {exc} (got {show(value)})")
            return None
    p.bad(path, "a list of strings", value, 'e.g. ["--partition=gpu", "--time=60"]')
    return None


# -- the user config file -----------------------------------------------------------------------


def load_user_cluster(path: Path | None = None) -> tuple[dict[str, Any], str]:
    """The validated ``cluster:`` defaults of the user config file, and the file's name; an
    absent file gives none. A bad file is a ConfigError naming the file and the line."""
    from ridgeline.config.yamlio import read_user_config  # lazy: ridgeline.config.yamlio loads yaml

    data, lines, fatal, shown = read_user_config(path)
    if data is None and not fatal:
        return {}, shown
    p = Problems()
    for message in fatal:
        p.add("", message)
    if data is not None and not isinstance(data, dict):
        p.bad("", "a mapping such as cluster: {backend: slurm}", data)
    section: dict[str, Any] = {}
    if isinstance(data, dict):
        data = plain_copy(p, data) or {}
        # coordinator: is read by ridgeline.config.network
        p.unknown_keys("", data, ("cluster", "coordinator"), "the ridgeline config file")
        found = as_mapping(p, "cluster", data.get("cluster"), "e.g. cluster: {backend: slurm}")
        section = found or {}
        p.unknown_keys("cluster", section, ("backend", *FIELDS))
        backend = section.get("backend")
        if backend is not None and backend not in BACKENDS:
            _bad_backend(p, "cluster.backend", backend)
        section = {**_fields(p, "cluster", section), "backend": backend}
    if p:
        problems = "\n".join(f"  - {m}" for m in p.messages(lines))
        raise ConfigError(f"{shown}: problems in the ridgeline config file:\n{problems}")
    return {k: v for k, v in section.items() if v is not None}, shown


def _bad_backend(p: Problems, path: str, value: Any) -> None:
    hint = suggest(str(value), BACKENDS)
    fix = f"did you mean {hint!r}?" if hint else f"use one of {', '.join(BACKENDS)}"
    p.add(path, f"unknown backend (got {show(value)}); {fix}")


# -- the three layers ---------------------------------------------------------------------------


def resolve_cluster(
    raw: Mapping[str, Any],
    scheduler: str | None = None,
    options: Sequence[str] = (),
    user_file: Path | None = None,
) -> ClusterChoice:
    """The backend for an experiment whose validated config is ``raw``: user config file,
    overridden by the YAML, overridden by ``scheduler`` and ``options`` (``KEY=VALUE``
    strings, YAML values) from the command line. Refuses a backend this version lacks."""
    user, user_name = load_user_cluster(user_file)
    user_backend = user.pop("backend", None)
    backend = user_backend or "local"
    chosen_by = f"the ridgeline config file {user_name}" if user_backend else "default"
    values: dict[str, Any] = dict(user)
    for name in SECTIONS:
        if isinstance(raw.get(name), dict) or name in raw:
            backend, chosen_by = name, "the experiment config"
            p = Problems()
            values.update(_fields(p, name, raw.get(name) or {}))
    if scheduler is not None:
        if scheduler not in BACKENDS:
            raise ConfigError(
                f"--scheduler {scheduler!r}: unknown backend; use one of {', '.join(BACKENDS)}"
            )
        backend, chosen_by = scheduler, "the command line"
    values.update(_cli_options(options, backend))
    for key in [k for k in values if backend not in FIELDS.get(k, (backend,))]:
        values.pop(key)  # defaults for another backend
    if backend == "dask" and not values.get("address"):
        raise ConfigError(
            "the dask backend needs the address of a running dask.distributed scheduler: "
            "dask: {address: tcp://HOST:8786} in the experiment config, address under "
            "cluster: in the ridgeline config file, or --cluster-option address=tcp://HOST:8786"
        )
    choice = ClusterChoice(backend=backend, chosen_by=chosen_by, **values)
    _check_available(backend)
    return choice


def _cli_options(options: Sequence[str], backend: str) -> dict[str, Any]:
    from ridgeline.config.yamlio import _value  # lazy: ridgeline.config.yamlio loads yaml

    p = Problems()
    given: dict[str, Any] = {}
    for option in options:
        key, sep, text = option.partition("=")
        key = key.strip()
        if not sep or key not in FIELDS:
            hint = suggest(key, FIELDS) if sep else None
            fix = f"did you mean {hint!r}?" if hint else f"keys: {', '.join(FIELDS)}"
            p.add(f"--cluster-option {option!r}", f"must be KEY=VALUE with a known key; {fix}")
            continue
        if backend not in FIELDS[key]:
            p.add(
                f"--cluster-option {key}",
                f"applies to {' and '.join(FIELDS[key])}, not to the {backend} backend",
            )
            continue
        try:
            yaml_value = key.endswith("_args") or key in YAML_VALUED
            given[key] = _value(text) if yaml_value else text  # the rest: text
        except Exception as exc:  # noqa: BLE001 - any YAML error is the user's value
            p.add(f"--cluster-option {key}", f"cannot be read as YAML: {exc}")
    values = _fields(p, "", given)
    if p:
        raise ConfigError("\n".join(message for _, message in _plain(p)))
    return values


def _plain(p: Problems) -> list[tuple[str, str]]:
    return [(path, f"{path}: {message}" if path else message) for path, message in p.items]


def _check_available(backend: str) -> None:
    if backend == "local":
        return
    module, name = CLASSES[backend]
    try:
        getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ConfigError(
            f"the {backend} backend ({NAMES[backend]}) is not available in this version of "
            f"ridgeline; use slurm or local"
        ) from None


# -- at create and at run -----------------------------------------------------------------------


def shared_storage_warnings(choice: ClusterChoice, paths: Mapping[str, str | None]) -> None:
    """Warn about each of ``paths`` (what -> path) that a cluster's other nodes may not see."""
    if choice.backend == "local":
        return
    for what, path in paths.items():
        if not path:
            continue
        real = os.path.realpath(path)
        local = next((p for p in NODE_LOCAL if real == p or real.startswith(p + "/")), None)
        if local is not None:
            warnings.warn(
                f"the {what} {path} is under {local}, which is local to this machine: "
                f"{NAMES[choice.backend]} runs trials on other nodes, which would not see it; "
                f"put it on a filesystem every node mounts (it runs here only if the trials "
                f"land on this machine)",
                ConfigWarning,
                stacklevel=3,
            )


def check_backend(choice: ClusterChoice, slots_per_trial: int) -> None:
    """Ask a cluster backend whether it takes the experiment's jobs (``sbatch --test-only``
    for SLURM), so bad options are refused at create rather than by failing trials."""
    import tempfile  # lazy: keeps `import ridgeline.config` light

    if choice.backend == "local":
        return
    nodes = choice.nodes(slots_per_trial)[0]
    if choice.backend == "sge" and nodes > 1 and not choice.parallel_environment:
        raise ConfigError(
            f"a trial of {slots_per_trial} slots at {choice.slots_per_node} per node spans "
            f"{nodes} Grid Engine hosts, which needs the parallel environment that places one "
            f"slot per host: sge: {{parallel_environment: NAME}} in the experiment config, "
            f"parallel_environment under cluster: in the ridgeline config file, or "
            f"--cluster-option parallel_environment=NAME (qconf -spl lists them)"
        )
    with tempfile.TemporaryDirectory() as scratch:
        scheduler = scheduler_for(choice.to_dict(), scratch, slots_per_trial, lambda: None)
        try:
            scheduler.check()
        except SchedulerError as exc:
            gpus = (
                f"; resources.slots_per_trial is {slots_per_trial}, the GPUs each job asks for "
                f"(0 for CPU-only trials)"
                if slots_per_trial and choice.slot_type == "gpu"
                else ""
            )
            raise SchedulerError(
                f"{exc}\n(the {choice.backend} backend was chosen by {choice.chosen_by}; "
                f"--scheduler local runs the trials on this machine{gpus})"
            ) from None
        finally:
            scheduler.close()


def scheduler_for(
    stored: Mapping[str, Any] | None, output_dir: str, slots_per_trial: int, local: Any
) -> Any:
    """The scheduler object for a stored choice; ``local`` builds the LocalScheduler (its
    GPU groups are the coordinator machine's business)."""
    choice = ClusterChoice.from_dict(stored)
    if choice.backend == "local":
        return local()
    _check_available(choice.backend)
    module, name = CLASSES[choice.backend]
    cls = getattr(importlib.import_module(module), name)
    if choice.backend == "dask":
        return _build(
            cls,
            address=choice.address,
            output_dir=output_dir,
            gpus=slots_per_trial,
            slots_per_node=choice.slots_per_node,
        )
    # the typed --gres, or --cpus-per-task, is in the options
    gpus = 0 if choice.gpu_type or choice.slot_type == "cpu" else slots_per_trial
    args = choice.submit_args(slots_per_trial)
    if choice.backend == "sge" and gpus and not _gpu_parameter(cls):
        args, gpus = ["-l", f"gpu={gpus}", *args], 0  # Grid Engine's usual GPU resource
    nodes, per_node = choice.nodes(slots_per_trial)
    return _build(
        cls,
        submit_options=shlex.join(args),
        environment=choice.environment,
        output_dir=output_dir,
        gpus=gpus,
        nodes=nodes,
        slots_per_node=per_node,
        parallel_environment=choice.parallel_environment or "",
        worker_jobs=choice.worker_jobs,
        **({"worker_idle_seconds": idle} if (idle := choice.worker_idle_seconds) else {}),
    )


def _gpu_parameter(cls: Any) -> str | None:
    """The name under which ``cls`` takes the GPUs per trial, if it takes them."""
    accepted = inspect.signature(cls).parameters
    return next((name for name in ("gpus_per_trial", "gpus") if name in accepted), None)


def _build(cls: Any, gpus: int, **kwargs: Any) -> Any:
    """``cls(**kwargs)``, with the GPUs per trial under the name the class takes."""
    accepted = inspect.signature(cls).parameters
    name = _gpu_parameter(cls)
    if name is not None:
        kwargs[name] = gpus
    elif gpus:
        raise ConfigError(
            f"{cls.__name__} cannot give trials GPUs in this version; set "
            f"resources.slots_per_trial: 0"
        )
    return cls(**{k: v for k, v in kwargs.items() if k in accepted})
