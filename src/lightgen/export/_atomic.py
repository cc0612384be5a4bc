"""Atomic writes: a file or an export folder is either complete or not there.

Files are written to a temporary name in the same directory and moved into place
with ``os.replace`` (atomic on POSIX and Windows within one file system). Export
folders are built in a hidden sibling staging folder and swapped in at the end, so
an interrupted export never leaves a half-written folder behind (an old folder being
replaced is moved aside first and deleted only after the new one is in place).
Atomic against the process being interrupted, not against power loss (no fsync).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

#: File every lightgen export folder holds; a folder without it is never replaced.
MARKER = "design.json"


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
    """Call ``write(tmp_path)`` then move the result to ``path`` atomically."""
    p = Path(path)
    parent = check_writable_dir(p.parent, "path")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; exports get normal permissions
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


@contextlib.contextmanager
def staged_dir(
    out_dir: str | os.PathLike, overwrite: bool = False, name: str = "out_dir"
) -> Iterator[Path]:
    """Yield an empty staging folder; on success it becomes ``out_dir``, on error it is removed.

    Raises ValueError before anything is written if ``out_dir`` is a file, cannot be
    created, or is a non-empty folder and ``overwrite`` is false.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise _fail(name, out, "it is an existing file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(
                f"{name}={str(out)!r} exists and is not empty. Pass overwrite=True (CLI: "
                "--overwrite) "
                "to replace it, or choose a new folder."
            )
        if not (out / MARKER).is_file():
            # never delete a folder we did not write (think --out ~ --overwrite)
            raise ValueError(
                f"{name}={str(out)!r} is not empty and holds no {MARKER}, so it is not a lightgen "
                "export; refusing to replace it even with overwrite=True. Choose a new folder."
            )
    parent = check_writable_dir(
        out.parent if str(out.parent) else Path("."), f"{name} (parent folder)"
    )
    stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.staging-"))
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700; give the export normal permissions
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    backup = None
    if out.exists():
        backup = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.old-"))
        os.rmdir(backup)
        os.replace(out, backup)
    try:
        os.replace(stage, out)
    except BaseException:
        if backup is not None:
            os.replace(backup, out)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
