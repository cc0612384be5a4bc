"""Atomic export folders: an export folder is either complete or not there.

Export folders are built in a hidden sibling staging folder and swapped in at the end
(:func:`lightgen._io.replace_dir`), so an interrupted export never leaves a
half-written folder behind. The file writers live in :mod:`lightgen._io` (one home
for every package) and stay importable from here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lightgen._io import (  # noqa: F401  (re-exported: this module was their home)
    _fail,
    _umask,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    check_writable_dir,
    replace_dir,
)

#: File every lightgen export folder holds; a folder without it is never replaced.
MARKER = "design.json"


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
    try:
        backup = replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
