"""The one number formatter for people: the site, ``sarbench run``/``validate`` summaries and
``sarbench score`` all print metrics with :func:`fmt`."""

from __future__ import annotations

import math

DIGITS = 4
"""Significant digits of a metric in tables and summaries (``sarbench score`` shows 6)."""


def fmt(value: float | None, digits: int = DIGITS) -> str:
    """``value`` to ``digits`` significant digits; ``n/a`` when undefined (None or NaN),
    ``inf``/``-inf`` spelled out."""
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def interval(value: float | None, low: float | None, high: float | None) -> str:
    """``0.8871 [0.8333, 0.9287]``."""
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def duration(seconds: float | None) -> str:
    """``42.0 s`` under a minute, else ``m:ss`` or ``h:mm:ss``; ``n/a`` when undefined.

    >>> duration(4.25), duration(62), duration(3725)
    ('4.2 s', '1:02', '1:02:05')
    """
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def size(n_bytes: float | None) -> str:
    """Bytes for people, in binary units: ``512 B``, ``1.5 KiB``, ``8 GiB``.

    >>> size(512), size(1536), size(8 * 2**30), size(5.464e8)
    ('512 B', '1.5 KiB', '8 GiB', '521.1 MiB')
    """
    if n_bytes is None or not math.isfinite(n_bytes):
        return "n/a"
    value, units = float(n_bytes), ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}".replace(".0 ", " ")
