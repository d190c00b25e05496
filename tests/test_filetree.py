"""Copies and removals that never leave their folder: links out, loops, special files."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from ridgeline.errors import UnsafePathError
from ridgeline.filetree import copy_files, remove_folder, walk


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("precious")
    return folder


@pytest.fixture
def hostile(tmp_path: Path, outside: Path) -> Path:
    """A folder with files, links that stay inside, links out, loops and a FIFO."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    (src / "same_as_a").symlink_to("a.txt")
    (src / "escape").symlink_to(outside)
    (src / "secret.txt").symlink_to(outside / "secret.txt")
    (src / "loop").symlink_to(".")
    (src / "ping").symlink_to("pong")
    (src / "pong").symlink_to("ping")
    (src / "sub" / "up").symlink_to("..")
    (src / "dangling").symlink_to("nowhere")
    os.mkfifo(src / "fifo")
    return src


def test_walk_takes_files_and_inside_file_links_only(hostile: Path) -> None:
    tree = walk(hostile)
    assert [rel for rel, _ in tree.files] == ["a.txt", "same_as_a", "sub/b.txt"]
    skipped = dict(tree.skipped)
    assert set(skipped) == {
        "escape",
        "secret.txt",
        "loop",
        "ping",
        "pong",
        "sub/up",
        "dangling",
        "fifo",
    }
    assert "outside" in skipped["escape"] and "outside" in skipped["secret.txt"]
    assert "folder" in skipped["loop"] and "not a regular file" in skipped["fifo"]
    warning = tree.warning()
    assert warning is not None and "and 3 more" in warning


def test_copy_has_no_links_and_nothing_from_outside(hostile: Path, tmp_path: Path) -> None:
    tree = walk(hostile)
    copy_files(tree, tmp_path / "dst")
    found = {
        p.relative_to(tmp_path / "dst").as_posix(): p.read_text()
        for p in (tmp_path / "dst").rglob("*")
        if p.is_file()
    }
    assert found == {"a.txt": "a", "same_as_a": "a", "sub/b.txt": "b"}
    assert not any(p.is_symlink() for p in (tmp_path / "dst").rglob("*"))


def test_copy_never_writes_through_a_link_in_the_target(
    hostile: Path, tmp_path: Path, outside: Path
) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "a.txt").symlink_to(outside / "secret.txt")
    copy_files(walk(hostile), dst)
    assert (outside / "secret.txt").read_text() == "precious"
    assert (dst / "a.txt").read_text() == "a" and not (dst / "a.txt").is_symlink()


def test_keep_prunes_names(hostile: Path) -> None:
    tree = walk(hostile, lambda rel, is_dir: rel != "sub" and not rel.endswith(".txt"))
    assert [rel for rel, _ in tree.files] == ["same_as_a"]
    assert "secret.txt" not in dict(tree.skipped)  # ignored names are not even reported


def test_remove_folder_removes_a_tree_but_not_what_links_point_at(
    hostile: Path, outside: Path
) -> None:
    root = hostile.parent
    assert remove_folder(root, "src") is True
    assert not os.path.lexists(hostile)
    assert (outside / "secret.txt").read_text() == "precious"


def test_remove_folder_unlinks_a_link_out_and_keeps_its_target(
    tmp_path: Path, outside: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ckpt").symlink_to(outside)
    with caplog.at_level(logging.WARNING, logger="ridgeline"):
        assert remove_folder(root, "ckpt") is True
    assert not os.path.lexists(root / "ckpt")
    assert (outside / "secret.txt").read_text() == "precious"
    assert "symlink" in caplog.text


def test_remove_folder_refuses_escapes_and_leaves_files(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "file").write_text("x")
    for name in ("", ".", "..", "../outside", str(outside), "a/../../outside"):
        with pytest.raises(UnsafePathError):
            remove_folder(root, name)
    assert remove_folder(root, "file") is False and (root / "file").exists()
    assert remove_folder(root, "missing") is True
    assert root.is_dir() and (outside / "secret.txt").exists()


def test_snapshot_warns_about_what_it_leaves_out(hostile: Path, tmp_path: Path) -> None:
    from ridgeline.snapshot import take_snapshot

    (hostile / ".ridgelineignore").write_text("pong\nping\n")
    with pytest.warns(UserWarning, match="escape") as caught:
        take_snapshot(hostile, tmp_path / "snap")
    assert "ping" not in str(caught[0].message)  # ignored names are not reported
    found = sorted(
        p.relative_to(tmp_path / "snap").as_posix() for p in (tmp_path / "snap").rglob("*")
    )
    assert found == [".ridgelineignore", "a.txt", "same_as_a", "sub", "sub/b.txt"]


def test_copy_never_writes_through_a_folder_link_in_the_target(
    hostile: Path, tmp_path: Path, outside: Path
) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "sub").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="sub/b.txt"):
        copy_files(walk(hostile), dst)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
