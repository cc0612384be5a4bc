import torch

from lightgen.chip.presets import preset
from lightgen.train.models import ChipModel, build_model, trainable_parameters


def test_digital_vae_is_sized_to_the_chips_trainable_parameters():
    cfg = preset("mnist")
    vae = build_model("vae", cfg)
    chip = trainable_parameters(ChipModel(cfg))
    assert abs(trainable_parameters(vae) - chip) / chip < 0.1


def test_hybrid_has_the_chips_optical_neurons_and_a_digital_mlp():
    cfg = preset("tiny")
    hybrid = build_model("hybrid", cfg)
    layers = [m for n, m in hybrid.named_modules() if type(m).__name__ == "MetasurfaceLayer"]
    assert len(layers) == cfg.encoder_layers + cfg.generator_layers
    assert any(
        isinstance(m, torch.nn.Linear) for m in hybrid.modules()
    )  # the digital part, named hybrid


def test_every_model_decodes_prior_samples_to_images():
    cfg = preset("tiny")
    for kind in ("chip", "hybrid", "vae"):
        m = build_model(kind, cfg)
        z = torch.randn(
            2, m.latent_dim, dtype=torch.complex64 if m.complex_latent else torch.float32
        )
        assert m.decode(z).shape == (2, 1, 12, 12), kind


def test_every_model_follows_the_trained_model_protocol():
    from lightgen.chip.chip import LightGenChip
    from lightgen.train.models import TrainedModel

    cfg = preset("emoji-64", grid_samples=96, image_size=16)  # colour: grey input differs
    expect = {
        "chip": (True, True, True),
        "hybrid": (True, True, False),
        "vae": (False, False, False),
    }
    for kind, (complex_latent, grey, optical) in expect.items():
        m = build_model(kind, cfg)
        assert isinstance(m, TrainedModel), kind
        assert m.image_shape == (3, 16, 16), kind
        assert (m.complex_latent, m.accepts_grey_input) == (complex_latent, grey), kind
        assert isinstance(m.optical_chip, LightGenChip) == optical, kind
        x = torch.rand(2, *m.image_shape)
        mu, log_var = m.posterior(x)
        assert mu.shape == log_var.shape == (2, m.latent_dim), kind
        assert mu.is_complex() == complex_latent, kind


def test_hybrid_keeps_the_chips_encoder_but_builds_no_chip_generator():
    import pytest

    hybrid = build_model("hybrid", preset("tiny"))
    assert len(hybrid.net.chip.generators) == 0
    assert not any(k.startswith("net.chip.generators") for k in hybrid.state_dict())
    with pytest.raises(ValueError, match="0 generator"):
        hybrid.net.chip.decode(torch.zeros(1, hybrid.latent_dim, dtype=torch.complex64))
