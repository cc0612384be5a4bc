"""Generator-capacity ceiling (issue 15, docs/design-study.md): how well can this chip's
*generator* draw the images, whatever the encoder?

    python benchmarks/generator_ceiling.py --config benchmarks/configs/design/base.toml \
        --steps 400 --fit-steps 100 [--chip generator_layers=5 ...] [--json out.json]

GLO / auto-decoder (Bojanowski et al. 2018; Park et al. 2019): the generator's phase
layers, its camera calibration and the laser gain are trained jointly with one free
complex value per fiber and wavelength for every *training* image (no encoder; the
latent table is learned with SparseAdam, the generator with Adam at the config's lr).
Then the generator is frozen and the latents of held-out images are fitted to their
camera MSE (Adam, ``--fit-steps``; each starts from the latent of its nearest training
image). The held-out PSNR of those fitted latents bounds every encoder that could feed
this generator (an encoder can at best deliver the best latent). It is printed beside
the PCA ceiling with the same number of real dimensions (2 x fibers x wavelengths),
fitted on the same train split.

The light path is the chip's own (lightgen.chip.LightGenChip.decode: fiber emission,
free-space hops, phase masks, camera intensity, gain/offset); ``--chip key=value``
overrides ChipConfig fields of the config's preset (validated like ``lightgen train``:
sampling rules stay checked).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import tomllib
from pathlib import Path

import torch

from lightgen.chip.chip import LightGenChip
from lightgen.chip.connectivity import connectivity
from lightgen.data.registry import load_dataset
from lightgen.metrics.image import psnr, ssim
from lightgen.metrics.pca import pca_reconstruction
from lightgen.optics import fabrication
from lightgen.train.config import load_train_config_overridden


def fit_latents(
    chip: LightGenChip, images: torch.Tensor, z0: torch.Tensor, steps: int, lr: float
) -> torch.Tensor:
    """Latents ``(B, D)`` fitted to ``images``' camera MSE, generator frozen."""
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        loss = (chip.decode(z) - images).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return z.detach()


def add_experiments(chip: LightGenChip, plane_reference: bool, filter_radius_m) -> None:
    """Two generator experiments outside the chip's presets (docs/design-study.md).

    ``plane_reference``: a plane wave split from the same laser and combined with the
    generator's field in front of the camera (off-axis-holography style, on axis here), so
    the camera reads ``|A_l + E_l|^2``: one real amplitude ``A_l`` per wavelength (the
    beam-splitter ratio), learned with the generator and started at the signal's rms
    amplitude (its phase is a path-length constant the free latents absorb).
    ``filter_radius_m``: every generator mask's raw height map passes the fabrication's
    conic filter of that radius (a band limit on the masks' features)."""
    if filter_radius_m is not None:
        kernel = fabrication.conic_filter_kernel(chip.config.pixel_pitch_m, filter_radius_m)
        for g in chip.generators:
            for layer in g.stack.layers:
                layer.filter_kernel = kernel
    if not plane_reference:
        return
    gen = chip.generators[0]
    amp = torch.nn.Parameter(torch.zeros(chip.config.n_wavelengths))
    chip.register_parameter("plane_reference_amplitude", amp)
    state = {"ready": False}

    def decode(z: torch.Tensor, generator=0) -> torch.Tensor:
        field = gen.camera_field(chip.emitted_field(z))
        if not state["ready"]:
            with torch.no_grad():
                amp.copy_(field.abs().square().mean((0, 2, 3)).sqrt())
            state["ready"] = True
        return gen.camera(field + amp.view(1, -1, 1, 1).to(field.dtype))

    chip.decode = decode


