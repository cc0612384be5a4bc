"""Free-space propagation benchmark: our time vs the FFT-only lower bound, and accuracy.

Run from the repository root::

    python benchmarks/propagation.py            # N = 256, 512, 1024 (~5-8 min on 2 cores)
    python benchmarks/propagation.py --quick    # N = 256, 512, fewer repeats (< 2 min)
    python benchmarks/propagation.py --peers    # + torchoptics on W2 at N = 512, if installed

Workloads (batch 8, complex64, lambda 532 nm, pitch 8 um, 5 cm per hop, planner 'auto'):

* ``W1``: one band-limited ASM propagation, forward only (``FreeSpace`` under no_grad);
* ``W2``: five phase masks, each followed by a 5 cm hop, then the intensity; forward +
  backward w.r.t. the masks.

Per workload and size, one line::

    W2 N=512 ms=... bound_ms=... best_bound_ms=... ratio=... err=... backend=default:pyfftw ...

Three variants per workload: ``default:<backend>`` (what a user gets: the ``auto`` FFT
backend, pyfftw on CPU when installed), ``torch`` (``torch.fft`` forced) and, for W2,
``<backend>-unfused`` (mask multiplied separately instead of fused into the padding).

* ``bound_ms``: the same number of bare ``torch.fft`` calls the workload performs (W1: 2,
  W2: 5 layers x (2 forward + 2 backward) = 20) on the planner's padded grid;
* ``best_bound_ms``: that FFT count with the fastest FFT found on this machine: a planned
  in-place pyFFTW object (FFTW_MEASURE, threads = torch threads) or ``scipy.fft`` with
  ``workers`` -- both measured, the faster is used (``best=`` says which);
* ``ratio = ms / bound_ms``; ``ratio_best = ms / best_bound_ms``;
* ``err``: relative L2 error of the output intensity (batch item 0) against a complex128
  run on a 4N x 4N window (same pitch; the N x N mask apertures applied at every layer),
  zero-padded to max(8.5 N, 6144) samples (:func:`reference_period`).

With the library's default tail tolerance (1e-5) the planner picks the exact
``padding='linear'`` plan (windowed impulse response on the 2N-1 grid) at every size here.
A ``chip:<backend>`` line per workload times the chips' looser setting
(``FAST_TAIL_TOLERANCE`` = 2e-3, ``ChipConfig.propagation_tail_tolerance``: periodised,
smaller grids at N >= 512) in the same rounds, with bounds on its own grid.

Other people share the CPU: every round times each variant once, in turn, and medians
over rounds are reported, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np
import scipy.fft
import torch

from lightgen.optics import fft as lfft
from lightgen.optics.grid import Grid, intensity
from lightgen.optics.propagation import FAST_TAIL_TOLERANCE, FreeSpace

WAVELENGTH_M = 532e-9
PITCH_M = 8e-6
DISTANCE_M = 5e-2
BATCH = 8
LAYERS = 5


# --------------------------------------------------------------------------- timing


MINIMA: dict[str, float] = {}  # fastest round per callable of the last call (ms)


def interleaved_medians(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median wall time (ms) of each callable, timed in turn inside every round.

    Also leaves the fastest round of each in ``MINIMA``: with other jobs on the cores,
    min/min is the steadier estimate of the uncontended ratio.
    """
    for fn in fns.values():  # warm-up: plans, caches, first-touch page faults
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    MINIMA.clear()
    MINIMA.update({k: min(v) for k, v in times.items()})
    return {k: statistics.median(v) for k, v in times.items()}


