r"""The digital side: what the same function costs on a CPU/GPU, counted and measured.

Three digital implementations of one chip frame (per wavelength and generator):

* **dense equivalent** -- every counted hop as a complex matrix-vector product:
  :math:`8 N_{in} N_{out}` real FLOPs per hop (a complex multiply-add is 4 real
  multiplies + 4 real adds);
* **FFT convolution** -- what free-space propagation really is: per hop a forward and
  an inverse FFT of the zero-padded plane, :math:`2\cdot 5 M\log_2 M` FLOPs for
  :math:`M = H_p W_p` samples (the Cooley-Tukey count FFTW reports), plus
  :math:`6M` for the transfer-function product and :math:`6HW` for each phase mask;
* **decoder hook** -- any ``torch.nn.Module`` (e.g. the digital VAE decoder) timed
  per image by :func:`time_decoder`.

Measured times convert to energy with a stated power (:func:`cpu_power_w`: a TDP
share, assumed). Dense maps at the paper's size (a 262,144 x 262,144 complex matrix
is 550 GB) are timed at a smaller :math:`N` and scaled by :math:`N_{in} N_{out}`
(matrix-vector cost is linear in the number of matrix entries, memory-bound).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lightgen._checks import require_int_range, require_positive
from lightgen.hardware.counting import count_operations
from lightgen.hardware.design import ChipDesign
from lightgen.optics.fft import fft2_unscaled, ifft2_unscaled
from lightgen.optics.grid import Grid
from lightgen.optics.propagation import FAST_TAIL_TOLERANCE, plan_propagation

#: Assumed CPU power per hardware thread, W: a 280 W, 64-core server CPU's TDP share.
CPU_W_PER_THREAD = 280.0 / 64
#: Real FLOPs per complex multiply-add (4 multiplies + 4 adds).
FLOPS_PER_COMPLEX_MAC = 8


def cpu_power_w(threads: int | None = None) -> float:
    """Assumed CPU power for ``threads`` threads (default: torch's thread count)."""
    n = torch.get_num_threads() if threads is None else require_int_range("threads", threads, 1)
    return n * CPU_W_PER_THREAD


def complex_dense_flops(n_in: int, n_out: int) -> int:
    """Real FLOPs of one complex ``(n_out x n_in)`` matrix times a vector: ``8 n_in n_out``."""
    return FLOPS_PER_COMPLEX_MAC * int(n_in) * int(n_out)


def fft2_flops(h: int, w: int) -> float:
    """``5 M log2 M`` real FLOPs for a complex 2-D FFT of ``M = h w`` points."""
    m = int(h) * int(w)
    return 5.0 * m * math.log2(m) if m > 1 else 0.0


def asm_hop_flops(shape: tuple[int, int], padded_shape: tuple[int, int]) -> float:
    """FFT-convolution propagation of one plane: two FFTs + transfer-function product."""
    hp, wp = padded_shape
    return 2 * fft2_flops(hp, wp) + 6.0 * hp * wp


def dense_equivalent_flops(design: ChipDesign, rule: str = "conservative") -> int:
    """Real FLOPs of the counted hops as complex dense products (per frame)."""
    return FLOPS_PER_COMPLEX_MAC * count_operations(design, rule).macs_per_frame


def fft_chip_flops(design: ChipDesign) -> float:
    """Real FLOPs of one frame computed the way the physics works (per frame, all λ).

    Free-space hops between layers: padded FFT convolution (padding from
    :func:`lightgen.optics.propagation.plan_propagation`, longest wavelength). Hops
    into and out of the fibers: dense projection on / emission from ``n_fibers``
    modes (``8 N n_fibers`` each), plus the hop between facet and first/last layer.
    Phase masks: ``6 H W`` each; camera ``|u|^2``: ``3 H W``.
    """
    lam = max(design.wavelengths_m)

    def hop(spec_shape: tuple[int, int], pitch: float, z: float) -> float:
        # the planner as the chips run it (ChipConfig's default tail tolerance)
        plan = plan_propagation(
            Grid(spec_shape, pitch, (lam,)), z, tail_tolerance=FAST_TAIL_TOLERANCE
        )
        return asm_hop_flops(spec_shape, plan.padded_shape)

    enc, gen = design.encoder_layers, design.generator_layers
    d_e, d_g = design.encoder_distances_m, design.generator_distances_m
    shape = lambda s: (s.n_y, s.n_x)  # noqa: E731
    enc_f = hop(shape(enc[0]), enc[0].pixel_pitch_m, d_e[0])
    for k in range(1, len(enc)):
        enc_f += hop(shape(enc[k]), enc[k].pixel_pitch_m, d_e[k])
    enc_f += hop(shape(enc[-1]), enc[-1].pixel_pitch_m, d_e[-1])  # last layer -> fiber facets
    enc_f += sum(6.0 * s.neurons for s in enc) + 8.0 * enc[-1].neurons * design.n_fibers
    gen_f = 8.0 * gen[0].neurons * design.n_fibers + hop(
        shape(gen[0]), gen[0].pixel_pitch_m, d_g[0]
    )
    for k in range(1, len(gen)):
        gen_f += hop(shape(gen[k]), gen[k].pixel_pitch_m, d_g[k])
    gen_f += hop(shape(gen[-1]), gen[-1].pixel_pitch_m, d_g[-1]) + 3.0 * design.camera_pixels
    gen_f += sum(6.0 * s.neurons for s in gen)
    total = enc_f + design.n_generators * gen_f
    return design.n_wavelengths * total


# ------------------------------------------------------------------ measuring
@dataclass(frozen=True)
class Timing:
    """A measured time per image (median over repeats, divided by the batch)."""

    label: str
    seconds_per_image: float
    batch: int
    repeats: int
    device: str
    detail: str = ""

    @classmethod
    def measure(
        cls,
        label: str,
        fn: Callable[[], object],
        device: torch.device,
        batch: int,
        repeats: int,
        detail: str = "",
    ) -> Timing:
        """Time ``fn`` (one call processes ``batch`` images) with :func:`time_per_call`."""
        t = time_per_call(fn, device, repeats)
        return cls(label, t / batch, batch, repeats, str(device), detail)

    def energy_j(self, power_w: float) -> float:
        """Energy per image at ``power_w`` watts."""
        return self.seconds_per_image * require_positive(
            "power_w", power_w, "Watts drawn while computing."
        )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_call(
    fn: Callable[[], object], device: torch.device, repeats: int = 3, warmup: int = 1
) -> float:
    """Median wall time of ``fn()`` in seconds (CUDA-synchronised)."""
    reps = require_int_range("repeats", repeats, 1)
    for _ in range(max(0, int(warmup))):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_dense_hop(
    n_in: int,
    n_out: int,
    batch: int = 8,
    repeats: int = 3,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.complex64,
    seed: int = 0,
) -> Timing:
    """Time ``batch`` complex vectors through a dense ``(n_out, n_in)`` matrix."""
    n_in = require_int_range("n_in", n_in, 1)
    n_out = require_int_range("n_out", n_out, 1)
    b = require_int_range("batch", batch, 1)
    dev = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    w = torch.randn(n_out, n_in, generator=g, dtype=dtype).to(dev)
    x = torch.randn(n_in, b, generator=g, dtype=dtype).to(dev)
    return Timing.measure(
        f"dense {n_in}->{n_out}", lambda: w @ x, dev, b, repeats, f"{dtype}, matrix {n_out}x{n_in}"
    )


def time_asm_hop(
    shape: tuple[int, int],
    padded_shape: tuple[int, int],
    n_wavelengths: int = 1,
    batch: int = 1,
    repeats: int = 3,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.complex64,
) -> Timing:
    """Time one FFT-convolution propagation (pad, FFT, multiply, inverse FFT, crop, phase mask)."""
    h, w = (require_int_range(f"shape[{i}]", s, 1) for i, s in enumerate(shape))
    hp, wp = (require_int_range(f"padded_shape[{i}]", s, 1) for i, s in enumerate(padded_shape))
    if hp < h or wp < w:
        raise ValueError(
            f"padded_shape={padded_shape} is smaller than shape={shape}; pad to at least the field."
        )
    b = require_int_range("batch", batch, 1)
    dev = torch.device(device)
    field = torch.ones(b, n_wavelengths, h, w, dtype=dtype, device=dev)
    kernel = torch.ones(n_wavelengths, hp, wp, dtype=dtype, device=dev)
    mask = torch.ones(n_wavelengths, h, w, dtype=dtype, device=dev)

    def hop() -> torch.Tensor:
        spec = fft2_unscaled(field, s=(hp, wp))
        return ifft2_unscaled(spec * kernel)[..., :h, :w] * mask

    return Timing.measure(
        f"ASM hop {h}x{w} (FFT {hp}x{wp})",
        hop,
        dev,
        b,
        repeats,
        f"{dtype}, {n_wavelengths} wavelength(s)",
    )


def time_decoder(
    decoder: torch.nn.Module,
    input_shape: tuple[int, ...],
    batch: int = 1,
    repeats: int = 3,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Timing:
    """HOOK for any digital decoder: time ``decoder(z)`` per image.

    Args:
        decoder: a ``torch.nn.Module`` mapping ``(batch, *input_shape)`` to images
            (e.g. the digital VAE's decoder). Runs under ``torch.inference_mode``.
        input_shape: one input without the batch axis, e.g. ``(100,)`` for a latent.
        device: where to run (default: the decoder's parameters' device, else CPU).
    """
    if not isinstance(decoder, torch.nn.Module):
        raise ValueError(f"decoder must be a torch.nn.Module, got {type(decoder).__name__}.")
    b = require_int_range("batch", batch, 1)
    if device is None:
        p = next(iter(decoder.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
    else:
        dev = torch.device(device)
    decoder = decoder.to(dev).eval()
    z = torch.randn(b, *input_shape, dtype=dtype, device=dev)

    def run() -> object:
        with torch.inference_mode():
            return decoder(z)

    return Timing.measure(
        f"decoder {type(decoder).__name__}", run, dev, b, repeats, f"input {tuple(input_shape)}"
    )


def scale_dense_timing(timing: Timing, measured_macs: int, target_macs: int) -> float:
    """Seconds per image at ``target_macs`` multiply-adds, scaling linearly in matrix entries."""
    m = require_positive("measured_macs", measured_macs)
    t = require_positive("target_macs", target_macs)
    return timing.seconds_per_image * t / m


def cpu_description() -> str:
    """``"<model name>, <threads> torch threads"`` for reports."""
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} torch threads of {os.cpu_count()} CPUs"
