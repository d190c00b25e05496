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


def _copy(src: Path, dst: Path, selector: Callable[[str], bool] | None) -> None:
    """Copy ``src``'s files (those ``selector`` takes) into ``dst``, never leaving ``src``."""
    tree = walk(src, None if selector is None else lambda rel, is_dir: is_dir or selector(rel))
    message = tree.warning()
    if message is not None:
        log.warning("%s", message)
    copy_files(tree, dst)


class CheckpointContext:
    def __init__(self, client: TrialClient | None, storage: str | Path) -> None:
        self._client = client
        self.storage = Path(storage)

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

    def upload(
        self,
        ckpt_dir: str | Path | None,
        metadata: dict[str, Any] | None = None,
        *,
        shard: bool = False,
        selector: Callable[[str], bool] | None = None,
    ) -> str:
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
        _copy(self._dir(storage_id), Path(ckpt_dir), selector)

    def get_metadata(self, storage_id: str) -> dict[str, Any]:
        return dict(json.loads((self._dir(storage_id) / METADATA_FILE).read_text()))

    def delete(self, storage_id: str) -> None:
        """Delete a checkpoint of this trial (through the coordinator when there is one)."""
        self._path(storage_id)
        if self._client is not None:
            self._client.delete_checkpoint(storage_id)
        else:
            remove_folder(self.storage, storage_id)
