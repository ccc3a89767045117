"""The flood baselines (threshold, UNet, Prithvi) run as the container would run them.

Each run test freezes a tiny flood dataset, writes ``run.json`` files and the
``SARBENCH_*`` variables of the mounts, calls ``python -m baselines``'s ``main``
in-process for ``train`` then ``predict``, and validates and scores the predictions with
the harness's own code. Three tiny datasets have a known answer:

- ``data`` (:class:`tests.helpers.TinySource`, pre/post): flood where ``post - pre < -2``
  dB, pixel by pixel;
- ``vv_vh`` (the same, VV/VH of one date): flood where ``VV < -14`` dB;
- ``blobs`` (:class:`BlobFloods`, pre/post): flood rectangles where the post band drops
  by about 10 dB, beside permanent water dark on both dates (not flood) and speckle.

A model *learns* when its test IoU beats both trivial predictors, all-water and all-dry,
scored by the same code, by :data:`MARGIN`; ``0 <= iou <= 1`` shows nothing.

The Prithvi checkpoint tests read ``tests/data/prithvi/published_keys.json``, the tensor
names and shapes of the published ``Prithvi_EO_V1_100M.pt`` written from the published
model code (``tests/data/prithvi/make.py``), never from SARBench's own encoder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from baselines import flood_common, prithvi, threshold, unet
from baselines.__main__ import main
from baselines.contract import ContractError, resolve_options
from harness.datasets.loader import SplitDir
from harness.datasets.ops import materialise
from harness.datasets.source import SampleRecord
from harness.entries import load_entry
from harness.geo import Grid, read_raster, write_raster
from harness.scoring.score import ScoreResult, score_predictions
from harness.scoring.validate import validate_predictions
from harness.settings import REPO_ROOT, Settings
from harness.tasks import get_task
from tests.data.prithvi.make import published_keys, sincos_table
from tests.helpers import VV_VH_BANDS, TinySource

SIZE = 32
COUNTS = {"train": 6, "val": 2, "test": 3}
BLOB_COUNTS = {"train": 12, "val": 3, "test": 6}
MARGIN = 0.25
"""How far (absolute IoU) a learned model must beat the better trivial predictor."""
PUBLISHED = json.loads((REPO_ROOT / "tests/data/prithvi/published_keys.json").read_text())
TINY_UNET = {
    "model": "unet",
    "epochs": 2,
    "batch_size": 2,
    "crop": 32,
    "base_channels": 4,
    "depth": 2,
}
LEARNING_UNET = TINY_UNET | {"epochs": 12, "batch_size": 4, "base_channels": 8, "lr": 0.01}
"""Enough for the UNet to learn ``blobs`` (test IoU 0.86-0.97 over seeds 0-2), in seconds."""
TINY_PRITHVI = {
    "model": "prithvi",
    "size": "tiny",
    "epochs": 1,
    "batch_size": 2,
    "crop": 32,
    "decoder_channels": 16,
    "lr": 1e-3,
}
LEARNING_PRITHVI = TINY_PRITHVI | {
    "epochs": 15,
    "batch_size": 4,
    "samples_per_epoch": 48,
    "lr": 0.01,
    "schedule": "constant",
    "augment": False,
}
"""Enough for the tiny ViT to learn ``blobs`` (test IoU 0.53-0.58 over seeds 0-2 and both
adapters; it needs about 70 steps before any logit crosses 0), in seconds."""


class BlobFloods(TinySource):
    """Chips with a known answer that has a shape: land (``pre`` about -9 dB, ``post`` the
    same plus noise), a flood rectangle where ``post`` drops to about -19 dB (the target),
    and in half the chips a permanent-water rectangle dark on both dates (not flood)."""

    def samples(self) -> Iterator[SampleRecord]:
        rng = np.random.default_rng(self.seed)
        n = self.size
        col = 0
        for split, count in self.counts.items():
            for i in range(count):
                col += 1
                grid = Grid.from_origin(
                    "EPSG:32630", 600000.0 + col * n * 10, 4370000.0, 10.0, n, n
                )
                pre = rng.normal(-9.0, 1.0, (n, n))
                post = pre + rng.normal(0.0, 0.7, (n, n))
                flood = self._rectangle(rng)
                post[flood] = rng.normal(-19.0, 1.0, int(flood.sum()))
                water = self._rectangle(rng) & ~flood if i % 2 else np.zeros((n, n), bool)
                pre[water] = rng.normal(-20.0, 1.0, int(water.sum()))
                post[water] = rng.normal(-20.0, 1.0, int(water.sum()))
                valid = np.ones((n, n), np.uint8)
                valid[:3, :5] = 0
                yield SampleRecord(
                    split=split,
                    id=f"{split}_{i:02d}",
                    inputs=np.round(np.stack([pre, post]), 3).astype(np.float32),
                    grid=grid,
                    target=flood.astype(np.uint8),
                    valid=valid,
                )

    def _rectangle(self, rng: np.random.Generator) -> np.ndarray:
        n = self.size
        h, w = (int(v) for v in rng.integers(n // 3, 3 * n // 4, 2))
        r, c = int(rng.integers(0, n - h + 1)), int(rng.integers(0, n - w + 1))
        mask = np.zeros((n, n), bool)
        mask[r : r + h, c : c + w] = True
        return mask


def _freeze(factory: pytest.TempPathFactory, source: TinySource) -> Path:
    home = factory.mktemp("home")
    settings = Settings(home=home, data_root=home / "data", manifests_dir=home / "datasets")
    return materialise(settings, source, progress=False).path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen tiny flood dataset (32x32 chips, a corner of each chip not valid)."""
    return _freeze(tmp_path_factory, TinySource(name="tiny-flood", counts=COUNTS, size=SIZE))


