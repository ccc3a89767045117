"""What a leaderboard page shows, computed from published runs: pure, no MLflow, no files.

A board is one task and dataset under one profile, conditions and dataset digest. Its ranked
rows are (entry, variant, image digest, checkpoint): runs of different images or different
pretrained weights are never pooled, so an entry whose image changed has one row per image,
and a model fine-tuned from a checkpoint is a row apart from the same model without it. A row with several seeds pools them chip by chip (each chip's statistics
summed over the seeds, via :meth:`ChipStats.combine`), so its score is the metric of all its
predictions and its interval a bootstrap over independence groups (chips of one group, and
the seeds, kept together). With one seed, the row shows the run's own published metrics and
interval.

Every ranked row is compared with the leader (:func:`harness.scoring.stats.paired_test`:
a sign-flip permutation test by independence group), the comparisons of one board corrected
together by Holm's method; each mark, its adjusted p-value and the interval of the
difference come from the same permutations, at the level that matches the adjusted p, so
they never disagree (:class:`Versus`). The same holds for the pairwise matrix (every pair,
Holm over all pairs) and for an ablation's variants against its reference.

Official rows come from isolated runs only; unisolated (local backend) runs form their own
rows, never mixed in; failed runs are listed with their reason, never ranked.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.errors import SarbenchError
from harness.leaderboard.source import ChipTable, Comparability, PublishedRun
from harness.scoring.metrics import ChipStats, Direction, get_metric, rank_key
from harness.scoring.stats import (
    DEFAULT_LEVEL,
    ChipMismatchError,
    PairedComparison,
    SeedSummary,
    across_seeds,
    align_chips,
    bootstrap_ci,
    effective_alpha,
    holm,
    interval_note,
    paired_test,
)
from harness.tasks import get_task

ALPHA = 1.0 - DEFAULT_LEVEL
RANDOM_INIT = "random init"
"""How a row of an entry that declares pretrained weights but trained without them is
labelled wherever its name is shown."""


@dataclass(frozen=True)
class AblationSpec:
    """An entry's declared ablation (its ``[ablation]`` table, published as the tag
    ``sarbench.ablation``): the reference variant, the component options, their labels."""

    reference: str
    components: tuple[str, ...]
    labels: dict[str, str]

    @classmethod
    def of(cls, run: PublishedRun) -> AblationSpec | None:
        """The spec a run carries, or None (no ablation declared, or unreadable)."""
        try:
            doc = json.loads(run.tag("ablation") or "null")
            if not isinstance(doc, dict):
                return None
            components = tuple(str(c) for c in doc["components"])
            labels = {str(k): str(v) for k, v in dict(doc.get("labels") or {}).items()}
            return cls(str(doc["reference"]), components, labels)
        except (ValueError, KeyError, TypeError):
            return None

    def label(self, component: str) -> str:
        return self.labels.get(component, component)


@dataclass(frozen=True)
class Versus:
    """One comparison of a family (the rows against the leader, all pairs, or an ablation's
    variants against its reference), with its Holm-adjusted p-value. ``alpha`` is the
    per-comparison level at which the unadjusted test decides as the adjusted one does
    (:func:`harness.scoring.stats.effective_alpha`), so :attr:`significant`,
    :attr:`p_adjusted` < ALPHA and 0 outside :attr:`interval` always agree."""

    comparison: PairedComparison
    p_adjusted: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.comparison.significant_at(self.alpha)

    @property
    def interval(self) -> tuple[float, float]:
        """The interval of the difference (A - B) at the level that matches the mark."""
        return self.comparison.interval_at(self.alpha)

    @property
    def difference(self) -> float:
        return self.comparison.difference

    def verdict(self) -> str:
        """``better``, ``worse`` (A against B, in the metric's direction: lower MSE is
        better) or ``tied`` (not significant after correction); ``n/a`` when undefined."""
        c = self.comparison
        if math.isnan(c.difference) or math.isnan(c.p_value):
            return "n/a"
        if not self.significant:
            return "tied"
        return {"a": "better", "b": "worse"}.get(c.better, "tied")


def family(comparisons: Sequence[PairedComparison | None]) -> list[Versus | None]:
    """Holm over the defined comparisons of one family (None stays None)."""
    ps = [math.nan if c is None else c.p_value for c in comparisons]
    adjusted = holm(ps)
    out: list[Versus | None] = []
    for c, p, adj in zip(comparisons, ps, adjusted, strict=True):
        if c is None:
            out.append(None)
        elif math.isnan(p) or math.isnan(adj):
            out.append(Versus(c, math.nan, ALPHA))
        else:
            out.append(Versus(c, adj, effective_alpha(p, adj, ALPHA)))
    return out


def short_digest(d: str) -> str:
    """The first 12 hex digits of a ``sha256:...`` digest."""
    return d.split(":", 1)[-1][:12]


@dataclass(frozen=True)
class Row:
    """One ranked (entry, variant, image digest, checkpoint): its seeds pooled."""

    entry: str
    variant: str
    image_digest: str
    runs: tuple[PublishedRun, ...]
    chip_ids: tuple[str, ...]
    stats: ChipStats
    primary: float
    ci_low: float
    ci_high: float
    metrics: dict[str, float]
    seeds: SeedSummary
    groups: tuple[str, ...] | None = None
    """Each chip's independence group, in ``chip_ids`` order (None: every chip its own)."""
    ci_note: str = ""
    """Why the interval is n/a (fewer than 2 independence groups), or empty."""
    rank: int = 0
    versus_leader: Versus | None = None
    """This row (A) against the leader (B); None for the leader itself."""
    versus_note: str = ""

    @property
    def team(self) -> str:
        return self.runs[0].tag("team")

    @property
    def checkpoint(self) -> str:
        """The pretrained weights' digest (``none``): the same for every run of a row."""
        return self.runs[0].checkpoint

    @property
    def pretrained(self) -> bool | None:
        """Whether the row's model started from pretrained weights (the same for every
        run of a row; None: it uses none)."""
        return self.runs[0].pretrained

    @property
    def from_weights(self) -> bool:
        """Trained from pretrained weights: as the record says, else (runs published
        before it said) whether weights were mounted."""
        return self.pretrained if self.pretrained is not None else self.checkpoint != "none"

    @property
    def name(self) -> str:
        """The entry's name as a reader sees it: ``prithvi (random init)`` for a run of an
        entry that declares pretrained weights but trained without them, never the name
        of the pretrained baseline alone."""
        return f"{self.entry} ({RANDOM_INIT})" if self.pretrained is False else self.entry

    @property
    def baseline(self) -> bool:
        return self.runs[0].baseline

    def mean_metric(self, name: str) -> float | None:
        """Mean of a run metric (a timing) over the seeds that have it."""
        vals = [r.metrics[name] for r in self.runs if name in r.metrics]
        return float(np.mean(vals)) if vals else None

    @property
    def tied_with_leader(self) -> bool:
        """Not significantly different from the leader after correction."""
        v = self.versus_leader
        return v is not None and v.verdict() == "tied"


