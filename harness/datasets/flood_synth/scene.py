"""One event's whole scene: :func:`make_scene` runs the steps in order and keeps the
intermediate fields; :class:`Scene` cuts it into tiles and gives each chip its grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.datasets.flood_synth.backscatter import (
    _add_noise_floor,
    _flat_backscatter,
    _shadow,
    _speckle,
    _terrain_db,
    _water_db,
    _wind_ramp,
)
from harness.datasets.flood_synth.fields import _field, _rng
from harness.datasets.flood_synth.landcover import _landcover
from harness.datasets.flood_synth.spec import DEFAULT_SEED, EVENTS, PIXEL, EventSpec
from harness.datasets.flood_synth.terrain import _terrain
from harness.datasets.flood_synth.water import _flood, _slopes
from harness.geo import Grid


@dataclass
class Scene:
    """One event's whole scene, with the intermediate fields the tests check."""

    event: str
    grid: Grid
    chip_size: int
    dem: np.ndarray  # m, on a 1 mm grid
    steep: np.ndarray  # slope over 5 %
    permanent_water: np.ndarray
    flooded: np.ndarray  # newly flooded, physically (before the slope rule)
    mask: np.ndarray  # uint8 target: flooded and not steep
    landcover: np.ndarray  # uint8 class codes, see CLASS_NAMES
    shadow_pre: np.ndarray
    shadow_post: np.ndarray
    wind_pre: np.ndarray  # permanent water roughened by wind in the pre image
    wind_post: np.ndarray  # flood or permanent water roughened by wind in the post image
    double_bounce: np.ndarray  # flooded vegetation / town pixels brightened in the post image
    harvest: np.ndarray  # crops harvested to bare soil between the dates
    flat_db: np.ndarray  # float32: pre-event backscatter on flat ground at THETA_REF
    pre_clean_db: np.ndarray  # before speckle
    post_clean_db: np.ndarray
    pre_db: np.ndarray  # float32, speckled, 0.001 dB grid
    post_db: np.ndarray

    @property
    def tile_fraction(self) -> np.ndarray:
        """Flooded fraction of each tile, (tile rows, tile cols)."""
        n = self.chip_size
        h, w = self.mask.shape
        counts = self.mask.reshape(h // n, n, w // n, n).sum(axis=(1, 3), dtype=np.int64)
        return counts / float(n * n)

    def tile(self, row: int, col: int) -> tuple[slice, slice]:
        n = self.chip_size
        return slice(row * n, (row + 1) * n), slice(col * n, (col + 1) * n)

    def chip_grid(self, row: int, col: int) -> Grid:
        a, _, c, _, e, f = self.grid.transform
        n = self.chip_size
        return Grid.from_origin(self.grid.crs, c + col * n * a, f + row * n * e, a, n, n)


def make_scene(
    event: str,
    *,
    seed: int = DEFAULT_SEED,
    chip_size: int = 256,
    tile_rows: int | None = None,
    tile_cols: int | None = None,
    spec: EventSpec | None = None,
) -> Scene:
    """Generate one event's whole scene (by default the event's own size in tiles).

    ``spec`` replaces the event's own specification (a test block's window of it, see
    :func:`~harness.datasets.flood_synth.spec.window_spec`); its name must be ``event``.
    """
    spec = spec or EVENTS[event]
    if spec.name != event:
        raise ValueError(f"spec {spec.name!r} is not of event {event!r}")
    shape = ((tile_rows or spec.tile_rows) * chip_size, (tile_cols or spec.tile_cols) * chip_size)
    t = _terrain(spec, seed, shape)
    flooded, depth = _flood(t)
    flooded &= ~t.permanent_water
    gx, gy, steep, cliff = _slopes(t.dem)
    terrain_pre = _terrain_db(gx, gy, spec.theta_pre)
    terrain_post = _terrain_db(gx, gy, spec.theta_post)
    del gx, gy
    shadow_pre = _shadow(t.dem, spec.theta_pre)
    shadow_post = _shadow(t.dem, spec.theta_post)

    rng = _rng(seed, event, 1)
    cls, parcel, urban = _landcover(spec, rng, t, cliff)
    del cliff
    flat, post, harvest, double_bounce, tex = _flat_backscatter(
        spec, rng, seed, cls, parcel, urban, ~t.hill, flooded, depth
    )
    del parcel, urban, depth
    pre = flat + terrain_pre
    post += terrain_post
    del terrain_pre, terrain_post

    # water: calm, or roughened by wind in patches
    var = _field(rng, shape, 50.0)
    water_pre = t.permanent_water
    water_post = (t.permanent_water | flooded) & ~double_bounce
    ramp = _wind_ramp(rng, shape, spec.wind_pre)
    pre[water_pre] = _water_db(var, tex, ramp, water_pre, spec.theta_pre)
    wind_pre = (ramp > 0.5) & water_pre
    ramp = _wind_ramp(rng, shape, spec.wind_post)
    post[water_post] = _water_db(var, tex, ramp, water_post, spec.theta_post)
    wind_post = (ramp > 0.5) & water_post
    del ramp, var, tex

    pre = _add_noise_floor(pre, shadow_pre)
    post = _add_noise_floor(post, shadow_post)
    grid = Grid.from_origin(spec.crs, spec.west, spec.north, PIXEL, shape[0], shape[1])
    return Scene(
        event=event,
        grid=grid,
        chip_size=chip_size,
        dem=t.dem,
        steep=steep,
        permanent_water=t.permanent_water,
        flooded=flooded,
        mask=(flooded & ~steep).astype(np.uint8),
        landcover=cls,
        shadow_pre=shadow_pre,
        shadow_post=shadow_post,
        wind_pre=wind_pre,
        wind_post=wind_post,
        double_bounce=double_bounce & ~shadow_post,
        harvest=harvest,
        flat_db=flat.astype(np.float32),
        pre_clean_db=pre,
        post_clean_db=post,
        pre_db=_speckle(pre, _rng(seed, event, 2)),
        post_db=_speckle(post, _rng(seed, event, 3)),
    )
