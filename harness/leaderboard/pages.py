"""What each page of the site shows, as plain values for the templates.

Reads only what the builder downloaded from MLflow into the site folder (a run's
artifacts); every path handed to a template is relative to the page that shows it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from harness.leaderboard.board import Board
from harness.leaderboard.source import ChipTable, PublishedRun
from harness.leaderboard.svg import Point, line_plot, score_plot
from harness.leaderboard.tables import (
    Cell,
    Column,
    Table,
    ablation_table,
    chips_table,
    failed_table,
    num,
    ranking,
    run_metrics_table,
)
from harness.publish.content import loss_points

LOG_TAIL_LINES = 200


def slug(text: str) -> str:
    """A safe file or folder name for ``text`` (never empty, never ``.`` or ``..``)."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip(".") or "_"
    return s


def board_dir(task: str, dataset: str) -> str:
    return f"{slug(task)}/{slug(dataset)}"


def entry_dir(task: str, dataset: str, entry: str, variant: str) -> str:
    return f"{board_dir(task, dataset)}/{slug(entry)}/{slug(variant)}"


def run_dir(run: PublishedRun) -> str:
    return f"{entry_dir(run.task, run.dataset, run.entry, run.variant)}/{slug(run.run_id)}"


def when(millis: int | None) -> str:
    if not millis:
        return "unknown"
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


@dataclass(frozen=True)
class BoardPage:
    board: Board
    ranking: Table
    plot: Markup
    unofficial: Table
    unofficial_plot: Markup
    failed: Table
    ablations: tuple[tuple[str, Table], ...]
    entries: tuple[tuple[str, str, str], ...]

    @property
    def href(self) -> str:
        """This page, relative to the site root."""
        return f"{board_dir(self.board.task, self.board.dataset)}/index.html"

    @property
    def tables(self) -> list[Table]:
        return [self.ranking, self.unofficial, self.failed, *(t for _, t in self.ablations)]


def _plot(board: Board, rows: Sequence[Any]) -> Markup:
    points = [
        Point(f"{r.entry} / {r.variant}", r.primary, r.ci_low, r.ci_high, r.baseline) for r in rows
    ]
    return score_plot(points, board.primary_metric, board.direction)


def board_page(board: Board) -> BoardPage:
    def link(entry: str, variant: str) -> str:
        return f"{slug(entry)}/{slug(variant)}/index.html"

    pairs = sorted({(r.entry, r.variant) for r in board.runs})
    entries = tuple((e, v, link(e, v)) for e, v in pairs)
    return BoardPage(
        board=board,
        ranking=ranking(board, board.official, "ranking", link),
        plot=_plot(board, board.official),
        unofficial=ranking(board, board.unofficial, "unisolated", link),
        unofficial_plot=_plot(board, board.unofficial),
        failed=failed_table(board.failed, link),
        ablations=tuple(
            (entry, ablation_table(board, entry, rows, link))
            for entry, rows in sorted(board.ablations.items())
        ),
        entries=entries,
    )


def boards_table(board_pages: Sequence[BoardPage]) -> Table:
    """The index's table of every task and dataset."""
    cols = [
        Column("Task"),
        Column("Dataset"),
        Column("Ranked", True),
        Column("Leader"),
        Column("Score", True, "the leader's primary metric"),
        Column("Unisolated", True),
        Column("Failed", True),
        Column("Last update"),
    ]
    cells, records = [], []
    for bp in board_pages:
        b = bp.board
        top = b.official[0] if b.official else None
        leader = f"{top.entry} / {top.variant}" if top else "none yet"
        score = num(top.primary if top else None)
        counts = (len(b.official), len(b.unofficial), len(b.failed))
        cells.append(
            (
                Cell(b.task, b.task),
                Cell(b.dataset, b.dataset, href=bp.href),
                Cell(str(counts[0]), str(counts[0])),
                Cell(leader, leader),
                Cell(f"{b.primary_metric} {score.text}" if top else "", score.sort),
                Cell(str(counts[1]), str(counts[1])),
                Cell(str(counts[2]), str(counts[2])),
                Cell(when(b.last_update), str(b.last_update or "")),
            )
        )
        records.append(
            {
                "task": b.task,
                "dataset": b.dataset,
                "primary_metric": b.primary_metric,
                "ranked": counts[0],
                "leader": leader if top else None,
                "leader_score": top.primary if top else None,
                "unisolated": counts[1],
                "failed": counts[2],
                "last_update": when(b.last_update),
            }
        )
    return Table("boards", tuple(cols), tuple(cells), tuple(records))


