"""Tasks, declared once as data. Adding a task touches this file and its metric functions.

A :class:`Task` carries everything the harness needs to treat a task generically: its
input bands; its target, as a :class:`TargetKind` (what the target is, how a quicklook
draws it, what a dataset card says about it); the dtype and range of its predictions; the
per-chip statistics its chips are reduced to (a
:class:`~harness.scoring.chipstats.ChipStats` subclass); and its metrics, functions of
those statistics declared with :func:`harness.scoring.metrics.metric`, each with its own
direction. Scoring, dataset cards, quicklooks and the command line ask the task for these;
none of them compares task names. Declare a task with :func:`register_task`; how to add
one is written down in ``docs/metrics.md`` ("Adding a task").
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness import quicklook as ql
from harness.bands import PRE_POST, VV_VH, check_roles
from harness.errors import UnknownNameError
from harness.scoring.chipstats import ChipStats, FloodStats, NdviStats
from harness.scoring.metrics import (
    Metric,
    accuracy,
    bias,
    f1,
    iou,
    mae,
    miou,
    mse,
    mse_all,
    precision,
    psnr,
    r2,
    recall,
    rmse,
    ssim,
)

if TYPE_CHECKING:
    import click

    from harness.datasets.loader import Sample

TASK_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")
"""A task name: it becomes part of file names, MLflow experiment names and page addresses."""


# --------------------------------------------------------------------------------------
# Target kinds: what depends only on what a target is, declared once per kind
# --------------------------------------------------------------------------------------


class TargetKind(ABC):
    """What a task's target is, and everything that follows from that alone: how quicklooks
    draw it (dataset cards and run pages) and what a dataset card's splits table says about
    it. A task declares an instance with its own words (``label``...)."""

    kind: ClassVar[str]
    """``"binary_mask"`` (values are exactly the two ends of the prediction range) or
    ``"continuous"`` (any value within it): how predictions and imported targets are
    checked."""

    @abstractmethod
    def card_panel(self, sample: Sample) -> np.ndarray:
        """The target panel of a dataset card's quicklook (after one grey panel per input
        band); ``sample`` has a target."""

    @abstractmethod
    def run_panels(self, sample: Sample, prediction: np.ndarray) -> list[np.ndarray]:
        """Input, truth and prediction panels of a run's quicklook; ``sample`` has a
        target."""

    @property
    @abstractmethod
    def card_panels(self) -> str:
        """What the panels of a card's quicklooks show, in words."""

    @property
    @abstractmethod
    def card_column(self) -> str:
        """The heading of the target column of a card's splits table."""

    @abstractmethod
    def card_tally(self, values: np.ndarray) -> Any:
        """What one chip's target values (over its valid pixels) add to that column."""

    @abstractmethod
    def card_summary(self, tallies: list[Any], valid_pixels: int) -> str:
        """The target column of one split, from its chips' tallies and its valid pixels."""


@dataclass(frozen=True)
class ClassMask(TargetKind):
    """A binary mask of one class (1: the class, 0: not), drawn in blue over an input band.

    ``label`` names the class (``"flood"``), ``member`` a pixel of it (``"flooded"``);
    ``band`` is the input band the mask is drawn over (an index, ``-1`` for the last),
    ``band_name`` says which band that is.
    """

    label: str
    member: str
    band: int = 0
    band_name: str = "first input band"
    kind: ClassVar[str] = "binary_mask"

    def card_panel(self, sample: Sample) -> np.ndarray:
        assert sample.target is not None
        valid = sample.valid_or_all()
        base = ql.grey(sample.inputs[self.band])
        ql.tint(base, (sample.target == 1) & valid, ql.FLOOD_BLUE, weight=0.6)
        base[~valid] = ql.NOT_SCORED
        return base

    def run_panels(self, sample: Sample, prediction: np.ndarray) -> list[np.ndarray]:
        """The band; the truth in blue over it; the prediction over it: hits blue, false
        alarms red, misses orange."""
        assert sample.target is not None
        valid = sample.valid_or_all()
        band = ql.grey(sample.inputs[self.band])
        truth, pred = band.copy(), band.copy()
        wet, said = (sample.target == 1) & valid, (prediction == 1) & valid
        ql.tint(truth, wet, ql.FLOOD_BLUE)
        ql.tint(pred, wet & said, ql.FLOOD_BLUE)
        ql.tint(pred, said & ~wet, ql.FALSE_RED)
        ql.tint(pred, wet & ~said, ql.MISS_ORANGE)
        truth[~valid] = pred[~valid] = ql.NOT_SCORED
        return [band, truth, pred]

    @property
    def card_panels(self) -> str:
        return f"input bands, then the {self.label} mask in blue over the {self.band_name}"

    @property
    def card_column(self) -> str:
        return f"{self.label} share of valid pixels"

    def card_tally(self, values: np.ndarray) -> int:
        return int((values == 1).sum())

    def card_summary(self, tallies: list[Any], valid_pixels: int) -> str:
        return f"{100.0 * sum(tallies) / max(valid_pixels, 1):.1f}% {self.member}"


