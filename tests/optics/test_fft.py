"""The FFT path: exact round trips and scaling at every size/batch the project uses
(including the 2048^2 batch-1 case where torch 2.13.0's *scaled* transforms are off by
1/2048^2), gradient scaling, the padded filter against numpy, and the FFTW backend."""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import pytest
import torch

from lightgen.optics import fft as lfft
from lightgen.optics.fft import (
    fft2_unscaled,
    fft2c,
    ifft2_unscaled,
    ifft2c,
    next_fast_size,
    padded_fft_filter,
)
from lightgen.optics.grid import Grid, intensity, power
from lightgen.optics.propagation import FreeSpace

_PYFFTW = lfft.pyfftw_available()
needs_pyfftw = pytest.mark.skipif(not _PYFFTW, reason="pyfftw not installed")
BACKENDS = ["torch", pytest.param("pyfftw", marks=needs_pyfftw)]
SMALL = (64, 128, 256, 480, 512, 720)
# batch 1 and 2 only (memory and time); 1260 is what the planner pads 1024 to at 5 cm
BIG = (1024, 1250, 1260, 1440, 2048)
DTYPES = (torch.complex64, torch.complex128)
RTOL = {torch.complex64: 2e-6, torch.complex128: 1e-12}


def _cases():
    for n in SMALL:
        for b in (1, 2, 8):
            for dt in DTYPES:
                yield n, b, dt
    for n in BIG:  # the torch bug is a complex64 one: complex128 at batch 1 only here
        yield n, 1, torch.complex64
        yield n, 2, torch.complex64
        yield n, 1, torch.complex128


def _norm(a: torch.Tensor) -> float:
    """L2 norm accumulated in float64 (a float32 sum over 8M terms is itself off by ~1e-5)."""
    return a.to(torch.complex128).norm().item()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return _norm(a.to(torch.complex128) - b.to(torch.complex128)) / _norm(b)


@pytest.mark.parametrize(("n", "batch", "dtype"), list(_cases()))
def test_unscaled_transforms_round_trip_exactly_and_obey_parseval(n, batch, dtype):
    gen = torch.Generator().manual_seed(n + batch)
    x = torch.randn(batch, 1, n, n, dtype=dtype, generator=gen)
    spectrum = fft2_unscaled(x)
    # Parseval for the unnormalised DFT: sum |X|^2 = H W sum |x|^2
    assert _norm(spectrum) == pytest.approx(n * _norm(x), rel=RTOL[dtype])
    back = ifft2_unscaled(spectrum)
    assert _rel(back / (n * n), x) < RTOL[dtype]


def _range(a: torch.Tensor) -> tuple[float, float]:
    lo, hi = torch.aminmax(a)
    return lo.item(), hi.item()


def _max_abs(a: torch.Tensor) -> float:
    lo, hi = _range(torch.view_as_real(a))  # no |a| temporary at 4096^2
    return max(-lo, hi)


@pytest.mark.parametrize(
    ("n", "batch", "dtype"),
    [(n, 1, torch.complex64) for n in (*SMALL, *BIG, 4096)]
    + [(4096, 2, torch.complex64), (2048, 1, torch.complex128), (2048, 2, torch.complex128)],
)
def test_dft_of_a_delta_is_all_ones_and_its_inverse_is_n_squared_delta(n, batch, dtype):
    delta = torch.zeros(batch, 1, n, n, dtype=dtype)
    delta[..., 0, 0] = 1
    ones = fft2_unscaled(delta)
    del delta
    re_lo, re_hi = _range(ones.real)
    im_lo, im_hi = _range(ones.imag)
    assert 1 - 1e-6 <= re_lo <= re_hi <= 1 + 1e-6
    assert -1e-6 <= im_lo <= im_hi <= 1e-6
    back = ifft2_unscaled(ones)
    del ones
    assert back[..., 0, 0].real.min().item() == pytest.approx(n * n, rel=1e-6)
    back[..., 0, 0] = 0
    assert _max_abs(back) < 1e-6 * n * n


