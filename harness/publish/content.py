"""What a record becomes in MLflow: params, metrics, tags and the per-chip scores CSV.

Pure functions of a record (and, for loss curves, of CSV text); no MLflow, no I/O. The
leaderboard reads the same names back, so they are defined here once.

Params: the resolved options flattened (``a.b`` for nested tables; non-strings as JSON, so
booleans read ``true``/``false``), plus ``entry``, ``variant``, ``seed`` and ``profile``. An
option whose name is one of those four is logged as ``options.<name>``.

Metrics (ok records only): every pooled metric of the score, ``<primary>_ci_low`` and
``<primary>_ci_high``, ``train_s``, ``predict_s``, ``total_s``, ``gpu_seconds`` and
``energy_j`` where not null, peak memory per phase and overall, and every number of a
phase's ``gpu`` sample as ``<phase>_gpu_<name>``. An undefined metric (JSON ``null``) is
logged as NaN; ``"inf"`` as infinity.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from harness.publish.records import key_hash

TAG = "sarbench."
"""Prefix of every tag SARBench sets."""
PUBLISHED = TAG + "published"
"""Set to ``complete`` last: a run without it was cut off while publishing."""
COMPLETE = "complete"
KEY = TAG + "key"
RESERVED_PARAMS = ("entry", "variant", "seed", "profile")
MAX_PARAM = 6000
MAX_TAG = 5000
CHIPS_CSV = "scores/chips.csv"
STEP_COLUMNS = ("epoch", "step", "iteration", "iter")


def number(value: Any) -> float | None:
    """A record's JSON number as a float: ``null`` -> NaN, ``"inf"``/``"-inf"`` -> infinity;
    ``None`` for anything else (not a number at all)."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 40] + " ... (cut; see record.json)"


def flatten(options: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted name, value)`` for every leaf of nested tables, in order."""
    for name, value in options.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, dotted + ".")
        else:
            yield dotted, value


def params_of(record: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params of a record (see the module docstring)."""
    profile = record.get("profile") or {}
    params = {
        "entry": record["entry"]["name"],
        "variant": record["variant"],
        "seed": str(record["seed"]),
        "profile": str(profile.get("name", "")) if isinstance(profile, Mapping) else "",
    }
    for name, value in flatten(record["options"]):
        key = f"options.{name}" if name in RESERVED_PARAMS else name
        params[key] = _clip(_text(value), MAX_PARAM)
    return params


def metrics_of(record: Mapping[str, Any]) -> dict[str, float]:
    """MLflow metrics of an ok record; a failed record has none."""
    if record["status"] != "ok":
        return {}
    score = record["score"]
    out: dict[str, float] = {}
    for name, value in score["metrics"].items():
        v = number(value)
        if v is not None:
            out[name] = v
    primary, interval = record["primary_metric"], score["interval"]
    for end in ("low", "high"):
        v = number(interval.get(end))
        if v is not None:
            out[f"{primary}_ci_{end}"] = v
    for name, value in (record.get("timings") or {}).items():
        if value is not None and (v := number(value)) is not None:
            out[name] = v
    peaks: list[float] = []
    for phase, info in (record.get("phases") or {}).items():
        if not isinstance(info, Mapping):
            continue
        peak = info.get("peak_memory_bytes")
        if isinstance(peak, int | float) and not isinstance(peak, bool):
            out[f"{phase}_peak_memory_bytes"] = float(peak)
            peaks.append(float(peak))
        gpu = info.get("gpu")
        if isinstance(gpu, Mapping):
            for name, value in flatten(gpu):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out[f"{phase}_gpu_{name.replace('.', '_')}"] = float(value)
    if peaks:
        out["peak_memory_bytes"] = max(peaks)
    return out


