"""The run record module (``harness/record.py``) on its own: what it writes reads back
unchanged, it never overwrites nor leaves a partial file, a bad record is refused with every
problem named at once, ``sarbench.run/1`` records still read (and disagreeing copies of the
key's facts are caught), and each fact is written once."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from harness import record as record_module
from harness.record import (
    SCHEMA,
    SCHEMA_V1,
    ChipScore,
    EntryInfo,
    PhaseRecord,
    RecordError,
    RecordScore,
    RunFolder,
    RunRecord,
    TaskInfo,
    Timings,
)
from harness.settings import REPO_ROOT, Settings
from tests.records_factory import RunSpec, key_of, make_run, make_test_split, pix2pix_options

V1_RUNS = REPO_ROOT / "tests" / "data" / "v1-work" / "runs"


@pytest.fixture(scope="module")
def factory_records(tmp_path_factory: pytest.TempPathFactory) -> list[RunRecord]:
    """Records the factory made through the module's one writer: ok, failed, unisolated
    (no image), predict-only, an ablation variant with GPU figures."""
    home = tmp_path_factory.mktemp("records")
    settings = Settings(home=home, data_root=home / "data", manifests_dir=home / "m")
    flood = make_test_split(settings, "flood-synth", "flood")
    ndvi = make_test_split(settings, "ndvi-synth", "ndvi")
    f = {"dataset": "flood-synth", "task": "flood"}
    specs = [
        (RunSpec("unet", **f), flood),
        (RunSpec("unet", seed=2, status="failed", reason="timeout", **f), flood),
        (RunSpec("acme", backend="local", baseline=False, **f), flood),
        (RunSpec("threshold", phases=("predict",), **f), flood),
        (
            RunSpec(
                "pix2pix",
                "ndvi-synth",
                "ndvi",
                variant="no-tta",
                options=pix2pix_options("no-tta"),
                gpu_seconds=42.0,
            ),
            ndvi,
        ),
    ]
    return [RunFolder(make_run(settings, spec, split)).load() for spec, split in specs]


def a_record(**changes: Any) -> RunRecord:
    """A record with every part filled in by hand: weights (a checkpoint), GPU figures,
    mismatches, an undefined (NaN) metric, and an infinite one."""
    key = key_of(
        entry="prithvi",
        seed=1,
        options={"epochs": 2, "optim": {"betas": [0.5, 0.999]}},
        checkpoint="sha256:w",
    )
    gpu = {"uuid": "GPU-1", "gpu_seconds": 10.5, "energy_j": 2500.0}
    phase = PhaseRecord(
        status="ok",
        exit_code=0,
        wall_s=12.5,
        peak_memory_bytes=123_456_789,
        log_tail="done",
        image_id="sha256:i",
        reason="exited with code 0",
        output_bytes=4096,
        stderr_tail="",
        gpu=gpu,
    )
    score = RecordScore(
        metrics={"iou": 0.75, "f1": math.nan, "psnr": math.inf},
        interval={"metric": "iou", "estimate": 0.75, "low": 0.7, "high": 0.8, "level": 0.95},
        chips=(
            ChipScore("c0", {"iou": 0.5, "f1": math.nan}, {"tp": 3, "fp": 0}),
            ChipScore("c1", {"iou": 1.0, "f1": 1.0}, {"tp": 4, "fp": 1}),
        ),
        directions={"iou": "higher", "f1": "higher", "psnr": "higher"},
    )
    base = RunRecord(
        run_id=key.run_id,
        key=key,
        task=TaskInfo("flood", "iou", True),
        entry=EntryInfo("prithvi", "team", "contact", True, "a description"),
        status="ok",
        options={"epochs": 2, "optim": {"betas": [0.5, 0.999]}},
        profile={"name": "paper", "cpus": 8.0, "seeds": [0, 1, 2]},
        machine={"cpu_model": "Test CPU", "cpus": 8, "memory_bytes": 2**35, "gpus": []},
        gpu_uuid="GPU-1",
        mismatches=("cpus: 8 asked, 4 found",),
        mismatch_allowed=True,
        output_limit_by="kernel",
        image_ref="sarbench-entry/prithvi:abc",
        weights={"digest": "sha256:w", "files": [{"path": "model.pt", "bytes": 10}]},
        phases={"train": phase, "predict": dataclasses.replace(phase, wall_s=2.0, gpu=None)},
        timings=Timings(train_s=12.5, predict_s=2.0, total_s=15.0, gpu_seconds=10.5),
        score=score,
        artifacts=("artifacts/loss.csv", "logs/train.log"),
        host="test-host",
        started_at="2026-11-21T10:00:00Z",
        finished_at="2026-11-21T10:01:00Z",
        harness_version="0.1.0",
    )
    return dataclasses.replace(base, **changes)


def through_json(record: RunRecord) -> RunRecord:
    """What a reader makes of the record once written (strict JSON, as the file holds)."""
    text = json.dumps(record.to_json(), allow_nan=False)
    return RunRecord.from_json(json.loads(text), "test")


# --- (1) what is written reads back unchanged ---------------------------------------------


def test_factory_records_read_back_as_written(factory_records: list[RunRecord]) -> None:
    assert len(factory_records) == 5
    for record in factory_records:
        assert record.schema == SCHEMA
        again = through_json(record)
        # NaN != NaN: compare what each writes, not the objects
        assert again.to_json() == record.to_json(), record.run_id
        assert again.key == record.key and again.run_id == record.run_id
        assert again.key_hash == record.key_hash
        assert again.comparability == record.comparability


def test_the_file_holds_what_to_json_gives(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    record = a_record()
    folder.save(record)
    assert json.loads(folder.record_path.read_text()) == record.to_json()
    assert folder.load().to_json() == record.to_json()


def test_a_full_record_survives_to_json_and_from_json() -> None:
    record = a_record()
    again = through_json(record)
    assert again.to_json() == record.to_json()
    assert again.checkpoint == "sha256:w" == record.comparability.checkpoint
    assert again.score is not None
    assert math.isnan(again.score.metrics["f1"]) and again.score.metrics["psnr"] == math.inf
    assert math.isnan(again.score.chips[0].metrics["f1"])
    assert (again.score.low, again.score.high, again.score.level) == (0.7, 0.8, 0.95)
    assert again.phases["train"].gpu == {"uuid": "GPU-1", "gpu_seconds": 10.5, "energy_j": 2500.0}
    assert again.phases["predict"].gpu is None
    assert again.mismatches == ("cpus: 8 asked, 4 found",) and again.mismatch_allowed
    assert again.timings == record.timings
    assert again.entry == record.entry and again.task == record.task
    assert again.primary == 0.75


def test_a_failed_and_a_local_record_survive(tmp_path: Path) -> None:
    failed = a_record(status="failed", reason="oom", detail="train: out of memory", score=None)
    assert through_json(failed).to_json() == failed.to_json()
    key = dataclasses.replace(a_record().key, image_digest=None, backend="local")
    local = a_record(key=key, run_id=key.run_id, isolated=False)
    again = through_json(local)
    assert again.to_json() == local.to_json()
    assert (again.image_digest, again.backend, again.isolated) == (None, "local", False)


# --- (2) written once, atomically -----------------------------------------------------------


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    first = a_record()
    folder.save(first)
    before = folder.record_path.read_bytes()
    with pytest.raises(RecordError, match="never overwritten") as caught:
        folder.save(a_record(detail="another"))
    assert caught.value.path == folder.record_path
    assert folder.record_path.read_bytes() == before
    assert folder.load().to_json() == first.to_json()
    assert sorted(p.name for p in folder.path.iterdir()) == ["record.json"]  # no temp file


def test_save_writes_a_whole_file_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record appears by a rename of a complete file: at no time is a partial
    ``record.json`` there to be read, and no temp file is left."""
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    record = a_record()
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        assert not folder.record_path.exists()  # nothing at the final name yet
        assert json.loads(Path(src).read_text()) == record.to_json()  # the temp is complete
        renames.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(record_module.os, "replace", replace)
    folder.save(record)
    ((src, dst),) = renames
    assert dst == "record.json" and src != dst
    assert sorted(p.name for p in folder.path.iterdir()) == ["record.json"]

    broken = RunFolder(tmp_path / "broken")
    broken.path.mkdir()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(record_module.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        broken.save(record)
    assert not broken.record_path.exists()  # a failed write leaves no record
    assert broken.read() is None


# --- (3), (4) a bad record is refused, every problem at once ------------------------------


def test_every_problem_of_a_record_is_listed_naming_the_file(tmp_path: Path) -> None:
    doc = a_record(status="failed", reason="crash", score=None).to_json()
    del doc["isolated"]  # a missing field
    doc["key"]["seed"] = "zero"  # a wrong type
    doc["task"]["name"] = "segmentation"  # an unknown task
    doc["reason"] = None  # failed, without a reason
    path = tmp_path / "runs" / "x" / "record.json"
    with pytest.raises(RecordError) as caught:
        RunRecord.from_json(doc, path)
    problems = caught.value.problems
    assert caught.value.path == path
    assert "field 'isolated' is missing" in problems
    assert "field 'key.seed' must be int, got 'zero'" in problems
    assert any(p.startswith("task 'segmentation' is not one of") for p in problems), problems
    assert "a failed record must carry a reason" in problems
    assert len(problems) == 4, problems
    text = str(caught.value)
    assert text.startswith(f"{path}: 4 problems:")
    for problem in problems:
        assert f"    - {problem}" in text


def test_a_record_file_with_problems_names_its_path(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    doc = a_record().to_json()
    del doc["score"]
    folder.record_path.write_text(json.dumps(doc))
    with pytest.raises(RecordError, match="an ok run has a score") as caught:
        folder.load()
    assert caught.value.path == folder.record_path
    assert str(caught.value).startswith(str(folder.record_path))


@pytest.mark.parametrize("schema", ["sarbench.run/3", "sarbench.run/0", None, 2])
def test_an_unknown_schema_is_refused_naming_it(tmp_path: Path, schema: Any) -> None:
    doc = {**a_record().to_json(), "schema": schema}
    with pytest.raises(RecordError) as caught:
        RunRecord.from_json(doc, tmp_path / "record.json")
    assert caught.value.path == tmp_path / "record.json"
    assert repr(schema) in str(caught.value)
    assert SCHEMA in str(caught.value)  # and says what it reads


def test_not_an_object_is_refused() -> None:
    with pytest.raises(RecordError, match="must be a JSON object"):
        RunRecord.from_json(["schema", SCHEMA], "x.json")


# --- (5) sarbench.run/1 ---------------------------------------------------------------------


def v1_docs() -> list[tuple[Path, dict[str, Any]]]:
    paths = sorted(V1_RUNS.glob("*/record.json"))
    assert len(paths) == 3
    return [(p, json.loads(p.read_text())) for p in paths]


def v1_key_hash(raw: dict[str, Any]) -> str:
    """The key hash as the release before computed it from a raw record."""
    text = json.dumps(
        {**raw["key"], "backend": raw["backend"]}, sort_keys=True, separators=(",", ":")
    )
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_v1_records_read_and_keep_their_run_id_and_key_hash() -> None:
    for path, raw in v1_docs():
        record = RunRecord.from_json(raw, path)
        assert record.schema == SCHEMA_V1
        assert record.run_id == raw["run_id"] == record.key.run_id == path.parent.name
        assert record.key_hash == v1_key_hash(raw)
        assert (record.variant, record.seed) == (raw["variant"], raw["seed"])
        assert record.dataset == raw["dataset"]["name"]
        assert record.dataset_digest == raw["dataset"]["digest"]
        assert record.fingerprint == raw["conditions"]["fingerprint"]
        assert record.image_digest == raw["image"]["digest"]
        assert record.entry.name == raw["entry"]["name"]
        assert record.task.name == raw["task"] and record.primary_metric == raw["primary_metric"]
        assert record.split == raw["dataset"]["split"]
        # written again as /2, it is the same run
        again = through_json(record)
        assert again.schema == SCHEMA
        assert (again.run_id, again.key_hash) == (record.run_id, record.key_hash)
        assert again.comparability == record.comparability


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("variant", "other", "field 'variant' is 'other' but the key says 'default'"),
        ("seed", 5, "field 'seed' is 5 but the key says 0"),
    ],
)
def test_a_v1_copy_of_the_key_that_disagrees_is_a_problem(
    field: str, value: Any, problem: str
) -> None:
    path, raw = v1_docs()[0]
    doc = copy.deepcopy(raw)
    doc[field] = value
    with pytest.raises(RecordError) as caught:
        RunRecord.from_json(doc, path)
    assert problem in caught.value.problems
    assert caught.value.path == path


