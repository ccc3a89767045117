"""Steps 3 to 6, backscatter: per-parcel and town dB, the change between the dates (harvest,
tillage, growth, wet soil), the double-bounce and wind confusers, calm and wind-roughened
water, terrain (local incidence) and radar shadow, the noise floor, and speckle.
"""

from __future__ import annotations

import math

import numpy as np

from harness.datasets.flood_synth.fields import _field, _q, _smoothstep
from harness.datasets.flood_synth.spec import (
    BARE,
    CLASS_DB,
    CLASS_NAMES,
    CROP,
    DB_HEIGHT,
    DB_PROB,
    ENL,
    FOREST,
    NESZ_DB,
    ORCHARD,
    PIXEL,
    SHRUB,
    TEXTURE_DB,
    THETA_REF,
    URBAN,
    WATER,
    WIND_DB,
    EventSpec,
)

# ----------------------------------------------------------------------------- flat ground


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
