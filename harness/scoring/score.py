"""Scoring a prediction folder against a split with labels: validate, reduce, pool, interval.

    >>> result = score_predictions("out/", split, get_task("flood"))   # doctest: +SKIP
    >>> result.metrics["iou"], result.interval.low, result.interval.high  # doctest: +SKIP

The same code scores a competitor's val predictions on their machine and the hidden test
predictions on the harness side.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.datasets.layout import SUFFIX
from harness.datasets.loader import SplitDir
from harness.errors import DataFileError, SarbenchError
from harness.scoring.metrics import METRICS, ChipReducer, ChipStats, Direction, Metric
from harness.scoring.stats import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    Interval,
    PairedComparison,
    bootstrap_ci,
    interval_note,
    json_float,
    paired_test,
)
from harness.scoring.validate import read_prediction, validate_predictions
from harness.tasks import Task

SCHEMA = "sarbench.score/1"


def task_metrics(task: Task) -> list[Metric]:
    """The metrics ``task`` declares, primary first (:attr:`Task.metric_table`)."""
    return list(task.metric_table.values())


@dataclass(frozen=True, eq=False)
class ScoreResult:
    """The verdict on one prediction folder.

    ``metrics`` are pooled over all valid pixels of all chips; ``interval`` is the
    bootstrap interval of the primary metric; ``stats`` holds every chip's sufficient
    statistics in the order of ``chip_ids`` (what a later paired comparison needs).
    """

    task: str
    primary_metric: str
    higher_is_better: bool
    split: str
    dataset: str | None
    predictions: str
    chip_ids: tuple[str, ...]
    stats: ChipStats
    metrics: dict[str, float]
    directions: dict[str, Direction]
    interval: Interval
    groups: tuple[str, ...] | None = None
    """Each chip's independence group (``chip_ids`` order), or None: every chip its own."""
    interval_note: str | None = None
    """Why the interval could not be estimated (its ``low``/``high`` are then NaN), or None
    (:func:`interval_note`)."""

    @property
    def primary(self) -> float:
        return self.metrics[self.primary_metric]

    def chip_metrics(self) -> dict[str, np.ndarray]:
        """Each reported metric for every chip alone (arrays in ``chip_ids`` order)."""
        return {name: np.atleast_1d(METRICS[self.task][name](self.stats)) for name in self.metrics}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; undefined values are ``null``, infinities ``"inf"``."""
        per_chip = self.chip_metrics()
        chips = [
            {
                "id": sid,
                **({} if self.groups is None else {"group": self.groups[i]}),
                "metrics": {name: json_float(vals[i]) for name, vals in per_chip.items()},
                "stats": {
                    k: v if isinstance(v, int) else json_float(v)
                    for k, v in self.stats.chip(i).items()
                },
            }
            for i, sid in enumerate(self.chip_ids)
        ]
        return {
            "schema": SCHEMA,
            "task": self.task,
            "dataset": self.dataset,
            "split": self.split,
            "predictions": self.predictions,
            "n_chips": len(self.chip_ids),
            "primary_metric": self.primary_metric,
            "higher_is_better": self.higher_is_better,
            "metrics": {k: json_float(v) for k, v in self.metrics.items()},
            "directions": dict(self.directions),
            "interval": {
                **self.interval.to_dict(),
                **({} if self.interval_note is None else {"note": self.interval_note}),
            },
            "chips": chips,
        }


def _reduce(task: Task, split: SplitDir, paths: dict[str, Path]) -> ChipStats:
    """Statistics of every chip of ``split`` from its label and its validated prediction."""
    reducer = ChipReducer(task.name)
    for sid in split.ids:
        sample = split.load(sid)
        target_path = (split.targets_dir or split.path / "targets") / f"{sid}{SUFFIX}"
        if sample.target is None:  # has_targets was checked; a file may still have gone
            raise DataFileError(target_path, "target missing")
        pred = read_prediction(paths[sid])  # GeoTIFF driver only, band 1, header checked
        try:
            reducer.add(pred, sample.target, sample.valid)
        except ValueError as exc:
            raise DataFileError(target_path, f"target cannot be scored ({exc})") from exc
    return reducer.table()


def score_predictions(
    pred_dir: str | os.PathLike[str],
    split: SplitDir,
    task: Task,
    *,
    dataset: str | None = None,
    groups: Mapping[str, str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> ScoreResult:
    """Validate ``pred_dir`` against ``split``, then score it. ``groups`` maps each chip to
    its independence group (:func:`harness.datasets.ops.groups_of`): the interval resamples
    whole groups; without it every chip is its own group.

    Raises :class:`~harness.scoring.validate.PredictionError` (every problem of the
    predictions) before anything is scored, and :class:`~harness.errors.SarbenchError` for
    a split that cannot be scored (no labels, no chips, a broken target file).
    """
    metrics = task_metrics(task)
    if not split.has_targets:
        raise SarbenchError(
            f"{split.path}: this split has no targets/ folder, so it cannot be scored here "
            "(test labels live on the harness side; competitors score their val predictions)"
        )
    if not split.ids:
        raise SarbenchError(f"{split.path}: the split has no inputs, nothing to score")
    paths = validate_predictions(pred_dir, split, task)
    table = _reduce(task, split, paths)
    pooled = table.pooled()
    labels = _labels(split.ids, groups, split.path)
    interval = bootstrap_ci(
        table, task.primary_metric, groups=labels, n_resamples=n_resamples, level=level, seed=seed
    )
    note = interval_note(interval.n_units, labels)
    if note is not None:  # not an interval: the bootstrap's point [estimate, estimate]
        interval = dataclasses.replace(interval, low=math.nan, high=math.nan)
    return ScoreResult(
        task=task.name,
        primary_metric=task.primary_metric,
        higher_is_better=task.higher_is_better,
        split=split.path.name,
        dataset=dataset,
        predictions=str(Path(pred_dir)),
        chip_ids=tuple(split.ids),
        stats=table,
        metrics={m.name: float(m(pooled)) for m in metrics},
        directions={m.name: m.direction for m in metrics},
        interval=interval,
        groups=labels,
        interval_note=note,
    )


def _labels(
    ids: Sequence[str], groups: Mapping[str, str] | None, where: Path
) -> tuple[str, ...] | None:
    if groups is None:
        return None
    missing = [sid for sid in ids if sid not in groups]
    if missing:
        raise SarbenchError(
            f"{where}: {len(missing)} chip(s) have no independence group in the dataset's "
            f"manifest (e.g. {missing[:3]}); re-prepare the dataset"
        )
    return tuple(groups[sid] for sid in ids)


def compare(
    a: ScoreResult,
    b: ScoreResult,
    metric: str | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of two results of one task on the same chips (primary metric by
    default); chips are matched by id."""
    if a.task != b.task:
        raise SarbenchError(f"cannot compare a {a.task!r} result with a {b.task!r} result")
    return paired_test(
        a.chip_ids,
        a.stats,
        b.chip_ids,
        b.stats,
        metric or a.primary_metric,
        groups=a.groups,
        n_resamples=n_resamples,
        n_permutations=n_resamples,
        seed=seed,
    )
