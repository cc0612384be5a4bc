"""The emoji families as vector art: ``load_dataset("emoji-svg", size=128)``.

``<root>/emoji-svg/`` holds the same emoji drawn by three artists' families as SVG
(``noto/``, ``twemoji/``, ``openmoji/``; file stem = the emoji's *key*, its lowercase
hex code points joined by ``-``, e.g. ``1f600.svg``) and ``index.csv`` giving each key's
Unicode CLDR ``group`` (the class label), ``subgroup`` and name. A file whose key the
index does not list is ignored (the index leaves out skin tones and family extras).

Rasterising (:func:`rasterise_svg`): resvg (the ``resvg-py`` wheel, extra ``svg``) draws
the SVG with its longer side at ``size`` pixels, preserving the aspect ratio, onto a
transparent canvas that is padded to a square; the alpha channel is then composited
("over", on the stored sRGB values, as :mod:`lightgen.data.folder` does for PNGs) onto
black (the default: a dark background and a light object suit an intensity camera, as
``emoji-black``) or white.

Cache: every raster is stored as an RGB PNG under ``$LIGHTGEN_CACHE/emoji-svg`` (default
``~/.cache/lightgen/emoji-svg``), named by the SHA-256 of the SVG file's bytes, the
size, the background and the rasteriser version, so an edited file, another size or
background, or another resvg never reuses a stale raster. Each file is written to a
temporary name and moved into place (``os.replace``), so an interrupted run leaves
no half-written raster; an unreadable cache file is drawn anew. A broken SVG raises
:class:`~lightgen.data.errors.DataFileError` naming the file, and nothing is cached for it.
Rasterising the 2,027 files of the default groups took 35 s at 128 px and 260 s at
512 px here (2 CPU cores shared with other jobs), once; later loads read the cache
(6 s and 26 s).

Split (:func:`is_test_key`): by emoji key, never by file: a key is held out when a
SHA-256 of ``"lightgen-emoji-svg-split:<key>"`` read as a fraction in ``[0, 1)`` is
below :data:`TEST_FRACTION` (0.2). The same emoji drawn by another family therefore
always lands on the same side, and the split does not depend on which families or
groups are selected, nor on the load ``seed``.

Order: images are ordered round-robin over classes (within a class by key, then family
in :data:`FAMILIES` order), so ``limit=k`` keeps the classes balanced.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lightgen.data.dataset import ImageDataset
from lightgen.data.errors import DataFileError, MissingDataError, MissingDependencyError

FOLDER = "emoji-svg"
INDEX_FILE = "index.csv"
FAMILIES: tuple[str, ...] = ("noto", "twemoji", "openmoji")
#: Unicode CLDR emoji groups (``component`` has no image in the index).
CLDR_GROUPS: tuple[str, ...] = (
    "smileys-emotion",
    "people-body",
    "component",
    "animals-nature",
    "food-drink",
    "travel-places",
    "activities",
    "objects",
    "symbols",
    "flags",
)
#: Default class set for 512 px work: faces, animals and plants, food, vehicles and places.
DEFAULT_GROUPS: tuple[str, ...] = (
    "smileys-emotion",
    "animals-nature",
    "food-drink",
    "travel-places",
)
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"black": (0, 0, 0), "white": (255, 255, 255)}
DEFAULT_SIZE = 128
TEST_FRACTION = 0.2
SPLIT_SALT = "lightgen-emoji-svg-split:"
CACHE_ENV = "LIGHTGEN_CACHE"
CACHE_SUBDIR = "emoji-svg"


@dataclass(frozen=True)
class EmojiItem:
    """One SVG file of the selection: its path, emoji key, family and class index."""

    path: Path
    key: str
    family: str
    label: int


def _names(
    name: str, given: Sequence[str], known: Sequence[str], kind: str, use: str, all_: bool = False
) -> tuple[str, ...]:
    """A comma string or sequence of names -> lower-case, de-duplicated, in the order given;
    an unknown name raises naming ``kind`` and listing the valid ones; ``"all"`` (when
    ``all_``) is every known name."""
    if isinstance(given, str):
        given = [g for g in given.split(",") if g]
    chosen = tuple(dict.fromkeys(str(g).strip().lower() for g in given))
    if all_ and chosen == ("all",):
        return tuple(known)
    unknown = [g for g in chosen if g not in known]
    if unknown:
        raise ValueError(f"{name}={list(given)!r}: {unknown} not {kind}. Use any of {use}.")
    if not chosen:
        more = ", or 'all'" if all_ else ""
        raise ValueError(f"{name} is empty; name at least one of {list(known)}{more}.")
    return chosen


def check_families(families: Sequence[str] | None) -> tuple[str, ...]:
    """``None`` -> all of :data:`FAMILIES`; an unknown name raises listing the valid ones."""
    if families is None:
        return FAMILIES
    return _names(
        "families",
        families,
        FAMILIES,
        "an emoji-svg family",
        f"{list(FAMILIES)} (default: all three pooled)",
    )


def check_groups(
    groups: Sequence[str] | None, known: Sequence[str] = CLDR_GROUPS
) -> tuple[str, ...]:
    """``None`` -> :data:`DEFAULT_GROUPS`; ``"all"`` -> every group in ``known``; an unknown
    name raises listing the valid ones. The order given is the label order."""
    if groups is None:
        return DEFAULT_GROUPS
    return _names(
        "groups",
        groups,
        known,
        "a CLDR emoji group here",
        f"{list(known)}, or 'all' (default: {list(DEFAULT_GROUPS)})",
        all_=True,
    )


def check_background(background: str | None) -> str:
    """``None`` -> ``"black"``; anything but black or white raises naming the value."""
    bg = "black" if background is None else str(background).strip().lower()
    if bg not in BACKGROUNDS:
        raise ValueError(
            f"background={background!r} is not supported for emoji-svg. Use 'black' (default, "
            "as emoji-black) or 'white'."
        )
    return bg


def is_test_key(key: str) -> bool:
    """True when emoji ``key`` belongs to the held-out split (see the module doc)."""
    digest = hashlib.sha256((SPLIT_SALT + key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < TEST_FRACTION


def read_index(folder: str | Path) -> dict[str, str]:
    """``{key: CLDR group}`` from ``folder/index.csv``."""
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        raise MissingDataError(
            f"{str(path)!r} does not exist. Point root / --data-root (or LIGHTGEN_DATA) to the "
            f"folder holding {FOLDER}/ with its {INDEX_FILE}."
        )
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        index = {r["key"].strip(): r["group"].strip() for r in rows}
    except (KeyError, AttributeError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(
            f"{str(path)!r} is not an emoji index ({exc!r}); it needs the columns 'key' and "
            "'group'. Restore it from the data set's copy."
        ) from None
    return index


def list_emoji_svg(
    folder: str | Path,
    families: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], list[EmojiItem]]:
    """Class names (the selected groups) and every selected SVG, sorted by class, key, family.

    Raises:
        ValueError: an unknown family or group (naming the valid ones), or a selection
            that holds no file.
        MissingDataError: the folder, its index or a selected family's folder is absent.
    """
    folder = Path(folder)
    index = read_index(folder)
    if families is None:  # default: every family present (all three in the shared set)
        families = [f for f in FAMILIES if (folder / f).is_dir()]
        if not families:
            raise MissingDataError(
                f"{str(folder)!r} holds none of the family folders {list(FAMILIES)}. Point "
                f"root / --data-root to the folder holding {FOLDER}/."
            )
    families = check_families(families)
    present = tuple(g for g in CLDR_GROUPS if g in set(index.values()))
    present += tuple(sorted(set(index.values()) - set(present)))
    groups = check_groups(groups, present)
    label_of = {g: i for i, g in enumerate(groups)}
    items: list[EmojiItem] = []
    for fam in families:
        fam_dir = folder / fam
        if not fam_dir.is_dir():
            raise MissingDataError(
                f"family folder {str(fam_dir)!r} does not exist. Choose families among those "
                f"present, or restore {fam}/."
            )
        for path in fam_dir.iterdir():
            if path.suffix.lower() != ".svg" or path.name.startswith("."):
                continue
            group = index.get(path.stem.lower())
            if group in label_of:
                items.append(EmojiItem(path, path.stem.lower(), fam, label_of[group]))
    if not items:
        raise ValueError(
            f"families={list(families)} x groups={list(groups)} selects no SVG under "
            f"{str(folder)!r} (e.g. noto draws no flags). Add families or groups."
        )
    fam_rank = {f: i for i, f in enumerate(FAMILIES)}
    items.sort(key=lambda it: (it.label, it.key, fam_rank[it.family]))
    return groups, items


def _resvg():
    try:
        import resvg_py
    except ImportError:
        raise MissingDependencyError(
            "the emoji-svg data set rasterises SVG with resvg, which is not installed. "
            "Install it with: pip install 'lightgen[svg]' (or pip install resvg-py)."
        ) from None
    return resvg_py


def rasteriser_version() -> str:
    """``"resvg-py-<version>"``: part of every cache key."""
    import importlib.metadata

    _resvg()
    try:
        return "resvg-py-" + importlib.metadata.version("resvg-py")
    except importlib.metadata.PackageNotFoundError:
        return "resvg-py-unknown"


def rasterise_svg(
    svg: bytes, size: int, background: str = "black", name: str = "<svg>"
) -> np.ndarray:
    """SVG bytes -> ``(size, size, 3)`` uint8 RGB, alpha composited onto ``background``.

    Raises:
        DataFileError: naming ``name`` when resvg cannot parse or draw the SVG.
    """
    from PIL import Image

    resvg = _resvg()
    bg = BACKGROUNDS[check_background(background)]
    try:
        text = svg.decode("utf-8")
        png = resvg.svg_to_bytes(svg_string=text, width=size, height=size)
        with Image.open(io.BytesIO(bytes(png))) as im:
            rgba = im.convert("RGBA")
    except (ValueError, OSError, UnicodeDecodeError, RuntimeError) as exc:
        raise DataFileError(
            f"SVG file {name!r} cannot be rasterised ({exc}). Delete or replace it, or leave "
            "its family out (families=...)."
        ) from None
    w, h = rgba.size
    if w < 1 or h < 1:
        raise DataFileError(f"SVG file {name!r} rasterises to an empty image; replace it.")
    if (w, h) != (size, size):
        square = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        square.paste(rgba, ((size - w) // 2, (size - h) // 2))
        rgba = square
    canvas = Image.new("RGBA", rgba.size, (*bg, 255))
    return np.asarray(Image.alpha_composite(canvas, rgba).convert("RGB"), dtype=np.uint8)


def default_cache_dir() -> Path:
    """``$LIGHTGEN_CACHE/emoji-svg``, else ``~/.cache/lightgen/emoji-svg``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "lightgen"
    return root / CACHE_SUBDIR


