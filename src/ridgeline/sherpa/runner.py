"""``optimize()``: the runner-script entry (the module is not named optimize, so that importing
it never hides the function on the package). Starts a coordinator that launches trial scripts."""

from __future__ import annotations

import logging
import os
import random
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.config.network import resolve_network
from ridgeline.engine.engine import Engine
from ridgeline.engine.run import (
    Progress,
    rebuild_results,
    release_quietly,
    run_coordinator,
    setup_logging,
)
from ridgeline.engine.watchdog import DEFAULT_HEARTBEAT_SECONDS, heartbeat_setting
from ridgeline.errors import ConfigError, ExperimentExists
from ridgeline.integrations.mlflow import tracking_uri as mlflow_uri
from ridgeline.results import ResultsTable, earlier_results
from ridgeline.samplers.base import History
from ridgeline.schedulers.base import Scheduler
from ridgeline.schedulers.polling import as_scheduler
from ridgeline.sherpa.algorithms.core import trial_cap
from ridgeline.sherpa.build import build_searcher, build_space, describe
from ridgeline.sherpa.seeding import next_seed
from ridgeline.space import Parameter
from ridgeline.store import open_store
from ridgeline.store.base import Store
from ridgeline.store.lease import lease_ttl, this_holder
from ridgeline.store.records import (
    ACTIVE,
    ExperimentRecord,
)
from ridgeline.values import whole_number

if TYPE_CHECKING:
    from ridgeline.sherpa.algorithms import Algorithm
    from ridgeline.sherpa.stopping import StoppingRule

log = logging.getLogger("ridgeline")
_IMPORT_TIME = time.strftime("%Y%m%d-%H%M%S")


