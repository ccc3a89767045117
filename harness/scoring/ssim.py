"""SSIM (Wang et al., 2004) of NDVI chips: the map, and its sum over the valid pixels."""

from __future__ import annotations

import numpy as np

from harness.scoring.arrays import Scratch, same_shape, valid_mask

NDVI_DATA_RANGE = 2.0
"""The data range L of NDVI ([-1, 1]), used by PSNR and SSIM."""
SSIM_SIGMA = 1.5
"""Standard deviation (pixels) of SSIM's Gaussian window."""
SSIM_TRUNCATE = 3.5
"""The window is cut at ``int(3.5 * 1.5 + 0.5) = 5`` pixels each side: 11 x 11."""
SSIM_K1, SSIM_K2 = 0.01, 0.03
"""SSIM stabilising constants: C1 = (K1 L)^2, C2 = (K2 L)^2 (Wang et al., 2004)."""


def ssim_map(x: np.ndarray, y: np.ndarray, data_range: float = NDVI_DATA_RANGE) -> np.ndarray:
    """The SSIM map of two 2-D images (Wang et al., 2004) with an 11 x 11 Gaussian window.

    Local means, variances and covariance are Gaussian-weighted (sigma 1.5 pixels, cut at
    5 pixels, ``scipy.ndimage.gaussian_filter`` with ``mode="reflect"``, i.e. the image is
    mirrored at its edges, so the map has the image's shape). Variances are weighted
    population variances (no n - 1 correction).

    >>> x = np.linspace(-1, 1, 64).reshape(8, 8)
    >>> bool(np.allclose(ssim_map(x, x), 1.0))
    True
    """
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"SSIM needs two 2-D images of one shape, got {x.shape} and {y.shape}")
    return _ssim_map(x, y, None, Scratch(), data_range).copy()


def _ssim_map(
    x: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray | None,
    scratch: Scratch,
    data_range: float = NDVI_DATA_RANGE,
) -> np.ndarray:
    """The SSIM map in a scratch buffer; pixels outside ``valid`` are set to 0 first."""
    from scipy.ndimage import gaussian_filter  # scipy's import is slow; only when used

    shape, size = x.shape, x.size

    def buf(name: str) -> np.ndarray:
        return scratch.get(f"ssim_{name}", size, np.float64, shape)

    a, b = buf("a"), buf("b")
    if valid is None:
        np.copyto(a, x)
        np.copyto(b, y)
    else:  # where= keeps NaN outside the mask out of the arithmetic
        a.fill(0.0)
        b.fill(0.0)
        np.copyto(a, x, where=valid)
        np.copyto(b, y, where=valid)

    def blur(img: np.ndarray, out: np.ndarray) -> np.ndarray:
        return gaussian_filter(
            img, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect", output=out
        )

    mu_a, mu_b, work = blur(a, buf("mu_a")), blur(b, buf("mu_b")), buf("work")
    e_aa = blur(np.multiply(a, a, out=work), buf("e_aa"))
    e_bb = blur(np.multiply(b, b, out=work), buf("e_bb"))
    e_ab = blur(np.multiply(a, b, out=work), buf("e_ab"))
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_ab = np.multiply(mu_a, mu_b, out=work)
    cov = np.subtract(e_ab, mu_ab, out=e_ab)
    # numerator (2 mu_a mu_b + C1)(2 cov + C2), into ``work``
    num = np.multiply(mu_ab, 2.0, out=work)
    num += c1
    cov *= 2.0
    cov += c2
    num *= cov
    # denominator (mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2), into ``mu_a``
    mu_a *= mu_a
    mu_b *= mu_b
    mu_a += mu_b
    var = np.add(e_aa, e_bb, out=e_aa)
    var -= mu_a
    var += c2
    mu_a += c1
    mu_a *= var
    num /= mu_a
    return num


def _ssim_sum(
    pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None, scratch: Scratch
) -> float:
    if pred.ndim != 2:
        raise ValueError(f"SSIM needs a 2-D chip, got shape {pred.shape}")
    if valid is not None and not valid.any():
        return 0.0
    smap = _ssim_map(pred, target, valid, scratch)
    return float(smap.sum() if valid is None else smap.sum(where=valid))


def ssim_sum(pred: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Sum over the valid pixels of the SSIM map of the chip with invalid pixels set to 0.

    Setting non-farm pixels to 0 in both images (the source competition's convention) keeps
    the window well defined at every pixel; only the valid pixels' SSIM values count.

    >>> ssim_sum(np.zeros((4, 4)), np.zeros((4, 4)), np.eye(4))
    4.0
    """
    p, t = np.asarray(pred), np.asarray(target)
    same_shape(p, t)
    return _ssim_sum(p, t, valid_mask(valid, p.shape), Scratch())
