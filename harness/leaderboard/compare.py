"""Compare pages: two ranked rows of one board side by side.

For each pair of official rows among a board's first :data:`MAX_ROWS` (the pairs of the
board's pairwise table, which links to them), a page shows the paired difference with its
interval and p-value exactly as the pairwise table has them (the same :class:`Versus`:
sign-flip permutation test by independence group, Holm over all pairs), a per-chip
scatter of the primary metric, and the :data:`TOP_CHIPS` chips where the two differ most
(by the per-chip primary metric) with the truth and both predictions side by side.

The pictures are cut from the runs' published quicklooks (input · truth · prediction, made
by the publish step for a few chips of every run): the input and truth panels once per
chip, each row's prediction panel once per row and chip, under ``compare/panels/`` of the
board, shared by every page that shows them. A chip with no published quicklook is said
so, never replaced by another chip.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from markupsafe import Markup

from harness import quicklook as ql
from harness.leaderboard.board import Board, Row, Versus
from harness.leaderboard.plots import scatter_plot
from harness.leaderboard.source import PublishedRun
from harness.leaderboard.tables import Cell, Column, Table, num, slug
from harness.numbers import fmt, p_value, signed
from harness.scoring.metrics import get_metric
from harness.scoring.stats import align_chips

MAX_ROWS = 20
"""Compare pages are made for every pair among a board's first 20 ranked rows (at most
190 pages a board); pairs further down the ranking are in the pairwise table only."""
TOP_CHIPS = 6
"""Chips shown with pictures: where A and B differ most."""
MAX_PIXELS = 40_000_000
"""A quicklook larger than this is not opened (they are a few hundred pixels a side)."""

Looks = Callable[[PublishedRun, str], Path | None]
"""``looks(run, chip id)``: the run's served quicklook of that chip in the site being
built, or None."""


def row_names(board: Board) -> dict[int, str]:
    """A file-name part for each official row (by ``id``): ``unet.default``, with a short
    hash of the row's identity where two rows share an entry and variant (other images
    or weights)."""
    base = {id(r): f"{slug(r.entry)}.{slug(r.variant)}" for r in board.official}
    seen = Counter(base.values())
    out = {}
    for r in board.official:
        name = base[id(r)]
        if seen[name] > 1:
            who = f"{r.image_digest}|{r.checkpoint}|{r.pretrained}".encode()
            name += "." + hashlib.sha256(who).hexdigest()[:8]
        out[id(r)] = name
    return out


def pairs(board: Board) -> list[tuple[Row, Row, Versus]]:
    """The pairs of the board that get a compare page: both rows among the first
    :data:`MAX_ROWS`, and comparable (same chips)."""
    return [
        (a, b, v)
        for a, b, v in board.pairwise
        if v is not None and a.rank <= MAX_ROWS and b.rank <= MAX_ROWS
    ]


def page_name(names: Mapping[int, str], a: Row, b: Row) -> str:
    """``compare/<A>--<B>.html``, relative to the board's folder."""
    return f"compare/{names[id(a)]}--{names[id(b)]}.html"


@dataclass(frozen=True)
class ChipPair:
    """One chip on a compare page: both per-chip values and, where published, the
    pictures (links relative to the page)."""

    id: str
    group: str | None
    a: float
    b: float
    truth: str | None = None
    pred_a: str | None = None
    pred_b: str | None = None

    @property
    def difference(self) -> float:
        return self.a - self.b


@dataclass(frozen=True)
class ComparePage:
    """What a compare page shows (``rel``: its path from the site's root)."""

    board: Board
    a: Row
    b: Row
    versus: Versus
    rel: str
    plot: Markup
    top: tuple[ChipPair, ...]
    table: Table
    undefined: int

    @staticmethod
    def entry_href(row: Row) -> str:
        """The row's entry page, relative to a compare page."""
        return f"../{slug(row.entry)}/{slug(row.variant)}/index.html"

    @property
    def level(self) -> float:
        """The confidence of the shown interval: the level that matches the Holm mark."""
        return 1 - self.versus.alpha


def per_chip(board: Board, a: Row, b: Row) -> tuple[np.ndarray, np.ndarray]:
    """Each chip's primary metric for A and for B, in A's chip order (the rows' chip
    statistics, seeds pooled chip by chip)."""
    metric = get_metric(board.task, board.primary_metric)
    b_stats = align_chips(a.chip_ids, a.stats, b.chip_ids, b.stats)
    values_a = np.atleast_1d(np.asarray(metric(a.stats), dtype=np.float64))
    values_b = np.atleast_1d(np.asarray(metric(b_stats), dtype=np.float64))
    return values_a, values_b


def most_different(a: np.ndarray, b: np.ndarray, k: int = TOP_CHIPS) -> list[int]:
    """Indices of the ``k`` chips with the largest |a - b| (ties: chip order), chips with
    an undefined value left out.

    >>> most_different(np.array([0.5, 0.9, np.nan, 0.1]), np.array([0.5, 0.2, 0.3, 0.4]), 2)
    [1, 3]
    """
    gap = np.abs(a - b)
    defined = [i for i in range(len(gap)) if math.isfinite(gap[i])]
    return sorted(defined, key=lambda i: (-gap[i], i))[:k]


