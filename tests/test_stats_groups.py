"""Statistics over independence groups: the cluster bootstrap, the sign-flip test by group,
its inverted interval, Holm's adjustment.

The two simulations are the acceptance tests of "chips are correlated within groups":
chips of one group (a place, an event) share a flood fraction and each entry's hit and
false-alarm rates there, so resampling or swapping chips one by one understates the
uncertainty. Run with ``-s`` to see the measured coverage and false-positive rates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.scoring import metrics as M
from harness.scoring.stats import (
    GROUP_BOOTSTRAP_METHOD,
    PairedComparison,
    bootstrap_ci,
    effective_alpha,
    group_index,
    holm,
    paired_test,
    resample_weights,
)

# --------------------------------------------------------------------------------------
# A test set whose chips are correlated within groups
# --------------------------------------------------------------------------------------

PIXELS = 400  # per chip
FLOOD = (0.1, 0.5)  # a group's flood fraction: uniform on this range
HIT = (0.5, 0.95)  # an entry's recall on a group
FALSE_ALARM = (0.01, 0.1)  # an entry's false-positive rate on a group's dry pixels
N_GROUPS = 25
REPETITIONS = 400


def _mid(r: tuple[float, float]) -> float:
    return (r[0] + r[1]) / 2


TRUE_IOU = _mid(FLOOD) * _mid(HIT) / (_mid(FLOOD) + (1 - _mid(FLOOD)) * _mid(FALSE_ALARM))
"""The pooled IoU of infinitely many groups: E[TP] / (E[TP] + E[FN] + E[FP]) per chip, the
group parameters being independent (group sizes are independent of them too)."""


def grouped_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each chip's group (25 groups of 5 to 10 chips) and its flooded pixel count."""
    group = np.repeat(np.arange(N_GROUPS), rng.integers(5, 11, N_GROUPS))
    wet = rng.binomial(PIXELS, rng.uniform(*FLOOD, N_GROUPS)[group])
    return group, wet


def grouped_entry(rng: np.random.Generator, group: np.ndarray, wet: np.ndarray) -> M.FloodStats:
    """An entry's confusion counts: its hit and false-alarm rates are drawn per group."""
    hit = rng.uniform(*HIT, N_GROUPS)[group]
    false_alarm = rng.uniform(*FALSE_ALARM, N_GROUPS)[group]
    tp = rng.binomial(wet, hit)
    fp = rng.binomial(PIXELS - wet, false_alarm)
    return M.FloodStats(tp=tp, fp=fp, fn=wet - tp, tn=PIXELS - wet - fp)


def test_group_bootstrap_covers_the_truth_and_the_chip_bootstrap_does_not() -> None:
    rng = np.random.default_rng(20240601)
    by_group = by_chip = 0
    for rep in range(REPETITIONS):
        group, wet = grouped_scene(rng)
        stats = grouped_entry(rng, group, wet)
        g = bootstrap_ci(stats, "iou", groups=group.tolist(), n_resamples=1000, seed=rep)
        c = bootstrap_ci(stats, "iou", n_resamples=1000, seed=rep)
        by_group += g.low <= TRUE_IOU <= g.high
        by_chip += c.low <= TRUE_IOU <= c.high
    cover_group, cover_chip = by_group / REPETITIONS, by_chip / REPETITIONS
    print(
        f"\n95% interval coverage over {REPETITIONS} test sets of {N_GROUPS} groups: "
        f"groups {cover_group:.3f}, chips {cover_chip:.3f}"
    )
    assert 0.90 <= cover_group <= 0.98
    assert cover_chip < 0.80


def test_group_sign_flip_test_holds_its_level_and_the_chip_test_does_not() -> None:
    rng = np.random.default_rng(20240602)
    by_group = by_chip = 0
    for rep in range(REPETITIONS):
        group, wet = grouped_scene(rng)
        a, b = grouped_entry(rng, group, wet), grouped_entry(rng, group, wet)  # null true
        ids = [f"c{i}" for i in range(len(group))]
        g = paired_test(ids, a, ids, b, "iou", groups=group.tolist(), n_permutations=500, seed=rep)
        c = paired_test(ids, a, ids, b, "iou", n_permutations=500, seed=rep)
        by_group += g.p_value < 0.05
        by_chip += c.p_value < 0.05
        assert g.significant_at(0.05) == (not g.low <= 0 <= g.high)
    fpr_group, fpr_chip = by_group / REPETITIONS, by_chip / REPETITIONS
    print(
        f"\nfalse positives at p < 0.05 over {REPETITIONS} null comparisons: "
        f"groups {fpr_group:.3f}, chips {fpr_chip:.3f}"
    )
    assert 0.02 <= fpr_group <= 0.09
    assert fpr_chip > 0.20


