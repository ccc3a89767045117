"""A task is declared once: a toy third task, declared here and nowhere in the harness.

``wet-fraction`` (one SAR band in, the open-water fraction of every pixel out, ranked by
its own mean absolute error, lower is better) is a :class:`~harness.tasks.Task` and one
metric function, both in this file. Datasets, validation, scoring, cards, quicklooks and
the ``--task`` choice of ``sarbench validate`` take it as they take flood and ndvi.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import harness
from harness.cli import main
from harness.datasets import card
from harness.datasets.loader import SplitDir
from harness.datasets.ops import materialise, open_split
from harness.datasets.source import SampleRecord
from harness.geo import write_raster
from harness.publish.quicklooks import render, write_quicklooks
from harness.quicklook import ramp
from harness.scoring.chipstats import STATS_TYPES, NdviStats
from harness.scoring.metrics import METRICS, get_metric, metric
from harness.scoring.score import compare, score_predictions
from harness.scoring.stats import bootstrap_ci
from harness.scoring.validate import PredictionError, read_prediction, validate_predictions
from harness.settings import Settings
from harness.tasks import TASKS, ContinuousValue, Task, get_task, register_task
from tests.helpers import TinySource

NAME = "wet-fraction"
SIZE = 16


# The toy task: a metric function and a Task, nothing else.


@metric("lower", needs="n sum_abs_err")
def mae(s: NdviStats) -> float | np.ndarray:
    """Mean absolute error of the wet fraction over the valid pixels; undefined with none."""
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.asarray(s.sum_abs_err, np.float64) / np.asarray(s.n, np.float64)
    return float(value) if value.ndim == 0 else value


WET = Task(
    name=NAME,
    description="open-water fraction per pixel from one Sentinel-1 VV band",
    input_bands=1,
    target=ContinuousValue(label="wet fraction", ramp_low=0.0, ramp_span=1.0),
    target_dtype="float32",
    prediction_dtype="float32",
    prediction_range=(0.0, 1.0),
    stats=NdviStats,
    metrics=(mae,),
    primary_metric="mae",
)


# --------------------------------------------------------------------------------------


class WetSource(TinySource):
    """The tests' tiny dataset with one input band and a target in [0, 1]."""

    bands = ("VV_db",)

    def samples(self) -> Iterator[SampleRecord]:
        for rec in super().samples():
            assert rec.target is not None
            rec.inputs = rec.inputs[:1].copy()
            rec.target = np.clip(rec.target, 0.0, 1.0).astype(np.float32)
            yield rec


@pytest.fixture(scope="module")
def task() -> Iterator[Task]:
    register_task(WET)
    try:
        yield WET
    finally:
        TASKS.pop(NAME)


