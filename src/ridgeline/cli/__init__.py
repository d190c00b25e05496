"""The ``ridgeline`` command: experiments from config files, trials, checkpoints.

It reads the store and sends control requests to a live coordinator; it never re-implements
engine logic. Experiments live in a user-level store (``--storage`` or ``$RIDGELINE_STORAGE``
override it) and keep running after the terminal closes.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ridgeline.cli import control
from ridgeline.config import describe_search, load_config, parse_config
from ridgeline.config.cluster import ClusterChoice, resolve_cluster
from ridgeline.config.searcher import budget as searcher_budget
from ridgeline.errors import CheckpointError, RidgelineError, StoreError
from ridgeline.store import open_store
from ridgeline.store.base import Store
from ridgeline.store.lease import refuse_unless_free, this_holder
from ridgeline.store.records import (
    ACTIVE,
    CANCELED,
    COMPLETED,
    FAILED,
    INVALID_HP,
    PAUSED,
    PENDING,
    RUNNING,
    STOPPED,
)
from ridgeline.values import check_uuid


class AliasedGroup(click.Group):
    """A group whose commands also answer to short names (``e`` for ``experiment``)."""

    aliases: dict[str, str] = {
        "e": "experiment",
        "t": "trial",
        "ls": "list",
        "lt": "list-trials",
        "lc": "list-checkpoints",
        "unpause": "activate",
    }

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        _, command, rest = super().resolve_command(ctx, args)
        return (command.name if command else None), command, rest


@contextmanager
def opened(ctx: click.Context) -> Iterator[Store]:
    from ridgeline.paths import default_storage  # lazy: keeps `import ridgeline.cli` light

    store = open_store(default_storage(ctx.obj["storage"]))
    try:
        yield store
    finally:
        store.close()


def emit(rows: list[dict[str, Any]], as_json: bool, as_csv: bool) -> None:
    """Rows as a table, JSON or CSV."""
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    columns = list(rows[0])
    if as_csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        click.echo(buffer.getvalue(), nl=False)
        return
    from rich.console import Console  # lazy: rich is heavy, loaded on use

    from ridgeline.cli.tables import table  # lazy: keeps `import ridgeline.cli` light

    Console(width=max(120, shutil.get_terminal_size().columns)).print(table(rows))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def experiment_row(store: Store, experiment: Any) -> dict[str, Any]:
    trials = store.list_trials(experiment.id)
    done = sum(t.state in (COMPLETED, FAILED, STOPPED, CANCELED, INVALID_HP) for t in trials)
    raw = experiment.config.get("raw") or {}
    searcher = raw.get("searcher") or {}
    state = store.load_searcher_state(experiment.id) or {}
    progress = 1.0 if experiment.state == COMPLETED else state.get("progress", 0.0)
    # Budgets users can read: trials against the searcher's trial budget, training length
    # against the most it plans to train (full training for random-style searchers).
    starts = {  # clones start at their parent's length: only what they trained counts
        int(k): uuid for k, uuid in (state.get("warm_starts") or {}).items()
    }
    trained = 0
    for t in trials:
        top = max((m.step for m in store.trial_metrics(t.id, "searcher")), default=0)
        if t.number in starts and top:
            top -= store.get_checkpoint(starts[t.number]).steps_completed
        trained += top
    max_trials, budget = searcher_budget(searcher, raw.get("hyperparameters"))
    return {
        "id": experiment.id,
        "name": experiment.name,
        "state": experiment.state,
        "searcher": searcher.get("name", experiment.config.get("algorithm")),
        "progress": f"{100 * progress:.0f}%",
        "trials": len(trials),
        "done": done,
        "failed": sum(t.state == FAILED for t in trials),
        "stopped": sum(t.state == STOPPED for t in trials),
        "max_trials": max_trials,
        "length_trained": trained,
        "length_budget": budget,
        "coordinator": "running" if control.coordinator_alive(experiment) else "",
    }


def trial_rows(store: Store, experiment_id: int) -> list[dict[str, Any]]:
    """One dict per trial (``ridgeline.cli.tables``: read through ``ridgeline.analysis``)."""
    from ridgeline.cli.tables import trial_rows as rows  # lazy: keeps `import ridgeline.cli` light

    return rows(store, experiment_id)


def fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _found(get: Callable[[Any], Any], key: Any, what: str) -> Any:
    """``get(key)``; the command fails, naming the ``what``, when the store has no such
    record."""
    try:
        return get(key)
    except StoreError:
        fail(f"no {what} {key} in this store")


@click.group(cls=AliasedGroup)
@click.option(
    "--storage",
    envvar="RIDGELINE_STORAGE",
    default=None,
    help="Store URL or SQLite path (default: the user-level store).",
)
@click.pass_context
def cli(ctx: click.Context, storage: str | None) -> None:
    """ridgeline: hyperparameter search with real trial processes."""
    ctx.ensure_object(dict)
    ctx.obj["storage"] = storage


# -- experiments ----------------------------------------------------------------------------
@cli.group(cls=AliasedGroup)
def experiment() -> None:
    """Create and manage experiments (alias: e)."""


@experiment.command("create")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("context_dir", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--config", "overrides", multiple=True, help="Override a key: KEY=VALUE.")
@click.option("--paused", is_flag=True, help="Create it paused; start with `activate`.")
@click.option(
    "--warm-start",
    "warm_start",
    multiple=True,
    type=int,
    help="Learn from the completed trials of this earlier experiment (repeatable).",
)
@click.option(
    "-f",
    "--follow-first-trial",
    "--follow",
    "follow",
    is_flag=True,
    help="Stream the first trial's output until it ends.",
)
@click.option(
    "-t",
    "--test",
    "--test-mode",
    "test_mode",
    is_flag=True,
    help="Check the script instead: run one trial of length 1 (in the config's unit; single "
    "searcher, no restarts) now, where the experiment's trials run, streaming its output; "
    "exit 0 only if it completes. The test experiment is archived and named '[test] NAME'.",
)
@click.option(
    "--scheduler",
    type=click.Choice(["local", "slurm", "sge", "dask"]),
    help="Where the trials run, over the config's slurm:/sge:/dask: section and the "
    "ridgeline config file's cluster.backend: local processes, SLURM jobs, Grid Engine "
    "jobs or Dask workers.",
)
@click.option(
    "--cluster-option",
    "cluster_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A cluster setting over the config's and the ridgeline config file's (repeatable): "
    "partition, sbatch_args, gpu_type, qsub_args, environment (a script each job sources), "
    "address (Dask's scheduler) or heartbeat_seconds (a silent trial is lost after that "
    "long; default 60, off: never; every backend); e.g. --cluster-option partition=gpu, "
    "--cluster-option 'sbatch_args=--time=60 --comment=lr'.",
)
@click.option(
    "--bind",
    metavar="ADDR",
    help="The address the coordinator listens on (e.g. 10.0.0.5, or 0.0.0.0 for every "
    "interface), over the ridgeline config file's coordinator.bind. Default: loopback for "
    "local trials, the address a cluster backend's nodes route to.",
)
@click.option(
    "--advertise",
    metavar="HOST",
    help="The host trials call back on (default: the bound address; this host's address "
    "when bound to 0.0.0.0 or ::).",
)
@click.option(
    "--tls/--no-tls",
    "tls",
    default=None,
    help="Serve trials over TLS (the default beyond loopback: a certificate made for the "
    "experiment, pinned by its fingerprint); --no-tls sends tokens in clear text.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def create(
    ctx: click.Context,
    config_file: str,
    context_dir: str | None,
    overrides: tuple[str, ...],
    paused: bool,
    warm_start: tuple[int, ...],
    follow: bool,
    test_mode: bool,
    scheduler: str | None,
    cluster_options: tuple[str, ...],
    bind: str | None,
    advertise: str | None,
    tls: bool | None,
    as_json: bool,
) -> None:
    """Create an experiment from CONFIG_FILE and start it in the background.

    CONTEXT_DIR (default: the config file's folder) is copied for the trials to run in.

    The trials run as local processes unless a cluster backend is chosen: by the
    `cluster:` section of the ridgeline config file ($RIDGELINE_CONFIG, else
    ~/.config/ridgeline/config.yaml, e.g. `cluster: {backend: slurm, partition: gpu}`),
    over it by the config's `slurm:` section (Determined's sbatch_args, gpu_type,
    slots_per_node), `sge:` (qsub_args, slots_per_node, parallel_environment) or `dask:`
    (address), and over both by --scheduler and --cluster-option.
    resources.slots_per_trial is the GPUs each job asks for (--gres=gpu:N; 0 for none).
    The coordinator's address (--bind, --advertise, --tls/--no-tls, over the ridgeline
    config file's `coordinator:` section) is stored with the experiment for its resumes."""
    # lazy: keeps `import ridgeline.cli` light
    from ridgeline.experiment import Experiment, launch_detached

    context_dir = context_dir or str(Path(config_file).resolve().parent)
    if test_mode:
        from ridgeline.cli.testmode import run_test  # lazy: keeps `import ridgeline.cli` light

        if paused or warm_start:
            fail("--test runs one trial at once: it does not go with --paused or --warm-start")
        cluster = (scheduler, cluster_options)
        network = {"bind": bind, "advertise": advertise, "tls": tls}
        sys.exit(
            run_test(
                ctx.obj["storage"], config_file, context_dir, overrides, as_json, cluster, network
            )
        )
    exp = Experiment.from_yaml(config_file, context_dir, overrides, ctx.obj["storage"])
    experiment_id = exp.create(
        paused=paused,
        warm_start=warm_start,
        scheduler=scheduler,
        cluster_options=cluster_options,
        bind=bind,
        advertise=advertise,
        tls=tls,
    )
    pid = launch_detached(experiment_id, exp.storage)
    if as_json:
        click.echo(json.dumps({"id": experiment_id, "coordinator_pid": pid}))
    else:
        click.echo(f"Created experiment {experiment_id}")
        # lazy: import cycle with ridgeline.cli.dashboard
        from ridgeline.cli.dashboard import echo_login_link

        with opened(ctx) as store:
            echo_login_link(store, experiment_id, pid)
    if follow and paused:  # nothing runs until `activate`: there is nothing to follow yet
        click.echo(
            f"Paused: no trial runs yet; follow it after `activate` with "
            f"`ridgeline experiment logs -f {experiment_id}`",
            err=True,
        )
    elif follow:
        with opened(ctx) as store:
            _follow_first_trial(store, experiment_id)


