"""flood-synth: determinism, format, the study's mask rules, disjoint splits and the physics."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from harness.datasets.flood_synth import (
    CLASS_DB,
    CLASS_NAMES,
    DEFAULT_SEED,
    ENL,
    EVENTS,
    MAX_SLOPE,
    MIN_FLOOD_FRACTION,
    NESZ_DB,
    PIXEL,
    SPLITS,
    VERSION,
    FloodSynth,
    FloodSynthError,
    Scene,
    make_scene,
    select_tiles,
)
from harness.datasets.source import SampleRecord

# a small configuration: 64-pixel chips from scenes of 6 x 12 tiles
TINY = {"chip_size": 64, "tile_rows": 6, "tile_cols": 12}
TINY_QUOTAS = {"train": 8, "val": 2, "test": 2}
SCENE_SIZE = {"chip_size": 128, "tile_rows": 6, "tile_cols": 12}


def _records(seed: int = DEFAULT_SEED) -> list[SampleRecord]:
    return list(FloodSynth(seed, quotas=TINY_QUOTAS, **TINY).samples())


@pytest.fixture(scope="module")
def records() -> list[SampleRecord]:
    return _records()


@pytest.fixture(scope="module", params=sorted(EVENTS))
def scene(request: pytest.FixtureRequest) -> Scene:
    return make_scene(request.param, **SCENE_SIZE)


def _tile_ok(rec: SampleRecord) -> None:
    n = TINY["chip_size"]
    assert rec.inputs.shape == (2, n, n) and rec.inputs.dtype == np.float32
    assert rec.target is not None and rec.target.shape == (n, n) and rec.target.dtype == np.uint8
    assert set(np.unique(rec.target)) <= {0, 1}
    assert rec.valid is None and rec.input_nodata is None
    assert np.isfinite(rec.inputs).all()


# ----------------------------------------------------------------------------- the source


def test_describe_and_expected_counts() -> None:
    src = FloodSynth()
    d = src.describe()
    assert d["kind"] == "synthetic" and d["generator"] == "flood-synth"
    assert d["version"] == VERSION and d["seed"] == DEFAULT_SEED
    assert d["params"]["chip_size"] == 256 and set(d["params"]["scenes"]) == set(EVENTS)
    json.dumps(d)  # recorded in the manifest: plain JSON
    assert src.expected_counts() == {"train": 156, "val": 20, "test": 20}
    assert (src.name, src.task, src.bands) == ("flood-synth", "flood", ("VV_pre_db", "VV_post_db"))
    assert FloodSynth(quotas=TINY_QUOTAS, **TINY).expected_counts() == {
        "train": 16,
        "val": 4,
        "test": 4,
    }


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        FloodSynth(events=("valencai",))
    with pytest.raises(ValueError, match="quotas"):
        FloodSynth(quotas={"train": 1})


def test_samples_format_and_grids(records: list[SampleRecord]) -> None:
    src = FloodSynth(quotas=TINY_QUOTAS, **TINY)
    counts = {split: sum(r.split == split for r in records) for split in SPLITS}
    assert counts == src.expected_counts()
    assert len({r.id for r in records}) == len(records)
    n = TINY["chip_size"]
    for rec in records:
        _tile_ok(rec)
        event, row, col = rec.meta["event"], rec.meta["row"], rec.meta["col"]
        assert set(rec.meta) == {"event", "row", "col", "flood_fraction"}
        assert re.fullmatch(rf"{event}_r{row:02d}c{col:02d}", rec.id)
        json.dumps(rec.meta)
        spec = EVENTS[event]
        assert rec.grid.crs == spec.crs
        assert rec.grid.shape == (n, n)
        assert rec.grid.transform == (
            PIXEL,
            0.0,
            spec.west + col * n * PIXEL,
            0.0,
            -PIXEL,
            spec.north - row * n * PIXEL,
        )
        # dB values sit on a 0.001 dB grid and look like sigma0
        milli = rec.inputs.astype(np.float64) * 1000.0
        assert np.abs(milli - np.round(milli)).max() < 0.01
        assert rec.inputs.min() > -60.0 and rec.inputs.max() < 30.0


def test_every_chip_has_ten_percent_flood(records: list[SampleRecord]) -> None:
    for rec in records:
        assert rec.target is not None
        fraction = float(rec.target.mean())
        assert fraction >= MIN_FLOOD_FRACTION
        assert rec.meta["flood_fraction"] == round(fraction, 4)


def test_same_seed_same_bits_other_seed_other_data(records: list[SampleRecord]) -> None:
    again = _records()
    assert [(r.split, r.id, r.grid, r.meta) for r in again] == [
        (r.split, r.id, r.grid, r.meta) for r in records
    ]
    for a, b in zip(records, again, strict=True):
        assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.target, b.target)
    other = make_scene("valencia", seed=DEFAULT_SEED + 1, **TINY)
    same = make_scene("valencia", seed=DEFAULT_SEED, **TINY)
    assert not np.array_equal(other.pre_db, same.pre_db)
    assert not np.array_equal(other.mask, same.mask)


def test_splits_are_spatially_disjoint(records: list[SampleRecord]) -> None:
    for event in EVENTS:
        tiles = [
            (r.meta["row"], r.meta["col"], r.split) for r in records if r.meta["event"] == event
        ]
        assert len(set(tiles)) == len(tiles)
        for r1, c1, s1 in tiles:
            for _, c2, s2 in tiles:
                if s1 != s2:  # strips span the scene's height: one whole column apart at least
                    assert abs(c1 - c2) >= 2, (event, r1, c1, s1, c2, s2)


def test_select_tiles_strips_and_errors() -> None:
    fraction = np.full((4, 20), 0.5)
    fraction[:, 5] = 0.0  # no eligible tile: the val strip must grow past it
    rng = np.random.default_rng(0)
    chosen = select_tiles(
        fraction, (("val", 0.25), ("test", 0.6)), {"train": 30, "val": 6, "test": 4}, rng
    )
    cols = {split: {c for (_, c), s in chosen.items() if s == split} for split in SPLITS}
    assert cols["val"] <= {6, 7} and cols["test"] == {12}
    assert not cols["train"] & {4, 5, 6, 7, 8, 11, 12, 13}
    assert sum(s == "train" for s in chosen.values()) == 30
    with pytest.raises(FloodSynthError, match="val"):
        select_tiles(np.zeros((4, 20)), (("val", 0.5),), {"train": 0, "val": 1, "test": 0}, rng)
    with pytest.raises(FloodSynthError, match="train"):
        select_tiles(fraction, (("val", 0.25),), {"train": 80, "val": 1, "test": 0}, rng)


# ----------------------------------------------------------------------------- the scene


def test_mask_follows_the_study_rules(scene: Scene) -> None:
    mask = scene.mask.astype(bool)
    assert scene.mask.dtype == np.uint8
    assert not (mask & scene.permanent_water).any()
    # slope from the DEM, independently: no flood on slopes over 5 %
    gy, gx = np.gradient(scene.dem, PIXEL)
    steep = np.hypot(gx, gy) > MAX_SLOPE
    assert not (mask & steep).any()
    assert np.array_equal(mask, scene.flooded & ~steep)
    assert not (scene.flooded & scene.permanent_water).any()
    # DEM on a 1 mm grid; flood where the ground is low, not on the hills
    mm = scene.dem * 1000.0
    assert np.abs(mm - np.round(mm)).max() < 1e-6
    assert np.median(scene.dem[mask]) < np.median(scene.dem[~mask & ~scene.permanent_water])
    frac = scene.tile_fraction
    assert frac.shape == (6, 12) and (frac >= MIN_FLOOD_FRACTION).sum() >= 12


def test_class_means_before_speckle(scene: Scene) -> None:
    for code, name in enumerate(CLASS_NAMES):
        pixels = scene.landcover == code
        if pixels.sum() < 2_000:
            continue
        lo, hi = CLASS_DB[code]
        mean = float(scene.flat_db[pixels].mean())
        assert lo <= mean <= hi, (name, mean)


def test_speckle_is_gamma_with_enl_4_4(scene: Scene) -> None:
    for noisy, clean in ((scene.pre_db, scene.pre_clean_db), (scene.post_db, scene.post_clean_db)):
        ratio = np.power(10.0, (noisy.astype(np.float64) - clean) / 10.0)
        assert ratio.mean() == pytest.approx(1.0, abs=0.01)
        assert ratio.mean() ** 2 / ratio.var() == pytest.approx(ENL, rel=0.03)
    # and on a homogeneous area: radar shadow sits at the noise floor before speckle
    shadow = scene.shadow_post
    if shadow.sum() >= 2_000:
        assert np.all(scene.post_clean_db[shadow] == NESZ_DB)
        lin = np.power(10.0, scene.post_db[shadow].astype(np.float64) / 10.0)
        assert lin.mean() ** 2 / lin.var() == pytest.approx(ENL, rel=0.1)
    # speckle is independent between the dates
    a = scene.pre_db.astype(np.float64) - scene.pre_clean_db
    b = scene.post_db.astype(np.float64) - scene.post_clean_db
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01


def test_open_flood_is_dark_and_darkens(scene: Scene) -> None:
    open_water = scene.flooded & ~scene.wind_post & ~scene.double_bounce & ~scene.shadow_post
    assert open_water.sum() > 10_000
    assert scene.post_clean_db[open_water].mean() < -19.0
    change = scene.post_clean_db[open_water] - scene.pre_clean_db[open_water]
    assert change.mean() < -8.0


def test_confuser_wind_roughened_water_is_bright(scene: Scene) -> None:
    windy = scene.wind_post & scene.flooded
    calm = scene.flooded & ~scene.wind_post & ~scene.double_bounce & ~scene.shadow_post
    assert windy.sum() > 2_000
    assert -15.0 < scene.post_clean_db[windy].mean() < -8.0
    assert scene.post_db[windy].mean() > scene.post_db[calm].mean() + 6.0
    assert scene.mask[windy].mean() > 0.9  # they are flood all the same


def test_confuser_double_bounce_brightens_flooded_vegetation(scene: Scene) -> None:
    db = scene.double_bounce
    assert db.sum() > 2_000
    assert scene.flooded[db].all()
    assert set(np.unique(scene.landcover[db])) <= {
        CLASS_NAMES.index(c) for c in ("orchard", "forest", "urban")
    }
    assert (scene.post_clean_db[db] - scene.pre_clean_db[db]).mean() > 2.0
    assert (scene.post_db[db].astype(np.float64) - scene.pre_db[db]).mean() > 2.0


def test_confuser_harvest_darkens_without_flood(scene: Scene) -> None:
    harvest = scene.harvest & ~scene.flooded
    assert harvest.sum() > 2_000
    assert (scene.post_clean_db[harvest] - scene.pre_clean_db[harvest]).mean() < -0.5


def test_confuser_radar_shadow_and_terrain() -> None:
    scene = make_scene("valencia", **SCENE_SIZE)
    shadow = scene.shadow_post
    assert shadow.sum() > 1_000
    assert (shadow & scene.mask.astype(bool)).sum() < 0.01 * shadow.sum()  # not flooded
    assert scene.post_db[shadow].mean() < -20.0  # and dark
    # other orbits, other incidence: the shadow differs between the dates
    assert (shadow & ~scene.shadow_pre).sum() > 0.2 * shadow.sum()
    # slopes facing the radar (east, ground falling eastward) are brighter than backslopes
    gx = np.gradient(scene.dem, PIXEL, axis=1)
    land = ~scene.shadow_post & ~scene.permanent_water & ~scene.flooded
    fore, back = land & (gx < -0.3), land & (gx > 0.3)
    assert fore.sum() > 500 and back.sum() > 500
    assert scene.post_clean_db[fore].mean() > scene.post_clean_db[back].mean() + 3.0


def test_scene_and_chip_grids_line_up(scene: Scene) -> None:
    spec = EVENTS[scene.event]
    assert scene.grid.crs == spec.crs
    west, _, _, north = scene.grid.bounds()
    assert (west, north) == (spec.west, spec.north)
    g = scene.chip_grid(2, 3)
    n = scene.chip_size
    assert g.bounds()[0] == west + 3 * n * PIXEL and g.bounds()[3] == north - 2 * n * PIXEL


# ----------------------------------------------------------------------------- the real thing


@pytest.mark.slow
def test_full_default_dataset() -> None:
    src = FloodSynth()
    start = time.monotonic()
    counts = {split: 0 for split in SPLITS}
    per_event: dict[tuple[str, str], int] = {}
    ids = set()
    for rec in src.samples():
        assert rec.inputs.shape == (2, 256, 256) and rec.inputs.dtype == np.float32
        assert rec.target is not None and rec.target.mean() >= MIN_FLOOD_FRACTION
        counts[rec.split] += 1
        key = (rec.meta["event"], rec.split)
        per_event[key] = per_event.get(key, 0) + 1
        ids.add(rec.id)
    assert counts == {"train": 156, "val": 20, "test": 20} == src.expected_counts()
    assert len(ids) == 196
    assert all(
        per_event[(e, s)] == q
        for e in EVENTS
        for s, q in (("train", 78), ("val", 10), ("test", 10))
    )
    assert time.monotonic() - start < 240.0
