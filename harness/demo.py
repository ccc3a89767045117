"""``sarbench demo``: from nothing to a leaderboard on the embedded default.

1. prepare and verify the embedded datasets (skipped when already verified);
2. run every registered baseline entry, every variant that applies to its dataset's band
   roles (the others are listed as skipped, with the reason, and not run), under the
   ``quick`` profile, through the docker backend when an engine answers, otherwise locally
   with a warning (local runs are unisolated and stay out of the official table); runs
   with a record are skipped;
3. publish every run to MLflow (idempotent);
4. build the static site, and say where to open it and how to start ``mlflow ui``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import SarbenchError, printable
from harness.settings import Settings

if TYPE_CHECKING:
    from harness.runner.plan import Skip

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    runs: int
    failed: int
    site: Path
    tracking_uri: str
    wall_s: float
    not_applicable: tuple[str, ...] = ()
    """One line per group of variants not run (:meth:`harness.runner.plan.Skip.line`)."""


def run_demo(
    settings: Settings,
    *,
    echo: Echo,
    backend: str | None = None,
    profile: str = "quick",
    tracking_uri: str | None = None,
    out: Path | None = None,
    docker_host: str | None = None,
) -> DemoResult:
    """The whole demo; see the module docstring."""
    from tqdm import tqdm

    from harness.conditions.probe import conditions
    from harness.conditions.profiles import get_profile
    from harness.datasets import ops
    from harness.datasets.registry import GENERATORS
    from harness.entries import load_entries
    from harness.leaderboard.site import build_site
    from harness.publish.errors import RecordError
    from harness.publish.mlflow_store import Publisher
    from harness.publish.mlflow_store import connect as mlflow_connect
    from harness.publish.mlflow_store import tracking_uri as resolve_uri
    from harness.runner.cli import summary_line
    from harness.runner.plan import dataset_facts, make_plan
    from harness.runner.run import RunContext, run_one
    from harness.runtime.backends import open_backend

    started = time.monotonic()
    bars = sys.stderr.isatty()
    echo("1/4 datasets")
    for name in GENERATORS:
        outcome = ops.prepare(settings, name, test="demo", progress=bars)
        echo(f"  {name}: {outcome.status} {outcome.digest[:19]} (demo test: public seed)")

    echo("2/4 baselines")
    chosen_backend = open_backend(
        backend,  # type: ignore[arg-type]
        docker_host=docker_host,
        echo=lambda m: echo(f"  {m}"),
        runs_dir=settings.runs_dir,
    )
    cond = conditions(get_profile(settings.profiles_dir, profile), allow_mismatch=True)
    for mismatch in cond.mismatches:
        echo(f"  warning: this machine does not meet the {profile!r} profile: {mismatch}")
    entries = [e for e in load_entries(settings.submissions_dir).values() if e.baseline]
    if not entries:
        raise SarbenchError(f"no baseline entries in {settings.submissions_dir}")
    plan = make_plan(entries, profile, cond.profile.seeds, facts=dataset_facts(settings))
    for skip in plan.skipped:  # not applicable to the dataset's band roles: never run
        echo(f"  {skip.line()}")
    by_name = {e.name: e for e in entries}
    ctx = RunContext(
        settings=settings,
        conditions=cond,
        backend=chosen_backend,
        progress=lambda m: tqdm.write(f"    {m}", file=sys.stderr) if bars else None,
    )
    run_dirs, failed = [], 0
    try:
        for spec in tqdm(plan, desc="runs", unit="run", disable=not bars):
            outcome = run_one(ctx, by_name[spec.entry], spec.variant, spec.seed, spec.dataset)
            run_dirs.append(outcome.run_dir)
            record = outcome.record
            failed += not record.ok
            tqdm.write(f"  {summary_line(record, outcome.action)}", file=sys.stdout)
    finally:
        chosen_backend.close()

    echo("3/4 MLflow")
    uri = resolve_uri(settings, tracking_uri)
    publisher = Publisher(settings, uri)
    actions: dict[str, int] = {}
    for run_dir in tqdm(run_dirs, desc="publish", unit="run", disable=not bars):
        try:
            action = publisher.publish(run_dir).action
        except RecordError as exc:  # named and skipped; the other records still publish
            echo(printable(f"  not published: {run_dir.name}: " + "; ".join(exc.problems)))
            action, failed = "skipped", failed + 1
        actions[action] = actions.get(action, 0) + 1
    echo("  " + ", ".join(f"{n} {a}" for a, n in sorted(actions.items())) + f" in {uri}")

    echo("4/4 leaderboard")
    summary = build_site(mlflow_connect(uri), out or settings.home / "site")
    wall = time.monotonic() - started
    echo(
        f"\nDone in {wall / 60:.1f} min: {len(plan)} run(s), {failed} failed"
        f"{_skipped_note(plan.skipped)}.\n"
        f"Leaderboard: open file://{summary.out / 'index.html'}\n"
        f"MLflow:      mlflow ui --backend-store-uri {uri} --port 5000  "
        "(then http://127.0.0.1:5000)"
    )
    skipped = tuple(s.line() for s in plan.skipped)
    return DemoResult(len(plan), failed, summary.out, uri, wall, skipped)


def _skipped_note(skipped: Sequence[Skip]) -> str:
    n = sum(len(s.variants) for s in skipped)
    return f", {n} variant(s) skipped as not applicable (listed above)" if n else ""
