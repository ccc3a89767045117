"""What a record becomes in MLflow: params, metrics, tags and the per-chip scores CSV.

Pure functions of a record (and, for loss curves, of CSV text); no MLflow, no I/O. The
leaderboard reads the same names back, so they are defined here once.

Params: the resolved options flattened (``a.b`` for nested tables; non-strings as JSON, so
booleans read ``true``/``false``), plus ``entry``, ``variant``, ``seed`` and ``profile``. An
option whose name is one of those four, or starts with ``sarbench.`` (the record's other
facts, :func:`harness.publish.layout.fields_of`), is logged as ``options.<name>``.

Metrics (ok records only): every pooled metric of the score and ``<primary>_ci_low`` and
``<primary>_ci_high``, under their own names (the scores); under :data:`RESOURCE_PREFIX`
the resource figures: ``train_s``, ``predict_s``, ``total_s``, ``gpu_seconds`` and
``energy_j`` where not null, peak memory per phase and overall, and every number of a
phase's ``gpu`` sample as ``<phase>_gpu_<name>``. An undefined metric (JSON ``null``) is
logged as NaN; ``"inf"`` as infinity.

Everything here is treated as untrusted: option keys come from entry files written by
competitors, loss curves from what a container wrote. A name that MLflow would refuse, two
names that would collide, or a number that is not one (or not finite where it must be) is a
*problem*: the functions collect every problem of a record, and publishing refuses the
record naming them all, before anything reaches MLflow. Loss curves are bounded instead of
refused where the data is merely large (see :func:`loss_curves`); what was cut is a *note*
that is published with the run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.record import RunRecord, number

TAG = "sarbench."
"""Prefix of every tag SARBench sets."""
PUBLISHED = TAG + "published"
"""Set to ``complete`` last: a run without it was cut off while publishing."""
COMPLETE = "complete"
KEY = TAG + "key"
RESERVED_PARAMS = ("entry", "variant", "seed", "profile")
RESOURCE_PREFIX = "system/"
"""Resource figures are metrics under this prefix: the one MLflow's UI shows apart from
the model's metrics, as "System metrics" (the scores stay at the top level)."""
MAX_PARAM = 6000
MAX_TAG = 5000
MAX_NAME = 250
"""MLflow's longest param, metric or tag name."""
MAX_PARAMS = 1000
"""More options than this is a problem (a sane entry has a few dozen)."""
MAX_METRICS = 1000
"""More metrics in one record than this is a problem (loss curves not counted)."""
MAX_MEMORY_BYTES = 2**63 - 1
CHIPS_CSV = "scores/chips.csv"
STEP_COLUMNS = ("epoch", "step", "iteration", "iter")

MAX_STEP = 10**9
"""A loss-curve step is an integer in ``[-MAX_STEP, MAX_STEP]``; anything else is refused."""
MAX_LOSS_FILES = 8
"""At most this many ``artifacts/loss*.csv`` files are read (sorted by name)."""
MAX_LOSS_BYTES = 8 * 2**20
"""At most this many bytes of one loss-curve file are read (cut at a line end)."""
MAX_CURVES = 16
"""At most this many curves (value columns, over all files) become metrics."""
MAX_POINTS = 2000
"""A longer curve is thinned to this many points, evenly spaced, first and last kept."""
MAX_PROBLEMS_PER_FILE = 5
"""A loss-curve file with more bad rows than this names the first few and counts the rest."""

_NAME = re.compile(r"^[/\w.\- :]*$")
"""MLflow's characters for param, metric and tag names (POSIX): letters, digits, ``_``,
``-``, ``.``, ``/``, ``:`` and space."""
_UNSAFE = re.compile(r"[^\w.\- ]")


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be an MLflow param or metric name, or ``None`` when it can.

    The rule is MLflow's own: letters, digits, ``_ - . / :`` and spaces, at most 250
    characters, and a name that stays itself as a path (no ``a//b``, ``./a``, ``a/..``, no
    leading ``/``)."""
    if not isinstance(name, str) or not name:
        return "is empty" if name == "" else "is not text"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long (MLflow takes at most {MAX_NAME})"
    if not _NAME.match(name):
        bad = sorted({c for c in name if not _NAME.match(c)})
        shown = " ".join(repr(c) for c in bad[:8])
        return f"holds {shown} (MLflow names may only hold letters, digits, _ - . / : and spaces)"
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(("..", "/")):
        return f"is not a plain path (it would read as {norm!r})"
    return None


def safe_name(text: str, limit: int = 100) -> str:
    """``text`` with every character MLflow refuses in a name part replaced by ``_``
    (no ``/``: the result is one part), never empty, ``.`` or ``..``."""
    s = _UNSAFE.sub("_", text.strip())[:limit].strip()
    return s if s.strip(".") else "_"


def as_text(value: Any) -> str:
    """A param's or tag's text: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 40] + " ... (cut; see record.json)"