# --------------------------------------------------------------------------------------
# Mark, p-value and interval agree
# --------------------------------------------------------------------------------------


def random_comparisons(n: int, n_permutations: int) -> list[PairedComparison]:
    """Comparisons of entries from null to clearly different, few permutations so that
    p-values land on the grid (1 + k) / (1 + P) and many alphas hit it exactly."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        group, wet = grouped_scene(rng)
        a = grouped_entry(rng, group, wet)
        b = grouped_entry(rng, group, wet)
        if i % 3 == 0:  # a clearly better A on some
            better = rng.binomial(a.fn.astype(np.int64), 0.5)
            a = M.FloodStats(tp=a.tp + better, fp=a.fp, fn=a.fn - better, tn=a.tn)
        ids = [f"c{j}" for j in range(len(group))]
        groups = group.tolist() if i % 2 else None
        out.append(
            paired_test(ids, a, ids, b, "iou", groups=groups, n_permutations=n_permutations, seed=i)
        )
    return out


def _agree(r: PairedComparison, alpha: float) -> None:
    low, high = r.interval_at(alpha)
    assert r.significant_at(alpha) == (r.p_value < alpha) == (not low <= 0 <= high), (
        r.p_value,
        alpha,
        low,
        high,
    )


def test_mark_p_value_and_interval_agree_at_every_level() -> None:
    n_perm = 199
    comparisons = random_comparisons(24, n_perm)
    grid = [(1 + k) / (1 + n_perm) for k in range(n_perm + 1)]
    alphas = [0.05, 0.01, 0.1, 0.2, 0.5, 1.0, 0.0]
    alphas += grid + [math.nextafter(g, 0) for g in grid] + [math.nextafter(g, 1) for g in grid]
    for r in comparisons:
        assert (r.low, r.high) == r.interval_at(1 - r.level)
        for alpha in alphas:
            _agree(r, alpha)
    ps = [r.p_value for r in comparisons]
    assert any(p < 0.01 for p in ps) and any(p > 0.5 for p in ps)  # both kinds were tested
    # the intervals are nested: a smaller alpha never gives a narrower interval
    for r in comparisons:
        widths = [r.half_width(a) for a in sorted(alphas, reverse=True)]
        assert widths == sorted(widths)


def test_holm_marks_and_intervals_agree() -> None:
    comparisons = random_comparisons(24, 999)
    p = [r.p_value for r in comparisons]
    adjusted = holm(p)
    for alpha in (0.05, 0.01, 0.1):
        for r, q in zip(comparisons, adjusted, strict=True):
            level = effective_alpha(r.p_value, q, alpha)
            _agree(r, level)
            low, high = r.interval_at(level)
            assert (q < alpha) == (not low <= 0 <= high)


def test_near_ties_count_the_same_in_p_and_in_the_interval() -> None:
    # Sums of the same numbers in another order can differ in the last bits: a |d*| within
    # a relative 1e-12 below |d| counts as extreme in the p-value, so also in the interval.
    d, n_null = 0.1, 200
    near = [d - 1e-14] * 5
    rest = list(np.random.default_rng(0).uniform(0, 0.05, n_null - len(near)))
    null = np.array(sorted(near + rest, reverse=True))
    p = (1 + len(near)) / (1 + n_null)  # the documented p-value
    r = PairedComparison(
        "iou", "higher", 0.6, 0.5, d, math.nan, math.nan, p, 0.95, 40, 0, n_null, 0,
        null_abs_differences=null,
    )  # fmt: skip
    for alpha in [(1 + k) / (1 + n_null) for k in range(n_null + 1)] + [0.05, 0.01]:
        _agree(r, alpha)


def test_undefined_difference_is_never_significant() -> None:
    dry = M.FloodStats(tp=np.zeros(4), fp=np.zeros(4), fn=np.zeros(4), tn=np.full(4, 10.0))
    ids = list("abcd")
    r = paired_test(ids, dry, ids, dry, "iou", groups=[0, 0, 1, 1], n_permutations=50)
    assert math.isnan(r.p_value) and math.isnan(r.low) and math.isnan(r.high)
    assert not r.significant_at(0.05)
    assert all(math.isnan(v) for v in r.interval_at(0.05))


# --------------------------------------------------------------------------------------
# Holm
# --------------------------------------------------------------------------------------


def naive_holm(p: list[float]) -> list[float]:
    defined = sorted((v, i) for i, v in enumerate(p) if not math.isnan(v))
    m = len(defined)
    out = [math.nan] * len(p)
    for rank, (_, i) in enumerate(defined):
        out[i] = min(1.0, max((m - j) * defined[j][0] for j in range(rank + 1)))
    return out


def test_holm_by_hand() -> None:
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []
    nan_kept = holm([0.01, math.nan, 0.02])
    assert math.isnan(nan_kept[1])
    assert nan_kept[0] == pytest.approx(0.02) and nan_kept[2] == pytest.approx(0.02)  # m = 2


def test_holm_is_monotone_and_matches_the_definition() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        m = int(rng.integers(1, 12))
        p = list(rng.choice([0.001, 0.01, 0.02, 0.05], m)) if rng.random() < 0.3 else []
        p = (p + list(rng.random(m) ** 3))[:m]
        if rng.random() < 0.2:
            p[int(rng.integers(m))] = math.nan
        adj = holm(p)
        ref = naive_holm(p)
        assert [math.isnan(v) for v in adj] == [math.isnan(v) for v in p]
        assert np.allclose(adj, ref, equal_nan=True, rtol=1e-12, atol=0)
        pairs = [(a, b) for a, b in zip(p, adj, strict=True) if not math.isnan(a)]
        for pa, qa in pairs:
            assert pa <= qa <= 1.0
            for pb, qb in pairs:
                if pa <= pb:
                    assert qa <= qb


def test_effective_alpha_matches_the_adjusted_mark() -> None:
    rng = np.random.default_rng(11)
    grid = [(1 + k) / 200 for k in range(200)]
    for _ in range(2000):
        m = int(rng.integers(1, 10))
        # on the grid: ties and values on alpha / k
        p = list(rng.choice(grid, m)) if rng.random() < 0.5 else list(rng.random(m) ** 4)
        if rng.random() < 0.1:
            p[0] = 0.0
        for alpha in (0.05, 0.01, float(rng.random())):
            for pi, qi in zip(p, holm(p), strict=True):
                level = effective_alpha(pi, qi, alpha)
                assert (qi < alpha) == (pi < level), (p, pi, qi, alpha, level)
                assert 0 <= level <= alpha
    assert math.isnan(effective_alpha(math.nan, math.nan, 0.05))
    assert effective_alpha(0.0, 0.0, 0.05) == 0.05
    assert effective_alpha(0.0125, 0.05, 0.05) == 0.0125  # on the edge: not significant
    for alpha in (0.05, 0.01, 0.3):  # adjusted p one float step below alpha
        below = math.nextafter(alpha, 0)
        for k in range(1, 200):
            assert below / k < effective_alpha(below / k, below, alpha)
    with pytest.raises(ValueError, match="exceeds its adjusted p-value"):
        effective_alpha(0.2, 0.1, 0.05)


# --------------------------------------------------------------------------------------
# Edge cases and the resampling scheme
# --------------------------------------------------------------------------------------


def flood(n: int, seed: int) -> M.FloodStats:
    rng = np.random.default_rng(seed)
    wet = rng.integers(20, 80, n)
    tp = rng.binomial(wet, 0.8)
    fp = rng.integers(0, 10, n)
    return M.FloodStats(tp=tp, fp=fp, fn=wet - tp, tn=100 - wet)


def naive_group_bootstrap(
    stats: M.FloodStats, groups: list[str], n_resamples: int, seed: int
) -> tuple[float, float]:
    """One resample at a time: draw as many groups as there are (numbered by first
    appearance) with replacement, pool all their chips, compute the IoU."""
    labels = list(dict.fromkeys(groups))
    members = {g: [i for i, x in enumerate(groups) if x == g] for g in labels}
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, n_resamples, 1000):
        rows = min(1000, n_resamples - start)
        for drawn in rng.integers(0, len(labels), size=(rows, len(labels))):
            idx = [c for g in drawn for c in members[labels[g]]]
            values.append(M.iou(stats.take(idx).pooled()))
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def test_group_bootstrap_matches_one_resample_at_a_time() -> None:
    stats = flood(40, 1)
    groups = [f"site{(i * 7) % 9}" for i in range(40)]  # unequal, interleaved groups
    ci = bootstrap_ci(stats, "iou", groups=groups, n_resamples=1500, seed=4)
    low, high = naive_group_bootstrap(stats, groups, 1500, 4)
    assert ci.low == pytest.approx(low, rel=1e-9) and ci.high == pytest.approx(high, rel=1e-9)
    assert (ci.unit, ci.n_units, ci.method) == ("group", 9, GROUP_BOOTSTRAP_METHOD)
    assert "independence groups" in ci.method
    assert ci.to_dict()["unit"] == "group" and ci.to_dict()["n_units"] == 9


def test_group_weights_give_each_chip_its_groups_count() -> None:
    groups = ["b", "a", "b", "c", "a", "b"]
    idx, n = group_index(6, groups)
    assert idx.tolist() == [0, 1, 0, 2, 1, 0] and n == 3
    rng = np.random.default_rng(0)
    blocks = list(resample_weights(6, 2500, rng, groups))
    assert [len(b) for b in blocks] == [1000, 1000, 500]
    w = np.vstack(blocks)
    for members in ([0, 2, 5], [1, 4], [3]):
        assert (w[:, members] == w[:, [members[0]]]).all()
    assert (w[:, [0, 1, 3]].sum(axis=1) == 3).all()  # three groups drawn per resample
    with pytest.raises(ValueError, match="5 group labels for 6 chips"):
        list(resample_weights(6, 10, rng, groups[:5]))


def test_no_groups_and_all_distinct_groups_give_the_chip_level_numbers() -> None:
    stats = flood(30, 2)
    ids = [f"chip{i:02d}" for i in range(30)]
    chips = bootstrap_ci(stats, "iou", n_resamples=2000, seed=5)
    distinct = bootstrap_ci(stats, "iou", groups=ids, n_resamples=2000, seed=5)
    assert (chips.low, chips.high) == (distinct.low, distinct.high)
    assert (chips.unit, chips.n_units, distinct.unit, distinct.n_units) == (
        "chip",
        30,
        "group",
        30,
    )
    other = flood(30, 3)
    r_chip = paired_test(ids, stats, ids, other, "iou", n_permutations=800, seed=1)
    r_distinct = paired_test(
        ids, stats, ids, other, "iou", groups=list(range(30)), n_permutations=800, seed=1
    )
    assert r_chip.p_value == r_distinct.p_value
    assert (r_chip.low, r_chip.high) == (r_distinct.low, r_distinct.high)
    assert r_chip.unit == "chip" and r_distinct.unit == "group"
    assert "over chips" in r_chip.test_method and "independence groups" in r_distinct.test_method
    assert "inverting the test" in r_distinct.interval_method


def test_a_single_group_gives_a_point_interval_and_no_significance() -> None:
    stats, other = flood(12, 4), flood(12, 5)
    ids = [str(i) for i in range(12)]
    ci = bootstrap_ci(stats, "iou", groups=["all"] * 12, n_resamples=300)
    assert ci.low == ci.high == ci.estimate and ci.n_units == 1  # every resample is the set
    r = paired_test(ids, stats, ids, other, "iou", groups=["all"] * 12, n_permutations=300)
    # each permutation keeps or swaps everything: |d*| = |d| always
    assert r.p_value == 1.0 and r.n_units == 1
    assert r.low <= 0 <= r.high
    assert not any(r.significant_at(a) for a in (0.05, 0.5, 1.0))


def test_groups_follow_a_ids_order() -> None:
    a, b = flood(30, 6), flood(30, 7)
    ids = [f"chip{i:02d}" for i in range(30)]
    groups = [f"g{i // 6}" for i in range(30)]
    order = np.random.default_rng(0).permutation(30)
    r1 = paired_test(ids, a, ids, b, "iou", groups=groups, n_permutations=400)
    r2 = paired_test(
        ids, a, [ids[i] for i in order], b.take(order), "iou", groups=groups, n_permutations=400
    )
    assert r1 == r2 and r1.n_units == 5
    with pytest.raises(ValueError, match="29 group labels for 30 chips"):
        paired_test(ids, a, ids, b, "iou", groups=groups[:29])


def test_paired_result_hides_its_permutations_from_json_and_repr() -> None:
    import json

    a, b = flood(10, 8), flood(10, 9)
    ids = [str(i) for i in range(10)]
    r = paired_test(ids, a, ids, b, "iou", groups=[i % 4 for i in range(10)], n_permutations=50)
    assert r.null_abs_differences.size == 50
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert "null_abs_differences" not in d and d["unit"] == "group" and d["n_units"] == 4
    assert "null_abs_differences" not in repr(r)
