"""Image-folder data sets: one class per sub-folder, PNG/JPEG decoded with Pillow.

``root/<class>/<image>.png`` -> label = index of ``<class>`` in the sorted class list.

Per image: transparent pixels are composited onto ``background`` (default white) with
the alpha channel ("over" operator, Porter & Duff 1984, on the stored sRGB values,
as every image viewer does), the image is padded to a square with ``background`` so
its aspect ratio survives, then resized to ``size`` x ``size`` with a Lanczos filter
(antialiased), and scaled to float ``[0, 1]``. Compositing comes before resizing
because resizing straight (non-premultiplied) RGBA bleeds the colour of invisible
pixels into the edges.

Files whose suffix is not an image suffix (``README``, ``.DS_Store``) are ignored.
Grey images of more than 8 bits (16-bit PNG/TIFF) are scaled by their true bit depth
(65535 is white), not clipped at 255. An image larger than Pillow's decompression-bomb
limit (``PIL.Image.MAX_IMAGE_PIXELS``) raises :class:`DataFileError` naming it.

A file *with* an image suffix that Pillow cannot decode raises :class:`DataFileError`
naming it (``on_error="raise"``, the default: a half-loaded data set silently skews
class balance) or is skipped with a ``UserWarning`` (``on_error="skip"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lightgen._checks import require_int_range
from lightgen.data.errors import DataFileError, MissingDataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class FolderImages:
    """What :func:`load_image_folder` returns.

    Attributes:
        images: float32 ``(N, C, S, S)`` in ``[0, 1]``; C = 3 (RGB) or 1 (grey).
        labels: int64 ``(N,)``.
        class_names: sorted sub-folder names.
        paths: source file of each image.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    paths: tuple[Path, ...]


def list_image_folder(
    root: str | Path, classes: Sequence[str] | None = None
) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Class names and ``(path, label)`` pairs, files sorted by name within each class."""
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(
            f"image folder {str(root)!r} does not exist. Point root (or --data-root) to a "
            "folder with one sub-folder of images per class."
        )
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        class_names = tuple(found)
    else:
        class_names = tuple(classes)
        missing = [c for c in class_names if c not in found]
        if missing:
            raise MissingDataError(
                f"classes {missing} have no sub-folder in {str(root)!r} (found {found}). "
                "Pass classes=None to use every sub-folder, or fix the names."
            )
    if not class_names:
        raise MissingDataError(
            f"image folder {str(root)!r} has no class sub-folders. Put each class's images "
            "in its own sub-folder, e.g. root/cat/001.png."
        )
    items: list[tuple[Path, int]] = []
    for label, name in enumerate(class_names):
        files = sorted(
            p
            for p in (root / name).iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        items.extend((p, label) for p in files)
    if not items:
        raise MissingDataError(
            f"image folder {str(root)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)}) "
            f"in its class sub-folders {list(class_names)}."
        )
    return class_names, items


def _parse_background(background: Sequence[int] | str) -> tuple[int, int, int]:
    if isinstance(background, str):
        from PIL import ImageColor

        try:
            return ImageColor.getrgb(background)[:3]
        except ValueError:
            raise ValueError(
                f"background={background!r} is not a colour Pillow knows. Use e.g. 'white', "
                "'black', '#808080' or an (r, g, b) tuple of 0..255 integers."
            ) from None
    rgb = tuple(background)
    if len(rgb) != 3 or any(not 0 <= int(v) <= 255 or int(v) != v for v in rgb):
        raise ValueError(
            f"background must be (r, g, b) with integers in 0..255, got {background!r}. "
            "Use e.g. (255, 255, 255) for white."
        )
    return tuple(int(v) for v in rgb)


def _load_wide_grey(
    path: Path,
    im: Image.Image,
    size: int | None,
    grey: bool,
    background: tuple[int, int, int],
) -> np.ndarray:
    """A grey image of more than 8 bits (Pillow modes ``I;16*``, ``I``, ``F``), scaled by
    its true bit depth to ``[0, 1]`` (Pillow's ``convert`` would clip it at 255)."""
    arr = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16"):
        arr = arr / 65535.0
    elif im.mode == "I" and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr / 65535.0  # 16-bit data Pillow widened to 32-bit
    elif not (im.mode == "F" and arr.size and 0.0 <= arr.min() and arr.max() <= 1.0):
        raise DataFileError(
            f"image file {str(path)!r} is a {im.mode!r} image (32-bit integer or float values "
            f"outside 0..1), whose white level is unknown. Save it as an 8- or 16-bit image."
        )
    bg = np.asarray(background, dtype=np.float64) / 255.0
    planes = [arr] if grey else [arr, arr, arr]
    fills = [float(bg @ np.array([0.299, 0.587, 0.114]))] if grey else list(bg)
    h, w = arr.shape
    side = max(h, w)
    out = []
    for plane, fill in zip(planes, fills, strict=True):
        square = np.full((side, side), fill)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = plane
        img = Image.fromarray(square.astype(np.float32), mode="F")
        if size is not None and side != size:
            img = img.resize((size, size), Image.Resampling.LANCZOS)
        out.append(np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0))
    return np.stack(out)


