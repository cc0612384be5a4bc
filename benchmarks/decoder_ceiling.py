"""Decoder ceilings at the chip's latent width (issue 16): can *any* passive linear-optical
generator fed by the fiber array reach the hybrid's FID, or does that need a decoder the
light path cannot be?

    python benchmarks/decoder_ceiling.py --dataset mnist --decoder linear \\
        --decoder coherent1 --decoder coherent4 --decoder mlp --out runs/ceiling.json
    python benchmarks/decoder_ceiling.py --dataset mnist --latents-from RUN --decoder coherent4 \\
        --out runs/ceiling-on-run.json        # an ideal generator on a trained chip's fiber values
    python benchmarks/decoder_ceiling.py --terms-of RUN --n 200 --out runs/terms.json

Physics of the decoder classes (all fed by the same latent, ``fibers`` complex values):

- ``coherentM``: any linear optical system from the fiber array and one reference mode
  (a fiber driven from the laser) to the camera puts a field on each grid sample that is
  linear in the fiber values, ``a_s + sum_k L_sk z_k``; a camera pixel integrates the
  intensity of its samples. With ``M`` samples per pixel, pixel ``p`` reads
  ``gain * sum_m |a_pm + sum_k L_pmk z_k|^2 + offset`` (the chip's per-channel gain/offset
  calibration; gain > 0). Here ``a`` and ``L`` are free: every diffractive design the chip
  could have (any layers, distances, pitch) is one choice of them, up to the loss a passive
  system adds (the gain absorbs a uniform one). So this class bounds the chip's generator
  from above. The ``mnist-16f`` recipe's camera pixel has 6 x 6 samples (``coherent36``
  trains ~7x slower than ``coherent4`` on 2 cores).
- ``linear``: ``offset_p + Re sum_k W_pk z_k``, the strong-reference limit the chip's
  recipe approaches (``benchmarks/pca_expost.py`` is its closed-form relative: PCA).
- ``mlp``: a digital decoder of the hybrid's width, ``Linear(2 x fibers, 64) -> ReLU ->
  Linear(64, pixels)``: not optical, the control that shows the protocol below lets a
  nonlinear decoder earn what the hybrid earns.

Every class is trained with the chip's encoder class: the fiber values are overlap
integrals of a linear optical transform of the SLM field, i.e. ``z = x E`` for the image
``x`` (amplitude encoding) with a free complex ``E``. Protocol (the same for all): mean
squared error of the decoded held-in images, with complex Gaussian noise of
``--latent-noise`` x the latents' rms added to the fiber values during training (what makes
the decoder robust to off-set latents, like the chip's fiber noise), Adam at ``--lr`` for
``--steps`` (the last quarter at a quarter of it, as the chip's 4800-step recipe), batch
256. Then the chip's sampler: an ex-post Gaussian mixture (K components, full covariance,
:func:`lightgen.train.expost.fit_gmm`) fitted to the training images' latents, samples
decoded and clipped to [0, 1] (camera saturation), scored as ``lightgen eval`` scores a
chip (``pca_expost.score``: SmallCNN judge, the held-out split, 1,000 vs 1,000,
reconstruction PSNR/FID of held-out images, the copying control).

A trained ceiling is an estimate from one optimiser run, not a proof; its control is the
``linear`` row, which must land near PCA's closed form at the same width (docs/results.md:
MNIST PCA-32 18.33 dB held-out), showing the optimiser converges.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pca_expost.py sits beside it
from lightgen.data.registry import load_dataset
from lightgen.tasks.images import atomic_write_text, image_grid, save_png
from lightgen.train.expost import fit_gmm, latents_to_real, real_to_latents
from pca_expost import score

HIDDEN = 64  # the hybrid's MLP width (lightgen.baselines.hybrid)


class LinearOpticsEncoder(nn.Module):
    """``z = x E``: fiber overlaps of a linear optical transform of the SLM amplitude."""

    def __init__(self, pixels: int, fibers: int, g: torch.Generator):
        super().__init__()
        e = torch.randn(pixels, fibers, dtype=torch.cfloat, generator=g) / math.sqrt(pixels)
        self.e = nn.Parameter(e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).to(self.e.dtype) @ self.e


class CoherentDecoder(nn.Module):
    """Pixel ``p``: ``gain * sum_m |a_pm + sum_k L_pmk z_k|^2 + offset``, gain > 0."""

    def __init__(self, fibers: int, pixels: int, modes: int, g: torch.Generator):
        super().__init__()
        self.a = nn.Parameter(torch.randn(modes, pixels, dtype=torch.cfloat, generator=g))
        l_ = torch.randn(modes, fibers, pixels, dtype=torch.cfloat, generator=g)
        self.l = nn.Parameter(l_ / math.sqrt(fibers))
        self.log_gain = nn.Parameter(torch.tensor(-math.log(2.0 * modes)))
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        field = self.a + torch.einsum("bf,mfp->bmp", z, self.l)
        return self.log_gain.exp() * field.abs().square().sum(1) + self.offset

    def terms(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The camera signal (after gain, before offset) split: reference ``|a|^2``, cross
        ``2 Re(a* L z)`` and quadratic ``|L z|^2`` terms, each ``(B, pixels)``."""
        s = torch.einsum("bf,mfp->bmp", z, self.l)
        a = self.a.expand_as(s)
        gain = self.log_gain.exp()
        return (
            gain * a.abs().square().sum(1),
            gain * 2 * (a.conj() * s).real.sum(1),
            gain * s.abs().square().sum(1),
        )


