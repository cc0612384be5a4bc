"""`lightgen` command line: one command, sub-commands for each job."""

from __future__ import annotations

import json
import os
import tomllib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from lightgen.chip.config import ChipConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()

# options shared by several sub-commands
CheckpointOpt = Annotated[Path, typer.Option(help="run folder or checkpoints/step-* folder")]
DataRootOpt = Annotated[
    str | None, typer.Option(help="folder holding the data sets (default ../shared/data)")
]
TrainedDatasetOpt = Annotated[
    str | None, typer.Option(help="default: the data set it was trained on")
]
SeedOpt = Annotated[int, typer.Option(min=0, max=2**32 - 1, help="random seed, 0..2**32-1")]
SamplerOpt = Annotated[
    str,
    typer.Option(
        help="where the fiber drive values come from: prior (the trained P(Z)) | expost-gmm "
        "(a Gaussian mixture fitted to the encoded training set, saved with the checkpoint; "
        "docs/results.md) | expost-class (one Gaussian per class of the encoded training set; "
        "--component c draws class c)"
    ),
]
GmmComponentsOpt = Annotated[
    int | None, typer.Option(help="--sampler expost-gmm: mixture components (default 10)")
]
GmmCovarianceOpt = Annotated[
    str | None, typer.Option(help="--sampler expost-gmm: full (default) | diag")
]
OutFolderOpt = Annotated[Path, typer.Option(help="output folder")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda, auto")]
ResumeOpt = Annotated[bool, typer.Option("--resume/--no-resume")]
FabricationSeedOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=2**32 - 1,
        help="simulated lab only: the chip made again in the same setup (new layer "
        "placement and etch-depth errors; the setup's aberration, fibers, camera kept)",
    ),
]
BatchOpt = Annotated[int, typer.Option()]


def _fail(msg: str) -> None:
    from rich.markup import escape

    # "[chip]" is text, not markup; soft_wrap: never fold a path or value across lines (the
    # terminal wraps the line; a copied path stays whole)
    console.print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)
    raise typer.Exit(2)


def _require_at_least(flag: str, value: int | None, low: int, fix: str) -> None:
    if value is not None and value < low:
        _fail(f"{flag} {value} is below {low}; {fix}")


def _check_out_dir(path: Path, flag: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a file or cannot be written
    (creates nothing)."""
    if path.exists() and not path.is_dir():
        _fail(f"{flag} {path} is an existing file; pass a folder (new or existing).")
    anc = path
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        _fail(f"{flag} {path} cannot be created: {anc} is a file. Choose another folder.")
    if not os.access(anc, os.W_OK | os.X_OK):
        _fail(
            f"{flag} {path} is not writable (permission denied on {anc}). Choose a folder you can write to."
        )


def _check_out_file(path: Path, flag: str = "--out") -> None:
    """Refuse, before any work, an output file path that is a folder or cannot be written."""
    if path.is_dir():
        _fail(f"{flag} {path} is a folder; pass a file name, e.g. {path / 'eval.json'}.")
    if path.exists() and not os.access(path, os.W_OK):
        _fail(f"{flag} {path} is read-only. Choose a file you can write to.")
    _check_out_dir(path.parent if str(path.parent) else Path("."), f"{flag} (its folder)")


def _version(value: bool) -> None:
    if value:
        from lightgen import __version__

        console.print(f"lightgen {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """LightGen all-optical generative chip: simulate, train, evaluate, export."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        console.print(f"[yellow]warning:[/] {message}")

    warnings.showwarning = show  # one line per warning, no source-line echo


CONFIG_FORMATS = {".json": "JSON", ".toml": "TOML"}


def _read_config_file(path: Path | None) -> dict:
    if path is None:
        return {}
    formats = " or ".join(CONFIG_FORMATS)
    if path.is_dir():
        _fail(f"--config {path} is a folder; pass a {formats} training config file.")
    if not path.is_file():
        _fail(f"--config {path} does not exist; pass a {formats} training config.")
    kind = CONFIG_FORMATS.get(path.suffix.lower())
    if kind is None:
        _fail(
            f"--config {path}: {path.suffix or 'no suffix'!r} is not a config format lightgen "
            f"reads; use {formats} (YAML is not supported: convert it to TOML or JSON)."
        )
    try:
        text = path.read_bytes().decode("utf-8")
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except UnicodeDecodeError:
        _fail(f"--config {path} is not a UTF-8 text file; pass a {kind} training config.")
    except OSError as e:
        _fail(f"--config {path} cannot be read ({e.strerror or e}).")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        _fail(f"--config {path} is not valid {kind}: {e}")
    if not isinstance(data, dict):
        from lightgen.train.config import TrainConfig

        _fail(
            f"--config {path} holds a {kind} {type(data).__name__}; it must be an object of "
            f"training config keys: {', '.join(sorted(TrainConfig.model_fields))}."
        )
    return data


@app.command()
def info(
    preset: Annotated[str | None, typer.Option(help="chip preset name [default: paper]")] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="a training config (TOML or JSON): the chip it builds, i.e. its preset with "
            "its [chip] overrides"
        ),
    ] = None,
) -> None:
    """Print a chip's physical design, its neuron count per part and its connectivity."""
    from lightgen.chip.presets import preset as get_preset

    if preset is not None and config is not None:
        _fail("give --preset or --config, not both (a config names its own preset).")
    if config is not None:
        try:
            cfg = _train_config(config).chip_config()
        except ValueError as e:
            _fail(f"{config}: {e}")
        title = f"LightGen chip of {config} (preset '{cfg.name}' with its overrides)"
    else:
        try:
            cfg = get_preset(preset or "paper")
        except ValueError as e:
            _fail(str(e))
        title = f"LightGen chip preset '{preset or 'paper'}'"
    t = Table(title=title)
    t.add_column("part")
    t.add_column("diffractive neurons", justify="right")
    n = cfg.neurons()
    side = cfg.layer_pixels
    t.add_row(
        f"encoder ({cfg.encoder_layers} layers x {side}x{side} pixels)",
        f"{n['encoder']:,}",
    )
    t.add_row(
        f"generator(s) ({cfg.n_generators} x {cfg.generator_layers} layers)", f"{n['generators']:,}"
    )
    t.add_row(
        f"optical latent space ({cfg.n_fibers} single-mode fibers)",
        f"{cfg.latent_dim} complex values",
    )
    t.add_row("[bold]total", f"[bold]{n['total']:,}")
    console.print(t)
    _print_connectivity(cfg)
    console.print(cfg.model_dump_json(indent=1))


def _print_connectivity(cfg: ChipConfig) -> None:
    from lightgen.chip.connectivity import connectivity

    c = connectivity(cfg)
    t = Table(
        title=(
            f"connectivity: one neuron's sideways reach d*tan(theta_max), theta_max = "
            f"{c.max_angle_rad * 1e3:.1f} mrad, over the {c.aperture_m * 1e3:.2f} mm aperture "
            "(>= 1: fully connected hop)"
        )
    )
    t.add_column("hop")
    t.add_column("distance (mm)", justify="right")
    t.add_column("reach / aperture", justify="right")
    for h in c.hops:
        t.add_row(h.name, f"{h.distance_m * 1e3:.2f}", f"{h.reach_fraction:.2f}")
    t.add_row(
        "one fiber -> camera", "", f"{c.generator_fiber_reach_fraction:.2f} of the camera width"
    )
    t.add_row("SLM -> one fiber", "", f"{c.encoder_fiber_reach_fraction:.2f} of the SLM width")
    console.print(t)
    for w in c.warnings():
        console.print(f"[yellow]warning:[/] {w}")
    if cfg.layer_pixel_samples == 1:
        console.print(
            "[yellow]note:[/] one grid sample per metasurface pixel: freely trained masks are "
            "not resolved and their numbers are upper bounds (docs/physics.md, the sampling "
            "check); train with layer_pixel_samples = 2 (grid_samples, slm_pixel_samples and "
            "camera_pixel_samples x 2, pixel_pitch_m / 2) or check a trained run with lightgen "
            "check-grid."
        )


