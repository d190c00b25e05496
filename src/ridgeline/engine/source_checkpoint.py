"""``searcher.source_checkpoint_uuid`` / ``source_trial_id``: every trial starts from a checkpoint
of an earlier experiment (Determined's "continue training" from a checkpoint).

The checkpoint is looked up in the store when the experiment is created (an unknown one is an
error then, not when the trials run), and its folder is copied into the new experiment's
checkpoint storage, so that each trial finds it where it finds its own
(``get_cluster_info().latest_checkpoint`` and ``core.checkpoint.restore_path``). Ids are
checked to be UUIDs before they name a folder, and each folder must be a real folder directly
inside its experiment's checkpoint root (``ridgeline.paths.confined``); no link is followed
out of it while copying (``ridgeline.filetree``).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from ridgeline.errors import CheckpointError, ConfigError, StorageUnavailable, StoreError
from ridgeline.filetree import copy_files, walk
from ridgeline.paths import confined
from ridgeline.store.base import Store
from ridgeline.store.records import COMPLETED, CheckpointRecord, ExperimentRecord
from ridgeline.values import check_uuid

__all__ = ["adopt_checkpoint", "checkpoint_folder", "checkpoint_root", "find_source"]

log = logging.getLogger("ridgeline")


def find_source(store: Store, trial_id: int | None, uuid: str | None) -> CheckpointRecord | None:
    """The checkpoint the searcher section names: ``uuid`` itself, or trial ``trial_id``'s
    latest (most steps), as Determined picks it. ConfigError when there is none."""
    if trial_id is not None:
        where = f"searcher.source_trial_id: {trial_id}"
        try:
            trial = store.get_trial(trial_id)
        except StorageUnavailable:
            raise
        except StoreError:
            raise ConfigError(
                f"{where}: no trial {trial_id} in this store; give the id of a trial that "
                f"saved a checkpoint (ridgeline experiment describe lists them)"
            ) from None
        done = [c for c in store.list_checkpoints(trial.id) if c.state == COMPLETED]
        if not done:
            raise ConfigError(
                f"{where}: trial {trial_id} has no checkpoint to start from; pick a trial that "
                f"saved one"
            )
        return max(done, key=lambda c: (c.steps_completed, c.created_at))
    if uuid is None:
        return None
    where = f"searcher.source_checkpoint_uuid: {uuid!r}"
    try:
        check_uuid(uuid, "searcher.source_checkpoint_uuid")
    except CheckpointError as exc:
        raise ConfigError(str(exc)) from None
    try:
        record = store.get_checkpoint(uuid)
    except StorageUnavailable:
        raise
    except StoreError:
        raise ConfigError(
            f"{where}: no such checkpoint in this store; give the uuid of a saved checkpoint "
            f"(ridgeline checkpoint describe UUID shows one)"
        ) from None
    if record.state != COMPLETED:
        raise ConfigError(f"{where}: the checkpoint is {record.state}; pick a saved one")
    return record


def checkpoint_root(experiment: ExperimentRecord) -> Path:
    """Where an experiment keeps its checkpoints: its ``checkpoint_storage``, else its own
    output folder's ``checkpoints``."""
    from ridgeline.config import parse_config

    stored = experiment.config
    raw = stored.get("raw")
    if isinstance(raw, dict) and raw.get("checkpoint_storage"):
        config = parse_config(raw, f"experiment {experiment.id}", stored["workdir"], warn=False)
        if config.checkpoint_storage is not None:
            return Path(config.checkpoint_storage.path)
    return Path(stored["output_dir"]) / "checkpoints"


def checkpoint_folder(store: Store, record: CheckpointRecord) -> Path:
    """The checkpoint's folder: a real folder named by its UUID inside its experiment's root
    (ConfigError otherwise: missing files, a symlink, a name that leaves the root)."""
    uuid = check_uuid(record.uuid, "stored checkpoint")
    experiment = store.get_experiment(store.get_trial(record.trial_id).experiment_id)
    path = confined(checkpoint_root(experiment), uuid, what="checkpoint", resolve_last=False)
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        raise ConfigError(
            f"checkpoint {uuid}: its files are gone from {path}; pick another checkpoint"
        ) from None
    if not stat.S_ISDIR(mode):
        raise ConfigError(f"checkpoint {uuid}: {path} is not a folder (a symlink or a file)")
    return path


def adopt_checkpoint(store: Store, record: CheckpointRecord, root: Path) -> Path:
    """Copy the checkpoint's files into ``root`` (the new experiment's checkpoint storage)
    under the same UUID; nothing to copy when both experiments share the storage."""
    source = checkpoint_folder(store, record)
    root.mkdir(parents=True, exist_ok=True)
    target = confined(root, record.uuid, what="checkpoint", resolve_last=False)
    if target.exists() and os.path.samefile(target, source):
        return target
    tree = walk(source)
    copy_files(tree, target)
    message = tree.warning()
    if message is not None:
        log.warning("%s", message)
    return target
