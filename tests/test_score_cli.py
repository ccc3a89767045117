"""`sarbench score` end to end on tiny frozen datasets written in tmp_path."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from harness.datasets.layout import LOCAL_COPY
from harness.datasets.loader import SplitDir
from harness.datasets.ops import materialise, open_split
from harness.datasets.source import SampleRecord
from harness.geo import read_raster, write_raster
from harness.scoring.cli import score
from harness.scoring.score import compare, score_predictions
from harness.settings import Settings
from harness.tasks import get_task
from tests.helpers import TinySource

SIZE = 16
COUNTS = {"train": 2, "val": 4, "test": 3}


class WithDryChip(TinySource):
    """The shared tiny dataset, with no flood at all in the target of val chip ``val_00``."""

    def samples(self) -> Iterator[SampleRecord]:
        for rec in super().samples():
            if self.task == "flood" and rec.id == "val_00":
                assert rec.target is not None
                rec.target = np.zeros_like(rec.target)
            yield rec


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with two frozen, prepared tiny datasets: tiny-flood and tiny-ndvi."""
    home = tmp_path_factory.mktemp("home")
    s = Settings(home=home, data_root=home / "data", manifests_dir=home / "datasets")
    for task in ("flood", "ndvi"):
        source = WithDryChip(name=f"tiny-{task}", task=task, counts=COUNTS, size=SIZE)
        materialise(s, source, progress=False)
    return s


def predict(split: SplitDir, out: Path, how: str, seed: int = 1) -> Path:
    """Predictions made from the labels: ``perfect`` or ``noisy`` (flood: a fifth of the
    pixels flipped, and nothing predicted on the dry chip ``val_00``; ndvi: added noise)."""
    rng = np.random.default_rng(seed)
    for sample in split:
        assert sample.target is not None
        t = sample.target
        if how == "perfect":
            pred = t.copy()
        elif t.dtype == np.uint8:
            flip = rng.random(t.shape) < 0.2
            pred = np.where(flip, 1 - t, t).astype(np.uint8)
            if sample.id == "val_00":
                pred[:] = 0
        else:
            pred = np.clip(t + rng.normal(0, 0.2, t.shape), -1, 1).astype(np.float32)
        write_raster(out / f"{sample.id}.tif", pred, sample.grid)
    return out


