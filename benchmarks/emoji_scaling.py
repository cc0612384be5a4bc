"""Time per BOGT training step and peak memory of the colour emoji chips at 64, 128 and 512 px.

    python benchmarks/emoji_scaling.py [--sizes 64 128 512] [--batch 4] [--steps 3] [--chip JSON]

Each size runs in its own process (so peak RSS is that size's alone): one warm-up step,
then ``--steps`` timed steps of encoder -> fibers -> generator forward + backward + Adam on
random RGB images, RGB as three wavelengths. Prints one line per size:
``size=128 preset=emoji-128 grid=288 neurons=... batch=4 s_per_step=... s_per_image=...
fft_s=... step_over_fft=... peak_rss_mb=...``: ``fft_s`` is the bare FFTs the step performs
(one unpruned forward + inverse FFT pair per hop forward and again backward, on the same
backend, timed in the same process), ``step_over_fft`` the step's ratio to them
and, with ``--checkpointing``, the same with activation checkpointing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

PRESETS = {64: "emoji-64", 128: "emoji-128", 512: "emoji-512"}


def one(size: int, batch: int, steps: int, checkpointing: bool, chip: dict) -> dict:
    import torch

    from lightgen.optics.fft import bare_fft_pair_seconds
    from lightgen.train.config import TrainConfig
    from lightgen.train.trainer import BOGTSystem

    cfg = TrainConfig(
        preset=PRESETS[size],
        batch_size=batch,
        prior="mixture",
        n_components=4,
        activation_checkpointing=checkpointing,
        chip=chip,
    )
    system = BOGTSystem(cfg)
    opt = torch.optim.Adam(system.parameters(), lr=0.01)
    cc = cfg.chip_config()
    x = torch.rand(batch, 3, size, size)
    noise = torch.zeros(batch, cc.latent_dim, dtype=torch.complex64)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        terms, _ = system(x, noise, 1.0, 0.25)
        opt.zero_grad()
        terms.loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    s = sorted(times)[len(times) // 2]
    # the bare FFTs the step performs: every hop of every stack runs one padded FFT pair
    # forward and one backward (only generator 0 runs)
    hops = [h for h in system.model.chip.encoder.stack.hops()]
    hops += system.model.chip.generators[0].stack.hops()
    fft_s = 2 * sum(
        bare_fft_pair_seconds((batch, cc.n_wavelengths, *h.plan.padded_shape)) for h in hops
    )
    return {
        "size": size,
        "preset": PRESETS[size],
        "grid": cc.grid_samples,
        "neurons": cc.neurons()["total"],
        "batch": batch,
        "checkpointing": checkpointing,
        "s_per_step": s,
        "s_per_image": s / batch,
        "fft_s_per_step": fft_s,
        "step_over_fft": s / fft_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 512], choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument(
        "--checkpointing", action="store_true", help="also measure activation checkpointing"
    )
    ap.add_argument(
        "--chip",
        default="{}",
        help="chip overrides as JSON, e.g. '{\"encoder_lens_focal_length_m\": 0.189, ...}'",
    )
    ap.add_argument("--child", nargs=2, metavar=("SIZE", "CKPT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        chip = json.loads(args.chip)
        print(
            json.dumps(one(int(args.child[0]), args.batch, args.steps, args.child[1] == "1", chip))
        )
        return
    for size in args.sizes:
        for ck in [False, True] if args.checkpointing else [False]:
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        str(size),
                        str(int(ck)),
                        "--batch",
                        str(args.batch),
                        "--steps",
                        str(args.steps),
                        "--chip",
                        args.chip,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            r = json.loads(out)
            print(
                f"size={r['size']} preset={r['preset']} grid={r['grid']} neurons={r['neurons']} batch={r['batch']} "
                f"checkpointing={int(r['checkpointing'])} s_per_step={r['s_per_step']:.3f} "
                f"s_per_image={r['s_per_image']:.3f} fft_s={r['fft_s_per_step']:.3f} "
                f"step_over_fft={r['step_over_fft']:.2f} peak_rss_mb={r['peak_rss_mb']:.0f} threads={r['threads']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
