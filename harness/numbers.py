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
