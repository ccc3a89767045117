"""``sarbench leaderboard build``: a click group for the main CLI to register.

A thin edge: it resolves the tracking URI and output folder, then calls
:func:`harness.leaderboard.site.build_site`.
"""

from __future__ import annotations

from pathlib import Path

import click

from harness.publish.cli import tracking_option
from harness.settings import Settings


@click.group()
def leaderboard() -> None:
    """Build the static leaderboard site from MLflow."""


@leaderboard.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: <home>/site]. Replaced only if it holds a site built here.",
)
@tracking_option
@click.option(
    "--resamples",
    type=click.IntRange(100),
    default=10_000,
    show_default=True,
    help="Bootstrap resamples and permutations for intervals and paired tests.",
)
@click.pass_obj
def build(settings: Settings, out: Path | None, tracking_uri: str | None, resamples: int) -> None:
    """Read every published run from MLflow and write a static site that works offline
    (open OUT/index.html in a browser; no server, no network)."""
    from harness.leaderboard.site import build_site
    from harness.publish.mlflow_store import connect
    from harness.publish.mlflow_store import tracking_uri as resolve

    uri = resolve(settings, tracking_uri)
    client = connect(uri, say=lambda message: click.echo(message, err=True))
    summary = build_site(client, out or settings.home / "site", n_resamples=resamples)
    click.echo(
        f"built {summary.pages} page(s) for {summary.boards} board(s) from {summary.runs} "
        f"run(s) in {uri}\nopen {summary.out / 'index.html'}"
    )
