"""ndvi-synth: determinism, format, geometry, the test split made from its own seed (demo or
private), independence groups, and the physics behind the numbers."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pytest

from harness.datasets.layout import check_sample_id
from harness.datasets.manifest import Manifest
from harness.datasets.ndvi_synth import (
    CRS,
    DEMO_TEST_SEED,
    NO_HARVEST,
    PRETRAIN_ANCHORS,
    SEASON_DAYS,
    TEST_ANCHORS,
    VERSION,
    Area,
    NdviSynth,
    season_date,
)
from harness.datasets.secret import derive_test_seed
from harness.datasets.source import SampleRecord
from harness.settings import REPO_ROOT

TINY = {
    "chip_size": 32,
    "train_chips": (1, 2),
    "val_chips": (1, 1),
    "test_locations": 2,
    "test_dates": 4,
    "pretrain_areas": 2,
    "pretrain_chips": (1, 1),
    "target_dates": 8,
    "pretrain_dates": 3,
}
ID = re.compile(r"^(train|val|demo|test|pretrain)_a(\d+)_c(\d{2})_(2017\d{4})$")
PRIVATE_SEED = derive_test_seed("y" * 64, "ndvi-synth")  # as if from a maintainer's secret


@pytest.fixture(scope="module")
def tiny() -> list[SampleRecord]:
    return list(NdviSynth(seed=7, **TINY).samples())


def _quantised(x: np.ndarray, decimals: int) -> bool:
    return bool(np.array_equal(np.round(x.astype(np.float64), decimals).astype(np.float32), x))


def test_protocol_describe_and_counts(tiny: list[SampleRecord]) -> None:
    synth = NdviSynth(seed=7, **TINY)
    assert (synth.name, synth.task, synth.bands) == ("ndvi-synth", "ndvi", ("VV_db", "VH_db"))
    d = synth.describe()
    assert d["kind"] == "synthetic" and d["generator"] == "ndvi-synth" and d["seed"] == 7
    assert d["version"] == VERSION == 2 and d["params"]["chip_size"] == 32
    assert d["test"] == "demo" and d["params"]["demo_test_seed"] == DEMO_TEST_SEED
    assert json.loads(json.dumps(d)) == d
    private = NdviSynth(test="private", test_seed=PRIVATE_SEED).describe()
    assert private["test"] == "private" and str(PRIVATE_SEED) not in json.dumps(private)
    counts: dict[str, int] = {}
    for rec in tiny:
        counts[rec.split] = counts.get(rec.split, 0) + 1
    assert counts == synth.expected_counts() == {"train": 16, "val": 8, "test": 8, "pretrain": 6}
    assert NdviSynth(splits=("test",), **TINY).expected_counts() == {"test": 8}
    assert len({r.id for r in tiny}) == len(tiny)


def test_same_seed_same_bits_other_seed_differs(tiny: list[SampleRecord]) -> None:
    again = list(NdviSynth(seed=7, **TINY).samples())
    assert [r.id for r in again] == [r.id for r in tiny]
    for a, b in zip(tiny, again, strict=True):
        assert a.grid == b.grid and a.meta == b.meta
        assert np.array_equal(a.inputs, b.inputs)
        assert np.array_equal(a.target, b.target) and np.array_equal(a.valid, b.valid)
    other = list(NdviSynth(seed=8, **TINY).samples())
    assert not np.array_equal(other[0].inputs, tiny[0].inputs)
    assert not np.array_equal(other[0].target, tiny[0].target)


def test_shapes_dtypes_grids_ids_and_meta(tiny: list[SampleRecord]) -> None:
    for rec in tiny:
        assert rec.inputs.shape == (2, 32, 32) and rec.inputs.dtype == np.float32
        assert rec.target is not None and rec.valid is not None
        assert rec.target.shape == (32, 32) and rec.target.dtype == np.float32
        assert rec.valid.dtype == np.uint8 and set(np.unique(rec.valid)) <= {0, 1}
        assert rec.grid.crs == CRS and rec.grid.shape == (32, 32)
        a, b, c, d, e, f = rec.grid.transform
        assert (a, b, d, e) == (10.0, 0.0, 0.0, -10.0)
        assert 2.5e5 < c < 3.0e5 and 4.0e6 < f < 4.1e6  # around Tsumagoi in UTM 54N
        assert _quantised(rec.inputs, 3) and _quantised(rec.target, 4)
        m = ID.match(check_sample_id(rec.id))
        assert m is not None and m.group(1) == ("demo" if rec.split == "test" else rec.split)
        assert rec.meta["area"] == f"{m.group(1)}_a{m.group(2)}" == rec.meta["group"]
        assert rec.meta["chip"] == f"c{m.group(3)}"
        day = date.fromisoformat(rec.meta["date"])
        assert day.strftime("%Y%m%d") == m.group(4)
        assert date(2017, 5, 1) <= day <= date(2017, 11, 30)
        assert abs((date.fromisoformat(rec.meta["sar_date"]) - day).days) <= 3
        assert rec.meta["sensor"] == ("sentinel2" if rec.split == "pretrain" else "planet")
    # The two chips of the train area sit side by side.
    first = {r.meta["chip"]: r.grid for r in tiny if r.split == "train"}
    assert first["c01"].transform[2] == first["c00"].transform[2] + 320.0
    assert first["c01"].transform[5] == first["c00"].transform[5]


def test_ndvi_range_mask_and_backscatter_everywhere(tiny: list[SampleRecord]) -> None:
    for rec in tiny:
        assert rec.target is not None and rec.valid is not None
        assert rec.target.min() >= -1.0 and rec.target.max() <= 1.0
        assert np.all(rec.target[rec.valid == 0] == 0.0)
        assert np.all(rec.target[rec.valid == 1] != 0.0)
        assert np.isfinite(rec.inputs).all()
        assert rec.inputs[:, rec.valid == 0].std() > 1.0  # non-farm land has backscatter too
    farm_share = np.mean([r.valid.mean() for r in tiny if r.valid is not None])
    assert 0.2 < farm_share < 0.9


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("params", [TINY, {}], ids=["tiny", "default"])
def test_areas_are_spatially_disjoint(params: dict[str, object]) -> None:
    synth = NdviSynth(**params)  # type: ignore[arg-type]
    chips = [(spec.name, g.bounds()) for spec in synth.areas() for g in spec.chip_grids()]
    for i, (name_a, a) in enumerate(chips):
        for name_b, b in chips[i + 1 :]:
            assert not _overlap(a, b), (name_a, name_b)
    splits = {spec.split for spec in synth.areas()}
    assert splits == {"train", "val", "test", "pretrain"}


def test_every_configuration_of_areas_is_disjoint_and_test_locations_are_apart() -> None:
    synth = NdviSynth(pretrain_areas=len(PRETRAIN_ANCHORS), test_locations=len(TEST_ANCHORS))
    boxes = [(spec.name, g.bounds()) for spec in synth.areas() for g in spec.chip_grids()]
    for i, (name_a, a) in enumerate(boxes):
        for name_b, b in boxes[i + 1 :]:
            if name_a.startswith("demo") or name_b.startswith("demo"):
                gap = max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3])
                assert gap >= 1_000.0, (name_a, name_b, gap)  # a test location is its own place


def test_overlapping_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        NdviSynth(train_chips=(8, 8))
    with pytest.raises(ValueError, match="test_locations"):
        NdviSynth(test_locations=len(TEST_ANCHORS) + 1)
    with pytest.raises(ValueError, match="test_seed"):
        NdviSynth(test="private")


def _targets(records: list[SampleRecord], split: str) -> np.ndarray:
    return np.stack([r.target for r in records if r.split == split]).astype(np.float64)


def test_the_test_split_comes_from_its_own_seed_only(tiny: list[SampleRecord]) -> None:
    """The private test cannot be rebuilt by rerunning the public generator: another test
    seed gives other fields, calendars, weather and dates; train, val and pretrain stay."""
    private = list(NdviSynth(seed=7, test="private", test_seed=PRIVATE_SEED, **TINY).samples())
    shared = [r for r in tiny if r.split != "test"]
    for a, b in zip(shared, [r for r in private if r.split != "test"], strict=True):
        assert a.id == b.id and np.array_equal(a.inputs, b.inputs)
        assert np.array_equal(a.target, b.target) and np.array_equal(a.valid, b.valid)
    demo = [r for r in tiny if r.split == "test"]
    secret = [r for r in private if r.split == "test"]
    assert len(demo) == len(secret) == 8
    assert not {r.id for r in demo} & {r.id for r in secret}
    assert all(r.id.startswith("test_a") for r in secret)
    a, b = _targets(tiny, "test"), _targets(private, "test")
    mse = float(np.mean((a - b) ** 2))
    assert mse > 0.5 * a.var()  # as far apart as unrelated chips, not noise on one scene
    va = np.stack([r.valid for r in demo])
    vb = np.stack([r.valid for r in secret])
    assert np.mean(va == vb) < 0.8  # other fields: another farm mask
    # ... and the test split does not depend on the public seed at all
    other = NdviSynth(seed=8, test="private", test_seed=PRIVATE_SEED, splits=("test",), **TINY)
    for r1, r2 in zip(secret, other.samples(), strict=True):
        assert r1.id == r2.id and np.array_equal(r1.target, r2.target)
        assert np.array_equal(r1.inputs, r2.inputs)


def test_groups_and_the_committed_manifest() -> None:
    synth = NdviSynth()
    tests = [a for a in synth.areas() if a.split == "test"]
    assert len(tests) >= 12 and all(len(synth.area_acquisitions(a)) == 4 for a in tests)
    m = Manifest.load(REPO_ROOT / "datasets" / "ndvi-synth" / "manifest.json")
    assert m.source["version"] == VERSION and m.test_kind == "demo"
    for split in m.splits:
        assert m.groups(split) is not None, split
    assert m.n_groups("test") == 12 and m.count()["test"] == 48
    assert m.count() == {"train": 96, "val": 48, "test": 48, "pretrain": 480}
    if m.private_test is not None:
        assert set(m.private_test) == {"digest", "n_chips", "n_groups"}


def _parcel_means(synth: NdviSynth, area: Area, day: int) -> np.ndarray:
    ndvi, valid = synth.ndvi(area, day, "planet")
    idx = area.parcel[valid == 1]
    n = len(area.parcels)
    return np.bincount(idx, ndvi[valid == 1], n) / np.maximum(np.bincount(idx, minlength=n), 1)


def test_phenology_bare_soil_peak_and_harvest_drop() -> None:
    synth = NdviSynth(seed=3, **TINY)
    area = synth.area(synth.areas()[0])
    p = area.parcels
    size = np.bincount(area.parcel[area.farm], minlength=len(p))
    cropped = [
        i
        for i in range(len(p))
        if size[i] >= 10 and p.plant[i, 0] >= 2 and p.harvest[i, 0] < SEASON_DAYS - 2
    ]
    assert len(cropped) >= 3
    for i in cropped:
        plant, harvest = int(p.plant[i, 0]), int(p.harvest[i, 0])
        bare = _parcel_means(synth, area, plant - 1)[i]
        peak = _parcel_means(synth, area, harvest - 1)[i]
        after = _parcel_means(synth, area, harvest + 1)[i]
        half = _parcel_means(synth, area, (plant + harvest) // 2)[i]
        assert 0.08 <= bare <= 0.32, (i, bare)
        assert 0.7 <= peak <= 0.9, (i, peak)
        assert bare + 0.05 < half < peak - 0.05, (i, bare, half, peak)
        assert peak - after > 0.3, (i, peak, after)
        # Rises week by week (up to sensor noise: per-date offsets, soil moisture).
        rise = [_parcel_means(synth, area, d)[i] for d in range(plant, harvest, 7)]
        assert np.all(np.diff(rise) > -0.05), (i, rise)


def test_some_parcels_have_two_crop_cycles() -> None:
    synth = NdviSynth()
    p = synth.area(synth.areas()[0]).parcels
    second_harvest = (p.plant[:, 1] < NO_HARVEST) & (p.harvest[:, 1] < SEASON_DAYS)
    assert 0.1 < second_harvest.mean() < 0.7


def test_dates_are_paired_with_a_six_day_sentinel1_repeat() -> None:
    synth = NdviSynth()
    planet, s2 = synth.acquisitions("planet"), synth.acquisitions("sentinel2")
    assert len(planet) == 24 and len(s2) == 30
    sar_days = {d for _, d in planet + s2}
    assert len({d % 6 for d in sar_days}) == 1
    assert all(abs(opt - sar) <= 3 for opt, sar in planet + s2)
    assert len({d % 5 for d, _ in s2}) == 1
    assert season_date(planet[0][0]).month == 5 and season_date(planet[-1][0]).month == 11
    for spec in synth.areas():  # each test location on 4 dates of its own, on the same orbit
        if spec.split == "test":
            dates = synth.area_acquisitions(spec)
            assert len(dates) == 4 and all(abs(opt - sar) <= 3 for opt, sar in dates)
            assert {sar % 6 for _, sar in dates} == {next(iter(sar_days)) % 6}
            edges = [2 + (SEASON_DAYS - 4) * k // 4 for k in range(5)]
            assert all(edges[i] <= opt < edges[i + 1] for i, (opt, _) in enumerate(dates))


def test_water_cloud_backscatter_rises_with_canopy() -> None:
    synth = NdviSynth(seed=7)
    area = synth.area(synth.areas()[0])
    vv, vh, ndvi = [], [], []
    for day, sar_day in synth.acquisitions("planet"):
        sar = synth.sar(area, sar_day).astype(np.float64)
        target, valid = synth.ndvi(area, day, "planet")
        vv.append(sar[0][valid == 1])
        vh.append(sar[1][valid == 1])
        ndvi.append(target[valid == 1])
    x_vv, x_vh, y = np.concatenate(vv), np.concatenate(vh), np.concatenate(ndvi)
    assert np.corrcoef(x_vh, y)[0, 1] > 0.35  # volume scattering of the canopy
    assert np.corrcoef(x_vv, y)[0, 1] > 0.1  # weaker: soil moisture dominates bare fields
    assert -15.0 < np.median(x_vv) < -8.0 and -24.0 < np.median(x_vh) < -14.0
    assert np.median(x_vh[y > 0.75]) - np.median(x_vh[y < 0.3]) > 3.0


def test_pretrain_sensor_is_a_linear_map_of_the_target_sensor() -> None:
    synth = NdviSynth(seed=5, sentinel2_gain=1.2, sentinel2_offset=-0.05, **TINY)
    spec = next(s for s in synth.areas() if s.split == "pretrain")
    area = synth.area(spec)
    planet, s2 = [], []
    for day in range(2, SEASON_DAYS, 4):
        target, valid = synth.ndvi(area, day, "planet")
        second, valid2 = synth.ndvi(area, day, "sentinel2")
        assert np.array_equal(valid, valid2)
        planet.append(target[valid == 1])
        s2.append(second[valid == 1])
    x = np.concatenate(planet).astype(np.float64)
    y = np.concatenate(s2).astype(np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    assert slope == pytest.approx(1 / 1.2, rel=0.03)
    assert intercept == pytest.approx(0.05 / 1.2, abs=0.015)


def test_speckle_enl_on_homogeneous_bare_parcels() -> None:
    synth = NdviSynth(seed=11)
    area = synth.area(synth.areas()[0])
    p = area.parcels
    ratios = []
    for day in range(0, 6):
        sar = 10.0 ** (synth.sar(area, day).astype(np.float64) / 10.0)
        for i in range(len(p)):
            m = area.parcel == i
            if m.sum() < 30 or p.plant[i, 0] <= day:
                continue
            for band in sar:
                ratios.append(band[m] / band[m].mean())
    r = np.concatenate(ratios)
    assert r.size > 2000
    assert 1.0 / r.var() == pytest.approx(4.4, abs=0.2)


@pytest.mark.slow
def test_full_default_dataset_counts() -> None:
    synth = NdviSynth()
    counts: dict[str, int] = {}
    groups: dict[str, set[str]] = {}
    for rec in synth.samples():
        assert rec.inputs.shape == (2, 128, 128) and rec.target is not None
        counts[rec.split] = counts.get(rec.split, 0) + 1
        groups.setdefault(rec.split, set()).add(rec.meta["group"])
    assert {k: len(v) for k, v in groups.items()} == {
        "train": 1,
        "val": 1,
        "test": 12,
        "pretrain": 4,
    }
    assert (
        counts
        == synth.expected_counts()
        == {
            "train": 96,
            "val": 48,
            "test": 48,
            "pretrain": 480,
        }
    )
