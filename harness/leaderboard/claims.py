"""The source studies' claims, tested against the published runs: pure, no MLflow, no files.

Each claim of the two studies the baselines reproduce is declared once, as data
(:data:`CLAIMS`): the study's file and section, a short verbatim quote, the task, what is
compared here, and the kind of test, one function per kind (:data:`TESTS`). A test runs on
every board of the claim's task (one test, profile and dataset digest each) and gives a
:class:`Finding` per board: a verdict, ``supported``, ``not supported`` or ``not testable
here``, computed from the board's rows and comparisons, never typed by hand. Every
difference, interval and p-value is a :class:`~harness.leaderboard.board.Versus` the board
pages show too (the ablation matrix, the pairwise table), except the flood comparison,
which is one planned comparison (a family of one).

The studies (``000_b0dfc156a78e2624.txt``: flood, Prithvi against UNet;
``002_3241a3edc18d6d23.txt``: SAR to NDVI with pix2pix) are quoted, not read: the site is
built from MLflow alone. Quotes leave out the text files' emphasis marks (``**``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from harness.leaderboard.board import (
    AblationMatrix,
    AblationRow,
    Board,
    Row,
    Versus,
    compare_rows,
    family,
    short_digest,
)
from harness.leaderboard.pages import board_dir
from harness.leaderboard.tables import Cell, Column, Table, versus_record
from harness.numbers import fmt, signed
from harness.scoring.metrics import FloodStats, get_metric
from harness.scoring.stats import ChipMismatchError

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
NOT_TESTABLE = "not testable here"
DEMO_NOTE = "demo test: labels rebuildable from the public seed; not an official result"

FLOOD_STUDY = "000_b0dfc156a78e2624.txt"
NDVI_STUDY = "002_3241a3edc18d6d23.txt"
TABLE3 = "Table 3"
TABLE3_METRIC = "mse"
ABLATION_ENTRY = "pix2pix"


@dataclass(frozen=True)
class Quote:
    """A short verbatim passage of a study (its file and section)."""

    study: str
    section: str
    text: str


@dataclass(frozen=True)
class Claim:
    """One claim of a study and how it is tested here: ``test`` names a function of
    :data:`TESTS`, ``params`` what it needs. ``reading`` says where we interpret the study
    (and why); ``note`` is something of the study worth knowing, computed from nothing."""

    id: str
    title: str
    study: str
    task: str
    quotes: tuple[Quote, ...]
    compares: str
    test: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reading: str = ""
    note: str = ""

    @property
    def sections(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(q.section for q in self.quotes))


@dataclass(frozen=True)
class StudyRow:
    """A row of the NDVI study's Table 3: its name, the component it leaves out (the column
    whose check mark is missing; None: every component in use) and its MSE as printed."""

    name: str
    left_out: str | None
    mse: str

    @property
    def value(self) -> float:
        return float(self.mse)


TABLE3_COLUMNS = ("Pre-training", "Fine-tuning", "SAR indexes", "Training aug", "Test-time aug")
"""Table 3's component columns, as the study heads them."""
TABLE3_ROWS = (
    StudyRow("Ours", None, ".008661"),
    StudyRow("Ablation 1", "Pre-training", ".020866"),
    StudyRow("Ablation 2", "Fine-tuning", ".009835"),
    StudyRow("Ablation 3", "SAR indexes", ".010978"),
    StudyRow("Ablation 4", "Training aug", ".018021"),
    StudyRow("Ablation 5", "Test-time aug", ".009048"),
)
COMPONENT_OF = {
    "Pre-training": "pretrain",
    "Fine-tuning": "finetune",
    "SAR indexes": "sar_indexes",
    "Training aug": "train_aug",
    "Test-time aug": "tta",
}
"""Our reading: Table 3's columns as the pix2pix entry's ablation components (the options
its ``[ablation]`` table declares); a variant is matched by its components' flags."""


def study_row(column: str | None) -> StudyRow:
    return next(r for r in TABLE3_ROWS if r.left_out == column)


