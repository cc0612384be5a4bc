"""A digital ceiling for per-class emoji generation: a convolutional VAE, same data and prior.

Issue 4 §1 asks for per-class emoji samples the real-image judge recognises (ratio >= 0.8),
and docs/tasks.md records that the chips reach the ratio but not samples a *person*
recognises for animal, food and plant. Is that the optics, or is it what a VAE with a
per-class Gaussian prior can learn from 273 training images (26 of them plants)? This
script trains a **digital** convolutional VAE (not a chip, not the project's
parameter-matched MLP baseline; a capable model) on the same split, with the same
reconstruction weight (sigma_x), KL weight (beta), latent width in real numbers (2 x the
chip's complex fibers, 32 for 16 fibers) and label-selected components (class c's KL
against component c: N(m_c, I), learnable means). It then samples each class's
component at T = 1 and scores the samples with the same cached SmallCNN judge that
``lightgen eval`` and ``benchmarks/judges.py`` use (plain, at 64 px).

Prints one line per run (ratio, per-class generated/real accuracy in %, held-out
reconstruction PSNR) and writes ``samples.png`` (one row of 8 samples per class) and
``ceiling.json`` to ``--out``. Needs ``../shared/data/noto-emoji-512`` (or
``--data-root``). From the repository root::

    python benchmarks/emoji_digital_ceiling.py --out runs/ceiling/emoji-64-convvae

About 5 minutes for 3,000 steps at 64 px on one core (316 s here beside other jobs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch
from torch import nn

from lightgen.data.registry import load_dataset
from lightgen.metrics.classifier import load_or_train_classifier, predict
from lightgen.metrics.image import psnr
from lightgen.tasks.evaluate import classifier_epochs, for_classifier
from lightgen.tasks.images import atomic_write_text, image_grid, save_png

CLASSIFIER_SIZE = 64


class ConvVAE(nn.Module):
    """Four stride-2 convolutions (32-64-128-256 channels) down to 4 x 4, a linear map to
    the posterior (mean, log variance), and the mirror image up, with a sigmoid output."""

    def __init__(self, size: int, latent: int, n_classes: int, channels: int = 3):
        super().__init__()
        if size % 16 or size < 32:
            raise ValueError(f"size={size} must be a multiple of 16 and >= 32, e.g. 64.")
        widths = [channels, 32, 64, 128, 256]
        down, up = [], []
        for a, b in itertools.pairwise(widths):
            down += [nn.Conv2d(a, b, 4, 2, 1), nn.ReLU()]
        for a, b in itertools.pairwise(widths[::-1]):
            up += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU()]
        up[-1] = nn.Sigmoid()
        self.side = size // 16
        flat = 256 * self.side**2
        self.enc = nn.Sequential(*down, nn.Flatten(), nn.Linear(flat, 2 * latent))
        self.fc = nn.Linear(latent, flat)
        self.dec = nn.Sequential(*up)
        self.means = nn.Parameter(torch.randn(n_classes, latent))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.enc(x).chunk(2, dim=1)
        return mu, log_var.clamp(-12, 6)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(self.fc(z).view(-1, 256, self.side, self.side))

    def kl(self, mu, log_var, labels) -> torch.Tensor:
        """KL(N(mu, exp(log_var)) || N(m_label, I)) per image."""
        d = mu - self.means[labels]
        return 0.5 * (log_var.exp() + d.pow(2) - 1 - log_var).sum(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--dataset", default="emoji-black")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--latent", type=int, default=32, help="real dims (2 x complex fibers)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--sigma-x", type=float, default=0.25)
    parser.add_argument("--n-per-class", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()

    def load(split: str, size: int):
        return load_dataset(
            args.dataset, root=args.data_root, split=split, size=size, seed=args.seed
        )

    train, test = load("train", args.size), load("test", args.size)
    torch.manual_seed(args.seed)
    model = ConvVAE(args.size, args.latent, train.n_classes, train.images.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for step in range(args.steps):
        idx = torch.randint(0, train.images.shape[0], (args.batch_size,), generator=gen)
        x = train.images[idx]
        mu, log_var = model.posterior(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=gen)
        recon = (model.decode(z) - x).pow(2).flatten(1).sum(1) / (2 * args.sigma_x**2)
        loss = (recon + args.beta * model.kl(mu, log_var, train.labels[idx])).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.1f}", flush=True)
    train_s = time.perf_counter() - t0

    model.eval()
    with torch.no_grad():
        rec_psnr = float(psnr(model.decode(model.posterior(test.images)[0]), test.images))
        clf_train = load("train", CLASSIFIER_SIZE)
        clf, _ = load_or_train_classifier(
            args.dataset, clf_train, epochs=classifier_epochs(len(clf_train)), progress=False
        )
        real_pred = predict(clf, for_classifier(test.images, clf))
        sample_gen = torch.Generator().manual_seed(args.seed + 2000)
        classes, rows = [], []
        for c in range(train.n_classes):
            z = model.means[c] + torch.randn(args.n_per_class, args.latent, generator=sample_gen)
            imgs = model.decode(z)
            pred = predict(clf, for_classifier(imgs, clf))
            mask = test.labels == c
            classes.append(
                {
                    "class": train.class_names[c],
                    "accuracy_generated": float((pred == c).float().mean()),
                    "accuracy_real_test": float((real_pred[mask] == c).float().mean()),
                }
            )
            rows.append(imgs[:8])
    gen_mean = sum(r["accuracy_generated"] for r in classes) / len(classes)
    real_mean = sum(r["accuracy_real_test"] for r in classes) / len(classes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_png(out / "samples.png", image_grid(torch.cat(rows), 8))
    report = {
        "what": "digital convolutional VAE (NOT a chip), label-selected components, T = 1",
        "args": vars(args),
        "train_seconds": round(train_s, 1),
        "reconstruction_psnr_db_test": rec_psnr,
        "classes": classes,
        "ratio_generated_to_real": gen_mean / real_mean if real_mean > 0 else float("nan"),
        "samples_png_rows": train.class_names,
    }
    atomic_write_text(out / "ceiling.json", json.dumps(report, indent=1) + "\n")
    per_class = " ".join(
        f"{r['class']}={100 * r['accuracy_generated']:.0f}/{100 * r['accuracy_real_test']:.0f}"
        for r in classes
    )
    print(
        f"convvae size={args.size} latent={args.latent} ratio={report['ratio_generated_to_real']:.2f} "
        f"recon_psnr={rec_psnr:.2f} class=gen/real%: {per_class} ({train_s:.0f} s)"
    )


if __name__ == "__main__":
    main()
