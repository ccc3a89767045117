"""GeoTIFF reading and writing for chips and predictions.

A prediction must carry its input's grid (CRS, geotransform and size): read the input
with :func:`read_raster` (or :class:`sarbench_io.loader.SplitDir`), and write the
prediction with :func:`write_raster` and that input's :class:`Grid`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.transform import Affine

from sarbench_io.errors import DataFileError


@dataclass(frozen=True)
class Grid:
    """The georeferencing of a raster: CRS, affine geotransform and size.

    ``crs`` is canonical: ``"EPSG:<code>"`` where the CRS has one, else its WKT.
    ``transform`` holds the six affine coefficients ``(a, b, c, d, e, f)`` of rasterio's
    ``Affine`` (x = a*col + b*row + c, y = d*col + e*row + f).
    """

    crs: str
    transform: tuple[float, float, float, float, float, float]
    height: int
    width: int

    @classmethod
    def from_origin(
        cls, crs: str, west: float, north: float, pixel: float, height: int, width: int
    ) -> Grid:
        """A north-up grid with square pixels whose top-left corner is (west, north)."""
        t = Affine(pixel, 0.0, west, 0.0, -pixel, north)
        return cls(crs=canonical_crs(crs), transform=_coeffs(t), height=height, width=width)

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) for a north-up grid."""
        a, _, c, _, e, f = self.transform
        xs = (c, c + a * self.width)
        ys = (f, f + e * self.height)
        return (min(xs), min(ys), max(xs), max(ys))


def _coeffs(t: Affine) -> tuple[float, float, float, float, float, float]:
    return (float(t.a), float(t.b), float(t.c), float(t.d), float(t.e), float(t.f))


def canonical_crs(crs: CRS | str | None) -> str:
    """``"EPSG:<code>"`` where the CRS is an EPSG one, else its WKT; ``""`` for none."""
    if crs is None or crs == "":
        return ""
    c = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    code = c.to_epsg()
    return f"EPSG:{code}" if code is not None else c.to_wkt()


@dataclass(frozen=True)
class Raster:
    """A decoded raster: ``data`` is always (bands, height, width)."""

    data: np.ndarray
    grid: Grid
    nodata: float | None = None
    band_names: tuple[str, ...] = ()


def read_raster(path: str | os.PathLike[str]) -> Raster:
    """Read a GeoTIFF; any failure is a :class:`DataFileError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    try:
        with rasterio.open(path, driver="GTiff") as src:
            data = src.read()
            grid = Grid(
                crs=canonical_crs(src.crs),
                transform=_coeffs(src.transform),
                height=src.height,
                width=src.width,
            )
            names = tuple(d or "" for d in src.descriptions)
            return Raster(data=data, grid=grid, nodata=src.nodata, band_names=names)
    except RasterioError as exc:
        raise DataFileError(path, f"not a readable GeoTIFF ({exc})") from exc


def write_raster(
    path: str | os.PathLike[str],
    data: np.ndarray,
    grid: Grid,
    *,
    nodata: float | None = None,
    band_names: tuple[str, ...] | list[str] = (),
) -> None:
    """Write ``data`` ((bands, h, w) or (h, w)) as a deflate-compressed GeoTIFF.

    The dtype is ``data``'s: a flood prediction is ``uint8`` in {0, 1}, an ndvi one
    ``float32`` in [-1, 1]; leave ``nodata`` unset for predictions.
    """
    arr = data[np.newaxis] if data.ndim == 2 else data
    if arr.ndim != 3 or arr.shape[1:] != grid.shape:
        raise ValueError(f"{path}: array of shape {data.shape} does not fit grid {grid.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": grid.height,
        "width": grid.width,
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": CRS.from_user_input(grid.crs) if grid.crs else None,
        "transform": grid.affine,
        "nodata": nodata,
        "compress": "deflate",
        "tiled": grid.width >= 256 and grid.height >= 256,
    }
    if profile["tiled"]:
        profile.update(blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        for i, name in enumerate(band_names, start=1):
            dst.set_band_description(i, name)
