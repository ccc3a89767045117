"""Data for the pix2pix baseline: splits in memory, input channels, the sensor mapping,
training augmentation and test-time augmentation.

Pure numpy and torch, no files written; :mod:`baselines.pix2pix` wires them together.

The second-sensor mapping. ndvi-synth's ``pretrain`` NDVI comes from a Sentinel-2-like
sensor with a systematic linear offset from the target (Planet-like) sensor, over other
areas and other dates than the target splits, so no pixel is seen by both sensors. What
the two sensors do share is Sentinel-1: the same backscatter physics links SAR to NDVI in
every area. ``sar-bins`` (the default) uses that link: farm pixels of both splits are
binned on their 5x5-smoothed (VV, VH) dB values; in every bin holding enough pixels of
both splits, the mean second-sensor NDVI of the pretrain pixels and the mean target NDVI
of the train pixels form one point, and a line is fitted through the points by least
squares weighted by the train pixel counts. Because the points are conditional means
given the same SAR, differences between the areas' crop calendars (how many pixels of
each growth stage each split holds) do not bias the line. ``quantiles`` matches the two
marginal NDVI distributions instead (a line through the 2nd..98th percentile pairs), which
assumes that both splits hold the same mix of growth stages; on ndvi-synth it lands
further from the true map. ``none`` keeps the second sensor's values. The study says only
that it uses "a linear regression model to correct the value ranges between Sentinel-2 and
the targeted dataset" (its section 3.2); what the line is fitted on is our choice.

Non-finite inputs (NaN, where an imported chip has no data; the importers mark those
pixels invalid). Every statistic is taken over finite values only: the train split's
channel means and standard deviations (:meth:`Featurizer.fit`), a chip's 99.5 % clip
bounds, the smoothed SAR of the ``sar-bins`` mapping. Before a chip's channels are made,
each band's non-finite values are filled with the median of that band's finite values in
the same chip (:func:`fill_nonfinite`; a band with no finite value at all takes the train
split's median of the band). So the prediction of a chip with a NaN pixel is the
prediction of the same chip with that median at the pixel; its other pixels stay finite.
The chip's 99.5 % bounds are the one thing that differs: they count the chip's finite
values, which the filled pixel is not. A median fill also moves with test-time
augmentation: a backscatter gain adds the same dB to every value and so to their median,
and flips do not change it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from baselines.sar_indexes import INDEX_NAMES, central_bounds, db_to_power, sar_index_stack
from sarbench_io.loader import SplitDir

MappingMethod = Literal["sar-bins", "quantiles", "none"]
MAPPING_METHODS: tuple[str, ...] = ("sar-bins", "quantiles", "none")
DB_NAMES: tuple[str, ...] = ("VV_db", "VH_db")
TTA_GAINS: tuple[float, ...] = (0.9, 1.0, 1.1)
"""Test-time multipliers of the backscatter, applied in linear power."""
TTA_FLIPS: tuple[tuple[bool, bool], ...] = (
    (False, False),
    (True, False),
    (False, True),
    (True, True),
)
"""(horizontal, vertical) flips of test-time augmentation: the whole flip group."""
AUG_SCALE = (0.8, 1.25)
"""Range of the training augmentation's zoom (drawn log-uniformly)."""


@dataclass(frozen=True, eq=False)
class SplitArrays:
    """A split in memory: inputs (N, 2, H, W) dB, target (N, H, W), valid (N, H, W) bool."""

    ids: tuple[str, ...]
    inputs: np.ndarray
    target: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def with_target(self, target: np.ndarray) -> SplitArrays:
        return SplitArrays(self.ids, self.inputs, target.astype(np.float32), self.valid)


def load_split(path: Path, max_chips: int = 0, seed: int = 0) -> SplitArrays:
    """Read a labelled split; ``max_chips`` > 0 keeps a seeded random subset of that size.

    A pixel whose target is not finite is not valid; targets outside the valid mask are
    never read and are set to 0 (the losses multiply by the mask, and NaN * 0 is NaN).
    """
    split = SplitDir(path)
    if not split.has_targets:
        raise ValueError(f"{path}: the split has no targets/ folder")
    ids = list(split.ids)
    if not ids:
        raise ValueError(f"{path}: the split has no chips")
    if 0 < max_chips < len(ids):
        keep = np.random.default_rng(seed).choice(len(ids), max_chips, replace=False)
        ids = [ids[i] for i in sorted(keep)]
    samples = [split.load(sid) for sid in ids]
    if samples[0].inputs.shape[0] != 2:
        raise ValueError(f"{path}: pix2pix expects 2 input bands (VV, VH dB)")
    target = np.stack([s.target for s in samples]).astype(np.float32)  # type: ignore[misc]
    valid = np.stack([s.valid_or_all() for s in samples]) & np.isfinite(target)
    return SplitArrays(
        ids=tuple(ids),
        inputs=np.stack([s.inputs for s in samples]).astype(np.float32),
        target=np.where(valid, target, np.float32(0.0)),
        valid=valid,
    )


