"""The linear-regime generator study (benchmarks/linear_generator.py): least squares against
PCA, the camera's linear term against |A + L|^2 = A^2 + 2 A Re L + |L|^2, a fiber's field
against the Gaussian beam, the port solve against known ports."""

import math

import pytest
import torch

from lightgen.chip.chip import LightGenChip
from lightgen.chip.config import ChipConfig
from lightgen.chip.presets import PRESETS
from lightgen.optics.fibers import fiber_positions_m


@pytest.fixture
def lg(load_script):
    return load_script("linear_generator")


def _chip(**over) -> LightGenChip:
    torch.manual_seed(0)
    return LightGenChip(ChipConfig.model_validate({**PRESETS["emoji-64"], **over}))


def test_least_squares_on_the_pca_basis_is_the_uncentred_pca(lg):
    torch.manual_seed(0)
    train, test = torch.rand(40, 2, 6, 6), torch.rand(7, 2, 6, 6)
    want = lg.per_colour_pca(train, test, 5, centred=False)
    basis = torch.stack(
        [torch.linalg.svd(train[:, c].reshape(40, -1), full_matrices=False)[2][:5] for c in (0, 1)]
    )
    coef, rec = lg.least_squares(3.0 * basis, test.reshape(7, 2, -1), ridge=0.0)
    torch.testing.assert_close(rec.reshape(test.shape).clamp(0, 1), want, atol=1e-5, rtol=0)
    # orthonormal rows scaled by 3: the coefficients are the projections over 3
    torch.testing.assert_close(
        coef, torch.einsum("lmp,nlp->nlm", basis, test.reshape(7, 2, -1)) / 3, atol=1e-5, rtol=0
    )


def test_coefficients_drive_the_camera_linear_term_of_a_plane_reference(lg):
    """The latents built from coefficients make 2 A Re L equal to (basis . coefficients) up to
    one positive factor: checked through the chip's own camera, |A + L|^2 - A^2 - |L|^2."""
    chip = _chip()
    cfg = chip.config
    gen = chip.generators[0]
    with torch.no_grad():
        fields = lg.fiber_pixel_fields(chip)
        basis = torch.cat([fields.real, fields.imag], 1)
        scale = basis.square().mean().sqrt()
        coef = torch.randn(3, cfg.n_wavelengths, 2 * cfg.n_fibers)
        z = lg.latents_from_coefficients(coef, scale)
        want = torch.einsum("nlm,lmp->nlp", coef, basis / scale)
        field = gen.camera_field(chip.emitted_field(z))
        amp = 5.0 * field.abs().mean()
        linear = (
            gen.relative_intensity(field + amp)
            - gen.relative_intensity(torch.zeros_like(field) + amp)
            - gen.relative_intensity(field)
        ).reshape(want.shape)
    ratio = (linear * want).sum() / want.square().sum()
    assert ratio > 0
    torch.testing.assert_close(linear, ratio * want, atol=1e-4 * linear.abs().max(), rtol=0)
    # the wrong sign convention (z = c1 + i c2) would not match
    wrong = torch.complex(coef[..., : cfg.n_fibers], coef[..., cfg.n_fibers :]).reshape(3, -1)
    assert not torch.allclose(lg.latents_from_coefficients(coef, scale), wrong / scale)


