"""``experiment create --test``: check a script with one short trial before a real search.

As in Determined's test mode, the config becomes a ``single`` searcher of length 1 (in the
config's own unit), with no restarts and no checkpoints kept after it ends; the experiment is
named ``[test] NAME`` and archived, so ``experiment list`` shows it only with ``--all``. The
coordinator runs as for any experiment; the trial's output is streamed here and the exit
status says whether the trial completed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ridgeline.cli import _follow_first_trial, control
from ridgeline.config import load_config, parse_config
from ridgeline.experiment import Experiment, launch_detached
from ridgeline.store import open_store
from ridgeline.store.records import COMPLETED

#: Searcher keys that still mean something for the one test trial.
_KEPT_SEARCHER_KEYS = ("metric", "smaller_is_better", "source_trial_id", "source_checkpoint_uuid")


def short_config(raw: dict[str, Any], name: str, unit: str | None) -> dict[str, Any]:
    """The test version of a validated config: one trial of length 1, nothing retried, no
    checkpoint kept; every other setting (entrypoint, hyperparameters, environment) as is."""
    searcher = {k: v for k, v in raw["searcher"].items() if k in _KEPT_SEARCHER_KEYS}
    searcher.update(name="single", max_length={unit: 1} if unit else 1)
    test = {**raw, "name": f"[test] {name}", "searcher": searcher, "max_restarts": 0}
    if raw.get("checkpoint_storage"):
        test["checkpoint_storage"] = {
            **raw["checkpoint_storage"],
            "save_experiment_best": 0,
            "save_trial_best": 0,
            "save_trial_latest": 0,
        }
    return test


def run_test(
    storage: str | None,
    config_file: str,
    context_dir: str,
    overrides: Sequence[str],
    as_json: bool,
    cluster: tuple[str | None, Sequence[str]] = (None, ()),
    network: dict[str, Any] | None = None,
) -> int:
    """Create and run the test experiment; 0 when its trial completed, else 1. ``cluster``:
    ``experiment create``'s --scheduler and --cluster-option, for the backend it runs on;
    ``network``: its --bind, --advertise and --tls/--no-tls."""
    config = load_config(config_file, overrides, context_dir=context_dir)
    raw = short_config(config.raw, config.name, config.searcher.length_unit)
    base = str(Path(config_file).resolve().parent)
    source = f"{config_file} (test mode)"
    exp = Experiment(parse_config(raw, source, base, context_dir=context_dir), context_dir, storage)
    experiment_id = exp.create(scheduler=cluster[0], cluster_options=cluster[1], **(network or {}))
    store = open_store(exp.storage)
    try:
        store.update_experiment(experiment_id, archived=True)
        launch_detached(experiment_id, exp.storage)
        if not as_json:
            click.echo(
                f"Testing {config_file}: one trial of length 1 in experiment {experiment_id} "
                f"(archived)"
            )
            _follow_first_trial(store, experiment_id)
        state = control.wait_until(store, experiment_id, control.TERMINAL, 1e12)
        trials = store.list_trials(experiment_id)
    finally:
        store.close()
    trial = trials[0] if trials else None
    passed = state == COMPLETED and trial is not None and trial.state == COMPLETED
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": experiment_id,
                    "passed": passed,
                    "experiment_state": state,
                    "trial_id": trial.id if trial else None,
                    "trial_state": trial.state if trial else None,
                    "exit_code": trial.exit_code if trial else None,
                }
            )
        )
    elif passed:
        click.echo(f"Test passed: trial {trial.id} completed")  # type: ignore[union-attr]
    else:
        what = (
            f"trial {trial.id} ended {trial.state} (exit code {trial.exit_code})"
            if trial is not None
            else "no trial ran"
        )
        click.echo(
            f"Test failed: {what}; experiment {experiment_id} is {state}. The coordinator's log: "
            f"ridgeline experiment logs --coordinator {experiment_id}",
            err=True,
        )
    return 0 if passed else 1
