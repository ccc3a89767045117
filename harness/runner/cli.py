"""``sarbench run`` and ``sarbench validate``: thin edges over :mod:`harness.runner`.

Exit codes: 0 every run ended ``ok`` (or ``validate`` found nothing wrong); 1 a run ended
``failed`` (its record says why) or ``validate`` found problems; 2 the harness could not
start (unknown names, a malformed entry, no engine, a tampered dataset, a conditions
mismatch...), or, with ``--executor ray``, a node refused a run (listed; not recorded).

``run`` builds the plan here and hands it to an executor (:mod:`harness.runner.executor`):
this process (``local``) or a Ray cluster (``ray``, :mod:`harness.cluster`).
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from harness.errors import SarbenchError
from harness.numbers import duration, interval
from harness.record import RunRecord
from harness.runner.executor import EXECUTORS, Refused, RunOptions, make_context
from harness.settings import Settings
from harness.tasks import task_choice

_BACKENDS = click.Choice(["docker", "local"])


def _echo_progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


def _context(settings: Settings, opts: RunOptions, *, allow_mismatch: bool = False) -> Any:
    """The run context of the options on this machine (``allow_mismatch``: whatever the
    option says); a conditions mismatch stops here unless allowed."""
    from harness.conditions.probe import conditions
    from harness.conditions.profiles import get_profile

    profile = get_profile(settings.profiles_dir, opts.profile)
    cond = conditions(profile, allow_mismatch=allow_mismatch or opts.allow_mismatch)
    for mismatch in cond.mismatches:
        click.echo(f"warning: conditions mismatch allowed: {mismatch}", err=True)
    return make_context(
        settings, opts, cond, echo=lambda m: click.echo(m, err=True), progress=_echo_progress
    )


def _common(f: Any) -> Any:
    """Add the shared options to a command; it receives them as one ``opts``."""

    @functools.wraps(f)
    def collect(*args: Any, **kwargs: Any) -> Any:
        opts = RunOptions(**{name: kwargs.pop(name) for name in _COMMON})
        return f(*args, opts=opts, **kwargs)

    options = [
        click.option(
            "--backend", type=_BACKENDS, default="docker", show_default=True, help="How to run."
        ),
        click.option(
            "--profile", default="quick", show_default=True, help="Conditions profile (profiles/)."
        ),
        click.option(
            "--allow-mismatch",
            is_flag=True,
            help="Run even where this machine does not meet the profile (recorded).",
        ),
        click.option("--docker-host", metavar="URL", help="Docker engine address."),
        click.option(
            "--weights",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Folder mounted read-only at /weights in train [default <home>/weights/<entry>].",
        ),
        click.option(
            "--build-arg", "build_args", multiple=True, metavar="KEY=VALUE", help="Image build arg."
        ),
    ]
    for option in reversed(options):
        collect = option(collect)
    return collect


_COMMON = tuple(f.name for f in fields(RunOptions))


def summary_line(record: RunRecord, action: str) -> str:
    """One line per run for people: entry/variant, seed, score with CI or reason, times."""
    key = f"{record.entry.name}/{record.variant} seed {record.seed}"
    walls = (("train", record.timings.train_s), ("predict", record.timings.predict_s))
    times = " ".join(f"{p} {duration(s)}" for p, s in walls if s)
    if record.score is not None:
        score = record.score
        verdict = f"{record.primary_metric}={interval(record.primary, score.low, score.high)}"
    else:
        verdict = f"FAILED ({record.reason})"
    note = " (recorded before; skipped)" if action == "skipped" else ""
    where = f" [node {record.node[:12]}]" if record.node and action != "skipped" else ""
    return f"{key:<36} {verdict:<40} {times}{where}{note}"


@click.command("run")
@click.argument("entries", nargs=-1)
@click.option("--baselines", is_flag=True, help="Every registered baseline entry.")
@click.option("--variant", "variants", multiple=True, help="Variant(s) [default: every one].")
@click.option("--seed", "seeds", multiple=True, type=int, help="Seed(s) [default: the profile's].")
@click.option(
    "--dataset", help="Dataset [default: each entry's task's embedded dataset (flood-synth...)]."
)
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="The held-out split to score on (Sen1Floods11 also holds out 'bolivia'); each "
    "split is a run and a board of its own.",
)
@_common
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="Where the runs run: one after the other on this machine, or each a Ray task on "
    "a cluster (pip install 'sarbench[cluster]'; docs/scale.md).",
)
@click.option(
    "--ray-address",
    metavar="HOST:PORT",
    help="The Ray cluster's head (--executor ray) [env RAY_ADDRESS; default: the cluster "
    "`ray start` runs on this machine].",
)
@click.option(
    "--parallel",
    default="auto",
    show_default=True,
    metavar="N|auto",
    help="Runs at a time on this machine (--executor local): auto is as many as it holds "
    "the profile's CPUs and memory (two on 2 cores under quick's one core each); 1 is one "
    "after the other.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON lines.")
@click.pass_obj
def run(
    settings: Settings,
    entries: tuple[str, ...],
    baselines: bool,
    variants: tuple[str, ...],
    seeds: tuple[int, ...],
    dataset: str | None,
    split: str,
    opts: RunOptions,
    executor: str,
    ray_address: str | None,
    parallel: str,
    as_json: bool,
) -> None:
    """Run ENTRIES (names in submissions/, or paths to entry files) and record each run.

    Runs every variant under the profile's seeds unless told otherwise. A variant that does
    not apply to the dataset (another task, or band roles it cannot use) is not run: it is
    listed as skipped, with the reason. A run that has a record already (same entry,
    variant, seed, dataset digest, image digest, conditions) is skipped; an unfinished one
    (a killed harness) is started again. With --executor ray each run is a Ray task on a
    node with the profile's resources, and the records come back to this machine's home.
    """
    from tqdm import tqdm

    from harness.conditions.profiles import get_profile
    from harness.entries import get_entry, load_entries
    from harness.runner.executor import Job, open_executor
    from harness.runner.plan import dataset_facts, make_plan

    chosen = [get_entry(settings.submissions_dir, name) for name in entries]
    if baselines:
        chosen += [e for e in load_entries(settings.submissions_dir).values() if e.baseline]
    from harness.runner.progress import PhaseLines

    lines = PhaseLines()
    runner = open_executor(
        executor,
        ray_address=ray_address,
        echo=lambda m: click.echo(m, err=True),
        progress=_echo_progress,
        phase_lines=lines,
        parallel=_parallel(parallel),
    )
    plan = make_plan(
        chosen,
        opts.profile,
        get_profile(settings.profiles_dir, opts.profile).seeds,
        facts=dataset_facts(settings),
        variants=variants,
        seeds=seeds,
        dataset=dataset,
    )
    for skip in plan.skipped:  # not applicable: nothing is run, recorded or published
        click.echo(skip.line(), err=as_json)
    plan.require_runs()
    job = Job(settings, plan, {e.name: e for e in chosen}, opts, split)
    failed, refused = 0, []
    with tqdm(total=len(plan), desc="runs", unit="run", disable=not sys.stderr.isatty()) as bar:
        for done in runner.run(job):
            lines.clear()
            bar.update()
            if isinstance(done, Refused):  # no record: running the plan again retries it
                refused.append(done)
                tqdm.write(done.line(), file=sys.stderr)
                continue
            failed += not done.record.ok
            if as_json:
                click.echo(json.dumps(done.record.to_json()))
            else:
                tqdm.write(summary_line(done.record, done.action), file=sys.stdout)
    if not as_json:
        skipped = sum(len(s.variants) for s in plan.skipped)
        left_out = f", {skipped} variant(s) skipped (see above)" if skipped else ""
        click.echo(
            f"\n{len(plan)} run(s), {failed} failed{left_out}; records under {settings.runs_dir}"
        )
    if refused:
        raise SarbenchError(
            f"{len(refused)} run(s) refused by the node they landed on, and not recorded "
            "(listed above). Fix what each names, then run the same command again: the "
            "recorded runs are skipped."
        )
    if failed:
        sys.exit(1)


def _parallel(text: str) -> int | str:
    """``--parallel``: ``auto`` or a whole number of at least 1."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise click.BadParameter(
            f"{text!r}: give a whole number >= 1, or auto", param_hint="--parallel"
        )
    return int(text)


