"""What a dataset source (a generator or an importer) hands to the freezer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from harness.geo import Grid


@dataclass
class SampleRecord:
    """One sample as a source produces it, before it is written.

    - ``inputs``: (bands, H, W) float32, in the dataset's band order;
    - ``target``: (H, W) in the task's target dtype, or ``None`` where the split has none;
    - ``valid``: (H, W) bool or uint8, 1 where a pixel is scored; ``None`` = all valid;
    - ``input_nodata``: the nodata value of the inputs (``nan`` for Sen1Floods11), if any;
    - ``meta``: small JSON-able facts about the sample (event, date, area...), recorded in
      the manifest.
    """

    split: str
    id: str
    inputs: np.ndarray
    grid: Grid
    target: np.ndarray | None = None
    valid: np.ndarray | None = None
    input_nodata: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class DatasetSource(Protocol):
    """A generator or an importer: knows its dataset and yields its samples."""

    name: str
    task: str
    bands: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        """The manifest's ``source`` block: kind, generator/importer, version, seed, params.

        It is recorded but is not part of the dataset digest.
        """
        ...

    def expected_counts(self) -> dict[str, int] | None:
        """Samples per split, if known in advance (drives the progress bar)."""
        ...

    def samples(self) -> Iterator[SampleRecord]:
        """Every sample of every split, in a deterministic order."""
        ...
