"""What the importers of real data (:mod:`harness.datasets.importers`) share: the error
that lists every problem of a source folder (:class:`SourceDataError`), a snapped grid
(:class:`Snap`), and the helpers that read a raster, check that a target lies on its
input's grid, and stream samples so that nothing is written unless every one is sound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from harness.datasets.layout import check_dataset_name
from harness.datasets.source import SampleRecord
from harness.errors import DataFileError, SarbenchError
from harness.geo import GRID_TOLERANCE, Raster, compare_grids, read_raster

IMPORTER_VERSION = 1
MAX_LISTED = 200  # problems written into one error message (all are kept on the error)


class SourceDataError(SarbenchError):
    """A source folder that cannot be imported as it is; lists every problem found.

    Each problem names the file (relative to the source folder) it is about.
    """

    def __init__(self, importer: str, source_dir: Path, problems: list[str]) -> None:
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
        more = (
            f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        )
        super().__init__(
            f"{importer} import from {source_dir}: {len(problems)} problem(s), nothing was "
            f"imported:\n{shown}{more}"
        )
        self.importer, self.source_dir, self.problems = importer, source_dir, problems


T = TypeVar("T")


def _check_name(name: str, what: str) -> str:
    return check_dataset_name(name, what, hint="; choose one with --name")


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path, rel: str, problems: list[str]) -> Raster | None:
    try:
        return read_raster(path)
    except DataFileError as exc:
        problems.append(f"{rel}: {exc.problem}")
        return None


@dataclass(frozen=True)
class Snap:
    """A target or valid mask whose grid differs from its input's within the tolerance
    (:func:`harness.geo.compare_grids`), written onto the input's exact grid: ``file`` and
    ``onto`` (its input) relative to the source folder, ``offset`` the largest distance
    between their pixel corners, in pixels."""

    file: str
    onto: str
    offset: float

    def __str__(self) -> str:
        return f"{self.file}: {self.offset:.2g} pixels, onto the grid of {self.onto}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "onto": self.onto, "offset_pixels": self.offset}


def _fits(
    r: Raster,
    rel: str,
    x: Raster,
    x_rel: str,
    problems: list[str],
    snapped: list[Snap],
    x_said: str | None = None,
) -> bool:
    """Whether ``r`` (a target or a mask) lies on the grid of its input ``x`` within the
    tolerance. Beyond it: a problem naming both files and each difference in words; within
    it but not bit for bit: a :class:`Snap` (the record is written on ``x``'s grid)."""
    match = compare_grids(r.grid, x.grid)
    if not match.same:
        problems.append(
            f"{rel}: grid differs from {x_said or x_rel}: {match} (grids must agree to "
            f"within {GRID_TOLERANCE:g} of a pixel)"
        )
        return False
    if not match.exact:
        snapped.append(Snap(rel, x_rel, match.offset))
    return True


def _values(arr: np.ndarray, limit: int = 5) -> str:
    vals = np.unique(arr)
    text = ", ".join(f"{v:g}" for v in vals[:limit].tolist())
    return text + (", ..." if vals.size > limit else "")


def _not_nodata(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """True where no band of ``data`` ((bands, H, W)) is NaN or the declared nodata value."""
    ok = np.ones(data.shape[1:], dtype=bool)
    if np.issubdtype(data.dtype, np.floating):
        ok &= ~np.isnan(data).any(axis=0)
    if nodata is not None and not math.isnan(nodata):
        ok &= (data != nodata).all(axis=0)
    return ok


def _order(splits: Sequence[str]) -> list[str]:
    first = [s for s in ("train", "val", "test") if s in splits]
    return first + sorted(s for s in splits if s not in first)


def _stream(
    known: list[str],
    items: Sequence[T],
    load: Callable[[T, list[str]], SampleRecord | None],
    fail: Callable[[list[str]], SourceDataError],
) -> Iterator[SampleRecord]:
    """Load and check every item; yield samples until the first problem, then only check.

    Raises ``fail(problems)`` at the end if anything was wrong, so a consumer writing into
    a staging folder never finishes with a partial dataset.
    """
    problems = list(known)
    for item in items:
        rec = load(item, problems)
        if rec is not None and not problems:
            yield rec
    if problems:
        raise fail(problems)