def cache_key(svg: bytes, size: int, background: str) -> str:
    """Cache file name of one raster: content hash, size, background, rasteriser version."""
    digest = hashlib.sha256(svg).hexdigest()[:32]
    return f"{digest}-{size}px-{background}-{rasteriser_version()}.png"


def cached_raster(
    path: str | Path, size: int, background: str = "black", cache_dir: str | Path | None = None
) -> np.ndarray:
    """The ``(size, size, 3)`` uint8 raster of SVG file ``path``, from the cache or drawn
    (and then cached atomically)."""
    from PIL import Image

    from lightgen._io import atomic_write_bytes

    path = Path(path)
    try:
        svg = path.read_bytes()
    except OSError as exc:
        raise MissingDataError(f"SVG file {str(path)!r} cannot be read ({exc}).") from None
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = cache / cache_key(svg, size, background)
    if entry.is_file():
        try:
            with Image.open(entry) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            if arr.shape == (size, size, 3):
                return arr
        except (OSError, ValueError, SyntaxError):
            pass  # unreadable entry: draw it anew and overwrite
    arr = rasterise_svg(svg, size, background, name=str(path))
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG", compress_level=1)
    atomic_write_bytes(entry, buf.getvalue())
    return arr


def _round_robin(items: list[EmojiItem]) -> list[EmojiItem]:
    per_class: dict[int, list[EmojiItem]] = {}
    for it in items:
        per_class.setdefault(it.label, []).append(it)
    lists = [per_class[k] for k in sorted(per_class)]
    out: list[EmojiItem] = []
    for k in range(max((len(c) for c in lists), default=0)):
        out.extend(c[k] for c in lists if k < len(c))
    return out


