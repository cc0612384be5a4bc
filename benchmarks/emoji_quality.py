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
  width and 2 x the fiber count of every chip given), and of the mean training image;
  with ``--local N:K:R`` also the ceiling of a *local* generator
  (:func:`lightgen.metrics.pca.local_pca_reconstruction`): an N x N fiber array in which
  each fiber may only light a disk of radius R (a fraction of the image width) around its
  place on the camera (``:square``: a square of half-width R), with K real numbers per
  fiber and colour (K = 2: one complex value per wavelength), the best linear model with
  such basis images (``4:2:0.125:square``: one fiber, one tile, as the mosaics of the
  chip's samples; ``1:32:2``: each colour's own PCA with 32 components, the linear ceiling
  of 16 fibers whose wavelengths each light only their colour).

Prints the table and writes it as JSON (``--out``). From the repository root (needs
``../shared/data/emoji-svg`` or ``--data-root``, and the ``svg`` extra)::

    python benchmarks/emoji_quality.py --size 128
    python benchmarks/emoji_quality.py --size 512 --checkpoint runs/emoji512-chip --checkpoint runs/emoji512-vae
    python benchmarks/emoji_quality.py --size 512 --no-judge   # ceilings only
    python benchmarks/emoji_quality.py --size 128 --no-judge --local 4:2:0.125:square 4:2:0.25
    python benchmarks/emoji_quality.py --size 512 --n-ssim 32 --sampler prior expost-class \
        --checkpoint runs/emoji512-chip

Cost at 512 px on 2 shared CPU cores: SSIM (float64) takes ~2-3 s per 512 px image there,
so one PSNR/SSIM row over all 396 held-out images costs ~15 min. ``--n-test N`` scores
the checkpoints' reconstructions and every PCA row on the same seeded, class-stratified
N held-out images (the judge and the generated-image scores still use the whole split;
the PCA fit always uses the whole train split: a ceiling fitted on fewer images would be
lower); ``--n-ssim M`` takes SSIM on M of those only (PSNR costs ~1/40 of SSIM, so
PSNR can stay on all of them). Each checkpoint's reconstructions and its encoder pass over the train split (for
the class-to-component counts) are computed once and shared by all ``--sampler`` values.
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
from lightgen.metrics.pca import (
    lattice_windows,
    local_pca_reconstruction,
    pca_basis,
    pca_project,
)
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


