"""``CheckpointContext``: checkpoints in a shared directory, registered with the coordinator.

A checkpoint is the folder ``<storage>/<uuid>/`` with a ``metadata.json``; the trial writes it
in place (no copy), and the coordinator records it once it is complete. Storage ids are UUIDs
made here; an id that is not one, or whose folder resolves outside the storage folder, is
refused before anything is read, copied or deleted. Copies (``upload``, ``download``) follow
the rule of ``ridgeline.filetree``: no symlink is followed out of the copied folder.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgeline.filetree import copy_files, remove_folder, walk
from ridgeline.paths import confined
from ridgeline.values import check_uuid

if TYPE_CHECKING:
    from ridgeline.core.distributed import DistributedContext
    from ridgeline.trial.client import TrialClient

METADATA_FILE = "metadata.json"
log = logging.getLogger("ridgeline.core")


class DownloadMode(enum.Enum):
    LocalWorkersShareDownload = "LOCAL_WORKERS_SHARE_DOWNLOAD"
    NoSharedDownload = "NO_SHARED_DOWNLOAD"


def _steps(metadata: dict[str, Any] | None) -> int:
    if not isinstance(metadata, dict) or "steps_completed" not in metadata:
        raise ValueError(
            "checkpoint metadata must include 'steps_completed', e.g. "
            "store_path({'steps_completed': steps})"
        )
    return int(metadata["steps_completed"])


def merge_metadata(per_rank: list[dict[str, Any]]) -> dict[str, Any]:
    """One checkpoint's metadata from every rank's: nested dicts merge; a key that ranks set
    to different values is an error that names it and them."""
    merged: dict[str, Any] = {}
    owners: dict[str, int] = {}

    def merge(into: dict[str, Any], part: dict[str, Any], rank: int, prefix: str) -> None:
        for key, value in part.items():
            where = f"{prefix}{key}"
            if isinstance(value, dict) and isinstance(into.setdefault(key, {}), dict):
                merge(into[key], value, rank, where + ".")
            elif key not in into:
                into[key] = json.loads(json.dumps(value, default=str))
                owners[where] = rank
            elif into[key] != json.loads(json.dumps(value, default=str)):
                raise RuntimeError(
                    f"checkpoint metadata {where!r} differs between rank {owners[where]} "
                    f"({into[key]!r}) and rank {rank} ({value!r}); give it on one rank only "
                    "or the same value on all"
                )

    for rank, part in enumerate(per_rank):
        merge(merged, part or {}, rank, "")
    return merged


def _copy(src: Path, dst: Path, selector: Callable[[str], bool] | None) -> None:
    """Copy ``src``'s files (those ``selector`` takes) into ``dst``, never leaving ``src``."""
    tree = walk(src, None if selector is None else lambda rel, is_dir: is_dir or selector(rel))
    message = tree.warning()
    if message is not None:
        log.warning("%s", message)
    copy_files(tree, dst)


