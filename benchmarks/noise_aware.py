"""Noise-aware fine-tuning: train with the camera's noise and bit depth in the loop at a stated
laser power, and compare the energy per reconstruction that the same quality then needs.

Usage (from the repository root)::

    python benchmarks/noise_aware.py --checkpoint RUN --out runs/noise-aware \\
        --train-power-w 3e-10 --steps 400 --powers 1e-10,2e-10,3e-10,5e-10,1e-9,2e-9

1. loads the noise-free-trained chip of ``RUN``;
2. fine-tunes a copy (``lightgen.train.trainer.Trainer``, same objective and data) with
   ``chip.camera = device`` (shot and read noise, ADC; a Gaussian shot-noise surrogate carries
   the gradient) and the laser delivering ``--train-power-w`` on the SLM. The learned laser
   gain is frozen with a photon-counting camera, so training cannot buy photons; the
   camera's gain/offset stay per-channel scalars (no per-pixel offset to hide noise);
3. sweeps both chips over ``--powers`` (``lightgen.tasks.energy.energy_curve``, the code of
   ``lightgen eval --input-power-w``) and prints, for each, the energy per reconstruction at
   which the PSNR is within 1 dB of the **noise-free-trained chip's** noise-free PSNR, and
   their ratio (the issue's goal: >= 2).

Writes ``<out>/noise-aware.json`` with both curves and ``<out>/noise-aware.png`` (PSNR against
energy per reconstruction, both chips). The fine-tuned run folder is
``<out>/run`` (a normal run: ``lightgen eval --checkpoint <out>/run --input-power-w ...``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from lightgen._io import atomic_write_text
from lightgen.tasks.energy import camera_settings, energy_curve, energy_figure, parse_powers_w
from lightgen.tasks.images import save_figure
from lightgen.train.config import load_train_config
from lightgen.train.data import train_split
from lightgen.train.trainer import Trainer, load_trained


def noise_aware_config(cfg, laser_gain: float, train_power_w: float, camera, steps: int, lr):
    """``cfg`` with the photon-counting ``camera`` and the laser delivering ``train_power_w``
    (``input_power_w = generator_power_w = train_power_w / exp(laser_gain)``)."""
    nominal_w = train_power_w / math.exp(laser_gain)
    chip = {
        **cfg.chip,
        "camera": camera.model_dump(),
        "input_power_w": nominal_w,
        "generator_power_w": nominal_w,
    }
    data = cfg.model_dump(mode="json")
    data.update(chip=chip, steps=steps, lr=lr if lr is not None else cfg.lr)
    return load_train_config(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="the noise-free-trained chip's run")
    ap.add_argument("--out", required=True, help="folder for the fine-tuned run and the JSON")
    ap.add_argument("--train-power-w", type=float, required=True, help="laser power in training")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=None, help="default: the run's own")
    ap.add_argument("--powers", required=True, help="laser powers to sweep, W, comma-separated")
    ap.add_argument("--n", type=int, default=500, help="held-out images per power")
    ap.add_argument("--exposure-s", type=float, default=None)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        powers = parse_powers_w(args.powers)
        camera = camera_settings(exposure_s=args.exposure_s)
        base, cfg = load_trained(args.checkpoint)
        if args.data_root is not None:
            cfg = cfg.model_copy(update={"data_root": args.data_root})
        chip = base.model.optical_chip
        if chip is None:
            raise ValueError("--checkpoint must hold an all-optical chip (--model chip).")
        gain = float(chip.laser_log_power_gain.detach())
        ncfg = noise_aware_config(cfg, gain, args.train_power_w, camera, args.steps, args.lr)
        run = Path(args.out) / "run"
        size = ncfg.chip_config().image_size
        ds = train_split(ncfg, ncfg.dataset, size)
        resume = (run / "checkpoints").is_dir()
        trainer = Trainer(ncfg, run, ds.images, resume=resume)
        if trainer.step == 0:  # fine-tune: start from the noise-free-trained weights
            trainer.system.load_state_dict(base.state_dict())
        trainer.run()
        tuned, tcfg = load_trained(run)
        ref = energy_curve(base, cfg, powers, camera, n=args.n, data_root=cfg.data_root)
        ref_psnr = ref["reference"]["reconstruction_psnr_db"]
        new = energy_curve(
            tuned,
            tcfg,
            powers,
            camera,
            n=args.n,
            data_root=cfg.data_root,
            reference_psnr_db=ref_psnr,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    e0 = ref["operating_point"]["interpolated_energy_j"]
    e1 = new["operating_point"]["interpolated_energy_j"]
    ratio = None if e0 is None or e1 is None else e0 / e1
    report = {
        "checkpoint": str(args.checkpoint),
        "train_power_w": args.train_power_w,
        "steps": args.steps,
        "lr": ncfg.lr,
        "noise_free_trained": ref,
        "noise_aware": new,
        "energy_ratio_noise_free_over_noise_aware": ratio,
    }
    out = Path(args.out) / "noise-aware.json"
    atomic_write_text(out, json.dumps(report, indent=1))
    fig = energy_figure(
        [
            ("noise-free-trained chip", ref),
            (f"noise-aware, trained at {args.train_power_w:g} W, {args.steps} steps", new),
        ]
    )
    save_figure(out.with_suffix(".png"), fig)
    for name, r in (("noise-free-trained", ref), ("noise-aware", new)):
        op = r["operating_point"]
        print(
            f"{name}: noise-free PSNR {r['reference']['reconstruction_psnr_db']:.2f} dB; "
            f"target {op['target_psnr_db']:.2f} dB reached at "
            + (
                "no swept power"
                if op["energy_j"] is None
                else f"{op['energy_j']:.3g} J (interpolated {op['interpolated_energy_j']:.3g} J, "
                f"{op['photons_per_pixel']:.3g} photons/px)"
            )
        )
        for row in r["curve"]:
            print(
                f"  {row['reconstruction_energy_j']:.3g} J  {row['reconstruction_photons_per_pixel']:.3g} "
                f"photons/px  PSNR {row['reconstruction_psnr_db']:.2f} dB  judge "
                f"{row['reconstruction_judge_accuracy']:.3f}"
            )
    print(
        "energy ratio (noise-free-trained / noise-aware): "
        + ("n/a" if ratio is None else f"{ratio:.2f}x (goal >= 2x)")
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
