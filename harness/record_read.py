"""Reading a run record (:mod:`harness.record`): the checks of every field of a
``record.json`` (:class:`_Fields`, which lists each problem with its dotted field name),
the parse into a :class:`~harness.record.RunRecord`, the upgrade of a ``sarbench.run/1``
record to the current shape, and a rescore file applied to a record.

:meth:`harness.record.RunRecord.from_json`, :meth:`harness.record.RunFolder.read` and
:meth:`harness.record_parts.RecordScore.from_result` are the ways in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.record_parts import (
    STATUSES,
    ChipScore,
    EntryInfo,
    PhaseRecord,
    RecordError,
    RecordKey,
    RecordScore,
    TaskInfo,
    Timings,
    _as_float,
    digest,
    number,
)

if TYPE_CHECKING:
    from harness.record import RunRecord


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
    from harness.record import RunRecord
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
