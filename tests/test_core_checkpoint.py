"""The trial side's checkpoints: UUIDs made here, storage ids that are paths refused."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import ridgeline
from ridgeline.errors import CheckpointError, UnsafePathError

HOSTILE = ["/tmp/x", "../x", "", "a/../../b"]


@pytest.fixture
def ctx(workdir: Path) -> ridgeline.core.Context:
    return ridgeline.core.init(checkpoint_storage=workdir / "storage")


@pytest.fixture
def outside(workdir: Path) -> Path:
    folder = workdir / "outside"
    folder.mkdir()
    (folder / "metadata.json").write_text('{"steps_completed": 1}')
    (folder / "secret.txt").write_text("precious")
    return folder


def test_store_path_and_upload_make_uuids(ctx: ridgeline.core.Context, workdir: Path) -> None:
    with ctx.checkpoint.store_path({"steps_completed": 1}) as (path, storage_id):
        (path / "w").write_text("1")
    assert str(uuid.UUID(storage_id)) == storage_id and path.parent == ctx.checkpoint.storage
    (workdir / "model").mkdir()
    (workdir / "model" / "w").write_text("2")
    uploaded = ctx.checkpoint.upload(workdir / "model", {"steps_completed": 2})
    assert str(uuid.UUID(uploaded)) == uploaded != storage_id
    assert ctx.checkpoint.get_metadata(uploaded) == {"steps_completed": 2}


@pytest.mark.parametrize("storage_id", [*HOSTILE, "outside"])
def test_ids_that_are_not_uuids_are_refused(
    ctx: ridgeline.core.Context, workdir: Path, outside: Path, storage_id: str
) -> None:
    if storage_id == "outside":
        storage_id = str(outside)
    with pytest.raises(CheckpointError, match="UUID"):
        with ctx.checkpoint.restore_path(storage_id):
            pass
    with pytest.raises(CheckpointError):
        ctx.checkpoint.download(storage_id, workdir / "dl")
    with pytest.raises(CheckpointError):
        ctx.checkpoint.get_metadata(storage_id)
    with pytest.raises(CheckpointError):
        ctx.checkpoint.delete(storage_id)
    assert (outside / "secret.txt").exists() and not (workdir / "dl").exists()


def test_a_uuid_folder_that_links_out_is_refused(
    ctx: ridgeline.core.Context, workdir: Path, outside: Path
) -> None:
    storage_id = str(uuid.uuid4())
    ctx.checkpoint.storage.mkdir(parents=True)
    (ctx.checkpoint.storage / storage_id).symlink_to(outside)
    with pytest.raises(UnsafePathError):
        with ctx.checkpoint.restore_path(storage_id):
            pass
    with pytest.raises(UnsafePathError):
        ctx.checkpoint.download(storage_id, workdir / "dl")
    with pytest.raises(UnsafePathError):
        ctx.checkpoint.get_metadata(storage_id)
    with pytest.raises(UnsafePathError):
        ctx.checkpoint.delete(storage_id)
    assert (outside / "secret.txt").read_text() == "precious"


def test_links_out_and_loops_are_not_copied(
    ctx: ridgeline.core.Context, workdir: Path, outside: Path
) -> None:
    model = workdir / "model"
    model.mkdir()
    (model / "w").write_text("1")
    (model / "escape").symlink_to(outside)
    (model / "secret.txt").symlink_to(outside / "secret.txt")
    (model / "loop").symlink_to(".")
    storage_id = ctx.checkpoint.upload(model, {"steps_completed": 1})
    stored = ctx.checkpoint.storage / storage_id
    assert sorted(p.name for p in stored.iterdir()) == ["metadata.json", "w"]
    (stored / "escape").symlink_to(outside)
    (stored / "loop").symlink_to(".")
    ctx.checkpoint.download(storage_id, workdir / "dl")
    assert sorted(p.name for p in (workdir / "dl").iterdir()) == ["metadata.json", "w"]
    ctx.checkpoint.delete(storage_id)
    assert not stored.exists() and (outside / "secret.txt").read_text() == "precious"
