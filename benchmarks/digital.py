"""Measure the digital side: the chip's function computed on this CPU (or a GPU), per image.

Usage (from the repository root)::

    python benchmarks/digital.py                      # paper preset, CPU
    python benchmarks/digital.py --device cuda        # on a GPU
    python benchmarks/digital.py --preset tiny --quick
    python benchmarks/digital.py --json results.json

What it times (per generated image, at the design's resolution and wavelengths):

1. **dense equivalent**: one counted hop as a complex matrix times a batch of vectors,
   at N = 1024 .. 4096 (a 262,144^2 complex64 matrix is 550 GB), then scaled by the
   number of matrix entries (matrix-vector cost is linear in them) to the design's
   conservative and naive multiply-add counts;
2. **FFT convolution**: every free-space hop at full size as the simulator computes it
   (zero-pad, FFT, transfer function, inverse FFT, crop, phase mask), plus the fiber
   coupling/emission as dense (N x n_fibers) products;
3. **digital decoder** (HOOK): any ``torch.nn.Module`` through
   ``lightgen.hardware.digital.time_decoder``; by default the digital VAE baseline's
   decoder if ``lightgen.baselines.digital_vae`` is present.

Energy = time x an assumed power (``--cpu-power-w``, default a TDP share: threads x
280 W / 64 cores; ``--gpu-power-w``, default the A100's 400 W TDP). Printed side by
side with the optical model (``lightgen.hardware.perf``) and the A100's peak figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import torch

from lightgen.chip.design import preset_design
from lightgen.chip.presets import PAPER_PRESET
from lightgen.hardware.counting import count_operations
from lightgen.hardware.design import ChipDesign
from lightgen.hardware.devices import A100
from lightgen.hardware.digital import (
    Timing,
    cpu_description,
    cpu_power_w,
    dense_equivalent_flops,
    fft_chip_flops,
    scale_dense_timing,
    time_asm_hop,
    time_decoder,
    time_dense_hop,
)
from lightgen.hardware.perf import PerfAssumptions, paper_assumptions, performance
from lightgen.hardware.report import fmt
from lightgen.optics.grid import Grid
from lightgen.optics.propagation import plan_propagation


def fft_hops(design: ChipDesign) -> Counter:
    """Count the distinct ``(shape, padded_shape)`` FFT hops of one frame (one generator)."""
    lam = max(design.wavelengths_m)
    hops: Counter = Counter()

    def add(spec, z: float, times: int = 1) -> None:
        plan = plan_propagation(Grid((spec.n_y, spec.n_x), spec.pixel_pitch_m, (lam,)), z)
        hops[((spec.n_y, spec.n_x), plan.padded_shape)] += times

    enc, gen = design.encoder_layers, design.generator_layers
    for k, z in enumerate(design.encoder_distances_m):
        add(enc[min(k, len(enc) - 1)], z)
    for k, z in enumerate(design.generator_distances_m):
        add(gen[min(k, len(gen) - 1)], z, design.n_generators)
    return hops


def measure(design: ChipDesign, args: argparse.Namespace) -> dict:
    dev = torch.device(args.device)
    rows: list[dict] = []
    power = args.gpu_power_w if dev.type == "cuda" else args.cpu_power_w
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_description()

    def row(name: str, seconds: float, note: str) -> None:
        rows.append(
            {
                "implementation": name,
                "device": where,
                "seconds_per_image": seconds,
                "energy_j_per_image": seconds * power,
                "images_per_s": 1 / seconds,
                "note": note,
            }
        )

    # 1. dense equivalent, timed small, scaled by matrix entries
    dense: list[Timing] = []
    for n in args.dense_n:
        t = time_dense_hop(n, n, batch=args.batch, repeats=args.repeats, device=dev)
        dense.append(t)
        print(
            f"  dense {n}x{n} complex64: {t.seconds_per_image * 1e3:.3f} ms per vector",
            file=sys.stderr,
        )
    ref, n_ref = dense[-1], args.dense_n[-1]
    for rule in ("conservative", "naive"):
        macs = count_operations(design, rule).macs_per_frame
        row(
            f"dense equivalent ({rule})",
            scale_dense_timing(ref, n_ref * n_ref, macs),
            f"{macs:.3e} complex MACs; timed at N={n_ref}, scaled x{macs / n_ref**2:.3g} (linear in entries)",
        )

    # 2. FFT convolution at full size (all wavelengths at once)
    total = 0.0
    for (shape, padded), count in fft_hops(design).items():
        t = time_asm_hop(
            shape, padded, design.n_wavelengths, batch=1, repeats=args.repeats, device=dev
        )
        print(f"  {t.label} x{count}: {t.seconds_per_image * 1e3:.2f} ms", file=sys.stderr)
        total += count * t.seconds_per_image
    last_enc = design.encoder_layers[-1].neurons
    first_gen = design.generator_layers[0].neurons
    couple = time_dense_hop(
        last_enc, design.n_fibers, batch=design.n_wavelengths, repeats=args.repeats, device=dev
    )
    emit = time_dense_hop(
        design.n_fibers, first_gen, batch=design.n_wavelengths, repeats=args.repeats, device=dev
    )
    total += design.n_wavelengths * (
        couple.seconds_per_image + design.n_generators * emit.seconds_per_image
    )
    row(
        "FFT convolution (the simulator's way)",
        total,
        f"{fft_chip_flops(design):.3e} FLOPs counted",
    )

    # 3. HOOK: a digital decoder (any nn.Module). Default: the digital VAE baseline.
    decoder, in_shape = build_decoder(design, args)
    if decoder is not None:
        t = time_decoder(decoder, in_shape, batch=args.batch, repeats=args.repeats, device=dev)
        n_params = sum(p.numel() for p in decoder.parameters())
        row(
            f"digital decoder ({type(decoder).__name__})",
            t.seconds_per_image,
            f"{n_params:,} parameters",
        )
    return {"device": where, "assumed_power_w": power, "rows": rows}


def build_decoder(design: ChipDesign, args: argparse.Namespace):
    """HOOK: return ``(decoder_module, input_shape)`` or ``(None, None)``.

    Replace or extend this to time another decoder at the design's resolution.
    """
    if args.decoder == "none":
        return None, None
    try:
        from lightgen.baselines.digital_vae import DigitalVAE, hidden_for_budget
    except ImportError:
        print("  (no lightgen.baselines.digital_vae: decoder row skipped)", file=sys.stderr)
        return None, None
    channels = design.n_wavelengths
    size = design.camera_shape[0]
    latent = design.n_fibers * design.n_wavelengths
    budget = design.neurons()["total"]  # one trainable phase per neuron
    hidden = hidden_for_budget(channels, size, latent, budget)
    vae = DigitalVAE(channels, size, latent, hidden)
    return vae.dec, (latent,)


def optical_rows(design: ChipDesign, preset: str) -> list[dict]:
    out = []
    cases = [("device class: slm", PerfAssumptions(), design.replace(input_device="slm"))]
    cases.append(("device class: dmd", PerfAssumptions(), design.replace(input_device="dmd")))
    if preset == PAPER_PRESET:
        cases.insert(0, ("paper, inferred rate/power", paper_assumptions(design), design))
    for label, a, d in cases:
        r = performance(d, a)
        out.append(
            {
                "implementation": f"LightGen chip ({label})",
                "seconds_per_image": 1 / r.frame_rate_hz,
                "energy_j_per_image": r.energy_per_frame_j,
                "images_per_s": r.frame_rate_hz,
                "note": f"{fmt(r.tops())} TOPS, {fmt(r.tops_per_w())} TOPS/W, {fmt(r.total_power_w)} W",
            }
        )
    peak16, peak32 = A100.peak_ops_per_s("fp16"), A100.peak_ops_per_s("fp32")
    dense = dense_equivalent_flops(design, "conservative")
    fft = fft_chip_flops(design)
    out.append(
        {
            "implementation": "A100 peak, dense equivalent (FP16)",
            "seconds_per_image": dense / peak16,
            "energy_j_per_image": dense / peak16 * A100.power_w,
            "images_per_s": peak16 / dense,
            "note": "datasheet peak: a lower bound on time",
        }
    )
    out.append(
        {
            "implementation": "A100 peak, FFT convolution (FP32)",
            "seconds_per_image": fft / peak32,
            "energy_j_per_image": fft / peak32 * A100.power_w,
            "images_per_s": peak32 / fft,
            "note": "datasheet peak: a lower bound on time",
        }
    )
    return out


def print_table(rows: list[dict]) -> None:
    header = ["implementation", "s / image", "J / image", "images / s", "note"]
    cells = [
        [
            r["implementation"],
            fmt(r["seconds_per_image"]),
            fmt(r["energy_j_per_image"]),
            fmt(r["images_per_s"]),
            r["note"],
        ]
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [header, *cells]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print("| " + " | ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--preset",
        default="paper",
        help="chip preset (lightgen.chip.presets: paper, tiny, mnist, ...)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--dense-n", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cpu-power-w", type=float, default=None, help="default: threads x 280 W / 64")
    p.add_argument("--gpu-power-w", type=float, default=A100.power_w)
    p.add_argument("--decoder", choices=("vae", "none"), default="vae")
    p.add_argument("--quick", action="store_true", help="dense N up to 1024, one repeat")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.quick:
        args.dense_n, args.repeats, args.batch = [256, 1024], 1, 2
    if args.cpu_power_w is None:
        args.cpu_power_w = cpu_power_w()
    design = preset_design(args.preset)
    print(
        f"design {design.name}: {design.neurons()['total']:,} neurons, {design.n_wavelengths} wavelength(s)"
    )
    print(f"timing on {args.device} (progress on stderr) ...")
    measured = measure(design, args)
    rows = optical_rows(design, args.preset) + measured["rows"]
    print(
        f"\nassumed power while computing: {fmt(measured['assumed_power_w'])} W on {measured['device']}\n"
    )
    print_table(rows)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {"design": design.name, "args": vars(args), "rows": rows, **measured}, fh, indent=2
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
