"""Metrics against a deliberately naive reference (pure Python over the valid pixels)."""

from __future__ import annotations

import doctest
import itertools
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.scoring import metrics as M
from harness.scoring import ndvi_sums
from harness.tasks import TASKS

TOL = 1e-9
Chip = tuple[np.ndarray, np.ndarray, np.ndarray | None]

# --------------------------------------------------------------------------------------
# The reference: loops over pixels, Python floats, math.fsum. None means undefined.
# --------------------------------------------------------------------------------------


def _div(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def ref_flood(chips: list[Chip]) -> dict[str, float | None]:
    tp = fp = fn = tn = 0
    for pred, target, valid in chips:
        mask = np.ones(pred.shape, bool) if valid is None else valid
        for p, t, v in zip(
            pred.ravel().tolist(), target.ravel().tolist(), mask.ravel().tolist(), strict=True
        ):
            if not v:
                continue
            if p == 1 and t == 1:
                tp += 1
            elif p == 1:
                fp += 1
            elif t == 1:
                fn += 1
            else:
                tn += 1
    wet, dry = _div(tp, tp + fp + fn), _div(tn, tn + fp + fn)
    present = [x for x in (wet, dry) if x is not None]
    return {
        "iou": wet,
        "miou": sum(present) / len(present) if present else None,
        "precision": _div(tp, tp + fp),
        "recall": _div(tp, tp + fn),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "accuracy": _div(tp + tn, tp + fp + fn + tn),
    }


def _reflect(i: int, n: int) -> int:
    """scipy.ndimage's "reflect" extension (d c b a | a b c d | d c b a), any distance."""
    i %= 2 * n
    return 2 * n - 1 - i if i >= n else i


def ref_ssim_map(x: list[list[float]], y: list[list[float]]) -> list[list[float]]:
    r = int(3.5 * 1.5 + 0.5)
    k = [math.exp(-(i * i) / (2 * 1.5**2)) for i in range(-r, r + 1)]
    k = [v / math.fsum(k) for v in k]
    h, w = len(x), len(x[0])

    def blur(f: Callable[[int, int], float], i: int, j: int) -> float:
        return math.fsum(
            k[a] * k[b] * f(_reflect(i + a - r, h), _reflect(j + b - r, w))
            for a in range(2 * r + 1)
            for b in range(2 * r + 1)
        )

    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    out = []
    for i in range(h):
        row = []
        for j in range(w):
            mx = blur(lambda a, b: x[a][b], i, j)
            my = blur(lambda a, b: y[a][b], i, j)
            vx = blur(lambda a, b: x[a][b] ** 2, i, j) - mx * mx
            vy = blur(lambda a, b: y[a][b] ** 2, i, j) - my * my
            cxy = blur(lambda a, b: x[a][b] * y[a][b], i, j) - mx * my
            row.append(
                ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
            )
        out.append(row)
    return out


def ref_ndvi(chips: list[Chip], *, with_ssim: bool = False) -> dict[str, float | None]:
    errs: list[float] = []
    ys: list[float] = []
    all_pixels = 0
    sq_all: list[float] = []
    ssim_vals: list[float] = []
    for pred, target, valid in chips:
        mask = np.ones(pred.shape, bool) if valid is None else valid
        p_l, t_l, v_l = pred.tolist(), target.tolist(), mask.tolist()
        zeroed_p = [
            [p if v else 0.0 for p, v in zip(*rows, strict=True)]
            for rows in zip(p_l, v_l, strict=True)
        ]
        zeroed_t = [
            [t if v else 0.0 for t, v in zip(*rows, strict=True)]
            for rows in zip(t_l, v_l, strict=True)
        ]
        for i in range(len(p_l)):
            for j in range(len(p_l[0])):
                all_pixels += 1
                sq_all.append((zeroed_p[i][j] - zeroed_t[i][j]) ** 2)
                if v_l[i][j]:
                    errs.append(p_l[i][j] - t_l[i][j])
                    ys.append(t_l[i][j])
        if with_ssim and any(any(r) for r in v_l):
            smap = ref_ssim_map(zeroed_p, zeroed_t)
            ssim_vals += [
                smap[i][j] for i in range(len(v_l)) for j in range(len(v_l[0])) if v_l[i][j]
            ]
    n = len(errs)
    mse = _div(math.fsum(e * e for e in errs), n)
    out: dict[str, float | None] = {
        "mse": mse,
        "rmse": None if mse is None else math.sqrt(mse),
        "mae": _div(math.fsum(abs(e) for e in errs), n),
        "bias": _div(math.fsum(errs), n),
        "r2": None,
        "psnr": None,
        "mse_all": _div(math.fsum(sq_all), all_pixels),
    }
    if n and len(set(ys)) > 1:
        mean = math.fsum(ys) / n
        out["r2"] = 1 - math.fsum(e * e for e in errs) / math.fsum((y - mean) ** 2 for y in ys)
    if mse is not None:
        out["psnr"] = math.inf if mse == 0 else 10 * math.log10(4 / mse)
    if with_ssim:
        out["ssim"] = _div(math.fsum(ssim_vals), n)
    return out


def assert_same(got: float, want: float | None, what: str) -> None:
    if want is None:
        assert math.isnan(got), f"{what}: expected undefined (nan), got {got}"
    elif math.isinf(want):
        assert got == want, f"{what}: expected {want}, got {got}"
    else:
        assert abs(got - want) <= TOL * max(1.0, abs(want)), f"{what}: {got} != {want}"


# --------------------------------------------------------------------------------------
# Random chips
# --------------------------------------------------------------------------------------

PROBS = st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0])


