from __future__ import annotations

from pathlib import Path

import pytest

from harness.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose work folder, data root and manifests folder are all under tmp."""
    return Settings(
        home=tmp_path / "home", data_root=tmp_path / "data", manifests_dir=tmp_path / "manifests"
    )
