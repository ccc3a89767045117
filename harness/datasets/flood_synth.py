"""flood-synth: a deterministic, physically grounded pre/post-event Sentinel-1 flood dataset.

The embedded default dataset of the ``flood`` task. It stands in for the dataset of the
source study (two events, Valencia 2024 and Mississippi 2019; 196 chips of 256x256 with a
pre-event band, a post-event band and a newly-flooded mask; 156/20/20 train/val/test), made
by code so that anyone can rebuild it bit for bit.

Features
--------
- 196 chips of 256 x 256 pixels at 10 m from two events. ``valencia``: a Mediterranean
  coastal plain with a river, ravines ("barrancos") crossing it, a lagoon ringed by rice
  fields, a city and towns, orchards, steep terraced hills and isolated knolls.
  ``mississippi``: a broad floodplain with a meandering river, oxbow lakes, natural levees
  and backswamps, large crop fields, bottomland forest, and forested bluffs cut by gullies.
- Split 156 / 20 / 20 (train / val / test), 78 / 10 / 10 per event, by spatially disjoint
  strips of tile columns of each event's scene, with an unused column between strips.
- Every chip has a real CRS (EPSG:32630 for Valencia, EPSG:32615 for Mississippi) and a
  north-up transform at realistic UTM coordinates.
- Every chip has at least 10 % newly flooded pixels (about half on average).
- What defeats a threshold on the change: wind-roughened flood water, flooded vegetation
  and towns that brighten, radar shadow that appears between the dates (Valencia),
  harvest, and wind on permanent water. Each is recognisable from its context.

Format
------
- inputs: float32 (2, 256, 256). Band 1 ``VV_pre_db``, band 2 ``VV_post_db``: VV sigma0
  in dB on a 0.001 dB grid, speckled (no speckle filter), no nodata.
- target: uint8 (256, 256), 1 = newly flooded. Every pixel is scored (no valid mask).
- meta: ``event``, ``row`` and ``col`` of the tile in its scene, ``flood_fraction``.

Classes
-------
0. not newly flooded: dry land, permanent water, and ground steeper than 5 %
1. newly flooded: open flood water, wind-roughened flood water, flooded vegetation/towns

How it is made
--------------
Each event is one large scene that is cut into non-overlapping tiles.

1. Terrain. A river (a Kinoshita meander curve) whose level falls downstream; a floodplain
   rising away from the river, with relief at several scales and (Mississippi) natural
   levees; hills or bluffs beyond wiggly valley edges (fractal relief, Valencia's terraced
   into cliffs); steep isolated knolls; tributary ravines whose beds only descend; oxbow
   lakes; a lagoon with a flat marsh. The DEM is rounded to 1 mm before any comparison.
2. Flood, the way the study refined its masks. Each source (river, tributary beds on the
   plain, lagoon) raises a water surface: its level plus the event's rise at its nearest
   pixel, falling off slowly with distance. Ground below the highest such surface and
   connected (4-neighbours) to a source is flooded; permanent water (river, lakes, lagoon)
   is removed, and so are pixels on slopes over 5 %. Tiles under 10 % flooded are dropped.
3. Land cover. Voronoi parcels with classes drawn per zone (plain, lowland near the lagoon
   or the river, hills), towns with street blocks. Per-parcel VV backscatter drawn in its
   class range (dB, flat ground, 38 deg): open water -25..-18, bare soil -15..-10, crops
   -14..-8, orchards -10..-7, forest -9..-6, shrub -13..-9, urban -2..+5; plus persistent,
   spatially correlated texture.
4. Imaging. Two descending passes from different relative orbits (incidence 31.6 / 43.1
   deg for Valencia, 36.2 / 44.0 deg for Mississippi), radar to the east. Backscatter
   follows the local incidence angle (a cos^2 law times the illuminated area, so
   foreslopes are brighter and backslopes darker); radar shadow is cast along range with
   a running maximum, so it differs between the dates; thermal noise (NESZ -23.5 dB) is
   added in linear power, and is all that shadow returns.
5. Change between the dates. Flood water is dark, except wind-roughened patches (flood and
   permanent water, -14..-8 dB) and flooded forest, orchards and towns, which brighten by
   double bounce (+3..+6 dB; towns +2..+5 dB). Non-flood change: harvest and tillage
   (to smooth bare soil), crop growth, rain-wetted soil (up to +2.5 dB), and wind patches
   on permanent water that differ between the dates.
6. Speckle. Multiplicative Gamma noise in linear power, ENL 4.4, independent per date.
7. Splits. In each scene a strip of tile columns for ``val`` and one for ``test`` start at
   fixed columns and grow east until they hold 10 eligible tiles; ``train`` has the other
   columns but one gap column on each side of those strips. Each split's tiles are drawn
   at random from its eligible tiles.

Randomness comes only from ``numpy.random.SeedSequence(seed)`` sub-streams. Fields that
decide a mask are quantized before they are compared, and dB values are rounded to
0.001 dB before the cast to float32, so the output is bit-identical across machines.

Citation
--------
Dataset design (two events, mask refinement, 10 % rule, split sizes) after: M. Hatami
Goloujeh, "Exploring Cross-Modality Transfer Learning: Fine-Tuning Optical Pre-Trained
Models on Synthetic Aperture Radar Image", University of South Carolina. The chips are
synthetic and contain no Sentinel-1 data; cite SARBench and the study when you use them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from harness.datasets.source import SampleRecord
from harness.errors import SarbenchError
from harness.geo import Grid

VERSION = 1
DEFAULT_SEED = 20241029
PIXEL = 10.0  # m
ENL = 4.4
MIN_FLOOD_FRACTION = 0.10
MAX_SLOPE = 0.05  # rise over run (5 %)
THETA_REF = 38.0  # deg: the incidence at which the class ranges hold on flat ground
SPLITS = ("train", "val", "test")
DEFAULT_QUOTAS: tuple[tuple[str, int], ...] = (("train", 78), ("val", 10), ("test", 10))

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
    anchors: tuple[tuple[str, float], ...]  # (split, u) where a held-out strip starts
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
        anchors=(("test", 0.12), ("val", 0.6)),
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
        anchors=(("val", 0.25), ("test", 0.65)),
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


# ----------------------------------------------------------------------------- helpers


def _rng(seed: int, event: str, stream: int) -> np.random.Generator:
    """An independent random stream per (event, purpose)."""
    key = (list(EVENTS).index(event), stream)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _q(x: np.ndarray, decimals: int = 6) -> np.ndarray:
    """Quantize a field before it is compared, so last-bit differences cannot flip a mask."""
    return np.round(x, decimals)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    s = 2.0 * t
    np.subtract(3.0, s, out=s)
    s *= t
    s *= t
    return s


def _upsample(a: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``a`` by the integer factor ``f``, cropped to ``shape``."""
    out = a
    for axis, n in enumerate(shape):
        pos = np.clip((np.arange(n) + 0.5) / f - 0.5, 0.0, a.shape[axis] - 1.0)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, a.shape[axis] - 1)
        wt = pos - i0
        if axis == 0:
            out = out[i0] * (1.0 - wt)[:, None] + out[i1] * wt[:, None]
        else:
            out = out[:, i0] * (1.0 - wt) + out[:, i1] * wt
    return out


