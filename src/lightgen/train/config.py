"""Typed, validated training configuration (saved in every checkpoint as JSON)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lightgen.chip.config import ChipConfig
from lightgen.chip.fabrication import FabricationModel
from lightgen.chip.presets import preset


class TrainConfig(BaseModel):
    """Everything that decides a training run. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    model: Literal["chip", "hybrid", "vae"] = "chip"
    preset: str = "tiny"
    chip: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the preset's ChipConfig fields"
    )
    dataset: str = "printed-digits"
    data_root: str | None = None
    train_limit: int | None = Field(default=None, ge=1)
    steps: int = Field(default=1000, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=0.02, gt=0, le=10)
    beta: float = Field(default=1.0, ge=0)
    sigma_x: float = Field(default=0.1, gt=0)
    prior: Literal["gaussian", "mixture"] = "gaussian"
    n_components: int = Field(default=10, ge=2, le=256)
    init_log_var: float = Field(default=-2.0, ge=-20, le=5)
    seed: int = 0
    checkpoint_every: int = Field(default=250, ge=1)
    log_every: int = Field(default=10, ge=1)
    grad_clip: float = Field(default=10.0, gt=0)
    activation_checkpointing: bool = False
    condition_fibers: int = Field(
        default=0,
        ge=0,
        description="last k latent dims driven by the injection port with given values",
    )
    condition_on: Literal["none", "labels"] = Field(
        default="none",
        description=(
            "labels: class-conditional training -- the data set's labels drive the condition "
            "fibers as a one-hot code (a conditional VAE; still no paired target images)"
        ),
    )
    condition_amplitude: float = Field(
        default=2.0,
        gt=0,
        le=100,
        description="latent amplitude injected into the 'on' fiber of a one-hot class code",
    )
    condition_all_wavelengths: bool = Field(
        default=False,
        description=(
            "True: each condition fiber carries its value at every wavelength (k x n_wavelengths "
            "latent dims); False: the last k latent dims, i.e. the last k fibers of the last "
            "wavelength only"
        ),
    )
    fabrication: FabricationModel | None = Field(
        default=None, description="fabrication-aware training: quantisation + placement jitter"
    )
    device: str = "cpu"
    fft_backend: Literal["auto", "torch", "pyfftw"] = Field(
        default="auto",
        description="CPU FFT backend: auto = pyfftw (extra fast-fft) on large grids, else torch",
    )

    def chip_config(self) -> ChipConfig:
        return preset(self.preset, **self.chip)

    @model_validator(mode="after")
    def _all_wavelengths_needs_conditions(self) -> TrainConfig:
        if (
            self.condition_all_wavelengths
            and self.condition_on == "none"
            and self.condition_fibers == 0
        ):
            raise ValueError(
                "condition_all_wavelengths=True needs condition fibers; set condition_on='labels' "
                "or condition_fibers > 0 (or drop condition_all_wavelengths)."
            )
        return self

    def with_label_conditions(self, n_classes: int) -> TrainConfig:
        """This config with ``condition_fibers = n_classes`` when ``condition_on='labels'``
        (unchanged otherwise); a non-zero ``condition_fibers`` must already equal it."""
        if self.condition_on != "labels":
            return self
        if n_classes < 2:
            raise ValueError(
                f"condition_on='labels' needs a labelled data set with >= 2 classes; "
                f"{self.dataset!r} has {n_classes}. Use condition_on='none'."
            )
        if self.condition_fibers not in (0, n_classes):
            raise ValueError(
                f"condition_on='labels' drives one fiber per class: condition_fibers must be "
                f"{n_classes} (the classes of {self.dataset!r}) or 0 (set automatically), "
                f"got {self.condition_fibers}."
            )
        return self.model_copy(update={"condition_fibers": n_classes})


def load_train_config(data: dict) -> TrainConfig:
    """Validate a dict (from JSON/TOML/CLI); errors name the key and the fix."""
    try:
        cfg = TrainConfig(**data)
        cfg.chip_config()
        return cfg
    except ValidationError as e:
        lines = []
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(config)"
            if err["type"] == "extra_forbidden":
                known = (
                    ", ".join(sorted(TrainConfig.model_fields))
                    if len(err["loc"]) == 1
                    else "see ChipConfig"
                )
                lines.append(f"unknown key {key!r}; known keys: {known}")
            else:
                lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
        raise ValueError("invalid training config:\n  " + "\n  ".join(lines)) from None