@st.composite
def flood_chips(draw: st.DrawFn) -> list[Chip]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    chips: list[Chip] = []
    for _ in range(draw(st.integers(1, 5))):
        shape = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
        pred = (rng.random(shape) < draw(PROBS)).astype(draw(st.sampled_from(["uint8", "bool"])))
        target = (rng.random(shape) < draw(PROBS)).astype(np.uint8)
        valid = None if draw(st.booleans()) else rng.random(shape) < draw(PROBS)
        chips.append((pred, target, valid))
    return chips


@st.composite
def ndvi_chips(draw: st.DrawFn, max_side: int = 9) -> list[Chip]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    chips: list[Chip] = []
    for _ in range(draw(st.integers(1, 4))):
        shape = (draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
        target = rng.uniform(-1, 1, shape).astype(np.float32)
        kind = draw(st.sampled_from(["noisy", "exact", "constant"]))
        if kind == "constant":
            target[:] = np.float32(draw(st.sampled_from([0.1, -0.7, 1.0])))
        pred = target.copy() if kind == "exact" else rng.uniform(-1, 1, shape).astype(np.float32)
        valid = None if draw(st.booleans()) else rng.random(shape) < draw(PROBS)
        if valid is not None:
            target[~valid] = np.nan  # never read: nodata outside the farm mask
        chips.append((pred, target, valid))
    return chips


def flood_table(chips: list[Chip]) -> M.FloodStats:
    return M.FloodStats.stack([M.flood_stats(*c) for c in chips])


def ndvi_table(chips: list[Chip], with_ssim: bool = False) -> M.NdviStats:
    return M.NdviStats.stack([M.ndvi_stats(*c, with_ssim=with_ssim) for c in chips])


# --------------------------------------------------------------------------------------
# Agreement with the reference
# --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(flood_chips())
def test_flood_pooled_and_per_chip_match_reference(chips: list[Chip]) -> None:
    table = flood_table(chips)
    pooled = M.compute_metrics(table.pooled())
    for name, want in ref_flood(chips).items():
        assert_same(pooled[name], want, f"pooled {name}")
    per_chip = M.compute_metrics(table)
    for i, chip in enumerate(chips):
        for name, want in ref_flood([chip]).items():
            assert_same(float(per_chip[name][i]), want, f"chip {i} {name}")


@settings(max_examples=300, deadline=None)
@given(flood_chips())
def test_iou_always_lies_in_unit_interval(chips: list[Chip]) -> None:
    table = flood_table(chips)
    for value in [M.iou(table.pooled()), *np.atleast_1d(M.iou(table))]:
        assert math.isnan(value) or 0.0 <= value <= 1.0


@settings(max_examples=200, deadline=None)
@given(ndvi_chips())
def test_ndvi_pooled_and_per_chip_match_reference(chips: list[Chip]) -> None:
    table = ndvi_table(chips)
    pooled = M.compute_metrics(table.pooled())
    for name, want in ref_ndvi(chips).items():
        assert_same(pooled[name], want, f"pooled {name}")
    per_chip = M.compute_metrics(table)
    for i, chip in enumerate(chips):
        for name, want in ref_ndvi([chip]).items():
            assert_same(float(per_chip[name][i]), want, f"chip {i} {name}")


@settings(max_examples=25, deadline=None)
@given(ndvi_chips(max_side=12))
def test_ssim_matches_naive_gaussian_window(chips: list[Chip]) -> None:
    want = ref_ndvi(chips, with_ssim=True)["ssim"]
    assert_same(float(M.ssim(ndvi_table(chips, with_ssim=True).pooled())), want, "ssim")


def test_ssim_of_identical_images_is_one_and_drops_with_noise() -> None:
    rng = np.random.default_rng(3)
    y = rng.uniform(-1, 1, (32, 32)).astype(np.float32)
    assert M.ssim(M.ndvi_stats(y, y)) == pytest.approx(1.0, abs=1e-12)
    noisy = np.clip(y + rng.normal(0, 0.3, y.shape), -1, 1).astype(np.float32)
    assert M.ssim(M.ndvi_stats(noisy, y)) < 0.9


# --------------------------------------------------------------------------------------
# Pooling and combination
# --------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(ndvi_chips(), st.integers(0, 2**32 - 1))
def test_combine_equals_stats_of_the_drawn_chips(chips: list[Chip], seed: int) -> None:
    table = ndvi_table(chips)
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 3, size=(4, len(chips)))
    combined = table.combine(weights)
    for b, row in enumerate(weights):
        drawn = [chips[c] for c in range(len(chips)) for _ in range(row[c])]
        for name, want in ref_ndvi(drawn).items():
            assert_same(float(M.METRICS["ndvi"][name](combined)[b]), want, f"row {b} {name}")