def load_image(
    path: str | Path,
    size: int | None = None,
    grey: bool = False,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """One image as float32 ``(C, S, S)`` in ``[0, 1]`` (see the module doc for the steps).

    ``size=None`` keeps the (square-padded) native size.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode.startswith("I") or im.mode == "F":
                return _load_wide_grey(path, im, size, grey, background)
            rgba = im.convert("RGBA")
    except Image.DecompressionBombError as exc:
        raise DataFileError(
            f"image file {str(path)!r} is too large to decode safely ({exc}). Resize it "
            "(e.g. to the chip's image size) or remove it from the folder."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataFileError(
            f"image file {str(path)!r} cannot be decoded ({exc}). Delete or replace it, or "
            "load with on_error='skip' to skip bad files with a warning."
        ) from None
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    rgb = Image.alpha_composite(canvas, rgba).convert("RGB")
    w, h = rgb.size
    if w != h:
        side = max(w, h)
        square = Image.new("RGB", (side, side), background)
        square.paste(rgb, ((side - w) // 2, (side - h) // 2))
        rgb = square
    if size is not None and rgb.size[0] != size:
        # reducing_gap: box-reduce by an integer factor first, then Lanczos; halves the
        # time for 512 -> 64 with no visible difference (Pillow docs, Image.resize).
        rgb = rgb.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if grey:
        # ITU-R BT.601 luma, Pillow's "L" conversion.
        arr = np.asarray(rgb.convert("L"), dtype=np.float32)[None]
    else:
        arr = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)
    return arr / 255.0


def load_image_folder(
    root: str | Path,
    size: int | None = None,
    grey: bool = False,
    background: Sequence[int] | str = (255, 255, 255),
    classes: Sequence[str] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
) -> FolderImages:
    """Decode every image under ``root/<class>/``.

    Args:
        root: folder with one sub-folder per class.
        size: output side in pixels (square); ``None`` keeps the native size, which
            must then be the same for every image.
        grey: return 1 channel (BT.601 luma) instead of RGB.
        background: colour under transparent pixels, (r, g, b) 0..255 or a colour name.
        classes: class sub-folders to use, in label order (default: all, sorted).
        on_error: ``"raise"`` on an undecodable image file, or ``"skip"`` it with a warning.

    Returns:
        :class:`FolderImages` with ``images`` float32 ``(N, C, S, S)`` in ``[0, 1]``.
    """
    if size is not None:
        size = require_int_range("size", size, 1, fix="Give the output side in pixels, e.g. 64.")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    bg = _parse_background(background)
    class_names, items = list_image_folder(root, classes)
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[Path] = []
    for path, label in items:
        try:
            arr = load_image(path, size, grey, bg)
        except DataFileError as exc:
            if on_error == "raise":
                raise
            warnings.warn(f"skipping {exc}", UserWarning, stacklevel=2)
            continue
        if arrays and arr.shape != arrays[0].shape:
            raise DataFileError(
                f"image file {str(path)!r} has shape {arr.shape[1:]} but {str(paths[0])!r} has "
                f"{arrays[0].shape[1:]}. Pass size=... to resize every image to one size."
            )
        arrays.append(arr)
        labels.append(label)
        paths.append(path)
    if not arrays:
        raise DataFileError(f"no image under {str(root)!r} could be decoded; see the warnings.")
    return FolderImages(
        images=torch.from_numpy(np.stack(arrays)),
        labels=torch.tensor(labels, dtype=torch.int64),
        class_names=class_names,
        paths=tuple(paths),
    )


def load_flat_folder(root: str | Path) -> tuple[torch.Tensor, tuple[Path, ...]]:
    """Every image file directly in ``root`` (sorted by name; other files such as a
    manifest are ignored), at its native size, for scoring images made elsewhere.

    Returns float32 ``(N, C, S, S)`` in ``[0, 1]`` and the files. C is 1 when every image
    is grey (a grey PNG, or RGB with equal channels), else 3 (transparent pixels over
    white). Images are never resized or padded: one that is not square, or whose size
    differs from the first's, raises :class:`DataFileError` naming both files.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(
            f"{str(root)!r} is not a folder; pass the folder that holds the images "
            "(e.g. the samples/ of `lightgen generate --format folder`)."
        )
    paths = sorted(q for q in root.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise MissingDataError(f"{str(root)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as im:
                w, h = im.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataFileError(f"image file {str(path)!r} cannot be decoded ({exc}).") from None
        if w != h:
            raise DataFileError(
                f"image file {str(path)!r} is {w}x{h}, not square; crop or pad the images "
                "to the data set's square size before scoring."
            )
        if arrays and w != arrays[0].shape[-1]:
            raise DataFileError(
                f"image file {str(path)!r} is {w}x{h} but {str(paths[0])!r} is "
                f"{arrays[0].shape[-1]}x{arrays[0].shape[-1]}; every image must have one size."
            )
        arrays.append(load_image(path))
    images = torch.from_numpy(np.stack(arrays))
    if bool((images == images[:, :1]).all()):
        images = images[:, :1].contiguous()
    return images, tuple(paths)
