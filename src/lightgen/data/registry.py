"""Load any lightgen data set by name: ``load_dataset("mnist", split="test")``.

====================  =========================================  =====================
name                  source                                     splits
====================  =========================================  =====================
``mnist``             ``<root>/mnist/`` IDX files                train; test = t10k
``fashion-mnist``     ``<root>/fashion-mnist/`` IDX files        see below
``emoji``             ``<root>/noto-emoji-512/<class>/*.png``    per class 80/20
``emoji-svg``         ``<root>/emoji-svg/<family>/*.svg``        by emoji key 80/20
``folder``            ``root`` itself, one sub-folder per class  as ``emoji``
``shapes``            drawn (:mod:`lightgen.data.procedural`)    independent seeds
``printed-digits``    drawn (:mod:`lightgen.data.procedural`)    independent seeds
====================  =========================================  =====================

Split rules (fixed, independent of ``seed``, so scores stay comparable between runs):

* ``fashion-mnist``: if ``t10k-*`` files are present, test = t10k. Otherwise (the
  shared subset ships train only) the *last* 15 % of the train file
  (``round(0.15 N)`` images: 1,234 of 8,226) is the test split and the rest train.
* ``emoji`` / ``folder``: within each class, files sorted by name; every 5th file
  (positions 4, 9, 14, ...) is test, the rest train (animal 111 -> 89/22, face 112 ->
  90/22, food 91 -> 73/18, plant 26 -> 21/5; 273 train, 67 test). Images are ordered
  round-robin over classes so that ``limit=k`` keeps the classes balanced.
* ``emoji-svg``: held out by emoji key (file stem), so the same emoji in another family
  never crosses the split (:func:`lightgen.data.emoji_svg.is_test_key`); its options
  ``families``, ``groups`` (the class labels) and ``background`` select and draw the
  images (:mod:`lightgen.data.emoji_svg`); they are refused for every other set.
* ``shapes`` / ``printed-digits``: train draws 10,000 images from seed ``[seed, 0]``,
  test 2,000 from ``[seed, 1]`` (never the same images); ``limit`` sets the count.
* ``split="all"`` returns train and test together.

Derived sets: ``<name>+<transform>`` loads ``<name>`` as above, then

* ``+mosaic`` / ``+painterly`` / ``+halftone`` / ``+stained-glass`` / ``+cartoon`` (the cell styles also
  as ``+mosaic<c>`` / ``+halftone<c>`` / ``+stained-glass<c>``, cell pitch ``c`` px):
  applies that procedural style
  (:func:`lightgen.data.styles.apply_style`, defaults scaled to the final size), e.g.
  ``emoji-black+mosaic`` -- targets for style transfer;
* ``+patches<p>``: cuts every image (at its native size; ``size`` must be ``p`` or
  ``None``) into non-overlapping ``p x p`` patches, labels kept, e.g.
  ``printed-digits+patches7`` -- training data of a patch-by-patch chip.

``limit`` keeps the first ``limit`` images of the split (file order for IDX sets, whose
files are already shuffled). ``size`` resizes (antialiased) to ``size x size``;
``channels`` converts grey (1) <-> RGB (3) with BT.601 luma weights.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lightgen._checks import require_int_range
from lightgen.data.dataset import ImageDataset
from lightgen.data.errors import DataFileError, MissingDataError
from lightgen.data.folder import list_image_folder, load_image
from lightgen.data.idx import read_idx_images, read_idx_labels
from lightgen.data.procedural import (
    DIGIT_CLASSES,
    SHAPE_CLASSES,
    make_printed_digits,
    make_shapes,
)

DATA_ENV = "LIGHTGEN_DATA"
RELATIVE_DATA_ROOT = Path("..") / "shared" / "data"

MNIST_CLASSES: tuple[str, ...] = tuple("0123456789")
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_TEST_FRACTION = 0.15
FOLDER_TEST_EVERY = 5
PROCEDURAL_COUNTS = {"train": 10_000, "test": 2_000}
SPLITS = ("train", "test", "all")

_IDX_FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist"}
_EMOJI_FOLDER = "noto-emoji-512"
DATASET_NAMES: tuple[str, ...] = (
    "mnist",
    "fashion-mnist",
    "emoji",
    "emoji-black",
    "emoji-svg",
    "folder",
    "shapes",
    "printed-digits",
)
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def default_data_root() -> Path:
    """``$LIGHTGEN_DATA`` if set, else ``../shared/data`` from the current directory.

    Raises:
        MissingDataError: naming both places when neither is a folder.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise MissingDataError(
                f"{DATA_ENV}={env!r} is not a folder. Point it to the folder holding mnist/, "
                "fashion-mnist/ or noto-emoji-512/, or unset it."
            )
        return path
    rel = Path.cwd() / RELATIVE_DATA_ROOT
    if rel.is_dir():
        return rel.resolve()
    raise MissingDataError(
        f"no data root: the {DATA_ENV} environment variable is not set and {str(rel)!r} "
        f"does not exist. Set {DATA_ENV} (or pass root= / --data-root) to the folder holding "
        "mnist/, fashion-mnist/ or noto-emoji-512/, or use a built-in set: 'shapes' or "
        "'printed-digits'."
    )


