"""One experiment's checkpoints: registration, lookup, deletion and retention.

Checkpoint ids arrive in requests, so each is checked to be a canonical UUID before it names
anything, and every folder it names is confined to the checkpoint root (which other
experiments may share). A checkpoint is only ever shown to or deleted for its own experiment;
a trial asking for itself sees only its own checkpoints (and the one it was cloned from) and
deletes only its own. Deleting removes a real folder directly inside the root; a symlink found
there instead is unlinked and its target left alone (``ridgeline.filetree.remove_folder``).
"""

from __future__ import annotations

import logging
import math
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.engine import retention
from ridgeline.errors import CheckpointError, LeaseLost, StorageUnavailable, StoreError
from ridgeline.faults import crash_point
from ridgeline.filetree import remove_folder
from ridgeline.paths import confined
from ridgeline.store.records import (
    COMPLETED,
    TRIAL_DONE_STATES,
    CheckpointRecord,
    CheckpointState,
)
from ridgeline.values import check_iteration, check_uuid

if TYPE_CHECKING:
    from ridgeline.engine.engine import Engine
    from ridgeline.store.base import Store

log = logging.getLogger("ridgeline")

DELETED = CheckpointState.DELETED
VALIDATION = "validation"  # the group whose searcher metric ranks checkpoints


class CheckpointNotFound(CheckpointError):
    """No such checkpoint in this experiment (it may exist in another one: not said)."""


class CheckpointForbidden(CheckpointError):
    """The checkpoint is this experiment's but belongs to another trial than the asker."""


def scored_checkpoints(store: Store, trial_id: int, metric: str | None) -> list[retention.Scored]:
    """The trial's live checkpoints, each with the finite value of ``metric`` reported in a
    validation at that checkpoint's own steps_completed (None: no such validation)."""
    scores: dict[int, float] = {}
    if metric is not None:
        for m in store.trial_metrics(trial_id, VALIDATION):
            value = m.values.get(metric)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                scores[m.step] = float(value)
    return [
        (c, scores.get(c.steps_completed))
        for c in store.list_checkpoints(trial_id)
        if c.state == COMPLETED
    ]


