"""What each page of the site shows, as plain values for the templates.

Reads only what the builder downloaded from MLflow (a run's artifacts, staged outside the
site); every path handed to a template is relative to the page that shows it. Artifacts
are untrusted (a container wrote them): only inert files are copied into the site
(:func:`serve_run_files`), the rest are named on the entry page; every string from them
reaches a page escaped.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from harness.leaderboard.board import Board, Row, short_digest
from harness.leaderboard.plots import Point, curve_plot, score_plot
from harness.leaderboard.rescores import Rescore
from harness.leaderboard.source import ChipTable, PublishedRun
from harness.leaderboard.tables import (
    Cell,
    Column,
    Table,
    ablation_table,
    chips_table,
    failed_table,
    num,
    pairwise_table,
    ranking,
    run_metrics_table,
    slug,
)
from harness.numbers import fmt, size
from harness.publish.content import TIME_PREFIX
from harness.publish.files import loss_curves, not_servable, read_head, regular_files
from harness.record import RecordError, RunFolder, RunRecord

LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 256 * 1024
PLOT_POINTS = 500
"""A loss curve is drawn with at most this many points (the CSV holds them all)."""
MAX_CONFIG_BYTES = 1024 * 1024


def board_dir(board: Board) -> str:
    """``<task>/<dataset>``, or ``<task>/<dataset>--<key>`` where the dataset has boards
    under several comparability keys."""
    suffix = f"--{slug(board.suffix)}" if board.suffix else ""
    return f"{slug(board.task)}/{slug(board.dataset)}{suffix}"


def entry_dir(board: Board, entry: str, variant: str) -> str:
    return f"{board_dir(board)}/{slug(entry)}/{slug(variant)}"


def run_dir(board: Board, run: PublishedRun) -> str:
    return f"{entry_dir(board, run.entry, run.variant)}/{slug(run.run_id)}"


def when(millis: int | None) -> str:
    if not millis:
        return "unknown"
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _read_json(path: Path, limit: int = MAX_CONFIG_BYTES) -> Any:
    try:
        data, size = read_head(path, limit)
        return None if size > limit else json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class Served:
    """What of a run's downloaded artifacts went into the site (``files``, relative paths)
    and what did not (``withheld``: relative path and why)."""

    files: frozenset[str]
    withheld: tuple[tuple[str, str], ...]


def serve_run_files(src: Path, dest: Path) -> Served:
    """Copy the inert files of a run's downloaded artifacts ``src`` into the site folder
    ``dest`` (see :func:`harness.publish.files.not_servable`); list the others."""
    files: set[str] = set()
    withheld: list[tuple[str, str]] = []
    for path in regular_files(src):
        rel = path.relative_to(src).as_posix()
        why = not_servable(path, rel)
        if why is not None:
            withheld.append((rel, why))
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        files.add(rel)
    return Served(frozenset(files), tuple(withheld))


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
    pairwise: Table
    rescored: tuple[str, ...] = ()
    """One line per ``sarbench rescore`` that changed runs of this board."""

    @property
    def href(self) -> str:
        """This page, relative to the site root."""
        return f"{board_dir(self.board)}/index.html"

    @property
    def tables(self) -> list[Table]:
        return [
            self.ranking,
            self.unofficial,
            self.failed,
            self.pairwise,
            *(t for _, t in self.ablations),
        ]


def _plot(board: Board, rows: Sequence[Any]) -> Markup:
    pairs = Counter((r.name, r.variant) for r in rows)

    def label(r: Any) -> str:
        text = f"{r.name} / {r.variant}"
        return (
            text if pairs[(r.name, r.variant)] == 1 else f"{text} @{short_digest(r.image_digest)}"
        )

    points = [Point(label(r), r.primary, r.ci_low, r.ci_high, r.baseline) for r in rows]
    return score_plot(points, board.primary_metric, board.direction)


def board_page(
    board: Board,
    compare: Callable[[Row, Row], str | None] | None = None,
    rescored: Sequence[str] = (),
) -> BoardPage:
    """A board's page: ``compare(a, b)`` links a pair's compare page (relative to the
    board's folder); ``rescored`` says which runs were rescored."""

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
            (entry, ablation_table(board, entry, matrix, link))
            for entry, matrix in sorted(board.ablations.items())
        ),
        entries=entries,
        pairwise=pairwise_table(board, compare),
        rescored=tuple(rescored),
    )


