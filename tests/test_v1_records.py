"""A work folder written by the release before this one still publishes and builds.

``tests/data/v1-work/runs/`` holds real ``sarbench.run/1`` run folders, written by commit
7394047's ``sarbench run`` on ndvi-synth (the template through docker, the template on the
local backend, and an entry whose predict crashes), with their records, configs, logs and
artifacts exactly as written; only the predictions were left out (2.9 MB each), so each
record lists files that are absent, and publishing says so."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.record import SCHEMA_V1, load_records, run_folders
from harness.settings import REPO_ROOT, Settings

FIXTURE = REPO_ROOT / "tests" / "data" / "v1-work"


def v1_key_hash(raw: dict) -> str:
    """The key hash as the release before computed it from a raw ``sarbench.run/1`` record
    (what an existing MLflow store dedupes on)."""
    key = {**raw["key"], "backend": raw["backend"]}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_a_v1_work_folder_publishes_and_builds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    before = {p: p.read_bytes() for p in (home / "runs").rglob("record.json")}
    runs_dir = Settings.load(home=home).runs_dir
    records = list(load_records(runs_dir))
    assert {r.schema for r in records} == {SCHEMA_V1} == {"sarbench.run/1"}
    assert len(records) == 3
    for record in records:  # the comparability key is derived for records without one
        key = record.comparability
        assert key.profile == "quick" and key.checkpoint == "none"
    for folder in run_folders(runs_dir):  # the key hash is the one stores already hold
        assert folder.load().key_hash == v1_key_hash(json.loads(folder.record_path.read_text()))
    runner = CliRunner()
    published = runner.invoke(main, ["--home", str(home), "publish"])
    assert published.exit_code == 0, published.output
    assert "published 3 record(s)" in published.output
    assert "listed in the record but missing: predictions/" in published.output
    built = runner.invoke(main, ["--home", str(home), "leaderboard", "build"])
    assert built.exit_code == 0, built.output
    board = home / "site" / "ndvi" / "ndvi-synth"
    ranking = json.loads((board / "ranking.json").read_text())
    assert [r["entry"] for r in ranking] == ["template"]
    assert [r["entry"] for r in json.loads((board / "unisolated.json").read_text())] == ["template"]
    (failed,) = json.loads((board / "failed.json").read_text())
    assert (failed["entry"], failed["reason"]) == ("crasher", "crash")
    assert {p: p.read_bytes() for p in (home / "runs").rglob("record.json")} == before
