"""Read and write IDX files, the format of MNIST and Fashion-MNIST (gzip or plain).

Layout (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header

* 4-byte magic ``0x00 0x00 <type> <ndim>``; type ``0x08`` is uint8, so images
  ``(N, rows, cols)`` have magic 2051 (``0x0803``) and labels ``(N,)`` 2049 (``0x0801``);
* ``ndim`` big-endian uint32 sizes;
* the data, row-major, big-endian.

The reader checks the magic, and that the header's sizes account for every byte of the
(decompressed) file: a truncated download or a header from another file is caught here,
not as a shape error three modules later. Gzip is recognised by its magic bytes, not by
the file name.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from lightgen.data.errors import DataFileError, MissingDataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"


def _fix(path: Path) -> str:
    return (
        f"Re-download {path.name}, or point --data-root (or the LIGHTGEN_DATA environment "
        f"variable) to the folder holding a good copy of {path.name}."
    )


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise MissingDataError(f"IDX file {str(path)!r} does not exist. {_fix(path)}")
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        # gzip raises BadGzipFile (OSError) for bad headers, EOFError when truncated.
        raise DataFileError(
            f"IDX file {str(path)!r} is not a readable gzip file ({exc}). {_fix(path)}"
        ) from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read any IDX file into a native-endian numpy array of the header's shape.

    Raises:
        MissingDataError: the file does not exist.
        DataFileError: bad gzip stream, bad magic, or header sizes that disagree with the
            number of data bytes (truncated or padded file).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataFileError(
            f"IDX file {str(path)!r} holds {len(raw)} bytes, too few for the 4-byte magic. "
            + _fix(path)
        )
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        magic = struct.unpack(">I", raw[:4])[0]
        raise DataFileError(
            f"IDX file {str(path)!r} has magic {magic} (0x{magic:08x}), which is not an IDX "
            f"magic (expected e.g. {IMAGES_MAGIC} for images, {LABELS_MAGIC} for labels). "
            + _fix(path)
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataFileError(
            f"IDX file {str(path)!r} is truncated inside its header ({len(raw)} bytes, header "
            f"needs {header_len}). " + _fix(path)
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header_len + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataFileError(
            f"IDX file {str(path)!r} is {kind}: header sizes {dims} need {expected} bytes, "
            f"the file holds {len(raw)}. " + _fix(path)
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def _read_checked(path: str | Path, magic: int, what: str, stem: str) -> np.ndarray:
    path = Path(path)
    data = read_idx(path)
    found = (0x08 << 8) | data.ndim if data.dtype == np.uint8 else None
    if found != magic:
        raise DataFileError(
            f"IDX file {str(path)!r} holds {data.dtype} data of {data.ndim} dims, not {what} "
            f"(magic {magic}). Pass the matching *-{stem}-ubyte file. " + _fix(path)
        )
    if 0 in data.shape[1:]:
        raise DataFileError(
            f"IDX file {str(path)!r} holds images of {data.shape[1]} x {data.shape[2]} pixels "
            f"(header sizes {data.shape}); images need at least one pixel. " + _fix(path)
        )
    return data


def read_idx_images(path: str | Path) -> np.ndarray:
    """Images ``(N, rows, cols)`` uint8 from an IDX file with magic 2051."""
    return _read_checked(path, IMAGES_MAGIC, "uint8 images (N, rows, cols)", "images-idx3")


def read_idx_labels(path: str | Path) -> np.ndarray:
    """Labels ``(N,)`` uint8 from an IDX file with magic 2049."""
    return _read_checked(path, LABELS_MAGIC, "uint8 labels (N,)", "labels-idx1")


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    uint8 arrays of 3 dims get magic 2051 and of 1 dim magic 2049, as in MNIST.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    if array.dtype not in codes:
        raise ValueError(
            f"array dtype {array.dtype} has no IDX type code; cast to one of "
            f"{sorted(str(d) for d in codes)} (uint8 for MNIST-style files)."
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array must have 1..255 dims for IDX, got shape {array.shape}.")
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    body = np.ascontiguousarray(array).astype(array.dtype.newbyteorder(">")).tobytes()
    payload = header + body
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    path.write_bytes(payload)
    return path
