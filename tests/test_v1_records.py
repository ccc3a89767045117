"""A work folder written by the release before this one still publishes and builds.

``tests/data/v1-work/runs/`` holds real ``sarbench.run/1`` run folders, written by commit
7394047's ``sarbench run`` on ndvi-synth (the template through docker, the template on the
local backend, and an entry whose predict crashes), with their records, configs, logs and
artifacts exactly as written; only the predictions were left out (2.9 MB each), so each
record lists files that are absent, and publishing says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.runner.records import comparability_of, load_records
from harness.settings import REPO_ROOT, Settings

FIXTURE = REPO_ROOT / "tests" / "data" / "v1-work"


def test_a_v1_work_folder_publishes_and_builds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    before = {p: p.read_bytes() for p in (home / "runs").rglob("record.json")}
    records = list(load_records(Settings.load(home=home).runs_dir))
    assert {r["schema"] for r in records} == {"sarbench.run/1"} and len(records) == 3
    for record in records:  # the comparability key is derived for records without one
        key = comparability_of(record)
        assert key["profile"] == "quick" and key["checkpoint"] == "none"
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
