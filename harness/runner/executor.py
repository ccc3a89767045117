"""Executors: what runs a plan's items and hands back one record per run.

A plan (:mod:`harness.runner.plan`) is plain data. An executor takes it, with what every
run of it shares (a :class:`Job`), and yields each run as it ends:

- ``local`` (:class:`LocalExecutor`, the default): one run after the other in this
  process, :func:`harness.runner.run.run_one` under this machine's conditions;
- ``ray`` (:class:`harness.cluster.ray_executor.RayExecutor`): each run a Ray task on a node
  that has the profile's CPUs (and GPU model); the node probes its conditions, verifies its
  data and runs the same runner, and this process writes the record into the home
  (``docs/scale.md``).

Both yield :class:`Finished` (a run and its record: ``ran``, or ``skipped`` because the home
has its record already), in the order runs end. The Ray executor also yields
:class:`Refused` for a run that a node would not make (its data, entry or conditions differ
from the driver's): such a run leaves no record, and running the plan again retries it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from harness.errors import SarbenchError
from harness.record import RunRecord
from harness.runner.plan import Plan, RunSpec
from harness.settings import Settings

if TYPE_CHECKING:
    from harness.conditions.probe import Conditions
    from harness.entries import Entry
    from harness.runner.run import PhaseLines, RunContext

Echo = Callable[[str], None]
ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "ray")


def _quiet(_: str) -> None:
    """Says nothing."""


@dataclass(frozen=True)
class RunOptions:
    """The options ``sarbench run``, ``sarbench validate`` and the demo share: how each
    run's phases run (``backend``: ``docker``, ``local``, or None: docker when an engine
    answers, else local), under which profile, and with what."""

    backend: str | None
    profile: str
    allow_mismatch: bool
    docker_host: str | None
    weights: Path | None
    build_args: tuple[str, ...]


def make_context(
    settings: Settings,
    opts: RunOptions,
    conditions: Conditions,
    *,
    echo: Echo = _quiet,
    progress: Echo = _quiet,
    runs_dir: Path | None = None,
    phase_lines: PhaseLines | None = None,
) -> RunContext:
    """The run context of ``opts`` under ``conditions``: the backend opened (leftovers of
    killed harnesses under ``runs_dir``, default the home's, reaped first)."""
    from harness.runner.run import RunContext
    from harness.runtime.backends import open_backend
    from harness.runtime.builds import parse_build_args

    build_args = parse_build_args(opts.build_args)  # a bad one before the engine is asked
    backend = open_backend(
        opts.backend,  # type: ignore[arg-type]
        docker_host=opts.docker_host,
        echo=echo,
        runs_dir=runs_dir or settings.runs_dir,
    )
    ctx = RunContext(
        settings=settings,
        conditions=conditions,
        backend=backend,
        weights_dir=opts.weights,
        build_args=build_args,
        progress=progress,
    )
    if phase_lines is not None:
        ctx.phase_lines = phase_lines
    return ctx


@dataclass(frozen=True)
class Job:
    """A plan and what every run of it shares: the settings (whose home gets the
    records), the entries by name, the run options and the held-out split scored."""

    settings: Settings
    plan: Plan
    entries: Mapping[str, Entry]
    options: RunOptions
    eval_split: str = "test"


@dataclass(frozen=True)
class Finished:
    """A run of the plan that has its record in the home: ``ran`` now, or ``skipped``
    (recorded before)."""

    spec: RunSpec
    action: Literal["ran", "skipped"]
    run_dir: Path
    record: RunRecord


@dataclass(frozen=True)
class Refused:
    """A run that was not made, with why and where (a node that refused it); it has no
    record, and running the plan again tries it again."""

    spec: RunSpec
    where: str
    reason: str

    def line(self) -> str:
        s = self.spec
        return f"refused {s.entry}/{s.variant} seed {s.seed} on {s.dataset} ({self.where}): {self.reason}"


class Executor(Protocol):
    """Runs a job's plan; yields each run as it ends (:class:`Finished` or
    :class:`Refused`). An error that stops the whole plan is raised."""

    name: str

    def run(self, job: Job) -> Iterator[Finished | Refused]: ...


class LocalExecutor:
    """Every run in this process, one after the other, under this machine's conditions
    (probed once; a mismatch stops everything unless allowed, as the runner always did)."""

    name = "local"

    def __init__(
        self,
        *,
        echo: Echo = _quiet,
        progress: Echo = _quiet,
        phase_lines: PhaseLines | None = None,
    ) -> None:
        self.echo, self.progress, self.phase_lines = echo, progress, phase_lines

    def run(self, job: Job) -> Iterator[Finished | Refused]:
        from harness.conditions.probe import conditions
        from harness.conditions.profiles import get_profile
        from harness.runner.run import run_one

        opts = job.options
        profile = get_profile(job.settings.profiles_dir, opts.profile)
        cond = conditions(profile, allow_mismatch=opts.allow_mismatch)
        for mismatch in cond.mismatches:
            self.echo(f"warning: conditions mismatch allowed: {mismatch}")
        ctx = make_context(
            job.settings,
            opts,
            cond,
            echo=self.echo,
            progress=self.progress,
            phase_lines=self.phase_lines,
        )
        try:
            for name in dict.fromkeys(spec.entry for spec in job.plan):  # before any run
                ctx.require_weights(job.entries[name])
            for spec in job.plan:
                outcome = run_one(
                    ctx,
                    job.entries[spec.entry],
                    spec.variant,
                    spec.seed,
                    spec.dataset,
                    eval_split=job.eval_split,
                )
                yield Finished(spec, outcome.action, outcome.run_dir, outcome.record)
        finally:
            ctx.backend.close()


def open_executor(
    name: str,
    *,
    ray_address: str | None = None,
    echo: Echo = _quiet,
    progress: Echo = _quiet,
    phase_lines: PhaseLines | None = None,
) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``). ``ray_address`` is the Ray
    cluster's address (only for ``ray``)."""
    if name == "local":
        if ray_address:
            raise SarbenchError(
                "--ray-address is for the Ray executor: add --executor ray, or leave the "
                "address out to run on this machine"
            )
        return LocalExecutor(echo=echo, progress=progress, phase_lines=phase_lines)
    if name == "ray":
        from harness.cluster.ray_executor import RayExecutor

        return RayExecutor(ray_address, echo=echo)
    raise SarbenchError(f"unknown executor {name!r}: use one of {', '.join(EXECUTORS)}")
