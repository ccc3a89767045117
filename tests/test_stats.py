"""Bootstrap intervals, paired tests and seed summaries."""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import pytest

from harness.errors import SarbenchError
from harness.scoring import metrics as M
from harness.scoring.stats import (
    ChipMismatchError,
    across_seeds,
    bootstrap_ci,
    json_float,
    paired_test,
)


def random_flood(n: int, seed: int, quality: float = 0.8) -> M.FloodStats:
    """``n`` chips of 100 pixels whose predictions are right with probability ``quality``."""
    rng = np.random.default_rng(seed)
    chips = []
    for _ in range(n):
        target = rng.random(100) < rng.uniform(0.1, 0.6)
        pred = np.where(rng.random(100) < quality, target, ~target)
        chips.append(M.flood_stats(pred, target))
    return M.FloodStats.stack(chips)


def random_ndvi(n: int, seed: int, noise: float = 0.1) -> M.NdviStats:
    rng = np.random.default_rng(seed)
    chips = []
    for _ in range(n):
        target = rng.uniform(-1, 1, (6, 6))
        pred = np.clip(target + rng.normal(0, noise, target.shape), -1, 1)
        chips.append(M.ndvi_stats(pred, target, rng.random((6, 6)) < 0.8, with_ssim=False))
    return M.NdviStats.stack(chips)