@pytest.fixture(scope="module")
def vv_vh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with bands VV/VH of one date: flood where VV < -14 dB."""
    source = TinySource(name="tiny-vv-vh", counts=COUNTS, size=SIZE, bands=VV_VH_BANDS)
    return _freeze(tmp_path_factory, source)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen :class:`BlobFloods` dataset."""
    return _freeze(tmp_path_factory, BlobFloods(name="blob-flood", counts=BLOB_COUNTS, size=SIZE))


@dataclasses.dataclass
class Run:
    """The folders of one run: its model, its predictions, its weights."""

    root: Path
    data: Path
    test_inputs: Path | None = None
    """Where the predict phase reads its inputs (default: the dataset's test inputs)."""

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def weights(self) -> Path:
        return self.root / "weights"

    def phase(
        self, monkeypatch: pytest.MonkeyPatch, phase: str, options: dict[str, Any], **kw: Any
    ) -> int:
        """Write the phase's run.json, point the variables at the mounts, run ``main``."""
        split = SplitDir(self.data / "train")
        config = {
            "contract": 1,
            "phase": phase,
            "task": {"name": kw.get("task", "flood"), "input_bands": 2},
            "dataset": {
                "name": self.data.name,
                "digest": "sha256:0",
                "bands": list(next(iter(split)).band_names),
            },
            "entry": options["model"],
            "variant": "default",
            "options": options,
            "seed": kw.get("seed", 0),
            "profile": "quick",
            "time_budget_s": 600,
            "resources": {"cpus": 2.0, "memory_bytes": 2**33, "gpu": False},
        }
        if "band_roles" in kw:  # else read off the band names, as in an older run.json
            config["dataset"]["band_roles"] = kw["band_roles"]
        for folder in (self.model, self.output):
            folder.mkdir(parents=True, exist_ok=True)
        run_json = self.root / f"run-{phase}.json"
        run_json.write_text(json.dumps(config))
        env = {
            "SARBENCH_CONFIG_RUN_JSON": run_json,
            "SARBENCH_MODEL": self.model,
            "SARBENCH_OUTPUT": self.output,
            "SARBENCH_WEIGHTS": self.weights,
            "SARBENCH_DATA_TRAIN": self.data / "train",
            "SARBENCH_DATA_VAL": self.data / "val",
            "SARBENCH_DATA_TEST_INPUTS": self.test_inputs or self.data / "test" / "inputs",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        return main([phase])

    def train_predict(
        self, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], **kw: Any
    ) -> None:
        assert self.phase(monkeypatch, "train", options, **kw) == 0
        assert self.phase(monkeypatch, "predict", options, **kw) == 0

    def score(self) -> ScoreResult:
        return score_folder(self.output, self.data)

    def predictions(self) -> dict[str, np.ndarray]:
        return {p.stem: read_raster(p).data for p in sorted(self.output.glob("*.tif"))}


def new_run(tmp_path: Path, data: Path, name: str = "run") -> Run:
    return Run(tmp_path / name, data)


def score_folder(folder: Path, data: Path) -> ScoreResult:
    split = SplitDir(data / "test")
    assert set(validate_predictions(folder, split, get_task("flood"))) == set(split.ids)
    return score_predictions(folder, split, get_task("flood"), n_resamples=200)


def trivial_ious(tmp_path: Path, data: Path) -> dict[str, float]:
    """The test IoU of predicting all water and all dry, scored as any prediction is."""
    out = {}
    for name, value in {"all-water": 1, "all-dry": 0}.items():
        folder = tmp_path / name
        folder.mkdir(parents=True)
        for sample in SplitDir(data / "test"):
            mask = np.full(sample.grid.shape, value, np.uint8)
            write_raster(folder / f"{sample.id}.tif", mask, sample.grid)
        out[name] = score_folder(folder, data).metrics["iou"]
    return out


def assert_learns(run: Run, tmp_path: Path) -> float:
    """The run's test IoU, asserted to beat every trivial predictor by :data:`MARGIN`."""
    iou = run.score().metrics["iou"]
    trivial = trivial_ious(tmp_path / "trivial", run.data)
    assert iou >= max(trivial.values()) + MARGIN, (iou, trivial)
    return iou