def test_a_v1_dataset_digest_that_disagrees_is_a_problem() -> None:
    path, raw = v1_docs()[0]
    doc = copy.deepcopy(raw)
    doc["dataset"]["digest"] = "sha256:other"
    with pytest.raises(RecordError, match=r"field 'dataset\.digest' is 'sha256:other'"):
        RunRecord.from_json(doc, path)


# --- (6) each fact is written once ----------------------------------------------------------


def test_each_fact_is_written_once(factory_records: list[RunRecord]) -> None:
    for record in [*factory_records, a_record(), *(RunRecord.from_json(d) for _, d in v1_docs())]:
        doc = record.to_json()
        assert doc["schema"] == SCHEMA
        for repeated in ("variant", "seed", "backend", "dataset", "image", "comparability"):
            assert repeated not in doc, (repeated, record.run_id)
        for repeated in ("primary_metric", "higher_is_better", "fingerprint"):
            assert repeated not in doc
        assert "name" not in doc["entry"]
        assert "fingerprint" not in doc["conditions"]
        assert set(doc["key"]) >= {
            "entry",
            "variant",
            "seed",
            "dataset",
            "dataset_digest",
            "image_digest",
            "conditions",
            "backend",
            "options_digest",
            "checkpoint",
        }
        assert doc["key"]["entry"] == record.entry.name