def _dataset_dir(root: str | Path | None, folder: str, probe: str) -> Path:
    """``root/folder``, or ``root`` itself when it already holds ``probe``."""
    base = default_data_root() if root is None else Path(root).expanduser()
    if (base / folder).is_dir():
        return base / folder
    if (base / probe).exists():
        return base
    raise MissingDataError(
        f"{str(base / folder)!r} does not exist and {str(base)!r} holds no {probe}. Point "
        f"root / --data-root (or {DATA_ENV}) to the folder holding {folder}/."
    )


def _find_idx(folder: Path, prefix: str, kind: str) -> Path | None:
    ndim = "idx3" if kind == "images" else "idx1"
    for name in (
        f"{prefix}-{kind}-{ndim}-ubyte.gz",
        f"{prefix}-{kind}-{ndim}-ubyte",
        f"{prefix}-{kind}.{ndim}-ubyte",
    ):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    paths = {k: _find_idx(folder, prefix, k) for k in ("images", "labels")}
    for kind, path in paths.items():
        if path is None:
            ndim = "idx3" if kind == "images" else "idx1"
            raise MissingDataError(
                f"{str(folder / f'{prefix}-{kind}-{ndim}-ubyte.gz')!r} does not exist. "
                f"Download it, or point --data-root (or {DATA_ENV}) to the folder holding it."
            )
    images = read_idx_images(paths["images"])
    labels = read_idx_labels(paths["labels"])
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(
            f"{str(paths['images'])!r} holds {images.shape[0]} images but "
            f"{str(paths['labels'])!r} holds {labels.shape[0]} labels. Re-download the pair "
            "so they come from the same release."
        )
    return images, labels


def fashion_split_sizes(n: int) -> tuple[int, int]:
    """``(n_train, n_test)`` of the held-out split used when no t10k files exist."""
    n_test = round(FASHION_TEST_FRACTION * n)
    return n - n_test, n_test


