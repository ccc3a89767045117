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


GRID_TOLERANCE = 1e-6
"""Two grids are the same when they have the same size and CRS and every pixel corner of
one lies within this fraction of a pixel of the other's (:func:`compare_grids`)."""

_FIELDS = (
    ("pixel width", "x"),
    ("row rotation term", "x"),
    ("x origin", "x"),
    ("column rotation term", "y"),
    ("pixel height", "y"),
    ("y origin", "y"),
)


@dataclass(frozen=True)
class GridMatch:
    """How a grid compares with a reference grid (:func:`compare_grids`).

    ``size``, ``crs``: the two values where they differ, else None; ``transform``: each
    geotransform coefficient that differs beyond the tolerance, in words; ``offset``: the
    largest distance between a pixel corner of one grid and the same corner of the other,
    over the reference's extent, in the reference's pixels (0.0 for identical transforms,
    ``inf`` where it cannot be measured).
    """

    size: str | None
    crs: str | None
    transform: tuple[str, ...]
    offset: float

    @property
    def same(self) -> bool:
        """Same size and CRS, and transforms equal within the tolerance."""
        return self.size is None and self.crs is None and not self.transform

    @property
    def exact(self) -> bool:
        """The same, bit for bit."""
        return self.same and self.offset == 0.0

    def differences(self) -> list[str]:
        """Every difference, in words: size, CRS, then each geotransform coefficient."""
        out = [f"size {self.size}"] if self.size else []
        if self.crs:
            out.append(f"CRS {self.crs}")
        return out + list(self.transform)

    def __str__(self) -> str:
        return "; ".join(self.differences()) or "same grid"


def same_crs(a: str, b: str) -> bool:
    """Whether two canonical CRS strings (:func:`canonical_crs`) name the same CRS."""
    if a == b:
        return True
    if not a or not b:
        return False
    try:
        return bool(CRS.from_user_input(a) == CRS.from_user_input(b))
    except Exception:  # an unreadable CRS equals nothing but itself
        return False


def compare_grids(got: Grid, want: Grid, tolerance: float = GRID_TOLERANCE) -> GridMatch:
    """Compare ``got`` with the reference grid ``want``: the one rule by which a target,
    a valid mask or a prediction must share its input's grid.

    Same size, same CRS (:func:`same_crs`), and transforms within ``tolerance`` of a
    pixel: every pixel corner of the chip, mapped by both transforms, lands within
    ``tolerance`` pixels of the reference's (so a pixel size that differs in its 15th
    digit passes, and one off by a millionth does not on a chip of more than one pixel).
    Differences are said in words with both values, to the digits that tell them apart:

    >>> a = Grid.from_origin("EPSG:4326", 10.0, 50.0, 0.0000898, 512, 512)
    >>> b = Grid.from_origin("EPSG:4326", 10.0, 50.0, 0.0000901, 512, 512)
    >>> print(compare_grids(b, a).transform[0])
    pixel width differs by 3.3e-03 of a pixel (0.0000901 vs 0.0000898 degrees), 1.71 pixels across the 512-pixel chip
    >>> compare_grids(a, a).exact
    True
    """
    size = None
    if got.shape != want.shape:
        size = f"{got.width}x{got.height} vs {want.width}x{want.height} (width x height)"
    crs = None
    if not same_crs(got.crs, want.crs):
        crs = f"{_short_crs(got.crs)} vs {_short_crs(want.crs)}"
    offset = _offset(got.transform, want.transform, want.width, want.height)
    details: tuple[str, ...] = ()
    if not offset <= tolerance:  # NaN counts as beyond
        details = _transform_words(got, want, tolerance)
    return GridMatch(size, crs, details, offset)


def _short_crs(crs: str) -> str:
    return (crs[:40] + "...") if len(crs) > 43 else (crs or "none")


def _offset(got: tuple[float, ...], want: tuple[float, ...], width: int, height: int) -> float:
    if tuple(got) == tuple(want):
        return 0.0
    a, b, _, d, e, _ = want
    det = a * e - b * d
    if not (np.isfinite(det) and det != 0.0):
        return float("inf")
    delta = np.subtract(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64))
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64)
    dx = delta[0] * corners[:, 0] + delta[1] * corners[:, 1] + delta[2]
    dy = delta[3] * corners[:, 0] + delta[4] * corners[:, 1] + delta[5]
    with np.errstate(all="ignore"):
        dcol = (e * dx - b * dy) / det
        drow = (-d * dx + a * dy) / det
        out = float(np.max(np.maximum(np.abs(dcol), np.abs(drow))))
    return out if np.isfinite(out) else float("inf")


def _units(crs: str) -> str:
    try:
        c = CRS.from_user_input(crs)
        if c.is_geographic:
            return "degrees"
        units = c.linear_units or ""
    except Exception:
        return "CRS units"
    return {"metre": "m", "meter": "m", "unknown": "CRS units", "": "CRS units"}.get(units, units)


def _number(v: float, digits: int) -> str:
    if v != 0.0 and np.isfinite(v) and not 1e-7 <= abs(v) < 1e16:
        return np.format_float_scientific(v, precision=digits - 1, unique=False, trim="-")
    return np.format_float_positional(v, precision=digits, unique=False, fractional=False, trim="-")


def _pixels(n: float) -> str:
    """A number of pixels, readably: ``4,096``, ``2.5``, ``1.8e-12``."""
    if n >= 1000:
        return f"{n:,.0f}"
    return f"{n:.3g}" if n >= 0.01 else f"{n:.2g}"


def pair(a: float, b: float) -> str:
    """``"a vs b"`` with the fewest significant digits (at least 3) that tell them apart.

    >>> pair(8.983152841195184e-05, 9.01e-05)
    '0.0000898 vs 0.0000901'
    """
    for digits in range(3, 18):
        sa, sb = _number(a, digits), _number(b, digits)
        if sa != sb:
            return f"{sa} vs {sb}"
    return f"{a!r} vs {b!r}"


def _transform_words(got: Grid, want: Grid, tolerance: float) -> tuple[str, ...]:
    a, b, _, d, e, _ = want.transform
    pixel = {"x": float(np.hypot(a, d)), "y": float(np.hypot(b, e))}
    extent = {0: want.width, 1: want.height, 3: want.width, 4: want.height}
    units = _units(want.crs)
    words: list[tuple[float, str]] = []
    for i, (name, axis) in enumerate(_FIELDS):
        g, w = got.transform[i], want.transform[i]
        if g == w:
            continue
        values = f"({pair(g, w)} {units})"
        size = pixel[axis]
        rel = abs(g - w) / size if size > 0 else float("inf")
        if i in (2, 5):
            text = f"{name} differs by {_pixels(rel)} pixel{'' if rel == 1 else 's'} {values}"
            moved = rel
        else:
            n = extent[i]
            moved = rel * n
            text = (
                f"{name} differs by {rel:.1e} of a pixel {values}, {_pixels(moved)} pixels "
                f"across the {n}-pixel chip"
            )
        words.append((moved, text))
    beyond = [t for moved, t in words if not moved <= tolerance]
    return tuple(beyond or [t for _, t in words] or ["geotransform is not usable"])


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
