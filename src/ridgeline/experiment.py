"""YAML experiments (the Core-API front door): create, run, resume.

``Experiment.from_yaml("cfg.yaml", ".").run()`` runs one in this process; the CLI creates it
and starts the same coordinator as a detached process (``ridgeline.engine.daemon``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.config import load_config, nest_params, parse_config
from ridgeline.config.cluster import (
    ClusterChoice,
    check_backend,
    resolve_cluster,
    scheduler_for,
    shared_storage_warnings,
)
from ridgeline.config.entrypoint import own_command
from ridgeline.config.network import NetworkChoice, resolve_network
from ridgeline.config.searcher import budget, spec_for, time_mode
from ridgeline.engine.engine import Engine, new_seed
from ridgeline.engine.progress import length_unit
from ridgeline.engine.run import (
    Progress,
    rebuild_results,
    release_quietly,
    run_coordinator,
    setup_logging,
)
from ridgeline.engine.source_checkpoint import adopt_checkpoint, find_source
from ridgeline.errors import ConfigError, LeaseHeld
from ridgeline.integrations.mlflow import tracking_uri as mlflow_tracking_uri
from ridgeline.integrations.tensorboard import wanted as tensorboard_wanted
from ridgeline.paths import COORDINATOR_STORAGE_ENV, default_storage, new_experiment_dir
from ridgeline.results import ResultsTable
from ridgeline.schedulers.local import LocalScheduler, gpu_ids
from ridgeline.snapshot import take_snapshot
from ridgeline.store import open_store
from ridgeline.store.base import Store
from ridgeline.store.lease import describe_holder, holder_pid, lease_ttl, this_holder
from ridgeline.store.records import ACTIVE, CANCELED, COMPLETED, PAUSED, ExperimentRecord
from ridgeline.trial import env as trial_env

if TYPE_CHECKING:
    from ridgeline.config import ExperimentConfig
    from ridgeline.engine.coordinator import Coordinator
    from ridgeline.schedulers.base import Scheduler
    from ridgeline.searchers.base import Searcher

log = logging.getLogger("ridgeline")
FRONT_DOOR = "core"
UNLIMITED = 1 << 30


class Experiment:
    """An experiment defined by a YAML file (or the same mapping in Python)."""

    def __init__(
        self,
        config: ExperimentConfig,
        context_dir: str | os.PathLike[str] | None = None,
        storage: str | None = None,
    ) -> None:
        self.config = config
        self.context_dir = Path(context_dir).resolve() if context_dir is not None else None
        self.storage = default_storage(storage)
        self.id: int | None = None

    @classmethod
    def from_yaml(
        cls,
        path: str | os.PathLike[str],
        context_dir: str | os.PathLike[str] | None = None,
        overrides: Sequence[str] = (),
        storage: str | None = None,
    ) -> Experiment:
        config = load_config(path, overrides, context_dir=context_dir)
        return cls(config, context_dir, storage)

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        context_dir: str | os.PathLike[str] | None = None,
        storage: str | None = None,
    ) -> Experiment:
        base = str(Path(context_dir or ".").resolve())
        config = parse_config(data, "<dict>", base, context_dir=context_dir)
        return cls(config, context_dir, storage)

    def create(
        self,
        paused: bool = False,
        warm_start: Sequence[int] = (),
        scheduler: str | None = None,
        cluster_options: Sequence[str] = (),
        bind: str | None = None,
        advertise: str | None = None,
        tls: bool | None = None,
    ) -> int:
        """Record the experiment and snapshot its context; nothing runs yet.

        ``warm_start``: ids of earlier experiments over the same hyperparameters; their
        completed trials are recorded first as finished trials that model-based searchers
        learn from (they spend none of the budget). ``scheduler`` (local, slurm, sge, dask)
        and ``cluster_options`` (``KEY=VALUE``) override the backend that the user config
        file and the config choose (``ridgeline.config.cluster``). ``bind``, ``advertise``
        and ``tls`` override the user config file's ``coordinator:`` settings
        (``ridgeline.config.network``); the choice is stored, so resumes listen alike."""
        build_searcher(self.config)  # refuse searchers this version cannot run, before anything

        cluster = resolve_cluster(self.config.raw, scheduler, cluster_options)
        network = resolve_network(bind, advertise, tls, "the experiment create options")
        check_backend(cluster, self.config.slots_per_trial)
        warm_start = [int(i) for i in warm_start]
        folder = new_experiment_dir()
        storage = self.config.checkpoint_storage
        shared_storage_warnings(
            cluster,
            {
                "output folder": str(folder),
                "context folder": str(self.context_dir) if self.context_dir else None,
                "checkpoint storage": storage.path if storage else None,
            },
        )
        try:
            if self.context_dir is not None:
                take_snapshot(self.context_dir, folder / "context")
            store = open_store(self.storage)
            try:
                for source in warm_start:
                    _find(store, source)  # an unknown id is an error now, not at run time
                start = _source_checkpoint(store, self.config, folder)
                seed = self.config.experiment_seed
                if seed is None:
                    seed = new_seed()
                record = store.create_experiment(
                    self.config.name,
                    {
                        "front_door": FRONT_DOOR,
                        "raw": self.config.raw,
                        "seed": seed,
                        "token": secrets.token_urlsafe(24),
                        "output_dir": str(folder),
                        "context": str(folder / "context") if self.context_dir else None,
                        "workdir": str(self.context_dir or Path.cwd()),
                        "warm_start": warm_start,
                        "source_checkpoint": start,
                        "cluster": cluster.to_dict(),
                        "network": network.to_dict(),
                    },
                    state=PAUSED if paused else ACTIVE,
                )
            finally:
                store.close()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.id = record.id
        return record.id

    def run(self, verbose: int = 1, scheduler: Scheduler | None = None) -> dict[str, Any]:
        """Create (if needed) and run to the end in this process; returns the best result.
        ``scheduler``: where trials run, instead of the backend the config chooses (e.g. a
        ``SimulatedScheduler``, whose trials train on simulated time)."""
        if self.id is None:
            self.create()
        assert self.id is not None
        return run_experiment(self.id, self.storage, verbose=verbose, scheduler=scheduler)


def build_searcher(config: ExperimentConfig) -> Searcher:
    """The searcher a config asks for; searchers this version lacks are a ConfigError."""
    return spec_for(config.searcher.name).build(config)


def _source_checkpoint(store: Store, config: ExperimentConfig, folder: Path) -> str | None:
    """The checkpoint every trial starts from (``searcher.source_trial_id`` or
    ``source_checkpoint_uuid``), copied into this experiment's checkpoint storage; None
    without one. An unknown checkpoint is a ConfigError now, not when trials run."""
    searcher = config.searcher
    record = find_source(store, searcher.source_trial_id, searcher.source_checkpoint_uuid)
    if record is None:
        return None
    storage = config.checkpoint_storage
    adopt_checkpoint(store, record, Path(storage.path) if storage else folder / "checkpoints")
    return record.uuid


def _trial_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number) % (1 << 31)


def _gpu_groups(slots_per_trial: int) -> list[str] | None:
    """GPU ids grouped ``slots_per_trial`` to an entry, or None when there is no GPU."""
    ids = gpu_ids()
    if not ids or slots_per_trial < 1:
        return None
    groups = [ids[i : i + slots_per_trial] for i in range(0, len(ids), slots_per_trial)]
    groups = [g for g in groups if len(g) == slots_per_trial]
    if not groups:
        raise ConfigError(
            f"resources.slots_per_trial is {slots_per_trial} but this machine has "
            f"{len(ids)} GPU(s); lower slots_per_trial"
        )
    return [",".join(g) for g in groups]


def determined_launchers() -> str | None:
    """The folder that gives trials ``python3 -m determined.launch.*`` (ridgeline's
    launchers), or None when Determined itself is installed."""
    if importlib.util.find_spec("determined") is not None:
        return None
    return str(Path(__file__).parent / "launch" / "determined_shim")


def cpu_cores() -> int:
    """The CPU cores this process may run on: how many trials run at once on a machine
    without GPUs when the config sets no ``max_concurrent_trials`` (16 training processes
    on 2 cores only slow each other down)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _find(store: Store, experiment_id: int) -> ExperimentRecord:
    record = store.get_experiment(experiment_id)
    if record.config.get("front_door") != FRONT_DOOR:
        raise ConfigError(
            f"experiment {experiment_id} was not created from a config file; "
            f"resume it with optimize(..., resume=True)"
        )
    return record


