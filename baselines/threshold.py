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

**Non-finite inputs** (NaN nodata, inf): every statistic is fitted on finite values only
(the threshold's histograms: valid pixels whose bands are all finite; each band's mean:
its finite values at valid pixels of train+val). Before the feature is taken, a non-finite
input value is filled with its band's mean (in dB, saved in the model as ``fill_db``), in
training and in prediction alike: a NaN pixel is then the same input as that fill value,
so it changes no other pixel's mask beyond what the fill value would (with ``smooth_px``,
its neighbours' windows see the fill value), and the feature is finite everywhere. A
feature that is still not finite (inputs beyond the float range) fails the phase rather
than being written as dry.

``train`` writes ``/model/threshold.json``; ``predict`` reads it. Predictions are uint8
{0, 1}.
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
from sarbench_io.loader import SplitDir

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


FILL_RULE = "non-finite input values: the band's train+val mean in dB (fill_db)"
"""What :func:`fill_inputs` does (written into the model)."""


def band_means(splits: list[SplitDir]) -> list[float]:
    """Each band's mean (dB) over its finite values at the valid pixels of ``splits``."""
    total: np.ndarray | None = None
    count: np.ndarray | None = None
    for split in splits:
        for sample in progress(split, len(split), f"band means of {split.path.name}"):
            x = sample.inputs.astype(np.float64)
            keep = sample.valid_or_all()[None] & np.isfinite(x)
            sums, n = np.where(keep, x, 0.0).sum(axis=(1, 2)), keep.sum(axis=(1, 2))
            total = sums if total is None else total + sums
            count = n if count is None else count + n
    if total is None or count is None or (count == 0).any():
        raise ContractError("a band has no finite value at a valid pixel to fit its mean on")
    return [float(v) for v in total / count]


def fill_inputs(inputs: np.ndarray, fill_db: list[float]) -> np.ndarray:
    """``inputs`` (C, H, W) with each non-finite value replaced by its band's ``fill_db``."""
    if inputs.shape[0] != len(fill_db):
        raise ContractError(f"{inputs.shape[0]} input band(s), the model has {len(fill_db)}")
    fill = np.asarray(fill_db, dtype=np.float64)[:, None, None]
    return np.where(np.isfinite(inputs), inputs, fill)


def feature(inputs: np.ndarray, opts: ThresholdOptions) -> np.ndarray:
    """The thresholded quantity of one chip (H, W); NaN where undefined (a non-finite input
    not filled first)."""
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


def flood_mask(inputs: np.ndarray, model: ThresholdModel) -> np.ndarray:
    """The uint8 {0, 1} mask of one chip (C, H, W): its inputs filled, then thresholded; a
    feature that is not finite even so is a :class:`ContractError`, never a dry pixel."""
    f = feature(fill_inputs(inputs, model.fill_db), model.options)
    bad = int(f.size - np.count_nonzero(np.isfinite(f)))
    if bad:
        raise ContractError(
            f"the feature is not finite at {bad} pixel(s) after filling (inputs beyond the "
            "float range?); no mask is written for them"
        )
    return (f < model.threshold_db).astype(np.uint8)


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
    dirs = {name: SplitDir(paths.split(name)) for name in splits}
    for name, split in dirs.items():
        if not split.has_targets:
            raise ContractError(f"{split.path}: the {name} split has no targets/")
    fill_db = band_means(list(dirs.values()))
    log(f"band means {[round(m, 3) for m in fill_db]} dB; {FILL_RULE}")
    per_split: dict[str, Histograms] = {}
    for name, split in dirs.items():
        hist = Histograms.empty()
        for sample in progress(split, len(split), f"features of {name}"):
            assert sample.target is not None
            f = feature(fill_inputs(sample.inputs, fill_db), opts)
            keep = sample.valid_or_all() & np.isfinite(sample.inputs).all(0)
            hist.add(f, sample.target, keep)
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
        "fill_db": fill_db,
        "input_fill": FILL_RULE,
        "fit_iou": {"pooled": float(curve[k]), **fit},
        "bands": list(config.bands),
        "band_roles": None if config.band_roles is None else list(config.band_roles),
    }
    (paths.model / MODEL_FILE).write_text(json.dumps(doc, indent=1))


@dataclass(frozen=True)
class ThresholdModel:
    """What :func:`train` writes: the options, the threshold and the input fill values."""

    options: ThresholdOptions
    threshold_db: float
    fill_db: list[float]


def load_model(path: Path) -> ThresholdModel:
    """The model written by :func:`train`."""
    try:
        doc = json.loads(path.read_text())
        fill = [float(v) for v in doc["fill_db"]]
        return ThresholdModel(ThresholdOptions(**doc["options"]), float(doc["threshold_db"]), fill)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContractError(f"{path}: not a threshold model written by train ({exc})") from exc


def predict(config: RunConfig, paths: Paths) -> None:
    """Write one uint8 {0, 1} flood mask per test input, on its grid."""
    require_task(config, "flood")
    model = load_model(paths.model / MODEL_FILE)
    check_roles(config, model.options)
    split = SplitDir(paths.test_inputs)
    log(f"threshold {model.threshold_db:+.2f} dB on {len(split)} chip(s)")
    paths.output.mkdir(parents=True, exist_ok=True)
    filled = 0
    for sample in progress(split, len(split), "predict"):
        filled += int((~np.isfinite(sample.inputs)).sum())
        try:
            mask = flood_mask(sample.inputs, model)
        except ContractError as exc:
            raise ContractError(f"test chip {sample.id}: {exc}") from exc
        write_raster(paths.output / f"{sample.id}.tif", mask, sample.grid)
    log(f"{filled} non-finite input value(s) filled: {FILL_RULE} {model.fill_db}")
