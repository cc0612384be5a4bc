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
