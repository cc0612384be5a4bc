"""The FFT path every propagator uses, with a guard against a torch scaling bug.

torch 2.13.0's CPU build mis-scales the *scaled* complex64 transforms at 2048x2048
with batch 1 and 2 threads (``ifft2`` and ``fft2(norm='forward')`` come back off by
1/2048**2, ``norm='ortho'`` by 1/2048; upstream pytorch issue 169670). The *unscaled* transforms were
right at every size and batch we tried. So lightgen only ever calls unscaled
transforms -- ``fft2(norm='backward')`` forward and ``ifft2(norm='forward')``
inverse -- and folds the 1/(H*W) normalisation into the transfer function, which
is also one pass over memory fewer. ``tests/optics/test_fft.py`` checks exact round
trips and scaling at every size and batch the project uses.

:func:`padded_fft_filter` is the hot path of free-space propagation,
``crop(IDFT(DFT(zero_pad(x)) * kernel))``. It is differentiable through a custom
autograd function whose backward is the same filter with the conjugate kernel (the
operator is linear, its adjoint is ``crop^T IDFT^H diag(conj K) DFT^H pad^T`` = the
same chain), so autograd stores nothing but the kernel. An optional real phase mask
``phase_rad`` is applied while zero-padding (``x * exp(i phase_rad)``, fused: one pass
and one stored tensor fewer). On CPU the zero-padded input buffer is cached per
thread and shape, so no call zero-fills the padding again. Two interchangeable
backends compute it:

* ``"torch"``: ``torch.fft`` -- any device, any dtype torch supports;
* ``"pyfftw"`` (CPU only): planned in-place FFTW transforms on a cached, aligned
  workspace, and *pruned* -- the row transforms skip the all-zero padding rows on the
  way in and the cropped-away rows on the way out. Tensors on other devices, or a
  missing pyfftw, fall back to ``"torch"`` silently.
* ``"auto"`` (the default): ``"pyfftw"`` for CPU transforms of at least
  :data:`AUTO_FFTW_MIN_SAMPLES` padded samples per image when pyfftw is installed
  (``lightgen[fast-fft]``, part of ``[all]``), ``"torch"`` otherwise. Small grids stay on
  torch because FFTW_MEASURE planning (~0.1-4 s per new shape) would not pay back.

FFTW_MEASURE plans are remembered across processes as FFTW *wisdom* in
``$LIGHTGEN_CACHE`` (default ``~/.cache/lightgen``), so a shape is measured once per
machine. Select with :func:`set_fft_backend`, the :func:`fft_backend` context manager, or
the environment variables ``LIGHTGEN_FFT_BACKEND`` (``auto``/``torch``/``pyfftw``) and
``LIGHTGEN_FFTW_EFFORT`` (e.g. ``FFTW_ESTIMATE``) read at import.
"""

from __future__ import annotations

import math
import os
import platform
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_FAST_RADICES = (2, 3, 5, 7)
FFT_BACKENDS: tuple[str, ...] = ("auto", "torch", "pyfftw")
AUTO_FFTW_MIN_SAMPLES = 384 * 384
"""``"auto"`` uses FFTW for padded grids of at least this many samples (Hp * Wp)."""
FFTW_EFFORTS: tuple[str, ...] = ("FFTW_ESTIMATE", "FFTW_MEASURE", "FFTW_PATIENT", "FFTW_EXHAUSTIVE")


def fft2_unscaled(x: torch.Tensor, s: tuple[int, int] | None = None) -> torch.Tensor:
    """Unnormalised forward DFT over the last two axes, zero-padded to ``s`` at the end."""
    return torch.fft.fft2(x, s=s, norm="backward")


