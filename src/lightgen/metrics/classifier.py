"""The evaluation classifier: a small CNN, trained once per data set and cached.

Chen et al. (Science 390:1259, 2025) score generated images with a classifier of
three Conv-ReLU-MaxPool blocks and one fully connected layer; :class:`SmallCNN` is
that network. Its penultimate activations (the flattened conv features, 1152-d for
28 x 28 inputs) are the feature space of lightgen's FID / KID / precision-recall
(:mod:`lightgen.metrics.fid`): an Inception network trained on ImageNet photographs
is a poor judge of 28 x 28 digits, and cannot be downloaded here anyway.

Cache: ``$LIGHTGEN_CACHE/classifiers`` (default ``~/.cache/lightgen/classifiers``)
holds ``<stem>.safetensors`` (weights) and ``<stem>.json`` (data set name, image size,
classes, SHA-256 fingerprint of the training tensors, training settings, accuracy,
SHA-256 of the weights file). Both are written to a temporary file and renamed
(``os.replace``, atomic on POSIX), weights first, so a reader never sees half a file
and a sidecar only ever describes complete weights. Any mismatch or unreadable file
means retrain; nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lightgen._checks import require_int_range, require_positive
from lightgen.data.dataset import ImageDataset

CACHE_ENV = "LIGHTGEN_CACHE"
CACHE_FORMAT = 1
CONV_CHANNELS = (32, 64, 128)
MAX_FEATURE_GRID = 3  # feature maps larger than 3x3 are average-pooled to 3x3


class SmallCNN(nn.Module):
    """Three ``Conv3x3(pad 1) - ReLU - MaxPool2`` blocks (32, 64, 128 channels) + one
    ``Linear`` to ``n_classes`` logits.

    A 28 x 28 input leaves a 128 x 3 x 3 map (28 -> 14 -> 7 -> 3), i.e. 1152 features.
    Larger inputs (e.g. 64 px emoji) are adaptive-average-pooled to 3 x 3 after the last
    block so the feature space stays 1152-d and FID's covariance stays estimable; at 28 px
    the pool is the identity.

    Args:
        in_channels: 1 (grey) or 3 (RGB).
        n_classes: number of output logits.
        image_size: input side in pixels (square, >= 8).

    Shapes: ``forward``: ``(B, in_channels, S, S) -> (B, n_classes)`` logits;
    ``features``: ``-> (B, feature_dim)``.
    """

    def __init__(self, in_channels: int, n_classes: int, image_size: int) -> None:
        super().__init__()
        self.in_channels = require_int_range("in_channels", in_channels, 1, fix="Use 1 or 3.")
        self.n_classes = require_int_range("n_classes", n_classes, 2, fix="Need >= 2 classes.")
        self.image_size = require_int_range(
            "image_size", image_size, 8, fix="Three 2x pools need at least 8 px."
        )
        layers: list[nn.Module] = []
        c_in = self.in_channels
        for c_out in CONV_CHANNELS:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        grid = min(self.image_size // 8, MAX_FEATURE_GRID)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.feature_dim = CONV_CHANNELS[-1] * grid * grid
        self.fc = nn.Linear(self.feature_dim, self.n_classes)
        self.dataset_name = "unknown"

    def _check_input(self, x: torch.Tensor) -> None:
        want = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"SmallCNN input must have shape (B, {want[0]}, {want[1]}, {want[2]}), got "
                f"{tuple(x.shape)}. Resize the images or build the classifier for this size."
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, feature_dim)`` (flattened, pooled conv output)."""
        self._check_input(x)
        return torch.flatten(self.pool(self.conv(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    @property
    def description(self) -> str:
        """Names the feature space, e.g. ``"SmallCNN(mnist) penultimate 1152-d"``."""
        return f"SmallCNN({self.dataset_name}) penultimate {self.feature_dim}-d"


def _batches(n: int, batch_size: int, generator: torch.Generator | None = None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted class ``(N,)`` int64, in eval mode (restored afterwards), on the model's device."""
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else images.device
    try:
        out = [
            model(images[idx].to(device)).argmax(1).cpu()
            for idx in _batches(images.shape[0], batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def _progress_bar(enabled: bool, total: int, description: str):
    """A rich progress bar (or a do-nothing stand-in) with ``advance()`` and ``close()``."""

    class _Null:
        def advance(self, n: int = 1) -> None: ...
        def close(self) -> None: ...

    if not enabled:
        return _Null()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    prog = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    prog.start()
    task = prog.add_task(description, total=total)

    class _Bar:
        def advance(self, n: int = 1) -> None:
            prog.advance(task, n)

        def close(self) -> None:
            prog.stop()

    return _Bar()


def train_classifier(
    dataset: ImageDataset,
    epochs: int = 3,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    holdout_fraction: float = 0.1,
    test_dataset: ImageDataset | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> tuple[SmallCNN, float]:
    """Train a :class:`SmallCNN` with Adam and cross-entropy.

    Args:
        dataset: training images ``(N, C, S, S)`` in ``[0, 1]`` and labels.
        epochs, batch_size, learning_rate: optimisation settings.
        holdout_fraction: when ``test_dataset`` is None, this seeded random fraction
            of ``dataset`` is held out (not trained on) to measure accuracy.
        test_dataset: data to measure accuracy on instead of a hold-out.
        seed: seeds initialisation, hold-out and shuffling (global RNG untouched).
        progress: show a rich progress bar.
        device: training device (default CPU).

    Returns:
        ``(model, accuracy)``: the model in eval mode, on CPU, and its accuracy in
        ``[0, 1]`` on the held-out data.
    """
    epochs = require_int_range("epochs", epochs, 1)
    batch_size = require_int_range("batch_size", batch_size, 1)
    learning_rate = require_positive("learning_rate", learning_rate, "Use e.g. 2e-3.")
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(
            f"holdout_fraction must be in (0, 1), got {holdout_fraction!r}. Use e.g. 0.1."
        )
    n, c, h, w = dataset.images.shape
    if h != w:
        raise ValueError(f"dataset images must be square, got {h}x{w}. Resize them first.")
    device = torch.device(device or "cpu")
    gen = torch.Generator().manual_seed(seed)
    if test_dataset is None:
        perm = torch.randperm(n, generator=gen)
        n_test = max(1, round(holdout_fraction * n))
        if n - n_test < 1:
            raise ValueError(f"dataset has {n} images, too few to hold out a test part.")
        train_x, train_y = dataset.images[perm[n_test:]], dataset.labels[perm[n_test:]]
        test_x, test_y = dataset.images[perm[:n_test]], dataset.labels[perm[:n_test]]
    else:
        train_x, train_y = dataset.images, dataset.labels
        test_x, test_y = test_dataset.images, test_dataset.labels

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weight init only; fork_rng restores the global state
        model = SmallCNN(c, max(dataset.n_classes, 2), h)
    model.dataset_name = dataset.name
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    steps = epochs * -(-train_x.shape[0] // batch_size)
    bar = _progress_bar(progress, steps, f"training SmallCNN({dataset.name})")
    try:
        for _ in range(epochs):
            for idx in _batches(train_x.shape[0], batch_size, gen):
                x, y = train_x[idx].to(device), train_y[idx].to(device)
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                opt.step()
                bar.advance()
    finally:
        bar.close()
    model.to("cpu").eval()
    accuracy = float((predict(model, test_x) == test_y).float().mean()) if len(test_y) else 0.0
    return model, accuracy


def default_cache_dir() -> Path:
    """``$LIGHTGEN_CACHE/classifiers``, else ``~/.cache/lightgen/classifiers``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "lightgen"
    return root / "classifiers"


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expected_meta(dataset_name: str, train_ds: ImageDataset, epochs: int, seed: int) -> dict:
    return {
        "format": CACHE_FORMAT,
        "architecture": "SmallCNN",
        "conv_channels": list(CONV_CHANNELS),
        "dataset": dataset_name,
        "in_channels": train_ds.channels,
        "image_size": train_ds.image_size[0],
        "n_classes": max(train_ds.n_classes, 2),
        "class_names": list(train_ds.class_names),
        "fingerprint": train_ds.fingerprint(),
        "epochs": epochs,
        "seed": seed,
    }


def _try_load(weights: Path, sidecar: Path, expected: dict) -> tuple[SmallCNN, float] | None:
    from safetensors.torch import load_file

    try:
        meta = json.loads(sidecar.read_text())
        if any(meta.get(k) != v for k, v in expected.items()):
            return None
        if _file_sha256(weights) != meta.get("weights_sha256"):
            return None
        model = SmallCNN(expected["in_channels"], expected["n_classes"], expected["image_size"])
        model.load_state_dict(load_file(weights))
        model.dataset_name = expected["dataset"]
        return model.eval(), float(meta["accuracy"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        # Missing, truncated or mismatched cache files: the caller retrains.
        return None


def load_or_train_classifier(
    dataset_name: str,
    train_ds: ImageDataset,
    cache_dir: str | Path | None = None,
    epochs: int = 3,
    seed: int = 0,
    progress: bool = True,
    **train_kwargs,
) -> tuple[SmallCNN, float]:
    """The cached classifier for ``train_ds``, training (and caching) it if needed.

    The cache entry is keyed by ``dataset_name``, image size and the training data's
    fingerprint; it is reused only if every recorded setting matches and the weights'
    SHA-256 matches the sidecar, otherwise the classifier is retrained and overwritten.

    Returns:
        ``(model, accuracy)`` as :func:`train_classifier`.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    expected = _expected_meta(dataset_name, train_ds, epochs, seed)
    safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in dataset_name)
    stem = f"smallcnn-{safe_name}-{expected['image_size']}px-{expected['fingerprint'][:16]}"
    weights, sidecar = cache / f"{stem}.safetensors", cache / f"{stem}.json"
    if weights.is_file() and sidecar.is_file():
        hit = _try_load(weights, sidecar, expected)
        if hit is not None:
            return hit

    model, accuracy = train_classifier(
        train_ds, epochs=epochs, seed=seed, progress=progress, **train_kwargs
    )
    model.dataset_name = dataset_name
    cache.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(weights, lambda p: save_file(state, str(p)))
    meta = {**expected, "accuracy": accuracy, "weights_sha256": _file_sha256(weights)}
    _atomic_write(sidecar, lambda p: p.write_text(json.dumps(meta, indent=2)))
    return model, accuracy
