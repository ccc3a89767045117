"""Publishing run records to a real MLflow SQLite store in tmp (no stubs)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from harness.datasets.loader import SplitDir
from harness.publish.cli import publish
from harness.publish.content import COMPLETE, KEY, PUBLISHED, loss_points, params_of
from harness.publish.errors import RecordError
from harness.publish.layout import (
    BOARD,
    BOARD_RUN,
    EXPERIMENT_KIND,
    MAX_SARBENCH_TAGS,
    NOTE,
    PARENT,
    TRAINING_KIND,
    fields_of,
    read_back,
)
from harness.publish.mlflow_store import (
    Publisher,
    PublishResult,
    default_tracking_uri,
    tracking_uri,
)
from harness.publish.quicklooks import write_quicklooks
from harness.publish.rescored import RESCORED_TAG, SCORER_TAG
from harness.record import EntryInfo, RunFolder, RunRecord, TaskInfo
from harness.settings import Settings
from tests.records_factory import RESCORED_AT, key_of, rescore_run, standard_runs


@dataclass
class Store:
    settings: Settings
    uri: str
    client: MlflowClient
    dirs: list[Path]
    results: list[PublishResult]

    def record(self, run_dir: Path) -> RunRecord:
        return RunFolder(run_dir).load()

    def run_of(self, name: str, backend: str = "docker") -> tuple[Any, RunRecord]:
        """The MLflow run and the record of the run folder whose name starts with ``name``."""
        (folder,) = [
            d for d in self.dirs if d.name.startswith(name) and self.record(d).backend == backend
        ]
        (result,) = [r for r in self.results if r.run_dir == folder]
        return self.client.get_run(result.mlflow_run_id), self.record(folder)

    def all_runs(self) -> list[Any]:
        """Every run: entry runs and board runs."""
        exps = self.client.search_experiments()
        return list(self.client.search_runs([e.experiment_id for e in exps], max_results=1000))

    def entry_runs(self) -> list[Any]:
        """The runs of records (not the board runs they are nested under)."""
        return [r for r in self.all_runs() if KEY in r.data.tags]


def facts(run: Any) -> dict[str, str]:
    """A run's ``sarbench.<name>`` facts, from its tags and params, as the site reads them."""
    return read_back(run.data.tags, run.data.params, run.data.metrics).fields


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    home = tmp_path_factory.mktemp("publish")
    settings = Settings(home=home, data_root=home / "data", manifests_dir=home / "manifests")
    dirs = standard_runs(settings)
    uri = tracking_uri(settings)
    publisher = Publisher(settings, uri)
    results = [publisher.publish(d) for d in dirs]
    yield Store(settings, uri, publisher.client, dirs, results)


def test_default_store_is_sqlite_under_home(store: Store) -> None:
    db = store.settings.home / "mlflow" / "mlflow.db"
    assert default_tracking_uri(store.settings) == f"sqlite:///{db.resolve()}"
    assert store.uri == default_tracking_uri(store.settings)
    assert tracking_uri(store.settings, "sqlite:////elsewhere.db") == "sqlite:////elsewhere.db"
    assert db.is_file()


def test_one_experiment_per_task_and_dataset_one_run_per_record(store: Store) -> None:
    names = sorted(e.name for e in store.client.search_experiments())
    assert names == ["sarbench/flood/flood-synth", "sarbench/ndvi/ndvi-synth"]  # no Default
    assert [r.action for r in store.results] == ["created"] * len(store.dirs)
    assert len(store.entry_runs()) == len(store.dirs) == 15
    artifact_root = (store.settings.home / "mlflow" / "artifacts").resolve().as_uri()
    assert all(r.info.artifact_uri.startswith(artifact_root) for r in store.all_runs())


