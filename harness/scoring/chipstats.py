"""Per-chip sufficient statistics: what every metric, pooled or resampled, is computed from.

Each chip is reduced to a few numbers (flood: the four confusion counts; ndvi: pixel counts
and float64 sums of errors and targets, and the SSIM sum). A table of chips pools by
summing, so a pooled metric is the metric of all valid pixels of the chips taken together,
and a bootstrap resample is a weighted sum (:meth:`ChipStats.combine`).

Which statistics a task's chips are reduced to is the task's declaration
(``harness.tasks.Task.stats``); nothing here is chosen by task name.

numpy (scipy's Gaussian filter for SSIM), and for the ndvi sums of a float32 or float64
window the compiled kernel where it was built (:mod:`harness.scoring.kernel`, the same
bits); no I/O. A :class:`ChipReducer` reduces a run of chips with work buffers reused from
chip to chip: on large chips, fresh multi-megabyte temporaries per chip cost more in page
faults than the arithmetic itself.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

import numpy as np

from harness.scoring import kernel

NDVI_DATA_RANGE = 2.0
"""The data range L of NDVI ([-1, 1]), used by PSNR and SSIM."""
SSIM_SIGMA = 1.5
"""Standard deviation (pixels) of SSIM's Gaussian window."""
SSIM_TRUNCATE = 3.5
"""The window is cut at ``int(3.5 * 1.5 + 0.5) = 5`` pixels each side: 11 x 11."""
SSIM_K1, SSIM_K2 = 0.01, 0.03
"""SSIM stabilising constants: C1 = (K1 L)^2, C2 = (K2 L)^2 (Wang et al., 2004)."""


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


class _Scratch:
    """Work buffers by name and dtype, allocated once and grown on demand."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, np.dtype], np.ndarray] = {}

    def get(
        self, name: str, size: int, dtype: Any, shape: tuple[int, ...] | None = None
    ) -> np.ndarray:
        key = (name, np.dtype(dtype))
        buf = self._buffers.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype)
            self._buffers[key] = buf
        view = buf[:size]
        return view if shape is None else view.reshape(shape)


def _binary(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as a bool mask; values must be 0/1 (or bool)."""
    arr = np.asarray(a)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype == np.uint8:
        if arr.size and arr.max() > 1:
            raise ValueError(f"{name} must hold only 0 and 1, found {int(arr.max())}")
        return arr.view(np.bool_)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a bool or numeric array, got dtype {arr.dtype}")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise ValueError(f"{name} must hold only 0 and 1, found {arr[bad].flat[0]!r}")
    return arr == 1


