"""Sen1Floods11 with the quirks of the files as published (issue 14).

The layout below is built like the bucket's ``v1.1/`` hand-labelled part, with what the
real files do that a tidy fixture would not:

- a label's transform differs from its S1 chip's in the last digits (pixel size
  8.983152841195184e-05 vs 8.983152841195215e-05 degrees: ~2e-12 of a pixel across a
  512-pixel chip), and one origin differs in its last bit;
- labels are int16 with -1 (not labelled), one of them without a declared nodata value;
- chips are 512 x 512 in EPSG:4326 (one here; the others are 64 x 64 for speed: the
  importer does not depend on the size);
- the S1 chips have NaN at their edges (a swath border, a corner) and declare no nodata;
- the split CSVs have no header: two columns, S1 file and label file;
- the Bolivia hold-out split (``flood_bolivia_data.csv``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.datasets import ops
from harness.datasets.importers import Sen1Floods11Source, SourceDataError
from harness.datasets.loader import SplitDir
from harness.datasets.manifest import Manifest
from harness.geo import Grid, compare_grids, read_raster, write_raster
from harness.settings import REPO_ROOT, Settings
from tests.data.sen1floods11.make import CSV_NAMES  # the bucket's split file names

S1_PIXEL = 8.983152841195215e-05  # degrees, as in the S1Hand files
LABEL_PIXEL = 8.983152841195184e-05  # the LabelHand files' pixel size: 15th digit differs
SPLITS: dict[str, list[str]] = {
    "train": ["Ghana_101", "Ghana_102", "India_201"],
    "val": ["India_202"],
    "test": ["Mekong_301", "Spain_401"],
    "bolivia": ["Bolivia_103757", "Bolivia_103758"],
}
BIG = "Ghana_101"  # the one 512 x 512 chip
EXACT = "Bolivia_103758"  # the one label on its chip's exact grid
ORIGINS = {"Ghana": (-1.2, 8.4), "India": (91.1, 26.2), "Mekong": (105.3, 11.6)}
ORIGINS |= {"Spain": (-5.9, 37.4), "Bolivia": (-65.2, -14.1)}


@dataclass(frozen=True)
class Bucket:
    root: Path
    hand: Path

    def s1(self, sid: str) -> Path:
        return self.hand / "S1Hand" / f"{sid}_S1Hand.tif"

    def label(self, sid: str) -> Path:
        return self.hand / "LabelHand" / f"{sid}_LabelHand.tif"

    def label_rel(self, sid: str) -> str:
        return self.label(sid).relative_to(self.root).as_posix()


def s1_grid(sid: str) -> Grid:
    event, num = sid.rsplit("_", 1)
    size = 512 if sid == BIG else 64
    west, north = ORIGINS[event]
    west += (int(num) % 100) * 0.05
    return Grid("EPSG:4326", (S1_PIXEL, 0.0, west, 0.0, -S1_PIXEL, north), height=size, width=size)


def label_grid(sid: str) -> Grid:
    g = s1_grid(sid)
    if sid == EXACT:
        return g
    _, b, c, d, _, f = g.transform
    if sid == "Spain_401":  # the origin's last bit too
        c = float(np.nextafter(c, 0.0))
    return replace(g, transform=(LABEL_PIXEL, b, c, d, -LABEL_PIXEL, f))


def make_bucket(root: Path, seed: int = 0) -> Bucket:
    hand = root / "v1.1" / "data" / "flood_events" / "HandLabeled"
    bucket = Bucket(root, hand)
    rng = np.random.default_rng(seed)
    for sids in SPLITS.values():
        for sid in sids:
            g = s1_grid(sid)
            n = g.width
            yy, xx = np.mgrid[0:n, 0:n]
            water = (yy - n * 0.4) ** 2 + (xx - n * 0.6) ** 2 < (n * 0.25) ** 2
            vv = np.where(water, rng.normal(-21, 1.5, (n, n)), rng.normal(-11, 1.5, (n, n)))
            vh = np.where(water, rng.normal(-28, 1.5, (n, n)), rng.normal(-18, 1.5, (n, n)))
            s1 = np.stack([vv, vh]).astype(np.float32)
            s1[:, :, : n // 16] = np.nan  # a swath edge: the first columns
            s1[:, np.add.outer(np.arange(n), np.arange(n)) > 1.8 * n] = np.nan  # a corner
            label = water.astype(np.int16)
            label[: n // 8, n // 4 : n // 2] = -1  # not labelled
            label[-2:, :] = -1
            write_raster(bucket.s1(sid), s1, g, band_names=("VV", "VH"))  # no nodata declared
            nodata = None if sid == "India_201" else -1
            write_raster(bucket.label(sid), label, label_grid(sid), nodata=nodata)
    csvs = root / "v1.1" / "splits" / "flood_handlabeled"
    csvs.mkdir(parents=True)
    for split, sids in SPLITS.items():
        rows = "".join(f"{s}_S1Hand.tif,{s}_LabelHand.tif\n" for s in sids)  # no header
        (csvs / CSV_NAMES[split]).write_text(rows)
    return bucket


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Bucket:
    return make_bucket(tmp_path_factory.mktemp("bucket"))


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory, bucket: Bucket
) -> tuple[Settings, ops.Outcome]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home, data_root=home / "data", manifests_dir=home / "datasets")
    return settings, ops.import_dataset(settings, "sen1floods11", bucket.root, progress=False)


def test_the_published_files_import_with_their_labels_snapped(
    bucket: Bucket, imported: tuple[Settings, ops.Outcome]
) -> None:
    settings, out = imported
    assert out.status == "frozen"
    assert out.counts == {"train": 3, "val": 1, "test": 2, "bolivia": 2}
    # every label but one differed in its last digits; each is named, with the amount
    snapped = {s.file: s for s in out.snapped}
    want = {bucket.label_rel(sid) for ids in SPLITS.values() for sid in ids if sid != EXACT}
    assert set(snapped) == want
    big = snapped[bucket.label_rel(BIG)]
    assert big.onto == f"{BIG}_S1Hand.tif"
    expected = abs(LABEL_PIXEL - S1_PIXEL) * 512 / S1_PIXEL  # ~1.8e-12 of a pixel
    assert big.offset == pytest.approx(expected, rel=1e-3) and 1e-12 < big.offset < 1e-11
    assert all(0 < s.offset < 1e-10 for s in out.snapped)
    report = json.loads(out.report.read_text()) if out.report else {}
    assert out.report == settings.dataset_meta_dir("sen1floods11") / "import-report.json"
    assert report["status"] == "frozen" and report["grid_tolerance_pixels"] == 1e-6
    assert {s["file"] for s in report["snapped"]} == want
    assert report["max_offset_pixels"] == max(s.offset for s in out.snapped)
    # targets and masks lie on their S1 chip's exact grid; the valid mask is 0 at label -1
    # and wherever VV or VH is NaN; inputs keep their NaN
    manifest = Manifest.load(settings.manifest_path("sen1floods11"))
    for split, ids in SPLITS.items():
        loaded = SplitDir(out.path / split)
        for sid in ids:
            sample = loaded.load(sid)
            s1, label = read_raster(bucket.s1(sid)), read_raster(bucket.label(sid))
            assert sample.grid == s1.grid
            for kind in ("targets", "valid"):
                assert read_raster(out.path / split / kind / f"{sid}.tif").grid == s1.grid
            lab = label.data[0]
            want_valid = (lab != -1) & np.isfinite(s1.data).all(axis=0)
            np.testing.assert_array_equal(sample.valid, want_valid)
            np.testing.assert_array_equal(sample.target, (lab == 1).astype(np.uint8))
            np.testing.assert_array_equal(sample.inputs, s1.data)
            assert sample.input_nodata is not None and np.isnan(sample.input_nodata)
            assert not sample.valid[:, 0].any()  # the NaN swath edge is not scored
    assert manifest.band_roles == ("VV", "VH") and manifest.bands == ("VV_db", "VH_db")
    assert SplitDir(out.path / "train").load(BIG).grid.shape == (512, 512)
    ops.verify(settings, "sen1floods11", progress=False)


def test_bolivia_is_its_own_split_and_group(imported: tuple[Settings, ops.Outcome]) -> None:
    settings, _ = imported
    manifest = Manifest.load(settings.manifest_path("sen1floods11"))
    assert sorted(manifest.splits["bolivia"]) == SPLITS["bolivia"]
    others = {sid for split, ids in manifest.splits.items() if split != "bolivia" for sid in ids}
    assert not others & set(manifest.splits["bolivia"])
    assert manifest.groups("bolivia") == {sid: "Bolivia" for sid in SPLITS["bolivia"]}
    assert manifest.groups("test") == {"Mekong_301": "Mekong", "Spain_401": "Spain"}
    assert ops.open_split(settings, "sen1floods11", "bolivia").ids == SPLITS["bolivia"]


def test_the_bolivia_split_scores_alone_with_an_na_interval(
    imported: tuple[Settings, ops.Outcome], tmp_path: Path
) -> None:
    settings, _ = imported
    split = ops.open_split(settings, "sen1floods11", "bolivia")
    for sample in split:
        assert sample.target is not None
        write_raster(tmp_path / f"{sample.id}.tif", sample.target, sample.grid)
    args = ["--home", str(settings.home), "--data-root", str(settings.data_root)]
    args += ["--datasets-dir", str(settings.manifests_dir), "score", str(tmp_path)]
    args += ["--dataset", "sen1floods11", "--split", "bolivia"]
    res = CliRunner().invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert (d["split"], d["n_chips"], d["metrics"]["iou"]) == ("bolivia", 2, 1.0)
    iv = d["interval"]
    assert iv["low"] is None and iv["high"] is None and iv["n_units"] == 1
    assert iv["note"] == (
        "n/a: the split has 1 independence group (Bolivia); an interval needs at least 2"
    )
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "n/a (see below)" in text.stdout and "CI n/a: the split has 1" in text.stdout
    assert "[1, 1]" not in text.stdout


def test_a_label_off_by_more_than_the_tolerance_is_refused_naming_both_files(
    tmp_path: Path,
) -> None:
    bucket = make_bucket(tmp_path / "b")
    sid = "India_202"
    r = read_raster(bucket.label(sid))
    _, b, c, d, e, f = r.grid.transform
    off = 9.01e-05  # a pixel of 0.0000901 degrees instead of 0.0000898
    write_raster(
        bucket.label(sid), r.data, replace(r.grid, transform=(off, b, c, d, e, f)), nodata=-1
    )
    with pytest.raises(SourceDataError) as err:
        list(Sen1Floods11Source(bucket.root).samples())
    (problem,) = err.value.problems
    rel = (off - S1_PIXEL) / S1_PIXEL
    assert problem.startswith(f"{bucket.label_rel(sid)}: grid differs from {sid}_S1Hand.tif: ")
    assert (
        f"pixel width differs by {rel:.1e} of a pixel (0.0000901 vs 0.0000898 degrees), "
        f"{rel * 64:.3g} pixels across the 64-pixel chip"
    ) in problem
    assert "1e-06 of a pixel" in problem
    assert "8.983152841195215e-05" not in problem  # no 17-digit numbers that look equal
    assert "pixel height" not in problem  # only the field that differs


def test_the_card_says_what_the_data_is(imported: tuple[Settings, ops.Outcome]) -> None:
    settings, _ = imported
    card = (settings.dataset_meta_dir("sen1floods11") / "README.md").read_text()
    flat = " ".join(card.split())
    assert "## What the data is" in card
    # classes and their meaning: all water, not only newly flooded water
    assert "- `1`: water: all surface water on the chip, permanent water" in flat
    assert "not only newly flooded land" in flat
    assert "- `0`: not water" in flat and "- `-1`: no data / not labelled" in flat
    assert "**Licence**:" in card and "github.com/cloudtostreet/Sen1Floods11" in card
    assert "**Citation**: Bonafilia, D., Tellman, B., Anderson, T., Issenberg, E. (2020)" in card
    assert "CVPR" in card and "Sen1Floods11: a georeferenced dataset" in flat
    assert "**Source**: Cloud to Street" in card
    # bands with their roles, groups and split sizes
    assert "1. `VV_db`: role `VV`, VV polarisation" in card and "2. `VH_db`: role `VH`" in card
    assert "Band roles: VV/VH (stated in the manifest)" in card
    assert "Chips per split: train 3, val 1, test 2, bolivia 2." in card
    assert "| train | 3 | 2 |" in card and "| bolivia | 2 | 1 | held out | held out |" in card
    assert "| test | 2 | 2 | held out | held out |" in card
    assert "water share of valid pixels" in card
    assert "% water |" in card and "% flooded" not in card
    assert "the water mask in blue over the `VH_db` band" in card
    assert "post-event" not in card and "flood mask" not in card
    assert "**Format.**" not in card and "Anywhere under the source folder" not in card
    looks = sorted(
        p.name for p in (settings.dataset_meta_dir("sen1floods11") / "quicklooks").iterdir()
    )
    assert looks and not any(sid in name for name in looks for sid in SPLITS["bolivia"])


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_import_writes_its_manifest_and_card_in_the_work_folder(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not into the project's datasets/, which ships the embedded datasets' manifests."""
    for var in ("SARBENCH_DATASETS_DIR", "SARBENCH_DATA_ROOT"):
        monkeypatch.delenv(var, raising=False)
    shipped = REPO_ROOT / "datasets"
    before = _tree(shipped)
    home = tmp_path / "home"
    res = CliRunner().invoke(
        main, ["--home", str(home), "datasets", "import", "sen1floods11", str(bucket.root)]
    )
    assert res.exit_code == 0, res.output
    assert _tree(shipped) == before
    assert not (shipped / "sen1floods11").exists()
    work = home / "datasets" / "sen1floods11"
    assert (work / "manifest.json").is_file() and (work / "README.md").is_file()
    assert (work / "import-report.json").is_file()
    # the import report on the terminal: which files were snapped, by how much
    out = res.stdout
    assert "snapped: 7 file(s) written onto their input's exact grid" in out
    line = next(x for x in out.splitlines() if bucket.label_rel(BIG) in x)
    assert line.strip().startswith(f"{bucket.label_rel(BIG)}: 1.8e-12 pixels, onto the grid of")
    assert f"report: {work / 'import-report.json'}" in out
    # lookup: the work folder's manifest; the embedded ones still come from the package
    settings = Settings.load(home=home)
    assert settings.manifest_path("sen1floods11") == work / "manifest.json"
    assert settings.manifest_path("flood-synth") == shipped / "flood-synth" / "manifest.json"
    listing = CliRunner().invoke(main, ["--home", str(home), "datasets", "list"])
    assert "sen1floods11" in listing.stdout and "flood-synth" in listing.stdout
    assert os.environ.get("SARBENCH_DATASETS_DIR") is None


def test_grids_within_the_tolerance_are_the_same_everywhere() -> None:
    """The one rule (harness.geo.compare_grids) the importer, the loader, verify and
    prediction validation share."""
    s1, label = s1_grid(BIG), label_grid(BIG)
    match = compare_grids(label, s1)
    assert match.same and not match.exact and str(match) == "same grid"
    a, b, c, d, e, f = s1.transform
    shifted = replace(s1, transform=(a, b, c + 2.5 * a, d, e, f))
    words = str(compare_grids(shifted, s1))
    assert words.startswith("x origin differs by 2.5 pixels (")
    assert words.endswith(" degrees)")