def make_coordinator(
    store: Store, experiment: ExperimentRecord, scheduler: Scheduler | None = None
) -> Coordinator:
    """The coordinator of a stored experiment; ``scheduler`` None: the config's backend."""
    # lazy: ridgeline.engine.coordinator loads aiohttp
    from ridgeline.engine.coordinator import CORE, Coordinator, RunSettings

    stored = experiment.config
    workdir = stored["workdir"]
    config = parse_config(stored["raw"], f"experiment {experiment.id}", workdir, warn=False)
    out = Path(stored["output_dir"])
    searcher_config = config.searcher
    lower = bool(searcher_config.smaller_is_better)
    engine = Engine(
        store,
        experiment.id,
        config.space,
        build_searcher(config),
        lower,
        int(stored["seed"]),
        searcher_group="searcher",
        source_checkpoint=stored.get("source_checkpoint"),
    )
    checkpoint_dir = (
        Path(config.checkpoint_storage.path) if config.checkpoint_storage else out / "checkpoints"
    )
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    context = Path(stored["context"]) if stored.get("context") else None
    user_data = json.dumps(config.data)
    cluster = stored.get("cluster") or {}
    on_cluster = cluster.get("backend", "local") != "local"
    # A cluster gives each job its GPUs; locally the machine's GPUs are grouped per trial.
    gpu_groups = None if on_cluster else _gpu_groups(config.slots_per_trial)
    # Every trial gets GPU ids when there are groups (the scheduler hands one to each), else
    # it runs on the CPU: the config's per-device variables follow.
    on_gpu = config.slots_per_trial > 0 if on_cluster else bool(gpu_groups)
    environment = config.environment_for("cuda" if on_gpu else "cpu")
    # The length of a trial's operations: 0.38-style ASHA gives one, to max_time.
    timed = time_mode(searcher_config)
    launcher_path = determined_launchers()
    op_length = timed[1] if timed is not None else searcher_config.max_length

    def trial_env_for(record: Any) -> dict[str, str | None]:
        extra = dict(environment)
        extra.update(
            {
                trial_env.HPARAMS: json.dumps(nest_params(record.params)),
                trial_env.TRIAL_SEED: str(_trial_seed(int(stored["seed"]), record.number)),
                trial_env.USER_DATA: user_data,
                trial_env.MAX_LENGTH: "" if op_length is None else str(op_length),
                trial_env.LENGTH_UNIT: searcher_config.length_unit or "",
                trial_env.SLOTS_PER_TRIAL: str(max(1, config.slots_per_trial)),
            }
        )
        if launcher_path is not None:
            extra["PYTHONPATH"] = os.pathsep.join(
                p
                for p in (launcher_path, extra.get("PYTHONPATH", os.environ.get("PYTHONPATH")))
                if p
            )
        return extra

    def trial_cwd(record: Any) -> str:
        folder = out / "trials" / str(record.number)
        if not folder.exists():
            if context is not None:
                shutil.copytree(context, folder)
            else:
                folder.mkdir(parents=True)
        return str(folder)

    retention = {"save_trial_latest": 1, "save_trial_best": 1, "save_experiment_best": 0}
    if config.checkpoint_storage is not None:
        retention = {
            "save_trial_latest": config.checkpoint_storage.save_trial_latest,
            "save_trial_best": config.checkpoint_storage.save_trial_best,
            "save_experiment_best": config.checkpoint_storage.save_experiment_best,
        }
    settings = RunSettings(
        front_door=CORE,
        max_restarts=config.max_restarts,
        max_consecutive_failures=config.max_consecutive_failures,
        checkpoint_dir=checkpoint_dir,
        searcher_metric=searcher_config.metric,
        smaller_is_better=lower,
        trial_env=trial_env_for,
        trial_cwd=trial_cwd,
        retention=retention,
        max_length=op_length,
        time_metric=timed[0] if timed is not None else None,
        heartbeat_seconds=ClusterChoice.from_dict(cluster).heartbeat_seconds,
        tensorboard=tensorboard_wanted(),
        mlflow_tracking_uri=mlflow_tracking_uri(),
    )
    # Local processes share the cores; a scheduler given here bounds trials by its capacity().
    on_cores = scheduler is None and gpu_groups is None and not on_cluster
    if scheduler is None:
        scheduler = scheduler_for(
            cluster,
            str(out),
            config.slots_per_trial,
            lambda: LocalScheduler(output_dir=str(out), resources=gpu_groups),
        )
    elif not scheduler.output_dir:
        scheduler.output_dir = str(out)
    concurrency = searcher_config.max_concurrent_trials or UNLIMITED
    if searcher_config.name == "single":
        concurrency = 1
    elif on_cores and not searcher_config.concurrency_given:
        # Each trial runs a process per slot: as many trials as there are cores for them.
        concurrency = min(concurrency, max(1, cpu_cores() // max(1, config.slots_per_trial)))
    return Coordinator(
        engine,
        scheduler,
        own_command(config.entrypoint),
        out,
        concurrency,
        stored["token"],
        ResultsTable(lower),
        grace_period=10.0,
        port=(experiment.coordinator or {}).get("port", 0),
        settings=settings,
        network=NetworkChoice.from_dict(stored.get("network")),
    )


def run_experiment(
    experiment_id: int,
    storage: str | None = None,
    verbose: int = 1,
    scheduler: Scheduler | None = None,
) -> dict[str, Any]:
    """Run (or carry on) a stored experiment's coordinator in this process until it ends;
    ``scheduler`` None: the backend its config chose."""
    store = open_store(default_storage(storage))
    token: int | None = None
    try:
        _find(store, experiment_id)
        token = store.acquire_lease(experiment_id, this_holder(), lease_ttl())
        experiment = _find(store, experiment_id)  # as the previous holder left it
        if experiment.state in (COMPLETED, CANCELED):
            raise ConfigError(f"experiment {experiment_id} has already ended ({experiment.state})")
        out = Path(experiment.config["output_dir"])
        setup_logging(out, verbose)
        coordinator = make_coordinator(store, experiment, scheduler)
        resuming = bool(store.list_trials(experiment_id))
        if resuming:
            coordinator.engine.resume()
            rebuild_results(store, coordinator.engine)
        else:
            for source in experiment.config.get("warm_start") or ():
                _import_results(store, source, coordinator)
        progress = None
        if verbose and sys.stderr.isatty():
            searcher = experiment.config.get("raw", {}).get("searcher", {})
            progress = Progress(*budget(searcher), unit=length_unit(searcher))
            coordinator.on_progress = progress.update
            progress.start(coordinator)
        try:
            run_coordinator(coordinator, resuming)
        finally:
            if progress:
                progress.stop()
        coordinator.conclude(f"experiment {experiment_id}")
        return coordinator.results.best()
    finally:
        if token is not None:
            release_quietly(store, experiment_id, token)
        store.close()


def _import_results(store: Store, source: int, coordinator: Coordinator) -> None:
    """Record the completed trials of experiment ``source`` (its best searcher metric each)."""
    engine = coordinator.engine
    lower = engine.history.lower_is_better
    names = engine.space.names
    imported = 0
    for trial in store.list_trials(source):
        if trial.state != COMPLETED or any(n not in trial.params for n in names):
            continue
        values = [
            m.values.get("objective")
            for m in store.trial_metrics(trial.id, engine.searcher_group)
            if isinstance(m.values.get("objective"), int | float)
        ]
        finite = [float(v) for v in values if math.isfinite(v)]  # type: ignore[arg-type]
        if not finite:
            continue
        value = min(finite) if lower else max(finite)
        engine.import_result({n: trial.params[n] for n in names}, value)  # results follow
        imported += 1
    log.info("Warm start: %d results from experiment %d", imported, source)


def launch_detached(experiment_id: int, storage: str | None = None) -> int:
    """Start the experiment's coordinator as a process that outlives this one; its pid."""
    return start_detached(experiment_id, storage).pid


def start_detached(experiment_id: int, storage: str | None = None) -> subprocess.Popen[bytes]:
    """Start the experiment's coordinator as a process that outlives this one."""
    storage = default_storage(storage)
    store = open_store(storage)
    try:
        out = Path(_find(store, experiment_id).config["output_dir"])
    finally:
        store.close()
    env = {**os.environ, COORDINATOR_STORAGE_ENV: storage}  # not argv: see engine.daemon
    with open(out / "coordinator.log", "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ridgeline.engine.daemon", str(experiment_id)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(out),
        )
    return process


def wait_for_lease(
    store: Store, experiment_id: int, process: subprocess.Popen[bytes], timeout: float = 60.0
) -> None:
    """Wait until the coordinator ``process`` holds the experiment's lease (or has already run
    the experiment to its end).

    Raises ``LeaseHeld`` naming the holder when another coordinator holds it (the process then
    exits by itself), ``ConfigError`` when the process ended without taking it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lease = store.get_lease(experiment_id)
        ours = lease is not None and lease.holder and holder_pid(lease.holder) == process.pid
        if ours and lease is not None and lease.live():
            return
        code = process.poll()
        if code == 0:  # it ran the experiment to its end already
            return
        if code is not None:
            lease = store.get_lease(experiment_id)
            if lease is not None and lease.live() and lease.holder:
                raise LeaseHeld(
                    f"experiment {experiment_id} already has a running coordinator on "
                    f"{describe_holder(lease.holder)} (lease {lease.token}); this one exited",
                    lease.holder,
                    lease.expires_at,
                )
            out = Path(_find(store, experiment_id).config["output_dir"])
            raise ConfigError(
                f"the coordinator of experiment {experiment_id} exited with code {code}; "
                f"see {out / 'coordinator.log'}"
            )
        time.sleep(0.1)
    raise ConfigError(
        f"the coordinator of experiment {experiment_id} (pid {process.pid}) did not take the "
        f"experiment's lease within {timeout:.0f} s; see "
        f"{Path(_find(store, experiment_id).config['output_dir']) / 'coordinator.log'}"
    )
