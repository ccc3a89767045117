"""How sure a score is: bootstrap intervals, paired tests between entries, seed summaries.

Everything works on per-chip sufficient statistics (:mod:`harness.scoring.metrics`). A
resample of chips is a row of weights (how often each chip is drawn), so ``B`` resamples
of ``C`` chips are one ``(B, C)`` matrix and their statistics one matrix product; the
metric is then computed for all resamples at once. 10,000 resamples of 1,000 chips take a
fraction of a second.

Randomness comes from ``numpy.random.default_rng(seed)`` only, so a result is reproduced
exactly by its seed. Resamples are drawn in blocks of 1,000 rows, always in the same order,
so the result does not depend on memory or chunking.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.errors import SarbenchError
from harness.scoring.metrics import ChipStats, Direction, Metric, better_of, get_metric

DEFAULT_RESAMPLES = 10_000
DEFAULT_LEVEL = 0.95
BOOTSTRAP_METHOD = "percentile bootstrap over chips (quantiles: numpy 'linear')"
PERMUTATION_METHOD = "paired permutation test: each chip's two predictions swapped at random"
_BLOCK = 1_000


class ChipMismatchError(SarbenchError):
    """Two entries compared on different chips."""


def json_float(x: float) -> float | str | None:
    """A float for strict JSON: ``nan`` (undefined) -> ``None``; infinities -> ``"inf"``
    / ``"-inf"``; anything else unchanged."""
    v = float(x)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _check_args(n_resamples: int, level: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")


def resample_weights(
    n_chips: int, n_resamples: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Bootstrap resamples of ``n_chips`` chips as blocks of weight rows.

    Each row draws ``n_chips`` chip indices uniformly with replacement and counts them
    (``bincount`` over the flattened block), so row ``b`` sums to ``n_chips``.
    """
    for start in range(0, n_resamples, _BLOCK):
        rows = min(_BLOCK, n_resamples - start)
        idx = rng.integers(0, n_chips, size=(rows, n_chips))
        idx += np.arange(rows)[:, np.newaxis] * n_chips
        counts = np.bincount(idx.ravel(), minlength=rows * n_chips)
        yield counts.reshape(rows, n_chips).astype(np.float64)


def _metric(stats: ChipStats, metric: str | Metric) -> Metric:
    return metric if isinstance(metric, Metric) else get_metric(stats.task, metric)


def _values(m: Metric, stats: ChipStats) -> np.ndarray:
    return np.atleast_1d(np.asarray(m(stats), dtype=np.float64))


@dataclass(frozen=True)
class Interval:
    """A metric's pooled value and its bootstrap confidence interval.

    ``n_undefined`` resamples where the metric is undefined (e.g. no flood pixel drawn at
    all) are left out of the quantiles; ``low``/``high`` are ``nan`` if all are.
    """

    metric: str
    estimate: float
    low: float
    high: float
    level: float
    n_resamples: int
    n_undefined: int
    seed: int
    method: str = BOOTSTRAP_METHOD

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("estimate", "low", "high"):
            d[key] = json_float(d[key])
        return d


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float, int]:
    ok = values[~np.isnan(values)]
    if ok.size == 0:
        return math.nan, math.nan, int(values.size)
    alpha = 1.0 - level
    low, high = np.quantile(ok, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high), int(values.size - ok.size)


