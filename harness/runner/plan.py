"""Run plans: plain, serialisable lists of (entry, variant, seed, dataset) under one profile.

A plan is data, so another executor (a cluster scheduler) could run its items; the
single-machine runner (:func:`harness.runner.run.run_one`) is the first executor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from harness.entries import Entry
from harness.errors import SarbenchError, UnknownNameError


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


def make_plan(
    entries: Sequence[Entry],
    profile: str,
    profile_seeds: Sequence[int],
    *,
    variants: Sequence[str] = (),
    seeds: Sequence[int] = (),
    dataset: str | None = None,
) -> list[RunSpec]:
    """Every (entry, variant, seed) asked for, each on its dataset.

    - ``variants``: those named (each must exist in every entry given), else every variant;
    - ``seeds``: those given, else the profile's;
    - ``dataset``: that one for every entry (which must support it), else each entry's
      default (the first of its ``datasets``).
    """
    if not entries:
        raise SarbenchError("nothing to run: name at least one entry")
    plan: list[RunSpec] = []
    for entry in entries:
        names = list(variants) or entry.variant_names()
        for name in names:
            if name not in entry.variants:
                raise UnknownNameError(f"variant of entry {entry.name!r}", name, entry.variants)
        ds = dataset or entry.default_dataset()
        if ds not in entry.datasets:
            raise SarbenchError(
                f"entry {entry.name!r} supports dataset(s) {', '.join(entry.datasets)}, not {ds!r}"
            )
        for name in names:
            for seed in seeds or profile_seeds:
                plan.append(RunSpec(entry.name, name, int(seed), ds, profile))
    return plan
