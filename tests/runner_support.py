"""A work folder for runner tests: two tiny datasets, the template entry, a hostile entry
(``tests/entries/hostile``) and two conditions profiles (``test`` and ``tight``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from harness.cli import main
from harness.conditions.probe import conditions
from harness.conditions.profiles import get_profile
from harness.datasets import ops
from harness.runner.run import RunContext
from harness.runtime.backends import Backend, DockerBackend, LocalBackend
from harness.settings import REPO_ROOT, Settings
from tests.helpers import TinySource

TEST_PROFILE = """
name = "test"
seeds = [0]
[resources]
cpus = 1.0
memory = "1GiB"
[limits]
pids = 256
output_cap = "64MiB"
log_cap = "1MiB"
[limits.train]
timeout_s = 120
[limits.predict]
timeout_s = 120
"""
TIGHT_PROFILE = (
    TEST_PROFILE.replace('name = "test"', 'name = "tight"')
    .replace('memory = "1GiB"', 'memory = "512MiB"')
    .replace("pids = 256", "pids = 64")
    .replace("timeout_s = 120", "timeout_s = 4", 1)
)
BEHAVIOURS = (
    "probe", "sleep", "hog", "crash", "bad-output", "probe-predict", "fork-bomb", "fill-disk",
    "log-flood", "symlinks", "vrt", "huge", "wrong-crs", "nan", "no-output", "odd-names",
    "slow-ok", "fallocate", "long-paths", "inode-flood", "deep-tree", "poison", "xss", "wmts", "bands",
    "many-files", "escapes", "just-over", "mountinfo",
)  # fmt: skip
HOSTILE = """
name = "hostile"
team = "red team"
contact = "nobody@example.org"
tasks = ["flood", "ndvi"]
datasets = ["tiny", "tiny-ndvi"]
[image]
context = "hostile"
requirements = "requirements.txt"
"""


def make_bench(root: Path, options: dict[str, str] | None = None) -> Settings:
    """Write the work folder under ``root`` and prepare both tiny datasets; ``options``
    adds TOML lines to hostile variants (``{"wmts": 'url = "http://..."'}``)."""
    subs, profiles = root / "submissions", root / "profiles"
    shutil.copytree(REPO_ROOT / "submissions" / "template", subs / "template")
    toml = (REPO_ROOT / "submissions" / "template.toml").read_text()
    # restricted to the tiny datasets (`datasets`, deprecated, still works), which makes
    # them its defaults
    toml = toml.replace("\nphases = ", '\ndatasets = ["tiny", "tiny-ndvi"]\nphases = ', 1)
    assert 'datasets = ["tiny", "tiny-ndvi"]' in toml
    (subs / "template.toml").write_text(toml)
    shutil.copytree(REPO_ROOT / "tests" / "entries" / "hostile", subs / "hostile")
    # built exactly like the template (its Dockerfile and requirements), with its own script
    dockerfile = (subs / "template" / "Dockerfile").read_text()
    (subs / "hostile" / "Dockerfile").write_text(dockerfile.replace("entry.py", "hostile.py"))
    shutil.copy(subs / "template" / "requirements.txt", subs / "hostile" / "requirements.txt")
    hostile = HOSTILE
    # the VRT attack points at a hidden test target by its host path
    extra = {
        "vrt": f'vrt_source = "{root / "data" / "tiny" / "test" / "targets" / "test_00.tif"}"\n',
        **{k: v + "\n" for k, v in (options or {}).items()},
    }
    hostile += "".join(f'[variants.{b}]\nbehaviour = "{b}"\n{extra.get(b, "")}' for b in BEHAVIOURS)
    (subs / "hostile.toml").write_text(hostile)
    profiles.mkdir()
    (profiles / "test.toml").write_text(TEST_PROFILE)
    (profiles / "tight.toml").write_text(TIGHT_PROFILE)
    settings = bench_settings(root, subs, profiles)
    ops.materialise(settings, TinySource(), progress=False)
    ops.materialise(settings, TinySource(name="tiny-ndvi", task="ndvi", seed=3), progress=False)
    return settings


def bench_settings(root: Path, submissions: Path, profiles: Path) -> Settings:
    """A work folder under ``root`` (home, data, manifests) with these entries and profiles."""
    return Settings(
        home=root / "home",
        data_root=root / "data",
        manifests_dir=root / "manifests",
        submissions_dir=submissions,
        profiles_dir=profiles,
    )


def make_ctx(
    settings: Settings, client: Any, profile: str = "test", backend: str = "docker"
) -> RunContext:
    cond = conditions(get_profile(settings.profiles_dir, profile))
    backends: dict[str, Callable[[], Backend]] = {
        "docker": lambda: DockerBackend(client),
        "local": LocalBackend,
    }
    chosen = backends[backend]()
    return RunContext(settings=settings, conditions=cond, backend=chosen)


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "SARBENCH_SUBMISSIONS_DIR": str(settings.submissions_dir),
        "SARBENCH_PROFILES_DIR": str(settings.profiles_dir),
    }


def cli_args(settings: Settings) -> list[str]:
    return [
        "--home", str(settings.home),
        "--data-root", str(settings.data_root),
        "--datasets-dir", str(settings.manifests_dir),
    ]  # fmt: skip


def cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, [*cli_args(settings), *args], env=cli_env(settings))
