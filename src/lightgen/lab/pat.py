r"""Physics-aware training (Wright et al., "Deep physical neural networks trained with
backpropagation", *Nature* 601:549, 2022) of a fabricated chip, and lab evaluation.

The forward pass uses the frames the lab measures, the backward pass the calibrated
twin's gradients (the straight-through form of the paper's method):

.. math:: \text{frames} = \text{twin}(x) + \big(\text{lab}(x) - \text{twin}(x)\big)_{\text{detached}}

so the loss is the lab's, and its gradient the twin's Jacobian at the same input.

What a user may change after fabrication (``in-place``), and what needs a new chip:

* **in place**: the fiber ports (per-fiber attenuators, which only attenuate, and phase
  shifters), the camera's gain/offset calibration and the prior (the electronics that
  drive the injection port); and,
  optionally, :class:`SlmWeights`: a per-pixel transmission in [0, 1] the input SLM
  multiplies every image by (input-device modulation, equivalent to a passive amplitude
  mask in the SLM plane). The chip has no SLM-programmed diffractive layer; if it had,
  that layer would be here too. The laser power and the posterior variance (the noise
  source) could be changed in place too but stay at the design: reconstructions use the
  posterior mean, so nothing would hold the variance (it drifts to the prior's and the
  prior widens with it, ruining samples), and the laser power only rescales what the
  camera gain already sets while moving the latents away from the prior.
* **re-fabrication**: the metasurface height maps (passive, etched). No lab can show
  heights that do not exist yet, so the forward pass is the twin at the new heights
  corrected by the residual the lab measures on the chip that exists:
  ``twin(h', x) + (lab(x) - twin(h_fab, x))_detached`` (equal to the lab's frames while
  ``h' = h_fab``; the twin's remaining model error is taken from the lab, its change with
  the heights from the twin). Then the chip is fabricated again; on the simulated lab the
  new chip keeps the same systematic errors
  (:meth:`lightgen.lab.simulated.SimulatedLab.refabricate`).

**Robust re-design** (``robust_fabrication``, ``lab train --mode refabricate
--robust-fabrication``): the residual above is the chip's that exists; a chip made again
in the same setup has other placement and etch-depth errors, and heights fitted to the
first chip's residual recover only part of the next chip's loss (``docs/lab.md``). So the
forward pass is the twin alone, ``twin_k(h', x)``, with the setup's families
(aberration, fibers, camera: not :data:`~lightgen.lab.errors.FABRICATION_FAMILIES`) at
the calibration's values and the chip's families (layer shift, rotation, distance,
height scale) drawn afresh every step, ``u ~ N(0, 1)`` as
:meth:`~lightgen.lab.errors.ChipErrors.draw` draws them, from a generator of its own
(seeded ``seed + 1``; saved with the checkpoint): the expected loss over the chips this
setup will make, exact in the setup. The rule for the lab residual: it is **dropped**.
``lab(x) - twin(h_fab, x)`` is measured through one chip, so it carries that chip's
unfitted placement errors and cannot be split into a setup part and a chip part from the
frames; adding it would tie the heights to a chip that is about to be replaced. The
setup's share of it is what the calibration already fitted (its families). No lab
frames are used.

``mode``: ``"twin"`` (in-place parameters trained on the twin alone, no lab frames),
``"in-place"`` (physics-aware: lab forward, twin backward), ``"refabricate"`` (heights and
in-place parameters, residual-corrected as above when a lab is given, else the twin alone).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from lightgen.chip.chip import LightGenChip
from lightgen.lab.calibrate import set_lab_ports
from lightgen.lab.errors import FABRICATION_FAMILIES, ChipErrors, chip_layers
from lightgen.lab.protocol import Lab, calibrated_images
from lightgen.lab.twin import raw_frames
from lightgen.train.objective import bogt_loss

MODES: tuple[str, ...] = ("twin", "in-place", "refabricate")

IN_PLACE_PARTS = "fiber ports (attenuation >= 0 dB, phase), camera gain/offset calibration, prior"
REFABRICATED_PARTS = "metasurface height maps (every encoder and generator layer)"


class SlmWeights(torch.nn.Module):
    """A per-pixel amplitude transmission ``w`` in [0, 1] of the input SLM, ``(C, S, S)``:
    the SLM shows ``w * image``. Starts at 1 (the design); it can only attenuate (the laser
    power is the overall scale)."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.offset = torch.nn.Parameter(torch.zeros(shape))

    def weight(self) -> torch.Tensor:
        return (1 + self.offset).clamp(0, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.weight().to(images)

    @torch.no_grad()
    def project(self) -> None:
        self.offset.clamp_(-1, 0)


def in_place_parameters(system) -> list[torch.Tensor]:
    """The tensors a user may change on a fabricated chip (module doc), made trainable."""
    chip: LightGenChip = system.model.optical_chip
    gen = chip.generators[0]
    ports = [chip.port_attenuation_db, chip.port_phase_rad]
    for t in ports:
        t.requires_grad_(True)
    host = [gen.camera_log_gain, gen.camera_offset]
    return ports + host + list(system.prior.parameters())


def height_parameters(chip: LightGenChip) -> list[torch.Tensor]:
    out = []
    for layers, i in chip_layers(chip):
        out.append(layers[i].raw_height)
        if layers[i].raw_amplitude is not None:
            out.append(layers[i].raw_amplitude)
    return out


def check_mode(mode: str, robust_fabrication: bool = False) -> None:
    """Refuse an unknown training mode, and ``robust_fabrication`` outside ``refabricate``
    (named, with the choices)."""
    if mode not in MODES:
        raise ValueError(f"--mode {mode!r} is unknown; choose one of {', '.join(MODES)}.")
    if robust_fabrication and mode != "refabricate":
        raise ValueError(
            "--robust-fabrication re-designs the heights for the next chip; it needs --mode "
            f"refabricate, not --mode {mode}."
        )


class PhysicsAwareTrainer:
    """One BOGT mini-batch per :meth:`step`: reconstruction through lab frames (or the twin,
    ``mode="twin"``/``"refabricate"``), KL of the twin's coupled latents."""

    def __init__(
        self,
        system,
        twin: ChipErrors,
        lab: Lab | None,
        images: torch.Tensor,
        mode: str = "in-place",
        lr: float = 0.01,
        batch: int = 32,
        beta: float = 1.0,
        sigma_x: float = 0.25,
        seed: int = 0,
        slm: SlmWeights | None = None,
        fabricated: LightGenChip | None = None,
        robust_fabrication: bool = False,
    ) -> None:
        """``fabricated``: the chip as it exists in the lab (re-design's residual; default
        a copy of the system's chip as it is now). ``robust_fabrication`` (``refabricate``
        only): the chip's error families drawn afresh each step, the setup's from ``twin``,
        no lab residual (module doc)."""
        check_mode(mode, robust_fabrication)
        self.robust_fabrication = robust_fabrication
        self.chip_generator = torch.Generator().manual_seed(seed + 1)
        self.chip_draw: ChipErrors | None = None
        if robust_fabrication:
            lab = None  # the lab residual is chip-specific: dropped (module doc)
            self.chip_draw = copy.deepcopy(twin).requires_grad_(False)
        if mode == "twin":
            lab = None
        if mode == "in-place" and lab is None:
            raise ValueError("physics-aware training in place needs a lab to measure frames.")
        self.system, self.twin, self.lab, self.images = system, twin, lab, images
        self.chip: LightGenChip = system.model.optical_chip
        self.mode = mode
        twin.requires_grad_(False)
        self.system.requires_grad_(False)
        params = in_place_parameters(system)
        if mode == "refabricate":
            params += height_parameters(self.chip)
        self.slm = slm
        if slm is not None:
            params += list(slm.parameters())
        for p in params:
            p.requires_grad_(True)
        self.params = params
        # the chip as it exists in the lab (heights frozen) for the residual of re-design
        self.fabricated = None
        if mode == "refabricate" and lab is not None:
            fab = self.chip if fabricated is None else fabricated
            self.fabricated = copy.deepcopy(fab).requires_grad_(False)
        self.optimizer = torch.optim.Adam(params, lr=lr)  # constant step size
        self.batch, self.beta, self.sigma_x = batch, beta, sigma_x
        self.generator = torch.Generator().manual_seed(seed)
        self.step_count = 0

    def draw_chip(self) -> ChipErrors:
        """The twin of one chip this setup may make: the calibration's setup families, the
        :data:`FABRICATION_FAMILIES` drawn afresh from N(0, 1) (``robust_fabrication``)."""
        assert self.chip_draw is not None
        return self.chip_draw.redraw(FABRICATION_FAMILIES, self.chip_generator)

    def _frames(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.slm is not None:
            x = self.slm(x)
        twin = self.draw_chip() if self.robust_fabrication else self.twin
        twin_frames, mu = raw_frames(self.chip, twin, images=x, return_latents=True)
        if self.lab is None or self.mode == "twin":
            return twin_frames, mu
        set_lab_ports(self.lab, self.chip)
        self.lab.show(x.detach())
        lab_frames = self.lab.capture().to(twin_frames)
        if self.fabricated is None:
            return twin_frames + (lab_frames - twin_frames).detach(), mu
        with torch.no_grad():  # the fabricated chip with the current in-place settings
            fab, chip = self.fabricated, self.chip
            fab.port_attenuation_db.copy_(chip.port_attenuation_db)
            fab.port_phase_rad.copy_(chip.port_phase_rad)
            fab.laser_log_power_gain.copy_(chip.laser_log_power_gain)
            residual = lab_frames - raw_frames(fab, self.twin, images=x)
        return twin_frames + residual, mu

    def step(self) -> dict[str, float]:
        idx = torch.randint(0, self.images.shape[0], (self.batch,), generator=self.generator)
        x = self.images[idx]
        self.optimizer.zero_grad(set_to_none=True)
        frames, mu = self._frames(x)
        recon = calibrated_images(self.chip, frames)
        s = self.system
        log_var = s.model.log_var.expand(x.shape[0], -1)
        kl = s.prior.kl(s.free_part(mu), s.free_part(log_var))
        terms = bogt_loss(x, recon, kl, self.beta, self.sigma_x)
        terms.loss.backward()
        self.optimizer.step()
        with torch.no_grad():  # attenuators only attenuate
            self.chip.port_attenuation_db.clamp_(min=0)
        if self.slm is not None:
            self.slm.project()
        self.step_count += 1
        return {k: float(getattr(terms, k).detach()) for k in ("loss", "mse", "kl")}

    def run(self, steps: int, progress=None) -> None:
        while self.step_count < steps:
            terms = self.step()
            if progress is not None:
                progress(self.step_count, terms)


@torch.no_grad()
def lab_images(
    lab: Lab, chip: LightGenChip, images: torch.Tensor | None = None, latents=None, batch=100
) -> torch.Tensor:
    """Calibrated camera images in [0, 1] of the lab for SLM ``images`` or ``latents``."""
    set_lab_ports(lab, chip)
    x = images if images is not None else latents
    out = []
    for i in range(0, x.shape[0], batch):
        (lab.show if images is not None else lab.inject)(x[i : i + batch])
        out.append(calibrated_images(chip, lab.capture()).clamp(0, 1))
    return torch.cat(out)


def _grey_like(fake: torch.Tensor, channels: int) -> torch.Tensor:
    return fake.mean(1, keepdim=True) if fake.shape[1] != channels else fake


def lab_quality(
    system,
    lab: Lab,
    test_images: torch.Tensor,
    dataset: str,
    n_fid: int = 0,
    seed: int = 0,
    data_root=None,
    slm: SlmWeights | None = None,
    dataset_options: dict | None = None,
    classifier_augment: str = "none",
    figure: Path | None = None,
) -> dict:
    """Reconstruction PSNR (posterior mean, SLM path) on ``test_images`` and, with
    ``n_fid > 0``, FID of ``n_fid`` samples of the prior driven through the injection port,
    scored by :func:`lightgen.tasks.evaluate.evaluate_generated` (the judge of ``eval``,
    trained with ``classifier_augment``; ``dataset_options``: the run's loader options, so
    the held-out split and judge are the run's own). ``figure``: a PNG of what the lab
    made, to look at beside the numbers: rows of 8 held-out images over their
    reconstructions, then (with ``n_fid``) 16 samples."""
    from lightgen.metrics.image import psnr

    chip = system.model.optical_chip
    before = lab.frames_captured
    with torch.no_grad():
        shown = test_images if slm is None else slm(test_images)
    rec = _grey_like(lab_images(lab, chip, images=shown), test_images.shape[1])
    out = {"reconstruction_psnr_db": float(psnr(rec, test_images)), "n_psnr": len(rec)}
    if n_fid:
        from lightgen.tasks.evaluate import evaluate_generated

        g = torch.Generator().manual_seed(seed + 1)
        z = system.prior.sample(n_fid, generator=g)
        fake = _grey_like(lab_images(lab, chip, latents=z), test_images.shape[1])
        scores = evaluate_generated(
            fake,
            dataset,
            n=n_fid,
            seed=seed,
            data_root=data_root,
            classifier_augment=classifier_augment,
            dataset_options=dataset_options,
        )
        keep = ("fid", "kid_mean", "classifier_augment")
        out.update({k: scores[k] for k in keep} | {"n_fid": n_fid})
    out["frames_used_by_eval"] = lab.frames_captured - before
    if figure is not None:
        from lightgen.tasks.images import image_grid, save_png

        k = min(8, len(rec))
        rows = [test_images[:k], rec[:k]] + ([fake[:16]] if n_fid else [])
        up = max(1, 128 // test_images.shape[-1])  # image_grid clips to [0, 1]
        save_png(Path(figure), image_grid(torch.cat(rows), k, upscale=up))
        out["figure"] = str(figure)
    return out
