"""GeoTIFF reading and writing, and digests of decoded raster content.

Reading and writing (:class:`Grid`, :func:`read_raster`, :func:`write_raster`) are
:mod:`sarbench_io.geo`'s, the code that also runs inside containers; they are named here
too. This module adds what only the harness needs: content digests, and GDAL's network
closed.

Grids are compared by one rule everywhere, :func:`compare_grids` (also
:mod:`sarbench_io.geo`'s, so that containers and the loader apply it too): same size, same
CRS, and transforms within :data:`GRID_TOLERANCE` (10^-6) of a pixel, i.e. every pixel
corner of the chip lands within a millionth of a pixel of the reference grid's. Importers
use it to accept a target or valid mask whose transform differs from its input's in the
last digits (and write it onto the input's exact grid), the loader and ``sarbench datasets
verify`` to check that targets and masks fit their inputs, and prediction validation to
check that a prediction fits its input. A difference beyond it is said in words
(:class:`GridMatch`): "pixel width differs by 3.3e-03 of a pixel (0.0000901 vs 0.0000898
degrees), 1.71 pixels across the 512-pixel chip".

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

import numpy as np
import rasterio

from sarbench_io.geo import (
    GRID_TOLERANCE,
    Grid,
    GridMatch,
    Raster,
    canonical_crs,
    compare_grids,
    read_raster,
    same_crs,
    write_raster,
)

__all__ = [
    "DIGEST_PREFIX",
    "GRID_TOLERANCE",
    "NETWORK_DRIVERS",
    "NO_NETWORK_FILENAME",
    "Grid",
    "GridMatch",
    "Raster",
    "canonical_crs",
    "close_gdal_network",
    "compare_grids",
    "content_digest",
    "file_digest",
    "gdal_network_drivers",
    "read_raster",
    "same_crs",
    "write_raster",
]

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