def test_params_are_flattened_resolved_options(store: Store) -> None:
    run, record = store.run_of("pix2pix.no-tta.s0")
    p = run.data.params
    assert p["entry"] == "pix2pix" and p["variant"] == "no-tta" and p["seed"] == "0"
    assert p["profile"] == "quick"
    assert (p["pretrain"], p["tta"], p["train_aug"]) == ("true", "false", "true")
    assert p["optim.lr"] == "0.0002" and p["optim.betas"] == "[0.5, 0.999]"
    assert p["model"] == "pix2pix" and p["epochs"] == "2"
    assert {k: v for k, v in p.items() if not k.startswith("sarbench.")} == params_of(record)
    assert {k: v for k, v in p.items() if k.startswith("sarbench.")} == {
        f"sarbench.{k}": v for k, v in fields_of(record).items()
    }


def test_an_option_named_like_a_reserved_param_is_prefixed() -> None:
    options = {"seed": 99, "nested": {"a": {"b": None}}}
    key = key_of(entry="e", variant="v", seed=3, options=options)
    record = RunRecord(
        run_id=key.run_id,
        key=key,
        task=TaskInfo("flood", "iou", True),
        entry=EntryInfo("e"),
        status="failed",
        reason="crash",
        profile={"name": "quick"},
        options=options,
    )
    p = params_of(record)
    assert p["seed"] == "3" and p["options.seed"] == "99" and p["nested.a.b"] == "null"
    # the record's facts are params sarbench.<name>: an option named so is prefixed too
    options = {"sarbench.status": "mine"}
    record = dataclasses.replace(record, options=options)
    assert params_of(record)["options.sarbench.status"] == "mine"


def test_metrics_scores_intervals_timings(store: Store) -> None:
    run, record = store.run_of("prithvi.default.s0")
    m, score = run.data.metrics, record.score
    assert score is not None
    for name, value in score.metrics.items():
        assert m[name] == pytest.approx(value), name
    assert m["iou_ci_low"] == pytest.approx(score.low)
    assert m["iou_ci_high"] == pytest.approx(score.high)
    assert m["iou_ci_low"] <= m["iou"] <= m["iou_ci_high"]
    timings = dict(record.timings.items())
    # resources apart from the scores, under system/ (MLflow's UI: "System metrics")
    for name in ("train_s", "predict_s", "total_s", "gpu_seconds", "energy_j"):
        assert m[f"system/{name}"] == pytest.approx(timings[name])
        assert name not in m
    peaks = [p.peak_memory_bytes for p in record.phases.values()]
    assert m["system/peak_memory_bytes"] == max(peaks)
    assert m["system/train_peak_memory_bytes"] == record.phases["train"].peak_memory_bytes
    assert {k for k in m if "/" not in k} == {*score.metrics, "iou_ci_low", "iou_ci_high"}
    # read back as the site reads it: plain names
    back = read_back(run.data.tags, run.data.params, m).metrics
    assert back["train_s"] == pytest.approx(timings["train_s"]) and "system/train_s" not in back
    unet, _ = store.run_of("unet.default.s0")
    assert "system/gpu_seconds" not in unet.data.metrics
    assert "system/energy_j" not in unet.data.metrics


def test_ndvi_undefined_and_every_secondary_metric(store: Store) -> None:
    run, record = store.run_of("pix2pix.full.s0")
    assert record.score is not None
    for name, value in record.score.metrics.items():
        if math.isnan(value):  # undefined
            assert math.isnan(run.data.metrics[name])
        else:
            assert run.data.metrics[name] == pytest.approx(value)
    assert set(record.score.metrics) <= set(run.data.metrics)


def test_loss_curves_are_metrics_with_steps(store: Store) -> None:
    run, _ = store.run_of("unet.default.s1")
    history = store.client.get_metric_history(run.info.run_id, "loss/train_loss")
    assert [h.step for h in history] == [0, 1, 2, 3, 4]
    assert [h.value for h in history] == pytest.approx([1.0, 0.5, 0.3333, 0.25, 0.2])
    assert store.client.get_metric_history(run.info.run_id, "loss/val_loss")
    # time is not a loss: the seconds column is published apart, under time/
    assert "loss/seconds" not in run.data.metrics and "time/loss/seconds" in run.data.metrics


