"""flood-synth's constants, land-cover classes and the scene specification of each event."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from harness.errors import SarbenchError

VERSION = 2  # bump on any change of the defaults, the physics or the random streams
DEFAULT_SEED = 20241029  # public: train and val
DEMO_TEST_SEED = 20241030  # public: the demo test split (the official one comes from a secret)
PIXEL = 10.0  # m
ENL = 4.4
MIN_FLOOD_FRACTION = 0.10
MAX_SLOPE = 0.05  # rise over run (5 %)
THETA_REF = 38.0  # deg: the incidence at which the class ranges hold on flat ground
SPLITS = ("train", "val", "test")
# Tiles per event of the main scene: train, val, and a reserved strip that no split uses
# (it held the test split up to version 1; keeping it out keeps train and val unchanged).
DEFAULT_QUOTAS: tuple[tuple[str, int], ...] = (("train", 78), ("val", 10), ("reserved", 10))
TEST_BLOCKS = 5  # test blocks per event: separate scenes made from the test seed
CHIPS_PER_BLOCK = 2
BLOCK_COLS = 4  # a test block's width in tiles (its height is the event scene's)
GROUP_COLS = 4  # train and val chips are grouped by bands of this many tile columns

# land cover
WATER, BARE, CROP, ORCHARD, FOREST, SHRUB, URBAN = range(7)
CLASS_NAMES = ("water", "bare", "crop", "orchard", "forest", "shrub", "urban")
CLASS_DB = np.array(  # VV sigma0 (dB) range of a parcel's mean, flat ground at THETA_REF
    [(-25, -18), (-15, -10), (-14, -8), (-10, -7), (-9, -6), (-13, -9), (-2, 5)], dtype=float
)
TEXTURE_DB = np.array([0.4, 0.6, 0.8, 1.2, 1.0, 1.0, 2.0])  # texture std within a parcel
DB_HEIGHT = {FOREST: 12.0, ORCHARD: 2.5, URBAN: 4.0}  # double bounce below this depth (m)
DB_PROB = {FOREST: 0.75, ORCHARD: 0.4, URBAN: 0.6}  # share of parcels that show it
WIND_DB = (-14.0, -8.0)
NESZ_DB = -23.5


class FloodSynthError(SarbenchError):
    """The generator cannot make the dataset it was asked for."""


@dataclass(frozen=True)
class EventSpec:
    """One event's scene layout, landscape and acquisitions. Lengths in m, angles in deg.

    ``u``/``v`` are fractions of the scene width (west to east) and height (north to
    south); ``hills_north``/``hills_south`` are (u, v) knots of the valley edges. The
    scene is ``tile_rows`` x ``tile_cols`` tiles; each held-out split's strip of tile
    columns starts at its anchor (see :func:`select_tiles`).
    """

    name: str
    crs: str
    west: float
    north: float
    tile_rows: int
    tile_cols: int
    anchors: tuple[tuple[str, float], ...]  # (strip, u) where a held-out strip starts
    theta_pre: float
    theta_post: float
    river_v: float
    river_half_width: float
    meander_wavelength: float
    meander_angle: float
    river_level_mouth: float
    river_gradient: float
    channel_depth: float
    bank_height: float
    levee_height: float
    levee_decay: float
    lateral_slope: float
    relief_amp: float
    relief_scale: float
    swale_amp: float
    micro_amp: float
    rise_mean: float
    rise_amp: float
    river_decay: float
    hills_north: tuple[tuple[float, float], ...]
    hills_south: tuple[tuple[float, float], ...]
    hill_wall_slope: float
    hill_amp: float
    hill_scale: float
    terrace_step: float
    bluff_height: float
    knolls: float  # steep isolated hills on the plain, per 100 km2
    tributaries: float  # per 10 km of scene width
    trib_wall: tuple[float, float]
    trib_incision: float
    trib_rise: float
    trib_decay: float
    oxbows: float  # per 100 km2
    lagoon: tuple[float, float, float, float] | None  # u, v, radius_u, radius_v
    lagoon_rise: float
    lagoon_decay: float
    parcel_size: tuple[float, float]
    parcel_angle: float
    plain_classes: tuple[tuple[int, float], ...]
    lowland_classes: tuple[tuple[int, float], ...]
    lowland_hand: float
    lowland_batture: float
    hill_forest: float
    hill_bare: float
    city: tuple[float, float, float] | None  # u, v, radius as a fraction of the height
    towns: float  # per 100 km2
    town_radius: tuple[float, float]
    p_harvest: float
    p_till: float
    wind_post: float  # share of the scene where water is wind-roughened, post image
    wind_pre: float


EVENTS: dict[str, EventSpec] = {
    "valencia": EventSpec(
        name="valencia",
        crs="EPSG:32630",
        west=672_000.0,
        north=4_382_000.0,
        tile_rows=6,
        tile_cols=34,
        anchors=(("reserved", 0.12), ("val", 0.6)),
        theta_pre=31.6,
        theta_post=43.1,
        river_v=0.44,
        river_half_width=30.0,
        meander_wavelength=3_500.0,
        meander_angle=35.0,
        river_level_mouth=1.0,
        river_gradient=0.0008,
        channel_depth=2.5,
        bank_height=1.8,
        levee_height=0.0,
        levee_decay=1.0,
        lateral_slope=0.0003,
        relief_amp=1.0,
        relief_scale=300.0,
        swale_amp=0.5,
        micro_amp=0.15,
        rise_mean=2.7,
        rise_amp=0.35,
        river_decay=0.0002,
        hills_north=((0.0, 0.24), (0.3, 0.2), (0.5, -0.1), (1.0, -0.5)),
        hills_south=((0.0, 0.68), (0.3, 0.72), (0.45, 1.1), (1.0, 1.5)),
        hill_wall_slope=0.03,
        hill_amp=150.0,
        hill_scale=2_500.0,
        terrace_step=35.0,
        bluff_height=0.0,
        knolls=4.5,
        tributaries=1.85,
        trib_wall=(1.0, 2.4),
        trib_incision=1.6,
        trib_rise=2.6,
        trib_decay=0.003,
        oxbows=0.0,
        lagoon=(0.86, 0.80, 0.07, 0.13),
        lagoon_rise=0.8,
        lagoon_decay=0.0003,
        parcel_size=(110.0, 190.0),
        parcel_angle=28.0,
        plain_classes=((ORCHARD, 0.5), (CROP, 0.22), (BARE, 0.22), (SHRUB, 0.03), (FOREST, 0.03)),
        lowland_classes=((CROP, 0.5), (BARE, 0.45), (SHRUB, 0.05)),
        lowland_hand=0.0,
        lowland_batture=0.0,
        hill_forest=0.4,
        hill_bare=1.0,
        city=(0.84, 0.32, 0.17),
        towns=1.05,
        town_radius=(300.0, 800.0),
        p_harvest=0.25,
        p_till=0.2,
        wind_post=0.22,
        wind_pre=0.15,
    ),
    "mississippi": EventSpec(
        name="mississippi",
        crs="EPSG:32615",
        west=664_000.0,
        north=3_604_000.0,
        tile_rows=8,
        tile_cols=25,
        anchors=(("val", 0.25), ("reserved", 0.65)),
        theta_pre=36.2,
        theta_post=44.0,
        river_v=0.56,
        river_half_width=300.0,
        meander_wavelength=13_000.0,
        meander_angle=80.0,
        river_level_mouth=25.0,
        river_gradient=0.0001,
        channel_depth=12.0,
        bank_height=1.5,
        levee_height=2.6,
        levee_decay=1_400.0,
        lateral_slope=0.0002,
        relief_amp=1.1,
        relief_scale=400.0,
        swale_amp=0.6,
        micro_amp=0.12,
        rise_mean=3.0,
        rise_amp=0.35,
        river_decay=0.00005,
        hills_north=((0.0, 0.12), (0.4, 0.08), (0.7, 0.14), (1.0, 0.10)),
        hills_south=((0.0, 1.5), (1.0, 1.5)),
        hill_wall_slope=0.02,
        hill_amp=18.0,
        hill_scale=1_500.0,
        terrace_step=0.0,
        bluff_height=45.0,
        knolls=0.0,
        tributaries=1.4,
        trib_wall=(1.2, 2.6),
        trib_incision=1.5,
        trib_rise=2.8,
        trib_decay=0.002,
        oxbows=0.69,
        lagoon=None,
        lagoon_rise=0.0,
        lagoon_decay=0.0,
        parcel_size=(450.0, 800.0),
        parcel_angle=-8.0,
        plain_classes=((CROP, 0.42), (BARE, 0.45), (FOREST, 0.13)),
        lowland_classes=((FOREST, 0.8), (CROP, 0.1), (BARE, 0.1)),
        lowland_hand=1.3,
        lowland_batture=500.0,
        hill_forest=-0.6,
        hill_bare=1.4,
        city=None,
        towns=0.61,
        town_radius=(250.0, 700.0),
        p_harvest=0.12,
        p_till=0.25,
        wind_post=0.25,
        wind_pre=0.15,
    ),
}


def window_spec(
    spec: EventSpec,
    u0: float,
    du: float,
    *,
    width_m: float,
    west: float,
    north: float,
    tile_cols: int,
) -> EventSpec:
    """The landscape of the event scene's columns ``u0 .. u0 + du`` (fractions of its width
    ``width_m``) as a scene of its own, ``tile_cols`` tiles wide, at ``west``/``north``.

    The valley edges, the lagoon and the city are where they are in that window of the
    event's scene, and the river's level is that of its reach; everything else (the
    densities of knolls, towns and tributaries, the physics) is the event's. A test block
    is such a window, made from the test seed: the event's kind of landscape, but another
    river, other fields and another flood.
    """

    def edge(knots: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        ku, kv = zip(*knots, strict=True)
        inner = [((u - u0) / du, v) for u, v in knots if u0 < u < u0 + du]
        ends = (float(np.interp(u0, ku, kv)), float(np.interp(u0 + du, ku, kv)))
        return ((0.0, ends[0]), *inner, (1.0, ends[1]))

    lagoon = None
    if spec.lagoon is not None:
        lu, lv, ru, rv = spec.lagoon
        lu, ru = (lu - u0) / du, ru / du
        if lu + 3 * ru > 0 and lu - 3 * ru < 1:
            lagoon = (lu, lv, ru, rv)
    city = None
    if spec.city is not None:
        cu, cv, radius = spec.city
        cu = (cu - u0) / du
        reach = 1.5 * radius * spec.tile_rows / (du * spec.tile_cols)  # in the window's u
        if cu + reach > 0 and cu - reach < 1:
            city = (cu, cv, radius)
    return replace(
        spec,
        west=west,
        north=north,
        tile_cols=tile_cols,
        anchors=(),
        hills_north=edge(spec.hills_north),
        hills_south=edge(spec.hills_south),
        lagoon=lagoon,
        city=city,
        river_level_mouth=spec.river_level_mouth + spec.river_gradient * (1.0 - u0 - du) * width_m,
    )
