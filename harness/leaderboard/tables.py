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
from dataclasses import dataclass, field
from typing import Any

from harness.leaderboard.board import (
    ALPHA,
    AblationMatrix,
    Board,
    Row,
    short_digest,
)
from harness.leaderboard.source import ChipTable, PublishedRun
from harness.numbers import fmt
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
    return Cell("" if v is None else f"{v:.1f} s", "" if v is None else repr(v))


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
        Column("vs next", True, f"paired permutation test on per-chip statistics; ≈: p ≥ {ALPHA}"),
    ]
    cells, records, classes = [], [], []
    for row in rows:
        s = row.seeds
        seeds_text = (
            f"{fmt(s.mean)} ± {fmt(s.std, 2)} (n={s.n})" if s.n > 1 else f"1 (s{row.runs[0].seed})"
        )
        v = row.versus_next
        if v is None:
            vs = Cell(row.versus_next_note and "n/c", "", title=row.versus_next_note or None)
        else:
            mark = "≈" if row.similar_to_next else ">"
            vs = Cell(
                f"{mark} p={v.p_value:.3g}",
                repr(v.p_value),
                title=f"difference {fmt(v.difference)} [{fmt(v.low)}, {fmt(v.high)}]",
                cls="similar" if row.similar_to_next else "",
            )
        cells.append(
            (
                Cell(str(row.rank), str(row.rank)),
                Cell(
                    row.entry,
                    row.entry,
                    href=link(row.entry, row.variant),
                    badge="baseline" if row.baseline else None,
                    title=row.team,
                ),
                Cell(row.variant, row.variant),
                Cell(
                    f"{fmt(row.primary)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}]",
                    num(row.primary).sort,
                    cls="primary",
                ),
                *(num(row.metrics.get(m)) for m in board.secondary_metrics),
                Cell(seeds_text, num(s.mean).sort),
                seconds(row.mean_metric("train_s")),
                seconds(row.mean_metric("predict_s")),
                _optional(row.mean_metric("gpu_seconds")),
                Cell(short_digest(row.image_digest), row.image_digest, title=row.image_digest),
                vs,
            )
        )
        classes.append("similar-next" if row.similar_to_next else "")
        records.append(
            {
                "rank": row.rank,
                "entry": row.entry,
                "variant": row.variant,
                "team": row.team,
                "baseline": row.baseline,
                p: row.primary,
                f"{p}_ci_low": row.ci_low,
                f"{p}_ci_high": row.ci_high,
                **{m: row.metrics.get(m) for m in board.secondary_metrics},
                "seeds": [r.seed for r in row.runs],
                "seed_mean": s.mean,
                "seed_sd": s.std,
                "train_s": row.mean_metric("train_s"),
                "predict_s": row.mean_metric("predict_s"),
                "gpu_seconds": row.mean_metric("gpu_seconds"),
                "image_digest": row.image_digest,
                "vs_next_p_value": None if v is None else v.p_value,
                "vs_next_difference": None if v is None else v.difference,
                "similar_to_next": row.similar_to_next,
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
        Column(f"Change vs {ref}", True, f"difference to {ref}, paired test p-value"),
    ]
    cells, records = [], []
    for a in matrix.rows:
        r, v = a.row, a.versus_reference
        change = Cell("—", "")
        if v is not None:
            rel = v.difference / v.b * 100 if v.b else math.nan
            change = Cell(
                f"{v.difference:+.4g} ({rel:+.3g}%) p={v.p_value:.3g}", repr(v.difference)
            )
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
                "change_vs_reference": None if v is None else v.difference,
                "p_value_vs_reference": None if v is None else v.p_value,
            }
        )
    return Table(f"ablation-{slug(entry)}", tuple(cols), tuple(cells), tuple(records))


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
    cols = [Column(table.header[0])] + [Column(h, True) for h in table.header[1:]]
    cells, records = [], []
    for row in table.rows:
        values: list[float] = []
        for x in row[1:]:
            try:
                values.append(float(x))
            except ValueError:
                values.append(math.nan)
        cells.append((Cell(row[0], row[0]), *(num(v) for v in values)))
        records.append({"id": row[0], **dict(zip(table.header[1:], values, strict=False))})
    return Table(name, tuple(cols), tuple(cells), tuple(records))


def run_metrics_table(run: PublishedRun) -> Table:
    cols = (Column("Metric"), Column("Value", True))
    items = sorted((k, v) for k, v in run.metrics.items() if "/" not in k)
    cells = tuple((Cell(k, k), num(v)) for k, v in items)
    return Table(
        f"metrics-{slug(run.run_id)}",
        cols,
        cells,
        tuple({"metric": k, "value": v} for k, v in items),
    )