def _csv_list(text: str | None) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]`` (``None`` stays ``None``)."""
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _train_config(config: Path | None, **opts) -> TrainConfig:  # noqa: F821
    from lightgen.train.config import load_train_config

    data = _read_config_file(config)
    data.update({k: v for k, v in opts.items() if v is not None})
    try:
        return load_train_config(data)
    except ValueError as e:
        _fail(str(e))


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="run folder (checkpoints, logs)")] = Path("runs/train"),
    config: Annotated[
        Path | None, typer.Option(help="JSON or TOML TrainConfig; options below override it")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="chip (all-optical) | hybrid | vae (digital)")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="chip preset: tiny, mnist, mnist-16f, mnist-16f-r2, emoji-64, emoji-512, paper, … (docs/chip-and-training.md)"
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="mnist, fashion-mnist, emoji, emoji-black, emoji-svg, shapes, printed-digits "
            "(image size: the preset's, e.g. --preset emoji-128)"
        ),
    ] = None,
    data_root: DataRootOpt = None,
    emoji_families: Annotated[
        str | None,
        typer.Option(help="emoji-svg: comma-separated families (default noto,twemoji,openmoji)"),
    ] = None,
    emoji_groups: Annotated[
        str | None,
        typer.Option(
            help="emoji-svg: comma-separated CLDR groups = classes (default smileys-emotion,"
            "animals-nature,food-drink,travel-places; 'all' = every group)"
        ),
    ] = None,
    emoji_background: Annotated[
        str | None, typer.Option(help="emoji-svg: black (default) | white")
    ] = None,
    steps: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    beta: Annotated[float | None, typer.Option(help="weight of the KL term")] = None,
    sigma_x: Annotated[
        float | None, typer.Option(help="camera-image noise std of the likelihood (full scale 1)")
    ] = None,
    prior: Annotated[str | None, typer.Option(help="gaussian | mixture")] = None,
    n_components: Annotated[int | None, typer.Option()] = None,
    prior_covariance: Annotated[
        str | None,
        typer.Option(help="mixture components: isotropic (default) | diagonal (per dimension)"),
    ] = None,
    train_limit: Annotated[
        int | None, typer.Option(help="use only the first N training images")
    ] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    device: DeviceOpt = None,
    fft_backend: Annotated[
        str | None, typer.Option(help="auto (default) | torch | pyfftw (CPU, extra fast-fft)")
    ] = None,
    condition_on: Annotated[
        str | None,
        typer.Option(
            help="none (default, unsupervised) | labels: class-conditional -- labels drive "
            "one injection fiber per class (one-hot) | components: one mixture component per "
            "class (needs --prior mixture); still no target images"
        ),
    ] = None,
    input_augment: Annotated[
        str | None,
        typer.Option(
            help="none (default) | handwriting: the encoder sees handwriting-like deformations "
            "of the training images, the camera is scored against the images themselves"
        ),
    ] = None,
    condition_amplitude: Annotated[
        float | None, typer.Option(help="latent amplitude of the 'on' class fiber (default 2)")
    ] = None,
    condition_all_wavelengths: Annotated[
        bool | None,
        typer.Option(
            "--condition-all-wavelengths/--condition-last-dims",
            help="class fibers carry their code at every wavelength (colour) / only the last "
            "latent dims (last wavelength)",
        ),
    ] = None,
    reference_amplitude: Annotated[
        float | None,
        typer.Option(
            help="chip: > 0 feeds the last fiber (every wavelength) from the laser with this "
            "constant latent amplitude, a holographic reference (default 0: none)"
        ),
    ] = None,
    refine: Annotated[
        int,
        typer.Option(
            min=1,
            help="simulate the chip on a grid R times finer than the config's: each SLM, "
            "camera and metasurface pixel R x R more samples, the same physical chip "
            "(TrainConfig.refined). With --resume a coarse run goes on on the finer grid "
            "(coarse-to-fine; recorded as 'schedule'); the run's config then keeps the "
            "finer grid",
        ),
    ] = 1,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="continue the run in --out")
    ] = False,
) -> None:
    """Train a chip (or a baseline) with BOGT: no labels, no targets (with --condition-on
    labels, the labels drive injection fibers as conditions; with --condition-on components
    each class owns a mixture component of the prior; still no target images)."""
    # every option but --out, --config, --resume and --refine overrides the TrainConfig field of its
    # name: the signature above is the one list of them (read first, while the function's
    # locals are its parameters alone)
    overrides = {
        k: v for k, v in locals().items() if k not in ("out", "config", "resume", "refine")
    }
    from lightgen.train.trainer import train_from_config

    _check_out_dir(out)
    overrides.update(emoji_families=_csv_list(emoji_families), emoji_groups=_csv_list(emoji_groups))
    cfg = _train_config(config, **overrides)
    try:
        cfg = cfg.refined(refine)
        res = train_from_config(cfg, out, resume=resume)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        _fail(str(e))
    console.print(
        f"trained {res.steps} steps in {res.seconds:.1f} s; final loss {res.final_loss:.4g}"
    )
    console.print(f"checkpoint: {res.checkpoint}")


FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="grid: a PNG grid (always written) | folder: also one full-resolution PNG per "
        "image + manifest.csv/json | npy: also one (N, C, H, W) float32 array + manifest",
    ),
]


def _print_image_set(files: dict[str, str]) -> None:
    for kind in ("folder", "npy", "manifest"):
        if kind in files:
            console.print(f"  {kind}: {files[kind]}")


@app.command()
def generate(
    checkpoint: CheckpointOpt,
    out: Annotated[Path, typer.Option(help="output folder (writes samples.png)")] = Path(
        "runs/generate"
    ),
    n: Annotated[int, typer.Option(help="number of images")] = 64,
    component: Annotated[
        int | None, typer.Option(help="component of the sampler's mixture (class control)")
    ] = None,
    seed: SeedOpt = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite/--no-overwrite", help="replace an existing samples.png")
    ] = False,
    fmt: FormatOpt = "grid",
    sampler: SamplerOpt = "prior",
    gmm_components: GmmComponentsOpt = None,
    gmm_covariance: GmmCovarianceOpt = None,
) -> None:
    """Sample Z (from the prior or an ex-post mixture), drive the fibers, read the camera;
    write a PNG grid and the sampler's JSON record beside it (and, with --format
    folder|npy, every image with a manifest of seed, component and sampler)."""
    from lightgen.tasks.generate import write_samples
    from lightgen.tasks.images import atomic_write
    from lightgen.train.expost import resolve_sampler
    from lightgen.train.trainer import load_trained

    _require_at_least("--n", n, 1, "generate at least one image, e.g. --n 64.")
    _require_at_least("--component", component, 0, "components count from 0.")
    _check_out_dir(out)
    if (out / "samples.png").exists() and not overwrite:
        _fail(
            f"{out / 'samples.png'} exists; pass --overwrite to replace it, or choose another --out."
        )
    try:
        system, cfg = load_trained(checkpoint)
        src, record = resolve_sampler(
            checkpoint, system, cfg, sampler, gmm_components, gmm_covariance
        )
        files = write_samples(
            system,
            cfg,
            out,
            n,
            seed=seed,
            component=component,
            fmt=fmt,
            sampler=src,
            sampler_name=sampler,
        )
    except ValueError as e:
        _fail(str(e))
    rec = {**record, "n": n, "seed": seed, "component": component}
    atomic_write(out / "sampler.json", lambda p: p.write_text(json.dumps(rec, indent=1)))
    console.print(f"wrote {n} generated images to {files['grid']} (sampler: {sampler})")
    _print_image_set(files)


@app.command(name="eval")
def eval_(
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="run folder or checkpoints/step-* folder (or give --generated)"),
    ] = None,
    generated: Annotated[
        Path | None,
        typer.Option(
            help="score this folder of images made elsewhere instead (same judge, same "
            "held-out split; needs --dataset, or --checkpoint for its data set and size)"
        ),
    ] = None,
    dataset: TrainedDatasetOpt = None,
    data_root: DataRootOpt = None,
    n: Annotated[int, typer.Option(help="generated and real images compared")] = 1000,
    out: Annotated[
        Path | None, typer.Option(help="JSON file (default: <checkpoint>/eval-<dataset>.json)")
    ] = None,
    seed: SeedOpt = 0,
    fab_levels: Annotated[
        int | None, typer.Option(help="evaluate as fabricated: etch levels (2..65536)")
    ] = None,
    fab_shift_std_m: Annotated[
        float, typer.Option(min=0.0, help="as fabricated: lateral placement std (m)")
    ] = 0.0,
    fab_rotation_std_rad: Annotated[
        float, typer.Option(min=0.0, help="as fabricated: rotation std (rad)")
    ] = 0.0,
    fab_distance_std_m: Annotated[
        float, typer.Option(min=0.0, help="as fabricated: axial placement std (m)")
    ] = 0.0,
    n_per_class: Annotated[
        int, typer.Option(min=1, help="mixture prior + labels: images generated per class")
    ] = 64,
    classifier_size: Annotated[
        int | None,
        typer.Option(help="run the SmallCNN at this size (default: the chip's; e.g. 64 at 512 px)"),
    ] = None,
    class_grid: Annotated[
        Path | None,
        typer.Option(help="per-class sample grid PNG (default: next to the JSON, -per-class.png)"),
    ] = None,
    temperature: Annotated[
        float,
        typer.Option(help="factor on the prior's std for every generated image (1 = P(Z))"),
    ] = 1.0,
    classifier_augment: Annotated[
        str,
        typer.Option(
            help="judge's training: 'none' (clean real images), 'chip' (speckle, blur "
            "and gain on half of them) or 'colour' (every image recoloured at random: a "
            "shape judge); augmented judges are cached separately"
        ),
    ] = "none",
    sampler: SamplerOpt = "prior",
    gmm_components: GmmComponentsOpt = None,
    gmm_covariance: GmmCovarianceOpt = None,
    input_power_w: Annotated[
        str | None,
        typer.Option(
            help="sweep the laser power (watts, comma-separated, e.g. 1e-11,1e-10,1e-9) with a "
            "photon-counting camera: PSNR, judge accuracy (and FID/KID with --n-generated) "
            "against optical energy per image; writes JSON and CSV (docs/devices.md)"
        ),
    ] = None,
    n_generated: Annotated[
        int, typer.Option(min=0, help="--input-power-w: generated images scored per power")
    ] = 0,
    camera_qe: Annotated[
        float | None, typer.Option(help="--input-power-w: quantum efficiency (default 0.8)")
    ] = None,
    camera_exposure_s: Annotated[
        float | None, typer.Option(help="--input-power-w: exposure, s (default 1e-3)")
    ] = None,
    camera_read_noise_e: Annotated[
        float | None, typer.Option(help="--input-power-w: read noise, e- rms (default 1.5)")
    ] = None,
    camera_full_well_e: Annotated[
        float | None, typer.Option(help="--input-power-w: full well, e- (default 10000)")
    ] = None,
    camera_bit_depth: Annotated[
        int | None, typer.Option(help="--input-power-w: ADC bits (default 12)")
    ] = None,
    camera_dark_current_e_per_s: Annotated[
        float | None, typer.Option(help="--input-power-w: dark current, e-/s (default 0)")
    ] = None,
    reference_psnr_db: Annotated[
        float | None,
        typer.Option(
            help="--input-power-w: noise-free PSNR the operating point (within 1 dB) is judged "
            "against (default: this chip's own with an ideal camera)"
        ),
    ] = None,
    slm_model: Annotated[
        str | None,
        typer.Option(
            help="--input-power-w: write the inputs through this modulator instead of the "
            "chip's own: ideal | slm | dmd"
        ),
    ] = None,
    slm_bit_depth: Annotated[
        int | None, typer.Option(help="--input-power-w: SLM drive levels, bits (default 8)")
    ] = None,
    slm_fill_factor: Annotated[
        float | None, typer.Option(help="--input-power-w: SLM linear fill factor (default 1)")
    ] = None,
    refine: Annotated[
        int,
        typer.Option(
            min=1,
            help="the sampling check: evaluate the same chip on an R x finer grid, each mask "
            "pixel R x R samples of one height (lightgen.chip.fabrication.refined); a chip "
            "whose numbers move here is not resolved by its own grid (docs/physics.md)",
        ),
    ] = 1,
) -> None:
    """FID/KID/precision/recall, copying control (nearest-training-image distance),
    reconstruction PSNR/SSIM, optical efficiencies, per-class generation accuracy (mixture
    prior); prints and writes JSON. With --generated DIR: the images in DIR (made by any
    model) scored by the same judge on the same held-out split. With --input-power-w: image
    quality against optical energy per image (a laser-power sweep)."""
    from lightgen.chip.fabrication import FabricationModel
    from lightgen.tasks.evaluate import EvalOptions, evaluate
    from lightgen.tasks.grid_check import refine_system
    from lightgen.tasks.images import atomic_write
    from lightgen.train.expost import check_sampler_options, resolve_sampler
    from lightgen.train.trainer import load_trained

    _require_at_least("--n", n, 2, "FID and KID compare at least 2 images; e.g. --n 1000.")
    # the flags that act on the chip itself (as fabricated, temperature, per-class grid)
    chip_only = {
        "--fab-levels": fab_levels is not None,
        "--fab-shift-std-m": fab_shift_std_m != 0,
        "--fab-rotation-std-rad": fab_rotation_std_rad != 0,
        "--fab-distance-std-m": fab_distance_std_m != 0,
        "--temperature": temperature != 1.0,
        "--class-grid": class_grid is not None,
        "--refine": refine != 1,
    }
    chip_flags = [flag for flag, given in chip_only.items() if given]
    if generated is not None:
        if out is not None:
            _check_out_file(out)
        given = chip_flags
        if given:
            _fail(
                f"{', '.join(given)} act on a chip; with --generated the images are already "
                "made. Drop them, or evaluate the chip with --checkpoint alone."
            )
        _eval_generated(
            generated,
            checkpoint,
            dataset,
            data_root,
            n,
            out,
            seed,
            classifier_size,
            classifier_augment,
        )
        return
    if checkpoint is None:
        _fail("pass --checkpoint RUN (a trained chip) or --generated DIR (a folder of images).")
    slm_opts = {"model": slm_model, "bit_depth": slm_bit_depth, "fill_factor": slm_fill_factor}
    camera_opts = {
        "quantum_efficiency": camera_qe,
        "exposure_s": camera_exposure_s,
        "read_noise_e": camera_read_noise_e,
        "full_well_e": camera_full_well_e,
        "bit_depth": camera_bit_depth,
        "dark_current_e_per_s": camera_dark_current_e_per_s,
    }
    if input_power_w is not None:
        given = chip_flags + (["--sampler"] if sampler != "prior" else [])
        if given:
            _fail(
                f"{', '.join(given)} cannot be combined with --input-power-w (the energy sweep "
                "uses the trained prior and the chip as designed); run them separately."
            )
        _eval_energy(
            checkpoint, dataset, data_root, n, n_generated, out, seed, input_power_w,
            camera_opts, reference_psnr_db, slm_opts,
        )  # fmt: skip
        return
    flags = {
        "--camera-qe": camera_qe,
        "--camera-exposure-s": camera_exposure_s,
        "--camera-read-noise-e": camera_read_noise_e,
        "--camera-full-well-e": camera_full_well_e,
        "--camera-bit-depth": camera_bit_depth,
        "--camera-dark-current-e-per-s": camera_dark_current_e_per_s,
        "--slm-model": slm_model,
        "--slm-bit-depth": slm_bit_depth,
        "--slm-fill-factor": slm_fill_factor,
    }
    given = [flag for flag, v in flags.items() if v is not None]
    if given or n_generated or reference_psnr_db is not None:
        _fail(
            f"{', '.join(given) or '--n-generated / --reference-psnr-db'} only act on the energy "
            "sweep; add --input-power-w P1,P2,... (watts) or drop them."
        )
    _require_at_least(
        "--fab-levels",
        fab_levels,
        2,
        "a fabricated height map has 2..65536 etch levels, e.g. --fab-levels 8.",
    )
    _require_at_least("--n-per-class", n_per_class, 1, "e.g. --n-per-class 64.")
    if fab_levels is not None and fab_levels > 65536:
        _fail(
            f"--fab-levels {fab_levels} is above 65536 (16-bit height maps); e.g. --fab-levels 8."
        )
    for flag, value in (
        ("--fab-shift-std-m", fab_shift_std_m),
        ("--fab-rotation-std-rad", fab_rotation_std_rad),
        ("--fab-distance-std-m", fab_distance_std_m),
        ("--temperature", temperature),
    ):
        if value != value or value in (float("inf"), float("-inf")):
            _fail(f"{flag} {value} must be a finite number.")
    if out is not None:
        _check_out_file(out)
    else:
        _check_out_dir(Path(checkpoint), "--checkpoint (eval writes its JSON there)")
    if class_grid is not None:
        _check_out_file(class_grid, "--class-grid")
    try:
        fab = None
        if fab_levels or fab_shift_std_m or fab_rotation_std_rad or fab_distance_std_m:
            fab = FabricationModel(
                levels=fab_levels,
                shift_std_m=fab_shift_std_m,
                rotation_std_rad=fab_rotation_std_rad,
                distance_std_m=fab_distance_std_m,
            )
        sampler, k_gmm, cov_gmm = check_sampler_options(sampler, gmm_components, gmm_covariance)
        system, cfg = load_trained(checkpoint)
        if refine > 1:
            refine_system(system, cfg, refine, data_root or cfg.data_root, seed)
        src, record = resolve_sampler(
            checkpoint, system, cfg, sampler, gmm_components, gmm_covariance, refine=refine
        )
        tag = ("" if fab is None else "-fabricated") + (f"-refined{refine}" if refine > 1 else "")
        if sampler != "prior":
            tag += f"-{sampler}-{cov_gmm}" + (f"-k{k_gmm}" if k_gmm else "")
        grid = class_grid or (
            (out.parent / f"{out.stem}-per-class.png")
            if out is not None
            else Path(checkpoint) / f"eval-{dataset or cfg.dataset}{tag}-per-class.png"
        )
        options = EvalOptions(
            dataset=dataset,
            n=n,
            seed=seed,
            data_root=data_root or cfg.data_root,  # like every task: the trained-on data
            fabrication=fab,
            n_per_class=n_per_class,
            classifier_size=classifier_size,
            class_grid_path=grid,
            temperature=temperature,
            classifier_augment=classifier_augment,
            sampler=src,
            sampler_record=record,
        )
        res = evaluate(system, cfg, options)
        if refine > 1:
            res["refine"] = refine
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    t = Table(title=f"eval of {checkpoint}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in res.items():
        if k == "sampler":
            v = v["sampler"] + (
                f" ({v['covariance']}, {v['n_components']} components)" if "covariance" in v else ""
            )
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(t)
    dest = out or (Path(checkpoint) / f"eval-{res['dataset']}{tag}.json")
    atomic_write(dest, lambda p: p.write_text(json.dumps(res, indent=1)))
    console.print(f"wrote {dest}")


@app.command(name="check-grid")
def check_grid(
    checkpoint: CheckpointOpt,
    refine: Annotated[
        list[int] | None,
        typer.Option(
            help="grid R x finer to check against (repeat for several, e.g. --refine 2 "
            "--refine 4); the verdict compares with R = 2"
        ),
    ] = None,
    n: Annotated[int, typer.Option(help="held-out images reconstructed")] = 200,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="JSON file (default: <checkpoint>/grid-check.json)"),
    ] = None,
) -> None:
    """The sampling check, cheaply: held-out reconstruction PSNR on the run's own grid and
    on grids R x finer (the same physical chip; camera gain/offset refitted), and the
    verdict: resolved when the grid 2x finer moves it by less than 0.3 dB (docs/physics.md).
    What eval --refine scores, without FID."""
    from lightgen.tasks.grid_check import grid_check
    from lightgen.tasks.images import atomic_write

    _require_at_least("--n", n, 1, "reconstruct at least 1 held-out image; e.g. --n 200.")
    if out is not None:
        _check_out_file(out)
    try:
        res = grid_check(checkpoint, sorted(set(refine or [2])), n, data_root, seed)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    t = Table(title=f"sampling check of {checkpoint} ({res['n_held_out']} held-out images)")
    for col in ("grid", "samples per mask pixel", "PSNR (dB)", "change (dB)", "seconds"):
        t.add_column(col, justify="right")
    for r in res["rows"]:
        grid = "own" if r["refine"] == 1 else f"{r['refine']}x finer"
        change = "" if r["refine"] == 1 else f"{r['change_db']:+.2f}"
        t.add_row(
            grid,
            str(r["layer_pixel_samples"]),
            f"{r['psnr_db']:.2f}",
            change,
            f"{r['seconds']:.0f}",
        )
    console.print(t)
    verdict = {True: "resolved", False: "NOT resolved", None: "no verdict (add --refine 2)"}
    console.print(f"{verdict[res['resolved']]}: {res['rule']}")
    dest = out or (Path(checkpoint) / "grid-check.json")
    atomic_write(dest, lambda p: p.write_text(json.dumps(res, indent=1)))
    console.print(f"wrote {dest}")


def _eval_energy(
    checkpoint: Path,
    dataset: str | None,
    data_root: str | None,
    n: int,
    n_generated: int,
    out: Path | None,
    seed: int,
    input_power_w: str,
    camera_opts: dict,
    reference_psnr_db: float | None,
    slm_opts: dict,
) -> None:
    from lightgen._io import atomic_write_text
    from lightgen.tasks.energy import (
        camera_settings,
        curve_csv,
        energy_curve,
        energy_figure,
        parse_powers_w,
        slm_settings,
    )
    from lightgen.tasks.images import save_figure
    from lightgen.train.trainer import load_trained

    if out is not None:
        _check_out_file(out)
    else:
        _check_out_dir(Path(checkpoint), "--checkpoint (eval writes its JSON there)")
    if n_generated == 1:
        _fail("--n-generated 1: FID and KID compare at least 2 images; e.g. --n-generated 1000.")
    try:
        powers = parse_powers_w(input_power_w)
        camera = camera_settings(**camera_opts)
        slm = slm_settings(**slm_opts)
        system, cfg = load_trained(checkpoint)
        res = energy_curve(
            system,
            cfg,
            powers,
            camera,
            dataset,
            n,
            n_generated,
            seed,
            data_root or cfg.data_root,
            reference_psnr_db=reference_psnr_db,
            slm=slm,
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    t = Table(title=f"image quality vs optical energy per image, {checkpoint}")
    cols = (
        ("laser W", "laser_power_w", ".3g"),
        ("J / reconstruction", "reconstruction_energy_j", ".3g"),
        ("photons / px", "reconstruction_photons_per_pixel", ".3g"),
        ("PSNR dB", "reconstruction_psnr_db", ".2f"),
        ("judge acc", "reconstruction_judge_accuracy", ".3f"),
        ("J / generated", "generation_energy_j", ".3g"),
        ("FID", "fid", ".1f"),
    )
    for head, _, _ in cols:
        t.add_column(head, justify="right")
    for r in res["curve"]:
        t.add_row(*("-" if r[k] is None else format(r[k], f) for _, k, f in cols))
    console.print(t)
    ref, op = res["reference"], res["operating_point"]
    console.print(
        f"noise-free (ideal camera): PSNR {ref['reconstruction_psnr_db']:.2f} dB"
        + (f", FID {ref['fid']:.1f}" if "fid" in ref else "")
    )
    if op["energy_j"] is None:
        console.print(
            f"no swept power reaches {op['target_psnr_db']:.2f} dB (noise-free - 1 dB); sweep "
            "higher powers"
        )
    else:
        console.print(
            f"operating point (PSNR >= {op['target_psnr_db']:.2f} dB): {op['energy_j']:.3g} J per "
            f"reconstruction at {op['laser_power_w']:.3g} W (interpolated "
            f"{op['interpolated_energy_j']:.3g} J), {op['photons_per_pixel']:.3g} photons/px"
        )
    dest = out or (Path(checkpoint) / f"eval-energy-{res['dataset']}.json")
    atomic_write_text(dest, json.dumps(res, indent=1))
    csv_dest, png = dest.with_suffix(".csv"), dest.with_suffix(".png")
    atomic_write_text(csv_dest, curve_csv(res))
    save_figure(png, energy_figure([(f"{res['preset']} on {res['dataset']}", res)]))
    console.print(f"wrote {dest}, {csv_dest} and {png}")


def _eval_generated(
    folder: Path,
    checkpoint: Path | None,
    dataset: str | None,
    data_root: str | None,
    n: int,
    out: Path | None,
    seed: int,
    classifier_size: int | None,
    classifier_augment: str,
) -> None:
    from lightgen.data.folder import load_flat_folder
    from lightgen.tasks.evaluate import evaluate_generated
    from lightgen.tasks.images import atomic_write
    from lightgen.train.trainer import load_trained

    try:
        images, _ = load_flat_folder(folder)
        options = None
        if checkpoint is not None:
            _, cfg = load_trained(checkpoint)
            dataset = dataset or cfg.dataset
            options = cfg.dataset_options(dataset)  # the run's emoji families/groups
            size = cfg.chip_config().image_size
            if images.shape[-1] != size:
                raise ValueError(
                    f"the images in {folder} are {images.shape[-1]}x{images.shape[-1]} but the "
                    f"chip of {checkpoint} (the comparison) makes {size}x{size}; resize them to "
                    f"{size}x{size}, or drop --checkpoint to score them at their own size."
                )
        if dataset is None:
            raise ValueError(
                "--generated needs the data set the images imitate: pass --dataset (e.g. "
                "mnist) or --checkpoint of the chip they are compared with."
            )
        res = evaluate_generated(
            images,
            dataset,
            n,
            seed,
            data_root,
            classifier_size=classifier_size,
            classifier_augment=classifier_augment,
            dataset_options=options,
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    res["generated"] = str(folder)
    t = Table(title=f"eval of the images in {folder}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in res.items():
        if not isinstance(v, dict):
            t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(t)
    dest = out or (folder / f"eval-{res['dataset']}.json")
    atomic_write(dest, lambda p: p.write_text(json.dumps(res, indent=1)))
    console.print(f"wrote {dest}")


@app.command()
def perf(
    preset: Annotated[
        str | None,
        typer.Option(
            help="chip preset (default paper, which reproduces the paper's figures; with "
            "--quality-curve the curve's own preset)"
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="use a trained chip's design instead")
    ] = None,
    counting: Annotated[str | None, typer.Option(help="naive | conservative (default)")] = None,
    input_device: Annotated[
        str | None, typer.Option(help="slm | dmd | ideal (not a bottleneck)")
    ] = None,
    frame_rate_hz: Annotated[
        float | None, typer.Option(help="override the input frame rate")
    ] = None,
    quality_curve: Annotated[
        Path | None,
        typer.Option(
            help="JSON of lightgen eval --input-power-w: energy per image and TOPS/W at its "
            "operating point (PSNR within 1 dB of noise-free), beside the paper and a digital "
            "decoder timed on this CPU; the photon budget uses that curve's camera"
        ),
    ] = None,
) -> None:
    """TOPS, TOPS/W, TOPS/mm², photon budget and the assumptions behind them."""
    from lightgen.chip.design import chip_design, preset_design
    from lightgen.chip.presets import PAPER_PRESET
    from lightgen.hardware import perf_text

    try:
        curve = None
        if quality_curve is not None:
            from lightgen.hardware.quality import read_quality_curve

            curve = read_quality_curve(quality_curve)
        chip_cfg = None
        if checkpoint is not None:
            from lightgen.train.trainer import load_trained

            _, cfg = load_trained(checkpoint)
            chip_cfg = cfg.chip_config()
            design = chip_design(chip_cfg)
        else:
            preset = preset or (curve.get("preset") if curve else None) or PAPER_PRESET
            design = preset_design(preset)
        paper = checkpoint is None and preset == PAPER_PRESET
        noise = None
        if curve is not None:
            cam = curve["camera"]
            noise = (cam["read_noise_e"], cam["quantum_efficiency"])
        text = perf_text(
            design,
            counting,
            input_device,
            frame_rate_hz,
            reconcile_with_paper=paper,
            camera_noise=noise,
        )
        if curve is not None:
            text += "\n" + _quality_section(curve, quality_curve, design, counting, chip_cfg)
    except ValueError as e:
        _fail(str(e))
    print(text)


def _quality_section(curve: dict, path: Path, design, counting, chip_cfg) -> str:
    """The ``--quality-curve`` section: the chip's energy at the curve's operating point and a
    digital decoder of the same latent width timed on this CPU (assumed power)."""
    from lightgen.chip.presets import preset as make_preset
    from lightgen.hardware.digital import cpu_power_w, time_decoder
    from lightgen.hardware.quality import format_quality_point, quality_point
    from lightgen.train.models import build_model

    q = quality_point(curve, design, counting or "conservative")
    chip_cfg = chip_cfg or make_preset(curve.get("preset") or design.name)
    vae = build_model("vae", chip_cfg)
    t = time_decoder(vae.dec, (vae.latent_dim,), batch=256, repeats=5)
    watts = cpu_power_w()
    label = (
        f"CPU-measured: the digital VAE decoder (latent {vae.latent_dim} real, the chip's "
        f"parameter budget) {t.seconds_per_image * 1e6:.3g} us per image on this CPU "
        f"({torch_threads()} thread(s)) x {watts:.3g} W assumed (TDP share)"
    )
    return format_quality_point(q, str(path), curve["camera"], t.seconds_per_image * watts, label)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Option(help="trained chip (run folder or step folder)")],
    out: Annotated[Path, typer.Option(help="export folder")] = Path("runs/export"),
    format: Annotated[
        str, typer.Option("--format", help="heightmap | gds | slm | sheet | all (or a comma list)")
    ] = "all",
    lut: Annotated[
        Path | None, typer.Option(help="phase -> pillar lookup table CSV (default: built-in)")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite/--no-overwrite")] = False,
) -> None:
    """Height maps (PNG16 + NPY), GDSII, SLM bitmaps, fiber coordinates and a design sheet."""
    from lightgen.chip.design import chip_amplitudes, chip_design, chip_heights_m
    from lightgen.export import export_design
    from lightgen.train.trainer import load_trained

    try:
        system, cfg = load_trained(checkpoint)
        chip = system.model.optical_chip
        if chip is None:
            _fail(
                f"{checkpoint} holds a {cfg.model!r} model; only all-optical chips (--model chip) are exported."
            )
        report = export_design(
            out,
            chip_design(cfg.chip_config()),
            chip_heights_m(chip),
            formats=format,
            amplitudes=chip_amplitudes(chip),
            lut=lut,
            overwrite=overwrite,
        )
    except ValueError as e:
        _fail(str(e))
    console.print(report.summary())


def _float_list(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        _fail(f"{option} {text!r} must be comma-separated numbers, e.g. 0.1,0.2,0.3.")
    return []


@app.command(name="denoise")
def denoise_cmd(
    checkpoint: CheckpointOpt,
    out: OutFolderOpt = Path("runs/denoise"),
    sigmas: Annotated[
        str, typer.Option(help="noise std relative to full scale, comma list")
    ] = "0.1,0.2,0.3,0.4",
    n: Annotated[int, typer.Option(help="number of held-out digits")] = 256,
    dataset: Annotated[
        str | None, typer.Option(help="default: MNIST test split if found, else printed-digits")
    ] = None,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    fmt: FormatOpt = "grid",
) -> None:
    """Noisy digits in, camera images out: PBMP and PSNR before/after the fiber bottleneck."""
    from lightgen.tasks.denoise import run_denoise
    from lightgen.train.trainer import load_trained

    _check_out_dir(out)
    levels = _float_list(sigmas, "--sigmas")
    try:
        system, cfg = load_trained(checkpoint)
        rep = run_denoise(system, cfg, out, levels, n, seed, dataset, data_root, fmt=fmt)
    except ValueError as e:  # includes missing data files (MissingDataError)
        _fail(str(e))
    t = Table(title=f"denoising {rep['n']} {rep['dataset']} digits (PBMP delta = 35/255)")
    for col in (
        "sigma",
        "PBMP before %",
        "PBMP after %",
        "reduction %",
        "PSNR before",
        "PSNR after",
    ):
        t.add_column(col, justify="right")

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    for lv in rep["levels"]:
        t.add_row(
            f"{lv['sigma']:g}",
            fmt(lv["pbmp_before_pct"], ".2f"),
            fmt(lv["pbmp_after_pct"], ".2f"),
            fmt(lv["pbmp_relative_reduction_pct"], "+.1f"),
            fmt(lv["psnr_before_db"], ".2f"),
            fmt(lv["psnr_after_db"], ".2f"),
        )
    console.print(t)
    console.print(
        f"clean-input reconstruction: PBMP {rep['clean_input_pbmp_pct']:.2f} %; paper's best "
        f"relative reduction: {rep['paper_best_relative_pbmp_reduction_pct']} %"
    )
    console.print(f"wrote {out / 'denoise.json'} and {rep['files']['grid']}")
    _print_image_set(rep["files"])


@app.command(name="edit")
def edit_cmd(
    checkpoint: CheckpointOpt,
    out: OutFolderOpt = Path("runs/edit"),
    region: Annotated[
        str,
        typer.Option(
            help="auto | top | bottom | left | right | top-left | top-right | bottom-left | "
            "bottom-right | center, or a pixel box r0,r1,c0,c1"
        ),
    ] = "auto",
    k: Annotated[int, typer.Option(help="number of fibers to edit")] = 3,
    attenuation_db: Annotated[
        float, typer.Option(help="port attenuation on those fibers (dB, >= 0; inf blocks)")
    ] = 10.0,
    phase_rad: Annotated[float, typer.Option(help="port phase shift (rad)")] = 0.0,
    n: Annotated[
        int, typer.Option(help="held-out images: half to find fibers, half to score")
    ] = 64,
    n_random: Annotated[int, typer.Option(help="random-fiber baseline draws")] = 5,
    dataset: TrainedDatasetOpt = None,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Find fibers that control one image region (no labels) and edit them through the ports."""
    from lightgen.tasks.edit import PortSetting, parse_region, run_edit
    from lightgen.train.trainer import load_trained

    _check_out_dir(out)
    try:
        reg = parse_region(region)
        system, cfg = load_trained(checkpoint)
        rep = run_edit(
            system,
            cfg,
            out,
            reg,
            k,
            PortSetting(attenuation_db, phase_rad),
            n,
            n_random,
            seed,
            dataset,
            data_root,
        )
    except ValueError as e:
        _fail(str(e))
    console.print(f"region {rep['region']}: fibers {rep['fibers']} via {rep['mechanism']}")
    console.print(
        f"change inside / outside the region (mean per image, {rep['edit']['images_scored']} "
        f"held-out images): {rep['edit']['ratio_mean']:.2f}  vs  {rep['random_ratio_mean']:.2f} "
        f"for {rep['k']} random fibers (1.00 = no preference)"
    )
    console.print(f"wrote {out / 'edit.json'} and edit_before/after/difference.png")


