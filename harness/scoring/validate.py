"""Checks a prediction folder before anything is scored, and lists every problem at once.

The contract (``docs/metrics.md``, "Predictions"): the folder holds exactly one single-band
GeoTIFF per test input, named like the input (``<id>.tif``), directly in the folder (no
subfolders, no symbolic links, nothing else), on the input's grid (same CRS, same
transform to within 10^-6 of a pixel, same width and height), in the task's dtype (flood:
``uint8``; ndvi: ``float32``), with a finite value in range at every pixel, scored or not
(flood: 0 or 1; ndvi: within [-1, 1]). A nodata value declared in the file is ignored: every
pixel is read as it is.

The size in a file's header is checked before any pixel is read, so a file that claims
enormous dimensions costs nothing. Files are opened with GDAL's GeoTIFF driver alone: GDAL
otherwise picks a driver by content, and a "prediction" that is really a VRT could make the
harness read any file it can see (the hidden targets, for one).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from harness.datasets.layout import SUFFIX
from harness.datasets.loader import SplitDir
from harness.errors import DataFileError, SarbenchError
from harness.geo import Grid, canonical_crs
from harness.tasks import Task

TRANSFORM_TOLERANCE = 1e-6
"""Largest difference of a geotransform coefficient, as a fraction of the pixel size."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a prediction folder: which file, what is wrong, what is expected."""

    file: str
    what: str
    expected: str

    def __str__(self) -> str:
        return f"{self.file}: {self.what} (expected {self.expected})"

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "what": self.what, "expected": self.expected}


class PredictionError(SarbenchError):
    """Predictions that break the contract; ``problems`` lists every problem found."""

    def __init__(self, pred_dir: str | os.PathLike[str], problems: list[Problem]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{pred_dir}: {len(problems)} problem(s) with the predictions, nothing was scored:"
            f"\n{lines}"
        )
        self.pred_dir, self.problems = Path(pred_dir), problems


def validate_predictions(
    pred_dir: str | os.PathLike[str], split: SplitDir, task: Task
) -> dict[str, Path]:
    """Check every prediction of ``split``'s inputs in ``pred_dir``; return id -> path.

    Raises :class:`PredictionError` listing every missing, extra or faulty file. A problem
    with the split itself (an unreadable input) is a :class:`DataFileError`.
    """
    root = Path(pred_dir)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "folder not found"
        raise PredictionError(
            root, [Problem(str(root), what, "a folder with one <id>.tif per test input")]
        )
    expected = set(split.ids)
    example = f"{split.ids[0]}{SUFFIX}" if split.ids else f"<id>{SUFFIX}"
    contract = f"only <id>{SUFFIX} files for the {len(expected)} test inputs (e.g. {example})"
    problems: list[Problem] = []
    found: dict[str, Path] = {}
    accounted: set[str] = set()
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = entry.name
        stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else None
        if entry.is_symlink():
            problems.append(Problem(name, "is a symbolic link", "a regular file"))
        elif entry.is_dir(follow_symlinks=False):
            problems.append(Problem(f"{name}/", "is a subfolder", contract))
        elif stem is None or stem not in expected:
            problems.append(Problem(name, _extra_reason(name, expected), contract))
            continue
        elif not entry.is_file(follow_symlinks=False):
            problems.append(Problem(name, "is not a regular file", "a regular file"))
        else:
            found[stem] = Path(entry.path)
        if stem in expected:
            accounted.add(stem)
    for sid in sorted(expected - accounted):
        problems.append(
            Problem(f"{sid}{SUFFIX}", "missing", "one prediction per test input, named like it")
        )
    for sid in sorted(found):
        problems.extend(check_file(found[sid], input_grid(split.input_path(sid)), task))
    if problems:
        raise PredictionError(root, problems)
    return {sid: found[sid] for sid in split.ids}


def _extra_reason(name: str, expected: set[str]) -> str:
    lower = name.lower()
    for ext in (".tif", ".tiff"):
        if lower.endswith(ext) and name[: -len(ext)] in expected:
            return f"extra file: name it {name[: -len(ext)]}{SUFFIX} (lower-case {SUFFIX})"
    if name.endswith(SUFFIX):
        return f"extra file: no test input is called {name[: -len(SUFFIX)]!r}"
    return f"extra file: not an <id>{SUFFIX} prediction"


def input_grid(path: Path) -> Grid:
    """The grid of a test input, from its header (no pixels read)."""
    try:
        with rasterio.open(path, driver="GTiff") as src:
            return Grid(
                crs=canonical_crs(src.crs),
                transform=tuple(float(v) for v in src.transform[:6]),  # type: ignore[arg-type]
                height=src.height,
                width=src.width,
            )
    except RasterioError as exc:
        raise DataFileError(path, f"test input not readable ({exc})") from exc


