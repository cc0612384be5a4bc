"""`lightgen eval`: quality of a trained model on a data set's held-out split.

Scores (all from :mod:`lightgen.metrics`): FID, KID and precision/recall of generated
images against held-out real images, in the feature space of a small CNN classifier
trained on the data set's train split (cached, never downloaded); reconstruction
PSNR/SSIM and the same scores of the reconstructions; the copying control
(:mod:`lightgen.metrics.copying`); the sampler used (:mod:`lightgen.train.expost`); for
the chip, the optical efficiencies (fiber coupling, generator diffraction).

Per-class generation (:func:`class_conditional_scores`). Training never sees labels, so
which mixture component stands for which class is decided afterwards by the *encoder*
(posterior means, most responsible component, Hungarian match of classes to
components), never by the classifier that scores the samples -- that would make the
score circular. Class-conditional models (``condition_on='labels'``) inject each class's
one-hot code instead, and label-selected components (``condition_on='components'``)
are used as trained. The method, its target and the measured numbers: docs/tasks.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from lightgen._checks import require_nonnegative
from lightgen.data.registry import load_dataset
from lightgen.metrics.classifier import load_or_train_classifier, predict
from lightgen.metrics.copying import copying_control, rendered_copying_control
from lightgen.metrics.fid import generative_scores
from lightgen.metrics.image import psnr, ssim
from lightgen.optics.grid import centred_start, intensity, power
from lightgen.tasks.common import match_channels
from lightgen.tasks.generate import encode, reconstruct, sample

if TYPE_CHECKING:
    from lightgen.chip.fabrication import FabricationModel
    from lightgen.train.config import TrainConfig
    from lightgen.train.expost import ExPostSampler
    from lightgen.train.system import BOGTSystem


def classifier_epochs(n_train: int, batch_size: int = 128) -> int:
    """3 epochs, as the metrics module's default; small data sets (< 2,000 images, e.g. the
    273 emoji) get enough epochs for >= 300 optimiser steps."""
    if n_train >= 2000:
        return 3
    return max(3, math.ceil(300 / math.ceil(n_train / batch_size)))


def _batched(fn, n: int, batch: int = 256):
    outs = [fn(i, min(batch, n - i)) for i in range(0, n, batch)]
    return torch.cat(outs)


def _samples(
    system: BOGTSystem, n: int, batch: int, first_seed: int, conditions=None, **kw
) -> torch.Tensor:
    """``n`` generated images (:func:`~lightgen.tasks.generate.sample`, ``kw`` passed on) on
    the CPU in batches of ``batch``, the batch at ``i`` seeded ``first_seed + i``;
    ``conditions(i, b)``: that batch's injected values (None: none)."""
    return _batched(
        lambda i, b: sample(
            system,
            b,
            seed=first_seed + i,
            conditions=None if conditions is None else conditions(i, b),
            **kw,
        )[0].cpu(),
        n,
        batch,
    )


def is_class_conditioned(system: BOGTSystem, cfg: TrainConfig | None) -> bool:
    """True for a model trained with ``condition_on='labels'`` (one-hot class fibers)."""
    return cfg is not None and cfg.condition_on == "labels" and system.n_conditions > 0


def has_label_components(cfg: TrainConfig | None) -> bool:
    """True for a model trained with ``condition_on='components'`` (class c = component c)."""
    return cfg is not None and cfg.condition_on == "components"


def class_codes(system: BOGTSystem, cfg: TrainConfig, labels: torch.Tensor) -> torch.Tensor:
    """One-hot injection codes ``(N, k)`` complex for ``labels`` ``(N,)`` of a
    class-conditioned model (:func:`lightgen.train.system.label_conditions`)."""
    from lightgen.train.system import label_conditions

    return label_conditions(labels, system.n_conditions, cfg.condition_amplitude)


def _unlabelled_conditions_error(system: BOGTSystem, cfg: TrainConfig | None) -> ValueError:
    return ValueError(
        f"this model injects {system.n_conditions} condition value(s) per image "
        f"(condition_on={cfg.condition_on if cfg is not None else None!r}); eval can only supply them for "
        "class-conditional models (condition_on='labels'). Use the task that trained it "
        "(e.g. lightgen multiview) to evaluate it."
    )