# --------------------------------------------------------------------------------------
# What a test finds
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compared:
    """One comparison behind a finding, as the board (or the claim's own family) made it:
    A against B, ``expected`` the side the study says is better (``a`` or ``b``),
    ``family`` the Holm family the p-value was corrected in."""

    a: str
    b: str
    versus: Versus | None
    expected: str
    family: str
    note: str = ""

    @property
    def outcome(self) -> str:
        """``as the study says``, ``reversed``, ``not significant`` or ``undefined``."""
        v = self.versus
        verdict = "n/a" if v is None else v.verdict()
        if verdict == "n/a":
            return "undefined"
        if verdict == "tied":
            return "not significant"
        winner = "a" if verdict == "better" else "b"
        return "as the study says" if winner == self.expected else "reversed"

    @property
    def figures(self) -> str:
        """The difference, its interval at the level matching the corrected p, and p."""
        v = self.versus
        if v is None:
            return f"not comparable{': ' + self.note if self.note else ''}"
        c = v.comparison
        low, high = v.interval
        holm = "" if self.family.startswith("a family of one") else f", Holm {fmt(v.p_adjusted)}"
        return (
            f"A − B = {signed(c.difference)} [{fmt(low)}, {fmt(high)}] "
            f"({1 - v.alpha:.4g} interval), p = {fmt(c.p_value)}{holm}; "
            f"{c.n_units} {c.unit}s"
        )

    def record(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "study_says_better": self.a if self.expected == "a" else self.b,
            "outcome": self.outcome,
            "family": self.family,
            **versus_record("a_vs_b", self.versus),
        }


