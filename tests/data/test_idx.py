"""IDX reader: format facts (big-endian header, magic 2051/2049) and every failure mode."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.data.errors import DataFileError, MissingDataError
from lightgen.data.idx import read_idx, read_idx_images, read_idx_labels, write_idx


def _images_bytes(images: np.ndarray) -> bytes:
    """An IDX image file built by hand from the published layout (not via write_idx)."""
    n, rows, cols = images.shape
    return struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()


def _labels_bytes(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, labels.shape[0]) + labels.astype(np.uint8).tobytes()


@pytest.fixture
def images() -> np.ndarray:
    return np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 7


def test_hand_built_gzip_image_file_reads_back_row_major(tmp_path, images):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_images_bytes(images)))
    out = read_idx_images(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, images)


def test_plain_uncompressed_label_file_reads_back(tmp_path):
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(_labels_bytes(labels))
    np.testing.assert_array_equal(read_idx_labels(path), labels)


def test_gzip_is_detected_by_content_not_by_name(tmp_path, images):
    path = tmp_path / "images.bin"  # gzip data without a .gz suffix
    path.write_bytes(gzip.compress(_images_bytes(images)))
    np.testing.assert_array_equal(read_idx_images(path), images)


def test_write_idx_produces_the_published_header(tmp_path, images):
    path = write_idx(tmp_path / "x-images-idx3-ubyte.gz", images)
    raw = gzip.decompress(path.read_bytes())
    assert raw[:16] == struct.pack(">IIII", 2051, 2, 3, 4)
    assert raw[16:] == images.tobytes()
    labels_path = write_idx(tmp_path / "x-labels-idx1-ubyte", np.array([1, 2, 3], np.uint8))
    assert labels_path.read_bytes()[:8] == struct.pack(">II", 2049, 3)


def test_multibyte_types_are_big_endian(tmp_path):
    data = np.array([[1, -2], [300, 70000]], dtype=np.int32)
    path = tmp_path / "ints.idx"
    path.write_bytes(
        bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 2, 2) + data.astype(">i4").tobytes()
    )
    np.testing.assert_array_equal(read_idx(path), data)
    path2 = write_idx(tmp_path / "ints2.idx", data)
    assert path2.read_bytes() == path.read_bytes()


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(0, 5),
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    gz=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_write_then_read_is_identity_for_any_image_stack(tmp_path_factory, n, rows, cols, gz, seed):
    arr = np.random.default_rng(seed).integers(0, 256, (n, rows, cols), dtype=np.uint8)
    path = tmp_path_factory.mktemp("idx") / ("a.gz" if gz else "a")
    write_idx(path, arr)
    np.testing.assert_array_equal(read_idx_images(path), arr)


def test_wrong_magic_raises_naming_the_file(tmp_path, images):
    raw = bytearray(_images_bytes(images))
    raw[:4] = struct.pack(">I", 0x12345678)
    path = tmp_path / "bad-magic-idx3-ubyte"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match=r"bad-magic-idx3-ubyte.*magic 305419896"):
        read_idx_images(path)


def test_labels_file_given_as_images_raises_naming_expected_kind(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(_labels_bytes(np.array([1, 2], np.uint8)))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*images-idx3"):
        read_idx_images(path)


def test_truncated_data_raises_naming_file_and_fix(tmp_path, images):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_images_bytes(images)[:-1]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*truncated.*data-root"):
        read_idx_images(path)


def test_header_count_larger_than_data_is_caught(tmp_path, images):
    raw = bytearray(_images_bytes(images))
    raw[4:8] = struct.pack(">I", 3)  # header claims 3 images, file holds 2
    path = tmp_path / "count-idx3-ubyte"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="truncated"):
        read_idx_images(path)


def test_trailing_bytes_beyond_header_count_are_caught(tmp_path, images):
    path = tmp_path / "long-idx3-ubyte"
    path.write_bytes(_images_bytes(images) + b"\x00")
    with pytest.raises(DataFileError, match="longer than its header"):
        read_idx_images(path)


def test_file_cut_inside_header_is_caught(tmp_path, images):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(_images_bytes(images)[:7])
    with pytest.raises(DataFileError, match=r"short-idx3-ubyte.*inside its header"):
        read_idx_images(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataFileError, match="too few"):
        read_idx_images(path)


def test_truncated_gzip_stream_raises_value_error_naming_file(tmp_path, images):
    gz = gzip.compress(_images_bytes(np.repeat(images, 50, axis=0)))
    path = tmp_path / "cut-images-idx3-ubyte.gz"
    path.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataFileError, match=r"cut-images-idx3-ubyte\.gz.*gzip"):
        read_idx_images(path)


def test_missing_file_is_both_file_not_found_and_value_error(tmp_path):
    path = tmp_path / "nope-images-idx3-ubyte.gz"
    with pytest.raises(MissingDataError, match=r"nope-images-idx3-ubyte\.gz.*does not exist") as e:
        read_idx_images(path)
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, ValueError)


def test_write_idx_rejects_types_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


@pytest.mark.parametrize("rows, cols", [(0, 0), (28, 0), (0, 28)])
def test_an_image_file_of_zero_pixel_images_is_refused_naming_the_size(tmp_path, rows, cols):
    path = tmp_path / "empty-images-idx3-ubyte"
    path.write_bytes(struct.pack(">4I", 2051, 5, rows, cols))
    with pytest.raises(DataFileError, match=f"images of {rows} x {cols} pixels"):
        read_idx_images(path)
