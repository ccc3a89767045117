"""Classical change detection: one threshold on the backscatter change (numpy only).

Flooding turns rough ground into smooth open water, which mirrors the radar pulse away
from the sensor, so the post-event VV backscatter drops. The feature is the change
``post_dB - pre_dB`` (band 2 minus band 1): the log-ratio of the two intensities, so a
"ratio" method would draw exactly the same masks. A pixel is flooded where the feature is
**below** a threshold ``t``; the direction is fixed by the physics, not fitted.

``t`` is chosen on the training splits (``train`` and ``val`` where mounted):

- ``selection = "best-iou"``: the ``t`` of a 0.01 dB grid that maximises the IoU of the
  flood class pooled over every valid pixel of train+val (the labels pick ``t``);
- ``selection = "otsu"``: Otsu's threshold of the histogram of the feature over the same
  pixels (the labels are not used: the unsupervised classic).

Options also allow ``smooth_px`` (a square mean filter of that side, applied to each band
in linear power before the change is taken, as in the UN-SPIDER recommended practice whose
masks the flood study follows; 0 = none) and ``method = "band"``, which thresholds one
band alone (``band``, 0-based): the single-date water map for datasets whose two bands
are not a pre/post pair, such as Sen1Floods11's VV/VH (water is dark in VV).

**Band roles** (``run.json``'s ``dataset.band_roles``) decide what may run, and a run on
bands that do not fit is refused: ``method = "difference"`` needs ``pre``/``post`` (on
VV/VH the "change" VH - VV is no change at all, and its threshold marks about everything
as water); ``method = "band"`` needs the chosen band to be an image of the event: ``VV``
of a VV/VH pair or ``post`` of a pre/post pair (``band = 0`` of pre/post is the image
before the flood).

``train`` writes ``/model/threshold.json``; ``predict`` reads it. Predictions are uint8
{0, 1}; a pixel whose feature is undefined (NaN input) is written 0.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baselines.contract import (
    ContractError,
    Paths,
    RunConfig,
    log,
    progress,
    require_roles,
    require_task,
    resolve_options,
    write_loss_curve,
    write_options,
)
from sarbench_io.bands import POST, PRE_POST, VV, layout_text
from sarbench_io.geo import write_raster
from sarbench_io.loader import Sample, SplitDir

MODEL_FILE = "threshold.json"
GRID_LO, GRID_HI, GRID_STEP = -60.0, 60.0, 0.01
"""The candidate thresholds (dB); features outside the range are clipped into it."""
METHODS = ("difference", "band")
SELECTIONS = ("best-iou", "otsu")
EVENT_IMAGE_ROLES = (VV, POST)
"""The roles of a band that ``method = "band"`` may threshold: an image of the event."""


@dataclass(frozen=True)
class ThresholdOptions:
    """Options of the threshold baseline (see the module docstring)."""

    model: str = "threshold"
    method: str = "difference"
    selection: str = "best-iou"
    band: int = 0
    smooth_px: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(
                f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}"
            )
        if self.smooth_px < 0 or self.band < 0:
            raise ValueError("smooth_px and band must be >= 0")


def box_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Mean of the finite values of ``a`` (H, W) in a ``size`` x ``size`` window (reflected
    edges); NaN where the window holds no finite value."""
    if size <= 1:
        return a.astype(np.float64)
    finite = np.isfinite(a)
    lo, hi = size // 2, size - 1 - size // 2

    def box_sum(v: np.ndarray) -> np.ndarray:
        p = np.pad(v, ((lo, hi), (lo, hi)), mode="reflect")
        c = np.zeros((p.shape[0] + 1, p.shape[1] + 1))
        c[1:, 1:] = p.cumsum(0).cumsum(1)
        return c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]

    total = box_sum(np.where(finite, a, 0.0).astype(np.float64))
    count = box_sum(finite.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0.5, total / np.maximum(count, 1.0), np.nan)