@pytest.mark.parametrize(
    ("task", "make"),
    [
        (
            "flood",
            lambda rng: flood_table(
                [
                    (rng.random((5, 5)) < 0.4, rng.random((5, 5)) < 0.5, rng.random((5, 5)) < 0.8)
                    for _ in range(6)
                ]
            ),
        ),
        (
            "ndvi",
            lambda rng: ndvi_table(
                [
                    (
                        rng.uniform(-1, 1, (5, 5)),
                        rng.uniform(-1, 1, (5, 5)),
                        rng.random((5, 5)) < 0.8,
                    )
                    for _ in range(6)
                ],
                with_ssim=True,
            ),
        ),
    ],
)
def test_metric_needs_are_enough(task: str, make: Callable[[Any], M.ChipStats]) -> None:
    """The bootstrap combines only the fields a metric declares; that must not change it."""
    rng = np.random.default_rng(0)
    table = make(rng)
    weights = rng.integers(0, 3, size=(5, len(table)))
    full = table.combine(weights)
    for metric in M.METRICS[task].values():
        np.testing.assert_array_equal(metric(table.combine(weights, metric.needs)), metric(full))


@settings(max_examples=30, deadline=None)
@given(ndvi_chips(max_side=12), flood_chips())
def test_reducer_reusing_buffers_equals_one_chip_at_a_time(
    ndvi: list[Chip], flood: list[Chip]
) -> None:
    """Chips of different sizes through one ChipReducer (shared work buffers) give exactly
    the statistics each chip gives alone."""
    for task, chips in (("ndvi", ndvi), ("flood", flood)):
        reducer = M.ChipReducer(task)
        for chip in chips + chips[::-1]:
            reducer.add(*chip)
        alone = ndvi_table(chips, True) if task == "ndvi" else flood_table(chips)
        both = alone.concat(alone.take(np.arange(len(chips))[::-1]))
        table = reducer.table()
        for name in both.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(table, name), getattr(both, name), name)


