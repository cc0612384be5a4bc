"""Atomic files and folders: never half-written, never deleting what we did not write."""

from __future__ import annotations

import pytest

from lightgen.export._atomic import (
    MARKER,
    atomic_write,
    atomic_write_text,
    check_writable_dir,
    staged_dir,
)


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    target = tmp_path / "a.txt"

    def boom(path):
        path.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_existing_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_staged_folder_appears_only_on_success(tmp_path):
    out = tmp_path / "export"
    with pytest.raises(RuntimeError), staged_dir(out) as stage:
        (stage / "half.txt").write_text("x")
        raise RuntimeError("interrupted")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with staged_dir(out) as stage:
        (stage / MARKER).write_text("{}")
    assert (out / MARKER).is_file()


def test_failed_overwrite_keeps_the_old_export(tmp_path):
    out = tmp_path / "export"
    with staged_dir(out) as stage:
        (stage / MARKER).write_text("old")
    with pytest.raises(RuntimeError), staged_dir(out, overwrite=True) as stage:
        raise RuntimeError("interrupted")
    assert (out / MARKER).read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_non_empty_folder_needs_overwrite_and_foreign_folders_are_never_replaced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="overwrite=True"), staged_dir(out):
        pass
    with pytest.raises(ValueError, match="not a lightgen"), staged_dir(out, overwrite=True):
        pass
    assert (out / "thesis.tex").read_text() == "precious"


def test_unwritable_location_raises_value_error_naming_it(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"out_dir.*not writable"):
        check_writable_dir(blocker / "sub")
    with pytest.raises(ValueError, match="existing file"):
        check_writable_dir(blocker)
    with pytest.raises(ValueError, match="not writable"), staged_dir(blocker / "sub" / "export"):
        pass
