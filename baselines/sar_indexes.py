"""SAR index channels of the SAR-to-NDVI study (Kimura et al., section 4.4), in plain numpy.

The study feeds its generator ten channels made from Sentinel-1 VV and VH: clipped VV,
99.5%-range clipped VV, original VH, clipped VH, PRVI, RFDI, RVI4S1, RVI, VH + VV and
VH - VV, with the vegetation indexes of Pelta et al. (2022). All of them are computed here
in linear power (sigma0 = 10^(dB / 10)) from the dataset's dB bands:

    PRVI   = (1 - VV / (VH + VV)) * VH
    RFDI   = (VV - VH) / (VH + VV)
    RVI4S1 = sqrt(VV / (VH + VV)) * 4 VH / (VH + VV)
    RVI    = 4 VH / (VH + VV)

The study names the channels but gives neither the clipping bounds nor what the 99.5 %
range is taken over; both readings here are ours. "Clipped" means clipped to a fixed
physical range (VV -25 to -5 dB, VH -30 to -10 dB in power: what farmland spans, with
room either side; forest, roads and buildings fall outside), and "99.5%-range clipped"
means clipped to the chip's own central 99.5 % of values (its 0.25th and 99.75th
percentiles, over the chip's finite values only), which removes the brightest speckle and
buildings per image.

Every function takes and returns float arrays of any shape (a chip is (H, W)); the ratio
indexes assume positive powers, which any finite dB value gives. A non-finite value stays
non-finite in every channel; filling such pixels is the caller's business
(:func:`baselines.pix2pix_data.fill_nonfinite`), which can pass the chip's own bounds,
taken before filling, as ``vv_bounds``.

>>> vv, vh = db_to_power(np.array([-10.0])), db_to_power(np.array([-20.0]))
>>> float(rvi(vv, vh)[0])  # 4 * 0.01 / 0.11
0.36363636363636365
"""

from __future__ import annotations

import numpy as np

VV_CLIP_DB = (-25.0, -5.0)
VH_CLIP_DB = (-30.0, -10.0)
CENTRAL_FRACTION = 0.995

INDEX_NAMES: tuple[str, ...] = (
    "VV_clipped",
    "VV_clipped_99.5",
    "VH",
    "VH_clipped",
    "PRVI",
    "RFDI",
    "RVI4S1",
    "RVI",
    "VH_plus_VV",
    "VH_minus_VV",
)


def db_to_power(db: np.ndarray) -> np.ndarray:
    """sigma0 in linear power from dB: 10^(dB / 10), in float64."""
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def clip_db_range(power: np.ndarray, low_db: float, high_db: float) -> np.ndarray:
    """Power clipped to the fixed range [low_db, high_db] (given in dB)."""
    return np.clip(power, 10.0 ** (low_db / 10.0), 10.0 ** (high_db / 10.0))


def central_bounds(
    power: np.ndarray, fraction: float = CENTRAL_FRACTION
) -> tuple[float, float] | None:
    """The 0.25th and 99.75th percentiles (for ``fraction`` 0.995) of the finite values of
    ``power``; ``None`` when it has none.

    >>> central_bounds(np.array([np.nan, 1.0, 2.0, 3.0]), 0.5)
    (1.5, 2.5)
    """
    values = np.asarray(power, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = 100.0 * (1.0 - fraction) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def clip_central(
    power: np.ndarray,
    fraction: float = CENTRAL_FRACTION,
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    """Power clipped to ``bounds``, by default its own central ``fraction`` of finite values
    (:func:`central_bounds`); non-finite values stay as they are."""
    bounds = central_bounds(power, fraction) if bounds is None else bounds
    if bounds is None:
        return np.asarray(power, dtype=np.float64)
    return np.clip(power, *bounds)


def prvi(vv: np.ndarray, vh: np.ndarray) -> np.ndarray:
    """Polarimetric radar vegetation index: (1 - VV / (VH + VV)) * VH."""
    return (1.0 - vv / (vh + vv)) * vh


def rfdi(vv: np.ndarray, vh: np.ndarray) -> np.ndarray:
    """Radar forest degradation index: (VV - VH) / (VH + VV), in (-1, 1)."""
    return (vv - vh) / (vh + vv)


def rvi4s1(vv: np.ndarray, vh: np.ndarray) -> np.ndarray:
    """RVI for Sentinel-1 dual polarisation: sqrt(VV / (VH + VV)) * 4 VH / (VH + VV)."""
    return np.sqrt(vv / (vh + vv)) * rvi(vv, vh)


def rvi(vv: np.ndarray, vh: np.ndarray) -> np.ndarray:
    """Radar vegetation index (dual-pol form): 4 VH / (VH + VV), in (0, 4)."""
    return 4.0 * vh / (vh + vv)


def sar_index_stack(
    vv_db: np.ndarray, vh_db: np.ndarray, vv_bounds: tuple[float, float] | None = None
) -> np.ndarray:
    """The ten index channels of one chip, (10, H, W) float32, in :data:`INDEX_NAMES` order.

    The percentile clip uses the whole chip's finite VV values (or ``vv_bounds``, in power,
    when given), so call this on whole chips (before cropping).
    """
    vv, vh = db_to_power(vv_db), db_to_power(vh_db)
    channels = (
        clip_db_range(vv, *VV_CLIP_DB),
        clip_central(vv, bounds=vv_bounds),
        vh,
        clip_db_range(vh, *VH_CLIP_DB),
        prvi(vv, vh),
        rfdi(vv, vh),
        rvi4s1(vv, vh),
        rvi(vv, vh),
        vh + vv,
        vh - vv,
    )
    return np.stack(channels).astype(np.float32)
