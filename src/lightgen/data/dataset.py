"""The in-memory image data set every lightgen loader returns."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset


class ImageDataset(Dataset):
    """Images and integer labels held as tensors (small data sets fit in memory).

    Attributes:
        images: float32 ``(N, C, H, W)`` intensities in ``[0, 1]`` (C = 1 grey, 3 RGB).
        labels: int64 ``(N,)`` class indices into ``class_names``.
        class_names: one name per class.
        name: data set name (``"mnist"``, ``"emoji"``, ...).
        split: ``"train"``, ``"test"`` or ``"all"``.

    ``ds[i]`` returns ``(image (C, H, W), label)`` so a ``DataLoader`` works as usual.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str],
        name: str,
        split: str = "train",
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(
                f"images must be a 4-D tensor (N, C, H, W), got {shape}. "
                "Add a channel axis with images.unsqueeze(1) for grey images."
            )
        if images.dtype != torch.float32:
            raise ValueError(
                f"images must be float32 in [0, 1], got dtype {images.dtype}. "
                "Convert with images.float() / 255 for uint8 data."
            )
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels must have shape ({images.shape[0]},) to match images, got "
                f"{tuple(labels.shape)}. Give one label per image."
            )
        class_names = tuple(str(c) for c in class_names)
        if labels.numel() and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise ValueError(
                f"labels must lie in [0, {len(class_names) - 1}] for {len(class_names)} "
                f"class_names, got range [{int(labels.min())}, {int(labels.max())}]. "
                "Pass one class name per class."
            )
        self.images = images
        self.labels = labels
        self.class_names = class_names
        self.name = str(name)
        self.split = str(split)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={n}, "
            f"shape=({c}, {h}, {w}), classes={len(self.class_names)})"
        )

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return (self.images.shape[2], self.images.shape[3])

    def subset(self, indices: torch.Tensor | Sequence[int]) -> ImageDataset:
        """A new data set holding the rows ``indices`` (same names and split)."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(
            self.images[idx], self.labels[idx], self.class_names, self.name, self.split
        )

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the images and labels: equal data give equal fingerprints."""
        return tensor_fingerprint(self.images, self.labels)


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    """SHA-256 (hex) over dtype, shape and bytes of each tensor (moved to CPU)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().to("cpu").contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
