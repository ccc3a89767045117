"""Run records: one ``record.json`` per run folder, written once and never overwritten.

A run folder is ``<home>/runs/<run_id>/``; ``run_id`` is derived from the run's key
(entry, variant, seed, dataset digest, image digest, conditions fingerprint, backend and
the resolved options), so running the same thing again finds the finished record instead
of making a second one, and a changed image or profile gets a folder of its own.

Records are written atomically (a temporary file, fsync, rename), so a killed harness never
leaves half a record: a folder without ``record.json`` is an unfinished run that the next
``sarbench run`` starts again. A per-run lock file (``fcntl.flock``) keeps two harness
processes from running the same run at once. The format is ``docs/records.md``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SarbenchError

SCHEMA = "sarbench.run/1"
RECORD = "record.json"
_SAFE = re.compile(r"[^a-z0-9-]+")


class RecordError(SarbenchError):
    """A record file that cannot be read; names the file."""


class RunBusyError(SarbenchError):
    """Another harness process is running this run right now."""


@dataclass(frozen=True)
class RunKey:
    """What identifies a run: running it again under the same key changes nothing."""

    entry: str
    variant: str
    seed: int
    dataset: str
    dataset_digest: str
    image_digest: str | None
    conditions: str
    backend: str
    options: dict[str, Any]
    checkpoint: str = "none"
    """Digest of the pretrained weights mounted at ``/weights`` (:func:`weights_digest`),
    or ``"none"``; in the key only when there are some, so runs without weights keep the
    run IDs they always had."""

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.checkpoint == "none" else {"checkpoint": self.checkpoint}
        return {
            "entry": self.entry,
            "variant": self.variant,
            "seed": self.seed,
            "dataset": self.dataset,
            "dataset_digest": self.dataset_digest,
            "image_digest": self.image_digest,
            "conditions": self.conditions,
            "backend": self.backend,
            "options_digest": _digest(self.options),
            **extra,
        }

    @property
    def run_id(self) -> str:
        """``<entry>.<variant>.s<seed>.<dataset>.<12 hex of the key's digest>``."""
        short = _digest(self.to_dict()).removeprefix("sha256:")[:12]
        parts = [self.entry, self.variant, f"s{self.seed}", self.dataset]
        return ".".join(_SAFE.sub("-", p.lower()) for p in parts) + "." + short


def comparability(
    profile: str, conditions: str, dataset_digest: str, checkpoint: str
) -> dict[str, str]:
    """What must be equal for two runs' scores to be compared or pooled: the conditions
    (profile name and fingerprint), the dataset's digest, and the pretrained checkpoint's
    digest (``"none"``). The leaderboard never puts runs whose keys differ on one board;
    ``id`` is the digest of the other four."""
    doc = {
        "profile": profile,
        "conditions": conditions,
        "dataset_digest": dataset_digest,
        "checkpoint": checkpoint,
    }
    return {**doc, "id": _digest(doc)}


def comparability_of(record: Mapping[str, Any]) -> dict[str, str]:
    """A record's comparability key: as written, or (records from before it was written)
    derived from its profile, key and weights listing."""
    given = record.get("comparability")
    if isinstance(given, Mapping) and isinstance(given.get("id"), str):
        return {k: str(v) for k, v in given.items()}
    profile = record.get("profile")
    key = record.get("key")
    dataset = record.get("dataset")
    weights = record.get("weights")
    if isinstance(weights, Mapping):
        checkpoint = str(weights.get("digest") or "unknown: weights mounted, not hashed")
    else:
        checkpoint = "none"
    return comparability(
        str(profile.get("name", "")) if isinstance(profile, Mapping) else "",
        str(key.get("conditions", "")) if isinstance(key, Mapping) else "",
        str(dataset.get("digest", "")) if isinstance(dataset, Mapping) else "",
        checkpoint,
    )


def _digest(doc: Any) -> str:
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write ``doc`` as JSON so that ``path`` is either absent or complete, never partial."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=False, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The finished record of a run folder, or None while the run is unfinished."""
    path = run_dir / RECORD
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: cannot read the run record: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise RecordError(f"{path}: not a {SCHEMA} run record")
    return doc


def save_record(run_dir: Path, record: dict[str, Any]) -> None:
    """Write the record of a run; refuses to replace one that exists."""
    path = run_dir / RECORD
    if path.exists():
        raise RecordError(f"{path}: a record exists already; records are never overwritten")
    write_json_atomic(path, record)


def load_records(runs_dir: Path) -> Iterator[dict[str, Any]]:
    """Every finished record under ``runs_dir``, in folder-name order."""
    if not runs_dir.is_dir():
        return
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        record = read_record(run_dir)
        if record is not None:
            yield record


def lock_path(runs_dir: Path, run_id: str) -> Path:
    """The lock file of one run (see :func:`run_lock`)."""
    return runs_dir / ".locks" / f"{run_id}.lock"


@contextmanager
def run_lock(runs_dir: Path, run_id: str, *, wait: bool = True) -> Iterator[None]:
    """Hold the lock of one run: wait for another process holding it (``wait``), or raise
    :class:`RunBusyError` at once.

    The lock is an ``flock`` on ``<runs>/.locks/<run_id>.lock``: the kernel releases it when
    its holder dies, however it dies, so a killed harness never leaves a stale lock.
    """
    path = lock_path(runs_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(f"run {run_id} is being run by another sarbench process") from None
        yield
    finally:
        os.close(fd)