@dataclass(frozen=True)
class AblationRow:
    """One variant of the ablation matrix, against the reference variant."""

    row: Row
    label: str
    components: dict[str, bool]
    versus_reference: Versus | None

    @property
    def change(self) -> float:
        return math.nan if self.versus_reference is None else self.versus_reference.difference


@dataclass(frozen=True)
class AblationMatrix:
    """One entry's ablation matrix (of one image): its spec and its rows, reference first."""

    spec: AblationSpec
    rows: tuple[AblationRow, ...]


@dataclass(frozen=True)
class Board:
    """One task and dataset under one profile, conditions and dataset digest: runs that
    differ in any of them are on different boards, never pooled.
    ``suffix`` tells apart the boards of one (task, dataset): empty when it has one."""

    task: str
    dataset: str
    comparability: Comparability
    suffix: str
    primary_metric: str
    direction: Direction
    secondary_metrics: tuple[str, ...]
    official: tuple[Row, ...]
    unofficial: tuple[Row, ...]
    failed: tuple[PublishedRun, ...]
    ablations: dict[str, AblationMatrix]
    runs: tuple[PublishedRun, ...]
    pairwise: tuple[tuple[Row, Row, Versus | None], ...] = ()
    """Every pair of official rows (A ranked above B), Holm over all pairs."""

    @property
    def tied_with_leader(self) -> int:
        """How many official rows the leader is not significantly ahead of."""
        return sum(r.tied_with_leader for r in self.official)

    @property
    def last_update(self) -> int | None:
        times = [r.end_time for r in self.runs if r.end_time]
        return max(times) if times else None


def pool_seeds(tables: Sequence[ChipTable]) -> tuple[tuple[str, ...], ChipStats]:
    """Chip ids of the first table and each chip's statistics summed over all tables
    (chips matched by id; different chip sets are a ``ChipMismatchError``)."""
    first = tables[0]
    aligned = [first.stats] + [
        align_chips(first.ids, first.stats, t.ids, t.stats) for t in tables[1:]
    ]
    if len(aligned) == 1:
        return first.ids, first.stats
    stacked = aligned[0]
    for t in aligned[1:]:
        stacked = stacked.concat(t)
    select = np.tile(np.eye(len(first.ids)), len(aligned))
    return first.ids, stacked.combine(select)


