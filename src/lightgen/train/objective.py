"""The BOGT objective: reconstruction likelihood + beta * KL(Q(Z|X) || P(Z)).

Ground-truth free: the only target is the input image itself. The camera image
(after its gain/offset calibration) is modelled as the input plus Gaussian noise
of standard deviation ``sigma_x`` (relative to full scale), so the negative
log-likelihood per image is ``sum (x_hat - x)^2 / (2 sigma_x^2)`` up to a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BOGTTerms:
    loss: torch.Tensor  # scalar, mean over the batch
    recon: torch.Tensor  # scalar, mean NLL per image (nats)
    kl: torch.Tensor  # scalar, mean KL per image (nats)
    mse: torch.Tensor  # scalar, mean squared error per pixel


def bogt_loss(
    images: torch.Tensor,
    reconstruction: torch.Tensor,
    kl: torch.Tensor,
    beta: float,
    sigma_x: float,
) -> BOGTTerms:
    """``images``/``reconstruction`` ``(B, C, H, W)``; ``kl`` ``(B,)`` from the prior."""
    if reconstruction.shape[1] != images.shape[1]:
        # a grey image read by a multi-wavelength camera: compare every channel to it
        images = images.expand_as(reconstruction)
    se = (reconstruction - images).square()
    recon = se.flatten(1).sum(1) / (2 * sigma_x**2)
    loss = (recon + beta * kl).mean()
    return BOGTTerms(loss, recon.mean(), kl.mean(), se.mean())
