"""Visual approval: compare a widget's offscreen rendering with an approved PNG.

Set ``DPSOM_APPROVE_BASELINES=1`` to write the current rendering as the new baseline in
``tests/gui/baselines/``. A mismatch saves the rendering, the baseline and a difference
image to ``tests/gui/_diffs/`` so a person (or CI) can look at them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

BASELINES = Path(__file__).resolve().parent / "baselines"
DIFFS = Path(__file__).resolve().parent / "_diffs"
APPROVE_ENV = "DPSOM_APPROVE_BASELINES"

#: A pixel counts as different when any channel differs by more than this (0-255).
CHANNEL_THRESHOLD = 40


def shown(qtbot, widget, size: tuple[int, int]):
    """``widget`` at ``size``, shown and exposed (so it renders), owned by ``qtbot``."""
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def assert_builds_with_a_sane_minimum_size(qtbot, view_class, size: tuple[int, int]) -> None:
    """A new ``view_class`` shown at ``size`` asks for a usable minimum size and draws."""
    view = shown(qtbot, view_class(), size)
    minimum = view.minimumSize()
    assert 200 <= minimum.width() <= 700 and 150 <= minimum.height() <= 600
    assert not view.grab().isNull()


def widget_pixels(widget) -> np.ndarray:
    """The widget rendered offscreen, as an ``(H, W, 4)`` uint8 RGBA array."""
    return image_pixels(widget.grab().toImage())


def image_pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    h, w = image.height(), image.width()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return data.reshape(h, image.bytesPerLine())[:, : w * 4].reshape(h, w, 4).copy()


def _to_image(pixels: np.ndarray) -> QImage:
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, w * 4, QImage.Format.Format_RGBA8888).copy()


def assert_image_approved(widget, name: str, tolerance: float = 0.01) -> None:
    """Fail unless ``widget`` looks like the approved ``baselines/<name>.png``.

    Parameters
    ----------
    widget : QWidget
        Rendered with ``grab()`` at its current size; give it a fixed size first.
    name : str
        Baseline file name without extension.
    tolerance : float
        Largest share of pixels allowed to differ (by more than :data:`CHANNEL_THRESHOLD`
        in some channel), to absorb anti-aliasing and font differences between machines.
    """
    current = widget_pixels(widget)
    baseline_file = BASELINES / f"{name}.png"
    if os.environ.get(APPROVE_ENV) == "1":
        BASELINES.mkdir(parents=True, exist_ok=True)
        assert _to_image(current).save(str(baseline_file)), f"could not write {baseline_file}"
        return
    if not baseline_file.exists():
        DIFFS.mkdir(parents=True, exist_ok=True)
        _to_image(current).save(str(DIFFS / f"{name}.current.png"))
        raise AssertionError(f"no approved image {baseline_file.name}; look at "
                             f"{DIFFS / (name + '.current.png')} and rerun with {APPROVE_ENV}=1 to approve it")
    baseline = image_pixels(QImage(str(baseline_file)))
    if baseline.shape != current.shape:
        share = 1.0
    else:
        different = (np.abs(baseline.astype(int) - current.astype(int)) > CHANNEL_THRESHOLD).any(axis=2)
        share = float(different.mean())
    if share > tolerance:
        DIFFS.mkdir(parents=True, exist_ok=True)
        _to_image(current).save(str(DIFFS / f"{name}.current.png"))
        _to_image(baseline).save(str(DIFFS / f"{name}.baseline.png"))
        if baseline.shape == current.shape:
            diff = np.abs(baseline.astype(int) - current.astype(int)).astype(np.uint8)
            diff[..., 3] = 255
            _to_image(diff).save(str(DIFFS / f"{name}.diff.png"))
        raise AssertionError(
            f"{name}: {share:.1%} of pixels differ (allowed {tolerance:.1%}); shapes "
            f"{current.shape} vs {baseline.shape}; images saved in {DIFFS}")
