"""The FFT path every propagator uses, with a guard against a torch scaling bug.

torch 2.13.0's CPU build mis-scales the *scaled* complex64 transforms at 2048x2048
with batch 1 and 2 threads (``ifft2`` and ``fft2(norm='forward'|'ortho')`` come back
off by 1/2048**2; upstream pytorch issue 169670). The *unscaled* transforms were
right at every size and batch we tried. So lightgen only ever calls unscaled
transforms -- ``fft2(norm='backward')`` forward and ``ifft2(norm='forward')``
inverse -- and folds the 1/(H*W) normalisation into the transfer function, which
is also one pass over memory fewer. ``tests/optics/test_fft.py`` checks exact round
trips and scaling at every size and batch the project uses.
"""

from __future__ import annotations

import torch

_FAST_RADICES = (2, 3, 5, 7)


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


def next_fast_size(n: int) -> int:
    """Smallest m >= n whose prime factors are all in {2, 3, 5, 7} (fast for FFT libraries)."""
    m = max(int(n), 1)
    while not is_fast_size(m):
        m += 1
    return m
