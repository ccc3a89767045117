"""Dataset cards: ``<datasets folder>/<name>/README.md`` with quicklooks of a few chips per
split (the work folder's ``datasets/``, or the repository's for the embedded datasets).

The card is written when a dataset is frozen, and again on demand with
``sarbench datasets card NAME`` (from prepared data). Its numbers are computed from the
data. What the data is comes from its source: for a generated dataset, its generator's
module documentation (Features / Format / Classes / How it is made / Citation); for an
imported one, what the importer states in the manifest's ``source.about`` (classes and their
meaning, what is not scored, source, licence, citation, groups, splits; for a folder
import, what the user gave in ``dataset.toml`` or flags, else "not stated by the
importer"), and the bands' roles. No importer docstring is copied into a card.

The test split is held out: the card shows its chip and group counts only (for a generated
dataset, those of the demo test and of the private test), never a test target, a test mask,
a test chip's id or a quicklook of it, and it reads no test file, so it is the same
whichever test the data folder holds.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import textwrap
from pathlib import Path
from typing import Any

from PIL import Image

from harness import quicklook as ql
from harness.bands import ROLES, band_roles
from harness.datasets.loader import Sample, SplitDir
from harness.datasets.manifest import Manifest
from harness.datasets.registry import GENERATORS, IMPORTERS
from harness.settings import Settings
from harness.tasks import ClassMask, TargetKind, get_task

QUICKLOOKS_PER_SPLIT = 3
LAYOUT_DOC = "docs/datasets.md"
HELD_OUT = frozenset({"test"})  # splits whose targets, masks and chips a card never shows
NOT_STATED = "not stated by the importer"
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


def _generator_doc(name: str) -> str:
    """A generator's module documentation (written as its card's prose)."""
    if name not in GENERATORS:
        return ""
    module = importlib.import_module(GENERATORS[name].factory.split(":")[0])
    return inspect.cleandoc(module.__doc__ or "")


def about_of(manifest: Manifest) -> dict[str, Any] | None:
    """What an imported dataset's source states about it: the manifest's ``source.about``,
    else (a manifest frozen before it was recorded) what its importer states now, else
    None (a generated dataset)."""
    src = manifest.source
    if src.get("kind") != "import":
        return None
    about = src.get("about")
    if isinstance(about, dict):
        return about
    kind = IMPORTERS.get(str(src.get("importer", "")))
    if kind is None:
        return {}
    module_name, attr = kind.factory.split(":")
    stated = getattr(getattr(importlib.import_module(module_name), attr), "about", None)
    return dict(stated) if isinstance(stated, dict) else {}


def _held_out(about: dict[str, Any] | None) -> frozenset[str]:
    extra = (about or {}).get("held_out_splits") or []
    return HELD_OUT | {str(s) for s in extra}


def _bands(manifest: Manifest) -> str:
    """The bands, each with its role where the dataset's roles are known."""
    roles = band_roles(manifest)
    lines = []
    for i, band in enumerate(manifest.bands):
        role = "" if roles is None else f": role `{roles[i]}`, {ROLES.get(roles[i], '?')}"
        lines.append(f"{i + 1}. `{band}`{role}")
    if roles is None:
        lines.append("\nBand roles: not known (the manifest states none, the names do not tell).")
    else:
        how = "stated in the manifest" if manifest.band_roles is not None else "from the names"
        lines.append(f"\nBand roles: {'/'.join(roles)} ({how}).")
    return "\n".join(lines)


def _what(manifest: Manifest, about: dict[str, Any]) -> str:
    """The "What the data is" section of an imported dataset's card."""

    def said(key: str) -> str:
        value = about.get(key)
        return str(value) if value else NOT_STATED

    lines = []
    if about.get("description"):
        lines += [textwrap.fill(str(about["description"]), width=90), ""]
    classes = about.get("classes") or {}
    of = about.get("classes_of", "target values")
    if classes:
        lines.append(f"**Classes** ({of}):")
        lines += [f"- `{value}`: {meaning}" for value, meaning in classes.items()]
    else:
        lines.append(
            f"**Classes**: {NOT_STATED} (a folder import states them in dataset.toml "
            "`[classes]` or with `--class VALUE=MEANING`)."
        )
    if about.get("not_scored"):
        lines.append(f"\n**Not scored** (valid mask 0): {about['not_scored']}.")
    lines += [
        "",
        f"**Source**: {said('source')}.",
        "",
        f"**Licence**: {said('licence')}.",
        "",
        f"**Citation**: {said('citation')}",
        "",
        f"**Independence groups**: {said('groups')}.",
    ]
    splits = about.get("splits") or {}
    if splits:
        lines += ["", "**Splits**:"]
        lines += [f"- `{k}`: {v}" for k, v in splits.items() if k in manifest.splits]
    if about.get("stated_by"):
        lines += ["", f"Stated by: {about['stated_by']}."]
    return "\n".join(lines)


