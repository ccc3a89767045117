"""Which published runs were rescored (``sarbench rescore``), and what they scored before.

A record carries ``scorer`` (the scorer version that made its score) and ``rescored``
(None, or ``{"at", "from", "previous"}``: when, the version before, the metrics before).
The site reads them as the publisher wrote them, the tags ``sarbench.scorer`` and
``sarbench.rescored`` (a JSON object; :attr:`PublishedRun.tags` holds every
``sarbench.*`` fact, tag or param), else from the run's downloaded record (its
``record.json`` and any ``rescores/`` files, read as :class:`harness.record.RunFolder`
reads them). Records made before these fields existed have neither: never rescored.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.leaderboard.board import Board
from harness.leaderboard.source import PublishedRun
from harness.numbers import fmt
from harness.record import RunRecord


@dataclass(frozen=True)
class Rescore:
    """A run's rescore: when (``at``, ISO time), the scorer version now and before, and
    the metrics before."""

    at: str
    scorer: str
    previous_scorer: str
    previous: dict[str, float]

    @property
    def day(self) -> str:
        """The date of ``at`` (``2026-11-30``), or ``at`` as written."""
        return self.at[:10] if len(self.at) >= 10 else self.at or "unknown date"

    def words(self) -> str:
        """``Rescored 2026-11-30 with scorer 2 (was 1)``."""
        was = self.previous_scorer or "unversioned"
        return f"Rescored {self.day} with scorer {self.scorer or '?'} (was {was})"

    def before(self, metric: str) -> str:
        """The metric before the rescore, formatted; ``n/a`` when it was not recorded."""
        return fmt(self.previous.get(metric))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def parse(doc: Any, scorer: str) -> Rescore | None:
    """A record's ``rescored`` mapping (and its ``scorer`` now) as a :class:`Rescore`;
    None when it is None or not a mapping."""
    if not isinstance(doc, Mapping):
        return None
    previous = doc.get("previous")
    values = (
        {str(k): _number(v) for k, v in previous.items()} if isinstance(previous, Mapping) else {}
    )
    return Rescore(str(doc.get("at") or ""), scorer, str(doc.get("from") or ""), values)


def rescore_of(run: PublishedRun, record: RunRecord | None) -> Rescore | None:
    """The run's rescore from its tags, else from its downloaded record; None when it was
    never rescored (or neither says)."""
    tag = run.tag("rescored")
    if tag:
        try:
            return parse(json.loads(tag), run.tag("scorer"))
        except ValueError:
            return None
    if record is None:
        return None
    return parse(record.rescored, record.scorer)


def rescores(
    runs: Sequence[PublishedRun], records: Mapping[str, RunRecord | None]
) -> dict[str, Rescore]:
    """The rescored runs among ``runs`` by MLflow run ID (``records``: their downloaded
    records, by MLflow run ID)."""
    out = {}
    for run in runs:
        found = rescore_of(run, records.get(run.mlflow_id))
        if found is not None:
            out[run.mlflow_id] = found
    return out


def board_lines(board: Board, found: Mapping[str, Rescore]) -> list[str]:
    """One line per rescore of the board's runs: ``Rescored 2026-11-30 with scorer 2
    (was 1): unet / default, threshold / otsu`` (the entries whose runs it changed)."""
    by_words: dict[str, set[str]] = defaultdict(set)
    for run in board.runs:
        if run.mlflow_id in found:
            by_words[found[run.mlflow_id].words()].add(f"{run.entry} / {run.variant}")
    return [f"{words}: {', '.join(sorted(who))}" for words, who in sorted(by_words.items())]