def make_row(runs: Sequence[PublishedRun], chips: Mapping[str, ChipTable], n_resamples: int) -> Row:
    """A row from the ok runs of one (entry, variant, image digest)."""
    runs = sorted(runs, key=lambda r: r.seed)
    task = get_task(runs[0].task)
    primary = task.primary_metric
    names = (primary, *task.secondary_metrics)
    tables = [chips[r.mlflow_id] for r in runs]
    ids, stats = pool_seeds(tables)
    groups = tables[0].groups
    if len(runs) == 1:
        m = runs[0].metrics
        metrics = {n: m.get(n, math.nan) for n in names}
        low, high = m.get(f"{primary}_ci_low", math.nan), m.get(f"{primary}_ci_high", math.nan)
        note = runs[0].tag("interval_note")
    else:
        pooled = stats.pooled()
        metrics = {n: float(get_metric(task.name, n)(pooled)) for n in names}
        ci = bootstrap_ci(stats, primary, groups=groups, n_resamples=n_resamples)
        note = interval_note(ci.n_units, groups) or ""
        low, high = (math.nan, math.nan) if note else (ci.low, ci.high)
    seeds = across_seeds({r.seed: r.metrics.get(primary, math.nan) for r in runs})
    digests = {r.tag("image_digest") for r in runs}
    if len(digests) != 1:  # a caller's mistake: rows are per image
        raise ValueError(f"one row pools runs of {len(digests)} images: {sorted(digests)}")
    return Row(
        entry=runs[0].entry,
        variant=runs[0].variant,
        image_digest=digests.pop(),
        runs=tuple(runs),
        chip_ids=ids,
        stats=stats,
        primary=metrics[primary],
        ci_low=low,
        ci_high=high,
        metrics=metrics,
        seeds=seeds,
        groups=groups,
        ci_note=note,
    )


def compare_rows(a: Row, b: Row, metric: str, n_resamples: int) -> PairedComparison:
    """A against B on their common chips, by A's independence groups (the rows' groups
    must agree: they come from one dataset)."""
    if a.groups != b.groups and a.chip_ids == b.chip_ids:
        raise ChipMismatchError("the two rows name different independence groups")
    return paired_test(
        a.chip_ids,
        a.stats,
        b.chip_ids,
        b.stats,
        metric,
        groups=a.groups,
        n_resamples=n_resamples,
        n_permutations=n_resamples,
    )


def _try_compare(a: Row, b: Row, n_resamples: int) -> tuple[PairedComparison | None, str]:
    try:
        return compare_rows(a, b, a.runs[0].primary_metric, n_resamples), ""
    except ChipMismatchError as exc:
        return None, f"not comparable: {exc}"


def rank(rows: Sequence[Row], direction: Direction, n_resamples: int) -> tuple[Row, ...]:
    """Rows best first (undefined scores last), each compared with the leader (Holm over
    the board's comparisons)."""

    def key(r: Row) -> tuple[bool, float, str, str, str, str]:
        undefined = math.isnan(r.primary)
        score = 0.0 if undefined else rank_key(direction, r.primary)
        return (undefined, score, r.entry, r.variant, r.image_digest, r.checkpoint)

    ordered = sorted(rows, key=key)
    if not ordered:
        return ()
    leader = ordered[0]
    tried = [_try_compare(row, leader, n_resamples) for row in ordered[1:]]
    versus = family([c for c, _ in tried])
    out = [replace(leader, rank=1)]
    for i, (row, (_, note), v) in enumerate(zip(ordered[1:], tried, versus, strict=True)):
        out.append(replace(row, rank=i + 2, versus_leader=v, versus_note=note))
    return tuple(out)


def pairwise(rows: Sequence[Row], n_resamples: int) -> tuple[tuple[Row, Row, Versus | None], ...]:
    """Every pair of ranked rows (the higher-ranked as A), Holm over all pairs."""
    pairs = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1 :]]
    versus = family([_try_compare(a, b, n_resamples)[0] for a, b in pairs])
    return tuple((a, b, v) for (a, b), v in zip(pairs, versus, strict=True))


def _component(run: PublishedRun, name: str) -> bool | None:
    value = run.params.get(name, "").strip().lower()
    return {"true": True, "false": False}.get(value)


