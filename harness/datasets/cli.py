"""`sarbench datasets ...`: prepare, import, verify, show, card, and the test secret."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from harness.errors import VerificationError
from harness.settings import Settings
from harness.tasks import task_choice

TEST_WORDS = {
    "demo": "demo test (public demo test seed: for make demo and CI, not for claims)",
    "private": "private test (from the maintainers' test secret: the official one)",
    "public": "test labels published with the source",
}


@click.group()
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
        prepared = r.get("prepared_test", "yes") if r["prepared"] else "no"
        click.echo(
            f"{r['name']:<16} {r['task']:<6} {r['kind']:<10} {splits:<46} {prepared:<8} {digest}"
        )
    click.echo(f"\ndata root: {settings.data_root}")


@datasets.command("prepare")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every embedded dataset.")
@click.option("--force", is_flag=True, help="Regenerate even if the data verifies.")
@click.option(
    "--test",
    "test",
    type=click.Choice(["demo", "private"]),
    help="Which test split: the public demo test, or the private (official) one made from "
    "the test secret [default: private when a secret is available, else demo].",
)
@click.option(
    "--refreeze",
    is_flag=True,
    help="Maintainers: write a new manifest and card from what is made now (after a "
    "generator change or a secret rotation), recording the private test's digest when the "
    "secret is available.",
)
@click.pass_obj
def datasets_prepare(
    settings: Settings,
    names: tuple[str, ...],
    all_: bool,
    force: bool,
    test: str | None,
    refreeze: bool,
) -> None:
    """Generate embedded datasets and check them against their committed manifests.

    The manifests of the embedded datasets ship with SARBench; every run must reproduce
    that digest exactly: the committed one with the demo test, or the committed private
    test digest with the private test. Freezing (no manifest yet, or --refreeze) writes
    the manifest and card to the work folder (<home>/datasets/NAME/), where they take
    precedence; maintainers update the shipped ones with --datasets-dir datasets, from the
    repository.
    """
    from harness.datasets import ops
    from harness.datasets.registry import GENERATORS

    chosen = list(GENERATORS) if all_ else list(names)
    if not chosen:
        raise click.UsageError("name one or more datasets, or pass --all")
    for name in chosen:
        out = ops.prepare(
            settings,
            name,
            force=force,
            progress=_progress(),
            test=test,  # type: ignore[arg-type]
            refreeze=refreeze,
        )
        _report(out)


SNAPS_SHOWN = 20
"""Snapped files listed by an import's report on the terminal (all are in the report file)."""


def _report(out: Any) -> None:
    words = {
        "frozen": "frozen (manifest and card written)",
        "prepared": "prepared; reproduces the committed digest",
        "skipped": "already prepared and verified",
    }
    counts = " ".join(f"{k}={v}" for k, v in out.counts.items())
    click.echo(f"{out.name}: {words[out.status]}  {out.digest}  [{counts}]  -> {out.path}")
    click.echo(f"  test: {TEST_WORDS.get(out.test_kind, out.test_kind)}")
    snapped = getattr(out, "snapped", ())
    if snapped:
        from harness.geo import GRID_TOLERANCE

        largest = max(s.offset for s in snapped)
        click.echo(
            f"  snapped: {len(snapped)} file(s) written onto their input's exact grid (their "
            f"transforms differed by at most {largest:.2g} pixels; the tolerance is "
            f"{GRID_TOLERANCE:g} of a pixel):"
        )
        for snap in snapped[:SNAPS_SHOWN]:
            click.echo(f"    {snap}")
        if len(snapped) > SNAPS_SHOWN:
            click.echo(f"    ... and {len(snapped) - SNAPS_SHOWN} more")
    elif getattr(out, "report", None) is not None:
        click.echo("  snapped: none (every target and mask is on its input's exact grid)")
    if getattr(out, "report", None) is not None:
        click.echo(f"  report: {out.report}")
    for note in out.notes:
        click.echo(f"  note: {note}", err=True)


