"""The GIF writer: palette, structure, and files that Qt's own GIF reader plays back."""

import struct

import numpy as np
import pytest
from approval import image_pixels
from PySide6.QtGui import QImageReader

from dpsom_gui.gif_writer import encode_gif, write_gif


def test_few_colours_stay_exact_and_many_are_reduced_closely():
    flat = np.zeros((4, 6, 3), np.uint8)
    flat[:, :3] = (255, 255, 255)
    flat[:, 3:] = (12, 200, 99)
    (got,) = _read_back(encode_gif([flat]))
    assert np.array_equal(got, flat)
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    (got,) = _read_back(encode_gif([noisy]))
    assert np.abs(got.astype(int) - noisy.astype(int)).mean() < 20


def _read_back(data: bytes) -> list[np.ndarray]:
    from PySide6.QtCore import QBuffer, QByteArray

    buffer = QBuffer()
    buffer.setData(QByteArray(data))
    reader = QImageReader(buffer, b"gif")
    out = []
    while True:
        image = reader.read()
        if image.isNull():
            return out
        out.append(image_pixels(image)[..., :3].copy())


def frames_moving_square(n=6, size=(40, 52)):
    frames = []
    for k in range(n):
        f = np.full(size + (3,), 250, np.uint8)
        f[10:20, 5 + 6 * k: 15 + 6 * k] = (200, 40, 30)
        f[30:, :] = np.linspace(0, 255, size[1]).astype(np.uint8)[None, :, None]  # a gradient band
        frames.append(f)
    return frames


def test_gif_structure_header_loop_and_frames():
    frames = frames_moving_square()
    data = encode_gif(frames, delay_ms=120, loop=0)
    assert data[:6] == b"GIF89a"
    w, h, packed = struct.unpack("<HHB", data[6:11])
    assert (w, h) == (52, 40) and packed & 0x80  # global colour table present
    assert b"NETSCAPE2.0" in data and data[-1:] == b"\x3b"
    assert data.count(b"\x21\xf9\x04") == len(frames)
    delay = struct.unpack("<H", data[data.index(b"\x21\xf9\x04") + 4:][:2])[0]
    assert delay == 12  # hundredths of a second


def test_qt_reads_back_every_frame(tmp_path):
    frames = frames_moving_square()
    path = write_gif(tmp_path / "move.gif", frames, delay_ms=150)
    reader = QImageReader(str(path))
    assert reader.format() == b"gif"
    assert reader.imageCount() == len(frames)
    decoded = []
    while True:
        image = reader.read()
        if image.isNull():
            break
        decoded.append(image_pixels(image)[..., :3])
    assert len(decoded) == len(frames)
    for got, want in zip(decoded, frames):
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 8  # the palette holds these colours
    assert not np.array_equal(decoded[0], decoded[-1])  # it moves


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(ValueError):
        write_gif(tmp_path / "bad.gif", [np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


def test_refuses_no_frames_or_mixed_sizes():
    with pytest.raises(ValueError, match="at least one frame"):
        encode_gif([])
    with pytest.raises(ValueError, match="same size"):
        encode_gif([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])
