"""Random streams, smooth random fields and series, and distance maps shared by the steps.

Each (event, purpose) draws from its own ``numpy.random.SeedSequence`` sub-stream (see
:func:`_rng`): 0 terrain, 1 land cover and backscatter, 2 and 3 speckle of the pre and
post image, 4 the choice of tiles. Fields that decide a mask go through :func:`_q`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from harness.datasets.flood_synth.spec import EVENTS, PIXEL


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
