"""The run record: one typed, frozen :class:`RunRecord` per run, one writer, one reader.

A run folder (:class:`RunFolder`) is ``<home>/runs/<run_id>/``; its ``record.json`` is
written once, atomically, and never overwritten (:meth:`RunFolder.save`). Everything that
reads a record (the runner's skip check, ``sarbench validate``, publishing, the site, the
tests) reads it through :meth:`RunRecord.from_json`, which checks every field and lists
every problem in one :class:`RecordError` naming the file.

Each fact is written once (schema ``sarbench.run/2``): the key holds the entry, variant,
seed, dataset, the digests and the conditions fingerprint; nothing repeats them.
``sarbench.run/1`` records (the release before) still read: they are brought to the
current shape on reading, and their key hash, run ID and comparability key are what they
were. The format is ``docs/records.md``.

The record's parts (its key, entry, task, phases, timings, score) are
:mod:`harness.record_parts`, and the reader (every field's check, the ``/1`` upgrade,
rescore files) is :mod:`harness.record_read`; this module re-exports their public names.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.record_parts import (
    MAX_RECORD_BYTES,
    PHASES,
    READABLE,
    RECORD_FILE,
    SCHEMA,
    SCHEMA_V1,
    STATUSES,
    UNHASHED,
    ChipScore,
    Comparability,
    EntryInfo,
    PhaseRecord,
    RecordError,
    RecordKey,
    RecordScore,
    Status,
    TaskInfo,
    Timings,
    digest,
    json_number,
    number,
    run_key,
)
from harness.record_read import _Fields, _from_v1, _parse, _rescored

__all__ = [
    "MAX_RECORD_BYTES",
    "PHASES",
    "READABLE",
    "RECORD_FILE",
    "SCHEMA",
    "SCHEMA_V1",
    "STATUSES",
    "UNHASHED",
    "ChipScore",
    "Comparability",
    "EntryInfo",
    "PhaseRecord",
    "RecordError",
    "RecordKey",
    "RecordScore",
    "RunFolder",
    "RunRecord",
    "Status",
    "TaskInfo",
    "Timings",
    "digest",
    "json_number",
    "load_records",
    "number",
    "run_folders",
    "run_key",
    "write_json_atomic",
]


# --- the record ------------------------------------------------------------------------


def _of_key(name: str, doc: str = "") -> Any:
    """A property of :class:`RunRecord`: one fact of its key, by name."""
    return property(lambda self: getattr(self.key, name), doc=doc or f"``key.{name}``.")


@dataclass(frozen=True)
class RunRecord:
    """One run's record (see the module docstring and ``docs/records.md``)."""

    run_id: str
    key: RecordKey
    task: TaskInfo
    entry: EntryInfo
    status: Status
    reason: str | None = None
    detail: str = ""
    problems: tuple[str, ...] = ()
    """For ``invalid-output``: the first problems of the predictions, and a count."""
    test_kind: str = "public"
    """Which test the score used: ``private`` (made from a secret only the maintainers
    hold), ``demo`` (made from the generator's public seed: anyone can rebuild its labels)
    or ``public`` (imported data whose test labels are published; records of
    ``sarbench.run/1``)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    ablation: Mapping[str, Any] | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)
    machine: Mapping[str, Any] = field(default_factory=dict)
    gpu_uuid: str | None = None
    mismatches: tuple[str, ...] = ()
    mismatch_allowed: bool = False
    isolated: bool = True
    output_limit_by: str | None = None
    image_ref: str | None = None
    weights: Mapping[str, Any] | None = None
    pretrained: bool | None = None
    """Whether the model started from pretrained weights. False: the entry declares
    weights (``[weights]``) but none were mounted, or its ``checkpoint_report.json`` says
    they were not loaded (a "random init" run); True: weights were mounted and not
    reported unused; None: the entry declares none and none were mounted."""
    phases: Mapping[str, PhaseRecord] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    score: RecordScore | None = None
    artifacts: tuple[str, ...] = ()
    host: str = ""
    node: str = ""
    """The Ray node ID the run ran on (``sarbench run --executor ray``); empty for a run
    made by the local executor, and for records made before the field existed."""
    started_at: str = ""
    finished_at: str = ""
    harness_version: str = ""
    scorer: str = ""
    """The scorer version that made ``score`` (:data:`harness.scoring.SCORER_VERSION`);
    empty for records made before the field existed."""
    rescored: Mapping[str, Any] | None = None
    """None, or how ``sarbench rescore`` changed the score: ``at`` (UTC time), ``from``
    (the scorer version before) and ``previous`` (the metrics before). The record file is
    never rewritten: a rescore is a file of its own (:meth:`RunFolder.rescore`)."""
    schema: str = SCHEMA
    """The schema it was read from (a record made now is :data:`SCHEMA`)."""

    # --- facts of the key, by name ---
    variant = _of_key("variant")
    seed = _of_key("seed")
    dataset = _of_key("dataset")
    dataset_digest = _of_key("dataset_digest")
    image_digest = _of_key("image_digest", "The image ID that ran (None: the local backend).")

    split = _of_key("split", "The split scored (``test``, ``val``, or another held-out split).")

    @property
    def fingerprint(self) -> str:
        """The conditions fingerprint."""
        return self.key.conditions

    @property
    def backend(self) -> str:
        """``docker`` or ``local`` (without the ``-validate`` of validate runs)."""
        return self.key.backend.removesuffix("-validate")

    @property
    def profile_name(self) -> str:
        name = self.profile.get("name", "")
        return name if isinstance(name, str) else ""

    @property
    def primary_metric(self) -> str:
        return self.task.primary_metric

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def primary(self) -> float:
        """The primary metric's score (NaN without a score)."""
        if self.score is None:
            return math.nan
        return self.score.metrics.get(self.primary_metric, math.nan)

    @property
    def checkpoint(self) -> str:
        """The pretrained checkpoint's digest, ``"none"`` without weights."""
        if self.key.checkpoint != "none":
            return self.key.checkpoint
        if self.weights is None:
            return "none"
        found = self.weights.get("digest")
        return found if isinstance(found, str) and found else UNHASHED

    @property
    def comparability(self) -> Comparability:
        return Comparability(
            self.profile_name, self.key.conditions, self.key.dataset_digest, self.checkpoint
        )

    @property
    def key_hash(self) -> str:
        """``sha256:`` of the whole key and the backend: a record the runner would skip is
        one publishing skips too, and a local (unisolated) run never stands in for the
        isolated run of the same key. Records of ``sarbench.run/1`` hash as they did."""
        return digest({**self.key.id_doc(), "backend": self.backend})

    # --- writing and reading ---
    def to_json(self) -> dict[str, Any]:
        """The record as ``sarbench.run/2`` JSON (what :meth:`RunFolder.save` writes)."""
        key = self.key
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "key": {**key.id_doc(), "checkpoint": key.checkpoint, "split": key.split},
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "problems": list(self.problems),
            "task": {
                "name": self.task.name,
                "primary_metric": self.task.primary_metric,
                "higher_is_better": self.task.higher_is_better,
            },
            "test_kind": self.test_kind,
            "entry": {
                "team": self.entry.team,
                "contact": self.entry.contact,
                "baseline": self.entry.baseline,
                "description": self.entry.description,
            },
            "ablation": None if self.ablation is None else dict(self.ablation),
            "options": dict(self.options),
            "profile": dict(self.profile),
            "conditions": {
                "machine": dict(self.machine),
                "gpu_uuid": self.gpu_uuid,
                "mismatches": list(self.mismatches),
                "mismatch_allowed": self.mismatch_allowed,
            },
            "isolated": self.isolated,
            "output_limit_by": self.output_limit_by,
            "image_ref": self.image_ref,
            "weights": None if self.weights is None else dict(self.weights),
            "pretrained": self.pretrained,
            "phases": {name: p.to_json() for name, p in self.phases.items()},
            "timings": {k: None if v is None else json_number(v) for k, v in self.timings.items()},
            "score": None if self.score is None else self.score.to_json(),
            "artifacts": list(self.artifacts),
            "host": self.host,
            "node": self.node,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "harness_version": self.harness_version,
            "scorer": self.scorer,
            "rescored": None if self.rescored is None else dict(self.rescored),
        }

    @classmethod
    def from_json(cls, doc: Any, path: object = RECORD_FILE) -> RunRecord:
        """Check ``doc`` (``sarbench.run/2`` or ``/1``) and make the record; a
        :class:`RecordError` naming ``path`` lists every problem found."""
        if not isinstance(doc, Mapping):
            raise RecordError(path, "a record must be a JSON object")
        schema = doc.get("schema")
        if schema not in READABLE:
            raise RecordError(
                path, f"schema is {schema!r}; this harness reads {' and '.join(READABLE)}"
            )
        problems: list[str] = []
        if schema == SCHEMA_V1:
            doc = _from_v1(doc, problems)
        record = _parse(_Fields(doc, "", problems), str(schema))
        if problems or record is None:
            raise RecordError(path, problems or ["cannot be read"])
        return record