def optimize(
    parameters: Sequence[Parameter],
    algorithm: Algorithm,
    lower_is_better: bool,
    scheduler: Scheduler | Any,
    command: str | Sequence[str] | None = None,
    filename: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    max_concurrent: int = 1,
    db_port: int | None = None,
    stopping_rule: StoppingRule | None = None,
    dashboard_port: int | None = None,
    resubmit_failed_trials: bool = False,
    verbose: int = 1,
    load: bool = False,
    mongodb_args: dict[str, Any] | None = None,
    disable_dashboard: bool = False,
    seed: int | None = None,
    resume: bool = False,
    storage: str | None = None,
    grace_period: float = 10.0,
    host: str | None = None,
    port: int | None = None,
    warm_start: Any = None,
    max_consecutive_failures: int | None = 10,
    bind: str | None = None,
    advertise: str | None = None,
    tls: bool | None = None,
    heartbeat_seconds: float | str | None = DEFAULT_HEARTBEAT_SECONDS,
    tensorboard: bool = False,
    mlflow_tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Run a search whose trials are separate processes; return the best result row.

    ``output_dir`` receives ``results.csv`` (kept current), ``jobs/trial_<id>.out``,
    ``log.txt`` and the store ``ridgeline.db``. ``resume=True`` (or SHERPA's ``load=True``)
    carries on a search whose coordinator stopped or was killed. ``db_port`` and
    ``mongodb_args`` are accepted for SHERPA compatibility. The coordinator serves a web
    dashboard on loopback (``dashboard_port``, default any free port) and prints its login
    link on stderr, unless ``disable_dashboard``.
    ``port`` (default ``db_port``) is where the coordinator listens; any free port if None.
    ``warm_start``: an earlier search's results (DataFrame, ``results.csv`` or its folder)
    recorded first as finished trials, for model-based algorithms to learn from.
    ``max_consecutive_failures``: the search ends ERROR after this many trials in a row
    failed (0 or None: no bound).
    ``heartbeat_seconds``: a trial whose process sent nothing this long (its client beats
    in the background; a frozen process or a lost node does not) is killed and FAILED
    (``resubmit_failed_trials`` re-runs it); 0, None or "off": never.

    ``bind`` (``host`` is the same), ``advertise`` and ``tls`` say where the coordinator
    listens, the host trials call back on, and whether it speaks TLS; unset ones come from
    the ``coordinator:`` section of the user config file, else: loopback for local trials,
    the address a cluster scheduler's nodes route to, TLS whenever beyond loopback
    (``ridgeline.config.network``).

    ``tensorboard=True`` writes TensorBoard event files per trial under
    ``output_dir/tensorboard`` (``ridgeline[tensorboard]``); ``mlflow_tracking_uri`` (default:
    ``MLFLOW_TRACKING_URI``) logs each trial as an MLflow run (``ridgeline[mlflow]``).

    Raises ``SearchFailed`` when the search ended ERROR (trials kept failing, none
    succeeded); the returned best never comes from a FAILED trial.
    """
    del mongodb_args
    if dashboard_port is not None and (
        type(dashboard_port) is not int or not 0 <= dashboard_port <= 65535
    ):
        raise ConfigError(
            f"dashboard_port must be a port number 0 to 65535, got {dashboard_port!r}"
        )
    resume = resume or load
    argv = _trial_command(command, filename)
    scheduler = as_scheduler(scheduler)
    scheduler.check()
    whole_number("max_concurrent", max_concurrent)

    network = resolve_network(bind if bind is not None else host, advertise, tls, "optimize()")
    if grace_period < 0:
        raise ConfigError(f"grace_period must be >= 0 seconds, got {grace_period!r}")
    heartbeat = heartbeat_setting(heartbeat_seconds)
    space = build_space(parameters)
    searcher = build_searcher(algorithm, stopping_rule)
    # A space the algorithm cannot search (a grid too large) is refused before any file is made.
    searcher.bind(space, History(lower_is_better=bool(lower_is_better)), random.Random(0))
    out = Path(output_dir or f"output_{_IMPORT_TIME}").resolve()
    if resume and storage is None:
        _check_resumable(out / "ridgeline.db")
    out.mkdir(parents=True, exist_ok=True)
    if not scheduler.output_dir:
        scheduler.output_dir = str(out)
    setup_logging(out, verbose)

    store = open_store(storage or out / "ridgeline.db")
    token: int | None = None
    experiment: ExperimentRecord | None = None
    try:
        description = describe(space, algorithm, lower_is_better) | {"command": argv}
        experiment = _find_experiment(store, out, description, resume)
        if experiment is None:
            config = description | {
                "seed": next_seed() if seed is None else int(seed),
                "token": secrets.token_urlsafe(24),
                "output_dir": str(out),
            }
            try:  # check and create in one transaction: two runs never both start afresh
                experiment = store.create_experiment(out.name, config, unless=_is_search)
            except ExperimentExists as exc:
                raise _already_holds(out, exc.experiment_id) from None
            resuming = False
        else:
            resuming = True
        token = store.acquire_lease(experiment.id, this_holder(), lease_ttl())
        experiment = store.get_experiment(experiment.id)  # as the previous holder left it
        if resuming:
            store.update_experiment(experiment.id, state=ACTIVE)
        config = experiment.config
        engine = Engine(
            store, experiment.id, space, searcher, bool(lower_is_better), config["seed"]
        )
        results = ResultsTable(bool(lower_is_better))
        # lazy: ridgeline.engine.coordinator loads aiohttp
        from ridgeline.engine.coordinator import Coordinator, RunSettings

        listen_port = port if port is not None else db_port
        if listen_port is None and resuming and experiment.coordinator:
            listen_port = experiment.coordinator.get("port")
        progress = (
            Progress(trial_cap(algorithm), trial_cap(algorithm, "length_budget"))
            if verbose
            else None
        )
        coordinator = Coordinator(
            engine,
            scheduler,
            argv,
            out,
            max_concurrent,
            config["token"],
            results,
            resubmit_failed_trials=resubmit_failed_trials,
            grace_period=grace_period,
            network=network,
            port=listen_port or 0,
            on_progress=progress.update if progress else None,
            settings=RunSettings(
                max_consecutive_failures=max_consecutive_failures,
                heartbeat_seconds=heartbeat,
                tensorboard=bool(tensorboard),
                mlflow_tracking_uri=mlflow_uri(mlflow_tracking_uri),
                dashboard=not disable_dashboard,
                dashboard_port=dashboard_port or 0,
                announce=_announce_dashboard,
            ),
        )
        # The coordinator's results table follows the engine from here on: replays too.
        if resuming:
            engine.resume()
            rebuild_results(store, engine)
        elif warm_start is not None:
            for params, objective in earlier_results(warm_start, space.names):
                engine.import_result(dict(params), objective)
        try:
            if progress:
                progress.start(coordinator)
            run_coordinator(coordinator, resuming)
        finally:
            if progress:
                progress.stop()
            scheduler.close()
        coordinator.conclude(f"the search in {out}")
        best = results.best()
        log.info("Best result: %s", best)
        return best
    finally:
        if token is not None and experiment is not None:
            release_quietly(store, experiment.id, token)
        store.close()


def _announce_dashboard(link: str) -> None:
    """The login link goes to the terminal only (the log file never holds it)."""
    print(f"Dashboard: {link}", file=sys.stderr, flush=True)


def _trial_command(
    command: str | Sequence[str] | None, filename: str | os.PathLike[str] | None
) -> list[str]:
    """The trial's argv; a missing script or program is an error before anything runs."""
    if command is None and filename is None:
        raise ConfigError("Need to provide either command or filename.")
    if command is not None:
        argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        if not argv:
            raise ConfigError("command is empty: give the trial command, e.g. 'python trial.py'")
    else:
        argv = [sys.executable, str(filename)]
    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        raise ConfigError(f"trial command {argv[0]!r} not found (not a file, not on PATH)")
    program = Path(argv[0]).name
    if program.startswith("python") and len(argv) > 1 and argv[1].endswith(".py"):
        if not Path(argv[1]).is_file():
            raise ConfigError(
                f"trial script {argv[1]!r} not found (looked in {os.getcwd()}); "
                f"give a path to an existing file"
            )
    return argv


def _is_search(experiment: ExperimentRecord) -> bool:
    return experiment.config.get("front_door") == "sherpa"


def _already_holds(out: Path, experiment_id: int) -> ConfigError:
    return ConfigError(
        f"{out} already holds a search (experiment {experiment_id}); pass resume=True to "
        f"carry it on, or choose another output_dir"
    )


def _find_experiment(
    store: Store, out: Path, description: dict[str, Any], resume: bool
) -> ExperimentRecord | None:
    existing = [e for e in store.list_experiments() if _is_search(e)]
    if not existing:
        if resume:
            raise ConfigError(
                f"nothing to resume in {out}: its store holds no search; run without "
                f"resume=True to start one"
            )
        return None
    experiment = existing[-1]
    if not resume:
        raise _already_holds(out, experiment.id)
    previous = {k: experiment.config.get(k) for k in ("parameters", "lower_is_better")}
    wanted = {k: description[k] for k in ("parameters", "lower_is_better")}
    if previous != wanted:
        raise ConfigError(
            f"cannot resume {out}: it searched {previous}, this call asks for {wanted}"
        )
    return experiment


def _check_resumable(database: Path) -> None:
    """``resume=True`` needs the store of an earlier search: starting afresh instead would
    overwrite that search's ``results.csv``."""
    if not database.exists():
        raise ConfigError(
            f"nothing to resume in {database.parent}: there is no store {database.name} "
            f"there; check output_dir, or run without resume=True to start a new search"
        )
    if database.stat().st_size == 0:
        raise ConfigError(
            f"cannot resume from {database}: the file is empty (0 bytes), so nothing of the "
            f"earlier search was saved in it; restore it from a backup, or move it aside and "
            f"run without resume=True to start a new search"
        )