def test_loss_points_parse_rules() -> None:
    text = "step,g_loss,note\n10,0.5,x\n20,,y\n30,0.25,z\n"
    assert loss_points("loss_gan", text) == [
        ("loss_gan/g_loss", 10, 0.5),
        ("loss_gan/g_loss", 30, 0.25),
    ]
    assert loss_points("loss", "a\n1\n2\n") == [("loss/a", 0, 1.0), ("loss/a", 1, 2.0)]
    assert loss_points("loss", "") == []
    assert loss_points("loss", "epoch,seconds\n0,1.5\n") == [("time/loss/seconds", 0, 1.5)]


def test_a_handful_of_tags_and_the_facts_as_params(store: Store) -> None:
    run, record = store.run_of("acme-seg.default.s0.flood-synth")
    tags = run.data.tags
    own = sorted(k for k in tags if k.startswith("sarbench."))
    assert own == [BOARD, KEY, PUBLISHED, "sarbench.publishing", SCORER_TAG, "sarbench.status"]
    assert len(own) <= MAX_SARBENCH_TAGS and tags[SCORER_TAG] == record.scorer == "1"
    assert sorted(k for k in tags if not k.startswith("sarbench.")) == [
        "mlflow.note.content",
        "mlflow.parentRunId",
        "mlflow.runName",
    ]
    assert run.data.params["sarbench.dataset_digest"] == record.dataset_digest
    t = facts(run)
    local = t["sarbench.backend"] == "local"
    assert not local
    assert t["sarbench.entry"] == "acme-seg" and t["sarbench.baseline"] == "false"
    assert t["sarbench.status"] == "ok" and t["sarbench.reason"] == ""
    assert t["sarbench.dataset_digest"] == record.dataset_digest
    assert t["sarbench.image_digest"] == record.image_digest
    assert t["sarbench.conditions"] == record.fingerprint
    assert t["sarbench.isolated"] == ("false" if local else "true")
    assert record.run_id == run.info.run_name
    assert t[KEY] == record.key_hash and t[PUBLISHED] == COMPLETE
    assert t["sarbench.team"] == record.entry.team
    assert t["sarbench.profile"] == "quick" and t["sarbench.n_chips"] == "12"


def test_unisolated_run_is_its_own_run_marked_local(store: Store) -> None:
    runs = [r for r in store.entry_runs() if r.data.params["entry"] == "acme-seg"]
    assert sorted(r.data.params["sarbench.backend"] for r in runs) == ["docker", "local"]
    local = next(r for r in runs if r.data.params["sarbench.backend"] == "local")
    assert local.data.params["sarbench.isolated"] == "false"
    assert len({r.data.tags[KEY] for r in runs}) == 2


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    out: set[str] = set()
    for info in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, info.path) if info.is_dir else {info.path}
    return out


def test_artifacts(store: Store, tmp_path: Path) -> None:
    run, record = store.run_of("unet.default.s0")
    names = _artifacts(store.client, run.info.run_id)
    expected = {
        "record.json",
        "config/train.json",
        "config/predict.json",
        "logs/train.log",
        "logs/predict.log",
        "artifacts/loss.csv",
        "artifacts/options.json",
        "scores/chips.csv",
    }
    assert expected <= names
    looks = sorted(n for n in names if n.startswith("quicklooks/"))
    assert looks == [f"quicklooks/chip_{i:02d}.png" for i in (0, 4, 7, 11)]
    local = Path(
        store.client.download_artifacts(run.info.run_id, "scores/chips.csv", str(tmp_path))
    )
    rows = list(csv.DictReader(io.StringIO(local.read_text())))
    assert record.score is not None
    chips = record.score.chips
    assert [r["id"] for r in rows] == [c.id for c in chips]
    for row, chip in zip(rows, chips, strict=True):
        for name, value in {**chip.metrics, **chip.stats}.items():
            assert float(row[name]) == pytest.approx(value), name
    png = Path(store.client.download_artifacts(run.info.run_id, looks[0], str(tmp_path)))
    from PIL import Image

    with Image.open(png) as img:
        assert img.size[0] > 3 * img.size[1] > 300


