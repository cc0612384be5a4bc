"""lightgen._io: atomic files and folders, CSV tables with '# key=value' lines."""

from __future__ import annotations

import os

import pytest

from lightgen._io import CommentedCsv, atomic_write, read_commented_csv, replace_dir


def test_the_temporary_file_keeps_the_target_suffix_and_is_gone_afterwards(tmp_path):
    seen = []
    atomic_write(tmp_path / "movie.gif", lambda p: (seen.append(p), p.write_bytes(b"GIF")))
    assert seen[0].suffix == ".gif" and seen[0].parent == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == ["movie.gif"]


def test_replace_dir_moves_the_old_folder_to_the_given_backup_name(tmp_path):
    out, new, backup = tmp_path / "step-1", tmp_path / "new", tmp_path / ".old-step-1"
    out.mkdir()
    (out / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    backup.mkdir()  # a stale backup from an earlier crash is replaced
    assert replace_dir(new, out, backup=backup) == backup
    assert (out / "a").read_text() == "new" and (backup / "a").read_text() == "old"
    assert not new.exists()


def test_replace_dir_puts_the_old_folder_back_when_the_move_fails(tmp_path, monkeypatch):
    out, new = tmp_path / "export", tmp_path / "stage"
    out.mkdir()
    (out / "a").write_text("old")
    new.mkdir()
    real = os.replace

    def failing(src, dst):
        if os.fspath(src) == os.fspath(new):
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        replace_dir(new, out)
    assert (out / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "stage"]


def test_a_new_folder_needs_no_backup(tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    assert replace_dir(new, tmp_path / "out") is None and (tmp_path / "out").is_dir()


def test_commented_csv_gives_metadata_and_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("# wavelength_m = 5.32e-07\n# source=lab\n\ngray,phase_rad\n0,0.0\n1,0.5\n")
    meta, rows = read_commented_csv(p, "lut", "lookup table", "Give a CSV.")
    assert meta == {"wavelength_m": "5.32e-07", "source": "lab"}
    assert [dict(r) for r in rows] == [
        {"gray": "0", "phase_rad": "0.0"},
        {"gray": "1", "phase_rad": "0.5"},
    ]


def test_a_missing_commented_csv_names_the_option_and_the_fix(tmp_path):
    with pytest.raises(
        ValueError, match=r"slm_lut='.*nope.csv': SLM calibration file not found\. Fix"
    ):
        read_commented_csv(tmp_path / "nope.csv", "slm_lut", "SLM calibration", "Fix it.")


def test_a_missing_metadata_line_is_named(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("# source=lab\ngray,phase_rad\n0,0.0\n")
    with pytest.raises(ValueError, match=r"lacks the metadata line\(s\) \['wavelength_m'\]"):
        read_commented_csv(p, "slm_lut", "SLM calibration", "Fix.", required=("wavelength_m",))


def test_a_commented_csv_format_reads_what_it_writes_and_names_missing_columns(tmp_path):
    fmt = CommentedCsv("t", "test table", "Fix.", ("k",), ("a", "b"), ("c",))
    p = tmp_path / "t.csv"
    p.write_text(fmt.text({"k": 1.5, "source": "x"}, [[1, 2, 3], [4, 5, 6]]))
    assert p.read_text() == "# k=1.5\n# source=x\na,b,c\n1,2,3\n4,5,6\n"
    meta, rows = fmt.read(p)
    assert meta == {"k": "1.5", "source": "x"} and [r["c"] for r in rows] == ["3", "6"]
    p.write_text("# k=1\na,c\n1,3\n")
    with pytest.raises(ValueError, match=r"t='.*t.csv' needs the columns a,b\[,c\]\."):
        fmt.read(p)
