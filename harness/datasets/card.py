"""Dataset cards: ``datasets/<name>/README.md`` with quicklook images of a few chips per split.

The card is written when a dataset is frozen, and again on demand with
``sarbench datasets card NAME`` (from prepared data). Its prose comes from the source's
module docstring (Features / Format / Classes / How it is made / Citation); its numbers
are computed from the data.

The test split is held out: the card shows its chip and group counts only (for a generated
dataset, those of the demo test and of the private test), never a test target, a test mask,
a test chip's id or a quicklook of it, and it reads no test file, so it is the same
whichever test the data folder holds.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from pathlib import Path
from typing import Any

from PIL import Image

from harness import quicklook as ql
from harness.datasets.loader import Sample, SplitDir
from harness.datasets.manifest import Manifest
from harness.datasets.registry import GENERATORS, IMPORTERS
from harness.settings import Settings
from harness.tasks import get_task

QUICKLOOKS_PER_SPLIT = 3
LAYOUT_DOC = "docs/datasets.md"
HELD_OUT = frozenset({"test"})  # splits whose targets, masks and chips a card never shows
TEST_WORDS = {
    "demo": (
        "The test split listed in `manifest.json` is the **demo** test, made from the public "
        "demo test seed: anyone can rebuild it, targets included, so it serves `make demo` and "
        "CI, not claims. The official test is the **private** test, made from a secret the "
        "maintainers hold; the manifest records its digest, chip count and group count only."
    ),
    "public": (
        "The test split's labels are published with the source data: results on it are "
        "comparable, but not blind."
    ),
}


def _date(manifest: Manifest, sample_id: str) -> str:
    return str(manifest.samples.get(sample_id, {}).get("date", ""))


def quicklook(sample: Sample, task: str) -> Image.Image:
    """Input bands in grey, then the target as the task's target kind draws it."""
    panels = [ql.grey(b) for b in sample.inputs]
    if sample.target is not None:
        panels.append(get_task(task).target.card_panel(sample))
    return ql.side_by_side(panels, gap=4)


def _source_doc(name: str, manifest: Manifest) -> str:
    """A generator's module documentation, or the importer class's own docstring."""
    if name in GENERATORS:
        module = importlib.import_module(GENERATORS[name].factory.split(":")[0])
        return inspect.cleandoc(module.__doc__ or "")
    kind = IMPORTERS.get(str(manifest.source.get("importer", "")))
    if kind is None:
        return ""
    module_name, attr = kind.factory.split(":")
    return inspect.getdoc(getattr(importlib.import_module(module_name), attr)) or ""


def _stats(split: SplitDir, task: str) -> str:
    """Chips, valid pixels and the target column (the task's target kind's) of a split."""
    kind = get_task(task).target
    n = valid_px = total_px = 0
    tallies: list[Any] = []
    for s in split:
        v = s.valid_or_all()
        n += 1
        total_px += v.size
        valid_px += int(v.sum())
        if s.target is not None:
            tallies.append(kind.card_tally(s.target[v]))
    valid_pct = 100.0 * valid_px / max(total_px, 1)
    return f"{n} | {valid_pct:.1f}% | {kind.card_summary(tallies, valid_px)}"


def _groups(manifest: Manifest, split: str) -> str:
    n = manifest.n_groups(split)
    return "-" if n is None else str(n)


def _test_rows(manifest: Manifest, split: str) -> list[str]:
    """A held-out split's rows: counts from the manifest only, no data read."""
    held = "held out | held out"
    if manifest.test_kind != "demo":
        return [
            f"| {split} | {len(manifest.splits[split])} | {_groups(manifest, split)} | {held} |"
        ]
    rows = [
        f"| {split} (demo) | {len(manifest.splits[split])} | {_groups(manifest, split)} | {held} |"
    ]
    private = manifest.private_test
    if private is not None:
        rows.append(
            f"| {split} (private) | {private['n_chips']} | {private['n_groups']} | {held} |"
        )
    else:
        rows.append(f"| {split} (private) | - | - | {held} |")
    return rows


def write_card(settings: Settings, manifest: Manifest, data_dir: Path | None = None) -> Path:
    """Write the card and quicklooks of a dataset whose files are in ``data_dir`` (default:
    its folder under the data root); returns the card's path.

    ``manifest`` is the committed one (for a generated dataset: with the demo test and the
    private test's counts). Only the splits that are not held out are read from the data.
    """
    name, task = manifest.name, get_task(manifest.task)
    out = settings.manifests_dir / name
    looks = out / "quicklooks"
    looks.mkdir(parents=True, exist_ok=True)
    for old in looks.glob("*.png"):
        old.unlink()
    data = data_dir or settings.dataset_dir(name)
    rows, images = [], []
    for split in manifest.splits:
        if split in HELD_OUT:
            rows.extend(_test_rows(manifest, split))
            continue
        sd = SplitDir(data / split)
        stats = _stats(sd, task.name)
        n, rest = stats.split(" | ", 1)
        rows.append(f"| {split} | {n} | {_groups(manifest, split)} | {rest} |")
        by_date = sorted(manifest.splits[split], key=lambda i: (_date(manifest, i), i))
        for sid in ql.spread(by_date, QUICKLOOKS_PER_SPLIT):
            fname = f"{sid}.png"
            quicklook(sd.load(sid), task.name).save(looks / fname, optimize=True)
            images.append(f"![{split} {sid}](quicklooks/{fname})")
    target_col, panels = task.target.card_column, task.target.card_panels
    src = manifest.source
    made = ", ".join(f"{k}={v}" for k, v in src.items() if k != "params")
    test_words = TEST_WORDS.get(manifest.test_kind, "")
    if manifest.private_test is not None:
        test_words += f" Private test digest: `{manifest.private_test['digest']}`."
    elif manifest.test_kind == "demo":
        test_words += " The private test is not frozen yet (no digest recorded)."
    test_words = textwrap.fill(test_words, width=90, break_on_hyphens=False)
    text = f"""# {name}

Task: **{task.name}** ({task.description}). Digest: `{manifest.digest}`.

This card is written by `sarbench datasets card {name}` from the data and the source's
own documentation. The data files are not in git: `sarbench datasets prepare {name}`
(or `import`) writes them under the data root, and `sarbench datasets verify {name}`
checks them against `manifest.json`. The file layout is described in `{LAYOUT_DOC}`.

## Bands

{chr(10).join(f"{i}. `{b}`" for i, b in enumerate(manifest.bands, start=1))}

## Splits

| split | chips | groups | valid pixels | {target_col} |
|---|---|---|---|---|
{chr(10).join(rows)}

Groups: the independence groups of a split (chips of one group are correlated: one place,
one event block); "-" where the dataset names none. Test targets and masks are not shown.

{test_words}

## Source

{made}

{_source_doc(name, manifest)}

## Quicklooks

Panels: {panels}. Test chips are not shown.

{chr(10).join(images)}
"""
    card = out / "README.md"
    card.write_text(text)
    return card
