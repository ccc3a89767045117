"""The site's plots, drawn with matplotlib's SVG backend and inlined in the pages (nothing
is fetched by the page).

- :func:`score_plot`: a forest plot, each row's score with its interval, best at the top.
- :func:`curve_plot`: one training-curve file (``artifacts/loss*.csv``) as panels that
  share the epoch (or step) axis: the losses on one axis, every other quantity (a
  validation metric, the learning rate) on its own. Columns that measure time (``seconds``,
  ``time``, ``elapsed``...) are never drawn: time is not a loss.

Text from runs (column names, labels) is untrusted: matplotlib writes it as escaped SVG
text, math parsing off. Each drawn series carries an SVG id ``series-<axis>-<n>`` with its
name in a ``<title>``, so tests (and readers' tools) can tell what lies on which axis. The
SVG is made deterministic (no date, fixed ids) so that a rebuild writes the same bytes.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape
from matplotlib import rc_context
from matplotlib.figure import Figure

from harness.publish.content import TIME_COLUMN

PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#393b79", "#ad494a", "#637939", "#7b4173", "#8c6d31", "#3182bd",
)  # fmt: skip
"""Sixteen colours that stay apart (tab10 and more); past them the line style changes."""
STYLES = ("-", "--", ":", "-.")

LOSS_COLUMN = re.compile(r"loss", re.I)
X_COLUMNS = ("epoch", "step", "iteration", "iter")

_RC = {
    "svg.fonttype": "none",  # text as text: small, searchable, escaped by matplotlib
    "svg.hashsalt": "sarbench",  # stable ids
    "text.parse_math": False,  # a '$' in a column name is a dollar sign
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class Point:
    """One row of a score plot: a value and its interval (either end may be NaN)."""

    label: str
    value: float
    low: float
    high: float
    highlight: bool = False


def _svg(
    fig: Figure, title: str, names: dict[str, str] | None = None, *, tight: bool = True
) -> Markup:
    """The figure as inline SVG; each group whose id is a key of ``names`` gets that name
    as its ``<title>`` (escaped). ``tight=False`` keeps the figure's own margins (half the
    time: for plots drawn many times, with margins set)."""
    buf = io.StringIO()
    box = "tight" if tight else None
    fig.savefig(buf, format="svg", bbox_inches=box, metadata={"Date": None, "Title": title})
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:].replace("<svg ", '<svg class="plot" role="img" ', 1)
    for gid, name in (names or {}).items():
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}">\n   <title>{escape(name)}</title>', 1)
    return Markup(svg)


def score_plot(points: Sequence[Point], metric: str, better: str) -> Markup:
    """Each row's score (dot) and 95% interval (bar), one line per row, best at the top."""
    finite = [v for p in points for v in (p.value, p.low, p.high) if math.isfinite(v)]
    if not finite:
        return Markup('<p class="muted">No defined scores to plot.</p>')
    with rc_context(_RC):
        fig = Figure(figsize=(7.2, 0.5 + 0.32 * len(points)))
        ax = fig.subplots()
        for i, p in enumerate(points):
            y = len(points) - 1 - i
            colour = PALETTE[1] if p.highlight else PALETTE[0]
            if math.isfinite(p.low) and math.isfinite(p.high):
                ax.plot([p.low, p.high], [y, y], color=colour, lw=1.6, solid_capstyle="butt")
                ax.plot([p.low, p.high], [y, y], "|", color=colour, ms=8)
            if math.isfinite(p.value):
                ax.plot([p.value], [y], "o", color=colour, ms=5, gid=f"row-{i}")
        ax.set_yticks(range(len(points)), [p.label for p in reversed(points)])
        ax.set_ylim(-0.6, len(points) - 0.4)
        ax.set_xlabel(f"{metric} with its 95% interval ({better} is better)")
        ax.grid(axis="x", color="#e4e4e4", lw=0.6)
        ax.set_axisbelow(True)
        return _svg(fig, f"{metric} with 95% confidence intervals")