def boards_table(board_pages: Sequence[BoardPage]) -> Table:
    """The index's table of every task and dataset."""
    cols = [
        Column("Task"),
        Column("Dataset"),
        Column("Conditions", False, "test, profile, dataset digest and conditions"),
        Column("Ranked", True),
        Column("Leader"),
        Column("Score", True, "the leader's primary metric and its 95% interval"),
        Column("Ahead?", False, "is the leader significantly ahead of every other row?"),
        Column("Unisolated", True),
        Column("Failed", True),
        Column("Last update"),
    ]
    cells, records = [], []
    for bp in board_pages:
        b = bp.board
        top = b.official[0] if b.official else None
        leader = f"{top.name} / {top.variant}" if top else "none yet"
        score = num(top.primary if top else None)
        ties = b.tied_with_leader
        if top is None or len(b.official) == 1:
            ahead = "only entry" if top else ""
        elif ties:
            ahead = f"tied with {ties}"
        else:
            ahead = "ahead of all"
        interval = f" [{fmt(top.ci_low)}, {fmt(top.ci_high)}]" if top else ""
        counts = (len(b.official), len(b.unofficial), len(b.failed))
        cells.append(
            (
                Cell(b.task, b.task),
                Cell(b.dataset, b.dataset, href=bp.href),
                Cell(b.comparability.label(), b.comparability.label()),
                Cell(str(counts[0]), str(counts[0])),
                Cell(leader, leader),
                Cell(f"{b.primary_metric} {score.text}{interval}" if top else "", score.sort),
                Cell(ahead, ahead, title="after Holm's correction; see the board's pairwise table"),
                Cell(str(counts[1]), str(counts[1])),
                Cell(str(counts[2]), str(counts[2])),
                Cell(when(b.last_update), str(b.last_update or "")),
            )
        )
        records.append(
            {
                "task": b.task,
                "dataset": b.dataset,
                "profile": b.comparability.profile,
                "dataset_digest": b.comparability.dataset_digest,
                "conditions": b.comparability.conditions,
                "test_kind": b.comparability.test_kind,
                "primary_metric": b.primary_metric,
                "ranked": counts[0],
                "leader": leader if top else None,
                "leader_score": top.primary if top else None,
                "leader_ci_low": top.ci_low if top else None,
                "leader_ci_high": top.ci_high if top else None,
                "leader_tied_with": ties if top else None,
                "unisolated": counts[1],
                "failed": counts[2],
                "last_update": when(b.last_update),
            }
        )
    return Table("boards", tuple(cols), tuple(cells), tuple(records))


@dataclass(frozen=True)
class Quicklook:
    """One quicklook on an entry page: its link, the chip, and the chip's primary metric
    (formatted; ``n/a`` when undefined or not in the per-chip scores)."""

    href: str
    chip: str
    score: str


@dataclass(frozen=True)
class RunSection:
    """One run on an entry page; ``folder`` is the run's artifacts' relative path in the
    site. ``logs`` are (link or ``None`` when not served, name, tail, cut); ``configs`` are
    (link, name, pretty JSON); ``artifacts`` are the served files of ``artifacts/`` (link,
    name); ``files`` every served file of the run (link, path, size); ``withheld`` names
    every file not served, with the reason; ``rescore`` says what the run scored before a
    ``sarbench rescore`` (None: never rescored)."""

    run: PublishedRun
    folder: str
    metrics: Table | None
    chips: Table | None
    quicklooks: tuple[Quicklook, ...]
    loss_plots: tuple[Markup, ...]
    logs: tuple[tuple[str | None, str, str, bool], ...]
    configs: tuple[tuple[str, str, str], ...]
    params: tuple[tuple[str, str], ...]
    artifacts: tuple[tuple[str, str], ...]
    withheld: tuple[tuple[str, str], ...]
    record_served: bool
    files: tuple[tuple[str, str, str], ...] = ()
    rescore: Rescore | None = None


