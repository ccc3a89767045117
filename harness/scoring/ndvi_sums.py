"""The ndvi sums of a chip: one read, a window at a time, on the compiled kernel where it
takes the dtypes (:mod:`harness.scoring.kernel`) and with numpy otherwise, to the same bits.
:func:`chip_sums` gives every ndvi statistic but SSIM."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from harness.scoring import kernel
from harness.scoring.arrays import Scratch

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
    scratch: Scratch,
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
    scratch: Scratch,
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


def chip_sums(
    pf: np.ndarray, tf: np.ndarray, vf: np.ndarray | None, scratch: Scratch
) -> tuple[int, float, float, float, float, float, float, float]:
    """``(n, sum_err, sum_sq_err, sum_abs_err, sum_y, m2_y, min_y, max_y)`` of one chip's
    raveled ``pf``, ``tf`` and ``vf`` (None: every pixel valid), a window at a time
    (:data:`_WINDOW`).

    A chip of one window (up to 512 x 512) gives the bits of the plain formulas: the sums
    of ``err``, ``err^2``, ``|err|`` and ``y`` over the valid pixels and
    ``m2_y = sum((y - mean)^2)``, each a numpy sum over all valid pixels. A larger chip
    adds its windows' sums along numpy's own summation tree (without a mask: the same bits
    again) and pools ``m2_y`` from the windows' (Chan et al., on the shifted target: see
    :func:`_window_sums_numpy`), within about 1e-15 of the two-pass value. A NaN or inf at
    a valid pixel is refused (``ValueError``).
    """
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
        return n, sum_err, sum_sq_err, sum_abs_err, sum_y, m2_y, min_y, max_y
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
    min_y, max_y = min(w.min_y for w in parts), max(w.max_y for w in parts)
    m2_y = _pooled_window_m2(parts, n)
    return n, sum_err, sum_sq_err, sum_abs_err, sum_y, m2_y, min_y, max_y


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