def _follow_first_trial(store: Store, experiment_id: int) -> None:
    record = store.get_experiment(experiment_id)
    path = control.trial_log(record, 1)
    while not path.exists():
        if store.get_experiment(experiment_id).state in control.TERMINAL:
            return
        time.sleep(0.2)

    def first_trial_done() -> bool:
        trials = store.list_trials(experiment_id)
        return bool(trials) and trials[0].state not in (PENDING, RUNNING)

    control.follow(path, first_trial_done, click.echo)
    trials = store.list_trials(experiment_id)
    if trials:
        click.echo(
            f"Trial {trials[0].id} ended ({trials[0].state}); its output again: "
            f"ridgeline trial logs {trials[0].id}",
            err=True,
        )


@experiment.command("list")
@click.option("--all", "-a", "show_all", is_flag=True, help="Include archived experiments.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.pass_context
def list_experiments(ctx: click.Context, show_all: bool, as_json: bool, as_csv: bool) -> None:
    """List experiments (alias: ls); archived ones only with --all."""
    with opened(ctx) as store:
        shown = [e for e in store.list_experiments() if show_all or not e.archived]
        rows = [experiment_row(store, e) for e in shown]
        if show_all:  # the only listing where archived experiments appear
            for row, e in zip(rows, shown, strict=True):
                row["archived"] = e.archived
        emit(rows, as_json, as_csv)


def _experiment(store: Store, experiment_id: int) -> Any:
    return _found(store.get_experiment, experiment_id, "experiment")


@experiment.command("describe")
@click.argument("experiment_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.option("--watch", is_flag=True, help="Redraw until the experiment ends (Ctrl-C stops).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="With --watch: seconds between redraws.",
)
@click.pass_context
def describe(
    ctx: click.Context,
    experiment_id: int,
    as_json: bool,
    as_csv: bool,
    watch: bool,
    interval: float,
) -> None:
    """Show an experiment with its trials."""
    if watch:
        if as_json or as_csv:
            fail("--watch draws a live table; it does not combine with --json or --csv")
        from ridgeline.cli.watch import watch_experiment  # lazy: keeps `import ridgeline.cli` light

        with opened(ctx) as store:
            _experiment(store, experiment_id)
            watch_experiment(store, experiment_id, interval)
        return
    with opened(ctx) as store:
        record = _experiment(store, experiment_id)
        summary = experiment_row(store, record)
        trials = trial_rows(store, experiment_id)
        where = runs_on(record.config)
        if as_json:
            summary["runs_on"] = where
            summary["archived"] = record.archived
            summary["config"] = record.config.get("raw")
            summary["output_dir"] = record.config.get("output_dir")
            summary["trials"] = trials
            click.echo(json.dumps(summary, indent=2, default=str))
        elif as_csv:
            from ridgeline.cli.tables import flat  # lazy: keeps `import ridgeline.cli` light

            emit(flat(trials), False, True)
        else:
            from ridgeline.cli.tables import flat  # lazy: keeps `import ridgeline.cli` light

            emit([summary], False, False)
            if where:
                click.echo(f"Trials run as {where}")
            emit(flat(trials), False, False)


@experiment.command("list-trials")
@click.argument("experiment_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.option(
    "--sort-by",
    "sort_by",
    default=None,
    metavar="COLUMN",
    help="Order by this column (any column shown, e.g. best_metric or a hyperparameter).",
)
@click.option("--reverse", is_flag=True, help="With --sort-by: largest first.")
@click.option(
    "--top",
    "top",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Only the K best trials by the searcher metric, best first (failed trials never).",
)
@click.pass_context
def list_trials(
    ctx: click.Context,
    experiment_id: int,
    as_json: bool,
    as_csv: bool,
    sort_by: str | None,
    reverse: bool,
    top: int | None,
) -> None:
    """List an experiment's trials (alias: lt): one column per hyperparameter; JSON keeps
    them as ``hparams``. Tables round numbers; --json and --csv keep every digit."""
    from ridgeline.analysis import Analysis  # lazy: keeps `import ridgeline.cli` light

    # lazy: keeps `import ridgeline.cli` light
    from ridgeline.cli.tables import best_k, flat, sort_rows

    with opened(ctx) as store:
        _experiment(store, experiment_id)
        rows = trial_rows(store, experiment_id)
        if top is not None:
            rows = best_k(rows, top, Analysis(store, experiment_id).smaller_is_better)
        shown = rows if as_json else flat(rows)
        if sort_by is not None:
            try:
                order = sort_rows(flat(rows), sort_by, reverse)
            except KeyError:
                columns = ", ".join(flat(rows)[0]) if rows else "none"
                fail(f"--sort-by {sort_by!r}: no such column; the columns are {columns}")
            rank = {r["trial_id"]: i for i, r in enumerate(order)}
            shown = sorted(shown, key=lambda r: rank[r["trial_id"]])
        emit(shown, as_json, as_csv)


@experiment.command("list-checkpoints")
@click.argument("experiment_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.pass_context
def list_checkpoints(ctx: click.Context, experiment_id: int, as_json: bool, as_csv: bool) -> None:
    """List an experiment's checkpoints (alias: lc)."""
    with opened(ctx) as store:
        _experiment(store, experiment_id)
        rows = [
            {
                "uuid": c.uuid,
                "trial_id": t.id,
                "steps_completed": c.steps_completed,
                "state": c.state,
                "metadata": c.metadata,
            }
            for t in store.list_trials(experiment_id)
            for c in store.list_checkpoints(t.id)
        ]
        emit(rows, as_json, as_csv)


def _control(ctx: click.Context, experiment_id: int, action: str, timeout: float = 30) -> None:
    with opened(ctx) as store:
        record = _experiment(store, experiment_id)
        if record.state in control.TERMINAL:
            fail(f"experiment {experiment_id} has already ended ({record.state})")
        try:
            reply = control.request(record, "POST", f"/api/v1/experiment/{action}", timeout)
        except RuntimeError as exc:
            fail(str(exc))
        if reply is None and action == "kill":
            # No coordinator answered: end what it left running ourselves, not just the record.
            why = (
                f"did not answer within {timeout:g} s"
                if control.coordinator_alive(record)
                else "is not running"
            )
            click.echo(f"Experiment {experiment_id}: its coordinator {why};")
            for line in control.kill_without_coordinator(store, record):
                click.echo(f"  {line}")
            return
        if reply is None:  # no live coordinator: change the record; `resume` acts on it
            state = {"pause": PAUSED, "activate": ACTIVE, "kill": CANCELED}[action]
            store.update_experiment(experiment_id, state=state)
            if action == "activate":
                click.echo(
                    f"Experiment {experiment_id} has no running coordinator; "
                    f"start one with `ridgeline experiment resume {experiment_id}`"
                )
        click.echo(f"Experiment {experiment_id}: {action} requested")


@experiment.command("pause")
@click.argument("experiment_id", type=int)
@click.pass_context
def pause(ctx: click.Context, experiment_id: int) -> None:
    """Pause: running trials checkpoint and exit; nothing new starts."""
    _control(ctx, experiment_id, "pause")


@experiment.command("activate")
@click.argument("experiment_id", type=int)
@click.pass_context
def activate(ctx: click.Context, experiment_id: int) -> None:
    """Activate a paused experiment: trials resume from their checkpoints (alias: unpause)."""
    _control(ctx, experiment_id, "activate")


@experiment.command("kill")
@click.argument("experiment_id", type=int)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the coordinator to answer.",
)
@click.pass_context
def kill(ctx: click.Context, experiment_id: int, timeout: float) -> None:
    """Kill: end every trial now; the experiment becomes CANCELED.

    When the coordinator does not answer (hung, frozen or gone), the trial processes and
    the coordinator are killed from here and the store records the trials and the
    experiment CANCELED."""
    _control(ctx, experiment_id, "kill", timeout)


@experiment.command("resume")
@click.argument("experiment_id", type=int)
@click.pass_context
def resume(ctx: click.Context, experiment_id: int) -> None:
    """Start a new coordinator for an experiment whose coordinator died.

    Exits non-zero, naming the holder, when another coordinator holds the experiment's lease."""
    # lazy: keeps `import ridgeline.cli` light
    from ridgeline.experiment import start_detached, wait_for_lease

    with opened(ctx) as store:
        record = _experiment(store, experiment_id)
        if record.state in control.TERMINAL:
            fail(f"experiment {experiment_id} has already ended ({record.state})")
        try:
            refuse_unless_free(
                experiment_id, store.get_lease(experiment_id), this_holder(), time.time()
            )
            process = start_detached(experiment_id, ctx.obj["storage"])
            wait_for_lease(store, experiment_id, process)
        except RidgelineError as exc:
            fail(str(exc))
    click.echo(f"Resumed experiment {experiment_id} (coordinator pid {process.pid})")


@experiment.command("wait")
@click.argument("experiment_id", type=int)
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
@click.pass_context
def wait(ctx: click.Context, experiment_id: int, timeout: float | None) -> None:
    """Wait until the experiment ends; exit code 0 if it COMPLETED."""
    with opened(ctx) as store:
        _experiment(store, experiment_id)
        state = control.wait_until(store, experiment_id, control.TERMINAL, timeout or 1e12)
    click.echo(f"Experiment {experiment_id}: {state}")
    if state not in control.TERMINAL:
        click.echo(
            f"No coordinator is running it; `ridgeline experiment resume {experiment_id}` "
            f"carries it on.",
            err=True,
        )
    if state != COMPLETED:
        sys.exit(1)


_ATTEMPT_OPTION = click.option(
    "--attempt",
    type=click.IntRange(min=1),
    default=None,
    help="Show this attempt (1 is the first run) instead of the latest.",
)
_ALL_ATTEMPTS_OPTION = click.option(
    "--all", "all_attempts", is_flag=True, help="Show every attempt, oldest first, with headers."
)


@experiment.command("logs")
@click.argument("experiment_id", type=int)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the trial ends.")
@_ATTEMPT_OPTION
@_ALL_ATTEMPTS_OPTION
@click.option(
    "--coordinator",
    is_flag=True,
    help="Show the coordinator's log (trials started, failed, restarted) instead.",
)
@click.pass_context
def experiment_logs(
    ctx: click.Context,
    experiment_id: int,
    follow: bool,
    attempt: int | None,
    all_attempts: bool,
    coordinator: bool,
) -> None:
    """The output of the experiment's first trial, as `trial logs` shows it.

    With --follow and no trial yet, waits for the first trial to start. The coordinator's
    own log is shown with --coordinator."""
    if coordinator and (attempt is not None or all_attempts):
        fail("--attempt and --all are about a trial's output; they do not go with --coordinator")
    with opened(ctx) as store:
        record = _experiment(store, experiment_id)
        if coordinator:
            path = Path(record.config["output_dir"]) / "log.txt"

            def ended() -> bool:
                return not follow or store.get_experiment(experiment_id).state in control.TERMINAL

            control.follow(path, ended, click.echo)
            return
        trials = store.list_trials(experiment_id)
        if not trials and follow:
            click.echo("Waiting for the first trial to start...", err=True)
        while not trials:
            if not follow or store.get_experiment(experiment_id).state in control.TERMINAL:
                fail(
                    f"experiment {experiment_id} has no trials yet; its coordinator's log: "
                    f"ridgeline experiment logs --coordinator {experiment_id}"
                )
            time.sleep(0.2)
            trials = store.list_trials(experiment_id)
        _show_trial_output(store, trials[0], follow, attempt, all_attempts)


def _show_trial_output(
    store: Store, record: Any, follow: bool, attempt: int | None, all_attempts: bool
) -> None:
    """Print a trial's output (latest attempt, attempt ``attempt``, or every attempt), and
    with ``follow`` keep printing until the trial ends."""
    if attempt is not None and all_attempts:
        fail("--attempt and --all do not go together: --all shows every attempt")
    experiment = store.get_experiment(record.experiment_id)
    try:
        path = control.trial_log(experiment, record.number, attempt)
    except LookupError as exc:
        fail(str(exc))
    if all_attempts:
        paths = control.trial_attempts(experiment, record.number)
        for k, each in enumerate(paths, start=1):
            latest = k == len(paths)
            click.echo(f"==> attempt {k} ({each.name}{', latest' if latest else ''}) <==")
            if not latest:
                control.follow(each, lambda: True, click.echo)
        path = paths[-1] if paths else path

    def ended() -> bool:
        return not follow or store.get_trial(record.id).state not in (PENDING, RUNNING)

    control.follow(path, ended, click.echo)


# -- trials ---------------------------------------------------------------------------------
@cli.group(cls=AliasedGroup)
def trial() -> None:
    """Inspect and control single trials (alias: t). TRIAL_ID is the store-wide id."""


def _trial(store: Store, trial_id: int) -> Any:
    return _found(store.get_trial, trial_id, "trial")


@trial.command("describe")
@click.argument("trial_id", type=int)
@click.option(
    "--metrics",
    "show_metrics",
    is_flag=True,
    help="Also print every metrics report: one row per group and step, one column per metric.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (metrics always included).")
@click.option("--csv", "as_csv", is_flag=True, help="With --metrics: the metrics rows as CSV.")
@click.pass_context
def trial_describe(
    ctx: click.Context, trial_id: int, show_metrics: bool, as_json: bool, as_csv: bool
) -> None:
    """A trial's state, hyperparameters and checkpoints; its metrics with --metrics."""
    if as_csv and not show_metrics:
        fail("--csv prints the metrics rows: use it with --metrics")
    with opened(ctx) as store:
        record = _trial(store, trial_id)
        data = {
            "trial_id": record.id,
            "experiment_id": record.experiment_id,
            "number": record.number,
            "state": record.state,
            "hparams": record.params,
            "restarts": record.restarts,
            "exit_code": record.exit_code,
            "lineage": _lineage(store, record),
            "metrics": [
                {"group": m.group, "step": m.step, "values": m.values}
                for m in store.trial_metrics(record.id)
            ],
            "checkpoints": [
                {"uuid": c.uuid, "steps_completed": c.steps_completed, "state": c.state}
                for c in store.list_checkpoints(record.id)
            ],
        }
        if as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        elif as_csv:
            emit(_metric_rows(data["metrics"]), False, True)
        else:
            emit(
                [{k: v for k, v in data.items() if k not in ("metrics", "checkpoints")}],
                False,
                False,
            )
            emit(data["checkpoints"], False, False)
            if show_metrics:
                emit(_metric_rows(data["metrics"]), False, False)
            elif data["metrics"]:
                click.echo(f"{len(data['metrics'])} metrics reports; show them with --metrics")


def _metric_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per report: its group and step, then one column per metric name (in the
    order names first appear; blank where a report lacks one)."""
    names: dict[str, None] = {}
    for report in reports:
        names.update(dict.fromkeys(report["values"]))
    return [
        {"group": r["group"], "step": r["step"], **{n: r["values"].get(n) for n in names}}
        for r in reports
    ]


def _lineage(store: Store, record: Any) -> list[int]:
    """Trial ids of the ancestors a PBT clone descends from, oldest first."""
    chain: list[int] = []
    while record.parent_id is not None:
        chain.append(record.parent_id)
        record = store.get_trial(record.parent_id)
    return chain[::-1]


@trial.command("logs")
@click.argument("trial_id", type=int)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the trial ends.")
@_ATTEMPT_OPTION
@_ALL_ATTEMPTS_OPTION
@click.pass_context
def trial_logs(
    ctx: click.Context, trial_id: int, follow: bool, attempt: int | None, all_attempts: bool
) -> None:
    """A trial's output (stdout and stderr) from its latest attempt.

    Each start of a trial's process is an attempt: a restart after a failure, or a paused
    trial resumed from its checkpoint. The latest attempt's output is shown; earlier ones are
    kept (jobs/trial_<n>.attempt<k>.out in the experiment's folder) and shown with
    --attempt K, or all in order with --all."""
    with opened(ctx) as store:
        _show_trial_output(store, _trial(store, trial_id), follow, attempt, all_attempts)


@trial.command("kill")
@click.argument("trial_id", type=int)
@click.pass_context
def trial_kill(ctx: click.Context, trial_id: int) -> None:
    """Kill one trial now."""
    with opened(ctx) as store:
        record = _trial(store, trial_id)
        experiment = store.get_experiment(record.experiment_id)
        try:
            reply = control.request(experiment, "POST", f"/api/v1/trials/{record.number}/kill")
        except RuntimeError as exc:
            fail(str(exc))
        if reply is None:
            fail(f"experiment {record.experiment_id} has no running coordinator")
        click.echo(f"Trial {trial_id}: kill requested")


# -- checkpoints ----------------------------------------------------------------------------
@cli.group(cls=AliasedGroup)
def checkpoint() -> None:
    """Inspect and download checkpoints."""


def _checkpoint(store: Store, uuid: str) -> Any:
    return _found(store.get_checkpoint, uuid, "checkpoint")


def checkpoint_root(experiment: Any) -> Path | None:
    """The folder the experiment's checkpoints live in (it may be shared with other
    experiments); None for an experiment without a stored config (the SHERPA door)."""
    if not experiment.config.get("raw"):
        return None
    config = parse_config(
        experiment.config["raw"], "stored", experiment.config["workdir"], warn=False
    )
    if config.checkpoint_storage:
        return Path(config.checkpoint_storage.path)
    return Path(experiment.config["output_dir"]) / "checkpoints"


def _checkpoint_dir(store: Store, record: Any) -> Path:
    """The checkpoint's folder: its id must be a UUID naming a folder inside the experiment's
    checkpoint storage (CheckpointError/UnsafePathError otherwise)."""
    from ridgeline.paths import confined  # lazy: keeps `import ridgeline.cli` light

    trial_record = store.get_trial(record.trial_id)
    experiment = store.get_experiment(trial_record.experiment_id)
    base = checkpoint_root(experiment)
    if base is None:
        raise CheckpointError(f"experiment {experiment.id} has no checkpoint storage")
    return confined(base, check_uuid(record.uuid, "stored checkpoint"), what="checkpoint")


def _checkpoint_path(store: Store, record: Any) -> str | None:
    try:
        return str(_checkpoint_dir(store, record))
    except RidgelineError:
        return None


@checkpoint.command("describe")
@click.argument("uuid")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def checkpoint_describe(ctx: click.Context, uuid: str, as_json: bool) -> None:
    """A checkpoint's trial, steps, metadata and state."""
    with opened(ctx) as store:
        record = _checkpoint(store, uuid)
        row = {
            "uuid": record.uuid,
            "trial_id": record.trial_id,
            "steps_completed": record.steps_completed,
            "state": record.state,
            "metadata": record.metadata,
            "path": _checkpoint_path(store, record),
        }
        emit([row], as_json, False) if not as_json else click.echo(json.dumps(row, indent=2))


@checkpoint.command("download")
@click.argument("uuid")
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False))
@click.pass_context
def checkpoint_download(ctx: click.Context, uuid: str, output_dir: str) -> None:
    """Copy a checkpoint's files to OUTPUT_DIR.

    Symlinks are not followed out of the checkpoint: one to a file inside it is copied as that
    file, any other (out of the checkpoint, to a folder, dangling, looping) is left out with a
    warning."""
    with opened(ctx) as store:
        record = _checkpoint(store, uuid)
        copy_checkpoint(store, record, Path(output_dir))
    click.echo(f"Checkpoint {uuid} downloaded to {output_dir}")


