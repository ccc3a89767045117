"""Every baseline on a study's own folder (issue 14): a flood dataset and an ndvi dataset
whose farm mask comes as a parcel GeoPackage are imported with ``sarbench datasets import
folder`` under names no entry file mentions, then ``sarbench run --baselines`` runs through
docker under the quick profile. No entry file is edited: the baselines declare tasks, band
roles and training splits, and what does not fit the dataset is skipped with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.bands import band_roles
from harness.cli import main
from harness.datasets.manifest import Manifest
from harness.record import RunRecord, load_records
from harness.settings import Settings
from tests.data.folder.make import make as make_folder
from tests.data.folder.make import parcel_polygons, write_gpkg

pytestmark = [pytest.mark.docker, pytest.mark.slow]
pytest_plugins = ["tests.docker_support"]

SUBMISSIONS = Path(__file__).resolve().parents[1] / "submissions"
COUNTS = {"train": 4, "val": 2, "test": 2}


class Home:
    def __init__(self, tmp_path: Path) -> None:
        self.home, self.data = tmp_path / "home", tmp_path / "data"
        self.runner = CliRunner()

    def __call__(self, *more: str) -> str:
        args = ["--home", str(self.home), "--data-root", str(self.data), *more]
        result = self.runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        return result.output

    @property
    def settings(self) -> Settings:
        return Settings.load(home=self.home, data_root=self.data)

    def records(self, dataset: str) -> list[RunRecord]:
        return [r for r in load_records(self.settings.runs_dir) if r.dataset == dataset]


def _ran(records: list[RunRecord]) -> set[tuple[str, str]]:
    for record in records:
        assert record.ok, (record.run_id, record.detail)
        assert record.isolated and record.test_kind == "public" and record.score is not None
    return {(r.entry.name, r.variant) for r in records}


def test_every_baseline_runs_on_folder_imports_with_no_entry_file_edited(
    tmp_path: Path, docker_client, base_image
) -> None:
    entries_before = {p.name: p.read_bytes() for p in SUBMISSIONS.glob("*.toml")}
    sarbench = Home(tmp_path)
    common = ["--backend", "docker", "--profile", "quick", "--allow-mismatch"]

    # flood: pre/post of one polarisation, named as the README's example
    flood = make_folder(tmp_path / "src" / "flood-study", task="flood", size=64, counts=COUNTS)
    sarbench("datasets", "import", "folder", str(flood.root), "--task", "flood")
    manifest = Manifest.load(sarbench.settings.manifest_path("flood-study"))
    assert band_roles(manifest) == ("pre", "post")  # read off the band names
    out = sarbench("run", "--baselines", "--dataset", "flood-study", *common)
    assert "skipped threshold/single-band on flood-study: needs bands VV/VH" in out
    ran = _ran(sarbench.records("flood-study"))
    assert ran == {
        ("threshold", "default"),
        ("threshold", "otsu"),
        ("threshold", "smoothed"),
        ("unet", "default"),
        ("prithvi", "patch-embed"),
        ("prithvi", "temporal"),
    }
    for record in sarbench.records("flood-study"):  # no weights mounted: random init
        assert record.pretrained is (False if record.entry.name == "prithvi" else None)

    # ndvi: VV/VH stated with the flag; the farm mask rasterised from parcels
    farms = make_folder(
        tmp_path / "src" / "farm-study", task="ndvi", size=64, counts=COUNTS, band_names=None
    )
    polys, masks = parcel_polygons(farms)
    write_gpkg(tmp_path / "parcels.gpkg", polys, "EPSG:32630")
    sarbench(
        "datasets", "import", "folder", str(farms.root), "--task", "ndvi",
        "--band-roles", "VV,VH", "--parcels", str(tmp_path / "parcels.gpkg"),
    )  # fmt: skip
    out = sarbench("run", "--baselines", "--dataset", "farm-study", *common)
    assert "needs a pretrain split; farm-study has train, val, test" in out
    (record,) = sarbench.records("farm-study")
    assert _ran([record]) == {("pix2pix", "no-pretrain")}
    farm_pixels = sum(int(masks[sid].sum()) for sid in farms.splits["test"])
    scored = sum(int(chip.stats["n"]) for chip in record.score.chips)
    assert scored == farm_pixels  # the parcels' pixels, and no other

    assert {p.name: p.read_bytes() for p in SUBMISSIONS.glob("*.toml")} == entries_before
