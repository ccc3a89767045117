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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from harness.errors import SarbenchError
from harness.runtime.phase import PhaseResult

SCHEMA = "sarbench.run/2"
SCHEMA_V1 = "sarbench.run/1"
READABLE = (SCHEMA, SCHEMA_V1)
RECORD_FILE = "record.json"
MAX_RECORD_BYTES = 64 * 2**20
"""A larger record.json is refused unread (a real one is well under a megabyte)."""
STATUSES = ("ok", "failed")
PHASES = ("train", "predict")
UNHASHED = "unknown: weights mounted, not hashed"
_SAFE = re.compile(r"[^a-z0-9-]+")

Status = Literal["ok", "failed"]


class RecordError(SarbenchError):
    """A run folder or record that cannot be read or used as it is: every problem found, in
    :attr:`problems`, and the file they are in."""

    def __init__(self, path: object, problem: str | Sequence[str]) -> None:
        problems = [problem] if isinstance(problem, str) else list(problem)
        if len(problems) == 1:
            text = f"{path}: {problems[0]}"
        else:
            text = f"{path}: {len(problems)} problems:\n" + "\n".join(
                f"    - {p}" for p in problems
            )
        super().__init__(text)
        self.path, self.problems = path, problems
        self.problem = "; ".join(problems)


def digest(doc: Any) -> str:
    """``sha256:<hex>`` of ``doc`` as canonical JSON."""
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def number(value: Any) -> float | None:
    """A JSON number of a record as a float: numbers, ``null`` (undefined: NaN) and the
    strings ``"inf"``, ``"-inf"``, ``"nan"``; None for anything else."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an int beyond any float
            return None
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return None


def json_number(value: float) -> float | str | None:
    """The inverse of :func:`number` for strict JSON: NaN is ``null``, infinities text."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


# --- the parts of a record -------------------------------------------------------------


@dataclass(frozen=True)
class RecordKey:
    """What identifies a run: running it again under the same key changes nothing
    (:func:`run_key` makes one). The run ID is made from :meth:`id_doc`, so a changed image,
    profile, option or checkpoint gets a run folder of its own."""

    entry: str
    variant: str
    seed: int
    dataset: str
    dataset_digest: str
    image_digest: str | None
    conditions: str
    backend: str
    """``docker`` or ``local``; ``-validate`` appended for ``sarbench validate`` runs."""
    options_digest: str
    checkpoint: str = "none"
    split: str = "test"
    """The split scored: ``test``, ``val`` (``sarbench validate``) or another held-out split
    of the dataset (Sen1Floods11's ``bolivia``)."""

    def id_doc(self) -> dict[str, Any]:
        """What the run ID digests: the checkpoint only where weights were mounted, so
        runs without weights keep the IDs they always had."""
        doc: dict[str, Any] = {
            "entry": self.entry,
            "variant": self.variant,
            "seed": self.seed,
            "dataset": self.dataset,
            "dataset_digest": self.dataset_digest,
            "image_digest": self.image_digest,
            "conditions": self.conditions,
            "backend": self.backend,
            "options_digest": self.options_digest,
        }
        if self.checkpoint != "none":
            doc["checkpoint"] = self.checkpoint
        if self.split != "test":
            doc["split"] = self.split
        return doc

    @property
    def run_id(self) -> str:
        """``<entry>.<variant>.s<seed>.<dataset>.<12 hex of the key's digest>``."""
        short = digest(self.id_doc()).removeprefix("sha256:")[:12]
        parts = [self.entry, self.variant, f"s{self.seed}", self.dataset]
        return ".".join(_SAFE.sub("-", p.lower()) for p in parts) + "." + short


def run_key(*, options: Mapping[str, Any], **facts: Any) -> RecordKey:
    """The key of a run of the resolved ``options`` (kept as their digest) and the other
    facts of :class:`RecordKey` (``checkpoint``: the digest of the weights mounted at
    ``/weights``, from :func:`harness.runner.runfiles.weights_listing`, or ``"none"``)."""
    return RecordKey(options_digest=digest(dict(options)), **facts)


