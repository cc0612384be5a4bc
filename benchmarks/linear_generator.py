"""The chip's generator in the linear regime (issue 15, docs/design-study.md): how well can
three or more phase layers fed by the fiber array span the images, when a plane-wave
reference makes the camera linear in the fiber values?

    python benchmarks/linear_generator.py --config benchmarks/configs/design/base.toml \
        --dataset emoji-svg --chip generator_layers=5 --match-steps 150 --steps 500 \
        [--encoder-steps 300] [--samples-per-class 64] [--out g.safetensors] [--json out.json]

Physics. A plane wave of amplitude ``A_l`` split from the same laser joins the generator's
field in front of the camera (a beam splitter; as ``generator_ceiling.py
--plane-reference``), so a camera pixel reads ``A^2 + 2 A Re L + |L|^2`` with
``L = sum_k z_k P_k`` and ``P_k`` the field fiber ``k`` alone puts on that pixel (averaged
over the pixel's grid samples). The offset calibration removes ``A^2``; the rest is linear
in the fiber values up to ``|L|^2 / (2 A Re L)``, which a strong reference makes small. In
that limit the generator is a linear map whose basis images are ``Re P_k`` and ``Im P_k``
per fiber and wavelength (``2 x fibers`` real images per colour: the chip's latent width),
and the best latents of an image are its least-squares coefficients on them.

Stages, each printed:

1. ceilings on the same split: each colour's PCA with ``2 x fibers`` components (the
   ceiling of any generator whose wavelengths each light only their own colour), centred
   and uncentred (the linear regime has no separate mean image: the offset is uniform);
2. ``--match-steps``: the generator's masks first fitted to *prescribed* fields (wavefront
   matching by gradient descent, the multi-plane light conversion idea): fiber ``k`` at
   wavelength ``l`` should paint ``b1 - i b2``, the two basis images of the local linear
   ceiling (``lightgen.metrics.pca``: disks of radius ``--match-radius`` of the image
   width on the fiber lattice, around the mean image); the score is the normalised overlap
   ``|<T, P>|^2 / (|T|^2 |P|^2)`` (a complex scale of a fiber's field is free: the latent
   absorbs it);
3. the generator's masks trained by *variable projection*: every step, the least-squares
   coefficients of a batch of training images on the present basis (exact, no latent
   table), and the masks moved along the gradient of the residual; held-out PSNR of the
   held-out images' own least-squares coefficients (the best any encoder could deliver);
   then the sampling check (``--check-sampling R``, default 2): the same PSNR with the
   same physical masks simulated on an ``R`` x finer grid (``lightgen.chip.fabrication.
   refined``: each mask pixel ``R x R`` samples of one height). One sample per pixel does
   not resolve the light that height jumps between pixels diffract; trained masks without
   ``layer_filter_radius_m`` lose 2 to 6 dB here (docs/design-study.md);
4. the chip's own intensity physics with a finite reference ``A = ratio x rms|L|``: the
   least-squares latents, then ``--fit-steps`` of Adam on the camera MSE; beside it a
   photon-counting camera (80 % of a 10,000 e full well at the brightest pixel, shot and
   1.5 e read noise, a 12-bit ADC);
5. ``--encoder-steps``: the optical encoder (SLM, phase layers, fiber coupling) trained
   against the frozen generator: the latents are the encoder's fiber values, times one
   complex factor per fiber and wavelength (the manipulation ports' attenuation and phase,
   reconfigurable after fabrication), solved by least squares on each batch;
6. ``--samples-per-class``: class-controlled generation. The fiber values are drawn from an
   ex-post density of the training images' latents, one Gaussian (``--class-components``:
   a mixture) per class, the labels only choosing which (random numbers injected into the
   fibers, as the expost-class sampler of ``lightgen generate``); from the least-squares
   latents and, with ``--encoder-steps`` or ``--sample-encoder``, from the optical
   encoder's; rendered in the linear limit and through the camera with a reference of
   ``--sample-ratio`` (offset and gain calibrated on training latents' linear prediction;
   ``--sample-photons``: also through stage 4's photon-counting camera).
   The shape judge of ``emoji_quality.py`` (colour-randomised SmallCNN, ``--judge-size``
   px) scores them beside its controls (real images, the class-mean image, one pooled
   Gaussian that ignores the labels, the samples' tile-shuffled copies) and the digital
   ceilings at the same width (PCA with ``2 x fibers x colours`` components, each colour's
   own PCA, sampled the same way; and the judge on their held-out reconstructions), and
   a copying check: the samples' median distance to the nearest training image, against
   the held-out images', both in the rendered space (the training images as the chip
   renders them).

Everything in the light path is physical (free space, phase masks, fibers, a beam splitter,
camera intensity with gain/offset); the least-squares solves stand for what an encoder
should deliver (stage 3) or for the port settings (stage 5), never for a digital network
between the fibers and the camera.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import tomllib
from pathlib import Path

import torch
import torch.nn.functional as F

from lightgen._io import atomic_write
from lightgen.chip.chip import LightGenChip
from lightgen.chip.connectivity import connectivity
from lightgen.chip.fabrication import refined
from lightgen.data.registry import load_dataset
from lightgen.metrics.image import psnr, ssim
from lightgen.metrics.pca import lattice_windows, local_pca_basis
from lightgen.train.config import load_train_config_overridden


def unit_latents(n_fibers: int, n_wavelengths: int) -> torch.Tensor:
    """``(K, L*K)`` complex: row ``k`` lights fiber ``k`` alone with 1 at every wavelength
    (latent dimension ``l*K + k``, the chip's order)."""
    z = torch.zeros(n_fibers, n_wavelengths * n_fibers, dtype=torch.complex64)
    for k in range(n_fibers):
        z[k, k::n_fibers] = 1
    return z


def fiber_pixel_fields(chip: LightGenChip, generator: int = 0) -> torch.Tensor:
    """``(L, K, S*S)`` complex: the field fiber ``k`` (unit latent) puts on every camera pixel
    at wavelength ``l``, averaged over the pixel's grid samples (what the linear term
    ``2 A Re L`` of a pixel integrates)."""
    cfg = chip.config
    k, s, n = cfg.camera_pixel_samples, cfg.image_size, cfg.grid_samples
    side = s * k
    top = n // 2 - side // 2
    gen = chip.generators[generator]
    f = gen.camera_field(chip.emitted_field(unit_latents(cfg.n_fibers, cfg.n_wavelengths)))
    f = f[..., top : top + side, top : top + side]
    pix = torch.complex(F.avg_pool2d(f.real, k), F.avg_pool2d(f.imag, k))  # (K, L, S, S)
    return pix.reshape(cfg.n_fibers, cfg.n_wavelengths, -1).transpose(0, 1)


def real_basis(fields: torch.Tensor) -> torch.Tensor:
    """``(L, K, P)`` complex fields -> ``(L, 2K, P)`` real basis images ``[Re P_k; Im P_k]``,
    scaled to unit rms (the scale is free: the camera gain absorbs it)."""
    b = torch.cat([fields.real, fields.imag], 1)
    return b / b.square().mean().sqrt()


def least_squares(basis: torch.Tensor, x: torch.Tensor, ridge: float = 1e-6):
    """Coefficients ``(N, L, M)`` and reconstructions ``(N, L, P)`` of ``x`` ``(N, L, P)`` on
    each colour's rows of ``basis`` ``(L, M, P)`` (normal equations with a ridge of
    ``ridge`` x the mean diagonal; differentiable in ``basis``)."""
    g = basis @ basis.transpose(1, 2)
    eye = torch.eye(g.shape[-1], dtype=g.dtype, device=g.device)
    g = g + ridge * g.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None] * eye
    coef = torch.linalg.solve(g, torch.einsum("lmp,nlp->lmn", basis, x))  # (L, M, N)
    return coef.permute(2, 0, 1), torch.einsum("lmn,lmp->nlp", coef, basis)


