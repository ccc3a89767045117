"""``sarbench rescore`` on real runs (the template, local backend: no engine needed): a
scorer change re-scores the kept predictions into a rescore file of their own, the record
file is untouched, runs already scored by this version are left alone, and a run whose
predictions are gone is named with the reason."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import pytest

from harness import scoring
from harness.entries import get_entry
from harness.record import RunFolder
from harness.runner.run import run_one
from harness.scoring import rescore
from harness.settings import Settings
from tests.runner_support import cli, make_bench, make_ctx

pytest_plugins = ["tests.docker_support"]


@pytest.fixture
def bench(tmp_path: Path) -> Settings:
    return make_bench(tmp_path)


def _run(bench: Settings, seed: int) -> RunFolder:
    entry = get_entry(bench.submissions_dir, "template")
    outcome = run_one(make_ctx(bench, None, backend="local"), entry, "default", seed, "tiny")
    assert outcome.record.ok, outcome.record.detail
    return RunFolder(outcome.run_dir)


def _halving_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliberate scorer change: version 2 reports every metric halved."""
    real = rescore.score_predictions

    def halved(*args, **kwargs):
        result = real(*args, **kwargs)
        return dataclasses.replace(result, metrics={k: v / 2 for k, v in result.metrics.items()})

    monkeypatch.setattr(rescore, "score_predictions", halved)
    monkeypatch.setattr(scoring, "SCORER_VERSION", "2")


def test_a_scorer_change_rescores_kept_predictions_without_touching_the_record(
    bench: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, gone = _run(bench, 0), _run(bench, 1)
    before = kept.load()
    assert before.scorer == scoring.SCORER_VERSION == "1" and before.rescored is None
    same = rescore.rescore_runs(bench)  # nothing changed: nothing to do
    assert (same.rescored, same.not_rescored, same.current) == ([], [], 2)

    record_bytes = kept.record_path.read_bytes()
    shutil.rmtree(gone.predictions)
    _halving_scorer(monkeypatch)
    report = rescore.rescore_runs(bench)

    assert [r.record.run_id for r in report.rescored] == [before.run_id]
    after = kept.load()
    assert after.primary == pytest.approx(before.primary / 2) and not math.isnan(after.primary)
    assert after.scorer == "2"
    assert after.rescored is not None and after.rescored["from"] == "1"
    assert after.rescored["previous"][before.primary_metric] == before.primary
    assert kept.record_path.read_bytes() == record_bytes  # the record file is never rewritten
    assert [p.name for p in kept.rescore_files()] == ["0001.json"]
    assert [(n.run_id, "predictions are gone" in n.reason) for n in report.not_rescored] == [
        (gone.run_id, True)
    ]
    again = rescore.rescore_runs(bench)  # version 2 made it: left alone
    assert (len(again.rescored), again.current) == (0, 1)


def test_sarbench_rescore_says_what_changed(
    bench: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(bench, 0)
    record = run.load()
    _halving_scorer(monkeypatch)
    result = cli(bench, "rescore")
    assert result.exit_code == 0, result.output
    metric = record.primary_metric
    assert f"{record.run_id}: {metric}" in result.output and "scorer 1 -> 2" in result.output
    assert "1 run(s) rescored" in result.output


@pytest.mark.docker
def test_rescore_updates_the_board_without_starting_a_container(
    tmp_path: Path, base_image: str, docker_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Done-when of issue 17: a real (docker) run is published and on the board; after a
    deliberate scorer change, rescore + publish + build show the new score, marked as
    rescored, and the engine created no container meanwhile."""
    bench = make_bench(tmp_path)
    entry = get_entry(bench.submissions_dir, "template")
    started = time.time()
    outcome = run_one(make_ctx(bench, docker_client), entry, "default", 0, "tiny")
    assert outcome.record.ok and outcome.record.image_digest, outcome.record.detail
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    site = tmp_path / "site"

    def publish_and_build() -> dict:
        published = cli(bench, "publish", "--tracking-uri", uri)
        assert published.exit_code == 0, published.output
        built = cli(bench, "leaderboard", "build", "--tracking-uri", uri, "--out", str(site),
                    "--resamples", "200")  # fmt: skip
        assert built.exit_code == 0, built.output
        (row,) = json.loads((site / "flood" / "tiny" / "ranking.json").read_text())
        return row

    before = publish_and_build()
    metric = outcome.record.primary_metric
    assert before[metric] == pytest.approx(outcome.record.primary)
    since = time.time()
    _halving_scorer(monkeypatch)
    assert cli(bench, "rescore").exit_code == 0
    after = publish_and_build()

    def created(begin: float, end: float) -> list[dict]:
        """The containers the engine created between the two times (to the nanosecond:
        the engine's query takes whole seconds)."""
        events = docker_client.events(
            since=int(begin) - 1,
            until=int(end) + 1,
            filters={"type": "container", "event": "create"},
            decode=True,
        )
        return [e for e in events if begin * 1e9 <= e["timeNano"] < end * 1e9]

    assert len(created(started, since)) >= 2  # the count sees the run's train and predict
    assert created(since, time.time()) == []  # none: the kept predictions were scored again
    assert after[metric] == pytest.approx(outcome.record.primary / 2)
    board = (site / "flood" / "tiny" / "index.html").read_text()
    assert "with scorer 2 (was 1): template / default" in board
