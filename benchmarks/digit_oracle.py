"""Handwriting -> print: references that are not BOGT, and one unpaired training term.

The BOGT chips of docs/tasks.md ("Handwriting -> print") never see a handwriting/print
pair, and none of them both prints and keeps the digit. Is that the training method or
the hardware? This script answers it with references that are **not BOGT and not
transfer methods**: the same chip (preset ``mnist-16f``, same optics, loss and prior,
label components) trained with camera targets given per real MNIST training digit
(``Trainer(..., targets=...)``, the mechanism the multi-view task uses for cross-view
targets). Five kinds:

* ``--targets glyph`` (default): the un-jittered printed glyph of each digit's label, the
  most a chip of this kind can be told (the *paired reference*);
* ``--targets class-matched``: a random printed-digits training image of the same label
  (labels only, no image paired with another);
* ``--targets nearest-same-class``: the best-correlated (Pearson, over pixels)
  printed-digits training image of the same label (labels, pairs mined, not given);
* ``--targets nearest``: the best-correlated printed-digits training image of *any* label,
  with an unsupervised mixture prior: pseudo-pairs that use no label anywhere;
* ``--align-from RUN``: a BOGT chip trained on printed digits with label components keeps
  its generators, prior and posterior variance; only its encoder (and laser gain) is
  re-trained on MNIST to minimise each digit's KL against its label's component (no
  camera image in the loss). Writes ``aligned.safetensors`` (the whole system's weights).

And one candidate *method* that uses no image pairs (:func:`mmd_finetune`):

* ``--mmd-from RUN``: a two-domain BOGT chip continues its own BOGT training plus an
  unpaired maximum-mean-discrepancy term that asks the print generator's outputs for
  handwriting to look like the *set* of printed digits (``--mmd-labels``: per class).
  Training-only; the chip stays all-optical. Writes ``mmd.safetensors``.

Each run then scores 512 MNIST test digits exactly as ``lightgen style-digits`` does for
its ``global`` row: PSNR, SSIM and the Gram style loss against the glyph
(``RandomFeatureNet``), the glyph match (:func:`lightgen.tasks.style.glyph_match`) and the
MNIST SmallCNN's accuracy. It prints one line and writes ``oracle.json`` and
``digits.png`` (rows: handwritten input, chip, printed glyph; the first 12 test digits)
into the run folder. ``--resume`` continues a run, or only re-scores a finished one; a
run records its targets in ``targets.json``, and continuing it with others is refused.
Needs ``../shared/data/mnist`` (or ``--data-root``). From the repository root::

    python benchmarks/digit_oracle.py --out runs/style/oracle-16f-cp --servo
    python benchmarks/digit_oracle.py --targets class-matched --servo --out runs/style/classmatched-16f-cp
    python benchmarks/digit_oracle.py --align-from runs/style/printed-mnist-16f-comp --steps 1500 \
        --out runs/style/align-16f-comp

About 7 minutes per 3,000 steps on one core of this 2-core CPU (``OMP_NUM_THREADS=1``);
the alignment about 1 minute; the MMD term about 11 minutes per 1,500 steps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from lightgen.data.registry import load_dataset
from lightgen.export._atomic import atomic_write, atomic_write_text
from lightgen.metrics.classifier import _gaussian_blur, predict
from lightgen.tasks.style import (
    DIGIT_SIZE,
    RandomFeatureNet,
    _reconstruct,
    _save_rows,
    glyph_match,
    image_scores,
    load_handwriting,
    mnist_classifier,
    pearson,
    printed_targets,
)
from lightgen.train.config import TrainConfig
from lightgen.train.data import train_split, with_source_domain
from lightgen.train.trainer import Trainer, load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--n-fibers", type=int, default=None, help="default: the preset's 16")
    parser.add_argument("--servo", action="store_true", help="input_power_control=constant-power")
    parser.add_argument(
        "--targets",
        choices=["glyph", "class-matched", "nearest-same-class", "nearest"],
        default="glyph",
        help="glyph: the un-jittered printed glyph of each digit's label (paired reference); "
        "class-matched: a random printed-digits training image of the same label (labels only); "
        "nearest-same-class: the best-correlated one of the same label; nearest: the "
        "best-correlated printed-digits training image of any label (no labels at all: "
        "pseudo-pairs, unsupervised mixture instead of label components)",
    )
    parser.add_argument(
        "--pairs-from",
        default=None,
        help="with --targets nearest*: match each digit's image through this run's chip "
        "(its camera image, not the handwriting, is compared with the prints): self-training",
    )
    parser.add_argument(
        "--pairs-only",
        action="store_true",
        help="print how often the targets have the digit's own class, and stop (no training)",
    )
    parser.add_argument("--n-eval", type=int, default=512)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--align-from",
        default=None,
        help="run folder of a chip trained with label components on printed digits: "
        "instead of the paired reference, re-train only its encoder (see the module doc)",
    )
    parser.add_argument(
        "--mmd-from",
        default=None,
        help="run folder of a two-domain chip (routing='domain', printed digits + MNIST): "
        "continue its BOGT training with the unpaired MMD term (see the module doc)",
    )
    parser.add_argument(
        "--mmd-weight", type=float, default=0.01, help="lambda of the MMD term (module doc)"
    )
    parser.add_argument(
        "--mmd-labels",
        action="store_true",
        help="match each class's outputs to that class's prints (else: all outputs to all prints)",
    )
    parser.add_argument(
        "--mmd-per-class", type=int, default=8, help="images of each class on each side (x 10)"
    )
    parser.add_argument(
        "--mmd-blur-px",
        type=float,
        default=0.0,
        help="Gaussian blur (sigma, pixels) of both sets before the MMD; 0: none",
    )
    parser.add_argument("--lr", type=float, default=None, help="default: the run's own")
    args = parser.parse_args()
    if args.align_from is not None:
        align(args)
        return
    if args.mmd_from is not None:
        mmd_finetune(args)
        return

    chip: dict = {}
    if args.n_fibers is not None:
        chip["n_fibers"] = args.n_fibers
    if args.servo:
        chip["input_power_control"] = "constant-power"
    cfg = TrainConfig(
        preset="mnist-16f",
        chip=chip,
        dataset="mnist",
        data_root=args.data_root,
        steps=args.steps,
        batch_size=32,
        lr=0.02,
        beta=args.beta,
        prior="mixture",
        n_components=10,
        sigma_x=0.25,
        condition_on="none" if args.targets == "nearest" else "components",
    )
    train = load_dataset("mnist", root=args.data_root, split="train", size=DIGIT_SIZE)
    if args.pairs_from is not None and not args.targets.startswith("nearest"):
        raise SystemExit("--pairs-from needs --targets nearest or nearest-same-class.")
    match = train.images
    if args.pairs_from is not None:
        match = _reconstruct(load_trained(args.pairs_from)[0], train.images)
    targets, target_labels = make_targets(args.targets, train.labels, cfg.seed, match)
    # labels read only to report how often a target has the digit's own class
    pair_agreement = float((target_labels == train.labels).float().mean())
    if args.pairs_only:
        print(
            f"targets={args.targets} pairs_from={args.pairs_from} label_agreement={pair_agreement:.4f}"
        )
        return
    _check_same_targets(Path(args.out), {"targets": args.targets, "pairs_from": args.pairs_from})
    t0 = time.perf_counter()
    Trainer(
        cfg,
        args.out,
        train.images,
        resume=args.resume,
        labels=None if args.targets == "nearest" else train.labels,
        targets=targets,
    ).run()
    train_s = time.perf_counter() - t0

    system, _ = load_trained(args.out)
    report = evaluate(system, args.data_root, args.n_eval)
    report = {
        "what": WHAT[args.targets],
        "config": cfg.model_dump(mode="json"),
        "train_seconds_this_call": round(train_s, 1),
        "pairs_from": args.pairs_from,
        "target_label_agreement": pair_agreement,
        **report,
    }
    finish(
        args,
        report,
        f"targets={args.targets} fibers={system.model.latent_dim} beta={args.beta} servo={args.servo}",
    )


def _check_same_targets(out: Path, kind: dict) -> None:
    """Record which targets a run trains on; a run continued with others is refused (the
    Trainer checks its config on resume, but the targets are not part of it)."""
    path = out / "targets.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != kind:
            raise SystemExit(
                f"{out} was trained with targets {saved}, not {kind}; pass the same --targets "
                "and --pairs-from, or choose a new --out folder."
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(kind) + "\n")


WHAT = {
    "glyph": "paired-target reference (NOT BOGT): camera scored against the printed glyph "
    "of each MNIST training digit's label",
    "class-matched": "class-matched targets (labels only, no image pairs; NOT BOGT): camera "
    "scored against a random printed-digits training image of the same label",
    "nearest-same-class": "nearest same-class targets (labels, pairs mined by correlation; NOT "
    "BOGT): camera scored against the best-correlated printed-digits training image of the "
    "same label",
    "nearest": "pseudo-pairs without labels (NOT BOGT): camera scored against the "
    "best-correlated printed-digits training image of any label; no label used anywhere",
}


def make_targets(
    kind: str, labels: torch.Tensor, seed: int, images: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera targets for MNIST training digits ``images`` with ``labels``, and the label
    of each target (``nearest`` reads no label; the ``nearest*`` kinds need the images)."""
    if kind == "glyph":
        return printed_targets(labels), labels
    prints = load_dataset("printed-digits", split="train", size=DIGIT_SIZE, seed=seed)
    if kind.startswith("nearest"):
        corr = pearson(images, prints.images)
        if kind == "nearest-same-class":
            corr[labels[:, None] != prints.labels[None, :]] = -2.0
        pick = corr.argmax(1)
    else:
        gen = torch.Generator().manual_seed(seed)
        pick = torch.empty(labels.shape[0], dtype=torch.long)
        for c in range(10):
            mine = (labels == c).nonzero().squeeze(1)
            pool = (prints.labels == c).nonzero().squeeze(1)
            pick[mine] = pool[torch.randint(0, len(pool), (len(mine),), generator=gen)]
    return prints.images[pick], prints.labels[pick]


