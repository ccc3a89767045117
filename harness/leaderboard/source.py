"""Reading published runs back from MLflow: the leaderboard's only source.

Runs are those of experiments named ``sarbench/...`` whose tag ``sarbench.published`` is
``complete`` (a publish that was cut off is not shown). Params, metrics and tags come from
the tracking store; per-chip scores, quicklooks, logs and configs from the run's artifacts,
downloaded from MLflow.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import DataFileError
from harness.publish.content import CHIPS_CSV, COMPLETE, PUBLISHED, TAG
from harness.publish.errors import TrackingError
from harness.publish.layout import read_back
from harness.publish.locking import is_locked_error
from harness.publish.mlflow_store import EXPERIMENT_PREFIX
from harness.scoring.metrics import STATS_TYPES, ChipStats

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

PAGE = 1000


def _metric(value: float) -> float:
    """MLflow stores infinities as the largest float; turn them back."""
    if value >= sys.float_info.max:
        return math.inf
    if value <= -sys.float_info.max:
        return -math.inf
    return float(value)


@dataclass(frozen=True)
class PublishedRun:
    """One published record as MLflow holds it."""

    mlflow_id: str
    run_id: str
    task: str
    dataset: str
    entry: str
    variant: str
    seed: int
    status: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    end_time: int | None

    def tag(self, name: str, default: str = "") -> str:
        return self.tags.get(TAG + name, default)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def official(self) -> bool:
        """Isolated and not the local backend: only these are ranked officially."""
        return self.tag("isolated") == "true" and self.tag("backend") != "local"

    @property
    def baseline(self) -> bool:
        return self.tag("baseline") == "true"

    @property
    def primary_metric(self) -> str:
        return self.tag("primary_metric")

    @property
    def comparability(self) -> Comparability:
        """What must be equal for runs to share a board: profile, conditions, dataset
        digest (hence the test). The pretrained checkpoint, the rest of a run's
        comparability key, tells rows apart instead (:attr:`checkpoint`)."""
        return Comparability(
            profile=self.tag("profile"),
            conditions=self.tag("conditions"),
            dataset_digest=self.tag("dataset_digest"),
            test_kind=self.tag("test_kind", "public"),
            split=self.tag("split", "test") or "test",
        )

    @property
    def checkpoint(self) -> str:
        """The digest of the pretrained weights the run trained from, or ``none``."""
        return self.tag("checkpoint", "none")

    @property
    def pretrained(self) -> bool | None:
        """Whether the model started from pretrained weights (None: it uses none, or the
        run was published before the harness said)."""
        return {"true": True, "false": False}.get(self.tag("pretrained"))


@dataclass(frozen=True, order=True)
class Comparability:
    """What the runs of one board share (:class:`harness.record.Comparability` less the
    checkpoint: runs of different checkpoints are different rows of one board, so that a
    fine-tuned model and one trained from scratch can be compared, never pooled)."""

    profile: str
    conditions: str
    dataset_digest: str
    test_kind: str = "public"
    """``private``, ``demo`` or ``public``: which test the runs were scored on (the
    dataset digest tells the tests apart already; this says it in words)."""
    split: str = "test"
    """The held-out split scored (Sen1Floods11's ``bolivia`` is a board of its own)."""

    @property
    def demo(self) -> bool:
        """Scored on a demo test: its labels can be rebuilt from the public seed, so its
        numbers show the harness works, not how good an entry is."""
        return self.test_kind == "demo"

    def label(self) -> str:
        """For people: ``demo test · profile quick · dataset 85e57060… · conditions 1a2b3c…``."""
        split = "" if self.split == "test" else f"split {self.split} · "
        return (
            f"{split}{self.test_kind} test · profile {self.profile or '?'} · dataset "
            f"{_short(self.dataset_digest)} · conditions {_short(self.conditions)}"
        )

    def slug(self) -> str:
        """A folder-name suffix that tells boards of one dataset apart."""
        parts = [
            self.profile or "profile",
            _short(self.dataset_digest, 8),
            _short(self.conditions, 8),
        ]
        if self.split != "test":
            parts.insert(0, self.split)
        return "-".join(parts)


def _short(digest: str, n: int = 12) -> str:
    return digest.split(":", 1)[-1][:n] or "?"


def _from_mlflow(run: Any) -> PublishedRun:
    """A run as the leaderboard reads it, whatever layout it was published in
    (:func:`harness.publish.layout.read_back`): every ``sarbench.*`` fact, tag or param,
    is in ``tags``; the entry's options and the plain params in ``params``."""
    back = read_back(run.data.tags, run.data.params, run.data.metrics)
    tags = dict(run.data.tags) | back.fields
    seed = tags.get(TAG + "seed", "0")
    return PublishedRun(
        mlflow_id=run.info.run_id,
        run_id=tags.get(TAG + "run_id", run.info.run_name or run.info.run_id),
        task=tags.get(TAG + "task", ""),
        dataset=tags.get(TAG + "dataset", ""),
        entry=tags.get(TAG + "entry", ""),
        variant=tags.get(TAG + "variant", ""),
        seed=int(seed) if seed.lstrip("-").isdigit() else 0,
        status=tags.get(TAG + "status", ""),
        metrics={k: _metric(v) for k, v in back.metrics.items()},
        params=back.params,
        tags=tags,
        end_time=run.info.end_time,
    )


def published_runs(client: MlflowClient) -> list[PublishedRun]:
    """Every completely published run of every ``sarbench/...`` experiment."""
    from mlflow.exceptions import MlflowException

    try:
        experiments = client.search_experiments(
            filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'", max_results=PAGE
        )
        ids = [e.experiment_id for e in experiments]
        runs: list[PublishedRun] = []
        token = None
        while ids:
            page = client.search_runs(
                ids,
                f"tags.`{PUBLISHED}` = '{COMPLETE}'",
                max_results=PAGE,
                page_token=token,
            )
            runs += [_from_mlflow(r) for r in page]
            token = page.token
            if not token:
                break
    except MlflowException as exc:
        raise TrackingError(f"MLflow tracking store: cannot read runs ({exc.message})") from exc
    except Exception as exc:
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise
        what = "locked by another process; try again" if is_locked_error(exc) else "failed"
        first = str(getattr(exc, "orig", exc)).splitlines()[0]
        raise TrackingError(f"MLflow tracking store: cannot read runs: {what} ({first})") from exc
    return sorted(runs, key=lambda r: (r.task, r.dataset, r.entry, r.variant, r.seed, r.run_id))


def download(client: MlflowClient, run: PublishedRun, dest: Path) -> Path:
    """Every artifact of ``run`` into ``dest`` (made first); returns ``dest``."""
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        client.download_artifacts(run.mlflow_id, "", str(dest))
    except MlflowException as exc:
        raise TrackingError(
            f"MLflow run {run.mlflow_id} ({run.run_id}): cannot download its artifacts "
            f"({exc.message})"
        ) from exc
    return dest


@dataclass(frozen=True)
class ChipTable:
    """The per-chip scores of one run: ids, statistics, and every column as read."""

    ids: tuple[str, ...]
    stats: ChipStats
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    groups: tuple[str, ...] | None = None
    """Each chip's independence group (the ``group`` column), or None: every chip its own."""


def read_chips(folder: Path, task: str) -> ChipTable:
    """Parse ``scores/chips.csv`` of a downloaded run (written by the publisher)."""
    path = folder / CHIPS_CSV
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(path, f"cannot read the per-chip scores ({exc})") from exc
    table = list(csv.reader(io.StringIO(text)))
    if len(table) < 2 or table[0][:1] != ["id"]:
        raise DataFileError(path, "not a per-chip scores CSV (header 'id,...' and one row a chip)")
    header, rows = tuple(table[0]), [tuple(r) for r in table[1:]]
    stats_type = STATS_TYPES.get(task)
    if stats_type is None:
        raise DataFileError(path, f"unknown task {task!r}")
    columns: dict[str, np.ndarray] = {}
    for f in fields(stats_type):
        if f.name not in header:
            raise DataFileError(path, f"column {f.name!r} (a {task} statistic) is missing")
        j = header.index(f.name)
        try:
            columns[f.name] = np.array([float(r[j]) for r in rows], dtype=np.float64)
        except (ValueError, IndexError) as exc:
            raise DataFileError(path, f"column {f.name!r} holds a non-number ({exc})") from exc
    groups = None
    if "group" in header:
        j = header.index("group")
        groups = tuple(r[j] if j < len(r) else "" for r in rows)
        if not all(groups):
            raise DataFileError(path, "column 'group' has an empty cell")
    ids = tuple(r[0] for r in rows)
    return ChipTable(ids, stats_type(**columns), header, tuple(rows), groups)