def term_split(ref: torch.Tensor, cross: torch.Tensor, quad: torch.Tensor) -> dict:
    """How far a generator is from its linear (strong-reference) limit, over a batch of
    images: the reference-to-signal amplitude ratio ``sqrt(mean ref / mean quad)`` and the
    spread over images (std per pixel, mean over pixels) of the cross and quadratic terms;
    ``quadratic_share`` = quadratic / (cross + quadratic) spread (0: linear)."""
    c, q = float(cross.std(0).mean()), float(quad.std(0).mean())
    return {
        "reference_to_signal_amplitude": math.sqrt(float(ref.mean()) / float(quad.mean())),
        "cross_term_spread": c,
        "quadratic_term_spread": q,
        "quadratic_share": q / (c + q),
    }


def chip_terms(run: Path, images: torch.Tensor) -> dict:
    """:func:`term_split` of a trained chip with a reference fiber on ``images``: its camera
    image decoded with the fibers (free and reference) on, with the reference alone, with
    the free fibers alone and with all off (the camera offset)."""
    from lightgen.train.trainer import load_trained

    system, _ = load_trained(run)
    system.eval()
    if not system.reference_amplitude:
        raise SystemExit(f"--terms-of {run}: this run has no reference fiber.")
    chip = system.model.chip
    with torch.no_grad():
        z = system.with_reference(system.model.posterior(images)[0])
        ref_only, sig_only = z.clone(), z.clone()
        ref_only[:, system.free_index] = 0
        sig_only[:, system.condition_index] = 0
        off = chip.decode(torch.zeros_like(z))
        full, ref, sig = chip.decode(z), chip.decode(ref_only), chip.decode(sig_only)
    return term_split(ref - off, full - ref - sig + off, sig - off)