def _short(value: Any, limit: int = 60) -> str:
    """``repr`` of a value for a problem message, shortened (a name can be long)."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 5] + "...'"


class ContentError(ValueError):
    """Problems found in a record's content; :attr:`problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def _raise_if(problems: list[str], own: bool) -> None:
    if own and problems:
        raise ContentError(problems)


def flatten(options: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted name, value)`` for every leaf of nested tables, in order."""
    for name, value in options.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, dotted + ".")
        else:
            yield dotted, value


def params_of(record: RunRecord, problems: list[str] | None = None) -> dict[str, str]:
    """MLflow params of a record (see the module docstring).

    An option whose name MLflow would refuse, or that collides with another after
    flattening, is a problem: it is added to ``problems`` (or, without a list, raised as a
    :class:`ContentError`) and left out."""
    own = problems is None
    problems = [] if problems is None else problems
    params = {
        "entry": record.entry.name,
        "variant": record.variant,
        "seed": str(record.seed),
        "profile": record.profile_name,
    }
    leaves = list(flatten(record.options))
    if len(leaves) > MAX_PARAMS:
        problems.append(f"options: {len(leaves)} values; at most {MAX_PARAMS} are published")
        _raise_if(problems, own)
        return params
    for name, value in leaves:
        key = f"options.{name}" if name in RESERVED_PARAMS or name.startswith(TAG) else name
        why = name_problem(key)
        if why is not None:
            problems.append(
                f"option {_short(name)}: not a valid MLflow param name: it {why}; rename it "
                "in the entry file"
            )
            continue
        if key in params:
            problems.append(
                f"option {_short(name)}: the param name {key!r} is taken by another option "
                "(dotted keys, nested tables and the options. prefix of reserved names can flatten alike); rename one in the entry file"
            )
            continue
        params[key] = clip(as_text(value), MAX_PARAM)
    _raise_if(problems, own)
    return params


def _finite_number(value: Any, where: str, problems: list[str], low: float = 0.0) -> float | None:
    """A measured number (a timing, a memory peak, a GPU sample): finite and ``>= low``.
    ``None`` stays ``None`` (not measured)."""
    if value is None:
        return None
    v = number(value)
    if v is None or not math.isfinite(v) or v < low:
        problems.append(f"{where}: {_short(value)} is not a finite number >= {low:g}")
        return None
    return v


def metrics_of(record: RunRecord, problems: list[str] | None = None) -> dict[str, float]:
    """MLflow metrics of an ok record; a failed record has none.

    A score metric or interval end may be any number, NaN (undefined) or infinite;
    timings, memory peaks and GPU samples must be finite and not negative. A value that
    breaks these rules, or a name MLflow would refuse, is a problem (added to ``problems``,
    or raised as a :class:`ContentError` without a list)."""
    own = problems is None
    problems = [] if problems is None else problems
    score = record.score
    if score is None:
        return {}
    out: dict[str, float] = {}

    def put(name: str, value: float, where: str) -> None:
        why = name_problem(name)
        if why is not None:
            problems.append(
                f"metric {_short(name)} (from {where}): not a valid MLflow name: it {why}"
            )
        elif name in out:
            problems.append(f"{where}: the metric name {name!r} is given twice")
        else:
            out[name] = value

    if len(score.metrics) > MAX_METRICS:
        problems.append(f"score.metrics: {len(score.metrics)} metrics; at most {MAX_METRICS}")
        _raise_if(problems, own)
        return {}
    for name, value in score.metrics.items():
        put(name, value, "score.metrics")
    primary = record.primary_metric
    for end, value in (("low", score.low), ("high", score.high)):
        put(f"{primary}_ci_{end}", value, f"score.interval.{end}")
    res = RESOURCE_PREFIX
    for name, value in record.timings.items():
        v = _finite_number(value, f"timings.{name}", problems)
        if v is not None:
            put(res + name, v, f"timings.{name}")
    peaks: list[float] = []
    for phase, info in record.phases.items():
        peak = _finite_number(info.peak_memory_bytes, f"phases.{phase}.peak_memory_bytes", problems)
        if peak is not None:
            if peak > MAX_MEMORY_BYTES:
                problems.append(f"phases.{phase}.peak_memory_bytes: {peak:g} is out of range")
            else:
                put(f"{res}{phase}_peak_memory_bytes", peak, f"phases.{phase}.peak_memory_bytes")
                peaks.append(peak)
        gpu = info.gpu
        if gpu is not None:
            for name, value in flatten(gpu):
                if isinstance(value, str) or value is None:
                    continue  # the GPU's UUID, or a value not sampled
                where = f"phases.{phase}.gpu.{name}"
                v = _finite_number(value, where, problems, low=-math.inf)
                if v is not None:
                    put(f"{res}{phase}_gpu_{name.replace('.', '_')}", v, where)
    if peaks:
        put(res + "peak_memory_bytes", max(peaks), "phases")
    _raise_if(problems, own)
    return out


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    v = number(value)
    return str(value) if v is None else repr(v)


def chips_csv(record: RunRecord) -> str:
    """The per-chip table of an ok record as CSV: ``id``, ``group`` (each chip's
    independence group, where the dataset names them), every metric, every statistic.

    Undefined values are written ``nan``, infinities ``inf``/``-inf``, so the file reads
    back into numbers exactly (``float()`` of each cell).
    """
    assert record.score is not None, "a failed record has no chips"
    chips = record.score.chips
    metric_names = list(chips[0].metrics)
    stat_names = list(chips[0].stats)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    grouped = record.score.groups is not None
    writer.writerow(["id", *(["group"] if grouped else []), *metric_names, *stat_names])
    for chip in chips:
        writer.writerow(
            [
                chip.id,
                *([chip.group] if grouped else []),
                *(_cell(chip.metrics.get(n)) for n in metric_names),
                *(_cell(chip.stats.get(n)) for n in stat_names),
            ]
        )
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
# Loss curves: CSV files a container wrote
# ---------------------------------------------------------------------------------------


@dataclass
class LossCurves:
    """The curves of a record's loss-curve files: ``points`` as ``(metric name, step,
    value)``, ``notes`` saying what was cut or renamed, ``problems`` that refuse the record."""

    points: list[tuple[str, int, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    curves: int = 0

    def series(self) -> dict[str, list[tuple[int, float]]]:
        """``{metric name: [(step, value), ...]}`` in file order."""
        out: dict[str, list[tuple[int, float]]] = {}
        for name, step, value in self.points:
            out.setdefault(name, []).append((step, value))
        return out


def thin(n: int, limit: int = MAX_POINTS) -> list[int]:
    """Indices of at most ``limit`` of ``n`` items, evenly spread, first and last kept."""
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


def _step_of(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_loss_csv(
    name: str,
    text: str,
    curves: LossCurves,
    *,
    size: int | None = None,
    max_points: int = MAX_POINTS,
) -> None:
    """Add the curves of one loss-curve file (``name`` is its path for messages, its stem
    names the metrics) to ``curves``.

    Rules: the step is the ``epoch``/``step``/``iteration``/``iter`` column where there is
    one, else the row number; every other column is the metric ``<stem>/<column>``, its
    name made safe for MLflow (a renamed column is noted). A step that is not finite or
    lies outside ``[-MAX_STEP, MAX_STEP]`` is a problem (the record is refused); finite
    steps that are not all integers make the row number the step (noted); a row whose step
    cell is empty or not a number is skipped (counted in a note). Empty or non-numeric
    value cells are left out; NaN and infinite values are kept (a diverging loss is
    information). At most ``MAX_CURVES`` curves per record and ``max_points`` points per
    curve (thinned evenly, noted). ``size`` is the file's full size when ``text`` is only
    its start (noted).
    """
    stem = safe_name(posixpath.splitext(posixpath.basename(name))[0])
    if size is not None:
        curves.notes.append(f"{name}: only the first {len(text)} of {size} bytes were read")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        curves.notes.append(f"{name}: not read as a CSV file ({exc}); no curves from it")
        return
    if not rows:
        return
    header = [h.strip() for h in rows[0]]
    data = rows[1:]
    step_col = next((header.index(c) for c in STEP_COLUMNS if c in header), None)

    steps: list[int | None] = list(range(len(data)))
    if step_col is not None:
        raw = [_step_of(r[step_col]) if step_col < len(r) else None for r in data]
        bad = [
            (i, data[i][step_col])
            for i, s in enumerate(raw)
            if s is not None and (not math.isfinite(s) or abs(s) > MAX_STEP)
        ]
        if bad:
            shown = ", ".join(
                f"line {i + 2}: {_short(c, 30)}" for i, c in bad[:MAX_PROBLEMS_PER_FILE]
            )
            more = (
                f" and {len(bad) - MAX_PROBLEMS_PER_FILE} more"
                if len(bad) > MAX_PROBLEMS_PER_FILE
                else ""
            )
            curves.problems.append(
                f"{name}: column {header[step_col]!r} holds steps that are not integers "
                f"between {-MAX_STEP} and {MAX_STEP} ({shown}{more})"
            )
            return
        missing = sum(s is None for s in raw)
        if missing:
            curves.notes.append(
                f"{name}: {missing} row(s) without a numeric {header[step_col]!r} left out"
            )
        if all(s is None or s == int(s) for s in raw):
            steps = [None if s is None else int(s) for s in raw]
        else:
            curves.notes.append(
                f"{name}: column {header[step_col]!r} is not whole numbers; the row number "
                "is the step"
            )
            steps = [None if s is None else i for i, s in enumerate(raw)]

    keep = [(i, s) for i, s in enumerate(steps) if s is not None]
    chosen = thin(len(keep), max_points)
    if len(chosen) < len(keep):
        curves.notes.append(
            f"{name}: {len(keep)} rows thinned to {len(chosen)} points per curve (evenly "
            "spaced, first and last kept)"
        )
    rows_kept = [keep[i] for i in chosen]
    taken = {n for n, _, _ in curves.points}
    for j, column in enumerate(header):
        if j == step_col or not column:
            continue
        kind = f"{TIME_PREFIX}/" if TIME_COLUMN.search(column) else ""  # time is not a loss
        metric = f"{kind}{stem}/{safe_name(column)}"
        if name_problem(metric) is not None:
            metric = f"{kind}{stem}/col{j}"
        if metric in taken:
            curves.notes.append(f"{name}: column {_short(column, 40)} repeats {metric!r}; left out")
            continue
        if curves.curves >= MAX_CURVES:
            curves.notes.append(
                f"{name}: column {_short(column, 40)} and later ones left out (at most "
                f"{MAX_CURVES} curves per run)"
            )
            break
        points: list[tuple[str, int, float]] = []
        for i, step in rows_kept:
            row = data[i]
            if j >= len(row):
                continue
            try:
                value = float(row[j])
            except ValueError:
                continue
            points.append((metric, step, value))
        if not points:
            continue
        if metric != f"{kind}{stem}/{column}":
            curves.notes.append(f"{name}: column {_short(column, 40)} published as {metric!r}")
        taken.add(metric)
        curves.curves += 1
        curves.points += points


TIME_COLUMN = re.compile(r"(^|_)(seconds?|secs?|time|elapsed|wall|duration)(_s)?$", re.I)
"""Columns of a curve file that measure time: published as ``time/<file>/<column>``, apart
from the losses, and never drawn as a curve on the site."""
TIME_PREFIX = "time"


def loss_points(stem: str, text: str) -> list[tuple[str, int, float]]:
    """``(metric name, step, value)`` for every numeric cell of a loss-curve CSV (see
    :func:`read_loss_csv` for the rules; problems and notes are dropped here)."""
    curves = LossCurves()
    read_loss_csv(f"{stem}.csv", text, curves)
    return curves.points