class Checkpoints:
    """The checkpoints of the engine's experiment, kept in ``root`` (None: trials keep none)."""

    def __init__(
        self,
        engine: Engine,
        root: Path | None,
        metric: str | None,
        keep: dict[str, int] | None = None,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.root = root
        self.metric = metric  # the searcher metric, read from the validation group
        self.keep = dict(keep or {})  # retention: save_trial_latest/best, save_experiment_best
        self._numbers: dict[int, int] = {}  # trial row id -> trial number, for this experiment

    # -- requests ----------------------------------------------------------------------------
    def register(self, number: int, uuid: Any, steps: Any, metadata: Any) -> CheckpointRecord:
        """Record trial ``number``'s finished checkpoint ``uuid`` (its folder already written).
        Idempotent: a retried registration returns the record."""
        where = f"trial {number} checkpoint"
        uuid = check_uuid(uuid, where)
        where = f"trial {number} checkpoint {uuid}"
        steps = check_iteration(steps, f"{where} steps_completed")
        if not isinstance(metadata, dict):
            raise CheckpointError(f"{where}: metadata must be an object, got {metadata!r}")
        self._refuse_foreign(number, uuid)
        if self.root is not None:
            self._check_folder(uuid, where)
        trial_id = self.engine.records[number].id
        crash_point("checkpoint_files_written")
        try:
            record = self.store.add_checkpoint(uuid, trial_id, steps, metadata)
        except (StorageUnavailable, LeaseLost):
            raise  # the store, not the request, is at fault: the run ends with the cause
        except StoreError as exc:  # registered for another trial meanwhile
            raise CheckpointForbidden(f"{where}: {exc}") from None
        crash_point("checkpoint_registered")
        self.engine.event("checkpoint", trial=number, uuid=uuid, steps_completed=steps)
        return record

    def info(self, uuid: Any, number: int | None = None) -> CheckpointRecord:
        """The checkpoint, when it is this experiment's (and, for a trial, one it may read:
        its own, the one it was cloned from, or the experiment's source checkpoint)."""
        source = self.engine.source_checkpoint
        if source is not None and check_uuid(uuid, "checkpoint") == source:
            return self.store.get_checkpoint(source)  # another experiment's, read-only here
        record, owner = self._find(uuid)
        if number is not None and owner != number and self.engine.warm_starts.get(number) != uuid:
            raise CheckpointForbidden(f"checkpoint {uuid} belongs to trial {owner}, not {number}")
        return record

    def delete(self, uuid: Any, number: int | None = None) -> CheckpointRecord:
        """Delete the checkpoint's folder and mark it DELETED; a trial deletes only its own."""
        record, owner = self._find(uuid)
        if number is not None and owner != number:
            raise CheckpointForbidden(
                f"checkpoint {uuid} belongs to trial {owner}; trial {number} cannot delete it"
            )
        return self._remove(record)

    # -- retention ---------------------------------------------------------------------------
    def scored(self, number: int) -> list[retention.Scored]:
        """A trial's live checkpoints, each with the searcher metric reported in a validation
        at that checkpoint's own steps_completed (None: no such validation)."""
        return scored_checkpoints(self.store, self.engine.records[number].id, self.metric)

    def collect_garbage(self, number: int | None = None) -> list[CheckpointRecord]:
        """Retention for an ended trial, or (``number`` None) for the experiment at its end.
        Nothing is deleted while a trial may still resume from it. Returns what went."""
        if self.root is None or not self.keep:
            return []
        records = self.engine.records
        numbers = [number] if number is not None else sorted(records)
        if any(records[n].state not in TRIAL_DONE_STATES for n in numbers):
            return []
        doomed = retention.to_delete(
            [self.scored(n) for n in numbers],
            self.engine.history.lower_is_better,
            experiment_done=number is None,
            **self.keep,
        )
        needed = {  # a clone that has not started yet starts from its parent's checkpoint
            uuid
            for child, uuid in self.engine.warm_starts.items()
            if records[child].state not in TRIAL_DONE_STATES
        }
        return [self._remove(c) for c in doomed if c.uuid not in needed]

    # -- inside ------------------------------------------------------------------------------
    def _owner(self, trial_id: int) -> int | None:
        """The trial number of row ``trial_id`` when it is this experiment's, else None."""
        if trial_id not in self._numbers:
            self._numbers = {r.id: n for n, r in self.engine.records.items()}
        return self._numbers.get(trial_id)

    def _find(self, uuid: Any) -> tuple[CheckpointRecord, int]:
        uuid = check_uuid(uuid, "checkpoint")
        try:
            record = self.store.get_checkpoint(uuid)
        except (StorageUnavailable, LeaseLost):
            raise
        except StoreError:  # no such checkpoint
            record = None
        owner = None if record is None else self._owner(record.trial_id)
        if record is None or owner is None:
            raise CheckpointNotFound(
                f"no checkpoint {uuid} in experiment {self.engine.experiment_id}"
            )
        return record, owner

    def _refuse_foreign(self, number: int, uuid: str) -> None:
        try:
            existing = self.store.get_checkpoint(uuid)
        except (StorageUnavailable, LeaseLost):
            raise
        except StoreError:  # no such checkpoint yet
            return
        if existing.trial_id != self.engine.records[number].id:
            raise CheckpointForbidden(
                f"trial {number} checkpoint {uuid}: that id is another trial's checkpoint"
            )

    def _check_folder(self, uuid: str, where: str) -> None:
        """The checkpoint must be a real folder directly inside the root."""
        assert self.root is not None
        path = confined(self.root, uuid, what="checkpoint", resolve_last=False)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise CheckpointError(
                f"{where}: no folder {uuid} in {self.root}; write the checkpoint with "
                f"store_path() before it is registered"
            ) from None
        if not stat.S_ISDIR(mode):
            raise CheckpointError(f"{where}: {path} is not a folder (a symlink or a file)")

    def _remove(self, record: CheckpointRecord) -> CheckpointRecord:
        if self.root is not None:
            try:
                name = check_uuid(record.uuid, "stored checkpoint")
            except CheckpointError as exc:  # recorded by an older version: files left alone
                log.warning("%s; its files are not deleted", exc)
                return record
            remove_folder(self.root, name)
        if record.state == DELETED:
            return record
        updated = self.store.set_checkpoint_state(record.uuid, DELETED)
        self.engine.event("checkpoint_deleted", uuid=record.uuid)
        return updated


__all__ = ["CheckpointForbidden", "CheckpointNotFound", "Checkpoints", "scored_checkpoints"]