def test_pooled_counts_are_sums_of_chip_counts() -> None:
    chips = [
        (np.array([1, 1, 0]), np.array([1, 0, 0]), None),
        (np.array([0, 1]), np.array([1, 1]), np.array([1, 0])),
    ]
    pooled = flood_table(chips).pooled()
    assert (pooled.tp, pooled.fp, pooled.fn, pooled.tn) == (1, 1, 1, 1)
    assert M.iou(pooled) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------------------
# Edge cases, as written in docs/metrics.md
# --------------------------------------------------------------------------------------


def test_empty_union_chip_is_undefined_not_zero_or_one() -> None:
    s = M.flood_stats(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))
    assert math.isnan(M.iou(s))
    assert math.isnan(M.f1(s))
    assert math.isnan(M.precision(s)) and math.isnan(M.recall(s))
    assert M.miou(s) == 1.0  # "not flood" is defined and perfect
    assert M.accuracy(s) == 1.0


def test_chip_without_valid_pixels_counts_nothing() -> None:
    nothing = np.zeros((3, 3), bool)
    s = M.flood_stats(np.ones((3, 3), np.uint8), np.ones((3, 3), np.uint8), nothing)
    assert (s.tp, s.fp, s.fn, s.tn) == (0, 0, 0, 0)
    assert all(math.isnan(v) for v in M.compute_metrics(s).values())
    n = M.ndvi_stats(np.zeros((3, 3)), np.full((3, 3), np.nan), nothing)
    values = M.compute_metrics(n)
    assert values["mse_all"] == 0.0
    assert all(math.isnan(v) for k, v in values.items() if k != "mse_all")


def test_precision_without_predicted_flood_is_undefined() -> None:
    s = M.flood_stats(np.array([0, 0, 0]), np.array([1, 0, 0]))
    assert math.isnan(M.precision(s))
    assert M.recall(s) == 0.0
    assert M.iou(s) == 0.0


def test_r2_constant_target_is_undefined_and_psnr_perfect_is_inf() -> None:
    y = np.full((4, 4), 0.1, np.float32)
    s = M.ndvi_stats(y + np.float32(0.2), y)
    assert math.isnan(M.r2(s))
    perfect = M.ndvi_stats(y, y)
    assert M.psnr(perfect) == math.inf
    assert M.mse(perfect) == 0.0


def test_r2_constant_float64_target_is_undefined_despite_rounding() -> None:
    """Three float64 copies of 0.1 have a mean one ulp off, so their computed squared
    deviation is about 6e-34, not 0: R^2 must still say undefined, not -1e31."""
    s = M.ndvi_stats(np.full((1, 3), 0.3), np.full((1, 3), 0.1))
    assert float(s.m2_y) > 0.0  # the rounding this test is about
    assert math.isnan(M.r2(s))
    assert math.isnan(M.r2(M.NdviStats.stack([s, s]).pooled()))


def test_psnr_uses_data_range_two() -> None:
    s = M.ndvi_stats(np.zeros((2, 2)), np.full((2, 2), 0.1))
    assert M.psnr(s) == pytest.approx(10 * math.log10(4 / 0.01))


def test_mse_all_is_the_competition_convention() -> None:
    pred = np.array([[0.5, 0.9], [0.2, -0.3]], np.float32)
    target = np.array([[0.1, -0.9], [0.2, 0.7]], np.float32)
    farm = np.array([[1, 0], [1, 1]], bool)
    s = M.ndvi_stats(pred, target, farm)
    zp, zt = np.where(farm, pred, 0).astype(float), np.where(farm, target, 0).astype(float)
    assert M.mse_all(s) == pytest.approx(np.mean((zp - zt) ** 2), abs=1e-15)
    assert M.mse(s) == pytest.approx(np.mean((zp - zt)[farm] ** 2), abs=1e-15)


