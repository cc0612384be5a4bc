"""Frames to files: tile frame batches, write looping GIFs (Pillow via imageio) and H.264
MP4s (imageio-ffmpeg, the ``video`` extra) atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lightgen._checks import require_positive
from lightgen.tasks.images import atomic_write, image_grid

MP4_MACRO_BLOCK = 16  # H.264 / yuv420p wants sides divisible by 16 (imageio-ffmpeg default)


def render_frames(frames: torch.Tensor, ncol: int | None = None, upscale: int = 1) -> np.ndarray:
    """``(T, C, S, S)`` or ``(T, B, C, S, S)`` in [0, 1] -> uint8 ``(T, H, W)`` or ``(T, H, W, 3)``."""
    if frames.ndim == 4:
        frames = frames.unsqueeze(1)
    if frames.ndim != 5:
        raise ValueError(
            f"frames have shape {tuple(frames.shape)}; need (T, C, S, S) or (T, B, C, S, S)."
        )
    b = frames.shape[1]
    pad = 0 if b == 1 else 1
    return np.stack([image_grid(f, ncol or b, pad=pad, upscale=upscale) for f in frames])


def check_fps(fps: float) -> float:
    """``fps`` if a GIF can play it (> 0, at most 100: GIF timing has 10 ms resolution)."""
    fps = require_positive("fps", fps, "Use e.g. 12 frames per second.")
    if fps > 100:
        raise ValueError(f"fps={fps!r}: GIF timing has 10 ms resolution, so use fps <= 100.")
    return fps


def gif_frame_ms(fps: float) -> int:
    """Frame duration in ms, rounded to the GIF's 10 ms resolution."""
    return 10 * max(1, round(100 / check_fps(fps)))


def write_gif(path: str | Path, frames: np.ndarray, fps: float = 12.0) -> Path:
    """Looping GIF of uint8 frames ``(T, H, W[, 3])``, written atomically."""
    import imageio.v3 as iio

    ms = gif_frame_ms(fps)
    return atomic_write(
        Path(path), lambda p: iio.imwrite(p, frames, extension=".gif", duration=ms, loop=0)
    )


def ffmpeg_unavailable_reason() -> str | None:
    """``None`` if MP4 can be written, else why not (imageio-ffmpeg or its binary missing)."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        return "imageio-ffmpeg is not installed (pip install 'lightgen[video]')"
    except RuntimeError as e:
        return f"no ffmpeg binary found ({e})"
    return None


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = 12.0) -> Path:
    """H.264 MP4 of uint8 frames ``(T, H, W[, 3])``, padded (white) to sides divisible by 16.

    Raises RuntimeError naming the fix if imageio-ffmpeg is unavailable.
    """
    import imageio.v3 as iio

    fps = check_fps(fps)
    why = ffmpeg_unavailable_reason()
    if why is not None:
        raise RuntimeError(f"cannot write {path}: {why}.")
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    _, h, w, _ = frames.shape
    ph, pw = (-h) % MP4_MACRO_BLOCK, (-w) % MP4_MACRO_BLOCK
    frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), constant_values=255)
    return atomic_write(
        Path(path),
        lambda p: iio.imwrite(
            p, frames, extension=".mp4", plugin="FFMPEG", fps=fps, macro_block_size=1
        ),
    )


def count_gif_frames(path: Path) -> int:
    """Frames a GIF stores (Pillow merges consecutive identical frames into one)."""
    from PIL import Image

    with Image.open(path) as im:
        return int(getattr(im, "n_frames", 1))
