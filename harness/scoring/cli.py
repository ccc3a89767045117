"""`sarbench score PRED_DIR --dataset NAME --split SPLIT [--json]` (SPLIT: val, test, or
another split of the dataset with labels, such as Sen1Floods11's `bolivia`).

Exit codes: 0 scored; 1 the predictions break the contract (the problems are listed on
stderr: the first 50, then how many more); 2 any other error the harness can explain (unknown dataset, dataset not
prepared, split without labels...).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.errors import SarbenchError, printable
from harness.numbers import fmt
from harness.scoring.metrics import rank_key
from harness.settings import Settings

if TYPE_CHECKING:
    from harness.scoring.score import ScoreResult

_WORST_SHOWN = 5


def _units(unit: str, n: int) -> str:
    if unit == "group":
        return f"{n} independence groups (chips of one group resampled together)"
    return f"{n} chips (the dataset names no independence groups)"


def render(result: ScoreResult) -> str:
    """The human-readable report: pooled metrics, the primary metric's interval, and the
    chips that did worst on the primary metric; numbers as the site shows them
    (:func:`harness.numbers.fmt`; ``--json`` has them in full)."""
    iv = result.interval
    where = f"{result.dataset} / {result.split}" if result.dataset else result.split
    lines = [
        f"{where} ({result.task}): {len(result.chip_ids)} chips, predictions in "
        f"{result.predictions}",
        "",
        f"{'metric':<10} {'value':>12}   {f'{iv.level:.0%} CI':<26} better",
    ]
    note = result.interval_note
    for name, value in result.metrics.items():
        star = " *" if name == result.primary_metric else ""
        ci = ""
        if name == result.primary_metric:
            ci = "n/a (see below)" if note else f"[{fmt(iv.low)}, {fmt(iv.high)}]"
        lines.append(f"{name + star:<10} {fmt(value):>12}   {ci:<26} {result.directions[name]}")
    if note:
        how = f"* primary metric. CI {note} (no bootstrap interval is shown)."
    else:
        how = (
            f"* primary metric. CI: percentile bootstrap over {_units(iv.unit, iv.n_units)}, "
            f"{iv.n_resamples} resamples, seed {iv.seed}"
            + (f" ({iv.n_undefined} resamples undefined, left out)" if iv.n_undefined else "")
            + "."
        )
    lines += ["", how, "Every metric pools all valid pixels of all chips; see docs/metrics.md."]
    per_chip = result.chip_metrics()[result.primary_metric]
    defined = [
        (float(v), sid)
        for v, sid in zip(per_chip, result.chip_ids, strict=True)
        if not math.isnan(v)
    ]
    direction = result.directions[result.primary_metric]
    worst = sorted(defined, key=lambda d: rank_key(direction, d[0]), reverse=True)[:_WORST_SHOWN]
    if worst:
        shown = ", ".join(f"{sid} {fmt(v)}" for v, sid in worst)
        lines.append(f"Worst chips by {result.primary_metric}: {shown}")
    undefined = len(per_chip) - len(defined)
    if undefined:
        lines.append(
            f"{undefined} chip(s) have an undefined per-chip {result.primary_metric} "
            "(e.g. no flood in target or prediction); they still count in the pooled value."
        )
    return "\n".join(lines)


@click.command("score")
@click.argument("pred_dir", type=click.Path(path_type=Path))
@click.option("--dataset", required=True, help="Name of a prepared dataset, e.g. flood-synth.")
@click.option(
    "--split",
    required=True,
    help="The split the predictions are for: val, test, or another split of the dataset "
    "with labels (Sen1Floods11's bolivia). Competitors have the val labels.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option(
    "--resamples",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Bootstrap resamples for the confidence interval.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.pass_context
def score(
    ctx: click.Context,
    pred_dir: Path,
    dataset: str,
    split: str,
    as_json: bool,
    resamples: int,
    seed: int,
) -> None:
    """Validate and score PRED_DIR (one <id>.tif per input of the split)."""
    # Imported here so that `sarbench --help` does not load rasterio and scipy.
    from harness.datasets.ops import groups_of, open_split, require_manifest
    from harness.scoring.score import score_predictions
    from harness.scoring.validate import PredictionError
    from harness.tasks import get_task

    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings.load()
    try:
        task = get_task(require_manifest(settings, dataset).task)
        split_dir = open_split(settings, dataset, split)
        result = score_predictions(
            pred_dir,
            split_dir,
            task,
            dataset=dataset,
            groups=groups_of(settings, dataset, split),
            n_resamples=resamples,
            seed=seed,
        )
    except PredictionError as exc:
        click.echo(
            f"error: {exc.n_problems:,} problem(s) with the predictions in "
            f"{printable(str(exc.pred_dir))}; nothing was scored:",
            err=True,
        )
        for line in exc.grouped():  # the first MAX_PROBLEMS by kind, escaped; the rest counted
            click.echo(f"  - {line}", err=True)
        hint = other_split_hint(settings, dataset, split, pred_dir)
        if hint:
            click.echo(hint, err=True)
        ctx.exit(1)
    except SarbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1, allow_nan=False))
    else:
        click.echo(render(result))


def other_split_hint(settings: Settings, dataset: str, split: str, pred_dir: Path) -> str | None:
    """``did you mean --split val?`` when most prediction files are named like the inputs
    of another split of ``dataset`` (at most 100,000 names are looked at)."""
    import itertools
    import os

    from harness.datasets.ops import require_manifest

    try:
        with os.scandir(pred_dir) as it:
            names = {e.name[:-4] for e in itertools.islice(it, 100_000) if e.name.endswith(".tif")}
        splits = require_manifest(settings, dataset).splits
    except (OSError, SarbenchError):
        return None
    if not names or set(splits.get(split, ())) & names:
        return None
    best = max(
        (s for s in splits if s != split),
        key=lambda s: len(names & set(splits[s])),
        default=None,
    )
    if best is None or 2 * len(names & set(splits[best])) < len(names):
        return None
    n = len(names & set(splits[best]))
    return (
        f"did you mean --split {best}? {n:,} of the {len(names):,} files are named like "
        f"{dataset}'s {best} inputs, none like its {split} inputs"
    )
