"""Prediction quicklooks: PNGs of a few test chips, made on the harness side.

Each PNG has three panels: an input band in grey, the truth, and the prediction. Flood:
the truth is the flood mask in blue over the post-event band; the prediction panel marks
hits blue, false alarms red and misses orange. NDVI: truth and prediction in the same
brown-to-green colours, grey where a pixel is not scored. The chips are spread evenly over
the sorted chip ids, so every entry of a dataset shows the same chips.

The hidden test targets are read from the data root (``<data root>/<dataset>/test``) with
the dataset loader; the predictions from the run folder's ``predictions/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from harness.datasets.layout import SUFFIX
from harness.datasets.loader import Sample, SplitDir
from harness.errors import DataFileError
from harness.scoring.validate import PredictionError, read_prediction
from harness.settings import Settings

QUICKLOOKS = 4
MIN_PANEL = 128
FLOOD_BLUE = np.array([30, 110, 255])
FALSE_RED = np.array([230, 40, 40])
MISS_ORANGE = np.array([255, 170, 0])
NOT_SCORED = (90, 90, 90)


@dataclass(frozen=True)
class Quicklooks:
    """PNG files written, or why there are none (never silent)."""

    files: tuple[Path, ...]
    note: str = ""


def spread(ids: list[str], k: int = QUICKLOOKS) -> list[str]:
    """Up to ``k`` of the sorted ``ids``, spread evenly from the first to the last."""
    ids = sorted(ids)
    if len(ids) <= k:
        return ids
    return [ids[round(i * (len(ids) - 1) / (k - 1))] for i in range(k)]


def _grey(band: np.ndarray) -> np.ndarray:
    finite = np.isfinite(band)
    out = np.zeros((*band.shape, 3), np.uint8)
    if finite.any():
        lo, hi = np.percentile(band[finite], [2, 98])
        scaled = np.clip((np.where(finite, band, lo) - lo) / max(hi - lo, 1e-9), 0, 1)
        out[...] = (scaled * 255).astype(np.uint8)[..., None]
    return out


def _tint(base: np.ndarray, where: np.ndarray, colour: np.ndarray) -> None:
    base[where] = (0.35 * base[where] + 0.65 * colour).astype(np.uint8)


def _ndvi(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    t = np.clip((np.nan_to_num(values.astype(np.float64)) + 0.2) / 1.1, 0, 1)[..., None]
    rgb = (np.array([150, 110, 60]) * (1 - t) + np.array([20, 120, 30]) * t).astype(np.uint8)
    rgb[~valid] = NOT_SCORED
    return rgb


def panels(sample: Sample, prediction: np.ndarray, task: str) -> list[np.ndarray]:
    """Input, truth and prediction panels (RGB uint8 arrays) of one chip."""
    if sample.target is None:
        raise ValueError(f"chip {sample.id} has no target to show")
    valid = sample.valid_or_all()
    if task == "flood":
        band = _grey(sample.inputs[-1])
        truth, pred = band.copy(), band.copy()
        wet, said = (sample.target == 1) & valid, (prediction == 1) & valid
        _tint(truth, wet, FLOOD_BLUE)
        _tint(pred, wet & said, FLOOD_BLUE)
        _tint(pred, said & ~wet, FALSE_RED)
        _tint(pred, wet & ~said, MISS_ORANGE)
        truth[~valid] = pred[~valid] = NOT_SCORED
        return [band, truth, pred]
    return [_grey(sample.inputs[0]), _ndvi(sample.target, valid), _ndvi(prediction, valid)]


def render(sample: Sample, prediction: np.ndarray, task: str) -> Image.Image:
    """The three panels side by side, scaled up (nearest) to at least 128 pixels high."""
    parts = panels(sample, prediction, task)
    scale = max(1, -(-MIN_PANEL // parts[0].shape[0]))
    parts = [p.repeat(scale, axis=0).repeat(scale, axis=1) for p in parts]
    gap = np.full((parts[0].shape[0], 6, 3), 255, np.uint8)
    row = np.concatenate([parts[0], gap, parts[1], gap, parts[2]], axis=1)
    return Image.fromarray(row)


def write_quicklooks(
    settings: Settings,
    dataset: str,
    task: str,
    chip_ids: list[str],
    predictions: Path,
    out_dir: Path,
) -> Quicklooks:
    """Write ``<out_dir>/<chip id>.png`` for a few chips; a note says why when none can be."""
    test = settings.dataset_dir(dataset) / "test"
    if not (test / "targets").is_dir():
        return Quicklooks((), f"no quicklooks: test targets not found under {test}")
    if not predictions.is_dir():
        return Quicklooks((), f"no quicklooks: {predictions} is missing")
    split = SplitDir(test)
    chosen = [sid for sid in spread(chip_ids) if sid in set(split.ids)]
    if not chosen:
        return Quicklooks((), f"no quicklooks: none of the scored chips is in {test}")
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for sid in chosen:
        pred_path = predictions / f"{sid}{SUFFIX}"
        sample = split.load(sid)
        try:  # validated when scored; read again under the same guards (band 1 only)
            prediction = read_prediction(pred_path)
        except PredictionError as exc:
            return Quicklooks(tuple(files), f"no more quicklooks: {exc.lines()[0]}")
        if prediction.shape != sample.grid.shape:
            raise DataFileError(pred_path, f"shape {prediction.shape} is not the chip's")
        path = out_dir / f"{sid}.png"
        render(sample, prediction, task).save(path)
        files.append(path)
    return Quicklooks(tuple(files))
