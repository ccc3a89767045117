from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.settings import REPO_ROOT, Settings

EMBEDDED = ("flood-synth", "ndvi-synth")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose work folder, data root and manifests folder are all under tmp."""
    return Settings(
        home=tmp_path / "home", data_root=tmp_path / "data", manifests_dir=tmp_path / "manifests"
    )


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Both embedded datasets generated once per session by `sarbench datasets prepare`
    (their demo test: what CI and the demo score on), which must reproduce the committed
    digests. Tests must not change these files (copy
    them first)."""
    tmp = tmp_path_factory.mktemp("embedded")
    settings = Settings(home=tmp, data_root=tmp / "data", manifests_dir=REPO_ROOT / "datasets")
    for name in EMBEDDED:
        assert settings.manifest_path(name).is_file(), f"{name} has no committed manifest"
    cmd = [sys.executable, "-m", "harness.cli", "--home", str(tmp), "--data-root"]
    cmd += [str(settings.data_root), "datasets", "prepare", "--test", "demo", *EMBEDDED]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    for name in EMBEDDED:
        assert f"{name}: prepared; reproduces the committed digest" in res.stdout
    return settings