def _ssim_some(rec: torch.Tensor, real: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-image SSIM of the images ``mask`` selects (all if None)."""
    if mask is not None:
        rec, real = rec[mask], real[mask]
    return ssim(rec, real, reduction="none") if len(real) else real.new_zeros(0)


def _scores(
    rec: torch.Tensor, real: torch.Tensor, chunk: int = 32, ssim_mask: torch.Tensor | None = None
) -> dict:
    """Mean per-image PSNR (every image) and SSIM (the images ``ssim_mask`` selects, all if
    None), ``chunk`` images at a time (the metrics work in float64: 396 x 3 x 512 x 512 at
    once would take 2.5 GB per copy)."""
    p, s = [], []
    for i in range(0, len(real), chunk):
        m = None if ssim_mask is None else ssim_mask[i : i + chunk]
        p.append(psnr(rec[i : i + chunk], real[i : i + chunk], reduction="none"))
        s.append(_ssim_some(rec[i : i + chunk], real[i : i + chunk], m))
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


def pca_rows(
    train: torch.Tensor,
    test: torch.Tensor,
    ks: list[int],
    chunk: int = 32,
    ssim_mask: torch.Tensor | None = None,
) -> list[dict]:
    """One fit at the largest ``k``; every smaller ``k`` uses its leading components.
    PSNR on every ``test`` image, SSIM on those ``ssim_mask`` selects (all if None).

    The held-out images are projected ``chunk`` at a time and scored at every ``k`` before
    the next chunk, so no ``(N_test, D)`` reconstruction is held (1.2 GB at 512 px).
    """
    t0 = time.perf_counter()
    mean, comps = pca_basis(train, max(ks))
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    per_k: dict[int, tuple[list, list]] = {k: ([], []) for k in ks}
    for i in range(0, len(test), chunk):
        part = test[i : i + chunk]
        m = None if ssim_mask is None else ssim_mask[i : i + chunk]
        for k in ks:
            rec = pca_project(part, mean, comps[:k])
            per_k[k][0].append(psnr(rec, part, reduction="none"))
            per_k[k][1].append(_ssim_some(rec, part, m))
    score_s = time.perf_counter() - t0
    return [
        {
            "name": "mean training image" if k == 0 else f"PCA k={k}",
            "k": k,
            "psnr_db": torch.cat(per_k[k][0]).mean().item(),
            "ssim": torch.cat(per_k[k][1]).mean().item(),
            "n_test": len(test),
            "n_test_ssim": len(test) if ssim_mask is None else int(ssim_mask.sum()),
            "fit_seconds": fit_s,
            "score_seconds_all_k": score_s,
        }
        for k in ks
    ]


def parse_local(spec: str) -> tuple[int, int, float, str]:
    """``N:K:R[:square]`` of ``--local`` -> (fibers per side, real numbers per fiber and
    colour, window radius over the image width, window shape)."""
    parts = spec.split(":")
    try:
        if len(parts) not in (3, 4) or parts[3:] not in ([], ["square"]):
            raise ValueError
        out = int(parts[0]), int(parts[1]), float(parts[2]), (parts[3:] or ["disk"])[0]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--local {spec!r}: give N:K:R or N:K:R:square, e.g. 4:2:0.25 (4 x 4 fibers, 2 "
            "real numbers per fiber and colour, disks of radius 0.25 of the image width)."
        ) from None
    if out[0] < 1 or out[1] < 1 or not out[2] > 0:
        raise argparse.ArgumentTypeError(f"--local {spec!r}: N and K must be >= 1 and R > 0.")
    return out


def local_rows(
    train: torch.Tensor,
    test: torch.Tensor,
    specs: list[tuple[int, int, float, str]],
    steps: int,
    ssim_mask: torch.Tensor | None = None,
) -> list[dict]:
    """One ceiling row per ``--local`` spec (module doc), PSNR on every ``test`` image,
    SSIM on those ``ssim_mask`` selects."""
    rows = []
    for n, k, r, shape in specs:
        t0 = time.perf_counter()
        windows = lattice_windows(train.shape[-1], n, r, shape)
        rec = local_pca_reconstruction(train, test, windows, k, steps=steps)
        rows.append(
            {
                "name": f"local: {n}x{n} fibers, {shape} radius {r:g}, k={k} per fiber, colour",
                "k": n * n * k * train.shape[1],
                "local": {
                    "n_side": n,
                    "k_per_fiber_colour": k,
                    "radius_fraction": r,
                    "shape": shape,
                },
                "refine_steps": steps,
                "psnr_db": psnr(rec, test, reduction="none").mean().item(),
                "ssim": _ssim_some(rec, test, ssim_mask).mean().item(),
                "n_test": len(test),
                "fit_seconds": time.perf_counter() - t0,
            }
        )
    return rows


def held_out_subset(labels: torch.Tensor, n: int | None, seed: int) -> torch.Tensor | None:
    """Ascending indices of ``n`` held-out images, class-stratified (each class in
    proportion to its share, largest remainders first), drawn with ``seed``; None (all
    images) when ``n`` is None or not below their count."""
    total = len(labels)
    if n is None or n >= total:
        return None
    g = torch.Generator().manual_seed(seed + 31)
    classes = labels.unique()
    exact = [n * int((labels == c).sum()) / total for c in classes]
    take = [int(e) for e in exact]
    for j in sorted(range(len(classes)), key=lambda j: take[j] - exact[j])[: n - sum(take)]:
        take[j] += 1
    picked = []
    for c, m in zip(classes, take, strict=True):
        idx = torch.nonzero(labels == c).flatten()
        picked.append(idx[torch.randperm(len(idx), generator=g)[:m]])
    return torch.cat(picked).sort().values


def checkpoint_rows(
    path: str, train, test, clf, args, test_pixels: torch.Tensor, ssim_mask=None
) -> list[dict]:
    """One row per ``--sampler``: held-out PSNR/SSIM of the reconstructions of
    ``test_pixels`` (computed once), and with a judge the class-controlled (or, without a
    class-selecting prior, unconditional) sample scores of that sampler."""
    from lightgen.train.expost import encode_means
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
    rec = _batched(
        lambda i, b: reconstruct(system, test_pixels[i : i + b]).cpu(), len(test_pixels), batch
    )
    row.update(_scores(rec, test_pixels, ssim_mask=ssim_mask))
    row["n_test"] = len(test_pixels)
    row["n_test_ssim"] = len(test_pixels) if ssim_mask is None else int(ssim_mask.sum())
    row["recon_seconds"] = time.perf_counter() - t0
    del rec
    if clf is None:
        row["seconds"] = time.perf_counter() - t0
        return [row]
    class_selected = has_label_components(cfg) or is_class_conditioned(system, cfg)
    shared: dict = {}
    if class_selected and not is_class_conditioned(system, cfg):
        # one encoder pass over the train split: the class-to-component counts of every
        # sampler and, when the benchmark's split is the run's own, the expost-class fit
        t1 = time.perf_counter()
        means = encode_means(system, train.images, batch)
        dev = next(system.prior.parameters(), torch.empty(0)).device
        shared["train_components"] = system.prior.responsibilities(means.to(dev)).argmax(1).cpu()
        same_split = (
            cfg.dataset == DATASET
            and cfg.train_limit is None
            and not cfg.dataset_options()
            and not args.groups
            and not args.families
            and cfg.data_root == args.data_root
        )
        if same_split:
            shared.update(train=train, means=means)
        row["encode_train_seconds"] = time.perf_counter() - t1
    rows = []
    # without a class-selecting prior the samples are unconditional: one row
    for sampler_name in args.sampler if class_selected else ["prior"]:
        rows.append(
            _sample_row(
                dict(row, name=f"{row['name']} ({sampler_name})"),
                sampler_name,
                path,
                system,
                cfg,
                train,
                test,
                clf,
                args,
                batch,
                class_selected,
                shared,
            )
        )
        rows[-1]["seconds"] = time.perf_counter() - t0
    return rows


def _sample_row(
    row, sampler_name, path, system, cfg, train, test, clf, args, batch, class_selected, shared
) -> dict:
    t0 = time.perf_counter()
    if class_selected:
        # expost-class: one Gaussian per class of the encoded training latents, fitted once
        # and saved with the checkpoint; the labels only select which Gaussian drives the fibers
        sampler, record = resolve_sampler(
            path, system, cfg, sampler_name, train=shared.get("train"), means=shared.get("means")
        )
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
            train_components=shared.get("train_components"),
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
    row["sample_seconds"] = time.perf_counter() - t0
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
                if report["n_test_pixel_metrics"] == report["n_test"]
                else f"; PSNR/SSIM on {report['n_test_pixel_metrics']} of the test images"
            )
            + (
                ""
                if report["n_test_ssim"] == report["n_test_pixel_metrics"]
                else f"; SSIM on {report['n_test_ssim']} of them"
            )
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
        "--n-test",
        type=int,
        default=None,
        help="score reconstructions and PCA rows on this many held-out images (seeded, "
        "class-stratified; default all); the judge and the samples use the whole split",
    )
    parser.add_argument(
        "--n-ssim",
        type=int,
        default=None,
        help="SSIM on this many of those (seeded, class-stratified; default all): at 512 px "
        "SSIM costs ~40x PSNR",
    )
    parser.add_argument(
        "--no-pca",
        action="store_true",
        help="skip the ceilings (e.g. printed by an earlier run with the same --n-test, "
        "--n-ssim and --seed, which pick the same images)",
    )
    parser.add_argument(
        "--sampler",
        choices=("prior", "expost-class"),
        nargs="+",
        default=["prior"],
        help="class-controlled samples from the trained prior's components, or from one "
        "Gaussian per class fitted to the encoded training latents (labels select it); "
        "several: one row each, the reconstructions computed once",
    )
    parser.add_argument(
        "--local",
        type=parse_local,
        nargs="+",
        default=[],
        metavar="N:K:R",
        help="local-generator ceilings (module doc): N x N fibers, K real numbers per fiber "
        "and colour, each fiber's light within radius R of the image width",
    )
    parser.add_argument(
        "--local-steps",
        type=int,
        default=100,
        help="alternating least-squares rounds that fit overlapping local windows jointly "
        "(0: each window's own PCA)",
    )
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON (default runs/emoji-quality-<size>.json)")
    args = parser.parse_args(argv)
    for name in ("n_test", "n_ssim"):
        v = getattr(args, name)
        if v is not None and v < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive count of images, got {v}.")

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
    subset = held_out_subset(test.labels, args.n_test, args.seed)
    test_pixels = test.images if subset is None else test.images[subset]
    test_labels = test.labels if subset is None else test.labels[subset]
    ssim_subset = held_out_subset(test_labels, args.n_ssim, args.seed)
    ssim_mask = None
    if ssim_subset is not None:
        ssim_mask = torch.zeros(len(test_pixels), dtype=torch.bool)
        ssim_mask[ssim_subset] = True
    report["n_test_pixel_metrics"] = len(test_pixels)
    report["n_test_ssim"] = len(test_pixels) if ssim_mask is None else len(ssim_subset)
    report["test_subset"] = None if subset is None else subset.tolist()
    report["ssim_subset_of_it"] = None if ssim_subset is None else ssim_subset.tolist()
    ks = set(args.pca_k) | {0}
    for ck in args.checkpoint:
        rows = checkpoint_rows(ck, train, test, clf, args, test_pixels, ssim_mask)
        report["checkpoints"].extend(rows)
        if rows[0]["model"] != "vae":
            ks |= {rows[0]["latent_real_width"], 2 * rows[0]["n_fibers"]}
    if not args.no_pca:
        report["ceilings"] = pca_rows(train.images, test_pixels, sorted(ks), ssim_mask=ssim_mask)
    report["ceilings"] += local_rows(
        train.images, test_pixels, args.local, args.local_steps, ssim_mask=ssim_mask
    )
    print_table(report)
    out = Path(args.out or f"runs/emoji-quality-{args.size}.json")
    atomic_write_text(out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
