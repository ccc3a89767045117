"""Dataset cards: ``datasets/<name>/README.md`` with quicklook images of a few chips per split.

The card is written when a dataset is first frozen, and again on demand with
``sarbench datasets card NAME`` (from prepared data). Its prose comes from the source's
module docstring (Features / Format / Classes / How it is made / Citation); its numbers
are computed from the data.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import numpy as np
from PIL import Image

from harness.datasets.loader import Sample, SplitDir
from harness.datasets.manifest import Manifest
from harness.datasets.registry import GENERATORS, IMPORTERS
from harness.settings import Settings
from harness.tasks import get_task

QUICKLOOKS_PER_SPLIT = 3
LAYOUT_DOC = "docs/datasets.md"


def _spread(ids: list[str], k: int) -> list[str]:
    """Up to ``k`` ids spread evenly over the sorted list (first, ..., last)."""
    if len(ids) <= k:
        return ids
    return [ids[round(i * (len(ids) - 1) / (k - 1))] for i in range(k)]


def _date(manifest: Manifest, sample_id: str) -> str:
    return str(manifest.samples.get(sample_id, {}).get("date", ""))


def _gray(band: np.ndarray) -> np.ndarray:
    finite = np.isfinite(band)
    if not finite.any():
        return np.zeros(band.shape, np.uint8)
    lo, hi = np.percentile(band[finite], [2, 98])
    scaled = (np.where(finite, band, lo) - lo) / max(hi - lo, 1e-9)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _ndvi_colour(ndvi: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Brown (-1..0.2) to dark green (0.9), grey where not valid."""
    t = np.clip((ndvi + 0.2) / 1.1, 0, 1)[..., None]
    brown, green = np.array([150, 110, 60]), np.array([20, 120, 30])
    rgb = (brown * (1 - t) + green * t).astype(np.uint8)
    rgb[~valid] = (90, 90, 90)
    return rgb


def quicklook(sample: Sample, task: str) -> Image.Image:
    """Input bands in grey, then the target (flood mask over the post image; NDVI colours)."""
    panels = [_rgb(_gray(b)) for b in sample.inputs]
    valid = sample.valid_or_all()
    if sample.target is not None:
        if task == "flood":
            base = panels[-1].copy()
            flood = (sample.target == 1) & valid
            base[flood] = (0.4 * base[flood] + 0.6 * np.array([30, 110, 255])).astype(np.uint8)
            base[~valid] = (255, 0, 255)
            panels.append(base)
        else:
            panels.append(_ndvi_colour(sample.target.astype(np.float64), valid))
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    row = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    return Image.fromarray(row)


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
    n = valid_px = total_px = 0
    pos = 0
    vals: list[np.ndarray] = []
    for s in split:
        v = s.valid_or_all()
        n += 1
        total_px += v.size
        valid_px += int(v.sum())
        if s.target is None:
            continue
        if task == "flood":
            pos += int((s.target[v] == 1).sum())
        else:
            vals.append(s.target[v].astype(np.float64))
    valid_pct = 100.0 * valid_px / max(total_px, 1)
    if task == "flood":
        return f"{n} | {valid_pct:.1f}% | {100.0 * pos / max(valid_px, 1):.1f}% flooded"
    allv = np.concatenate(vals) if vals else np.zeros(0)
    if allv.size == 0:
        return f"{n} | {valid_pct:.1f}% | -"
    return (
        f"{n} | {valid_pct:.1f}% | NDVI mean {allv.mean():.3f}, "
        f"p5-p95 {np.percentile(allv, 5):.3f} to {np.percentile(allv, 95):.3f}"
    )


def write_card(settings: Settings, manifest: Manifest, data_dir: Path | None = None) -> Path:
    """Write the card and quicklooks of a dataset whose files are in ``data_dir`` (default:
    its folder under the data root); returns the card's path."""
    name, task = manifest.name, get_task(manifest.task)
    out = settings.manifests_dir / name
    looks = out / "quicklooks"
    looks.mkdir(parents=True, exist_ok=True)
    for old in looks.glob("*.png"):
        old.unlink()
    data = data_dir or settings.dataset_dir(name)
    rows, images = [], []
    for split in manifest.splits:
        sd = SplitDir(data / split)
        rows.append(f"| {split} | {_stats(sd, task.name)} |")
        by_date = sorted(manifest.splits[split], key=lambda i: (_date(manifest, i), i))
        for sid in _spread(by_date, QUICKLOOKS_PER_SPLIT):
            fname = f"{sid}.png"
            quicklook(sd.load(sid), task.name).save(looks / fname, optimize=True)
            images.append(f"![{split} {sid}](quicklooks/{fname})")
    target_col = "flood share of valid pixels" if task.name == "flood" else "target values"
    panels = (
        "input bands, then the flood mask in blue over the post-event image"
        if task.name == "flood"
        else "input bands, then NDVI (brown low, green high; grey = not farm, not scored)"
    )
    src = manifest.source
    made = ", ".join(f"{k}={v}" for k, v in src.items() if k != "params")
    text = f"""# {name}

Task: **{task.name}** ({task.description}). Digest: `{manifest.digest}`.

This card is written by `sarbench datasets card {name}` from the data and the source's
own documentation. The data files are not in git: `sarbench datasets prepare {name}`
(or `import`) writes them under the data root, and `sarbench datasets verify {name}`
checks them against `manifest.json`. The file layout is described in `{LAYOUT_DOC}`.

## Bands

{chr(10).join(f"{i}. `{b}`" for i, b in enumerate(manifest.bands, start=1))}

## Splits

| split | chips | valid pixels | {target_col} |
|---|---|---|---|
{chr(10).join(rows)}

## Source

{made}

{_source_doc(name, manifest)}

## Quicklooks

Panels: {panels}.

{chr(10).join(images)}
"""
    card = out / "README.md"
    card.write_text(text)
    return card
