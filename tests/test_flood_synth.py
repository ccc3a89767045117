"""flood-synth: determinism, format, the study's mask rules, disjoint splits, the test
split made from its own seed (demo or private), independence groups, and the physics."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from harness.datasets.flood_synth import (
    FloodSynth,
    FloodSynthError,
    Scene,
    make_block,
    make_scene,
    select_tiles,
    window_spec,
)
from harness.datasets.flood_synth.spec import (
    BLOCK_COLS,
    CLASS_DB,
    CLASS_NAMES,
    DEFAULT_SEED,
    DEMO_TEST_SEED,
    ENL,
    EVENTS,
    MAX_SLOPE,
    MIN_FLOOD_FRACTION,
    NESZ_DB,
    PIXEL,
    SPLITS,
    VERSION,
)
from harness.datasets.layout import LOCAL_COPY
from harness.datasets.loader import SplitDir
from harness.datasets.manifest import Manifest
from harness.datasets.secret import derive_test_seed
from harness.datasets.source import SampleRecord
from harness.settings import REPO_ROOT, Settings

# a small configuration: 64-pixel chips from scenes of 6 x 12 tiles, 2 test blocks per event
TINY = {"chip_size": 64, "tile_rows": 6, "tile_cols": 12, "test_blocks": 2}
TINY_QUOTAS = {"train": 8, "val": 2, "reserved": 2}
SCENE_SIZE = {"chip_size": 128, "tile_rows": 6, "tile_cols": 12}
PRIVATE_SEED = derive_test_seed("x" * 64, "flood-synth")  # as if from a maintainer's secret


def _records(seed: int = DEFAULT_SEED, **kw: object) -> list[SampleRecord]:
    return list(FloodSynth(seed, quotas=TINY_QUOTAS, **TINY, **kw).samples())  # type: ignore[arg-type]


def _split(records: list[SampleRecord], *splits: str) -> list[SampleRecord]:
    return [r for r in records if r.split in splits]


@pytest.fixture(scope="module")
def records() -> list[SampleRecord]:
    return _records()


@pytest.fixture(scope="module", params=[(e, k) for e in sorted(EVENTS) for k in ("scene", "block")])
def scene(request: pytest.FixtureRequest) -> Scene:
    """Each event's scene (train and val), and a test block of it (full-size chips): the
    test split follows the same rules and physics."""
    event, kind = request.param
    if kind == "block":
        return make_block(event, 0, DEMO_TEST_SEED).scene
    return make_scene(event, **SCENE_SIZE)


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
    assert d["version"] == VERSION == 2 and d["seed"] == DEFAULT_SEED
    assert d["test"] == "demo" and d["params"]["demo_test_seed"] == DEMO_TEST_SEED
    assert d["params"]["chip_size"] == 256 and set(d["params"]["scenes"]) == set(EVENTS)
    json.dumps(d)  # recorded in the manifest: plain JSON
    assert src.expected_counts() == {"train": 156, "val": 20, "test": 20}
    assert (src.name, src.task, src.bands) == ("flood-synth", "flood", ("VV_pre_db", "VV_post_db"))
    assert FloodSynth(quotas=TINY_QUOTAS, **TINY).expected_counts() == {
        "train": 16,
        "val": 4,
        "test": 8,
    }
    assert FloodSynth(splits=("test",)).expected_counts() == {"test": 20}


def test_the_private_test_seed_is_never_recorded() -> None:
    private = FloodSynth(test="private", test_seed=PRIVATE_SEED).describe()
    assert private["test"] == "private"
    assert str(PRIVATE_SEED) not in json.dumps(private)
    assert private["params"]["demo_test_seed"] == DEMO_TEST_SEED


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        FloodSynth(events=("valencai",))
    with pytest.raises(ValueError, match="quotas"):
        FloodSynth(quotas={"train": 1})
    with pytest.raises(ValueError, match="test_seed"):
        FloodSynth(test="private")
    with pytest.raises(ValueError, match="unknown split"):
        FloodSynth(splits=("tset",))


def test_samples_format_and_grids(records: list[SampleRecord]) -> None:
    src = FloodSynth(quotas=TINY_QUOTAS, **TINY)
    counts = {split: sum(r.split == split for r in records) for split in SPLITS}
    assert counts == src.expected_counts()
    assert len({r.id for r in records}) == len(records)
    n = TINY["chip_size"]
    for rec in records:
        _tile_ok(rec)
        json.dumps(rec.meta)
        event = rec.meta["event"]
        spec = EVENTS[event]
        assert rec.grid.crs == spec.crs
        assert rec.grid.shape == (n, n)
        # dB values sit on a 0.001 dB grid and look like sigma0
        milli = rec.inputs.astype(np.float64) * 1000.0
        assert np.abs(milli - np.round(milli)).max() < 0.01
        assert rec.inputs.min() > -60.0 and rec.inputs.max() < 30.0
        if rec.split == "test":
            # nothing derived from the target in a test chip's facts
            assert set(rec.meta) == {"event", "block", "group"}
            assert re.fullmatch(rf"{event}_demo{rec.meta['block']}_r\d\dc\d\d", rec.id)
            assert rec.meta["group"] == f"{event}_demo{rec.meta['block']}"
            # south of the event's scene, each block beside the last
            assert rec.grid.transform[5] <= spec.north - (TINY["tile_rows"] + 1) * n * PIXEL
            continue
        row, col = rec.meta["row"], rec.meta["col"]
        assert set(rec.meta) == {"event", "row", "col", "flood_fraction", "group"}
        assert re.fullmatch(rf"{event}_r{row:02d}c{col:02d}", rec.id)
        band = col // 4 * 4
        assert rec.meta["group"] == f"{event}_cols{band:02d}-{band + 3:02d}"
        assert rec.grid.transform == (
            PIXEL,
            0.0,
            spec.west + col * n * PIXEL,
            0.0,
            -PIXEL,
            spec.north - row * n * PIXEL,
        )


def test_every_chip_has_ten_percent_flood(records: list[SampleRecord]) -> None:
    for rec in records:
        assert rec.target is not None
        fraction = float(rec.target.mean())
        assert fraction >= MIN_FLOOD_FRACTION
        if rec.split != "test":
            assert rec.meta["flood_fraction"] == round(fraction, 4)


def test_same_seed_same_bits_other_seed_other_data(records: list[SampleRecord]) -> None:
    again = _records()
    assert [(r.split, r.id, r.grid, r.meta) for r in again] == [
        (r.split, r.id, r.grid, r.meta) for r in records
    ]
    for a, b in zip(records, again, strict=True):
        assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.target, b.target)
    other = make_scene("valencia", seed=DEFAULT_SEED + 1, **SCENE_SIZE)
    same = make_scene("valencia", seed=DEFAULT_SEED, **SCENE_SIZE)
    assert not np.array_equal(other.pre_db, same.pre_db)
    assert not np.array_equal(other.mask, same.mask)


def _iou(a: list[SampleRecord], b: list[SampleRecord]) -> float:
    ma = np.stack([r.target for r in a]).astype(bool)
    mb = np.stack([r.target for r in b]).astype(bool)
    return float((ma & mb).sum() / (ma | mb).sum())


def test_the_test_split_comes_from_its_own_seed_only(records: list[SampleRecord]) -> None:
    """The private test cannot be rebuilt by rerunning the public generator: another test
    seed gives other test chips (terrain, water, flood), and the same train and val."""
    private = _records(test="private", test_seed=PRIVATE_SEED)
    public_tv, private_tv = _split(records, "train", "val"), _split(private, "train", "val")
    assert [(r.id, r.grid) for r in public_tv] == [(r.id, r.grid) for r in private_tv]
    for a, b in zip(public_tv, private_tv, strict=True):
        assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.target, b.target)
    demo, secret = _split(records, "test"), _split(private, "test")
    assert len(demo) == len(secret) == 8
    assert not {r.id for r in demo} & {r.id for r in secret}  # demo... vs test...
    assert all("_test" in r.id and "_demo" not in r.id for r in secret)
    assert _iou(demo, secret) < 0.5
    for a, b in zip(demo, secret, strict=True):
        assert np.mean(a.inputs == b.inputs) < 0.05  # not the same scene with other noise
    # ... and the test split does not depend on the public seed at all
    other_public = list(
        FloodSynth(
            DEFAULT_SEED + 7,
            test="private",
            test_seed=PRIVATE_SEED,
            splits=("test",),
            quotas=TINY_QUOTAS,
            **TINY,  # type: ignore[arg-type]
        ).samples()
    )
    for a, b in zip(secret, other_public, strict=True):
        assert a.id == b.id and np.array_equal(a.target, b.target)
        assert np.array_equal(a.inputs, b.inputs)


def test_splits_are_spatially_disjoint(records: list[SampleRecord]) -> None:
    for event in EVENTS:
        tiles = [
            (r.meta["row"], r.meta["col"], r.split)
            for r in records
            if r.meta["event"] == event and r.split != "test"
        ]
        assert len(set(tiles)) == len(tiles)
        for r1, c1, s1 in tiles:
            for _, c2, s2 in tiles:
                if s1 != s2:  # strips span the scene's height: one whole column apart at least
                    assert abs(c1 - c2) >= 2, (event, r1, c1, s1, c2, s2)
    # no two chips share a pixel; test blocks lie apart from the scene and from each other
    boxes = [(r.split, r.meta.get("group"), r.grid.bounds()) for r in records]
    for i, (s1, g1, a) in enumerate(boxes):
        for s2, g2, b in boxes[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
            if "test" in (s1, s2) and g1 != g2:  # other block or split: a gap between them
                gap = max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3])
                assert gap >= TINY["chip_size"] * PIXEL


def test_independence_groups() -> None:
    """Every chip names its group; the test split has at least 10 (one per block)."""
    records = _records()
    for rec in records:
        assert isinstance(rec.meta["group"], str) and rec.meta["group"]
    test_groups = {r.meta["group"] for r in records if r.split == "test"}
    assert len(test_groups) == TINY["test_blocks"] * len(EVENTS)
    src = FloodSynth()
    assert src.test_blocks * len(src.events) >= 10  # the default: 10 blocks of 2 chips


def test_committed_manifest_names_groups_and_nothing_of_the_private_test() -> None:
    m = Manifest.load(REPO_ROOT / "datasets" / "flood-synth" / "manifest.json")
    assert m.source["version"] == VERSION and m.test_kind == "demo"
    assert m.source["params"]["demo_test_seed"] == DEMO_TEST_SEED
    for split in m.splits:
        assert m.groups(split) is not None, split
    assert m.n_groups("test") is not None and m.n_groups("test") >= 10
    assert m.count() == {"train": 156, "val": 20, "test": 20}
    assert all("demo" in sid for sid in m.splits["test"])
    assert all("flood_fraction" not in m.samples[sid] for sid in m.splits["test"])
    if m.private_test is not None:
        assert set(m.private_test) == {"digest", "n_chips", "n_groups"}
        assert m.private_test["n_groups"] >= 10


def test_make_block_is_a_window_of_the_event_and_needs_flood() -> None:
    block = make_block("valencia", 0, 1234, chip_size=64, tile_rows=6, tile_cols=12)
    assert len(block.tiles) == 2 and len(set(block.tiles)) == 2
    frac = block.scene.tile_fraction
    assert frac.shape == (6, 4)
    assert all(frac[t] >= MIN_FLOOD_FRACTION for t in block.tiles)
    again = make_block("valencia", 0, 1234, chip_size=64, tile_rows=6, tile_cols=12)
    assert again.tiles == block.tiles and np.array_equal(again.scene.post_db, block.scene.post_db)
    other = make_block("valencia", 1, 1234, chip_size=64, tile_rows=6, tile_cols=12)
    assert other.scene.grid.bounds()[0] > block.scene.grid.bounds()[2]  # east of block 0


def test_window_spec_keeps_the_landscape_of_its_window() -> None:
    spec = EVENTS["valencia"]
    w = window_spec(spec, 0.1, 0.25, width_m=1000.0, west=1.0, north=2.0, tile_cols=3)
    assert (w.west, w.north, w.tile_cols, w.anchors) == (1.0, 2.0, 3, ())
    ku, kv = zip(*spec.hills_north, strict=True)
    wu, wv = zip(*w.hills_north, strict=True)
    for u in (0.0, 0.3, 0.7, 1.0):  # the window's edge is the event's edge at 0.1 + u / 4
        assert np.interp(u, wu, wv) == pytest.approx(np.interp(0.1 + 0.25 * u, ku, kv))
    # the lagoon (u = 0.86) and the city (u = 0.84) are far east of 0.1 .. 0.35
    assert w.lagoon is None and w.city is None
    assert w.river_level_mouth == pytest.approx(
        spec.river_level_mouth + spec.river_gradient * 0.65 * 1000.0
    )
    east = window_spec(spec, 0.7, 0.25, width_m=1000.0, west=1.0, north=2.0, tile_cols=3)
    assert east.lagoon is not None and east.lagoon[0] == pytest.approx((0.86 - 0.7) / 0.25)
    assert east.city is not None and east.city[0] == pytest.approx((0.84 - 0.7) / 0.25)


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
    assert (frac >= MIN_FLOOD_FRACTION).sum() >= frac.size // 6


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
    n = scene.chip_size
    if scene.mask.shape[1] == BLOCK_COLS * n:  # test block 0: south of the event's scene
        assert (west, north) == (spec.west, spec.north - (spec.tile_rows + 1) * n * PIXEL)
    else:
        assert (west, north) == (spec.west, spec.north)
    g = scene.chip_grid(2, 3)
    n = scene.chip_size
    assert g.bounds()[0] == west + 3 * n * PIXEL and g.bounds()[3] == north - 2 * n * PIXEL


# ----------------------------------------------------------------------------- the real thing


@pytest.mark.slow
def test_full_default_dataset(embedded: Settings) -> None:
    """The whole default dataset, as the session's ``sarbench datasets prepare`` generated
    it (and found it reproduces the committed digest): read back from its files."""
    manifest = Manifest.load(embedded.dataset_dir("flood-synth") / LOCAL_COPY)
    counts = {split: 0 for split in SPLITS}
    per_event: dict[tuple[str, str], int] = {}
    groups: dict[str, set[str]] = {split: set() for split in SPLITS}
    for split in SPLITS:
        for sample in SplitDir(embedded.dataset_dir("flood-synth") / split):
            meta = manifest.samples[sample.id]
            assert sample.inputs.shape == (2, 256, 256) and sample.inputs.dtype == np.float32
            assert sample.target is not None and sample.target.mean() >= MIN_FLOOD_FRACTION
            counts[split] += 1
            key = (meta["event"], split)
            per_event[key] = per_event.get(key, 0) + 1
            groups[split].add(meta["group"])
    assert counts == {"train": 156, "val": 20, "test": 20} == FloodSynth().expected_counts()
    assert len({sid for ids in manifest.splits.values() for sid in ids}) == 196
    assert all(
        per_event[(e, s)] == q
        for e in EVENTS
        for s, q in (("train", 78), ("val", 10), ("test", 10))
    )
    assert len(groups["test"]) == 10


def test_scenes_made_in_worker_processes_give_the_same_chips_in_the_same_order(
    records: list[SampleRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenes of a small dataset, made in two worker processes (as a full-size one's
    are), give the chips the calling process makes: same ids, order, bits and facts."""
    source = FloodSynth(quotas=TINY_QUOTAS, **TINY)  # type: ignore[arg-type]
    monkeypatch.setattr(FloodSynth, "_workers", lambda self, scenes: 2)
    parallel = list(source.samples())
    assert [r.id for r in parallel] == [r.id for r in records]
    for a, b in zip(parallel, records, strict=True):
        assert (a.split, a.meta, a.grid) == (b.split, b.meta, b.grid)
        assert a.inputs.tobytes() == b.inputs.tobytes()
        assert a.target is not None and b.target is not None
        assert a.target.tobytes() == b.target.tobytes()
