"""``CheckpointContext``: checkpoints in a shared directory, registered with the coordinator.

A checkpoint is the folder ``<storage>/<uuid>/`` with a ``metadata.json``; the trial writes it
in place (no copy), and the coordinator records it once it is complete.
"""

from __future__ import annotations

import contextlib
import enum
import json
import shutil
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ridgeline.trial.client import TrialClient

METADATA_FILE = "metadata.json"


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
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if path.is_dir() or (selector is not None and not selector(rel)):
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


class CheckpointContext:
    def __init__(self, client: TrialClient | None, storage: str | Path) -> None:
        self._client = client
        self.storage = Path(storage)

    def _dir(self, storage_id: str) -> Path:
        path = self.storage / storage_id
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
        path = self.storage / storage_id
        path.mkdir(parents=True)
        try:
            yield path, storage_id
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
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
        if self._client is not None:
            self._client.delete_checkpoint(storage_id)
        else:
            shutil.rmtree(self._dir(storage_id))
