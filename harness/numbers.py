"""The one number formatter for people: the site, ``sarbench run``/``validate``/``demo``
summaries and ``sarbench score`` all print numbers with these functions, so a value reads
the same everywhere.

- metrics, differences and p-values: :func:`fmt` (4 significant digits), :func:`signed`,
  :func:`interval`, :func:`percent`;
- bytes: :func:`size` (binary units: B, KiB, MiB, GiB);
- durations: :func:`duration` (s, min, h);
- counts: :func:`count` (thousands separated).

Undefined values (None, NaN) print as ``n/a`` in every one of them. Files (CSV, JSON,
records) keep full precision; these are only for what people read.
"""

from __future__ import annotations

import math

DIGITS = 4
"""Significant digits of a metric in tables and summaries."""
NA = "n/a"


def fmt(value: float | None, digits: int = DIGITS) -> str:
    """``value`` to ``digits`` significant digits; ``n/a`` when undefined (None or NaN),
    ``inf``/``-inf`` spelled out. Never in exponent form between 1e-4 and 1e15: a value
    of ``10**digits`` or more is rounded to a whole number, thousands separated.

    >>> fmt(0.88712345), fmt(12.5), fmt(0.000123456), fmt(123456.7), fmt(float("nan"))
    ('0.8871', '12.5', '0.0001235', '123,457', 'n/a')
    """
    if value is None or math.isnan(value):
        return NA
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if 10**digits <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def signed(value: float | None, digits: int = DIGITS) -> str:
    """:func:`fmt` with its sign always shown (a difference): ``+0.0123``, ``-2.5``, ``0``.

    >>> signed(0.0123), signed(-2.5), signed(0.0)
    ('+0.0123', '-2.5', '0')
    """
    text = fmt(value, digits)
    if text == NA or value == 0 or text.startswith("-"):
        return text
    return "+" + text


def interval(value: float | None, low: float | None, high: float | None) -> str:
    """A value and its interval: ``0.8871 [0.8333, 0.9287]``."""
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def percent(fraction: float | None, digits: int = 3) -> str:
    """A signed relative change in percent: ``+3.25%`` for 0.0325; ``n/a`` when undefined.

    >>> percent(0.0325), percent(-0.5)
    ('+3.25%', '-50%')
    """
    if fraction is None or not math.isfinite(fraction):
        return NA
    return signed(fraction * 100, digits) + "%"


def p_value(p: float | None) -> str:
    """A p-value to 2 significant digits: ``0.031``, ``0.0005``, ``1``."""
    return fmt(p, 2)


def duration(seconds: float | None) -> str:
    """A duration in s, min and h: ``4.2 s`` under a minute, ``1 min 02 s`` under an hour,
    ``1 h 02 min`` from an hour on (seconds left out there); a whole number of minutes or
    hours drops the zero part (``15 min``, ``2 h``). ``n/a`` when undefined.

    >>> duration(4.25), duration(62), duration(900), duration(3725), duration(7200)
    ('4.2 s', '1 min 02 s', '15 min', '1 h 02 min', '2 h')
    """
    if seconds is None or not math.isfinite(seconds):
        return NA
    if abs(seconds) < 59.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        m, s = divmod(whole, 60)
        return f"{m} min {s:02d} s" if s else f"{m} min"
    h, m = divmod(round(whole / 60), 60)
    return f"{h} h {m:02d} min" if m else f"{h} h"


def size(n_bytes: float | None) -> str:
    """Bytes for people, in binary units: ``512 B``, ``1.5 KiB``, ``8 GiB``.

    >>> size(512), size(1536), size(8 * 2**30), size(5.464e8)
    ('512 B', '1.5 KiB', '8 GiB', '521.1 MiB')
    """
    if n_bytes is None or not math.isfinite(n_bytes):
        return NA
    value, units = float(n_bytes), ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    unit = units[0]
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}".replace(".0 ", " ")


def count(n: float | None) -> str:
    """A whole number, thousands separated: ``20,000``; ``n/a`` when undefined."""
    if n is None or not math.isfinite(n):
        return NA
    return f"{round(n):,}"


def by_name(name: str, value: float | None) -> str:
    """A number formatted by the unit its name ends with: ``*_bytes`` as :func:`size`,
    ``*_s`` and ``*_seconds`` as :func:`duration` (``gpu_seconds`` too), anything else
    as :func:`fmt`.

    >>> by_name("peak_memory_bytes", 5.464e8), by_name("train_s", 62.2), by_name("iou", 0.5)
    ('521.1 MiB', '1 min 02 s', '0.5')
    """
    if name.endswith("_bytes"):
        return size(value)
    if name.endswith(("_s", "_seconds")):
        return duration(value)
    return fmt(value)