@dataclass(frozen=True)
class Finding:
    """A claim tested on one board (``board`` None: the claim's task has no board, or the
    test needs none): its verdict, why, the comparisons it rests on, comparisons shown for
    information only (not the claim), and published values shown beside it."""

    claim: Claim
    board: Board | None
    verdict: str
    why: str
    scope: str = ""
    comparisons: tuple[Compared, ...] = ()
    information: tuple[Compared, ...] = ()
    information_note: str = ""
    published: tuple[tuple[str, str], ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def board_href(self) -> str | None:
        return None if self.board is None else f"{board_dir(self.board)}/index.html"

    @property
    def board_label(self) -> str:
        if self.board is None:
            return "no board"
        b = self.board
        return f"{b.task} / {b.dataset} · {b.comparability.label()}"

    @property
    def demo(self) -> bool:
        return self.board is not None and self.board.comparability.demo


def row_label(row: Row) -> str:
    weights = "none" if row.checkpoint == "none" else short_digest(row.checkpoint)
    return f"{row.name} / {row.variant} (image {short_digest(row.image_digest)}, weights {weights})"


def _row_key(row: Row) -> tuple[str, str, str, str, bool | None]:
    return (row.entry, row.variant, row.image_digest, row.checkpoint, row.pretrained)


def verdict_of(compared: Sequence[Compared]) -> str:
    """Supported when every comparison goes the study's way, significantly; not supported
    when one does not (not significant, or reversed); not testable when one is undefined
    and none already fails."""
    outcomes = [c.outcome for c in compared]
    if not outcomes:
        return NOT_TESTABLE
    if any(o in ("not significant", "reversed") for o in outcomes):
        return NOT_SUPPORTED
    if any(o == "undefined" for o in outcomes):
        return NOT_TESTABLE
    return SUPPORTED


def _why(compared: Sequence[Compared], verdict: str) -> str:
    if verdict == SUPPORTED:
        if len(compared) == 1:
            return "significantly as the study says"
        return f"all {len(compared)} comparisons significantly as the study says"
    failing = [c for c in compared if c.outcome != "as the study says"]
    return "; ".join(f"{c.a} vs {c.b}: {c.outcome}" for c in failing)


# --------------------------------------------------------------------------------------
# The tests: one function per kind
# --------------------------------------------------------------------------------------

Test = Callable[[Claim, Sequence[Board], int], list[Finding]]


def _pairs(
    a_rows: Sequence[Row], b_rows: Sequence[Row], metric: str, n: int, what: str
) -> list[Compared]:
    """Each A row against each B row on ``metric``, Holm over these pairs only (one pair:
    a family of one, no correction)."""
    tried: list[tuple[Row, Row, Any, str]] = []
    for a in a_rows:
        for b in b_rows:
            try:
                tried.append((a, b, compare_rows(a, b, metric, n), ""))
            except ChipMismatchError as exc:
                tried.append((a, b, None, str(exc)))
    versus = family([t[2] for t in tried])
    k = len(tried)
    name = f"a family of one, {what}" if k == 1 else f"Holm over these {k} pairs, {what}"
    return [
        Compared(row_label(a), row_label(b), v, "a", name, note)
        for (a, b, _, note), v in zip(tried, versus, strict=True)
    ]


def beats(claim: Claim, boards: Sequence[Board], n_resamples: int) -> list[Finding]:
    """Entry A trained from pretrained weights is significantly better than entry B trained
    from scratch: every official row of A with a checkpoint against every official row of B
    without one."""
    a_name, b_name, metric = claim.params["a"], claim.params["b"], claim.params["metric"]
    out = []
    for board in boards:
        a_rows = [r for r in board.official if r.entry == a_name]
        b_rows = [r for r in board.official if r.entry == b_name and not r.from_weights]
        tuned = [r for r in a_rows if r.from_weights]
        if not a_rows or not b_rows:
            missing = " or ".join(
                f"{name}{' without pretrained weights' if name == b_name else ''}"
                for name, rows in ((a_name, a_rows), (b_name, b_rows))
                if not rows
            )
            why = f"no published run of {missing} on this board"
            out.append(Finding(claim, board, NOT_TESTABLE, why))
            continue
        if not tuned:
            info = _pairs(a_rows, b_rows, metric, n_resamples, "shown for information")
            why = (
                f"{claim.params['a_title']} ran without its pretrained weights under this "
                f"profile (random init)"
            )
            note = (
                f"Not the claim: {a_name} trained from scratch against {b_name} from scratch, "
                f"shown for information ({_outcomes(info)})."
            )
            out.append(
                Finding(
                    claim, board, NOT_TESTABLE, why, information=tuple(info), information_note=note
                )
            )
            continue
        compared = _pairs(tuned, b_rows, metric, n_resamples, "a planned comparison")
        verdict = verdict_of(compared)
        out.append(
            Finding(claim, board, verdict, _why(compared, verdict), comparisons=tuple(compared))
        )
    return out


def _outcomes(compared: Sequence[Compared]) -> str:
    """Each comparison in plain words (A against B), whatever the study says."""
    words = {
        "better": "A significantly better",
        "worse": "A significantly worse",
        "tied": "no significant difference",
    }
    return "; ".join(
        f"{c.a} vs {c.b}: "
        + ("undefined" if c.versus is None else words.get(c.versus.verdict(), "undefined"))
        for c in compared
    )


def metric_range(task: str, name: str) -> tuple[float, float]:
    """The values a metric can take, computed from the metric itself: a perfect prediction
    and an all-wrong one (for the flood task; IoU: TP / (TP + FP + FN))."""
    if task != "flood":
        raise ValueError(f"no range test for task {task!r}")
    metric = get_metric(task, name)
    one = np.ones(1)
    zero = np.zeros(1)
    perfect = FloodStats(tp=one, fp=zero, fn=zero, tn=one).pooled()
    all_wrong = FloodStats(tp=zero, fp=one, fn=one, tn=zero).pooled()
    ends = sorted((float(metric(all_wrong)), float(metric(perfect))))
    return ends[0], ends[1]


def in_range(claim: Claim, boards: Sequence[Board], n_resamples: int) -> list[Finding]:
    """A reported value must lie where the metric can: outside the metric's range it is
    not supported, whatever the data; inside it, it cannot be checked here (the study's
    data are not ours). Each board shows the published values of the named entries."""
    metric, value = claim.params["metric"], float(claim.params["value"])
    label = claim.params.get("label", metric)
    low, high = metric_range(claim.task, metric)
    span = f"[{fmt(low)}, {fmt(high)}]"
    values = {"reported": value, "range_low": low, "range_high": high}
    if low <= value <= high:
        verdict = NOT_TESTABLE
        why = (
            f"{fmt(value)} lies in {span}: possible as an {label}; the study's own "
            "data are not ours, so the value itself is not checked against our runs"
        )
    else:
        verdict = NOT_SUPPORTED
        why = f"an {label} lies in {span}; {fmt(value)} is outside it"
    if not boards:
        return [Finding(claim, None, verdict, why, values=values)]
    out = []
    for board in boards:
        rows = [r for r in board.official if r.entry in claim.params["entries"]]
        shown = [r.metrics.get(metric, math.nan) for r in rows]
        published = tuple(
            (row_label(r), f"{fmt(v)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]")
            for r, v in zip(rows, shown, strict=True)
        )
        defined = [v for v in shown if not math.isnan(v)]
        if defined:
            published += (
                (
                    f"range of these published {label}s",
                    f"[{fmt(min(defined))}, {fmt(max(defined))}]",
                ),
            )
        vals = {
            **values,
            "published_low": min(defined) if defined else None,
            "published_high": max(defined) if defined else None,
        }
        out.append(Finding(claim, board, verdict, why, published=published, values=vals))
    return out


@dataclass(frozen=True)
class _Ablation:
    """A pix2pix ablation matrix read as Table 3: the row of each study row (by the
    components' flags), or why it cannot be."""

    name: str
    matrix: AblationMatrix
    rows: dict[str | None, list[AblationRow]]
    problem: str = ""


def _read_ablation(name: str, matrix: AblationMatrix) -> _Ablation:
    spec = matrix.spec
    missing = [c for c in COMPONENT_OF.values() if c not in spec.components]
    if missing:
        return _Ablation(name, matrix, {}, f"the ablation declares no component {missing}")
    reference = [a for a in matrix.rows if a.row.variant == spec.reference]
    if not reference or not all(reference[0].components[c] for c in COMPONENT_OF.values()):
        problem = f"its reference variant {spec.reference!r} does not use every component"
        return _Ablation(name, matrix, {}, problem)
    rows: dict[str | None, list[AblationRow]] = {None: reference}
    for a in matrix.rows:
        off = [col for col, c in COMPONENT_OF.items() if not a.components[c]]
        on_elsewhere = all(v for c, v in a.components.items() if c not in COMPONENT_OF.values())
        if len(off) == 1 and on_elsewhere:
            rows.setdefault(off[0], []).append(a)
    return _Ablation(name, matrix, rows)


def _ablations(board: Board) -> list[_Ablation]:
    return [
        _read_ablation(name, m)
        for name, m in sorted(board.ablations.items())
        if m.rows and m.rows[0].row.entry == ABLATION_ENTRY
    ]


def _not_table3(claim: Claim, board: Board, found: Sequence[_Ablation]) -> Finding | None:
    """Why the board cannot test Table 3 at all (None: it can, matrix by matrix)."""
    if board.primary_metric != TABLE3_METRIC:
        why = f"the board compares by {board.primary_metric}, {TABLE3} by {TABLE3_METRIC}"
        return Finding(claim, board, NOT_TESTABLE, why)
    if not found:
        why = f"no ablation matrix of {ABLATION_ENTRY} on this board"
        return Finding(claim, board, NOT_TESTABLE, why)
    return None


def _testable(
    claim: Claim, boards: Sequence[Board], values: dict[str, Any], out: list[Finding]
) -> Iterator[tuple[Board, _Ablation]]:
    """Each (board, ablation matrix) a Table 3 claim can be tested on; for the others a
    "not testable here" finding, saying why, is added to ``out``."""
    for board in boards:
        found = _ablations(board)
        if (cannot := _not_table3(claim, board, found)) is not None:
            out.append(cannot)
            continue
        for ab in found:
            if ab.problem:
                out.append(Finding(claim, board, NOT_TESTABLE, ab.problem, ab.name, values=values))
                continue
            yield board, ab


def component(claim: Claim, boards: Sequence[Board], n_resamples: int) -> list[Finding]:
    """Leaving a component out raises the MSE: on each pix2pix ablation matrix, the variant
    with only that component off is significantly worse than the reference (the matrix's
    own comparison, Holm over the matrix)."""
    column = claim.params["column"]
    with_, without = study_row(None), study_row(column)
    values = {
        "study_with": with_.value,
        "study_without": without.value,
        "study_difference": without.value - with_.value,
    }
    out: list[Finding] = []
    for board, ab in _testable(claim, boards, values, out):
        ref = ab.rows[None][0]
        variants = ab.rows.get(column, [])
        if not variants:
            why = f"no published variant with only {column} off ({COMPONENT_OF[column]} false)"
            out.append(Finding(claim, board, NOT_TESTABLE, why, ab.name, values=values))
            continue
        k = sum(1 for a in ab.matrix.rows if a.versus_reference is not None)
        fam = f"Holm over the ablation matrix's {k} comparisons"
        compared = [
            Compared(row_label(a.row), row_label(ref.row), a.versus_reference, "b", fam)
            for a in variants
        ]
        verdict = verdict_of(compared)
        why = _component_why(compared, verdict, column)
        out.append(
            Finding(
                claim,
                board,
                verdict,
                why,
                ab.name,
                comparisons=tuple(compared),
                published=tuple(
                    (
                        row_label(a.row),
                        f"{fmt(a.row.primary)} [{fmt(a.row.ci_low)}, {fmt(a.row.ci_high)}]",
                    )
                    for a in (ref, *variants)
                ),
                values=values,
            )
        )
    return out


def _component_why(compared: Sequence[Compared], verdict: str, column: str) -> str:
    outcome = {c.outcome for c in compared}
    if verdict == SUPPORTED:
        return f"without {column} the MSE is significantly higher"
    if "reversed" in outcome:
        return f"without {column} the MSE is significantly lower"
    if "not significant" in outcome:
        return f"with and without {column}: no significant difference"
    return "the comparison is undefined"


def order(claim: Claim, boards: Sequence[Board], n_resamples: int) -> list[Finding]:
    """Table 3's order by MSE, each adjacent pair of it significantly in that order on the
    board's pairwise comparisons (Holm over all pairs of the board)."""
    study = sorted(TABLE3_ROWS, key=lambda r: r.value)
    values = {"study_order": [r.name for r in study]}
    out: list[Finding] = []
    for board, ab in _testable(claim, boards, values, out):
        pairs = {(_row_key(a), _row_key(b)): (a, b, v) for a, b, v in board.pairwise}
        n_pairs = len(board.pairwise)
        missing = [r.name for r in study if len(ab.rows.get(r.left_out, [])) != 1]
        if missing:
            why = f"no single published variant for {', '.join(missing)} of {TABLE3}"
            out.append(Finding(claim, board, NOT_TESTABLE, why, ab.name, values=values))
            continue
        rows = {r.name: ab.rows[r.left_out][0].row for r in study}
        fam = f"Holm over all {n_pairs} pairs of the board"
        compared = []
        for better, worse in pairwise(study):
            x, y = rows[better.name], rows[worse.name]
            if (_row_key(x), _row_key(y)) in pairs:
                a, b, v = pairs[(_row_key(x), _row_key(y))]
                expected = "a"
            else:
                a, b, v = pairs.get((_row_key(y), _row_key(x)), (y, x, None))
                expected = "b"
            names = {_row_key(x): better.name, _row_key(y): worse.name}
            compared.append(
                Compared(
                    f"{names[_row_key(a)]}: {row_label(a)}",
                    f"{names[_row_key(b)]}: {row_label(b)}",
                    v,
                    expected,
                    fam,
                )
            )
        verdict = verdict_of(compared)
        by_score = sorted(
            study, key=lambda r: (math.isnan(rows[r.name].primary), rows[r.name].primary)
        )
        published_order = " < ".join(f"{r.name} ({rows[r.name].variant})" for r in by_score)
        out.append(
            Finding(
                claim,
                board,
                verdict,
                _order_why(compared, verdict),
                ab.name,
                comparisons=tuple(compared),
                published=(
                    (
                        "study's order (Table 3 MSE)",
                        " < ".join(f"{r.name} {r.mse}" for r in study),
                    ),
                    ("published order (MSE)", published_order),
                    *(
                        (f"{r.name}: {row_label(rows[r.name])}", fmt(rows[r.name].primary))
                        for r in study
                    ),
                ),
                values={**values, "published_order": [r.name for r in by_score]},
            )
        )
    return out


def _order_why(compared: Sequence[Compared], verdict: str) -> str:
    if verdict == SUPPORTED:
        return f"all {len(compared)} adjacent pairs significantly in the study's order"
    parts = []
    for c in compared:
        if c.outcome == "as the study says":
            continue
        first = c.a if c.expected == "a" else c.b
        second = c.b if c.expected == "a" else c.a
        parts.append(f"{first.split(':')[0]} < {second.split(':')[0]}: {c.outcome}")
    ok = sum(c.outcome == "as the study says" for c in compared)
    return f"{ok} of {len(compared)} adjacent pairs significantly in order; " + "; ".join(parts)


TESTS: dict[str, Test] = {
    "beats": beats,
    "in_range": in_range,
    "component": component,
    "order": order,
}


# --------------------------------------------------------------------------------------
# The claims, as data
# --------------------------------------------------------------------------------------

_FLOOD_53 = "5.3. Intersection over Union (IoU) comparison"
_FLOOD_6 = "6. Conclusion"
_NDVI_34 = "3.4 Data augmentation"
_NDVI_45 = "4.5 Result - Ablation study"
_TABLE3_CAPTION = Quote(
    NDVI_STUDY,
    TABLE3,
    "Ablation study: Comparison by mean-square error on validation dataset for the proposed "
    "method and some ablation methods. The check-mark indicates the use of the component.",
)
_OUTPERFORMS_ALL = Quote(
    NDVI_STUDY,
    _NDVI_45,
    "Our findings demonstrate that the proposed method outperforms all the ablation models, "
    "each of which excludes a specific component.",
)
_TABLE3_READING = (
    "Table 3's check marks leave out one component per ablation (Ablation 1 pre-training, "
    "2 fine-tuning, 3 SAR indexes, 4 training aug, 5 test-time aug); its columns are the "
    "pix2pix entry's components pretrain, finetune, sar_indexes, train_aug and tta, and a "
    "variant is found by its components' flags, not by its name. Our MSE is on our test "
    "split, not the study's validation data."
)
_COMPONENT_READING = (
    "Our reading: 'outperforms' means a lower MSE, the table's measure. "
    + _TABLE3_READING
    + " 'Significantly' here means the sign-flip permutation test at 0.05 after Holm's "
    "correction over the ablation matrix, as the board's matrix has it."
)

_COMPONENT_QUOTES: dict[str, tuple[Quote, ...]] = {
    "Pre-training": (
        Quote(
            NDVI_STUDY,
            _NDVI_45,
            "Notably, the accuracy of the Ablation 1 method, which excludes pre-training, was "
            "significantly lower; it means pre-training is the critical important in our "
            "approach.",
        ),
    ),
    "Fine-tuning": (
        Quote(
            NDVI_STUDY,
            _NDVI_45,
            "Furthermore, the inclusion of fine-tuning proved to be beneficial, considering "
            "the differences between images acquired from Sentinel-2 and those obtained from "
            "the targeted satellite.",
        ),
    ),
    "SAR indexes": (
        Quote(
            NDVI_STUDY,
            _NDVI_34,
            "These transformations increase the variability of SAR data, improving the "
            "model's performance on diverse data conditions.",
        ),
    ),
    "Training aug": (
        Quote(
            NDVI_STUDY,
            _NDVI_45,
            "Additionally, the results emphasize the significance of training augmentation, "
            "as evidenced by the improved performance compared to Ablation 3.",
        ),
        Quote(NDVI_STUDY, _NDVI_34, "This improves the model's generalization to unseen data."),
    ),
    "Test-time aug": (
        Quote(
            NDVI_STUDY,
            _NDVI_34,
            "This improves the model's accuracy and reliability on SAR data variations.",
        ),
    ),
}

ABLATION_3_NOTE = (
    "An inconsistency of the study, noted, not tested: section 4.5 says training "
    "augmentation's significance is evidenced 'compared to Ablation 3', but in Table 3 "
    "Ablation 3 leaves out the SAR indexes; Ablation 4 is the one that leaves out training "
    "augmentation. This page tests training augmentation on the variant without it (Table "
    "3's Ablation 4)."
)


def _flood_53(text: str) -> Quote:
    """A passage of the flood study's section 5.3."""
    return Quote(FLOOD_STUDY, _FLOOD_53, text)


def _iou_claim(value: str, title: str, compares: str) -> Claim:
    """A reported IoU (5.3 of the flood study) against the range an IoU can take."""
    return Claim(
        id=f"flood-iou-{value}",
        title=title,
        study=FLOOD_STUDY,
        task="flood",
        quotes=(
            _flood_53(
                "The IoU for Prithvi significantly outperformed UNet, achieving a value of "
                "approximately 2.2, compared to the UNet's 0.6.",
            ),
        ),
        compares=compares,
        test="in_range",
        params={
            "metric": "iou",
            "label": "IoU",
            "value": float(value),
            "entries": ("prithvi", "unet"),
        },
    )


def _component_claim(column: str) -> Claim:
    row, ours = study_row(column), study_row(None)
    return Claim(
        id=f"ndvi-component-{COMPONENT_OF[column].replace('_', '-')}",
        title=f"NDVI: {column} lowers the MSE",
        study=NDVI_STUDY,
        task="ndvi",
        quotes=(*_COMPONENT_QUOTES[column], _OUTPERFORMS_ALL, _TABLE3_CAPTION),
        compares=(
            f"{TABLE3}: Ours (every component) MSE {ours.mse}, {row.name} (without "
            f"{column}) MSE {row.mse}. Here: on each ablation matrix of {ABLATION_ENTRY}, the "
            f"variant with only {COMPONENT_OF[column]} off against the reference; supported "
            "when it is significantly worse (higher MSE), that is when the component "
            "significantly lowers the MSE."
        ),
        test="component",
        params={"column": column},
        reading=_COMPONENT_READING,
        note=ABLATION_3_NOTE if column == "Training aug" else "",
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="flood-prithvi-beats-unet",
        title="Flood: fine-tuned Prithvi beats a UNet trained from scratch",
        study=FLOOD_STUDY,
        task="flood",
        quotes=(
            _flood_53(
                "A direct comparison of the IoU scores between the two models highlights the "
                "superiority of the fine-tuned Prithvi model.",
            ),
            Quote(
                FLOOD_STUDY,
                _FLOOD_6,
                "The results demonstrate that the Prithvi model, pre-trained on optical "
                "imagery, significantly outperforms the UNet model on a very small SAR "
                "dataset, achieving a much higher IoU score.",
            ),
        ),
        compares=(
            "On each flood board: every official prithvi row that trained from pretrained "
            "weights (recorded pretrained) against every official unet row without "
            "pretrained weights, by IoU; supported when Prithvi is significantly better."
        ),
        test="beats",
        params={"a": "prithvi", "b": "unet", "a_title": "Prithvi", "metric": "iou"},
        reading=(
            "Our reading: 'fine-tuned Prithvi' is a prithvi row with pretrained weights, of "
            "any of its variants (the study replaces the decoder; none of our adapters is "
            "named in it); 'UNet trained from scratch' (section 4.7) is a unet row without "
            "pretrained weights. The study names no test for 'significantly'; ours is the board's "
            "sign-flip permutation test by independence group at 0.05, one planned comparison "
            "(a family of one; with several rows, Holm over those pairs), so its p can be "
            "smaller than the same pair's in the board's pairwise table, which corrects over "
            "all pairs."
        ),
    ),
    _iou_claim(
        "2.2",
        "Flood: Prithvi's IoU of about 2.2",
        "The reported value against the range of the IoU, computed from the metric "
        "(TP / (TP + FP + FN)) on a perfect and an all-wrong prediction; beside it, the "
        "published IoUs of prithvi and unet on each flood board.",
    ),
    _iou_claim(
        "0.6",
        "Flood: UNet's IoU of 0.6",
        "The reported value against the range of the IoU, computed from the metric; "
        "inside it, the value is possible as an IoU, but it was measured on the study's "
        "data, which are not ours.",
    ),
    *(_component_claim(column) for column in TABLE3_COLUMNS),
    Claim(
        id="ndvi-table3-order",
        title="NDVI: the order of Table 3",
        study=NDVI_STUDY,
        task="ndvi",
        quotes=(_TABLE3_CAPTION, _OUTPERFORMS_ALL),
        compares=(
            f"{TABLE3}'s six methods ordered by their MSE as printed ("
            + " < ".join(f"{r.name} {r.mse}" for r in sorted(TABLE3_ROWS, key=lambda r: r.value))
            + f"). Here: the same six variants of {ABLATION_ENTRY}, found by their components' "
            "flags; for each adjacent pair of the study's order, the board's pairwise "
            "comparison of the two rows; supported when every adjacent pair is significantly "
            "in the study's order."
        ),
        test="order",
        reading=(
            "Our reading: the study states no order beyond 'outperforms all'; the order "
            "tested is that of the MSE values Table 3 prints. "
            + _TABLE3_READING
            + " 'Significantly' here means the sign-flip permutation test at 0.05 after "
            "Holm's correction over all pairs of the board, as its pairwise table has it."
        ),
    ),
)