def _field(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """A zero-mean, unit-std Gaussian random field correlated over about ``scale_px`` pixels."""
    h, w = shape
    f = max(1, int(scale_px // 3))
    small = rng.standard_normal((-(-h // f) + 2, -(-w // f) + 2))
    small = ndi.gaussian_filter(small, scale_px / f, mode="wrap")
    sub = small[:: max(1, 4 // f), :: max(1, 4 // f)]
    small -= sub.mean()
    small /= sub.std()
    return small[:h, :w] if f == 1 else _upsample(small, f, shape)


def _fractal(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Zero-mean, unit-std fractal relief (power ~ k^-4), its largest features ~scale_px."""
    h, w = shape
    coarse = 4
    ch, cw = -(-h // coarse) + 4, -(-w // coarse) + 4
    spec = np.fft.rfft2(rng.standard_normal((ch, cw)))
    ky = np.fft.fftfreq(ch)[:, None]
    kx = np.fft.rfftfreq(cw)[None, :]
    k0 = coarse / scale_px
    spec /= ky * ky + kx * kx + k0 * k0
    spec[0, 0] = 0.0
    small = np.fft.irfft2(spec, s=(ch, cw))
    small = (small - small.mean()) / small.std()
    return ndi.zoom(small, coarse, order=3)[:h, :w]


def _series(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """A smooth zero-mean, unit-std 1-D series correlated over ``scale`` samples."""
    f = max(1, int(scale // 4))
    m = n // f + 2
    pad = int(3 * scale / f) + 1
    s = ndi.gaussian_filter1d(rng.standard_normal(m + 2 * pad), scale / f)[pad : pad + m]
    s = np.interp((np.arange(n) + 0.5) / f, np.arange(m), s)
    return (s - s.mean()) / s.std()


def _rasterize(xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (2, n) as (rows, cols) of a densely sampled path, in path order, in the scene."""
    rows = np.floor(_q(ys) / PIXEL).astype(np.int64)
    cols = np.floor(_q(xs) / PIXEL).astype(np.int64)
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    rc = np.stack([rows[inside], cols[inside]])
    if rc.shape[1] > 1:
        keep = np.ones(rc.shape[1], dtype=bool)
        keep[1:] = np.any(rc[:, 1:] != rc[:, :-1], axis=0)
        rc = rc[:, keep]
    return rc


def _nearest(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pixel: distance (m) to the nearest True pixel of ``mask``, and its indices."""
    ir, ic = ndi.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    h, w = mask.shape
    if h * h + w * w >= 2**31:  # squared distances would overflow int32
        ir, ic = ir.astype(np.int64), ic.astype(np.int64)
    dr = ir - np.arange(h, dtype=ir.dtype)[:, None]
    dc = ic - np.arange(w, dtype=ic.dtype)[None, :]
    dr *= dr
    dc *= dc
    dr += dc
    return PIXEL * np.sqrt(dr, dtype=np.float64), ir, ic


def _count(density: float, amount: float) -> int:
    """How many features a density gives over an amount of scene (at least one if any)."""
    return max(1, round(density * amount)) if density > 0 else 0


def _edge(knots: tuple[tuple[float, float], ...], u: np.ndarray) -> np.ndarray:
    ku, kv = zip(*knots, strict=True)
    return np.interp(u, ku, kv)


# ----------------------------------------------------------------------------- terrain


@dataclass
class _Terrain:
    dem: np.ndarray  # m, on a 1 mm grid
    permanent_water: np.ndarray
    sources: list[tuple[np.ndarray, float]]  # (pixels, fall-off of the surface in m/m)
    level: np.ndarray  # at source pixels: normal level (river, lagoon) or bed (tributary)
    rise: np.ndarray  # at source pixels: the event's rise
    river_level: np.ndarray  # normal level of the nearest point of the river
    d_bank: np.ndarray  # distance to the river bank (m)
    hill: np.ndarray  # hill / upland zone
    lagoon_zone: np.ndarray  # flat marsh around the lagoon


def _river_path(
    spec: EventSpec, rng: np.random.Generator, h_m: float, w_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """A Kinoshita meander curve crossing the scene from west to east, in 2 m steps."""
    ds = 2.0
    n = int((w_m + 4_000.0) * 4.0 / ds)
    lam = spec.meander_wavelength / ds
    omega = math.radians(spec.meander_angle) * (1.0 + 0.25 * _series(rng, n, lam))
    phase = 2.0 * np.pi * np.arange(n) / lam + rng.uniform(0, 2 * np.pi)
    phase += 2.0 * _series(rng, n, 0.7 * lam)
    heading = omega * np.sin(phase)
    heading += omega**3 * (0.03 * np.cos(3 * phase) - 0.02 * np.sin(3 * phase))
    xs = -2_000.0 + np.cumsum(np.cos(heading)) * ds
    ys = np.cumsum(np.sin(heading)) * ds
    beyond = xs > w_m + 2_000.0
    end = int(np.argmax(beyond)) if beyond.any() else n
    xs, ys = xs[:end], ys[:end]
    ys = ys - np.interp(xs, [xs[0], xs[-1]], [ys[0], ys[-1]]) + spec.river_v * h_m
    return xs, ys


def _tributaries(
    spec: EventSpec,
    rng: np.random.Generator,
    river_xy: tuple[np.ndarray, np.ndarray],
    shape: tuple[int, int],
) -> list[tuple[np.ndarray, float]]:
    """Tributaries from the north or south edge to the river: (pixels, wall slope) each."""
    xs, ys = river_xy
    h_m, w_m = shape[0] * PIXEL, shape[1] * PIXEL
    ok = np.flatnonzero((xs > 0.04 * w_m) & (xs < 0.96 * w_m))
    out = []
    for i in range(_count(spec.tributaries, w_m / 10_000.0)):
        j = ok[int(rng.integers(0, ok.size))]
        north = (i % 2 == 0) == (rng.random() < 0.8)
        x0 = xs[j] + rng.uniform(-0.35, 0.35) * h_m
        y0 = -300.0 if north else h_m + 300.0
        length = math.hypot(xs[j] - x0, ys[j] - y0)
        t = np.linspace(0.0, 1.0, max(2, int(length / 2.0)))
        cycles, offset = rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)
        wiggle = (
            rng.uniform(100.0, 450.0) * np.sin(np.pi * t) * np.sin(2 * np.pi * cycles * t + offset)
        )
        nx, ny = -(ys[j] - y0) / length, (xs[j] - x0) / length
        px = x0 + (xs[j] - x0) * t + wiggle * nx
        py = y0 + (ys[j] - y0) * t + wiggle * ny
        out.append((_rasterize(px, py, shape), rng.uniform(*spec.trib_wall)))
    return out


def _oxbow_lakes(
    spec: EventSpec,
    rng: np.random.Generator,
    river_xy: tuple[np.ndarray, np.ndarray],
    d_bank: np.ndarray,
) -> np.ndarray:
    """Crescent lakes (cut-off meanders) near the river."""
    xs, ys = river_xy
    h, w = d_bank.shape
    y = (np.arange(h) + 0.5) * PIXEL
    x = (np.arange(w) + 0.5) * PIXEL
    ok = np.flatnonzero((xs > 0.02 * w * PIXEL) & (xs < 0.98 * w * PIXEL))
    lakes = np.zeros((h, w), dtype=bool)
    for _ in range(_count(spec.oxbows, h * w * PIXEL * PIXEL / 1e8)):
        j = ok[int(rng.integers(0, ok.size))]
        radius = rng.uniform(500.0, 1_300.0)
        off = spec.river_half_width + radius + rng.uniform(200.0, 2_200.0)
        ang = rng.uniform(0, 2 * np.pi)
        cx, cy = xs[j] + off * math.cos(ang), ys[j] + off * math.sin(ang)
        width, start, span = rng.uniform(110, 230), rng.uniform(0, 2 * np.pi), rng.uniform(2.4, 4.2)
        reach = radius + width
        r0, r1 = max(int((cy - reach) / PIXEL), 0), min(int((cy + reach) / PIXEL) + 1, h)
        c0, c1 = max(int((cx - reach) / PIXEL), 0), min(int((cx + reach) / PIXEL) + 1, w)
        if r0 >= r1 or c0 >= c1:
            continue
        dy, dx = y[r0:r1, None] - cy, x[None, c0:c1] - cx
        ring = _q(np.abs(np.hypot(dy, dx) - radius)) <= width / 2
        arc = _q(np.mod(np.arctan2(dy, dx) - start, 2 * np.pi)) <= span
        lakes[r0:r1, c0:c1] |= ring & arc & (_q(d_bank[r0:r1, c0:c1]) > 250.0)
    return lakes


def _knolls(
    spec: EventSpec, rng: np.random.Generator, d_bank: np.ndarray, hill_zone: np.ndarray
) -> list[tuple[float, float, float, float, float]]:
    """Steep isolated hills on the plain, away from the river: (cx, cy, radius, height, edge).

    Their flanks rise ``height`` over about ``edge`` metres; some are steep enough to cast
    radar shadow at both incidence angles, some at the steeper (post-event) one only.
    """
    h, w = d_bank.shape
    out = []
    for _ in range(_count(spec.knolls, h * w * PIXEL * PIXEL / 1e8)):
        cx, cy = rng.uniform(0, w * PIXEL), rng.uniform(0, h * PIXEL)
        radius, height, edge = rng.uniform(250, 700), rng.uniform(35, 90), rng.uniform(30, 80)
        r, c = min(int(cy / PIXEL), h - 1), min(int(cx / PIXEL), w - 1)
        if d_bank[r, c] > radius + 300.0 and not hill_zone[r, c]:
            out.append((cx, cy, radius, height, edge))
    return out


def _terrain(spec: EventSpec, seed: int, shape: tuple[int, int]) -> _Terrain:
    rng = _rng(seed, spec.name, 0)
    h, w = shape
    h_m, w_m = h * PIXEL, w * PIXEL
    x = (np.arange(w, dtype=np.float64) + 0.5) * PIXEL
    y = (np.arange(h, dtype=np.float64) + 0.5) * PIXEL

    # river: centre line, distance to it, normal level of its nearest point
    river_xy = _river_path(spec, rng, h_m, w_m)
    centre = np.zeros(shape, dtype=bool)
    rc = _rasterize(*river_xy, shape)
    centre[rc[0], rc[1]] = True
    d_centre, _, ic = _nearest(centre)
    river_level = _q(spec.river_level_mouth + spec.river_gradient * (w_m - (ic + 0.5) * PIXEL), 3)
    del ic, centre
    channel = _q(d_centre) <= spec.river_half_width
    d_bank = np.maximum(d_centre - spec.river_half_width, 0.0)
    del d_centre

    # floodplain
    dem = river_level + spec.bank_height + spec.lateral_slope * d_bank
    if spec.levee_height > 0:
        dem += spec.levee_height * np.exp(-d_bank / spec.levee_decay)
    dem += spec.relief_amp * _field(rng, shape, spec.relief_scale / PIXEL)
    dem += spec.swale_amp * _field(rng, shape, 40.0)
    dem += spec.micro_amp * _field(rng, shape, 6.0)

    # hills or bluffs beyond wiggly valley edges
    edge_n = _edge(spec.hills_north, x / w_m) * h_m + 0.025 * h_m * _series(rng, w, 150.0)
    edge_s = _edge(spec.hills_south, x / w_m) * h_m + 0.025 * h_m * _series(rng, w, 150.0)
    excess = np.maximum(edge_n[None, :] - y[:, None], y[:, None] - edge_s[None, :])
    hill_zone = _q(excess) > 150.0
    ramp = _smoothstep(excess / 1_500.0)
    relief = np.maximum(1.0 + 0.6 * _fractal(rng, shape, spec.hill_scale / PIXEL), 0.0)
    hill = spec.hill_wall_slope * np.clip(excess, 0.0, 3_000.0) + spec.hill_amp * ramp * relief
    del relief
    if spec.bluff_height > 0:
        hill += spec.bluff_height * _smoothstep(excess / 220.0)
    del excess
    if spec.terrace_step > 0:  # treads and cliffs, risers not quite along contours
        steps = hill / spec.terrace_step
        steps += 0.35 * _smoothstep(steps) * _field(rng, shape, 60.0)
        floor = np.floor(steps)
        hill = spec.terrace_step * (floor + _smoothstep((steps - floor - 0.85) / 0.15))
        del steps, floor
    hill += 1.5 * ramp * _field(rng, shape, 3.0)
    dem += hill
    del hill, ramp

    for cx, cy, radius, height, edge in _knolls(spec, rng, d_bank, hill_zone):
        r0, r1 = (
            max(int((cy - radius - edge) / PIXEL), 0),
            min(int((cy + radius + edge) / PIXEL) + 1, h),
        )
        c0, c1 = (
            max(int((cx - radius - edge) / PIXEL), 0),
            min(int((cx + radius + edge) / PIXEL) + 1, w),
        )
        dy, dx = y[r0:r1, None] - cy, x[None, c0:c1] - cx
        lobes = radius * (1.0 + 0.2 * np.sin(3 * np.arctan2(dy, dx) + rng.uniform(0, 2 * np.pi)))
        inside = _q(lobes - np.hypot(dy, dx))
        dem[r0:r1, c0:c1] += height * _smoothstep(inside / edge)
        hill_zone[r0:r1, c0:c1] |= inside > -edge

    # lagoon and its flat marsh
    lagoon = np.zeros(shape, dtype=bool)
    lagoon_zone = np.zeros(shape, dtype=bool)
    lagoon_level = 0.2
    if spec.lagoon is not None:  # worked out in the lagoon's reach only
        lu, lv, ru, rv = spec.lagoon
        r0, r1 = max(int((lv - 3 * rv) * h), 0), min(int((lv + 3 * rv) * h) + 1, h)
        c0, c1 = max(int((lu - 3 * ru) * w), 0), min(int((lu + 3 * ru) * w) + 1, w)
        dy = (y[r0:r1, None] - lv * h_m) / (rv * h_m)
        dx = (x[None, c0:c1] - lu * w_m) / (ru * w_m)
        ang = np.arctan2(dy, dx)
        wobble = 1.0 + 0.12 * np.sin(3 * ang + rng.uniform(0, 2 * np.pi)) + 0.06 * np.sin(7 * ang)
        r_norm = _q(np.hypot(dy, dx) / wobble)
        lagoon[r0:r1, c0:c1] = r_norm <= 1.0
        lagoon_zone[r0:r1, c0:c1] = r_norm <= 2.0
        lagoon_zone &= ~lagoon & ~hill_zone
        marsh = lagoon_level + 0.4 + 0.0006 * np.maximum(r_norm - 1.0, 0.0) * ru * w_m
        sub = dem[r0:r1, c0:c1]
        sub -= _smoothstep(2.0 - r_norm) * np.maximum(sub - marsh, 0.0)
        dem[lagoon] = lagoon_level - 1.5

    # oxbow lakes: depressions below the floodplain
    lakes = _oxbow_lakes(spec, rng, river_xy, d_bank) & ~hill_zone
    dem[lakes] = np.minimum(dem[lakes], river_level[lakes] + spec.bank_height - 2.5)

    # tributaries: beds that only descend, walls as steep as each ravine's
    trib = np.zeros(shape, dtype=bool)
    bed = np.zeros(shape)
    wall = np.zeros(shape)
    for pix, slope in _tributaries(spec, rng, river_xy, shape):
        if pix.shape[1] == 0:
            continue
        trib[pix[0], pix[1]] = True
        bed[pix[0], pix[1]] = np.minimum.accumulate(dem[pix[0], pix[1]] - spec.trib_incision)
        wall[pix[0], pix[1]] = slope
    if trib.any():
        d_trib, tr, tc = _nearest(trib)
        np.minimum(dem, bed[tr, tc] + wall[tr, tc] * np.maximum(d_trib - 10.0, 0.0), out=dem)
        del d_trib, tr, tc
    del wall

    dem[channel] = river_level[channel] - spec.channel_depth
    dem = np.round(dem, 3)

    # flood sources: each with its level and the event's rise
    rise_x = _q(spec.rise_mean + spec.rise_amp * _series(rng, w, 700.0), 3)
    level = np.where(trib, np.round(bed, 3), river_level)
    del bed
    level[lagoon] = lagoon_level
    rise = np.broadcast_to(rise_x[None, :], shape).copy()
    rise[trib] = spec.trib_rise
    rise[lagoon] = spec.lagoon_rise
    return _Terrain(
        dem=dem,
        permanent_water=channel | lakes | lagoon,
        sources=[
            (channel, spec.river_decay),
            (trib & ~channel & ~hill_zone, spec.trib_decay),
            (lagoon, spec.lagoon_decay),
        ],
        level=level,
        rise=rise,
        river_level=river_level,
        d_bank=d_bank,
        hill=hill_zone,
        lagoon_zone=lagoon_zone,
    )


# ----------------------------------------------------------------------------- flood


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


# ----------------------------------------------------------------------------- land cover


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


def _town_db(
    urban: np.ndarray, angle: float, tex: np.ndarray, salt: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Town pixels (rows, cols) and their base dB: blocks, darker streets, bright corners."""
    ur, uc = np.nonzero(urban)
    a = math.radians(angle)
    bu = (uc + 0.5) * PIXEL * math.cos(a) + (ur + 0.5) * PIXEL * math.sin(a) + 1e5
    bv = (ur + 0.5) * PIXEL * math.cos(a) - (uc + 0.5) * PIXEL * math.sin(a) + 1e5
    bu, bv = _q(bu), _q(bv)
    block = np.floor(bu / 90.0).astype(np.uint64) * np.uint64(7919)
    block ^= np.floor(bv / 70.0).astype(np.uint64)
    hashed = (block * np.uint64(2654435761) + np.uint64(salt)) % np.uint64(1 << 31)
    lo, hi = CLASS_DB[URBAN]
    db = lo + (hi - lo) * (hashed.astype(np.float64) / float(1 << 31))
    db -= np.where((np.mod(bu, 90.0) < 14.0) | (np.mod(bv, 70.0) < 14.0), 6.0, 0.0)
    db += np.where(_q(tex[ur, uc]) > 2.0, 6.0, 0.0)
    return ur, uc, db


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


def _flat_backscatter(
    spec: EventSpec,
    rng: np.random.Generator,
    seed: int,
    cls: np.ndarray,
    parcel: np.ndarray,
    urban: np.ndarray,
    plain: np.ndarray,
    flooded: np.ndarray,
    depth: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backscatter on flat ground at THETA_REF, before water and terrain are applied.

    Returns (pre dB, post dB, harvested, double bounce, texture). Pre: a level per parcel in
    its class range plus persistent texture. Post: harvest, tillage, crop growth,
    rain-wetted soil, and double bounce in flooded vegetation and towns.
    """
    n_parcels = int(parcel.max()) + 1
    unit_pre = rng.random((len(CLASS_NAMES), n_parcels))
    unit_post = rng.random((len(CLASS_NAMES), n_parcels))
    lo, span = CLASS_DB[:, 0], CLASS_DB[:, 1] - CLASS_DB[:, 0]
    tex = 0.6 * _field(rng, cls.shape, 1.5) + 0.8 * _field(rng, cls.shape, 6.0)
    pre = lo[cls] + span[cls] * unit_pre[cls, parcel]
    ur, uc, town = _town_db(urban, spec.parcel_angle + rng.uniform(-20, 20), tex, seed)
    pre[ur, uc] = town
    del ur, uc, town
    pre += TEXTURE_DB[cls] * tex

    harvest = (cls == CROP) & plain & (rng.random(n_parcels) < spec.p_harvest)[parcel]
    tilled = (cls == BARE) & plain & (rng.random(n_parcels) < spec.p_till)[parcel]
    growth = rng.normal(0.0, 0.6, n_parcels)
    veg = (cls == CROP) | (cls == ORCHARD) | (cls == FOREST) | (cls == SHRUB)
    post = pre + np.where(veg, growth[parcel], 0.0)
    del veg
    changed = harvest | tilled  # to bare soil, smooth after harvest
    post[changed] = lo[BARE] + 0.5 * span[BARE] * unit_post[BARE, parcel[changed]]
    post[changed] += TEXTURE_DB[BARE] * tex[changed]
    del changed, tilled
    soil = ((cls == BARE) | (cls == CROP) | (cls == SHRUB) | harvest) & ~flooded
    wet = _field(rng, cls.shape, 200.0)
    post[soil] += np.clip(1.2 + 0.8 * wet[soil], 0.0, 2.5)
    del soil, wet

    # double bounce where the water is below the canopy / roofs, in some parcels
    height = np.zeros(len(CLASS_NAMES))
    prob = np.zeros(len(CLASS_NAMES))
    for c, hgt in DB_HEIGHT.items():
        height[c], prob[c] = hgt, DB_PROB[c]
    double_bounce = flooded & (depth < height[cls]) & (unit_post[WATER, parcel] < prob[cls])
    gain = np.where(cls[double_bounce] == URBAN, 2.0, 3.0)
    gain += 3.0 * unit_post[FOREST, parcel[double_bounce]]
    post[double_bounce] += gain
    return pre, post, harvest, double_bounce, tex


def _wind_ramp(rng: np.random.Generator, shape: tuple[int, int], share: float) -> np.ndarray:
    """0..1: how wind-roughened the water is; above 0.5 on about ``share`` of the scene."""
    f = _q(_field(rng, shape, 60.0))
    cut = round(float(np.quantile(f[::8, ::8], 1.0 - share)), 6)
    return _smoothstep((f - cut) / 0.5)


def _water_db(
    var: np.ndarray, tex: np.ndarray, ramp: np.ndarray, where: np.ndarray, theta: float
) -> np.ndarray:
    """Water backscatter at ``where``: calm (-25..-18 dB) blending into wind-roughened."""
    calm = np.clip(-21.5 + 1.8 * var[where], -25.0, -18.0) + 0.4 * tex[where]
    calm -= 0.3 * (theta - THETA_REF)
    windy = np.clip(-11.0 + 1.2 * var[where], *WIND_DB) + 0.6 * tex[where]
    windy -= 0.2 * (theta - THETA_REF)
    r = ramp[where]
    return (1.0 - r) * calm + r * windy


# ----------------------------------------------------------------------------- imaging


def _terrain_db(gx: np.ndarray, gy: np.ndarray, theta: float) -> np.ndarray:
    """Backscatter change (dB) from the local incidence angle, vs flat ground at THETA_REF.

    Radar to the east, looking west. sigma0 = gamma * cos^2(local) * sin(theta) /
    sin(local): a cos^2 angular law times the illuminated area of the tilted facet.
    """
    t = math.radians(theta)
    c = (math.cos(t) - gx * math.sin(t)) / np.sqrt(1.0 + gx * gx + gy * gy)
    np.clip(c, 0.02, math.cos(math.radians(3.0)), out=c)
    ratio = c * c * (math.sin(t) / math.cos(math.radians(THETA_REF)) ** 2)
    ratio /= np.sqrt(1.0 - c * c)
    return np.minimum(10.0 * np.log10(ratio), 12.0)


def _shadow(dem: np.ndarray, theta: float) -> np.ndarray:
    """Radar shadow cast along range (rows, radar to the east): a running max from the east."""
    cot = round(1.0 / math.tan(math.radians(theta)), 9)
    g = dem - (np.arange(dem.shape[1], dtype=np.float64) * (PIXEL * cot))[None, :]
    ahead = np.maximum.accumulate(g[:, ::-1], axis=1)[:, ::-1]
    shadow = np.zeros(dem.shape, dtype=bool)
    shadow[:, :-1] = ahead[:, 1:] > g[:, :-1]
    return shadow


def _add_noise_floor(db: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """Add thermal noise (NESZ) in linear power; shadow returns nothing but noise."""
    lin = np.power(10.0, db / 10.0)
    lin[shadow] = 0.0
    lin += 10.0 ** (NESZ_DB / 10.0)
    return np.round(10.0 * np.log10(lin), 3)


def _speckle(db: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative Gamma speckle (ENL 4.4) in linear power: dB in, float32 dB out."""
    lin = rng.gamma(ENL, 1.0 / ENL, db.shape)
    lin *= np.power(10.0, db / 10.0)
    out = 10.0 * np.log10(np.maximum(lin, 1e-6))
    return np.round(out, 3).astype(np.float32)


# ----------------------------------------------------------------------------- scene


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
) -> Scene:
    """Generate one event's whole scene (by default the event's own size in tiles)."""
    spec = EVENTS[event]
    shape = ((tile_rows or spec.tile_rows) * chip_size, (tile_cols or spec.tile_cols) * chip_size)
    t = _terrain(spec, seed, shape)
    flooded, depth = _flood(t)
    flooded &= ~t.permanent_water
    gy, gx = np.gradient(t.dem, PIXEL)
    slope2 = gx * gx + gy * gy
    steep = slope2 > MAX_SLOPE * MAX_SLOPE
    cliff = slope2 > 1.0
    del slope2
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


# ----------------------------------------------------------------------------- splits


def select_tiles(
    fraction: np.ndarray,
    anchors: tuple[tuple[str, float], ...],
    quotas: dict[str, int],
    rng: np.random.Generator,
) -> dict[tuple[int, int], str]:
    """Choose the tiles of each split in spatially disjoint strips: (row, col) -> split.

    A tile is eligible with at least MIN_FLOOD_FRACTION flooded pixels. Each held-out
    split's strip starts at the tile column of its anchor (a fraction of the scene width)
    and grows east until it holds its quota of eligible tiles; ``train`` is every other
    column except one gap column on each side of a held-out strip. Each split's quota is
    drawn at random from its eligible tiles.
    """
    eligible = fraction >= MIN_FLOOD_FRACTION
    rows, cols = eligible.shape
    per_col = eligible.sum(axis=0)
    owner: list[str | None] = ["train"] * cols
    for split, at in sorted(anchors, key=lambda a: a[1]):
        start = min(round(at * cols), cols - 1)
        end, count = start, 0
        while end < cols and count < quotas[split]:
            count += int(per_col[end])
            end += 1
        clash = any(owner[c] != "train" for c in range(start, end))
        clash |= start > 0 and owner[start - 1] not in ("train", None)
        if count < quotas[split] or clash:
            raise FloodSynthError(
                f"no strip from tile column {start} holds {quotas[split]} tiles with >= "
                f"{MIN_FLOOD_FRACTION:.0%} flood for split {split!r}: make the scene wider "
                "or move its anchor"
            )
        for c in range(max(start - 1, 0), min(end + 1, cols)):
            owner[c] = split if start <= c < end else None
    chosen: dict[tuple[int, int], str] = {}
    for split, quota in quotas.items():
        pool = [(r, c) for c in range(cols) if owner[c] == split for r in range(rows)]
        pool = [rc for rc in sorted(pool) if eligible[rc]]
        if len(pool) < quota:
            raise FloodSynthError(
                f"only {len(pool)} tiles of split {split!r} have >= {MIN_FLOOD_FRACTION:.0%} "
                f"flood, {quota} are needed: make the scene larger or lower the quota"
            )
        for i in sorted(rng.choice(len(pool), size=quota, replace=False)):
            chosen[pool[i]] = split
    return chosen


# ----------------------------------------------------------------------------- source


class FloodSynth:
    """The ``flood-synth`` dataset source (see the module docstring).

    The default configuration is frozen: it makes the published dataset. ``chip_size``,
    ``tile_rows`` and ``tile_cols`` (for every event) and ``quotas`` (tiles per event and
    split) make smaller variants, for tests.
    """

    name = "flood-synth"
    task = "flood"
    bands = ("VV_pre_db", "VV_post_db")

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        *,
        chip_size: int = 256,
        tile_rows: int | None = None,
        tile_cols: int | None = None,
        quotas: dict[str, int] | None = None,
        events: tuple[str, ...] = tuple(EVENTS),
    ) -> None:
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ValueError(f"unknown event(s) {unknown}; known: {sorted(EVENTS)}")
        self.seed = seed
        self.chip_size = chip_size
        self.tile_rows = tile_rows
        self.tile_cols = tile_cols
        self.quotas = dict(quotas) if quotas is not None else dict(DEFAULT_QUOTAS)
        if set(self.quotas) != set(SPLITS):
            raise ValueError(f"quotas must name exactly the splits {SPLITS}")
        self.events = events

    def _size(self, event: str) -> tuple[int, int]:
        spec = EVENTS[event]
        return self.tile_rows or spec.tile_rows, self.tile_cols or spec.tile_cols

    def describe(self) -> dict[str, Any]:
        scenes = {}
        for event in self.events:
            rows, cols = self._size(event)
            anchors = {s: u for s, u in EVENTS[event].anchors}
            scenes[event] = {"tile_rows": rows, "tile_cols": cols, "anchors": anchors}
        return {
            "kind": "synthetic",
            "generator": self.name,
            "version": VERSION,
            "seed": self.seed,
            "params": {
                "chip_size": self.chip_size,
                "pixel_size_m": PIXEL,
                "events": list(self.events),
                "scenes": scenes,
                "quotas_per_event": self.quotas,
                "min_flood_fraction": MIN_FLOOD_FRACTION,
                "max_slope": MAX_SLOPE,
                "enl": ENL,
            },
        }

    def expected_counts(self) -> dict[str, int]:
        return {split: n * len(self.events) for split, n in self.quotas.items()}

    def samples(self) -> Iterator[SampleRecord]:
        for event in self.events:
            rows, cols = self._size(event)
            scene = make_scene(
                event, seed=self.seed, chip_size=self.chip_size, tile_rows=rows, tile_cols=cols
            )
            fraction = scene.tile_fraction
            anchors = EVENTS[event].anchors
            chosen = select_tiles(fraction, anchors, self.quotas, _rng(self.seed, event, 4))
            for (r, c), split in sorted(chosen.items()):
                rs, cs = scene.tile(r, c)
                yield SampleRecord(
                    split=split,
                    id=f"{event}_r{r:02d}c{c:02d}",
                    inputs=np.stack([scene.pre_db[rs, cs], scene.post_db[rs, cs]]),
                    grid=scene.chip_grid(r, c),
                    target=scene.mask[rs, cs].copy(),
                    valid=None,
                    meta={
                        "event": event,
                        "row": r,
                        "col": c,
                        "flood_fraction": round(float(fraction[r, c]), 4),
                    },
                )
            del scene
