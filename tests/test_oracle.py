"""Private tests hold against an entry that rebuilds the public test split (issue 13).

The oracle entry (``tests/entries/oracle``) reruns ndvi-synth's public generator inside
``predict`` and submits the regenerated test targets. Scored on the demo test (made from
the public seed, what CI and the demo use) it is perfect; scored on a private test (made
from a secret it does not have) it does no better than chance. Each record says which test
its score used. Runs on the local backend, where the generator code is importable."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.conditions.probe import conditions
from harness.conditions.profiles import get_profile
from harness.datasets import ops
from harness.entries import load_entry
from harness.record import RunRecord
from harness.runner.run import RunContext, run_one
from harness.runtime.backends import LocalBackend
from harness.settings import REPO_ROOT, Settings

DATASET = "ndvi-synth"
SECRET = "oracle-test-secret-" + "7" * 32
PROFILE = """
name = "oracle"
seeds = [0]
[resources]
cpus = 2.0
memory = "6GiB"
[limits]
output_cap = "256MiB"
[limits.train]
timeout_s = 300
[limits.predict]
timeout_s = 300
"""
ENTRY = f"""
name = "oracle"
team = "red team"
contact = "nobody@example.org"
description = "rebuilds the public test split inside predict and submits its targets"
tasks = ["ndvi"]
datasets = ["{DATASET}"]
phases = ["predict"]
[image]
context = "oracle"
[local]
command = ["{{python}}", "oracle.py"]
cwd = "oracle"
[variants.default]
"""


def _settings(root: Path, data: str) -> Settings:
    return Settings(
        home=root / "home",
        data_root=root / data,
        manifests_dir=root / "manifests",
        submissions_dir=root / "submissions",
        profiles_dir=root / "profiles",
    )


def _run(settings: Settings) -> RunRecord:
    entry = load_entry(settings.submissions_dir / "oracle.toml")
    cond = conditions(get_profile(settings.profiles_dir, "oracle"), allow_mismatch=True)
    ctx = RunContext(settings=settings, conditions=cond, backend=LocalBackend())
    outcome = run_one(ctx, entry, "default", 0, DATASET)
    assert outcome.record.ok, outcome.record.detail
    return outcome.record


def _constant_mse(settings: Settings) -> float:
    """The MSE of predicting one constant (the test targets' own mean) over the farm pixels:
    what an entry that knows nothing of each chip scores."""
    split = ops.open_split(settings, DATASET, "test")
    values = []
    for sample in split:
        assert sample.target is not None
        values.append(sample.target[sample.valid_or_all()])
    allv = np.concatenate(values).astype(np.float64)
    return float(np.mean((allv - allv.mean()) ** 2))


@pytest.mark.slow
def test_the_oracle_tops_the_demo_test_and_is_at_chance_on_the_private_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "manifests" / DATASET).mkdir(parents=True)
    shutil.copy(
        REPO_ROOT / "datasets" / DATASET / "manifest.json",
        tmp_path / "manifests" / DATASET / "manifest.json",
    )
    (tmp_path / "submissions").mkdir()
    shutil.copytree(REPO_ROOT / "tests" / "entries" / "oracle", tmp_path / "submissions" / "oracle")
    (tmp_path / "submissions" / "oracle.toml").write_text(ENTRY)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "oracle.toml").write_text(PROFILE)
    monkeypatch.setenv("SARBENCH_TEST_SECRET", SECRET)
    private = _settings(tmp_path, "data-private")
    frozen = ops.prepare(private, DATASET, test="private", refreeze=True, progress=False)
    assert frozen.test_kind == "private"
    demo = _settings(tmp_path, "data-demo")
    ops.prepare(demo, DATASET, test="demo", progress=False)

    on_demo = _run(demo)
    on_private = _run(private)
    assert (on_demo.test_kind, on_private.test_kind) == ("demo", "private")
    assert on_demo.dataset_digest != on_private.dataset_digest  # two boards, never pooled
    assert on_demo.primary < 1e-9  # it rebuilt every demo label exactly
    chance = _constant_mse(private)
    print(
        f"oracle mse: demo {on_demo.primary:.3g}, private {on_private.primary:.4g}; "
        f"a constant on the private test {chance:.4g}"
    )
    assert on_private.primary > 0.8 * chance, (on_private.primary, chance)
    assert on_private.primary > 1000 * max(on_demo.primary, 1e-9)
