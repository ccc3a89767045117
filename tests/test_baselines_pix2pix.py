"""The pix2pix ndvi baseline: SAR indexes, augmentation, TTA, the sensor mapping, non-finite
inputs, whole train + predict runs through ``python -m baselines`` on tiny ndvi datasets,
scored (one whose NDVI is a known function of VV and VH, which a run must learn), and its
settings table in baselines/README.md."""

from __future__ import annotations

import doctest
import json
import math
import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # the `baselines` extra: installed by `make install`, so never skipped

from baselines import pix2pix, pix2pix_data, sar_indexes
from baselines.__main__ import main
from baselines.contract import ContractError, resolve_options
from baselines.pix2pix_data import (
    Featurizer,
    SplitArrays,
    augment,
    box_smooth,
    fill_nonfinite,
    fit_quantile_map,
    fit_sar_bins_map,
    random_crop,
    tta_predict,
)
from baselines.sar_indexes import (
    INDEX_NAMES,
    central_bounds,
    clip_central,
    db_to_power,
    prvi,
    rfdi,
    rvi,
    rvi4s1,
    sar_index_stack,
)
from harness.datasets.loader import SplitDir
from harness.entries import load_entry
from harness.geo import Grid, read_raster, write_raster
from harness.scoring.score import score_predictions
from harness.scoring.validate import validate_predictions
from harness.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ROOT / "submissions" / "pix2pix.toml"
README = ROOT / "baselines" / "README.md"
GAIN, OFFSET = 1.15, -0.05  # target NDVI = GAIN * second-sensor NDVI + OFFSET
TINY = {
    "threads": 1,
    "ngf": 4,
    "ndf": 4,
    "n_down": 3,
    "d_layers": 2,
    "batch_size": 4,
    "crop": 16,
    "epochs_pretrain": 2,
    "epochs_finetune": 2,
    "patience": 1,
    "pretrain_chips": 6,
    "dropout": 0.0,
    "mapping": "quantiles",  # the tiny splits are too small for sar-bins
}


# -- SAR indexes ---------------------------------------------------------------------------


def test_sar_index_formulas_against_hand_computed_values() -> None:
    vv, vh = db_to_power(np.array([-10.0])), db_to_power(np.array([-20.0]))  # 0.1, 0.01
    assert vv[0] == pytest.approx(0.1) and vh[0] == pytest.approx(0.01)
    assert prvi(vv, vh)[0] == pytest.approx((1 - 0.1 / 0.11) * 0.01)  # 9.0909e-4
    assert prvi(vv, vh)[0] == pytest.approx(9.090909e-4, rel=1e-6)
    assert rfdi(vv, vh)[0] == pytest.approx(0.09 / 0.11)  # 0.81818
    assert rvi(vv, vh)[0] == pytest.approx(0.04 / 0.11)  # 0.36364
    assert rvi4s1(vv, vh)[0] == pytest.approx(math.sqrt(0.1 / 0.11) * 0.04 / 0.11)  # 0.34671
    assert rvi4s1(vv, vh)[0] == pytest.approx(0.346714, rel=1e-5)
    # equal powers: no depolarisation contrast
    one = np.array([1.0])
    assert (rfdi(one, one)[0], rvi(one, one)[0], prvi(one, one)[0]) == (0.0, 2.0, 0.5)


def test_sar_index_stack_channels_and_clipping() -> None:
    vv_db = np.array([[-3.0, -10.0], [-30.0, -12.0]])
    vh_db = np.array([[-5.0, -20.0], [-40.0, -18.0]])
    stack = sar_index_stack(vv_db, vh_db)
    assert stack.shape == (10, 2, 2) and stack.dtype == np.float32
    assert len(INDEX_NAMES) == 10
    ch = dict(zip(INDEX_NAMES, stack, strict=True))
    # fixed clip: VV to -25..-5 dB, VH to -30..-10 dB (in power)
    np.testing.assert_allclose(ch["VV_clipped"], [[10**-0.5, 0.1], [10**-2.5, 10**-1.2]], rtol=1e-6)
    np.testing.assert_allclose(ch["VH_clipped"], [[0.1, 0.01], [0.001, 10**-1.8]], rtol=1e-6)
    np.testing.assert_allclose(ch["VH"], db_to_power(vh_db), rtol=1e-6)
    vv, vh = db_to_power(vv_db), db_to_power(vh_db)
    np.testing.assert_allclose(ch["VH_plus_VV"], vh + vv, rtol=1e-6)
    np.testing.assert_allclose(ch["VH_minus_VV"], vh - vv, rtol=1e-6)
    np.testing.assert_allclose(ch["RVI"], 4 * vh / (vh + vv), rtol=1e-6)


