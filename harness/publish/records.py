"""Run folders and their records (schema ``sarbench.run/1``), read and checked for publishing.

A run folder is ``<SARBENCH_HOME>/runs/<run_id>/`` holding ``record.json``, ``config/``
(``train.json``, ``predict.json``), ``logs/``, ``artifacts/`` and ``predictions/`` (see ``docs/leaderboard.md``). Reading checks
the fields publishing relies on, so a malformed record is refused with the field named,
before anything reaches MLflow.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.publish.errors import RecordError
from harness.runner.records import RECORD as RECORD_FILE
from harness.runner.records import SCHEMA
from harness.tasks import TASKS

MAX_RECORD_BYTES = 64 * 2**20
"""A larger record.json is refused unread (a real one is well under a megabyte)."""
KEY_FIELDS = ("entry", "variant", "seed", "dataset_digest", "image_digest", "conditions")
"""What makes two records the same run: publishing one of them twice creates no duplicate."""
STATUSES = ("ok", "failed")


@dataclass(frozen=True)
class RunFolder:
    """A run folder and its parsed record."""

    path: Path
    record: dict[str, Any]

    @property
    def record_path(self) -> Path:
        return self.path / RECORD_FILE

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    @property
    def ok(self) -> bool:
        return self.record["status"] == "ok"


def _get(record: Mapping[str, Any], dotted: str, path: Path, kinds: tuple[type, ...]) -> Any:
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise RecordError(path, f"field {dotted!r} is missing")
        node = node[part]
    if not isinstance(node, kinds) or (isinstance(node, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise RecordError(path, f"field {dotted!r} must be {names}, got {node!r}")
    return node


def check_record(record: Any, path: Path) -> dict[str, Any]:
    """``record`` if it has every field publishing needs, else a :class:`RecordError`."""
    if not isinstance(record, dict):
        raise RecordError(path, "a record must be a JSON object")
    schema = record.get("schema")
    if schema != SCHEMA:
        raise RecordError(path, f"schema is {schema!r}; this harness publishes {SCHEMA!r}")
    for name in ("run_id", "variant", "task", "primary_metric", "backend"):
        _get(record, name, path, (str,))
    for name in KEY_FIELDS:
        if name == "image_digest" and record.get("backend") == "local":
            continue  # the local backend runs no image
        _get(record, f"key.{name}", path, (int,) if name == "seed" else (str,))
    _get(record, "seed", path, (int,))
    _get(record, "entry.name", path, (str,))
    _get(record, "dataset.name", path, (str,))
    _get(record, "dataset.digest", path, (str,))
    _get(record, "isolated", path, (bool,))
    _get(record, "options", path, (dict,))
    if record["task"] not in TASKS:
        raise RecordError(path, f"task {record['task']!r} is not one of {sorted(TASKS)}")
    status = _get(record, "status", path, (str,))
    if status not in STATUSES:
        raise RecordError(path, f"status must be one of {STATUSES}, got {status!r}")
    if status == "ok":
        score = _get(record, "score", path, (dict,))
        _get(score, "metrics", path, (dict,))
        _get(score, "interval", path, (dict,))
        chips = _get(score, "chips", path, (list,))
        if not chips:
            raise RecordError(path, "score.chips is empty: an ok run was scored on no chip")
        if score.get("primary_metric", record["primary_metric"]) != record["primary_metric"]:
            raise RecordError(path, "score.primary_metric differs from primary_metric")
    elif not record.get("reason"):
        raise RecordError(path, "a failed record must carry a reason")
    return record


def read_run_folder(path: str | os.PathLike[str]) -> RunFolder:
    """The run folder at ``path`` with its checked record."""
    folder = Path(path)
    file = folder / RECORD_FILE
    if not file.is_file():
        raise RecordError(folder, f"not a run folder: it has no {RECORD_FILE}")
    try:
        size = file.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise RecordError(
                file, f"{size} bytes; a record of more than {MAX_RECORD_BYTES} is not read"
            )
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RecordError(file, f"cannot read the record ({exc})") from exc
    return RunFolder(folder, check_record(record, file))


def run_folders(runs: Path) -> Iterator[Path]:
    """Every folder under ``runs`` (``Settings.runs_dir``) that holds a record.json, sorted."""
    if not runs.is_dir():
        return
    for child in sorted(runs.iterdir()):
        if (child / RECORD_FILE).is_file():
            yield child


def key_hash(record: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the record's whole key, as the runner wrote it (entry, variant,
    seed, dataset and image digests, conditions, options digest...), and its backend, as
    canonical JSON: a record the runner would skip is one publishing skips too.

    The backend is part of it so that a local (unisolated) debugging run never stands in
    for the isolated run of the same key, nor the other way round.
    """
    key = {**record["key"], "backend": record["backend"]}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