@pytest.fixture(scope="module")
def settings(task: Task, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("home")
    s = Settings(home=home, data_root=home / "data", manifests_dir=home / "datasets")
    counts = {"train": 2, "val": 3, "test": 4}
    materialise(s, WetSource(name="tiny-wet", task=NAME, counts=counts, size=SIZE), progress=False)
    return s


def predict(split: SplitDir, out: Path, noise: float, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for sample in split:
        assert sample.target is not None
        pred = np.clip(sample.target + rng.normal(0, noise, sample.target.shape), 0, 1)
        write_raster(out / f"{sample.id}.tif", pred.astype(np.float32), sample.grid)
    return out


def test_the_toy_task_is_declared_nowhere_in_the_harness() -> None:
    root = Path(harness.__file__).parent
    assert not [p for p in root.rglob("*.py") if NAME in p.read_text()]


def test_declared_task_is_known_everywhere(task: Task) -> None:
    assert get_task(NAME) is task
    assert list(METRICS[NAME]) == ["mae"] and task.secondary_metrics == ()
    # the direction comes from the metric; ndvi's own "mae" is another function
    assert task.higher_is_better is False and task.target_kind == "continuous"
    assert get_metric(NAME, "mae").fn is mae.fn and get_metric("ndvi", "mae").fn is not mae.fn
    assert get_metric(NAME, "mae").task == NAME
    assert STATS_TYPES[NAME].task == NAME and issubclass(STATS_TYPES[NAME], NdviStats)
    assert STATS_TYPES["ndvi"] is NdviStats


def test_validate_and_score_a_split_of_geotiffs(settings: Settings, tmp_path: Path) -> None:
    split = open_split(settings, "tiny-wet", "val")
    pred_dir = predict(split, tmp_path / "pred", noise=0.1)
    assert sorted(validate_predictions(pred_dir, split, WET)) == sorted(split.ids)

    result = score_predictions(pred_dir, split, WET, dataset="tiny-wet", n_resamples=200)
    abs_err, n = 0.0, 0
    for sample in split:
        assert sample.target is not None
        pred = read_prediction(pred_dir / f"{sample.id}.tif").astype(np.float64)
        v = sample.valid_or_all()
        abs_err += float(np.abs(pred[v] - sample.target[v].astype(np.float64)).sum())
        n += int(v.sum())
    assert result.task == NAME and result.primary_metric == "mae"
    assert result.higher_is_better is False and result.directions == {"mae": "lower"}
    assert math.isclose(result.primary, abs_err / n, rel_tol=0, abs_tol=1e-9)
    assert result.stats.task == NAME and len(result.stats) == len(split.ids)
    low, high = result.interval.low, result.interval.high
    assert low <= result.primary <= high and result.interval.metric == "mae"
    assert bootstrap_ci(result.stats, "mae", n_resamples=200).low == low  # looked up by name

    d = json.loads(json.dumps(result.to_dict()))
    assert d["task"] == NAME and list(d["metrics"]) == ["mae"]
    assert list(d["chips"][0]["metrics"]) == ["mae"]

    worse = score_predictions(
        predict(split, tmp_path / "worse", noise=0.3), split, WET, n_resamples=200
    )
    assert compare(result, worse, n_resamples=200).better == "a"


def test_predictions_out_of_the_task_range_are_refused(settings: Settings, tmp_path: Path) -> None:
    split = open_split(settings, "tiny-wet", "val")
    pred_dir = predict(split, tmp_path / "pred", noise=0.1)
    sid = split.ids[0]
    grid = split.load(sid).grid
    write_raster(pred_dir / f"{sid}.tif", np.full(grid.shape, -0.5, np.float32), grid)
    with pytest.raises(PredictionError) as err:
        validate_predictions(pred_dir, split, WET)
    assert "outside [0, 1]" in str(err.value) and sid in str(err.value)


def test_quicklooks_render(settings: Settings, tmp_path: Path) -> None:
    test = open_split(settings, "tiny-wet", "test")
    pred_dir = predict(test, tmp_path / "pred", noise=0.1)
    sample = test.load(test.ids[0])
    assert sample.target is not None
    prediction = np.clip(sample.target + 0.2, 0, 1)

    image = np.asarray(render(sample, prediction, NAME))
    assert image.shape[0] >= 128 and image.shape[2] == 3
    scale = image.shape[0] // SIZE  # panels scaled up, 6 white columns between them
    truth = image[::scale, SIZE * scale + 6 :: scale][:, :SIZE]
    np.testing.assert_array_equal(truth, ramp(sample.target, sample.valid_or_all(), 0.0, 1.0))

    looks = write_quicklooks(settings, "tiny-wet", NAME, test.ids, pred_dir, tmp_path / "ql")
    assert looks.note == "" and len(looks.files) == len(test.ids)
    assert card.quicklook(sample, NAME).size == (2 * SIZE + 4, SIZE)  # one band, the target


def test_dataset_card_speaks_of_the_target(settings: Settings) -> None:
    text = (settings.manifests_dir / "tiny-wet" / "README.md").read_text()
    assert "| split | chips | groups | valid pixels | target values |" in text
    assert "wet fraction mean" in text
    assert "then wet fraction (brown low, green high; grey = not scored)" in text
    looks = settings.manifests_dir / "tiny-wet" / "quicklooks"
    # up to 3 chips per split, and none of the test split: cards show no test targets
    assert sorted(p.stem.split("_")[0] for p in looks.glob("*.png")) == ["train"] * 2 + ["val"] * 3


def test_sarbench_validate_offers_the_task(task: Task) -> None:
    out = CliRunner().invoke(main, ["validate", "--help"], catch_exceptions=False).output
    assert f"[flood|ndvi|{NAME}]" in out


def test_a_task_must_be_declared_consistently() -> None:
    ok = dict(
        name="toy",
        description="",
        input_bands=1,
        target=WET.target,
        target_dtype="float32",
        prediction_dtype="float32",
        prediction_range=(0.0, 1.0),
        stats=NdviStats,
    )
    bias = get_metric("ndvi", "bias")
    with pytest.raises(ValueError, match="better when higher or lower"):
        Task(**ok, metrics=(bias,), primary_metric="bias")
    with pytest.raises(ValueError, match="needs"):
        Task(**ok, metrics=(get_metric("flood", "iou"),), primary_metric="iou")
    with pytest.raises(ValueError, match="primary metric"):
        Task(**ok, metrics=(mae,), primary_metric="mse")
    with pytest.raises(ValueError, match="declared already"):
        register_task(get_task("flood"))
