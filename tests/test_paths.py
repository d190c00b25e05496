"""Paths built from untrusted parts stay inside their root; checkpoint ids are strict UUIDs."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ridgeline.errors import CheckpointError, UnsafePathError
from ridgeline.paths import confined
from ridgeline.values import check_uuid


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "inner").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return tmp_path / "root"


@pytest.mark.parametrize("part", ["/tmp/x", "../x", "", ".", "a/../../b", "inner/../..", "\x00"])
def test_escapes_and_the_root_itself_are_refused(root: Path, part: str) -> None:
    with pytest.raises(UnsafePathError, match="checkpoint"):
        confined(root, part, what="checkpoint")


def test_absolute_path_into_another_folder_is_refused(root: Path) -> None:
    with pytest.raises(UnsafePathError):
        confined(root, str(root.parent / "outside"))


def test_inside_paths_are_returned_as_built(root: Path) -> None:
    assert confined(root, "inner") == root / "inner"
    assert confined(root, "inner/new") == root / "inner" / "new"  # need not exist yet
    assert confined(root, "", allow_root=True) == root


def test_symlinks_are_resolved(root: Path) -> None:
    (root / "out").symlink_to(root.parent / "outside")
    (root / "in").symlink_to("inner")
    (root / "loop").symlink_to("loop")
    with pytest.raises(UnsafePathError):
        confined(root, "out")
    with pytest.raises(UnsafePathError):
        confined(root, "out", "file")
    assert confined(root, "in") == root / "in"
    assert confined(root, "loop") == root / "loop"  # a loop resolves to itself: no hang
    # the entry itself may be inspected or removed without following it
    assert confined(root, "out", resolve_last=False) == root / "out"
    with pytest.raises(UnsafePathError):
        confined(root, "out", "file", resolve_last=False)
    with pytest.raises(UnsafePathError):
        confined(root, "..", resolve_last=False)


def test_a_root_behind_a_symlink_still_works(root: Path) -> None:
    link = root.parent / "link_to_root"
    link.symlink_to(root)
    assert confined(link, "inner") == Path(os.path.realpath(root)) / "inner"


def test_checkpoint_ids_are_canonical_uuids() -> None:
    good = str(uuid.uuid4())
    assert check_uuid(good, "here") == good
    for bad in [
        "",
        "/tmp/x",
        "../x",
        "a/../../b",
        good.upper(),
        "{" + good + "}",
        "urn:uuid:" + good,
        good.replace("-", ""),
        good + "/..",
        None,
        7,
        uuid.UUID(good),
    ]:
        with pytest.raises(CheckpointError, match="UUID"):
            check_uuid(bad, "trial 3 checkpoint")
