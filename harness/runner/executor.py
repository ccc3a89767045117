"""Executors: what runs a plan's items and hands back one record per run.

A plan (:mod:`harness.runner.plan`) is plain data. An executor takes it, with what every
run of it shares (a :class:`Job`), and yields each run as it ends:

- ``local`` (:class:`LocalExecutor`, the default): :func:`harness.runner.run.run_one` in
  this process under this machine's conditions, one run after the other, or as many at a
  time as the machine holds the profile's resources (:func:`fair_share`): with the quick
  profile's one core and 8 GiB, two runs at a time on a 2-core machine, each in its own
  container with its own one-core quota, so that every run of a board gets the same
  share however many run beside it;
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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from harness.errors import SarbenchError
from harness.numbers import size
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


Parallel = int | Literal["auto"]
"""How many runs a :class:`LocalExecutor` makes at a time: a number, or ``auto`` (the
profile's fair share of this machine, :func:`fair_share`)."""


def fair_share(cond: Conditions) -> int:
    """How many runs of ``cond``'s profile fit on this machine at once, each with the
    whole of the profile's CPUs and memory: the machine's CPUs over the profile's, and its
    memory over the profile's, the smaller (at least 1). A GPU profile gets 1 (its runs
    would share one pinned GPU), and so does a profile that pins cores (its runs would
    share them): neither can be split fairly."""
    profile, machine = cond.profile, cond.machine
    if profile.gpu_model is not None or cond.gpu_uuid is not None or profile.cpuset:
        return 1
    by_cpu = int(machine.cpus // profile.cpus) if profile.cpus > 0 else 1
    by_memory = machine.memory_bytes // profile.memory_bytes if profile.memory_bytes else by_cpu
    return max(1, min(by_cpu, int(by_memory)))


class LocalExecutor:
    """Every run in this process under this machine's conditions (probed once; a mismatch
    stops everything unless allowed, as the runner always did).

    ``parallel`` runs at a time (default 1: one after the other; ``auto``:
    :func:`fair_share`). With more than one, every run's key is made first, one after the
    other (datasets verified, images built, weights hashed, once each), then the runs are
    made on that many threads, each run's phases in containers of their own, and yielded
    in the order they end. An interrupt stops new runs from starting; the runs under way
    finish and keep their records."""

    name = "local"

    def __init__(
        self,
        *,
        echo: Echo = _quiet,
        progress: Echo = _quiet,
        phase_lines: PhaseLines | None = None,
        parallel: Parallel = 1,
    ) -> None:
        self.echo, self.progress, self.phase_lines = echo, progress, phase_lines
        if parallel != "auto" and (not isinstance(parallel, int) or parallel < 1):
            raise SarbenchError(f"parallel must be a whole number >= 1 or 'auto', got {parallel!r}")
        self.parallel = parallel

    def run(self, job: Job) -> Iterator[Finished | Refused]:
        from harness.conditions.probe import conditions
        from harness.conditions.profiles import get_profile

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
            at_once = fair_share(cond) if self.parallel == "auto" else self.parallel
            at_once = min(at_once, len(job.plan))
            if at_once > 1:
                self.echo(
                    f"{at_once} runs at a time, each with {profile.cpus:g} CPU(s) and "
                    f"{size(profile.memory_bytes)} of its own (profile {profile.name})"
                )
                yield from _run_parallel(ctx, job, at_once)
            else:
                for spec in job.plan:
                    yield _run_spec(ctx, job, spec)
        finally:
            ctx.backend.close()


def _run_spec(ctx: RunContext, job: Job, spec: RunSpec) -> Finished:
    """One run of the plan, made (or skipped: recorded before)."""
    from harness.runner.run import run_one

    outcome = run_one(
        ctx,
        job.entries[spec.entry],
        spec.variant,
        spec.seed,
        spec.dataset,
        eval_split=job.eval_split,
    )
    return Finished(spec, outcome.action, outcome.run_dir, outcome.record)


def _run_parallel(ctx: RunContext, job: Job, at_once: int) -> Iterator[Finished]:
    """The plan's runs, ``at_once`` at a time on threads, yielded as they end. Their keys
    are made first on this thread: what the context caches (verified datasets, built
    images, hashed weights) is filled before any thread reads it."""
    from harness.runner.run import key_of

    for spec in job.plan:
        entry = job.entries[spec.entry]
        key_of(ctx, entry, spec.variant, spec.seed, spec.dataset, eval_split=job.eval_split)
    pool = ThreadPoolExecutor(at_once, thread_name_prefix="sarbench-run")
    running: set[Future[Finished]] = set()
    try:
        running = {pool.submit(_run_spec, ctx, job, spec) for spec in job.plan}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        # an error or an interrupt: runs not started are dropped, those under way finish
        pool.shutdown(wait=True, cancel_futures=True)


def open_executor(
    name: str,
    *,
    ray_address: str | None = None,
    echo: Echo = _quiet,
    progress: Echo = _quiet,
    phase_lines: PhaseLines | None = None,
    parallel: Parallel = "auto",
) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``). ``ray_address`` is the Ray
    cluster's address (only for ``ray``); ``parallel`` is how many runs the local executor
    makes at a time (:class:`LocalExecutor`; by default the profile's fair share of this
    machine, :func:`fair_share`)."""
    if name == "local":
        if ray_address:
            raise SarbenchError(
                "--ray-address is for the Ray executor: add --executor ray, or leave the "
                "address out to run on this machine"
            )
        return LocalExecutor(
            echo=echo, progress=progress, phase_lines=phase_lines, parallel=parallel
        )
    if name == "ray":
        from harness.cluster.ray_executor import RayExecutor

        return RayExecutor(ray_address, echo=echo)
    raise SarbenchError(f"unknown executor {name!r}: use one of {', '.join(EXECUTORS)}")
