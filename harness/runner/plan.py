"""Run plans: plain, serialisable lists of (entry, variant, seed, dataset) under one profile,
and of what was left out and why.

A plan is data, so another executor (a cluster scheduler) could run its items; the
single-machine runner (:func:`harness.runner.run.run_one`) is the first executor.

Whether an entry's variant runs on a dataset is decided by the dataset's task and band
roles (:meth:`harness.entries.Entry.why_not`), never by its name (but for the deprecated
``datasets`` of an entry file): a variant that does not apply is not run, and the plan
lists it in :attr:`Plan.skipped` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from harness.bands import DatasetFacts
from harness.entries import Entry
from harness.errors import SarbenchError, UnknownNameError

if TYPE_CHECKING:
    from harness.settings import Settings

FactsLookup = Callable[[str], DatasetFacts]
"""A dataset's name -> its task, bands and band roles."""


@dataclass(frozen=True)
class RunSpec:
    """One item of a plan."""

    entry: str
    variant: str
    seed: int
    dataset: str
    profile: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Skip:
    """Variants of an entry that do not run on a dataset, for one reason."""

    entry: str
    variants: tuple[str, ...]
    dataset: str
    reason: str

    def line(self) -> str:
        """``skipped threshold/default, otsu on sen1floods11: needs bands pre/post; ...``"""
        return f"skipped {self.entry}/{', '.join(self.variants)} on {self.dataset}: {self.reason}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"variants": list(self.variants)}


@dataclass(frozen=True)
class Plan:
    """What to run (:attr:`runs`, in order) and what not, with why (:attr:`skipped`).
    Iterating over a plan, or taking its length, is over its runs."""

    runs: tuple[RunSpec, ...]
    skipped: tuple[Skip, ...] = field(default=())

    def __iter__(self) -> Iterator[RunSpec]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> RunSpec:
        return self.runs[index]

    def to_dict(self) -> dict[str, object]:
        return {
            "runs": [r.to_dict() for r in self.runs],
            "skipped": [s.to_dict() for s in self.skipped],
        }

    def require_runs(self) -> None:
        """A :class:`SarbenchError` when nothing is left to run, listing every reason."""
        if self.runs:
            return
        reasons = "\n".join(f"  - {s.line()}" for s in self.skipped)
        raise SarbenchError(f"nothing to run: every variant asked for was skipped:\n{reasons}")


def make_plan(
    entries: Sequence[Entry],
    profile: str,
    profile_seeds: Sequence[int],
    *,
    facts: FactsLookup,
    variants: Sequence[str] = (),
    seeds: Sequence[int] = (),
    dataset: str | None = None,
) -> Plan:
    """Every (entry, variant, seed) asked for that applies, each on its dataset.

    - ``variants``: those named (each must exist in every entry given), else every variant;
    - ``seeds``: those given, else the profile's;
    - ``dataset``: that one for every entry, else each entry's default
      (:meth:`Entry.default_dataset`: the embedded dataset of its task);
    - ``facts``: a dataset's task, bands and band roles, by name.

    A variant whose entry does not do the dataset's task, or whose band roles do not fit
    the dataset's, goes to :attr:`Plan.skipped` with the reason, grouped per entry and
    reason.
    """
    if not entries:
        raise SarbenchError("nothing to run: name at least one entry")
    runs: list[RunSpec] = []
    skipped: list[Skip] = []
    for entry in entries:
        names = list(variants) or entry.variant_names()
        for name in names:
            if name not in entry.variants:
                raise UnknownNameError(f"variant of entry {entry.name!r}", name, entry.variants)
        ds = dataset or entry.default_dataset()
        about = facts(ds)
        left_out: dict[str, list[str]] = {}
        for name in names:
            reason = entry.why_not(about, name)
            if reason is not None:
                left_out.setdefault(reason, []).append(name)
                continue
            for seed in seeds or profile_seeds:
                runs.append(RunSpec(entry.name, name, int(seed), ds, profile))
        skipped += [Skip(entry.name, tuple(v), ds, why) for why, v in left_out.items()]
    return Plan(tuple(runs), tuple(skipped))


def dataset_facts(settings: Settings) -> FactsLookup:
    """A :data:`FactsLookup` over the committed manifests of ``settings`` (each read once);
    an unknown or unfrozen dataset is an error that says what to do."""
    from harness.datasets import ops

    cache: dict[str, DatasetFacts] = {}

    def lookup(name: str) -> DatasetFacts:
        if name not in cache:
            cache[name] = DatasetFacts.of(ops.require_manifest(settings, name), name)
        return cache[name]

    return lookup