# -- threshold ----------------------------------------------------------------------------


def test_threshold_finds_the_rule_on_train_and_val(tmp_path, data, monkeypatch) -> None:
    run = new_run(tmp_path, data)
    run.train_predict(monkeypatch, {"model": "threshold"})
    doc = json.loads((run.model / "threshold.json").read_text())
    assert doc["threshold_db"] == pytest.approx(-2.0, abs=0.011)
    assert doc["fit_iou"]["pooled"] > 0.99 and set(doc["fit_iou"]) == {"pooled", "train", "val"}
    assert assert_learns(run, tmp_path) > 0.99
    assert (run.model / "artifacts" / "threshold_curve.csv").is_file()
    options = json.loads((run.model / "artifacts" / "options.json").read_text())
    assert options["non_default"] == []


@pytest.mark.parametrize(
    "variant",
    [
        {"selection": "otsu"},  # the labels unused: the change histogram's two modes
        {"smooth_px": 5},
    ],
    ids=["otsu", "smoothed"],
)
def test_threshold_variants_learn_the_flood_rectangles(
    tmp_path, blobs, monkeypatch, variant
) -> None:
    run = new_run(tmp_path, blobs)
    run.train_predict(monkeypatch, {"model": "threshold"} | variant)
    assert assert_learns(run, tmp_path) > 0.8


def test_threshold_single_band_finds_dark_vv(tmp_path, vv_vh, monkeypatch) -> None:
    run = new_run(tmp_path, vv_vh)
    single = {"model": "threshold", "method": "band", "band": 0}
    run.train_predict(monkeypatch, single, band_roles=["VV", "VH"])
    assert json.loads((run.model / "threshold.json").read_text())["threshold_db"] == (
        pytest.approx(-14.0, abs=0.011)
    )
    assert assert_learns(run, tmp_path) > 0.99


def test_box_mean_matches_a_direct_window_mean() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(9, 11))
    a[2, 3] = a[7, 0] = np.nan
    got = threshold.box_mean(a, 3)
    padded = np.pad(a, 1, mode="reflect")
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):
            assert got[r, c] == pytest.approx(np.nanmean(padded[r : r + 3, c : c + 3]))


def test_otsu_splits_two_modes() -> None:
    hist = threshold.Histograms.empty()
    rng = np.random.default_rng(0)
    f = np.concatenate([rng.normal(-8, 1, 5000), rng.normal(0, 1, 5000)])
    hist.add(f, np.zeros(f.shape, np.uint8), np.ones(f.shape, bool))
    assert -6.0 < hist.otsu() < -2.0


def test_threshold_module_does_not_import_torch() -> None:
    code = "import sys, baselines.threshold; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_wrong_task_and_unknown_option_are_refused(tmp_path, data, monkeypatch, capsys) -> None:
    run = new_run(tmp_path, data)
    assert run.phase(monkeypatch, "train", {"model": "threshold"}, task="ndvi") == 2
    assert run.phase(monkeypatch, "train", {"model": "unet", "epoch": 3}) == 2
    err = capsys.readouterr().err
    assert "not 'ndvi'" in err and "unknown option(s) for UNetOptions: epoch" in err


def test_variants_are_refused_on_band_roles_they_cannot_use(
    tmp_path, data, monkeypatch, capsys
) -> None:
    run = new_run(tmp_path, data)
    vv_vh = {"band_roles": ["VV", "VH"]}
    assert run.phase(monkeypatch, "train", {"model": "threshold"}, **vv_vh) == 2
    single = {"model": "threshold", "method": "band", "band": 0}
    assert run.phase(monkeypatch, "train", single, band_roles=["pre", "post"]) == 2
    temporal = TINY_PRITHVI | {"adapter": "temporal"}
    assert run.phase(monkeypatch, "train", temporal, **vv_vh) == 2
    err = capsys.readouterr().err
    assert "(method 'difference': post minus pre) needs bands pre/post" in err
    assert "are VV/VH" in err and "band 0 is pre" in err
    assert "(adapter 'temporal': the bands as two dates) needs bands pre/post" in err
    assert not (run.model / "threshold.json").exists()
    # what fits runs: single-band on bands declared VV/VH (these labels follow pre/post)
    run.train_predict(monkeypatch, single, **vv_vh)
    assert set(run.predictions()) == set(SplitDir(data / "test").ids)
    # a model trained on pre/post is refused on VV/VH inputs
    trained = new_run(tmp_path, data, "unet")
    assert trained.phase(monkeypatch, "train", TINY_UNET) == 0
    assert trained.phase(monkeypatch, "predict", TINY_UNET, **vv_vh) == 2
    assert "trained on bands pre/post, the inputs are VV/VH" in capsys.readouterr().err