@dataclass(frozen=True)
class ContinuousValue(TargetKind):
    """A continuous value per pixel, drawn on a brown-to-green ramp.

    ``label`` names the quantity (``"NDVI"``); ``ramp_low`` is drawn brown (and anything
    below), ``ramp_low + ramp_span`` dark green (and anything above); ``band`` is the input
    band shown beside it on run pages; ``not_scored`` says what grey pixels are.
    """

    label: str
    ramp_low: float
    ramp_span: float
    band: int = 0
    not_scored: str = "not scored"
    kind: ClassVar[str] = "continuous"

    def _ramp(self, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return ql.ramp(values, valid, self.ramp_low, self.ramp_span)

    def card_panel(self, sample: Sample) -> np.ndarray:
        assert sample.target is not None
        return self._ramp(sample.target, sample.valid_or_all())

    def run_panels(self, sample: Sample, prediction: np.ndarray) -> list[np.ndarray]:
        """The band in grey, then truth and prediction on the same ramp."""
        assert sample.target is not None
        valid = sample.valid_or_all()
        band = ql.grey(sample.inputs[self.band])
        return [band, self._ramp(sample.target, valid), self._ramp(prediction, valid)]

    @property
    def card_panels(self) -> str:
        return f"input bands, then {self.label} (brown low, green high; grey = {self.not_scored})"

    @property
    def card_column(self) -> str:
        return "target values"

    def card_tally(self, values: np.ndarray) -> np.ndarray:
        return values.astype(np.float64)

    def card_summary(self, tallies: list[Any], valid_pixels: int) -> str:
        values = np.concatenate(tallies) if tallies else np.zeros(0)
        if values.size == 0:
            return "-"
        return (
            f"{self.label} mean {values.mean():.3f}, "
            f"p5-p95 {np.percentile(values, 5):.3f} to {np.percentile(values, 95):.3f}"
        )


# --------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """What a task takes, what it predicts, and how it is scored and ranked.

    ``input_bands`` is the number of bands of every input GeoTIFF; their meaning is the
    dataset's (its manifest names them). ``target`` is the target's kind; targets are
    stored as ``target_dtype``. Predictions are one single-band GeoTIFF per test input with
    ``prediction_dtype`` and values in ``prediction_range`` (a closed interval; for a
    binary mask the only allowed values are its two ends).

    Each chip is reduced to ``stats`` (its per-chip sufficient statistics); ``metrics``
    are functions of those statistics (declared with
    :func:`harness.scoring.metrics.metric`, which gives each its direction), reported in
    this order after the primary one, ``primary_metric``, which ranks entries and gets the
    confidence interval. The primary metric's direction must be ``higher`` or ``lower``.

    ``band_layouts`` are the band roles (:mod:`harness.bands`) a dataset of the task may
    have, each in band order: a flood chip is pre/post of one polarisation or VV/VH of one
    date. Entries name the layouts they need from these (``requires_roles``); empty: the
    task says nothing about what its bands are.
    """

    name: str
    description: str
    input_bands: int
    target: TargetKind
    target_dtype: str
    prediction_dtype: str
    prediction_range: tuple[float, float]
    stats: type[ChipStats]
    metrics: tuple[Metric, ...]
    primary_metric: str
    band_layouts: tuple[tuple[str, ...], ...] = ()
    stats_type: type[ChipStats] = field(init=False, repr=False, compare=False)
    """``stats`` as this task's statistics (:meth:`ChipStats.for_task`): its tables name
    this task, so metrics are looked up under it."""
    metric_table: Mapping[str, Metric] = field(init=False, repr=False, compare=False)
    """The metrics by name, primary first, each naming this task (:attr:`Metric.task`)."""

    def __post_init__(self) -> None:
        where = f"task {self.name!r}"
        if not TASK_NAME.match(self.name):
            raise ValueError(f"{where}: a name is lower-case letters, digits, '-' and '_'")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: metric names repeat: {names}")
        if self.primary_metric not in names:
            raise ValueError(f"{where}: primary metric {self.primary_metric!r} not in {names}")
        for layout in self.band_layouts:
            problems = check_roles(list(layout), self.input_bands)
            if problems:
                raise ValueError(f"{where}: band layout {layout!r}: {'; '.join(problems)}")
        if not (isinstance(self.stats, type) and issubclass(self.stats, ChipStats)):
            raise TypeError(f"{where}: stats must be a ChipStats subclass, not {self.stats!r}")
        known = {f.name for f in fields(self.stats)}
        for m in self.metrics:
            missing = [n for n in m.needs if n not in known]
            if missing:
                raise ValueError(
                    f"{where}: metric {m.name!r} needs {missing}, which "
                    f"{self.stats.__name__} does not have ({', '.join(sorted(known))})"
                )
        primary = self.metrics[names.index(self.primary_metric)]
        if primary.higher_is_better is None:
            raise ValueError(
                f"{where}: the primary metric ranks entries, so it must be better when "
                f"higher or lower, not {primary.direction!r}"
            )
        ordered = [primary, *(m for m in self.metrics if m is not primary)]
        table = {m.name: replace(m, task=self.name) for m in ordered}
        object.__setattr__(self, "metric_table", MappingProxyType(table))
        object.__setattr__(self, "stats_type", self.stats.for_task(self.name))

    @property
    def secondary_metrics(self) -> tuple[str, ...]:
        """The other metrics' names, in their declared order."""
        return tuple(n for n in self.metric_table if n != self.primary_metric)

    @property
    def higher_is_better(self) -> bool:
        """The primary metric's direction."""
        return bool(self.metric_table[self.primary_metric].higher_is_better)

    @property
    def target_kind(self) -> str:
        """``"binary_mask"`` or ``"continuous"`` (:attr:`TargetKind.kind`)."""
        return self.target.kind


TASKS: dict[str, Task] = {}
"""Every declared task by name, in the order declared."""


def register_task(task: Task) -> Task:
    """Declare ``task``: from now on scoring, cards, quicklooks and the command line know
    it. A name can be declared once."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is declared already")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name gets a suggestion."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError("task", name, TASKS) from None


def task_choice() -> click.Choice:
    """A ``click.Choice`` of the declared tasks' names, read each time a command line is
    parsed or its help is shown (a task declared after the command was made is offered)."""
    import click  # the command line's, not the tasks'

    class TaskChoice(click.Choice):
        def __init__(self) -> None:  # no fixed choices to store
            self.case_sensitive = True

        @property
        def choices(self) -> tuple[str, ...]:  # type: ignore[override]
            return tuple(TASKS)

    return TaskChoice()


register_task(
    Task(
        name="flood",
        description="binary flood segmentation from a 2-band Sentinel-1 chip",
        input_bands=2,
        target=ClassMask(label="flood", member="flooded", band=-1, band_name="post-event image"),
        target_dtype="uint8",
        prediction_dtype="uint8",
        prediction_range=(0, 1),
        stats=FloodStats,
        metrics=(iou, miou, precision, recall, f1, accuracy),
        primary_metric="iou",
        band_layouts=(PRE_POST, VV_VH),
    )
)
register_task(
    Task(
        name="ndvi",
        description="Sentinel-1 VV/VH sigma0 to NDVI image translation",
        input_bands=2,
        target=ContinuousValue(
            label="NDVI", ramp_low=-0.2, ramp_span=1.1, not_scored="not farm, not scored"
        ),
        target_dtype="float32",
        prediction_dtype="float32",
        prediction_range=(-1.0, 1.0),
        stats=NdviStats,
        metrics=(mse, rmse, mae, bias, r2, psnr, ssim, mse_all),
        primary_metric="mse",
        band_layouts=(VV_VH,),
    )
)
