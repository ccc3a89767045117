"""sarbench_io: the container-side reader stands alone (numpy + rasterio, no harness), the
harness uses that same code rather than a copy, the images copy the package and nothing of
the harness, and the harness stages it into entries' build contexts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

import harness.datasets.layout
import harness.datasets.loader
import harness.errors
import harness.geo
import sarbench_io
from harness.datasets import ops
from harness.runtime.builds import CONTAINER_PACKAGE, stage_container_package
from harness.runtime.errors import ImageBuildError
from harness.runtime.phase import mount_env_name
from harness.settings import REPO_ROOT, Settings
from sarbench_io import contract
from sarbench_io.errors import ContractError
from tests.helpers import TinySource

STANDALONE = """
import hashlib, importlib.util, json, os, sys
from pathlib import Path

import sarbench_io
from sarbench_io import Mounts, SplitDir, read_raster, read_run_config, write_raster

data, out = Path(sys.argv[1]), Path(sys.argv[2])
mounts = Mounts.from_env()
config = read_run_config()  # from SARBENCH_CONFIG_RUN_JSON
samples = {}
for sample in SplitDir(mounts.split("train")):
    samples[sample.id] = {
        "inputs": hashlib.sha256(sample.inputs.tobytes()).hexdigest(),
        "dtype": sample.inputs.dtype.name,
        "grid": [sample.grid.crs, list(sample.grid.transform), sample.grid.height,
                 sample.grid.width],
        "target": int(sample.target.sum()),
        "valid": int(sample.valid.sum()),
    }
test = SplitDir(mounts.test_inputs)
first = test.load(test.ids[0])
write_raster(mounts.output / f"{first.id}.tif", (first.inputs[0] < -12).astype("uint8"),
             first.grid)
