"""Step 7 and the source: the spatially disjoint splits of each event's tiles
(:func:`select_tiles`) and :class:`FloodSynth`, which yields the chips of every event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from harness.datasets.flood_synth.fields import _rng
from harness.datasets.flood_synth.scene import make_scene
from harness.datasets.flood_synth.spec import (
    DEFAULT_QUOTAS,
    DEFAULT_SEED,
    ENL,
    EVENTS,
    MAX_SLOPE,
    MIN_FLOOD_FRACTION,
    PIXEL,
    SPLITS,
    VERSION,
    FloodSynthError,
)
from harness.datasets.source import SampleRecord

# ----------------------------------------------------------------------------- splits


def select_tiles(
    fraction: np.ndarray,
    anchors: tuple[tuple[str, float], ...],
    quotas: dict[str, int],
    rng: np.random.Generator,
) -> dict[tuple[int, int], str]:
    """Choose the tiles of each split in spatially disjoint strips: (row, col) -> split.

    A tile is eligible with at least MIN_FLOOD_FRACTION flooded pixels. Each held-out
    split's strip starts at the tile column of its anchor (a fraction of the scene width)
    and grows east until it holds its quota of eligible tiles; ``train`` is every other
    column except one gap column on each side of a held-out strip. Each split's quota is
    drawn at random from its eligible tiles.
    """
    eligible = fraction >= MIN_FLOOD_FRACTION
    rows, cols = eligible.shape
    per_col = eligible.sum(axis=0)
    owner: list[str | None] = ["train"] * cols
    for split, at in sorted(anchors, key=lambda a: a[1]):
        start = min(round(at * cols), cols - 1)
        end, count = start, 0
        while end < cols and count < quotas[split]:
            count += int(per_col[end])
            end += 1
        clash = any(owner[c] != "train" for c in range(start, end))
        clash |= start > 0 and owner[start - 1] not in ("train", None)
        if count < quotas[split] or clash:
            raise FloodSynthError(
                f"no strip from tile column {start} holds {quotas[split]} tiles with >= "
                f"{MIN_FLOOD_FRACTION:.0%} flood for split {split!r}: make the scene wider "
                "or move its anchor"
            )
        for c in range(max(start - 1, 0), min(end + 1, cols)):
            owner[c] = split if start <= c < end else None
    chosen: dict[tuple[int, int], str] = {}
    for split, quota in quotas.items():
        pool = [(r, c) for c in range(cols) if owner[c] == split for r in range(rows)]
        pool = [rc for rc in sorted(pool) if eligible[rc]]
        if len(pool) < quota:
            raise FloodSynthError(
                f"only {len(pool)} tiles of split {split!r} have >= {MIN_FLOOD_FRACTION:.0%} "
                f"flood, {quota} are needed: make the scene larger or lower the quota"
            )
        for i in sorted(rng.choice(len(pool), size=quota, replace=False)):
            chosen[pool[i]] = split
    return chosen


# ----------------------------------------------------------------------------- source


class FloodSynth:
    """The ``flood-synth`` dataset source (see the package docstring).

    The default configuration is frozen: it makes the published dataset. ``chip_size``,
    ``tile_rows`` and ``tile_cols`` (for every event) and ``quotas`` (tiles per event and
    split) make smaller variants, for tests.
    """

    name = "flood-synth"
    task = "flood"
    bands = ("VV_pre_db", "VV_post_db")

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        *,
        chip_size: int = 256,
        tile_rows: int | None = None,
        tile_cols: int | None = None,
        quotas: dict[str, int] | None = None,
        events: tuple[str, ...] = tuple(EVENTS),
    ) -> None:
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ValueError(f"unknown event(s) {unknown}; known: {sorted(EVENTS)}")
        self.seed = seed
        self.chip_size = chip_size
        self.tile_rows = tile_rows
        self.tile_cols = tile_cols
        self.quotas = dict(quotas) if quotas is not None else dict(DEFAULT_QUOTAS)
        if set(self.quotas) != set(SPLITS):
            raise ValueError(f"quotas must name exactly the splits {SPLITS}")
        self.events = events

    def _size(self, event: str) -> tuple[int, int]:
        spec = EVENTS[event]
        return self.tile_rows or spec.tile_rows, self.tile_cols or spec.tile_cols

    def describe(self) -> dict[str, Any]:
        scenes = {}
        for event in self.events:
            rows, cols = self._size(event)
            anchors = {s: u for s, u in EVENTS[event].anchors}
            scenes[event] = {"tile_rows": rows, "tile_cols": cols, "anchors": anchors}
        return {
            "kind": "synthetic",
            "generator": self.name,
            "version": VERSION,
            "seed": self.seed,
            "params": {
                "chip_size": self.chip_size,
                "pixel_size_m": PIXEL,
                "events": list(self.events),
                "scenes": scenes,
                "quotas_per_event": self.quotas,
                "min_flood_fraction": MIN_FLOOD_FRACTION,
                "max_slope": MAX_SLOPE,
                "enl": ENL,
            },
        }

    def expected_counts(self) -> dict[str, int]:
        return {split: n * len(self.events) for split, n in self.quotas.items()}

    def samples(self) -> Iterator[SampleRecord]:
        for event in self.events:
            rows, cols = self._size(event)
            scene = make_scene(
                event, seed=self.seed, chip_size=self.chip_size, tile_rows=rows, tile_cols=cols
            )
            fraction = scene.tile_fraction
            anchors = EVENTS[event].anchors
            chosen = select_tiles(fraction, anchors, self.quotas, _rng(self.seed, event, 4))
            for (r, c), split in sorted(chosen.items()):
                rs, cs = scene.tile(r, c)
                yield SampleRecord(
                    split=split,
                    id=f"{event}_r{r:02d}c{c:02d}",
                    inputs=np.stack([scene.pre_db[rs, cs], scene.post_db[rs, cs]]),
                    grid=scene.chip_grid(r, c),
                    target=scene.mask[rs, cs].copy(),
                    valid=None,
                    meta={
                        "event": event,
                        "row": r,
                        "col": c,
                        "flood_fraction": round(float(fraction[r, c]), 4),
                    },
                )
            del scene
