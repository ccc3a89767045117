"""Settings, read once from the environment and CLI options, then passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DATASETS = REPO_ROOT / "datasets"
"""The manifests and cards that ship with SARBench: the embedded datasets'."""


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "sarbench"


@dataclass(frozen=True)
class Settings:
    """Where SARBench keeps things.

    - ``home``: the work folder (default ``$SARBENCH_HOME`` or ``~/.local/share/sarbench``).
    - ``data_root``: data files of every dataset, one folder each (default
      ``$SARBENCH_DATA_ROOT`` or ``<home>/data``). Never inside git.
    - ``manifests_dir``: the work folder's ``datasets/<name>/`` folders, each with a
      dataset's ``manifest.json`` and card (default ``$SARBENCH_DATASETS_DIR`` or
      ``<home>/datasets``). Everything a freeze or an import writes goes here, never into
      the installed project.
    - ``package_datasets_dir``: the manifests and cards that ship with SARBench (the
      embedded datasets', the repository's ``datasets/``), read where the work folder has
      none: :meth:`manifest_path` looks in the work folder first, then here.
    - ``submissions_dir``: the entry registry, one ``<name>.toml`` per entry (default
      ``$SARBENCH_SUBMISSIONS_DIR`` or the repository's ``submissions/``).
    - ``profiles_dir``: the conditions profiles, one ``<name>.toml`` each (default
      ``$SARBENCH_PROFILES_DIR`` or the repository's ``profiles/``).
    """

    home: Path
    data_root: Path
    manifests_dir: Path
    submissions_dir: Path = REPO_ROOT / "submissions"
    profiles_dir: Path = REPO_ROOT / "profiles"
    package_datasets_dir: Path = PACKAGE_DATASETS

    @classmethod
    def load(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        data_root: str | os.PathLike[str] | None = None,
        manifests_dir: str | os.PathLike[str] | None = None,
        submissions_dir: str | os.PathLike[str] | None = None,
        profiles_dir: str | os.PathLike[str] | None = None,
    ) -> Settings:
        env = os.environ
        home_path = Path(home or env.get("SARBENCH_HOME") or _default_home()).expanduser()
        data = Path(data_root or env.get("SARBENCH_DATA_ROOT") or home_path / "data").expanduser()
        manifests = Path(
            manifests_dir or env.get("SARBENCH_DATASETS_DIR") or home_path / "datasets"
        ).expanduser()
        submissions = Path(
            submissions_dir or env.get("SARBENCH_SUBMISSIONS_DIR") or REPO_ROOT / "submissions"
        ).expanduser()
        profiles = Path(
            profiles_dir or env.get("SARBENCH_PROFILES_DIR") or REPO_ROOT / "profiles"
        ).expanduser()
        return cls(
            home=home_path,
            data_root=data,
            manifests_dir=manifests,
            submissions_dir=submissions,
            profiles_dir=profiles,
        )

    @property
    def runs_dir(self) -> Path:
        """One folder per run: record, logs, artifacts, predictions."""
        return self.home / "runs"

    def dataset_dir(self, name: str) -> Path:
        """Folder of a dataset's data files."""
        return self.data_root / name

    def dataset_meta_dir(self, name: str) -> Path:
        """Where a freeze or an import writes a dataset's manifest, card and import report:
        ``<manifests_dir>/<name>/``, in the work folder."""
        return self.manifests_dir / name

    def manifest_path(self, name: str) -> Path:
        """The frozen manifest of a dataset: the work folder's (``manifests_dir``) where it
        has one, else the one shipped with SARBench (``package_datasets_dir``) where that
        exists, else where the work folder's would be."""
        own = self.dataset_meta_dir(name) / "manifest.json"
        shipped = self.package_datasets_dir / name / "manifest.json"
        return shipped if not own.is_file() and shipped.is_file() else own

    def manifest_dirs(self) -> tuple[Path, ...]:
        """The folders manifests are looked up in, in order: the work folder's, then the
        package's (once, where they are the same)."""
        own, shipped = self.manifests_dir, self.package_datasets_dir
        same = (
            own.resolve() == shipped.resolve()
            if own.exists() and shipped.exists()
            else own == shipped
        )
        return (own,) if same else (own, shipped)