def _load_idx_dataset(name: str, root, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    folder = _dataset_dir(root, _IDX_FOLDERS[name], "train-images-idx3-ubyte.gz")
    has_test = _find_idx(folder, "t10k", "images") is not None
    if name == "mnist" or has_test:
        parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
        pairs = [_load_idx_pair(folder, p) for p in parts]
        images = np.concatenate([p[0] for p in pairs])
        labels = np.concatenate([p[1] for p in pairs])
    else:
        images, labels = _load_idx_pair(folder, "train")
        n_train, _ = fashion_split_sizes(images.shape[0])
        sl = {"train": slice(0, n_train), "test": slice(n_train, None), "all": slice(None)}
        images, labels = images[sl[split]], labels[sl[split]]
    n_classes = len(MNIST_CLASSES if name == "mnist" else FASHION_CLASSES)
    if labels.size and labels.max() >= n_classes:
        raise DataFileError(
            f"{name} labels in {str(folder)!r} reach {int(labels.max())}, but {name} has "
            f"{n_classes} classes. Check that the files are {name}, not another set."
        )
    x = torch.from_numpy(images).float().div_(255.0)[:, None]
    return x, torch.from_numpy(labels.astype(np.int64))


def folder_split(labels: list[int], split: str) -> list[int]:
    """Indices of ``split`` in a label list sorted by class then file name, round-robin."""
    per_class: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        per_class.setdefault(lab, []).append(i)
    chosen: list[list[int]] = []
    for lab in sorted(per_class):
        idx = per_class[lab]
        is_test = [(k % FOLDER_TEST_EVERY) == FOLDER_TEST_EVERY - 1 for k in range(len(idx))]
        if split == "all":
            chosen.append(idx)
        else:
            chosen.append([i for i, t in zip(idx, is_test, strict=True) if t == (split == "test")])
    order: list[int] = []
    for k in range(max((len(c) for c in chosen), default=0)):
        order.extend(c[k] for c in chosen if k < len(c))
    return order


def _load_folder_dataset(
    folder: Path, split: str, size, limit, channels, background=(255, 255, 255)
):
    class_names, items = list_image_folder(folder)
    order = folder_split([lab for _, lab in items], split)
    if not order:
        raise DataFileError(
            f"split {split!r} of {str(folder)!r} is empty: every class holds fewer than "
            f"{FOLDER_TEST_EVERY} images. Add images or use split='all'."
        )
    if limit is not None:
        order = order[:limit]
    grey = channels == 1
    arrays = [load_image(items[i][0], size, grey, background) for i in order]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataFileError(
            f"images under {str(folder)!r} have different sizes {sorted(shapes)}. Pass "
            "size=... (--size) to resize them to one size."
        )
    images = torch.from_numpy(np.stack(arrays))
    labels = torch.tensor([items[i][1] for i in order], dtype=torch.int64)
    return images, labels, class_names


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-2:] == (size, size):
        return images
    out = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
    return out.clamp_(0.0, 1.0)


def _set_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=images.dtype).view(1, 3, 1, 1)
        return (images * w).sum(1, keepdim=True)
    raise ValueError(f"cannot convert {c} channels to channels={channels}; use 1 or 3.")


