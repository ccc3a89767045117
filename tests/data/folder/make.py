"""Write a tiny, seeded dataset in the generic folder layout, for the folder importer tests.

```
<root>/<split folder>/<inputs folder>/<id>.tif    2 bands float32, nodata -9999
<root>/<split folder>/<targets folder>/<id>.tif   flood: uint8 {0,1}, nodata 255;
                                                  ndvi: float32 [-1, 1], nodata NaN
<root>/<split folder>/valid/<id>.tif              only with ``with_valid``: uint8, 0 = skip
```

In every chip, input pixels [0:2, 0:3] hold the input nodata value (band 1 only in odd
chips), target pixels [-3:, -3:] hold the target nodata, and valid-mask rows [10:12] are 0.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.geo import Grid, read_raster, write_raster

INPUT_NODATA = -9999.0
FLOOD_NODATA = 255


@dataclass(frozen=True)
class Folder:
    """Where :func:`make` wrote things; ``splits`` maps split name -> ids."""

    root: Path
    split_dirs: dict[str, Path]
    input_folder: str
    target_folder: str
    splits: dict[str, list[str]] = field(default_factory=dict)

    def input(self, split: str, sample_id: str) -> Path:
        return self.split_dirs[split] / self.input_folder / f"{sample_id}.tif"

    def target(self, split: str, sample_id: str) -> Path:
        return self.split_dirs[split] / self.target_folder / f"{sample_id}.tif"

    def valid(self, split: str, sample_id: str) -> Path:
        return self.split_dirs[split] / "valid" / f"{sample_id}.tif"


def make(
    root: Path,
    *,
    task: str = "flood",
    seed: int = 0,
    size: int = 32,
    counts: dict[str, int] | None = None,
    split_folders: dict[str, str] | None = None,
    input_folder: str = "inputs",
    target_folder: str = "targets",
    band_names: tuple[str, ...] | None = ("VV_pre_db", "VV_post_db"),
    with_valid: bool = False,
) -> Folder:
    """Write the dataset under ``root``; ``split_folders`` renames split folders."""
    counts = counts or {"train": 3, "val": 1, "test": 1}
    split_folders = split_folders or {}
    dirs = {s: root / split_folders.get(s, s) for s in counts}
    out = Folder(root, dirs, input_folder, target_folder)
    rng = np.random.default_rng(seed)
    col = 0
    for split, n in counts.items():
        ids = out.splits.setdefault(split, [])
        for i in range(n):
            col += 1
            sid = f"{split}_{i:02d}"
            ids.append(sid)
            grid = Grid.from_origin(
                "EPSG:32630", 500000.0 + col * size * 10, 4400000.0, 10.0, size, size
            )
            x = np.round(rng.normal(-12, 3, (2, size, size)), 3).astype(np.float32)
            x[: 1 if i % 2 else 2, 0:2, 0:3] = INPUT_NODATA
            write_raster(
                out.input(split, sid), x, grid, nodata=INPUT_NODATA, band_names=band_names or ()
            )
            if task == "flood":
                y = (x[1] - x[0] < -2).astype(np.uint8)
                y[-3:, -3:] = FLOOD_NODATA
                write_raster(out.target(split, sid), y, grid, nodata=FLOOD_NODATA)
            else:
                y = np.round(np.clip(rng.normal(0.4, 0.3, grid.shape), -1, 1), 4).astype(np.float32)
                y[-3:, -3:] = np.nan
                write_raster(out.target(split, sid), y, grid, nodata=float("nan"))
            if with_valid:
                v = np.ones(grid.shape, np.uint8)
                v[10:12] = 0
                write_raster(out.valid(split, sid), v, grid)
    return out


PARCELS = ((3, 9, 5, 21), (14, 26, 2, 13))
"""Per chip, two parcels as pixel blocks (row from, row to, col from, col to): clear of the
fixture's nodata pixels and of its valid-mask rows 10-11."""


def parcel_polygons(made: Folder) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The parcels of every chip of ``made`` as GeoJSON polygons on pixel edges (EPSG:32630),
    and each chip's expected mask (by chip id)."""
    polys, masks = [], {}
    for split, ids in made.splits.items():
        for sid in ids:
            g = read_raster(made.input(split, sid)).grid
            a, _, west, _, e, north = g.transform
            mask = np.zeros(g.shape, bool)
            for r0, r1, c0, c1 in PARCELS:
                x0, x1 = west + c0 * a, west + c1 * a
                y0, y1 = north + r0 * e, north + r1 * e
                ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
                polys.append({"type": "Polygon", "coordinates": [ring]})
                mask[r0:r1, c0:c1] = True
            masks[sid] = mask
    return polys, masks


def write_gpkg(path: Path, polys: list[dict], crs: str) -> None:
    import pyogrio
    import shapely

    wkb = np.array([shapely.to_wkb(shapely.geometry.shape(p)) for p in polys], dtype=object)
    pyogrio.raw.write(
        path,
        geometry=wkb,
        field_data=[],
        fields=[],
        crs=crs,
        geometry_type="Polygon",
        driver="GPKG",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--task", default="flood", choices=["flood", "ndvi"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(make(args.root, task=args.task, seed=args.seed).root)