@pytest.mark.parametrize("n", [*SMALL, *BIG])
def test_unitary_transforms_preserve_the_norm_and_invert_each_other(n):
    x = torch.randn(1, 1, n, n, dtype=torch.complex64, generator=torch.Generator().manual_seed(n))
    spectrum = fft2c(x)
    assert _norm(spectrum) == pytest.approx(_norm(x), rel=2e-5)
    assert _rel(ifft2c(spectrum), x) < 2e-5


@pytest.mark.parametrize("n", [64, 2048])
@pytest.mark.parametrize(
    ("transform", "gain"),
    [
        (fft2_unscaled, lambda n: n * n),
        (ifft2_unscaled, lambda n: n * n),
        (fft2c, lambda n: 1),
        (ifft2c, lambda n: 1),
        (lambda x: fft2_unscaled(x, s=(x.shape[-2] + 8, x.shape[-1] + 4)), None),
    ],
)
def test_gradients_of_the_wrappers_are_correctly_scaled(transform, gain, n):
    # L = ||T x||^2 = g ||x||^2 for a scaled unitary T, so dL/dx* (torch's grad) = 2 g x
    x = torch.randn(1, 1, n, n, dtype=torch.complex64).requires_grad_()
    transform(x).abs().square().sum().backward()
    g = (n + 8) * (n + 4) if gain is None else gain(n)
    assert _rel(x.grad, 2 * g * x.detach()) < 2e-5


def test_freespace_is_correctly_scaled_at_the_2048_batch_1_size_that_trips_torch():
    # 1024^2 at 8 um over 0.3 m: the spread (1250 samples) exceeds N, padding N -> 2048^2
    lam, dx, w0, z = 532e-9, 8e-6, 100e-6, 0.3
    grid = Grid((1024, 1024), dx, (lam,))
    fs = FreeSpace(grid, z)
    assert fs.plan.padded_shape == (2048, 2048)
    y, x = grid.meshgrid()
    field = torch.exp(-(x**2 + y**2) / w0**2).to(torch.complex64)[None, None]
    out = fs(field)
    zr = math.pi * w0**2 / lam
    # closed forms: power conserved, on-axis amplitude w0 / w(z)
    assert power(out, grid).item() == pytest.approx(power(field, grid).item(), rel=1e-4)
    centre = intensity(out)[0, 0, 512, 512].sqrt().item()
    assert centre == pytest.approx(1 / math.sqrt(1 + (z / zr) ** 2), rel=1e-4)


# ----------------------------------------------------------------- next_fast_size


@pytest.mark.parametrize("multiple_of", [1, 4])
def test_next_fast_size_is_the_smallest_7_smooth_multiple(multiple_of):
    for n in range(1, 400):
        m = next_fast_size(n, multiple_of)
        assert m >= n and m % multiple_of == 0 and lfft.is_fast_size(m)
        assert not any(lfft.is_fast_size(k) and k % multiple_of == 0 for k in range(n, m))
    assert next_fast_size(1232, 4) == 1260  # not 1250 = 2 * 5^4 (slow, measured)
    assert next_fast_size(720, 4) == 720


# ----------------------------------------------------------------- padded filter