@dataclass(frozen=True)
class Comparability:
    """What must be equal for two runs' scores to be compared or pooled: the conditions
    (profile name and fingerprint), the dataset's digest and the pretrained checkpoint's
    digest (``"none"``). The leaderboard never puts runs whose keys differ on one board."""

    profile: str
    conditions: str
    dataset_digest: str
    checkpoint: str

    @property
    def id(self) -> str:
        return digest(asdict(self))


@dataclass(frozen=True)
class EntryInfo:
    """What a record says about the entry (its file's ``name``, ``team``...)."""

    name: str
    team: str = ""
    contact: str = ""
    baseline: bool = False
    description: str = ""


@dataclass(frozen=True)
class TaskInfo:
    """The task the run was scored for, its primary metric and that metric's direction."""

    name: str
    primary_metric: str
    higher_is_better: bool = True  # as the reader takes a record that leaves it out


@dataclass(frozen=True)
class PhaseRecord(PhaseResult):
    """How one container phase ended (:class:`~harness.runtime.phase.PhaseResult`) and what
    the GPU sampler saw (``gpu``: flat numbers and the GPU's UUID; None without a GPU)."""

    gpu: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timings:
    """Seconds; ``total_s`` includes the harness's own work. GPU figures are sums over the
    phases where a GPU was sampled."""

    train_s: float | None = None
    predict_s: float | None = None
    total_s: float | None = None
    gpu_seconds: float | None = None
    energy_j: float | None = None

    def items(self) -> list[tuple[str, float | None]]:
        return [
            ("train_s", self.train_s),
            ("predict_s", self.predict_s),
            ("total_s", self.total_s),
            ("gpu_seconds", self.gpu_seconds),
            ("energy_j", self.energy_j),
        ]


@dataclass(frozen=True)
class ChipScore:
    id: str
    metrics: Mapping[str, float]
    stats: Mapping[str, float]
    group: str | None = None
    """The chip's independence group (None: the dataset names none)."""


@dataclass(frozen=True)
class RecordScore:
    """The scoring record of ``docs/metrics.md``: pooled metrics (NaN: undefined), their
    directions, the bootstrap interval of the primary metric, every chip's metrics and
    sufficient statistics (what paired comparisons need)."""

    metrics: Mapping[str, float]
    interval: Mapping[str, Any]
    chips: tuple[ChipScore, ...]
    directions: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_chips(self) -> int:
        return len(self.chips)

    @property
    def low(self) -> float:
        return _as_float(self.interval.get("low"))

    @property
    def high(self) -> float:
        return _as_float(self.interval.get("high"))

    @property
    def groups(self) -> tuple[str, ...] | None:
        """Each chip's independence group, or None when some chip has none."""
        found = tuple(c.group for c in self.chips)
        return None if any(g is None for g in found) else found  # type: ignore[return-value]

    @property
    def level(self) -> float | None:
        level = self.interval.get("level")
        return float(level) if isinstance(level, int | float) else None

    @classmethod
    def from_result(cls, doc: Mapping[str, Any]) -> RecordScore:
        """From :meth:`harness.scoring.score.ScoreResult.to_dict`."""
        fields = _Fields(doc, "score", [])
        score = _score(fields)
        if fields.problems:
            raise RecordError("score", fields.problems)
        assert score is not None
        return score

    def to_json(self) -> dict[str, Any]:
        return {
            "n_chips": self.n_chips,
            "metrics": {k: json_number(v) for k, v in self.metrics.items()},
            "directions": dict(self.directions),
            "interval": {
                k: json_number(v) if isinstance(v, float) else v for k, v in self.interval.items()
            },
            "chips": [
                {
                    "id": c.id,
                    **({} if c.group is None else {"group": c.group}),
                    "metrics": {k: json_number(v) for k, v in c.metrics.items()},
                    "stats": {
                        k: v if isinstance(v, int) else json_number(v) for k, v in c.stats.items()
                    },
                }
                for c in self.chips
            ],
        }