@app.command(name="video")
def video_cmd(
    checkpoint: CheckpointOpt,
    out: OutFolderOpt = Path("runs/video"),
    n_frames: Annotated[int, typer.Option(help="frames per video")] = 48,
    keyframes: Annotated[int, typer.Option(help="encoded images the interpolation visits")] = 4,
    fibers: Annotated[
        str | None,
        typer.Option(help="latent indices for the edit walk, comma list (default: find --k)"),
    ] = None,
    k: Annotated[
        int, typer.Option(help="fibers found automatically when --fibers is not given")
    ] = 3,
    attenuation_db: Annotated[float, typer.Option(help="edit-walk end attenuation (dB)")] = 20.0,
    phase_rad: Annotated[float, typer.Option(help="edit-walk end phase shift (rad)")] = 0.0,
    fps: Annotated[float, typer.Option(help="frames per second (<= 100)")] = 12.0,
    loop: Annotated[bool, typer.Option("--loop/--no-loop", help="walk back to the start")] = True,
    mp4: Annotated[
        bool, typer.Option("--mp4/--no-mp4", help="also write MP4 (needs ffmpeg)")
    ] = True,
    dataset: TrainedDatasetOpt = None,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Latent-walk videos (GIF + MP4): interpolation between images and a port-edit ramp."""
    from lightgen.tasks.edit import PortSetting
    from lightgen.tasks.video import run_video
    from lightgen.train.trainer import load_trained

    _check_out_dir(out)
    fib = None
    if fibers is not None:
        try:
            fib = [int(v) for v in fibers.split(",") if v.strip()]
        except ValueError:
            _fail(f"--fibers {fibers!r} must be comma-separated integers, e.g. 3,17,42.")
    try:
        system, cfg = load_trained(checkpoint)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            rep = run_video(
                system,
                cfg,
                out,
                n_frames,
                keyframes,
                fib,
                k,
                PortSetting(attenuation_db, phase_rad),
                fps=fps,
                loop=loop,
                mp4=mp4,
                seed=seed,
                dataset=dataset,
                data_root=data_root,
            )
    except ValueError as e:
        _fail(str(e))
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}")
    base = rep["random_baseline"]["mean_abs_change"]
    for key in ("interpolation", "edit_walk"):
        r = rep[key]
        console.print(
            f"{key}: mean frame change {r['mean_abs_change']:.4f} (max {r['max_abs_change']:.4f}, "
            f"CV {r['cv']:.2f}) vs {base:.4f} for random samples -> {r['gif']}"
            + (f", {r['mp4']}" if "mp4" in r else "")
        )
    console.print(f"edit walk on fibers {rep['edit_walk']['fibers']}; wrote {out / 'video.json'}")


@app.command()
def multiview(
    out: Annotated[
        Path, typer.Option(help="output folder: run/, multiview.json, PNGs, turntable")
    ] = Path("runs/multiview"),
    steps: Annotated[int, typer.Option(help="BOGT training steps")] = 600,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="skip training: re-evaluate a multiview run (reuses its data settings)"),
    ] = None,
    preset: Annotated[
        str, typer.Option(help="chip preset (image size set by --image-size)")
    ] = "mnist",
    grid_samples: Annotated[
        int | None, typer.Option(help="override the preset's grid (needed for large --image-size)")
    ] = None,
    n_styles: Annotated[
        int, typer.Option(help="chairs rendered (6 families, random proportions)")
    ] = 12,
    n_views: Annotated[int, typer.Option(help="azimuths per chair, evenly spaced")] = 24,
    render_size: Annotated[int, typer.Option(help="render side in pixels")] = 128,
    image_size: Annotated[
        int, typer.Option(help="chip image side; renders are box-downsampled to it")
    ] = 32,
    holdout_every: Annotated[
        int, typer.Option(help="hold out every N-th view (never shown in training)")
    ] = 4,
    n_harmonics: Annotated[
        int, typer.Option(help="condition fibers, driven with exp(i k azimuth), k = 1..N")
    ] = 4,
    condition_amplitude: Annotated[
        float, typer.Option(help="injected amplitude per condition fiber (latent units)")
    ] = 2.0,
    elevation_deg: Annotated[float, typer.Option(help="camera elevation above the floor")] = 20.0,
    objective: Annotated[
        str,
        typer.Option(
            help="bogt: reconstruct the input view; cross-view: encode one training view, "
            "inject another view's angle, reconstruct that view (same chair)"
        ),
    ] = "bogt",
    n_generators: Annotated[
        int,
        typer.Option(
            help="generators behind an optical switch set by the requested view: generator g "
            "draws azimuths in [g, g+1) x 360/N deg (1 = one generator for all views)"
        ),
    ] = 1,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    beta: Annotated[float | None, typer.Option(help="weight of the KL term")] = None,
    sigma_x: Annotated[float | None, typer.Option(help="camera-image noise std")] = None,
    frames: Annotated[int, typer.Option(help="turntable frames over 360 deg (>= 48)")] = 48,
    turntable_styles: Annotated[int, typer.Option(help="chairs shown in the turntable")] = 4,
    fps: Annotated[float, typer.Option()] = 12.0,
    mp4: Annotated[bool, typer.Option("--mp4/--no-mp4", help="also write turntable.mp4")] = True,
    seed: SeedOpt = 0,
    device: DeviceOpt = None,
) -> None:
    """3D multi-view: train on chair renders with the view angle injected into condition fibers,
    score unseen views against the nearest training view, write a turntable."""
    from lightgen.tasks.multiview import MultiviewSetup, run_multiview

    _check_out_dir(out)
    opts = dict(batch_size=batch_size, lr=lr, beta=beta, sigma_x=sigma_x, device=device)
    chip = {} if grid_samples is None else {"grid_samples": grid_samples}
    if n_generators != 1:  # ChipConfig validates the count
        chip["n_generators"] = n_generators
        opts["routing"] = "view-angle"
    try:
        setup = None
        if checkpoint is None:
            setup = MultiviewSetup(
                n_styles=n_styles,
                n_views=n_views,
                render_size=render_size,
                image_size=image_size,
                holdout_every=holdout_every,
                holdout_offset=holdout_every // 2,
                n_harmonics=n_harmonics,
                condition_amplitude=condition_amplitude,
                elevation_deg=elevation_deg,
                seed=seed,
                objective=objective,
            )
        report = run_multiview(
            out,
            steps,
            setup,
            preset=preset,
            chip=chip or None,
            train_options={k: v for k, v in opts.items() if v is not None},
            checkpoint=checkpoint,
            n_frames=frames,
            n_turntable=turntable_styles,
            fps=fps,
            mp4=mp4,
        )
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        _fail(str(e))
    size = report["setup"]["image_size"]
    t = Table(title=f"unseen views ({report['n_pairs']} held-out renders, {size} px)")
    t.add_column("method")
    t.add_column("PSNR dB", justify="right")
    t.add_column("SSIM", justify="right")
    for name, m in report["mean"].items():
        t.add_row(name, f"{m['psnr_db']:.2f}", f"{m['ssim']:.3f}")
    console.print(t)
    tt = report["turntable"]
    console.print(
        f"turntable: {tt['n_frames']} frames, angle response {tt['angle_response_ratio']:.2f} "
        f"of the real turn; {tt['gif']}"
    )
    console.print(f"wrote {out / 'multiview.json'}")


def _style_table(title: str, rows: dict[str, dict], extra: str | None = None) -> Table:
    t = Table(title=title)
    t.add_column("method")
    if extra:
        t.add_column(extra, justify="right")
    for col in ("PSNR dB", "SSIM", "content loss", "style loss"):
        t.add_column(col, justify="right")
    for name, m in rows.items():
        first = [f"{m[extra.replace(' ', '_')]:.3f}"] if extra else []
        t.add_row(
            name,
            *first,
            f"{m['psnr_db']:.2f}",
            f"{m['ssim']:.3f}",
            f"{m['content_loss']:.4g}",
            f"{m['style_loss']:.4g}",
        )
    return t


@app.command(name="style")
def style_cmd(
    checkpoint: Annotated[
        Path, typer.Option(help="chip trained on a styled set, e.g. --dataset emoji-black+mosaic")
    ],
    out: OutFolderOpt = Path("runs/style"),
    style: Annotated[
        str | None,
        typer.Option(
            help="mosaic | painterly | halftone | stained-glass | cartoon (default: the checkpoint's)"
        ),
    ] = None,
    n: Annotated[int, typer.Option(help="held-out plain images fed to the chip")] = 64,
    control_checkpoint: Annotated[
        Path | None,
        typer.Option(help="optional chip trained on the plain data (shows chip blur alone)"),
    ] = None,
    data_root: DataRootOpt = None,
    fmt: FormatOpt = "grid",
) -> None:
    """Texture style transfer: plain images through a chip trained on styled images only."""
    from lightgen.tasks.style import run_style_transfer
    from lightgen.train.trainer import load_trained

    _check_out_dir(out)
    try:
        system, cfg = load_trained(checkpoint)
        control = None if control_checkpoint is None else load_trained(control_checkpoint)
        rep = run_style_transfer(
            system, cfg, out, style, n, data_root=data_root, control=control, fmt=fmt
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    rows = {"chip (transfer)": rep["transfer"], "input (no transfer)": rep["baseline"]}
    rows["chip on styled target"] = rep["styled_input"]
    if "control" in rep:
        rows["control chip (plain-trained)"] = rep["control"]
    console.print(
        _style_table(f"{rep['style']} transfer, {rep['n']} held-out {rep['content']}", rows)
    )
    console.print(f"wrote {out / 'style.json'} and {rep['files']['grid']}")
    _print_image_set(rep["files"])


@app.command(name="style-digits")
def style_digits_cmd(
    global_checkpoint: Annotated[
        Path, typer.Option(help="28 x 28 chip trained on printed-digits (large aperture)")
    ],
    patch_checkpoint: Annotated[
        Path, typer.Option(help="p x p chip trained on printed-digits+patches<p> (e.g. 7)")
    ],
    out: OutFolderOpt = Path("runs/style-digits"),
    n: Annotated[int, typer.Option(help="handwritten test digits (MNIST t10k)")] = 256,
    classify: Annotated[
        bool,
        typer.Option(
            "--classify/--no-classify", help="class accuracy by the MNIST SmallCNN (if MNIST found)"
        ),
    ] = True,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Handwriting -> print: one large-aperture chip versus a 7 x 7 chip applied patch by patch."""
    from lightgen.tasks.style import mnist_classifier, run_digit_transfer
    from lightgen.train.trainer import load_trained

    _check_out_dir(out)
    try:
        global_chip, patch_chip = load_trained(global_checkpoint), load_trained(patch_checkpoint)
        clf = mnist_classifier(data_root) if classify else None
        rep = run_digit_transfer(
            global_chip, patch_chip, out, n, seed, data_root=data_root, classifier=clf
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    console.print(
        _style_table(
            f"{rep['n']} {rep['content']} digits -> printed (targets: the label's glyph)",
            rep["methods"],
            extra="seam ratio",
        )
    )
    if rep["target_class_accuracy"] is not None:
        acc = ", ".join(f"{k} {m['class_accuracy']:.1%}" for k, m in rep["methods"].items())
        console.print(
            f"MNIST-classifier accuracy: {acc}; printed targets {rep['target_class_accuracy']:.1%}"
        )
    console.print(f"wrote {out / 'digits.json'} and {rep['files']['grid']}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="run folder (lightgen train) or demo folder")],
    out: Annotated[
        Path | None, typer.Option(help="HTML file (default: RUN_DIR/report.html)")
    ] = None,
) -> None:
    """One self-contained HTML page of a run: design, training, results, inside the chip,
    hardware model (images inline; opens offline on a phone or a laptop)."""
    from lightgen.tasks.report import NotARunError, write_report

    try:
        res = write_report(run_dir, out)
    except NotARunError as e:
        _fail(str(e))
    for m in res.missing:
        console.print(f"[yellow]missing:[/] {m}")
    for name, err in res.errors.items():
        console.print(f"[red]section {name} failed:[/] {err}")
    console.print(f"wrote {res.path}")


@app.command()
def demo(
    out: OutFolderOpt = Path("lightgen-out"),
    preset: Annotated[str, typer.Option()] = "mnist-16f",
    dataset: Annotated[
        str, typer.Option(help="built-in procedural data: printed-digits or shapes")
    ] = "printed-digits",
    steps: Annotated[int, typer.Option()] = 400,
    seed: SeedOpt = 0,
) -> None:
    """The main job: train a small chip on built-in data, write samples, reconstructions, OLS plots, report."""
    from lightgen.tasks.demo import run_demo

    _check_out_dir(out)
    if (out / "run" / "checkpoints").is_dir():
        _fail(
            f"--out {out} already holds a demo run ({out / 'run'}); demo always trains anew and "
            "never overwrites a run. Choose a new --out folder, or delete that one. (To train "
            f"the same chip further: lightgen train --out {out / 'run'} --resume --steps N, "
            f"with --config {out / 'run' / 'config.json'}.)"
        )
    cfg = _train_config(
        None,
        preset=preset,
        dataset=dataset,
        steps=steps,
        seed=seed,
        checkpoint_every=max(steps // 2, 1),
        prior="mixture",
        n_components=10,
        sigma_x=0.25,
    )
    try:
        report = run_demo(out, cfg)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        _fail(str(e))
    console.print(
        f"[bold green]done[/] in {report['train_seconds']} s of training. Outputs in {out.resolve()}:"
    )
    for name, path in report["files"].items():
        console.print(f"  {name:16s} {path}")
    console.print(f"  {'report':16s} {out / 'report.md'}")


lab_app = typer.Typer(
    no_args_is_help=True,
    help="From simulation to the lab: twin calibration from measured frames and "
    "physics-aware training against a fabricated chip (docs/lab.md).",
)
app.add_typer(lab_app, name="lab")


def _lab_table(title: str, rows: dict) -> Table:
    t = Table(title=title)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for k, v in rows.items():
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    return t


@lab_app.command(name="calibrate")
def lab_calibrate_cmd(
    checkpoint: CheckpointOpt,
    out: Annotated[Path, typer.Option(help="calibration folder")] = Path("runs/lab-calibration"),
    lab: Annotated[str, typer.Option(help="simulated (hidden errors) | folder (a real setup)")] = (
        "simulated"
    ),
    lab_folder: Annotated[
        Path | None, typer.Option(help="--lab folder: the folder the setup watches")
    ] = None,
    timeout_s: Annotated[
        float, typer.Option(help="--lab folder: wait this long for frames")
    ] = 60.0,
    errors: Annotated[
        Path | None,
        typer.Option(
            help="TOML/JSON error model (simulated: the hidden errors' spread; "
            "both: the twin's tolerances); default: the realistic levels of docs/lab.md"
        ),
    ] = None,
    error_seed: Annotated[int | None, typer.Option(help="seed of the hidden errors")] = None,
    n_images: Annotated[int, typer.Option(help="calibration images shown on the SLM")] = 256,
    n_latents: Annotated[int, typer.Option(help="calibration latents injected")] = 256,
    steps: Annotated[int, typer.Option(help="gradient steps on the twin's errors")] = 300,
    lr: Annotated[float, typer.Option(help="Adam step size (units of the error stds)")] = 0.05,
    batch: BatchOpt = 32,
    families: Annotated[
        str | None, typer.Option(help="comma-separated error families to fit (default all)")
    ] = None,
    resume: ResumeOpt = False,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Measure calibration frames and fit the digital twin's errors to them."""
    from lightgen.lab.commands import calibrate_run
    from lightgen.lab.errors import FAMILIES
    from lightgen.lab.runs import load_error_model

    _check_out_dir(out)
    for flag, v in (("--n-images", n_images), ("--n-latents", n_latents), ("--batch", batch)):
        _require_at_least(flag, v, 1, "give a positive count.")
    _require_at_least("--steps", steps, 0, "give 0 or more steps.")
    try:
        fams = FAMILIES if families is None else tuple(f.strip() for f in families.split(","))
        rep = calibrate_run(
            checkpoint,
            out,
            lab,
            load_error_model(errors, error_seed),
            lab_folder,
            timeout_s,
            n_images,
            n_latents,
            steps,
            lr,
            batch,
            fams,
            resume=resume,
            data_root=data_root,
            seed=seed,
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    rows = {
        "calibration frames": rep["calibration_frames"],
        "frame rmse before": rep["frame_rmse_before"],
        "frame rmse after": rep["frame_rmse_after"],
        "camera noise std": rep["camera_noise_std"],
    }
    for fam, r in rep.get("recovery", {}).items():
        rows[f"{fam} recovered"] = r["recovered_fraction"]
    console.print(_lab_table(f"twin calibration, {rep['steps']} steps", rows))
    console.print(f"wrote {out / 'calibration.json'}")


@lab_app.command(name="train")
def lab_train_cmd(
    calibration: Annotated[Path, typer.Option(help="folder of `lightgen lab calibrate`")],
    out: Annotated[Path, typer.Option(help="training folder")] = Path("runs/lab-train"),
    mode: Annotated[
        str,
        typer.Option(
            help="in-place (physics-aware: lab forward, twin backward) | twin (in-place "
            "parts on the twin alone) | refabricate (heights on the twin, then a new chip)"
        ),
    ] = "in-place",
    init: Annotated[
        Path | None, typer.Option(help="start from this lab training folder (default: the design)")
    ] = None,
    steps: Annotated[int, typer.Option()] = 300,
    lr: Annotated[float, typer.Option(help="Adam step size (constant)")] = 0.01,
    batch: BatchOpt = 32,
    slm_weights: Annotated[
        bool,
        typer.Option(
            "--slm-weights/--no-slm-weights",
            help="also train a per-pixel transmission in [0, 1] of the input SLM (in place)",
        ),
    ] = False,
    twin_from_hidden_errors: Annotated[
        bool,
        typer.Option(
            "--twin-from-hidden-errors",
            help="simulated lab only: use the hidden errors as the twin (a perfect-calibration "
            "control: the ceiling of what calibration can buy)",
        ),
    ] = False,
    fabrication_seed: FabricationSeedOpt = None,
    robust_fabrication: Annotated[
        bool,
        typer.Option(
            "--robust-fabrication",
            help="--mode refabricate: re-design for the next chip made in this setup: every "
            "step the twin keeps the calibrated setup (aberration, fibers, camera) and draws "
            "the chip's placement and etch-depth errors afresh from the error model's spread; "
            "no lab residual (it is the old chip's), no lab frames",
        ),
    ] = False,
    resume: ResumeOpt = False,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Physics-aware training of the fabricated chip's in-place parts, or re-design for
    re-fabrication against the calibrated twin."""
    from lightgen.lab.commands import train_run

    _check_out_dir(out)
    _require_at_least("--batch", batch, 1, "give a positive batch size.")
    _require_at_least("--steps", steps, 0, "give 0 or more steps.")
    try:
        rep = train_run(
            calibration,
            out,
            mode,
            init,
            steps,
            lr,
            batch,
            resume=resume,
            data_root=data_root,
            seed=seed,
            slm_weights=slm_weights,
            twin_from_hidden_errors=twin_from_hidden_errors,
            robust_fabrication=robust_fabrication,
            fabrication_seed=fabrication_seed,
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    console.print(
        _lab_table(
            f"lab training ({rep['mode']}), {rep['steps']} steps",
            {"lab frames": rep["lab_frames"], "updated in place": rep["updated_in_place"]},
        )
    )
    console.print(f"wrote {out / 'train.json'}")


@lab_app.command(name="eval")
def lab_eval_cmd(
    run: Annotated[Path, typer.Option(help="a lab calibration or training folder")],
    designed: Annotated[
        bool, typer.Option("--designed/--in-lab", help="in silico, without errors")
    ] = False,
    n: Annotated[int, typer.Option(help="held-out images for the reconstruction PSNR")] = 500,
    fid_n: Annotated[int, typer.Option(help="samples for FID (0: none)")] = 0,
    error_seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=2**32 - 1,
            help="simulated lab only: other hidden errors of the same spread (a new fabrication)",
        ),
    ] = None,
    fabrication_seed: FabricationSeedOpt = None,
    classifier_augment: Annotated[
        str,
        typer.Option(
            help="FID judge's training, as `eval --classifier-augment`: 'none' (default), "
            "'chip' or 'colour' (a shape judge; written to lab-eval-judge-colour.json)"
        ),
    ] = "none",
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Quality in the lab (or as designed): reconstruction PSNR and FID of samples."""
    from lightgen.lab.commands import eval_run

    _require_at_least("--n", n, 1, "give a positive count.")
    _require_at_least("--fid-n", fid_n, 0, "give 0 or a count.")
    if 0 < fid_n < 2:
        _fail(f"--fid-n {fid_n} is too few for FID; give 0 or at least 2.")
    try:
        rep = eval_run(
            run,
            designed,
            n,
            fid_n,
            data_root,
            seed,
            error_seed,
            fabrication_seed,
            classifier_augment,
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    rows = {k: v for k, v in rep.items() if k not in ("run",)}
    console.print(_lab_table(f"{'designed' if designed else 'in the lab'}: {run}", rows))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