def naive_bootstrap(
    stats: M.ChipStats, metric: str, n_resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """One resample at a time: draw chip indices (the documented scheme: blocks of 1,000
    rows from default_rng(seed).integers), pool those chips by summing, compute."""
    rng = np.random.default_rng(seed)
    n = len(stats)
    values = []
    for start in range(0, n_resamples, 1000):
        rows = min(1000, n_resamples - start)
        for idx in rng.integers(0, n, size=(rows, n)):
            values.append(M.get_metric(stats.task, metric)(stats.take(idx).pooled()))
    ok = [v for v in values if not math.isnan(v)]
    low, high = np.quantile(ok, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@pytest.mark.parametrize(
    ("stats", "metric"),
    [(random_flood(25, 1), "iou"), (random_ndvi(25, 2), "mse"), (random_ndvi(25, 3), "r2")],
)
def test_bootstrap_matches_one_resample_at_a_time(stats: M.ChipStats, metric: str) -> None:
    ci = bootstrap_ci(stats, metric, n_resamples=1500, seed=7)
    low, high = naive_bootstrap(stats, metric, 1500, 7)
    assert ci.low == pytest.approx(low, rel=1e-9, abs=1e-12)
    assert ci.high == pytest.approx(high, rel=1e-9, abs=1e-12)
    assert ci.estimate == M.get_metric(stats.task, metric)(stats.pooled())
    assert ci.low <= ci.estimate <= ci.high


def test_bootstrap_is_reproducible_and_seeded() -> None:
    stats = random_flood(40, 5)
    a = bootstrap_ci(stats, "iou", seed=3)
    assert a == bootstrap_ci(stats, "iou", seed=3)
    assert a != bootstrap_ci(stats, "iou", seed=4)
    assert (a.n_resamples, a.level, a.seed) == (10_000, 0.95, 3)
    assert "percentile" in a.method


def test_wider_level_gives_wider_interval() -> None:
    stats = random_flood(40, 6)
    narrow = bootstrap_ci(stats, "iou", level=0.5)
    wide = bootstrap_ci(stats, "iou", level=0.99)
    assert wide.low <= narrow.low <= narrow.high <= wide.high


def test_one_chip_gives_a_point_interval_and_no_chip_nan() -> None:
    one = random_flood(1, 0)
    ci = bootstrap_ci(one, "iou", n_resamples=100)
    assert ci.low == ci.high == ci.estimate
    empty = bootstrap_ci(M.FloodStats.empty(), "iou", n_resamples=100)
    assert math.isnan(empty.estimate) and math.isnan(empty.low) and math.isnan(empty.high)


def test_undefined_resamples_are_counted_and_left_out() -> None:
    wet = M.flood_stats(np.array([1, 1, 0]), np.array([1, 0, 0]))
    dry = M.flood_stats(np.array([0, 0, 0]), np.array([0, 0, 0]))
    stats = M.FloodStats.stack([wet, dry])
    ci = bootstrap_ci(stats, "iou", n_resamples=2000, seed=0)
    # a resample of two chips is dry-only with probability 1/4
    assert 350 < ci.n_undefined < 650
    assert ci.low == ci.high == 0.5


def test_bad_arguments_are_refused() -> None:
    stats = random_flood(3, 0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(stats, "iou", n_resamples=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(stats, "iou", level=1.0)
    with pytest.raises(KeyError, match="no metric 'mse'"):
        bootstrap_ci(stats, "mse")


def test_ten_thousand_resamples_of_a_thousand_chips_are_fast() -> None:
    rng = np.random.default_rng(0)
    tp = rng.integers(0, 50_000, 1000)
    stats = M.FloodStats(
        tp=tp,
        fp=rng.integers(0, 5000, 1000),
        fn=rng.integers(0, 5000, 1000),
        tn=np.full(1000, 150_000),
    )
    start = time.perf_counter()
    bootstrap_ci(stats, "iou", n_resamples=10_000)
    # the target is < 1 s (bench/scoring.py measures it); a loose bound against noisy CI
    assert time.perf_counter() - start < 5.0


# --------------------------------------------------------------------------------------
# Paired test
# --------------------------------------------------------------------------------------

IDS = [f"chip{i:02d}" for i in range(30)]


def test_identical_entries_tie_with_p_one() -> None:
    stats = random_flood(30, 1)
    r = paired_test(IDS, stats, IDS, stats, "iou", n_resamples=500, n_permutations=500)
    assert r.difference == 0.0 and r.low == 0.0 and r.high == 0.0
    assert r.p_value == 1.0
    assert r.better == "tie"


def test_clearly_better_entry_wins_with_small_p() -> None:
    good, bad = random_flood(30, 1, quality=0.95), random_flood(30, 1, quality=0.7)
    r = paired_test(IDS, good, IDS, bad, "iou", n_resamples=1000, n_permutations=1000, seed=2)
    assert r.difference > 0 and r.better == "a"
    assert r.low > 0
    assert r.p_value == pytest.approx(1 / 1001)  # no permutation as extreme: never 0
    swapped = paired_test(IDS, bad, IDS, good, "iou", n_resamples=1000, n_permutations=1000)
    assert swapped.better == "b" and swapped.difference == pytest.approx(-r.difference)


def test_lower_is_better_metrics_pick_the_lower() -> None:
    good, bad = random_ndvi(30, 4, noise=0.05), random_ndvi(30, 4, noise=0.3)
    r = paired_test(IDS, good, IDS, bad, "mse", n_resamples=500, n_permutations=500)
    assert r.difference < 0 and r.better == "a" and r.p_value < 0.01


def test_bias_is_better_closer_to_zero() -> None:
    target = np.linspace(-0.5, 0.5, 36).reshape(6, 6)
    low = M.NdviStats.stack([M.ndvi_stats(target - 0.01, target, with_ssim=False)] * 30)
    high = M.NdviStats.stack([M.ndvi_stats(target + 0.05, target, with_ssim=False)] * 30)
    r = paired_test(IDS, low, IDS, high, "bias", n_resamples=200, n_permutations=200)
    assert r.difference == pytest.approx(-0.06)
    assert r.direction == "closer to 0" and r.better == "a"


def test_exchangeable_entries_are_not_called_different() -> None:
    a, b = random_flood(30, 10), random_flood(30, 11)  # same process, different draws
    r = paired_test(IDS, a, IDS, b, "iou", n_resamples=1000, n_permutations=2000, seed=0)
    assert r.p_value > 0.05
    assert r.low < 0 < r.high


def test_chips_are_matched_by_id_not_position() -> None:
    a, b = random_flood(30, 1, 0.9), random_flood(30, 2, 0.8)
    order = np.random.default_rng(0).permutation(30)
    shuffled_ids = [IDS[i] for i in order]
    r1 = paired_test(IDS, a, IDS, b, "iou", n_resamples=300, n_permutations=300)
    r2 = paired_test(
        IDS, a, shuffled_ids, b.take(order), "iou", n_resamples=300, n_permutations=300
    )
    assert r1 == r2


def test_mismatched_chip_sets_are_an_error() -> None:
    a, b = random_flood(30, 1), random_flood(29, 2)
    with pytest.raises(ChipMismatchError, match="1 only in A") as info:
        paired_test(IDS, a, IDS[:29], b, "iou")
    assert isinstance(info.value, SarbenchError)
    other = [*IDS[:29], "elsewhere"]
    with pytest.raises(ChipMismatchError, match=r"only in B, e.g. \['elsewhere'\]"):
        paired_test(IDS, a, other, random_flood(30, 2), "iou")
    with pytest.raises(ChipMismatchError, match="more than once"):
        paired_test(IDS, a, [*IDS[:29], IDS[0]], random_flood(30, 2), "iou")
    with pytest.raises(ChipMismatchError, match="'flood' entry with a 'ndvi'"):
        paired_test(IDS, a, IDS, random_ndvi(30, 2), "iou")


def test_paired_result_serialises_to_strict_json() -> None:
    import json

    stats = random_flood(5, 0)
    d = paired_test(IDS[:5], stats, IDS[:5], stats, "iou", n_resamples=50).to_dict()
    assert json.loads(json.dumps(d, allow_nan=False))["better"] == "tie"


# --------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------


def test_across_seeds_mean_and_sample_std() -> None:
    values = {0: 0.61, 1: 0.65, 2: 0.70, 3: 0.64}
    s = across_seeds(values)
    assert s.mean == pytest.approx(statistics.mean(values.values()))
    assert s.std == pytest.approx(statistics.stdev(values.values()))
    assert (s.n, s.min, s.max) == (4, 0.61, 0.70)


def test_across_seeds_edge_cases() -> None:
    single = across_seeds([0.5])
    assert single.mean == 0.5 and math.isnan(single.std)
    assert single.to_dict()["std"] is None
    assert math.isnan(across_seeds([0.5, math.nan]).mean)  # never dropped silently
    with pytest.raises(ValueError, match="at least one"):
        across_seeds([])


def test_json_float() -> None:
    assert json_float(math.nan) is None
    assert json_float(math.inf) == "inf" and json_float(-math.inf) == "-inf"
    assert json_float(0.25) == 0.25
