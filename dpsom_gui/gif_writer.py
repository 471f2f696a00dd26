"""Animated GIF files from RGB frames, written by Pillow.

All frames share one palette of at most 256 colours (Pillow's median cut over a mosaic of
the frames), so the colours of a map stay the same from frame to frame and the file does
not flicker. The file is written next to its target and renamed, so a failed export never
leaves half a picture behind.

Example
-------
>>> frames = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)]
>>> write_gif("blink.gif", frames, delay_ms=500)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

__all__ = ["write_gif", "encode_gif"]

# Pillow samples a big mosaic for its palette; a few dozen frames represent an animation well.
_PALETTE_FRAMES = 32


def _check(frames) -> list[np.ndarray]:
    frames = [np.ascontiguousarray(np.asarray(f)[..., :3], dtype=np.uint8) for f in frames]
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    shape = frames[0].shape
    if any(f.shape != shape for f in frames) or len(shape) != 3:
        raise ValueError("every frame of a GIF must have the same size (H, W, 3)")
    return frames


def encode_gif(frames, delay_ms: int = 100, loop: int = 0) -> bytes:
    """The bytes of an animated GIF of ``frames`` (each ``(H, W, 3)`` uint8).

    ``delay_ms`` is the time each frame stays on screen; ``loop=0`` repeats for ever.
    """
    from PIL import Image

    frames = _check(frames)
    pick = np.linspace(0, len(frames) - 1, min(len(frames), _PALETTE_FRAMES)).round().astype(int)
    mosaic = Image.fromarray(np.concatenate([frames[i] for i in pick], axis=0))
    palette = mosaic.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    out = io.BytesIO()
    # optimize=False keeps the shared palette whole; disposal 1 leaves each frame in place.
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=max(10, int(delay_ms)),
                   loop=int(loop), optimize=False, disposal=1)
    return out.getvalue()


def write_gif(path, frames, delay_ms: int = 100, loop: int = 0) -> Path:
    """Write :func:`encode_gif` of ``frames`` to ``path`` (atomically); returns the path."""
    path = Path(path)
    data = encode_gif(frames, delay_ms=delay_ms, loop=loop)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