def fft_bound_fns(padded: tuple[int, int], count: int, threads: int):
    """Callables doing ``count`` 2-D FFTs of (BATCH, 1, Hp, Wp) complex64 three ways."""
    shape = (BATCH, 1, *padded)
    x = torch.randn(shape, dtype=torch.complex64)

    def torch_bound():
        for _ in range(count // 2):  # forward + inverse pairs, unscaled like our path
            torch.fft.fft2(x, norm="backward")
            torch.fft.ifft2(x, norm="forward")

    fns = {"bound": torch_bound}
    if lfft.pyfftw_available():
        import pyfftw

        buf = pyfftw.empty_aligned(shape, dtype="complex64")
        fwd = pyfftw.FFTW(buf, buf, axes=(-2, -1), flags=("FFTW_MEASURE",), threads=threads)
        inv = pyfftw.FFTW(
            buf,
            buf,
            axes=(-2, -1),
            direction="FFTW_BACKWARD",
            flags=("FFTW_MEASURE",),
            threads=threads,
        )
        buf[:] = x.numpy()  # planning with FFTW_MEASURE scribbles on the buffer

        def fftw_bound():
            for _ in range(count // 2):
                fwd.execute()
                inv.execute()

        fns["fftw"] = fftw_bound
    xn = x.numpy()

    def scipy_bound():
        for _ in range(count // 2):
            y = scipy.fft.fft2(xn, workers=threads)
            scipy.fft.ifft2(y, workers=threads, norm="forward", overwrite_x=True)

    fns["scipy"] = scipy_bound
    return fns


# --------------------------------------------------------------------------- workloads


def make_inputs(n: int, seed: int = 0, white: bool = False):
    """Input amplitudes and the W2 phase masks (uniform in [0, 2 pi), one per sample).

    The input is image-like by default -- a random 32 x 32 image, nearest-upsampled to
    N x N like an encoded digit -- or, with ``white``, random per sample: a flat
    spectrum up to Nyquist, the worst case for any finite window (docs/performance.md).
    """
    gen = torch.Generator().manual_seed(seed)
    if white:
        amplitude = torch.rand(BATCH, 1, n, n, generator=gen)
    else:
        coarse = torch.rand(BATCH, 1, 32, 32, generator=gen)
        amplitude = torch.nn.functional.interpolate(coarse, size=(n, n), mode="nearest")
    field = amplitude.to(torch.complex64)
    masks = [2 * math.pi * torch.rand(n, n, generator=gen) for _ in range(LAYERS)]
    return field, masks


def w1_fn(fs: FreeSpace, field: torch.Tensor):
    def run():
        with torch.no_grad():
            return fs(field)

    return run


def w2_forward(
    fs: FreeSpace, field: torch.Tensor, masks: list[torch.Tensor], fused: bool = True
) -> torch.Tensor:
    u = field
    for phase_rad in masks:
        if fused:  # the mask applied while zero-padding (FreeSpace's phase_rad argument)
            u = fs(u, phase_rad=phase_rad)
        else:  # the generic composition: a separate multiply, then the hop
            u = fs(u * torch.polar(torch.ones_like(phase_rad), phase_rad))
    return intensity(u)


def w2_fn(fs: FreeSpace, field: torch.Tensor, masks: list[torch.Tensor], fused: bool = True):
    params = [m.clone().requires_grad_() for m in masks]

    def run():
        camera = w2_forward(fs, field, params, fused)
        camera.mean().backward()
        for p in params:
            p.grad = None
        return camera

    return run


REFERENCE_MIN_PERIOD = 6144
"""Smallest FFT size of the reference (samples per axis)."""


def reference_period(n: int) -> int:
    """FFT size of the reference: the 4N window zero-padded to at least 8.5 N and 6144.

    Its periodic copies of the impulse response then sit ``period - N`` (>= 7.5 N) away,
    and the period never equals the ``8N`` fine lattice of ``padding='linear'``, so the
    two do not share their (tiny) aliasing error.
    """
    return lfft.next_fast_size(max(17 * n // 2, REFERENCE_MIN_PERIOD), 4)


def reference_intensity(
    field: torch.Tensor, masks: list[torch.Tensor] | None, n: int
) -> torch.Tensor:
    """complex128 on a 4N window (same pitch), zero-padded to :func:`reference_period`
    (band limit cutting nothing): light leaving the N window is carried, not cut; the
    masks are N x N apertures as in ours, so what re-enters the window comes from the
    open-boundary kernel, and the periodic copies sit >= 7.5 N away (their Fresnel tail
    is the reference's own error, docs/performance.md)."""
    big = Grid((4 * n, 4 * n), PITCH_M, (WAVELENGTH_M,))
    lo = 2 * n - n // 2
    window = (slice(None), slice(None), slice(lo, lo + n), slice(lo, lo + n))
    u = torch.zeros(1, 1, 4 * n, 4 * n, dtype=torch.complex128)
    u[window] = field[:1].to(torch.complex128)
    fs = FreeSpace(big, DISTANCE_M, padding=reference_period(n) - 4 * n)
    if masks is None:
        return intensity(fs(u)[window])
    for phase_rad in masks:
        aperture = u[window] * torch.polar(
            torch.ones_like(phase_rad, dtype=torch.float64), phase_rad.double()
        )
        u = torch.zeros_like(u)
        u[window] = aperture
        u = fs(u)
    return intensity(u[window])


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


# --------------------------------------------------------------------------- peers


def torchoptics_w2(n: int, field: torch.Tensor, masks: list[torch.Tensor], asm_pad):
    """The W2 workload written with torchoptics (complex64); ``asm_pad`` per side or None."""
    import torchoptics

    torchoptics.set_default_dtype(torch.float32)
    params = [m.clone().requires_grad_() for m in masks]

    def run():
        f = torchoptics.Field(field[:, 0], wavelength=WAVELENGTH_M, z=0, spacing=(PITCH_M, PITCH_M))
        for i, phase_rad in enumerate(params):
            f = f.modulate(torch.exp(1j * phase_rad))
            f = f.propagate_to_z((i + 1) * DISTANCE_M, propagation_method="ASM", asm_pad=asm_pad)
        camera = f.intensity()
        camera.mean().backward()
        for p in params:
            p.grad = None
        return camera

    return run


# --------------------------------------------------------------------------- main


def cpu_pressure() -> str:
    """Linux PSI: share of the last 10 s / 60 s in which runnable tasks waited for a CPU."""
    try:
        with open("/proc/pressure/cpu") as f:
            some = f.readline().split()
        return f"cpu_pressure {some[1]} {some[2]}"
    except OSError:
        return "cpu_pressure n/a"


def fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def resolved_backend(padded: tuple[int, int]) -> str:
    """What the default backend runs on this padded grid (see lightgen.optics.fft)."""
    x = torch.empty(1, dtype=torch.complex64)
    return "pyfftw" if lfft.uses_fftw(x, padded) else "torch"


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb(since_reset: bool) -> float:
    """Peak RSS in MB: ``VmHWM`` since the last reset, else the process's ``ru_maxrss``."""
    if since_reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_size(
    n: int, rounds: int, threads: int, want_err: bool, padding="auto", tol=None, chip=True
) -> None:
    since_reset = reset_peak_rss()  # earlier sizes' references must not count here
    grid = Grid((n, n), PITCH_M, (WAVELENGTH_M,))
    kw = {} if tol is None else {"tail_tolerance": tol}
    fs = FreeSpace(grid, DISTANCE_M, padding=padding, **kw)
    # the chips' planner setting (ChipConfig.propagation_tail_tolerance): fast, periodised
    fs_alt = FreeSpace(grid, DISTANCE_M, tail_tolerance=FAST_TAIL_TOLERANCE) if chip else None
    padded = fs.plan.padded_shape
    field, masks = make_inputs(n)
    results = []
    for name, count in (("W1", 2), ("W2", 4 * LAYERS)):
        ours = w1_fn(fs, field) if name == "W1" else w2_fn(fs, field, masks)
        fns = {"ours": ours}  # the default backend ("auto": pyfftw on CPU when installed)

        def ours_torch(ours=ours):
            with lfft.fft_backend("torch"):
                return ours()

        fns["ours_torch"] = ours_torch
        if name == "W2":
            fns["ours_generic"] = w2_fn(fs, field, masks, fused=False)
        fns.update(fft_bound_fns(padded, count, threads))
        if fs_alt is not None:  # the chips' setting, its bounds on its own grid
            fns["ours_alt"] = w1_fn(fs_alt, field) if name == "W1" else w2_fn(fs_alt, field, masks)
            alt_bounds = fft_bound_fns(fs_alt.plan.padded_shape, count, threads)
            fns.update({f"alt_{k}": f for k, f in alt_bounds.items()})
        med = interleaved_medians(fns, rounds)
        results.append((name, fns, med, dict(MINIMA)))
    # peak RSS of the timed workloads, before the big complex128 references
    rss_mb = peak_rss_mb(since_reset)
    for name, fns, med, mins in results:
        err, extra = {}, ""
        if want_err:
            ref = reference_intensity(field, None if name == "W1" else masks, n)
            for key in ("ours", "ours_torch", "ours_generic", "ours_alt"):
                if key in fns:
                    out = fns[key]()[:1].detach()
                    err[key] = rel_l2(intensity(out) if name == "W1" else out, ref)
            if name == "W1":
                white, _ = make_inputs(n, white=True)
                ref = reference_intensity(white, None, n)
                with torch.no_grad():
                    extra = f" err_white={rel_l2(intensity(fs(white[:1])), ref):.1e}"
                    if fs_alt is not None:
                        err["white_alt"] = rel_l2(intensity(fs_alt(white[:1])), ref)
            del ref
        default = resolved_backend(padded)
        variants = [
            (f"default:{default}", "ours", ""),
            ("torch", "ours_torch", ""),
            (f"{default}-unfused", "ours_generic", ""),
        ]
        if fs_alt is not None:
            alt_backend = resolved_backend(fs_alt.plan.padded_shape)
            variants.append((f"chip:{alt_backend}", "ours_alt", "alt_"))
        for backend, key, pre in variants:
            if key not in med:
                continue
            ms, bound = med[key], med[f"{pre}bound"]
            best_name = min(
                ("fftw", "scipy"), key=lambda k, pre=pre: med.get(f"{pre}{k}", math.inf)
            )
            best = med[f"{pre}{best_name}"]
            best_min = min(mins.get(f"{pre}fftw", math.inf), mins[f"{pre}scipy"])
            grid_n = (fs_alt.plan.padded_shape if pre else padded)[0]
            tail = extra
            if pre:
                tail = f" err_white={err.get('white_alt', math.nan):.1e}" if name == "W1" else ""
                tail += f" ms_over_default={ms / med['ours']:.2f}"
            print(
                f"{name} N={n} ms={fmt(ms)} bound_ms={fmt(bound)} best_bound_ms={fmt(best)} "
                f"ratio={ms / bound:.2f} err={err.get(key, math.nan):.1e} backend={backend} "
                f"ratio_best={ms / best:.2f} best={best_name} padded={grid_n} "
                f"ratio_min={mins[key] / mins[f'{pre}bound']:.2f} "
                f"ratio_best_min={mins[key] / best_min:.2f} "
                f"fftw_ms={fmt(med.get(f'{pre}fftw', math.nan))} "
                f"scipy_ms={fmt(med[f'{pre}scipy'])}{tail}",
                flush=True,
            )
    scope = "this size's timings" if since_reset else "the process so far"
    print(f"peak_rss_mb={rss_mb:.0f} after timing N={n} (peak over {scope}, before its references)")


def bench_peers(rounds: int, threads: int) -> None:
    n = 512
    try:
        import torchoptics  # noqa: F401
    except ImportError:
        print("PEER torchoptics: not installed (pip install torchoptics to compare)", flush=True)
        return
    grid = Grid((n, n), PITCH_M, (WAVELENGTH_M,))
    fs = FreeSpace(grid, DISTANCE_M)
    field, masks = make_inputs(n)
    pad = (fs.plan.padded_shape[0] - n) // 2  # same FFT size as ours, split over both sides
    fns = {
        "ours": w2_fn(fs, field, masks),
        "torchoptics_matched": torchoptics_w2(n, field, masks, (pad, pad)),
    }
    med = interleaved_medians(fns, max(3, rounds // 2))
    ref = reference_intensity(field, masks, n)
    outputs = {key: fns[key]()[:1].detach() for key in fns if key != "ours"}
    # its default pads 2N per side (a 5N = 2560^2 grid): ~50 s per step on 2 busy cores,
    # so it is timed once, after a warm-up step, rather than in the interleaved rounds
    default = torchoptics_w2(n, field, masks, None)
    try:
        default()
        t0 = time.perf_counter()
        outputs["torchoptics_default"] = default()[:1].detach()
        med["torchoptics_default"] = (time.perf_counter() - t0) * 1e3
    except (RuntimeError, MemoryError) as exc:
        print(f"PEER torchoptics default padding: failed ({type(exc).__name__}: {exc})", flush=True)
    for key in ("torchoptics_matched", "torchoptics_default"):
        if key not in med:
            continue
        timed = "median" if key == "torchoptics_matched" else "one run"
        print(
            f"PEER {key} W2 N={n} ms={fmt(med[key])} ({timed}) ours_ms={fmt(med['ours'])} "
            f"peer_over_ours={med[key] / med['ours']:.2f} err={rel_l2(outputs[key], ref):.1e}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=256,512 and fewer rounds")
    parser.add_argument("--peers", action="store_true", help="time torchoptics on W2, N=512")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the grid sizes N")
    parser.add_argument("--rounds", type=int, help="timing rounds per variant (median)")
    parser.add_argument("--no-err", action="store_true", help="skip the 4N complex128 references")
    parser.add_argument(
        "--padding", default="auto", help="planner padding: 'auto' (default) or samples per axis"
    )
    parser.add_argument(
        "--tail-tolerance",
        type=float,
        help="planner tail_tolerance for padding 'auto' (default: the library's, 1e-5)",
    )
    parser.add_argument(
        "--no-chip",
        action="store_true",
        help="skip the variant with the chips' tail tolerance (FAST_TAIL_TOLERANCE, 2e-3)",
    )
    parser.add_argument("--threads", type=int, help="torch/FFTW/scipy threads (default: torch's)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    sizes = args.sizes or ([256, 512] if args.quick else [256, 512, 1024])
    start = time.perf_counter()
    print(
        f"# {datetime.date.today()} {platform.machine()} cores={os.cpu_count()} "
        f"torch {torch.__version__} threads={threads} pyfftw={lfft.pyfftw_available()} "
        f"numpy {np.__version__} scipy {scipy.__version__} {cpu_pressure()}",
        flush=True,
    )
    for n in sizes:
        rounds = args.rounds or (5 if args.quick else (9 if n <= 512 else 5))
        padding = args.padding if args.padding == "auto" else int(args.padding)
        bench_size(
            n, rounds, threads, not args.no_err, padding, args.tail_tolerance, not args.no_chip
        )
    if args.peers:
        bench_peers(args.rounds or (5 if args.quick else 7), threads)
    print(f"# total {time.perf_counter() - start:.0f} s, {cpu_pressure()}", flush=True)


if __name__ == "__main__":
    main()