def tags_of(record: Mapping[str, Any]) -> dict[str, str]:
    """MLflow tags of a record, all under ``sarbench.``, plus the run name and a note."""
    entry, dataset = record["entry"], record["dataset"]
    image = record.get("image") or {}
    conditions = record.get("conditions") or {}
    machine = conditions.get("machine") or {}
    profile = record.get("profile") or {}
    score = record.get("score") or {}
    gpus = [g.get("name", "") for g in machine.get("gpus") or [] if isinstance(g, Mapping)]
    values: dict[str, Any] = {
        "schema": record["schema"],
        "run_id": record["run_id"],
        "key": key_hash(record),
        "entry": entry["name"],
        "team": entry.get("team", ""),
        "baseline": bool(entry.get("baseline", False)),
        "variant": record["variant"],
        "seed": record["seed"],
        "task": record["task"],
        "primary_metric": record["primary_metric"],
        "higher_is_better": bool(record.get("higher_is_better", True)),
        "dataset": dataset["name"],
        "dataset_digest": dataset["digest"],
        "split": dataset.get("split", "test"),
        "status": record["status"],
        "reason": record.get("reason") or "",
        "detail": record.get("detail") or "",
        "image_ref": image.get("ref", ""),
        "image_digest": image.get("digest", record["key"]["image_digest"]),
        "conditions": conditions.get("fingerprint", record["key"]["conditions"]),
        "profile": profile.get("name", "") if isinstance(profile, Mapping) else "",
        "backend": record["backend"],
        "isolated": bool(record["isolated"]),
        "mismatches": conditions.get("mismatches") or [],
        "mismatch_allowed": bool(conditions.get("mismatch_allowed", False)),
        "cpu_model": machine.get("cpu_model", ""),
        "gpus": ", ".join(gpus),
        "n_chips": score.get("n_chips", len(score.get("chips") or [])),
        "ci_level": (score.get("interval") or {}).get("level", ""),
        "started_at": record.get("started_at") or "",
        "finished_at": record.get("finished_at") or "",
        "harness_version": record.get("harness_version") or "",
    }
    tags = {TAG + name: _clip(_text(value), MAX_TAG) for name, value in values.items()}
    tags["mlflow.runName"] = record["run_id"]
    tags["mlflow.note.content"] = _clip(str(entry.get("description", "")), MAX_TAG)
    return tags


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    v = number(value)
    return str(value) if v is None else repr(v)


def chips_csv(record: Mapping[str, Any]) -> str:
    """The per-chip table of an ok record as CSV: ``id``, every metric, every statistic.

    Undefined values are written ``nan``, infinities ``inf``/``-inf``, so the file reads
    back into numbers exactly (``float()`` of each cell).
    """
    chips = record["score"]["chips"]
    metric_names = list(chips[0]["metrics"])
    stat_names = list(chips[0]["stats"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", *metric_names, *stat_names])
    for chip in chips:
        writer.writerow(
            [
                chip["id"],
                *(_cell(chip["metrics"].get(n)) for n in metric_names),
                *(_cell(chip["stats"].get(n)) for n in stat_names),
            ]
        )
    return buf.getvalue()


def loss_points(stem: str, text: str) -> list[tuple[str, int, float]]:
    """``(metric name, step, value)`` for every numeric cell of a loss-curve CSV.

    The step is the ``epoch``/``step``/``iteration`` column where there is one, else the
    row number; each other column becomes the metric ``<stem>/<column>``. Empty or
    non-numeric cells are left out.
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    step_col = next((header.index(c) for c in STEP_COLUMNS if c in header), None)
    points: list[tuple[str, int, float]] = []
    for i, row in enumerate(rows[1:]):
        step = i
        if step_col is not None and step_col < len(row):
            try:
                step = int(float(row[step_col]))
            except ValueError:
                step = i
        for j, cell in enumerate(row):
            if j == step_col or j >= len(header) or not header[j]:
                continue
            try:
                value = float(cell)
            except ValueError:
                continue
            points.append((f"{stem}/{header[j]}", step, value))
    return points
