"""Animated GIF files (GIF89a) from RGB frames, in pure Python and numpy.

Frames share one palette of at most 256 colours, found by median cut over the colours of
all frames (reduced to 5 bits per channel for counting, averaged at full precision); every
pixel then takes the nearest palette colour. Pixels are compressed with the GIF flavour
of LZW (variable code width from 9 to 12 bits, a clear code when the table is full).

Example
-------
>>> frames = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)]
>>> write_gif("blink.gif", frames, delay_ms=500)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["write_gif", "encode_gif", "quantise", "lzw_encode", "lzw_decode"]

_BITS = 5  # per channel when counting colours


def _keys(frame: np.ndarray) -> np.ndarray:
    """15-bit colour key of every pixel of an ``(H, W, 3)`` uint8 frame."""
    q = (frame[..., :3] >> (8 - _BITS)).astype(np.int32)
    return (q[..., 0] << (2 * _BITS)) | (q[..., 1] << _BITS) | q[..., 2]


def _median_cut(colours: np.ndarray, weights: np.ndarray, n_colours: int) -> np.ndarray:
    """Palette of at most ``n_colours`` rows from weighted ``colours`` ``(n, 3)``."""
    boxes = [np.arange(colours.shape[0])]
    while len(boxes) < n_colours:
        best, best_score = -1, 0.0
        for i, box in enumerate(boxes):
            if box.size < 2:
                continue
            spread = colours[box].max(axis=0) - colours[box].min(axis=0)
            score = float(spread.max()) * float(weights[box].sum())
            if score > best_score:
                best, best_score = i, score
        if best < 0:
            break
        box = boxes.pop(best)
        c = colours[box]
        axis = int(np.argmax(c.max(axis=0) - c.min(axis=0)))
        order = box[np.argsort(c[:, axis], kind="stable")]
        cum = np.cumsum(weights[order])
        cut = int(np.searchsorted(cum, cum[-1] / 2.0))
        cut = min(max(cut, 1), order.size - 1)
        boxes.extend([order[:cut], order[cut:]])
    return np.array([(colours[b] * weights[b, None]).sum(axis=0) / weights[b].sum() for b in boxes])


def quantise(frames, n_colours: int = 256) -> tuple[np.ndarray, list[np.ndarray]]:
    """One shared palette for all frames and every frame as palette indices.

    Parameters
    ----------
    frames : sequence of ndarray, each ``(H, W, 3)`` or ``(H, W, 4)`` uint8
    n_colours : int
        At most 256.

    Returns
    -------
    palette : ndarray of uint8, shape ``(n, 3)``, ``n <= n_colours``
    indices : list of ndarray of uint8, each ``(H, W)``
    """
    frames = [np.ascontiguousarray(np.asarray(f)[..., :3], dtype=np.uint8) for f in frames]
    if not frames:
        raise ValueError("no frames to quantise")
    size = 1 << (3 * _BITS)
    counts = np.zeros(size)
    sums = np.zeros((size, 3))
    keys = []
    for f in frames:
        k = _keys(f).ravel()
        keys.append(k)
        counts += np.bincount(k, minlength=size)
        flat = f.reshape(-1, 3).astype(np.float64)
        for ch in range(3):
            sums[:, ch] += np.bincount(k, weights=flat[:, ch], minlength=size)
    used = np.flatnonzero(counts)
    means = sums[used] / counts[used, None]
    if used.size <= n_colours:
        palette = means
        lut_used = np.arange(used.size)
    else:
        palette = _median_cut(means, counts[used], n_colours)
        lut_used = np.empty(used.size, dtype=np.int64)
        for start in range(0, used.size, 4096):
            block = means[start:start + 4096]
            d = ((block[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2)
            lut_used[start:start + 4096] = d.argmin(axis=1)
    lut = np.zeros(size, dtype=np.uint8)
    lut[used] = lut_used
    palette = np.clip(np.round(palette), 0, 255).astype(np.uint8)
    indices = [lut[k].reshape(f.shape[:2]) for k, f in zip(keys, frames)]
    return palette, indices


def lzw_encode(indices: np.ndarray, min_code_size: int = 8) -> bytes:
    """GIF LZW compression of palette indices (any shape, raster order).

    Returns the code stream packed least-significant bit first, without sub-block framing.
    """
    data = np.asarray(indices, dtype=np.uint8).ravel().tolist()
    clear = 1 << min_code_size
    end = clear + 1
    out = bytearray()
    bits = 0
    n_bits = 0
    size = min_code_size + 1
    next_code = end + 1
    table: dict[int, int] = {}

    def emit(code: int) -> None:
        nonlocal bits, n_bits
        bits |= code << n_bits
        n_bits += size
        while n_bits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            n_bits -= 8

    emit(clear)
    if not data:
        emit(end)
        if n_bits:
            out.append(bits & 0xFF)
        return bytes(out)
    prefix = data[0]
    for px in data[1:]:
        key = (prefix << 8) | px
        code = table.get(key)
        if code is not None:
            prefix = code
            continue
        emit(prefix)
        if next_code < 4096:
            table[key] = next_code
            next_code += 1
            if next_code > (1 << size) and size < 12:
                size += 1
        else:
            emit(clear)
            table.clear()
            size = min_code_size + 1
            next_code = end + 1
        prefix = px
    emit(prefix)
    emit(end)
    if n_bits:
        out.append(bits & 0xFF)
    return bytes(out)


def lzw_decode(stream: bytes, min_code_size: int = 8) -> list[int]:
    """Inverse of :func:`lzw_encode` (used to check files; not needed to write them)."""
    clear = 1 << min_code_size
    end = clear + 1
    size = min_code_size + 1
    table: list[list[int]] = [[i] for i in range(clear)] + [[], []]
    out: list[int] = []
    previous: list[int] | None = None
    bits = 0
    n_bits = 0
    pos = 0
    while True:
        while n_bits < size:
            if pos >= len(stream):
                return out
            bits |= stream[pos] << n_bits
            pos += 1
            n_bits += 8
        code = bits & ((1 << size) - 1)
        bits >>= size
        n_bits -= size
        if code == clear:
            table = table[: end + 1]
            size = min_code_size + 1
            previous = None
            continue
        if code == end:
            return out
        if code < len(table):
            entry = table[code]
            if previous is not None:
                table.append(previous + entry[:1])
        elif previous is not None and code == len(table):
            entry = previous + previous[:1]
            table.append(entry)
        else:
            raise ValueError(f"corrupt LZW stream: code {code} with {len(table)} entries")
        out.extend(entry)
        previous = entry
        if len(table) == (1 << size) and size < 12:
            size += 1


def _sub_blocks(data: bytes) -> bytes:
    parts = bytearray()
    for start in range(0, len(data), 255):
        chunk = data[start:start + 255]
        parts.append(len(chunk))
        parts.extend(chunk)
    parts.append(0)
    return bytes(parts)


def encode_gif(frames, delay_ms: int = 100, loop: int = 0) -> bytes:
    """The bytes of an animated GIF89a.

    Parameters
    ----------
    frames : sequence of ndarray, each ``(H, W, 3)`` or ``(H, W, 4)`` uint8
        All of the same size (alpha is ignored).
    delay_ms : int
        Time each frame is shown (GIF stores hundredths of a second; at least 20 ms).
    loop : int
        Repetitions; 0 plays for ever.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("an animation needs at least one frame")
    h, w = np.asarray(frames[0]).shape[:2]
    if any(np.asarray(f).shape[:2] != (h, w) for f in frames):
        raise ValueError("all frames of an animation must have the same size")
    if not (0 < w < 65536 and 0 < h < 65536):
        raise ValueError(f"a GIF frame must be 1..65535 pixels wide and high; got {w}x{h}")
    palette, indices = quantise(frames)
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: palette.shape[0]] = palette
    delay = max(2, int(round(delay_ms / 10)))
    out = bytearray(b"GIF89a")
    out += struct.pack("<HHBBB", w, h, 0xF7, 0, 0)  # global table of 256 colours, 8-bit resolution
    out += table.tobytes()
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", int(loop)) + b"\x00"
    for index in indices:
        out += b"\x21\xf9\x04" + struct.pack("<BHBB", 0x04, delay, 0, 0)  # leave each frame in place
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0)
        out.append(8)
        out += _sub_blocks(lzw_encode(index, 8))
    out.append(0x3B)
    return bytes(out)


def write_gif(path, frames, delay_ms: int = 100, loop: int = 0) -> Path:
    """Write :func:`encode_gif` output to ``path`` atomically; returns the path."""
    path = Path(path)
    data = encode_gif(frames, delay_ms, loop)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
