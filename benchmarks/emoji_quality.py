"""Judges colour cannot fool, and ceilings, on the held-out emoji families (issue 15 §2).

One table, all on the same held-out split of ``emoji-svg`` (held out by emoji key, so no
emoji drawn by another family leaks across; default groups smileys-emotion,
animals-nature, food-drink, travel-places, the three families pooled):

* **shape judge**: the SmallCNN trained with colour randomisation (``augment="colour"``:
  hue rotation, channel permutation, random grey) at ``--judge-size`` px; its accuracy on
  held-out real images, on the same images recoloured at random (should barely drop),
  and on them cut into 4 x 4 tiles put back at random (shape destroyed: should fall to
  chance = 1/classes);
* each ``--checkpoint`` (chips or the digital ``vae`` at the same latent width): held-out
  reconstruction PSNR/SSIM at ``--size``; with a class-selecting prior
  (``--condition-on components`` or ``labels``) the per-class generated accuracy under the
  shape judge, its ratio to the real accuracy, the shuffled-tile control of the generated
  images and FID/KID in the judge's features
  (:func:`lightgen.tasks.evaluate.class_conditional_scores`); otherwise FID/KID of
  unconditional samples;
* **ceilings**: held-out PSNR/SSIM of PCA fitted on the train split with ``k`` components
  (:func:`lightgen.metrics.pca.pca_reconstruction`; ``k`` = ``--pca-k`` plus 2 x the latent
  width and 2 x the fiber count of every chip given), and of the mean training image.

Prints the table and writes it as JSON (``--out``). From the repository root (needs
``../shared/data/emoji-svg`` or ``--data-root``, and the ``svg`` extra)::

    python benchmarks/emoji_quality.py --size 128
    python benchmarks/emoji_quality.py --size 512 --checkpoint runs/emoji512-chip --checkpoint runs/emoji512-vae
    python benchmarks/emoji_quality.py --size 512 --no-judge   # ceilings only
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from lightgen.data.registry import load_dataset
from lightgen.metrics.classifier import colour_randomised, load_or_train_classifier, predict
from lightgen.metrics.fid import generative_scores
from lightgen.metrics.image import psnr, ssim
from lightgen.metrics.pca import pca_basis, pca_project
from lightgen.tasks.evaluate import (
    NULL_BLOCKS,
    block_shuffled,
    class_conditional_scores,
    for_classifier,
    has_label_components,
    is_class_conditioned,
)
from lightgen.tasks.generate import reconstruct, sample
from lightgen.tasks.images import atomic_write_text
from lightgen.train.expost import resolve_sampler

DEFAULT_PCA_K = (32, 96, 200, 600)
DATASET = "emoji-svg"


def _batched(fn, n: int, batch: int) -> torch.Tensor:
    return torch.cat([fn(i, min(batch, n - i)) for i in range(0, n, batch)])


def _scores(rec: torch.Tensor, real: torch.Tensor, chunk: int = 32) -> dict:
    """Mean per-image PSNR and SSIM, ``chunk`` images at a time (the metrics work in
    float64: 396 x 3 x 512 x 512 at once would take 2.5 GB per copy)."""
    p, s = [], []
    for i in range(0, len(real), chunk):
        p.append(psnr(rec[i : i + chunk], real[i : i + chunk], reduction="none"))
        s.append(ssim(rec[i : i + chunk], real[i : i + chunk], reduction="none"))
    return {"psnr_db": torch.cat(p).mean().item(), "ssim": torch.cat(s).mean().item()}


def _accuracy(clf, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict(clf, images) == labels).float().mean())


def judge_rows(clf, test_small: torch.Tensor, labels: torch.Tensor, seed: int) -> dict:
    """The shape judge's accuracy on held-out real images and its two controls."""
    recoloured = colour_randomised(test_small, torch.Generator().manual_seed(seed + 101))
    tiles = block_shuffled(test_small, NULL_BLOCKS, torch.Generator().manual_seed(seed + 7))
    return {
        "accuracy_real_test": _accuracy(clf, test_small, labels),
        "accuracy_real_test_colour_randomised": _accuracy(clf, recoloured, labels),
        "accuracy_real_test_block_shuffled": _accuracy(clf, tiles, labels),
    }


