"""``sarbench publish [RUN_DIR...]``: a click command for the main CLI to register.

A thin edge: it resolves the tracking URI, then calls :mod:`harness.publish.mlflow_store`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.errors import SarbenchError, printable
from harness.publish.errors import RecordError, StoreBusyError, TrackingError
from harness.publish.locking import DEFAULT_WAIT_S
from harness.record import run_folders
from harness.settings import Settings

TRACKING_HELP = (
    "MLflow tracking URI [env MLFLOW_TRACKING_URI; default sqlite:///<home>/mlflow/mlflow.db]."
)


def tracking_option(fn: click.decorators.FC) -> click.decorators.FC:
    """``--tracking-uri`` with ``$MLFLOW_TRACKING_URI`` as fallback (shared with leaderboard)."""
    return click.option(
        "--tracking-uri", metavar="URI", envvar="MLFLOW_TRACKING_URI", help=TRACKING_HELP
    )(fn)


def _echo_links(links: dict[str, str], uri: str) -> None:
    """Print where each experiment's ranking view opens in MLflow's UI."""
    if not links:
        return
    where = (
        ""
        if uri.startswith(("http://", "https://"))
        else (f" (after: mlflow ui --backend-store-uri {uri})")
    )
    click.echo(f"in MLflow's UI{where}:")
    for name, link in links.items():
        click.echo(f"  {printable(name)}: {link}")


@click.command("publish")
@tracking_option
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0),
    default=DEFAULT_WAIT_S,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for a store locked by another process before giving up.",
)
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def publish(
    settings: Settings, tracking_uri: str | None, wait_s: float, run_dirs: tuple[Path, ...]
) -> None:
    """Publish run records to MLflow: one run per record, one experiment per task and
    dataset (sarbench/TASK/DATASET), the runs of one board nested under a board run.

    With no RUN_DIR, every run folder under <home>/runs is published. A record already
    published (same entry, variant, seed, dataset digest, image digest, conditions and
    backend) is left as it is, so publishing again is safe; one rescored since
    (sarbench rescore) gets its new score. Each record is checked before
    anything of it is written: a record that cannot be published (a name MLflow refuses, a
    number that is not one, a bad loss-curve step...) is skipped and reported at the end
    with every problem, the others are published, and the exit code is 2. A store locked
    by another process is waited for (--wait), then the command stops with what to do.
    """
    from tqdm import tqdm

    from harness.publish.mlflow_store import Publisher
    from harness.publish.mlflow_store import tracking_uri as resolve

    dirs = list(run_dirs) or [f.path for f in run_folders(settings.runs_dir)]
    if not dirs:
        raise SarbenchError(
            f"no run folders under {settings.runs_dir}: run entries first, or name run folders"
        )
    uri = resolve(settings, tracking_uri)
    bar = tqdm(dirs, unit="run", disable=not sys.stderr.isatty())

    def say(message: str) -> None:
        tqdm.write(printable(message), file=sys.stderr)

    publisher = Publisher(settings, uri, wait_s=wait_s, say=say)
    counts = {"created": 0, "exists": 0, "updated": 0, "replaced": 0}
    refused: list[tuple[Path, list[str]]] = []
    for run_dir in bar:
        bar.set_postfix_str(printable(run_dir.name[:40]))
        try:
            result = publisher.publish(run_dir)
        except StoreBusyError as exc:  # the next records would wait in vain too
            bar.close()
            done = sum(counts.values())
            raise SarbenchError(
                f"{exc}\n{done} record(s) published before this, {len(refused)} skipped, "
                f"{len(dirs) - done - len(refused)} not tried."
            ) from None
        except RecordError as exc:  # a bad record does not stop the others; listed at end
            refused.append((run_dir, exc.problems))
            continue
        except TrackingError as exc:  # the store refused this record; the others may go
            refused.append((run_dir, [str(exc)]))
            continue
        except Exception as exc:  # never let one record stop the others
            refused.append((run_dir, [f"unexpected {type(exc).__name__}: {exc} (please report)"]))
            continue
        counts[result.action] += 1
        for note in result.notes:
            say(f"{result.run_id}: {note}")
        if bar.disable:  # no progress bar: one line per record instead
            click.echo(printable(f"{result.action:<8} {result.run_id} -> {result.experiment}"))
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "none"
    click.echo(f"published {len(dirs) - len(refused)} record(s) to {uri}: {summary}")
    _echo_links(publisher.links(), uri)
    if refused:
        lines = []
        for run_dir, problems in refused:
            lines.append(f"  {printable(str(run_dir))}")
            lines += [f"    - {printable(p)}" for p in problems]
        raise SarbenchError(
            f"{len(refused)} record(s) not published (skipped; the others were published):\n"
            + "\n".join(lines)
        )