def _as_float(value: Any) -> float:
    v = number(value)
    return math.nan if v is None else v


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


def _rescored(record: RunRecord, path: Path) -> RunRecord:
    """``record`` with the score of the rescore file ``path``; a :class:`RecordError`
    naming the file when it cannot be read."""
    problems: list[str] = []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RecordError(path, f"cannot read the rescore ({exc})") from exc
    f = _Fields(doc, "", problems)
    scorer, at = f.text("scorer"), f.text("at")
    sub = f.sub("score")
    score = _score(sub) if sub is not None else None
    if problems or score is None:
        raise RecordError(path, problems or ["the rescore's score cannot be read"])
    previous = dict(record.score.metrics) if record.score is not None else {}
    return replace(
        record,
        score=score,
        scorer=scorer,
        rescored={"at": at, "from": record.scorer, "previous": previous},
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


# --- the reader ------------------------------------------------------------------------


class _Missing:
    pass


_MISSING = _Missing()


class _Fields:
    """Typed access to one JSON object of a record; each problem is added to the shared
    ``problems`` list with its dotted field name, and a default stands in."""

    def __init__(self, doc: Any, where: str, problems: list[str]) -> None:
        self.doc = doc if isinstance(doc, Mapping) else {}
        self.where, self.problems = where, problems

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        if key in self.doc:
            return self.doc[key]
        if default is _MISSING:
            self.problems.append(f"field {self.name(key)!r} is missing")
            return None
        return default

    def typed(self, key: str, kinds: tuple[type, ...], default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if key not in self.doc:
            return value
        ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
        if not ok:
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            self.problems.append(f"field {self.name(key)!r} must be {names}, got {value!r}")
            return None if default is _MISSING else default
        return value

    def text(self, key: str, default: Any = _MISSING) -> Any:
        return self.typed(key, (str,), default)

    def sub(self, key: str, *, optional: bool = False) -> _Fields | None:
        value = self.raw(key, None if optional else _MISSING)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problems.append(f"field {self.name(key)!r} must be an object, got {value!r}")
            return None
        return _Fields(value, self.name(key), self.problems)

    def mapping(self, key: str, default: Any = _MISSING) -> Any:
        value = self.typed(key, (dict, type(None)) if default is None else (dict,), default)
        return value

    def num(self, key: str, *, default: Any = None) -> float | None:
        """A number, or None (absent or ``null``); ``"inf"`` and the like are floats; the
        range is for the reader of the figure to judge."""
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # a count (bytes) stays an int
        v = number(value)
        if v is None:
            self.problems.append(f"field {self.name(key)!r} must be a number, got {value!r}")
        return v


def _numbers(value: Any, where: str, problems: list[str]) -> dict[str, float]:
    if not isinstance(value, Mapping):
        problems.append(f"field {where!r} must be an object, got {value!r}")
        return {}
    out: dict[str, float] = {}
    for name, v in value.items():
        f = number(v)
        if f is None:
            problems.append(f"{where}.{name}: {v!r} is not a number")
        else:
            out[str(name)] = f
    return out


def _score(score: _Fields) -> RecordScore | None:
    problems = score.problems
    before = len(problems)
    metrics = _numbers(score.raw("metrics"), score.name("metrics"), problems)
    interval = score.mapping("interval") or {}
    chips_doc = score.typed("chips", (list,))
    chips: list[ChipScore] = []
    for i, chip in enumerate(chips_doc or []):
        where = f"{score.name('chips')}[{i}]"
        c = _Fields(chip, where, problems)
        chips.append(
            ChipScore(
                str(c.text("id", "")),
                _numbers(c.raw("metrics", {}), f"{where}.metrics", problems),
                {
                    k: v if isinstance(v, int) and not isinstance(v, bool) else _as_float(v)
                    for k, v in (c.mapping("stats", {}) or {}).items()
                },
                c.typed("group", (str, type(None)), None),
            )
        )
    directions = score.mapping("directions", {}) or {}
    if len(problems) > before:
        return None
    parsed = {
        k: _as_float(v) if k in ("estimate", "low", "high") else v for k, v in interval.items()
    }
    return RecordScore(
        metrics, parsed, tuple(chips), {str(k): str(v) for k, v in directions.items()}
    )


def _phase(p: _Fields) -> PhaseRecord:
    gpu = p.mapping("gpu", None)
    return PhaseRecord(
        status=p.text("status", "failed") or "failed",
        exit_code=p.typed("exit_code", (int, type(None)), None),
        wall_s=p.num("wall_s", default=0.0) or 0.0,
        peak_memory_bytes=p.num("peak_memory_bytes"),
        log_tail=p.text("log_tail", "") or "",
        image_id=p.typed("image_id", (str, type(None)), None),
        isolated=bool(p.typed("isolated", (bool,), True)),
        reason=p.text("reason", "") or "",
        output_bytes=p.typed("output_bytes", (int, type(None)), None),
        stderr_tail=p.text("stderr_tail", "") or "",
        gpu=gpu,
    )


def _parse(r: _Fields, schema: str) -> RunRecord | None:
    from harness.tasks import TASKS

    problems = r.problems
    run_id = r.text("run_id")
    k = r.sub("key")
    key = None
    if k is not None:
        backend = k.text("backend")
        image = k.typed("image_digest", (str, type(None)))
        if image is None and backend is not None and not backend.startswith("local"):
            problems.append("field 'key.image_digest' is missing (only local runs have none)")
        key = RecordKey(
            entry=k.text("entry"),
            variant=k.text("variant"),
            seed=k.typed("seed", (int,)),
            dataset=k.text("dataset"),
            dataset_digest=k.text("dataset_digest"),
            image_digest=image,
            conditions=k.text("conditions"),
            backend=backend,
            options_digest=k.text("options_digest"),
            checkpoint=k.text("checkpoint", "none"),
            # written beside the key by this schema's first commits
            split=k.text("split", None) or r.text("split", "test") or "test",
        )
    t = r.sub("task")
    task = None
    if t is not None:
        name = t.text("name")
        if isinstance(name, str) and name not in TASKS:
            problems.append(f"task {name!r} is not one of {sorted(TASKS)}")
        task = TaskInfo(name, t.text("primary_metric"), t.typed("higher_is_better", (bool,), True))
    e = r.sub("entry")
    entry = EntryInfo(
        name=key.entry if key else "",
        team=e.text("team", "") if e else "",
        contact=e.text("contact", "") if e else "",
        baseline=bool(e.typed("baseline", (bool,), False)) if e else False,
        description=e.text("description", "") if e else "",
    )
    status = r.text("status")
    if isinstance(status, str) and status not in STATUSES:
        problems.append(f"status must be one of {STATUSES}, got {status!r}")
    reason = r.typed("reason", (str, type(None)), None)
    score = None
    s = r.sub("score", optional=True)
    if status == "ok":
        if s is None:
            problems.append("field 'score' is missing: an ok run has a score")
        else:
            score = _score(s)
            if score is not None and not score.chips:
                problems.append("score.chips is empty: an ok run was scored on no chip")
    elif status == "failed" and not reason:
        problems.append("a failed record must carry a reason")
    phases: dict[str, PhaseRecord] = {}
    ph = r.sub("phases", optional=True)
    for name in ph.doc if ph is not None else ():
        sub = ph.sub(str(name)) if ph is not None else None
        if sub is not None:
            phases[str(name)] = _phase(sub)
    tm = r.sub("timings", optional=True) or _Fields({}, "timings", problems)
    timings = Timings(
        *(tm.num(n) for n in ("train_s", "predict_s", "total_s")),
        tm.num("gpu_seconds"),
        tm.num("energy_j"),
    )
    c = r.sub("conditions", optional=True) or _Fields({}, "conditions", problems)
    artifacts = r.typed("artifacts", (list,), [])
    mismatches = c.typed("mismatches", (list,), [])
    record_problems = r.typed("problems", (list,), [])
    values = {
        "detail": r.text("detail", "") or "",
        "test_kind": r.text("test_kind", "public") or "public",
        "options": r.mapping("options"),
        "ablation": r.mapping("ablation", None),
        "profile": r.mapping("profile", {}) or {},
        "machine": c.mapping("machine", {}) or {},
        "gpu_uuid": c.typed("gpu_uuid", (str, type(None)), None),
        "mismatch_allowed": bool(c.typed("mismatch_allowed", (bool,), False)),
        "isolated": r.typed("isolated", (bool,)),
        "output_limit_by": r.typed("output_limit_by", (str, type(None)), None),
        "image_ref": r.typed("image_ref", (str, type(None)), None),
        "weights": r.mapping("weights", None),
        "pretrained": r.typed("pretrained", (bool, type(None)), None),
        "host": r.text("host", "") or "",
        "node": r.text("node", "") or "",
        "started_at": r.typed("started_at", (str, type(None)), "") or "",
        "finished_at": r.typed("finished_at", (str, type(None)), "") or "",
        "harness_version": r.text("harness_version", "") or "",
        "scorer": r.text("scorer", "") or "",
        "rescored": r.mapping("rescored", None),
    }
    if problems or key is None or task is None or run_id is None:
        return None
    return RunRecord(
        run_id=run_id,
        key=key,
        task=task,
        entry=entry,
        status=status,
        reason=reason,
        problems=tuple(str(p) for p in record_problems),
        mismatches=tuple(str(m) for m in mismatches),
        phases=phases,
        timings=timings,
        score=score,
        artifacts=tuple(a for a in artifacts if isinstance(a, str)),
        schema=schema,
        **values,
    )


def _from_v1(doc: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """A ``sarbench.run/1`` record in the current shape. In /1 the key's facts were
    written again outside it (variant, seed, dataset, backend, conditions fingerprint, the
    image digest); where a copy disagrees with the key, that is a problem."""
    v1 = _Fields(doc, "", problems)
    for name in ("variant", "primary_metric", "backend", "task"):
        v1.text(name)
    v1.typed("seed", (int,))
    dataset = v1.sub("dataset") or _Fields({}, "dataset", problems)
    dataset.text("name")
    dataset.text("digest")
    entry = v1.sub("entry") or _Fields({}, "entry", problems)
    entry.text("name")
    v1.mapping("options")
    v1.typed("isolated", (bool,))
    key = dict(v1.mapping("key") or {})
    key.setdefault("entry", entry.doc.get("name"))
    key.setdefault("dataset", dataset.doc.get("name"))
    key.setdefault("backend", doc.get("backend"))
    key.setdefault("options_digest", digest(doc.get("options") or {}))
    key.setdefault("split", dataset.doc.get("split", "test"))
    for where, copy, of in (
        ("variant", doc.get("variant"), "variant"),
        ("seed", doc.get("seed"), "seed"),
        ("dataset.digest", dataset.doc.get("digest"), "dataset_digest"),
    ):
        if of in key and copy != key[of]:
            problems.append(f"field {where!r} is {copy!r} but the key says {key[of]!r}")
    score = doc.get("score")
    if isinstance(score, Mapping):
        primary = score.get("primary_metric", doc.get("primary_metric"))
        if primary != doc.get("primary_metric"):
            problems.append("score.primary_metric differs from primary_metric")
    conditions = doc.get("conditions") if isinstance(doc.get("conditions"), Mapping) else {}
    image = doc.get("image") if isinstance(doc.get("image"), Mapping) else {}
    out = {k: v for k, v in doc.items() if k not in ("variant", "seed", "backend", "image")}
    out.update(
        key=key,
        task={
            "name": doc.get("task"),
            "primary_metric": doc.get("primary_metric"),
            "higher_is_better": doc.get("higher_is_better", True),
        },
        entry={k: v for k, v in entry.doc.items() if k != "name"},
        conditions={k: v for k, v in conditions.items() if k != "fingerprint"},
        image_ref=image.get("ref"),
        problems=doc.get("problems", []),
    )
    return out
