"""Boards turned into tables: one structure serves the HTML table and its CSV/JSON downloads.

Each :class:`Table` holds display cells (text, a sort key, an optional link and badge) and
plain records (what the CSV and JSON files carry, with full precision).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.leaderboard.board import (
    ALPHA,
    RANDOM_INIT,
    AblationMatrix,
    Board,
    Row,
    Versus,
    short_digest,
)
from harness.leaderboard.source import ChipTable, PublishedRun
from harness.numbers import by_name, duration, fmt, p_value, percent, signed
from harness.scoring.stats import json_float

Link = Callable[[str, str], str]
"""``link(entry, variant)``: the URL of that entry page, relative to the table's page."""


@dataclass(frozen=True)
class Cell:
    text: str
    sort: str = ""
    href: str | None = None
    badge: str | None = None
    title: str | None = None
    cls: str = ""
    sub: str | None = None
    """A second part shown after the text (an interval): on a narrow screen, below it."""


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False
    title: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    records: tuple[dict[str, Any], ...]
    row_classes: tuple[str, ...] = field(default=())

    def csv(self) -> str:
        buf = io.StringIO()
        keys = list(self.records[0]) if self.records else []
        writer = csv.DictWriter(buf, keys, lineterminator="\n")
        writer.writeheader()
        for rec in self.records:
            writer.writerow({k: _csv_value(v) for k, v in rec.items()})
        return buf.getvalue()

    def json(self) -> str:
        return json.dumps([_json_safe(r) for r in self.records], indent=1)


def _csv_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, list | dict):
        return json.dumps(_json_safe(v))
    return "" if v is None else v


def _json_safe(v: Any) -> Any:
    if isinstance(v, float):
        return json_float(v)
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def num(v: float | None) -> Cell:
    return Cell(fmt(v), "" if v is None or math.isnan(v) else repr(float(v)))


def seconds(v: float | None) -> Cell:
    """A duration cell (:func:`harness.numbers.duration`), sorted by its seconds."""
    return Cell("" if v is None else duration(v), "" if v is None else repr(v))


def _optional(v: float | None) -> Cell:
    return Cell("") if v is None else num(v)


def slug(text: str) -> str:
    """A safe file or folder name for ``text`` (never empty, never ``.`` or ``..``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip(".") or "_"


def ranking(board: Board, rows: Sequence[Row], name: str, link: Link) -> Table:
    """The ranked table of ``rows``; ``link(entry, variant)`` gives each entry page's URL."""
    p = board.primary_metric
    cols = [
        Column("#", True),
        Column("Entry"),
        Column("Variant"),
        Column(f"{p} [95% CI]", True, f"{p}, {board.direction} is better"),
        *(Column(m, True) for m in board.secondary_metrics),
        Column("Seeds", True, "primary metric across seeds: mean ± sd"),
        Column("Train", True),
        Column("Predict", True),
        Column("GPU-s", True),
        Column("Image"),
        Column("Weights", False, "the pretrained checkpoint the run trained from"),
        Column(
            "vs #1",
            True,
            f"against the leader: sign-flip permutation test by independence group, Holm "
            f"over the board's comparisons; tied: adjusted p ≥ {ALPHA} ({better_words(board)})",
        ),
    ]
    cells, records, classes = [], [], []
    for row in rows:
        s = row.seeds
        seeds_text = (
            f"{fmt(s.mean)} ± {fmt(s.std, 2)} (n={s.n})" if s.n > 1 else f"1 (s{row.runs[0].seed})"
        )
        v = row.versus_leader
        if v is None:
            note = row.versus_note
            vs = Cell("n/c" if note else "leader", "", title=note or None)
        else:
            vs = versus_cell(v, "#1")
        cells.append(
            (
                Cell(str(row.rank), str(row.rank)),
                Cell(
                    row.name,
                    row.name,
                    href=link(row.entry, row.variant),
                    badge="baseline" if row.baseline else None,
                    title=row.team,
                ),
                Cell(row.variant, row.variant),
                Cell(
                    fmt(row.primary),
                    num(row.primary).sort,
                    cls="primary",
                    title=row.ci_note or None,
                    sub=f"[{fmt(row.ci_low)}, {fmt(row.ci_high)}]"
                    if not row.ci_note
                    else "[interval n/a]",
                ),
                *(num(row.metrics.get(m)) for m in board.secondary_metrics),
                Cell(seeds_text, num(s.mean).sort),
                seconds(row.mean_metric("train_s")),
                seconds(row.mean_metric("predict_s")),
                _optional(row.mean_metric("gpu_seconds")),
                Cell(short_digest(row.image_digest), row.image_digest, title=row.image_digest),
                _weights(row.checkpoint, row.pretrained),
                vs,
            )
        )
        classes.append("tied-leader" if row.tied_with_leader else "")
        records.append(
            {
                "rank": row.rank,
                "entry": row.entry,
                "variant": row.variant,
                "pretrained": row.pretrained,
                "team": row.team,
                "baseline": row.baseline,
                p: row.primary,
                f"{p}_ci_low": row.ci_low,
                f"{p}_ci_high": row.ci_high,
                f"{p}_ci_note": row.ci_note or None,
                **{m: row.metrics.get(m) for m in board.secondary_metrics},
                "seeds": [r.seed for r in row.runs],
                "seed_mean": s.mean,
                "seed_sd": s.std,
                "train_s": row.mean_metric("train_s"),
                "predict_s": row.mean_metric("predict_s"),
                "gpu_seconds": row.mean_metric("gpu_seconds"),
                "image_digest": row.image_digest,
                "checkpoint": row.checkpoint,
                **versus_record("vs_leader", v),
                "tied_with_leader": row.tied_with_leader,
                "run_ids": [r.run_id for r in row.runs],
            }
        )
    return Table(name, tuple(cols), tuple(cells), tuple(records), tuple(classes))


