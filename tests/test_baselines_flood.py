"""The flood baselines (threshold, UNet, Prithvi) run as the container would run them.

Each test freezes a tiny flood dataset, writes ``run.json`` files and the ``SARBENCH_*``
variables of the mounts, calls ``python -m baselines``'s ``main`` in-process for ``train``
then ``predict``, and validates and scores the predictions with the harness's own code.
The tiny dataset's target is the rule ``post - pre < -2 dB`` pixel by pixel.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from baselines import prithvi, threshold, unet
from baselines.__main__ import main
from baselines.contract import resolve_options
from harness.datasets.loader import SplitDir
from harness.datasets.ops import materialise
from harness.entries import load_entry
from harness.geo import read_raster
from harness.scoring.score import ScoreResult, score_predictions
from harness.scoring.validate import validate_predictions
from harness.settings import REPO_ROOT, Settings
from harness.tasks import get_task
from tests.helpers import TinySource

SIZE = 32
COUNTS = {"train": 6, "val": 2, "test": 3}
TINY_UNET = {
    "model": "unet",
    "epochs": 2,
    "batch_size": 2,
    "crop": 32,
    "base_channels": 4,
    "depth": 2,
}
TINY_PRITHVI = {
    "model": "prithvi",
    "size": "tiny",
    "epochs": 1,
    "batch_size": 2,
    "crop": 32,
    "decoder_channels": 16,
    "lr": 1e-3,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen tiny flood dataset (32x32 chips, a corner of each chip not valid)."""
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home, data_root=home / "data", manifests_dir=home / "datasets")
    source = TinySource(name="tiny-flood", counts=COUNTS, size=SIZE)
    return materialise(settings, source, progress=False).path


