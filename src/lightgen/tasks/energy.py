"""Image quality as a function of the optical energy per image (``lightgen eval --input-power-w``).

A photon-starved camera gives noise, not images. This sweeps the laser power of a trained
chip with a photon-counting camera (``ChipConfig.camera``, model ``device``: QE, shot and
read noise, saturation, ADC) and measures, at each power:

* **reconstruction**: held-out images through SLM -> encoder -> fibers -> generator ->
  camera (posterior mean). Energy per image = laser power on the SLM x camera exposure
  (the laser is the only light source; the learned laser gain is included, so a chip cannot
  buy photons for free; with a constant-power servo, the laser's mean emission per image,
  :func:`laser_emission_factor`). PSNR against the input, and the judge's accuracy (the data set's
  SmallCNN, :func:`lightgen.tasks.evaluate.judge_and_split`) on the reconstructions against
  the true labels;
* **generation** (``n_generated > 0``): latents of P(Z) injected into the fibers at the same
  laser scale; energy per image = the injected optical power x exposure, measured per
  image. FID/KID against held-out images, and how often the judge names the same class as
  for the noise-free image of the same latent;
* the mean photons per camera pixel (expected, before noise) for both.

A noise-free reference (ideal camera) is measured once. The **operating point** is the
lowest energy per reconstruction at which the PSNR is within ``tolerance_db`` (1 dB) of the
noise-free PSNR: the lowest swept point that meets it and a log-linear interpolation
between it and the swept point below. docs/devices.md has the curve and its commands.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from lightgen._checks import require_positive
from lightgen.chip.config import CameraConfig, SLMConfig
from lightgen.metrics.classifier import predict
from lightgen.metrics.fid import generative_scores
from lightgen.metrics.image import psnr
from lightgen.tasks.evaluate import for_classifier, judge_and_split, optical_efficiencies
from lightgen.tasks.generate import reconstruct_batched, sample

if TYPE_CHECKING:
    from lightgen.chip.chip import LightGenChip
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem

#: Columns of the CSV curve, in order.
CURVE_COLUMNS = (
    "laser_power_w",
    "exposure_s",
    "reconstruction_energy_j",
    "reconstruction_photons_per_pixel",
    "reconstruction_psnr_db",
    "reconstruction_judge_accuracy",
    "generation_energy_j",
    "generation_photons_per_pixel",
    "fid",
    "kid_mean",
    "generation_judge_agreement",
)


def parse_powers_w(text: str) -> list[float]:
    """``"1e-12,3e-12"`` -> laser powers in watts (positive, finite), in the given order."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ValueError(
            f"--input-power-w {text!r} names no power; give watts separated by commas, e.g. "
            "--input-power-w 1e-12,1e-11,1e-10."
        )
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(
                f"--input-power-w: {p!r} is not a number; give watts, e.g. 1e-11."
            ) from None
        out.append(require_positive("--input-power-w", v, "Give watts, e.g. 1e-11."))
    return out


def camera_settings(**settings) -> CameraConfig:
    """A photon-counting :class:`CameraConfig` (``model='device'``) from ``settings`` (those
    given as ``None`` keep their defaults); non-physical values raise ``ValueError`` with the
    validator's own message (which names the value and the fix)."""
    from pydantic import ValidationError

    given = {k: v for k, v in settings.items() if v is not None}
    try:
        return CameraConfig(model="device", **given)
    except ValidationError as e:
        msgs = [str(err["msg"]).removeprefix("Value error, ") for err in e.errors()]
        raise ValueError(" ".join(msgs)) from None


def slm_settings(**settings) -> SLMConfig | None:
    """An :class:`SLMConfig` from ``settings`` (``model``, ``bit_depth``, ``fill_factor``;
    ``None`` values keep the defaults), or ``None`` when none is given (the chip's own);
    non-physical values raise ``ValueError`` naming them. A bit depth or fill factor without
    a model means ``model='slm'``."""
    from pydantic import ValidationError

    given = {k: v for k, v in settings.items() if v is not None}
    if not given:
        return None
    given.setdefault("model", "slm")
    try:
        return SLMConfig(**given)
    except ValidationError as e:
        msgs = [str(err["msg"]).removeprefix("Value error, ") for err in e.errors()]
        raise ValueError(" ".join(msgs)) from None


def optical_chip_of(system: BOGTSystem) -> LightGenChip:
    chip = system.model.optical_chip
    if chip is None:
        raise ValueError(
            "the energy sweep needs an all-optical chip (--model chip): in this model the "
            "latent reaches the decoder digitally, so no laser power carries a whole image."
        )
    return chip


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield i, min(size, n - i)


