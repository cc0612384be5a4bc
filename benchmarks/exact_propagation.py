"""Trained chips under exact propagation: the default planner against ``padding='linear'``.

A chip trained with the default ``"auto"`` planner (periodised kernels with a guard band,
docs/physics.md) is rebuilt with ``ChipConfig.propagation_padding = "linear"`` (the
windowed impulse response: exact open-boundary propagation) and the same weights; both
reconstruct the first 16 test images. If the optimiser had learned to use the wrapped
tail of the periodised kernel, the two would disagree. Run from the repository root::

    python benchmarks/exact_propagation.py runs/results/mnist-mnist-16f-chip-mixture:mnist \
        runs/results/emoji-black-emoji-64-chip-mixture:emoji-black:64

Each argument is ``RUN:DATASET[:SIZE]``; prints the relative L2 difference of the camera
images and the reconstruction PSNR of each.
"""

from __future__ import annotations

import argparse
import math

import torch

from lightgen.data import load_dataset
from lightgen.tasks.generate import reconstruct
from lightgen.train.trainer import BOGTSystem, load_trained


def compare(run: str, dataset: str, size: int | None, n: int = 16) -> str:
    default, cfg = load_trained(run)
    exact_cfg = cfg.model_copy(update={"chip": {**cfg.chip, "propagation_padding": "linear"}})
    exact = BOGTSystem(exact_cfg)
    exact.load_state_dict(default.state_dict())  # same weights; kernels are not state
    exact.eval()
    kw = {} if size is None else {"size": size}
    x = load_dataset(dataset, split="test", **kw).images[:n]
    with torch.no_grad():
        y_default, y_exact = reconstruct(default, x), reconstruct(exact, x)

    def psnr(y: torch.Tensor) -> float:
        return 10 * math.log10(1 / ((y - x) ** 2).mean().item())

    rel = ((y_default - y_exact).norm() / y_exact.norm()).item()
    return (
        f"{run} rel_diff={rel:.2e} psnr_default={psnr(y_default):.2f} "
        f"psnr_linear={psnr(y_exact):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN:DATASET[:SIZE]")
    for arg in parser.parse_args().runs:
        run, dataset, *size = arg.split(":")
        print(compare(run, dataset, int(size[0]) if size else None), flush=True)


if __name__ == "__main__":
    main()