class CheckpointContext:
    """Checkpoints of this trial. In a distributed trial ``shard=False`` calls are the chief's
    alone; with ``shard=True`` every rank calls, writes its own files into the one checkpoint
    folder (the storage is shared), and the chief records it with every rank's metadata."""

    def __init__(
        self,
        client: TrialClient | None,
        storage: str | Path,
        distributed: DistributedContext | None = None,
    ) -> None:
        self._client = client
        self.storage = Path(storage)
        self._dist = distributed if distributed is not None and distributed.size > 1 else None

    @property
    def _rank(self) -> int:
        return 0 if self._dist is None else self._dist.rank

    def _only_chief(self, call: str) -> None:
        if self._rank != 0:
            raise RuntimeError(
                f"checkpoint.{call}(shard=False) was called on a worker (rank {self._rank}): "
                "only the chief saves unsharded checkpoints; call it on every rank with "
                "shard=True to save each rank's part"
            )

    def _path(self, storage_id: str) -> Path:
        """The folder of ``storage_id``: a UUID, inside the storage folder once resolved."""
        check_uuid(storage_id, "checkpoint storage id")
        return confined(self.storage, storage_id, what="checkpoint")

    def _dir(self, storage_id: str) -> Path:
        path = self._path(storage_id)
        if not path.is_dir():
            raise FileNotFoundError(f"checkpoint {storage_id} not found in {self.storage}")
        return path

    def _register(self, storage_id: str, path: Path, metadata: dict[str, Any]) -> None:
        steps = _steps(metadata)
        (path / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
        if self._client is not None:
            self._client.register_checkpoint(storage_id, steps, metadata)

    @contextlib.contextmanager
    def store_path(
        self, metadata: dict[str, Any] | None = None, *, shard: bool = False
    ) -> Iterator[tuple[Path, str]]:
        """Yields ``(path, storage_id)``; write the checkpoint into ``path``. It is recorded
        when the block ends without an exception."""
        if shard and self._dist is not None:
            with self._store_sharded(metadata) as where:
                yield where
            return
        self._only_chief("store_path")
        _steps(metadata)
        assert metadata is not None
        storage_id = str(uuidlib.uuid4())
        self.storage.mkdir(parents=True, exist_ok=True)
        path = self._path(storage_id)
        path.mkdir()
        try:
            yield path, storage_id
        except BaseException:
            remove_folder(self.storage, storage_id)
            raise
        self._register(storage_id, path, dict(metadata))

    @contextlib.contextmanager
    def _store_sharded(self, metadata: dict[str, Any] | None) -> Iterator[tuple[Path, str]]:
        dist = self._dist
        assert dist is not None
        storage_id = None
        if dist.rank == 0:
            storage_id = str(uuidlib.uuid4())
            self.storage.mkdir(parents=True, exist_ok=True)
            self._path(storage_id).mkdir()
        storage_id = str(dist.broadcast(storage_id))  # the folder exists once this returns
        path = self._dir(storage_id)
        yield path, storage_id
        merged = merge_metadata(dist.allgather(dict(metadata or {})))
        if dist.rank == 0:
            _steps(merged)
            self._register(storage_id, path, merged)
        dist.allgather(None)  # every rank returns once the checkpoint is recorded

    def upload(
        self,
        ckpt_dir: str | Path | None,
        metadata: dict[str, Any] | None = None,
        *,
        shard: bool = False,
        selector: Callable[[str], bool] | None = None,
    ) -> str:
        if shard and self._dist is not None:
            # Ranks of one machine that name the same folder copy it once (the lowest does).
            source = None if ckpt_dir is None else Path(ckpt_dir)
            ident = None
            if source is not None:
                info = source.stat()
                ident = (self._dist.cross_rank, info.st_dev, info.st_ino)
            idents = self._dist.allgather(ident)
            with self.store_path(metadata, shard=True) as (path, storage_id):
                if source is not None and idents.index(ident) == self._rank:
                    _copy(source, path, selector)
            return storage_id
        _steps(metadata)
        assert metadata is not None
        with self.store_path(metadata) as (path, storage_id):
            if ckpt_dir is not None:
                _copy(Path(ckpt_dir), path, selector)
        return storage_id

    @contextlib.contextmanager
    def restore_path(
        self,
        storage_id: str,
        download_mode: DownloadMode = DownloadMode.LocalWorkersShareDownload,
        *,
        selector: Callable[[str], bool] | None = None,
    ) -> Iterator[Path]:
        """Yields the checkpoint's folder (shared storage: nothing is copied)."""
        yield self._dir(storage_id)

    def download(
        self,
        storage_id: str,
        ckpt_dir: str | Path,
        download_mode: DownloadMode = DownloadMode.LocalWorkersShareDownload,
        *,
        selector: Callable[[str], bool] | None = None,
    ) -> None:
        """Copy the checkpoint into ``ckpt_dir``. With ``LocalWorkersShareDownload`` (the
        default) every rank of a machine calls it and the local chief alone copies."""
        dist = self._dist
        shared = DownloadMode(download_mode) == DownloadMode.LocalWorkersShareDownload
        if dist is None or not shared or dist.local_size == 1:
            _copy(self._dir(storage_id), Path(ckpt_dir), selector)
            return
        problem = None
        if dist.local_rank == 0:
            try:
                _copy(self._dir(storage_id), Path(ckpt_dir), selector)
            except Exception as exc:  # noqa: BLE001 - the local workers must hear of it
                problem = f"{type(exc).__name__}: {exc}"
        problem = dist.broadcast_local(problem)
        if problem is not None:
            raise RuntimeError(f"the local chief could not download {storage_id}: {problem}")

    def get_metadata(self, storage_id: str) -> dict[str, Any]:
        return dict(json.loads((self._dir(storage_id) / METADATA_FILE).read_text()))

    def delete(self, storage_id: str) -> None:
        """Delete a checkpoint of this trial (through the coordinator when there is one)."""
        self._path(storage_id)
        if self._client is not None:
            self._client.delete_checkpoint(storage_id)
        else:
            remove_folder(self.storage, storage_id)