def test_a_fiber_through_a_flat_layer_paints_the_gaussian_beam(lg):
    """One uniform-height layer (a constant phase): fiber k's pixel field is the free-space
    Gaussian beam of its mode at z = 6 mm, centred on the fiber,
    E = exp(-r^2 / w^2 + i k r^2 / 2R) with w = w0 sqrt(1 + (z/z_R)^2), R = z (1 + (z_R/z)^2),
    z_R = pi w0^2 / lambda, averaged over each camera pixel's samples (the beam's curvature
    makes that average narrower than the beam: it is what the pixel integrates)."""
    chip = _chip(generator_layers=1, fiber_to_generator_m=3e-3, generator_to_camera_m=3e-3)
    cfg = chip.config
    with torch.no_grad():
        chip.generators[0].stack.layers[0].raw_height.zero_()
        fields = lg.fiber_pixel_fields(chip)  # (L, K, P)
    s, k, n, dx = cfg.image_size, cfg.camera_pixel_samples, cfg.grid_samples, cfg.pixel_pitch_m
    top = n // 2 - s * k // 2
    coord = (torch.arange(top, top + s * k, dtype=torch.float64) - n // 2) * dx
    yy, xx = torch.meshgrid(coord, coord, indexing="ij")
    pos = fiber_positions_m(cfg.n_fibers, cfg.fiber_pitch_m, cfg.fiber_layout)
    w0, z = cfg.fiber_mode_field_diameter_m / 2, 6e-3
    for li, lam in enumerate(cfg.wavelengths_m):
        zr = math.pi * w0**2 / lam
        w, r_curv = w0 * math.sqrt(1 + (z / zr) ** 2), z * (1 + (zr / z) ** 2)
        for fk in (0, 5, 15):
            r2 = (yy - pos[fk, 0]) ** 2 + (xx - pos[fk, 1]) ** 2
            e = torch.exp(-r2 / w**2 + 1j * (2 * math.pi / lam) * r2 / (2 * r_curv))
            e = torch.complex(
                torch.nn.functional.avg_pool2d(e.real[None], k),
                torch.nn.functional.avg_pool2d(e.imag[None], k),
            ).flatten()
            p = fields[li, fk].to(torch.complex128)
            overlap = (e.conj() * p).sum().abs() ** 2 / (
                e.abs().square().sum() * p.abs().square().sum()
            )
            assert overlap > 0.999, (lam, fk, overlap)
            # the pixel average without the curvature would be a different (wider) beam
            flat = torch.nn.functional.avg_pool2d(torch.exp(-r2 / w**2)[None], k).flatten()
            wrong = (flat * p).sum().abs() ** 2 / (flat.square().sum() * p.abs().square().sum())
            assert wrong < 0.99


def test_solve_ports_recovers_known_ports(lg):
    torch.manual_seed(1)
    fields = torch.randn(3, 4, 50, dtype=torch.complex64)
    w = torch.randn(3, 4, dtype=torch.complex64)
    z = torch.randn(20, 12, dtype=torch.complex64)
    x = lg.ported(z, w, fields, (20, 3, 50))
    torch.testing.assert_close(lg.solve_ports(z, fields, x), w, atol=1e-4, rtol=1e-4)
    # summed three images at a time: the same normal equations
    torch.testing.assert_close(lg.solve_ports(z, fields, x, chunk=3), w, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        lg.ported(z, w, fields, (20, 3, 50)),
        (w.view(1, 3, 4, 1) * z.view(20, 3, 4, 1) * fields).real.sum(2),
        atol=1e-5,
        rtol=1e-5,
    )


def test_local_targets_are_unit_fields_and_need_a_square_array(lg):
    torch.manual_seed(2)
    t = lg.local_targets(torch.rand(30, 3, 16, 16), 4, 0.3)
    assert t.shape == (3, 4, 256) and t.is_complex()
    torch.testing.assert_close(t.abs().square().sum(-1), torch.ones(3, 4))
    # fitted at 8 px and upsampled: the same windows' basis, smooth, at 16 px
    small = lg.local_targets(torch.rand(30, 3, 16, 16), 4, 0.3, fit_size=8)
    assert small.shape == (3, 4, 256)
    torch.testing.assert_close(small.abs().square().sum(-1), torch.ones(3, 4))
    with pytest.raises(ValueError, match="n_fibers=5"):
        lg.local_targets(torch.rand(30, 3, 16, 16), 5, 0.3)


def test_the_camera_image_tends_to_the_linear_image_as_one_over_the_reference(lg):
    """|A + L|^2 - A^2 = 2 A Re L + |L|^2: after the gain calibration the camera image is the
    linear image ``Re sum_k z_k P_k`` plus a residual ~ |L|^2 / (2 A), so its error falls as
    1 / A (x4 per x4 in A) and vanishes for a strong reference."""
    chip = _chip()
    cfg = chip.config
    with torch.no_grad():
        fields = lg.fiber_pixel_fields(chip)
        L, K, P = fields.shape
        # explicit sum for render_linear
        z = torch.randn(6, L * K, dtype=torch.complex64)
        want = torch.stack(
            [
                torch.stack(
                    [sum(z[n, c * K + k] * fields[c, k] for k in range(K)).real for c in range(L)]
                )
                for n in range(6)
            ]
        )
        torch.testing.assert_close(lg.render_linear(z, fields), want, atol=1e-4, rtol=1e-4)
        # latents of a grey image's projection (the pixels inside (0, 1) are compared)
        basis = torch.cat([fields.real, fields.imag], 1)
        scale = basis.square().mean().sqrt()
        x = (0.5 + 0.05 * torch.randn(6, L, P)).clamp(0.3, 0.7)
        coef, _ = lg.least_squares(basis / scale, x)
        z = lg.latents_from_coefficients(coef, scale)
        lin = lg.render_linear(z, fields).reshape(6, L, cfg.image_size, cfg.image_size)
        inside = (lin > 0.05) & (lin < 0.95)
        assert inside.float().mean() > 0.2  # the clamp of [0, 1] plays no part there
        err = {
            r: (lg.camera_images(chip, z, r, z, fields) - lin)[inside].abs().mean().item()
            for r in (4.0, 16.0, 1000.0)
        }
        clean, noisy = lg.camera_readings(chip, z, 16.0, z, fields, photons=0)
        assert lg.camera_readings(chip, z, 16.0, z, fields)[1] is None
    torch.testing.assert_close(clean, lg.camera_images(chip, z, 16.0, z, fields))
    assert 0 < (noisy - clean).abs().mean() < 0.1  # shot noise on the same light
    assert err[1000.0] < 2e-3 * lin[inside].abs().mean()
    assert 3.0 < err[4.0] / err[16.0] < 5.5, err


def test_class_samples_are_drawn_from_the_selected_class(lg):
    g = torch.Generator().manual_seed(3)
    means = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, -5.0], [0.0, 8.0, 3.0]])
    labels = torch.arange(3).repeat_interleave(400)
    r = means[labels] + torch.randn(1200, 3, generator=g) * torch.tensor([1.0, 0.5, 2.0])
    for components in (1, 3):
        draws, lab = lg.class_samples(r, labels, 3, 3000, seed=0, components=components)
        assert draws.shape == (9000, 3)
        assert lab.tolist() == [c for c in range(3) for _ in range(3000)]
        for c in range(3):
            d = draws[lab == c]
            torch.testing.assert_close(d.mean(0), r[labels == c].mean(0), atol=0.15, rtol=0)
            torch.testing.assert_close(d.std(0), r[labels == c].std(0), atol=0.15, rtol=0.1)
    # one pooled Gaussian ignores the classes: its draws spread over all three
    pooled, _ = lg.class_samples(r, torch.zeros(1200, dtype=torch.long), 1, 3000, seed=0)
    torch.testing.assert_close(pooled.mean(0), r.mean(0), atol=0.3, rtol=0)


