"""How far a trained generator spreads each fiber's light across the camera.

For every fiber, the generator is driven with that fiber alone (unit latent on every
wavelength), and the camera-plane intensity (summed over wavelengths, before the
camera's gain/offset) is split into the fibers' cells: the square window cut into a
``side x side`` grid, one cell per fiber position (square layouts). ``own_cell`` is the
mean fraction of a fiber's light that lands in its own cell: ``1 / n_fibers`` when
the generator spreads every fiber over the whole image, near 1 when it only images the
fiber array. Run from the repository root::

    python benchmarks/fiber_mixing.py runs/cond/emoji-512-cond-a5-b100-s2400 \
        runs/results/emoji-black-emoji-512-chip-mixture runs/results/emoji-black-emoji-64-chip-mixture

An untrained chip of the same preset is printed beside each run (``untrained``).
"""

from __future__ import annotations

import argparse
import math

import torch

from lightgen.chip.chip import LightGenChip
from lightgen.optics.grid import intensity
from lightgen.train.trainer import load_trained


def own_cell_fraction(chip: LightGenChip) -> tuple[float, float]:
    """(mean, min) over fibers of the fraction of its camera-plane light in its own cell."""
    cfg = chip.config
    side = math.isqrt(cfg.n_fibers)
    if side * side != cfg.n_fibers or cfg.fiber_layout != "square":
        raise ValueError(f"{cfg.n_fibers} fibers in a {cfg.fiber_layout} layout: need a square")
    unit = math.sqrt(cfg.generator_power_w / cfg.n_fibers)
    m = cfg.n_fibers
    c = torch.zeros(m, cfg.n_wavelengths, m, dtype=torch.complex64)
    c[torch.arange(m), :, torch.arange(m)] = unit
    with torch.no_grad():
        field = chip.fibers.emit(chip.fibers.transmit(c))
        plane = intensity(chip.generators[0].stack(field)).sum(1)  # (M, S, S)
    s = plane.shape[-1]
    cell = s // side
    cells = plane[:, : cell * side, : cell * side].reshape(m, side, cell, side, cell).sum((2, 4))
    cells = cells.flatten(1) / plane.sum((1, 2))[:, None]
    own = cells[torch.arange(m), torch.arange(m)]  # fiber k (row-major) sits in cell k
    return own.mean().item(), own.min().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained run folders (or step folders)")
    for run in parser.parse_args().runs:
        system, cfg = load_trained(run)
        chip = system.model.optical_chip
        if chip is None:
            print(f"{run}: not an optical chip ({type(system.model).__name__}); skipped")
            continue
        torch.manual_seed(0)
        fresh = LightGenChip(chip.config)
        (t_mean, t_min), (u_mean, _) = own_cell_fraction(chip), own_cell_fraction(fresh)
        print(
            f"{run} preset={cfg.preset} fibers={chip.config.n_fibers} "
            f"own_cell={t_mean:.2f} (min {t_min:.2f}) untrained={u_mean:.2f} "
            f"uniform={1 / chip.config.n_fibers:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
