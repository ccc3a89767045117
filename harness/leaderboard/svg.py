"""Plots as inline SVG, drawn here (no plotting library, nothing fetched by the page).

Every piece of text is escaped; the result is a :class:`markupsafe.Markup` for templates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
LABEL_W = 200
ROW_H = 26
TOP, BOTTOM = 10, 34
PALETTE = ("#1f5fa8", "#c2571a", "#2b8a3e", "#7b3fa0")


@dataclass(frozen=True)
class Point:
    """One row of a score plot: a value and its interval (either end may be NaN)."""

    label: str
    value: float
    low: float
    high: float
    highlight: bool = False


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / (n - 1)
    return [lo + i * step for i in range(n)]


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def score_plot(points: Sequence[Point], metric: str, better: str) -> Markup:
    """Dots at each value with its interval as a bar, one line per row, best at the top."""
    span = _finite([v for p in points for v in (p.value, p.low, p.high)])
    if not span:
        return Markup('<p class="muted">No defined scores to plot.</p>')
    lo, hi = min(span), max(span)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 0.05
    lo, hi = lo - pad, hi + pad
    plot_w = WIDTH - LABEL_W - 20
    height = TOP + ROW_H * len(points) + BOTTOM

    def x(v: float) -> float:
        return LABEL_W + (v - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg class="plot" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">',
        f"<title>{escape(metric)} with 95% confidence intervals ({escape(better)} is better)"
        "</title>",
    ]
    axis_y = TOP + ROW_H * len(points)
    for t in _ticks(lo, hi):
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{axis_y}" class="grid"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle">{_fmt(t)}</text>'
        )
    parts.append(
        f'<text x="{LABEL_W + plot_w / 2:.1f}" y="{axis_y + 30}" text-anchor="middle">'
        f"{escape(metric)} ({escape(better)} is better)</text>"
    )
    for i, p in enumerate(points):
        y = TOP + ROW_H * i + ROW_H / 2
        cls = "pt hi" if p.highlight else "pt"
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(p.label)}</text>'
        )
        if math.isfinite(p.low) and math.isfinite(p.high):
            parts.append(
                f'<line x1="{x(p.low):.1f}" x2="{x(p.high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'class="ci"/><line x1="{x(p.low):.1f}" x2="{x(p.low):.1f}" y1="{y - 5:.1f}" '
                f'y2="{y + 5:.1f}" class="ci"/><line x1="{x(p.high):.1f}" x2="{x(p.high):.1f}" '
                f'y1="{y - 5:.1f}" y2="{y + 5:.1f}" class="ci"/>'
            )
        if math.isfinite(p.value):
            tip = f"{p.label}: {_fmt(p.value)} [{_fmt(p.low)}, {_fmt(p.high)}]"
            parts.append(
                f'<circle cx="{x(p.value):.1f}" cy="{y:.1f}" r="4.5" class="{cls}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_plot(series: dict[str, list[tuple[float, float]]], title: str) -> Markup:
    """Lines of (step, value) pairs (a loss curve), with a legend."""
    xs = _finite([s for pts in series.values() for s, _ in pts])
    ys = _finite([v for pts in series.values() for _, v in pts])
    if not xs or not ys:
        return Markup("")
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    w, h, left, top, plot_w, plot_h = 480, 220, 50, 10, 410, 170

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * plot_w

    def py(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * plot_h

    parts = [
        f'<svg class="plot" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {w} {h}" width="{w}" height="{h}"><title>{escape(title)}</title>'
    ]
    for t in _ticks(y0, y1, 4):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
            f'class="grid"/><text x="{left - 4}" y="{py(t) + 4:.1f}" text-anchor="end">'
            f"{_fmt(t)}</text>"
        )
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in pts if math.isfinite(v))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
            f'<text x="{left + 8 + 120 * i}" y="{h - 8}" fill="{colour}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
