"""The training images of a :class:`~lightgen.train.config.TrainConfig`, as the CLI loads them,
and the checked tensors one run trains on (:class:`TrainingData`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lightgen.data.deform import handwriting_like
from lightgen.data.registry import load_dataset
from lightgen.train.system import check_class_labels, label_conditions

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


def run_split(
    cfg: TrainConfig,
    split: str,
    limit: int | None = None,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    seed: int | None = None,
    channels: int | None = None,
):
    """Split ``split`` of data set ``dataset`` (default the run's own) as the run loads it:
    at its chip's image size, from ``data_root`` (default the run's), with the run's loader
    options for that set (emoji-svg families and groups), the first ``limit`` images,
    seeded by ``seed`` (default the run's); ``channels`` converts grey <-> RGB (default:
    the set's own). Every task and the lab load a run's held-out images here."""
    name = dataset or cfg.dataset
    return load_dataset(
        name,
        root=data_root or cfg.data_root,
        split=split,
        size=cfg.chip_config().image_size,
        limit=limit,
        seed=cfg.seed if seed is None else seed,
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


@dataclass(frozen=True)
class TrainingData:
    """The tensors one training run reads, checked against its config and aligned image by
    image: what :class:`~lightgen.train.trainer.Trainer` takes apart into batches.

    Build it with :meth:`from_tensors` (the checks), not the constructor. ``images``
    ``(N, C, S, S)`` float are the encoder's inputs (deformed by ``input_augment=
    'handwriting'``); ``targets`` the camera's targets (``None``: each image itself,
    BOGT); ``conditions`` ``(N, k)`` complex the values injected into the condition fibers;
    ``components`` ``(N,)`` the prior component of each image's KL; ``domains`` ``(N,)``
    the generator of each image (``routing='domain'``); ``labels`` ``(N,)`` the class
    labels as given (read by an extra loss, :class:`~lightgen.train.trainer.TrainBatch`).
    """

    images: torch.Tensor
    targets: torch.Tensor | None = None
    conditions: torch.Tensor | None = None
    components: torch.Tensor | None = None
    domains: torch.Tensor | None = None
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def tensors(self) -> dict[str, torch.Tensor | None]:
        """The tensors a checkpoint fingerprints (:func:`~lightgen.train.trainer.
        data_summary`; ``labels`` enter through ``conditions`` or ``components``)."""
        return {
            "images": self.images,
            "targets": self.targets,
            "conditions": self.conditions,
            "components": self.components,
            "domains": self.domains,
        }

    def check(self, cfg: TrainConfig) -> TrainingData:
        """Refuse data built for another config (image size, batch size, what the config's
        conditioning, routing and augmentation need); returns ``self``."""
        chip_cfg = cfg.chip_config()
        want = (chip_cfg.image_channels, chip_cfg.image_size, chip_cfg.image_size)
        n = len(self)
        needs = {
            "images of shape (N, C, S, S) for this preset": self.images.ndim == 4
            and tuple(self.images.shape[1:]) in (want, (1, *want[1:])),
            f"at least batch_size={cfg.batch_size} images": n >= cfg.batch_size,
            "components exactly with condition_on='components'": (
                (cfg.condition_on == "components") == (self.components is not None)
            ),
            "domains exactly with routing='domain'": (
                (cfg.routing == "domain") == (self.domains is not None)
            ),
            f"conditions of shape ({n}, {cfg.condition_fibers})": (
                self.conditions is None
                if not cfg.condition_fibers
                else self.conditions is not None
                and tuple(self.conditions.shape) == (n, cfg.condition_fibers)
            ),
            "targets with input_augment='handwriting'": (
                cfg.input_augment != "handwriting" or self.targets is not None
            ),
        }
        missing = [k for k, ok in needs.items() if not ok]
        if missing:
            raise ValueError(
                f"this TrainingData was built for another config: the config needs "
                f"{'; '.join(missing)}. Build it with TrainingData.from_tensors(cfg, ...) "
                "for the config you train."
            )
        return self

    @classmethod
    def from_tensors(
        cls,
        cfg: TrainConfig,
        images: torch.Tensor,
        conditions: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        domains: torch.Tensor | None = None,
    ) -> TrainingData:
        """Check the tensors against ``cfg`` and derive what it asks for; raises ValueError
        naming the fix.

        ``labels`` ``(N,)``: with ``cfg.condition_on='labels'`` their one-hot codes
        (:func:`~lightgen.train.system.label_conditions`, ``cfg.condition_amplitude``) are
        injected into the ``cfg.condition_fibers`` condition fibers (set it with
        :meth:`TrainConfig.with_label_conditions`); pass either ``labels`` or
        ``conditions``. With ``cfg.condition_on='components'`` image ``i``'s KL is taken
        against prior component ``labels[i]`` (``cfg.n_components`` = the number of
        classes). ``domains`` ``(N,)``: with ``cfg.routing='domain'``, 0 for an image of
        ``cfg.dataset`` and 1 for one of ``cfg.source_dataset``. ``targets``: one camera
        target per image (e.g. the multi-view task's other view); with
        ``cfg.input_augment='handwriting'`` the targets are the undeformed images."""
        given_labels = labels
        components = None
        if cfg.condition_on == "components":
            if labels is None or labels.shape != (images.shape[0],):
                got = None if labels is None else tuple(labels.shape)
                raise ValueError(
                    f"condition_on='components' needs one label per training image, shape "
                    f"({images.shape[0]},); got {got}. Pass labels=dataset.labels."
                )
            components = check_class_labels(labels, cfg.n_components, "n_components")
        elif cfg.condition_on == "labels":
            if conditions is not None or labels is None:
                raise ValueError(
                    "condition_on='labels' builds the conditions from the data set's labels: "
                    "pass labels=dataset.labels (and no conditions)."
                )
            if cfg.condition_fibers < 2:
                raise ValueError(
                    f"condition_on='labels' needs condition_fibers = the number of classes, got "
                    f"{cfg.condition_fibers}; call cfg.with_label_conditions(dataset.n_classes)."
                )
            if labels.shape != (images.shape[0],):
                raise ValueError(
                    f"labels have shape {tuple(labels.shape)}; pass one label per training "
                    f"image, shape ({images.shape[0]},)."
                )
            conditions = label_conditions(labels, cfg.condition_fibers, cfg.condition_amplitude)
        elif labels is not None:
            raise ValueError(
                "labels given but condition_on='none'; training is unsupervised. Set "
                "condition_on='labels' to use them as injected conditions."
            )
        if (cfg.routing == "domain") != (domains is not None):
            raise ValueError(
                f"routing={cfg.routing!r} but domains is {'given' if domains is not None else 'None'}; "
                "pass domains (0 = dataset, 1 = source_dataset, one per image) exactly when "
                "routing='domain'."
            )
        if domains is not None:
            domains = torch.as_tensor(domains)
            if (
                domains.shape != (images.shape[0],)
                or not torch.isin(domains, torch.tensor([0, 1])).all()
            ):
                raise ValueError(
                    f"domains must be 0 (dataset) or 1 (source_dataset), one per training image, "
                    f"shape ({images.shape[0]},); got shape {tuple(domains.shape)} with values "
                    f"{sorted(set(domains.flatten().tolist()))[:5]}."
                )
            domains = domains.long()
        chip_cfg = cfg.chip_config()
        want = (chip_cfg.image_channels, chip_cfg.image_size, chip_cfg.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) not in (want, (1, *want[1:])):
            raise ValueError(
                f"training images have shape {tuple(images.shape)}; preset {cfg.preset!r} needs "
                f"(N, {want[0]}, {want[1]}, {want[2]}). Load the data with size={want[1]}."
            )
        if images.shape[0] < cfg.batch_size:
            raise ValueError(
                f"batch_size={cfg.batch_size} exceeds the {images.shape[0]} training images; lower it."
            )
        inputs = images.float()
        if cfg.input_augment == "handwriting":
            if targets is not None:
                raise ValueError(
                    "input_augment='handwriting' makes the targets itself (the undeformed "
                    "images); pass targets=None or set input_augment='none'."
                )
            targets = inputs
            # with two domains only the dataset's own images (domain 0) are deformed
            pick = slice(None) if domains is None else domains == 0
            inputs = inputs.clone()
            inputs[pick] = handwriting_like(targets[pick], seed=cfg.seed)
        if cfg.condition_fibers and (
            conditions is None or conditions.shape != (images.shape[0], cfg.condition_fibers)
        ):
            raise ValueError(
                f"condition_fibers={cfg.condition_fibers} needs conditions of shape "
                f"({images.shape[0]}, {cfg.condition_fibers}) (one complex value per image and fiber)."
            )
        if targets is not None and tuple(targets.shape) != tuple(images.shape):
            raise ValueError(
                f"targets have shape {tuple(targets.shape)} but the images {tuple(images.shape)}; "
                "give one reconstruction target per training image (or targets=None for BOGT)."
            )
        return cls(
            images=inputs,
            targets=None if targets is None else targets.float(),
            conditions=conditions,
            components=components,
            domains=domains,
            labels=given_labels,
        )