def latents_from_coefficients(coef: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Least-squares coefficients ``(N, L, 2K)`` on ``[Re P; Im P] / scale`` -> latents
    ``(N, L*K)``: ``Re(z P) = c1 Re P + c2 Im P`` for ``z = c1 - i c2``."""
    n, L, m = coef.shape
    k = m // 2
    z = torch.complex(coef[..., :k], -coef[..., k:]) / scale
    return z.reshape(n, L * k)


def per_colour_pca_basis(train: torch.Tensor, k: int, centred: bool):
    """Each colour's mean ``(L, P)`` (zeros if not ``centred``) and first ``k`` principal
    directions ``(L, k, P)`` (orthonormal rows; float64), from the Gram matrix (N, N),
    cheaper than the SVD for N images of P >> N pixels."""
    means, bases = [], []
    for ch in range(train.shape[1]):
        x = train[:, ch].reshape(len(train), -1).to(torch.float64, copy=True)
        m = x.mean(0) if centred else torch.zeros_like(x[0])
        x -= m  # in place: one float64 copy of a colour (3.4 GB for 1,631 images at 512 px)
        evals, evecs = torch.linalg.eigh(x @ x.T)
        top = evecs[:, -k:] / evals[-k:].clamp_min(1e-12).sqrt()
        means.append(m)
        bases.append(top.T @ x)  # the first k right singular vectors
    return torch.stack(means), torch.stack(bases)


def per_colour_pca(train: torch.Tensor, test: torch.Tensor, k: int, centred: bool):
    """``test`` projected on each colour's own PCA of ``train`` (``k`` components), clipped."""
    return per_colour_project(test, *per_colour_pca_basis(train, k, centred))


def per_colour_project(test: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``test`` projected on each colour's mean ``m`` plus the span of its rows of ``v``."""
    y = test.reshape(len(test), test.shape[1], -1).double() - m
    rec = torch.einsum("nlk,lkp->nlp", torch.einsum("nlp,lkp->nlk", y, v), v) + m
    return rec.float().reshape(test.shape).clamp(0, 1)


def local_targets(
    train: torch.Tensor, n_fibers: int, radius: float, fit_size: int | None = None
) -> torch.Tensor:
    """``(L, K, P)`` complex target fields ``b1 - i b2``: the local linear ceiling's two
    basis images per fiber and colour (around the mean training image; disks of ``radius``
    of the image width on the fiber lattice, 30 rounds of alternating least squares), unit
    norm each. The mean image is left to the variable projection that follows.
    ``fit_size``: fit on the images resized to that many pixels a side and upsample the
    basis images bilinearly (smooth targets; the ALS at 512 px costs hours)."""
    size = train.shape[-1]
    if fit_size is not None and fit_size < size:
        train = F.interpolate(train, size=(fit_size, fit_size), mode="area")
    side = math.isqrt(n_fibers)
    if side * side != n_fibers:
        raise ValueError(f"--match-steps needs a square fiber array; n_fibers={n_fibers}.")
    w = lattice_windows(train.shape[-1], side, radius).reshape(n_fibers, -1)
    out = []
    for ch in range(train.shape[1]):
        x = train[:, ch].reshape(len(train), -1).to(torch.float64, copy=True)
        x = x - x.mean(0)
        b = local_pca_basis(x, w, 2, 30)
        out.append(torch.complex(b[0::2], -b[1::2]).to(torch.complex64))
    t = torch.stack(out)
    if t.shape[-1] != size * size:
        fit = train.shape[-1]
        up = [
            F.interpolate(part.reshape(-1, 1, fit, fit), size=(size, size), mode="bilinear")
            for part in (t.real, t.imag)
        ]
        t = torch.complex(*up).reshape(t.shape[0], t.shape[1], -1)
    return t / t.abs().square().sum(-1, keepdim=True).sqrt()


def match_fields(chip, params, targets, steps: int, lr: float, log) -> float:
    """Fit the generator to the target fields (normalised overlap, complex scale free)."""
    opt = torch.optim.Adam(params, lr=lr)
    fid = float("nan")
    for step in range(1, steps + 1):
        p = fiber_pixel_fields(chip)
        ov = (targets.conj() * p).sum(-1).abs().square() / p.abs().square().sum(-1)
        loss = 1 - ov.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        fid = ov.mean().item()
        if step % 25 == 0 or step == steps:
            log(f"match step {step}: overlap {fid:.3f} (worst fiber/colour {ov.min().item():.3f})")
    return fid


def photon_counting(rel: torch.Tensor, brightest: torch.Tensor | float, seed: int) -> torch.Tensor:
    """What a photon-counting camera reads of the relative intensities ``rel``, in the same
    units: the exposure puts 80 % of a 10,000 e full well at ``brightest`` (set once, on
    calibration images: brighter pixels saturate), exact Poisson shot noise, 1.5 e rms read
    noise, a 12-bit ADC (``lightgen.optics.devices.shot_noise`` and ``adc``)."""
    from lightgen.optics.devices import adc, shot_noise

    full_well, bits = 10_000, 12
    g = torch.Generator().manual_seed(seed)
    e_per = 0.8 * full_well / brightest
    el = shot_noise(rel * e_per, g, differentiable=False)
    el = el + 1.5 * torch.randn(rel.shape, generator=g, dtype=rel.dtype)
    return adc(el, full_well, bits) * (full_well / (2**bits - 1)) / e_per


def reference_check(chip, test, ratios, fit_steps: int, seed: int):
    """Stage 4: held-out PSNR through ``|A + L|^2`` for each reference ratio."""
    cfg = chip.config
    gen = chip.generators[0]
    L = cfg.n_wavelengths
    fields = fiber_pixel_fields(chip).detach()
    basis = torch.cat([fields.real, fields.imag], 1)
    scale = basis.square().mean().sqrt()
    coef, lin = least_squares(basis / scale, test.reshape(len(test), L, -1))
    z0 = latents_from_coefficients(coef, scale)
    lin = lin.reshape(test.shape)
    with torch.no_grad():
        field0 = gen.camera_field(chip.emitted_field(z0))
    k, s, n = cfg.camera_pixel_samples, cfg.image_size, cfg.grid_samples
    top = n // 2 - s * k // 2
    rms = field0[..., top : top + s * k, top : top + s * k].abs().square().mean((0, 2, 3)).sqrt()
    rows, fit = [], None
    for r in ratios:
        amp = (r * rms).view(1, -1, 1, 1).to(field0.dtype)

        def camera(z, amp=amp):
            return gen.relative_intensity(gen.camera_field(chip.emitted_field(z)) + amp)

        with torch.no_grad():
            background = gen.relative_intensity(torch.zeros_like(field0[:1]) + amp)
            signal = gen.relative_intensity(field0 + amp) - background
        # gain/offset calibration: the offset removes A^2, the gain maps 2 A Re L to the image
        lin_flat = lin.reshape(len(test), L, -1)
        unit = (signal.reshape(len(test), L, -1) * lin_flat).sum((0, 2)) / lin_flat.square().sum(
            (0, 2)
        )
        gain = (1 / unit).view(1, -1, 1, 1)
        ls = (signal * gain).clamp(0, 1)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.02 * z0.abs().mean().item())
        for _ in range(fit_steps):
            loss = ((camera(z) - background) * gain - test).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            rel = camera(z)
        fit = ((rel - background) * gain).clamp(0, 1)
        noisy = ((photon_counting(rel, rel.amax(), seed) - background) * gain).clamp(0, 1)
        rows.append(
            {
                "ratio": r,
                "linear_limit_psnr_db": psnr(lin.clamp(0, 1), test).item(),
                "least_squares_latents_psnr_db": psnr(ls, test).item(),
                "fitted_psnr_db": psnr(fit, test).item(),
                "fitted_ssim": ssim(fit, test).item(),
                "device_camera_psnr_db": psnr(noisy, test).item(),
                "background_over_mean_signal": (
                    background.mean((0, 2, 3)) * gain.view(-1) / test.mean((0, 2, 3))
                ).tolist(),
            }
        )
    return rows, fit


def solve_ports(z, fields, x, chunk: int | None = None):
    """Stage 5: one complex factor per fiber and wavelength, ``x_l ~ sum_k Re(w z P)``, by
    least squares over the batch. ``z`` ``(N, L*K)``, ``fields`` ``(L, K, P)``; the normal
    equations are summed a few images at a time (``N x L x K x P`` products at once would
    take 25 GB for 256 images at 512 px; ``chunk`` images at a time, default ~128 MB)."""
    L, k, p = fields.shape
    x = x.reshape(len(x), L, -1)
    step = chunk or max(1, 2**24 // (L * k * p))
    g = fields.real.new_zeros(L, 2 * k, 2 * k)
    rhs = fields.real.new_zeros(L, 2 * k)
    for i in range(0, len(z), step):
        u = z[i : i + step].view(-1, L, k, 1) * fields
        feats = torch.cat([u.real, -u.imag], 2)  # coefficients of Re w and Im w
        g = g + torch.einsum("nlap,nlbp->lab", feats, feats)
        rhs = rhs + torch.einsum("nlap,nlp->la", feats, x[i : i + step])
    g = g + 1e-6 * g.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None] * torch.eye(2 * k)
    c = torch.linalg.solve(g, rhs)
    return torch.complex(c[:, :k], c[:, k:])


def ported(z, w, fields, shape):
    """The linear image of the fiber values ``z`` through the ports ``w``."""
    L, k, _ = fields.shape
    return render_linear((w.view(1, L, k) * z.view(-1, L, k)).reshape(-1, L * k), fields).reshape(
        shape
    )


def render_linear(z: torch.Tensor, fields: torch.Tensor) -> torch.Tensor:
    """The camera's linear term ``Re sum_k z_k P_k``: ``z`` ``(N, L*K)`` complex latents,
    ``fields`` ``(L, K, P)`` -> ``(N, L, P)``."""
    L, k, _ = fields.shape
    return torch.einsum("nlk,lkp->nlp", z.reshape(-1, L, k), fields).real


def class_samples(
    r: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    n_per_class: int,
    seed: int,
    components: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-controlled draws from an ex-post density of the real vectors ``r`` ``(N, D)``:
    per class a Gaussian mixture of ``components`` full-covariance Gaussians (1: one Gaussian
    per class, :func:`lightgen.train.expost.fit_class_gaussians`, the expost-class sampler;
    more: EM on the class's points, :func:`~lightgen.train.expost.fit_gmm`), ``n_per_class``
    seeded draws each; returns the draws ``(C * n_per_class, D)`` and their labels."""
    from lightgen.train.expost import fit_class_gaussians, fit_gmm

    g = torch.Generator().manual_seed(seed)
    rows = []
    if components == 1:
        gmm = fit_class_gaussians(r, labels, n_classes, reg_covar=1e-3)
        rows = [gmm.sample(n_per_class, g, component=c) for c in range(n_classes)]
    else:
        for c in range(n_classes):
            gmm, _ = fit_gmm(r[labels == c].double(), components, seed=seed, reg_covar=1e-3)
            rows.append(gmm.sample(n_per_class, g))
    return torch.cat(rows).float(), torch.arange(n_classes).repeat_interleave(n_per_class)


def nearest_train_distance(
    images: torch.Tensor, train: torch.Tensor, size: int = 32, batch: int = 256
) -> torch.Tensor:
    """Each image's RMS pixel distance to its nearest image of ``train`` (both shrunk to
    ``size`` px by area averaging): the copying check of issue 16, to be read in the
    rendered space (``train`` rendered by the same chip), where a sampler that copies
    training images lands nearer than new images do."""

    def small(x):
        x = F.interpolate(x, size=(size, size), mode="area") if x.shape[-1] > size else x
        return x.reshape(len(x), -1).double()

    t = torch.cat([small(train[i : i + batch]) for i in range(0, len(train), batch)])
    out = []
    for i in range(0, len(images), batch):
        d = torch.cdist(small(images[i : i + batch]), t).amin(1)
        out.append(d / math.sqrt(t.shape[1]))
    return torch.cat(out)


def as_real(z: torch.Tensor) -> torch.Tensor:
    return torch.cat([z.real, z.imag], -1)


def as_complex(r: torch.Tensor) -> torch.Tensor:
    k = r.shape[-1] // 2
    return torch.complex(r[..., :k], r[..., k:])


def camera_images(chip, z: torch.Tensor, ratio: float, calib_z: torch.Tensor, fields):
    """Images the chip's camera takes of the fiber values ``z`` with a plane reference of
    ``ratio x`` the rms field of ``calib_z``'s images: ``|A + L|^2``, the offset (the
    reference alone) removed and one gain per colour, both calibrated on ``calib_z``'s
    linear prediction (not on any target image)."""
    return camera_readings(chip, z, ratio, calib_z, fields)[0]


def camera_readings(
    chip, z: torch.Tensor, ratio: float, calib_z: torch.Tensor, fields, photons: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`camera_images` and, with ``photons`` (a seed), the same light read by
    :func:`photon_counting` (its exposure set on ``calib_z``'s brightest pixel), from one
    pass of the fields through the generator; ``None`` in its place otherwise."""
    cfg = chip.config
    gen = chip.generators[0]
    k, s, n = cfg.camera_pixel_samples, cfg.image_size, cfg.grid_samples
    top = n // 2 - s * k // 2
    batch = max(1, 2**24 // (cfg.n_wavelengths * n * n))  # ~128 MB of complex field per batch
    with torch.no_grad():
        f0 = torch.cat(
            [
                gen.camera_field(chip.emitted_field(calib_z[i : i + batch]))
                for i in range(0, len(calib_z), batch)
            ]
        )
        rms = f0[..., top : top + s * k, top : top + s * k].abs().square().mean((0, 2, 3)).sqrt()
        amp = (ratio * rms).view(1, -1, 1, 1).to(f0.dtype)
        background = gen.relative_intensity(torch.zeros_like(f0[:1]) + amp)
        rel0 = gen.relative_intensity(f0 + amp)
        signal = (rel0 - background).reshape(len(calib_z), cfg.n_wavelengths, -1)
        lin = render_linear(calib_z, fields)
        gain = ((lin * lin).sum((0, 2)) / (signal * lin).sum((0, 2))).view(1, -1, 1, 1)
        clean, noisy = [], []
        for i in range(0, len(z), batch):
            rel = gen.relative_intensity(
                gen.camera_field(chip.emitted_field(z[i : i + batch])) + amp
            )
            clean.append((rel - background) * gain)
            if photons is not None:
                noisy.append((photon_counting(rel, rel0.amax(), photons + i) - background) * gain)
    return (
        torch.cat(clean).clamp(0, 1),
        torch.cat(noisy).clamp(0, 1) if photons is not None else None,
    )


def save_figure(path: Path, images: torch.Tensor, px: int) -> None:
    """A grid of 8 images per row at ``path``, images larger than ``px`` shrunk (area)."""
    from lightgen.tasks.images import image_grid, save_png

    if images.shape[-1] > px:
        images = F.interpolate(images, size=(px, px), mode="area")
    save_png(path, image_grid(images, 8))


def sample_scores(
    clf, fake, labels, real_small, real_labels, real_fid, n_classes: int, seed: int
) -> dict:
    """The shape judge on class-controlled samples ``fake`` (``labels``): per-class accuracy,
    its ratio to the judge's mean per-class accuracy on the held-out ``real_small`` (at the
    judge's size, ``real_labels``), the samples' 4 x 4 tile-shuffled control, and FID/KID
    and precision/recall in the judge's features against the held-out ``real_fid`` (at the
    samples' size, resized as the samples are)."""
    from lightgen.metrics.classifier import predict
    from lightgen.metrics.fid import generative_scores
    from lightgen.tasks.evaluate import NULL_BLOCKS, block_shuffled, for_classifier

    small = for_classifier(fake, clf)
    shuffled = block_shuffled(small, NULL_BLOCKS, torch.Generator().manual_seed(seed + 7))
    pred, pred_sh, pred_real = predict(clf, small), predict(clf, shuffled), predict(clf, real_small)
    per = [(pred[labels == c] == c).float().mean().item() for c in range(n_classes)]
    per_sh = [(pred_sh[labels == c] == c).float().mean().item() for c in range(n_classes)]
    acc_real = [(pred_real[real_labels == c] == c).float().mean().item() for c in range(n_classes)]
    real = for_classifier(real_fid, clf)
    sc = generative_scores(
        real, small, clf, kid_subset_size=min(len(small), len(real)) // 2, seed=seed
    )
    return {
        "accuracy_generated_per_class": per,
        "accuracy_generated_mean": sum(per) / n_classes,
        "ratio_generated_to_real": sum(per) / sum(acc_real),
        "accuracy_generated_block_shuffled_mean": sum(per_sh) / n_classes,
        "accuracy_real_per_class": acc_real,
        "fid": sc["fid"],
        "kid_mean": sc["kid_mean"],
        "precision": sc.get("precision"),
        "recall": sc.get("recall"),
    }


def load_study(config: Path, chip_overrides, dataset, init: Path | None, checkpointing: bool):
    """``(cfg, chip, train, test)``: a train TOML with ``--chip KEY=VALUE`` overrides, its
    chip (weights from the safetensors ``init`` if given) and the data set's two splits
    (labelled ``ImageDataset``s at the chip's image size). Bad input raises ``ValueError``
    with a one-line message naming the value and the fix."""
    cfg = load_train_config_overridden(
        tomllib.loads(config.read_text()), chip_overrides, dataset=dataset
    )
    cc = cfg.chip_config()
    train = load_dataset(cfg.dataset, split="train", size=cc.image_size, root=cfg.data_root)
    test = load_dataset(cfg.dataset, split="test", size=cc.image_size, root=cfg.data_root)
    if train.images.shape[1] != cc.n_wavelengths:
        raise ValueError(
            f"{cfg.dataset} has {train.images.shape[1]} colour(s); this chip has "
            f"{cc.n_wavelengths} wavelengths. Use a colour data set with a colour preset."
        )
    chip = LightGenChip(cc, activation_checkpointing=checkpointing)
    if init is not None:
        from safetensors.torch import load_file

        state = load_file(str(init))
        own = chip.state_dict()
        bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
        if bad:
            raise ValueError(
                f"--init {init} is not a {cc.name} chip of this shape ({bad[:3]}); pass the "
                "same --config and --chip overrides it was trained with."
            )
        chip.load_state_dict(state, strict=False)
    return cfg, chip, train, test


def save_weights(chip: LightGenChip, path: Path) -> None:
    """The chip's weights as safetensors, atomically (a reader never sees half a file)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in chip.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp)))


def samples_stage(chip, cfg, train_ds, test_ds, args, log) -> list[dict]:
    """Stage 6: class-controlled generation in the linear regime. The fiber values are drawn
    from one Gaussian per class fitted to the training images' latents (the labels only pick
    the Gaussian; random numbers injected into the fibers, as the expost-class sampler) and
    the shape judge of ``emoji_quality.py`` (colour-randomised SmallCNN) scores them, beside
    its controls (real images, the class-mean image, a pooled Gaussian that ignores the
    labels) and the digital ceiling at the same width (PCA with ``2 x fibers x colours``
    components, the same per-class Gaussians on its coefficients)."""
    from lightgen.metrics.classifier import load_or_train_classifier
    from lightgen.metrics.pca import pca_basis, pca_project

    cc = chip.config
    L, K = cc.n_wavelengths, cc.n_fibers
    train, labels = train_ds.images, train_ds.labels
    n_classes, n = train_ds.n_classes, args.samples_per_class
    shape = (n_classes * n, *train.shape[1:])
    test, tlab = test_ds.images, test_ds.labels
    jtrain = load_dataset(cfg.dataset, split="train", size=args.judge_size, root=cfg.data_root)
    jtest = load_dataset(cfg.dataset, split="test", size=args.judge_size, root=cfg.data_root)
    clf, _ = load_or_train_classifier(
        cfg.dataset,
        jtrain,
        epochs=args.judge_epochs,
        seed=args.seed,
        augment="colour",
        batch_size=32,
        test_dataset=jtest,
    )
    out: list[dict] = []
    shown: list[torch.Tensor] = []
    shown_names: list[str] = []

    def judge(name: str, fake: torch.Tensor, fake_labels: torch.Tensor, grid: bool = False):
        """Score ``fake`` with the judge; held-out reconstructions also get their PSNR."""
        r = {
            "row": name,
            **sample_scores(
                clf,
                fake,
                fake_labels,
                jtest.images,
                jtest.labels,
                test_ds.images,
                n_classes,
                args.seed,
            ),
        }
        if name.startswith("reconstructions"):
            r["psnr_db"] = psnr(fake, test).item()
        out.append(r)
        log(
            (f"[PSNR {r['psnr_db']:.2f} dB] " if "psnr_db" in r else "")
            + f"samples, {name}: shape judge {100 * r['accuracy_generated_mean']:.1f} % "
            f"(per class {', '.join(f'{100 * a:.0f}' for a in r['accuracy_generated_per_class'])}"
            f"), ratio {r['ratio_generated_to_real']:.2f}, shuffled tiles "
            f"{100 * r['accuracy_generated_block_shuffled_mean']:.1f} %, FID {r['fid']:.1f}, "
            f"KID {r['kid_mean']:.3f}"
        )
        if grid:
            shown.append(torch.cat([fake[fake_labels == c][:8] for c in range(n_classes)]))
            shown_names.append(name)

    g = torch.Generator().manual_seed(args.seed + 3)
    picks = torch.cat(
        [
            torch.nonzero(labels == c).flatten()[
                torch.randperm(int((labels == c).sum()), generator=g)[:n]
            ]
            for c in range(n_classes)
        ]
    )
    judge("real training images (a perfect sampler)", train[picks], labels[picks])
    means = torch.stack([train[labels == c].mean(0) for c in range(n_classes)])
    mean_labels = torch.arange(n_classes).repeat_interleave(n)
    judge("control: the class-mean image", means[mean_labels], mean_labels)
    mean, comps = pca_basis(train, 2 * K * L)
    coef = torch.cat([(x.reshape(len(x), -1) - mean) @ comps.T for x in train.split(64)])
    r, lab = class_samples(coef, labels, n_classes, n, args.seed, args.class_components)
    judge(
        f"reconstructions of the held-out images: PCA-{2 * K * L}",
        pca_project(test, mean, comps),
        tlab,
    )
    judge(
        f"digital: PCA-{2 * K * L}, per-class Gaussians",
        (r @ comps + mean).reshape(shape).clamp(0, 1),
        lab,
        grid=True,
    )

    m_c, v_c = per_colour_pca_basis(train, 2 * K, centred=True)
    judge(
        f"reconstructions of the held-out images: each colour's PCA-{2 * K}",
        per_colour_project(test, m_c, v_c),
        tlab,
    )
    m_c, v_c = m_c.float(), v_c.float()
    coef = torch.cat(
        [
            torch.einsum("nlp,lkp->nlk", train[i : i + 64].reshape(-1, L, m_c.shape[-1]) - m_c, v_c)
            for i in range(0, len(train), 64)
        ]
    ).reshape(len(train), -1)
    r, lab = class_samples(coef, labels, n_classes, n, args.seed, args.class_components)
    pics = torch.einsum("nlk,lkp->nlp", r.reshape(len(r), L, -1), v_c) + m_c
    judge(
        f"digital: each colour's PCA-{2 * K}, per-class Gaussians",
        pics.reshape(shape).clamp(0, 1),
        lab,
        grid=True,
    )
    with torch.no_grad():
        fields = fiber_pixel_fields(chip)
        raw = torch.cat([fields.real, fields.imag], 1)
        scale = raw.square().mean().sqrt()
        x = train.reshape(len(train), L, -1)
        coef = torch.cat(
            [least_squares(raw / scale, x[i : i + 256])[0] for i in range(0, len(x), 256)]
        )
    sources = {"generator, least-squares latents": latents_from_coefficients(coef, scale)}
    with torch.no_grad():
        xt = test.reshape(len(test), L, -1)
        rec = torch.cat(
            [least_squares(raw / scale, xt[i : i + 256])[1] for i in range(0, len(xt), 256)]
        )
    judge(
        "reconstructions of the held-out images: generator, least-squares latents",
        rec.reshape(test.shape).clamp(0, 1),
        tlab,
    )
    heldout = {"generator, least-squares latents": rec.reshape(test.shape).clamp(0, 1)}
    if args.encoder_steps or args.sample_encoder:
        with torch.no_grad():
            z = torch.cat([chip.encode(train[i : i + 32]) for i in range(0, len(train), 32)])
            zt = torch.cat([chip.encode(test[i : i + 32]) for i in range(0, len(test), 32)])
            s_f = fields.abs().square().mean().sqrt()
            w = solve_ports(z[:256], fields / s_f, train[:256])
        sources["whole chip, encoder latents"] = (w.reshape(1, L * K) * z) / s_f
        heldout["whole chip, encoder latents"] = (
            render_linear((w.reshape(1, L * K) * zt) / s_f, fields).reshape(test.shape).clamp(0, 1)
        )
    for name, z in sources.items():
        r, lab = class_samples(as_real(z), labels, n_classes, n, args.seed, args.class_components)
        zs = as_complex(r)
        fake = render_linear(zs, fields).reshape(shape).clamp(0, 1)
        judge(f"{name}, linear limit", fake, lab, grid=True)
        # the copying check in the rendered space: samples vs new (held-out) images, both
        # against the training images as this source renders them
        rendered = (
            torch.cat([render_linear(z[i : i + 256], fields) for i in range(0, len(z), 256)])
            .reshape(train.shape)
            .clamp(0, 1)
        )
        d_s = nearest_train_distance(fake, rendered).median().item()
        d_h = nearest_train_distance(heldout[name], rendered).median().item()
        out[-1]["copying_median_nearest_train_rms"] = {"samples": d_s, "heldout": d_h}
        log(
            f"copying check, {name} (rendered space, 32 px): median nearest-training distance "
            f"of samples {d_s:.4f}, of held-out images {d_h:.4f} "
            f"({'not nearer' if d_s >= d_h else 'NEARER: samples sit closer than new images'})"
        )
    for i, ratio in enumerate(args.sample_ratio):
        clean, noisy = camera_readings(
            chip, zs, ratio, z[:64], fields, args.seed if args.sample_photons else None
        )
        judge(f"{name}, camera |A + L|^2, A = {ratio:g} rms L", clean, lab, grid=i == 0)
        if noisy is not None:
            judge(f"{name}, photon-counting camera, A = {ratio:g} rms L", noisy, lab)
    pooled = torch.zeros(len(z), dtype=torch.long)
    r, _ = class_samples(as_real(z), pooled, 1, n * n_classes, args.seed, args.class_components)
    judge(
        f"control: {name}, one pooled Gaussian (labels ignored)",
        render_linear(as_complex(r), fields).reshape(shape).clamp(0, 1),
        mean_labels,
    )
    if args.samples_figure is not None:
        save_figure(args.samples_figure, torch.cat(shown), args.figure_px)
        log(
            f"wrote {args.samples_figure} (blocks of {n_classes} rows: "
            + "; ".join(shown_names)
            + ")"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True, help="a lightgen train TOML")
    ap.add_argument("--dataset", default=None, help="default: the config's")
    ap.add_argument("--chip", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--steps", type=int, default=400, help="variable-projection steps")
    ap.add_argument("--lr", type=float, default=0.05, help="generator lr (Adam)")
    ap.add_argument("--cosine", action="store_true", help="cosine decay of the lr to 0.1x")
    ap.add_argument("--batch", type=int, default=256, help="training images per step")
    ap.add_argument("--match-steps", type=int, default=0, help="field-matching init steps")
    ap.add_argument("--match-radius", type=float, default=0.25)
    ap.add_argument("--match-lr", type=float, default=0.05)
    ap.add_argument(
        "--match-size", type=int, default=128, help="fit the target fields at this size"
    )
    ap.add_argument(
        "--no-ceilings", dest="ceilings", action="store_false", help="skip the PCA ceilings"
    )
    ap.add_argument(
        "--checkpointing", action="store_true", help="activation checkpointing (512 px)"
    )
    ap.add_argument("--ratios", type=float, nargs="*", default=[2.0, 4.0, 8.0])
    ap.add_argument("--n-check", type=int, default=16, help="held-out images in stage 4")
    ap.add_argument("--fit-steps", type=int, default=30)
    ap.add_argument("--encoder-steps", type=int, default=0)
    ap.add_argument("--encoder-batch", type=int, default=16)
    ap.add_argument(
        "--samples-per-class",
        type=int,
        default=0,
        help="stage 6: class-controlled samples (one Gaussian per class of the training "
        "latents) judged by the shape judge; 0: skip",
    )
    ap.add_argument(
        "--sample-encoder",
        action="store_true",
        help="stage 6 also from the optical encoder's latents (implied by --encoder-steps)",
    )
    ap.add_argument(
        "--class-components",
        type=int,
        default=1,
        help="stage 6: Gaussians per class in the ex-post density (1: the expost-class sampler)",
    )
    ap.add_argument(
        "--sample-ratio",
        type=float,
        nargs="+",
        default=[8.0],
        help="stage 6 reference A / rms L (several: one row each; the first is in the figure)",
    )
    ap.add_argument(
        "--sample-photons",
        action="store_true",
        help="stage 6: also read the samples through the photon-counting camera of stage 4",
    )
    ap.add_argument("--judge-size", type=int, default=32)
    ap.add_argument("--judge-epochs", type=int, default=12)
    ap.add_argument("--samples-figure", type=Path, default=None, help="PNG: 8 samples per class")
    ap.add_argument(
        "--figure-px",
        type=int,
        default=128,
        help="the figures' image side: larger images are shown shrunk (area)",
    )
    ap.add_argument(
        "--n-ssim",
        type=int,
        default=None,
        help="SSIM on the first N held-out images (default all; at 512 px SSIM costs ~2 s "
        "an image)",
    )
    ap.add_argument(
        "--check-sampling",
        type=int,
        default=2,
        metavar="R",
        help="after training, the held-out PSNR of the same masks on an R x finer grid "
        "(lightgen.chip.fabrication.refined; 0 or 1: skip; at 512 px with R = 2 the run's "
        "peak resident memory rose to 22.5 GB)",
    )
    ap.add_argument(
        "--refine",
        type=int,
        default=1,
        metavar="R",
        help="simulate every stage on an R x finer grid, each mask pixel R x R samples of one "
        "height (layer_pixel_samples x R): with --steps 0 and --init it evaluates a trained "
        "chip, with training it trains on resolved pixels (weights keep one value per pixel, "
        "so resume with the same --refine); --check-sampling then checks R x that",
    )
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", type=Path, default=None, help="start from these chip weights")
    ap.add_argument("--out", type=Path, default=None, help="safetensors of the chip's weights")
    ap.add_argument(
        "--save-every",
        type=int,
        default=0,
        help="also write --out every this many steps (atomic; resume with --init)",
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--figure", type=Path, default=None, help="PNG: 8 held-out rows")
    args = ap.parse_args()
    for name in ("ratios", "sample_ratio"):
        bad = [r for r in getattr(args, name) if not r > 0]
        if bad:
            flag = "--" + name.replace("_", "-")
            ap.exit(
                2,
                f"error: {flag} {bad[0]:g}: the reference is a positive multiple of rms L, e.g. 8.\n",
            )

    try:
        cfg, chip, train_ds, test_ds = load_study(
            args.config, args.chip, args.dataset, args.init, args.checkpointing
        )
    except ValueError as e:
        ap.exit(2, f"error: {e}\n")
    if args.refine > 1:
        try:
            chip = refined(chip, args.refine)
        except ValueError as e:
            ap.exit(2, f"error: --refine {args.refine}: {e}\n")
    torch.manual_seed(args.seed)
    chip_over = cfg.chip
    cc = chip.config
    size = cc.image_size
    train, test = train_ds.images, test_ds.images
    L, K = cc.n_wavelengths, cc.n_fibers
    gen = chip.generators[0]
    params = [p for p in gen.stack.parameters() if p.requires_grad]
    x_train = train.reshape(len(train), L, -1)
    x_test = test.reshape(len(test), L, -1)
    conn = connectivity(cc)
    row: dict = {
        "config": str(args.config),
        "dataset": cfg.dataset,
        "chip_overrides": chip_over,
        "size": size,
        "n_fibers": K,
        "generator_layers": cc.generator_layers,
        "latent_real_dims": 2 * K * L,
        "generator_fiber_reach": conn.generator_fiber_reach_fraction,
        "n_train": len(train),
        "n_test": len(test),
        "refine": args.refine,
    }

    def log(msg: str) -> None:
        print(msg, flush=True)

    log(
        f"{cfg.dataset}: {len(train)} train / {len(test)} held-out at {size} px; {K} fibers x "
        f"{L} wavelengths, {cc.generator_layers} generator layers (reach "
        f"{conn.generator_fiber_reach_fraction:.2f})"
    )
    if args.refine > 1:
        log(
            f"every stage on a {args.refine}x finer grid: each mask pixel {args.refine}x"
            f"{args.refine} samples of one height (lightgen.chip.fabrication.refined)"
        )
    for centred in (True, False) if args.ceilings else ():
        key = "per_colour_pca_" + ("centred" if centred else "uncentred") + "_psnr_db"
        row[key] = psnr(per_colour_pca(train, test, 2 * K, centred), test).item()  # ~1 min
    if args.ceilings:
        log(
            f"ceilings: each colour's PCA with {2 * K} components "
            f"{row['per_colour_pca_centred_psnr_db']:.2f} dB "
            f"(uncentred {row['per_colour_pca_uncentred_psnr_db']:.2f} dB)"
        )

    def held_out(which: LightGenChip = chip) -> tuple[float, torch.Tensor]:
        with torch.no_grad():
            b = real_basis(fiber_pixel_fields(which))
            rec = torch.cat(
                [least_squares(b, x_test[i : i + 256])[1] for i in range(0, len(test), 256)]
            )
        rec = rec.reshape(test.shape).clamp(0, 1)
        return psnr(rec, test).item(), rec

    if args.match_steps:
        t0 = time.perf_counter()
        targets = local_targets(train, K, args.match_radius, args.match_size)
        row["match_overlap"] = match_fields(
            chip, params, targets, args.match_steps, args.match_lr, log
        )
        row["match_s"] = time.perf_counter() - t0
        if args.out is not None and args.save_every:
            save_weights(chip, args.out)
    row["start_heldout_psnr_db"] = held_out()[0]
    log(f"step 0: held-out {row['start_heldout_psnr_db']:.2f} dB (least-squares latents)")
    opt = torch.optim.Adam(params, lr=args.lr)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=0.1 * args.lr)
        if args.cosine
        else None
    )
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randperm(len(train), generator=g)[: args.batch]
        x = x_train[idx]
        loss = (least_squares(real_basis(fiber_pixel_fields(chip)), x)[1] - x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if args.out is not None and args.save_every and step % args.save_every == 0:
            save_weights(chip, args.out)
        if step % args.eval_every == 0 or step == args.steps:
            log(
                f"step {step}: batch MSE {loss.item():.4f}, held-out {held_out()[0]:.2f} dB "
                f"({(time.perf_counter() - t0) / step:.2f} s/step)"
            )
    row["vp_s_per_step"] = (time.perf_counter() - t0) / max(args.steps, 1)
    chip.requires_grad_(False)
    row["heldout_psnr_db"], lin = held_out()
    row["heldout_ssim"] = ssim(lin[: args.n_ssim], test[: args.n_ssim]).item()
    row["ssim_images"] = len(test[: args.n_ssim])
    log(
        f"linear regime (A -> inf), least-squares latents: held-out {row['heldout_psnr_db']:.2f} dB, "
        f"SSIM {row['heldout_ssim']:.3f}"
    )
    if args.check_sampling > 1:
        fine = refined(chip, args.check_sampling).requires_grad_(False)
        row["check_sampling_factor"] = args.check_sampling
        row["refined_heldout_psnr_db"] = held_out(fine)[0]
        del fine
        log(
            f"sampling check: the same masks (piecewise-constant pixels) on a "
            f"{args.check_sampling}x finer grid: held-out {row['refined_heldout_psnr_db']:.2f} dB "
            f"(own grid {row['heldout_psnr_db']:.2f} dB)"
        )
    check = test[: args.n_check]
    row["reference"], fit = reference_check(chip, check, args.ratios, args.fit_steps, args.seed)
    for r in row["reference"]:
        log(
            f"reference A = {r['ratio']:g} x rms|L| (first {len(check)} held-out, linear limit "
            f"{r['linear_limit_psnr_db']:.2f} dB): least-squares "
            f"latents {r['least_squares_latents_psnr_db']:.2f} dB, fitted "
            f"{r['fitted_psnr_db']:.2f} dB; photon-counting camera {r['device_camera_psnr_db']:.2f} dB"
        )
    rows = [test[:8], lin[:8]] + ([] if fit is None or len(fit) < 8 else [fit[:8]])
    if args.encoder_steps:
        fields = fiber_pixel_fields(chip).detach()
        fields = fields / fields.abs().square().mean().sqrt()
        enc_params = [p for p in chip.encoder.parameters()]
        for p in enc_params:
            p.requires_grad_(True)
        chip.laser_log_power_gain.requires_grad_(False)
        opt = torch.optim.Adam(enc_params, lr=args.lr)

        def encode_all(x):
            with torch.no_grad():
                return torch.cat([chip.encode(x[i : i + 32]) for i in range(0, len(x), 32)])

        def enc_eval():
            w = solve_ports(encode_all(train[:256]), fields, train[:256])
            rec = ported(encode_all(test), w, fields, test.shape).clamp(0, 1)
            return psnr(rec, test).item(), rec

        log(f"encoder step 0: held-out {enc_eval()[0]:.2f} dB")
        t0 = time.perf_counter()
        for step in range(1, args.encoder_steps + 1):
            idx = torch.randperm(len(train), generator=g)[: args.encoder_batch]
            x = train[idx]
            z = chip.encode(x)
            loss = (ported(z, solve_ports(z, fields, x), fields, x.shape) - x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % args.eval_every == 0 or step == args.encoder_steps:
                log(
                    f"encoder step {step}: batch MSE {loss.item():.4f}, held-out "
                    f"{enc_eval()[0]:.2f} dB ({(time.perf_counter() - t0) / step:.2f} s/step)"
                )
        row["encoder_steps"] = args.encoder_steps
        row["encoder_heldout_psnr_db"], rec = enc_eval()
        row["encoder_heldout_ssim"] = ssim(rec[: args.n_ssim], test[: args.n_ssim]).item()
        rows.append(rec[:8])
    if args.out is not None:
        save_weights(chip, args.out)
    if args.samples_per_class:
        row["samples"] = samples_stage(chip, cfg, train_ds, test_ds, args, log)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=1))
    if args.figure is not None:
        save_figure(args.figure, torch.cat(rows), args.figure_px)
        log(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