@torch.no_grad()
def optical_efficiencies(
    system: BOGTSystem, images: torch.Tensor, conditions: torch.Tensor | None = None
) -> dict[str, float]:
    """Fraction of input power coupled into the fibers, and of injected power reaching the
    camera (``conditions`` ``(N, k)``: a conditioned model's injected values, included)."""
    from lightgen.chip.chip import image_to_field

    chip = system.model.optical_chip
    if chip is None:
        return {}
    cfg = chip.config
    field_in = image_to_field(images, cfg, chip.grid)
    coupled = chip.fibers.couple(chip.encoder.stack(field_in)).abs().square().sum(-1)
    eta_couple = (coupled / power(field_in, chip.grid).clamp_min(1e-30)).mean().item()
    z = system.prior.sample(images.shape[0], torch.Generator().manual_seed(0))
    if system.n_conditions or system.reference_amplitude:
        z = system.with_conditions(z, conditions)
    emitted = chip.emitted_field(z)  # through the ports (unset: transmission 1)
    at_camera = chip.generators[0].stack(emitted)
    side = cfg.image_size * cfg.camera_pixel_samples
    top = centred_start(cfg.grid_samples, side)
    cam = (
        intensity(at_camera)[..., top : top + side, top : top + side].sum((-2, -1))
        * chip.grid.pixel_pitch_m**2
    )
    eta_gen = (cam / power(emitted, chip.grid).clamp_min(1e-30)).mean().item()
    return {"fiber_coupling_efficiency": eta_couple, "generator_diffraction_efficiency": eta_gen}


def for_classifier(images: torch.Tensor, clf) -> torch.Tensor:
    """``images`` ``(N, C, S, S)`` in the classifier's channels and size: grey <- RGB by the
    channel mean (as before), size by the data loader's antialiased bilinear resize."""
    if images.shape[1] != clf.in_channels:
        images = images.mean(1, keepdim=True) if clf.in_channels == 1 else images
    if images.shape[-1] != clf.image_size:
        images = F.interpolate(
            images, size=(clf.image_size,) * 2, mode="bilinear", antialias=True
        ).clamp(0, 1)
    return images


@torch.no_grad()
def most_responsible_component(
    system: BOGTSystem, images: torch.Tensor, batch_size: int = 32
) -> torch.Tensor:
    """Index ``(N,)`` of the prior component with the largest responsibility for each image's
    posterior mean ``mu = E[z | x]`` (encoder only; no classifier, no labels)."""
    mu = _batched(lambda i, b: encode(system, images[i : i + b]).cpu(), images.shape[0], batch_size)
    z = system.free_part(mu)
    dev = next(system.prior.parameters(), torch.empty(0)).device
    return system.prior.responsibilities(z.to(dev)).argmax(1).cpu()


def class_component_counts(
    components: torch.Tensor, labels: torch.Tensor, n_classes: int, n_components: int
) -> torch.Tensor:
    """Table ``N[c, k]`` ``(n_classes, n_components)`` int64: images of class c whose most
    responsible component is k."""
    components, labels = torch.as_tensor(components), torch.as_tensor(labels)
    if components.shape != labels.shape or components.ndim != 1:
        raise ValueError(
            f"components {tuple(components.shape)} and labels {tuple(labels.shape)} must be "
            "1-D of equal length: one component index and one label per image."
        )
    for name, v, hi in (("components", components, n_components), ("labels", labels, n_classes)):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= hi):
            raise ValueError(
                f"{name} must lie in [0, {hi - 1}], got range [{int(v.min())}, {int(v.max())}]; "
                f"pass n_classes / n_components that cover every index."
            )
    flat = labels.long() * n_components + components.long()
    return torch.bincount(flat, minlength=n_classes * n_components).view(n_classes, n_components)


def match_classes_to_components(counts: torch.Tensor) -> list[int | None]:
    """One distinct component per class maximising sum_c counts[c, k(c)] (Hungarian).

    ``counts`` ``(n_classes, n_components)``. With more components than classes the extra
    components are left out; with fewer, the classes beyond the first ``n_components``
    matched get ``None``.
    """
    from scipy.optimize import linear_sum_assignment

    counts = torch.as_tensor(counts)
    if counts.ndim != 2 or min(counts.shape) < 1:
        raise ValueError(
            f"counts must be a (n_classes, n_components) table, got shape {tuple(counts.shape)}."
        )
    rows, cols = linear_sum_assignment(counts.double().numpy(), maximize=True)
    out: list[int | None] = [None] * counts.shape[0]
    for r, c in zip(rows, cols, strict=True):
        out[int(r)] = int(c)
    return out


def _per_class_accuracy(pred: torch.Tensor, labels: torch.Tensor, n_classes: int) -> list[float]:
    acc = []
    for c in range(n_classes):
        sel = labels == c
        acc.append(float((pred[sel] == c).float().mean()) if sel.any() else float("nan"))
    return acc


NULL_BLOCKS = 4
"""Block grid of the content-free control images (4 x 4: one block per fiber cell of a
16-fiber chip)."""