def _numpy_filter(x: torch.Tensor, kernel: torch.Tensor) -> np.ndarray:
    """Independent reference: explicit zero pad, numpy DFTs (numpy's ifft carries 1/(Hp Wp))."""
    h, w = x.shape[-2:]
    hp, wp = kernel.shape[-2:]
    xp = np.zeros((*x.shape[:-2], hp, wp), dtype=np.complex128)
    xp[..., :h, :w] = x.numpy()
    out = np.fft.ifft2(np.fft.fft2(xp) * kernel.numpy()) * (hp * wp)
    return out[..., :h, :w]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("x_shape", "k_shape"),
    [((3, 1, 16, 16), (1, 24, 24)), ((2, 2, 13, 17), (2, 20, 30)), ((2, 3, 9, 9), (3, 9, 9))],
)
def test_padded_filter_equals_explicit_pad_dft_multiply_idft_crop(x_shape, k_shape, dtype, backend):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, dtype=dtype, generator=gen)
    kernel = torch.randn(k_shape, dtype=dtype, generator=gen) / math.prod(k_shape[-2:])
    with lfft.fft_backend(backend, planner_effort="FFTW_ESTIMATE"):
        out = padded_fft_filter(x, kernel)
    assert out.shape == x.shape and out.dtype == dtype
    ref = torch.from_numpy(_numpy_filter(x, kernel))
    assert _rel(out.to(torch.complex128), ref) < (1e-5 if dtype == torch.complex64 else 1e-13)


@needs_pyfftw
def test_pyfftw_and_torch_backends_agree_on_values_and_gradients():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 2, 30, 30, dtype=torch.complex64, generator=gen)
    kernel = torch.randn(2, 48, 40, dtype=torch.complex64, generator=gen) / (48 * 40)
    results = {}
    for backend in ("torch", "pyfftw"):
        xi = x.clone().requires_grad_()
        with lfft.fft_backend(backend, planner_effort="FFTW_ESTIMATE"):
            y = padded_fft_filter(xi, kernel)
            y.abs().square().sum().backward()
        results[backend] = (y.detach(), xi.grad)
    assert _rel(results["pyfftw"][0], results["torch"][0]) < 1e-5
    assert _rel(results["pyfftw"][1], results["torch"][1]) < 1e-5


@needs_pyfftw
def test_pyfftw_backend_is_correct_when_two_threads_share_one_plan():
    gen = torch.Generator().manual_seed(2)
    kernel = torch.randn(1, 40, 40, dtype=torch.complex128, generator=gen) / 1600
    inputs = [torch.randn(2, 1, 32, 32, dtype=torch.complex128, generator=gen) for _ in range(6)]
    outputs: dict[int, torch.Tensor] = {}

    def work(i):
        outputs[i] = padded_fft_filter(inputs[i], kernel)

    with lfft.fft_backend("pyfftw", planner_effort="FFTW_ESTIMATE"):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for i, x in enumerate(inputs):
        assert _rel(outputs[i], torch.from_numpy(_numpy_filter(x, kernel))) < 1e-13


@needs_pyfftw
def test_pyfftw_backend_falls_back_to_torch_off_cpu():
    # the meta device has no data: only the torch path can run on it
    x = torch.empty(2, 1, 16, 16, dtype=torch.complex64, device="meta")
    kernel = torch.empty(1, 24, 24, dtype=torch.complex64, device="meta")
    with lfft.fft_backend("pyfftw"):
        assert padded_fft_filter(x, kernel).shape == (2, 1, 16, 16)


def test_pyfftw_backend_falls_back_to_torch_when_pyfftw_is_missing(monkeypatch):
    x = torch.randn(1, 1, 8, 8, dtype=torch.complex128)
    kernel = torch.randn(1, 12, 12, dtype=torch.complex128)
    monkeypatch.setitem(lfft._state, "backend", "pyfftw")
    monkeypatch.setattr(lfft, "pyfftw_available", lambda: False)
    monkeypatch.setattr(lfft, "_fftw_plan", None)  # would raise if the FFTW path ran
    ref = torch.from_numpy(_numpy_filter(x, kernel))
    assert _rel(padded_fft_filter(x, kernel), ref) < 1e-13
    with pytest.raises(ValueError, match="pip install pyfftw"):
        lfft.set_fft_backend("pyfftw")


