r"""Style and feature transfer without paired data (Chen et al. 2025, issue 4 section 3).

Method. BOGT is unsupervised: a chip trained on images of the *target style only* has a
generator that can only produce target-style images. A *content* image from the other
domain is encoded, sent through the fibers and decoded with no injected noise,
``output = reconstruct(system, x)``: the output keeps the content that survives the
fiber bottleneck and takes the target style. No (content, stylised) pairs are used in
training; pairs exist here only for scoring, because the targets are procedural
(:mod:`lightgen.data.styles`) or rendered digits.

Two experiments.

* **Texture styles** (:func:`run_style_transfer`): a chip trained on
  ``<data>+mosaic``, ``<data>+painterly``, ``<data>+halftone``, ``<data>+stained-glass`` or ``<data>+cartoon`` is fed held-out *plain* images.
* **Handwriting -> print, global vs patch** (:func:`run_digit_transfer`): a
  large-aperture chip (whole 28 x 28 image on one input aperture) trained on printed
  digits, against a small chip whose input is one ``p x p`` patch (trained on
  ``printed-digits+patches<p>``) applied to the ``(28/p)^2`` non-overlapping patches of a
  handwritten digit and tiled back. Continuity is the *seam ratio*

  .. math:: \rho = \frac{\langle |y_{j+1} - y_j| \rangle_{j = kp - 1}}
                       {\langle |y_{j+1} - y_j| \rangle_{j = kp - 2,\ kp}}

  over horizontal and vertical neighbour pairs and all images: the mean jump across a
  seam (between pixels ``kp - 1`` and ``kp``) over the mean jump of the pairs one pixel
  to either side, which see the same part of the digit (a plain ratio to *all* other
  pairs would be biased by the empty image borders). ``rho = 1`` is seamless,
  ``rho > 1`` means jumps at the patch borders.

Feature network for the losses (no downloads, so no VGG): :class:`RandomFeatureNet`, a
fixed random multi-scale conv net (seed 0): inputs mapped to [-1, 1] (grey repeated to
3 channels), then ``conv3x3(3->32) ReLU | avgpool2 conv3x3(32->64) ReLU | avgpool2
conv3x3(64->128) ReLU``, He-normal weights, zero bias. Random-weight conv features
capture texture statistics well (Ustyuzhaninov, Brendel, Gatys & Bethge, ICLR 2017).
Losses (Gatys, Ecker & Bethge, CVPR 2016), per image then averaged, features
:math:`F^l \in \mathbb{R}^{K_l \times H_l W_l}`:

.. math:: L_\text{content} = \operatorname{mean}\,(F^3(y) - F^3(x))^2, \qquad
          G^l = F^l F^{l\top} / (H_l W_l), \qquad
          L_\text{style} = \textstyle\sum_l \operatorname{mean}\,(G^l(y) - G^l(t))^2 .

The **non-transfer baseline** scores the unmodified input the same way (what you get
if nothing is transferred).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from lightgen._checks import require_int_range
from lightgen.data.deform import elastic_distort
from lightgen.data.styles import (
    STYLE_NAMES,
    apply_style,
    cut_patches,
    parse_style,
    style_params,
    tile_patches,
)
from lightgen.metrics.image import psnr, ssim
from lightgen.tasks.common import check_images, expected_image_shape, write_json
from lightgen.tasks.generate import reconstruct_batched
from lightgen.tasks.images import check_image_format, image_grid, save_png, write_image_set

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem

FEATURE_NET_SEED = 0
FEATURE_WIDTHS: tuple[int, ...] = (32, 64, 128)
DIGIT_SIZE = 28


class RandomFeatureNet(nn.Module):
    """Fixed random conv features (module doc); weights are non-persistent buffers.

    ``forward(x)`` takes ``(N, 1 | 3, H, W)`` in [0, 1] and returns the three ReLU maps
    ``[(N, 32, H, W), (N, 64, H/2, W/2), (N, 128, H/4, W/4)]``.
    """

    def __init__(self, seed: int = FEATURE_NET_SEED, widths: tuple[int, ...] = FEATURE_WIDTHS):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        c_in = 3
        for i, c_out in enumerate(widths):
            std = math.sqrt(2.0 / (c_in * 9))  # He et al. 2015: keeps ReLU activations O(1)
            self.register_buffer(
                f"w{i}", torch.randn(c_out, c_in, 3, 3, generator=g) * std, persistent=False
            )
            c_in = c_out
        self.n_layers = len(widths)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.to(self.w0.device, torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h, feats = 2 * x - 1, []
        for i in range(self.n_layers):
            if i:
                h = F.avg_pool2d(h, 2, ceil_mode=True)
            h = F.relu(F.conv2d(h, getattr(self, f"w{i}"), padding=1))
            feats.append(h)
        return feats


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrices ``(N, K, K)`` of ``(N, K, H, W)`` features, divided by ``H W``."""
    f = feat.flatten(2)
    return f @ f.transpose(1, 2) / f.shape[-1]