def ablation_table(board: Board, entry: str, matrix: AblationMatrix, link: Link) -> Table:
    """An entry's ablation matrix as it declared it: a column per component, each row's
    score with its interval, and its change against the reference variant."""
    p = board.primary_metric
    spec = matrix.spec
    ref = spec.reference
    cols = [
        Column("Variant"),
        *(Column(spec.label(c)) for c in spec.components),
        Column(f"{p} [95% CI]", True),
        Column(
            f"Change vs {ref}",
            True,
            f"difference to {ref} with its interval; sign-flip permutation test by "
            f"independence group, Holm over the matrix's comparisons ({better_words(board)})",
        ),
    ]
    cells, records = [], []
    for a in matrix.rows:
        r, v = a.row, a.versus_reference
        change = Cell("—", "") if v is None else versus_cell(v, ref, relative=True)
        cells.append(
            (
                Cell(f"{a.label}: {r.variant}", r.variant, href=link(r.entry, r.variant)),
                *(
                    Cell("✓" if a.components[c] else "–", str(int(a.components[c])), cls="check")
                    for c in spec.components
                ),
                Cell(f"{fmt(r.primary)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]", num(r.primary).sort),
                change,
            )
        )
        records.append(
            {
                "label": a.label,
                "variant": r.variant,
                "image_digest": r.image_digest,
                **{c: a.components[c] for c in spec.components},
                p: r.primary,
                f"{p}_ci_low": r.ci_low,
                f"{p}_ci_high": r.ci_high,
                "seeds": [x.seed for x in r.runs],
                "reference": ref,
                **versus_record("vs_reference", v),
            }
        )
    return Table(f"ablation-{slug(entry)}", tuple(cols), tuple(cells), tuple(records))


def pairwise_table(board: Board, compare: Callable[[Row, Row], str | None] | None = None) -> Table:
    """Every pair of official rows (A ranked above B): the difference A - B with its
    interval, the verdict and p, Holm over all pairs of the board. ``compare(a, b)`` gives
    the URL of the pair's compare page (None: it has none); the comparison links to it."""
    p = board.primary_metric
    cols = [
        Column("A"),
        Column("B"),
        Column(
            f"A vs B ({p})",
            True,
            f"difference A - B with its interval; sign-flip permutation test by independence "
            f"group, Holm over all pairs ({better_words(board)})",
        ),
    ]
    cells, records = [], []
    for a, b, v in board.pairwise:
        href = compare(a, b) if compare else None
        cells.append(
            (
                Cell(f"#{a.rank} {a.name} / {a.variant}", str(a.rank)),
                Cell(f"#{b.rank} {b.name} / {b.variant}", str(b.rank)),
                Cell("n/c", "") if v is None else replace(versus_cell(v, f"#{b.rank}"), href=href),
            )
        )
        records.append(
            {
                "a": {"rank": a.rank, "entry": a.entry, "variant": a.variant},
                "b": {"rank": b.rank, "entry": b.entry, "variant": b.variant},
                **versus_record("a_vs_b", v),
                "compare_page": href,
            }
        )
    return Table("pairwise", tuple(cols), tuple(cells), tuple(records))


def _weights(checkpoint: str, pretrained: bool | None) -> Cell:
    if pretrained is False:
        unused = "" if checkpoint == "none" else f" (weights {checkpoint} mounted, not loaded)"
        return Cell(RANDOM_INIT, checkpoint, title=f"trained from random initialisation{unused}")
    if checkpoint == "none":
        return Cell("none", "none", title="trained without pretrained weights")
    return Cell(short_digest(checkpoint), checkpoint, title=checkpoint)