class Panels:
    """Cuts quicklooks into panels under ``<board folder>/compare/panels`` of the site
    being built, each at most once; hands out links relative to a compare page."""

    def __init__(self, work: Path, board_folder: str) -> None:
        self.root = work / board_folder / "compare" / "panels"
        self.done: dict[Path, bool] = {}

    def _cut(self, source: Path, truth: Path, prediction: Path) -> bool:
        """Write the input and truth panels (if not yet) and the prediction panel of
        ``source``; False when it cannot be read as a run's quicklook."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(source) as image:
                boxes = ql.panel_boxes(image.width)
                if boxes is None or image.width * image.height > MAX_PIXELS:
                    return False
                rgb, height = image.convert("RGB"), image.height
                truth.parent.mkdir(parents=True, exist_ok=True)
                prediction.parent.mkdir(parents=True, exist_ok=True)
                if not truth.exists():
                    rgb.crop((0, 0, boxes[1][1], height)).save(truth)
                rgb.crop((boxes[2][0], 0, boxes[2][1], height)).save(prediction)
        except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
            return False
        return True

    def links(self, source: Path | None, chip: str, row: str) -> tuple[str | None, str | None]:
        """(input and truth, prediction) of ``chip`` as links from a compare page, cut
        from ``source`` (a served quicklook) for the row named ``row``; None where there
        is none."""
        if source is None:
            return None, None
        name = f"{slug(chip)}.png"
        truth, prediction = self.root / "truth" / name, self.root / "rows" / row / name
        if prediction not in self.done:
            self.done[prediction] = self._cut(source, truth, prediction)
        if not self.done[prediction]:
            return None, None
        return f"panels/truth/{name}", f"panels/rows/{row}/{name}"


def _look(row: Row, chip: str, looks: Looks) -> Path | None:
    """The first of the row's runs (lowest seed first) with a quicklook of ``chip``."""
    for run in row.runs:
        path = looks(run, chip)
        if path is not None:
            return path
    return None


def label(row: Row) -> str:
    """``#2 unet / default``: the rank, the name and the variant of a row."""
    return f"#{row.rank} {row.name} / {row.variant}"


def compare_page(
    board: Board,
    a: Row,
    b: Row,
    versus: Versus,
    rel: str,
    names: Mapping[int, str],
    looks: Looks,
    panels: Panels,
) -> ComparePage:
    """The compare page of rows ``a`` (ranked above) and ``b`` at ``rel`` (from the
    site's root); pictures cut by ``panels`` from the quicklooks ``looks`` finds."""
    values_a, values_b = per_chip(board, a, b)
    ranked = most_different(values_a, values_b)
    top = set(ranked)
    groups = a.groups or (None,) * len(a.chip_ids)
    chips = []
    for i, (chip, group) in enumerate(zip(a.chip_ids, groups, strict=True)):
        pair = ChipPair(chip, group, float(values_a[i]), float(values_b[i]))
        if i in top:
            truth, pred_a = panels.links(_look(a, chip, looks), chip, names[id(a)])
            truth_b, pred_b = panels.links(_look(b, chip, looks), chip, names[id(b)])
            pair = replace(pair, truth=truth or truth_b, pred_a=pred_a, pred_b=pred_b)
        chips.append(pair)
    ordered = [chips[i] for i in ranked]
    undefined = sum(not (math.isfinite(c.a) and math.isfinite(c.b)) for c in chips)
    labels = (label(a), label(b))
    plot = scatter_plot(
        values_a, values_b, [i in top for i in range(len(chips))], labels,
        board.primary_metric, board.direction,
    )  # fmt: skip
    stem = rel.rsplit("/", 1)[-1].removesuffix(".html")
    return ComparePage(
        board, a, b, versus, rel, plot, tuple(ordered), chip_table(stem, board, chips), undefined
    )


def chip_table(name: str, board: Board, chips: list[ChipPair]) -> Table:
    """Every chip's primary metric for A and B and the difference, largest first."""
    m = board.primary_metric
    cols = (
        Column("Chip"),
        Column("Group"),
        Column(f"A {m}", True),
        Column(f"B {m}", True),
        Column("A − B", True, "the chip's own metric, A minus B (undefined: n/a)"),
    )

    def key(c: ChipPair) -> tuple[int, float, str]:
        d = c.difference
        return (0, -abs(d), c.id) if math.isfinite(d) else (1, 0.0, c.id)

    order = sorted(chips, key=key)
    cells = tuple(
        (
            Cell(c.id, c.id),
            Cell(c.group or "", c.group or ""),
            num(c.a),
            num(c.b),
            Cell(signed(c.difference), num(c.difference).sort),
        )
        for c in order
    )
    records = tuple(
        {"chip": c.id, "group": c.group, f"a_{m}": c.a, f"b_{m}": c.b, "difference": c.difference}
        for c in order
    )
    return Table(name, cols, cells, records)


def summary(page: ComparePage) -> str:
    """The comparison in one line: ``A − B = +0.0123 [0.004, 0.021] (95% interval),
    p = 0.002 (Holm over 15 pairs: 0.03)``."""
    v, c = page.versus, page.versus.comparison
    low, high = v.interval
    n = len(page.board.pairwise)
    return (
        f"A − B = {signed(c.difference)} [{fmt(low)}, {fmt(high)}] ({page.level:.4g} "
        f"interval), p = {p_value(c.p_value)} before and {p_value(v.p_adjusted)} after Holm "
        f"over {n} pair{'s' if n != 1 else ''}"
    )