class LinearDecoder(nn.Module):
    """``offset_p + Re sum_k W_pk z_k``: the strong-reference limit."""

    def __init__(self, fibers: int, pixels: int, g: torch.Generator):
        super().__init__()
        w = torch.randn(fibers, pixels, dtype=torch.cfloat, generator=g) / math.sqrt(fibers)
        self.w = nn.Parameter(w)
        self.offset = nn.Parameter(torch.zeros(pixels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.w).real + self.offset


class MLPDecoder(nn.Module):
    """Digital (not optical): the hybrid's MLP width, straight to pixels."""

    def __init__(self, fibers: int, pixels: int, g: torch.Generator):
        super().__init__()
        with torch.random.fork_rng():  # seeded from g, without touching the global RNG
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
            self.net = nn.Sequential(
                nn.Linear(2 * fibers, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, pixels)
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.view_as_real(z).flatten(1))


def make_decoder(name: str, fibers: int, pixels: int, g: torch.Generator) -> nn.Module:
    if name == "linear":
        return LinearDecoder(fibers, pixels, g)
    if name == "mlp":
        return MLPDecoder(fibers, pixels, g)
    m = re.fullmatch(r"coherent(\d+)", name)
    if m and int(m.group(1)) >= 1:
        return CoherentDecoder(fibers, pixels, int(m.group(1)), g)
    raise SystemExit(
        f"--decoder {name!r} is not a decoder class; use linear, mlp or coherentM "
        "(M >= 1 coherent samples per camera pixel, e.g. coherent1, coherent36)."
    )


class FixedCodes(nn.Module):
    """The fiber values a trained run's own encoder gives each image (looked up by the
    image's bytes; no parameters): ``--latents-from``."""

    def __init__(self, images: torch.Tensor, codes: torch.Tensor):
        super().__init__()
        self.table = {
            img.numpy().tobytes(): c for img, c in zip(images.flatten(1), codes, strict=True)
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.table[img.numpy().tobytes()] for img in x.flatten(1)])


