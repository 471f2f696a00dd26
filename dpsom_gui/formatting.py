"""Numbers as short phrases for people (durations, sizes, devices)."""

from __future__ import annotations

__all__ = ["format_duration", "format_bytes", "device_label"]


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``"1 min 15 s"``; None -> ``"unknown"``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "unknown"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if minutes < 10 and seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_bytes(n: float | None) -> str:
    """``3 * 2**20`` -> ``"3.0 MB"``."""
    if n is None or n < 0:
        return "unknown"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{int(n)} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def device_label(device: dict) -> str:
    """A device record (``name``, ``label``, ``memory_bytes``) as one line for a menu: its
    label (which names a GPU and its memory), or the name and memory when it has none."""
    label = device.get("label")
    if label:
        return str(label)
    label = str(device.get("name", "?"))
    memory = device.get("memory_bytes")
    if memory and label not in ("cpu", "auto"):
        label = f"{label} ({format_bytes(memory)})"
    return label
