"""Handwriting -> print: references that are not BOGT, and one unpaired training term.

The BOGT chips of docs/tasks.md ("Handwriting -> print") never see a handwriting/print
pair, and none of them both prints and keeps the digit. Is that the training method or
the hardware? This script answers it with references that are **not BOGT and not
transfer methods**, and tries unpaired training terms. Four sub-commands:

* ``targets``: the same chip (preset ``mnist-16f``, same optics, loss and prior, label
  components) trained by :func:`lightgen.train.trainer.Trainer` with camera targets given
  per real MNIST training digit (``Trainer(..., targets=...)``, the mechanism the
  multi-view task uses for cross-view targets). ``--kind``:

  - ``glyph`` (default): the un-jittered printed glyph of each digit's label, the most a
    chip of this kind can be told (the *paired reference*);
  - ``class-matched``: a random printed-digits training image of the same label (labels
    only, no image paired with another);
  - ``nearest-same-class``: the best-correlated (Pearson, over pixels) printed-digits
    training image of the same label (labels, pairs mined, not given);
  - ``nearest``: the best-correlated printed-digits training image of *any* label, with an
    unsupervised mixture prior: pseudo-pairs that use no label anywhere.

* ``align --from RUN``: a BOGT chip trained on printed digits with label components keeps
  its generators, prior and posterior variance; only its encoder (and laser gain) is
  re-trained on MNIST to minimise each digit's KL against its label's component (no camera
  image in the loss). Writes ``aligned.safetensors`` (the whole system's weights).

* ``mmd --from RUN`` and ``adv --from RUN``: candidate *methods* that use no image pairs
  (:class:`UnpairedTerm`, :func:`unpaired_finetune`). ``mmd``: a two-domain BOGT chip
  continues its own BOGT training plus an unpaired maximum-mean-discrepancy term that asks
  the print generator's outputs for handwriting to look like the *set* of printed digits
  (``--mmd-labels``: per class). Training-only; the chip stays all-optical. Writes
  ``mmd.safetensors``. ``adv``: the same, with a learned critic instead of the MMD: a
  small class-conditional convolutional discriminator (:class:`ClassCritic`,
  training-only, never in the light path) is trained to tell printed-digits training
  images of class c from the print generator's outputs for handwritten digits of class c,
  and the chip is trained to fool it (hinge loss). ``--cycle-weight``: plus a latent cycle
  term, the print output fed back to the encoder must give the handwriting's own latent
  (the output keeps what the encoder read from the digit). ``--critic-wrong-class``: the
  critic also learns real prints shown with a wrong class as fakes (matching-aware), so it
  checks the class. ``--also-mmd``: the per-class MMD beside it. ``--hand-critic`` and
  ``--image-cycle-weight``: a full CycleGAN, a second critic on the handwriting side and
  the two image cycles (handwriting -> print -> handwriting, print -> handwriting ->
  print). Writes ``adv.safetensors``. ``--freeze-print-generator`` (either, a
  diagnostic): the print generator's masks and camera calibration stay fixed, so the
  unpaired term can move the output only through the encoder.

Which loop trains what: ``targets`` is the trainer's own loop. ``align`` keeps its own
loop because its objective is not BOGT plus a term (a KL alone, on frozen generators),
and the trainer's hook only adds to the BOGT loss. ``mmd`` and ``adv`` keep their own loop
so that the recorded runs of docs/tasks.md give the same numbers: it continues a loaded
run's weights with a fresh optimizer (``--lr``) and draws each batch with ``torch.randint``
from one generator that the term's per-class picks share, where the trainer starts a
fresh system and draws seeded epoch permutations. Their term is an
:class:`~lightgen.train.trainer.ExtraLoss` (:class:`UnpairedTerm`), the same object a new
method passes to ``Trainer(..., extra_loss=...)``.

Each run then scores 512 MNIST test digits exactly as ``lightgen style-digits`` does for
its ``global`` row: PSNR, SSIM and the Gram style loss against the glyph
(``RandomFeatureNet``), the glyph match (:func:`lightgen.tasks.style.glyph_match`) and the
MNIST SmallCNN's accuracy. It prints one line and writes ``oracle.json`` and
``digits.png`` (rows: handwritten input, chip, printed glyph; the first 12 test digits)
into the run folder. ``targets --resume`` continues a run, or only re-scores a finished
one; a run records its targets in ``targets.json``, and continuing it with others is
refused. Needs ``../shared/data/mnist`` (or ``--data-root``). From the repository root::

    python benchmarks/digit_oracle.py targets --out runs/style/oracle-16f-cp --servo
    python benchmarks/digit_oracle.py targets --kind class-matched --servo --out runs/style/classmatched-16f-cp
    python benchmarks/digit_oracle.py align --from runs/style/printed-mnist-16f-comp --steps 1500 \
        --out runs/style/align-16f-comp

About 7 minutes per 3,000 steps on one core of this 2-core CPU (``OMP_NUM_THREADS=1``);
the alignment about 1 minute; the MMD term or the critic 11-18 minutes per 1,500 steps, a
full CycleGAN about 40.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from lightgen.data.registry import load_dataset
from lightgen.metrics.classifier import gaussian_blur, predict
from lightgen.tasks.generate import reconstruct_batched
from lightgen.tasks.images import atomic_write, atomic_write_text
from lightgen.tasks.style import (
    DIGIT_SIZE,
    RandomFeatureNet,
    glyph_match,
    image_scores,
    load_handwriting,
    mnist_classifier,
    pearson,
    printed_targets,
    save_rows,
)
from lightgen.train.config import TrainConfig
from lightgen.train.data import train_split, with_source_domain
from lightgen.train.priors import standard_normal
from lightgen.train.trainer import TrainBatch, Trainer, load_trained


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True, metavar="targets|align|mmd|adv")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="run folder")
    common.add_argument("--steps", type=int, default=3000)
    common.add_argument("--n-eval", type=int, default=512)
    common.add_argument("--data-root", default=None)

    tg = sub.add_parser(
        "targets", parents=[common], help="paired and mined camera targets (not BOGT)"
    )
    tg.add_argument("--beta", type=float, default=1.0)
    tg.add_argument("--n-fibers", type=int, default=None, help="default: the preset's 16")
    tg.add_argument("--servo", action="store_true", help="input_power_control=constant-power")
    tg.add_argument(
        "--kind",
        choices=["glyph", "class-matched", "nearest-same-class", "nearest"],
        default="glyph",
        help="glyph: the un-jittered printed glyph of each digit's label (paired reference); "
        "class-matched: a random printed-digits training image of the same label (labels only); "
        "nearest-same-class: the best-correlated one of the same label; nearest: the "
        "best-correlated printed-digits training image of any label (no labels at all: "
        "pseudo-pairs, unsupervised mixture instead of label components)",
    )
    tg.add_argument(
        "--pairs-from",
        default=None,
        help="with --kind nearest*: match each digit's image through this run's chip "
        "(its camera image, not the handwriting, is compared with the prints): self-training",
    )
    tg.add_argument(
        "--pairs-only",
        action="store_true",
        help="print how often the targets have the digit's own class, and stop (no training)",
    )
    tg.add_argument("--resume", action="store_true")
    tg.set_defaults(run=run_targets)

    al = sub.add_parser(
        "align", parents=[common], help="re-train only the encoder to the label components"
    )
    al.add_argument(
        "--from",
        dest="source",
        required=True,
        help="run folder of a chip trained with label components on printed digits: "
        "re-train only its encoder (see the module doc)",
    )
    al.set_defaults(run=align)

    unpaired = argparse.ArgumentParser(add_help=False, parents=[common])
    unpaired.add_argument(
        "--from",
        dest="source",
        required=True,
        help="run folder of a two-domain chip (routing='domain', printed digits + MNIST) "
        "whose BOGT training continues with the unpaired term (see the module doc)",
    )
    unpaired.add_argument(
        "--mmd-weight", type=float, default=0.01, help="lambda of the MMD term (module doc)"
    )
    unpaired.add_argument(
        "--mmd-per-class", type=int, default=8, help="images of each class on each side (x 10)"
    )
    unpaired.add_argument(
        "--mmd-blur-px",
        type=float,
        default=0.0,
        help="Gaussian blur (sigma, pixels) of both sets before the MMD; 0: none",
    )
    unpaired.add_argument(
        "--image-cycle-weight",
        type=float,
        default=0.0,
        help="weight of the two image cycles of a CycleGAN (handwriting -> print -> "
        "handwriting and print -> handwriting -> print through the encoder and the other "
        "domain's generator), in the reconstruction term's units (0: off)",
    )
    unpaired.add_argument(
        "--freeze-print-generator",
        action="store_true",
        help="keep the print generator's masks fixed, so the unpaired term can act only "
        "through the encoder (a diagnostic)",
    )
    unpaired.add_argument("--lr", type=float, default=None, help="default: the run's own")

    mm = sub.add_parser("mmd", parents=[unpaired], help="BOGT plus an unpaired MMD term")
    mm.add_argument(
        "--mmd-labels",
        action="store_true",
        help="match each class's outputs to that class's prints (else: all outputs to all prints)",
    )
    mm.set_defaults(
        run=unpaired_finetune,
        adv_weight=None,
        cycle_weight=0.0,
        critic_wrong_class=False,
        also_mmd=False,
        hand_critic=False,
    )

    ad = sub.add_parser("adv", parents=[unpaired], help="BOGT plus a learned class critic")
    ad.add_argument(
        "--adv-weight",
        type=float,
        default=0.002,
        help="lambda of the critic term, in units of 784 / (2 sigma_x^2) like --mmd-weight",
    )
    ad.add_argument(
        "--cycle-weight",
        type=float,
        default=0.0,
        help="weight of the latent cycle term |E(G_print(z)) - z|^2 (0: off)",
    )
    ad.add_argument(
        "--critic-wrong-class",
        action="store_true",
        help="the critic also learns prints shown with a wrong class as fakes (matching-aware), "
        "so it checks the class, not only print-ness",
    )
    ad.add_argument(
        "--also-mmd",
        action="store_true",
        help="add the per-class MMD term too (--mmd-weight, --mmd-blur-px)",
    )
    ad.add_argument(
        "--hand-critic",
        action="store_true",
        help="a second, handwriting-side critic (same weight and --critic-wrong-class) on the "
        "handwriting generator's outputs for prints: with --image-cycle-weight, a full CycleGAN",
    )
    ad.set_defaults(run=unpaired_finetune, mmd_labels=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


def run_targets(args) -> None:
    """Train the chip with camera targets per MNIST training digit (``--kind``) and score
    it (the trainer's own loop)."""
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
        condition_on="none" if args.kind == "nearest" else "components",
    )
    train = load_dataset("mnist", root=args.data_root, split="train", size=DIGIT_SIZE)
    if args.pairs_from is not None and not args.kind.startswith("nearest"):
        raise SystemExit("--pairs-from needs --kind nearest or nearest-same-class.")
    match = train.images
    if args.pairs_from is not None:
        match = reconstruct_batched(load_trained(args.pairs_from)[0], train.images)
    targets, target_labels = make_targets(args.kind, train.labels, cfg.seed, match)
    # labels read only to report how often a target has the digit's own class
    pair_agreement = float((target_labels == train.labels).float().mean())
    if args.pairs_only:
        print(
            f"targets={args.kind} pairs_from={args.pairs_from} label_agreement={pair_agreement:.4f}"
        )
        return
    _check_same_targets(Path(args.out), {"targets": args.kind, "pairs_from": args.pairs_from})
    t0 = time.perf_counter()
    Trainer(
        cfg,
        args.out,
        train.images,
        resume=args.resume,
        labels=None if args.kind == "nearest" else train.labels,
        targets=targets,
    ).run()
    train_s = time.perf_counter() - t0

    system, _ = load_trained(args.out)
    report = evaluate(system, args.data_root, args.n_eval)
    report = {
        "what": WHAT[args.kind],
        "config": cfg.model_dump(mode="json"),
        "train_seconds_this_call": round(train_s, 1),
        "pairs_from": args.pairs_from,
        "target_label_agreement": pair_agreement,
        **report,
    }
    finish(
        args,
        report,
        f"targets={args.kind} fibers={system.model.latent_dim} beta={args.beta} servo={args.servo}",
    )