def copy_checkpoint(store: Store, record: Any, target: Path) -> None:
    """Copy a completed checkpoint's files to ``target`` without following a symlink out of
    the checkpoint (see ``checkpoint download``); exits with an error naming what is wrong."""
    from ridgeline.filetree import copy_files, walk  # lazy: keeps `import ridgeline.cli` light

    uuid = record.uuid
    if record.state != COMPLETED:
        fail(f"checkpoint {uuid} is {record.state}")
    source = _checkpoint_dir(store, record)
    if source.is_symlink():
        fail(f"checkpoint {uuid}'s folder {source} is a symlink; it is not followed")
    if not source.is_dir():
        fail(f"checkpoint {uuid}'s files are missing from {source}")
    tree = walk(source)
    copy_files(tree, target)
    message = tree.warning()
    if message is not None:
        click.echo(f"Warning: {message}", err=True)


# -- search preview -------------------------------------------------------------------------
@cli.command("preview-search")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--config", "overrides", multiple=True, help="Override a key: KEY=VALUE.")
def preview_search(config_file: str, overrides: tuple[str, ...]) -> None:
    """Show what the searcher of CONFIG_FILE would run."""
    config = load_config(config_file, overrides)
    for line in describe_search(config):
        click.echo(line)
    cluster = resolve_cluster(config.raw)
    click.echo(f"Trials run as {cluster.describe(config.slots_per_trial)}")