@click.command("validate")
@click.argument("target")
@click.option(
    "--task",
    type=task_choice(),
    help="Task (for a folder or an image).",
)
@click.option("--variant", help="Variant [default: the entry's default].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--dataset",
    help="Only this dataset [default: every dataset of the entry's tasks known here].",
)
@_common
@click.pass_obj
def validate(
    settings: Settings,
    target: str,
    task: str | None,
    variant: str | None,
    seed: int,
    dataset: str | None,
    opts: RunOptions,
) -> None:
    """Run TARGET on the val split of every dataset it will be scored on, exactly as the
    harness would, and list what is wrong; end with the next step.

    TARGET is an entry file (``submissions/x.toml``), an entry name, a folder with a
    Dockerfile (an entry with train and predict), or an image name. Each dataset of the
    entry's tasks known here is checked (one a variant cannot use, or one not prepared
    here, is listed as skipped, with why). Training sees every split but val and test;
    predict sees the val inputs; the harness scores them against the val targets. Nothing
    is added to the official run records.
    """
    from harness.runner.validate import adhoc_entry, validate_all

    entry = adhoc_entry(settings, target, task)
    ctx = _context(settings, opts, allow_mismatch=True)
    try:
        validation = validate_all(
            ctx,
            entry,
            seed=seed,
            variant=variant,
            dataset=dataset,
            runs_dir=Path(
                tempfile.mkdtemp(prefix="validate-", dir=_mkdir(settings.home / "validate"))
            ),
        )
    finally:
        ctx.backend.close()
    click.echo(validation.render(target))
    if not validation.passed:
        sys.exit(1)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@click.command("reap")
@click.option("--docker-host", metavar="URL", help="Docker engine address.")
@click.pass_obj
def reap(settings: Settings, docker_host: str | None) -> None:
    """Kill and remove every SARBench container past its wall-clock deadline, or left by a
    harness that is gone (its run lock is free), and the unfinished run folders such a
    harness left (with their scratch filesystems). Every `sarbench run` does this first."""
    from harness.runtime.docker_backend import connect
    from harness.runtime.watchdog import reap_and_report

    client = connect(docker_host)
    try:
        reaped = reap_and_report(client, click.echo, settings.runs_dir)
    finally:
        client.close()
    click.echo(f"{len(reaped)} leftover(s) removed")
