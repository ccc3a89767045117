"""``sarbench demo``: from nothing to a leaderboard on the embedded default.

1. prepare and verify the embedded datasets (skipped when already verified);
2. run every registered baseline entry, every variant that applies to its dataset's band
   roles (the others are listed as skipped, with the reason, and not run), under the
   ``quick`` profile, through the docker backend when an engine answers, otherwise locally
   with a warning (local runs are unisolated and stay out of the official table); runs
   with a record are skipped. Locally, as many runs at a time as the machine holds the
   profile's CPUs and memory (:func:`harness.runner.executor.fair_share`: two on 2 cores
   under ``quick``'s one core each); ``executor="ray"`` runs them as Ray tasks on a cluster
   (:mod:`harness.cluster`) and writes their records here;
3. publish every run to MLflow (idempotent);
4. build the static site, and say where to open it and how to start ``mlflow ui``.

Each step says how long it took; :attr:`DemoResult.steps` keeps those times.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import SarbenchError, printable
from harness.numbers import duration
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
    steps: tuple[tuple[str, float], ...] = ()
    """Each step's name and wall time in seconds, in order."""


class _Steps:
    """The wall time of each step of the demo, told as each ends."""

    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.times: list[tuple[str, float]] = []
        self.name, self.started = "", time.monotonic()

    def start(self, name: str) -> None:
        """End the step under way (if any) and start ``name``."""
        self.end()
        self.name, self.started = name, time.monotonic()
        self.echo(name)

    def end(self) -> None:
        """End the step under way: say and keep its time."""
        if self.name:
            took = time.monotonic() - self.started
            self.times.append((self.name, round(took, 3)))
            self.echo(f"  ({self.name.split(' ', 1)[-1]}: {duration(took)})")
            self.name = ""


def run_demo(
    settings: Settings,
    *,
    echo: Echo,
    backend: str | None = None,
    profile: str = "quick",
    tracking_uri: str | None = None,
    out: Path | None = None,
    docker_host: str | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> DemoResult:
    """The whole demo; see the module docstring."""
    from tqdm import tqdm

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
    from harness.runner.executor import Job, Refused, RunOptions, open_executor
    from harness.runner.plan import dataset_facts, make_plan
    from harness.runner.progress import PhaseLines

    started = time.monotonic()
    bars = sys.stderr.isatty()
    steps = _Steps(echo)
    steps.start("1/4 datasets")
    for name in GENERATORS:
        outcome = ops.prepare(settings, name, test="demo", progress=bars)
        echo(f"  {name}: {outcome.status} {outcome.digest[:19]} (demo test: public seed)")

    steps.start("2/4 baselines")
    entries = [e for e in load_entries(settings.submissions_dir).values() if e.baseline]
    if not entries:
        raise SarbenchError(f"no baseline entries in {settings.submissions_dir}")
    seeds = get_profile(settings.profiles_dir, profile).seeds
    plan = make_plan(entries, profile, seeds, facts=dataset_facts(settings))
    for skip in plan.skipped:  # not applicable to the dataset's band roles: never run
        echo(f"  {skip.line()}")
    options = RunOptions(
        backend=backend,
        profile=profile,
        allow_mismatch=True,  # the demo runs anywhere; the mismatches are recorded
        docker_host=docker_host,
        weights=None,
        build_args=(),
    )
    runner = open_executor(
        executor,
        ray_address=ray_address,
        echo=lambda m: echo(f"  {m}"),
        progress=lambda m: tqdm.write(f"    {m}", file=sys.stderr) if bars else None,
        phase_lines=PhaseLines(),
        parallel="auto",  # each run its own share of the machine: the profile's CPUs
    )
    job = Job(settings, plan, {e.name: e for e in entries}, options)
    run_dirs, failed = [], 0
    with tqdm(total=len(plan), desc="runs", unit="run", disable=not bars) as bar:
        for done in runner.run(job):
            bar.update()
            if isinstance(done, Refused):  # no record; the demo again runs it again
                failed += 1
                tqdm.write(f"  {done.line()}", file=sys.stdout)
                continue
            run_dirs.append(done.run_dir)
            failed += not done.record.ok
            tqdm.write(f"  {summary_line(done.record, done.action)}", file=sys.stdout)

    steps.start("3/4 MLflow")
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

    steps.start("4/4 leaderboard")
    summary = build_site(mlflow_connect(uri), out or settings.home / "site")
    steps.end()
    wall = time.monotonic() - started
    echo(
        f"\nDone in {wall / 60:.1f} min: {len(plan)} run(s), {failed} failed"
        f"{_skipped_note(plan.skipped)}.\n"
        f"Leaderboard: open file://{summary.out / 'index.html'}\n"
        f"MLflow:      mlflow ui --backend-store-uri {uri} --port 5000, then each "
        "benchmark's ranking:"
    )
    for name, link in publisher.links().items():
        echo(f"  {name}: {link}")
    skipped = tuple(s.line() for s in plan.skipped)
    return DemoResult(len(plan), failed, summary.out, uri, wall, skipped, tuple(steps.times))


def _skipped_note(skipped: Sequence[Skip]) -> str:
    n = sum(len(s.variants) for s in skipped)
    return f", {n} variant(s) skipped as not applicable (listed above)" if n else ""