def bootstrap_ci(
    stats: ChipStats,
    metric: str | Metric,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of a pooled metric, resampling chips.

    ``stats`` is a table of chips (one row each). Every resample draws as many chips as
    the table has, with replacement, pools their statistics and computes the metric; the
    interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those values.

    >>> import numpy as np
    >>> from harness.scoring.metrics import FloodStats
    >>> chips = FloodStats(tp=np.array([8, 5, 9]), fp=np.array([2, 5, 1]),
    ...                    fn=np.array([0, 0, 0]), tn=np.array([90, 90, 90]))
    >>> ci = bootstrap_ci(chips, "iou", n_resamples=2000, seed=1)
    >>> round(ci.estimate, 4), ci.low <= ci.estimate <= ci.high
    (0.7333, True)
    """
    _check_args(n_resamples, level)
    m = _metric(stats, metric)
    estimate = float(m(stats.pooled()))
    if len(stats) == 0:
        return Interval(m.name, estimate, math.nan, math.nan, level, n_resamples, 0, seed)
    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [
            _values(m, stats.combine(w, m.needs))
            for w in resample_weights(len(stats), n_resamples, rng)
        ]
    )
    low, high, undefined = _percentiles(values, level)
    return Interval(m.name, estimate, low, high, level, n_resamples, undefined, seed)


@dataclass(frozen=True)
class PairedComparison:
    """Entry A against entry B on the same chips, for one metric.

    ``difference`` is metric(A) - metric(B), pooled; ``low``/``high`` its paired
    bootstrap interval (both entries resampled with the same chips); ``p_value`` the
    two-sided p-value of a paired permutation test of "A and B are exchangeable on every
    chip", computed as (1 + #{|d*| >= |d|}) / (1 + permutations), so it is never 0.
    ``better`` is ``"a"``, ``"b"``, ``"tie"`` or ``"undefined"`` by the two values and the
    metric's direction, whatever the p-value.
    """

    metric: str
    direction: Direction
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    level: float
    n_chips: int
    n_resamples: int
    n_permutations: int
    seed: int
    interval_method: str = BOOTSTRAP_METHOD
    test_method: str = PERMUTATION_METHOD

    @property
    def better(self) -> str:
        return better_of(self.direction, self.a, self.b)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("a", "b", "difference", "low", "high", "p_value"):
            d[key] = json_float(d[key])
        d["better"] = self.better
        return d


def align_chips(
    a_ids: Sequence[str], a: ChipStats, b_ids: Sequence[str], b: ChipStats
) -> ChipStats:
    """``b`` reordered to ``a_ids``; chip sets that differ are a :class:`ChipMismatchError`."""
    for name, ids, stats in (("A", a_ids, a), ("B", b_ids, b)):
        if len(ids) != len(stats):
            raise ValueError(f"entry {name}: {len(ids)} chip ids for {len(stats)} rows of stats")
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if list(ids).count(i) > 1})[:5]
            raise ChipMismatchError(f"entry {name} lists chips more than once: {dup}")
    only_a, only_b = sorted(set(a_ids) - set(b_ids)), sorted(set(b_ids) - set(a_ids))
    if only_a or only_b:
        raise ChipMismatchError(
            "the two entries were scored on different chips "
            f"({len(only_a)} only in A, e.g. {only_a[:5]}; {len(only_b)} only in B, e.g. "
            f"{only_b[:5]}); compare results of the same dataset and split"
        )
    pos = {sid: i for i, sid in enumerate(b_ids)}
    return b.take([pos[sid] for sid in a_ids])


def paired_test(
    a_ids: Sequence[str],
    a: ChipStats,
    b_ids: Sequence[str],
    b: ChipStats,
    metric: str | Metric,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_permutations: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> PairedComparison:
    """Compare two entries chip by chip (matched by id) on a pooled metric.

    The interval resamples chips with the same weights for both entries. The test swaps
    A's and B's statistics on a random half of the chips (each chip independently), which
    is the null hypothesis "no difference", and counts differences at least as large.

    >>> import numpy as np
    >>> from harness.scoring.metrics import FloodStats
    >>> good = FloodStats(tp=np.full(30, 9), fp=np.full(30, 1), fn=np.full(30, 1),
    ...                   tn=np.full(30, 89))
    >>> bad = FloodStats(tp=np.full(30, 5), fp=np.full(30, 5), fn=np.full(30, 5),
    ...                  tn=np.full(30, 85))
    >>> ids = [f"c{i}" for i in range(30)]
    >>> r = paired_test(ids, good, ids, bad, "iou", n_resamples=500, n_permutations=500)
    >>> round(r.difference, 4), r.better, r.p_value < 0.01
    (0.4848, 'a', True)
    """
    _check_args(n_resamples, level)
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    if a.task != b.task:
        raise ChipMismatchError(f"cannot compare a {a.task!r} entry with a {b.task!r} entry")
    b = align_chips(a_ids, a, b_ids, b)
    m = _metric(a, metric)
    value_a, value_b = float(m(a.pooled())), float(m(b.pooled()))
    diff = value_a - value_b
    n = len(a)
    rng = np.random.default_rng(seed)
    if n == 0:
        boot = np.full(1, math.nan)
    else:
        boot = np.concatenate(
            [
                _values(m, a.combine(w, m.needs)) - _values(m, b.combine(w, m.needs))
                for w in resample_weights(n, n_resamples, rng)
            ]
        )
    low, high, _ = _percentiles(boot, level)
    both = a.concat(b)
    perm: list[np.ndarray] = []
    for start in range(0, n_permutations, _BLOCK):
        rows = min(_BLOCK, n_permutations - start)
        swap = rng.integers(0, 2, size=(rows, n)).astype(np.float64)
        keep = 1.0 - swap
        first = both.combine(np.hstack([keep, swap]), m.needs)
        second = both.combine(np.hstack([swap, keep]), m.needs)
        perm.append(_values(m, first) - _values(m, second))
    d_perm = np.concatenate(perm)
    d_perm = d_perm[~np.isnan(d_perm)]
    if math.isnan(diff):
        p_value = math.nan
    else:
        tol = 1e-12 * max(1.0, abs(diff))
        extreme = int(np.count_nonzero(np.abs(d_perm) >= abs(diff) - tol))
        p_value = (1 + extreme) / (1 + d_perm.size)
    return PairedComparison(
        metric=m.name,
        direction=m.direction,
        a=value_a,
        b=value_b,
        difference=diff,
        low=low,
        high=high,
        p_value=p_value,
        level=level,
        n_chips=n,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        seed=seed,
    )


@dataclass(frozen=True)
class SeedSummary:
    """A metric over several training seeds: mean and sample standard deviation.

    ``std`` uses n - 1 (Bessel) and is ``nan`` for a single seed; any undefined (``nan``)
    value makes ``mean`` and ``std`` ``nan`` too: runs are not dropped silently.
    """

    n: int
    mean: float
    std: float
    min: float
    max: float
    values: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": json_float(self.mean),
            "std": json_float(self.std),
            "min": json_float(self.min),
            "max": json_float(self.max),
            "values": [json_float(v) for v in self.values],
        }


def across_seeds(values: Mapping[int, float] | Sequence[float]) -> SeedSummary:
    """Mean and standard deviation of one metric across seeds (``{seed: value}`` or a list).

    >>> s = across_seeds({0: 0.70, 1: 0.74, 2: 0.72})
    >>> round(s.mean, 6), round(s.std, 6)
    (0.72, 0.02)
    """
    vals = list(values.values()) if isinstance(values, Mapping) else list(values)
    if not vals:
        raise ValueError("across_seeds needs at least one value")
    arr = np.asarray(vals, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return SeedSummary(
        n=int(arr.size),
        mean=float(arr.mean()),
        std=std,
        min=float(arr.min()),
        max=float(arr.max()),
        values=tuple(float(v) for v in arr),
    )