def ablation(rows: Sequence[Row], n_resamples: int) -> AblationMatrix | None:
    """The ablation matrix of one entry's rows of one image, as the entry declared it
    (:class:`AblationSpec`), or None where it declared none, or its variants do not all
    carry the component options, or the reference variant has no row."""
    if len(rows) < 2 or len({r.variant for r in rows}) != len(rows):
        return None
    spec = AblationSpec.of(rows[0].runs[0])
    if spec is None:
        return None
    comps: dict[str, dict[str, bool]] = {}
    for row in rows:
        values = {c: _component(row.runs[0], c) for c in spec.components}
        if any(v is None for v in values.values()):
            return None
        comps[row.variant] = {c: bool(v) for c, v in values.items()}
    reference = next((r for r in rows if r.variant == spec.reference), None)
    if reference is None:
        return None
    n = len(spec.components)

    def order(r: Row) -> tuple[int, str]:
        off = [i for i, c in enumerate(spec.components) if not comps[r.variant][c]]
        return (0 if r is reference else 1 + (off[0] if len(off) == 1 else n), r.variant)

    ordered = sorted(rows, key=order)
    tried = [
        None if r is reference else _try_compare(r, reference, n_resamples)[0] for r in ordered
    ]
    versus = family(tried)
    out: list[AblationRow] = []
    for i, (row, v) in enumerate(zip(ordered, versus, strict=True)):
        label = f"Reference ({spec.reference})" if row is reference else f"Ablation {i}"
        out.append(AblationRow(row, label, comps[row.variant], v))
    return AblationMatrix(spec, tuple(out))


def _rows(runs: Sequence[PublishedRun], chips: Mapping[str, ChipTable], n: int) -> list[Row]:
    """One row per (entry, variant, image digest, checkpoint): runs of different images
    or weights never pool."""
    groups: dict[tuple[str, str, str, str], list[PublishedRun]] = defaultdict(list)
    for r in runs:
        groups[(r.entry, r.variant, r.tag("image_digest"), r.checkpoint, r.pretrained)].append(r)
    return [make_row(g, chips, n) for _, g in sorted(groups.items())]


def _ablations(official: Sequence[Row], n_resamples: int) -> dict[str, AblationMatrix]:
    """The ablation matrices of the official rows, one per (entry, image); named by the
    entry, or ``<entry> @<short digest>`` where the entry has rows of several images."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in official:
        groups[(row.entry, row.image_digest)].append(row)
    images = Counter(entry for entry, _ in groups)
    out: dict[str, AblationMatrix] = {}
    for (entry, digest), rows in sorted(groups.items()):
        if a := ablation(rows, n_resamples):
            out[entry if images[entry] == 1 else f"{entry} @{short_digest(digest)}"] = a
    return out


def build_boards(
    runs: Sequence[PublishedRun], chips: Mapping[str, ChipTable], n_resamples: int = 10_000
) -> list[Board]:
    """One board per (task, dataset, comparability key), sorted by task, dataset, key."""
    by_board: dict[tuple[str, str, Comparability], list[PublishedRun]] = defaultdict(list)
    for r in runs:
        by_board[(r.task, r.dataset, r.comparability)].append(r)
    keys_per_dataset = Counter((task, dataset) for task, dataset, _ in by_board)
    boards = []
    for (task_name, dataset, comparable), group in sorted(by_board.items()):
        task = get_task(task_name)
        direction = get_metric(task.name, task.primary_metric).direction
        ok = [r for r in group if r.ok]
        missing = [r.run_id for r in ok if r.mlflow_id not in chips]
        if missing:
            raise SarbenchError(f"per-chip scores missing for published run(s) {missing}")
        official = rank(
            _rows([r for r in ok if r.official], chips, n_resamples), direction, n_resamples
        )
        unofficial = rank(
            _rows([r for r in ok if not r.official], chips, n_resamples), direction, n_resamples
        )
        ablations = _ablations(official, n_resamples)
        boards.append(
            Board(
                task=task.name,
                dataset=dataset,
                comparability=comparable,
                suffix=comparable.slug() if keys_per_dataset[(task_name, dataset)] > 1 else "",
                primary_metric=task.primary_metric,
                direction=direction,
                secondary_metrics=task.secondary_metrics,
                official=official,
                unofficial=unofficial,
                failed=tuple(r for r in group if not r.ok),
                ablations=ablations,
                runs=tuple(group),
                pairwise=pairwise(official, n_resamples),
            )
        )
    return boards