def evaluate(boards: Sequence[Board], n_resamples: int) -> list[Finding]:
    """Every claim on every board of its task, in :data:`CLAIMS` order."""
    out: list[Finding] = []
    for claim in CLAIMS:
        mine = [b for b in boards if b.task == claim.task]
        if not mine and claim.test != "in_range":
            why = f"no published {claim.task} board"
            out.append(Finding(claim, None, NOT_TESTABLE, why))
            continue
        out.extend(TESTS[claim.test](claim, mine, n_resamples))
    return out


# --------------------------------------------------------------------------------------
# The page's values
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimsPage:
    """What ``claims.html`` shows: each claim with its findings, and the table behind
    ``claims.csv``/``claims.json`` (one record per claim and board)."""

    claims: tuple[tuple[Claim, tuple[Finding, ...]], ...]
    table: Table
    notes: tuple[str, ...]


def _single(f: Finding) -> Versus | None:
    return f.comparisons[0].versus if len(f.comparisons) == 1 else None


def _record(f: Finding) -> dict[str, Any]:
    b = f.board
    c = b.comparability if b else None
    single = versus_record("a_vs_b", _single(f))
    figures = {
        k: single.get(f"a_vs_b_{k}")
        for k in ("difference", "low", "high", "level", "p_value", "p_holm", "units", "unit")
    }
    return {
        "claim": f.claim.id,
        "title": f.claim.title,
        "study": f.claim.study,
        "sections": list(f.claim.sections),
        "task": f.claim.task,
        "dataset": b.dataset if b else None,
        "board": f.board_label if b else None,
        "board_href": f.board_href,
        "profile": c.profile if c else None,
        "dataset_digest": c.dataset_digest if c else None,
        "conditions": c.conditions if c else None,
        "test_kind": c.test_kind if c else None,
        "demo": f.demo,
        "scope": f.scope,
        "verdict": f.verdict,
        "why": f.why,
        **figures,
        "comparisons": [x.record() for x in f.comparisons],
        "information": [x.record() for x in f.information],
        "published": [{"what": w, "value": v} for w, v in f.published],
        "values": dict(f.values),
    }


