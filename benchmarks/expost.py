"""Samplers of the optical latent space on the trained runs of benchmarks/quality.py.

    python benchmarks/expost.py [--datasets mnist fashion-mnist] [--models chip hybrid]
        [--samplers prior full:10 full:50 diag:50] [--n 1000]

For each run ``runs/results/<data>-<preset>-<model>-mixture`` (train it first with
``python benchmarks/quality.py``) and each sampler (``prior`` = the trained P(Z);
``full:K`` / ``diag:K`` = ``--sampler expost-gmm --gmm-covariance full|diag
--gmm-components K``) this runs the documented command

    lightgen eval --checkpoint RUN --n N [--sampler expost-gmm --gmm-covariance C --gmm-components K]

prints a Markdown table (FID/KID/precision/recall in SmallCNN features, the copying controls
in pixels and in the model's rendered space, and the reconstructions' FID as a reference), also written to runs/results/table-expost.md, and writes
for each row a grid of 48 samples (seed 0), a copying figure (top: 12 samples; bottom:
the nearest training image of each, pixel L2) and its rendered-space twin (12 samples; the
nearest of the chip's renderings of the training images; that training image), and the
same view for 12 held-out images' renderings, to docs/figures/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_sampler(text: str) -> tuple[str, int, str]:
    """``prior`` -> ("prior", 0, ""); ``full:50`` -> ("expost-gmm", 50, "full")."""
    if text == "prior":
        return "prior", 0, ""
    cov, _, k = text.partition(":")
    if cov not in ("full", "diag") or not k.isdigit():
        raise SystemExit(f"--samplers entry {text!r}: use prior, full:K or diag:K (e.g. full:50).")
    return "expost-gmm", int(k), cov


def eval_args(run_dir: str, n: int, sampler: tuple[str, int, str]) -> list[str]:
    kind, k, cov = sampler
    extra = [] if kind == "prior" else ["--sampler", kind, "--gmm-covariance", cov]
    extra += [] if kind == "prior" else ["--gmm-components", str(k)]
    return ["eval", "--checkpoint", run_dir, "--n", str(n), *extra]


def tag(sampler: tuple[str, int, str]) -> str:
    kind, k, cov = sampler
    return "" if kind == "prior" else f"-{kind}-{cov}-k{k}"


def figures(run_dir: Path, name: str, sampler: tuple[str, int, str]) -> None:
    import torch

    from lightgen.metrics.copying import nearest_train_distances
    from lightgen.tasks.generate import reconstruct_batched, sample
    from lightgen.tasks.images import image_grid, save_png
    from lightgen.train.data import run_split
    from lightgen.train.expost import resolve_sampler
    from lightgen.train.trainer import load_trained

    system, cfg = load_trained(run_dir)
    kind, k, cov = sampler
    src, _ = resolve_sampler(
        run_dir, system, cfg, kind, k if kind != "prior" else None, cov or None
    )
    imgs, _ = sample(system, 48, seed=0, sampler=src)
    fig = ROOT / "docs" / "figures"
    save_png(fig / f"{name}-samples.png", image_grid(imgs, 12, upscale=2))
    train = run_split(cfg, "train").images
    top = imgs[:12]

    def nearest(images, pool):  # index of each image's nearest pool image, pixel L2
        return torch.cdist(images.flatten(1).double(), pool.flatten(1).double()).argmin(1)

    idx = nearest(top, train)
    assert torch.allclose(
        (top.flatten(1).double() - train[idx].flatten(1).double()).norm(dim=1),
        nearest_train_distances(top, train),
    )
    save_png(
        fig / f"{name}-nearest-train.png",
        image_grid(torch.cat([top, train[idx].to(top)]), 12, upscale=2),
    )
    # the rendered-space control's view: each image, the nearest of the chip's renderings
    # of the training images, and that training image
    rendered = reconstruct_batched(system, train)

    def nearest_rendered(path, images):
        idx = nearest(images, rendered)
        rows = [images, rendered[idx].to(images), train[idx].to(images)]
        save_png(path, image_grid(torch.cat(rows), 12, upscale=2))

    nearest_rendered(fig / f"{name}-nearest-rendered.png", top)
    # the same view for new data: 12 held-out images' renderings (the control's reference)
    held = run_split(cfg, "test", 12).images
    run_name = name.split("-expost")[0].removesuffix("-prior")
    nearest_rendered(
        fig / f"{run_name}-held-out-nearest-rendered.png", reconstruct_batched(system, held)
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    ap.add_argument("--models", nargs="+", default=["chip"])
    ap.add_argument("--preset", default="mnist-16f")
    ap.add_argument("--samplers", nargs="+", default=["prior", "full:10", "full:50", "diag:50"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument(
        "--run-suffix",
        default="",
        help="evaluate runs/results/<data>-<preset>-<model>-mixture<SUFFIX> (e.g. --run-suffix=-sx0.1)",
    )
    ap.add_argument("--reuse", action="store_true", help="skip an eval whose JSON already exists")
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args()
    samplers = [parse_sampler(s) for s in args.samplers]
    exe = [sys.executable, "-m", "lightgen.cli"]
    lines = [
        "| data | model | sampler | FID ↓ | KID ↓ | precision | recall | nearest-train L2: samples / held-out / held-out reconstructed | nearest rendered-train L2: samples / held-out renderings | rec. FID | command |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for ds in args.datasets:
        for model in args.models:
            run_dir = f"runs/results/{ds}-{args.preset}-{model}-mixture{args.run_suffix}"
            if not (ROOT / run_dir / "checkpoints" / "latest").is_file():
                raise SystemExit(
                    f"{run_dir} is not trained; run python benchmarks/quality.py --datasets "
                    f"{ds} --models {model} --preset {args.preset} first."
                )
            for s in samplers:
                js = ROOT / run_dir / f"eval-{ds}{tag(s)}.json"
                cmd = eval_args(run_dir, args.n, s)
                if not (args.reuse and js.is_file()):
                    print("$ lightgen", " ".join(cmd), flush=True)
                    subprocess.run([*exe, *cmd], check=True, cwd=ROOT)
                r = json.loads(js.read_text())
                label = "prior" if s[0] == "prior" else f"expost-gmm {s[2]} K={s[1]}"
                lines.append(
                    f"| {ds} | {model}{args.run_suffix} | {label} | {r['fid']:.1f} | {r['kid_mean']:.2f} ± "
                    f"{r['kid_std']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | "
                    f"{r['nearest_train_l2_median_generated']:.2f} / "
                    f"{r['nearest_train_l2_median_held_out']:.2f} / "
                    f"{r.get('nearest_train_l2_median_reconstructed_held_out', float('nan')):.2f}"
                    f" | {r.get('nearest_rendered_train_l2_median_generated', float('nan')):.2f} / "
                    f"{r.get('nearest_rendered_train_l2_median_held_out', float('nan')):.2f}"
                    f" | {r['reconstruction_fid']:.1f} | "
                    f"`lightgen {' '.join(cmd)}` |"
                )
                print(lines[-1], flush=True)
                if not args.no_figures:
                    name = f"{ds}-{args.preset}-{model}-mixture{args.run_suffix}"
                    name += tag(s) or "-prior"
                    figures(ROOT / run_dir, name, s)
    table = "\n".join(lines)
    (ROOT / "runs" / "results").mkdir(parents=True, exist_ok=True)
    dest = (
        ROOT
        / "runs"
        / "results"
        / f"table-expost-{'-'.join(args.datasets)}-{'-'.join(args.models)}{args.run_suffix}.md"
    )
    dest.write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