def runs_on(stored: dict[str, Any]) -> str:
    """Where a YAML experiment's trials run, in words (``experiment describe``); "" for an
    experiment of the Python API, whose runner script picked its scheduler."""
    if stored.get("front_door") != "core":
        return ""

    slots = (stored.get("raw") or {}).get("resources", {}).get("slots_per_trial", 0)
    return ClusterChoice.from_dict(stored.get("cluster")).describe(int(slots or 0))


# Commands kept in their own modules register themselves on the groups above.
from ridgeline.cli import dashboard as _dashboard  # noqa: E402,F401
from ridgeline.cli import download as _download  # noqa: E402,F401
from ridgeline.cli import housekeeping as _housekeeping  # noqa: E402,F401
from ridgeline.cli import plot as _plot  # noqa: E402,F401


def _set_storage(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.obj["storage"] = value
    return value


def _storage_after_subcommand(group: click.Group) -> None:
    """Let every store-reading command take --storage after its name too, as
    `ridgeline experiment list --storage URL` (it wins over one given before)."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _storage_after_subcommand(command)
        elif command is not preview_search:
            command.params.append(
                click.Option(
                    ["--storage"],
                    expose_value=False,
                    callback=_set_storage,
                    help="Store URL or SQLite path (as `ridgeline --storage`).",
                )
            )


_storage_after_subcommand(cli)


def main() -> None:
    """Entry point: user errors print one clear message and exit 1."""
    try:
        cli(obj={})
    except RidgelineError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