def _save_weights(system, path: Path) -> None:
    """The whole system's weights as safetensors, written atomically (load them into
    ``load_trained(<the run it started from>)[0]`` with ``load_state_dict``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous() for k, v in system.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(weights, tmp))


def align(args) -> None:
    """Label-only latent alignment: the print chip's generators, prior and posterior
    variance stay frozen; only the encoder's masks (and the laser gain) are trained, on real
    MNIST training digits, to minimise each digit's KL against its class's prior component.
    No camera image and no target image enters this loss."""
    system, cfg = load_trained(args.align_from)
    if cfg.condition_on != "components" or cfg.dataset != "printed-digits":
        raise SystemExit(
            f"--align-from needs a chip trained on printed-digits with condition_on="
            f"'components'; {args.align_from} has dataset={cfg.dataset!r}, "
            f"condition_on={cfg.condition_on!r}."
        )
    train = load_dataset("mnist", root=args.data_root, split="train", size=DIGIT_SIZE)
    for name, p in system.named_parameters():
        p.requires_grad_(
            name.startswith(("model.chip.encoder.", "model.chip.laser_log_power_gain"))
        )
    params = [p for p in system.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    for step in range(args.steps):
        idx = torch.randint(0, train.images.shape[0], (cfg.batch_size,), generator=gen)
        mu, log_var = system.model.posterior(train.images[idx])
        kl = system.prior.kl(system.free_part(mu), system.free_part(log_var), train.labels[idx])
        opt.zero_grad(set_to_none=True)
        kl.mean().backward()
        opt.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"align step {step} kl {kl.mean().item():.3f}", flush=True)
    train_s = time.perf_counter() - t0
    _save_weights(system, Path(args.out, "aligned.safetensors"))
    report = {
        "what": "label-only latent alignment (no image pairs): encoder of "
        f"{args.align_from} re-trained on MNIST to its labels' prior components; "
        "generators frozen",
        "align_from": args.align_from,
        "align_steps": args.steps,
        "train_seconds_this_call": round(train_s, 1),
        **evaluate(system, args.data_root, args.n_eval),
    }
    finish(args, report, f"aligned from={args.align_from}")


def mmd2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared maximum mean discrepancy (unbiased U-statistic: no self-pairs) between image
    sets ``a`` and ``b`` over flattened pixels, with a sum of Gaussian kernels of 1/4, 1 and
    4 x the median pairwise squared distance (detached)."""
    x = torch.cat([a.flatten(1), b.flatten(1)])
    d2 = torch.cdist(x, x).pow(2)
    med = d2.detach()[d2.detach() > 0].median()
    k = sum(torch.exp(-d2 / (f * med)) for f in (0.25, 1.0, 4.0))
    n, m = a.shape[0], b.shape[0]
    off = 1 - torch.eye(n + m, device=k.device)
    within_a = (k[:n, :n] * off[:n, :n]).sum() / (n * (n - 1))
    within_b = (k[n:, n:] * off[n:, n:]).sum() / (m * (m - 1))
    return within_a + within_b - 2 * k[:n, n:].mean()


