"""The result file a competitor gets back for each submission on each benchmark.

``<home>/queue/results/<submission>.<benchmark>.json`` and a ``.txt`` beside it for
people: the state, the scores with their intervals (pooled over the test split: no
per-chip score, no chip name), each phase's time and memory, the ``train`` log (as the
profile's log cap kept it) and the ``predict`` log cut to the benchmark's
``predict_log_cap`` (its first and last halves: enough to debug a crash, too little to
carry the private test's inputs out), and for a failure the problems in the words of
``sarbench validate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.competition.config import Benchmark
from harness.competition.store import Item, now_iso
from harness.errors import printable
from harness.numbers import duration, interval
from harness.record import RunFolder, RunRecord, json_number, write_json_atomic
from harness.scoring.validate import is_more_problems

SCHEMA = "sarbench.result/1"
CUT = "\n[... {n:,} bytes left out: the predict log is capped at {cap:,} bytes ...]\n"


def results_dir(home: Path) -> Path:
    return home / "queue" / "results"


def result_path(home: Path, item: Item) -> Path:
    """Where an item's result file goes (the ``.json``; the ``.txt`` is beside it)."""
    return results_dir(home) / f"{item.submission}.{item.benchmark}.json"


def capped(text: str, cap: int) -> tuple[str, bool]:
    """``text`` cut to about ``cap`` bytes, its first and last halves kept; and whether
    anything was cut."""
    data = text.encode("utf-8")
    if len(data) <= cap:
        return text, False
    half = cap // 2
    head = data[:half].decode("utf-8", errors="ignore")
    tail = data[len(data) - half :].decode("utf-8", errors="ignore")
    return head + CUT.format(n=len(data) - 2 * half, cap=cap) + tail, True


def problems_of(record: RunRecord) -> list[str]:
    """A failed record's problems in ``sarbench validate``'s words."""
    if record.ok:
        return []
    if record.reason == "invalid-output":
        return [p if is_more_problems(p) else f"invalid output: {p}" for p in record.problems]
    return [f"{record.reason}: {record.detail}"]


def _score(record: RunRecord) -> dict[str, Any] | None:
    """The pooled scores: every metric, and the primary one's interval; no chip."""
    if record.score is None:
        return None
    score = record.score
    return {
        "primary_metric": record.primary_metric,
        "value": json_number(record.primary),
        "low": json_number(score.low),
        "high": json_number(score.high),
        "level": score.level,
        "n_chips": score.n_chips,
        "metrics": {k: json_number(v) for k, v in score.metrics.items()},
        "directions": dict(score.directions),
    }


def _log(path: Path, cap: int | None) -> dict[str, Any]:
    """A phase log for the result file: its text (cut to ``cap`` where given)."""
    if not path.is_file():
        return {"text": "", "bytes": 0, "cut": False}
    data = path.read_bytes()
    text, cut = data.decode("utf-8", errors="replace"), False
    if cap is not None:
        text, cut = capped(text, cap)
    return {"text": printable(text, keep_newlines=True), "bytes": len(data), "cut": cut}


def run_result(folder: RunFolder, record: RunRecord, predict_cap: int) -> dict[str, Any]:
    """One run's part of the result file."""
    phases = {
        name: {
            "status": p.status,
            "reason": p.reason,
            "exit_code": p.exit_code,
            "wall_s": round(p.wall_s, 3),
            "peak_memory_bytes": p.peak_memory_bytes,
        }
        for name, p in record.phases.items()
    }
    problems = problems_of(record)
    if "predict" in record.phases and not record.phases["predict"].ok:
        problems = [capped(p, predict_cap)[0] for p in problems]
    return {
        "run_id": record.run_id,
        "variant": record.variant,
        "seed": record.seed,
        "status": record.status,
        "reason": record.reason,
        "problems": [printable(p, keep_newlines=True) for p in problems],
        "score": _score(record),
        "phases": phases,
        "timings": {k: v for k, v in record.timings.items() if v is not None},
        "logs": {
            "train": _log(folder.log("train"), None),
            "predict": _log(folder.log("predict"), predict_cap),
        },
    }


def result_doc(
    item: Item,
    benchmark: Benchmark,
    state: str,
    runs: Sequence[tuple[RunFolder, RunRecord]] = (),
    *,
    reason: str = "",
) -> dict[str, Any]:
    """The whole result file of ``item`` in ``state`` (``published``, ``failed``, or
    ``error``: the harness's fault, which will be tried again and is not charged); its
    test is that of the runs (None without any)."""
    cap = benchmark.limits.predict_log_cap
    return {
        "schema": SCHEMA,
        "submission": item.submission,
        "bundle_digest": item.bundle_digest,
        "entry": item.entry,
        "team": item.team,
        "benchmark": benchmark.name,
        "dataset": benchmark.dataset,
        "test": runs[0][1].test_kind if runs else None,
        "profile": benchmark.limits.profile,
        "state": state,
        "charged": state in ("published", "failed"),
        "reason": reason,
        "attempts": item.attempts,
        "predict_log_cap_bytes": cap,
        "runs": [run_result(f, r, cap) for f, r in runs],
        "written_at": now_iso(),
    }


def render(doc: dict[str, Any]) -> str:
    """The result file for people (the ``.txt``)."""
    lines = [
        f"submission {doc['submission']} ({doc['entry']}, team {doc['team']!r})",
        f"benchmark {doc['benchmark']}: dataset {doc['dataset']}, {doc['test'] or '?'} test, "
        f"profile {doc['profile']}",
        f"state: {doc['state'].upper()}"
        + ("" if doc["charged"] else " (not charged to your quota: the harness's failure)"),
    ]
    if doc["reason"]:
        lines.append(f"reason: {doc['reason']}")
    for run in doc["runs"]:
        lines.append(f"\n{run['variant']} seed {run['seed']}: {run['status']}")
        score = run["score"]
        if score is not None:
            lines.append(
                f"  {score['primary_metric']} = "
                f"{interval(score['value'], score['low'], score['high'])} over "
                f"{score['n_chips']} chips"
            )
        for name, phase in run["phases"].items():
            lines.append(f"  {name}: {phase['status']} in {duration(phase['wall_s'])}")
        for i, problem in enumerate(run["problems"], 1):
            lines.append(f"  {i}. {problem}")
        for phase, log in run["logs"].items():
            cut = " (cut)" if log["cut"] else ""
            lines.append(f"\n--- {phase} log, {log['bytes']:,} bytes{cut} ---\n{log['text']}")
    return "\n".join(lines) + "\n"


def write_result(home: Path, item: Item, doc: dict[str, Any]) -> Path:
    """Write the result file (JSON, and the text beside it), atomically; its path."""
    path = result_path(home, item)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, doc)
    text = path.with_suffix(".txt")
    partial = text.with_name(f".{text.name}.partial")
    partial.write_text(render(doc), encoding="utf-8")
    partial.replace(text)
    return path