def decode_all(chip: LightGenChip, z: torch.Tensor, batch: int = 16) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([chip.decode(z[i : i + batch]) for i in range(0, len(z), batch)]).clamp(
            0, 1
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True, help="a lightgen train TOML")
    ap.add_argument(
        "--chip",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="ChipConfig overrides, e.g. generator_layers=5 n_fibers=32",
    )
    ap.add_argument("--steps", type=int, default=400, help="joint GLO steps")
    ap.add_argument("--batch", type=int, default=None, help="default: the config's batch_size")
    ap.add_argument("--lr", type=float, default=None, help="generator lr (default: config's)")
    ap.add_argument("--latent-lr", type=float, default=0.2, help="latent table lr (SparseAdam)")
    ap.add_argument("--fit-lr", type=float, default=0.05, help="held-out latent fit lr (Adam)")
    ap.add_argument("--fit-steps", type=int, default=100, help="held-out latent fit steps")
    ap.add_argument("--n-train", type=int, default=None, help="first N training images")
    ap.add_argument("--n-test", type=int, default=32, help="first N held-out images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--figure", type=Path, default=None, help="PNG: 8 held-out inputs, fits")
    ap.add_argument(
        "--plane-reference",
        action="store_true",
        help="experiment: a plane wave from the same laser added at the camera plane",
    )
    ap.add_argument(
        "--mask-filter-radius-m",
        type=float,
        default=None,
        help="experiment: band-limit every generator mask (conic filter of this radius)",
    )
    args = ap.parse_args()

    try:
        cfg = load_train_config_overridden(tomllib.loads(args.config.read_text()), args.chip)
    except ValueError as e:
        ap.exit(2, f"error: {e}\n")
    chip_over = cfg.chip
    chip_cfg = cfg.chip_config()
    torch.manual_seed(args.seed)
    size = chip_cfg.image_size
    train = load_dataset(cfg.dataset, split="train", size=size, root=cfg.data_root).images
    test = load_dataset(cfg.dataset, split="test", size=size, root=cfg.data_root).images
    train = train[: args.n_train]
    test = test[: args.n_test]
    n, d = len(train), chip_cfg.latent_dim
    chip = LightGenChip(chip_cfg)
    add_experiments(chip, args.plane_reference, args.mask_filter_radius_m)
    chip.encoder.requires_grad_(False)  # unused: the latents are free
    gen_params = [p for p in chip.parameters() if p.requires_grad]
    # latent table: real and imaginary parts of the D complex values, CN(0, 1) start
    table = torch.nn.Embedding(n, 2 * d, sparse=True)
    with torch.no_grad():
        table.weight.normal_(0.0, math.sqrt(0.5))
    opt_g = torch.optim.Adam(gen_params, lr=args.lr or cfg.lr)
    opt_z = torch.optim.SparseAdam(table.parameters(), lr=args.latent_lr)
    batch = args.batch or cfg.batch_size
    gen = torch.Generator().manual_seed(args.seed)

    def latents(idx: torch.Tensor) -> torch.Tensor:
        return torch.view_as_complex(table(idx).view(-1, d, 2).contiguous())

    # start the camera's gain calibration at the data's mean brightness per channel
    with torch.no_grad():
        idx = torch.arange(min(n, 32))
        out = chip.decode(latents(idx)).mean((0, 2, 3))
        for g in chip.generators:
            g.camera_log_gain.copy_(torch.log(train.mean((0, 2, 3)) / out))
    conn = connectivity(chip_cfg)
    print(
        f"{args.config} {chip_over or ''}: {n} train / {len(test)} held-out images at {size} px, "
        f"{chip_cfg.n_fibers} fibers x {chip_cfg.n_wavelengths} wavelengths = {2 * d} real dims, "
        f"{chip_cfg.generator_layers} generator layers, fiber reach {conn.generator_fiber_reach_fraction:.2f}"
    )
    t0 = time.perf_counter()
    window: list[float] = []
    for step in range(1, args.steps + 1):
        idx = torch.randperm(n, generator=gen)[:batch]
        loss = (chip.decode(latents(idx)) - train[idx]).square().mean()
        opt_g.zero_grad()
        opt_z.zero_grad()
        loss.backward()
        opt_g.step()
        opt_z.step()
        window.append(loss.item())
        if step % args.log_every == 0 or step == args.steps:
            print(
                f"step {step}: train MSE {sum(window) / len(window):.4f} "
                f"({(time.perf_counter() - t0) / step:.2f} s/step)",
                flush=True,
            )
            window = []
    train_s = time.perf_counter() - t0
    chip.requires_grad_(False)
    with torch.no_grad():
        z_train = torch.view_as_complex(table.weight.view(n, d, 2).contiguous())
        fit_train = decode_all(chip, z_train)
        # each held-out latent starts from its nearest training image's latent
        nearest = torch.cdist(test.flatten(1), train.flatten(1)).argmin(1)
    t1 = time.perf_counter()
    z_test = torch.cat(
        [
            fit_latents(
                chip, test[i : i + 16], z_train[nearest[i : i + 16]], args.fit_steps, args.fit_lr
            )
            for i in range(0, len(test), 16)
        ]
    )
    fit_s = time.perf_counter() - t1
    fit_test = decode_all(chip, z_test)
    start_test = decode_all(chip, z_train[nearest])
    pca = pca_reconstruction(train, test, 2 * d)
    mean = pca_reconstruction(train, test, 0)
    row = {
        "config": str(args.config),
        "chip_overrides": chip_over,
        "size": size,
        "n_fibers": chip_cfg.n_fibers,
        "generator_layers": chip_cfg.generator_layers,
        "plane_reference": args.plane_reference,
        "mask_filter_radius_m": args.mask_filter_radius_m,
        "latent_real_dims": 2 * d,
        "generator_fiber_reach": conn.generator_fiber_reach_fraction,
        "steps": args.steps,
        "batch": batch,
        "fit_steps": args.fit_steps,
        "s_per_step": train_s / args.steps,
        "fit_s": fit_s,
        "train_psnr_db": psnr(fit_train, train).item(),
        "heldout_start_psnr_db": psnr(start_test, test).item(),
        "heldout_psnr_db": psnr(fit_test, test).item(),
        "heldout_ssim": ssim(fit_test, test).item(),
        "pca_psnr_db": psnr(pca, test).item(),
        "pca_ssim": ssim(pca, test).item(),
        "mean_image_psnr_db": psnr(mean, test).item(),
    }
    print(
        f"GLO ceiling: train PSNR {row['train_psnr_db']:.2f} dB | held-out (n={len(test)}) "
        f"nearest-latent start {row['heldout_start_psnr_db']:.2f} dB, fitted "
        f"{row['heldout_psnr_db']:.2f} dB SSIM {row['heldout_ssim']:.3f} | PCA k={2 * d} "
        f"{row['pca_psnr_db']:.2f} dB SSIM {row['pca_ssim']:.3f} | mean image "
        f"{row['mean_image_psnr_db']:.2f} dB | {row['s_per_step']:.2f} s/step, fit {fit_s:.0f} s"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=1))
    if args.figure is not None:
        from lightgen.tasks.images import image_grid, save_png

        save_png(args.figure, image_grid(torch.cat([test[:8], fit_test[:8], pca[:8]]), 8))
        print(f"wrote {args.figure} (rows: held-out inputs, GLO fit, PCA k={2 * d})")


if __name__ == "__main__":
    main()
