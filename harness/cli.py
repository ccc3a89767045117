"""The `sarbench` command line. A thin edge: it parses, calls the library, prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.errors import SarbenchError, VerificationError
from harness.leaderboard.cli import leaderboard
from harness.publish.cli import publish
from harness.runner.cli import reap, run, validate
from harness.runtime.cli import images
from harness.scoring.cli import score
from harness.settings import Settings
from harness.tasks import task_choice


class _Group(click.Group):
    """Turns the harness's own errors into a message and an exit code, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VerificationError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except SarbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sarbench")
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
    help="Folder of committed manifests [env SARBENCH_DATASETS_DIR; default the repo's datasets/].",
)
@click.pass_context
def main(ctx: click.Context, home: Path | None, data_root: Path | None, datasets_dir: Path | None):
    """SARBench: frozen Sentinel-1 SAR benchmarks, run under identical conditions."""
    ctx.obj = Settings.load(home=home, data_root=data_root, manifests_dir=datasets_dir)


@main.group()
def datasets() -> None:
    """Prepare, import, verify and inspect frozen datasets."""


def _progress() -> bool:
    return sys.stderr.isatty()


@datasets.command("list")
@click.pass_obj
def datasets_list(settings: Settings) -> None:
    """Every dataset: embedded generators and frozen manifests."""
    from harness.datasets import ops
    from harness.datasets.registry import known_names

    rows = [ops.describe(settings, n) for n in known_names(settings)]
    click.echo(f"{'name':<16} {'task':<6} {'kind':<10} {'splits':<46} {'prepared':<8} digest")
    for r in rows:
        splits = " ".join(f"{k}={v}" for k, v in r.get("splits", {}).items()) or "(not frozen)"
        digest = r.get("digest", "")[7:19]
        prepared = "yes" if r["prepared"] else "no"
        click.echo(
            f"{r['name']:<16} {r['task']:<6} {r['kind']:<10} {splits:<46} {prepared:<8} {digest}"
        )
    click.echo(f"\ndata root: {settings.data_root}")


@datasets.command("prepare")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every embedded dataset.")
@click.option("--force", is_flag=True, help="Regenerate even if the data verifies.")
@click.pass_obj
def datasets_prepare(settings: Settings, names: tuple[str, ...], all_: bool, force: bool) -> None:
    """Generate embedded datasets and check them against their committed manifests.

    The first run without a manifest freezes the dataset (writes datasets/NAME/manifest.json
    and its card); every later run must reproduce that digest exactly.
    """
    from harness.datasets import ops
    from harness.datasets.registry import GENERATORS

    chosen = list(GENERATORS) if all_ else list(names)
    if not chosen:
        raise click.UsageError("name one or more datasets, or pass --all")
    for name in chosen:
        out = ops.prepare(settings, name, force=force, progress=_progress())
        _report(out)


def _report(out: Any) -> None:
    words = {
        "frozen": "frozen (manifest and card written)",
        "prepared": "prepared; reproduces the committed digest",
        "skipped": "already prepared and verified",
    }
    counts = " ".join(f"{k}={v}" for k, v in out.counts.items())
    click.echo(f"{out.name}: {words[out.status]}  {out.digest}  [{counts}]  -> {out.path}")


@datasets.command("import")
@click.argument("kind")
@click.argument("source_dir", type=click.Path(path_type=Path))
@click.option("--name", help="Dataset name (default: the importer's or the folder's name).")
@click.option("--task", type=task_choice(), help="Task of a folder import.")
@click.pass_obj
def datasets_import(
    settings: Settings, kind: str, source_dir: Path, name: str | None, task: str | None
) -> None:
    """Import real data: KIND is `sen1floods11` or `folder`.

    The first import freezes the dataset (manifest and card); an import under a frozen name
    must reproduce its digest, else nothing is replaced and the differences are listed.
    """
    from harness.datasets import ops

    out = ops.import_dataset(settings, kind, source_dir, name=name, task=task, progress=_progress())
    _report(out)


@datasets.command("verify")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every frozen dataset that is prepared.")
@click.pass_obj
def datasets_verify(settings: Settings, names: tuple[str, ...], all_: bool) -> None:
    """Check data files against the committed manifest; list every changed, missing or
    extra file. Exit code 1 on any difference."""
    from harness.datasets import ops
    from harness.datasets.registry import frozen_names

    chosen = list(names)
    if all_:
        chosen = [n for n in frozen_names(settings) if settings.dataset_dir(n).is_dir()]
    if not chosen:
        raise click.UsageError("name one or more datasets, or pass --all")
    failed: list[VerificationError] = []
    for name in chosen:
        try:
            m = ops.verify(settings, name, progress=_progress())
            click.echo(f"{name}: ok  {m.digest}  ({len(m.files)} files)")
        except VerificationError as exc:
            click.echo(f"{name}: FAILED", err=True)
            failed.append(exc)
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise VerificationError(
            ", ".join(f.dataset for f in failed), [p for f in failed for p in f.problems]
        )


@datasets.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def datasets_show(settings: Settings, name: str, as_json: bool) -> None:
    """Details of one dataset: task, bands, splits, digest, source, where its files are."""
    from harness.datasets import ops

    info = ops.describe(settings, name)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key in ("name", "kind", "task", "digest", "bands", "splits", "files", "prepared"):
        if key in info:
            click.echo(f"{key:<9} {info[key]}")
    click.echo(f"{'manifest':<9} {info['manifest'] or '(none yet)'}")
    click.echo(f"{'data':<9} {info['data_dir']}")
    src = info.get("source") or {}
    if src:
        click.echo("source   " + ", ".join(f"{k}={v}" for k, v in src.items() if k != "params"))


@datasets.command("card")
@click.argument("name")
@click.pass_obj
def datasets_card(settings: Settings, name: str) -> None:
    """Rewrite the dataset card and quicklooks of a prepared, verified dataset."""
    from harness.datasets import ops
    from harness.datasets.card import write_card

    manifest = ops.verify(settings, name, progress=_progress())
    click.echo(f"wrote {write_card(settings, manifest)}")


main.add_command(score)
main.add_command(images)
main.add_command(run)
main.add_command(validate)
main.add_command(reap)
main.add_command(publish)
main.add_command(leaderboard)


@main.command()
@click.option(
    "--backend",
    type=click.Choice(["docker", "local"]),
    help="Force a backend [default: docker when an engine answers, else local with a warning].",
)
@click.option("--profile", default="quick", show_default=True, help="Conditions profile.")
@click.option(
    "--tracking-uri",
    metavar="URI",
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI [default sqlite:///<home>/mlflow/mlflow.db].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the site goes [default <home>/site].",
)
@click.option("--docker-host", metavar="URL", help="Docker engine address.")
@click.pass_obj
def demo(
    settings: Settings,
    backend: str | None,
    profile: str,
    tracking_uri: str | None,
    out: Path | None,
    docker_host: str | None,
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
    )
    if result.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
