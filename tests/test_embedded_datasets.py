"""The embedded datasets, end to end: `sarbench datasets prepare` must reproduce the
committed manifests bit for bit, and `verify` must name any file that is then changed,
removed or added. These regenerate the full datasets (marked slow; they run in CI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.datasets import ops
from harness.datasets.manifest import Manifest
from harness.errors import VerificationError
from harness.settings import Settings

EMBEDDED = ("flood-synth", "ndvi-synth")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(embedded: Settings) -> Settings:
    """Both embedded datasets, prepared once per session by the CLI (see conftest.py)."""
    return embedded


@pytest.mark.parametrize("name", EMBEDDED)
def test_prepare_reproduces_the_committed_digest(prepared: Settings, name: str) -> None:
    committed = Manifest.load(prepared.manifest_path(name))
    local = Manifest.load(prepared.dataset_dir(name) / "manifest.json")
    # the demo test without a secret (CI); the private test where $SARBENCH_TEST_SECRET is set
    # and the manifest records its digest
    assert local.digest in ops.accepted_digests(committed)
    verified = ops.verify(prepared, name, progress=False)
    assert verified.digest == local.digest
    assert verified.test_kind == ("demo" if local.digest == committed.digest else "private")


def test_committed_split_sizes_and_groups(prepared: Settings) -> None:
    flood = Manifest.load(prepared.manifest_path("flood-synth"))
    assert flood.count() == {"train": 156, "val": 20, "test": 20}
    ndvi = Manifest.load(prepared.manifest_path("ndvi-synth"))
    assert ndvi.count() == {"train": 96, "val": 48, "test": 48, "pretrain": 480}
    for m in (flood, ndvi):
        assert m.test_kind == "demo"
        for split in m.splits:  # every chip of every split names its group
            assert m.groups(split) is not None, (m.name, split)
        assert (m.n_groups("test") or 0) >= 10
        if m.private_test is not None:
            assert m.private_test["n_groups"] >= 10
            assert m.private_test["n_chips"] == m.count()["test"]
    for name in EMBEDDED:  # what was prepared names its groups too
        groups = ops.groups_of(prepared, name, "test")
        assert groups is not None and len(set(groups.values())) >= 10


@pytest.fixture
def copy_of(prepared: Settings, tmp_path: Path):
    """A private copy of a prepared dataset, to tamper with."""

    def make(name: str) -> tuple[Settings, Path]:
        s = Settings(
            home=tmp_path, data_root=tmp_path / "data", manifests_dir=prepared.manifests_dir
        )
        shutil.copytree(prepared.dataset_dir(name), s.dataset_dir(name))
        return s, s.dataset_dir(name)

    return make


@pytest.mark.parametrize("name", EMBEDDED)
def test_verify_names_a_changed_byte_in_every_kind_of_file(copy_of, name: str) -> None:
    settings, root = copy_of(name)
    m = Manifest.load(settings.manifest_path(name))
    split = "test"
    sid = sorted(m.splits[split])[3]
    touched = []
    for kind in ("inputs", "targets", "valid"):
        rel = f"{split}/{kind}/{sid}.tif"
        if rel not in m.files:
            continue
        data = bytearray((root / rel).read_bytes())
        data[len(data) // 3] ^= 0x10
        (root / rel).write_bytes(bytes(data))
        touched.append(rel)
    assert touched
    with pytest.raises(VerificationError) as err:
        ops.verify(settings, name, progress=False)
    named = sorted(p.split(":")[0] for p in err.value.problems)
    assert named == sorted(touched)


@pytest.mark.parametrize("name", EMBEDDED)
def test_verify_names_a_removed_and_an_added_file(copy_of, name: str) -> None:
    settings, root = copy_of(name)
    m = Manifest.load(settings.manifest_path(name))
    gone = sorted(m.files)[0]
    (root / gone).unlink()
    extra = root / "train" / "inputs" / "zz_extra.tif"
    shutil.copy(root / sorted(m.files)[1], extra)
    with pytest.raises(VerificationError) as err:
        ops.verify(settings, name, progress=False)
    assert sorted(err.value.problems) == sorted(
        [f"{gone}: missing", "train/inputs/zz_extra.tif: extra file, not in the manifest"]
    )
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--data-root", str(settings.data_root),
         "datasets", "verify", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 1
    assert gone in res.stderr and "zz_extra.tif" in res.stderr