def run(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(score, list(args), obj=settings, catch_exceptions=False)


def strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def score_noisy_val(settings: Settings, dataset: str, tmp_path: Path, *more: str) -> str:
    """``sarbench score`` of noisy predictions of ``dataset``'s val split: its output."""
    split = open_split(settings, dataset, "val")
    pred = predict(split, tmp_path / "pred", "noisy")
    result = run(settings, str(pred), "--dataset", dataset, "--split", "val", *more)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_flood_table_by_default(frozen: Settings, tmp_path: Path) -> None:
    out = score_noisy_val(frozen, "tiny-flood", tmp_path)
    assert "tiny-flood / val (flood): 4 chips" in out
    for name in ("iou *", "miou", "precision", "recall", "f1", "accuracy"):
        assert name in out
    assert "95% CI" in out and "percentile bootstrap over 4 chips (the dataset names no" in out
    assert "10000 resamples" in out
    assert "1 chip(s) have an undefined per-chip iou" in out


def test_flood_json_matches_direct_computation(frozen: Settings, tmp_path: Path) -> None:
    d = strict_json(score_noisy_val(frozen, "tiny-flood", tmp_path, "--json"))
    split, pred = open_split(frozen, "tiny-flood", "val"), tmp_path / "pred"
    assert (d["task"], d["dataset"], d["split"], d["n_chips"]) == ("flood", "tiny-flood", "val", 4)
    assert d["primary_metric"] == "iou" and d["higher_is_better"] is True
    # the pooled IoU, straight from the files with numpy: all valid pixels of all chips
    inter = union = 0
    for sample in split:
        guess = read_raster(pred / f"{sample.id}.tif").data[0] == 1
        truth, valid = sample.target == 1, sample.valid_or_all()
        inter += np.count_nonzero(guess & truth & valid)
        union += np.count_nonzero((guess | truth) & valid)
    assert d["metrics"]["iou"] == pytest.approx(inter / union, abs=1e-12)
    assert d["interval"]["low"] <= d["metrics"]["iou"] <= d["interval"]["high"]
    assert d["interval"]["n_resamples"] == 10_000 and d["interval"]["level"] == 0.95
    chips = {c["id"]: c for c in d["chips"]}
    assert list(chips) == ["val_00", "val_01", "val_02", "val_03"]
    assert chips["val_00"]["metrics"]["iou"] is None  # empty union: undefined
    assert chips["val_00"]["stats"] == {
        "tp": 0,
        "fp": 0,
        "fn": 0,
        "tn": chips["val_00"]["stats"]["tn"],
    }
    assert all(0 <= c["metrics"]["iou"] <= 1 for c in d["chips"] if c["id"] != "val_00")
    assert d["directions"]["iou"] == "higher"


def test_ndvi_perfect_and_noisy(frozen: Settings, tmp_path: Path) -> None:
    split = open_split(frozen, "tiny-ndvi", "test")
    perfect = predict(split, tmp_path / "perfect", "perfect")
    result = run(frozen, str(perfect), "--dataset", "tiny-ndvi", "--split", "test", "--json")
    assert result.exit_code == 0, result.output
    d = strict_json(result.stdout)
    assert d["metrics"]["mse"] == 0.0 and d["metrics"]["psnr"] == "inf"
    assert d["metrics"]["ssim"] == pytest.approx(1.0)
    assert d["metrics"]["r2"] == 1.0
    assert list(d["metrics"]) == ["mse", "rmse", "mae", "bias", "r2", "psnr", "ssim", "mse_all"]

    noisy = predict(split, tmp_path / "noisy", "noisy")
    result = run(frozen, str(noisy), "--dataset", "tiny-ndvi", "--split", "test", "--json")
    d = strict_json(result.stdout)
    m = d["metrics"]
    assert 0 < m["mse_all"] < m["mse"] < 0.05
    assert m["rmse"] == pytest.approx(math.sqrt(m["mse"]))
    assert d["interval"]["metric"] == "mse" and d["higher_is_better"] is False
    table = run(frozen, str(noisy), "--dataset", "tiny-ndvi", "--split", "test")
    assert "mse *" in table.stdout and "Worst chips by mse" in table.stdout


def test_invalid_predictions_exit_1_with_every_problem(frozen: Settings, tmp_path: Path) -> None:
    split = open_split(frozen, "tiny-flood", "val")
    pred = predict(split, tmp_path / "pred", "noisy")
    (pred / "val_01.tif").unlink()
    bad = np.full((SIZE, SIZE), 7, np.uint8)
    write_raster(pred / "val_02.tif", bad, split.load("val_02").grid)
    (pred / "readme.md").write_text("hi")
    result = run(frozen, str(pred), "--dataset", "tiny-flood", "--split", "val", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    err = result.stderr
    assert "3 problem(s)" in err
    assert "val_01.tif: missing" in err
    assert "val_02.tif: 256 pixel(s) are not 0 or 1 (found 7)" in err
    assert "readme.md: extra file" in err


def test_many_hostile_names_are_grouped_capped_and_escaped(
    frozen: Settings, tmp_path: Path
) -> None:
    split = open_split(frozen, "tiny-flood", "val")
    pred = predict(split, tmp_path / "pred", "perfect")
    for i in range(60):
        (pred / f"\x1b[2J\x1b[31mx{i:02d}\n.tif").write_bytes(b"")
    result = run(frozen, str(pred), "--dataset", "tiny-flood", "--split", "val")
    assert result.exit_code == 1
    err = result.stderr
    assert "\x1b" not in err
    lines = err.splitlines()
    assert lines[0] == f"error: 60 problem(s) with the predictions in {pred}; nothing was scored:"
    # the 50 kept are one kind: one line naming three of them, then the count of the rest
    assert len(lines) == 1 + 1 + 1
    assert lines[1].startswith("  - 50 files: e.g. extra file: no test input is called")
    assert "\\x1b[2J\\x1b[31mx00\\x0a.tif, " in lines[1] and " and 47 more; fix: " in lines[1]
    assert lines[-1] == "  - ... and 10 more problems"


def test_problems_of_one_kind_are_one_line_with_the_fix(frozen: Settings, tmp_path: Path) -> None:
    split = open_split(frozen, "tiny-flood", "val")
    pred = predict(split, tmp_path / "pred", "perfect")
    for sid in split.ids:  # every file float32 probabilities instead of uint8 0/1
        write_raster(
            pred / f"{sid}.tif", np.full((SIZE, SIZE), 0.7, np.float32), split.load(sid).grid
        )
    result = run(frozen, str(pred), "--dataset", "tiny-flood", "--split", "val")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    n = len(split.ids)
    assert lines[1] == (
        f"  - {n} files: has dtype float32 (expected uint8 for flood predictions): "
        f"val_00.tif, val_01.tif, val_02.tif and {n - 3} more; fix: convert before writing, "
        "e.g. pred.astype(np.uint8)"
    )
    assert lines[2].startswith(f"  - {n} files: e.g. ") or lines[2].startswith(f"  - {n} files: ")
    assert "fix: threshold the scores into 0/1" in lines[2]
    assert len(lines) == 3


def test_predictions_of_another_split_get_a_did_you_mean(frozen: Settings, tmp_path: Path) -> None:
    val = open_split(frozen, "tiny-flood", "val")
    pred = predict(val, tmp_path / "pred", "perfect")
    result = run(frozen, str(pred), "--dataset", "tiny-flood", "--split", "test")
    assert result.exit_code == 1
    err = result.stderr.splitlines()
    n = len(val.ids)
    assert err[-1] == (
        f"did you mean --split val? {n} of the {n} files are named like tiny-flood's val "
        "inputs, none like its test inputs"
    )
    assert len(err) <= 4  # grouped: the extra files, the missing ones, the hint


def test_unknown_dataset_exits_2(frozen: Settings, tmp_path: Path) -> None:
    result = run(frozen, str(tmp_path), "--dataset", "tiny-flod", "--split", "val")
    assert result.exit_code == 2
    assert "unknown dataset 'tiny-flod'. Did you mean 'tiny-flood'?" in result.stderr


def test_empty_folder_lists_every_missing_file(frozen: Settings, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run(frozen, str(tmp_path / "empty"), "--dataset", "tiny-ndvi", "--split", "val")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()[1:]
    assert line.startswith(
        "  - 4 files: missing (expected one prediction per test input, named like it): "
        "val_00.tif, val_01.tif, val_02.tif and 1 more; fix: write one <id>.tif"
    )


def test_dataset_not_prepared_exits_2(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, data_root=tmp_path / "data", manifests_dir=tmp_path / "ds")
    materialise(s, TinySource(name="gone", counts=COUNTS, size=SIZE), progress=False)
    (s.dataset_dir("gone") / LOCAL_COPY).unlink()
    result = run(s, str(tmp_path), "--dataset", "gone", "--split", "val")
    assert result.exit_code == 2
    assert "not prepared" in result.stderr and "sarbench datasets prepare" in result.stderr


def test_settings_come_from_the_environment_without_obj(
    frozen: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SARBENCH_DATA_ROOT", str(frozen.data_root))
    monkeypatch.setenv("SARBENCH_DATASETS_DIR", str(frozen.manifests_dir))
    split = open_split(frozen, "tiny-flood", "test")
    pred = predict(split, tmp_path / "pred", "perfect")
    result = CliRunner().invoke(score, [str(pred), "--dataset", "tiny-flood", "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "iou *" in result.stdout


def test_score_result_and_paired_comparison(frozen: Settings, tmp_path: Path) -> None:
    split = open_split(frozen, "tiny-flood", "val")
    task = get_task("flood")
    good = score_predictions(
        predict(split, tmp_path / "good", "perfect"), split, task, n_resamples=500
    )
    worse = score_predictions(
        predict(split, tmp_path / "worse", "noisy"), split, task, n_resamples=500
    )
    assert good.primary == 1.0 and worse.primary < 1.0
    assert good.interval.low == good.interval.high == 1.0
    json.dumps(good.to_dict(), allow_nan=False)
    r = compare(good, worse, n_resamples=500)
    assert r.better == "a" and r.difference == pytest.approx(1.0 - worse.primary)
    assert compare(good, worse, "accuracy", n_resamples=200).metric == "accuracy"


class OneGroupVal(TinySource):
    """Every val chip in one independence group ("valencia"); test chips in two."""

    def samples(self) -> Iterator[SampleRecord]:
        for rec in super().samples():
            rec.meta = {"group": "valencia" if rec.split == "val" else f"g{rec.id[-1]}"}
            yield rec


def test_a_one_group_split_has_an_na_interval_with_its_reason(tmp_path: Path) -> None:
    """An interval over one independence group would be the point [x, x]: it says n/a."""
    s = Settings(home=tmp_path, data_root=tmp_path / "data", manifests_dir=tmp_path / "ds")
    materialise(s, OneGroupVal(name="one", counts=COUNTS, size=SIZE), progress=False)
    out = score_noisy_val(s, "one", tmp_path)
    assert "n/a (see below)" in out
    assert (
        "CI n/a: the split has 1 independence group (valencia); an interval needs at least 2"
    ) in out
    assert "percentile bootstrap" not in out
    d = strict_json(score_noisy_val(s, "one", tmp_path / "again", "--json"))
    iv = d["interval"]
    assert iv["low"] is None and iv["high"] is None
    assert iv["n_units"] == 1 and iv["unit"] == "group" and iv["estimate"] == d["metrics"]["iou"]
    assert iv["note"].startswith("n/a: the split has 1 independence group")
    # a run record reads it back: the interval's ends undefined, the note kept
    from harness.record import RecordScore

    rec = RecordScore.from_result(d)
    assert math.isnan(rec.low) and math.isnan(rec.high) and rec.interval["note"] == iv["note"]
    assert rec.to_json()["interval"]["low"] is None
    # two groups: an interval again, and no note
    test = strict_json(
        run(
            s,
            str(predict(open_split(s, "one", "test"), tmp_path / "t", "noisy")),
            "--dataset", "one", "--split", "test", "--json",
        ).stdout
    )  # fmt: skip
    assert "note" not in test["interval"] and test["interval"]["low"] is not None


def test_a_single_chip_without_groups_has_an_na_interval(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, data_root=tmp_path / "data", manifests_dir=tmp_path / "ds")
    counts = {"train": 1, "val": 1, "test": 1}
    materialise(s, TinySource(name="solo", counts=counts, size=SIZE), progress=False)
    split = open_split(s, "solo", "val")
    pred = predict(split, tmp_path / "pred", "noisy")
    d = strict_json(run(s, str(pred), "--dataset", "solo", "--split", "val", "--json").stdout)
    assert d["interval"]["low"] is None and d["interval"]["note"] == (
        "n/a: the split has a single chip and names no independence groups; an interval "
        "needs at least 2 chips"
    )


def test_an_unknown_split_exits_2_naming_the_splits(frozen: Settings, tmp_path: Path) -> None:
    result = run(frozen, str(tmp_path), "--dataset", "tiny-flood", "--split", "bolivia")
    assert result.exit_code == 2
    assert "bolivia" in result.stderr and "val" in result.stderr