def claims_table(findings: Sequence[Finding]) -> Table:
    """The page's summary: one row per claim and board (``claims.csv``/``claims.json``)."""
    cols = (
        Column("Claim"),
        Column("Study", False, "the study's file and sections"),
        Column("Board", False, "task / dataset · profile · test (hover: the whole key)"),
        Column("Verdict"),
        Column("Why"),
        Column("A − B [interval], p", False, "the comparison the verdict rests on"),
    )
    cells = []
    for f in findings:
        v = _single(f)
        if v is not None:
            figs = f.comparisons[0].figures
        elif f.comparisons:
            figs = f"{len(f.comparisons)} comparisons (below)"
        else:
            figs = ""
        b, key = f.board, f.board.comparability if f.board else None
        short = (
            f"{b.task} / {b.dataset} · {key.profile} · {key.test_kind} test"
            if b and key
            else "no board"
        )
        title = f.board_label + (f"; {DEMO_NOTE}" if f.demo else "")
        sections = ", ".join(f.claim.sections)
        cells.append(
            (
                Cell(f.claim.title, f.claim.id, href=f"#{f.claim.id}", cls="wrap"),
                Cell(f.claim.study[:3], f.claim.study, title=f"{f.claim.study}: {sections}"),
                Cell(
                    short,
                    title,
                    href=f.board_href,
                    title=title,
                    cls="wrap",
                    badge="demo test" if f.demo else None,
                ),
                Cell(f.verdict, f.verdict, cls=_verdict_class(f.verdict)),
                Cell(f.why, f.why, cls="wrap"),
                Cell(figs, "" if v is None else repr(v.difference), cls="wrap"),
            )
        )
    return Table("claims", cols, tuple(cells), tuple(_record(f) for f in findings))


def _verdict_class(verdict: str) -> str:
    return "tied" if verdict == NOT_TESTABLE else ""


def claims_page(boards: Sequence[Board], n_resamples: int) -> ClaimsPage:
    findings = evaluate(boards, n_resamples)
    grouped = tuple((claim, tuple(f for f in findings if f.claim is claim)) for claim in CLAIMS)
    notes = tuple(dict.fromkeys(c.note for c in CLAIMS if c.note))
    return ClaimsPage(grouped, claims_table(findings), notes)