@needs_pyfftw
def test_fftw_plan_cache_is_bounded_and_clearable():
    lfft.clear_fftw_cache()
    with lfft.fft_backend("pyfftw", planner_effort="FFTW_ESTIMATE"):
        for n in range(4, 4 + lfft._FFTW_CACHE_SIZE + 3):
            padded_fft_filter(
                torch.ones(1, 1, n, n, dtype=torch.complex64),
                torch.ones(1, n + 2, n + 2, dtype=torch.complex64),
            )
    assert len(lfft._FFTW_CACHE) == lfft._FFTW_CACHE_SIZE
    lfft.clear_fftw_cache()
    assert len(lfft._FFTW_CACHE) == 0


def test_backend_context_manager_restores_the_previous_choice_even_on_error():
    before = lfft.get_fft_backend()
    with pytest.raises(RuntimeError), lfft.fft_backend("torch", threads=1):
        raise RuntimeError("boom")
    assert lfft.get_fft_backend() == before
    assert lfft._state["threads"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "cufft"}, "name='cufft'"),
        ({"name": "torch", "threads": 0}, "threads=0"),
        ({"name": "torch", "threads": 1.5}, "threads=1.5"),
        ({"name": "torch", "planner_effort": "FFTW_FAST"}, "planner_effort='FFTW_FAST'"),
    ],
)
def test_bad_backend_settings_raise(kwargs, message):
    before = lfft.get_fft_backend()
    with pytest.raises(ValueError, match=message):
        lfft.set_fft_backend(**kwargs)
    assert lfft.get_fft_backend() == before


@pytest.mark.parametrize(
    ("x", "kernel", "message"),
    [
        (torch.ones(4, 4), torch.ones(4, 4, dtype=torch.complex64), "complex"),
        (
            torch.ones(4, 4, dtype=torch.complex64),
            torch.ones(4, 4, dtype=torch.complex128),
            "kernel.dtype",
        ),
        (
            torch.ones(8, 8, dtype=torch.complex64),
            torch.ones(6, 10, dtype=torch.complex64),
            "smaller than the field",
        ),
        (
            torch.ones(4, dtype=torch.complex64),
            torch.ones(4, 4, dtype=torch.complex64),
            ">= 2 dims",
        ),
    ],
)
def test_bad_filter_arguments_raise(x, kernel, message):
    with pytest.raises(ValueError, match=message):
        padded_fft_filter(x, kernel)


@pytest.mark.parametrize(
    ("phase", "message"),
    [
        (torch.zeros(8, 8, dtype=torch.complex64), "real floating-point"),
        (torch.zeros(8, 8, dtype=torch.int64), "real floating-point"),
        (torch.zeros(8, 6), r"must\s+end in the field's \(8, 8\)"),
    ],
)
def test_bad_phase_mask_raises(phase, message):
    x = torch.ones(1, 1, 8, 8, dtype=torch.complex64)
    kernel = torch.ones(1, 12, 12, dtype=torch.complex64)
    with pytest.raises(ValueError, match=message):
        padded_fft_filter(x, kernel, phase_rad=phase)


# --------------------------------------------------------------------------- auto + wisdom


def test_default_backend_is_auto_unless_the_environment_says_otherwise():
    expected = os.environ.get("LIGHTGEN_FFT_BACKEND", "auto")
    assert lfft.get_fft_backend() == expected


def test_a_bad_environment_choice_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("LIGHTGEN_FFT_BACKEND", "cufft")
    with pytest.raises(ValueError, match=r"LIGHTGEN_FFT_BACKEND='cufft'.*auto"):
        lfft._env_choice("LIGHTGEN_FFT_BACKEND", "auto", lfft.FFT_BACKENDS)


@pytest.mark.parametrize(("padded", "uses_fftw"), [((96, 96), False), ((384, 384), True)])
def test_auto_backend_uses_fftw_only_for_large_cpu_grids(monkeypatch, padded, uses_fftw):
    calls = []
    real_plan = lfft._fftw_plan

    def spy(*args):
        calls.append(args)
        return real_plan(*args)

    monkeypatch.setattr(lfft, "_fftw_plan", spy)
    monkeypatch.setattr(lfft, "pyfftw_available", lambda: True)
    x = torch.randn(1, 1, 16, 16, dtype=torch.complex128)
    kernel = torch.randn(1, *padded, dtype=torch.complex128)
    with lfft.fft_backend("auto"):
        if uses_fftw and not _PYFFTW:
            pytest.skip("pyfftw not installed")
        out = padded_fft_filter(x, kernel)
    assert bool(calls) == uses_fftw
    assert _rel(out, torch.from_numpy(_numpy_filter(x, kernel))) < 1e-12