def block_shuffled(images: torch.Tensor, blocks: int, generator: torch.Generator) -> torch.Tensor:
    """Content-free controls: each image cut into ``blocks x blocks`` tiles that are put
    back in a random order (one permutation per image). Colours, tile textures and the
    overall brightness stay; the object's shape does not (sides not divisible by
    ``blocks`` keep their last rows/columns in place)."""
    n, c, h, w = images.shape
    th, tw = h // blocks, w // blocks
    out = images.clone()
    core = images[..., : th * blocks, : tw * blocks]
    tiles = core.reshape(n, c, blocks, th, blocks, tw).permute(0, 2, 4, 1, 3, 5)
    tiles = tiles.reshape(n, blocks * blocks, c, th, tw)
    order = torch.stack([torch.randperm(blocks * blocks, generator=generator) for _ in range(n)])
    tiles = tiles[torch.arange(n)[:, None], order]
    tiles = tiles.reshape(n, blocks, blocks, c, th, tw).permute(0, 3, 1, 4, 2, 5)
    out[..., : th * blocks, : tw * blocks] = tiles.reshape(n, c, th * blocks, tw * blocks)
    return out


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def _check_temperature(temperature: float) -> float:
    return require_nonnegative(
        "temperature",
        temperature,
        "It is the factor on the prior's standard deviation; use 1 to sample P(Z) itself, "
        "e.g. 0.5 to truncate.",
    )


