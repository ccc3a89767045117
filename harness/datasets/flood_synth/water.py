"""Step 2, water: rising water over connected low ground, and the slope rule.

The flood includes permanent water (river, lakes, lagoon); the scene removes it from the
newly-flooded mask, and removes ground steeper than MAX_SLOPE too (:func:`_slopes`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from harness.datasets.flood_synth.fields import _nearest
from harness.datasets.flood_synth.spec import MAX_SLOPE, PIXEL
from harness.datasets.flood_synth.terrain import _Terrain


def _flood(t: _Terrain) -> tuple[np.ndarray, np.ndarray]:
    """(flooded, including permanent water; water depth in m) for the event.

    The water surface is the highest of the sources' surfaces (level + rise of the
    source's nearest pixel, falling off with the distance to it). A pixel floods where
    its ground is below the surface and it is connected (4-neighbours) to a source.
    """
    surface = np.full(t.dem.shape, -np.inf)
    seeds = np.zeros(t.dem.shape, dtype=bool)
    for pixels, decay in t.sources:
        if not pixels.any():
            continue
        d, ir, ic = _nearest(pixels)
        src = np.round(t.level[ir, ic] + t.rise[ir, ic] - decay * d, 3)
        np.maximum(surface, src, out=surface)
        seeds |= pixels
        del d, ir, ic, src
    candidate = t.dem <= surface
    labels, n = ndi.label(candidate)
    connected = np.zeros(n + 1, dtype=bool)
    connected[labels[seeds & candidate]] = True
    connected[0] = False
    flooded = connected[labels] | t.permanent_water
    return flooded, surface - t.dem


def _slopes(dem: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(east and south gradients of the DEM; steeper than MAX_SLOPE; steeper than 1:1)."""
    gy, gx = np.gradient(dem, PIXEL)
    slope2 = gx * gx + gy * gy
    steep = slope2 > MAX_SLOPE * MAX_SLOPE
    cliff = slope2 > 1.0
    return gx, gy, steep, cliff
