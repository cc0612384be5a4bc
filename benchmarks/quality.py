"""Quality of the all-optical chip against the hybrid and digital baselines.

    python benchmarks/quality.py [--steps 1000] [--datasets mnist fashion-mnist] [--n 1000]

For each data set and model (chip = all-optical, hybrid = digital MLP + SLM + optical
decoder, vae = digital) this runs the documented CLI commands

    lightgen train --model M --preset mnist --dataset D --steps S --out runs/results/D-M
    lightgen eval  --checkpoint runs/results/D-M --n N

(skipping training when the run already finished), writes sample grids and
interpolations to docs/figures/, and prints a Markdown table (also written to
runs/results/table.md) with FID/KID/precision/recall in the feature space of the
SmallCNN classifier trained on the data set's train split, reconstruction PSNR/SSIM,
and wall-clock training time on this machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("chip", "hybrid", "vae")


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def finished(run_dir: Path, steps: int) -> bool:
    latest = run_dir / "checkpoints" / "latest"
    return latest.is_file() and latest.read_text().strip() == f"step-{steps:06d}"


def train_seconds(run_dir: Path) -> float:
    rows = list(csv.DictReader((run_dir / "log.csv").open()))
    return float(rows[-1]["seconds"]) if rows else float("nan")


def figures(run_dir: Path, name: str) -> None:
    import torch

    from lightgen.data.registry import load_dataset
    from lightgen.tasks.generate import interpolate, sample
    from lightgen.tasks.images import image_grid, save_png
    from lightgen.train.trainer import load_trained

    system, cfg = load_trained(run_dir)
    imgs, _ = sample(system, 48, seed=0)
    save_png(ROOT / "docs" / "figures" / f"{name}-samples.png", image_grid(imgs, 12, upscale=2))
    test = load_dataset(cfg.dataset, split="test", size=cfg.chip_config().image_size)
    rows = [interpolate(system, test.images[2 * i], test.images[2 * i + 1], 10) for i in range(3)]
    save_png(
        ROOT / "docs" / "figures" / f"{name}-interpolation.png",
        image_grid(torch.cat(rows), 10, upscale=2),
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--n", type=int, default=1000, help="generated and real images per FID/KID")
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--preset", default="mnist-16f")
    ap.add_argument("--prior", default="mixture", choices=("gaussian", "mixture"))
    ap.add_argument("--n-components", type=int, default=10)
    ap.add_argument("--sigma-x", type=float, default=0.25)
    args = ap.parse_args()
    recipe = ["--prior", args.prior, "--sigma-x", str(args.sigma_x)]
    if args.prior == "mixture":
        recipe += ["--n-components", str(args.n_components)]
    exe = [sys.executable, "-m", "lightgen.cli"]
    lines = [
        "| data | model | FID ↓ | KID ↓ | precision | recall | rec. PSNR (dB) | rec. SSIM | train time (s) | commands |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for ds in args.datasets:
        for model in args.models:
            out = Path("runs/results") / f"{ds}-{args.preset}-{model}-{args.prior}"
            train = [
                *exe,
                "train",
                "--model",
                model,
                "--preset",
                args.preset,
                "--dataset",
                ds,
                "--steps",
                str(args.steps),
                *recipe,
                "--out",
                str(out),
            ]
            if not finished(ROOT / out, args.steps):
                run(
                    train
                    + (["--resume"] if (ROOT / out / "checkpoints" / "latest").is_file() else [])
                )
            ev = [*exe, "eval", "--checkpoint", str(out), "--n", str(args.n)]
            run(ev)
            r = json.loads((ROOT / out / f"eval-{ds}.json").read_text())
            figures(ROOT / out, f"{ds}-{args.preset}-{model}-{args.prior}")
            cmd = f"`lightgen train --model {model} --preset {args.preset} --dataset {ds} --steps {args.steps} {' '.join(recipe)} --out {out}`; `lightgen eval --checkpoint {out} --n {args.n}`"
            lines.append(
                f"| {ds} | {model} | {r['fid']:.1f} | {r['kid_mean']:.1f} ± {r['kid_std']:.1f} | {r['precision']:.3f} | "
                f"{r['recall']:.3f} | {r['reconstruction_psnr_db']:.2f} | {r['reconstruction_ssim']:.3f} | "
                f"{train_seconds(ROOT / out):.0f} | {cmd} |"
            )
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    (ROOT / "runs" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "runs" / "results" / f"table-{args.preset}-{args.prior}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
