"""ndvi-synth: synthetic Sentinel-1 VV/VH to NDVI chips over cabbage farms (embedded default).

A deterministic, physically grounded stand-in for the SAR-to-NDVI competition data of
Kimura et al. (Tsumagoi, Gunma, May to November 2017): cabbage parcels with one or two crop
cycles per season, seen by a Planet-like optical sensor (the target) and a Sentinel-2-like
one (the larger pretrain split), with Sentinel-1 backscatter from a water cloud model.

Dataset features:

* 128x128 chips at 10 m in UTM zone 54N (EPSG:32654), in areas a few km apart around
  Tsumagoi; the train and val areas sit where two of the study's three areas are
* splits: ``train`` (one area of 2x2 chips) and ``val`` (2x1), each seen on 24 cloud-free
  target-sensor dates (96 / 48 chips); ``pretrain``: four other areas of 2x2 chips on 30
  Sentinel-2-like dates (480 chips); ``test``: 12 locations of one chip each, spread over
  the district, each seen on 4 dates of its own (48 chips); all areas are spatially
  disjoint
* the test split is made from a separate **test seed** only: its fields, crop calendars,
  weather, dates and noise. The *demo* test comes from the public demo test seed; the
  official *private* test from a seed derived from the maintainers' secret, so that it
  cannot be rebuilt from this code. Train, val and pretrain come from the public seed
* independence groups (``meta["group"]``): the area (a test location is its own group, so
  the test split has 12; train, val and each pretrain area one each)
* every optical date is paired with the nearest Sentinel-1 acquisition of a 6-day repeat,
  so SAR and NDVI are 0 to 3 days apart (``meta["sar_date"]``), as with real data

Dataset format:

* inputs: float32 (2, 128, 128), band 1 ``VV_db``, band 2 ``VH_db``: sigma0 in dB, on a
  1e-3 dB grid, no nodata
* target: float32 (128, 128) NDVI in [-1, 1] on a 1e-4 grid; exactly 0 outside farm parcels
* valid: uint8 (128, 128), 1 = farm pixel (scored), 0 = roads, field margins, fallow and
  grassland, forest, buildings (these still have backscatter)
* sample ids ``<area>_c<chip>_<yyyymmdd>``, e.g. ``train_a0_c01_20170614``; areas are
  ``train_a0``, ``val_a0``, ``pretrain_a<k>``, and ``test_a<kk>`` (the private test) or
  ``demo_a<kk>`` (the demo test); ``meta``: ``area``, ``chip``, ``date``, ``sensor``
  (``planet`` or ``sentinel2``), ``sar_date``, ``group``

Classes and value ranges:

* farm parcels (scored): bare soil NDVI 0.1 to 0.3, cabbage canopy peak 0.7 to 0.9, a
  drop to about 0.35 on the day of harvest, residue and weeds afterwards; VV about -8 to
  -15 dB, VH about -14 to -24 dB
* not scored: forest (VV about -7 dB, VH about -12.5 dB), grass margins and fallow,
  roads (dark), buildings (bright VV)
* pretrain NDVI is on the Sentinel-2-like scale: ``ndvi_s2 = (ndvi_planet - b) / a +
  noise`` with ``a = 1.15``, ``b = -0.05``, noise sd 0.02; a model trained on it needs the
  inverse linear map to score on the target sensor

How it is made (all random draws from ``numpy.random.default_rng`` on sub-streams of
``SeedSequence(seed)``, or of ``SeedSequence(test_seed)`` for the test split; everything in
float64, quantised before the cast to float32, so that the files are bit-identical across
machines):

* layout: Voronoi zones (farm districts, forest, villages) with roads on their edges;
  farm zones are cut into rotated strips and blocks (parcels 40 to 160 m by 60 to 250 m,
  orientation from an integer direction vector) with one-pixel margins and farm roads
  between them; geometry is integer arithmetic only
* phenology per parcel: transplanting between early May and mid July, one cycle (58 to 80
  days) or two (the second transplanted 6 to 20 days after the first harvest), logistic
  LAI growth to a peak LAI of 3.2 to 4.5, harvest leaves residue (LAI 0.3 to 0.6, e-folding
  8 days) and weeds; some parcels get a cover crop after an early last harvest; a smooth
  within-parcel vigour field (sd 0.08) multiplies LAI
* NDVI = NDVI_soil + (0.90 - NDVI_soil) * (1 - exp(-0.6 LAI)); NDVI_soil 0.12 to 0.22 per
  parcel, slightly higher on wet soil; target sensor noise: per-date offset sd 0.01, pixel
  sd 0.012; the Sentinel-2-like sensor: the linear map above, per-date offset sd 0.01
* dates: the target sensor's 24 dates (train, val), one drawn in each of 24 equal parts
  of the season; a test location's 4 dates, one in each quarter of the season
* weather (one series for train, val and pretrain, another for the test split): daily
  rain (probability by month, rainy season in June and July), topsoil
  moisture bucket (0.12 to 0.45 m3/m3, 22 % drying a day), canopy wetness from dew and
  rain (Sentinel-1 passes at dawn)
* SAR: water cloud model (Attema and Ulaby 1978) per polarisation,
  ``sigma0 = A V cos(t) (1 - g2) + g2 sigma0_soil`` with ``g2 = exp(-2 B V / cos(t))`` and
  V = LAI; crops and grass VV A=0.035 B=0.15, VH A=0.011 B=0.10; forest VV A=0.048
  B=0.12, VH A=0.016 B=0.08; A grows by up to 30 % on a wet canopy;
  ``sigma0_soil[dB] = s0 + 25 mv + 3 (ks - 1) - 0.25 (t - 38)`` for VV (s0 = -19) and
  ``s0 + 22 mv + 3.5 (ks - 1) - 0.2 (t - 38)`` for VH (s0 = -27), with soil moisture mv,
  roughness ks per parcel (reset by tillage at each transplanting) and the local incidence
  angle t (about 38 degrees, plus terrain slopes, sd 3 degrees); then a per-date
  calibration offset (sd 0.15 dB) and multiplicative Gamma speckle in linear power
  (ENL 4.4, as Sentinel-1 IW GRDH)

Citation: the design follows D. Kimura et al., "Pre-Training and Fine-Tuning for Satellite
Image-to-Image Translation" (IBM Research, Space Shift), and the water cloud model of
E. P. W. Attema and F. T. Ulaby, "Vegetation modeled as a water cloud", Radio Science 13(2),
1978. The data are synthetic: cite SARBench and the generator version.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from harness.datasets.source import SampleRecord
from harness.geo import Grid

VERSION = 2  # bump on any change of the defaults, the physics or the random streams
DEFAULT_SEED = 2017  # public: train, val and pretrain
DEMO_TEST_SEED = 2018  # public: the demo test split (the official one comes from a secret)
CRS = "EPSG:32654"
PIXEL_M = 10.0
SEASON_START = date(2017, 5, 1)
SEASON_DAYS = 214  # 2017-05-01 .. 2017-11-30
WEATHER_DAYS = SEASON_DAYS + 8  # SAR dates may fall just after the season
S1_REPEAT, S2_REPEAT = 6, 5

Sensor = Literal["planet", "sentinel2"]
SPLIT_SENSOR: dict[str, Sensor] = {
    "train": "planet",
    "val": "planet",
    "test": "planet",
    "pretrain": "sentinel2",
}
SPLITS = ("train", "val", "test", "pretrain")
TestKind = Literal["demo", "private"]
# North-west corners (UTM 54N, m) near the study's areas, then other Tsumagoi farmland.
TARGET_ANCHORS = {
    "train": (276090.0, 4045650.0),
    "val": (273630.0, 4044040.0),
}
# Test locations (one chip each by default), at least 1.2 km from each other and from
# every other area; the first ``test_locations`` are used.
TEST_ANCHORS = (
    (267500.0, 4054500.0),
    (271500.0, 4054500.0),
    (275500.0, 4054500.0),
    (279500.0, 4054500.0),
    (283500.0, 4054500.0),
    (266500.0, 4047500.0),
    (270000.0, 4048000.0),
    (285000.0, 4046000.0),
    (285500.0, 4051500.0),
    (265500.0, 4042500.0),
    (275000.0, 4038500.0),
    (286500.0, 4041500.0),
    (271500.0, 4035000.0),
    (278500.0, 4035500.0),
)
TEST_INDEX = 2  # the area index the test area had up to version 1; the others keep theirs
PRETRAIN_ANCHORS = (
    (270720.0, 4042460.0),
    (277830.0, 4040050.0),
    (282680.0, 4037150.0),
    (279840.0, 4048880.0),
    (273650.0, 4051820.0),
    (268840.0, 4039180.0),
)

# Land cover codes.
ROAD, FARM, GRASS, FOREST, BUILDING = range(5)
# Rain probability and clear-sky weight by month (May..November).
RAIN_P = {5: 0.30, 6: 0.45, 7: 0.45, 8: 0.35, 9: 0.45, 10: 0.30, 11: 0.20}
CLEAR_W = {5: 0.70, 6: 0.35, 7: 0.45, 8: 0.60, 9: 0.50, 10: 0.65, 11: 0.75}
MV_DRY, MV_SAT, MV_START, DRYING, MV_PER_MM = 0.12, 0.45, 0.30, 0.78, 0.010
NDVI_INF, NDVI_K, LAI_PLANT, RESIDUE_DAYS, WEED_DAYS = 0.90, 0.6, 0.05, 8.0, 30.0
WET_GAIN, THETA_REF, CAL_SD = 0.3, 38.0, 0.15
PLANET_DATE_SD, PLANET_PIXEL_SD, S2_DATE_SD = 0.01, 0.012, 0.01
NO_HARVEST = 10_000


@dataclass(frozen=True)
class Canopy:
    """Water cloud vegetation parameters of one cover type and polarisation (V = LAI)."""

    a: float
    b: float


@dataclass(frozen=True)
class Soil:
    """Empirical soil backscatter: dB = base + moisture*mv + roughness*(ks-1) + incidence*dt."""

    base_db: float
    moisture_db: float
    roughness_db: float
    incidence_db: float


POLS = ("VV", "VH")
CROP = {"VV": Canopy(0.035, 0.15), "VH": Canopy(0.011, 0.10)}
TREES = {"VV": Canopy(0.048, 0.12), "VH": Canopy(0.016, 0.08)}
SOIL = {"VV": Soil(-19.0, 25.0, 3.0, -0.25), "VH": Soil(-27.0, 22.0, 3.5, -0.20)}


def season_date(day: int) -> date:
    return SEASON_START + timedelta(days=int(day))


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], size: int) -> np.ndarray:
    """Unit-variance, spatially correlated noise: white noise through two box filters."""
    out = rng.standard_normal(shape)
    for _ in range(2):
        out = ndimage.uniform_filter(out, size, mode="reflect")
    k = np.convolve(np.ones(size), np.ones(size)) / size**2
    return out / float((k**2).sum())


@dataclass(frozen=True, eq=False)
class Weather:
    """Daily regional weather: topsoil moisture (m3/m3) at dawn and canopy wetness (0..1)."""

    moisture: np.ndarray
    wetness: np.ndarray

    @classmethod
    def simulate(cls, rng: np.random.Generator) -> Weather:
        months = [season_date(d).month for d in range(WEATHER_DAYS)]
        p = np.array([RAIN_P.get(m, 0.2) for m in months])
        rain = np.where(rng.random(WEATHER_DAYS) < p, rng.exponential(12.0, WEATHER_DAYS), 0.0)
        dew = 0.5 * rng.random(WEATHER_DAYS)
        mv = np.empty(WEATHER_DAYS)
        mv[0] = MV_START
        for d in range(1, WEATHER_DAYS):
            wetter = MV_DRY + (mv[d - 1] - MV_DRY) * DRYING + rain[d - 1] * MV_PER_MM
            mv[d] = min(wetter, MV_SAT)
        rained = np.concatenate([[False], rain[:-1] > 1.0])
        wet = np.maximum(dew, np.where(rained, 0.7, 0.0))
        return cls(moisture=mv, wetness=wet)


@dataclass(frozen=True, eq=False)
class Parcels:
    """Per-parcel crop calendar and soil, arrays of shape (n,) or (n, cycles).

    Absent cycles have ``plant = NO_HARVEST``; a cover crop has ``harvest = NO_HARVEST``.
    """

    plant: np.ndarray
    harvest: np.ndarray
    grow: np.ndarray
    lai_max: np.ndarray
    residue: np.ndarray
    roughness: np.ndarray  # (n, cycles + 1): before the first tillage, then per cycle
    weeds_pre: np.ndarray
    weeds_post: np.ndarray
    soil_ndvi: np.ndarray
    moisture_offset: np.ndarray

    def __len__(self) -> int:
        return len(self.soil_ndvi)

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> Parcels:
        two = rng.random(n) < 0.35
        plant = np.full((n, 3), NO_HARVEST, np.int64)
        grow = np.full((n, 3), 70, np.int64)
        plant[:, 0] = np.where(two, rng.integers(3, 31, n), rng.integers(5, 76, n))
        grow[:, 0] = np.where(two, rng.integers(55, 69, n), rng.integers(58, 81, n))
        second = plant[:, 0] + grow[:, 0] + rng.integers(6, 21, n)
        plant[:, 1] = np.where(two, second, NO_HARVEST)
        grow[:, 1] = np.minimum(rng.integers(58, 76, n), 185 - second)
        harvest = plant + grow
        last = np.where(two, harvest[:, 1], harvest[:, 0])
        cover = (rng.random(n) < 0.25) & (last <= 150)
        slot = np.where(two, 2, 1)
        rows = np.arange(n)
        plant[rows[cover], slot[cover]] = last[cover] + rng.integers(7, 21, n)[cover]
        grow[rows[cover], slot[cover]] = 70  # a slow cover crop (oats), never harvested
        harvest[rows, slot] = np.where(cover, NO_HARVEST, harvest[rows, slot])
        lai_max = rng.uniform(3.2, 4.5, (n, 3))
        lai_max[rows[cover], slot[cover]] = rng.uniform(1.2, 2.2, n)[cover]
        roughness = np.concatenate(
            [rng.uniform(0.5, 0.9, (n, 1)), rng.uniform(0.9, 1.6, (n, 3))], axis=1
        )
        return cls(
            plant=plant,
            harvest=harvest,
            grow=grow,
            lai_max=lai_max,
            residue=rng.uniform(0.3, 0.6, (n, 3)),
            roughness=roughness,
            weeds_pre=rng.uniform(0.0, 0.1, n),
            weeds_post=rng.uniform(0.1, 0.5, n),
            soil_ndvi=rng.uniform(0.12, 0.22, n),
            moisture_offset=rng.normal(0.0, 0.025, n),
        )

    def state(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """(LAI, roughness ks) of every parcel on season day ``day``."""
        k = (self.plant <= day).sum(axis=1) - 1  # current cycle, -1 before the first
        rows = np.arange(len(self))
        c = np.maximum(k, 0)
        plant, harvest, grow = self.plant[rows, c], self.harvest[rows, c], self.grow[rows, c]
        lai_max, residue = self.lai_max[rows, c], self.residue[rows, c]
        t = day - plant
        growing = LAI_PLANT + (lai_max - LAI_PLANT) * _logistic((t - 0.5 * grow) / (0.11 * grow))
        since = np.maximum(day - harvest, 0)
        after = residue * np.exp(-since / RESIDUE_DAYS)
        after += self.weeds_post * (1.0 - np.exp(-since / WEED_DAYS))
        lai = np.where(day < harvest, growing, after)
        lai = np.where(k < 0, self.weeds_pre, lai)
        return lai, self.roughness[rows, k + 1]


@dataclass(frozen=True)
class AreaSpec:
    """Where an area is: ``name`` like ``train_a0``; ``index`` keys its random streams."""

    name: str
    split: str
    index: int
    west: float
    north: float
    rows: int
    cols: int
    chip: int

    def bounds(self) -> tuple[float, float, float, float]:
        east = self.west + self.cols * self.chip * PIXEL_M
        south = self.north - self.rows * self.chip * PIXEL_M
        return (self.west, south, east, self.north)

    def chip_grids(self) -> list[Grid]:
        """Row-major chip grids: chip ``k`` is row ``k // cols``, column ``k % cols``."""
        step = self.chip * PIXEL_M
        return [
            Grid.from_origin(
                CRS, self.west + c * step, self.north - r * step, PIXEL_M, self.chip, self.chip
            )
            for r in range(self.rows)
            for c in range(self.cols)
        ]