@dataclass(frozen=True)
class RunSection:
    """One run on an entry page; ``folder`` is the downloaded artifacts' relative path."""

    run: PublishedRun
    folder: str
    metrics: Table | None
    chips: Table | None
    quicklooks: tuple[str, ...]
    loss_plots: tuple[Markup, ...]
    logs: tuple[tuple[str, str, bool], ...]
    config: str
    params: tuple[tuple[str, str], ...]


def _logs(folder: Path, rel: str) -> tuple[tuple[str, str, bool], ...]:
    out = []
    for path in sorted((folder / "logs").glob("*")):
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        out.append(
            (
                f"{rel}/logs/{path.name}",
                "\n".join(lines[-LOG_TAIL_LINES:]),
                len(lines) > LOG_TAIL_LINES,
            )
        )
    return tuple(out)


def _loss_plots(folder: Path) -> tuple[Markup, ...]:
    plots = []
    for path in sorted((folder / "artifacts").glob("loss*.csv")):
        series: dict[str, list[tuple[float, float]]] = defaultdict(list)
        text = path.read_text(encoding="utf-8", errors="replace")
        for name, step, value in loss_points(path.stem, text):
            series[name.split("/", 1)[1]].append((float(step), value))
        if series:
            plots.append(line_plot(dict(series), f"{path.name}: loss by step"))
    return tuple(plots)


def run_section(run: PublishedRun, site: Path, chips: ChipTable | None) -> RunSection:
    rel = slug(run.run_id)
    folder = site / run_dir(run)
    config = _read_json(folder / "config" / "run.json")
    looks = sorted((folder / "quicklooks").glob("*.png"))
    return RunSection(
        run=run,
        folder=rel,
        metrics=run_metrics_table(run) if run.metrics else None,
        chips=None if chips is None else chips_table(f"chips-{slug(run.run_id)}", chips),
        quicklooks=tuple(f"{rel}/quicklooks/{p.name}" for p in looks),
        loss_plots=_loss_plots(folder),
        logs=_logs(folder, rel),
        config="" if config is None else json.dumps(config, indent=2, sort_keys=True),
        params=tuple(sorted(run.params.items())),
    )


@dataclass(frozen=True)
class Conditions:
    """Runs that share a profile and a conditions fingerprint."""

    profile: str
    fingerprint: str
    spec: tuple[tuple[str, str], ...]
    machines: tuple[str, ...]
    runs: int
    mismatched: tuple[str, ...]


def conditions(runs: Sequence[PublishedRun], site: Path) -> list[Conditions]:
    """The conditions profiles the runs used, with the machines seen, from tags and each
    run's downloaded record.json (for the profile as data)."""
    groups: dict[tuple[str, str], list[PublishedRun]] = defaultdict(list)
    for r in runs:
        groups[(r.tag("profile"), r.tag("conditions"))].append(r)
    out = []
    for (profile, fingerprint), group in sorted(groups.items()):
        record = _read_json(site / run_dir(group[0]) / "record.json") or {}
        spec = record.get("profile") if isinstance(record, dict) else None
        items = sorted(spec.items()) if isinstance(spec, dict) else []
        machines = sorted(
            {
                f"{r.tag('cpu_model') or 'unknown CPU'}; GPU: {r.tag('gpus') or 'none'}"
                for r in group
            }
        )
        mismatched = [r.run_id for r in group if r.tag("mismatches", "[]") not in ("[]", "")]
        out.append(
            Conditions(
                profile=profile or "(none)",
                fingerprint=fingerprint,
                spec=tuple(
                    (str(k), json.dumps(v) if not isinstance(v, str) else v) for k, v in items
                ),
                machines=tuple(machines),
                runs=len(group),
                mismatched=tuple(mismatched),
            )
        )
    return out
