"""Step 7 and the source: the spatially disjoint splits of each event's tiles
(:func:`select_tiles`), the test blocks made from the test seed (:func:`make_block`) and
:class:`FloodSynth`, which yields the chips of every event.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import threading
from collections.abc import Collection, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from harness.datasets.flood_synth.fields import _rng
from harness.datasets.flood_synth.scene import Scene, make_scene
from harness.datasets.flood_synth.spec import (
    BLOCK_COLS,
    CHIPS_PER_BLOCK,
    DEFAULT_QUOTAS,
    DEFAULT_SEED,
    DEMO_TEST_SEED,
    ENL,
    EVENTS,
    GROUP_COLS,
    MAX_SLOPE,
    MIN_FLOOD_FRACTION,
    PIXEL,
    SPLITS,
    TEST_BLOCKS,
    VERSION,
    FloodSynthError,
    window_spec,
)
from harness.datasets.source import SampleRecord

TestKind = Literal["demo", "private"]
_SceneJob = tuple[str, int | None]  # (event, test block or None for the main scene)
PARALLEL_MIN_PIXELS = 1 << 24  # below this many scene pixels, no worker processes
BLOCK_STREAM = 100  # spawn keys of the test seed: (BLOCK_STREAM, event, block[, attempt])
MAX_ATTEMPTS = 20  # scenes tried per test block until one has enough flooded tiles

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
    for split, at in sorted((a for a in anchors if a[0] in quotas), key=lambda a: a[1]):
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


# ----------------------------------------------------------------------------- test blocks


@dataclass
class Block:
    """One test block: its own scene (a window of the event's landscape, made from the test
    seed) and the tiles chosen from it; its chips form one independence group."""

    event: str
    index: int
    scene: Scene
    tiles: list[tuple[int, int]]
    u0: float


def _seed_of(test_seed: int, *key: int) -> int:
    """A 64-bit scene seed from the test seed (a SeedSequence child: the same everywhere)."""
    state = np.random.SeedSequence(test_seed, spawn_key=key).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def make_block(
    event: str,
    index: int,
    test_seed: int,
    *,
    chip_size: int = 256,
    tile_rows: int | None = None,
    tile_cols: int | None = None,
    block_cols: int = BLOCK_COLS,
    chips: int = CHIPS_PER_BLOCK,
) -> Block:
    """Test block ``index`` of ``event``: everything in it comes from ``test_seed``.

    The block is a scene of the event's height and ``block_cols`` tiles, its landscape that
    of a window of the event's scene drawn at random, placed south of the event's scene
    (block ``i`` at ``i * (block_cols + 1)`` tiles east of its west edge), so that blocks
    share no pixel, no river and no flood with each other or with train and val. ``chips``
    tiles with at least MIN_FLOOD_FRACTION flood are drawn from it; a scene with too few
    is drawn again (a new attempt).
    """
    spec = EVENTS[event]
    rows, cols = tile_rows or spec.tile_rows, tile_cols or spec.tile_cols
    e = list(EVENTS).index(event)
    rng = np.random.default_rng(
        np.random.SeedSequence(test_seed, spawn_key=(BLOCK_STREAM, e, index))
    )
    du = min(block_cols / cols, 1.0)
    u0 = float(rng.uniform(0.0, 1.0 - du))
    n = chip_size
    bspec = window_spec(
        spec,
        u0,
        du,
        width_m=cols * n * PIXEL,
        west=spec.west + index * (block_cols + 1) * n * PIXEL,
        north=spec.north - (rows + 1) * n * PIXEL,
        tile_cols=block_cols,
    )
    for attempt in range(MAX_ATTEMPTS):
        scene = make_scene(
            event,
            seed=_seed_of(test_seed, BLOCK_STREAM, e, index, attempt),
            chip_size=n,
            tile_rows=rows,
            tile_cols=block_cols,
            spec=bspec,
        )
        fraction = scene.tile_fraction
        eligible = [(int(r), int(c)) for r, c in np.argwhere(fraction >= MIN_FLOOD_FRACTION)]
        if len(eligible) >= chips:
            picked = sorted(eligible[i] for i in rng.choice(len(eligible), chips, replace=False))
            return Block(event, index, scene, picked, u0)
        del scene
    raise FloodSynthError(
        f"test block {index} of {event!r}: no scene of {MAX_ATTEMPTS} tried has {chips} tiles "
        f"with >= {MIN_FLOOD_FRACTION:.0%} flood; make the blocks wider (block_cols)"
    )


# ----------------------------------------------------------------------------- source


class FloodSynth:
    """The ``flood-synth`` dataset source (see the package docstring).

    The default configuration is frozen: it makes the published dataset. ``seed`` makes
    train and val; ``test_seed`` makes the test split, and nothing else does: the demo test
    (``test="demo"``) uses the public ``DEMO_TEST_SEED``; the official test
    (``test="private"``) a seed derived from the maintainers' secret, which is never
    recorded. ``splits`` limits the splits made. ``chip_size``, ``tile_rows`` and
    ``tile_cols`` (for every event), ``quotas`` (train, val and reserved tiles per event)
    and the test block sizes make smaller variants, for tests.
    """

    name = "flood-synth"
    task = "flood"
    bands = ("VV_pre_db", "VV_post_db")

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        *,
        test: TestKind = "demo",
        test_seed: int | None = None,
        chip_size: int = 256,
        tile_rows: int | None = None,
        tile_cols: int | None = None,
        quotas: dict[str, int] | None = None,
        test_blocks: int = TEST_BLOCKS,
        chips_per_block: int = CHIPS_PER_BLOCK,
        block_cols: int = BLOCK_COLS,
        events: tuple[str, ...] = tuple(EVENTS),
        splits: Collection[str] | None = None,
    ) -> None:
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ValueError(f"unknown event(s) {unknown}; known: {sorted(EVENTS)}")
        if test not in ("demo", "private"):
            raise ValueError(f"test must be 'demo' or 'private', got {test!r}")
        if test == "private" and test_seed is None:
            raise ValueError("the private test needs its test_seed (derived from the secret)")
        self.seed = seed
        self.test: TestKind = test
        self.test_seed = DEMO_TEST_SEED if test_seed is None else int(test_seed)
        self.chip_size = chip_size
        self.tile_rows = tile_rows
        self.tile_cols = tile_cols
        self.quotas = dict(quotas) if quotas is not None else dict(DEFAULT_QUOTAS)
        if not {"train", "val"} <= set(self.quotas) <= {"train", "val", "reserved"}:
            raise ValueError("quotas must name the train and val tiles (and may name reserved)")
        if test_blocks < 1 or chips_per_block < 1 or block_cols < 1:
            raise ValueError("test_blocks, chips_per_block and block_cols must be >= 1")
        self.test_blocks = test_blocks
        self.chips_per_block = chips_per_block
        self.block_cols = block_cols
        self.events = events
        self.splits = tuple(SPLITS if splits is None else (s for s in SPLITS if s in splits))
        if splits is not None and set(splits) - set(SPLITS):
            raise ValueError(f"unknown split(s) {sorted(set(splits) - set(SPLITS))}")

    def _size(self, event: str) -> tuple[int, int]:
        spec = EVENTS[event]
        return self.tile_rows or spec.tile_rows, self.tile_cols or spec.tile_cols

    @property
    def _tag(self) -> str:
        """Test chip ids and groups say which test they are: ``test`` or ``demo``."""
        return "test" if self.test == "private" else "demo"

    def describe(self) -> dict[str, Any]:
        scenes = {}
        for event in self.events:
            rows, cols = self._size(event)
            anchors = {s: u for s, u in EVENTS[event].anchors if s in self.quotas}
            scenes[event] = {"tile_rows": rows, "tile_cols": cols, "anchors": anchors}
        return {
            "kind": "synthetic",
            "generator": self.name,
            "version": VERSION,
            "seed": self.seed,
            "test": self.test,
            "params": {
                "chip_size": self.chip_size,
                "pixel_size_m": PIXEL,
                "events": list(self.events),
                "scenes": scenes,
                "quotas_per_event": self.quotas,
                "test_blocks_per_event": self.test_blocks,
                "chips_per_block": self.chips_per_block,
                "block_cols": self.block_cols,
                "group_cols": GROUP_COLS,
                # the private test's seed is never recorded: it would rebuild the test
                "demo_test_seed": self.test_seed if self.test == "demo" else DEMO_TEST_SEED,
                "min_flood_fraction": MIN_FLOOD_FRACTION,
                "max_slope": MAX_SLOPE,
                "enl": ENL,
            },
        }

    def expected_counts(self) -> dict[str, int]:
        per_event = {
            "train": self.quotas["train"],
            "val": self.quotas["val"],
            "test": self.test_blocks * self.chips_per_block,
        }
        return {s: per_event[s] * len(self.events) for s in self.splits}

    def samples(self) -> Iterator[SampleRecord]:
        """Every chip, event by event (train and val, then the test blocks). The scenes are
        independent, so with several cores and a large dataset they are made in worker
        processes, the largest first; the chips come out in the same order and the same
        bits either way (each scene draws from its own seeded sub-streams)."""
        scenes = self._scenes()
        workers = self._workers(scenes)
        if workers <= 1:
            for scene in scenes:
                yield from self._scene_chips(scene)
            return
        pool = ProcessPoolExecutor(
            workers, mp_context=_start_method(), initializer=_keep_freed_memory
        )
        try:
            largest_first = sorted(scenes, key=self._scene_pixels, reverse=True)
            futures = {s: pool.submit(_scene_chips, self, s) for s in largest_first}
            for scene in scenes:
                yield from futures[scene].result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _scenes(self) -> list[_SceneJob]:
        """The scenes to make, in the order their chips are yielded: per event its main
        scene (train and val), then its test blocks."""
        jobs: list[_SceneJob] = []
        for event in self.events:
            if "train" in self.splits or "val" in self.splits:
                jobs.append((event, None))
            if "test" in self.splits:
                jobs.extend((event, b) for b in range(self.test_blocks))
        return jobs

    def _scene_pixels(self, scene: _SceneJob) -> int:
        """The pixel count of a scene to make (its cost, roughly)."""
        rows, cols = self._size(scene[0])
        return rows * (cols if scene[1] is None else self.block_cols) * self.chip_size**2

    def _workers(self, scenes: list[_SceneJob]) -> int:
        """How many worker processes make the scenes: one per core (at most 4), or none
        (1) for a small dataset, where starting the workers costs more than it saves."""
        if sum(self._scene_pixels(s) for s in scenes) < PARALLEL_MIN_PIXELS:
            return 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        return max(1, min(cores, len(scenes), 4))

    def _scene_chips(self, scene: _SceneJob) -> list[SampleRecord]:
        """The chips of one scene: the event's train and val tiles, or a test block's."""
        event, block = scene
        if block is None:
            return list(self._main(event))
        return list(self._test_chips(event, block))

    def _main(self, event: str) -> Iterator[SampleRecord]:
        """Train and val: tiles of the event's scene, made from the public seed."""
        rows, cols = self._size(event)
        scene = make_scene(
            event, seed=self.seed, chip_size=self.chip_size, tile_rows=rows, tile_cols=cols
        )
        fraction = scene.tile_fraction
        anchors = EVENTS[event].anchors
        chosen = select_tiles(fraction, anchors, self.quotas, _rng(self.seed, event, 4))
        for (r, c), split in sorted(chosen.items()):
            if split not in self.splits:
                continue
            rs, cs = scene.tile(r, c)
            band = (c // GROUP_COLS) * GROUP_COLS
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
                    "group": f"{event}_cols{band:02d}-{band + GROUP_COLS - 1:02d}",
                },
            )

    def _test_chips(self, event: str, index: int) -> Iterator[SampleRecord]:
        """The chips of one test block, made from the test seed only."""
        rows, cols = self._size(event)
        block = make_block(
            event,
            index,
            self.test_seed,
            chip_size=self.chip_size,
            tile_rows=rows,
            tile_cols=cols,
            block_cols=self.block_cols,
            chips=self.chips_per_block,
        )
        scene, group = block.scene, f"{event}_{self._tag}{index}"
        for r, c in block.tiles:
            rs, cs = scene.tile(r, c)
            yield SampleRecord(
                split="test",
                id=f"{group}_r{r:02d}c{c:02d}",
                inputs=np.stack([scene.pre_db[rs, cs], scene.post_db[rs, cs]]),
                grid=scene.chip_grid(r, c),
                target=scene.mask[rs, cs].copy(),
                valid=None,
                meta={"event": event, "block": index, "group": group},
            )


def _start_method() -> multiprocessing.context.BaseContext:
    """How the scene workers start: forked while this process has no other thread (fast,
    and no ``if __name__ == "__main__"`` guard needed in a calling script), else spawned
    (forking a process with threads can deadlock)."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _keep_freed_memory() -> None:
    """A scene worker's start: glibc's malloc is told to keep the memory a scene's large
    temporaries free, for the next ones (no block of its own mapped per allocation, no
    trimming under 2 GiB), instead of returning it to the kernel and faulting it in again:
    that took a third of the workers' time. The worker's memory goes when it exits. Does
    nothing where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, 2**31 - 1)
    mallopt(m_top_pad, 256 << 20)


def _scene_chips(source: FloodSynth, scene: _SceneJob) -> list[SampleRecord]:
    """The chips of one scene of ``source`` (a worker process's task)."""
    return source._scene_chips(scene)
