"""The parts of a run record (:mod:`harness.record`): the schema's names and limits,
:class:`RecordError`, the JSON number helpers, and the frozen pieces a
:class:`~harness.record.RunRecord` is made of (its key, the entry, the task, the phases,
the timings, the score).

Everything here is re-exported by :mod:`harness.record`; import it from there.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
        from harness.record_read import _Fields, _score

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