@dataclass(frozen=True, eq=False)
class Area:
    """A simulated area: land cover, parcels and fixed per-pixel fields, (H, W) each."""

    spec: AreaSpec
    cover: np.ndarray  # uint8 land-cover codes
    parcel: np.ndarray  # int64 parcel index, -1 outside farm parcels
    parcels: Parcels
    vigour: np.ndarray  # multiplies LAI (farm, grass)
    soil_ndvi: np.ndarray  # additive soil NDVI variation
    incidence: np.ndarray  # local incidence angle, degrees
    building_db: np.ndarray  # (2, H, W) VV, VH of building pixels

    @property
    def farm(self) -> np.ndarray:
        return self.parcel >= 0


def _edges(labels: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Pixels whose label differs from their right or lower neighbour (where ``keep``)."""
    right = labels[:, :-1] != labels[:, 1:]
    down = labels[:-1, :] != labels[1:, :]
    if keep is not None:
        right &= keep[:, :-1] | keep[:, 1:]
        down &= keep[:-1, :] | keep[1:, :]
    out = np.zeros(labels.shape, bool)
    out[:, :-1] |= right
    out[:-1, :] |= down
    return out


def _layout(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(land cover, parcel key or -1) from integer geometry only."""
    n_zones = max(3, round(h * w / 3600))
    cy = rng.integers(-8, h + 8, n_zones)
    cx = rng.integers(-8, w + 8, n_zones)
    kind = rng.choice(np.array([FARM, FOREST, BUILDING]), n_zones, p=[0.6, 0.3, 0.1])
    cy[0], cx[0], kind[0] = h // 2, w // 2, FARM  # every area has farmland at its centre
    rr, cc = np.mgrid[0:h, 0:w].astype(np.int64)
    dist = (rr[None] - cy[:, None, None]) ** 2 + (cc[None] - cx[:, None, None]) ** 2
    zone = dist.argmin(axis=0)
    cover = kind[zone].astype(np.uint8)
    key = np.full((h, w), -1, np.int64)
    strip = np.zeros((h, w), np.int64)
    for z in range(n_zones):
        p, q = int(rng.integers(1, 10)), int(rng.integers(-9, 10))
        m = zone == z
        if kind[z] != FARM or not m.any():
            continue
        du, dv = cc[m] - cx[z], rr[m] - cy[z]
        u, v = p * du + q * dv, -q * du + p * dv
        norm = float(np.sqrt(p * p + q * q))
        iu = _strips(rng, u, norm, 4, 17)
        iv = _strips(rng, v, norm, 6, 26)
        key[m] = z * 10**8 + iu * 10**4 + iv
        strip[m] = iu
    farm_zone = kind[zone] == FARM
    margins = _edges(key) & farm_zone
    cover[margins] = GRASS
    cover[margins & _edges(strip) & (strip % 3 == 0)] = ROAD
    village = kind[zone] == BUILDING
    blocks = np.repeat(np.repeat(rng.random(((h + 1) // 2, (w + 1) // 2)) < 0.3, 2, 0), 2, 1)
    cover[village & ~blocks[:h, :w]] = GRASS
    cover[_edges(zone, kind[zone] != FOREST)] = ROAD
    return cover, np.where(cover == FARM, key, -1)


def _strips(rng: np.random.Generator, u: np.ndarray, norm: float, lo: int, hi: int) -> np.ndarray:
    """Strip index of each rotated coordinate; widths lo..hi-1 pixels, as integer bounds."""
    count = int((u.max() - u.min()) // (lo * norm)) + 2
    bounds = u.min() + np.rint(np.cumsum(rng.integers(lo, hi, count)) * norm).astype(np.int64)
    return np.searchsorted(bounds, u, side="right").astype(np.int64)


def build_area(rng: np.random.Generator, spec: AreaSpec) -> Area:
    """Simulate the layout, parcels and fixed fields of one area."""
    h, w = spec.rows * spec.chip, spec.cols * spec.chip
    cover, key = _layout(rng, h, w)
    keys, inverse, counts = np.unique(key[key >= 0], return_inverse=True, return_counts=True)
    fallow = (rng.random(len(keys)) < 0.1) | (counts < 6)
    new_index = np.where(fallow, -1, np.cumsum(~fallow) - 1)
    parcel = np.full((h, w), -1, np.int64)
    parcel[key >= 0] = new_index[inverse]
    cover[(key >= 0) & (parcel < 0)] = GRASS
    parcels = Parcels.draw(rng, int((~fallow).sum()))
    vigour = np.clip(1.0 + 0.08 * _smooth_noise(rng, (h, w), 9), 0.7, 1.3)
    soil_ndvi = 0.01 * _smooth_noise(rng, (h, w), 5)
    east = spec.west + (np.arange(w) + 0.5) * PIXEL_M
    # Descending pass looking west: incidence grows westwards (about 0.07 degrees per km).
    swath = 38.5 + 0.07e-3 * (277000.0 - east)
    incidence = swath[None, :] + 3.0 * _smooth_noise(rng, (h, w), 25)
    vv = rng.uniform(-3.0, 6.0, (h, w))
    building_db = np.stack([vv, vv - rng.uniform(7.0, 12.0, (h, w))])
    return Area(spec, cover, parcel, parcels, vigour, soil_ndvi, incidence, building_db)


def _grass_lai(day: int) -> float:
    x = np.array([(day - 30) / 8.0, (day - 165) / 10.0])
    s = _logistic(x)
    return float(0.6 + 1.6 * s[0] * (1.0 - s[1]))


def _forest_lai(day: int) -> float:
    x = np.array([(day - 25) / 6.0, (day - 178) / 7.0])
    s = _logistic(x)
    return float(3.5 + 1.5 * s[0] * (1.0 - s[1]))


class NdviSynth:
    """The ``ndvi-synth`` generator (see the module docstring); defaults are frozen.

    ``seed`` makes train, val and pretrain; ``test_seed`` makes the test split, and nothing
    else does: the demo test (``test="demo"``) uses the public ``DEMO_TEST_SEED``, the
    official test (``test="private"``) a seed derived from the maintainers' secret, which
    is never recorded. ``splits`` limits the splits made.
    """

    name = "ndvi-synth"
    task = "ndvi"
    bands = ("VV_db", "VH_db")

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        *,
        test: TestKind = "demo",
        test_seed: int | None = None,
        chip_size: int = 128,
        train_chips: tuple[int, int] = (2, 2),
        val_chips: tuple[int, int] = (2, 1),
        test_locations: int = 12,
        test_dates: int = 4,
        pretrain_areas: int = 4,
        pretrain_chips: tuple[int, int] = (2, 2),
        target_dates: int = 24,
        pretrain_dates: int = 30,
        sentinel2_gain: float = 1.15,
        sentinel2_offset: float = -0.05,
        sentinel2_noise: float = 0.02,
        enl: float = 4.4,
        splits: Collection[str] | None = None,
    ) -> None:
        if chip_size < 16:
            raise ValueError(f"chip_size must be at least 16 pixels, got {chip_size}")
        if not 1 <= pretrain_areas <= len(PRETRAIN_ANCHORS):
            raise ValueError(f"pretrain_areas must be 1..{len(PRETRAIN_ANCHORS)}")
        if not 1 <= test_locations <= len(TEST_ANCHORS):
            raise ValueError(f"test_locations must be 1..{len(TEST_ANCHORS)}")
        if not 1 <= target_dates <= SEASON_DAYS // 3:
            raise ValueError(f"target_dates must be 1..{SEASON_DAYS // 3}, got {target_dates}")
        if not 1 <= test_dates <= SEASON_DAYS // 3:
            raise ValueError(f"test_dates must be 1..{SEASON_DAYS // 3}, got {test_dates}")
        n_s2 = len(range(0, SEASON_DAYS, S2_REPEAT)) - 1
        if not 1 <= pretrain_dates <= n_s2:
            raise ValueError(f"pretrain_dates must be 1..{n_s2}, got {pretrain_dates}")
        if sentinel2_gain <= 0 or enl <= 0 or sentinel2_noise < 0:
            raise ValueError("sentinel2_gain and enl must be > 0, sentinel2_noise >= 0")
        if test not in ("demo", "private"):
            raise ValueError(f"test must be 'demo' or 'private', got {test!r}")
        if test == "private" and test_seed is None:
            raise ValueError("the private test needs its test_seed (derived from the secret)")
        if splits is not None and set(splits) - set(SPLITS):
            raise ValueError(f"unknown split(s) {sorted(set(splits) - set(SPLITS))}")
        self.seed = int(seed)
        self.test: TestKind = test
        self.test_seed = DEMO_TEST_SEED if test_seed is None else int(test_seed)
        self.splits = tuple(s for s in SPLITS if splits is None or s in splits)
        self.params: dict[str, Any] = {
            "chip_size": chip_size,
            "train_chips": list(train_chips),
            "val_chips": list(val_chips),
            "test_locations": test_locations,
            "test_dates": test_dates,
            "pretrain_areas": pretrain_areas,
            "pretrain_chips": list(pretrain_chips),
            "target_dates": target_dates,
            "pretrain_dates": pretrain_dates,
            "sentinel2_gain": sentinel2_gain,
            "sentinel2_offset": sentinel2_offset,
            "sentinel2_noise": sentinel2_noise,
            "enl": enl,
        }
        # Area indices key the random streams: train 0, val 1, pretrain 3.. as in version 1
        # (2 was the test area's), so those splits are unchanged; test areas are numbered in
        # the test seed's own streams.
        specs = [
            ("train", 0, TARGET_ANCHORS["train"], train_chips),
            ("val", 1, TARGET_ANCHORS["val"], val_chips),
        ]
        specs += [
            ("pretrain", TEST_INDEX + 1 + k, a, pretrain_chips)
            for k, a in enumerate(PRETRAIN_ANCHORS[:pretrain_areas])
        ]
        self._areas: list[AreaSpec] = []
        for split, index, (west, north), (rows, cols) in specs:
            if rows < 1 or cols < 1:
                raise ValueError(f"{split} chips must be (rows, cols) >= 1, got {(rows, cols)}")
            k = sum(a.split == split for a in self._areas)
            spec = AreaSpec(f"{split}_a{k}", split, index, west, north, rows, cols, chip_size)
            self._areas.append(spec)
        tag = "test" if test == "private" else "demo"
        tests = [
            AreaSpec(f"{tag}_a{k:02d}", "test", k, west, north, 1, 1, chip_size)
            for k, (west, north) in enumerate(TEST_ANCHORS[:test_locations])
        ]
        self._areas[2:2] = tests  # train, val, test, pretrain
        self._check_disjoint()
        self.weather = Weather.simulate(self._rng(0))
        self._schedule = self._draw_dates(self._rng(1))
        self.test_weather = Weather.simulate(self._test_rng(0))
        self._test_schedule = [
            self._draw_test_dates(self._test_rng(1, a.index))
            for a in self._areas
            if a.split == "test"
        ]

    def _rng(self, *key: int) -> np.random.Generator:
        """An independent stream: the child of ``SeedSequence(seed)`` at spawn key ``key``."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def _test_rng(self, *key: int) -> np.random.Generator:
        """A stream of the test split: a child of ``SeedSequence(test_seed)``."""
        return np.random.default_rng(np.random.SeedSequence(self.test_seed, spawn_key=key))

    def _area_rng(self, spec: AreaSpec, *key: int) -> np.random.Generator:
        return self._test_rng(*key) if spec.split == "test" else self._rng(*key)

    def _weather(self, spec: AreaSpec) -> Weather:
        return self.test_weather if spec.split == "test" else self.weather

    def _check_disjoint(self) -> None:
        for i, a in enumerate(self._areas):
            for b in self._areas[i + 1 :]:
                aw, as_, ae, an = a.bounds()
                bw, bs, be, bn = b.bounds()
                if aw < be and bw < ae and as_ < bn and bs < an:
                    raise ValueError(
                        f"areas {a.name} and {b.name} overlap: use fewer chips per area"
                    )

    def _pair(self, day: int) -> tuple[int, int]:
        """(optical day, the nearest Sentinel-1 day of the 6-day repeat)."""
        k = max(0, (day - self._s1_phase + S1_REPEAT // 2) // S1_REPEAT)
        return day, self._s1_phase + k * S1_REPEAT

    def _draw_dates(self, rng: np.random.Generator) -> dict[Sensor, list[tuple[int, int]]]:
        """(optical day, SAR day) pairs per sensor, as season days."""
        self._s1_phase = int(rng.integers(0, S1_REPEAT))
        n = self.params["target_dates"]
        edges = [2 + (SEASON_DAYS - 4) * k // n for k in range(n + 1)]
        planet = [int(rng.integers(lo, hi)) for lo, hi in pairwise(edges)]
        s2_phase = int(rng.integers(0, S2_REPEAT))
        cand = np.arange(s2_phase, SEASON_DAYS, S2_REPEAT)
        weight = np.array([CLEAR_W[season_date(d).month] for d in cand])
        s2 = rng.choice(cand, self.params["pretrain_dates"], replace=False, p=weight / weight.sum())
        s2 = sorted(int(d) for d in s2)
        return {"planet": [self._pair(d) for d in planet], "sentinel2": [self._pair(d) for d in s2]}

    def _draw_test_dates(self, rng: np.random.Generator) -> list[tuple[int, int]]:
        """A test location's own dates: one in each of ``test_dates`` parts of the season."""
        n = self.params["test_dates"]
        edges = [2 + (SEASON_DAYS - 4) * k // n for k in range(n + 1)]
        return [self._pair(int(rng.integers(lo, hi))) for lo, hi in pairwise(edges)]

    # -- the DatasetSource protocol -------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        params = {k: list(v) if isinstance(v, list) else v for k, v in self.params.items()}
        # the private test's seed is never recorded: it would rebuild the test
        params["demo_test_seed"] = self.test_seed if self.test == "demo" else DEMO_TEST_SEED
        return {
            "kind": "synthetic",
            "generator": self.name,
            "version": VERSION,
            "seed": self.seed,
            "test": self.test,
            "params": params,
        }

    def expected_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.splits, 0)
        for a in self._areas:
            if a.split in counts:
                counts[a.split] += a.rows * a.cols * len(self.area_acquisitions(a))
        return counts

    def samples(self) -> Iterator[SampleRecord]:
        for spec in self._areas:
            if spec.split not in self.splits:
                continue
            area = self.area(spec)
            sensor = SPLIT_SENSOR[spec.split]
            grids = spec.chip_grids()
            for day, sar_day in self.area_acquisitions(spec):
                target, valid = self.ndvi(area, day, sensor)
                inputs = self.sar(area, sar_day)
                stamp = season_date(day)
                for k, grid in enumerate(grids):
                    r, c = divmod(k, spec.cols)
                    win = np.s_[
                        r * spec.chip : (r + 1) * spec.chip, c * spec.chip : (c + 1) * spec.chip
                    ]
                    yield SampleRecord(
                        split=spec.split,
                        id=f"{spec.name}_c{k:02d}_{stamp:%Y%m%d}",
                        inputs=np.ascontiguousarray(inputs[(slice(None), *win)]),
                        grid=grid,
                        target=np.ascontiguousarray(target[win]),
                        valid=np.ascontiguousarray(valid[win]),
                        meta={
                            "area": spec.name,
                            "chip": f"c{k:02d}",
                            "date": stamp.isoformat(),
                            "sensor": sensor,
                            "sar_date": season_date(sar_day).isoformat(),
                            "group": spec.name,
                        },
                    )

    # -- the simulation, public for tests and the dataset card ------------------------------

    def areas(self) -> list[AreaSpec]:
        return list(self._areas)

    def acquisitions(self, sensor: Sensor) -> list[tuple[int, int]]:
        """(optical season day, paired Sentinel-1 season day) of every date of ``sensor``
        in train, val and pretrain (test locations have their own: :meth:`area_acquisitions`)."""
        return list(self._schedule[sensor])

    def area_acquisitions(self, spec: AreaSpec) -> list[tuple[int, int]]:
        """(optical day, paired Sentinel-1 day) of every date on which ``spec`` is seen."""
        if spec.split == "test":
            return list(self._test_schedule[spec.index])
        return list(self._schedule[SPLIT_SENSOR[spec.split]])

    def area(self, spec: AreaSpec) -> Area:
        return build_area(self._area_rng(spec, 2, spec.index), spec)

    def true_ndvi(self, area: Area, day: int) -> np.ndarray:
        """Noise-free NDVI on the target sensor's scale, (H, W) float64, 0 outside farms."""
        farm = area.farm
        idx = area.parcel[farm]
        lai, _ = area.parcels.state(day)
        mv = self._weather(area.spec).moisture[day] + area.parcels.moisture_offset[idx]
        soil = area.parcels.soil_ndvi[idx] + area.soil_ndvi[farm] + 0.05 * (mv - 0.25)
        veg = 1.0 - np.exp(-NDVI_K * lai[idx] * area.vigour[farm])
        out = np.zeros(area.parcel.shape)
        out[farm] = soil + (NDVI_INF - soil) * veg
        return out

    def ndvi(self, area: Area, day: int, sensor: Sensor) -> tuple[np.ndarray, np.ndarray]:
        """(NDVI float32, valid uint8) as ``sensor`` sees ``area`` on season day ``day``."""
        rng = self._area_rng(area.spec, 3, area.spec.index, day, 0 if sensor == "planet" else 1)
        shape = area.parcel.shape
        ndvi = self.true_ndvi(area, day)
        if sensor == "planet":
            ndvi += rng.normal(0.0, PLANET_DATE_SD) + rng.normal(0.0, PLANET_PIXEL_SD, shape)
        else:
            gain, offset = self.params["sentinel2_gain"], self.params["sentinel2_offset"]
            ndvi = (ndvi - offset) / gain + rng.normal(0.0, S2_DATE_SD)
            ndvi += rng.normal(0.0, self.params["sentinel2_noise"], shape)
        ndvi = np.round(np.clip(ndvi, -1.0, 1.0), 4)
        farm = area.farm
        return np.where(farm, ndvi, 0.0).astype(np.float32), farm.astype(np.uint8)

    def sar(self, area: Area, day: int) -> np.ndarray:
        """(VV_db, VH_db) float32 of ``area`` on Sentinel-1 season day ``day``."""
        rng = self._area_rng(area.spec, 4, area.spec.index, day)
        weather = self._weather(area.spec)
        cover, farm = area.cover, area.farm
        lai_p, ks_p = area.parcels.state(day)
        idx = area.parcel[farm]
        mv_day = weather.moisture[day]
        lai = np.zeros(cover.shape)
        lai[farm] = lai_p[idx]
        lai[cover == GRASS] = _grass_lai(day)
        lai[cover == FOREST] = _forest_lai(day)
        lai *= np.where(cover == FOREST, 1.0, area.vigour)
        ks = np.select([cover == GRASS, cover == FOREST, cover == ROAD], [0.8, 1.2, 0.25], 1.0)
        ks[farm] = ks_p[idx]
        mv = mv_day + np.select([cover == GRASS, cover == FOREST], [0.02, 0.04], 0.0)
        mv[farm] += area.parcels.moisture_offset[idx]
        mv = np.where(cover == ROAD, 0.06, np.clip(mv, 0.05, 0.5))
        theta = area.incidence
        cos = np.cos(np.radians(theta))
        wet = 1.0 + WET_GAIN * weather.wetness[day]
        forest = cover == FOREST
        out = np.empty((2, *cover.shape))
        for i, pol in enumerate(POLS):
            s = SOIL[pol]
            soil_db = s.base_db + s.moisture_db * mv + s.roughness_db * (ks - 1.0)
            soil = 10.0 ** ((soil_db + s.incidence_db * (theta - THETA_REF)) / 10.0)
            a = np.where(forest, TREES[pol].a, CROP[pol].a) * wet
            b = np.where(forest, TREES[pol].b, CROP[pol].b)
            gamma2 = np.exp(-2.0 * b * lai / cos)
            sigma0 = a * lai * cos * (1.0 - gamma2) + gamma2 * soil
            out[i] = np.where(cover == BUILDING, 10.0 ** (area.building_db[i] / 10.0), sigma0)
        enl = self.params["enl"]
        out *= rng.gamma(enl, 1.0 / enl, out.shape)
        db = 10.0 * np.log10(out) + rng.normal(0.0, CAL_SD)
        return np.round(db, 3).astype(np.float32)