def test_bias_sign_is_pred_minus_target() -> None:
    assert M.bias(M.ndvi_stats(np.full((2, 2), 0.5), np.zeros((2, 2)))) == 0.5


def test_nan_inside_the_farm_mask_is_an_error() -> None:
    target = np.array([[0.1, np.nan]])
    with pytest.raises(ValueError, match="NaN or inf"):
        M.ndvi_stats(np.zeros((1, 2)), target, np.array([[1, 1]]))


@pytest.mark.parametrize("bad", [np.array([0, 2], np.uint8), np.array([0.0, 0.5])])
def test_non_binary_flood_values_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        M.flood_stats(bad, np.array([0, 1]))


def test_shape_mismatches_are_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        M.flood_stats(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="valid mask"):
        M.ndvi_stats(np.zeros((2, 2)), np.zeros((2, 2)), np.ones((3, 3)))


def test_the_flood_studys_impossible_ious_cannot_happen() -> None:
    """The flood study reports IoUs of 2.2 and 0.6; an IoU above 1 is impossible."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        p, t = rng.random((16, 16)) < rng.random(), rng.random((16, 16)) < rng.random()
        value = M.iou(M.flood_stats(p, t))
        assert math.isnan(value) or 0.0 <= value <= 1.0


# --------------------------------------------------------------------------------------
# The ndvi statistics against float64 computed plainly (issue 19: one read of the chip, a
# window at a time, must give what the plain formulas give)
# --------------------------------------------------------------------------------------

NDVI_SUMS = ("sum_err", "sum_sq_err", "sum_abs_err", "sum_y", "m2_y")


def plain_ndvi(pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None) -> dict[str, Any]:
    """Every statistic over all valid pixels at once, as numpy float64 sums (the formulas
    before the windows), with ``math.fsum`` of each sum's terms beside it."""
    keep = np.ones(pred.shape, bool) if valid is None else np.asarray(valid, bool)
    p, y = pred[keep].astype(np.float64), target[keep].astype(np.float64)
    err, n = p - y, int(keep.sum())
    mean = y.sum() / n if n else 0.0
    terms = {
        "sum_err": err,
        "sum_sq_err": np.square(err),
        "sum_abs_err": np.abs(err),
        "sum_y": y,
        "m2_y": np.square(y - mean),
    }
    exact_mean = math.fsum(y) / n if n else 0.0
    return {
        "n": n,
        "n_pixels": pred.size,
        "min_y": float(y.min()) if n else math.inf,
        "max_y": float(y.max()) if n else -math.inf,
        "numpy": {k: float(v.sum()) for k, v in terms.items()},
        "fsum": {
            **{k: math.fsum(v) for k, v in terms.items() if k != "m2_y"},
            "m2_y": math.fsum(np.square(y - exact_mean)),
        },
        "scale": {k: math.fsum(np.abs(v)) for k, v in terms.items()},
        "spread": float(np.abs(y).max()) if n else 0.0,
    }


def assert_near_fsum(stats: M.NdviStats, want: dict[str, Any], what: str = "") -> None:
    """Counts and extremes exact; each sum within 1e-12 of the sum of its terms' magnitudes
    (the bound of any pairwise sum); ``m2_y`` also within what a mean a few units in the
    last place off adds (n times that squared), for a constant target."""
    for name in ("n", "n_pixels", "min_y", "max_y"):
        assert float(getattr(stats, name)) == want[name], f"{what} {name}"
    for name in NDVI_SUMS:
        got, exact = float(getattr(stats, name)), want["fsum"][name]
        slack = 1e-12 * want["scale"][name]
        if name == "m2_y":
            slack += want["n"] * (8 * np.spacing(want["spread"])) ** 2
        assert abs(got - exact) <= slack, f"{what} {name}: {got!r} != {exact!r}"


