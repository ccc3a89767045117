"""Metrics, computed from per-chip sufficient statistics.

Scoring happens in two steps. First each chip is reduced to a few numbers, its *sufficient
statistics* (flood: the four confusion counts; ndvi: pixel count and sums of errors and
targets; see :mod:`harness.scoring.chipstats`, whose names this module also exports). Then
every metric is a function of the statistics of a set of chips: one chip
(the per-chip table), all chips pooled (the reported score), or a bootstrap resample of
chips (a weighted sum, see :mod:`harness.scoring.stats`). Pooling sums pixels, not chip
scores, so a pooled metric is the metric of all valid pixels of the set taken together.

A metric is a function of statistics declared with :func:`metric`, which says which values
are better (its direction) and which statistics fields it reads; a task lists its metrics
in ``harness.tasks`` (:data:`METRICS` is a view of those lists). Everything here is plain
numpy and does no I/O.
The conventions and every edge case are written down in ``docs/metrics.md``; the short
version: a metric whose denominator is zero is undefined and returned as ``nan`` (JSON
``null``), never silently replaced by 0 or 1; the one infinite value is the PSNR of a
perfect prediction.

Example::

    >>> import numpy as np
    >>> pred = np.array([[1, 1], [0, 0]], dtype=np.uint8)
    >>> target = np.array([[1, 0], [1, 0]], dtype=np.uint8)
    >>> compute_metrics(flood_stats(pred, target))["iou"]
    0.3333333333333333
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from harness.scoring.chipstats import (
    NDVI_DATA_RANGE,
    STATS_TYPES,
    ChipReducer,
    ChipStats,
    FloodStats,
    NdviStats,
    flood_stats,
    ndvi_stats,
    ssim_map,
    ssim_sum,
)

__all__ = [
    "METRICS",
    "STATS_TYPES",
    "ChipReducer",
    "ChipStats",
    "Direction",
    "FloodStats",
    "Metric",
    "NdviStats",
    "accuracy",
    "better_of",
    "bias",
    "compute_metrics",
    "f1",
    "flood_stats",
    "get_metric",
    "iou",
    "mae",
    "metric",
    "miou",
    "mse",
    "mse_all",
    "ndvi_stats",
    "precision",
    "psnr",
    "r2",
    "rank_key",
    "recall",
    "rmse",
    "ssim",
    "ssim_map",
    "ssim_sum",
]

Value = float | np.ndarray
"""A metric value: a float for one set of chips, an array for many (chips or resamples)."""
Direction = Literal["higher", "lower", "closer to 0"]
"""Which values of a metric are better."""


# --------------------------------------------------------------------------------------
# Metrics: functions of statistics
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric: its name, which values are better, the function of statistics, and the
    statistics fields that function reads (``needs``). ``task`` is the task that lists it
    (empty until a task does: see ``harness.tasks.Task``)."""

    name: str
    direction: Direction
    fn: Callable[[Any], Value]
    needs: tuple[str, ...]
    task: str = ""

    @property
    def summary(self) -> str:
        doc = self.fn.__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else self.name

    @property
    def higher_is_better(self) -> bool | None:
        """True or False; ``None`` for a metric best at 0 (bias)."""
        return {"higher": True, "lower": False}.get(self.direction)

    def __call__(self, stats: ChipStats) -> Value:
        return self.fn(stats)


def metric(direction: Direction, needs: str) -> Callable[[Callable[[Any], Value]], Metric]:
    """Declare a function of statistics as a metric, named like the function.

    ``direction``: which values are better (``"higher"``, ``"lower"`` or ``"closer to 0"``);
    ``needs``: the statistics fields the function reads, space-separated (the bootstrap
    computes only those). The result is called like the function.

    >>> @metric("lower", needs="n sum_abs_err")
    ... def half_mae(s):
    ...     return _out(_ratio(s.sum_abs_err, 2 * s.n))
    >>> half_mae.direction, half_mae(ndvi_stats(np.array([[0.5]]), np.array([[0.0]])))
    ('lower', 0.25)
    """
    if direction not in get_args(Direction):
        raise ValueError(f"direction must be one of {get_args(Direction)}, not {direction!r}")

    def declare(fn: Callable[[Any], Value]) -> Metric:
        return Metric(fn.__name__, direction, fn, tuple(needs.split()))

    return declare


