"""Step 3, land cover: Voronoi parcels with classes drawn per zone, natural cover on the
hills, and towns; the class codes are those of :mod:`.spec` (WATER ... URBAN).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from harness.datasets.flood_synth.fields import _count, _field, _q
from harness.datasets.flood_synth.spec import (
    BARE,
    FOREST,
    PIXEL,
    SHRUB,
    URBAN,
    WATER,
    EventSpec,
)
from harness.datasets.flood_synth.terrain import _Terrain


def _parcels(spec: EventSpec, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Voronoi parcels around a jittered, rotated lattice of seeds (int32 parcel ids)."""
    h, w = shape
    sy, sx = spec.parcel_size
    a = math.radians(spec.parcel_angle)
    diag = math.hypot(h, w) * PIXEL / 2
    ii, jj = np.meshgrid(
        np.arange(-(diag // sy) - 1, diag // sy + 2),
        np.arange(-(diag // sx) - 1, diag // sx + 2),
        indexing="ij",
    )
    lu = (jj + rng.uniform(-0.3, 0.3, jj.shape)) * sx
    lv = (ii + rng.uniform(-0.3, 0.3, ii.shape)) * sy
    px = w * PIXEL / 2 + lu * math.cos(a) - lv * math.sin(a)
    py = h * PIXEL / 2 + lu * math.sin(a) + lv * math.cos(a)
    rows = np.floor(_q(py) / PIXEL).astype(np.int64).ravel()
    cols = np.floor(_q(px) / PIXEL).astype(np.int64).ravel()
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    rows, cols = rows[inside], cols[inside]
    seeds = np.full(shape, -1, dtype=np.int32)
    seeds[rows, cols] = np.arange(rows.size, dtype=np.int32)
    ir, ic = ndi.distance_transform_edt(seeds < 0, return_distances=False, return_indices=True)
    return seeds[ir, ic]


def _choose(rng: np.random.Generator, table: tuple[tuple[int, float], ...], n: int) -> np.ndarray:
    """``n`` classes drawn from a (class, probability) table."""
    classes = np.array([c for c, _ in table], dtype=np.uint8)
    cum = np.cumsum([p for _, p in table])
    pick = np.searchsorted(cum / cum[-1], rng.random(n), side="right")
    return classes[np.minimum(pick, len(table) - 1)]


def _towns(spec: EventSpec, rng: np.random.Generator, noise: np.ndarray) -> np.ndarray:
    """City and town blobs with ragged edges."""
    h, w = noise.shape
    blobs = []
    if spec.city is not None:
        u, v, radius = spec.city
        blobs.append((u * w * PIXEL, v * h * PIXEL, radius * h * PIXEL))
    for _ in range(_count(spec.towns, h * w * PIXEL * PIXEL / 1e8)):
        cx, cy = rng.uniform(0, w * PIXEL), rng.uniform(0, h * PIXEL)
        blobs.append((cx, cy, rng.uniform(*spec.town_radius)))
    y = (np.arange(h) + 0.5) * PIXEL
    x = (np.arange(w) + 0.5) * PIXEL
    urban = np.zeros((h, w), dtype=bool)
    for cx, cy, rad in blobs:
        r0, r1 = max(int((cy - 1.5 * rad) / PIXEL), 0), min(int((cy + 1.5 * rad) / PIXEL) + 1, h)
        c0, c1 = max(int((cx - 1.5 * rad) / PIXEL), 0), min(int((cx + 1.5 * rad) / PIXEL) + 1, w)
        if r0 >= r1 or c0 >= c1:
            continue
        dist = _q(np.hypot(y[r0:r1, None] - cy, x[None, c0:c1] - cx) / rad)
        urban[r0:r1, c0:c1] |= dist + 0.3 * noise[r0:r1, c0:c1] < 1.0
    return urban


def _landcover(
    spec: EventSpec, rng: np.random.Generator, t: _Terrain, cliff: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class codes, parcel ids, town pixels): parcels by zone, natural cover on the hills."""
    shape = t.dem.shape
    parcel = _parcels(spec, rng, shape)
    n_parcels = int(parcel.max()) + 1
    plain_cls = _choose(rng, spec.plain_classes, n_parcels)
    low_cls = _choose(rng, spec.lowland_classes, n_parcels)
    lowland = t.lagoon_zone
    if spec.lowland_hand > 0:
        hand = t.dem - t.river_level  # height above the river's normal level
        lowland = lowland | (hand <= spec.lowland_hand) | (_q(t.d_bank) <= spec.lowland_batture)
        del hand
    cls = np.where(lowland, low_cls[parcel], plain_cls[parcel])
    del lowland
    natural = np.where(_q(_field(rng, shape, 40.0)) > spec.hill_forest, FOREST, SHRUB)
    rough = _q(_field(rng, shape, 12.0))
    natural[(rough > spec.hill_bare) | cliff] = BARE
    cls = np.where(t.hill, natural, cls).astype(np.uint8)
    del natural
    urban = _towns(spec, rng, rough) & ~t.hill & ~t.permanent_water
    cls[urban] = URBAN
    cls[t.permanent_water] = WATER
    return cls, parcel, urban