# -- input channels ------------------------------------------------------------------------


def fill_nonfinite(inputs_db: np.ndarray, fallback_db: np.ndarray) -> np.ndarray:
    """A copy of one chip (2, H, W) whose non-finite values are filled, band by band, with
    the median of that band's finite values in the chip; a band with no finite value takes
    ``fallback_db`` (one value per band). A chip without such values is returned as is.

    >>> chip = np.array([[[1.0, np.nan, 3.0]], [[np.nan, np.nan, np.inf]]], np.float32)
    >>> fill_nonfinite(chip, np.array([0.0, -20.0], np.float32)).tolist()
    [[[1.0, 2.0, 3.0]], [[-20.0, -20.0, -20.0]]]
    """
    finite = np.isfinite(inputs_db)
    if finite.all():
        return inputs_db
    out = np.array(inputs_db, dtype=np.float32, copy=True)
    for band, ok in enumerate(finite):
        if ok.all():
            continue
        values = out[band][ok]
        fill = np.median(values) if values.size else fallback_db[band]
        out[band][~ok] = fill
    return out


@dataclass(frozen=True, eq=False)
class Featurizer:
    """Input channels of a chip: the SAR indexes or the dB bands, standardised per channel.

    ``mean`` and ``std`` come from the train split's finite pixels (:meth:`fit`), and so
    does ``fill_db``, each band's median dB there, the fill of a chip band without any
    finite value; all three travel with the model. Non-finite input values are filled
    first (:func:`fill_nonfinite`, and the module docstring).
    """

    sar_indexes: bool
    mean: np.ndarray
    std: np.ndarray
    fill_db: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        return INDEX_NAMES if self.sar_indexes else DB_NAMES

    @staticmethod
    def raw(inputs_db: np.ndarray, sar_indexes: bool, fill_db: np.ndarray) -> np.ndarray:
        """(C, H, W) float32 channels of one (2, H, W) dB chip, filled, before standardising.

        The chip's 99.5 % clip bounds are taken over its finite VV values before filling.
        """
        filled = fill_nonfinite(inputs_db, fill_db)
        if not sar_indexes:
            return filled.astype(np.float32)
        bounds = None
        if filled is not inputs_db:  # something was filled: bounds from the finite values
            vv = inputs_db[0]
            bounds = central_bounds(db_to_power(vv[np.isfinite(vv)]))  # -inf dB is 0 power
        return sar_index_stack(filled[0], filled[1], vv_bounds=bounds)

    @classmethod
    def fit(cls, inputs_db: np.ndarray, sar_indexes: bool) -> Featurizer:
        """Per-channel mean and standard deviation over the pixels of ``inputs_db`` chips
        whose two bands are finite, and each band's median over its finite values."""
        fill = []
        for band in range(inputs_db.shape[1]):
            values = inputs_db[:, band]
            values = values[np.isfinite(values)]
            if values.size == 0:
                raise ValueError(f"band {band + 1} has no finite value in any chip")
            fill.append(np.median(values))
        fill_db = np.asarray(fill, np.float32)
        total = total_sq = None
        count = 0
        for chip in inputs_db:
            finite = np.isfinite(chip).all(axis=0)
            raw = cls.raw(chip, sar_indexes, fill_db).astype(np.float64)[:, finite]
            s, sq = raw.sum(axis=1), (raw**2).sum(axis=1)
            total = s if total is None else total + s
            total_sq = sq if total_sq is None else total_sq + sq
            count += raw.shape[1]
        if total is None or total_sq is None or count == 0:
            raise ValueError("cannot fit the input normalisation: no pixel with finite bands")
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError(f"the input channels' statistics are not finite: {mean}, {std}")
        return cls(
            sar_indexes,
            mean.astype(np.float32),
            np.maximum(std, 1e-6).astype(np.float32),
            fill_db,
        )

    def __call__(self, inputs_db: np.ndarray) -> np.ndarray:
        """Standardised channels of one chip (2, H, W) or a stack (N, 2, H, W)."""
        if inputs_db.ndim == 4:
            return np.stack([self(chip) for chip in inputs_db])
        raw = self.raw(inputs_db, self.sar_indexes, self.fill_db)
        return ((raw - self.mean[:, None, None]) / self.std[:, None, None]).astype(np.float32)


