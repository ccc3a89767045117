"""``sarbench submit`` and ``sarbench queue add|run|status|retry``: thin edges over
:mod:`harness.competition` (the whole path: ``docs/competing.md``).

Exit codes: 0 done; 1 ``submit``: the entry did not validate, ``queue run``: a submission
failed or met a harness error; 2 refused (a bundle, a quota, a configuration) or the
harness could not start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from harness.errors import printable
from harness.publish.cli import tracking_option
from harness.settings import Settings


def _say(message: str) -> None:
    click.echo(f"  {message}", err=True)


@click.command("submit")
@click.argument("target")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle to write (one file; send it to the maintainers).",
)
@click.option("--dataset", help="Validate on this dataset only [default: every one of its tasks].")
@click.option("--profile", default="quick", show_default=True, help="Profile to validate under.")
@click.option("--docker-host", metavar="URL", help="Docker engine address.")
@click.pass_obj
def submit(
    settings: Settings,
    target: str,
    out: Path,
    dataset: str | None,
    profile: str,
    docker_host: str | None,
) -> None:
    """Validate TARGET (an entry file or name), then write its submission bundle to OUT:
    the entry file, the validated image (docker save), the validation record and a
    manifest of digests. Nothing is written when validation fails."""
    from harness.competition.submit import SubmitError
    from harness.competition.submit import submit as do_submit
    from harness.numbers import size

    try:
        done = do_submit(
            settings, target, out, profile=profile, dataset=dataset, docker_host=docker_host,
            echo=_say,
        )  # fmt: skip
    except SubmitError as exc:
        click.echo(str(exc))
        sys.exit(1)
    click.echo(done.validation.render(target).rsplit("\n\n", 1)[0])
    click.echo(
        f"\nwrote {done.path} ({size(done.bytes)}; image {done.image_id[:19]})\n"
        f"bundle digest: {done.digest}\n"
        "Send the file to the maintainers, and the digest by another channel: "
        "`sarbench queue add FILE --expect-digest DIGEST` checks it (docs/competing.md)."
    )


def _queue_options(f: click.decorators.FC) -> click.decorators.FC:
    """``--db`` and ``--config``, shared by the queue commands."""
    f = click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Competition file [env SARBENCH_COMPETITION; default <home>/competition.toml].",
    )(f)
    return click.option(
        "--db",
        metavar="URL",
        help="Queue database [env SARBENCH_QUEUE_DB; default sqlite:///<home>/queue/queue.db].",
    )(f)


def _open(settings: Settings, db: str | None, config: Path | None) -> tuple[Any, Any]:
    from harness.competition.config import load_competition
    from harness.competition.store import QueueStore, default_url

    competition = load_competition(settings, config)
    return QueueStore(db or default_url(settings)), competition


@click.group("queue")
def queue() -> None:
    """The maintainers' submission queue: add bundles, run them, list them."""


@queue.command("add")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--benchmark", "benchmarks", multiple=True, help="Only this benchmark (repeat).")
@click.option("--expect-digest", metavar="SHA256", help="The bundle digest the team sent.")
@click.option("--docker-host", metavar="URL", help="Docker engine address.")
@_queue_options
@click.pass_obj
def add(
    settings: Settings,
    bundle: Path,
    benchmarks: tuple[str, ...],
    expect_digest: str | None,
    docker_host: str | None,
    db: str | None,
    config: Path | None,
) -> None:
    """Check BUNDLE (digests, image size, entry fields, team, quota), load its image
    offline and queue it on every benchmark it runs on (or --benchmark)."""
    from harness.competition.queue import add_bundle
    from harness.competition.quotas import usage

    store, competition = _open(settings, db, config)
    try:
        items = add_bundle(
            settings, store, competition, bundle, benchmarks=benchmarks,
            expect_digest=expect_digest, docker_host=docker_host, echo=_say,
        )  # fmt: skip
        with store.engine.connect() as con:
            for item in items:
                used = usage(con, item.team, competition.benchmark(item.benchmark))
                click.echo(
                    printable(
                        f"queued {item.submission} on {item.benchmark} (item {item.id}); "
                        f"team {item.team!r} {used.line()}"
                    )
                )
    finally:
        store.close()


@queue.command("run")
@click.option("--docker-host", metavar="URL", help="Docker engine address.")
@tracking_option
@click.option(
    "--allow-public-test",
    is_flag=True,
    help="Run even where a benchmark's prepared test is not its private test (the demo "
    "or a public test): its boards then say so.",
)
@click.option("--limit", type=click.IntRange(1), help="Run at most this many submissions.")
@_queue_options
@click.pass_obj
def run(
    settings: Settings,
    docker_host: str | None,
    tracking_uri: str | None,
    allow_public_test: bool,
    limit: int | None,
    db: str | None,
    config: Path | None,
) -> None:
    """Run every pending submission under its benchmark's official profile on the private
    test, publish the records to MLflow and write each result file. A submission a killed
    `queue run` left running is taken over and finished once."""
    from harness.competition.queue import RunSetup, run_queue

    store, competition = _open(settings, db, config)
    setup = RunSetup(docker_host, tracking_uri, allow_public_test, limit)
    try:
        summary = run_queue(settings, store, competition, setup, echo=_say)
    finally:
        store.close()
    for item, state in summary.ended:
        click.echo(printable(f"{item.submission} on {item.benchmark}: {state}"))
    counts = ", ".join(f"{summary.count(s)} {s}" for s in ("published", "failed", "error"))
    click.echo(f"{len(summary.ended)} submission(s) run: {counts}")
    if summary.count("failed") or summary.count("error"):
        sys.exit(1)


@queue.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_queue_options
@click.pass_obj
def status(settings: Settings, as_json: bool, db: str | None, config: Path | None) -> None:
    """Every submission with its state, attempts and reason, and its result file."""
    store, _competition = _open(settings, db, config)
    try:
        items = store.items()
    finally:
        store.close()
    if as_json:
        for item in items:
            doc = {k: v for k, v in vars(item).items() if k not in ("owner", "heartbeat")}
            click.echo(json.dumps(doc | {"run_ids": item.runs}))
        return
    if not items:
        click.echo("the queue is empty")
    for item in items:
        reason = item.reason.splitlines()[0] if item.reason else ""
        click.echo(
            printable(
                f"{item.id:>4} {item.submission:<28} {item.benchmark:<14} {item.team:<20} "
                f"{item.state:<9} attempts {item.attempts}  {reason}"
            )
        )
        if item.result_file:
            click.echo(printable(f"      result: {item.result_file}"))


@queue.command("retry")
@click.argument("item_id", type=int)
@_queue_options
@click.pass_obj
def retry(settings: Settings, item_id: int, db: str | None, config: Path | None) -> None:
    """Put an ``error`` submission (a harness failure) back in the queue, attempts reset."""
    store, _competition = _open(settings, db, config)
    try:
        item = store.retry(item_id)
    finally:
        store.close()
    click.echo(printable(f"{item.submission} on {item.benchmark}: pending again"))