@st.composite
def big_ndvi_chips(draw: st.DrawFn) -> Chip:
    """A chip of up to 48 x 48 (many windows once they are made small), float32, float64 or
    int16, values up to 1e30 or far from 0, a mask random, in runs of rows, all or none
    valid, and NaN targets outside it."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 48)), draw(st.integers(1, 48)))
    dtype = draw(st.sampled_from(["float32", "float64", "int16"]))
    if dtype == "int16":
        target = rng.integers(-30000, 30000, shape).astype(np.int16)
        pred = rng.integers(-30000, 30000, shape).astype(np.int16)
    else:
        scale = draw(st.sampled_from([1.0, 1e-20, 1e15, 1e30]))
        offset = draw(st.sampled_from([0.0, 1.0, 1e6]))
        target = (offset + scale * rng.uniform(-1, 1, shape)).astype(dtype)
        pred = (target + scale * rng.normal(0, 0.1, shape)).astype(dtype)
    mask = draw(st.sampled_from(["none", "random", "rows", "all", "nothing"]))
    valid: np.ndarray | None = None
    if mask == "random":
        valid = rng.random(shape) < draw(PROBS)
    elif mask == "rows":
        valid = np.repeat(rng.random((shape[0], 1)) < 0.5, shape[1], axis=1)
    elif mask in ("all", "nothing"):
        valid = np.full(shape, mask == "all")
    if valid is not None and dtype != "int16":
        target[~valid] = np.nan
    return pred, target, valid


@settings(max_examples=300, deadline=None)
@given(big_ndvi_chips(), st.sampled_from([(128, 8), (256, 64), (1 << 18, 1 << 16)]))
def test_ndvi_stats_equal_float64_sums_over_the_valid_pixels(
    chip: Chip, sizes: tuple[int, int]
) -> None:
    """With windows and gathers made small (many per chip), and at their real sizes: counts
    and extremes exact, sums within 1e-12 of correctly rounded ones; a chip of one window
    gives the plain formulas' bits, and without a mask so does a chip of many."""
    pred, target, valid = chip
    want = plain_ndvi(pred, target, valid)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ndvi_sums, "_WINDOW", sizes[0])
        mp.setattr(ndvi_sums, "_GATHER", sizes[1])
        stats = M.ndvi_stats(pred, target, valid, with_ssim=False)
    assert_near_fsum(stats, want)
    one_window = pred.size <= sizes[0]
    unmasked = valid is None or bool(np.all(valid))
    for name in NDVI_SUMS:
        if one_window or (unmasked and name != "m2_y"):
            assert float(getattr(stats, name)) == want["numpy"][name], name


@pytest.mark.parametrize("masked", [False, True])
def test_a_chip_of_several_windows_equals_the_plain_sums(masked: bool) -> None:
    """A 700 x 700 chip is two windows at the real sizes: without a mask its sums are the
    bits of one numpy sum over all pixels (the windows follow numpy's pairwise tree)."""
    rng = np.random.default_rng(19)
    target = rng.uniform(-1, 1, (700, 700)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), -1, 1).astype(np.float32)
    valid = rng.random(target.shape) < 0.9 if masked else None
    if valid is not None:
        valid[:200] = True  # whole gathers of valid pixels as well as mixed ones
        valid[300:350] = False
        target[~valid] = np.nan
    assert len(ndvi_sums._windows(pred.size, ndvi_sums._WINDOW)) == 2
    want = plain_ndvi(pred, target, valid)
    stats = M.ndvi_stats(pred, target, valid, with_ssim=False)
    assert_near_fsum(stats, want)
    if not masked:
        for name in ("sum_err", "sum_sq_err", "sum_abs_err", "sum_y"):
            assert float(getattr(stats, name)) == want["numpy"][name], name


