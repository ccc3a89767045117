"""How sure a score is: bootstrap intervals, paired tests between entries, seed summaries.

Everything works on per-chip sufficient statistics (:mod:`harness.scoring.metrics`). A
resample of chips is a row of weights (how often each chip is drawn), so ``B`` resamples
of ``C`` chips are one ``(B, C)`` matrix and their statistics one matrix product; the
metric is then computed for all resamples at once. 10,000 resamples of 1,000 chips take a
fraction of a second.

Chips of a test set are not independent when they share a place or an event (adjacent
tiles of one flood, dates of one location). Every function takes ``groups``: one
*independence group* label per chip (the dataset manifest names them). The bootstrap then
resamples whole groups and the paired test swaps the two entries on whole groups; without
``groups`` every chip is its own group, which is right only if chips are independent (with
correlated chips the interval is too narrow and the p-value too small).

The paired comparison's interval is the inverted permutation test, so its mark
(:meth:`PairedComparison.significant_at`), its p-value and its interval always agree;
:func:`holm` and :func:`effective_alpha` carry that agreement over to several comparisons.

Randomness comes from ``numpy.random.default_rng(seed)`` only, so a result is reproduced
exactly by its seed. Resamples are drawn in blocks of 1,000 rows, always in the same order,
so the result does not depend on memory or chunking.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from harness.errors import SarbenchError
from harness.scoring.metrics import ChipStats, Direction, Metric, better_of, get_metric

DEFAULT_RESAMPLES = 10_000
DEFAULT_LEVEL = 0.95
BOOTSTRAP_METHOD = "percentile bootstrap over chips (quantiles: numpy 'linear')"
GROUP_BOOTSTRAP_METHOD = "percentile bootstrap over independence groups (quantiles: numpy 'linear')"
PERMUTATION_METHOD = (
    "sign-flip permutation test over chips: A's and B's statistics swapped on each chip "
    "with probability 1/2"
)
GROUP_PERMUTATION_METHOD = (
    "sign-flip permutation test over independence groups: A's and B's statistics swapped "
    "on all chips of each group with probability 1/2"
)
INVERTED_METHOD = (
    "sign-flip permutation over chips; interval by inverting the test: "
    "d ± the (1-alpha) quantile of |d*|"
)
GROUP_INVERTED_METHOD = (
    "sign-flip permutation over independence groups; interval by inverting the test: "
    "d ± the (1-alpha) quantile of |d*|"
)
_BLOCK = 1_000
_TOL = 1e-12
"""Relative tolerance under which a permutation difference counts as large as the observed
one (sums of the same numbers in another order differ in the last bits)."""


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


def group_index(n_chips: int, groups: Sequence[Hashable] | None) -> tuple[np.ndarray, int]:
    """Each chip's group as an index ``0..G-1`` (groups numbered by first appearance) and
    the number of groups ``G``. ``groups=None``: every chip its own group.

    >>> idx, n = group_index(5, ["north", "south", "north", "east", "south"])
    >>> idx.tolist(), n
    ([0, 1, 0, 2, 1], 3)
    """
    if groups is None:
        return np.arange(n_chips, dtype=np.intp), n_chips
    labels = list(groups)
    if len(labels) != n_chips:
        raise ValueError(f"{len(labels)} group labels for {n_chips} chips")
    number: dict[Hashable, int] = {}
    idx = np.fromiter((number.setdefault(g, len(number)) for g in labels), np.intp, n_chips)
    return idx, len(number)


def resample_weights(
    n_chips: int,
    n_resamples: int,
    rng: np.random.Generator,
    groups: Sequence[Hashable] | None = None,
) -> Iterator[np.ndarray]:
    """Bootstrap resamples of ``n_chips`` chips as blocks of weight rows.

    Each row draws ``G`` group indices uniformly with replacement (``G``: the number of
    distinct ``groups``, numbered by first appearance) and counts them (``bincount`` over
    the flattened block); every chip gets its group's count. Without ``groups`` every chip
    is its own group, so row ``b`` draws ``n_chips`` chips and sums to ``n_chips``; with
    all-distinct labels the rows are the same as without.

    >>> rng = np.random.default_rng(0)
    >>> w = next(resample_weights(4, 3, rng, groups=["a", "a", "b", "b"]))
    >>> bool((w[:, 0] == w[:, 1]).all() and (w[:, 2] == w[:, 3]).all() and (w.sum(1) == 4).all())
    True
    """
    idx, n_groups = group_index(n_chips, groups)
    for start in range(0, n_resamples, _BLOCK):
        rows = min(_BLOCK, n_resamples - start)
        draw = rng.integers(0, n_groups, size=(rows, n_groups))
        draw += np.arange(rows)[:, np.newaxis] * n_groups
        counts = np.bincount(draw.ravel(), minlength=rows * n_groups)
        counts = counts.reshape(rows, n_groups).astype(np.float64)
        yield counts if groups is None else counts[:, idx]


def _metric(stats: ChipStats, metric: str | Metric) -> Metric:
    return metric if isinstance(metric, Metric) else get_metric(stats.task, metric)


def _values(m: Metric, stats: ChipStats) -> np.ndarray:
    return np.atleast_1d(np.asarray(m(stats), dtype=np.float64))


def _unit(groups: Sequence[Hashable] | None) -> str:
    return "chip" if groups is None else "group"


@dataclass(frozen=True)
class Interval:
    """A metric's pooled value and its bootstrap confidence interval.

    ``n_undefined`` resamples where the metric is undefined (e.g. no flood pixel drawn at
    all) are left out of the quantiles; ``low``/``high`` are ``nan`` if all are. ``unit``
    is what was resampled (``"chip"`` or ``"group"``: an independence group) and
    ``n_units`` how many there are (0: not recorded). With a single unit every resample is
    the whole set and the interval is the point ``[estimate, estimate]``: it then says
    nothing about uncertainty.
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
    unit: str = "chip"
    n_units: int = 0

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
    groups: Sequence[Hashable] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of a pooled metric, resampling independence groups.

    ``stats`` is a table of chips (one row each); ``groups`` gives each chip's independence
    group (``None``: every chip its own group). Every resample draws as many groups as
    there are, with replacement, pools the statistics of all their chips (a group drawn
    twice counts twice) and computes the metric; the interval is the ``(1 - level) / 2``
    and ``(1 + level) / 2`` quantiles of those values. A resample has as many chips as the
    table only when groups are of equal size.

    >>> import numpy as np
    >>> from harness.scoring.metrics import FloodStats
    >>> chips = FloodStats(tp=np.array([8, 5, 9]), fp=np.array([2, 5, 1]),
    ...                    fn=np.array([0, 0, 0]), tn=np.array([90, 90, 90]))
    >>> ci = bootstrap_ci(chips, "iou", n_resamples=2000, seed=1)
    >>> round(ci.estimate, 4), ci.low <= ci.estimate <= ci.high, ci.unit, ci.n_units
    (0.7333, True, 'chip', 3)
    >>> by_place = bootstrap_ci(chips, "iou", groups=["x", "x", "y"], n_resamples=2000)
    >>> by_place.unit, by_place.n_units
    ('group', 2)
    """
    _check_args(n_resamples, level)
    m = _metric(stats, metric)
    estimate = float(m(stats.pooled()))
    _, n_units = group_index(len(stats), groups)
    unit = _unit(groups)
    method = BOOTSTRAP_METHOD if groups is None else GROUP_BOOTSTRAP_METHOD
    if len(stats) == 0:
        return Interval(
            m.name, estimate, math.nan, math.nan, level, n_resamples, 0, seed, method, unit, 0
        )
    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [
            _values(m, stats.combine(w, m.needs))
            for w in resample_weights(len(stats), n_resamples, rng, groups)
        ]
    )
    low, high, undefined = _percentiles(values, level)
    return Interval(
        m.name, estimate, low, high, level, n_resamples, undefined, seed, method, unit, n_units
    )


def _extreme_from(diff: float) -> float:
    """A permutation difference counts as extreme (as large as ``diff``) when its absolute
    value is at least this: ``|diff|`` less a relative tolerance of 1e-12."""
    size = abs(diff)
    return size - _TOL * max(1.0, size) if math.isfinite(diff) else size


def _k_star(alpha: float, n_null: int) -> int:
    """The largest ``k`` in ``0..n_null`` with ``(1 + k) / (1 + n_null) < alpha``, computed
    with the same float division as the p-value; ``-1`` if there is none."""
    n = 1 + n_null
    k = min(max(math.ceil(alpha * n) - 2, -1), n_null)
    while k >= 0 and not (1 + k) / n < alpha:
        k -= 1
    while k < n_null and (2 + k) / n < alpha:
        k += 1
    return k


@dataclass(frozen=True)
class PairedComparison:
    """Entry A against entry B on the same chips, for one metric.

    ``difference`` is d = metric(A) - metric(B), pooled. ``p_value`` is the two-sided
    p-value of a sign-flip permutation test of "A and B are exchangeable within every
    independence group" (``unit`` ``"group"``; ``"chip"``: every chip its own group): each
    permutation swaps A's and B's statistics on all chips of a random subset of the groups
    (each group with probability 1/2) and gives a difference d*;
    p = (1 + #{|d*| >= |d|}) / (1 + P) over the P permutations whose d* is defined, so it
    is never 0.

    The interval comes from the same permutations, by inverting the test:
    :meth:`interval_at` ``(alpha)`` is d ± q(alpha), q(alpha) the (k* + 1)-th largest
    |d*|, k* the largest k with (1 + k) / (1 + P) < alpha (q = inf where there is none). So
    ``significant_at(alpha)`` == ``p_value < alpha`` == 0 lies outside the closed interval
    at ``alpha``, exactly, for every alpha (for a defined ``difference``; a |d*| within a
    relative 1e-12 below |d| counts as large as |d| in all three: the same numbers summed
    in another order differ in the last bits). ``low``/``high`` are
    ``interval_at(1 - level)``. The interval is centred on d: it is the set of shifts the
    test does not tell from d, not a bootstrap of the difference.

    ``null_abs_differences`` (the defined |d*|, largest first) stays on the object for
    :meth:`interval_at`; it is not serialised, compared or shown. ``n_resamples`` is kept
    for callers and records; no bootstrap is drawn any more. ``better`` is ``"a"``,
    ``"b"``, ``"tie"`` or ``"undefined"`` by the two values and the metric's direction,
    whatever the p-value.
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
    interval_method: str = INVERTED_METHOD
    test_method: str = PERMUTATION_METHOD
    unit: str = "chip"
    n_units: int = 0
    null_abs_differences: np.ndarray = field(
        default_factory=lambda: np.zeros(0), repr=False, compare=False
    )

    @property
    def better(self) -> str:
        return better_of(self.direction, self.a, self.b)

    def half_width(self, alpha: float) -> float:
        """q(alpha): the interval at ``alpha`` is ``difference`` ± q(alpha); ``inf`` where
        no p-value of this test can fall below ``alpha`` (too few permutations or groups),
        ``nan`` for an undefined difference or ``alpha``."""
        if math.isnan(alpha) or math.isnan(self.difference):
            return math.nan
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie within [0, 1], got {alpha}")
        null = self.null_abs_differences
        k = _k_star(alpha, int(null.size))
        if k < 0:
            return math.inf
        # A |d*| that counts as extreme for the p-value (>= |d| - tolerance) counts as |d|
        # at least here, so that |d| > q exactly when p < alpha.
        q, size = float(null[k]), abs(self.difference)
        return max(q, size) if q >= _extreme_from(self.difference) else q

    def interval_at(self, alpha: float) -> tuple[float, float]:
        """The interval of the difference at significance level ``alpha`` (confidence
        1 - alpha): ``(d - q, d + q)``; ``(-inf, inf)`` where q is infinite, ``(nan, nan)``
        for an undefined difference. It excludes 0 exactly when ``p_value < alpha``."""
        q = self.half_width(alpha)
        if math.isnan(q):
            return math.nan, math.nan
        if math.isinf(q):
            return -math.inf, math.inf
        return self.difference - q, self.difference + q

    def significant_at(self, alpha: float) -> bool:
        """``p_value < alpha`` (False for an undefined difference): the same verdict as 0
        outside :meth:`interval_at` ``(alpha)``."""
        return bool(self.p_value < alpha)

    def to_dict(self) -> dict[str, Any]:
        d = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "null_abs_differences"
        }
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
    groups: Sequence[Hashable] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_permutations: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> PairedComparison:
    """Compare two entries chip by chip (matched by id) on a pooled metric.

    ``groups`` gives each chip's independence group, in ``a_ids`` order (``None``: every
    chip its own group). Each of ``n_permutations`` permutations swaps A's and B's
    statistics on all chips of a random subset of the groups (each group independently
    with probability 1/2), which is the null hypothesis "no difference", and counts
    differences at least as large as the observed one. The interval inverts that test
    (see :class:`PairedComparison`). ``n_resamples`` is accepted for callers and recorded;
    nothing is bootstrapped.

    >>> import numpy as np
    >>> from harness.scoring.metrics import FloodStats
    >>> good = FloodStats(tp=np.full(30, 9), fp=np.full(30, 1), fn=np.full(30, 1),
    ...                   tn=np.full(30, 89))
    >>> bad = FloodStats(tp=np.full(30, 5), fp=np.full(30, 5), fn=np.full(30, 5),
    ...                  tn=np.full(30, 85))
    >>> ids = [f"c{i}" for i in range(30)]
    >>> r = paired_test(ids, good, ids, bad, "iou", n_permutations=500)
    >>> round(r.difference, 4), r.better, r.p_value < 0.01, r.low > 0
    (0.4848, 'a', True, True)
    >>> places = [f"place{i // 10}" for i in range(30)]  # 3 groups: 8 sign patterns
    >>> g = paired_test(ids, good, ids, bad, "iou", groups=places, n_permutations=500)
    >>> low, high = g.interval_at(0.05)
    >>> g.unit, g.n_units, g.p_value > 0.2, g.significant_at(0.05), low <= 0 <= high
    ('group', 3, True, False, True)
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
    idx, n_units = group_index(n, groups)
    rng = np.random.default_rng(seed)
    both = a.concat(b)
    perm: list[np.ndarray] = []
    for start in range(0, n_permutations, _BLOCK):
        rows = min(_BLOCK, n_permutations - start)
        swap = rng.integers(0, 2, size=(rows, n_units)).astype(np.float64)
        if groups is not None:
            swap = swap[:, idx]
        keep = 1.0 - swap
        first = both.combine(np.hstack([keep, swap]), m.needs)
        second = both.combine(np.hstack([swap, keep]), m.needs)
        perm.append(_values(m, first) - _values(m, second))
    d_perm = np.concatenate(perm)
    null = -np.sort(-np.abs(d_perm[~np.isnan(d_perm)]))  # largest first
    if math.isnan(diff):
        p_value = math.nan
    else:
        extreme = int(np.count_nonzero(null >= _extreme_from(diff)))
        p_value = (1 + extreme) / (1 + null.size)
    result = PairedComparison(
        metric=m.name,
        direction=m.direction,
        a=value_a,
        b=value_b,
        difference=diff,
        low=math.nan,
        high=math.nan,
        p_value=p_value,
        level=level,
        n_chips=n,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        seed=seed,
        interval_method=INVERTED_METHOD if groups is None else GROUP_INVERTED_METHOD,
        test_method=PERMUTATION_METHOD if groups is None else GROUP_PERMUTATION_METHOD,
        unit=_unit(groups),
        n_units=n_units,
        null_abs_differences=null,
    )
    low, high = result.interval_at(1.0 - level)
    return replace(result, low=low, high=high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    With the m defined p-values sorted p(1) <= ... <= p(m), the adjusted p(i) is
    max over j <= i of min(1, (m - j + 1) p(j)): monotone in p, capped at 1. Rejecting
    where the adjusted p-value is below alpha keeps the chance of any false rejection among
    the m comparisons at most alpha. ``nan`` stays ``nan`` and is not counted in m.

    >>> holm([0.01, 0.04, 0.03, 0.005])
    [0.03, 0.06, 0.06, 0.02]
    >>> holm([0.2, float("nan"), 0.01])
    [0.2, nan, 0.02]
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    m = order.size
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * float(p[j])))
        out[j] = running
    return [float(v) for v in out]


def effective_alpha(p: float, p_adjusted: float, alpha: float) -> float:
    """The per-comparison level that matches an adjusted p-value's verdict:
    ``p < effective_alpha(p, p_adjusted, alpha)`` exactly when ``p_adjusted < alpha``
    (for ``p <= p_adjusted``, as Holm's are).

    It is ``alpha * p / p_adjusted`` (at most ``alpha``), nudged by one float step where
    rounding would break that equivalence; ``alpha`` where both p-values are 0 (a
    permutation p-value never is); ``nan`` where either is ``nan``. A leaderboard shows a
    comparison's interval at this level (``comparison.interval_at(effective_alpha(...))``),
    so the interval excludes 0 exactly when the Holm-adjusted mark says "significant".

    >>> p = [0.01, 0.04, 0.03, 0.005]
    >>> [round(effective_alpha(pi, qi, 0.05), 6) for pi, qi in zip(p, holm(p))]
    [0.016667, 0.033333, 0.025, 0.0125]
    """
    if math.isnan(p) or math.isnan(p_adjusted) or math.isnan(alpha):
        return math.nan
    if p > p_adjusted:
        raise ValueError(f"p = {p} exceeds its adjusted p-value {p_adjusted}")
    level = alpha if p_adjusted == 0.0 else min(alpha * p / p_adjusted, alpha)
    if p_adjusted < alpha and not p < level:
        level = math.nextafter(p, math.inf)
    elif not p_adjusted < alpha and p < level:
        level = p
    return level


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


def interval_note(n_units: int, groups: Sequence[str] | None) -> str | None:
    """Why a split's interval cannot be estimated, or None when it can.

    It cannot with fewer than 2 independence groups (a bootstrap over one group draws the
    whole split every time: its "interval" is the point estimate, which says nothing about
    uncertainty), nor with a single chip and no groups.

    >>> interval_note(1, ["Bolivia"] * 15)
    'n/a: the split has 1 independence group (Bolivia); an interval needs at least 2'
    >>> interval_note(1, None)
    'n/a: the split has a single chip and names no independence groups; an interval needs at least 2 chips'
    >>> interval_note(2, ["a", "b"]) is None
    True
    """
    if n_units >= 2:
        return None
    if groups is None:
        return (
            "n/a: the split has a single chip and names no independence groups; an interval "
            "needs at least 2 chips"
        )
    names = sorted(set(groups))
    shown = f" ({names[0]})" if len(names) == 1 else ""
    return (
        f"n/a: the split has {len(names)} independence group{'' if len(names) == 1 else 's'}"
        f"{shown}; an interval needs at least 2"
    )
