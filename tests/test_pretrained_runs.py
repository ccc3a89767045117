"""Pretrained weights from the folder to the board (issue 15): the one command that
fine-tunes prithvi from a checkpoint (`sarbench run ... --weights DIR`) records
``pretrained: true`` with the weights' digest, and the same run without them records
``pretrained: false`` and is shown as "random init", a row of its own.

The published checkpoint (440 MB, a 100M-parameter ViT) cannot be used here, so the entry
is prithvi's code under a test entry file whose options take the tiny ViT with a
checkpoint: a synthetic one with the published tensor names, made by
:func:`tests.test_baselines_flood.synthetic_checkpoint`. The local backend runs it (the
path through the harness is the same as docker's; docker's is in test_folder_runs)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner

from harness.cli import main
from harness.record import load_records
from harness.settings import Settings
from tests.data.folder.make import make as make_folder
from tests.test_baselines_flood import synthetic_checkpoint

CHECKPOINT = "Prithvi_EO_V1_100M.pt"
ENTRY = f"""
name = "prithvi-check"
team = "tests"
contact = "tests"
tasks = ["flood"]
phases = ["train", "predict"]

[weights]
name = "a synthetic checkpoint with the published tensor names (tiny ViT)"
file = "{CHECKPOINT}"

[image]
ref = "sha256:{"0" * 64}"

[local]
command = ["{{python}}", "-m", "baselines"]

[options]
model = "prithvi"
size = "tiny"
checkpoint = "{CHECKPOINT}"
epochs = 1
batch_size = 4
crop = 64
samples_per_epoch = 8
decoder_channels = 16

[variants.default]
"""


def test_a_run_from_weights_records_pretrained_and_one_without_is_random_init(
    tmp_path: Path,
) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    runner = CliRunner()

    def sarbench(*more: str) -> str:
        result = runner.invoke(main, ["--home", str(home), "--data-root", str(data), *more])
        assert result.exit_code == 0, result.output
        return result.output

    flood = make_folder(tmp_path / "src" / "floods", task="flood", size=64)
    sarbench("datasets", "import", "folder", str(flood.root), "--task", "flood")
    entry = tmp_path / "entries" / "prithvi-check.toml"
    entry.parent.mkdir()
    entry.write_text(ENTRY)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(synthetic_checkpoint("mae"), weights / CHECKPOINT)
    common = ["run", str(entry), "--dataset", "floods", "--backend", "local", "--allow-mismatch"]
    sarbench(*common, "--weights", str(weights))
    sarbench(*common)

    settings = Settings.load(home=home, data_root=data)
    records = {r.pretrained: r for r in load_records(settings.runs_dir)}
    assert set(records) == {True, False}
    tuned, scratch = records[True], records[False]
    assert tuned.ok and scratch.ok, (tuned.detail, scratch.detail)
    assert tuned.checkpoint.startswith("sha256:") and scratch.checkpoint == "none"
    assert tuned.weights is not None and tuned.weights["files"][0]["name"] == CHECKPOINT
    report = json.loads(
        (settings.runs_dir / tuned.run_id / "artifacts" / "checkpoint_report.json").read_text()
    )
    assert report["pretrained"] is True and report["clean"] is True

    sarbench("publish")
    sarbench("leaderboard", "build")
    rows = json.loads((home / "site" / "flood" / "floods" / "unisolated.json").read_text())
    assert sorted(r["pretrained"] for r in rows) == [False, True]
    board = (home / "site" / "flood" / "floods" / "index.html").read_text()
    assert "prithvi-check (random init)" in board
    assert tuned.checkpoint.removeprefix("sha256:")[:8] in board