@pytest.mark.parametrize("n", [1, 7, 129, 1000, 4099, 65_537, 300_001])
def test_window_sums_added_along_the_tree_are_numpys_sum(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 10.0 ** rng.uniform(-5, 5, n)
    ranges = ndvi_sums._windows(n, 128)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    parts = (np.add.reduce(x[a:b], keepdims=True) for a, b in ranges)
    assert ndvi_sums._tree_sum(parts, n, 128)[0] == np.add.reduce(x)


def test_ndvi_edge_cases_one_pixel_nothing_valid_and_large_values() -> None:
    one = M.ndvi_stats(np.array([[0.25]]), np.array([[-0.5]]), with_ssim=False)
    assert (float(one.n), float(one.sum_sq_err), float(one.m2_y)) == (1.0, 0.5625, 0.0)
    assert float(one.min_y) == float(one.max_y) == -0.5
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ndvi_sums, "_WINDOW", 128)
        mp.setattr(ndvi_sums, "_GATHER", 16)
        shape = (40, 40)
        none = M.ndvi_stats(
            np.zeros(shape), np.full(shape, np.nan), np.zeros(shape, bool), with_ssim=False
        )
        assert (float(none.n), float(none.n_pixels)) == (0.0, 1600.0)
        assert all(float(getattr(none, k)) == 0.0 for k in NDVI_SUMS)
        assert (float(none.min_y), float(none.max_y)) == (math.inf, -math.inf)
        big = np.full(shape, 3e38, np.float32)
        big[::2] = -3e38
        huge = M.ndvi_stats(-big, big, with_ssim=False)  # err^2 ~ 3.6e77: float64 holds it
        assert_near_fsum(huge, plain_ndvi(-big, big, None))
        target = np.zeros(shape)
        target[39, 39] = np.inf
        with pytest.raises(ValueError, match="NaN or inf"):
            M.ndvi_stats(np.zeros(shape), target, with_ssim=False)


# --------------------------------------------------------------------------------------
# Declarations and examples
# --------------------------------------------------------------------------------------


METRICS_DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def documented_metrics(task: str) -> list[tuple[str, bool, str]]:
    """(name, primary?, better) of each row of the metrics table in the section of
    docs/metrics.md headed ``## ... (`task`)``, in the order written."""
    sections = [s for s in METRICS_DOC.read_text().split("\n## ") if f"(`{task}`)" in s[:80]]
    assert len(sections) == 1, f"docs/metrics.md has {len(sections)} sections for {task!r}"
    rows = []
    for line in sections[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"(\*\*)?`(\w+)`(\*\*)?( \(primary\))?", cells[0])
        if name is not None and len(cells) == 4:
            rows.append((name[2], name[4] is not None, cells[2]))
    return rows


def test_metric_names_primaries_and_directions_are_as_documented() -> None:
    """The metrics tables of docs/metrics.md, written by hand, against the declarations:
    each task's metrics in the same order, the same primary metric, and each metric's
    direction ("better") the same."""
    for task in TASKS.values():
        documented = documented_metrics(task.name)
        assert [name for name, _, _ in documented] == list(M.METRICS[task.name]), task.name
        assert [name for name, primary, _ in documented if primary] == [task.primary_metric]
        for name, _, better in documented:
            assert M.METRICS[task.name][name].direction == better, f"{task.name} {name}"
    assert TASKS["flood"].higher_is_better and not TASKS["ndvi"].higher_is_better


ALL_METRICS = [m for task in M.METRICS.values() for m in task.values()]


@pytest.mark.parametrize("metric", ALL_METRICS, ids=[f"{m.task}-{m.name}" for m in ALL_METRICS])
def test_every_metric_has_runnable_examples(metric: M.Metric) -> None:
    tests = doctest.DocTestFinder().find(metric.fn, metric.name, globs={"np": np, **vars(M)})
    examples = sum(len(t.examples) for t in tests)
    assert examples >= 1, f"{metric.name} has no example in its docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0


@pytest.mark.parametrize(
    "module",
    [
        "harness.scoring.chipstats",
        "harness.scoring.ndvi_sums",
        "harness.scoring.ssim",
        "harness.scoring.metrics",
        "harness.scoring.stats",
        "harness.scoring.validate",
    ],
)
def test_module_examples(module: str) -> None:
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