# -- non-finite inputs and outputs --------------------------------------------------------


NAN_PIXELS = ((10, 12, (0, 1)), (20, 5, (1,)))
"""(row, column, bands) set to NaN in the first test chip: both bands, then post only."""


def _test_inputs_with(tmp_path: Path, data: Path, name: str, values: list[float]) -> Path:
    """A copy of ``data``'s test inputs whose first chip holds ``values[b]`` at band ``b``
    of each pixel of :data:`NAN_PIXELS` (NaN: the missing value; else the fill value)."""
    folder = tmp_path / name / "inputs"
    shutil.copytree(data / "test" / "inputs", folder)
    first = sorted(folder.glob("*.tif"))[0]
    raster = read_raster(first)
    x = raster.data.astype(np.float32).copy()
    for r, c, bands in NAN_PIXELS:
        for b in bands:
            x[b, r, c] = values[b]
    write_raster(first, x, raster.grid, band_names=raster.band_names)
    return folder


def _fill_values(run: Run, model: str) -> list[float]:
    """The band values a non-finite input stands for, as the trained model saved them."""
    if model == "threshold":
        return json.loads((run.model / "threshold.json").read_text())["fill_db"]
    doc = torch.load(run.model / f"{model}.pt", map_location="cpu", weights_only=True)
    assert "training mean" in doc["input_fill"]
    return doc["norm"]["mean"]


@pytest.mark.parametrize(
    "options",
    [
        {"model": "threshold", "smooth_px": 5},  # a 5x5 window: its neighbours see the pixel
        TINY_UNET,
        TINY_PRITHVI,
    ],
    ids=["threshold-smoothed", "unet", "prithvi"],
)
def test_a_nan_pixel_predicts_as_its_fill_value_and_changes_nothing_else(
    tmp_path, data, monkeypatch, capsys, options
) -> None:
    """A NaN input is the band's training mean: every pixel's mask, the NaN pixel's
    neighbours included, is what the same chip with the fill value written in gives."""
    run = new_run(tmp_path, data)
    assert run.phase(monkeypatch, "train", options) == 0
    fill = _fill_values(run, options["model"])
    masks = {}
    for name, values in {"nan": [np.nan, np.nan], "filled": fill}.items():
        run.test_inputs = _test_inputs_with(tmp_path, data, name, values)
        shutil.rmtree(run.output, ignore_errors=True)
        assert run.phase(monkeypatch, "predict", options) == 0
        masks[name] = run.predictions()
    assert masks["nan"].keys() == masks["filled"].keys() and len(masks["nan"]) == COUNTS["test"]
    for sid in masks["nan"]:
        np.testing.assert_array_equal(masks["nan"][sid], masks["filled"][sid], err_msg=sid)
    assert "non-finite" in capsys.readouterr().out  # the fill rule is logged


def test_unet_logits_of_a_nan_pixel_equal_those_of_its_fill_value() -> None:
    """In numbers: a NaN input and the band mean give identical, finite logits everywhere."""
    torch.manual_seed(0)
    model = unet.UNet(2, 4, 2)
    norm = flood_common.Normaliser(mean=(-12.0, -13.0), std=(3.0, 4.0))
    x = np.random.default_rng(1).normal(-12, 3, (2, 32, 32))
    with_nan, filled = x.copy(), x.copy()
    with_nan[:, 7, 9], filled[:, 7, 9] = np.nan, norm.mean
    with_nan[1, 30, 2], filled[1, 30, 2] = np.nan, norm.mean[1]
    logits = [
        flood_common.predict_logits(model, norm.apply(a), torch.device("cpu"), multiple=4)
        for a in (with_nan, filled)
    ]
    assert np.isfinite(logits[0]).all()
    np.testing.assert_array_equal(logits[0], logits[1])


def test_threshold_mask_of_a_nan_pixel_equals_that_of_its_fill_value() -> None:
    opts = threshold.ThresholdOptions(smooth_px=3)
    model = threshold.ThresholdModel(opts, threshold_db=-2.0, fill_db=[-12.0, -13.0])
    x = np.random.default_rng(2).normal(-12, 3, (2, 16, 16))
    with_nan, filled = x.copy(), x.copy()
    with_nan[0, 4, 4], filled[0, 4, 4] = np.nan, -12.0
    np.testing.assert_array_equal(
        threshold.flood_mask(with_nan, model), threshold.flood_mask(filled, model)
    )
    # a band beyond the float range in linear power: no finite value in any window
    big = pytest.raises(ContractError, match="not finite at 256 pixel")
    with big, np.errstate(over="ignore"):
        threshold.flood_mask(np.stack([x[0], np.full_like(x[1], 4000.0)]), model)


