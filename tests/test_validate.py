"""Prediction validation: every problem named, with its file, all at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.io import DatasetReader
from rasterio.transform import Affine

from harness.datasets.loader import SplitDir
from harness.errors import SarbenchError
from harness.geo import Grid, write_raster
from harness.scoring.validate import PredictionError, Problem, validate_predictions
from harness.tasks import get_task

GRID = Grid.from_origin("EPSG:32631", 500_000.0, 4_600_000.0, 10.0, 8, 8)
IDS = ("a01", "a02", "b01")


def make_split(root: Path, ids: tuple[str, ...] = IDS) -> SplitDir:
    for i, sid in enumerate(ids):
        grid = Grid.from_origin("EPSG:32631", 500_000.0 + 80 * i, 4_600_000.0, 10.0, 8, 8)
        inputs = np.zeros((2, 8, 8), np.float32)
        write_raster(root / "split" / "inputs" / f"{sid}.tif", inputs, grid)
    return SplitDir(root / "split")


def grid_of(split: SplitDir, sid: str) -> Grid:
    with rasterio.open(split.input_path(sid)) as src:
        t = src.transform
        return Grid("EPSG:32631", (t.a, t.b, t.c, t.d, t.e, t.f), src.height, src.width)


def write(path: Path, data: np.ndarray, grid: Grid, **overrides: Any) -> None:
    """A GeoTIFF written with rasterio; ``overrides`` change the profile (crs, transform...)."""
    arr = data[np.newaxis] if data.ndim == 2 else data
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": arr.shape[1],
        "width": arr.shape[2],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": CRS.from_user_input(grid.crs),
        "transform": grid.affine,
    }
    profile.update(overrides)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)


def good_predictions(split: SplitDir, out: Path, task: str) -> Path:
    out.mkdir(exist_ok=True)
    for sid in split.ids:
        if task == "flood":
            data = (np.arange(64).reshape(8, 8) % 2).astype(np.uint8)
        else:
            data = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
        write(out / f"{sid}.tif", data, grid_of(split, sid))
    return out


def problems_of(pred: Path, split: SplitDir, task: str) -> list[Problem]:
    with pytest.raises(PredictionError) as info:
        validate_predictions(pred, split, get_task(task))
    assert isinstance(info.value, SarbenchError)
    for p in info.value.problems:  # every problem names a file, says what and what instead
        assert p.file and p.what and p.expected
        assert str(p) in str(info.value)
    return info.value.problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


@pytest.fixture
def split(tmp_path: Path) -> SplitDir:
    return make_split(tmp_path)


@pytest.mark.parametrize("task", ["flood", "ndvi"])
def test_good_predictions_pass(split: SplitDir, tmp_path: Path, task: str) -> None:
    pred = good_predictions(split, tmp_path / "pred", task)
    paths = validate_predictions(pred, split, get_task(task))
    assert list(paths) == list(IDS)
    assert paths["a02"] == pred / "a02.tif"


def test_missing_file(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    (pred / "a02.tif").unlink()
    p = only(problems_of(pred, split, "flood"))
    assert (p.file, p.what) == ("a02.tif", "missing")


def test_missing_folder(split: SplitDir, tmp_path: Path) -> None:
    p = only(problems_of(tmp_path / "nowhere", split, "flood"))
    assert p.what == "folder not found"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("zz9.tif", "no test input is called 'zz9'"),
        ("notes.txt", "not an <id>.tif prediction"),
        (".DS_Store", "not an <id>.tif prediction"),
        ("a01.TIF", "name it a01.tif"),
        ("a01.tiff", "name it a01.tif"),
    ],
)
def test_extra_files(split: SplitDir, tmp_path: Path, name: str, reason: str) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    (pred / name).write_bytes(b"x")
    p = only(problems_of(pred, split, "flood"))
    assert p.file == name and reason in p.what and "3 test inputs" in p.expected


def test_subfolder_is_extra(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    (pred / "nested").mkdir()
    write(pred / "nested" / "a01.tif", np.zeros((8, 8), np.uint8), grid_of(split, "a01"))
    p = only(problems_of(pred, split, "flood"))
    assert (p.file, p.what) == ("nested/", "is a subfolder")


def test_symlink_is_refused(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    real = tmp_path / "elsewhere.tif"
    os.replace(pred / "a01.tif", real)
    (pred / "a01.tif").symlink_to(real)
    p = only(problems_of(pred, split, "flood"))
    assert (p.file, p.what) == ("a01.tif", "is a symbolic link")


def test_unreadable_file(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    (pred / "b01.tif").write_bytes(b"II*\x00 this is not really a tiff")
    p = only(problems_of(pred, split, "flood"))
    assert p.file == "b01.tif" and p.what.startswith("cannot be read")


def test_not_a_geotiff(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    write(pred / "a01.tif", np.zeros((8, 8), np.uint8), grid_of(split, "a01"), driver="BMP")
    sidecar = pred / "a01.tif.aux.xml"  # GDAL keeps the BMP's CRS beside it
    assert [p.file for p in problems_of(pred, split, "flood")] == [sidecar.name, "a01.tif"]
    sidecar.unlink()
    p = only(problems_of(pred, split, "flood"))
    assert p.what == "is a BMP file, not a GeoTIFF"


def test_wrong_shape(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    write(pred / "a01.tif", np.zeros((8, 9), np.uint8), grid_of(split, "a01"))
    p = only(problems_of(pred, split, "flood"))
    assert p.what == "is 9 x 8 pixels (width x height)" and p.expected.startswith("8 x 8")


def test_several_bands(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    write(pred / "a01.tif", np.zeros((2, 8, 8), np.uint8), grid_of(split, "a01"))
    assert only(problems_of(pred, split, "flood")).what == "has 2 bands"


def test_enormous_dimensions_are_refused_before_reading(
    split: SplitDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    huge = pred / "a01.tif"
    huge.unlink()
    profile = {
        "width": 200_000,
        "height": 200_000,
        "tiled": True,
        "compress": "deflate",
        "sparse_ok": True,
        "BIGTIFF": "YES",
    }
    with rasterio.open(
        huge,
        "w",
        driver="GTiff",
        count=1,
        dtype="uint8",
        crs="EPSG:32631",
        transform=grid_of(split, "a01").affine,
        **profile,
    ):
        pass  # header only: 40 Gpixels claimed, nothing written
    assert huge.stat().st_size < 50_000_000

    real_read = DatasetReader.read

    def guarded(self: DatasetReader, *args: Any, **kwargs: Any) -> Any:
        assert Path(self.name).name != "a01.tif", "pixels of the enormous file were read"
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(DatasetReader, "read", guarded)
    p = only(problems_of(pred, split, "flood"))
    assert p.what == "is 200000 x 200000 pixels (width x height)"
    assert "pixels not read" in p.expected


def test_wrong_crs_and_missing_crs(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    data = np.zeros((8, 8), np.uint8)
    write(pred / "a01.tif", data, grid_of(split, "a01"), crs=CRS.from_epsg(4326))
    write(pred / "a02.tif", data, grid_of(split, "a02"), crs=None)
    problems = problems_of(pred, split, "flood")
    assert [(p.file, p.what) for p in problems] == [
        ("a01.tif", "has CRS EPSG:4326"),
        ("a02.tif", "has CRS none"),
    ]
    assert problems[0].expected.startswith("EPSG:32631")


def test_wrong_transform(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    g = grid_of(split, "a01")
    shifted = Affine(10.0, 0.0, g.transform[2] + 10.0, 0.0, -10.0, g.transform[5])
    write(pred / "a01.tif", np.zeros((8, 8), np.uint8), g, transform=shifted)
    p = only(problems_of(pred, split, "flood"))
    assert p.what.startswith("has geotransform") and "its input's" in p.expected
    # the differing field in words, both values to the digits that tell them apart
    west = g.transform[2]
    assert f"x origin differs by 1 pixel ({west + 10:g} vs {west:g} m)" in p.what
    assert "pixel width" not in p.what and "1e-06 of a pixel" in p.expected


def test_a_pixel_size_off_in_its_last_digits_is_accepted_and_a_millionth_is_not(
    split: SplitDir, tmp_path: Path
) -> None:
    """One tolerance for every grid (harness.geo.compare_grids): pixel corners within a
    millionth of a pixel across the chip."""
    pred = good_predictions(split, tmp_path / "pred", "flood")
    g = grid_of(split, "a01")
    a = float(np.nextafter(np.nextafter(10.0, 11.0), 11.0))  # 10.000000000000004
    last_digits = Affine(a, 0.0, g.transform[2], 0.0, -10.0, g.transform[5])
    write(pred / "a01.tif", np.zeros((8, 8), np.uint8), g, transform=last_digits)
    assert len(validate_predictions(pred, split, get_task("flood"))) == 3
    off = Affine(10.0 * (1 + 2e-6), 0.0, g.transform[2], 0.0, -10.0, g.transform[5])
    write(pred / "a01.tif", np.zeros((8, 8), np.uint8), g, transform=off)
    p = only(problems_of(pred, split, "flood"))
    assert "pixel width differs by 2.0e-06 of a pixel (10.00002 vs 10 m)" in p.what
    assert "across the 8-pixel chip" in p.what


def test_transform_within_a_millionth_of_a_pixel_is_accepted(
    split: SplitDir, tmp_path: Path
) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    g = grid_of(split, "a01")
    nudged = Affine(10.0, 0.0, g.transform[2] + 1e-6, 0.0, -10.0, g.transform[5])
    write(pred / "a01.tif", np.zeros((8, 8), np.uint8), g, transform=nudged)
    assert len(validate_predictions(pred, split, get_task("flood"))) == 3


@pytest.mark.parametrize(
    ("task", "data", "expected"),
    [
        ("flood", np.zeros((8, 8), np.float32), "has dtype float32"),
        ("flood", np.zeros((8, 8), np.int16), "has dtype int16"),
        ("ndvi", np.zeros((8, 8), np.float64), "has dtype float64"),
    ],
)
def test_wrong_dtype(
    split: SplitDir, tmp_path: Path, task: str, data: np.ndarray, expected: str
) -> None:
    pred = good_predictions(split, tmp_path / "pred", task)
    write(pred / "a01.tif", data, grid_of(split, "a01"))
    p = only(problems_of(pred, split, task))
    assert p.what == expected and get_task(task).prediction_dtype in p.expected


def test_nan_and_inf(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "ndvi")
    data = np.zeros((8, 8), np.float32)
    data[0, :3] = np.nan
    data[1, 0] = np.inf
    data[1, 1] = -np.inf
    write(pred / "a02.tif", data, grid_of(split, "a02"))
    problems = problems_of(pred, split, "ndvi")
    assert [(p.file, p.what) for p in problems] == [
        ("a02.tif", "3 pixel(s) are NaN"),
        ("a02.tif", "2 pixel(s) are infinite"),
    ]
    assert "finite" in problems[0].expected


def test_flood_values_must_be_zero_or_one(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    data = np.zeros((8, 8), np.uint8)
    data[0, 0], data[0, 1], data[0, 2] = 2, 255, 255
    write(pred / "a01.tif", data, grid_of(split, "a01"))
    p = only(problems_of(pred, split, "flood"))
    assert p.what == "3 pixel(s) are not 0 or 1 (found 2, 255)"


def test_ndvi_values_must_lie_in_range(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "ndvi")
    data = np.zeros((8, 8), np.float32)
    data[0, 0], data[0, 1] = 1.5, -1.25
    write(pred / "b01.tif", data, grid_of(split, "b01"))
    p = only(problems_of(pred, split, "ndvi"))
    assert p.what == "2 pixel(s) are outside [-1, 1] (min -1.25, max 1.5)"


def test_bounds_of_the_range_are_allowed(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "ndvi")
    data = np.full((8, 8), -1.0, np.float32)
    data[0] = 1.0
    write(pred / "b01.tif", data, grid_of(split, "b01"))
    assert len(validate_predictions(pred, split, get_task("ndvi"))) == 3


def test_all_problems_are_reported_together(split: SplitDir, tmp_path: Path) -> None:
    pred = good_predictions(split, tmp_path / "pred", "flood")
    (pred / "a01.tif").unlink()  # missing
    (pred / "extra.tif").write_bytes(b"")  # extra
    (pred / "sub").mkdir()  # subfolder
    bad = np.full((8, 8), 3, np.float32)
    bad[0, 0] = np.nan
    write(pred / "a02.tif", bad, grid_of(split, "a02"), crs=CRS.from_epsg(3857))
    (pred / "b01.tif").write_bytes(b"garbage")  # unreadable
    problems = problems_of(pred, split, "flood")
    listed = [(p.file, p.what.split(" (")[0]) for p in problems]
    assert listed == [
        ("extra.tif", "extra file: no test input is called 'extra'"),
        ("sub/", "is a subfolder"),
        ("a01.tif", "missing"),
        ("a02.tif", "has CRS EPSG:3857"),
        ("a02.tif", "has dtype float32"),
        ("a02.tif", "1 pixel(s) are NaN"),
        ("a02.tif", "63 pixel(s) are not 0 or 1"),
        ("b01.tif", "cannot be read"),
    ]
    with pytest.raises(PredictionError, match="8 problem\\(s\\)"):
        validate_predictions(pred, split, get_task("flood"))
