"""The importers on small real GeoTIFF trees made by seeded scripts under tests/data/."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.datasets import ops
from harness.datasets.importers import FolderSource, Sen1Floods11Source, SourceDataError
from harness.datasets.loader import SplitDir
from harness.datasets.manifest import Manifest
from harness.errors import ManifestError, SarbenchError, UnknownNameError
from harness.geo import Grid, read_raster, write_raster
from harness.settings import Settings
from tests.data.folder.make import FLOOD_NODATA, INPUT_NODATA, parcel_polygons, write_gpkg
from tests.data.folder.make import make as make_folder
from tests.data.sen1floods11.make import Tree
from tests.data.sen1floods11.make import make as make_s1f11
from tests.helpers import dataset_cli


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return make_s1f11(tmp_path / "bucket")


def _import(settings: Settings, kind: str, src: Path, **kw) -> ops.Outcome:
    return ops.import_dataset(settings, kind, src, progress=False, **kw)


def _problems(err: pytest.ExceptionInfo[SourceDataError]) -> list[str]:
    assert isinstance(err.value, SarbenchError)
    for p in err.value.problems:
        assert p in str(err.value)
    return err.value.problems


def _shifted(grid: Grid, dx: float) -> Grid:
    a, b, c, d, e, f = grid.transform
    return dataclasses.replace(grid, transform=(a, b, c + dx, d, e, f))


# --------------------------------------------------------------------------- sen1floods11


def test_sen1floods11_import_freezes_the_official_splits(settings: Settings, tree: Tree) -> None:
    out = _import(settings, "sen1floods11", tree.root)
    assert out.status == "frozen" and out.name == "sen1floods11"
    assert out.counts == {"train": 2, "val": 1, "test": 1, "bolivia": 2}
    manifest = Manifest.load(settings.manifest_path("sen1floods11"))
    assert manifest.digest == out.digest
    assert manifest.task == "flood" and manifest.bands == ("VV_db", "VH_db")
    assert {k: sorted(v) for k, v in manifest.splits.items()} == tree.splits
    # the event (the chip id's prefix) is each chip's independence group
    assert manifest.samples["Bolivia_201"] == {"event": "Bolivia", "group": "Bolivia"}
    assert manifest.samples["Ghana_103"] == {"event": "Ghana", "group": "Ghana"}
    assert manifest.groups("bolivia") == {"Bolivia_201": "Bolivia", "Bolivia_202": "Bolivia"}
    assert ops.groups_of(settings, "sen1floods11", "train") == {
        "Ghana_101": "Ghana",
        "Ghana_102": "Ghana",
    }
    assert manifest.test_kind == "public" and manifest.private_test is None
    src = manifest.source
    assert src["kind"] == "import" and src["importer"] == "sen1floods11"
    assert src["source_folder"] == tree.root.resolve().name
    assert (
        src["params"]["split_csvs"]["val"] == "v1.1/splits/flood_handlabeled/flood_valid_data.csv"
    )
    for split, ids in tree.splits.items():
        for sid in ids:
            for kind in ("inputs", "targets", "valid"):
                rel = f"{split}/{kind}/{sid}.tif"
                assert (out.path / rel).is_file() and rel in manifest.files
    assert len(manifest.files) == 6 * 3
    ops.verify(settings, "sen1floods11", progress=False)


def test_sen1floods11_valid_mask_is_zero_exactly_at_nodata(settings: Settings, tree: Tree) -> None:
    out = _import(settings, "sen1floods11", tree.root)
    seen_vh_only = seen_label_nodata = False
    for split, ids in tree.splits.items():
        loaded = SplitDir(out.path / split)
        assert loaded.ids == sorted(ids)
        for sample in loaded:
            s1, label = read_raster(tree.s1(sample.id)), read_raster(tree.label(sample.id))
            lab = label.data[0]
            finite = np.isfinite(s1.data).all(axis=0)
            assert sample.valid is not None and sample.target is not None
            np.testing.assert_array_equal(sample.valid, (lab != -1) & finite)
            np.testing.assert_array_equal(sample.target, (lab == 1).astype(np.uint8))
            assert sample.target.dtype == np.uint8
            np.testing.assert_array_equal(sample.inputs, s1.data)  # NaN kept, bit for bit
            assert sample.inputs.dtype == np.float32
            assert sample.input_nodata is not None and np.isnan(sample.input_nodata)
            assert sample.grid == s1.grid and sample.grid.crs == "EPSG:4326"
            assert sample.band_names == ("VV_db", "VH_db")
            seen_vh_only |= bool((np.isnan(s1.data[1]) & ~np.isnan(s1.data[0])).any())
            seen_label_nodata |= bool((lab == -1).any() and (lab[finite] == -1).any())
    assert seen_vh_only and seen_label_nodata  # the fixture exercises both kinds of nodata


def test_sen1floods11_reimport_reproduces_the_digest_wherever_the_source_lies(
    settings: Settings, tree: Tree, tmp_path: Path
) -> None:
    first = _import(settings, "sen1floods11", tree.root)
    assert first.status == "frozen"
    again = _import(settings, "sen1floods11", tree.root)
    assert again.status == "prepared" and again.digest == first.digest
    moved = tmp_path / "elsewhere"
    shutil.copytree(tree.root / "v1.1", moved)  # source_dir = the v1.1 folder itself
    from_copy = _import(settings, "sen1floods11", moved)
    assert from_copy.status == "prepared" and from_copy.digest == first.digest
    ops.verify(settings, "sen1floods11", progress=False)


def test_importing_other_data_under_a_frozen_name_is_refused(
    settings: Settings, tree: Tree, tmp_path: Path
) -> None:
    first = _import(settings, "sen1floods11", tree.root)
    manifest_before = settings.manifest_path("sen1floods11").read_bytes()
    other = make_s1f11(tmp_path / "other", seed=5)
    with pytest.raises(ManifestError) as err:
        _import(settings, "sen1floods11", other.root)
    assert "nothing was replaced" in str(err.value) and "content differs" in str(err.value)
    assert settings.manifest_path("sen1floods11").read_bytes() == manifest_before
    assert ops.verify(settings, "sen1floods11", progress=False).digest == first.digest


def test_sen1floods11_bolivia_split_is_optional(settings: Settings, tmp_path: Path) -> None:
    tree = make_s1f11(tmp_path / "b", bolivia=False)
    out = _import(settings, "sen1floods11", tree.root, name="s1f-nobol")
    assert out.counts == {"train": 2, "val": 1, "test": 1}


def test_sen1floods11_source_streams_in_csv_order(tree: Tree) -> None:
    src = Sen1Floods11Source(tree.root)
    assert src.expected_counts() == {"train": 2, "val": 1, "test": 1, "bolivia": 2}
    it = src.samples()
    first = next(it)
    assert (first.split, first.id) == ("train", "Ghana_101")
    assert [(r.split, r.id) for r in it][-1] == ("bolivia", "Bolivia_202")


def test_sen1floods11_task_and_name_are_checked(tree: Tree) -> None:
    with pytest.raises(SarbenchError, match="task is 'flood', not 'ndvi'"):
        Sen1Floods11Source(tree.root, task="ndvi")
    assert Sen1Floods11Source(tree.root, task="flood").task == "flood"
    with pytest.raises(SarbenchError, match="not a valid dataset name"):
        Sen1Floods11Source(tree.root, name="Sen1 Floods")


def test_sen1floods11_missing_pieces_say_what_was_expected_where(tree: Tree) -> None:
    shutil.rmtree(tree.label_dir)
    tree.csv("train").unlink()
    with pytest.raises(SourceDataError) as err:
        Sen1Floods11Source(tree.root)
    problems = _problems(err)
    assert len(problems) == 2
    assert problems[0].startswith("LabelHand: not found within 6 folder levels")
    assert "HandLabeled/LabelHand/<Event>_<id>_LabelHand.tif" in problems[0]
    assert problems[1].startswith("flood_train_data.csv: not found")
    assert "splits/flood_handlabeled/flood_train_data.csv" in problems[1]
    assert str(tree.root) in str(err.value)


def test_sen1floods11_an_ambiguous_piece_is_an_error(tree: Tree) -> None:
    shutil.copytree(tree.s1_dir, tree.root / "v1.0" / "S1Hand")
    with pytest.raises(SourceDataError) as err:
        Sen1Floods11Source(tree.root)
    (problem,) = _problems(err)
    assert "S1Hand: found 2" in problem and "v1.0/S1Hand" in problem
    assert "v1.1/data/flood_events/HandLabeled/S1Hand" in problem


def _append_row(tree: Tree, split: str, row: str) -> None:
    with tree.csv(split).open("a") as f:
        f.write(row + "\n")


def _missing_file(tree: Tree) -> str:
    shutil.copy(tree.s1("Ghana_101"), tree.s1("Ghana_999"))  # its label is missing
    _append_row(tree, "train", "Ghana_999_S1Hand.tif,Ghana_999_LabelHand.tif")
    return (
        "flood_train_data.csv line 3: "
        "v1.1/data/flood_events/HandLabeled/LabelHand/Ghana_999_LabelHand.tif not found"
    )


def _label_on_another_grid(tree: Tree) -> str:
    r = read_raster(tree.label("Ghana_102"))
    write_raster(tree.label("Ghana_102"), r.data, _shifted(r.grid, 0.5), nodata=-1)
    return (
        "Ghana_102_LabelHand.tif: grid differs from Ghana_102_S1Hand.tif: x origin differs by "
        "4,096 pixels (0.297 vs -0.203 degrees)"
    )


def _label_of_another_size(tree: Tree) -> str:
    r = read_raster(tree.label("Ghana_103"))
    g = dataclasses.replace(r.grid, height=32)
    write_raster(tree.label("Ghana_103"), r.data[:, :32], g, nodata=-1)
    return "Ghana_103_LabelHand.tif: grid differs from Ghana_103_S1Hand.tif: size 64x32 vs 64x64"


def _three_bands(tree: Tree) -> str:
    r = read_raster(tree.s1("Ghana_104"))
    write_raster(tree.s1("Ghana_104"), np.concatenate([r.data, r.data[:1]]), r.grid)
    return "Ghana_104_S1Hand.tif: 3 band(s), expected 2 (VV, VH)"


def _unreadable(tree: Tree) -> str:
    tree.s1("Bolivia_201").write_bytes(b"this is not a GeoTIFF")
    return "Bolivia_201_S1Hand.tif: not a readable GeoTIFF"


def _bad_label_values(tree: Tree) -> str:
    r = read_raster(tree.label("Bolivia_202"))
    data = r.data.copy()
    data[0, 5, 5:8] = 2
    data[0, 6, 0] = 7
    write_raster(tree.label("Bolivia_202"), data, r.grid, nodata=-1)
    return "Bolivia_202_LabelHand.tif: label values outside {-1, 0, 1}: 2, 7 (4 pixels)"


def _in_two_splits(tree: Tree) -> str:
    _append_row(tree, "test", "Ghana_101_S1Hand.tif,Ghana_101_LabelHand.tif")
    return (
        "flood_test_data.csv line 2: Ghana_101_S1Hand.tif is listed in two splits ('train' at "
        "v1.1/splits/flood_handlabeled/flood_train_data.csv line 1, 'test' here)"
    )


def _malformed_row(tree: Tree) -> str:
    _append_row(tree, "val", "Ghana_103_S1Hand.tif")
    return "flood_valid_data.csv line 2: malformed row 'Ghana_103_S1Hand.tif'"


def _mismatched_row(tree: Tree) -> str:
    _append_row(tree, "val", "Ghana_104_S1Hand.tif,Ghana_101_LabelHand.tif")
    return "flood_valid_data.csv line 2: malformed row Ghana_104_S1Hand.tif,Ghana_101_LabelHand.tif"


BREAKS: dict[str, Callable[[Tree], str]] = {
    "missing file": _missing_file,
    "label on another grid": _label_on_another_grid,
    "label of another size": _label_of_another_size,
    "wrong band count": _three_bands,
    "unreadable file": _unreadable,
    "label values": _bad_label_values,
    "sample in two splits": _in_two_splits,
    "malformed row": _malformed_row,
    "row pairing two chips": _mismatched_row,
}


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_sen1floods11_each_problem_names_its_file(
    settings: Settings, tree: Tree, case: str
) -> None:
    expected = BREAKS[case](tree)
    with pytest.raises(SourceDataError) as err:
        _import(settings, "sen1floods11", tree.root)
    (problem,) = _problems(err)
    assert expected in problem
    assert not settings.dataset_dir("sen1floods11").exists()
    assert not settings.manifest_path("sen1floods11").exists()
    assert not list(settings.data_root.glob(".*staging*"))


def test_sen1floods11_reports_every_problem_in_one_error(settings: Settings, tree: Tree) -> None:
    cases = ["missing file", "label on another grid", "wrong band count", "unreadable file"]
    cases += ["label values", "sample in two splits", "malformed row"]
    expected = [BREAKS[c](tree) for c in cases]
    with pytest.raises(SourceDataError) as err:
        _import(settings, "sen1floods11", tree.root)
    problems = _problems(err)
    assert len(problems) == len(expected)
    for want in expected:
        assert sum(want in p for p in problems) == 1, want
    assert f"{len(expected)} problem(s)" in str(err.value)
    assert not settings.dataset_dir("sen1floods11").exists()


def test_sen1floods11_content_is_checked_only_while_streaming(tree: Tree) -> None:
    _unreadable(tree)
    src = Sen1Floods11Source(tree.root)  # plans from names, reads no raster
    with pytest.raises(SourceDataError, match=r"Bolivia_201_S1Hand\.tif"):
        list(src.samples())


def test_sen1floods11_csv_with_bom_crlf_and_blank_lines(tree: Tree) -> None:
    rows = tree.csv("train").read_text().splitlines()
    tree.csv("train").write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n\r\n").encode())
    assert Sen1Floods11Source(tree.root).expected_counts()["train"] == 2


def test_sen1floods11_a_declared_nodata_number_becomes_nan(tree: Tree) -> None:
    r = read_raster(tree.s1("Ghana_102"))
    data = r.data.copy()
    data[0, 7, 7:9] = -9999.0
    write_raster(tree.s1("Ghana_102"), data, r.grid, nodata=-9999.0)
    rec = {s.id: s for s in Sen1Floods11Source(tree.root).samples()}["Ghana_102"]
    assert np.isnan(rec.inputs[0, 7, 7:9]).all() and not np.isnan(r.data[0, 7, 7:9]).any()
    assert rec.valid is not None and not rec.valid[7, 7:9].any()
    assert rec.input_nodata is not None and np.isnan(rec.input_nodata)


# --------------------------------------------------------------------------------- folder


def test_folder_flood_import_turns_nodata_into_the_valid_mask(
    settings: Settings, tmp_path: Path
) -> None:
    made = make_folder(tmp_path / "flood-study", task="flood")
    out = _import(settings, "folder", made.root, task="flood")
    assert out.status == "frozen" and out.name == "flood-study"
    assert out.counts == {"train": 3, "val": 1, "test": 1}
    manifest = Manifest.load(settings.manifest_path("flood-study"))
    assert manifest.bands == ("VV_pre_db", "VV_post_db") and manifest.task == "flood"
    assert manifest.source["importer"] == "folder"
    for split, ids in made.splits.items():
        for sample in SplitDir(out.path / split):
            assert sample.id in ids
            x = read_raster(made.input(split, sample.id)).data
            y = read_raster(made.target(split, sample.id)).data[0]
            want_valid = (x != INPUT_NODATA).all(axis=0) & (y != FLOOD_NODATA)
            assert sample.valid is not None and sample.target is not None
            np.testing.assert_array_equal(sample.valid, want_valid)
            assert not sample.valid[0, 0] and not sample.valid[-1, -1]
            np.testing.assert_array_equal(sample.target, np.where(y == 1, 1, 0))
            assert sample.target.dtype == np.uint8
            # the file keeps -9999; a reader sees NaN there, one way for every dataset
            np.testing.assert_array_equal(sample.inputs, np.where(x == INPUT_NODATA, np.nan, x))
            assert sample.input_nodata == INPUT_NODATA
            on_disk = read_raster(out.path / split / "inputs" / f"{sample.id}.tif")
            assert on_disk.nodata == INPUT_NODATA and (on_disk.data == INPUT_NODATA).any()
    ops.verify(settings, "flood-study", progress=False)
    assert _import(settings, "folder", made.root, task="flood").status == "prepared"


def test_folder_import_without_groups_says_so_and_names_none(
    settings: Settings, tmp_path: Path
) -> None:
    made = make_folder(tmp_path / "plain", task="flood")  # stems train_00, val_00, ...
    out = _import(settings, "folder", made.root, task="flood")
    (note,) = out.notes
    assert "no independence groups" in note and "file stems start with split names" in note
    assert "every chip counts as its own group" in note and "groups.csv" in note
    manifest = Manifest.load(settings.manifest_path("plain"))
    assert all("group" not in meta for meta in manifest.samples.values())
    assert manifest.groups("train") is None and manifest.source["params"]["groups"] == "none"
    assert ops.groups_of(settings, "plain", "test") is None
    # the CLI prints the note
    res = dataset_cli(settings, "datasets", "import", "folder", str(made.root), "--task", "flood")
    assert res.exit_code == 0, res.output
    assert "note: folder import from" in res.output and "no independence groups" in res.output


def _rename_stems(made, rename) -> None:  # type: ignore[no-untyped-def]
    for split, ids in made.splits.items():
        for sid in ids:
            for path in (made.input(split, sid), made.target(split, sid)):
                path.rename(path.with_name(rename(split, sid) + ".tif"))


def test_folder_import_groups_from_the_stem_prefix(settings: Settings, tmp_path: Path) -> None:
    made = make_folder(tmp_path / "sites", counts={"train": 4, "val": 2, "test": 2})
    _rename_stems(made, lambda split, sid: f"site{int(sid[-2:]) % 2}_{sid}")
    out = _import(settings, "folder", made.root, task="flood")
    assert out.notes == ()
    manifest = Manifest.load(settings.manifest_path("sites"))
    assert manifest.groups("train") == {
        "site0_train_00": "site0",
        "site1_train_01": "site1",
        "site0_train_02": "site0",
        "site1_train_03": "site1",
    }
    assert manifest.n_groups("test") == 2
    assert manifest.source["params"]["groups"] == "file stem prefix"


def test_folder_import_groups_from_groups_csv_and_its_problems(
    settings: Settings, tmp_path: Path
) -> None:
    made = make_folder(tmp_path / "listed", counts={"train": 2, "val": 1, "test": 2})
    table = made.root / "groups.csv"
    table.write_text("id,group\ntrain_00,a\ntrain_01,a\nval_00,b\ntest_00,c\ntest_01,d\n")
    out = _import(settings, "folder", made.root, task="flood")
    assert out.notes == ()
    manifest = Manifest.load(settings.manifest_path("listed"))
    assert manifest.groups("test") == {"test_00": "c", "test_01": "d"}
    assert manifest.groups("train") == {"train_00": "a", "train_01": "a"}
    table.write_text("id,group\ntrain_00,a\ntrain_00,b\nnope,c\nval_00,\n")
    with pytest.raises(SourceDataError) as err:
        list(FolderSource(made.root, task="flood").samples())
    problems = _problems(err)
    assert "groups.csv line 3: 'train_00' is listed twice" in problems
    assert "groups.csv line 4: 'nope' is not a chip of the source" in problems
    assert "groups.csv line 5: expected <id>,<group>, both non-empty" in problems
    assert any(p.startswith("groups.csv: 4 chip(s) have no group: ") for p in problems)
    table.write_text("chip,event\n")
    with pytest.raises(SourceDataError, match="the first row must be the header id,group"):
        list(FolderSource(made.root, task="flood").samples())


def test_a_manifest_frozen_before_groups_still_reproduces_its_digest(
    settings: Settings, tree: Tree
) -> None:
    """A dataset frozen under schema /1 (no groups) re-imports with its digest unchanged,
    and says how to record the groups."""
    first = _import(settings, "sen1floods11", tree.root)
    path = settings.manifest_path("sen1floods11")
    raw = json.loads(path.read_text())
    for meta in raw["samples"].values():
        meta.pop("group")
    assert raw.pop("band_roles") == ["VV", "VH"]  # nor band roles, which came later still
    body = {k: raw[k] for k in ("task", "bands", "splits", "files")}
    v1_digest = (
        "sha256:"
        + hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
    )
    assert v1_digest != first.digest  # groups are in the digest of a /2 manifest
    raw.update(schema="sarbench.manifest/1", digest=v1_digest)
    path.write_text(json.dumps(raw))
    assert Manifest.load(path).digest == v1_digest  # a /1 manifest reads, digest unchanged
    again = _import(settings, "sen1floods11", tree.root)
    assert again.status == "prepared" and again.digest == v1_digest
    (note,) = again.notes
    assert "names no independence groups" in note and "--refreeze" in note
    assert ops.verify(settings, "sen1floods11", progress=False).digest == v1_digest
    assert ops.groups_of(settings, "sen1floods11", "test") is None
    refrozen = ops.import_dataset(
        settings, "sen1floods11", tree.root, progress=False, refreeze=True
    )
    assert refrozen.status == "frozen" and refrozen.digest == first.digest
    assert Manifest.load(path).groups("test") == {"Ghana_104": "Ghana"}


def test_folder_ndvi_import_with_synonyms_and_valid_masks(
    settings: Settings, tmp_path: Path
) -> None:
    made = make_folder(
        tmp_path / "farms",
        task="ndvi",
        split_folders={"val": "validation"},
        input_folder="images",
        target_folder="masks",
        band_names=None,
        with_valid=True,
    )
    out = _import(settings, "folder", made.root, task="ndvi", name="farms-ndvi")
    assert out.counts == {"train": 3, "val": 1, "test": 1}
    manifest = Manifest.load(settings.manifest_path("farms-ndvi"))
    assert manifest.bands == ("band1", "band2") and manifest.task == "ndvi"
    assert manifest.source["params"]["splits"]["val"] == {
        "inputs": "validation/images",
        "targets": "validation/masks",
        "valid": "validation/valid",
    }
    sample = SplitDir(out.path / "val").load("val_00")
    y = read_raster(made.target("val", "val_00")).data[0]
    assert sample.target is not None and sample.valid is not None
    assert sample.target.dtype == np.float32
    assert np.isfinite(sample.target).all() and (sample.target[-3:, -3:] == 0).all()
    nan_or_masked = np.isnan(y)
    nan_or_masked[10:12] = True
    nan_or_masked[0:2, 0:3] = True
    np.testing.assert_array_equal(sample.valid, ~nan_or_masked)
    np.testing.assert_array_equal(sample.target[sample.valid], y[sample.valid])


@pytest.mark.parametrize(
    ("folders", "inputs", "targets"),
    [
        ({"val": "valid"}, "img", "labels"),
        ({"val": "val"}, "inputs", "label"),
        ({"val": "validation"}, "images", "targets"),
    ],
)
def test_folder_synonyms(
    tmp_path: Path, folders: dict[str, str], inputs: str, targets: str
) -> None:
    made = make_folder(
        tmp_path / "syn", split_folders=folders, input_folder=inputs, target_folder=targets
    )
    src = FolderSource(made.root, task="flood")
    assert src.expected_counts() == {"train": 3, "val": 1, "test": 1}
    assert [r.split for r in src.samples()] == ["train"] * 3 + ["val", "test"]


def test_folder_accepts_other_lowercase_splits_and_refuses_others(tmp_path: Path) -> None:
    made = make_folder(tmp_path / "more", counts={"train": 1, "test": 1, "pretrain": 2})
    assert FolderSource(made.root, task="flood").expected_counts() == {
        "train": 1,
        "test": 1,
        "pretrain": 2,
    }
    (made.root / "Extra Split").mkdir()
    (made.root / "validation").mkdir()
    (made.root / "valid").mkdir()
    with pytest.raises(SourceDataError) as err:
        list(FolderSource(made.root, task="flood").samples())
    problems = _problems(err)
    assert problems[0].startswith("Extra Split/: not a split folder name")
    assert "validation/: split 'val' is also in valid/" in problems
    assert "valid/: no inputs folder (one of inputs/, images/, img/)" in problems


def test_folder_task_is_required_and_the_name_must_be_valid(tmp_path: Path) -> None:
    made = make_folder(tmp_path / "Flood Study")
    with pytest.raises(SarbenchError, match="needs a task: one of flood, ndvi"):
        FolderSource(made.root)
    with pytest.raises(UnknownNameError, match="Did you mean 'flood'"):
        FolderSource(made.root, task="flod")
    with pytest.raises(SarbenchError, match="the folder's name 'Flood Study' is not a valid"):
        FolderSource(made.root, task="flood")
    assert FolderSource(made.root, task="flood", name="study").name == "study"


def test_folder_bad_band_count(settings: Settings, tmp_path: Path) -> None:
    made = make_folder(tmp_path / "bands")
    path = made.input("train", "train_01")
    r = read_raster(path)
    write_raster(path, np.concatenate([r.data, r.data[:1]]), r.grid, nodata=r.nodata)
    with pytest.raises(SourceDataError) as err:
        _import(settings, "folder", made.root, task="flood")
    assert _problems(err) == ["train/inputs/train_01.tif: 3 band(s), the flood task needs 2"]


@pytest.mark.parametrize(
    ("task", "value", "message"),
    [
        ("flood", 2, "target values outside {0, 1} (after nodata): 2 (4 pixels)"),
        ("ndvi", 1.5, "target values outside [-1, 1] (after nodata): min 1.5, max 1.5 (4 pixels)"),
        ("ndvi", np.inf, "target values outside [-1, 1] (after nodata): min inf, max inf"),
    ],
)
def test_folder_out_of_range_targets(
    settings: Settings, tmp_path: Path, task: str, value: float, message: str
) -> None:
    made = make_folder(tmp_path / "range", task=task)
    path = made.target("test", "test_00")
    r = read_raster(path)
    data = r.data.copy()
    data[0, 4:6, 4:6] = value
    write_raster(path, data, r.grid, nodata=r.nodata)
    with pytest.raises(SourceDataError) as err:
        _import(settings, "folder", made.root, task=task)
    (problem,) = _problems(err)
    assert problem.startswith(f"test/targets/test_00.tif: {message}")


def test_folder_lists_every_pairing_and_file_problem_together(
    settings: Settings, tmp_path: Path
) -> None:
    made = make_folder(tmp_path / "broken", with_valid=True)
    made.target("train", "train_00").unlink()
    shutil.copy(made.target("val", "val_00"), made.split_dirs["val"] / "targets" / "orphan.tif")
    made.input("test", "test_00").write_bytes(b"\0" * 100)
    made.valid("train", "train_02").unlink()
    r = read_raster(made.target("train", "train_01"))
    write_raster(made.target("train", "train_01"), r.data, _shifted(r.grid, 10.0), nodata=255)
    with pytest.raises(SourceDataError) as err:
        _import(settings, "folder", made.root, task="flood")
    problems = _problems(err)
    expected = [
        "train/inputs/train_00.tif: input without a target in train/targets/",
        "train/inputs/train_02.tif: no valid mask in train/valid/",
        "val/targets/orphan.tif: target without an input in val/inputs/",
        "test/inputs/test_00.tif: not a readable GeoTIFF",
        "train/targets/train_01.tif: grid differs from its input train/inputs/train_01.tif",
    ]
    assert len(problems) == len(expected)
    for want in expected:
        assert sum(p.startswith(want) for p in problems) == 1, want
    assert not settings.dataset_dir("broken").exists()


def test_folder_band_names_must_agree_across_inputs(tmp_path: Path) -> None:
    made = make_folder(tmp_path / "names")
    path = made.input("val", "val_00")
    r = read_raster(path)
    write_raster(path, r.data, r.grid, nodata=r.nodata, band_names=("VV_post_db", "VV_pre_db"))
    src = FolderSource(made.root, task="flood")
    assert src.bands == ("band1", "band2")
    with pytest.raises(SourceDataError) as err:
        list(src.samples())
    (problem,) = _problems(err)
    assert problem.startswith("val/inputs/val_00.tif: band names VV_post_db, VV_pre_db differ")


def test_folder_source_describe_is_json(tmp_path: Path) -> None:
    made = make_folder(tmp_path / "desc")
    info = FolderSource(made.root, task="flood").describe()
    assert json.loads(json.dumps(info)) == info
    assert info["kind"] == "import" and info["source_folder"] == made.root.resolve().name


def test_folder_ignores_hidden_and_non_tif_files(tmp_path: Path) -> None:
    made = make_folder(tmp_path / "hidden")
    inputs = made.split_dirs["train"] / "inputs"
    (inputs / "._train_00.tif").write_bytes(b"AppleDouble")
    (inputs / "train_00.tif.aux.xml").write_text("<PAMDataset/>")
    (inputs / "README.txt").write_text("notes")
    src = FolderSource(made.root, task="flood")
    assert src.expected_counts() == {"train": 3, "val": 1, "test": 1}
    assert len(list(src.samples())) == 5


# ------------------------------------------------------------------- parcels, dataset.toml


def _write_geojson(path: Path, polys: list[dict]) -> None:
    """In EPSG:4326 (GeoJSON's own CRS): the chips' CRS is another, so the importer
    reprojects."""
    from rasterio.warp import transform_geom

    features = [
        {
            "type": "Feature",
            "properties": {},
            "geometry": transform_geom("EPSG:32630", "EPSG:4326", p),
        }
        for p in polys
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_folder_ndvi_valid_mask_is_the_rasterised_parcels(
    settings: Settings, tmp_path: Path, fmt: str
) -> None:
    made = make_folder(tmp_path / "farms", task="ndvi", band_names=("VV_db", "VH_db"))
    polys, masks = parcel_polygons(made)
    parcels = tmp_path / f"parcels.{fmt}"
    if fmt == "gpkg":
        write_gpkg(parcels, polys, "EPSG:32630")
    else:
        _write_geojson(parcels, polys)
    out = _import(settings, "folder", made.root, task="ndvi", parcels=parcels)
    for split, ids in made.splits.items():
        for sample in SplitDir(out.path / split):
            assert sample.id in ids and sample.valid is not None
            np.testing.assert_array_equal(sample.valid, masks[sample.id])
    manifest = Manifest.load(settings.manifest_path("farms"))
    params = manifest.source["params"]["parcels"]
    assert params["file"] == parcels.name and params["polygons"] == len(polys)
    assert params["crs"] == ("EPSG:32630" if fmt == "gpkg" else "EPSG:4326")


def test_folder_parcels_on_top_of_valid_rasters_and_their_problems(
    settings: Settings, tmp_path: Path
) -> None:
    import shapely

    made = make_folder(tmp_path / "farms2", task="ndvi", with_valid=True)
    parcels = tmp_path / "parcels.gpkg"
    big = [{"type": "Polygon", "coordinates": [[[0, 0], [1e7, 0], [1e7, 1e7], [0, 1e7], [0, 0]]]}]
    write_gpkg(parcels, big, "EPSG:32630")  # every pixel inside: only valid/ masks out
    out = _import(settings, "folder", made.root, task="ndvi", parcels=parcels)
    sample = SplitDir(out.path / "val").load("val_00")
    assert sample.valid is not None
    assert not sample.valid[10:12].any() and sample.valid[3:9, 5:21].all()
    # a point is not a parcel; a missing file and a file with no CRS are named
    import pyogrio

    points = tmp_path / "points.gpkg"
    pyogrio.raw.write(
        points,
        geometry=np.array([shapely.to_wkb(shapely.Point(500010, 4399990))], dtype=object),
        field_data=[],
        fields=[],
        crs="EPSG:32630",
        geometry_type="Point",
        driver="GPKG",
    )
    with pytest.raises(SourceDataError) as err:
        list(FolderSource(made.root, task="ndvi", parcels=points).samples())
    assert any("features that are not polygons (1 Point)" in p for p in _problems(err))
    with pytest.raises(SourceDataError, match="parcels file not found"):
        list(FolderSource(made.root, task="ndvi", parcels=tmp_path / "nope.gpkg").samples())


def test_folder_import_states_what_the_user_gave_and_nothing_else(
    settings: Settings, tmp_path: Path
) -> None:
    made = make_folder(tmp_path / "told", task="flood")
    (made.root / "dataset.toml").write_text(
        'licence = "CC BY 4.0"\n'
        'citation = "Doe, J. (2025). Told floods."\n'
        'band_roles = ["pre", "post"]\n'
        '[classes]\n"1" = "flooded land"\n"0" = "dry land"\n'
    )
    res = dataset_cli(
        settings, "datasets", "import", "folder", str(made.root), "--task", "flood",
        "--citation", "Doe, J. (2026). Told floods, again.",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    manifest = Manifest.load(settings.manifest_path("told"))
    assert manifest.band_roles == ("pre", "post")
    about = manifest.source["about"]
    assert about["classes"] == {"1": "flooded land", "0": "dry land"}
    assert about["licence"] == "CC BY 4.0"
    assert about["citation"] == "Doe, J. (2026). Told floods, again."  # the flag wins
    assert about["stated_by"] == "dataset.toml, flags"
    card = (settings.dataset_meta_dir("told") / "README.md").read_text()
    assert "- `1`: flooded land" in card and "**Licence**: CC BY 4.0." in card
    assert "**Citation**: Doe, J. (2026). Told floods, again." in card
    assert "**Source**: not stated by the importer." in card
    assert "Band roles: pre/post (stated in the manifest)" in card
    # a folder that says nothing gets a card that says so
    bare = make_folder(tmp_path / "bare", task="flood")
    _import(settings, "folder", bare.root, task="flood")
    card = (settings.dataset_meta_dir("bare") / "README.md").read_text()
    assert "**Classes**: not stated by the importer" in card
    assert "**Licence**: not stated by the importer." in card
    assert "**Citation**: not stated by the importer" in card
    assert "Band roles: pre/post (from the names)" in card
    assert Manifest.load(settings.manifest_path("bare")).band_roles is None
    # what dataset.toml may hold is checked
    (bare.root / "dataset.toml").write_text('licence = ""\nauthor = "me"\nband_roles = ["up"]\n')
    with pytest.raises(SourceDataError) as err:
        list(FolderSource(bare.root, task="flood").samples())
    problems = _problems(err)
    assert any("unknown key(s) author" in p for p in problems)
    assert "dataset.toml: licence must be non-empty text" in problems
    assert any(p.startswith("dataset.toml band_roles: 1 role(s) for 2 band(s)") for p in problems)
    with pytest.raises(SarbenchError, match="options of the folder importer"):
        _import(settings, "sen1floods11", bare.root, parcels=tmp_path / "p.gpkg")


def test_folder_target_within_the_grid_tolerance_is_snapped_and_reported(
    settings: Settings, tmp_path: Path
) -> None:
    made = make_folder(tmp_path / "snap", task="flood", with_valid=True)
    path = made.target("train", "train_01")
    r = read_raster(path)
    a, b, c, d, e, f = r.grid.transform
    nudged = dataclasses.replace(r.grid, transform=(a * (1 + 1e-15), b, c, d, e, f))
    write_raster(path, r.data, nudged, nodata=r.nodata)
    out = _import(settings, "folder", made.root, task="flood")
    (snap,) = out.snapped
    assert snap.file == "train/targets/train_01.tif"
    assert snap.onto == "train/inputs/train_01.tif" and 0 < snap.offset < 1e-6
    written = read_raster(out.path / "train" / "targets" / "train_01.tif")
    assert written.grid == read_raster(made.input("train", "train_01")).grid
