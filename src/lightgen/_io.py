"""File I/O for every package: atomic writes, and CSV tables with ``# key=value`` lines
(:class:`CommentedCsv`: one object per table format, read and written by it).

Atomic writes: a file or a folder is either complete or not there.

Files are written to a temporary name in the same directory (ending in the target's
suffix, so writers that pick a format from the name still work) and moved into place
with ``os.replace`` (atomic on POSIX and Windows within one file system). A finished
folder replaces an old one by :func:`replace_dir`: the old folder is moved aside first
and deleted only after the new one is in place. Atomic against the process being
interrupted, not against power loss (no fsync).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fail(name: str, path: Path, why: str) -> ValueError:
    return ValueError(
        f"{name}={str(path)!r} is not writable: {why}. Choose a folder you can write to."
    )


def check_writable_dir(path: str | os.PathLike, name: str = "out_dir") -> Path:
    """Create ``path`` (and parents) if needed and check that files can be created in it."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise _fail(name, p, "it is an existing file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _fail(name, p, f"cannot create it ({e.strerror or e})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise _fail(name, p, "permission denied")
    return p


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then move the result to ``path`` atomically.

    ``tmp_path`` is a fresh hidden file next to ``path`` with the same suffix; it is
    removed if ``write`` fails.
    """
    p = Path(path)
    parent = check_writable_dir(p.parent, "path")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{p.name}.", suffix=f".tmp{p.suffix}")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        write(Path(tmp))
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda t: t.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda t: t.write_text(text, encoding="utf-8"))


def replace_dir(
    new: str | os.PathLike, out: str | os.PathLike, backup: Path | None = None
) -> Path | None:
    """Move the finished folder ``new`` to ``out``; return the old ``out`` moved aside, or None.

    An existing ``out`` is first renamed to ``backup`` (default: a fresh hidden sibling
    ``.<name>.old-*``; a given ``backup`` that exists is deleted first), so a reader
    never sees a half-replaced folder and a crash leaves the old one findable under
    that name. If the final move fails the old folder is put back. The caller deletes
    the returned backup once it no longer needs a fallback.
    """
    new, out = Path(new), Path(out)
    old = None
    if out.exists():
        if backup is None:
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.rmdir(old)
        else:
            old = Path(backup)
            if old.exists():
                shutil.rmtree(old)
        os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    return old


@dataclass(frozen=True)
class CommentedCsv:
    """A CSV table format with ``# key=value`` metadata lines: its name in messages
    (``name='path'``, ``what``, ``fix``), its required metadata keys and its columns
    (``optional_columns`` may be missing or empty in a file; they are always written)."""

    name: str
    what: str
    fix: str
    meta_keys: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    optional_columns: tuple[str, ...] = ()

    def text(self, meta: dict[str, object], rows: Iterable[Sequence[object]]) -> str:
        """A ``# key=value`` line per item of ``meta``, then the table (``\\n`` line ends)."""
        buf = io.StringIO()
        for key, value in meta.items():
            buf.write(f"# {key}={value}\n")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([*self.columns, *self.optional_columns])
        w.writerows(rows)
        return buf.getvalue()

    def read(self, path: str | os.PathLike) -> tuple[dict[str, str], csv.DictReader]:
        """``(metadata, rows)`` of the file at ``path``; ValueError naming what is missing."""
        meta, reader = read_commented_csv(path, self.name, self.what, self.fix, self.meta_keys)
        if not reader.fieldnames or not set(self.columns) <= set(reader.fieldnames):
            more = "".join(f"[,{c}]" for c in self.optional_columns)
            raise ValueError(
                f"{self.name}={str(Path(path))!r} needs the columns {','.join(self.columns)}{more}."
            )
        return meta, reader


def read_commented_csv(
    path: str | os.PathLike, name: str, what: str, fix: str, required: tuple[str, ...] = ()
) -> tuple[dict[str, str], csv.DictReader]:
    """A CSV table after ``# key=value`` metadata lines: ``(metadata, rows)``.

    Lines starting with ``#`` give ``key=value`` pairs (whitespace around both
    stripped), wherever they stand; blank lines are skipped; the other lines are the
    table, read by :class:`csv.DictReader` (its first line names the columns). A
    missing file raises ValueError ``"{name}='path': {what} file not found. {fix}"``, and
    so does a missing ``required`` metadata key.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{name}={str(p)!r}: {what} file not found. {fix}")
    meta: dict[str, str] = {}
    rows: list[str] = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            meta[key.strip()] = value.strip()
        elif line.strip():
            rows.append(line)
    missing = [k for k in required if k not in meta]
    if missing:
        raise ValueError(
            f"{name}={str(p)!r} lacks the metadata line(s) {missing}; add '# key=value' lines."
        )
    return meta, csv.DictReader(rows)
