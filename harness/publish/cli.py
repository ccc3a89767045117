"""``sarbench publish [RUN_DIR...]``: a click command for the main CLI to register.

A thin edge: it resolves the tracking URI, then calls :mod:`harness.publish.mlflow_store`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.errors import SarbenchError
from harness.publish.errors import RecordError
from harness.publish.records import run_folders
from harness.settings import Settings

TRACKING_HELP = (
    "MLflow tracking URI [env MLFLOW_TRACKING_URI; default sqlite:///<home>/mlflow/mlflow.db]."
)


def tracking_option(fn: click.decorators.FC) -> click.decorators.FC:
    """``--tracking-uri`` with ``$MLFLOW_TRACKING_URI`` as fallback (shared with leaderboard)."""
    return click.option(
        "--tracking-uri", metavar="URI", envvar="MLFLOW_TRACKING_URI", help=TRACKING_HELP
    )(fn)


@click.command("publish")
@tracking_option
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def publish(settings: Settings, tracking_uri: str | None, run_dirs: tuple[Path, ...]) -> None:
    """Publish run records to MLflow: one run per record, one experiment per task and
    dataset (sarbench/TASK/DATASET).

    With no RUN_DIR, every run folder under <home>/runs is published. A record already
    published (same entry, variant, seed, dataset digest, image digest, conditions and
    backend) is left as it is, so publishing again is safe. A record that cannot be read is
    reported at the end (exit code 2) without stopping the others.
    """
    from tqdm import tqdm

    from harness.publish.mlflow_store import Publisher
    from harness.publish.mlflow_store import tracking_uri as resolve

    dirs = list(run_dirs) or list(run_folders(settings.runs_dir))
    if not dirs:
        raise SarbenchError(
            f"no run folders under {settings.runs_dir}: run entries first, or name run folders"
        )
    uri = resolve(settings, tracking_uri)
    publisher = Publisher(settings, uri)
    counts = {"created": 0, "exists": 0, "replaced": 0}
    bar = tqdm(dirs, unit="run", disable=not sys.stderr.isatty())
    refused: list[RecordError] = []
    for run_dir in bar:
        bar.set_postfix_str(run_dir.name[:40])
        try:
            result = publisher.publish(run_dir)
        except RecordError as exc:  # a bad record does not stop the others; listed at the end
            refused.append(exc)
            continue
        counts[result.action] += 1
        for note in result.notes:
            tqdm.write(f"{result.run_id}: {note}", file=sys.stderr)
        if bar.disable:  # no progress bar: one line per record instead
            click.echo(f"{result.action:<8} {result.run_id} -> {result.experiment}")
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "none"
    click.echo(f"published {len(dirs) - len(refused)} record(s) to {uri}: {summary}")
    if refused:
        lines = "\n".join(f"  - {exc}" for exc in refused)
        raise SarbenchError(f"{len(refused)} record(s) not published:\n{lines}")