@torch.no_grad()
def feature_losses(
    net: RandomFeatureNet, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor
) -> dict[str, float]:
    """Content loss (output vs ``content``) and style loss (output vs ``style``), image mean."""
    fo, fc, fs = net(output), net(content), net(style)
    content_loss = (fo[-1] - fc[-1]).pow(2).mean((1, 2, 3))
    style_loss = sum((gram(a) - gram(b)).pow(2).mean((1, 2)) for a, b in zip(fo, fs, strict=True))
    return {
        "content_loss": float(content_loss.mean()),
        "style_loss": float(style_loss.mean()),
    }


def image_scores(
    net: RandomFeatureNet, output: torch.Tensor, content: torch.Tensor, target: torch.Tensor
) -> dict[str, float]:
    """PSNR/SSIM vs ``target`` plus the feature losses (content vs ``content``, style vs target)."""
    return {
        "psnr_db": float(psnr(output, target)),
        "ssim": float(ssim(output, target)),
        **feature_losses(net, output, content, target),
    }


def seam_ratio(images: torch.Tensor, patch_px: int) -> float:
    """Mean |neighbour jump| across patch seams over that one pixel beside them (module doc).

    ``images`` ``(N, C, H, W)``; ``nan`` when the pairs beside the seams never change.
    """
    p = require_int_range("patch_px", patch_px, 3, fix="Use the patch chip's image size, e.g. 7.")
    h, w = images.shape[-2:]
    if h % p or w % p or h == p or w == p:
        raise ValueError(
            f"patch_px={p} must divide the {h} x {w} images into >= 2 patches per side."
        )
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs()
    dev = images.device
    seam_x, seam_y = (
        torch.arange(p - 1, w - 1, p, device=dev),
        torch.arange(p - 1, h - 1, p, device=dev),
    )
    side_x = torch.cat([seam_x - 1, seam_x + 1])
    side_y = torch.cat([seam_y - 1, seam_y + 1])
    seam = torch.cat([dx[..., :, seam_x].flatten(), dy[..., seam_y, :].flatten()])
    side = torch.cat([dx[..., :, side_x].flatten(), dy[..., side_y, :].flatten()])
    ref = float(side.mean())
    return float(seam.mean()) / ref if ref > 0 else math.nan


