"""Building the static leaderboard site from MLflow.

    >>> build_site(connect(uri), Path("site"))          # doctest: +SKIP

The site works from ``file://`` with no network: pages, CSS and the sorting script are
local files, plots are inline SVG. Each run's artifacts are downloaded into a staging
folder beside the site, never into it: only inert files (CSV, JSON, PNG, plain text,
checked by content) are copied into the site; HTML, SVG, scripts and anything else a
container wrote are only named, escaped, on the entry page. Templates and assets live in the repository's
``leaderboard/`` folder. The site is built in a sibling folder and moved into place at the
end, so a failed build leaves the previous site as it was. The output folder is only ever
replaced when it is empty or holds a site built here (the marker file ``.sarbench-site``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import SarbenchError
from harness.leaderboard import claims, compare, pages, rescores
from harness.leaderboard.board import Board, Row, Versus, build_boards
from harness.leaderboard.conditions import conditions
from harness.leaderboard.source import (
    ChipTable,
    PublishedRun,
    download,
    published_runs,
    read_chips,
)
from harness.leaderboard.tables import Table
from harness.numbers import fmt, signed
from harness.record import RunRecord
from harness.settings import REPO_ROOT

if TYPE_CHECKING:
    from jinja2 import Environment
    from mlflow.tracking import MlflowClient

TEMPLATES = REPO_ROOT / "leaderboard"
MARKER = ".sarbench-site"


class SiteError(SarbenchError):
    """The site cannot be written where it was asked to go, or its templates are missing."""


@dataclass(frozen=True)
class SiteSummary:
    out: Path
    boards: int
    runs: int
    pages: int


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SiteError(
            f"{out}: folder is not empty and holds no site built by sarbench ({MARKER} is "
            "missing); it is never replaced: choose an empty or new --out"
        )


def _environment(templates: Path) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    if not (templates / "templates" / "base.html").is_file():
        raise SiteError(f"{templates}: no templates/base.html; pass the leaderboard/ folder")
    env = Environment(
        loader=FileSystemLoader(templates / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["when"] = pages.when
    env.globals["fmt"] = fmt
    env.globals["signed"] = signed
    return env


class _Writer:
    def __init__(self, env: Environment, root: Path) -> None:
        self.env, self.root, self.pages, self.boards = env, root, 0, 0

    def page(self, rel: str, template: str, **context: Any) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        depth = rel.count("/")
        html = self.env.get_template(template).render(root="../" * depth, **context)
        path.write_text(html, encoding="utf-8")
        self.pages += 1

    def tables(self, folder: str, tables: list[Table]) -> None:
        for t in tables:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            (self.root / folder / f"{t.name}.csv").write_text(t.csv(), encoding="utf-8")
            (self.root / folder / f"{t.name}.json").write_text(t.json(), encoding="utf-8")


def build_site(
    client: MlflowClient,
    out: Path,
    *,
    templates: Path = TEMPLATES,
    n_resamples: int = 10_000,
) -> SiteSummary:
    """Read every published run from MLflow and write the site to ``out``."""
    out = out.resolve()
    _check_out(out)
    env = _environment(templates)
    runs = published_runs(client)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.building"
    if work.exists():
        shutil.rmtree(work)
    done = False
    try:
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.staging-", dir=out.parent) as tmp:
            writer = _write(env, work, Path(tmp), client, runs, n_resamples)
            boards = writer.boards
        shutil.copytree(templates / "assets", work / "assets")
        (work / MARKER).write_text("built by sarbench leaderboard build\n")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
        done = True
    finally:
        if not done and work.exists():
            shutil.rmtree(work)
    return SiteSummary(out, boards, len(runs), writer.pages)


def _write(
    env: Environment,
    work: Path,
    staging: Path,
    client: MlflowClient,
    runs: list[PublishedRun],
    n_resamples: int,
) -> _Writer:
    """Download every run into ``staging``, serve its inert files into ``work``, and write
    every page and table there."""
    chips: dict[str, ChipTable] = {}
    staged: dict[str, Path] = {}
    served: dict[str, pages.Served] = {}
    for run in runs:
        raw = download(client, run, staging / run.mlflow_id)
        staged[run.mlflow_id] = raw
        if run.ok:
            chips[run.mlflow_id] = read_chips(raw, run.task)
    records = {m: pages.read_record(folder) for m, folder in staged.items()}
    found = rescores.rescores(runs, records)
    boards = build_boards(runs, chips, n_resamples)
    for board in boards:
        for run in board.runs:
            dest = work / pages.run_dir(board, run)
            served[run.mlflow_id] = pages.serve_run_files(staged[run.mlflow_id], dest)
    writer = _Writer(env, work)
    board_pages = []
    for board in boards:
        folder = pages.board_dir(board)
        names = compare.row_names(board)
        pairs = compare.pairs(board)
        hrefs = {(id(a), id(b)): compare.page_name(names, a, b) for a, b, _ in pairs}
        bp = pages.board_page(
            board,
            lambda a, b, hrefs=hrefs: hrefs.get((id(a), id(b))),
            rescores.board_lines(board, found),
        )
        board_pages.append(bp)
        writer.page(f"{folder}/index.html", "board.html", page=bp)
        writer.tables(folder, bp.tables)
        _entry_pages(writer, bp, staged, served, chips, records, found, _versus(pairs, hrefs))
        _compare_pages(writer, board, pairs, hrefs, names, served)
    last = max((b.last_update or 0 for b in boards), default=0) or None
    boards_table = pages.boards_table(board_pages)
    writer.tables("", [boards_table])
    claims_page = claims.claims_page(boards, n_resamples)
    writer.page("claims.html", "claims.html", page=claims_page, demo_note=claims.DEMO_NOTE)
    writer.tables("", [claims_page.table])
    writer.page(
        "index.html",
        "index.html",
        boards=boards_table,
        conditions=conditions(runs, records),
        last_update=pages.when(last),
        n_runs=len(runs),
    )
    writer.boards = len(boards)
    return writer


def _entry_pages(
    writer: _Writer,
    bp: pages.BoardPage,
    staged: Mapping[str, Path],
    served: Mapping[str, pages.Served],
    chips: Mapping[str, ChipTable],
    records: Mapping[str, RunRecord | None],
    found: Mapping[str, rescores.Rescore],
    versus: Mapping[tuple[str, str], list[tuple[str, str]]],
) -> None:
    """One page per (entry, variant) of the board: a section per run, and links to its
    compare pages (``versus``: the other row's label and the page, by entry and variant)."""
    for entry, variant, _ in bp.entries:
        runs = [r for r in bp.board.runs if (r.entry, r.variant) == (entry, variant)]
        sections = [
            pages.run_section(
                r,
                staged[r.mlflow_id],
                served[r.mlflow_id],
                chips.get(r.mlflow_id),
                found.get(r.mlflow_id),
            )
            for r in runs
        ]
        efolder = pages.entry_dir(bp.board, entry, variant)
        writer.page(
            f"{efolder}/index.html",
            "entry.html",
            board=bp.board,
            entry=entry,
            variant=variant,
            description=pages.description(runs[0], records.get(runs[0].mlflow_id)),
            sections=sections,
            versus=[(label, f"../../{page}") for label, page in versus.get((entry, variant), [])],
        )
        writer.tables(efolder, [t for s in sections for t in (s.chips, s.metrics) if t])


Hrefs = Mapping[tuple[int, int], str]
"""Each compare page by its pair of rows (``id`` of A and of B), relative to the board's
folder."""


def _versus(
    pairs: list[tuple[Row, Row, Versus]], hrefs: Hrefs
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(entry, variant) -> each compare page it is on: the other row's label and the page
    (relative to the board's folder), in the board's order."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for a, b, _ in pairs:
        page = hrefs[(id(a), id(b))]
        out.setdefault((a.entry, a.variant), []).append((compare.label(b), page))
        out.setdefault((b.entry, b.variant), []).append((compare.label(a), page))
    return out


def _compare_pages(
    writer: _Writer,
    board: Board,
    pairs: list[tuple[Row, Row, Versus]],
    hrefs: Hrefs,
    names: Mapping[int, str],
    served: Mapping[str, pages.Served],
) -> None:
    """The board's compare pages (:mod:`harness.leaderboard.compare`)."""
    folder = pages.board_dir(board)
    panels = compare.Panels(writer.root, folder)

    def looks(run: PublishedRun, chip: str) -> Path | None:
        rel = f"quicklooks/{chip}.png"
        if rel not in served[run.mlflow_id].files:
            return None
        return writer.root / pages.run_dir(board, run) / rel

    for a, b, v in pairs:
        rel = f"{folder}/{hrefs[(id(a), id(b))]}"
        page = compare.compare_page(board, a, b, v, rel, names, looks, panels)
        writer.page(rel, "compare.html", page=page, summary=compare.summary(page))
        writer.tables(f"{folder}/compare", [page.table])