def _check_same_targets(out: Path, kind: dict) -> None:
    """Record which targets a run trains on, by name, and refuse a run continued with
    others before any data is built (the Trainer's own resume check compares the target
    tensors' fingerprint too)."""
    path = out / "targets.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != kind:
            raise SystemExit(
                f"{out} was trained with targets {saved}, not {kind}; pass the same --kind "
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
    system, cfg = load_trained(args.source)
    if cfg.condition_on != "components" or cfg.dataset != "printed-digits":
        raise SystemExit(
            f"align --from needs a chip trained on printed-digits with condition_on="
            f"'components'; {args.source} has dataset={cfg.dataset!r}, "
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
        f"{args.source} re-trained on MNIST to its labels' prior components; "
        "generators frozen",
        "align_from": args.source,
        "align_steps": args.steps,
        "train_seconds_this_call": round(train_s, 1),
        **evaluate(system, args.data_root, args.n_eval),
    }
    finish(args, report, f"aligned from={args.source}")


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
    return gaussian_blur(images, torch.full((images.shape[0],), sigma_px))


def _class_mmd(out: torch.Tensor, ref: torch.Tensor, k: int) -> torch.Tensor:
    """Sum over the 10 classes of :func:`mmd2` between the ``k``-image blocks of ``out`` and
    ``ref`` (both ordered by class, as :func:`_per_class` gives them)."""
    return sum(mmd2(out[k * c : k * (c + 1)], ref[k * c : k * (c + 1)]) for c in range(10))


def _per_class(labels: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """``k`` random indices of each class 0-9 of ``labels``, concatenated by class."""
    out = []
    for c in range(10):
        pool = (labels == c).nonzero().squeeze(1)
        out.append(pool[torch.randint(0, len(pool), (k,), generator=gen)])
    return torch.cat(out)


class ClassCritic(torch.nn.Module):
    """Training-only class-conditional critic for 28 x 28 camera images in [0, 1] (a
    projection discriminator, Miyato & Koyama, ICLR 2018, with spectral normalisation).
    It scores how much an image looks like a printed digit of class ``c``. It never sits in
    the light path: it only shapes the chip's training signal."""

    def __init__(self, n_classes: int = 10, width: int = 32):
        super().__init__()
        from torch import nn
        from torch.nn.utils.parametrizations import spectral_norm as sn

        self.body = nn.Sequential(
            sn(nn.Conv2d(1, width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * width, 4 * width, 3, 1, 1)),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = sn(nn.Linear(4 * width, 1))
        self.embed = sn(nn.Embedding(n_classes, 4 * width))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if images.shape[1:] != (1, DIGIT_SIZE, DIGIT_SIZE):
            raise ValueError(
                f"ClassCritic takes (B, 1, {DIGIT_SIZE}, {DIGIT_SIZE}) images; got "
                f"{tuple(images.shape)}."
            )
        h = self.body(2 * images - 1)
        return self.head(h).squeeze(1) + (self.embed(labels) * h).sum(1)


def _critic_step(
    critic: ClassCritic,
    opt: torch.optim.Optimizer,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    fake: torch.Tensor,
    fake_labels: torch.Tensor,
    wrong_class: bool,
    gen: torch.Generator,
) -> torch.Tensor:
    """One Adam step of a hinge-loss ``critic``: ``real`` images of their class are real,
    ``fake`` ones (detached) of theirs are fake; with ``wrong_class`` (matching-aware) a real
    image shown with another class is fake too. Returns the critic's loss."""
    loss = (
        torch.relu(1 - critic(real, real_labels)).mean()
        + torch.relu(1 + critic(fake.detach(), fake_labels)).mean()
    )
    if wrong_class:
        wrong = (real_labels + torch.randint(1, 10, real_labels.shape, generator=gen)) % 10
        loss = loss + torch.relu(1 + critic(real, wrong)).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


class UnpairedTerm:
    """The unpaired term of ``mmd`` / ``adv`` as an :class:`~lightgen.train.trainer.ExtraLoss`.

    At every call, 10 k MNIST training digits (k = ``--mmd-per-class``, default 8) are
    encoded (posterior means) and decoded by the *print* generator, and that set of camera
    images is compared with 10 k printed-digits training images (with labels: k of each
    class on both sides). No MNIST digit is ever scored against a print: the terms only ask
    that the print generator's outputs for handwriting look like the set of prints.
    Training-only; the chip stays all-optical. The term, in units of ``784 / (2 sigma_x^2)``
    (the reconstruction term's scale):

    * ``mmd``: ``lambda * MMD^2`` (``--mmd-labels``: summed per class; ``--mmd-blur-px``:
      both sets Gaussian-blurred first);
    * ``adv``: ``lambda * hinge`` against a :class:`ClassCritic` (always per class) that is
      trained, one Adam step per call, to tell the prints from the outputs; plus
      ``--cycle-weight * |E(output) - E(digit)|^2`` (summed over fibers, mean over images),
      the latent cycle; ``--hand-critic``: plus ``lambda * hinge`` against a second critic
      that tells real handwriting of class c from the handwriting generator's outputs for
      prints of class c;
    * either: ``--image-cycle-weight * (MSE(G_hand(E(output)), digit) + MSE(G_print(E(
      G_hand(E(print)))), print))`` in the reconstruction term's units, the two image
      cycles of a CycleGAN (Zhu et al., ICCV 2017) through the shared encoder.

    ``gen`` draws the picks (and the critics' wrong classes); the critics are built here
    from the global torch generator. :meth:`parts` gives the weighted term and the further
    terms apart (what :func:`unpaired_finetune` adds, in the order it always did);
    calling the object gives their sum; ``logged`` holds the last call's values by name.
    """

    def __init__(self, args, cfg: TrainConfig, prints, hand_images, hand_labels, gen):
        self.args = args
        self.adversarial = args.mode == "adv"
        self.name = "adv" if self.adversarial else "mmd"
        self.prints, self.hand_images, self.hand_labels = prints, hand_images, hand_labels
        self.gen = gen
        self.per_class = args.mmd_labels or self.adversarial
        self.unit = DIGIT_SIZE**2 / (2 * cfg.sigma_x**2)  # the reconstruction term's scale
        self.scale = (args.adv_weight if self.adversarial else args.mmd_weight) * self.unit
        self.logged: dict[str, torch.Tensor] = {}
        if self.adversarial:
            torch.manual_seed(cfg.seed + 11)
            self.critic = ClassCritic()
            self.opt_critic = torch.optim.Adam(
                self.critic.parameters(), lr=2e-4, betas=(0.5, 0.999)
            )
            if args.hand_critic:
                self.hand_critic = ClassCritic()
                self.opt_hand = torch.optim.Adam(
                    self.hand_critic.parameters(), lr=2e-4, betas=(0.5, 0.999)
                )

    def __call__(self, batch: TrainBatch) -> torch.Tensor:
        weighted, more = self.parts(batch)
        return weighted + more

    def parts(self, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor | float]:
        """``(lambda * term, further terms)`` for the system of ``batch`` (its images are
        not read: the term draws its own sets)."""
        args, gen, system = self.args, self.gen, batch.system
        prints, hand_images, hand_labels = self.prints, self.hand_images, self.hand_labels
        unit, scale, blur = self.unit, self.scale, args.mmd_blur_px
        k = args.mmd_per_class
        if self.per_class:
            hi, pi = _per_class(hand_labels, k, gen), _per_class(prints.labels, k, gen)
        else:
            hi = torch.randint(0, len(hand_labels), (10 * k,), generator=gen)
            pi = torch.randint(0, len(prints.labels), (10 * k,), generator=gen)
        z = system.model.posterior(hand_images[hi])[0]
        out = system.model.decode(z, 0)
        ref = prints.images[pi]
        extra, more_loss = {}, 0.0
        hand_like = None
        if args.hand_critic or args.image_cycle_weight > 0:
            # the other direction: prints through the encoder and the handwriting generator
            hand_like = system.model.decode(system.model.posterior(ref)[0], 1)
        if args.image_cycle_weight > 0:
            back_hand = system.model.decode(system.model.posterior(out)[0], 1)
            back_print = system.model.decode(system.model.posterior(hand_like)[0], 0)
            extra["cycle_img"] = (back_hand - hand_images[hi]).pow(2).mean() + (
                back_print - ref
            ).pow(2).mean()
            more_loss = more_loss + args.image_cycle_weight * unit * extra["cycle_img"]
        if self.adversarial:
            # the critic's step: prints of class c are real, outputs for class c are fake
            d_loss = _critic_step(
                self.critic, self.opt_critic, ref, prints.labels[pi], out, hand_labels[hi],
                args.critic_wrong_class, gen,
            )  # fmt: skip
            term = -self.critic(out, hand_labels[hi]).mean()
            extra["critic"] = d_loss
            if args.hand_critic:  # handwriting of class c is real, prints made handwriting fake
                extra["hand_critic"] = _critic_step(
                    self.hand_critic, self.opt_hand, hand_images[hi], hand_labels[hi],
                    hand_like, prints.labels[pi], args.critic_wrong_class, gen,
                )  # fmt: skip
                extra["hand_adv"] = -self.hand_critic(hand_like, prints.labels[pi]).mean()
                more_loss = more_loss + scale * extra["hand_adv"]
            if args.cycle_weight > 0:
                back = system.model.posterior(out)[0]
                extra["cycle"] = (back - z.detach()).abs().pow(2).sum(1).mean()
                more_loss = more_loss + args.cycle_weight * extra["cycle"]
            if args.also_mmd:
                extra["mmd2"] = _class_mmd(_blur(out, blur), _blur(ref, blur), k)
                more_loss = more_loss + args.mmd_weight * unit * extra["mmd2"]
        else:
            out, ref = _blur(out, blur), _blur(ref, blur)
            term = _class_mmd(out, ref, k) if self.per_class else mmd2(out, ref)
        self.logged = {"adv" if self.adversarial else "mmd2": term, **extra}
        return scale * term, more_loss


def unpaired_finetune(args) -> None:
    """BOGT of a two-domain chip plus the unpaired term (:class:`UnpairedTerm`).

    Every step takes the run's own BOGT loss (a batch of printed digits through generator 0,
    of MNIST digits through generator 1, each scored against itself, KL against the label
    components) and adds the term. Its own loop, not the trainer's: see the module doc."""
    adversarial = args.mode == "adv"
    source = args.source
    flag = f"{args.mode} --from"
    system, cfg = load_trained(source)
    if cfg.routing != "domain" or cfg.source_dataset != "mnist":
        raise SystemExit(
            f"{flag} needs a two-domain chip (routing='domain', source_dataset='mnist'); "
            f"{source} has routing={cfg.routing!r}, source_dataset={cfg.source_dataset!r}."
        )
    if args.data_root is not None:
        cfg = cfg.model_copy(update={"data_root": args.data_root})
    # the sets the chip was trained on, loaded as `lightgen train` loads them
    prints = train_split(cfg, cfg.dataset, DIGIT_SIZE)
    images, labels, domains = with_source_domain(cfg, prints, DIGIT_SIZE)
    hand_images, hand_labels = images[domains == 1], labels[domains == 1]
    comps = labels if cfg.condition_on == "components" else None
    per_class = args.mmd_labels or adversarial
    if args.freeze_print_generator:
        for name, param in system.named_parameters():
            param.requires_grad_(not name.startswith("model.chip.generators.0."))
    opt = torch.optim.Adam(
        [p for p in system.parameters() if p.requires_grad], lr=args.lr or cfg.lr
    )
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    unpaired = UnpairedTerm(args, cfg, prints, hand_images, hand_labels, gen)
    t0 = time.perf_counter()
    for step in range(args.steps):
        idx = torch.randint(0, images.shape[0], (cfg.batch_size,), generator=gen)
        noise = standard_normal(
            (len(idx), system.model.latent_dim), system.model.complex_latent, gen
        )
        batch_comps = None if comps is None else comps[idx]
        terms, _ = system(
            images[idx], noise, cfg.beta, cfg.sigma_x, None, None, batch_comps, domains[idx]
        )
        batch = TrainBatch(
            images=images[idx],
            labels=labels[idx],
            step=step,
            system=system,
            domains=domains[idx],
            terms=terms,
        )
        weighted, more_loss = unpaired.parts(batch)
        loss = terms.loss + weighted + more_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(system.parameters(), cfg.grad_clip)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            (name, term), *extra = unpaired.logged.items()
            more = " ".join(f"{n} {float(v.detach()):.4f}" for n, v in extra)
            line = f"{unpaired.name} step {step} bogt {terms.loss.item():.1f} {name} {float(term.detach()):.4f}"
            print(f"{line} {more}".rstrip(), flush=True)
    train_s = time.perf_counter() - t0
    _save_weights(system, Path(args.out, ("adv" if adversarial else "mmd") + ".safetensors"))
    if adversarial:
        report = {
            "what": "BOGT (two domains) + unpaired class-conditional critic, no image pairs"
            + (" (matching-aware: wrong-class prints are fakes)" if args.critic_wrong_class else "")
            + (f" + latent cycle (weight {args.cycle_weight})" if args.cycle_weight else "")
            + (
                f" + per-class MMD (weight {args.mmd_weight}, blur {args.mmd_blur_px} px)"
                if args.also_mmd
                else ""
            ),
            "adv_from": source,
            "adv_steps": args.steps,
            "adv_weight": args.adv_weight,
            "cycle_weight": args.cycle_weight,
            "critic_wrong_class": args.critic_wrong_class,
            "hand_critic": args.hand_critic,
            "also_mmd": args.also_mmd,
            "mmd_weight": args.mmd_weight if args.also_mmd else None,
            "mmd_blur_px": args.mmd_blur_px if args.also_mmd else None,
            "per_class": args.mmd_per_class,
        }
    else:
        report = {
            "what": "BOGT (two domains) + unpaired MMD term, no image pairs"
            + (", per class (labels)" if args.mmd_labels else ", no labels in the MMD term"),
            "mmd_from": source,
            "mmd_steps": args.steps,
            "mmd_weight": args.mmd_weight,
            "mmd_per_class": args.mmd_per_class,
            "mmd_blur_px": args.mmd_blur_px,
        }
    if args.hand_critic:
        report["what"] += " + handwriting-side critic"
    if args.image_cycle_weight:
        report["what"] += f" + image cycles (weight {args.image_cycle_weight})"
    report = {
        **report,
        "image_cycle_weight": args.image_cycle_weight,
        "freeze_print_generator": args.freeze_print_generator,
        "lr": args.lr or cfg.lr,
        "train_seconds_this_call": round(train_s, 1),
        **evaluate(system, args.data_root, args.n_eval),
    }
    head = f"{'adv' if adversarial else 'mmd'} from={source} labels={per_class}"
    finish(args, report, head)


@torch.no_grad()
def evaluate(system, data_root, n_eval: int) -> dict:
    x, labels, source = load_handwriting(n_eval, 0, data_root)
    out = reconstruct_batched(system, x)
    target = printed_targets(labels)
    net = RandomFeatureNet()
    scores = {
        **image_scores(net, out, x, target),
        "glyph_accuracy": float((glyph_match(out) == labels).float().mean()),
    }
    clf = mnist_classifier(data_root)
    if clf is not None:
        scores["class_accuracy"] = float((predict(clf, out) == labels).float().mean())
    on_glyph = image_scores(net, reconstruct_batched(system, target), target, target)
    return {
        "eval": {"content": source, "n": int(x.shape[0]), **scores},
        "fed_the_glyph": on_glyph,
        "rows": [x, out, target],
    }


def finish(args, report: dict, head: str) -> None:
    scores, on_glyph = report["eval"], report["fed_the_glyph"]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    png = save_rows(Path(args.out, "digits.png"), report.pop("rows"), 12)
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
