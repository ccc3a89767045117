"""Write a tiny, seeded Sen1Floods11 hand-labelled tree, laid out like the bucket's ``v1.1/``.

```
<root>/v1.1/data/flood_events/HandLabeled/S1Hand/<Event>_<id>_S1Hand.tif        VV, VH dB
<root>/v1.1/data/flood_events/HandLabeled/LabelHand/<Event>_<id>_LabelHand.tif  -1, 0, 1
<root>/v1.1/data/flood_events/HandLabeled/S2Hand/                               (decoy)
<root>/v1.1/splits/flood_handlabeled/flood_{train,valid,test,bolivia}_data.csv
<root>/v1.1/splits/perm_water/permanent_water_train_data.csv                    (decoy)
```

Six chips of ``size`` x ``size`` pixels in EPSG:4326 over two events (Ghana, Bolivia).
Chips 0, 2 and 4 have a patch of label -1; chip 1 has a NaN patch in both bands; chip 3 a
NaN patch in VH only; chip 0 a NaN patch that overlaps its -1 patch.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.geo import Grid, write_raster

SPLITS: dict[str, list[str]] = {
    "train": ["Ghana_101", "Ghana_102"],
    "val": ["Ghana_103"],
    "test": ["Ghana_104"],
    "bolivia": ["Bolivia_201", "Bolivia_202"],
}
CSV_NAMES = {
    "train": "flood_train_data.csv",
    "val": "flood_valid_data.csv",
    "test": "flood_test_data.csv",
    "bolivia": "flood_bolivia_data.csv",
}
PIXEL = 2.0**-13  # degrees (about 13.6 m at the equator), exact in binary
ORIGINS = {"Ghana": (-1.0, 8.0), "Bolivia": (-65.0, -14.0)}


@dataclass(frozen=True)
class Tree:
    """Where :func:`make` wrote things."""

    root: Path
    s1_dir: Path
    label_dir: Path
    splits_dir: Path
    splits: dict[str, list[str]]

    def s1(self, sample_id: str) -> Path:
        return self.s1_dir / f"{sample_id}_S1Hand.tif"

    def label(self, sample_id: str) -> Path:
        return self.label_dir / f"{sample_id}_LabelHand.tif"

    def csv(self, split: str) -> Path:
        return self.splits_dir / CSV_NAMES[split]

    def grid(self, sample_id: str, size: int) -> Grid:
        event, num = sample_id.rsplit("_", 1)
        west, north = ORIGINS[event]
        return Grid.from_origin(
            "EPSG:4326", west + int(num) * size * PIXEL, north, PIXEL, size, size
        )


def _chip(rng: np.random.Generator, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    water = (yy - cy) ** 2 + (xx - cx) ** 2 < (size * rng.uniform(0.15, 0.3)) ** 2
    label = water.astype(np.int16)
    vv = np.where(water, rng.normal(-21, 1.5, water.shape), rng.normal(-11, 1.5, water.shape))
    vh = np.where(water, rng.normal(-28, 1.5, water.shape), rng.normal(-18, 1.5, water.shape))
    s1 = np.round(np.stack([vv, vh]), 3).astype(np.float32)
    q = size // 8
    if index in (0, 2, 4):
        label[:q, q : 4 * q] = -1
    if index == 0:
        s1[:, q // 2 : 2 * q, 3 * q : 5 * q] = np.nan  # overlaps the -1 patch
    if index == 1:
        s1[:, 6 * q :, : 2 * q] = np.nan
    if index == 3:
        s1[1, 3 * q : 4 * q, 5 * q : 7 * q] = np.nan  # VH only
    return s1, label


def make(root: Path, *, seed: int = 0, size: int = 64, bolivia: bool = True) -> Tree:
    """Write the tree under ``root`` (created if needed) and say where everything is."""
    base = root / "v1.1"
    hand = base / "data" / "flood_events" / "HandLabeled"
    splits = {k: list(v) for k, v in SPLITS.items() if bolivia or k != "bolivia"}
    tree = Tree(
        root=root,
        s1_dir=hand / "S1Hand",
        label_dir=hand / "LabelHand",
        splits_dir=base / "splits" / "flood_handlabeled",
        splits=splits,
    )
    rng = np.random.default_rng(seed)
    ids = [sid for split in SPLITS.values() for sid in split]
    for index, sid in enumerate(ids):
        s1, label = _chip(rng, index, size)
        grid = tree.grid(sid, size)
        write_raster(tree.s1(sid), s1, grid, band_names=("VV", "VH"))
        write_raster(tree.label(sid), label, grid, nodata=-1)
    (hand / "S2Hand").mkdir(parents=True, exist_ok=True)
    tree.splits_dir.mkdir(parents=True, exist_ok=True)
    for split, sids in splits.items():
        rows = "".join(f"{s}_S1Hand.tif,{s}_LabelHand.tif\n" for s in sids)
        tree.csv(split).write_text(rows)
    decoy = base / "splits" / "perm_water" / "permanent_water_train_data.csv"
    decoy.parent.mkdir(parents=True, exist_ok=True)
    decoy.write_text("sentinel_1_1.tif,jrc_1.tif\n")
    return tree


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(make(args.root, seed=args.seed).root)
