"""The one loader of the dataset layout, shared by the harness, the baselines and entries.

It reads a split folder of the layout (see :mod:`sarbench_io.layout`): the data root's
``<dataset>/<split>/`` or a container's ``/data/train``, or an ``inputs/`` folder alone
(a container's ``/data/test/inputs``).

Example::

    split = SplitDir("/data/train")
    for sample in split:
        x, y = sample.inputs, sample.target      # (bands, H, W) float32, (H, W)
                                                 # x: NaN where an input is missing (the
                                                 # file's nodata value, e.g. -9999, too)
        sample.valid_or_all()                    # bool (H, W): True where a pixel is scored
        sample.grid                              # CRS + transform to write predictions with
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sarbench_io.errors import DataFileError
from sarbench_io.geo import Grid, compare_grids, read_raster
from sarbench_io.layout import SUFFIX


@dataclass(frozen=True)
class Sample:
    """One chip with its georeferencing.

    ``inputs`` hold NaN where the file has no data: its nodata value (``input_nodata``,
    e.g. -9999 dB) is read as NaN, so that missing inputs look one way to every reader.

    ``target`` and ``valid`` are ``None`` where the split has none (a container's test
    inputs). ``valid`` is a bool mask, True where a pixel is scored.
    """

    id: str
    inputs: np.ndarray
    grid: Grid
    band_names: tuple[str, ...]
    target: np.ndarray | None = None
    valid: np.ndarray | None = None
    input_nodata: float | None = None

    def valid_or_all(self) -> np.ndarray:
        """The valid mask, or all True where the split carries none."""
        if self.valid is not None:
            return self.valid
        return np.ones(self.grid.shape, dtype=bool)


class SplitDir:
    """A split folder: ``inputs/`` and, where present, ``targets/`` and ``valid/``.

    ``path`` may also be an ``inputs/`` folder itself (a container's ``/data/test/inputs``):
    then only inputs are read, whatever lies beside it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        if (path / "inputs").is_dir():
            self.inputs_dir = path / "inputs"
        elif path.name == "inputs" and path.is_dir():
            self.inputs_dir = path
        else:
            raise DataFileError(path, "not a split folder: it has no inputs/ folder")
        self.path = self.inputs_dir.parent
        # Given an inputs/ folder itself, read inputs only (a container's test mount).
        whole = self.inputs_dir != path
        targets, valid = self.path / "targets", self.path / "valid"
        self.targets_dir = targets if whole and targets.is_dir() else None
        self.valid_dir = valid if whole and valid.is_dir() else None
        self.ids: list[str] = sorted(
            p.name[: -len(SUFFIX)]
            for p in self.inputs_dir.iterdir()
            if p.name.endswith(SUFFIX) and p.is_file()
        )

    @property
    def has_targets(self) -> bool:
        return self.targets_dir is not None

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Sample]:
        for sid in self.ids:
            yield self.load(sid)

    def input_path(self, sample_id: str) -> Path:
        return self.inputs_dir / f"{sample_id}{SUFFIX}"

    def load(self, sample_id: str) -> Sample:
        """Read one sample; a target or mask that does not fit its input is an error."""
        src = read_raster(self.input_path(sample_id))
        target = valid = None
        if self.targets_dir is not None:
            t = read_raster(self.targets_dir / f"{sample_id}{SUFFIX}")
            _same_grid(t.grid, src.grid, self.targets_dir / f"{sample_id}{SUFFIX}")
            target = t.data[0]
        if self.valid_dir is not None:
            vpath = self.valid_dir / f"{sample_id}{SUFFIX}"
            v = read_raster(vpath)  # a split with valid/ needs a mask for every sample
            _same_grid(v.grid, src.grid, vpath)
            valid = v.data[0] != 0
        return Sample(
            id=sample_id,
            inputs=_nodata_as_nan(src.data, src.nodata),
            grid=src.grid,
            band_names=src.band_names,
            target=target,
            valid=valid,
            input_nodata=src.nodata,
        )


def _nodata_as_nan(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """Float inputs with their file's nodata value (e.g. -9999 dB) as NaN, so that every
    reader sees missing inputs one way: NaN (Sen1Floods11's chips carry NaN already)."""
    if nodata is None or np.isnan(nodata) or not np.issubdtype(data.dtype, np.floating):
        return data
    missing = data == nodata
    if not missing.any():
        return data
    out = data.copy()
    out[missing] = np.nan
    return out


def _same_grid(got: Grid, want: Grid, path: Path) -> None:
    """A target or mask must share its input's grid (:func:`sarbench_io.geo.compare_grids`:
    same size and CRS, transforms within a millionth of a pixel)."""
    match = compare_grids(got, want)
    if not match.same:
        raise DataFileError(path, f"grid differs from its input's: {match}")