def _inside(name: str, doc: str) -> Any:
    """A property of :class:`RunFolder`: the path ``name`` in the run folder."""
    return property(lambda self: self.path / name, doc=doc)


@dataclass(frozen=True)
class RunFolder:
    """Every path of one run folder (``docs/records.md``), and its record."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    record_path = _inside(RECORD_FILE, "The record (absent while the run is unfinished).")
    configs = _inside("config", "What each phase's container read at ``/config/run.json``.")
    logs = _inside("logs", "Each phase's log (stdout and stderr, capped).")
    artifacts = _inside("artifacts", "What ``train`` left in ``/model/artifacts``.")
    predictions = _inside("predictions", "The validated test predictions (an ok run).")
    rescores = _inside(
        "rescores", "One file per ``sarbench rescore`` that changed the scorer, in order."
    )
    work = _inside("work", "The working folder while the run runs (removed after).")

    def config(self, phase: str) -> Path:
        return self.configs / f"{phase}.json"

    def log(self, phase: str) -> Path:
        return self.logs / f"{phase}.log"

    def read(self) -> RunRecord | None:
        """The finished record, or None while the run is unfinished (no record file)."""
        file = self.record_path
        if not file.is_file():
            return None
        try:
            size = file.stat().st_size
            if size > MAX_RECORD_BYTES:
                raise RecordError(
                    file, f"{size} bytes; a record of more than {MAX_RECORD_BYTES} is not read"
                )
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise RecordError(file, f"cannot read the record ({exc})") from exc
        record = RunRecord.from_json(doc, file)
        for rescore in self.rescore_files():
            record = _rescored(record, rescore)
        return record

    def rescore_files(self) -> list[Path]:
        """The rescore files, oldest first (``rescores/0001.json``, ...)."""
        if not self.rescores.is_dir():
            return []
        return sorted(p for p in self.rescores.glob("[0-9]*.json") if p.is_file())

    def rescore(self, score: RecordScore, scorer: str, at: str) -> RunRecord:
        """Record that the scorer ``scorer`` scored the kept predictions as ``score``: a new
        file under ``rescores/`` (never one that exists); ``record.json`` is untouched, and
        :meth:`read` gives the record with the newest score. The record as now read."""
        self.load()  # a folder with a readable record, or a RecordError
        self.rescores.mkdir(exist_ok=True)
        path = self.rescores / f"{len(self.rescore_files()) + 1:04d}.json"
        doc = {"scorer": scorer, "at": at, "score": score.to_json()}
        with open(path, "x", encoding="utf-8") as f:  # "x": never replaces a rescore
            json.dump(doc, f, indent=1, allow_nan=False)
            f.write("\n")
        return self.load()

    def load(self) -> RunRecord:
        """The record; a :class:`RecordError` when the folder has none."""
        record = self.read()
        if record is None:
            raise RecordError(self.path, f"not a run folder: it has no {RECORD_FILE}")
        return record

    def save(self, record: RunRecord) -> None:
        """Write the record, atomically; refuses to replace one that exists."""
        if self.record_path.exists():
            raise RecordError(
                self.record_path, "a record exists already; records are never overwritten"
            )
        write_json_atomic(self.record_path, record.to_json())

    def listing(self) -> tuple[str, ...]:
        """Every file of the folder but the record, relative to it, sorted."""
        return tuple(
            sorted(
                str(p.relative_to(self.path))
                for p in self.path.rglob("*")
                if p.is_file() and p.name != RECORD_FILE
            )
        )


def run_folders(runs_dir: Path) -> Iterator[RunFolder]:
    """Every folder under ``runs_dir`` that holds a record file, in name order."""
    if not runs_dir.is_dir():
        return
    for child in sorted(runs_dir.iterdir()):
        if child.is_dir() and (child / RECORD_FILE).is_file():
            yield RunFolder(child)


def load_records(runs_dir: Path) -> Iterator[RunRecord]:
    """Every finished record under ``runs_dir``, in folder-name order."""
    for folder in run_folders(runs_dir):
        yield folder.load()


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write ``doc`` as JSON so that ``path`` is either absent or complete, never partial."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
