"""GeoTIFF reading and writing, and digests of decoded raster content.

A content digest covers what a reader of the file gets: pixel values, dtype, band count,
shape, CRS, geotransform and nodata value. It does not cover the encoding (compression,
tiling, GDAL version, metadata tags), so re-encoding a file does not change its digest
while changing one pixel does.

Importing this module (every part of the harness that reads a raster does) closes GDAL's
network access for the whole process: see :func:`close_gdal_network`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.transform import Affine

from harness.errors import DataFileError

DIGEST_PREFIX = "sha256:"

NETWORK_DRIVERS = (
    "WMS", "WMTS", "WCS", "HTTP", "DAAS", "EEDA", "EEDAI", "PLMOSAIC", "PLSCENES", "STACIT",
    "STACTA", "ESRIC", "OGCAPI", "NGW", "WFS", "OAPIF", "CSW", "Elasticsearch", "CARTO",
    "AmigoCloud", "KMLSUPEROVERLAY",
)  # fmt: skip
"""GDAL drivers that fetch URLs named in a file's content (a WMTS "prediction" is a few lines
of XML that make GDAL request its capabilities URL). Never registered in a harness process."""

NO_NETWORK_FILENAME = "/vsicurl/sarbench-has-no-network"
"""The one URL GDAL's ``/vsicurl/`` family (``/vsicurl/``, ``/vsis3/``, ``/vsigs/``,
``/vsiaz/``, ``http://`` paths...) may open: none that exists."""


def close_gdal_network() -> None:
    """Close every way GDAL reaches the network, for this process and its children.

    Set as environment variables, which GDAL reads as configuration options:

    - ``GDAL_SKIP``: the :data:`NETWORK_DRIVERS` are not registered (read once, when GDAL
      registers its drivers: at the first raster opened, after this module is imported);
    - ``CPL_VSIL_CURL_ALLOWED_FILENAME``: GDAL's curl-based virtual file systems refuse
      every name but :data:`NO_NETWORK_FILENAME` before sending any request (read at every
      open);
    - ``PROJ_NETWORK=OFF``: PROJ downloads no grids.

    Names already in ``GDAL_SKIP`` are kept. Predictions are moreover opened with the
    GeoTIFF driver alone (:mod:`harness.scoring.validate`).
    """
    skip = os.environ.get("GDAL_SKIP", "").replace(",", " ").split()
    os.environ["GDAL_SKIP"] = " ".join(dict.fromkeys([*skip, *NETWORK_DRIVERS]))
    os.environ["CPL_VSIL_CURL_ALLOWED_FILENAME"] = NO_NETWORK_FILENAME
    os.environ["PROJ_NETWORK"] = "OFF"


class _QuietSkip(logging.Filter):
    """GDAL warns about each name in GDAL_SKIP that this build does not have."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "to unload from GDAL_SKIP" not in record.getMessage()


def gdal_network_drivers() -> list[str]:
    """The :data:`NETWORK_DRIVERS` that GDAL has registered in this process (none, unless
    a raster was opened before the harness was imported)."""
    with rasterio.Env() as env:
        return sorted(set(env.drivers()) & set(NETWORK_DRIVERS))


close_gdal_network()
logging.getLogger("rasterio._env").addFilter(_QuietSkip())


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
    """Write ``data`` ((bands, h, w) or (h, w)) as a deflate-compressed GeoTIFF."""
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


def _nodata_key(nodata: float | None) -> str | None:
    if nodata is None:
        return None
    return "nan" if math.isnan(nodata) else repr(float(nodata))


def content_digest(data: np.ndarray, grid: Grid, nodata: float | None = None) -> str:
    """Digest of decoded raster content (see the module docstring)."""
    arr = data[np.newaxis] if data.ndim == 2 else data
    header = {
        "dtype": arr.dtype.name,
        "shape": list(arr.shape),
        "crs": grid.crs,
        "transform": [repr(v) for v in grid.transform],
        "nodata": _nodata_key(nodata),
    }
    h = hashlib.sha256()
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(b"\0")
    h.update(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
    return DIGEST_PREFIX + h.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """Content digest of a GeoTIFF file, decoded."""
    r = read_raster(path)
    return content_digest(r.data, r.grid, r.nodata)
