"""Runs under different comparability keys are never pooled (issue 12): a `quick` and a
`paper` run of the same entry, variant and dataset, and a run on a re-frozen dataset of the
same name (another digest), published to a real MLflow store and built into the site, land
on three boards, each showing its key, none pooling another's run."""

from __future__ import annotations

import json
from pathlib import Path

from harness.leaderboard.site import build_site
from harness.publish.mlflow_store import Publisher, connect, default_tracking_uri
from harness.record import UNHASHED, Comparability, RunRecord
from harness.settings import Settings
from tests.records_factory import RunSpec, key_of, make_run, make_test_split

V1_DOC = {  # the least a sarbench.run/1 record holds: no comparability key, no checkpoint
    "schema": "sarbench.run/1",
    "run_id": "unet.default.s0.flood-synth.000000000000",
    "key": key_of().id_doc(),  # entry unet, flood-synth, digests sha256:d/i/c
    "entry": {"name": "unet"},
    "variant": "default",
    "seed": 0,
    "options": {},
    "task": "flood",
    "primary_metric": "iou",
    "backend": "docker",
    "dataset": {"name": "flood-synth", "digest": "sha256:d", "split": "test"},
    "profile": {"name": "quick"},
    "isolated": True,
    "status": "failed",
    "reason": "timeout",
}


def test_a_records_key_is_derived_from_its_profile_key_and_weights() -> None:
    key = Comparability("quick", "sha256:c", "sha256:d", "none")
    assert key.id == Comparability("quick", "sha256:c", "sha256:d", "none").id
    assert key.id.startswith("sha256:")
    old = RunRecord.from_json(V1_DOC)  # a record written before the key was
    assert old.comparability == key
    weighed = RunRecord.from_json({**V1_DOC, "weights": {"files": []}})
    assert weighed.comparability.checkpoint == UNHASHED
    assert weighed.comparability.checkpoint.startswith("unknown")
    assert weighed.comparability.id != key.id
    hashed = RunRecord.from_json({**V1_DOC, "weights": {"files": [], "digest": "sha256:w"}})
    assert hashed.comparability.checkpoint == "sha256:w"
    assert hashed.comparability.id not in (key.id, weighed.comparability.id)
    assert Comparability("paper", "sha256:c", "sha256:d", "none").id != key.id


def test_quick_paper_and_another_dataset_digest_are_three_boards(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, data_root=tmp_path / "data", manifests_dir=tmp_path / "m")
    split = make_test_split(settings, "flood-synth", "flood")
    specs = {
        "quick": RunSpec("unet", "flood-synth", "flood", noise=0.4),
        "paper": RunSpec("unet", "flood-synth", "flood", noise=0.02, profile="paper"),
        "refrozen": RunSpec("unet", "flood-synth", "flood", noise=0.2, dataset_version="v2"),
        "quick-threshold": RunSpec("threshold", "flood-synth", "flood", noise=0.3),
        "quick-pretrained": RunSpec(
            "unet", "flood-synth", "flood", noise=0.1, checkpoint="sha256:" + "ab" * 32
        ),
    }
    folders = {name: make_run(settings, spec, split) for name, spec in specs.items()}
    uri = default_tracking_uri(settings)
    publisher = Publisher(settings, uri)
    for folder in folders.values():
        publisher.publish(folder)
    summary = build_site(connect(uri), tmp_path / "site", n_resamples=200)
    site = summary.out
    assert summary.boards == 3
    boards = json.loads((site / "boards.json").read_text())
    keys = {(b["profile"], b["dataset_digest"]) for b in boards}
    assert keys == {
        ("quick", specs["quick"].dataset_digest),
        ("paper", specs["paper"].dataset_digest),
        ("quick", specs["refrozen"].dataset_digest),
    }
    rankings = sorted(site.glob("flood/flood-synth--*/ranking.json"))
    assert len(rankings) == 3  # the dataset has several keys: each board is a folder of its own
    seen = {}
    for path in rankings:
        rows = json.loads(path.read_text())
        for row in rows:
            assert len(row["run_ids"]) == 1  # nothing pooled
            seen[row["run_ids"][0]] = path.parent.name
        page = (path.parent / "index.html").read_text()
        assert "shares one test, profile, dataset digest and conditions" in page
    ids = {name: folder.name for name, folder in folders.items()}
    assert len({seen[ids["quick"]], seen[ids["paper"]], seen[ids["refrozen"]]}) == 3
    assert seen[ids["quick"]] == seen[ids["quick-threshold"]]  # same key: one board
    # other pretrained weights: the same board, a row of its own (never pooled)
    assert seen[ids["quick-pretrained"]] == seen[ids["quick"]]
    board = json.loads((site / "flood" / seen[ids["quick"]] / "ranking.json").read_text())
    unets = [r for r in board if r["entry"] == "unet"]
    assert sorted(r["checkpoint"] for r in unets) == ["none", "sha256:" + "ab" * 32]
    assert "paper" in seen[ids["paper"]]