def split_columns(columns: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(losses, others, time columns) of a curve file's value columns."""
    time = [c for c in columns if TIME_COLUMN.search(c)]
    rest = [c for c in columns if c not in time]
    losses = [c for c in rest if LOSS_COLUMN.search(c)]
    return losses, [c for c in rest if c not in losses], time


def curve_plot(
    series: dict[str, list[tuple[float, float]]], file: str, x_label: str = "epoch"
) -> Markup:
    """One curve file's columns (name -> (x, value) points) as panels over one x axis: the
    losses together, each other quantity on its own, time columns left out."""
    losses, others, time = split_columns(list(series))
    panels: list[tuple[str, list[str]]] = [("loss", losses)] if losses else []
    panels += [(name, [name]) for name in others]
    if not panels:
        return Markup("")
    with rc_context(_RC):
        fig = Figure(figsize=(6.4, 0.6 + 1.9 * len(panels)))
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
        n, names = 0, {}
        for (name, columns), ax in zip(panels, axes[:, 0], strict=True):
            for column in columns:
                pts = [(s, v) for s, v in series[column] if math.isfinite(v)]
                if not pts:
                    continue
                colour, style = PALETTE[n % len(PALETTE)], STYLES[n // len(PALETTE) % 4]
                gid = f"series-{'loss' if name == 'loss' else 'other'}-{n}"
                ax.plot(
                    [s for s, _ in pts], [v for _, v in pts], style, color=colour, lw=1.5,
                    label=column, gid=gid,
                )  # fmt: skip
                names[gid] = column
                n += 1
            ax.set_ylabel(name)
            ax.grid(color="#eeeeee", lw=0.6)
            if len(columns) > 1:
                ax.legend(frameon=False, fontsize=8)
        axes[-1, 0].set_xlabel(x_label)
        axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
        left_out = f" (not drawn: {', '.join(time)})" if time else ""
        axes[0, 0].set_title(f"{file}{left_out}", loc="left", fontsize=9)
        return _svg(fig, f"{file}: training curves", names)


def series_names(svg: str) -> dict[str, list[str]]:
    """The names of the series drawn in a :func:`curve_plot`, by axis kind (``loss`` or
    ``other``): what a test reads back from a page."""
    out: dict[str, list[str]] = {"loss": [], "other": []}
    for kind, label in re.findall(
        r'<g id="series-(loss|other)-\d+">\s*<title>([^<]*)</title>', svg
    ):
        out[kind].append(label)
    return out


def scatter_plot(
    a: Sequence[float],
    b: Sequence[float],
    marked: Sequence[bool],
    labels: tuple[str, str],
    metric: str,
    better: str,
) -> Markup:
    """Each chip's ``metric`` for A (x) against B (y), the diagonal where they agree;
    the chips ``marked`` (where they differ most) in red. Chips where either value is
    undefined are left out (the caller says how many). The points lie in the groups
    ``chips-marked`` and ``chips-other``, one ``<use>`` per chip."""
    pts = [
        (x, y, m)
        for x, y, m in zip(a, b, marked, strict=True)
        if math.isfinite(x) and math.isfinite(y)
    ]
    if not pts:
        return Markup('<p class="muted">No chip where both per-chip values are defined.</p>')
    values = [v for x, y, _ in pts for v in (x, y)]
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or 0.05
    with rc_context(_RC):
        fig = Figure(figsize=(4.6, 4.4))
        ax = fig.subplots()
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="#9aa4ae", lw=0.8)
        for gid, colour, keep in (
            ("chips-other", PALETTE[0], False),
            ("chips-marked", PALETTE[1], True),
        ):
            xs = [x for x, _, m in pts if m is keep]
            ys = [y for _, y, m in pts if m is keep]
            if xs:
                ax.plot(xs, ys, "o", color=colour, ms=4, alpha=0.8, gid=gid)
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        ax.set_aspect("equal")
        ax.set_xlabel(f"A: {labels[0]}")
        ax.set_ylabel(f"B: {labels[1]}")
        ax.set_title(f"per-chip {metric} ({better} is better)", loc="left", fontsize=9)
        ax.grid(color="#eeeeee", lw=0.6)
        ax.set_axisbelow(True)
        fig.subplots_adjust(left=0.17, right=0.97, bottom=0.12, top=0.93)
        names = {"chips-other": "chips", "chips-marked": "chips where A and B differ most"}
        return _svg(fig, f"per-chip {metric}: A against B", names, tight=False)
