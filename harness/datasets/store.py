"""Writing a source's samples into the layout, and checking files against a manifest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from harness.datasets.layout import (
    BYTES_RECORD,
    NOT_CONTENT,
    SPLIT_NAME,
    check_sample_id,
    rel_path,
)
from harness.datasets.manifest import Manifest
from harness.datasets.source import DatasetSource, SampleRecord
from harness.errors import DataFileError, SourceError
from harness.geo import Grid, compare_grids, content_digest, read_raster, write_raster
from harness.tasks import get_task


def raw_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_record(rec: SampleRecord, source: DatasetSource, target_dtype: str) -> None:
    where = f"{source.name}: sample {rec.id!r} of split {rec.split!r}"
    try:
        check_sample_id(rec.id)
    except ValueError as exc:
        raise SourceError(f"{where}: {exc}") from None
    if not SPLIT_NAME.match(rec.split):
        raise SourceError(f"{where}: bad split name")
    if rec.inputs.ndim != 3 or rec.inputs.shape[0] != len(source.bands):
        raise SourceError(
            f"{where}: inputs must be ({len(source.bands)}, H, W), got {rec.inputs.shape}"
        )
    if rec.inputs.shape[1:] != rec.grid.shape:
        raise SourceError(f"{where}: inputs {rec.inputs.shape} do not fit grid {rec.grid.shape}")
    if rec.inputs.dtype != np.float32:
        raise SourceError(f"{where}: inputs must be float32, got {rec.inputs.dtype}")
    if rec.target is not None and (
        rec.target.shape != rec.grid.shape or rec.target.dtype != np.dtype(target_dtype)
    ):
        raise SourceError(
            f"{where}: target must be {target_dtype} {rec.grid.shape}, "
            f"got {rec.target.dtype} {rec.target.shape}"
        )
    if rec.valid is not None and rec.valid.shape != rec.grid.shape:
        raise SourceError(f"{where}: valid mask {rec.valid.shape} does not fit {rec.grid.shape}")


def write_source(source: DatasetSource, out_dir: Path, *, progress: bool = True) -> Manifest:
    """Write every sample of ``source`` under ``out_dir`` and return its manifest.

    ``out_dir`` must not exist yet (callers write into a staging folder and rename it).
    """
    task = get_task(source.task)
    out_dir.mkdir(parents=True)
    splits: dict[str, list[str]] = {}
    files: dict[str, str] = {}
    raw: dict[str, str] = {}
    samples: dict[str, dict] = {}
    counts = source.expected_counts()
    total = sum(counts.values()) if counts else None
    bar = tqdm(total=total, desc=f"{source.name}", unit="chip", disable=not progress)
    try:
        for rec in source.samples():
            _check_record(rec, source, task.target_dtype)
            if rec.id in samples:
                raise SourceError(f"{source.name}: sample id {rec.id!r} produced twice")
            parts: list[tuple[str, np.ndarray, float | None, tuple[str, ...]]] = [
                ("inputs", rec.inputs, rec.input_nodata, source.bands)
            ]
            if rec.target is not None:
                parts.append(("targets", rec.target, None, ("target",)))
            if rec.valid is not None:
                parts.append(("valid", rec.valid.astype(np.uint8), None, ("valid",)))
            for kind, arr, nodata, names in parts:
                rel = rel_path(rec.split, kind, rec.id)
                path = out_dir / rel
                write_raster(path, arr, rec.grid, nodata=nodata, band_names=names)
                files[rel] = content_digest(arr, rec.grid, nodata)
                raw[rel] = raw_sha256(path)
            splits.setdefault(rec.split, []).append(rec.id)
            samples[rec.id] = dict(rec.meta)
            bar.update(1)
    finally:
        bar.close()
    got = {k: len(v) for k, v in splits.items()}
    if counts and got != {k: n for k, n in counts.items() if n}:
        raise SourceError(f"{source.name}: expected {counts} samples per split, produced {got}")
    write_bytes_record(out_dir, raw)
    roles = getattr(source, "band_roles", None)  # what the source states, if anything
    return Manifest(
        name=source.name,
        task=source.task,
        bands=tuple(source.bands),
        splits=splits,
        files=files,
        source=source.describe(),
        samples=samples,
        band_roles=None if roles is None else tuple(roles),
    )


def write_bytes_record(dataset_dir: Path, raw: dict[str, str]) -> None:
    (dataset_dir / BYTES_RECORD).write_text(json.dumps(dict(sorted(raw.items())), indent=0))


def list_content_files(dataset_dir: Path) -> list[str]:
    """Every file under ``dataset_dir`` (relative POSIX paths), bookkeeping files excluded."""
    found = []
    for root, dirs, names in os.walk(dataset_dir):
        dirs.sort()
        for n in sorted(names):
            rel = Path(root, n).relative_to(dataset_dir).as_posix()
            if rel not in NOT_CONTENT:
                found.append(rel)
    return found


def verify_files(manifest: Manifest, dataset_dir: Path, *, progress: bool = True) -> list[str]:
    """Every difference between ``dataset_dir`` and ``manifest``, one line per file.

    Content digests are checked against the manifest (portable across GDAL versions). Raw
    bytes are checked against the record written when the data was prepared or imported,
    so that any byte change is caught, also one that leaves the decoded pixels unchanged.
    """
    if not dataset_dir.is_dir():
        return [f"{dataset_dir}: dataset folder is missing (run `sarbench datasets prepare`)"]
    problems: list[str] = []
    present = list_content_files(dataset_dir)
    present_set = set(present)
    for rel in sorted(set(manifest.files) - present_set):
        problems.append(f"{rel}: missing")
    for rel in present:
        if rel not in manifest.files:
            problems.append(f"{rel}: extra file, not in the manifest")
    try:
        recorded = json.loads((dataset_dir / BYTES_RECORD).read_text())
        if not isinstance(recorded, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        recorded = None
        problems.append(f"{BYTES_RECORD}: byte record unreadable ({exc}); re-run prepare")
    checked = [rel for rel in sorted(manifest.files) if rel in present_set]
    grids: dict[str, Grid] = {}
    for rel in tqdm(checked, desc=f"verify {manifest.name}", unit="file", disable=not progress):
        path = dataset_dir / rel
        try:
            r = read_raster(path)
        except DataFileError as exc:
            problems.append(f"{rel}: unreadable ({exc.problem})")
            continue
        grids[rel] = r.grid
        digest = content_digest(r.data, r.grid, r.nodata)
        if digest != manifest.files[rel]:
            problems.append(f"{rel}: content differs from the manifest")
        elif recorded is not None and recorded.get(rel) != raw_sha256(path):
            problems.append(
                f"{rel}: bytes changed since it was prepared (decoded content still matches)"
            )
    problems += _grid_problems(grids)
    return problems


def _grid_problems(grids: dict[str, Grid]) -> list[str]:
    """Each target or valid mask whose grid is not its input's (the one rule of
    :func:`harness.geo.compare_grids`)."""
    out = []
    for rel, grid in grids.items():
        split, kind, name = rel.split("/", 2)
        want = grids.get(f"{split}/inputs/{name}")
        if kind == "inputs" or want is None:
            continue
        match = compare_grids(grid, want)
        if not match.same:
            out.append(f"{rel}: grid differs from its input {split}/inputs/{name}: {match}")
    return out


def replace_dir(staging: Path, final: Path) -> None:
    """Move a finished staging folder into place, removing what was there only afterwards."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
