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

from harness import quicklook as ql
from harness.datasets.layout import SUFFIX
from harness.datasets.loader import Sample, SplitDir
from harness.errors import DataFileError
from harness.scoring.validate import PredictionError, read_prediction
from harness.settings import Settings
from harness.tasks import get_task

QUICKLOOKS = 4
MIN_PANEL = 128


@dataclass(frozen=True)
class Quicklooks:
    """PNG files written, or why there are none (never silent)."""

    files: tuple[Path, ...]
    note: str = ""


def panels(sample: Sample, prediction: np.ndarray, task: str) -> list[np.ndarray]:
    """Input, truth and prediction panels (RGB uint8 arrays) of one chip."""
    if sample.target is None:
        raise ValueError(f"chip {sample.id} has no target to show")
    return get_task(task).target.run_panels(sample, prediction)


def render(sample: Sample, prediction: np.ndarray, task: str) -> Image.Image:
    """The three panels side by side, scaled up (nearest) to at least 128 pixels high."""
    return ql.side_by_side(panels(sample, prediction, task), min_height=MIN_PANEL)


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
    chosen = [sid for sid in ql.spread(sorted(chip_ids), QUICKLOOKS) if sid in set(split.ids)]
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