def pca_rows(train: torch.Tensor, test: torch.Tensor, ks: list[int]) -> list[dict]:
    """One fit at the largest ``k``; every smaller ``k`` uses its leading components."""
    t0 = time.perf_counter()
    mean, comps = pca_basis(train, max(ks))
    fit_s = time.perf_counter() - t0
    rows = []
    for k in ks:
        rec = pca_project(test, mean, comps[:k])
        rows.append(
            {
                "name": "mean training image" if k == 0 else f"PCA k={k}",
                "k": k,
                **_scores(rec, test),
                "fit_seconds": fit_s,
            }
        )
        del rec
    return rows


def checkpoint_row(path: str, train, test, clf, args) -> dict:
    from lightgen.train.trainer import load_trained

    system, cfg = load_trained(path)
    size = cfg.chip_config().image_size
    if size != args.size:
        raise ValueError(
            f"checkpoint {path!r} makes {size} px images but --size is {args.size}; run the "
            f"benchmark with --size {size}."
        )
    if not cfg.dataset.startswith(DATASET):
        print(f"note: {path} was trained on {cfg.dataset!r}; scored on {DATASET} here")
    chip = cfg.chip_config()
    row: dict = {
        "name": f"{cfg.model} {Path(path).name}",
        "checkpoint": str(path),
        "model": cfg.model,
        "preset": cfg.preset,
        "latent_real_width": 2 * chip.latent_dim,
        "n_fibers": chip.n_fibers,
        "condition_on": cfg.condition_on,
    }
    batch = 16 if size > 128 else 64
    t0 = time.perf_counter()
    rec = _batched(lambda i, b: reconstruct(system, test.images[i : i + b]).cpu(), len(test), batch)
    row.update(_scores(rec, test.images))
    del rec
    if clf is None:
        return row
    if has_label_components(cfg) or is_class_conditioned(system, cfg):
        # expost-class: one Gaussian per class of the encoded training latents, fitted once
        # and saved with the checkpoint; the labels only select which Gaussian drives the fibers
        sampler, record = resolve_sampler(path, system, cfg, args.sampler)
        row["sampler"] = record
        cc = class_conditional_scores(
            system,
            cfg,
            train,
            test,
            clf,
            n_per_class=args.n_per_class,
            seed=args.seed,
            sampler=sampler,
        )
        row["accuracy_generated_mean"] = cc["accuracy_generated_mean"]
        row["ratio_generated_to_real"] = cc["ratio_generated_to_real"]
        row["accuracy_generated_block_shuffled_mean"] = cc["accuracy_generated_block_shuffled_mean"]
        row["per_class"] = [
            {
                k: r[k]
                for k in (
                    "class",
                    "accuracy_generated",
                    "accuracy_real_test",
                    "accuracy_generated_block_shuffled",
                    "accuracy_real_test_block_shuffled",
                )
            }
            for r in cc["classes"]
        ]
        row.update({k: cc[k] for k in ("fid", "kid_mean") if k in cc})
    else:
        n = min(len(test), args.n_per_class * test.n_classes)
        fake = _batched(lambda i, b: sample(system, b, seed=args.seed + 1 + i)[0].cpu(), n, batch)
        real = for_classifier(test.images[:n], clf)
        scores = generative_scores(
            real, for_classifier(fake, clf), clf, kid_subset_size=max(2, n // 2), seed=args.seed
        )
        row.update({k: scores[k] for k in ("fid", "kid_mean") if k in scores})
    row["seconds"] = time.perf_counter() - t0
    return row


def _fmt(v, pct: bool = False, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f} %" if pct else f"{v:.{digits}f}"


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=(
            f"emoji-svg held-out split at {report['size']} px: {report['n_train']} train / "
            f"{report['n_test']} test, {len(report['classes'])} classes (chance "
            f"{100 / len(report['classes']):.0f} %)"
            + (
                ""
                if report["judge_size"] is None
                else f"; shape judge at {report['judge_size']} px"
            )
        )
    )
    for col in (
        "row",
        "recon PSNR dB",
        "recon SSIM",
        "judge acc.",
        "gen. acc.",
        "ratio gen/real",
        "gen. shuffled tiles",
        "FID (judge)",
        "KID (judge)",
    ):
        t.add_column(col, justify="left" if col == "row" else "right")
    j = report.get("judge")
    if j is not None:
        t.add_row("shape judge: held-out real", "", "", _fmt(j["accuracy_real_test"], True))
        t.add_row(
            "  ... colours randomised",
            "",
            "",
            _fmt(j["accuracy_real_test_colour_randomised"], True),
        )
        t.add_row(
            f"  ... {NULL_BLOCKS}x{NULL_BLOCKS} tiles shuffled",
            "",
            "",
            _fmt(j["accuracy_real_test_block_shuffled"], True),
        )
    for r in report["checkpoints"]:
        t.add_row(
            r["name"],
            _fmt(r.get("psnr_db")),
            _fmt(r.get("ssim"), digits=3),
            "",
            _fmt(r.get("accuracy_generated_mean"), True),
            _fmt(r.get("ratio_generated_to_real")),
            _fmt(r.get("accuracy_generated_block_shuffled_mean"), True),
            _fmt(r.get("fid"), digits=1),
            _fmt(r.get("kid_mean"), digits=3),
        )
    for r in report["ceilings"]:
        t.add_row(r["name"], _fmt(r["psnr_db"]), _fmt(r["ssim"], digits=3))
    Console(width=160).print(t)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image side (64, 128, 256, 512)")
    parser.add_argument("--checkpoint", action="append", default=[], help="run folder; repeat")
    parser.add_argument("--judge-size", type=int, default=64, help="shape judge's input side")
    parser.add_argument("--judge-epochs", type=int, default=10)
    parser.add_argument("--judge-batch", type=int, default=32)
    parser.add_argument("--no-judge", action="store_true", help="ceilings (and PSNR) only")
    parser.add_argument(
        "--pca-k", type=int, nargs="*", default=list(DEFAULT_PCA_K), help="PCA widths"
    )
    parser.add_argument("--groups", default=None, help="comma-separated CLDR groups")
    parser.add_argument("--families", default=None, help="comma-separated families")
    parser.add_argument("--n-per-class", type=int, default=64)
    parser.add_argument(
        "--sampler",
        choices=("prior", "expost-class"),
        default="prior",
        help="class-controlled samples from the trained prior's components, or from one "
        "Gaussian per class fitted to the encoded training latents (labels select it)",
    )
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON (default runs/emoji-quality-<size>.json)")
    args = parser.parse_args(argv)

    opts = {k: v for k, v in dict(groups=args.groups, families=args.families).items() if v}

    def load(split: str, size: int):
        return load_dataset(DATASET, root=args.data_root, split=split, size=size, **opts)

    t0 = time.perf_counter()
    train, test = load("train", args.size), load("test", args.size)
    load_s = time.perf_counter() - t0
    report: dict = {
        "dataset": DATASET,
        "options": opts,
        "size": args.size,
        "n_train": len(train),
        "n_test": len(test),
        "classes": list(train.class_names),
        "judge_size": None if args.no_judge else args.judge_size,
        "load_seconds": load_s,
        "checkpoints": [],
        "ceilings": [],
    }
    clf = None
    if not args.no_judge:
        t0 = time.perf_counter()
        jtrain, jtest = load("train", args.judge_size), load("test", args.judge_size)
        clf, _ = load_or_train_classifier(
            DATASET,
            jtrain,
            epochs=args.judge_epochs,
            seed=args.seed,
            augment="colour",
            batch_size=args.judge_batch,
            test_dataset=jtest,  # train on the whole train split; scored below anyway
        )
        report["judge"] = {
            "network": clf.description,
            "augment": "colour",
            "epochs": args.judge_epochs,
            "batch_size": args.judge_batch,
            "chance": 1 / train.n_classes,
            **judge_rows(clf, jtest.images, jtest.labels, args.seed),
            "seconds": time.perf_counter() - t0,
        }
    ks = set(args.pca_k) | {0}
    for ck in args.checkpoint:
        row = checkpoint_row(ck, train, test, clf, args)
        report["checkpoints"].append(row)
        if row["model"] != "vae":
            ks |= {row["latent_real_width"], 2 * row["n_fibers"]}
    report["ceilings"] = pca_rows(train.images, test.images, sorted(ks))
    print_table(report)
    out = Path(args.out or f"runs/emoji-quality-{args.size}.json")
    atomic_write_text(out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
