"""Tasks, declared once as data. Adding a task touches this file only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.errors import UnknownNameError


@dataclass(frozen=True)
class Task:
    """What a task takes, what it predicts, and how it is ranked.

    ``input_bands`` is the number of bands of every input GeoTIFF; their meaning is the
    dataset's (its manifest names them). Predictions are one single-band GeoTIFF per test
    input with ``prediction_dtype`` and values in ``prediction_range`` (a closed interval;
    for a binary mask the only allowed values are its two ends).
    """

    name: str
    description: str
    input_bands: int
    target_kind: Literal["binary_mask", "continuous"]
    target_dtype: str
    prediction_dtype: str
    prediction_range: tuple[float, float]
    primary_metric: str
    higher_is_better: bool
    secondary_metrics: tuple[str, ...]


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            name="flood",
            description="binary flood segmentation from a 2-band Sentinel-1 chip",
            input_bands=2,
            target_kind="binary_mask",
            target_dtype="uint8",
            prediction_dtype="uint8",
            prediction_range=(0, 1),
            primary_metric="iou",
            higher_is_better=True,
            secondary_metrics=("miou", "precision", "recall", "f1", "accuracy"),
        ),
        Task(
            name="ndvi",
            description="Sentinel-1 VV/VH sigma0 to NDVI image translation",
            input_bands=2,
            target_kind="continuous",
            target_dtype="float32",
            prediction_dtype="float32",
            prediction_range=(-1.0, 1.0),
            primary_metric="mse",
            higher_is_better=False,
            secondary_metrics=("rmse", "mae", "bias", "r2", "psnr", "ssim", "mse_all"),
        ),
    )
}


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name gets a suggestion."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError("task", name, TASKS) from None