def _target_kind(manifest: Manifest, about: dict[str, Any] | None) -> TargetKind:
    """The task's target kind, in the words of an imported dataset where they differ: its
    own name for the class (Sen1Floods11's mask is water, not flood) and the band the mask
    is drawn over."""
    target = get_task(manifest.task).target
    if about is None or not isinstance(target, ClassMask):
        return target
    label = str(about.get("target") or target.label)
    member = label if about.get("target") else target.member
    band = manifest.bands[target.band]
    return dataclasses.replace(target, label=label, member=member, band_name=f"`{band}` band")


def _panels(manifest: Manifest, about: dict[str, Any] | None) -> str:
    """What a quicklook shows, naming the dataset's own bands (not the task's usual ones)."""
    target = _target_kind(manifest, about)
    if about is None:
        return target.card_panels
    names = ", ".join(f"`{b}`" for b in manifest.bands)
    return target.card_panels.replace("input bands", f"input bands ({names}) in grey", 1)


def _stats(split: SplitDir, kind: TargetKind) -> str:
    """Chips, valid pixels and the target column (the target kind's) of a split."""
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
    if manifest.test_kind != "demo" or split != "test":
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
    about = about_of(manifest)
    held_out = _held_out(about)
    target = _target_kind(manifest, about)
    out = settings.dataset_meta_dir(name)
    looks = out / "quicklooks"
    looks.mkdir(parents=True, exist_ok=True)
    for old in looks.glob("*.png"):
        old.unlink()
    data = data_dir or settings.dataset_dir(name)
    rows, images = [], []
    for split in manifest.splits:
        if split in held_out:
            rows.extend(_test_rows(manifest, split))
            continue
        sd = SplitDir(data / split)
        stats = _stats(sd, target)
        n, rest = stats.split(" | ", 1)
        rows.append(f"| {split} | {n} | {_groups(manifest, split)} | {rest} |")
        by_date = sorted(manifest.splits[split], key=lambda i: (_date(manifest, i), i))
        for sid in ql.spread(by_date, QUICKLOOKS_PER_SPLIT):
            fname = f"{sid}.png"
            quicklook(sd.load(sid), task.name).save(looks / fname, optimize=True)
            images.append(f"![{split} {sid}](quicklooks/{fname})")
    target_col, panels = target.card_column, _panels(manifest, about)
    src = manifest.source
    made = ", ".join(f"{k}={v}" for k, v in src.items() if k not in ("params", "about"))
    test_words = TEST_WORDS.get(manifest.test_kind, "")
    if manifest.private_test is not None:
        test_words += f" Private test digest: `{manifest.private_test['digest']}`."
    elif manifest.test_kind == "demo":
        test_words += " The private test is not frozen yet (no digest recorded)."
    test_words = textwrap.fill(test_words, width=90, break_on_hyphens=False)
    if about is None:
        text = _generated_card(name, task, manifest, target_col, rows, test_words, made, panels)
    else:
        text = _imported_card(
            name, task, manifest, about, target_col, rows, test_words, made, panels, held_out
        )
    text += "\n".join(images) + "\n"
    card = out / "README.md"
    card.write_text(text)
    return card


def _generated_card(
    name: str,
    task: Any,
    manifest: Manifest,
    target_col: str,
    rows: list[str],
    test_words: str,
    made: str,
    panels: str,
) -> str:
    """A generated dataset's card: its generator's documentation is its prose."""
    return f"""# {name}

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

{_generator_doc(name)}

## Quicklooks

Panels: {panels}. Test chips are not shown.

"""


def _imported_card(
    name: str,
    task: Any,
    manifest: Manifest,
    about: dict[str, Any],
    target_col: str,
    rows: list[str],
    test_words: str,
    made: str,
    panels: str,
    held_out: frozenset[str],
) -> str:
    """An imported dataset's card: what its importer (or its user) states, never a
    docstring."""
    held = ", ".join(s for s in manifest.splits if s in held_out) or "test"
    counts = ", ".join(f"{s} {n}" for s, n in manifest.count().items())
    return f"""# {name}

Task: **{task.name}** ({task.description}). Digest: `{manifest.digest}`.

This card is written by `sarbench datasets card {name}` from the data and from what the
importer states about it (the manifest's `source.about`). The data files are not in git:
`sarbench datasets import` writes them under the data root, and `sarbench datasets verify
{name}` checks them against `manifest.json`. The file layout is described in `{LAYOUT_DOC}`.

## What the data is

{_what(manifest, about)}

## Bands

{_bands(manifest)}

## Splits

Chips per split: {counts}.

| split | chips | groups | valid pixels | {target_col} |
|---|---|---|---|---|
{chr(10).join(rows)}

Groups: the independence groups of a split (chips of one group are correlated: one place,
one event); "-" where the dataset names none. A split of fewer than 2 groups has no
interval (`sarbench score` says n/a). Targets and masks of held-out splits ({held}) are
not shown.

{test_words}

## Source

{made}

## Quicklooks

Panels: {panels}. Chips of held-out splits ({held}) are not shown.

"""