@dataclasses.dataclass
class Run:
    """The folders of one run: its model, its predictions, its weights."""

    root: Path
    data: Path

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
        config = {
            "contract": 1,
            "phase": phase,
            "task": {"name": kw.get("task", "flood"), "input_bands": 2},
            "dataset": {
                "name": "tiny-flood",
                "digest": "sha256:0",
                "bands": list(TinySource.bands),
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
            "SARBENCH_DATA_TEST_INPUTS": self.data / "test" / "inputs",
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
        split = SplitDir(self.data / "test")
        assert set(validate_predictions(self.output, split, get_task("flood"))) == set(split.ids)
        return score_predictions(self.output, split, get_task("flood"), n_resamples=200)

    def predictions(self) -> dict[str, np.ndarray]:
        return {p.stem: read_raster(p).data for p in sorted(self.output.glob("*.tif"))}


def new_run(tmp_path: Path, data: Path, name: str = "run") -> Run:
    return Run(tmp_path / name, data)


# -- threshold ----------------------------------------------------------------------------


def test_threshold_finds_the_rule_on_train_and_val(tmp_path, data, monkeypatch) -> None:
    run = new_run(tmp_path, data)
    run.train_predict(monkeypatch, {"model": "threshold"})
    doc = json.loads((run.model / "threshold.json").read_text())
    assert doc["threshold_db"] == pytest.approx(-2.0, abs=0.011)
    assert doc["fit_iou"]["pooled"] > 0.99 and set(doc["fit_iou"]) == {"pooled", "train", "val"}
    result = run.score()
    assert result.metrics["iou"] > 0.99
    assert (run.model / "artifacts" / "threshold_curve.csv").is_file()
    options = json.loads((run.model / "artifacts" / "options.json").read_text())
    assert options["non_default"] == []


def test_threshold_otsu_and_single_band_variants_predict(tmp_path, data, monkeypatch) -> None:
    for name, opts in {
        "otsu": {"model": "threshold", "selection": "otsu"},
        "band": {"model": "threshold", "method": "band", "band": 1, "smooth_px": 3},
    }.items():
        run = new_run(tmp_path, data, name)
        run.train_predict(monkeypatch, opts)
        assert 0.0 <= run.score().metrics["iou"] <= 1.0


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
    # what fits runs: single-band on VV/VH (the tiny labels follow pre/post: any score)
    run.train_predict(monkeypatch, single, **vv_vh)
    assert 0.0 <= run.score().metrics["iou"] <= 1.0
    # a model trained on pre/post is refused on VV/VH inputs
    trained = new_run(tmp_path, data, "unet")
    assert trained.phase(monkeypatch, "train", TINY_UNET) == 0
    assert trained.phase(monkeypatch, "predict", TINY_UNET, **vv_vh) == 2
    assert "trained on bands pre/post, the inputs are VV/VH" in capsys.readouterr().err


# -- UNet ---------------------------------------------------------------------------------


def test_unet_trains_predicts_and_is_scored(tmp_path, data, monkeypatch) -> None:
    run = new_run(tmp_path, data)
    run.train_predict(monkeypatch, TINY_UNET)
    result = run.score()
    assert 0.0 <= result.metrics["iou"] <= 1.0
    curve = (run.model / "artifacts" / "loss.csv").read_text().splitlines()
    assert curve[0] == "epoch,train_loss,val_loss,val_iou,lr,seconds" and len(curve) == 3
    options = json.loads((run.model / "artifacts" / "options.json").read_text())
    assert {"epochs", "base_channels", "depth", "crop"} <= set(options["non_default"])


def test_unet_same_seed_same_predictions(tmp_path, data, monkeypatch) -> None:
    runs = [new_run(tmp_path, data, f"run{i}") for i in range(2)]
    for run in runs:
        run.train_predict(monkeypatch, TINY_UNET, seed=7)
    first, second = (run.predictions() for run in runs)
    assert first.keys() == second.keys() and len(first) == COUNTS["test"]
    for sid in first:
        np.testing.assert_array_equal(first[sid], second[sid])


# -- Prithvi ------------------------------------------------------------------------------


def published_checkpoint(layout: str, *, drop: str = "", extra: str = "") -> dict[str, Any]:
    """A tiny-config state dict in the published file's layout: the encoder's keys, the 3-frame
    224-pixel position table, and the MAE decoder's keys; ``flat`` (Prithvi_100M.pt),
    ``wrapped`` (flat, under "model"), ``mae`` (``encoder.`` / ``decoder.`` prefixed, as in
    Prithvi_EO_V1_100M.pt)."""
    torch.manual_seed(11)
    dim, depth, heads = prithvi.SIZES["tiny"]
    encoder = {
        k: v.clone()
        for k, v in prithvi.PrithviEncoder(6, dim, depth, heads).state_dict().items()
        if k != drop
    }
    encoder["pos_embed"] = prithvi.sincos_3d(dim, 3, 14, 14)[None].clone()
    if extra:
        encoder[extra] = torch.ones(3)
    dec = 32
    decoder = {
        "mask_token": torch.zeros(1, 1, dec),
        "decoder_embed.weight": torch.zeros(dec, dim),
        "decoder_embed.bias": torch.zeros(dec),
        "decoder_pos_embed": torch.zeros(1, 1 + 3 * 196, dec),
        "decoder_blocks.0.norm1.weight": torch.ones(dec),
        "decoder_blocks.0.attn.qkv.weight": torch.zeros(3 * dec, dec),
        "decoder_norm.weight": torch.ones(dec),
        "decoder_pred.weight": torch.zeros(16 * 16 * 6, dec),
    }
    if layout == "mae":
        return {f"encoder.{k}": v for k, v in encoder.items()} | {
            f"decoder.{k}": v for k, v in decoder.items()
        }
    flat = encoder | decoder
    return {"model": flat} if layout == "wrapped" else flat


@pytest.mark.parametrize("layout", ["flat", "wrapped", "mae"])
def test_checkpoint_loader_reports_every_key(tmp_path, layout) -> None:
    pre = "encoder." if layout == "mae" else ""
    state = published_checkpoint(layout, drop="blocks.1.mlp.fc2.bias", extra="blocks.0.gamma")
    flat = state.get("model", state)
    flat[f"{pre}norm.bias"] = torch.zeros(95)  # a mis-shaped tensor
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    decoder_keys = {k for k in flat if "decoder" in k or k.endswith("mask_token")}

    for adapter in prithvi.ADAPTERS:
        model = prithvi.PrithviSegmenter(2, "tiny", adapter, 16)
        report = prithvi.load_prithvi_checkpoint(model, path)
        assert report.pretrained and not report.clean
        assert report.missing == ["blocks.1.mlp.fc2.bias"]
        assert report.unexpected == [f"{pre}blocks.0.gamma"]
        assert report.shape_mismatches == [
            {"key": f"{pre}norm.bias", "checkpoint": [95], "model": [96]}
        ]
        assert set(report.skipped) == decoder_keys | {f"{pre}pos_embed"}
        assert report.pos_embed_max_abs_diff == pytest.approx(0.0, abs=1e-6)
        assert set(report.new_modules) == {"adapter", "decoder"} - (
            {"adapter"} if adapter == "patch-embed" else set()
        )
        ckpt_proj = flat[f"{pre}patch_embed.proj.weight"]
        proj = model.encoder.patch_embed.proj.weight.detach()
        if adapter == "patch-embed":  # a new 2-band embedding, from the 6-band one
            assert list(report.adapted) == [f"{pre}patch_embed.proj.weight"]
            assert proj.shape[1] == 2
            expected = ckpt_proj.sum(1) / 2
            torch.testing.assert_close(proj[:, 0], expected)
            torch.testing.assert_close(proj[:, 1], expected)
        else:  # the pretrained 6-band embedding itself, behind the 1 -> 6 adapter
            assert report.adapted == {} and f"{pre}patch_embed.proj.weight" in report.loaded
            torch.testing.assert_close(proj, ckpt_proj)
        torch.testing.assert_close(
            model.encoder.blocks[0].attn.qkv.weight.detach(), flat[f"{pre}blocks.0.attn.qkv.weight"]
        )
        assert model(torch.zeros(1, 2, 32, 32)).shape == (1, 32, 32)


def test_position_table_columns_rows_then_frames() -> None:
    table = prithvi.sincos_3d(32, 2, 3, 4)
    assert table.shape == (1 + 2 * 3 * 4, 32) and not table[0].any()
    col, row, frame = table[1:, :12], table[1:, 12:24], table[1:, 24:]
    # token order is (frame, row, column): the column embedding cycles fastest
    torch.testing.assert_close(col[1], col[5])
    torch.testing.assert_close(row[4], row[5])
    torch.testing.assert_close(frame[0], frame[11])
    assert not torch.equal(frame[0], frame[12])


@pytest.mark.parametrize("adapter", prithvi.ADAPTERS)
def test_prithvi_without_weights_trains_from_scratch(tmp_path, data, monkeypatch, adapter) -> None:
    run = new_run(tmp_path, data)
    run.train_predict(monkeypatch, TINY_PRITHVI | {"adapter": adapter})
    report = json.loads((run.model / "artifacts" / "checkpoint_report.json").read_text())
    assert report["pretrained"] is False and report["loaded"] == []
    assert 0.0 <= run.score().metrics["iou"] <= 1.0


def test_prithvi_fine_tunes_a_checkpoint_from_weights(tmp_path, data, monkeypatch) -> None:
    run = new_run(tmp_path, data)
    run.weights.mkdir(parents=True)
    torch.save(published_checkpoint("mae"), run.weights / "Prithvi_EO_V1_100M.pt")
    run.train_predict(monkeypatch, TINY_PRITHVI | {"adapter": "temporal"})
    report = json.loads((run.model / "artifacts" / "checkpoint_report.json").read_text())
    assert report["pretrained"] is True and report["clean"] is True
    assert "encoder.patch_embed.proj.weight" in report["loaded"]
    assert run.score().metrics["iou"] >= 0.0


def test_prithvi_refuses_a_checkpoint_that_does_not_fit(tmp_path, data, monkeypatch) -> None:
    run = new_run(tmp_path, data)
    run.weights.mkdir(parents=True)
    torch.save(published_checkpoint("flat", drop="norm.weight"), run.weights / "mine.pt")
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