def _same_transform(got: tuple[float, ...], want: tuple[float, ...]) -> bool:
    pixel = max(abs(want[0]), abs(want[1]), abs(want[3]), abs(want[4]))
    tol = TRANSFORM_TOLERANCE * pixel
    return all(abs(g - w) <= tol for g, w in zip(got, want, strict=True))


def check_file(path: Path, want: Grid, task: Task) -> list[Problem]:
    """Every problem of one prediction file against the grid of its input."""
    with warnings.catch_warnings():
        # a missing geotransform is reported as a problem, not also as a warning
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return _check_file(path, want, task)


def _check_file(path: Path, want: Grid, task: Task) -> list[Problem]:
    name = path.name
    problems: list[Problem] = []

    def bad(what: str, expected: str) -> None:
        problems.append(Problem(name, what, expected))

    try:
        with rasterio.open(path) as probe:  # which format it is, for the message
            driver = probe.driver
    except RasterioError as exc:
        bad(f"cannot be read ({exc})", "a readable single-band GeoTIFF")
        return problems
    if driver != "GTiff":  # checked before a VRT's references are ever followed
        bad(f"is a {driver} file, not a GeoTIFF", "a GeoTIFF")
        return problems
    try:
        with rasterio.open(path, driver="GTiff") as src:
            if src.count != 1:
                bad(f"has {src.count} bands", "a single band")
            if (src.height, src.width) != want.shape:
                bad(
                    f"is {src.width} x {src.height} pixels (width x height)",
                    f"{want.width} x {want.height}, the size of its input; pixels not read",
                )
                return problems
            crs = canonical_crs(src.crs)
            if crs != want.crs:
                bad(f"has CRS {crs or 'none'}", f"{want.crs or 'none'}, its input's CRS")
            got = tuple(float(v) for v in src.transform[:6])
            if not _same_transform(got, want.transform):
                bad(f"has geotransform {got}", f"{want.transform}, its input's")
            dtype = src.dtypes[0]
            if dtype != task.prediction_dtype:
                bad(f"has dtype {dtype}", f"{task.prediction_dtype} for {task.name} predictions")
            if src.count < 1:
                return problems
            data = src.read(1)
    except RasterioError as exc:
        bad(f"cannot be read ({exc})", "a readable single-band GeoTIFF")
        return problems
    for what, expected in check_values(data, task):
        bad(what, expected)
    return problems


def check_values(data: np.ndarray, task: Task) -> list[tuple[str, str]]:
    """(what, expected) for every kind of bad value in ``data``: NaN, inf, out of range.

    >>> from harness.tasks import get_task
    >>> check_values(np.array([0, 1, 2, 7], dtype=np.uint8), get_task("flood"))
    [('2 pixel(s) are not 0 or 1 (found 2, 7)', '0 or 1 at every pixel')]
    """
    out: list[tuple[str, str]] = []
    finite_hint = "a finite value at every pixel, scored or not (write 0 where unsure)"
    values = data
    if data.dtype.kind in "fc":
        finite = np.isfinite(data)
        if not finite.all():
            n_nan = int(np.count_nonzero(np.isnan(data)))
            n_inf = int(data.size - np.count_nonzero(finite)) - n_nan
            if n_nan:
                out.append((f"{n_nan} pixel(s) are NaN", finite_hint))
            if n_inf:
                out.append((f"{n_inf} pixel(s) are infinite", finite_hint))
            values = data[finite]
    lo, hi = task.prediction_range
    if task.target_kind == "binary_mask":
        wrong = values[(values != lo) & (values != hi)]
        if wrong.size:
            shown = ", ".join(_fmt(v) for v in np.unique(wrong)[:5])
            out.append(
                (
                    f"{wrong.size} pixel(s) are not {_fmt(lo)} or {_fmt(hi)} (found {shown})",
                    f"{_fmt(lo)} or {_fmt(hi)} at every pixel",
                )
            )
    else:
        wrong = values[(values < lo) | (values > hi)]
        if wrong.size:
            out.append(
                (
                    f"{wrong.size} pixel(s) are outside [{_fmt(lo)}, {_fmt(hi)}] "
                    f"(min {_fmt(values.min())}, max {_fmt(values.max())})",
                    f"values within [{_fmt(lo)}, {_fmt(hi)}]; clip them",
                )
            )
    return out


def _fmt(v: float | np.generic) -> str:
    x = float(v)
    return str(int(x)) if x.is_integer() else f"{x:.6g}"
