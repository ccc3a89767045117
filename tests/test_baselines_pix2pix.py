"""The pix2pix ndvi baseline: SAR indexes, augmentation, TTA, the sensor mapping, and whole
train + predict runs through ``python -m baselines`` on a tiny ndvi dataset, scored."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # the `baselines` extra: installed by `make install`, so never skipped

from baselines import pix2pix
from baselines.__main__ import main
from baselines.contract import ContractError, resolve_options
from baselines.pix2pix_data import (
    Featurizer,
    SplitArrays,
    augment,
    fit_quantile_map,
    fit_sar_bins_map,
    random_crop,
    tta_predict,
)
from baselines.sar_indexes import (
    INDEX_NAMES,
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

ENTRY = Path(__file__).resolve().parents[1] / "submissions" / "pix2pix.toml"
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


# -- whole runs through the container contract ---------------------------------------------


def _write_split(root: Path, split: str, n: int, rng: np.random.Generator, col: int) -> int:
    """``n`` 32x32 ndvi chips: 8x8 farm parcels of constant NDVI, SAR rising with it."""
    size = 32
    for i in range(n):
        col += 1
        grid = Grid.from_origin(
            "EPSG:32654", 270000.0 + col * size * 10, 4045000.0, 10.0, size, size
        )
        parcels = rng.uniform(0.1, 0.9, (4, 4))
        farm = rng.random((4, 4)) < 0.75
        ndvi = np.kron(parcels, np.ones((8, 8)))
        valid = np.kron(farm, np.ones((8, 8), np.uint8)).astype(np.uint8)
        vv = -16.0 + 8.0 * ndvi + rng.normal(0.0, 1.0, ndvi.shape)
        vh = -24.0 + 10.0 * ndvi + rng.normal(0.0, 1.0, ndvi.shape)
        if split == "pretrain":
            ndvi = (ndvi - OFFSET) / GAIN
        target = np.where(valid == 1, np.round(ndvi, 4), 0.0).astype(np.float32)
        sid = f"{split}_{i:02d}"
        inputs = np.round(np.stack([vv, vh]), 3).astype(np.float32)
        write_raster(
            root / split / "inputs" / f"{sid}.tif", inputs, grid, band_names=("VV_db", "VH_db")
        )
        write_raster(root / split / "targets" / f"{sid}.tif", target, grid)
        write_raster(root / split / "valid" / f"{sid}.tif", valid, grid)
    return col


@pytest.fixture(scope="module")
def tiny_ndvi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-ndvi")
    rng = np.random.default_rng(2017)
    col = 0
    for split, n in (("train", 8), ("val", 4), ("test", 4), ("pretrain", 10)):
        col = _write_split(root, split, n, rng, col)
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
    variant: str, tiny_ndvi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {**TINY, **_variants()[variant]}
    output = _run(tiny_ndvi, tmp_path, monkeypatch, options)
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


def test_training_learns_the_tiny_task(
    tiny_ndvi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More epochs on the tiny parcels beat predicting the train mean everywhere."""
    options = {
        **TINY,
        "epochs_pretrain": 15,
        "epochs_finetune": 15,
        "patience": 15,
        "lr": 2e-3,
        "lr_finetune": 1e-3,
        "sar_indexes": False,
        "tta": False,
    }
    output = _run(tiny_ndvi, tmp_path, monkeypatch, options)
    test = SplitDir(tiny_ndvi / "test")
    train = SplitDir(tiny_ndvi / "train")
    mean = float(np.mean([s.target[s.valid].mean() for s in train]))
    constant = float(np.mean(np.concatenate([(s.target[s.valid] - mean) ** 2 for s in test])))
    mse = score_predictions(output, test, get_task("ndvi")).metrics["mse"]
    assert mse < 0.5 * constant  # 0.32 of it when written


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
    assert entry["profiles"]["paper"]["lambda_l1"] == 500.0
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