def smoothed_db(band_db: np.ndarray, size: int) -> np.ndarray:
    """A dB band mean-filtered in linear power (speckle is multiplicative)."""
    if size <= 1:
        return band_db.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 10.0 * np.log10(box_mean(10.0 ** (band_db.astype(np.float64) / 10.0), size))


def feature(inputs: np.ndarray, opts: ThresholdOptions) -> np.ndarray:
    """The thresholded quantity of one chip (H, W); NaN where undefined."""
    if opts.method == "band":
        if opts.band >= inputs.shape[0]:
            raise ContractError(f"band {opts.band} asked, the inputs have {inputs.shape[0]}")
        return smoothed_db(inputs[opts.band], opts.smooth_px)
    if inputs.shape[0] != 2:
        raise ContractError(f"method 'difference' needs 2 bands (pre, post), got {inputs.shape[0]}")
    return smoothed_db(inputs[1], opts.smooth_px) - smoothed_db(inputs[0], opts.smooth_px)


@dataclass
class Histograms:
    """Counts of the feature of flooded and dry valid pixels on the threshold grid."""

    flood: np.ndarray
    dry: np.ndarray

    @classmethod
    def empty(cls) -> Histograms:
        n = round((GRID_HI - GRID_LO) / GRID_STEP)
        return cls(np.zeros(n, np.int64), np.zeros(n, np.int64))

    def add(self, f: np.ndarray, target: np.ndarray, valid: np.ndarray) -> None:
        keep = valid & np.isfinite(f)
        n = self.flood.size
        idx = np.clip(np.floor((f[keep] - GRID_LO) / GRID_STEP), 0, n - 1).astype(np.int64)
        wet = target[keep] == 1
        self.flood += np.bincount(idx[wet], minlength=n)
        self.dry += np.bincount(idx[~wet], minlength=n)

    def edges(self) -> np.ndarray:
        """Candidate thresholds: ``edges[k]`` counts bins ``< k`` as flooded."""
        return GRID_LO + GRID_STEP * np.arange(self.flood.size + 1)

    def iou_curve(self) -> np.ndarray:
        """Pooled flood IoU of ``feature < edges[k]`` for every k."""
        tp = np.concatenate([[0], np.cumsum(self.flood)])
        fp = np.concatenate([[0], np.cumsum(self.dry)])
        fn = self.flood.sum() - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tp + fp + fn > 0, tp / np.maximum(tp + fp + fn, 1), 0.0)

    def otsu(self) -> float:
        """Otsu's threshold of all valid pixels (labels unused): maximal between-class
        variance of the two sides."""
        counts = (self.flood + self.dry).astype(np.float64)
        centres = GRID_LO + GRID_STEP * (np.arange(counts.size) + 0.5)
        w0 = np.cumsum(counts)[:-1]
        w1 = counts.sum() - w0
        m0 = np.cumsum(counts * centres)[:-1]
        total = float((counts * centres).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            between = w0 * w1 * (m0 / w0 - (total - m0) / w1) ** 2
        between = np.where((w0 > 0) & (w1 > 0), between, -1.0)
        return float(self.edges()[1 + int(np.argmax(between))])


def _flood_mask(sample: Sample, opts: ThresholdOptions, t: float) -> np.ndarray:
    f = feature(sample.inputs, opts)
    return (np.isfinite(f) & (f < t)).astype(np.uint8)


def check_roles(config: RunConfig, opts: ThresholdOptions) -> None:
    """Refuse (a :class:`ContractError`) bands whose roles the method cannot use (see the
    module docstring)."""
    if opts.method == "difference":
        require_roles(config, PRE_POST, what="method 'difference': post minus pre")
        return
    roles = config.band_roles
    role = roles[opts.band] if roles is not None and opts.band < len(roles) else None
    if role not in EVENT_IMAGE_ROLES:
        what = f"band {opts.band} is {role}" if role else f"band {opts.band} has no known role"
        raise ContractError(
            f"{config.entry}/{config.variant} (method 'band') thresholds one image of the "
            f"event ({' or '.join(EVENT_IMAGE_ROLES)}); {what} (bands of {config.dataset}: "
            f"{', '.join(config.bands)}, roles {layout_text(roles)})"
        )


def train(config: RunConfig, paths: Paths) -> None:
    """Pick the threshold on train+val and write it to ``/model/threshold.json``."""
    require_task(config, "flood")
    opts = resolve_options(ThresholdOptions, config.options)
    check_roles(config, opts)
    write_options(paths, opts)
    splits = [s for s in ("train", "val") if paths.has_split(s)]
    if not splits:
        raise ContractError("no training split mounted (expected /data/train or /data/val)")
    per_split: dict[str, Histograms] = {}
    for name in splits:
        split = SplitDir(paths.split(name))
        if not split.has_targets:
            raise ContractError(f"{split.path}: the {name} split has no targets/")
        hist = Histograms.empty()
        for sample in progress(split, len(split), f"features of {name}"):
            assert sample.target is not None
            hist.add(feature(sample.inputs, opts), sample.target, sample.valid_or_all())
        per_split[name] = hist
    pooled = Histograms.empty()
    for hist in per_split.values():
        pooled.flood += hist.flood
        pooled.dry += hist.dry
    if not (pooled.flood.sum() + pooled.dry.sum()):
        raise ContractError(f"no valid pixel with a defined feature in {', '.join(splits)}")
    curve = pooled.iou_curve()
    edges = pooled.edges()
    if opts.selection == "best-iou":
        k = int(np.argmax(curve))
        t = float(edges[k])
    else:
        t = pooled.otsu()
        k = int(np.searchsorted(edges, t))
    fit = {name: float(h.iou_curve()[k]) for name, h in per_split.items()}
    log(
        f"threshold {t:+.2f} dB ({opts.selection}, {opts.method}): pooled IoU "
        f"{curve[k]:.4f} on {'+'.join(splits)} "
        f"({', '.join(f'{n} {v:.4f}' for n, v in fit.items())})"
    )
    # the IoU against the threshold, every 0.1 dB where there are pixels
    used = np.flatnonzero(pooled.flood + pooled.dry)
    rows = [
        {"threshold_db": round(float(edges[i]), 2), "pooled_iou": round(float(curve[i]), 6)}
        for i in range(used[0], used[-1] + 2, 10)
    ]
    write_loss_curve(paths, rows, name="threshold_curve.csv")
    doc: dict[str, Any] = {
        "model": "threshold",
        "options": dataclasses.asdict(opts),
        "threshold_db": t,
        "direction": "flood where feature < threshold",
        "fit_iou": {"pooled": float(curve[k]), **fit},
        "bands": list(config.bands),
        "band_roles": None if config.band_roles is None else list(config.band_roles),
    }
    (paths.model / MODEL_FILE).write_text(json.dumps(doc, indent=1))


def load_model(path: Path) -> tuple[ThresholdOptions, float]:
    """The options and threshold written by :func:`train`."""
    try:
        doc = json.loads(path.read_text())
        return ThresholdOptions(**doc["options"]), float(doc["threshold_db"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContractError(f"{path}: not a threshold model written by train ({exc})") from exc


def predict(config: RunConfig, paths: Paths) -> None:
    """Write one uint8 {0, 1} flood mask per test input, on its grid."""
    require_task(config, "flood")
    opts, t = load_model(paths.model / MODEL_FILE)
    check_roles(config, opts)
    split = SplitDir(paths.test_inputs)
    log(f"threshold {t:+.2f} dB on {len(split)} chip(s)")
    paths.output.mkdir(parents=True, exist_ok=True)
    for sample in progress(split, len(split), "predict"):
        write_raster(paths.output / f"{sample.id}.tif", _flood_mask(sample, opts, t), sample.grid)