back = read_raster(mounts.output / f"{first.id}.tif")
print(json.dumps({
    "file": sarbench_io.__file__,
    "harness_found": importlib.util.find_spec("harness") is not None,
    "loaded": sorted({m.split(".")[0] for m in sys.modules}),
    "seed": config["seed"],
    "samples": samples,
    "test_ids": test.ids,
    "test_has_targets": test.has_targets,
    "written": [back.data.dtype.name, list(back.data.shape), back.grid == first.grid],
}))
"""


@pytest.fixture
def tiny(settings: Settings) -> Path:
    """The tiny flood dataset under the data root; its folder."""
    ops.materialise(settings, TinySource(), progress=False)
    return settings.data_root / "tiny"


def _site_packages() -> list[str]:
    """The folders numpy and rasterio are imported from (and nothing of the harness)."""
    return sorted({str(Path(m.__file__).parent.parent) for m in (np, rasterio)})


def test_it_runs_without_the_harness(tiny: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    stage_container_package(alone)  # a copy of the package, as an entry's context gets
    out, model = tmp_path / "out", tmp_path / "model"
    out.mkdir()
    run_json = tmp_path / "run.json"
    run_json.write_text(json.dumps({key: {} for key in contract.RUN_CONFIG_KEYS} | {
        "contract": 1, "seed": 7,
    }))  # fmt: skip
    env = {
        "PATH": os.environ.get("PATH", ""),
        # no site module: the editable install's finder (which maps `harness`) stays off
        "PYTHONPATH": os.pathsep.join([str(alone), *_site_packages()]),
        "SARBENCH_DATA_TRAIN": str(tiny / "train"),
        "SARBENCH_DATA_TEST_INPUTS": str(tiny / "test" / "inputs"),
        "SARBENCH_OUTPUT": str(out),
        "SARBENCH_MODEL": str(model),
        "SARBENCH_CONFIG_RUN_JSON": str(run_json),
    }
    for folder in _site_packages():
        assert not {"harness", "baselines"} & {p.name for p in Path(folder).iterdir()}
    done = subprocess.run(
        [sys.executable, "-S", "-c", STANDALONE, str(tiny), str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert Path(got["file"]).parent == alone / "sarbench_io"
    assert got["harness_found"] is False
    assert not {"harness", "baselines", "mlflow", "docker"} & set(got["loaded"])
    assert got["seed"] == 7
    # what the harness's generator wrote is what the lone package reads
    want = {r.id: r for r in TinySource().samples() if r.split == "train"}
    assert sorted(got["samples"]) == sorted(want)
    for sid, rec in want.items():
        s = got["samples"][sid]
        assert s["inputs"] == hashlib.sha256(rec.inputs.tobytes()).hexdigest()
        assert s["dtype"] == "float32"
        assert s["grid"] == [
            rec.grid.crs, list(rec.grid.transform), rec.grid.height, rec.grid.width,
        ]  # fmt: skip
        assert s["target"] == int(rec.target.sum())
        assert s["valid"] == int(rec.valid.sum())
    assert got["test_ids"] == ["test_00", "test_01"] and got["test_has_targets"] is False
    assert got["written"] == ["uint8", [1, 32, 32], True]


def test_the_harness_uses_the_same_code() -> None:
    assert harness.datasets.loader.SplitDir is sarbench_io.SplitDir
    assert harness.datasets.loader.Sample is sarbench_io.Sample
    for name in ("Grid", "Raster", "read_raster", "write_raster", "canonical_crs"):
        assert getattr(harness.geo, name) is getattr(sarbench_io.geo, name)
    for name in ("SUFFIX", "KINDS", "SPLIT_NAME", "SAMPLE_ID", "rel_path", "check_sample_id"):
        assert getattr(harness.datasets.layout, name) is getattr(sarbench_io.layout, name)
    # one error class on both sides, reported by the CLI as a message
    assert harness.errors.DataFileError is sarbench_io.DataFileError
    assert harness.errors.SarbenchError is sarbench_io.SarbenchError
    assert issubclass(ContractError, harness.errors.SarbenchError)
    assert sorted(sarbench_io.__all__) == sorted(sarbench_io._WHERE)


def test_mount_variables_are_the_runtimes() -> None:
    paths = [contract.CONFIG, contract.MODEL, contract.OUTPUT, contract.WEIGHTS]
    paths += [contract.TEST_INPUTS, "/data/train", "/data/val", "/data/pretrain"]
    for path in paths:
        assert contract.env_name(path) == mount_env_name(path)


def test_mounts_fall_back_to_the_container_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in list(os.environ):
        if key.startswith("SARBENCH_"):
            monkeypatch.delenv(key)
    mounts = contract.Mounts.from_env()
    assert mounts.model == Path("/model") and mounts.config == Path("/config/run.json")
    assert mounts.test_inputs == Path("/data/test/inputs")
    assert mounts.split("pretrain") == Path("/data/pretrain")
    monkeypatch.setenv("SARBENCH_DATA_PRETRAIN", str(tmp_path))
    monkeypatch.setenv("SARBENCH_OUTPUT", str(tmp_path / "out"))
    assert contract.Mounts.from_env().output == tmp_path / "out"
    assert contract.Mounts.from_env().split("pretrain") == tmp_path
    with pytest.raises(ContractError):
        mounts.split("../etc")


def test_run_config_problems_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    full = {key: {} for key in contract.RUN_CONFIG_KEYS} | {"contract": 1}
    path.write_text(json.dumps(full))
    assert contract.read_run_config(path) == full
    for text, phrase in [
        ("{", "cannot read"),
        ("[]", "not a JSON object"),
        (json.dumps({**full, "contract": 2}), "contract 2"),
        (json.dumps({k: v for k, v in full.items() if k not in ("seed", "options")}), "lacks"),
    ]:
        path.write_text(text)
        with pytest.raises(ContractError, match=phrase) as err:
            contract.read_run_config(path)
        assert str(path) in str(err.value)
    with pytest.raises(ContractError, match="cannot read"):
        contract.read_run_config(tmp_path / "absent.json")


def test_images_copy_the_package_and_nothing_of_the_harness() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    copies = re.findall(r"^COPY\s+(.*)$", dockerfile, flags=re.M)
    sources = {word for line in copies for word in line.split()[:-1]}
    assert sources == {"wheels/", "baselines/requirements-image.txt", "sarbench_io/", "baselines/"}
    assert "harness/" not in dockerfile
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert "!sarbench_io/" in ignore and not [line for line in ignore if "harness" in line]
    template = (REPO_ROOT / "submissions" / "template" / "Dockerfile").read_text()
    assert "COPY sarbench_io/ /app/sarbench_io/" in template
    # the baselines import the package, never the harness
    for path in sorted((REPO_ROOT / "baselines").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+harness\b", text, flags=re.M), path


def test_staging_copies_the_package_and_replaces_what_was_there(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    stale = context / "sarbench_io"
    (stale / "__pycache__").mkdir(parents=True)
    (stale / "__pycache__" / "x.pyc").write_bytes(b"old")
    (stale / "old.py").write_text("old")
    (stale / "loader.py").symlink_to("/etc/hostname")  # replaced, never written through
    stage_container_package(context)
    want = sorted(
        p.relative_to(CONTAINER_PACKAGE)
        for p in CONTAINER_PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    )
    got = sorted(p.relative_to(stale) for p in stale.rglob("*"))
    assert got == want and Path("__init__.py") in got
    for rel in got:
        assert not (stale / rel).is_symlink()
        assert (stale / rel).read_bytes() == (CONTAINER_PACKAGE / rel).read_bytes()
    stage_container_package(context)  # again: same content
    assert sorted(p.relative_to(stale) for p in stale.rglob("*")) == want


def test_staging_refuses_a_link_and_leaves_the_repository_alone(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "sarbench_io").symlink_to(tmp_path)
    with pytest.raises(ImageBuildError, match="symbolic link"):
        stage_container_package(context)
    before = {p: p.stat().st_mtime_ns for p in CONTAINER_PACKAGE.rglob("*.py")}
    stage_container_package(REPO_ROOT)  # the baselines' context holds the package itself
    assert {p: p.stat().st_mtime_ns for p in CONTAINER_PACKAGE.rglob("*.py")} == before


STAGING_RACE = """
import sys
from pathlib import Path
from harness.runtime.builds import _build_lock, stage_container_package
context, errors = Path(sys.argv[1]), 0
for _ in range(25):
    try:
        with _build_lock(context):  # what ensure_entry_image holds around a build
            stage_container_package(context)
    except Exception:
        errors += 1
print(errors)
"""


def test_two_processes_staging_one_context_do_not_trample_each_other(tmp_path: Path) -> None:
    """Two `sarbench run` of one entry build at once (tests/test_hostile.py's two-process
    test): without the build lock, replacing `sarbench_io/` in the context failed about
    two times in three (39 of 60 in a stress run); with it, never."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STAGING_RACE, str(tmp_path)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    assert [int(p.communicate(timeout=120)[0].strip()) for p in procs] == [0, 0]
    copied = sorted(p.relative_to(tmp_path / "sarbench_io") for p in tmp_path.rglob("*.py"))
    assert copied == sorted(
        p.relative_to(CONTAINER_PACKAGE)
        for p in CONTAINER_PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    )