def _load_derived(key, root, split, size, limit, seed, channels, **options) -> ImageDataset:
    """``<base>+<transform>`` (see the module doc)."""
    from lightgen.data.styles import apply_style, cut_patches, is_style_spec

    base, transform = key.split("+", 1)
    if is_style_spec(transform):
        ds = load_dataset(base, root, split, size, limit, seed, channels, **options)
        images = apply_style(transform, ds.images).clamp_(0.0, 1.0)
        return ImageDataset(images.contiguous(), ds.labels, ds.class_names, key, split)
    digits = transform.removeprefix("patches")
    if not (transform.startswith("patches") and digits.isdigit() and int(digits) >= 2):
        raise ValueError(
            f"name={key!r}: transform {transform!r} is unknown. Use '+mosaic', '+painterly', '+cartoon', "
            "'+halftone', '+stained-glass' (a cell style may carry its pitch in pixels, "
            "'+halftone8') or '+patches<p>' (e.g. 'printed-digits+patches7')."
        )
    p = int(digits)
    if size is not None and size != p:
        raise ValueError(
            f"size={size} but {key!r} yields {p} x {p} patches; pass size={p} or None "
            f"(or a chip with image_size={p})."
        )
    # limit counts patches; every image gives at least one, so `limit` images suffice
    ds = load_dataset(base, root, split, None, limit, seed, channels, **options)
    patches = cut_patches(ds.images, p)
    labels = ds.labels.repeat_interleave(patches.shape[0] // ds.images.shape[0])
    if limit is not None:
        patches, labels = patches[:limit], labels[:limit]
    return ImageDataset(patches.contiguous(), labels.clone(), ds.class_names, key, split)


def load_dataset(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    size: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    channels: int | None = None,
    *,
    families: Sequence[str] | str | None = None,
    groups: Sequence[str] | str | None = None,
    background: str | None = None,
) -> ImageDataset:
    """Load data set ``name`` (see the module doc for names and split rules).

    Args:
        name: one of :data:`DATASET_NAMES` (case-insensitive; ``_`` = ``-``), optionally
            with a ``+mosaic`` / ``+painterly`` / ``+halftone`` / ``+stained-glass`` / ``+cartoon`` / ``+patches<p>`` suffix (module doc).
        root: data root holding ``mnist/`` etc., or the data set's own folder
            (default :func:`default_data_root`; unused by procedural sets).
        split: ``"train"``, ``"test"`` or ``"all"``.
        size: output side in pixels (default: native; 28 for procedural sets).
        limit: keep at most this many images (procedural sets: draw this many).
        seed: generation seed of procedural sets (file-backed splits are fixed).
        channels: 1 (grey) or 3 (RGB); default native (3 for emoji/folder, else 1).
        families, groups, background: ``emoji-svg`` only (:func:`load_emoji_svg`): the
            artists' families (default all three), the CLDR groups used as classes (default
            the four of :data:`~lightgen.data.emoji_svg.DEFAULT_GROUPS`) and the colour
            under transparent pixels (``"black"`` default, or ``"white"``).

    Returns:
        :class:`ImageDataset` with ``images`` float32 ``(N, C, size, size)`` in ``[0, 1]``.

    Note:
        ``emoji`` at its native 512 px is 340 x 3 x 512 x 512 float32 = 1.1 GB; pass
        ``size=64/128/256`` unless you need full resolution.
    """
    key = str(name).lower().replace("_", "-")
    options = {
        k: v
        for k, v in dict(families=families, groups=groups, background=background).items()
        if v is not None
    }
    if options and key.split("+", 1)[0] != "emoji-svg":
        raise ValueError(
            f"{sorted(options)} select emoji-svg images, but name={name!r}. Drop them, or load "
            "'emoji-svg'."
        )
    if "+" in key and key.split("+", 1)[0] in DATASET_NAMES:
        return _load_derived(key, root, split, size, limit, seed, channels, **options)
    if key not in DATASET_NAMES:
        raise ValueError(f"name={name!r} is not a lightgen data set. Use one of {DATASET_NAMES}.")
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a split. Use one of {SPLITS}.")
    if size is not None:
        size = require_int_range("size", size, 8, fix="Give the image side in pixels, e.g. 28.")
    if limit is not None:
        limit = require_int_range("limit", limit, 1, fix="Use None for every image.")
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels={channels!r} is not supported. Use 1 (grey), 3 (RGB) or None.")
    seed = require_int_range("seed", seed, 0, fix="Use a non-negative integer seed.")

    if key in ("shapes", "printed-digits"):
        maker = make_shapes if key == "shapes" else make_printed_digits
        class_names = SHAPE_CLASSES if key == "shapes" else DIGIT_CLASSES
        parts = ["train", "test"] if split == "all" else [split]
        drawn = [
            maker(
                limit if (limit is not None and split != "all") else PROCEDURAL_COUNTS[p],
                size=size or 28,
                seed=[seed, 0 if p == "train" else 1],
            )
            for p in parts
        ]
        images = torch.cat([d[0] for d in drawn])
        labels = torch.cat([d[1] for d in drawn])
    elif key == "emoji-svg":
        from lightgen.data.emoji_svg import FOLDER, INDEX_FILE, load_emoji_svg

        folder = _dataset_dir(root, FOLDER, INDEX_FILE)
        ds = load_emoji_svg(folder, split, size or None, limit, **options)
        images, labels, class_names = ds.images, ds.labels, ds.class_names
    elif key in _IDX_FOLDERS:
        images, labels = _load_idx_dataset(key, root, split)
        class_names = MNIST_CLASSES if key == "mnist" else FASHION_CLASSES
    else:
        if key == "folder":
            if root is None:
                raise ValueError(
                    "root=None: the 'folder' data set needs root= (--data-root) set to a folder "
                    "with one sub-folder of images per class."
                )
            folder = Path(root).expanduser()
        else:
            folder = _dataset_dir(root, _EMOJI_FOLDER, "animal")
        # emoji-black: the same artwork composited onto black (dark background, light object),
        # which suits an intensity-detecting camera; emoji: onto white as the artwork is drawn
        background = (0, 0, 0) if key == "emoji-black" else (255, 255, 255)
        images, labels, class_names = _load_folder_dataset(
            folder, split, size, limit, channels, background
        )
    if limit is not None and limit < images.shape[0]:
        # clone: a slice would keep the whole file's tensor alive
        images, labels = images[:limit].clone(), labels[:limit].clone()
    if size is not None:
        images = _resize(images, size)
    if channels is not None:
        images = _set_channels(images, channels)
    return ImageDataset(images.contiguous(), labels, class_names, key, split)
