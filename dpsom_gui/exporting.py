"""Writing what the user explores to files: CSV tables, pictures of views, animations.

CSV content comes from :mod:`core.io.export` (through :class:`~dpsom_gui.map_explorer.MapExplorer`)
and is written by ``core.io.export.write_csv``; this module only chooses what goes into
which file. Every file appears only once complete (a temporary file next to it, renamed);
which paths may be written at all is checked before, by ``core.io.outputs.check_outputs``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PICTURE_FILTER", "CSV_FILTER", "GIF_FILTER", "save_widget_picture", "export_assignments",
           "export_node_summary", "export_animation"]

PICTURE_FILTER = "PNG picture (*.png);;SVG drawing (*.svg)"
CSV_FILTER = "CSV table (*.csv)"
GIF_FILTER = "Animated GIF (*.gif)"


def save_widget_picture(widget, path) -> Path:
    """Save what ``widget`` shows as PNG (pixels) or SVG (a drawing), by the file's suffix.

    Raises
    ------
    ValueError
        For another suffix, or when the file could not be written.
    """
    from core.io.outputs import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"pictures are saved as .png or .svg, not {suffix or 'a file without extension'}")
    # Drawn into a temporary file next to the target, which it replaces when complete: a
    # picture cut short never takes the place of a good one.
    with atomic_path(path) as tmp:
        _draw_picture(widget, tmp, suffix, path)
    return path


def _draw_picture(widget, tmp: Path, suffix: str, path: Path) -> None:
    if suffix == ".png":
        if not widget.grab().save(str(tmp), "PNG"):
            raise ValueError(f"could not write {path}; choose another folder")
        return
    if suffix == ".svg":
        from PySide6.QtCore import QPoint, QRect, QSize
        from PySide6.QtGui import QPainter
        from PySide6.QtSvg import QSvgGenerator

        size = widget.size()
        generator = QSvgGenerator()
        generator.setFileName(str(tmp))
        generator.setSize(QSize(size.width(), size.height()))
        generator.setViewBox(QRect(0, 0, size.width(), size.height()))
        generator.setTitle(widget.windowTitle() or "DPSOM Studio view")
        generator.setDescription("Drawn by DPSOM Studio")
        painter = QPainter()
        if not painter.begin(generator):
            raise ValueError(f"could not write {path}; choose another folder")
        try:
            widget.render(painter, QPoint(0, 0))
        finally:
            painter.end()


def export_assignments(explorer, path, nodes=None, probabilities: bool = False) -> int:
    """Write the assignments (all points, or those in ``nodes``) as CSV; returns the line count."""
    from core.io.export import write_csv

    frame = (explorer.assignments_frame(probabilities) if nodes is None
             else explorer.selection_assignments(nodes, probabilities))
    write_csv(frame, path)
    return len(frame)


def export_node_summary(explorer, path, annotations: dict | None = None) -> int:
    """Write one line per cell (size, outcome means, typical profile, names) as CSV."""
    from core.io.export import write_csv

    frame = explorer.node_summary(annotations)
    write_csv(frame, path)
    return len(frame)


def export_animation(view, path, fps: float = 10.0, max_frames: int = 200) -> int:
    """Save a :class:`~dpsom_gui.views.trajectory_view.TrajectoryView`'s animation from the
    first to the last step as an animated GIF; returns the number of frames."""
    from .gif_writer import write_gif

    frames = view.render_frames(fps=fps, max_frames=max_frames)
    duration_ms = 1000.0 * view.end_time / max(view.speed, 1e-9)
    delay = 1000.0 / fps if len(frames) < 2 else duration_ms / (len(frames) - 1)
    write_gif(path, frames, delay_ms=int(round(delay)))
    return len(frames)