@torch.no_grad()
def _reconstruction_photons(system: BOGTSystem, chip: LightGenChip, x: torch.Tensor) -> float:
    mu, _ = system.model.posterior(x)
    mu = system.with_conditions(mu, None)
    route = system.routing(mu)
    if isinstance(route, int):
        return chip.camera_photons(mu, route).mean().item()
    return _routed_photons(chip, mu, route)


@torch.no_grad()
def laser_emission_factor(chip: LightGenChip, images: torch.Tensor) -> float:
    """Mean laser emission per image in units of the laser power setting: 1 with a fixed
    laser; with ``input_power_control = "constant-power"`` (amplitude encoding) the servo
    makes every image put the set power on the SLM *after* modulation, so the laser emits
    that power divided by the image's transmission (mean grey^2 for an ideal SLM)."""
    from lightgen.chip.chip import image_to_field
    from lightgen.optics.grid import power

    cfg = chip.config
    if cfg.input_power_control != "constant-power" or cfg.input_encoding != "amplitude":
        return 1.0
    fixed = cfg.model_copy(update={"input_power_control": "fixed"})
    passed_w = power(image_to_field(images, fixed, chip.grid), chip.grid).sum(1)  # (B,)
    full_w = cfg.input_power_w * cfg.n_wavelengths
    return (full_w / passed_w.clamp_min(full_w * 1e-12)).mean().item()


def _routed_photons(chip: LightGenChip, z: torch.Tensor, route: torch.Tensor) -> float:
    total, count = 0.0, 0
    for g in route.unique().tolist():
        sel = route == g
        ph = chip.camera_photons(z[sel], int(g))
        total += ph.sum().item()
        count += ph.numel()
    return total / count


@torch.no_grad()
def _generated(system: BOGTSystem, chip: LightGenChip, n: int, seed: int, batch: int):
    """Generated images, per-image injected energy factor (W) and mean photons per pixel."""
    imgs, power_w, photons = [], [], []
    for i, b in _batches(n, batch):
        x, z = sample(system, b, seed=seed + 1 + i)
        imgs.append(x.cpu())
        power_w.append(chip.injected_power_w(z).cpu())
        route = system.routing(z)
        if isinstance(route, int):
            photons.append(chip.camera_photons(z, route).mean().item() * b)
        else:
            photons.append(_routed_photons(chip, z, route) * b)
    return torch.cat(imgs), torch.cat(power_w), sum(photons) / n


def operating_point(rows: list[dict], reference_psnr_db: float, tolerance_db: float = 1.0) -> dict:
    """The lowest energy per reconstruction whose PSNR is within ``tolerance_db`` of
    ``reference_psnr_db``: the lowest swept point that meets it (``energy_j``) and a
    log-linear interpolation in energy between it and the next lower swept point
    (``interpolated_energy_j``); ``None`` values when no swept point meets it."""
    want = reference_psnr_db - tolerance_db
    pts = sorted(rows, key=lambda r: r["reconstruction_energy_j"])
    ok = [i for i, r in enumerate(pts) if r["reconstruction_psnr_db"] >= want]
    out = {
        "rule": f"lowest energy per reconstruction with PSNR >= noise-free - {tolerance_db:g} dB",
        "target_psnr_db": want,
        "energy_j": None,
        "interpolated_energy_j": None,
        "laser_power_w": None,
        "photons_per_pixel": None,
    }
    if not ok:
        return out
    # the lowest point from which every higher energy also meets the target
    i = ok[0]
    while any(r["reconstruction_psnr_db"] < want for r in pts[i:]) and i < len(pts) - 1:
        i += 1
    hit = pts[i]
    out.update(
        energy_j=hit["reconstruction_energy_j"],
        laser_power_w=hit["laser_power_w"],
        photons_per_pixel=hit["reconstruction_photons_per_pixel"],
        interpolated_energy_j=hit["reconstruction_energy_j"],
    )
    if i > 0:
        lo = pts[i - 1]
        q0, q1 = lo["reconstruction_psnr_db"], hit["reconstruction_psnr_db"]
        if q1 > q0:
            t = (want - q0) / (q1 - q0)
            e0, e1 = (
                math.log(lo["reconstruction_energy_j"]),
                math.log(hit["reconstruction_energy_j"]),
            )
            out["interpolated_energy_j"] = math.exp(e0 + t * (e1 - e0))
    return out