def test_failed_record_has_status_and_reason_no_metrics(store: Store) -> None:
    run, record = store.run_of("unet.default.s2")
    assert record.status == "failed"
    assert run.data.tags["sarbench.status"] == "failed"
    assert run.data.params["sarbench.reason"] == "timeout"
    assert run.data.params["sarbench.detail"] == record.detail
    assert run.data.metrics == {}
    assert run.info.status == "FAILED"
    names = _artifacts(store.client, run.info.run_id)
    assert "record.json" in names and "logs/train.log" in names
    assert not any(n.startswith(("scores/", "quicklooks/")) for n in names)


def test_experiments_open_as_model_training_with_a_description(store: Store) -> None:
    exp = store.client.get_experiment_by_name("sarbench/ndvi/ndvi-synth")
    assert exp.tags[EXPERIMENT_KIND] == TRAINING_KIND  # MLflow 3's UI: the runs, not traces
    note = exp.tags[NOTE]
    assert "ndvi-synth" in note and "`mse` (lower is better)" in note and "system/" in note


def test_each_board_is_one_parent_run_with_its_entry_runs_nested(store: Store) -> None:
    runs = store.all_runs()
    boards = [r for r in runs if BOARD_RUN in r.data.tags]
    assert len(boards) == 2  # flood-synth and ndvi-synth: one board each in this scenario
    by_board = {b.data.tags[BOARD_RUN]: b.info.run_id for b in boards}
    entries = store.entry_runs()
    assert len(entries) == 15
    for run in entries:
        assert run.data.tags[PARENT] == by_board[run.data.tags[BOARD]]
        (data,) = run.inputs.dataset_inputs
        assert data.dataset.name == run.data.params["sarbench.dataset"]
        digest = run.data.params["sarbench.dataset_digest"]
        assert data.dataset.digest == digest.removeprefix("sha256:")[:12]
        assert json.loads(data.dataset.profile) == {"digest": digest}
        assert [(t.key, t.value) for t in data.tags] == [("mlflow.data.context", "test")]
    for board in boards:  # a board run is no record: the site never reads it
        assert KEY not in board.data.tags and PUBLISHED not in board.data.tags
        assert board.data.params["sarbench.profile"] == "quick"
        assert len(board.inputs.dataset_inputs) == 1


def test_publishing_again_creates_nothing(store: Store) -> None:
    before = len(store.all_runs())
    again = Publisher(store.settings, store.uri)
    assert [again.publish(d).action for d in store.dirs] == ["exists"] * len(store.dirs)
    result = CliRunner().invoke(publish, ["--tracking-uri", store.uri], obj=store.settings)
    assert result.exit_code == 0, result.output
    assert "15 exists" in result.output
    exp = store.client.get_experiment_by_name("sarbench/flood/flood-synth")
    link = (
        f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs"
        "?workflowType=machine_learning&viewStateShareKey=sarbench"
    )
    assert f"sarbench/flood/flood-synth: {link}" in result.output  # the ranking view
    assert len(store.all_runs()) == before


def test_a_private_test_run_publishes_no_quicklook(store: Store, tmp_path: Path) -> None:
    """A quicklook draws the truth; a private test's truth is never shown (its per-chip
    scores are, as paired comparisons need them)."""
    source = next(d for d in store.dirs if d.name.startswith("threshold"))
    folder = tmp_path / "runs" / "threshold.default.s0.private.000000000000"
    shutil.copytree(source, folder)
    original = RunFolder(folder).load()
    (folder / "record.json").unlink()
    record = dataclasses.replace(
        original,
        run_id=folder.name,
        key=dataclasses.replace(original.key, seed=99),
        test_kind="private",
    )
    RunFolder(folder).save(record)

    result = Publisher(store.settings, store.uri).publish(folder)

    names = _artifacts(store.client, result.mlflow_run_id)
    assert "scores/chips.csv" in names
    assert not any(n.startswith("quicklooks/") for n in names)
    assert result.notes and "the test is private" in result.notes[0]