def class_conditional_scores(
    system: BOGTSystem,
    cfg: TrainConfig | None,
    train,
    test,
    clf,
    n_per_class: int = 64,
    seed: int = 0,
    grid_path: str | Path | None = None,
    grid_columns: int = 8,
    batch_size: int | None = None,
    temperature: float = 1.0,
    sampler=None,
    train_components: torch.Tensor | None = None,
) -> dict:
    """Per-class generation from a mixture prior, scored by a classifier of real images.

    Args:
        system: trained :class:`BOGTSystem` with a mixture prior.
        cfg: its :class:`TrainConfig` (only its preset is recorded; may be None).
        train: labelled training split at the chip's image size (used to map components
            to classes through the encoder).
        test: labelled held-out split (classifier accuracy on real images per class).
        clf: :class:`SmallCNN` trained on real training images; inputs are resized to
            its size (:func:`for_classifier`).
        n_per_class: images generated per class.
        seed: sampling seed (batch i of class c uses ``seed + 2000 + 100 c + i``).
        grid_path: if given, a PNG with one row of ``grid_columns`` samples per class.
        batch_size: images per chip call (default: ~4 M pixel values per batch).
        temperature: scales the prior's standard deviation when sampling (1 = P(Z)
            itself, the default; < 1 trades variety for fidelity, "truncation").
        train_components: :func:`most_responsible_component` of ``train.images`` if
            already computed (``(N,)``; e.g. shared by several samplers of one model, as
            the encoder pass over a 512 px train split costs minutes); None: computed here.

    Returns:
        JSON-able dict: ``classes`` (per class: component, encoder agreement, accuracy on
        generated and on real held-out images, and the shape-free controls: accuracy on
        the class's tile-shuffled held-out images and the rate at which any shuffled
        image is named the class, :func:`block_shuffled`), the class means, their ratio
        (target >= 0.8), the count table, unassigned components, and FID/KID of the
        pooled per-class samples against the held-out images.
    """
    from lightgen._checks import require_int_range

    n_per_class = require_int_range("n_per_class", n_per_class, 2, fix="Use e.g. 32 or 64.")
    temperature = _check_temperature(temperature)
    conditional = is_class_conditioned(system, cfg)
    label_components = has_label_components(cfg)
    k = system.prior.n_components
    if k < 2 and not conditional:
        raise ValueError(
            f"class_conditional_scores needs a mixture prior or a class-conditioned model; "
            f"this model's prior has n_components={k}. Train with prior='mixture' or "
            "condition_on='labels'."
        )
    n_classes = train.n_classes
    if n_classes < 2 or test.n_classes != n_classes:
        raise ValueError(
            f"train has {n_classes} classes and test {test.n_classes}; need the same >= 2 "
            "labelled classes in both splits."
        )
    if label_components and k != n_classes:
        raise ValueError(
            f"the model has one prior component per class of its training data ({k}) but "
            f"the data set has {n_classes} classes; evaluate it on the data set it was "
            "trained on."
        )
    if conditional and system.n_conditions != n_classes:
        raise ValueError(
            f"the model has {system.n_conditions} class fibers but the data set "
            f"{n_classes} classes; evaluate it on the data set it was trained on."
        )
    if batch_size is None:
        batch_size = max(4, min(256, 2**22 // train.images[0].numel()))
    if conditional:
        # classes are injected, not found: no component, no encoder pass
        counts = torch.bincount(train.labels.long(), minlength=n_classes).view(-1, 1)
        mapping = [None] * n_classes
    else:
        if train_components is None:
            comps = most_responsible_component(system, train.images, batch_size)
        else:
            comps = torch.as_tensor(train_components)
            if comps.shape != (len(train.labels),):
                raise ValueError(
                    f"train_components has shape {tuple(comps.shape)} but the train split "
                    f"has {len(train.labels)} images; pass one component index per image "
                    "(most_responsible_component of train.images) or None."
                )
        counts = class_component_counts(comps, train.labels, n_classes, k)
        if label_components:
            mapping = list(range(n_classes))  # trained so: class c's KL against component c
        else:
            mapping = match_classes_to_components(counts)

    real = for_classifier(test.images, clf)
    real_acc = _per_class_accuracy(predict(clf, real), test.labels, n_classes)
    # how often the judge names each class for content-free block-shuffled test images
    shuffled = block_shuffled(real, NULL_BLOCKS, torch.Generator().manual_seed(seed + 7))
    null_pred = predict(clf, shuffled)
    null_rates = (torch.bincount(null_pred, minlength=n_classes).float() / len(null_pred)).tolist()
    shuffled_acc = _per_class_accuracy(null_pred, test.labels, n_classes)
    classes, gen_acc, fakes, grid_rows = [], [], [], []
    for c, comp in enumerate(mapping):
        row = {
            "class": train.class_names[c],
            "component": comp,
            "train_images": int(counts[c].sum()),
            "encoder_agreement": None,
            "accuracy_generated": 0.0,
            "predicted_counts_generated": None,
            "accuracy_real_test": real_acc[c],
            "null_rate_block_shuffled": null_rates[c],
            "accuracy_real_test_block_shuffled": shuffled_acc[c],
            "accuracy_generated_block_shuffled": None,
            "n_real_test": int((test.labels == c).sum()),
        }
        if comp is not None or conditional:
            codes_c = (
                (lambda i, b, c=c: class_codes(system, cfg, torch.full((b,), c)))
                if conditional
                else None
            )
            imgs = _samples(
                system,
                n_per_class,
                batch_size,
                seed + 2000 + 100 * c,
                codes_c,
                component=comp,
                temperature=temperature,
                sampler=sampler,
            )
            small = for_classifier(imgs, clf)
            pred = predict(clf, small)
            row["accuracy_generated"] = float((pred == c).float().mean())
            row["predicted_counts_generated"] = torch.bincount(pred, minlength=n_classes).tolist()
            # the same control on the samples: what their colours and textures alone earn
            gen_shuffled = block_shuffled(
                small, NULL_BLOCKS, torch.Generator().manual_seed(seed + 11 + c)
            )
            row["accuracy_generated_block_shuffled"] = float(
                (predict(clf, gen_shuffled) == c).float().mean()
            )
            if counts[c].sum() > 0 and comp is not None:
                row["encoder_agreement"] = float(counts[c, comp] / counts[c].sum())
            fakes.append(small)
            grid_rows.append(imgs[:grid_columns])
        else:
            grid_rows.append(None)
        gen_acc.append(row["accuracy_generated"])
        classes.append(row)
    mean_gen, mean_real = _mean(gen_acc), _mean(real_acc)
    gen_shuffled_acc = [
        r["accuracy_generated_block_shuffled"]
        for r in classes
        if r["accuracy_generated_block_shuffled"] is not None
    ]
    assigned = {m for m in mapping if m is not None}
    method = (
        "component of each class = Hungarian match on the (class x most-responsible "
        "component of the encoder's posterior mean) counts of the training images; "
        "accuracy = fraction of that component's samples the real-image SmallCNN "
        "assigns to the class"
    )
    if label_components:
        method = (
            "label-selected components: each training image's KL was taken against its "
            "class's mixture component, so class c = component c (no matching); accuracy = "
            "fraction of that component's samples the real-image SmallCNN assigns to the class"
        )
    if conditional:
        method = (
            "class-conditional: labels drive k injection fibers (one-hot, amplitude "
            f"{cfg.condition_amplitude}); class c = prior sample of the free dims + the code of "
            "c; accuracy = fraction of those samples the real-image SmallCNN assigns to c"
        )
    out = {
        "mode": "class-conditional"
        if conditional
        else ("label-components" if label_components else "unsupervised-mixture"),
        "method": method,
        "preset": getattr(cfg, "preset", None),
        "n_per_class": n_per_class,
        "prior_temperature": float(temperature),
        "classifier_image_size": clf.image_size,
        "classes": classes,
        "accuracy_generated_mean": mean_gen,
        "accuracy_real_test_mean": mean_real,
        "accuracy_generated_block_shuffled_mean": _mean(gen_shuffled_acc),
        "accuracy_real_test_block_shuffled_mean": _mean(shuffled_acc),
        "ratio_generated_to_real": mean_gen / mean_real if mean_real > 0 else float("nan"),
        "target_ratio": 0.8,
        "null_control": (
            f"null_rate_block_shuffled: fraction of the held-out images, each cut into "
            f"{NULL_BLOCKS}x{NULL_BLOCKS} tiles put back in random order (shape destroyed, "
            "colours kept), that the judge assigns to the class; a class's accuracy on "
            "generated images near or below its null rate says nothing about shape. "
            "accuracy_real_test_block_shuffled: the judge's accuracy on that class's own "
            "shuffled held-out images (what colour and texture alone earn); "
            "accuracy_generated_block_shuffled: the same for the class's generated images "
            "(near chance, 1/classes, for samples named by their shape)"
        ),
        "encoder_mapping_accuracy": None
        if conditional
        else float(
            sum(int(counts[c, m]) for c, m in enumerate(mapping) if m is not None)
            / max(int(counts.sum()), 1)
        ),
        "class_component_counts": None if conditional else counts.tolist(),
        "unassigned_components": [] if conditional else [j for j in range(k) if j not in assigned],
    }
    if conditional:
        out["condition_amplitude"] = cfg.condition_amplitude
        out["condition_all_wavelengths"] = cfg.condition_all_wavelengths
    if fakes:
        fake = torch.cat(fakes)
        scores = generative_scores(
            real, fake, clf, kid_subset_size=max(2, min(len(real), len(fake)) // 2), seed=seed
        )
        out.update(scores)
    if grid_path is not None:
        out["grid"] = str(
            save_class_grid(
                grid_path,
                grid_rows,
                [
                    r["class"] if conditional else f"{r['class']} (k={r['component']})"
                    for r in classes
                ],
                gen_acc,
            )
        )
    return out


def save_class_grid(
    path: str | Path,
    rows: list[torch.Tensor | None],
    class_names: list[str],
    accuracies: list[float],
    tile_px: int = 96,
) -> Path:
    """PNG with one row of samples per class (tiles shown at ``tile_px``; empty row for a
    class without a component), labelled with the class and its accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lightgen.tasks.images import image_grid, save_figure

    template = next((r for r in rows if r is not None), None)
    if template is None:
        raise ValueError("rows holds no images; at least one class needs samples for a grid.")
    ncol, c = template.shape[0], template.shape[1]
    side = min(tile_px, template.shape[-1])
    tiles = []
    for r in rows:
        r = torch.zeros(ncol, c, side, side) if r is None else r
        if r.shape[-1] != side:
            r = F.interpolate(r, size=(side, side), mode="bilinear", antialias=True)
        if r.shape[0] < ncol:
            r = torch.cat([r, torch.ones(ncol - r.shape[0], c, side, side)])
        tiles.append(r[:ncol])
    grid = image_grid(torch.cat(tiles), ncol)
    h, w = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(w / 100 + 1.4, h / 100 + 0.1), dpi=100)
    # vmin/vmax: grey images keep their absolute level (imshow would stretch them)
    ax.imshow(
        grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest"
    )
    ax.set_xticks([])
    ax.set_yticks([(side + 1) * (i + 0.5) for i in range(len(rows))])
    sep = "\n" if side >= 40 else "  "  # two text lines do not fit a 28 px row
    ax.set_yticklabels(
        [f"{n}{sep}{100 * a:.0f} %" for n, a in zip(class_names, accuracies, strict=True)]
    )
    ax.tick_params(length=0)
    return save_figure(Path(path), fig)


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    """What :func:`evaluate` does with a trained model (``lightgen eval`` builds one from
    its flags). Validated on construction: a bad value raises ValueError naming it and the
    fix. Change one field with :func:`dataclasses.replace`.

    Attributes:
        dataset: the data set scored against (default: the one the model was trained on).
        n: generated and held-out images compared by FID/KID/precision/recall (at most the
            held-out split's size).
        seed: seeds the samples, the KID subsets and the data splits.
        data_root: the folder of the data sets (default: ``$LIGHTGEN_DATA``).
        progress: show the judge's training progress.
        fabrication: a :class:`~lightgen.chip.fabrication.FabricationModel` evaluates the
            design as fabricated: quantised heights and random placement errors drawn anew
            for every batch (a Monte-Carlo over fabricated chips); recorded as
            ``fabrication``.
        n_per_class: images per class of the per-class scores (mixture prior or
            class-conditional model on a labelled data set).
        classifier_size: the judge (SmallCNN) runs at this size (default: the chip's image
            size; e.g. 64 for a 512 px chip, where a 512 px judge is slow to train on a
            CPU).
        class_grid_path: where the per-class grid PNG goes (None: no grid).
        temperature: factor on the prior's standard deviation for every generated image
            (1 = P(Z) itself); recorded as ``prior_temperature``.
        classifier_augment: ``"chip"`` trains (and caches separately) a judge that saw
            speckle, blur and gain on half its training images
            (:func:`lightgen.metrics.classifier.chip_artifacts`); recorded as
            ``classifier_augment``.
        sampler: draws the fiber drive values of the ``n`` unconditional samples with its
            ``sample`` method, like a prior (default: the trained prior; e.g. an
            :class:`~lightgen.train.expost.ExPostSampler`).
            Per-component purity and per-class scores always sample the prior's components.
        sampler_record: the sampler's JSON, reported as ``sampler``.
    """

    dataset: str | None = None
    n: int = 1000
    seed: int = 0
    data_root: str | Path | None = None
    progress: bool = True
    fabrication: FabricationModel | None = None
    n_per_class: int = 64
    classifier_size: int | None = None
    class_grid_path: str | Path | None = None
    temperature: float = 1.0
    classifier_augment: str | None = "none"
    sampler: ExPostSampler | None = None
    sampler_record: dict | None = None

    def __post_init__(self) -> None:
        from lightgen._checks import require_int_range
        from lightgen.metrics.classifier import check_augment

        object.__setattr__(self, "temperature", _check_temperature(self.temperature))
        object.__setattr__(self, "classifier_augment", check_augment(self.classifier_augment))
        if self.classifier_size is not None:
            require_int_range("classifier_size", self.classifier_size, 8, fix="Use e.g. 64.")
        require_int_range("n", self.n, 2, fix="FID and KID compare at least 2 images; e.g. n=1000.")
        require_int_range("n_per_class", self.n_per_class, 1, fix="e.g. n_per_class=64.")


def evaluate(system: BOGTSystem, cfg: TrainConfig, options: EvalOptions | None = None) -> dict:
    """All quality numbers for one trained model, as a JSON-able dict (what is done:
    ``options``, default :class:`EvalOptions`).

    FID/KID/precision/recall of ``options.n`` samples, their copying control
    (:func:`lightgen.metrics.copying.copying_control`: the generated images' pixel distance
    to their nearest training image against that of the held-out real images),
    reconstruction PSNR/SSIM and scores, and the chip's optical efficiencies. With a
    mixture prior, per-component purity; with a mixture prior or a class-conditional model
    on a labelled data set also ``class_conditional`` (:func:`class_conditional_scores`)
    and its summary keys.
    """
    from lightgen.chip.fabrication import fabricated

    o = options or EvalOptions()
    with fabricated(system, o.fabrication, o.seed):
        out = _evaluate(system, cfg, o)
    out["sampler"] = o.sampler_record or {"sampler": "prior"}
    if o.fabrication is not None:
        out["fabrication"] = o.fabrication.model_dump()
    return out


def judge_and_split(
    name: str,
    size: int,
    data_root=None,
    seed: int = 0,
    classifier_size: int | None = None,
    augment: str = "none",
    progress: bool = True,
    dataset_options: dict | None = None,
):
    """The data set's train and held-out splits at ``size`` and its judge: the cached
    SmallCNN trained on the train split (at ``classifier_size`` if given) and its held-out
    accuracy. ``dataset_options``: loader options (emoji-svg families/groups,
    :meth:`TrainConfig.dataset_options`). Returns ``(train, test, classifier, accuracy)``;
    every score of ``eval`` (of a chip or of a folder of images made elsewhere) uses these."""
    opts = dataset_options or {}
    train = load_dataset(name, root=data_root, split="train", size=size, seed=seed, **opts)
    test = load_dataset(name, root=data_root, split="test", size=size, seed=seed, **opts)
    clf_train = train
    if classifier_size is not None and classifier_size != size:
        clf_train = load_dataset(
            name, root=data_root, split="train", size=classifier_size, seed=seed, **opts
        )
    clf, clf_acc = load_or_train_classifier(
        name,
        clf_train,
        epochs=classifier_epochs(len(clf_train)),
        progress=progress,
        augment=augment,
    )
    return train, test, clf, clf_acc


def evaluate_generated(
    images: torch.Tensor,
    dataset: str,
    n: int = 1000,
    seed: int = 0,
    data_root=None,
    classifier_size: int | None = None,
    classifier_augment: str | None = None,
    progress: bool = True,
    dataset_options: dict | None = None,
) -> dict:
    """Score images made elsewhere (another model, the paper's released images) with the
    judge and held-out split ``eval`` gives a chip (:func:`judge_and_split`), so they can
    sit in the same table.

    Args:
        images: ``(N, C, S, S)`` in [0, 1], C = the data set's channels, at the size the
            held-out split is loaded (``S``; e.g. 28 for MNIST).
        dataset: the data set they imitate.
        n: at most this many generated and held-out images are compared.
        dataset_options: its loader options (emoji-svg families/groups/background,
            :meth:`TrainConfig.dataset_options` of the run that made them), so the held-out
            split and the judge are the run's own.

    Returns:
        JSON-able dict: FID, KID, precision/recall (the keys ``eval`` reports), the judge's
        accuracy on the held-out images, and how often it names each class for the images.
    """
    from lightgen.metrics.classifier import check_augment

    augment = check_augment(classifier_augment)
    if images.ndim != 4 or images.shape[-1] != images.shape[-2] or images.shape[0] < 2:
        raise ValueError(
            f"generated images have shape {tuple(images.shape)}; need (N >= 2, C, S, S) "
            "square images."
        )
    size = images.shape[-1]
    opts = dataset_options or {}
    c = load_dataset(dataset, root=data_root, split="test", size=size, limit=1, seed=seed, **opts)
    c = c.images.shape[1]
    if images.shape[1] != c:
        kind = {1: "grey (1 channel)", 3: "RGB (3 channels)"}
        raise ValueError(
            f"the generated images are {kind.get(images.shape[1], images.shape[1])} but "
            f"{dataset!r} is {kind.get(c, c)}; convert them "
            f"({'to greyscale' if c == 1 else 'to RGB'}) before scoring."
        )
    _, test, clf, clf_acc = judge_and_split(
        dataset, size, data_root, seed, classifier_size, augment, progress, opts
    )
    n = min(n, test.images.shape[0], images.shape[0])
    real, fake = for_classifier(test.images[:n], clf), for_classifier(images[:n], clf)
    scores = generative_scores(
        real, fake, clf, kid_subset_size=max(2, min(1000, n // 2)), seed=seed
    )
    pred = predict(clf, fake)
    counts = torch.bincount(pred, minlength=len(test.class_names)).tolist()
    return {
        "dataset": dataset,
        "model": "external",
        **scores,
        "image_size": size,
        "classifier_accuracy_on_real_test": float(clf_acc),
        "classifier_accuracy_metric": "held-out accuracy of the feature network",
        "classifier_augment": augment,
        "classifier_image_size": clf.image_size,
        "predicted_class_counts": dict(zip(test.class_names, counts, strict=True)),
        "classes_named": int(sum(1 for k in counts if k > 0)),
    }


# training images rendered for the rendered-space copying control above 128 px (each is a
# full chip pass; below that, all of them)
RENDERED_TRAIN_MAX_LARGE = 500


def _renderings(
    system: BOGTSystem, images: torch.Tensor, codes: torch.Tensor | None, big: bool
) -> torch.Tensor:
    """Reconstructions (posterior mean) of ``images`` on the CPU, in batches (small ones for
    large images), with the condition ``codes`` of a class-conditioned model."""
    return _batched(
        lambda i, b: reconstruct(
            system, images[i : i + b], conditions=None if codes is None else codes[i : i + b]
        ).cpu(),
        images.shape[0],
        16 if big else 256,
    )


def _rendered_copying(
    system: BOGTSystem,
    cfg: TrainConfig,
    train,
    fake: torch.Tensor,
    rec: torch.Tensor,
    big: bool,
) -> dict:
    """:func:`~lightgen.metrics.copying.rendered_copying_control` for the samples ``fake``
    and the held-out renderings ``rec``: the training images rendered (posterior mean), the
    first :data:`RENDERED_TRAIN_MAX_LARGE` of them for images above 128 px."""
    m = min(RENDERED_TRAIN_MAX_LARGE, train.images.shape[0]) if big else train.images.shape[0]
    conditional = is_class_conditioned(system, cfg)
    codes = class_codes(system, cfg, train.labels[:m]) if conditional else None
    rendered = _renderings(system, train.images[:m], codes, big)
    return rendered_copying_control(fake, rec, match_channels(rendered, rec.shape[1]))


def _evaluate(system: BOGTSystem, cfg: TrainConfig, o: EvalOptions) -> dict:
    dataset, n, seed, temperature, sampler = o.dataset, o.n, o.seed, o.temperature, o.sampler
    n_per_class, grid_path = o.n_per_class, o.class_grid_path
    name = dataset or cfg.dataset
    size = cfg.chip_config().image_size
    opts = cfg.dataset_options(name)  # emoji-svg: the families and groups it was trained on
    augment = o.classifier_augment
    train, test, clf, clf_acc = judge_and_split(
        name, size, o.data_root, seed, o.classifier_size, augment, o.progress, opts
    )
    n = min(n, test.images.shape[0])
    real = test.images[:n]
    conditional = is_class_conditioned(system, cfg)
    if system.n_conditions and not conditional:
        raise _unlabelled_conditions_error(system, cfg)
    # class-conditional: the "unconditional" samples get the held-out images' class codes,
    # so their class mix is that of the real images they are compared with
    codes = class_codes(system, cfg, test.labels[:n]) if conditional else None

    def _codes(i, b):
        return None if codes is None else codes[i : i + b]

    # large images in small batches (bounded memory); small ones as before (same seeds)
    big = size > 128
    t0 = time.perf_counter()
    fake = _samples(
        system, n, 16 if big else 256, seed + 1, _codes, temperature=temperature, sampler=sampler
    )
    gen_s = (time.perf_counter() - t0) / n

    def _scores(images: torch.Tensor) -> dict:  # FID/KID/precision/recall against `real`
        return generative_scores(
            for_classifier(real, clf),
            for_classifier(images, clf),
            clf,
            kid_subset_size=min(1000, n // 2),
            seed=seed,
        )

    scores = _scores(fake)
    rec = _renderings(system, real, codes, big)
    rec = rec.mean(1, keepdim=True) if rec.shape[1] != real.shape[1] else rec
    # reference for samplers of the OLS: the held-out images' own posterior means decoded
    rec_scores = _scores(rec)
    fake_px = fake.mean(1, keepdim=True) if fake.shape[1] != real.shape[1] else fake
    out = {
        "dataset": name,
        "model": cfg.model,
        "preset": cfg.preset,
        **scores,
        "classifier_accuracy_on_real_test": float(clf_acc),
        "classifier_accuracy_metric": "held-out accuracy of the feature network",
        "classifier_augment": augment,
        "prior_temperature": temperature,
        "classifier_image_size": clf.image_size,
        "classifier_accuracy_on_test_split": (
            predict(clf, for_classifier(test.images[:n], clf)) == test.labels[:n]
        )
        .float()
        .mean()
        .item(),
        "reconstruction_psnr_db": psnr(rec, real).item(),
        "reconstruction_ssim": ssim(rec, real).item(),
        "simulated_seconds_per_generated_image": gen_s,
        **{
            f"reconstruction_{k}": rec_scores[k]
            for k in ("fid", "kid_mean", "kid_std", "precision", "recall")
        },
        "reconstruction_scores_rule": (
            "the same held-out images through encoder -> fibers -> generator (posterior "
            "mean), scored like the samples: a reference for samplers of the latent space "
            "(not a strict bound)"
        ),
        **copying_control(fake_px, real, train.images, rec),
        **_rendered_copying(system, cfg, train, fake_px, rec, big),
    }
    if conditional or has_label_components(cfg):
        out["condition_on"] = cfg.condition_on
    k = system.prior.n_components
    if k > 1 and not conditional:
        purity, classes = [], set()
        components = []
        for comp in range(k):
            imgs = _samples(
                system,
                64,
                16 if big else 64,
                seed + 1000 + comp,
                component=comp,
                temperature=temperature,
            )
            small = for_classifier(imgs, clf)
            pred = predict(clf, small)
            top = pred.mode().values.item()
            classes.add(top)
            purity.append((pred == top).float().mean().item())
            components.append(
                {"component": comp, "class": test.class_names[top], "purity": purity[-1]}
            )
        out["component_purity_mean"] = sum(purity) / k
        out["classes_covered_by_components"] = len(classes)
        out["components"] = components
    if (k > 1 or conditional) and test.n_classes >= 2 and test.n_classes == train.n_classes:
        cc = class_conditional_scores(
            system, cfg, train, test, clf, n_per_class, seed, grid_path, temperature=temperature
        )
        out["class_conditional_accuracy_generated_mean"] = cc["accuracy_generated_mean"]
        out["class_conditional_accuracy_real_test_mean"] = cc["accuracy_real_test_mean"]
        out["class_conditional_ratio"] = cc["ratio_generated_to_real"]
        out["class_conditional"] = cc
    with torch.no_grad():
        dev = next(system.parameters()).device
        out.update(optical_efficiencies(system, real[:64].to(dev), _codes(0, min(64, n))))
    return out