def select_split(items: list[EmojiItem], split: str) -> list[EmojiItem]:
    """The items of ``split`` ("train", "test", "all"), round-robin over classes."""
    if split == "all":
        chosen = items
    else:
        want_test = split == "test"
        chosen = [it for it in items if is_test_key(it.key) == want_test]
    return _round_robin(chosen)


def load_emoji_svg(
    folder: str | Path,
    split: str = "train",
    size: int | None = None,
    limit: int | None = None,
    families: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    background: str | None = None,
    cache_dir: str | Path | None = None,
) -> ImageDataset:
    """Rasterised emoji of ``folder`` (the ``emoji-svg`` folder itself) as an ImageDataset.

    Args:
        folder: folder holding ``index.csv`` and the family folders.
        split: ``"train"``, ``"test"`` or ``"all"`` (held out by emoji key, module doc).
        size: raster side in pixels (default :data:`DEFAULT_SIZE`, 128).
        limit: keep the first ``limit`` images (classes stay balanced).
        families: any of :data:`FAMILIES` (default: every one present, pooled).
        groups: CLDR groups, the class labels in this order (default
            :data:`DEFAULT_GROUPS`; ``"all"`` = every group of the index).
        background: ``"black"`` (default) or ``"white"``.
        cache_dir: raster cache (default :func:`default_cache_dir`).

    Returns:
        ``ImageDataset`` named ``"emoji-svg"``, images float32 ``(N, C, size, size)`` in
        ``[0, 1]``, ``class_names`` = the groups.
    """
    size = DEFAULT_SIZE if size is None else int(size)
    background = check_background(background)
    class_names, items = list_emoji_svg(folder, families, groups)
    chosen = select_split(items, split)
    if not chosen:
        raise ValueError(
            f"split {split!r} of emoji-svg with families={families!r}, groups={groups!r} is "
            "empty (too few emoji for a held-out part). Add groups or families, or use "
            "split='all'."
        )
    if limit is not None:
        chosen = chosen[:limit]
    images = torch.empty(len(chosen), 3, size, size, dtype=torch.float32)
    for i, it in enumerate(chosen):
        arr = cached_raster(it.path, size, background, cache_dir)
        images[i] = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
    labels = torch.tensor([it.label for it in chosen], dtype=torch.int64)
    return ImageDataset(images.contiguous(), labels, class_names, FOLDER, split)


def emoji_keys(
    folder: str | Path,
    split: str = "train",
    families: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """``(key, family)`` of each image of ``split`` in the order :func:`load_emoji_svg` loads
    them (e.g. to pair the same emoji across families)."""
    _, items = list_emoji_svg(folder, families, groups)
    return [(it.key, it.family) for it in select_split(items, split)]
