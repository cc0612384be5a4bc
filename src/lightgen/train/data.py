"""The training images of a :class:`~lightgen.train.config.TrainConfig`, as the CLI loads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from lightgen.data.registry import load_dataset

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig


def train_split(cfg: TrainConfig, name: str, size: int, channels: int | None = None):
    """The training split of data set ``name`` as ``cfg`` loads it (its data root,
    ``train_limit``, seed and, for ``emoji-svg``, its ``emoji_*`` options)."""
    return load_dataset(
        name,
        root=cfg.data_root,
        split="train",
        size=size,
        limit=cfg.train_limit,
        seed=cfg.seed,
        channels=channels,
        **cfg.dataset_options(name),
    )


def with_source_domain(cfg: TrainConfig, ds, size: int):
    """``cfg.dataset``'s images ``ds`` then ``cfg.source_dataset``'s, their labels, and the
    domain of each (0 / 1) for ``routing='domain'``."""
    src = train_split(cfg, cfg.source_dataset, size, channels=ds.images.shape[1])
    if cfg.condition_on != "none" and src.n_classes != ds.n_classes:
        raise ValueError(
            f"condition_on={cfg.condition_on!r} shares the classes of both domains, but "
            f"{cfg.dataset!r} has {ds.n_classes} and {cfg.source_dataset!r} {src.n_classes}; "
            "pick sets with the same classes or condition_on='none'."
        )
    domains = torch.cat(
        [
            torch.zeros(len(ds.images), dtype=torch.long),
            torch.ones(len(src.images), dtype=torch.long),
        ]
    )
    return torch.cat([ds.images, src.images]), torch.cat([ds.labels, src.labels]), domains
