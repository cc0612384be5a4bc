"""What ``padding="auto"`` costs in a scan over distances, against an explicit padding.

``"auto"`` plans the exact windowed kernel (``padding="linear"``) whenever it is about as
small as the periodised plan; that kernel is built on a fine lattice once per
wavelength and distance (cached for a few recent geometries), so a scan over many
distances pays it at every new ``z``. An explicit padding (here ``N``) builds the
periodised transfer function instead. Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/padding_cost.py --n 256 --distances 5
"""

from __future__ import annotations

import argparse
import time

import torch

from lightgen.optics.grid import Grid
from lightgen.optics.propagation import plan_propagation, propagate


def seconds_per_distance(n: int, padding, distances_m: list[float]) -> float:
    grid = Grid((n, n), 8e-6, (532e-9,))
    field = torch.randn(
        1, 1, n, n, dtype=torch.complex64, generator=torch.Generator().manual_seed(0)
    )
    t0 = time.perf_counter()
    for z in distances_m:
        propagate(field, grid, z, padding=padding)
    return (time.perf_counter() - t0) / len(distances_m)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="grid samples per side (8 um pitch)")
    ap.add_argument("--distances", type=int, default=5, help="distances 10, 11, ... mm")
    args = ap.parse_args(argv)
    zs = [10e-3 + 1e-3 * i for i in range(args.distances)]
    grid = Grid((args.n, args.n), 8e-6, (532e-9,))
    auto = seconds_per_distance(args.n, "auto", zs)
    explicit = seconds_per_distance(args.n, args.n, zs)
    linear = plan_propagation(grid, zs[0]).linear
    print(f"N = {args.n}, 532 nm, 8 um, z = 10..{10 + args.distances - 1} mm")
    print(f"padding='auto' (windowed kernel: {linear}): {auto:.3g} s per distance")
    print(f"padding={args.n} (periodised):              {explicit:.3g} s per distance")
    print(f"ratio: {auto / explicit:.3g}")


if __name__ == "__main__":
    main()