def _tail(path: Path) -> tuple[str, bool]:
    """The last lines of a (possibly large) log file and whether lines were cut."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - LOG_TAIL_BYTES))
        data = f.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > LOG_TAIL_BYTES:
        lines = lines[1:]  # the first may be cut in the middle
    return "\n".join(lines[-LOG_TAIL_LINES:]), size > LOG_TAIL_BYTES or len(lines) > LOG_TAIL_LINES


def _logs(staged: Path, rel: str, served: Served) -> tuple[tuple[str | None, str, str, bool], ...]:
    out = []
    for path in regular_files(staged / "logs"):
        name = path.relative_to(staged).as_posix()
        try:
            tail, cut = _tail(path)
        except OSError:
            continue
        out.append((f"{rel}/{name}" if name in served.files else None, path.name, tail, cut))
    return tuple(out)


def _loss_plots(staged: Path) -> tuple[Markup, ...]:
    curves = loss_curves(staged, max_points=PLOT_POINTS)
    by_file: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for name, points in curves.series().items():
        if name.startswith(f"{TIME_PREFIX}/"):  # time columns: noted in the plot, not drawn
            name = name.removeprefix(f"{TIME_PREFIX}/")
        stem, column = name.split("/", 1)
        by_file.setdefault(stem, {})[column] = [(float(s), v) for s, v in points]
    return tuple(
        curve_plot(series, f"{stem}.csv", "epoch (or step)") for stem, series in by_file.items()
    )


def chip_scores(chips: ChipTable | None, metric: str) -> dict[str, str]:
    """Each chip's ``metric`` as published in the run's per-chip scores, formatted."""
    if chips is None or metric not in chips.header:
        return {}
    j = chips.header.index(metric)
    out = {}
    for row in chips.rows:
        try:
            out[row[0]] = fmt(float(row[j]))
        except (ValueError, IndexError):
            out[row[0]] = fmt(None)
    return out


def _quicklooks(
    run: PublishedRun, rel: str, served: Served, chips: ChipTable | None
) -> tuple[Quicklook, ...]:
    """The run's served quicklooks with their chip's primary metric."""
    scores = chip_scores(chips, run.primary_metric)
    looks = sorted(f for f in served.files if f.startswith("quicklooks/") and f.endswith(".png"))
    out = []
    for f in looks:
        chip = f.removeprefix("quicklooks/").removesuffix(".png")
        out.append(Quicklook(f"{rel}/{f}", chip, scores.get(chip, fmt(None))))
    return tuple(out)


def _files(staged: Path, rel: str, served: Served) -> tuple[tuple[str, str, str], ...]:
    """Every served file of a run: (link, path, size)."""
    out = []
    for f in sorted(served.files):
        try:
            n = (staged / f).stat().st_size
        except OSError:
            n = None
        out.append((f"{rel}/{f}", f, size(n)))
    return tuple(out)


def run_section(
    run: PublishedRun,
    staged: Path,
    served: Served,
    chips: ChipTable | None,
    rescore: Rescore | None = None,
) -> RunSection:
    """The section of ``run`` on its entry page, from its downloaded artifacts ``staged``
    and what of them was served."""
    rel = slug(run.run_id)
    configs = []
    for f in sorted(served.files):
        if f.startswith("config/") and f.endswith(".json") and f != "config/options.json":
            doc = _read_json(staged / f)
            if doc is not None:
                text = json.dumps(doc, indent=2, sort_keys=True, default=str)
                configs.append((f"{rel}/{f}", f.split("/", 1)[1], text))
    artifacts = tuple(
        (f"{rel}/{f}", f.split("/", 1)[1])
        for f in sorted(served.files)
        if f.startswith("artifacts/")
    )
    return RunSection(
        run=run,
        folder=rel,
        metrics=run_metrics_table(run) if run.metrics else None,
        chips=None if chips is None else chips_table(f"chips-{slug(run.run_id)}", chips),
        quicklooks=_quicklooks(run, rel, served, chips),
        loss_plots=_loss_plots(staged),
        logs=_logs(staged, rel, served),
        configs=tuple(configs),
        params=tuple(sorted(run.params.items())),
        artifacts=artifacts,
        withheld=served.withheld,
        record_served="record.json" in served.files,
        files=_files(staged, rel, served),
        rescore=rescore,
    )


def read_record(folder: Path) -> RunRecord | None:
    """A published run's downloaded record (``record.json``, with any ``rescores/``), or
    None where it is missing or does not read."""
    try:
        return RunFolder(folder).read()
    except RecordError:
        return None


def description(run: PublishedRun, record: RunRecord | None) -> str:
    """The entry's description: the record's, else the MLflow note (clipped there)."""
    if record is not None and record.entry.description:
        return record.entry.description
    return run.tags.get("mlflow.note.content", "")
