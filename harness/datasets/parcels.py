"""Farm parcels for the folder importer (``--parcels PATH``): the polygons of a vector
file, burnt onto each chip's grid as the mask of the pixels to score.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from harness.geo import Grid, canonical_crs, same_crs


class _Parcels:
    """Polygons of the pixels to score (farm parcels for ndvi), read once from a vector
    file (GeoPackage, GeoJSON, shapefile: whatever GDAL reads, through pyogrio) and burnt
    onto each chip's grid with :func:`rasterio.features.rasterize`: a pixel is inside where
    its centre is. Geometries in another CRS than a chip's are reprojected to it
    (:func:`rasterio.warp.transform_geom`). Problems (unreadable file, several layers, no
    CRS, features that are not polygons) are added to ``problems``."""

    def __init__(self, path: Path, rel: str, problems: list[str]) -> None:
        self.path, self.rel = path, rel
        self.crs = ""
        self._shapes: list[Any] = []  # shapely geometries, in self.crs
        self._by_crs: dict[str, tuple[list[Any], np.ndarray]] = {}
        before = len(problems)
        self._read(problems)
        self.ok = len(problems) == before
        """Read without a problem: chips may be masked with it."""

    def _read(self, problems: list[str]) -> None:
        rel = self.rel
        try:
            import pyogrio
            import shapely
        except ImportError:  # pragma: no cover - both are dependencies
            problems.append(f"{rel}: reading parcels needs pyogrio and shapely (pip install)")
            return
        if not self.path.is_file():
            problems.append(f"{rel}: parcels file not found")
            return
        try:
            layers = pyogrio.list_layers(self.path)
            if len(layers) != 1:
                names = ", ".join(str(row[0]) for row in layers)
                problems.append(
                    f"{rel}: {len(layers)} layers ({names}); keep the parcels in one layer"
                )
                return
            meta, _, wkb, _ = pyogrio.raw.read(self.path, columns=[], force_2d=True)
        except Exception as exc:  # pyogrio's errors name no common base but Exception
            problems.append(f"{rel}: not a readable vector file ({exc})")
            return
        if not meta.get("crs"):
            problems.append(
                f"{rel}: has no CRS (a shapefile needs its .prj), so its parcels cannot be "
                "placed on the chips"
            )
            return
        self.crs = canonical_crs(meta["crs"])
        others: dict[str, int] = {}
        for geom in shapely.from_wkb(wkb):
            if geom is None or geom.is_empty:
                continue
            parts = (
                getattr(geom, "geoms", [geom]) if geom.geom_type == "GeometryCollection" else [geom]
            )
            for part in parts:
                if part.geom_type in ("Polygon", "MultiPolygon"):
                    self._shapes.append(part)
                else:
                    others[part.geom_type] = others.get(part.geom_type, 0) + 1
        if others:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(others.items()))
            problems.append(f"{rel}: features that are not polygons ({kinds}); parcels are areas")
        if not self._shapes and not others:
            problems.append(f"{rel}: no parcels (every feature is empty)")

    def describe(self) -> dict[str, Any]:
        """The file's name and SHA-256 (its bytes), its CRS and how many polygons it has."""
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest() if self.ok else None
        return {
            "file": self.path.name,
            "sha256": digest,
            "crs": self.crs,
            "polygons": len(self._shapes),
        }

    def _in(self, crs: str) -> tuple[list[Any], np.ndarray]:
        """The parcels as GeoJSON-like mappings in ``crs`` and their bounds."""
        if crs not in self._by_crs:
            import shapely
            from rasterio.warp import transform_geom

            maps = [shapely.geometry.mapping(g) for g in self._shapes]
            if not same_crs(crs, self.crs):
                maps = list(transform_geom(self.crs, crs, maps))
            shapes = [shapely.geometry.shape(m) for m in maps]
            bounds = shapely.bounds(np.array(shapes, dtype=object)).reshape(-1, 4)
            self._by_crs[crs] = (maps, bounds)
        return self._by_crs[crs]

    def mask(self, grid: Grid) -> np.ndarray:
        """True at the pixels of ``grid`` whose centre is inside a parcel."""
        from rasterio.features import rasterize

        maps, bounds = self._in(grid.crs)
        west, south, east, north = grid.bounds()
        near = (
            (bounds[:, 0] <= east)
            & (bounds[:, 2] >= west)
            & (bounds[:, 1] <= north)
            & (bounds[:, 3] >= south)
        )
        shapes = [(maps[i], 1) for i in np.flatnonzero(near)]
        if not shapes:
            return np.zeros(grid.shape, dtype=bool)
        burnt = rasterize(
            shapes, out_shape=grid.shape, transform=grid.affine, fill=0, dtype="uint8"
        )
        return burnt == 1