@pytest.mark.parametrize("options", [TINY_UNET, TINY_PRITHVI], ids=["unet", "prithvi"])
def test_a_model_with_non_finite_output_fails_predict_instead_of_writing_dry(
    tmp_path, data, monkeypatch, capsys, options
) -> None:
    run = new_run(tmp_path, data)
    assert run.phase(monkeypatch, "train", options) == 0
    path = run.model / f"{options['model']}.pt"
    doc = torch.load(path, map_location="cpu", weights_only=True)
    head = next(k for k in doc["state_dict"] if k.endswith("head.bias"))
    doc["state_dict"][head] = torch.full_like(doc["state_dict"][head], float("nan"))
    torch.save(doc, path)
    assert run.phase(monkeypatch, "predict", options) == 2
    err = capsys.readouterr().err
    assert "non-finite logit(s)" in err and "test chip" in err
    assert run.predictions() == {}


def test_statistics_are_fitted_on_finite_pixels_only(tmp_path, data) -> None:
    """A NaN block in a training chip: each band's statistics and fill value are those of
    its finite values at valid pixels."""
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    first = sorted((copy / "train" / "inputs").glob("*.tif"))[0]
    raster = read_raster(first)
    x = raster.data.astype(np.float32).copy()
    x[1, 5:9, 20:30] = np.nan  # post only: pre's values there still count
    write_raster(first, x, raster.grid, band_names=raster.band_names)
    split = SplitDir(copy / "train")
    values = [
        np.concatenate([s.inputs[b][s.valid_or_all() & np.isfinite(s.inputs[b])] for s in split])
        for b in range(2)
    ]
    mean = [float(v.astype(np.float64).mean()) for v in values]
    std = [float(v.astype(np.float64).std()) for v in values]
    norm = flood_common.Normaliser.fit(split)
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(norm.std, std, rtol=1e-6)
    np.testing.assert_allclose(threshold.band_means([split]), mean, rtol=1e-9)


# -- UNet ---------------------------------------------------------------------------------


def test_unet_learns_the_flood_rectangles(tmp_path, blobs, monkeypatch) -> None:
    run = new_run(tmp_path, blobs)
    run.train_predict(monkeypatch, LEARNING_UNET)
    assert_learns(run, tmp_path)
    curve = (run.model / "artifacts" / "loss.csv").read_text().splitlines()
    assert curve[0] == "epoch,train_loss,val_loss,val_iou,lr,seconds"
    assert len(curve) == 1 + LEARNING_UNET["epochs"]
    options = json.loads((run.model / "artifacts" / "options.json").read_text())
    assert {"epochs", "base_channels", "depth", "crop", "lr"} <= set(options["non_default"])


def test_unet_same_seed_same_predictions(tmp_path, data, monkeypatch) -> None:
    runs = [new_run(tmp_path, data, f"run{i}") for i in range(2)]
    for run in runs:
        run.train_predict(monkeypatch, TINY_UNET, seed=7)
    first, second = (run.predictions() for run in runs)
    assert first.keys() == second.keys() and len(first) == COUNTS["test"]
    for sid in first:
        np.testing.assert_array_equal(first[sid], second[sid])


# -- Prithvi: the published checkpoint ----------------------------------------------------


TINY_CONFIG = PUBLISHED["config"] | dict(
    zip(("embed_dim", "depth", "num_heads"), prithvi.SIZES["tiny"], strict=True)
)