def energy_curve(
    system: BOGTSystem,
    cfg: TrainConfig,
    laser_powers_w: Sequence[float],
    camera: CameraConfig | None = None,
    dataset: str | None = None,
    n: int = 500,
    n_generated: int = 0,
    seed: int = 0,
    data_root=None,
    progress: bool = True,
    tolerance_db: float = 1.0,
    batch_size: int = 250,
    reference_psnr_db: float | None = None,
    slm: SLMConfig | None = None,
) -> dict:
    """Quality against optical energy per image (module docstring), as a JSON-able dict with
    ``reference`` (noise-free), ``curve`` (one row per laser power, keys
    :data:`CURVE_COLUMNS`) and ``operating_point`` (:func:`operating_point`).

    ``reference_psnr_db``: judge the operating point against this noise-free PSNR instead
    of this chip's own (e.g. the noise-free-trained chip's, so that a chip that got worse
    without noise cannot reach "within 1 dB" more cheaply). ``slm``: write the inputs of the
    sweep through this modulator (e.g. an 8-bit SLM or a DMD) instead of the chip's own; the
    noise-free reference keeps the chip's own."""
    chip = optical_chip_of(system)
    powers = [
        require_positive("laser_power_w", p, "Give watts, e.g. 1e-11.") for p in laser_powers_w
    ]
    if not powers:
        raise ValueError("give at least one laser power, e.g. --input-power-w 1e-12,1e-11.")
    cam = (camera or CameraConfig()).model_copy(update={"model": "device"})
    cam = CameraConfig(**cam.model_dump())  # validated
    name = dataset or cfg.dataset
    size = chip.config.image_size
    _, test, clf, clf_acc = judge_and_split(
        name, size, data_root, seed, None, "none", progress, cfg.dataset_options(name)
    )
    n = min(int(n), test.images.shape[0])
    if n < 2:
        raise ValueError(f"n={n}: the sweep needs at least 2 held-out images, e.g. --n 500.")
    n_gen = min(int(n_generated), test.images.shape[0])
    real = test.images[:n]
    labels = None if test.labels is None else test.labels[:n]
    real_feats = for_classifier(test.images[: max(n_gen, 2)], clf)
    kid_subset = max(2, min(1000, n_gen // 2))

    def _judge_acc(images: torch.Tensor) -> float | None:
        if labels is None or test.n_classes < 2:
            return None
        return (
            (predict(clf, for_classifier(images, clf)) == labels[: len(images)])
            .float()
            .mean()
            .item()
        )

    def _generation_scores(fake: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """FID/KID of ``fake`` against the held-out images, and the judge's class of each."""
        feats = for_classifier(fake, clf)
        s = generative_scores(real_feats, feats, clf, kid_subset_size=kid_subset, seed=seed)
        return s, predict(clf, feats)

    was_training = system.training
    system.eval()
    try:
        ideal = CameraConfig()  # noise-free reference, scale-free
        with chip.device_settings(camera=ideal):
            rec0 = reconstruct_batched(system, real, batch_size)
            ref = {
                "camera": "ideal (noise-free, continuous)",
                "reconstruction_psnr_db": psnr(rec0, real).item(),
                "reconstruction_judge_accuracy": _judge_acc(rec0),
            }
            if n_gen >= 2:
                fake0, _, _ = _generated(system, chip, n_gen, seed, batch_size)
                s0, ref_classes = _generation_scores(fake0)
                ref.update(fid=s0["fid"], kid_mean=s0["kid_mean"])
        with chip.device_settings(slm=slm):
            emission = laser_emission_factor(chip, real)
            sweep_slm = chip.config.slm
        rows = []
        for j, p_w in enumerate(powers):
            noise = torch.Generator().manual_seed(seed * 1000 + j + 17)
            with chip.device_settings(
                camera=cam, laser_power_w=p_w, noise_generator=noise, slm=slm
            ):
                rec = reconstruct_batched(system, real, batch_size)
                dev = next(system.parameters()).device
                photons = (
                    sum(
                        _reconstruction_photons(system, chip, real[i : i + b].to(dev)) * b
                        for i, b in _batches(n, batch_size)
                    )
                    / n
                )
                row = {
                    "laser_power_w": p_w,
                    "exposure_s": cam.exposure_s,
                    "reconstruction_energy_j": p_w * cam.exposure_s * emission,
                    "reconstruction_photons_per_pixel": photons,
                    "reconstruction_psnr_db": psnr(rec, real).item(),
                    "reconstruction_judge_accuracy": _judge_acc(rec),
                    "generation_energy_j": None,
                    "generation_photons_per_pixel": None,
                    "fid": None,
                    "kid_mean": None,
                    "generation_judge_agreement": None,
                }
                if n_gen >= 2:
                    fake, inj_w, gph = _generated(system, chip, n_gen, seed, batch_size)
                    s, classes = _generation_scores(fake)
                    agree = classes == ref_classes
                    row.update(
                        generation_energy_j=inj_w.mean().item() * cam.exposure_s,
                        generation_photons_per_pixel=gph,
                        fid=s["fid"],
                        kid_mean=s["kid_mean"],
                        generation_judge_agreement=agree.float().mean().item(),
                    )
            rows.append(row)
            if progress:
                print(
                    f"P = {p_w:.3g} W: {row['reconstruction_energy_j']:.3g} J, "
                    f"{photons:.3g} photons/px, PSNR {row['reconstruction_psnr_db']:.2f} dB"
                    + (f", FID {row['fid']:.1f}" if row["fid"] is not None else ""),
                    flush=True,
                )
        with torch.no_grad(), chip.device_settings(camera=CameraConfig()):
            dev = next(system.parameters()).device
            efficiencies = optical_efficiencies(system, real[:64].to(dev))
    finally:
        system.train(was_training)
    return {
        "dataset": name,
        "preset": cfg.preset,
        "n_reconstructed": n,
        "n_generated": n_gen if n_gen >= 2 else 0,
        "seed": seed,
        "camera": cam.model_dump(),
        "slm": sweep_slm.model_dump(),
        "trained_slm": chip.config.slm.model_dump(),
        "trained_camera": chip.config.camera.model_dump(),
        "trained_laser_power_w": chip.laser_power_w,
        "wavelengths_m": list(chip.config.wavelengths_m),
        "judge_accuracy_on_real_test": float(clf_acc),
        # where the laser's light goes (first 64 held-out images, as lightgen eval reports)
        **efficiencies,
        "laser_emission_factor": emission,
        "energy_rule": (
            "reconstruction: laser power on the SLM (learned gain included) x exposure "
            "(x laser_emission_factor: with a constant-power servo the laser emits the set "
            "power / the image's SLM transmission); "
            "generation: optical power injected into the fibers x exposure, mean per image"
        ),
        "reference": ref,
        "curve": rows,
        "operating_point": {
            **operating_point(
                rows,
                ref["reconstruction_psnr_db"] if reference_psnr_db is None else reference_psnr_db,
                tolerance_db,
            ),
            "reference_psnr_db": (
                ref["reconstruction_psnr_db"] if reference_psnr_db is None else reference_psnr_db
            ),
            "reference_from": "this chip, ideal camera"
            if reference_psnr_db is None
            else "given (reference_psnr_db)",
        },
    }


def curve_csv(report: dict) -> str:
    """The ``curve`` rows of :func:`energy_curve` as CSV text (empty cells for ``None``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CURVE_COLUMNS)
    for r in report["curve"]:
        w.writerow(["" if r[k] is None else repr(float(r[k])) for k in CURVE_COLUMNS])
    return buf.getvalue()


def energy_figure(curves: Sequence[tuple[str, dict]]):
    """PSNR of reconstructions against optical energy per reconstruction (log axis), one line
    per ``(label, report)`` of :func:`energy_curve`, each with its noise-free PSNR (dashed) and
    operating point (marker); photons per camera pixel on the top axis of the first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, rep) in enumerate(curves):
        rows = sorted(rep["curve"], key=lambda r: r["reconstruction_energy_j"])
        e = [r["reconstruction_energy_j"] for r in rows]
        q = [r["reconstruction_psnr_db"] for r in rows]
        (line,) = ax.semilogx(e, q, "o-", label=label, color=f"C{i}")
        ref = rep["reference"]["reconstruction_psnr_db"]
        ax.axhline(ref, ls="--", lw=1, color=line.get_color())
        op = rep["operating_point"]
        if op.get("interpolated_energy_j") is not None:
            ax.plot(op["interpolated_energy_j"], op["target_psnr_db"], "*", ms=14,
                    color=line.get_color())  # fmt: skip
            ax.axhline(op["target_psnr_db"], ls=":", lw=1, color="grey")
    first = sorted(curves[0][1]["curve"], key=lambda r: r["reconstruction_energy_j"])
    per_j = first[-1]["reconstruction_photons_per_pixel"] / first[-1]["reconstruction_energy_j"]
    top = ax.secondary_xaxis("top", functions=(lambda x: x * per_j, lambda p: p / per_j))
    top.set_xlabel(f"mean photons per camera pixel ({curves[0][0]})")
    ax.set_xlabel("optical energy per reconstruction (J): laser power on the SLM x exposure")
    ax.set_ylabel("reconstruction PSNR (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(
        loc="lower right",
        fontsize=8,
        title="dashed: noise-free (ideal camera); star: within 1 dB",
        title_fontsize=8,
    )
    fig.tight_layout()
    return fig
