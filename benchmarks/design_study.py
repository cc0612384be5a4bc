"""Design study of issue 15 (docs/design-study.md): held-out reconstruction of trained chips
beside the PCA ceiling at the same latent width, plus each design's connectivity.

    python benchmarks/design_study.py runs/design/base runs/design/lens ... [--size 128]

For each run folder: the chip's connectivity (lightgen.chip.connectivity), held-out
reconstruction PSNR/SSIM on the run's data set and size, the time per training step from
its log, and -- once per data set -- the mean-image baseline and PCA fitted on the same
train split with k = 2 x (complex latent values) components (the chip's real latent
width) and k = 2 x fibers. Prints one table and writes ``<run>/design-study.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from lightgen.chip.connectivity import connectivity
from lightgen.data.registry import load_dataset
from lightgen.metrics.image import psnr, ssim
from lightgen.metrics.pca import pca_reconstruction
from lightgen.tasks.generate import reconstruct, sample
from lightgen.tasks.images import image_grid, save_png
from lightgen.train.trainer import load_trained


def pca_psnr(train: torch.Tensor, test: torch.Tensor, k: int) -> tuple[float, float]:
    """Held-out PSNR/SSIM of PCA with ``k`` components fitted on ``train`` (k=0: the mean)."""
    rec = pca_reconstruction(train, test, k)
    return psnr(rec, test).item(), ssim(rec, test).item()


def seconds_per_step(run: Path) -> float | None:
    if run.parent.name == "checkpoints":  # a step folder: the log is the run's
        run = run.parent.parent
    log = run / "log.csv"
    if not log.is_file():
        return None
    rows = list(csv.DictReader(log.open()))
    if len(rows) < 3 or "seconds" not in rows[0]:
        return None
    a, b = rows[1], rows[-1]
    return (float(b["seconds"]) - float(a["seconds"])) / (int(b["step"]) - int(a["step"]))


def optimal_latent_psnr(system, images: torch.Tensor, steps: int) -> dict:
    """PSNR of the chip's reconstructions from its encoder's latents, and from latents fitted
    directly to each image's camera MSE (chip frozen; Adam lr 0.05 from the encoder's)."""
    chip = system.model.chip
    for p in system.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        z0 = chip.encode(images)
        before = psnr(chip.decode(z0).clamp(0, 1), images).item()
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(steps):
        loss = (chip.decode(z) - images).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = psnr(chip.decode(z).clamp(0, 1), images).item()
    return {"encoder_psnr_db": before, "fitted_psnr_db": after, "steps": steps}


def load_checkpoint_step(run: Path) -> int | None:
    from lightgen.train.checkpoint import load_checkpoint

    meta, _, _ = load_checkpoint(run)
    return meta.get("step")


def class_grid(run: Path, out: Path, sampler_name: str, system=None, cfg=None) -> None:
    """8 samples of each prior component (or class Gaussian) per row, 128 px per image."""
    from lightgen.train.expost import resolve_sampler

    if system is None:
        system, cfg = load_trained(run)
    sampler, _ = resolve_sampler(run, system, cfg, sampler_name)
    n_comp = system.prior.n_components if sampler is None else sampler.n_components
    with torch.no_grad():
        grid = torch.cat(
            [sample(system, 8, seed=k, component=k, sampler=sampler)[0] for k in range(n_comp)]
        )
    size = grid.shape[-1]
    if size > 128:  # shown at 128 px per image
        grid = torch.nn.functional.avg_pool2d(grid, size // 128)
    save_png(out, image_grid(grid, 8))
    print(f"wrote {out} ({n_comp} rows, sampler {sampler_name})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--n-test", type=int, default=67)
    ap.add_argument(
        "--figure", type=Path, default=None, help="PNG: 8 held-out inputs, then each run's"
    )
    ap.add_argument(
        "--optimal-latents",
        type=int,
        default=0,
        metavar="STEPS",
        help="also fit the latent of 16 held-out images directly (Adam, STEPS steps, chip "
        "frozen): the generator's own ceiling, whatever the encoder",
    )
    ap.add_argument(
        "--class-grid",
        type=Path,
        default=None,
        help="PNG: 8 samples of each prior component (rows), first run only (class control "
        "with --condition-on components: row c is class c)",
    )
    ap.add_argument(
        "--sampler",
        choices=("prior", "expost-class"),
        default="prior",
        help="--class-grid's samples: the prior's components, or one Gaussian per class "
        "fitted to the encoded training latents (lightgen.train.expost; fitted once, saved "
        "in the run folder)",
    )
    ap.add_argument(
        "--grid-only",
        action="store_true",
        help="only --class-grid for the first run: no ceilings, no reconstructions (the PCA "
        "fits take tens of minutes at 512 px on a shared CPU)",
    )
    args = ap.parse_args()
    if args.grid_only:
        if args.class_grid is None:
            ap.error("--grid-only needs --class-grid PNG (the figure it draws).")
        class_grid(args.runs[0], args.class_grid, args.sampler)
        return
    figure_rows: list[torch.Tensor] = []
    ceilings: dict[tuple, dict] = {}
    rows = []
    for run in args.runs:
        system, cfg = load_trained(run)
        chip_cfg = cfg.chip_config()
        size = chip_cfg.image_size
        key = (cfg.dataset, size, cfg.data_root)
        train = load_dataset(cfg.dataset, split="train", size=size, root=cfg.data_root).images
        test = load_dataset(cfg.dataset, split="test", size=size, root=cfg.data_root).images
        test = test[: args.n_test]
        if key not in ceilings:
            ceilings[key] = {
                "mean_image": pca_psnr(train, test, 0),
                f"pca_{2 * chip_cfg.n_fibers}": pca_psnr(train, test, 2 * chip_cfg.n_fibers),
                f"pca_{2 * chip_cfg.latent_dim}": pca_psnr(train, test, 2 * chip_cfg.latent_dim),
            }
        with torch.no_grad():
            recs = torch.cat([reconstruct(system, test[i : i + 8]) for i in range(0, len(test), 8)])
        if args.class_grid is not None and run == args.runs[0]:
            class_grid(run, args.class_grid, args.sampler, system, cfg)
        if args.figure is not None:
            if not figure_rows:
                figure_rows.append(test[:8])
            figure_rows.append(recs[:8])
        conn = connectivity(chip_cfg)
        row = {
            "run": str(run),
            "size": size,
            "n_fibers": chip_cfg.n_fibers,
            "latent_real_dims": 2 * chip_cfg.latent_dim,
            "psnr_db": psnr(recs, test).item(),
            "ssim": ssim(recs, test).item(),
            "generator_fiber_reach": conn.generator_fiber_reach_fraction,
            "encoder_fiber_reach": conn.encoder_fiber_reach_fraction,
            "s_per_step": seconds_per_step(run),
            "ceilings": {k: {"psnr_db": v[0], "ssim": v[1]} for k, v in ceilings[key].items()},
        }
        row["step"] = load_checkpoint_step(run)
        if args.optimal_latents:
            row["optimal_latents"] = optimal_latent_psnr(system, test[:16], args.optimal_latents)
        rows.append(row)
        (run / "design-study.json").write_text(json.dumps(row, indent=1))
    if args.figure is not None:
        save_png(args.figure, image_grid(torch.cat(figure_rows), 8))
    for row in rows:
        if "optimal_latents" in row:
            o = row["optimal_latents"]
            print(
                f"{row['run']}: 16 held-out images, encoder's latents {o['encoder_psnr_db']:.2f} dB, "
                f"latents fitted directly {o['fitted_psnr_db']:.2f} dB"
            )
        c = " ".join(f"{k} {v['psnr_db']:.2f}" for k, v in row["ceilings"].items())
        print(
            f"{row['run']} (step {row['step']}): PSNR {row['psnr_db']:.2f} dB SSIM {row['ssim']:.3f} "
            f"reach gen/enc {row['generator_fiber_reach']:.2f}/{row['encoder_fiber_reach']:.2f} "
            f"s/step {row['s_per_step']} | ceilings (PSNR dB): {c}"
        )


if __name__ == "__main__":
    main()