def _blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    if sigma_px <= 0:
        return images
    return _gaussian_blur(images, torch.full((images.shape[0],), sigma_px))


def _per_class(labels: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """``k`` random indices of each class 0-9 of ``labels``, concatenated by class."""
    out = []
    for c in range(10):
        pool = (labels == c).nonzero().squeeze(1)
        out.append(pool[torch.randint(0, len(pool), (k,), generator=gen)])
    return torch.cat(out)


def mmd_finetune(args) -> None:
    """BOGT of a two-domain chip plus an unpaired distribution-matching term.

    Every step takes the run's own BOGT loss (a batch of printed digits through generator 0,
    of MNIST digits through generator 1, each scored against itself, KL against the label
    components) and adds ``lambda * 784 / (2 sigma_x^2) * MMD^2``: 10 k MNIST training
    digits (k = ``--mmd-per-class``, default 8) are encoded (posterior means) and decoded
    by the *print* generator, and that set of camera images is compared with 10 k
    printed-digits training images (with ``--mmd-labels``, k of each class on both sides,
    the MMD summed per class; ``--mmd-blur-px``: both sets Gaussian-blurred first). No MNIST
    digit is ever scored against a print: the term only asks that the print generator's
    outputs for handwriting look like the set of prints. Training-only; the chip stays
    all-optical."""
    from lightgen.train.priors import standard_normal

    system, cfg = load_trained(args.mmd_from)
    if cfg.routing != "domain" or cfg.source_dataset != "mnist":
        raise SystemExit(
            f"--mmd-from needs a two-domain chip (routing='domain', source_dataset='mnist'); "
            f"{args.mmd_from} has routing={cfg.routing!r}, source_dataset={cfg.source_dataset!r}."
        )
    if args.data_root is not None:
        cfg = cfg.model_copy(update={"data_root": args.data_root})
    # the sets the chip was trained on, loaded as `lightgen train` loads them
    prints = train_split(cfg, cfg.dataset, DIGIT_SIZE)
    images, labels, domains = with_source_domain(cfg, prints, DIGIT_SIZE)
    hand_images, hand_labels = images[domains == 1], labels[domains == 1]
    comps = labels if cfg.condition_on == "components" else None
    opt = torch.optim.Adam(system.parameters(), lr=args.lr or cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    scale = args.mmd_weight * DIGIT_SIZE**2 / (2 * cfg.sigma_x**2)
    blur = args.mmd_blur_px
    t0 = time.perf_counter()
    for step in range(args.steps):
        idx = torch.randint(0, images.shape[0], (cfg.batch_size,), generator=gen)
        noise = standard_normal(
            (len(idx), system.model.latent_dim), system.model.complex_latent, gen
        )
        terms, _ = system(
            images[idx],
            noise,
            cfg.beta,
            cfg.sigma_x,
            None,
            None,
            None if comps is None else comps[idx],
            domains[idx],
        )
        k = args.mmd_per_class
        if args.mmd_labels:
            hi, pi = _per_class(hand_labels, k, gen), _per_class(prints.labels, k, gen)
        else:
            hi = torch.randint(0, len(hand_labels), (10 * k,), generator=gen)
            pi = torch.randint(0, len(prints.labels), (10 * k,), generator=gen)
        out = _blur(system.model.decode(system.model.posterior(hand_images[hi])[0], 0), blur)
        ref = _blur(prints.images[pi], blur)
        if args.mmd_labels:
            mmd = sum(mmd2(out[k * c : k * (c + 1)], ref[k * c : k * (c + 1)]) for c in range(10))
        else:
            mmd = mmd2(out, ref)
        loss = terms.loss + scale * mmd
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(system.parameters(), cfg.grad_clip)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(
                f"mmd step {step} bogt {terms.loss.item():.1f} mmd2 {float(mmd.detach()):.4f}",
                flush=True,
            )
    train_s = time.perf_counter() - t0
    _save_weights(system, Path(args.out, "mmd.safetensors"))
    report = {
        "what": "BOGT (two domains) + unpaired MMD term, no image pairs"
        + (", per class (labels)" if args.mmd_labels else ", no labels in the MMD term"),
        "mmd_from": args.mmd_from,
        "mmd_steps": args.steps,
        "mmd_weight": args.mmd_weight,
        "mmd_per_class": args.mmd_per_class,
        "mmd_blur_px": args.mmd_blur_px,
        "lr": args.lr or cfg.lr,
        "train_seconds_this_call": round(train_s, 1),
        **evaluate(system, args.data_root, args.n_eval),
    }
    finish(args, report, f"mmd from={args.mmd_from} labels={args.mmd_labels}")


@torch.no_grad()
def evaluate(system, data_root, n_eval: int) -> dict:
    x, labels, source = load_handwriting(n_eval, 0, data_root)
    out = _reconstruct(system, x)
    target = printed_targets(labels)
    net = RandomFeatureNet()
    scores = {
        **image_scores(net, out, x, target),
        "glyph_accuracy": float((glyph_match(out) == labels).float().mean()),
    }
    clf = mnist_classifier(data_root)
    if clf is not None:
        scores["class_accuracy"] = float((predict(clf, out) == labels).float().mean())
    on_glyph = image_scores(net, _reconstruct(system, target), target, target)
    return {
        "eval": {"content": source, "n": int(x.shape[0]), **scores},
        "fed_the_glyph": on_glyph,
        "rows": [x, out, target],
    }


def finish(args, report: dict, head: str) -> None:
    scores, on_glyph = report["eval"], report["fed_the_glyph"]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    png = _save_rows(Path(args.out, "digits.png"), report.pop("rows"), 12)
    report["figure"] = {"file": str(png), "rows": ["handwritten input", "chip", "printed glyph"]}
    atomic_write_text(Path(args.out, "oracle.json"), json.dumps(report, indent=1) + "\n")
    print(
        f"{head} psnr={scores['psnr_db']:.2f} ssim={scores['ssim']:.3f} "
        f"style={scores['style_loss']:.4f} glyph={100 * scores['glyph_accuracy']:.1f}% "
        f"classifier={100 * scores.get('class_accuracy', float('nan')):.1f}% "
        f"fed_glyph_psnr={on_glyph['psnr_db']:.2f}"
    )


if __name__ == "__main__":
    main()
