"""Image data: IDX (MNIST-style) files, image folders, and sets lightgen draws itself.

Start with :func:`load_dataset`; see ``docs/data.md``.
"""

from lightgen.data.dataset import ImageDataset, tensor_fingerprint
from lightgen.data.errors import DataFileError, MissingDataError, MissingDependencyError
from lightgen.data.folder import FolderImages, load_image, load_image_folder
from lightgen.data.idx import read_idx, read_idx_images, read_idx_labels, write_idx
from lightgen.data.procedural import (
    DIGIT_CLASSES,
    SHAPE_CLASSES,
    make_printed_digits,
    make_shapes,
    render_digits,
)
from lightgen.data.registry import DATASET_NAMES, default_data_root, load_dataset

__all__ = [
    "DATASET_NAMES",
    "DIGIT_CLASSES",
    "SHAPE_CLASSES",
    "DataFileError",
    "FolderImages",
    "ImageDataset",
    "MissingDataError",
    "MissingDependencyError",
    "default_data_root",
    "load_dataset",
    "load_image",
    "load_image_folder",
    "make_printed_digits",
    "make_shapes",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "render_digits",
    "tensor_fingerprint",
    "write_idx",
]
