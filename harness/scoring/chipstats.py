"""Per-chip sufficient statistics: what every metric, pooled or resampled, is computed from.

Each chip is reduced to a few numbers (flood: the four confusion counts; ndvi: pixel counts
and float64 sums of errors and targets, and the SSIM sum). A table of chips pools by
summing, so a pooled metric is the metric of all valid pixels of the chips taken together,
and a bootstrap resample is a weighted sum (:meth:`ChipStats.combine`).

Which statistics a task's chips are reduced to is the task's declaration
(``harness.tasks.Task.stats``); nothing here is chosen by task name.

The ndvi sums are :mod:`harness.scoring.ndvi_sums`' (numpy, or the compiled kernel to the
same bits), SSIM is :mod:`harness.scoring.ssim`'s; no I/O. A :class:`ChipReducer` reduces a
run of chips with work buffers (:class:`harness.scoring.arrays.Scratch`) reused from chip
to chip: on large chips, fresh multi-megabyte temporaries per chip cost more in page faults
than the arithmetic itself.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

import numpy as np

from harness.scoring.arrays import Scratch as _Scratch
from harness.scoring.arrays import binary as _binary
from harness.scoring.arrays import same_shape as _same_shape
from harness.scoring.arrays import valid_mask as _valid
from harness.scoring.ndvi_sums import chip_sums
from harness.scoring.ssim import NDVI_DATA_RANGE as NDVI_DATA_RANGE
from harness.scoring.ssim import SSIM_K1 as SSIM_K1
from harness.scoring.ssim import SSIM_K2 as SSIM_K2
from harness.scoring.ssim import SSIM_SIGMA as SSIM_SIGMA
from harness.scoring.ssim import SSIM_TRUNCATE as SSIM_TRUNCATE
from harness.scoring.ssim import _ssim_sum
from harness.scoring.ssim import ssim_map as ssim_map
from harness.scoring.ssim import ssim_sum as ssim_sum


@dataclass(frozen=True, eq=False)
class ChipStats(ABC):
    """Per-chip sufficient statistics of one task; every field is an array of equal shape.

    A table of ``C`` chips has fields of shape ``(C,)``; a pooled set has 0-d fields;
    :meth:`combine` with a ``(B, C)`` weight matrix gives ``B`` weighted sets at once.

    ``task`` names the task whose metrics apply (metrics are looked up under it). A task
    that reuses another task's statistics gets its own subclass (:meth:`for_task`).
    A subclass implements :meth:`combine` and :meth:`reduce_chip`.
    """

    task: ClassVar[str]

    @classmethod
    def for_task(cls, task: str) -> type[Self]:
        """These statistics as ``task``'s: the class itself if it is ``task``'s already,
        otherwise a subclass (made once) that differs only in :attr:`task`.

        >>> NdviStats.for_task("ndvi") is NdviStats
        True
        >>> NdviStats.for_task("wet").task, NdviStats.for_task("wet") is NdviStats.for_task("wet")
        ('wet', True)
        """
        if getattr(cls, "task", None) == task:
            return cls
        key = (cls, task)
        if key not in _BOUND:
            qualname = f"{cls.__qualname__}[{task}]"
            _BOUND[key] = type(cls)(
                cls.__name__,
                (cls,),
                {"task": task, "__module__": cls.__module__, "__qualname__": qualname},
            )
        return _BOUND[key]  # type: ignore[return-value]

    @classmethod
    @abstractmethod
    def reduce_chip(
        cls,
        pred: np.ndarray,
        target: np.ndarray,
        valid: np.ndarray | None,
        scratch: _Scratch,
        *,
        with_ssim: bool = True,
    ) -> Self:
        """The statistics of one chip (0-d fields); ``scratch`` lends reusable work buffers.
        ``with_ssim=False`` lets statistics that include SSIM skip it."""

    @classmethod
    def stack(cls, chips: Sequence[Self]) -> Self:
        """A table of chips from single-chip statistics (0-d fields), in order."""
        if not chips:
            return cls.empty()
        # np.array, not np.stack: the same array from 0-d fields, ten times faster
        return cls(**{f.name: np.array([getattr(c, f.name) for c in chips]) for f in fields(cls)})

    @classmethod
    def empty(cls) -> Self:
        """A table of zero chips."""
        return cls(**{f.name: np.zeros(0, dtype=np.float64) for f in fields(cls)})

    def __len__(self) -> int:
        first = getattr(self, fields(self)[0].name)
        if first.ndim != 1:
            raise TypeError(f"{type(self).__name__} is not a table of chips (shape {first.shape})")
        return int(first.shape[0])

    def take(self, index: np.ndarray | Sequence[int]) -> Self:
        """The chips at ``index`` (in that order)."""
        idx = np.asarray(index, dtype=np.intp)
        return type(self)(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def concat(self, other: Self) -> Self:
        """This table followed by ``other``."""
        return type(self)(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )

    @abstractmethod
    def combine(self, weights: np.ndarray, only: Collection[str] | None = None) -> Self:
        """``B`` weighted sets of chips from a ``(B, C)`` matrix of non-negative weights.

        Row ``b`` is the set in which chip ``c`` appears ``weights[b, c]`` times (a
        bootstrap resample has integer counts; a paired permutation has 0/1). With
        ``only``, just those fields are computed and the others are ``nan`` (the bootstrap
        passes a metric's :attr:`Metric.needs`).
        """

    def pooled(self) -> Self:
        """All chips of the table as one set (0-d fields)."""
        both = self.combine(np.ones((1, len(self))))
        return type(self)(**{f.name: getattr(both, f.name)[0] for f in fields(self)})

    def chip(self, i: int) -> dict[str, float | int]:
        """Statistics of chip ``i`` as plain Python numbers."""
        return {f.name: _plain(getattr(self, f.name)[i]) for f in fields(self)}


_BOUND: dict[tuple[type[ChipStats], str], type[ChipStats]] = {}
"""Subclasses made by :meth:`ChipStats.for_task`, by (class, task)."""


def _plain(x: Any) -> float | int:
    v = float(x)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


@dataclass(frozen=True, eq=False)
class FloodStats(ChipStats):
    """Confusion counts of the flood class over the valid pixels of a chip.

    ``tp``: predicted flood and flooded; ``fp``: predicted flood, not flooded; ``fn``:
    predicted not flood, flooded; ``tn``: neither. Nodata pixels are in none of them.
    """

    task: ClassVar[str] = "flood"
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    def combine(self, weights: np.ndarray, only: Collection[str] | None = None) -> FloodStats:
        # Float64 products are exact here: every count sum stays far below 2**53.
        w = np.asarray(weights, dtype=np.float64)
        nan = np.full(w.shape[0], np.nan)
        return type(self)(
            **{
                f.name: w @ getattr(self, f.name).astype(np.float64)
                if only is None or f.name in only
                else nan
                for f in fields(self)
            }
        )

    @classmethod
    def reduce_chip(
        cls,
        pred: np.ndarray,
        target: np.ndarray,
        valid: np.ndarray | None,
        scratch: _Scratch,
        *,
        with_ssim: bool = True,
    ) -> Self:
        return _flood(pred, target, valid, scratch, cls)


@dataclass(frozen=True, eq=False)
class NdviStats(ChipStats):
    """Error and target sums over the valid (farm) pixels of a chip; ``err = pred - target``.

    ``n``: valid pixels; ``n_pixels``: all pixels of the chip (for ``mse_all``);
    ``sum_err``, ``sum_sq_err``, ``sum_abs_err``: sums of err, err^2, |err|; ``sum_y``:
    sum of the target; ``m2_y``: sum of squared deviations of the target from its mean
    over the set (the R^2 denominator); ``min_y``, ``max_y``: its extremes (+inf / -inf
    with no valid pixel), which tell a constant target exactly; ``ssim_sum``: the sum of
    the SSIM map over the valid pixels (``nan`` if not computed).
    """

    task: ClassVar[str] = "ndvi"
    n: np.ndarray
    n_pixels: np.ndarray
    sum_err: np.ndarray
    sum_sq_err: np.ndarray
    sum_abs_err: np.ndarray
    sum_y: np.ndarray
    m2_y: np.ndarray
    min_y: np.ndarray
    max_y: np.ndarray
    ssim_sum: np.ndarray

    ADDITIVE: ClassVar[tuple[str, ...]] = (
        "n",
        "n_pixels",
        "sum_err",
        "sum_sq_err",
        "sum_abs_err",
        "sum_y",
        "ssim_sum",
    )

    def combine(self, weights: np.ndarray, only: Collection[str] | None = None) -> NdviStats:
        w = np.asarray(weights, dtype=np.float64)
        want = set(self.ADDITIVE) | {"m2_y", "min_y", "max_y"} if only is None else set(only)
        if "m2_y" in want:
            want |= {"n", "sum_y"}
        nan = np.full(w.shape[0], np.nan)
        out = {f.name: nan for f in fields(self)}
        for name in self.ADDITIVE:
            if name in want:
                out[name] = w @ getattr(self, name).astype(np.float64)
        present = w > 0
        if "min_y" in want:
            out["min_y"] = np.where(present, self.min_y, np.inf).min(axis=1, initial=np.inf)
        if "max_y" in want:
            out["max_y"] = np.where(present, self.max_y, -np.inf).max(axis=1, initial=-np.inf)
        if "m2_y" in want:
            out["m2_y"] = self._pooled_m2(w, out["n"], out["sum_y"])
        return type(self)(**out)

    @classmethod
    def reduce_chip(
        cls,
        pred: np.ndarray,
        target: np.ndarray,
        valid: np.ndarray | None,
        scratch: _Scratch,
        *,
        with_ssim: bool = True,
    ) -> Self:
        return _ndvi(pred, target, valid, scratch, with_ssim, cls)

    def _pooled_m2(self, w: np.ndarray, n: np.ndarray, sum_y: np.ndarray) -> np.ndarray:
        n_c = self.n.astype(np.float64)
        # Chan et al.: pooled M2 = sum of within-chip M2 + sum of n_c (mean_c - mean)^2,
        # the second term taken directly (no subtraction of large sums).
        mean_c = np.divide(self.sum_y, n_c, out=np.zeros_like(n_c), where=n_c > 0)
        mean = np.divide(sum_y, n, out=np.zeros_like(sum_y), where=n > 0)
        dev = mean_c[np.newaxis, :] - mean[:, np.newaxis]
        return w @ self.m2_y.astype(np.float64) + np.einsum("bc,bc->b", w * n_c, dev * dev)


def _flood(
    pred: np.ndarray,
    target: np.ndarray,
    valid: np.ndarray | None,
    scratch: _Scratch,
    out: type[FloodStats] = FloodStats,
) -> FloodStats:
    p, t = _binary(pred, "pred"), _binary(target, "target")
    _same_shape(p, t)
    v = _valid(valid, p.shape)
    pf, tf, size = p.ravel(), t.ravel(), p.size
    if v is None:
        n, p_in, flooded = size, pf, np.count_nonzero(tf)
    else:
        vf = v.ravel()
        n = np.count_nonzero(vf)
        p_in = np.logical_and(pf, vf, out=scratch.get("p_in", size, np.bool_))
        flooded = np.count_nonzero(np.logical_and(tf, vf, out=scratch.get("t_in", size, np.bool_)))
    tp = np.count_nonzero(np.logical_and(p_in, tf, out=scratch.get("both", size, np.bool_)))
    fp = np.count_nonzero(p_in) - tp
    fn = flooded - tp
    counts = {"tp": tp, "fp": fp, "fn": fn, "tn": n - tp - fp - fn}
    return out(**{k: np.asarray(c, dtype=np.int64) for k, c in counts.items()})


def _ndvi(
    pred: np.ndarray,
    target: np.ndarray,
    valid: np.ndarray | None,
    scratch: _Scratch,
    with_ssim: bool,
    out: type[NdviStats] = NdviStats,
) -> NdviStats:
    """One read of the chip (:func:`harness.scoring.ndvi_sums.chip_sums`), then SSIM."""
    p, t = np.asarray(pred), np.asarray(target)
    for name, arr in (("pred", p), ("target", t)):
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    _same_shape(p, t)
    v = _valid(valid, p.shape)
    n, *sums, m2_y, min_y, max_y = chip_sums(
        p.ravel(), t.ravel(), None if v is None else v.ravel(), scratch
    )
    ssim = _ssim_sum(p, t, v, scratch) if with_ssim else math.nan
    values = (n, p.size, *sums, m2_y, min_y, max_y, ssim)
    return out(*(np.asarray(x, dtype=np.float64) for x in values))


def flood_stats(
    pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None
) -> FloodStats:
    """Confusion counts of one chip (0-d fields).

    ``pred`` and ``target`` hold 0/1 (any integer or float dtype, or bool); ``valid`` is
    True (nonzero) where a pixel is scored, ``None`` for all pixels.

    >>> s = flood_stats(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), np.array([1, 1, 1, 0]))
    >>> int(s.tp), int(s.fp), int(s.fn), int(s.tn)
    (1, 1, 1, 0)
    """
    return _flood(pred, target, valid, _Scratch())


def ndvi_stats(
    pred: np.ndarray,
    target: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    with_ssim: bool = True,
) -> NdviStats:
    """Error sums of one chip (0-d fields), in float64.

    ``valid`` is True (nonzero) on farm pixels, ``None`` for all pixels. Target values
    outside ``valid`` are never read (they may be NaN). SSIM needs a 2-D chip; with
    ``with_ssim=False`` it is skipped and ``ssim_sum`` is ``nan``.

    >>> s = ndvi_stats(np.array([[0.5, 0.0]]), np.array([[0.25, 0.9]]), np.array([[1, 0]]))
    >>> int(s.n), int(s.n_pixels), float(s.sum_err), float(s.sum_sq_err)
    (1, 2, 0.25, 0.0625)
    """
    return _ndvi(pred, target, valid, _Scratch(), with_ssim)


class ChipReducer:
    """Reduces a run of chips of one task to a table of statistics, in the order added.

    The statistics are the task's (``harness.tasks.Task.stats_type``).

    >>> r = ChipReducer("flood")
    >>> _ = r.add(np.array([1, 0]), np.array([1, 1]))
    >>> _ = r.add(np.array([1, 1]), np.array([1, 1]), np.array([1, 0]))
    >>> r.table().tp.tolist(), r.table().fn.tolist()
    ([1, 1], [1, 0])
    """

    def __init__(self, task: str, *, with_ssim: bool = True) -> None:
        if task not in STATS_TYPES:
            raise KeyError(f"no statistics for task {task!r}; known: {', '.join(STATS_TYPES)}")
        self.task, self.with_ssim = task, with_ssim
        self.stats_type = STATS_TYPES[task]
        self._scratch = _Scratch()
        self._chips: list[ChipStats] = []

    def add(
        self, pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None
    ) -> ChipStats:
        """Reduce one chip, keep its statistics and return them (0-d fields)."""
        stats = self.stats_type.reduce_chip(
            pred, target, valid, self._scratch, with_ssim=self.with_ssim
        )
        self._chips.append(stats)
        return stats

    def table(self) -> ChipStats:
        """The statistics of every chip added so far, one row each."""
        return self.stats_type.stack(self._chips)


class _StatsByTask(Mapping[str, type[ChipStats]]):
    """Every declared task's statistics type, read from ``harness.tasks`` when asked."""

    @staticmethod
    def _tasks() -> Mapping[str, Any]:
        from harness.tasks import TASKS  # harness.tasks imports this module

        return TASKS

    def __getitem__(self, task: str) -> type[ChipStats]:
        return self._tasks()[task].stats_type

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks())

    def __len__(self) -> int:
        return len(self._tasks())

    def __repr__(self) -> str:
        return f"STATS_TYPES({dict(self)!r})"


STATS_TYPES: Mapping[str, type[ChipStats]] = _StatsByTask()
"""The statistics type of every task (``harness.tasks.Task.stats_type``), by task name."""
