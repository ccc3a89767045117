"""What a person sees in a real ``mlflow ui``, checked through MLflow's REST API.

Five records (flood-synth: two entries, a second seed and a failed run; ndvi-synth: one
run) are published to a SQLite store in tmp, then ``mlflow ui`` is started on it (a
subprocess on 127.0.0.1 and a free port) and asked, as its web page asks, for the
experiments and runs: no empty Default experiment; each experiment opens as model training
(``mlflow.experimentKind``) with a description and a ranking view; each board is one parent
run with its entry runs nested; each entry run has its primary metric as a metric (the
runs table's column; the view and an ``order_by`` on it rank the runs), its dataset as an
input (name, digest, source), at most :data:`~harness.publish.layout.MAX_SARBENCH_TAGS`
``sarbench.*`` tags and its resource figures under ``system/``. The server is stopped at
the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from harness.publish.content import KEY, RESOURCE_PREFIX
from harness.publish.layout import (
    BOARD,
    BOARD_RUN,
    EXPERIMENT_KIND,
    MAX_SARBENCH_TAGS,
    NOTE,
    PARENT,
    TRAINING_KIND,
    VIEW_TAG,
)
from harness.publish.mlflow_store import Publisher, tracking_uri
from harness.record import RunFolder, RunRecord
from harness.settings import Settings
from tests.helpers import start_mlflow, wait_healthy
from tests.records_factory import RunSpec, make_run, make_test_split

MAX_TAGS = MAX_SARBENCH_TAGS + 3
"""Every tag of an entry run: the ``sarbench.*`` ones and MLflow's run name, note and
parent."""


def _call(url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST ``body`` (or GET without one) to the REST API; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@dataclass
class Ui:
    url: str
    records: dict[str, RunRecord]
    """Each published record by its run ID (the MLflow run's name)."""

    def experiments(self) -> list[dict[str, Any]]:
        answer = _call(self.url, "/api/2.0/mlflow/experiments/search", {"max_results": 100})
        return list(answer.get("experiments", []))

    def runs(self, experiment_id: str, **query: Any) -> list[dict[str, Any]]:
        body = {"experiment_ids": [experiment_id], "max_results": 1000, **query}
        return list(_call(self.url, "/api/2.0/mlflow/runs/search", body).get("runs", []))


def _tags(thing: dict[str, Any]) -> dict[str, str]:
    """The tags of a REST run or experiment as a dict."""
    tags = thing.get("tags") or thing.get("data", {}).get("tags") or []
    return {t["key"]: t.get("value", "") for t in tags}


def _metrics(run: dict[str, Any]) -> dict[str, float]:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


def _params(run: dict[str, Any]) -> dict[str, str]:
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """Records published to a SQLite store, and ``mlflow ui`` serving that store (started
    once the store exists, and taking its ~15 s to start while the records publish)."""
    home = tmp_path_factory.mktemp("ui")
    settings = Settings(home=home, data_root=home / "data", manifests_dir=home / "manifests")
    uri = tracking_uri(settings)
    publisher = Publisher(settings, uri)  # the store, made and without its Default
    log = home / "ui.log"
    url, proc = start_mlflow(["ui", "--backend-store-uri", uri, "--workers", "1"], log)
    try:
        flood = make_test_split(settings, "flood-synth", "flood")
        ndvi = make_test_split(settings, "ndvi-synth", "ndvi")
        specs = [
            (RunSpec("unet", "flood-synth", "flood", seed=0, noise=0.05), flood),
            (RunSpec("unet", "flood-synth", "flood", seed=1, noise=0.07), flood),
            (RunSpec("threshold", "flood-synth", "flood", seed=0, noise=0.2), flood),
            (
                RunSpec("unet", "flood-synth", "flood", seed=9, status="failed", reason="crash"),
                flood,
            ),
            (RunSpec("pix2pix", "ndvi-synth", "ndvi", seed=0, noise=0.1), ndvi),
        ]
        dirs = [make_run(settings, spec, split) for spec, split in specs]
        assert [publisher.publish(d).action for d in dirs] == ["created"] * len(dirs)
        records = {r.run_id: r for r in (RunFolder(d).load() for d in dirs)}
        wait_healthy(url, proc, log, timeout_s=120)
        yield Ui(url, records)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_no_empty_default_experiment_and_each_opens_as_model_training(ui: Ui) -> None:
    experiments = ui.experiments()
    names = sorted(e["name"] for e in experiments)
    assert names == ["sarbench/flood/flood-synth", "sarbench/ndvi/ndvi-synth"]  # no Default
    for experiment in experiments:
        tags = _tags(experiment)
        assert tags[EXPERIMENT_KIND] == TRAINING_KIND
        task = experiment["name"].split("/")[1]
        primary = {"flood": "iou", "ndvi": "mse"}[task]
        assert f"Primary metric: `{primary}`" in tags[NOTE]
        view = json.loads(tags[VIEW_TAG])
        assert view["orderByKey"] == f"metrics.`{primary}`"
        assert f"metrics.`{primary}`" in view["selectedColumns"]
        assert view["orderByAsc"] is (task == "ndvi")  # lower MSE is better


def test_entry_runs_are_nested_under_their_board_run(ui: Ui) -> None:
    for experiment in ui.experiments():
        runs = ui.runs(experiment["experiment_id"])
        boards = [r for r in runs if BOARD_RUN in _tags(r)]
        entries = [r for r in runs if KEY in _tags(r)]
        assert len(boards) == 1 and len(boards) + len(entries) == len(runs)
        (board,) = boards
        assert PARENT not in _tags(board)
        for run in entries:
            tags = _tags(run)
            assert tags[PARENT] == board["info"]["run_id"]
            assert tags[BOARD] == _tags(board)[BOARD_RUN]
    flood = next(e for e in ui.experiments() if e["name"].endswith("flood-synth"))
    assert len(ui.runs(flood["experiment_id"])) == 1 + 4


def test_each_entry_run_has_its_primary_metric_and_dataset_and_few_tags(ui: Ui) -> None:
    seen = 0
    for experiment in ui.experiments():
        for run in ui.runs(experiment["experiment_id"]):
            tags = _tags(run)
            if KEY not in tags:
                continue
            record = ui.records[run["info"]["run_name"]]
            seen += 1
            own = [k for k in tags if k.startswith("sarbench.")]
            assert len(own) <= MAX_SARBENCH_TAGS and len(tags) <= MAX_TAGS, sorted(tags)
            (data,) = run["inputs"]["dataset_inputs"]
            dataset = data["dataset"]
            assert dataset["name"] == record.dataset
            assert dataset["digest"] == record.dataset_digest.removeprefix("sha256:")[:12]
            source = json.loads(dataset["source"])
            assert source["uri"].startswith("file://") and source["uri"].endswith(record.dataset)
            assert {"key": "mlflow.data.context", "value": "test"} in data["tags"]
            assert _params(run)["sarbench.dataset_digest"] == record.dataset_digest
            metrics = _metrics(run)
            if record.score is None:
                assert metrics == {} and run["info"]["status"] == "FAILED"
                continue
            primary = record.primary_metric
            assert metrics[primary] == pytest.approx(record.primary)
            assert metrics[f"{primary}_ci_low"] == pytest.approx(record.score.low)
            resources = {"train_s", "predict_s", "total_s", "peak_memory_bytes"}
            assert {f"{RESOURCE_PREFIX}{name}" for name in resources} <= set(metrics)
            assert not resources & set(metrics)  # none among the scores
    assert seen == len(ui.records) == 5


def test_the_runs_rank_by_their_primary_metric_as_the_ui_sorts_a_column(ui: Ui) -> None:
    flood = next(e for e in ui.experiments() if e["name"].endswith("flood-synth"))
    ranked = ui.runs(
        flood["experiment_id"],
        filter="tags.`sarbench.status` = 'ok'",
        order_by=["metrics.`iou` DESC"],
    )
    shown = [_metrics(r)["iou"] for r in ranked]
    assert len(shown) == 3 and shown == sorted(shown, reverse=True)
    best = ui.records[ranked[0]["info"]["run_name"]]
    assert best.primary == max(r.primary for r in ui.records.values() if r.task.name == "flood")
