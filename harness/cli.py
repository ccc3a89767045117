"""The `sarbench` command line. A thin edge: it parses, calls the library, prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.competition.cli import queue, submit
from harness.datasets.cli import datasets
from harness.errors import SarbenchError, VerificationError
from harness.leaderboard.cli import leaderboard
from harness.publish.cli import publish, tracking_option
from harness.runner.cli import reap, run, validate
from harness.runner.executor import EXECUTORS
from harness.runtime.cli import images
from harness.scoring import kernel as scoring_kernel
from harness.scoring.cli import score
from harness.settings import Settings


class _Group(click.Group):
    """Turns the harness's own errors into a message and an exit code, not a traceback;
    every error, click's usage errors too, is printed with the one prefix ``error:``."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as exc:
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                click.echo(exc.ctx.get_usage(), err=True)
                click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VerificationError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except SarbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


def _print_version(ctx: click.Context, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"sarbench {__version__}")
    try:
        click.echo(f"scoring: {scoring_kernel.describe()}")
    except SarbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx, value),
    help="Show the version and the scoring path (compiled kernel or numpy), and exit.",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    help="Work folder [env SARBENCH_HOME; default ~/.local/share/sarbench].",
)
@click.option(
    "--data-root",
    type=click.Path(path_type=Path),
    help="Where dataset files live [env SARBENCH_DATA_ROOT; default <home>/data].",
)
@click.option(
    "--datasets-dir",
    type=click.Path(path_type=Path),
    help="Folder of dataset manifests and cards that freezes and imports write, looked up "
    "before the ones shipped with SARBench [env SARBENCH_DATASETS_DIR; default "
    "<home>/datasets].",
)
@click.pass_context
def main(ctx: click.Context, home: Path | None, data_root: Path | None, datasets_dir: Path | None):
    """SARBench: frozen Sentinel-1 SAR benchmarks, run under identical conditions."""
    ctx.obj = Settings.load(home=home, data_root=data_root, manifests_dir=datasets_dir)


main.add_command(datasets)
main.add_command(score)
main.add_command(images)
main.add_command(run)
main.add_command(validate)
main.add_command(reap)
main.add_command(publish)
main.add_command(leaderboard)
main.add_command(submit)
main.add_command(queue)


@main.command("new")
@click.argument("name")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    type=click.Choice(["flood", "ndvi"]),
    help="The task(s) it does [default: both, as the template's code does].",
)
@click.option("--team", help="The team answerable for it [default: your user name].")
@click.option("--contact", help="How to reach the team [default: user@host].")
@click.option(
    "--dir",
    "where",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write it [default: the submissions folder, env SARBENCH_SUBMISSIONS_DIR].",
)
@click.pass_obj
def new(
    settings: Settings,
    name: str,
    tasks: tuple[str, ...],
    team: str | None,
    contact: str | None,
    where: Path | None,
) -> None:
    """Write a new entry NAME from the template: NAME.toml (every field filled) and the
    folder NAME/ with its code; it validates as it is."""
    from harness.scaffold import new_entry

    done = new_entry(
        where or settings.submissions_dir, name, tasks or ("flood", "ndvi"), team=team,
        contact=contact,
    )  # fmt: skip
    click.echo(f"wrote {done.entry_file} and {done.folder}/ (the code: entry.py)")
    target = name if where is None else str(done.entry_file)
    click.echo(
        f"next: `sarbench validate {target}` runs it on the val split of each dataset it "
        "will be scored on; then change the model in entry.py (docs/competing.md)"
    )


@main.command("rescore")
@click.pass_obj
def rescore(settings: Settings) -> None:
    """Score the kept predictions of every recorded run again where another scorer version
    scored them (after an upgrade of SARBench that changed scoring). No container runs;
    each record file stays as it is, the new score is a file beside it. Exit 1 when a run
    that needed it could not be rescored (each is named, with why)."""
    from harness import scoring
    from harness.numbers import fmt
    from harness.scoring.rescore import rescore_runs

    report = rescore_runs(settings, progress=lambda m: click.echo(f"  {m}", err=True))
    for done in report.rescored:
        r = done.record
        was = (r.rescored or {}).get("from") or "unversioned"
        click.echo(
            f"{r.run_id}: {r.primary_metric} {fmt(done.before)} -> {fmt(r.primary)} "
            f"(scorer {was} -> {r.scorer})"
        )
    for left in report.not_rescored:
        click.echo(f"{left.run_id}: not rescored: {left.reason}", err=True)
    click.echo(
        f"{len(report.rescored)} run(s) rescored, {report.current} already scored by scorer "
        f"{scoring.SCORER_VERSION}, {len(report.not_rescored)} could not be"
    )
    if report.not_rescored:
        sys.exit(1)


@main.command()
@click.option(
    "--backend",
    type=click.Choice(["docker", "local"]),
    help="Force a backend [default: docker when an engine answers, else local with a warning].",
)
@click.option("--profile", default="quick", show_default=True, help="Conditions profile.")
@tracking_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the site goes [default <home>/site].",
)
@click.option("--docker-host", metavar="URL", help="Docker engine address.")
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="Run on this machine, or each run a Ray task on a cluster (docs/scale.md).",
)
@click.option(
    "--ray-address",
    metavar="HOST:PORT",
    help="The Ray cluster's head (--executor ray) [env RAY_ADDRESS].",
)
@click.pass_obj
def demo(
    settings: Settings,
    backend: str | None,
    profile: str,
    tracking_uri: str | None,
    out: Path | None,
    docker_host: str | None,
    executor: str,
    ray_address: str | None,
) -> None:
    """The main job: prepare the embedded datasets, run every baseline (quick profile),
    publish to MLflow and build the leaderboard. Rerunning skips what is done."""
    from harness.demo import run_demo

    result = run_demo(
        settings,
        echo=click.echo,
        backend=backend,
        profile=profile,
        tracking_uri=tracking_uri,
        out=out,
        docker_host=docker_host,
        executor=executor,
        ray_address=ray_address,
    )
    if result.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