# -- the second-sensor mapping ---------------------------------------------------------------


@dataclass(frozen=True)
class LinearMap:
    """``target = gain * source + offset``: second-sensor NDVI onto the target sensor."""

    gain: float = 1.0
    offset: float = 0.0
    method: str = "none"

    def __call__(self, ndvi: np.ndarray) -> np.ndarray:
        return np.clip(self.gain * ndvi + self.offset, -1.0, 1.0).astype(np.float32)


def weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """(gain, offset) of the weighted least-squares line y = gain * x + offset."""
    w = np.ones_like(x) if w is None else w
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    var = float(np.average((x - xm) ** 2, weights=w))
    if var <= 0:
        raise ValueError("cannot fit a line: the source values do not vary")
    gain = float(np.average((x - xm) * (y - ym), weights=w)) / var
    return gain, float(ym - gain * xm)


def fit_quantile_map(source: np.ndarray, target: np.ndarray) -> LinearMap:
    """Line through matched 2nd..98th percentiles of two samples of NDVI values."""
    q = np.linspace(0.02, 0.98, 97)
    gain, offset = weighted_line(np.quantile(source, q), np.quantile(target, q))
    return LinearMap(gain, offset, "quantiles")


def box_smooth(inputs_db: np.ndarray, size: int = 5) -> np.ndarray:
    """Mean of the finite values in a ``size`` x ``size`` window (border windows shrink),
    (N, C, H, W); NaN where a window holds none."""
    finite = np.isfinite(inputs_db)
    x = torch.from_numpy(np.ascontiguousarray(np.where(finite, inputs_db, 0.0), np.float32))
    n = torch.from_numpy(np.ascontiguousarray(finite, np.float32))

    def pool(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, size, stride=1, padding=size // 2, count_include_pad=False)

    if finite.all():
        return pool(x).numpy()
    return (pool(x) / pool(n)).numpy()  # 0 / 0 is NaN where a window has no finite value


def fit_sar_bins_map(
    source: SplitArrays, target: SplitArrays, n_bins: int = 40, min_count: int = 20
) -> LinearMap:
    """Line through conditional NDVI means of both sensors given the same smoothed SAR.

    See the module docstring. Bins are quantile bins of the pooled farm pixels' smoothed VV
    and VH (``n_bins`` each); a bin counts when both splits have ``min_count`` pixels in it.
    A farm pixel whose smoothing window holds no finite SAR value takes no part.
    """
    s_sar = box_smooth(source.inputs).transpose(1, 0, 2, 3)[:, source.valid]
    t_sar = box_smooth(target.inputs).transpose(1, 0, 2, 3)[:, target.valid]
    s_ok, t_ok = np.isfinite(s_sar).all(axis=0), np.isfinite(t_sar).all(axis=0)
    s_sar, t_sar = s_sar[:, s_ok], t_sar[:, t_ok]
    pooled = np.concatenate([s_sar, t_sar], axis=1)
    levels = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    edges = [np.quantile(pooled[b], levels) for b in range(2)]

    def bin_of(sar: np.ndarray) -> np.ndarray:
        return np.digitize(sar[0], edges[0]) * n_bins + np.digitize(sar[1], edges[1])

    n = n_bins * n_bins
    s_bin, t_bin = bin_of(s_sar), bin_of(t_sar)
    s_count, t_count = np.bincount(s_bin, minlength=n), np.bincount(t_bin, minlength=n)
    s_sum = np.bincount(s_bin, source.target[source.valid][s_ok], minlength=n)
    t_sum = np.bincount(t_bin, target.target[target.valid][t_ok], minlength=n)
    ok = (s_count >= min_count) & (t_count >= min_count)
    if ok.sum() < 3:
        raise ValueError(
            f"the sar-bins mapping found {int(ok.sum())} SAR bins shared by both splits; "
            "use mapping = 'quantiles'"
        )
    gain, offset = weighted_line(s_sum[ok] / s_count[ok], t_sum[ok] / t_count[ok], t_count[ok])
    return LinearMap(gain, offset, "sar-bins")


def fit_mapping(source: SplitArrays, target: SplitArrays, method: MappingMethod) -> LinearMap:
    """The second-sensor mapping (see the module docstring), fitted on farm pixels."""
    if method == "none":
        return LinearMap()
    if method == "quantiles":
        return fit_quantile_map(source.target[source.valid], target.target[target.valid])
    return fit_sar_bins_map(source, target)


# -- training augmentation -------------------------------------------------------------------


def augment(batch: torch.Tensor, generator: torch.Generator, size: int = 0) -> torch.Tensor:
    """Random rotation, zoom, flips and (with ``size``) a random crop, alike for all channels.

    ``batch`` (N, C, H, W) stacks a sample's inputs, target and valid mask on channels, so
    they stay aligned. The output is ``size`` x ``size`` (0: H x W), centred anywhere in
    the chip. Nearest-neighbour sampling keeps the mask binary and the SAR speckle
    statistics as they are; borders are filled by reflection.
    """
    n, _, h, w = batch.shape
    out_h, out_w = (size, size) if size > 0 else (h, w)
    angle = (torch.rand(n, generator=generator) * 2.0 - 1.0) * math.pi
    lo, hi = math.log(AUG_SCALE[0]), math.log(AUG_SCALE[1])
    zoom = torch.exp(lo + (hi - lo) * torch.rand(n, generator=generator))
    flip = torch.where(torch.rand(n, 2, generator=generator) < 0.5, -1.0, 1.0)
    shift = (torch.rand(n, 2, generator=generator) * 2.0 - 1.0) * torch.tensor(
        [1.0 - out_w / w, 1.0 - out_h / h]
    )
    # In pixels, output offset q from the crop centre samples the input at
    # R(angle) diag(flip) q / zoom from the (shifted) centre; theta is that map between
    # normalised coordinates (the output spans out_w x out_h pixels, the input w x h).
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    fx, fy = flip[:, 0] * out_w, flip[:, 1] * out_h
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cos * fx / w, -sin * fy / w, shift[:, 0]
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sin * fx / h, cos * fy / h, shift[:, 1]
    theta = theta.to(batch.device, batch.dtype)
    grid = F.affine_grid(theta, [n, batch.shape[1], out_h, out_w], align_corners=False)
    return F.grid_sample(
        batch, grid, mode="nearest", padding_mode="reflection", align_corners=False
    )


def random_crop(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``size`` x ``size`` window of every sample (all channels alike)."""
    n, _, h, w = batch.shape
    if size <= 0 or (size >= h and size >= w):
        return batch
    if size > h or size > w:
        raise ValueError(f"crop {size} is larger than the chips ({h}x{w})")
    top = torch.randint(0, h - size + 1, (n,), generator=generator).tolist()
    left = torch.randint(0, w - size + 1, (n,), generator=generator).tolist()
    return torch.stack(
        [
            batch[i, :, t : t + size, q : q + size]
            for i, (t, q) in enumerate(zip(top, left, strict=True))
        ]
    )


# -- test-time augmentation -----------------------------------------------------------------


def flip(x: np.ndarray, horizontal: bool, vertical: bool) -> np.ndarray:
    """Flip the last two axes of ``x`` (its own inverse)."""
    if horizontal:
        x = x[..., ::-1]
    if vertical:
        x = x[..., ::-1, :]
    return x


def tta_predict(
    predict: Callable[[np.ndarray], np.ndarray],
    inputs_db: np.ndarray,
    gains: tuple[float, ...] = TTA_GAINS,
    flips: tuple[tuple[bool, bool], ...] = TTA_FLIPS,
) -> np.ndarray:
    """Mean prediction over flipped and rescaled copies of one chip, each flipped back.

    ``predict`` maps dB chips (K, 2, H, W) to (K, H, W). A gain multiplies the backscatter
    in linear power, i.e. adds ``10 log10(gain)`` dB to both bands.
    """
    copies = [
        flip(inputs_db + np.float32(10.0 * math.log10(g)), h, v) for g in gains for h, v in flips
    ]
    preds = predict(np.ascontiguousarray(np.stack(copies), dtype=np.float32))
    back = [
        flip(p, h, v) for p, (h, v) in zip(preds, [f for _ in gains for f in flips], strict=True)
    ]
    return np.mean(np.stack(back), axis=0, dtype=np.float64).astype(np.float32)