def train_autoencoder(
    decoder: nn.Module,
    train: torch.Tensor,
    fibers: int,
    steps: int,
    lr: float,
    latent_noise: float,
    g: torch.Generator,
    batch: int = 256,
    encoder: nn.Module | None = None,
) -> tuple[nn.Module, list[float]]:
    """``decoder`` trained on ``train`` ``(N, 1, S, S)`` with a :class:`LinearOpticsEncoder`
    (trained jointly), or with ``encoder`` given (e.g. :class:`FixedCodes`, then only its
    parameters, if any, train with it); returns the encoder and the loss every 100 steps."""
    pixels = train[0].numel()
    enc = encoder if encoder is not None else LinearOpticsEncoder(pixels, fibers, g)
    params = [*enc.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    flat = train.flatten(1)
    losses = []
    for step in range(steps):
        if step == (3 * steps) // 4:
            for group in opt.param_groups:
                group["lr"] = lr / 4
        x = flat[torch.randint(0, flat.shape[0], (batch,), generator=g)]
        z = enc(x)
        if latent_noise > 0:
            rms = z.detach().abs().square().mean().sqrt()
            noise = torch.randn(z.shape, dtype=z.dtype, generator=g)
            z = z + latent_noise * rms * noise
        loss = (decoder(z) - x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            losses.append(loss.item())
    return enc, losses


def decoder_ceiling(
    dataset: str,
    decoder_name: str,
    fibers: int,
    steps: int,
    lr: float,
    latent_noise: float,
    gmm_components: int,
    n: int,
    data_root: str | None,
    seed: int = 0,
    figure: Path | None = None,
    latents_from: Path | None = None,
) -> dict:
    train = load_dataset(dataset, root=data_root, split="train", size=28, seed=seed).images
    test = load_dataset(dataset, root=data_root, split="test", size=28, seed=seed).images[:n]
    g = torch.Generator().manual_seed(seed)
    pixels = train[0].numel()
    encoder = None
    if latents_from is not None:
        encoder, fibers = run_codes(latents_from, dataset, train, test)
    decoder = make_decoder(decoder_name, fibers, pixels, g)
    t0 = time.perf_counter()
    enc, losses = train_autoencoder(
        decoder, train, fibers, steps, lr, latent_noise, g, encoder=encoder
    )
    train_s = time.perf_counter() - t0
    shape = train.shape[1:]
    with torch.no_grad():
        codes, test_codes = enc(train), enc(test)
        recon = decoder(test_codes).clamp(0, 1).reshape(-1, *shape)
        gmm, report = fit_gmm(latents_to_real(codes).double(), gmm_components, "full", seed=seed)
        drawn = gmm.sample(n, torch.Generator().manual_seed(seed)).float()
        z = real_to_latents(drawn, complex_latent=True)
        samples = decoder(z).clamp(0, 1).reshape(-1, *shape)
        terms = term_split(*decoder.terms(test_codes)) if hasattr(decoder, "terms") else {}
    if figure is not None:
        save_png(figure, image_grid(samples[:64], 8, upscale=2))
    return {
        "dataset": dataset,
        "decoder": decoder_name,
        **terms,
        "latents_from": None if latents_from is None else str(latents_from),
        "optical": decoder_name != "mlp",
        "fibers": fibers,
        "steps": steps,
        "lr": lr,
        "latent_noise": latent_noise,
        "gmm_components": gmm_components,
        "gmm_mean_log_likelihood": float(report.log_likelihood),
        "train_seconds": train_s,
        "loss_every_100_steps": losses,
        "n_train": int(train.shape[0]),
        **score(samples, recon, test, train, dataset, n, seed, data_root),
    }


def run_codes(
    run: Path, dataset: str, train: torch.Tensor, test: torch.Tensor
) -> tuple[FixedCodes, int]:
    """The fiber values (posterior means, the prior's free fibers: what the chip's ex-post
    sampler is fitted to) that the trained run's encoder gives ``train`` and ``test``."""
    from lightgen.train.expost import encode_means
    from lightgen.train.trainer import load_trained

    system, cfg = load_trained(run)
    system.eval()
    if cfg.dataset != dataset or cfg.chip_config().image_size != train.shape[-1]:
        raise SystemExit(
            f"--latents-from {run} was trained on {cfg.dataset!r} at "
            f"{cfg.chip_config().image_size} px; give --dataset {cfg.dataset} (28 px)."
        )
    if not system.model.complex_latent:
        raise SystemExit(f"--latents-from {run}: a real latent ({cfg.model}); give a chip run.")
    with torch.no_grad():
        images = torch.cat([train, test])
        codes = encode_means(system, images).to(torch.cfloat)
    return FixedCodes(images, codes), codes.shape[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", action="append", default=None)
    ap.add_argument("--decoder", action="append", default=None, help="linear|mlp|coherentM")
    ap.add_argument("--fibers", type=int, default=16, help="complex fiber values (latent)")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--latent-noise", type=float, default=0.05)
    ap.add_argument("--gmm-components", type=int, default=100)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data-root", default=None)
    ap.add_argument(
        "--latents-from",
        type=Path,
        default=None,
        help="a trained run: its encoder's fiber values instead of a trained linear-optics "
        "encoder (only the decoder trains; --fibers is the run's free fibers)",
    )
    ap.add_argument(
        "--terms-of",
        type=Path,
        default=None,
        help="only print the camera term split (reference / cross / quadratic) of this trained "
        "chip run with a reference fiber on --n held-out images of its data set, and stop",
    )
    ap.add_argument("--out", type=Path, required=True, help="JSON file (PNG grids beside it)")
    a = ap.parse_args(argv)
    if a.terms_of is not None:
        from lightgen.train.trainer import load_trained

        cfg = load_trained(a.terms_of)[1]
        size = cfg.chip_config().image_size
        test = load_dataset(cfg.dataset, root=a.data_root, split="test", size=size).images
        row = {"run": str(a.terms_of), "n": a.n, **chip_terms(a.terms_of, test[: a.n])}
        print(json.dumps(row, indent=1))
        atomic_write_text(a.out, json.dumps(row, indent=1))
        return
    rows = []
    for name in a.dataset or ["mnist", "fashion-mnist"]:
        for dec in a.decoder or ["linear", "coherent1", "coherent4", "mlp"]:
            fig = a.out.with_name(f"{a.out.stem}-{name}-{dec}-samples.png")
            row = decoder_ceiling(
                name,
                dec,
                a.fibers,
                a.steps,
                a.lr,
                a.latent_noise,
                a.gmm_components,
                a.n,
                a.data_root,
                figure=fig,
                latents_from=a.latents_from,
            )
            rows.append(row)
            print(
                f"{name} {dec}: FID {row['fid']:.1f}  KID {row['kid_mean']:.2f}  precision "
                f"{row['precision']:.3f}  recall {row['recall']:.3f}  recon PSNR "
                f"{row['reconstruction_psnr_db']:.2f} dB  recon FID "
                f"{row['reconstruction_fid']:.1f}  nearest-train ratio "
                f"{row['nearest_train_l2_ratio']:.3f}  ({row['train_seconds']:.0f} s)",
                flush=True,
            )
            atomic_write_text(a.out, json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