def synthetic_checkpoint(layout: str, config: dict[str, int] | None = None) -> dict[str, Any]:
    """A pretrained-like state dict with the published names (:func:`published_keys`, not
    SARBench's encoder) for ``config`` (default: the tiny size): independent random 6-band
    patch kernels, small random weights, LayerNorms at 1, the published position tables;
    ``flat`` or ``mae`` (``encoder.`` / ``decoder.``) layout, or ``wrapped`` (flat, under
    ``"model"``)."""
    c = config or TINY_CONFIG
    gen = torch.Generator().manual_seed(11)
    encoder, decoder = published_keys(c)
    tokens = (c["num_frames"], c["img_size"] // c["patch_size"], c["img_size"] // c["patch_size"])

    def value(name: str, shape: list[int]) -> torch.Tensor:
        if name.endswith("pos_embed"):
            return torch.from_numpy(sincos_table(shape[-1], *tokens)).float()
        if "norm" in name:
            return torch.ones(shape) if name.endswith("weight") else torch.zeros(shape)
        std = 0.1 if name.startswith("patch_embed") else 0.02
        return torch.randn(shape, generator=gen) * std

    enc = {k: value(k, v) for k, v in encoder.items()}
    dec = {k: value(k, v) for k, v in decoder.items()}
    if layout == "mae":
        return {f"encoder.{k}": v for k, v in enc.items()} | {
            f"decoder.{k}": v for k, v in dec.items()
        }
    return {"model": enc | dec} if layout == "wrapped" else enc | dec


def zeros_of(layout: str) -> dict[str, torch.Tensor]:
    """Every tensor of the published file, as zeros of its published shape (no memory)."""
    return {k: torch.zeros(()).expand(shape) for k, shape in PUBLISHED["layouts"][layout].items()}


def test_published_key_list_describes_sarbench_base_size() -> None:
    c = PUBLISHED["config"]
    assert (c["embed_dim"], c["depth"], c["num_heads"]) == prithvi.SIZES["base"]
    assert (c["patch_size"], c["tubelet_size"], c["in_chans"]) == (
        prithvi.PATCH,
        1,
        prithvi.PRETRAINED_BANDS,
    )
    assert tuple(PUBLISHED["bands"]) == prithvi.OPTICAL_BANDS
    assert PUBLISHED["layouts"]["flat"]["patch_embed.proj.weight"] == [768, 6, 1, 16, 16]
    assert PUBLISHED["layouts"]["flat"]["pos_embed"] == [1, 1 + 3 * 14 * 14, 768]
    flat, mae = (PUBLISHED["layouts"][k] for k in ("flat", "mae"))
    assert len(flat) == len(mae) and {k.split(".", 1)[1] for k in mae} == set(flat)


def test_every_layer_norm_has_the_published_eps() -> None:
    encoder = prithvi.PrithviEncoder(2, *prithvi.SIZES["tiny"])
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 * prithvi.SIZES["tiny"][1] + 1
    assert {m.eps for m in norms} == {PUBLISHED["layer_norm_eps"]} == {1e-5}


@pytest.mark.parametrize("layout", ["flat", "mae"])
def test_the_published_checkpoint_loads_every_encoder_tensor(layout) -> None:
    """Zeros with the published names and shapes into the base model: every encoder tensor
    is loaded (the patch kernel adapted to 2 bands), none missing, unexpected or mis-shaped;
    the MAE decoder and the position table are skipped as expected."""
    pre = "encoder." if layout == "mae" else ""
    state = zeros_of(layout)
    decoder = {k for k in state if "decoder" in k or k.endswith("mask_token")}
    encoder = set(state) - decoder - {f"{pre}pos_embed"}
    for adapter in prithvi.ADAPTERS:
        model = prithvi.PrithviSegmenter(2, "base", adapter, 16)
        report = prithvi.load_prithvi_state(model, state, "published", ("pre", "post"))
        assert report.clean, report.to_dict()
        assert set(report.skipped) == decoder | {f"{pre}pos_embed"}
        proj = f"{pre}patch_embed.proj.weight"
        if adapter == "patch-embed":
            assert list(report.adapted) == [proj]
            assert set(report.loaded) == encoder - {proj}
        else:
            assert report.adapted == {} and set(report.loaded) == encoder
        assert len(report.loaded) + len(report.adapted) == len(model.encoder.state_dict())


def test_a_renamed_encoder_module_is_reported_against_the_published_names() -> None:
    """Rename one module of SARBench's encoder: the published checkpoint no longer fits,
    and the loader says which key is missing and which is unexpected."""
    model = prithvi.PrithviSegmenter(2, "base", "patch-embed", 16)
    mlp = model.encoder.blocks[3].mlp
    mlp.dense1 = mlp.fc1
    del mlp.fc1
    report = prithvi.load_prithvi_state(model, zeros_of("flat"), "published", ("pre", "post"))
    assert not report.clean
    assert report.missing == ["blocks.3.mlp.dense1.bias", "blocks.3.mlp.dense1.weight"]
    assert report.unexpected == ["blocks.3.mlp.fc1.weight", "blocks.3.mlp.fc1.bias"]


@pytest.mark.parametrize("layout", ["flat", "wrapped", "mae"])
def test_checkpoint_loader_reports_every_key(tmp_path, layout) -> None:
    pre = "encoder." if layout == "mae" else ""
    state = synthetic_checkpoint(layout)
    flat = state.get("model", state)
    del flat[f"{pre}blocks.1.mlp.fc2.bias"]
    flat[f"{pre}blocks.0.gamma"] = torch.ones(3)
    flat[f"{pre}norm.bias"] = torch.zeros(95)  # a mis-shaped tensor
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    decoder_keys = {k for k in flat if "decoder" in k or k.endswith("mask_token")}

    for adapter in prithvi.ADAPTERS:
        model = prithvi.PrithviSegmenter(2, "tiny", adapter, 16)
        report = prithvi.load_prithvi_checkpoint(model, path, ("pre", "post"))
        assert report.pretrained and not report.clean
        assert report.missing == ["blocks.1.mlp.fc2.bias"]
        assert report.unexpected == [f"{pre}blocks.0.gamma"]
        assert report.shape_mismatches == [
            {"key": f"{pre}norm.bias", "checkpoint": [95], "model": [96]}
        ]
        assert set(report.skipped) == decoder_keys | {f"{pre}pos_embed"}
        # the published position table (as the published code makes it) is ours on its grid
        assert report.pos_embed_max_abs_diff == pytest.approx(0.0, abs=1e-6)
        assert set(report.new_modules) == {"adapter", "decoder"} - (
            {"adapter"} if adapter == "patch-embed" else set()
        )
        ckpt_proj = flat[f"{pre}patch_embed.proj.weight"]
        proj = model.encoder.patch_embed.proj.weight.detach()
        if adapter == "patch-embed":  # a new 2-band embedding, split from the 6-band one
            assert list(report.adapted) == [f"{pre}patch_embed.proj.weight"]
            assert "pre) <- blue+green+red" in report.adapted[f"{pre}patch_embed.proj.weight"]
            torch.testing.assert_close(proj[:, 0], ckpt_proj[:, :3].sum(1))
            torch.testing.assert_close(proj[:, 1], ckpt_proj[:, 3:].sum(1))
        else:  # the pretrained 6-band embedding itself, behind the 1 -> 6 adapter
            assert report.adapted == {} and f"{pre}patch_embed.proj.weight" in report.loaded
            torch.testing.assert_close(proj, ckpt_proj)
        torch.testing.assert_close(
            model.encoder.blocks[0].attn.qkv.weight.detach(), flat[f"{pre}blocks.0.attn.qkv.weight"]
        )
        assert model(torch.zeros(1, 2, 32, 32)).shape == (1, 32, 32)


# -- Prithvi: two SAR bands into an optical encoder ---------------------------------------


def _even_split(weight: torch.Tensor) -> torch.Tensor:
    """The rule this replaced: each of 2 bands gets the sum of the 6 kernels / 2."""
    return (weight.sum(1, keepdim=True) / 2).expand(-1, 2, -1, -1, -1).clone()


def _flood_pair() -> torch.Tensor:
    """Two standardised pre/post chips (2, 2, 32, 32) that differ only inside one 16 x 16
    flood patch: there, a flood that appears (post 3 sigma darker than pre) in the first, and
    one that recedes (pre darker) in the second; elsewhere both hold the same land."""
    land = torch.randn(2, 32, 32, generator=torch.Generator().manual_seed(5))
    appears, recedes = land.clone(), land.clone()
    appears[1, :16, :16] -= 3.0
    recedes[0, :16, :16] -= 3.0
    return torch.stack([appears, recedes])


@pytest.mark.parametrize("roles", [("pre", "post"), ("VV", "VH"), None])
def test_the_adapted_encoder_tells_a_flood_from_its_reverse(roles) -> None:
    """Freshly adapted from a pretrained-like 6-band kernel, the patch-embed encoder gives
    different features to a flood that appears and one that recedes (the same pixels, the
    dark patch in post or in pre); the even split it replaced saw only (pre + post) / 2 and
    gave them the same features."""
    ckpt = synthetic_checkpoint("flat")
    model = prithvi.PrithviSegmenter(2, "tiny", "patch-embed", 16).eval()
    report = prithvi.load_prithvi_state(model, ckpt, "synthetic", roles)
    assert report.clean and list(report.adapted) == ["patch_embed.proj.weight"]
    with torch.no_grad():
        features = model.encoder(_flood_pair()[:, :, None])  # (2, 1, 2, 2, D)
        patch = features[:, 0, 0, 0]  # the flood patch's token
        change = float((patch[0] - patch[1]).norm() / patch[0].norm())
        assert change > 0.05
        # the rest of the chip is the same land; attention lets the patch reach it a little
        model.encoder.patch_embed.proj.weight.copy_(_even_split(ckpt["patch_embed.proj.weight"]))
        even = model.encoder(_flood_pair()[:, :, None])
        assert float((even[0] - even[1]).abs().max()) < 1e-5


def test_split_kernel_groups_follow_the_roles_and_keep_the_six_band_sum() -> None:
    w = torch.randn(8, 6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    visible, infrared = w[:, :3].sum(1), w[:, 3:].sum(1)
    for roles, first in [
        (("pre", "post"), visible),
        (("post", "pre"), infrared),
        (("VV", "VH"), visible),
        (("VH", "VV"), infrared),
        (None, visible),
    ]:
        k, how = prithvi.split_patch_kernel(w, 2, roles)
        torch.testing.assert_close(k[:, 0], first)
        torch.testing.assert_close(k.sum(1), w.sum(1))  # equal bands: the 6-band response
        assert ("by role" in how) == (roles is not None)
    k, how = prithvi.split_patch_kernel(w, 3, None)
    torch.testing.assert_close(k.sum(1), w.sum(1))  # no task has 3 bands: the even split
    assert "/ 3" in how


# -- Prithvi: runs ------------------------------------------------------------------------


def test_position_table_columns_rows_then_frames() -> None:
    table = prithvi.sincos_3d(32, 2, 3, 4)
    assert table.shape == (1 + 2 * 3 * 4, 32) and not table[0].any()
    col, row, frame = table[1:, :12], table[1:, 12:24], table[1:, 24:]
    # token order is (frame, row, column): the column embedding cycles fastest
    torch.testing.assert_close(col[1], col[5])
    torch.testing.assert_close(row[4], row[5])
    torch.testing.assert_close(frame[0], frame[11])
    assert not torch.equal(frame[0], frame[12])
    np.testing.assert_allclose(table[None].numpy(), sincos_table(32, 2, 3, 4), atol=1e-6)


@pytest.mark.parametrize("adapter", prithvi.ADAPTERS)
def test_prithvi_from_scratch_learns_the_flood_rectangles(
    tmp_path, blobs, monkeypatch, adapter
) -> None:
    run = new_run(tmp_path, blobs)
    run.train_predict(monkeypatch, LEARNING_PRITHVI | {"adapter": adapter})
    report = json.loads((run.model / "artifacts" / "checkpoint_report.json").read_text())
    assert report["pretrained"] is False and report["loaded"] == []
    assert_learns(run, tmp_path)


def test_prithvi_fine_tunes_a_checkpoint_from_weights(tmp_path, blobs, monkeypatch) -> None:
    run = new_run(tmp_path, blobs)
    run.weights.mkdir(parents=True)
    torch.save(synthetic_checkpoint("mae"), run.weights / "Prithvi_EO_V1_100M.pt")
    run.train_predict(monkeypatch, LEARNING_PRITHVI)
    report = json.loads((run.model / "artifacts" / "checkpoint_report.json").read_text())
    assert report["pretrained"] is True and report["clean"] is True
    assert "by role (pre/post)" in report["adapted"]["encoder.patch_embed.proj.weight"]
    assert_learns(run, tmp_path)


def test_prithvi_refuses_a_checkpoint_that_does_not_fit(tmp_path, data, monkeypatch) -> None:
    run = new_run(tmp_path, data)
    run.weights.mkdir(parents=True)
    state = synthetic_checkpoint("flat")
    del state["norm.weight"]
    torch.save(state, run.weights / "mine.pt")
    options = TINY_PRITHVI | {"checkpoint": "mine.pt"}
    assert run.phase(monkeypatch, "train", options) == 2
    report = json.loads((run.model / "artifacts" / "checkpoint_report.json").read_text())
    assert report["missing"] == ["norm.weight"] and report["clean"] is False
    assert not (run.model / "prithvi.pt").exists()
    assert (
        run.phase(monkeypatch, "train", options | {"require_checkpoint": True, "checkpoint": "x"})
        == 2
    )


# -- the entries --------------------------------------------------------------------------


OPTIONS = {
    "threshold": threshold.ThresholdOptions,
    "unet": unet.UNetOptions,
    "prithvi": prithvi.PrithviOptions,
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_entry_resolves_for_every_variant_and_profile(name) -> None:
    raw = tomllib.loads((REPO_ROOT / "submissions" / f"{name}.toml").read_text())
    assert raw["name"] == name and raw["baseline"] is True and raw["tasks"] == ["flood"]
    assert "datasets" not in raw  # every flood dataset whose band roles fit (requires_roles)
    assert raw.get("default_variant", "default") in raw["variants"]
    entry = load_entry(REPO_ROOT / "submissions" / f"{name}.toml")
    for profile in ("quick", "paper"):
        for variant in raw["variants"]:
            options = entry.resolve_options(variant, profile)  # requires_roles is not one
            resolved = resolve_options(OPTIONS[name], options)
            assert resolved.model == name, (profile, variant)
    quick = raw["options"] | raw.get("profiles", {}).get("quick", {})
    if name == "prithvi":
        assert quick["size"] == "tiny" and raw["options"]["size"] == "base"
    if name == "unet":
        assert raw["options"]["epochs"] == 30


@pytest.mark.parametrize(
    ("entry", "variant", "options"),
    [
        ("threshold", "default", threshold.ThresholdOptions),
        ("unet", "default", unet.UNetOptions),
        ("prithvi", "patch-embed", prithvi.PrithviOptions),
    ],
)
def test_settings_table_says_every_option_its_values_and_source(
    entry: str, variant: str, options: type
) -> None:
    """baselines/README.md's table of each flood baseline has a row per option, with the
    values its entry file resolves to under each profile and a source that is a study, a
    paper or our choice."""
    from tests.test_baselines_pix2pix import _settings_table

    table = _settings_table(entry)
    names = [f.name for f in dataclasses.fields(options) if f.name != "model"]
    assert sorted(table) == sorted(names)
    spec = load_entry(REPO_ROOT / "submissions" / f"{entry}.toml")
    for column, profile in enumerate(("quick", "paper")):
        merged = spec.resolve_options(variant, profile)
        opts = resolve_options(options, merged, ignore=("model",))
        for name in names:
            assert table[name][column] == getattr(opts, name), f"{name} under {profile}"
    for name, (_, _, source) in table.items():
        assert source.startswith(("study `00", "our choice", "UNet paper")), (name, source)