def better_words(board: Board) -> str:
    """What "better" means on this board, in the metric's own direction."""
    m = board.primary_metric
    return {
        "higher": f"better = higher {m}",
        "lower": f"better = lower {m}",
    }.get(board.direction, f"better = {m} closer to 0")


def versus_cell(v: Versus, other: str, *, relative: bool = False) -> Cell:
    """A comparison as words: ``tied with #1``, ``worse than #1``, ``better than full``,
    with the difference, its interval and both p-values in the tooltip."""
    verdict = v.verdict()
    words = {
        "tied": f"tied with {other}",
        "better": f"better than {other}",
        "worse": f"worse than {other}",
    }.get(verdict, "n/a")
    c = v.comparison
    low, high = v.interval
    level = 1 - v.alpha
    rel = ""
    if relative and c.b and math.isfinite(c.difference):
        rel = f" ({percent(c.difference / c.b)})"
    text = f"{words} {signed(c.difference)}{rel}"
    sub = f"[{fmt(low)}, {fmt(high)}] p={p_value(v.p_adjusted)}"
    title = (
        f"difference {fmt(c.difference)}, {level:.4g} interval [{fmt(low)}, {fmt(high)}] "
        f"(the level that matches the Holm-adjusted p); p={fmt(c.p_value)} before and "
        f"{fmt(v.p_adjusted)} after Holm; {c.n_units} {c.unit}s, {c.n_permutations} sign flips"
    )
    return Cell(text, repr(c.difference), title=title, cls=verdict, sub=sub)


def versus_record(prefix: str, v: Versus | None) -> dict[str, Any]:
    """A comparison's figures for a table's JSON: all from the same permutations."""
    names = ("verdict", "difference", "low", "high", "level", "p_value", "p_holm", "units", "unit")
    if v is None:  # every key all the same, so that the CSV has one set of columns
        return {f"{prefix}_{n}": None for n in names}
    c = v.comparison
    low, high = v.interval
    return {
        f"{prefix}_verdict": v.verdict(),
        f"{prefix}_difference": c.difference,
        f"{prefix}_low": low,
        f"{prefix}_high": high,
        f"{prefix}_level": 1 - v.alpha,
        f"{prefix}_p_value": c.p_value,
        f"{prefix}_p_holm": v.p_adjusted,
        f"{prefix}_units": c.n_units,
        f"{prefix}_unit": c.unit,
    }


def failed_table(runs: Sequence[PublishedRun], link: Link) -> Table:
    cols = [Column(c) for c in ("Entry", "Variant", "Seed", "Reason", "Detail", "Backend", "Run")]
    cells, records = [], []
    for r in runs:
        cells.append(
            (
                Cell(r.entry, r.entry, href=link(r.entry, r.variant)),
                Cell(r.variant, r.variant),
                Cell(str(r.seed), str(r.seed)),
                Cell(r.tag("reason"), r.tag("reason"), cls="reason"),
                Cell(r.tag("detail")),
                Cell(r.tag("backend")),
                Cell(r.run_id),
            )
        )
        records.append(
            {
                "entry": r.entry,
                "variant": r.variant,
                "seed": r.seed,
                "reason": r.tag("reason"),
                "detail": r.tag("detail"),
                "backend": r.tag("backend"),
                "isolated": r.tag("isolated") == "true",
                "run_id": r.run_id,
            }
        )
    return Table("failed", tuple(cols), tuple(cells), tuple(records))


def chips_table(name: str, table: ChipTable) -> Table:
    """Per-chip scores of one run, as published."""
    text = 2 if table.groups is not None else 1  # id, and group where there is one
    cols = [Column(h) for h in table.header[:text]]
    cols += [Column(h, True) for h in table.header[text:]]
    cells, records = [], []
    for row in table.rows:
        values: list[float] = []
        for x in row[text:]:
            try:
                values.append(float(x))
            except ValueError:
                values.append(math.nan)
        labels = dict(zip(table.header[:text], row[:text], strict=False))
        cells.append((*(Cell(x, x) for x in row[:text]), *(num(v) for v in values)))
        records.append({**labels, **dict(zip(table.header[text:], values, strict=False))})
    return Table(name, tuple(cols), tuple(cells), tuple(records))


def run_metrics_table(run: PublishedRun) -> Table:
    cols = (Column("Metric"), Column("Value", True))
    items = sorted((k, v) for k, v in run.metrics.items() if "/" not in k)
    cells = tuple((Cell(k, k), Cell(by_name(k, v), num(v).sort)) for k, v in items)
    return Table(
        f"metrics-{slug(run.run_id)}",
        cols,
        cells,
        tuple({"metric": k, "value": v} for k, v in items),
    )