def test_per_colour_pca_basis_is_each_colours_svd(lg):
    torch.manual_seed(4)
    train = torch.rand(30, 3, 5, 5, dtype=torch.float64)
    before = train.clone()
    m, v = lg.per_colour_pca_basis(train, 4, centred=True)
    assert torch.equal(train, before)  # centred in a copy, not in the caller's images
    assert v.shape == (3, 4, 25)
    for c in range(3):
        x = train[:, c].reshape(30, -1).double()
        torch.testing.assert_close(m[c], x.mean(0))
        torch.testing.assert_close(v[c] @ v[c].T, torch.eye(4, dtype=v.dtype), atol=1e-8, rtol=0)
        vt = torch.linalg.svd(x - x.mean(0), full_matrices=False)[2][:4]
        # the same subspace: the projectors agree
        torch.testing.assert_close(v[c].T @ v[c], vt.T @ vt, atol=1e-8, rtol=0)


def test_photon_counting_camera_matches_shot_noise_closed_forms(lg):
    """Mean = the intensity, variance = Poisson's (mu electrons: var mu) plus read noise and
    the ADC's uniform quantisation, saturation at the full well."""
    c = 0.37
    rel = torch.full((200_000,), c, dtype=torch.float64)
    out = lg.photon_counting(rel, c, seed=1)
    mu, e_per = 8_000.0, 8_000.0 / c  # 80 % of the 10,000 e full well at the brightest pixel
    step = 10_000 / 4095  # electrons per ADC code
    var = (mu + 1.5**2 + step**2 / 12) / e_per**2
    assert abs(out.mean().item() - c) < 4 * math.sqrt(var / len(rel)) + step / e_per / 2
    assert abs(out.var().item() / var - 1) < 0.02
    codes = out * e_per / step
    torch.testing.assert_close(codes, codes.round(), atol=1e-6, rtol=0)  # digitised
    sat = lg.photon_counting(torch.full((10,), 3 * c, dtype=torch.float64), c, seed=2)
    torch.testing.assert_close(sat, torch.full_like(sat, 10_000 / e_per))  # full well
    torch.testing.assert_close(lg.photon_counting(rel, c, seed=1), out)  # seeded


def test_nearest_train_distance_catches_copies(lg):
    g = torch.Generator().manual_seed(0)
    train = torch.rand(50, 3, 64, 64, generator=g)
    copies = lg.nearest_train_distance(train[:10], train)
    torch.testing.assert_close(copies, torch.zeros(10, dtype=torch.float64))
    new = lg.nearest_train_distance(torch.rand(10, 3, 64, 64, generator=g), train)
    # two independent uniform images at 32 px (2 x 2 means): rms difference ~ sqrt(2/12/4)
    assert (new > 0.1).all() and (new < 0.25).all()
    shifted = lg.nearest_train_distance(train[:10] + 0.05, train)
    torch.testing.assert_close(
        shifted, torch.full((10,), 0.05, dtype=torch.float64), atol=1e-6, rtol=0
    )