def test_central_clip_cuts_a_quarter_percent_at_each_end() -> None:
    x = np.arange(1000.0)
    out = clip_central(x)
    assert out.min() == pytest.approx(2.4975) and out.max() == pytest.approx(996.5025)
    assert np.array_equal(out[10:990], x[10:990])


def test_featurizer_standardises_with_train_statistics() -> None:
    rng = np.random.default_rng(0)
    chips = rng.normal(-12.0, 3.0, (5, 2, 8, 8)).astype(np.float32)
    for indexes in (False, True):
        f = Featurizer.fit(chips, indexes)
        out = f(chips)
        assert out.shape == (5, 10 if indexes else 2, 8, 8)
        np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
        np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1.0, atol=1e-3)


@pytest.mark.parametrize("module", [sar_indexes, pix2pix_data])
def test_module_examples(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- non-finite inputs -----------------------------------------------------------------------


def test_central_clip_bounds_come_from_finite_values_only() -> None:
    x = np.arange(1000.0)
    holed = np.concatenate([x, [np.nan, np.inf, -np.inf]])
    assert central_bounds(holed) == central_bounds(x) == pytest.approx((2.4975, 996.5025))
    out = clip_central(holed)
    np.testing.assert_array_equal(out[:1000], clip_central(x))
    assert np.isnan(out[1000])
    assert out[1001] == pytest.approx(996.5025) and out[1002] == pytest.approx(2.4975)
    assert central_bounds(np.array([np.nan])) is None


def test_fill_takes_each_bands_chip_median_of_finite_values() -> None:
    rng = np.random.default_rng(4)
    chip = rng.normal(-12.0, 3.0, (2, 9, 9)).astype(np.float32)
    holed = chip.copy()
    holed[0, 2, 3], holed[0, 7, 7], holed[1, 0, 0] = np.nan, np.inf, -np.inf
    out = fill_nonfinite(holed, np.array([-99.0, -99.0], np.float32))
    finite = np.isfinite(holed)
    for band in (0, 1):
        median = np.median(holed[band][finite[band]])
        np.testing.assert_array_equal(out[band][~finite[band]], median)
        np.testing.assert_array_equal(out[band][finite[band]], chip[band][finite[band]])
    assert fill_nonfinite(chip, np.zeros(2, np.float32)) is chip  # nothing to fill: as is


def _holed_chips() -> np.ndarray:
    """(5, 2, 9, 8) dB chips whose last row is NaN, +inf or -inf in both bands."""
    rng = np.random.default_rng(7)
    chips = rng.normal(-12.0, 3.0, (5, 2, 9, 8)).astype(np.float32)
    chips[:, :, -1, ::3] = np.nan
    chips[:, :, -1, 1::3] = np.inf
    chips[:, :, -1, 2::3] = -np.inf
    return chips


@pytest.mark.parametrize("indexes", [False, True])
def test_featurizer_fits_on_finite_pixels_only(indexes: bool) -> None:
    """The holed last row counts for nothing: the statistics (means, standard deviations,
    each chip's 99.5 % bounds, the fallback fill) are those of the chips without it."""
    chips = _holed_chips()
    holed, clean = Featurizer.fit(chips, indexes), Featurizer.fit(chips[:, :, :-1], indexes)
    np.testing.assert_allclose(holed.mean, clean.mean, rtol=1e-6)
    np.testing.assert_allclose(holed.std, clean.std, rtol=1e-6)
    np.testing.assert_array_equal(holed.fill_db, clean.fill_db)
    np.testing.assert_array_equal(holed.fill_db, np.median(chips[:, :, :-1], axis=(0, 2, 3)))
    out = holed(chips)
    assert np.isfinite(out).all()
    # every pixel but the holed row has the channels of the clean chips
    np.testing.assert_allclose(out[:, :, :-1], holed(chips[:, :, :-1]), rtol=1e-6, atol=1e-6)


def test_featurizer_refuses_a_band_without_finite_values() -> None:
    chips = _holed_chips()
    chips[:, 1] = np.nan
    with pytest.raises(ValueError, match="band 2 has no finite value"):
        Featurizer.fit(chips, True)
    # a chip band without finite values takes the train split's median of the band
    f = Featurizer.fit(_holed_chips(), False)
    out = f(chips[0]) * f.std[:, None, None] + f.mean[:, None, None]
    np.testing.assert_allclose(out[1], f.fill_db[1], rtol=1e-6)


TAIL = 8  # pixels at exactly the low and at the high end of the test chip's VV


def _tied_chip(size: int = 16) -> np.ndarray:
    """A dB chip whose VV has TAIL pixels at exactly -21 dB and TAIL at exactly -5 dB: its
    0.25th and 99.75th percentiles are those values with or without one pixel more or
    less in between, so its 99.5 % clip bounds cannot tell a filled pixel from a finite
    one."""
    rng = np.random.default_rng(11)
    vv = rng.uniform(-18.0, -8.0, (size, size))
    vh = vv - rng.uniform(4.0, 10.0, (size, size))
    vv.ravel()[:TAIL] = -21.0
    vv.ravel()[-TAIL:] = -5.0
    return np.stack([vv, vh]).astype(np.float32)


def _hole(chip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chip with a NaN VV pixel and an infinite VH pixel (away from the VV tails), and
    the chip with those pixels replaced by the documented fill: the median of the band's
    finite values in the holed chip."""
    holed = chip.copy()
    holed[0, 5, 6], holed[1, 9, 2] = np.nan, np.inf
    filled = holed.copy()
    filled[0, 5, 6] = np.median(holed[0][np.isfinite(holed[0])])
    filled[1, 9, 2] = np.median(holed[1][np.isfinite(holed[1])])
    return holed, filled


def _model(in_channels: int) -> pix2pix.UNetGenerator:
    """An untrained generator in eval mode (as predict runs it), with dropout layers."""
    torch.manual_seed(0)
    opts = pix2pix.Pix2PixOptions(ngf=4, n_down=3, dropout=0.5)
    return pix2pix.build_generator(opts, in_channels).eval()


@pytest.mark.parametrize("tta", [False, True])
@pytest.mark.parametrize("indexes", [False, True])
def test_a_nan_input_pixel_predicts_as_the_filled_input(indexes: bool, tta: bool) -> None:
    """Exactly: the prediction of a chip with a NaN (and an inf) input pixel equals, at every
    pixel, that of the same chip with the documented fill there, and is finite. Each TTA
    copy fills with its own median, which moves with the copy's gain, so TTA keeps this."""
    chip = _tied_chip()
    holed, filled = _hole(chip)
    features = Featurizer.fit(chip[None], indexes)
    model, dev = _model(len(features.names)), torch.device("cpu")
    got = pix2pix.predict_chip(model, features, holed, dev, tta)
    want = pix2pix.predict_chip(model, features, filled, dev, tta)
    assert got.shape == (16, 16) and np.isfinite(got).all()
    np.testing.assert_array_equal(got, want)
    # and the fill matters: the same chip with other values there predicts otherwise
    other = pix2pix.predict_chip(model, features, chip, dev, tta)
    assert not np.array_equal(got, other)


def test_a_nan_pixel_moves_other_predictions_only_through_the_chips_clip_bounds() -> None:
    """On a chip without tied tails the filled pixel counts in the filled chip's 99.5 %
    bounds and not in the holed chip's: a rank shift of one pixel in 256. It moves the
    predictions by far less than the pixel's own value does (about 1e-7 against 2e-3 here,
    when written)."""
    rng = np.random.default_rng(12)
    chip = _tied_chip()
    chip[0] = rng.uniform(-22.0, -4.0, chip[0].shape)
    holed, filled = _hole(chip)
    assert central_bounds(db_to_power(holed[0])) != central_bounds(db_to_power(filled[0]))
    features = Featurizer.fit(chip[None], True)
    model, dev = _model(len(features.names)), torch.device("cpu")
    got = pix2pix.predict_chip(model, features, holed, dev, True)
    want = pix2pix.predict_chip(model, features, filled, dev, True)
    other = pix2pix.predict_chip(model, features, chip, dev, True)
    assert np.isfinite(got).all()
    assert np.abs(got - want).max() < 1e-5
    assert np.abs(got - want).max() < 0.01 * np.abs(got - other).max()


def test_a_non_finite_prediction_fails_instead_of_being_written() -> None:
    features = Featurizer.fit(_tied_chip()[None], False)
    model = _model(2)
    with torch.no_grad():
        next(model.parameters()).fill_(np.nan)
    with pytest.raises(ContractError, match="non-finite"):
        pix2pix.predict_chip(model, features, _tied_chip(), torch.device("cpu"), False)


# -- augmentation and TTA --------------------------------------------------------------------


def _aligned_stack(n: int = 6, size: int = 32) -> torch.Tensor:
    """Channels (2 inputs, target, mask) that are exact functions of one random field."""
    field = torch.from_numpy(np.random.default_rng(1).random((n, 1, size, size)).astype(np.float32))
    return torch.cat([2.0 * field, field + 3.0, field, (field > 0.5).float()], dim=1)


@pytest.mark.parametrize("size", [0, 16])
def test_augmentation_keeps_inputs_target_and_mask_aligned(size: int) -> None:
    stack = _aligned_stack()
    out = augment(stack, torch.Generator().manual_seed(3), size)
    expect = size or 32
    assert out.shape == (6, 4, expect, expect)
    field = out[:, 2]
    assert torch.equal(out[:, 0], 2.0 * field) and torch.equal(out[:, 1], field + 3.0)
    assert torch.equal(out[:, 3], (field > 0.5).float())  # still binary, still the same pixels
    # nearest sampling: every output value is one of the sample's input values
    assert set(field[0].unique().tolist()) <= set(stack[0, 2].unique().tolist())
    if size == 0:
        assert not torch.equal(out, stack)  # it did transform
    again = augment(stack, torch.Generator().manual_seed(3), size)
    assert torch.equal(out, again)


def test_random_crop_keeps_alignment() -> None:
    stack = _aligned_stack()
    out = random_crop(stack, 8, torch.Generator().manual_seed(0))
    assert out.shape == (6, 4, 8, 8)
    assert torch.equal(out[:, 0], 2.0 * out[:, 2]) and torch.equal(
        out[:, 3], (out[:, 2] > 0.5).float()
    )


def test_tta_flips_are_undone_exactly() -> None:
    x = np.random.default_rng(2).normal(-12.0, 3.0, (2, 16, 12)).astype(np.float32)
    calls: list[int] = []

    def identity(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return batch[:, 0]

    assert np.array_equal(tta_predict(identity, x, gains=(1.0,)), x[0])
    assert calls == [4]  # four flips in one batch
    # the gains multiply linear power: a model linear in power averages back to the input
    power = tta_predict(lambda b: 10.0 ** (b[:, 0].astype(np.float64) / 10.0), x)
    np.testing.assert_allclose(power, 10.0 ** (x[0] / 10.0), rtol=1e-5)
    # a model that is not flip-equivariant gets its flips averaged
    ramp = tta_predict(lambda b: np.broadcast_to(np.arange(12.0), b[:, 0].shape), x)
    np.testing.assert_allclose(ramp, np.full((16, 12), 5.5))


# -- the second-sensor mapping -------------------------------------------------------------


def test_quantile_map_recovers_a_known_gain_and_offset() -> None:
    rng = np.random.default_rng(0)
    second = rng.beta(2.0, 3.0, 200_000)  # second-sensor NDVI of one area
    target = GAIN * rng.beta(2.0, 3.0, 200_000) + OFFSET  # another area, same mix of stages
    m = fit_quantile_map(second, target)
    assert m.gain == pytest.approx(GAIN, abs=0.01) and m.offset == pytest.approx(OFFSET, abs=0.005)
    np.testing.assert_allclose(m(np.array([0.0, 0.5])), [m.offset, m.gain * 0.5 + m.offset])


def _sar_split(rng: np.random.Generator, ndvi: np.ndarray, second_sensor: bool) -> SplitArrays:
    """Chips of one constant (target-scale) NDVI each, SAR rising with it, plus noise."""
    n, size = len(ndvi), 16
    true = np.repeat(ndvi, size * size).reshape(n, size, size)
    vv = -16.0 + 8.0 * true + rng.normal(0.0, 1.0, true.shape)
    vh = -24.0 + 10.0 * true + rng.normal(0.0, 1.0, true.shape)
    return SplitArrays(
        ids=tuple(f"c{i}" for i in range(n)),
        inputs=np.stack([vv, vh], axis=1).astype(np.float32),
        target=((true - OFFSET) / GAIN if second_sensor else true).astype(np.float32),
        valid=np.ones(true.shape, bool),
    )


def test_sar_bins_map_recovers_the_map_where_the_splits_differ_in_crop_stages() -> None:
    rng = np.random.default_rng(5)
    # the second sensor's (pretrain) area is young crops mostly, the target area older ones
    source = _sar_split(rng, 0.1 + 0.8 * rng.beta(2.0, 4.0, 600), second_sensor=True)
    target = _sar_split(rng, 0.1 + 0.8 * rng.beta(4.0, 2.0, 600), second_sensor=False)
    m = fit_sar_bins_map(source, target, n_bins=20)
    assert m.gain == pytest.approx(GAIN, abs=0.05) and m.offset == pytest.approx(OFFSET, abs=0.03)
    # matching the marginal distributions instead is fooled by the different stage mix
    q = fit_quantile_map(source.target.ravel(), target.target.ravel())
    assert abs(q.offset - OFFSET) > 0.1


def test_box_smooth_and_sar_bins_map_skip_non_finite_sar() -> None:
    x = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
    holed = x.copy()
    holed[0, 0, 0, 0], holed[0, 0, 3, :] = np.nan, -np.inf
    out = box_smooth(holed, 3)
    assert out[0, 0, 0, 0] == pytest.approx(np.mean([1.0, 4.0, 5.0]))  # its finite neighbours
    assert out[0, 0, 3, 3] == pytest.approx(np.mean([10.0, 11.0]))
    assert np.isfinite(out).all()
    assert np.isnan(box_smooth(np.full((1, 1, 3, 3), np.nan, np.float32))).all()
    np.testing.assert_array_equal(box_smooth(x, 3), box_smooth(x.copy(), 3))
    rng = np.random.default_rng(5)
    source = _sar_split(rng, 0.1 + 0.8 * rng.beta(2.0, 4.0, 600), second_sensor=True)
    target = _sar_split(rng, 0.1 + 0.8 * rng.beta(4.0, 2.0, 600), second_sensor=False)
    for split in (source, target):
        split.inputs[::7, 0, :3] = np.nan  # no data at the top of every 7th chip's VV
        split.inputs[::5, 1, :, :2] = np.inf
    m = fit_sar_bins_map(source, target, n_bins=20)
    assert m.gain == pytest.approx(GAIN, abs=0.05) and m.offset == pytest.approx(OFFSET, abs=0.03)


# -- whole runs through the container contract ---------------------------------------------


HOLES = ((3, 5, 0), (20, 7, 1), (31, 0, 0))
"""(row, column, band) of the non-finite input values in every split's first chip."""


def _write_chip(
    root: Path,
    split: str,
    sid: str,
    col: int,
    inputs: np.ndarray,
    ndvi: np.ndarray,
    valid: np.ndarray,
) -> None:
    size = inputs.shape[-1]
    grid = Grid.from_origin("EPSG:32654", 270000.0 + col * size * 10, 4045000.0, 10.0, size, size)
    target = np.where(valid == 1, np.round(ndvi, 4), 0.0).astype(np.float32)
    write_raster(
        root / split / "inputs" / f"{sid}.tif", inputs, grid, band_names=("VV_db", "VH_db")
    )
    write_raster(root / split / "targets" / f"{sid}.tif", target, grid)
    write_raster(root / split / "valid" / f"{sid}.tif", valid, grid)


def _write_split(root: Path, split: str, n: int, rng: np.random.Generator, col: int) -> int:
    """``n`` 32x32 ndvi chips: 8x8 farm parcels of constant NDVI, SAR rising with it, plus
    noise. The first chip has non-finite inputs (:data:`HOLES`), not valid there, as the
    importers have it."""
    size = 32
    for i in range(n):
        col += 1
        parcels = rng.uniform(0.1, 0.9, (4, 4))
        farm = rng.random((4, 4)) < 0.75
        ndvi = np.kron(parcels, np.ones((8, 8)))
        valid = np.kron(farm, np.ones((8, 8), np.uint8)).astype(np.uint8)
        vv = -16.0 + 8.0 * ndvi + rng.normal(0.0, 1.0, ndvi.shape)
        vh = -24.0 + 10.0 * ndvi + rng.normal(0.0, 1.0, ndvi.shape)
        if split == "pretrain":
            ndvi = (ndvi - OFFSET) / GAIN
        inputs = np.round(np.stack([vv, vh]), 3).astype(np.float32)
        if i == 0:
            for (row, column, band), bad in zip(HOLES, (np.nan, -np.inf, np.nan), strict=True):
                inputs[band, row, column] = bad
                valid[row, column] = 0
        assert inputs.shape[-1] == size
        _write_chip(root, split, f"{split}_{i:02d}", col, inputs, ndvi, valid)
    return col


@pytest.fixture(scope="module")
def tiny_ndvi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-ndvi")
    rng = np.random.default_rng(2017)
    col = 0
    for split, n in (("train", 8), ("val", 4), ("test", 4), ("pretrain", 10)):
        col = _write_split(root, split, n, rng, col)
    return root


def known_ndvi(vv_db: np.ndarray, vh_db: np.ndarray) -> np.ndarray:
    """The known answer of :func:`known_task`: NDVI = RVI(VV, VH) / 2, pixel by pixel."""
    return rvi(db_to_power(vv_db), db_to_power(vh_db)) / 2.0


@pytest.fixture(scope="module")
def known_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32x32 chips of 8x8 parcels whose VV and the VH - VV ratio vary by parcel, plus 0.5 dB
    speckle per pixel and band; the NDVI of every pixel is :func:`known_ndvi` of its own
    two (stored) dB values, so a perfect model has MSE 0 (to the 1e-4 rounding of the
    stored NDVI). The pretrain split's NDVI is the second sensor's, as in ndvi-synth.
    Each split's first chip has a NaN VV pixel (not valid there)."""
    root = tmp_path_factory.mktemp("known-ndvi")
    rng = np.random.default_rng(42)
    col = 0
    for split, n in (("train", 12), ("val", 4), ("test", 6), ("pretrain", 12)):
        for i in range(n):
            col += 1
            base = np.kron(rng.uniform(-14.0, -8.0, (4, 4)), np.ones((8, 8)))
            ratio = np.kron(rng.uniform(-11.0, -3.0, (4, 4)), np.ones((8, 8)))
            vv = base + rng.normal(0.0, 0.5, base.shape)
            vh = base + ratio + rng.normal(0.0, 0.5, base.shape)
            inputs = np.round(np.stack([vv, vh]), 3).astype(np.float32)
            ndvi = known_ndvi(inputs[0], inputs[1])
            if split == "pretrain":
                ndvi = (ndvi - OFFSET) / GAIN
            valid = np.kron(rng.random((4, 4)) < 0.75, np.ones((8, 8), np.uint8))
            if i == 0:  # no data at one pixel, as in _write_split
                inputs[0, 12, 12], valid[12, 12] = np.nan, 0
            _write_chip(root, split, f"{split}_{i:02d}", col, inputs, ndvi, valid.astype(np.uint8))
    return root


def _variants() -> dict[str, dict[str, Any]]:
    """Each variant's own options, as the harness reads the entry file (what it needs,
    ``requires_splits``, is not an option)."""
    return {name: dict(table) for name, table in load_entry(ENTRY).variants.items()}


def _run(
    data: Path, work: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], seed: int = 0
) -> Path:
    """Train and predict through ``baselines.__main__.main``; return the prediction folder."""
    model, output = work / "model", work / "output"
    model.mkdir(parents=True)
    output.mkdir()
    for name, path in {
        "TRAIN": data / "train",
        "VAL": data / "val",
        "PRETRAIN": data / "pretrain",
        "TEST_INPUTS": data / "test" / "inputs",
    }.items():
        monkeypatch.setenv(f"SARBENCH_DATA_{name}", str(path))
    monkeypatch.setenv("SARBENCH_MODEL", str(model))
    monkeypatch.setenv("SARBENCH_OUTPUT", str(output))
    monkeypatch.setenv("SARBENCH_WEIGHTS", str(work / "no-weights"))
    for phase in ("train", "predict"):
        config = {
            "contract": 1,
            "phase": phase,
            "task": {
                "name": "ndvi",
                "input_bands": 2,
                "prediction": {"dtype": "float32", "range": [-1, 1]},
            },
            "dataset": {
                "name": "tiny-ndvi",
                "digest": "sha256:0",
                "bands": ["VV_db", "VH_db"],
                "splits": ["train", "val", "pretrain"],
            },
            "entry": "pix2pix",
            "variant": "test",
            "options": {"model": "pix2pix", **options},
            "seed": seed,
            "profile": "quick",
            "time_budget_s": 600,
            "resources": {"cpus": 2.0, "memory_bytes": 2**33, "gpu": False},
        }
        path = work / f"run.{phase}.json"
        path.write_text(json.dumps(config))
        monkeypatch.setenv("SARBENCH_CONFIG_RUN_JSON", str(path))
        assert main([phase]) == 0
    return output


@pytest.mark.parametrize("variant", list(_variants()))
def test_every_variant_trains_predicts_and_scores(
    variant: str,
    tiny_ndvi: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every split's first chip has non-finite inputs: training and prediction go through
    (validation refuses a non-finite prediction) and the fill is logged."""
    options = {**TINY, **_variants()[variant]}
    output = _run(tiny_ndvi, tmp_path, monkeypatch, options)
    log = capsys.readouterr().out
    assert "train: 3 non-finite input values in 1 chip(s), filled" in log
    assert "filled 3 non-finite input values in 1 chip(s)" in log and "test_00 (3)" in log
    test = SplitDir(tiny_ndvi / "test")
    task = get_task("ndvi")
    assert set(validate_predictions(output, SplitDir(tiny_ndvi / "test" / "inputs"), task)) == {
        "test_00",
        "test_01",
        "test_02",
        "test_03",
    }
    result = score_predictions(output, test, task)
    assert 0.0 <= result.metrics["mse"] < 0.5 and result.interval.low <= result.interval.high
    pred = read_raster(output / "test_00.tif")
    assert pred.data.dtype == np.float32 and pred.grid == test.load("test_00").grid
    assert np.isfinite(pred.data).all() and np.abs(pred.data).max() > 0.0
    artifacts = tmp_path / "model" / "artifacts"
    written = json.loads((artifacts / "options.json").read_text())
    assert written["options"]["sar_indexes"] == options.get("sar_indexes", True)
    if options.get("pretrain", True):
        mapping = json.loads((artifacts / "mapping.json").read_text())
        assert mapping["method"] == "quantiles"
        assert mapping["gain"] == pytest.approx(GAIN, abs=0.2)
        assert (artifacts / "loss_pretrain.csv").is_file()
    if options.get("finetune", True):
        assert (artifacts / "loss_finetune.csv").read_text().startswith("epoch,l1,gan,d,val_mse")


def test_same_seed_same_predictions(
    tiny_ndvi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {**TINY, "tta": False}
    a = _run(tiny_ndvi, tmp_path / "a", monkeypatch, options)
    b = _run(tiny_ndvi, tmp_path / "b", monkeypatch, options)
    c = _run(tiny_ndvi, tmp_path / "c", monkeypatch, options, seed=1)
    for name in ("test_00.tif", "test_03.tif"):
        pa, pb = read_raster(a / name).data, read_raster(b / name).data
        assert np.array_equal(pa, pb)
    assert not np.array_equal(
        read_raster(a / "test_00.tif").data, read_raster(c / "test_00.tif").data
    )


def test_predict_fails_on_a_broken_model_and_writes_nothing(
    tiny_ndvi: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A generator with a NaN weight predicts NaN: the predict phase fails naming the chip,
    and writes no prediction (before, NaN was written as 0)."""
    output = _run(tiny_ndvi, tmp_path, monkeypatch, {**TINY, "pretrain": False, "tta": False})
    for written in output.iterdir():
        written.unlink()
    path = tmp_path / "model" / pix2pix.CHECKPOINT
    ckpt = torch.load(path, weights_only=True)
    next(iter(ckpt["generator"].values())).fill_(float("nan"))
    torch.save(ckpt, path)
    capsys.readouterr()
    assert main(["predict"]) == 2
    err = capsys.readouterr().err
    assert "error: test input test_00: the generator predicted 1024 non-finite value(s)" in err
    assert list(output.iterdir()) == []


LEARN = {
    **TINY,
    "ngf": 8,
    "epochs_pretrain": 20,
    "epochs_finetune": 20,
    "patience": 20,
    "lr": 2e-3,
    "lr_finetune": 1e-3,
}
"""The tiny networks of TINY, trained for a few seconds (two CPU cores)."""
MARGIN = 0.4
"""A run that learns must leave at most this share of the trivial predictor's MSE (seeds
0 to 3 left at most 0.27 when written: the full variant about 0.1, no-pretrain, with only
its 20 epochs from scratch, the most)."""


def _mse_against_trivial(data: Path, output: Path) -> tuple[float, float]:
    """The test MSE of the predictions in ``output``, and that of the trivial predictor:
    the mean NDVI of the train split's farm pixels, everywhere."""
    test, train = SplitDir(data / "test"), SplitDir(data / "train")
    mean = float(np.concatenate([s.target[s.valid] for s in train]).mean())
    trivial = float(np.mean(np.concatenate([(s.target[s.valid] - mean) ** 2 for s in test])))
    return score_predictions(output, test, get_task("ndvi")).metrics["mse"], trivial


@pytest.mark.parametrize("variant", list(_variants()))
def test_every_variant_learns_a_known_function(
    variant: str, known_task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NDVI is a fixed function of VV and VH (:func:`known_ndvi`); trained for a few
    seconds, every variant beats the train mean by the stated MARGIN."""
    output = _run(known_task, tmp_path, monkeypatch, {**LEARN, **_variants()[variant]})
    mse, trivial = _mse_against_trivial(known_task, output)
    assert mse <= MARGIN * trivial, f"{variant}: mse {mse:.5f}, train mean {trivial:.5f}"


def test_a_model_that_learns_nothing_misses_the_margin(
    known_task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run with learning rates 0 (the generator keeps its initial weights) does
    not pass the learning test: the margin can tell."""
    output = _run(known_task, tmp_path, monkeypatch, {**LEARN, "lr": 0.0, "lr_finetune": 0.0})
    mse, trivial = _mse_against_trivial(known_task, output)
    assert mse > MARGIN * trivial
    assert mse > trivial  # not even as good as the train mean


# -- options ---------------------------------------------------------------------------------


def test_entry_options_resolve_for_every_profile_and_variant() -> None:
    entry = tomllib.loads(ENTRY.read_text())
    assert entry["default_variant"] == "full" and entry["options"]["model"] == "pix2pix"
    assert set(entry["variants"]) == {
        "full",
        "no-pretrain",
        "no-finetune",
        "no-sar-indexes",
        "no-train-aug",
        "no-tta",
    }
    for profile in ("quick", "paper"):
        for variant in entry["variants"]:
            merged = load_entry(ENTRY).resolve_options(variant, profile)
            opts = resolve_options(pix2pix.Pix2PixOptions, merged, ignore=("model",))
            assert opts.crop % 2**opts.n_down == 0
            off = {
                k
                for k in ("pretrain", "finetune", "sar_indexes", "train_aug", "tta")
                if not getattr(opts, k)
            }
            assert off == ({variant[3:].replace("-", "_")} if variant != "full" else set())


def _settings_table(entry: str) -> dict[str, tuple[Any, Any, str]]:
    """The first table under ``### <entry>`` in baselines/README.md: option name -> (quick
    value, paper value, source), for the rows whose first cell is a backticked name."""
    section = README.read_text().split(f"\n### {entry}\n", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, tuple[Any, Any, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`([a-z0-9_]+)`", cells[0]) if len(cells) == 4 else None
        if name is None:
            continue
        assert name[1] not in rows, f"{name[1]} has two rows"
        quick, paper = (tomllib.loads(f"v = {c.strip('`')}")["v"] for c in cells[1:3])
        rows[name[1]] = (quick, paper, cells[3])
    return rows


def test_settings_table_says_every_option_its_values_and_source() -> None:
    """baselines/README.md's pix2pix table has a row per option, with the values the entry
    file resolves to under each profile (the paper values being the options' defaults)
    and a source that is a study, the pix2pix paper or our choice."""
    table = _settings_table("pix2pix")
    names = [f.name for f in fields(pix2pix.Pix2PixOptions)]
    assert sorted(table) == sorted(names)
    entry = load_entry(ENTRY)
    defaults = pix2pix.Pix2PixOptions()
    for column, profile in enumerate(("quick", "paper")):
        merged = entry.resolve_options("full", profile)
        opts = resolve_options(pix2pix.Pix2PixOptions, merged, ignore=("model",))
        for name in names:
            assert table[name][column] == getattr(opts, name), f"{name} under {profile}"
            if profile == "paper":
                assert getattr(defaults, name) == getattr(opts, name), f"default of {name}"
    for name, (_, _, source) in table.items():
        assert source.startswith(("study `00", "pix2pix paper", "our choice")), name
    assert table["lambda_l1"][1] == 100.0 and "Isola" in table["lambda_l1"][2]


@pytest.mark.parametrize(
    "bad",
    [
        {"mapping": "median"},
        {"pretrain": False, "finetune": False},
        {"crop": 20, "n_down": 3},
        {"unknown": 1},
    ],
)
def test_bad_options_are_contract_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ContractError):
        resolve_options(pix2pix.Pix2PixOptions, bad)
