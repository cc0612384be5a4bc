"""A digital ceiling for issue 16 at the chip's latent width: PCA codes sampled ex post.

The chip with a reference fiber renders a mean image plus a linear and a quadratic term of
its fiber values (the camera reads ``|r h_0 + sum_k z_k h_k|^2``; the quadratic term is not
small: ``decoder_ceiling.py --terms-of``), and its best sampler is an ex-post Gaussian
mixture fitted to the encoded training set. The digital model of that recipe at equal latent width is PCA: ``k`` real
components (``2 x`` fibers: 32 for 16 complex fibers) fitted to the training split, the
same ex-post mixture (:func:`lightgen.train.expost.fit_gmm`, K components, full
covariance) fitted to the training images' PCA codes, samples decoded by the PCA basis
and clipped to [0, 1]. It is scored exactly as ``lightgen eval`` scores a chip: the same
held-out split, SmallCNN judge and sample count (:func:`evaluate_generated`), plus the
PCA reconstructions of the held-out images (the "reconstruction FID" column) and the
nearest-training-image copying rule (:func:`copying_control`).

Not a bound on the chip (the chip's rendering is quadratic, not linear; a nonlinear
digital decoder does better), but what the best linear decoder of the same width earns
with the same sampler: a reference the chip's rows can be read against.

From the repository root (a few minutes per data set alone; 25 min for both beside two
training jobs)::

    python benchmarks/pca_expost.py --dataset mnist --dataset fashion-mnist --out runs/pca-expost.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lightgen.data.registry import load_dataset
from lightgen.metrics.copying import copying_control
from lightgen.metrics.image import psnr
from lightgen.metrics.pca import pca_basis, pca_project
from lightgen.tasks.evaluate import evaluate_generated
from lightgen.tasks.images import atomic_write_text, image_grid, save_png
from lightgen.train.expost import fit_gmm


def pca_expost(
    dataset: str,
    components: int,
    gmm_components: int,
    n: int,
    data_root: str | None,
    seed: int = 0,
    figure: Path | None = None,
) -> dict:
    train = load_dataset(dataset, root=data_root, split="train", size=28, seed=seed).images
    test = load_dataset(dataset, root=data_root, split="test", size=28, seed=seed).images[:n]
    mean, basis = pca_basis(train, components)
    codes = (train.flatten(1) - mean) @ basis.T
    gmm, report = fit_gmm(codes.double(), gmm_components, "full", seed=seed)
    g = torch.Generator().manual_seed(seed)
    drawn = gmm.sample(n, g).float()
    samples = (drawn @ basis + mean).clamp(0, 1).reshape(n, *train.shape[1:])
    recon = pca_project(test, mean, basis)
    if figure is not None:
        save_png(figure, image_grid(samples[:64], 8, upscale=2))
    return {
        "dataset": dataset,
        "model": f"digital: PCA-{components} + ex-post GMM K={gmm_components} full",
        "pca_components": components,
        "gmm_components": gmm_components,
        "gmm_mean_log_likelihood": float(report.log_likelihood),
        "n_train": int(train.shape[0]),
        **score(samples, recon, test, train, dataset, n, seed, data_root),
    }


def score(
    samples: torch.Tensor,
    recon: torch.Tensor,
    test: torch.Tensor,
    train: torch.Tensor,
    dataset: str,
    n: int,
    seed: int,
    data_root: str | None,
) -> dict:
    """The columns of docs/results.md's ex-post tables for ``samples`` and the held-out
    reconstructions ``recon`` of ``test``: FID, KID, precision/recall (SmallCNN judge,
    ``lightgen eval``'s split), reconstruction PSNR and FID, and the copying control."""
    scores = evaluate_generated(samples, dataset, n=n, seed=seed, data_root=data_root)
    rscores = evaluate_generated(recon, dataset, n=n, seed=seed, data_root=data_root)
    return {
        **{k: scores[k] for k in ("fid", "kid_mean", "kid_std", "precision", "recall")},
        "reconstruction_psnr_db": psnr(recon, test).item(),
        "reconstruction_fid": rscores["fid"],
        "reconstruction_recall": rscores["recall"],
        **copying_control(samples, test, train, reconstructed_held_out=recon),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", action="append", default=None)
    ap.add_argument("--components", type=int, default=32, help="PCA components (2 x fibers)")
    ap.add_argument("--gmm-components", type=int, default=100)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", type=Path, required=True, help="JSON file (PNG grids beside it)")
    a = ap.parse_args()
    rows = []
    for name in a.dataset or ["mnist", "fashion-mnist"]:
        fig = a.out.with_name(f"{a.out.stem}-{name}-samples.png")
        row = pca_expost(name, a.components, a.gmm_components, a.n, a.data_root, figure=fig)
        rows.append(row)
        print(
            f"{name}: FID {row['fid']:.1f}  KID {row['kid_mean']:.2f}  precision "
            f"{row['precision']:.3f}  recall {row['recall']:.3f}  recon PSNR "
            f"{row['reconstruction_psnr_db']:.2f} dB  recon FID {row['reconstruction_fid']:.1f}  "
            f"nearest-train ratio {row['nearest_train_l2_ratio']:.3f}"
        )
    atomic_write_text(a.out, json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