def _valid(valid: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if valid is None:
        return None
    v = np.asarray(valid)
    if v.shape != shape:
        raise ValueError(f"valid mask of shape {v.shape} does not fit arrays of shape {shape}")
    return v if v.dtype == np.bool_ else v != 0


def _same_shape(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred of shape {pred.shape} and target of shape {target.shape} differ")


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


_WINDOW = 1 << 18
"""Pixels reduced at a time (a 512 x 512 chip is one window): the window's two float64 work
buffers (4 MiB) stay in cache through every pass over them, so a chip of any size is read
from memory once and needs no more scratch than this."""
_GATHER = 1 << 16
"""Pixels whose valid values one boolean index gathers: its temporaries stay in cache, and a
stretch that is all valid (or all nodata) is copied (or skipped) without indexing."""


def _windows(n: int, size: int, start: int = 0) -> list[tuple[int, int]]:
    """``[start, start + n)`` cut into ranges of at most ``size`` along numpy's pairwise sum.

    ``np.add.reduce`` over ``n > 128`` contiguous float64 values sums the first
    ``h = n // 2 - (n // 2) % 8`` and the rest separately, recursively, and adds the two.
    Summing each range alone and adding the sums back along the same tree
    (:func:`_tree_sum`) therefore gives the bits of one sum over all ``n``; were numpy to
    change its tree, the sums would still be pairwise sums, only in other bits.

    >>> _windows(300_000, 1 << 18)
    [(0, 150000), (150000, 300000)]
    """
    if n <= size:
        return [(start, start + n)]
    half = n // 2 - (n // 2) % 8
    return _windows(half, size, start) + _windows(n - half, size, start + half)


def _tree_sum(parts: Iterator[np.ndarray], n: int, size: int) -> np.ndarray:
    """The sums of the ranges :func:`_windows` gives for ``(n, size)``, in their order,
    added along the same tree."""
    if n <= size:
        return next(parts)
    half = n // 2 - (n // 2) % 8
    left = _tree_sum(parts, half, size)
    return left + _tree_sum(parts, n - half, size)


@dataclass(frozen=True)
class _WindowSums:
    """One window's valid pixels: their count ``n``, the float64 sums ``err``, ``err^2``,
    ``|err|``, ``y`` (in that order), ``centre`` (the value the target was shifted by),
    ``shifted_sum`` (the sum of ``y - centre``), the target's squared deviations from the
    window's own mean (``m2_y``), and its extremes."""

    n: int
    sums: np.ndarray
    centre: float
    shifted_sum: float
    m2_y: float
    min_y: float
    max_y: float


def _window_sums_compiled(
    p: np.ndarray,
    t: np.ndarray,
    v: np.ndarray | None,
    scratch: _Scratch,
    centre: float | None,
    alone: bool,
) -> _WindowSums:
    """:func:`_window_sums_numpy`'s statistics, to the bit, from the compiled kernel
    (:mod:`harness.scoring.kernel`), for windows it takes (:func:`kernel.takes`). A mask
    that is all True gives what no mask gives."""
    size = p.size
    pp, tt = scratch.get("pp", size, p.dtype), scratch.get("tt", size, p.dtype)
    n, *sums, centre_, shifted, m2_y, min_y, max_y = kernel.window_sums(
        p, t, v, pp, tt, centre, alone
    )
    return _WindowSums(n, np.array(sums), centre_, shifted, m2_y, min_y, max_y)


def _window_sums_numpy(
    p: np.ndarray,
    t: np.ndarray,
    v: np.ndarray | None,
    scratch: _Scratch,
    centre: float | None,
    alone: bool,
) -> _WindowSums:
    """Statistics of one window with numpy alone (1-D ``p``, ``t`` and ``v``; ``v`` None:
    all valid).

    The valid values are gathered straight into two float64 buffers (``err``, ``y``), then
    each statistic is one numpy pass over them while they are in cache. numpy's pairwise
    sums, not BLAS dot products: single-threaded and deterministic.

    ``m2_y``: a window ``alone`` in its chip subtracts its mean (the two-pass formula).
    Otherwise the target is first shifted by ``centre`` (the first window's mean, the same
    for every window; ``None``: this window's), so that the windows' means, which pool
    their ``m2_y``, are sums of small shifted values, accurate however far the target is
    from 0.
    """
    size = p.size
    err, y = scratch.get("err", size, np.float64), scratch.get("y", size, np.float64)
    if v is None:
        n = size
        np.copyto(err, p)
        np.copyto(y, t)
        extremes = t  # min and max in the input dtype: no pass over float64
    else:
        n = 0
        for a in range(0, size, _GATHER):
            keep = v[a : a + _GATHER]
            k = int(np.count_nonzero(keep))
            if k:  # np.copyto casts faster than a slice assignment does
                whole = k == keep.size
                np.copyto(err[n : n + k], p[a : a + k] if whole else p[a : a + keep.size][keep])
                np.copyto(y[n : n + k], t[a : a + k] if whole else t[a : a + keep.size][keep])
            n += k
        err, y = err[:n], y[:n]
        extremes = y
    err -= y
    sum_err, sum_y = err.sum(), y.sum()
    m2_y, shifted_sum, min_y, max_y = 0.0, 0.0, math.inf, -math.inf
    if centre is None:
        centre = float(sum_y / n) if n else 0.0
    if n:  # + 0.0: a zero extreme is +0.0 whichever zero numpy's min or max picked
        min_y, max_y = float(extremes.min()) + 0.0, float(extremes.max()) + 0.0
    if n and math.isfinite(sum_y):  # otherwise the chip is refused: no m2_y, no warnings
        y -= centre
        if not alone:
            shifted_sum = float(y.sum())
            y -= shifted_sum / n
        m2_y = float(np.square(y, out=y).sum())
    sum_abs_err = np.abs(err, out=y).sum()
    sum_sq_err = np.square(err, out=err).sum()
    sums = np.array([sum_err, sum_sq_err, sum_abs_err, sum_y], dtype=np.float64)
    return _WindowSums(n, sums, centre, shifted_sum, m2_y, min_y, max_y)


def _ndvi(
    pred: np.ndarray,
    target: np.ndarray,
    valid: np.ndarray | None,
    scratch: _Scratch,
    with_ssim: bool,
    out: type[NdviStats] = NdviStats,
) -> NdviStats:
    """One read of the chip, a window at a time (:data:`_WINDOW`).

    A chip of one window (up to 512 x 512) gives the bits of the plain formulas: the sums
    of ``err``, ``err^2``, ``|err|`` and ``y`` over the valid pixels and
    ``m2_y = sum((y - mean)^2)``, each a numpy sum over all valid pixels. A larger chip
    adds its windows' sums along numpy's own summation tree (without a mask: the same bits
    again) and pools ``m2_y`` from the windows' (Chan et al., on the shifted target: see
    :func:`_window_sums_numpy`), within about 1e-15 of the two-pass value.
    """
    p, t = np.asarray(pred), np.asarray(target)
    for name, arr in (("pred", p), ("target", t)):
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    _same_shape(p, t)
    v = _valid(valid, p.shape)
    pf, tf = p.ravel(), t.ravel()
    vf = None if v is None else v.ravel()
    compiled = kernel.takes(pf, tf, vf)
    if compiled and pf.size <= _WINDOW:  # one window: the kernel's numbers as they are
        n, sum_err, sum_sq_err, sum_abs_err, sum_y, _, _, m2_y, min_y, max_y = kernel.window_sums(
            pf,
            tf,
            vf,
            scratch.get("pp", pf.size, pf.dtype),
            scratch.get("tt", pf.size, pf.dtype),
            None,
            True,
        )
        _refuse_non_finite(sum_sq_err, sum_y)
        ssim = _ssim_sum(p, t, v, scratch) if with_ssim else math.nan
        values = (n, p.size, sum_err, sum_sq_err, sum_abs_err, sum_y, m2_y, min_y, max_y, ssim)
        return out(*(np.asarray(x, dtype=np.float64) for x in values))
    if not compiled and vf is not None and vf.all():  # numpy gathers nothing then
        vf = None
    ranges = _windows(pf.size, _WINDOW)
    parts: list[_WindowSums] = []
    centre: float | None = None
    for a, b in ranges:
        args = (pf[a:b], tf[a:b], None if vf is None else vf[a:b], scratch, centre)
        alone = len(ranges) == 1
        w = _window_sums_compiled(*args, alone) if compiled else _window_sums_numpy(*args, alone)
        if centre is None and w.n:  # the first window with valid pixels sets it
            centre = w.centre
        parts.append(w)
    sums = (
        parts[0].sums if len(parts) == 1 else _tree_sum((w.sums for w in parts), pf.size, _WINDOW)
    )
    sum_err, sum_sq_err, sum_abs_err, sum_y = (float(x) for x in sums)
    _refuse_non_finite(sum_sq_err, sum_y)
    n = sum(w.n for w in parts)
    values = {
        "n": n,
        "n_pixels": p.size,
        "sum_err": sum_err,
        "sum_sq_err": sum_sq_err,
        "sum_abs_err": sum_abs_err,
        "sum_y": sum_y,
        "m2_y": _pooled_window_m2(parts, n),
        "min_y": min(w.min_y for w in parts),
        "max_y": max(w.max_y for w in parts),
        "ssim_sum": _ssim_sum(p, t, v, scratch) if with_ssim else math.nan,
    }
    return out(**{k: np.asarray(x, dtype=np.float64) for k, x in values.items()})


def _refuse_non_finite(sum_sq_err: float, sum_y: float) -> None:
    """A NaN or inf at a valid pixel makes the sum of squared errors or of the target so."""
    if not (math.isfinite(sum_sq_err) and math.isfinite(sum_y)):
        raise ValueError("pred or target holds NaN or inf at valid pixels")


def _pooled_window_m2(parts: Sequence[_WindowSums], n: int) -> float:
    """``m2_y`` of the whole chip from its windows' (Chan et al.): the windows' own plus
    each window's count times its mean's squared distance from the chip's mean, both
    means of the target shifted by the windows' common centre. A chip of one window has
    its window's."""
    if len(parts) == 1:
        return parts[0].m2_y
    if not n:
        return 0.0
    counts = np.array([w.n for w in parts], dtype=np.float64)
    shifted = np.array([w.shifted_sum for w in parts], dtype=np.float64)
    means = np.divide(shifted, counts, out=np.zeros_like(counts), where=counts > 0)
    dev = means - shifted.sum() / n
    within = np.array([w.m2_y for w in parts], dtype=np.float64)
    return float(within.sum() + (counts * dev * dev).sum())


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


def ssim_map(x: np.ndarray, y: np.ndarray, data_range: float = NDVI_DATA_RANGE) -> np.ndarray:
    """The SSIM map of two 2-D images (Wang et al., 2004) with an 11 x 11 Gaussian window.

    Local means, variances and covariance are Gaussian-weighted (sigma 1.5 pixels, cut at
    5 pixels, ``scipy.ndimage.gaussian_filter`` with ``mode="reflect"``, i.e. the image is
    mirrored at its edges, so the map has the image's shape). Variances are weighted
    population variances (no n - 1 correction).

    >>> x = np.linspace(-1, 1, 64).reshape(8, 8)
    >>> bool(np.allclose(ssim_map(x, x), 1.0))
    True
    """
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"SSIM needs two 2-D images of one shape, got {x.shape} and {y.shape}")
    return _ssim_map(x, y, None, _Scratch(), data_range).copy()


def _ssim_map(
    x: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray | None,
    scratch: _Scratch,
    data_range: float = NDVI_DATA_RANGE,
) -> np.ndarray:
    """The SSIM map in a scratch buffer; pixels outside ``valid`` are set to 0 first."""
    from scipy.ndimage import gaussian_filter  # scipy's import is slow; only when used

    shape, size = x.shape, x.size

    def buf(name: str) -> np.ndarray:
        return scratch.get(f"ssim_{name}", size, np.float64, shape)

    a, b = buf("a"), buf("b")
    if valid is None:
        np.copyto(a, x)
        np.copyto(b, y)
    else:  # where= keeps NaN outside the mask out of the arithmetic
        a.fill(0.0)
        b.fill(0.0)
        np.copyto(a, x, where=valid)
        np.copyto(b, y, where=valid)

    def blur(img: np.ndarray, out: np.ndarray) -> np.ndarray:
        return gaussian_filter(
            img, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect", output=out
        )

    mu_a, mu_b, work = blur(a, buf("mu_a")), blur(b, buf("mu_b")), buf("work")
    e_aa = blur(np.multiply(a, a, out=work), buf("e_aa"))
    e_bb = blur(np.multiply(b, b, out=work), buf("e_bb"))
    e_ab = blur(np.multiply(a, b, out=work), buf("e_ab"))
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_ab = np.multiply(mu_a, mu_b, out=work)
    cov = np.subtract(e_ab, mu_ab, out=e_ab)
    # numerator (2 mu_a mu_b + C1)(2 cov + C2), into ``work``
    num = np.multiply(mu_ab, 2.0, out=work)
    num += c1
    cov *= 2.0
    cov += c2
    num *= cov
    # denominator (mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2), into ``mu_a``
    mu_a *= mu_a
    mu_b *= mu_b
    mu_a += mu_b
    var = np.add(e_aa, e_bb, out=e_aa)
    var -= mu_a
    var += c2
    mu_a += c1
    mu_a *= var
    num /= mu_a
    return num


def _ssim_sum(
    pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None, scratch: _Scratch
) -> float:
    if pred.ndim != 2:
        raise ValueError(f"SSIM needs a 2-D chip, got shape {pred.shape}")
    if valid is not None and not valid.any():
        return 0.0
    smap = _ssim_map(pred, target, valid, scratch)
    return float(smap.sum() if valid is None else smap.sum(where=valid))


def ssim_sum(pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Sum over the valid pixels of the SSIM map of the chip with invalid pixels set to 0.

    Setting non-farm pixels to 0 in both images (the source competition's convention) keeps
    the window well defined at every pixel; only the valid pixels' SSIM values count.

    >>> ssim_sum(np.zeros((4, 4)), np.zeros((4, 4)), np.eye(4))
    4.0
    """
    p, t = np.asarray(pred), np.asarray(target)
    _same_shape(p, t)
    return _ssim_sum(p, t, _valid(valid, p.shape), _Scratch())