def test_a_cut_off_publish_is_replaced_and_missing_data_is_noted(
    store: Store, tmp_path: Path
) -> None:
    source = next(d for d in store.dirs if d.name.startswith("threshold"))
    folder = tmp_path / "runs" / "threshold.default.s0.flood-other.000000000000"
    shutil.copytree(source, folder)
    original = RunFolder(folder).load()
    (folder / "record.json").unlink()
    record = dataclasses.replace(  # no test data for flood-other under the data root
        original,
        run_id=folder.name,
        key=dataclasses.replace(original.key, dataset="flood-other"),
    )
    RunFolder(folder).save(record)
    key = record.key_hash
    assert key != original.key_hash
    where = (tmp_path / "artifacts").as_uri()
    exp_id = store.client.create_experiment("sarbench/flood/flood-other", artifact_location=where)
    half = store.client.create_run(exp_id, tags={KEY: key})

    result = Publisher(store.settings, store.uri).publish(folder)

    assert result.action == "replaced"
    assert store.client.get_run(half.info.run_id).info.lifecycle_stage == "deleted"
    (run,) = store.client.search_runs([exp_id], f"tags.`{KEY}` = '{key}'")
    assert run.info.run_id == result.mlflow_run_id
    assert result.notes and "no quicklooks: test targets not found" in result.notes[0]
    assert "no quicklooks" in run.data.tags["sarbench.publish_notes"]
    assert record.score is not None
    assert run.data.metrics["iou"] == pytest.approx(record.score.metrics["iou"])


def test_quicklooks_note_when_predictions_are_missing(store: Store, tmp_path: Path) -> None:
    looks = write_quicklooks(
        store.settings, "flood-synth", "flood", ["chip_00"], tmp_path / "nothing", tmp_path / "q"
    )
    assert looks.files == () and "is missing" in looks.note


def test_a_malformed_record_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "record.json").write_text(json.dumps({"schema": "sarbench.run/1", "run_id": "x"}))
    with pytest.raises(RecordError, match=r"record\.json: \d+ problems:") as caught:
        RunFolder(folder).load()
    assert caught.value.path == folder / "record.json"
    assert "field 'variant' is missing" in caught.value.problems
    assert "    - field 'variant' is missing" in str(caught.value)
    (folder / "record.json").write_text("{not json")
    with pytest.raises(RecordError, match="cannot read the record"):
        RunFolder(folder).load()
    with pytest.raises(RecordError, match=r"has no record\.json"):
        RunFolder(tmp_path).load()


def test_publish_without_runs_says_what_to_do(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, data_root=tmp_path / "d", manifests_dir=tmp_path / "m")
    result = CliRunner().invoke(publish, [], obj=settings)
    assert result.exit_code != 0
    assert "no run folders under" in str(result.exception)


def test_a_bad_record_does_not_stop_the_others(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "record.json").write_text(json.dumps({"schema": "sarbench.run/0"}))
    args = ["--tracking-uri", store.uri, str(bad), str(store.dirs[0])]
    result = CliRunner().invoke(publish, args, obj=store.settings)
    assert result.exit_code != 0
    assert "1 exists" in result.output
    message = str(result.exception)
    assert "1 record(s) not published" in message and "sarbench.run/0" in message


def test_a_rescored_record_updates_its_run_and_adds_none(store: Store, tmp_path: Path) -> None:
    """Last in this file: it changes a published run's score (a copy of its folder is
    rescored; the key is the same, so it is the same MLflow run)."""
    source = next(d for d in store.dirs if d.name.startswith("unet.default.s1"))
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    split = SplitDir(store.settings.dataset_dir("flood-synth") / "test")
    rescore_run(store.settings, folder, split)
    before = len(store.all_runs())
    publisher = Publisher(store.settings, store.uri)
    result = publisher.publish(folder)
    assert result.action == "updated" and len(store.all_runs()) == before
    run = store.client.get_run(result.mlflow_run_id)
    record = RunFolder(folder).load()
    assert record.score is not None and record.rescored is not None
    assert run.data.metrics["iou"] == pytest.approx(record.score.metrics["iou"])
    assert run.data.tags[SCORER_TAG] == "2"
    assert json.loads(run.data.tags[RESCORED_TAG])["at"] == RESCORED_AT
    history = store.client.get_metric_history(run.info.run_id, "iou")
    assert len(history) == 2  # the score before stays in the metric's history
    assert publisher.publish(folder).action == "exists"  # up to date now