def ifft2_unscaled(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised inverse DFT over the last two axes (no 1/(H*W) factor)."""
    return torch.fft.ifft2(x, norm="forward")


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Unitary (orthonormal) forward DFT built from the unscaled transform."""
    n = x.shape[-1] * x.shape[-2]
    return fft2_unscaled(x) * (n**-0.5)


def ifft2c(x: torch.Tensor) -> torch.Tensor:
    """Unitary (orthonormal) inverse DFT built from the unscaled transform."""
    n = x.shape[-1] * x.shape[-2]
    return ifft2_unscaled(x) * (n**-0.5)


def is_fast_size(n: int) -> bool:
    for r in _FAST_RADICES:
        while n % r == 0 and n > 1:
            n //= r
    return n == 1


def next_fast_size(n: int, multiple_of: int = 1) -> int:
    """Smallest m >= n, a multiple of ``multiple_of``, whose prime factors are all in {2,3,5,7}.

    ``multiple_of=4`` is what the propagation planner uses: on the 2-core AVX-512 CPU
    we measured (docs/performance.md), sizes with a single factor 2 (1250, 750, 486)
    ran 20-40 % slower per element than the next multiple of 4 (1260, 756, 500) in
    both MKL (torch) and FFTW.
    """
    m = max(int(n), 1)
    step = max(int(multiple_of), 1)
    m += -m % step
    while not is_fast_size(m):
        m += step
    return m


# --------------------------------------------------------------------------- backends


def _env_choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in allowed:
        raise ValueError(f"${name}={value!r} is not one of {allowed}; unset it or pick one.")
    return value


_state = {
    "backend": _env_choice("LIGHTGEN_FFT_BACKEND", "auto", FFT_BACKENDS),
    "threads": None,
    "effort": _env_choice("LIGHTGEN_FFTW_EFFORT", "FFTW_MEASURE", FFTW_EFFORTS),
}


def pyfftw_available() -> bool:
    """True when the optional ``pyfftw`` package imports (``pip install lightgen[fast-fft]``)."""
    try:
        import pyfftw  # noqa: F401
    except ImportError:
        return False
    return True


def get_fft_backend() -> str:
    """The chosen backend of :func:`padded_fft_filter`: ``"auto"``, ``"torch"`` or ``"pyfftw"``."""
    return _state["backend"]


def set_fft_backend(
    name: str, threads: int | None = None, planner_effort: str | None = None
) -> None:
    """Choose the FFT backend of :func:`padded_fft_filter` (process-wide).

    Args:
        name: ``"auto"`` (pyfftw for large CPU grids when installed, else torch),
            ``"torch"`` or ``"pyfftw"``.
        threads: FFTW threads; ``None`` follows ``torch.get_num_threads()`` at call time.
        planner_effort: FFTW planner flag; ``FFTW_MEASURE`` (the default) plans in
            ~0.1-4 s per new shape -- once per machine, thanks to the wisdom cache -- and
            runs fastest in steady state, ``FFTW_ESTIMATE`` plans instantly and runs up to
            ~2x slower; ``None`` keeps the current choice.
    """
    if name not in FFT_BACKENDS:
        raise ValueError(f"name={name!r} is not an FFT backend; choose one of {FFT_BACKENDS}.")
    if name == "pyfftw" and not pyfftw_available():
        raise ValueError(
            "name='pyfftw' needs the pyfftw package; install it with "
            "`pip install pyfftw` (or lightgen[fast-fft]), or use name='torch'."
        )
    if threads is not None and (
        isinstance(threads, bool) or int(threads) != threads or threads < 1
    ):
        raise ValueError(f"threads={threads!r} must be a positive integer or None.")
    if planner_effort is None:
        planner_effort = _state["effort"]
    if planner_effort not in FFTW_EFFORTS:
        raise ValueError(
            f"planner_effort={planner_effort!r} is unknown; choose one of {FFTW_EFFORTS}."
        )
    _state.update(backend=name, threads=threads, effort=planner_effort)


@contextmanager
def fft_backend(
    name: str, threads: int | None = None, planner_effort: str | None = None
) -> Iterator[None]:
    """Context manager form of :func:`set_fft_backend`; restores the previous choice."""
    saved = dict(_state)
    set_fft_backend(name, threads, planner_effort)
    try:
        yield
    finally:
        _state.update(saved)


# --------------------------------------------------------------------------- the filter


def _check_filter_args(x: torch.Tensor, kernel: torch.Tensor) -> None:
    if not (x.is_complex() and kernel.is_complex()):
        raise ValueError(
            f"padded_fft_filter needs complex tensors, got x.dtype={x.dtype}, "
            f"kernel.dtype={kernel.dtype}. Convert with .to(torch.complex64)."
        )
    if x.dtype != kernel.dtype:
        raise ValueError(
            f"x.dtype={x.dtype} differs from kernel.dtype={kernel.dtype}; build the kernel "
            "in the field's dtype (e.g. transfer_function(plan, dtype=field.dtype))."
        )
    if x.ndim < 2 or kernel.ndim < 2:
        raise ValueError(
            f"x and kernel need >= 2 dims, got {tuple(x.shape)} and {tuple(kernel.shape)}."
        )
    (h, w), (hp, wp) = x.shape[-2:], kernel.shape[-2:]
    if hp < h or wp < w:
        raise ValueError(
            f"kernel.shape[-2:]={(hp, wp)} is smaller than the field {(h, w)}; the kernel must "
            "live on the zero-padded grid (plan it with plan_propagation)."
        )
    if x.device != kernel.device:
        raise ValueError(f"x is on {x.device} but kernel on {kernel.device}; move one of them.")


_WORKSPACES = threading.local()


def _write_source(dst: torch.Tensor, x: torch.Tensor, modulation: torch.Tensor | None) -> None:
    """``dst = x`` or ``dst = x * modulation`` (one pass, no temporary)."""
    if modulation is None:
        dst.copy_(x)
    else:
        torch.mul(x, modulation, out=dst)


def _zero_padded(
    x: torch.Tensor, padded: tuple[int, int], modulation: torch.Tensor | None, shape
) -> torch.Tensor:
    """``x`` (times ``modulation``) in the top-left corner of a cached zero buffer (CPU).

    The buffer's padding is zeroed once and never written, which saves the zero fill
    ``fft2(x, s=...)`` does on every call (~10 % of a propagation). One buffer per
    thread and shape.
    """
    cache = getattr(_WORKSPACES, "buffers", None)
    if cache is None:
        cache = _WORKSPACES.buffers = OrderedDict()
    key = (tuple(shape), padded, x.dtype)
    buf = cache.pop(key, None)
    if buf is None:
        buf = x.new_zeros(*shape[:-2], *padded)
    cache[key] = buf  # most recent last
    while len(cache) > _FFTW_CACHE_SIZE:
        cache.popitem(last=False)
    _write_source(buf[..., : shape[-2], : shape[-1]], x, modulation)
    return buf


def _filter_torch(
    x: torch.Tensor, kernel: torch.Tensor, modulation: torch.Tensor | None, shape
) -> torch.Tensor:
    h, w = x.shape[-2:]
    padded = tuple(kernel.shape[-2:])
    if x.device.type == "cpu":
        # fft2 is out of place and runs without autograd here (inside the custom
        # Function): the buffer is only read, so reusing it is safe
        spectrum = torch.fft.fft2(_zero_padded(x, padded, modulation, shape), norm="backward")
    else:
        source = x if modulation is None else x * modulation
        spectrum = torch.fft.fft2(source, s=padded, norm="backward")
    if spectrum.shape == torch.broadcast_shapes(spectrum.shape, kernel.shape):
        spectrum.mul_(kernel)  # in place: no autograd here, saves one padded-size buffer
    else:
        spectrum = spectrum * kernel
    return torch.fft.ifft2(spectrum, norm="forward")[..., :h, :w]


class _FFTWFilterPlan:
    """Workspace + four pruned in-place FFTW plans for one (shape, padded shape, dtype).

    Forward: rows ``[:h]`` along W (the rest are zero), then every column along H.
    Inverse: every column along H, then only rows ``[:h]`` along W (the rest are
    cropped away). FFTW's unnormalised transforms match the unscaled convention.
    """

    def __init__(self, shape, padded, dtype, threads: int, effort: str) -> None:
        import pyfftw

        *batch, h, w = shape
        hp, wp = padded
        np_dtype = {torch.complex64: "complex64", torch.complex128: "complex128"}[dtype]
        self.hw = (h, w)
        self.ws = pyfftw.empty_aligned((*batch, hp, wp), dtype=np_dtype)
        self.ws_t = torch.from_numpy(self.ws)
        top = self.ws[..., :h, :]
        flags = (effort, "FFTW_DESTROY_INPUT")

        def plan(a, axis, direction):
            return pyfftw.FFTW(
                a, a, axes=(axis,), direction=direction, flags=flags, threads=threads
            )

        self.rows_fwd = plan(top, -1, "FFTW_FORWARD")
        self.cols_fwd = plan(self.ws, -2, "FFTW_FORWARD")
        self.cols_inv = plan(self.ws, -2, "FFTW_BACKWARD")
        self.rows_inv = plan(top, -1, "FFTW_BACKWARD")
        self.lock = threading.Lock()

    def __call__(
        self, x: torch.Tensor, kernel: torch.Tensor, modulation: torch.Tensor | None = None
    ) -> torch.Tensor:
        h, w = self.hw
        with self.lock:  # one workspace: serialise concurrent callers
            ws = self.ws_t
            ws[..., h:, :].zero_()  # the in-place transforms overwrote the padding
            ws[..., :h, w:].zero_()
            _write_source(ws[..., :h, :w], x, modulation)
            self.rows_fwd.execute()
            self.cols_fwd.execute()
            ws.mul_(kernel)
            self.cols_inv.execute()
            self.rows_inv.execute()
            out = pooled_empty((*ws.shape[:-2], h, w), ws.dtype)
            out.copy_(ws[..., :h, :w])
            return out


# --------------------------------------------------------------------------- output pool
#
# A fresh 67 MB tensor (1024^2 x 8 x complex64) costs ~30 ms of page faults on every call:
# glibc serves allocations above 32 MB with mmap and returns them to the OS on free, and
# torch has no CPU caching allocator. So large CPU outputs reuse freed memory from a small
# pool: a storage is free again when nothing but the pool references it (its use count,
# which autograd's saved tensors and every view also hold). Each caller gets a new tensor
# object on the pooled storage (``set_``), not a view, so autograd and version counters
# behave as for any fresh tensor.

_POOL: list[torch.UntypedStorage] = []
_POOL_LOCK = threading.Lock()
POOL_MIN_BYTES = 8 << 20
"""Outputs smaller than this are allocated normally (malloc reuses small blocks itself)."""


def _pool_limit_bytes() -> int:
    return int(float(os.environ.get("LIGHTGEN_FFT_POOL_MB", "2048")) * (1 << 20))


def pooled_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor, on recycled memory when the pool has some.

    The pool holds at most ``$LIGHTGEN_FFT_POOL_MB`` (default 2048) MB;
    :func:`clear_fftw_cache` empties it.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POOL_MIN_BYTES:
        return torch.empty(shape, dtype=dtype)
    with _POOL_LOCK:
        storage = None
        for s in _POOL:
            if s.nbytes() == nbytes and torch._C._storage_Use_Count(s._cdata) == 1:
                storage = s
                break
        if storage is None:
            storage = torch.UntypedStorage(nbytes)
            if sum(s.nbytes() for s in _POOL) + nbytes <= _pool_limit_bytes():
                _POOL.append(storage)
        return torch.empty(0, dtype=dtype).set_(storage, 0, shape)  # contiguous strides


_FFTW_CACHE: OrderedDict[tuple, _FFTWFilterPlan] = OrderedDict()
_FFTW_CACHE_SIZE = 6
_FFTW_CACHE_LOCK = threading.Lock()


_WISDOM = {"loaded": False, "saved": None}


def wisdom_path():
    """Where FFTW wisdom is kept: ``$LIGHTGEN_CACHE`` or ``~/.cache/lightgen``, one file per
    CPU model (wisdom measured on one machine is meaningless on another)."""
    from pathlib import Path

    root = Path(os.environ.get("LIGHTGEN_CACHE", Path.home() / ".cache" / "lightgen"))
    cpu = f"{platform.machine()}-{os.cpu_count()}cpu"
    return root / f"fftw-wisdom-{cpu}.bin"


def _load_wisdom() -> None:
    """Import saved wisdom once per process; an unreadable file is ignored (re-measured)."""
    if _WISDOM["loaded"]:
        return
    _WISDOM["loaded"] = True
    import pyfftw
    import safetensors.numpy as stn

    try:
        blobs = stn.load_file(str(wisdom_path()))
        pyfftw.import_wisdom(tuple(blobs[f"w{i}"].tobytes() for i in range(3)))
    except Exception:  # missing, truncated or foreign file: plan afresh, overwrite later
        pass


def _save_wisdom() -> None:
    """Write the process's wisdom atomically when it grew (plans are the slow part)."""
    import numpy as np
    import pyfftw
    import safetensors.numpy as stn

    from lightgen._io import atomic_write

    wisdom = pyfftw.export_wisdom()
    if wisdom == _WISDOM["saved"]:
        return
    path = wisdom_path()
    blobs = {f"w{i}": np.frombuffer(b, dtype=np.uint8).copy() for i, b in enumerate(wisdom)}
    try:
        atomic_write(path, lambda tmp: stn.save_file(blobs, str(tmp)))
        _WISDOM["saved"] = wisdom
    except (OSError, ValueError):  # read-only home, full disk: the plans still work, just not
        pass  # remembered


def clear_fftw_cache() -> None:
    """Drop cached FFTW plans and their workspaces, the output pool, and this thread's
    zero-padded input buffers (the caches keep up to 6 shapes each; this frees their
    memory)."""
    with _FFTW_CACHE_LOCK:
        _FFTW_CACHE.clear()
    with _POOL_LOCK:
        _POOL.clear()
    getattr(_WORKSPACES, "buffers", {}).clear()


def _fftw_plan(shape, padded, dtype) -> _FFTWFilterPlan:
    threads = _state["threads"] or torch.get_num_threads()
    key = (tuple(shape), tuple(padded), dtype, threads, _state["effort"])
    with _FFTW_CACHE_LOCK:
        plan = _FFTW_CACHE.get(key)
        if plan is None:
            measured = _state["effort"] != "FFTW_ESTIMATE"
            if measured:
                _load_wisdom()
            plan = _FFTWFilterPlan(shape, padded, dtype, threads, _state["effort"])
            if measured:
                _save_wisdom()
            _FFTW_CACHE[key] = plan
            while len(_FFTW_CACHE) > _FFTW_CACHE_SIZE:
                _FFTW_CACHE.popitem(last=False)
        else:
            _FFTW_CACHE.move_to_end(key)
    return plan


def uses_fftw(x: torch.Tensor, padded: tuple[int, int]) -> bool:
    """Whether the present backend (:func:`set_fft_backend`) filters tensors like ``x`` on a
    ``padded`` grid with pyFFTW (else torch.fft)."""
    backend = _state["backend"]
    if backend == "torch" or x.device.type != "cpu":
        return False
    if x.dtype not in (torch.complex64, torch.complex128):
        return False
    if backend == "auto" and padded[0] * padded[1] < AUTO_FFTW_MIN_SAMPLES:
        return False
    return pyfftw_available()


def bare_fft_pair_seconds(
    shape: tuple[int, ...], dtype: torch.dtype = torch.complex64, repeats: int = 3
) -> float:
    """Median seconds of one unpruned forward + inverse 2-D FFT of a ``shape`` array on the
    backend :func:`padded_fft_filter` would pick for it (FFTW plans made beforehand):
    the bound a propagation's cost is measured against (benchmarks)."""
    x = torch.randn(shape, dtype=dtype)
    times = []
    if uses_fftw(x, tuple(shape[-2:])):
        import pyfftw

        threads, effort = _state["threads"] or torch.get_num_threads(), _state["effort"]
        a = pyfftw.empty_aligned(tuple(shape), dtype=str(x.numpy().dtype))
        a[...] = x.numpy()
        fwd = pyfftw.FFTW(a, a, axes=(-2, -1), flags=(effort,), threads=threads)
        inv = pyfftw.FFTW(
            a, a, axes=(-2, -1), direction="FFTW_BACKWARD", flags=(effort,), threads=threads
        )
        run = lambda: (fwd.execute(), inv.execute())  # noqa: E731
    else:
        run = lambda: torch.fft.ifft2(torch.fft.fft2(x))  # noqa: E731
    run()
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def _filter(
    x: torch.Tensor, kernel: torch.Tensor, modulation: torch.Tensor | None = None
) -> torch.Tensor:
    """``crop(IDFT(DFT(pad(x * modulation)) * kernel))`` without autograd, any backend."""
    lead = [x.shape[:-2], kernel.shape[:-2]]
    if modulation is not None:
        lead.append(modulation.shape[:-2])
    shape = torch.broadcast_shapes(*lead) + tuple(x.shape[-2:])
    if uses_fftw(x, tuple(kernel.shape[-2:])):
        return _fftw_plan(shape, kernel.shape[-2:], x.dtype)(x, kernel, modulation)
    return _filter_torch(x, kernel, modulation, shape)


class _PaddedFilter(torch.autograd.Function):
    """Linear map y = crop(IDFT(DFT(pad x) K)); vector-Jacobian product = same map with conj K."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        ctx.x_shape = x.shape
        return _filter(x, kernel)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (kernel,) = ctx.saved_tensors
        # via .apply so that double backward (create_graph=True) keeps working
        grad_x = _PaddedFilter.apply(grad, kernel.conj())
        if grad_x.shape != ctx.x_shape:  # x was broadcast against the kernel's leading axes
            grad_x = grad_x.sum_to_size(ctx.x_shape)
        return grad_x, None


class _PhaseThenFilter(torch.autograd.Function):
    """y = crop(IDFT(DFT(pad(x e^{i phi})) K)): a phase mask fused into the zero padding.

    With u = x m, m = e^{i phi} and g_u = filter(g, conj K) (the filter's adjoint), torch's
    conjugate-Wirtinger gradients are g_x = g_u conj(m) and, phi being real,
    g_phi = Im(g_u conj(u)) = Im(g_x conj(x)), summed over broadcast axes.
    """

    @staticmethod
    def forward(ctx, x, phase_rad, kernel):
        modulation = torch.polar(torch.ones_like(phase_rad), phase_rad).to(x.dtype)
        ctx.save_for_backward(x, modulation, kernel)
        ctx.phase_meta = (phase_rad.shape, phase_rad.dtype)
        return _filter(x, kernel, modulation)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, modulation, kernel = ctx.saved_tensors
        phase_shape, phase_dtype = ctx.phase_meta
        grad_x = _filter(grad, kernel.conj())  # a fresh tensor: scale it in place
        grad_x.mul_(modulation.conj())
        grad_phase = None
        if ctx.needs_input_grad[1]:
            # Im(g conj(x)) = g.imag x.real - g.real x.imag: no conj(x) copy of the batch
            im = grad_x.imag * x.real
            im.addcmul_(grad_x.real, x.imag, value=-1)
            grad_phase = im.sum_to_size(phase_shape).to(phase_dtype)
        return grad_x.sum_to_size(x.shape), grad_phase, None


def padded_fft_filter(
    x: torch.Tensor, kernel: torch.Tensor, phase_rad: torch.Tensor | None = None
) -> torch.Tensor:
    """``crop(IDFT_u(DFT_u(zero_pad(x)) * kernel))`` over the last two axes, differentiable.

    Args:
        x: complex ``(..., H, W)``; zero-padded at the end of each axis to the kernel size.
        kernel: complex ``(..., Hp, Wp)``, broadcastable against ``x``'s leading axes,
            same dtype and device, ``Hp >= H``, ``Wp >= W``; holds the 1/(Hp*Wp)
            inverse-DFT normalisation (the transforms here are unscaled).

        phase_rad: optional real phase mask ``(..., H, W)`` in radians, broadcastable
            against ``x``: computes the filter of ``x * exp(i phase_rad)``, fused into the
            zero padding (one pass and one stored tensor fewer than multiplying first).
            Its backward is first-order only (``once_differentiable``).

    Returns:
        ``(..., H, W)``: the top-left crop (torch backend: a view of the padded result).
        Gradients flow to ``x`` and ``phase_rad``; to ``kernel`` as well when it requires
        grad (then plain torch autograd is used instead of the custom backward).
    """
    _check_filter_args(x, kernel)
    if phase_rad is not None:
        if phase_rad.is_complex() or not phase_rad.is_floating_point():
            raise ValueError(
                f"phase_rad has dtype {phase_rad.dtype}; pass a real floating-point phase "
                "in radians (e.g. torch.float32)."
            )
        if tuple(phase_rad.shape[-2:]) != tuple(x.shape[-2:]) or phase_rad.device != x.device:
            raise ValueError(
                f"phase_rad has shape {tuple(phase_rad.shape)} on {phase_rad.device}; it must "
                f"end in the field's {tuple(x.shape[-2:])} and live on {x.device}."
            )
    if kernel.requires_grad and torch.is_grad_enabled():
        if phase_rad is not None:
            x = x * torch.polar(torch.ones_like(phase_rad), phase_rad).to(x.dtype)
        h, w = x.shape[-2:]
        spectrum = fft2_unscaled(x, s=tuple(kernel.shape[-2:]))
        return ifft2_unscaled(spectrum * kernel)[..., :h, :w]
    if phase_rad is not None:
        return _PhaseThenFilter.apply(x, phase_rad, kernel)
    return _PaddedFilter.apply(x, kernel)
