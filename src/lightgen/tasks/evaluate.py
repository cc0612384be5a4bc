"""`lightgen eval`: quality of a trained model on a data set's held-out split.

Scores (all from :mod:`lightgen.metrics`): FID, KID and precision/recall of
generated images against held-out real images in the feature space of a small
CNN classifier trained on the data set's train split (cached, never downloaded);
reconstruction PSNR/SSIM of held-out images; for mixture priors, how purely each
component generates one class (labels used only here, to evaluate); and for the
chip, the optical efficiencies (fiber coupling, generator diffraction efficiency).
"""

from __future__ import annotations

import math
import time

import torch

from lightgen.data.registry import load_dataset
from lightgen.metrics.classifier import load_or_train_classifier, predict
from lightgen.metrics.fid import generative_scores
from lightgen.metrics.image import psnr, ssim
from lightgen.optics.grid import intensity, power
from lightgen.tasks.generate import reconstruct, sample


def classifier_epochs(n_train: int, batch_size: int = 128) -> int:
    """3 epochs, as the metrics module's default; small data sets (< 2,000 images, e.g. the
    273 emoji) get enough epochs for >= 300 optimiser steps."""
    if n_train >= 2000:
        return 3
    return max(3, math.ceil(300 / math.ceil(n_train / batch_size)))


def _batched(fn, n: int, batch: int = 256):
    outs = [fn(i, min(batch, n - i)) for i in range(0, n, batch)]
    return torch.cat(outs)


@torch.no_grad()
def optical_efficiencies(system, images: torch.Tensor) -> dict[str, float]:
    """Fraction of input power coupled into the fibers, and of injected power reaching the camera."""
    from lightgen.chip.chip import image_to_field

    chip = getattr(system.model, "chip", None)
    if chip is None or not hasattr(chip, "generators"):
        return {}
    cfg = chip.config
    field_in = image_to_field(images, cfg, chip.grid)
    coupled = chip.fibers.couple(chip.encoder.stack(field_in)).abs().square().sum(-1)
    eta_couple = (coupled / power(field_in, chip.grid).clamp_min(1e-30)).mean().item()
    z = system.prior.sample(images.shape[0], torch.Generator().manual_seed(0))
    c = z.view(-1, cfg.n_wavelengths, cfg.n_fibers) * (cfg.generator_power_w / cfg.n_fibers) ** 0.5
    emitted = chip.fibers.emit(chip.fibers.transmit(c))
    at_camera = chip.generators[0].stack(emitted)
    k, s, n = cfg.camera_pixel_samples, cfg.image_size, cfg.grid_samples
    side, top = s * k, n // 2 - s * k // 2
    cam = (
        intensity(at_camera)[..., top : top + side, top : top + side].sum((-2, -1))
        * chip.grid.pixel_pitch_m**2
    )
    eta_gen = (cam / power(emitted, chip.grid).clamp_min(1e-30)).mean().item()
    return {"fiber_coupling_efficiency": eta_couple, "generator_diffraction_efficiency": eta_gen}


def evaluate(
    system,
    cfg,
    dataset: str | None = None,
    n: int = 1000,
    seed: int = 0,
    data_root=None,
    progress=True,
    fabrication=None,
) -> dict:
    """All quality numbers for one trained model, as a JSON-able dict.

    ``fabrication`` (a :class:`~lightgen.chip.fabrication.FabricationModel`) evaluates the
    design as fabricated: quantised heights and random placement errors drawn anew for
    every batch (a Monte-Carlo over fabricated chips).
    """
    from lightgen.chip.fabrication import fabricated

    with fabricated(system, fabrication, seed):
        out = _evaluate(system, cfg, dataset, n, seed, data_root, progress)
    if fabrication is not None:
        out["fabrication"] = fabrication.model_dump()
    return out


def _evaluate(system, cfg, dataset, n, seed, data_root, progress) -> dict:
    name = dataset or cfg.dataset
    size = cfg.chip_config().image_size
    train = load_dataset(name, root=data_root, split="train", size=size, seed=seed)
    test = load_dataset(name, root=data_root, split="test", size=size, seed=seed)
    n = min(n, test.images.shape[0])
    clf, clf_acc = load_or_train_classifier(
        name, train, epochs=classifier_epochs(len(train)), progress=progress
    )
    real = test.images[:n]
    t0 = time.perf_counter()
    fake = _batched(lambda i, b: sample(system, b, seed=seed + 1 + i)[0].cpu(), n)
    gen_s = (time.perf_counter() - t0) / n
    if fake.shape[1] != real.shape[1]:
        fake = fake.mean(1, keepdim=True) if real.shape[1] == 1 else fake
    scores = generative_scores(real, fake, clf, kid_subset_size=min(1000, n // 2), seed=seed)
    rec = _batched(lambda i, b: reconstruct(system, real[i : i + b]).cpu(), n)
    rec = rec.mean(1, keepdim=True) if rec.shape[1] != real.shape[1] else rec
    out = {
        "dataset": name,
        "model": cfg.model,
        "preset": cfg.preset,
        **scores,
        "classifier_accuracy_on_real_test": float(clf_acc),
        "classifier_accuracy_metric": "held-out accuracy of the feature network",
        "classifier_accuracy_on_test_split": (predict(clf, test.images[:n]) == test.labels[:n])
        .float()
        .mean()
        .item(),
        "reconstruction_psnr_db": psnr(rec, real).item(),
        "reconstruction_ssim": ssim(rec, real).item(),
        "simulated_seconds_per_generated_image": gen_s,
    }
    k = getattr(system.prior, "n_components", 1)
    if k > 1:
        purity, classes = [], set()
        components = []
        for comp in range(k):
            imgs, _ = sample(system, 64, seed=seed + 1000 + comp, component=comp)
            imgs = imgs.mean(1, keepdim=True) if imgs.shape[1] != real.shape[1] else imgs
            pred = predict(clf, imgs.cpu())
            top = pred.mode().values.item()
            classes.add(top)
            purity.append((pred == top).float().mean().item())
            components.append(
                {"component": comp, "class": test.class_names[top], "purity": purity[-1]}
            )
        out["component_purity_mean"] = sum(purity) / k
        out["classes_covered_by_components"] = len(classes)
        out["components"] = components
    with torch.no_grad():
        out.update(optical_efficiencies(system, real[:64].to(next(system.parameters()).device)))
    return out