def patchwise_reconstruct(patch_system: BOGTSystem, images: torch.Tensor) -> torch.Tensor:
    """Run a ``p x p`` chip on every non-overlapping patch of ``images`` and tile the outputs."""
    _, p, _ = expected_image_shape(patch_system)
    h, w = images.shape[-2:]
    if h % p or w % p:
        raise ValueError(
            f"the patch chip takes {p} x {p} images, which do not tile {h} x {w} inputs; "
            "train it on patches of a divisor of the image side (e.g. printed-digits+patches7)."
        )
    out = reconstruct_batched(patch_system, cut_patches(images, p))
    return tile_patches(out, h // p, w // p)


# ------------------------------------------------------------------ checkpoint checks
def _trained_on(cfg: TrainConfig) -> str:
    return str(getattr(cfg, "dataset", "")).lower().replace("_", "-")


def infer_style(cfg: TrainConfig, style: str | None = None) -> tuple[str, str]:
    """``(style, base data set)`` of a style chip from its training set ``<base>+<style>``."""
    name = _trained_on(cfg)
    base, _, trained_style = name.partition("+")
    try:
        trained_name = parse_style(trained_style)[0]
    except ValueError:
        raise ValueError(
            f"this checkpoint was trained on {name!r}, not on a styled set; train the style chip "
            f"on '<data>+<style>' with style in {STYLE_NAMES} (e.g. --dataset emoji-black+mosaic)."
        ) from None
    if style is not None and style.lower() not in (trained_style, trained_name):
        raise ValueError(
            f"style={style!r} but the checkpoint was trained on {name!r} (style "
            f"{trained_style!r}); pass style={trained_style!r} or the {style!r} chip."
        )
    return trained_style, base


def check_digit_chips(global_system, global_cfg, patch_system: BOGTSystem, patch_cfg) -> int:
    """Validate the global (28 px, printed digits) and patch chips; return the patch side."""
    c, s, _ = expected_image_shape(global_system)
    if (c, s) != (1, DIGIT_SIZE) or _trained_on(global_cfg) != "printed-digits":
        raise ValueError(
            f"the global checkpoint takes {c} x {s} x {s} images and was trained on "
            f"{_trained_on(global_cfg)!r}; digit transfer needs a 1 x 28 x 28 chip trained on "
            "'printed-digits' (e.g. --preset mnist-16f --dataset printed-digits)."
        )
    c, p, _ = expected_image_shape(patch_system)
    want = f"printed-digits+patches{p}"
    if c != 1 or p >= DIGIT_SIZE or DIGIT_SIZE % p or _trained_on(patch_cfg) != want:
        raise ValueError(
            f"the patch checkpoint takes {c} x {p} x {p} images and was trained on "
            f"{_trained_on(patch_cfg)!r}; it must be a grey chip whose side divides 28 (e.g. 7), "
            "trained on 'printed-digits+patches<side>' (e.g. --preset tiny with chip image_size "
            "7 and --dataset printed-digits+patches7)."
        )
    return p


# ------------------------------------------------------------------ data
def printed_targets(labels: torch.Tensor, size: int = DIGIT_SIZE) -> torch.Tensor:
    """The un-jittered printed rendering ``(N, 1, size, size)`` of each digit label."""
    from lightgen.data.procedural import make_printed_digits

    imgs, labs = make_printed_digits(
        10, size, seed=0, max_rotation_deg=0, scale_range=(1, 1), max_shear=0, max_shift_px=0
    )
    glyphs = imgs[labs.argsort()]  # 10 images, one per class: sort to index by label
    return glyphs[labels.long()]


def glyph_match(images: torch.Tensor) -> torch.Tensor:
    """The digit ``(N,)`` whose printed glyph (:func:`printed_targets`) each image matches
    best by Pearson correlation over the pixels.

    Correlation ignores brightness and contrast (a dim or offset output scores like the
    bright one), so this asks only "which printed digit does the output look like?". It is
    the identity score for outputs meant to *be* printed digits, where a classifier trained
    on handwriting is off its domain (it scores the glyphs themselves at 78 %).
    """
    glyphs = printed_targets(torch.arange(10), images.shape[-1]).to(images)
    return pearson(images, glyphs).argmax(1)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation ``(N, M)`` over the pixels between every image of ``a``
    ``(N, ...)`` and every image of ``b`` ``(M, ...)`` (0 where an image is constant)."""

    def unit(x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        x = x - x.mean(1, keepdim=True)
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)

    return unit(a) @ unit(b).T


def load_handwriting(
    n: int, seed: int = 0, data_root: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` MNIST test digits ``(n, 1, 28, 28)``, labels and source; if MNIST is absent,
    elastically distorted printed test digits (``"printed-digits+elastic"``)."""
    from lightgen.data.errors import MissingDataError
    from lightgen.data.registry import load_dataset

    try:
        ds = load_dataset("mnist", root=data_root, split="test", size=DIGIT_SIZE, limit=n)
        return ds.images, ds.labels, "mnist"
    except MissingDataError:
        ds = load_dataset("printed-digits", split="test", size=DIGIT_SIZE, limit=n, seed=seed)
        return elastic_distort(ds.images, seed=seed), ds.labels, "printed-digits+elastic"


def mnist_classifier(data_root: str | None = None, progress: bool = False):
    """The SmallCNN trained on the MNIST train split (cached by :mod:`lightgen.metrics`), or
    ``None`` when MNIST is not on disk (then the digit report has no class accuracy)."""
    from lightgen.data.errors import MissingDataError
    from lightgen.data.registry import load_dataset
    from lightgen.metrics.classifier import load_or_train_classifier

    try:
        train = load_dataset("mnist", root=data_root, split="train", size=DIGIT_SIZE)
    except MissingDataError:
        return None
    return load_or_train_classifier("mnist", train, epochs=3, progress=progress)[0]


# ------------------------------------------------------------------ runs
def save_rows(path: Path, rows: list[torch.Tensor], n_show: int) -> Path:
    """PNG of the first ``n_show`` images of each row, one row per tensor, tiles >= 96 px."""
    k = min(n_show, rows[0].shape[0])
    upscale = max(1, math.ceil(96 / rows[0].shape[-1]))
    return save_png(path, image_grid(torch.cat([r[:k] for r in rows]), k, upscale=upscale))


@torch.no_grad()
def run_style_transfer(
    system: BOGTSystem,
    cfg: TrainConfig,
    out_dir: str | Path,
    style: str | None = None,
    n: int = 64,
    images: torch.Tensor | None = None,
    data_root: str | None = None,
    control=None,
    n_show: int = 8,
    fmt: str = "grid",
) -> dict:
    """Feed held-out *plain* images to a chip trained on styled images; write ``style.json``
    and ``style.png`` (rows: input, chip output, styled target[, control chip output]);
    ``fmt`` ``folder`` / ``npy`` also writes every one of those images
    (:func:`lightgen.tasks.images.write_image_set`, stem ``style``; manifest: role, index).

    Args:
        system, cfg: the style chip (trained on ``<data>+<style>``) and its TrainConfig.
        style: ``mosaic`` / ``painterly`` / ``halftone`` / ``stained-glass`` / ``cartoon``; default (and checked against) the chip's.
        n: held-out images (test split of ``<data>``) when ``images`` is not given.
        images: plain content images ``(B, C, S, S)`` in [0, 1] instead of the test split.
        control: optional ``(system, cfg)`` of a chip trained on the *plain* data: its
            reconstruction shows how much of the change is chip blur, not style.

    Returns:
        the report (also in ``style.json``): ``transfer``, ``baseline`` (the unmodified
        input), ``styled_input`` (the chip on the styled target itself: its own floor),
        optionally ``control``; each with ``psnr_db``, ``ssim``, ``content_loss``,
        ``style_loss``.
    """
    style, base = infer_style(cfg, style)
    n = require_int_range("n", n, 1, fix="Use e.g. n=64 images.")
    check_image_format(fmt)
    c, s, _ = expected_image_shape(system)
    if images is None:
        from lightgen.data.registry import load_dataset

        ds = load_dataset(base, root=data_root or cfg.data_root, split="test", size=s, limit=n)
        images, source = ds.images, f"{base} (test split)"
    else:
        source = "given images"
    plain = check_images(system, images, "images").cpu()
    if plain.min() < 0 or plain.max() > 1:
        raise ValueError("images must be intensities in [0, 1]; clip or rescale them.")
    if control is not None:
        ctrl_sys, ctrl_cfg = control
        if expected_image_shape(ctrl_sys) != (c, s, s) or "+" in _trained_on(ctrl_cfg):
            raise ValueError(
                f"the control chip takes {expected_image_shape(ctrl_sys)} images and was trained "
                f"on {_trained_on(ctrl_cfg)!r}; it must take the style chip's {(c, s, s)} images "
                f"and be trained on the plain data (e.g. {base!r})."
            )
    target = apply_style(style, plain)
    out = reconstruct_batched(system, plain)
    own = reconstruct_batched(system, target)
    net = RandomFeatureNet()
    report_rows = {
        "transfer": image_scores(net, out, plain, target),
        "baseline": image_scores(net, plain, plain, target),
        "styled_input": image_scores(net, own, plain, target),
    }
    rows = [plain, out, target]
    if control is not None:
        ctrl = reconstruct_batched(control[0], plain)
        report_rows["control"] = image_scores(net, ctrl, plain, target)
        rows.append(ctrl)
    out_dir = Path(out_dir)
    png = save_rows(out_dir / "style.png", rows, n_show)
    roles = ["input", "chip output", "styled target", "control chip output"][: len(rows)]
    records = [
        {"role": role, "index": i, "style": style}
        for role, r in zip(roles, rows, strict=True)
        for i in range(r.shape[0])
    ]
    files = write_image_set(out_dir, "style", torch.cat([r.cpu() for r in rows]), records, fmt)
    report = {
        "task": "style",
        "style": style,
        "style_params": {"size": s, **style_params(style, s)},
        "model": cfg.model,
        "preset": cfg.preset,
        "trained_on": cfg.dataset,
        "content": source,
        "n": int(plain.shape[0]),
        "feature_net": _feature_net_doc(),
        **report_rows,
        "control_trained_on": None if control is None else control[1].dataset,
        "style_loss_reduction_pct": _pct(
            report_rows["baseline"]["style_loss"], report_rows["transfer"]["style_loss"]
        ),
        "psnr_gain_db": report_rows["transfer"]["psnr_db"] - report_rows["baseline"]["psnr_db"],
        "grid_rows": roles,
        "files": {"grid": str(png), **files},
    }
    write_json(out_dir / "style.json", report)
    return report


def _pct(before: float, after: float) -> float | None:
    return 100 * (before - after) / before if before > 0 else None


def _feature_net_doc() -> str:
    return (
        f"RandomFeatureNet(seed={FEATURE_NET_SEED}): conv3x3(3->32) ReLU | avgpool2 "
        "conv3x3(32->64) ReLU | avgpool2 conv3x3(64->128) ReLU, He-normal random weights; "
        "content = MSE at layer 3; style = sum over layers of MSE of Gram matrices / (H W)"
    )


@torch.no_grad()
def run_digit_transfer(
    global_chip,
    patch_chip,
    out_dir: str | Path,
    n: int = 256,
    seed: int = 0,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    data_root: str | None = None,
    classifier=None,
    n_show: int = 8,
) -> dict:
    """Handwritten digits -> printed by a global chip and by a patch chip; write
    ``digits.json`` and ``digits.png`` (rows: input, global, patch-wise, printed target).

    Args:
        global_chip, patch_chip: ``(system, cfg)`` pairs (see :func:`check_digit_chips`).
        n: handwritten test digits (MNIST t10k; fallback :func:`load_handwriting`).
        images, labels: given ``(B, 1, 28, 28)`` digits and their labels instead.
        classifier: optional digit classifier (e.g. :func:`mnist_classifier`): adds each
            method's ``class_accuracy`` (is the digit's identity kept?).

    Every method also gets ``glyph_accuracy``: the share of outputs whose best-correlated
    printed glyph is the label's (:func:`glyph_match`), an identity score that needs no
    classifier and is not off its domain on print-like outputs.

    Returns:
        the report: per method (``input`` = non-transfer baseline, ``global``,
        ``patchwise``) the seam ratio, PSNR/SSIM vs the printed rendering of the label,
        content loss vs the input and style loss vs the printed rendering;
        ``chip_on_target``: the same scores for each chip fed the printed target itself
        (content loss there vs the target), the floor its own fidelity sets.
    """
    (gs, gcfg), (ps, pcfg) = global_chip, patch_chip
    p = check_digit_chips(gs, gcfg, ps, pcfg)
    n = require_int_range("n", n, 1, fix="Use e.g. n=256 digits.")
    if images is None:
        images, labels, source = load_handwriting(n, seed, data_root or gcfg.data_root)
    else:
        source = "given images"
        if not isinstance(labels, torch.Tensor) or labels.shape != images.shape[:1]:
            raise ValueError(
                "labels must be a (B,) tensor of digit classes 0-9, one per image, when images "
                "are given (they pick the printed target)."
            )
        if labels.min() < 0 or labels.max() > 9:
            raise ValueError(f"labels range {int(labels.min())}..{int(labels.max())}; use 0-9.")
    x = check_images(gs, images, "images").cpu()
    if x.min() < 0 or x.max() > 1:
        raise ValueError("images must be intensities in [0, 1]; clip or rescale them.")
    target = printed_targets(labels)
    outs = {
        "input": x,
        "global": reconstruct_batched(gs, x),
        "patchwise": patchwise_reconstruct(ps, x),
    }
    net = RandomFeatureNet()
    methods = {
        k: {
            "seam_ratio": seam_ratio(v, p),
            **image_scores(net, v, x, target),
            "glyph_accuracy": float((glyph_match(v) == labels).float().mean()),
        }
        for k, v in outs.items()
    }
    # each chip fed the printed target itself: the best a transfer could look with this chip
    on_target = {
        "global": reconstruct_batched(gs, target),
        "patchwise": patchwise_reconstruct(ps, target),
    }
    floors = {
        k: {"seam_ratio": seam_ratio(v, p), **image_scores(net, v, target, target)}
        for k, v in on_target.items()
    }
    target_acc = None
    if classifier is not None:
        from lightgen.metrics.classifier import predict

        for k, v in outs.items():
            methods[k]["class_accuracy"] = float((predict(classifier, v) == labels).float().mean())
        target_acc = float((predict(classifier, target) == labels).float().mean())
    rows = [outs["input"], outs["global"], outs["patchwise"], target]
    out_dir = Path(out_dir)
    png = save_rows(out_dir / "digits.png", rows, n_show)
    report = {
        "task": "style-digits",
        "content": source,
        "n": int(x.shape[0]),
        "seed": seed,
        "patch_px": p,
        "seams_between_pixels": [[j - 1, j] for j in range(p, DIGIT_SIZE, p)],
        "global_chip": {"preset": gcfg.preset, "trained_on": gcfg.dataset, "image_size": 28},
        "patch_chip": {"preset": pcfg.preset, "trained_on": pcfg.dataset, "image_size": p},
        "target": "un-jittered printed rendering (DejaVu Sans Bold) of each digit's label",
        "feature_net": _feature_net_doc(),
        "methods": methods,
        "chip_on_target": floors,
        "classifier": None if classifier is None else type(classifier).__name__ + " (MNIST train)",
        "target_class_accuracy": target_acc,
        "grid_rows": ["handwritten input", "global chip", "patch-wise chip", "printed target"],
        "files": {"grid": str(png)},
    }
    write_json(out_dir / "digits.json", report)
    return report