def _out(x: np.ndarray) -> Value:
    arr = np.asarray(x, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _ratio(num: Any, den: Any) -> np.ndarray:
    """``num / den``, ``nan`` where ``den`` is 0."""
    n, d = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.full(n.shape, np.nan)
    np.divide(n, d, out=out, where=d > 0)
    return out


@metric("higher", needs="tp fp fn")
def iou(s: FloodStats) -> Value:
    """Intersection over union of the flood class: TP / (TP + FP + FN); undefined if 0/0.

    >>> iou(flood_stats(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])))
    0.5
    >>> iou(flood_stats(np.array([0, 0]), np.array([0, 0])))  # empty union: undefined
    nan
    """
    return _out(_ratio(s.tp, s.tp + s.fp + s.fn))


@metric("higher", needs="tp fp fn tn")
def miou(s: FloodStats) -> Value:
    """Mean of the IoU of {flood, not flood}; a class whose union is empty is left out.

    The not-flood IoU is TN / (TN + FP + FN). With both classes undefined (no valid pixel)
    the mean is undefined.

    >>> miou(flood_stats(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])))
    0.5833333333333333
    >>> miou(flood_stats(np.array([0, 0]), np.array([0, 0])))  # only "not flood" present
    1.0
    """
    wet = _ratio(s.tp, s.tp + s.fp + s.fn)
    dry = _ratio(s.tn, s.tn + s.fp + s.fn)
    both = np.where(np.isnan(wet), dry, np.where(np.isnan(dry), wet, (wet + dry) / 2))
    return _out(both)


@metric("higher", needs="tp fp")
def precision(s: FloodStats) -> Value:
    """TP / (TP + FP); undefined with no predicted flood pixel.

    >>> precision(flood_stats(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])))
    0.5
    >>> precision(flood_stats(np.array([0, 0]), np.array([1, 0])))
    nan
    """
    return _out(_ratio(s.tp, s.tp + s.fp))


@metric("higher", needs="tp fn")
def recall(s: FloodStats) -> Value:
    """TP / (TP + FN); undefined with no flooded pixel in the target.

    >>> recall(flood_stats(np.array([1, 0, 0, 0]), np.array([1, 0, 1, 1])))
    0.3333333333333333
    >>> recall(flood_stats(np.array([1, 0]), np.array([0, 0])))
    nan
    """
    return _out(_ratio(s.tp, s.tp + s.fn))


@metric("higher", needs="tp fp fn")
def f1(s: FloodStats) -> Value:
    """2 TP / (2 TP + FP + FN) (the Dice coefficient); undefined when the union is empty.

    >>> f1(flood_stats(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])))
    0.5
    """
    return _out(_ratio(2 * s.tp, 2 * s.tp + s.fp + s.fn))


@metric("higher", needs="tp fp fn tn")
def accuracy(s: FloodStats) -> Value:
    """(TP + TN) / valid pixels; undefined with no valid pixel.

    >>> accuracy(flood_stats(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])))
    0.5
    >>> accuracy(flood_stats(np.array([1, 0]), np.array([1, 0]), np.array([0, 0])))
    nan
    """
    return _out(_ratio(s.tp + s.tn, s.tp + s.fp + s.fn + s.tn))


@metric("lower", needs="n sum_sq_err")
def mse(s: NdviStats) -> Value:
    """Mean squared error over the valid (farm) pixels; undefined with none.

    >>> mse(ndvi_stats(np.array([[0.5, 0.5]]), np.array([[0.0, 1.0]])))
    0.25
    >>> mse(ndvi_stats(np.array([[0.5, 0.5]]), np.array([[0.0, 1.0]]), np.array([[0, 0]])))
    nan
    """
    return _out(_ratio(s.sum_sq_err, s.n))


@metric("lower", needs="n sum_sq_err")
def rmse(s: NdviStats) -> Value:
    """Square root of :func:`mse`.

    >>> rmse(ndvi_stats(np.array([[0.5, 0.5]]), np.array([[0.0, 1.0]])))
    0.5
    """
    return _out(np.sqrt(_ratio(s.sum_sq_err, s.n)))


@metric("lower", needs="n sum_abs_err")
def mae(s: NdviStats) -> Value:
    """Mean absolute error over the valid pixels.

    >>> mae(ndvi_stats(np.array([[0.5, 0.5]]), np.array([[0.0, 0.75]])))
    0.375
    """
    return _out(_ratio(s.sum_abs_err, s.n))


@metric("closer to 0", needs="n sum_err")
def bias(s: NdviStats) -> Value:
    """Mean of pred - target over the valid pixels (> 0: predictions too high).

    >>> bias(ndvi_stats(np.array([[0.5, 0.5]]), np.array([[0.0, 0.75]])))
    0.125
    """
    return _out(_ratio(s.sum_err, s.n))


@metric("higher", needs="n sum_sq_err m2_y min_y max_y")
def r2(s: NdviStats) -> Value:
    """Coefficient of determination 1 - SS_res / SS_tot over the valid pixels.

    SS_tot is the target's squared deviation from its own mean over the same pixels.
    Undefined when the target is constant there (SS_tot = 0) or there is no valid pixel.
    It can be negative (worse than predicting the mean).

    >>> r2(ndvi_stats(np.array([[0.0, 1.0, 0.5, 0.5]]), np.array([[0.0, 1.0, 0.0, 1.0]])))
    0.5
    >>> r2(ndvi_stats(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])))  # worse than the mean
    -3.0
    >>> r2(ndvi_stats(np.array([[0.1, 0.2]]), np.array([[0.3, 0.3]])))  # constant target
    nan
    """
    spread = np.where(s.max_y > s.min_y, s.m2_y, 0.0)
    return _out(1.0 - _ratio(s.sum_sq_err, spread))


@metric("higher", needs="n sum_sq_err")
def psnr(s: NdviStats) -> Value:
    """Peak signal-to-noise ratio 10 log10(L^2 / MSE) in dB, L = 2 (NDVI spans [-1, 1]).

    Infinite for a perfect prediction (MSE = 0); undefined with no valid pixel.

    >>> psnr(ndvi_stats(np.array([[0.5, 0.5]]), np.array([[0.0, 1.0]])))
    12.041199826559248
    >>> psnr(ndvi_stats(np.array([[0.5]]), np.array([[0.5]])))
    inf
    """
    m = _ratio(s.sum_sq_err, s.n)
    with np.errstate(divide="ignore"):
        return _out(10.0 * np.log10(NDVI_DATA_RANGE**2 / m))


@metric("higher", needs="n ssim_sum")
def ssim(s: NdviStats) -> Value:
    """Mean SSIM over the valid pixels (see :func:`ssim_sum`); undefined with none.

    Pooled over chips, every valid pixel weighs the same (chips with more farm pixels
    count more), as for MSE.

    >>> x = np.linspace(-1, 1, 64).reshape(8, 8)
    >>> round(ssim(ndvi_stats(x, x)), 12)
    1.0
    """
    return _out(_ratio(s.ssim_sum, s.n))


@metric("lower", needs="n_pixels sum_sq_err")
def mse_all(s: NdviStats) -> Value:
    """The source competition's MSE: non-farm pixels set to 0 in both images, MSE over all
    pixels. Equals the sum of squared errors on farm pixels / all pixels.

    >>> mse_all(ndvi_stats(np.array([[0.5, 0.5]]), np.array([[0.0, 0.9]]), np.array([[1, 0]])))
    0.125
    """
    return _out(_ratio(s.sum_sq_err, s.n_pixels))


def rank_key(direction: Direction, value: float) -> float:
    """Smaller is better: ``-value``, ``value`` or ``|value|`` by direction.

    >>> sorted([0.3, -0.1, 0.2], key=lambda v: rank_key("closer to 0", v))
    [-0.1, 0.2, 0.3]
    """
    if direction == "higher":
        return -value
    if direction == "lower":
        return value
    return abs(value)


def better_of(direction: Direction, a: float, b: float) -> str:
    """``"a"``, ``"b"``, ``"tie"``, or ``"undefined"`` if either value is ``nan``.

    >>> better_of("lower", 0.02, 0.03), better_of("closer to 0", -0.01, 0.02)
    ('a', 'a')
    """
    if math.isnan(a) or math.isnan(b):
        return "undefined"
    ka, kb = rank_key(direction, a), rank_key(direction, b)
    return "tie" if ka == kb else ("a" if ka < kb else "b")


class _MetricsByTask(Mapping[str, Mapping[str, Metric]]):
    """Every declared task's metrics by name, primary first, read from ``harness.tasks``
    when asked (a task is declared there, with the metric functions it lists)."""

    @staticmethod
    def _tasks() -> Mapping[str, Any]:
        from harness.tasks import TASKS  # harness.tasks imports this module

        return TASKS

    def __getitem__(self, task: str) -> Mapping[str, Metric]:
        return self._tasks()[task].metric_table

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks())

    def __len__(self) -> int:
        return len(self._tasks())

    def __repr__(self) -> str:
        return f"METRICS({ {t: list(m) for t, m in self.items()}!r})"


METRICS: Mapping[str, Mapping[str, Metric]] = _MetricsByTask()
"""Every metric of every task, primary first, in the order of ``harness.tasks``."""

__test__ = {name: m.fn for name, m in list(globals().items()) if isinstance(m, Metric)}
"""The examples of the metric functions, for doctest (which does not look inside a
:class:`Metric`)."""


def get_metric(task: str, name: str) -> Metric:
    """The metric ``name`` of ``task``; a ``KeyError`` lists the known ones."""
    try:
        return METRICS[task][name]
    except KeyError:
        known = ", ".join(METRICS.get(task, {})) or "(unknown task)"
        raise KeyError(f"task {task!r} has no metric {name!r}; known: {known}") from None


def compute_metrics(stats: ChipStats) -> dict[str, Value]:
    """Every metric of the stats' task, by name (floats for a pooled or single chip).

    >>> compute_metrics(flood_stats(np.array([1, 0]), np.array([1, 0])))["accuracy"]
    1.0
    """
    return {name: m(stats) for name, m in METRICS[stats.task].items()}