@needs_pyfftw
def test_measured_plans_are_saved_as_wisdom_and_a_broken_file_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path))
    monkeypatch.setitem(lfft._WISDOM, "loaded", False)
    monkeypatch.setitem(lfft._WISDOM, "saved", None)
    lfft.wisdom_path().write_bytes(b"not wisdom")  # a corrupt file must not break planning
    lfft.clear_fftw_cache()
    x = torch.randn(1, 1, 20, 20, dtype=torch.complex64)
    kernel = torch.randn(1, 36, 36, dtype=torch.complex64)
    with lfft.fft_backend("pyfftw", planner_effort="FFTW_MEASURE"):
        out = padded_fft_filter(x, kernel)
    lfft.clear_fftw_cache()
    assert _rel(out, torch.from_numpy(_numpy_filter(x, kernel))) < 1e-5
    from safetensors.numpy import load_file

    blobs = load_file(str(lfft.wisdom_path()))  # replaced atomically by real wisdom
    assert sorted(blobs) == ["w0", "w1", "w2"]
    assert blobs["w1"].size > 0  # single-precision wisdom: the complex64 plans


# --------------------------------------------------------------------------- output pool


def test_pooled_outputs_reuse_memory_only_once_nothing_references_it(monkeypatch):
    monkeypatch.setattr(lfft, "_POOL", [])
    shape = (2, 1, 1024, 1024)  # 16 MB of complex64: above POOL_MIN_BYTES
    a = lfft.pooled_empty(shape, torch.complex64)
    a.fill_(1)
    b = lfft.pooled_empty(shape, torch.complex64)  # a is alive: new memory
    assert a.data_ptr() != b.data_ptr()
    view = a[0]
    ptr = a.data_ptr()
    del a
    c = lfft.pooled_empty(shape, torch.complex64)  # a's view still holds it
    assert c.data_ptr() != ptr
    del view
    d = lfft.pooled_empty(shape, torch.complex64)  # now it is free again
    assert d.data_ptr() == ptr and d.shape == shape and d.is_contiguous()
    assert d.grad_fn is None and not d.requires_grad


def test_pooled_output_saved_by_autograd_is_not_reused_before_backward(monkeypatch):
    monkeypatch.setattr(lfft, "_POOL", [])
    shape = (2, 1, 1024, 1024)
    out = lfft.pooled_empty(shape, torch.complex64).fill_(2)
    w = torch.ones((), requires_grad=True)
    loss = (w * out).abs().sum()  # the product's backward needs out: autograd saves it
    ptr = out.data_ptr()
    del out
    assert lfft.pooled_empty(shape, torch.complex64).data_ptr() != ptr
    loss.backward()
    assert w.grad.item() == pytest.approx(2 * shape[0] * 1024 * 1024)


def test_small_outputs_bypass_the_pool(monkeypatch):
    monkeypatch.setattr(lfft, "_POOL", [])
    lfft.pooled_empty((4, 4), torch.complex64)
    assert lfft._POOL == []


@pytest.mark.parametrize("backend", ["torch", "pyfftw"])
def test_bare_fft_pair_seconds_times_an_fft_pair_on_the_chosen_backend(backend):
    if backend == "pyfftw" and not lfft.pyfftw_available():
        pytest.skip("pyfftw not installed")
    with lfft.fft_backend(backend):
        t = lfft.bare_fft_pair_seconds((2, 1, 64, 64), repeats=2)
    assert 0 < t < 5
