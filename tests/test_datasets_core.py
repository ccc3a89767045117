"""The data layer on a tiny real dataset: freeze, reproduce, verify, load, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.datasets import ops, registry
from harness.datasets.layout import BYTES_RECORD, LOCAL_COPY
from harness.datasets.loader import SplitDir
from harness.datasets.manifest import Manifest
from harness.errors import (
    DataFileError,
    DatasetNotPreparedError,
    ManifestError,
    UnknownNameError,
    VerificationError,
)
from harness.geo import file_digest, read_raster, write_raster
from harness.settings import REPO_ROOT, Settings
from tests.helpers import TinySource, dataset_cli


@pytest.fixture
def prepared(settings: Settings) -> tuple[Settings, Path, Manifest]:
    out = ops.materialise(settings, TinySource(), progress=False)
    assert out.status == "frozen"
    return settings, out.path, Manifest.load(settings.manifest_path("tiny"))


def test_freeze_then_reproduce_then_skip(settings: Settings) -> None:
    first = ops.materialise(settings, TinySource(), progress=False)
    assert first.status == "frozen"
    assert first.counts == {"train": 4, "val": 2, "test": 2}
    assert settings.manifest_path("tiny").is_file()
    assert (settings.manifests_dir / "tiny" / "README.md").is_file()
    # train 3 and val 2: test chips are never shown
    assert len(list((settings.manifests_dir / "tiny" / "quicklooks").glob("*.png"))) == 5
    again = ops.materialise(settings, TinySource(), progress=False)
    assert again.status == "skipped" and again.digest == first.digest
    forced = ops.materialise(settings, TinySource(), skip_if_verified=False, progress=False)
    assert forced.status == "prepared" and forced.digest == first.digest


def test_a_different_generation_is_refused_and_replaces_nothing(prepared) -> None:
    settings, path, _ = prepared
    before = settings.manifest_path("tiny").read_bytes()
    probe = path / "train" / "inputs" / "train_00.tif"
    stamp = probe.read_bytes()
    with pytest.raises(ManifestError) as err:
        ops.materialise(settings, TinySource(seed=1), skip_if_verified=False, progress=False)
    msg = str(err.value)
    assert "nothing was replaced" in msg and "train/inputs/train_00.tif: content differs" in msg
    assert settings.manifest_path("tiny").read_bytes() == before
    assert probe.read_bytes() == stamp
    assert not list(settings.data_root.glob(".tiny.staging-*"))
    ops.verify(settings, "tiny", progress=False)


def test_manifest_records_splits_files_and_digest(prepared) -> None:
    settings, path, manifest = prepared
    assert manifest.task == "flood" and manifest.bands == ("VV_pre_db", "VV_post_db")
    assert sorted(manifest.splits["val"]) == ["val_00", "val_01"]
    assert len(manifest.files) == 8 * 3
    assert manifest.samples["train_01"] == {"index": 1}
    for rel, digest in manifest.files.items():
        assert file_digest(path / rel) == digest
    raw = json.loads(settings.manifest_path("tiny").read_text())
    assert raw["digest"] == manifest.digest
    assert Manifest.load(path / LOCAL_COPY).digest == manifest.digest


def test_digest_ignores_encoding_but_verify_still_sees_changed_bytes(prepared) -> None:
    settings, path, manifest = prepared
    rel = "test/targets/test_01.tif"
    r = read_raster(path / rel)
    import rasterio

    with rasterio.open(path / rel) as src:
        profile = src.profile
    profile.update(compress="lzw")
    with rasterio.open(path / rel, "w", **profile) as dst:
        dst.write(r.data)
    assert file_digest(path / rel) == manifest.files[rel]
    with pytest.raises(VerificationError) as err:
        ops.verify(settings, "tiny", progress=False)
    assert err.value.problems == [
        f"{rel}: bytes changed since it was prepared (decoded content still matches)"
    ]


@pytest.mark.parametrize("kind", ["inputs", "targets", "valid"])
@pytest.mark.parametrize("where", ["header", "middle", "end"])
def test_one_changed_byte_anywhere_fails_verify_naming_the_file(prepared, kind, where) -> None:
    settings, path, _ = prepared
    rel = f"train/{kind}/train_02.tif"
    target = path / rel
    data = bytearray(target.read_bytes())
    pos = {"header": 9, "middle": len(data) // 2, "end": len(data) - 1}[where]
    data[pos] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(VerificationError) as err:
        ops.verify(settings, "tiny", progress=False)
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(f"{rel}: ")
    assert rel in str(err.value)


def test_missing_and_extra_files_are_all_named(prepared) -> None:
    settings, path, _ = prepared
    (path / "val" / "targets" / "val_01.tif").unlink()
    shutil.copy(path / "val" / "inputs" / "val_00.tif", path / "val" / "inputs" / "sneaky.tif")
    (path / "notes.txt").write_text("hello")
    with pytest.raises(VerificationError) as err:
        ops.verify(settings, "tiny", progress=False)
    assert sorted(err.value.problems) == sorted(
        [
            "val/targets/val_01.tif: missing",
            "val/inputs/sneaky.tif: extra file, not in the manifest",
            "notes.txt: extra file, not in the manifest",
        ]
    )


def test_a_lost_byte_record_is_reported(prepared) -> None:
    settings, path, _ = prepared
    (path / BYTES_RECORD).unlink()
    with pytest.raises(VerificationError, match="byte record unreadable"):
        ops.verify(settings, "tiny", progress=False)


def test_an_edited_manifest_is_refused(prepared) -> None:
    settings, _, _ = prepared
    p = settings.manifest_path("tiny")
    raw = json.loads(p.read_text())
    raw["splits"]["test"].append("train_00")
    p.write_text(json.dumps(raw))
    with pytest.raises(ManifestError) as err:
        Manifest.load(p)
    assert str(p) in str(err.value) and "both 'train' and 'test'" in str(err.value)
    raw = json.loads(p.read_text())
    raw["splits"]["test"].remove("train_00")
    p.write_text(json.dumps(raw))
    first = next(iter(raw["files"]))
    raw["files"][first] = "sha256:" + "0" * 64
    p.write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="does not match its content"):
        Manifest.load(p)


def test_malformed_manifest_lists_every_problem(tmp_path: Path) -> None:
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"schema": "x", "name": "", "bands": [], "splits": {"Bad!": []}}))
    with pytest.raises(ManifestError) as err:
        Manifest.load(p)
    msg = str(err.value)
    for part in ("schema", "'name'", "'bands'", "bad split name", "'files'"):
        assert part in msg
    p.write_text("{not json")
    with pytest.raises(ManifestError, match="not a readable JSON manifest"):
        Manifest.load(p)


def test_loader_returns_what_was_written_with_its_grid(prepared) -> None:
    settings, path, _ = prepared
    src = {r.id: r for r in TinySource().samples()}
    split = ops.open_split(settings, "tiny", "train")
    assert split.ids == ["train_00", "train_01", "train_02", "train_03"]
    for s in split:
        rec = src[s.id]
        np.testing.assert_array_equal(s.inputs, rec.inputs)
        np.testing.assert_array_equal(s.target, rec.target)
        np.testing.assert_array_equal(s.valid, rec.valid.astype(bool))
        assert s.grid == rec.grid and s.grid.crs == "EPSG:32630"
        assert s.band_names == ("VV_pre_db", "VV_post_db")
    inputs_only = SplitDir(path / "test" / "inputs")
    assert not inputs_only.has_targets and len(inputs_only) == 2
    s = inputs_only.load("test_00")
    assert s.target is None and s.valid is None and s.valid_or_all().all()


def test_loader_rejects_a_target_on_another_grid(prepared) -> None:
    _, path, _ = prepared
    t = path / "train" / "targets" / "train_00.tif"
    r = read_raster(t)
    moved = type(r.grid)(r.grid.crs, (10.0, 0.0, 1.0, 0.0, -10.0, 2.0), r.grid.height, r.grid.width)
    write_raster(t, r.data, moved)
    with pytest.raises(DataFileError) as err:
        SplitDir(path / "train").load("train_00")
    assert str(t) in str(err.value)


def test_open_split_says_how_to_fix(settings: Settings) -> None:
    ops.materialise(settings, TinySource(), progress=False)
    with pytest.raises(
        UnknownNameError, match=r"unknown split of tiny 'tset'\. Did you mean 'test'"
    ):
        ops.open_split(settings, "tiny", "tset")
    shutil.rmtree(settings.dataset_dir("tiny"))
    with pytest.raises(DatasetNotPreparedError, match="sarbench datasets prepare tiny"):
        ops.open_split(settings, "tiny", "test")
    with pytest.raises(UnknownNameError, match="Did you mean 'flood-synth'"):
        ops.open_split(settings, "flood-synt", "test")


def test_cli_list_show_verify(prepared) -> None:
    settings, path, manifest = prepared
    res = dataset_cli(settings, "datasets", "list")
    assert res.exit_code == 0, res.output
    assert "tiny" in res.output and "train=4 val=2 test=2" in res.output
    assert "flood-synth" in res.output and "ndvi-synth" in res.output
    res = dataset_cli(settings, "datasets", "show", "tiny", "--json")
    assert res.exit_code == 0
    info = json.loads(res.output)
    assert info["digest"] == manifest.digest and info["prepared"] is True
    res = dataset_cli(settings, "datasets", "verify", "tiny")
    assert res.exit_code == 0 and "tiny: ok" in res.output
    res = dataset_cli(settings, "datasets", "verify", "--all")
    assert res.exit_code == 0 and "tiny: ok" in res.output
    (path / "test" / "inputs" / "test_00.tif").unlink()
    res = dataset_cli(settings, "datasets", "verify", "tiny")
    assert res.exit_code == 1
    assert "test/inputs/test_00.tif: missing" in res.output


def test_cli_unknown_names_get_suggestions_and_exit_2(settings: Settings) -> None:
    res = dataset_cli(settings, "datasets", "prepare", "flod-synth")
    assert res.exit_code == 2
    assert "unknown synthetic dataset 'flod-synth'. Did you mean 'flood-synth'?" in res.output
    res = dataset_cli(settings, "datasets", "verify", "ndvi-synht")
    assert res.exit_code == 2 and "Did you mean 'ndvi-synth'" in res.output
    res = dataset_cli(settings, "datasets", "import", "sen1flood11", str(settings.home))
    assert res.exit_code == 2


def test_verify_checks_every_target_and_mask_against_its_inputs_grid(prepared) -> None:
    """By the one rule (harness.geo.compare_grids), naming the field in words."""
    settings, path, _ = prepared
    rel = "train/valid/train_01.tif"
    r = read_raster(path / rel)
    a, b, c, d, e, f = r.grid.transform
    moved = type(r.grid)(r.grid.crs, (a, b, c + 3 * a, d, e, f), r.grid.height, r.grid.width)
    write_raster(path / rel, r.data, moved, nodata=r.nodata)
    with pytest.raises(VerificationError) as err:
        ops.verify(settings, "tiny", progress=False)
    assert err.value.problems[0] == f"{rel}: content differs from the manifest"
    (grid,) = [p for p in err.value.problems if "grid differs" in p]
    assert grid.startswith(f"{rel}: grid differs from its input train/inputs/train_01.tif: ")
    assert "x origin differs by 3 pixels" in grid
    with pytest.raises(DataFileError, match="grid differs from its input's: x origin"):
        SplitDir(path / "train").load("train_01")


def test_manifests_are_looked_up_in_the_work_folder_then_the_package(
    settings: Settings, tmp_path: Path
) -> None:
    shipped = tmp_path / "shipped"
    (shipped / "tiny").mkdir(parents=True)
    settings = dataclasses.replace(settings, package_datasets_dir=shipped)
    assert settings.manifest_path("tiny") == settings.manifests_dir / "tiny" / "manifest.json"
    out = ops.materialise(settings, TinySource(), progress=False)  # freezes in the work folder
    assert out.status == "frozen"
    assert (settings.manifests_dir / "tiny" / "manifest.json").is_file()
    assert not list(shipped.rglob("*.json"))
    # a shipped manifest is read where the work folder has none...
    other = dataclasses.replace(settings, manifests_dir=tmp_path / "elsewhere")
    shutil.copy(settings.manifest_path("tiny"), shipped / "tiny" / "manifest.json")
    assert other.manifest_path("tiny") == shipped / "tiny" / "manifest.json"
    assert "tiny" in registry.frozen_names(other)
    assert ops.materialise(other, TinySource(), progress=False).status == "skipped"
    # ...and the work folder's wins where it has one
    assert settings.manifest_path("tiny") == settings.manifests_dir / "tiny" / "manifest.json"
    assert settings.manifest_dirs() == (settings.manifests_dir, shipped)


def test_the_default_work_folder_holds_the_manifests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SARBENCH_DATASETS_DIR", raising=False)
    s = Settings.load(home=tmp_path / "home")
    assert s.manifests_dir == tmp_path / "home" / "datasets"
    assert s.package_datasets_dir == REPO_ROOT / "datasets"
    assert (
        s.manifest_path("flood-synth") == REPO_ROOT / "datasets" / "flood-synth" / "manifest.json"
    )
    assert s.dataset_meta_dir("mine") == tmp_path / "home" / "datasets" / "mine"
