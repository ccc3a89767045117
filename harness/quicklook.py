"""The one quicklook renderer: chips as small RGB panels side by side (Pillow images).

Dataset cards (:mod:`harness.datasets.card`: inputs and target) and run pages
(:mod:`harness.publish.quicklooks`: input, truth, prediction) both draw with these pieces,
so a chip looks the same wherever it is shown: SAR bands in grey (2nd to 98th percentile),
a class mask in blue over an input band, a continuous target on a brown-to-green ramp (NDVI
from brown at -0.2 and below to dark green at 0.9), pixels that are not scored in grey.
Which of these a task's target gets is its target kind's (``harness.tasks``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

FLOOD_BLUE = np.array([30, 110, 255])
FALSE_RED = np.array([230, 40, 40])
MISS_ORANGE = np.array([255, 170, 0])
NOT_SCORED = (90, 90, 90)
_BROWN, _GREEN = np.array([150, 110, 60]), np.array([20, 120, 30])
GAP = 6
"""White columns between two panels of :func:`side_by_side` (never scaled)."""
RUN_PANELS = 3
"""Panels of a run's quicklook: input, truth, prediction."""


def spread(ids: list[str], k: int) -> list[str]:
    """Up to ``k`` of ``ids`` (in their order), spread evenly from the first to the last."""
    if len(ids) <= k:
        return ids
    return [ids[round(i * (len(ids) - 1) / (k - 1))] for i in range(k)]


def grey(band: np.ndarray) -> np.ndarray:
    """A band as an RGB grey panel, stretched between its 2nd and 98th percentiles."""
    finite = np.isfinite(band)
    out = np.zeros((*band.shape, 3), np.uint8)
    if finite.any():
        lo, hi = np.percentile(band[finite], [2, 98])
        scaled = np.clip((np.where(finite, band, lo) - lo) / max(hi - lo, 1e-9), 0, 1)
        out[...] = (scaled * 255).astype(np.uint8)[..., None]
    return out


def ramp(values: np.ndarray, valid: np.ndarray, low: float, span: float) -> np.ndarray:
    """Values as brown (``low`` and below) to dark green (``low + span`` and above) RGB;
    :data:`NOT_SCORED` where not ``valid``."""
    t = np.clip((np.nan_to_num(values.astype(np.float64)) - low) / span, 0, 1)[..., None]
    rgb = (_BROWN * (1 - t) + _GREEN * t).astype(np.uint8)
    rgb[~valid] = NOT_SCORED
    return rgb


def tint(base: np.ndarray, where: np.ndarray, colour: np.ndarray, weight: float = 0.65) -> None:
    """Blend ``colour`` into ``base`` where ``where`` holds (in place)."""
    base[where] = ((1 - weight) * base[where] + weight * colour).astype(np.uint8)


def side_by_side(panels: list[np.ndarray], *, gap: int = GAP, min_height: int = 0) -> Image.Image:
    """The panels in a row with white gaps, scaled up (nearest) to ``min_height`` pixels."""
    from PIL import Image  # only where an image is made

    scale = max(1, -(-min_height // panels[0].shape[0])) if min_height else 1
    parts = [p.repeat(scale, axis=0).repeat(scale, axis=1) for p in panels]
    white = np.full((parts[0].shape[0], gap, 3), 255, np.uint8)
    row = [x for p in parts for x in (p, white)][:-1]
    return Image.fromarray(np.concatenate(row, axis=1))


def panel_boxes(width: int, n: int = RUN_PANELS, gap: int = GAP) -> list[tuple[int, int]] | None:
    """The ``(left, right)`` pixel columns of each of the ``n`` panels of an image
    ``width`` wide made by :func:`side_by_side`; None when ``width`` is not such a width.

    >>> panel_boxes(3 * 128 + 2 * GAP)
    [(0, 128), (134, 262), (268, 396)]
    >>> panel_boxes(100) is None
    True
    """
    inner = width - (n - 1) * gap
    if inner <= 0 or inner % n:
        return None
    w = inner // n
    return [(i * (w + gap), i * (w + gap) + w) for i in range(n)]
