"""Every flood baseline on Sen1Floods11 as it is published (issue 14): the layout of
``tests/test_sen1floods11.py`` (labels off in their last digits, int16 labels with -1,
EPSG:4326, NaN at chip edges, header-less split CSVs, the Bolivia hold-out) is imported,
then ``sarbench run --baselines`` runs through docker under the quick profile. Its bands
are VV and VH of one date, so the threshold's change-detection variants are skipped, with
the reason, and never recorded. Bolivia is scored as a split of its own and shown on a
board of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.record import load_records
from harness.settings import Settings
from tests.test_sen1floods11 import make_bucket

pytestmark = [pytest.mark.docker, pytest.mark.slow]
pytest_plugins = ["tests.docker_support"]


def test_every_flood_baseline_runs_on_an_imported_sen1floods11(
    tmp_path: Path, docker_client, base_image
) -> None:
    bucket = make_bucket(tmp_path / "bucket")
    home, data = tmp_path / "home", tmp_path / "data"
    args = ["--home", str(home), "--data-root", str(data)]
    runner = CliRunner()

    def sarbench(*more: str) -> str:
        result = runner.invoke(main, [*args, *more])
        assert result.exit_code == 0, result.output
        return result.output

    sarbench("datasets", "import", "sen1floods11", str(bucket.root))
    common = ["--dataset", "sen1floods11", "--backend", "docker", "--profile", "quick"]
    out = sarbench("run", "--baselines", *common, "--allow-mismatch")
    assert "skipped threshold/default, otsu, smoothed on sen1floods11: needs bands pre/post" in out
    out_bolivia = sarbench("run", "threshold", *common, "--allow-mismatch", "--split", "bolivia")
    assert "threshold/single-band" in out_bolivia

    records = list(load_records(Settings.load(home=home, data_root=data).runs_dir))
    on_test = [r for r in records if r.split == "test"]
    for record in records:
        assert record.ok, (record.run_id, record.detail)
        assert (record.isolated, record.dataset, record.test_kind) == (
            True,
            "sen1floods11",
            "public",
        )
    ran = {(r.entry.name, r.variant) for r in on_test}
    assert {v for e, v in ran if e == "threshold"} == {"single-band"}  # VV/VH only
    assert {"threshold", "unet", "prithvi"} <= {e for e, _ in ran}
    assert ("prithvi", "temporal") not in ran  # time frames need pre/post
    (bolivia,) = [r for r in records if r.split == "bolivia"]
    assert bolivia.entry.name == "threshold" and bolivia.score is not None
    assert bolivia.score.n_chips == 2 and bolivia.key.run_id != on_test[0].key.run_id

    sarbench("publish")
    sarbench("leaderboard", "build")
    boards = json.loads((home / "site" / "boards.json").read_text())
    flood = [b for b in boards if b["dataset"] == "sen1floods11"]
    assert len(flood) == 2  # the test split and Bolivia, apart
    pages = sorted((home / "site" / "flood").glob("sen1floods11*/index.html"))
    assert len(pages) == 2
    assert any("split bolivia" in p.read_text() for p in pages)