def _classes(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        value, sep, meaning = item.partition("=")
        if not sep or not value.strip() or not meaning.strip():
            raise click.BadParameter(f"{item!r}: expected VALUE=MEANING, e.g. 1=water")
        out[value.strip()] = meaning.strip()
    return out


@datasets.command("import")
@click.argument("kind")
@click.argument("source_dir", type=click.Path(path_type=Path))
@click.option("--name", help="Dataset name (default: the importer's or the folder's name).")
@click.option("--task", type=task_choice(), help="Task of a folder import.")
@click.option("--refreeze", is_flag=True, help="Write a new manifest instead of checking.")
@click.option(
    "--parcels",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Folder import: a vector file (GeoPackage, GeoJSON, shapefile) of the polygons to "
    "score, e.g. farm parcels for ndvi; pixels whose centre is outside every polygon get "
    "valid mask 0.",
)
@click.option(
    "--class",
    "classes",
    multiple=True,
    metavar="VALUE=MEANING",
    help="Folder import: what a target value means (repeatable), e.g. --class '1=flooded'.",
)
@click.option("--licence", "licence", help="Folder import: the data's licence, for its card.")
@click.option("--citation", help="Folder import: how to cite the data, for its card.")
@click.option(
    "--band-roles",
    help="Folder import: each input band's role, comma-separated: pre,post or VV,VH.",
)
@click.pass_obj
def datasets_import(
    settings: Settings,
    kind: str,
    source_dir: Path,
    name: str | None,
    task: str | None,
    refreeze: bool,
    parcels: Path | None,
    classes: tuple[str, ...],
    licence: str | None,
    citation: str | None,
    band_roles: str | None,
) -> None:
    """Import real data: KIND is `sen1floods11` or `folder`.

    The first import freezes the dataset: its manifest and card go to the work folder
    (<home>/datasets/NAME/, or --datasets-dir), never into the installed project. An import
    under a frozen name must reproduce its digest, else nothing is replaced and the
    differences are listed. Each import writes import-report.json beside the manifest: the
    targets and masks written onto their input's exact grid, and by how much.

    A folder import may state what the data is in SOURCE_DIR/dataset.toml (description,
    source, licence, citation, [classes], band_roles) or with the flags, which win.
    """
    from harness.datasets import ops

    about = {"classes": _classes(classes), "licence": licence, "citation": citation}
    roles = tuple(r.strip() for r in band_roles.split(",")) if band_roles else None
    out = ops.import_dataset(
        settings,
        kind,
        source_dir,
        name=name,
        task=task,
        progress=_progress(),
        refreeze=refreeze,
        parcels=parcels,
        about=about,
        band_roles=roles,
    )
    _report(out)


@datasets.command("verify")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every frozen dataset that is prepared.")
@click.pass_obj
def datasets_verify(settings: Settings, names: tuple[str, ...], all_: bool) -> None:
    """Check data files against the committed manifest; list every changed, missing or
    extra file. Exit code 1 on any difference. A private test verifies against the
    committed private test digest."""
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
            click.echo(f"{name}: ok  {m.digest}  ({len(m.files)} files, {m.test_kind} test)")
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
    for key in (
        "name",
        "kind",
        "task",
        "digest",
        "bands",
        "splits",
        "groups",
        "files",
        "test",
        "private_test",
        "prepared",
        "prepared_test",
    ):
        if key in info:
            click.echo(f"{key:<13} {info[key]}")
    click.echo(f"{'manifest':<13} {info['manifest'] or '(none yet)'}")
    click.echo(f"{'data':<13} {info['data_dir']}")
    src = info.get("source") or {}
    if src:
        click.echo(
            f"{'source':<13} "
            + ", ".join(f"{k}={v}" for k, v in src.items() if k not in ("params", "about"))
        )


@datasets.command("card")
@click.argument("name")
@click.pass_obj
def datasets_card(settings: Settings, name: str) -> None:
    """Rewrite the dataset card and quicklooks of a prepared, verified dataset (no test
    chip is read or shown, so either test may be prepared)."""
    from harness.datasets import ops
    from harness.datasets.card import write_card

    ops.verify(settings, name, progress=_progress())
    committed = ops.require_manifest(settings, name)
    click.echo(f"wrote {write_card(settings, committed)}")


@datasets.group("secret")
def secret() -> None:
    """The maintainers' test secret, from which the private test splits are made.

    It is read from $SARBENCH_TEST_SECRET, else from <home>/secrets/test-secret (mode
    0600). Keep it out of git and backups others can read; see docs/datasets.md.
    """


@secret.command("new")
@click.option(
    "--rotate",
    is_flag=True,
    help="Replace an existing secret (kept beside it as test-secret.<UTC time>.old).",
)
@click.pass_obj
def secret_new(settings: Settings, rotate: bool) -> None:
    """Write a fresh random test secret to <home>/secrets/test-secret (mode 0600)."""
    import os

    from harness.datasets.secret import ENV_VAR, new_secret

    made = new_secret(settings, rotate=rotate)
    click.echo(f"wrote a new test secret to {made.path} (mode 0600)")
    if made.old is not None:
        click.echo(f"the old secret is kept as {made.old}")
        click.echo(
            "the private test splits change with the secret, hence their digests and the "
            "official board: refreeze each generated dataset, from the repository "
            "(`sarbench --datasets-dir datasets datasets prepare --all --refreeze`), commit "
            "datasets/, and rerun the official runs"
        )
    else:
        click.echo(
            "record the private tests' digests, from the repository, with `sarbench "
            "--datasets-dir datasets datasets prepare --all --refreeze`, then commit datasets/"
        )
    if os.environ.get(ENV_VAR, "").strip():
        click.echo(f"note: ${ENV_VAR} is set and takes precedence over the file", err=True)


@secret.command("status")
@click.pass_obj
def secret_status(settings: Settings) -> None:
    """Where the test secret is read from, and whether it is usable (never its value)."""
    from harness.datasets.secret import load_secret, secret_path

    found = load_secret(settings)
    if found is None:
        click.echo(
            f"no test secret (neither $SARBENCH_TEST_SECRET nor {secret_path(settings)}): "
            "prepare makes the demo test"
        )
    else:
        click.echo(f"test secret: {found.origin} (usable): prepare makes the private test")
