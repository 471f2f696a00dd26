"""The GIF writer: LZW round trip, palette, and files that Qt's own GIF reader plays back."""

import struct

import numpy as np
import pytest
from approval import image_pixels
from PySide6.QtGui import QImageReader

from dpsom_gui.gif_writer import encode_gif, lzw_decode, lzw_encode, quantise, write_gif


@pytest.mark.parametrize("kind", ["random", "runs", "empty", "single", "long"])
def test_lzw_round_trip(kind):
    rng = np.random.default_rng(1)
    data = {
        "random": rng.integers(0, 256, 30000),
        "runs": np.repeat(rng.integers(0, 6, 4000), rng.integers(1, 60, 4000)),  # fills the table: clear codes
        "empty": np.zeros(0),
        "single": np.array([7]),
        "long": np.zeros(200000),
    }[kind].astype(np.uint8)
    encoded = lzw_encode(data)
    assert lzw_decode(encoded) == data.tolist()
    if kind == "long":
        assert len(encoded) < data.size / 50  # flat areas compress


def test_lzw_matches_a_known_gif_code_stream():
    # Four pixels 0, 0, 0, 1 with min code size 2: clear(4), 0, 6 (=00), 1, end(5) at 3 bits.
    stream = lzw_encode(np.array([0, 0, 0, 1]), min_code_size=2)
    bits = int.from_bytes(stream, "little")
    codes = [(bits >> (3 * i)) & 7 for i in range(5)]
    assert codes == [4, 0, 6, 1, 5]


def test_palette_keeps_few_colours_exactly_and_reduces_many():
    flat = np.zeros((4, 6, 3), np.uint8)
    flat[:, :3] = (255, 255, 255)
    flat[:, 3:] = (12, 200, 99)
    palette, (index,) = quantise([flat])
    assert palette.shape[0] == 2
    assert np.array_equal(palette[index], flat)
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    palette, (index,) = quantise([noisy])
    assert palette.shape[0] == 256
    error = np.abs(palette[index].astype(int) - noisy.astype(int)).mean()
    assert error < 20


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


def test_refuses_no_frames_or_mixed_sizes():
    with pytest.raises(ValueError, match="at least one frame"):
        encode_gif([])
    with pytest.raises(ValueError, match="same size"):
        encode_gif([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])
